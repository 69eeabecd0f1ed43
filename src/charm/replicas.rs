//! Additional targets (`additional_backup_urls`): after every backup, scheduled or from the action, the
//! sets the main target has and an additional target lacks are replicated to it with the engine's
//! `replicate` (copied as they are: every target uses the unit's one encryption setting). Each target is
//! tried on its own: one that fails does not stop the others nor fail the backup; its failure is
//! recorded in the state file as a run of kind `replica <url>`, which the status, the NRPE check and the
//! metrics show.
//!
//! Credentials: a target's own, from `additional_targets_secret` (keys `target<N>-<kind>`, N counting
//! the entries of `additional_backup_urls` from 1), else the main target's credential options (the SSH
//! key and `remote_password` for sftp/scp/ftp/rsync, the AWS keys for s3, the Azure connection string
//! for azure), so a main sftp target with an S3 replica uses `aws_keys_secret` for the replica unless
//! the secret has keys for it. The fallback is per group: a target with its own key or password gets
//! neither of the main ones (offering the main key to another host would hand it a login it was not
//! meant to have). Host keys of additional SSH hosts come from `additional_known_host_keys`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::config::{problem, Problem, RawConfig};
use super::jobs::{Results, Runtime};
use super::secrets::{TargetSecret, TARGET_KEYS};
use super::settings::{ReplicaCredentials, Secret};
use super::state::{self, RunRecord, Trigger};
use super::validate;
use crate::backend::url::NetUrl;
use crate::engine::commands::replicate::ReplicateOptions;
use crate::engine::repository::Repository;

/// The state file's kind for the runs of one additional target.
pub fn kind_of(url: &str) -> String {
    format!("{}{url}", state::REPLICA_PREFIX)
}

/// The validated `additional_backup_urls` and `additional_known_host_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    /// Full target URLs (the unit's folder appended, as for the main target), without passwords.
    pub urls: Vec<String>,
    pub known_hosts: Vec<String>,
    /// Each URL's own credentials (from `additional_targets_secret`), in the order of `urls`.
    pub credentials: Vec<ReplicaCredentials>,
}

const SCHEMES: &[&str] = &[
    "file", "sftp", "scp", "rsync", "ftp", "s3", "s3+http", "boto3+s3", "azure",
];

/// The `additional_targets_secret` keys (after `target<N>-`) a target's URL can use.
fn credential_kinds(scheme: &str, rest: &str) -> &'static [&'static str] {
    match scheme {
        "sftp" | "scp" => &["ssh-key", "password"],
        // A daemon (`host::module`) takes its module's password; over SSH, rsync logs in with a key.
        "rsync" if rest.contains("::") => &["password"],
        "rsync" => &["ssh-key"],
        "ftp" => &["password"],
        "s3" | "s3+http" | "boto3+s3" => &["access-key-id", "secret-access-key"],
        "azure" => &["connection-string"],
        _ => &[],
    }
}

