//! The idempotent `ensure_*` steps that bring the machine in line with the config, and the teardown of
//! `stop`/`remove`. Each step returns what it changed (paths and commands, never contents) for the log;
//! running a step twice changes nothing the second time.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::paths::{
    Paths, UnitFiles, KNOWN_HOSTS, NAGIOS_EXPORT_DIR, OLD_CRON_FILES, OLD_NRPE_CFG,
    OLD_NRPE_COMMAND, OLD_NRPE_PLUGIN, OLD_NRPE_PLUGINS, OLD_RUN_FILES, SSH_DIR, SSH_KEY,
    STATE_DIR_MODE,
};
use super::settings::Settings;
use super::system::System;

/// What to do with a file derived from one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent<T> {
    /// The option is set and valid.
    Set(T),
    /// The option is empty: remove what we wrote for it.
    Unset,
    /// The option is invalid: the unit is blocked; keep what is there.
    Leave,
}

/// Writes `content` with `mode` unless the file already has both; atomic (temp file + rename).
/// Returns whether anything changed.
pub fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<bool> {
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o7777 == mode && fs::read(path).is_ok_and(|c| c == content)
        {
            return Ok(false);
        }
    }
    let tmp = temp_beside(path, content, mode)?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(true)
}

/// A temporary file beside `path` holding `content` with `mode`, ready to be persisted there. It is
/// created 0600, so a secret is never readable by others, even for a moment.
fn temp_beside(path: &Path, content: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().context("a file path has a parent")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".duplicity-charm-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, content)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(tmp)
}

/// Writes `content` with `mode` only if nothing is at `path` yet, atomically (a run that records its
/// outcome meanwhile wins). Returns whether it wrote.
fn write_new_file(path: &Path, content: &[u8], mode: u32) -> Result<bool> {
    let tmp = temp_beside(path, content, mode)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Creates a directory (and its parents) and gives it `mode`. Returns whether anything changed.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<bool> {
    let mut changed = false;
    if !path.is_dir() {
        fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
        changed = true;
    }
    let current = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        changed = true;
    }
    Ok(changed)
}

/// Removes a file if it exists. Returns whether it existed.
pub fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `private_ssh_key` → `/root/.ssh/duplicity_id_rsa` (0600, directory 0700), removed when unset.
pub fn ensure_ssh_key(paths: &Paths, key: &Intent<String>) -> Result<Vec<String>> {
    let file = paths.resolve(SSH_KEY);
    let mut changes = Vec::new();
    match key {
        Intent::Set(k) => {
            if ensure_dir(&paths.resolve(SSH_DIR), 0o700)? {
                changes.push(format!("created {SSH_DIR} (0700)"));
            }
            if write_file(&file, k.as_bytes(), 0o600)? {
                changes.push(format!("wrote {SSH_KEY} (0600)"));
            }
        }
        Intent::Unset => {
            if remove_file(&file)? {
                changes.push(format!("removed {SSH_KEY}"));
            }
        }
        Intent::Leave => {}
    }
    Ok(changes)
}

/// `known_host_key` → one line of `/root/.ssh/known_hosts`, added once; the line this unit added earlier is
/// replaced when the option changes and removed when it is unset. Other lines are never touched, and a line
/// that was there before us is never removed (we only record lines we appended).
pub fn ensure_known_host(
    paths: &Paths,
    files: &UnitFiles,
    line: &Intent<String>,
) -> Result<Vec<String>> {
    if *line == Intent::Leave {
        return Ok(Vec::new());
    }
    let record_path = paths.resolve(&files.known_hosts_record);
    let ours = read_optional(&record_path)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let kh_path = paths.resolve(KNOWN_HOSTS);
    let existing = read_optional(&kh_path)?;
    let mut lines: Vec<String> = existing
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::to_string)
        .collect();
    let wanted = match line {
        Intent::Set(l) => Some(l.as_str()),
        _ => None,
    };
    let mut changes = Vec::new();
    let mut recorded = ours.clone();
    if let Some(old) = ours.as_deref().filter(|o| Some(*o) != wanted) {
        lines.retain(|l| l.trim() != old);
        recorded = None;
        changes.push(format!(
            "removed the line this unit had added to {KNOWN_HOSTS}"
        ));
    }
    if let Some(w) = wanted {
        if !lines.iter().any(|l| l.trim() == w) {
            lines.push(w.to_string());
            recorded = Some(w.to_string());
            changes.push(format!("added known_host_key to {KNOWN_HOSTS}"));
        }
    }
    let mut content = lines.join("\n");
    if !content.is_empty() {
        content.push('\n');
    }
    if existing.as_deref().unwrap_or("") != content {
        ensure_dir(&paths.resolve(SSH_DIR), 0o700)?;
        let mode = fs::metadata(&kh_path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        write_file(&kh_path, content.as_bytes(), mode)?;
    }
    if recorded != ours {
        match recorded {
            Some(r) => {
                ensure_dir(&paths.resolve(&files.state_dir), STATE_DIR_MODE)?;
                write_file(&record_path, format!("{r}\n").as_bytes(), 0o600)?;
            }
            None => {
                remove_file(&record_path)?;
            }
        }
    }
    Ok(changes)
}

