//! duplicity's S3 and Azure upload options (issue 13), seen from the servers: storage classes (volumes
//! only for the archive classes, as duplicity), server-side encryption headers, KMS grants, multipart
//! part sizes and parallel parts on moto; blob tiers and block sizes on Azurite.

use std::fs;

use aws_sdk_s3::types::{ServerSideEncryption as Sse, StorageClass as Sc};
use duplicity_charm::backend::azure::{AzureBackend, AzureUploadOptions};
use duplicity_charm::backend::s3::S3Backend;
use duplicity_charm::backend::{Backend, OpenOptions};

use crate::backend_conformance::s3_opts;
use crate::s3_object_lock::Api;
use crate::support::*;

fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", server("S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", server("S3_SECRET_ACCESS_KEY")),
    ]
}

/// A small tree backed up with `extra` options to a new bucket; returns the workspace, the source,
/// the bucket and the URL.
fn backup_with(name: &str, extra: &[&str]) -> (Ws, std::path::PathBuf, String, String) {
    let api = Api::connect();
    let bucket = api.bucket(false);
    let url = format!("boto3+s3://{bucket}/h");
    let ws = Ws::new(name);
    let src = ws.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), text_bytes(1, 50_000)).unwrap();
    fs::write(src.join("b.bin"), random_bytes(2, 100_000)).unwrap();
    let ep = format!("--s3-endpoint-url={}", server("S3_ENDPOINT"));
    let mut args = vec!["full", "--current-time", "1700000000", ep.as_str()];
    args.extend(extra);
    let s = src.to_str().unwrap().to_string();
    args.extend([s.as_str(), url.as_str()]);
    ws.run_env(Tool::Ours, Enc::Pass(PASS), &args, &s3_env())
        .ok();
    (ws, src, bucket, url)
}

fn is_metadata(key: &str) -> bool {
    key.contains(".manifest") || key.contains("signatures")
}

#[test]
fn archive_classes_keep_manifests_and_signatures_in_standard() {
    let api = Api::connect();
    let (ws, _src, bucket, url) = backup_with("s3-glacier", &["--s3-use-glacier"]);
    let keys = api.keys(&bucket);
    assert_eq!(keys.len(), 3, "{keys:?}");
    for k in &keys {
        let class = api.head(&bucket, k).storage_class().cloned();
        if is_metadata(k) {
            assert!(
                class.is_none() || class == Some(Sc::Standard),
                "{k}: {class:?}"
            );
        } else {
            assert_eq!(class, Some(Sc::Glacier), "{k}");
        }
    }
    // Listing and status read the manifests; a restore says the volumes must be restored first.
    let ep = format!("--s3-endpoint-url={}", server("S3_ENDPOINT"));
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASS),
        &["collection-status", &ep, &url],
        &s3_env(),
    )
    .ok();
    let dst = ws.p("dst");
    let run = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "restore",
                "--num-retries",
                "1",
                &ep,
                &url,
                dst.to_str().unwrap(),
            ],
            &s3_env(),
        )
        .fails();
    let out = run.output();
    assert!(out.contains("archive storage class"), "{out}");
    assert!(out.contains("restore-object"), "{out}");
}

#[test]
fn infrequent_access_and_deep_archive_classes() {
    let api = Api::connect();
    let (_ws, _src, bucket, _url) = backup_with("s3-ia", &["--s3-use-ia"]);
    for k in api.keys(&bucket) {
        // duplicity puts everything in IA, manifests too.
        assert_eq!(
            api.head(&bucket, &k).storage_class(),
            Some(&Sc::StandardIa),
            "{k}"
        );
    }
    let (_ws, _src, bucket, _url) =
        backup_with("s3-deep", &["--s3-use-deep-archive", "--s3-use-onezone-ia"]);
    for k in api.keys(&bucket) {
        // duplicity's precedence: onezone-ia before deep-archive.
        assert_eq!(
            api.head(&bucket, &k).storage_class(),
            Some(&Sc::OnezoneIa),
            "{k}"
        );
    }
}