/// Checks `additional_targets_secret`'s keys against the targets (`entries`: every entry of
/// `additional_backup_urls` in order, with its scheme and the rest when it is a URL) and returns each
/// entry's credentials. Every bad key is a problem naming it and the fix; no value reaches a message.
fn target_credentials(
    secret: &TargetSecret,
    entries: &[(String, Option<(String, String)>)],
    problems: &mut Vec<Problem>,
) -> Vec<ReplicaCredentials> {
    const OPT: &str = "additional_targets_secret";
    let mut out = vec![ReplicaCredentials::default(); entries.len()];
    let TargetSecret::Content { uri, content } = secret else {
        return out;
    };
    let rewrite =
        format!("store the content again without it (`juju update-secret {uri} <the other keys>`)");
    for (key, value) in content {
        let parsed = key.strip_prefix("target").and_then(|k| {
            let (n, kind) = k.split_once('-')?;
            let n: usize = n.parse().ok()?;
            TARGET_KEYS.contains(&kind).then_some((n, kind))
        });
        let Some((n, kind)) = parsed else {
            problems.push(problem(OPT, format!(
                "{OPT} {uri}: the key \"{key}\" is not target<N>-<kind> with kind one of {}: rename it (N counts additional_backup_urls from 1) or {rewrite}",
                TARGET_KEYS.join(", ")
            )));
            continue;
        };
        if n == 0 || n > entries.len() {
            problems.push(problem(OPT, format!(
                "{OPT} {uri}: {key} is for target {n}, but additional_backup_urls lists {} target(s) (numbered from 1 in their order): add the target or {rewrite}",
                entries.len()
            )));
            continue;
        }
        let (given, url) = &entries[n - 1];
        let Some((scheme, rest)) = url else {
            // A bad URL has its own problem.
            continue;
        };
        let kinds = credential_kinds(scheme, rest);
        if !kinds.contains(&kind) {
            let takes = match kinds.is_empty() {
                true => "no credentials".to_string(),
                false => kinds
                    .iter()
                    .map(|k| format!("target{n}-{k}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            problems.push(problem(OPT, format!(
                "{OPT} {uri}: {key} does not fit target {n} ({}), a {scheme}:// target that takes {takes}: {rewrite}, or put the credential under the key that fits",
                crate::backend::url::redact(given)
            )));
            continue;
        }
        if value.trim().is_empty() {
            problems.push(problem(
                OPT,
                format!("{OPT} {uri}: {key} is empty: set its value or {rewrite}"),
            ));
            continue;
        }
        let c = &mut out[n - 1];
        match kind {
            "ssh-key" => match validate::private_key_text(
                value,
                "is not a private key",
                &format!("store the private key file itself (`juju update-secret {uri} ... {key}#file=<private key file>`)"),
            ) {
                Ok(text) => c.ssh_key = Some(Secret::new(text)),
                Err(why) => problems.push(problem(OPT, format!("{OPT} {uri}: {key} {why}"))),
            },
            "password" => c.password = Some(Secret::new(value.as_str())),
            "access-key-id" => c.aws_access_key_id = Some(value.trim().to_string()),
            "secret-access-key" => c.aws_secret_access_key = Some(Secret::new(value.as_str())),
            "connection-string" => c.azure_connection_string = Some(Secret::new(value.as_str())),
            other => unreachable!("TARGET_KEYS has {other}"),
        }
    }
    for (i, c) in out.iter().enumerate() {
        let n = i + 1;
        let missing = match (&c.aws_access_key_id, &c.aws_secret_access_key) {
            (Some(_), None) => Some(("access-key-id", "secret-access-key")),
            (None, Some(_)) => Some(("secret-access-key", "access-key-id")),
            _ => None,
        };
        if let Some((has, lacks)) = missing {
            problems.push(problem(OPT, format!(
                "{OPT} {uri}: target{n}-{has} has no target{n}-{lacks}: the two go together, add target{n}-{lacks} (`juju update-secret {uri} ... target{n}-{lacks}=<...>`) or remove both to use the main AWS keys"
            )));
        }
    }
    out
}

