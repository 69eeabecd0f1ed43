//! An append-only target: the account may create and read files, but not delete, rename or replace
//! them (an SFTP subsystem started with `-P remove,rename,posix-rename,…`, an rsync module in an
//! append-only directory, an FTP account without delete/rename rights and no overwrite). Wraps a
//! backend so that every upload goes straight to its final name ([`Backend::put_new`]) and is then
//! checked by its stored size, and so that nothing is ever deleted.
//!
//! Data safety: a cut upload leaves a partial file under the final name, which can be neither
//! replaced nor removed from here. Such a name is never trusted: when what the target holds under it
//! is not exactly the local file, the upload fails with a permanent error, the set gets no manifest
//! (so no restore, and no later incremental, uses it), and the next backup writes a new set under new
//! names (the engine never reuses the time of a set present on the target).

use std::io::{self, Read};
use std::path::Path;

use super::{Backend, BackendError, BackendResult};

pub struct AppendOnly {
    inner: Box<dyn Backend>,
}

impl AppendOnly {
    pub fn new(inner: Box<dyn Backend>) -> AppendOnly {
        AppendOnly { inner }
    }

    fn permanent(&self, name: &str, message: String) -> BackendError {
        BackendError::Permanent {
            backend: self.inner.describe(),
            name: name.to_string(),
            message,
        }
    }

    /// The target already holds `name`, of `stored` bytes: fine only when it is exactly `src` (an
    /// upload whose last answer was lost, retried).
    fn judge_existing(&self, src: &Path, name: &str, stored: u64, local: u64) -> BackendResult<()> {
        if stored == local && self.same_content(src, name)? {
            return Ok(());
        }
        Err(self.permanent(
            name,
            format!(
                "the target holds {stored} bytes under this name where {local} were to be stored (a cut or \
                 earlier upload), and this append-only target can neither replace nor delete it: this backup \
                 set stays incomplete (it gets no manifest, so no restore uses it) and the next backup writes a \
                 new set under new names; remove the partial file on the server side when pruning"
            ),
        ))
    }

    fn same_content(&self, src: &Path, name: &str) -> BackendResult<bool> {
        let tmp_err = |e: io::Error| BackendError::Transient {
            backend: self.inner.describe(),
            name: name.to_string(),
            message: format!("temporary file: {e}"),
        };
        let dir = tempfile::tempdir().map_err(tmp_err)?;
        let fetched = dir.path().join("stored");
        self.inner.get(name, &fetched)?;
        let a = std::fs::File::open(src).map_err(tmp_err)?;
        let b = std::fs::File::open(&fetched).map_err(tmp_err)?;
        equal_streams(a, b).map_err(tmp_err)
    }
}

fn equal_streams(a: impl Read, b: impl Read) -> io::Result<bool> {
    let (mut a, mut b) = (io::BufReader::new(a), io::BufReader::new(b));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut a, &mut ba)?;
        let m = read_full(&mut b, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Backend for AppendOnly {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        let local = std::fs::metadata(src)
            .map_err(|e| {
                self.permanent(
                    name,
                    format!("cannot read the local file {}: {e}", src.display()),
                )
            })?
            .len();
        if let Some(stored) = self.inner.stored_size(name)? {
            return self.judge_existing(src, name, stored, local);
        }
        let put = self.inner.put_new(src, name);
        // Whatever the upload answered, what counts is what the target now holds under `name`.
        match (put, self.inner.stored_size(name)?) {
            (Ok(()), Some(stored)) if stored == local => Ok(()),
            (Ok(()), None) => Err(self.permanent(
                name,
                "the upload was acknowledged but the file is not on the target".into(),
            )),
            (_, Some(stored)) => self.judge_existing(src, name, stored, local),
            // Nothing stored: the upload's own error (a later run can try again).
            (Err(e), None) => Err(e),
        }
    }

    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.put(src, name)?;
        let _ = std::fs::remove_file(src);
        Ok(())
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.inner.get(name, dst)
    }

    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        self.inner.open(name)
    }

    fn local_path(&self, name: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(name)
    }

    fn stored_lock(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        self.inner.stored_lock(name)
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.inner.list()
    }

    /// Never deletes: retention and cleanup say so before they get here (see
    /// `Repository::retention`); this is the last guard.
    fn delete(&self, names: &[String]) -> BackendResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        Err(self.permanent(
            "",
            format!(
                "this is an append-only target: nothing is deleted from here; prune on the server side. Not deleted: {}",
                names.join(", ")
            ),
        ))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.put(src, name)
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.inner.stored_size(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fault::{FaultPlan, Faulty};
    use crate::backend::file::FileBackend;

    fn local(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join("src");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn uploads_go_to_the_final_name_and_nothing_is_deleted() {
        let t = tempfile::tempdir().unwrap();
        let b = AppendOnly::new(Box::new(FileBackend::new(t.path().join("target"))));
        let src = local(t.path(), b"volume bytes");
        b.put(&src, "v1").unwrap();
        assert_eq!(
            std::fs::read(t.path().join("target/v1")).unwrap(),
            b"volume bytes"
        );
        // The same bytes again (a retried upload whose answer was lost) is fine.
        b.put(&src, "v1").unwrap();
        // Other bytes under that name are refused, and the stored file stays as it was.
        let other = local(t.path(), b"other bytes!");
        let e = b.put(&other, "v1").unwrap_err().to_string();
        assert!(e.contains("can neither replace nor delete"), "{e}");
        assert_eq!(
            std::fs::read(t.path().join("target/v1")).unwrap(),
            b"volume bytes"
        );
        let e = b.delete(&["v1".into()]).unwrap_err().to_string();
        assert!(
            e.contains("prune on the server side") && e.contains("v1"),
            "{e}"
        );
        assert!(t.path().join("target/v1").exists());
        assert_eq!(b.list().unwrap(), ["v1"]);
    }

    #[test]
    fn a_cut_upload_is_never_trusted() {
        let t = tempfile::tempdir().unwrap();
        let plan = FaultPlan {
            cut_put_every: 1,
            cut_bytes: 5,
            ..FaultPlan::default()
        };
        let faulty = Faulty::new(Box::new(FileBackend::new(t.path().join("target"))), plan);
        let b = AppendOnly::new(Box::new(faulty));
        let src = local(t.path(), b"a whole volume");
        let e = b.put(&src, "v1").unwrap_err();
        assert!(matches!(e, BackendError::Permanent { .. }), "{e}");
        assert!(e.to_string().contains("holds 5 bytes"), "{e}");
        assert_eq!(std::fs::read(t.path().join("target/v1")).unwrap(), b"a who");
    }
}
