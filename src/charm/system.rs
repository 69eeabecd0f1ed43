//! The system commands the charm runs (`systemctl`, `apt-get`), looked up on `PATH` so tests can put fakes
//! there, behind a trait so state-transition tests can record them instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The machine's service manager and package manager.
pub trait System {
    /// `systemctl <args>`: `Ok(true)` on exit 0, `Ok(false)` on another exit code (e.g. `is-enabled` of a
    /// disabled unit), `Err` when it cannot run.
    fn systemctl(&self, args: &[&str]) -> Result<bool>;
    /// `apt-get install` of packages that are missing.
    fn apt_install(&self, packages: &[&str]) -> Result<()>;
    /// Whether a command is on `PATH`.
    fn has_command(&self, name: &str) -> bool;
}

/// Runs the real commands.
#[derive(Debug, Default, Clone)]
pub struct RealSystem;

/// The first executable `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl System for RealSystem {
    fn systemctl(&self, args: &[&str]) -> Result<bool> {
        let out = Command::new("systemctl")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("cannot run systemctl")?;
        Ok(out.status.success())
    }

    fn apt_install(&self, packages: &[&str]) -> Result<()> {
        let install = || {
            Command::new("apt-get")
                .args([
                    "-y",
                    "-q",
                    "-o",
                    "DPkg::Lock::Timeout=300",
                    "install",
                    "--no-install-recommends",
                ])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .output()
                .context("cannot run apt-get")
        };
        let mut out = install()?;
        if !out.status.success() {
            // Stale package lists are the usual cause on a fresh machine.
            let update = Command::new("apt-get")
                .args(["-q", "update"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .output()
                .context("cannot run apt-get update")?;
            if update.status.success() {
                out = install()?;
            }
        }
        if !out.status.success() {
            bail!(
                "apt-get install {} failed ({}): {}",
                packages.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn has_command(&self, name: &str) -> bool {
        which(name).is_some()
    }
}

/// A recording stand-in for state-transition tests: systemd's enabled units, the commands on `PATH`.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FakeSystem {
    /// Commands that [`System::has_command`] finds.
    pub commands: Vec<String>,
    pub calls: std::cell::RefCell<Vec<String>>,
    pub enabled: std::cell::RefCell<std::collections::BTreeSet<String>>,
    pub active: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

#[cfg(test)]
impl System for FakeSystem {
    fn systemctl(&self, args: &[&str]) -> Result<bool> {
        self.calls
            .borrow_mut()
            .push(format!("systemctl {}", args.join(" ")));
        let unit = args.last().copied().unwrap_or_default().to_string();
        let now = args.contains(&"--now");
        let mut enabled = self.enabled.borrow_mut();
        let mut active = self.active.borrow_mut();
        Ok(match args.first().copied() {
            Some("is-enabled") => enabled.contains(&unit),
            Some("is-active") => active.contains(&unit),
            Some("enable") => {
                if now {
                    active.insert(unit.clone());
                }
                enabled.insert(unit);
                true
            }
            Some("disable") => {
                if now {
                    active.remove(&unit);
                }
                enabled.remove(&unit);
                true
            }
            Some("start" | "restart") => {
                active.insert(unit);
                true
            }
            Some("stop") => {
                active.remove(&unit);
                true
            }
            _ => true,
        })
    }

    fn apt_install(&self, packages: &[&str]) -> Result<()> {
        self.calls
            .borrow_mut()
            .push(format!("apt-get install {}", packages.join(" ")));
        Ok(())
    }

    fn has_command(&self, name: &str) -> bool {
        self.commands.iter().any(|c| c == name)
    }
}
