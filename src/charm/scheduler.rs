//! `duplicity-charm scheduler --settings FILE`: the long-running service the charm installs. It fires
//! backups on `backup_schedule` and retention on `deletion_schedule` (both from the settings file, in the
//! machine's local time, as cron did), reloads the settings when the charm rewrites them, and records
//! every run in the state file. A run takes the run lock, so it never overlaps an action; it waits up to
//! [`runlock::SCHEDULER_WAIT`] for one, then records the run as failed (busy).
//!
//! Missed runs: when the scheduler starts, a backup or retention whose last fire time passed since the
//! last scheduled run of that kind (or, before any, since the scheduler's first start) runs once, at
//! once: it was due while the unit was down or the scheduler stopped (systemd's `Persistent=true`).
//! However many fire times were missed, that is one run; without any record (a new unit) nothing is
//! caught up. While running, after a run (or a wait) the next time is computed from now, so a run that
//! outlasts a fire time does not make another one.
//! Test only (cargo feature `test-hooks`): with `DUPLICITY_CHARM_TEST_SECOND_SCHEDULES=1`, schedules are
//! 6-field expressions with seconds first and the settings are polled every 100 ms.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Local};

use super::cos::metrics;
use super::schedule::Schedule;

use super::jobs::{Outcome, Runtime};
use super::paths::Paths;
use super::runlock::{self, LockError};
use super::state::{self, RunRecord, Trigger};

/// Whether the test-only seconds schedules are on.
#[cfg(feature = "test-hooks")]
pub fn seconds_mode() -> bool {
    std::env::var("DUPLICITY_CHARM_TEST_SECOND_SCHEDULES").is_ok_and(|v| v == "1")
}

#[cfg(not(feature = "test-hooks"))]
pub fn seconds_mode() -> bool {
    false
}

/// A settings schedule: `manual` (None) or a cron expression.
pub fn parse_schedule(s: &str) -> Result<Option<Schedule>> {
    let s = s.trim();
    if s.is_empty() || s == "manual" {
        return Ok(None);
    }
    #[cfg(feature = "test-hooks")]
    let parsed = if seconds_mode() && s.split_whitespace().count() == 6 {
        Schedule::parse_with_seconds(s)
    } else {
        Schedule::parse(s)
    };
    #[cfg(not(feature = "test-hooks"))]
    let parsed = Schedule::parse(s);
    parsed
        .map(Some)
        .with_context(|| format!("schedule {s:?} is not a cron expression"))
}

fn log(msg: &str) {
    // journald adds the time; the unit name is in the service name.
    eprintln!("{msg}");
}

/// What the scheduler is running on.
struct Loaded {
    bytes: Vec<u8>,
    rt: Runtime,
    backup: Option<Schedule>,
    retention: Option<Schedule>,
}

fn load(path: &Path, paths: &Paths) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let rt = Runtime::load(path, paths.clone())?;
    let schedule = |s: &Option<String>| parse_schedule(s.as_deref().unwrap_or("manual"));
    let backup = schedule(&rt.settings.backup_schedule)?;
    let retention = if rt.settings.has_scheduled_retention() {
        schedule(&rt.settings.deletion_schedule)?
    } else {
        None
    };
    Ok(Loaded {
        bytes,
        rt,
        backup,
        retention,
    })
}

/// Runs for ever (until killed). Errors only when the settings file is unusable at start.
pub fn run(settings_file: &Path) -> Result<()> {
    let paths = Paths::from_env();
    let poll = if seconds_mode() {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(5)
    };
    let settings_file: PathBuf = settings_file.to_path_buf();
    let mut loaded = load(&settings_file, &paths)?;
    let started = chrono::Utc::now().timestamp();
    let metrics_view = Arc::new(Mutex::new(view_of(&loaded, started)));
    {
        let view = Arc::clone(&metrics_view);
        std::thread::spawn(move || metrics::serve(view, log));
    }
    announce(&loaded);
    catch_up(&loaded);
    let mut next_backup = next(&loaded.backup);
    let mut next_retention = next(&loaded.retention);
    loop {
        std::thread::sleep(poll);
        // Reload when the charm rewrote the settings (a blocked config stops this service instead).
        match std::fs::read(&settings_file) {
            Ok(b) if b != loaded.bytes => match load(&settings_file, &paths) {
                Ok(l) => {
                    loaded = l;
                    if let Ok(mut v) = metrics_view.lock() {
                        *v = view_of(&loaded, started);
                    }
                    log("settings changed: reloaded");
                    announce(&loaded);
                    next_backup = next(&loaded.backup);
                    next_retention = next(&loaded.retention);
                }
                Err(e) => log(&format!(
                    "settings changed but cannot be used: {e:#}; keeping the previous ones"
                )),
            },
            Ok(_) => {}
            Err(e) => log(&format!(
                "cannot read {}: {e}; keeping the previous settings",
                settings_file.display()
            )),
        }
        let now = Local::now();
        if next_backup.is_some_and(|t| t <= now) {
            fire(&loaded.rt, state::BACKUP, scheduled_backup);
            next_backup = next(&loaded.backup);
        }
        let now = Local::now();
        if next_retention.is_some_and(|t| t <= now) {
            fire(&loaded.rt, state::RETENTION, Runtime::scheduled_retention);
            next_retention = next(&loaded.retention);
        }
    }
}

