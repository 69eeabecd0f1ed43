//! duplicity's backend options (issue 13) and S3 Object Lock (issue 16): how the S3 and Azure backends
//! store each upload, and the options of backends that run no external program here (accepted, with
//! what they mean for our in-process clients). Flattened into the CLI's options; they take effect
//! through [`BackendArgs::apply`] on the repository's backend options, the one entry.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::backend::azure::{self, AzureUploadOptions};
use crate::backend::s3::{
    LockMode, ObjectLock, S3UploadOptions, ServerSideEncryption, StorageClass, MIN_MULTIPART_CHUNK,
};
use crate::backend::OpenOptions;

/// duplicity's backend options we honour or accept.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Backends (as duplicity's; Object Lock is ours)")]
pub struct BackendArgs {
    /// s3: upload every object under S3 Object Lock in this mode (governance or compliance), kept
    /// for --s3-object-lock-retain. The bucket must have Object Lock enabled (a missing bucket is
    /// created with it). Retention commands then keep locked sets and say until when.
    #[arg(long, global = true, value_name = "MODE")]
    pub s3_object_lock_mode: Option<String>,
    /// s3: how long each object stays locked from its upload (duplicity's intervals: 90D, 12W, 1Y).
    #[arg(long, global = true, value_name = "PERIOD")]
    pub s3_object_lock_retain: Option<String>,
    /// s3: store volumes in STANDARD_IA.
    #[arg(long, global = true)]
    pub s3_use_ia: bool,
    /// s3: store volumes in ONEZONE_IA.
    #[arg(long, global = true)]
    pub s3_use_onezone_ia: bool,
    /// s3: store volumes in GLACIER (manifests and signatures stay in STANDARD).
    #[arg(long, global = true)]
    pub s3_use_glacier: bool,
    /// s3: store volumes in GLACIER_IR (manifests and signatures stay in STANDARD).
    #[arg(long, global = true)]
    pub s3_use_glacier_ir: bool,
    /// s3: store volumes in DEEP_ARCHIVE (manifests and signatures stay in STANDARD).
    #[arg(long, global = true)]
    pub s3_use_deep_archive: bool,
    /// s3: store everything in REDUCED_REDUNDANCY.
    #[arg(long, global = true)]
    pub s3_use_rrs: bool,
    /// s3: server-side encryption with S3-managed keys (AES256).
    #[arg(long, global = true)]
    pub s3_use_server_side_encryption: bool,
    /// s3: server-side encryption with a KMS key (needs --s3-kms-key-id).
    #[arg(long, global = true)]
    pub s3_use_server_side_kms_encryption: bool,
    /// s3: the KMS key of --s3-use-server-side-kms-encryption.
    #[arg(long, global = true, value_name = "KEY_ID")]
    pub s3_kms_key_id: Option<String>,
    /// s3: with KMS encryption, grant full control of each object (x-amz-grant-full-control, e.g.
    /// id=CANONICAL_ID).
    #[arg(long, global = true, value_name = "GRANT")]
    pub s3_kms_grant: Option<String>,
    /// s3: files above this many MiB go up in parts of this size (at least 5).
    #[arg(long, global = true, value_name = "MiB",
          value_parser = clap::value_parser!(u64).range(1..=5 * 1024))]
    pub s3_multipart_chunk_size: Option<u64>,
    /// s3: parts of one file sent at once.
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub s3_multipart_max_procs: Option<u32>,
    /// swift's segment size in MiB: accepted, no effect (there is no swift backend).
    #[arg(long, global = true, value_name = "MiB")]
    pub mp_segment_size: Option<u64>,
    /// azure: the access tier of every blob: Hot, Cool, Cold or Archive (with Archive, manifests
    /// and signatures keep the account's default tier).
    #[arg(long, global = true, value_name = "TIER")]
    pub azure_blob_tier: Option<String>,
    /// azure: files up to this many bytes go up in one request (default 8 MiB).
    #[arg(long, global = true, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..=5000 * 1024 * 1024))]
    pub azure_max_single_put_size: Option<u64>,
    /// azure: block size in bytes for larger files (default 8 MiB; at most 4000 MiB).
    #[arg(long, global = true, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..=4000 * 1024 * 1024))]
    pub azure_max_block_size: Option<u64>,
    /// azure: blocks of one file sent at once (each held in memory).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub azure_max_connections: Option<u32>,
    /// s3: also trust the CA certificates (PEM) in FILE, e.g. a private CA of an S3-compatible store.
    #[arg(long, global = true, value_name = "FILE")]
    pub ssl_cacert_file: Option<std::path::PathBuf>,
    /// s3: also trust the CA certificates (PEM) of every file in DIR.
    #[arg(long, global = true, value_name = "DIR")]
    pub ssl_cacert_path: Option<std::path::PathBuf>,
    /// duplicity's webdav/lftp option: accepted; certificates are still checked.
    #[arg(long, global = true)]
    pub ssl_no_check_certificate: bool,
    /// ftp: passive data connections (what our ftp client always uses).
    #[arg(long, global = true)]
    pub ftp_passive: bool,
    /// ftp: active data connections: refused (our ftp client is passive only).
    #[arg(long, global = true)]
    pub ftp_regular: bool,
    /// sftp/scp: ask for the SSH password on the terminal: accepted; the password comes from the URL
    /// or FTP_PASSWORD.
    #[arg(long, global = true)]
    pub ssh_askpass: bool,
    /// duplicity's pexpect scp program: accepted, no effect (our SSH client is in-process).
    #[arg(
        long,
        global = true,
        value_name = "COMMAND",
        allow_hyphen_values = true
    )]
    pub scp_command: Option<String>,
    /// duplicity's pexpect sftp program: accepted, no effect (our SSH client is in-process).
    #[arg(
        long,
        global = true,
        value_name = "COMMAND",
        allow_hyphen_values = true
    )]
    pub sftp_command: Option<String>,
}

