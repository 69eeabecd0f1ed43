//! Credentials from Juju secrets end to end: the built binary through `dispatch`, the fake hook tools on
//! `PATH` (whose `secret-get` pins revisions as Juju does), and a real backup to a file:// target whose
//! passphrase comes only from a secret, read back by stock duplicity with that passphrase; then the SSH key
//! and the AWS keys from secrets against the real sftp and S3 test servers (`DC_TEST_SERVERS_ENV`), with
//! wrong values in the plain options that the secrets must override.

use std::fs;

use serde_json::json;

use super::juju_support::{mode, FakeJuju, Run};
use super::support::{assert_same_tree, build_sample, Enc, Tool, Ws};

const SOURCE: &str = "/srv/data";
const ID: &str = "secret:d4fe8ce3aaaa0000bbbb";
const FIRST: &str = "first S3kr1t passphrase";
const SECOND: &str = "rotated S3kr1t passphrase";

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "dispatch failed: {r:?}");
}

fn settings(j: &FakeJuju) -> serde_json::Value {
    serde_json::from_slice(&fs::read(j.settings_file()).unwrap()).unwrap()
}

#[test]
fn charm_backs_up_with_the_passphrase_of_a_juju_secret_through_grant_change_and_removal() {
    let j = FakeJuju::new("secret-pass");
    let target = j.p("backups");
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", target.display())),
        ),
        ("aux_backup_directory", json!(SOURCE)),
        ("encryption_passphrase_secret", json!(ID)),
    ]);
    j.set_secrets(json!({ ID: {"passphrase": FIRST} }));
    j.deny_secrets(&[ID]);
    let mut outputs = Vec::new();
    let mut hook = |name: &str| {
        let r = j.hook(name);
        ok(&r);
        outputs.push(r.stdout + &r.stderr);
    };

    // Configured, but not granted yet: blocked with the command to run, nothing written.
    hook("install");
    hook("config-changed");
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked");
    assert!(
        msg.contains(&format!("run `juju grant-secret {ID} duplicity`")),
        "{msg}"
    );
    assert!(!j.settings_file().exists());
    assert!(j.enabled_units().is_empty(), "no scheduler while blocked");

    // `juju grant-secret` fires no hook; the next update-status picks it up.
    j.deny_secrets(&[]);
    hook("update-status");
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    assert_eq!(settings(&j)["encryption"]["passphrase"], FIRST);
    assert_eq!(mode(&j.settings_file()), 0o600);
    assert!(j
        .calls()
        .contains(&format!("secret-get {ID} --refresh --format=json")));

    // A real backup with it, which stock duplicity restores with that passphrase.
    build_sample(&j.root(SOURCE));
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "full");
    let mut action_output: Vec<String> = r.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    action_output.extend(j.action_logs());
    let ws = Ws::new("secret-pass-restore");
    let url = format!("file://{}/duplicity-0", target.display());
    let dst = ws.p("restored");
    ws.run(
        Tool::Duplicity,
        Enc::Pass(FIRST),
        &["restore", url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&j.root(SOURCE), &dst, "stock duplicity restore");

    // `juju update-secret`: secret-changed applies the new revision (Juju would answer the pinned
    // first revision without --refresh).
    j.set_secrets(json!({ ID: {"passphrase": SECOND} }));
    hook("secret-changed");
    assert_eq!(settings(&j)["encryption"]["passphrase"], SECOND);
    assert_eq!(j.last_status().0, "active");

    // Removed: blocked, saying so.
    j.set_secrets(json!({}));
    hook("update-status");
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked");
    assert!(
        msg.starts_with(&format!(
            "encryption_passphrase_secret {ID} was not found (removed?)"
        )),
        "{msg}"
    );
    let r = j.action("backup", json!({}));
    outputs.push(r.stdout + &r.stderr);
    let failed = j.action_failed().unwrap();
    assert!(failed.contains("the charm is blocked"), "{failed}");

    // The content never left the settings file.
    let mut haystack = j.calls();
    haystack.extend(j.logs().into_iter().map(|(_, m)| m));
    haystack.extend(j.statuses().into_iter().map(|(_, m)| m));
    haystack.push(failed);
    haystack.extend(action_output);
    haystack.extend(outputs);
    for h in &haystack {
        for secret in [FIRST, SECOND] {
            assert!(!h.contains(secret), "the passphrase leaked into {h:?}");
        }
    }
    assert!(haystack.len() > 20, "{}", haystack.len());
}

