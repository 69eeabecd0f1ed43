//! Sigtars as an incremental backup reads them: `sigtar::spawn_reader` (tar and pax headers, entry
//! names, metadata, signature payloads) merged by `ChainSignatures`, here over two copies of the input
//! (the full's and an incremental's sigtar).
#![no_main]

use std::io::Cursor;

use duplicity_charm::engine::archive::sigtar::{spawn_reader, ChainSignatures};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let readers = vec![
        spawn_reader(Box::new(Cursor::new(data.to_vec())), "full".into()),
        spawn_reader(Box::new(Cursor::new(data.to_vec())), "inc".into()),
    ];
    let Ok(mut chain) = ChainSignatures::new(readers) else {
        return;
    };
    while let Ok(Some(e)) = chain.next_entry() {
        let _ = (e.index, e.meta, e.signature.map(|s| s.len()));
    }
});
