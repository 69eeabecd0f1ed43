//! The writer lock: one run that writes (a backup, a retention that deletes, `cleanup --force`) per
//! archive dir and per target at a time. Reads (restore, list, verify, collection-status, dry runs)
//! take no lock.
//!
//! Two locks, always taken in this order (so two writers never wait for each other in a circle):
//! - the archive dir's `lockfile`, the file stock duplicity locks there (it uses `fasteners`, i.e. a
//!   POSIX record lock via `lockf`). We take an open-file-description (OFD) record lock on it, which
//!   the kernel treats as conflicting with POSIX record locks, so stock duplicity and this tool refuse
//!   to run at once on one archive dir. OFD rather than classic POSIX locks because classic ones
//!   belong to the process (closing any descriptor of the file drops them, and two opens in one
//!   process never conflict), while an OFD lock belongs to its open file, like `flock`.
//! - a machine-wide lock file for the target, named by the MD5 of the target URL without
//!   credentials, in `/run/lock/duplicity-charm/<uid>/` (re-rooted under `DUPLICITY_CHARM_ROOT`).
//!   Two archive dirs (other `--archive-dir`/`--name`, or the charm beside an operator's CLI) can
//!   point at one target; this lock keeps their writers apart too. The per-uid directory (0700,
//!   checked to be ours) means another local user can neither hold our lock nor plant files in it;
//!   two users writing one target are therefore not kept apart (each has its own archive dir and
//!   credentials anyway).
//!
//! No lock file is written on the target. A remote lock (as restic's) would also keep two machines
//! apart, but every backend we speak (file, sftp, ftp, rsync, S3, Azure) lacks an atomic
//! create-if-absent that works across all of them, and a lock left by a dead machine needs a
//! timeout that guesses. Stock duplicity, whose repositories these are, keeps no remote lock either,
//! so a remote lock would not keep stock duplicity away. Two machines writing one target are a
//! configuration error: each machine must have its own target (see the README).
//!
//! A holder writes its pid, start time and command into the file (no secrets) and empties it when it
//! releases the lock. The kernel drops the lock when the holder dies, however it dies; a file that
//! still names a holder when we get the lock was left by a run that died, and is taken over with a
//! warning naming that pid.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

/// How long a second writer waits for the first by default (`--lock-wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// The archive dir's lock file: the name stock duplicity locks.
pub const ARCHIVE_DIR_LOCK: &str = "lockfile";
/// Where target locks live (under a per-uid directory), before re-rooting.
pub const TARGET_LOCK_ROOT: &str = "/run/lock/duplicity-charm";
/// How often a waiter tries again.
const POLL: Duration = Duration::from_millis(100);

/// Who holds (or held) a lock, as its file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// UTC, `2026-12-05T09:16:42Z`.
    pub started: Option<String>,
    pub command: Option<String>,
}

impl Holder {
    fn ours(command: &str) -> Holder {
        Holder {
            pid: Some(std::process::id()),
            started: Some(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            command: Some(one_line(command)),
        }
    }

    /// Reads the `key=value` lines a holder wrote; None when the file is empty.
    fn parse(text: &str) -> Option<Holder> {
        if text.trim().is_empty() {
            return None;
        }
        let mut h = Holder::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => h.pid = v.trim().parse().ok(),
                Some(("started", v)) => h.started = Some(v.trim().to_string()),
                Some(("command", v)) => h.command = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Some(h)
    }

    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.pid {
            s.push_str(&format!("pid={p}\n"));
        }
        if let Some(t) = &self.started {
            s.push_str(&format!("started={t}\n"));
        }
        if let Some(c) = &self.command {
            s.push_str(&format!("command={c}\n"));
        }
        s
    }

