//! `HookTools`: one method per Juju hook tool, and the real implementation that runs the tools from `PATH`.
//!
//! Every tool that has `--format` is called with `--format=json`. Values that may be secret are never put on a
//! command line: relation data goes through `--file -` on stdin, and nothing here passes config values as
//! arguments. A failing tool becomes a [`HookToolError`] naming the tool, its exit code and its stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// The workload states a charm may set (`error` and `unknown` are Juju's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadStatus {
    Active,
    Blocked,
    Maintenance,
    Waiting,
}

impl WorkloadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadStatus::Active => "active",
            WorkloadStatus::Blocked => "blocked",
            WorkloadStatus::Maintenance => "maintenance",
            WorkloadStatus::Waiting => "waiting",
        }
    }
}

/// `juju-log --log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

/// A hook tool could not be run, failed, or printed something we cannot read.
#[derive(Debug, thiserror::Error)]
pub enum HookToolError {
    #[error("cannot run hook tool {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hook tool {tool} failed (exit code {code}): {stderr}")]
    Failed {
        tool: String,
        /// -1 when it was killed by a signal.
        code: i32,
        stderr: String,
    },
    #[error("hook tool {tool} printed unexpected output: {why}")]
    BadOutput { tool: String, why: String },
}

/// The hook tools the charm uses, 1:1 with their command lines (juju-contract.md §2).
pub trait HookTools {
    /// `config-get --format=json`: every option that is set or has a default.
    fn config_get(&self) -> Result<Map<String, Value>, HookToolError>;
    /// `status-set <status> -- <message>` (unit status).
    fn status_set(&self, status: WorkloadStatus, message: &str) -> Result<(), HookToolError>;
    /// `application-version-set -- <version>`.
    fn application_version_set(&self, version: &str) -> Result<(), HookToolError>;
    /// `juju-log --log-level <LEVEL> -- <message>`.
    fn juju_log(&self, level: LogLevel, message: &str) -> Result<(), HookToolError>;
    /// `is-leader --format=json`.
    fn is_leader(&self) -> Result<bool, HookToolError>;
    /// `action-get --format=json`: the action's params, schema defaults included.
    fn action_get(&self) -> Result<Map<String, Value>, HookToolError>;
    /// `action-set k=v ...` (keys must match Juju's key rule; dots nest).
    fn action_set(&self, results: &BTreeMap<String, String>) -> Result<(), HookToolError>;
    /// `action-log -- <message>`.
    fn action_log(&self, message: &str) -> Result<(), HookToolError>;
    /// `action-fail -- <message>`.
    fn action_fail(&self, message: &str) -> Result<(), HookToolError>;
    /// `relation-ids --format=json <endpoint>`.
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, HookToolError>;
    /// `relation-list --format=json -r <id>`.
    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, HookToolError>;
    /// `relation-get --format=json -r <id> - <unit>`: the unit's whole bag.
    fn relation_get(
        &self,
        relation_id: &str,
        unit: &str,
    ) -> Result<BTreeMap<String, String>, HookToolError>;
    /// `relation-set -r <id> --file -` with the JSON map on stdin (an empty value deletes the key).
    fn relation_set(
        &self,
        relation_id: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), HookToolError>;
    /// `secret-get <id> --refresh --format=json`: the secret's newest content (never logged). Always
    /// `--refresh`: without it Juju answers the revision this unit first read, even after
    /// `juju update-secret` (and `secret-changed`), and the charm wants the newest everywhere.
    fn secret_get(&self, id: &str) -> Result<BTreeMap<String, String>, HookToolError>;
}

/// Runs the real tools, found on `PATH` (Juju puts its tools directory first).
#[derive(Debug, Default, Clone)]
pub struct RealHookTools;

