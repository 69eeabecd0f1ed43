//! State-transition tests of the charm over the fake hook tools and a fake system, under a temp root:
//! config in → status, logs and files out (ops-scenario style).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::paths::{Paths, UnitFiles};
use super::system::FakeSystem;
use super::{run, VERSION};
use crate::juju::fake::FakeHookTools;
use crate::juju::{JujuContext, LogLevel, WorkloadStatus};

const UNIT: &str = "duplicity/0";
const PASS: &str = "pass-Sekr1t-horse";

/// An unencrypted OpenSSH private key file (its content is not a real key; the charm only checks the form).
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

fn gpg_public_key() -> String {
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;
    let (cert, _) = CertBuilder::general_purpose(Some("backup@example"))
        .generate()
        .unwrap();
    let bytes = cert.armored().to_vec().unwrap();
    String::from_utf8(bytes).unwrap()
}

/// A valid config: file backend, passphrase.
fn valid() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("backend".into(), json!("file"));
    m.insert("remote_backup_url".into(), json!("file:///srv/backups"));
    m.insert("encryption_passphrase".into(), json!(PASS));
    m
}

fn with(mut m: Map<String, Value>, pairs: &[(&str, Value)]) -> Map<String, Value> {
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    m
}

/// A unit's machine: a temp root, fake systemd, and the hooks run against it.
struct Machine {
    root: tempfile::TempDir,
    sys: FakeSystem,
}

impl Machine {
    fn new() -> Self {
        Machine {
            root: tempfile::tempdir().unwrap(),
            sys: FakeSystem {
                commands: vec!["ssh".into(), "rsync".into()],
                ..Default::default()
            },
        }
    }

    fn paths(&self) -> Paths {
        Paths::with_root(Some(self.root.path().to_path_buf()))
    }

    fn p(&self, abs: &str) -> PathBuf {
        self.paths().resolve(abs)
    }

    fn files(&self) -> UnitFiles {
        UnitFiles::new("duplicity-0")
    }

    /// Runs one dispatch with this config and returns the fake Juju afterwards.
    fn run(&self, dispatch: &str, config: Map<String, Value>) -> FakeHookTools {
        let tools = self.run_result(dispatch, config, None);
        tools.0.expect("hook succeeds");
        tools.1
    }

    fn run_result(
        &self,
        dispatch: &str,
        config: Map<String, Value>,
        action: Option<Map<String, Value>>,
    ) -> (anyhow::Result<()>, FakeHookTools) {
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
        let mut tools = FakeHookTools::new(config);
        tools.action_params = action;
        let r = run(&ctx, &tools, &self.sys, &self.paths());
        (r, tools)
    }

    fn sys_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.sys.calls.borrow_mut())
    }
}

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn blocked(tools: &FakeHookTools) -> String {
    match tools.status() {
        Some((WorkloadStatus::Blocked, m)) => m,
        other => panic!("expected blocked, got {other:?}"),
    }
}

#[test]
fn every_blocked_message_names_the_option_and_says_what_to_do() {
    let kh = || json!(known_host("backup.example"));
    let cases: Vec<(&str, Map<String, Value>, &str, &str)> = vec![
        (
            "backend empty",
            with(valid(), &[("backend", json!(""))]),
            "backend",
            "set it to one of s3, scp, sftp, ftp, rsync, file, azure",
        ),
        (
            "backend unknown",
            with(valid(), &[("backend", json!("tape"))]),
            "backend \"tape\"",
            "set it to one of",
        ),
        (
            "url empty",
            with(valid(), &[("remote_backup_url", json!(""))]),
            "remote_backup_url",
            "set it to the backup destination",
        ),
        (
            "s3 without keys",
            with(
                valid(),
                &[
                    ("backend", json!("s3")),
                    ("aws_access_key_id", json!("AKIA1")),
                ],
            ),
            "aws_secret_access_key",
            "set both",
        ),
        (
            "azure without string",
            with(valid(), &[("backend", json!("azure"))]),
            "azure_connection_string",
            "set it",
        ),
        (
            "sftp without known_host_key",
            with(
                valid(),
                &[("backend", json!("sftp")), ("remote_password", json!("pw"))],
            ),
            "known_host_key",
            "ssh-keyscan",
        ),
        (
            "scp without password or key",
            with(
                valid(),
                &[("backend", json!("scp")), ("known_host_key", kh())],
            ),
            "remote_password or private_ssh_key",
            "set one of them",
        ),
        (
            "rsync without key",
            with(
                valid(),
                &[
                    ("backend", json!("rsync")),
                    ("known_host_key", kh()),
                    ("remote_password", json!("pw")),
                ],
            ),
            "private_ssh_key",
            "password login is not supported",
        ),
        (
            "no encryption",
            with(valid(), &[("encryption_passphrase", json!(""))]),
            "encryption_passphrase or gpg_public_key",
            "disable_encryption=true",
        ),
        (
            "key not base64",
            with(valid(), &[("private_ssh_key", json!("%%%"))]),
            "private_ssh_key is not valid base64",
            "base64 -w0",
        ),
        (
            "key not private",
            with(
                valid(),
                &[(
                    "private_ssh_key",
                    json!(STANDARD.encode("ssh-ed25519 AAAA me@x")),
                )],
            ),
            "private_ssh_key is a public key",
            "not the .pub",
        ),
        (
            "key not a key",
            with(
                valid(),
                &[("private_ssh_key", json!(STANDARD.encode("hello")))],
            ),
            "private_ssh_key does not decode to a private key",
            "base64-encode the private key file",
        ),
        (
            "known_host_key malformed",
            with(valid(), &[("known_host_key", json!("just-a-host"))]),
            "known_host_key is not a known_hosts line",
            "ssh-keyscan",
        ),
        (
            "gpg not a key",
            with(valid(), &[("gpg_public_key", json!("hello"))]),
            "gpg_public_key is not an ASCII-armored OpenPGP public key",
            "gpg --armor --export",
        ),
        (
            "gpg key id",
            with(valid(), &[("gpg_public_key", json!("0x1234ABCD"))]),
            "gpg_public_key is a key ID",
            "gpg --armor --export",
        ),
        (
            "aux relative",
            with(valid(), &[("aux_backup_directory", json!("data"))]),
            "aux_backup_directory",
            "absolute path",
        ),
        (
            "backup_frequency",
            with(valid(), &[("backup_frequency", json!("fortnightly"))]),
            "backup_frequency \"fortnightly\"",
            "5-field cron expression",
        ),
        (
            "retention_period",
            with(valid(), &[("retention_period", json!("30"))]),
            "retention_period \"30\"",
            "<n>d or <n>h",
        ),
        (
            "deletion_frequency",
            with(
                valid(),
                &[
                    ("retention_period", json!("7d")),
                    ("deletion_frequency", json!("weekly")),
                ],
            ),
            "deletion_frequency \"weekly\"",
            "hourly, daily or a 5-field cron",
        ),
    ];
    for (name, config, names, todo) in cases {
        let m = Machine::new();
        let tools = m.run("hooks/config-changed", config);
        let msg = blocked(&tools);
        assert!(msg.contains(names), "{name}: {msg:?} should name {names:?}");
        assert!(msg.contains(todo), "{name}: {msg:?} should say {todo:?}");
        assert!(
            !msg.contains("more in juju debug-log"),
            "{name}: one problem only: {msg}"
        );
        assert!(
            !m.p("/var/lib/duplicity-charm/duplicity-0/settings.json")
                .exists(),
            "{name}: no settings while blocked"
        );
    }
}

