//! The settings file: what the charm hands to the actions and the scheduler, in one root-only (0600) JSON
//! file per unit, `/var/lib/duplicity-charm/<app>-<n>/settings.json`. The format is documented in the README
//! ("Settings file"); `format` is bumped on any incompatible change. Paths inside are real paths (readers
//! resolve them under `DUPLICITY_CHARM_ROOT` themselves).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::config::{CharmState, Encryption};
use super::paths::{UnitFiles, KNOWN_HOSTS, SSH_KEY};

/// The version of the format written here.
pub const FORMAT: u32 = 1;

/// The environment variables that carry secrets to the engine and its backends.
pub const SECRET_ENV: &[&str] = &[
    "PASSPHRASE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_CONNECTION_STRING",
    "FTP_PASSWORD",
];

/// The settings file's content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub format: u32,
    /// `app/n`.
    pub unit: String,
    pub backend: String,
    /// The duplicity target URL, without any password.
    pub url: String,
    /// The directory backed up (`aux_backup_directory`).
    pub source: String,
    /// `passphrase` | `public-key` | `none`.
    pub encryption: String,
    /// The armored public key's file and fingerprint when `encryption` is `public-key`.
    pub gpg_public_key_file: Option<String>,
    pub gpg_public_key_fingerprint: Option<String>,
    /// `manual` or a 5-field cron expression (keywords already expanded).
    pub backup_schedule: String,
    /// `manual`, or a duplicity interval for `remove-older-than` (`30D`, `36h`).
    pub retention: String,
    /// A 5-field cron expression for retention runs, or `manual`.
    pub deletion_schedule: String,
    /// The options as the operator wrote them, for messages.
    pub backup_frequency: String,
    pub retention_period: String,
    pub deletion_frequency: String,
    pub remote_user: Option<String>,
    /// The SSH identity file when `private_ssh_key` is set, and the known_hosts file.
    pub ssh_key_file: Option<String>,
    pub known_hosts_file: String,
    pub nagios_context: String,
    pub nagios_servicegroups: String,
    /// `full_if_older_than` as a duplicity interval, when set.
    #[serde(default)]
    pub full_if_older_than: Option<String>,
    /// Retention keeps at most this many full chains (0 = off).
    #[serde(default)]
    pub keep_full_backups: u32,
    /// `s3_endpoint_url` and `s3_region_name`, when set.
    #[serde(default)]
    pub s3_endpoint_url: Option<String>,
    #[serde(default)]
    pub s3_region_name: Option<String>,
    /// The secrets, as the environment the engine reads: only those set, names from [`SECRET_ENV`].
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for Settings {
    /// Everything but the secret values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("unit", &self.unit)
            .field("url", &self.url)
            .field("encryption", &self.encryption)
            .field("backup_schedule", &self.backup_schedule)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn new(state: &CharmState, unit: &str, files: &UnitFiles) -> Self {
        let raw = &state.raw;
        let mut env = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                env.insert(k.to_string(), v.to_string());
            }
        };
        put("PASSPHRASE", &raw.encryption_passphrase);
        put("AWS_ACCESS_KEY_ID", &raw.aws_access_key_id);
        put("AWS_SECRET_ACCESS_KEY", &raw.aws_secret_access_key);
        put("AZURE_CONNECTION_STRING", &raw.azure_connection_string);
        put("FTP_PASSWORD", &raw.remote_password);
        let (key_file, fingerprint) = match &state.encryption {
            Encryption::PublicKey(k) => (
                Some(files.gpg_public_key.display().to_string()),
                Some(k.fingerprint.clone()),
            ),
            _ => (None, None),
        };
        Settings {
            format: FORMAT,
            unit: unit.to_string(),
            backend: state.backend.clone(),
            url: state.url.clone(),
            source: state.source_dir.display().to_string(),
            encryption: state.encryption.mode().to_string(),
            gpg_public_key_file: key_file,
            gpg_public_key_fingerprint: fingerprint,
            backup_schedule: state
                .backup_frequency
                .cron()
                .unwrap_or_else(|| "manual".into()),
            retention: state
                .retention
                .interval()
                .unwrap_or_else(|| "manual".into()),
            deletion_schedule: state
                .deletion_cron
                .clone()
                .unwrap_or_else(|| "manual".into()),
            backup_frequency: raw.backup_frequency.clone(),
            retention_period: raw.retention_period.clone(),
            deletion_frequency: raw.deletion_frequency.clone(),
            remote_user: (!raw.remote_user.is_empty()).then(|| raw.remote_user.clone()),
            ssh_key_file: state.ssh_key.as_ref().map(|_| SSH_KEY.to_string()),
            known_hosts_file: KNOWN_HOSTS.to_string(),
            nagios_context: raw.nagios_context.clone(),
            nagios_servicegroups: raw.nagios_servicegroups.clone(),
            full_if_older_than: state.full_if_older_than.clone(),
            keep_full_backups: state.keep_full_backups,
            s3_endpoint_url: nonempty(&state.raw.s3_endpoint_url),
            s3_region_name: nonempty(&state.raw.s3_region_name),
            env,
        }
    }

    /// The file's bytes: pretty JSON, stable key order, trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("settings serialize");
        v.push(b'\n');
        v
    }

    /// Reads a settings file (the on-disk path).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let s: Settings = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a settings file", path.display()))?;
        anyhow::ensure!(
            s.format == FORMAT,
            "{} has format {}, this binary reads {FORMAT}",
            path.display(),
            s.format
        );
        Ok(s)
    }
}

/// A trimmed option value, or `None` when empty.
fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
