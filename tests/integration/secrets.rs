//! No secret in any argv, log or error: a whole CLI session (full, incremental, status, list, verify,
//! restore, retention, cleanup, and failures with wrong credentials and a wrong passphrase) on every
//! backend against its real server. What is checked:
//! - the argv of every program the binary starts (`rsync`, `ssh`: a shim first on `PATH` records each
//!   exec before running the real program, so no short-lived process is missed);
//! - everything the binary printed (stdout and stderr, success and failure);
//! - every file it left in its archive dir and temp dir.
//!
//! The charm's side (hook-tool calls, juju-log, statuses, action output) is checked in
//! `charm::charm_no_configured_secret_appears_in_any_call_log_status_or_output`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::backend_conformance::{self as conf, Target};
use crate::support::*;

/// Environment variables whose values are secrets.
const SECRET_VARS: &[&str] = &[
    "PASSPHRASE",
    "FTP_PASSWORD",
    "RSYNC_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_CONNECTION_STRING",
];

/// A directory that comes first on `PATH`, with `rsync` and `ssh` wrappers that append their argv to
/// `log` and exec the real program.
fn argv_recorder(ws: &Ws) -> (String, PathBuf) {
    let dir = ws.p("argv-shim");
    fs::create_dir_all(&dir).unwrap();
    let log = ws.p("argv.log");
    for prog in ["rsync", "ssh"] {
        let real = which(prog);
        let script = format!(
            "#!/bin/sh\nprintf '%s ' {prog} \"$@\" >>'{}'\necho >>'{}'\nexec '{real}' \"$@\"\n",
            log.display(),
            log.display()
        );
        let p = dir.join(prog);
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    (path, log)
}

fn which(prog: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .unwrap();
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!p.is_empty(), "{prog} is not installed");
    p
}

/// The same target with every credential in its environment replaced by a wrong one.
fn wrong_credentials(env: &[(String, String)], tag: &str) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "AZURE_CONNECTION_STRING" => {
                    let key = azure_account_key(v).unwrap_or_default();
                    // A well-formed key (base64 of 64 bytes), just not the account's.
                    let wrong = base64_of(&random_bytes(99, 64));
                    v.replace(key, &wrong)
                }
                k if SECRET_VARS.contains(&k) => format!("wrong-{tag}-{k}"),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Every file under `dir`, as text (lossy), with its path.
fn files_text(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            out.extend(files_text(&p));
        } else if ft.is_file() {
            if let Ok(b) = fs::read(&p) {
                out.push((p, String::from_utf8_lossy(&b).into_owned()));
            }
        }
    }
    out
}

