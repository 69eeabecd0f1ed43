//! NRPE on the `nrpe-external-master` relation, the way charms conventionally register a check (as
//! charm-helpers' nrpe support does): a `command[check_<name>]` line in `/etc/nagios/nrpe.d/check_<name>.cfg`,
//! a Nagios service definition in `/var/lib/nagios/export/service__<host>_check_<name>.cfg` when that
//! directory exists (host = `<nagios_context>-<unit with / as ->`), and the `monitors` YAML on the relation.
//! All of it goes when the relation does.
//!
//! The check is our own binary (`check-nrpe`), so nothing else is needed on the unit. NRPE runs it as the
//! nagios user, so it reads only the state file (0644, no secrets) and is given the schedules on its
//! command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::juju::{Event, HookTools, JujuContext, RelationKind};

use super::paths::{Paths, UnitFiles, NAGIOS_EXPORT_DIR, NRPE_DIR};
use super::reconcile::{remove_file, write_file};
use super::state::{self, Level, Schedules, State};
use super::system::System;

pub const ENDPOINT: &str = "nrpe-external-master";
const NRPE_SERVICE: &str = "nagios-nrpe-server";
const DESCRIPTION: &str = "duplicity backups and retention succeed and are on time";

/// The check's short name: one per unit, as two subordinate units can share a machine.
pub fn shortname(unit_slug: &str) -> String {
    format!("duplicity-{unit_slug}")
}

/// The check's files (real paths).
pub struct CheckFiles {
    pub command: String,
    pub nrpe_cfg: PathBuf,
    pub export_cfg: PathBuf,
    pub host: String,
}

pub fn check_files(unit_name: &str, context: &str) -> CheckFiles {
    let slug = unit_name.replace('/', "-");
    let command = format!("check_{}", shortname(&slug));
    let host = format!("{context}-{slug}");
    CheckFiles {
        nrpe_cfg: Path::new(NRPE_DIR).join(format!("{command}.cfg")),
        export_cfg: Path::new(NAGIOS_EXPORT_DIR).join(format!("service__{host}_{command}.cfg")),
        command,
        host,
    }
}

/// A value NRPE's shell can take as one argument.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the check needs: the schedules (`manual` or cron) and the context names.
pub struct CheckConfig<'a> {
    pub backup_schedule: &'a str,
    pub deletion_schedule: &'a str,
    pub nagios_context: &'a str,
    pub nagios_servicegroups: &'a str,
}

/// Registers or removes the check. `config` is `None` while the config is blocked: the files then stay
/// as they are (the last good schedules).
pub fn ensure(
    ctx: &JujuContext,
    tools: &dyn HookTools,
    sys: &dyn System,
    paths: &Paths,
    files: &UnitFiles,
    binary: &Path,
    config: Option<&CheckConfig>,
) -> Result<Vec<String>> {
    let leaving = match &ctx.event {
        Event::Relation {
            endpoint,
            kind: RelationKind::Broken,
        } if endpoint == ENDPOINT => ctx.relation_id.clone(),
        _ => None,
    };
    let ids: Vec<String> = tools
        .relation_ids(ENDPOINT)?
        .into_iter()
        .filter(|id| Some(id) != leaving.as_ref())
        .collect();
    let mut changes = Vec::new();
    // The files of every context this unit may have written: the current one is enough, as the
    // export file name carries the context and is rewritten below.
    let context = config.map_or("juju", |c| c.nagios_context);
    let cf = check_files(&ctx.unit_name, context);
    if ids.is_empty() {
        let mut removed = false;
        for f in [&cf.nrpe_cfg, &cf.export_cfg] {
            if remove_file(&paths.resolve(f))? {
                changes.push(format!("removed {}", f.display()));
                removed = true;
            }
        }
        removed |= remove_exports(paths, &cf.command, &mut changes)?;
        if removed {
            let _ = sys.systemctl(&["try-restart", NRPE_SERVICE])?;
        }
        return Ok(changes);
    }
    let Some(config) = config else {
        return Ok(changes);
    };
    let line = format!(
        "{} check-nrpe --state {} --backup-schedule {} --deletion-schedule {}",
        binary.display(),
        files.state_file.display(),
        quote(config.backup_schedule),
        quote(config.deletion_schedule)
    );
    let cfg = format!(
        "# Written by the duplicity charm for {}: {DESCRIPTION}.\ncommand[{}]={line}\n",
        ctx.unit_name, cf.command
    );
    let nrpe_cfg = paths.resolve(&cf.nrpe_cfg);
    if let Some(dir) = nrpe_cfg.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut restart = false;
    if write_file(&nrpe_cfg, cfg.as_bytes(), 0o644)? {
        changes.push(format!("wrote {}", cf.nrpe_cfg.display()));
        restart = true;
    }
    let export_dir = paths.resolve(NAGIOS_EXPORT_DIR);
    if export_dir.is_dir() {
        let groups = if config.nagios_servicegroups.trim().is_empty() {
            config.nagios_context
        } else {
            config.nagios_servicegroups
        };
        let service = format!(
            "# Written by the duplicity charm for {unit}.\n\
             define service {{\n\
             \x20   use                             active-service\n\
             \x20   host_name                       {host}\n\
             \x20   service_description             {host}[{short}] {DESCRIPTION}\n\
             \x20   check_command                   check_nrpe!{command}\n\
             \x20   servicegroups                   {groups}\n\
             }}\n",
            unit = ctx.unit_name,
            host = cf.host,
            short = shortname(&ctx.unit_slug()),
            command = cf.command,
        );
        // A changed nagios_context renames the file: drop the old one first.
        let export = paths.resolve(&cf.export_cfg);
        let keep = export.file_name().map(|n| n.to_os_string());
        for entry in std::fs::read_dir(&export_dir)?.flatten() {
            let name = entry.file_name();
            if Some(&name) != keep.as_ref()
                && name
                    .to_string_lossy()
                    .ends_with(&format!("_{}.cfg", cf.command))
            {
                remove_file(&entry.path())?;
            }
        }
        if write_file(&export, service.as_bytes(), 0o644)? {
            changes.push(format!("wrote {}", cf.export_cfg.display()));
        }
    }
    if restart {
        let _ = sys.systemctl(&["try-restart", NRPE_SERVICE])?;
        changes.push(format!("systemctl try-restart {NRPE_SERVICE}"));
    }
    let monitors = format!(
        "monitors:\n  remote:\n    nrpe:\n      {}:\n        command: {}\n",
        shortname(&ctx.unit_slug()),
        cf.command
    );
    for id in &ids {
        let data = BTreeMap::from([("monitors".to_string(), monitors.clone())]);
        tools.relation_set(id, &data)?;
    }
    Ok(changes)
}

