//! `ftp://[user[:password]@]host[:port]/path` with the `suppaftp` crate (sync API, passive mode).
//! URL facts as duplicity's lftp backend: one leading `/` is stripped, so `ftp://h/dir` is relative to the
//! login directory and `ftp://h//abs` absolute; an empty path is the server's `/`. The password comes
//! from the URL, else `FTP_PASSWORD`; no user means an anonymous login. Unlike duplicity 0.8 (whose
//! `lftp mkdir -p dir/` sends a second MKD that fails when it has just made the directory), a missing
//! directory tree is created.

use std::fs;
use std::io::{self, Seek};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream, Mode};

use super::throttle::COPY_BUFFER;
use super::url::NetUrl;
use super::{Backend, BackendError, BackendResult, OpenOptions, UrlError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// A connection idle longer than this is checked with NOOP before reuse (servers drop idle clients).
const IDLE_CHECK: Duration = Duration::from_secs(15);

/// Reply codes the backend tells apart.
const NOT_LOGGED_IN: u32 = 530;
const FILE_UNAVAILABLE: u32 = 550;
const FILE_BUSY: u32 = 450;

pub struct FtpBackend {
    url: NetUrl,
    user: String,
    password: String,
    /// Where the password came from, for the error message of a refused login.
    password_source: PwFrom,
    /// The remote directory as CWD takes it (relative to the login dir, or absolute).
    dir: String,
    conn: Mutex<Option<Conn>>,
    /// `--timeout`, for the control connection (data connections keep the defaults).
    timeout: Option<Duration>,
    /// `--limit-upload`/`--limit-download`, on the data connections.
    limits: super::throttle::Limits,
}

struct Conn {
    ftp: FtpStream,
    /// CWD into `dir` succeeded (all names are then plain file names).
    in_dir: bool,
    /// Kept from an earlier operation (the server may have closed it since).
    reused: bool,
    last_used: Instant,
}

/// The temporary name an upload is written under before it is renamed into place.
fn part_name(name: &str) -> String {
    format!(".{name}.part")
}

fn is_part_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".part")
}

/// FTP commands are lines: a name with CR or LF would end one command and start another.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['\r', '\n', '/']) {
        return Err(format!("{name:?} is not a plain file name"));
    }
    Ok(())
}

impl FtpBackend {
    pub fn from_url(url: &str, opts: &OpenOptions) -> Result<FtpBackend, UrlError> {
        let u = NetUrl::parse(url)?;
        // Undecoded, as the sftp backend and duplicity take it.
        let dir = match u.path.trim_end_matches('/') {
            "" => "/".to_string(),
            d => d.to_string(),
        };
        let (user, password, password_source) = match (&u.user, &u.password, &opts.ftp_password) {
            (None, _, _) => ("anonymous".into(), "anonymous@".into(), PwFrom::Anonymous),
            (Some(user), Some(pw), _) => (user.clone(), pw.clone(), PwFrom::Url),
            (Some(user), None, Some(pw)) => (user.clone(), pw.clone(), PwFrom::Env),
            (Some(user), None, None) => (user.clone(), String::new(), PwFrom::Nowhere),
        };
        Ok(FtpBackend {
            user,
            password,
            password_source,
            dir,
            url: u,
            conn: Mutex::new(None),
            timeout: opts.timeout,
            limits: super::throttle::Limits::from_options(opts),
        })
    }

    fn port(&self) -> u16 {
        self.url.port.unwrap_or(21)
    }

    fn err(&self, name: &str, kind: Kind, message: String) -> BackendError {
        // A server may echo what it was sent; the password must never travel on in a message.
        // (The anonymous password is public, and would also mangle "anonymous@host".)
        let message = if self.password.len() >= 3 && self.password_source != PwFrom::Anonymous {
            message.replace(&self.password, "<hidden>")
        } else {
            message
        };
        let backend = self.describe();
        let name = name.to_string();
        match kind {
            Kind::NotFound => BackendError::NotFound { backend, name },
            Kind::AuthRefused => BackendError::AuthRefused { backend, message },
            Kind::Permanent => BackendError::Permanent {
                backend,
                name,
                message,
            },
            Kind::Transient => BackendError::Transient {
                backend,
                name,
                message,
            },
        }
    }

