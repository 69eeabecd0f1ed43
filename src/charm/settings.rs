//! The settings file: what the charm hands to the actions, the scheduler and the NRPE check, in one
//! root-only (0600) JSON file per unit, `/var/lib/duplicity-charm/<app>-<n>/settings.json`, read by all
//! of them through [`Settings::load`]. Values are typed (enums, not strings to compare); the format is
//! documented in the README ("Settings file") and `format` is bumped on any incompatible change. Paths
//! inside are real paths (readers resolve them under `DUPLICITY_CHARM_ROOT` themselves).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::config::{self, CharmState};
use super::paths::{UnitFiles, KNOWN_HOSTS, SSH_KEY};
use super::secrets;

/// The version of the format written here. 1 kept secrets as environment variables and the
/// encryption mode as a string.
pub const FORMAT: u32 = 2;

/// A secret value: serialized as is (the file is root-only), never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `None` for an empty value (an option that is not set).
    fn from_option(s: &str) -> Option<Secret> {
        (!s.is_empty()).then(|| Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How backups are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum EncryptionSettings {
    None,
    /// With `encryption_passphrase`.
    Passphrase {
        passphrase: Secret,
    },
    /// To `gpg_public_key`, kept in `key_file` beside the settings.
    PublicKey {
        key_file: String,
        fingerprint: String,
    },
}

/// The target's credentials, each only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// `remote_password`: ftp, sftp/scp and rsync.
    pub remote_password: Option<Secret>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<Secret>,
    pub azure_connection_string: Option<Secret>,
}

impl Credentials {
    /// The resolved credentials (from secret or plain options alike: the file does not say which).
    fn new(c: &secrets::Credentials) -> Credentials {
        let secret = |c: &secrets::Credential| c.value().and_then(Secret::from_option);
        Credentials {
            remote_password: secret(&c.remote_password),
            aws_access_key_id: c.aws_access_key_id.value().and_then(nonempty),
            aws_secret_access_key: secret(&c.aws_secret_access_key),
            azure_connection_string: secret(&c.azure_connection_string),
        }
    }
}

/// One additional target's own credentials (`additional_targets_secret`), each only when set; a
/// target with none uses the main target's [`Credentials`]. `ssh_key` is the private key file's
/// text, written to a 0600 file only for the run that uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_connection_string: Option<Secret>,
}

impl ReplicaCredentials {
    /// Whether the target has a login of its own for SSH, FTP or an rsync daemon (then the main
    /// target's key and password are not offered to it).
    pub fn has_login(&self) -> bool {
        self.ssh_key.is_some() || self.password.is_some()
    }
}

/// The settings file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub format: u32,
    /// `app/n`.
    pub unit: String,
    /// The `backend` option (`file`, `sftp`, …), for messages.
    pub backend: String,
    /// The duplicity target URL, without any password.
    pub url: String,
    /// The directory backed up (`aux_backup_directory`).
    pub source: String,
    pub encryption: EncryptionSettings,
    pub credentials: Credentials,
    /// A 5-field cron expression for backups; `None`: manual.
    pub backup_schedule: Option<String>,
    /// A duplicity interval for the scheduled `remove-older-than` (`30D`, `36h`); `None`: none.
    pub retention: Option<String>,
    /// A 5-field cron expression for retention runs; `None`: manual.
    pub deletion_schedule: Option<String>,
    /// `full_if_older_than` as a duplicity interval, when set.
    pub full_if_older_than: Option<String>,
    /// Retention keeps at most this many full chains (0 = off).
    pub keep_full_backups: u32,
    /// The options as the operator wrote them, for messages.
    pub backup_frequency: String,
    pub retention_period: String,
    pub deletion_frequency: String,
    pub remote_user: Option<String>,
    /// The SSH identity file when `private_ssh_key` is set, and the known_hosts file.
    pub ssh_key_file: Option<String>,
    pub known_hosts_file: String,
    /// `s3_endpoint_url` and `s3_region_name`, when set.
    pub s3_endpoint_url: Option<String>,
    pub s3_region_name: Option<String>,
    pub nagios_context: String,
    pub nagios_servicegroups: String,
    /// `exclude_patterns`, in order (the first line that matches a file decides); empty: everything.
    /// Absent in files written before the option existed, which back up everything.
    #[serde(default)]
    pub selection: Vec<config::SelectionLine>,
    /// `pre_backup_command`, `post_backup_command`, `backup_command_timeout`.
    #[serde(default)]
    pub backup_commands: config::BackupCommands,
    /// `volume_size`: each volume's size in MiB (duplicity's `--volsize`).
    #[serde(default = "default_volume_size")]
    pub volume_size_mib: u32,
    /// `metrics_port`: the scheduler serves Prometheus metrics on 127.0.0.1 at this port; 0 (and files
    /// written before the option existed) = no endpoint.
    #[serde(default)]
    pub metrics_port: u16,
    /// `append_only_target`: the target refuses deletes, renames and overwrites (false in files
    /// written before the option existed).
    #[serde(default)]
    pub append_only_target: bool,
    /// `additional_backup_urls`: the targets every backup is replicated to (full URLs, no password);
    /// absent in older files: none.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// `additional_known_host_keys`: known_hosts lines for the SSH hosts among them.
    #[serde(default)]
    pub replica_known_hosts: Vec<String>,
    /// `additional_targets_secret`: each target's own credentials, in the order of `replicas`
    /// (absent in older files: every target uses the main credentials).
    #[serde(default)]
    pub replica_credentials: Vec<ReplicaCredentials>,
    /// `upload_rate_limit` and `download_rate_limit` in bytes per second; `None` (and files written
    /// before the options existed): no limit.
    #[serde(default)]
    pub upload_rate_limit: Option<u64>,
    #[serde(default)]
    pub download_rate_limit: Option<u64>,
    /// How the target stores each upload (absent in files written before these options existed:
    /// all off).
    #[serde(default)]
    pub storage: StorageSettings,
}

