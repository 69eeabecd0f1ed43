//! How a volume, sigtar or manifest is stored: plain, gzip or OpenPGP. Writers count the SHA1 of the
//! stored bytes (the manifest's `Hash SHA1`); readers check that hash before anything is decoded.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use sha1::{Digest, Sha1};

use super::deflate::{GzipWriter, PgpLiteralWriter};
use super::names::Storage;
use crate::engine::crypto::{Compression, Decryptor, EncryptWriter, Encryptor};

/// How new files are sealed.
#[derive(Clone, Copy)]
pub enum Sealing<'e> {
    Plain,
    /// gzip at this level (duplicity: 6).
    Gzip(u32),
    /// OpenPGP (to a passphrase or public keys, signed or not), with deflate inside at this level.
    Gpg(&'e Encryptor, Compression),
}

impl Sealing<'_> {
    /// The storage suffix a file sealed this way gets (manifests are never gzipped: see `manifest_storage`).
    pub fn storage(&self) -> Storage {
        match self {
            Sealing::Plain => Storage::Plain,
            Sealing::Gzip(_) => Storage::Gzip,
            Sealing::Gpg(..) => Storage::Gpg,
        }
    }

    /// Manifests are stored plain unless encrypted.
    pub fn for_manifest(&self) -> Sealing<'_> {
        match *self {
            Sealing::Gpg(e, c) => Sealing::Gpg(e, c),
            _ => Sealing::Plain,
        }
    }
}

#[derive(Default)]
struct HashState {
    sha1: Sha1,
    bytes: u64,
}

/// The file being written, hashing every byte that reaches it.
struct HashingFile {
    file: File,
    state: Arc<Mutex<HashState>>,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let mut st = self.state.lock().expect("hash state poisoned");
        st.sha1.update(&buf[..n]);
        st.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum Inner<'a> {
    Plain(BufWriter<HashingFile>),
    Gzip(GzipWriter<BufWriter<HashingFile>>),
    /// OpenPGP with our own (multi-core) deflate inside.
    GpgZip(PgpLiteralWriter<EncryptWriter<'a>>),
    /// OpenPGP without compression.
    Gpg(EncryptWriter<'a>),
}

/// What was stored: the SHA1 (lowercase hex) and size of the bytes on disk.
#[derive(Clone, Debug)]
pub struct Stored {
    pub sha1: String,
    pub size: u64,
}

/// Seals what is written to it into `file`.
pub struct ContainerWriter<'a> {
    inner: Inner<'a>,
    state: Arc<Mutex<HashState>>,
    /// Plaintext bytes written so far.
    written: u64,
}

const BUF: usize = 256 * 1024;

impl<'a> ContainerWriter<'a> {
    pub fn new(file: File, sealing: Sealing<'a>) -> io::Result<ContainerWriter<'a>> {
        let state = Arc::new(Mutex::new(HashState::default()));
        let hf = HashingFile {
            file,
            state: state.clone(),
        };
        let inner = match sealing {
            Sealing::Plain => Inner::Plain(BufWriter::with_capacity(BUF, hf)),
            Sealing::Gzip(level) => {
                Inner::Gzip(GzipWriter::new(BufWriter::with_capacity(BUF, hf), level)?)
            }
            Sealing::Gpg(enc, Compression::Deflate(level)) => {
                Inner::GpgZip(PgpLiteralWriter::with_signer(
                    enc.packet_writer(BufWriter::with_capacity(BUF, hf))
                        .map_err(io::Error::other)?,
                    level,
                    enc.message_signer().map_err(io::Error::other)?,
                )?)
            }
            // gpg's other algorithms (--compress-algo zlib/bzip2) go through the general writer.
            Sealing::Gpg(
                enc,
                c @ (Compression::None | Compression::Zlib(_) | Compression::Bzip2(_)),
            ) => Inner::Gpg(
                enc.writer(BufWriter::with_capacity(BUF, hf), c)
                    .map_err(io::Error::other)?,
            ),
        };
        Ok(ContainerWriter {
            inner,
            state,
            written: 0,
        })
    }

    /// Plaintext bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the stream (gzip trailer, OpenPGP MDC), flushes to disk and returns what was stored.
    pub fn finish(self) -> io::Result<Stored> {
        match self.inner {
            Inner::Plain(w) => {
                let hf = w.into_inner().map_err(|e| e.into_error())?;
                hf.file.sync_data()?;
            }
            Inner::Gzip(w) => {
                let bw = w.finish()?;
                let hf = bw.into_inner().map_err(|e| e.into_error())?;
                hf.file.sync_data()?;
            }
            Inner::GpgZip(w) => w.finish()?.finish().map_err(io::Error::other)?,
            Inner::Gpg(w) => w.finish().map_err(io::Error::other)?,
        }
        let st = self.state.lock().expect("hash state poisoned");
        Ok(Stored {
            sha1: hex::encode(st.sha1.clone().finalize()),
            size: st.bytes,
        })
    }
}

impl Write for ContainerWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Plain(w) => w.write(buf)?,
            Inner::Gzip(w) => w.write(buf)?,
            Inner::GpgZip(w) => w.write(buf)?,
            Inner::Gpg(w) => w.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Gzip(w) => w.flush(),
            Inner::GpgZip(w) => w.flush(),
            Inner::Gpg(w) => w.flush(),
        }
    }
}

/// The SHA1 (lowercase hex) of a whole file, from its start.
pub fn sha1_of(file: &mut File) -> io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(hex::encode(h.finalize()))
}

/// Decodes a stored file (from its current position): gunzip or decrypt, or nothing for plain. For gpg,
/// the caller must read to the end: integrity (MDC) is only known there.
pub fn decode<'a>(
    file: File,
    storage: Storage,
    decryptor: &Decryptor,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let r = BufReader::with_capacity(BUF, file);
    Ok(match storage {
        Storage::Plain => Box::new(r),
        Storage::Gzip => Box::new(MultiGzDecoder::new(r)),
        Storage::Gpg => Box::new(SendReader(decryptor.reader(r).map_err(io::Error::other)?)),
    })
}

struct SendReader<'a>(Box<dyn Read + Send + Sync + 'a>);

impl Read for SendReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trip_and_hash_of_stored_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v");
        let mut w = ContainerWriter::new(File::create(&p).unwrap(), Sealing::Gzip(6)).unwrap();
        w.write_all(&b"hello world ".repeat(1000)).unwrap();
        let stored = w.finish().unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(sha1_of(&mut f).unwrap(), stored.sha1);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), stored.size);
        let mut out = Vec::new();
        decode(f, Storage::Gzip, &Decryptor::new(None))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello world ".repeat(1000));
    }
}
