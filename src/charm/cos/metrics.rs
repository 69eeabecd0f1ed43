//! The scheduler's Prometheus endpoint: `GET /metrics` on 127.0.0.1:`metrics_port`, rendered at each
//! scrape from the record of runs (`state.json`, which every backup and retention run writes, scheduled
//! or from an action) and the scheduler's schedules.
//!
//! The server is a minimal std `TcpListener` responder rather than hyper (which is in the tree through
//! the SDKs but async, on a runtime the scheduler does not have): it binds 127.0.0.1 only, answers one
//! connection at a time, reads at most [`MAX_REQUEST`] bytes with a timeout, and serves only
//! `GET /metrics`. The scrape is local (the agent is a subordinate on the same machine) and every few
//! seconds at most, so one at a time is enough.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local};

use crate::charm::schedule::Schedule;
use crate::charm::state::{self, RunRecord, State, Trigger};

/// The largest request head read; a scrape's is a few hundred bytes.
pub const MAX_REQUEST: usize = 8192;
/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the server looks for a connection or a changed port.
const POLL: Duration = Duration::from_millis(200);

/// What the scheduler tells the endpoint, updated when it reloads its settings.
#[derive(Debug, Clone, Default)]
pub struct SchedulerView {
    pub state_file: PathBuf,
    /// `metrics_port`; 0 = no endpoint.
    pub port: u16,
    pub backup: Option<Schedule>,
    pub retention: Option<Schedule>,
    /// Epoch seconds when this scheduler process started.
    pub started: i64,
}

