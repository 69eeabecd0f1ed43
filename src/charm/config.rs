//! The charm's options (names, types and defaults of the Python charm's config.yaml) and their validation
//! into a frozen [`CharmState`], or the list of [`Problem`]s that keep the unit blocked.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::secrets::{self, Credentials};
use super::validate::{self, BackupFrequency, PublicKey, Retention};
use crate::engine::selection::{Selection, SelectionError, SelectionRule};
use crate::juju::HookTools;

/// The type of an option in config.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    String,
    Boolean,
    Int,
    /// A Juju secret's URI (`secret:<id>`); no default. What the charm reads from it: [`super::secrets`].
    Secret,
}

/// One option as config.yaml declares it; `secret` options never appear in argv, logs, status or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionType,
    /// The default as config.yaml writes it (`"false"` for a boolean).
    pub default: &'static str,
    pub secret: bool,
}

const fn s(name: &'static str, default: &'static str, secret: bool) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionType::String,
        default,
        secret,
    }
}

/// A `type: secret` option (its value is a URI, not the secret).
const fn secret(name: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionType::Secret,
        default: "",
        secret: false,
    }
}

/// Every option, in config.yaml order. A test checks config.yaml and [`RawConfig`] against this table.
pub const OPTIONS: &[OptionSpec] = &[
    s("aux_backup_directory", "/tmp/duplicity", false),
    s("backend", "", false),
    s("remote_backup_url", "", false),
    s("aws_access_key_id", "", true),
    s("aws_secret_access_key", "", true),
    s("s3_endpoint_url", "", false),
    s("s3_region_name", "", false),
    s("s3_object_lock_mode", "", false),
    s("s3_object_lock_retain", "", false),
    s("s3_storage_class", "", false),
    s("s3_server_side_encryption", "", false),
    s("s3_kms_key_id", "", false),
    s("azure_blob_tier", "", false),
    OptionSpec {
        name: "s3_multipart_chunk_size",
        kind: OptionType::Int,
        default: "0",
        secret: false,
    },
    OptionSpec {
        name: "s3_multipart_max_procs",
        kind: OptionType::Int,
        default: "1",
        secret: false,
    },
    OptionSpec {
        name: "azure_max_block_size",
        kind: OptionType::Int,
        default: "0",
        secret: false,
    },
    OptionSpec {
        name: "azure_max_connections",
        kind: OptionType::Int,
        default: "1",
        secret: false,
    },
    s("s3_ca_certificate", "", false),
    secret("aws_keys_secret"),
    s("azure_connection_string", "", true),
    secret("azure_connection_string_secret"),
    s("remote_user", "", false),
    s("remote_password", "", true),
    secret("remote_password_secret"),
    s("backup_frequency", "manual", false),
    s("retention_period", "manual", false),
    s("deletion_frequency", "daily", false),
    OptionSpec {
        name: "disable_encryption",
        kind: OptionType::Boolean,
        default: "false",
        secret: false,
    },
    s("encryption_passphrase", "", true),
    secret("encryption_passphrase_secret"),
    s("gpg_public_key", "", false),
    s("known_host_key", "", false),
    s("private_ssh_key", "", true),
    secret("private_ssh_key_secret"),
    s("nagios_context", "juju", false),
    s("nagios_servicegroups", "", false),
    s("full_if_older_than", "", false),
    OptionSpec {
        name: "keep_full_backups",
        kind: OptionType::Int,
        default: "0",
        secret: false,
    },
    // What each backup run does beyond the target: file selection, commands around it, volume size.
    s("exclude_patterns", "", false),
    s("pre_backup_command", "", false),
    s("post_backup_command", "", false),
    OptionSpec {
        name: "backup_command_timeout",
        kind: OptionType::Int,
        default: "3600",
        secret: false,
    },
    OptionSpec {
        name: "volume_size",
        kind: OptionType::Int,
        default: "200",
        secret: false,
    },
    OptionSpec {
        name: "metrics_port",
        kind: OptionType::Int,
        default: "9781",
        secret: false,
    },
    // Bandwidth limits of every transfer to and from the target.
    s("upload_rate_limit", "", false),
    s("download_rate_limit", "", false),
    // Additional targets every backup is replicated to (see `super::replicas`).
    s("additional_backup_urls", "", false),
    s("additional_known_host_keys", "", false),
    secret("additional_targets_secret"),
    OptionSpec {
        name: "append_only_target",
        kind: OptionType::Boolean,
        default: "false",
        secret: false,
    },
];

/// The backends the Python charm accepted, in its order.
pub const BACKENDS: &[&str] = &["s3", "scp", "sftp", "ftp", "rsync", "file", "azure"];

