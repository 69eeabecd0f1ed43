//! A backend wrapper that injects the failures real links and servers produce: transient errors,
//! uploads and downloads cut off after some bytes, short reads and slow writes. The tests put it
//! between the engine and every real backend of the conformance suite, so that whatever the link
//! does, a backup either completes and restores or fails loudly, and nothing stored is lost.
//!
//! Nothing in the binary constructs it (it is linked only into the tests); it is part of the library
//! so that the integration tests can wrap the real backends they open.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Backend, BackendError, BackendResult};

/// Which faults to inject, and how often. Counters are per wrapper; `every` values of 0 mean never.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Every n-th call (put, get, open, list, delete) fails at once with a Transient error.
    pub transient_every: u64,
    /// Every n-th put stores only the first `cut_bytes` of the file under its name, then fails with a
    /// Transient error (a connection dropped mid-upload on a server without atomic renames).
    pub cut_put_every: u64,
    /// Every n-th get writes only the first `cut_bytes`, then fails with a Transient error.
    pub cut_get_every: u64,
    pub cut_bytes: u64,
    /// Streams from `open` return at most this many bytes per read (0: unchanged).
    pub short_reads: usize,
    /// A pause before each put (a slow link).
    pub slow_put: Duration,
    /// After this many successful puts, every later put fails with a Permanent error (a full disk,
    /// a revoked credential); 0: never.
    pub fail_puts_after: u64,
}

/// The wrapper; see the module documentation.
pub struct Faulty {
    inner: Box<dyn Backend>,
    plan: FaultPlan,
    calls: AtomicU64,
    puts: AtomicU64,
    gets: AtomicU64,
    /// Faults injected so far (tests check that the plan did something).
    pub injected: AtomicU64,
}

impl Faulty {
    pub fn new(inner: Box<dyn Backend>, plan: FaultPlan) -> Faulty {
        Faulty {
            inner,
            plan,
            calls: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    fn transient(&self, name: &str, what: &str) -> BackendError {
        self.injected.fetch_add(1, Ordering::Relaxed);
        BackendError::Transient {
            backend: self.inner.describe(),
            name: name.to_string(),
            message: format!("injected fault: {what}"),
        }
    }

    /// A Transient error for every n-th call of any kind.
    fn maybe_fail(&self, name: &str) -> BackendResult<()> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.plan.transient_every > 0 && n % self.plan.transient_every == 0 {
            return Err(self.transient(name, "connection reset"));
        }
        Ok(())
    }

    fn local_error(&self, name: &str, e: io::Error) -> BackendError {
        BackendError::Permanent {
            backend: self.inner.describe(),
            name: name.to_string(),
            message: format!("fault injection: {e}"),
        }
    }
}

/// The first `n` bytes of `src`, in a temporary file.
fn prefix_of(src: &Path, n: u64) -> io::Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::NamedTempFile::new()?;
    io::copy(&mut std::fs::File::open(src)?.take(n), &mut tmp)?;
    tmp.flush()?;
    Ok(tmp)
}

impl Backend for Faulty {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.maybe_fail(name)?;
        std::thread::sleep(self.plan.slow_put);
        let n = self.puts.fetch_add(1, Ordering::Relaxed) + 1;
        if self.plan.fail_puts_after > 0 && n > self.plan.fail_puts_after {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(BackendError::Permanent {
                backend: self.inner.describe(),
                name: name.to_string(),
                message: "injected fault: no space left on the server".into(),
            });
        }
        if self.plan.cut_put_every > 0 && n % self.plan.cut_put_every == 0 {
            let part =
                prefix_of(src, self.plan.cut_bytes).map_err(|e| self.local_error(name, e))?;
            self.inner.put(part.path(), name)?;
            return Err(self.transient(name, "upload cut off"));
        }
        self.inner.put(src, name)
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.maybe_fail(name)?;
        let n = self.gets.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.get(name, dst)?;
        if self.plan.cut_get_every > 0 && n % self.plan.cut_get_every == 0 {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dst)
                .map_err(|e| self.local_error(name, e))?;
            let len = f.metadata().map_err(|e| self.local_error(name, e))?.len();
            f.set_len(len.min(self.plan.cut_bytes))
                .map_err(|e| self.local_error(name, e))?;
            return Err(self.transient(name, "download cut off"));
        }
        Ok(())
    }

    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        self.maybe_fail(name)?;
        let inner = self.inner.open(name)?;
        Ok(match self.plan.short_reads {
            0 => inner,
            max => Box::new(ShortReads { inner, max }),
        })
    }

    // No local path: every read goes through get/open, where the faults are.

    fn list(&self) -> BackendResult<Vec<String>> {
        self.maybe_fail("")?;
        self.inner.list()
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.maybe_fail(names.first().map_or("", String::as_str))?;
        self.inner.delete(names)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn stored_lock(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        self.inner.stored_lock(name)
    }

    /// As `put`: a cut upload leaves the first `cut_bytes` under the final name, as a connection
    /// lost half-way does on an append-only target.
    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.maybe_fail(name)?;
        let n = self.puts.fetch_add(1, Ordering::Relaxed) + 1;
        if self.plan.cut_put_every > 0 && n % self.plan.cut_put_every == 0 {
            let part =
                prefix_of(src, self.plan.cut_bytes).map_err(|e| self.local_error(name, e))?;
            self.inner.put_new(part.path(), name)?;
            return Err(self.transient(name, "upload cut off"));
        }
        self.inner.put_new(src, name)
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.inner.stored_size(name)
    }
}

/// Returns at most `max` bytes per read, as a slow socket does.
struct ShortReads {
    inner: Box<dyn Read + Send + Sync>,
    max: usize,
}

impl Read for ShortReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::file::FileBackend;

    #[test]
    fn faults_happen_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, vec![7u8; 1000]).unwrap();
        let inner = Box::new(FileBackend::new(dir.path().join("t")));
        let b = Faulty::new(
            inner,
            FaultPlan {
                cut_put_every: 2,
                cut_bytes: 10,
                short_reads: 3,
                ..Default::default()
            },
        );
        b.put(&src, "a").unwrap();
        let e = b.put(&src, "b").unwrap_err();
        assert!(matches!(e, BackendError::Transient { .. }), "{e}");
        assert_eq!(
            std::fs::metadata(dir.path().join("t/b")).unwrap().len(),
            10,
            "a cut upload leaves its prefix"
        );
        let mut r = b.open("a").unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(b.injected.load(Ordering::Relaxed), 1);
    }
}