/// `--s3-object-lock-mode` + `--s3-object-lock-retain` as one lock (both or neither).
pub fn object_lock(mode: Option<&str>, retain: Option<&str>) -> Result<Option<ObjectLock>> {
    let (mode, retain) = match (mode, retain) {
        (None, None) => return Ok(None),
        (Some(_), None) => bail!(
            "--s3-object-lock-mode needs --s3-object-lock-retain: how long each object stays \
             locked (e.g. 90D)"
        ),
        (None, Some(_)) => {
            bail!("--s3-object-lock-retain needs --s3-object-lock-mode: governance or compliance")
        }
        (Some(m), Some(r)) => (m, r),
    };
    let mode = LockMode::parse(mode).with_context(|| {
        format!("--s3-object-lock-mode {mode:?}: give governance or compliance")
    })?;
    let secs = crate::engine::timestr::parse_interval(retain)
        .ok()
        .filter(|s| *s > 0)
        .with_context(|| {
            format!(
                "--s3-object-lock-retain {retain:?}: give a period such as 30D, 12W, 1Y or 36h \
                 (s, m, h, D, W, M, Y)"
            )
        })?;
    Ok(Some(ObjectLock {
        mode,
        retain: Duration::from_secs(secs as u64),
    }))
}

impl BackendArgs {
    /// The storage class duplicity would pick: the first of rrs, ia, onezone-ia, glacier,
    /// glacier-ir, deep-archive given.
    fn storage_class(&self) -> Option<StorageClass> {
        [
            (self.s3_use_rrs, StorageClass::ReducedRedundancy),
            (self.s3_use_ia, StorageClass::StandardIa),
            (self.s3_use_onezone_ia, StorageClass::OnezoneIa),
            (self.s3_use_glacier, StorageClass::Glacier),
            (self.s3_use_glacier_ir, StorageClass::GlacierIr),
            (self.s3_use_deep_archive, StorageClass::DeepArchive),
        ]
        .into_iter()
        .find(|(on, _)| *on)
        .map(|(_, c)| c)
    }

    /// The PEM certificates of `--ssl-cacert-file` and of the files in `--ssl-cacert-path`.
    fn extra_roots(&self) -> Result<Vec<Vec<u8>>> {
        let is_pem = |b: &[u8]| b.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----");
        let mut roots = Vec::new();
        if let Some(f) = &self.ssl_cacert_file {
            let pem = std::fs::read(f)
                .with_context(|| format!("--ssl-cacert-file {}: cannot read it", f.display()))?;
            if !is_pem(&pem) {
                bail!(
                    "--ssl-cacert-file {}: no PEM certificate in it (-----BEGIN CERTIFICATE-----); \
                     give the CA's certificate in PEM form",
                    f.display()
                );
            }
            roots.push(pem);
        }
        if let Some(d) = &self.ssl_cacert_path {
            let entries = std::fs::read_dir(d)
                .with_context(|| format!("--ssl-cacert-path {}: cannot list it", d.display()))?;
            let mut found = 0;
            for e in entries.flatten() {
                // Unreadable or non-PEM files (e.g. c_rehash's other files) are skipped.
                if let Ok(pem) = std::fs::read(e.path()) {
                    if is_pem(&pem) {
                        roots.push(pem);
                        found += 1;
                    }
                }
            }
            if found == 0 {
                bail!(
                    "--ssl-cacert-path {}: no PEM certificate in it; give a directory of CA \
                     certificates in PEM form",
                    d.display()
                );
            }
        }
        Ok(roots)
    }

