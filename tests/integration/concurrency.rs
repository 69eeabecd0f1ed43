//! Runs at once, and the small leaks of issue 10. A run is made to overlap another deterministically: it
//! is started, the test polls until it is inside its backup (its work dir is in the archive dir, or its
//! first volume is on the target), stops it with SIGSTOP, runs the other, then lets it go on with SIGCONT.
//! With the writer lock the other run waits (or reports busy with `--lock-wait 0`) and every set on the
//! target restores. Also: a lock left by a killed run, kill -9 during retention, the modes of the
//! archive dir and work dirs under `umask 000`, a URL password with `/` in parse errors, the environment
//! of rsync and ssh children, and check-nrpe without its state file.

use crate::support::*;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// A run of ours in the background, as [`Ws::run_env`] would start it (`umask 000` first if asked).
fn spawn(ws: &Ws, enc: Enc, args: &[&str], vars: &[(&str, &str)], umask0: bool) -> Child {
    spawn_tool(ws, Tool::Ours, enc, args, vars, umask0)
}

fn spawn_tool(
    ws: &Ws,
    tool: Tool,
    enc: Enc,
    args: &[&str],
    vars: &[(&str, &str)],
    umask0: bool,
) -> Child {
    let prog = match tool {
        Tool::Ours => ours_bin(),
        Tool::Duplicity => "duplicity",
    };
    let mut argv: Vec<OsString> = vec![args[0].into()];
    argv.push("--archive-dir".into());
    argv.push(ws.cache(tool).into_os_string());
    if enc == Enc::Plain {
        argv.push("--no-encryption".into());
    }
    argv.extend(args[1..].iter().map(OsString::from));
    let mut cmd = if umask0 {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 000; exec \"$@\"", "sh", prog]);
        c
    } else {
        Command::new(prog)
    };
    cmd.args(&argv);
    ws.env(&mut cmd);
    match enc {
        Enc::Pass(p) => cmd.env("PASSPHRASE", p),
        _ => cmd.env_remove("PASSPHRASE"),
    };
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("start duplicity-charm")
}

/// Waits for a background run; its output as a [`Run`].
fn finish(child: Child, what: &str) -> Run {
    let out = child.wait_with_output().expect("wait");
    Run {
        cmdline: what.to_string(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn signal(child: &Child, sig: Signal) {
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), sig).expect("signal");
}

/// Polls (no timing assertion: the bound only turns a hang into a failure).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The backup work dirs in the archive dir (`<cache>/<name>/duplicity-charm-<pid>-*`).
fn work_dirs(ws: &Ws) -> Vec<PathBuf> {
    let cache = ws.cache(Tool::Ours);
    let mut v = Vec::new();
    for sub in fs::read_dir(&cache).into_iter().flatten().flatten() {
        for e in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("duplicity-charm-")
            {
                v.push(e.path());
            }
        }
    }
    v
}

/// Whether the process has exited or has a lock file open (so it is waiting for, or holds, a lock).
fn at_lock_or_gone(child: &mut Child) -> bool {
    if child.try_wait().expect("try_wait").is_some() {
        return true;
    }
    fs::read_dir(format!("/proc/{}/fd", child.id()))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|t| {
            let n = t.to_string_lossy();
            n.ends_with("/lockfile") || n.ends_with(".lock")
        })
}

fn has_manifest(ws: &Ws, time: i64) -> bool {
    dir_names(&ws.p("repo"))
        .iter()
        .any(|n| n.contains(&stamp(time)) && n.contains("manifest"))
}

/// Incompressible data, so a backup of it takes a moment.
fn big_source(src: &Path, seed: u64, mib: usize) {
    fs::create_dir_all(src).unwrap();
    write_file(
        &src.join("big.bin"),
        &random_bytes(seed, mib << 20),
        0o644,
        1_600_000_000 + seed as i64,
    );
    write_file(
        &src.join(format!("small-{seed}.txt")),
        &text_bytes(seed, 3000),
        0o644,
        1_600_000_000 + seed as i64,
    );
}