/// What `config-get` returns, typed. Missing keys take config.yaml's defaults; unknown keys are ignored
/// (a newer or older charm revision may have others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub aux_backup_directory: String,
    pub backend: String,
    pub remote_backup_url: String,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub aws_keys_secret: String,
    pub s3_endpoint_url: String,
    pub s3_region_name: String,
    pub azure_connection_string: String,
    pub azure_connection_string_secret: String,
    pub remote_user: String,
    pub remote_password: String,
    pub remote_password_secret: String,
    pub backup_frequency: String,
    pub retention_period: String,
    pub deletion_frequency: String,
    pub disable_encryption: bool,
    pub encryption_passphrase: String,
    pub encryption_passphrase_secret: String,
    pub gpg_public_key: String,
    pub known_host_key: String,
    pub private_ssh_key: String,
    pub private_ssh_key_secret: String,
    pub nagios_context: String,
    pub nagios_servicegroups: String,
    pub full_if_older_than: String,
    pub keep_full_backups: i64,
    pub exclude_patterns: String,
    pub pre_backup_command: String,
    pub post_backup_command: String,
    pub backup_command_timeout: i64,
    pub volume_size: i64,
    pub metrics_port: i64,
    pub s3_object_lock_mode: String,
    pub s3_object_lock_retain: String,
    pub s3_storage_class: String,
    pub s3_server_side_encryption: String,
    pub s3_kms_key_id: String,
    pub azure_blob_tier: String,
    pub s3_multipart_chunk_size: i64,
    pub s3_multipart_max_procs: i64,
    pub azure_max_block_size: i64,
    pub azure_max_connections: i64,
    pub s3_ca_certificate: String,
    pub upload_rate_limit: String,
    pub download_rate_limit: String,
    pub additional_backup_urls: String,
    pub additional_known_host_keys: String,
    pub additional_targets_secret: String,
    pub append_only_target: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            aux_backup_directory: "/tmp/duplicity".into(),
            backend: String::new(),
            remote_backup_url: String::new(),
            aws_access_key_id: String::new(),
            aws_secret_access_key: String::new(),
            aws_keys_secret: String::new(),
            s3_endpoint_url: String::new(),
            s3_region_name: String::new(),
            azure_connection_string: String::new(),
            azure_connection_string_secret: String::new(),
            remote_user: String::new(),
            remote_password: String::new(),
            remote_password_secret: String::new(),
            backup_frequency: "manual".into(),
            retention_period: "manual".into(),
            deletion_frequency: "daily".into(),
            disable_encryption: false,
            encryption_passphrase: String::new(),
            encryption_passphrase_secret: String::new(),
            gpg_public_key: String::new(),
            known_host_key: String::new(),
            private_ssh_key: String::new(),
            private_ssh_key_secret: String::new(),
            nagios_context: "juju".into(),
            nagios_servicegroups: String::new(),
            full_if_older_than: String::new(),
            keep_full_backups: 0,
            exclude_patterns: String::new(),
            pre_backup_command: String::new(),
            post_backup_command: String::new(),
            backup_command_timeout: 3600,
            volume_size: 200,
            metrics_port: super::cos::DEFAULT_METRICS_PORT as i64,
            s3_object_lock_mode: String::new(),
            s3_object_lock_retain: String::new(),
            s3_storage_class: String::new(),
            s3_server_side_encryption: String::new(),
            s3_kms_key_id: String::new(),
            azure_blob_tier: String::new(),
            s3_multipart_chunk_size: 0,
            s3_multipart_max_procs: 1,
            azure_max_block_size: 0,
            azure_max_connections: 1,
            s3_ca_certificate: String::new(),
            upload_rate_limit: String::new(),
            download_rate_limit: String::new(),
            additional_backup_urls: String::new(),
            additional_known_host_keys: String::new(),
            additional_targets_secret: String::new(),
            append_only_target: false,
        }
    }
}

impl RawConfig {
    /// Types `config-get`'s answer. A `null` (an option unset with no default) reads as the default.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self, serde_json::Error> {
        let known: Map<String, Value> = map
            .iter()
            .filter(|(k, v)| !v.is_null() && OPTIONS.iter().any(|o| o.name == k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value(Value::Object(known))
    }

    /// The non-empty values of the secret options, for redaction and the leak tests.
    pub fn secret_values(&self) -> Vec<&str> {
        [
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            &self.azure_connection_string,
            &self.remote_password,
            &self.encryption_passphrase,
            &self.private_ssh_key,
        ]
        .into_iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect()
    }
}

/// A config value that keeps the unit blocked: the option, and a message naming it and saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub option: &'static str,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(super) fn problem(option: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        option,
        message: message.into(),
    }
}

/// How backups are encrypted. The Python charm's precedence: disable_encryption, then gpg_public_key,
/// then encryption_passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    None,
    PublicKey(PublicKey),
    Passphrase,
}

impl Encryption {
    pub fn mode(&self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::PublicKey(_) => "public-key",
            Encryption::Passphrase => "passphrase",
        }
    }
}

