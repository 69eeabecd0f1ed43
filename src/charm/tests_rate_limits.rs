//! `upload_rate_limit` and `download_rate_limit` over the fake hook tools under a temp root: a bad
//! value blocks the unit with a message naming the option and the fix; good ones reach the settings
//! file in bytes per second (empty and 0: no limit).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::paths::{Paths, UnitFiles};
use super::run;
use super::system::FakeSystem;
use crate::juju::fake::FakeHookTools;
use crate::juju::{JujuContext, WorkloadStatus};

const UNIT: &str = "duplicity/0";

fn config(pairs: &[(&str, Value)]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("backend".into(), json!("file"));
    m.insert("remote_backup_url".into(), json!("file:///srv/backups"));
    m.insert("encryption_passphrase".into(), json!("pass"));
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    m
}

struct Unit {
    root: tempfile::TempDir,
    sys: FakeSystem,
}

impl Unit {
    fn new() -> Self {
        Unit {
            root: tempfile::tempdir().unwrap(),
            sys: FakeSystem::default(),
        }
    }

    fn paths(&self) -> Paths {
        Paths::with_root(Some(self.root.path().to_path_buf()))
    }

    fn config_changed(&self, config: Map<String, Value>) -> FakeHookTools {
        let vars: BTreeMap<String, String> = [
            ("JUJU_DISPATCH_PATH", "hooks/config-changed".to_string()),
            ("JUJU_UNIT_NAME", UNIT.into()),
            (
                "JUJU_CHARM_DIR",
                "/var/lib/juju/agents/unit-duplicity-0/charm".into(),
            ),
            ("JUJU_MODEL_NAME", "backups".into()),
            (
                "JUJU_MODEL_UUID",
                "7f3c2a9e-1b4d-4c8e-9f00-123456789abc".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let ctx = JujuContext::from_vars(vars).unwrap();
        let tools = FakeHookTools::new(config);
        run(&ctx, &tools, &self.sys, &self.paths()).expect("the hook succeeds");
        tools
    }

    fn settings(&self) -> Value {
        let p = self
            .paths()
            .resolve(&UnitFiles::new("duplicity-0").settings);
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }
}

#[test]
fn a_bad_rate_blocks_naming_the_option_and_the_fix() {
    let u = Unit::new();
    for option in ["upload_rate_limit", "download_rate_limit"] {
        for bad in ["fast", "10X", "-1", "100b", "1.2.3M"] {
            let tools = u.config_changed(config(&[(option, json!(bad))]));
            let (status, msg) = tools.status().unwrap();
            assert_eq!(status, WorkloadStatus::Blocked, "{option}={bad}");
            assert!(
                msg.contains(&format!("{option} \"{bad}\" ")),
                "{option}={bad}: {msg}"
            );
            assert!(
                msg.contains("500K") || msg.contains("at least 1K"),
                "{option}={bad}: the message says what to write: {msg}"
            );
        }
    }
}

#[test]
fn rates_reach_the_settings_file_in_bytes_per_second() {
    let u = Unit::new();
    let tools = u.config_changed(config(&[
        ("upload_rate_limit", json!("500K")),
        ("download_rate_limit", json!(" 1.5M ")),
    ]));
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let s = u.settings();
    assert_eq!(s["upload_rate_limit"], json!(500 * 1024));
    assert_eq!(s["download_rate_limit"], json!(3 << 19));

    // A plain number is KiB/s, as rsync's --bwlimit; empty and 0 are no limit.
    let tools = u.config_changed(config(&[
        ("upload_rate_limit", json!("2048")),
        ("download_rate_limit", json!("0")),
    ]));
    assert_eq!(tools.status().unwrap().0, WorkloadStatus::Active);
    let s = u.settings();
    assert_eq!(s["upload_rate_limit"], json!(2048 * 1024));
    assert_eq!(s["download_rate_limit"], Value::Null);
    u.config_changed(config(&[]));
    assert_eq!(u.settings()["upload_rate_limit"], Value::Null);
}
