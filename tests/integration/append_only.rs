//! Append-only targets (issue 16, item 1) on the loopback servers of scripts/test-servers.sh: an sftp
//! account whose `internal-sftp` refuses remove/rename/setstat and creates read-only files, an rsync
//! daemon module in a `chattr +a` directory with `incoming chmod = Fa-w` and delete options refused,
//! an FTP account without delete/rename/append rights on a server that refuses STOR onto an existing
//! file, and a `chattr +a` local directory.
//!
//! Each target: full + incrementals + verify + restore with `--append-only-target`; retention and
//! cleanup refuse before deleting anything and list what to prune on the server; then a compromised
//! unit, holding the unit's credentials, tries to delete and overwrite the stored volumes and manifests
//! with the protocol's own clients (sftp, rsync, curl) and through our backend without the option: every
//! attempt fails and every stored file keeps its bytes; backups and restores go on, and stock duplicity
//! 0.8.22 restores a copy of what was written. Cut uploads (fault injection) never leave a set that a
//! later backup or restore trusts.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use duplicity_charm::backend::fault::{FaultPlan, Faulty};
use duplicity_charm::backend::{self, Backend, OpenOptions};
use duplicity_charm::engine::commands::backup;
use duplicity_charm::engine::crypto::Passphrase;
use duplicity_charm::engine::repository::{Repository, RepositoryConfig};

use crate::backend_conformance::Target;
use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sftp,
    RsyncDaemon,
    Ftp,
    File,
}

/// An append-only target and the directory on the "server" where its files land (read by the test
/// as the server's administrator would).
struct Ao {
    kind: Kind,
    t: Target,
    server_dir: PathBuf,
}

impl Drop for Ao {
    fn drop(&mut self) {
        // The local kind lives in the workspace: lift `chattr +a` so it can be removed.
        if self.kind == Kind::File {
            let _ = Command::new("chattr")
                .args(["-R", "-a"])
                .arg(&self.server_dir)
                .status();
        }
    }
}

fn sh(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A directory owned by the append-only account; `append_only` also sets `chattr +a` on it.
fn account_dir(dir: &Path, append_only: bool) {
    fs::create_dir_all(dir).unwrap();
    let user = server("SSH_AO_USER");
    assert!(sh(Command::new("chown")
        .arg(format!("{user}:{user}"))
        .arg(dir)));
    if append_only {
        assert!(
            sh(Command::new("chattr").arg("+a").arg(dir)),
            "chattr +a {dir:?}"
        );
    }
}

fn ao_target(kind: Kind) -> Ao {
    let name = unique("ao");
    let ws = Ws::new("append-only");
    let mut opts = OpenOptions::new();
    let mut cli = vec!["--append-only-target".to_string()];
    let mut env = vec![];
    let (url, server_dir) = match kind {
        Kind::Sftp => {
            let dir = Path::new(server("SSH_AO_HOME")).join(&name);
            account_dir(&dir, false);
            let ssh = ssh_options_with(server("SSH_KEY_ED25519"), server("SSH_KNOWN_HOSTS"));
            opts.set_ssh_options(&ssh);
            cli.push(format!("--ssh-options={ssh}"));
            let url = format!(
                "sftp://{}@127.0.0.1:{}/{}",
                server("SSH_AO_USER"),
                server("SSH_PORT"),
                dir.display()
            );
            (url, dir)
        }
        Kind::RsyncDaemon => {
            let dir = Path::new(server("RSYNCD_AO_DIR")).join(&name);
            account_dir(&dir, true);
            opts.ftp_password = Some(server("RSYNCD_PASSWORD").into());
            env.push((
                "FTP_PASSWORD".to_string(),
                server("RSYNCD_PASSWORD").to_string(),
            ));
            let url = format!(
                "rsync://{}@127.0.0.1:{}::/{}/{name}",
                server("RSYNCD_USER"),
                server("RSYNCD_PORT"),
                server("RSYNCD_AO_MODULE")
            );
            (url, dir)
        }
        Kind::Ftp => {
            opts.ftp_password = Some(server("FTP_AO_PASSWORD").into());
            env.push((
                "FTP_PASSWORD".to_string(),
                server("FTP_AO_PASSWORD").to_string(),
            ));
            let url = format!(
                "ftp://{}@127.0.0.1:{}/{name}/d",
                server("FTP_AO_USER"),
                server("FTP_AO_PORT")
            );
            (url, Path::new(server("FTP_AO_ROOT")).join(&name).join("d"))
        }
        Kind::File => {
            let dir = ws.p("append-only-dir");
            fs::create_dir_all(&dir).unwrap();
            assert!(sh(Command::new("chattr").arg("+a").arg(&dir)));
            (format!("file://{}", dir.display()), dir)
        }
    };
    Ao {
        kind,
        t: Target {
            ws,
            url,
            opts,
            cli,
            env,
        },
        server_dir,
    }
}

impl Ao {
    fn ours(&self, args: &[&str]) -> Run {
        self.t.run_tool(Tool::Ours, args)
    }

    /// duplicity's files on the server with their bytes' SHA-1.
    fn stored(&self) -> BTreeMap<String, String> {
        fs::read_dir(&self.server_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("duplicity-")
            })
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    sha1_file(&p),
                )
            })
            .collect()
    }

    /// The backend as the CLI opens it, without the append-only wrapper (what a compromised unit
    /// running its own code would use).
    fn raw_backend(&self) -> Box<dyn Backend> {
        backend::open(&self.t.url, &self.t.opts).expect("open backend")
    }

    /// A repository through `b`, sharing the CLI's archive dir for this URL.
    fn repository(&self, b: Box<dyn Backend>) -> Repository {
        let mut c = RepositoryConfig::new(self.t.url.clone());
        c.archive_dir = Some(self.t.ws.cache(Tool::Ours));
        c.keys.passphrase = Some(Passphrase::new(PASS));
        c.append_only_target = true;
        Repository::with_backend(b, c)
    }
}

