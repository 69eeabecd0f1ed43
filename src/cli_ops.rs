//! duplicity's command-line syntax and operations options (issue 13): long options as its parser
//! (Python's argparse) takes them — `--opt=value` or `--opt value`, and any unambiguous prefix of a long
//! option name — and the options that change how a run goes rather than what it stores.

use std::ffi::OsString;
use std::path::PathBuf;

/// A long option prefix that fits several options; argparse refuses it the same way.
#[derive(Debug, thiserror::Error)]
#[error("ambiguous option: {given} could match {}: type more of its name", candidates.join(", "))]
pub struct AmbiguousOption {
    pub given: String,
    pub candidates: Vec<String>,
}

/// Rewrites every long option given as an unambiguous prefix of one of `cmd`'s long options (or their
/// aliases) to its full name, `--num-ret=2` to `--num-retries=2`, as duplicity's argparse parser takes
/// it. Done on argv before anything reads it, so that clap and the readers of the raw arguments (file
/// selection, whose order counts) see the same full names. An exact name wins over longer ones that
/// start with it (`--time` is not ambiguous with `--time-separator`); a prefix of several options is
/// an error naming them. Values are never rewritten: the word after an option that takes one is
/// skipped, and nothing after `--` is touched. Unknown options are left for clap to refuse.
pub fn expand_long_prefixes(
    cmd: &clap::Command,
    argv: Vec<OsString>,
) -> Result<Vec<OsString>, AmbiguousOption> {
    // (name, values it takes, the argument's id): names and aliases of the same argument share the id.
    let mut longs: Vec<(String, usize, String)> = vec![
        ("help".into(), 0, "help".into()),
        ("version".into(), 0, "version".into()),
    ];
    let mut shorts: Vec<(char, usize)> = vec![('h', 0), ('V', 0)];
    let mut args: Vec<&clap::Arg> = cmd.get_arguments().collect();
    for sub in cmd.get_subcommands() {
        args.extend(sub.get_arguments());
    }
    for a in args {
        let takes = values_taken(a);
        let id = a.get_id().to_string();
        if let Some(l) = a.get_long() {
            longs.push((l.to_string(), takes, id.clone()));
        }
        for al in a.get_all_aliases().unwrap_or_default() {
            longs.push((al.to_string(), takes, id.clone()));
        }
        if let Some(s) = a.get_short() {
            shorts.push((s, takes));
        }
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter();
    // The program name.
    out.extend(it.next());
    while let Some(word) = it.next() {
        let Some(text) = word.to_str() else {
            out.push(word);
            continue;
        };
        if text == "--" {
            out.push(word);
            out.extend(it.by_ref());
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let exact = longs.iter().find(|(l, ..)| l == name);
            let found = match exact {
                Some(e) => Some(e),
                None => {
                    let mut matching: Vec<&(String, usize, String)> =
                        longs.iter().filter(|(l, ..)| l.starts_with(name)).collect();
                    matching.dedup_by(|a, b| a.2 == b.2);
                    let mut ids: Vec<&str> = matching.iter().map(|m| m.2.as_str()).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    if ids.len() > 1 {
                        let mut candidates: Vec<String> =
                            matching.iter().map(|m| format!("--{}", m.0)).collect();
                        candidates.sort();
                        candidates.dedup();
                        return Err(AmbiguousOption {
                            given: text.to_string(),
                            candidates,
                        });
                    }
                    matching.first().copied()
                }
            };
            let Some((full, takes, _)) = found else {
                out.push(word); // unknown: clap says so
                continue;
            };
            match inline {
                Some(v) => out.push(format!("--{full}={v}").into()),
                None => {
                    out.push(format!("--{full}").into());
                    out.extend(it.by_ref().take(*takes));
                }
            }
            continue;
        }
        // `-t 3D`: the value is the next word; `-t3D`, `-v4` carry it.
        if let Some(c) = text.strip_prefix('-').filter(|s| s.chars().count() == 1) {
            let c = c.chars().next().unwrap_or('-');
            let takes = shorts.iter().find(|(s, _)| *s == c).map_or(0, |(_, t)| *t);
            out.push(word);
            out.extend(it.by_ref().take(takes));
            continue;
        }
        out.push(word);
    }
    Ok(out)
}

/// How many words after the option are its values: 0 for a flag, 1 for most, 2 for `--rename FROM TO`.
pub fn values_taken(a: &clap::Arg) -> usize {
    if !a.get_action().takes_values() {
        return 0;
    }
    a.get_num_args().map_or(1, |r| r.min_values().max(1))
}

/// duplicity's operations options: how a run goes (retries, timeouts, temporary files, logging,
/// statistics, time strings), not what it stores. Flattened into the CLI's options; each takes effect
/// through [`OperationArgs::start`] (process-wide: logging, temp dir), [`OperationArgs::apply_backend`]
/// (the repository's backend options) or the command's options.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Operations (as duplicity's)")]
pub struct OperationArgs {
    /// Attempts of each backend operation (upload, download, listing, deletion) before giving up
    /// (default 5).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub num_retries: Option<u32>,
    /// Seconds to wait between two attempts (default: 2, doubled after each failed attempt).
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub backend_retry_delay: Option<u64>,
    /// Network timeout in seconds: connecting and waiting for data (sftp/scp, rsync, ftp's control
    /// connection, s3, azure).
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
    /// Directory for temporary files (default: TMPDIR, else /tmp).
    #[arg(long, global = true, value_name = "DIR")]
    pub tempdir: Option<PathBuf>,
    /// Also write the messages to FILE (appended), in duplicity's machine-readable form.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Also write the messages to this inherited file descriptor, in duplicity's machine-readable form.
    #[arg(long, global = true, value_name = "FD",
          value_parser = clap::value_parser!(u32).range(3..))]
    pub log_fd: Option<u32>,
    /// Start each message on stderr with the time and its level.
    #[arg(long, global = true)]
    pub log_timestamp: bool,
    /// Which messages to show: 0-9, or e, w, n, i, d (error, warning, notice (default), info, debug).
    #[arg(short = 'v', long, global = true, value_name = "LEVEL",
          value_parser = crate::logging::parse_verbosity)]
    pub verbosity: Option<u8>,
    /// Print the backup statistics (the default).
    #[arg(long, global = true, overrides_with = "no_print_statistics")]
    pub print_statistics: bool,
    /// Do not print the backup statistics.
    #[arg(long, global = true, overrides_with = "print_statistics")]
    pub no_print_statistics: bool,
    /// The character used in place of ':' in the time strings given (-t, remove-older-than, ...),
    /// e.g. 2024-01-02T03_04_05 with '_'.
    #[arg(long, global = true, value_name = "CHAR")]
    pub time_separator: Option<char>,
    /// Make a full backup when the newest chain already has N or more incrementals.
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub full_if_n_inc: Option<u64>,
    /// Up to N volume uploads at once (default and minimum 2: one uploads while the next is built); each
    /// needs a volume of temporary disk.
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=64))]
    pub concurrency: Option<u32>,
    /// Accepted for duplicity's scripts: volumes are always uploaded while the next is built.
    #[arg(long, global = true)]
    pub asynchronous_upload: bool,
}

