//! s3 beyond the conformance suite, on the moto server (SigV4 auth enforced): every URL form reaching
//! the same objects, refused credentials and unreachable hosts, bucket creation, multipart uploads,
//! and both directions of interop with stock duplicity 0.8.22's boto3 backend.

use std::fs;

use duplicity_charm::backend::s3::S3Backend;
use duplicity_charm::backend::{self, Backend, BackendError, OpenOptions};

use crate::backend_conformance::s3_opts;
use crate::support::*;

const NAME: &str = "duplicity-full.20240101T000000Z.manifest";

fn opts() -> OpenOptions {
    let mut o = s3_opts();
    o.attempts = 1;
    o
}

/// Environment for a child (ours or duplicity) that talks to moto.
fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", server("S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", server("S3_SECRET_ACCESS_KEY")),
        ("AWS_DEFAULT_REGION", server("S3_REGION")),
    ]
}

fn endpoint_arg() -> String {
    format!("--s3-endpoint-url={}", server("S3_ENDPOINT"))
}

/// A bucket name no other test uses (S3 names: lowercase, digits, dashes, at most 63 characters).
fn new_bucket() -> String {
    unique("dc-s3")
}

#[test]
fn every_url_form_reaches_the_same_objects() {
    let bucket = new_bucket();
    let hostport = server("S3_ENDPOINT").trim_start_matches("http://");
    // s3://host/… names the endpoint itself; plain http needs --s3-unencrypted-connection.
    let mut plain = opts();
    plain.s3_endpoint_url = None;
    plain.s3_unencrypted_connection = true;
    let writer = backend::open(&format!("s3://{hostport}/{bucket}/a/b"), &plain).unwrap();
    let ws = Ws::new("s3-forms");
    let src = ws.p("f");
    fs::write(&src, b"payload").unwrap();
    writer.put(&src, NAME).unwrap();
    for url in [
        format!("boto3+s3://{bucket}/a/b"),
        format!("s3+http://{bucket}/a/b/"),
        format!("s3:///{bucket}//a/b"),
        format!("s3://ignored.invalid/{bucket}/a/b"),
    ] {
        let b = backend::open(&url, &opts()).unwrap();
        assert_eq!(b.list().unwrap(), [NAME], "{url}");
        let got = ws.p("got");
        b.get(NAME, &got).unwrap();
        assert_eq!(fs::read(&got).unwrap(), b"payload", "{url}");
    }
    // The key is exactly <prefix>/<name>, as duplicity names it: seen from the bucket's root prefix "a".
    let parent = backend::open(&format!("boto3+s3://{bucket}/a"), &opts()).unwrap();
    assert!(
        parent.list().unwrap().is_empty(),
        "only direct children are listed"
    );
    // (The backend itself, not through backend::open, so no retries.)
    let mut https = opts();
    https.s3_endpoint_url = None;
    let e = S3Backend::from_url(&format!("s3://{hostport}/{bucket}/a/b"), &https)
        .unwrap()
        .list()
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Transient { .. }),
        "https to an http server fails as a connection problem: {e}"
    );
}

#[test]
fn bucket_is_created_when_missing() {
    let bucket = new_bucket();
    let b = backend::open(&format!("boto3+s3://{bucket}/p"), &opts()).unwrap();
    assert!(b.list().unwrap().is_empty(), "a missing bucket lists empty");
    assert!(b
        .get(NAME, &Ws::new("s3-mk").p("x"))
        .unwrap_err()
        .is_not_found());
    let ws = Ws::new("s3-mk");
    let src = ws.p("f");
    fs::write(&src, b"x").unwrap();
    b.put(&src, NAME).unwrap();
    assert_eq!(b.list().unwrap(), [NAME]);
    // A second backend sees the bucket as existing and uses it as is.
    let again = backend::open(&format!("boto3+s3://{bucket}/p"), &opts()).unwrap();
    again.put(&src, "other").unwrap();
    assert_eq!(again.list().unwrap(), [NAME, "other"]);
}

