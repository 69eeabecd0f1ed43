//! The engine's public error: a message chain plus an [`ErrorKind`] that callers branch on.
//!
//! Error policy:
//! - The leaves of the engine have typed errors (`thiserror`), one enum per concern, whose messages name
//!   the problem and the fix: [`BackendError`], [`UrlError`], [`CryptoError`], [`KeyError`],
//!   [`LockError`], [`CollectionError`].
//! - Inside a command, `anyhow` carries those up with context ("cannot restore from <volume>").
//! - At the [`Repository`](crate::engine::repository::Repository) boundary every error becomes an
//!   [`Error`], whose kind is read from the typed errors in its chain (never from message text). The CLI
//!   and the charm choose exit codes, action failures and statuses from the kind, and show the message.
//! - `anyhow` is used directly only by the faces (CLI, charm, scheduler).

use std::fmt;
use std::io;

use crate::backend::{BackendError, UrlError};
use crate::engine::collection::CollectionError;
use crate::engine::commands::restore::RestoreError;
use crate::engine::crypto::CryptoError;
use crate::engine::keys::KeyError;
use crate::engine::lock::LockError;

/// What kind of failure, for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A passphrase or key does not open the backup (or none was given for an encrypted one).
    WrongKey,
    /// The target cannot be reached (network, a server down); trying later may work.
    Unreachable,
    /// The target refused the credentials.
    AuthRefused,
    /// A stored file is damaged or was tampered with.
    Corrupt,
    /// Something needed is not there: no backup, a missing volume, a file not in the backup.
    Missing,
    /// Another run holds the lock.
    Busy,
    /// The request itself is wrong: a bad URL, key id, option or path.
    BadInput,
    /// Anything else (local I/O, a full disk, an unexpected server answer).
    Failed,
}

impl ErrorKind {
    /// A short name for logs and JSON.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::WrongKey => "wrong-key",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::AuthRefused => "auth-refused",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Missing => "missing",
            ErrorKind::Busy => "busy",
            ErrorKind::BadInput => "bad-input",
            ErrorKind::Failed => "failed",
        }
    }
}

/// An engine failure: its kind and the message chain (what failed, then why).
pub struct Error {
    kind: ErrorKind,
    inner: anyhow::Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Every error in the chain, the first (what failed) included: `source()` starts below it.
    pub fn chain(&self) -> anyhow::Chain<'_> {
        self.inner.chain()
    }

    /// The chain as `anyhow` holds it, for faces that add context.
    pub fn into_anyhow(self) -> anyhow::Error {
        self.inner
    }

    /// An error of a known kind.
    pub fn new(kind: ErrorKind, inner: anyhow::Error) -> Error {
        Error { kind, inner }
    }

    pub fn bad_input(inner: anyhow::Error) -> Error {
        Error::new(ErrorKind::BadInput, inner)
    }

    pub(crate) fn from_key(e: KeyError) -> Error {
        Error::classify(e.into())
    }

    /// Reads the kind from the first typed error in the chain that tells it.
    pub fn classify(inner: anyhow::Error) -> Error {
        let kind = inner.chain().find_map(kind_of).unwrap_or(ErrorKind::Failed);
        Error { kind, inner }
    }
}

fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if let Some(e) = e.downcast_ref::<Error>() {
        return Some(e.kind);
    }
    if let Some(e) = e.downcast_ref::<BackendError>() {
        return Some(match e {
            BackendError::NotFound { .. } => ErrorKind::Missing,
            BackendError::Transient { .. } => ErrorKind::Unreachable,
            BackendError::AuthRefused { .. } => ErrorKind::AuthRefused,
            BackendError::Permanent { .. } => ErrorKind::Failed,
        });
    }
    if e.downcast_ref::<UrlError>().is_some() {
        return Some(ErrorKind::BadInput);
    }
    if let Some(e) = e.downcast_ref::<CryptoError>() {
        return Some(match e {
            CryptoError::BadPassphrase
            | CryptoError::NoPassphrase
            | CryptoError::NoSecretKey(_)
            | CryptoError::NoKeyPassphrase(_)
            | CryptoError::BadKeyPassphrase(_)
            | CryptoError::KeyUnusable { .. }
            | CryptoError::KeySource(_) => ErrorKind::WrongKey,
            CryptoError::Tampered(_)
            | CryptoError::Malformed(_)
            | CryptoError::Signature(_)
            | CryptoError::Unsupported(_) => ErrorKind::Corrupt,
            CryptoError::Encrypt(_) => ErrorKind::Failed,
            CryptoError::Io(_) => return None,
        });
    }
    if let Some(e) = e.downcast_ref::<KeyError>() {
        return Some(match e {
            KeyError::NoSignPassphrase { .. }
            | KeyError::BadSignPassphrase { .. }
            | KeyError::GpgNoPassphrase { .. }
            | KeyError::GpgBadPassphrase { .. } => ErrorKind::WrongKey,
            _ => ErrorKind::BadInput,
        });
    }
    if let Some(e) = e.downcast_ref::<LockError>() {
        return Some(match e {
            LockError::Busy { .. } => ErrorKind::Busy,
            _ => ErrorKind::Failed,
        });
    }
    if e.downcast_ref::<CollectionError>().is_some() {
        return Some(ErrorKind::Missing);
    }
    if let Some(e) = e.downcast_ref::<RestoreError>() {
        return Some(match e {
            RestoreError::TargetExists { .. } => ErrorKind::BadInput,
            RestoreError::NotInBackup(_) => ErrorKind::Missing,
            RestoreError::NothingSelected => ErrorKind::Missing,
            RestoreError::SelectionWithPath => ErrorKind::BadInput,
        });
    }
    if let Some(e) = e.downcast_ref::<io::Error>() {
        // A typed error carried through a `Read` (decryption) is inside the io::Error, where the chain
        // does not go: io::Error's `source()` skips it.
        if let Some(kind) = e.get_ref().and_then(|inner| kind_of(inner)) {
            return Some(kind);
        }
        // Only errors on the target's side say anything; a local one is a plain failure.
        if e.kind() == io::ErrorKind::InvalidData {
            return Some(ErrorKind::Corrupt);
        }
    }
    None
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.kind, self.inner)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

macro_rules! classified {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::classify(e.into())
            }
        }
    )*};
}
classified!(
    BackendError,
    UrlError,
    CryptoError,
    KeyError,
    LockError,
    CollectionError
);

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::classify(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_kind_comes_from_the_typed_error_under_the_context() {
        let e: anyhow::Result<()> = Err(CryptoError::BadPassphrase.into());
        let e = Error::classify(e.context("cannot restore from vol1").unwrap_err());
        assert_eq!(e.kind(), ErrorKind::WrongKey);
        assert!(e.to_string().contains("cannot restore from vol1"));
        let e = Error::classify(anyhow::anyhow!("something"));
        assert_eq!(e.kind(), ErrorKind::Failed);
        let e: Error = BackendError::NotFound {
            backend: "file".into(),
            name: "x".into(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Missing);
    }

    #[test]
    fn a_typed_error_carried_in_an_io_error_is_found() {
        // As decryption reports a wrong passphrase through `Read` (a manifest read during a backup).
        let io = io::Error::other(CryptoError::BadPassphrase);
        let e: anyhow::Result<()> = Err(io.into());
        let e = Error::classify(e.context("cannot read the manifest m").unwrap_err());
        assert_eq!(e.kind(), ErrorKind::WrongKey);
    }
}
