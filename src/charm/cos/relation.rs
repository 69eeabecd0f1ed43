//! The `cos-agent` relation: the unit's `config` key, a JSON string in the `cos_agent` library's
//! `CosAgentProviderUnitData` shape (see /work/shared/docs/juju-cos-and-secrets.md §1, from the library's
//! source): `metrics_alert_rules`, `log_alert_rules`, `dashboards`, `metrics_scrape_jobs`, `log_slots`,
//! `subordinate`. Written on every hook (joined, changed, config-changed, upgrade-charm, ...): the
//! content only depends on the config and the model, and an unchanged relation-set fires nothing.
//!
//! The rules carry our Juju topology themselves (labels, and matchers in each expression in place of
//! `%%juju_topology%%`), as the Python provider's `AlertRules` does: the agent only fills in labels
//! that are missing, with its own topology.

use std::collections::BTreeMap;

use anyhow::Result;
use base64::Engine as _;
use serde_json::{json, Value};
use sha1::Digest as _;

use crate::juju::{Event, HookTools, JujuContext, RelationKind};

pub const ENDPOINT: &str = "cos-agent";
/// The charm's name, for the `juju_charm` label and the dashboard tag.
const CHARM: &str = "duplicity";
const ALERT_RULES: &str = include_str!("alert_rules.json");
const DASHBOARD: &str = include_str!("dashboard.json");
const DASHBOARD_PATH: &str = "cos/dashboard.json";
const PLACEHOLDER: &str = "%%juju_topology%%";

/// Whose data this is.
#[derive(Debug, Clone)]
pub struct Topology {
    pub model: String,
    pub model_uuid: String,
    pub application: String,
}