/// What the metrics endpoint shows of the scheduler.
fn view_of(l: &Loaded, started: i64) -> metrics::SchedulerView {
    metrics::SchedulerView {
        state_file: l.rt.state_file(),
        port: l.rt.settings.metrics_port,
        backup: l.backup.clone(),
        retention: l.retention.clone(),
        started,
    }
}

/// The scheduled backup: with the operator's commands around it, their output to the journal.
fn scheduled_backup(rt: &Runtime) -> Result<Outcome> {
    let mut out = rt.backup_with_commands(false, None, &mut |line| log(&line))?;
    // Then the additional targets; their failures are recorded apart and never fail the backup.
    out.results.extend(
        rt.replicate_after_backup(crate::charm::state::Trigger::Scheduled, &mut |line| {
            log(&line)
        }),
    );
    Ok(out)
}

/// The fire time a scheduler that starts at `now` has missed: the last one at or before `now`, when it
/// is later than `since` (the last scheduled run's start, or the scheduler's first start). None without
/// a schedule or a reference.
pub fn missed(
    schedule: Option<&Schedule>,
    since: Option<i64>,
    now: &DateTime<Local>,
) -> Option<DateTime<Local>> {
    let due = schedule?.last_at_or_before(now)?;
    (due.timestamp() > since?).then_some(due)
}

/// At start: runs once each kind whose fire time was missed (see the module's doc).
fn catch_up(l: &Loaded) {
    let record = match state::State::load(&l.rt.state_file()) {
        Ok(r) => r,
        Err(e) => {
            log(&format!(
                "cannot read the record of runs, so no missed run is caught up: {e:#}"
            ));
            return;
        }
    };
    let mut missed_any = false;
    for (kind, schedule) in [(state::BACKUP, &l.backup), (state::RETENTION, &l.retention)] {
        let since = record
            .last_scheduled
            .get(kind)
            .map(|r| r.started)
            .or(record.scheduler_started);
        let Some(due) = missed(schedule.as_ref(), since, &Local::now()) else {
            continue;
        };
        missed_any = true;
        log(&format!(
            "missed run: the {kind} due at {} did not run (the unit was down or the scheduler stopped): running it now",
            due.to_rfc3339()
        ));
        if kind == state::BACKUP {
            fire(&l.rt, kind, scheduled_backup);
        } else {
            fire(&l.rt, kind, Runtime::scheduled_retention);
        }
    }
    if !missed_any {
        log("missed runs: none");
    }
}

fn next(s: &Option<Schedule>) -> Option<DateTime<Local>> {
    s.as_ref().and_then(|s| s.next_after(&Local::now()))
}

/// Logs the schedule and notes the start in the state file (the reference for "overdue").
fn announce(l: &Loaded) {
    let show = |s: &Option<Schedule>| {
        s.as_ref()
            .map_or("manual".to_string(), |s| s.expression().to_string())
    };
    log(&format!(
        "scheduler for {}: backups {}, retention {}; next backup {}, next retention {}",
        l.rt.settings.unit,
        show(&l.backup),
        show(&l.retention),
        next(&l.backup).map_or("never".into(), |t| t.to_rfc3339()),
        next(&l.retention).map_or("never".into(), |t| t.to_rfc3339()),
    ));
    if l.backup.is_none() && l.retention.is_none() {
        return;
    }
    let wait = runlock::wait_from_env(runlock::SCHEDULER_WAIT);
    match runlock::acquire(&l.rt.lock_file(), wait, "the scheduler starting") {
        Ok(_lock) => {
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = state::update(&l.rt.state_file(), |s| {
                s.scheduler_started.get_or_insert(now);
            }) {
                log(&format!("cannot record the scheduler's start: {e:#}"));
            }
        }
        Err(e) => log(&format!("cannot record the scheduler's start: {e}")),
    }
}

