//! Full and incremental backups: walk the source in index order beside the last signature chain, write
//! snapshots, deltas and deletions into volumes (sealed and uploaded on worker threads, so both cores
//! work), then the signature tar, then the manifest — last, so an interrupted run never looks complete.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::backend::dry_run::DryRunBackend;
use crate::backend::Backend;
use crate::engine::archive::container::{ContainerWriter, Sealing, Stored};
use crate::engine::archive::difftar::{DiffTarWriter, VolumeSink};
use crate::engine::archive::manifest::{self, FileAction, ManifestWriter, VolumeInfo};
use crate::engine::archive::names::{self, NameKind, Storage};
use crate::engine::archive::sigtar::{self, ChainSignatures, SigTarWriter};
use crate::engine::cache::{self, Cache};
use crate::engine::collection::{BackupSet, Collection, SetKind};
use crate::engine::crypto::{Compression, Decryptor, Encryptor};
use crate::engine::delta::{self, TeeReader};
use crate::engine::meta::{self, FileType, SourceEntry, TreeWalk};
use crate::engine::repository::WriteContext;
use crate::engine::selection::Selection;
use crate::engine::stored;
use crate::engine::{archive::container, timestr};

/// Deflate level inside OpenPGP volumes. Any level reads back. On the benchmark data zlib-ng's level 2
/// gives a repository 2% larger than duplicity's (gpg's zlib 6) at about a fifth of level 6's CPU; level 4
/// is 0.5% larger at two and a half times level 2's CPU.
pub const GPG_DEFLATE_LEVEL: u32 = 2;
/// Changed files at least this large get their new signature computed beside the delta.
const PARALLEL_SIGNATURE_FROM: u64 = 1 << 20;
/// gzip level of unencrypted volumes, as duplicity.
pub const GZIP_LEVEL: u32 = 6;

/// What a backup is asked for (keys, archive dir and volume size are the repository's).
pub struct BackupOptions {
    /// The source directory.
    pub source: PathBuf,
    /// The source as typed (the manifest's `Localdir`).
    pub source_as_typed: String,
    /// `full` was asked for.
    pub force_full: bool,
    /// `--full-if-older-than`, in seconds.
    pub full_if_older_than: Option<i64>,
    /// The backup's time (now, or `--current-time`).
    pub now: i64,
    /// `--current-time` was given: a clash with an existing set is an error rather than a wait.
    pub fixed_time: bool,
    pub allow_source_mismatch: bool,
    /// `--dry-run`: do all the work, but store nothing, neither on the target nor in the archive dir.
    pub dry_run: bool,
    /// Called (on a worker thread) each time a volume is stored.
    pub progress: Option<ProgressFn>,
    /// Which files under `source` are backed up (`--include`, `--exclude`, ...); default: all.
    pub selection: Selection,
    /// `--full-if-n-inc`: a full backup when the newest chain has this many incrementals or more.
    pub full_if_n_inc: Option<u64>,
    /// Kept at the source bytes read so far, as the walk goes (a live progress display reads it).
    pub source_bytes_read: Option<Arc<AtomicU64>>,
    /// duplicity 3's `--jsonstat`: store the statistics as JSON beside the set.
    pub jsonstat: Option<super::jsonstat::JsonStatRequest>,
    /// `--copy-links`, `--skip-if-no-change`, `--no-files-changed`, `--max-blocksize`.
    pub tuning: BackupTuning,
}

/// duplicity's options that change how a backup reads the source and what it stores; the default is
/// a backup without them.
#[derive(Debug, Clone)]
pub struct BackupTuning {
    /// `--copy-links`: back up what symlinks point to instead of the links.
    pub copy_links: bool,
    /// `--skip-if-no-change`: an incremental that finds nothing changed stores nothing.
    pub skip_if_no_change: bool,
    /// The manifest lists the files changed (false with `--no-files-changed`: `Filelist 0`).
    pub files_changed: bool,
    /// `--max-blocksize`: signatures use duplicity 3.2.1's block length capped at this.
    pub max_blocksize: Option<usize>,
}

impl Default for BackupTuning {
    fn default() -> Self {
        BackupTuning {
            copy_links: false,
            skip_if_no_change: false,
            files_changed: true,
            max_blocksize: None,
        }
    }
}

/// A volume stored, as reported to [`BackupOptions::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeProgress {
    pub volume: u32,
    /// This volume's size on the target.
    pub volume_bytes: u64,
    /// The volumes stored so far, in bytes.
    pub stored_bytes: u64,
    /// Source bytes read so far (an approximation: the walk runs ahead of the uploads).
    pub source_bytes: u64,
}

/// A progress callback; shared with the volume workers.
pub type ProgressFn = Arc<dyn Fn(&VolumeProgress) + Send + Sync>;

/// duplicity's backup statistics.
#[derive(Debug, Default, Clone)]
pub struct BackupStats {
    pub start_time: f64,
    pub end_time: f64,
    pub source_files: u64,
    pub source_file_size: u64,
    pub new_files: u64,
    pub new_file_size: u64,
    pub deleted_files: u64,
    pub changed_files: u64,
    pub changed_file_size: u64,
    /// Always 0: duplicity declares it and never adds to it; kept for the same block and JSON.
    pub changed_delta_size: u64,
    pub delta_entries: u64,
    pub raw_delta_size: u64,
    pub total_destination_size_change: u64,
    pub errors: u64,
    /// Files that changed while they were read (stored as read; not in duplicity's block).
    pub changed_during_backup: u64,
    /// `--skip-if-no-change` left this incremental out: nothing was stored (jsonstat's `skipped_inc`).
    pub skipped: bool,
}

impl BackupStats {
    /// The "Backup Statistics" block duplicity prints.
    pub fn render(&self) -> String {
        let elapsed = self.end_time - self.start_time;
        format!(
            "--------------[ Backup Statistics ]--------------\n\
             StartTime {:.2} ({})\n\
             EndTime {:.2} ({})\n\
             ElapsedTime {:.2} ({})\n\
             SourceFiles {}\n\
             SourceFileSize {} ({})\n\
             NewFiles {}\n\
             NewFileSize {} ({})\n\
             DeletedFiles {}\n\
             ChangedFiles {}\n\
             ChangedFileSize {} ({})\n\
             ChangedDeltaSize {} ({})\n\
             DeltaEntries {}\n\
             RawDeltaSize {} ({})\n\
             TotalDestinationSizeChange {} ({})\n\
             Errors {}\n\
             -------------------------------------------------\n",
            self.start_time,
            timestr::asctime_local(self.start_time as i64),
            self.end_time,
            timestr::asctime_local(self.end_time as i64),
            elapsed,
            human_seconds(elapsed),
            self.source_files,
            self.source_file_size,
            human_bytes(self.source_file_size),
            self.new_files,
            self.new_file_size,
            human_bytes(self.new_file_size),
            self.deleted_files,
            self.changed_files,
            self.changed_file_size,
            human_bytes(self.changed_file_size),
            self.changed_delta_size,
            human_bytes(self.changed_delta_size),
            self.delta_entries,
            self.raw_delta_size,
            human_bytes(self.raw_delta_size),
            self.total_destination_size_change,
            human_bytes(self.total_destination_size_change),
            self.errors,
        )
    }
}

