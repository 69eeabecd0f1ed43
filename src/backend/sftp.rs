//! `sftp://` and `scp://` with libssh2 (the `ssh2` crate): duplicity's URL forms
//! (`user[:password]@host[:port]/relative`, `//absolute`), key files (`-oIdentityFile=`, else the usual
//! `~/.ssh` ones) and passwords (URL or `FTP_PASSWORD`), and strict host-key checking against
//! known_hosts (`-oUserKnownHostsFile=`, else `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`):
//! an unknown or changed host key is refused. `scp://` uses the same SFTP channel, since scp alone
//! cannot list or delete (duplicity's scp backend also lists over sftp).

use std::fs;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ssh2::{
    CheckResult, ErrorCode, KnownHostFileKind, MethodType, OpenFlags, OpenType, RenameFlags,
    Session, Sftp,
};

use super::url::NetUrl;
use super::{Backend, BackendError, BackendResult, OpenOptions, UrlError};

/// SFTP status codes (draft-ietf-secsh-filexfer-02) the backend tells apart.
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;

const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// The ciphers offered, most preferred first (see `connect`).
const CIPHERS: &str =
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,\
aes128-ctr,aes192-ctr,aes256-ctr,aes256-cbc,aes192-cbc,aes128-cbc";

/// Buffer handed to each SFTP read/write call. libssh2 pipelines within one call: a write of N bytes
/// sends N / 30,000 WRITE requests before it waits for their acks, and a read keeps up to 4 × the
/// buffer (capped at 8 MiB) of READ requests outstanding. With 8 KiB (`io::copy`) only one request
/// was in flight per round trip. 1 MiB gives ~35 requests in flight on writes and 4 MiB of read-ahead,
/// which saturates a loopback or LAN link, while keeping this backend's memory at ~1 MiB of buffer
/// plus ≤ 4 MiB of libssh2 read-ahead (the ≤ 40 MiB peak RSS budget covers the whole process).
const TRANSFER_BUFFER: usize = 1 << 20;

pub struct SftpBackend {
    url: NetUrl,
    user: String,
    password: Option<String>,
    identity_files: Vec<PathBuf>,
    known_hosts: Vec<PathBuf>,
    /// The remote directory as SFTP paths take it ("" = the login dir).
    dir: String,
    conn: Mutex<Option<Conn>>,
    /// `--timeout`, for connecting and for each SSH operation.
    timeout: Option<Duration>,
    /// `--limit-upload`/`--limit-download`.
    limits: super::throttle::Limits,
}

struct Conn {
    // Kept alive for `sftp`; dropped together.
    _sess: Session,
    sftp: Sftp,
    dir_made: bool,
}

impl SftpBackend {
    pub fn from_url(url: &str, opts: &OpenOptions) -> Result<SftpBackend, UrlError> {
        let u = NetUrl::parse(url)?;
        let home = opts.home.clone().unwrap_or_else(|| PathBuf::from("/root"));
        let user = match &u.user {
            Some(user) => user.clone(),
            None => std::env::var("USER")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "root".into()),
        };
        let mut identity_files = Vec::new();
        let mut known_hosts = Vec::new();
        for w in &opts.ssh_options {
            // duplicity accepts `-oKey=Value`; ssh also takes `-o Key=Value` (then the value is the next word).
            let Some(kv) = w.strip_prefix("-o") else {
                continue;
            };
            let Some((k, v)) = kv.split_once(['=', ' ']) else {
                continue;
            };
            let v = expand_tilde(v.trim(), &home);
            match k.trim().to_ascii_lowercase().as_str() {
                "identityfile" => identity_files.push(v),
                "userknownhostsfile" => known_hosts.extend(
                    v.to_string_lossy()
                        .split_whitespace()
                        .map(|p| expand_tilde(p, &home)),
                ),
                _ => {}
            }
        }
        if identity_files.is_empty() {
            identity_files = ["id_rsa", "id_ecdsa", "id_ed25519", "duplicity_id_rsa"]
                .iter()
                .map(|f| home.join(".ssh").join(f))
                .filter(|p| p.exists())
                .collect();
        }
        if known_hosts.is_empty() {
            known_hosts = vec![
                home.join(".ssh/known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
            ];
        }
        Ok(SftpBackend {
            password: u.password.clone().or_else(|| opts.ftp_password.clone()),
            user,
            identity_files,
            known_hosts,
            dir: u.path.trim_end_matches('/').to_string(),
            url: u,
            conn: Mutex::new(None),
            timeout: opts.timeout,
            limits: super::throttle::Limits::from_options(opts),
        })
    }

