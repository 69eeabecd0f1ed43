//! The backup options of the charm end to end, through the real binary under the fake Juju:
//! `exclude_patterns`, `pre_backup_command`/`post_backup_command` with `backup_command_timeout`, and a
//! missed scheduled backup caught up once when the scheduler starts.

use std::fs;

use serde_json::{json, Value};

use super::juju_support::FakeJuju;

const SOURCE: &str = "/srv/data";

fn configured(name: &str, extra: &[(&str, Value)]) -> FakeJuju {
    let j = FakeJuju::new(name);
    let mut cfg = vec![
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!(SOURCE)),
    ];
    cfg.extend(extra.iter().cloned());
    j.set_config(&cfg);
    assert_eq!(j.hook("config-changed").code, 0);
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    j
}

fn listing(j: &FakeJuju) -> String {
    j.action_ok("list-current-files", json!({}))["listing"].clone()
}

#[test]
fn charm_backup_leaves_out_excluded_files() {
    let j = configured(
        "exclude",
        &[(
            "exclude_patterns",
            json!(
                "# caches and temp files\n/srv/data/cache\n+ /srv/data/logs/keep.tmp\n**/*.tmp\n"
            ),
        )],
    );
    let src = j.root(SOURCE);
    fs::create_dir_all(src.join("cache")).unwrap();
    fs::create_dir_all(src.join("logs")).unwrap();
    fs::write(src.join("cache/big"), b"x").unwrap();
    fs::write(src.join("keep.txt"), b"k").unwrap();
    fs::write(src.join("logs/a.tmp"), b"t").unwrap();
    fs::write(src.join("logs/keep.tmp"), b"t").unwrap();
    j.action_ok("backup", json!({}));
    let list = listing(&j);
    assert!(list.contains(" keep.txt\n"), "{list}");
    assert!(list.contains(" logs/keep.tmp\n"), "{list}");
    assert!(!list.contains("cache"), "{list}");
    assert!(!list.contains("a.tmp"), "{list}");
    // verify applies the same selection: the excluded files are no differences.
    let r = j.action_ok("verify", json!({}));
    assert_eq!(r["result"], "ok", "{r:?}");

    // A pattern outside the backed-up directory blocks the unit, named.
    j.set_config(&[
        ("backend", json!("file")),
        ("remote_backup_url", json!("file:///b")),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!(SOURCE)),
        ("exclude_patterns", json!("/var/cache")),
    ]);
    assert_eq!(j.hook("config-changed").code, 0);
    let (status, msg) = j.last_status();
    assert_eq!(status, "blocked");
    assert!(
        msg.starts_with("exclude_patterns: the pattern \"/var/cache\" cannot match anything under aux_backup_directory /srv/data"),
        "{msg}"
    );
}