#[test]
fn server_side_encryption_headers_and_kms_grant() {
    let api = Api::connect();
    let (ws, src, bucket, url) = backup_with("s3-sse", &["--s3-use-server-side-encryption"]);
    for k in api.keys(&bucket) {
        let h = api.head(&bucket, &k);
        assert_eq!(h.server_side_encryption(), Some(&Sse::Aes256), "{k}");
    }
    // Still readable: the server decrypts.
    let dst = ws.p("dst");
    let ep = format!("--s3-endpoint-url={}", server("S3_ENDPOINT"));
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASS),
        &["restore", &ep, &url, dst.to_str().unwrap()],
        &s3_env(),
    )
    .ok();
    assert_same_tree(&src, &dst, "restore of an SSE backup");

    let grantee = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let grant = format!("id={grantee}");
    let (_ws, _src, bucket, _url) = backup_with(
        "s3-kms",
        &[
            "--s3-use-server-side-kms-encryption",
            "--s3-kms-key-id",
            "alias/backups",
            "--s3-kms-grant",
            &grant,
        ],
    );
    for k in api.keys(&bucket) {
        let h = api.head(&bucket, &k);
        assert_eq!(h.server_side_encryption(), Some(&Sse::AwsKms), "{k}");
        assert_eq!(h.ssekms_key_id(), Some("alias/backups"), "{k}");
        let acl = api
            .rt
            .block_on(api.client.get_object_acl().bucket(&bucket).key(&k).send())
            .unwrap();
        assert!(
            acl.grants().iter().any(|g| {
                g.permission().map(|p| p.as_str()) == Some("FULL_CONTROL")
                    && g.grantee().and_then(|e| e.id()) == Some(grantee)
            }),
            "{k}: {:?}",
            acl.grants()
        );
    }
    // KMS without a key: refused before anything is stored.
    let ws = Ws::new("s3-kms-nokey");
    fs::create_dir_all(ws.p("src")).unwrap();
    let run = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "full",
                "--s3-use-server-side-kms-encryption",
                &ep,
                ws.p("src").to_str().unwrap(),
                "boto3+s3://dc-never-made/x",
            ],
            &s3_env(),
        )
        .fails();
    assert!(run.output().contains("--s3-kms-key-id"), "{}", run.output());
}

#[test]
fn multipart_chunk_size_and_parallel_parts() {
    let bucket = Api::connect().bucket(false);
    let ws = Ws::new("s3-chunks");
    let big = ws.p("big");
    let sum = write_large_file(&big, 11, 12 << 20);
    for (chunk_mib, procs, parts) in [(5u64, 1usize, 3), (6, 3, 2), (20, 4, 1)] {
        let mut o = s3_opts();
        o.attempts = 1;
        o.s3.multipart_chunk_size = Some(chunk_mib << 20);
        o.s3.multipart_max_procs = Some(procs);
        let b = S3Backend::from_url(&format!("boto3+s3://{bucket}/p"), &o).unwrap();
        let name = format!("big-{chunk_mib}");
        b.put(&big, &name).unwrap();
        let etag = b.etag(&name).unwrap();
        let etag = etag.trim_matches('"');
        if parts == 1 {
            assert!(
                !etag.contains('-'),
                "one PutObject under the chunk size: {etag}"
            );
        } else {
            assert!(
                etag.ends_with(&format!("-{parts}")),
                "{chunk_mib} MiB parts: {etag}"
            );
        }
        let got = ws.p("got");
        b.get(&name, &got).unwrap();
        assert_eq!(sha1_file(&got), sum, "{name}");
    }
}

fn azure_opts(upload: AzureUploadOptions) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.attempts = 1;
    o.azure_connection_string = Some(server("AZURE_CONNECTION_STRING").to_string());
    o.azure = upload;
    o.is_metadata = Some(|n| n.contains(".manifest") || n.contains("signatures"));
    o
}

