//! `juju refresh --switch` from the Python duplicity charm, end to end: a unit carrying that charm's state
//! (its cron.d files exactly as it rendered them, its NRPE check and plugins, /root/.ssh/duplicity_id_rsa and
//! known_hosts, and a target holding a chain that stock duplicity wrote with that charm's command line) gets
//! our upgrade-charm. Then the next scheduled backup is an incremental on the old chain, scheduled retention
//! keeps it as the policy says, restore reads both, stock duplicity still restores the whole chain, and the
//! retention action removes the old chain once a newer full exists.
#![cfg(feature = "test-hooks")]

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use super::juju_support::{known_host, mode, ssh_key_pem, FakeJuju};
use super::support::{assert_same_tree, build_sample, copy_tree, mutate};

const PASSPHRASE: &str = "python-charm-passphrase";
const UNIT_CHARM_DIR: &str = "/var/lib/juju/agents/unit-duplicity-0/charm";

/// What the Python charm's templates rendered (one line, then the newline it appended).
fn old_cron_lines() -> [(&'static str, String); 2] {
    [
        (
            "/etc/cron.d/periodic_backup",
            format!(
                "@daily root /usr/bin/juju-run duplicity/0 {UNIT_CHARM_DIR}/scripts/periodic_backup.py\n"
            ),
        ),
        (
            "/etc/cron.d/periodic_deletion",
            format!(
                "0 23 * * * root /usr/bin/juju-run duplicity/0 {UNIT_CHARM_DIR}/scripts/periodic_deletion.py\n"
            ),
        ),
    ]
}

fn write(p: &Path, content: &str, mode_bits: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode_bits)).unwrap();
}

