//! gpg's keybox (`pubring.kbx`, src/engine/gnupg.rs `keybox_blocks`, hand-written because no
//! maintained crate reads it): the file is the user's, but a damaged or hostile one must give keyblocks
//! that lie inside it, or an error — never a panic, a hang or an out-of-bounds slice.
#![no_main]

use duplicity_charm::engine::gnupg::keybox_blocks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(blocks) = keybox_blocks(data) {
        let range = data.as_ptr_range();
        for b in blocks {
            assert!(range.start <= b.as_ptr() && b.as_ptr_range().end <= range.end);
        }
    }
});
