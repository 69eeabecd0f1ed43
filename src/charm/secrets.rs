//! Credentials kept in Juju user secrets: one `type: secret` option per credential group
//! ([`SECRET_OPTIONS`]), read with `secret-get --refresh` on every hook (so `secret-changed`, and any other
//! hook after `juju update-secret`, applies the newest revision). A secret option wins over the plain
//! option(s) of the same credential; the plain options keep working when it is unset.
//! `additional_targets_secret` is read the same way, but its keys depend on `additional_backup_urls`
//! ([`TargetSecret`]; checked by `super::replicas::validate`).
//!
//! A secret that cannot be read (not granted yet, removed, without the expected content key) is a
//! [`Problem`] naming the option and the exact fix (`juju grant-secret <id> <app>`), so the unit is
//! blocked, never failed. Only the secret's ID and its key names ever reach a message; the values go
//! into [`Credentials`] (whose `Debug` hides them) and from there only into the 0600 settings file.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::juju::{HookToolError, HookTools};

use super::config::{Problem, RawConfig};
use super::validate;

/// One credential group kept in a secret.
#[derive(Debug, Clone, Copy)]
pub struct SecretOption {
    /// The `type: secret` option.
    pub option: &'static str,
    /// Its content keys, each with the plain option it stands in for.
    pub keys: &'static [(&'static str, &'static str)],
    /// How an operator stores the content (`juju add-secret <name> <this>`).
    pub example: &'static str,
    /// The option's value in a config.
    pub uri: fn(&RawConfig) -> &str,
}

/// Every secret option, in config.yaml order.
pub const SECRET_OPTIONS: &[SecretOption] = &[
    SecretOption {
        option: "aws_keys_secret",
        keys: &[
            ("access-key-id", "aws_access_key_id"),
            ("secret-access-key", "aws_secret_access_key"),
        ],
        example: "access-key-id=<id> secret-access-key=<key>",
        uri: |r| &r.aws_keys_secret,
    },
    SecretOption {
        option: "azure_connection_string_secret",
        keys: &[("connection-string", "azure_connection_string")],
        example: "connection-string='<connection string>'",
        uri: |r| &r.azure_connection_string_secret,
    },
    SecretOption {
        option: "remote_password_secret",
        keys: &[("password", "remote_password")],
        example: "password=<password>",
        uri: |r| &r.remote_password_secret,
    },
    SecretOption {
        option: "encryption_passphrase_secret",
        keys: &[("passphrase", "encryption_passphrase")],
        example: "passphrase='<passphrase>'",
        uri: |r| &r.encryption_passphrase_secret,
    },
    SecretOption {
        option: "private_ssh_key_secret",
        keys: &[("private-key", "private_ssh_key")],
        example: "private-key#file=<private key file>",
        uri: |r| &r.private_ssh_key_secret,
    },
];

/// One credential, after the secret options are read.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Neither its secret option nor its plain option is set.
    #[default]
    Unset,
    /// From the plain option (`private_ssh_key`: base64 of the key file, as the option takes it).
    Plain(String),
    /// From the secret (`private-key`: the key file's text).
    Secret(String),
    /// Its secret option is set but the secret cannot be used; a [`Problem`] says why (the unit is blocked,
    /// and what was written from it before stays).
    Unavailable,
}

impl Credential {
    fn plain(value: &str) -> Credential {
        match value.is_empty() {
            true => Credential::Unset,
            false => Credential::Plain(value.to_string()),
        }
    }

    /// The value, from wherever it came.
    pub fn value(&self) -> Option<&str> {
        match self {
            Credential::Plain(v) | Credential::Secret(v) => Some(v),
            Credential::Unset | Credential::Unavailable => None,
        }
    }

    /// Neither option set: the only state the "needs X" checks complain about (an unavailable secret
    /// has its own problem already).
    pub fn is_unset(&self) -> bool {
        *self == Credential::Unset
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Unset => "Unset",
            Credential::Plain(_) => "Plain(<hidden>)",
            Credential::Secret(_) => "Secret(<hidden>)",
            Credential::Unavailable => "Unavailable",
        })
    }
}

/// `additional_targets_secret`: the additional targets' own credentials, keyed `target<N>-<kind>`
/// (checked against `additional_backup_urls` by `super::replicas::validate`).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum TargetSecret {
    /// The option is not set: every target uses the main target's credentials.
    #[default]
    Unset,
    /// The secret's ID (for messages) and its content.
    Content {
        uri: String,
        content: BTreeMap<String, String>,
    },
    /// Set but unreadable; a [`Problem`] says why.
    Unavailable,
}

