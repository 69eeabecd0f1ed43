//! sftp:// and scp:// beyond the conformance suite: key formats, passwords, URL forms, and strict
//! host-key checking (unknown and changed keys refused with a message naming the host and the file).

use duplicity_charm::backend::{self, OpenOptions};

use crate::support::*;

fn opts(key: &str, known_hosts: &str) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.attempts = 1;
    o.set_ssh_options(&ssh_options_with(key, known_hosts));
    o
}

fn url(path: &str) -> String {
    format!(
        "sftp://{}@127.0.0.1:{}/{path}",
        server("SSH_USER"),
        server("SSH_PORT")
    )
}

#[test]
fn key_formats_openssh_ed25519_openssh_rsa_pem_rsa() {
    for key in ["SSH_KEY_ED25519", "SSH_KEY_RSA", "SSH_KEY_RSA_PEM"] {
        let o = opts(server(key), server("SSH_KNOWN_HOSTS"));
        round_trip(&url(&format!("{}/k", unique("keys"))), &o)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn hashed_known_hosts_entry_is_accepted() {
    let o = opts(server("SSH_KEY_ED25519"), server("SSH_KNOWN_HOSTS_HASHED"));
    round_trip(&url(&unique("hashed")), &o).unwrap();
}

#[test]
fn absolute_path_with_double_slash_and_scp_scheme() {
    let o = opts(server("SSH_KEY_ED25519"), server("SSH_KNOWN_HOSTS"));
    let dir = format!("{}/{}/deep", server("SSH_ABS_DIR"), unique("abs"));
    round_trip(&url(&format!("/{dir}")), &o).unwrap();
    assert!(std::path::Path::new(&dir)
        .join("duplicity-full.20240101T000000Z.manifest")
        .exists());
    let rel = unique("scp");
    let scp = url(&rel).replacen("sftp://", "scp://", 1);
    round_trip(&scp, &o).unwrap();
    assert!(std::path::Path::new(server("SSH_HOME")).join(&rel).is_dir());
}

#[test]
fn password_from_ftp_password_or_the_url() {
    // No key file at all: only the password can work.
    let mut o = opts("/nonexistent/key", server("SSH_KNOWN_HOSTS"));
    o.ftp_password = Some(server("SSH_PASSWORD").to_string());
    round_trip(&url(&unique("pw-env")), &o).unwrap();
    o.ftp_password = None;
    let with_pw = url(&unique("pw-url")).replacen(
        "@127.0.0.1",
        &format!(":{}@127.0.0.1", server("SSH_PASSWORD")),
        1,
    );
    round_trip(&with_pw, &o).unwrap();
    let b = backend::open(&with_pw, &o).unwrap();
    assert!(!b.describe().contains(server("SSH_PASSWORD")));
}

#[test]
fn wrong_password_fails_clearly() {
    let mut o = opts("/nonexistent/key", server("SSH_KNOWN_HOSTS"));
    o.ftp_password = Some("not-the-password".into());
    let e = round_trip(&url(&unique("badpw")), &o).unwrap_err();
    assert!(e.contains("authentication as"), "{e}");
    assert!(e.contains(server("SSH_USER")), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");
}

#[test]
fn changed_host_key_is_refused_naming_host_and_file() {
    let wrong = server("SSH_KNOWN_HOSTS_WRONG");
    let o = opts(server("SSH_KEY_ED25519"), wrong);
    let e = round_trip(&url(&unique("wronghk")), &o).unwrap_err();
    let host = format!("[127.0.0.1]:{}", server("SSH_PORT"));
    assert!(e.contains("does NOT match"), "{e}");
    assert!(e.contains(&host) && e.contains(wrong), "{e}");
}

#[test]
fn unknown_host_is_refused_naming_host_and_file() {
    let ws = Ws::new("sftp-unknown");
    let empty = ws.p("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let o = opts(server("SSH_KEY_ED25519"), empty);
    let e = round_trip(&url(&unique("unknown")), &o).unwrap_err();
    assert!(e.contains("unknown"), "{e}");
    assert!(
        e.contains(&format!("[127.0.0.1]:{}", server("SSH_PORT"))),
        "{e}"
    );
    assert!(e.contains(empty), "{e}");
    // Through the CLI too: one clear line, exit non-zero.
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "collection-status".to_string(),
                format!(
                    "--ssh-options={}",
                    ssh_options_with(server("SSH_KEY_ED25519"), empty)
                ),
                url(&unique("unknown-cli")),
            ],
        )
        .fails();
    assert!(r.stderr.contains("unknown"), "{}", r.stderr);
}

#[test]
fn default_known_hosts_is_home_ssh() {
    // No -oUserKnownHostsFile: ~/.ssh/known_hosts of HOME is used.
    let ws = Ws::new("sftp-home");
    std::fs::create_dir_all(ws.p("home/.ssh")).unwrap();
    std::fs::copy(server("SSH_KNOWN_HOSTS"), ws.p("home/.ssh/known_hosts")).unwrap();
    std::fs::copy(server("SSH_KEY_ED25519"), ws.p("home/.ssh/id_ed25519")).unwrap();
    let o = OpenOptions {
        home: Some(ws.p("home")),
        attempts: 1,
        ..OpenOptions::new()
    };
    round_trip(&url(&unique("home")), &o).unwrap();
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let mut o = opts(server("SSH_KEY_ED25519"), server("SSH_KNOWN_HOSTS"));
    o.attempts = 2;
    o.backoff = std::time::Duration::from_millis(10);
    // Port 1 on loopback: nothing listens there.
    let b = backend::open("sftp://u@127.0.0.1:1/d", &o).unwrap();
    let e = b.list().unwrap_err().to_string();
    assert!(e.contains("sftp://u@127.0.0.1:1/d"), "{e}");
    assert!(e.contains("2 attempts"), "{e}");
}