#[test]
fn several_problems_show_the_first_and_log_them_all() {
    let m = Machine::new();
    let tools = m.run("hooks/install", Map::new());
    let msg = blocked(&tools);
    assert!(msg.starts_with("backend is not set"), "{msg}");
    assert!(msg.ends_with("(+2 more in juju debug-log)"), "{msg}");
    let warnings: Vec<_> = tools
        .record()
        .logs
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warning)
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[1].1.contains("remote_backup_url"));
    assert!(warnings[2].1.contains("encryption_passphrase"));
}

#[test]
fn deletion_frequency_is_not_checked_while_retention_is_manual() {
    let m = Machine::new();
    let tools = m.run(
        "hooks/config-changed",
        with(valid(), &[("deletion_frequency", json!("weekly"))]),
    );
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
}

#[test]
fn a_valid_config_is_active_with_backend_and_schedule_and_sets_the_version() {
    let m = Machine::new();
    let cfg = with(
        valid(),
        &[
            ("backup_frequency", json!("daily")),
            ("retention_period", json!("30d")),
        ],
    );
    let tools = m.run("hooks/config-changed", cfg);
    let (status, msg) = tools.status().unwrap();
    assert_eq!(status, WorkloadStatus::Active);
    // Then when the next backup is due (midnight, local time: within a day).
    let (ready, next) = msg.split_once("; next backup in ").unwrap();
    assert_eq!(
        ready,
        "Ready: file, backups daily, keep 30d (checked daily); no backup yet"
    );
    assert!(
        next.ends_with(['s', 'm', 'h']) && next[..next.len() - 1].parse::<u32>().is_ok(),
        "{msg}"
    );
    assert_eq!(tools.record().app_version.as_deref(), Some(VERSION));
}

#[test]
fn the_ssh_key_is_written_0600_in_a_0700_dir_idempotently_and_removed_when_unset() {
    let m = Machine::new();
    let pem = ssh_key_pem("one");
    let cfg = with(
        valid(),
        &[("private_ssh_key", json!(STANDARD.encode(&pem)))],
    );
    m.run("hooks/config-changed", cfg.clone());
    let key = m.p("/root/.ssh/duplicity_id_rsa");
    assert_eq!(fs::read_to_string(&key).unwrap(), pem);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&m.p("/root/.ssh")), 0o700);
    // Idempotent: the second run changes nothing and logs no change.
    let tools = m.run("hooks/update-status", cfg);
    assert!(
        tools
            .record()
            .logs
            .iter()
            .all(|(l, _)| *l != LogLevel::Info),
        "{:?}",
        tools.record().logs
    );
    // A changed key replaces the file.
    let pem2 = ssh_key_pem("two");
    m.run(
        "hooks/config-changed",
        with(
            valid(),
            &[("private_ssh_key", json!(STANDARD.encode(&pem2)))],
        ),
    );
    assert_eq!(fs::read_to_string(&key).unwrap(), pem2);
    // An invalid key keeps the last good file (the unit is blocked); unset removes it.
    m.run(
        "hooks/config-changed",
        with(valid(), &[("private_ssh_key", json!("%%%"))]),
    );
    assert!(key.exists());
    m.run("hooks/config-changed", valid());
    assert!(!key.exists());
}

