//! verify: prove a backup chain is intact and, with `--compare-data`, that it matches a directory.
//!
//! The chain as of the time is restored, with restore's own checks (every volume's SHA1 against its
//! manifest, OpenPGP integrity, tar structure, deltas applied), into a private scratch directory that is
//! removed afterwards; memory stays flat whatever the size. Then the restored tree and SRC are walked
//! side by side in index order, as duplicity 0.8.22 collates them. Without `--compare-data` every pair
//! counts as equal (duplicity's "N files compared, 0 differences found" only proves integrity); with it,
//! type, permissions with owner, mtime, content, symlink target and device numbers are compared, each
//! difference reported in duplicity's words.
//!
//! Ownership is compared as duplicity compares it (uid:gid with the mode) when running as root; as
//! another user the scratch restore cannot set owners, so only the mode is compared.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::engine::commands::json;
use crate::engine::commands::list::type_name;
use crate::engine::commands::restore::{self, RestoreOptions};
use crate::engine::meta::{self, FileType, Meta, SourceEntry, TreeWalk};
use crate::engine::repository::ReadContext;
use crate::engine::selection::Selection;
use crate::engine::timestr::asctime_local;

pub struct VerifyOptions {
    /// The directory to compare with (duplicity's local path).
    pub source: PathBuf,
    /// Verify the state as of this time.
    pub time: i64,
    /// `--compare-data`: compare metadata and contents; otherwise integrity only.
    pub compare_data: bool,
    /// Where the scratch restore goes (default: the system temp dir).
    pub scratch_in: Option<PathBuf>,
    /// Which files of `source` are compared, as duplicity applies the backup's selection options.
    pub selection: Selection,
    /// `--copy-links`: `source` is walked following symlinks, as a `--copy-links` backup read it
    /// (duplicity 3.2.1 stats every local path through its links then).
    pub copy_links: bool,
    /// `--copy-blocksize` in bytes: the size of each read when `compare_data` compares contents, as
    /// duplicity reads with it (default [`DEFAULT_READ_SIZE`]).
    pub read_size: Option<usize>,
}

/// Bytes per read when contents are compared without `--copy-blocksize`.
pub const DEFAULT_READ_SIZE: usize = 1 << 16;

/// One difference, in duplicity's words (without its "Difference found: " prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: Vec<u8>,
    pub message: String,
}

#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Entries compared (the union of the backup's and SRC's entries).
    pub compared: u64,
    pub differences: Vec<Difference>,
    /// Sets checked, by time (full first).
    pub set_times: Vec<i64>,
    pub volumes: u64,
    pub notes: Vec<String>,
    pub compare_data: bool,
}

fn ngettext<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

impl VerifyReport {
    /// duplicity's output: one "Difference found:" line per difference, then the summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for d in &self.differences {
            s.push_str("Difference found: ");
            s.push_str(&d.message);
            s.push('\n');
        }
        let n = self.differences.len() as u64;
        s.push_str(&format!(
            "Verify complete: {} {}, {} {}.\n",
            self.compared,
            ngettext(self.compared, "file compared", "files compared"),
            n,
            ngettext(n, "difference found", "differences found")
        ));
        s
    }

    pub fn render_json(&self) -> String {
        let diffs: Vec<_> = self
            .differences
            .iter()
            .map(|d| serde_json::json!({"path": json::path(&d.path), "message": d.message}))
            .collect();
        let sets: Vec<_> = self.set_times.iter().map(|t| json::time(*t)).collect();
        json::line(&serde_json::json!({
            "ok": self.differences.is_empty(),
            "compare_data": self.compare_data,
            "files_compared": self.compared,
            "differences": diffs,
            "sets": sets,
            "volumes": self.volumes,
            "notes": self.notes,
        }))
    }
}

