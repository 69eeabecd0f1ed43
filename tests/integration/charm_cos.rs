//! COS with real tools: the charm's `cos-agent` relation data, the scheduler's `/metrics` endpoint served by
//! the real binary under the fake hook tools, checked by `promtool check metrics`, the relation's alert
//! rules by `promtool check rules`, and a real `prometheus` (Debian package) scraping the endpoint once and
//! loading the rules.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::juju_support::FakeJuju;

const SOURCE: &str = "/srv/data";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (1.0: no chunked answers to decode): (status line, body), or None when nothing listens.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn need(tool: &str) {
    assert!(
        Command::new(tool).arg("--version").output().is_ok(),
        "{tool} is missing: run scripts/setup-deps.sh (Debian package prometheus)"
    );
}

/// Kills a child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn promtool(args: &[&str], file: &Path, stdin: bool) -> (bool, String) {
    let mut cmd = Command::new("promtool");
    cmd.args(args);
    if stdin {
        cmd.stdin(Stdio::from(std::fs::File::open(file).unwrap()));
    } else {
        cmd.arg(file);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn charm_cos_endpoint_rules_and_a_real_prometheus_scrape() {
    need("promtool");
    need("prometheus");
    let port = free_port();
    let j = FakeJuju::new("cos");
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!(SOURCE)),
        ("metrics_port", json!(port)),
    ]);
    std::fs::create_dir_all(j.root(SOURCE)).unwrap();
    std::fs::write(j.root(SOURCE).join("a"), b"hello").unwrap();
    j.set_relations(json!({"cos-agent:9": ["opentelemetry-collector/0"]}));
    assert_eq!(j.relation_hook("cos-agent", 9, "joined").code, 0);

    // The relation data: one `config` key, a JSON string in the provider's shape.
    let sets = j.relation_sets();
    let last = sets
        .iter()
        .rev()
        .find(|s| s["id"] == "cos-agent:9")
        .expect("relation-set on cos-agent:9");
    let config: Value = serde_json::from_str(last["data"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["metrics_scrape_jobs"][0]["static_configs"][0]["targets"],
        json!([format!("localhost:{port}")])
    );
    let rules = j.p("rules.json");
    std::fs::write(&rules, config["metrics_alert_rules"].to_string()).unwrap();
    let (ok, out) = promtool(&["check", "rules"], &rules, false);
    assert!(ok, "promtool check rules: {out}");

    // One backup from the action, then the scheduler serves its record.
    j.action_ok("backup", json!({}));
    let _s = Running(j.spawn_scheduler(&[]));
    j.wait_for(10, "the metrics endpoint", || {
        get(port, "/metrics").is_some()
    });
    let (status, body) = get(port, "/metrics").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("duplicity_backup_last_result{kind=\"action\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("duplicity_backup_last_source_files{kind=\"full\"} "),
        "{body}"
    );
    let scrape = j.p("scrape.txt");
    std::fs::write(&scrape, &body).unwrap();
    let (ok, out) = promtool(&["check", "metrics"], &scrape, true);
    assert!(ok, "promtool check metrics: {out}\n{body}");
    assert_eq!(get(port, "/").unwrap().0, "HTTP/1.1 404 Not Found");

    // A real Prometheus: its own config, data dir and port; scrapes the endpoint, loads the rules.
    let web = free_port();
    let prom_cfg = j.p("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: duplicity\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{juju_model: backups, juju_model_uuid: x, juju_application: duplicity}}\n",
            rules.display()
        ),
    )
    .unwrap();
    let _p = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                j.p("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(j.p("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let query = |q: &str| -> Option<Value> {
        let q: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (_, body) = get(web, &format!("/api/v1/query?query={q}"))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"].as_array()?.first()?["value"][1]
            .as_str()
            .map(|s| json!(s))
    };
    j.wait_for(60, "prometheus to scrape the endpoint", || {
        query("up{job=\"duplicity\"}") == Some(json!("1"))
    });
    assert_eq!(
        query("duplicity_backup_last_result{kind=\"any\"}"),
        Some(json!("1")),
        "{}",
        std::fs::read_to_string(j.p("prometheus.log")).unwrap_or_default()
    );
    // The rules loaded and evaluate without error.
    let mut last = String::new();
    let evaluated = (0..300).any(|_| {
        let Some((_, b)) = get(web, "/api/v1/rules") else {
            return false;
        };
        let v: Value = serde_json::from_str(&b).unwrap_or_default();
        last = b;
        let rules: Vec<&Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let ok = rules.len() == 4 && rules.iter().all(|r| r["health"] == "ok");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(evaluated, "rules not all loaded and evaluated: {last}");
}
