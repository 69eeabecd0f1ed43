//! duplicity 3's per-command help screens (`--help-backup`, ..., `--help-urls`) and its options about
//! the archive dir's metadata and copying (`--config-dir`, `--copy-blocksize`, `--check-remote`,
//! `--metadata-sync-mode`). Flattened into the CLI's options; the help screens are printed by
//! [`help_screen_requested`] before the command line is parsed (no command or URL is needed then, as
//! with duplicity), the others reach the engine through `cli::repository_config`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::engine::cache::SyncPolicy;

#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Help screens and metadata (as duplicity 3's)")]
pub struct MetaArgs {
    /// Show the options of backups (full and incremental) and exit.
    #[arg(long, global = true)]
    pub help_backup: bool,
    /// Show the options of cleanup and exit.
    #[arg(long, global = true)]
    pub help_cleanup: bool,
    /// Show the options of collection-status and exit.
    #[arg(long, global = true)]
    pub help_collection_status: bool,
    /// Show the options of full backups and exit.
    #[arg(long, global = true)]
    pub help_full: bool,
    /// Show the options of incremental backups and exit.
    #[arg(long, global = true)]
    pub help_inc: bool,
    /// Show the options of list-current-files and exit.
    #[arg(long, global = true)]
    pub help_list_current_files: bool,
    /// Show the options of remove-all-but-n-full and exit.
    #[arg(long, global = true)]
    pub help_remove_all_but_n_full: bool,
    /// Show the options of remove-all-inc-of-but-n-full and exit.
    #[arg(long, global = true)]
    pub help_remove_all_inc_of_but_n_full: bool,
    /// Show the options of remove-older-than and exit.
    #[arg(long, global = true)]
    pub help_remove_older_than: bool,
    /// Show the options of restore and exit.
    #[arg(long, global = true)]
    pub help_restore: bool,
    /// Show the target URL forms supported and exit.
    #[arg(long, global = true)]
    pub help_urls: bool,
    /// Show the options of verify and exit.
    #[arg(long, global = true)]
    pub help_verify: bool,
    /// duplicity 3's directory for configuration files (default $XDG_CONFIG_HOME/duplicity). Nothing is
    /// read from or written to it, as with duplicity 3.2.1, which only records the path.
    #[arg(long, global = true, value_name = "PATH", value_parser = parse_config_dir)]
    pub config_dir: Option<PathBuf>,
    /// Size in KiB of each read when files are copied to or from a file://, sftp:// or ftp:// target
    /// (default: 8 KiB for file and ftp, 1 MiB for sftp, whose requests are pipelined), and when
    /// verify --compare-data compares contents (default 64 KiB).
    #[arg(long, global = true, value_name = "KiB",
          value_parser = clap::value_parser!(u64).range(1..=MAX_COPY_BLOCKSIZE_KIB))]
    pub copy_blocksize: Option<u64>,
    /// Check the target's metadata (the default): bring the archive dir in step with the target, and
    /// before an incremental compare the target's last manifest with the archive dir's copy.
    #[arg(long, global = true, overrides_with = "no_check_remote")]
    pub check_remote: bool,
    /// Do not read metadata from the target: the archive dir is used as it is (nothing fetched or
    /// dropped, no manifest compared), so a backup to public keys needs no secret key. A backup whose
    /// chain the archive dir lacks starts a new full.
    #[arg(long, global = true, overrides_with = "check_remote")]
    pub no_check_remote: bool,
    /// Which metadata the archive dir fetches from the target: `partial` (the default) only that of
    /// the chain the command works on (the newest for backups, the one at -t for restore/list), `full`
    /// that of every chain.
    #[arg(long, global = true, value_name = "MODE",
          value_parser = ["full", "partial"])]
    pub metadata_sync_mode: Option<String>,
}

/// 1 GiB: a larger read buffer only costs memory.
const MAX_COPY_BLOCKSIZE_KIB: u64 = 1024 * 1024;

/// `--config-dir`: `~` and environment variables expanded as duplicity's check_file does.
fn parse_config_dir(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("give a directory path, e.g. ~/.config/duplicity".into());
    }
    let expanded = match s.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(rest),
            None => PathBuf::from(s),
        },
        None => PathBuf::from(s),
    };
    Ok(expanded)
}