/// Checks the chain at `opts.time` and compares it with `opts.source`.
pub(crate) fn verify(ctx: &ReadContext, opts: &VerifyOptions) -> Result<VerifyReport> {
    let md = std::fs::metadata(&opts.source).with_context(|| {
        format!(
            "cannot read the directory to verify against {}",
            opts.source.display()
        )
    })?;
    if !md.is_dir() {
        anyhow::bail!(
            "{} is not a directory: verify compares a whole backup with a directory",
            opts.source.display()
        );
    }
    let mut b = tempfile::Builder::new();
    b.prefix("duplicity-charm-verify-");
    let scratch = match &opts.scratch_in {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
    .context("cannot create a scratch directory for verify: set TMPDIR to a writable directory")?;
    let tree = scratch.path().join("tree");
    let restored = restore::restore(
        ctx,
        &RestoreOptions {
            target: tree.clone(),
            time: opts.time,
            path: None,
            force: false,
            progress: None,
            restore_ownership: true,
            numeric_owner: false,
            rename: Vec::new(),
            // duplicity 3.2.1's verify applies the selection to the directory side only.
            selection: None,
            ignore_errors: false,
        },
    )?;
    let mut report = compare_trees(
        &tree,
        &opts.source,
        &opts.selection,
        opts.compare_data,
        opts.copy_links,
        opts.read_size
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_READ_SIZE),
    )?;
    report.set_times = restored.set_times;
    report.volumes = restored.volumes;
    report.notes.extend(restored.notes);
    Ok(report)
}

/// Walks `backup` and the entries of `current` that `selection` selects in index order and compares
/// each pair (duplicity applies the selection options to the directory side only). With
/// `follow_links` (`--copy-links`) the symlinks of `current` are followed, as the backup followed them;
/// the restored side never is. Contents are read `read_size` bytes at a time.
pub fn compare_trees(
    backup: &Path,
    current: &Path,
    selection: &Selection,
    compare_data: bool,
    follow_links: bool,
    read_size: usize,
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        compare_data,
        ..Default::default()
    };
    let owners = meta::is_root();
    let mut a = TreeWalk::new(backup);
    let mut b = TreeWalk::with_selection(current, selection.clone());
    b.follow_links(follow_links);
    let (mut ea, mut eb) = (a.next(), b.next());
    loop {
        let (ra, rb) = match (&ea, &eb) {
            (None, None) => break,
            (Some(x), Some(y)) if x.index == y.index => (ea.take(), eb.take()),
            (Some(x), Some(y)) if x.index < y.index => (ea.take(), None),
            (Some(_), None) => (ea.take(), None),
            _ => (None, eb.take()),
        };
        report.compared += 1;
        if compare_data {
            if let Some(msg) =
                compare_entry(ra.as_ref(), rb.as_ref(), owners, follow_links, read_size)?
            {
                let e = ra.as_ref().or(rb.as_ref()).expect("one side");
                report.differences.push(Difference {
                    path: e.index.display_bytes().to_vec(),
                    message: msg,
                });
            }
        }
        if ra.is_some() {
            ea = a.next();
        }
        if rb.is_some() {
            eb = b.next();
        }
    }
    // Links a --copy-links walk cannot follow (dangling, loops) are not compared: the backup left
    // them out too. Said, not silent.
    for p in a.problems.iter().chain(&b.problems).chain(&b.skipped_links) {
        report
            .notes
            .push(format!("{}: {}", p.path.display(), p.message));
    }
    Ok(report)
}

/// duplicity's `ROPath.compare_verbose`: None when equal, else its message ("%s" filled with the path).
fn compare_entry(
    backup: Option<&SourceEntry>,
    current: Option<&SourceEntry>,
    owners: bool,
    follow_links: bool,
    read_size: usize,
) -> Result<Option<String>> {
    let (b, c) = match (backup, current) {
        (None, Some(c)) => return Ok(Some(format!("New file {}", shown(c)))),
        (Some(b), None) => return Ok(Some(format!("File {} is missing", shown(b)))),
        (Some(b), Some(c)) => (b, c),
        (None, None) => return Ok(None),
    };
    let p = shown(b);
    let (bm, cm) = (&b.meta, &c.meta);
    if bm.ftype != cm.ftype {
        return Ok(Some(format!(
            "File {p} has type {}, expected {}",
            type_name(cm.ftype),
            type_name(bm.ftype)
        )));
    }
    let perms_differ = bm.mode != cm.mode || (owners && (bm.uid, bm.gid) != (cm.uid, cm.gid));
    let perms = |m: &Meta| format!("{}:{} {:o}", m.uid, m.gid, m.mode);
    match bm.ftype {
        FileType::Regular | FileType::Directory | FileType::Fifo => {
            if perms_differ {
                return Ok(Some(format!(
                    "File {p} has permissions {}, expected {}",
                    perms(cm),
                    perms(bm)
                )));
            }
            if bm.mtime != cm.mtime {
                return Ok(Some(format!(
                    "File {p} has mtime {}, expected {}",
                    asctime_local(cm.mtime),
                    asctime_local(bm.mtime)
                )));
            }
            if bm.ftype == FileType::Regular
                && !same_content(&b.path, &c.path, bm.size, cm.size, follow_links, read_size)?
            {
                return Ok(Some(format!("Data for file {p} is different")));
            }
            Ok(None)
        }
        FileType::Symlink => {
            let mut with_sep = bm.link_target.clone();
            with_sep.push(b'/');
            if bm.link_target == cm.link_target || with_sep == cm.link_target {
                Ok(None)
            } else {
                Ok(Some(format!(
                    "Symlink {p} points to {}, expected {}",
                    py_bytes_repr(&cm.link_target),
                    py_bytes_repr(&bm.link_target)
                )))
            }
        }
        FileType::CharDevice | FileType::BlockDevice => {
            if perms_differ {
                return Ok(Some(format!(
                    "File {p} has permissions {}, expected {}",
                    perms(cm),
                    perms(bm)
                )));
            }
            if (bm.dev_major, bm.dev_minor) != (cm.dev_major, cm.dev_minor) {
                return Ok(Some(format!(
                    "Device file {p} has numbers ({}, {}), expected ({}, {})",
                    cm.dev_major, cm.dev_minor, bm.dev_major, bm.dev_minor
                )));
            }
            Ok(None)
        }
    }
}

