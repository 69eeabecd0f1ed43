//! File metadata: reading it from the source tree in duplicity's order, comparing it the way duplicity
//! decides what changed, and putting it back on restore.

use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::index::Index;
use super::selection::{Candidate, Decision, Selection};

/// The entry types duplicity stores (sockets are skipped; hard links are stored as regular files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl FileType {
    /// The ustar type flag.
    pub fn tar_flag(self) -> u8 {
        match self {
            FileType::Regular => b'0',
            FileType::Directory => b'5',
            FileType::Symlink => b'2',
            FileType::Fifo => b'6',
            FileType::CharDevice => b'3',
            FileType::BlockDevice => b'4',
        }
    }

    pub fn from_tar_flag(flag: u8) -> Option<FileType> {
        Some(match flag {
            b'0' | 0 | b'7' => FileType::Regular,
            b'5' => FileType::Directory,
            b'2' => FileType::Symlink,
            b'6' => FileType::Fifo,
            b'3' => FileType::CharDevice,
            b'4' => FileType::BlockDevice,
            _ => return None,
        })
    }
}

/// What duplicity records of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub ftype: FileType,
    /// Permission bits including setuid, setgid and sticky (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// User and group names ("" when unknown); restore prefers them over the numbers.
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    /// Whole seconds; negative times are stored as 0, as duplicity does.
    pub mtime: i64,
    /// Size of a regular file's data (0 for other types).
    pub size: u64,
    /// Target of a symlink.
    pub link_target: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
}

impl Meta {
    /// duplicity's change test (0.8.22 `ROPath.__eq__`): size is never compared.
    pub fn same_as_for_backup(&self, old: &Meta) -> bool {
        if self.ftype != old.ftype {
            return false;
        }
        match self.ftype {
            FileType::Regular | FileType::Directory | FileType::Fifo => {
                self.mode == old.mode
                    && self.uid == old.uid
                    && self.gid == old.gid
                    && self.mtime == old.mtime
            }
            FileType::Symlink => self.link_target == old.link_target,
            FileType::CharDevice | FileType::BlockDevice => {
                self.mode == old.mode
                    && self.dev_major == old.dev_major
                    && self.dev_minor == old.dev_minor
            }
        }
    }
}

/// Looks up user and group names once per id.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
    uids: HashMap<Vec<u8>, Option<u32>>,
    gids: HashMap<Vec<u8>, Option<u32>>,
    /// Restores set owners by the recorded numbers, never by the names (`--numeric-owner`).
    pub numeric: bool,
}

impl NameCache {
    pub fn user_name(&mut self, uid: u32) -> Vec<u8> {
        self.users
            .entry(uid)
            .or_insert_with(|| lookup_user(uid))
            .clone()
    }

    pub fn group_name(&mut self, gid: u32) -> Vec<u8> {
        self.groups
            .entry(gid)
            .or_insert_with(|| lookup_group(gid))
            .clone()
    }

    pub fn uid_of(&mut self, name: &[u8]) -> Option<u32> {
        if name.is_empty() {
            return None;
        }
        *self
            .uids
            .entry(name.to_vec())
            .or_insert_with(|| lookup_uid(name))
    }

    pub fn gid_of(&mut self, name: &[u8]) -> Option<u32> {
        if name.is_empty() {
            return None;
        }
        *self
            .gids
            .entry(name.to_vec())
            .or_insert_with(|| lookup_gid(name))
    }
}

// The system's user and group databases (NSS, as duplicity's Python `pwd`/`grp`), names as bytes. An
// unknown id or name, or a failing lookup, is "no name", as before.
fn lookup_user(uid: u32) -> Vec<u8> {
    uzers::get_user_by_uid(uid)
        .map(|u| u.name().as_bytes().to_vec())
        .unwrap_or_default()
}

fn lookup_group(gid: u32) -> Vec<u8> {
    uzers::get_group_by_gid(gid)
        .map(|g| g.name().as_bytes().to_vec())
        .unwrap_or_default()
}

fn lookup_uid(name: &[u8]) -> Option<u32> {
    uzers::get_user_by_name(OsStr::from_bytes(name)).map(|u| u.uid())
}

fn lookup_gid(name: &[u8]) -> Option<u32> {
    uzers::get_group_by_name(OsStr::from_bytes(name)).map(|g| g.gid())
}

