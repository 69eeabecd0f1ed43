//! The engine runs the actions and the scheduler share, from the settings file the charm wrote: the
//! engine is called in-process, and each job returns its results as Juju action keys (lowercase,
//! digits, dashes, dots to nest) plus the numbers kept in the state file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::backend::OpenOptions;
use crate::engine::collection::{BackupSet, SetKind};
use crate::engine::commands::backup::{self, ProgressFn};
use crate::engine::commands::list::{self, ListedFile};
use crate::engine::commands::restore::{self, RestoreProgressFn};
use crate::engine::commands::retention::RetentionCommand;
use crate::engine::commands::{status, verify};
use crate::engine::crypto::Passphrase;
use crate::engine::index::Index;
use crate::engine::keys;
use crate::engine::repository::{Encryption, Keys, RecipientSpec, Repository, RepositoryConfig};
use crate::engine::selection::Selection;
use crate::engine::timestr::{self, format_timestamp};

use super::paths::{Paths, ARCHIVE_DIR, LOCK_FILE, STATE_FILE};
use super::settings::{EncryptionSettings, Secret, Settings};

/// How long a job waits for the engine's writer lock: the run lock already keeps the charm's own runs
/// apart, so this wait is for an operator's CLI run on the same archive dir or target.
fn engine_lock_wait() -> std::time::Duration {
    super::runlock::wait_from_env(crate::engine::lock::DEFAULT_WAIT)
}

/// Action results: Juju keys to string values.
pub type Results = BTreeMap<String, String>;

/// Results longer than this (one `action-set` argument) are cut: Linux caps one argument at 128 KiB.
pub const MAX_VALUE: usize = 64 * 1024;

/// What a job did.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub results: Results,
    /// Kept in the state file.
    pub stats: BTreeMap<String, u64>,
    /// `full` / `incremental` for backups.
    pub detail: Option<String>,
}

/// The private key a restore of public-key encrypted backups needs (from the restore action's Juju
/// secret), and the passphrase that unlocks it.
#[derive(Clone)]
pub struct RestoreSecret {
    pub armored: String,
    pub passphrase: String,
}

impl std::fmt::Debug for RestoreSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestoreSecret(..)")
    }
}

/// One unit's settings, where its state lives, and the root paths resolve under.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub settings: Settings,
    /// The on-disk directory of the settings file (state, lock and archive dir live there).
    pub dir: PathBuf,
    pub paths: Paths,
    /// Set by the restore action when given `secret-key`.
    pub secret: Option<RestoreSecret>,
}

impl Runtime {
    /// Loads the settings file at its on-disk path.
    pub fn load(settings_file: &Path, paths: Paths) -> Result<Runtime> {
        let settings = Settings::load(settings_file)?;
        let dir = settings_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Runtime {
            settings,
            dir,
            paths,
            secret: None,
        })
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// The backed-up directory on disk.
    pub fn source(&self) -> PathBuf {
        self.paths.resolve(&self.settings.source)
    }

