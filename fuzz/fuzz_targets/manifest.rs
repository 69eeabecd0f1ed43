//! Manifests (`manifest::parse`): any bytes parse or are refused without a panic, and a manifest that
//! parses is written back by us to one that parses the same.
#![no_main]

use duplicity_charm::engine::archive::manifest;
use duplicity_charm::engine::index::Index;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = manifest::parse(data) else {
        return;
    };
    let probe = Index::parse(b"a/b").expect("a valid index");
    let _ = m.volumes_for(&probe).count();
    let _ = m.volumes_without_hash();
    for v in &m.volumes {
        let _ = v.may_contain(&Index::root());
    }
    let mut out = Vec::new();
    m.write_to(&mut out).expect("writing to memory");
    let again = manifest::parse(&out)
        .unwrap_or_else(|e| panic!("our rewrite of a manifest that parsed does not parse: {e}"));
    assert_eq!(again.volumes, m.volumes);
    assert_eq!(again.files, m.files);
});
