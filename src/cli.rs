//! The duplicity-compatible command line: duplicity's subcommands, argument order, options and time
//! strings, so operators' habits and scripts carry over. Secrets come from the environment only.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::backend;
use crate::engine::cache;
use crate::engine::commands::{backup, restore, status};
use crate::engine::crypto::Passphrase;
use crate::engine::index::Index;
use crate::engine::timestr;

#[derive(Parser, Debug)]
#[command(
    name = "duplicity-charm",
    version,
    about = "Encrypted, bandwidth-efficient backups in duplicity's format",
    after_help = "PASSPHRASE (environment) is the symmetric passphrase; it is never taken from the command line."
)]
struct Cli {
    #[command(flatten)]
    opts: Options,
    #[command(subcommand)]
    command: Command,
}

/// Options accepted before or after the subcommand, as duplicity accepts them.
#[derive(Args, Debug)]
struct Options {
    /// Do not encrypt: volumes are gzipped, manifests plain.
    #[arg(long, global = true)]
    no_encryption: bool,
    /// Where the local cache of manifests and signatures lives (default ~/.cache/duplicity).
    #[arg(long, global = true, value_name = "DIR")]
    archive_dir: Option<PathBuf>,
    /// Name of the cache folder inside the archive dir (default: MD5 of the URL).
    #[arg(long, global = true)]
    name: Option<String>,
    /// Volume size in MiB.
    #[arg(long, global = true, default_value_t = 200, value_name = "MiB",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    volsize: u64,
    /// Make a full backup when the last full is older than TIME (e.g. 1M, 2W, 7D).
    #[arg(long, global = true, value_name = "TIME")]
    full_if_older_than: Option<String>,
    /// Pretend the current time is EPOCH seconds (for tests).
    #[arg(long, global = true, value_name = "EPOCH")]
    current_time: Option<i64>,
    /// Continue a chain made from another host or source directory.
    #[arg(long, global = true)]
    allow_source_mismatch: bool,
    /// Allow restoring into a non-empty target (files there are replaced).
    #[arg(long, global = true)]
    force: bool,
    /// Restore the state as of TIME (now, epoch, 2024-01-02, 3D, 1h30m, ...).
    #[arg(
        short = 't',
        long = "time",
        alias = "restore-time",
        global = true,
        value_name = "TIME"
    )]
    time: Option<String>,
    /// Restore only this path (relative to the backed-up directory).
    #[arg(
        short = 'r',
        long = "file-to-restore",
        alias = "path-to-restore",
        global = true,
        value_name = "PATH"
    )]
    file_to_restore: Option<String>,
    /// Machine-readable output (collection-status).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Full backup of SRC to URL.
    Full { source: PathBuf, url: String },
    /// Incremental backup of SRC to URL (a full when URL has no chain yet).
    #[command(alias = "inc")]
    Incremental { source: PathBuf, url: String },
    /// Restore the backup at URL into DST.
    Restore { url: String, target: PathBuf },
    /// Show the chains and sets stored at URL.
    CollectionStatus { url: String },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("duplicity-charm: error: {}", one_line(&e));
            1
        }
    }
}

/// The error chain on one line: what failed, then why.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn now(opts: &Options) -> i64 {
    opts.current_time
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
}

fn passphrase_for_backup(opts: &Options) -> Result<Option<Passphrase>> {
    if opts.no_encryption {
        return Ok(None);
    }
    match Passphrase::from_env("PASSPHRASE") {
        Some(p) => Ok(Some(p)),
        None => Err(anyhow!(
            "PASSPHRASE is not set: export PASSPHRASE with the backup passphrase, or pass --no-encryption"
        )),
    }
}

fn run(cli: Cli) -> Result<()> {
    let opts = &cli.opts;
    match &cli.command {
        Command::Full { source, url } | Command::Incremental { source, url } => {
            let force_full = matches!(cli.command, Command::Full { .. });
            let backend = backend::open(url)?;
            let full_if_older_than = opts
                .full_if_older_than
                .as_deref()
                .map(|s| {
                    let n = now(opts);
                    timestr::parse_time(s, n).map(|t| n - t)
                })
                .transpose()
                .context("--full-if-older-than")?;
            let backup_opts = backup::BackupOptions {
                source: source.clone(),
                source_as_typed: source.to_string_lossy().into_owned(),
                force_full,
                full_if_older_than,
                volsize: opts.volsize * 1024 * 1024,
                now: now(opts),
                fixed_time: opts.current_time.is_some(),
                allow_source_mismatch: opts.allow_source_mismatch,
                passphrase: passphrase_for_backup(opts)?,
                cache_dir: cache::cache_dir(opts.archive_dir.as_deref(), opts.name.as_deref(), url),
            };
            let report = backup::backup(backend.as_ref(), &backup_opts)
                .with_context(|| format!("backup to {} failed", backend.describe()))?;
            let mut out = std::io::stdout().lock();
            for p in &report.problems {
                eprintln!("duplicity-charm: warning: {p}");
            }
            write!(out, "{}", report.stats.render())?;
            Ok(())
        }
        Command::Restore { url, target } => {
            let backend = backend::open(url)?;
            let n = now(opts);
            let time = match &opts.time {
                Some(t) => timestr::parse_time(t, n).context("-t/--time")?,
                None => n,
            };
            let path = opts
                .file_to_restore
                .as_deref()
                .map(|p| {
                    Index::parse(p.trim_start_matches("./").as_bytes())
                        .map_err(|e| anyhow!("--file-to-restore: {e}"))
                })
                .transpose()?
                .filter(|p| !p.is_root());
            let report = restore::restore(
                backend.as_ref(),
                &restore::RestoreOptions {
                    target: target.clone(),
                    time,
                    path,
                    force: opts.force,
                    passphrase: Passphrase::from_env("PASSPHRASE"),
                },
            )
            .with_context(|| format!("restore from {} failed", backend.describe()))?;
            for n in &report.notes {
                eprintln!("duplicity-charm: note: {n}");
            }
            Ok(())
        }
        Command::CollectionStatus { url } => {
            let backend = backend::open(url)?;
            let mut out = std::io::stdout().lock();
            status::collection_status(backend.as_ref(), &mut out, opts.json)
                .with_context(|| format!("collection-status of {} failed", backend.describe()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_go_before_or_after_the_subcommand() {
        let c = Cli::try_parse_from([
            "d",
            "--no-encryption",
            "full",
            "src",
            "file:///x",
            "--volsize",
            "1",
        ])
        .unwrap();
        assert!(c.opts.no_encryption);
        assert_eq!(c.opts.volsize, 1);
        let c = Cli::try_parse_from([
            "d",
            "restore",
            "-t",
            "3D",
            "file:///x",
            "dst",
            "--file-to-restore",
            "a/b",
        ])
        .unwrap();
        assert_eq!(c.opts.time.as_deref(), Some("3D"));
        assert_eq!(c.opts.file_to_restore.as_deref(), Some("a/b"));
        assert!(Cli::try_parse_from(["d", "full", "src"]).is_err());
    }
}
