//! The duplicity-compatible command line: duplicity's subcommands, argument order, options and time
//! strings, so operators' habits and scripts carry over. Secrets come from the environment only.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::backend;
use crate::engine::commands::retention::RetentionCommand;
use crate::engine::commands::{backup, jsonstat, list, restore, status, verify};
use crate::engine::crypto::Passphrase;
use crate::engine::gnupg::GnupgHome;
use crate::engine::index::Index;
use crate::engine::keys;
use crate::engine::repository::{
    CryptoOptions, Encryption, Keys, RecipientSpec, Repository, RepositoryConfig,
};
use crate::engine::timestr;

#[derive(Parser, Debug)]
#[command(
    name = "duplicity-charm",
    version,
    about = "Encrypted, bandwidth-efficient backups in duplicity's format",
    after_help = "PASSPHRASE (environment) is the symmetric passphrase, or the passphrase of the secret key that \
decrypts (--secret-keyring); SIGN_PASSPHRASE that of the --sign-key (PASSPHRASE if unset). Secrets are never taken \
from the command line."
)]
struct Cli {
    #[command(flatten)]
    opts: Options,
    // File selection: parsed here, read back in command-line order from argv (see cli_selection).
    #[command(flatten)]
    selection: crate::cli_selection::SelectionArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options accepted before or after the subcommand, as duplicity accepts them.
#[derive(Args, Debug)]
struct Options {
    /// Do not encrypt: volumes are gzipped, manifests plain.
    #[arg(long, global = true, overrides_with = "encryption")]
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
    /// Machine-readable output (collection-status, list-current-files, verify, remove-*, cleanup,
    /// backup statistics).
    #[arg(long, global = true)]
    json: bool,
    /// verify: also compare metadata and contents with SRC (otherwise integrity only).
    #[arg(long, global = true)]
    compare_data: bool,
    /// Show what would be done, change nothing (backups write nothing, not even the cache).
    #[arg(long, global = true)]
    dry_run: bool,
    /// Encrypt to this public key instead of a passphrase: a fingerprint or key id found in --keyring,
    /// or the path of a key file. Repeatable.
    #[arg(long, global = true, value_name = "KEY")]
    encrypt_key: Vec<String>,
    /// As --encrypt-key, with the key id left out of the files (gpg --hidden-recipient). Repeatable.
    #[arg(long, global = true, value_name = "KEY")]
    hidden_encrypt_key: Vec<String>,
    /// Same as --encrypt-key KEY --sign-key KEY.
    #[arg(long, global = true, value_name = "KEY")]
    encrypt_sign_key: Option<String>,
    /// Backups: sign every file with this key (from --secret-keyring; SIGN_PASSPHRASE or PASSPHRASE
    /// unlocks it). restore/verify: demand a good signature by this key on every file.
    #[arg(long, global = true, value_name = "KEY")]
    sign_key: Option<String>,
    /// OpenPGP certificates (armored or binary) to find --encrypt-key and signers in. Repeatable.
    #[arg(long, global = true, value_name = "FILE")]
    keyring: Vec<PathBuf>,
    /// Secret keys (armored or binary) that decrypt (PASSPHRASE unlocks them) and sign. Repeatable.
    #[arg(
        long,
        global = true,
        alias = "encrypt-secret-keyring",
        value_name = "FILE"
    )]
    secret_keyring: Vec<PathBuf>,
    /// Backups: refuse to encrypt to or sign with a weak key (DSA, ElGamal, RSA below 2048 bits,
    /// SHA-1 self-signatures: gpg 1.x's keys) instead of warning. Reading is never refused for this.
    #[arg(long, global = true)]
    refuse_weak_keys: bool,
    /// sftp/scp/rsync: ssh options as duplicity takes them, e.g. "-oIdentityFile=K -oUserKnownHostsFile=F".
    #[arg(
        long,
        global = true,
        value_name = "OPTIONS",
        allow_hyphen_values = true
    )]
    ssh_options: Option<String>,
    /// s3: endpoint of an S3-compatible store (e.g. http://127.0.0.1:9000).
    #[arg(long, global = true, value_name = "URL")]
    s3_endpoint_url: Option<String>,
    /// s3: region name.
    #[arg(long, global = true, value_name = "REGION")]
    s3_region_name: Option<String>,
    /// s3: plain http to the host of an s3://host/bucket URL (as duplicity's option).
    #[arg(long, global = true)]
    s3_unencrypted_connection: bool,
    /// The target lets this account create and read files but not delete, rename or replace them
    /// (sftp, ftp, rsync daemon or file): upload straight to final names, checked by size, and make
    /// remove-*/cleanup --force list what would go (to prune on the server) instead of deleting.
    #[arg(long, global = true)]
    append_only_target: bool,
    /// Backups, and remove-*/cleanup with --force: how long to wait for another run that writes to the
    /// same archive dir or target before giving up (0: do not wait).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=7 * 24 * 3600))]
    lock_wait: u64,
    /// rsync://: options handed to rsync as written, e.g. "--password-file=F --partial --compress".
    /// Repeatable. RSYNC_CONNECT_PROG, RSYNC_PROXY and RSYNC_PASSWORD (environment) are honoured.
    #[arg(
        long,
        global = true,
        value_name = "OPTIONS",
        allow_hyphen_values = true
    )]
    rsync_options: Vec<String>,
    /// gpg options as duplicity passes them to gpg. Honoured: --cipher-algo; accepted without effect:
    /// --batch, --no-tty, --yes, --quiet, --verbose, --pinentry-mode, ...; anything else is refused.
    #[arg(
        long,
        global = true,
        value_name = "OPTIONS",
        allow_hyphen_values = true
    )]
    gpg_options: Vec<String>,
    // Operations options (retries, timeout, tempdir, logging, statistics, ...): see cli_ops.
    #[command(flatten)]
    ops: crate::cli_ops::OperationArgs,
    // Progress, file name prefixes, ...: see cli_more.
    #[command(flatten)]
    more: crate::cli_more::MoreArgs,
    // Per-command help screens, --config-dir, --copy-blocksize, --check-remote, --metadata-sync-mode.
    #[command(flatten)]
    meta: crate::cli_meta::MetaArgs,
    // --copy-links, --skip-if-no-change, --max-blocksize, --file-changed, ...: see cli_changes.
    #[command(flatten)]
    changes: crate::cli_changes::ChangeArgs,
    // How S3 and Azure store uploads, S3 Object Lock, other backends' options: see cli_backend.
    #[command(flatten)]
    backend_opts: crate::cli_backend::BackendArgs,
    /// Upload at most RATE to the target (every backend): KiB/s, or with a unit as rsync's --bwlimit
    /// and restic's --limit-upload take it: 500K, 10M, 1.5M, 2MB (K/M/G = 1024-based, KB/MB/GB =
    /// 1000-based). 0: no limit.
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate_arg)]
    limit_upload: Option<u64>,
    /// Download at most RATE from the target (restore, verify, fetching metadata); as --limit-upload.
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate_arg)]
    limit_download: Option<u64>,
}