#[test]
fn the_known_hosts_line_is_added_once_replaced_on_change_and_removed_without_touching_other_lines()
{
    let m = Machine::new();
    let kh = m.p("/root/.ssh/known_hosts");
    fs::create_dir_all(kh.parent().unwrap()).unwrap();
    let other = known_host("other.example");
    fs::write(&kh, format!("{other}\n# a comment\n")).unwrap();
    let a = known_host("a.example");
    let b = known_host("b.example");
    let cfg = |line: &str| with(valid(), &[("known_host_key", json!(line))]);
    m.run("hooks/config-changed", cfg(&a));
    m.run("hooks/update-status", cfg(&a));
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{other}\n# a comment\n{a}\n")
    );
    m.run("hooks/config-changed", cfg(&b));
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{other}\n# a comment\n{b}\n")
    );
    m.run("hooks/config-changed", valid());
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{other}\n# a comment\n")
    );
    // A line that was there before the charm is never removed by it.
    m.run("hooks/config-changed", cfg(&other));
    m.run("hooks/config-changed", valid());
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{other}\n# a comment\n")
    );
}

#[test]
fn the_settings_file_holds_the_engine_settings_and_secrets_root_only() {
    let m = Machine::new();
    let cfg = with(
        valid(),
        &[
            ("backend", json!("sftp")),
            ("remote_backup_url", json!("sftp://backup.example:2222/srv")),
            ("remote_user", json!("bob")),
            ("remote_password", json!("pw-Sekr1t")),
            ("known_host_key", json!(known_host("backup.example"))),
            ("backup_frequency", json!("weekly")),
            ("retention_period", json!("36h")),
            ("deletion_frequency", json!("hourly")),
            ("aws_access_key_id", json!("AKIA-unused")),
        ],
    );
    m.run("hooks/config-changed", cfg);
    let f = m.files();
    let path = m.paths().resolve(&f.settings);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&m.paths().resolve(&f.state_dir)), 0o711);
    let s: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(s["format"], 2);
    assert_eq!(s["unit"], UNIT);
    assert_eq!(s["url"], "sftp://bob@backup.example:2222/srv/duplicity-0");
    assert_eq!(s["source"], "/tmp/duplicity");
    assert_eq!(
        s["encryption"],
        json!({"mode": "passphrase", "passphrase": PASS})
    );
    assert_eq!(s["backup_schedule"], "0 0 * * 0");
    assert_eq!(s["retention"], "36h");
    assert_eq!(s["deletion_schedule"], "40 * * * *");
    assert_eq!(s["ssh_key_file"], Value::Null);
    assert_eq!(s["known_hosts_file"], "/root/.ssh/known_hosts");
    assert_eq!(
        s["credentials"],
        json!({"remote_password": "pw-Sekr1t", "aws_access_key_id": "AKIA-unused",
               "aws_secret_access_key": null, "azure_connection_string": null})
    );
    let loaded = super::settings::Settings::load(&path).unwrap();
    assert_eq!(loaded.url, s["url"]);
    assert!(!format!("{loaded:?}").contains(PASS), "Debug hides secrets");
}

#[test]
fn the_gpg_public_key_goes_beside_the_settings_and_leaves_with_it() {
    let m = Machine::new();
    let key = gpg_public_key();
    m.run(
        "hooks/config-changed",
        with(valid(), &[("gpg_public_key", json!(key))]),
    );
    let f = m.files();
    let key_path = m.paths().resolve(&f.gpg_public_key);
    assert_eq!(fs::read_to_string(&key_path).unwrap().trim(), key.trim());
    let s: Value =
        serde_json::from_slice(&fs::read(m.paths().resolve(&f.settings)).unwrap()).unwrap();
    assert_eq!(s["encryption"]["mode"], "public-key");
    assert_eq!(
        s["encryption"]["key_file"],
        "/var/lib/duplicity-charm/duplicity-0/gpg_public_key.asc"
    );
    assert_eq!(s["encryption"]["fingerprint"].as_str().unwrap().len(), 40);
    m.run("hooks/config-changed", valid());
    assert!(!key_path.exists());
}

#[test]
fn the_aux_directory_is_created_and_old_cron_files_removed() {
    let m = Machine::new();
    let cron = m.p("/etc/cron.d/periodic_backup");
    fs::create_dir_all(cron.parent().unwrap()).unwrap();
    fs::write(&cron, "@daily root juju-run ...\n").unwrap();
    fs::write(
        m.p("/etc/cron.d/periodic_deletion"),
        "0 23 * * * root ...\n",
    )
    .unwrap();
    fs::write(m.p("/etc/cron.d/other"), "keep me\n").unwrap();
    // Even a blocked unit drops the Python charm's crons: they would run a program that is gone.
    m.run(
        "hooks/upgrade-charm",
        with(valid(), &[("backend", json!(""))]),
    );
    assert!(!cron.exists() && !m.p("/etc/cron.d/periodic_deletion").exists());
    assert!(m.p("/etc/cron.d/other").exists());
    assert!(m.p("/tmp/duplicity").is_dir());
    m.run(
        "hooks/config-changed",
        with(valid(), &[("aux_backup_directory", json!("/srv/data/x"))]),
    );
    assert!(m.p("/srv/data/x").is_dir());
}

