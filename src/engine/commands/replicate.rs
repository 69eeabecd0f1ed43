//! `replicate SOURCE_URL TARGET_URL`: copies the backup sets the target lacks (volumes, signatures,
//! manifest), as duplicity 0.8/2.x's `replicate` does (3.x dropped the command).
//!
//! A file whose stored form already suits the target (same passphrase, same public keys, or no
//! encryption on either side) is copied byte for byte; otherwise it is decrypted with the source's
//! keys and sealed again with the target's, and the set's manifest is rewritten with the new hashes.
//!
//! Data safety:
//! - nothing is overwritten or deleted on either side: a name already on the target is never written
//!   again; it is checked instead (same bytes, or for re-encrypted files the same content) and kept;
//! - every source file is checked against its manifest hash before it is sent, and every uploaded file
//!   is read back from the target and its hash compared with what was sent;
//! - per set: volumes, then the signature file, then the manifest last, as a backup writes them, so the
//!   target is a valid duplicity collection after every step (a set without its manifest is an
//!   incomplete set), and a run interrupted in the middle of a set completes it on the next run.
//!
//! Memory stays bounded: every file streams through a temporary file of at most one volume.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::backend::Backend;
use crate::engine::archive::container::{self, ContainerWriter, Sealing, Stored};
use crate::engine::archive::manifest::Manifest;
use crate::engine::archive::names::{self, NameKind, Storage};
use crate::engine::cache;
use crate::engine::collection::{BackupSet, Collection, SetKind};
use crate::engine::commands::backup::{GPG_DEFLATE_LEVEL, GZIP_LEVEL};
use crate::engine::crypto::{
    message_keys, Compression, Decryptor, Encryptor, KeySetup, MessageKeys, Passphrase,
};
use crate::engine::stored;

/// What to replicate.
#[derive(Debug, Clone, Default)]
pub struct ReplicateOptions {
    /// Only sets taken at or before this time (duplicity's `--time`); all sets when None.
    pub time: Option<i64>,
}

/// What a replicate did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicateReport {
    /// The sets copied (or completed) by this run, as the names of their manifests on the target.
    pub copied: Vec<String>,
    /// Complete sets of the source that the target already had.
    pub already_there: usize,
    /// Files uploaded, and the bytes stored by them.
    pub files: u64,
    pub bytes: u64,
    /// Of the files uploaded, those decrypted and sealed again with the target's keys.
    pub reencrypted: u64,
    /// Files an interrupted run had left on the target, checked and kept.
    pub kept: u64,
    /// Things worth telling (a source set without signature file, ...).
    pub notes: Vec<String>,
}

impl ReplicateReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "replicated {} set(s) ({} file(s), {} byte(s), {} re-encrypted, {} kept from an interrupted run); {} set(s) were already there",
            self.copied.len(),
            self.files,
            self.bytes,
            self.reencrypted,
            self.kept,
            self.already_there
        )
    }
}

/// What a replicate needs from the two repositories (see `Repository::replicate_from`).
pub(crate) struct ReplicateContext<'a> {
    pub source: &'a dyn Backend,
    /// Opens the source's files (manifests always; volumes and signatures when re-encrypting).
    pub source_decryptor: Decryptor,
    pub source_passphrase: Option<Passphrase>,
    pub target: &'a dyn Backend,
    /// Opens files an interrupted run left on the target, to compare them with the source's.
    pub target_decryptor: Decryptor,
    /// The target's keys and passphrase as a backup to it would use them.
    pub target_passphrase: Option<Passphrase>,
    pub target_keys: KeySetup,
}

/// Test only (cargo feature `test-hooks`): `DUPLICITY_CHARM_TEST_KILL_AT=<point>` kills the process on
/// reaching that point. Points: `replicate-after-volume-N`, `replicate-before-manifest`.
#[cfg(feature = "test-hooks")]
fn test_hook(point: &str) {
    use rustix::process::{getpid, kill_process, Signal};
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("DUPLICITY_CHARM_TEST_KILL_AT").ok());
    if at.as_deref() == Some(point) {
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

#[cfg(not(feature = "test-hooks"))]
fn test_hook(_point: &str) {}

/// How the target's new files are sealed, built once per run.
struct TargetSealing {
    encryptor: Option<Encryptor>,
    compression: Compression,
}

impl TargetSealing {
    fn new(passphrase: &Option<Passphrase>, keys: &KeySetup) -> Result<TargetSealing> {
        // Public keys win over the passphrase, as in a backup.
        let encryptor = if keys.public_key() {
            Some(Encryptor::public_key(keys.recipients.clone())?)
        } else {
            passphrase
                .as_ref()
                .map(|p| Encryptor::symmetric_with(p, &keys.s2k))
                .transpose()?
        }
        .map(|e| {
            e.with_signer(keys.signer.clone())
                .with_cipher(keys.cipher)?
                .with_digest(keys.digest)
        })
        .transpose()?;
        Ok(TargetSealing {
            encryptor,
            compression: keys
                .compression
                .unwrap_or(Compression::Deflate(GPG_DEFLATE_LEVEL)),
        })
    }

    fn sealing(&self, manifest: bool) -> Sealing<'_> {
        // Manifests are stored plain unless encrypted, as a backup stores them.
        match &self.encryptor {
            Some(e) => Sealing::Gpg(e, self.compression),
            None if manifest => Sealing::Plain,
            None => Sealing::Gzip(GZIP_LEVEL),
        }
    }
}