/// `--limit-upload`/`--limit-download`: bytes per second (see [`backend::throttle::parse_rate`]).
fn parse_rate_arg(s: &str) -> std::result::Result<u64, String> {
    backend::throttle::parse_rate(s).map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Full backup of SRC to URL.
    Full { source: PathBuf, url: String },
    /// Incremental backup of SRC to URL (a full when URL has no chain yet).
    #[command(alias = "inc", alias = "backup")]
    Incremental { source: PathBuf, url: String },
    /// Restore the backup at URL into DST.
    Restore { url: String, target: PathBuf },
    /// Show the chains and sets stored at URL.
    CollectionStatus { url: String },
    /// Check the backup at URL (hashes, decryption, every volume) and, with --compare-data, compare
    /// it with SRC. Exit 1 when differences are found.
    Verify { url: String, source: PathBuf },
    /// List the files of the backup at URL as of -t TIME (default now).
    #[command(alias = "list-current")]
    ListCurrentFiles { url: String },
    /// Delete backup chains older than TIME (only with --force; otherwise show what would go).
    #[command(alias = "remove-old")]
    RemoveOlderThan { time: String, url: String },
    /// Delete all chains but the N newest (only with --force).
    RemoveAllButNFull { n: usize, url: String },
    /// Delete the incrementals of all chains but the N newest, keeping their fulls (only with --force).
    RemoveAllIncOfButNFull { n: usize, url: String },
    /// Delete what interrupted backups left behind (only with --force).
    Cleanup { url: String },
    /// Copy the backup sets at SOURCE_URL that TARGET_URL lacks (up to -t TIME). Files are copied as
    /// they are when the target's keys open them; otherwise they are decrypted (SOURCE_PASSPHRASE, or
    /// PASSPHRASE, and --secret-keyring) and encrypted again as a backup to TARGET_URL would
    /// (PASSPHRASE, --encrypt-key, --no-encryption, --sign-key). Nothing is overwritten or deleted.
    Replicate { source_url: String, url: String },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    // Kept for file selection, whose options count in the order typed (see cli_selection).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // duplicity's parser takes prefixes of long options: full names from here on (see cli_ops).
    let argv =
        match crate::cli_ops::expand_long_prefixes(&<Cli as clap::CommandFactory>::command(), argv)
        {
            Ok(a) => a,
            Err(e) => {
                eprintln!("duplicity-charm: error: {e}");
                return 2;
            }
        };
    // duplicity's --help-* screens: shown whatever else is on the command line.
    if let Some(screen) = crate::cli_meta::help_screen_requested(&command(), &argv) {
        print!("{screen}");
        return 0;
    }
    let argv = match with_implicit_command(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("duplicity-charm: error: {e:#}");
            return 2;
        }
    };
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli, &argv) {
        Ok(code) => code,
        Err(e) => {
            // duplicity's exit code for the failure; the message also goes to --log-file.
            let code = crate::cli_ops::exit_code(&e);
            crate::logging::error(code as u32, &one_line(&e));
            code
        }
    }
}

/// The command line's definition (options, subcommands), for the help screens.
pub(crate) fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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

/// `--sign-key` (or `--encrypt-sign-key`) as a normalized key id; duplicity accepts 8, 16 or 40 hex
/// digits.
fn sign_key_id(opts: &Options) -> Result<Option<String>> {
    let Some(spec) = opts
        .sign_key
        .as_deref()
        .or(opts.encrypt_sign_key.as_deref())
    else {
        return Ok(None);
    };
    keys::normalize_key_id(spec)
        .map(Some)
        .ok_or_else(|| anyhow!(keys::KeyError::BadKeyId(spec.into())))
        .context("--sign-key")
}