/// duplicity's `get_byte_summary_string`: three significant figures in the largest unit reached.
fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    for (size, unit) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            let precision = if v >= 100.0 {
                0
            } else if v >= 10.0 {
                1
            } else {
                2
            };
            return format!("{v:.precision$} {unit}");
        }
    }
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// duplicity's `dup_time.inttopretty` for a float number of seconds.
fn human_seconds(total: f64) -> String {
    let mut parts = Vec::new();
    let hours = (total / 3600.0).floor();
    let rest = total - hours * 3600.0;
    if hours > 1.0 {
        parts.push(format!("{hours} hours"));
    } else if hours == 1.0 {
        parts.push("1 hour".to_string());
    }
    let minutes = (rest / 60.0).floor();
    let seconds = rest - minutes * 60.0;
    if minutes > 1.0 {
        parts.push(format!("{minutes} minutes"));
    } else if minutes == 1.0 {
        parts.push("1 minute".to_string());
    }
    if seconds == 1.0 {
        parts.push("1 second".to_string());
    } else if parts.is_empty() || seconds > 1.0 {
        parts.push(format!("{seconds:.2} seconds"));
    }
    parts.join(" ")
}

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub full: bool,
    pub time: i64,
    pub volumes: u32,
    pub stats: BackupStats,
    /// Entries that could not be read (noted, skipped; earlier versions stay in the chain).
    pub problems: Vec<String>,
    /// The remote files written (or, in a dry run, that would have been written), in upload order.
    pub files: Vec<String>,
    pub dry_run: bool,
    /// The `--jsonstat` text (stored unless a dry run), when asked for.
    pub jsonstat: Option<String>,
    /// `--skip-if-no-change` found nothing changed: no set was stored (`files` is empty).
    pub skipped: bool,
}

impl BackupReport {
    /// The statistics and facts of the run as one JSON object (the charm's view of the block above).
    pub fn render_json(&self) -> String {
        use super::json;
        // Seconds to two decimals, as duplicity's statistics block shows them.
        let secs = |t: f64| (t * 100.0).round() / 100.0;
        let s = &self.stats;
        json::line(&serde_json::json!({
            "type": if self.full { "full" } else { "incremental" },
            "time": json::time(self.time),
            "dry_run": self.dry_run,
            "skipped": self.skipped,
            "volumes": self.volumes,
            "files": self.files,
            "problems": self.problems,
            "changed_during_backup": s.changed_during_backup,
            "statistics": {
                "StartTime": secs(s.start_time),
                "EndTime": secs(s.end_time),
                "ElapsedTime": secs(s.end_time - s.start_time),
                "SourceFiles": s.source_files,
                "SourceFileSize": s.source_file_size,
                "NewFiles": s.new_files,
                "NewFileSize": s.new_file_size,
                "DeletedFiles": s.deleted_files,
                "ChangedFiles": s.changed_files,
                "ChangedFileSize": s.changed_file_size,
                "ChangedDeltaSize": s.changed_delta_size,
                "DeltaEntries": s.delta_entries,
                "RawDeltaSize": s.raw_delta_size,
                "TotalDestinationSizeChange": s.total_destination_size_change,
                "Errors": s.errors,
            },
        }))
    }
}

