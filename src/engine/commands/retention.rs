//! Retention and cleanup, planned then applied: `remove-older-than`, `remove-all-but-n-full`,
//! `remove-all-inc-of-but-n-full` and `cleanup` first compute a [`Plan`] (every file to delete, with
//! its reason) from the [`Collection`]; without `--force` the plan is only shown, with it the plan is
//! applied. The charm shows the same plan as JSON.
//!
//! The choice of files is duplicity 0.8.22's (`remove_old`, `cleanup`, `get_extraneous`), so both tools
//! leave the same files on the same collection; the archive dir (local cache) is kept in step by
//! deleting the copies of deleted remote files, as duplicity's `BackupSet.delete` does. Deliberate
//! differences, all on the side of keeping data:
//! - the newest backup chain and its signatures are never deleted, even when no signature chain
//!   matches it (duplicity then deletes every chain older than the time);
//! - only remote signature chains count: duplicity also lists the archive dir's copy of the active
//!   signature chain, and with a time after the active chain's end it deletes the *remote* signatures
//!   of the active chain (the local copy is the one it keeps), which breaks the next incremental;
//! - `cleanup` also removes what an interrupted run of ours leaves: the signature file of a set
//!   without manifest, `.NAME.part` uploads of the file backend, and work directories in the archive
//!   dir whose process is gone.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::backend::Backend;
use crate::engine::archive::names::{self, NameKind};
use crate::engine::collection::{BackupChain, BackupSet, Collection, SignatureChain};
use crate::engine::commands::json;
use crate::engine::timestr::asctime_local;

/// Prefix of the work directories a backup makes in the archive dir: `duplicity-charm-<pid>-<random>`.
pub const WORK_DIR_PREFIX: &str = "duplicity-charm-";

/// Which retention command, with its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionCommand {
    RemoveOlderThan { time: i64 },
    RemoveAllButNFull { n: usize },
    RemoveAllIncOfButNFull { n: usize },
    Cleanup,
}

impl RetentionCommand {
    pub fn name(&self) -> &'static str {
        match self {
            RetentionCommand::RemoveOlderThan { .. } => "remove-older-than",
            RetentionCommand::RemoveAllButNFull { .. } => "remove-all-but-n-full",
            RetentionCommand::RemoveAllIncOfButNFull { .. } => "remove-all-inc-of-but-n-full",
            RetentionCommand::Cleanup => "cleanup",
        }
    }
}

/// Where a file to delete lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Remote,
    ArchiveDir,
}

/// Why a file is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Part of a backup chain ending at `end`, older than the removal time.
    OldChain { end: i64 },
    /// An incremental of an old chain (remove-all-inc-of-but-n-full keeps the full).
    OldIncremental { end: i64 },
    /// Part of a signature chain ending at `end`, older than the removal time.
    OldSignatures { end: i64 },
    /// A set without a manifest (an interrupted backup), or a last inc without its signatures.
    IncompleteSet { time: i64 },
    /// A complete incremental that fits no chain.
    OrphanedSet { time: i64 },
    /// A new-signatures file that fits no signature chain.
    OrphanedSignatures,
    /// The signature file of a set that never got its manifest (an interrupted backup).
    SignaturesOfIncompleteSet { time: i64 },
    /// A `.NAME.part` upload left by an interrupted run.
    PartialUpload,
    /// A `.part` file of duplicity's in the archive dir (an interrupted duplicity backup).
    PartialCacheFile,
    /// A work directory of a backup whose process is gone.
    StaleWorkDir,
    /// The archive dir's copy of a remote file this plan deletes.
    CacheCopy,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::OldChain { .. } => "old-chain",
            Reason::OldIncremental { .. } => "old-incremental",
            Reason::OldSignatures { .. } => "old-signatures",
            Reason::IncompleteSet { .. } => "incomplete-set",
            Reason::OrphanedSet { .. } => "orphaned-set",
            Reason::OrphanedSignatures => "orphaned-signatures",
            Reason::SignaturesOfIncompleteSet { .. } => "signatures-of-incomplete-set",
            Reason::PartialUpload => "partial-upload",
            Reason::PartialCacheFile => "partial-cache-file",
            Reason::StaleWorkDir => "stale-work-dir",
            Reason::CacheCopy => "cache-copy",
        }
    }

    fn time(&self) -> Option<i64> {
        match *self {
            Reason::OldChain { end }
            | Reason::OldIncremental { end }
            | Reason::OldSignatures { end } => Some(end),
            Reason::IncompleteSet { time }
            | Reason::OrphanedSet { time }
            | Reason::SignaturesOfIncompleteSet { time } => Some(time),
            _ => None,
        }
    }
}