/// Whether the command stores new backup files (then the encryption options must say how).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The one place where the command line becomes the engine's configuration: the target and its
/// backend options, the secrets from the environment, the keys, the archive dir and the volume size.
fn repository_config(opts: &Options, url: &str, access: Access) -> Result<RepositoryConfig> {
    let mut backend = backend::OpenOptions::from_env();
    if let Some(s) = &opts.ssh_options {
        backend.set_ssh_options(s);
    }
    for s in &opts.rsync_options {
        backend.add_rsync_options(s)?;
    }
    backend.s3_endpoint_url.clone_from(&opts.s3_endpoint_url);
    backend.s3_region_name.clone_from(&opts.s3_region_name);
    backend.s3_unencrypted_connection = opts.s3_unencrypted_connection;
    opts.ops.apply_backend(&mut backend);
    opts.backend_opts.apply(&mut backend)?;
    backend.upload_limit = opts.limit_upload.filter(|&r| r > 0);
    backend.download_limit = opts.limit_download.filter(|&r| r > 0);
    backend.copy_blocksize = opts.meta.copy_block_bytes();

    let gpg = parse_gpg_options(&opts.gpg_options)?;
    let recipients: Vec<RecipientSpec> = opts
        .encrypt_key
        .iter()
        .chain(opts.encrypt_sign_key.as_ref())
        .map(|k| RecipientSpec {
            key: k.clone(),
            hidden: false,
        })
        .chain(opts.hidden_encrypt_key.iter().map(|k| RecipientSpec {
            key: k.clone(),
            hidden: true,
        }))
        .map(|r| RecipientSpec {
            hidden: r.hidden || gpg.throw_keyids,
            ..r
        })
        .collect();
    let passphrase = Passphrase::from_env("PASSPHRASE");
    let encryption = if opts.no_encryption {
        if !recipients.is_empty() {
            bail!("--no-encryption contradicts --encrypt-key: give one or the other");
        }
        Encryption::None
    } else if !recipients.is_empty() {
        Encryption::PublicKey(recipients)
    } else {
        if access == Access::Write && passphrase.is_none() {
            bail!(
                "PASSPHRASE is not set: export PASSPHRASE with the backup passphrase, or pass --no-encryption"
            );
        }
        Encryption::Passphrase
    };
    // As duplicity (which runs gpg): with no keyring file, keys are where `gpg --import` put them.
    let sign_key = sign_key_id(opts)?;
    if access == Access::Write {
        if gpg.rfc2440 {
            bail!(
                "--gpg-options: --rfc2440 asks for the older message format, which this program does not write: remove it (restores accept it)"
            );
        }
        if let Some(w) = weak_cipher_warning(&gpg.crypto) {
            eprintln!("duplicity-charm: warning: {w}");
        }
    }
    // gpg's --keyring/--secret-keyring inside --gpg-options are our options of the same names.
    let keyring: Vec<PathBuf> = opts.keyring.iter().chain(&gpg.keyrings).cloned().collect();
    let secret_keyring: Vec<PathBuf> = opts
        .secret_keyring
        .iter()
        .chain(&gpg.secret_keyrings)
        .cloned()
        .collect();
    let gnupg_home = if !keyring.is_empty() || !secret_keyring.is_empty() {
        None
    } else if let Some(dir) = &gpg.homedir {
        if !dir.is_dir() {
            bail!(
                "--gpg-options: --homedir {}: no such directory; give gpg's home directory (where gpg --import put the keys)",
                dir.display()
            );
        }
        Some(GnupgHome::at(dir))
    } else {
        GnupgHome::from_env()
    };
    let public_keys = match &gnupg_home {
        // Read only when a key is named: a passphrase-only run never opens gpg's files.
        Some(home) if !matches!(encryption, Encryption::Passphrase) || sign_key.is_some() => {
            home.public_certs().with_context(|| home.describe())?
        }
        _ => keys::load_all(&keyring).context("--keyring")?,
    };
    Ok(RepositoryConfig {
        url: url.to_string(),
        backend,
        keys: Keys {
            encryption,
            passphrase,
            sign_key,
            sign_passphrase: Passphrase::from_env("SIGN_PASSPHRASE"),
            public_keys,
            secret_keys: keys::load_all(&secret_keyring).context("--secret-keyring")?,
            refuse_weak_keys: opts.refuse_weak_keys,
            gnupg_home,
            crypto: gpg.crypto,
        },
        archive_dir: opts.archive_dir.clone(),
        name: opts.name.clone(),
        volsize: opts.volsize * 1024 * 1024,
        lock_wait: std::time::Duration::from_secs(opts.lock_wait),
        concurrency: opts.ops.concurrency.unwrap_or(0) as usize,
        prefixes: opts.more.prefixes()?,
        compression: !opts.more.no_compression,
        append_only_target: opts.append_only_target,
        metadata: opts.meta.sync_policy(),
    })
}

fn open(opts: &Options, url: &str, access: Access) -> Result<Repository> {
    Ok(Repository::open(repository_config(opts, url, access)?)?)
}

/// `-t/--time`, or now.
fn time_option(opts: &Options) -> Result<i64> {
    let n = now(opts);
    match &opts.time {
        Some(t) => Ok(timestr::parse_time(&opts.ops.time_text(t), n).context("-t/--time")?),
        None => Ok(n),
    }
}

