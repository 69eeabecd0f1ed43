//! duplicity 3.2.1's options about what a backup reads and records and how collection-status shows
//! the changes (issue 13): `--copy-links`, `--skip-if-no-change`, `--files-changed`/
//! `--no-files-changed`, `--max-blocksize`, `--file-changed`, `--show-changes-in-set`.
//! Flattened into the CLI's options.

use anyhow::{anyhow, Result};

use crate::engine::commands::backup::BackupTuning;
use crate::engine::delta;
use crate::engine::index::Index;

#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Changes and symlinks (as duplicity 3's)")]
pub struct ChangeArgs {
    /// Backups: back up what symlinks point to instead of the links. Dangling links, loops of links
    /// and links to a directory above them are left out, each with a warning. verify: compare with
    /// what the directory's symlinks point to (give it when the backup was made with it).
    #[arg(long, global = true)]
    pub copy_links: bool,
    /// Incrementals: when nothing changed, store nothing (no volume, signatures or manifest).
    #[arg(long, global = true)]
    pub skip_if_no_change: bool,
    /// Backups: list the files changed in the manifest (the default).
    #[arg(long, global = true, overrides_with = "no_files_changed")]
    pub files_changed: bool,
    /// Backups: do not list the files changed in the manifest (`Filelist 0`); --file-changed and
    /// --show-changes-in-set then show nothing for that set.
    #[arg(long, global = true, overrides_with = "files_changed")]
    pub no_files_changed: bool,
    /// Backups: signatures use blocks of the square root of the file size (rounded up to 512 bytes)
    /// up to BYTES (rounded up to 512), as duplicity 3.2.1. Without it: duplicity 0.8's 512..2048.
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_max_blocksize)]
    pub max_blocksize: Option<usize>,
    /// collection-status: in which sets of the primary chain PATH (relative to the backed-up
    /// directory) is new, changed or deleted.
    #[arg(long, global = true, value_name = "PATH")]
    pub file_changed: Option<String>,
    /// collection-status: the files new, changed or deleted in set N of the primary chain (0 the
    /// newest, 1 the one before, ...; a negative N counts from the oldest, as duplicity's Python
    /// index does). With --jsonstat: the set's statistics too, as JSON; -1 for every set.
    #[arg(long, global = true, value_name = "N", allow_negative_numbers = true)]
    pub show_changes_in_set: Option<i64>,
}

/// `--max-blocksize`: bytes, rounded up to 512 as duplicity's parser does (0 gives 512).
fn parse_max_blocksize(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of bytes (e.g. 4096)"))?;
    Ok(delta::round512(n))
}

impl ChangeArgs {
    /// The engine's backup tuning these options ask for.
    pub fn tuning(&self) -> BackupTuning {
        BackupTuning {
            copy_links: self.copy_links,
            skip_if_no_change: self.skip_if_no_change,
            files_changed: !self.no_files_changed,
            max_blocksize: self.max_blocksize,
        }
    }

    /// `--file-changed` as an index of the backup (a leading `./` or `/` is not part of it).
    pub fn file_changed_index(&self) -> Result<Option<Index>> {
        self.file_changed
            .as_deref()
            .map(|p| {
                let p = p.trim_start_matches("./").trim_start_matches('/');
                Index::parse(p.as_bytes()).map_err(|e| anyhow!("--file-changed {p:?}: {e}"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: ChangeArgs,
    }

    fn parse(args: &[&str]) -> Result<ChangeArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.c)
    }

    #[test]
    fn defaults_are_a_backup_without_the_options() {
        let c = parse(&[]).unwrap();
        let t = c.tuning();
        assert!(!t.copy_links && !t.skip_if_no_change && t.files_changed);
        assert_eq!(t.max_blocksize, None);
        assert!(c.file_changed_index().unwrap().is_none());
    }

    #[test]
    fn options_parse_as_duplicity_takes_them() {
        let c = parse(&[
            "--copy-links",
            "--skip-if-no-change",
            "--no-files-changed",
            "--max-blocksize=1000",
            "--file-changed",
            "./d/b c",
            "--show-changes-in-set",
            "1",
        ])
        .unwrap();
        let t = c.tuning();
        assert!(t.copy_links && t.skip_if_no_change && !t.files_changed);
        assert_eq!(t.max_blocksize, Some(1024));
        assert_eq!(
            c.file_changed_index().unwrap().unwrap().to_string(),
            "d/b c"
        );
        assert_eq!(c.show_changes_in_set, Some(1));
        // The last of --files-changed / --no-files-changed wins.
        let c = parse(&["--no-files-changed", "--files-changed"]).unwrap();
        assert!(c.tuning().files_changed);
        assert_eq!(
            parse(&["--max-blocksize", "0"]).unwrap().max_blocksize,
            Some(512)
        );
        for bad in [
            &["--max-blocksize", "big"][..],
            &["--max-blocksize", "-5"],
            &["--show-changes-in-set", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