/// One file (or work directory) to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub location: Location,
    pub name: String,
    pub reason: Reason,
}

/// What a retention command would delete, and what duplicity would say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub command: RetentionCommand,
    /// The removal time (remove-*; 0 when fewer than N fulls exist, as duplicity).
    pub remove_time: Option<i64>,
    /// End times of the backup chains to delete (or whose incrementals go), oldest first.
    pub chain_ends: Vec<i64>,
    /// Times of sets older than the removal time that newer sets need: kept.
    pub required_sets: Vec<i64>,
    /// The active chain ends before the removal time: kept anyway.
    pub active_chain_older: bool,
    /// In deletion order: remote files (newest set first, manifest before volumes), then the archive
    /// dir's.
    pub deletions: Vec<Deletion>,
    /// Chains and sets the plan would delete but the target still locks (S3 Object Lock): kept.
    pub locked: Vec<LockedGroup>,
}

/// Files that go together (a chain, a set, a signature chain) kept because the target locks some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedGroup {
    /// Why the plan had them (the chain's end or the set's time is in it).
    pub reason: Reason,
    /// Their remote names.
    pub names: Vec<String>,
    /// The latest end of their locks (Unix seconds); `None` when one has no end (a legal hold).
    pub until: Option<i64>,
    /// The lock's mode as the target names it (of the lock that ends last).
    pub mode: String,
}

/// Computes the plan for `command` from the target's listing and the archive dir's (if any).
pub fn plan(
    command: RetentionCommand,
    remote: &[String],
    archive_dir: Option<&Path>,
) -> Result<Plan> {
    let col = Collection::from_names(remote);
    let mut p = Plan {
        command,
        remove_time: None,
        chain_ends: Vec::new(),
        required_sets: Vec::new(),
        active_chain_older: false,
        deletions: Vec::new(),
        locked: Vec::new(),
    };
    match command {
        RetentionCommand::Cleanup => plan_cleanup(&col, remote, &mut p),
        RetentionCommand::RemoveOlderThan { time } => plan_remove(&col, time, false, &mut p),
        RetentionCommand::RemoveAllButNFull { n }
        | RetentionCommand::RemoveAllIncOfButNFull { n } => {
            if n == 0 {
                bail!(
                    "{}: N must be at least 1 (the number of full backups to keep)",
                    command.name()
                );
            }
            let time = col.nth_last_full_time(n).unwrap_or(0);
            let incs_only = matches!(command, RetentionCommand::RemoveAllIncOfButNFull { .. });
            plan_remove(&col, time, incs_only, &mut p)
        }
    }
    if let Some(dir) = archive_dir {
        plan_archive_dir(dir, command == RetentionCommand::Cleanup, &mut p)?;
    }
    Ok(p)
}

/// duplicity's `remove_old`, on remote chains.
fn plan_remove(col: &Collection, t: i64, incs_only: bool, p: &mut Plan) {
    p.remove_time = Some(t);
    p.required_sets = col
        .sets_older_than_required(t)
        .iter()
        .map(|s| s.time())
        .collect();
    p.active_chain_older = col.primary_chain().is_some_and(|c| c.end < t);
    let newest_end = col.chains.last().map(|c| c.end);
    let newest = col.chains.len().checked_sub(1);
    let mut chains: Vec<&BackupChain> = col
        .chains
        .iter()
        .enumerate()
        .filter(|(i, c)| c.end < t && Some(*i) != col.primary && Some(*i) != newest)
        .map(|(_, c)| c)
        .collect();
    if incs_only {
        chains.retain(|c| !c.incs.is_empty());
    }
    if chains.is_empty() {
        return;
    }
    p.chain_ends = chains.iter().map(|c| c.end).collect();
    // Newest chain first, newest set first: an interrupted delete leaves older sets intact.
    for chain in chains.iter().rev() {
        let sets: Vec<&BackupSet> = chain.sets().collect();
        for set in sets.iter().rev() {
            if incs_only && set.is_full() {
                continue;
            }
            let reason = if incs_only {
                Reason::OldIncremental { end: chain.end }
            } else {
                Reason::OldChain { end: chain.end }
            };
            push_set(p, set, reason);
        }
    }
    let sigs: Vec<&SignatureChain> = col
        .sig_chains
        .iter()
        .enumerate()
        .filter(|(i, c)| c.end < t && Some(*i) != col.primary_sig && Some(c.end) != newest_end)
        .map(|(_, c)| c)
        .collect();
    for sc in sigs.iter().rev() {
        for f in sc.incs.iter().rev() {
            p.deletions
                .push(remote(&f.name, Reason::OldSignatures { end: sc.end }));
        }
        if !incs_only {
            p.deletions
                .push(remote(&sc.full.name, Reason::OldSignatures { end: sc.end }));
        }
    }
}