#[test]
fn wrong_secret_is_refused_clearly_without_the_secret() {
    let bucket = new_bucket();
    let url = format!("boto3+s3://{bucket}/p");
    let wrong = "WrongSecretWrongSecretWrongSecret0123456";
    let mut o = opts();
    o.aws_secret_access_key = Some(wrong.to_string());
    let b = backend::open(&url, &o).unwrap();
    let ws = Ws::new("s3-auth");
    let src = ws.p("f");
    fs::write(&src, b"x").unwrap();
    let e = b.put(&src, NAME).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BackendError::AuthRefused { .. }), "{msg}");
    assert!(msg.contains(&bucket), "{msg}");
    assert!(msg.contains("AWS_SECRET_ACCESS_KEY"), "{msg}");
    assert!(!msg.contains(wrong), "{msg}");
    assert!(!format!("{e:?}").contains(wrong));
    let e = b.list().unwrap_err().to_string();
    assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");

    // Through the CLI: a clear message, no secret in the output.
    fs::create_dir_all(ws.p("src")).unwrap();
    fs::write(ws.p("src/a"), b"a").unwrap();
    let run = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &["full", &endpoint_arg(), ws.p("src").to_str().unwrap(), &url],
            &[
                ("AWS_ACCESS_KEY_ID", server("S3_ACCESS_KEY_ID")),
                ("AWS_SECRET_ACCESS_KEY", wrong),
            ],
        )
        .fails();
    let out = run.output();
    assert!(out.contains("AWS_SECRET_ACCESS_KEY"), "{out}");
    assert!(!out.contains(wrong), "{out}");
    assert!(!out.contains(server("S3_SECRET_ACCESS_KEY")), "{out}");
}

#[test]
fn unknown_key_id_is_refused_clearly() {
    let mut o = opts();
    o.aws_access_key_id = Some("AKIANOTAKEYATALL0000".into());
    let b = backend::open(&format!("boto3+s3://{}/p", new_bucket()), &o).unwrap();
    let e = b.list().unwrap_err();
    assert!(matches!(e, BackendError::AuthRefused { .. }), "{e}");
    assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
    assert!(!e.to_string().contains(server("S3_SECRET_ACCESS_KEY")));
}