fn same_passphrase(a: &Option<Passphrase>, b: &Option<Passphrase>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.password().map(|x| b.password().map(|y| x[..] == y[..])),
        _ => false,
    }
}

/// A file of the source as it is stored: its storage and (for OpenPGP) who can open it.
struct SourceFile {
    storage: Storage,
    keys: Option<MessageKeys>,
}

impl ReplicateContext<'_> {
    /// True when the source's stored bytes are what a backup to the target would store: no
    /// encryption on either side, or an OpenPGP file that exactly the target's passphrase or the
    /// target's recipients open, and no signing key for the target (a copy would lack its signature).
    fn copies_as_is(&self, src: &SourceFile, sealing: &TargetSealing) -> bool {
        match (&sealing.encryptor, src.storage) {
            (None, Storage::Gpg) => false,
            (None, _) => true,
            (Some(_), Storage::Gpg) => {
                if self.target_keys.signer.is_some() {
                    return false;
                }
                let Some(k) = &src.keys else {
                    return false;
                };
                if self.target_keys.public_key() {
                    let r = &self.target_keys.recipients;
                    !k.passphrase
                        && k.recipients.len() == r.len()
                        && r.iter().all(|r| k.includes(r))
                } else {
                    k.passphrase
                        && k.recipients.is_empty()
                        && same_passphrase(&self.source_passphrase, &self.target_passphrase)
                }
            }
            (Some(_), _) => false,
        }
    }

    /// Reads who can open a source file (OpenPGP only) from its first packets.
    fn source_file(&self, name: &str, file: &mut File) -> Result<SourceFile> {
        let storage = names::parse(name)
            .map(|p| p.storage)
            .unwrap_or(Storage::Plain);
        let keys = if storage == Storage::Gpg {
            let k = message_keys(BufReader::new(&*file))
                .with_context(|| format!("cannot read the OpenPGP packets of {name}"))?;
            Some(k)
        } else {
            None
        };
        file.seek(SeekFrom::Start(0))?;
        Ok(SourceFile { storage, keys })
    }
}

/// A damaged or mismatched file: an `InvalidData` error, so the engine classes it as corrupt.
fn corrupt(msg: String) -> anyhow::Error {
    anyhow!(io::Error::new(io::ErrorKind::InvalidData, msg))
}