/// A set's files: its jsonstat (as duplicity 3, whose set's files include it), then the manifest (so
/// a half-done delete leaves an incomplete set, never a set that looks complete with volumes missing),
/// then volumes from the last.
fn push_set(p: &mut Plan, set: &BackupSet, reason: Reason) {
    if let Some(j) = &set.jsonstat {
        p.deletions.push(remote(j, reason));
    }
    if let Some(m) = &set.manifest {
        p.deletions.push(remote(m, reason));
    }
    for v in set.volumes.values().rev() {
        p.deletions.push(remote(v, reason));
    }
}

fn remote(name: &str, reason: Reason) -> Deletion {
    Deletion {
        location: Location::Remote,
        name: name.to_string(),
        reason,
    }
}

/// duplicity's `get_extraneous`, plus the leftovers of an interrupted run of ours.
fn plan_cleanup(col: &Collection, listing: &[String], p: &mut Plan) {
    for set in &col.orphaned_sets {
        push_set(p, set, Reason::OrphanedSet { time: set.time() });
    }
    for set in &col.incomplete_sets {
        push_set(p, set, Reason::IncompleteSet { time: set.time() });
    }
    for n in &col.orphaned_sig_names {
        p.deletions.push(remote(n, Reason::OrphanedSignatures));
    }
    let already: HashSet<String> = p.deletions.iter().map(|d| d.name.clone()).collect();
    for (name, time) in col.signatures_of_incomplete_sets(listing) {
        if !already.contains(&name) {
            p.deletions
                .push(remote(&name, Reason::SignaturesOfIncompleteSet { time }));
        }
    }
    for name in listing {
        if let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".part")) {
            if names::parse(inner).is_some() {
                p.deletions.push(remote(name, Reason::PartialUpload));
            }
        }
    }
}

fn kind_key(k: &NameKind) -> (Option<i64>, i64) {
    (k.from_time(), k.time())
}

/// The archive dir's part: copies of deleted remote sets and signature files (matched by their
/// times, as duplicity's `BackupSet.delete` matches them) and, for cleanup, partial files and stale
/// work directories.
fn plan_archive_dir(dir: &Path, cleanup: bool, p: &mut Plan) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow!(
                "cannot list the archive dir {}: {e}",
                dir.display()
            ))
        }
    };
    // Sets deleted remotely: every cached manifest or signature file with the same times goes.
    // Signature chains deleted remotely: their cached copies go.
    let mut set_keys = HashSet::new();
    let mut sig_keys = HashSet::new();
    for d in &p.deletions {
        if let Some(pn) = names::parse(&d.name) {
            if pn.kind.is_signature() {
                sig_keys.insert(kind_key(&pn.kind));
            } else {
                set_keys.insert(kind_key(&pn.kind));
            }
        } else if let Some(js) = names::parse_jsonstat(&d.name) {
            set_keys.insert((js.from, js.time));
        }
    }
    let mut local = Vec::new();
    for ent in rd {
        let ent = ent.with_context(|| format!("cannot list the archive dir {}", dir.display()))?;
        let Ok(name) = ent.file_name().into_string() else {
            continue;
        };
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            if cleanup && is_stale_work_dir(&name, &ent.path()) {
                local.push(Deletion {
                    location: Location::ArchiveDir,
                    name,
                    reason: Reason::StaleWorkDir,
                });
            }
            continue;
        }
        // The cached jsonstat copy goes with its set, as duplicity 3's `BackupSet.delete` takes it.
        let (key, partial, signature) = match names::parse(&name) {
            Some(pn) => (kind_key(&pn.kind), pn.partial, pn.kind.is_signature()),
            None => match names::parse_jsonstat(&name) {
                Some(js) => ((js.from, js.time), js.partial, false),
                None => continue,
            },
        };
        let reason = if partial {
            cleanup.then_some(Reason::PartialCacheFile)
        } else if set_keys.contains(&key) || (signature && sig_keys.contains(&key)) {
            Some(Reason::CacheCopy)
        } else {
            None
        };
        if let Some(reason) = reason {
            local.push(Deletion {
                location: Location::ArchiveDir,
                name,
                reason,
            });
        }
    }
    local.sort_by(|a, b| a.name.cmp(&b.name));
    p.deletions.extend(local);
    Ok(())
}

/// `duplicity-charm-<pid>-<random>` whose process no longer exists. Names without a pid (from older
/// builds) count as stale once a day old.
fn is_stale_work_dir(name: &str, path: &Path) -> bool {
    let Some(rest) = name.strip_prefix(WORK_DIR_PREFIX) else {
        return false;
    };
    match rest
        .split_once('-')
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
    {
        Some(pid) if pid > 0 => !process_alive(pid),
        _ => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 24 * 3600),
    }
}