impl std::fmt::Debug for TargetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSecret::Unset => f.write_str("Unset"),
            TargetSecret::Unavailable => f.write_str("Unavailable"),
            // The key names only: they say which target has what, never the values.
            TargetSecret::Content { uri, content } => f
                .debug_struct("Content")
                .field("uri", uri)
                .field("keys", &content.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The content keys `additional_targets_secret` takes per target, after `target<N>-`.
pub const TARGET_KEYS: &[&str] = &[
    "ssh-key",
    "password",
    "access-key-id",
    "secret-access-key",
    "connection-string",
];

/// How an operator stores `additional_targets_secret`.
pub const TARGET_EXAMPLE: &str = "target1-password=<password> target2-access-key-id=<id> target2-secret-access-key=<key> target3-ssh-key#file=<private key file>";

/// Every credential the charm uses, each from its secret option when that is set, else its plain option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub aws_access_key_id: Credential,
    pub aws_secret_access_key: Credential,
    pub azure_connection_string: Credential,
    pub remote_password: Credential,
    pub encryption_passphrase: Credential,
    pub private_ssh_key: Credential,
    /// `additional_targets_secret`.
    pub targets: TargetSecret,
}

impl Credentials {
    /// The plain options alone: what a config without secret options resolves to.
    pub fn from_plain(raw: &RawConfig) -> Credentials {
        Credentials {
            aws_access_key_id: Credential::plain(&raw.aws_access_key_id),
            aws_secret_access_key: Credential::plain(&raw.aws_secret_access_key),
            azure_connection_string: Credential::plain(&raw.azure_connection_string),
            remote_password: Credential::plain(&raw.remote_password),
            encryption_passphrase: Credential::plain(&raw.encryption_passphrase),
            private_ssh_key: Credential::plain(&raw.private_ssh_key),
            targets: TargetSecret::Unset,
        }
    }

    /// The credential a plain option names.
    fn get_mut(&mut self, plain_option: &str) -> &mut Credential {
        match plain_option {
            "aws_access_key_id" => &mut self.aws_access_key_id,
            "aws_secret_access_key" => &mut self.aws_secret_access_key,
            "azure_connection_string" => &mut self.azure_connection_string,
            "remote_password" => &mut self.remote_password,
            "encryption_passphrase" => &mut self.encryption_passphrase,
            "private_ssh_key" => &mut self.private_ssh_key,
            other => unreachable!("SECRET_OPTIONS names an unknown credential {other}"),
        }
    }

    /// The private key file's text when the key is set (from either option) and valid; `None` when it is
    /// unset or its secret unavailable. The error says what is wrong, without the option's name.
    pub fn ssh_key(&self) -> Option<Result<String, String>> {
        match &self.private_ssh_key {
            Credential::Plain(b64) => Some(validate::ssh_private_key(b64)),
            Credential::Secret(text) => Some(validate::ssh_private_key_text(text)),
            Credential::Unset | Credential::Unavailable => None,
        }
    }

    /// The option a problem with the SSH key names: the one the key came from.
    pub fn ssh_key_option(&self) -> &'static str {
        match self.private_ssh_key {
            Credential::Secret(_) => "private_ssh_key_secret",
            _ => "private_ssh_key",
        }
    }

    /// Every value, for the leak checks of the tests.
    pub fn values(&self) -> Vec<&str> {
        let mut v: Vec<&str> = [
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            &self.azure_connection_string,
            &self.remote_password,
            &self.encryption_passphrase,
            &self.private_ssh_key,
        ]
        .into_iter()
        .filter_map(Credential::value)
        .collect();
        if let TargetSecret::Content { content, .. } = &self.targets {
            v.extend(
                content
                    .values()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty()),
            );
        }
        v
    }
}

/// Why a secret could not be read, from `secret-get`'s error (juju-contract.md §2: Juju answers
/// `ERROR permission denied` for a secret not granted to us, and an error containing "not found" for one
/// it does not know; Juju 3.x also says "permission denied" for a removed secret, as it checks access
/// first).
enum Unreadable {
    NotGranted,
    NotFound,
}

