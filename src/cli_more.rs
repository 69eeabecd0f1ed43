//! More of duplicity 3.2.1's options (issue 13): `--progress`/`--progress-rate` and the file name
//! prefixes. Flattened into the CLI's options; the prefixes reach the engine through
//! `cli::repository_config` ([`MoreArgs::prefixes`]), progress through the command's options.

use anyhow::{bail, Result};

use crate::engine::archive::names::Prefixes;
use crate::engine::index::Index;

#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Progress and file names (as duplicity 3's)")]
pub struct MoreArgs {
    /// Show progress: on a terminal a bar with the bytes read, the rate and the time left; otherwise a
    /// line per volume (backups) or per volume restored.
    #[arg(long, global = true)]
    pub progress: bool,
    /// Seconds between two redraws of the --progress bar (default 3).
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_rate: Option<u64>,
    /// A prefix for the names of all the files of the backup on the target (and only files with it
    /// are read): several backups can share one target.
    #[arg(long, global = true, value_name = "STRING")]
    pub file_prefix: Option<String>,
    /// A prefix for the volumes' names, after --file-prefix.
    #[arg(long, global = true, value_name = "STRING")]
    pub file_prefix_archive: Option<String>,
    /// A prefix for the manifests' names, after --file-prefix.
    #[arg(long, global = true, value_name = "STRING")]
    pub file_prefix_manifest: Option<String>,
    /// A prefix for the signature files' names, after --file-prefix.
    #[arg(long, global = true, value_name = "STRING")]
    pub file_prefix_signature: Option<String>,
    /// A prefix for the names of duplicity 3's --jsonstat files, after --file-prefix.
    #[arg(long, global = true, value_name = "STRING")]
    pub file_prefix_jsonstat: Option<String>,
    /// Backups: also store the statistics as JSON beside the set (duplicity 3's jsonstat file, the same
    /// keys), and print them.
    #[arg(long, global = true)]
    pub jsonstat: bool,
    /// restore: set files' owners as recorded (the default; only when run as root).
    #[arg(long, global = true, overrides_with = "no_restore_ownership")]
    pub restore_ownership: bool,
    /// restore: do not set owners; the files belong to who restores them (0.8's
    /// --do-not-restore-ownership).
    #[arg(
        long,
        global = true,
        alias = "do-not-restore-ownership",
        overrides_with = "restore_ownership"
    )]
    pub no_restore_ownership: bool,
    /// restore: set owners by the recorded user and group numbers, not by their names.
    #[arg(long, global = true)]
    pub numeric_owner: bool,
    /// restore: restore FROM (a path of the backup, with what is below it) as TO. Repeatable.
    #[arg(long, global = true, num_args = 2, value_names = ["FROM", "TO"],
          action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub rename: Vec<String>,
    /// Backups: compress what is stored (the default).
    #[arg(long, global = true, overrides_with = "no_compression")]
    pub compression: bool,
    /// Backups: store unencrypted files as they are (`.difftar`, no `.gz`), encrypted ones without
    /// compression inside.
    #[arg(long, global = true, overrides_with = "compression")]
    pub no_compression: bool,
    /// Encrypt (the default; overrides an earlier --no-encryption).
    #[arg(long, global = true, overrides_with = "no_encryption")]
    pub encryption: bool,
    /// restore: restore what can be when volumes are missing or damaged (each is skipped, and every
    /// file it costs is left out and named on stderr), and make failing to set an owner, mode or
    /// times a warning. The exit code stays 0, as duplicity's.
    #[arg(long, global = true)]
    pub ignore_errors: bool,
}

/// The last line of a restore whose `--ignore-errors` let errors pass, or None when none did.
pub fn ignored_summary(report: &crate::engine::commands::restore::RestoreReport) -> Option<String> {
    if report.warnings.is_empty() {
        return None;
    }
    Some(format!(
        "restore finished with errors ignored (--ignore-errors): {} volume(s) skipped, {} file(s) named above not restored, {} error(s) in all; everything else was restored",
        report.lost_volumes,
        report.lost_files,
        report.warnings.len()
    ))
}

impl MoreArgs {
    /// The prefixes given; each must be usable inside a file name.
    pub fn prefixes(&self) -> Result<Prefixes> {
        let get = |name: &str, v: &Option<String>| -> Result<String> {
            let v = v.clone().unwrap_or_default();
            if v.contains('/') {
                bail!(
                    "--{name} {v:?}: a prefix is part of a file name and cannot contain '/': use e.g. '-' or '_' to separate"
                );
            }
            Ok(v)
        };
        Ok(Prefixes {
            file: get("file-prefix", &self.file_prefix)?,
            archive: get("file-prefix-archive", &self.file_prefix_archive)?,
            manifest: get("file-prefix-manifest", &self.file_prefix_manifest)?,
            signature: get("file-prefix-signature", &self.file_prefix_signature)?,
            jsonstat: get("file-prefix-jsonstat", &self.file_prefix_jsonstat)?,
        })
    }

    /// The `--rename` rules, as paths of the backup; a later rule for the same FROM replaces an
    /// earlier one, as duplicity's.
    pub fn rename_rules(&self) -> Result<Vec<(Index, Index)>> {
        let mut rules: Vec<(Index, Index)> = Vec::new();
        for pair in self.rename.chunks(2) {
            let [from, to] = pair else {
                bail!("--rename needs two paths: --rename FROM TO");
            };
            let parse = |p: &str| -> Result<Index> {
                let index = Index::parse(p.trim_start_matches("./").as_bytes()).map_err(|e| {
                    anyhow::anyhow!("--rename {from} {to}: {e}: give paths relative to the backup's root, as list-current-files shows them")
                })?;
                if index.is_root() {
                    bail!("--rename {from} {to}: the root of the backup cannot be renamed or be the new name: restore into another directory instead");
                }
                Ok(index)
            };
            let (f, t) = (parse(from)?, parse(to)?);
            rules.retain(|(old, _)| *old != f);
            rules.push((f, t));
        }
        Ok(rules)
    }

    /// `--progress-rate`, or duplicity's default.
    pub fn progress_rate(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.progress_rate
                .unwrap_or(crate::cli_progress::DEFAULT_RATE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules_are_paths_of_the_backup_and_later_ones_win() {
        let m = |v: &[&str]| MoreArgs {
            rename: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let r = m(&["./a/b", "c", "x", "y/z", "a/b/", "d"])
            .rename_rules()
            .unwrap();
        let shown: Vec<(String, String)> = r
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                ("x".to_string(), "y/z".to_string()),
                ("a/b".to_string(), "d".to_string())
            ]
        );
        for bad in [&["../a", "b"][..], &["a", "/etc"], &["a", "."], &[".", "b"]] {
            let e = m(bad).rename_rules().unwrap_err().to_string();
            assert!(e.starts_with("--rename"), "{e}");
        }
    }

    #[test]
    fn prefixes_are_taken_and_a_slash_is_refused() {
        let m = MoreArgs {
            file_prefix: Some("host1-".into()),
            file_prefix_manifest: Some("m_".into()),
            ..Default::default()
        };
        let p = m.prefixes().unwrap();
        assert_eq!((p.file.as_str(), p.manifest.as_str()), ("host1-", "m_"));
        assert!(p.archive.is_empty() && p.signature.is_empty() && p.jsonstat.is_empty());
        let e = MoreArgs {
            file_prefix_archive: Some("a/b".into()),
            ..Default::default()
        }
        .prefixes()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--file-prefix-archive") && e.contains('/'),
            "{e}"
        );
    }
}
