//! Remote file names (`names::parse`, with and without `--file-prefix*`): any string parses or is
//! refused without a panic, and a name that parses formats back to a name that parses the same.
#![no_main]

use duplicity_charm::engine::archive::names::{self, Prefixes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let prefixes = Prefixes {
        file: "host-".into(),
        archive: "a_".into(),
        manifest: "m_".into(),
        signature: "s_".into(),
        jsonstat: "j_".into(),
    };
    for p in [Prefixes::default(), prefixes] {
        let Some(parsed) = names::parse_with_prefixes(name, &p) else {
            continue;
        };
        let _ = (
            parsed.kind.time(),
            parsed.kind.from_time(),
            parsed.kind.volume(),
        );
        // What we would write for this file must be read back as the same file.
        let again = names::format_with(&parsed.kind, parsed.storage, parsed.partial, &p);
        let back = names::parse_with_prefixes(&again, &p).unwrap_or_else(|| {
            panic!("{name:?} parses, but its formatted form {again:?} does not")
        });
        assert_eq!(
            (back.kind, back.storage, back.partial),
            (parsed.kind, parsed.storage, parsed.partial),
            "{name:?} -> {again:?}"
        );
    }
});
