//! A dry run's target: reads go to the real one; writes and deletes succeed without doing anything.

use std::path::{Path, PathBuf};

use super::{Backend, BackendResult};

pub struct DryRunBackend<'a> {
    inner: &'a dyn Backend,
}

impl<'a> DryRunBackend<'a> {
    pub fn new(inner: &'a dyn Backend) -> Self {
        DryRunBackend { inner }
    }
}

impl Backend for DryRunBackend<'_> {
    fn put(&self, _src: &Path, _name: &str) -> BackendResult<()> {
        Ok(())
    }
    fn put_new(&self, _src: &Path, _name: &str) -> BackendResult<()> {
        Ok(())
    }
    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        self.inner.stored_size(name)
    }
    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.inner.get(name, dst)
    }
    fn local_path(&self, name: &str) -> Option<PathBuf> {
        self.inner.local_path(name)
    }
    fn list(&self) -> BackendResult<Vec<String>> {
        self.inner.list()
    }
    fn delete(&self, _names: &[String]) -> BackendResult<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn stored_lock(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        self.inner.stored_lock(name)
    }
}