/// Reads the metadata of `path` without following a final symlink. `Ok(None)` for sockets and
/// other types duplicity does not store.
pub fn read_meta(path: &Path, names: &mut NameCache) -> io::Result<Option<Meta>> {
    let md = fs::symlink_metadata(path)?;
    meta_from(path, &md, names)
}

fn meta_from(path: &Path, md: &fs::Metadata, names: &mut NameCache) -> io::Result<Option<Meta>> {
    let ft = md.file_type();
    let ftype = if ft.is_file() {
        FileType::Regular
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_fifo() {
        FileType::Fifo
    } else if ft.is_char_device() {
        FileType::CharDevice
    } else if ft.is_block_device() {
        FileType::BlockDevice
    } else {
        return Ok(None);
    };
    let link_target = if ftype == FileType::Symlink {
        fs::read_link(path)?.into_os_string().as_bytes().to_vec()
    } else {
        Vec::new()
    };
    let (dev_major, dev_minor) = match ftype {
        FileType::CharDevice | FileType::BlockDevice => {
            let r = md.rdev();
            (rustix::fs::major(r), rustix::fs::minor(r))
        }
        _ => (0, 0),
    };
    Ok(Some(Meta {
        ftype,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        uname: names.user_name(md.uid()),
        gname: names.group_name(md.gid()),
        mtime: md.mtime().max(0),
        size: if ftype == FileType::Regular {
            md.len()
        } else {
            0
        },
        link_target,
        dev_major,
        dev_minor,
    }))
}

/// One entry of the source tree.
pub struct SourceEntry {
    pub index: Index,
    pub path: PathBuf,
    pub meta: Meta,
    /// The walk's `st_size` of the entry (a directory's or a symlink's too, which `meta` does not
    /// keep): duplicity's `ROPath.getsize`, counted in its statistics.
    pub stat_size: u64,
}

/// Something the walk could not read; the backup notes it and goes on, as duplicity does.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub message: String,
}

/// Walks a source tree depth-first in duplicity's index order (children sorted by their name bytes,
/// each directory before its contents). Sockets are skipped with a note; unreadable entries are noted.
/// With a [`Selection`], yields only the selected entries: excluded directories are not entered, and a
/// scanned directory is yielded (before its contents) only once something inside it is.
pub struct TreeWalk {
    root: PathBuf,
    /// Pending children per open directory, sorted in reverse so `pop` yields the next one, and whether
    /// the directory was entered for a scan (it waits in `deferred`).
    stack: Vec<(Index, Vec<Vec<u8>>, bool)>,
    started: bool,
    names: NameCache,
    selection: Selection,
    /// Scanned directories not yielded yet, outermost first.
    deferred: Vec<SourceEntry>,
    /// Entries ready to yield: released deferred directories, then the entry that released them.
    ready: VecDeque<SourceEntry>,
    pub problems: Vec<WalkProblem>,
    pub skipped_sockets: u64,
    /// `--copy-links`: symlinks are followed (entries are what they point to).
    follow: bool,
    /// (device, inode) of each directory in `stack`: with `follow`, a link back to one of them would
    /// make the walk endless.
    dir_ids: Vec<(u64, u64)>,
    /// With `follow`: links not backed up (dangling, a loop of links, or a directory containing
    /// itself), and why. duplicity leaves the first two out silently and descends into the third until
    /// the path is too long; here each is left out and reported.
    pub skipped_links: Vec<WalkProblem>,
}

impl TreeWalk {
    pub fn new(root: &Path) -> TreeWalk {
        TreeWalk::with_selection(root, Selection::default())
    }

    /// A walk that yields only what `selection` selects (the root always, as duplicity).
    pub fn with_selection(root: &Path, selection: Selection) -> TreeWalk {
        TreeWalk {
            root: root.to_path_buf(),
            stack: Vec::new(),
            started: false,
            names: NameCache::default(),
            selection,
            deferred: Vec::new(),
            ready: VecDeque::new(),
            problems: Vec::new(),
            skipped_sockets: 0,
            follow: false,
            dir_ids: Vec::new(),
            skipped_links: Vec::new(),
        }
    }

    /// `--copy-links`: follow symlinks, backing up what they point to as duplicity does.
    pub fn follow_links(&mut self, on: bool) {
        self.follow = on;
    }

