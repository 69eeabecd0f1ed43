//! `--concurrency N` (duplicity 3's option): up to N volume uploads at once (at least 2: a closed volume's
//! upload overlaps the one before on a slow link). The
//! engine is driven through a backend wrapper that makes each upload slow and counts how many run at
//! once; the CLI's option is checked end to end, with stock duplicity restoring what it wrote.

use crate::support::*;
use duplicity_charm::backend::{Backend, BackendResult};
use duplicity_charm::engine::commands::{backup, restore};
use duplicity_charm::engine::crypto::Passphrase;
use duplicity_charm::engine::repository::{Repository, RepositoryConfig};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PASS: &str = "upload concurrency";

/// Delegates to a file target; every volume upload takes at least 150 ms, and the most volume uploads
/// seen running at the same time is recorded (the signatures and manifest go up at the end, beside the
/// last volume).
struct SlowCountingPuts {
    inner: Box<dyn Backend>,
    running: AtomicUsize,
    most: Arc<AtomicUsize>,
}

impl SlowCountingPuts {
    fn around<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        if !name.contains(".difftar") {
            return f();
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        let r = f();
        self.running.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl Backend for SlowCountingPuts {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.around(name, || self.inner.put(src, name))
    }
    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.around(name, || self.inner.put_move(src, name))
    }
    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.inner.get(name, dst)
    }
    fn list(&self) -> BackendResult<Vec<String>> {
        self.inner.list()
    }
    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.inner.delete(names)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A full of ~6 MiB of incompressible data in 512 KiB volumes with `concurrency`; returns the most
/// uploads seen at once, after checking that the backup restores exactly.
fn most_uploads_at_once(ws: &Ws, concurrency: usize) -> usize {
    let src = ws.p(&format!("src-{concurrency}"));
    for i in 0..6 {
        write_file(
            &src.join(format!("f{i}")),
            &random_bytes(i, 1 << 20),
            0o644,
            t(0),
        );
    }
    let repo = format!("repo-{concurrency}");
    let mut config = RepositoryConfig::new(ws.url(&repo));
    config.archive_dir = Some(ws.p("cache"));
    config.volsize = 512 << 10;
    config.concurrency = concurrency;
    config.keys.passphrase = Some(Passphrase::new(PASS));
    let most = Arc::new(AtomicUsize::new(0));
    let inner = duplicity_charm::backend::open(&ws.url(&repo), &Default::default()).unwrap();
    let counting = SlowCountingPuts {
        inner,
        running: AtomicUsize::new(0),
        most: most.clone(),
    };
    let r = Repository::with_backend(Box::new(counting), config);
    r.backup(&backup::BackupOptions {
        source: src.clone(),
        source_as_typed: src.to_string_lossy().into_owned(),
        force_full: true,
        full_if_older_than: None,
        now: t(1),
        fixed_time: true,
        allow_source_mismatch: false,
        dry_run: false,
        progress: None,
        selection: Default::default(),
        full_if_n_inc: None,
        source_bytes_read: None,
        jsonstat: None,
        tuning: Default::default(),
    })
    .expect("backup");
    let dst = ws.p(&format!("restored-{concurrency}"));
    r.restore(&restore::RestoreOptions {
        target: dst.clone(),
        time: t(1),
        path: None,
        force: false,
        progress: None,
        restore_ownership: true,
        numeric_owner: false,
        rename: Vec::new(),
        selection: None,
        ignore_errors: false,
    })
    .expect("restore");
    assert_same_tree(&src, &dst, "restore of the backup made with --concurrency");
    most.load(Ordering::SeqCst)
}

#[test]
fn concurrency_sets_how_many_volumes_upload_at_once() {
    let ws = Ws::new("upload-concurrency");
    assert_eq!(
        most_uploads_at_once(&ws, 0),
        2,
        "by default two volumes are in flight"
    );
    assert_eq!(
        most_uploads_at_once(&ws, 4),
        4,
        "--concurrency 4: four uploads at once"
    );
}

#[test]
fn cli_concurrency_backup_restores_with_stock_duplicity() {
    let ws = Ws::new("cli-concurrency");
    let src = ws.p("src");
    for i in 0..4 {
        write_file(
            &src.join(format!("f{i}")),
            &random_bytes(100 + i, 1 << 20),
            0o644,
            t(0),
        );
    }
    let enc = Enc::Pass(PASS);
    ws.backup(
        Tool::Ours,
        "full",
        enc,
        &src,
        "repo",
        t(1),
        &[
            "--volsize",
            "1",
            "--concurrency",
            "4",
            "--asynchronous-upload",
        ],
    );
    let vols = repo_files(&ws, "repo")
        .iter()
        .filter(|n| n.contains(".difftar"))
        .count();
    assert!(vols >= 4, "several volumes expected, got {vols}");
    ws.restore(
        Tool::Duplicity,
        enc,
        "repo",
        &ws.p("by-duplicity"),
        None,
        &[],
    );
    assert_same_tree(&src, &ws.p("by-duplicity"), "stock duplicity's restore");
    let bad = ws.run(
        Tool::Ours,
        enc,
        &[
            "full",
            "--concurrency",
            "x",
            src.to_str().unwrap(),
            &ws.url("r2"),
        ],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("--concurrency"), "{}", bad.stderr);
}