/// Runs a command; Ok carries the exit code (verify exits 1 on differences, as duplicity).
fn run(cli: Cli, argv: &[std::ffi::OsString]) -> Result<i32> {
    let opts = &cli.opts;
    opts.ops.start()?;
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Full { source, url } | Command::Incremental { source, url } => {
            let repo = open(opts, url, Access::Write)?;
            let full_if_older_than = opts
                .full_if_older_than
                .as_deref()
                .map(|s| {
                    let n = now(opts);
                    timestr::parse_time(s, n).map(|t| n - t)
                })
                .transpose()
                .context("--full-if-older-than")?;
            let selection = crate::cli_selection::selection_from_args(argv, source, now(opts))?;
            let progress = opts.more.progress.then(|| {
                crate::cli_progress::Progress::backup(source, &selection, opts.more.progress_rate())
            });
            let report = repo.backup(&backup::BackupOptions {
                source: source.clone(),
                source_as_typed: source.to_string_lossy().into_owned(),
                force_full: matches!(cli.command, Command::Full { .. }),
                full_if_older_than,
                now: now(opts),
                fixed_time: opts.current_time.is_some(),
                allow_source_mismatch: opts.allow_source_mismatch,
                dry_run: opts.dry_run,
                progress: progress.as_ref().map(|p| p.volume_callback()),
                selection,
                full_if_n_inc: opts.ops.full_if_n_inc,
                source_bytes_read: progress.as_ref().map(|p| p.read_counter()),
                jsonstat: opts.more.jsonstat.then(|| {
                    crate::engine::commands::jsonstat::JsonStatRequest {
                        target: url.clone(),
                        source: source.to_string_lossy().into_owned(),
                    }
                }),
                tuning: opts.changes.tuning(),
            })?;
            if let Some(p) = progress {
                p.finish(Some(report.stats.source_file_size));
            }
            if report.skipped {
                // duplicity 3's words (its typo kept: scripts may look for them).
                crate::logging::notice("Skipped volume upload, as effectivly nothing has changed");
            }
            for p in &report.problems {
                crate::logging::warn(p);
            }
            if opts.json {
                write!(out, "{}", report.render_json())?;
                return Ok(0);
            }
            if report.dry_run {
                writeln!(
                    out,
                    "Dry run: nothing was stored. The {} backup would have written:",
                    if report.full { "full" } else { "incremental" }
                )?;
                for f in &report.files {
                    writeln!(out, "    {f}")?;
                }
            }
            if let Some(json) = &report.jsonstat {
                // As duplicity 3: printed whatever the verbosity, before the statistics block.
                crate::cli_ops::print_statistics(&mut out, &format!("{json}\n"))?;
            }
            if opts.ops.print_statistics() {
                crate::cli_ops::print_statistics(&mut out, &report.stats.render())?;
            }
            Ok(0)
        }
        Command::Restore { url, target } => {
            let selection = crate::cli_selection::restore_selection_from_args(
                argv,
                opts.file_to_restore.is_some(),
                now(opts),
            )?;
            let repo = open(opts, url, Access::Read)?;
            let path = opts
                .file_to_restore
                .as_deref()
                .map(|p| {
                    Index::parse(p.trim_start_matches("./").as_bytes())
                        .map_err(|e| anyhow!("--file-to-restore: {e}"))
                })
                .transpose()?
                .filter(|p| !p.is_root());
            let progress = opts
                .more
                .progress
                .then(crate::cli_progress::Progress::restore);
            if opts.more.ignore_errors {
                crate::logging::warn("running in 'ignore errors' mode (--ignore-errors): missing or damaged volumes are skipped; drop the option if this was not intended");
            }
            let report = repo.restore(&restore::RestoreOptions {
                target: target.clone(),
                time: time_option(opts)?,
                path,
                force: opts.force,
                progress: progress.as_ref().map(|p| p.restore_callback()),
                restore_ownership: !opts.more.no_restore_ownership,
                numeric_owner: opts.more.numeric_owner,
                rename: opts.more.rename_rules()?,
                selection,
                ignore_errors: opts.more.ignore_errors,
            })?;
            if let Some(p) = progress {
                p.finish(None);
            }
            for n in &report.notes {
                crate::logging::notice(n);
            }
            for w in &report.warnings {
                crate::logging::warn(&format!("IGNORED_ERROR: {w}"));
            }
            if let Some(summary) = crate::cli_more::ignored_summary(&report) {
                crate::logging::warn(&summary);
            }
            // As duplicity 3.2.1: errors the option let pass leave the exit code 0.
            Ok(0)
        }
        Command::CollectionStatus { url } => {
            let repo = open(opts, url, Access::Read)?;
            let file_changed = opts.changes.file_changed_index()?;
            if file_changed.is_some() || opts.changes.show_changes_in_set.is_some() {
                let col = repo.collection()?;
                let sets = repo.primary_chain_changes()?;
                // duplicity indexes the newest-first list with a Python index: -1 is the oldest set
                // (with --jsonstat: every set).
                let position = |n: i64| -> Result<usize> {
                    match usize::try_from(n) {
                        Ok(n) => Ok(n),
                        Err(_) => sets.len().checked_sub(n.unsigned_abs() as usize).with_context(|| {
                            format!(
                                "--show-changes-in-set {n}: the primary chain has {} set(s); give 0 (the newest) to {}, or -1 (the oldest) to -{}",
                                sets.len(),
                                sets.len().saturating_sub(1),
                                sets.len()
                            )
                        }),
                    }
                };
                // As duplicity 3: the last full's date, then the table.
                match col.last_full_time() {
                    Some(t) => writeln!(
                        out,
                        "Last full backup date: {}",
                        crate::engine::timestr::asctime_local(t)
                    )?,
                    None => writeln!(out, "Last full backup date: none")?,
                }
                // --show-changes-in-set wins when both are given, as in duplicity.
                let text = match (opts.changes.show_changes_in_set, &file_changed) {
                    (Some(n), _) if opts.more.jsonstat => {
                        let index = if n < 0 { None } else { Some(position(n)?) };
                        // The file lists are the manifests already read above; the statistics
                        // come from the jsonstat files (an empty object for a set without one).
                        let mut stats: std::collections::BTreeMap<_, _> =
                            repo.primary_chain_jsonstats()?.into_iter().collect();
                        let with_stats: Vec<jsonstat::SetStats> = sets
                            .iter()
                            .map(|s| {
                                let key = jsonstat::key_of(s.full, s.time);
                                jsonstat::SetStats {
                                    stats: stats
                                        .remove(&key)
                                        .unwrap_or(jsonstat::OrderedJson::Object(Vec::new())),
                                    key,
                                    files_changed: s
                                        .files
                                        .iter()
                                        .map(|(a, p)| (p.to_string(), a.as_str().to_string()))
                                        .collect(),
                                }
                            })
                            .collect();
                        if with_stats.is_empty() {
                            // No chain: duplicity prints nothing.
                            String::new()
                        } else {
                            jsonstat::changes_in_set_json(&with_stats, index)
                                .map_err(crate::engine::error::Error::bad_input)?
                                + "\n"
                        }
                    }
                    (Some(n), _) => status::changes_in_set_text(&sets, position(n)?)?,
                    (None, Some(p)) => status::file_changed_text(p, &sets),
                    (None, None) => unreachable!("checked above"),
                };
                out.write_all(text.as_bytes())?;
                return Ok(0);
            }
            status::collection_status(&repo, &mut out, opts.json)?;
            Ok(0)
        }
        Command::ListCurrentFiles { url } => {
            let repo = open(opts, url, Access::Read)?;
            let notes = list::list_current_files(&repo, time_option(opts)?, &mut out, opts.json)?;
            for n in &notes {
                crate::logging::notice(n);
            }
            Ok(0)
        }
        Command::Verify { url, source } => {
            if opts.file_to_restore.is_some() {
                bail!("verify --file-to-restore is not supported yet: verify the whole backup");
            }
            let repo = open(opts, url, Access::Read)?;
            let report = repo.verify(&verify::VerifyOptions {
                source: source.clone(),
                time: time_option(opts)?,
                compare_data: opts.compare_data,
                scratch_in: None,
                selection: crate::cli_selection::selection_from_args(argv, source, now(opts))?,
                copy_links: opts.changes.copy_links,
                read_size: opts.meta.copy_block_bytes(),
            })?;
            for n in &report.notes {
                crate::logging::notice(n);
            }
            let text = if opts.json {
                report.render_json()
            } else {
                report.render()
            };
            out.write_all(text.as_bytes())?;
            Ok(if report.differences.is_empty() { 0 } else { 1 })
        }
        Command::RemoveOlderThan { url, .. }
        | Command::RemoveAllButNFull { url, .. }
        | Command::RemoveAllIncOfButNFull { url, .. }
        | Command::Cleanup { url } => {
            let command = match &cli.command {
                Command::RemoveOlderThan { time, .. } => RetentionCommand::RemoveOlderThan {
                    time: timestr::parse_time(&opts.ops.time_text(time), now(opts))
                        .with_context(|| format!("remove-older-than {time:?}"))?,
                },
                Command::RemoveAllButNFull { n, .. } => {
                    RetentionCommand::RemoveAllButNFull { n: *n }
                }
                Command::RemoveAllIncOfButNFull { n, .. } => {
                    RetentionCommand::RemoveAllIncOfButNFull { n: *n }
                }
                _ => RetentionCommand::Cleanup,
            };
            let repo = open(opts, url, Access::Read)?;
            let apply = opts.force && !opts.dry_run;
            let (plan, applied) = repo.retention(command, apply)?;
            let text = if opts.json {
                plan.render_json(applied.as_ref())
            } else {
                plan.render(apply)
            };
            out.write_all(text.as_bytes())?;
            Ok(0)
        }
        Command::Replicate { source_url, url } => {
            let report = replicate(opts, source_url, url)?;
            for n in &report.notes {
                crate::logging::notice(n);
            }
            writeln!(out, "{}", report.summary())?;
            Ok(0)
        }
    }
}

