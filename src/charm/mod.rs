//! The charm's decisions: config → [`config::CharmState`] or a blocked status, the reconcile of every
//! non-action hook, the teardown of `stop`/`remove`, and the actions. File and command effects go through the
//! `ensure_*` steps of [`reconcile`] (under an injectable root) and [`system::System`].
//!
//! Failure policy: a bad config never fails a hook (the unit is `blocked`, exit 0). A hook fails (non-zero,
//! so Juju retries it) only on a bug or an I/O failure, after `juju-log` of the cause.

pub mod actions;
pub mod backup_commands;
pub mod config;
pub mod cos;
pub mod jobs;
pub mod nrpe;
pub mod paths;
pub mod reconcile;
pub mod replicas;
pub mod runlock;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod settings;
pub mod state;
pub mod system;
pub mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cos;
#[cfg(test)]
mod tests_rate_limits;
#[cfg(test)]
mod tests_secrets;

use anyhow::Result;

use crate::juju::{Event, HookTools, JujuContext, LogLevel, RealHookTools, WorkloadStatus};
use config::{Encryption, RawConfig};
use paths::{Paths, UnitFiles};
use reconcile::Intent;
use system::{RealSystem, System};

/// The version `application-version-set` reports: the engine's, which is this crate's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The binary's path inside the charm directory (see `dispatch` and charmcraft.yaml).
pub const BINARY_IN_CHARM: &str = "bin/duplicity-charm";

/// The charm face of the binary: Juju's dispatch. Returns the exit code.
pub fn main() -> i32 {
    let ctx = match JujuContext::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("duplicity-charm: {e}");
            return 1;
        }
    };
    let tools = RealHookTools;
    match run(&ctx, &tools, &RealSystem, &Paths::from_env()) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("{} failed: {e:#}", ctx.dispatch_path);
            // Best effort: if juju-log itself fails, stderr still reaches the unit log.
            let _ = tools.juju_log(LogLevel::Error, &msg);
            eprintln!("duplicity-charm: {msg}");
            1
        }
    }
}

/// Handles one dispatch.
pub fn run(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    sys: &dyn System,
    paths: &Paths,
) -> Result<()> {
    match &ctx.event {
        Event::Action(name) => actions::run(ctx, tools, paths, name),
        e if e.is_teardown() => {
            let files = UnitFiles::new(&ctx.unit_slug());
            let mut changes = reconcile::teardown(paths, sys, &files)?;
            let raw = RawConfig::from_json(&tools.config_get()?).unwrap_or_default();
            changes.extend(nrpe::remove(ctx, sys, paths, &raw.nagios_context)?);
            for change in changes {
                tools.juju_log(LogLevel::Info, &change)?;
            }
            Ok(())
        }
        _ => reconcile_hook(ctx, tools, sys, paths),
    }
}

/// What to do with a file derived from one option: set when valid, removed when empty, left when invalid.
fn intent<T>(value: &str, check: impl FnOnce(&str) -> Result<T, String>) -> Intent<T> {
    if value.trim().is_empty() {
        Intent::Unset
    } else {
        check(value).map_or(Intent::Leave, Intent::Set)
    }
}