fn status_json(ws: &Ws, enc: Enc) -> serde_json::Value {
    let r = ws
        .run(
            Tool::Ours,
            enc,
            &["collection-status", "--json", &ws.url("repo")],
        )
        .ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", r.output()))
}

/// The collection is one clean chain of `times` (nothing orphaned, incomplete or conflicting), and each
/// set restores to its recorded state.
fn assert_one_clean_chain(ws: &Ws, enc: Enc, states: &[(i64, PathBuf)]) {
    let v = status_json(ws, enc);
    for key in [
        "secondary_chains",
        "orphaned_sets",
        "incomplete_sets",
        "orphaned_signatures",
        "conflicting_names",
        "warnings",
    ] {
        assert_eq!(
            v[key].as_array().map(Vec::len),
            Some(0),
            "{key} is not empty: {v:#}"
        );
    }
    assert_eq!(
        v["primary_chain"]["num_sets"].as_u64(),
        Some(states.len() as u64),
        "{v:#}"
    );
    for (i, (time, state)) in states.iter().enumerate() {
        let dst = ws.p(&format!("restored-{i}"));
        ws.restore(Tool::Ours, enc, "repo", &dst, Some(*time), &[]);
        assert_same_tree(state, &dst, &format!("restore of set {i}"));
    }
}

fn busy_message(r: &Run, pid: u32, on: &str) {
    assert!(!r.success(), "should have reported busy:\n{}", r.output());
    let want = format!("another run (pid {pid}, started 20");
    assert!(
        r.stderr.contains(&want),
        "want {want:?} in:\n{}",
        r.output()
    );
    assert!(
        r.stderr.contains(&format!("holds the lock on {on}")),
        "want the lock on {on:?} in:\n{}",
        r.output()
    );
    assert!(
        r.stderr.contains("wait for it to finish or stop it"),
        "{}",
        r.output()
    );
}

#[test]
fn two_incrementals_at_once_wait_for_each_other_or_report_busy() {
    let ws = Ws::new("conc-inc");
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    big_source(&src, 1, 4);
    ws.backup(Tool::Ours, "full", enc, &src, "repo", t(0), &[]);
    let state0 = ws.p("state0");
    copy_tree(&src, &state0);
    big_source(&src, 2, 48);

    let url = ws.url("repo");
    let t1 = t(1).to_string();
    let src_s = src.to_str().unwrap();
    let mut a = spawn(
        &ws,
        enc,
        &["incremental", "--current-time", &t1, src_s, &url],
        &[],
        false,
    );
    wait_until("the first incremental to be inside its backup", || {
        !work_dirs(&ws).is_empty() || a.try_wait().unwrap().is_some()
    });
    signal(&a, Signal::STOP);
    assert!(
        a.try_wait().unwrap().is_none() && !has_manifest(&ws, t(1)),
        "the first incremental finished before it could be stopped: give it more data"
    );

    // The same second, not waiting: busy, naming the first run.
    let b = ws.run(
        Tool::Ours,
        enc,
        &[
            "incremental",
            "--current-time",
            &t1,
            "--lock-wait",
            "0",
            src_s,
            &url,
        ],
    );
    let archive_dir = work_dirs(&ws)[0].parent().unwrap().display().to_string();
    busy_message(&b, a.id(), &format!("the archive dir {archive_dir}"));

    // Waiting: it runs once the first is done, on top of it.
    let t2 = t(2).to_string();
    let mut c = spawn(
        &ws,
        enc,
        &["incremental", "--current-time", &t2, src_s, &url],
        &[],
        false,
    );
    wait_until("the second incremental to reach the lock", || {
        at_lock_or_gone(&mut c)
    });
    signal(&a, Signal::CONT);
    finish(a, "first incremental").ok();
    let c = finish(c, "second incremental").ok();
    assert!(!c.stderr.contains("took over"), "{}", c.output());

    assert_one_clean_chain(
        &ws,
        enc,
        &[(t(0), state0), (t(1), src.clone()), (t(2), src.clone())],
    );
}