#[test]
fn the_scheduler_unit_is_written_and_enabled_only_when_valid_and_disabled_when_blocked() {
    let m = Machine::new();
    let f = m.files();
    let unit = m.paths().resolve(&f.unit_file);
    m.run("hooks/install", Map::new());
    assert!(!unit.exists());
    assert!(
        m.sys_calls().is_empty(),
        "no systemctl while blocked and never enabled"
    );
    m.run("hooks/config-changed", valid());
    let content = fs::read_to_string(&unit).unwrap();
    assert!(content.contains("ExecStart=/var/lib/juju/agents/unit-duplicity-0/charm/bin/duplicity-charm scheduler --settings /var/lib/duplicity-charm/duplicity-0/settings.json"), "{content}");
    assert_eq!(mode(&unit), 0o644);
    let svc = "duplicity-charm-duplicity-0.service";
    assert_eq!(
        m.sys_calls(),
        vec![
            "systemctl daemon-reload".to_string(),
            format!("systemctl is-enabled --quiet {svc}"),
            format!("systemctl enable --now {svc}"),
        ]
    );
    m.run("hooks/update-status", valid());
    assert_eq!(
        m.sys_calls(),
        vec![
            format!("systemctl is-enabled --quiet {svc}"),
            format!("systemctl is-active --quiet {svc}")
        ]
    );
    // Stopped behind our back: started again.
    m.sys.active.borrow_mut().clear();
    m.run("hooks/update-status", valid());
    assert_eq!(
        m.sys_calls().last().unwrap(),
        &format!("systemctl start {svc}")
    );
    // A changed unit file (the charm moved) restarts it.
    fs::write(&unit, "old").unwrap();
    m.run("hooks/config-changed", valid());
    assert_eq!(
        m.sys_calls().last().unwrap(),
        &format!("systemctl restart {svc}")
    );
    // So does an upgrade with the same unit file: the running scheduler is still the old binary, which
    // may not read the settings format the new one writes.
    m.run("hooks/upgrade-charm", valid());
    assert_eq!(
        m.sys_calls().last().unwrap(),
        &format!("systemctl restart {svc}")
    );
    m.run("hooks/config-changed", valid());
    assert!(!m.sys_calls().iter().any(|c| c.contains("restart")));
    m.run(
        "hooks/config-changed",
        with(valid(), &[("backup_frequency", json!("bad"))]),
    );
    assert_eq!(
        m.sys_calls(),
        vec![
            format!("systemctl is-enabled --quiet {svc}"),
            format!("systemctl disable --now {svc}")
        ]
    );
    assert!(
        unit.exists(),
        "kept: the next valid config enables it again"
    );
    m.run("hooks/config-changed", valid());
    assert_eq!(
        m.sys_calls().last().unwrap(),
        &format!("systemctl enable --now {svc}")
    );
}

#[test]
fn rsync_and_ssh_backends_install_what_is_missing() {
    let mut m = Machine::new();
    m.sys.commands.clear();
    let pem = STANDARD.encode(ssh_key_pem("k"));
    let cfg = with(
        valid(),
        &[
            ("backend", json!("rsync")),
            ("remote_backup_url", json!("backup.example::/mod")),
            ("known_host_key", json!(known_host("backup.example"))),
            ("private_ssh_key", json!(pem)),
        ],
    );
    m.run("hooks/install", cfg);
    assert_eq!(m.sys_calls()[0], "apt-get install rsync openssh-client");
    m.sys.commands = vec!["ssh".into(), "rsync".into()];
    m.run("hooks/update-status", valid());
    assert!(!m.sys_calls().iter().any(|c| c.starts_with("apt-get")));
}

#[test]
fn stop_and_remove_undo_everything_but_backups_data_and_foreign_lines() {
    let m = Machine::new();
    let kh = m.p("/root/.ssh/known_hosts");
    fs::create_dir_all(kh.parent().unwrap()).unwrap();
    let other = known_host("other.example");
    fs::write(&kh, format!("{other}\n")).unwrap();
    let backups = m.p("/srv/backups/duplicity-0");
    fs::create_dir_all(&backups).unwrap();
    fs::write(
        backups.join("duplicity-full.20240101T000000Z.vol1.difftar.gpg"),
        "x",
    )
    .unwrap();
    let cfg = with(
        valid(),
        &[
            ("known_host_key", json!(known_host("a.example"))),
            ("private_ssh_key", json!(STANDARD.encode(ssh_key_pem("k")))),
        ],
    );
    m.run("hooks/config-changed", cfg.clone());
    m.sys_calls();
    let tools = m.run("hooks/stop", cfg.clone());
    let f = m.files();
    assert!(!m.paths().resolve(&f.unit_file).exists());
    assert!(!m.paths().resolve(&f.state_dir).exists());
    assert!(!m.p("/root/.ssh/duplicity_id_rsa").exists());
    assert_eq!(fs::read_to_string(&kh).unwrap(), format!("{other}\n"));
    assert!(
        backups.read_dir().unwrap().next().is_some(),
        "backups untouched"
    );
    assert!(
        m.p("/tmp/duplicity").is_dir(),
        "the backed-up directory stays"
    );
    let svc = "duplicity-charm-duplicity-0.service";
    assert_eq!(
        m.sys_calls(),
        vec![
            format!("systemctl is-enabled --quiet {svc}"),
            format!("systemctl disable --now {svc}"),
            "systemctl daemon-reload".to_string(),
        ]
    );
    assert!(
        tools.status().is_none(),
        "Juju shows its own status while removing"
    );
    // remove after stop: nothing left to do.
    let tools = m.run("hooks/remove", cfg);
    assert!(m.sys_calls().is_empty());
    assert!(tools.record().logs.is_empty());
}