/// Python's `repr(bytes)` (`b'a\\xff'`), as duplicity 0.8.22 prints symlink targets.
fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = format!("b{quote}");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

fn shown(e: &SourceEntry) -> String {
    String::from_utf8_lossy(e.index.display_bytes()).into_owned()
}

/// Byte-for-byte comparison, streamed. `b` (the directory's side) is read through symlinks when
/// `follow_b` (`--copy-links`); the restored side `a` never is.
fn same_content(
    a: &Path,
    b: &Path,
    size_a: u64,
    size_b: u64,
    follow_b: bool,
    read_size: usize,
) -> Result<bool> {
    if size_a != size_b {
        return Ok(false);
    }
    // Both sides were lstat'ed as regular files: never follow a symlink put there since (unless
    // --copy-links, where the walk saw what the link points to).
    let open = |p: &Path, follow: bool| {
        use rustix::fs::OFlags;
        // NONBLOCK: a fifo put there since must not hang verify.
        let flags = if follow {
            OFlags::NONBLOCK
        } else {
            OFlags::NOFOLLOW | OFlags::NONBLOCK
        };
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(p)
            .with_context(|| format!("cannot read {}", p.display()))
    };
    let (mut fa, mut fb) = (open(a, false)?, open(b, follow_b)?);
    same_stream(&mut fa, &mut fb, read_size, a, b)
}

