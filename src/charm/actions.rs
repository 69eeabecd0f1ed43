//! The charm's actions and their parameters (kept in step with actions.yaml by a test). Their handlers come
//! with the actions issue; until then every action fails with a plain message.

/// Every action and its parameter names, in actions.yaml order.
pub const ACTIONS: &[(&str, &[&str])] = &[
    ("backup", &["full"]),
    ("do-backup", &["full"]),
    (
        "restore",
        &["time", "path", "target", "force", "secret-key"],
    ),
    ("verify", &["compare-data"]),
    ("list-current-files", &["time"]),
    ("collection-status", &[]),
    ("remove-older-than", &["time", "dry-run"]),
    ("remove-all-but-n-full", &["count", "dry-run"]),
    ("remove-all-inc-of-but-n-full", &["count", "dry-run"]),
    ("cleanup", &["dry-run"]),
];

/// The `action-fail` message of an action; `None` would mean it has a handler.
pub fn unavailable_message(name: &str) -> String {
    if ACTIONS.iter().any(|(a, _)| *a == name) {
        format!("the {name} action is not available yet in this revision of the charm")
    } else {
        format!("unknown action \"{name}\"")
    }
}