/// `replicate`: the source is read with the same options as the target, but with
/// `SOURCE_PASSPHRASE` (when set) as its passphrase.
fn replicate(
    opts: &Options,
    source_url: &str,
    url: &str,
) -> Result<crate::engine::commands::replicate::ReplicateReport> {
    if opts.dry_run {
        bail!("replicate --dry-run is not supported: run collection-status on both URLs to compare them");
    }
    let mut source_config = repository_config(opts, source_url, Access::Read)?;
    if let Some(p) = Passphrase::from_env("SOURCE_PASSPHRASE") {
        source_config.keys.passphrase = Some(p);
    }
    let source = Repository::open(source_config)?;
    let target = open(opts, url, Access::Write)?;
    let time = opts.time.as_ref().map(|_| time_option(opts)).transpose()?;
    Ok(target.replicate_from(
        &source,
        &crate::engine::commands::replicate::ReplicateOptions { time },
    )?)
}

/// What `--gpg-options` asks for: the engine's [`CryptoOptions`] and where keys are.
#[derive(Debug, Default, PartialEq, Eq)]
struct GpgOptions {
    crypto: CryptoOptions,
    /// `--homedir`: gpg's own keyring directory instead of GNUPGHOME / ~/.gnupg.
    homedir: Option<PathBuf>,
    /// `--keyring`: as our --keyring.
    keyrings: Vec<PathBuf>,
    /// `--secret-keyring`: as our --secret-keyring.
    secret_keyrings: Vec<PathBuf>,
    /// `--rfc2440`: asks for a format older than what we write (refused when writing).
    rfc2440: bool,
    /// `--throw-keyids`: every recipient hidden (wildcard key id), as --hidden-encrypt-key.
    throw_keyids: bool,
}

/// gpg options that change nothing we write or read: accepted and ignored.
const HARMLESS_GPG_OPTIONS: &[&str] = &[
    "--batch",
    "--no-tty",
    "--yes",
    "--quiet",
    "-q",
    "--verbose",
    "-v",
    "--no-verbose",
    "--no-permission-warning",
    "--ignore-mdc-error",
    "--force-mdc",
    "--no-greeting",
    "--no-secmem-warning",
    "--use-agent",
    "--no-use-agent",
    "--always-trust",
    "--no-auto-key-locate",
    "--lock-never",
    // We write RFC 4880 messages anyway.
    "--openpgp",
];