/// `aux_backup_directory` created if missing (its mode is left alone: it holds the operator's data).
pub fn ensure_aux_dir(paths: &Paths, dir: &Path) -> Result<Vec<String>> {
    let on_disk = paths.resolve(dir);
    if on_disk.is_dir() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(&on_disk).with_context(|| format!("cannot create {}", on_disk.display()))?;
    Ok(vec![format!("created {}", dir.display())])
}

/// The Python charm's cron files, replaced by our scheduler.
pub fn remove_old_cron(paths: &Paths) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    for f in OLD_CRON_FILES {
        if remove_file(&paths.resolve(f))? {
            changes.push(format!("removed the Python charm's {f}"));
        }
    }
    Ok(changes)
}

/// The rest of the Python charm on the machine: its NRPE check `check_backups` (only when the nrpe.d file
/// runs its plugin, so a check of that name from another charm stays), the exported Nagios service of
/// that check, its plugins and the error files they read. Our own check replaces it. Its SSH key and
/// known_hosts stay: our charm uses the same paths.
pub fn remove_python_charm_leftovers(paths: &Paths) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let cfg = paths.resolve(OLD_NRPE_CFG);
    let ours_before = read_optional(&cfg)?.is_some_and(|c| c.contains(OLD_NRPE_PLUGIN));
    if ours_before && remove_file(&cfg)? {
        changes.push(format!(
            "removed the Python charm's NRPE check {OLD_NRPE_CFG}"
        ));
        let export = paths.resolve(NAGIOS_EXPORT_DIR);
        let suffix = format!("_{OLD_NRPE_COMMAND}.cfg");
        for entry in fs::read_dir(&export).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("service__")
                && name.ends_with(&suffix)
                && remove_file(&entry.path())?
            {
                changes.push(format!(
                    "removed the Python charm's Nagios service {NAGIOS_EXPORT_DIR}/{name}"
                ));
            }
        }
    }
    for f in OLD_NRPE_PLUGINS.iter().chain(OLD_RUN_FILES) {
        if remove_file(&paths.resolve(f))? {
            changes.push(format!("removed the Python charm's {f}"));
        }
    }
    Ok(changes)
}

/// The programs a backend runs: rsync needs rsync and ssh, scp/sftp need ssh. Installs what is missing.
pub fn ensure_packages(sys: &dyn System, backend: &str) -> Result<Vec<String>> {
    let needs: &[(&str, &str)] = match backend {
        "rsync" => &[("rsync", "rsync"), ("ssh", "openssh-client")],
        "scp" | "sftp" => &[("ssh", "openssh-client")],
        _ => &[],
    };
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(cmd, _)| !sys.has_command(cmd))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    sys.apt_install(&missing)?;
    Ok(vec![format!("installed {}", missing.join(" "))])
}

/// The settings file (0600, directory 0711) and the armored public key beside it (removed when unused).
pub fn ensure_settings(
    paths: &Paths,
    files: &UnitFiles,
    settings: &Settings,
    public_key: Option<&str>,
) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    if ensure_dir(&paths.resolve(&files.state_dir), STATE_DIR_MODE)? {
        changes.push(format!("created {} (0711)", files.state_dir.display()));
    }
    if write_file(&paths.resolve(&files.settings), &settings.to_bytes(), 0o600)? {
        changes.push(format!("wrote {} (0600)", files.settings.display()));
    }
    // The NRPE check reports UNKNOWN while the state file is missing: once configured, an empty
    // record says "no backup yet" instead.
    let state_file = paths.resolve(&files.state_file);
    if !state_file.exists()
        && write_new_file(
            &state_file,
            &super::state::State::default().to_bytes(),
            0o644,
        )?
    {
        changes.push(format!("wrote {}", files.state_file.display()));
    }
    // The archive dir holds decrypted manifests and the names of every backed-up file: 0700 inside
    // the 0711 state dir (the engine makes its own directory in it 0700 too).
    if ensure_dir(
        &paths.resolve(files.state_dir.join(super::paths::ARCHIVE_DIR)),
        0o700,
    )? {
        changes.push(format!(
            "created {} (0700)",
            files.state_dir.join(super::paths::ARCHIVE_DIR).display()
        ));
    }
    let key_path = paths.resolve(&files.gpg_public_key);
    match public_key {
        Some(k) => {
            if write_file(&key_path, k.as_bytes(), 0o600)? {
                changes.push(format!("wrote {}", files.gpg_public_key.display()));
            }
        }
        None => {
            if remove_file(&key_path)? {
                changes.push(format!("removed {}", files.gpg_public_key.display()));
            }
        }
    }
    Ok(changes)
}

