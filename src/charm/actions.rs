//! The charm's actions: their parameters (kept in step with actions.yaml by a test, and checked again here
//! because a unit can be driven without the controller's schema check), and the handlers that run the
//! engine in-process from the settings file, log progress with `action-log`, return results with
//! `action-set` and fail with `action-fail` naming the cause and the fix.
//!
//! Every handler first refuses to run while the config is blocked, then takes the run lock (waiting a
//! bounded time for a scheduled run), runs, records the outcome in the state file, and lets go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::engine::commands::backup::VolumeProgress;
use crate::engine::commands::restore::RestoreProgress;
use crate::engine::commands::retention::RetentionCommand;
use crate::engine::error::{Error as EngineError, ErrorKind};
use crate::engine::index::Index;
use crate::engine::timestr;
use crate::juju::{HookTools, JujuContext, LogLevel};

use super::config;
use super::jobs::{Outcome, RestoreSecret, Runtime};
use super::paths::{Paths, UnitFiles, RESTORE_ROOT};
use super::runlock::{self, LockError};
use super::settings::EncryptionSettings;
use super::state::{self, RunRecord, Trigger};

/// A parameter's JSON type, as actions.yaml declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Bool,
    Str,
    /// An integer with a minimum.
    Int(i64),
    /// A string or a number (duplicity times may be epoch seconds).
    StrOrNumber,
}

/// One parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
}