/// `--gpg-options` (repeatable; each split as a shell would; `--opt=value` or `--opt value`).
#[allow(deprecated)] // CAST5 and 3DES: gpg still writes them when told to, so we do too
fn parse_gpg_options(gpg_options: &[String]) -> Result<GpgOptions> {
    use crate::engine::crypto::Compression;
    use sequoia_openpgp::types::SymmetricAlgorithm as S;
    let cipher = |name: &str, v: &str| {
        Ok(match v.to_ascii_uppercase().as_str() {
            "AES" | "AES128" => S::AES128,
            "AES192" => S::AES192,
            "AES256" => S::AES256,
            "TWOFISH" => S::Twofish,
            "CAMELLIA128" => S::Camellia128,
            "CAMELLIA192" => S::Camellia192,
            "CAMELLIA256" => S::Camellia256,
            "CAST5" => S::CAST5,
            "3DES" => S::TripleDES,
            "BLOWFISH" => S::Blowfish,
            _ => bail!(
                "--gpg-options: {name} {v} is not a cipher this program writes: use AES256, AES192, AES, TWOFISH, CAMELLIA256/192/128, CAST5, 3DES or BLOWFISH"
            ),
        })
    };
    let digest = |name: &str, v: &str| {
        use sequoia_openpgp::types::HashAlgorithm as H;
        Ok(match v.to_ascii_uppercase().as_str() {
            "SHA1" => H::SHA1,
            "SHA224" => H::SHA224,
            "SHA256" => H::SHA256,
            "SHA384" => H::SHA384,
            "SHA512" => H::SHA512,
            _ => bail!(
                "--gpg-options: {name} {v} is not a digest this program writes: use SHA256, SHA384, SHA512, SHA224 or SHA1"
            ),
        })
    };
    let mut out = GpgOptions::default();
    let mut words = Vec::new();
    for s in gpg_options {
        let mut o = backend::OpenOptions::new();
        o.set_ssh_options(s); // the same shell-like split
        words.extend(o.ssh_options);
    }
    // -z and --compress-algo combine whatever their order: none/-z 0 store, else the algorithm (ZIP by
    // default) at the level.
    let mut level: Option<u32> = None;
    let mut uncompressed = false;
    // gpg's algorithm number: 1 ZIP, 2 ZLIB, 3 BZip2.
    let mut algo = 1u8;
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            // gpg's -zN (the level glued to the letter).
            _ if w.len() > 2 && w.starts_with("-z") => ("-z".to_string(), Some(w[2..].to_string())),
            _ => (w.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| anyhow!("--gpg-options: {name} needs a value"))
        };
        match name.as_str() {
            "--cipher-algo" => out.crypto.cipher = Some(cipher(&name, &value(&name)?)?),
            "--s2k-cipher-algo" => out.crypto.s2k.cipher = Some(cipher(&name, &value(&name)?)?),
            "--digest-algo" => out.crypto.digest = Some(digest(&name, &value(&name)?)?),
            "--s2k-digest-algo" => out.crypto.s2k.hash = Some(digest(&name, &value(&name)?)?),
            "--s2k-mode" => {
                let v = value(&name)?;
                match v.parse::<u8>() {
                    Ok(m @ (0 | 1 | 3)) => out.crypto.s2k.mode = Some(m),
                    _ => bail!("--gpg-options: --s2k-mode {v}: use 0 (simple), 1 (salted) or 3 (iterated and salted)"),
                }
            }
            "--s2k-count" => {
                let v = value(&name)?;
                match v.parse::<u32>() {
                    Ok(n @ 1024..=65_011_712) => out.crypto.s2k.count = Some(n),
                    _ => bail!("--gpg-options: --s2k-count {v}: give a count from 1024 to 65011712"),
                }
            }
            "--throw-keyids" => out.throw_keyids = true,
            "--no-throw-keyids" => out.throw_keyids = false,
            "--compress-algo" => {
                let v = value(&name)?;
                match v.to_ascii_lowercase().as_str() {
                    "zip" | "1" => (uncompressed, algo) = (false, 1),
                    "zlib" | "2" => (uncompressed, algo) = (false, 2),
                    "bzip2" | "3" => (uncompressed, algo) = (false, 3),
                    "none" | "uncompressed" | "0" => uncompressed = true,
                    _ => bail!(
                        "--gpg-options: --compress-algo {v} is not an algorithm gpg knows: use zip, zlib, bzip2 or none"
                    ),
                }
            }
            "--compress-level" | "-z" => {
                let v = value(&name)?;
                match v.parse::<u32>() {
                    Ok(n @ 0..=9) => level = Some(n),
                    _ => bail!("--gpg-options: {name} {v}: give a level from 0 (no compression) to 9"),
                }
            }
            "--homedir" => out.homedir = Some(PathBuf::from(value(&name)?)),
            "--keyring" => out.keyrings.push(PathBuf::from(value(&name)?)),
            "--secret-keyring" => out.secret_keyrings.push(PathBuf::from(value(&name)?)),
            "--rfc2440" => out.rfc2440 = true,
            // No trust database here: a key is used because the command line names it.
            "--pinentry-mode" | "--trust-model" => {
                value(&name)?;
            }
            n if HARMLESS_GPG_OPTIONS.contains(&n) => {}
            n => bail!(
                "--gpg-options: {n} is not supported (honoured: --cipher-algo, --compress-algo, -z/--compress-level, --digest-algo, --s2k-cipher-algo, --s2k-digest-algo, --s2k-mode, --s2k-count, --throw-keyids, --homedir, --keyring, --secret-keyring; --batch, --no-tty, --yes, --quiet, --verbose, --pinentry-mode, --trust-model and the like are accepted): remove it"
            ),
        }
    }
    out.crypto.compression = match (uncompressed, level, algo) {
        (true, _, _) | (false, Some(0), _) => Some(Compression::None),
        (false, Some(n), 1) => Some(Compression::Deflate(n)),
        (false, None, 1) => None,
        // gpg's own default level for zlib and bzip2 (zlib's default, and bzip2's 6).
        (false, n, 2) => Some(Compression::Zlib(n.unwrap_or(6))),
        (false, n, _) => Some(Compression::Bzip2(n.unwrap_or(6))),
    };
    Ok(out)
}

/// A one-line warning when `--cipher-algo` chose a 64-bit-block cipher for writing.
#[allow(deprecated)]
fn weak_cipher_warning(crypto: &CryptoOptions) -> Option<String> {
    use sequoia_openpgp::types::SymmetricAlgorithm as S;
    match crypto.cipher? {
        c @ (S::CAST5 | S::TripleDES | S::Blowfish | S::IDEA) => Some(format!(
            "--gpg-options: --cipher-algo {c} is an old 64-bit-block cipher; prefer AES256"
        )),
        _ => None,
    }
}