/// Checks the options; every bad entry is a problem naming it and what to write instead.
pub fn validate(
    raw: &RawConfig,
    secret: &TargetSecret,
    main_url: &str,
    unit_name: &str,
    problems: &mut Vec<Problem>,
) -> Replicas {
    const OPT: &str = "additional_backup_urls";
    let unit = unit_name.replace('/', "-");
    let mut out = Replicas::default();
    let entries: Vec<(String, Option<(String, String)>)> = raw
        .additional_backup_urls
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|given| {
            let url = given
                .split_once("://")
                .filter(|(scheme, _)| SCHEMES.contains(scheme))
                .map(|(a, b)| (a.to_string(), b.to_string()));
            (given.to_string(), url)
        })
        .collect();
    let credentials = target_credentials(secret, &entries, problems);
    for ((given, _), own) in entries.iter().zip(credentials) {
        let given = given.as_str();
        let shown = crate::backend::url::redact(given);
        let Some((scheme, rest)) = given.split_once("://") else {
            problems.push(problem(
                OPT,
                format!("{OPT}: {shown:?} is not a URL: write each target as scheme://..., e.g. sftp://backup@host2/srv/backups or s3://bucket/prefix, separated by commas or spaces"),
            ));
            continue;
        };
        if !SCHEMES.contains(&scheme) {
            problems.push(problem(
                OPT,
                format!(
                    "{OPT}: {shown}: the {scheme}:// backend is not supported: use one of {}",
                    SCHEMES.join("://, ") + "://"
                ),
            ));
            continue;
        }
        if scheme == "file" {
            if !rest.starts_with('/') {
                problems.push(problem(
                    OPT,
                    format!("{OPT}: {shown}: a file:// target needs an absolute path (file:///srv/replica)"),
                ));
                continue;
            }
        } else if scheme == "rsync" && rest.contains("::") {
            // An rsync daemon (`host::/module/path`): not a URL NetUrl reads; only the password matters.
            if crate::backend::url::redact(given) != given {
                problems.push(problem(
                    OPT,
                    format!("{OPT}: {shown} holds a password, which `juju config` would show to anyone: remove it from the URL and set it as target<N>-password in additional_targets_secret (or remote_password, which every target without its own uses)"),
                ));
                continue;
            }
        } else if !matches!(scheme, "s3" | "s3+http" | "boto3+s3" | "azure") {
            match NetUrl::parse(given) {
                Err(e) => {
                    problems.push(problem(OPT, format!("{OPT}: {e}")));
                    continue;
                }
                Ok(u) if u.password.is_some() => {
                    problems.push(problem(
                        OPT,
                        format!("{OPT}: {shown} holds a password, which `juju config` would show to anyone: remove it from the URL and set it as target<N>-password in additional_targets_secret (or remote_password, which every target without its own uses)"),
                    ));
                    continue;
                }
                Ok(_) => {}
            }
        } else if rest.trim_matches('/').is_empty() {
            problems.push(problem(
                OPT,
                format!(
                    "{OPT}: {shown} names no bucket or container: write {scheme}://bucket[/prefix]"
                ),
            ));
            continue;
        }
        let url = format!("{}/{unit}", given.trim_end_matches('/'));
        if url == main_url {
            problems.push(problem(
                OPT,
                format!("{OPT}: {shown} is the main target (remote_backup_url): list only other targets"),
            ));
            continue;
        }
        if out.urls.contains(&url) {
            problems.push(problem(
                OPT,
                format!("{OPT}: {shown} is listed twice: list each target once"),
            ));
            continue;
        }
        out.urls.push(url);
        out.credentials.push(own);
    }
    for line in raw
        .additional_known_host_keys
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        match validate::known_hosts_line(line) {
            Ok(l) => out.known_hosts.push(l),
            Err(why) => problems.push(problem(
                "additional_known_host_keys",
                format!("additional_known_host_keys: a line {why}"),
            )),
        }
    }
    out
}

/// The file (beside the settings) that holds `additional_known_host_keys` for the SSH targets.
const KNOWN_HOSTS_FILE: &str = "replicas_known_hosts";

