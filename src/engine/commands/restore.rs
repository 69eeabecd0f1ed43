//! Restore a backup chain as of a time into a target directory: the full set, then each incremental
//! applied in place. Every volume's SHA1 is checked before it is decoded; decoding runs on a second
//! thread; nothing is written outside the target (no `..`, no absolute paths, never through a symlink).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{Mode, OFlags};

use crate::backend::Backend;
use crate::engine::archive::container;
use crate::engine::archive::manifest::FileAction;
use crate::engine::archive::names::{self, Storage};
use crate::engine::archive::tarfmt::{self, EntryClass, CHUNK};
use crate::engine::cache::Cache;
use crate::engine::collection::Collection;
use crate::engine::commands::list;
use crate::engine::crypto::Decryptor;
use crate::engine::delta;
use crate::engine::index::Index;
use crate::engine::meta::{self, FileType, Meta, NameCache};
use crate::engine::repository::ReadContext;
use crate::engine::selection::{ChosenPaths, RestoreFilter, Selection};
use crate::engine::stored;
use crate::engine::target_tree::{TargetTree, Walk};
use crate::engine::timestr;

/// What a restore is asked for (the keys are the repository's).
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Restore the state as of this time.
    pub time: i64,
    /// `--file-to-restore`: only this path (file or directory) of the backup, restored as the target.
    pub path: Option<Index>,
    /// Allow a target that exists and is not empty (files in it are replaced).
    pub force: bool,
    /// Called after each volume is applied.
    pub progress: Option<RestoreProgressFn>,
    /// Set owners as recorded (duplicity's default; only as root). False: `--no-restore-ownership`,
    /// files belong to who restores them.
    pub restore_ownership: bool,
    /// `--numeric-owner`: owners by the recorded numbers, not by the recorded user and group names.
    pub numeric_owner: bool,
    /// `--rename FROM TO`: FROM (a file or directory of the backup, and what is below it) is restored
    /// as TO, both relative to the restore's root.
    pub rename: Vec<(Index, Index)>,
    /// Restore only what this selection selects, as duplicity 3.2.1 filters a restore (made by
    /// [`Selection::for_restore`]; not with `path`). It is decided on the backup's state at `time`, read
    /// from the signature chain (brought into the archive dir first); volumes holding nothing
    /// selected are not downloaded.
    pub selection: Option<Selection>,
    /// `--ignore-errors`, as duplicity 3.2.1's: a missing volume or one failing its SHA1 check is
    /// skipped, and failing to set a file's owner, mode or times is a warning. Everything else is
    /// restored; each file left out is removed from the target (never left partly written or at a
    /// half-applied delta) and named in [`RestoreReport::warnings`].
    pub ignore_errors: bool,
}

/// A volume applied, as reported to [`RestoreOptions::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreProgress {
    /// Volumes applied so far, of `volumes`.
    pub done: u64,
    pub volumes: u64,
    /// File bytes written so far.
    pub bytes: u64,
}

pub type RestoreProgressFn = std::sync::Arc<dyn Fn(&RestoreProgress) + Send + Sync>;

#[derive(Debug, Default, Clone)]
pub struct RestoreReport {
    /// The sets applied, by time (full first).
    pub set_times: Vec<i64>,
    pub volumes: u64,
    pub files: u64,
    pub bytes: u64,
    /// Entries that could not be put back exactly (e.g. devices when not root).
    pub notes: Vec<String>,
    /// With `ignore_errors`: each error that was let pass, naming the volume or file it cost.
    pub warnings: Vec<String>,
    /// With `ignore_errors`: the volumes skipped and the files named as not restored.
    pub lost_volumes: u64,
    pub lost_files: u64,
}

/// A stored set to apply: its manifest and volume files.
struct SetFiles {
    time: i64,
    manifest: String,
    volumes: BTreeMap<u32, String>,
}

