//! The charm end to end: the built binary run through our `dispatch` the way Juju runs it (environment
//! replaced, `JUJU_DISPATCH_PATH` set, fake hook tools on `PATH` that record every call), against a fake
//! machine root.

use std::fs;

use base64::Engine;
use serde_json::json;

use super::juju_support::{known_host, mode, ssh_key_pem, FakeJuju};

const SVC: &str = "duplicity-charm-duplicity-0.service";
const SETTINGS: &str = "/var/lib/duplicity-charm/duplicity-0/settings.json";

fn ok(r: &super::juju_support::Run) {
    assert_eq!(
        r.code, 0,
        "dispatch failed: stdout {:?} stderr {:?}",
        r.stdout, r.stderr
    );
}

#[test]
fn charm_deploy_sequence_blocks_until_configured_then_goes_active() {
    let j = FakeJuju::new("deploy");
    // The order Juju runs a subordinate's first hooks in.
    for hook in [
        "install",
        "general-info-relation-created",
        "leader-elected",
        "config-changed",
        "start",
        "general-info-relation-joined",
        "general-info-relation-changed",
    ] {
        ok(&j.hook(hook));
        let (status, msg) = j.last_status();
        assert_eq!(status, "blocked", "{hook}");
        assert!(
            msg.starts_with(
                "backend is not set: set it to one of s3, scp, sftp, ftp, rsync, file, azure"
            ),
            "{hook}: {msg}"
        );
    }
    assert!(!j.root(SETTINGS).exists());
    assert!(j.enabled_units().is_empty());
    assert!(
        j.root("/tmp/duplicity").is_dir(),
        "the default aux_backup_directory is created"
    );

    j.set_config(&[
        ("backend", json!("file")),
        ("remote_backup_url", json!("file:///srv/backups")),
        ("encryption_passphrase", json!("p4ss")),
        ("backup_frequency", json!("daily")),
    ]);
    ok(&j.hook("config-changed"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active");
    assert!(
        msg.starts_with(
            "Ready: file, backups daily, retention manual; no backup yet; next backup in "
        ),
        "{msg}"
    );
    assert_eq!(j.version().as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(mode(&j.root(SETTINGS)), 0o600);
    let s: serde_json::Value =
        serde_json::from_slice(&fs::read(j.root(SETTINGS)).unwrap()).unwrap();
    assert_eq!(s["url"], "file:///srv/backups/duplicity-0");
    assert_eq!(s["backup_schedule"], "0 0 * * *");
    let unit = fs::read_to_string(j.root(&format!("/etc/systemd/system/{SVC}"))).unwrap();
    let exec = format!(
        "ExecStart={}/bin/duplicity-charm scheduler --settings {SETTINGS}",
        j.p("charm").display()
    );
    assert!(unit.contains(&exec), "{unit}");
    assert_eq!(j.enabled_units(), vec![SVC.to_string()]);

    // Every tool with --format was asked for JSON; status-set and juju-log end their flags with --.
    let calls = j.calls();
    for c in &calls {
        let tool = c.split(' ').next().unwrap();
        if [
            "config-get",
            "is-leader",
            "action-get",
            "relation-ids",
            "relation-list",
            "relation-get",
            "secret-get",
        ]
        .contains(&tool)
        {
            assert!(c.contains("--format=json"), "{c}");
        }
    }
    assert!(calls.contains(&format!("status-set active -- {msg}")));
    assert!(calls.contains(&format!("systemctl enable --now {SVC}")));

    // update-status: same state, no new effects.
    j.clear_calls();
    ok(&j.hook("update-status"));
    let calls = j.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("juju-log")),
        "nothing changed, nothing logged: {calls:?}"
    );
    assert!(!calls
        .iter()
        .any(|c| c.starts_with("systemctl enable") || c.starts_with("systemctl daemon-reload")));
}

#[test]
fn charm_files_follow_config_changes_and_stop_remove_cleans_up() {
    let j = FakeJuju::new("files");
    let kh = j.root("/root/.ssh/known_hosts");
    fs::create_dir_all(kh.parent().unwrap()).unwrap();
    let theirs = known_host("theirs.example");
    fs::write(&kh, format!("{theirs}\n")).unwrap();
    let cron = j.root("/etc/cron.d/periodic_backup");
    fs::create_dir_all(cron.parent().unwrap()).unwrap();
    fs::write(&cron, "@daily root /usr/bin/juju-run duplicity/0 ...\n").unwrap();
    let pem = ssh_key_pem("e2e");
    let ours = known_host("backup.example");
    j.set_config(&[
        ("backend", json!("sftp")),
        ("remote_backup_url", json!("backup.example/srv/b")),
        ("remote_user", json!("bob")),
        ("known_host_key", json!(ours)),
        (
            "private_ssh_key",
            json!(base64::engine::general_purpose::STANDARD.encode(&pem)),
        ),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!("/srv/data")),
    ]);
    ok(&j.hook("upgrade-charm"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    let key = j.root("/root/.ssh/duplicity_id_rsa");
    assert_eq!(fs::read_to_string(&key).unwrap(), pem);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&j.root("/root/.ssh")), 0o700);
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{theirs}\n{ours}\n")
    );
    assert!(!cron.exists());
    assert!(j.root("/srv/data").is_dir());

    j.clear_calls();
    ok(&j.hook("stop"));
    ok(&j.hook("remove"));
    assert!(!key.exists());
    assert_eq!(fs::read_to_string(&kh).unwrap(), format!("{theirs}\n"));
    assert!(!j.root(SETTINGS).exists());
    assert!(!j.root(&format!("/etc/systemd/system/{SVC}")).exists());
    assert!(j.root("/srv/data").is_dir());
    assert!(j.enabled_units().is_empty());
    let calls = j.calls();
    assert!(
        calls.contains(&format!("systemctl disable --now {SVC}")),
        "{calls:?}"
    );
    assert!(calls.contains(&"systemctl daemon-reload".to_string()));
}

