//! Bandwidth limits measured over real transfers: every backend, on the loopback test servers (file
//! needs none), puts and gets a file with an upload and a download limit, and the CLI backs up to and
//! restores from sftp with `--limit-upload`/`--limit-download`. Loopback moves these few hundred KiB in
//! milliseconds, so a transfer that takes at least 0.8 × bytes / limit shows the limit at work. Only that
//! lower bound is checked: a slow machine makes transfers slower, never faster, so it cannot flake.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use duplicity_charm::backend;

use crate::backend_conformance::{self as conf, Target};
use crate::support::*;

/// The limit of these tests: 128 KiB/s.
const LIMIT: u64 = 128 * 1024;
/// Three seconds' worth at the limit.
const SIZE: usize = 384 * 1024;
const NAME: &str = "duplicity-full.20240101T000000Z.vol1.difftar.gpg";

/// The shortest time `bytes` may take at the limit, with a 20% margin (and the bucket's first burst).
fn floor(bytes: u64) -> Duration {
    Duration::from_secs_f64(0.8 * bytes as f64 / LIMIT as f64)
}

fn check_rate(what: &str, bytes: u64, took: Duration) {
    let rate = bytes as f64 / took.as_secs_f64();
    eprintln!(
        "{what}: {bytes} bytes in {took:?} = {:.0} KiB/s",
        rate / 1024.0
    );
    assert!(
        took >= floor(bytes),
        "{what}: {bytes} bytes in {took:?} is {:.0} KiB/s, faster than the limit of {} KiB/s allows",
        rate / 1024.0,
        LIMIT / 1024
    );
}

/// Put, get and streaming open of SIZE bytes through `t`'s backend with both limits at LIMIT.
fn put_and_get_at_the_limit(mut t: Target) {
    t.opts.upload_limit = Some(LIMIT);
    t.opts.download_limit = Some(LIMIT);
    let b = backend::open(&t.url, &t.opts).expect("open backend");
    let data = random_bytes(16, SIZE);
    let src = t.ws.p("payload");
    fs::write(&src, &data).unwrap();

    let start = Instant::now();
    b.put(&src, NAME).unwrap();
    check_rate(
        &format!("put to {}", b.describe()),
        SIZE as u64,
        start.elapsed(),
    );

    let dst = t.ws.p("got");
    let start = Instant::now();
    b.get(NAME, &dst).unwrap();
    check_rate(
        &format!("get from {}", b.describe()),
        SIZE as u64,
        start.elapsed(),
    );
    assert!(fs::read(&dst).unwrap() == data, "get: the bytes differ");

    let start = Instant::now();
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut b.open(NAME).unwrap(), &mut read).unwrap();
    check_rate(
        &format!("open of {}", b.describe()),
        SIZE as u64,
        start.elapsed(),
    );
    assert!(read == data, "open: the bytes differ");
}

#[test]
fn file() {
    put_and_get_at_the_limit(conf::file_target());
}

#[test]
fn sftp() {
    put_and_get_at_the_limit(conf::sftp_target());
}

#[test]
fn rsync_over_ssh() {
    put_and_get_at_the_limit(conf::rsync_ssh_target());
}

#[test]
fn rsync_daemon() {
    put_and_get_at_the_limit(conf::rsync_daemon_target());
}

#[test]
fn ftp() {
    put_and_get_at_the_limit(conf::ftp_target());
}

#[test]
fn s3() {
    put_and_get_at_the_limit(conf::s3_target());
}

#[test]
fn azure() {
    put_and_get_at_the_limit(conf::azure_target());
}

/// A paced upload outlasts the backend's timeouts: with `--timeout 1` (and no retries), the ~3 s
/// upload (one PutObject on s3, paced blocks on azure) still completes, as does the download.
fn paced_transfers_outlast_a_short_timeout(mut t: Target) {
    t.opts.timeout = Some(Duration::from_secs(1));
    t.opts.attempts = 1;
    put_and_get_at_the_limit(t);
}

#[test]
fn s3_paced_transfers_outlast_a_short_timeout() {
    paced_transfers_outlast_a_short_timeout(conf::s3_target());
}

#[test]
fn azure_paced_transfers_outlast_a_short_timeout() {
    paced_transfers_outlast_a_short_timeout(conf::azure_target());
}

/// Bytes of the files directly in `dir` whose names contain `part`.
fn bytes_in(dir: &Path, part: &str) -> u64 {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().contains(part))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// The CLI's options reach the backend through the one engine entry: a full backup to sftp with
/// `--limit-upload` sends everything it stores no faster than the limit, and a restore with
/// `--limit-download` reads the volumes no faster than the limit.
#[test]
fn cli_backup_and_restore_over_sftp_at_the_limits() {
    let t = conf::sftp_target();
    let src = t.ws.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data.bin"), random_bytes(17, SIZE)).unwrap();
    let rate = format!("{}K", LIMIT / 1024);
    let start = Instant::now();
    t.run_tool(
        Tool::Ours,
        &[
            "full",
            "--limit-upload",
            &rate,
            src.to_str().unwrap(),
            &t.url,
        ],
    )
    .ok();
    let took = start.elapsed();
    // The sftp URL's path is relative to the test user's home.
    let rel = t.url.splitn(4, '/').nth(3).unwrap();
    let stored = Path::new(server("SSH_HOME")).join(rel);
    let uploaded = bytes_in(&stored, "duplicity-");
    assert!(uploaded > SIZE as u64, "{uploaded} bytes stored");
    check_rate("backup with --limit-upload", uploaded, took);

    let dst = t.ws.p("restored");
    let start = Instant::now();
    t.run_tool(
        Tool::Ours,
        &[
            "restore",
            "--limit-download",
            &rate,
            &t.url,
            dst.to_str().unwrap(),
        ],
    )
    .ok();
    let took = start.elapsed();
    check_rate(
        "restore with --limit-download",
        bytes_in(&stored, ".difftar"),
        took,
    );
    assert_same_tree(&src, &dst, "restore at the limit");
}