impl MetaArgs {
    /// How the archive dir follows the target.
    pub fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy {
            check_remote: !self.no_check_remote,
            full: self.metadata_sync_mode.as_deref() == Some("full"),
        }
    }

    /// `--copy-blocksize` in bytes.
    pub fn copy_block_bytes(&self) -> Option<usize> {
        self.copy_blocksize.map(|k| (k * 1024) as usize)
    }
}

/// The screens: the option naming it, the command words it is about, and the options shown.
struct Screen {
    flag: &'static str,
    usage: &'static str,
    about: &'static str,
    options: &'static [&'static str],
}

const BACKUP_OPTIONS: &[&str] = &[
    "volsize",
    "full-if-older-than",
    "full-if-n-inc",
    "allow-source-mismatch",
    "dry-run",
    "no-encryption",
    "encryption",
    "encrypt-key",
    "hidden-encrypt-key",
    "encrypt-sign-key",
    "sign-key",
    "refuse-weak-keys",
    "compression",
    "no-compression",
    "concurrency",
    "asynchronous-upload",
    "progress",
    "progress-rate",
    "jsonstat",
    "print-statistics",
    "no-print-statistics",
    "json",
    "current-time",
    "append-only-target",
    "lock-wait",
    "limit-upload",
];

const RESTORE_OPTIONS: &[&str] = &[
    "time",
    "file-to-restore",
    "force",
    "restore-ownership",
    "no-restore-ownership",
    "numeric-owner",
    "rename",
    "ignore-errors",
    "progress",
    "sign-key",
    "limit-download",
];

const VERIFY_OPTIONS: &[&str] = &["time", "compare-data", "json", "sign-key", "limit-download"];

const LIST_OPTIONS: &[&str] = &["time", "json", "limit-download"];

const STATUS_OPTIONS: &[&str] = &["json"];

const REMOVE_OPTIONS: &[&str] = &[
    "force",
    "dry-run",
    "json",
    "current-time",
    "lock-wait",
    "append-only-target",
];

/// What every command that reaches the target takes.
const COMMON_OPTIONS: &[&str] = &[
    "archive-dir",
    "name",
    "secret-keyring",
    "keyring",
    "gpg-options",
    "file-prefix",
    "file-prefix-archive",
    "file-prefix-manifest",
    "file-prefix-signature",
    "file-prefix-jsonstat",
    "check-remote",
    "no-check-remote",
    "metadata-sync-mode",
    "copy-blocksize",
    "config-dir",
    "num-retries",
    "backend-retry-delay",
    "timeout",
    "tempdir",
    "verbosity",
    "log-file",
    "log-fd",
    "log-timestamp",
    "time-separator",
    "ssh-options",
    "rsync-options",
    "s3-endpoint-url",
    "s3-region-name",
    "s3-unencrypted-connection",
];

