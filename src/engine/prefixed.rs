//! `--file-prefix` and its per-kind companions: the target seen through the prefixes. The engine works
//! with duplicity's names as they are without prefixes; this backend adds the prefixes on the way out
//! and, on listing, keeps only the names that carry exactly these prefixes, with them removed. So every
//! command (backup, restore, listing, retention) sees the prefixed collection and nothing else, as
//! duplicity 3 does: its name patterns start with the prefixes.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, BackendResult};
use crate::engine::archive::names::Prefixes;

pub struct PrefixedBackend {
    inner: Box<dyn Backend>,
    prefixes: Prefixes,
}

impl PrefixedBackend {
    pub fn new(inner: Box<dyn Backend>, prefixes: Prefixes) -> PrefixedBackend {
        PrefixedBackend { inner, prefixes }
    }

    fn stored(&self, name: &str) -> String {
        self.prefixes.add_to(name)
    }
}

impl Backend for PrefixedBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.inner.put(src, &self.stored(name))
    }
    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.inner.put_move(src, &self.stored(name))
    }
    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.inner.put_new(src, &self.stored(name))
    }
    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.inner.stored_size(&self.stored(name))
    }
    fn stored_lock(&self, name: &str) -> BackendResult<Option<crate::backend::StoredLock>> {
        self.inner.stored_lock(&self.stored(name))
    }
    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.inner.get(&self.stored(name), dst)
    }
    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        self.inner.open(&self.stored(name))
    }
    fn local_path(&self, name: &str) -> Option<PathBuf> {
        self.inner.local_path(&self.stored(name))
    }
    fn list(&self) -> BackendResult<Vec<String>> {
        Ok(self
            .inner
            .list()?
            .iter()
            .filter_map(|n| self.prefixes.strip_from(n).map(str::to_string))
            .collect())
    }
    fn delete(&self, names: &[String]) -> BackendResult<()> {
        let stored: Vec<String> = names.iter().map(|n| self.stored(n)).collect();
        self.inner.delete(&stored)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_out_prefixed_and_come_back_bare() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let inner = crate::backend::open(&url, &crate::backend::OpenOptions::new()).unwrap();
        let b = PrefixedBackend::new(
            inner,
            Prefixes {
                file: "host1-".into(),
                manifest: "m-".into(),
                ..Prefixes::default()
            },
        );
        let src = dir.path().join("src-file");
        std::fs::write(&src, b"x").unwrap();
        let man = "duplicity-full.20261123T053225Z.manifest";
        let vol = "duplicity-full.20261123T053225Z.vol1.difftar.gz";
        b.put(&src, man).unwrap();
        b.put(&src, vol).unwrap();
        // Another collection's files and a stray file in the same directory.
        for other in [
            man,
            "other-duplicity-full.20261123T053225Z.manifest",
            "notes",
        ] {
            std::fs::write(dir.path().join(other), b"y").unwrap();
        }
        assert!(dir.path().join(format!("host1-m-{man}")).is_file());
        assert!(dir.path().join(format!("host1-{vol}")).is_file());
        let mut listed = b.list().unwrap();
        listed.sort();
        assert_eq!(listed, [man, vol]);
        b.delete(&[man.to_string()]).unwrap();
        assert!(!dir.path().join(format!("host1-m-{man}")).exists());
        assert!(
            dir.path().join(man).exists(),
            "the unprefixed file is not ours"
        );
    }
}