/// A change after the sample's two mutation steps: one new file.
fn change(root: &Path, k: i64) {
    write_file(
        &root.join(format!("step-{k}.txt")),
        format!("step {k}\n").as_bytes(),
        0o644,
        t(k),
    );
}

fn backup_opts(src: &Path, full: bool, now: i64) -> backup::BackupOptions {
    backup::BackupOptions {
        source: src.to_path_buf(),
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
    }
}

/// Every way the protocol's own client offers to delete, rename or replace `victim` (a stored
/// file), with the unit's credentials. Returns the attempts that the server did NOT refuse.
fn attack_with_clients(ao: &Ao, victim: &str) -> Vec<String> {
    let ws = &ao.t.ws;
    let junk = ws.p("junk");
    fs::write(&junk, random_bytes(7, 4000)).unwrap();
    let junk_s = junk.to_str().unwrap();
    let dir = ao.server_dir.to_str().unwrap();
    let mut allowed = Vec::new();
    let mut attempt = |what: &str, cmd: &mut Command| {
        ws.env(cmd);
        if sh(cmd) {
            allowed.push(what.to_string());
        }
    };
    match ao.kind {
        Kind::Sftp => {
            let batch = |line: String| {
                let f = ws.p("batch");
                fs::write(&f, line + "\n").unwrap();
                let mut c = Command::new("sftp");
                c.args(["-b", f.to_str().unwrap(), "-P", server("SSH_PORT")])
                    .args(["-i", server("SSH_KEY_ED25519")])
                    .arg(format!(
                        "-oUserKnownHostsFile={}",
                        server("SSH_KNOWN_HOSTS")
                    ))
                    .arg("-oBatchMode=yes")
                    .arg(format!("{}@127.0.0.1", server("SSH_AO_USER")));
                c
            };
            attempt("sftp rm", &mut batch(format!("rm {dir}/{victim}")));
            attempt(
                "sftp rename",
                &mut batch(format!("rename {dir}/{victim} {dir}/moved")),
            );
            attempt(
                "sftp put over",
                &mut batch(format!("put {junk_s} {dir}/{victim}")),
            );
            attempt(
                "sftp reput (append)",
                &mut batch(format!("reput {junk_s} {dir}/{victim}")),
            );
            attempt(
                "sftp chmod",
                &mut batch(format!("chmod 666 {dir}/{victim}")),
            );
            // A shell would do all of it: the account has none.
            let mut c = Command::new("ssh");
            c.args(["-p", server("SSH_PORT"), "-i", server("SSH_KEY_ED25519")])
                .arg(format!(
                    "-oUserKnownHostsFile={}",
                    server("SSH_KNOWN_HOSTS")
                ))
                .arg("-oBatchMode=yes")
                .arg(format!("{}@127.0.0.1", server("SSH_AO_USER")))
                .arg(format!("rm -f {dir}/{victim}"));
            attempt("ssh rm", &mut c);
        }
        Kind::RsyncDaemon => {
            let module = format!(
                "rsync://{}@127.0.0.1:{}/{}/{}",
                server("RSYNCD_USER"),
                server("RSYNCD_PORT"),
                server("RSYNCD_AO_MODULE"),
                ao.server_dir.file_name().unwrap().to_str().unwrap()
            );
            let empty = ws.p("empty");
            fs::create_dir_all(&empty).unwrap();
            let rsync = |args: &[&str]| {
                let mut c = Command::new("rsync");
                c.env("RSYNC_PASSWORD", server("RSYNCD_PASSWORD"))
                    .args(args);
                c
            };
            let over = format!("{module}/{victim}");
            let empty_s = format!("{}/", empty.display());
            attempt(
                "rsync --delete",
                &mut rsync(&["-r", "--delete", &empty_s, &format!("{module}/")]),
            );
            attempt("rsync over (temp + rename)", &mut rsync(&[junk_s, &over]));
            attempt(
                "rsync --inplace over",
                &mut rsync(&["--inplace", junk_s, &over]),
            );
            attempt(
                "rsync --remove-source-files",
                &mut rsync(&[
                    "--remove-source-files",
                    &over,
                    ws.p("stolen").to_str().unwrap(),
                ]),
            );
            attempt(
                "rsync --chmod",
                &mut rsync(&["-p", "--chmod=a+w", junk_s, &over]),
            );
        }
        Kind::Ftp => {
            let netrc = ws.p("netrc");
            fs::write(
                &netrc,
                format!(
                    "machine 127.0.0.1 login {} password {}\n",
                    server("FTP_AO_USER"),
                    server("FTP_AO_PASSWORD")
                ),
            )
            .unwrap();
            let rel =
                ao.t.url
                    .split_once(&format!(":{}/", server("FTP_AO_PORT")))
                    .unwrap()
                    .1;
            let base = format!("ftp://127.0.0.1:{}/{rel}/", server("FTP_AO_PORT"));
            let curl = |args: &[&str]| {
                let mut c = Command::new("curl");
                c.args(["-sS", "--fail", "--netrc-file", netrc.to_str().unwrap()])
                    .args(args);
                c
            };
            attempt(
                "ftp DELE",
                &mut curl(&["-Q", &format!("DELE {victim}"), &base]),
            );
            attempt(
                "ftp RNFR/RNTO",
                &mut curl(&["-Q", &format!("RNFR {victim}"), "-Q", "RNTO moved", &base]),
            );
            attempt(
                "ftp STOR over",
                &mut curl(&["-T", junk_s, &format!("{base}{victim}")]),
            );
            attempt(
                "ftp APPE",
                &mut curl(&["--append", "-T", junk_s, &format!("{base}{victim}")]),
            );
            attempt(
                "ftp SITE CHMOD",
                &mut curl(&["-Q", &format!("SITE CHMOD 666 {victim}"), &base]),
            );
        }
        Kind::File => {}
    }
    allowed
}

