//! One conformance suite for every backend (restic-style): each backend module below is a few lines that
//! make a fresh, empty target (URL + options + environment for the CLI); `conformance!` turns the suite's
//! checks into one test per check and backend, e.g. `backend_conformance::sftp::large_object_streamed`.

use std::fs;

use duplicity_charm::backend::{self, Backend, OpenOptions};

use crate::support::*;

/// A fresh, empty target on one backend, and how to reach it from the CLI.
pub struct Target {
    pub ws: Ws,
    pub url: String,
    pub opts: OpenOptions,
    /// Extra CLI options (e.g. `--ssh-options=…`).
    pub cli: Vec<String>,
    /// Extra environment for the CLI (e.g. `FTP_PASSWORD`).
    pub env: Vec<(String, String)>,
}

impl Target {
    fn open(&self) -> Box<dyn Backend> {
        backend::open(&self.url, &self.opts).expect("open backend")
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_tool(Tool::Ours, args)
    }

    /// Runs our CLI or stock duplicity on this target, with its options and environment (duplicity
    /// with `--num-retries 1`: its default 5 × 30 s retries would look like a hang).
    pub fn run_tool(&self, tool: Tool, args: &[&str]) -> Run {
        self.run_with(tool, args, &self.env, PASS)
    }

    /// As [`Target::run_tool`], with another environment and passphrase (wrong credentials, say).
    pub fn run_with(
        &self,
        tool: Tool,
        args: &[&str],
        env: &[(String, String)],
        passphrase: &'static str,
    ) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if tool == Tool::Duplicity {
            all.extend(["--num-retries".to_string(), "1".to_string()]);
        }
        all.extend(self.cli.iter().cloned());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.ws.run_env(tool, Enc::Pass(passphrase), &all, &env)
    }

    fn file(&self, name: &str, data: &[u8]) -> std::path::PathBuf {
        let p = self.ws.p(&unique(name));
        fs::write(&p, data).unwrap();
        p
    }
}

const MANIFEST: &str = "duplicity-full.20240101T000000Z.manifest";

pub fn put_get_list_delete(t: Target) {
    let b = t.open();
    assert!(b.list().unwrap().is_empty(), "a new target lists nothing");
    let vol = "duplicity-full.20240101T000000Z.vol1.difftar.gpg";
    b.put(&t.file("a", b"manifest bytes"), MANIFEST).unwrap();
    b.put_move(&t.file("b", b"volume bytes"), vol).unwrap();
    assert_eq!(b.list().unwrap(), [MANIFEST, vol]);
    let got = t.ws.p("got");
    b.get(MANIFEST, &got).unwrap();
    assert_eq!(fs::read(&got).unwrap(), b"manifest bytes");
    let mut s = Vec::new();
    b.open(vol).unwrap().read_to_end(&mut s).unwrap();
    assert_eq!(s, b"volume bytes");
    b.delete(&[MANIFEST.to_string()]).unwrap();
    assert_eq!(b.list().unwrap(), [vol]);
    b.delete(&[vol.to_string()]).unwrap();
    assert!(b.list().unwrap().is_empty());
}

pub fn overwrite(t: Target) {
    let b = t.open();
    b.put(&t.file("a", b"first, longer version"), MANIFEST)
        .unwrap();
    b.put(&t.file("b", b"second"), MANIFEST).unwrap();
    let got = t.ws.p("got");
    b.get(MANIFEST, &got).unwrap();
    assert_eq!(fs::read(&got).unwrap(), b"second");
    assert_eq!(b.list().unwrap(), [MANIFEST], "no temporary names left");
}

pub fn empty_object(t: Target) {
    let b = t.open();
    b.put(&t.file("e", b""), MANIFEST).unwrap();
    assert_eq!(b.list().unwrap(), [MANIFEST]);
    let got = t.ws.p("got");
    b.get(MANIFEST, &got).unwrap();
    assert_eq!(fs::metadata(&got).unwrap().len(), 0);
}

/// 300 MiB up and down with the test process's RSS growing by less than 64 MiB.
pub fn large_object_streamed(t: Target) {
    const LEN: u64 = 300 << 20;
    let b = t.open();
    let src = t.ws.p("large");
    let sum = write_large_file(&src, 7, LEN);
    let name = "duplicity-full.20240101T000000Z.vol1.difftar.gpg";
    let ((), up) = with_peak_rss(|| b.put(&src, name).unwrap());
    fs::remove_file(&src).unwrap();
    let got = t.ws.p("large.back");
    let ((), down) = with_peak_rss(|| b.get(name, &got).unwrap());
    assert_eq!(fs::metadata(&got).unwrap().len(), LEN);
    assert_eq!(sha1_file(&got), sum);
    // Far below the object's 300 MiB: the transfer streams (the margin is for other tests' allocations).
    assert!(up < 96 << 10, "upload grew the RSS by {up} KiB");
    assert!(down < 96 << 10, "download grew the RSS by {down} KiB");
    b.delete(&[name.to_string()]).unwrap();
}