const SCREENS: &[Screen] = &[
    Screen {
        flag: "help-backup",
        usage: "duplicity-charm [backup|incremental|full] [options] SOURCE_DIR TARGET_URL",
        about: "Back up SOURCE_DIR to TARGET_URL: an incremental on the newest chain, or a full when there is none (or `full`, or --full-if-older-than / --full-if-n-inc say so).",
        options: BACKUP_OPTIONS,
    },
    Screen {
        flag: "help-full",
        usage: "duplicity-charm full [options] SOURCE_DIR TARGET_URL",
        about: "Start a new chain at TARGET_URL with a full backup of SOURCE_DIR.",
        options: BACKUP_OPTIONS,
    },
    Screen {
        flag: "help-inc",
        usage: "duplicity-charm incremental [options] SOURCE_DIR TARGET_URL",
        about: "Add what changed in SOURCE_DIR to the newest chain at TARGET_URL (a full when there is no chain).",
        options: BACKUP_OPTIONS,
    },
    Screen {
        flag: "help-restore",
        usage: "duplicity-charm [restore] [options] SOURCE_URL TARGET_DIR",
        about: "Restore the backup at SOURCE_URL, as of -t TIME (default: the newest), into TARGET_DIR.",
        options: RESTORE_OPTIONS,
    },
    Screen {
        flag: "help-verify",
        usage: "duplicity-charm verify [options] SOURCE_URL LOCAL_DIR",
        about: "Read back every volume at SOURCE_URL and check its hashes; with --compare-data also compare the files with LOCAL_DIR. Exits 1 on differences.",
        options: VERIFY_OPTIONS,
    },
    Screen {
        flag: "help-list-current-files",
        usage: "duplicity-charm list-current-files [options] TARGET_URL",
        about: "List the files of the backup at TARGET_URL as of -t TIME (default: the newest).",
        options: LIST_OPTIONS,
    },
    Screen {
        flag: "help-collection-status",
        usage: "duplicity-charm collection-status [options] TARGET_URL",
        about: "Show the chains and sets at TARGET_URL, and what is orphaned or incomplete.",
        options: STATUS_OPTIONS,
    },
    Screen {
        flag: "help-remove-older-than",
        usage: "duplicity-charm remove-older-than TIME [options] TARGET_URL",
        about: "Delete the chains whose newest set is older than TIME, never one a newer set depends on (only with --force; otherwise list them).",
        options: REMOVE_OPTIONS,
    },
    Screen {
        flag: "help-remove-all-but-n-full",
        usage: "duplicity-charm remove-all-but-n-full N [options] TARGET_URL",
        about: "Delete every chain but the N newest (only with --force; otherwise list them).",
        options: REMOVE_OPTIONS,
    },
    Screen {
        flag: "help-remove-all-inc-of-but-n-full",
        usage: "duplicity-charm remove-all-inc-of-but-n-full N [options] TARGET_URL",
        about: "Delete the incrementals of every chain but the N newest, keeping their fulls (only with --force; otherwise list them).",
        options: REMOVE_OPTIONS,
    },
    Screen {
        flag: "help-cleanup",
        usage: "duplicity-charm cleanup [options] TARGET_URL",
        about: "Delete what interrupted backups left at TARGET_URL and in the archive dir (only with --force; otherwise list it).",
        options: REMOVE_OPTIONS,
    },
];

/// The target URL forms, as the backends take them.
const URL_FORMS: &[(&str, &str)] = &[
    ("file:///absolute/path", "a local directory"),
    (
        "sftp://[user[:password]@]host[:port]/relative/path",
        "SFTP (`//absolute/path` from the root); key from --ssh-options -oIdentityFile=, password from FTP_PASSWORD",
    ),
    ("scp://[user[:password]@]host[:port]/relative/path", "as sftp:// (copied over SFTP)"),
    (
        "rsync://[user@]host[:port]/relative/path",
        "the rsync program over SSH (`//absolute/path` from the root)",
    ),
    (
        "rsync://[user@]host[:port]::/module/path",
        "an rsync daemon; RSYNC_PASSWORD or FTP_PASSWORD",
    ),
    (
        "ftp://[user[:password]@]host[:port]/relative/path",
        "FTP, passive mode; FTP_PASSWORD",
    ),
    (
        "boto3+s3://bucket[/prefix]  s3+http://bucket[/prefix]  s3:///bucket[/prefix]",
        "AWS S3; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, --s3-region-name",
    ),
    (
        "s3://host[:port]/bucket[/prefix]",
        "an S3-compatible store (path style); --s3-endpoint-url overrides the endpoint",
    ),
    (
        "azure://container",
        "Azure Blob storage; AZURE_CONNECTION_STRING",
    ),
];

/// The help screen asked for by a `--help-*` word in `argv` (full option names, before any `--`), if
/// any: the caller prints it and exits 0, whatever else the command line holds, as duplicity does.
pub fn help_screen_requested(cmd: &clap::Command, argv: &[OsString]) -> Option<String> {
    let flag = argv
        .iter()
        .skip(1)
        .map_while(|a| a.to_str().filter(|s| *s != "--"))
        .find_map(|a| a.strip_prefix("--").filter(|f| f.starts_with("help-")))?;
    render(cmd, flag)
}

