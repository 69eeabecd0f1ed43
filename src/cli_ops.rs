//! duplicity's command-line syntax and operations options (issue 13): long options as its parser
//! (Python's argparse) takes them — `--opt=value` or `--opt value`, and any unambiguous prefix of a long
//! option name — and the options that change how a run goes rather than what it stores.

use std::ffi::OsString;

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
    // (name, takes a value, the argument's id): names and aliases of the same argument share the id.
    let mut longs: Vec<(String, bool, String)> = vec![
        ("help".into(), false, "help".into()),
        ("version".into(), false, "version".into()),
    ];
    let mut shorts: Vec<(char, bool)> = vec![('h', false), ('V', false)];
    let mut args: Vec<&clap::Arg> = cmd.get_arguments().collect();
    for sub in cmd.get_subcommands() {
        args.extend(sub.get_arguments());
    }
    for a in args {
        let takes = a.get_action().takes_values();
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
                    let mut matching: Vec<&(String, bool, String)> =
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
                            given: format!("--{name}"),
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
                    if *takes {
                        out.extend(it.next());
                    }
                }
            }
            continue;
        }
        // `-t 3D`: the value is the next word; `-t3D`, `-v4` carry it.
        if let Some(c) = text.strip_prefix('-').filter(|s| s.chars().count() == 1) {
            let c = c.chars().next().unwrap_or('-');
            let takes = shorts.iter().any(|(s, t)| *s == c && *t);
            out.push(word);
            if takes {
                out.extend(it.next());
            }
            continue;
        }
        out.push(word);
    }
    Ok(out)
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
            msg.starts_with("ambiguous option: --num could match --num-retries, --numeric-owner"),
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
}
