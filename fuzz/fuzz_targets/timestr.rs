//! Time strings (`-t`, `--current-time`, `remove-older-than`, names' times): every form parses or is
//! refused without a panic or an overflow, whatever `now` is.
#![no_main]

use duplicity_charm::engine::timestr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes (if any) pick `now`; the rest is the string.
    let (now, rest) = match data.split_first_chunk::<8>() {
        Some((n, rest)) if data.len() > 8 && n[0] == 0xff => (i64::from_le_bytes(*n), rest),
        _ => (1_700_000_000, data),
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(t) = timestr::parse_time(s, now) {
        let _ = timestr::format_timestamp(t);
        let _ = timestr::asctime_utc(t);
        let _ = timestr::asctime_local(t);
    }
    let _ = timestr::parse_interval(s);
    if let Some(t) = timestr::parse_timestamp(s) {
        // A file-name time we parse is one we can write back.
        let again = timestr::format_timestamp(t);
        assert_eq!(
            timestr::parse_timestamp(&again),
            Some(t),
            "{s:?} -> {again:?}"
        );
    }
    let _ = timestr::parse_w3(s);
});
