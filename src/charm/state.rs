//! Outcomes on record: every engine run, scheduled or from an action, is written to `state.json` beside the
//! settings file (time, kind, trigger, result, statistics), and [`assess`] turns that record into what an
//! operator sees: the `juju status` suffix and warnings, and the NRPE check's level.
//!
//! The file holds no secrets (errors are the engine's messages, which never carry them) and is 0644 so the
//! NRPE check, run as the nagios user, can read it. Writers hold the run lock ([`super::runlock`]); a write
//! is atomic (temp file + rename), so readers without the lock never see half a file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::charm::schedule::Schedule;

/// The version of the state file's format.
pub const FORMAT: u32 = 1;
/// How many runs `history` keeps.
const HISTORY: usize = 50;
/// The kinds the status and NRPE look at.
pub const BACKUP: &str = "backup";
pub const RETENTION: &str = "retention";
/// The kinds of replicate runs start with this, followed by the additional target's URL.
pub const REPLICA_PREFIX: &str = "replica ";

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Scheduled,
    Action,
}

/// One run of the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `backup`, `retention` (the scheduled deletion, or the remove-* actions), `restore`, `verify`, ...
    pub kind: String,
    pub trigger: Trigger,
    /// Epoch seconds.
    pub started: i64,
    pub finished: i64,
    pub ok: bool,
    /// Why it failed (one line), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Numbers worth keeping (backup statistics, files deleted, ...), by name.
    #[serde(default)]
    pub stats: BTreeMap<String, u64>,
    /// `full` or `incremental` for backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// When the scheduler (re)started with a schedule: the reference for "overdue" before any success.
    #[serde(default)]
    pub scheduler_started: Option<i64>,
    /// The last run of each kind, the last successful one, and the last scheduled one.
    #[serde(default)]
    pub last: BTreeMap<String, RunRecord>,
    #[serde(default)]
    pub last_ok: BTreeMap<String, RunRecord>,
    #[serde(default)]
    pub last_scheduled: BTreeMap<String, RunRecord>,
    /// The latest runs, newest last.
    #[serde(default)]
    pub history: Vec<RunRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            format: FORMAT,
            scheduler_started: None,
            last: BTreeMap::new(),
            last_ok: BTreeMap::new(),
            last_scheduled: BTreeMap::new(),
            history: Vec::new(),
        }
    }
}

impl State {
    /// Reads the state file; a missing one is an empty state.
    pub fn load(path: &Path) -> Result<State> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the state file (0644), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        super::reconcile::write_file(path, &self.to_bytes(), 0o644)?;
        Ok(())
    }

    /// The file's content.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn record(&mut self, run: RunRecord) {
        if run.ok {
            self.last_ok.insert(run.kind.clone(), run.clone());
        }
        if run.trigger == Trigger::Scheduled {
            self.last_scheduled.insert(run.kind.clone(), run.clone());
        }
        self.last.insert(run.kind.clone(), run.clone());
        self.history.push(run);
        let excess = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..excess);
    }
}

/// Loads, changes and saves the state file (the caller holds the run lock).
pub fn update(path: &Path, change: impl FnOnce(&mut State)) -> Result<()> {
    // A damaged file must not stop runs from being recorded: start again.
    let mut state = State::load(path).unwrap_or_default();
    change(&mut state);
    state.save(path)
}

/// How bad a finding is (Nagios' levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

/// One thing the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

/// The schedules the record is judged against (`None` = manual).
pub struct Schedules<'a> {
    pub backup: Option<&'a Schedule>,
    pub retention: Option<&'a Schedule>,
}