/// Teardown: the check's files go (the relation itself goes with the unit).
pub fn remove(
    ctx: &JujuContext,
    sys: &dyn System,
    paths: &Paths,
    context: &str,
) -> Result<Vec<String>> {
    let cf = check_files(&ctx.unit_name, context);
    let mut changes = Vec::new();
    let mut removed = remove_file(&paths.resolve(&cf.nrpe_cfg))?;
    if removed {
        changes.push(format!("removed {}", cf.nrpe_cfg.display()));
    }
    removed |= remove_exports(paths, &cf.command, &mut changes)?;
    if removed {
        let _ = sys.systemctl(&["try-restart", NRPE_SERVICE])?;
    }
    Ok(changes)
}

/// Removes this check's export files of any context.
fn remove_exports(paths: &Paths, command: &str, changes: &mut Vec<String>) -> Result<bool> {
    let dir = paths.resolve(NAGIOS_EXPORT_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(false);
    };
    let mut removed = false;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("service__") && name.ends_with(&format!("_{command}.cfg")) {
            remove_file(&e.path())?;
            changes.push(format!("removed {NAGIOS_EXPORT_DIR}/{name}"));
            removed = true;
        }
    }
    Ok(removed)
}

/// The check itself: `(exit code, one line)` — 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
pub fn check(
    state_file: &Path,
    backup_schedule: &str,
    deletion_schedule: &str,
    now: i64,
) -> (i32, String) {
    use super::scheduler::parse_schedule;
    let (backup, retention) = match (
        parse_schedule(backup_schedule),
        parse_schedule(deletion_schedule),
    ) {
        (Ok(b), Ok(r)) => (b, r),
        (Err(e), _) | (_, Err(e)) => return (3, format!("UNKNOWN: {e:#}")),
    };
    // State::load takes a missing file for "no runs yet", which is right for the charm's own status
    // (it writes the file when it is configured), but here it would report OK on a machine where
    // nothing is set up to back up at all.
    if !state_file.exists() {
        return (
            3,
            format!(
                "UNKNOWN: the state file {} is missing: no backup is configured for this unit, or the charm has not set it up yet (it writes the file once its config is valid)",
                state_file.display()
            ),
        );
    }
    let st = match State::load(state_file) {
        Ok(s) => s,
        Err(e) => return (3, format!("UNKNOWN: {e:#}")),
    };
    let findings = state::assess(
        &st,
        &Schedules {
            backup: backup.as_ref(),
            retention: retention.as_ref(),
        },
        now,
        true,
    );
    let level = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
    let mut facts = vec![state::last_backup_summary(&st, now)];
    if let Some(r) = st.last_ok.get(state::RETENTION) {
        facts.push(format!(
            "last retention {} ago",
            state::ago(now - r.finished)
        ));
    }
    let mut parts: Vec<String> = findings.into_iter().map(|f| f.text).collect();
    parts.extend(facts);
    let (code, word) = match level {
        Level::Ok => (0, "OK"),
        Level::Warning => (1, "WARNING"),
        Level::Critical => (2, "CRITICAL"),
    };
    (code, format!("{word}: {}", parts.join("; ")))
}

/// `duplicity-charm check-nrpe --state FILE --backup-schedule CRON --deletion-schedule CRON`, as the
/// NRPE command the charm exports runs it.
#[derive(clap::Parser, Debug)]
#[command(name = "duplicity-charm check-nrpe")]
struct CheckArgs {
    #[arg(long, value_name = "FILE")]
    state: std::path::PathBuf,
    #[arg(long, default_value = "manual", value_name = "CRON")]
    backup_schedule: String,
    #[arg(long, default_value = "manual", value_name = "CRON")]
    deletion_schedule: String,
    /// Pretend the current time is EPOCH seconds (for tests).
    #[arg(long, value_name = "EPOCH")]
    current_time: Option<i64>,
}

/// The NRPE check face of the binary: prints one line, exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
/// (`args` starts with the program name, then `check-nrpe`).
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let a = match <CheckArgs as clap::Parser>::try_parse_from(args.into_iter().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            // NRPE reads any other code as UNKNOWN too, but say it plainly.
            return if e.use_stderr() { 3 } else { 0 };
        }
    };
    let now = a
        .current_time
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let (code, line) = check(&a.state, &a.backup_schedule, &a.deletion_schedule, now);
    println!("{line}");
    code
}
