//! list-current-files: what a backup holds as of a time, read from the signature chain alone (no
//! volume is downloaded), printed as duplicity 0.8.22 prints it: `asctime(local mtime) path` per live
//! entry in index order, the root as `.`, deleted entries left out. `--json` gives the same facts.

use std::io::Write;

use anyhow::{Context, Result};

use crate::backend::Backend;
use crate::engine::cache::Cache;
use crate::engine::collection::Collection;
use crate::engine::commands::json;
use crate::engine::crypto::Decryptor;
use crate::engine::error::Error;
use crate::engine::meta::FileType;
use crate::engine::repository::Repository;
use crate::engine::timestr::asctime_local;

/// One live entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Relative path as raw bytes; `.` for the root.
    pub path: Vec<u8>,
    pub mtime: i64,
    pub ftype: FileType,
}

/// duplicity's short type names (`path.type`).
pub fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "reg",
        FileType::Directory => "dir",
        FileType::Symlink => "sym",
        FileType::Fifo => "fifo",
        FileType::CharDevice => "chr",
        FileType::BlockDevice => "blk",
    }
}

/// What a listing read besides the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentFiles {
    /// The chain's signature file names used.
    pub signatures: Vec<String>,
    /// Notes for the operator: sets passed over (cut uploads), which make the state listed older
    /// than the time asked.
    pub notes: Vec<String>,
}

/// Brings the archive dir in step with the target, then calls `each` for every live entry of the
/// signature chain as of `time`, in index order.
pub(crate) fn for_each_current_file(
    backend: &dyn Backend,
    cache: &Cache,
    decryptor: &Decryptor,
    time: i64,
    append_only: bool,
    policy: crate::engine::cache::SyncPolicy,
    mut each: impl FnMut(ListedFile) -> Result<()>,
) -> Result<CurrentFiles> {
    let mut remote = backend.list().context("cannot list the target")?;
    if append_only {
        super::backup::append_only_listing(backend, &mut remote, decryptor, &cache.dir)?;
    }
    cache.sync(backend, &remote, decryptor, policy, time)?;
    let col = Collection::from_names(&remote);
    let chain = col.sig_chain_at_time(time)?;
    let names = chain.names(Some(time));
    // The time of the state listed: the last signature read.
    let state = std::iter::once(&chain.full)
        .chain(chain.incs.iter().filter(|s| s.to <= time))
        .map(|s| s.to)
        .max()
        .unwrap_or(chain.full.to);
    let notes = super::restore::cut_set_notes(&col, state, time, "listing");
    let mut sigs = cache.chain_signatures(&names).map_err(|e| {
        if policy.check_remote {
            e
        } else {
            e.context("--no-check-remote reads only the archive dir, which lacks this chain's signatures: run once without it to fetch them")
        }
    })?;
    while let Some(e) = sigs.next_entry()? {
        let Some(meta) = e.meta else { continue };
        each(ListedFile {
            path: e.index.display_bytes().to_vec(),
            mtime: meta.mtime,
            ftype: meta.ftype,
        })?;
    }
    Ok(CurrentFiles {
        signatures: names,
        notes,
    })
}

/// Prints the list as duplicity does, or as one JSON object. Returns the notes for the operator (see
/// [`CurrentFiles::notes`]), which the caller shows apart from the listing.
pub fn list_current_files(
    repo: &Repository,
    time: i64,
    out: &mut dyn Write,
    json: bool,
) -> Result<Vec<String>, Error> {
    if json {
        out.write_all(b"{\"files\":[")
            .map_err(|e| Error::classify(e.into()))?;
    }
    let mut first = true;
    let listed = repo.for_each_current_file(time, |f| {
        if json {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            // Streamed one entry at a time: a listing can hold millions of files.
            let mut entry = serde_json::json!({
                "path": json::path(&f.path),
                "type": type_name(f.ftype),
                "mtime": json::time(f.mtime),
            });
            if std::str::from_utf8(&f.path).is_err() {
                entry["path_hex"] = hex::encode(&f.path).into();
            }
            write!(out, "{entry}")?;
        } else {
            out.write_all(asctime_local(f.mtime).as_bytes())?;
            out.write_all(b" ")?;
            out.write_all(&f.path)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let CurrentFiles { signatures, notes } = listed;
    let end = || -> std::io::Result<()> {
        if json {
            let time = json::time(time);
            let sigs = serde_json::Value::from(signatures);
            writeln!(out, "],\"time\":{time},\"signatures\":{sigs}}}")?;
        }
        out.flush()
    };
    end().map_err(|e| Error::classify(e.into()))?;
    Ok(notes)
}