    /// Maps a suppaftp error: 4xx replies and broken connections are Transient, 5xx Permanent.
    fn ftp_err(&self, name: &str, what: &str, e: FtpError) -> BackendError {
        match &e {
            FtpError::UnexpectedResponse(r) => {
                let code = r.status.code();
                let text = reply_text(&r.body);
                let kind = if (400..500).contains(&code) {
                    Kind::Transient
                } else {
                    Kind::Permanent
                };
                self.err(name, kind, format!("{what}: the server replied {text}"))
            }
            FtpError::ConnectionError(io) => {
                self.err(name, Kind::Transient, format!("{what}: connection: {io}"))
            }
            FtpError::BadResponse => self.err(
                name,
                Kind::Transient,
                format!("{what}: the connection was closed, or the reply was not FTP"),
            ),
            other => self.err(name, Kind::Transient, format!("{what}: {other}")),
        }
    }

    fn connect(&self) -> BackendResult<Conn> {
        let host = &self.url.host;
        let port = self.port();
        let transient = |m: String| self.err("", Kind::Transient, m);
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| transient(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| transient(format!("{host} has no address")))?;
        let tcp = TcpStream::connect_timeout(&addr, self.timeout.unwrap_or(CONNECT_TIMEOUT))
            .map_err(|e| {
                transient(format!(
                    "cannot connect to the FTP server {host}:{port}: {e}"
                ))
            })?;
        let _ = tcp.set_read_timeout(Some(self.timeout.unwrap_or(IO_TIMEOUT)));
        let _ = tcp.set_write_timeout(Some(self.timeout.unwrap_or(IO_TIMEOUT)));
        let mut ftp = FtpStream::connect_with_stream(tcp)
            .map_err(|e| self.ftp_err("", &format!("greeting from {host}:{port}"), e))?
            .passive_stream_builder(data_stream);
        // Passive mode; EPSV for IPv6, where PASV cannot carry the address.
        ftp.set_mode(match addr.ip() {
            IpAddr::V4(_) => Mode::Passive,
            IpAddr::V6(_) => Mode::ExtendedPassive,
        });
        // Data connections go to the control connection's address, whatever PASV says (as lftp's
        // fix-pasv-address): servers behind NAT announce private addresses, and a hostile one could
        // point us elsewhere.
        ftp.set_passive_nat_workaround(true);
        if let Err(e) = ftp.login(self.user.as_str(), self.password.as_str()) {
            return Err(self.login_err(e));
        }
        ftp.transfer_type(FileType::Binary)
            .map_err(|e| self.ftp_err("", "TYPE I", e))?;
        Ok(Conn {
            ftp,
            in_dir: false,
            reused: false,
            last_used: Instant::now(),
        })
    }

    fn login_err(&self, e: FtpError) -> BackendError {
        let who = format!("{}@{}", self.user, self.url.host);
        match &e {
            FtpError::UnexpectedResponse(r) if r.status.code() == NOT_LOGGED_IN => {
                let hint = match self.password_source {
                    PwFrom::Anonymous => {
                        "the server does not accept anonymous logins; put the user in the URL \
                         (ftp://user@host/path) and its password in FTP_PASSWORD"
                    }
                    PwFrom::Nowhere => {
                        "no password was given: set FTP_PASSWORD (the charm's remote_password)"
                    }
                    PwFrom::Url => "check the user name and the password given in the URL",
                    PwFrom::Env => {
                        "check the user name and the password in FTP_PASSWORD (set by the charm \
                         from its remote_password setting)"
                    }
                };
                self.err(
                    "",
                    Kind::AuthRefused,
                    format!(
                        "FTP login as {who} refused ({}): {hint}",
                        reply_text(&r.body)
                    ),
                )
            }
            _ => self.ftp_err("", &format!("FTP login as {who}"), e),
        }
    }