const fn p(name: &'static str, kind: ParamType) -> Param {
    Param {
        name,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, kind: ParamType) -> Param {
    Param {
        name,
        kind,
        required: true,
    }
}

const BACKUP: &[Param] = &[p("full", ParamType::Bool)];
const RESTORE: &[Param] = &[
    p("time", ParamType::Str),
    p("path", ParamType::Str),
    p("target", ParamType::Str),
    p("force", ParamType::Bool),
    p("secret-key", ParamType::Str),
];
const COUNT: &[Param] = &[
    req("count", ParamType::Int(1)),
    p("dry-run", ParamType::Bool),
];

/// Every action and its parameters, in actions.yaml order.
pub const SPECS: &[(&str, &[Param])] = &[
    ("backup", BACKUP),
    ("do-backup", BACKUP),
    ("restore", RESTORE),
    ("verify", &[p("compare-data", ParamType::Bool)]),
    ("list-current-files", &[p("time", ParamType::Str)]),
    ("collection-status", &[]),
    (
        "remove-older-than",
        &[
            req("time", ParamType::StrOrNumber),
            p("dry-run", ParamType::Bool),
        ],
    ),
    ("remove-all-but-n-full", COUNT),
    ("remove-all-inc-of-but-n-full", COUNT),
    ("cleanup", &[p("dry-run", ParamType::Bool)]),
];

/// Every action and its parameter names, in actions.yaml order.
pub fn actions() -> Vec<(&'static str, Vec<&'static str>)> {
    SPECS
        .iter()
        .map(|(a, ps)| (*a, ps.iter().map(|p| p.name).collect()))
        .collect()
}

/// Checks params against an action's spec: unknown keys, types, minimums, required keys. Returns a
/// message naming the parameter and what it takes.
pub fn check_params(
    action: &str,
    spec: &[Param],
    params: &Map<String, Value>,
) -> Result<(), String> {
    for k in params.keys() {
        if !spec.iter().any(|p| p.name == k) {
            let known: Vec<&str> = spec.iter().map(|p| p.name).collect();
            return Err(format!(
                "{action} has no parameter \"{k}\" (it takes: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    for p in spec {
        let v = params.get(p.name).filter(|v| !v.is_null());
        let Some(v) = v else {
            if p.required {
                return Err(format!("{} is required: pass {}=...", p.name, p.name));
            }
            continue;
        };
        let ok = match p.kind {
            ParamType::Bool => v.is_boolean(),
            ParamType::Str => v.is_string(),
            ParamType::StrOrNumber => v.is_string() || v.is_number(),
            ParamType::Int(min) => v.as_i64().is_some_and(|n| n >= min),
        };
        if !ok {
            let want = match p.kind {
                ParamType::Bool => "true or false".to_string(),
                ParamType::Str => "a string".to_string(),
                ParamType::StrOrNumber => {
                    "a duplicity time (a string or epoch seconds)".to_string()
                }
                ParamType::Int(min) => format!("an integer of at least {min}"),
            };
            return Err(format!("{} must be {want}, not {v}", p.name));
        }
    }
    Ok(())
}

fn flag(params: &Map<String, Value>, k: &str) -> bool {
    params.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn string<'a>(params: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    params
        .get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A failed action: the message for `action-fail` (cause, then the fix).
struct Failure(String);

type Step<T> = std::result::Result<T, Failure>;

/// Runs the action `name`. Hook tool failures are errors (the dispatch fails); everything the operator
/// can fix is an `action-fail`.
pub fn run(ctx: &JujuContext, tools: &dyn HookTools, paths: &Paths, name: &str) -> Result<()> {
    let Some((_, spec)) = SPECS.iter().find(|(a, _)| *a == name) else {
        tools.action_fail(&format!(
            "unknown action \"{name}\": this charm's actions are {}",
            SPECS.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
        ))?;
        return Ok(());
    };
    match prepare(ctx, tools, paths, name, spec)? {
        Ok((rt, params)) => run_locked(ctx, tools, paths, name, &rt, &params),
        Err(Failure(msg)) => {
            tools.action_fail(&msg)?;
            Ok(())
        }
    }
}

/// Params checked, config not blocked, settings loaded.
fn prepare(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    paths: &Paths,
    name: &str,
    spec: &[Param],
) -> Result<Step<(Runtime, Map<String, Value>)>> {
    let params = tools.action_get()?;
    if let Err(why) = check_params(name, spec, &params) {
        return Ok(Err(Failure(format!(
            "invalid parameters: {why} (see `juju show-action {} {name}`)",
            ctx.unit_name.split('/').next().unwrap_or("duplicity")
        ))));
    }
    if let Err(problems) = config::load(tools, &ctx.unit_name)?.validated {
        return Ok(Err(Failure(format!(
            "the charm is blocked, so {name} cannot run: {}. Fix the config with `juju config`, then run {name} again",
            super::blocked_message(&problems)
        ))));
    }
    let files = UnitFiles::new(&ctx.unit_slug());
    let settings = paths.resolve(&files.settings);
    if !settings.exists() {
        return Ok(Err(Failure(format!(
            "the settings file {} is not written yet: wait until `juju status` shows the unit active, then run {name} again",
            files.settings.display()
        ))));
    }
    let mut rt = Runtime::load(&settings, paths.clone())?;
    if let Some(id) = string(&params, "secret-key") {
        match check_secret_key(tools, &rt, id)? {
            Ok(secret) => rt.secret = secret,
            Err(f) => return Ok(Err(f)),
        }
    } else if name == "restore"
        && matches!(rt.settings.encryption, EncryptionSettings::PublicKey { .. })
    {
        return Ok(Err(Failure(
            "the backups are encrypted to gpg_public_key, so restore needs its private key: store it in a Juju secret (`juju add-secret restore-key key#file=<armored private key> passphrase=<its passphrase>`, then `juju grant-secret restore-key <application>`) and pass secret-key=<secret ID>".into(),
        )));
    }
    Ok(Ok((rt, params)))
}

/// The kind an action's run is recorded under.
fn record_kind(name: &str, dry_run: bool) -> String {
    match name {
        "backup" | "do-backup" => state::BACKUP.into(),
        "remove-older-than" | "remove-all-but-n-full" | "remove-all-inc-of-but-n-full"
            if !dry_run =>
        {
            state::RETENTION.into()
        }
        other => other.into(),
    }
}

fn run_locked(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    paths: &Paths,
    name: &str,
    rt: &Runtime,
    params: &Map<String, Value>,
) -> Result<()> {
    let wait = runlock::wait_from_env(runlock::ACTION_WAIT);
    let lock = match runlock::acquire(&rt.lock_file(), wait, &format!("the {name} action")) {
        Ok(l) => l,
        Err(e @ LockError::Busy { .. }) => {
            tools.action_fail(&format!(
                "busy: {e}. Run {name} again when it has finished (the unit runs one backup job at a time)"
            ))?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let started = chrono::Utc::now().timestamp();
    let result = with_progress(tools, |log| job(name, rt, params, paths, log));
    let finished = chrono::Utc::now().timestamp();
    let dry_run = flag(params, "dry-run");
    let (ok, error, outcome) = match &result {
        Ok(Ok(o)) => (true, None, o.clone()),
        Ok(Err(Failure(m))) => (false, Some(m.clone()), Outcome::default()),
        Err(e) => (false, Some(format!("{e:#}")), Outcome::default()),
    };
    state::update(&rt.state_file(), |s| {
        s.record(RunRecord {
            kind: record_kind(name, dry_run),
            trigger: Trigger::Action,
            started,
            finished,
            ok,
            error: error.as_deref().map(state::short_error),
            stats: outcome.stats.clone(),
            detail: outcome.detail.clone(),
        })
    })?;
    runlock::test_hold();
    drop(lock);
    match result {
        Ok(Ok(o)) => set_results(tools, &o.results)?,
        Ok(Err(Failure(msg))) => tools.action_fail(&msg)?,
        Err(e) => tools.action_fail(&format!("{name} failed: {e:#}. {}", hint(name, &e)))?,
    }
    if matches!(
        record_kind(name, dry_run).as_str(),
        state::BACKUP | state::RETENTION
    ) {
        // The operator just ran it: show the outcome now rather than at the next update-status.
        super::set_status(ctx, tools, paths)?;
    }
    Ok(())
}

/// What to do about a failed run.
/// What to do about a failed action: from the engine error's kind when it has one, else by action.
fn hint(name: &str, e: &anyhow::Error) -> &'static str {
    if let Some(c) = e
        .chain()
        .find_map(|c| c.downcast_ref::<super::backup_commands::CommandError>())
    {
        return match c.option {
            super::backup_commands::PRE => "Its output is in the action log and juju debug-log: fix the command (pre_backup_command), or raise backup_command_timeout if it needs longer, then run backup again",
            _ => "Its output is in the action log and juju debug-log: fix the command (post_backup_command), or raise backup_command_timeout if it needs longer, then run backup again",
        };
    }
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<EngineError>())
        .map(EngineError::kind);
    match kind {
        Some(ErrorKind::WrongKey) => return "The backups at the target were made with another encryption_passphrase or key: set the one they were made with (`juju config`, or the secret encryption_passphrase_secret names), or for public-key backups pass the right secret-key to restore; after changing the passphrase on purpose, start a new chain with backup full=true",
        Some(ErrorKind::AuthRefused) => return "The target refused the credentials: check remote_user, remote_password, private_ssh_key or the cloud credentials with `juju config`, then run the action again",
        Some(ErrorKind::Unreachable) => return "The target could not be reached: check the network and that the server is up, then run the action again",
        Some(ErrorKind::Busy) => return "Another run is using the backups: run the action again when it has finished",
        Some(ErrorKind::Corrupt) => return "A stored file is damaged: run verify and collection-status, and a full backup (backup full=true) to start a new chain",
        Some(ErrorKind::BadInput) => return "Check the action's parameters and the charm's config",
        _ => {}
    }
    match name {
        "backup" | "do-backup" => "Check that aux_backup_directory is readable and the target reachable and writable (juju debug-log has the details), then run backup again",
        "restore" => "Check the time and path with list-current-files and that the target is writable, then run restore again",
        "verify" => "Run collection-status to check the backup chain, and backup to start a new one if it is damaged",
        _ => "Check that the target is reachable (collection-status), then run the action again",
    }
}

/// `action-set` in batches (one argument list has a size limit).
fn set_results(tools: &dyn HookTools, results: &BTreeMap<String, String>) -> Result<()> {
    let mut batch = BTreeMap::new();
    let mut size = 0;
    for (k, v) in results {
        if !batch.is_empty() && (batch.len() >= 100 || size + v.len() > 256 * 1024) {
            tools.action_set(&std::mem::take(&mut batch))?;
            size = 0;
        }
        size += k.len() + v.len();
        batch.insert(k.clone(), v.clone());
    }
    if !batch.is_empty() {
        tools.action_set(&batch)?;
    }
    Ok(())
}

/// Runs `work` on a thread of its own while this thread sends its progress lines to `action-log` (the
/// hook tools are not shared with the engine's threads).
fn with_progress<T: Send>(
    tools: &dyn HookTools,
    work: impl FnOnce(Sender<String>) -> T + Send,
) -> T {
    let (tx, rx) = channel::<String>();
    std::thread::scope(|s| {
        let h = s.spawn(move || work(tx));
        for line in rx {
            // Progress is best effort: a failing action-log must not fail the backup.
            let _ = tools.action_log(&line);
            if super::backup_commands::is_command_line(&line) {
                let _ = tools.juju_log(LogLevel::Info, &line);
            }
        }
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

fn job(
    name: &str,
    rt: &Runtime,
    params: &Map<String, Value>,
    paths: &Paths,
    log: Sender<String>,
) -> Result<Step<Outcome>> {
    let now = chrono::Utc::now().timestamp();
    let time_param = |k: &str| -> Step<i64> {
        let t = match params.get(k) {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => return Ok(now),
        };
        timestr::parse_time(&t, now).map_err(|e| {
            Failure(format!(
                "invalid parameters: {k} {t:?} is not a duplicity time ({e}): use now, an ISO date such as 2024-06-01T12:00:00Z, epoch seconds, or an interval such as 3D"
            ))
        })
    };
    let dry_run = flag(params, "dry-run");
    let count = params.get("count").and_then(Value::as_u64).unwrap_or(1) as usize;
    let outcome = match name {
        "backup" | "do-backup" => {
            // A selection that cannot be built fails the backup itself, with its message.
            let total = rt.selection().map_or(0, |sel| {
                crate::engine::commands::backup::source_size(&rt.source(), &sel)
            });
            let _ = log.send(format!(
                "backing up {} ({}) to {}",
                rt.settings.source,
                state::size(total),
                rt.settings.url
            ));
            let commands_log = log.clone();
            let tx = std::sync::Mutex::new(log);
            let progress = Arc::new(move |p: &VolumeProgress| {
                let line = format!(
                    "volume {} stored ({}): {} stored so far, {} of {} read",
                    p.volume,
                    state::size(p.volume_bytes),
                    state::size(p.stored_bytes),
                    state::size(p.source_bytes.min(total.max(p.source_bytes))),
                    state::size(total.max(p.source_bytes))
                );
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(line);
                }
            });
            let mut out =
                rt.backup_with_commands(flag(params, "full"), Some(progress), &mut |line| {
                    let _ = commands_log.send(line);
                })?;
            // Then the additional targets; their failures are results, never the action's failure.
            out.results.extend(
                rt.replicate_after_backup(state::Trigger::Action, &mut |line| {
                    let _ = commands_log.send(line);
                }),
            );
            out
        }
        "restore" => return restore(rt, params, paths, log, time_param("time")),
        "verify" => rt.verify(flag(params, "compare-data"))?,
        "list-current-files" => match time_param("time") {
            Ok(t) => rt.list_current_files(t)?,
            Err(f) => return Ok(Err(f)),
        },
        "collection-status" => rt.collection_status()?,
        "remove-older-than" => match time_param("time") {
            Ok(t) => rt.retention(RetentionCommand::RemoveOlderThan { time: t }, dry_run)?,
            Err(f) => return Ok(Err(f)),
        },
        "remove-all-but-n-full" => {
            rt.retention(RetentionCommand::RemoveAllButNFull { n: count }, dry_run)?
        }
        "remove-all-inc-of-but-n-full" => rt.retention(
            RetentionCommand::RemoveAllIncOfButNFull { n: count },
            dry_run,
        )?,
        "cleanup" => rt.retention(RetentionCommand::Cleanup, dry_run)?,
        other => unreachable!("no handler for the declared action {other}"),
    };
    Ok(Ok(outcome))
}

/// A restore path: relative to the backup's root, no `..`.
fn restore_path(p: &str) -> Step<Option<Index>> {
    let rel = p.trim_start_matches("./").trim_end_matches('/');
    if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(Failure(format!(
            "invalid parameters: path {p:?} must be relative to the backup's root without \"..\" (e.g. etc/app.conf): see list-current-files"
        )));
    }
    if rel.is_empty() || rel == "." {
        return Ok(None);
    }
    Index::parse(rel.as_bytes())
        .map(|i| (!i.is_root()).then_some(i))
        .map_err(|e| Failure(format!("invalid parameters: path {p:?}: {e}")))
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

fn restore(
    rt: &Runtime,
    params: &Map<String, Value>,
    paths: &Paths,
    log: Sender<String>,
    time: Step<i64>,
) -> Result<Step<Outcome>> {
    let time = match time {
        Ok(t) => t,
        Err(f) => return Ok(Err(f)),
    };
    let path_param = string(params, "path");
    let path = match path_param.map(restore_path).transpose() {
        Ok(p) => p.flatten(),
        Err(f) => return Ok(Err(f)),
    };
    let force = flag(params, "force");
    let target: PathBuf = match string(params, "target") {
        Some(t) if !t.starts_with('/') => {
            return Ok(Err(Failure(format!(
                "invalid parameters: target {t:?} is not an absolute path: give a directory such as /srv/restore, or leave target out for a new directory under {RESTORE_ROOT}"
            ))))
        }
        Some(t) => PathBuf::from(t),
        None => Path::new(RESTORE_ROOT).join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()),
    };
    // A path is put back at the same place under the target (so target=<live dir> force=true puts a
    // file back where it was).
    let shown = match &path {
        Some(p) => target.join(String::from_utf8_lossy(p.as_bytes()).as_ref()),
        None => target.clone(),
    };
    let on_disk = paths.resolve(&shown);
    if let Ok(md) = std::fs::symlink_metadata(&on_disk) {
        let occupied = !md.is_dir() || !is_empty_dir(&on_disk);
        if occupied && !force {
            return Ok(Err(Failure(format!(
                "the restore target {} {}: restore into a new directory (leave target out), or run with force=true to overwrite what is there",
                shown.display(),
                if md.is_dir() { "is not empty" } else { "exists" }
            ))));
        }
    }
    let _ = log.send(format!(
        "restoring {} as of {} into {}",
        path_param.unwrap_or("everything"),
        timestr::format_timestamp(time),
        shown.display()
    ));
    let tx = std::sync::Mutex::new(log);
    let progress = Arc::new(move |p: &RestoreProgress| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(format!(
                "volume {} of {} restored, {} written",
                p.done,
                p.volumes,
                state::size(p.bytes)
            ));
        }
    });
    // The engine refuses any existing target without force; an empty directory is fine here.
    let engine_force = force || on_disk.is_dir();
    let mut out = rt.restore(time, path, &on_disk, engine_force, Some(progress))?;
    out.results
        .insert("target".into(), shown.display().to_string());
    out.results
        .insert("path".into(), path_param.unwrap_or(".").to_string());
    out.results
        .insert("time".into(), timestr::format_timestamp(time));
    Ok(Ok(out))
}

/// Reads the restore action's `secret-key` secret (keys `key` and `passphrase`) and checks that the key
/// unlocks. Nothing of its content ever reaches a message: only the secret's ID and the key's fingerprint.
/// With passphrase-encrypted or unencrypted backups the key is not needed and is ignored.
fn check_secret_key(
    tools: &dyn HookTools,
    rt: &Runtime,
    id: &str,
) -> Result<Step<Option<RestoreSecret>>> {
    let content = match tools.secret_get(id) {
        Ok(c) => c,
        Err(e) => {
            let why = if e.to_string().contains("not found") {
                "not found, or not granted to this application"
            } else {
                "cannot be read"
            };
            return Ok(Err(Failure(format!(
                "secret-key {id}: the secret is {why}: create it with `juju add-secret <name> key#file=<private key file> passphrase=<passphrase>` and `juju grant-secret <name> <application>`, then pass its ID"
            ))));
        }
    };
    let Some(key) = content.get("key") else {
        return Ok(Err(Failure(format!(
            "secret-key {id}: the secret has no \"key\" (it has: {}): store the armored private key under \"key\"",
            content.keys().cloned().collect::<Vec<_>>().join(", ")
        ))));
    };
    let passphrase = content.get("passphrase").cloned().unwrap_or_default();
    let fingerprint = match super::validate::gpg_secret_key(key, &passphrase) {
        Ok(f) => f,
        Err(why) => return Ok(Err(Failure(format!("secret-key {id}: the key {why}")))),
    };
    let not_needed = match rt.settings.encryption {
        EncryptionSettings::PublicKey { .. } => None,
        EncryptionSettings::None => Some("not encrypted"),
        EncryptionSettings::Passphrase { .. } => Some("encrypted with encryption_passphrase"),
    };
    if let Some(how) = not_needed {
        tools.action_log(&format!(
            "secret-key {id} (key {fingerprint}) is not needed: these backups are {how}"
        ))?;
        return Ok(Ok(None));
    }
    tools.action_log(&format!(
        "using the private key {fingerprint} from secret-key {id}"
    ))?;
    Ok(Ok(Some(RestoreSecret {
        armored: key.clone(),
        passphrase,
    })))
}