/// Test only (cargo feature `test-hooks`): `DUPLICITY_CHARM_TEST_KILL_AT=<point>` makes the backup kill
/// itself (SIGKILL) on reaching that point, so tests can interrupt it at exact places without timing
/// guesses. Points: `during-volume-N`, `after-volume-N`, `before-signatures`, `before-manifest`.
#[cfg(feature = "test-hooks")]
fn test_hook(point: &str) {
    use rustix::process::{getpid, kill_process, Signal};
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("DUPLICITY_CHARM_TEST_KILL_AT").ok());
    if at.as_deref() == Some(point) {
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

#[cfg(not(feature = "test-hooks"))]
fn test_hook(_point: &str) {}

/// A backup killed after uploading its signatures but before its manifest leaves a signature file
/// that extends the signature chain past the backup chain, so the two no longer pair and the next
/// incremental could not continue. Nothing can use that file (its set never got a manifest), so it is
/// removed before the new backup starts (listed, not removed, in a dry run). Returns notes.
fn drop_dead_signatures(
    backend: &dyn Backend,
    remote: &mut Vec<String>,
    dry_run: bool,
    append_only: bool,
) -> Result<Vec<String>> {
    let dead: Vec<String> = Collection::from_names(remote)
        .signatures_of_incomplete_sets(remote)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    remote.retain(|n| !dead.contains(n));
    // An append-only target keeps them: they are left out of this run's view instead (every run
    // does the same), and the note says where to remove them.
    if append_only {
        return Ok(dead
            .iter()
            .map(|n| format!("ignoring {n}, left by an interrupted backup (its set has no manifest); this append-only target keeps it: remove it on the server side when pruning"))
            .collect());
    }
    if !dry_run {
        backend
            .delete(&dead)
            .context("cannot remove the signatures an interrupted backup left")?;
    }
    Ok(dead
        .iter()
        .map(|n| format!("removed {n}, left by an interrupted backup (its set has no manifest)"))
        .collect())
}

/// Append-only targets: a manifest upload cut half-way stays under its final name, and neither the
/// archive dir nor a restore can read it. Each manifest the archive dir lacks is read first; one that
/// is damaged is left out of `remote` (its set then counts as incomplete: no restore or incremental
/// uses it). Returns notes and the newest such set's time. Other failures (a wrong passphrase, the
/// network) stop the backup as before.
fn leave_out_cut_manifests(
    backend: &dyn Backend,
    remote: &mut Vec<String>,
    decryptor: &Decryptor,
    cache_dir: &Path,
) -> Result<(Vec<String>, Option<i64>)> {
    let mut notes = Vec::new();
    let mut newest = None;
    let manifests: Vec<(String, i64)> = remote
        .iter()
        .filter_map(|n| {
            let p = names::parse(n)?;
            let cached = cache::local_name(&p.kind).is_some_and(|l| cache_dir.join(l).exists());
            (p.kind.is_manifest() && !p.partial && !cached).then(|| (n.clone(), p.kind.time()))
        })
        .collect();
    for (name, time) in manifests {
        let Err(e) = stored::read_manifest(backend, &name, decryptor) else {
            continue;
        };
        let e = crate::engine::error::Error::classify(e);
        if e.kind() != crate::engine::error::ErrorKind::Corrupt {
            return Err(e.into_anyhow());
        }
        remote.retain(|n| n != &name);
        newest = newest.max(Some(time));
        notes.push(format!(
            "ignoring {name}: it is unreadable (a cut upload?) and this append-only target keeps it; its set is left out. Remove that set on the server side when pruning"
        ));
    }
    Ok((notes, newest))
}

/// What readers of an append-only target's listing leave out (see [`leave_out_cut_manifests`] and
/// [`drop_dead_signatures`]): manifests cut half-way and the signatures of sets without a manifest,
/// which such a target keeps. Nothing is deleted.
pub(crate) fn append_only_listing(
    backend: &dyn Backend,
    remote: &mut Vec<String>,
    decryptor: &Decryptor,
    cache_dir: &Path,
) -> Result<()> {
    leave_out_cut_manifests(backend, remote, decryptor, cache_dir)?;
    drop_dead_signatures(backend, remote, true, true)?;
    Ok(())
}

/// The chain an incremental continues.
struct ChainTip {
    end: i64,
    last_manifest: NameKind,
    /// The last set's manifest as named on the target.
    last_manifest_remote: String,
    signatures: Vec<NameKind>,
    /// The chain's signature files as named on the target.
    signature_names: Vec<String>,
}

/// Runs a full or incremental backup of `opts.source` to the repository's target. The caller holds the
/// writer lock unless this is a dry run.
pub(crate) fn backup(ctx: &WriteContext, opts: &BackupOptions) -> Result<BackupReport> {
    let dry = DryRunBackend::new(ctx.backend);
    let backend: &dyn Backend = if opts.dry_run { &dry } else { ctx.backend };
    let started = Instant::now();
    let mut stats = BackupStats {
        start_time: wall_now(),
        ..Default::default()
    };
    let src_md = std::fs::metadata(&opts.source)
        .with_context(|| format!("cannot read the source directory {}", opts.source.display()))?;
    if !src_md.is_dir() {
        bail!("the source {} is not a directory", opts.source.display());
    }
    let mut remote = backend.list().context("cannot list the target")?;
    let decryptor = Decryptor::with_keys(ctx.passphrase.clone(), &ctx.keys);
    let (mut cut_notes, newest_cut) = if ctx.append_only_target && !opts.dry_run {
        leave_out_cut_manifests(backend, &mut remote, &decryptor, ctx.cache_dir)?
    } else {
        (Vec::new(), None)
    };
    let mut removed =
        drop_dead_signatures(backend, &mut remote, opts.dry_run, ctx.append_only_target)?;
    removed.append(&mut cut_notes);
    // A dry run leaves the archive dir alone: metadata is read from the target instead.
    let cache = if opts.dry_run {
        None
    } else {
        let cache = Cache::open(ctx.cache_dir.to_path_buf())?;
        cache.sync(backend, &remote, &decryptor, ctx.metadata, opts.now)?;
        Some(cache)
    };
    let collection = Collection::from_names(&remote);

    let tip = chain_tip(&collection);
    let mut notes: Vec<String> = Vec::new();
    let mut full = opts.force_full || tip.is_none();
    // A set left out for its cut manifest was the end of a chain: an incremental on the set before it
    // would make two incrementals from one time, which readers cannot tell apart. Start a new chain.
    if let (Some(cut), Some(tip)) = (newest_cut, tip.as_ref()) {
        if cut > tip.end && !full {
            full = true;
            notes.push("starting a new full backup: the chain ends in a set whose manifest is unreadable (see the note on it)".into());
        }
    }
    if tip.is_none() && !opts.force_full && !collection.chains.is_empty() {
        notes.push(
            "starting a new full backup: no backup chain on the target has matching signatures to continue"
                .into(),
        );
    }
    if let (Some(interval), Some(last_full)) =
        (opts.full_if_older_than, collection.last_full_time())
    {
        if last_full < opts.now - interval {
            full = true;
        }
    }
    if let (Some(n), Some(chain)) = (opts.full_if_n_inc, collection.chains.last()) {
        if chain.incs.len() as u64 >= n {
            full = true;
        }
    }
    // Never build on a chain that cannot be restored to its end.
    if !full {
        if let Some(reason) = chain_unusable(&collection, cache.as_ref()) {
            full = true;
            notes.push(format!(
                "starting a new full backup instead of an incremental: {reason}"
            ));
        }
    }
    // --no-check-remote: the archive dir as it is. Without the chain's metadata there, a new chain, as
    // duplicity (whose collection then comes from the archive dir and has no chain to continue).
    if let (false, false, Some(cache), Some(tip)) = (
        full,
        ctx.metadata.check_remote,
        cache.as_ref(),
        tip.as_ref(),
    ) {
        let lacking = std::iter::once(&tip.last_manifest)
            .chain(&tip.signatures)
            .filter_map(cache::local_name)
            .find(|l| !cache.path(l).exists());
        if let Some(l) = lacking {
            full = true;
            notes.push(format!(
                "starting a new full backup: the archive dir lacks {l} of the chain to continue, and --no-check-remote does not fetch it"
            ));
        }
    }
    // On an append-only target a cut manifest upload stays under its final name; a chain ending in
    // one cannot be continued (nor replaced): start a new full instead of building on it.
    if !full && ctx.append_only_target && !opts.dry_run {
        let tip = tip.as_ref().expect("incremental has a chain");
        if let Err(e) = stored::read_manifest(backend, &tip.last_manifest_remote, &decryptor) {
            let e = crate::engine::error::Error::classify(e);
            if e.kind() != crate::engine::error::ErrorKind::Corrupt {
                return Err(e.into_anyhow());
            }
            full = true;
            notes.push(format!(
                "starting a new full backup: the last manifest on this append-only target, {}, is unreadable (a cut upload?) and cannot be replaced; remove that set on the server side when pruning",
                tip.last_manifest_remote
            ));
        }
    }
    let hostname = meta::hostname();
    if !full {
        let tip = tip.as_ref().expect("incremental has a chain");
        let last = match &cache {
            Some(cache) => {
                let local = cache::local_name(&tip.last_manifest).expect("manifest");
                let cached = manifest::parse(&cache.read(&local)?).map_err(|e| {
                    anyhow!("the manifest {local} in the archive dir is unreadable: {e}")
                })?;
                if ctx.metadata.check_remote {
                    check_remote_manifest(
                        backend,
                        &tip.last_manifest_remote,
                        &decryptor,
                        &cached,
                        &cache.dir,
                    )?;
                }
                cached
            }
            None => stored::read_manifest(backend, &tip.last_manifest_remote, &decryptor)?,
        };
        check_source(&last, &hostname, opts)?;
        // With a warm archive dir nothing else decrypts anything before volumes are written: check
        // that this run's passphrase or keys are the chain's, or the chain would need two to restore.
        check_chain_keys(backend, &tip.last_manifest_remote, &decryptor, ctx)?;
    }

    let mut now = opts.now;
    if let (false, Some(tip)) = (full, tip.as_ref()) {
        if now <= tip.end {
            if opts.fixed_time {
                bail!(
                    "--current-time {now} is not after the end of the last backup ({}); give a later time",
                    tip.end
                );
            }
            now = tip.end + 1;
        }
    }
    // Never overwrite an existing set: wait for a fresh second (or refuse a fixed time).
    let taken = |t: i64| {
        remote
            .iter()
            .filter_map(|n| names::parse(n))
            .any(|p| p.kind.time() == t)
    };
    while taken(now) {
        if opts.fixed_time {
            bail!("a backup set with time {} already exists on the target; give another --current-time", timestr::format_timestamp(now));
        }
        now += 1;
    }
    if !opts.fixed_time && now > opts.now {
        let wait = (now - wall_now().floor() as i64).clamp(0, 3) as u64;
        std::thread::sleep(std::time::Duration::from_secs(wait));
    }

    let (vol_kind, manifest_kind, sig_kind): (Box<dyn Fn(u32) -> NameKind>, NameKind, NameKind) =
        if full {
            (
                Box::new(move |vol| NameKind::FullVolume { time: now, vol }),
                NameKind::FullManifest { time: now },
                NameKind::FullSignatures { time: now },
            )
        } else {
            let from = tip.as_ref().expect("chain").end;
            (
                Box::new(move |vol| NameKind::IncVolume { from, to: now, vol }),
                NameKind::IncManifest { from, to: now },
                NameKind::NewSignatures { from, to: now },
            )
        };

    // Public keys win over the passphrase, as in duplicity (gpg --encrypt, no --symmetric).
    let encryptor = if ctx.keys.public_key() {
        Some(Encryptor::public_key(ctx.keys.recipients.clone())?)
    } else {
        ctx.passphrase
            .as_ref()
            .map(|p| Encryptor::symmetric_with(p, &ctx.keys.s2k))
            .transpose()?
    }
    .map(|e| {
        e.with_signer(ctx.keys.signer.clone())
            .with_cipher(ctx.keys.cipher)?
            .with_digest(ctx.keys.digest)
    })
    .transpose()?;
    let sealing = match &encryptor {
        Some(e) => Sealing::Gpg(
            e,
            ctx.keys.compression.unwrap_or(if ctx.compression {
                Compression::Deflate(GPG_DEFLATE_LEVEL)
            } else {
                Compression::None
            }),
        ),
        None if ctx.compression => Sealing::Gzip(GZIP_LEVEL),
        // --no-compression: stored as they are, as duplicity 3's plain `.difftar`/`.sigtar`.
        None => Sealing::Plain,
    };

    // The previous state, merged from the chain's signature files in the cache.
    let old = match (&tip, full) {
        (Some(tip), false) => {
            let mut readers = Vec::new();
            for (kind, remote_name) in tip.signatures.iter().zip(&tip.signature_names) {
                let dec = match &cache {
                    Some(cache) => {
                        let local = cache::local_name(kind).expect("signature name");
                        let f = File::open(cache.path(&local)).with_context(|| {
                            format!(
                                "signature file {local} is missing from the archive dir; run a full backup"
                            )
                        })?;
                        container::decode(f, Storage::Gzip, &decryptor)?
                    }
                    None => {
                        let storage = names::parse(remote_name)
                            .map(|p| p.storage)
                            .unwrap_or(Storage::Plain);
                        container::decode(
                            stored::fetch(backend, remote_name)?,
                            storage,
                            &decryptor,
                        )?
                    }
                };
                readers.push(sigtar::spawn_reader(dec, remote_name.clone()));
            }
            ChainSignatures::new(readers)?
        }
        _ => ChainSignatures::empty(),
    };

    // The pid in the name lets cleanup tell a dead run's work dir from a running one's.
    let prefix = format!(
        "{}{}-",
        super::retention::WORK_DIR_PREFIX,
        std::process::id()
    );
    let mut work = cache::private_tempdir();
    work.prefix(&prefix);
    let work = match &cache {
        Some(cache) => work
            .tempdir_in(&cache.dir)
            .context("cannot create a work directory in the archive dir")?,
        None => work
            .tempdir()
            .context("cannot create a work directory: set TMPDIR to a writable directory")?,
    };
    let sig_storage = sealing.storage();
    let sig_remote_name = names::format(&sig_kind, sig_storage);
    let sig_path = work.path().join("sigtar");
    let sig_cache_path = work.path().join("sigtar.gz");
    let mut manifest = ManifestWriter::new(&hostname, opts.source_as_typed.as_bytes())?;
    if !opts.tuning.files_changed {
        manifest.omit_file_list();
    }
    let tuning = &opts.tuning;
    let mut problems = std::mem::take(&mut notes);
    let source_read = AtomicU64::new(0);
    let stored_so_far = AtomicU64::new(0);

    let volumes = std::thread::scope(|scope| -> Result<Vec<(VolumeInfo, Stored)>> {
        let sink = PipelineSink {
            scope,
            backend,
            sealing,
            storage: sealing.storage(),
            dir: work.path(),
            vol_kind: &*vol_kind,
            tx: None,
            in_flight: Vec::new(),
            max_in_flight: IN_FLIGHT.max(ctx.concurrency),
            done: Vec::new(),
            progress: opts.progress.as_ref(),
            source_read: &source_read,
            stored_so_far: &stored_so_far,
        };
        let mut vol = DiffTarWriter::new(sink, ctx.volsize, matches!(sealing, Sealing::Gpg(..)));
        let sig_remote = ContainerWriter::new(File::create(&sig_path)?, sealing)?;
        let sig_cache = ContainerWriter::new(File::create(&sig_cache_path)?, Sealing::Gzip(1))?;
        let mut sigs = SigTarWriter::new(Tee(sig_remote, sig_cache));
        let mut walk = TreeWalk::with_selection(&opts.source, opts.selection.clone());
        walk.follow_links(tuning.copy_links);
        let mut old = old;
        let mut prev = old.next_entry()?;
        let result = (|| -> Result<()> {
            for entry in walk.by_ref() {
                while let Some(o) = prev.as_ref().filter(|o| o.index < entry.index) {
                    record_deletion(&mut vol, &mut sigs, &mut manifest, &mut stats, o)?;
                    prev = old.next_entry()?;
                }
                let before = prev.take_if(|o| o.index == entry.index);
                if before.is_some() {
                    prev = old.next_entry()?;
                }
                if let Err(e) = back_up_entry(
                    &mut vol,
                    &mut sigs,
                    &mut manifest,
                    &mut stats,
                    &entry,
                    before.as_ref(),
                    &mut problems,
                    tuning,
                ) {
                    match e.downcast_ref::<SourceReadError>() {
                        Some(_) => {
                            stats.errors += 1;
                            problems.push(format!("{}: {e:#}", entry.path.display()));
                        }
                        None => return Err(e),
                    }
                }
                source_read.store(stats.source_file_size, Ordering::Relaxed);
                if let Some(live) = &opts.source_bytes_read {
                    live.store(stats.source_file_size, Ordering::Relaxed);
                }
            }
            while let Some(o) = prev.take() {
                record_deletion(&mut vol, &mut sigs, &mut manifest, &mut stats, &o)?;
                prev = old.next_entry()?;
            }
            Ok(())
        })();
        for p in walk.problems.drain(..) {
            stats.errors += 1;
            problems.push(format!("{}: {}", p.path.display(), p.message));
        }
        // Reported without counting as errors: duplicity leaves them out without a word.
        for p in walk.skipped_links.drain(..) {
            problems.push(format!("{}: {}", p.path.display(), p.message));
        }
        if walk.skipped_sockets > 0 {
            problems.push(format!(
                "skipped {} socket(s): sockets are not backed up",
                walk.skipped_sockets
            ));
        }
        // duplicity 3's --skip-if-no-change: an incremental in which nothing changed stores no
        // volume, signatures or manifest (nothing was written to a volume: every entry counts).
        if !full && tuning.skip_if_no_change && stats.delta_entries == 0 && result.is_ok() {
            stats.skipped = true;
            drop(vol);
            drop(sigs);
            return Ok(Vec::new());
        }
        result.and_then(|()| {
            let (bounds, sink) = vol.finish()?;
            let Tee(a, b) = sigs.finish()?;
            a.finish()?;
            b.finish()?;
            let stored = sink.wait()?;
            Ok(bounds.into_iter().zip(stored).collect::<Vec<_>>())
        })
    })?;

    if stats.skipped {
        stats.end_time = stats.start_time + started.elapsed().as_secs_f64();
        // As duplicity: the jsonstat is shown, not stored.
        let jsonstat = opts.jsonstat.as_ref().map(|request| {
            let set = match manifest_kind {
                NameKind::IncManifest { from, to } => SetKind::Inc { from, to },
                _ => SetKind::Full { time: now },
            };
            let continued = collection.incremental_base().map(|b| b.chain);
            super::jsonstat::render(&stats, set, continued, cache.as_ref(), request)
        });
        problems.extend(removed);
        return Ok(BackupReport {
            full,
            time: now,
            volumes: 0,
            stats,
            problems,
            files: Vec::new(),
            dry_run: opts.dry_run,
            jsonstat,
            skipped: true,
        });
    }
    test_hook("before-signatures");
    // Signatures next, then the manifest: a set is complete only once its manifest exists.
    let mut total_stored: u64 = std::fs::metadata(&sig_path).map(|m| m.len()).unwrap_or(0);
    backend
        .put_move(&sig_path, &sig_remote_name)
        .with_context(|| format!("cannot upload {sig_remote_name}"))?;
    if let Some(cache) = &cache {
        cache.store_file(&sig_cache_path, &cache::local_name(&sig_kind).expect("sig"))?;
    }

    for (mut info, stored) in volumes.iter().cloned() {
        total_stored += stored.size;
        info.sha1 = Some(stored.sha1);
        manifest.add_volume(&info)?;
    }
    let mut plain = Vec::new();
    manifest.finish(&mut plain)?;
    if let Some(cache) = &cache {
        cache.store_bytes(
            &plain,
            &cache::local_name(&manifest_kind).expect("manifest"),
        )?;
    }
    let man_sealing = sealing.for_manifest();
    let man_path = work.path().join("manifest");
    let mut w = ContainerWriter::new(File::create(&man_path)?, man_sealing)?;
    w.write_all(&plain)?;
    let stored = w.finish()?;
    total_stored += stored.size;
    let man_name = names::format(&manifest_kind, man_sealing.storage());
    test_hook("before-manifest");
    let uploaded = backend.put_move(&man_path, &man_name);
    if uploaded.is_err() && ctx.append_only_target {
        // The target may keep a cut copy under the final name: without the local one, readers check
        // the stored manifest and leave its set out (see `leave_out_cut_manifests`).
        if let Some(cache) = &cache {
            let local = cache.path(&cache::local_name(&manifest_kind).expect("manifest"));
            let _ = std::fs::remove_file(local);
        }
    }
    uploaded.with_context(|| format!("cannot upload {man_name}"))?;

    stats.total_destination_size_change = total_stored;
    stats.end_time = stats.start_time + started.elapsed().as_secs_f64();
    // After the manifest, as duplicity: the set is complete whether or not this file makes it.
    let jsonstat = match &opts.jsonstat {
        None => None,
        Some(request) => {
            let set = match manifest_kind {
                NameKind::IncManifest { from, to } => SetKind::Inc { from, to },
                _ => SetKind::Full { time: now },
            };
            let continued = (!full)
                .then(|| collection.incremental_base().map(|b| b.chain))
                .flatten();
            let json = super::jsonstat::render(&stats, set, continued, cache.as_ref(), request);
            // Not counted in TotalDestinationSizeChange, as duplicity counts it before this file.
            super::jsonstat::store(backend, cache.as_ref(), sealing, set, &json, work.path())?;
            Some(json)
        }
    };
    problems.extend(removed);
    let mut files: Vec<String> = (1..=volumes.len() as u32)
        .map(|v| names::format(&vol_kind(v), sealing.storage()))
        .collect();
    files.push(sig_remote_name);
    files.push(man_name);
    Ok(BackupReport {
        full,
        time: now,
        volumes: volumes.len() as u32,
        stats,
        problems,
        files,
        dry_run: opts.dry_run,
        jsonstat,
        skipped: false,
    })
}

fn wall_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The primary chain and its signature files, if an incremental can continue it.
fn chain_tip(c: &Collection) -> Option<ChainTip> {
    let base = c.incremental_base()?;
    let last = base.chain.last();
    let last_manifest = last.kind.manifest_kind();
    let signature_names = base.signatures.names(None);
    let signatures = signature_names
        .iter()
        .filter_map(|n| names::parse(n).map(|p| p.kind))
        .collect();
    Some(ChainTip {
        end: base.from,
        last_manifest,
        last_manifest_remote: last.manifest.clone()?,
        signatures,
        signature_names,
    })
}

/// Why the chain an incremental would continue must not be extended: a break after its end (later
/// backups stranded), or volumes missing from any of its sets (by the numbering, and by the volume
/// counts of the manifests in the archive dir).
fn chain_unusable(c: &Collection, cache: Option<&Cache>) -> Option<String> {
    let base = c.incremental_base()?;
    if let Some(b) = c.break_of(base.chain) {
        return Some(b.describe());
    }
    let times: Vec<i64> = base.chain.sets().map(BackupSet::time).collect();
    let missing: Vec<String> = c
        .missing_volumes_with(&|set| cache.and_then(|cache| cache.manifest_volume_count(set)))
        .into_iter()
        .filter(|(t, _)| times.contains(t))
        .map(|(t, vols)| {
            let vols: Vec<String> = vols.iter().map(u32::to_string).collect();
            format!(
                "volume(s) {} of the set of {}",
                vols.join(", "),
                timestr::format_timestamp(t)
            )
        })
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} missing from the target, so the chain cannot be restored to its end",
            missing.join(" and ")
        )
    })
}

