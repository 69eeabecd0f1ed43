//! duplicity's file selection options on the command line. Their meaning depends on their order across
//! all of them (`--include a --exclude b` differs from `--exclude b --include a`, and `--filter-*` switch
//! the meaning of what follows), which clap's derived fields lose (and clap merges a global option given
//! both before and after the subcommand, keeping one side). So the options are declared here for clap
//! (`#[command(flatten)] selection: SelectionArgs`: parsing, validation, help) and read back in order
//! from the raw arguments by [`selection_from_args`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::os::unix::ffi::{OsStrExt, OsStringExt};

use anyhow::{Context, Result};
use clap::{ArgAction, Args};

use crate::engine::selection::{Selection, SelectionRule};
use crate::engine::timestr;

/// The file selection options (backup, verify and restore), in the order given they decide per file: the first
/// that matches includes or excludes it; a file no option matches is included.
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "File selection (first match wins, order matters)")]
pub struct SelectionArgs {
    /// Exclude files matching this shell pattern (*, **, ?, [...]; 'ignorecase:' prefix), given as a
    /// full path starting with the source directory as typed, or with '**' (restore: relative to the
    /// archive root, as list-current-files prints it).
    #[arg(long, global = true, value_name = "PATTERN", action = ArgAction::Append)]
    exclude: Vec<OsString>,
    /// Include files matching this shell pattern, and the directories leading to them.
    #[arg(long, global = true, value_name = "PATTERN", action = ArgAction::Append)]
    include: Vec<OsString>,
    /// Exclude the patterns listed in FILE, one a line ('+ ' includes, '- ' excludes, '#' comments).
    #[arg(long, global = true, value_name = "FILE", action = ArgAction::Append)]
    exclude_filelist: Vec<PathBuf>,
    /// Include the patterns listed in FILE, one a line ('+ ' includes, '- ' excludes, '#' comments).
    #[arg(long, global = true, value_name = "FILE", action = ArgAction::Append)]
    include_filelist: Vec<PathBuf>,
    /// Exclude files whose full path matches this regular expression anywhere.
    #[arg(long, global = true, value_name = "REGEX", action = ArgAction::Append)]
    exclude_regexp: Vec<OsString>,
    /// Include files whose full path matches this regular expression anywhere.
    #[arg(long, global = true, value_name = "REGEX", action = ArgAction::Append)]
    include_regexp: Vec<OsString>,
    /// Exclude directories that contain an entry named NAME.
    #[arg(long, global = true, value_name = "NAME", action = ArgAction::Append)]
    exclude_if_present: Vec<OsString>,
    /// Exclude files on other filesystems than the source.
    #[arg(long, global = true, action = ArgAction::Count)]
    exclude_other_filesystems: u8,
    /// Exclude character and block device files.
    #[arg(long, global = true, action = ArgAction::Count)]
    exclude_device_files: u8,
    /// Exclude regular files last modified before TIME (as -t: 2024-01-02, 3D, epoch, ...).
    #[arg(long, global = true, value_name = "TIME", action = ArgAction::Append)]
    exclude_older_than: Vec<String>,
    /// Back up only the paths listed in FILE (relative to the source), and their parent directories.
    #[arg(long, global = true, value_name = "FILE", action = ArgAction::Append)]
    files_from: Vec<PathBuf>,
    /// Following patterns are shell patterns (the default).
    #[arg(long, global = true, action = ArgAction::Count)]
    filter_globbing: u8,
    /// Following patterns are literal paths.
    #[arg(long, global = true, action = ArgAction::Count)]
    filter_literal: u8,
    /// Following patterns are regular expressions.
    #[arg(long, global = true, action = ArgAction::Count)]
    filter_regexp: u8,
    /// Following patterns ignore case.
    #[arg(long, global = true, action = ArgAction::Count)]
    filter_ignorecase: u8,
    /// Following patterns are case-sensitive (the default).
    #[arg(long, global = true, action = ArgAction::Count)]
    filter_strictcase: u8,
    /// Filelists and --files-from lists are separated by NUL characters instead of newlines.
    #[arg(long, global = true)]
    null_separator: bool,
}

