//! S3 Object Lock (issue 16) on the moto server: every object a backup stores carries the retention
//! asked for (read back through the S3 API), the unit's own keys cannot delete or overwrite a locked
//! version (the compromised-unit scenario) while backups and restores go on, and retention keeps
//! locked chains, saying until when.

use std::fs;

use aws_sdk_s3::types::ObjectLockMode;
use duplicity_charm::backend::s3::{LockMode, ObjectLock, S3Backend};
use duplicity_charm::backend::{self, Backend};

use crate::backend_conformance::s3_opts;
use crate::support::*;

/// An S3 client of our own on moto, with the same keys the unit has: what an attacker who took the
/// unit could do with them.
pub struct Api {
    pub rt: tokio::runtime::Runtime,
    pub client: aws_sdk_s3::Client,
}

impl Api {
    pub fn connect() -> Api {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(
                server("S3_REGION").to_string(),
            ))
            .endpoint_url(server("S3_ENDPOINT"))
            .force_path_style(true)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                server("S3_ACCESS_KEY_ID"),
                server("S3_SECRET_ACCESS_KEY"),
                None,
                None,
                "test",
            ))
            .build();
        Api {
            rt: duplicity_charm::backend::runtime::new_runtime().unwrap(),
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    /// A new bucket, with Object Lock (and so versioning) when `locked`.
    pub fn bucket(&self, locked: bool) -> String {
        let b = unique("dc-lock");
        self.rt
            .block_on(
                self.client
                    .create_bucket()
                    .bucket(&b)
                    .object_lock_enabled_for_bucket(locked)
                    .send(),
            )
            .unwrap();
        b
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.client.list_objects_v2().bucket(bucket).send())
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// Every (key, version id) stored, delete markers left out.
    pub fn versions(&self, bucket: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(self.client.list_object_versions().bucket(bucket).send())
            .unwrap();
        out.versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap().to_string(),
                    v.version_id().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.rt
            .block_on(self.client.head_object().bucket(bucket).key(key).send())
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"))
    }

    pub fn get_version(&self, bucket: &str, key: &str, version: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .version_id(version)
                .send()
                .await
                .unwrap();
            out.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", server("S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", server("S3_SECRET_ACCESS_KEY")),
    ]
}