/// duplicity 3's `--check-remote` before an incremental: the target's last manifest must agree with the
/// archive dir's copy, or one of them was changed behind our back. A manifest this run cannot decrypt is not
/// compared, as duplicity compares only when it has the passphrase.
fn check_remote_manifest(
    backend: &dyn Backend,
    name: &str,
    decryptor: &Decryptor,
    cached: &manifest::Manifest,
    cache_dir: &Path,
) -> Result<()> {
    use crate::engine::error::{Error, ErrorKind};
    let remote = match stored::read_manifest(backend, name, decryptor) {
        Ok(m) => m,
        Err(e) => {
            let e = Error::classify(e);
            if e.kind() == ErrorKind::WrongKey {
                return Ok(());
            }
            return Err(e.into_anyhow());
        }
    };
    // What duplicity's Manifest.__eq__ compares: the volume numbers, the host and the directory.
    let key = |m: &manifest::Manifest| {
        let numbers: Vec<u32> = m.volumes.iter().map(|v| v.number).collect();
        (numbers, m.hostname.clone(), m.localdir.clone())
    };
    if key(&remote) != key(cached) {
        return Err(cache::ManifestMismatch {
            name: name.to_string(),
            cache_dir: cache_dir.to_path_buf(),
        }
        .into());
    }
    Ok(())
}

