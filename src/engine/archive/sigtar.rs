//! Signature tars (`full-signatures` / `new-signatures`): `signature/<p>` (a librsync signature of a
//! regular file), `snapshot/<p>` (metadata of other types) and `deleted/<p>`, in index order; and the
//! merged view of a whole signature chain that an incremental backup diffs against.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};

use super::tarfmt::{self, EntryClass, RECORD};
use crate::engine::index::Index;
use crate::engine::meta::{FileType, Meta};

/// Writes a sigtar into `out` (closed normally: two zero blocks, padded to a record).
pub struct SigTarWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> SigTarWriter<W> {
    pub fn new(out: W) -> Self {
        SigTarWriter {
            out,
            written: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    fn put(&mut self, name: &[u8], meta: &Meta, payload: &[u8]) -> io::Result<()> {
        self.buf.clear();
        tarfmt::encode_header(&mut self.buf, name, meta, payload.len() as u64);
        self.out.write_all(&self.buf)?;
        self.out.write_all(payload)?;
        let pad = (tarfmt::BLOCK - payload.len() % tarfmt::BLOCK) % tarfmt::BLOCK;
        self.out.write_all(&[0u8; tarfmt::BLOCK][..pad])?;
        self.written += (self.buf.len() + payload.len() + pad) as u64;
        Ok(())
    }

    pub fn add_signature(
        &mut self,
        index: &Index,
        meta: &Meta,
        signature: &[u8],
    ) -> io::Result<()> {
        let name = tarfmt::entry_name(EntryClass::Signature, index, false, false);
        self.put(&name, meta, signature)
    }

    pub fn add_snapshot(&mut self, index: &Index, meta: &Meta) -> io::Result<()> {
        let name = tarfmt::entry_name(
            EntryClass::Snapshot,
            index,
            meta.ftype == FileType::Directory,
            false,
        );
        self.put(&name, meta, &[])
    }

    pub fn add_deleted(&mut self, index: &Index) -> io::Result<()> {
        let name = tarfmt::entry_name(EntryClass::Deleted, index, false, false);
        self.buf.clear();
        tarfmt::encode_deleted_header(&mut self.buf, &name);
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        Ok(())
    }

    /// Writes the end-of-archive blocks and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let end = self.written + 2 * tarfmt::BLOCK as u64;
        let total = end.div_ceil(RECORD as u64) * RECORD as u64;
        let zeros = vec![0u8; (total - self.written) as usize];
        self.out.write_all(&zeros)?;
        Ok(self.out)
    }
}

/// One entry of a sigtar.
#[derive(Debug, Clone)]
pub struct SigEntry {
    pub index: Index,
    /// None for `deleted/`.
    pub meta: Option<Meta>,
    /// The librsync signature for `signature/` entries.
    pub signature: Option<Vec<u8>>,
}

/// Reads the sigtar decoded by `input` on its own thread, handing entries over a bounded channel, so
/// several sigtars of a chain can be merged in one pass with flat memory.
pub fn spawn_reader(input: Box<dyn Read + Send>, what: String) -> Receiver<io::Result<SigEntry>> {
    let (tx, rx) = sync_channel(256);
    std::thread::spawn(move || {
        let res = (|| -> io::Result<()> {
            let mut input = input;
            {
                let mut ar = tarfmt::reader(&mut input);
                for e in ar.entries()? {
                    let mut e = e?;
                    let (class, index) = tarfmt::parse_entry_name(&e.path_bytes())
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
                    let entry = match class {
                        EntryClass::Deleted => SigEntry {
                            index,
                            meta: None,
                            signature: None,
                        },
                        EntryClass::Signature => {
                            let meta = tarfmt::meta_from_entry(&mut e)?;
                            let mut sig = Vec::with_capacity(e.size() as usize);
                            e.read_to_end(&mut sig)?;
                            SigEntry {
                                index,
                                meta: Some(meta),
                                signature: Some(sig),
                            }
                        }
                        EntryClass::Snapshot => SigEntry {
                            index,
                            meta: Some(tarfmt::meta_from_entry(&mut e)?),
                            signature: None,
                        },
                        _ => continue,
                    };
                    if tx.send(Ok(entry)).is_err() {
                        return Ok(());
                    }
                }
            }
            // Read to the end so an encrypted sigtar's integrity check runs.
            io::copy(&mut input, &mut io::sink())?;
            Ok(())
        })();
        if let Err(e) = res {
            let _ = tx.send(Err(io::Error::new(e.kind(), format!("{what}: {e}"))));
        }
    });
    rx
}

/// The state of every path as of the end of a signature chain: sigtars merged in index order, the
/// newest entry winning, deleted paths left out.
pub struct ChainSignatures {
    /// Oldest first; each with its look-ahead entry.
    sources: Vec<(Receiver<io::Result<SigEntry>>, Option<SigEntry>)>,
}

impl ChainSignatures {
    pub fn new(readers: Vec<Receiver<io::Result<SigEntry>>>) -> io::Result<Self> {
        let mut sources = Vec::with_capacity(readers.len());
        for rx in readers {
            let first = next_of(&rx)?;
            sources.push((rx, first));
        }
        Ok(ChainSignatures { sources })
    }

