//! The run lock: a scheduled run and an action never run the engine at once. One lock on `run.lock`
//! beside the settings, taken as the engine's writer locks are ([`crate::engine::lock::HeldLock`]:
//! an OFD lock, polled for a bounded time, the holder written into the file); the second comer gives
//! up saying who holds it. The kernel drops the lock when its holder exits, however it exits.

use std::path::Path;
use std::time::Duration;

use crate::engine::lock::{self as engine_lock, HeldLock};

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
    _held: HeldLock,
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
    match HeldLock::acquire(path, "the run lock", wait, what) {
        Ok(held) => Ok(RunLock { _held: held }),
        Err(engine_lock::LockError::Busy { holder, waited, .. }) => Err(LockError::Busy {
            holder: match (&holder.command, holder.pid) {
                (Some(c), Some(_)) => format!("{c}, {}", holder.pid_and_start()),
                (None, Some(_)) => holder.pid_and_start(),
                _ => "unknown".into(),
            },
            waited,
        }),
        Err(engine_lock::LockError::Io { path, source }) => Err(LockError::Io {
            path: path.display().to_string(),
            source,
        }),
        Err(e @ engine_lock::LockError::UnsafeDir { .. }) => Err(LockError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Test only (cargo feature `test-hooks`): `DUPLICITY_CHARM_TEST_HOLD_LOCK=<seconds>` keeps the lock that
/// long after a job, so tests can make a scheduled run and an action meet.
#[cfg(feature = "test-hooks")]
pub fn test_hold() {
    if let Some(secs) = std::env::var("DUPLICITY_CHARM_TEST_HOLD_LOCK")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        std::thread::sleep(Duration::from_secs_f64(secs));
    }
}

#[cfg(not(feature = "test-hooks"))]
pub fn test_hold() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_then_reports_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.lock");
        let held = acquire(&p, Duration::ZERO, "a scheduled backup").unwrap();
        // OFD locks belong to the open file description, so a second open in this process contends.
        let e = acquire(&p, Duration::from_millis(250), "the backup action").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("a scheduled backup, pid "), "{msg}");
        assert!(msg.contains("within 0s"), "{msg}");
        drop(held);
        acquire(&p, Duration::ZERO, "the backup action").unwrap();
    }
}