fn process_alive(pid: i32) -> bool {
    // Signal 0: only checks that the process exists (EPERM: it does, another user's).
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Lists the target, plans `command` and, when `apply`, deletes the plan's files. The caller holds
/// the writer lock when applying ([`crate::engine::repository::Repository::retention`]).
pub(crate) fn run(
    command: RetentionCommand,
    backend: &dyn Backend,
    archive_dir: &Path,
    apply: bool,
) -> Result<(Plan, Option<Applied>)> {
    let listing = backend
        .list()
        .with_context(|| format!("cannot list {}", backend.describe()))?;
    // Locks first: the archive dir keeps its copies of what the target keeps.
    let mut plan = plan(command, &listing, None)?;
    hold_locked(&mut plan, backend)?;
    plan_archive_dir(archive_dir, command == RetentionCommand::Cleanup, &mut plan)?;
    let applied = if apply {
        Some(
            self::apply(&plan, backend, Some(archive_dir))
                .with_context(|| format!("{} on {} failed", command.name(), backend.describe()))?,
        )
    } else {
        None
    };
    Ok((plan, applied))
}

/// Moves out of the plan every group of remote files (a backup chain, a set, a signature chain, as
/// the deletion's reason says) of which the target still locks one file (S3 Object Lock): deleting
/// part of a chain would leave the rest unusable, and on a versioned bucket a delete only hides a
/// locked file behind a delete marker. Asks the backend about each file it would delete.
pub fn hold_locked(plan: &mut Plan, backend: &dyn Backend) -> Result<()> {
    // Groups in plan order: a chain's files share the reason (and its time).
    let mut groups: Vec<(Reason, Vec<usize>)> = Vec::new();
    for (i, d) in plan.deletions.iter().enumerate() {
        if d.location != Location::Remote {
            continue;
        }
        let grouped = d.reason.time().is_some();
        match groups.iter_mut().find(|(r, _)| grouped && *r == d.reason) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((d.reason, vec![i])),
        }
    }
    let mut held: HashSet<usize> = HashSet::new();
    for (reason, idx) in groups {
        let mut lock: Option<crate::backend::StoredLock> = None;
        for &i in &idx {
            let name = &plan.deletions[i].name;
            let found = backend.stored_lock(name).with_context(|| {
                format!(
                    "cannot read the retention lock of {name} on {}",
                    backend.describe()
                )
            })?;
            if let Some(f) = found {
                // Keep the lock that ends last (no end beats any date).
                let later = match (&lock, f.until) {
                    (None, _) => true,
                    (Some(l), _) if l.until.is_none() => false,
                    (Some(_), None) => true,
                    (Some(l), Some(u)) => Some(u) > l.until,
                };
                if later {
                    lock = Some(f);
                }
            }
        }
        if let Some(l) = lock {
            held.extend(idx.iter().copied());
            plan.locked.push(LockedGroup {
                reason,
                names: idx
                    .iter()
                    .map(|&i| plan.deletions[i].name.clone())
                    .collect(),
                until: l.until,
                mode: l.mode,
            });
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    let mut i = 0;
    plan.deletions.retain(|_| {
        i += 1;
        !held.contains(&(i - 1))
    });
    // A chain kept whole is no longer one "to delete".
    let deleted_chain = |end: i64, p: &Plan| {
        p.deletions.iter().any(|d| {
            matches!(d.reason, Reason::OldChain { end: e } | Reason::OldIncremental { end: e } if e == end)
        })
    };
    let ends = std::mem::take(&mut plan.chain_ends);
    plan.chain_ends = ends
        .into_iter()
        .filter(|&e| deleted_chain(e, plan))
        .collect();
    Ok(())
}

/// "until <time> (MODE)" for a lock.
fn lock_words(g: &LockedGroup) -> String {
    match g.until {
        Some(t) => format!("until {} ({})", asctime_local(t), g.mode),
        None => format!("with no end date ({}; lifted only by hand)", g.mode),
    }
}

impl LockedGroup {
    /// One line for a person: what is kept and until when.
    pub fn describe(&self) -> String {
        let what = match self.reason {
            Reason::OldChain { end } => format!("Backup chain ending {}", asctime_local(end)),
            Reason::OldIncremental { end } => format!(
                "The incrementals of the backup chain ending {}",
                asctime_local(end)
            ),
            Reason::OldSignatures { end } => {
                format!("Signature chain ending {}", asctime_local(end))
            }
            Reason::IncompleteSet { time } | Reason::OrphanedSet { time } => {
                format!("Backup set of {}", asctime_local(time))
            }
            Reason::SignaturesOfIncompleteSet { time } => {
                format!("Signatures of the set of {}", asctime_local(time))
            }
            _ => self.names.join(", "),
        };
        format!(
            "{what} ({} {}) is locked on the target {}: not deleted; it can go once the lock ends.",
            self.names.len(),
            if self.names.len() == 1 {
                "file"
            } else {
                "files"
            },
            lock_words(self)
        )
    }
}

/// Test only (cargo feature `test-hooks`): `DUPLICITY_CHARM_TEST_KILL_AT=retention-after-delete-N` kills
/// this process (SIGKILL) once the first N remote files of a plan are deleted, so tests can interrupt a
/// retention at an exact place.
#[cfg(feature = "test-hooks")]
fn test_kill_after_deletes() -> Option<usize> {
    std::env::var("DUPLICITY_CHARM_TEST_KILL_AT")
        .ok()?
        .strip_prefix("retention-after-delete-")?
        .parse()
        .ok()
}

#[cfg(not(feature = "test-hooks"))]
fn test_kill_after_deletes() -> Option<usize> {
    None
}

/// What applying a plan did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub remote_deleted: usize,
    pub archive_dir_deleted: usize,
}

/// Deletes the plan's files: remote ones through the backend, then the archive dir's. Refuses any
/// remote name that is not duplicity's (or our `.NAME.part`), whatever the plan says.
pub fn apply(plan: &Plan, backend: &dyn Backend, archive_dir: Option<&Path>) -> Result<Applied> {
    let mut remote_names = Vec::new();
    for d in plan
        .deletions
        .iter()
        .filter(|d| d.location == Location::Remote)
    {
        let ours = names::parse(&d.name).is_some()
            || names::parse_jsonstat(&d.name).is_some()
            || d.name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".part"))
                .is_some_and(|n| names::parse(n).is_some());
        if !ours {
            bail!("refusing to delete {}: it is not a duplicity file", d.name);
        }
        remote_names.push(d.name.clone());
    }
    if let Some(n) = test_kill_after_deletes().filter(|n| *n < remote_names.len()) {
        backend.delete(&remote_names[..n])?;
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
    backend
        .delete(&remote_names)
        .with_context(|| format!("cannot delete from {}", backend.describe()))?;
    let mut applied = Applied {
        remote_deleted: remote_names.len(),
        ..Default::default()
    };
    if let Some(dir) = archive_dir {
        for d in plan
            .deletions
            .iter()
            .filter(|d| d.location == Location::ArchiveDir)
        {
            if d.name.contains('/') || d.name.starts_with('.') {
                bail!("refusing to delete {:?} from the archive dir", d.name);
            }
            let path = dir.join(&d.name);
            let r = if d.reason == Reason::StaleWorkDir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match r {
                Ok(()) => applied.archive_dir_deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => bail!("cannot delete {} from the archive dir: {e}", path.display()),
            }
        }
    }
    Ok(applied)
}

