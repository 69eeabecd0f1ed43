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