/// The systemd unit of `duplicity-charm scheduler` for this unit.
pub fn unit_file_content(juju_unit: &str, binary: &Path, files: &UnitFiles) -> String {
    format!(
        "# Written by the duplicity charm for {juju_unit}; it is rewritten on every hook.\n\
         [Unit]\n\
         Description=duplicity-charm scheduler for Juju unit {juju_unit}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={} scheduler --settings {}\n\
         Restart=on-failure\n\
         RestartSec=60\n\
         UMask=0077\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        binary.display(),
        files.settings.display()
    )
}

/// Writes the unit file, reloads systemd when it changed, and keeps the scheduler enabled and running:
/// enabled and started when it is not enabled, restarted when its unit file changed or `new_binary`
/// says the charm was upgraded (a running scheduler still runs the binary it started from, which may
/// not read the settings the new charm writes; it reloads a changed settings file by itself), started
/// when it is not running.
pub fn ensure_scheduler(
    paths: &Paths,
    sys: &dyn System,
    files: &UnitFiles,
    content: &str,
    new_binary: bool,
) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let path = paths.resolve(&files.unit_file);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let rewritten = write_file(&path, content.as_bytes(), 0o644)?;
    if rewritten {
        changes.push(format!("wrote {}", files.unit_file.display()));
        systemctl(sys, &["daemon-reload"])?;
        changes.push("systemctl daemon-reload".into());
    }
    let unit = files.unit_name.as_str();
    if !sys.systemctl(&["is-enabled", "--quiet", unit])? {
        systemctl(sys, &["enable", "--now", unit])?;
        changes.push(format!("systemctl enable --now {unit}"));
    } else if rewritten || new_binary {
        systemctl(sys, &["restart", unit])?;
        changes.push(format!("systemctl restart {unit}"));
    } else if !sys.systemctl(&["is-active", "--quiet", unit])? {
        systemctl(sys, &["start", unit])?;
        changes.push(format!("systemctl start {unit}"));
    }
    Ok(changes)
}

/// Stops and disables the scheduler when its unit file exists and it is enabled (a blocked config must
/// not fire backups with the last good settings).
pub fn disable_scheduler(
    paths: &Paths,
    sys: &dyn System,
    files: &UnitFiles,
) -> Result<Vec<String>> {
    if !paths.resolve(&files.unit_file).exists()
        || !sys.systemctl(&["is-enabled", "--quiet", &files.unit_name])?
    {
        return Ok(Vec::new());
    }
    systemctl(sys, &["disable", "--now", &files.unit_name])?;
    Ok(vec![format!("systemctl disable --now {}", files.unit_name)])
}

fn systemctl(sys: &dyn System, args: &[&str]) -> Result<()> {
    if !sys.systemctl(args)? {
        anyhow::bail!("systemctl {} failed", args.join(" "));
    }
    Ok(())
}

/// `stop`/`remove`: disable and remove the scheduler unit, and remove every file the charm wrote — never the
/// backups, the backed-up directory, or known_hosts lines we did not add.
pub fn teardown(paths: &Paths, sys: &dyn System, files: &UnitFiles) -> Result<Vec<String>> {
    let mut changes = disable_scheduler(paths, sys, files)?;
    if remove_file(&paths.resolve(&files.unit_file))? {
        changes.push(format!("removed {}", files.unit_file.display()));
        systemctl(sys, &["daemon-reload"])?;
    }
    changes.extend(ensure_known_host(paths, files, &Intent::Unset)?);
    changes.extend(ensure_ssh_key(paths, &Intent::Unset)?);
    let state = paths.resolve(&files.state_dir);
    if state.exists() {
        fs::remove_dir_all(&state).with_context(|| format!("cannot remove {}", state.display()))?;
        changes.push(format!("removed {}", files.state_dir.display()));
    }
    changes.extend(remove_old_cron(paths)?);
    changes.extend(remove_python_charm_leftovers(paths)?);
    Ok(changes)
}
