//! Data safety of backups (issue 10): files written while a series of incrementals reads them, an
//! incremental with the wrong passphrase or key, and chains with a missing manifest or volume.

use crate::support::*;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Bytes of one block the busy writer rewrites in place.
const BLOCK: usize = 4096;

/// The content of block `b` of file `f` at version `v`: distinct for every (f, b, v).
fn block_bytes(f: usize, b: usize, v: u64) -> Vec<u8> {
    random_bytes(((f as u64) << 40) ^ ((b as u64) << 20) ^ v ^ 0x5eed, BLOCK)
}

/// A tree of files being rewritten in place (random blocks, and growth by appends) by a thread until
/// the returned flag is cleared, as a database or a log under backup is.
fn busy_tree(src: &Path, files: usize) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let mut sizes = Vec::new();
    for f in 0..files {
        // Mostly small files, some over 1 MiB (their new signature is computed on another thread).
        let blocks = if f % 5 == 0 { 400 } else { 40 + f % 23 };
        let mut data = Vec::with_capacity(blocks * BLOCK);
        for b in 0..blocks {
            data.extend_from_slice(&block_bytes(f, b, 0));
        }
        fs::create_dir_all(src).unwrap();
        fs::write(src.join(format!("f{f:03}")), &data).unwrap();
        sizes.push(blocks);
    }
    let run = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&run);
    let root = src.to_path_buf();
    let writer = std::thread::spawn(move || {
        let mut x: u64 = 0x9e37_79b9;
        let mut writes = 0u64;
        while flag.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = (x % files as u64) as usize;
            let path = root.join(format!("f{f:03}"));
            let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
            writes += 1;
            if x % 16 == 0 {
                // Growth, as a log grows.
                let b = sizes[f];
                file.write_all_at(&block_bytes(f, b, writes), (b * BLOCK) as u64)
                    .unwrap();
                sizes[f] += 1;
            } else {
                let b = ((x >> 8) % sizes[f] as u64) as usize;
                file.write_all_at(&block_bytes(f, b, writes), (b * BLOCK) as u64)
                    .unwrap();
            }
            if writes % 64 == 0 {
                std::thread::yield_now();
            }
        }
        writes
    });
    (run, writer)
}

/// Case 1: a series of incrementals while files are written throughout. Every set restores, and
/// once the writes stop, one more incremental restores bit-exact: no delta was ever built on a
/// signature of bytes that were not stored.
#[test]
fn files_written_during_a_series_of_incrementals_restore_exactly() {
    let ws = Ws::new("busy");
    let src = ws.p("src");
    let enc = Enc::Pass(PASS);
    let (run, writer) = busy_tree(&src, 60);
    ws.backup(Tool::Ours, "full", enc, &src, "repo", t(0), &[]);
    let mut changed_during = 0;
    for k in 1..=6 {
        let r = ws.backup(
            Tool::Ours,
            "incremental",
            enc,
            &src,
            "repo",
            t(k),
            &["--json"],
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        changed_during += v["changed_during_backup"].as_u64().unwrap_or(0);
    }
    run.store(false, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 1000, "the writer made only {writes} writes");
    // The files' last writes may share the second of the last backup's mtimes: a later backup must
    // still see them.
    ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(7), &[]);
    ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(8), &[]);
    ws.restore(Tool::Ours, enc, "repo", &ws.p("latest"), None, &[]);
    assert_same_content(&src, &ws.p("latest"));
    // Every intermediate set restores, by us and by stock duplicity.
    for k in [1, 3, 6] {
        let dst = ws.p(&format!("at{k}"));
        ws.restore(Tool::Ours, enc, "repo", &dst, Some(t(k)), &[]);
        let dup = ws.p(&format!("dup{k}"));
        ws.restore(Tool::Duplicity, enc, "repo", &dup, Some(t(k)), &[]);
        assert_same_content(&dst, &dup);
    }
    ws.restore(Tool::Duplicity, enc, "repo", &ws.p("dup-latest"), None, &[]);
    assert_same_content(&src, &ws.p("dup-latest"));
    assert!(
        changed_during > 0,
        "no file was seen changing while it was read: the test did not exercise that"
    );
}

/// The regular files of two trees have the same bytes (mtimes of a busy tree are not comparable).
fn assert_same_content(a: &Path, b: &Path) {
    let mut names: Vec<PathBuf> = fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut bad = Vec::new();
    for p in &names {
        let other = b.join(p.file_name().unwrap());
        if fs::read(p).ok() != fs::read(&other).ok() {
            bad.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} files differ between {} and {}: {bad:?}",
        bad.len(),
        names.len(),
        a.display(),
        b.display()
    );
    assert_eq!(
        fs::read_dir(b).unwrap().count(),
        names.len(),
        "{} has other files",
        b.display()
    );
}