#[test]
fn charm_hook_tool_failure_exits_nonzero_after_logging_the_cause() {
    let j = FakeJuju::new("toolfail");
    j.fail_tool("status-set");
    let r = j.hook("config-changed");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "hook tool status-set failed (exit code 1): ERROR status-set: injected failure"
        ),
        "{}",
        r.stderr
    );
    let logs = j.logs();
    let (level, msg) = logs.last().unwrap();
    assert_eq!(level, "ERROR");
    assert!(
        msg.starts_with("hooks/config-changed failed:") && msg.contains("status-set"),
        "{msg}"
    );
}

#[test]
fn charm_io_failure_exits_nonzero_but_bad_config_exits_zero() {
    let j = FakeJuju::new("iofail");
    fs::write(j.root("/srv"), "a file where a directory must go").unwrap();
    j.set_config(&[("aux_backup_directory", json!("/srv/data"))]);
    let r = j.hook("config-changed");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        j.logs().last().unwrap().1.contains("cannot create"),
        "{:?}",
        j.logs()
    );
    j.set_config(&[
        ("backend", json!("tape")),
        ("retention_period", json!("forever")),
    ]);
    let r = j.hook("config-changed");
    ok(&r);
    assert_eq!(j.last_status().0, "blocked");
}

#[test]
fn charm_outside_juju_context_fails_clearly() {
    let j = FakeJuju::new("noctx");
    let out = std::process::Command::new(j.p("charm/dispatch"))
        .env_clear()
        .env("JUJU_DISPATCH_PATH", "hooks/install")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JUJU_UNIT_NAME is not set"));
}