/// A valid config backing up to a file:// target in a temp dir.
fn valid_to(target: &std::path::Path) -> Map<String, Value> {
    with(
        valid(),
        &[(
            "remote_backup_url",
            json!(format!("file://{}", target.display())),
        )],
    )
}

#[test]
fn actions_refuse_a_blocked_config_bad_params_and_unknown_names() {
    let m = Machine::new();
    for (name, _) in super::actions::SPECS {
        let (r, tools) = m.run_result(&format!("actions/{name}"), Map::new(), Some(Map::new()));
        r.unwrap();
        let failed = tools.record().action_failed.unwrap();
        let blocked = format!("the charm is blocked, so {name} cannot run: backend is not set");
        // Params are checked first: the three with required params say so.
        assert!(
            failed.starts_with(&blocked) || failed.contains("is required"),
            "{name}: {failed}"
        );
        assert!(tools.status().is_none(), "a refused action sets no status");
    }
    let bad = |action: &str, params: Value| {
        let (r, tools) = m.run_result(
            &format!("actions/{action}"),
            valid(),
            Some(params.as_object().unwrap().clone()),
        );
        r.unwrap();
        tools.record().action_failed.unwrap()
    };
    assert_eq!(
        bad("remove-all-but-n-full", json!({"count": 0})),
        "invalid parameters: count must be an integer of at least 1, not 0 (see `juju show-action duplicity remove-all-but-n-full`)"
    );
    assert!(bad("backup", json!({"full": "yes"})).contains("full must be true or false"));
    assert!(bad("backup", json!({"fulll": true}))
        .contains("backup has no parameter \"fulll\" (it takes: full)"));
    assert!(bad("remove-older-than", json!({})).contains("time is required"));
    assert!(bad("collection-status", json!({"x": 1})).contains("(it takes: none)"));
    let (_, tools) = m.run_result("actions/frobnicate", valid(), Some(Map::new()));
    assert!(tools
        .record()
        .action_failed
        .unwrap()
        .starts_with("unknown action \"frobnicate\": this charm's actions are backup, do-backup"));
    // Valid config, but no hook has written the settings yet.
    let failed = bad("backup", json!({}));
    assert!(
        failed.contains("settings file") && failed.contains("not written yet"),
        "{failed}"
    );
}

#[test]
fn a_backup_action_records_its_outcome_and_the_status_shows_it() {
    let m = Machine::new();
    let target = tempfile::tempdir().unwrap();
    let cfg = valid_to(target.path());
    m.run("hooks/config-changed", cfg.clone());
    fs::write(m.p("/tmp/duplicity/a.txt"), b"hello").unwrap();
    let (r, tools) = m.run_result("actions/backup", cfg.clone(), Some(Map::new()));
    r.unwrap();
    let rec = tools.record();
    assert_eq!(rec.action_failed, None, "{:?}", rec.action_logs);
    assert_eq!(rec.action_results["type"], "full");
    // duplicity's SourceFileSize: the file's 5 bytes and the directory's own st_size.
    let dir_size = fs::symlink_metadata(m.p("/tmp/duplicity")).unwrap().len();
    assert_eq!(
        rec.action_results["statistics.source-bytes"],
        (5 + dir_size).to_string()
    );
    assert!(
        rec.action_logs[0].starts_with(&format!(
            "backing up /tmp/duplicity ({}) to file://",
            super::state::size(5 + dir_size)
        )),
        "{:?}",
        rec.action_logs
    );
    assert!(rec
        .action_logs
        .iter()
        .any(|l| l.starts_with("volume 1 stored")));
    let (status, msg) = tools.status().unwrap();
    assert_eq!(status, WorkloadStatus::Active);
    assert!(msg.contains("last backup"), "{msg}");
    let state = super::state::State::load(&m.paths().resolve(&m.files().state_file)).unwrap();
    let last = &state.last["backup"];
    assert!(last.ok && last.trigger == super::state::Trigger::Action);
    assert_eq!(mode(&m.paths().resolve(&m.files().state_file)), 0o644);

    // The next one is incremental; a failure is recorded and shown as a warning.
    let (_, tools) = m.run_result("actions/do-backup", cfg.clone(), Some(Map::new()));
    assert_eq!(tools.record().action_results["type"], "incremental");
    fs::remove_dir_all(m.p("/tmp/duplicity")).unwrap();
    let (_, tools) = m.run_result("actions/backup", cfg.clone(), Some(Map::new()));
    let failed = tools.record().action_failed.unwrap();
    assert!(
        failed.starts_with("backup failed: backup to file://"),
        "{failed}"
    );
    assert!(
        failed.contains("cannot read the source directory"),
        "{failed}"
    );
    assert!(failed.contains("then run backup again"), "{failed}");
    let (_, msg) = tools.status().unwrap();
    assert!(msg.starts_with("WARNING: last backup failed "), "{msg}");
    assert!(
        msg.contains("cannot read the source directory") && msg.contains(" | Ready: file"),
        "{msg}"
    );
}

