//! `FakeHookTools`: an in-memory Juju for state-transition tests (config and params in; status history,
//! logs, action results and every call out), in the spirit of ops-scenario.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::tools::{HookToolError, HookTools, LogLevel, WorkloadStatus};

/// What the charm did through the tools, in order.
#[derive(Debug, Default, Clone)]
pub struct FakeRecord {
    pub statuses: Vec<(WorkloadStatus, String)>,
    pub logs: Vec<(LogLevel, String)>,
    pub app_version: Option<String>,
    pub action_results: BTreeMap<String, String>,
    pub action_logs: Vec<String>,
    pub action_failed: Option<String>,
    pub relation_data: BTreeMap<String, BTreeMap<String, String>>,
    /// Every call as `tool arg arg ...` (stdin appended after ` <<< `), for the secret-leak checks.
    pub calls: Vec<String>,
}

/// An in-memory Juju. Fill the public inputs, run the charm, read [`FakeHookTools::record`].
#[derive(Debug, Default)]
pub struct FakeHookTools {
    /// What `config-get` answers.
    pub config: Map<String, Value>,
    pub leader: bool,
    /// `Some` while running an action: what `action-get` answers.
    pub action_params: Option<Map<String, Value>>,
    /// Relation id → remote units.
    pub relations: BTreeMap<String, Vec<String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets in `secrets` not granted to this application: `secret-get` says `permission denied`.
    pub denied: Vec<String>,
    /// Tool names that fail with exit code 1, to test the failure policy.
    pub failing: Vec<String>,
    record: RefCell<FakeRecord>,
}

impl FakeHookTools {
    pub fn new(config: Map<String, Value>) -> Self {
        FakeHookTools {
            config,
            ..Default::default()
        }
    }

    /// A copy of what happened so far.
    pub fn record(&self) -> FakeRecord {
        self.record.borrow().clone()
    }

    /// The last status set, if any.
    pub fn status(&self) -> Option<(WorkloadStatus, String)> {
        self.record.borrow().statuses.last().cloned()
    }

    fn call(&self, tool: &str, args: &[&str]) -> Result<(), HookToolError> {
        self.record.borrow_mut().calls.push(
            std::iter::once(tool)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if self.failing.iter().any(|t| t == tool) {
            return Err(HookToolError::Failed {
                tool: tool.into(),
                code: 1,
                stderr: format!("ERROR {tool} failed (fake)"),
            });
        }
        Ok(())
    }

    fn in_action(&self, tool: &str) -> Result<(), HookToolError> {
        match self.action_params {
            Some(_) => Ok(()),
            None => Err(HookToolError::Failed {
                tool: tool.into(),
                code: 1,
                stderr: "ERROR not running an action".into(),
            }),
        }
    }
}

impl HookTools for FakeHookTools {
    fn config_get(&self) -> Result<Map<String, Value>, HookToolError> {
        self.call("config-get", &["--format=json"])?;
        Ok(self.config.clone())
    }

    fn status_set(&self, status: WorkloadStatus, message: &str) -> Result<(), HookToolError> {
        self.call("status-set", &[status.as_str(), "--", message])?;
        self.record
            .borrow_mut()
            .statuses
            .push((status, message.to_string()));
        Ok(())
    }

