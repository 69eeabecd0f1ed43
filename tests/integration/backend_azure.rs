//! azure:// beyond the conformance suite, against Azurite: the container is created on first use, both
//! URL forms reach the same container, a wrong AccountKey fails clearly without the key in the message,
//! an unreachable endpoint is a temporary failure, and a large file goes up in blocks.

use std::fs;

use duplicity_charm::backend::azure::AzureBackend;
use duplicity_charm::backend::{self, Backend, OpenOptions};

use crate::support::*;

const MANIFEST: &str = "duplicity-full.20240101T000000Z.manifest";

fn opts_with(conn: &str) -> OpenOptions {
    OpenOptions {
        azure_connection_string: Some(conn.to_string()),
        attempts: 1,
        ..OpenOptions::new()
    }
}

fn opts() -> OpenOptions {
    opts_with(server("AZURE_CONNECTION_STRING"))
}

/// The AccountKey of the test connection string.
fn account_key() -> &'static str {
    server("AZURE_CONNECTION_STRING")
        .split(';')
        .find_map(|kv| kv.strip_prefix("AccountKey="))
        .expect("AccountKey in AZURE_CONNECTION_STRING")
}

#[test]
fn container_is_created_and_both_url_forms_reach_it() {
    let c = unique("azc");
    let ws = Ws::new("azure-forms");
    let src = ws.p("f");
    fs::write(&src, b"payload").unwrap();
    let a = backend::open(&format!("azure://{c}"), &opts()).unwrap();
    a.put(&src, MANIFEST).unwrap();
    // The charm's form (azure:///<unit-name>) sees what the other put.
    let b = backend::open(&format!("azure:///{c}"), &opts()).unwrap();
    assert_eq!(b.list().unwrap(), [MANIFEST]);
    assert_eq!(b.describe(), format!("azure://{c}"));
    let got = ws.p("got");
    b.get(MANIFEST, &got).unwrap();
    assert_eq!(fs::read(&got).unwrap(), b"payload");
}

#[test]
fn wrong_account_key_fails_clearly_without_the_key() {
    let good = account_key();
    // A well-formed key that is not the account's.
    let wrong_key = "d3Jvbmcta2V5LWZvci10aGUtdGVzdC1hY2NvdW50LW5vdC10aGUtcmVhbC1vbmU=";
    let conn = server("AZURE_CONNECTION_STRING").replace(good, wrong_key);
    let c = unique("azwrong");
    let b = backend::open(&format!("azure://{c}"), &opts_with(&conn)).unwrap();
    let e = b.list().unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, backend::BackendError::AuthRefused { .. }),
        "{msg}"
    );
    assert!(msg.contains(&c), "names the container: {msg}");
    assert!(msg.contains("AZURE_CONNECTION_STRING"), "{msg}");
    assert!(!msg.contains(wrong_key) && !msg.contains(good), "{msg}");
    // The CLI says the same, and the key shows nowhere in its output.
    let ws = Ws::new("azure-wrong-cli");
    let r = ws.run_env(
        Tool::Ours,
        Enc::Plain,
        &["collection-status", &format!("azure://{c}")],
        &[("AZURE_CONNECTION_STRING", &conn)],
    );
    assert!(!r.success(), "{}", r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("AZURE_CONNECTION_STRING"), "{all}");
    assert!(!all.contains(wrong_key), "{all}");
}

#[test]
fn unreachable_endpoint_is_transient() {
    // A loopback port nothing listens on (bound then closed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        account_key()
    );
    let b = AzureBackend::from_url("azure://unreachable", &opts_with(&conn)).unwrap();
    let e = b.list().unwrap_err();
    assert!(matches!(e, backend::BackendError::Transient { .. }), "{e}");
    assert!(!e.to_string().contains(account_key()), "{e}");
}

#[test]
fn missing_connection_string_is_explained() {
    let e = backend::open("azure://backups", &OpenOptions::new())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("AZURE_CONNECTION_STRING"), "{e}");
}