    /// The one place where the charm's settings become the engine's configuration. Credentials go to
    /// the backend in its options, never through this process's environment (the hook tools it runs
    /// would inherit them). SSH uses the charm's key and known_hosts only.
    pub(super) fn repository_config(&self) -> Result<RepositoryConfig> {
        let s = &self.settings;
        let mut backend = OpenOptions::new();
        if let Some(key) = &s.ssh_key_file {
            backend.ssh_options.push(format!(
                "-oIdentityFile={}",
                self.paths.resolve(key).display()
            ));
        }
        backend.ssh_options.push(format!(
            "-oUserKnownHostsFile={}",
            self.paths.resolve(&s.known_hosts_file).display()
        ));
        let c = &s.credentials;
        let expose = |v: &Option<Secret>| v.as_ref().map(|v| v.expose().to_string());
        backend.ftp_password = expose(&c.remote_password);
        backend.aws_access_key_id.clone_from(&c.aws_access_key_id);
        backend.aws_secret_access_key = expose(&c.aws_secret_access_key);
        backend.azure_connection_string = expose(&c.azure_connection_string);
        backend.s3_endpoint_url.clone_from(&s.s3_endpoint_url);
        backend.s3_region_name.clone_from(&s.s3_region_name);
        s.storage.apply(&mut backend)?;
        backend.upload_limit = s.upload_rate_limit;
        backend.download_limit = s.download_rate_limit;

        let mut keys = Keys::default();
        match &s.encryption {
            EncryptionSettings::None => keys.encryption = Encryption::None,
            EncryptionSettings::Passphrase { passphrase } => {
                keys.encryption = Encryption::Passphrase;
                keys.passphrase = Some(Passphrase::new(passphrase.expose()));
            }
            EncryptionSettings::PublicKey {
                key_file,
                fingerprint,
            } => {
                keys.encryption = Encryption::PublicKey(vec![RecipientSpec {
                    key: fingerprint.clone(),
                    hidden: false,
                }]);
                keys.public_keys =
                    keys::load_all(&[self.paths.resolve(key_file)]).context("gpg_public_key")?;
            }
        }
        if let Some(secret) = &self.secret {
            // The restore key: loaded from a 0600 temporary file in the state directory that is
            // removed at once; its passphrase unlocks it.
            let mut tmp = tempfile::Builder::new()
                .prefix(".restore-key-")
                .tempfile_in(&self.dir)
                .context("cannot write the restore key to the state directory")?;
            std::io::Write::write_all(&mut tmp, secret.armored.as_bytes())?;
            keys.secret_keys = keys::load_all(&[tmp.path()])?;
            keys.passphrase = Some(Passphrase::new(secret.passphrase.clone()));
        }
        Ok(RepositoryConfig {
            url: s.url.clone(),
            backend,
            keys,
            archive_dir: Some(self.dir.join(ARCHIVE_DIR)),
            name: None,
            volsize: u64::from(s.volume_size_mib) * 1024 * 1024,
            lock_wait: engine_lock_wait(),
            concurrency: 0,
            prefixes: Default::default(),
            compression: true,
            append_only_target: s.append_only_target,
            // Every chain's metadata in the archive dir, as before duplicity 3's partial sync.
            metadata: crate::engine::cache::SyncPolicy {
                check_remote: true,
                full: true,
            },
        })
    }

    /// `exclude_patterns` as the engine's selection, matched against the source as the settings name it
    /// (the real path, also under `DUPLICITY_CHARM_ROOT`, where the walk reads [`Runtime::source`]).
    pub(crate) fn selection(&self) -> Result<Selection> {
        let rules: Vec<_> = self.settings.selection.iter().map(|l| l.rule()).collect();
        Selection::new(Path::new(&self.settings.source), &rules, false)
            .context("exclude_patterns cannot be used: run a hook (`juju config`) to see why")
    }

    fn open(&self) -> Result<Repository> {
        Repository::open(self.repository_config()?)
            .with_context(|| format!("cannot open the backup target {}", self.settings.url))
    }