/// Restores as `opts` says, from the repository's target with its keys.
pub(crate) fn restore(ctx: &ReadContext, opts: &RestoreOptions) -> Result<RestoreReport> {
    let backend = ctx.backend;
    let decryptor = &ctx.decryptor;
    let mut remote = backend.list().context("cannot list the target")?;
    let mut notes = Vec::new();
    // Manifests first: they say which volumes hold what, and their hashes. On an append-only target
    // a manifest upload cut half-way stays under its final name: its set never completed, so it is
    // left out (as a set without a manifest is) and the sets are chosen again.
    let (collection, sets, manifests) = loop {
        let collection = Collection::from_names(&remote);
        let sets = restore_sets(&collection, opts.time)?;
        let mut manifests = Vec::new();
        let mut cut = None;
        for set in &sets {
            match stored::read_manifest(backend, &set.manifest, decryptor) {
                Ok(m) => manifests.push(m),
                Err(e) => {
                    let e = crate::engine::error::Error::classify(e);
                    if !ctx.append_only || e.kind() != crate::engine::error::ErrorKind::Corrupt {
                        return Err(e.into_anyhow());
                    }
                    cut = Some(set.manifest.clone());
                    break;
                }
            }
        }
        match cut {
            Some(name) => remote.retain(|n| *n != name),
            None => break (collection, sets, manifests),
        }
    };
    if let Some(state) = sets.last().map(|s| s.time) {
        notes.extend(cut_set_notes(&collection, state, opts.time, "restoring"));
    }
    let chosen = match &opts.selection {
        Some(sel) => Some(chosen_paths(ctx, sel, opts)?),
        None => None,
    };

    let mut plan = Vec::new();
    for (set, mut m) in sets.iter().zip(manifests) {
        let mut vols = Vec::new();
        for v in &m.volumes {
            if let Some(p) = &opts.path {
                if !v.may_contain(p) {
                    continue;
                }
            }
            if let Some(c) = &chosen {
                if !c.any_between(&v.start, &v.end) {
                    continue;
                }
            }
            let job = match (set.volumes.get(&v.number), &v.sha1) {
                (Some(name), Some(sha1)) => (name.clone(), Ok(sha1.clone())),
                (None, _) => {
                    let why = format!(
                        "volume {} of the set {} is missing from the target",
                        v.number, set.manifest
                    );
                    if !opts.ignore_errors {
                        bail!("{why}: that set cannot be restored (--ignore-errors restores the rest)");
                    }
                    (format!("volume {} of {}", v.number, set.manifest), Err(why))
                }
                (Some(name), None) => {
                    let why = format!(
                        "{} has no Hash SHA1 for volume {}: the manifest is damaged",
                        set.manifest, v.number
                    );
                    if !opts.ignore_errors {
                        bail!("{why}");
                    }
                    // A volume that cannot be checked is not trusted: skipped as a damaged one.
                    (name.clone(), Err(why))
                }
            };
            vols.push(PlannedVolume {
                name: job.0,
                check: job.1,
                start: v.start.clone(),
                end: v.end.clone(),
            });
        }
        // The set's file list names what a skipped volume held (empty when the manifest has none).
        plan.push((set.time, vols, std::mem::take(&mut m.files)));
    }

    prepare_target(&opts.target, opts.path.is_some(), opts.force)?;
    let mut applier = Applier::new(opts.target.clone(), opts.path.clone())?;
    applier.chown = applier.as_root && opts.restore_ownership;
    applier.names.numeric = opts.numeric_owner;
    applier.rename.clone_from(&opts.rename);
    applier.chosen = chosen;
    applier.ignore_errors = opts.ignore_errors;
    let mut report = RestoreReport {
        notes,
        ..RestoreReport::default()
    };

    std::thread::scope(|scope| -> Result<()> {
        let all: Vec<(String, Result<String, String>)> = plan
            .iter()
            .flat_map(|(_, v, _)| v.iter().map(|p| (p.name.clone(), p.check.clone())))
            .collect();
        let total_volumes = all.len() as u64;
        let rx = spawn_decoder(scope, backend, all, decryptor, opts.ignore_errors);
        for (time, vols, files) in &plan {
            report.set_times.push(*time);
            for vol in vols {
                let name = &vol.name;
                let mut reader = VolumeReader {
                    rx: &rx,
                    buf: Vec::new(),
                    pos: 0,
                    done: false,
                };
                let lost = reader
                    .lost()
                    .with_context(|| format!("cannot read {name}"))?;
                if let Some(why) = lost {
                    applier.volume_lost(vol, &why, files)?;
                    report.lost_volumes += 1;
                } else {
                    applier
                        .apply_volume(&mut reader)
                        .with_context(|| format!("cannot restore from {name}"))?;
                    io::copy(&mut reader, &mut io::sink())
                        .with_context(|| format!("cannot read {name}"))?;
                    report.volumes += 1;
                }
                if let Some(report_progress) = &opts.progress {
                    report_progress(&RestoreProgress {
                        // Skipped volumes count as done: the bar still ends full.
                        done: report.volumes + report.lost_volumes,
                        volumes: total_volumes,
                        bytes: applier.bytes,
                    });
                }
            }
        }
        Ok(())
    })?;
    applier.finish()?;
    if applier.wanted_found == 0 {
        if let Some(p) = &opts.path {
            if report.lost_volumes > 0 {
                // Not "not in the backup": it may have been in what was skipped.
                bail!(
                    "{p} was not restored: nothing of it was found in the volumes that could be read ({} skipped)",
                    report.lost_volumes
                );
            }
            return Err(RestoreError::NotInBackup(p.to_string()).into());
        }
    }
    if let (Some(p), 0, true) = (&opts.path, applier.files, applier.lost_files > 0) {
        // The one path asked for is all lost: that restore did nothing, whatever the option says.
        bail!("{p} could not be restored: {}", applier.warnings.join("; "));
    }
    report.files = applier.files;
    report.bytes = applier.bytes;
    report.notes.extend(applier.notes);
    report.lost_files = applier.lost_files;
    report.warnings = applier.warnings;
    Ok(report)
}

/// A volume of the plan: its stored name (or, when missing, what names it), and its SHA1 from the
/// manifest, or why it cannot be used (only with `--ignore-errors`; otherwise the restore fails).
struct PlannedVolume {
    name: String,
    check: Result<String, String>,
    /// The manifest's bounds of what it holds.
    start: Index,
    end: Index,
}

/// What `sel` selects of the backup's state at `opts.time` (from the signature chain, as
/// list-current-files lists it), as duplicity 3.2.1 filters a restore. Nothing selected is an error.
fn chosen_paths(ctx: &ReadContext, sel: &Selection, opts: &RestoreOptions) -> Result<ChosenPaths> {
    if opts.path.is_some() {
        return Err(RestoreError::SelectionWithPath.into());
    }
    if !sel.is_for_restore() {
        bail!("internal error: a restore was given a backup's file selection");
    }
    let cache = Cache::open(ctx.cache_dir.to_path_buf())?;
    let mut filter = RestoreFilter::new(sel);
    list::for_each_current_file(
        ctx.backend,
        &cache,
        &ctx.decryptor,
        opts.time,
        ctx.append_only,
        ctx.metadata,
        |f| {
            let index = if f.path == b"." {
                Index::root()
            } else {
                Index::from_trusted(f.path)
            };
            filter.offer(&index, f.ftype, f.mtime);
            Ok(())
        },
    )
    .context("cannot read the backup's file list (its signature files) to apply the selection")?;
    let chosen = filter.finish();
    if chosen.is_empty() {
        return Err(RestoreError::NothingSelected.into());
    }
    Ok(chosen)
}

/// A note for each set a read as of `time` passes over for want of a manifest (a cut upload), so the
/// operator knows why `state` (the time of the state read; `doing` says what is done with it) is older
/// than the time asked. A `state` after `time` (duplicity's fallback to the oldest chain) names every
/// such set at or before `time`.
pub(crate) fn cut_set_notes(c: &Collection, state: i64, time: i64, doing: &str) -> Vec<String> {
    let after = (state <= time).then_some(state);
    c.ignored_sets_between(after, time)
        .into_iter()
        .map(|set| {
            format!(
                "ignored the set {}: its upload was cut (no readable manifest), so it never completed; {doing} the state as of {}",
                set.label(),
                timestr::format_timestamp(state)
            )
        })
        .collect()
}

