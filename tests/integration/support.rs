//! Every helper of the integration tests, in one place: temp workspaces, sample trees and their mutation
//! steps, running our binary and stock duplicity, and a tree comparator that reports every difference.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The "now" of the first backup of every chain (2023-11-14T22:13:20Z); backup k runs at `T0 + k * STEP`.
pub const T0: i64 = 1_700_000_000;
/// Seconds between two backups of a chain.
pub const STEP: i64 = 100;
/// The passphrase of the encrypted tests.
pub const PASS: &str = "correct horse battery staple";
/// How long one run of either tool may take before the test fails (a hang is a failure, not a wait).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The time of backup number `k` of a chain.
pub fn t(k: i64) -> i64 {
    T0 + k * STEP
}

/// Which program writes or reads an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Ours,
    Duplicity,
}

/// Encrypted with `PASSPHRASE`, or `--no-encryption`, or neither (public keys given as options, no
/// passphrase in the environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enc {
    Plain,
    Pass(&'static str),
    Keys,
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn ours_bin() -> &'static str {
    env!("CARGO_BIN_EXE_duplicity-charm")
}

/// duplicity 3.2.1, `--no-encryption`, its own archive dir (`cache-dup3`), the workspace's environment.
pub fn dup3(ws: &Ws, args: &[&str]) -> Run {
    let mut cmd = Command::new(duplicity3());
    let (first, rest) = args.split_first().expect("a command");
    cmd.arg(first)
        .arg("--archive-dir")
        .arg(ws.p("cache-dup3"))
        .arg("--no-encryption")
        .args(rest);
    ws.env(&mut cmd);
    run_cmd(cmd, &format!("duplicity3 {}", args.join(" ")))
}

/// Our binary, unencrypted (the counterpart of [`dup3`]).
pub fn ours(ws: &Ws, args: &[&str]) -> Run {
    ws.run(Tool::Ours, Enc::Plain, args)
}