#[test]
fn unreachable_endpoint_is_transient_and_named() {
    let mut o = opts();
    o.s3_endpoint_url = Some("http://127.0.0.1:9".into());
    let e = S3Backend::from_url("boto3+s3://bkt/p", &o)
        .unwrap()
        .list()
        .unwrap_err();
    assert!(matches!(e, BackendError::Transient { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    // Through the retry wrapper: the same, given up on, still Transient (the target is unreachable).
    o.attempts = 2;
    o.backoff = std::time::Duration::from_millis(10);
    let e = backend::open("boto3+s3://bkt/p", &o)
        .unwrap()
        .list()
        .unwrap_err();
    assert!(matches!(e, BackendError::Transient { .. }), "{e}");
    assert!(e.to_string().contains("gave up after"), "{e}");
    assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
}

#[test]
fn large_objects_go_up_in_parts() {
    let bucket = new_bucket();
    let b = S3Backend::from_url(&format!("boto3+s3://{bucket}/p"), &opts()).unwrap();
    let ws = Ws::new("s3-multi");
    let small = ws.p("small");
    fs::write(&small, random_bytes(1, 1 << 20)).unwrap();
    b.put(&small, "small").unwrap();
    let etag = b.etag("small").unwrap();
    assert!(!etag.contains('-'), "one PutObject for 1 MiB: {etag}");
    // 40 MiB: above the threshold, three parts of 16 + 16 + 8 MiB.
    let big = ws.p("big");
    let sum = write_large_file(&big, 3, 40 << 20);
    b.put(&big, "big").unwrap();
    let etag = b.etag("big").unwrap();
    assert!(etag.trim_matches('"').ends_with("-3"), "multipart: {etag}");
    let got = ws.p("got");
    b.get("big", &got).unwrap();
    assert_eq!(sha1_file(&got), sum);
    assert_eq!(b.list().unwrap(), ["big", "small"]);
}

/// A multipart upload that fails part-way (the file shrinks under it) is aborted: no parts left behind.
#[test]
fn failed_multipart_upload_is_aborted() {
    let bucket = new_bucket();
    let b = std::sync::Arc::new(
        S3Backend::from_url(&format!("boto3+s3://{bucket}/p"), &opts()).unwrap(),
    );
    let ws = Ws::new("s3-abort");
    let big = ws.p("big");
    write_large_file(&big, 5, 160 << 20);
    let (b2, big2) = (b.clone(), big.clone());
    let put = std::thread::spawn(move || b2.put(&big2, "big"));
    // Once the upload has begun, cut the file short: a later part cannot be read in full.
    let t0 = std::time::Instant::now();
    while b.pending_uploads().unwrap().is_empty() {
        assert!(!put.is_finished(), "the upload ended before it was seen");
        assert!(t0.elapsed().as_secs() < 60, "no multipart upload seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let e = put.join().unwrap().unwrap_err();
    eprintln!("failed as expected: {e}");
    assert!(e.to_string().contains("big"), "{e}");
    assert!(b.pending_uploads().unwrap().is_empty(), "not aborted");
    assert!(b.list().unwrap().is_empty(), "nothing stored: {e}");
}

/// A small tree for the interop runs.
fn sample(ws: &Ws) -> std::path::PathBuf {
    let src = ws.p("src");
    build_sample(&src);
    src
}

#[test]
fn duplicity_backs_up_to_s3_we_restore() {
    let ws = Ws::new("s3-dup-ours");
    let src = sample(&ws);
    let bucket = new_bucket();
    // duplicity 0.8's boto3 backend does not make the bucket: we do, with a file elsewhere in it.
    let other = backend::open(&format!("boto3+s3://{bucket}/other"), &opts()).unwrap();
    fs::write(ws.p("x"), b"x").unwrap();
    other.put(&ws.p("x"), "x").unwrap();
    let url = format!("boto3+s3://{bucket}/dup/prefix");
    let ep = endpoint_arg();
    let env = s3_env();
    ws.run_env(
        Tool::Duplicity,
        Enc::Pass(PASS),
        &[
            "full",
            "--num-retries",
            "1",
            &ep,
            src.to_str().unwrap(),
            &url,
        ],
        &env,
    )
    .ok();
    let names = backend::open(&url, &opts()).unwrap().list().unwrap();
    assert!(
        names.iter().any(|n| n.ends_with(".manifest.gpg")),
        "{names:?}"
    );
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASS),
        &["restore", &ep, &url, dst.to_str().unwrap()],
        &env,
    )
    .ok();
    assert_same_tree(&src, &dst, "our restore of duplicity's S3 backup");
}

#[test]
fn we_back_up_to_s3_duplicity_restores() {
    let ws = Ws::new("s3-ours-dup");
    let src = sample(&ws);
    let url = format!("boto3+s3://{}/ours", new_bucket());
    let ep = endpoint_arg();
    let env = s3_env();
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASS),
        &["full", &ep, src.to_str().unwrap(), &url],
        &env,
    )
    .ok();
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Duplicity,
        Enc::Pass(PASS),
        &[
            "restore",
            "--num-retries",
            "1",
            &ep,
            &url,
            dst.to_str().unwrap(),
        ],
        &env,
    )
    .ok();
    assert_same_tree(&src, &dst, "duplicity's restore of our S3 backup");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`: (ca.pem, server.pem, server.key).
pub fn make_tls_certs(dir: &std::path::Path) {
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj /CN=dc-test-ca 2>/dev/null \
        && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj /CN=127.0.0.1 2>/dev/null \
        && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext \
        && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext 2>/dev/null",
    );
}

/// A tiny HTTPS server that answers every GET with an empty S3 listing; its port and the child.
pub fn start_tls_listing_server(dir: &std::path::Path) -> (u16, std::process::Child) {
    use std::io::BufRead;
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>p/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>'
        self.send_response(200)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('server.pem', 'server.key')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (line.trim().parse().unwrap(), child)
}

/// https is verified against the trusted roots (SSL_CERT_FILE here, the system's store otherwise):
/// a server signed by a CA we trust is talked to, the same server without that trust is refused at
/// once (no retries) with a message saying why.
#[test]
fn https_endpoints_are_verified_against_trusted_roots() {
    let ws = Ws::new("s3-tls");
    let dir = ws.p("tls");
    fs::create_dir_all(&dir).unwrap();
    make_tls_certs(&dir);
    let (port, mut server) = start_tls_listing_server(&dir);
    let url = format!("s3://127.0.0.1:{port}/bkt/p");
    let ca = dir.join("ca.pem");
    let creds = [
        ("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST"),
        ("AWS_SECRET_ACCESS_KEY", "not-checked-by-this-server"),
    ];
    let mut trusted = creds.to_vec();
    trusted.push(("SSL_CERT_FILE", ca.to_str().unwrap()));
    let run = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &["collection-status", &url],
            &trusted,
        )
        .ok();
    let out = run.output();
    assert!(
        !out.contains("certificate") && !out.contains("cannot reach"),
        "with the CA trusted the listing goes through: {out}"
    );
    let started = std::time::Instant::now();
    let run = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &["collection-status", &url],
            &creds,
        )
        .fails();
    let out = run.output();
    assert!(out.contains("TLS certificate is not trusted"), "{out}");
    assert!(!out.contains("retrying"), "{out}");
    assert!(started.elapsed().as_secs() < 20);
    let _ = server.kill();
    let _ = server.wait();
}