    /// A backup: incremental, or full when asked, when none exists, or when `full_if_older_than` says so.
    pub fn backup(&self, force_full: bool, progress: Option<ProgressFn>) -> Result<Outcome> {
        let repo = self.open()?;
        let now = chrono::Utc::now().timestamp();
        let full_if_older_than = self
            .settings
            .full_if_older_than
            .as_deref()
            .map(timestr::parse_interval)
            .transpose()
            .context("full_if_older_than")?;
        let report = repo.backup(&backup::BackupOptions {
            source: self.source(),
            source_as_typed: self.settings.source.clone(),
            force_full,
            full_if_older_than,
            now,
            fixed_time: false,
            allow_source_mismatch: false,
            dry_run: false,
            progress,
            selection: self.selection()?,
            full_if_n_inc: None,
            source_bytes_read: None,
            jsonstat: None,
            tuning: Default::default(),
        })?;
        let s = &report.stats;
        let kind = if report.full { "full" } else { "incremental" };
        let mut out = Outcome {
            detail: Some(kind.into()),
            ..Default::default()
        };
        let stats = [
            ("volumes", u64::from(report.volumes)),
            ("source-files", s.source_files),
            ("source-bytes", s.source_file_size),
            ("new-files", s.new_files),
            ("new-bytes", s.new_file_size),
            ("changed-files", s.changed_files),
            ("changed-bytes", s.changed_file_size),
            ("deleted-files", s.deleted_files),
            ("stored-bytes", s.total_destination_size_change),
            ("errors", s.errors),
        ];
        for (k, v) in stats {
            out.stats.insert(k.into(), v);
            out.results.insert(format!("statistics.{k}"), v.to_string());
        }
        out.results.insert("type".into(), kind.into());
        out.results
            .insert("time".into(), format_timestamp(report.time));
        out.results.insert(
            "elapsed-seconds".into(),
            format!("{:.1}", s.end_time - s.start_time),
        );
        out.results.insert("target".into(), repo.describe());
        if !report.problems.is_empty() {
            out.results
                .insert("problems".into(), cut(&report.problems.join("\n")));
        }
        Ok(out)
    }

    /// Restores `path` (or everything) as of `time` to `target` (on disk); `shown` is the target as the
    /// operator knows it.
    pub fn restore(
        &self,
        time: i64,
        path: Option<Index>,
        target: &Path,
        force: bool,
        progress: Option<RestoreProgressFn>,
    ) -> Result<Outcome> {
        let report = self.open()?.restore(&restore::RestoreOptions {
            target: target.to_path_buf(),
            time,
            path,
            force,
            progress,
            restore_ownership: true,
            numeric_owner: false,
            rename: Vec::new(),
            selection: None,
            ignore_errors: false,
        })?;
        let mut out = Outcome::default();
        for (k, v) in [
            ("files", report.files),
            ("bytes", report.bytes),
            ("volumes", report.volumes),
            ("sets", report.set_times.len() as u64),
        ] {
            out.stats.insert(k.into(), v);
            out.results.insert(k.into(), v.to_string());
        }
        if let Some(t) = report.set_times.last() {
            out.results
                .insert("backup-time".into(), format_timestamp(*t));
        }
        if !report.notes.is_empty() {
            out.results
                .insert("notes".into(), cut(&report.notes.join("\n")));
        }
        Ok(out)
    }

    pub fn verify(&self, compare_data: bool) -> Result<Outcome> {
        let report = self.open()?.verify(&verify::VerifyOptions {
            source: self.source(),
            time: chrono::Utc::now().timestamp(),
            compare_data,
            scratch_in: None,
            selection: self.selection()?,
            // The charm's backups store symlinks as links.
            copy_links: false,
            read_size: None,
        })?;
        let mut out = Outcome::default();
        let n = report.differences.len() as u64;
        out.stats.insert("compared".into(), report.compared);
        out.stats.insert("differences".into(), n);
        out.results
            .insert("compared".into(), report.compared.to_string());
        out.results.insert("differences".into(), n.to_string());
        out.results.insert(
            "result".into(),
            if n == 0 { "ok" } else { "differences-found" }.into(),
        );
        out.results
            .insert("compare-data".into(), compare_data.to_string());
        if n > 0 {
            let lines: Vec<&str> = report
                .differences
                .iter()
                .map(|d| d.message.as_str())
                .collect();
            out.results.insert("details".into(), cut(&lines.join("\n")));
        }
        Ok(out)
    }

