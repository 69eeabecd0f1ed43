//! difftar volumes: `snapshot/`, `diff/` and `deleted/` entries, payloads of 64 KiB or more cut into
//! `multivol_*/<path>/<k>` chunks, and the tar stream cut into volumes of `--volsize`, with the bounds
//! each volume's manifest entry needs.

use std::io::{self, Write};

use super::manifest::VolumeInfo;
use super::tarfmt::{self, EntryClass, CHUNK, RECORD};
use crate::engine::index::Index;
use crate::engine::meta::Meta;

/// Where the bytes of each volume go (e.g. a thread that compresses, encrypts and uploads it).
pub trait VolumeSink {
    /// Tar bytes for volume `volume` (1-based); the first call for a number opens that volume.
    fn write(&mut self, volume: u32, bytes: Vec<u8>) -> io::Result<()>;
    /// No more bytes for `volume`.
    fn close(&mut self, volume: u32) -> io::Result<()>;
}

/// Payload sent to the sink in pieces of about this size.
const FLUSH_AT: usize = 256 * 1024;

/// Writes the entries of one backup set as a stream of volumes.
pub struct DiffTarWriter<S: VolumeSink> {
    sink: S,
    volsize: u64,
    /// gpg volumes end with zeros up to a 10 KiB record, as duplicity's do; gzip and plain ones do not.
    record_footer: bool,
    volume: u32,
    in_volume: u64,
    pending: Vec<u8>,
    current: Option<VolumeInfo>,
    done: Vec<VolumeInfo>,
    /// Payload bytes (file data and deltas) written, for statistics.
    pub payload_bytes: u64,
}

impl<S: VolumeSink> DiffTarWriter<S> {
    pub fn new(sink: S, volsize: u64, record_footer: bool) -> Self {
        DiffTarWriter {
            sink,
            volsize: volsize.max(2 * CHUNK as u64),
            record_footer,
            volume: 0,
            in_volume: 0,
            pending: Vec::with_capacity(FLUSH_AT + CHUNK + 4096),
            current: None,
            done: Vec::new(),
            payload_bytes: 0,
        }
    }

    /// Appends one tar block (header + data + padding) for `index`, opening or cutting volumes first.
    fn block(
        &mut self,
        index: &Index,
        label: Option<u64>,
        header: &[u8],
        data: &[u8],
    ) -> io::Result<()> {
        if self.current.is_some() && self.in_volume + CHUNK as u64 > self.volsize {
            self.close_volume()?;
        }
        if self.current.is_none() {
            self.volume += 1;
            self.in_volume = 0;
            self.current = Some(VolumeInfo {
                number: self.volume,
                start: index.clone(),
                start_chunk: label,
                end: index.clone(),
                end_chunk: label,
                sha1: None,
            });
        }
        let cur = self.current.as_mut().expect("volume open");
        cur.end = index.clone();
        cur.end_chunk = label;
        let before = self.pending.len();
        self.pending.extend_from_slice(header);
        self.pending.extend_from_slice(data);
        tarfmt::pad_block(&mut self.pending);
        self.in_volume += (self.pending.len() - before) as u64;
        self.payload_bytes += data.len() as u64;
        if self.pending.len() >= FLUSH_AT {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let bytes = std::mem::replace(
                &mut self.pending,
                Vec::with_capacity(FLUSH_AT + CHUNK + 4096),
            );
            self.sink.write(self.volume, bytes)?;
        }
        Ok(())
    }

    fn close_volume(&mut self) -> io::Result<()> {
        if let Some(b) = self.current.take() {
            if self.record_footer {
                let rem = (self.in_volume % RECORD as u64) as usize;
                self.pending.resize(self.pending.len() + RECORD - rem, 0);
            }
            self.flush_pending()?;
            self.sink.close(self.volume)?;
            self.done.push(b);
        }
        Ok(())
    }

    /// An entry without payload: a directory, symlink, fifo or device snapshot.
    pub fn add_metadata(&mut self, index: &Index, meta: &Meta) -> io::Result<()> {
        let is_dir = meta.ftype == crate::engine::meta::FileType::Directory;
        let name = tarfmt::entry_name(EntryClass::Snapshot, index, is_dir, true);
        let mut h = Vec::with_capacity(1024);
        tarfmt::encode_header(&mut h, &name, meta, 0);
        self.block(index, None, &h, &[])
    }

    /// A `deleted/` entry.
    pub fn add_deleted(&mut self, index: &Index) -> io::Result<()> {
        let name = tarfmt::entry_name(EntryClass::Deleted, index, false, true);
        let mut h = Vec::with_capacity(1024);
        tarfmt::encode_deleted_header(&mut h, &name);
        self.block(index, None, &h, &[])
    }

    /// Starts a `snapshot/` (file data) or `diff/` (delta) payload for a regular file; write the payload
    /// into the returned writer, then call `finish` on it.
    pub fn payload<'w>(
        &'w mut self,
        index: &Index,
        meta: &Meta,
        diff: bool,
    ) -> PayloadWriter<'w, S> {
        PayloadWriter {
            w: self,
            index: index.clone(),
            meta: meta.clone(),
            diff,
            buf: Vec::with_capacity(CHUNK),
            chunks: 0,
        }
    }

    /// Closes the last volume and returns every volume's bounds, in order (the manifest's entries, with
    /// the hash left for whoever stores the volume). The chunk number is set only for a multivol chunk
    /// that is not its file's last, as duplicity records it.
    pub fn finish(mut self) -> io::Result<(Vec<VolumeInfo>, S)> {
        self.close_volume()?;
        Ok((self.done, self.sink))
    }
}