/// Checks, before anything is written, that an incremental encrypts as the chain it continues: the
/// chain's last manifest must open with this run's passphrase, or name one of this run's public keys.
/// Otherwise a typo or a rotated secret would leave a chain that no single passphrase restores.
fn check_chain_keys(
    backend: &dyn Backend,
    manifest_name: &str,
    decryptor: &Decryptor,
    ctx: &WriteContext,
) -> Result<()> {
    let storage = names::parse(manifest_name).map(|p| p.storage);
    if storage != Some(Storage::Gpg) {
        return Ok(()); // an unencrypted chain: encrypting from now on loses nothing
    }
    let public_key = ctx.keys.public_key();
    if !public_key && ctx.passphrase.is_none() {
        bail!(
            "the chain this incremental would continue is encrypted ({manifest_name}), but this run has \
             no passphrase or key: set PASSPHRASE (or --encrypt-key) as for that chain, or run a full \
             backup to start a new chain"
        );
    }
    let mut file = stored::fetch(backend, manifest_name)?;
    let keys = crate::engine::crypto::message_keys(BufReader::new(&file))
        .with_context(|| format!("cannot read the manifest {manifest_name}"))?;
    if public_key {
        if !ctx.keys.recipients.iter().any(|r| keys.includes(r)) {
            let ours: Vec<&str> = ctx
                .keys
                .recipients
                .iter()
                .map(|r| r.cert.as_str())
                .collect();
            bail!(
                "the chain this incremental would continue is encrypted to {} ({manifest_name}), not to \
                 the key(s) given ({}): pass the chain's --encrypt-key, or run a full backup to start a \
                 chain with the new key",
                keys.describe(),
                ours.join(", ")
            );
        }
        return Ok(());
    }
    if !keys.passphrase {
        bail!(
            "the chain this incremental would continue is encrypted to {} ({manifest_name}), not with a \
             passphrase: pass the chain's --encrypt-key, or run a full backup to start a chain that uses \
             the passphrase",
            keys.describe()
        );
    }
    // Decrypting the manifest proves the passphrase (the same error as restore gives).
    file.rewind()?;
    stored::decode_manifest(file, manifest_name, decryptor)?;
    Ok(())
}

