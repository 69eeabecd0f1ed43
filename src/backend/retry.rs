//! Retries a remote backend's Transient failures with exponential backoff (or, as duplicity's
//! `--backend-retry-delay`, a fixed pause); NotFound and Permanent failures pass through at once. After the last attempt the error names the backend, the file and
//! how many attempts were made.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::{Backend, BackendError, BackendResult};

pub struct Retrying {
    inner: Box<dyn Backend>,
    attempts: u32,
    backoff: Duration,
    /// Pause `backoff` between every two attempts rather than doubling it.
    fixed: bool,
}

impl Retrying {
    pub fn new(inner: Box<dyn Backend>, attempts: u32, backoff: Duration) -> Retrying {
        Retrying {
            inner,
            attempts: attempts.max(1),
            backoff,
            fixed: false,
        }
    }

    /// The same pause between all attempts, as duplicity's `--backend-retry-delay`.
    pub fn with_fixed_delay(mut self, fixed: bool) -> Retrying {
        self.fixed = fixed;
        self
    }

    fn again<T>(&self, mut op: impl FnMut() -> BackendResult<T>) -> BackendResult<T> {
        let mut pause = self.backoff;
        let mut attempt = 1;
        loop {
            match op() {
                Err(BackendError::Transient {
                    backend,
                    name,
                    message,
                }) => {
                    if attempt >= self.attempts {
                        let message = if self.attempts > 1 {
                            format!("{message} (gave up after {} attempts)", self.attempts)
                        } else {
                            message
                        };
                        return Err(BackendError::Transient {
                            backend,
                            name,
                            message,
                        });
                    }
                    crate::logging::warn(&format!(
                        "{backend}: {}{message}; attempt {attempt} of {} failed, retrying in {:?}",
                        super::named(&name),
                        self.attempts,
                        pause
                    ));
                    std::thread::sleep(pause);
                    if !self.fixed {
                        pause = pause.saturating_mul(2);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl Backend for Retrying {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.again(|| self.inner.put(src, name))
    }

    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        // `put` (not the inner put_move) so a failed attempt still has `src` to send again.
        self.again(|| self.inner.put(src, name))?;
        let _ = std::fs::remove_file(src);
        Ok(())
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.again(|| self.inner.get(name, dst))
    }

    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        self.again(|| self.inner.open(name))
    }

    fn local_path(&self, name: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(name)
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.again(|| self.inner.list())
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.again(|| self.inner.delete(names))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn stored_lock(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        self.again(|| self.inner.stored_lock(name))
    }

    // A retried put_new finds the cut first attempt's partial file and fails; the append-only
    // wrapper outside then judges what the target holds.
    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.again(|| self.inner.put_new(src, name))
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.again(|| self.inner.stored_size(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails `list` with a Transient error `fails` times, then succeeds.
    struct Flaky {
        fails: u32,
        calls: AtomicU32,
    }

    impl Backend for Flaky {
        fn put(&self, _: &Path, _: &str) -> BackendResult<()> {
            Ok(())
        }
        fn get(&self, name: &str, _: &Path) -> BackendResult<()> {
            Err(BackendError::NotFound {
                backend: self.describe(),
                name: name.into(),
            })
        }
        fn list(&self) -> BackendResult<Vec<String>> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.fails {
                return Err(BackendError::Transient {
                    backend: self.describe(),
                    name: "x.manifest".into(),
                    message: "connection reset".into(),
                });
            }
            Ok(vec!["a".into()])
        }
        fn delete(&self, _: &[String]) -> BackendResult<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "flaky://127.0.0.1/d".into()
        }
    }

    fn flaky(fails: u32, attempts: u32) -> Retrying {
        let inner = Flaky {
            fails,
            calls: AtomicU32::new(0),
        };
        Retrying::new(Box::new(inner), attempts, Duration::from_millis(1))
    }

    #[test]
    fn transient_failures_are_retried() {
        assert_eq!(flaky(2, 3).list().unwrap(), ["a"]);
    }

    #[test]
    fn gives_up_naming_backend_file_and_attempts() {
        let e = flaky(5, 3).list().unwrap_err().to_string();
        assert!(e.contains("flaky://127.0.0.1/d"), "{e}");
        assert!(e.contains("x.manifest"), "{e}");
        assert!(e.contains("3 attempts"), "{e}");
    }

    #[test]
    fn not_found_is_not_retried() {
        let b = flaky(0, 3);
        assert!(b
            .get("nope", Path::new("/nonexistent"))
            .unwrap_err()
            .is_not_found());
    }
}
