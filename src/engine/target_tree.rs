//! A restore target reached only through directory descriptors. Every lookup below the target goes
//! component by component with O_NOFOLLOW|O_DIRECTORY from a descriptor of the target itself, so no
//! creation, removal or metadata change can land outside it through a symlink, whatever an earlier set
//! of the chain put at a path.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{AtFlags, FileType as Kind, Mode, OFlags};
use rustix::io::Errno;

use super::index::Index;

/// How [`TargetTree::parent`] treats the directories on the way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Missing directories are made; a symlink or another file on the way is an error.
    Create,
    /// Anything but an existing directory on the way means there is nothing there (`Ok(None)`).
    Existing,
}

pub struct TargetTree {
    target: PathBuf,
    /// The directory holding the target, and the target's own name in it: the parent of the root entry
    /// (which is a file for `--file-to-restore` of a file). None when the target path has no name of
    /// its own ("/").
    outer: Option<(Rc<OwnedFd>, CString)>,
    root: Option<Rc<OwnedFd>>,
    /// Open directories below the root along the path used last, outermost first.
    stack: Vec<(Vec<u8>, Rc<OwnedFd>)>,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl TargetTree {
    /// Opens the directory that holds `target` (following links there: the user chose that path).
    pub fn open(target: &Path) -> Result<TargetTree> {
        let named = match target.file_name() {
            Some(_) => Some(target.to_path_buf()),
            // ".", "..", "x/..": the real path names it.
            None => std::fs::canonicalize(target)
                .ok()
                .filter(|p| p.file_name().is_some()),
        };
        let outer = match named {
            None => None,
            Some(p) => {
                let name = p.file_name().expect("checked");
                let dir = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let fd =
                    rustix::fs::open(dir, DIR_FLAGS.difference(OFlags::NOFOLLOW), Mode::empty())
                        .map_err(|e| anyhow!("cannot open {}: {e}", dir.display()))?;
                Some((Rc::new(fd), cstring(name.as_bytes())?))
            }
        };
        Ok(TargetTree {
            target: target.to_path_buf(),
            outer,
            root: None,
            stack: Vec::new(),
        })
    }

    /// The path of `rel` under the target, for messages.
    pub fn path_of(&self, rel: &Index) -> PathBuf {
        if rel.is_root() {
            self.target.clone()
        } else {
            self.target.join(OsStr::from_bytes(rel.as_bytes()))
        }
    }

    /// The target directory itself.
    fn root_dir(&mut self, walk: Walk) -> Result<Option<Rc<OwnedFd>>> {
        if let Some(r) = &self.root {
            return Ok(Some(r.clone()));
        }
        let fd = match &self.outer {
            Some((outer, name)) => {
                let (outer, name) = (outer.clone(), name.clone());
                match self.descend(&outer, &name, walk, &Index::root())? {
                    Some(fd) => fd,
                    None => return Ok(None),
                }
            }
            None => rustix::fs::open(
                &self.target,
                DIR_FLAGS.difference(OFlags::NOFOLLOW),
                Mode::empty(),
            )
            .map_err(|e| anyhow!("cannot open {}: {e}", self.target.display()))?,
        };
        let fd = Rc::new(fd);
        self.root = Some(fd.clone());
        Ok(Some(fd))
    }

    /// Opens the directory `name` in `dir` (which is `rel`), without following a symlink.
    fn descend(
        &self,
        dir: &OwnedFd,
        name: &CStr,
        walk: Walk,
        rel: &Index,
    ) -> Result<Option<OwnedFd>> {
        let mut made = false;
        loop {
            match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::NOENT) if walk == Walk::Create && !made => {
                    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => made = true,
                        Err(e) => bail!("cannot create {}: {e}", self.path_of(rel).display()),
                    }
                }
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) if walk == Walk::Existing => {
                    return Ok(None)
                }
                Err(e @ (Errno::NOTDIR | Errno::LOOP)) => {
                    let shown = self.path_of(rel);
                    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW);
                    if st.is_ok_and(|st| Kind::from_raw_mode(st.st_mode) == Kind::Symlink) {
                        bail!(
                            "refusing to write through the symlink {}: the archive tries to escape the restore target",
                            shown.display()
                        );
                    }
                    bail!("{} is in the way of a directory ({e})", shown.display())
                }
                Err(e) => bail!("cannot open {}: {e}", self.path_of(rel).display()),
            }
        }
    }

    /// The directory that holds `rel` and rel's name in it: for the root, the directory holding the target.
    pub fn parent(&mut self, rel: &Index, walk: Walk) -> Result<Option<(Rc<OwnedFd>, CString)>> {
        if rel.is_root() {
            return match &self.outer {
                Some((outer, name)) => Ok(Some((outer.clone(), name.clone()))),
                None => bail!(
                    "cannot restore a single file as {}: give a target path that names it",
                    self.target.display()
                ),
            };
        }
        let comps: Vec<&[u8]> = rel.components().collect();
        let (last, parents) = comps.split_last().expect("not the root");
        let keep = self
            .stack
            .iter()
            .zip(parents.iter())
            .take_while(|((have, _), want)| have.as_slice() == **want)
            .count();
        self.stack.truncate(keep);
        let Some(root) = self.root_dir(walk)? else {
            return Ok(None);
        };
        for (i, comp) in parents.iter().enumerate().skip(keep) {
            let dir = self
                .stack
                .last()
                .map(|(_, fd)| fd.clone())
                .unwrap_or(root.clone());
            let here = Index::from_trusted(parents[..=i].join(&b'/'));
            let Some(fd) = self.descend(&dir, &cstring(comp)?, walk, &here)? else {
                return Ok(None);
            };
            self.stack.push((comp.to_vec(), Rc::new(fd)));
        }
        let dir = self.stack.last().map(|(_, fd)| fd.clone()).unwrap_or(root);
        Ok(Some((dir, cstring(last)?)))
    }

    /// Removes whatever is at `rel` (`name` in `parent`, as [`TargetTree::parent`] gave them), a directory
    /// with all it holds, never following a symlink. True when something was there.
    pub fn clear(&mut self, parent: &OwnedFd, name: &CStr, rel: &Index) -> Result<bool> {
        if rel.is_root() {
            self.root = None;
            self.stack.clear();
        }
        // The stack is at rel's parent now, so it holds nothing below rel.
        remove_tree_at(parent, name)
            .with_context(|| format!("cannot remove {}", self.path_of(rel).display()))
    }

    /// A directory at `rel`: an existing one is kept, anything else there is replaced (for the root
    /// of a whole restore, refused). Returns its descriptor and whether something else was replaced.
    pub fn make_dir(&mut self, rel: &Index, replace: bool) -> Result<(Rc<OwnedFd>, bool)> {
        if rel.is_root() && (self.outer.is_none() || !replace) {
            let fd = self.root_dir(Walk::Create)?.expect("created");
            return Ok((fd, false));
        }
        let (parent, name) = self.parent(rel, Walk::Create)?.expect("created");
        let mut replaced = false;
        match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Kind::from_raw_mode(st.st_mode) == Kind::Directory => {}
            Ok(_) => {
                replaced = self.clear(&parent, &name, rel)?;
                self.mkdir(&parent, &name, rel)?;
            }
            Err(Errno::NOENT) => self.mkdir(&parent, &name, rel)?,
            Err(e) => bail!("cannot inspect {}: {e}", self.path_of(rel).display()),
        }
        let fd = Rc::new(
            rustix::fs::openat(&parent, &name, DIR_FLAGS, Mode::empty())
                .map_err(|e| anyhow!("cannot open {}: {e}", self.path_of(rel).display()))?,
        );
        if rel.is_root() {
            self.root = Some(fd.clone());
        } else {
            self.stack.push((name.to_bytes().to_vec(), fd.clone()));
        }
        Ok((fd, replaced))
    }

    fn mkdir(&self, parent: &OwnedFd, name: &CStr, rel: &Index) -> Result<()> {
        // Private until restore applies the archive's mode at the end.
        rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(|e| anyhow!("cannot create {}: {e}", self.path_of(rel).display()))
    }

    /// The directory at `rel`, opened without following links anywhere; None when it is not there.
    pub fn open_dir(&mut self, rel: &Index) -> Result<Option<Rc<OwnedFd>>> {
        if rel.is_root() {
            return self.root_dir(Walk::Existing);
        }
        let Some((parent, name)) = self.parent(rel, Walk::Existing)? else {
            return Ok(None);
        };
        match rustix::fs::openat(&parent, &name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(Rc::new(fd))),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
            Err(e) => bail!("cannot open {}: {e}", self.path_of(rel).display()),
        }
    }
}

fn cstring(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| {
        anyhow!(
            "the name {:?} contains a NUL byte",
            String::from_utf8_lossy(b)
        )
    })
}

/// Removes `name` in `dir` and, for a directory, everything below it, by descriptors and without
/// following a symlink. True when something was there.
pub fn remove_tree_at(dir: impl AsFd, name: &CStr) -> std::io::Result<bool> {
    let dir = dir.as_fd();
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if Kind::from_raw_mode(st.st_mode) == Kind::Directory {
        let sub = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
        // A directory restored read-only earlier (a --force restore over an old one) can still be emptied.
        if st.st_mode & 0o700 != 0o700 {
            let _ = rustix::fs::fchmod(&sub, Mode::from_raw_mode(0o700));
        }
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&sub)? {
            let entry = entry?;
            let n = entry.file_name();
            if n.to_bytes() != b"." && n.to_bytes() != b".." {
                names.push(n.to_owned());
            }
        }
        for n in names {
            remove_tree_at(&sub, &n)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(true)
}