impl Runtime {
    /// Replicates the main target's sets to every additional target, each on its own, records each
    /// outcome in the state file (the caller holds the run lock) and returns them as action results
    /// (`replicas.N.target`, `replicas.N.result`, `replicas.N.error`). Never fails: a target that fails
    /// is a result.
    pub fn replicate_after_backup(&self, trigger: Trigger, log: &mut dyn FnMut(String)) -> Results {
        let urls = self.settings.replicas.clone();
        let mut results = Results::new();
        // Targets no longer listed leave the record, so their old failures stop showing.
        let kinds: Vec<String> = urls.iter().map(|u| kind_of(u)).collect();
        let _ = state::update(&self.state_file(), |s| {
            for map in [&mut s.last, &mut s.last_ok, &mut s.last_scheduled] {
                map.retain(|k, _| !k.starts_with(state::REPLICA_PREFIX) || kinds.contains(k));
            }
        });
        if urls.is_empty() {
            return results;
        }
        let source = match self.replica_source() {
            Ok(s) => Some(s),
            Err(e) => {
                log(format!(
                    "cannot open the main target to replicate from: {e:#}"
                ));
                None
            }
        };
        for (i, url) in urls.iter().enumerate() {
            let started = chrono::Utc::now().timestamp();
            log(format!("replicating to {url}"));
            let own = self.settings.replica_credentials.get(i);
            let outcome = match &source {
                Some(source) => self.replicate_to(source, url, own),
                None => Err(anyhow::anyhow!("the main target could not be opened")),
            };
            let finished = chrono::Utc::now().timestamp();
            let key = format!("replicas.{}", i + 1);
            results.insert(format!("{key}.target"), url.clone());
            let mut stats = BTreeMap::new();
            let record = match &outcome {
                Ok(r) => {
                    stats.insert("sets".to_string(), r.copied.len() as u64);
                    stats.insert("files".to_string(), r.files);
                    stats.insert("stored-bytes".to_string(), r.bytes);
                    log(format!("replica {url}: {}", r.summary()));
                    results.insert(format!("{key}.result"), "ok".into());
                    results.insert(format!("{key}.sets"), r.copied.len().to_string());
                    results.insert(format!("{key}.stored-bytes"), r.bytes.to_string());
                    None
                }
                Err(e) => {
                    let why = state::short_error(&format!("{e:#}"));
                    log(format!("replica {url} FAILED: {e:#}"));
                    results.insert(format!("{key}.result"), "failed".into());
                    results.insert(format!("{key}.error"), why.clone());
                    Some(why)
                }
            };
            let run = RunRecord {
                kind: kind_of(url),
                trigger,
                started,
                finished,
                ok: record.is_none(),
                error: record,
                stats,
                detail: None,
            };
            if let Err(e) = state::update(&self.state_file(), |s| s.record(run)) {
                log(format!("cannot record the replica run: {e:#}"));
            }
        }
        results
    }

    fn replica_source(&self) -> Result<Repository> {
        Repository::open(self.repository_config()?)
            .with_context(|| format!("cannot open the backup target {}", self.settings.url))
    }

    /// One additional target: the main target's options, its own URL (and so its own folder in the
    /// archive dir and its own writer lock), its own credentials where it has them (else the main
    /// ones), the extra host keys beside the main ones.
    fn replicate_to(
        &self,
        source: &Repository,
        url: &str,
        own: Option<&ReplicaCredentials>,
    ) -> Result<crate::engine::commands::replicate::ReplicateReport> {
        // Kept until the replication is done: the target's key file (0600, removed on drop).
        let (config, _key_file) = self.replica_config(url, own)?;
        let target = Repository::open(config)
            .with_context(|| format!("cannot open the additional target {url}"))?;
        Ok(target.replicate_from(source, &ReplicateOptions::default())?)
    }

