//! The local archive dir (duplicity's cache of manifests and signatures), kept in step with the remote:
//! `--archive-dir` (default `$XDG_CACHE_HOME/duplicity`) / `--name` (default the MD5 of the URL as typed).
//! Manifests are kept decrypted; signature tars are kept gzipped, as duplicity keeps them.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use md5::{Digest, Md5};

use super::archive::container::{self, ContainerWriter, Sealing};
use super::archive::names::{self, NameKind, Storage};
use super::archive::sigtar::{self, ChainSignatures};
use super::crypto::Decryptor;
use crate::backend::Backend;

/// The archive dir for a target.
pub fn cache_dir(archive_dir: Option<&Path>, name: Option<&str>, url: &str) -> PathBuf {
    let base = match archive_dir {
        Some(d) => d.to_path_buf(),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(x) => PathBuf::from(x).join("duplicity"),
            None => {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(".cache").join("duplicity")
            }
        },
    };
    let leaf = match name {
        Some(n) => n.to_string(),
        None => hex::encode(Md5::digest(url.as_bytes())),
    };
    base.join(leaf)
}

/// The local name of a remote metadata file: manifests decrypted, sigtars gzipped.
pub fn local_name(kind: &NameKind) -> Option<String> {
    match kind {
        NameKind::FullManifest { .. } | NameKind::IncManifest { .. } => {
            Some(names::format(kind, Storage::Plain))
        }
        NameKind::FullSignatures { .. } | NameKind::NewSignatures { .. } => {
            Some(names::format(kind, Storage::Gzip))
        }
        _ => None,
    }
}

pub struct Cache {
    pub dir: PathBuf,
}

/// How the archive dir follows the target, as duplicity 3's `--check-remote`/`--no-check-remote` and
/// `--metadata-sync-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Read metadata from the target (the default). False: the archive dir is used as it is, and the
    /// target's last manifest is not compared with the cached one before an incremental.
    pub check_remote: bool,
    /// Fetch the metadata of every chain; false (duplicity 3's default, `partial`): only that of the
    /// chain the command works on, the one at the time it reads (now for backups).
    pub full: bool,
}

impl Default for SyncPolicy {
    fn default() -> SyncPolicy {
        SyncPolicy {
            check_remote: true,
            full: false,
        }
    }
}

/// The target's last manifest differs from the archive dir's copy (duplicity's `mismatched_manifests`):
/// the target or the archive dir was changed behind our back; an incremental on it could not be
/// trusted.
#[derive(Debug, thiserror::Error)]
#[error(
    "the manifest {name} on the target does not match the archive dir's copy in {}: the backup set or \
     the archive dir was damaged or changed. Check the target (collection-status, verify); to rebuild the \
     archive dir from the target, move that folder away and run again",
    cache_dir.display()
)]
pub struct ManifestMismatch {
    pub name: String,
    pub cache_dir: PathBuf,
}