/// duplicity refuses to continue a chain made from another host or directory.
fn check_source(m: &manifest::Manifest, hostname: &[u8], opts: &BackupOptions) -> Result<()> {
    if opts.allow_source_mismatch {
        return Ok(());
    }
    if let Some(h) = &m.hostname {
        if h.as_slice() != hostname {
            bail!(
                "the last backup was made on host {:?}, this is {:?}: pass --allow-source-mismatch to continue that chain, or run a full backup",
                String::from_utf8_lossy(h),
                String::from_utf8_lossy(hostname)
            );
        }
    }
    if let Some(d) = &m.localdir {
        if d.as_slice() != opts.source_as_typed.as_bytes() {
            bail!(
                "the last backup was of {:?}, this is {:?}: pass --allow-source-mismatch to continue that chain, or run a full backup",
                String::from_utf8_lossy(d),
                opts.source_as_typed
            );
        }
    }
    Ok(())
}

/// A source file that could not be read: noted and skipped, the backup goes on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceReadError(io::Error);

fn record_deletion<S: VolumeSink, W: Write>(
    vol: &mut DiffTarWriter<S>,
    sigs: &mut SigTarWriter<W>,
    manifest: &mut ManifestWriter,
    stats: &mut BackupStats,
    old: &sigtar::SigEntry,
) -> Result<()> {
    if old.index.is_root() {
        return Ok(());
    }
    vol.add_deleted(&old.index)?;
    sigs.add_deleted(&old.index)?;
    stats.deleted_files += 1;
    stats.delta_entries += 1;
    if old
        .meta
        .as_ref()
        .is_some_and(|m| m.ftype == FileType::Regular)
    {
        manifest.add_file(FileAction::Deleted, &old.index)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the walk's writers and counters, each borrowed separately
fn back_up_entry<S: VolumeSink, W: Write>(
    vol: &mut DiffTarWriter<S>,
    sigs: &mut SigTarWriter<W>,
    manifest: &mut ManifestWriter,
    stats: &mut BackupStats,
    entry: &SourceEntry,
    before: Option<&sigtar::SigEntry>,
    notes: &mut Vec<String>,
    tuning: &BackupTuning,
) -> Result<()> {
    // The counts follow duplicity's `diffdir.get_delta_iter` and `StatsDeltaProcess`: sizes are the
    // entry's `st_size` (a directory's or a symlink's too); every snapshot (a new entry, a changed
    // non-regular one, a regular file without an earlier signature) is "new", only a regular file
    // stored as a delta is "changed"; an entry that cannot be read counts as an error only.
    let m = &entry.meta;
    if let Some(old) = before.and_then(|b| b.meta.as_ref()) {
        if m.same_as_for_backup(old) {
            stats.source_files += 1;
            stats.source_file_size += stat_size(entry);
            return Ok(());
        }
    }
    let old_sig = before.and_then(|b| b.signature.as_deref());
    if m.ftype != FileType::Regular {
        vol.add_metadata(&entry.index, m)?;
        sigs.add_snapshot(&entry.index, m)?;
        let size = stat_size(entry);
        stats.source_files += 1;
        stats.source_file_size += size;
        stats.delta_entries += 1;
        stats.new_files += 1;
        stats.new_file_size += size;
        return Ok(());
    }
    let (file, at_open) = open_source(&entry.path, tuning.copy_links).map_err(SourceReadError)?;
    stats.source_files += 1;
    stats.delta_entries += 1;
    // The data read and the metadata stored describe the same file: take size and mtime from the
    // descriptor, in case the file was replaced or written since the walk saw it.
    let mut m = m.clone();
    m.mtime = at_open.mtime_secs.max(0);
    m.size = at_open.size;
    let size = m.size;
    let block = delta::block_len_for(size, tuning.max_blocksize);
    let mut reader = SourceReader::new(&file);
    // Each file is read once: the same bytes feed the archive (snapshot or delta) and the new
    // signature, so the stored signature always describes exactly the bytes stored, however the file
    // changes meanwhile (reading it twice let a later delta build on bytes that were never stored).
    let (len, sig) = match old_sig {
        Some(old_sig) => std::thread::scope(|s| -> Result<(u64, Vec<u8>)> {
            let mut feed = SignatureFeed::start(s, size, block);
            let tee = TeeReader::new(&mut reader, |b: &[u8]| feed.push(b));
            let mut d = delta::delta(BufReader::with_capacity(128 * 1024, tee), old_sig)?;
            let mut pw = vol.payload(&entry.index, &m, true);
            io::copy(&mut d, &mut pw)?;
            let len = pw.finish()?;
            drop(d);
            Ok((len, feed.finish()?))
        })?,
        None => {
            let mut pw = vol.payload(&entry.index, &m, false);
            let mut fail: Option<io::Error> = None;
            let sig = delta::signature(
                TeeReader::new(&mut reader, |b: &[u8]| {
                    pw.write_all(b)
                        .inspect_err(|e| fail = Some(io::Error::new(e.kind(), e.to_string())))
                }),
                size,
                block,
            );
            if let Some(e) = fail {
                return Err(e.into());
            }
            let sig = sig?;
            (pw.finish()?, sig)
        }
    };
    let (read, read_error) = (reader.bytes, reader.error.take());
    let at_end = FileStamp::of(&file).map_err(SourceReadError);
    let changed = match &at_end {
        Ok(end) => *end != at_open || read != at_open.size,
        Err(_) => true,
    };
    // The signature's metadata decides whether the next backup reads the file again. When what was
    // stored may not be the file's final content and its whole-second mtime would not show it (a read
    // error cut it short; a write during the read or later in the same second as its mtime: "racy"
    // as in git), store a different mtime there, so the next backup compares the data again. The
    // volume keeps the real metadata, which is what restore applies.
    let now_secs = wall_now().floor() as i64;
    let force_reread = read_error.is_some()
        || match &at_end {
            Ok(end) => {
                end.mtime_secs >= now_secs || (changed && end.mtime_secs == at_open.mtime_secs)
            }
            Err(_) => true,
        };
    let mut sig_meta = m.clone();
    if force_reread {
        sig_meta.mtime = if m.mtime == 0 { 1 } else { 0 };
    }
    sigs.add_signature(&entry.index, &sig_meta, &sig)?;
    if let Some(e) = read_error {
        stats.errors += 1;
        notes.push(format!(
            "{}: read error after {read} bytes ({e}): stored what was read; the next backup reads it again",
            entry.path.display()
        ));
    } else if changed {
        stats.changed_during_backup += 1;
        notes.push(format!(
            "{}: changed while it was read: stored as read, consistently; the next backup stores the rest",
            entry.path.display()
        ));
    }
    // duplicity counts the bytes read; it never adds to ChangedDeltaSize (it stays 0 there too).
    stats.source_file_size += read;
    match old_sig {
        Some(_) => {
            manifest.add_file(FileAction::Changed, &entry.index)?;
            stats.changed_files += 1;
            stats.changed_file_size += size;
        }
        None => {
            manifest.add_file(FileAction::New, &entry.index)?;
            stats.new_files += 1;
            stats.new_file_size += size;
        }
    }
    stats.raw_delta_size += len;
    Ok(())
}

/// An entry's `st_size` as duplicity's `ROPath.getsize` reads it: from the walk's stat, no second one.
fn stat_size(entry: &SourceEntry) -> u64 {
    if entry.meta.ftype == FileType::Regular {
        return entry.meta.size;
    }
    entry.stat_size
}

/// Opens a source file for reading without following a symlink (unless `--copy-links`) and without
/// blocking on a fifo: the walk saw a regular file, but it may have been replaced since. Anything else
/// is reported, and the entry keeps its earlier version in the chain.
fn open_source(path: &Path, follow: bool) -> io::Result<(File, FileStamp)> {
    use rustix::fs::{Mode, OFlags};
    let nofollow = if follow {
        OFlags::empty()
    } else {
        OFlags::NOFOLLOW
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | nofollow | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => io::Error::other(
            "became a symlink while the backup ran: its earlier version is kept; the next backup stores it",
        ),
        e => io::Error::from(e),
    })?;
    let file = File::from(fd);
    let md = file.metadata()?;
    if !md.file_type().is_file() {
        return Err(io::Error::other(
            "is no longer a regular file: its earlier version is kept; the next backup stores it",
        ));
    }
    Ok((file, FileStamp::from(&md)))
}

/// What tells whether a file changed: size, mtime and ctime to the nanosecond, and the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    size: u64,
    mtime_secs: i64,
    mtime_nsec: i64,
    ctime_secs: i64,
    ctime_nsec: i64,
    ino: u64,
}