    fn port(&self) -> u16 {
        self.url.port.unwrap_or(22)
    }

    fn remote(&self, name: &str) -> PathBuf {
        if self.dir.is_empty() {
            PathBuf::from(name)
        } else {
            Path::new(&self.dir).join(name)
        }
    }

    fn fail(&self, name: &str, message: String) -> BackendError {
        BackendError::Permanent {
            backend: self.describe(),
            name: name.to_string(),
            message,
        }
    }

    /// Maps an ssh2 error: SFTP "no such file" is NotFound, other SFTP statuses Permanent, and
    /// session/transport errors Transient (the connection is dropped and made again on retry).
    fn err(&self, name: &str, e: ssh2::Error) -> BackendError {
        let backend = self.describe();
        let name = name.to_string();
        match e.code() {
            ErrorCode::SFTP(FX_NO_SUCH_FILE) => BackendError::NotFound { backend, name },
            ErrorCode::SFTP(FX_PERMISSION_DENIED) => BackendError::Permanent {
                backend,
                name,
                message: format!("permission denied on the server ({})", e.message()),
            },
            ErrorCode::SFTP(c) => BackendError::Permanent {
                backend,
                name,
                message: format!("sftp error {c}: {}", e.message()),
            },
            ErrorCode::Session(_) => BackendError::Transient {
                backend,
                name,
                message: e.message().to_string(),
            },
        }
    }

    fn io_err(&self, name: &str, what: &str, e: io::Error) -> BackendError {
        BackendError::Transient {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("{what}: {e}"),
        }
    }

    fn connect(&self) -> BackendResult<Conn> {
        let host = &self.url.host;
        let port = self.port();
        let transient = |message: String| BackendError::Transient {
            backend: self.describe(),
            name: String::new(),
            message,
        };
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| transient(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| transient(format!("{host} has no address")))?;
        let tcp =
            TcpStream::connect_timeout(&addr, self.timeout.unwrap_or(Duration::from_secs(30)))
                .map_err(|e| transient(format!("cannot connect to {host}:{port}: {e}")))?;
        let mut sess = Session::new().map_err(|e| self.err("", e))?;
        // Small SFTP requests and acks must not wait for Nagle; volumes are already compressed and
        // encrypted, so SSH compression (libssh2's default is off) would only cost CPU.
        let _ = tcp.set_nodelay(true);
        sess.set_tcp_stream(tcp);
        sess.set_compress(false);
        // libssh2 offers its own portable chacha20-poly1305 first; AES-GCM runs in OpenSSL on the CPU's
        // AES instructions, several times cheaper per byte on volume-sized transfers. libssh2's other
        // ciphers follow for servers without GCM.
        for dir in [MethodType::CryptCs, MethodType::CryptSc] {
            sess.method_pref(dir, CIPHERS)
                .map_err(|e| self.err("", e))?;
        }
        sess.set_timeout(self.timeout.unwrap_or(IO_TIMEOUT).as_millis() as u32);
        sess.handshake()
            .map_err(|e| transient(format!("SSH handshake with {host}:{port} failed: {e}")))?;
        self.check_host_key(&sess)?;
        self.authenticate(&sess)?;
        let sftp = sess.sftp().map_err(|e| self.err("", e))?;
        Ok(Conn {
            _sess: sess,
            sftp,
            dir_made: false,
        })
    }

    /// Strict checking, as `StrictHostKeyChecking=yes`: the server's key must be listed for this host
    /// (plain or hashed entry; `[host]:port` when the port is not 22) in one of the known_hosts files.
    fn check_host_key(&self, sess: &Session) -> BackendResult<()> {
        let host = &self.url.host;
        let port = self.port();
        let shown = if port == 22 {
            host.clone()
        } else {
            format!("[{host}]:{port}")
        };
        let (key, _) = sess
            .host_key()
            .ok_or_else(|| self.fail("", format!("{shown} sent no host key")))?;
        let files: Vec<String> = self
            .known_hosts
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut changed_in = None;
        for path in &self.known_hosts {
            if !path.exists() {
                continue;
            }
            let mut kh = sess.known_hosts().map_err(|e| self.err("", e))?;
            kh.read_file(path, KnownHostFileKind::OpenSSH)
                .map_err(|e| {
                    self.fail(
                        "",
                        format!("cannot read known_hosts file {}: {e}", path.display()),
                    )
                })?;
            match kh.check_port(host, port, key) {
                CheckResult::Match => return Ok(()),
                CheckResult::Mismatch => changed_in = Some(path.display().to_string()),
                CheckResult::NotFound | CheckResult::Failure => {}
            }
        }
        Err(match changed_in {
            Some(file) => self.fail(
                "",
                format!(
                    "the host key of {shown} does NOT match the one in {file}: refusing to connect \
                     (the key changed, or someone is intercepting the connection); if the change is \
                     expected, replace that entry after checking the new key's fingerprint"
                ),
            ),
            None => self.fail(
                "",
                format!(
                    "the host key of {shown} is unknown: it is not in {}; add it (e.g. `ssh-keyscan -p {port} \
                     {host}` after checking the fingerprint) or name a file with \
                     --ssh-options=-oUserKnownHostsFile=FILE",
                    files.join(" or ")
                ),
            ),
        })
    }