/// The whole story on one append-only target.
fn scenario(kind: Kind) {
    let ao = ao_target(kind);
    let ws = &ao.t.ws;
    let src = ws.p("src");
    build_sample(&src);
    let src_s = src.to_str().unwrap();
    let url = ao.t.url.as_str();
    let backup = |kind: &str, step: i64| {
        ao.ours(&[kind, "--current-time", &t(step).to_string(), src_s, url])
            .ok()
    };
    // Two chains: a full and an incremental, then a second full.
    backup("full", 0);
    mutate(&src, 1);
    backup("incremental", 1);
    mutate(&src, 2);
    backup("full", 2);
    let before = ao.stored();
    assert_eq!(
        before.len(),
        9,
        "three sets of volume + signatures + manifest: {before:?}"
    );
    // Final names only: no temporary file was left behind.
    let all: Vec<String> = dir_names(&ao.server_dir);
    assert!(
        all.iter().all(|n| n.starts_with("duplicity-")),
        "only duplicity's names on the target: {all:?}"
    );

    // Retention and cleanup: nothing deleted, and the files to prune on the server are named.
    let first_chain: Vec<&String> = before
        .keys()
        .filter(|n| n.contains(&stamp(t(0))) && !n.contains(&stamp(t(2))))
        .collect();
    assert_eq!(first_chain.len(), 6, "{first_chain:?}");
    let r = ao
        .ours(&["remove-all-but-n-full", "1", "--force", url])
        .fails();
    assert!(
        r.stderr.contains("append-only target")
            && r.stderr.contains("server side")
            && first_chain.iter().all(|n| r.stderr.contains(n.as_str())),
        "{}",
        r.output()
    );
    let r = ao
        .ours(&["remove-older-than", &t(50).to_string(), "--force", url])
        .fails();
    assert!(r.stderr.contains("nothing was deleted"), "{}", r.output());
    ao.ours(&["remove-all-inc-of-but-n-full", "1", "--force", url])
        .fails();
    // A dry run only plans, as on any target; a cleanup with nothing to clean succeeds.
    ao.ours(&["remove-older-than", &t(50).to_string(), url])
        .ok();
    ao.ours(&["cleanup", "--force", url]).ok();
    assert_eq!(ao.stored(), before, "retention deleted nothing");

    // The compromised unit: the server refuses every delete, rename and overwrite.
    let manifest = before
        .keys()
        .find(|n| n.starts_with("duplicity-full") && n.contains(".manifest"))
        .unwrap()
        .clone();
    let volume = before
        .keys()
        .find(|n| n.contains(".difftar"))
        .unwrap()
        .clone();
    for victim in [&manifest, &volume] {
        let allowed = attack_with_clients(&ao, victim);
        assert!(
            allowed.is_empty(),
            "{kind:?}: the server allowed {allowed:?} on {victim}"
        );
    }
    let raw = ao.raw_backend();
    let junk = ws.p("junk2");
    fs::write(&junk, b"ransom note").unwrap();
    for victim in [&manifest, &volume] {
        assert!(
            raw.delete(std::slice::from_ref(victim)).is_err(),
            "{kind:?}: our backend deleted {victim}"
        );
        assert!(
            raw.put(&junk, victim).is_err(),
            "{kind:?}: our backend replaced {victim}"
        );
    }
    // Our CLI without the option (as a compromised unit would run it) cannot prune either.
    let mut no_option = ao.t.cli.clone();
    no_option.retain(|o| o != "--append-only-target");
    let bare = Target {
        ws: Ws::new("append-only-bare"),
        url: ao.t.url.clone(),
        opts: ao.t.opts.clone(),
        cli: no_option,
        env: ao.t.env.clone(),
    };
    bare.run_tool(Tool::Ours, &["remove-all-but-n-full", "1", "--force", url])
        .fails();
    // Without the option a backup fails at its first upload, naming the option.
    let r = bare.run_tool(Tool::Ours, &["full", src_s, url]).fails();
    assert!(
        r.stderr.contains("--append-only-target"),
        "{kind:?}: {}",
        r.output()
    );
    assert_eq!(
        ao.stored(),
        before,
        "{kind:?}: a stored file changed or went"
    );

    // Backups, verify and restores go on.
    change(&src, 3);
    backup("incremental", 3);
    ao.ours(&["verify", url, src_s]).ok();
    ao.ours(&["list-current-files", url]).ok();
    let dst = ws.p("restored");
    ao.ours(&["restore", url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, &format!("{kind:?}: our restore"));
    let old = ws.p("restored-old");
    ao.ours(&[
        "restore",
        "-t",
        &t(1).to_string(),
        url,
        old.to_str().unwrap(),
    ])
    .ok();
    let expected_old = ws.p("expected-old");
    sample_at(&expected_old, 1);
    assert_same_tree(
        &expected_old,
        &old,
        &format!("{kind:?}: restore of the first chain"),
    );

    // Stock duplicity restores a copy of what was written (only the stored files, no cache).
    let copy = ws.p("copy");
    fs::create_dir_all(&copy).unwrap();
    for name in ao.stored().keys() {
        fs::copy(ao.server_dir.join(name), copy.join(name)).unwrap();
    }
    let dup = ws.p("restored-duplicity");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "copy", &dup, None, &[]);
    assert_same_tree(
        &src,
        &dup,
        &format!("{kind:?}: duplicity restores the copy"),
    );
}