/// The screen of `--FLAG`; None for a flag that names no screen.
fn render(cmd: &clap::Command, flag: &str) -> Option<String> {
    let mut out = String::new();
    if flag == "help-urls" {
        out.push_str("Target URLs (a password in the URL works, but FTP_PASSWORD keeps it out of process lists):\n\n");
        let width = URL_FORMS.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
        for (url, what) in URL_FORMS {
            out.push_str(&format!("  {url:width$}  {what}\n"));
        }
        return Some(out);
    }
    let screen = SCREENS.iter().find(|s| s.flag == flag)?;
    out.push_str(&format!("Usage: {}\n\n{}\n", screen.usage, screen.about));
    for (title, names) in [
        ("Options for this command", screen.options),
        (
            "Options for every command that reads or writes a target",
            COMMON_OPTIONS,
        ),
    ] {
        out.push_str(&format!("\n{title}:\n"));
        for name in names {
            out.push_str(&describe(cmd, name));
        }
    }
    if matches!(
        flag,
        "help-backup" | "help-full" | "help-inc" | "help-restore" | "help-verify"
    ) {
        out.push_str(
            "\nFile selection (--include, --exclude, --filter-*, --files-from, ...): see --help.\n",
        );
    }
    out.push_str(
        "\nTarget URL forms: see --help-urls. Secrets come from the environment (see --help).\n",
    );
    Some(out)
}

/// One option's line(s): its name and value names, then its help text wrapped.
fn describe(cmd: &clap::Command, long: &str) -> String {
    let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(long)) else {
        return format!("  --{long}\n");
    };
    let mut head = match arg.get_short() {
        Some(c) => format!("  -{c}, --{long}"),
        None => format!("  --{long}"),
    };
    if arg.get_action().takes_values() {
        for v in arg.get_value_names().unwrap_or_default() {
            head.push(' ');
            head.push_str(v.as_str());
        }
    }
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let mut out = String::new();
    let mut line = format!("{head:34}");
    if head.len() >= 34 {
        out.push_str(&head);
        out.push('\n');
        line = " ".repeat(34);
    }
    let mut empty = true;
    for word in help.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > 110 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(34);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        crate::cli::command()
    }

    #[test]
    fn every_screen_names_only_options_that_exist() {
        let cmd = command();
        let known: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        for s in SCREENS {
            for o in s.options.iter().chain(COMMON_OPTIONS) {
                assert!(known.iter().any(|k| k == o), "{}: --{o}", s.flag);
            }
            // The screen's own flag is one of ours.
            assert!(known.iter().any(|k| k == s.flag), "{}", s.flag);
            let text = render(&cmd, s.flag).unwrap();
            assert!(text.starts_with("Usage: duplicity-charm"), "{text}");
            assert!(text.contains("--archive-dir DIR"), "{text}");
        }
    }

    #[test]
    fn screens_show_the_options_of_their_command() {
        let cmd = command();
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let restore = help_screen_requested(&cmd, &argv(&["d", "--help-restore"])).unwrap();
        assert!(restore.contains("-r, --file-to-restore PATH"), "{restore}");
        assert!(restore.contains("-t, --time TIME"), "{restore}");
        assert!(!restore.contains("--volsize"), "{restore}");
        let backup =
            help_screen_requested(&cmd, &argv(&["d", "full", "--help-backup", "x"])).unwrap();
        assert!(backup.contains("--volsize MiB") && backup.contains("--full-if-older-than TIME"));
        let urls = help_screen_requested(&cmd, &argv(&["d", "--help-urls"])).unwrap();
        for scheme in [
            "file://", "sftp://", "rsync://", "ftp://", "s3://", "azure://",
        ] {
            assert!(urls.contains(scheme), "{scheme}: {urls}");
        }
        // After `--` a word is an argument, not a request for help.
        assert!(help_screen_requested(&cmd, &argv(&["d", "--", "--help-urls"])).is_none());
        assert!(help_screen_requested(&cmd, &argv(&["d", "full", "s", "file:///t"])).is_none());
    }

    #[test]
    fn sync_policy_and_copy_block() {
        let m = MetaArgs::default();
        assert_eq!(
            m.sync_policy(),
            SyncPolicy {
                check_remote: true,
                full: false
            }
        );
        let m = MetaArgs {
            no_check_remote: true,
            metadata_sync_mode: Some("full".into()),
            copy_blocksize: Some(64),
            ..Default::default()
        };
        assert_eq!(
            m.sync_policy(),
            SyncPolicy {
                check_remote: false,
                full: true
            }
        );
        assert_eq!(m.copy_block_bytes(), Some(65536));
        assert!(parse_config_dir("").is_err());
        assert_eq!(
            parse_config_dir("/etc/dup").unwrap(),
            PathBuf::from("/etc/dup")
        );
    }
}
