//! `rsync://` by driving the `rsync` program: over SSH (`user@host[:port]/relative`, `//absolute`) with
//! strict host-key checking and the `--ssh-options` key/known_hosts files, or to an rsync daemon
//! (`[user@]host[:port]::/module/path` or `::module/path`) with the password from the URL,
//! `RSYNC_PASSWORD` or `FTP_PASSWORD`, handed over in the child's environment, never in argv.
//! rsync writes each file under a temporary name and renames it; `--mkpath` creates the directory.
//! Over SSH, one master connection (OpenSSH's ControlMaster, socket in a private temp dir) carries every
//! rsync run of a backend, so a backup pays for one SSH handshake rather than one per volume.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::url::{decode, redact};
use super::{Backend, BackendError, BackendResult, OpenOptions, UrlError};

pub struct RsyncBackend {
    shown: String,
    /// The remote directory as rsync takes it, ending in `/`.
    remote: String,
    /// `-e` for SSH transfers.
    ssh: Option<String>,
    password: Option<String>,
    /// `[user@]host` of SSH transfers, for the master connection.
    ssh_dest: String,
    master: Mutex<Master>,
    /// `--rsync-options` words.
    rsync_options: Vec<String>,
    /// Daemon connections: `RSYNC_CONNECT_PROG` and `RSYNC_PROXY` for the child.
    connect_prog: Option<String>,
    proxy: Option<String>,
    /// `--timeout` in seconds: rsync's I/O and daemon connect timeouts and ssh's ConnectTimeout.
    timeout: Option<u64>,
    /// `--bwlimit=KIB` for uploads and downloads (see [`bwlimit_arg`]).
    bwlimit_up: Option<String>,
    bwlimit_down: Option<String>,
}

/// The shared SSH connection: not tried yet, running (its socket's directory), or not available (then
/// every rsync run makes its own connection, and reports its own error).
enum Master {
    Untried,
    Running(tempfile::TempDir),
    Unavailable,
}

/// Longest unix socket path ssh accepts (sun_path is 108 bytes; keep a margin).
const MAX_SOCKET_PATH: usize = 100;

impl RsyncBackend {
    pub fn from_url(url: &str, opts: &OpenOptions) -> Result<RsyncBackend, UrlError> {
        let rest = url
            .strip_prefix("rsync://")
            .ok_or_else(|| UrlError::NotAUrl(redact(url)))?;
        let shown = redact(url);
        if let Some((netloc, path)) = rest.split_once("::") {
            // Daemon: rsync://[user[:pw]@]host[:port]::[/]module/path
            let (user, pw, hostport) = split_userinfo(netloc);
            let path = path.trim_start_matches('/').trim_end_matches('/');
            if path.is_empty() || hostport.is_empty() {
                return Err(UrlError::Invalid(format!(
                    "{shown}: use rsync://[user@]host[:port]::/module/path"
                )));
            }
            let user = user.map(|u| format!("{u}@")).unwrap_or_default();
            return Ok(RsyncBackend {
                shown,
                remote: format!("rsync://{user}{hostport}/{path}/"),
                ssh: None,
                password: pw
                    .or_else(|| opts.rsync_password.clone())
                    .or_else(|| opts.ftp_password.clone()),
                ssh_dest: String::new(),
                master: Mutex::new(Master::Unavailable),
                rsync_options: opts.rsync_options.clone(),
                connect_prog: opts.rsync_connect_prog.clone(),
                proxy: opts.rsync_proxy.clone(),
                timeout: opts.timeout.map(|t| t.as_secs().max(1)),
                bwlimit_up: bwlimit_arg(opts.upload_limit),
                bwlimit_down: bwlimit_arg(opts.download_limit),
            });
        }
        // Over SSH our own -e carries the port, --ssh-options, batch mode and the shared master
        // connection; a second -e would replace all of that (rsync keeps the last), so it is refused
        // and the ssh options go where they are honoured.
        if let Some(e) = opts.rsync_options.iter().find(|w| is_rsh_option(w)) {
            return Err(UrlError::Invalid(format!(
                "--rsync-options: {e} cannot be used with an rsync-over-SSH URL ({shown}): this program runs ssh itself; give ssh's options with --ssh-options instead"
            )));
        }
        let u = super::url::NetUrl::parse(url)?;
        let mut ssh = String::from("ssh -oBatchMode=yes -oStrictHostKeyChecking=yes");
        if let Some(p) = u.port {
            ssh.push_str(&format!(" -p {p}"));
        }
        for w in &opts.ssh_options {
            // Words are passed to ssh as they are; a word with a space would be split by rsync.
            ssh.push(' ');
            ssh.push_str(w);
        }
        let user = u
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let path = u.path.trim_end_matches('/');
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        Ok(RsyncBackend {
            shown,
            remote: format!("{user}{}:{path}", u.host),
            ssh: Some(ssh),
            password: None,
            ssh_dest: format!("{user}{}", u.host),
            master: Mutex::new(Master::Untried),
            rsync_options: opts.rsync_options.clone(),
            connect_prog: None,
            proxy: None,
            timeout: opts.timeout.map(|t| t.as_secs().max(1)),
            bwlimit_up: bwlimit_arg(opts.upload_limit),
            bwlimit_down: bwlimit_arg(opts.download_limit),
        })
    }

