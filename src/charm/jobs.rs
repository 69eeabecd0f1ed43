//! The engine runs the actions and the scheduler share, from the settings file the charm wrote: the
//! engine is called in-process, and each job returns its results as Juju action keys (lowercase,
//! digits, dashes, dots to nest) plus the numbers kept in the state file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::backend::{self, Backend};
use crate::engine::cache::{self, Cache};
use crate::engine::collection::{BackupSet, Collection, SetKind};
use crate::engine::commands::backup::{self, ProgressFn};
use crate::engine::commands::list::{self, ListedFile};
use crate::engine::commands::restore::{self, RestoreProgressFn};
use crate::engine::commands::retention::{self, RetentionCommand};
use crate::engine::commands::{status, verify};
use crate::engine::crypto::{Decryptor, Passphrase};
use crate::engine::index::Index;
use crate::engine::keys::{self, KeySetup};
use crate::engine::timestr::{self, format_timestamp};

use super::paths::{Paths, ARCHIVE_DIR, LOCK_FILE, STATE_FILE};
use super::settings::Settings;

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

    fn cache_dir(&self) -> PathBuf {
        cache::cache_dir(Some(&self.dir.join(ARCHIVE_DIR)), None, &self.settings.url)
    }

    /// The backed-up directory on disk.
    pub fn source(&self) -> PathBuf {
        self.paths.resolve(&self.settings.source)
    }

    fn backend(&self) -> Result<Box<dyn Backend>> {
        // Credentials go to the backend in its options, never through this process's environment
        // (the hook tools it runs would inherit them). SSH uses the charm's key and known_hosts only.
        let mut o = backend::OpenOptions::new();
        if let Some(key) = &self.settings.ssh_key_file {
            o.ssh_options.push(format!(
                "-oIdentityFile={}",
                self.paths.resolve(key).display()
            ));
        }
        o.ssh_options.push(format!(
            "-oUserKnownHostsFile={}",
            self.paths
                .resolve(&self.settings.known_hosts_file)
                .display()
        ));
        let secret = |name: &str| {
            self.settings
                .env
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
        };
        o.ftp_password = secret("FTP_PASSWORD");
        o.aws_access_key_id = secret("AWS_ACCESS_KEY_ID");
        o.aws_secret_access_key = secret("AWS_SECRET_ACCESS_KEY");
        o.azure_connection_string = secret("AZURE_CONNECTION_STRING");
        o.s3_endpoint_url = self.settings.s3_endpoint_url.clone();
        o.s3_region_name = self.settings.s3_region_name.clone();
        backend::open(&self.settings.url, &o)
            .with_context(|| format!("cannot open the backup target {}", self.settings.url))
    }

    /// The passphrase that decrypts: the secret key's when one was given (public-key backups), else
    /// the symmetric one.
    fn passphrase(&self) -> Option<Passphrase> {
        match &self.secret {
            Some(s) => Some(Passphrase::new(s.passphrase.clone())),
            None => self.settings.env.get("PASSPHRASE").map(Passphrase::new),
        }
    }

    /// The engine's keys: the recipient of public-key backups (`gpg_public_key`, from the file beside
    /// the settings) when `for_backup`, and the restore secret's key, loaded as a secret keyring from a
    /// 0600 temporary file in the state directory that is removed at once.
    fn keys(&self, for_backup: bool) -> Result<KeySetup> {
        let mut setup = KeySetup::default();
        if for_backup && self.settings.encryption == "public-key" {
            let file = self.settings.gpg_public_key_file.as_deref().ok_or_else(|| {
                anyhow!("the settings name no gpg_public_key file: run `juju config` again to rewrite them")
            })?;
            let fpr = self
                .settings
                .gpg_public_key_fingerprint
                .clone()
                .unwrap_or_default();
            let certs = keys::load_all(&[self.paths.resolve(file)])?;
            setup.recipients.push(
                keys::recipient(&fpr, &certs, false, std::time::SystemTime::now())
                    .context("gpg_public_key")?,
            );
        }
        if let Some(secret) = &self.secret {
            let mut tmp = tempfile::Builder::new()
                .prefix(".restore-key-")
                .tempfile_in(&self.dir)
                .context("cannot write the restore key to the state directory")?;
            std::io::Write::write_all(&mut tmp, secret.armored.as_bytes())?;
            setup.secret_keys = keys::load_all(&[tmp.path()])?;
            // `tmp` is removed here, when it drops.
        }
        Ok(setup)
    }

    /// The passphrase a backup encrypts with (None = unencrypted), or why backups cannot run.
    fn backup_passphrase(&self) -> Result<Option<Passphrase>> {
        match self.settings.encryption.as_str() {
            "none" | "public-key" => Ok(None),
            "passphrase" => self.passphrase().map(Some).ok_or_else(|| {
                anyhow!("encryption_passphrase is missing from the settings: set it again with juju config")
            }),
            other => bail!("the settings name an unknown encryption {other:?}: run `juju config` again to rewrite them"),
        }
    }

    /// A backup: incremental, or full when asked, when none exists, or when `full_if_older_than` says so.
    pub fn backup(&self, force_full: bool, progress: Option<ProgressFn>) -> Result<Outcome> {
        let backend = self.backend()?;
        let now = chrono::Utc::now().timestamp();
        let full_if_older_than = self
            .settings
            .full_if_older_than
            .as_deref()
            .map(timestr::parse_interval)
            .transpose()
            .context("full_if_older_than")?;
        let report = backup::backup(
            backend.as_ref(),
            &backup::BackupOptions {
                source: self.source(),
                source_as_typed: self.settings.source.clone(),
                force_full,
                full_if_older_than,
                volsize: 200 * 1024 * 1024,
                now,
                fixed_time: false,
                allow_source_mismatch: false,
                passphrase: self.backup_passphrase()?,
                keys: self.keys(true)?,
                cache_dir: self.cache_dir(),
                dry_run: false,
                progress,
                lock_wait: engine_lock_wait(),
                selection: Default::default(),
            },
        )
        .with_context(|| format!("backup to {} failed", backend.describe()))?;
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
        out.results.insert("target".into(), backend.describe());
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
        let backend = self.backend()?;
        let report = restore::restore(
            backend.as_ref(),
            &restore::RestoreOptions {
                target: target.to_path_buf(),
                time,
                path,
                force,
                passphrase: self.passphrase(),
                keys: self.keys(false)?,
                progress,
            },
        )
        .with_context(|| format!("restore from {} failed", backend.describe()))?;
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
        let backend = self.backend()?;
        let report = verify::verify(
            backend.as_ref(),
            &verify::VerifyOptions {
                source: self.source(),
                time: chrono::Utc::now().timestamp(),
                compare_data,
                passphrase: self.passphrase(),
                keys: self.keys(false)?,
                scratch_in: None,
                selection: Default::default(),
            },
        )
        .with_context(|| format!("verify of {} failed", backend.describe()))?;
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
        let backend = self.backend()?;
        let cache = Cache::open(self.cache_dir())?;
        let decryptor = Decryptor::with_keys(self.passphrase(), &self.keys(false)?);
        let mut lines = String::new();
        let mut count = 0u64;
        let mut shown = 0u64;
        list::for_each_current_file(
            backend.as_ref(),
            &cache,
            &decryptor,
            time,
            |f: ListedFile| {
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
            },
        )
        .with_context(|| format!("list-current-files of {} failed", backend.describe()))?;
        let mut out = Outcome::default();
        out.stats.insert("files".into(), count);
        out.results.insert("count".into(), count.to_string());
        out.results.insert("listing".into(), lines);
        out.results
            .insert("truncated".into(), (shown < count).to_string());
        out.results.insert("time".into(), format_timestamp(time));
        Ok(out)
    }

    /// The chains and sets, one key per fact.
    pub fn collection_status(&self) -> Result<Outcome> {
        let backend = self.backend()?;
        let listing = backend
            .list()
            .with_context(|| format!("cannot list {}", backend.describe()))?;
        let col = Collection::from_names(&listing);
        let mut r = Results::new();
        r.insert("target".into(), backend.describe());
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
            cut(&status::render_text(&col, &backend.describe())),
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
        let backend = self.backend()?;
        let archive = self.cache_dir();
        let (plan, applied) = retention::run(
            command,
            backend.as_ref(),
            &archive,
            !dry_run,
            engine_lock_wait(),
        )?;
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
        if self.settings.retention != "manual" {
            let t = timestr::parse_time(&self.settings.retention, now)
                .with_context(|| format!("retention {:?}", self.settings.retention))?;
            commands.push(RetentionCommand::RemoveOlderThan { time: t });
        }
        if self.settings.keep_full_backups > 0 {
            commands.push(RetentionCommand::RemoveAllButNFull {
                n: self.settings.keep_full_backups as usize,
            });
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
}