    /// Every call pushes exactly one frame on `stack` (and one id on `dir_ids`).
    fn push_dir(&mut self, index: &Index, path: &Path, scanned: bool, id: (u64, u64)) {
        self.dir_ids.push(id);
        if let Some(mut children) = self.selection.listed_children(index) {
            children.sort_unstable_by(|a, b| b.cmp(a));
            self.stack.push((index.clone(), children, scanned));
            return;
        }
        match fs::read_dir(path) {
            Ok(rd) => {
                let mut children: Vec<Vec<u8>> = Vec::new();
                for ent in rd {
                    match ent {
                        Ok(ent) => children.push(ent.file_name().as_bytes().to_vec()),
                        Err(e) => self.problems.push(WalkProblem {
                            path: path.to_path_buf(),
                            message: e.to_string(),
                        }),
                    }
                }
                children.sort_unstable_by(|a, b| b.cmp(a));
                self.stack.push((index.clone(), children, scanned));
            }
            Err(e) => {
                self.problems.push(WalkProblem {
                    path: path.to_path_buf(),
                    message: format!("cannot list directory: {e}"),
                });
                // Keep the frame so a scanned directory leaves `deferred` when it ends.
                self.stack.push((index.clone(), Vec::new(), scanned));
            }
        }
    }

    /// Yields `entry` after the scanned directories above it.
    fn release(&mut self, entry: SourceEntry) {
        self.ready.extend(self.deferred.drain(..));
        self.ready.push_back(entry);
    }
}

impl Iterator for TreeWalk {
    type Item = SourceEntry;

    fn next(&mut self) -> Option<SourceEntry> {
        if let Some(e) = self.ready.pop_front() {
            return Some(e);
        }
        if !self.started {
            self.started = true;
            let root = self.root.clone();
            match fs::metadata(&root) {
                Ok(md) if md.is_dir() => {
                    let meta = match meta_from(&root, &md, &mut self.names) {
                        Ok(Some(m)) => m,
                        _ => return None,
                    };
                    self.push_dir(&Index::root(), &root, false, (md.dev(), md.ino()));
                    return Some(SourceEntry {
                        index: Index::root(),
                        path: root,
                        meta,
                        stat_size: md.len(),
                    });
                }
                Ok(_) | Err(_) => return None,
            }
        }
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            let (parent, children, _) = self.stack.last_mut()?;
            let Some(name) = children.pop() else {
                let (finished, _, scanned) = self.stack.pop().expect("frame");
                self.dir_ids.pop();
                if scanned && self.deferred.last().is_some_and(|d| d.index == finished) {
                    self.deferred.pop();
                }
                continue;
            };
            let index = parent.join(&name);
            let path = self.root.join(OsStr::from_bytes(index.as_bytes()));
            let md = match fs::symlink_metadata(&path) {
                Ok(md) if self.follow && md.file_type().is_symlink() => match fs::metadata(&path) {
                    Ok(target) => target,
                    Err(e) => {
                        let why =
                            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                                "a loop of symlinks".to_string()
                            } else if e.kind() == io::ErrorKind::NotFound {
                                "a dangling symlink (its target does not exist)".to_string()
                            } else {
                                format!("cannot follow the symlink: {e}")
                            };
                        self.skipped_links.push(WalkProblem {
                            path,
                            message: format!("{why}; not backed up (--copy-links)"),
                        });
                        continue;
                    }
                },
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A --files-from entry that does not exist stores nothing, but an include of it
                    // still stores the directories above it, as in duplicity.
                    if !self.selection.is_everything() {
                        let c = Candidate {
                            index: &index,
                            path: &path,
                            ftype: None,
                            dev: 0,
                            mtime: 0,
                        };
                        if self.selection.decide(&c) == Decision::Include {
                            self.ready.extend(self.deferred.drain(..));
                        }
                    }
                    continue; // vanished meanwhile
                }
                Err(e) => {
                    self.problems.push(WalkProblem {
                        path,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            match meta_from(&path, &md, &mut self.names) {
                Ok(Some(meta)) => {
                    let decision = if self.selection.is_everything() {
                        Decision::Include
                    } else {
                        self.selection.decide(&Candidate {
                            index: &index,
                            path: &path,
                            ftype: Some(meta.ftype),
                            dev: md.dev(),
                            mtime: md.mtime(),
                        })
                    };
                    let is_dir = meta.ftype == FileType::Directory;
                    if is_dir && self.follow && self.dir_ids.contains(&(md.dev(), md.ino())) {
                        self.skipped_links.push(WalkProblem {
                            path,
                            message: "a symlink to a directory that contains it; not backed up (--copy-links)".into(),
                        });
                        continue;
                    }
                    let id = (md.dev(), md.ino());
                    let entry = SourceEntry {
                        index,
                        path,
                        meta,
                        stat_size: md.len(),
                    };
                    match decision {
                        Decision::Include => {
                            if is_dir {
                                self.push_dir(&entry.index, &entry.path, false, id);
                            }
                            self.release(entry);
                        }
                        Decision::Scan if is_dir => {
                            self.push_dir(&entry.index, &entry.path, true, id);
                            self.deferred.push(entry);
                        }
                        Decision::Scan | Decision::Exclude => {}
                    }
                }
                Ok(None) => {
                    self.skipped_sockets += 1;
                    continue;
                }
                Err(e) => {
                    self.problems.push(WalkProblem {
                        path,
                        message: e.to_string(),
                    });
                    continue;
                }
            }
        }
    }
}

/// True when this process may set owners and create devices.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn owner_of(meta: &Meta, names: &mut NameCache) -> (rustix::fs::Uid, rustix::fs::Gid) {
    let (uid, gid) = if names.numeric {
        (meta.uid, meta.gid)
    } else {
        (
            names.uid_of(&meta.uname).unwrap_or(meta.uid),
            names.gid_of(&meta.gname).unwrap_or(meta.gid),
        )
    };
    (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    )
}