/// A validated configuration: everything reconcile, the actions and the scheduler act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmState {
    pub backend: String,
    /// The duplicity target URL (never with a password in it).
    pub url: String,
    pub source_dir: PathBuf,
    pub encryption: Encryption,
    pub backup_frequency: BackupFrequency,
    /// `backup_frequency` as a cron expression; `None` when manual.
    pub backup_cron: Option<String>,
    pub retention: Retention,
    /// The cron expression of retention runs; `None` when retention is manual and no
    /// `keep_full_backups` is set.
    pub deletion_cron: Option<String>,
    /// `full_if_older_than`, as a duplicity interval (`30D`, `2W`); `None` = never force a full.
    pub full_if_older_than: Option<String>,
    /// `keep_full_backups`: 0 = off.
    pub keep_full_backups: u32,
    /// The decoded private key, when set.
    pub ssh_key: Option<String>,
    pub known_host: Option<String>,
    pub raw: RawConfig,
    /// The credentials, each from its secret option when set, else its plain option (never
    /// [`Credential::Unavailable`](super::secrets::Credential) here: that keeps the unit blocked).
    pub credentials: Credentials,
    /// `exclude_patterns`, `pre_backup_command`/`post_backup_command` and `volume_size`.
    pub job: JobOptions,
    /// `upload_rate_limit` and `download_rate_limit`.
    pub rate_limits: RateLimits,
    /// `additional_backup_urls` and `additional_known_host_keys`.
    pub replicas: super::replicas::Replicas,
}

impl CharmState {
    /// The backup schedule for the settings and the NRPE check: `manual` or a cron expression.
    pub fn backup_frequency_cron(&self) -> &str {
        self.backup_cron.as_deref().unwrap_or("manual")
    }

    /// The `active` message: what is set up.
    pub fn ready_message(&self) -> String {
        let backups = match &self.backup_frequency {
            BackupFrequency::Manual => "backups manual (juju run ... backup)".to_string(),
            BackupFrequency::Hourly => "backups hourly".to_string(),
            BackupFrequency::Daily => "backups daily".to_string(),
            BackupFrequency::Weekly => "backups weekly".to_string(),
            BackupFrequency::Monthly => "backups monthly".to_string(),
            BackupFrequency::Cron(c) => format!("backups at \"{c}\""),
        };
        let retention = match &self.deletion_cron {
            None => "retention manual".to_string(),
            Some(cron) => {
                let when = match self.raw.deletion_frequency.trim() {
                    f @ ("hourly" | "daily") => f.to_string(),
                    _ => format!("at \"{cron}\""),
                };
                let what = match (self.retention, self.keep_full_backups) {
                    (Retention::Manual, n) => format!("{n} full backups"),
                    (_, 0) => self.raw.retention_period.clone(),
                    (_, n) => format!("{}, at most {n} full", self.raw.retention_period),
                };
                format!("keep {what} (checked {when})")
            }
        };
        let enc = match self.encryption {
            Encryption::None => ", NOT encrypted",
            _ => "",
        };
        let replicas = match self.replicas.urls.len() {
            0 => String::new(),
            n => format!(" + {n} replica target(s)"),
        };
        format!(
            "Ready: {}{replicas}, {backups}, {retention}{enc}",
            self.backend
        )
    }
}

/// The backup URL exactly as the Python charm built it: `<backend>://[remote_user@]<remote_backup_url with
/// every "<backend>://" removed>/<unit name with / replaced by ->`. The user is only added for the SSH and
/// FTP backends; the password never goes into the URL (it travels in `FTP_PASSWORD`).
///
/// Two S3 forms that the Python charm documented but built into URLs no duplicity could parse are
/// mapped to the bucket and prefix they name: `s3:host/bucket` (duplicity's old spelling of
/// `s3://host/bucket`), and `s3+http://bucket` and `boto3+s3://bucket` (kept as those schemes).
pub fn backup_url(
    backend: &str,
    remote_backup_url: &str,
    remote_user: &str,
    unit_name: &str,
) -> String {
    let unit = unit_name.replace('/', "-");
    if backend == "s3" {
        // Before the Python charm's replace, which would cut the "s3://" out of "boto3+s3://".
        let given = remote_backup_url
            .strip_prefix("s3://")
            .unwrap_or(remote_backup_url);
        for scheme in ["s3+http://", "boto3+s3://"] {
            if let Some(bucket) = given.strip_prefix(scheme) {
                return format!("{scheme}{}/{unit}", bucket.trim_end_matches('/'));
            }
        }
        let rest = remote_backup_url.replace("s3://", "");
        if let Some(host) = rest.strip_prefix("s3:") {
            return format!("s3://{host}/{unit}");
        }
    }
    let prefix = format!("{backend}://");
    let mut url = String::new();
    if matches!(backend, "rsync" | "scp" | "ftp" | "sftp") && !remote_user.is_empty() {
        url.push_str(remote_user);
        url.push('@');
    }
    url.push_str(&remote_backup_url.replace(&prefix, ""));
    format!("{prefix}{url}/{unit}")
}