/// The holistic reconcile of every non-action hook.
fn reconcile_hook(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    sys: &dyn System,
    paths: &Paths,
) -> Result<()> {
    let config::Loaded {
        raw,
        credentials,
        validated,
    } = config::load(tools, &ctx.unit_name)?;
    let files = UnitFiles::new(&ctx.unit_slug());

    // Effects of single options apply whenever that option is valid, whatever the others say. The SSH
    // key comes from private_ssh_key_secret or private_ssh_key; an unreadable secret keeps the last file.
    let ssh_key = match (&credentials.private_ssh_key, credentials.ssh_key()) {
        (secrets::Credential::Unavailable, _) => Intent::Leave,
        (_, None) => Intent::Unset,
        (_, Some(checked)) => checked.map_or(Intent::Leave, Intent::Set),
    };
    let mut changes = reconcile::ensure_ssh_key(paths, &ssh_key)?;
    changes.extend(reconcile::ensure_known_host(
        paths,
        &files,
        &intent(&raw.known_host_key, validate::known_hosts_line),
    )?);
    let aux = raw.aux_backup_directory.trim();
    if aux.starts_with('/') {
        changes.extend(reconcile::ensure_aux_dir(paths, aux.as_ref())?);
    }
    changes.extend(reconcile::remove_old_cron(paths)?);
    changes.extend(reconcile::remove_python_charm_leftovers(paths)?);

    match &validated {
        Ok(state) => {
            changes.extend(reconcile::ensure_packages(sys, &state.backend)?);
            let settings = settings::Settings::new(state, &ctx.unit_name, &files);
            let key = match &state.encryption {
                Encryption::PublicKey(k) => Some(k.armored.as_str()),
                _ => None,
            };
            changes.extend(reconcile::ensure_settings(paths, &files, &settings, key)?);
            let unit = reconcile::unit_file_content(
                &ctx.unit_name,
                &ctx.charm_dir.join(BINARY_IN_CHARM),
                &files,
            );
            let upgraded = ctx.event == Event::UpgradeCharm;
            changes.extend(reconcile::ensure_scheduler(
                paths, sys, &files, &unit, upgraded,
            )?);
        }
        Err(_) => changes.extend(reconcile::disable_scheduler(paths, sys, &files)?),
    }
    let check = validated.as_ref().ok().map(|state| nrpe::CheckConfig {
        backup_schedule: state.backup_frequency_cron(),
        deletion_schedule: state.deletion_cron.as_deref().unwrap_or("manual"),
        nagios_context: &state.raw.nagios_context,
        nagios_servicegroups: &state.raw.nagios_servicegroups,
    });
    changes.extend(nrpe::ensure(
        ctx,
        tools,
        sys,
        paths,
        &files,
        &ctx.charm_dir.join(BINARY_IN_CHARM),
        check.as_ref(),
    )?);
    changes.extend(cos::relation::ensure(
        ctx,
        tools,
        validated.as_ref().ok().map(|s| s.job.metrics_port),
    )?);
    for change in &changes {
        tools.juju_log(LogLevel::Info, change)?;
    }
    tools.application_version_set(VERSION)?;

    match validated {
        Ok(state) => {
            tools.status_set(
                WorkloadStatus::Active,
                &active_message(&state, paths, &files),
            )?;
        }
        Err(problems) => {
            for p in &problems {
                tools.juju_log(LogLevel::Warning, &format!("blocked: {p}"))?;
            }
            tools.status_set(WorkloadStatus::Blocked, &blocked_message(&problems))?;
        }
    }
    Ok(())
}

/// The `active` message: what is set up, the last backup, and first any warning from the record of runs
/// (a failed or overdue backup or retention). Those stay `active` on purpose: the config is fine and the
/// scheduler keeps trying, `blocked` is kept for what the operator must change in the config, and the
/// NRPE check is what alerts. A record that cannot be read is itself the warning.
pub fn active_message(state: &config::CharmState, paths: &Paths, files: &UnitFiles) -> String {
    use crate::charm::schedule::Schedule;
    let ready = state.ready_message();
    let record = match state::State::load(&paths.resolve(&files.state_file)) {
        Ok(r) => r,
        Err(e) => return format!("WARNING: {e:#} | {ready}"),
    };
    let backup = state
        .backup_frequency
        .cron()
        .and_then(|c| Schedule::parse(&c).ok());
    let retention = state
        .deletion_cron
        .as_deref()
        .and_then(|c| Schedule::parse(c).ok());
    let now = chrono::Utc::now().timestamp();
    let findings = state::assess(
        &record,
        &state::Schedules {
            backup: backup.as_ref(),
            retention: retention.as_ref(),
        },
        now,
        false,
    );
    let summary = format!(
        "{ready}; {}{}",
        state::last_backup_summary(&record, now),
        next_run_summary(backup.as_ref(), retention.as_ref())
    );
    if findings.is_empty() {
        summary
    } else {
        let texts: Vec<String> = findings.into_iter().map(|f| f.text).collect();
        format!("WARNING: {} | {summary}", texts.join("; "))
    }
}

/// The `; next backup in 5h` part of the status message: when the next scheduled backup is due (or,
/// with manual backups, the next retention run); empty when nothing is scheduled.
fn next_run_summary(
    backup: Option<&schedule::Schedule>,
    retention: Option<&schedule::Schedule>,
) -> String {
    let now = chrono::Local::now();
    let (kind, schedule) = match (backup, retention) {
        (Some(b), _) => ("backup", b),
        (None, Some(r)) => ("retention", r),
        (None, None) => return String::new(),
    };
    match schedule.next_after(&now) {
        Some(t) => format!(
            "; next {kind} in {}",
            state::ago((t - now).num_seconds() + 1)
        ),
        None => String::new(),
    }
}

/// Sets the unit status from the config and the record (actions use it after a backup or retention).
pub fn set_status(ctx: &JujuContext, tools: &dyn HookTools, paths: &Paths) -> Result<()> {
    let files = UnitFiles::new(&ctx.unit_slug());
    match config::load(tools, &ctx.unit_name)?.validated {
        Ok(state) => tools.status_set(
            WorkloadStatus::Active,
            &active_message(&state, paths, &files),
        )?,
        Err(problems) => tools.status_set(WorkloadStatus::Blocked, &blocked_message(&problems))?,
    }
    Ok(())
}

/// The first problem, and how many more there are (all of them are in the log).
pub fn blocked_message(problems: &[config::Problem]) -> String {
    match problems {
        [] => String::new(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (+{} more in juju debug-log)", first.message, rest.len()),
    }
}
