//! `JujuContext`: every `JUJU_*` variable the charm uses, read once from the hook's (replaced) environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::event::Event;

/// A variable the charm cannot work without is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("{0} is not set: this process was not started by Juju's dispatch")]
    Missing(&'static str),
    #[error("{var} has an unexpected value {value:?}: {why}")]
    Invalid {
        var: &'static str,
        value: String,
        why: &'static str,
    },
}

/// The hook's context, as Juju describes it in the environment (juju-contract.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JujuContext {
    /// `hooks/<hook>` or `actions/<action>`.
    pub dispatch_path: String,
    pub event: Event,
    /// `app/0`.
    pub unit_name: String,
    pub charm_dir: PathBuf,
    pub model_name: String,
    pub model_uuid: String,
    pub juju_version: String,
    /// The principal's unit name (we are a subordinate), when Juju says.
    pub principal_unit: Option<String>,
    /// `<endpoint>:<id>` in relation hooks.
    pub relation_id: Option<String>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    /// Action runs only.
    pub action_uuid: Option<String>,
}

impl JujuContext {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ContextError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Parses a given environment (tests pass their own).
    pub fn from_vars(vars: BTreeMap<String, String>) -> Result<Self, ContextError> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let need = |k: &'static str| get(k).ok_or(ContextError::Missing(k));
        let dispatch_path = need("JUJU_DISPATCH_PATH")?;
        let event = Event::from_dispatch_path(&dispatch_path).ok_or(ContextError::Invalid {
            var: "JUJU_DISPATCH_PATH",
            value: dispatch_path.clone(),
            why: "expected hooks/<hook> or actions/<action>",
        })?;
        let unit_name = need("JUJU_UNIT_NAME")?;
        match unit_name.split_once('/') {
            Some((app, n)) if !app.is_empty() && n.parse::<u32>().is_ok() => {}
            _ => {
                return Err(ContextError::Invalid {
                    var: "JUJU_UNIT_NAME",
                    value: unit_name,
                    why: "expected <application>/<number>",
                })
            }
        }
        let charm_dir = get("JUJU_CHARM_DIR")
            .or_else(|| get("CHARM_DIR"))
            .ok_or(ContextError::Missing("JUJU_CHARM_DIR"))?;
        Ok(JujuContext {
            dispatch_path,
            event,
            unit_name,
            charm_dir: PathBuf::from(charm_dir),
            model_name: get("JUJU_MODEL_NAME").unwrap_or_default(),
            model_uuid: get("JUJU_MODEL_UUID").unwrap_or_default(),
            juju_version: get("JUJU_VERSION").unwrap_or_default(),
            principal_unit: get("JUJU_PRINCIPAL_UNIT"),
            relation_id: get("JUJU_RELATION_ID"),
            remote_unit: get("JUJU_REMOTE_UNIT"),
            remote_app: get("JUJU_REMOTE_APP"),
            departing_unit: get("JUJU_DEPARTING_UNIT"),
            action_uuid: get("JUJU_ACTION_UUID"),
        })
    }

    /// `app`.
    pub fn app_name(&self) -> &str {
        self.unit_name.split('/').next().unwrap_or(&self.unit_name)
    }

    /// `app-0`: the unit name as duplicity's URL suffix and our file names use it.
    pub fn unit_slug(&self) -> String {
        self.unit_name.replace('/', "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_a_hook_environment() {
        let c = JujuContext::from_vars(vars(&[
            ("JUJU_DISPATCH_PATH", "hooks/juju-info-relation-joined"),
            ("JUJU_UNIT_NAME", "duplicity/3"),
            (
                "JUJU_CHARM_DIR",
                "/var/lib/juju/agents/unit-duplicity-3/charm",
            ),
            ("JUJU_RELATION_ID", "general-info:7"),
            ("JUJU_REMOTE_UNIT", ""),
            ("JUJU_MODEL_NAME", "m"),
        ]))
        .unwrap();
        assert_eq!(c.unit_slug(), "duplicity-3");
        assert_eq!(c.app_name(), "duplicity");
        assert_eq!(c.relation_id.as_deref(), Some("general-info:7"));
        assert_eq!(c.remote_unit, None, "empty means unset");
    }

    #[test]
    fn falls_back_to_charm_dir_and_rejects_what_juju_never_sets() {
        let ok = vars(&[
            ("JUJU_DISPATCH_PATH", "hooks/install"),
            ("JUJU_UNIT_NAME", "d/0"),
            ("CHARM_DIR", "/c"),
        ]);
        assert_eq!(
            JujuContext::from_vars(ok).unwrap().charm_dir,
            PathBuf::from("/c")
        );
        let no_unit = vars(&[("JUJU_DISPATCH_PATH", "hooks/install"), ("CHARM_DIR", "/c")]);
        assert_eq!(
            JujuContext::from_vars(no_unit),
            Err(ContextError::Missing("JUJU_UNIT_NAME"))
        );
        let bad_unit = vars(&[
            ("JUJU_DISPATCH_PATH", "hooks/install"),
            ("JUJU_UNIT_NAME", "nounit"),
            ("CHARM_DIR", "/c"),
        ]);
        assert!(matches!(
            JujuContext::from_vars(bad_unit),
            Err(ContextError::Invalid {
                var: "JUJU_UNIT_NAME",
                ..
            })
        ));
        let bad_path = vars(&[
            ("JUJU_DISPATCH_PATH", "elsewhere/install"),
            ("JUJU_UNIT_NAME", "d/0"),
            ("CHARM_DIR", "/c"),
        ]);
        assert!(JujuContext::from_vars(bad_path).is_err());
    }
}