/// Validates the plain options alone, without reading any secret option (for tests and callers without
/// hook tools; the charm itself uses [`load`]).
pub fn validate(raw: &RawConfig, unit_name: &str) -> Result<CharmState, Vec<Problem>> {
    validate_with(raw, &Credentials::from_plain(raw), unit_name)
}

/// Validates the whole configuration, with the credentials as [`super::secrets::resolve`] read them.
/// Every problem is reported, most fundamental first.
pub fn validate_with(
    raw: &RawConfig,
    credentials: &Credentials,
    unit_name: &str,
) -> Result<CharmState, Vec<Problem>> {
    let mut problems = Vec::new();
    let backend = raw.backend.trim().to_ascii_lowercase();
    let choices = BACKENDS.join(", ");
    if backend.is_empty() {
        problems.push(problem(
            "backend",
            format!("backend is not set: set it to one of {choices}"),
        ));
    } else if !BACKENDS.contains(&backend.as_str()) {
        problems.push(problem(
            "backend",
            format!(
                "backend \"{}\" is not supported: set it to one of {choices}",
                raw.backend
            ),
        ));
    }
    if raw.remote_backup_url.trim().is_empty() {
        problems.push(problem(
            "remote_backup_url",
            "remote_backup_url is not set: set it to the backup destination (e.g. file:///srv/backups or host/path)",
        ));
    }
    match backend.as_str() {
        "s3" if credentials.aws_access_key_id.is_unset() || credentials.aws_secret_access_key.is_unset() => {
            problems.push(problem(
                if credentials.aws_access_key_id.is_unset() { "aws_access_key_id" } else { "aws_secret_access_key" },
                "backend s3 needs aws_access_key_id and aws_secret_access_key: set both (or aws_keys_secret)",
            ))
        }
        "azure" if credentials.azure_connection_string.is_unset() => problems.push(problem(
            "azure_connection_string",
            "backend azure needs azure_connection_string: set it to the storage account's connection string (or azure_connection_string_secret)",
        )),
        _ => {}
    }
    // rsync to a daemon (`host::/module/path`) does not go over SSH: no host key, and the password
    // (remote_password, if the module has one) is the daemon's.
    let rsync_daemon = backend == "rsync" && raw.remote_backup_url.contains("::");
    if matches!(backend.as_str(), "scp" | "sftp" | "rsync") && !rsync_daemon {
        if raw.known_host_key.trim().is_empty() {
            problems.push(problem(
                "known_host_key",
                format!("backend {backend} needs known_host_key: set it to the server's known_hosts line (ssh-keyscan HOST)"),
            ));
        }
        if backend == "rsync" {
            if credentials.private_ssh_key.is_unset() {
                problems.push(problem(
                    "private_ssh_key",
                    "backend rsync over SSH needs private_ssh_key (password login is not supported): set it to the base64 of a private key, or use an rsync daemon (host::/module/path) with remote_password",
                ));
            }
        } else if credentials.remote_password.is_unset() && credentials.private_ssh_key.is_unset() {
            problems.push(problem(
                "remote_password",
                format!(
                    "backend {backend} needs remote_password or private_ssh_key: set one of them"
                ),
            ));
        }
    }
    if !raw.disable_encryption
        && credentials.encryption_passphrase.is_unset()
        && raw.gpg_public_key.trim().is_empty()
    {
        problems.push(problem(
            "encryption_passphrase",
            "no encryption configured: set encryption_passphrase or gpg_public_key, or set disable_encryption=true",
        ));
    }
    let ssh_key = credentials
        .ssh_key()
        .transpose()
        .map_err(|why| {
            let option = credentials.ssh_key_option();
            problems.push(problem(option, format!("{option} {why}")))
        })
        .unwrap_or(None);
    let known_host = (!raw.known_host_key.trim().is_empty())
        .then(|| validate::known_hosts_line(&raw.known_host_key))
        .transpose()
        .map_err(|why| problems.push(problem("known_host_key", format!("known_host_key {why}"))))
        .unwrap_or(None);
    let public_key = (!raw.gpg_public_key.trim().is_empty())
        .then(|| validate::gpg_public_key(&raw.gpg_public_key))
        .transpose()
        .map_err(|why| problems.push(problem("gpg_public_key", format!("gpg_public_key {why}"))))
        .unwrap_or(None);
    let aux = raw.aux_backup_directory.trim();
    if !aux.starts_with('/') {
        problems.push(problem(
            "aux_backup_directory",
            format!("aux_backup_directory \"{aux}\" is not an absolute path: set it to the directory to back up"),
        ));
    }
    let frequency = validate::backup_frequency(&raw.backup_frequency)
        .map_err(|why| {
            problems.push(problem(
                "backup_frequency",
                format!(
                    "backup_frequency \"{}\" is invalid: {why}",
                    raw.backup_frequency
                ),
            ))
        })
        .ok();
    let retention = validate::retention_period(&raw.retention_period)
        .map_err(|why| {
            problems.push(problem(
                "retention_period",
                format!(
                    "retention_period \"{}\" is invalid: {why}",
                    raw.retention_period
                ),
            ))
        })
        .ok();
    let endpoint = raw.s3_endpoint_url.trim();
    if !endpoint.is_empty() {
        if let Err(why) = validate::s3_endpoint_url(endpoint) {
            problems.push(problem("s3_endpoint_url", format!("s3_endpoint_url {why}")));
        }
    }
    let region = raw.s3_region_name.trim();
    if !region.is_empty() && !validate::s3_region_name(region) {
        problems.push(problem(
            "s3_region_name",
            format!("s3_region_name \"{region}\" is not a region name: use one like us-east-1 or eu-west-2, or \"\" for us-east-1"),
        ));
    }
    let full_if_older_than = raw.full_if_older_than.trim();
    if !full_if_older_than.is_empty() {
        if let Err(e) = crate::engine::timestr::parse_interval(full_if_older_than) {
            problems.push(problem(
                "full_if_older_than",
                format!("full_if_older_than \"{full_if_older_than}\" is invalid ({e}): use a duplicity interval such as 7D, 2W or 1M, or \"\" to never force a full backup"),
            ));
        }
    }
    let keep_full = match u32::try_from(raw.keep_full_backups) {
        Ok(n) => n,
        Err(_) => {
            problems.push(problem(
                "keep_full_backups",
                format!(
                    "keep_full_backups {} is invalid: use 0 (off) or how many full backups to keep",
                    raw.keep_full_backups
                ),
            ));
            0
        }
    };
    // As in the Python charm, deletion_frequency only matters (and is only checked) when retention is on
    // (retention_period, or keep_full_backups here).
    let retention_on =
        keep_full > 0 || matches!(retention, Some(Retention::Days(_) | Retention::Hours(_)));
    let deletion_cron = match retention_on {
        true => validate::deletion_frequency(&raw.deletion_frequency)
            .map_err(|why| {
                problems.push(problem(
                    "deletion_frequency",
                    format!(
                        "deletion_frequency \"{}\" is invalid: {why}",
                        raw.deletion_frequency
                    ),
                ))
            })
            .ok(),
        false => None,
    };
    let job = validate_job_options(raw, aux.starts_with('/').then_some(aux), &mut problems);
    validate_storage_options(raw, &mut problems);
    let rate_limits = validate_rate_limits(raw, &mut problems);
    let replicas = super::replicas::validate(
        raw,
        &credentials.targets,
        &backup_url(
            &backend,
            raw.remote_backup_url.trim(),
            &raw.remote_user,
            unit_name,
        ),
        unit_name,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let encryption = if raw.disable_encryption {
        Encryption::None
    } else if let Some(k) = public_key {
        Encryption::PublicKey(k)
    } else {
        Encryption::Passphrase
    };
    Ok(CharmState {
        url: backup_url(
            &backend,
            raw.remote_backup_url.trim(),
            &raw.remote_user,
            unit_name,
        ),
        backend,
        source_dir: PathBuf::from(aux),
        encryption,
        backup_cron: frequency.as_ref().and_then(BackupFrequency::cron),
        backup_frequency: frequency.expect("checked above"),
        retention: retention.expect("checked above"),
        deletion_cron,
        full_if_older_than: (!full_if_older_than.is_empty())
            .then(|| full_if_older_than.to_string()),
        keep_full_backups: keep_full,
        ssh_key,
        known_host,
        raw: raw.clone(),
        credentials: credentials.clone(),
        job,
        rate_limits,
        replicas,
    })
}

/// The configuration as a hook sees it: `config-get`, the secrets its secret options name, and the
/// validation of both.
pub struct Loaded {
    pub raw: RawConfig,
    pub credentials: Credentials,
    /// The state, or every problem: those of the secrets first (an ungranted secret is usually the one
    /// thing left to do after `juju config`), then the options'.
    pub validated: Result<CharmState, Vec<Problem>>,
}

/// Reads and validates the configuration, secrets included. Errors are hook tool failures only.
pub fn load(tools: &dyn HookTools, unit_name: &str) -> anyhow::Result<Loaded> {
    use anyhow::Context;
    let raw = RawConfig::from_json(&tools.config_get()?)
        .context("config-get returned an option of an unexpected type")?;
    let app = unit_name.split('/').next().unwrap_or(unit_name);
    let (credentials, mut problems) = secrets::resolve(&raw, tools, app)?;
    let validated = match validate_with(&raw, &credentials, unit_name) {
        Ok(state) if problems.is_empty() => Ok(state),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    };
    Ok(Loaded {
        raw,
        credentials,
        validated,
    })
}

/// One line of `exclude_patterns`: a duplicity shell pattern that includes or excludes what it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectionLine {
    Include(String),
    Exclude(String),
}

