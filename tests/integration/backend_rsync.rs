//! rsync:// beyond the conformance suite: the `::module/path` form with RSYNC_PASSWORD, a wrong daemon
//! password and a wrong host key failing clearly, and no password in any rsync/ssh argv.

use duplicity_charm::backend::{self, OpenOptions};

use crate::support::*;

fn daemon_url(path: &str) -> String {
    format!(
        "rsync://{}@127.0.0.1:{}::{}/{path}",
        server("RSYNCD_USER"),
        server("RSYNCD_PORT"),
        server("RSYNCD_MODULE"),
    )
}

#[test]
fn daemon_module_form_with_rsync_password_creates_the_directory() {
    let mut o = OpenOptions::new();
    o.rsync_password = Some(server("RSYNCD_PASSWORD").to_string());
    let rel = format!("{}/a/b", unique("mod"));
    let b = backend::open(&daemon_url(&rel), &o).unwrap();
    let ws = Ws::new("rsyncd-mod");
    std::fs::write(ws.p("f"), b"x").unwrap();
    b.put(&ws.p("f"), "duplicity-full.20240101T000000Z.manifest")
        .unwrap();
    assert!(std::path::Path::new(server("RSYNCD_DIR"))
        .join(&rel)
        .join("duplicity-full.20240101T000000Z.manifest")
        .exists());
}

#[test]
fn wrong_daemon_password_fails_clearly() {
    let mut o = OpenOptions::new();
    o.attempts = 1;
    o.rsync_password = Some("not-the-password".into());
    let b = backend::open(&daemon_url(&unique("bad")), &o).unwrap();
    let e = b.list().unwrap_err().to_string();
    assert!(e.contains("auth failed"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");
}

#[test]
fn wrong_host_key_fails_clearly() {
    let mut o = OpenOptions::new();
    o.attempts = 1;
    o.set_ssh_options(&ssh_options_with(
        server("SSH_KEY_ED25519"),
        server("SSH_KNOWN_HOSTS_WRONG"),
    ));
    let url = format!(
        "rsync://{}@127.0.0.1:{}/{}",
        server("SSH_USER"),
        server("SSH_PORT"),
        unique("badhk")
    );
    let e = backend::open(&url, &o)
        .unwrap()
        .list()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Host key verification failed") || e.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{e}"
    );
}

/// While a 64 MiB upload to the daemon runs, no process's argv holds the password.
#[test]
fn no_password_in_any_argv() {
    let pw = server("RSYNCD_PASSWORD");
    let mut o = OpenOptions::new();
    o.ftp_password = Some(pw.to_string());
    let b = backend::open(&daemon_url(&unique("argv")), &o).unwrap();
    let ws = Ws::new("rsync-argv");
    write_large_file(&ws.p("big"), 3, 64 << 20);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (seen_rsync, leaked) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let (mut seen, mut leaked) = (false, Vec::new());
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for (pid, argv) in all_cmdlines() {
                    seen |= argv.starts_with("rsync");
                    if argv.contains(pw) {
                        leaked.push(format!("{pid}: {argv}"));
                    }
                }
            }
            (seen, leaked)
        });
        b.put(
            &ws.p("big"),
            "duplicity-full.20240101T000000Z.vol1.difftar.gpg",
        )
        .unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().unwrap()
    });
    assert!(seen_rsync, "the watcher never saw rsync run");
    assert!(leaked.is_empty(), "password in argv: {leaked:?}");
}