#[test]
fn charm_pre_and_post_commands_run_around_the_backup() {
    let j = configured("commands", &[]);
    let out = j.p("post-result");
    let env_file = j.p("pre-env");
    let set = |pre: &str, timeout: i64| {
        j.set_config(&[
            ("backend", json!("file")),
            (
                "remote_backup_url",
                json!(format!("file://{}", j.p("backups").display())),
            ),
            ("encryption_passphrase", json!("Sekr1t-passphrase")),
            ("aux_backup_directory", json!(SOURCE)),
            ("pre_backup_command", json!(pre)),
            (
                "post_backup_command",
                json!(format!(
                    "echo $DUPLICITY_CHARM_BACKUP_RESULT > {}",
                    out.display()
                )),
            ),
            ("backup_command_timeout", json!(timeout)),
        ]);
        assert_eq!(j.hook("config-changed").code, 0);
        assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    };
    // Success: the dump is in the backup, the output in the action log and juju-log.
    set(
        &format!(
            "echo dumped > dump.sql; env > {}; echo hello from pre",
            env_file.display()
        ),
        60,
    );
    j.action_ok("backup", json!({}));
    assert!(j
        .action_logs()
        .contains(&"pre_backup_command: hello from pre".to_string()));
    assert!(j
        .logs()
        .iter()
        .any(|(_, m)| m == "pre_backup_command: hello from pre"));
    assert_eq!(fs::read_to_string(&out).unwrap(), "success\n");
    assert!(listing(&j).contains(" dump.sql\n"));
    // The command inherited nothing: no Juju context, no passphrase.
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(!env.contains("JUJU_"), "{env}");
    assert!(!env.contains("Sekr1t"), "{env}");
    assert!(!env.contains("DUPLICITY_CHARM_ROOT"), "{env}");

    // Failure: no backup, the action fails naming the status; post still runs.
    set("echo broken >&2; exit 7", 60);
    let r = j.action("backup", json!({}));
    assert_eq!(r.code, 0, "{r:?}");
    let failed = j.action_failed().expect("the backup fails");
    assert!(
        failed.starts_with("backup failed: pre_backup_command failed with exit status 7"),
        "{failed}"
    );
    assert!(failed.contains("backup_command_timeout"), "{failed}");
    assert!(j
        .action_logs()
        .contains(&"pre_backup_command (stderr): broken".to_string()));
    assert_eq!(fs::read_to_string(&out).unwrap(), "failure\n");
    assert_eq!(j.state()["last"]["backup"]["ok"], false);

    // Timeout.
    set("sleep 30", 1);
    let r = j.action("backup", json!({}));
    assert_eq!(r.code, 0, "{r:?}");
    let failed = j.action_failed().expect("the backup fails");
    assert!(
        failed.starts_with(
            "backup failed: pre_backup_command timed out after 1 s (backup_command_timeout) and was killed"
        ),
        "{failed}"
    );
}

/// Kills the scheduler when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scheduled_backups(j: &FakeJuju) -> usize {
    j.state()["history"].as_array().map_or(0, |h| {
        h.iter()
            .filter(|r| r["kind"] == "backup" && r["trigger"] == "scheduled")
            .count()
    })
}

#[test]
fn charm_scheduler_catches_up_a_missed_daily_backup_once() {
    // A daily run falls due at midnight: crossing it during the test would add a second, regular run.
    // (The scheduler keeps local time.)
    let to_midnight = 86400
        - i64::from(chrono::Timelike::num_seconds_from_midnight(
            &chrono::Local::now(),
        ));
    if to_midnight < 120 {
        std::thread::sleep(std::time::Duration::from_secs(to_midnight as u64 + 2));
    }
    let j = configured("missed", &[("backup_frequency", json!("daily"))]);
    fs::write(j.root(SOURCE).join("a"), b"a").unwrap();
    // The unit was down for three days: its last scheduled backup is older than the last midnight.
    let now = chrono::Utc::now().timestamp();
    let last = now - 3 * 86400;
    let state = json!({
        "format": 1,
        "scheduler_started": now - 10 * 86400,
        "last_scheduled": {"backup": {"kind": "backup", "trigger": "scheduled", "started": last,
                                      "finished": last + 5, "ok": true}},
    });
    fs::write(j.state_file(), serde_json::to_vec(&state).unwrap()).unwrap();
    {
        let _s = Running(j.spawn_scheduler(&[]));
        j.wait_for(30, "the missed backup", || scheduled_backups(&j) >= 1);
        j.wait_for(10, "the scheduler's log", || {
            j.scheduler_log().contains("scheduled backup done")
        });
    }
    assert!(j.scheduler_log().contains("missed run: the backup due at "));
    assert_eq!(scheduled_backups(&j), 1, "{}", j.state());
    // Started again: that run is on record, nothing is missed.
    let _s = Running(j.spawn_scheduler(&[]));
    j.wait_for(10, "the catch-up decision", || {
        j.scheduler_log().contains("missed runs: none")
    });
    assert_eq!(scheduled_backups(&j), 1, "{}", j.state());
}