impl SelectionLine {
    /// The engine's rule: `--include PATTERN` or `--exclude PATTERN`.
    pub fn rule(&self) -> SelectionRule {
        match self {
            SelectionLine::Include(p) => SelectionRule::Include(p.into()),
            SelectionLine::Exclude(p) => SelectionRule::Exclude(p.into()),
        }
    }
}

/// The commands run around each backup, as `/bin/sh -c COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCommands {
    /// Runs before the backup; a failure skips the backup and fails the run.
    pub pre: Option<String>,
    /// Runs after every backup attempt (also when the backup or `pre` failed).
    pub post: Option<String>,
    /// How long each may run before it is killed, in seconds.
    pub timeout_seconds: u32,
}

impl Default for BackupCommands {
    fn default() -> Self {
        BackupCommands {
            pre: None,
            post: None,
            timeout_seconds: 3600,
        }
    }
}

/// What each backup run does beyond the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOptions {
    /// `exclude_patterns`, in order (first match wins); empty: everything.
    pub selection: Vec<SelectionLine>,
    pub commands: BackupCommands,
    /// `volume_size`, in MiB.
    pub volume_size_mib: u32,
    /// `metrics_port`: the scheduler's Prometheus endpoint on 127.0.0.1; 0 = off.
    pub metrics_port: u16,
    /// `append_only_target`: the target refuses deletes, renames and overwrites.
    pub append_only_target: bool,
}