pub fn missing_is_not_found(t: Target) {
    let b = t.open();
    let e = b.get("duplicity-full.20240101T000000Z.manifest", &t.ws.p("got"));
    assert!(e.unwrap_err().is_not_found());
    // Also once the target exists.
    b.put(&t.file("x", b"x"), "other").unwrap();
    let e = b.get(MANIFEST, &t.ws.p("got")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains(MANIFEST), "{e}");
}

/// Hundreds of names with duplicity's prefixes, listed exactly.
pub fn list_many_names(t: Target) {
    let b = t.open();
    let src = t.file("s", b"x");
    let mut names = Vec::new();
    for i in 0..100 {
        let s = format!("20240101T{:02}{:02}00Z", i / 60, i % 60);
        names.push(format!("duplicity-full.{s}.vol{}.difftar.gpg", i + 1));
        names.push(format!("duplicity-inc.{s}.to.{s}.manifest.gpg"));
        names.push(format!("duplicity-new-signatures.{s}.to.{s}.sigtar.gpg"));
    }
    names.push("duplicity-full-signatures.20240101T000000Z.sigtar.gpg".into());
    for n in &names {
        b.put(&src, n).unwrap();
    }
    names.sort();
    assert_eq!(b.list().unwrap(), names);
    b.delete(&names).unwrap();
    assert!(b.list().unwrap().is_empty());
}

pub fn delete_missing(t: Target) {
    let b = t.open();
    b.delete(&[MANIFEST.to_string()]).unwrap();
    b.put(&t.file("x", b"x"), "keep").unwrap();
    b.delete(&[MANIFEST.to_string(), "also-missing".into()])
        .unwrap();
    assert_eq!(b.list().unwrap(), ["keep"]);
}

/// The built binary: full, incremental and restore through the backend.
pub fn engine_backup_and_restore(t: Target) {
    let src = t.ws.p("src");
    build_sample(&src);
    let src_s = src.to_str().unwrap();
    t.run(&["full", "--current-time", &t0(0), src_s, &t.url])
        .ok();
    mutate(&src, 1);
    t.run(&["incremental", "--current-time", &t0(1), src_s, &t.url])
        .ok();
    let names = t.open().list().unwrap();
    assert!(
        names.iter().any(|n| n.starts_with("duplicity-inc.")),
        "{names:?}"
    );
    let dst = t.ws.p("restored");
    t.run(&["restore", &t.url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "restore through the backend");
}

/// The engine through injected faults on top of the real backend (`backend::fault`): transient
/// errors, uploads and downloads cut off and retried, short reads, slow uploads. The backups complete
/// and restore exactly. Then the target "fills up" mid-backup: that backup fails loudly, and what was
/// stored before still restores, and a later backup on a healthy link goes on.
pub fn engine_through_faults(tg: Target) {
    use duplicity_charm::backend::fault::{FaultPlan, Faulty};
    use duplicity_charm::backend::retry::Retrying;
    use duplicity_charm::engine::commands::{backup, restore};
    use duplicity_charm::engine::crypto::Passphrase;
    use duplicity_charm::engine::repository::{Repository, RepositoryConfig};
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let t = crate::support::t;

    let src = tg.ws.p("src");
    build_sample(&src);
    let cache = tg.ws.p("faults-cache");
    // The same archive dir and lock whichever wrapper the target is seen through.
    let repo = |b: Box<dyn Backend>| {
        let mut c = RepositoryConfig::new("fault-target://conformance");
        c.archive_dir = Some(cache.clone());
        c.name = Some("faults".into());
        c.volsize = 1 << 20;
        c.keys.passphrase = Some(Passphrase::new(PASS));
        Repository::with_backend(b, c)
    };
    let opts = |full: bool, now: i64| backup::BackupOptions {
        source: src.clone(),
        source_as_typed: src.to_string_lossy().into_owned(),
        force_full: full,
        full_if_older_than: None,
        now,
        fixed_time: true,
        allow_source_mismatch: false,
        dry_run: false,
        progress: None,
        selection: Default::default(),
        full_if_n_inc: None,
        source_bytes_read: None,
        jsonstat: None,
        tuning: Default::default(),
    };
    let restore_into = |r: &Repository, dst: &std::path::Path| {
        r.restore(&restore::RestoreOptions {
            target: dst.to_path_buf(),
            time: t(100),
            path: None,
            force: false,
            progress: None,
            restore_ownership: true,
            numeric_owner: false,
            rename: Vec::new(),
            selection: None,
            ignore_errors: false,
        })
    };
    let plan = FaultPlan {
        transient_every: 5,
        cut_put_every: 3,
        cut_get_every: 2,
        cut_bytes: 1000,
        short_reads: 7,
        slow_put: Duration::from_millis(5),
        fail_puts_after: 0,
    };
    let faulty = Faulty::new(tg.open(), plan.clone());
    let b = repo(Box::new(Retrying::new(
        Box::new(faulty),
        8,
        Duration::from_millis(1),
    )));
    b.backup(&opts(true, t(0))).expect("full through faults");
    mutate(&src, 1);
    b.backup(&opts(false, t(1)))
        .expect("incremental through faults");
    let dst = tg.ws.p("faults-restored");
    restore_into(&b, &dst).expect("restore through faults");
    assert_same_tree(&src, &dst, "restore through injected faults");
    // Streams from `open` in pieces of 7 bytes still read whole.
    let name = tg
        .open()
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.contains(".manifest"))
        .unwrap();
    let mut whole = Vec::new();
    tg.open()
        .open(&name)
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    let mut short = Vec::new();
    Faulty::new(
        tg.open(),
        FaultPlan {
            short_reads: 7,
            ..Default::default()
        },
    )
    .open(&name)
    .unwrap()
    .read_to_end(&mut short)
    .unwrap();
    assert_eq!(short, whole);

    // The target fails for good after two more uploads: the backup fails and says so.
    mutate(&src, 2);
    let full_disk = std::sync::Arc::new(Faulty::new(
        tg.open(),
        FaultPlan {
            fail_puts_after: 2,
            ..Default::default()
        },
    ));
    let e = repo(Box::new(SharedBackend(full_disk.clone())))
        .backup(&opts(false, t(2)))
        .expect_err("a backup to a full target");
    assert!(full_disk.injected.load(Ordering::Relaxed) > 0);
    assert!(format!("{e:#}").contains("no space left"), "{e:#}");
    let dst = tg.ws.p("faults-after-failure");
    restore_into(&repo(tg.open()), &dst).expect("restore after a failed backup");
    sample_at(&tg.ws.p("faults-expect1"), 1);
    assert_same_tree(
        &tg.ws.p("faults-expect1"),
        &dst,
        "the state before the failed backup",
    );
    // A healthy link again: the next backup goes on and restores.
    repo(tg.open())
        .backup(&opts(false, t(3)))
        .expect("backup after the failure");
    let dst = tg.ws.p("faults-final");
    restore_into(&repo(tg.open()), &dst).expect("restore of the last backup");
    assert_same_tree(&src, &dst, "restore after recovery");
}