#[test]
fn cleanup_and_retention_wait_for_a_running_full() {
    let ws = Ws::new("conc-full");
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    big_source(&src, 3, 24);
    let url = ws.url("repo");
    let t0 = t(0).to_string();
    let mut a = spawn(
        &ws,
        enc,
        &[
            "full",
            "--current-time",
            &t0,
            "--volsize",
            "1",
            src.to_str().unwrap(),
            &url,
        ],
        &[],
        false,
    );
    let vol1 = format!("duplicity-full.{}.vol1.difftar.gpg", stamp(t(0)));
    wait_until("the full's first volume", || {
        ws.p("repo").join(&vol1).exists() || a.try_wait().unwrap().is_some()
    });
    signal(&a, Signal::STOP);
    assert!(
        a.try_wait().unwrap().is_none() && !has_manifest(&ws, t(0)),
        "the full finished before it could be stopped: give it more data"
    );

    // Without waiting: busy on the archive dir, and through another archive dir, busy on the target.
    let r = ws.run(
        Tool::Ours,
        enc,
        &["cleanup", "--force", "--lock-wait", "0", &url],
    );
    let archive_dir = work_dirs(&ws)[0].parent().unwrap().display().to_string();
    busy_message(&r, a.id(), &format!("the archive dir {archive_dir}"));
    let r = ws.run(
        Tool::Ours,
        enc,
        &[
            "remove-all-but-n-full",
            "1",
            "--force",
            "--lock-wait",
            "0",
            "--name",
            "another-archive-dir",
            &url,
        ],
    );
    busy_message(&r, a.id(), &format!("the target {url}"));
    assert!(ws.p("repo").join(&vol1).exists());

    // Waiting: both run after the full, and delete nothing of it.
    let mut cleanup = spawn(&ws, enc, &["cleanup", "--force", &url], &[], false);
    let mut remove = spawn(
        &ws,
        enc,
        &[
            "remove-all-but-n-full",
            "1",
            "--force",
            "--name",
            "another-archive-dir",
            &url,
        ],
        &[],
        false,
    );
    wait_until("cleanup and retention to reach the lock", || {
        at_lock_or_gone(&mut cleanup) && at_lock_or_gone(&mut remove)
    });
    signal(&a, Signal::CONT);
    finish(a, "full").ok();
    let cleanup = finish(cleanup, "cleanup --force").ok();
    finish(remove, "remove-all-but-n-full").ok();
    assert!(
        cleanup.stdout.contains("No extraneous files found"),
        "{}",
        cleanup.output()
    );
    assert_one_clean_chain(&ws, enc, &[(t(0), src.clone())]);
}

/// Whether /proc/locks shows a lock held by `pid` (stock duplicity's classic POSIX lock).
fn holds_posix_lock(pid: u32) -> bool {
    fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 4 && w[1] == "POSIX" && w[4] == pid.to_string()
        })
}