#[test]
fn sftp_append_only_target() {
    scenario(Kind::Sftp);
}

#[test]
fn rsync_daemon_append_only_target() {
    scenario(Kind::RsyncDaemon);
}

#[test]
fn ftp_append_only_target() {
    scenario(Kind::Ftp);
}

#[test]
fn file_append_only_directory() {
    scenario(Kind::File);
}

/// A volume upload cut half-way leaves a partial file under its final name, which the target will
/// neither replace nor delete: the backup fails saying so, the set gets no manifest, the next backup
/// writes a new set, and both tools restore.
fn cut_volume(kind: Kind) {
    let ao = ao_target(kind);
    let ws = &ao.t.ws;
    let src = ws.p("src");
    build_sample(&src);
    let plan = FaultPlan {
        cut_put_every: 1,
        cut_bytes: 1000,
        ..FaultPlan::default()
    };
    let repo = ao.repository(Box::new(Faulty::new(ao.raw_backend(), plan)));
    let Err(e) = repo.backup(&backup_opts(&src, true, t(0))) else {
        panic!("a cut upload fails the backup");
    };
    let msg = format!("{:#}", e.into_anyhow());
    assert!(msg.contains("can neither replace nor delete"), "{msg}");
    let partial = ao.stored();
    assert_eq!(partial.len(), 1, "only the cut volume: {partial:?}");
    assert!(!partial.keys().any(|n| n.contains("manifest")));

    let url = ao.t.url.as_str();
    let src_s = src.to_str().unwrap();
    // The cut set's time is taken: a fixed time must differ (a scheduled run simply takes the next
    // free second).
    let r = ao
        .ours(&["full", "--current-time", &t(0).to_string(), src_s, url])
        .fails();
    assert!(r.stderr.contains("already exists"), "{}", r.output());
    ao.ours(&[
        "full",
        "--current-time",
        &(t(0) + 10).to_string(),
        src_s,
        url,
    ])
    .ok();
    mutate(&src, 1);
    ao.ours(&[
        "incremental",
        "--current-time",
        &t(1).to_string(),
        src_s,
        url,
    ])
    .ok();
    let dst = ws.p("restored");
    ao.ours(&["restore", url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "our restore after a cut volume");

    let copy = ws.p("copy");
    fs::create_dir_all(&copy).unwrap();
    for name in ao.stored().keys() {
        fs::copy(ao.server_dir.join(name), copy.join(name)).unwrap();
    }
    let dup = ws.p("restored-duplicity");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "copy", &dup, None, &[]);
    assert_same_tree(&src, &dup, "duplicity restores beside a cut volume");
}

