//! Reading stored files back from a target, as several commands do: fetching one (or opening it in
//! place on a local target), and decoding a manifest (decrypting or gunzipping it as its name says).

use std::fs::File;
use std::io::{self, Read};

use anyhow::{anyhow, Context, Result};

use crate::backend::Backend;
use crate::engine::archive::container;
use crate::engine::archive::manifest::{self, Manifest};
use crate::engine::archive::names::{self, Storage};
use crate::engine::crypto::Decryptor;

/// The stored file, opened from the backend's directory or fetched into an anonymous temporary file
/// (outside the archive dir).
pub fn fetch(backend: &dyn Backend, name: &str) -> Result<File> {
    if let Some(p) = backend.local_path(name) {
        return File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => anyhow!("{name} is missing from the target"),
            _ => anyhow!("cannot read {}: {e}", p.display()),
        });
    }
    let tmp = tempfile::NamedTempFile::new()?;
    backend
        .get(name, tmp.path())
        .with_context(|| format!("cannot fetch {name}"))?;
    Ok(tmp.reopen()?)
}

/// The manifest stored as `name` on the target.
pub fn read_manifest(backend: &dyn Backend, name: &str, decryptor: &Decryptor) -> Result<Manifest> {
    decode_manifest(fetch(backend, name)?, name, decryptor)
}

/// The manifest stored as `name`, decoded from its fetched `file`.
pub fn decode_manifest(file: File, name: &str, decryptor: &Decryptor) -> Result<Manifest> {
    let storage = names::parse(name)
        .map(|p| p.storage)
        .unwrap_or(Storage::Plain);
    let mut bytes = Vec::new();
    container::decode(file, storage, decryptor)
        .with_context(|| format!("cannot read the manifest {name}"))?
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the manifest {name}"))?;
    manifest::parse(&bytes).map_err(|e| anyhow!("the manifest {name} is damaged: {e}"))
}
