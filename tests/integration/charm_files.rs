//! The charm's YAML files against the Rust types (options, actions, relations) and the dispatch script.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use duplicity_charm::charm::actions::{actions, ParamType, SPECS};
use duplicity_charm::charm::config::{OptionType, RawConfig, OPTIONS};
use serde_yaml::Value;

use super::support::repo_root;

fn yaml(file: &str) -> Value {
    serde_yaml::from_str(&fs::read_to_string(repo_root().join(file)).unwrap()).unwrap()
}

#[test]
fn config_yaml_agrees_with_the_rust_options_and_the_python_charm() {
    let y = yaml("config.yaml");
    let options = y["options"].as_mapping().unwrap();
    let names: Vec<&str> = options.keys().map(|k| k.as_str().unwrap()).collect();
    let ours: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
    assert_eq!(names, ours, "same options, same order");
    let defaults = serde_json::to_value(RawConfig::default()).unwrap();
    for spec in OPTIONS {
        let o = &options[spec.name];
        let (ty, default) = match spec.kind {
            OptionType::String => ("string", serde_json::Value::from(spec.default)),
            OptionType::Boolean => ("boolean", serde_json::Value::from(spec.default == "true")),
            OptionType::Int => (
                "int",
                serde_json::Value::from(spec.default.parse::<i64>().unwrap()),
            ),
            // Juju takes no default for a secret (charmcraft would check it against secret:<id>);
            // unset reads as "".
            OptionType::Secret => ("secret", serde_json::Value::Null),
        };
        assert_eq!(o["type"].as_str(), Some(ty), "{}", spec.name);
        assert_eq!(
            serde_json::to_value(&o["default"]).unwrap(),
            default,
            "{} default",
            spec.name
        );
        let raw_default = match spec.kind {
            OptionType::Secret => serde_json::Value::from(""),
            _ => default,
        };
        assert_eq!(
            defaults[spec.name], raw_default,
            "RawConfig::default().{}",
            spec.name
        );
        let d = o["description"].as_str().unwrap_or("");
        assert!(
            d.len() > 40,
            "{} needs a description an operator can act on",
            spec.name
        );
    }
    assert_eq!(
        defaults.as_object().unwrap().len(),
        OPTIONS.len(),
        "RawConfig has no extra fields"
    );
    // The Python charm's options (facts from its config.yaml) all exist with its type and default.
    for (name, ty, default) in [
        ("aux_backup_directory", "string", "/tmp/duplicity"),
        ("backend", "string", ""),
        ("backup_frequency", "string", "manual"),
        ("retention_period", "string", "manual"),
        ("deletion_frequency", "string", "daily"),
        ("known_host_key", "string", ""),
        ("private_ssh_key", "string", ""),
        ("nagios_context", "string", "juju"),
    ] {
        assert_eq!(options[name]["type"].as_str(), Some(ty), "{name}");
        assert_eq!(options[name]["default"].as_str(), Some(default), "{name}");
    }
    assert_eq!(
        options["disable_encryption"]["default"].as_bool(),
        Some(false)
    );
}

#[test]
fn actions_yaml_agrees_with_the_rust_actions() {
    let y = yaml("actions.yaml");
    let m = y.as_mapping().unwrap();
    let names: Vec<&str> = m.keys().map(|k| k.as_str().unwrap()).collect();
    let all = actions();
    let ours: Vec<&str> = all.iter().map(|(a, _)| *a).collect();
    assert_eq!(names, ours);
    let key_rule = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !k.starts_with('-')
            && !k.ends_with('-')
    };
    for (name, params) in &all {
        let a = &y[*name];
        assert!(key_rule(name), "{name}");
        assert!(
            a["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        assert_eq!(a["additionalProperties"].as_bool(), Some(false), "{name}");
        let declared: Vec<&str> = a["params"]
            .as_mapping()
            .map(|p| p.keys().map(|k| k.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(declared, params.to_vec(), "{name} params");
        let (_, spec) = SPECS.iter().find(|(a, _)| a == name).unwrap();
        let mut required = Vec::new();
        for p in spec.iter() {
            assert!(key_rule(p.name), "{name}.{}", p.name);
            let ty = &a["params"][p.name]["type"];
            match p.kind {
                ParamType::Bool => assert_eq!(ty.as_str(), Some("boolean"), "{name}.{}", p.name),
                ParamType::Str => assert_eq!(ty.as_str(), Some("string"), "{name}.{}", p.name),
                ParamType::StrOrNumber => {
                    let types: Vec<&str> = ty
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap())
                        .collect();
                    assert_eq!(types, ["string", "number"], "{name}.{}", p.name);
                }
                ParamType::Int(min) => {
                    assert_eq!(ty.as_str(), Some("integer"), "{name}.{}", p.name);
                    assert_eq!(
                        a["params"][p.name]["minimum"].as_i64(),
                        Some(min),
                        "{name}.{}",
                        p.name
                    );
                }
            }
            if p.required {
                required.push(p.name);
            }
        }
        let declared_required: Vec<&str> = a["required"]
            .as_sequence()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(declared_required, required, "{name} required");
    }
    assert_eq!(
        y["remove-all-but-n-full"]["params"]["count"]["minimum"].as_i64(),
        Some(1)
    );
}

#[test]
fn metadata_yaml_is_the_python_charms_subordinate() {
    let y = yaml("metadata.yaml");
    assert_eq!(y["name"].as_str(), Some("duplicity"));
    assert_eq!(y["subordinate"].as_bool(), Some(true));
    assert_eq!(
        y["requires"]["general-info"]["interface"].as_str(),
        Some("juju-info")
    );
    assert_eq!(
        y["requires"]["general-info"]["scope"].as_str(),
        Some("container")
    );
    let nrpe = &y["provides"]["nrpe-external-master"];
    assert_eq!(nrpe["interface"].as_str(), Some("nrpe-external-master"));
    assert_eq!(nrpe["scope"].as_str(), Some("container"));
    assert_eq!(nrpe["optional"].as_bool(), Some(true));
    assert!(y["summary"].as_str().is_some_and(|s| s.len() > 20));
    assert!(y["description"].as_str().is_some_and(|s| s.len() > 100));
    // charmcraft refuses name/summary/description in both files.
    let c = yaml("charmcraft.yaml");
    for k in [
        "name",
        "summary",
        "description",
        "config",
        "actions",
        "requires",
        "provides",
    ] {
        assert!(c.get(k).is_none(), "charmcraft.yaml must not repeat {k}");
    }
    assert_eq!(c["type"].as_str(), Some("charm"));
    let platforms: BTreeSet<&str> = c["platforms"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        platforms,
        BTreeSet::from(["ubuntu@22.04:amd64", "ubuntu@24.04:amd64"])
    );
    assert_eq!(
        c["parts"]["duplicity-charm"]["plugin"].as_str(),
        Some("rust")
    );
}

#[test]
fn dispatch_is_an_executable_script_that_execs_the_binary() {
    let path = repo_root().join("dispatch");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"));
    assert!(
        text.contains("cd \"$(dirname \"$0\")\" || exit 1\n"),
        "{text}"
    );
    // charmcraft analyse takes the last word of the last line as the entrypoint and checks it exists.
    assert!(text.ends_with("exec ./bin/duplicity-charm\n"), "{text}");
}