impl OperationArgs {
    /// Applies the process-wide options: logging (verbosity, timestamps, the machine-readable copies)
    /// and the temporary directory. Called once, before any work starts.
    pub fn start(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut machine: Vec<Box<dyn std::io::Write + Send>> = Vec::new();
        if let Some(path) = &self.log_file {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| {
                    format!("--log-file {}: cannot open it for writing", path.display())
                })?;
            machine.push(Box::new(f));
        }
        if let Some(fd) = self.log_fd {
            // Reopened through /proc: no unsafe code to adopt a raw descriptor.
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(format!("/proc/self/fd/{fd}"))
                .with_context(|| {
                    format!("--log-fd {fd}: not an open file descriptor this program can write to")
                })?;
            machine.push(Box::new(f));
        }
        crate::logging::configure(
            self.verbosity.unwrap_or(crate::logging::NOTICE),
            self.log_timestamp,
            machine,
        );
        if let Some(dir) = &self.tempdir {
            // Checked now, so a bad one is named before the run rather than deep inside it.
            tempfile::tempfile_in(dir).with_context(|| {
                format!(
                    "--tempdir {}: cannot create files there: give an existing writable directory",
                    dir.display()
                )
            })?;
            // Process-wide, as duplicity's: every temporary file (and the programs run) use it. Set
            // here, on the main thread before any other starts.
            std::env::set_var("TMPDIR", dir);
        }
        Ok(())
    }

    /// The backend options these change: attempts, the pause between them, the network timeout.
    pub fn apply_backend(&self, backend: &mut crate::backend::OpenOptions) {
        if let Some(n) = self.num_retries {
            backend.attempts = n;
        }
        if let Some(s) = self.backend_retry_delay {
            backend.backoff = std::time::Duration::from_secs(s);
            backend.retry_fixed_delay = true;
        }
        if let Some(s) = self.timeout {
            backend.timeout = Some(std::time::Duration::from_secs(s));
        }
    }

    /// Whether backups print their statistics (duplicity's default: yes).
    pub fn print_statistics(&self) -> bool {
        !self.no_print_statistics
    }

    /// A time string as typed, with `--time-separator` put back to ':' (see [`with_time_separator`]).
    pub fn time_text(&self, text: &str) -> String {
        match self.time_separator {
            Some(sep) => with_time_separator(text, sep),
            None => text.to_string(),
        }
    }
}