/// True for a target URL as duplicity tells one from a local path: it starts with a scheme and `://`.
fn is_url(arg: &std::ffi::OsStr) -> bool {
    let Some(s) = arg.to_str() else {
        return false;
    };
    s.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// duplicity's implicit actions: without a command word, `SRC URL` is a backup (incremental, or a full
/// when there is no chain or --full-if-older-than says so) and `URL DIR` a restore. Returns argv with
/// the command word put in front of the first positional argument; argv with a command is unchanged.
/// Options may come before, between or after the arguments, as with duplicity.
fn with_implicit_command(argv: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let takes_value = |word: &str| -> Option<usize> {
        let arg = if let Some(long) = word.strip_prefix("--") {
            if long.contains('=') {
                return Some(0);
            }
            cmd.get_arguments().find(|a| {
                a.get_long() == Some(long)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&long))
            })?
        } else {
            let mut chars = word.strip_prefix('-')?.chars();
            let c = chars.next()?;
            let a = cmd.get_arguments().find(|a| a.get_short() == Some(c))?;
            if chars.next().is_some() {
                return Some(0); // -t3D: the value is attached
            }
            a
        };
        Some(crate::cli_ops::values_taken(arg))
    };
    let mut positional: Vec<usize> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let w = argv[i].to_string_lossy();
        if w == "--" {
            positional.extend(i + 1..argv.len());
            break;
        }
        if w.starts_with('-') && w.len() > 1 {
            i += takes_value(&w).unwrap_or(0);
        } else {
            positional.push(i);
        }
        i += 1;
    }
    let Some(&first) = positional.first() else {
        return Ok(argv);
    };
    let word = argv[first].to_string_lossy();
    let known = cmd
        .get_subcommands()
        .any(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
        || word == "help";
    if known || positional.len() != 2 {
        return Ok(argv);
    }
    let (a, b) = (&argv[positional[0]], &argv[positional[1]]);
    let command = match (is_url(a), is_url(b)) {
        (false, true) => "incremental",
        (true, false) => "restore",
        (true, true) => bail!(
            "two URLs given: one argument must be a local directory (SRC URL backs up, URL DIR restores)"
        ),
        (false, false) => bail!(
            "neither argument is a URL (scheme://...): give SRC URL to back up or URL DIR to restore, \
             e.g. file:///mnt/backup or rsync://user@host::module/path"
        ),
    };
    let mut out = argv;
    out.insert(first, command.into());
    Ok(out)
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

    #[test]
    fn gpg_options_cipher_honoured_harmless_accepted_others_refused() {
        use sequoia_openpgp::types::SymmetricAlgorithm as S;
        let c = parse_gpg_options(&[
            "--batch --cipher-algo=twofish".into(),
            "--pinentry-mode loopback".into(),
        ])
        .unwrap()
        .crypto;
        assert_eq!(c.cipher, Some(S::Twofish));
        assert_eq!(
            parse_gpg_options(&["--cipher-algo AES256".into()])
                .unwrap()
                .crypto
                .cipher,
            Some(S::AES256)
        );
        assert!(parse_gpg_options(&["--cipher-algo=IDEA2".into()]).is_err());
        let e = parse_gpg_options(&["--batch --export-options x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--export-options is not supported"), "{e}");
    }

    #[test]
    fn gpg_options_compression_keyrings_homedir_and_accepted_ones() {
        use crate::engine::crypto::Compression;
        let c = |s: &[&str]| {
            parse_gpg_options(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|g| g.crypto.compression)
        };
        assert_eq!(c(&[]).unwrap(), None);
        assert_eq!(c(&["-z 0"]).unwrap(), Some(Compression::None));
        assert_eq!(c(&["-z9"]).unwrap(), Some(Compression::Deflate(9)));
        assert_eq!(
            c(&["--compress-level=5", "--compress-algo zip"]).unwrap(),
            Some(Compression::Deflate(5))
        );
        assert_eq!(
            c(&["--compress-algo=none -z 6"]).unwrap(),
            Some(Compression::None)
        );
        assert_eq!(
            c(&["--compress-algo Uncompressed"]).unwrap(),
            Some(Compression::None)
        );
        assert_eq!(
            c(&["--compress-algo zlib"]).unwrap(),
            Some(Compression::Zlib(6))
        );
        assert_eq!(
            c(&["-z 9 --compress-algo=BZIP2"]).unwrap(),
            Some(Compression::Bzip2(9))
        );
        assert_eq!(
            c(&["--compress-algo 3 -z 0"]).unwrap(),
            Some(Compression::None)
        );
        for bad in ["--compress-algo lzma", "-z 10", "-z"] {
            assert!(c(&[bad]).is_err(), "{bad}");
        }
        let e = c(&["--compress-algo lzma"]).unwrap_err().to_string();
        assert!(e.contains("--compress-algo lzma"), "{e}");

        let g = parse_gpg_options(&[
            "--homedir /g --keyring=/k1 --secret-keyring /s --trust-model always".into(),
            "--keyring /k2 --rfc2440 --openpgp --no-tty --yes --quiet".into(),
        ])
        .unwrap();
        assert_eq!(g.homedir, Some(PathBuf::from("/g")));
        assert_eq!(g.keyrings, [PathBuf::from("/k1"), PathBuf::from("/k2")]);
        assert_eq!(g.secret_keyrings, [PathBuf::from("/s")]);
        assert!(g.rfc2440);

        let g = parse_gpg_options(&[
            "--s2k-mode 1 --s2k-cipher-algo=twofish --s2k-digest-algo sha512".into(),
            "--s2k-count=1024 --digest-algo SHA384 --throw-keyids".into(),
        ])
        .unwrap();
        use sequoia_openpgp::types::{HashAlgorithm as H, SymmetricAlgorithm as S};
        assert_eq!(g.crypto.s2k.mode, Some(1));
        assert_eq!(g.crypto.s2k.cipher, Some(S::Twofish));
        assert_eq!(g.crypto.s2k.hash, Some(H::SHA512));
        assert_eq!(g.crypto.s2k.count, Some(1024));
        assert_eq!(g.crypto.digest, Some(H::SHA384));
        assert!(g.throw_keyids);
        for (bad, named) in [
            ("--s2k-mode 2", "--s2k-mode 2"),
            ("--s2k-count 10", "--s2k-count 10"),
            ("--digest-algo MD5", "--digest-algo MD5"),
            ("--s2k-digest-algo=MD5", "--s2k-digest-algo MD5"),
            ("--s2k-cipher-algo IDEA", "--s2k-cipher-algo IDEA"),
        ] {
            let e = parse_gpg_options(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn gpg_options_weak_cipher_warned() {
        let w = |s: &str| weak_cipher_warning(&parse_gpg_options(&[s.into()]).unwrap().crypto);
        assert!(w("--cipher-algo CAST5").unwrap().contains("CAST5"));
        assert!(w("--cipher-algo=3des").is_some());
        assert!(w("--cipher-algo blowfish").is_some());
        assert!(w("--cipher-algo AES256").is_none());
        assert!(w("--batch").is_none());
    }

    #[test]
    fn ignore_errors_is_taken_before_or_after_restore_and_off_by_default() {
        for argv in [
            &["d", "restore", "--ignore-errors", "file:///t", "/r"][..],
            &["d", "--ignore-errors", "restore", "file:///t", "/r"],
        ] {
            assert!(Cli::try_parse_from(argv).unwrap().opts.more.ignore_errors);
        }
        let c = Cli::try_parse_from(["d", "restore", "file:///t", "/r"]).unwrap();
        assert!(!c.opts.more.ignore_errors);
    }

    #[test]
    fn gpg_options_rfc2440_refused_for_backups_only() {
        let cli = |a: &[&str]| Cli::try_parse_from(a).unwrap();
        let c = cli(&[
            "d",
            "--gpg-options",
            "--rfc2440",
            "--no-encryption",
            "full",
            "/s",
            "file:///t",
        ]);
        let e = repository_config(&c.opts, "file:///t", Access::Write)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--rfc2440"), "{e}");
        // A restore (no --no-encryption: a passphrase backup, so gpg's keyring is not opened).
        let c = cli(&[
            "d",
            "--gpg-options",
            "--rfc2440",
            "restore",
            "file:///t",
            "/r",
        ]);
        repository_config(&c.opts, "file:///t", Access::Read).unwrap();
    }

    fn implicit(args: &[&str]) -> Result<Vec<String>> {
        let argv = args.iter().map(std::ffi::OsString::from).collect();
        Ok(with_implicit_command(argv)?
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect())
    }

    #[test]
    fn implicit_backup_and_restore_as_duplicity() {
        assert_eq!(
            implicit(&[
                "d",
                "--full-if-older-than",
                "2M",
                "--gpg-x=1",
                "/src",
                "rsync://u@h::m/"
            ])
            .unwrap(),
            [
                "d",
                "--full-if-older-than",
                "2M",
                "--gpg-x=1",
                "incremental",
                "/src",
                "rsync://u@h::m/"
            ]
        );
        assert_eq!(
            implicit(&["d", "file:///b", "-t", "3D", "dst", "--force"]).unwrap(),
            ["d", "restore", "file:///b", "-t", "3D", "dst", "--force"]
        );
        // A value of an option is not an argument, whatever it looks like.
        assert_eq!(
            implicit(&["d", "--archive-dir", "file:///x", "src", "file:///b"]).unwrap()[3],
            "incremental"
        );
        // Commands stay as they are, `backup` too.
        for a in [
            &["d", "full", "s", "file:///b"][..],
            &["d", "backup", "s", "file:///b"],
            &["d", "remove-all-but-n-full", "12", "--force", "file:///b"],
        ] {
            assert_eq!(implicit(a).unwrap(), a);
        }
        assert!(implicit(&["d", "a", "b"])
            .unwrap_err()
            .to_string()
            .contains("neither"));
        assert!(implicit(&["d", "s3://a", "file:///b"]).is_err());
        let c = Cli::try_parse_from(
            implicit(&["d", "s", "file:///b", "--rsync-options", "--partial -z"]).unwrap(),
        )
        .unwrap();
        assert!(matches!(c.command, Command::Incremental { .. }));
        assert_eq!(c.opts.rsync_options, ["--partial -z"]);
        let c = Cli::try_parse_from(["d", "backup", "s", "file:///b"]).unwrap();
        assert!(matches!(c.command, Command::Incremental { .. }));
    }

    #[test]
    fn rate_limits_reach_the_backend_options() {
        let c = Cli::try_parse_from([
            "d",
            "full",
            "--limit-upload",
            "500K",
            "--limit-download=10M",
            "s",
            "file:///b",
        ])
        .unwrap();
        let config = repository_config(&c.opts, "file:///b", Access::Read).unwrap();
        assert_eq!(config.backend.upload_limit, Some(500 * 1024));
        assert_eq!(config.backend.download_limit, Some(10 << 20));
        let c =
            Cli::try_parse_from(["d", "full", "--limit-upload", "0", "s", "file:///b"]).unwrap();
        let config = repository_config(&c.opts, "file:///b", Access::Read).unwrap();
        assert_eq!(config.backend.upload_limit, None);
        let e = Cli::try_parse_from(["d", "full", "--limit-upload", "fast", "s", "file:///b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--limit-upload") && e.contains("500K"), "{e}");
    }
}