    fn authenticate(&self, sess: &Session) -> BackendResult<()> {
        let mut tried = Vec::new();
        for key in &self.identity_files {
            if !key.exists() {
                tried.push(format!("key {} (missing)", key.display()));
                continue;
            }
            match sess.userauth_pubkey_file(&self.user, None, key, None) {
                Ok(()) if sess.authenticated() => return Ok(()),
                _ => tried.push(format!("key {}", key.display())),
            }
        }
        if let Some(pw) = &self.password {
            match sess.userauth_password(&self.user, pw) {
                Ok(()) if sess.authenticated() => return Ok(()),
                _ => tried.push("password".into()),
            }
        }
        let tried = if tried.is_empty() {
            "no key file and no password (FTP_PASSWORD) to try".to_string()
        } else {
            format!("tried {}", tried.join(", "))
        };
        Err(BackendError::AuthRefused {
            backend: self.describe(),
            message: format!(
                "authentication as {} on {} failed: {tried}",
                self.user, self.url.host
            ),
        })
    }

    /// Runs `f` on the connection, making one if needed. One operation at a time: libssh2 sessions are
    /// not for concurrent use. After a Transient error the connection is dropped (made again on retry).
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> BackendResult<T>) -> BackendResult<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = match guard.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = f(&mut conn);
        if !matches!(r, Err(BackendError::Transient { .. })) {
            *guard = Some(conn);
        }
        r
    }

    fn ensure_dir(&self, c: &mut Conn) -> BackendResult<()> {
        if c.dir_made || self.dir.is_empty() {
            return Ok(());
        }
        let mut p = PathBuf::new();
        for comp in Path::new(&self.dir).components() {
            p.push(comp);
            if comp == std::path::Component::RootDir {
                continue;
            }
            if c.sftp.stat(&p).is_err() {
                // Another writer may create it at the same time: only the final stat decides.
                let _ = c.sftp.mkdir(&p, 0o755);
            }
        }
        match c.sftp.stat(Path::new(&self.dir)) {
            Ok(st) if st.is_dir() => {
                c.dir_made = true;
                Ok(())
            }
            Ok(_) => Err(self.fail("", format!("{} is not a directory", self.dir))),
            Err(e) => Err(self.fail(
                "",
                format!("cannot create the remote directory {}: {e}", self.dir),
            )),
        }
    }
}

fn expand_tilde(p: &str, home: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(p),
    }
}

