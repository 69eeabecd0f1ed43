//! ftp:// beyond the conformance suite, against pyftpdlib: where the password comes from, URL forms,
//! the directory tree created, temporary upload names hidden, and clear failures (wrong password,
//! anonymous refused, nothing listening, ftps:// refused) that never show the password.

use std::path::Path;

use duplicity_charm::backend::{self, OpenOptions};

use crate::support::*;

const NAME: &str = ROUND_TRIP_NAME;

fn opts(password: Option<&str>) -> OpenOptions {
    OpenOptions {
        ftp_password: password.map(str::to_string),
        attempts: 1,
        ..OpenOptions::new()
    }
}

/// `ftp://ftpuser@127.0.0.1:PORT/{path}`.
fn url(path: &str) -> String {
    format!(
        "ftp://{}@127.0.0.1:{}/{path}",
        server("FTP_USER"),
        server("FTP_PORT")
    )
}

fn root() -> &'static Path {
    Path::new(server("FTP_ROOT"))
}

#[test]
fn password_from_ftp_password_or_the_url() {
    round_trip(&url(&unique("pw-env")), &opts(Some(server("FTP_PASSWORD")))).unwrap();
    // The URL's password wins over FTP_PASSWORD (as duplicity).
    let with_pw = url(&unique("pw-url")).replacen(
        "@127.0.0.1",
        &format!(":{}@127.0.0.1", server("FTP_PASSWORD")),
        1,
    );
    round_trip(&with_pw, &opts(Some("not-the-password"))).unwrap();
    let b = backend::open(&with_pw, &opts(None)).unwrap();
    assert!(!b.describe().contains(server("FTP_PASSWORD")));
}

#[test]
fn nested_directory_is_created_relative_and_absolute() {
    let o = opts(Some(server("FTP_PASSWORD")));
    // pyftpdlib's login dir is its root, so `/rel` and `//abs` both land under FTP_ROOT.
    let rel = format!("{}/a/b/c", unique("nested"));
    round_trip(&url(&rel), &o).unwrap();
    assert!(root().join(&rel).join(NAME).is_file());
    let abs = format!("{}/x/y", unique("abs"));
    round_trip(&url(&format!("/{abs}")), &o).unwrap();
    assert!(root().join(&abs).join(NAME).is_file());
    // An existing directory is used as it is.
    round_trip(&url(&rel), &o).unwrap();
}

#[test]
fn temporary_upload_names_are_not_listed() {
    let dir = unique("part");
    let o = opts(Some(server("FTP_PASSWORD")));
    round_trip(&url(&dir), &o).unwrap();
    // What an interrupted upload leaves behind.
    std::fs::write(root().join(&dir).join(format!(".{NAME}.part")), b"half").unwrap();
    let b = backend::open(&url(&dir), &o).unwrap();
    assert_eq!(b.list().unwrap(), [NAME]);
}

#[test]
fn wrong_password_fails_clearly_without_the_password() {
    let bad = "not-the-Passw0rd";
    let e = round_trip(&url(&unique("badpw")), &opts(Some(bad))).unwrap_err();
    let who = format!("{}@127.0.0.1", server("FTP_USER"));
    assert!(e.contains("login") && e.contains(&who), "{e}");
    assert!(
        e.contains("FTP_PASSWORD") && e.contains("remote_password"),
        "{e}"
    );
    assert!(!e.contains(bad), "{e}");
    // The password in the URL is not shown either.
    let in_url = url(&unique("badpw")).replacen("@127.0.0.1", &format!(":{bad}@127.0.0.1"), 1);
    let e = round_trip(&in_url, &opts(None)).unwrap_err();
    assert!(e.contains(&who) && !e.contains(bad), "{e}");
    // Through the CLI: exit non-zero, one clear message, no password anywhere in its output.
    let ws = Ws::new("ftp-badpw-cli");
    let r = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &["collection-status".to_string(), url(&unique("badpw-cli"))],
            &[("FTP_PASSWORD", bad)],
        )
        .fails();
    assert!(r.stderr.contains(&who), "{}", r.stderr);
    assert!(!r.output().contains(bad), "{}", r.output());
}

#[test]
fn anonymous_login_refused_says_what_to_do() {
    let u = format!("ftp://127.0.0.1:{}/{}", server("FTP_PORT"), unique("anon"));
    let e = round_trip(&u, &opts(Some(server("FTP_PASSWORD")))).unwrap_err();
    assert!(e.contains("anonymous"), "{e}");
    assert!(!e.contains(server("FTP_PASSWORD")), "{e}");
}

#[test]
fn unreachable_port_fails_clearly_after_retries() {
    let mut o = opts(Some("pw-not-shown"));
    o.attempts = 2;
    o.backoff = std::time::Duration::from_millis(10);
    // Port 1 on loopback: nothing listens there.
    let b = backend::open("ftp://u:pw-in-url@127.0.0.1:1/d", &o).unwrap();
    let e = b.list().unwrap_err().to_string();
    assert!(e.contains("ftp://u@127.0.0.1:1/d"), "{e}");
    assert!(
        e.contains("cannot connect") && e.contains("2 attempts"),
        "{e}"
    );
    assert!(
        !e.contains("pw-in-url") && !e.contains("pw-not-shown"),
        "{e}"
    );
}

#[test]
fn ftps_is_refused_plainly() {
    let e = backend::open("ftps://u:secret@127.0.0.1/d", &opts(None))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not supported") && e.contains("ftps://"), "{e}");
    assert!(!e.contains("secret"), "{e}");
}

/// A TCP relay to the FTP server's control port whose connections the test can cut, as a server
/// restart or a NAT timeout would between two operations.
struct Relay {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn to(port: u16) -> Relay {
        use std::net::{TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay {
            port: l.local_addr().unwrap().port(),
            conns: Default::default(),
        };
        let conns = relay.conns.clone();
        std::thread::spawn(move || {
            for down in l.incoming().flatten() {
                let up = TcpStream::connect(("127.0.0.1", port)).unwrap();
                conns.lock().unwrap().push(down.try_clone().unwrap());
                for (mut from, mut to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, down),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        relay
    }

    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn a_dropped_connection_is_made_again() {
    let relay = Relay::to(server("FTP_PORT").parse().unwrap());
    let u = format!(
        "ftp://{}@127.0.0.1:{}/{}",
        server("FTP_USER"),
        relay.port,
        unique("drop")
    );
    // One attempt: the backend itself must notice and reconnect, not the retry wrapper.
    let o = opts(Some(server("FTP_PASSWORD")));
    round_trip(&u, &o).unwrap();
    let b = backend::open(&u, &o).unwrap();
    assert_eq!(b.list().unwrap(), [NAME]);
    relay.cut();
    // The kept connection is dead now: the next operations reconnect (through the relay again).
    assert_eq!(b.list().unwrap(), [NAME]);
    let ws = Ws::new("ftp-drop");
    b.get(NAME, &ws.p("got")).unwrap();
    assert_eq!(std::fs::read(ws.p("got")).unwrap(), b"payload");
}