#[test]
fn charm_fake_secret_get_answers_like_juju() {
    let j = FakeJuju::new("fake-secret-get");
    j.set_secrets(json!({ ID: {"passphrase": FIRST} }));
    let get = |args: &[&str]| j.tool("secret-get", args, &[]);
    assert_eq!(
        get(&[ID, "--format=json"]).stdout,
        format!("{{\"passphrase\":\"{FIRST}\"}}\n")
    );
    // The first read pinned that revision: without --refresh an update is not seen.
    j.set_secrets(json!({ ID: {"passphrase": SECOND} }));
    assert!(get(&[ID, "--format=json"]).stdout.contains(FIRST));
    assert!(get(&[ID, "--peek", "--format=json"])
        .stdout
        .contains(SECOND));
    assert!(
        get(&[ID, "--format=json"]).stdout.contains(FIRST),
        "peek does not pin"
    );
    assert!(get(&[ID, "--refresh", "--format=json"])
        .stdout
        .contains(SECOND));
    assert!(
        get(&[ID, "--format=json"]).stdout.contains(SECOND),
        "refresh pins"
    );
    assert_eq!(
        get(&[ID, "passphrase", "--format=json"]).stdout,
        format!("\"{SECOND}\"\n")
    );
    let r = get(&[ID, "--peek", "--refresh"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "ERROR specify one of --peek or --refresh but not both\n")
    );
    j.deny_secrets(&[ID]);
    let r = get(&[ID, "--format=json"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "ERROR permission denied\n")
    );
    let r = get(&["secret:nope", "--format=json"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

/// A unit whose credentials all come from secrets (the plain options hold wrong values, which the
/// secrets must override), backing up the sample tree to `backend` at `url` on the real test servers.
fn unit_with_secrets(
    name: &str,
    backend: &str,
    url: &str,
    extra: &[(&str, serde_json::Value)],
    secrets: serde_json::Value,
) -> FakeJuju {
    let j = FakeJuju::new(name);
    let mut cfg = vec![
        ("backend", json!(backend)),
        ("remote_backup_url", json!(url)),
        ("aux_backup_directory", json!(SOURCE)),
        ("encryption_passphrase", json!("a wrong plain passphrase")),
        ("encryption_passphrase_secret", json!(ID)),
    ];
    cfg.extend(extra.iter().cloned());
    j.set_config(&cfg);
    let mut all = secrets;
    all[ID] = json!({"passphrase": FIRST});
    j.set_secrets(all);
    for hook in ["install", "config-changed"] {
        ok(&j.hook(hook));
    }
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    build_sample(&j.root(SOURCE));
    j
}

fn backup_and_restore(j: &FakeJuju) {
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "full", "{r:?}");
    let r = j.action_ok("restore", json!({"time": "now"}));
    assert_same_tree(&j.root(SOURCE), &j.root(&r["target"]), "charm restore");
}

#[test]
fn charm_sftp_with_the_ssh_key_from_a_secret() {
    use super::support::{server, unique};
    let key = fs::read_to_string(server("SSH_KEY_ED25519")).unwrap();
    let key_id = "secret:ssh0key0000000000000";
    let j = unit_with_secrets(
        "secret-sftp",
        "sftp",
        &format!("127.0.0.1:{}/{}", server("SSH_PORT"), unique("charm")),
        &[
            ("remote_user", json!(server("SSH_USER"))),
            ("private_ssh_key_secret", json!(key_id)),
            (
                "known_host_key",
                json!(fs::read_to_string(server("SSH_KNOWN_HOSTS"))
                    .unwrap()
                    .trim()),
            ),
        ],
        json!({ key_id: {"private-key": key} }),
    );
    let key_file = j.root("/root/.ssh/duplicity_id_rsa");
    assert_eq!(fs::read_to_string(&key_file).unwrap().trim(), key.trim());
    assert_eq!(mode(&key_file), 0o600);
    backup_and_restore(&j);
}

#[test]
fn charm_s3_with_the_aws_keys_from_a_secret() {
    use super::support::{server, unique};
    let aws_id = "secret:aws0keys000000000000";
    let j = unit_with_secrets(
        "secret-s3",
        "s3",
        &format!("s3:///dc-charm/{}", unique("charm")),
        &[
            ("aws_access_key_id", json!("AKIA-wrong-plain")),
            ("aws_secret_access_key", json!("wrong-plain")),
            ("aws_keys_secret", json!(aws_id)),
            ("s3_endpoint_url", json!(server("S3_ENDPOINT"))),
            ("s3_region_name", json!(server("S3_REGION"))),
        ],
        json!({ aws_id: {
            "access-key-id": server("S3_ACCESS_KEY_ID"),
            "secret-access-key": server("S3_SECRET_ACCESS_KEY"),
        }}),
    );
    backup_and_restore(&j);
}