#[test]
fn stock_duplicity_and_ours_keep_each_other_off_one_archive_dir() {
    let ws = Ws::new("conc-stock").share_cache();
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    big_source(&src, 30, 48);
    let url = ws.url("repo");
    let src_s = src.to_str().unwrap();

    // Ours holds the lock: duplicity refuses to start on the same archive dir.
    let t0 = t(0).to_string();
    let mut ours = spawn(
        &ws,
        enc,
        &["full", "--current-time", &t0, src_s, &url],
        &[],
        false,
    );
    wait_until("our full to be inside its backup", || {
        !work_dirs(&ws).is_empty() || ours.try_wait().unwrap().is_some()
    });
    signal(&ours, Signal::STOP);
    assert!(ours.try_wait().unwrap().is_none() && !has_manifest(&ws, t(0)));
    let r = ws.run(Tool::Duplicity, enc, &["collection-status", &url]);
    signal(&ours, Signal::CONT);
    assert!(!r.success(), "{}", r.output());
    assert!(
        r.output()
            .contains("Another duplicity instance is already running with this archive directory"),
        "{}",
        r.output()
    );
    finish(ours, "our full").ok();

    // Duplicity holds it: ours waits for it, or says busy naming duplicity's pid.
    big_source(&src, 31, 48);
    let t1 = t(1).to_string();
    let mut dup = spawn_tool(
        &ws,
        Tool::Duplicity,
        enc,
        &["full", "--current-time", &t1, src_s, &url],
        &[],
        false,
    );
    wait_until("duplicity to lock its archive dir", || {
        holds_posix_lock(dup.id()) || dup.try_wait().unwrap().is_some()
    });
    signal(&dup, Signal::STOP);
    assert!(dup.try_wait().unwrap().is_none(), "duplicity ended early");
    let t2 = t(2).to_string();
    let r = ws.run(
        Tool::Ours,
        enc,
        &[
            "incremental",
            "--current-time",
            &t2,
            "--lock-wait",
            "0",
            src_s,
            &url,
        ],
    );
    signal(&dup, Signal::CONT);
    assert!(!r.success(), "{}", r.output());
    let want = format!("another run (pid {}", dup.id());
    assert!(r.stderr.contains(&want), "want {want:?}:\n{}", r.output());
    finish(dup, "duplicity full").ok();
    ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(2), &[]);
    let dst = ws.p("restored");
    ws.restore(Tool::Ours, enc, "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "restore after both tools wrote");
}

#[test]
#[cfg(feature = "test-hooks")] // DUPLICITY_CHARM_TEST_KILL_AT
fn a_lock_left_by_a_killed_backup_is_taken_over_with_a_warning() {
    let ws = Ws::new("conc-stale");
    let enc = Enc::Plain;
    let src = ws.p("src");
    big_source(&src, 4, 3);
    let url = ws.url("repo");
    let t0 = t(0).to_string();
    let killed = spawn(
        &ws,
        enc,
        &[
            "full",
            "--current-time",
            &t0,
            "--volsize",
            "1",
            src.to_str().unwrap(),
            &url,
        ],
        &[("DUPLICITY_CHARM_TEST_KILL_AT", "after-volume-1")],
        false,
    );
    let pid = killed.id();
    let r = finish(killed, "killed full");
    assert_eq!(r.code, None, "it should have been killed:\n{}", r.output());

    let r = ws.backup(Tool::Ours, "full", enc, &src, "repo", t(1), &[]);
    let want = "warning: took over the lock on the archive dir";
    assert!(r.stderr.contains(want), "want {want:?}:\n{}", r.output());
    let want = format!("left by pid {pid}, started 20");
    assert!(r.stderr.contains(&want), "want {want:?}:\n{}", r.output());
    // Released cleanly this time: the next run takes nothing over.
    let r = ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(2), &[]);
    assert!(!r.stderr.contains("took over"), "{}", r.output());
    let dst = ws.p("restored");
    ws.restore(Tool::Ours, enc, "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "restore after the takeover");
}