#[test]
fn the_nrpe_check_is_registered_while_related_and_removed_after() {
    let m = Machine::new();
    let export = m.p("/var/lib/nagios/export");
    fs::create_dir_all(&export).unwrap();
    let cfg = with(
        valid(),
        &[
            ("backup_frequency", json!("daily")),
            ("nagios_context", json!("prod")),
        ],
    );
    let ctx_vars = |dispatch: &str| -> BTreeMap<String, String> {
        [
            ("JUJU_DISPATCH_PATH", dispatch),
            ("JUJU_UNIT_NAME", UNIT),
            ("JUJU_CHARM_DIR", "/charm"),
            ("JUJU_RELATION_ID", "nrpe-external-master:5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let mut tools = FakeHookTools::new(cfg.clone());
    tools
        .relations
        .insert("nrpe-external-master:5".into(), vec!["nrpe/0".into()]);
    let ctx =
        JujuContext::from_vars(ctx_vars("hooks/nrpe-external-master-relation-joined")).unwrap();
    run(&ctx, &tools, &m.sys, &m.paths()).unwrap();
    let cfg_file = m.p("/etc/nagios/nrpe.d/check_duplicity-duplicity-0.cfg");
    let text = fs::read_to_string(&cfg_file).unwrap();
    assert!(text.contains("command[check_duplicity-duplicity-0]=/charm/bin/duplicity-charm check-nrpe --state /var/lib/duplicity-charm/duplicity-0/state.json --backup-schedule '0 0 * * *' --deletion-schedule 'manual'"), "{text}");
    let service = fs::read_to_string(
        export.join("service__prod-duplicity-0_check_duplicity-duplicity-0.cfg"),
    )
    .unwrap();
    assert!(
        service.contains("host_name                       prod-duplicity-0"),
        "{service}"
    );
    assert!(
        service.contains("check_command                   check_nrpe!check_duplicity-duplicity-0")
    );
    assert!(service.contains("servicegroups                   prod"));
    let monitors = &tools.record().relation_data["nrpe-external-master:5"]["monitors"];
    assert_eq!(
        monitors,
        "monitors:\n  remote:\n    nrpe:\n      duplicity-duplicity-0:\n        command: check_duplicity-duplicity-0\n"
    );
    // The relation goes: so do the files.
    let ctx =
        JujuContext::from_vars(ctx_vars("hooks/nrpe-external-master-relation-broken")).unwrap();
    run(&ctx, &tools, &m.sys, &m.paths()).unwrap();
    assert!(!cfg_file.exists());
    assert_eq!(fs::read_dir(&export).unwrap().count(), 0);
}

#[test]
fn an_io_failure_fails_the_hook_but_bad_config_does_not() {
    let m = Machine::new();
    // /srv is a file, so the aux directory cannot be created: worth Juju's retry.
    fs::write(m.p("/srv"), "").unwrap();
    let (r, _) = m.run_result(
        "hooks/config-changed",
        with(valid(), &[("aux_backup_directory", json!("/srv/data"))]),
        None,
    );
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("cannot create") && e.contains("srv/data"), "{e}");
    let (r, _) = m.run_result("hooks/config-changed", Map::new(), None);
    r.unwrap();
}

#[test]
fn a_failing_hook_tool_fails_the_hook() {
    let m = Machine::new();
    let ctx = JujuContext::from_vars(
        [
            ("JUJU_DISPATCH_PATH", "hooks/start"),
            ("JUJU_UNIT_NAME", UNIT),
            ("JUJU_CHARM_DIR", "/c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .unwrap();
    let mut tools = FakeHookTools::new(valid());
    tools.failing.push("status-set".into());
    let e = run(&ctx, &tools, &m.sys, &m.paths()).unwrap_err();
    assert!(e.to_string().contains("status-set"), "{e}");
}

#[test]
fn no_secret_reaches_a_tool_call_log_or_status() {
    let m = Machine::new();
    let secrets = [
        ("aws_access_key_id", "AKIA-Sekr1t-id"),
        ("aws_secret_access_key", "aws-Sekr1t-key"),
        (
            "azure_connection_string",
            "DefaultEndpointsProtocol=https;AccountKey=az-Sekr1t",
        ),
        ("remote_password", "pw-Sekr1t"),
        ("encryption_passphrase", PASS),
        ("private_ssh_key", &STANDARD.encode(ssh_key_pem("Sekr1t"))),
    ];
    let mut cfg = with(
        valid(),
        &[
            ("backend", json!("s3")),
            ("remote_backup_url", json!("s3://bucket")),
        ],
    );
    for (k, v) in &secrets {
        cfg.insert(k.to_string(), json!(v));
    }
    // Valid, blocked, and teardown runs all keep the secrets out.
    let mut calls = Vec::new();
    for (hook, c) in [
        ("hooks/config-changed", cfg.clone()),
        (
            "hooks/config-changed",
            with(cfg.clone(), &[("retention_period", json!("x"))]),
        ),
        ("hooks/stop", cfg.clone()),
    ] {
        let tools = m.run(hook, c);
        calls.extend(tools.record().calls);
    }
    calls.extend(m.sys_calls());
    let decoded_key = ssh_key_pem("Sekr1t");
    for call in &calls {
        for (name, v) in &secrets {
            assert!(!call.contains(v), "{name} leaked into {call:?}");
        }
        assert!(
            !call.contains(decoded_key.lines().nth(1).unwrap()),
            "decoded key leaked into {call:?}"
        );
    }
    assert!(calls.iter().any(|c| c.starts_with("status-set active")));
}

#[test]
fn backup_options_are_validated_and_reach_the_settings_file() {
    let m = Machine::new();
    let bad =
        |pairs: &[(&str, Value)]| blocked(&m.run("hooks/config-changed", with(valid(), pairs)));
    let msg = bad(&[("exclude_patterns", json!("/tmp/duplicity/ok\n/etc/passwd"))]);
    assert!(
        msg.starts_with("exclude_patterns: the pattern \"/etc/passwd\" cannot match anything under aux_backup_directory /tmp/duplicity: patterns are full paths, so begin it with /tmp/duplicity/"),
        "{msg}"
    );
    let msg = bad(&[(
        "exclude_patterns",
        json!("- /tmp/duplicity/a\n+ /tmp/duplicity/b"),
    )]);
    assert!(
        msg.starts_with("exclude_patterns ends with a \"+ \" line"),
        "{msg}"
    );
    let msg = bad(&[("exclude_patterns", json!("/tmp/duplicity/[z-a]"))]);
    assert!(
        msg.contains("reversed") && msg.ends_with("fix or remove that line"),
        "{msg}"
    );
    let msg = bad(&[("backup_command_timeout", json!(0))]);
    assert!(
        msg.starts_with("backup_command_timeout 0 is invalid: use how many seconds"),
        "{msg}"
    );
    let msg = bad(&[("volume_size", json!(0))]);
    assert!(
        msg.starts_with("volume_size 0 is invalid: use the size of each backup volume in MiB"),
        "{msg}"
    );

    let tools = m.run(
        "hooks/config-changed",
        with(
            valid(),
            &[
                (
                    "exclude_patterns",
                    json!("+ /tmp/duplicity/cache/keep\n/tmp/duplicity/cache\n**/*.tmp"),
                ),
                ("pre_backup_command", json!("  pg_dump db > db.sql\n")),
                ("post_backup_command", json!("systemctl start app")),
                ("backup_command_timeout", json!(60)),
                ("volume_size", json!(25)),
            ],
        ),
    );
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let s: Value = serde_json::from_slice(
        &fs::read(m.p("/var/lib/duplicity-charm/duplicity-0/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        s["selection"],
        json!([{"include": "/tmp/duplicity/cache/keep"}, {"exclude": "/tmp/duplicity/cache"}, {"exclude": "**/*.tmp"}])
    );
    assert_eq!(
        s["backup_commands"],
        json!({"pre": "pg_dump db > db.sql", "post": "systemctl start app", "timeout_seconds": 60})
    );
    assert_eq!(s["volume_size_mib"], 25);
}

#[test]
fn the_python_charms_nrpe_check_goes_but_a_check_backups_of_another_charm_stays() {
    let m = Machine::new();
    let cfg = m.p("/etc/nagios/nrpe.d/check_backups.cfg");
    let export = m.p("/var/lib/nagios/export/service__juju-duplicity-0_check_backups.cfg");
    for p in [&cfg, &export] {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
    }
    fs::write(&cfg, "command[check_backups]=/opt/other/check_my_backups\n").unwrap();
    fs::write(&export, "define service {\n}\n").unwrap();
    m.run("hooks/upgrade-charm", valid());
    assert!(
        cfg.exists() && export.exists(),
        "another charm's check_backups stays"
    );
    fs::write(
        &cfg,
        "command[check_backups]=/usr/local/lib/nagios/plugins/check_backup_status.py\n",
    )
    .unwrap();
    m.run("hooks/upgrade-charm", valid());
    assert!(
        !cfg.exists() && !export.exists(),
        "the Python charm's check goes"
    );
}

#[test]
fn storage_options_are_validated_and_reach_the_settings_file() {
    let m = Machine::new();
    let bad =
        |pairs: &[(&str, Value)]| blocked(&m.run("hooks/config-changed", with(valid(), pairs)));
    for (pairs, start) in [
        (
            vec![
                ("s3_object_lock_mode", json!("strict")),
                ("s3_object_lock_retain", json!("30D")),
            ],
            "s3_object_lock_mode \"strict\" is invalid: use governance or compliance",
        ),
        (
            vec![("s3_object_lock_mode", json!("compliance"))],
            "s3_object_lock_mode needs s3_object_lock_retain",
        ),
        (
            vec![("s3_object_lock_retain", json!("30D"))],
            "s3_object_lock_retain needs s3_object_lock_mode",
        ),
        (
            vec![
                ("s3_object_lock_mode", json!("compliance")),
                ("s3_object_lock_retain", json!("soon")),
            ],
            "s3_object_lock_retain \"soon\" is invalid",
        ),
        (
            vec![("s3_storage_class", json!("cold"))],
            "s3_storage_class \"cold\" is invalid",
        ),
        (
            vec![("s3_server_side_encryption", json!("kms"))],
            "s3_server_side_encryption=kms needs s3_kms_key_id",
        ),
        (
            vec![("s3_server_side_encryption", json!("rot13"))],
            "s3_server_side_encryption \"rot13\" is invalid",
        ),
        (
            vec![("azure_blob_tier", json!("warm"))],
            "azure_blob_tier \"warm\" is invalid",
        ),
    ] {
        let msg = bad(&pairs);
        assert!(msg.starts_with(start), "{msg}");
    }
    let tools = m.run(
        "hooks/config-changed",
        with(
            valid(),
            &[
                ("s3_object_lock_mode", json!("governance")),
                ("s3_object_lock_retain", json!("30D")),
                ("s3_storage_class", json!("glacier_ir")),
                ("s3_server_side_encryption", json!("kms")),
                ("s3_kms_key_id", json!("alias/backups")),
                ("azure_blob_tier", json!("Cool")),
            ],
        ),
    );
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let s: Value = serde_json::from_slice(
        &fs::read(m.p("/var/lib/duplicity-charm/duplicity-0/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        s["storage"],
        json!({
            "s3_object_lock_mode": "governance",
            "s3_object_lock_retain": "30D",
            "s3_storage_class": "glacier_ir",
            "s3_server_side_encryption": "kms",
            "s3_kms_key_id": "alias/backups",
            "azure_blob_tier": "Cool",
        })
    );
    // A settings file from before these options reads as all off.
    let old: super::settings::StorageSettings = serde_json::from_value(json!({})).unwrap();
    assert_eq!(old, Default::default());
    let mut o = crate::backend::OpenOptions::new();
    serde_json::from_value::<super::settings::StorageSettings>(s["storage"].clone())
        .unwrap()
        .apply(&mut o)
        .unwrap();
    assert_eq!(
        o.s3.object_lock.map(|l| (l.mode, l.retain.as_secs())),
        Some((crate::backend::s3::LockMode::Governance, 30 * 86400))
    );
    assert_eq!(
        o.s3.storage_class,
        Some(crate::backend::s3::StorageClass::GlacierIr)
    );
    assert_eq!(o.azure.blob_tier.as_deref(), Some("Cool"));
}

#[test]
fn transfer_options_are_validated_and_reach_the_backend_options() {
    let m = Machine::new();
    let bad =
        |pairs: &[(&str, Value)]| blocked(&m.run("hooks/config-changed", with(valid(), pairs)));
    for (pairs, start) in [
        (
            vec![("s3_multipart_chunk_size", json!(4))],
            "s3_multipart_chunk_size 4 is invalid: use 5 to 5120",
        ),
        (
            vec![("s3_multipart_max_procs", json!(0))],
            "s3_multipart_max_procs 0 is invalid: use 1 to 64",
        ),
        (
            vec![("azure_max_connections", json!(65))],
            "azure_max_connections 65 is invalid: use 1 to 64",
        ),
        (
            vec![("azure_max_block_size", json!(-1))],
            "azure_max_block_size -1 is invalid",
        ),
        (
            vec![("s3_ca_certificate", json!("not a certificate"))],
            "s3_ca_certificate is not a PEM certificate",
        ),
    ] {
        let msg = bad(&pairs);
        assert!(msg.starts_with(start), "{msg}");
    }
    let settings = |m: &Machine| -> Value {
        serde_json::from_slice(
            &fs::read(m.p("/var/lib/duplicity-charm/duplicity-0/settings.json")).unwrap(),
        )
        .unwrap()
    };
    // The defaults write nothing: settings as before these options existed.
    let tools = m.run("hooks/config-changed", valid());
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let defaults = settings(&m)["storage"].clone();
    for key in [
        "s3_multipart_chunk_size",
        "s3_multipart_max_procs",
        "azure_max_block_size",
        "azure_max_connections",
        "s3_ca_certificate",
    ] {
        assert!(defaults.get(key).is_none(), "{key}: {defaults}");
    }
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let tools = m.run(
        "hooks/config-changed",
        with(
            valid(),
            &[
                ("s3_multipart_chunk_size", json!(8)),
                ("s3_multipart_max_procs", json!(3)),
                ("azure_max_block_size", json!(1 << 20)),
                ("azure_max_connections", json!(2)),
                ("s3_ca_certificate", json!(pem)),
            ],
        ),
    );
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let mut o = crate::backend::OpenOptions::new();
    serde_json::from_value::<super::settings::StorageSettings>(settings(&m)["storage"].clone())
        .unwrap()
        .apply(&mut o)
        .unwrap();
    assert_eq!(o.s3.multipart_chunk_size, Some(8 << 20));
    assert_eq!(o.s3.multipart_max_procs, Some(3));
    assert_eq!(o.azure.max_block_size, Some(1 << 20));
    assert_eq!(o.azure.max_connections, Some(2));
    assert_eq!(o.tls_extra_roots, vec![pem.trim().as_bytes().to_vec()]);
}
