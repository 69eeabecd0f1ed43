//! The charm's actions end to end, through dispatch and the fake hook tools, against a real file://
//! target: a backup and a restore compared byte for byte, every other action's success, their failures
//! (bad params, blocked config, busy, occupied target, secrets), the status they leave, and NRPE.

use std::fs;

use serde_json::{json, Value};

use super::juju_support::FakeJuju;
use super::support::{assert_same_tree, build_sample, mutate};

const SOURCE: &str = "/srv/data";

fn ok(r: &super::juju_support::Run) {
    assert_eq!(r.code, 0, "dispatch failed: {r:?}");
}

/// A unit configured to back up /srv/data (the sample tree) to a file:// target in its temp dir.
fn configured(name: &str, extra: &[(&str, Value)]) -> FakeJuju {
    let j = FakeJuju::new(name);
    let mut cfg = vec![
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("encryption_passphrase", json!("action passphrase")),
        ("aux_backup_directory", json!(SOURCE)),
    ];
    cfg.extend(extra.iter().cloned());
    j.set_config(&cfg);
    ok(&j.hook("install"));
    ok(&j.hook("config-changed"));
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    build_sample(&j.root(SOURCE));
    j
}

#[test]
fn charm_backup_then_restore_to_a_new_directory_is_byte_for_byte() {
    let j = configured("roundtrip", &[]);
    let r = j.action_ok("backup", json!({"full": false}));
    assert_eq!(r["type"], "full", "the first backup is full: {r:?}");
    assert!(r["statistics.source-files"].parse::<u64>().unwrap() > 10);
    assert_eq!(r["statistics.errors"], "0");
    let logs = j.action_logs();
    assert!(logs[0].starts_with("backing up /srv/data ("), "{logs:?}");
    assert!(
        logs.iter().any(|l| l.starts_with("volume 1 stored (")),
        "{logs:?}"
    );

    let r = j.action_ok("restore", json!({"time": "now"}));
    let target = &r["target"];
    assert!(
        target.starts_with("/var/lib/duplicity-charm/restore/20"),
        "a new directory by default: {target}"
    );
    assert_eq!(r["path"], ".");
    assert!(r["files"].parse::<u64>().unwrap() > 10);
    assert!(j
        .action_logs()
        .iter()
        .any(|l| l.starts_with("volume 1 of 1 restored, ")));
    assert_same_tree(&j.root(SOURCE), &j.root(target), "restore action");

    // One file, put back under a target of the operator's choosing.
    let r = j.action_ok(
        "restore",
        json!({"path": "a.txt", "target": "/srv/one", "time": "now"}),
    );
    assert_eq!(r["target"], "/srv/one/a.txt");
    assert_eq!(
        fs::read(j.root("/srv/one/a.txt")).unwrap(),
        fs::read(j.root("/srv/data/a.txt")).unwrap()
    );
}