#[test]
fn azure_blob_tier_and_block_sizes() {
    let ws = Ws::new("az-tier");
    let small = ws.p("small");
    fs::write(&small, b"small file").unwrap();
    let big = ws.p("big");
    let sum = write_large_file(&big, 4, 3 << 20);
    // Cool: every blob. Archive: volumes only, manifests keep the default tier.
    let container = unique("dc-tier").to_lowercase();
    let b = AzureBackend::from_url(
        &format!("azure://{container}"),
        &azure_opts(AzureUploadOptions {
            blob_tier: Some("Cool".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    b.put(&small, "duplicity-full.20240101T000000Z.manifest.gpg")
        .unwrap();
    b.put(&small, "duplicity-full.20240101T000000Z.vol1.difftar.gpg")
        .unwrap();
    for n in b.list().unwrap() {
        assert_eq!(b.blob_tier(&n).unwrap().as_deref(), Some("Cool"), "{n}");
    }
    let b = AzureBackend::from_url(
        &format!("azure://{container}"),
        &azure_opts(AzureUploadOptions {
            blob_tier: Some("archive".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    b.put(&small, "duplicity-full.20240102T000000Z.manifest.gpg")
        .unwrap();
    b.put(&small, "duplicity-full.20240102T000000Z.vol1.difftar.gpg")
        .unwrap();
    assert_eq!(
        b.blob_tier("duplicity-full.20240102T000000Z.vol1.difftar.gpg")
            .unwrap()
            .as_deref(),
        Some("Archive")
    );
    assert_ne!(
        b.blob_tier("duplicity-full.20240102T000000Z.manifest.gpg")
            .unwrap()
            .as_deref(),
        Some("Archive")
    );

    // 3 MiB with 1 MiB single puts and 1 MiB blocks: three committed blocks, sent one or two at once.
    for connections in [1, 2] {
        let b = AzureBackend::from_url(
            &format!("azure://{container}"),
            &azure_opts(AzureUploadOptions {
                max_single_put_size: Some(1 << 20),
                max_block_size: Some(1 << 20),
                max_connections: Some(connections),
                ..Default::default()
            }),
        )
        .unwrap();
        let name = format!("big-{connections}");
        b.put(&big, &name).unwrap();
        assert_eq!(b.committed_blocks(&name).unwrap(), 3, "{name}");
        let got = ws.p("got");
        b.get(&name, &got).unwrap();
        assert_eq!(sha1_file(&got), sum, "{name}");
    }
    // Under the single-put size: one request, no blocks.
    let b = AzureBackend::from_url(
        &format!("azure://{container}"),
        &azure_opts(AzureUploadOptions {
            max_single_put_size: Some(4 << 20),
            ..Default::default()
        }),
    )
    .unwrap();
    b.put(&big, "whole").unwrap();
    assert_eq!(b.committed_blocks("whole").unwrap(), 0);
}

#[test]
fn ssl_cacert_file_and_path_trust_a_private_ca() {
    use crate::backend_s3::{make_tls_certs, start_tls_listing_server};
    let ws = Ws::new("s3-cacert");
    let dir = ws.p("tls");
    fs::create_dir_all(&dir).unwrap();
    make_tls_certs(&dir);
    let (port, mut server) = start_tls_listing_server(&dir);
    let url = format!("s3://127.0.0.1:{port}/bkt/p");
    let creds = [
        ("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST"),
        ("AWS_SECRET_ACCESS_KEY", "not-checked-by-this-server"),
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["collection-status", "--num-retries", "1"];
        args.extend(extra);
        args.push(&url);
        ws.run_env(Tool::Ours, Enc::Pass(PASS), &args, &creds)
    };
    let out = run(&[]).fails().output();
    assert!(out.contains("TLS certificate is not trusted"), "{out}");
    let ca = dir.join("ca.pem");
    let out = run(&["--ssl-cacert-file", ca.to_str().unwrap()])
        .ok()
        .output();
    assert!(!out.contains("certificate"), "{out}");
    let cas = ws.p("cas");
    fs::create_dir_all(&cas).unwrap();
    fs::copy(&ca, cas.join("private-ca.pem")).unwrap();
    fs::write(cas.join("README"), b"not a certificate").unwrap();
    let out = run(&["--ssl-cacert-path", cas.to_str().unwrap()])
        .ok()
        .output();
    assert!(!out.contains("certificate"), "{out}");
    let out = run(&["--ssl-cacert-file", ws.p("cas/README").to_str().unwrap()])
        .fails()
        .output();
    assert!(out.contains("no PEM certificate"), "{out}");
    let _ = server.kill();
    let _ = server.wait();
}