    /// The files as of `time`: `mtime path` lines, as duplicity prints them (UTC times here).
    pub fn list_current_files(&self, time: i64) -> Result<Outcome> {
        let repo = self.open()?;
        let mut lines = String::new();
        let mut count = 0u64;
        let mut shown = 0u64;
        let listed = repo.for_each_current_file(time, |f: ListedFile| {
            count += 1;
            let line = format!(
                "{} {} {}\n",
                format_timestamp(f.mtime),
                list::type_name(f.ftype),
                String::from_utf8_lossy(&f.path)
            );
            if lines.len() + line.len() <= MAX_VALUE {
                lines.push_str(&line);
                shown += 1;
            }
            Ok(())
        })?;
        let mut out = Outcome::default();
        out.stats.insert("files".into(), count);
        out.results.insert("count".into(), count.to_string());
        out.results.insert("listing".into(), lines);
        out.results
            .insert("truncated".into(), (shown < count).to_string());
        out.results.insert("time".into(), format_timestamp(time));
        if !listed.notes.is_empty() {
            out.results
                .insert("notes".into(), cut(&listed.notes.join("\n")));
        }
        Ok(out)
    }

    /// The chains and sets, one key per fact.
    pub fn collection_status(&self) -> Result<Outcome> {
        let repo = self.open()?;
        let col = repo.collection()?;
        let mut r = Results::new();
        r.insert("target".into(), repo.describe());
        r.insert(
            "last-full".into(),
            col.last_full_time().map_or("none".into(), format_timestamp),
        );
        let mut chains: Vec<(&str, &crate::engine::collection::BackupChain)> =
            col.secondary_chains().map(|c| ("secondary", c)).collect();
        if let Some(p) = col.primary_chain() {
            chains.push(("primary", p));
        }
        r.insert("chain-count".into(), chains.len().to_string());
        for (i, (role, chain)) in chains.iter().enumerate() {
            let k = format!("chains.{}", i + 1);
            r.insert(format!("{k}.role"), (*role).into());
            r.insert(format!("{k}.start"), format_timestamp(chain.start));
            r.insert(format!("{k}.end"), format_timestamp(chain.end));
            r.insert(format!("{k}.volumes"), chain.num_volumes().to_string());
            for (j, set) in chain.sets().enumerate() {
                set_keys(&mut r, &format!("{k}.sets.{}", j + 1), set);
            }
        }
        let warnings = col.warnings();
        if !warnings.is_empty() {
            r.insert("warnings".into(), cut(&warnings.join("\n")));
        }
        r.insert(
            "summary".into(),
            cut(&status::render_text(&col, &repo.describe())),
        );
        let mut out = Outcome {
            results: r,
            ..Default::default()
        };
        out.stats.insert("chains".into(), chains.len() as u64);
        Ok(out)
    }

    /// A retention command; applied unless `dry_run`.
    pub fn retention(&self, command: RetentionCommand, dry_run: bool) -> Result<Outcome> {
        let (plan, applied) = self.open()?.retention(command, !dry_run)?;
        let remote = plan.remote_names();
        let mut out = Outcome::default();
        out.results.insert("dry-run".into(), dry_run.to_string());
        out.results.insert(
            if dry_run { "would-delete" } else { "deleted" }.into(),
            remote.len().to_string(),
        );
        out.results.insert("files".into(), cut(&remote.join("\n")));
        out.results
            .insert("message".into(), cut(plan.render(!dry_run).trim_end()));
        // Chains the target still locks (S3 Object Lock): kept, with until when.
        if !plan.locked.is_empty() {
            let locked: Vec<String> = plan.locked.iter().map(|g| g.describe()).collect();
            out.results.insert("locked".into(), cut(&locked.join("\n")));
        }
        if let Some(t) = plan.remove_time.filter(|t| *t > 0) {
            out.results
                .insert("remove-time".into(), format_timestamp(t));
        }
        out.stats.insert(
            "deleted".into(),
            applied.map_or(0, |a| a.remote_deleted as u64),
        );
        out.stats.insert("planned".into(), remote.len() as u64);
        Ok(out)
    }