fn times_of(meta: &Meta) -> rustix::fs::Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: meta.mtime,
        tv_nsec: 0,
    };
    rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn mode_of(meta: &Meta) -> rustix::fs::Mode {
    rustix::fs::Mode::from_raw_mode(meta.mode & 0o7777)
}

/// Sets owner (when root; names preferred over numbers, as duplicity), permission bits and mtime through
/// a descriptor of the entry itself (a regular file, directory or fifo opened without following links),
/// so no path is looked up again.
pub fn apply_meta_fd(
    fd: impl AsFd,
    meta: &Meta,
    names: &mut NameCache,
    as_root: bool,
) -> io::Result<()> {
    let fd = fd.as_fd();
    if as_root {
        let (uid, gid) = owner_of(meta, names);
        rustix::fs::fchown(fd, Some(uid), Some(gid))?;
    }
    // chmod after chown: chown clears setuid/setgid bits.
    rustix::fs::fchmod(fd, mode_of(meta))?;
    rustix::fs::futimens(fd, &times_of(meta))?;
    Ok(())
}

/// Owner (when root) and mtime of the symlink `name` in `dir`, never following it. A symlink's own mode
/// cannot be set on Linux, and chmod would act on what it points to, so there is none.
pub fn apply_symlink_meta_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    meta: &Meta,
    names: &mut NameCache,
    as_root: bool,
) -> io::Result<()> {
    let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
    if as_root {
        let (uid, gid) = owner_of(meta, names);
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), nofollow)?;
    }
    rustix::fs::utimensat(dir, name, &times_of(meta), nofollow)?;
    Ok(())
}

/// Creates the fifo or device node `name` in `dir`, mode 0600 until its metadata is applied.
pub fn make_node_at(dir: BorrowedFd<'_>, name: &CStr, meta: &Meta) -> io::Result<()> {
    use rustix::fs::FileType as Kind;
    let (kind, dev) = match meta.ftype {
        FileType::Fifo => (Kind::Fifo, 0),
        FileType::CharDevice => (
            Kind::CharacterDevice,
            rustix::fs::makedev(meta.dev_major, meta.dev_minor),
        ),
        FileType::BlockDevice => (
            Kind::BlockDevice,
            rustix::fs::makedev(meta.dev_major, meta.dev_minor),
        ),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a node type",
            ))
        }
    };
    rustix::fs::mknodat(dir, name, kind, rustix::fs::Mode::from_raw_mode(0o600), dev)?;
    Ok(())
}

