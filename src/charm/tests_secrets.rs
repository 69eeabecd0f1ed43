//! Credentials from Juju secrets, over the fake hook tools and a fake system under a temp root: granted,
//! not granted, changed (`secret-changed` rewrites what was written from it), removed, a secret option
//! winning over its plain option, and the content never reaching a tool call, a log, a status or action
//! output.

use std::collections::BTreeMap;
use std::fs;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::paths::{Paths, UnitFiles};
use super::run;
use super::system::FakeSystem;
use crate::juju::fake::FakeHookTools;
use crate::juju::{JujuContext, WorkloadStatus};

const UNIT: &str = "duplicity/0";
const PASS_ID: &str = "secret:cj5k7v678ohs79t2aa30";
const PASS: &str = "from-the-Sekr1t-store";
const PLAIN_PASS: &str = "plain-Sekr1t-pass";

fn ssh_key_pem(tag: &str) -> String {
    let mut blob = b"openssh-key-v1\0".to_vec();
    blob.extend_from_slice(&4u32.to_be_bytes());
    blob.extend_from_slice(b"none");
    blob.extend_from_slice(tag.as_bytes());
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        STANDARD.encode(blob)
    )
}

fn known_host(host: &str) -> String {
    let mut blob = 11u32.to_be_bytes().to_vec();
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&[9u8; 32]);
    format!("{host} ssh-ed25519 {}", STANDARD.encode(blob))
}

fn config(pairs: &[(&str, Value)]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("backend".into(), json!("file"));
    m.insert("remote_backup_url".into(), json!("file:///srv/backups"));
    m.insert("encryption_passphrase_secret".into(), json!(PASS_ID));
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    m
}