impl RealHookTools {
    fn run(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, HookToolError> {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_err = |source| HookToolError::Spawn {
            tool: tool.to_string(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let Some(data) = stdin {
            // Dropping the handle closes the pipe, so the tool sees EOF.
            let mut pipe = child.stdin.take().expect("stdin was piped");
            pipe.write_all(data).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if !out.status.success() {
            return Err(HookToolError::Failed {
                tool: tool.to_string(),
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    fn run_json<T: serde::de::DeserializeOwned>(
        &self,
        tool: &str,
        args: &[&str],
    ) -> Result<T, HookToolError> {
        let out = self.run(tool, args, None)?;
        parse_json(tool, &out)
    }
}

/// Parses a tool's JSON output; an empty output (a missing value) reads as `null`.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    tool: &str,
    out: &[u8],
) -> Result<T, HookToolError> {
    let text = std::str::from_utf8(out).map_err(|_| HookToolError::BadOutput {
        tool: tool.into(),
        why: "not UTF-8".into(),
    })?;
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| HookToolError::BadOutput {
        tool: tool.into(),
        why: format!("not the JSON expected: {e}"),
    })
}

impl HookTools for RealHookTools {
    fn config_get(&self) -> Result<Map<String, Value>, HookToolError> {
        let v: Option<Map<String, Value>> = self.run_json("config-get", &["--format=json"])?;
        Ok(v.unwrap_or_default())
    }

    fn status_set(&self, status: WorkloadStatus, message: &str) -> Result<(), HookToolError> {
        self.run("status-set", &[status.as_str(), "--", message], None)
            .map(drop)
    }

    fn application_version_set(&self, version: &str) -> Result<(), HookToolError> {
        self.run("application-version-set", &["--", version], None)
            .map(drop)
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> Result<(), HookToolError> {
        self.run(
            "juju-log",
            &["--log-level", level.as_str(), "--", message],
            None,
        )
        .map(drop)
    }

    fn is_leader(&self) -> Result<bool, HookToolError> {
        self.run_json("is-leader", &["--format=json"])
    }

    fn action_get(&self) -> Result<Map<String, Value>, HookToolError> {
        let v: Option<Map<String, Value>> = self.run_json("action-get", &["--format=json"])?;
        Ok(v.unwrap_or_default())
    }

    fn action_set(&self, results: &BTreeMap<String, String>) -> Result<(), HookToolError> {
        if results.is_empty() {
            return Ok(());
        }
        let pairs: Vec<String> = results.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
        self.run("action-set", &args, None).map(drop)
    }

    fn action_log(&self, message: &str) -> Result<(), HookToolError> {
        self.run("action-log", &["--", message], None).map(drop)
    }

    fn action_fail(&self, message: &str) -> Result<(), HookToolError> {
        self.run("action-fail", &["--", message], None).map(drop)
    }

    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, HookToolError> {
        let v: Option<Vec<String>> = self.run_json("relation-ids", &["--format=json", endpoint])?;
        Ok(v.unwrap_or_default())
    }

    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, HookToolError> {
        let v: Option<Vec<String>> =
            self.run_json("relation-list", &["--format=json", "-r", relation_id])?;
        Ok(v.unwrap_or_default())
    }

    fn relation_get(
        &self,
        relation_id: &str,
        unit: &str,
    ) -> Result<BTreeMap<String, String>, HookToolError> {
        let v: Option<BTreeMap<String, String>> = self.run_json(
            "relation-get",
            &["--format=json", "-r", relation_id, "-", unit],
        )?;
        Ok(v.unwrap_or_default())
    }

    fn relation_set(
        &self,
        relation_id: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), HookToolError> {
        let json = serde_json::to_vec(data).expect("a string map serializes");
        self.run(
            "relation-set",
            &["-r", relation_id, "--file", "-"],
            Some(&json),
        )
        .map(drop)
    }

    fn secret_get(&self, id: &str) -> Result<BTreeMap<String, String>, HookToolError> {
        let out = self.run("secret-get", &[id, "--refresh", "--format=json"], None)?;
        // Not parse_json: its error quotes serde's, which may quote the content.
        let v: Option<BTreeMap<String, String>> =
            serde_json::from_slice(&out).map_err(|_| HookToolError::BadOutput {
                tool: "secret-get".into(),
                why: "not a JSON object of strings (the output is not shown: it is secret)".into(),
            })?;
        Ok(v.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_output_is_null_and_garbage_names_the_tool() {
        let v: Option<Vec<String>> = parse_json("relation-ids", b"\n").unwrap();
        assert_eq!(v, None);
        let e = parse_json::<bool>("is-leader", b"True\n").unwrap_err();
        assert!(e.to_string().contains("is-leader"), "{e}");
    }

    #[test]
    fn a_missing_tool_is_an_error_naming_it() {
        let e = RealHookTools
            .run("duplicity-charm-no-such-tool", &[], None)
            .unwrap_err();
        assert!(matches!(e, HookToolError::Spawn { .. }));
        assert!(e.to_string().contains("duplicity-charm-no-such-tool"));
    }

    #[test]
    fn a_failing_tool_reports_code_and_stderr() {
        // `sh -c` stands in for a tool that prints Juju's error form and exits 2.
        let e = RealHookTools
            .run("sh", &["-c", "echo 'ERROR invalid args' >&2; exit 2"], None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "hook tool sh failed (exit code 2): ERROR invalid args"
        );
    }
}