/// Cuts one payload into a single entry (under 64 KiB) or 64 KiB multivol chunks, the last one short
/// (empty when the payload is an exact multiple of 64 KiB), as duplicity does.
pub struct PayloadWriter<'w, S: VolumeSink> {
    w: &'w mut DiffTarWriter<S>,
    index: Index,
    meta: Meta,
    diff: bool,
    buf: Vec<u8>,
    chunks: u64,
}

impl<S: VolumeSink> PayloadWriter<'_, S> {
    fn emit(&mut self, last: bool) -> io::Result<()> {
        let class = match (self.chunks == 0 && last, self.diff) {
            (true, false) => EntryClass::Snapshot,
            (true, true) => EntryClass::Diff,
            (false, false) => EntryClass::MultivolSnapshot(self.chunks + 1),
            (false, true) => EntryClass::MultivolDiff(self.chunks + 1),
        };
        let name = tarfmt::entry_name(class, &self.index, false, true);
        let mut h = Vec::with_capacity(1024);
        tarfmt::encode_header(&mut h, &name, &self.meta, self.buf.len() as u64);
        // A full chunk is never a file's last one, so it is the one the manifest labels.
        let label = (!last).then_some(self.chunks + 1);
        let data = std::mem::take(&mut self.buf);
        self.w.block(&self.index, label, &h, &data)?;
        self.buf = data;
        self.buf.clear();
        self.chunks += 1;
        Ok(())
    }

    /// Ends the payload; returns its length.
    pub fn finish(mut self) -> io::Result<u64> {
        let total = self.chunks * CHUNK as u64 + self.buf.len() as u64;
        self.emit(true)?;
        Ok(total)
    }
}

impl<S: VolumeSink> Write for PayloadWriter<'_, S> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.emit(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::meta::FileType;

    #[derive(Default)]
    struct Collect {
        vols: Vec<Vec<u8>>,
        closed: Vec<u32>,
    }

    impl VolumeSink for Collect {
        fn write(&mut self, volume: u32, bytes: Vec<u8>) -> io::Result<()> {
            if self.vols.len() < volume as usize {
                self.vols.push(Vec::new());
            }
            self.vols[volume as usize - 1].extend_from_slice(&bytes);
            Ok(())
        }
        fn close(&mut self, volume: u32) -> io::Result<()> {
            self.closed.push(volume);
            Ok(())
        }
    }

    fn meta() -> Meta {
        Meta {
            ftype: FileType::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            mtime: 1,
            size: 0,
            link_target: vec![],
            dev_major: 0,
            dev_minor: 0,
        }
    }

    fn names(vol: &[u8]) -> Vec<(String, u64)> {
        let mut ar = tarfmt::reader(vol);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.size(),
                )
            })
            .collect()
    }

    fn write_file(w: &mut DiffTarWriter<Collect>, name: &str, len: usize) {
        let ix = Index::parse(name.as_bytes()).unwrap();
        let mut p = w.payload(&ix, &meta(), false);
        p.write_all(&vec![7u8; len]).unwrap();
        assert_eq!(p.finish().unwrap(), len as u64);
    }

    #[test]
    fn chunking_edges() {
        let mut w = DiffTarWriter::new(Collect::default(), 200 << 20, false);
        write_file(&mut w, "a", 65535);
        write_file(&mut w, "b", 65536);
        write_file(&mut w, "c", 3 << 20);
        let (bounds, sink) = w.finish().unwrap();
        assert_eq!(bounds.len(), 1);
        let n = names(&sink.vols[0]);
        assert_eq!(n[0], ("snapshot/a".into(), 65535));
        assert_eq!(n[1], ("multivol_snapshot/b/1".into(), 65536));
        assert_eq!(n[2], ("multivol_snapshot/b/2".into(), 0));
        assert_eq!(n[3], ("multivol_snapshot/c/1".into(), 65536));
        assert_eq!(n[50], ("multivol_snapshot/c/48".into(), 65536));
        assert_eq!(n[51], ("multivol_snapshot/c/49".into(), 0));
        assert_eq!(n.len(), 52);
    }

    #[test]
    fn volumes_cut_with_chunk_bounds() {
        let mut w = DiffTarWriter::new(Collect::default(), 1 << 20, true);
        w.add_metadata(
            &Index::root(),
            &Meta {
                ftype: FileType::Directory,
                ..meta()
            },
        )
        .unwrap();
        write_file(&mut w, "m.bin", 2_500_000);
        write_file(&mut w, "z.txt", 10);
        let (bounds, sink) = w.finish().unwrap();
        assert_eq!(bounds.len(), 3);
        assert_eq!(sink.closed, [1, 2, 3]);
        assert_eq!(
            (bounds[0].start.to_string(), bounds[0].start_chunk),
            (".".into(), None)
        );
        assert_eq!(bounds[0].end.to_string(), "m.bin");
        let k = bounds[0].end_chunk.unwrap();
        assert_eq!(bounds[1].start_chunk, Some(k + 1));
        assert_eq!(
            (bounds[2].end.to_string(), bounds[2].end_chunk),
            ("z.txt".into(), None)
        );
        for v in &sink.vols {
            assert_eq!(v.len() % RECORD, 0, "gpg volumes end on a record");
            assert!(v.len() <= (1 << 20) + RECORD);
        }
        // Chunks continue across volumes in order.
        let all: Vec<String> = sink
            .vols
            .iter()
            .flat_map(|v| names(v))
            .map(|(n, _)| n)
            .collect();
        let m: Vec<&String> = all.iter().filter(|n| n.starts_with("multivol")).collect();
        assert_eq!(m.len(), 2_500_000 / 65536 + 1);
        assert_eq!(
            m.last().unwrap().as_str(),
            format!("multivol_snapshot/m.bin/{}", m.len())
        );
    }
}