/// The selection options that take a value, by name as typed.
const VALUED: &[&str] = &[
    "--exclude",
    "--include",
    "--exclude-filelist",
    "--include-filelist",
    "--exclude-regexp",
    "--include-regexp",
    "--exclude-if-present",
    "--exclude-older-than",
    "--files-from",
];

fn valued_rule(option: &str, value: OsString, now: i64) -> Result<SelectionRule> {
    Ok(match option {
        "--exclude" => SelectionRule::Exclude(value),
        "--include" => SelectionRule::Include(value),
        "--exclude-filelist" => SelectionRule::ExcludeFilelist(value.into()),
        "--include-filelist" => SelectionRule::IncludeFilelist(value.into()),
        "--exclude-regexp" => SelectionRule::ExcludeRegexp(value),
        "--include-regexp" => SelectionRule::IncludeRegexp(value),
        "--exclude-if-present" => SelectionRule::ExcludeIfPresent(value),
        "--files-from" => SelectionRule::FilesFrom(value.into()),
        "--exclude-older-than" => {
            let text = value.to_string_lossy();
            let t = timestr::parse_time(&text, now)
                .with_context(|| format!("--exclude-older-than {text:?}"))?;
            SelectionRule::ExcludeOlderThan(t)
        }
        other => unreachable!("{other} is not a valued selection option"),
    })
}

fn flag_rule(option: &[u8]) -> Option<SelectionRule> {
    Some(match option {
        b"--exclude-other-filesystems" => SelectionRule::ExcludeOtherFilesystems,
        b"--exclude-device-files" => SelectionRule::ExcludeDeviceFiles,
        b"--filter-globbing" => SelectionRule::FilterGlobbing,
        b"--filter-literal" => SelectionRule::FilterLiteral,
        b"--filter-regexp" => SelectionRule::FilterRegexp,
        b"--filter-ignorecase" => SelectionRule::FilterIgnorecase,
        b"--filter-strictcase" => SelectionRule::FilterStrictcase,
        _ => return None,
    })
}

/// The selection options of a command line (`argv` without or with the program name, already
/// accepted by clap with [`SelectionArgs`] flattened in), in command-line order, as rules; and whether
/// `--null-separator` was given. Read from the raw arguments because clap keeps no order between
/// different options, and merges global options given both before and after the subcommand.
pub fn rules_from_args<I, T>(argv: I, now: i64) -> Result<(Vec<SelectionRule>, bool)>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut rules = Vec::new();
    let mut null_separator = false;
    let mut args = argv.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes == b"--null-separator" {
            null_separator = true;
            continue;
        }
        if let Some(rule) = flag_rule(bytes) {
            rules.push(rule);
            continue;
        }
        for option in VALUED {
            let o = option.as_bytes();
            if bytes == o {
                // clap accepted the line, so the value follows.
                if let Some(value) = args.next() {
                    rules.push(valued_rule(option, value, now)?);
                }
                break;
            }
            if bytes.len() > o.len() && bytes.starts_with(o) && bytes[o.len()] == b'=' {
                let value = OsString::from_vec(bytes[o.len() + 1..].to_vec());
                rules.push(valued_rule(option, value, now)?);
                break;
            }
        }
    }
    Ok((rules, null_separator))
}

/// The [`Selection`] the command line `argv` asks for, for the directory `source_as_typed` (backup's
/// source or verify's local directory, exactly as typed: patterns are matched against it). `now` is
/// the base of relative `--exclude-older-than` times.
pub fn selection_from_args<I, T>(argv: I, source_as_typed: &Path, now: i64) -> Result<Selection>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let (rules, null_separator) = rules_from_args(argv, now)?;
    Ok(Selection::new(source_as_typed, &rules, null_separator)?)
}