    /// Sets these options on the repository's backend options.
    pub fn apply(&self, backend: &mut OpenOptions) -> Result<()> {
        let sse = if self.s3_use_server_side_encryption {
            Some(ServerSideEncryption::Aes256)
        } else if self.s3_use_server_side_kms_encryption {
            let Some(key_id) = self.s3_kms_key_id.clone() else {
                bail!(
                    "--s3-use-server-side-kms-encryption needs --s3-kms-key-id: the KMS key to \
                     encrypt with"
                );
            };
            Some(ServerSideEncryption::Kms {
                key_id,
                grant_full_control: self.s3_kms_grant.clone(),
            })
        } else {
            None
        };
        let chunk = self.s3_multipart_chunk_size.map(|m| m << 20);
        if let Some(c) = chunk.filter(|c| *c < MIN_MULTIPART_CHUNK) {
            bail!(
                "--s3-multipart-chunk-size {}: S3 parts are at least 5 MiB: give 5 or more",
                c >> 20
            );
        }
        backend.s3 = S3UploadOptions {
            object_lock: object_lock(
                self.s3_object_lock_mode.as_deref(),
                self.s3_object_lock_retain.as_deref(),
            )?,
            storage_class: self.storage_class(),
            sse,
            multipart_chunk_size: chunk,
            multipart_max_procs: self.s3_multipart_max_procs.map(|n| n as usize),
        };
        if let Some(t) = &self.azure_blob_tier {
            if azure::parse_tier(t).is_none() {
                bail!("--azure-blob-tier {t:?}: give one of Hot, Cool, Cold, Archive");
            }
        }
        backend.azure = AzureUploadOptions {
            blob_tier: self.azure_blob_tier.clone(),
            max_single_put_size: self.azure_max_single_put_size.map(|n| n as usize),
            max_block_size: self.azure_max_block_size.map(|n| n as usize),
            max_connections: self.azure_max_connections.map(|n| n as usize),
        };
        if self.ftp_regular {
            bail!(
                "--ftp-regular (active FTP) is not supported: our FTP client uses passive data \
                 connections only; drop the option (or give --ftp-passive)"
            );
        }
        backend.tls_extra_roots = self.extra_roots()?;
        if self.ssl_no_check_certificate {
            crate::logging::warn(
                "--ssl-no-check-certificate: certificates are still checked (duplicity uses this \
                 option only for its webdav and lftp backends)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_lock_needs_both_options_and_good_values() {
        assert_eq!(object_lock(None, None).unwrap(), None);
        let l = object_lock(Some("Compliance"), Some("30D"))
            .unwrap()
            .unwrap();
        assert_eq!(l.mode, LockMode::Compliance);
        assert_eq!(l.retain, Duration::from_secs(30 * 86400));
        let l = object_lock(Some("governance"), Some("1h30m"))
            .unwrap()
            .unwrap();
        assert_eq!(l.mode, LockMode::Governance);
        assert_eq!(l.retain, Duration::from_secs(5400));
        for (m, r, word) in [
            (Some("governance"), None, "--s3-object-lock-retain"),
            (None, Some("3D"), "--s3-object-lock-mode"),
            (Some("strict"), Some("3D"), "governance or compliance"),
            (Some("compliance"), Some("forever"), "30D"),
        ] {
            let e = object_lock(m, r).unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        }
    }

    #[test]
    fn storage_class_as_duplicity_picks_it() {
        let mut a = BackendArgs {
            s3_use_deep_archive: true,
            s3_use_ia: true,
            ..Default::default()
        };
        assert_eq!(a.storage_class(), Some(StorageClass::StandardIa));
        a.s3_use_ia = false;
        assert_eq!(a.storage_class(), Some(StorageClass::DeepArchive));
        a.s3_use_rrs = true;
        assert_eq!(a.storage_class(), Some(StorageClass::ReducedRedundancy));
    }

    #[test]
    fn kms_needs_a_key_and_chunks_are_at_least_5_mib() {
        let mut o = OpenOptions::new();
        let a = BackendArgs {
            s3_use_server_side_kms_encryption: true,
            ..Default::default()
        };
        assert!(a
            .apply(&mut o)
            .unwrap_err()
            .to_string()
            .contains("--s3-kms-key-id"));
        let a = BackendArgs {
            s3_use_server_side_kms_encryption: true,
            s3_kms_key_id: Some("k1".into()),
            s3_kms_grant: Some("id=abc".into()),
            s3_multipart_chunk_size: Some(6),
            s3_multipart_max_procs: Some(3),
            ..Default::default()
        };
        a.apply(&mut o).unwrap();
        assert_eq!(
            o.s3.sse,
            Some(ServerSideEncryption::Kms {
                key_id: "k1".into(),
                grant_full_control: Some("id=abc".into())
            })
        );
        assert_eq!(o.s3.multipart_chunk_size, Some(6 << 20));
        assert_eq!(o.s3.multipart_max_procs, Some(3));
        let a = BackendArgs {
            s3_multipart_chunk_size: Some(4),
            ..Default::default()
        };
        assert!(a.apply(&mut o).unwrap_err().to_string().contains("5 MiB"));
        let a = BackendArgs {
            azure_blob_tier: Some("Lukewarm".into()),
            ..Default::default()
        };
        assert!(a.apply(&mut o).unwrap_err().to_string().contains("Archive"));
        let a = BackendArgs {
            ftp_regular: true,
            ..Default::default()
        };
        assert!(a.apply(&mut o).unwrap_err().to_string().contains("passive"));
    }
}