fn content(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A unit's machine, and the model's secrets as Juju holds them.
struct Unit {
    root: tempfile::TempDir,
    sys: FakeSystem,
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    denied: Vec<String>,
}

impl Unit {
    fn new() -> Self {
        let mut secrets = BTreeMap::new();
        secrets.insert(PASS_ID.to_string(), content(&[("passphrase", PASS)]));
        Unit {
            root: tempfile::tempdir().unwrap(),
            sys: FakeSystem {
                commands: vec!["ssh".into(), "rsync".into()],
                ..Default::default()
            },
            secrets,
            denied: Vec::new(),
        }
    }

    fn paths(&self) -> Paths {
        Paths::with_root(Some(self.root.path().to_path_buf()))
    }

    fn dispatch(
        &self,
        dispatch: &str,
        config: &Map<String, Value>,
        action: Option<Map<String, Value>>,
    ) -> FakeHookTools {
        let vars: BTreeMap<String, String> = [
            ("JUJU_DISPATCH_PATH", dispatch),
            ("JUJU_UNIT_NAME", UNIT),
            (
                "JUJU_CHARM_DIR",
                "/var/lib/juju/agents/unit-duplicity-0/charm",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = JujuContext::from_vars(vars).unwrap();
        let mut tools = FakeHookTools::new(config.clone());
        tools.secrets = self.secrets.clone();
        tools.denied = self.denied.clone();
        tools.action_params = action;
        run(&ctx, &tools, &self.sys, &self.paths()).expect("the dispatch succeeds");
        tools
    }

    fn hook(&self, hook: &str, config: &Map<String, Value>) -> FakeHookTools {
        self.dispatch(&format!("hooks/{hook}"), config, None)
    }

    fn settings(&self) -> Option<Value> {
        let path = self
            .paths()
            .resolve(&UnitFiles::new("duplicity-0").settings);
        fs::read(path)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn passphrase(&self) -> Value {
        self.settings().expect("settings written")["encryption"]["passphrase"].clone()
    }

    fn ssh_key_file(&self) -> Option<String> {
        fs::read_to_string(self.paths().resolve(super::paths::SSH_KEY)).ok()
    }
}

fn status(tools: &FakeHookTools) -> (WorkloadStatus, String) {
    tools.status().expect("a status was set")
}

#[test]
fn a_granted_secret_s_passphrase_goes_to_the_settings() {
    let u = Unit::new();
    let tools = u.hook("config-changed", &config(&[]));
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    assert_eq!(u.passphrase(), PASS);
    // (That it asks with --refresh is checked on the real command line, in the integration tests.)
}

#[test]
fn a_secret_not_granted_blocks_with_the_grant_command_until_granted() {
    let mut u = Unit::new();
    u.denied.push(PASS_ID.into());
    let tools = u.hook("config-changed", &config(&[]));
    let (st, msg) = status(&tools);
    assert_eq!(st, WorkloadStatus::Blocked);
    assert!(
        msg.starts_with(&format!(
            "encryption_passphrase_secret {PASS_ID} is not granted to duplicity: run `juju grant-secret {PASS_ID} duplicity`"
        )),
        "{msg}"
    );
    assert!(
        !msg.contains("more in juju debug-log"),
        "only the secret's problem, not also \"no encryption configured\": {msg}"
    );
    assert!(u.settings().is_none(), "nothing written while blocked");
    // Actions refuse, quoting the command.
    let tools = u.dispatch("actions/backup", &config(&[]), Some(Map::new()));
    let failed = tools.record().action_failed.unwrap();
    assert!(
        failed.contains(&format!("juju grant-secret {PASS_ID} duplicity")),
        "{failed}"
    );
    // `juju grant-secret` fires no hook: the next one (update-status) finds it granted.
    u.denied.clear();
    let tools = u.hook("update-status", &config(&[]));
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    assert_eq!(u.passphrase(), PASS);
}

#[test]
fn secret_changed_rewrites_the_settings_and_the_ssh_key_file() {
    let mut u = Unit::new();
    let key_id = "secret:ssh0000000000000000000";
    u.secrets.insert(
        key_id.into(),
        content(&[("private-key", &ssh_key_pem("one"))]),
    );
    let cfg = config(&[
        ("backend", json!("sftp")),
        ("remote_backup_url", json!("backup.example/srv")),
        ("known_host_key", json!(known_host("backup.example"))),
        ("private_ssh_key_secret", json!(key_id)),
    ]);
    let tools = u.hook("config-changed", &cfg);
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    assert_eq!(u.passphrase(), PASS);
    assert_eq!(u.ssh_key_file().unwrap(), ssh_key_pem("one"));
    assert_eq!(
        u.settings().unwrap()["ssh_key_file"],
        "/root/.ssh/duplicity_id_rsa"
    );

    // `juju update-secret` on both: secret-changed applies the new revisions.
    u.secrets
        .insert(PASS_ID.into(), content(&[("passphrase", "rotated-Sekr1t")]));
    u.secrets.insert(
        key_id.into(),
        content(&[("private-key", &ssh_key_pem("two"))]),
    );
    let tools = u.hook("secret-changed", &cfg);
    assert_eq!(status(&tools).0, WorkloadStatus::Active);
    assert_eq!(u.passphrase(), "rotated-Sekr1t");
    assert_eq!(u.ssh_key_file().unwrap(), ssh_key_pem("two"));
    let logs: Vec<String> = tools.record().logs.into_iter().map(|(_, m)| m).collect();
    assert!(
        logs.iter().any(|l| l.contains("duplicity_id_rsa"))
            && logs.iter().any(|l| l.contains("settings")),
        "the rewrites are logged (by path): {logs:?}"
    );

    // An invalid key in the secret blocks, naming the secret option, and keeps the last good file.
    u.secrets.insert(
        key_id.into(),
        content(&[("private-key", "ssh-ed25519 AAAA me@host")]),
    );
    let tools = u.hook("secret-changed", &cfg);
    let (st, msg) = status(&tools);
    assert_eq!(st, WorkloadStatus::Blocked);
    assert!(
        msg.starts_with("private_ssh_key_secret is a public key") && msg.contains("private-key"),
        "{msg}"
    );
    assert_eq!(u.ssh_key_file().unwrap(), ssh_key_pem("two"));
}

#[test]
fn a_removed_secret_blocks_with_a_clear_message() {
    let mut u = Unit::new();
    u.hook("config-changed", &config(&[]));
    assert_eq!(u.passphrase(), PASS);
    u.secrets.clear();
    let tools = u.hook("update-status", &config(&[]));
    let (st, msg) = status(&tools);
    assert_eq!(st, WorkloadStatus::Blocked);
    assert!(
        msg.starts_with(&format!(
            "encryption_passphrase_secret {PASS_ID} was not found (removed?): create one with `juju add-secret <name> passphrase='<passphrase>'`, run `juju grant-secret <name> duplicity`"
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with("or unset encryption_passphrase_secret"),
        "{msg}"
    );
    // The scheduler stops until it is fixed.
    assert!(u
        .sys
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("systemctl disable --now")));
}

#[test]
fn a_secret_without_its_content_key_or_not_a_secret_uri_blocks_naming_the_key() {
    let mut u = Unit::new();
    u.secrets
        .insert(PASS_ID.into(), content(&[("password", "x-Sekr1t")]));
    let (_, msg) = status(&u.hook("config-changed", &config(&[])));
    assert!(
        msg.starts_with(&format!(
            "encryption_passphrase_secret {PASS_ID} has no \"passphrase\" (it has: password): store the content as `juju update-secret {PASS_ID} passphrase='<passphrase>'`"
        )),
        "{msg}"
    );
    assert!(!msg.contains("x-Sekr1t"));
    let (_, msg) = status(&u.hook(
        "config-changed",
        &config(&[("encryption_passphrase_secret", json!("backup-pass"))]),
    ));
    assert!(
        msg.starts_with("encryption_passphrase_secret \"backup-pass\" is not a secret ID"),
        "{msg}"
    );
}

#[test]
fn each_secret_option_wins_over_its_plain_option_and_unset_falls_back() {
    let mut u = Unit::new();
    let ids = [
        ("aws_keys_secret", "secret:aws0000000000000000000"),
        (
            "azure_connection_string_secret",
            "secret:az00000000000000000000",
        ),
        ("remote_password_secret", "secret:pw00000000000000000000"),
    ];
    u.secrets.insert(
        ids[0].1.into(),
        content(&[
            ("access-key-id", "AKIA-from-secret"),
            ("secret-access-key", "aws-key-from-Sekr1t"),
        ]),
    );
    u.secrets.insert(
        ids[1].1.into(),
        content(&[("connection-string", "AccountKey=az-from-Sekr1t")]),
    );
    u.secrets
        .insert(ids[2].1.into(), content(&[("password", "pw-from-Sekr1t")]));
    let plain = [
        ("encryption_passphrase", json!(PLAIN_PASS)),
        ("aws_access_key_id", json!("AKIA-plain")),
        ("aws_secret_access_key", json!("aws-plain")),
        ("azure_connection_string", json!("AccountKey=az-plain")),
        ("remote_password", json!("pw-plain")),
        ("backend", json!("s3")),
        ("remote_backup_url", json!("s3:///bucket")),
    ];
    let mut with_secrets = config(&plain);
    for (option, id) in ids {
        with_secrets.insert(option.into(), json!(id));
    }
    let tools = u.hook("config-changed", &with_secrets);
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    let s = u.settings().unwrap();
    assert_eq!(s["encryption"]["passphrase"], PASS);
    assert_eq!(
        s["credentials"],
        json!({"remote_password": "pw-from-Sekr1t", "aws_access_key_id": "AKIA-from-secret",
               "aws_secret_access_key": "aws-key-from-Sekr1t",
               "azure_connection_string": "AccountKey=az-from-Sekr1t"})
    );
    // The secret options unset: the plain options (drop-in users) are used again.
    let mut plain_only = config(&plain);
    plain_only.remove("encryption_passphrase_secret");
    u.hook("config-changed", &plain_only);
    let s = u.settings().unwrap();
    assert_eq!(s["encryption"]["passphrase"], PLAIN_PASS);
    assert_eq!(s["credentials"]["aws_secret_access_key"], "aws-plain");
    assert_eq!(s["credentials"]["remote_password"], "pw-plain");
    // A secret alone satisfies a backend's need (s3 without the plain keys).
    let mut only_secret = config(&[
        ("backend", json!("s3")),
        ("remote_backup_url", json!("s3:///bucket")),
    ]);
    only_secret.insert(ids[0].0.into(), json!(ids[0].1));
    let tools = u.hook("config-changed", &only_secret);
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    assert_eq!(
        u.settings().unwrap()["credentials"]["aws_access_key_id"],
        "AKIA-from-secret"
    );
}

#[test]
fn no_secret_content_reaches_a_tool_call_log_status_or_action_output() {
    let mut u = Unit::new();
    let key_id = "secret:ssh0000000000000000000";
    let aws_id = "secret:aws0000000000000000000";
    let pem = ssh_key_pem("Sekr1t-key-body");
    u.secrets
        .insert(key_id.into(), content(&[("private-key", &pem)]));
    u.secrets.insert(
        aws_id.into(),
        content(&[
            ("access-key-id", "AKIA-Sekr1t-id"),
            ("secret-access-key", "aws-Sekr1t-key"),
        ]),
    );
    let target = tempfile::tempdir().unwrap();
    let cfg = config(&[
        (
            "remote_backup_url",
            json!(format!("file://{}", target.path().display())),
        ),
        ("private_ssh_key_secret", json!(key_id)),
        ("aws_keys_secret", json!(aws_id)),
    ]);
    let mut calls = Vec::new();
    let mut record = |tools: FakeHookTools| {
        let r = tools.record();
        calls.extend(r.calls);
        calls.extend(r.action_logs);
        calls.extend(
            r.action_results
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        calls.extend(r.action_failed);
    };
    record(u.hook("config-changed", &cfg));
    fs::write(u.paths().resolve("/tmp/duplicity/a.txt"), b"hello").unwrap();
    let backup = u.dispatch("actions/backup", &cfg, Some(Map::new()));
    assert_eq!(backup.record().action_failed, None);
    assert_eq!(backup.record().action_results["type"], "full");
    record(backup);
    record(u.dispatch("actions/collection-status", &cfg, Some(Map::new())));
    u.secrets
        .insert(PASS_ID.into(), content(&[("passphrase", "second-Sekr1t")]));
    record(u.hook("secret-changed", &cfg));
    // The backups now need the other passphrase: a failing action, still nothing leaks.
    record(u.dispatch("actions/verify", &cfg, Some(Map::new())));
    u.denied.push(aws_id.into());
    record(u.hook("update-status", &cfg));
    record(u.hook("stop", &cfg));
    let key_line = pem.lines().nth(1).unwrap().to_string();
    for call in &calls {
        for v in [
            PASS,
            "second-Sekr1t",
            "AKIA-Sekr1t-id",
            "aws-Sekr1t-key",
            key_line.as_str(),
        ] {
            assert!(!call.contains(v), "{v:?} leaked into {call:?}");
        }
    }
    assert!(calls.iter().any(|c| c.starts_with("status-set active")));
    assert!(calls.iter().any(|c| c.starts_with("status-set blocked")));
    assert!(calls.len() > 20, "{}", calls.len());
}

#[test]
fn a_rotated_passphrase_fails_the_next_incremental_saying_to_start_a_new_chain() {
    let mut u = Unit::new();
    let target = tempfile::tempdir().unwrap();
    let cfg = config(&[(
        "remote_backup_url",
        json!(format!("file://{}", target.path().display())),
    )]);
    u.hook("config-changed", &cfg);
    fs::write(u.paths().resolve("/tmp/duplicity/a.txt"), b"hello").unwrap();
    let backup = |u: &Unit, params: Value| {
        let tools = u.dispatch(
            "actions/backup",
            &cfg,
            Some(params.as_object().unwrap().clone()),
        );
        tools.record()
    };
    assert_eq!(backup(&u, json!({})).action_results["type"], "full");
    u.secrets
        .insert(PASS_ID.into(), content(&[("passphrase", "rotated-Sekr1t")]));
    u.hook("secret-changed", &cfg);
    assert_eq!(u.passphrase(), "rotated-Sekr1t");
    let failed = backup(&u, json!({})).action_failed.unwrap();
    assert!(
        failed.contains("wrong passphrase") && failed.contains("backup full=true"),
        "{failed}"
    );
    assert_eq!(
        backup(&u, json!({"full": true})).action_results["type"],
        "full"
    );
    fs::write(u.paths().resolve("/tmp/duplicity/b.txt"), b"more").unwrap();
    let r = backup(&u, json!({}));
    assert_eq!(r.action_failed, None);
    assert_eq!(r.action_results["type"], "incremental");
}

#[test]
fn additional_targets_secret_ungranted_or_misfit_blocks_and_granted_reaches_the_settings_only() {
    const TARGETS_ID: &str = "secret:tgt0000000000000000000";
    let mut u = Unit::new();
    let pem = ssh_key_pem("replica-key-body");
    u.secrets.insert(
        TARGETS_ID.into(),
        content(&[
            ("target1-password", "replica-Sekr1t-pw"),
            ("target2-access-key-id", "AKIA-replica"),
            ("target2-secret-access-key", "replica-Sekr1t-key"),
            ("target3-ssh-key", &pem),
        ]),
    );
    u.denied.push(TARGETS_ID.into());
    let cfg = config(&[
        (
            "additional_backup_urls",
            json!("ftp://bk@host2/srv s3://bucket/x sftp://bk@host3/srv"),
        ),
        ("additional_targets_secret", json!(TARGETS_ID)),
    ]);
    let tools = u.hook("config-changed", &cfg);
    let (st, msg) = status(&tools);
    assert_eq!(st, WorkloadStatus::Blocked);
    assert!(
        msg.starts_with(&format!(
            "additional_targets_secret {TARGETS_ID} is not granted to duplicity: run `juju grant-secret {TARGETS_ID} duplicity`"
        )),
        "{msg}"
    );
    assert!(u.settings().is_none(), "nothing written while blocked");

    u.denied.clear();
    let tools = u.hook("update-status", &cfg);
    assert_eq!(
        status(&tools).0,
        WorkloadStatus::Active,
        "{:?}",
        status(&tools)
    );
    let settings = u.settings().unwrap();
    let own = &settings["replica_credentials"];
    assert_eq!(own[0]["password"], "replica-Sekr1t-pw", "{own}");
    assert_eq!(own[1]["aws_access_key_id"], "AKIA-replica", "{own}");
    assert_eq!(
        own[1]["aws_secret_access_key"], "replica-Sekr1t-key",
        "{own}"
    );
    assert_eq!(own[2]["ssh_key"], pem.as_str(), "{own}");
    assert!(own[0].get("ssh_key").is_none(), "{own}");
    // The main target's key file is not the replica's.
    assert_eq!(u.ssh_key_file(), None);
    for call in tools.record().calls {
        for v in [
            "replica-Sekr1t-pw",
            "replica-Sekr1t-key",
            "replica-key-body",
        ] {
            assert!(!call.contains(v), "{v:?} leaked into {call:?}");
        }
    }

    // An SSH key for the s3 target: blocked, naming the key and the fix.
    u.secrets.insert(
        TARGETS_ID.into(),
        content(&[("target2-ssh-key", &pem), ("target1-password", "pw")]),
    );
    let tools = u.hook("secret-changed", &cfg);
    let (st, msg) = status(&tools);
    assert_eq!(st, WorkloadStatus::Blocked);
    assert!(
        msg.starts_with(&format!("additional_targets_secret {TARGETS_ID}: target2-ssh-key does not fit target 2 (s3://bucket/x)")),
        "{msg}"
    );
}