/// The files of a backup set kind in the unit's target directory, sorted.
fn target_files(j: &FakeJuju, prefix: &str, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(j.p("backups/duplicity-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// `duplicity-full.<T>.manifest.gpg` → T.
fn full_time(manifest: &str) -> String {
    manifest
        .strip_prefix("duplicity-full.")
        .and_then(|s| s.strip_suffix(".manifest.gpg"))
        .unwrap()
        .to_string()
}

fn epoch(stamp: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc()
        .timestamp()
}

/// Stock duplicity as the Python charm ran it: `duplicity <command> <args> <url> <options>`, PASSPHRASE
/// from encryption_passphrase, root's default archive dir (here under the fake root). It runs in a mount
/// namespace where the fake root's /srv/data is at /srv/data (on a tmpfs /srv, so the machine's /srv is
/// untouched): the manifest then names the source as on a real unit, and our charm continues that chain.
fn stock_duplicity(j: &FakeJuju, args: &[&str]) -> std::process::Output {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs none /srv && mkdir /srv/data && mount --bind \"$0\" /srv/data \
             && exec duplicity \"$@\"",
        )
        .arg(j.root("/srv/data"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", j.root("/root"))
        .env("XDG_CACHE_HOME", j.root("/root/.cache"))
        .env("PASSPHRASE", PASSPHRASE)
        .env("PASSWORD", PASSPHRASE)
        .output()
        .expect("run stock duplicity (Debian package duplicity)");
    assert!(
        out.status.success(),
        "duplicity {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn edit_settings(j: &FakeJuju, fields: &[(&str, Value)]) {
    let mut s: Value = serde_json::from_slice(&fs::read(j.settings_file()).unwrap()).unwrap();
    for (k, v) in fields {
        s[*k] = v.clone();
    }
    fs::write(j.settings_file(), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
}

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walkdir(dir);
    v.sort();
    v
}

fn walkdir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let md = fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.extend(walkdir(&p));
        } else if md.is_file() {
            out.push((p.display().to_string(), fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn a_python_charm_unit_upgrades_and_continues_its_chain() {
    let j = FakeJuju::new("pyupgrade");
    let data = j.root("/srv/data");
    let key = ssh_key_pem("python-charm-key");
    let kh_line = known_host("backup.example");
    // The Python charm's config, carried over unchanged by `juju refresh --switch`.
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("encryption_passphrase", json!(PASSPHRASE)),
        ("aux_backup_directory", json!("/srv/data")),
        ("backup_frequency", json!("daily")),
        ("retention_period", json!("30d")),
        ("deletion_frequency", json!("daily")),
        (
            "private_ssh_key",
            json!(base64::engine::general_purpose::STANDARD.encode(&key)),
        ),
        ("known_host_key", json!(kh_line)),
    ]);

    // --- The unit as the Python charm left it.
    for (path, line) in old_cron_lines() {
        write(&j.root(path), &line, 0o644);
    }
    write(&j.root("/root/.ssh/duplicity_id_rsa"), &key, 0o600);
    let other_host = known_host("other.example");
    write(
        &j.root("/root/.ssh/known_hosts"),
        &format!("{other_host}\n{kh_line}\n"),
        0o644,
    );
    write(
        &j.root("/etc/nagios/nrpe.d/check_backups.cfg"),
        "# check backups\n# The following header was added automatically by juju\n# Modifying it will affect nagios monitoring and alerting\n# servicegroups: juju\ncommand[check_backups]=/usr/local/lib/nagios/plugins/check_backup_status.py\n",
        0o644,
    );
    write(
        &j.root("/var/lib/nagios/export/service__juju-duplicity-0_check_backups.cfg"),
        "define service {\n    use active-service\n    host_name juju-duplicity-0\n    check_command check_nrpe!check_backups\n}\n",
        0o644,
    );
    // Another charm's check on the same machine stays.
    write(
        &j.root("/etc/nagios/nrpe.d/check_disk.cfg"),
        "command[check_disk]=/usr/lib/nagios/plugins/check_disk\n",
        0o644,
    );
    for plugin in ["check_backup_status.py", "check_deletion_status.py"] {
        write(
            &j.root(&format!("/usr/local/lib/nagios/plugins/{plugin}")),
            "#!/usr/bin/env python3\n",
            0o755,
        );
    }
    write(
        &j.root("/var/run/periodic_backup.error"),
        "Periodic backup failed.\n",
        0o644,
    );
    // The chain: the Python charm's do_backup ran `duplicity full <aux> <url> --ssh-options=...`.
    build_sample(&data);
    let url = format!("file://{}/duplicity-0", j.p("backups").display());
    stock_duplicity(
        &j,
        &[
            "full",
            "/srv/data",
            &url,
            "--ssh-options=-oIdentityFile=/root/.ssh/duplicity_id_rsa",
        ],
    );
    let before = j.p("tree-at-full");
    copy_tree(&data, &before);
    let fulls = target_files(&j, "duplicity-full.", ".manifest.gpg");
    assert_eq!(fulls.len(), 1, "{fulls:?}");
    let old_full = full_time(&fulls[0]);

    // --- juju refresh --switch: Juju runs upgrade-charm with the same config.
    let r = j.hook("upgrade-charm");
    assert_eq!(r.code, 0, "{r:?}");
    for (path, _) in old_cron_lines() {
        assert!(
            !j.root(path).exists(),
            "{path} still there: the old cron job would run"
        );
    }
    assert!(!j.root("/etc/nagios/nrpe.d/check_backups.cfg").exists());
    assert!(!j
        .root("/var/lib/nagios/export/service__juju-duplicity-0_check_backups.cfg")
        .exists());
    assert!(!j
        .root("/usr/local/lib/nagios/plugins/check_backup_status.py")
        .exists());
    assert!(!j
        .root("/usr/local/lib/nagios/plugins/check_deletion_status.py")
        .exists());
    assert!(!j.root("/var/run/periodic_backup.error").exists());
    assert!(j.root("/etc/nagios/nrpe.d/check_disk.cfg").exists());
    let logs: Vec<String> = j.logs().into_iter().map(|(_, m)| m).collect();
    for what in [
        "removed the Python charm's /etc/cron.d/periodic_backup",
        "removed the Python charm's /etc/cron.d/periodic_deletion",
        "removed the Python charm's NRPE check /etc/nagios/nrpe.d/check_backups.cfg",
    ] {
        assert!(
            logs.iter().any(|l| l == what),
            "no log {what:?} in {logs:#?}"
        );
    }
    // The key and known_hosts the old charm wrote are what we use: unchanged, the line not doubled.
    assert_eq!(
        fs::read_to_string(j.root("/root/.ssh/duplicity_id_rsa")).unwrap(),
        key
    );
    assert_eq!(mode(&j.root("/root/.ssh/duplicity_id_rsa")), 0o600);
    assert_eq!(
        fs::read_to_string(j.root("/root/.ssh/known_hosts")).unwrap(),
        format!("{other_host}\n{kh_line}\n")
    );
    assert_eq!(j.last_status().0, "active", "{:?}", j.statuses());
    assert!(
        j.enabled_units().iter().any(|u| u.contains("duplicity")),
        "our scheduler is enabled: {:?}",
        j.enabled_units()
    );

    // A second upgrade-charm changes nothing.
    let settings = fs::read(j.settings_file()).unwrap();
    let root_before = snapshot(&j.p("root"));
    let logs_before = j.logs().len();
    assert_eq!(j.hook("upgrade-charm").code, 0);
    assert_eq!(fs::read(j.settings_file()).unwrap(), settings);
    assert_eq!(snapshot(&j.p("root")), root_before);
    let new_logs: Vec<String> = j.logs()[logs_before..]
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    assert!(
        !new_logs
            .iter()
            .any(|l| l.starts_with("removed") || l.starts_with("wrote")),
        "{new_logs:#?}"
    );

    // --- The next scheduled backup, and scheduled retention (30 days: keeps the young chain). The
    // schedules are shortened to seconds (test-only) so that they come now.
    mutate(&data, 1);
    let after = j.p("tree-after-inc");
    copy_tree(&data, &after);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a later second than the old full
    edit_settings(
        &j,
        &[
            ("backup_schedule", json!("*/2 * * * * *")),
            ("deletion_schedule", json!("1/3 * * * * *")),
        ],
    );
    {
        let _s = Running(j.spawn_scheduler(&[("DUPLICITY_CHARM_TEST_SECOND_SCHEDULES", "1")]));
        j.wait_for(
            60,
            "a scheduled backup and a scheduled retention run",
            || {
                let st = j.state();
                st["last_scheduled"]["backup"]["ok"] == true
                    && st["last_scheduled"]["retention"]["ok"] == true
            },
        );
    }
    let st = j.state();
    assert_eq!(
        st["last_scheduled"]["backup"]["detail"], "incremental",
        "{st}"
    );
    assert_eq!(
        target_files(&j, "duplicity-full.", ".manifest.gpg"),
        fulls,
        "no new full: the old chain continues"
    );
    let incs = target_files(&j, "duplicity-inc.", ".manifest.gpg");
    assert!(!incs.is_empty(), "an incremental was written");
    assert!(
        incs[0].starts_with(&format!("duplicity-inc.{old_full}.to.")),
        "the first incremental builds on the old full {old_full}: {incs:?}"
    );
    // Retention (remove-older-than 30D) deleted nothing of the young chain.
    assert!(!target_files(&j, "duplicity-full.", ".difftar.gpg").is_empty());

    // --- Restore reads the old chain: latest = the tree after the change; at the old full = before it.
    j.action_ok("restore", json!({"target": "/srv/restore-latest"}));
    assert_same_tree(
        &after,
        &j.root("/srv/restore-latest"),
        "restore of the latest",
    );
    j.action_ok(
        "restore",
        json!({"target": "/srv/restore-old", "time": epoch(&old_full).to_string()}),
    );
    assert_same_tree(
        &before,
        &j.root("/srv/restore-old"),
        "restore at the old full",
    );
    // Stock duplicity still restores the whole chain, our incremental included.
    let stock_out = j.p("stock-restore");
    stock_duplicity(&j, &["restore", &url, stock_out.to_str().unwrap()]);
    assert_same_tree(&after, &stock_out, "stock duplicity restore");

    // --- Retention manages the old sets: once a newer full exists, keeping one full chain removes the
    // old full and the incrementals built on it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    j.action_ok("backup", json!({"full": true}));
    let fulls_now = target_files(&j, "duplicity-full.", ".manifest.gpg");
    assert_eq!(fulls_now.len(), 2, "{fulls_now:?}");
    j.action_ok("remove-all-but-n-full", json!({"count": 1}));
    let left = target_files(&j, "duplicity-", "");
    assert!(
        !left.iter().any(|n| n.contains(&old_full)),
        "the old chain is gone: {left:?}"
    );
    assert_eq!(
        target_files(&j, "duplicity-full.", ".manifest.gpg"),
        vec![fulls_now[1].clone()]
    );
}