/// The selection of a restore, as duplicity 3.2.1 filters one (None: restore everything). Patterns are
/// relative to the archive root, as list-current-files prints the paths (absolute ones and `.`/`..` are an
/// error); they cannot be combined with `--path-to-restore` (`path_given`), and the options that look at
/// the source on disk (`--exclude-if-present`, `--exclude-other-filesystems`, `--files-from`) are refused.
pub fn restore_selection_from_args<I, T>(
    argv: I,
    path_given: bool,
    now: i64,
) -> Result<Option<Selection>>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let (rules, null_separator) = rules_from_args(argv, now)?;
    if rules.is_empty() {
        return Ok(None);
    }
    if path_given {
        anyhow::bail!(
            "--path-to-restore cannot be combined with file selection options ({}): restore one path with --path-to-restore, or select with --include/--exclude (patterns relative to the archive root)",
            rules[0].option()
        );
    }
    Ok(Some(Selection::for_restore(&rules, null_separator)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct TestCli {
        #[arg(long, global = true)]
        name: Option<String>,
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Subcommand, Debug)]
    enum TestCommand {
        Full { source: PathBuf, url: String },
    }

    fn rules(args: &[&str]) -> Vec<SelectionRule> {
        TestCli::try_parse_from(args).unwrap();
        rules_from_args(args, 1000).unwrap().0
    }

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn order_is_kept_across_options_and_around_the_subcommand() {
        let r = rules(&[
            "d",
            "--include",
            "/s/a",
            "--filter-literal",
            "--exclude=/s/b",
            "full",
            "--filter-globbing",
            "--include",
            "/s/c",
            "/s",
            "--exclude",
            "**",
            "file:///t",
        ]);
        assert_eq!(
            r,
            vec![
                SelectionRule::Include(os("/s/a")),
                SelectionRule::FilterLiteral,
                SelectionRule::Exclude(os("/s/b")),
                SelectionRule::FilterGlobbing,
                SelectionRule::Include(os("/s/c")),
                SelectionRule::Exclude(os("**")),
            ]
        );
    }

    #[test]
    fn repeated_flags_each_count_where_they_stand() {
        let r = rules(&[
            "d",
            "full",
            "--filter-ignorecase",
            "--include",
            "/s/A",
            "--filter-strictcase",
            "--exclude",
            "/s/b",
            "--filter-ignorecase",
            "--exclude-older-than",
            "900",
            "--exclude",
            "/s/C",
            "/s",
            "file:///t",
        ]);
        assert_eq!(
            r,
            vec![
                SelectionRule::FilterIgnorecase,
                SelectionRule::Include(os("/s/A")),
                SelectionRule::FilterStrictcase,
                SelectionRule::Exclude(os("/s/b")),
                SelectionRule::FilterIgnorecase,
                SelectionRule::ExcludeOlderThan(900),
                SelectionRule::Exclude(os("/s/C")),
            ]
        );
    }

    #[test]
    fn no_options_select_everything() {
        let args = ["d", "--name", "x", "full", "/s", "file:///t"];
        TestCli::try_parse_from(args).unwrap();
        let sel = selection_from_args(args, Path::new("/s"), 0).unwrap();
        assert!(sel.is_everything());
        // Values of other options and arguments after `--` are not selection options.
        let args = [
            "d",
            "--name=--exclude",
            "full",
            "--",
            "--exclude",
            "file:///t",
        ];
        assert!(rules_from_args(args, 0).unwrap().0.is_empty());
        assert!(restore_selection_from_args(args, false, 0)
            .unwrap()
            .is_none());
        let restore = ["d", "restore", "--exclude", "x", "u", "t"];
        assert!(restore_selection_from_args(restore, false, 0)
            .unwrap()
            .unwrap()
            .is_for_restore());
        assert!(restore_selection_from_args(restore, true, 0).is_err());
    }
}