impl FileStamp {
    fn of(f: &File) -> io::Result<FileStamp> {
        Ok(FileStamp::from(&f.metadata()?))
    }

    fn from(md: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            size: md.len(),
            mtime_secs: md.mtime(),
            mtime_nsec: md.mtime_nsec(),
            ctime_secs: md.ctime(),
            ctime_nsec: md.ctime_nsec(),
            ino: md.ino(),
        }
    }
}

/// Reads a source file, counting bytes. A read error ends the data (as an end of file) and is kept
/// for the caller: what was read so far is then stored whole and consistent (archive and signature
/// alike) instead of leaving half an entry in a volume.
struct SourceReader<'f> {
    file: &'f File,
    bytes: u64,
    error: Option<io::Error>,
    ended: bool,
}

impl<'f> SourceReader<'f> {
    fn new(file: &'f File) -> Self {
        SourceReader {
            file,
            bytes: 0,
            error: None,
            ended: false,
        }
    }
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() || self.ended {
            return Ok(0);
        }
        loop {
            match self.file.read(buf) {
                // The end is final: a file that grows after it was seen would otherwise hand librsync
                // more data after an end of input, which it rejects ("internal error").
                Ok(0) if !buf.is_empty() => {
                    self.ended = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.bytes += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    return Ok(0);
                }
            }
        }
    }
}

/// The new signature of a changed file, computed from the bytes the delta reads as they pass: in
/// memory for small files, on another core (fed through a bounded channel) for large ones.
enum SignatureFeed<'s> {
    Buffered(Vec<u8>, u64, usize),
    Threaded {
        tx: Option<SyncSender<Vec<u8>>>,
        job: ScopedJoinHandle<'s, io::Result<Vec<u8>>>,
    },
}

