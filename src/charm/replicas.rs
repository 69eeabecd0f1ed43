//! Additional targets (`additional_backup_urls`): after every backup, scheduled or from the action, the
//! sets the main target has and an additional target lacks are replicated to it with the engine's
//! `replicate` (copied as they are: every target uses the unit's one encryption setting). Each target is
//! tried on its own: one that fails does not stop the others nor fail the backup; its failure is
//! recorded in the state file as a run of kind `replica <url>`, which the status, the NRPE check and the
//! metrics show.
//!
//! Credentials: the main target's credential options serve every target that needs them (the SSH key
//! and `remote_password` for sftp/scp/ftp/rsync, the AWS keys for s3, the Azure connection string for
//! azure), so a main sftp target with an S3 replica uses `aws_keys_secret` for the replica. Host keys of
//! additional SSH hosts come from `additional_known_host_keys`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::config::{problem, Problem, RawConfig};
use super::jobs::{Results, Runtime};
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
}

const SCHEMES: &[&str] = &[
    "file", "sftp", "scp", "rsync", "ftp", "s3", "s3+http", "boto3+s3", "azure",
];

/// Checks the options; every bad entry is a problem naming it and what to write instead.
pub fn validate(
    raw: &RawConfig,
    main_url: &str,
    unit_name: &str,
    problems: &mut Vec<Problem>,
) -> Replicas {
    const OPT: &str = "additional_backup_urls";
    let unit = unit_name.replace('/', "-");
    let mut out = Replicas::default();
    for given in raw
        .additional_backup_urls
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
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
        } else if !matches!(scheme, "s3" | "s3+http" | "boto3+s3" | "azure") {
            match NetUrl::parse(given) {
                Err(e) => {
                    problems.push(problem(OPT, format!("{OPT}: {e}")));
                    continue;
                }
                Ok(u) if u.password.is_some() => {
                    problems.push(problem(
                        OPT,
                        format!("{OPT}: {shown} holds a password, which `juju config` would show to anyone: remove it from the URL and set remote_password (or remote_password_secret), which every target uses"),
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
            let outcome = match &source {
                Some(source) => self.replicate_to(source, url),
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

    /// One additional target: the main target's options and credentials, its own URL (and so its own
    /// folder in the archive dir and its own writer lock), the extra host keys beside the main ones.
    fn replicate_to(
        &self,
        source: &Repository,
        url: &str,
    ) -> Result<crate::engine::commands::replicate::ReplicateReport> {
        let mut config = self.repository_config()?;
        config.url = url.to_string();
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
        let target = Repository::open(config)
            .with_context(|| format!("cannot open the additional target {url}"))?;
        Ok(target.replicate_from(source, &ReplicateOptions::default())?)
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
        let r = validate(&raw, "file:///main/app-0", "app/0", &mut problems);
        (r, problems.into_iter().map(|p| p.message).collect())
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