    /// Runs `f` on the connection, making one if needed (one operation at a time on the control
    /// connection). A kept connection the server has closed since (restart, NAT or idle timeout) shows
    /// as a Transient failure: then `f` runs once more on a new connection at once, which is safe as
    /// every operation can be repeated. After a Transient error the connection is dropped.
    fn with<T>(&self, mut f: impl FnMut(&mut Conn) -> BackendResult<T>) -> BackendResult<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let kept = guard.take().and_then(|mut c| {
            (c.last_used.elapsed() < IDLE_CHECK || c.ftp.noop().is_ok()).then_some(c)
        });
        let (mut conn, mut r) = match kept {
            Some(mut c) => {
                let r = f(&mut c);
                (c, r)
            }
            None => {
                let mut c = self.connect()?;
                let r = f(&mut c);
                (c, r)
            }
        };
        if matches!(r, Err(BackendError::Transient { .. })) && conn.reused {
            conn = self.connect()?;
            r = f(&mut conn);
        }
        if !matches!(r, Err(BackendError::Transient { .. })) {
            conn.last_used = Instant::now();
            conn.reused = true;
            *guard = Some(conn);
        }
        r
    }

    /// CWD into the target directory; with `create`, MKD each missing level first. Returns false if
    /// it does not exist (and was not to be created).
    fn enter(&self, c: &mut Conn, create: bool) -> BackendResult<bool> {
        if c.in_dir {
            return Ok(true);
        }
        match c.ftp.cwd(&self.dir) {
            Ok(()) => {
                c.in_dir = true;
                return Ok(true);
            }
            Err(FtpError::UnexpectedResponse(r)) if r.status.code() == FILE_UNAVAILABLE => {
                if !create {
                    return Ok(false);
                }
            }
            Err(e) => return Err(self.ftp_err("", &format!("CWD {}", self.dir), e)),
        }
        // MKD a, a/b, a/b/c (or /a, /a/b for an absolute path); a level that exists answers 550,
        // which is fine: only the final CWD decides.
        let absolute = self.dir.starts_with('/');
        let mut path = String::new();
        for part in self.dir.split('/').filter(|s| !s.is_empty()) {
            if absolute || !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            match c.ftp.mkdir(&path) {
                Ok(()) => {}
                Err(FtpError::UnexpectedResponse(_)) => {}
                Err(e) => return Err(self.ftp_err("", &format!("MKD {path}"), e)),
            }
        }
        c.ftp.cwd(&self.dir).map_err(|e| {
            self.ftp_err("", &format!("cannot create the directory {}", self.dir), e)
        })?;
        c.in_dir = true;
        Ok(true)
    }

    /// The plain names in the current directory (NLST), without our temporary names.
    fn names(&self, c: &mut Conn) -> BackendResult<Vec<String>> {
        let lines = match c.ftp.nlst(None) {
            Ok(l) => l,
            // Some servers answer NLST in an empty directory with 450/550 "no files".
            Err(FtpError::UnexpectedResponse(r))
                if matches!(r.status.code(), FILE_UNAVAILABLE | FILE_BUSY) =>
            {
                Vec::new()
            }
            Err(e) => return Err(self.ftp_err("", "NLST", e)),
        };
        let mut names: Vec<String> = lines
            .iter()
            .map(|l| l.trim_end_matches('\r'))
            // Some servers answer with paths; the name is the last part.
            .map(|l| l.rsplit('/').next().unwrap_or(l).to_string())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .filter(|n| !is_part_name(n))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PwFrom {
    Anonymous,
    Url,
    /// `FTP_PASSWORD` (the charm sets it from `remote_password`).
    Env,
    Nowhere,
}

#[derive(Clone, Copy)]
enum Kind {
    NotFound,
    Permanent,
    Transient,
    AuthRefused,
}

/// A reply's text for a message (its code and first line, control characters removed).
fn reply_text(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let line = s.lines().next().unwrap_or("").trim();
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Opens a passive data connection with the same timeouts as the control connection, so a stalled
/// server cannot hang a transfer for ever.
fn data_stream(addr: SocketAddr) -> suppaftp::FtpResult<TcpStream> {
    let s =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(FtpError::ConnectionError)?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(FtpError::ConnectionError)?;
    s.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(FtpError::ConnectionError)?;
    Ok(s)
}

impl Backend for FtpBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        check_name(name).map_err(|m| self.err(name, Kind::Permanent, m))?;
        let mut local = fs::File::open(src).map_err(|e| {
            self.err(
                name,
                Kind::Permanent,
                format!("cannot read the local file {}: {e}", src.display()),
            )
        })?;
        self.with(|c| {
            self.enter(c, true)?;
            // From the start: this may be a second try on a new connection.
            local
                .seek(io::SeekFrom::Start(0))
                .map_err(|e| self.err(name, Kind::Permanent, format!("local file: {e}")))?;
            // Upload under a temporary name, then rename, so a reader never sees a partial file.
            let part = part_name(name);
            let mut data = c
                .ftp
                .put_with_stream(&part)
                .map_err(|e| self.ftp_err(name, "STOR", e))?;
            if let Err(e) = self
                .limits
                .copy(&mut self.limits.upload(&mut local), &mut data, COPY_BUFFER) {
                drop(data);
                return Err(self.err(name, Kind::Transient, format!("upload: {e}")));
            }
            c.ftp
                .finalize_put_stream(data)
                .map_err(|e| self.ftp_err(name, "STOR", e))?;
            if c.ftp.rename(part.as_str(), name).is_err() {
                // Some servers refuse to rename onto an existing file: remove it and try once more.
                let _ = c.ftp.rm(name);
                c.ftp.rename(part.as_str(), name).map_err(|e| {
                    let e = self.ftp_err(name, "RNFR/RNTO", e);
                    match e {
                        BackendError::Permanent { backend, name, message } => BackendError::Permanent {
                            backend,
                            name,
                            message: format!("{message}: if this account may not rename or delete (an append-only target), say so with --append-only-target (charm: append_only_target=true), which writes final names directly"),
                        },
                        e => e,
                    }
                })?;
            }
            Ok(())
        })
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        check_name(name).map_err(|m| self.err(name, Kind::Permanent, m))?;
        self.with(|c| {
            if !self.enter(c, false)? {
                return Err(self.err(name, Kind::NotFound, String::new()));
            }
            let mut data = match c.ftp.retr_as_stream(name) {
                Ok(d) => d,
                Err(FtpError::UnexpectedResponse(r)) if r.status.code() == FILE_UNAVAILABLE => {
                    return Err(self.err(name, Kind::NotFound, String::new()))
                }
                Err(e) => return Err(self.ftp_err(name, "RETR", e)),
            };
            let mut out = fs::File::create(dst).map_err(|e| {
                self.err(
                    name,
                    Kind::Permanent,
                    format!("cannot write {}: {e}", dst.display()),
                )
            })?;
            if let Err(e) =
                self.limits
                    .copy(&mut self.limits.download(&mut data), &mut out, COPY_BUFFER)
            {
                return Err(self.err(name, Kind::Transient, format!("download: {e}")));
            }
            c.ftp
                .finalize_retr_stream(data)
                .map_err(|e| self.ftp_err(name, "RETR", e))
        })
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.with(|c| {
            if !self.enter(c, false)? {
                return Ok(Vec::new());
            }
            self.names(c)
        })
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        for name in names {
            check_name(name).map_err(|m| self.err(name, Kind::Permanent, m))?;
        }
        self.with(|c| {
            if !self.enter(c, false)? {
                return Ok(());
            }
            let mut refused = Vec::new();
            for name in names {
                match c.ftp.rm(name) {
                    Ok(()) => {}
                    // 550 is both "no such file" and "not allowed": checked below.
                    Err(FtpError::UnexpectedResponse(r)) if r.status.code() == FILE_UNAVAILABLE => {
                        refused.push((name, reply_text(&r.body)))
                    }
                    Err(e) => return Err(self.ftp_err(name, "DELE", e)),
                }
            }
            if !refused.is_empty() {
                let present = self.names(c)?;
                if let Some((name, text)) = refused.iter().find(|(n, _)| present.contains(n)) {
                    return Err(self.err(
                        name,
                        Kind::Permanent,
                        format!("cannot delete: the server replied {text}"),
                    ));
                }
            }
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.url.display()
    }

    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        check_name(name).map_err(|m| self.err(name, Kind::Permanent, m))?;
        let mut local = fs::File::open(src).map_err(|e| {
            self.err(
                name,
                Kind::Permanent,
                format!("cannot read the local file {}: {e}", src.display()),
            )
        })?;
        self.with(|c| {
            self.enter(c, true)?;
            // STOR replaces a file on servers that allow it: never send it onto an existing name.
            if self.names(c)?.iter().any(|n| n == name) {
                return Err(self.err(
                    name,
                    Kind::Permanent,
                    "already exists on the target; an append-only upload never replaces a file"
                        .into(),
                ));
            }
            local
                .seek(io::SeekFrom::Start(0))
                .map_err(|e| self.err(name, Kind::Permanent, format!("local file: {e}")))?;
            let mut data = c
                .ftp
                .put_with_stream(name)
                .map_err(|e| self.ftp_err(name, "STOR", e))?;
            if let Err(e) = self.limits.copy(&mut local, &mut data, COPY_BUFFER) {
                drop(data);
                return Err(self.err(name, Kind::Transient, format!("upload: {e}")));
            }
            c.ftp
                .finalize_put_stream(data)
                .map_err(|e| self.ftp_err(name, "STOR", e))
        })
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        check_name(name).map_err(|m| self.err(name, Kind::Permanent, m))?;
        self.with(|c| {
            if !self.enter(c, false)? {
                return Ok(None);
            }
            match c.ftp.size(name) {
                Ok(n) => Ok(Some(n as u64)),
                // 550: no such file (or SIZE refused for it): the listing decides.
                Err(FtpError::UnexpectedResponse(r)) if r.status.code() == FILE_UNAVAILABLE => {
                    if self.names(c)?.iter().any(|n| n == name) {
                        Err(self.err(
                            name,
                            Kind::Permanent,
                            format!("SIZE: the server replied {}", reply_text(&r.body)),
                        ))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => Err(self.ftp_err(name, "SIZE", e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pw: Option<&str>) -> OpenOptions {
        OpenOptions {
            ftp_password: pw.map(str::to_string),
            ..OpenOptions::new()
        }
    }

    #[test]
    fn url_forms_as_duplicity() {
        let b =
            FtpBackend::from_url("ftp://bob@127.0.0.1:2121/rel/dir/", &opts(Some("env"))).unwrap();
        assert_eq!((b.user.as_str(), b.password.as_str()), ("bob", "env"));
        assert_eq!((b.port(), b.dir.as_str()), (2121, "rel/dir"));
        let b = FtpBackend::from_url("ftp://bob:url%40pw@h//abs/dir", &opts(Some("env"))).unwrap();
        assert_eq!(b.password, "url@pw", "the URL's password comes first");
        assert_eq!((b.port(), b.dir.as_str()), (21, "/abs/dir"));
        assert_eq!(b.describe(), "ftp://bob@h//abs/dir");
        assert!(!format!("{:?}", b.url).contains("url@pw"));
        let b = FtpBackend::from_url("ftp://h", &opts(Some("env"))).unwrap();
        assert_eq!((b.user.as_str(), b.dir.as_str()), ("anonymous", "/"));
        assert_eq!(b.password_source, PwFrom::Anonymous);
        let b = FtpBackend::from_url("ftp://bob@h/", &opts(None)).unwrap();
        assert_eq!((b.password.as_str(), b.dir.as_str()), ("", "/"));
        assert!(FtpBackend::from_url("ftp:///x", &opts(None)).is_err());
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert!(is_part_name(&part_name(
            "duplicity-full.20240101T000000Z.manifest"
        )));
        assert!(!is_part_name("duplicity-full.20240101T000000Z.manifest"));
    }

    #[test]
    fn names_cannot_smuggle_commands() {
        assert!(check_name("duplicity-full.20240101T000000Z.manifest").is_ok());
        for bad in ["", "a\r\nDELE b", "a\nb", "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_never_carry_the_password() {
        let b = FtpBackend::from_url("ftp://bob:s3cret-pw@h/d", &opts(None)).unwrap();
        let e = b.err("", Kind::Permanent, "server said: PASS s3cret-pw".into());
        assert!(!e.to_string().contains("s3cret-pw"), "{e}");
    }
}