/// Mode of the archive dir and of every directory we create for it: its files name every backed-up
/// file (also those in private directories) and manifests are kept decrypted.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the files in the archive dir.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) 0700 whatever the umask, and tightens an existing `dir` that
/// others can read or enter (an archive dir made by an older version, or by the umask): a note on
/// stderr says so once.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let existed = dir.is_dir();
    if !existed {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(dir)?;
    }
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode != PRIVATE_DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
        if existed && mode & 0o077 != 0 {
            crate::logging::notice(&format!(
                "the archive dir {} was readable by other users (mode {mode:04o}); it is now 0700",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// A builder for work directories (volumes, restores in progress): created 0700 whatever the umask.
pub fn private_tempdir<'a, 'b>() -> tempfile::Builder<'a, 'b> {
    use std::os::unix::fs::PermissionsExt;
    let mut b = tempfile::Builder::new();
    b.permissions(fs::Permissions::from_mode(PRIVATE_DIR_MODE));
    b
}

impl Cache {
    pub fn open(dir: PathBuf) -> Result<Cache> {
        ensure_private_dir(&dir).with_context(|| {
            format!(
                "cannot create the archive dir {}: check its permissions or pass --archive-dir",
                dir.display()
            )
        })?;
        Ok(Cache { dir })
    }

    pub fn path(&self, local: &str) -> PathBuf {
        self.dir.join(local)
    }

    /// Brings the cache in step with `remote` (the target's listing), as `policy` says: fetches
    /// metadata the cache lacks (decrypting manifests, re-gzipping sigtars) — all of it, or only that
    /// of the chain at time `at` — and drops metadata the target no longer has. Without
    /// `check_remote`, the cache is left as it is.
    pub fn sync(
        &self,
        backend: &dyn Backend,
        remote: &[String],
        decryptor: &Decryptor,
        policy: SyncPolicy,
        at: i64,
    ) -> Result<()> {
        if !policy.check_remote {
            return Ok(());
        }
        // duplicity's partial sync: the files whose times overlap the chain at `at`; with no chain
        // (or two covering `at`), everything.
        let span = if policy.full {
            None
        } else {
            crate::engine::collection::Collection::from_names(remote)
                .chain_at_time(at)
                .ok()
                .map(|c| (c.start, c.end))
        };
        let needed = |kind: &NameKind| match span {
            None => true,
            Some((start, end)) => {
                kind.time() >= start && kind.from_time().unwrap_or(kind.time()) <= end
            }
        };
        let mut wanted = HashSet::new();
        for r in remote {
            let Some(p) = names::parse(r) else { continue };
            if p.partial {
                continue;
            }
            let Some(local) = local_name(&p.kind) else {
                continue;
            };
            wanted.insert(local.clone());
            let lp = self.path(&local);
            if lp.exists() || !needed(&p.kind) {
                continue;
            }
            self.fetch(backend, r, p.storage, &p.kind, &lp, decryptor)
                .with_context(|| {
                    format!(
                        "cannot copy {r} into the archive dir {}",
                        self.dir.display()
                    )
                })?;
        }
        for ent in fs::read_dir(&self.dir)? {
            let ent = ent?;
            let Ok(name) = ent.file_name().into_string() else {
                continue;
            };
            let Some(p) = names::parse(&name) else {
                continue;
            };
            if p.partial || local_name(&p.kind).is_none() {
                continue;
            }
            if !wanted.contains(&name) {
                let _ = fs::remove_file(ent.path());
            }
        }
        Ok(())
    }

    fn fetch(
        &self,
        backend: &dyn Backend,
        remote: &str,
        storage: Storage,
        kind: &NameKind,
        dst: &Path,
        decryptor: &Decryptor,
    ) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        backend.get(remote, tmp.path())?;
        let f = File::open(tmp.path())?;
        let mut plain = container::decode(f, storage, decryptor)?;
        let out = tempfile::NamedTempFile::new_in(&self.dir)?;
        let sealing = match kind {
            NameKind::FullSignatures { .. } | NameKind::NewSignatures { .. } => Sealing::Gzip(1),
            _ => Sealing::Plain,
        };
        let mut w = ContainerWriter::new(out.reopen()?, sealing)?;
        io::copy(&mut plain, &mut w)?;
        w.finish()?;
        out.persist(dst).map_err(|e| e.error)?;
        Ok(())
    }

    /// Stores a metadata file the backup just wrote (plain bytes for manifests, a gzip file for
    /// sigtars), moving it when it is on the same filesystem.
    pub fn store_file(&self, src: &Path, local: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let private = fs::Permissions::from_mode(PRIVATE_FILE_MODE);
        // The file was made with the umask; it is private before it is visible under its name.
        fs::set_permissions(src, private.clone())?;
        if fs::rename(src, self.path(local)).is_ok() {
            return Ok(());
        }
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        fs::copy(src, tmp.path())?;
        tmp.as_file().set_permissions(private)?;
        tmp.persist(self.path(local)).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn store_bytes(&self, bytes: &[u8], local: &str) -> Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.persist(self.path(local)).map_err(|e| e.error)?;
        Ok(())
    }

    /// The merged state of the signature files `remote` (a chain's names, oldest first), read from
    /// their copies in the archive dir (which `sync` has filled).
    pub fn chain_signatures(&self, remote: &[String]) -> Result<ChainSignatures> {
        let plain = Decryptor::new(None); // cached sigtars are gzipped, never encrypted
        let mut readers = Vec::new();
        for r in remote {
            let local = names::parse(r)
                .and_then(|p| local_name(&p.kind))
                .with_context(|| format!("{r} is not a signature file name"))?;
            let f = File::open(self.path(&local)).with_context(|| {
                format!(
                    "signature file {local} is missing from the archive dir {}",
                    self.dir.display()
                )
            })?;
            let dec = container::decode(f, Storage::Gzip, &plain)?;
            readers.push(sigtar::spawn_reader(dec, local));
        }
        Ok(ChainSignatures::new(readers)?)
    }

    /// The number of volumes the cached manifest of `set` lists (its highest volume number), if the
    /// archive dir holds a readable copy.
    pub fn manifest_volume_count(&self, set: &crate::engine::collection::BackupSet) -> Option<u32> {
        let kind = set.kind.manifest_kind();
        let bytes = self.read(&local_name(&kind)?).ok()?;
        crate::engine::archive::manifest::parse(&bytes)
            .ok()?
            .volumes
            .iter()
            .map(|v| v.number)
            .max()
    }

    pub fn read(&self, local: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        File::open(self.path(local))
            .with_context(|| {
                format!(
                    "{local} is missing from the archive dir {}",
                    self.dir.display()
                )
            })?
            .read_to_end(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_dir_and_work_dirs_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        // The test process's umask (022 or so) would give 0755/0644 to anything made with defaults;
        // changing the umask here would race with the other tests' threads.
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path().join("base/name")).unwrap();
        let work = private_tempdir().tempdir_in(&cache.dir).unwrap();
        let src = cache.dir.join("made-with-umask");
        fs::write(&src, b"x").unwrap();
        cache
            .store_file(&src, "duplicity-full-signatures.20240101T000000Z.sigtar.gz")
            .unwrap();
        assert_eq!(mode(&d.path().join("base")), 0o700);
        assert_eq!(mode(&cache.dir), 0o700);
        assert_eq!(mode(work.path()), 0o700);
        assert_eq!(
            mode(&cache.path("duplicity-full-signatures.20240101T000000Z.sigtar.gz")),
            0o600
        );
        // An existing archive dir others can read is tightened.
        fs::set_permissions(&cache.dir, fs::Permissions::from_mode(0o755)).unwrap();
        Cache::open(cache.dir.clone()).unwrap();
        assert_eq!(mode(&cache.dir), 0o700);
    }

    #[test]
    fn default_name_is_md5_of_url_as_typed() {
        let d = cache_dir(Some(Path::new("/c")), None, "file:///tmp/dup/remote");
        assert!(d.to_string_lossy().starts_with("/c/db1d378e"));
        let d = cache_dir(Some(Path::new("/c")), Some("mine"), "file:///x");
        assert_eq!(d, Path::new("/c/mine"));
    }
}
