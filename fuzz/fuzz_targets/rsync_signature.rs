//! librsync signatures as an incremental backup uses them (from a sigtar, the old file's signature):
//! `delta::delta` of fixed new data against the fuzzed signature, read to its end.
#![no_main]

use std::io::Read;

use duplicity_charm::engine::delta;
use libfuzzer_sys::fuzz_target;

/// New file data: some blocks of a pattern, so real signatures of it (the seeds) match in places.
fn new_data() -> Vec<u8> {
    let mut x = 7u32;
    (0..6000)
        .map(|i| {
            if i % 1500 < 700 {
                (i % 251) as u8
            } else {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let new = new_data();
    let Ok(mut d) = delta::delta(&new[..], data) else {
        return;
    };
    let mut out = Vec::new();
    let _ = d.read_to_end(&mut out);
});