/// One scheduled run: lock, run, record.
fn fire(rt: &Runtime, kind: &str, work: impl FnOnce(&Runtime) -> Result<Outcome>) {
    let wait = runlock::wait_from_env(runlock::SCHEDULER_WAIT);
    let started = chrono::Utc::now().timestamp();
    let lock = runlock::acquire(&rt.lock_file(), wait, &format!("a scheduled {kind}"));
    let (result, lock) = match lock {
        Ok(l) => {
            log(&format!("scheduled {kind} starting"));
            (work(rt), Some(l))
        }
        Err(e @ LockError::Busy { .. }) => (Err(anyhow::anyhow!("busy: {e}")), None),
        Err(e) => (Err(e.into()), None),
    };
    let finished = chrono::Utc::now().timestamp();
    let record = match &result {
        Ok(o) => RunRecord {
            kind: kind.into(),
            trigger: Trigger::Scheduled,
            started,
            finished,
            ok: true,
            error: None,
            stats: o.stats.clone(),
            detail: o.detail.clone(),
        },
        Err(e) => RunRecord {
            kind: kind.into(),
            trigger: Trigger::Scheduled,
            started,
            finished,
            ok: false,
            error: Some(state::short_error(&format!("{e:#}"))),
            stats: Default::default(),
            detail: None,
        },
    };
    match &result {
        Ok(o) => log(&format!(
            "scheduled {kind} done in {}s{}",
            finished - started,
            o.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
        Err(e) => log(&format!("scheduled {kind} FAILED: {e:#}")),
    }
    // Busy means another run holds the lock and is writing the file; recording then is still safe
    // because every write is a whole-file rename, but take the lock when we can.
    if let Err(e) = state::update(&rt.state_file(), |s| s.record(record)) {
        log(&format!("cannot record the {kind} run: {e:#}"));
    }
    if lock.is_some() {
        runlock::test_hold();
    }
    drop(lock);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_is_no_schedule_and_bad_ones_are_errors() {
        assert!(parse_schedule("manual").unwrap().is_none());
        assert_eq!(
            parse_schedule("0 23 * * *").unwrap().unwrap().expression(),
            "0 23 * * *"
        );
        assert!(parse_schedule("often").is_err());
    }

    #[test]
    fn a_missed_fire_time_is_found_once_and_only_with_a_reference() {
        use chrono::TimeZone;
        let daily = Schedule::parse("0 3 * * *").unwrap();
        let now = Local.with_ymd_and_hms(2024, 5, 15, 10, 0, 0).unwrap();
        let due = Local.with_ymd_and_hms(2024, 5, 15, 3, 0, 0).unwrap();
        let epoch = |d: u32, h: u32| {
            Local
                .with_ymd_and_hms(2024, 5, d, h, 0, 0)
                .unwrap()
                .timestamp()
        };
        // Down for three days: the last of the missed times, once.
        assert_eq!(missed(Some(&daily), Some(epoch(12, 3)), &now), Some(due));
        // Today's run happened (started at or after its time): nothing.
        assert_eq!(missed(Some(&daily), Some(due.timestamp()), &now), None);
        assert_eq!(missed(Some(&daily), Some(epoch(15, 4)), &now), None);
        // No record at all (a new unit), or manual: nothing.
        assert_eq!(missed(Some(&daily), None, &now), None);
        assert_eq!(missed(None, Some(epoch(1, 0)), &now), None);
    }
}

/// `duplicity-charm scheduler --settings FILE`, as the systemd service runs it.
#[derive(clap::Parser, Debug)]
#[command(name = "duplicity-charm scheduler")]
struct SchedulerArgs {
    /// The unit's settings file.
    #[arg(long, value_name = "FILE")]
    settings: PathBuf,
}

/// The scheduler face of the binary (`args` starts with the program name, then `scheduler`).
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let parsed = match <SchedulerArgs as clap::Parser>::try_parse_from(args.into_iter().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(&parsed.settings) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("duplicity-charm scheduler: error: {e:#}");
            1
        }
    }
}
