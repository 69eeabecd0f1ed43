//! Where backups are stored: one `Backend` trait (put / get / list / delete) with one module per URL scheme.
//! A backend moves whole named files; it knows nothing of the archive format.
//! `open` picks the module from the URL scheme and wraps remote ones in `retry::Retrying`. Wrappers
//! (retry, dry run, the tests' fault injection) implement the same trait.

pub mod append_only;
pub mod azure;
pub mod dry_run;
pub mod fault;
pub mod file;
pub mod ftp;
pub mod retry;
pub mod rsync;
pub mod runtime;
pub mod s3;
pub mod sftp;
pub mod throttle;
pub mod url;

use std::io::Read;
use std::path::Path;

/// A backend failure, classed so callers can decide: retry (Transient), report a missing file (NotFound),
/// or give up (Permanent, AuthRefused). `name` is the remote file name; never a URL with a password.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{backend}: {name} not found")]
    NotFound { backend: String, name: String },
    #[error("{backend}: {}{message}", named(name))]
    Permanent {
        backend: String,
        name: String,
        message: String,
    },
    #[error("{backend}: {}{message} (temporary; try again)", named(name))]
    Transient {
        backend: String,
        name: String,
        message: String,
    },
    /// The server refused the credentials (a login, a signature, an access key): retrying is useless.
    #[error("{backend}: {message}")]
    AuthRefused { backend: String, message: String },
}

/// `name: ` for an error about one file; nothing for one about the whole target (a listing, a login).
fn named(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("{name}: ")
    }
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

    /// Opens `name` for streaming reads. The default fetches it into a temporary directory and opens
    /// it there (a `get` may replace the file rather than write into it, as rsync does); the file is
    /// unlinked once open.
    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        let tmp_err = |e: std::io::Error| BackendError::Transient {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("temporary file: {e}"),
        };
        let dir = tempfile::tempdir().map_err(tmp_err)?;
        let path = dir.path().join("download");
        self.get(name, &path)?;
        let f = std::fs::File::open(&path).map_err(tmp_err)?;
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

    /// Stores `src` under `name` without renaming, replacing or deleting anything, for append-only
    /// targets (which refuse those): the bytes go straight to the final name, and an existing `name`
    /// is an error, never overwritten. A cut upload can leave a partial `name`, which the caller
    /// finds with [`Backend::stored_size`] (see [`append_only::AppendOnly`]). Backends that cannot
    /// write that way say so.
    fn put_new(&self, _src: &Path, name: &str) -> BackendResult<()> {
        Err(BackendError::Permanent {
            backend: self.describe(),
            name: name.to_string(),
            message: "this kind of target cannot be used as an append-only target (it cannot write a final name directly); use sftp://, ftp://, rsync:// or file://, or drop the append-only option".into(),
        })
    }

    /// The size of the stored file `name`; `None` when there is no such file.
    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        Err(BackendError::Permanent {
            backend: self.describe(),
            name: name.to_string(),
            message: "this kind of target cannot report stored sizes, which an append-only target needs; use sftp://, ftp://, rsync:// or file://".into(),
        })
    }
    /// The write-once lock the target holds on the stored `name` now (S3 Object Lock), if any: until
    /// it ends the file cannot be deleted or overwritten. `None` for backends without such locks and
    /// for files that are not locked (or not there).
    fn stored_lock(&self, _name: &str) -> BackendResult<Option<StoredLock>> {
        Ok(None)
    }
}

/// A retention lock on a stored file (see [`Backend::stored_lock`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLock {
    /// When it ends (Unix seconds); `None`: no end date (a legal hold, lifted only by hand).
    pub until: Option<i64>,
    /// As the target names it: `GOVERNANCE`, `COMPLIANCE` or `LEGAL-HOLD`.
    pub mode: String,
}

/// Why a target URL cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a URL: give a target like file:///var/backups/host (scheme://...)")]
    NotAUrl(String),
    #[error("the {scheme}:// backend is not supported; supported: file://, sftp://, scp://, rsync://, ftp://, s3://, s3+http://, boto3+s3://, azure://")]
    Unsupported { scheme: String },
    #[error("{0}")]
    Invalid(String),
}

