//! The scheduler end to end: `duplicity-charm scheduler --settings FILE` as its systemd unit runs it, on a
//! test-only schedule of seconds (`DUPLICITY_CHARM_TEST_SECOND_SCHEDULES=1`), doing real backups and
//! retention, reloading changed settings, and never running at the same time as an action.
//! Those test-only knobs exist only with the cargo feature `test-hooks` (scripts/test.sh turns it on).
#![cfg(feature = "test-hooks")]

use std::fs;

use serde_json::{json, Value};

use super::juju_support::FakeJuju;
use super::support::build_sample;

const SECONDS: (&str, &str) = ("DUPLICITY_CHARM_TEST_SECOND_SCHEDULES", "1");

fn configured(name: &str) -> FakeJuju {
    let j = FakeJuju::new(name);
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!("/srv/data")),
    ]);
    assert_eq!(j.hook("config-changed").code, 0);
    build_sample(&j.root("/srv/data"));
    j
}

/// Rewrites fields of the settings file, as the charm would after `juju config`.
fn edit_settings(j: &FakeJuju, fields: &[(&str, Value)]) {
    let mut s: Value = serde_json::from_slice(&fs::read(j.settings_file()).unwrap()).unwrap();
    for (k, v) in fields {
        s[*k] = v.clone();
    }
    fs::write(j.settings_file(), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
}

fn count(j: &FakeJuju, kind: &str, trigger: &str) -> usize {
    j.state()["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|r| r["kind"] == kind && r["trigger"] == trigger)
                .count()
        })
        .unwrap_or(0)
}

/// Kills the scheduler when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn scheduler_reloads_settings_and_runs_backups_and_retention_on_schedule() {
    let j = configured("sched");
    // The charm wrote a manual schedule: the scheduler starts and waits.
    let _s = Running(j.spawn_scheduler(&[SECONDS]));
    j.wait_for(10, "the scheduler to start", || {
        j.scheduler_log()
            .contains("backups manual, retention manual")
    });
    // New settings: a (full) backup every 2 s, retention every 3 s keeping one full chain.
    edit_settings(
        &j,
        &[
            ("backup_schedule", json!("*/2 * * * * *")),
            ("deletion_schedule", json!("1/3 * * * * *")),
            ("full_if_older_than", json!("1s")),
            ("keep_full_backups", json!(1)),
        ],
    );
    j.wait_for(
        40,
        "three scheduled backups and a retention run that deleted",
        || {
            let st = j.state();
            count(&j, "backup", "scheduled") >= 3
                && st["history"].as_array().is_some_and(|h| {
                    h.iter().any(|r| {
                        r["kind"] == "retention"
                            && r["ok"] == true
                            && r["stats"]["deleted"].as_u64() > Some(0)
                    })
                })
        },
    );
    let log = j.scheduler_log();
    assert!(log.contains("settings changed: reloaded"), "{log}");
    let st = j.state();
    assert_eq!(st["last_scheduled"]["backup"]["ok"], true, "{st}");
    assert_eq!(st["last_scheduled"]["backup"]["detail"], "full");
    assert!(st["scheduler_started"].is_i64());
    // Retention kept at most one full chain (plus, maybe, one made since it ran).
    let fulls = fs::read_dir(j.p("backups/duplicity-0"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().into_string().unwrap();
            n.starts_with("duplicity-full.") && n.ends_with(".manifest")
        })
        .count();
    assert!(fulls <= 3, "retention removed old chains: {fulls} left");
    // The status shows the scheduled outcome.
    assert_eq!(j.hook("update-status").code, 0);
    let (status, msg) = j.last_status();
    assert_eq!(status, "active");
    assert!(msg.contains("; last backup "), "{msg}");
}

#[test]
fn scheduler_and_action_never_run_at_once() {
    let j = configured("lock");
    edit_settings(&j, &[("backup_schedule", json!("*/2 * * * * *"))]);
    // Each scheduled run keeps the lock 4 s longer than its work.
    let _s = Running(j.spawn_scheduler(&[SECONDS, ("DUPLICITY_CHARM_TEST_HOLD_LOCK", "4")]));
    j.wait_for(20, "a scheduled backup", || {
        count(&j, "backup", "scheduled") >= 1
    });
    // The scheduler still holds the lock: an action with a short wait reports busy, naming the holder.
    let r = j.action_env("backup", json!({}), &[("DUPLICITY_CHARM_LOCK_WAIT", "0.5")]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = j.action_failed().expect("busy");
    assert!(
        m.starts_with("busy: another run holds the lock (a scheduled backup, pid "),
        "{m}"
    );
    assert!(m.contains("Run backup again when it has finished"), "{m}");
    // With time to wait, the action runs once the scheduled run lets go.
    let r = j.action_env("backup", json!({}), &[("DUPLICITY_CHARM_LOCK_WAIT", "20")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(j.action_failed(), None, "{:?}", j.action_logs());
    // Runs on record never overlap.
    let st = j.state();
    let mut runs: Vec<(i64, i64)> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ok"] == true)
        .map(|r| {
            (
                r["started"].as_i64().unwrap(),
                r["finished"].as_i64().unwrap(),
            )
        })
        .collect();
    runs.sort();
    for w in runs.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping runs: {runs:?}");
    }
}

#[test]
fn scheduler_records_a_busy_scheduled_run_as_failed_and_nrpe_goes_critical() {
    let j = configured("busy");
    edit_settings(&j, &[("backup_schedule", json!("*/1 * * * * *"))]);
    // An action holds the lock for 5 s while the scheduler, waiting only 0.3 s, fires.
    let action = {
        let settings = j.settings_file();
        assert!(settings.exists());
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                j.action_env(
                    "backup",
                    json!({}),
                    &[("DUPLICITY_CHARM_TEST_HOLD_LOCK", "5")],
                )
            });
            // Start the scheduler once the action holds the lock (its run is on record by then).
            j.wait_for(20, "the action's backup", || {
                count(&j, "backup", "action") >= 1
            });
            let sched =
                Running(j.spawn_scheduler(&[SECONDS, ("DUPLICITY_CHARM_LOCK_WAIT", "0.3")]));
            j.wait_for(10, "a busy scheduled run", || {
                j.state()["last_scheduled"]["backup"]["ok"] == false
            });
            // Stop it while the action still holds the lock: its next run could succeed after.
            drop(sched);
            h.join().unwrap()
        })
    };
    assert_eq!(action.code, 0);
    let st = j.state();
    let err = st["last_scheduled"]["backup"]["error"].as_str().unwrap();
    assert!(
        err.starts_with("busy: another run holds the lock (the backup action, pid "),
        "{err}"
    );
    let state = j.state_file();
    let r = j.check_nrpe(&[
        "--state",
        state.to_str().unwrap(),
        "--backup-schedule",
        "0 * * * *",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .starts_with("CRITICAL: last scheduled backup failed "),
        "{}",
        r.stdout
    );
}