/// `s3_object_lock_mode`/`_retain`, `s3_storage_class`, `s3_server_side_encryption`,
/// `s3_kms_key_id`, `azure_blob_tier`: validated values, `None` when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSettings {
    pub s3_object_lock_mode: Option<String>,
    pub s3_object_lock_retain: Option<String>,
    pub s3_storage_class: Option<String>,
    pub s3_server_side_encryption: Option<String>,
    pub s3_kms_key_id: Option<String>,
    pub azure_blob_tier: Option<String>,
    /// `s3_multipart_chunk_size` in MiB, `s3_multipart_max_procs`, `azure_max_block_size` in bytes,
    /// `azure_max_connections`: absent when left at their defaults (so settings written before
    /// they existed read the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_multipart_chunk_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_multipart_max_procs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_max_block_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_max_connections: Option<usize>,
    /// `s3_ca_certificate`: PEM certificates trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_ca_certificate: Option<String>,
}

impl StorageSettings {
    fn new(raw: &config::RawConfig) -> StorageSettings {
        StorageSettings {
            s3_object_lock_mode: nonempty(&raw.s3_object_lock_mode),
            s3_object_lock_retain: nonempty(&raw.s3_object_lock_retain),
            s3_storage_class: nonempty(&raw.s3_storage_class),
            s3_server_side_encryption: nonempty(&raw.s3_server_side_encryption),
            s3_kms_key_id: nonempty(&raw.s3_kms_key_id),
            azure_blob_tier: nonempty(&raw.azure_blob_tier),
            s3_multipart_chunk_size: u64::try_from(raw.s3_multipart_chunk_size)
                .ok()
                .filter(|n| *n > 0),
            s3_multipart_max_procs: usize::try_from(raw.s3_multipart_max_procs)
                .ok()
                .filter(|n| *n > 1),
            azure_max_block_size: usize::try_from(raw.azure_max_block_size)
                .ok()
                .filter(|n| *n > 0),
            azure_max_connections: usize::try_from(raw.azure_max_connections)
                .ok()
                .filter(|n| *n > 1),
            s3_ca_certificate: nonempty(&raw.s3_ca_certificate),
        }
    }