/// `3h`, `2d`, `45s`.
pub fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `1.2 GiB`, `512 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The first line of an error, at most 160 characters.
pub fn short_error(e: &str) -> String {
    let line = e.lines().next().unwrap_or("").trim();
    if line.chars().count() > 160 {
        format!("{}...", line.chars().take(157).collect::<String>())
    } else {
        line.to_string()
    }
}

/// What the last backup and retention runs say, judged at `now`: failures (`failed_level` says how bad;
/// the NRPE check counts only scheduled runs, the status every run), then overdue successes (older
/// than twice their schedule's period), then the facts. `scheduled_only` picks the NRPE view.
pub fn assess(
    state: &State,
    schedules: &Schedules,
    now: i64,
    scheduled_only: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let t = Utc.timestamp_opt(now, 0).single().unwrap_or_else(Utc::now);
    for (kind, schedule) in [(BACKUP, schedules.backup), (RETENTION, schedules.retention)] {
        let last = if scheduled_only {
            state.last_scheduled.get(kind)
        } else {
            state.last.get(kind)
        };
        if let Some(run) = last.filter(|r| !r.ok) {
            out.push(Finding {
                level: Level::Critical,
                text: format!(
                    "last {}{kind} failed {} ago: {}",
                    if run.trigger == Trigger::Scheduled {
                        "scheduled "
                    } else {
                        ""
                    },
                    ago(now - run.finished),
                    short_error(run.error.as_deref().unwrap_or("no reason recorded"))
                ),
            });
            continue;
        }
        let Some(schedule) = schedule else { continue };
        let Some(period) = schedule.period_after(&t) else {
            continue;
        };
        let reference = state
            .last_ok
            .get(kind)
            .map(|r| r.finished)
            .or(state.scheduler_started);
        if let Some(since) = reference {
            if now - since > 2 * period {
                let what = match state.last_ok.get(kind) {
                    Some(_) => format!("last successful {kind} {} ago", ago(now - since)),
                    None => format!("no successful {kind} in {}", ago(now - since)),
                };
                out.push(Finding {
                    level: Level::Warning,
                    text: format!("{what}, overdue (scheduled every {})", ago(period)),
                });
            }
        }
    }
    out.extend(replica_findings(state, now, scheduled_only));
    out
}

/// Each additional target whose last replicate failed: a warning (the backup itself is safe on the
/// main target), `replica <url> failed 5m ago: <why>`.
fn replica_findings(state: &State, now: i64, scheduled_only: bool) -> Vec<Finding> {
    let runs = if scheduled_only {
        &state.last_scheduled
    } else {
        &state.last
    };
    runs.iter()
        .filter(|(kind, run)| kind.starts_with(REPLICA_PREFIX) && !run.ok)
        .map(|(kind, run)| Finding {
            level: Level::Warning,
            text: format!(
                "{kind} failed {} ago: {}",
                ago(now - run.finished),
                short_error(run.error.as_deref().unwrap_or("no reason recorded"))
            ),
        })
        .collect()
}

/// The `; last backup 3h ago, 1.2 GiB` part of the status message.
pub fn last_backup_summary(state: &State, now: i64) -> String {
    match state.last_ok.get(BACKUP) {
        Some(r) => {
            let stored = r.stats.get("source-bytes").copied().unwrap_or(0);
            format!(
                "last backup {} ago, {}",
                ago(now - r.finished),
                size(stored)
            )
        }
        None => "no backup yet".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: &str, trigger: Trigger, finished: i64, ok: bool) -> RunRecord {
        RunRecord {
            kind: kind.into(),
            trigger,
            started: finished - 10,
            finished,
            ok,
            error: (!ok).then(|| "backup to file:///x failed: disk full\nmore".into()),
            stats: [("source-bytes".to_string(), 1_288_490_189)].into(),
            detail: None,
        }
    }

    const NOW: i64 = 1_715_768_430; // 2024-05-15 10:20:30 UTC

    #[test]
    fn failures_are_critical_overdue_is_a_warning() {
        let daily = Schedule::parse("0 0 * * *").unwrap();
        let hourly = Schedule::parse("40 * * * *").unwrap();
        let sch = Schedules {
            backup: Some(&daily),
            retention: Some(&hourly),
        };
        let mut st = State::default();
        assert!(assess(&st, &sch, NOW, true).is_empty(), "nothing yet");
        assert_eq!(last_backup_summary(&st, NOW), "no backup yet");
        st.record(run(BACKUP, Trigger::Scheduled, NOW - 3 * 3600, true));
        st.record(run(RETENTION, Trigger::Scheduled, NOW - 600, true));
        assert!(assess(&st, &sch, NOW, true).is_empty());
        assert_eq!(last_backup_summary(&st, NOW), "last backup 3h ago, 1.2 GiB");

        // A failed action run shows in the status view, not in the NRPE (scheduled) view.
        st.record(run(BACKUP, Trigger::Action, NOW - 60, false));
        let f = assess(&st, &sch, NOW, false);
        assert_eq!(f[0].level, Level::Critical);
        assert_eq!(
            f[0].text,
            "last backup failed 60s ago: backup to file:///x failed: disk full"
        );
        assert!(assess(&st, &sch, NOW, true).is_empty());
        st.record(run(BACKUP, Trigger::Scheduled, NOW - 30, false));
        assert_eq!(assess(&st, &sch, NOW, true)[0].level, Level::Critical);

        // Overdue: the last success is more than two periods old.
        let mut st = State::default();
        st.record(run(BACKUP, Trigger::Scheduled, NOW - 3 * 86400, true));
        let f = assess(&st, &sch, NOW, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Warning);
        assert_eq!(
            f[0].text,
            "last successful backup 3d ago, overdue (scheduled every 24h)"
        );
        // Before any success, the scheduler's start is the reference.
        let st = State {
            scheduler_started: Some(NOW - 3 * 3600),
            ..State::default()
        };
        let f = assess(&st, &sch, NOW, true);
        assert_eq!(
            f[0].text,
            "no successful retention in 3h, overdue (scheduled every 60m)"
        );
        // Manual schedules are never overdue.
        let manual = Schedules {
            backup: None,
            retention: None,
        };
        assert!(assess(&st, &manual, NOW, true).is_empty());
    }

    #[test]
    fn history_is_bounded_and_the_file_round_trips() {
        let mut st = State::default();
        for i in 0..60 {
            st.record(run(BACKUP, Trigger::Action, NOW + i, true));
        }
        assert_eq!(st.history.len(), HISTORY);
        assert_eq!(st.history.last().unwrap().finished, NOW + 59);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(State::load(&p).unwrap(), State::default());
        st.save(&p).unwrap();
        assert_eq!(State::load(&p).unwrap(), st);
        update(&p, |s| s.scheduler_started = Some(5)).unwrap();
        assert_eq!(State::load(&p).unwrap().scheduler_started, Some(5));
        assert_eq!(size(512), "512 B");
        assert_eq!(ago(90), "90s");
    }
}