/// Case 4: with a warm archive dir, an incremental with another passphrase fails before it writes
/// anything, with restore's error; the chain stays restorable with the right one.
#[test]
fn an_incremental_with_the_wrong_passphrase_writes_nothing() {
    let ws = Ws::new("wrongpass");
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(Tool::Ours, "full", Enc::Pass(PASS), &src, "repo", t(0), &[]);
    mutate(&src, 1);
    let before = repo_files(&ws, "repo");
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass("a typo in the cron line"),
            &[
                "incremental",
                "--current-time",
                &t(1).to_string(),
                src.to_str().unwrap(),
                &ws.url("repo"),
            ],
        )
        .fails();
    assert!(r.stderr.contains("wrong passphrase"), "{}", r.output());
    assert_eq!(
        repo_files(&ws, "repo"),
        before,
        "the failed run wrote files"
    );
    // Without any passphrase, also refused (an encrypted chain is never continued in clear).
    let r = ws
        .run(
            Tool::Ours,
            Enc::Plain,
            &[
                "incremental",
                "--current-time",
                &t(1).to_string(),
                src.to_str().unwrap(),
                &ws.url("repo"),
            ],
        )
        .fails();
    assert!(r.stderr.contains("is encrypted"), "{}", r.output());
    assert_eq!(repo_files(&ws, "repo"), before);
    // The right passphrase continues the chain, and restores it.
    ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Pass(PASS),
        &src,
        "repo",
        t(1),
        &[],
    );
    ws.restore(Tool::Ours, Enc::Pass(PASS), "repo", &ws.p("r"), None, &[]);
    assert_same_tree(&src, &ws.p("r"), "restore after the refused incrementals");
}

/// Case 4 with public keys: an incremental encrypting to another key than the chain's is refused
/// (no secret key is needed to tell), and one to the chain's key goes on.
#[test]
fn an_incremental_to_another_public_key_writes_nothing() {
    let ws = Ws::new("wrongkey");
    let a = ws.gen_key(
        "alice",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let b = ws.gen_key(
        "bob",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let src = ws.p("src");
    build_sample(&src);
    let keys = |k: &TestKey| {
        vec![
            "--encrypt-key".to_string(),
            k.fpr.clone(),
            "--keyring".to_string(),
            k.pub_asc.to_str().unwrap().to_string(),
        ]
    };
    let ka = keys(&a);
    let ka: Vec<&str> = ka.iter().map(String::as_str).collect();
    ws.backup(Tool::Ours, "full", Enc::Keys, &src, "repo", t(0), &ka);
    mutate(&src, 1);
    let before = repo_files(&ws, "repo");
    let mut args = vec![
        "incremental".to_string(),
        "--current-time".into(),
        t(1).to_string(),
    ];
    args.extend(keys(&b));
    args.push(src.to_str().unwrap().into());
    args.push(ws.url("repo"));
    let r = ws.run(Tool::Ours, Enc::Keys, &args).fails();
    assert!(r.stderr.contains("encrypted to"), "{}", r.output());
    assert!(r.stderr.contains(&b.fpr), "{}", r.output());
    assert_eq!(repo_files(&ws, "repo"), before);
    ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Keys,
        &src,
        "repo",
        t(1),
        &ka,
    );
    assert_eq!(repo_files(&ws, "repo").len(), before.len() + 3);
}

/// The remote names of the set made at `time` (manifest, volumes, signatures): a full at that time,
/// or the incremental ending then.
fn set_files(ws: &Ws, repo: &str, time: i64) -> Vec<String> {
    let st = stamp(time);
    let keys = [
        format!("duplicity-full.{st}."),
        format!("duplicity-full-signatures.{st}."),
        format!(".to.{st}."),
    ];
    repo_files(ws, repo)
        .into_iter()
        .filter(|n| keys.iter().any(|k| n.contains(k.as_str())))
        .collect()
}

fn status(ws: &Ws, repo: &str) -> Run {
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["collection-status", &ws.url(repo)],
    )
    .ok()
}

/// Writes a full and three incrementals of the sample tree to `repo`; returns the expected tree of
/// each step under `expect<k>`.
fn four_sets(ws: &Ws, repo: &str) {
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(Tool::Ours, "full", Enc::Pass(PASS), &src, repo, t(0), &[]);
    for k in 1..=3 {
        step(&src, k);
        ws.backup(
            Tool::Ours,
            "incremental",
            Enc::Pass(PASS),
            &src,
            repo,
            t(k),
            &[],
        );
    }
}

/// Step `k` of a chain of the sample tree: the sample's own two mutation steps, then a new file each.
fn step(src: &Path, k: i64) {
    if k <= 2 {
        mutate(src, k);
    } else {
        write_file(
            &src.join(format!("step{k}")),
            &text_bytes(k as u64, 5000),
            0o644,
            t(k) - 10,
        );
    }
}