/// The largest `volume_size`, as the CLI's `--volsize` allows.
pub const MAX_VOLUME_SIZE_MIB: i64 = 1_000_000;

/// `exclude_patterns`, the backup commands, their timeout and `volume_size`. The patterns are compiled
/// by the engine's selection code against `aux_backup_directory` (when that is valid), so a pattern
/// the engine would refuse at backup time blocks the unit now, named.
/// The options of how the target stores uploads (S3 Object Lock, storage class, server-side
/// encryption; Azure tier): the values the settings carry are known good.
fn validate_storage_options(raw: &RawConfig, problems: &mut Vec<Problem>) {
    use crate::backend::s3::{LockMode, StorageClass};
    let mode = raw.s3_object_lock_mode.trim();
    let retain = raw.s3_object_lock_retain.trim();
    if !mode.is_empty() && LockMode::parse(mode).is_none() {
        problems.push(problem(
            "s3_object_lock_mode",
            format!("s3_object_lock_mode \"{mode}\" is invalid: use governance or compliance, or \"\" for no Object Lock"),
        ));
    }
    match (mode.is_empty(), retain.is_empty()) {
        (false, true) => problems.push(problem(
            "s3_object_lock_retain",
            "s3_object_lock_mode needs s3_object_lock_retain: how long each backup file stays locked (e.g. 30D)",
        )),
        (true, false) => problems.push(problem(
            "s3_object_lock_mode",
            "s3_object_lock_retain needs s3_object_lock_mode: governance or compliance",
        )),
        _ => {}
    }
    if !retain.is_empty() && !crate::engine::timestr::parse_interval(retain).is_ok_and(|s| s > 0) {
        problems.push(problem(
            "s3_object_lock_retain",
            format!("s3_object_lock_retain \"{retain}\" is invalid: use a duplicity interval such as 30D, 12W or 1Y"),
        ));
    }
    let class = raw.s3_storage_class.trim();
    if !class.is_empty() && StorageClass::parse(class).is_none() {
        problems.push(problem(
            "s3_storage_class",
            format!("s3_storage_class \"{class}\" is invalid: use standard_ia, onezone_ia, glacier, glacier_ir, deep_archive or reduced_redundancy, or \"\" for STANDARD"),
        ));
    }
    match raw.s3_server_side_encryption.trim().to_ascii_lowercase().as_str() {
        "" | "aes256" => {}
        "kms" if raw.s3_kms_key_id.trim().is_empty() => problems.push(problem(
            "s3_kms_key_id",
            "s3_server_side_encryption=kms needs s3_kms_key_id: the KMS key id or ARN to encrypt with",
        )),
        "kms" => {}
        other => problems.push(problem(
            "s3_server_side_encryption",
            format!("s3_server_side_encryption \"{other}\" is invalid: use aes256 or kms, or \"\" for none"),
        )),
    }
    let tier = raw.azure_blob_tier.trim();
    if !tier.is_empty() && crate::backend::azure::parse_tier(tier).is_none() {
        problems.push(problem(
            "azure_blob_tier",
            format!("azure_blob_tier \"{tier}\" is invalid: use Hot, Cool, Cold or Archive, or \"\" for the account's default"),
        ));
    }
    validate_transfer_options(raw, problems);
}

