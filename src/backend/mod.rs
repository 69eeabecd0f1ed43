//! Where backups are stored: one `Backend` trait (put / get / list / delete) with one module per URL scheme.
//! A backend moves whole named files; it knows nothing of the archive format.

pub mod file;

use std::io::Read;
use std::path::Path;

/// A backend failure, classed so callers can decide: retry (Transient), report a missing file (NotFound),
/// or give up (Permanent). `name` is the remote file name; never a URL with a password.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{backend}: {name} not found")]
    NotFound { backend: String, name: String },
    #[error("{backend}: {name}: {message}")]
    Permanent {
        backend: String,
        name: String,
        message: String,
    },
    #[error("{backend}: {name}: {message} (temporary; try again)")]
    Transient {
        backend: String,
        name: String,
        message: String,
    },
}

impl BackendError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, BackendError::NotFound { .. })
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// A store of named files (flat: duplicity never uses sub-directories in a target).
pub trait Backend: Send + Sync {
    /// Stores the local file `src` under `name`, replacing any file of that name. A reader never sees a
    /// partly written `name`.
    fn put(&self, src: &Path, name: &str) -> BackendResult<()>;

    /// Like `put`, for a local file the caller no longer needs: a backend on the same filesystem may
    /// move it rather than copy it. `src` is gone afterwards either way.
    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.put(src, name)?;
        let _ = std::fs::remove_file(src);
        Ok(())
    }

    /// Copies the file `name` to the local path `dst`.
    fn get(&self, name: &str, dst: &Path) -> BackendResult<()>;

    /// Opens `name` for streaming reads. The default fetches it into an anonymous temporary file.
    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| BackendError::Transient {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("cannot create a temporary file: {e}"),
        })?;
        self.get(name, tmp.path())?;
        let f = tmp.reopen().map_err(|e| BackendError::Transient {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("cannot reopen the temporary file: {e}"),
        })?;
        Ok(Box::new(f))
    }

    /// The file's path on this machine when the backend is a local directory (lets readers skip a copy).
    fn local_path(&self, _name: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// The names of all files in the target (any name; callers pick duplicity's).
    fn list(&self) -> BackendResult<Vec<String>>;

    /// Deletes `names`; a name that is already gone is not an error.
    fn delete(&self, names: &[String]) -> BackendResult<()>;

    /// The target as shown to a person: the URL with any password removed.
    fn describe(&self) -> String;
}

/// Why a target URL cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a URL: give a target like file:///var/backups/host (scheme://...)")]
    NotAUrl(String),
    #[error("the {scheme}:// backend is not supported yet; supported: file://")]
    Unsupported { scheme: String },
    #[error("{0}")]
    Invalid(String),
}

/// Opens the backend for a target URL such as `file:///var/backups/host`.
pub fn open(url: &str) -> Result<Box<dyn Backend>, UrlError> {
    let Some((scheme, _rest)) = url.split_once("://") else {
        return Err(UrlError::NotAUrl(url.to_string()));
    };
    match scheme {
        "file" => Ok(Box::new(file::FileBackend::from_url(url)?)),
        other => Err(UrlError::Unsupported {
            scheme: other.to_string(),
        }),
    }
}