/// What a backend needs besides the URL: duplicity's backend options and the secrets it reads from the
/// environment (gathered once by `from_env`, so tests can pass them without touching the process env).
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// `--ssh-options`, split into words (`-oIdentityFile=…`, `-oUserKnownHostsFile=…`, …).
    pub ssh_options: Vec<String>,
    /// `--s3-endpoint-url`.
    pub s3_endpoint_url: Option<String>,
    /// `--s3-region-name`.
    pub s3_region_name: Option<String>,
    /// `--s3-unencrypted-connection`: http rather than https to the host of an `s3://host/…` URL.
    pub s3_unencrypted_connection: bool,
    /// `FTP_PASSWORD`: duplicity's password for ftp, sftp/scp and rsync when the URL has none.
    pub ftp_password: Option<String>,
    /// `RSYNC_PASSWORD`: the rsync daemon's password (before `FTP_PASSWORD`).
    pub rsync_password: Option<String>,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, for s3.
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    /// `AZURE_CONNECTION_STRING`, for azure.
    pub azure_connection_string: Option<String>,
    /// `HOME`, for the default `~/.ssh` files.
    pub home: Option<std::path::PathBuf>,
    /// Attempts for transient failures (1 = no retry).
    pub attempts: u32,
    /// First pause between attempts; doubled after each.
    pub backoff: std::time::Duration,
    /// `--rsync-options`, split into words, handed to every rsync run as written (see
    /// `rsync::check_rsync_options` for the ones refused).
    pub rsync_options: Vec<String>,
    /// `RSYNC_CONNECT_PROG` and `RSYNC_PROXY`: how rsync reaches a daemon (a proxy command such as
    /// `nc -x 127.0.0.1:9050 %H 873`, or an HTTP proxy). Handed to the rsync child only.
    pub rsync_connect_prog: Option<String>,
    pub rsync_proxy: Option<String>,
    /// Pause `backoff` between every two attempts instead of doubling it (`--backend-retry-delay`).
    pub retry_fixed_delay: bool,
    /// `--timeout`: the network timeout of the backends that have one (connecting, and waiting for
    /// data); each backend's own default when unset.
    pub timeout: Option<std::time::Duration>,
    /// How S3 stores each upload: Object Lock, storage class, server-side encryption, multipart.
    pub s3: s3::S3UploadOptions,
    /// How Azure stores each upload: access tier, block sizes, parallel blocks.
    pub azure: azure::AzureUploadOptions,
    /// Names of the small files readers need at once (the engine's manifests and signatures; set by
    /// `Repository::open`): cold storage classes (S3 Glacier, Deep Archive) leave them in STANDARD so
    /// that listings, incrementals and restores can read them, as duplicity does.
    pub is_metadata: Option<fn(&str) -> bool>,
    /// PEM certificates (bundles) that s3 trusts besides the system's roots (`--ssl-cacert-file`,
    /// `--ssl-cacert-path`): a private CA of an S3-compatible store.
    pub tls_extra_roots: Vec<Vec<u8>>,
    /// `--limit-upload` and `--limit-download`: the most bytes per second the backend sends and
    /// receives (see [`throttle`]); `None` or 0: no limit.
    pub upload_limit: Option<u64>,
    pub download_limit: Option<u64>,
    /// `--copy-blocksize`: bytes per read when file, sftp and ftp copy a file (see
    /// [`throttle::Limits::copy`]); `None`: each backend's default.
    pub copy_blocksize: Option<usize>,
}

// Hand-written so a password never reaches a log through `{:?}`.
impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("ssh_options", &self.ssh_options)
            .field("s3_endpoint_url", &self.s3_endpoint_url)
            .field("s3_region_name", &self.s3_region_name)
            .field("s3_unencrypted_connection", &self.s3_unencrypted_connection)
            .field(
                "ftp_password",
                &self.ftp_password.as_ref().map(|_| "<hidden>"),
            )
            .field(
                "rsync_password",
                &self.rsync_password.as_ref().map(|_| "<hidden>"),
            )
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field(
                "aws_secret_access_key",
                &self.aws_secret_access_key.as_ref().map(|_| "<hidden>"),
            )
            .field(
                "azure_connection_string",
                &self.azure_connection_string.as_ref().map(|_| "<hidden>"),
            )
            .field("home", &self.home)
            .field("rsync_options", &self.rsync_options)
            .field("rsync_connect_prog", &self.rsync_connect_prog)
            .field(
                "rsync_proxy",
                &self.rsync_proxy.as_ref().map(|_| "<hidden>"),
            )
            .field("retry_fixed_delay", &self.retry_fixed_delay)
            .field("timeout", &self.timeout)
            .field("s3", &self.s3)
            .field("azure", &self.azure)
            .field("upload_limit", &self.upload_limit)
            .field("download_limit", &self.download_limit)
            .field("copy_blocksize", &self.copy_blocksize)
            .finish_non_exhaustive()
    }
}

/// Environment variables that carry our secrets (besides every `AWS_*`). Programs we run (rsync, ssh,
/// system tools) get an environment without them; a child that needs one (rsync's daemon password)
/// is given it explicitly.
pub const SECRET_ENV: &[&str] = &[
    "PASSPHRASE",
    "SIGN_PASSPHRASE",
    // replicate: the source's passphrase when it differs from the target's.
    "SOURCE_PASSPHRASE",
    "FTP_PASSWORD",
    "RSYNC_PASSWORD",
    "AZURE_CONNECTION_STRING",
    // May carry proxy credentials; rsync gets it (and RSYNC_CONNECT_PROG) from OpenOptions.
    "RSYNC_PROXY",
    "RSYNC_CONNECT_PROG",
];

