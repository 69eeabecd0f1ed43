//! The charm against the real test servers: its options (`private_ssh_key`, `known_host_key`,
//! `remote_user`, `remote_password`, the cloud credentials) become key files and backend options, and the
//! backup and restore actions work through them; a wrong host key or password fails the action clearly.

use std::fs;

use duplicity_charm::backend;
use serde_json::{json, Value};

use super::juju_support::{mode, FakeJuju};
use super::support::{assert_same_tree, build_sample, server, unique};

const SOURCE: &str = "/srv/data";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A unit backing up the sample tree to `backend` at `remote_backup_url`, with `extra` options.
fn unit(name: &str, backend: &str, remote_backup_url: &str, extra: &[(&str, Value)]) -> FakeJuju {
    let j = FakeJuju::new(name);
    let mut cfg = vec![
        ("backend", json!(backend)),
        ("remote_backup_url", json!(remote_backup_url)),
        ("encryption_passphrase", json!("remote passphrase")),
        ("aux_backup_directory", json!(SOURCE)),
    ];
    cfg.extend(extra.iter().cloned());
    j.set_config(&cfg);
    for hook in ["install", "config-changed"] {
        let r = j.hook(hook);
        assert_eq!(r.code, 0, "{hook}: {r:?}");
    }
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    build_sample(&j.root(SOURCE));
    j
}

/// Backup, then a restore into a new directory, compared with the source.
fn backup_and_restore(j: &FakeJuju) {
    let r = j.action_ok("backup", json!({}));
    assert_eq!(r["type"], "full", "{r:?}");
    let r = j.action_ok("restore", json!({"time": "now"}));
    assert_same_tree(&j.root(SOURCE), &j.root(&r["target"]), "charm restore");
}

fn sftp_url(dir: &str) -> String {
    format!("127.0.0.1:{}/{dir}", server("SSH_PORT"))
}

