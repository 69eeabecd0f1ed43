//! Operators' duplicity command lines run unchanged (issue 12): implicit backup (`SRC URL`) and restore
//! (`URL DIR`), and the classic cron line to an rsync daemon behind a SOCKS5 proxy
//! (`RSYNC_CONNECT_PROG='nc -x … %H 873'`, `--rsync-options="--password-file=F --partial --compress"`),
//! each restored by us and by stock duplicity.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::*;

#[test]
fn implicit_backup_and_restore_as_duplicity() {
    let ws = Ws::new("implicit");
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    let src_s = src.to_str().unwrap();
    // Options before and after the arguments, no command word.
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["--full-if-older-than=2M", src_s, &url, "--volsize", "1"],
    )
    .ok();
    mutate(&src, 1);
    let second = ws
        .run(Tool::Ours, Enc::Pass(PASS), &["--volsize=1", src_s, &url])
        .ok();
    assert!(
        std::fs::read_dir(ws.p("repo")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("duplicity-inc.")),
        "the second implicit backup is an incremental: {}",
        second.output()
    );
    let dst = ws.p("restored");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours, implicit restore");
    let dst = ws.p("restored-dup");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "stock duplicity");
    // duplicity 3's name for it.
    mutate(&src, 2);
    ws.run(Tool::Ours, Enc::Pass(PASS), &["backup", src_s, &url])
        .ok();
    let dst = ws.p("restored-3");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "after `backup`");
    // Neither argument a URL: a clear message.
    let r = ws
        .run(Tool::Ours, Enc::Pass(PASS), &[src_s, dst.to_str().unwrap()])
        .fails();
    assert!(
        r.output().contains("neither argument is a URL"),
        "{}",
        r.output()
    );
}

/// A SOCKS5 proxy on 127.0.0.1 standing in for Tor: every host name it is asked for (a `.onion`)
/// leads to 127.0.0.1 at the port asked for. Returns its port and the names it was asked for.
fn socks5_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let asked = asked2.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut head = [0u8; 2];
                c.read_exact(&mut head)?;
                let mut methods = vec![0u8; head[1] as usize];
                c.read_exact(&mut methods)?;
                c.write_all(&[5, 0])?;
                let mut req = [0u8; 4];
                c.read_exact(&mut req)?;
                let host = match req[3] {
                    3 => {
                        let mut len = [0u8; 1];
                        c.read_exact(&mut len)?;
                        let mut name = vec![0u8; len[0] as usize];
                        c.read_exact(&mut name)?;
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    _ => {
                        let mut ip = [0u8; 4];
                        c.read_exact(&mut ip)?;
                        format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
                    }
                };
                let mut p = [0u8; 2];
                c.read_exact(&mut p)?;
                asked.lock().unwrap().push(host);
                let up = TcpStream::connect(("127.0.0.1", u16::from_be_bytes(p)))?;
                c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
                let (mut c2, mut up2) = (c.try_clone()?, up.try_clone()?);
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut up2);
                    let _ = up2.shutdown(std::net::Shutdown::Write);
                });
                let (mut up, mut c) = (up, c);
                let _ = std::io::copy(&mut up, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
                Ok(())
            });
        }
    });
    (port, asked)
}

/// A stand-in for `nc -x PROXY HOST PORT` (netcat-openbsd is not installed everywhere): connects
/// through the SOCKS5 proxy and joins stdin/stdout to the connection.
const SOCKS_NC: &str = r#"
import socket, struct, sys, threading
args = sys.argv[1:]
proxy = args[args.index("-x") + 1]; host, port = args[-2], int(args[-1])
ph, pp = proxy.rsplit(":", 1)
s = socket.create_connection((ph, int(pp)))
s.sendall(b"\x05\x01\x00"); s.recv(2)
s.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack(">H", port))
r = b""
while len(r) < 10: r += s.recv(10 - len(r))
def up():
    while True:
        d = sys.stdin.buffer.raw.read(65536)
        if not d: break
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d: break
    sys.stdout.buffer.write(d); sys.stdout.buffer.flush()
"#;