/// Removes [`SECRET_ENV`] and every `AWS_*` variable from the environment `cmd` will get.
pub fn scrub_secret_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for name in SECRET_ENV {
        cmd.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

impl OpenOptions {
    /// Options with the secrets and `HOME` read from the environment, 5 attempts starting at 2 s.
    pub fn from_env() -> OpenOptions {
        let var = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
        OpenOptions {
            ftp_password: var("FTP_PASSWORD"),
            rsync_password: var("RSYNC_PASSWORD"),
            aws_access_key_id: var("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            azure_connection_string: var("AZURE_CONNECTION_STRING"),
            home: std::env::var_os("HOME").map(Into::into),
            rsync_connect_prog: var("RSYNC_CONNECT_PROG"),
            rsync_proxy: var("RSYNC_PROXY"),
            ..OpenOptions::new()
        }
    }

    /// No options, no secrets, 5 attempts starting at 2 s.
    pub fn new() -> OpenOptions {
        OpenOptions {
            attempts: 5,
            backoff: std::time::Duration::from_secs(2),
            ..OpenOptions::default()
        }
    }

    /// `--ssh-options "-oA=b -oC=d"` as words (quotes group words, as a shell would).
    pub fn set_ssh_options(&mut self, s: &str) {
        self.ssh_options = split_words(s);
    }

    /// `--rsync-options "--password-file=F --partial"` (repeatable: words are appended), split as a
    /// shell would; options that would break the backend are refused.
    pub fn add_rsync_options(&mut self, s: &str) -> Result<(), UrlError> {
        let words = split_words(s);
        rsync::check_rsync_options(&words)?;
        self.rsync_options.extend(words);
        Ok(())
    }
}

/// Splits on whitespace outside single or double quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Opens the backend for a target URL such as `file:///var/backups/host` or `sftp://u@host/dir`.
pub fn open(url: &str, opts: &OpenOptions) -> Result<Box<dyn Backend>, UrlError> {
    let Some((scheme, _rest)) = url.split_once("://") else {
        return Err(UrlError::NotAUrl(url::redact(url)));
    };
    let inner: Box<dyn Backend> = match scheme {
        "file" => {
            return Ok(Box::new(
                file::FileBackend::from_url(url)?.with_limits(throttle::Limits::from_options(opts)),
            ))
        }
        "sftp" | "scp" => Box::new(sftp::SftpBackend::from_url(url, opts)?),
        "rsync" => Box::new(rsync::RsyncBackend::from_url(url, opts)?),
        "ftp" => Box::new(ftp::FtpBackend::from_url(url, opts)?),
        // FTP over TLS would need a TLS stack and a certificate policy for the data connections too;
        // not built (yet). Say so plainly rather than fall back to clear text.
        "ftps" | "ftpes" | "lftp+ftps" | "lftp+ftpes" => {
            return Err(UrlError::Invalid(format!(
                "{}: FTP over TLS ({scheme}://) is not supported; use ftp:// on a trusted network, or sftp://",
                url::redact(url)
            )))
        }
        "azure" => Box::new(azure::AzureBackend::from_url(url, opts)?),
        "s3" | "s3+http" | "boto3+s3" => Box::new(s3::S3Backend::from_url(url, opts)?),
        other => {
            return Err(UrlError::Unsupported {
                scheme: other.to_string(),
            })
        }
    };
    Ok(Box::new(
        retry::Retrying::new(inner, opts.attempts.max(1), opts.backoff)
            .with_fixed_delay(opts.retry_fixed_delay),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_options_split_like_a_shell() {
        let mut o = OpenOptions::new();
        o.set_ssh_options(" -oIdentityFile=/k  -oUserKnownHostsFile='/a b' \"-oX=1 2\" ");
        assert_eq!(
            o.ssh_options,
            ["-oIdentityFile=/k", "-oUserKnownHostsFile=/a b", "-oX=1 2"]
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let o = OpenOptions {
            ftp_password: Some("s3cret".into()),
            rsync_password: Some("s3cret".into()),
            aws_secret_access_key: Some("s3cret".into()),
            azure_connection_string: Some("AccountKey=s3cret".into()),
            ..OpenOptions::new()
        };
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_scheme_is_refused_without_the_password() {
        let e = open("gopher://u:pw@127.0.0.1/x", &OpenOptions::new())
            .err()
            .unwrap();
        assert!(e.to_string().contains("gopher"));
        assert!(!e.to_string().contains("pw@"));
    }
}