    /// The `-e` command: the SSH command, through the master connection when one is running (started
    /// on first use; a master that cannot start is not an error, rsync then connects by itself).
    fn ssh_command(&self, ssh: &str) -> String {
        let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*master, Master::Untried) {
            *master = self.start_master(ssh);
        }
        match &*master {
            Master::Running(dir) => format!(
                "{ssh} -oControlMaster=no -oControlPath={}",
                dir.path().join("cm").display()
            ),
            _ => ssh.to_string(),
        }
    }

    fn start_master(&self, ssh: &str) -> Master {
        let Ok(dir) = tempfile::Builder::new().prefix("dc-ssh").tempdir() else {
            return Master::Unavailable;
        };
        let socket = dir.path().join("cm");
        let socket_str = socket.to_string_lossy();
        // rsync splits `-e` on whitespace; a path it would split cannot be used.
        if socket_str.len() > MAX_SOCKET_PATH || socket_str.contains(char::is_whitespace) {
            return Master::Unavailable;
        }
        let mut words = ssh.split_whitespace();
        let mut cmd = Command::new(words.next().unwrap_or("ssh"));
        super::scrub_secret_env(&mut cmd);
        cmd.args(words)
            // ControlPersist: the master also goes away by itself if this process dies without `-O exit`.
            .args(["-oControlMaster=yes", "-oControlPersist=60", "-N", "-f"])
            .arg(format!("-oConnectTimeout={}", self.timeout.unwrap_or(30)))
            .arg(format!("-oControlPath={socket_str}"))
            .arg(&self.ssh_dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match cmd.status() {
            Ok(st) if st.success() && socket.exists() => Master::Running(dir),
            _ => Master::Unavailable,
        }
    }

    fn run(&self, args: &[&std::ffi::OsStr], name: &str) -> BackendResult<String> {
        let mut cmd = Command::new("rsync");
        // rsync and the ssh it runs get none of our secrets (PASSPHRASE, cloud keys, ...).
        super::scrub_secret_env(&mut cmd);
        cmd.arg(format!("--timeout={}", self.timeout.unwrap_or(120)));
        // The operator's --rsync-options, before ours so that ours (e.g. --inplace on get) stand.
        cmd.args(&self.rsync_options);
        match &self.ssh {
            Some(ssh) => {
                cmd.arg("-e").arg(self.ssh_command(ssh));
            }
            None => {
                cmd.arg(format!("--contimeout={}", self.timeout.unwrap_or(30)));
                // The daemon password it needs: in the environment, not argv (/proc/PID/cmdline is
                // world-readable).
                if let Some(pw) = &self.password {
                    cmd.env("RSYNC_PASSWORD", pw);
                }
                if let Some(prog) = &self.connect_prog {
                    cmd.env("RSYNC_CONNECT_PROG", prog);
                }
                if let Some(proxy) = &self.proxy {
                    cmd.env("RSYNC_PROXY", proxy);
                }
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().map_err(|e| BackendError::Permanent {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("cannot run rsync (is it installed?): {e}"),
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .collect::<Vec<_>>()
            .join("; ");
        let code = out.status.code().unwrap_or(-1);
        let backend = self.describe();
        let name = name.to_string();
        Err(match code {
            23 if stderr.contains("No such file or directory") => {
                BackendError::NotFound { backend, name }
            }
            // Socket/IO, protocol stream, timeouts, daemon connection: worth another try.
            10 | 12 | 30 | 35
                if !stderr.contains("Host key") && !stderr.contains("auth failed") =>
            {
                BackendError::Transient {
                    backend,
                    name,
                    message: format!("rsync exit {code}: {message}"),
                }
            }
            // The receiver of a previous, cut-off upload of the same name may still be renaming its
            // temporary file when the retry's receiver checks the destination (rsync's --mkpath races
            // it: "mkdir \"…name\" failed: File exists (17)"). Another try sees the finished file.
            3 | 11 | 23 if stderr.contains("failed: File exists (17)") => BackendError::Transient {
                backend,
                name,
                message: format!("rsync exit {code}: {message}"),
            },
            _ if stderr.contains("auth failed") || stderr.contains("Permission denied (") => {
                BackendError::AuthRefused {
                    backend,
                    message: format!("rsync exit {code}: {message}"),
                }
            }
            _ => BackendError::Permanent {
                backend,
                name,
                message: format!("rsync exit {code}: {message}"),
            },
        })
    }
}

impl Drop for RsyncBackend {
    fn drop(&mut self) {
        let master = self.master.get_mut().unwrap_or_else(|e| e.into_inner());
        if let (Master::Running(dir), Some(ssh)) = (&*master, &self.ssh) {
            let mut words = ssh.split_whitespace();
            let _ = super::scrub_secret_env(&mut Command::new(words.next().unwrap_or("ssh")))
                .args(words)
                .arg(format!("-oControlPath={}", dir.path().join("cm").display()))
                .args(["-O", "exit"])
                .arg(&self.ssh_dest)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// rsync options that would break the backend: deleting or not writing files, writing into the final
/// name (a reader could see a partial file), or clashing with the `--inplace` of `get`.
const REFUSED_RSYNC_OPTIONS: &[(&str, &str)] = &[
    ("--delete", "it would delete other files of the target"),
    ("--del", "it would delete other files of the target"),
    (
        "--remove-source-files",
        "it would delete the local files it sends",
    ),
    (
        "--dry-run",
        "nothing would be stored; use duplicity-charm's own --dry-run",
    ),
    ("--list-only", "nothing would be stored"),
    ("--inplace", "a reader could see a partly written file"),
    ("--append", "a reader could see a partly written file"),
    (
        "--partial-dir",
        "it clashes with the --inplace of downloads",
    ),
    ("--write-batch", "it changes what is transferred"),
    ("--only-write-batch", "nothing would be stored"),
    ("--read-batch", "it changes what is transferred"),
    ("--files-from", "it changes which files are transferred"),
    ("--backup", "it leaves extra files in the target"),
    ("--mkpath", "it is already given"),
];

/// True for rsync's `-e`/`--rsh` (also `--rsh=CMD`, `-eCMD` and a short cluster ending in `e`, e.g. `-ze`).
fn is_rsh_option(word: &str) -> bool {
    if word == "--rsh" || word.starts_with("--rsh=") {
        return true;
    }
    match word.strip_prefix('-') {
        // In a cluster, a letter that takes a value (-B, -f, -T, -M) swallows the rest.
        Some(short) if !short.starts_with('-') => short
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() && !"BfTM".contains(*c))
            .any(|c| c == 'e'),
        _ => false,
    }
}

/// Refuses `--rsync-options` words that would break the backend (see [`REFUSED_RSYNC_OPTIONS`]),
/// naming the option.
pub fn check_rsync_options(words: &[String]) -> Result<(), UrlError> {
    for w in words {
        let name = w.split_once('=').map_or(w.as_str(), |(n, _)| n);
        let refused = if let Some(long) = name.strip_prefix("--") {
            REFUSED_RSYNC_OPTIONS.iter().find(|(o, _)| {
                let o = &o[2..];
                long == o || ((o == "delete" || o == "append") && long.starts_with(o))
            })
        } else if let Some(short) = name.strip_prefix('-') {
            // Single-letter clusters: -n is --dry-run, -b --backup.
            short
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .find_map(|c| match c {
                    'n' => REFUSED_RSYNC_OPTIONS
                        .iter()
                        .find(|(o, _)| *o == "--dry-run"),
                    'b' => REFUSED_RSYNC_OPTIONS.iter().find(|(o, _)| *o == "--backup"),
                    _ => None,
                })
        } else {
            None
        };
        if let Some((_, why)) = refused {
            return Err(UrlError::Invalid(format!(
                "--rsync-options: {name} cannot be used: {why}; remove it from --rsync-options"
            )));
        }
    }
    Ok(())
}

fn split_userinfo(netloc: &str) -> (Option<String>, Option<String>, &str) {
    match netloc.rsplit_once('@') {
        Some((ui, hp)) => match ui.split_once(':') {
            Some((u, p)) => (Some(decode(u)), Some(decode(p)), hp),
            None => (Some(decode(ui)), None, hp),
        },
        None => (None, None, netloc),
    }
}

/// An rsync filter pattern matching exactly `name` (wildcard characters escaped).
fn exact(name: &str) -> String {
    let mut s = String::from("/");
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// rsync's own `--bwlimit` for a limit in bytes per second: rsync paces its socket writes itself (and
/// hands the option to the remote side, which is the sender of a download), which is as close to the
/// wire as a limit can get; feeding rsync through a pipe is not possible, as it reads files by path.
/// rsync counts whole KiB/s: rounded down, so the limit is never exceeded.
pub fn bwlimit_arg(bytes_per_second: Option<u64>) -> Option<String> {
    bytes_per_second
        .filter(|&b| b > 0)
        .map(|b| format!("--bwlimit={}", (b / 1024).max(1)))
}

impl Backend for RsyncBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        let dst = format!("{}{name}", self.remote);
        let mut args: Vec<&std::ffi::OsStr> = vec!["--mkpath".as_ref()];
        args.extend(self.bwlimit_up.as_deref().map(std::ffi::OsStr::new));
        args.extend([src.as_os_str(), dst.as_ref()]);
        match self.run(&args, name) {
            // rsync's receiver writes a temporary file and renames it: a directory that refuses
            // renames is an append-only target.
            Err(BackendError::Permanent {
                backend,
                name,
                message,
            }) if message.contains("rename") && message.contains("Operation not permitted") => {
                Err(BackendError::Permanent {
                    backend,
                    name,
                    message: format!("{message}: the target refuses renames; if it is append-only, say so with --append-only-target (charm: append_only_target=true), which writes final names directly"),
                })
            }
            r => r.map(|_| ()),
        }
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        let src = format!("{}{name}", self.remote);
        // --inplace: callers may hold `dst` open (a NamedTempFile); rsync must not replace it.
        let mut args: Vec<&std::ffi::OsStr> = vec!["--inplace".as_ref()];
        args.extend(self.bwlimit_down.as_deref().map(std::ffi::OsStr::new));
        args.extend([src.as_ref(), dst.as_os_str()]);
        self.run(&args, name)?;
        Ok(())
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        let out = match self.run(&["--list-only".as_ref(), self.remote.as_ref()], "") {
            Ok(o) => o,
            Err(BackendError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // "-rw-r--r--          7 2024/01/01 00:00:00 name": regular files only.
        let mut names: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (words.len() > 4).then(|| words[4..].join(" "))
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        let present = self.list()?;
        let gone: Vec<&String> = names.iter().filter(|n| present.contains(n)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        // Sync an empty directory over the target, deleting only the named files.
        let tmp = tempfile::tempdir().map_err(|e| BackendError::Transient {
            backend: self.describe(),
            name: String::new(),
            message: format!("cannot create a temporary directory: {e}"),
        })?;
        let filter = tmp.path().join("filter");
        let empty = tmp.path().join("empty");
        let written = std::fs::create_dir(&empty).and_then(|_| {
            let mut f = std::fs::File::create(&filter)?;
            for n in &gone {
                writeln!(f, "+ {}", exact(n))?;
            }
            writeln!(f, "- *")
        });
        written.map_err(|e| BackendError::Transient {
            backend: self.describe(),
            name: String::new(),
            message: format!("cannot write the rsync filter: {e}"),
        })?;
        let filter_arg = format!("--filter=merge {}", filter.display());
        let empty_arg = format!("{}/", empty.display());
        self.run(
            &[
                "-r".as_ref(),
                "--delete".as_ref(),
                filter_arg.as_ref(),
                empty_arg.as_ref(),
                self.remote.as_ref(),
            ],
            gone[0],
        )?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        let dst = format!("{}{name}", self.remote);
        // --inplace: straight into the final name (no temporary file to rename, which an append-only
        // module refuses); --ignore-existing: an existing file is never written into.
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--mkpath".as_ref(),
            "--inplace".as_ref(),
            "--ignore-existing".as_ref(),
        ];
        args.extend(self.bwlimit_up.as_deref().map(std::ffi::OsStr::new));
        args.extend([src.as_os_str(), dst.as_ref()]);
        self.run(&args, name)?;
        Ok(())
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        let src = format!("{}{name}", self.remote);
        let out = match self.run(
            &["--list-only".as_ref(), "--no-h".as_ref(), src.as_ref()],
            name,
        ) {
            Ok(o) => o,
            Err(BackendError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // "-rw-r--r--          7 2024/01/01 00:00:00 name"
        for l in out.lines().filter(|l| l.starts_with('-')) {
            let words: Vec<&str> = l.split_whitespace().collect();
            if words.len() > 4 && words[4..].join(" ") == name {
                let digits: String = words[1].chars().filter(char::is_ascii_digit).collect();
                return digits
                    .parse()
                    .map(Some)
                    .map_err(|_| BackendError::Permanent {
                        backend: self.describe(),
                        name: name.to_string(),
                        message: format!("cannot read the size in rsync's listing {l:?}"),
                    });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwlimit_is_whole_kib_rounded_down() {
        assert_eq!(bwlimit_arg(None), None);
        assert_eq!(bwlimit_arg(Some(0)), None);
        assert_eq!(bwlimit_arg(Some(500 * 1024)).unwrap(), "--bwlimit=500");
        assert_eq!(bwlimit_arg(Some(1536)).unwrap(), "--bwlimit=1");
        assert_eq!(bwlimit_arg(Some(100)).unwrap(), "--bwlimit=1");
    }

    #[test]
    fn url_forms() {
        let mut o = OpenOptions::new();
        o.set_ssh_options("-oIdentityFile=/k -oUserKnownHostsFile=/kh");
        let b = RsyncBackend::from_url("rsync://u@127.0.0.1:2222/rel/d", &o).unwrap();
        assert_eq!(b.remote, "u@127.0.0.1:rel/d/");
        assert_eq!(
            b.ssh.as_deref(),
            Some("ssh -oBatchMode=yes -oStrictHostKeyChecking=yes -p 2222 -oIdentityFile=/k -oUserKnownHostsFile=/kh")
        );
        let b = RsyncBackend::from_url("rsync://u@127.0.0.1//abs/d", &o).unwrap();
        assert_eq!(b.remote, "u@127.0.0.1:/abs/d/");
        o.ftp_password = Some("ftp".into());
        let b = RsyncBackend::from_url("rsync://rs:pw@127.0.0.1:873::/backup/d", &o).unwrap();
        assert_eq!(b.remote, "rsync://rs@127.0.0.1:873/backup/d/");
        assert_eq!(b.password.as_deref(), Some("pw"));
        assert_eq!(b.describe(), "rsync://rs@127.0.0.1:873::/backup/d");
        let b = RsyncBackend::from_url("rsync://127.0.0.1::backup", &o).unwrap();
        assert_eq!(b.remote, "rsync://127.0.0.1/backup/");
        assert_eq!(b.password.as_deref(), Some("ftp"));
        assert!(RsyncBackend::from_url("rsync://127.0.0.1::", &o).is_err());
    }

    #[test]
    fn rsync_options_are_handed_over_or_refused_by_name() {
        let mut o = OpenOptions::new();
        o.add_rsync_options("--password-file=/p --partial").unwrap();
        o.add_rsync_options("--compress --bwlimit=100 -e 'ssh -p 2'")
            .unwrap();
        assert_eq!(
            o.rsync_options,
            [
                "--password-file=/p",
                "--partial",
                "--compress",
                "--bwlimit=100",
                "-e",
                "ssh -p 2"
            ]
        );
        o.rsync_connect_prog = Some("nc -x 127.0.0.1:9050 %H 873".into());
        let b = RsyncBackend::from_url("rsync://u@h.onion::backups/", &o).unwrap();
        assert_eq!(b.remote, "rsync://u@h.onion/backups/");
        assert_eq!(b.rsync_options.len(), 6);
        assert_eq!(
            b.connect_prog.as_deref(),
            Some("nc -x 127.0.0.1:9050 %H 873")
        );
        let b2 = RsyncBackend::from_url("rsync://u@h.onion::/backups/", &o).unwrap();
        assert_eq!(b2.remote, b.remote);
        // Over SSH a user -e would replace ours: refused, naming it.
        let e = RsyncBackend::from_url("rsync://u@h/p", &o)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("-e cannot be used") && e.contains("--ssh-options"),
            "{e}"
        );
        for w in ["--rsh=ssh", "--rsh", "-ze", "-essh", "-avze"] {
            assert!(is_rsh_option(w), "{w}");
        }
        for w in ["-z", "--compress", "-fe", "--password-file=/e", "ssh -e"] {
            assert!(!is_rsh_option(w), "{w}");
        }
        let mut plain = OpenOptions::new();
        plain.add_rsync_options("--partial -z").unwrap();
        RsyncBackend::from_url("rsync://u@h/p", &plain).unwrap();
        for bad in [
            "--delete",
            "--delete-after",
            "--remove-source-files",
            "-avn",
            "--dry-run",
            "--inplace",
            "--partial-dir=.p",
            "--append-verify",
            "-b",
        ] {
            let e = OpenOptions::new()
                .add_rsync_options(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cannot be used"), "{bad}: {e}");
        }
    }

    #[test]
    fn filter_patterns_are_exact() {
        assert_eq!(exact("a*b?[c]"), "/a\\*b\\?\\[c]");
    }
}