    fn application_version_set(&self, version: &str) -> Result<(), HookToolError> {
        self.call("application-version-set", &["--", version])?;
        self.record.borrow_mut().app_version = Some(version.to_string());
        Ok(())
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> Result<(), HookToolError> {
        self.call("juju-log", &["--log-level", level.as_str(), "--", message])?;
        self.record
            .borrow_mut()
            .logs
            .push((level, message.to_string()));
        Ok(())
    }

    fn is_leader(&self) -> Result<bool, HookToolError> {
        self.call("is-leader", &["--format=json"])?;
        Ok(self.leader)
    }

    fn action_get(&self) -> Result<Map<String, Value>, HookToolError> {
        self.call("action-get", &["--format=json"])?;
        self.in_action("action-get")?;
        Ok(self.action_params.clone().unwrap_or_default())
    }

    fn action_set(&self, results: &BTreeMap<String, String>) -> Result<(), HookToolError> {
        let pairs: Vec<String> = results.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
        self.call("action-set", &args)?;
        self.in_action("action-set")?;
        self.record
            .borrow_mut()
            .action_results
            .extend(results.clone());
        Ok(())
    }

    fn action_log(&self, message: &str) -> Result<(), HookToolError> {
        self.call("action-log", &["--", message])?;
        self.in_action("action-log")?;
        self.record
            .borrow_mut()
            .action_logs
            .push(message.to_string());
        Ok(())
    }

    fn action_fail(&self, message: &str) -> Result<(), HookToolError> {
        self.call("action-fail", &["--", message])?;
        self.in_action("action-fail")?;
        self.record.borrow_mut().action_failed = Some(message.to_string());
        Ok(())
    }

    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, HookToolError> {
        self.call("relation-ids", &["--format=json", endpoint])?;
        let prefix = format!("{endpoint}:");
        Ok(self
            .relations
            .keys()
            .filter(|id| id.starts_with(&prefix))
            .cloned()
            .collect())
    }

    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, HookToolError> {
        self.call("relation-list", &["--format=json", "-r", relation_id])?;
        self.relations
            .get(relation_id)
            .cloned()
            .ok_or_else(|| HookToolError::Failed {
                tool: "relation-list".into(),
                code: 2,
                stderr: format!(
                    "ERROR invalid value \"{relation_id}\" for option -r: relation not found"
                ),
            })
    }

    fn relation_get(
        &self,
        relation_id: &str,
        unit: &str,
    ) -> Result<BTreeMap<String, String>, HookToolError> {
        self.call(
            "relation-get",
            &["--format=json", "-r", relation_id, "-", unit],
        )?;
        Ok(BTreeMap::new())
    }

    fn relation_set(
        &self,
        relation_id: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), HookToolError> {
        let json = serde_json::to_string(data).expect("a string map serializes");
        self.call(
            "relation-set",
            &["-r", relation_id, "--file", "-", "<<<", &json],
        )?;
        let mut rec = self.record.borrow_mut();
        let bag = rec
            .relation_data
            .entry(relation_id.to_string())
            .or_default();
        for (k, v) in data {
            if v.is_empty() {
                bag.remove(k);
            } else {
                bag.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    fn secret_get(&self, id: &str) -> Result<BTreeMap<String, String>, HookToolError> {
        self.call("secret-get", &[id, "--refresh", "--format=json"])?;
        if self.denied.iter().any(|d| d == id) {
            return Err(HookToolError::Failed {
                tool: "secret-get".into(),
                code: 1,
                stderr: "ERROR permission denied".into(),
            });
        }
        self.secrets
            .get(id)
            .cloned()
            .ok_or_else(|| HookToolError::Failed {
                tool: "secret-get".into(),
                code: 1,
                stderr: format!("ERROR secret {id:?} not found"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_status_logs_and_calls_and_refuses_action_tools_outside_an_action() {
        let f = FakeHookTools::new(Map::new());
        f.status_set(WorkloadStatus::Blocked, "why").unwrap();
        f.juju_log(LogLevel::Info, "hello").unwrap();
        assert_eq!(f.status(), Some((WorkloadStatus::Blocked, "why".into())));
        assert_eq!(f.record().calls[0], "status-set blocked -- why");
        assert!(f.action_fail("x").is_err());
        let mut f = FakeHookTools::new(Map::new());
        f.action_params = Some(Map::new());
        f.action_fail("nope").unwrap();
        assert_eq!(f.record().action_failed.as_deref(), Some("nope"));
        f.failing.push("status-set".into());
        assert!(f.status_set(WorkloadStatus::Active, "").is_err());
    }
}