/// The expected gap between two fire times of a schedule, in seconds (from the next two fire times).
fn interval_seconds(s: &Schedule, now: &DateTime<Local>) -> Option<i64> {
    let a = s.next_after(now)?;
    let b = s.next_after(&a)?;
    Some((b - a).num_seconds())
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(out: &mut String, name: &str, kind: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Writes one gauge family with its samples (nothing when there are none, so an unknown value is an
/// absent series, not a misleading 0).
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(Vec<(&str, &str)>, f64)]) {
    if samples.is_empty() {
        return;
    }
    Family::head(out, name, "gauge", help);
    let mut f = Family { out };
    for (labels, v) in samples {
        f.sample(name, labels, *v);
    }
}

/// The backup kinds a run counts for: `any`, its trigger (`scheduled`/`action`) and, when it got that
/// far, its type (`full`/`incremental`).
fn backup_kinds(r: &RunRecord) -> Vec<&str> {
    let mut kinds = vec![
        "any",
        match r.trigger {
            Trigger::Scheduled => "scheduled",
            Trigger::Action => "action",
        },
    ];
    if let Some(d) = r.detail.as_deref() {
        if d == "full" || d == "incremental" {
            kinds.push(d);
        }
    }
    kinds
}

/// The metrics text (Prometheus exposition format 0.0.4). `state` is the record of runs, or why it
/// could not be read.
pub fn render(
    state: Result<&State, String>,
    view: &SchedulerView,
    now: &DateTime<Local>,
) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "duplicity_scheduler_up",
        "1 while the duplicity-charm scheduler serves this endpoint.",
        &[(vec![], 1.0)],
    );
    gauge(
        &mut out,
        "duplicity_scheduler_start_timestamp_seconds",
        "When the scheduler process started.",
        &[(vec![], view.started as f64)],
    );
    let next = |s: &Option<Schedule>| s.as_ref().and_then(|s| s.next_after(now));
    let mut next_runs = Vec::new();
    if let Some(t) = next(&view.backup) {
        next_runs.push((vec![("kind", "backup")], t.timestamp() as f64));
    }
    if let Some(t) = next(&view.retention) {
        next_runs.push((vec![("kind", "retention")], t.timestamp() as f64));
    }
    gauge(
        &mut out,
        "duplicity_next_run_timestamp_seconds",
        "When the next scheduled backup or retention run is due (absent when manual).",
        &next_runs,
    );
    let interval = view
        .backup
        .as_ref()
        .and_then(|s| interval_seconds(s, now))
        .unwrap_or(0);
    gauge(
        &mut out,
        "duplicity_backup_interval_seconds",
        "The expected time between scheduled backups (backup_frequency); 0 when manual.",
        &[(vec![], interval as f64)],
    );
    let state = match state {
        Ok(s) => s,
        Err(_) => {
            gauge(
                &mut out,
                "duplicity_state_readable",
                "1 when the record of runs (state.json) could be read.",
                &[(vec![], 0.0)],
            );
            return out;
        }
    };
    gauge(
        &mut out,
        "duplicity_state_readable",
        "1 when the record of runs (state.json) could be read.",
        &[(vec![], 1.0)],
    );

    // The latest backup and latest successful backup of each kind: the history (oldest first), then
    // the `last`/`last_ok` records, which outlive the history's window.
    let mut last: BTreeMap<&str, &RunRecord> = BTreeMap::new();
    let mut last_ok: BTreeMap<&str, &RunRecord> = BTreeMap::new();
    let backups = state
        .history
        .iter()
        .chain(state.last_scheduled.get(state::BACKUP))
        .chain(state.last.get(state::BACKUP))
        .chain(state.last_ok.get(state::BACKUP))
        .filter(|r| r.kind == state::BACKUP);
    for r in backups {
        for k in backup_kinds(r) {
            if last.get(k).is_none_or(|p| p.finished <= r.finished) {
                last.insert(k, r);
            }
            if r.ok && last_ok.get(k).is_none_or(|p| p.finished <= r.finished) {
                last_ok.insert(k, r);
            }
        }
    }
    fn per<'a>(
        m: &BTreeMap<&'a str, &RunRecord>,
        f: &dyn Fn(&RunRecord) -> Option<f64>,
    ) -> Vec<(Vec<(&'static str, &'a str)>, f64)> {
        m.iter()
            .filter_map(|(k, r)| f(r).map(|v| (vec![("kind", *k)], v)))
            .collect()
    }
    let stat = |name: &'static str| move |r: &RunRecord| r.stats.get(name).map(|&v| v as f64);
    gauge(
        &mut out,
        "duplicity_backup_last_result",
        "The result of the last backup of this kind: 1 succeeded, 0 failed.",
        &per(&last, &|r| Some(if r.ok { 1.0 } else { 0.0 })),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_run_timestamp_seconds",
        "When the last backup of this kind finished, successful or not.",
        &per(&last, &|r| Some(r.finished as f64)),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_success_timestamp_seconds",
        "When the last successful backup of this kind finished.",
        &per(&last_ok, &|r| Some(r.finished as f64)),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_duration_seconds",
        "How long the last successful backup of this kind took.",
        &per(&last_ok, &|r| Some((r.finished - r.started) as f64)),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_source_files",
        "Files in the backed-up directory at the last successful backup of this kind.",
        &per(&last_ok, &stat("source-files")),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_source_bytes",
        "Bytes in the backed-up directory at the last successful backup of this kind.",
        &per(&last_ok, &stat("source-bytes")),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_changed_files",
        "New and changed files the last successful backup of this kind stored.",
        &per(&last_ok, &|r| {
            Some((r.stats.get("new-files")? + r.stats.get("changed-files")?) as f64)
        }),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_stored_bytes",
        "Bytes the last successful backup of this kind added to the target.",
        &per(&last_ok, &stat("stored-bytes")),
    );
    gauge(
        &mut out,
        "duplicity_backup_last_volumes",
        "Volumes the last successful backup of this kind wrote.",
        &per(&last_ok, &stat("volumes")),
    );

    let retention = state.last.get(state::RETENTION);
    let retention_ok = state.last_ok.get(state::RETENTION);
    let one = |v: Option<f64>| v.map(|v| vec![(vec![], v)]).unwrap_or_default();
    gauge(
        &mut out,
        "duplicity_retention_last_result",
        "The result of the last retention run (scheduled or remove-* action): 1 succeeded, 0 failed.",
        &one(retention.map(|r| if r.ok { 1.0 } else { 0.0 })),
    );
    gauge(
        &mut out,
        "duplicity_retention_last_run_timestamp_seconds",
        "When the last retention run finished, successful or not.",
        &one(retention.map(|r| r.finished as f64)),
    );
    gauge(
        &mut out,
        "duplicity_retention_last_success_timestamp_seconds",
        "When the last successful retention run finished.",
        &one(retention_ok.map(|r| r.finished as f64)),
    );
    // Sets in the current chain, from this unit's record: the last full backup and the incrementals
    // after it. Unknown (absent) when that full is no longer in the history's window.
    let ok_backups: Vec<&RunRecord> = state
        .history
        .iter()
        .filter(|r| r.kind == state::BACKUP && r.ok)
        .collect();
    let chain_sets = ok_backups
        .iter()
        .rposition(|r| r.detail.as_deref() == Some("full"))
        .map(|i| ok_backups.len() - i);
    gauge(
        &mut out,
        "duplicity_chain_sets",
        "Backup sets (the full and its incrementals) in the current chain, as this unit's last 50 runs tell.",
        &one(chain_sets.map(|v| v as f64)),
    );
    // Set by the jobs that list the target (status, retention); absent until one ran.
    let chains = state
        .history
        .iter()
        .rev()
        .find_map(|r| r.stats.get("chains").copied());
    gauge(
        &mut out,
        "duplicity_chains",
        "Backup chains on the target at the last run that listed it.",
        &one(chains.map(|v| v as f64)),
    );
    replica_metrics(&mut out, state);
    out
}

