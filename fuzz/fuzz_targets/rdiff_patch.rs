//! rdiff deltas as restore applies them: `delta::patch` of a fixed base file with the fuzzed delta,
//! read to its end (at most 16 MiB, so a run of COPY commands cannot spin forever).
#![no_main]

use std::io::{self, Cursor, Read};

use duplicity_charm::engine::delta;
use libfuzzer_sys::fuzz_target;

fn base() -> Vec<u8> {
    (0..5000u32).map(|i| (i % 253) as u8).collect()
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let Ok(p) = delta::patch(Cursor::new(&base[..]), data) else {
        return;
    };
    let _ = io::copy(&mut p.take(16 << 20), &mut io::sink());
});