#[test]
fn rsync_daemon_cron_line_through_a_socks_proxy() {
    let ws = Ws::new("cron-rsync");
    let src = ws.p("src");
    build_sample(&src);
    let (proxy_port, asked) = socks5_proxy();
    std::fs::write(ws.p("socks_nc.py"), SOCKS_NC).unwrap();
    let secret = ws.p("rsync.secret");
    std::fs::write(&secret, server("RSYNCD_PASSWORD")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let connect = format!(
        "python3 {} -x 127.0.0.1:{proxy_port} %H {}",
        ws.p("socks_nc.py").display(),
        server("RSYNCD_PORT")
    );
    let dir = unique("cron");
    let onion = "abcdef0123456789.onion";
    let rsync_opts = format!(
        "--rsync-options=--password-file={} --partial --compress",
        secret.display()
    );
    let cron = |tool: Tool, url: &str, args: &[&str]| {
        let (prog, label) = match tool {
            Tool::Ours => (ours_bin(), "ours"),
            Tool::Duplicity => ("duplicity", "duplicity"),
        };
        let mut cmd = Command::new(prog);
        ws.env(&mut cmd);
        cmd.env("PASSPHRASE", PASS)
            .env("RSYNC_CONNECT_PROG", &connect)
            .env_remove("RSYNC_PASSWORD")
            .arg("--archive-dir")
            .arg(ws.cache(tool))
            .args(args.iter().map(|a| a.replace("URL", url)));
        run_cmd(cmd, &format!("{label} {args:?}"))
    };
    // Both daemon URL forms: `::module/path` and `::/module/path` name the same place.
    let url = format!(
        "rsync://{}@{onion}::{}/{dir}/",
        server("RSYNCD_USER"),
        server("RSYNCD_MODULE")
    );
    let url_slash = format!(
        "rsync://{}@{onion}::/{}/{dir}/",
        server("RSYNCD_USER"),
        server("RSYNCD_MODULE")
    );
    let src_s = src.to_str().unwrap();
    cron(
        Tool::Ours,
        &url,
        &["--full-if-older-than", "2M", &rsync_opts, src_s, "URL"],
    )
    .ok();
    mutate(&src, 1);
    cron(
        Tool::Ours,
        &url_slash,
        &["--full-if-older-than", "2M", &rsync_opts, src_s, "URL"],
    )
    .ok();
    let stored = std::path::Path::new(server("RSYNCD_DIR")).join(&dir);
    let names: Vec<String> = std::fs::read_dir(&stored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("duplicity-full.")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("duplicity-inc.")),
        "{names:?}"
    );
    let rsync_opts_short = format!("--rsync-options=--password-file={}", secret.display());
    cron(
        Tool::Ours,
        &url,
        &[
            "remove-all-but-n-full",
            "12",
            "--force",
            &rsync_opts_short,
            "URL",
        ],
    )
    .ok();
    // Restore by swapping the two arguments.
    let dst = ws.p("restored");
    cron(
        Tool::Ours,
        &url,
        &[&rsync_opts, "URL", dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours through the proxy");
    let dst = ws.p("restored-dup");
    cron(
        Tool::Duplicity,
        &url,
        &[&rsync_opts, "URL", dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "stock duplicity through the proxy");
    assert!(
        asked.lock().unwrap().iter().all(|h| h == onion) && !asked.lock().unwrap().is_empty(),
        "every daemon connection went through the proxy to the onion name: {:?}",
        asked.lock().unwrap()
    );
    // Options that would break the target are refused by name.
    let r = cron(
        Tool::Ours,
        &url,
        &["--rsync-options=--delete", "collection-status", "URL"],
    )
    .fails();
    assert!(
        r.output().contains("--delete cannot be used"),
        "{}",
        r.output()
    );
}

#[test]
fn gpg_options_cipher_algo_is_written_and_read_by_gpg_and_duplicity() {
    let ws = Ws::new("gpgopt");
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[
            "--gpg-options=--batch --cipher-algo TWOFISH",
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let vol = std::fs::read_dir(ws.p("repo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".vol1.difftar.gpg"))
        .expect("a volume");
    let mut cmd = Command::new("gpg");
    ws.env(&mut cmd);
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASS,
        "-v",
        "-o",
    ])
    .arg(ws.p("vol1.tar"))
    .arg("--decrypt")
    .arg(&vol);
    let r = run_cmd(cmd, "gpg --decrypt").ok();
    assert!(
        r.output().contains("TWOFISH"),
        "gpg names the cipher: {}",
        r.output()
    );
    let dst = ws.p("restored");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
    let dst = ws.p("restored-dup");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "stock duplicity");
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &["--gpg-options=--rfc2440", src.to_str().unwrap(), &url],
        )
        .fails();
    assert!(
        r.output()
            .contains("--rfc2440 asks for the older message format"),
        "{}",
        r.output()
    );
}

#[test]
fn gpg_options_cipher_algo_with_a_public_key_and_implicit_commands() {
    let ws = Ws::new("gpgopt-pk");
    let key = ws.gen_key(
        "enc",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    ws.run(
        Tool::Ours,
        Enc::Keys,
        &[
            "--gpg-options=--cipher-algo=CAMELLIA256",
            "--encrypt-key",
            &key.fpr,
            "--keyring",
            key.pub_bin.to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let vol = std::fs::read_dir(ws.p("repo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".vol1.difftar.gpg"))
        .expect("a volume");
    // gpg has the secret key in the workspace's GNUPGHOME (gen_key made it there).
    let out = ws.p("vol1.tar");
    let r = ws
        .gpg(&[
            "-v",
            "-o",
            out.to_str().unwrap(),
            "--decrypt",
            vol.to_str().unwrap(),
        ])
        .ok();
    assert!(
        r.output().contains("CAMELLIA256"),
        "gpg names the cipher: {}",
        r.output()
    );
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[
            &format!("--secret-keyring={}", key.sec_bin.display()),
            url.as_str(),
            dst.to_str().unwrap(),
        ],
        &[("PASSPHRASE", KEY_PASS)],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
}