/// Owner, mode and mtime of the device node `name` in `dir`, without opening the device (opening some
/// devices has effects) and without following a symlink: owner and times through `*at(NOFOLLOW)`, the
/// mode through an O_PATH descriptor of the node itself (via /proc/self/fd, as fchmod refuses O_PATH).
pub fn apply_device_meta_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    meta: &Meta,
    names: &mut NameCache,
    as_root: bool,
) -> io::Result<()> {
    use rustix::fs::{FileType as Kind, OFlags};
    let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
    if as_root {
        let (uid, gid) = owner_of(meta, names);
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), nofollow)?;
    }
    let node = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let kind = Kind::from_raw_mode(rustix::fs::fstat(&node)?.st_mode);
    if !matches!(kind, Kind::CharacterDevice | Kind::BlockDevice) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a device node (replaced during the restore?)",
        ));
    }
    let via_proc = format!("/proc/self/fd/{}", node.as_raw_fd());
    match rustix::fs::chmod(via_proc.as_str(), mode_of(meta)) {
        Ok(()) => {}
        // Without /proc: by name relative to `dir`, which is ours and was just checked to hold a device.
        Err(rustix::io::Errno::NOENT) => {
            rustix::fs::chmodat(dir, name, mode_of(meta), rustix::fs::AtFlags::empty())?
        }
        Err(e) => return Err(e.into()),
    }
    rustix::fs::utimensat(dir, name, &times_of(meta), nofollow)?;
    Ok(())
}

/// The host name duplicity writes into manifests.
pub fn hostname() -> Vec<u8> {
    let name = rustix::system::uname().nodename().to_bytes().to_vec();
    if name.is_empty() {
        return b"localhost".to_vec();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_is_in_index_order_and_skips_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in ["a", "B"] {
            fs::create_dir(r.join(d)).unwrap();
        }
        for f in ["a/b", "a-b", "a.txt", "Z", "_u", "B/x"] {
            fs::write(r.join(f), b"x").unwrap();
        }
        symlink("nowhere", r.join("dangling")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
        let mut walk = TreeWalk::new(r);
        let got: Vec<String> = walk.by_ref().map(|e| e.index.to_string()).collect();
        assert_eq!(
            got,
            [".", "B", "B/x", "Z", "_u", "a", "a/b", "a-b", "a.txt", "dangling"]
        );
        assert_eq!(walk.skipped_sockets, 1);
    }

    #[test]
    fn copy_links_follows_and_reports_what_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir(r.join("d")).unwrap();
        fs::write(r.join("a.txt"), b"hello").unwrap();
        fs::write(r.join("d/b"), b"x").unwrap();
        symlink("a.txt", r.join("link")).unwrap();
        symlink("d", r.join("dlink")).unwrap();
        symlink("nowhere", r.join("dangling")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("..", r.join("d/up")).unwrap();
        let mut walk = TreeWalk::new(r);
        walk.follow_links(true);
        let got: Vec<(String, FileType, u64)> = walk
            .by_ref()
            .map(|e| (e.index.to_string(), e.meta.ftype, e.meta.size))
            .collect();
        use FileType::*;
        assert_eq!(
            got,
            [
                (".".to_string(), Directory, 0),
                ("a.txt".into(), Regular, 5),
                ("d".into(), Directory, 0),
                ("d/b".into(), Regular, 1),
                ("dlink".into(), Directory, 0),
                ("dlink/b".into(), Regular, 1),
                ("link".into(), Regular, 5),
            ]
        );
        let mut skipped: Vec<String> = walk
            .skipped_links
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.path.file_name().unwrap().to_string_lossy(),
                    p.message
                )
            })
            .collect();
        skipped.sort();
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        assert!(
            skipped[0].starts_with("dangling a dangling symlink"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].starts_with("loop1 a loop of symlinks"),
            "{skipped:?}"
        );
        assert!(
            skipped[2].starts_with("loop2 a loop of symlinks"),
            "{skipped:?}"
        );
        // d/up and dlink/up both lead back to the root.
        assert!(
            skipped[3].starts_with("up a symlink to a directory that contains it"),
            "{skipped:?}"
        );
        assert!(walk.problems.is_empty());
    }

    #[test]
    fn change_test_ignores_size_but_not_mtime() {
        let mut names = NameCache::default();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"abc").unwrap();
        let m = read_meta(&f, &mut names).unwrap().unwrap();
        let mut bigger = m.clone();
        bigger.size += 10;
        assert!(bigger.same_as_for_backup(&m));
        let mut newer = m.clone();
        newer.mtime += 1;
        assert!(!newer.same_as_for_backup(&m));
    }
}
