//! The local directory backend: `file:///absolute` and `file://relative`, as duplicity parses them.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::throttle::{Limits, COPY_BUFFER};
use super::{Backend, BackendError, BackendResult, UrlError};

pub struct FileBackend {
    dir: PathBuf,
    /// Bandwidth limits (a target on a network filesystem or a slow disk); none by default.
    limits: Limits,
}

impl FileBackend {
    /// `file:///abs/dir` or `file://rel/dir` (relative to the current directory).
    pub fn from_url(url: &str) -> Result<FileBackend, UrlError> {
        let path = url
            .strip_prefix("file://")
            .ok_or_else(|| UrlError::NotAUrl(url.to_string()))?;
        if path.is_empty() {
            return Err(UrlError::Invalid(format!(
                "{url:?} names no directory: use file:///absolute/dir or file://relative/dir"
            )));
        }
        Ok(FileBackend::new(PathBuf::from(path)))
    }

    pub fn new(dir: PathBuf) -> FileBackend {
        FileBackend {
            dir,
            limits: Limits::default(),
        }
    }

    /// The same backend, copying at most at these rates.
    pub fn with_limits(mut self, limits: Limits) -> FileBackend {
        self.limits = limits;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, name: &str, e: io::Error) -> BackendError {
        let backend = self.describe();
        let name = name.to_string();
        match e.kind() {
            io::ErrorKind::NotFound => BackendError::NotFound { backend, name },
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                BackendError::Transient {
                    backend,
                    name,
                    message: e.to_string(),
                }
            }
            _ => BackendError::Permanent {
                backend,
                name,
                message: describe_io(&e),
            },
        }
    }

    fn ensure_dir(&self) -> BackendResult<()> {
        fs::create_dir_all(&self.dir).map_err(|e| BackendError::Permanent {
            backend: self.describe(),
            name: String::new(),
            message: format!(
                "cannot create the target directory {}: {}",
                self.dir.display(),
                describe_io(&e)
            ),
        })
    }
}

impl FileBackend {
    /// An upload's error; a refused rename (EPERM: an append-only `chattr +a` directory) names the
    /// option that makes uploads work there.
    fn upload_err(&self, name: &str, e: io::Error) -> BackendError {
        if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::PERM) {
            return BackendError::Permanent {
                backend: self.describe(),
                name: name.to_string(),
                message: format!("{}: if this directory is append-only, say so with --append-only-target (charm: append_only_target=true), which writes final names directly", describe_io(&e)),
            };
        }
        self.err(name, e)
    }
}

/// io::Error text with a hint for the failures an operator can fix.
fn describe_io(e: &io::Error) -> String {
    use rustix::io::Errno;
    match Errno::from_io_error(e) {
        Some(Errno::NOSPC) => format!("{e}: free space on the target or choose another target"),
        Some(Errno::ACCESS | Errno::PERM) => {
            format!("{e}: check the permissions of the target directory")
        }
        Some(Errno::ROFS) => format!("{e}: the target is mounted read-only"),
        _ => e.to_string(),
    }
}

impl Backend for FileBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.ensure_dir()?;
        let dst = self.dir.join(name);
        // Write under a temporary name and rename, so a reader never sees a partial file.
        let tmp = self.dir.join(format!(".{name}.part"));
        let result = (|| {
            match (&self.limits.upload, self.limits.copy_block) {
                // The kernel's copy (copy_file_range) when nothing limits it or sets the block size.
                (None, None) => {
                    fs::copy(src, &tmp)?;
                }
                _ => {
                    let mut from = self.limits.upload(fs::File::open(src)?);
                    let mut to = fs::File::create(&tmp)?;
                    self.limits.copy(&mut from, &mut to, COPY_BUFFER)?;
                }
            }
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, &dst)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(self.upload_err(name, e));
        }
        Ok(())
    }

    fn put_move(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.ensure_dir()?;
        let tmp = self.dir.join(format!(".{name}.part"));
        // A rename moves no bytes, so the upload limit applies only when it has to copy.
        match fs::rename(src, &tmp) {
            Ok(()) => {}
            // Another filesystem: copy instead.
            Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::XDEV) => {
                self.put(src, name)?;
                let _ = fs::remove_file(src);
                return Ok(());
            }
            Err(e) => return Err(self.err(name, e)),
        }
        let result = (|| {
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, self.dir.join(name))
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(self.upload_err(name, e));
        }
        Ok(())
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        let src = self.dir.join(name);
        let result = match (&self.limits.download, self.limits.copy_block) {
            (None, None) => fs::copy(&src, dst),
            _ => fs::File::open(&src).and_then(|f| {
                let mut to = fs::File::create(dst)?;
                self.limits
                    .copy(&mut self.limits.download(f), &mut to, COPY_BUFFER)
            }),
        };
        result.map(|_| ()).map_err(|e| self.err(name, e))
    }

    fn open(&self, name: &str) -> BackendResult<Box<dyn Read + Send + Sync>> {
        let f = fs::File::open(self.dir.join(name)).map_err(|e| self.err(name, e))?;
        Ok(Box::new(self.limits.download(f)))
    }

    fn local_path(&self, name: &str) -> Option<PathBuf> {
        // A reader given the path would read around the download limit.
        self.limits.download.is_none().then(|| self.dir.join(name))
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("", e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| self.err("", e))?;
            if let Ok(name) = ent.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        for name in names {
            match fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(name, e)),
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn put_new(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.ensure_dir()?;
        // create_new: an existing file (even a partial one) is never replaced.
        let result = (|| {
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.dir.join(name))?;
            self.limits
                .copy(&mut fs::File::open(src)?, &mut out, COPY_BUFFER)?;
            out.sync_all()
        })();
        result.map_err(|e| self.err(name, e))
    }

    fn stored_size(&self, name: &str) -> BackendResult<Option<u64>> {
        match fs::metadata(self.dir.join(name)) {
            Ok(md) => Ok(Some(md.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("target"));
        assert!(b.list().unwrap().is_empty());
        let src = dir.path().join("src");
        fs::write(&src, b"hello").unwrap();
        b.put(&src, "duplicity-full.20240101T000000Z.manifest")
            .unwrap();
        assert_eq!(
            b.list().unwrap(),
            ["duplicity-full.20240101T000000Z.manifest"]
        );
        let got = dir.path().join("got");
        b.get("duplicity-full.20240101T000000Z.manifest", &got)
            .unwrap();
        assert_eq!(fs::read(&got).unwrap(), b"hello");
        assert!(b.get("missing", &got).unwrap_err().is_not_found());
        b.delete(&[
            "duplicity-full.20240101T000000Z.manifest".into(),
            "missing".into(),
        ])
        .unwrap();
        assert!(b.list().unwrap().is_empty());
    }

    #[test]
    fn put_move_moves_and_never_leaves_a_partial_name() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().join("target"));
        let src = dir.path().join("vol");
        fs::write(&src, b"data").unwrap();
        b.put_move(&src, "duplicity-full.20240101T000000Z.vol1.difftar.gz")
            .unwrap();
        assert!(!src.exists());
        assert_eq!(
            b.list().unwrap(),
            ["duplicity-full.20240101T000000Z.vol1.difftar.gz"]
        );
    }
}