/// duplicity's exit codes (its log.py `ErrorCode`), for scripts that tell failures apart. Usage errors
/// (2) are clap's; verify's differences (1) are not errors.
pub mod exit {
    /// A failure with nothing more specific (duplicity's `generic`).
    pub const GENERIC: i32 = 1;
    /// A wrong command line: unknown or ambiguous option, missing argument.
    pub const COMMAND_LINE: i32 = 2;
    /// Before an incremental, the target's last manifest differs from the archive dir's copy.
    pub const MISMATCHED_MANIFESTS: i32 = 5;
    /// restore: the target exists and is not empty, without --force.
    pub const RESTORE_PATH_EXISTS: i32 = 11;
    /// A selection pattern that cannot match (outside the source; on restore, not relative to the
    /// archive root).
    pub const FILE_PREFIX_ERROR: i32 = 14;
    /// A shell pattern that is not one (e.g. `a//b`).
    pub const GLOBBING_ERROR: i32 = 15;
    /// The last selection option only includes.
    pub const REDUNDANT_INCLUSION: i32 = 16;
    /// restore --path-to-restore: that path is not in the backup.
    pub const RESTORE_PATH_NOT_FOUND: i32 = 19;
    /// restore with file selection: nothing selected.
    pub const NO_RESTORE_FILES: i32 = 20;
    /// A stored file's hash or content does not match: damaged or tampered with.
    pub const MISMATCHED_HASH: i32 = 21;
    /// A wrong request: a bad option value, URL, key, time; another run holds the lock.
    pub const USER_ERROR: i32 = 23;
    /// What duplicity exits with when the target has no backup to read (its CollectionsError,
    /// which it does not catch).
    pub const NO_BACKUP: i32 = 30;
    /// Decryption failed: wrong passphrase or no secret key (duplicity's `gpg_failed`).
    pub const GPG_FAILED: i32 = 31;
    /// The target failed: unreachable, credentials refused, a file missing, an error from the server.
    pub const BACKEND_ERROR: i32 = 50;
    /// Only the default filter modes were given (`--filter-globbing`, `--filter-strictcase`).
    pub const REDUNDANT_FILTER: i32 = 70;
    /// The last selection option is a `--filter-*` mode.
    pub const TRAILING_FILTER: i32 = 71;
    /// A `--files-from` list names an absolute path.
    pub const ABSOLUTE_FILES_FROM: i32 = 72;
    /// A `--files-from` list names nothing.
    pub const EMPTY_FILES_FROM: i32 = 73;
}

/// The exit code for a failed run, as duplicity's for the same failure (see [`exit`]): read from the
/// typed errors in the chain, never from the message.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    use crate::engine::commands::restore::RestoreError;
    use crate::engine::error::{Error, ErrorKind};
    // Every error in the chain; the engine's error hides the first of its own from `source()`.
    let mut all: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    for c in e.chain() {
        all.push(c);
        if let Some(inner) = c.downcast_ref::<Error>() {
            all.extend(inner.chain());
        }
    }
    let find = |f: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool| all.iter().any(|c| f(*c));
    if let Some(r) = all.iter().find_map(|c| c.downcast_ref::<RestoreError>()) {
        return match r {
            RestoreError::TargetExists { .. } => exit::RESTORE_PATH_EXISTS,
            RestoreError::NotInBackup(_) => exit::RESTORE_PATH_NOT_FOUND,
            RestoreError::NothingSelected => exit::NO_RESTORE_FILES,
            RestoreError::SelectionWithPath => exit::USER_ERROR,
        };
    }
    if find(&|c| c.is::<crate::engine::cache::ManifestMismatch>()) {
        return exit::MISMATCHED_MANIFESTS;
    }
    if let Some(s) = all
        .iter()
        .find_map(|c| c.downcast_ref::<crate::engine::selection::SelectionError>())
    {
        return selection_exit_code(s);
    }
    let Some(kind) = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind)
    else {
        // Errors of the command line's own checks (a bad option value, no PASSPHRASE, ...).
        return exit::USER_ERROR;
    };
    match kind {
        ErrorKind::WrongKey => exit::GPG_FAILED,
        ErrorKind::Corrupt => exit::MISMATCHED_HASH,
        ErrorKind::BadInput | ErrorKind::Busy => exit::USER_ERROR,
        // Whatever the kind, a failure of the target itself is a backend error to duplicity.
        _ if find(&|c| c.is::<crate::backend::BackendError>()) => exit::BACKEND_ERROR,
        ErrorKind::Unreachable | ErrorKind::AuthRefused => exit::BACKEND_ERROR,
        ErrorKind::Missing if find(&|c| c.is::<crate::engine::collection::CollectionError>()) => {
            exit::NO_BACKUP
        }
        ErrorKind::Missing | ErrorKind::Failed => exit::GENERIC,
    }
}

