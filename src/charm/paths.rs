//! Where the charm reads and writes on the machine. Every absolute path is resolved under
//! `DUPLICITY_CHARM_ROOT` when it is set (tests), while file contents keep the real paths.

use std::path::{Path, PathBuf};

/// The key file the Python charm used; duplicity's ssh options point at it.
pub const SSH_KEY: &str = "/root/.ssh/duplicity_id_rsa";
pub const SSH_DIR: &str = "/root/.ssh";
pub const KNOWN_HOSTS: &str = "/root/.ssh/known_hosts";
/// The Python charm's cron files, removed on every reconcile (our scheduler replaces them).
pub const OLD_CRON_FILES: &[&str] = &[
    "/etc/cron.d/periodic_backup",
    "/etc/cron.d/periodic_deletion",
];
/// The Python charm's NRPE check (`check_backups`, charm-helpers' layout) and the plugins it copied: the
/// plugins report on files only its cron jobs wrote, so they would say OK for ever once the jobs are gone.
pub const OLD_NRPE_CFG: &str = "/etc/nagios/nrpe.d/check_backups.cfg";
pub const OLD_NRPE_COMMAND: &str = "check_backups";
pub const OLD_NRPE_PLUGIN: &str = "/usr/local/lib/nagios/plugins/check_backup_status.py";
pub const OLD_NRPE_PLUGINS: &[&str] = &[
    OLD_NRPE_PLUGIN,
    "/usr/local/lib/nagios/plugins/check_deletion_status.py",
];
/// The status files the Python charm's cron scripts wrote (read only by its NRPE plugins).
pub const OLD_RUN_FILES: &[&str] = &[
    "/var/run/periodic_backup.error",
    "/var/run/periodic_deletion.error",
];
/// Parent of every unit's state directory.
pub const STATE_ROOT: &str = "/var/lib/duplicity-charm";
pub const SYSTEMD_DIR: &str = "/etc/systemd/system";
/// Names inside a unit's state directory (beside the settings file).
pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "run.lock";
/// The engine's archive dir (its local cache of manifests and signatures).
pub const ARCHIVE_DIR: &str = "archive";
/// A unit's state directory: traversable by the NRPE check, readable only by root.
pub const STATE_DIR_MODE: u32 = 0o711;
/// Where the restore action puts a restore when no target is given: `<this>/<UTC timestamp>`.
pub const RESTORE_ROOT: &str = "/var/lib/duplicity-charm/restore";
/// NRPE's drop-in directory and the directory the nrpe charm exports Nagios service definitions from.
pub const NRPE_DIR: &str = "/etc/nagios/nrpe.d";
pub const NAGIOS_EXPORT_DIR: &str = "/var/lib/nagios/export";

/// Resolves the charm's absolute paths, under an optional root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    root: Option<PathBuf>,
}

impl Paths {
    /// Reads `DUPLICITY_CHARM_ROOT` (unset or empty: the real root).
    pub fn from_env() -> Self {
        Self::with_root(
            std::env::var_os("DUPLICITY_CHARM_ROOT")
                .filter(|r| !r.is_empty())
                .map(PathBuf::from),
        )
    }

    pub fn with_root(root: Option<PathBuf>) -> Self {
        Paths { root }
    }

    /// The on-disk location of an absolute path.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        match &self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }
}

/// The real paths of one unit's files. Subordinates of two principals can share a machine, so everything
/// but the SSH files (whose path the Python charm fixed) is per unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFiles {
    /// `/var/lib/duplicity-charm/<app>-<n>` (0711: only the NRPE check, run as nagios, needs to reach
    /// the outcomes file in it; everything else in it is 0600).
    pub state_dir: PathBuf,
    /// The settings file (0600): see [`super::settings`].
    pub settings: PathBuf,
    /// The armored `gpg_public_key`.
    pub gpg_public_key: PathBuf,
    /// The outcomes of runs (0644, no secrets): see [`super::state`].
    pub state_file: PathBuf,
    /// Held (flock) by whatever runs the engine: an action or the scheduler.
    pub lock_file: PathBuf,
    /// The known_hosts line this unit added, so it can replace or remove exactly that line.
    pub known_hosts_record: PathBuf,
    /// `duplicity-charm-<app>-<n>.service`.
    pub unit_name: String,
    pub unit_file: PathBuf,
}

impl UnitFiles {
    pub fn new(unit_slug: &str) -> Self {
        let state_dir = Path::new(STATE_ROOT).join(unit_slug);
        let unit_name = format!("duplicity-charm-{unit_slug}.service");
        UnitFiles {
            settings: state_dir.join("settings.json"),
            gpg_public_key: state_dir.join("gpg_public_key.asc"),
            state_file: state_dir.join(STATE_FILE),
            lock_file: state_dir.join(LOCK_FILE),
            known_hosts_record: state_dir.join("known_hosts.line"),
            unit_file: Path::new(SYSTEMD_DIR).join(&unit_name),
            unit_name,
            state_dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_under_the_root_only_when_given() {
        assert_eq!(Paths::default().resolve(SSH_KEY), PathBuf::from(SSH_KEY));
        let p = Paths::with_root(Some("/tmp/r".into()));
        assert_eq!(
            p.resolve(SSH_KEY),
            PathBuf::from("/tmp/r/root/.ssh/duplicity_id_rsa")
        );
        let f = UnitFiles::new("duplicity-0");
        assert_eq!(
            f.settings,
            PathBuf::from("/var/lib/duplicity-charm/duplicity-0/settings.json")
        );
        assert_eq!(
            f.unit_file,
            PathBuf::from("/etc/systemd/system/duplicity-charm-duplicity-0.service")
        );
    }
}