    /// The scheduled retention: `remove-older-than <retention>` when a period is set, then
    /// `remove-all-but-n-full <keep_full_backups>` when that is set.
    pub fn scheduled_retention(&self) -> Result<Outcome> {
        let now = chrono::Utc::now().timestamp();
        let mut commands = Vec::new();
        if let Some(retention) = &self.settings.retention {
            let t = timestr::parse_time(retention, now)
                .with_context(|| format!("retention {retention:?}"))?;
            commands.push(RetentionCommand::RemoveOlderThan { time: t });
        }
        if self.settings.keep_full_backups > 0 {
            commands.push(RetentionCommand::RemoveAllButNFull {
                n: self.settings.keep_full_backups as usize,
            });
        }
        if self.settings.append_only_target {
            return self.scheduled_retention_report(&commands);
        }
        let mut total = Outcome::default();
        let mut deleted = 0;
        for c in commands {
            let o = self.retention(c, false)?;
            deleted += o.stats.get("deleted").copied().unwrap_or(0);
            for (k, v) in o.results {
                total.results.insert(format!("{}.{k}", c.name()), v);
            }
        }
        total.stats.insert("deleted".into(), deleted);
        Ok(total)
    }
}

impl Runtime {
    /// Scheduled retention on an append-only target (`append_only_target`): the unit cannot delete, so
    /// each command is only planned, and what it would delete is logged as the server-side pruning to
    /// do. Not a failure: backups go on, and the operator was told by the option's documentation.
    fn scheduled_retention_report(&self, commands: &[RetentionCommand]) -> Result<Outcome> {
        let mut total = Outcome::default();
        let mut planned = 0;
        for c in commands {
            let o = self.retention(*c, true)?;
            let n = o.stats.get("planned").copied().unwrap_or(0);
            planned += n;
            if n > 0 {
                crate::logging::warn(&format!(
                    "append_only_target: {} deletes nothing on this append-only target; prune these {n} file(s) on the server side:\n{}",
                    c.name(),
                    o.results.get("files").map(String::as_str).unwrap_or("")
                ));
            }
            for (k, v) in o.results {
                total.results.insert(format!("{}.{k}", c.name()), v);
            }
        }
        total.results.insert(
            "append-only".into(),
            "nothing deleted: this target is append-only; prune on the server side".into(),
        );
        total.stats.insert("deleted".into(), 0);
        total.stats.insert("prune-on-server".into(), planned);
        // Shown in the scheduler's log line and kept in the state file's record of the run.
        total.detail = Some(format!(
            "append-only target: nothing deleted; {planned} file(s) to prune on the server side"
        ));
        Ok(total)
    }
}

fn set_keys(r: &mut Results, k: &str, set: &BackupSet) {
    let kind = match set.kind {
        SetKind::Full { .. } => "full",
        SetKind::Inc { .. } => "incremental",
    };
    r.insert(format!("{k}.type"), kind.into());
    r.insert(format!("{k}.time"), format_timestamp(set.time()));
    r.insert(format!("{k}.volumes"), set.num_volumes().to_string());
    r.insert(format!("{k}.encrypted"), set.encrypted.to_string());
}

/// A value cut to [`MAX_VALUE`] bytes (on a character boundary), saying so.
pub fn cut(s: &str) -> String {
    if s.len() <= MAX_VALUE {
        return s.to_string();
    }
    let mut end = MAX_VALUE - 40;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n... ({} more bytes cut)", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let s = "é".repeat(MAX_VALUE);
        let c = cut(&s);
        assert!(c.len() < MAX_VALUE + 50);
        assert!(c.ends_with("more bytes cut)"));
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn rate_limits_reach_the_backend_options() {
        let raw = super::super::config::RawConfig {
            backend: "file".into(),
            remote_backup_url: "file:///srv/b".into(),
            encryption_passphrase: "p".into(),
            upload_rate_limit: "500K".into(),
            download_rate_limit: "2M".into(),
            ..Default::default()
        };
        let state = super::super::config::validate(&raw, "d/0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = super::super::paths::UnitFiles::new("d-0");
        let runtime = Runtime {
            settings: Settings::new(&state, "d/0", &files),
            dir: dir.path().to_path_buf(),
            paths: Paths::with_root(None),
            secret: None,
        };
        let config = runtime.repository_config().unwrap();
        assert_eq!(config.backend.upload_limit, Some(500 * 1024));
        assert_eq!(config.backend.download_limit, Some(2 << 20));
    }
}