/// duplicity 3.2.1's exit code for a selection option it refuses the same way (its FatalErrors); the
/// rest (unreadable filelists, bad regular expressions, ...) are user errors.
fn selection_exit_code(e: &crate::engine::selection::SelectionError) -> i32 {
    use crate::engine::selection::SelectionError as S;
    match e {
        S::OutsideSource { .. } | S::NotArchiveRelative { .. } => exit::FILE_PREFIX_ERROR,
        S::InvalidPattern { .. } => exit::GLOBBING_ERROR,
        S::RedundantInclude { .. } => exit::REDUNDANT_INCLUSION,
        S::RedundantFilters { .. } => exit::REDUNDANT_FILTER,
        S::TrailingFilter { .. } => exit::TRAILING_FILTER,
        S::FilesFromAbsolute { .. } => exit::ABSOLUTE_FILES_FROM,
        S::FilesFromEmpty { .. } => exit::EMPTY_FILES_FROM,
        _ => exit::USER_ERROR,
    }
}

/// Prints the backup statistics block on stdout and copies it to the machine-readable log as a
/// NOTICE, whatever the verbosity, as duplicity does.
pub fn print_statistics(out: &mut impl std::io::Write, block: &str) -> std::io::Result<()> {
    out.write_all(block.as_bytes())?;
    crate::logging::record(crate::logging::NOTICE, 1, block, None, true);
    Ok(())
}