fn times(ts: &[i64]) -> String {
    ts.iter()
        .map(|t| asctime_local(*t))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Plan {
    pub fn remote_names(&self) -> Vec<&str> {
        self.deletions
            .iter()
            .filter(|d| d.location == Location::Remote)
            .map(|d| d.name.as_str())
            .collect()
    }

    /// duplicity's messages for this plan (`force` = it is being applied), then the files, one a line.
    pub fn render(&self, force: bool) -> String {
        let mut l: Vec<String> = Vec::new();
        let n_files = self.deletions.len();
        if self.command == RetentionCommand::Cleanup {
            let names: Vec<String> = self
                .deletions
                .iter()
                .map(|d| match d.location {
                    Location::Remote => d.name.clone(),
                    Location::ArchiveDir => format!("{} (archive dir)", d.name),
                })
                .collect();
            l.extend(self.locked.iter().map(LockedGroup::describe));
            if names.is_empty() {
                l.push("No extraneous files found, nothing deleted in cleanup.".into());
            } else if force {
                l.push(
                    if n_files == 1 {
                        "Deleting this file from backend:"
                    } else {
                        "Deleting these files from backend:"
                    }
                    .into(),
                );
                l.push(names.join("\n"));
            } else {
                l.push(
                    if n_files == 1 {
                        "Found the following file to delete:"
                    } else {
                        "Found the following files to delete:"
                    }
                    .into(),
                );
                l.push(names.join("\n"));
                l.push("Run duplicity again with the --force option to actually delete.".into());
            }
            return l.join("\n") + "\n";
        }
        if !self.required_sets.is_empty() {
            l.push(format!(
                "There are backup set(s) at time(s):\n{}\nWhich can't be deleted because newer sets depend on them.",
                times(&self.required_sets)
            ));
        }
        l.extend(self.locked.iter().map(LockedGroup::describe));
        if self.active_chain_older {
            l.push("Current active backup chain is older than specified time.  However, it will not be deleted.  To remove all your backups, manually purge the repository.".into());
        }
        if self.chain_ends.is_empty() {
            l.push("No old backup sets found, nothing deleted.".into());
            return l.join("\n") + "\n";
        }
        let many = self.chain_ends.len() != 1;
        if force {
            l.push(
                if many {
                    "Deleting backup chains at times:"
                } else {
                    "Deleting backup chain at time:"
                }
                .into(),
            );
            l.push(times(&self.chain_ends));
        } else {
            l.push(
                if many {
                    "Found old backup chains at the following times:"
                } else {
                    "Found old backup chain at the following time:"
                }
                .into(),
            );
            l.push(times(&self.chain_ends));
            l.push("Rerun command with --force option to actually delete.".into());
        }
        l.push(format!(
            "{} {} {}:",
            if force { "Deleting" } else { "Would delete" },
            n_files,
            if n_files == 1 { "file" } else { "files" }
        ));
        for d in &self.deletions {
            l.push(match d.location {
                Location::Remote => format!("    {}", d.name),
                Location::ArchiveDir => format!("    {} (archive dir)", d.name),
            });
        }
        l.join("\n") + "\n"
    }

    /// The plan (and, once applied, the result) as one JSON object.
    pub fn render_json(&self, applied: Option<&Applied>) -> String {
        let dels: Vec<_> = self
            .deletions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "location": match d.location {
                        Location::Remote => "remote",
                        Location::ArchiveDir => "archive-dir",
                    },
                    "name": d.name,
                    "reason": d.reason.code(),
                    "time": json::opt_time(d.reason.time()),
                })
            })
            .collect();
        let applied = applied.map(|a| {
            serde_json::json!({
                "remote_deleted": a.remote_deleted,
                "archive_dir_deleted": a.archive_dir_deleted,
            })
        });
        let times = |ts: &[i64]| ts.iter().map(|t| json::time(*t)).collect::<Vec<_>>();
        let locked: Vec<_> = self
            .locked
            .iter()
            .map(|g| {
                serde_json::json!({
                    "reason": g.reason.code(),
                    "time": json::opt_time(g.reason.time()),
                    "names": g.names,
                    "locked_until": json::opt_time(g.until),
                    "mode": g.mode,
                })
            })
            .collect();
        json::line(&serde_json::json!({
            "command": self.command.name(),
            "remove_time": json::opt_time(self.remove_time),
            "chains": times(&self.chain_ends),
            "required_sets": times(&self.required_sets),
            "active_chain_older": self.active_chain_older,
            "deletions": dels,
            "locked": locked,
            "applied": applied,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::collection::fixture::{full, inc, T0};

    /// full t0, inc, inc, full t0+1000, inc, full t0+2000, and a stranger.
    fn example() -> Vec<String> {
        [
            full(T0),
            inc(T0, T0 + 100),
            inc(T0 + 100, T0 + 200),
            full(T0 + 1000),
            inc(T0 + 1000, T0 + 1100),
            full(T0 + 2000),
            vec!["notes.txt".to_string()],
        ]
        .concat()
    }

    fn left(listing: &[String], p: &Plan) -> Vec<String> {
        let gone: HashSet<&str> = p.remote_names().into_iter().collect();
        listing
            .iter()
            .filter(|n| !gone.contains(n.as_str()))
            .cloned()
            .collect()
    }

    #[test]
    fn remove_older_than_deletes_whole_old_chains_only() {
        let l = example();
        let p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 1050 },
            &l,
            None,
        )
        .unwrap();
        assert_eq!(p.chain_ends, [T0 + 200]);
        assert_eq!(p.required_sets, [T0 + 1000]);
        assert_eq!(p.deletions.len(), 9);
        assert_eq!(
            left(&l, &p),
            [
                full(T0 + 1000),
                inc(T0 + 1000, T0 + 1100),
                full(T0 + 2000),
                vec!["notes.txt".into()]
            ]
            .concat()
        );
        // Manifest first within each set, newest set first.
        assert!(p.deletions[0]
            .name
            .contains("inc.20231114T221500Z.to.20231114T221640Z.manifest"));
        let text = p.render(false);
        assert!(text.contains("Found old backup chain at the following time:\n"));
        assert!(text.contains("Which can't be deleted because newer sets depend on them."));
        assert!(p.render_json(None).contains("\"reason\":\"old-chain\""));
    }

    #[test]
    fn never_the_newest_chain_even_without_signatures() {
        let mut l = example();
        l.retain(|n| !n.contains("signatures"));
        let p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 9999 },
            &l,
            None,
        )
        .unwrap();
        assert!(
            left(&l, &p)
                .iter()
                .any(|n| n.contains("full.20231114T224640Z")),
            "{:?}",
            p.deletions
        );
        let l = example();
        let p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 9999 },
            &l,
            None,
        )
        .unwrap();
        assert!(p.active_chain_older);
        assert_eq!(
            left(&l, &p),
            [full(T0 + 2000), vec!["notes.txt".into()]].concat()
        );
    }

    #[test]
    fn n_full_variants() {
        let l = example();
        let p = plan(RetentionCommand::RemoveAllButNFull { n: 2 }, &l, None).unwrap();
        assert_eq!(p.remove_time, Some(T0 + 1000));
        assert_eq!(p.chain_ends, [T0 + 200]);
        let p = plan(RetentionCommand::RemoveAllButNFull { n: 9 }, &l, None).unwrap();
        assert_eq!(p.remove_time, Some(0));
        assert!(p.deletions.is_empty());
        let p = plan(RetentionCommand::RemoveAllIncOfButNFull { n: 1 }, &l, None).unwrap();
        let rest = left(&l, &p);
        assert_eq!(
            rest,
            [
                full(T0),
                full(T0 + 1000),
                full(T0 + 2000),
                vec!["notes.txt".into()]
            ]
            .concat()
        );
        assert!(plan(RetentionCommand::RemoveAllButNFull { n: 0 }, &l, None).is_err());
    }

    #[test]
    fn cleanup_takes_extraneous_and_interrupted_leftovers() {
        let mut l = example();
        // A dead inc after the last full: volume and signatures, no manifest.
        let dead = inc(T0 + 2000, T0 + 2100);
        l.push(dead[0].clone());
        l.push(dead[2].clone());
        l.push(format!(".{}.part", inc(T0 + 2000, T0 + 2200)[0]));
        l.push(".hidden.part".into());
        let p = plan(RetentionCommand::Cleanup, &l, None).unwrap();
        let names = p.remote_names();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&dead[0].as_str()) && names.contains(&dead[2].as_str()));
        assert!(!names.contains(&"notes.txt") && !names.contains(&".hidden.part"));
        let clean = plan(RetentionCommand::Cleanup, &example(), None).unwrap();
        assert_eq!(
            clean.render(false),
            "No extraneous files found, nothing deleted in cleanup.\n"
        );
    }

    /// A target that locks the names it is given until `until` (and lists nothing).
    struct Locking {
        locked: Vec<String>,
        until: Option<i64>,
    }

    impl Backend for Locking {
        fn put(&self, _: &Path, _: &str) -> crate::backend::BackendResult<()> {
            Ok(())
        }
        fn get(&self, _: &str, _: &Path) -> crate::backend::BackendResult<()> {
            Ok(())
        }
        fn list(&self) -> crate::backend::BackendResult<Vec<String>> {
            Ok(Vec::new())
        }
        fn delete(&self, _: &[String]) -> crate::backend::BackendResult<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "locking".into()
        }
        fn stored_lock(
            &self,
            name: &str,
        ) -> crate::backend::BackendResult<Option<crate::backend::StoredLock>> {
            Ok(self
                .locked
                .iter()
                .any(|n| n == name)
                .then(|| crate::backend::StoredLock {
                    until: self.until,
                    mode: "COMPLIANCE".into(),
                }))
        }
    }

    #[test]
    fn locked_chains_and_sets_are_kept_whole_with_their_lock_end() {
        let l = example();
        let until = T0 + 5_000_000;
        // One volume of the old chain's last inc is locked: the whole chain stays.
        let b = Locking {
            locked: vec![inc(T0 + 100, T0 + 200)[0].clone()],
            until: Some(until),
        };
        let mut p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 1050 },
            &l,
            None,
        )
        .unwrap();
        let before = p.deletions.len();
        hold_locked(&mut p, &b).unwrap();
        assert!(p.chain_ends.is_empty(), "{:?}", p.chain_ends);
        assert_eq!(p.locked.len(), 1, "{:?}", p.locked);
        assert_eq!(p.locked[0].until, Some(until));
        assert_eq!(p.locked[0].reason, Reason::OldChain { end: T0 + 200 });
        // The chain's sets went to `locked`; its signature chain (not locked) may still go.
        assert_eq!(before - p.deletions.len(), p.locked[0].names.len());
        assert!(p
            .deletions
            .iter()
            .all(|d| !matches!(d.reason, Reason::OldChain { .. })));
        let text = p.render(true);
        assert!(
            text.contains(&format!(
                "is locked on the target until {} (COMPLIANCE)",
                asctime_local(until)
            )),
            "{text}"
        );
        assert!(text.contains("No old backup sets found"), "{text}");
        let json = p.render_json(None);
        assert!(json.contains("\"locked\":[{"), "{json}");
        assert!(json.contains("\"mode\":\"COMPLIANCE\""), "{json}");

        // Nothing locked: the plan is unchanged.
        let mut q = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 1050 },
            &l,
            None,
        )
        .unwrap();
        let free = Locking {
            locked: vec![],
            until: None,
        };
        hold_locked(&mut q, &free).unwrap();
        assert_eq!(q.chain_ends, [T0 + 200]);
        assert!(q.locked.is_empty());

        // Cleanup: a locked incomplete set (legal hold, no end) is kept and said so.
        let mut l = example();
        let dead = inc(T0 + 2000, T0 + 2100);
        l.push(dead[0].clone());
        l.push(dead[2].clone());
        let held = Locking {
            locked: vec![dead[0].clone()],
            until: None,
        };
        let mut c = plan(RetentionCommand::Cleanup, &l, None).unwrap();
        hold_locked(&mut c, &held).unwrap();
        assert!(!c.remote_names().contains(&dead[0].as_str()));
        assert!(c
            .render(false)
            .contains("is locked on the target with no end date"));
    }

    #[test]
    fn archive_dir_follows_and_stale_work_dirs_go() {
        let d = tempfile::tempdir().unwrap();
        let l = example();
        for n in [&full(T0)[1], &inc(T0, T0 + 100)[1], &full(T0 + 2000)[1]] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        fs::write(
            d.path()
                .join("duplicity-full-signatures.20231114T221320Z.sigtar.gz"),
            b"",
        )
        .unwrap();
        fs::create_dir(d.path().join(format!("{WORK_DIR_PREFIX}999999999-abc"))).unwrap();
        fs::create_dir(
            d.path()
                .join(format!("{WORK_DIR_PREFIX}{}-abc", std::process::id())),
        )
        .unwrap();
        let p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 1050 },
            &l,
            Some(d.path()),
        )
        .unwrap();
        let local: Vec<&str> = p
            .deletions
            .iter()
            .filter(|x| x.location == Location::ArchiveDir)
            .map(|x| x.name.as_str())
            .collect();
        assert_eq!(local.len(), 3, "{local:?}");
        let p = plan(RetentionCommand::Cleanup, &l, Some(d.path())).unwrap();
        assert_eq!(p.deletions.len(), 1);
        assert_eq!(p.deletions[0].reason, Reason::StaleWorkDir);
    }

    #[test]
    fn jsonstat_files_go_with_their_sets_and_cache_copies() {
        use crate::engine::timestr::format_timestamp as ts;
        let full_stat = |t: i64| format!("duplicity-full.{}.jsonstat.gz", ts(t));
        let inc_stat = |f: i64, t: i64| format!("duplicity-inc.{}.to.{}.jsonstat.gz", ts(f), ts(t));
        let mut l = example();
        l.push(full_stat(T0));
        l.push(inc_stat(T0, T0 + 100));
        l.push(full_stat(T0 + 1000));
        let d = tempfile::tempdir().unwrap();
        for n in [
            full_stat(T0),
            inc_stat(T0 + 100, T0 + 200),
            full_stat(T0 + 1000),
        ] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        let p = plan(
            RetentionCommand::RemoveOlderThan { time: T0 + 1050 },
            &l,
            Some(d.path()),
        )
        .unwrap();
        let gone = p.remote_names();
        assert!(gone.contains(&full_stat(T0).as_str()), "{gone:?}");
        assert!(gone.contains(&inc_stat(T0, T0 + 100).as_str()), "{gone:?}");
        assert!(left(&l, &p).contains(&full_stat(T0 + 1000)));
        let local: Vec<&str> = p
            .deletions
            .iter()
            .filter(|x| x.location == Location::ArchiveDir)
            .map(|x| x.name.as_str())
            .collect();
        assert_eq!(
            local,
            [full_stat(T0), inc_stat(T0 + 100, T0 + 200)],
            "{local:?}"
        );
        // A jsonstat left without its set (by remove-* before this change): cleanup takes it.
        let mut l = example();
        l.push(inc_stat(T0 - 500, T0 - 400));
        let p = plan(RetentionCommand::Cleanup, &l, None).unwrap();
        assert_eq!(p.remote_names(), [inc_stat(T0 - 500, T0 - 400).as_str()]);
        assert_eq!(
            p.deletions[0].reason,
            Reason::IncompleteSet { time: T0 - 400 }
        );
    }
}