fn restore_sets(c: &Collection, time: i64) -> Result<Vec<SetFiles>> {
    let chain = c
        .restore_chain_at_time(time)
        .map_err(|e| anyhow::Error::new(e).context("nothing to restore"))?;
    // A time past a break would silently give the older state: refuse, and say how to get it.
    if let Some(b) = c.break_of(chain).filter(|b| time >= b.lost_from) {
        bail!(
            "cannot restore the state as of {}: {}. To restore the last state that can be, pass -t {}",
            timestr::format_timestamp(time),
            b.describe(),
            timestr::format_timestamp(b.chain_end)
        );
    }
    chain
        .sets_at_time(time)
        .into_iter()
        .map(|s| {
            Ok(SetFiles {
                time: s.time(),
                manifest: s.manifest.clone().ok_or_else(|| {
                    anyhow!(
                        "the set of {} has no manifest",
                        timestr::format_timestamp(s.time())
                    )
                })?,
                volumes: s.volumes.clone(),
            })
        })
        .collect()
}

/// Why a restore is refused before anything is written (callers tell these apart, e.g. for exit codes).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the restore target {target} exists{}: restore into a new directory, or pass --force to overwrite",
            if *non_empty_dir { " and is not empty" } else { "" })]
    TargetExists { target: String, non_empty_dir: bool },
    #[error("{0} not found in the backup as of that time: check the path with list-current-files")]
    NotInBackup(String),
    #[error("the file selection selects nothing in the backup as of that time, so nothing was restored: check the patterns against list-current-files (they are relative to the archive root, e.g. 'etc/app'; '**/x' does not match a top-level 'x')")]
    NothingSelected,
    #[error("--path-to-restore cannot be combined with file selection options: restore one path with --path-to-restore, or select with --include/--exclude")]
    SelectionWithPath,
}

/// The target must be new or empty, unless forced.
fn prepare_target(target: &Path, single_path: bool, force: bool) -> Result<()> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "cannot inspect the restore target {}: {e}",
            target.display()
        )),
        Ok(md) => {
            if force {
                return Ok(());
            }
            let empty_dir = md.is_dir() && fs::read_dir(target)?.next().is_none();
            if empty_dir && !single_path {
                return Ok(());
            }
            Err(RestoreError::TargetExists {
                target: target.display().to_string(),
                non_empty_dir: md.is_dir(),
            }
            .into())
        }
    }
}

enum Piece {
    Data(Vec<u8>),
    End,
    Failed(io::Error),
    /// The volume is skipped (`--ignore-errors`), for this reason; it is sent alone.
    Lost(String),
}