#[test]
fn sftp_cut_volume_is_never_trusted() {
    cut_volume(Kind::Sftp);
}

#[test]
fn rsync_daemon_cut_volume_is_never_trusted() {
    cut_volume(Kind::RsyncDaemon);
}

#[test]
fn ftp_cut_volume_is_never_trusted() {
    cut_volume(Kind::Ftp);
}

/// The manifest upload of an incremental cut half-way: a partial manifest stays under its final
/// name. The next backup does not build on it (a new full), whether the archive dir holds that
/// manifest (written before the upload) or is new (another machine, a lost cache), and restores use
/// only whole sets.
fn cut_manifest(kind: Kind, fresh_cache: bool) {
    let ao = ao_target(kind);
    let ws = &ao.t.ws;
    let src = ws.p("src");
    build_sample(&src);
    let url = ao.t.url.as_str();
    let src_s = src.to_str().unwrap();
    ao.ours(&["full", "--current-time", &t(0).to_string(), src_s, url])
        .ok();
    mutate(&src, 1);
    // One volume, then the signatures, then the manifest: the third upload is cut.
    let plan = FaultPlan {
        cut_put_every: 3,
        cut_bytes: 100,
        ..FaultPlan::default()
    };
    let repo = ao.repository(Box::new(Faulty::new(ao.raw_backend(), plan)));
    let Err(e) = repo.backup(&backup_opts(&src, false, t(1))) else {
        panic!("a cut manifest fails the backup");
    };
    let msg = format!("{:#}", e.into_anyhow());
    assert!(
        msg.contains("manifest") && msg.contains("can neither replace"),
        "{msg}"
    );
    assert_eq!(
        ao.stored().len(),
        6,
        "the cut manifest stays: {:?}",
        ao.stored()
    );
    if fresh_cache {
        fs::remove_dir_all(ws.cache(Tool::Ours)).unwrap();
    }

    mutate(&src, 2);
    let r = ao
        .ours(&[
            "incremental",
            "--current-time",
            &t(2).to_string(),
            src_s,
            url,
        ])
        .ok();
    assert!(
        r.stdout.contains("new full backup") || r.stderr.contains("new full backup"),
        "{}",
        r.output()
    );
    assert!(
        ao.stored()
            .keys()
            .any(|n| n.starts_with(&format!("duplicity-full.{}", stamp(t(2))))),
        "{:?}",
        ao.stored()
    );
    change(&src, 3);
    ao.ours(&[
        "incremental",
        "--current-time",
        &t(3).to_string(),
        src_s,
        url,
    ])
    .ok();
    let dst = ws.p("restored");
    ao.ours(&["restore", url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "our restore after a cut manifest");
    ao.ours(&["verify", url, src_s]).ok();
    ao.ours(&["list-current-files", url]).ok();

    // Stock duplicity restores a copy too: it reads the newest chain, not the cut set.
    let copy = ws.p("copy");
    fs::create_dir_all(&copy).unwrap();
    for name in ao.stored().keys() {
        fs::copy(ao.server_dir.join(name), copy.join(name)).unwrap();
    }
    let dup = ws.p("restored-duplicity");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "copy", &dup, None, &[]);
    assert_same_tree(&src, &dup, "duplicity restores beside a cut manifest");
}