#[test]
fn charm_no_configured_secret_appears_in_any_call_log_status_or_output() {
    let j = FakeJuju::new("secrets");
    let pem = ssh_key_pem("S3kr1t-key-body");
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
    let secrets = [
        ("aws_access_key_id", "AKIA-S3kr1t-id".to_string()),
        ("aws_secret_access_key", "S3kr1t-aws/secret+key".to_string()),
        (
            "azure_connection_string",
            "AccountKey=S3kr1t-azure".to_string(),
        ),
        ("remote_password", "S3kr1t-password".to_string()),
        (
            "encryption_passphrase",
            "S3kr1t passphrase with spaces".to_string(),
        ),
        ("private_ssh_key", key_b64),
    ];
    let mut cfg: Vec<(&str, serde_json::Value)> =
        secrets.iter().map(|(k, v)| (*k, json!(v))).collect();
    cfg.extend([
        ("backend", json!("sftp")),
        ("remote_backup_url", json!("sftp://backup.example/b")),
        ("known_host_key", json!(known_host("backup.example"))),
    ]);
    j.set_config(&cfg);
    let mut outputs = Vec::new();
    for hook in ["install", "config-changed", "update-status"] {
        let r = j.hook(hook);
        ok(&r);
        outputs.push(r.stdout + &r.stderr);
    }
    assert_eq!(j.last_status().0, "active");
    // The secrets do reach the root-only settings file, where the engine reads them.
    let settings = fs::read_to_string(j.root(SETTINGS)).unwrap();
    assert!(
        settings.contains("S3kr1t passphrase with spaces") && settings.contains("S3kr1t-password")
    );
    // Blocked by another option, and failing, and tearing down: still nothing.
    let mut blocked = cfg.clone();
    blocked.push(("backup_frequency", json!("sometimes")));
    j.set_config(&blocked);
    outputs.push(format!("{:?}", j.hook("config-changed")));
    let r = j.action("backup", json!({}));
    outputs.push(r.stdout + &r.stderr);
    j.fail_tool("application-version-set");
    outputs.push(format!("{:?}", j.hook("config-changed")));
    outputs.push(format!("{:?}", j.hook("stop")));

    let mut haystack = j.calls();
    haystack.extend(j.logs().into_iter().map(|(_, m)| m));
    haystack.extend(j.statuses().into_iter().map(|(_, m)| m));
    haystack.extend(j.action_failed());
    haystack.extend(outputs);
    let key_line = pem.lines().nth(1).unwrap().to_string();
    for h in &haystack {
        for (name, v) in &secrets {
            assert!(!h.contains(v.as_str()), "{name} leaked into {h:?}");
        }
        assert!(!h.contains(&key_line), "the decoded key leaked into {h:?}");
    }
    assert!(
        haystack.len() > 20,
        "the checks saw the calls: {}",
        haystack.len()
    );
}

#[test]
fn charm_fake_hook_tools_answer_like_juju() {
    // The fake must fail the way jujuc does, or the tests above would prove nothing.
    let j = FakeJuju::new("fake");
    let r = j.tool("status-set", &[], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR invalid args, require <status> [message]\n")
    );
    let r = j.tool("status-set", &["error", "x"], &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "ERROR invalid status \"error\", expected one of [maintenance blocked waiting active]\n"
    );
    let r = j.tool("status-set", &["active", "a", "b"], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR unrecognized args: [\"b\"]\n")
    );
    let r = j.tool("config-get", &["--bogus"], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR option provided but not defined: --bogus\n")
    );
    let r = j.tool("config-get", &["--format=json", "backend"], &[]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "\"\"\n"));
    let r = j.tool("config-get", &["--format=json", "nope"], &[]);
    assert_eq!(r.stdout, "null\n");
    let r = j.tool("action-fail", &["x"], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "ERROR not running an action\n")
    );
    let r = j.tool("juju-log", &["--log-level", "INFO"], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR no message specified\n")
    );
    let r = j.tool("application-version-set", &[], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR no version specified\n")
    );
    let r = j.tool("is-leader", &["--format=json"], &[]);
    assert_eq!(r.stdout, "false\n");
    let r = j.tool("relation-ids", &[], &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR no endpoint name specified\n")
    );
    let r = j.tool("secret-get", &["secret:abc", "--format=json"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not found"));
    assert!(j.calls().len() >= 12, "every call was recorded");
}