    /// An empty chain (for a full backup).
    pub fn empty() -> Self {
        ChainSignatures {
            sources: Vec::new(),
        }
    }

    /// The next live path, or None at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<SigEntry>> {
        loop {
            let Some(min) = self
                .sources
                .iter()
                .filter_map(|(_, e)| e.as_ref().map(|e| e.index.clone()))
                .min()
            else {
                return Ok(None);
            };
            let mut newest = None;
            for (rx, head) in self.sources.iter_mut() {
                if head.as_ref().is_some_and(|e| e.index == min) {
                    newest = head.take();
                    *head = next_of(rx)?;
                }
            }
            match newest {
                Some(e) if e.meta.is_some() => return Ok(Some(e)),
                _ => continue,
            }
        }
    }
}

fn next_of(rx: &Receiver<io::Result<SigEntry>>) -> io::Result<Option<SigEntry>> {
    match rx.recv() {
        Ok(Ok(e)) => Ok(Some(e)),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ftype: FileType, mtime: i64) -> Meta {
        Meta {
            ftype,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: vec![],
            gname: vec![],
            mtime,
            size: 0,
            link_target: vec![],
            dev_major: 0,
            dev_minor: 0,
        }
    }

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    fn sigtar(f: impl FnOnce(&mut SigTarWriter<Vec<u8>>)) -> Vec<u8> {
        let mut w = SigTarWriter::new(Vec::new());
        f(&mut w);
        w.finish().unwrap()
    }

    #[test]
    fn chain_merges_newest_wins_and_drops_deleted() {
        let full = sigtar(|w| {
            w.add_snapshot(&Index::root(), &meta(FileType::Directory, 1))
                .unwrap();
            w.add_signature(&ix("a"), &meta(FileType::Regular, 1), b"sig-a1")
                .unwrap();
            w.add_signature(&ix("b"), &meta(FileType::Regular, 1), b"sig-b1")
                .unwrap();
            w.add_signature(&ix("c"), &meta(FileType::Regular, 1), b"sig-c1")
                .unwrap();
        });
        assert_eq!(full.len() % RECORD, 0);
        let inc = sigtar(|w| {
            w.add_signature(&ix("a"), &meta(FileType::Regular, 2), b"sig-a2")
                .unwrap();
            w.add_deleted(&ix("b")).unwrap();
            w.add_signature(&ix("d"), &meta(FileType::Regular, 2), b"sig-d2")
                .unwrap();
        });
        let readers = vec![
            spawn_reader(Box::new(io::Cursor::new(full)), "full".into()),
            spawn_reader(Box::new(io::Cursor::new(inc)), "inc".into()),
        ];
        let mut chain = ChainSignatures::new(readers).unwrap();
        let mut got = Vec::new();
        while let Some(e) = chain.next_entry().unwrap() {
            got.push((
                e.index.to_string(),
                e.signature.map(|s| String::from_utf8(s).unwrap()),
            ));
        }
        assert_eq!(
            got,
            [
                (".".to_string(), None),
                ("a".to_string(), Some("sig-a2".to_string())),
                ("c".to_string(), Some("sig-c1".to_string())),
                ("d".to_string(), Some("sig-d2".to_string())),
            ]
        );
    }
}