#[test]
fn charm_every_other_action_succeeds_on_a_real_target() {
    let j = configured("all", &[]);
    j.action_ok("do-backup", json!({}));
    mutate(&j.root(SOURCE), 1);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "incremental");

    let r = j.action_ok("verify", json!({"compare-data": true}));
    assert_eq!(
        (r["result"].as_str(), r["differences"].as_str()),
        ("ok", "0"),
        "{r:?}"
    );

    let r = j.action_ok("list-current-files", json!({"time": "now"}));
    assert!(
        r["listing"].lines().any(|l| l.ends_with(" reg a.txt")),
        "{}",
        r["listing"]
    );
    assert_eq!(r["truncated"], "false");
    // One line per entry (a sample name holds a newline, so there may be one more line).
    let n: usize = r["count"].parse().unwrap();
    assert!(n > 10 && r["listing"].lines().count() >= n, "{r:?}");

    let r = j.action_ok("collection-status", json!({}));
    assert_eq!(r["chain-count"], "1");
    assert_eq!(r["chains.1.role"], "primary");
    assert_eq!(r["chains.1.sets.1.type"], "full");
    assert_eq!(r["chains.1.sets.2.type"], "incremental");
    assert_eq!(r["chains.1.sets.1.encrypted"], "true");
    assert!(r["summary"].contains("Found primary backup chain"));

    // A second chain, then the removals: dry runs first, and they delete nothing.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    j.action_ok("backup", json!({"full": true}));
    let before = fs::read_dir(j.p("backups/duplicity-0")).unwrap().count();
    let r = j.action_ok(
        "remove-all-but-n-full",
        json!({"count": 1, "dry-run": true}),
    );
    assert_eq!(r["dry-run"], "true");
    assert!(r["would-delete"].parse::<usize>().unwrap() >= 6, "{r:?}");
    assert_eq!(
        fs::read_dir(j.p("backups/duplicity-0")).unwrap().count(),
        before
    );
    let r = j.action_ok("remove-all-inc-of-but-n-full", json!({"count": 1}));
    assert_eq!(r["deleted"], "3", "the old chain's incremental: {r:?}");
    let r = j.action_ok("remove-older-than", json!({"time": "now", "dry-run": true}));
    assert!(r["message"].contains("full"), "{r:?}");
    let r = j.action_ok("remove-all-but-n-full", json!({"count": 1}));
    assert_eq!(r["deleted"], "3", "the old chain's full: {r:?}");
    assert!(r["files"].contains("duplicity-full."));
    fs::write(j.p("backups/duplicity-0/.duplicity-inc.20200101T000000Z.to.20200102T000000Z.vol1.difftar.gpg.part"), b"x").unwrap();
    let r = j.action_ok("cleanup", json!({}));
    assert_eq!(r["deleted"], "1", "{r:?}");
    let r = j.action_ok("collection-status", json!({}));
    assert_eq!(r["chain-count"], "1");

    // Everything that ran is on record.
    let st = j.state();
    for kind in [
        "backup",
        "retention",
        "verify",
        "cleanup",
        "collection-status",
        "list-current-files",
    ] {
        assert_eq!(st["last"][kind]["ok"], true, "{kind}: {st}");
        assert_eq!(st["last"][kind]["trigger"], "action");
    }
}

#[test]
fn charm_actions_fail_naming_cause_and_fix() {
    let j = configured("fail", &[]);
    let fails = |name: &str, params: Value| -> String {
        let r = j.action(name, params);
        ok(&r);
        j.action_failed()
            .unwrap_or_else(|| panic!("{name} should fail: {:?}", j.action_results()))
    };
    // Bad params (Juju checks the schema too, but the charm does not rely on it).
    assert!(fails("remove-all-but-n-full", json!({"count": 0}))
        .starts_with("invalid parameters: count must be an integer of at least 1"));
    assert!(fails("restore", json!({"target": "relative/dir"})).contains("is not an absolute path"));
    assert!(fails("restore", json!({"path": "../etc"})).contains("without \"..\""));
    assert!(
        fails("list-current-files", json!({"time": "yesterday-ish"}))
            .contains("is not a duplicity time")
    );
    assert!(
        fails("verify", json!({"compare": true})).contains("verify has no parameter \"compare\"")
    );

    // Nothing backed up yet: restore says so and what to do.
    let m = fails("restore", json!({}));
    assert!(
        m.starts_with("restore failed: ") && m.contains("run restore again"),
        "{m}"
    );

    j.action_ok("backup", json!({}));
    // An occupied target needs force=true.
    fs::create_dir_all(j.root("/srv/busy")).unwrap();
    fs::write(j.root("/srv/busy/keep"), b"mine").unwrap();
    let m = fails("restore", json!({"target": "/srv/busy"}));
    assert!(
        m.contains("/srv/busy is not empty") && m.contains("force=true"),
        "{m}"
    );
    j.action_ok("restore", json!({"target": "/srv/busy", "force": true}));
    assert!(j.root("/srv/busy/a.txt").exists());
    let m = fails("restore", json!({"path": "no/such/file"}));
    assert!(m.contains("not found in the backup"), "{m}");

    // secret-key: a missing secret, a secret without a key; a valid key is not needed here.
    let m = fails("restore", json!({"secret-key": "secret:nope"}));
    assert!(
        m.contains("secret-key secret:nope: the secret is not found"),
        "{m}"
    );
    j.set_secrets(json!({"secret:abc": {"passphrase": "TopSecretPass"}}));
    let m = fails("restore", json!({"secret-key": "secret:abc"}));
    assert!(m.contains("has no \"key\" (it has: passphrase)"), "{m}");
    assert!(!m.contains("TopSecretPass"));

    // Blocked config: every action refuses and says why.
    j.set_config(&[("backend", json!("tape"))]);
    for name in ["backup", "restore", "collection-status", "cleanup"] {
        let m = fails(name, json!({}));
        assert!(
            m.starts_with(&format!(
                "the charm is blocked, so {name} cannot run: backend \"tape\" is not supported"
            )),
            "{m}"
        );
    }
    // A failed backup is on record as such.
    assert_eq!(j.state()["last"]["restore"]["ok"], false);
}