/// Case 5: an incremental in the middle of a chain lost its manifest. collection-status says the
/// chain is broken, restore of now fails naming the manifest (an older state only with -t), and the
/// next backup starts a new full instead of extending the chain.
#[test]
fn a_missing_manifest_in_the_middle_is_loud() {
    let ws = Ws::new("nomanifest");
    four_sets(&ws, "repo");
    let manifest = set_files(&ws, "repo", t(2))
        .into_iter()
        .find(|n| n.contains(".manifest"))
        .unwrap();
    fs::remove_file(ws.p("repo").join(&manifest)).unwrap();

    let s = status(&ws, "repo");
    assert!(s.stdout.contains("is broken after"), "{}", s.output());
    assert!(s.stdout.contains(&manifest), "{}", s.output());

    let r = ws
        .restore_try(Tool::Ours, Enc::Pass(PASS), "repo", &ws.p("now"), None, &[])
        .fails();
    assert!(r.stderr.contains(&manifest), "{}", r.output());
    assert!(r.stderr.contains("-t"), "{}", r.output());
    // The state before the break, when asked for.
    ws.restore(
        Tool::Ours,
        Enc::Pass(PASS),
        "repo",
        &ws.p("at1"),
        Some(t(1)),
        &[],
    );
    sample_at(&ws.p("expect1"), 1);
    assert_same_tree(&ws.p("expect1"), &ws.p("at1"), "restore -t t1");

    let src = ws.p("src");
    step(&src, 4);
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Pass(PASS),
        &src,
        "repo",
        t(4),
        &["--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["type"], "full", "{}", r.output());
    assert!(r.stderr.contains("starting a new full"), "{}", r.output());
    ws.restore(
        Tool::Ours,
        Enc::Pass(PASS),
        "repo",
        &ws.p("latest"),
        None,
        &[],
    );
    assert_same_tree(&src, &ws.p("latest"), "restore of the new chain");
}

/// Case 5: a whole incremental set vanished from the middle of a chain.
#[test]
fn a_missing_set_in_the_middle_is_loud() {
    let ws = Ws::new("noset");
    four_sets(&ws, "repo");
    for n in set_files(&ws, "repo", t(2)) {
        fs::remove_file(ws.p("repo").join(n)).unwrap();
    }
    let s = status(&ws, "repo");
    assert!(s.stdout.contains("is broken after"), "{}", s.output());
    let r = ws
        .restore_try(Tool::Ours, Enc::Pass(PASS), "repo", &ws.p("now"), None, &[])
        .fails();
    assert!(
        r.stderr.contains("missing from the target"),
        "{}",
        r.output()
    );
    // -t past the break is refused too; before it, it works.
    ws.restore_try(
        Tool::Ours,
        Enc::Pass(PASS),
        "repo",
        &ws.p("at3"),
        Some(t(3)),
        &[],
    )
    .fails();
    ws.restore(
        Tool::Ours,
        Enc::Pass(PASS),
        "repo",
        &ws.p("at1"),
        Some(t(1) + 50),
        &[],
    );
}

/// Case 5: a volume of a set in the chain is missing. collection-status names it (from the numbering,
/// and from the cached manifest for a last volume), and the next backup starts a new full.
#[test]
fn a_missing_volume_is_loud_and_not_built_on() {
    let ws = Ws::new("novolume");
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(
        Tool::Ours,
        "full",
        Enc::Pass(PASS),
        &src,
        "repo",
        t(0),
        &["--volsize", "1"],
    );
    mutate(&src, 1);
    ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Pass(PASS),
        &src,
        "repo",
        t(1),
        &[],
    );
    let vols: Vec<String> = set_files(&ws, "repo", t(0))
        .into_iter()
        .filter(|n| n.contains(".vol"))
        .collect();
    assert!(vols.len() >= 3, "{vols:?}");
    // The last volume: only the manifest tells it is missing.
    let last = format!(
        "duplicity-full.{}.vol{}.difftar.gpg",
        stamp(t(0)),
        vols.len()
    );
    fs::remove_file(ws.p("repo").join(&last)).unwrap();
    let s = status(&ws, "repo");
    assert!(
        s.stdout.contains(&format!("volume {}", vols.len())),
        "{}",
        s.output()
    );
    mutate(&src, 2);
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Pass(PASS),
        &src,
        "repo",
        t(2),
        &["--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["type"], "full", "{}", r.output());
    assert!(
        r.stderr.contains("missing from the target"),
        "{}",
        r.output()
    );
    // A volume in the middle: the numbering shows it even without the archive dir.
    let middle = format!("duplicity-full.{}.vol2.difftar.gpg", stamp(t(0)));
    fs::remove_file(ws.p("repo").join(&middle)).unwrap();
    fs::remove_dir_all(ws.cache(Tool::Ours)).unwrap();
    let s = status(&ws, "repo");
    assert!(
        s.stdout.contains("volume 2 of the backup set"),
        "{}",
        s.output()
    );
    ws.restore(
        Tool::Ours,
        Enc::Pass(PASS),
        "repo",
        &ws.p("latest"),
        None,
        &[],
    );
    assert_same_tree(&src, &ws.p("latest"), "restore of the new chain");
}