/// Runs the session on `t` and fails naming the secret and where it showed.
fn no_secret_leaks(t: Target) {
    let (path, argv_log) = argv_recorder(&t.ws);
    let src = t.ws.p("src");
    build_sample(&src);
    let mut env = t.env.clone();
    env.push(("PATH".into(), path));
    let run = |args: &[&str], env: &[(String, String)], pass: &'static str| {
        t.run_with(Tool::Ours, args, env, pass)
    };
    let src_s = src.to_str().unwrap();
    let url = t.url.as_str();
    let restored = t.ws.p("restored");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, r: Run| outputs.push((what.to_string(), r.output()));

    keep("full", run(&["full", src_s, url], &env, PASS).ok());
    mutate(&src, 1);
    keep(
        "incremental",
        run(&["incremental", src_s, url], &env, PASS).ok(),
    );
    keep("status", run(&["collection-status", url], &env, PASS).ok());
    keep("list", run(&["list-current-files", url], &env, PASS).ok());
    keep("verify", run(&["verify", url, src_s], &env, PASS).ok());
    let dst = restored.to_str().unwrap();
    keep("restore", run(&["restore", url, dst], &env, PASS).ok());
    assert_same_tree(&src, &restored, "restore in the secrets session");
    let args = ["remove-all-but-n-full", "1", url, "--force"];
    keep("retention", run(&args, &env, PASS).ok());
    keep(
        "cleanup",
        run(&["cleanup", url, "--force"], &env, PASS).ok(),
    );

    // Failures: a wrong passphrase, then (where the backend has one) a wrong credential.
    const WRONG_PASS: &str = "wrong passphrase S3kr1t";
    let dst2 = t.ws.p("restored-wrong");
    let r = run(&["restore", url, dst2.to_str().unwrap()], &env, WRONG_PASS).fails();
    keep("wrong passphrase", r);
    let bad_env = wrong_credentials(&env, "cred");
    let mut secrets: Vec<String> = vec![PASS.to_string(), WRONG_PASS.to_string()];
    if bad_env != env {
        let r = run(&["collection-status", url], &bad_env, PASS).fails();
        keep("wrong credential", r);
        let r = run(&["full", src_s, url], &bad_env, PASS).fails();
        keep("wrong credential, backup", r);
        for (k, v) in &bad_env {
            if SECRET_VARS.contains(&k.as_str()) {
                secrets.push(azure_account_key(v).unwrap_or(v).to_string());
            }
        }
    }
    for (k, v) in &env {
        if SECRET_VARS.contains(&k.as_str()) {
            secrets.push(azure_account_key(v).unwrap_or(v).to_string());
        }
    }
    secrets.extend(known_secrets());
    secrets.retain(|s| s.len() >= 6);

    let mut haystack = outputs;
    let argv = fs::read_to_string(&argv_log).unwrap_or_default();
    haystack.push(("argv of rsync/ssh".into(), argv));
    for dir in [t.ws.cache(Tool::Ours), t.ws.p("tmp")] {
        for (p, text) in files_text(&dir) {
            haystack.push((format!("file {}", p.display()), text));
        }
    }
    for (what, text) in &haystack {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret ({}…) showed in {what}:\n{text}",
                &s[..3]
            );
        }
    }
}

macro_rules! secrets_session {
    ($name:ident, $make:expr) => {
        #[test]
        fn $name() {
            no_secret_leaks($make());
        }
    };
}

secrets_session!(file_session_leaks_no_secret, conf::file_target);
secrets_session!(sftp_key_session_leaks_no_secret, conf::sftp_target);
secrets_session!(sftp_password_session_leaks_no_secret, sftp_password_target);
secrets_session!(rsync_ssh_session_leaks_no_secret, conf::rsync_ssh_target);
secrets_session!(
    rsync_daemon_session_leaks_no_secret,
    conf::rsync_daemon_target
);

secrets_session!(ftp_session_leaks_no_secret, conf::ftp_target);
secrets_session!(s3_session_leaks_no_secret, conf::s3_target);
secrets_session!(azure_session_leaks_no_secret, conf::azure_target);

/// sftp with the password in `FTP_PASSWORD` and no key.
fn sftp_password_target() -> Target {
    let mut t = conf::sftp_target();
    let kh = server("SSH_KNOWN_HOSTS");
    t.cli = vec![format!("--ssh-options=-oUserKnownHostsFile={kh}")];
    t.env
        .push(("FTP_PASSWORD".into(), server("SSH_PASSWORD").to_string()));
    t
}

#[test]
fn wrong_credentials_replace_every_secret() {
    let env = vec![
        ("FTP_PASSWORD".to_string(), "right".to_string()),
        (
            "AZURE_CONNECTION_STRING".to_string(),
            "AccountName=a;AccountKey=cmlnaHQ=;BlobEndpoint=http://127.0.0.1:1/a".to_string(),
        ),
        ("OTHER".to_string(), "kept".to_string()),
    ];
    let bad = wrong_credentials(&env, "t");
    assert_eq!(bad[0].1, "wrong-t-FTP_PASSWORD");
    assert!(!bad[1].1.contains("cmlnaHQ=") && bad[1].1.contains("AccountName=a;"));
    assert_eq!(bad[2].1, "kept");
}