/// Checks and decodes the volumes in order on two threads of their own, ahead of the writer.
fn spawn_decoder<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    backend: &'s dyn Backend,
    volumes: Vec<(String, Result<String, String>)>,
    decryptor: &'s Decryptor,
    ignore_errors: bool,
) -> Receiver<Piece> {
    // Stage 1 fetches each volume and checks its SHA1 while stage 2 decodes the one before. With
    // `ignore_errors` a volume that cannot be fetched or fails its check is passed on as lost.
    let (ftx, frx) = sync_channel::<(String, Result<File>)>(1);
    scope.spawn(move || {
        for (name, check) in volumes {
            let checked = (|| -> Result<File> {
                let sha1 = check.map_err(|why| anyhow!(why))?;
                let mut file = stored::fetch(backend, &name)?;
                let got = container::sha1_of(&mut file)?;
                if got != sha1 {
                    bail!(
                        "{name} is corrupt (SHA1 {got}, manifest says {sha1}): it was damaged or tampered with"
                    );
                }
                Ok(file)
            })();
            let failed = checked.is_err() && !ignore_errors;
            if ftx.send((name, checked)).is_err() || failed {
                return;
            }
        }
    });
    let (tx, rx) = sync_channel::<Piece>(16);
    scope.spawn(move || {
        for (name, checked) in frx {
            let checked = match checked {
                Err(e) if ignore_errors => {
                    if tx.send(Piece::Lost(format!("{e:#}"))).is_err() {
                        return;
                    }
                    continue;
                }
                c => c,
            };
            let res = (|| -> Result<()> {
                let storage = names::parse(&name)
                    .map(|p| p.storage)
                    .unwrap_or(Storage::Plain);
                let mut dec = container::decode(checked?, storage, decryptor)?;
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut filled = 0;
                    while filled < buf.len() {
                        let n = dec.read(&mut buf[filled..])?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    if tx.send(Piece::Data(buf)).is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            })();
            let msg = match res {
                Ok(()) => Piece::End,
                Err(e) => Piece::Failed(io::Error::other(format!("{e:#}"))),
            };
            let failed = matches!(msg, Piece::Failed(_));
            if tx.send(msg).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// One volume's decoded bytes, from the decoder thread.
struct VolumeReader<'a> {
    rx: &'a Receiver<Piece>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for VolumeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = (self.buf.len() - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Piece::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Piece::End) => self.done = true,
                Ok(Piece::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Ok(Piece::Lost(why)) => {
                    self.done = true;
                    return Err(io::Error::other(why));
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the volume decoder stopped"));
                }
            }
        }
    }
}

impl VolumeReader<'_> {
    /// Before reading: whether the volume was skipped (and why). Its first bytes are kept to read.
    fn lost(&mut self) -> io::Result<Option<String>> {
        if self.pos >= self.buf.len() && !self.done {
            match self.rx.recv() {
                Ok(Piece::Lost(why)) => {
                    self.done = true;
                    return Ok(Some(why));
                }
                Ok(Piece::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Piece::End) => self.done = true,
                Ok(Piece::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the volume decoder stopped"));
                }
            }
        }
        Ok(None)
    }
}

/// A multivol payload being reassembled across chunks (and volumes).
enum Pending {
    Snapshot {
        rel: Index,
        file: File,
        meta: Meta,
        next: u64,
    },
    Diff {
        rel: Index,
        spool: File,
        meta: Meta,
        next: u64,
    },
}

/// Puts entries back under the target, through descriptors of the target's directories only.
struct Applier {
    tree: TargetTree,
    only: Option<Index>,
    /// A selective restore's paths: entries of other paths are skipped.
    chosen: Option<ChosenPaths>,
    names: NameCache,
    as_root: bool,
    /// Set owners: as root, unless `--no-restore-ownership`.
    chown: bool,
    /// `--rename` rules (FROM, TO).
    rename: Vec<(Index, Index)>,
    /// Directory metadata applied at the end, with the (dev, ino) of the directory restore made or kept
    /// there: it is applied to that directory only, never to whatever sits at the path by then.
    dirs: BTreeMap<Index, (Meta, (u64, u64))>,
    pending: Option<Pending>,
    files: u64,
    bytes: u64,
    wanted_found: u64,
    notes: Vec<String>,
    /// `--ignore-errors`: see [`RestoreOptions::ignore_errors`].
    ignore_errors: bool,
    /// The later chunks of this file are skipped: it was already named as not restored.
    /// The files not restored, and why; one restored by a later set leaves it. Named at the end.
    lost: BTreeMap<Index, String>,
    /// With `--ignore-errors`: the non-directory paths this restore wrote. Only those are removed when
    /// lost: a file that stood in the target before the restore (`--force` over a live tree) is left
    /// as it was rather than deleted for a volume that could not be read.
    written: BTreeSet<Index>,
    warnings: Vec<String>,
    lost_files: u64,
}

impl Applier {
    fn new(target: PathBuf, only: Option<Index>) -> Result<Applier> {
        Ok(Applier {
            tree: TargetTree::open(&target)?,
            only,
            chosen: None,
            names: NameCache::default(),
            as_root: meta::is_root(),
            chown: meta::is_root(),
            rename: Vec::new(),
            dirs: BTreeMap::new(),
            pending: None,
            files: 0,
            bytes: 0,
            wanted_found: 0,
            notes: Vec::new(),
            ignore_errors: false,
            lost: BTreeMap::new(),
            written: BTreeSet::new(),
            warnings: Vec::new(),
            lost_files: 0,
        })
    }

    /// A failure to set owner, mode or times: fatal, or with `--ignore-errors` a warning (as
    /// duplicity's), the file's data being in place.
    fn meta_done(&mut self, res: Result<()>) -> Result<()> {
        match res {
            Err(e) if self.ignore_errors => {
                self.warnings
                    .push(format!("{e:#} (ignored: --ignore-errors)"));
                Ok(())
            }
            r => r,
        }
    }

    /// With `--ignore-errors`: `rel` is not restored. Whatever is at it (an earlier set's version, a
    /// partly written file) is removed so that nothing stands there as if it were the file, and it is
    /// named.
    /// A directory is kept, with what is restored in it.
    fn lose_file(&mut self, rel: &Index, why: &str) -> Result<()> {
        if !self.written.contains(rel) {
            // Not written by this restore: what is there came before it (or nothing is).
            let why = match self.tree.parent(rel, Walk::Existing)? {
                Some((parent, name))
                    if rustix::fs::statat(
                        &*parent,
                        &name,
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .is_ok() =>
                {
                    format!("{why}; what was there before this restore is left as it was")
                }
                _ => why.to_string(),
            };
            self.lost.insert(rel.clone(), why);
            return Ok(());
        }
        if !self.is_dir(rel)? {
            if let Some((parent, name)) = self.tree.parent(rel, Walk::Existing)? {
                self.tree.clear(&parent, &name, rel)?;
                self.forget_dirs(rel);
            }
        }
        self.lost.insert(rel.clone(), why.to_string());
        Ok(())
    }

    /// Whether a real directory (not a symlink to one) is at `rel` now.
    fn is_dir(&mut self, rel: &Index) -> Result<bool> {
        Ok(match self.tree.parent(rel, Walk::Existing)? {
            Some((parent, name)) => {
                rustix::fs::statat(&*parent, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
            }
            None => false,
        })
    }

    /// `rel` was restored (or deleted, as the backup says): it is not lost any more.
    fn restored(&mut self, rel: &Index, deleted: bool) {
        if deleted {
            self.lost.retain(|k, _| !k.starts_with(rel));
        } else {
            self.lost.remove(rel);
        }
    }

    /// With `--ignore-errors`: the file being reassembled across chunks cannot be completed.
    fn abandon_pending(&mut self, why: &str) -> Result<()> {
        if let Some(p) = self.pending.take() {
            let rel = match p {
                Pending::Snapshot { rel, .. } | Pending::Diff { rel, .. } => rel,
            };
            self.lose_file(&rel, why)?;
        }
        Ok(())
    }

    /// With `--ignore-errors`: `vol` is skipped. A file whose data runs through it, and each file the
    /// set's file list (`files`) puts in its bounds, is removed and named (an earlier set's version is
    /// not the one asked for); one the list says was deleted is deleted. The volume is named with its
    /// bounds, for a manifest without a file list.
    fn volume_lost(
        &mut self,
        vol: &PlannedVolume,
        why: &str,
        files: &[(FileAction, Index)],
    ) -> Result<()> {
        self.warnings.push(format!(
            "{why}: skipped (--ignore-errors): the files from {} to {} that it holds are not restored from it",
            vol.start, vol.end
        ));
        let cut = format!("its data is in {}, which was skipped", vol.name);
        self.abandon_pending(&cut)?;
        for (action, index) in files {
            if *index < vol.start || *index > vol.end {
                continue;
            }
            let Some(rel) = self.target_rel(index.clone()) else {
                continue;
            };
            match action {
                FileAction::Deleted => {
                    if let Some((parent, name)) = self.tree.parent(&rel, Walk::Existing)? {
                        if !rel.is_root() {
                            self.tree.clear(&parent, &name, &rel)?;
                        }
                    }
                    self.forget_dirs(&rel);
                    self.restored(&rel, true);
                }
                FileAction::New | FileAction::Changed => {
                    if !self.lost.contains_key(&rel) {
                        self.lose_file(&rel, &cut)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the backup's `index` goes under the target, or None when this restore leaves it out.
    fn target_rel(&self, index: Index) -> Option<Index> {
        if self.chosen.as_ref().is_some_and(|c| !c.contains(&index)) {
            return None;
        }
        let rel = match &self.only {
            None => index,
            Some(p) => index.strip_prefix(p)?,
        };
        Some(self.renamed(rel))
    }

    /// `rel` after the `--rename` rules: the rule of its longest renamed ancestor (or itself) applies,
    /// as duplicity looks for the path, then its parents. The root is never renamed.
    fn renamed(&self, rel: Index) -> Index {
        if rel.is_root() {
            return rel;
        }
        let rule = self
            .rename
            .iter()
            .filter(|(from, _)| !from.is_root() && rel.starts_with(from))
            .max_by_key(|(from, _)| from.depth());
        match rule {
            None => rel,
            Some((from, to)) => match rel.strip_prefix(from) {
                Some(rest) if !rest.is_root() => to.join(rest.as_bytes()),
                _ => to.clone(),
            },
        }
    }

    fn path_of(&self, rel: &Index) -> PathBuf {
        self.tree.path_of(rel)
    }

    fn apply_volume(&mut self, reader: &mut VolumeReader<'_>) -> Result<()> {
        let mut ar = tarfmt::reader(reader);
        for entry in ar.entries()? {
            let mut entry = entry?;
            let (class, index) = tarfmt::parse_entry_name(&entry.path_bytes())
                .map_err(|e| anyhow!("refusing entry: {e}"))?;
            let Some(rel) = self.target_rel(index) else {
                continue;
            };
            self.wanted_found += 1;
            self.apply_entry(class, rel, &mut entry)?;
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        class: EntryClass,
        rel: Index,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        if class == EntryClass::Deleted {
            if !rel.is_root() {
                // Only through real directories: a parent missing or of another type now (a directory
                // that became a file or symlink in this set) means nothing is left to delete.
                if let Some((parent, name)) = self.tree.parent(&rel, Walk::Existing)? {
                    self.tree.clear(&parent, &name, &rel)?;
                }
                self.forget_dirs(&rel);
                self.restored(&rel, true);
            }
            return Ok(());
        }
        let meta = tarfmt::meta_from_entry(entry)?;
        match class {
            EntryClass::Snapshot
            | EntryClass::Diff
            | EntryClass::MultivolSnapshot(_)
            | EntryClass::MultivolDiff(_)
                if meta.ftype == FileType::Regular =>
            {
                self.apply_payload(class, rel, meta, entry)
            }
            EntryClass::Snapshot => self.apply_special(rel, meta),
            _ => bail!(
                "unexpected {:?} entry for a {:?} at {rel}",
                class,
                meta.ftype
            ),
        }
    }

    /// Drops the deferred metadata of `rel` and everything below it: what restore made there is gone.
    fn forget_dirs(&mut self, rel: &Index) {
        let gone: Vec<Index> = self
            .dirs
            .range(rel.clone()..)
            .take_while(|(k, _)| k.starts_with(rel))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.dirs.remove(&k);
        }
    }

    /// The directory that will hold a new non-directory entry at `rel`, with whatever was at `rel`
    /// (of any type, a directory with its contents) removed.
    fn clear_slot(&mut self, rel: &Index) -> Result<(Rc<OwnedFd>, CString)> {
        let (parent, name) = self
            .tree
            .parent(rel, Walk::Create)?
            .expect("created on the way");
        self.tree.clear(&parent, &name, rel)?;
        self.forget_dirs(rel);
        if self.ignore_errors {
            self.written.insert(rel.clone());
        }
        Ok((parent, name))
    }

    fn apply_special(&mut self, rel: Index, meta: Meta) -> Result<()> {
        if meta.ftype == FileType::Directory {
            // The root of a whole restore is the target directory; below it (or as the root of a
            // --file-to-restore), a directory replaces whatever an earlier set left there.
            let replace = !(rel.is_root() && self.only.is_none());
            let (fd, replaced) = self.tree.make_dir(&rel, replace)?;
            if replaced {
                self.forget_dirs(&rel);
            }
            let st = rustix::fs::fstat(&*fd)
                .with_context(|| format!("cannot inspect {}", self.path_of(&rel).display()))?;
            self.restored(&rel, false);
            self.dirs.insert(rel, (meta, (st.st_dev, st.st_ino)));
            return Ok(());
        }
        let shown = self.path_of(&rel);
        if matches!(meta.ftype, FileType::CharDevice | FileType::BlockDevice) && !self.as_root {
            // What an earlier set had there is gone in this one either way.
            self.clear_slot(&rel)?;
            self.notes
                .push(format!("{rel}: device not restored (needs root)"));
            self.restored(&rel, false);
            return Ok(());
        }
        let (parent, name) = self.clear_slot(&rel)?;
        let parent = parent.as_fd();
        let applied = match meta.ftype {
            FileType::Symlink => {
                rustix::fs::symlinkat(meta.link_target.as_slice(), parent, &name)
                    .with_context(|| format!("cannot create the symlink {}", shown.display()))?;
                meta::apply_symlink_meta_at(parent, &name, &meta, &mut self.names, self.chown)
            }
            FileType::Fifo => {
                meta::make_node_at(parent, &name, &meta)
                    .with_context(|| format!("cannot create {}", shown.display()))?;
                // A fifo opened for reading without blocking: its metadata goes on that descriptor.
                let fifo = rustix::fs::openat(
                    parent,
                    &name,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("cannot open {}", shown.display()))?;
                meta::apply_meta_fd(&fifo, &meta, &mut self.names, self.chown)
            }
            FileType::CharDevice | FileType::BlockDevice => {
                meta::make_node_at(parent, &name, &meta)
                    .with_context(|| format!("cannot create {}", shown.display()))?;
                meta::apply_device_meta_at(parent, &name, &meta, &mut self.names, self.chown)
            }
            FileType::Regular | FileType::Directory => unreachable!("handled above"),
        };
        self.meta_done(
            applied.with_context(|| format!("cannot set metadata of {}", shown.display())),
        )?;
        self.restored(&rel, false);
        self.files += 1;
        Ok(())
    }

    fn apply_payload<R: Read>(
        &mut self,
        class: EntryClass,
        rel: Index,
        meta: Meta,
        data: &mut R,
    ) -> Result<()> {
        let (chunk, diff) = match class {
            EntryClass::Snapshot => (None, false),
            EntryClass::Diff => (None, true),
            EntryClass::MultivolSnapshot(k) => (Some(k), false),
            EntryClass::MultivolDiff(k) => (Some(k), true),
            _ => unreachable!(),
        };
        if self.ignore_errors {
            let consistent = match (&self.pending, chunk) {
                (None, _) => true,
                (Some(Pending::Snapshot { rel: r, next, .. }), Some(k))
                | (Some(Pending::Diff { rel: r, next, .. }), Some(k))
                    if k > 1 =>
                {
                    *r == rel && *next == k
                }
                (Some(_), _) => false,
            };
            if !consistent {
                self.abandon_pending("its data is cut short: a volume is missing or damaged")?;
            }
            if self.pending.is_none() && chunk.is_some_and(|k| k > 1) {
                // The rest of a file already named, or one whose start was in a skipped volume.
                if !self.lost.contains_key(&rel) {
                    self.lose_file(
                        &rel,
                        "the start of its data is in a volume that is missing or damaged",
                    )?;
                }
                return Ok(());
            }
        }
        let mut pending = match (chunk, self.pending.take()) {
            (None, Some(_)) | (Some(1), Some(_)) => {
                bail!("a multivol file ends early before {rel}: a volume is missing or damaged")
            }
            (None, None) | (Some(1), None) => {
                if diff {
                    Pending::Diff {
                        rel: rel.clone(),
                        spool: tempfile::tempfile()?,
                        meta: meta.clone(),
                        next: 1,
                    }
                } else {
                    let file = self.create_file(&rel)?;
                    Pending::Snapshot {
                        rel: rel.clone(),
                        file,
                        meta: meta.clone(),
                        next: 1,
                    }
                }
            }
            (Some(k), Some(p)) => {
                let (prel, next) = match &p {
                    Pending::Snapshot { rel, next, .. } | Pending::Diff { rel, next, .. } => {
                        (rel, *next)
                    }
                };
                if *prel != rel || next != k {
                    bail!("multivol chunk {k} of {rel} is out of order: a volume is missing or damaged");
                }
                p
            }
            (Some(k), None) => {
                bail!("multivol chunk {k} of {rel} has no start: a volume is missing")
            }
        };
        let n = match &mut pending {
            Pending::Snapshot { file, .. } => io::copy(data, file)?,
            Pending::Diff { spool, .. } => io::copy(data, spool)?,
        };
        let last = chunk.is_none() || n < CHUNK as u64;
        if !last {
            match &mut pending {
                Pending::Snapshot { next, .. } | Pending::Diff { next, .. } => *next += 1,
            }
            self.pending = Some(pending);
            return Ok(());
        }
        match pending {
            Pending::Snapshot {
                rel, file, meta, ..
            } => {
                self.bytes += file.metadata()?.len();
                let res = meta::apply_meta_fd(&file, &meta, &mut self.names, self.chown)
                    .with_context(|| {
                        format!("cannot set metadata of {}", self.path_of(&rel).display())
                    });
                self.meta_done(res)?;
                self.restored(&rel, false);
                self.files += 1;
                Ok(())
            }
            Pending::Diff {
                rel,
                mut spool,
                meta,
                ..
            } => {
                spool.rewind()?;
                match self.patch(&rel, spool, &meta) {
                    // E.g. its earlier version was in a skipped volume: no half-patched file is left.
                    Err(e) if self.ignore_errors => self.lose_file(&rel, &format!("{e:#}")),
                    r => r,
                }
            }
        }
    }

    /// A new regular file at `rel`, replacing whatever was there; created relative to its parent's
    /// descriptor, never through a symlink.
    fn create_file(&mut self, rel: &Index) -> Result<File> {
        let (parent, name) = self.clear_slot(rel)?;
        let fd = rustix::fs::openat(
            &*parent,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| anyhow!("cannot create {}: {e}", self.path_of(rel).display()))?;
        Ok(File::from(fd))
    }

    fn patch(&mut self, rel: &Index, delta_data: File, meta: &Meta) -> Result<()> {
        let path = self.path_of(rel);
        let (parent, name) = self
            .tree
            .parent(rel, Walk::Create)?
            .expect("created on the way");
        let base = rustix::fs::openat(
            &*parent,
            &name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| {
            anyhow!(
                "cannot patch {}: its earlier version is missing ({e})",
                path.display()
            )
        })?;
        if !base.metadata()?.is_file() {
            bail!("cannot patch {}: it is not a regular file", path.display());
        }
        // The old version stays readable through `base` while the new one is written at its name: no
        // temporary name that a killed restore would leave behind.
        rustix::fs::unlinkat(&*parent, &name, rustix::fs::AtFlags::empty())
            .with_context(|| format!("cannot replace {}", path.display()))?;
        let mut out = self.create_file(rel)?;
        let mut p = delta::patch(
            io::BufReader::with_capacity(128 * 1024, base),
            io::BufReader::new(delta_data),
        )?;
        let n = io::copy(&mut p, &mut out)
            .with_context(|| format!("cannot apply the delta to {}", path.display()))?;
        drop(p);
        self.bytes += n;
        let res = meta::apply_meta_fd(&out, meta, &mut self.names, self.chown)
            .with_context(|| format!("cannot set metadata of {}", path.display()));
        self.meta_done(res)?;
        self.restored(rel, false);
        self.files += 1;
        Ok(())
    }

    /// Directory metadata last, deepest first, so writing into them was possible and their mtimes stay.
    /// Each goes on the directory restore made or kept there, reopened without following links.
    fn finish(&mut self) -> Result<()> {
        if self.ignore_errors {
            self.abandon_pending("its last chunk is missing (a volume is missing or damaged)")?;
        }
        // What is still lost is named once, whatever set lost it first.
        let lost = std::mem::take(&mut self.lost);
        self.lost_files += lost.len() as u64;
        for (rel, why) in lost {
            let kept = if self.is_dir(&rel)? {
                " (the directory is there, with what was restored in it, but not its recorded owner, mode and times)"
            } else {
                ""
            };
            self.warnings.push(format!(
                "{}: not restored: {why}{kept}",
                self.path_of(&rel).display()
            ));
        }
        if let Some(p) = &self.pending {
            let rel = match p {
                Pending::Snapshot { rel, .. } | Pending::Diff { rel, .. } => rel,
            };
            bail!("{rel} is incomplete: its last multivol chunk is missing (a volume is missing)");
        }
        let dirs = std::mem::take(&mut self.dirs);
        for (rel, (meta, id)) in dirs.iter().rev() {
            let path = self.path_of(rel);
            let changed = || {
                anyhow!(
                    "{} changed during the restore (it is not the directory restore made): its metadata was not applied",
                    path.display()
                )
            };
            let fd = self.tree.open_dir(rel)?.ok_or_else(changed)?;
            let st = rustix::fs::fstat(&*fd)
                .with_context(|| format!("cannot inspect {}", path.display()))?;
            if (st.st_dev, st.st_ino) != *id {
                return Err(changed());
            }
            let res = meta::apply_meta_fd(&*fd, meta, &mut self.names, self.chown)
                .with_context(|| format!("cannot set metadata of {}", path.display()));
            self.meta_done(res)?;
            self.files += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ftype: FileType, mode: u32) -> Meta {
        Meta {
            ftype,
            mode,
            uid: 0,
            gid: 0,
            uname: Vec::new(),
            gname: Vec::new(),
            mtime: 1_600_000_000,
            size: 0,
            link_target: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        }
    }

    fn regular() -> Meta {
        meta(FileType::Regular, 0o640)
    }

    /// Chunk `n` of the multivolume file `name` (a regular file), as a volume's tar gives it.
    fn chunk(a: &mut Applier, n: u64, name: &str, data: &[u8]) -> Result<()> {
        a.apply_payload(
            EntryClass::MultivolSnapshot(n),
            idx(name),
            regular(),
            &mut &data[..],
        )
    }

    fn applier(dir: &Path, ignore_errors: bool) -> Applier {
        let mut a = Applier::new(dir.join("t"), None).unwrap();
        a.chown = false;
        a.ignore_errors = ignore_errors;
        a.apply_special(Index::root(), meta(FileType::Directory, 0o755))
            .unwrap();
        a
    }

    fn idx(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    fn lost_volume() -> PlannedVolume {
        PlannedVolume {
            name: "vol2".into(),
            check: Err("vol2 is missing".into()),
            start: idx("big"),
            end: idx("big"),
        }
    }

    /// A multivol file whose middle chunk was in a skipped volume: with --ignore-errors it is not
    /// left cut short, its later chunks are passed over, it is named once, and the next file is
    /// restored; without, the restore stops at the gap.
    #[test]
    fn a_file_cut_by_a_skipped_volume_is_left_out_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let full = vec![5u8; CHUNK];
        let mut a = applier(dir.path(), true);
        chunk(&mut a, 1, "big", &full).unwrap();
        assert!(dir.path().join("t/big").exists());
        a.volume_lost(&lost_volume(), "vol2 is missing", &[])
            .unwrap();
        assert!(!dir.path().join("t/big").exists(), "a cut file was left");
        chunk(&mut a, 3, "big", &full).unwrap();
        chunk(&mut a, 4, "big", b"end").unwrap();
        a.apply_payload(EntryClass::Snapshot, idx("c"), regular(), &mut &b"c\n"[..])
            .unwrap();
        a.finish().unwrap();
        assert!(!dir.path().join("t/big").exists());
        assert_eq!(fs::read(dir.path().join("t/c")).unwrap(), b"c\n");
        assert_eq!(a.lost_files, 1);
        let named: Vec<&String> = a
            .warnings
            .iter()
            .filter(|w| w.contains("t/big: not restored"))
            .collect();
        assert_eq!(named.len(), 1, "{:?}", a.warnings);
        assert!(
            a.warnings[0].contains("vol2 is missing") && a.warnings[0].contains("from big to big")
        );

        let dir = tempfile::tempdir().unwrap();
        let mut a = applier(dir.path(), false);
        chunk(&mut a, 1, "big", &full).unwrap();
        let e = chunk(&mut a, 3, "big", &full).unwrap_err();
        assert!(format!("{e:#}").contains("out of order"), "{e:#}");
    }

    /// The first chunk of a file lost, its last chunks at the start of the next volume; and a file
    /// whose last chunk never comes.
    #[test]
    fn a_file_without_its_start_or_end_is_left_out_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let full = vec![5u8; CHUNK];
        let mut a = applier(dir.path(), true);
        // An earlier set's copy: the new version is lost, so the old one must not stand in for it.
        a.apply_payload(EntryClass::Snapshot, idx("a"), regular(), &mut &b"old"[..])
            .unwrap();
        chunk(&mut a, 2, "a", &full).unwrap();
        chunk(&mut a, 3, "a", b"x").unwrap();
        assert!(!dir.path().join("t/a").exists());
        chunk(&mut a, 1, "z", &full).unwrap();
        a.finish().unwrap();
        assert!(!dir.path().join("t/z").exists());
        assert_eq!(a.lost_files, 2, "{:?}", a.warnings);
        assert!(a.warnings.iter().any(|w| w.contains("t/a: not restored")));
        assert!(a.warnings.iter().any(|w| w.contains("t/z: not restored")));

        let dir = tempfile::tempdir().unwrap();
        let mut a = applier(dir.path(), false);
        let e = chunk(&mut a, 2, "a", &full).unwrap_err();
        assert!(format!("{e:#}").contains("has no start"), "{e:#}");
    }

    /// A delta whose base is missing (it was in a skipped volume): named with --ignore-errors, the
    /// restore's end without.
    #[test]
    fn a_delta_without_its_base_is_named_or_fails() {
        let sig = delta::signature(&b"base"[..], 4, 512).unwrap();
        let mut d = Vec::new();
        delta::delta(&b"new version"[..], &sig)
            .unwrap()
            .read_to_end(&mut d)
            .unwrap();
        for ignore in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut a = applier(dir.path(), ignore);
            let r = a.apply_payload(EntryClass::Diff, idx("f"), regular(), &mut &d[..]);
            assert!(!dir.path().join("t/f").exists());
            if ignore {
                r.unwrap();
                a.finish().unwrap();
                assert_eq!(a.lost_files, 1);
                assert!(
                    a.warnings[0].contains("t/f: not restored")
                        && a.warnings[0].contains("earlier version is missing"),
                    "{:?}",
                    a.warnings
                );
            } else {
                assert!(format!("{:#}", r.unwrap_err()).contains("earlier version is missing"));
            }
        }
    }

    /// A skipped volume of a later set: the files its set's file list puts in its bounds are not
    /// left at the earlier set's version (removed and named), one it deleted is deleted, and one a
    /// still later set restores is not named.
    /// `--force` over a tree that already holds the files: a file the lost volume held, which this
    /// restore never wrote, is left as it was (the operator's live copy), not deleted; one this restore
    /// wrote from an earlier set is removed, as it is not the version asked for.
    #[test]
    fn a_lost_file_that_stood_before_the_restore_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("live"), b"the operator's copy").unwrap();
        let mut a = applier(dir.path(), true);
        a.apply_payload(
            EntryClass::Snapshot,
            idx("old"),
            regular(),
            &mut &b"full"[..],
        )
        .unwrap();
        let vol = PlannedVolume {
            name: "inc.vol1".into(),
            check: Err("inc.vol1 is corrupt".into()),
            start: idx("live"),
            end: idx("old"),
        };
        let files = [
            (FileAction::Changed, idx("live")),
            (FileAction::Changed, idx("old")),
        ];
        a.volume_lost(&vol, "inc.vol1 is corrupt", &files).unwrap();
        a.finish().unwrap();
        assert_eq!(fs::read(t.join("live")).unwrap(), b"the operator's copy");
        assert!(!t.join("old").exists(), "an earlier set's version was left");
        let live: Vec<&String> = a
            .warnings
            .iter()
            .filter(|w| w.contains("t/live: not restored"))
            .collect();
        assert_eq!(live.len(), 1, "{:?}", a.warnings);
        assert!(live[0].contains("left as it was"), "{}", live[0]);
        assert_eq!(a.lost_files, 2);
    }

    #[test]
    fn the_file_list_names_what_a_skipped_volume_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = applier(dir.path(), true);
        for n in ["a", "b", "c", "d", "e"] {
            a.apply_payload(EntryClass::Snapshot, idx(n), regular(), &mut &b"old"[..])
                .unwrap();
        }
        a.apply_special(idx("bdir"), meta(FileType::Directory, 0o700))
            .unwrap();
        a.apply_payload(
            EntryClass::Snapshot,
            idx("bdir/x"),
            regular(),
            &mut &b"x"[..],
        )
        .unwrap();
        let vol = PlannedVolume {
            name: "inc.vol1".into(),
            check: Err("inc.vol1 is corrupt".into()),
            start: idx("b"),
            end: idx("d"),
        };
        let files = [
            (FileAction::Changed, idx("a")),
            (FileAction::Changed, idx("b")),
            (FileAction::Changed, idx("bdir")),
            (FileAction::Deleted, idx("c")),
            (FileAction::New, idx("d")),
            (FileAction::Changed, idx("e")),
        ];
        a.volume_lost(&vol, "inc.vol1 is corrupt", &files).unwrap();
        let t = dir.path().join("t");
        assert!(
            t.join("a").exists() && t.join("e").exists(),
            "outside the bounds"
        );
        for n in ["b", "c", "d"] {
            assert!(!t.join(n).exists(), "{n} was left at the earlier version");
        }
        // A later set brings d back whole.
        a.apply_payload(EntryClass::Snapshot, idx("d"), regular(), &mut &b"new"[..])
            .unwrap();
        a.finish().unwrap();
        assert_eq!(fs::read(t.join("d")).unwrap(), b"new");
        // A directory is never removed for it: what is in it stays.
        assert_eq!(fs::read(t.join("bdir/x")).unwrap(), b"x");
        assert_eq!(a.lost_files, 2, "{:?}", a.warnings);
        let named: Vec<&String> = a
            .warnings
            .iter()
            .filter(|w| w.contains("not restored:"))
            .collect();
        assert_eq!(named.len(), 2, "{:?}", a.warnings);
        assert!(
            named[0].contains("t/b: not restored: its data is in inc.vol1"),
            "{named:?}"
        );
        assert!(
            named[1].contains("t/bdir: not restored")
                && named[1].contains("the directory is there"),
            "{named:?}"
        );
    }

    #[test]
    fn metadata_failures_are_warnings_only_with_ignore_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = applier(dir.path(), true);
        a.meta_done(Err(anyhow!("cannot set metadata of x")))
            .unwrap();
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(a.lost_files, 0);
        let mut a = applier(dir.path(), false);
        assert!(a
            .meta_done(Err(anyhow!("cannot set metadata of x")))
            .is_err());
        assert!(a.warnings.is_empty());
    }
}