/// The largest S3 part and Azure block, as the CLI's `--s3-multipart-chunk-size` (MiB) and
/// `--azure-max-block-size` (bytes) allow.
const MAX_S3_CHUNK_MIB: i64 = 5 * 1024;
const MAX_AZURE_BLOCK: i64 = 4000 * 1024 * 1024;

/// How uploads are cut and sent (S3 part size and parallel parts, Azure block size and parallel
/// blocks) and the CA certificates an S3-compatible store's TLS certificate may chain to.
fn validate_transfer_options(raw: &RawConfig, problems: &mut Vec<Problem>) {
    let chunk = raw.s3_multipart_chunk_size;
    if chunk != 0 && !(5..=MAX_S3_CHUNK_MIB).contains(&chunk) {
        problems.push(problem(
            "s3_multipart_chunk_size",
            format!("s3_multipart_chunk_size {chunk} is invalid: use 5 to {MAX_S3_CHUNK_MIB} (MiB; S3 parts are at least 5 MiB), or 0 to let the charm choose"),
        ));
    }
    for (name, n) in [
        ("s3_multipart_max_procs", raw.s3_multipart_max_procs),
        ("azure_max_connections", raw.azure_max_connections),
    ] {
        if !(1..=64).contains(&n) {
            problems.push(problem(
                name,
                format!("{name} {n} is invalid: use 1 to 64 (parts of one file sent at once; each is held in memory)"),
            ));
        }
    }
    let block = raw.azure_max_block_size;
    if block != 0 && !(1..=MAX_AZURE_BLOCK).contains(&block) {
        problems.push(problem(
            "azure_max_block_size",
            format!("azure_max_block_size {block} is invalid: use 1 to {MAX_AZURE_BLOCK} (bytes), or 0 for the default of 8 MiB"),
        ));
    }
    let ca = raw.s3_ca_certificate.trim();
    if !ca.is_empty() && !ca.contains("-----BEGIN CERTIFICATE-----") {
        problems.push(problem(
            "s3_ca_certificate",
            "s3_ca_certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----): give the CA's certificate(s) in PEM form, or \"\" to trust the system's CAs only",
        ));
    }
}

fn validate_job_options(
    raw: &RawConfig,
    source: Option<&str>,
    problems: &mut Vec<Problem>,
) -> JobOptions {
    let rules = crate::engine::selection::filelist_rules(&raw.exclude_patterns, false);
    if let Some(source) = source.filter(|_| !rules.is_empty()) {
        if let Err(e) = Selection::new(std::path::Path::new(source), &rules, false) {
            problems.push(problem("exclude_patterns", selection_problem(&e, source)));
        }
    }
    let selection = rules
        .into_iter()
        .filter_map(|r| match r {
            SelectionRule::Include(p) => Some(SelectionLine::Include(p.to_string_lossy().into())),
            SelectionRule::Exclude(p) => Some(SelectionLine::Exclude(p.to_string_lossy().into())),
            _ => None,
        })
        .collect();
    let timeout = match u32::try_from(raw.backup_command_timeout) {
        Ok(n) if n >= 1 => n,
        _ => {
            problems.push(problem(
                "backup_command_timeout",
                format!(
                    "backup_command_timeout {} is invalid: use how many seconds pre_backup_command and post_backup_command may each run (at least 1; default 3600)",
                    raw.backup_command_timeout
                ),
            ));
            3600
        }
    };
    let volume_size_mib = match raw.volume_size {
        n @ 1..=MAX_VOLUME_SIZE_MIB => n as u32,
        n => {
            problems.push(problem(
                "volume_size",
                format!("volume_size {n} is invalid: use the size of each backup volume in MiB, from 1 to {MAX_VOLUME_SIZE_MIB} (default 200, as duplicity's --volsize)"),
            ));
            200
        }
    };
    let command = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    JobOptions {
        selection,
        commands: BackupCommands {
            pre: command(&raw.pre_backup_command),
            post: command(&raw.post_backup_command),
            timeout_seconds: timeout,
        },
        volume_size_mib,
        metrics_port: validate_metrics_port(raw.metrics_port, problems),
        append_only_target: raw.append_only_target,
    }
}

/// `metrics_port`: 0 (off) or a TCP port. Ports below 1024 are refused: the scheduler binds as root, and
/// a low port is almost always a clash with a real service.
fn validate_metrics_port(port: i64, problems: &mut Vec<Problem>) -> u16 {
    match port {
        0 | 1024..=65535 => port as u16,
        n => {
            problems.push(problem(
                "metrics_port",
                format!(
                    "metrics_port {n} is invalid: use a free TCP port from 1024 to 65535 for the Prometheus endpoint on 127.0.0.1, or 0 to turn it off (default {})",
                    super::cos::DEFAULT_METRICS_PORT
                ),
            ));
            0
        }
    }
}