/// The SHA1 of what a stored file decodes to, reading it to the end (which checks its integrity).
fn plaintext_sha1(file: File, storage: Storage, decryptor: &Decryptor) -> Result<String> {
    use sha1::{Digest, Sha1};
    let mut r = container::decode(file, storage, decryptor)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The target's file of this kind, if any (whatever its storage suffix).
type TargetNames = HashMap<NameKind, String>;

/// Copies the sets of the source that the target lacks (see the module documentation).
pub(crate) fn replicate(
    ctx: &ReplicateContext,
    opts: &ReplicateOptions,
) -> Result<ReplicateReport> {
    let source_listing = ctx.source.list().context("cannot list the source")?;
    let target_listing = ctx.target.list().context("cannot list the target")?;
    let source_col = Collection::from_names(&source_listing);
    let source_names: TargetNames = by_kind(&source_listing);
    let mut target_names: TargetNames = by_kind(&target_listing);
    let sealing = TargetSealing::new(&ctx.target_passphrase, &ctx.target_keys)?;
    let work = cache::private_tempdir()
        .prefix("duplicity-charm-replicate-")
        .tempdir()
        .context("cannot create a work directory: set TMPDIR to a writable directory")?;

    let mut report = ReplicateReport::default();
    let mut chains: Vec<_> = source_col.chains.iter().collect();
    chains.sort_by_key(|c| c.start);
    for chain in chains {
        for set in chain.sets() {
            if opts.time.is_some_and(|t| set.time() > t) {
                continue;
            }
            let manifest_kind = set.kind.manifest_kind();
            if target_names.contains_key(&manifest_kind) {
                report.already_there += 1;
                continue;
            }
            let name = copy_set(
                ctx,
                &sealing,
                set,
                &source_names,
                &mut target_names,
                work.path(),
                &mut report,
            )
            .with_context(|| format!("cannot replicate the set {}", set.describe()))?;
            report.copied.push(name);
        }
    }
    Ok(report)
}

fn by_kind(listing: &[String]) -> TargetNames {
    listing
        .iter()
        .filter_map(|n| {
            names::parse(n)
                .filter(|p| !p.partial)
                .map(|p| (p.kind, n.clone()))
        })
        .collect()
}

/// Copies one complete set: volumes, signature file, manifest last. Returns the manifest's name.
fn copy_set(
    ctx: &ReplicateContext,
    sealing: &TargetSealing,
    set: &BackupSet,
    source_names: &TargetNames,
    target_names: &mut TargetNames,
    work: &Path,
    report: &mut ReplicateReport,
) -> Result<String> {
    let manifest_name = set.manifest.as_deref().expect("complete set");
    let mut src = stored::fetch(ctx.source, manifest_name)?;
    let manifest_file = ctx.source_file(manifest_name, &mut src)?;
    drop(src);
    // A unit that encrypts to a public key holds no secret key: its manifests cannot be read, but
    // files that go as they are need no reading. Their hashes are then checked on the target only.
    let mut manifest: Option<Manifest> =
        match stored::read_manifest(ctx.source, manifest_name, &ctx.source_decryptor) {
            Ok(m) => Some(m),
            Err(_) if ctx.copies_as_is(&manifest_file, sealing) => None,
            Err(e) => return Err(e),
        };
    let volumes: Vec<(u32, Option<String>)> = match &manifest {
        Some(m) => m
            .volumes
            .iter()
            .map(|v| (v.number, v.sha1.clone()))
            .collect(),
        None => set.volumes.keys().map(|n| (*n, None)).collect(),
    };
    let mut all_as_is = true;
    let mut hashes: HashMap<u32, String> = HashMap::new();
    for (vol, expected) in volumes {
        let src_name = set.volumes.get(&vol).ok_or_else(|| {
            anyhow!(
                "volume {vol} named in {manifest_name} is missing from the source: the source set is damaged"
            )
        })?;
        let kind = match set.kind {
            SetKind::Full { time } => NameKind::FullVolume { time, vol },
            SetKind::Inc { from, to } => NameKind::IncVolume { from, to, vol },
        };
        let out = copy_file(
            ctx,
            sealing,
            src_name,
            kind,
            expected.as_deref(),
            target_names,
            work,
            report,
        )?;
        all_as_is &= out.as_is;
        hashes.insert(vol, out.stored.sha1);
        test_hook(&format!("replicate-after-volume-{vol}"));
    }

    let sig_kind = match set.kind {
        SetKind::Full { time } => NameKind::FullSignatures { time },
        SetKind::Inc { from, to } => NameKind::NewSignatures { from, to },
    };
    match source_names.get(&sig_kind) {
        Some(sig) => {
            copy_file(ctx, sealing, sig, sig_kind, None, target_names, work, report)?;
        }
        None => report.notes.push(format!(
            "the source has no signature file for the set of {}: the target's copy cannot be the base of a backup",
            crate::engine::timestr::format_timestamp(set.time())
        )),
    }

    test_hook("replicate-before-manifest");
    let manifest_kind = set.kind.manifest_kind();
    let name = if all_as_is && ctx.copies_as_is(&manifest_file, sealing) {
        copy_file(
            ctx,
            sealing,
            manifest_name,
            manifest_kind,
            None,
            target_names,
            work,
            report,
        )?
        .name
    } else {
        let Some(manifest) = manifest.as_mut() else {
            return Err(anyhow!(
                "{manifest_name} cannot be decrypted with the source's keys, and its set cannot be copied as it is"
            ));
        };
        for info in manifest.volumes.iter_mut() {
            info.sha1 = hashes.get(&info.number).cloned();
        }
        // The volumes' hashes changed: the manifest is written again, sealed for the target.
        let seal = sealing.sealing(true);
        let name = names::format(&manifest_kind, seal.storage());
        let path = work.join("manifest");
        let mut w = ContainerWriter::new(File::create(&path)?, seal)?;
        manifest.write_to(&mut w)?;
        let sent = w.finish()?;
        upload(ctx.target, &path, &name, &sent)?;
        report.files += 1;
        report.bytes += sent.size;
        report.reencrypted += 1;
        target_names.insert(manifest_kind, name.clone());
        name
    };
    Ok(name)
}

struct Copied {
    name: String,
    stored: Stored,
    as_is: bool,
}

/// Puts `path` on the target as `name`, then reads it back and compares its hash with `sent`.
fn upload(target: &dyn Backend, path: &Path, name: &str, sent: &Stored) -> Result<()> {
    target
        .put_move(path, name)
        .with_context(|| format!("cannot upload {name}"))?;
    let mut back =
        stored::fetch(target, name).with_context(|| format!("cannot read back {name}"))?;
    let got = container::sha1_of(&mut back)?;
    if got != sent.sha1 {
        return Err(corrupt(format!(
            "{name} on the target does not match what was sent (SHA1 {got}, sent {}): the target's storage is unreliable; check it, then remove {name} on the target and run replicate again",
            sent.sha1
        )));
    }
    Ok(())
}

/// Copies one stored file of the source to the target as `kind` (bytes as they are, or re-encrypted),
/// checking the source against `expected_sha1` when the manifest gives one. A file of that kind that
/// is already on the target (left by an interrupted run) is checked and kept.
#[allow(clippy::too_many_arguments)]
fn copy_file(
    ctx: &ReplicateContext,
    sealing: &TargetSealing,
    src_name: &str,
    kind: NameKind,
    expected_sha1: Option<&str>,
    target_names: &mut TargetNames,
    work: &Path,
    report: &mut ReplicateReport,
) -> Result<Copied> {
    let mut src = stored::fetch(ctx.source, src_name)?;
    let src_sha1 = container::sha1_of(&mut src)?;
    if let Some(want) = expected_sha1 {
        if !want.eq_ignore_ascii_case(&src_sha1) {
            return Err(corrupt(format!(
                "{src_name} on the source does not match its manifest (SHA1 {src_sha1}, manifest {want}): the source is damaged; nothing of this set was copied further"
            )));
        }
    }
    let src_file = ctx.source_file(src_name, &mut src)?;
    let as_is = ctx.copies_as_is(&src_file, sealing);

    if let Some(existing) = target_names.get(&kind).cloned() {
        let mut there = stored::fetch(ctx.target, &existing)?;
        let there_sha1 = container::sha1_of(&mut there)?;
        let same = if as_is {
            there_sha1 == src_sha1
        } else {
            let there_storage = names::parse(&existing)
                .map(|p| p.storage)
                .unwrap_or(Storage::Plain);
            let theirs = plaintext_sha1(there, there_storage, &ctx.target_decryptor)
                .with_context(|| format!("cannot read {existing} on the target"))?;
            let ours = plaintext_sha1(src, src_file.storage, &ctx.source_decryptor)
                .with_context(|| format!("cannot read {src_name} on the source"))?;
            theirs == ours
        };
        if !same {
            return Err(anyhow!(
                "the target already holds {existing}, whose content differs from {src_name} on the source: it was not written by a replicate of this source, and nothing is ever overwritten; remove it on the target (or replicate to another target)"
            ));
        }
        report.kept += 1;
        let size = ctx
            .target
            .local_path(&existing)
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        return Ok(Copied {
            name: existing,
            stored: Stored {
                sha1: there_sha1,
                size,
            },
            as_is,
        });
    }

    let path = work.join("copy");
    let (name, sent) = if as_is {
        let name = names::format(&kind, src_file.storage);
        let mut out = File::create(&path)?;
        let size = io::copy(&mut src, &mut out)?;
        out.sync_data()?;
        (
            name,
            Stored {
                sha1: src_sha1,
                size,
            },
        )
    } else {
        let seal = sealing.sealing(kind.is_manifest());
        let name = names::format(&kind, seal.storage());
        let mut plain = container::decode(src, src_file.storage, &ctx.source_decryptor)?;
        let mut w = ContainerWriter::new(File::create(&path)?, seal)?;
        io::copy(&mut plain, &mut w).with_context(|| format!("cannot re-encrypt {src_name}"))?;
        let sent = w.finish()?;
        report.reencrypted += 1;
        (name, sent)
    };
    upload(ctx.target, &path, &name, &sent)?;
    report.files += 1;
    report.bytes += sent.size;
    target_names.insert(kind, name.clone());
    Ok(Copied {
        name,
        stored: sent,
        as_is,
    })
}