/// A backend shared with the test, so it can read the fault counters after the repository used it.
struct SharedBackend<B: Backend>(std::sync::Arc<B>);

impl<B: Backend> Backend for SharedBackend<B> {
    fn put(
        &self,
        src: &std::path::Path,
        name: &str,
    ) -> duplicity_charm::backend::BackendResult<()> {
        self.0.put(src, name)
    }
    fn get(
        &self,
        name: &str,
        dst: &std::path::Path,
    ) -> duplicity_charm::backend::BackendResult<()> {
        self.0.get(name, dst)
    }
    fn list(&self) -> duplicity_charm::backend::BackendResult<Vec<String>> {
        self.0.list()
    }
    fn delete(&self, names: &[String]) -> duplicity_charm::backend::BackendResult<()> {
        self.0.delete(names)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

fn t0(k: i64) -> String {
    t(k).to_string()
}

use std::io::Read;

/// One test per check for a backend: `conformance!(name, || make_target())`.
macro_rules! conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn put_get_list_delete() {
                super::put_get_list_delete($make());
            }
            #[test]
            fn overwrite() {
                super::overwrite($make());
            }
            #[test]
            fn empty_object() {
                super::empty_object($make());
            }
            #[test]
            fn large_object_streamed() {
                super::large_object_streamed($make());
            }
            #[test]
            fn missing_is_not_found() {
                super::missing_is_not_found($make());
            }
            #[test]
            fn list_many_names() {
                super::list_many_names($make());
            }
            #[test]
            fn delete_missing() {
                super::delete_missing($make());
            }
            #[test]
            fn engine_backup_and_restore() {
                super::engine_backup_and_restore($make());
            }
            #[test]
            fn engine_through_faults() {
                super::engine_through_faults($make());
            }
        }
    };
}

// ---------------------------------------------------------------- hookups

pub fn file_target() -> Target {
    let ws = Ws::new("conf-file");
    let url = ws.url("target/sub");
    Target {
        ws,
        url,
        opts: OpenOptions::new(),
        cli: vec![],
        env: vec![],
    }
}
conformance!(file, file_target);