#[test]
#[cfg(feature = "test-hooks")] // DUPLICITY_CHARM_TEST_KILL_AT
fn kill_9_during_retention_leaves_a_readable_target_and_a_rerun_finishes() {
    let ws = Ws::new("conc-ret");
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    let mut states = Vec::new();
    for k in 0..6 {
        big_source(&src, 10 + k as u64, 2);
        let kind = if k % 2 == 0 { "full" } else { "incremental" };
        ws.backup(
            Tool::Ours,
            kind,
            enc,
            &src,
            "repo",
            t(k),
            &["--volsize", "1"],
        );
        let st = ws.p(&format!("state{k}"));
        copy_tree(&src, &st);
        states.push((t(k), st));
    }
    let before = dir_names(&ws.p("repo"));
    let r = ws.run_env(
        Tool::Ours,
        enc,
        &["remove-all-but-n-full", "1", "--force", &ws.url("repo")],
        &[("DUPLICITY_CHARM_TEST_KILL_AT", "retention-after-delete-3")],
    );
    assert_eq!(r.code, None, "it should have been killed:\n{}", r.output());
    let after = dir_names(&ws.p("repo"));
    assert_eq!(after.len() + 3, before.len(), "{before:?}\n{after:?}");

    // The target still reads, and every set that is still complete restores.
    let v = status_json(&ws, enc);
    let mut restorable = Vec::new();
    let chains = std::iter::once(&v["primary_chain"])
        .chain(v["secondary_chains"].as_array().unwrap().iter());
    for chain in chains {
        for set in chain["sets"].as_array().unwrap() {
            assert_eq!(set["complete"], true, "{v:#}");
            restorable.push(set["time"]["epoch"].as_i64().unwrap());
        }
    }
    assert!(restorable.contains(&t(5)), "{v:#}");
    for (time, state) in &states {
        if restorable.contains(time) {
            let dst = ws.p(&format!("restored-{time}"));
            ws.restore(Tool::Ours, enc, "repo", &dst, Some(*time), &[]);
            assert_same_tree(state, &dst, &format!("restore at {time}"));
        }
    }

    // The rerun finishes the job: only the last chain is left.
    ws.run(
        Tool::Ours,
        enc,
        &["remove-all-but-n-full", "1", "--force", &ws.url("repo")],
    )
    .ok();
    ws.run(Tool::Ours, enc, &["cleanup", "--force", &ws.url("repo")])
        .ok();
    let left = dir_names(&ws.p("repo"));
    for n in &left {
        assert!(
            n.contains(&stamp(t(4))) || n.contains(&stamp(t(5))),
            "{n} is left after the rerun: {left:?}"
        );
    }
    assert_one_clean_chain(&ws, enc, &states[4..]);
}

/// Every directory 0700 and file 0600 under `dir`.
fn assert_private_tree(dir: &Path) {
    for (path, md) in walk(dir) {
        let mode = md.permissions().mode() & 0o7777;
        let want = if md.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            mode,
            want,
            "{} is {mode:04o}, want {want:04o}",
            path.display()
        );
    }
}

#[test]
fn the_archive_dir_and_work_dirs_are_private_under_umask_000() {
    let ws = Ws::new("conc-modes");
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    big_source(&src, 20, 1);
    let url = ws.url("repo");
    let src_s = src.to_str().unwrap();
    let t0 = t(0).to_string();
    let full = spawn(
        &ws,
        enc,
        &["full", "--current-time", &t0, src_s, &url],
        &[],
        true,
    );
    finish(full, "full under umask 000").ok();
    let cache = ws.cache(Tool::Ours);
    assert_private_tree(&cache);
    assert_eq!(
        fs::metadata(&cache).unwrap().permissions().mode() & 0o7777,
        0o700
    );

    // A work dir, seen while an incremental runs.
    big_source(&src, 21, 48);
    let t1 = t(1).to_string();
    let mut inc = spawn(
        &ws,
        enc,
        &["incremental", "--current-time", &t1, src_s, &url],
        &[],
        true,
    );
    wait_until("the incremental's work dir", || {
        !work_dirs(&ws).is_empty() || inc.try_wait().unwrap().is_some()
    });
    signal(&inc, Signal::STOP);
    let seen = work_dirs(&ws);
    let modes: Vec<u32> = seen
        .iter()
        .map(|d| fs::metadata(d).unwrap().permissions().mode() & 0o7777)
        .collect();
    signal(&inc, Signal::CONT);
    assert!(!seen.is_empty(), "no work dir seen");
    assert!(modes.iter().all(|m| *m == 0o700), "work dirs {modes:?}");
    finish(inc, "incremental under umask 000").ok();

    let restore = spawn(
        &ws,
        enc,
        &["restore", &url, ws.p("restored").to_str().unwrap()],
        &[],
        true,
    );
    finish(restore, "restore under umask 000").ok();
    assert_private_tree(&cache);
    assert_same_tree(&src, &ws.p("restored"), "restore under umask 000");
}