#[test]
fn large_file_goes_up_in_blocks() {
    let c = unique("azblk");
    let b = AzureBackend::from_url(&format!("azure://{c}"), &opts()).unwrap();
    let ws = Ws::new("azure-blocks");
    let small = ws.p("small");
    fs::write(&small, b"small").unwrap();
    b.put(&small, "small").unwrap();
    assert_eq!(b.committed_blocks("small").unwrap(), 0, "one request");
    let big = ws.p("big");
    // 16 MiB + 100 bytes: two full 8 MiB blocks and a tiny third one; the download's last range is
    // tiny too (Azurite refused small closed ranges once, through the SDK's CRC64 header).
    let sum = write_large_file(&big, 3, (16 << 20) + 100);
    b.put(&big, "big").unwrap();
    assert_eq!(b.committed_blocks("big").unwrap(), 3);
    let got = ws.p("got");
    b.get("big", &got).unwrap();
    assert_eq!(sha1_file(&got), sum);
}

#[test]
fn list_follows_the_pages() {
    let c = unique("azpage");
    let mut b = AzureBackend::from_url(&format!("azure://{c}"), &opts()).unwrap();
    b.set_list_page_size(7);
    let ws = Ws::new("azure-pages");
    let src = ws.p("x");
    fs::write(&src, b"x").unwrap();
    let mut names: Vec<String> = (0..30)
        .map(|i| {
            format!("duplicity-inc.20240101T0000{i:02}Z.to.20240101T0001{i:02}Z.vol1.difftar.gpg")
        })
        .collect();
    for n in &names {
        b.put(&src, n).unwrap();
    }
    names.sort();
    assert_eq!(b.list().unwrap(), names);
}

/// A connection string with a SharedAccessSignature (a container SAS made with the account key) works,
/// even though such a SAS may not create the container, and its signature shows in no error.
#[test]
fn shared_access_signature_connection_string() {
    use azure_storage::shared_access_signature::service_sas::BlobSasPermissions;
    use azure_storage::shared_access_signature::SasToken;
    use azure_storage::{CloudLocation, StorageCredentials};
    use azure_storage_blobs::prelude::ClientBuilder;

    let endpoint = server("AZURE_CONNECTION_STRING")
        .split(';')
        .find_map(|kv| kv.strip_prefix("BlobEndpoint="))
        .unwrap();
    let c = unique("azsas");
    let rt = backend::runtime::new_runtime().unwrap();
    let admin = ClientBuilder::with_location(
        CloudLocation::Custom {
            account: "devstoreaccount1".into(),
            uri: endpoint.into(),
        },
        StorageCredentials::access_key(
            "devstoreaccount1",
            azure_core::auth::Secret::new(account_key().to_string()),
        ),
    )
    .container_client(c.clone());
    let perms = BlobSasPermissions {
        read: true,
        add: true,
        create: true,
        write: true,
        delete: true,
        list: true,
        ..Default::default()
    };
    let expiry = azure_core::date::parse_rfc3339("2099-01-01T00:00:00Z").unwrap();
    let token = rt
        .block_on(async {
            admin.create().await?;
            admin.shared_access_signature(perms, expiry).await
        })
        .unwrap()
        .token()
        .unwrap();
    let sig = token
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap()
        .to_string();
    let conn = format!("BlobEndpoint={endpoint};SharedAccessSignature={token}");
    let b = backend::open(&format!("azure://{c}"), &opts_with(&conn)).unwrap();
    let ws = Ws::new("azure-sas");
    let src = ws.p("f");
    fs::write(&src, b"payload").unwrap();
    b.put(&src, MANIFEST).unwrap();
    assert_eq!(b.list().unwrap(), [MANIFEST]);
    let got = ws.p("got");
    b.get(MANIFEST, &got).unwrap();
    assert_eq!(fs::read(&got).unwrap(), b"payload");
    let e = b.get("missing", &got).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    b.delete(&[MANIFEST.to_string()]).unwrap();
    assert!(b.list().unwrap().is_empty());
    // The same token on another container is refused, without the signature in the message.
    let other = backend::open(&format!("azure://{}", unique("azsas2")), &opts_with(&conn)).unwrap();
    let msg = other.list().unwrap_err().to_string();
    assert!(msg.contains("AZURE_CONNECTION_STRING"), "{msg}");
    assert!(!msg.contains(&sig) && !msg.contains(&token), "{msg}");
}
