//! The fake Juju of the charm's end-to-end tests: a unit directory with the charm (our `dispatch` and the
//! built binary), hook tools on `PATH` as small executables that answer like Juju and record every call
//! (`fake_hook_tool.py`), fake `systemctl`/`apt-get`, and a `DUPLICITY_CHARM_ROOT` for the machine's files.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use super::support::{ours_bin, repo_root};

pub const UNIT: &str = "duplicity/0";

/// Every tool the fake answers for.
pub const TOOLS: &[&str] = &[
    "config-get",
    "status-set",
    "application-version-set",
    "juju-log",
    "is-leader",
    "action-get",
    "action-set",
    "action-log",
    "action-fail",
    "relation-ids",
    "relation-list",
    "relation-get",
    "relation-set",
    "secret-get",
    "systemctl",
    "apt-get",
];

/// The outcome of one dispatch.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One unit of the charm on a fake machine.
pub struct FakeJuju {
    dir: tempfile::TempDir,
}

fn python() -> String {
    if Path::new("/usr/bin/python3").exists() {
        return "/usr/bin/python3".into();
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs the fake hook tools");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// config.yaml's options with their defaults: what `config-get` shows before any `juju config`.
pub fn config_defaults() -> Map<String, Value> {
    let text = fs::read_to_string(repo_root().join("config.yaml")).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut m = Map::new();
    for (k, v) in yaml["options"].as_mapping().unwrap() {
        let default: Value = serde_json::to_value(&v["default"]).unwrap();
        m.insert(k.as_str().unwrap().to_string(), default);
    }
    m
}

impl FakeJuju {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dc-juju-{name}-"))
            .tempdir()
            .unwrap();
        let fj = FakeJuju { dir };
        for d in ["tools", "juju", "charm/bin", "root"] {
            fs::create_dir_all(fj.p(d)).unwrap();
        }
        let script = fj.p("tools/fake_hook_tool.py");
        let body = include_str!("fake_hook_tool.py");
        fs::write(&script, format!("#!{}\n{body}", python())).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        for t in TOOLS {
            symlink("fake_hook_tool.py", fj.p("tools").join(t)).unwrap();
        }
        for f in ["dispatch", "metadata.yaml", "config.yaml", "actions.yaml"] {
            fs::copy(repo_root().join(f), fj.p("charm").join(f)).unwrap();
        }
        symlink(ours_bin(), fj.p("charm/bin/duplicity-charm")).unwrap();
        fj.set_config(&[]);
        fj
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A machine path under the fake root.
    pub fn root(&self, abs: &str) -> PathBuf {
        self.p("root").join(abs.trim_start_matches('/'))
    }

    /// `juju config`: the defaults with these options set.
    pub fn set_config(&self, pairs: &[(&str, Value)]) {
        let mut m = config_defaults();
        for (k, v) in pairs {
            m.insert(k.to_string(), v.clone());
        }
        self.write_json("config.json", &Value::Object(m));
    }

    pub fn write_json(&self, name: &str, v: &Value) {
        fs::write(self.p("juju").join(name), serde_json::to_vec(v).unwrap()).unwrap();
    }

    /// Makes a tool fail with `ERROR ...` and rc 1.
    pub fn fail_tool(&self, tool: &str) {
        self.write_json("failing.json", &serde_json::json!([tool]));
    }

    fn env(&self, dispatch: &str) -> Vec<(String, String)> {
        let charm = self.p("charm").display().to_string();
        let hook = dispatch.strip_prefix("hooks/").unwrap_or("");
        let mut env: Vec<(String, String)> = [
            ("JUJU_DISPATCH_PATH", dispatch),
            ("JUJU_HOOK_NAME", hook),
            ("JUJU_UNIT_NAME", UNIT),
            ("JUJU_CHARM_DIR", &charm),
            ("CHARM_DIR", &charm),
            ("JUJU_CONTEXT_ID", "duplicity/0-run-1"),
            ("JUJU_MODEL_NAME", "test"),
            ("JUJU_MODEL_UUID", "00000000-0000-4000-8000-000000000000"),
            ("JUJU_VERSION", "3.6.4"),
            ("JUJU_PRINCIPAL_UNIT", "ubuntu/0"),
            ("JUJU_MACHINE_ID", "0"),
            ("JUJU_AVAILABILITY_ZONE", ""),
            (
                "JUJU_AGENT_SOCKET_ADDRESS",
                "@/var/lib/juju/agents/unit-duplicity-0/agent.socket",
            ),
            ("JUJU_AGENT_SOCKET_NETWORK", "unix"),
            ("LANG", "C.UTF-8"),
            ("DEBIAN_FRONTEND", "noninteractive"),
            ("APT_LISTCHANGES_FRONTEND", "none"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.push((
            "PATH".into(),
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                self.p("tools").display()
            ),
        ));
        env.push((
            "DUPLICITY_CHARM_ROOT".into(),
            self.p("root").display().to_string(),
        ));
        if let Some(rest) = hook
            .strip_suffix("-relation-joined")
            .or_else(|| hook.strip_suffix("-relation-changed"))
        {
            env.push(("JUJU_RELATION".into(), rest.into()));
            env.push(("JUJU_RELATION_ID".into(), format!("{rest}:1")));
            env.push(("JUJU_REMOTE_UNIT".into(), "ubuntu/0".into()));
            env.push(("JUJU_REMOTE_APP".into(), "ubuntu".into()));
        } else if let Some(rest) = hook.strip_suffix("-relation-created") {
            env.push(("JUJU_RELATION".into(), rest.into()));
            env.push(("JUJU_RELATION_ID".into(), format!("{rest}:1")));
            env.push(("JUJU_REMOTE_UNIT".into(), String::new()));
            env.push(("JUJU_REMOTE_APP".into(), "ubuntu".into()));
        }
        env
    }

    fn dispatch(&self, dispatch: &str, extra: &[(&str, &str)]) -> Run {
        let out = Command::new(self.p("charm/dispatch"))
            .env_clear()
            .envs(self.env(dispatch))
            .envs(extra.iter().copied())
            .current_dir(self.p("charm"))
            .stdin(Stdio::null())
            .output()
            .expect("run dispatch");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a hook as Juju does.
    pub fn hook(&self, name: &str) -> Run {
        self.dispatch(&format!("hooks/{name}"), &[])
    }

    /// Runs an action as Juju does, with these (already validated) params. The previous action's
    /// results, logs and failure are forgotten first.
    pub fn action(&self, name: &str, params: Value) -> Run {
        self.action_env(name, params, &[])
    }

    /// [`FakeJuju::action`] with extra environment (test-only knobs such as the lock wait).
    pub fn action_env(&self, name: &str, params: Value, extra: &[(&str, &str)]) -> Run {
        for f in [
            "action-results.json",
            "action-failed.json",
            "action-log.jsonl",
        ] {
            let _ = fs::remove_file(self.p("juju").join(f));
        }
        self.write_json("action-params.json", &params);
        let mut env = vec![
            ("JUJU_HOOK_NAME", ""),
            ("JUJU_ACTION_NAME", name),
            ("JUJU_ACTION_UUID", "2"),
            ("JUJU_ACTION_TAG", "action-2"),
        ];
        env.extend_from_slice(extra);
        self.dispatch(&format!("actions/{name}"), &env)
    }

    /// The last action's `action-set` results (flat keys, as set).
    pub fn action_results(&self) -> std::collections::BTreeMap<String, String> {
        self.json("action-results.json")
            .map(|v| serde_json::from_value(v).unwrap())
            .unwrap_or_default()
    }

    /// The last action's `action-log` lines.
    pub fn action_logs(&self) -> Vec<String> {
        self.jsonl("action-log.jsonl")
            .into_iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Runs an action and panics unless it succeeded; returns its results.
    pub fn action_ok(
        &self,
        name: &str,
        params: Value,
    ) -> std::collections::BTreeMap<String, String> {
        let r = self.action(name, params);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert_eq!(
            self.action_failed(),
            None,
            "{name} failed; log {:?}",
            self.action_logs()
        );
        self.action_results()
    }

    /// Relations as `relation-ids`/`relation-list` see them: id → remote units.
    pub fn set_relations(&self, relations: Value) {
        self.write_json("relations.json", &relations);
    }

    /// Juju secrets `secret-get` answers: id → content.
    pub fn set_secrets(&self, secrets: Value) {
        self.write_json("secrets.json", &secrets);
    }

    /// Every `relation-set`: `{id, data, args}`.
    pub fn relation_sets(&self) -> Vec<Value> {
        self.jsonl("relation-set.jsonl")
    }

    /// Runs a relation hook for relation `<endpoint>:<n>` (the remote unit set except in -created/-broken).
    pub fn relation_hook(&self, endpoint: &str, id: u32, phase: &str) -> Run {
        let rid = format!("{endpoint}:{id}");
        let remote = if matches!(phase, "created" | "broken") {
            ""
        } else {
            "nrpe/0"
        };
        self.dispatch(
            &format!("hooks/{endpoint}-relation-{phase}"),
            &[
                ("JUJU_HOOK_NAME", &format!("{endpoint}-relation-{phase}")),
                ("JUJU_RELATION", endpoint),
                ("JUJU_RELATION_ID", &rid),
                ("JUJU_REMOTE_UNIT", remote),
                ("JUJU_REMOTE_APP", "nrpe"),
            ],
        )
    }

    /// The on-disk settings file of the unit.
    pub fn settings_file(&self) -> PathBuf {
        self.root("/var/lib/duplicity-charm/duplicity-0/settings.json")
    }

    /// The on-disk state file of the unit.
    pub fn state_file(&self) -> PathBuf {
        self.root("/var/lib/duplicity-charm/duplicity-0/state.json")
    }

    /// The recorded outcomes, as JSON (`{}` when none).
    pub fn state(&self) -> Value {
        fs::read(self.state_file())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or_else(|_| serde_json::json!({}))
    }

    /// Starts `duplicity-charm scheduler` the way its systemd unit does, under this unit's root, with
    /// extra environment. The caller kills it (it runs for ever).
    pub fn spawn_scheduler(&self, extra: &[(&str, &str)]) -> std::process::Child {
        Command::new(ours_bin())
            .args(["scheduler", "--settings"])
            .arg(self.settings_file())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DUPLICITY_CHARM_ROOT", self.p("root"))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.p("scheduler.log")).unwrap())
            .spawn()
            .expect("start the scheduler")
    }

    /// Runs the NRPE check as NRPE would (its command line from the charm's nrpe.d file), with the
    /// state file path mapped under this unit's root.
    pub fn check_nrpe(&self, args: &[&str]) -> Run {
        let out = Command::new(ours_bin())
            .arg("check-nrpe")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// What the scheduler logged.
    pub fn scheduler_log(&self) -> String {
        fs::read_to_string(self.p("scheduler.log")).unwrap_or_default()
    }

    /// Polls `cond` every 100 ms for up to `secs`; panics with `what` and the scheduler's log if it
    /// never holds.
    pub fn wait_for(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if cond() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; scheduler log:\n{}",
            self.scheduler_log()
        );
    }

    fn jsonl(&self, name: &str) -> Vec<Value> {
        fs::read_to_string(self.p("juju").join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn json(&self, name: &str) -> Option<Value> {
        fs::read(self.p("juju").join(name))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    /// Every recorded call as `tool arg arg...` (stdin appended as ` <<< stdin`).
    pub fn calls(&self) -> Vec<String> {
        self.jsonl("calls.jsonl")
            .iter()
            .map(|c| {
                let mut s = c["tool"].as_str().unwrap().to_string();
                for a in c["args"].as_array().unwrap() {
                    s.push(' ');
                    s.push_str(a.as_str().unwrap());
                }
                if let Some(i) = c["stdin"].as_str() {
                    s.push_str(" <<< ");
                    s.push_str(i);
                }
                s
            })
            .collect()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        let _ = fs::remove_file(self.p("juju/calls.jsonl"));
    }

    /// `(status, message)` of every status-set, in order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.jsonl("status.jsonl")
            .iter()
            .map(|s| {
                (
                    s["status"].as_str().unwrap().into(),
                    s["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    pub fn last_status(&self) -> (String, String) {
        self.statuses().pop().expect("a status was set")
    }

    /// `(level, message)` of every juju-log.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.jsonl("logs.jsonl")
            .iter()
            .map(|s| {
                (
                    s["level"].as_str().unwrap().into(),
                    s["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    pub fn version(&self) -> Option<String> {
        self.json("version.json")
            .and_then(|v| v.as_str().map(String::from))
    }

    pub fn action_failed(&self) -> Option<String> {
        self.json("action-failed.json")
            .and_then(|v| v.as_str().map(String::from))
    }

    pub fn enabled_units(&self) -> Vec<String> {
        self.json("enabled.json")
            .map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs one fake tool directly (to check the fake itself answers like Juju).
    pub fn tool(&self, tool: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(self.p("tools").join(tool))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// An unencrypted OpenSSH private key file in form (not a usable key: the charm only checks the form).
pub fn ssh_key_pem(tag: &str) -> String {
    use base64::Engine;
    let mut blob = b"openssh-key-v1\0".to_vec();
    blob.extend_from_slice(&4u32.to_be_bytes());
    blob.extend_from_slice(b"none");
    blob.extend_from_slice(tag.as_bytes());
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// A known_hosts line for `host` (ed25519, fixed key bytes).
pub fn known_host(host: &str) -> String {
    use base64::Engine;
    let mut blob = 11u32.to_be_bytes().to_vec();
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&[5u8; 32]);
    format!(
        "{host} ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

pub fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

impl FakeJuju {
    /// Secrets that exist (in `set_secrets`) but are not granted to the application: `secret-get`
    /// answers `ERROR permission denied`, as Juju does.
    pub fn deny_secrets(&self, ids: &[&str]) {
        self.write_json("secret-denied.json", &serde_json::json!(ids));
    }
}