    /// Sets them on the repository's backend options (re-checked: the file may be older).
    pub fn apply(&self, backend: &mut crate::backend::OpenOptions) -> Result<()> {
        use crate::backend::s3::{LockMode, ObjectLock, ServerSideEncryption, StorageClass};
        let lock = match (&self.s3_object_lock_mode, &self.s3_object_lock_retain) {
            (Some(m), Some(r)) => {
                let mode = LockMode::parse(m).with_context(|| {
                    format!("s3_object_lock_mode {m:?}: use governance or compliance")
                })?;
                let secs = crate::engine::timestr::parse_interval(r)
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| {
                        format!("s3_object_lock_retain {r:?}: use an interval such as 30D")
                    })?;
                Some(ObjectLock {
                    mode,
                    retain: std::time::Duration::from_secs(secs as u64),
                })
            }
            (None, None) => None,
            _ => anyhow::bail!(
                "s3_object_lock_mode and s3_object_lock_retain go together: set both or neither"
            ),
        };
        backend.s3.object_lock = lock;
        backend.s3.storage_class = match &self.s3_storage_class {
            Some(c) => Some(
                StorageClass::parse(c)
                    .with_context(|| format!("s3_storage_class {c:?} is not a storage class"))?,
            ),
            None => None,
        };
        backend.s3.sse = match self
            .s3_server_side_encryption
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("aes256") => Some(ServerSideEncryption::Aes256),
            Some("kms") => Some(ServerSideEncryption::Kms {
                key_id: self
                    .s3_kms_key_id
                    .clone()
                    .context("s3_server_side_encryption=kms needs s3_kms_key_id")?,
                grant_full_control: None,
            }),
            Some(other) => anyhow::bail!("s3_server_side_encryption {other:?}: use aes256 or kms"),
        };
        backend.azure.blob_tier.clone_from(&self.azure_blob_tier);
        if let Some(c) = self
            .s3_multipart_chunk_size
            .filter(|c| !(5..=5 * 1024).contains(c))
        {
            anyhow::bail!("s3_multipart_chunk_size {c}: use 5 to 5120 (MiB), or 0");
        }
        backend.s3.multipart_chunk_size = self.s3_multipart_chunk_size.map(|m| m << 20);
        backend.s3.multipart_max_procs = self.s3_multipart_max_procs;
        backend.azure.max_block_size = self.azure_max_block_size;
        backend.azure.max_connections = self.azure_max_connections;
        if let Some(pem) = &self.s3_ca_certificate {
            backend.tls_extra_roots.push(pem.clone().into_bytes());
        }
        Ok(())
    }
}

/// duplicity's default `--volsize`, for files written before `volume_size` existed.
fn default_volume_size() -> u32 {
    200
}

impl Settings {
    pub fn new(state: &CharmState, unit: &str, files: &UnitFiles) -> Self {
        let raw = &state.raw;
        let encryption = match &state.encryption {
            config::Encryption::None => EncryptionSettings::None,
            config::Encryption::Passphrase => EncryptionSettings::Passphrase {
                passphrase: Secret::new(
                    state
                        .credentials
                        .encryption_passphrase
                        .value()
                        .unwrap_or_default(),
                ),
            },
            config::Encryption::PublicKey(k) => EncryptionSettings::PublicKey {
                key_file: files.gpg_public_key.display().to_string(),
                fingerprint: k.fingerprint.clone(),
            },
        };
        Settings {
            format: FORMAT,
            unit: unit.to_string(),
            backend: state.backend.clone(),
            url: state.url.clone(),
            source: state.source_dir.display().to_string(),
            encryption,
            credentials: Credentials::new(&state.credentials),
            backup_schedule: state.backup_frequency.cron(),
            retention: state.retention.interval(),
            deletion_schedule: state.deletion_cron.clone(),
            full_if_older_than: state.full_if_older_than.clone(),
            keep_full_backups: state.keep_full_backups,
            backup_frequency: raw.backup_frequency.clone(),
            retention_period: raw.retention_period.clone(),
            deletion_frequency: raw.deletion_frequency.clone(),
            remote_user: nonempty(&raw.remote_user),
            ssh_key_file: state.ssh_key.as_ref().map(|_| SSH_KEY.to_string()),
            known_hosts_file: KNOWN_HOSTS.to_string(),
            s3_endpoint_url: nonempty(&raw.s3_endpoint_url),
            s3_region_name: nonempty(&raw.s3_region_name),
            nagios_context: raw.nagios_context.clone(),
            nagios_servicegroups: raw.nagios_servicegroups.clone(),
            selection: state.job.selection.clone(),
            backup_commands: state.job.commands.clone(),
            volume_size_mib: state.job.volume_size_mib,
            metrics_port: state.job.metrics_port,
            storage: StorageSettings::new(raw),
            upload_rate_limit: state.rate_limits.upload,
            download_rate_limit: state.rate_limits.download,
            replicas: state.replicas.urls.clone(),
            replica_known_hosts: state.replicas.known_hosts.clone(),
            replica_credentials: state.replicas.credentials.clone(),
            append_only_target: state.job.append_only_target,
        }
    }

    /// The file's bytes: pretty JSON, stable key order, trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("settings serialize");
        v.push(b'\n');
        v
    }

    /// Reads a settings file (the on-disk path). A file of another format (written by another version
    /// of the charm) is refused with what to do: the charm rewrites it on its next hook.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let v: Version = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a settings file", path.display()))?;
        anyhow::ensure!(
            v.format == FORMAT,
            "{} has format {}, this version of the charm reads {FORMAT}: it is rewritten by the next \
             hook (`juju config` any option, or wait for upgrade-charm to finish)",
            path.display(),
            v.format
        );
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a settings file", path.display()))
    }

    /// Whether scheduled retention has anything to do.
    pub fn has_scheduled_retention(&self) -> bool {
        self.retention.is_some() || self.keep_full_backups > 0
    }
}

/// A trimmed option value, or `None` when empty.
fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