#[test]
fn sftp_cut_manifest_starts_a_new_full() {
    cut_manifest(Kind::Sftp, false);
}

#[test]
fn rsync_daemon_cut_manifest_starts_a_new_full_with_a_fresh_archive_dir() {
    cut_manifest(Kind::RsyncDaemon, true);
}

/// `-t` at or inside a cut set: a cut inc manifest (the set holds volumes and signatures and a
/// truncated manifest under its final name) and a cut first volume of a full (no manifest). The cut
/// set never happened for restore: restore, verify and list-current-files at its time (and between
/// it and the next set) give the latest complete state before it, with a warning naming the set;
/// before any complete set there is nothing to restore.
fn cut_set_times(kind: Kind) {
    let ao = ao_target(kind);
    let ws = &ao.t.ws;
    let src = ws.p("src");
    build_sample(&src);
    let url = ao.t.url.as_str();
    let src_s = src.to_str().unwrap();
    ao.ours(&["full", "--current-time", &t(0).to_string(), src_s, url])
        .ok();
    let at_t0 = ws.p("src-at-t0");
    copy_tree(&src, &at_t0);
    mutate(&src, 1);
    let plan = FaultPlan {
        cut_put_every: 3,
        cut_bytes: 100,
        ..FaultPlan::default()
    };
    let repo = ao.repository(Box::new(Faulty::new(ao.raw_backend(), plan)));
    assert!(repo.backup(&backup_opts(&src, false, t(1))).is_err());
    mutate(&src, 2);
    ao.ours(&["full", "--current-time", &t(2).to_string(), src_s, url])
        .ok();
    let cut = format!("duplicity-inc.{}.to.{}", stamp(t(0)), stamp(t(1)));
    let r = ao
        .ours(&["list-current-files", "-t", &t(0).to_string(), url])
        .ok();
    // At the state before the cut set, nothing was passed over: no note.
    assert!(!r.stderr.contains("ignored"), "{}", r.output());
    let listed_t0 = r.stdout;
    for (i, when) in [t(1), t(1) + 5].into_iter().enumerate() {
        let when = when.to_string();
        let dst = ws.p(&format!("restored-{i}"));
        let r = ao
            .ours(&["restore", "-t", &when, url, dst.to_str().unwrap()])
            .ok();
        assert_same_tree(&at_t0, &dst, "restore -t at a cut set");
        assert!(
            r.stderr.contains(&cut) && r.stderr.contains("ignored"),
            "the warning names the ignored set: {}",
            r.output()
        );
        let at = at_t0.to_str().unwrap();
        ao.ours(&["verify", "-t", &when, url, at]).ok();
        let r = ao.ours(&["list-current-files", "-t", &when, url]).ok();
        assert_eq!(r.stdout, listed_t0, "list-current-files -t at a cut set");
        // Why the listing is older than the time asked: the same note as restore's, on stderr.
        assert!(
            r.stderr.contains(&cut)
                && r.stderr.contains("ignored")
                && r.stderr
                    .contains(&format!("listing the state as of {}", stamp(t(0)))),
            "list-current-files names the ignored set: {}",
            r.output()
        );
    }
    // The latest state is the new full's, as ever.
    let dst = ws.p("restored-now");
    ao.ours(&["restore", url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "restore after a cut set");
}

#[test]
fn file_restore_at_a_cut_set_gives_the_state_before_it() {
    cut_set_times(Kind::File);
}

#[test]
fn sftp_restore_at_a_cut_set_gives_the_state_before_it() {
    cut_set_times(Kind::Sftp);
}

/// A cut first volume of the first full: nothing complete at or before its time.
#[test]
fn file_restore_at_a_cut_first_full_finds_nothing_before_it() {
    let ao = ao_target(Kind::File);
    let ws = &ao.t.ws;
    let src = ws.p("src");
    build_sample(&src);
    let plan = FaultPlan {
        cut_put_every: 1,
        cut_bytes: 1000,
        ..FaultPlan::default()
    };
    let repo = ao.repository(Box::new(Faulty::new(ao.raw_backend(), plan)));
    assert!(repo.backup(&backup_opts(&src, true, t(0))).is_err());
    let url = ao.t.url.as_str();
    let src_s = src.to_str().unwrap();
    ao.ours(&["full", "--current-time", &t(1).to_string(), src_s, url])
        .ok();
    for when in [t(0), t(0) + 5] {
        let dst = ws.p(&format!("restored-{when}"));
        let r = ao
            .ours(&[
                "restore",
                "-t",
                &when.to_string(),
                url,
                dst.to_str().unwrap(),
            ])
            .fails();
        assert!(
            r.stderr.contains("no backup at or before"),
            "{}",
            r.output()
        );
        assert!(!dst.exists(), "nothing restored");
        // list-current-files falls back to the oldest chain, as duplicity does, and says why the
        // state listed is later than the time asked.
        let r = ao
            .ours(&["list-current-files", "-t", &when.to_string(), url])
            .ok();
        assert!(
            r.stderr
                .contains(&format!("ignored the set duplicity-full.{}", stamp(t(0))))
                && r.stderr
                    .contains(&format!("listing the state as of {}", stamp(t(1)))),
            "{}",
            r.output()
        );
    }
    let dst = ws.p("restored");
    ao.ours(&[
        "restore",
        "-t",
        &t(1).to_string(),
        url,
        dst.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src, &dst, "restore at the complete full");
}

/// The charm with `append_only_target=true`: backups as usual; the retention actions fail naming the
/// files to prune on the server and delete nothing; the scheduled retention deletes nothing, succeeds,
/// and logs the list.
#[cfg(feature = "test-hooks")]
#[test]
fn charm_append_only_target_reports_pruning_instead_of_deleting() {
    use crate::juju_support::FakeJuju;
    use serde_json::{json, Value};

    let j = FakeJuju::new("append-only");
    j.set_config(&[
        ("backend", json!("file")),
        (
            "remote_backup_url",
            json!(format!("file://{}", j.p("backups").display())),
        ),
        ("disable_encryption", json!(true)),
        ("aux_backup_directory", json!("/srv/data")),
        ("append_only_target", json!(true)),
    ]);
    assert_eq!(j.hook("config-changed").code, 0);
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    let settings: Value = serde_json::from_slice(&fs::read(j.settings_file()).unwrap()).unwrap();
    assert_eq!(settings["append_only_target"], json!(true));
    build_sample(&j.root("/srv/data"));
    j.action_ok("backup", json!({"full": true}));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    j.action_ok("backup", json!({"full": true}));
    let target = j.p("backups/duplicity-0");
    let before = dir_names(&target);
    assert_eq!(before.len(), 6, "{before:?}");

    let r = j.action("remove-all-but-n-full", json!({"count": 1}));
    assert_eq!(r.code, 0, "{r:?}");
    let m = j
        .action_failed()
        .unwrap_or_else(|| panic!("retention should fail: {:?}", j.action_results()));
    assert!(
        m.contains("append-only target")
            && m.contains("server side")
            && m.contains("duplicity-full."),
        "{m}"
    );
    assert_eq!(dir_names(&target), before, "the action deleted nothing");
    // A dry run plans as usual.
    let r = j.action_ok(
        "remove-all-but-n-full",
        json!({"count": 1, "dry-run": true}),
    );
    assert_eq!(r["would-delete"], "3", "{r:?}");

    // The scheduled retention: keep one full chain, every 2 s on the test-only schedule of seconds.
    let mut s: Value = serde_json::from_slice(&fs::read(j.settings_file()).unwrap()).unwrap();
    s["deletion_schedule"] = json!("*/2 * * * * *");
    s["keep_full_backups"] = json!(1);
    fs::write(j.settings_file(), serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let mut child = j.spawn_scheduler(&[("DUPLICITY_CHARM_TEST_SECOND_SCHEDULES", "1")]);
    j.wait_for(30, "a scheduled retention run", || {
        j.state()["last_scheduled"]["retention"]["ok"] == json!(true)
    });
    let _ = child.kill();
    let _ = child.wait();
    let st = j.state();
    let run = &st["last_scheduled"]["retention"];
    assert_eq!(run["stats"]["deleted"], json!(0), "{st}");
    assert_eq!(run["stats"]["prune-on-server"], json!(3), "{st}");
    assert!(
        run["detail"]
            .as_str()
            .unwrap_or("")
            .contains("prune on the server side"),
        "{st}"
    );
    let log = j.scheduler_log();
    assert!(
        log.contains("prune these 3 file(s) on the server side"),
        "{log}"
    );
    assert_eq!(
        dir_names(&target),
        before,
        "the scheduled retention deleted nothing"
    );
}