impl Topology {
    pub fn of(ctx: &JujuContext) -> Self {
        Topology {
            model: ctx.model_name.clone(),
            model_uuid: ctx.model_uuid.clone(),
            application: ctx
                .unit_name
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }

    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("juju_model", &self.model),
            ("juju_model_uuid", &self.model_uuid),
            ("juju_application", &self.application),
        ]
    }

    /// The PromQL matchers that replace `%%juju_topology%%`.
    fn matchers(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The alert rules with our topology: matchers in every expression, the labels on every rule, and group
/// names `<model>_<uuid[:8]>_<app>_<group>_rules`, as the library names them.
pub fn alert_rules(t: &Topology) -> Value {
    let text = ALERT_RULES.replace(PLACEHOLDER, &t.matchers().replace('"', "\\\""));
    let mut rules: Value = serde_json::from_str(&text).expect("alert_rules.json is JSON");
    let uuid8: String = t.model_uuid.chars().take(8).collect();
    for group in rules["groups"].as_array_mut().expect("groups").iter_mut() {
        let name = group["name"].as_str().unwrap_or("alerts").to_string();
        group["name"] = json!(format!(
            "{}_{uuid8}_{}_{name}_rules",
            t.model, t.application
        ));
        for rule in group["rules"].as_array_mut().expect("rules").iter_mut() {
            let labels = rule["labels"].as_object_mut().expect("labels");
            for (k, v) in t.labels() {
                labels.insert(k.into(), json!(v));
            }
            labels.insert("juju_charm".into(), json!(CHARM));
        }
    }
    rules
}

/// The dashboard as the library ships it: the `charm: <name>` tag, a `uid` derived from the charm and the
/// file's path, then the JSON text `.xz`-compressed and base64-encoded (`LZMABase64`).
pub fn dashboard() -> String {
    let mut d: Value = serde_json::from_str(DASHBOARD).expect("dashboard.json is JSON");
    // The library uses shake_256(...).hexdigest(20): 40 hex digits. The consumer only needs it stable
    // and unique per dashboard (file names), so SHA-1's 40 digits of the same input do.
    let uid = hex::encode(sha1::Sha1::digest(format!("{CHARM}-{DASHBOARD_PATH}")));
    d["uid"] = json!(uid);
    let tags = d["tags"].as_array().cloned().unwrap_or_default();
    let tag = json!(format!("charm: {CHARM}"));
    let mut tags: Vec<Value> = tags.into_iter().filter(|t| *t != tag).collect();
    tags.push(tag);
    d["tags"] = Value::Array(tags);
    let text = serde_json::to_string(&d).expect("dashboard serializes");
    base64::engine::general_purpose::STANDARD.encode(super::xz::encode(text.as_bytes()))
}

/// The scrape job for this unit's endpoint (none when `metrics_port` is 0).
pub fn scrape_jobs(unit_name: &str, metrics_port: u16, host: &str) -> Value {
    if metrics_port == 0 {
        return json!([]);
    }
    json!([{
        "job_name": format!("duplicity_{}", unit_name.replace('/', "_")),
        "metrics_path": "/metrics",
        "scheme": "http",
        "static_configs": [{
            "targets": [format!("localhost:{metrics_port}")],
            "labels": {"instance": host},
        }],
    }])
}

/// The decoded value of the `config` key.
pub fn provider_data(t: &Topology, unit_name: &str, metrics_port: u16, host: &str) -> Value {
    json!({
        "metrics_alert_rules": alert_rules(t),
        "log_alert_rules": {},
        "dashboards": [dashboard()],
        "metrics_scrape_jobs": scrape_jobs(unit_name, metrics_port, host),
        "log_slots": [],
        "subordinate": true,
    })
}

/// Writes `config` on every `cos-agent` relation (but the one being broken). `metrics_port` is `None`
/// while the config is blocked: the data then stays as it was.
pub fn ensure(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    metrics_port: Option<u16>,
) -> Result<Vec<String>> {
    let leaving = match &ctx.event {
        Event::Relation {
            endpoint,
            kind: RelationKind::Broken,
        } if endpoint == ENDPOINT => ctx.relation_id.clone(),
        _ => None,
    };
    let Some(port) = metrics_port else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = tools
        .relation_ids(ENDPOINT)?
        .into_iter()
        .filter(|id| Some(id) != leaving.as_ref())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let host = String::from_utf8_lossy(&crate::engine::meta::hostname()).into_owned();
    let data = provider_data(&Topology::of(ctx), &ctx.unit_name, port, &host);
    let bag = BTreeMap::from([("config".to_string(), data.to_string())]);
    for id in &ids {
        tools.relation_set(id, &bag)?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology {
            model: "backups".into(),
            model_uuid: "7f3c2a9e-1b4d-4c8e-9f00-123456789abc".into(),
            application: "duplicity".into(),
        }
    }

    #[test]
    fn the_data_has_the_providers_keys_and_types() {
        let v = provider_data(&topology(), "duplicity/3", 9781, "host-1");
        let o = v.as_object().unwrap();
        // CosAgentProviderUnitData: the required keys with their types.
        assert!(o["metrics_alert_rules"]["groups"].is_array());
        assert!(o["log_alert_rules"].is_object());
        assert!(o["dashboards"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string));
        assert!(o["log_slots"].as_array().unwrap().is_empty());
        assert_eq!(o["subordinate"], json!(true));
        let job = &o["metrics_scrape_jobs"][0];
        assert_eq!(job["job_name"], json!("duplicity_duplicity_3"));
        assert_eq!(
            job["static_configs"][0]["targets"],
            json!(["localhost:9781"])
        );
        assert_eq!(
            job["static_configs"][0]["labels"]["instance"],
            json!("host-1")
        );
        let off = provider_data(&topology(), "duplicity/3", 0, "host-1");
        assert_eq!(off["metrics_scrape_jobs"], json!([]));
    }

    #[test]
    fn rules_carry_the_topology_in_labels_matchers_and_group_names() {
        let rules = alert_rules(&topology());
        let group = &rules["groups"][0];
        assert_eq!(
            group["name"],
            json!("backups_7f3c2a9e_duplicity_duplicity_rules")
        );
        let rules = group["rules"].as_array().unwrap();
        assert!(rules.len() >= 4);
        for r in rules {
            let expr = r["expr"].as_str().unwrap();
            assert!(!expr.contains("%%"), "{expr}");
            assert!(
                expr.contains("juju_application=\"duplicity\"")
                    && expr.contains("juju_model_uuid=\"7f3c2a9e-1b4d-4c8e-9f00-123456789abc\""),
                "{expr}"
            );
            assert_eq!(r["labels"]["juju_charm"], json!("duplicity"));
            assert_eq!(r["labels"]["juju_model"], json!("backups"));
            assert!(r["labels"].get("juju_unit").is_none());
        }
    }

    /// Decodes the dashboard as the consumer does (Python's base64 + `lzma.decompress`).
    #[test]
    fn the_dashboard_decodes_with_pythons_lzma() {
        let encoded = dashboard();
        assert!(encoded.starts_with("/Td6WFo"), "{encoded}");
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import base64,lzma,sys; sys.stdout.write(lzma.decompress(base64.b64decode(sys.argv[1])).decode())",
                &encoded,
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(d["title"], json!("Duplicity backups"));
        assert_eq!(d["uid"].as_str().unwrap().len(), 40);
        assert_eq!(d["tags"], json!(["charm: duplicity"]));
        assert!(!d["panels"].as_array().unwrap().is_empty());
    }

    /// A dashboard bigger than one LZMA2 chunk also decodes (several stored chunks).
    #[test]
    fn a_multi_chunk_stream_decodes_with_pythons_lzma() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(super::super::xz::encode(&data));
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import base64,hashlib,lzma,sys; print(hashlib.sha256(lzma.decompress(base64.b64decode(sys.stdin.read()))).hexdigest())",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(encoded.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = hex::encode(sha2_free_sha256(&data));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }

    /// The expected digest, from Python itself on the original bytes (no SHA-256 crate needed).
    fn sha2_free_sha256(data: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        std::fs::write(&p, data).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-c", "import hashlib,sys; sys.stdout.write(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())"])
            .arg(&p)
            .output()
            .unwrap();
        hex::decode(out.stdout).unwrap()
    }

    /// `promtool check rules` on the rules as they go on the relation (topology substituted).
    #[test]
    fn promtool_accepts_the_rules() {
        if std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!("promtool is missing: run scripts/setup-deps.sh (Debian package prometheus)");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.json");
        std::fs::write(&p, alert_rules(&topology()).to_string()).unwrap();
        let out = std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 4 rules found"));
    }
}
