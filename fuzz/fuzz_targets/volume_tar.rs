//! A decoded difftar volume as restore reads it: tar and pax headers (the `tar` crate under
//! `tarfmt::reader`), entry names (`tarfmt::parse_entry_name`), metadata (`tarfmt::meta_from_entry`)
//! and the payloads, in the order restore's applier takes them.
#![no_main]

use std::io;

use duplicity_charm::engine::archive::tarfmt;
use libfuzzer_sys::fuzz_target;

fn read_volume(data: &[u8]) -> io::Result<()> {
    let mut ar = tarfmt::reader(data);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let Ok((class, index)) = tarfmt::parse_entry_name(&entry.path_bytes()) else {
            // restore refuses the volume here.
            return Ok(());
        };
        let _ = (class, index.depth(), index.to_string());
        if class == tarfmt::EntryClass::Deleted {
            continue;
        }
        let meta = tarfmt::meta_from_entry(&mut entry)?;
        let _ = meta.size;
        io::copy(&mut entry, &mut io::sink())?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = read_volume(data);
});