#[test]
fn a_url_password_with_a_slash_never_shows_in_errors() {
    let ws = Ws::new("conc-url");
    for url in [
        "sftp://bob:S3cr/etPart@127.0.0.1/dir",
        "ftp://bob:S3cr/etPart@127.0.0.1:21/dir",
        "rsync://bob:S3cr/etPart@127.0.0.1/dir",
        "scp://bob:S3cr/et@Part@127.0.0.1/dir",
    ] {
        let r = ws
            .run(Tool::Ours, Enc::Plain, &["collection-status", url])
            .fails();
        for part in ["S3cr", "etPart", "et@Part"] {
            assert!(
                !r.stderr.contains(part) && !r.stdout.contains(part),
                "{part:?} of the password shows:\n{}",
                r.output()
            );
        }
        assert!(r.stderr.contains("%2F"), "{}", r.output());
    }
}

const MARK: &str = "child-env-marker";

/// Fake `rsync` and `ssh` that write their environment to `env-<name>-<pid>` in `dir`.
fn fake_tools(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for (name, code) in [("rsync", 0), ("ssh", 255)] {
        let p = dir.join(name);
        fs::write(
            &p,
            format!(
                "#!/bin/sh\nenv > \"{}/env-{name}-$$\"\nexit {code}\n",
                dir.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn dumps(dir: &Path, name: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("env-{name}-"))
        {
            let mut s = String::new();
            fs::File::open(e.path())
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            v.push(s);
        }
    }
    v
}

#[test]
fn rsync_and_ssh_children_get_none_of_our_secrets() {
    let ws = Ws::new("conc-env");
    let bin = ws.p("bin");
    fake_tools(&bin);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let secrets = [
        ("SIGN_PASSPHRASE", format!("{MARK}-sign")),
        ("FTP_PASSWORD", format!("{MARK}-ftp")),
        ("AWS_ACCESS_KEY_ID", format!("{MARK}-aws-id")),
        ("AWS_SECRET_ACCESS_KEY", format!("{MARK}-aws-secret")),
        ("AWS_SESSION_TOKEN", format!("{MARK}-aws-token")),
        ("AZURE_CONNECTION_STRING", format!("{MARK}-azure")),
    ];
    let mut vars: Vec<(&str, &str)> = vec![("PATH", &path)];
    vars.extend(secrets.iter().map(|(k, v)| (*k, v.as_str())));
    for url in ["rsync://127.0.0.1::/module/dir", "rsync://127.0.0.1/dir"] {
        ws.run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &["collection-status", url],
            &vars,
        );
    }
    let rsync = dumps(&bin, "rsync");
    let ssh = dumps(&bin, "ssh");
    assert!(
        !rsync.is_empty() && !ssh.is_empty(),
        "rsync {rsync:?} ssh {ssh:?}"
    );
    for env in rsync.iter().chain(&ssh) {
        for line in env.lines() {
            let leak = line.contains(MARK) || line.contains(PASS);
            // The daemon's password, handed over on purpose (FTP_PASSWORD is its fallback).
            let daemon_password = line == format!("RSYNC_PASSWORD={MARK}-ftp");
            assert!(!leak || daemon_password, "a child got {line:?}");
        }
    }
    assert!(
        rsync
            .iter()
            .any(|e| e.contains(&format!("RSYNC_PASSWORD={MARK}-ftp"))),
        "the daemon run lost its password: {rsync:?}"
    );
}

#[test]
fn check_nrpe_without_its_state_file_is_unknown() {
    let ws = Ws::new("conc-nrpe");
    let state = ws.p("no-such-unit/state.json");
    let mut cmd = Command::new(ours_bin());
    cmd.args(["check-nrpe", "--state", state.to_str().unwrap()]);
    ws.env(&mut cmd);
    let r = run_cmd(cmd, "check-nrpe");
    assert_eq!(r.code, Some(3), "{}", r.output());
    assert!(
        r.stdout.starts_with(&format!(
            "UNKNOWN: the state file {} is missing",
            state.display()
        )),
        "{}",
        r.output()
    );
    assert!(
        r.stdout.contains("no backup is configured"),
        "{}",
        r.output()
    );
}
