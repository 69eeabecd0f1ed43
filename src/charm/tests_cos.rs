//! The `cos-agent` relation and `metrics_port` over the fake hook tools and a fake system under a temp
//! root: the unit's `config` key written on joined/changed/config-changed/upgrade-charm, kept while the
//! config is blocked, and a bad `metrics_port` blocking the unit with a message naming the fix.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::paths::{Paths, UnitFiles};
use super::run;
use super::system::FakeSystem;
use crate::juju::fake::FakeHookTools;
use crate::juju::{JujuContext, WorkloadStatus};

const UNIT: &str = "duplicity/0";
const REL: &str = "cos-agent:5";

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

    fn hook(&self, hook: &str, config: Map<String, Value>, related: bool) -> FakeHookTools {
        let mut vars: BTreeMap<String, String> = [
            ("JUJU_DISPATCH_PATH", format!("hooks/{hook}")),
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
        if hook.starts_with("cos-agent-relation") {
            vars.insert("JUJU_RELATION_ID".into(), REL.into());
            vars.insert("JUJU_REMOTE_UNIT".into(), "otelcol/0".into());
        }
        let ctx = JujuContext::from_vars(vars).unwrap();
        let mut tools = FakeHookTools::new(config);
        if related {
            tools
                .relations
                .insert(REL.into(), vec!["otelcol/0".to_string()]);
        }
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

/// The decoded `config` value the unit wrote on the relation, if any.
fn written(tools: &FakeHookTools) -> Option<Value> {
    let data = tools.record().relation_data.get(REL).cloned()?;
    Some(serde_json::from_str(data.get("config")?).expect("config is JSON"))
}

#[test]
fn every_hook_writes_the_cos_agent_data_with_the_scrape_job_for_metrics_port() {
    let u = Unit::new();
    for hook in [
        "cos-agent-relation-joined",
        "cos-agent-relation-changed",
        "config-changed",
        "upgrade-charm",
    ] {
        let tools = u.hook(hook, config(&[]), true);
        let v = written(&tools).unwrap_or_else(|| panic!("{hook} wrote no config"));
        assert_eq!(
            v["metrics_scrape_jobs"][0]["static_configs"][0]["targets"],
            json!(["localhost:9781"]),
            "{hook}"
        );
        for key in [
            "metrics_alert_rules",
            "log_alert_rules",
            "dashboards",
            "log_slots",
        ] {
            assert!(v.get(key).is_some(), "{hook}: {key} missing");
        }
        assert_eq!(
            v["metrics_alert_rules"]["groups"][0]["rules"][0]["labels"]["juju_model"],
            json!("backups")
        );
    }
    assert_eq!(u.settings()["metrics_port"], json!(9781));

    let tools = u.hook(
        "config-changed",
        config(&[("metrics_port", json!(19100))]),
        true,
    );
    assert_eq!(u.settings()["metrics_port"], json!(19100));
    assert_eq!(
        written(&tools).unwrap()["metrics_scrape_jobs"][0]["static_configs"][0]["targets"],
        json!(["localhost:19100"])
    );
    // Off: no scrape job, the rules and dashboard stay.
    let tools = u.hook(
        "config-changed",
        config(&[("metrics_port", json!(0))]),
        true,
    );
    let v = written(&tools).unwrap();
    assert_eq!(v["metrics_scrape_jobs"], json!([]));
    assert_eq!(v["dashboards"].as_array().unwrap().len(), 1);

    // Not related: nothing written; a breaking relation is not written to.
    assert!(written(&u.hook("config-changed", config(&[]), false)).is_none());
    assert!(written(&u.hook("cos-agent-relation-broken", config(&[]), true)).is_none());
}

#[test]
fn a_bad_metrics_port_blocks_naming_the_option_and_keeps_the_relation_data() {
    let u = Unit::new();
    for bad in [80, 70000, -1] {
        let tools = u.hook(
            "config-changed",
            config(&[("metrics_port", json!(bad))]),
            true,
        );
        let (status, msg) = tools.status().unwrap();
        assert_eq!(status, WorkloadStatus::Blocked, "{bad}");
        assert!(
            msg.contains(&format!(
                "metrics_port {bad} is invalid: use a free TCP port from 1024 to 65535"
            )),
            "{msg}"
        );
        assert!(written(&tools).is_none(), "blocked: the last data stays");
    }
}
