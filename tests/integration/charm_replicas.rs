//! `additional_backup_urls` end to end, through dispatch and the fake hook tools: the backup action's
//! sets replicated to two more file:// targets (stock duplicity restores one), one of them then
//! replaced by an unreachable sftp:// target whose failure leaves the backup and the other target
//! alone and shows in the status; a bad URL blocks the unit with the fix.

use std::fs;
use std::path::Path;

use serde_json::json;

use super::juju_support::FakeJuju;
use super::support::{assert_same_tree, build_sample, mutate, Enc, Tool, Ws};

const SOURCE: &str = "/srv/data";
const PASSPHRASE: &str = "replica passphrase";

fn ok(r: &super::juju_support::Run) {
    assert_eq!(r.code, 0, "dispatch failed: {r:?}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn configure(j: &FakeJuju, additional: &str) {
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("encryption_passphrase", json!(PASSPHRASE)),
        ("aux_backup_directory", json!(SOURCE)),
        ("additional_backup_urls", json!(additional)),
    ]);
}

#[test]
fn charm_backups_are_replicated_to_each_additional_target_and_a_failing_one_shows_in_the_status() {
    let j = FakeJuju::new("replicas");
    let (one, two) = (j.p("replica-one"), j.p("replica-two"));
    configure(
        &j,
        &format!("file://{}, file://{}", one.display(), two.display()),
    );
    ok(&j.hook("install"));
    ok(&j.hook("config-changed"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active", "{msg}");
    build_sample(&j.root(SOURCE));

    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "full");
    let one_url = format!("file://{}/duplicity-0", one.display());
    assert_eq!(r["replicas.1.target"], one_url);
    assert_eq!(r["replicas.1.result"], "ok", "{r:?}");
    assert_eq!(r["replicas.2.result"], "ok", "{r:?}");
    assert_eq!(r["replicas.1.sets"], "1");
    let main = listing(&j.p("backups/duplicity-0"));
    assert_eq!(main.len(), 3, "{main:?}");
    assert_eq!(listing(&one.join("duplicity-0")), main);
    assert_eq!(listing(&two.join("duplicity-0")), main);

    // The next backup's set follows.
    mutate(&j.root(SOURCE), 1);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "incremental");
    assert_eq!(r["replicas.1.sets"], "1", "{r:?}");
    assert_eq!(r["replicas.2.sets"], "1", "{r:?}");
    assert_eq!(listing(&one.join("duplicity-0")).len(), 6);
    let ws = Ws::new("charm-replicas");
    let dst = ws.p("restored");
    ws.run(
        Tool::Duplicity,
        Enc::Pass(PASSPHRASE),
        &["restore", one_url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&j.root(SOURCE), &dst, "duplicity restores the replica");
    let state = j.state();
    assert_eq!(
        state["last"][format!("replica {one_url}")]["ok"],
        true,
        "{state}"
    );

    // Target two replaced by one that cannot be reached: the backup and target one carry on.
    let dead = format!("sftp://backup@127.0.0.1:{}/srv", closed_port());
    configure(&j, &format!("file://{} {dead}", one.display()));
    ok(&j.hook("config-changed"));
    mutate(&j.root(SOURCE), 2);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["replicas.1.result"], "ok", "{r:?}");
    assert_eq!(r["replicas.2.result"], "failed", "{r:?}");
    assert_eq!(r["replicas.2.target"], format!("{dead}/duplicity-0"));
    assert!(!r["replicas.2.error"].is_empty());
    assert_eq!(listing(&one.join("duplicity-0")).len(), 9);
    assert_eq!(
        listing(&two.join("duplicity-0")).len(),
        6,
        "no longer listed"
    );
    ok(&j.hook("update-status"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active", "{msg}");
    assert!(
        msg.starts_with(&format!("WARNING: replica {dead}/duplicity-0 failed ")),
        "{msg}"
    );
    assert!(msg.contains("; last backup "), "{msg}");
    assert!(
        !msg.contains("replica-two"),
        "a removed target is forgotten: {msg}"
    );
    let state = j.state();
    assert_eq!(state["last"]["backup"]["ok"], true, "{state}");
}

#[test]
fn charm_a_bad_additional_backup_url_blocks_with_the_fix() {
    let j = FakeJuju::new("replicas-bad");
    configure(&j, "sftp://backup:hunter2@host2/srv");
    ok(&j.hook("install"));
    ok(&j.hook("config-changed"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked", "{msg}");
    assert!(
        msg.starts_with("additional_backup_urls: sftp://backup@host2/srv holds a password"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");

    configure(&j, "gopher://host/x");
    ok(&j.hook("config-changed"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked", "{msg}");
    assert!(msg.contains("gopher:// backend is not supported"), "{msg}");

    configure(&j, &format!("file://{}", j.p("elsewhere").display()));
    ok(&j.hook("config-changed"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
}

/// A unit that encrypts to a public key holds no secret key: the sets still go, byte for byte.
#[test]
fn charm_public_key_backups_are_replicated_without_the_private_key() {
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;
    let (cert, _) = CertBuilder::general_purpose(Some("replica@example"))
        .generate()
        .unwrap();
    let public = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
    let j = FakeJuju::new("replicas-pubkey");
    let one = j.p("replica-one");
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("gpg_public_key", json!(public)),
        ("aux_backup_directory", json!(SOURCE)),
        (
            "additional_backup_urls",
            json!(format!("file://{}", one.display())),
        ),
    ]);
    ok(&j.hook("install"));
    ok(&j.hook("config-changed"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    build_sample(&j.root(SOURCE));
    j.action_ok("backup", json!({}));
    mutate(&j.root(SOURCE), 1);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["replicas.1.result"], "ok", "{r:?}");
    let main = listing(&j.p("backups/duplicity-0"));
    assert_eq!(main.len(), 6, "{main:?}");
    assert_eq!(listing(&one.join("duplicity-0")), main);
    for name in &main {
        assert_eq!(
            fs::read(j.p("backups/duplicity-0").join(name)).unwrap(),
            fs::read(one.join("duplicity-0").join(name)).unwrap(),
            "{name}"
        );
    }
}

/// `additional_targets_secret`: a file:// main target whose plain credential options hold WRONG
/// values, and three additional targets on the real servers that only their own credentials open: an
/// sftp target with the SSH user's password, another with the SSH key, an S3 target with its own AWS
/// keys. Without the secret they fail (the main options are what they fall back to); with it each
/// replica holds the sets and restores, and no credential reaches a tool call, log or status.
#[test]
fn charm_additional_targets_use_their_own_credentials_from_a_secret() {
    use super::support::{server, unique};
    const TARGETS: &str = "secret:d9targets00000000000";
    let j = FakeJuju::new("replicas-creds");
    let (dir_pw, dir_key) = (unique("replica-pw"), unique("replica-key"));
    let prefix = unique("replica");
    let ssh = format!(
        "sftp://{}@127.0.0.1:{}",
        server("SSH_USER"),
        server("SSH_PORT")
    );
    let urls = format!("{ssh}/{dir_pw} {ssh}/{dir_key} s3:///dc-charm/{prefix}");
    let known_hosts = fs::read_to_string(server("SSH_KNOWN_HOSTS")).unwrap();
    let mut cfg = vec![
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("encryption_passphrase", json!(PASSPHRASE)),
        ("aux_backup_directory", json!(SOURCE)),
        ("additional_backup_urls", json!(urls)),
        ("additional_known_host_keys", json!(known_hosts.trim())),
        // What a target without its own credentials falls back to: wrong for every one of them.
        ("remote_password", json!("wrong-main-Sekr1t")),
        ("aws_access_key_id", json!("AKIA-wrong-main")),
        ("aws_secret_access_key", json!("wrong-main-aws-Sekr1t")),
        ("s3_endpoint_url", json!(server("S3_ENDPOINT"))),
        ("s3_region_name", json!(server("S3_REGION"))),
    ];
    j.set_config(&cfg);
    let key = fs::read_to_string(server("SSH_KEY_ED25519")).unwrap();
    j.set_secrets(json!({ TARGETS: {
        "target1-password": server("SSH_PASSWORD"),
        "target2-ssh-key": key,
        "target3-access-key-id": server("S3_ACCESS_KEY_ID"),
        "target3-secret-access-key": server("S3_SECRET_ACCESS_KEY"),
    }}));
    ok(&j.hook("install"));
    ok(&j.hook("config-changed"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    build_sample(&j.root(SOURCE));

    // The main credentials do not open the additional targets.
    let r = j.action_ok("backup", json!({}));
    for n in 1..=3 {
        assert_eq!(r[&format!("replicas.{n}.result")], "failed", "{r:?}");
    }

    // With the secret, each target logs in with its own.
    cfg.push(("additional_targets_secret", json!(TARGETS)));
    j.set_config(&cfg);
    ok(&j.hook("config-changed"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    mutate(&j.root(SOURCE), 1);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "incremental", "{r:?}");
    for n in 1..=3 {
        assert_eq!(r[&format!("replicas.{n}.result")], "ok", "{r:?}");
        assert_eq!(r[&format!("replicas.{n}.sets")], "2", "{r:?}");
    }
    let main = listing(&j.p("backups/duplicity-0"));
    assert_eq!(main.len(), 6, "{main:?}");
    let home = Path::new(server("SSH_HOME"));
    for dir in [&dir_pw, &dir_key] {
        let replica = home.join(dir).join("duplicity-0");
        assert_eq!(listing(&replica), main, "{}", replica.display());
    }
    // No key file of the targets' stays behind.
    let stray: Vec<String> = walkdir(&j.p(""))
        .into_iter()
        .filter(|p| p.contains(".replica-key-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // Each replica restores: the SSH ones with stock duplicity from the server's disk, the S3 one
    // with ours through moto.
    let ws = Ws::new("charm-replicas-creds");
    let from_key = format!(
        "file://{}",
        home.join(&dir_key).join("duplicity-0").display()
    );
    let dst = ws.p("restored-sftp");
    ws.run(
        Tool::Duplicity,
        Enc::Pass(PASSPHRASE),
        &["restore", from_key.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&j.root(SOURCE), &dst, "duplicity restores the sftp replica");
    let dst = ws.p("restored-s3");
    let s3_url = format!("s3:///dc-charm/{prefix}/duplicity-0");
    let endpoint = format!("--s3-endpoint-url={}", server("S3_ENDPOINT"));
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASSPHRASE),
        &[
            "restore",
            endpoint.as_str(),
            s3_url.as_str(),
            dst.to_str().unwrap(),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", server("S3_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", server("S3_SECRET_ACCESS_KEY")),
            ("AWS_DEFAULT_REGION", server("S3_REGION")),
        ],
    )
    .ok();
    assert_same_tree(&j.root(SOURCE), &dst, "the S3 replica restores");

    ok(&j.hook("update-status"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active", "{msg}");
    assert!(!msg.contains("WARNING"), "{msg}");
    let mut haystack = j.calls();
    haystack.extend(j.logs().into_iter().map(|(_, m)| m));
    haystack.extend(j.statuses().into_iter().map(|(_, m)| m));
    haystack.push(j.state().to_string());
    let key_line = key.lines().nth(1).unwrap().to_string();
    for h in &haystack {
        for secret in [
            server("SSH_PASSWORD"),
            server("S3_SECRET_ACCESS_KEY"),
            key_line.as_str(),
            "wrong-main-Sekr1t",
        ] {
            assert!(!h.contains(secret), "a credential leaked into {h:?}");
        }
    }

    // A key that does not fit its target blocks, naming it.
    j.set_secrets(json!({ TARGETS: { "target3-ssh-key": key } }));
    ok(&j.hook("secret-changed"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked", "{msg}");
    assert!(
        msg.starts_with(&format!(
            "additional_targets_secret {TARGETS}: target3-ssh-key does not fit target 3"
        )),
        "{msg}"
    );
}

/// Every path under `dir`, as text.
fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdir(&p));
        }
    }
    out
}