    /// `pid N, started T` (the parts known).
    pub fn pid_and_start(&self) -> String {
        let pid = self
            .pid
            .map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
        match &self.started {
            Some(t) => format!("{pid}, started {t}"),
            None => pid,
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run held the lock for the whole wait.
    #[error("another run ({}) holds the lock on {what}; wait for it to finish or stop it (waited {}s; --lock-wait sets how long)", holder.pid_and_start(), waited.as_secs())]
    Busy {
        /// `the archive dir /x` or `the target file:///y`.
        what: String,
        holder: Holder,
        waited: Duration,
    },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("will not use {} for locks: {problem}", path.display())]
    UnsafeDir { path: PathBuf, problem: String },
}

/// One lock held; released (and its file emptied) when dropped.
#[derive(Debug)]
pub struct HeldLock {
    file: File,
    path: PathBuf,
    /// The holder that died holding it, when we took it over.
    pub taken_over: Option<Holder>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Emptied while still locked, so a file that names a holder means a run that died.
        let _ = self.file.set_len(0);
        // The archive dir's lockfile goes, as stock duplicity removes it: the archive dir then holds
        // metadata only. A waiter that opened the removed file notices and opens the path again.
        if self.path.file_name() == Some(std::ffi::OsStr::new(ARCHIVE_DIR_LOCK)) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl HeldLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock on `path` (created 0600 if missing), waiting up to `wait`, and writes `command`
    /// with our pid and the time into it. `what` names the locked thing in a busy message.
    pub fn acquire(
        path: &Path,
        what: &str,
        wait: Duration,
        command: &str,
    ) -> Result<HeldLock, LockError> {
        Self::acquire_until(path, what, Instant::now() + wait, wait, command)
    }

    fn acquire_until(
        path: &Path,
        what: &str,
        deadline: Instant,
        wait: Duration,
        command: &str,
    ) -> Result<HeldLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(path)
                .map_err(io_err)?;
            loop {
                match try_lock(&file) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => return Err(io_err(e)),
                }
                if Instant::now() >= deadline {
                    let mut holder = read_holder(&mut file).unwrap_or_default();
                    // A classic POSIX lock (stock duplicity's) names its process; ours say -1.
                    if let Some(pid) = classic_lock_holder(&file) {
                        if holder.pid != Some(pid) {
                            holder = Holder {
                                pid: Some(pid),
                                started: None,
                                command: Some("duplicity (or another program)".into()),
                            };
                        }
                    }
                    return Err(LockError::Busy {
                        what: what.to_string(),
                        holder,
                        waited: wait,
                    });
                }
                std::thread::sleep(POLL);
            }
            // Stock duplicity removes its lock file when it is done: a lock on a file that is no
            // longer at `path` locks nothing, so open the path again.
            let same = match (file.metadata(), fs::symlink_metadata(path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if !same {
                continue;
            }
            let taken_over = read_holder(&mut file);
            // A file stock duplicity created may have another mode; it never holds anything secret,
            // but keep ours uniform. Not ours to change when another user owns it.
            let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
            let me = Holder::ours(command);
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| file.write_all(me.render().as_bytes()))
                .map_err(io_err)?;
            return Ok(HeldLock {
                file,
                path: path.to_path_buf(),
                taken_over,
            });
        }
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

/// A write lock on the whole file, as `fcntl` takes it.
fn whole_file_write_lock() -> nix::libc::flock {
    nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0, // to the end of the file, however long it grows
        l_pid: 0, // required for OFD locks
    }
}