    /// The configuration [`Runtime::replicate_to`] opens the target with, and the temporary file that
    /// holds the target's own SSH key (if any), which must outlive the use of the configuration.
    fn replica_config(
        &self,
        url: &str,
        own: Option<&ReplicaCredentials>,
    ) -> Result<(
        crate::engine::repository::RepositoryConfig,
        Option<tempfile::NamedTempFile>,
    )> {
        let mut config = self.repository_config()?;
        config.url = url.to_string();
        let mut key_file = None;
        if let Some(own) = own {
            let backend = &mut config.backend;
            let expose = |v: &Option<Secret>| v.as_ref().map(|v| v.expose().to_string());
            if own.has_login() {
                backend
                    .ssh_options
                    .retain(|o| !o.to_ascii_lowercase().starts_with("-oidentityfile"));
                backend.ftp_password = expose(&own.password);
                // Only the target's own key: no default identities (`~/.ssh`, which holds the main
                // key file too).
                backend.ssh_options.push("-oIdentitiesOnly=yes".into());
                if own.ssh_key.is_none() {
                    // A key file that does not exist: ssh and the sftp backend skip it, and having
                    // one stops both from falling back to the default files.
                    backend.ssh_options.push(format!(
                        "-oIdentityFile={}",
                        self.dir.join(".replica-no-key").display()
                    ));
                }
            }
            if let Some(key) = &own.ssh_key {
                let mut tmp = tempfile::Builder::new()
                    .prefix(".replica-key-")
                    .tempfile_in(&self.dir)
                    .context(
                        "cannot write the additional target's SSH key to the state directory",
                    )?;
                std::io::Write::write_all(&mut tmp, key.expose().as_bytes())
                    .context("cannot write the additional target's SSH key")?;
                backend
                    .ssh_options
                    .push(format!("-oIdentityFile={}", tmp.path().display()));
                key_file = Some(tmp);
            }
            if own.aws_access_key_id.is_some() {
                backend.aws_access_key_id.clone_from(&own.aws_access_key_id);
                backend.aws_secret_access_key = expose(&own.aws_secret_access_key);
            }
            if own.azure_connection_string.is_some() {
                backend.azure_connection_string = expose(&own.azure_connection_string);
            }
        }
        if !self.settings.replica_known_hosts.is_empty() {
            let file = self.dir.join(KNOWN_HOSTS_FILE);
            let mut text = self.settings.replica_known_hosts.join("\n");
            text.push('\n');
            super::reconcile::write_file(&file, text.as_bytes(), 0o644)
                .with_context(|| format!("cannot write {}", file.display()))?;
            let main = self.paths.resolve(&self.settings.known_hosts_file);
            config
                .backend
                .ssh_options
                .retain(|o| !o.to_ascii_lowercase().starts_with("-ouserknownhostsfile"));
            config.backend.ssh_options.push(format!(
                "-oUserKnownHostsFile={} {}",
                main.display(),
                file.display()
            ));
        }
        Ok((config, key_file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::cos::metrics::{self, SchedulerView};
    use crate::charm::state::State;

    fn check(urls: &str) -> (Replicas, Vec<String>) {
        let raw = RawConfig {
            additional_backup_urls: urls.into(),
            ..RawConfig::default()
        };
        let mut problems = Vec::new();
        let r = validate(
            &raw,
            &TargetSecret::Unset,
            "file:///main/app-0",
            "app/0",
            &mut problems,
        );
        (r, problems.into_iter().map(|p| p.message).collect())
    }

    const URI: &str = "secret:d2targets0000000000";

    /// `validate` with `additional_targets_secret` holding `keys`.
    fn check_secret(urls: &str, keys: &[(&str, &str)]) -> (Replicas, Vec<Problem>) {
        let raw = RawConfig {
            additional_backup_urls: urls.into(),
            ..RawConfig::default()
        };
        let secret = TargetSecret::Content {
            uri: URI.into(),
            content: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut problems = Vec::new();
        let r = validate(&raw, &secret, "file:///main/app-0", "app/0", &mut problems);
        (r, problems)
    }

    fn key_pem() -> String {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let mut blob = b"openssh-key-v1\0".to_vec();
        blob.extend_from_slice(&4u32.to_be_bytes());
        blob.extend_from_slice(b"none");
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            STANDARD.encode(blob)
        )
    }

    const URLS: &str = "sftp://u@h2/srv s3://bucket/pre file:///r rsync://u@h3::/mod azure://c";

    /// The main target (sftp) logs in with the charm's SSH key and `remote_password`. An additional
    /// target with its own password is offered neither: not the main key file, not the default
    /// identities (`IdentitiesOnly` and a key file that does not exist), not the main password. One
    /// with its own key gets that key alone. One without credentials of its own uses the main ones.
    #[test]
    fn a_target_with_its_own_login_is_not_offered_the_main_key() {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let mut host_key = 11u32.to_be_bytes().to_vec();
        host_key.extend_from_slice(b"ssh-ed25519");
        host_key.extend_from_slice(&[0, 0, 0, 32]);
        host_key.extend_from_slice(&[9u8; 32]);
        let raw = RawConfig {
            backend: "sftp".into(),
            remote_backup_url: "sftp://u@main/srv".into(),
            known_host_key: format!("main ssh-ed25519 {}", STANDARD.encode(host_key)),
            remote_password: "main-pw".into(),
            encryption_passphrase: "p".into(),
            ..RawConfig::default()
        };
        let state = crate::charm::config::validate(&raw, "d/0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = crate::charm::paths::UnitFiles::new("d-0");
        let mut settings = crate::charm::settings::Settings::new(&state, "d/0", &files);
        // As a `private_ssh_key` sets it (the secret's key, written beside the settings).
        settings.ssh_key_file = Some("/var/lib/unit/main-key".into());
        let runtime = Runtime {
            settings,
            dir: dir.path().to_path_buf(),
            paths: crate::charm::paths::Paths::with_root(None),
            secret: None,
        };
        let main_key = "-oIdentityFile=/var/lib/unit/main-key";
        let main = runtime.repository_config().unwrap();
        assert!(
            main.backend.ssh_options.iter().any(|o| o == main_key),
            "the main target uses its key: {:?}",
            main.backend.ssh_options
        );
        let identities = |o: &[String]| -> Vec<String> {
            o.iter()
                .filter(|o| o.to_ascii_lowercase().starts_with("-oidentit"))
                .cloned()
                .collect()
        };

        // Its own password: no key but a file that does not exist, no defaults, its password.
        let own = ReplicaCredentials {
            password: Some(Secret::new("own-pw")),
            ..ReplicaCredentials::default()
        };
        let (c, key_file) = runtime
            .replica_config("sftp://u@other/srv", Some(&own))
            .unwrap();
        assert!(key_file.is_none());
        let ids = identities(&c.backend.ssh_options);
        assert!(!ids.iter().any(|o| o == main_key), "{ids:?}");
        assert!(ids.iter().any(|o| o == "-oIdentitiesOnly=yes"), "{ids:?}");
        let files: Vec<&str> = ids
            .iter()
            .filter_map(|o| o.strip_prefix("-oIdentityFile="))
            .collect();
        assert_eq!(files.len(), 1, "{ids:?}");
        assert!(
            !std::path::Path::new(files[0]).exists(),
            "the one key file offered does not exist: {ids:?}"
        );
        assert_eq!(c.backend.ftp_password.as_deref(), Some("own-pw"));
        assert_eq!(c.url, "sftp://u@other/srv");

        // Its own key: that key alone, no main password.
        let own = ReplicaCredentials {
            ssh_key: Some(Secret::new(key_pem())),
            ..ReplicaCredentials::default()
        };
        let (c, key_file) = runtime
            .replica_config("sftp://u@other/srv", Some(&own))
            .unwrap();
        let key_file = key_file.expect("the target's key in a file");
        assert_eq!(std::fs::read_to_string(key_file.path()).unwrap(), key_pem());
        let ids = identities(&c.backend.ssh_options);
        assert_eq!(
            ids,
            [
                "-oIdentitiesOnly=yes".to_string(),
                format!("-oIdentityFile={}", key_file.path().display())
            ]
        );
        assert_eq!(c.backend.ftp_password, None);

        // No credentials of its own (none given, or the secret has none for it): the main ones.
        for own in [None, Some(&ReplicaCredentials::default())] {
            let (c, key_file) = runtime.replica_config("sftp://u@third/srv", own).unwrap();
            assert!(key_file.is_none());
            assert_eq!(identities(&c.backend.ssh_options), [main_key]);
            assert_eq!(c.backend.ftp_password.as_deref(), Some("main-pw"));
        }
    }

    #[test]
    fn each_target_gets_its_own_keys_and_the_others_none() {
        let key = key_pem();
        let (r, p) = check_secret(
            URLS,
            &[
                ("target1-ssh-key", &key),
                ("target1-password", "pw-one"),
                ("target2-access-key-id", "AKIDTWO"),
                ("target2-secret-access-key", "sk-two"),
                ("target4-password", "pw-four"),
                ("target5-connection-string", "cs-five"),
            ],
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.urls.len(), 5);
        let c = &r.credentials;
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].ssh_key.as_ref().unwrap().expose(), key);
        assert_eq!(c[0].password.as_ref().unwrap().expose(), "pw-one");
        assert!(c[0].aws_access_key_id.is_none() && c[0].has_login());
        assert_eq!(c[1].aws_access_key_id.as_deref(), Some("AKIDTWO"));
        assert_eq!(
            c[1].aws_secret_access_key.as_ref().unwrap().expose(),
            "sk-two"
        );
        assert!(!c[1].has_login());
        assert_eq!(c[2], ReplicaCredentials::default(), "file:// uses none");
        assert_eq!(c[3].password.as_ref().unwrap().expose(), "pw-four");
        assert_eq!(
            c[4].azure_connection_string.as_ref().unwrap().expose(),
            "cs-five"
        );
        // Debug output (logs, panics) shows no value.
        let shown = format!("{r:?}");
        for v in ["pw-one", "sk-two", "pw-four", "cs-five", "OPENSSH"] {
            assert!(!shown.contains(v), "{v} in {shown}");
        }
        // No secret at all: every target falls back to the main credentials.
        let (r, p) = check(URLS);
        assert!(p.is_empty(), "{p:?}");
        assert!(r
            .credentials
            .iter()
            .all(|c| *c == ReplicaCredentials::default()));
    }

    #[test]
    fn bad_target_keys_block_naming_the_key_and_the_fix_without_values() {
        let (r, p) = check_secret(
            URLS,
            &[
                ("target1-access-key-id", "AKIDONE"),
                ("target2-ssh-key", "x"),
                ("target2-secret-access-key", "sk-two"),
                ("target3-password", "pw-three"),
                ("target4-ssh-key", "k"),
                ("target6-password", "pw-six"),
                ("target0-password", "pw-zero"),
                ("password", "pw-bare"),
                ("target1-token", "tok-Sekr1t"),
                ("target1-ssh-key", "ssh-ed25519 AAAAC3 me@host"),
                ("target1-password", ""),
            ],
        );
        let texts: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert!(p.iter().all(|p| p.option == "additional_targets_secret"));
        let has = |needle: &str| {
            assert!(
                texts.iter().any(|t| t.contains(needle) && t.contains(URI)),
                "no problem says {needle:?}: {texts:#?}"
            )
        };
        has("target1-access-key-id does not fit target 1 (sftp://u@h2/srv), a sftp:// target that takes target1-ssh-key or target1-password");
        has("target2-ssh-key does not fit target 2 (s3://bucket/pre), a s3:// target that takes target2-access-key-id or target2-secret-access-key");
        has("target2-secret-access-key has no target2-access-key-id: the two go together");
        has("target3-password does not fit target 3 (file:///r), a file:// target that takes no credentials");
        has("target4-ssh-key does not fit target 4 (rsync://u@h3::/mod), a rsync:// target that takes target4-password");
        has("target6-password is for target 6, but additional_backup_urls lists 5 target(s)");
        has("target0-password is for target 0");
        has("the key \"password\" is not target<N>-<kind>");
        has("the key \"target1-token\" is not target<N>-<kind>");
        has("target1-ssh-key is a public key");
        has("target1-password is empty");
        assert_eq!(texts.len(), 11, "{texts:#?}");
        for v in [
            "AKIDONE",
            "sk-two",
            "pw-three",
            "pw-six",
            "pw-zero",
            "pw-bare",
            "tok-Sekr1t",
            "AAAAC3",
        ] {
            assert!(
                !texts.iter().any(|t| t.contains(v)),
                "{v} leaked: {texts:#?}"
            );
        }
        // The URLs themselves are fine.
        assert_eq!(r.urls.len(), 5);

        // A malformed key; an access key id alone; rsync over SSH takes a key, not a password.
        let (_, p) = check_secret(
            "sftp://u@h2/srv s3://b rsync://u@h3/srv",
            &[
                ("target1-ssh-key", "not a key at all"),
                ("target2-access-key-id", "AKID"),
                ("target3-password", "pw"),
            ],
        );
        let texts: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(texts.len(), 3, "{texts:#?}");
        assert!(
            texts[0].contains("target1-ssh-key is not a private key")
                && texts[0].contains("target1-ssh-key#file=<private key file>"),
            "{texts:#?}"
        );
        assert!(texts[1].contains("target3-password does not fit target 3 (rsync://u@h3/srv), a rsync:// target that takes target3-ssh-key"), "{texts:#?}");
        assert!(
            texts[2].contains("target2-access-key-id has no target2-secret-access-key"),
            "{texts:#?}"
        );
    }

    #[test]
    fn keys_count_every_listed_entry_even_a_bad_one() {
        // Entry 1 is not a URL (its own problem): target2's key still belongs to the s3 entry.
        let (r, p) = check_secret(
            "relative s3://b",
            &[
                ("target2-access-key-id", "AKID"),
                ("target2-secret-access-key", "sk"),
            ],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].option, "additional_backup_urls");
        assert_eq!(r.urls, ["s3://b/app-0"]);
        assert_eq!(r.credentials[0].aws_access_key_id.as_deref(), Some("AKID"));
    }

    #[test]
    fn urls_get_the_unit_folder_and_bad_ones_are_named_with_the_fix() {
        let (r, p) = check(" sftp://u@h2/srv,s3://bucket/pre  file:///r ");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            r.urls,
            [
                "sftp://u@h2/srv/app-0",
                "s3://bucket/pre/app-0",
                "file:///r/app-0"
            ]
        );
        let (r, p) = check(
            "ftp://u:pw@h/x, relative, file://rel, s3://, file:///main, file:///r file:///r/",
        );
        assert_eq!(r.urls, ["file:///r/app-0"]);
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(
            p[0].contains("ftp://u@h/x holds a password") && !p[0].contains("pw"),
            "{p:?}"
        );
        assert!(p[1].contains("\"relative\" is not a URL"), "{p:?}");
        assert!(p[2].contains("needs an absolute path"), "{p:?}");
        assert!(p[3].contains("names no bucket"), "{p:?}");
        assert!(p[4].contains("is the main target"), "{p:?}");
        assert!(p[5].contains("listed twice"), "{p:?}");
    }