fn known_host_line() -> String {
    fs::read_to_string(server("SSH_KNOWN_HOSTS"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn charm_sftp_with_its_key_file_and_known_hosts() {
    let key = fs::read(server("SSH_KEY_ED25519")).unwrap();
    let j = unit(
        "remote-sftp-key",
        "sftp",
        &sftp_url(&unique("charm")),
        &[
            ("remote_user", json!(server("SSH_USER"))),
            ("private_ssh_key", json!(b64(&key))),
            ("known_host_key", json!(known_host_line())),
        ],
    );
    let key_file = j.root("/root/.ssh/duplicity_id_rsa");
    assert_eq!(fs::read(&key_file).unwrap(), key);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&j.root("/root/.ssh")), 0o700);
    backup_and_restore(&j);
}

#[test]
fn charm_sftp_with_a_password() {
    let j = unit(
        "remote-sftp-pw",
        "scp",
        &sftp_url(&unique("charm")),
        &[
            ("remote_user", json!(server("SSH_USER"))),
            ("remote_password", json!(server("SSH_PASSWORD"))),
            ("known_host_key", json!(known_host_line())),
        ],
    );
    backup_and_restore(&j);
}

#[test]
fn charm_sftp_refuses_a_changed_host_key_naming_it() {
    let wrong = fs::read_to_string(server("SSH_KNOWN_HOSTS_WRONG")).unwrap();
    let j = unit(
        "remote-sftp-wrong-host",
        "sftp",
        &sftp_url(&unique("charm")),
        &[
            ("remote_user", json!(server("SSH_USER"))),
            ("remote_password", json!(server("SSH_PASSWORD"))),
            ("known_host_key", json!(wrong.trim())),
        ],
    );
    let r = j.action("backup", json!({}));
    assert_eq!(r.code, 0, "an action failure is not a hook error: {r:?}");
    let msg = j.action_failed().expect("the backup action fails");
    assert!(
        msg.contains("127.0.0.1") && msg.contains("known_hosts"),
        "{msg}"
    );
    assert!(!msg.contains(server("SSH_PASSWORD")), "{msg}");
}

/// A unit backing up to a new directory of the rsync daemon's module with `password`.
fn rsyncd_unit(name: &str, password: &str) -> FakeJuju {
    let url = format!(
        "127.0.0.1:{}::/{}/{}",
        server("RSYNCD_PORT"),
        server("RSYNCD_MODULE"),
        unique("charm")
    );
    let creds = [
        ("remote_user", json!(server("RSYNCD_USER"))),
        ("remote_password", json!(password)),
    ];
    unit(name, "rsync", &url, &creds)
}

#[test]
fn charm_rsync_daemon_with_remote_password() {
    backup_and_restore(&rsyncd_unit("remote-rsyncd", server("RSYNCD_PASSWORD")));
}

#[test]
fn charm_rsync_daemon_wrong_password_fails_the_action_clearly() {
    let j = rsyncd_unit("remote-rsyncd-wrong", "not-the-Passw0rd");
    let r = j.action("backup", json!({}));
    assert_eq!(r.code, 0, "{r:?}");
    let msg = j.action_failed().expect("the backup action fails");
    assert!(msg.contains("auth failed"), "{msg}");
    assert!(!msg.contains("not-the-Passw0rd"), "{msg}");
}

#[test]
fn charm_ftp_with_remote_password() {
    let url = format!("127.0.0.1:{}/{}", server("FTP_PORT"), unique("charm"));
    let creds = [
        ("remote_user", json!(server("FTP_USER"))),
        ("remote_password", json!(server("FTP_PASSWORD"))),
    ];
    backup_and_restore(&unit("remote-ftp", "ftp", &url, &creds));
}

#[test]
fn charm_azure_with_its_connection_string() {
    // The container is named after the unit, as with the Python charm: empty it so a second run
    // against the same Azurite starts from a full backup again.
    let conn = server("AZURE_CONNECTION_STRING");
    let opts = backend::OpenOptions {
        azure_connection_string: Some(conn.to_string()),
        ..backend::OpenOptions::new()
    };
    let container = backend::open("azure://duplicity-0", &opts).unwrap();
    container.delete(&container.list().unwrap()).unwrap();
    let j = unit(
        "remote-azure",
        "azure",
        "azure://",
        &[("azure_connection_string", json!(conn))],
    );
    backup_and_restore(&j);
}

#[test]
fn charm_s3_with_its_endpoint_and_region_options() {
    let url = format!("s3:///dc-charm/{}", unique("charm"));
    let j = unit(
        "remote-s3",
        "s3",
        &url,
        &[
            ("aws_access_key_id", json!(server("S3_ACCESS_KEY_ID"))),
            (
                "aws_secret_access_key",
                json!(server("S3_SECRET_ACCESS_KEY")),
            ),
            ("s3_endpoint_url", json!(server("S3_ENDPOINT"))),
            ("s3_region_name", json!(server("S3_REGION"))),
        ],
    );
    backup_and_restore(&j);
}

#[test]
fn charm_s3_multipart_options_reach_the_store() {
    use duplicity_charm::backend::s3::S3Backend;
    use duplicity_charm::backend::Backend;
    let prefix = unique("charm-mp");
    let j = unit(
        "remote-s3-multipart",
        "s3",
        &format!("s3:///dc-charm/{prefix}"),
        &[
            ("aws_access_key_id", json!(server("S3_ACCESS_KEY_ID"))),
            (
                "aws_secret_access_key",
                json!(server("S3_SECRET_ACCESS_KEY")),
            ),
            ("s3_endpoint_url", json!(server("S3_ENDPOINT"))),
            ("s3_region_name", json!(server("S3_REGION"))),
            ("s3_multipart_chunk_size", json!(5)),
            ("s3_multipart_max_procs", json!(2)),
        ],
    );
    backup_and_restore(&j);
    // The sample's ~6 MiB of random data make one volume above 5 MiB: sent as 5 MiB parts, which
    // S3 shows in the ETag ("-<parts>"). Without the option the charm sends it in one request.
    // The charm stores under the unit's name (duplicity/0 -> duplicity-0).
    let unit_dir = super::juju_support::UNIT.replace('/', "-");
    let b = S3Backend::from_url(
        &format!("boto3+s3://dc-charm/{prefix}/{unit_dir}"),
        &crate::backend_conformance::s3_opts(),
    )
    .unwrap();
    let vol = b
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.contains(".vol1.difftar"))
        .expect("a volume");
    let tmp = tempfile::tempdir().unwrap();
    b.get(&vol, &tmp.path().join("v")).unwrap();
    let size = fs::metadata(tmp.path().join("v")).unwrap().len();
    let parts = size.div_ceil(5 << 20);
    assert!(parts >= 2, "{vol}: {size} bytes");
    let etag = b.etag(&vol).unwrap();
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{vol} ({size} bytes) in 5 MiB parts: {etag}"
    );
}

#[test]
fn charm_s3_ca_certificate_trusts_a_private_ca() {
    use crate::backend_s3::{make_tls_certs, start_tls_listing_server};
    let dir = tempfile::tempdir().unwrap();
    make_tls_certs(dir.path());
    let (port, mut server) = start_tls_listing_server(dir.path());
    let url = format!("127.0.0.1:{port}/bkt");
    let keys = [
        ("aws_access_key_id", json!("AKIATESTTESTTEST")),
        ("aws_secret_access_key", json!("not-checked-by-this-server")),
    ];
    let j = unit("remote-s3-ca", "s3", &url, &keys);
    // The store's certificate chains to a CA the system does not know.
    j.action("collection-status", json!({}));
    let msg = j.action_failed().expect("refused without the CA");
    assert!(msg.contains("TLS certificate is not trusted"), "{msg}");
    // With the CA as s3_ca_certificate, the same store is trusted.
    let ca = fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let mut cfg = vec![
        ("backend", json!("s3")),
        ("remote_backup_url", json!(url)),
        ("encryption_passphrase", json!("remote passphrase")),
        ("aux_backup_directory", json!(SOURCE)),
        ("s3_ca_certificate", json!(ca)),
    ];
    cfg.extend(keys.iter().cloned());
    j.set_config(&cfg);
    let r = j.hook("config-changed");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(j.last_status().0, "active", "{:?}", j.last_status());
    j.action_ok("collection-status", json!({}));
    let _ = server.kill();
    let _ = server.wait();
}