/// One series per additional target (`additional_backup_urls`), labelled `target`.
fn replica_metrics(out: &mut String, state: &State) {
    let target = |kind: &str| kind.strip_prefix(state::REPLICA_PREFIX).map(str::to_string);
    let per = |map: &BTreeMap<String, RunRecord>, f: &dyn Fn(&RunRecord) -> Option<f64>| {
        map.iter()
            .filter_map(|(k, r)| Some((target(k)?, f(r)?)))
            .collect::<Vec<(String, f64)>>()
    };
    fn samples(v: &[(String, f64)]) -> Vec<(Vec<(&str, &str)>, f64)> {
        v.iter()
            .map(|(t, x)| (vec![("target", t.as_str())], *x))
            .collect()
    }
    let result = per(&state.last, &|r| Some(if r.ok { 1.0 } else { 0.0 }));
    gauge(
        out,
        "duplicity_replica_last_result",
        "The result of the last replicate to this additional target: 1 succeeded, 0 failed.",
        &samples(&result),
    );
    let run = per(&state.last, &|r| Some(r.finished as f64));
    gauge(
        out,
        "duplicity_replica_last_run_timestamp_seconds",
        "When the last replicate to this additional target finished, successful or not.",
        &samples(&run),
    );
    let success = per(&state.last_ok, &|r| Some(r.finished as f64));
    gauge(
        out,
        "duplicity_replica_last_success_timestamp_seconds",
        "When the last successful replicate to this additional target finished.",
        &samples(&success),
    );
    let bytes = per(&state.last_ok, &|r| {
        r.stats.get("stored-bytes").map(|v| *v as f64)
    });
    gauge(
        out,
        "duplicity_replica_last_stored_bytes",
        "Bytes the last successful replicate stored on this additional target.",
        &samples(&bytes),
    );
}