/// The bandwidth limits, in bytes per second; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub upload: Option<u64>,
    pub download: Option<u64>,
}

/// `upload_rate_limit` and `download_rate_limit`: empty or 0 for none, else a rate as rsync's
/// `--bwlimit` takes it (see [`crate::backend::throttle::parse_rate`]).
fn validate_rate_limits(raw: &RawConfig, problems: &mut Vec<Problem>) -> RateLimits {
    let mut one = |option: &'static str, value: &str| {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        match crate::backend::throttle::parse_rate(value) {
            Ok(0) => None,
            Ok(rate) => Some(rate),
            Err(e) => {
                problems.push(problem(option, format!("{option} {e}")));
                None
            }
        }
    };
    RateLimits {
        upload: one("upload_rate_limit", &raw.upload_rate_limit),
        download: one("download_rate_limit", &raw.download_rate_limit),
    }
}

/// The blocked message for patterns the engine refuses: the option, the pattern, and the fix.
fn selection_problem(e: &SelectionError, source: &str) -> String {
    let dir = source.trim_end_matches('/');
    match e {
        SelectionError::OutsideSource { pattern, .. } => format!(
            "exclude_patterns: the pattern \"{pattern}\" cannot match anything under aux_backup_directory {source}: patterns are full paths, so begin it with {dir}/ (e.g. {dir}/cache) or with **/ (e.g. **/*.tmp)"
        ),
        SelectionError::RedundantInclude { .. } => "exclude_patterns ends with a \"+ \" line, which has no effect (what no line excludes is backed up anyway): put each \"+ \" line before the exclude it makes an exception to, or remove it".to_string(),
        other => format!("exclude_patterns: {other}: fix or remove that line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_the_python_charm_built_them() {
        let u = |b, r, user| backup_url(b, r, user, "duplicity/0");
        assert_eq!(u("file", "file:///srv/b", ""), "file:///srv/b/duplicity-0");
        assert_eq!(u("file", "/srv/b", "ignored"), "file:///srv/b/duplicity-0");
        assert_eq!(
            u("sftp", "sftp://host:22/dir", "bob"),
            "sftp://bob@host:22/dir/duplicity-0"
        );
        assert_eq!(u("sftp", "host/dir", ""), "sftp://host/dir/duplicity-0");
        assert_eq!(
            u("rsync", "host::/module/x", "u"),
            "rsync://u@host::/module/x/duplicity-0"
        );
        assert_eq!(
            u("s3", "s3:other.host/bucket", "u"),
            "s3://other.host/bucket/duplicity-0"
        );
        assert_eq!(
            u("s3", "s3://other.host:9000/bucket/p", ""),
            "s3://other.host:9000/bucket/p/duplicity-0"
        );
        assert_eq!(
            u("s3", "s3+http://bucket/p/", ""),
            "s3+http://bucket/p/duplicity-0"
        );
        assert_eq!(
            u("s3", "boto3+s3://bucket", ""),
            "boto3+s3://bucket/duplicity-0"
        );
        assert_eq!(u("azure", "azure://", ""), "azure:///duplicity-0");
        // Python's str.replace removes every occurrence, not just the leading one.
        assert_eq!(u("ftp", "ftp://h/ftp://x", ""), "ftp://h/x/duplicity-0");
    }

    #[test]
    fn defaults_and_nulls_read_as_config_yaml_defaults() {
        let mut m = Map::new();
        m.insert("backend".into(), Value::Null);
        m.insert("unknown_future_option".into(), Value::from(3));
        m.insert("disable_encryption".into(), Value::Bool(true));
        let raw = RawConfig::from_json(&m).unwrap();
        assert_eq!(
            raw,
            RawConfig {
                disable_encryption: true,
                ..RawConfig::default()
            }
        );
        m.insert("disable_encryption".into(), Value::from("yes"));
        assert!(RawConfig::from_json(&m).is_err());
    }

    #[test]
    fn the_ready_message_says_backend_and_schedule() {
        let raw = RawConfig {
            backend: "File".into(),
            remote_backup_url: "file:///srv".into(),
            encryption_passphrase: "p".into(),
            backup_frequency: "daily".into(),
            retention_period: "30d".into(),
            ..RawConfig::default()
        };
        let st = validate(&raw, "d/1").unwrap();
        assert_eq!(st.backend, "file");
        assert_eq!(st.url, "file:///srv/d-1");
        assert_eq!(
            st.ready_message(),
            "Ready: file, backups daily, keep 30d (checked daily)"
        );
        let raw = RawConfig {
            disable_encryption: true,
            backup_frequency: "0 3 * * *".into(),
            retention_period: "manual".into(),
            ..raw
        };
        assert_eq!(
            validate(&raw, "d/1").unwrap().ready_message(),
            "Ready: file, backups at \"0 3 * * *\", retention manual, NOT encrypted"
        );
    }
}