/// The path of stock duplicity 3.2.1, installed by scripts/duplicity3.sh on first use (a cached venv).
pub fn duplicity3() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/duplicity3.sh"))
            .output()
            .expect("run scripts/duplicity3.sh");
        assert!(
            out.status.success(),
            "scripts/duplicity3.sh failed (run scripts/setup-deps.sh first):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// The repository root (for scripts/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------------------
// Workspace

/// A test's own temp dir: sources, repositories (`repo-*`), restores, caches (`cache-*`), `HOME`, `TMPDIR`,
/// and a `GNUPGHOME` (mode 0700) for duplicity's gpg. Removed (and its gpg-agent stopped) on drop.
pub struct Ws {
    dir: tempfile::TempDir,
    shared_cache: bool,
}

impl Ws {
    pub fn new(name: &str) -> Ws {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dc-{name}-"))
            .tempdir()
            .expect("create temp workspace");
        let ws = Ws {
            dir,
            shared_cache: false,
        };
        for d in ["home", "tmp", "gnupg"] {
            fs::create_dir_all(ws.p(d)).unwrap();
        }
        fs::set_permissions(ws.p("gnupg"), fs::Permissions::from_mode(0o700)).unwrap();
        ws
    }

    /// Both tools use one cache dir (`cache`), as on one machine where an operator switches tools.
    /// Without it each tool has its own (`cache-ours`, `cache-duplicity`), as on two machines.
    pub fn share_cache(mut self) -> Ws {
        self.shared_cache = true;
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `file://` URL of a directory in the workspace.
    pub fn url(&self, rel: &str) -> String {
        format!("file://{}", self.p(rel).display())
    }

    pub fn cache(&self, tool: Tool) -> PathBuf {
        match (self.shared_cache, tool) {
            (true, _) => self.p("cache"),
            (false, Tool::Ours) => self.p("cache-ours"),
            (false, Tool::Duplicity) => self.p("cache-duplicity"),
        }
    }

    /// Run one tool with `--archive-dir` set to its cache, `--no-encryption` or `PASSPHRASE`, and the
    /// workspace's HOME/TMPDIR/GNUPGHOME. `args` start with the subcommand.
    pub fn run<S: AsRef<OsStr>>(&self, tool: Tool, enc: Enc, args: &[S]) -> Run {
        self.run_env(tool, enc, args, &[])
    }

    /// As [`Ws::run`], with extra environment variables (e.g. test hooks).
    pub fn run_env<S: AsRef<OsStr>>(
        &self,
        tool: Tool,
        enc: Enc,
        args: &[S],
        vars: &[(&str, &str)],
    ) -> Run {
        let (prog, mut argv): (&str, Vec<OsString>) = match tool {
            Tool::Ours => (ours_bin(), vec![]),
            Tool::Duplicity => ("duplicity", vec![]),
        };
        let mut it = args.iter().map(|a| a.as_ref().to_os_string());
        argv.push(it.next().expect("subcommand"));
        argv.push("--archive-dir".into());
        argv.push(self.cache(tool).into_os_string());
        if enc == Enc::Plain {
            argv.push("--no-encryption".into());
        }
        argv.extend(it);
        let mut cmd = Command::new(prog);
        cmd.args(&argv);
        self.env(&mut cmd);
        match enc {
            Enc::Pass(p) => cmd.env("PASSPHRASE", p),
            Enc::Plain | Enc::Keys => cmd.env_remove("PASSPHRASE"),
        };
        for (k, v) in vars {
            cmd.env(k, v);
        }
        run_cmd(cmd, &format!("{prog} {}", show_args(&argv)))
    }

    /// Environment for every child: nothing may touch the real home, cache or keyring.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.p("home"))
            .env("TMPDIR", self.p("tmp"))
            .env("GNUPGHOME", self.p("gnupg"))
            .env("XDG_CACHE_HOME", self.p("home/.cache"))
            .env("LC_ALL", "C.UTF-8")
            .env("TZ", "UTC")
            .env_remove("SIGN_PASSPHRASE")
            .env_remove("FTP_PASSWORD");
    }

    /// `full` or `incremental` of `src` to `repo` at time `now`, plus extra options.
    #[allow(clippy::too_many_arguments)] // each is one CLI argument; a struct would only rename them
    pub fn backup(
        &self,
        tool: Tool,
        kind: &str,
        enc: Enc,
        src: &Path,
        repo: &str,
        now: i64,
        extra: &[&str],
    ) -> Run {
        let mut args: Vec<OsString> =
            vec![kind.into(), "--current-time".into(), now.to_string().into()];
        args.extend(extra.iter().map(OsString::from));
        args.push(src.as_os_str().to_owned());
        args.push(self.url(repo).into());
        self.run(tool, enc, &args).ok()
    }

    /// `restore` of `repo` into `dst` (which must not exist yet), at `-t time` if given, plus extra options.
    pub fn restore(
        &self,
        tool: Tool,
        enc: Enc,
        repo: &str,
        dst: &Path,
        time: Option<i64>,
        extra: &[&str],
    ) -> Run {
        self.restore_try(tool, enc, repo, dst, time, extra).ok()
    }

    pub fn restore_try(
        &self,
        tool: Tool,
        enc: Enc,
        repo: &str,
        dst: &Path,
        time: Option<i64>,
        extra: &[&str],
    ) -> Run {
        let mut args: Vec<OsString> = vec!["restore".into()];
        if let Some(t) = time {
            args.push("-t".into());
            args.push(t.to_string().into());
        }
        args.extend(extra.iter().map(OsString::from));
        args.push(self.url(repo).into());
        args.push(dst.as_os_str().to_owned());
        self.run(tool, enc, &args)
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        // Stop the gpg-agent duplicity's gpg started for this GNUPGHOME (only if one was started).
        if fs::read_dir(self.p("gnupg"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            let _ = Command::new("gpgconf")
                .args(["--kill", "all"])
                .env("GNUPGHOME", self.p("gnupg"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn show_args(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.as_bytes().escape_ascii().to_string();
            if s.contains(' ') || s.is_empty() {
                format!("'{s}'")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------------------
// OpenPGP keys made by real gpg

/// The passphrase protecting every test key.
pub const KEY_PASS: &str = "key passphrase for tests";

/// A key gpg made in the workspace's GNUPGHOME (so duplicity has it, secret and public), exported to
/// `keys/<name>.{pub.asc,pub.gpg,sec.asc,sec.gpg}`.
pub struct TestKey {
    /// The primary key's fingerprint.
    pub fpr: String,
    pub pub_asc: PathBuf,
    pub pub_bin: PathBuf,
    pub sec_asc: PathBuf,
    pub sec_bin: PathBuf,
}

impl TestKey {
    /// The long key id (last 16 hex digits), as duplicity's `--sign-key` takes it.
    pub fn long_id(&self) -> &str {
        &self.fpr[self.fpr.len() - 16..]
    }
}

impl Ws {
    /// Runs gpg in the workspace's GNUPGHOME, unattended, with the test keys' passphrase.
    pub fn gpg(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("gpg");
        cmd.args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            KEY_PASS,
        ])
        .args(args);
        self.env(&mut cmd);
        run_cmd(cmd, &format!("gpg {}", args.join(" ")))
    }

    /// `gpg --quick-gen-key` of a primary key `algo` with `usage` (and an encryption subkey `sub`),
    /// expiring at `expire` ("never", a date); `faked_time` makes gpg believe it is that time (for keys
    /// that are expired now). Exports the key armored and binary, public and secret.
    pub fn gen_key(
        &self,
        name: &str,
        algo: &str,
        usage: &str,
        sub: Option<&str>,
        expire: &str,
        faked_time: Option<&str>,
    ) -> TestKey {
        let uid = format!("{name} <{name}@example.org>");
        let mut pre: Vec<&str> = Vec::new();
        if let Some(t) = faked_time {
            pre.extend(["--faked-system-time", t]);
        }
        let mut args = pre.clone();
        args.extend(["--quick-gen-key", &uid, algo, usage, expire]);
        self.gpg(&args).ok();
        let list = self.gpg(&["--with-colons", "--list-keys", &uid]).ok();
        let fpr = list
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|r| r.trim_matches(':').to_owned())
            .expect("fingerprint");
        if let Some(sub) = sub {
            let mut args = pre.clone();
            args.extend(["--quick-add-key", &fpr, sub, "encr", expire]);
            self.gpg(&args).ok();
        }
        fs::create_dir_all(self.p("keys")).unwrap();
        let key = TestKey {
            pub_asc: self.p(&format!("keys/{name}.pub.asc")),
            pub_bin: self.p(&format!("keys/{name}.pub.gpg")),
            sec_asc: self.p(&format!("keys/{name}.sec.asc")),
            sec_bin: self.p(&format!("keys/{name}.sec.gpg")),
            fpr,
        };
        self.export_key(&key);
        key
    }

    /// (Re-)exports `key` to its four files.
    pub fn export_key(&self, key: &TestKey) {
        for (what, armor, path) in [
            ("--export", true, &key.pub_asc),
            ("--export", false, &key.pub_bin),
            ("--export-secret-keys", true, &key.sec_asc),
            ("--export-secret-keys", false, &key.sec_bin),
        ] {
            let p = path.to_str().unwrap();
            let mut args = vec!["--yes", "--output", p];
            if armor {
                args.push("--armor");
            }
            args.extend([what, key.fpr.as_str()]);
            self.gpg(&args).ok();
        }
    }

    /// Revokes `key` with the revocation certificate gpg made for it, and re-exports it.
    pub fn revoke_key(&self, key: &TestKey) {
        let rev = self.p(&format!("gnupg/openpgp-revocs.d/{}.rev", key.fpr));
        // gpg puts a ':' before the armor line so that the certificate is not imported by accident.
        let text = fs::read_to_string(&rev).unwrap().replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK",
            "-----BEGIN PGP PUBLIC KEY BLOCK",
        );
        let armored = self.p("keys/revocation.asc");
        fs::write(&armored, text).unwrap();
        self.gpg(&["--import", armored.to_str().unwrap()]).ok();
        self.export_key(key);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Running programs

/// A finished run: the command line, exit status and output.
pub struct Run {
    pub cmdline: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole command and output unless it exited 0.
    pub fn ok(self) -> Run {
        if !self.success() {
            panic!(
                "command failed (exit {:?}): {}\n{}",
                self.code,
                self.cmdline,
                self.output()
            );
        }
        self
    }

    /// Panics unless it exited non-zero with a message on stderr.
    pub fn fails(self) -> Run {
        if self.success() {
            panic!(
                "command should have failed but exited 0: {}\n{}",
                self.cmdline,
                self.output()
            );
        }
        if self.stderr.trim().is_empty() {
            panic!(
                "command failed (exit {:?}) without a message on stderr: {}",
                self.code, self.cmdline
            );
        }
        self
    }

    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs a command with no stdin, collecting output, killing it after `RUN_TIMEOUT`.
pub fn run_cmd(mut cmd: Command, cmdline: &str) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start `{cmdline}`: {e} (is it installed? run scripts/setup-deps.sh)")
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command timed out after {RUN_TIMEOUT:?}: {cmdline}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        cmdline: cmdline.to_string(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&to.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap()).into_owned(),
    };
    if cmdline.starts_with(ours_bin()) {
        assert_no_known_secret(&run);
    }
    run
}

/// Every run of our binary in every test: its output holds neither the tests' passphrase nor any secret
/// of the test servers, whatever the run did or how it failed.
fn assert_no_known_secret(run: &Run) {
    let secrets = known_secrets();
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(
            !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
            "a secret ({}…) showed in the output of `{}`:\n{}{}",
            &secret[..3],
            run.cmdline,
            run.stdout,
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Deterministic data

/// xorshift64* bytes: incompressible, reproducible.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Log-like text lines: compressible, reproducible.
pub fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "backup",
        "volume",
        "chain",
        "restore",
        "delta",
        "manifest",
        "signature",
        "ERROR",
        "INFO",
        "file",
        "juju",
        "unit",
    ];
    let r = random_bytes(seed, len / 4 + 16);
    let mut v = Vec::with_capacity(len + 32);
    let mut i = 0;
    while v.len() < len {
        let b = r[i % r.len()] as usize;
        v.extend_from_slice(WORDS[b % WORDS.len()].as_bytes());
        v.push(if b % 7 == 0 { b'\n' } else { b' ' });
        i += 1;
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------------------------------------
// Building trees

/// Sets mtime (whole seconds) without following symlinks and without opening (fifos would block).
pub fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap_or_else(|e| panic!("utimensat {}: {e}", p.display()));
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

pub fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", p.display()));
}

/// Writes a file with the given content, mode and mtime (creating parent dirs).
pub fn write_file(p: &Path, data: &[u8], mode: u32, mtime: i64) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    chmod(p, mode);
    set_mtime(p, mtime);
}

pub fn append_file(p: &Path, data: &[u8], mtime: i64) {
    let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(data).unwrap();
    drop(f);
    set_mtime(p, mtime);
}

/// Overwrites `data.len()` bytes at `offset` in place.
pub fn patch_file(p: &Path, offset: u64, data: &[u8], mtime: i64) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(data, offset).unwrap();
    drop(f);
    set_mtime(p, mtime);
}

pub fn symlink(target: &str, p: &Path) {
    std::os::unix::fs::symlink(target, p)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
}

/// A path under `root` from raw bytes (for non-UTF-8 names).
pub fn pb(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Sets every directory's mtime (root included) to `secs`, so that trees built separately compare equal and
/// every backup sees directory changes at a time distinct from the previous backup's.
pub fn set_dir_mtimes(root: &Path, secs: i64) {
    for (rel, md) in walk(root) {
        if md.file_type().is_dir() {
            set_mtime(&root.join(&rel), secs);
        }
    }
}

/// Names of the long paths in the sample tree.
pub const LONG_DIR: &str = "long-dir-name-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
pub const LONG_FILE: &str = "long-file-name-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy.txt";

/// The 200+ byte relative path of the sample tree (directories are created by `build_sample`).
pub fn deep_path() -> String {
    let seg = "d".repeat(48);
    format!("deep/{seg}1/{seg}2/{seg}3/{seg}4/file-at-the-bottom.txt")
}

/// The non-UTF-8 file name of the sample tree.
pub const BAD_NAME: &[u8] = b"bad-\xff\xfe.bin";

/// Mtimes of files created or changed in step `k`.
fn mt(k: i64, i: i64) -> i64 {
    1_600_000_000 + k * 10_000 + i
}

/// Directory mtime after step `k`.
fn dir_mt(k: i64) -> i64 {
    1_650_000_000 + k
}

/// Builds the sample tree of step 0 in `root` (created if missing): entry-order traps, odd names, long
/// paths, symlinks (also dangling), empty dirs, a fifo, setuid/setgid/sticky bits, a hard link, files of
/// 65535, 65536 and 3 MiB bytes and a 2.5 MB file that crosses volumes at `--volsize 1`; as root also
/// files owned by ids that have no name.
pub fn build_sample(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let m = |i| mt(0, i);
    // Entry order: duplicity writes `B/ B/x Z _u a/ a/b a-b a.txt`.
    write_file(&root.join("a.txt"), b"hello world\n", 0o644, m(1));
    write_file(&root.join("a/b"), &text_bytes(2, 100), 0o644, m(2));
    write_file(&root.join("a-b"), &text_bytes(3, 200), 0o644, m(3));
    write_file(&root.join("B/x"), &text_bytes(4, 300), 0o644, m(4));
    write_file(&root.join("B/y/z.txt"), &text_bytes(5, 50), 0o644, m(5));
    write_file(&root.join("Z"), b"Z\n", 0o644, m(6));
    write_file(&root.join("_u"), b"_u\n", 0o644, m(7));
    write_file(&root.join("empty"), b"", 0o644, m(8));
    // Names.
    write_file(&root.join("with space.txt"), b"space\n", 0o644, m(9));
    write_file(&root.join("quote'\"s.txt"), b"quotes\n", 0o644, m(10));
    write_file(&root.join("back\\slash.txt"), b"backslash\n", 0o644, m(11));
    write_file(
        &root.join("naïve ü.txt"),
        "naïve ü\n".as_bytes(),
        0o644,
        m(12),
    );
    write_file(&pb(root, BAD_NAME), &random_bytes(13, 1000), 0o644, m(13));
    write_file(
        &root.join("tab\tand\nnewline"),
        b"control chars\n",
        0o644,
        m(14),
    );
    write_file(
        &root.join(LONG_DIR).join(LONG_FILE),
        &text_bytes(15, 5000),
        0o644,
        m(15),
    );
    write_file(&root.join(deep_path()), &text_bytes(16, 700), 0o644, m(16));
    // Symlinks.
    symlink("a.txt", &root.join("link"));
    symlink("does/not/exist", &root.join("dangling"));
    symlink("a", &root.join("dirlink"));
    symlink("/etc/hostname", &root.join("abslink"));
    // Empty dirs and a fifo.
    fs::create_dir_all(root.join("emptydir")).unwrap();
    fs::create_dir_all(root.join("nested/empty/deeper")).unwrap();
    mkfifo(&root.join("fifo"));
    set_mtime(&root.join("fifo"), m(17));
    // Permission bits.
    if !is_root() {
        eprintln!(
            "note: not root: the sample tree has no files owned by other ids and no mode-0000 file"
        );
    }
    if is_root() {
        write_file(&root.join("owned"), b"owned by 4242:4343\n", 0o644, m(18));
        std::os::unix::fs::chown(root.join("owned"), Some(4242), Some(4343)).unwrap();
        fs::create_dir_all(root.join("owned-dir")).unwrap();
        std::os::unix::fs::chown(root.join("owned-dir"), Some(4242), Some(4343)).unwrap();
        chmod(&root.join("owned-dir"), 0o750);
        write_file(&root.join("noperm"), b"mode 0000\n", 0o000, m(19));
    }
    write_file(&root.join("setuid"), b"#!/bin/sh\n", 0o4755, m(20));
    write_file(&root.join("setgid"), b"#!/bin/sh\n", 0o2755, m(21));
    write_file(&root.join("private"), b"secret\n", 0o600, m(22));
    write_file(&root.join("ro.txt"), b"read only\n", 0o444, m(23));
    write_file(&root.join("sticky/t.txt"), b"in sticky\n", 0o666, m(24));
    chmod(&root.join("sticky"), 0o1777);
    write_file(&root.join("sgdir/g.txt"), b"in setgid dir\n", 0o664, m(25));
    chmod(&root.join("sgdir"), 0o2775);
    // Chunking and volumes.
    write_file(&root.join("f65535"), &random_bytes(26, 65535), 0o644, m(26));
    write_file(&root.join("f65536"), &random_bytes(27, 65536), 0o644, m(27));
    write_file(
        &root.join("big.bin"),
        &random_bytes(28, 3 << 20),
        0o644,
        m(28),
    );
    write_file(
        &root.join("m.bin"),
        &random_bytes(29, 2_500_000),
        0o644,
        m(29),
    );
    // A hard link: must be stored as a second regular file (never tar type 1).
    fs::hard_link(root.join("f65535"), root.join("hard")).unwrap();
    write_file(
        &root.join("zz/last.txt"),
        &text_bytes(30, 4000),
        0o644,
        m(30),
    );
    chmod(root, 0o755);
    set_dir_mtimes(root, dir_mt(0));
}

/// Applies mutation step `k` (1 or 2) to a tree made by `build_sample` (and earlier steps).
/// Step 1: edit, append, middle patch of a big file, new file, new dir, symlink retarget.
/// Step 2: delete a file and a directory (and an empty dir), chmod only, edit a non-ASCII name, append to a
/// multi-volume file, a new random file, drop a setuid bit.
pub fn mutate(root: &Path, k: i64) {
    let m = |i| mt(k, i);
    match k {
        1 => {
            write_file(&root.join("a.txt"), b"hello world, changed\n", 0o644, m(1));
            append_file(&root.join("with space.txt"), b"appended line\n", m(2));
            patch_file(
                &root.join("big.bin"),
                1_572_864 + 1000,
                &random_bytes(101, 4096),
                m(3),
            );
            write_file(&root.join("new.txt"), b"a new file\n", 0o644, m(4));
            write_file(
                &root.join("newdir/inner.txt"),
                &text_bytes(102, 3000),
                0o640,
                m(5),
            );
            fs::create_dir_all(root.join("newdir/sub")).unwrap();
            fs::remove_file(root.join("link")).unwrap();
            symlink("a-b", &root.join("link"));
        }
        2 => {
            fs::remove_file(root.join("a-b")).unwrap();
            fs::remove_dir_all(root.join("B")).unwrap();
            fs::remove_dir(root.join("nested/empty/deeper")).unwrap();
            chmod(&root.join("private"), 0o640); // mode only: mtime stays
            write_file(
                &root.join("naïve ü.txt"),
                "naïve ü, edited\n".as_bytes(),
                0o644,
                m(1),
            );
            append_file(&root.join("m.bin"), &random_bytes(103, 100_000), m(2));
            write_file(
                &root.join("zz-new.bin"),
                &random_bytes(104, 200_000),
                0o644,
                m(3),
            );
            chmod(&root.join("setuid"), 0o755);
        }
        _ => panic!("no mutation step {k}"),
    }
    set_dir_mtimes(root, dir_mt(k));
}

/// The sample tree as it is after `step` mutations, built from scratch in `root`.
pub fn sample_at(root: &Path, step: i64) {
    build_sample(root);
    for k in 1..=step {
        mutate(root, k);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Comparing trees

/// Every entry below `root` (root itself as "."), relative paths as raw bytes, sorted; symlinks not followed.
pub fn walk(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    fn rec(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) {
        let full = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let md =
            fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("lstat {}: {e}", full.display()));
        let is_dir = md.file_type().is_dir();
        out.push((
            if rel.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                rel.to_path_buf()
            },
            md,
        ));
        if is_dir {
            let mut names: Vec<OsString> = fs::read_dir(&full)
                .unwrap_or_else(|e| panic!("readdir {}: {e}", full.display()))
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for n in names {
                rec(root, &rel.join(n), out);
            }
        }
    }
    let mut out = Vec::new();
    rec(root, Path::new(""), &mut out);
    out
}

fn kind(md: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = md.file_type();
    if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "char device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

/// A path for messages: raw bytes with non-printables escaped.
pub fn show(p: &Path) -> String {
    p.as_os_str().as_bytes().escape_ascii().to_string()
}

fn same_content(a: &Path, b: &Path) -> Result<bool, String> {
    let mut fa = fs::File::open(a).map_err(|e| format!("open {}: {e}", a.display()))?;
    let mut fb = fs::File::open(b).map_err(|e| format!("open {}: {e}", b.display()))?;
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| format!("read {}: {e}", a.display()))?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| format!("read {}: {e}", b.display()))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Differences between one entry in tree A (`pa`) and one in tree B (`pb_`), both lstat'ed: type,
/// permission bits (with setuid/setgid/sticky), mtime in whole seconds (not for symlinks), uid/gid,
/// content, symlink target, device numbers.
pub fn diff_entry(
    rel: &Path,
    pa: &Path,
    ma: &fs::Metadata,
    pb_: &Path,
    mb: &fs::Metadata,
) -> Vec<String> {
    let r = show(rel);
    let mut d = Vec::new();
    let (ka, kb) = (kind(ma), kind(mb));
    if ka != kb {
        d.push(format!("{r}: type {ka} vs {kb}"));
        return d;
    }
    if ka != "symlink" {
        if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            d.push(format!(
                "{r}: mode {:04o} vs {:04o}",
                ma.mode() & 0o7777,
                mb.mode() & 0o7777
            ));
        }
        if ma.mtime() != mb.mtime() {
            d.push(format!("{r}: mtime {} vs {}", ma.mtime(), mb.mtime()));
        }
    }
    if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
        d.push(format!(
            "{r}: owner {}:{} vs {}:{}",
            ma.uid(),
            ma.gid(),
            mb.uid(),
            mb.gid()
        ));
    }
    match ka {
        "file" => {
            if ma.len() != mb.len() {
                d.push(format!("{r}: size {} vs {}", ma.len(), mb.len()));
            } else {
                match same_content(pa, pb_) {
                    Ok(true) => {}
                    Ok(false) => d.push(format!("{r}: content differs (same size {})", ma.len())),
                    Err(e) => d.push(format!("{r}: {e}")),
                }
            }
        }
        "symlink" => {
            let (ta, tb) = (fs::read_link(pa).unwrap(), fs::read_link(pb_).unwrap());
            if ta != tb {
                d.push(format!(
                    "{r}: symlink target {} vs {}",
                    show(&ta),
                    show(&tb)
                ));
            }
        }
        "char device" | "block device" if ma.rdev() != mb.rdev() => {
            d.push(format!("{r}: device {:#x} vs {:#x}", ma.rdev(), mb.rdev()));
        }
        _ => {}
    }
    d
}

/// Every difference between the trees at `a` and `b` (roots included), one line each.
pub fn diff_trees(a: &Path, b: &Path) -> Vec<String> {
    let wa = walk(a);
    let wb = walk(b);
    let mut d = Vec::new();
    let (mut i, mut j) = (0, 0);
    // Both lists are in the same depth-first order with children sorted by bytes; merge on (parent, name)
    // by comparing component tuples.
    let key = |p: &Path| -> Vec<Vec<u8>> {
        if p == Path::new(".") {
            vec![]
        } else {
            p.components()
                .map(|c| c.as_os_str().as_bytes().to_vec())
                .collect()
        }
    };
    while i < wa.len() || j < wb.len() {
        let ord = match (wa.get(i), wb.get(j)) {
            (Some((ra, _)), Some((rb, _))) => key(ra).cmp(&key(rb)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                d.push(format!("{}: only in {}", show(&wa[i].0), a.display()));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                d.push(format!("{}: only in {}", show(&wb[j].0), b.display()));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (rel, ma) = &wa[i];
                let mb = &wb[j].1;
                d.extend(diff_entry(rel, &a.join(rel), ma, &b.join(rel), mb));
                i += 1;
                j += 1;
            }
        }
    }
    d
}

/// Panics listing every difference between the trees, with `what` saying which restore this was.
pub fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    assert!(
        fs::symlink_metadata(actual).is_ok(),
        "{what}: the restored tree {} does not exist (the restore exited 0 but wrote nothing)",
        actual.display()
    );
    let d = diff_trees(expected, actual);
    if !d.is_empty() {
        panic!(
            "{what}: {} difference(s) between expected {} and restored {}:\n  {}",
            d.len(),
            expected.display(),
            actual.display(),
            d.join("\n  ")
        );
    }
}

/// Panics unless the single entries `expected` and `actual` are the same (content, mode, mtime, owner).
pub fn assert_same_entry(expected: &Path, actual: &Path, what: &str) {
    let ma = fs::symlink_metadata(expected)
        .unwrap_or_else(|e| panic!("{what}: lstat {}: {e}", expected.display()));
    let mb = fs::symlink_metadata(actual)
        .unwrap_or_else(|e| panic!("{what}: lstat {}: {e}", actual.display()));
    let d = diff_entry(
        Path::new(expected.file_name().unwrap()),
        expected,
        &ma,
        actual,
        &mb,
    );
    assert!(d.is_empty(), "{what}:\n  {}", d.join("\n  "));
}

// ---------------------------------------------------------------------------------------------------------
// Repository inspection

/// Names of the files in a `file://` repository dir of the workspace, sorted.
pub fn repo_files(ws: &Ws, repo: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(ws.p(repo))
        .unwrap_or_else(|e| {
            panic!("cannot list the repository {repo} (did the backup write it?): {e}")
        })
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The `(StartingPath, EndingPath)` lines of each volume of an unencrypted manifest, in order.
pub fn manifest_volume_bounds(manifest: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(manifest);
    let mut out = Vec::new();
    let mut start = None;
    for line in text.lines() {
        let l = line.trim_start();
        if let Some(s) = l.strip_prefix("StartingPath") {
            start = Some(s.trim().to_string());
        } else if let Some(e) = l.strip_prefix("EndingPath") {
            out.push((start.take().unwrap_or_default(), e.trim().to_string()));
        }
    }
    out
}

/// 2023-11-14T22:13:20Z style stamp of an epoch time, as in duplicity's file names.
pub fn stamp(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

// ---------------------------------------------------------------------------------------------------------
// Copies, listings, retention

/// Copies the directory tree `src` to `dst` (files, dirs, symlinks; modes and mtimes kept).
pub fn copy_tree(src: &Path, dst: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp -a {} {}", src.display(), dst.display());
}

/// The lines of a `list-current-files` output that are entries (`<asctime> <path>`), dropping duplicity's
/// notices ("Last full backup date: …", "Synchronizing remote metadata…").
pub fn listing_lines(stdout: &str) -> Vec<String> {
    const DAYS: [&str; 7] = ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "];
    stdout
        .lines()
        .filter(|l| DAYS.iter().any(|d| l.starts_with(d)) && l.len() > 25 && &l[24..25] == " ")
        .map(str::to_string)
        .collect()
}

/// The "Difference found: …" and "Verify complete: …" lines of a verify output.
pub fn verify_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Difference found: ") || l.starts_with("Verify complete: "))
        .map(str::to_string)
        .collect()
}

/// The names of a directory's entries, sorted (empty when it does not exist).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// The same chain of backups written by `tool` into `repo` at the times `times` (`"full"` or `"inc"` at
/// each), from a tree that changes a little before every backup, so both tools produce identically named
/// collections from the same `--current-time`s.
pub fn build_collection(ws: &Ws, tool: Tool, enc: Enc, repo: &str, times: &[(&str, i64)]) {
    let src = ws.p(&format!("src-{repo}"));
    let _ = fs::remove_dir_all(&src);
    fs::create_dir_all(&src).unwrap();
    for (i, (kind, now)) in times.iter().enumerate() {
        let i = i as i64;
        write_file(
            &src.join(format!("f{i}.txt")),
            &text_bytes(i as u64, 500),
            0o644,
            1_600_000_000 + i,
        );
        write_file(
            &src.join("changing.txt"),
            &text_bytes(100 + i as u64, 300),
            0o644,
            1_600_100_000 + i,
        );
        set_mtime(&src, 1_650_000_000 + i);
        let kind = if *kind == "full" {
            "full"
        } else {
            "incremental"
        };
        ws.backup(tool, kind, enc, &src, repo, *now, &[]);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Test servers (scripts/test-servers.sh) and backend helpers

/// The connection facts `scripts/test-servers.sh start DIR` wrote to `DIR/servers.env` (KEY=value lines),
/// found through `DC_TEST_SERVERS_ENV` (set by scripts/test.sh). Panics, saying how to start them, when
/// missing: a backend test never skips silently.
pub fn servers() -> &'static std::collections::HashMap<String, String> {
    static S: std::sync::OnceLock<std::collections::HashMap<String, String>> =
        std::sync::OnceLock::new();
    S.get_or_init(|| {
        let path = std::env::var("DC_TEST_SERVERS_ENV").unwrap_or_else(|_| {
            panic!(
                "DC_TEST_SERVERS_ENV is not set: the backend tests need the loopback servers. Run \
                 scripts/test.sh, or `sudo scripts/test-servers.sh start /tmp/dc-ts` and \
                 DC_TEST_SERVERS_ENV=/tmp/dc-ts/servers.env cargo test"
            )
        });
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the test servers' env file {path}: {e}"));
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

/// The name the backend round trips store.
pub const ROUND_TRIP_NAME: &str = "duplicity-full.20240101T000000Z.manifest";

/// A put + list + get round trip of one small file through a new target; the error text when it fails.
pub fn round_trip(url: &str, o: &duplicity_charm::backend::OpenOptions) -> Result<(), String> {
    let b = duplicity_charm::backend::open(url, o).map_err(|e| e.to_string())?;
    let ws = Ws::new("round-trip");
    let src = ws.p("f");
    fs::write(&src, b"payload").unwrap();
    b.put(&src, ROUND_TRIP_NAME).map_err(|e| e.to_string())?;
    assert_eq!(b.list().map_err(|e| e.to_string())?, [ROUND_TRIP_NAME]);
    let got = ws.p("got");
    b.get(ROUND_TRIP_NAME, &got).map_err(|e| e.to_string())?;
    assert_eq!(fs::read(&got).unwrap(), b"payload");
    Ok(())
}

/// The secrets every test knows of: the tests' passphrase and, when the servers run, their passwords and keys.
pub fn known_secrets() -> Vec<String> {
    let mut secrets = vec![PASS.to_string()];
    if std::env::var_os("DC_TEST_SERVERS_ENV").is_some() {
        let s = servers();
        for k in [
            "SSH_PASSWORD",
            "RSYNCD_PASSWORD",
            "FTP_PASSWORD",
            "S3_SECRET_ACCESS_KEY",
        ] {
            secrets.extend(s.get(k).cloned());
        }
        let azure = s.get("AZURE_CONNECTION_STRING").map(String::as_str);
        secrets.extend(azure.and_then(azure_account_key).map(str::to_string));
    }
    secrets
}

/// The `AccountKey=` value of an Azure connection string.
pub fn azure_account_key(cs: &str) -> Option<&str> {
    cs.split(';').find_map(|p| p.strip_prefix("AccountKey="))
}

/// One fact from [`servers`]; panics naming the key when the env file lacks it.
pub fn server(key: &str) -> &'static str {
    servers()
        .get(key)
        .unwrap_or_else(|| panic!("the test servers' env file has no {key}"))
}

/// A name no other test (or earlier run) uses, for remote directories and buckets.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// `--ssh-options` for the test sshd: its client key and known_hosts (the `-oKey=Value` form duplicity
/// requires), strict checking.
pub fn ssh_options_with(key: &str, known_hosts: &str) -> String {
    format!("-oIdentityFile={key} -oUserKnownHostsFile={known_hosts} -oStrictHostKeyChecking=yes")
}

/// This process's resident set size in KiB (VmRSS).
pub fn rss_kib() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Runs `f` while sampling the RSS every 10 ms; returns f's result and the peak growth over the start in KiB.
pub fn with_peak_rss<T>(f: impl FnOnce() -> T) -> (T, u64) {
    // One measurement at a time: two large transfers in one test process would see each other's memory.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = rss_kib();
    let stop2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            peak = peak.max(rss_kib());
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let r = f();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    (r, peak.saturating_sub(base))
}

/// Writes `len` pseudo-random bytes to `p` in 1 MiB pieces (never the whole in memory); returns its SHA-1.
pub fn write_large_file(p: &Path, seed: u64, len: u64) -> String {
    use sha1::Digest;
    let mut f = std::io::BufWriter::new(fs::File::create(p).unwrap());
    let mut h = sha1::Sha1::new();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for c in buf[..n].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        f.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

/// SHA-1 of a file, read in pieces.
pub fn sha1_file(p: &Path) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    let mut f = fs::File::open(p).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Every process's command line (NULs shown as spaces), read from /proc.
pub fn all_cmdlines() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for ent in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(raw) = fs::read(ent.path().join("cmdline")) {
            let s = String::from_utf8_lossy(&raw).replace('\0', " ");
            out.push((pid, s));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Type changes (typechange.rs)

/// What an entry of a type-change test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    EmptyDir,
    /// A directory with files and a nested subdirectory holding files and a directory of its own.
    FullDir,
    File,
    /// Symlinks pointing outside the tree (absolute) at a file, at a directory, and at nothing.
    LinkToFile,
    LinkToDir,
    Dangling,
    Fifo,
    /// /dev/null's numbers; only as root.
    CharDevice,
}

impl EntryKind {
    /// Every kind this process can make (devices only as root).
    pub fn all() -> Vec<EntryKind> {
        use EntryKind::*;
        let mut v = vec![
            EmptyDir, FullDir, File, LinkToFile, LinkToDir, Dangling, Fifo,
        ];
        if is_root() {
            v.push(CharDevice);
        }
        v
    }
}

/// A directory outside every restore target that symlinks of the tests point into: `file`, `dir` (0700)
/// with `dir/sub`. Built once per workspace.
pub fn build_outside(outside: &Path) {
    write_file(
        &outside.join("file"),
        b"outside file\n",
        0o644,
        1_500_000_001,
    );
    write_file(
        &outside.join("dir/sub/inner"),
        b"inner\n",
        0o600,
        1_500_000_002,
    );
    chmod(&outside.join("dir/sub"), 0o700);
    chmod(&outside.join("dir"), 0o700);
    set_mtime(&outside.join("dir/sub"), 1_500_000_003);
    set_mtime(&outside.join("dir"), 1_500_000_004);
    set_mtime(outside, 1_500_000_005);
}

/// Owner change without following a symlink.
pub fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {}: {e}", p.display()));
}

/// Removes whatever is at `p` (a directory with its contents), never following a symlink.
pub fn remove_entry(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p).unwrap(),
        Ok(_) => fs::remove_file(p).unwrap(),
        Err(_) => {}
    }
}

/// Makes `p` an entry of `kind` whose modes, mtimes and contents depend on `step` (so each step's
/// entry differs from the last); as root with `owners`, also owned by ids that depend on `step`.
pub fn make_entry(p: &Path, kind: EntryKind, step: i64, outside: &Path, owners: bool) {
    let mt = 1_550_000_000 + step * 1000;
    let own = |q: &Path| {
        if owners && is_root() {
            let id = 4000 + step as u32;
            lchown(q, id, id);
        }
    };
    match kind {
        EntryKind::EmptyDir => {
            fs::create_dir(p).unwrap();
            own(p);
            chmod(p, 0o777);
        }
        EntryKind::FullDir => {
            fs::create_dir(p).unwrap();
            write_file(&p.join("f1"), &text_bytes(step as u64, 300), 0o640, mt + 1);
            write_file(
                &p.join("sub/g"),
                &random_bytes(step as u64 + 7, 2000),
                0o600,
                mt + 2,
            );
            write_file(&p.join("sub/deeper/h"), b"h\n", 0o644, mt + 3);
            symlink("../f1", &p.join("sub/up"));
            for q in [
                p.join("f1"),
                p.join("sub/g"),
                p.join("sub/deeper/h"),
                p.join("sub/up"),
            ] {
                own(&q);
            }
            for d in [p.join("sub/deeper"), p.join("sub"), p.to_path_buf()] {
                own(&d);
            }
            chmod(&p.join("sub"), 0o700);
            chmod(p, 0o750);
        }
        EntryKind::File => {
            write_file(p, &text_bytes(100 + step as u64, 500), 0o600, mt);
            own(p);
        }
        EntryKind::LinkToFile => symlink(outside.join("file").to_str().unwrap(), p),
        EntryKind::LinkToDir => symlink(outside.join("dir").to_str().unwrap(), p),
        EntryKind::Dangling => symlink("no/such/target", p),
        EntryKind::Fifo => {
            mkfifo(p);
            chmod(p, 0o640);
        }
        EntryKind::CharDevice => {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                p,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o640),
                rustix::fs::makedev(1, 3),
            )
            .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
        }
    }
    if matches!(
        kind,
        EntryKind::LinkToFile
            | EntryKind::LinkToDir
            | EntryKind::Dangling
            | EntryKind::Fifo
            | EntryKind::CharDevice
    ) {
        own(p);
    }
    set_mtime(p, mt);
}

/// Starts our binary like [`Ws::run`] (cache, `--no-encryption` or `PASSPHRASE`, the workspace's
/// environment) without waiting, output discarded: for tests that kill it.
pub fn spawn_ours(ws: &Ws, enc: Enc, args: &[&OsStr]) -> std::process::Child {
    let mut cmd = Command::new(ours_bin());
    cmd.arg(args[0])
        .arg("--archive-dir")
        .arg(ws.cache(Tool::Ours));
    if enc == Enc::Plain {
        cmd.arg("--no-encryption");
    }
    cmd.args(&args[1..]);
    ws.env(&mut cmd);
    match enc {
        Enc::Pass(p) => cmd.env("PASSPHRASE", p),
        Enc::Plain | Enc::Keys => cmd.env_remove("PASSPHRASE"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start our binary")
}