    #[test]
    fn each_target_has_its_series_and_only_its_failure_warns() {
        let mut st = State::default();
        let run = |url: &str, ok: bool, finished: i64| RunRecord {
            kind: kind_of(url),
            trigger: Trigger::Scheduled,
            started: finished - 5,
            finished,
            ok,
            error: (!ok).then(|| "connection refused".into()),
            stats: [("stored-bytes".to_string(), 42)].into(),
            detail: None,
        };
        st.record(run("sftp://h2/x", true, 1000));
        st.record(run("s3://b/x", false, 2000));
        let text = metrics::render(Ok(&st), &SchedulerView::default(), &chrono::Local::now());
        for line in [
            "duplicity_replica_last_result{target=\"sftp://h2/x\"} 1",
            "duplicity_replica_last_result{target=\"s3://b/x\"} 0",
            "duplicity_replica_last_success_timestamp_seconds{target=\"sftp://h2/x\"} 1000",
            "duplicity_replica_last_stored_bytes{target=\"sftp://h2/x\"} 42",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(
            !text.contains("duplicity_replica_last_success_timestamp_seconds{target=\"s3://b/x\"}")
        );
        let findings = state::assess(
            &st,
            &state::Schedules {
                backup: None,
                retention: None,
            },
            2060,
            true,
        );
        let texts: Vec<&str> = findings.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(
            texts,
            ["replica s3://b/x failed 60s ago: connection refused"]
        );
    }
}