impl Backend for SftpBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        let mut local = fs::File::open(src).map_err(|e| {
            self.fail(
                name,
                format!("cannot read the local file {}: {e}", src.display()),
            )
        })?;
        self.with(|c| {
            self.ensure_dir(c)?;
            // Upload under a temporary name, then rename, so a reader never sees a partial file.
            let part = self.remote(&format!(".{name}.part"));
            let dst = self.remote(name);
            let mut remote = c.sftp.create(&part).map_err(|e| self.err(name, e))?;
            // The limit paces the reads of the local file, so libssh2 never has more than one
            // chunk of it to send ahead.
            self.limits
                .copy(&mut self.limits.upload(&mut local), &mut remote, TRANSFER_BUFFER)
                .map_err(|e| self.io_err(name, "upload", e))?;
            remote.flush().map_err(|e| self.io_err(name, "upload", e))?;
            drop(remote);
            // SFTP v3 rename fails when the target exists (OpenSSH): remove it first in that case.
            if c.sftp
                .rename(
                    &part,
                    &dst,
                    Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC),
                )
                .is_err()
            {
                let _ = c.sftp.unlink(&dst);
                c.sftp.rename(&part, &dst, None).map_err(|e| {
                    // A server that lets us create files but not rename them is an append-only
                    // target: say how to use it (the `.part` file stays, it cannot be removed).
                    if e.code() == ErrorCode::SFTP(FX_PERMISSION_DENIED) {
                        self.fail(name, format!("the server refused to rename the uploaded file into place ({}): if this target is append-only (no rename, no delete), say so with --append-only-target (charm: append_only_target=true), which writes final names directly", e.message()))
                    } else {
                        self.err(name, e)
                    }
                })?;
            }
            Ok(())
        })
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.with(|c| {
            let mut remote = c
                .sftp
                .open(self.remote(name))
                .map_err(|e| self.err(name, e))?;
            let mut out = fs::File::create(dst)
                .map_err(|e| self.fail(name, format!("cannot write {}: {e}", dst.display())))?;
            // Paced reads also keep libssh2's read-ahead to a few chunks.
            self.limits
                .copy(
                    &mut self.limits.download(&mut remote),
                    &mut out,
                    TRANSFER_BUFFER,
                )
                .map_err(|e| self.io_err(name, "download", e))?;
            Ok(())
        })
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.with(|c| {
            let dir = if self.dir.is_empty() { "." } else { &self.dir };
            let entries = match c.sftp.readdir(Path::new(dir)) {
                Ok(e) => e,
                Err(e) if e.code() == ErrorCode::SFTP(FX_NO_SUCH_FILE) => return Ok(Vec::new()),
                Err(e) => return Err(self.err("", e)),
            };
            let mut names: Vec<String> = entries
                .into_iter()
                .filter(|(_, st)| st.is_file())
                .filter_map(|(p, _)| p.file_name()?.to_str().map(str::to_string))
                .filter(|n| !n.ends_with(".part") || !n.starts_with('.'))
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.with(|c| {
            for name in names {
                match c.sftp.unlink(&self.remote(name)) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::SFTP(FX_NO_SUCH_FILE) => {}
                    Err(e) => return Err(self.err(name, e)),
                }
            }
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.url.display()
    }

    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        let mut local = fs::File::open(src).map_err(|e| {
            self.fail(
                name,
                format!("cannot read the local file {}: {e}", src.display()),
            )
        })?;
        self.with(|c| {
            self.ensure_dir(c)?;
            // O_EXCL: an existing (maybe partial) file is never opened for writing.
            let mut remote = c
                .sftp
                .open_mode(
                    self.remote(name),
                    OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
                    0o644,
                    OpenType::File,
                )
                .map_err(|e| self.err(name, e))?;
            self.limits
                .copy(&mut local, &mut remote, TRANSFER_BUFFER)
                .map_err(|e| self.io_err(name, "upload", e))?;
            remote.flush().map_err(|e| self.io_err(name, "upload", e))?;
            // The server's answer to CLOSE is the last word on the write.
            remote.close().map_err(|e| self.err(name, e))?;
            Ok(())
        })
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.with(|c| match c.sftp.stat(&self.remote(name)) {
            Ok(st) => Ok(Some(st.size.unwrap_or(0))),
            Err(e) if e.code() == ErrorCode::SFTP(FX_NO_SUCH_FILE) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_defaults() {
        let mut o = OpenOptions::new();
        o.home = Some("/h".into());
        o.set_ssh_options("-oIdentityFile=~/k -oUserKnownHostsFile=/kh -oBatchMode=yes");
        o.ftp_password = Some("pw".into());
        let b = SftpBackend::from_url("sftp://u@127.0.0.1:2222//abs/d/", &o).unwrap();
        assert_eq!(b.identity_files, [PathBuf::from("/h/k")]);
        assert_eq!(b.known_hosts, [PathBuf::from("/kh")]);
        assert_eq!(b.dir, "/abs/d");
        assert_eq!(b.password.as_deref(), Some("pw"));
        let b = SftpBackend::from_url("scp://u:urlpw@127.0.0.1/rel", &o).unwrap();
        assert_eq!(b.password.as_deref(), Some("urlpw"));
        assert_eq!(b.remote("f"), PathBuf::from("rel/f"));
        assert_eq!(b.describe(), "scp://u@127.0.0.1/rel");
        let o = OpenOptions {
            home: Some("/h".into()),
            ..OpenOptions::new()
        };
        let b = SftpBackend::from_url("sftp://u@127.0.0.1/rel", &o).unwrap();
        assert_eq!(
            b.known_hosts,
            [
                PathBuf::from("/h/.ssh/known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts")
            ]
        );
    }
}