/// sftp to a new directory under the test user's home (relative URL), with an ed25519 key.
pub fn sftp_target() -> Target {
    let (key, kh) = (server("SSH_KEY_ED25519"), server("SSH_KNOWN_HOSTS"));
    let url = format!(
        "sftp://{}@127.0.0.1:{}/{}/d",
        server("SSH_USER"),
        server("SSH_PORT"),
        unique("conf")
    );
    let ssh = ssh_options_with(key, kh);
    let mut opts = OpenOptions::new();
    opts.set_ssh_options(&ssh);
    Target {
        ws: Ws::new("conf-sftp"),
        url,
        opts,
        cli: vec![format!("--ssh-options={ssh}")],
        env: vec![],
    }
}
conformance!(sftp, sftp_target);

/// rsync over SSH to a new directory under the test user's home, with an OpenSSH RSA key.
pub fn rsync_ssh_target() -> Target {
    let ssh = ssh_options_with(server("SSH_KEY_RSA"), server("SSH_KNOWN_HOSTS"));
    let url = format!(
        "rsync://{}@127.0.0.1:{}/{}/d",
        server("SSH_USER"),
        server("SSH_PORT"),
        unique("conf")
    );
    let mut opts = OpenOptions::new();
    opts.set_ssh_options(&ssh);
    Target {
        ws: Ws::new("conf-rsync-ssh"),
        url,
        opts,
        cli: vec![format!("--ssh-options={ssh}")],
        env: vec![],
    }
}
conformance!(rsync_ssh, rsync_ssh_target);

/// rsync daemon, `::/module/path` form, password from FTP_PASSWORD (as duplicity).
pub fn rsync_daemon_target() -> Target {
    let url = format!(
        "rsync://{}@127.0.0.1:{}::/{}/{}/d",
        server("RSYNCD_USER"),
        server("RSYNCD_PORT"),
        server("RSYNCD_MODULE"),
        unique("conf")
    );
    let mut opts = OpenOptions::new();
    opts.ftp_password = Some(server("RSYNCD_PASSWORD").to_string());
    Target {
        ws: Ws::new("conf-rsyncd"),
        url,
        opts,
        cli: vec![],
        env: vec![(
            "FTP_PASSWORD".to_string(),
            server("RSYNCD_PASSWORD").to_string(),
        )],
    }
}
conformance!(rsync_daemon, rsync_daemon_target);

/// ftp to a new nested directory under the FTP user's login dir (relative URL), password from
/// FTP_PASSWORD (as duplicity).
pub fn ftp_target() -> Target {
    let url = format!(
        "ftp://{}@127.0.0.1:{}/{}/d",
        server("FTP_USER"),
        server("FTP_PORT"),
        unique("conf")
    );
    let mut opts = OpenOptions::new();
    opts.ftp_password = Some(server("FTP_PASSWORD").to_string());
    Target {
        ws: Ws::new("conf-ftp"),
        url,
        opts,
        cli: vec![],
        env: vec![(
            "FTP_PASSWORD".to_string(),
            server("FTP_PASSWORD").to_string(),
        )],
    }
}
conformance!(ftp, ftp_target);
/// Azure Blob on Azurite, a fresh container per test (created by the backend on first use).
pub fn azure_target() -> Target {
    let conn = server("AZURE_CONNECTION_STRING").to_string();
    let url = format!("azure://{}", unique("conf"));
    let opts = OpenOptions {
        azure_connection_string: Some(conn.clone()),
        ..OpenOptions::new()
    };
    Target {
        ws: Ws::new("conf-azure"),
        url,
        opts,
        cli: vec![],
        env: vec![("AZURE_CONNECTION_STRING".to_string(), conn)],
    }
}
conformance!(azure, azure_target);
/// The S3 options for the test moto server: its endpoint (path style) and its IAM key.
pub fn s3_opts() -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.s3_endpoint_url = Some(server("S3_ENDPOINT").to_string());
    opts.s3_region_name = Some(server("S3_REGION").to_string());
    opts.aws_access_key_id = Some(server("S3_ACCESS_KEY_ID").to_string());
    opts.aws_secret_access_key = Some(server("S3_SECRET_ACCESS_KEY").to_string());
    opts
}

/// s3 on moto: one shared bucket (made by the first test that writes), a new prefix per test.
pub fn s3_target() -> Target {
    let url = format!("boto3+s3://dc-conformance/{}/d", unique("conf"));
    Target {
        ws: Ws::new("conf-s3"),
        url,
        opts: s3_opts(),
        cli: vec![
            format!("--s3-endpoint-url={}", server("S3_ENDPOINT")),
            format!("--s3-region-name={}", server("S3_REGION")),
        ],
        env: vec![
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                server("S3_ACCESS_KEY_ID").to_string(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                server("S3_SECRET_ACCESS_KEY").to_string(),
            ),
        ],
    }
}
conformance!(s3, s3_target);