/// A non-blocking exclusive OFD lock on the whole file. Ok(false): someone else holds a lock on it.
/// Through nix: rustix's `fcntl_lock` issues F_SETLK (a classic, per-process POSIX lock) and has no OFD
/// variant.
fn try_lock(file: &File) -> io::Result<bool> {
    use nix::errno::Errno;
    use nix::fcntl::{fcntl, FcntlArg};
    match fcntl(file, FcntlArg::F_OFD_SETLK(&whole_file_write_lock())) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The pid of a classic POSIX lock on the file (stock duplicity's), if one blocks ours; OFD holders
/// are reported with pid -1 (their owner is no process). rustix's `fcntl_getlk` issues F_GETLK and
/// asserts on that pid, hence nix here too.
fn classic_lock_holder(file: &File) -> Option<u32> {
    use nix::fcntl::{fcntl, FcntlArg};
    let mut fl = whole_file_write_lock();
    fcntl(file, FcntlArg::F_OFD_GETLK(&mut fl)).ok()?;
    (fl.l_type != nix::libc::F_UNLCK as nix::libc::c_short && fl.l_pid > 0)
        .then_some(fl.l_pid as u32)
}

/// Both writer locks, held while the value lives.
#[derive(Debug)]
pub struct WriterLock {
    pub archive_dir: HeldLock,
    pub target: HeldLock,
}

/// Takes the archive dir's lock, then the target's, within `wait` in all, for a run that writes.
/// `target` is the target as shown to people (no credentials); `command` says what runs (no secrets).
/// A lock taken over from a dead run is reported on stderr in one line.
pub fn lock_writer(
    archive_dir: &Path,
    target: &str,
    wait: Duration,
    command: &str,
) -> Result<WriterLock, LockError> {
    let deadline = Instant::now() + wait;
    super::cache::ensure_private_dir(archive_dir).map_err(|source| LockError::Io {
        path: archive_dir.to_path_buf(),
        source,
    })?;
    let archive = HeldLock::acquire_until(
        &archive_dir.join(ARCHIVE_DIR_LOCK),
        &format!("the archive dir {}", archive_dir.display()),
        deadline,
        wait,
        command,
    )?;
    let target_path = target_lock_path(target)?;
    let target_lock = HeldLock::acquire_until(
        &target_path,
        &format!("the target {target}"),
        deadline,
        wait,
        command,
    )?;
    for (lock, what) in [
        (
            &archive,
            format!("the archive dir {}", archive_dir.display()),
        ),
        (&target_lock, format!("the target {target}")),
    ] {
        if let Some(h) = &lock.taken_over {
            crate::logging::warn(&format!(
                "took over the lock on {what} left by {} ({}), which ended without releasing it",
                h.pid_and_start(),
                lock.path().display()
            ));
        }
    }
    Ok(WriterLock {
        archive_dir: archive,
        target: target_lock,
    })
}

/// `/run/lock/duplicity-charm/<uid>/<md5 of target>.lock`, re-rooted under `DUPLICITY_CHARM_ROOT`.
/// The shared parent is created sticky and world-writable like `/run/lock` itself, the per-uid
/// directory 0700; both are checked before use (not a symlink, owned by root or us, and the uid
/// directory by us alone).
pub fn target_lock_path(target: &str) -> Result<PathBuf, LockError> {
    let root = std::env::var_os("DUPLICITY_CHARM_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from);
    target_lock_path_under(root.as_deref(), target)
}

fn target_lock_path_under(root: Option<&Path>, target: &str) -> Result<PathBuf, LockError> {
    let top = match root {
        Some(r) => r.join(TARGET_LOCK_ROOT.trim_start_matches('/')),
        None if Path::new(TARGET_LOCK_ROOT)
            .parent()
            .is_some_and(Path::is_dir) =>
        {
            PathBuf::from(TARGET_LOCK_ROOT)
        }
        // A system without /run/lock: the temp dir is machine-wide too.
        None => std::env::temp_dir().join("duplicity-charm-locks"),
    };
    let uid = rustix::process::geteuid().as_raw();
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { path, source }
    };
    if root.is_some() {
        if let Some(parent) = top.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
    }
    make_dir(&top, 0o1777).map_err(io_err(&top))?;
    check_dir(&top, uid, true)?;
    let mine = top.join(uid.to_string());
    make_dir(&mine, 0o700).map_err(io_err(&mine))?;
    check_dir(&mine, uid, false)?;
    Ok(mine.join(format!(
        "{}.lock",
        hex::encode(Md5::digest(target.as_bytes()))
    )))
}

/// Creates `dir` with exactly `mode` (whatever the umask) if it is missing.
fn make_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn check_dir(dir: &Path, uid: u32, shared: bool) -> Result<(), LockError> {
    let unsafe_dir = |problem: &str| LockError::UnsafeDir {
        path: dir.to_path_buf(),
        problem: problem.to_string(),
    };
    let md = fs::symlink_metadata(dir).map_err(|source| LockError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !md.is_dir() {
        return Err(unsafe_dir("it is not a directory; remove it"));
    }
    let mode = md.mode() & 0o7777;
    if shared {
        if md.uid() != 0 && md.uid() != uid {
            return Err(unsafe_dir("another user owns it; remove it"));
        }
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(unsafe_dir(
                "it is world-writable without the sticky bit; chmod 1777 it",
            ));
        }
    } else {
        if md.uid() != uid {
            return Err(unsafe_dir("another user owns it; remove it"));
        }
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
                LockError::Io {
                    path: dir.to_path_buf(),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("target.lock");
        let held = HeldLock::acquire(&p, "the archive dir x", Duration::ZERO, "backup").unwrap();
        assert!(held.taken_over.is_none());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // OFD locks belong to the open file, so a second open in this process contends.
        let e = HeldLock::acquire(&p, "the archive dir x", Duration::from_millis(250), "other")
            .unwrap_err();
        let LockError::Busy { holder, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(holder.pid, Some(std::process::id()));
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "another run (pid {}, started 20",
                std::process::id()
            )),
            "{msg}"
        );
        assert!(
            msg.contains(") holds the lock on the archive dir x; wait for it to finish or stop it"),
            "{msg}"
        );
        drop(held);
        // Released cleanly: the file is empty, so the next taker takes nothing over.
        assert_eq!(fs::read(&p).unwrap(), b"");
        let again = HeldLock::acquire(&p, "x", Duration::ZERO, "backup").unwrap();
        assert!(again.taken_over.is_none());
    }

    #[test]
    fn a_file_naming_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lockfile");
        fs::write(
            &p,
            "pid=999999\nstarted=2026-01-01T00:00:00Z\ncommand=backup\n",
        )
        .unwrap();
        let held = HeldLock::acquire(&p, "x", Duration::ZERO, "cleanup --force").unwrap();
        let old = held.taken_over.clone().unwrap();
        assert_eq!(old.pid, Some(999999));
        assert_eq!(
            old.pid_and_start(),
            "pid 999999, started 2026-01-01T00:00:00Z"
        );
        let text = fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(&format!("pid={}\n", std::process::id())),
            "{text}"
        );
        assert!(text.contains("command=cleanup --force\n"), "{text}");
    }

    #[test]
    fn a_removed_lock_file_is_not_trusted() {
        // Stock duplicity deletes its lock file on exit; a lock on the unlinked file must not count.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lockfile");
        let held = HeldLock::acquire(&p, "x", Duration::ZERO, "a").unwrap();
        fs::remove_file(&p).unwrap();
        let second = HeldLock::acquire(&p, "x", Duration::ZERO, "b").unwrap();
        let meta = fs::metadata(&p).unwrap();
        assert_eq!(meta.ino(), second.file.metadata().unwrap().ino());
        drop(held);
    }

    #[test]
    fn target_locks_live_in_a_private_per_user_dir_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let p = target_lock_path_under(Some(dir.path()), "sftp://u@127.0.0.1/backups").unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let top = dir.path().join("run/lock/duplicity-charm");
        assert_eq!(p.parent().unwrap(), top.join(uid.to_string()));
        assert!(p.file_name().unwrap().to_str().unwrap().ends_with(".lock"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&top), 0o1777);
        assert_eq!(mode(&top.join(uid.to_string())), 0o700);
        // The same target, the same file; the name carries no part of the URL.
        let again = target_lock_path_under(Some(dir.path()), "sftp://u@127.0.0.1/backups");
        assert_eq!(again.unwrap(), p);
        assert!(!p.to_string_lossy().contains("127.0.0.1"));
    }
}