/// duplicity's `--time-separator`: in a w3 datetime (`2002-08-06T04_22_00-07_00` with `_`), the
/// separator stands where ':' does, between hours, minutes and seconds and in the zone. Only those
/// places are changed back, so a separator such as '-' does not touch the date or the zone's sign.
pub fn with_time_separator(text: &str, sep: char) -> String {
    let Some((date, rest)) = text.split_once(['T', 't']) else {
        return text.to_string();
    };
    let mut c: Vec<char> = rest.chars().collect();
    if c.len() >= 8 && c[2] == sep && c[5] == sep {
        c[2] = ':';
        c[5] = ':';
        let zone = &mut c[8..];
        if zone.len() == 6 && matches!(zone[0], '+' | '-') && zone[3] == sep {
            zone[3] = ':';
        }
    }
    let t = if text.as_bytes()[date.len()] == b't' {
        't'
    } else {
        'T'
    };
    format!("{date}{t}{}", c.into_iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cmd() -> Command {
        Command::new("d")
            .arg(Arg::new("num_retries").long("num-retries"))
            .arg(
                Arg::new("numeric_owner")
                    .long("numeric-owner")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("time")
                    .short('t')
                    .long("time")
                    .alias("restore-time"),
            )
            .arg(Arg::new("time_separator").long("time-separator"))
            .arg(
                Arg::new("exclude")
                    .long("exclude")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("exclude_regexp")
                    .long("exclude-regexp")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("rsync")
                    .long("rsync-options")
                    .allow_hyphen_values(true),
            )
            .subcommand(Command::new("full").arg(Arg::new("src")))
    }

    fn expand(args: &[&str]) -> Result<Vec<String>, AmbiguousOption> {
        let argv = args.iter().map(OsString::from).collect();
        Ok(expand_long_prefixes(&cmd(), argv)?
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect())
    }

    #[test]
    fn unambiguous_prefixes_become_full_names() {
        assert_eq!(
            expand(&["d", "--num-ret=2", "full", "--num-r", "3", "--numeric", "x"]).unwrap(),
            [
                "d",
                "--num-retries=2",
                "full",
                "--num-retries",
                "3",
                "--numeric-owner",
                "x"
            ]
        );
        // Aliases count as names; exact names win over longer ones.
        assert_eq!(
            expand(&["d", "--restore-t", "3D", "--time", "1", "--exclude", "a"]).unwrap(),
            ["d", "--restore-time", "3D", "--time", "1", "--exclude", "a"]
        );
    }

    #[test]
    fn ambiguous_prefix_names_the_candidates() {
        let e = expand(&["d", "--num=2"]).unwrap_err();
        assert_eq!(e.candidates, ["--num-retries", "--numeric-owner"]);
        let msg = e.to_string();
        assert!(
            msg.starts_with("ambiguous option: --num=2 could match --num-retries, --numeric-owner"),
            "{msg}"
        );
        assert!(expand(&["d", "--ti", "1"]).is_err());
        assert!(expand(&["d", "--excl", "a"]).is_err());
    }

    #[test]
    fn values_and_words_after_double_dash_are_left_alone() {
        assert_eq!(
            expand(&["d", "--rsync", "--num", "-t", "--exc", "--", "--num"]).unwrap(),
            [
                "d",
                "--rsync-options",
                "--num",
                "-t",
                "--exc",
                "--",
                "--num"
            ]
        );
        // Unknown options pass through for clap to refuse.
        assert_eq!(
            expand(&["d", "--bogus", "x"]).unwrap(),
            ["d", "--bogus", "x"]
        );
    }

    #[test]
    fn exit_codes_as_duplicity() {
        use crate::backend::BackendError;
        use crate::engine::collection::CollectionError;
        use crate::engine::commands::restore::RestoreError;
        use crate::engine::crypto::CryptoError;
        use crate::engine::error::Error;
        let engine =
            |e: anyhow::Error| anyhow::Error::new(Error::classify(e)).context("restore failed");
        assert_eq!(exit_code(&engine(CryptoError::BadPassphrase.into())), 31);
        assert_eq!(
            exit_code(&engine(CryptoError::Tampered("mdc".into()).into())),
            21
        );
        let unreachable = BackendError::Transient {
            backend: "sftp://h".into(),
            name: "x".into(),
            message: "refused".into(),
        };
        assert_eq!(exit_code(&engine(unreachable.into())), 50);
        let gone = BackendError::NotFound {
            backend: "b".into(),
            name: "v".into(),
        };
        assert_eq!(exit_code(&engine(gone.into())), 50);
        assert_eq!(exit_code(&engine(CollectionError::NoChains.into())), 30);
        assert_eq!(
            exit_code(&engine(RestoreError::NotInBackup("a/b".into()).into())),
            19
        );
        let exists = RestoreError::TargetExists {
            target: "/t".into(),
            non_empty_dir: true,
        };
        assert_eq!(exit_code(&engine(exists.into())), 11);
        assert_eq!(exit_code(&engine(RestoreError::NothingSelected.into())), 20);
        use crate::engine::selection::SelectionError;
        let redundant = SelectionError::RedundantInclude { rule: "x".into() };
        assert_eq!(exit_code(&anyhow::Error::new(redundant)), 16);
        let prefix = SelectionError::NotArchiveRelative {
            pattern: "/a".into(),
        };
        assert_eq!(
            exit_code(&anyhow::Error::new(prefix).context("restore")),
            14
        );
        assert_eq!(exit_code(&anyhow::anyhow!("-t/--time: bad time")), 23);
        assert_eq!(exit_code(&engine(anyhow::anyhow!("disk full"))), 1);
    }

    #[test]
    fn time_separator_only_where_colons_stand() {
        assert_eq!(
            with_time_separator("2002-08-06T04_22_00-07_00", '_'),
            "2002-08-06T04:22:00-07:00"
        );
        assert_eq!(
            with_time_separator("2002-08-06T04-22-00-07-00", '-'),
            "2002-08-06T04:22:00-07:00"
        );
        assert_eq!(
            with_time_separator("2002-08-06T04.22.00Z", '.'),
            "2002-08-06T04:22:00Z"
        );
        assert_eq!(with_time_separator("3D", '_'), "3D");
    }

    #[test]
    fn backend_options_take_retries_delay_and_timeout() {
        let ops = OperationArgs {
            num_retries: Some(2),
            backend_retry_delay: Some(3),
            timeout: Some(7),
            ..Default::default()
        };
        let mut o = crate::backend::OpenOptions::new();
        assert_eq!(
            (o.attempts, o.retry_fixed_delay, o.timeout),
            (5, false, None)
        );
        ops.apply_backend(&mut o);
        assert_eq!(o.attempts, 2);
        assert_eq!(o.backoff, std::time::Duration::from_secs(3));
        assert!(o.retry_fixed_delay);
        assert_eq!(o.timeout, Some(std::time::Duration::from_secs(7)));
    }
}