/// A source with one 12 MiB file (so its volume goes up in parts of 5 MiB) and a few small ones.
fn source(ws: &Ws) -> std::path::PathBuf {
    let src = ws.p("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("big.bin"), random_bytes(7, 12 << 20)).unwrap();
    fs::write(src.join("d/a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("b.txt"), text_bytes(3, 10_000)).unwrap();
    src
}

fn ours(ws: &Ws, args: &[&str]) -> Run {
    let env = s3_env();
    ws.run_env(Tool::Ours, Enc::Pass(PASS), args, &env)
}

#[test]
fn locked_backups_resist_the_units_keys_and_retention_says_until_when() {
    let api = Api::connect();
    let bucket = api.bucket(true);
    let url = format!("boto3+s3://{bucket}/host");
    let ws = Ws::new("s3-lock");
    let src = source(&ws);
    let ep = format!("--s3-endpoint-url={}", server("S3_ENDPOINT"));
    let lock = [
        "--s3-object-lock-mode",
        "compliance",
        "--s3-object-lock-retain",
        "2D",
        "--s3-multipart-chunk-size",
        "5",
    ];
    let before = now();
    // Backup times a minute apart, in the past (the runs may take less than a second each; a restore
    // reads the state as of now).
    let times: Vec<String> = (0..3)
        .map(|i| (before - 180 + 60 * i).to_string())
        .collect();
    let mut args = vec!["full", "--current-time", times[0].as_str(), ep.as_str()];
    args.extend(lock);
    let (s, u) = (src.to_str().unwrap().to_string(), url.clone());
    args.extend([s.as_str(), u.as_str()]);
    ours(&ws, &args).ok();
    let after = now();

    // Every stored object is locked in compliance mode until its upload + 2 days (HeadObject: moto
    // answers GetObjectRetention with the object's body).
    let keys = api.keys(&bucket);
    assert!(keys.len() >= 3, "{keys:?}");
    let mut multipart = 0;
    for k in &keys {
        let h = api.head(&bucket, k);
        assert_eq!(
            h.object_lock_mode(),
            Some(&ObjectLockMode::Compliance),
            "{k}"
        );
        let until = h
            .object_lock_retain_until_date()
            .expect("retain-until")
            .secs();
        assert!(
            until >= before + 2 * 86400 && until <= after + 2 * 86400 + 1,
            "{k}: locked until {until}, backup ran {before}..{after}"
        );
        if h.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .contains('-')
        {
            multipart += 1;
        }
    }
    assert!(multipart >= 1, "the 12 MiB volume went up in parts");

    // The compromised unit: its keys cannot delete a locked version, with or without the governance
    // bypass, nor replace what it holds: an overwrite only adds a version.
    let versions = api.versions(&bucket);
    assert_eq!(versions.len(), keys.len());
    for (k, v) in &versions {
        for bypass in [false, true] {
            let res = api.rt.block_on(
                api.client
                    .delete_object()
                    .bucket(&bucket)
                    .key(k)
                    .version_id(v)
                    .bypass_governance_retention(bypass)
                    .send(),
            );
            let e = res.expect_err("a locked version was deleted");
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e.into_service_error())
                .map(str::to_string);
            assert_eq!(code.as_deref(), Some("AccessDenied"), "{k}");
        }
    }
    let manifest = keys.iter().find(|k| k.ends_with(".manifest.gpg")).unwrap();
    let (_, old_version) = versions.iter().find(|(k, _)| k == manifest).unwrap();
    let original = api.get_version(&bucket, manifest, old_version);
    api.rt
        .block_on(
            api.client
                .put_object()
                .bucket(&bucket)
                .key(manifest)
                .body(b"ransom note".to_vec().into())
                .send(),
        )
        .unwrap();
    assert_eq!(api.get_version(&bucket, manifest, old_version), original);
    // Put the backup's manifest back as the current version (what an operator recovering from the
    // overwrite does with admin keys: copy the locked version over).
    api.rt
        .block_on(
            api.client
                .copy_object()
                .bucket(&bucket)
                .key(manifest)
                .copy_source(format!("{bucket}/{manifest}?versionId={old_version}"))
                .send(),
        )
        .unwrap();

    // Backups and restores keep working on the locked bucket.
    fs::write(src.join("d/new.txt"), b"after the lock\n").unwrap();
    let mut args = vec![
        "incremental",
        "--current-time",
        times[1].as_str(),
        ep.as_str(),
    ];
    args.extend(lock);
    args.extend([s.as_str(), u.as_str()]);
    ours(&ws, &args).ok();
    let dst = ws.p("restored");
    ours(&ws, &["restore", &ep, &url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "restore from the locked bucket");

    // A second chain, then retention: the first chain is locked, so it stays, and the output says
    // until when.
    let mut args = vec!["full", "--current-time", times[2].as_str(), ep.as_str()];
    args.extend(lock);
    args.extend([s.as_str(), u.as_str()]);
    ours(&ws, &args).ok();
    let listed = backend::open(&url, &{
        let mut o = s3_opts();
        o.attempts = 1;
        o
    })
    .unwrap()
    .list()
    .unwrap();
    let run = ours(&ws, &["remove-all-but-n-full", "1", "--force", &ep, &url]).ok();
    let out = run.output();
    assert!(out.contains("is locked on the target until"), "{out}");
    assert!(out.contains("(COMPLIANCE)"), "{out}");
    assert!(out.contains("not deleted"), "{out}");
    let after_retention = backend::open(&url, &{
        let mut o = s3_opts();
        o.attempts = 1;
        o
    })
    .unwrap()
    .list()
    .unwrap();
    assert_eq!(after_retention, listed, "retention deleted locked files");
    let run = ours(&ws, &["remove-all-but-n-full", "1", "--json", &ep, &url]).ok();
    let out = run.output();
    assert!(out.contains("\"locked_until\""), "{out}");
}

#[test]
fn governance_lock_stops_the_unit_unless_its_keys_may_bypass() {
    let api = Api::connect();
    let bucket = api.bucket(true);
    let mut o = s3_opts();
    o.attempts = 1;
    o.s3.object_lock = Some(ObjectLock {
        mode: LockMode::Governance,
        retain: std::time::Duration::from_secs(3600),
    });
    let b = S3Backend::from_url(&format!("boto3+s3://{bucket}/p"), &o).unwrap();
    let ws = Ws::new("s3-gov");
    fs::write(ws.p("f"), b"x").unwrap();
    b.put(&ws.p("f"), "duplicity-full.20240101T000000Z.manifest")
        .unwrap();
    let lock = b
        .stored_lock("duplicity-full.20240101T000000Z.manifest")
        .unwrap()
        .expect("locked");
    assert_eq!(lock.mode, "GOVERNANCE");
    assert!(lock.until.unwrap() > now());
    let (k, v) = api.versions(&bucket).pop().unwrap();
    let res = api.rt.block_on(
        api.client
            .delete_object()
            .bucket(&bucket)
            .key(&k)
            .version_id(&v)
            .send(),
    );
    assert!(res.is_err(), "governance lock ignored");
    // Keys allowed s3:BypassGovernanceRetention (moto's test user has s3:*) can lift it: that is
    // why the README says to deny that permission to the unit, or to use compliance mode.
    api.rt
        .block_on(
            api.client
                .delete_object()
                .bucket(&bucket)
                .key(&k)
                .version_id(&v)
                .bypass_governance_retention(true)
                .send(),
        )
        .unwrap();
}

#[test]
fn object_lock_needs_a_bucket_with_it_and_makes_missing_buckets_with_it() {
    let api = Api::connect();
    let mut o = s3_opts();
    o.attempts = 1;
    o.s3.object_lock = Some(ObjectLock {
        mode: LockMode::Compliance,
        retain: std::time::Duration::from_secs(60),
    });
    let ws = Ws::new("s3-lock-bucket");
    fs::write(ws.p("f"), b"x").unwrap();
    // A bucket without Object Lock: a clear refusal, nothing stored.
    let plain = api.bucket(false);
    let b = S3Backend::from_url(&format!("boto3+s3://{plain}/p"), &o).unwrap();
    let e = b.put(&ws.p("f"), "x").unwrap_err().to_string();
    assert!(e.contains("does not have S3 Object Lock enabled"), "{e}");
    assert!(api.keys(&plain).is_empty());
    // Without the option, such a bucket has no locks to report.
    let mut free = s3_opts();
    free.attempts = 1;
    let fb = S3Backend::from_url(&format!("boto3+s3://{plain}/p"), &free).unwrap();
    fb.put(&ws.p("f"), "x").unwrap();
    assert_eq!(fb.stored_lock("x").unwrap(), None);
    // A missing bucket is made with Object Lock.
    let fresh = unique("dc-lock-new");
    let b = S3Backend::from_url(&format!("boto3+s3://{fresh}/p"), &o).unwrap();
    b.put(&ws.p("f"), "x").unwrap();
    let conf = api
        .rt
        .block_on(
            api.client
                .get_object_lock_configuration()
                .bucket(&fresh)
                .send(),
        )
        .unwrap();
    assert_eq!(
        conf.object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .map(|e| e.as_str()),
        Some("Enabled")
    );
    assert!(b.stored_lock("x").unwrap().is_some());
}