impl<'s> SignatureFeed<'s> {
    fn start<'e>(scope: &'s Scope<'s, 'e>, size: u64, block: usize) -> Self {
        if size < PARALLEL_SIGNATURE_FROM {
            return SignatureFeed::Buffered(Vec::with_capacity(size as usize), size, block);
        }
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let job = scope.spawn(move || delta::signature(ChannelReader::new(rx), size, block));
        SignatureFeed::Threaded { tx: Some(tx), job }
    }

    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            SignatureFeed::Buffered(buf, ..) => buf.extend_from_slice(bytes),
            SignatureFeed::Threaded { tx, .. } => {
                let sent = tx.as_ref().map(|tx| tx.send(bytes.to_vec()));
                if !matches!(sent, Some(Ok(()))) {
                    return Err(io::Error::other("the signature worker stopped"));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>> {
        match self {
            SignatureFeed::Buffered(buf, size, block) => {
                Ok(delta::signature(&buf[..], size, block)?)
            }
            SignatureFeed::Threaded { mut tx, job } => {
                tx.take();
                Ok(job
                    .join()
                    .map_err(|_| anyhow!("signature thread panicked"))??)
            }
        }
    }
}

/// A reader over the chunks a channel delivers; ends when the sender is dropped.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes to two sinks (the remote sigtar and the archive dir's gzipped copy).
struct Tee<A: Write, B: Write>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

type VolumeJob<'s> = ScopedJoinHandle<'s, Result<(u32, Stored)>>;

/// Hands each volume to a worker thread that seals it into a temporary file and uploads it. By default
/// two volumes are in flight: sealing runs beside the walk on the second core, and on a slow link a
/// closed volume's upload overlaps the one before. `--concurrency N` allows N in flight, so up to N
/// uploads run at once (a high-latency store); each costs a volume of temporary disk, not memory.
struct PipelineSink<'s, 'e> {
    scope: &'s Scope<'s, 'e>,
    backend: &'e dyn Backend,
    sealing: Sealing<'e>,
    storage: Storage,
    dir: &'e Path,
    vol_kind: &'e dyn Fn(u32) -> NameKind,
    tx: Option<SyncSender<Vec<u8>>>,
    in_flight: Vec<VolumeJob<'s>>,
    /// Volumes sealed or uploaded at once (`--concurrency`, at least [`IN_FLIGHT`]).
    max_in_flight: usize,
    done: Vec<(u32, Stored)>,
    progress: Option<&'e ProgressFn>,
    source_read: &'e AtomicU64,
    stored_so_far: &'e AtomicU64,
}

const IN_FLIGHT: usize = 2;

impl<'s, 'e> PipelineSink<'s, 'e> {
    fn join_oldest(&mut self) -> io::Result<()> {
        let h = self.in_flight.remove(0);
        match h.join() {
            Ok(Ok(done)) => {
                self.done.push(done);
                Ok(())
            }
            Ok(Err(e)) => Err(io::Error::other(format!("{e:#}"))),
            Err(_) => Err(io::Error::other("a volume worker panicked")),
        }
    }

    fn start(&mut self, volume: u32) -> io::Result<()> {
        while self.in_flight.len() >= self.max_in_flight {
            self.join_oldest()?;
        }
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let name = names::format(&(self.vol_kind)(volume), self.storage);
        let path = self.dir.join(format!("vol{volume}"));
        let sealing = self.sealing;
        let backend = self.backend;
        let (progress, source_read, stored_so_far) =
            (self.progress, self.source_read, self.stored_so_far);
        let job = move || -> Result<(u32, Stored)> {
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = ContainerWriter::new(file, sealing)?;
            let mut chunks = 0u64;
            for buf in rx {
                w.write_all(&buf)
                    .with_context(|| format!("cannot write volume {volume}"))?;
                chunks += 1;
                if chunks == 2 {
                    test_hook(&format!("during-volume-{volume}"));
                }
            }
            let stored = w
                .finish()
                .with_context(|| format!("cannot finish volume {volume}"))?;
            backend
                .put_move(&path, &name)
                .with_context(|| format!("cannot upload {name}"))?;
            test_hook(&format!("after-volume-{volume}"));
            let total = stored_so_far.fetch_add(stored.size, Ordering::Relaxed) + stored.size;
            if let Some(report) = progress {
                report(&VolumeProgress {
                    volume,
                    volume_bytes: stored.size,
                    stored_bytes: total,
                    source_bytes: source_read.load(Ordering::Relaxed),
                });
            }
            Ok((volume, stored))
        };
        let h = std::thread::Builder::new()
            .name(format!("volume-{volume}"))
            .spawn_scoped(self.scope, job)?;
        self.in_flight.push(h);
        self.tx = Some(tx);
        Ok(())
    }

    /// Waits for every volume; their results in volume order.
    fn wait(mut self) -> Result<Vec<Stored>> {
        self.tx = None;
        while !self.in_flight.is_empty() {
            self.join_oldest()?;
        }
        self.done.sort_by_key(|(n, _)| *n);
        Ok(self.done.into_iter().map(|(_, s)| s).collect())
    }

    /// A worker stopped early: surface its error rather than "channel closed".
    fn worker_error(&mut self) -> io::Error {
        self.tx = None;
        while !self.in_flight.is_empty() {
            if let Err(e) = self.join_oldest() {
                return e;
            }
        }
        io::Error::other("a volume worker stopped")
    }
}

impl VolumeSink for PipelineSink<'_, '_> {
    fn write(&mut self, volume: u32, bytes: Vec<u8>) -> io::Result<()> {
        if self.tx.is_none() {
            self.start(volume)?;
        }
        if self.tx.as_ref().expect("open").send(bytes).is_err() {
            return Err(self.worker_error());
        }
        Ok(())
    }

    fn close(&mut self, _volume: u32) -> io::Result<()> {
        self.tx = None;
        Ok(())
    }
}

/// What a backup of `dir` with `selection` will count as its SourceFileSize if nothing changes
/// meanwhile: the `st_size` of every selected entry, walked as the backup walks. The total a backup's
/// progress (the CLI's bar, the charm's action-log) counts to, as duplicity's `--progress` makes a
/// first pass over the selected files.
pub fn source_size(dir: &Path, selection: &Selection) -> u64 {
    TreeWalk::with_selection(dir, selection.clone())
        .map(|e| stat_size(&e))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values printed by duplicity 3.2.1's `StatsObj.get_byte_summary_string` and
    /// `dup_time.inttopretty`.
    #[test]
    fn summaries_as_duplicity_words_them() {
        let bytes = [
            (0, "0 bytes"),
            (1, "1 byte"),
            (1023, "1023 bytes"),
            (1024, "1.00 KB"),
            (10 * 1024, "10.0 KB"),
            (150 * 1024, "150 KB"),
            (5_000_000, "4.77 MB"),
            (3 << 40, "3.00 TB"),
        ];
        for (n, want) in bytes {
            assert_eq!(human_bytes(n), want);
        }
        let secs = [
            (0.5, "0.50 seconds"),
            (1.0, "1 second"),
            (61.5, "1 minute 1.50 seconds"),
            (3600.4, "1 hour"),
            (7322.0, "2 hours 2 minutes 2.00 seconds"),
            (59.999, "60.00 seconds"),
        ];
        for (t, want) in secs {
            assert_eq!(human_seconds(t), want);
        }
    }
}