/// Answers one connection: `GET /metrics` gets the metrics, anything else an error status.
fn answer(mut stream: TcpStream, view: &SchedulerView) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= MAX_REQUEST {
            return respond(&mut stream, "431 Request Header Fields Too Large", "");
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let state = State::load(&view.state_file).map_err(|e| format!("{e:#}"));
            let body = render(state.as_ref().map_err(Clone::clone), view, &Local::now());
            respond(&mut stream, "200 OK", &body)
        }
        (Some(b"GET"), _) => respond(&mut stream, "404 Not Found", "only /metrics is served\n"),
        _ => respond(&mut stream, "405 Method Not Allowed", "only GET\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Serves the endpoint for ever, on the port `view` names (re-binding when it changes, none while 0).
/// `log` gets binding problems, which never stop the scheduler.
pub fn serve(view: Arc<Mutex<SchedulerView>>, log: fn(&str)) {
    let mut bound: Option<(u16, TcpListener)> = None;
    let mut failed_port = None;
    loop {
        let snapshot = view.lock().map(|v| v.clone()).unwrap_or_default();
        if bound.as_ref().map(|(p, _)| *p) != Some(snapshot.port) {
            bound = None;
            if snapshot.port != 0 {
                let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, snapshot.port);
                match TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|_| l)) {
                    Ok(l) => {
                        log(&format!("metrics: serving http://{addr}/metrics"));
                        bound = Some((snapshot.port, l));
                        failed_port = None;
                    }
                    Err(e) => {
                        // Logged once per port; retried each poll (the port may free up).
                        if failed_port != Some(snapshot.port) {
                            log(&format!(
                                "metrics: cannot listen on {addr}: {e}; set metrics_port to a free port"
                            ));
                            failed_port = Some(snapshot.port);
                        }
                    }
                }
            }
        }
        match bound.as_ref().map(|(_, l)| l.accept()) {
            Some(Ok((stream, _))) => {
                let _ = stream.set_nonblocking(false);
                if let Err(e) = answer(stream, &snapshot) {
                    log(&format!("metrics: a scrape failed: {e}"));
                }
            }
            Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Some(Err(e)) => {
                log(&format!("metrics: accept failed: {e}"));
                std::thread::sleep(POLL);
            }
            None => std::thread::sleep(POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::state::RunRecord;

    fn run(trigger: Trigger, finished: i64, ok: bool, detail: Option<&str>) -> RunRecord {
        RunRecord {
            kind: state::BACKUP.into(),
            trigger,
            started: finished - 30,
            finished,
            ok,
            error: (!ok).then(|| "boom".into()),
            stats: if ok {
                [
                    ("source-files", 12),
                    ("source-bytes", 3400),
                    ("new-files", 2),
                    ("changed-files", 1),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            } else {
                Default::default()
            },
            detail: detail.map(Into::into),
        }
    }

    #[test]
    fn metrics_carry_each_kind_and_failures_only_where_they_count() {
        let mut s = State::default();
        s.record(run(Trigger::Scheduled, 1000, true, Some("full")));
        s.record(run(Trigger::Action, 2000, true, Some("incremental")));
        s.record(run(Trigger::Scheduled, 3000, false, None));
        s.record(run(Trigger::Scheduled, 4000, true, Some("incremental")));
        let view = SchedulerView {
            started: 500,
            backup: Some(Schedule::parse("0 3 * * *").unwrap()),
            ..Default::default()
        };
        let text = render(Ok(&s), &view, &Local::now());
        for line in [
            "duplicity_scheduler_up 1",
            "duplicity_backup_interval_seconds 86400",
            "duplicity_backup_last_result{kind=\"any\"} 1",
            "duplicity_backup_last_result{kind=\"scheduled\"} 1",
            "duplicity_chain_sets 3",
            "duplicity_backup_last_result{kind=\"action\"} 1",
            "duplicity_backup_last_result{kind=\"full\"} 1",
            "duplicity_backup_last_success_timestamp_seconds{kind=\"any\"} 4000",
            "duplicity_backup_last_success_timestamp_seconds{kind=\"action\"} 2000",
            "duplicity_backup_last_success_timestamp_seconds{kind=\"full\"} 1000",
            "duplicity_backup_last_duration_seconds{kind=\"incremental\"} 30",
            "duplicity_backup_last_source_bytes{kind=\"any\"} 3400",
            "duplicity_backup_last_changed_files{kind=\"any\"} 3",
            "duplicity_state_readable 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        assert!(text.contains("duplicity_next_run_timestamp_seconds{kind=\"backup\"} "));
        // No retention ran: absent, not 0.
        assert!(!text.contains("duplicity_retention_last_result"));
        // A failed scheduled backup: `any` and `scheduled` say so, the successes stay.
        s.record(run(Trigger::Scheduled, 5000, false, None));
        let text = render(Ok(&s), &view, &Local::now());
        for line in [
            "duplicity_backup_last_result{kind=\"any\"} 0",
            "duplicity_backup_last_result{kind=\"scheduled\"} 0",
            "duplicity_backup_last_result{kind=\"action\"} 1",
            "duplicity_backup_last_run_timestamp_seconds{kind=\"any\"} 5000",
            "duplicity_backup_last_success_timestamp_seconds{kind=\"any\"} 4000",
            "duplicity_chain_sets 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // A new full starts a new chain.
        s.record(run(Trigger::Scheduled, 6000, true, Some("full")));
        let text = render(Ok(&s), &view, &Local::now());
        assert!(text.contains("\nduplicity_chain_sets 1\n"), "{text}");
    }

    #[test]
    fn an_unreadable_record_is_a_metric_not_an_error() {
        let text = render(Err("bad".into()), &SchedulerView::default(), &Local::now());
        assert!(text.contains("duplicity_state_readable 0\n"));
        assert!(text.contains("duplicity_backup_interval_seconds 0\n"));
    }
}