/// Compares two streams `read_size` bytes at a time; `a` and `b` name them in errors.
fn same_stream(
    fa: &mut impl Read,
    fb: &mut impl Read,
    read_size: usize,
    a: &Path,
    b: &Path,
) -> Result<bool> {
    let (mut ba, mut bb) = (vec![0u8; read_size], vec![0u8; read_size]);
    loop {
        let na = read_full(fa, &mut ba).with_context(|| format!("cannot read {}", a.display()))?;
        let nb = read_full(fb, &mut bb).with_context(|| format!("cannot read {}", b.display()))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(p: &Path, data: &[u8], mtime: i64) {
        fs::write(p, data).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64);
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn differences_in_duplicity_words() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for r in [&a, &b] {
            fs::create_dir(r).unwrap();
            touch(&r.join("same"), b"x", 1000);
        }
        touch(&a.join("data"), b"one", 1000);
        touch(&b.join("data"), b"two", 1000);
        touch(&a.join("gone"), b"", 1000);
        touch(&b.join("new"), b"", 1000);
        touch(&a.join("time"), b"t", 1000);
        touch(&b.join("time"), b"t", 2000);
        std::os::unix::fs::symlink("x", a.join("ln")).unwrap();
        std::os::unix::fs::symlink("y", b.join("ln")).unwrap();
        // Directory mtimes equal so only the entries differ.
        for r in [&a, &b] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(5000);
            fs::File::open(r).unwrap().set_modified(t).unwrap();
        }
        let integrity = compare_trees(
            &a,
            &b,
            &Selection::default(),
            false,
            false,
            DEFAULT_READ_SIZE,
        )
        .unwrap();
        assert_eq!(integrity.compared, 7);
        assert!(integrity.differences.is_empty());
        assert!(integrity
            .render()
            .ends_with("Verify complete: 7 files compared, 0 differences found.\n"));
        let r = compare_trees(
            &a,
            &b,
            &Selection::default(),
            true,
            false,
            DEFAULT_READ_SIZE,
        )
        .unwrap();
        let msgs: Vec<&str> = r.differences.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "Data for file data is different",
                "File gone is missing",
                "Symlink ln points to b'y', expected b'x'",
                "New file new",
                &format!(
                    "File time has mtime {}, expected {}",
                    asctime_local(2000),
                    asctime_local(1000)
                ),
            ]
        );
        assert!(r
            .render()
            .ends_with("7 files compared, 5 differences found.\n"));
        assert!(r.render_json().contains("\"ok\":false"));
        assert_eq!(py_bytes_repr(b"a'\xff\\"), "b\"a'\\xff\\\\\"");
        assert_eq!(py_bytes_repr(b"it's \"q\""), "b'it\\'s \"q\"'");
    }

    #[test]
    fn copy_links_compares_what_the_links_point_to() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir_all(b.join("real")).unwrap();
        // a: what a --copy-links backup restores (regular files); b: the links it was made from.
        touch(&a.join("ln"), b"data", 1000);
        touch(&b.join("real/f"), b"data", 1000);
        std::os::unix::fs::symlink("real/f", b.join("ln")).unwrap();
        std::os::unix::fs::symlink("nowhere", b.join("dangling")).unwrap();
        fs::create_dir(a.join("real")).unwrap();
        touch(&a.join("real/f"), b"data", 1000);
        for r in [&a, &b, &a.join("real"), &b.join("real")] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(5000);
            fs::File::open(r).unwrap().set_modified(t).unwrap();
        }
        let same =
            compare_trees(&a, &b, &Selection::default(), true, true, DEFAULT_READ_SIZE).unwrap();
        assert!(same.differences.is_empty(), "{:?}", same.differences);
        assert_eq!(same.compared, 4);
        assert!(
            same.notes
                .iter()
                .any(|n| n.contains("dangling") && n.contains("--copy-links")),
            "{:?}",
            same.notes
        );
        // Without following, the link is a link: a different type.
        let links = compare_trees(
            &a,
            &b,
            &Selection::default(),
            true,
            false,
            DEFAULT_READ_SIZE,
        )
        .unwrap();
        assert!(
            links
                .differences
                .iter()
                .any(|d| d.message == "File ln has type sym, expected reg"),
            "{:?}",
            links.differences
        );
        // The target's content changed (same size, same mtime): a data difference.
        touch(&b.join("real/f"), b"DATA", 1000);
        let changed =
            compare_trees(&a, &b, &Selection::default(), true, true, DEFAULT_READ_SIZE).unwrap();
        let msgs: Vec<&str> = changed
            .differences
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(
            msgs,
            [
                "Data for file ln is different",
                "Data for file real/f is different"
            ]
        );
    }

    /// Records the size of every read asked of it.
    struct Recording<'a> {
        inner: io::Cursor<Vec<u8>>,
        asked: &'a std::cell::RefCell<Vec<usize>>,
    }

    impl Read for Recording<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.asked.borrow_mut().push(buf.len());
            self.inner.read(buf)
        }
    }

    #[test]
    fn contents_are_read_copy_blocksize_bytes_at_a_time() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let asked = std::cell::RefCell::new(Vec::new());
        let rec = |d: &[u8]| Recording {
            inner: io::Cursor::new(d.to_vec()),
            asked: &asked,
        };
        let p = Path::new("x");
        assert!(same_stream(&mut rec(&data), &mut rec(&data), 1024, p, p).unwrap());
        // Reads ask for one block (or the rest of a block a short read left), never more: per
        // stream 4 full blocks, the partial one, and the read that finds the end.
        assert_eq!(
            asked.borrow().iter().max(),
            Some(&1024),
            "{:?}",
            asked.borrow()
        );
        assert_eq!(
            asked.borrow().iter().filter(|&&n| n == 1024).count(),
            2 * 6,
            "{:?}",
            asked.borrow()
        );
        // A difference in the last, partial block is found.
        let mut other = data.clone();
        *other.last_mut().unwrap() ^= 1;
        asked.borrow_mut().clear();
        assert!(!same_stream(&mut rec(&data), &mut rec(&other), 1024, p, p).unwrap());
        // A different block size reads that many.
        asked.borrow_mut().clear();
        assert!(same_stream(&mut rec(&data), &mut rec(&data), 4096, p, p).unwrap());
        assert_eq!(asked.borrow()[0], 4096);
    }
}
