//! The run lock: a scheduled run and an action never run the engine at once. One `flock` on `run.lock`
//! beside the settings; the second comer polls for a bounded time, then gives up saying who holds it.
//! The kernel drops the lock when its holder exits, however it exits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long an action waits for a running job before reporting busy (override:
/// `DUPLICITY_CHARM_LOCK_WAIT`, in seconds).
pub const ACTION_WAIT: Duration = Duration::from_secs(60);
/// How long a scheduled run waits for an action (a restore can take a while).
pub const SCHEDULER_WAIT: Duration = Duration::from_secs(30 * 60);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run holds the lock ({holder}) and it did not finish within {}s", waited.as_secs())]
    Busy { holder: String, waited: Duration },
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the value lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// The wait, or the `DUPLICITY_CHARM_LOCK_WAIT` override.
pub fn wait_from_env(default: Duration) -> Duration {
    std::env::var("DUPLICITY_CHARM_LOCK_WAIT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// Takes the lock, waiting up to `wait`; `what` (e.g. `the backup action`) is written into the file
/// so a waiter can say who is running.
pub fn acquire(path: &Path, wait: Duration, what: &str) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let start = Instant::now();
    loop {
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io(err));
        }
        if start.elapsed() >= wait {
            let mut holder = String::new();
            let _ = file.rewind().and_then(|_| file.read_to_string(&mut holder));
            let holder = holder.trim();
            return Err(LockError::Busy {
                holder: if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_string()
                },
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| write!(file, "{what}, pid {}, since {since}", std::process::id()));
    Ok(RunLock { _file: file })
}

/// Test only: `DUPLICITY_CHARM_TEST_HOLD_LOCK=<seconds>` keeps the lock that long after a job, so tests
/// can make a scheduled run and an action meet.
pub fn test_hold() {
    if let Some(secs) = std::env::var("DUPLICITY_CHARM_TEST_HOLD_LOCK")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        std::thread::sleep(Duration::from_secs_f64(secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_then_reports_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.lock");
        let held = acquire(&p, Duration::ZERO, "a scheduled backup").unwrap();
        // flock locks belong to the open file description, so a second open in this process contends.
        let e = acquire(&p, Duration::from_millis(250), "the backup action").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("a scheduled backup, pid "), "{msg}");
        assert!(msg.contains("within 0s"), "{msg}");
        drop(held);
        acquire(&p, Duration::ZERO, "the backup action").unwrap();
    }
}
