//! `Event`: what Juju is running this dispatch for, from `JUJU_DISPATCH_PATH`.

/// The phase of a relation hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

/// A hook or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    ConfigChanged,
    UpgradeCharm,
    UpdateStatus,
    LeaderElected,
    LeaderSettingsChanged,
    Relation {
        endpoint: String,
        kind: RelationKind,
    },
    /// Any other hook (secrets, storage, series upgrade, ...): handled like a state change.
    OtherHook(String),
    Action(String),
}

impl Event {
    /// `hooks/<name>` or `actions/<name>`; `None` for anything else.
    pub fn from_dispatch_path(path: &str) -> Option<Event> {
        if let Some(name) = path.strip_prefix("actions/") {
            return (!name.is_empty() && !name.contains('/')).then(|| Event::Action(name.into()));
        }
        let hook = path.strip_prefix("hooks/")?;
        if hook.is_empty() || hook.contains('/') {
            return None;
        }
        Some(match hook {
            "install" => Event::Install,
            "start" => Event::Start,
            "stop" => Event::Stop,
            "remove" => Event::Remove,
            "config-changed" => Event::ConfigChanged,
            "upgrade-charm" => Event::UpgradeCharm,
            "update-status" => Event::UpdateStatus,
            "leader-elected" => Event::LeaderElected,
            "leader-settings-changed" => Event::LeaderSettingsChanged,
            other => relation_hook(other).unwrap_or_else(|| Event::OtherHook(other.into())),
        })
    }

    pub fn is_action(&self) -> bool {
        matches!(self, Event::Action(_))
    }

    /// The unit is going away: undo what the charm set up instead of reconciling it.
    pub fn is_teardown(&self) -> bool {
        matches!(self, Event::Stop | Event::Remove)
    }
}

fn relation_hook(hook: &str) -> Option<Event> {
    let (endpoint, phase) = hook.rsplit_once("-relation-")?;
    let kind = match phase {
        "created" => RelationKind::Created,
        "joined" => RelationKind::Joined,
        "changed" => RelationKind::Changed,
        "departed" => RelationKind::Departed,
        "broken" => RelationKind::Broken,
        _ => return None,
    };
    Some(Event::Relation {
        endpoint: endpoint.into(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_dispatch_path() {
        assert_eq!(
            Event::from_dispatch_path("hooks/install"),
            Some(Event::Install)
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/update-status"),
            Some(Event::UpdateStatus)
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/nrpe-external-master-relation-departed"),
            Some(Event::Relation {
                endpoint: "nrpe-external-master".into(),
                kind: RelationKind::Departed
            })
        );
        assert_eq!(
            Event::from_dispatch_path("hooks/secret-changed"),
            Some(Event::OtherHook("secret-changed".into()))
        );
        assert_eq!(
            Event::from_dispatch_path("actions/do-backup"),
            Some(Event::Action("do-backup".into()))
        );
        for bad in ["", "hooks/", "actions/", "install", "hooks/a/b", "other/x"] {
            assert_eq!(Event::from_dispatch_path(bad), None, "{bad}");
        }
        assert!(Event::Stop.is_teardown() && Event::Remove.is_teardown());
        assert!(!Event::ConfigChanged.is_teardown());
    }
}