fn unreadable(e: &HookToolError) -> Option<Unreadable> {
    let HookToolError::Failed { stderr, .. } = e else {
        return None;
    };
    let stderr = stderr.to_ascii_lowercase();
    if stderr.contains("permission denied") {
        Some(Unreadable::NotGranted)
    } else if stderr.contains("not found") {
        Some(Unreadable::NotFound)
    } else {
        None
    }
}

/// Reads every secret option that is set (`secret-get --refresh`) into the credentials, over the plain
/// options. Returns the credentials and a problem for each secret that cannot be used. A `secret-get`
/// that fails for another reason (the agent unreachable) is an error: the hook fails and Juju retries it.
pub fn resolve(
    raw: &RawConfig,
    tools: &dyn HookTools,
    app: &str,
) -> Result<(Credentials, Vec<Problem>)> {
    let mut credentials = Credentials::from_plain(raw);
    let mut problems = Vec::new();
    for spec in SECRET_OPTIONS {
        let uri = (spec.uri)(raw).trim();
        if uri.is_empty() {
            continue;
        }
        let option = spec.option;
        let mut unavailable = |credentials: &mut Credentials, message: String| {
            for (_, plain) in spec.keys {
                *credentials.get_mut(plain) = Credential::Unavailable;
            }
            problems.push(Problem { option, message });
        };
        let how = format!(
            "create one with `juju add-secret <name> {}`, run `juju grant-secret <name> {app}` and set {option} to the secret:<id> it printed",
            spec.example
        );
        if !uri.starts_with("secret:") {
            unavailable(
                &mut credentials,
                format!("{option} \"{uri}\" is not a secret ID: {how}"),
            );
            continue;
        }
        let content = match read(tools, option, uri, &how, app)? {
            Ok(content) => content,
            Err(message) => {
                unavailable(&mut credentials, message);
                continue;
            }
        };
        let missing: Vec<&str> = spec
            .keys
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| content.get(*key).is_none_or(|v| v.is_empty()))
            .collect();
        if !missing.is_empty() {
            let has: Vec<&str> = content.keys().map(String::as_str).collect();
            unavailable(&mut credentials, format!(
                "{option} {uri} has no \"{}\" (it has: {}): store the content as `juju update-secret {uri} {}`",
                missing.join("\", \""),
                if has.is_empty() { "nothing".to_string() } else { has.join(", ") },
                spec.example
            ));
            continue;
        }
        for (key, plain) in spec.keys {
            *credentials.get_mut(plain) = Credential::Secret(content[*key].clone());
        }
    }
    let uri = raw.additional_targets_secret.trim();
    if !uri.is_empty() {
        const OPTION: &str = "additional_targets_secret";
        let how = format!(
            "create one with `juju add-secret <name> {TARGET_EXAMPLE}` (keys target<N>-{} for the N-th of additional_backup_urls), run `juju grant-secret <name> {app}` and set {OPTION} to the secret:<id> it printed",
            TARGET_KEYS.join("|")
        );
        let message = if !uri.starts_with("secret:") {
            Some(format!("{OPTION} \"{uri}\" is not a secret ID: {how}"))
        } else {
            match read(tools, OPTION, uri, &how, app)? {
                Ok(content) => {
                    credentials.targets = TargetSecret::Content {
                        uri: uri.to_string(),
                        content,
                    };
                    None
                }
                Err(message) => Some(message),
            }
        };
        if let Some(message) = message {
            credentials.targets = TargetSecret::Unavailable;
            problems.push(Problem {
                option: OPTION,
                message,
            });
        }
    }
    Ok((credentials, problems))
}

/// `secret-get --refresh` of one secret option's secret: its content, or (inner `Err`) the message of a
/// secret that is not granted or not found, with `how` to set it up. Other failures are errors.
fn read(
    tools: &dyn HookTools,
    option: &str,
    uri: &str,
    how: &str,
    app: &str,
) -> Result<Result<BTreeMap<String, String>, String>> {
    match tools.secret_get(uri) {
        Ok(content) => Ok(Ok(content)),
        Err(e) => match unreadable(&e) {
            Some(Unreadable::NotGranted) => Ok(Err(format!(
                "{option} {uri} is not granted to {app}: run `juju grant-secret {uri} {app}` (the unit looks again on its next hook, at the latest at update-status); if the secret was removed, {how}, or unset {option}"
            ))),
            Some(Unreadable::NotFound) => Ok(Err(format!(
                "{option} {uri} was not found (removed?): {how}, or unset {option}"
            ))),
            None => Err(anyhow::Error::new(e).context(format!("cannot read {option} {uri}"))),
        },
    }
}