#[test]
fn charm_status_reports_the_last_backup_failures_and_overdue_runs() {
    let j = configured("status", &[("backup_frequency", json!("hourly"))]);
    j.action_ok("backup", json!({}));
    ok(&j.hook("update-status"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active");
    assert!(
        msg.starts_with("Ready: file, backups hourly, retention manual; last backup ")
            && msg.contains("s ago, "),
        "{msg}"
    );

    // A failure: still active (the config is fine), with a warning up front.
    fs::rename(j.root(SOURCE), j.root("/srv/moved")).unwrap();
    let r = j.action("backup", json!({}));
    ok(&r);
    assert!(j.action_failed().is_some());
    ok(&j.hook("update-status"));
    let (status, msg) = j.last_status();
    assert_eq!(status, "active");
    assert!(msg.starts_with("WARNING: last backup failed "), "{msg}");
    assert!(msg.contains(" | Ready: file, backups hourly"), "{msg}");

    // Overdue: the last success three days ago, hourly schedule.
    let mut st = j.state();
    let old = chrono::Utc::now().timestamp() - 3 * 86400;
    st["last"]["backup"] = st["last_ok"]["backup"].clone();
    st["last_ok"]["backup"]["finished"] = json!(old);
    st["last"]["backup"]["finished"] = json!(old);
    fs::write(j.state_file(), serde_json::to_vec(&st).unwrap()).unwrap();
    ok(&j.hook("update-status"));
    let (_, msg) = j.last_status();
    assert!(
        msg.starts_with(
            "WARNING: last successful backup 3d ago, overdue (scheduled every 60m) | Ready:"
        ),
        "{msg}"
    );

    // A blocked config is never hidden by the record.
    j.set_config(&[("backend", json!(""))]);
    ok(&j.hook("update-status"));
    assert_eq!(j.last_status().0, "blocked");
}

#[test]
fn charm_nrpe_check_registered_on_the_relation_with_its_exit_codes() {
    let j = configured(
        "nrpe",
        &[
            ("backup_frequency", json!("daily")),
            ("retention_period", json!("30d")),
            ("nagios_context", json!("prod")),
            ("nagios_servicegroups", json!("backups,storage")),
        ],
    );
    fs::create_dir_all(j.root("/var/lib/nagios/export")).unwrap();
    j.set_relations(json!({"nrpe-external-master:7": ["nrpe/0"]}));
    ok(&j.relation_hook("nrpe-external-master", 7, "joined"));
    let cfg =
        fs::read_to_string(j.root("/etc/nagios/nrpe.d/check_duplicity-duplicity-0.cfg")).unwrap();
    let line = cfg.lines().find(|l| l.starts_with("command[")).unwrap();
    let bin = format!("{}/bin/duplicity-charm", j.p("charm").display());
    assert_eq!(
        line,
        format!("command[check_duplicity-duplicity-0]={bin} check-nrpe --state /var/lib/duplicity-charm/duplicity-0/state.json --backup-schedule '0 0 * * *' --deletion-schedule '0 23 * * *'")
    );
    let service = fs::read_to_string(
        j.root("/var/lib/nagios/export/service__prod-duplicity-0_check_duplicity-duplicity-0.cfg"),
    )
    .unwrap();
    assert!(
        service.contains("servicegroups                   backups,storage"),
        "{service}"
    );
    assert!(service
        .contains("service_description             prod-duplicity-0[duplicity-duplicity-0] "));
    let sets = j.relation_sets();
    let last = sets.last().unwrap();
    assert_eq!(last["id"], "nrpe-external-master:7");
    let monitors: serde_yaml::Value =
        serde_yaml::from_str(last["data"]["monitors"].as_str().unwrap()).unwrap();
    assert_eq!(
        monitors["monitors"]["remote"]["nrpe"]["duplicity-duplicity-0"]["command"].as_str(),
        Some("check_duplicity-duplicity-0")
    );
    assert!(j
        .calls()
        .contains(&"systemctl try-restart nagios-nrpe-server".to_string()));

    // The check's outputs and exit codes, run with the same arguments.
    let state = j.state_file();
    let state = state.to_str().unwrap();
    let args = [
        "--state",
        state,
        "--backup-schedule",
        "0 0 * * *",
        "--deletion-schedule",
        "0 23 * * *",
    ];
    let r = j.check_nrpe(&args);
    assert_eq!((r.code, r.stdout.as_str()), (0, "OK: no backup yet\n"));
    j.action_ok("backup", json!({}));
    let r = j.check_nrpe(&args);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("OK: last backup "), "{}", r.stdout);
    // A failed scheduled backup is CRITICAL; an overdue success a WARNING.
    let mut st = j.state();
    let now = chrono::Utc::now().timestamp();
    let mut failed = st["last"]["backup"].clone();
    failed["trigger"] = json!("scheduled");
    failed["ok"] = json!(false);
    failed["error"] = json!("backup to file:///x failed: disk full");
    st["last_scheduled"]["backup"] = failed;
    fs::write(j.state_file(), serde_json::to_vec(&st).unwrap()).unwrap();
    let r = j.check_nrpe(&args);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .starts_with("CRITICAL: last scheduled backup failed "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("disk full"));
    st["last_scheduled"] = json!({});
    st["last_ok"]["backup"]["finished"] = json!(now - 5 * 86400);
    fs::write(j.state_file(), serde_json::to_vec(&st).unwrap()).unwrap();
    let r = j.check_nrpe(&args);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .starts_with("WARNING: last successful backup 5d ago, overdue (scheduled every 24h)"),
        "{}",
        r.stdout
    );
    let r = j.check_nrpe(&["--state", state, "--backup-schedule", "nonsense"]);
    assert_eq!(r.code, 3);
    assert!(r.stdout.starts_with("UNKNOWN: "));

    // The relation goes, and so does the check.
    j.set_relations(json!({}));
    ok(&j.relation_hook("nrpe-external-master", 7, "broken"));
    assert!(!j
        .root("/etc/nagios/nrpe.d/check_duplicity-duplicity-0.cfg")
        .exists());
    assert_eq!(
        fs::read_dir(j.root("/var/lib/nagios/export"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn charm_public_key_backups_restore_with_the_key_from_a_juju_secret() {
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;
    let (cert, _) = CertBuilder::general_purpose(Some("restore@example"))
        .set_password(Some("Unl0ck-the-key".into()))
        .generate()
        .unwrap();
    let public = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
    let private = String::from_utf8(cert.as_tsk().armored().to_vec().unwrap()).unwrap();
    let j = configured("pubkey", &[("gpg_public_key", json!(public))]);
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "full");

    let m = {
        let r = j.action("restore", json!({}));
        ok(&r);
        j.action_failed().unwrap()
    };
    assert!(
        m.contains("needs its private key") && m.contains("secret-key="),
        "{m}"
    );

    j.set_secrets(json!({"secret:wrong": {"key": private, "passphrase": "nope"}}));
    assert_eq!(
        j.action("restore", json!({"secret-key": "secret:wrong"}))
            .code,
        0
    );
    assert!(j.action_failed().unwrap().contains("cannot be unlocked"));

    j.set_secrets(json!({"secret:k1": {"key": private, "passphrase": "Unl0ck-the-key"}}));
    let r = j.action_ok("restore", json!({"secret-key": "secret:k1"}));
    assert_same_tree(&j.root(SOURCE), &j.root(&r["target"]), "public-key restore");
    assert!(j.action_logs()[0].starts_with(&format!(
        "using the private key {} from secret-key secret:k1",
        cert.fingerprint().to_hex()
    )));
    // The key file was temporary, and neither the key nor its passphrase went anywhere.
    let dir = j.root("/var/lib/duplicity-charm/duplicity-0");
    assert!(!fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".restore-key-")));
    // A line of secret key material (one the public key does not share).
    let key_line = private
        .lines()
        .find(|l| l.len() > 60 && !public.contains(*l))
        .unwrap()
        .to_string();
    for c in j.calls().iter().chain(j.action_logs().iter()) {
        assert!(
            !c.contains("Unl0ck-the-key") && !c.contains(&key_line),
            "{c}"
        );
    }
}
