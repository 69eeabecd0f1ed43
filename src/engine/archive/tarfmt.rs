//! The tar dialect duplicity reads and writes: POSIX.1-2001 pax over ustar, headers byte-for-byte as
//! Python's `tarfile` makes them, raw-byte names, and duplicity's entry names (`snapshot/`, `diff/`, ...).

use std::io::{self, Read};

use crate::engine::index::{Index, IndexError};
use crate::engine::meta::{FileType, Meta};

pub const BLOCK: usize = 512;
/// Python tarfile's RECORDSIZE: archives are padded to a multiple of it when closed.
pub const RECORD: usize = 20 * BLOCK;
/// duplicity reads file data in 64 KiB blocks; a payload of that size or more becomes multivol chunks.
pub const CHUNK: usize = 64 * 1024;

/// Appends the header block(s) for one entry: a pax `x` header first when a name, link target or
/// user/group name is non-ASCII or too long for ustar, or a number does not fit, as Python does.
pub fn encode_header(out: &mut Vec<u8>, name: &[u8], meta: &Meta, size: u64) {
    let linkname: &[u8] = if meta.ftype == FileType::Symlink {
        &meta.link_target
    } else {
        b""
    };
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    for (key, value, limit) in [
        ("path", name, 100usize),
        ("linkpath", linkname, 100),
        ("uname", meta.uname.as_slice(), 32),
        ("gname", meta.gname.as_slice(), 32),
    ] {
        if !value.is_ascii() || ascii_len(value) > limit {
            pax.push((key, value.to_vec()));
        }
    }
    let mut uid = meta.uid as u64;
    let mut gid = meta.gid as u64;
    let mut size_field = size;
    let mut mtime = meta.mtime.max(0) as u64;
    for (key, value, digits) in [
        ("uid", &mut uid, 8u32),
        ("gid", &mut gid, 8),
        ("size", &mut size_field, 12),
        ("mtime", &mut mtime, 12),
    ] {
        if *value >= 8u64.pow(digits - 1) {
            pax.push((key, value.to_string().into_bytes()));
            *value = 0;
        }
    }
    if !pax.is_empty() {
        let records = pax_records(&pax);
        let pax_header = UstarFields {
            name: b"././@PaxHeader",
            mode: 0,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: 0,
            flag: b'x',
            linkname: b"",
            uname: b"",
            gname: b"",
            device: None,
        };
        pax_header.write(out);
        out.extend_from_slice(&records);
        pad_block(out);
    }
    let device = matches!(meta.ftype, FileType::CharDevice | FileType::BlockDevice)
        .then_some((meta.dev_major, meta.dev_minor));
    UstarFields {
        name,
        mode: meta.mode & 0o7777,
        uid,
        gid,
        size: size_field,
        mtime,
        flag: meta.ftype.tar_flag(),
        linkname,
        uname: &meta.uname,
        gname: &meta.gname,
        device,
    }
    .write(out);
}

/// The header of a `deleted/` entry: everything zero, as duplicity writes it.
pub fn encode_deleted_header(out: &mut Vec<u8>, name: &[u8]) {
    let meta = Meta {
        ftype: FileType::Regular,
        mode: 0,
        uid: 0,
        gid: 0,
        uname: Vec::new(),
        gname: Vec::new(),
        mtime: 0,
        size: 0,
        link_target: Vec::new(),
        dev_major: 0,
        dev_minor: 0,
    };
    encode_header(out, name, &meta, 0);
}

/// Zero bytes up to the next 512-byte boundary.
pub fn pad_block(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// Length in characters of the string Python would see (names are decoded with surrogateescape).
fn ascii_len(v: &[u8]) -> usize {
    v.len()
}

/// What Python's ustar field encoding (`ascii`, `replace`) makes of raw bytes: each non-ASCII character
/// (a UTF-8 sequence, or one undecodable byte) becomes `?`.
fn ascii_copy(v: &[u8]) -> Vec<u8> {
    if v.is_ascii() {
        return v.to_vec();
    }
    let mut out = Vec::with_capacity(v.len());
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(if c.is_ascii() { c as u8 } else { b'?' });
        }
        out.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
    }
    out
}

fn pax_records(pax: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let binary = pax.iter().any(|(_, v)| std::str::from_utf8(v).is_err());
    let mut records = Vec::new();
    if binary {
        records.extend_from_slice(b"21 hdrcharset=BINARY\n");
    }
    for (key, value) in pax {
        // The length prefix counts itself: find the fixed point, as Python does.
        let l = key.len() + value.len() + 3;
        let mut p = 0usize;
        loop {
            let n = l + p.to_string().len();
            if n == p {
                break;
            }
            p = n;
        }
        records.extend_from_slice(p.to_string().as_bytes());
        records.push(b' ');
        records.extend_from_slice(key.as_bytes());
        records.push(b'=');
        records.extend_from_slice(value);
        records.push(b'\n');
    }
    records
}

struct UstarFields<'a> {
    name: &'a [u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    flag: u8,
    linkname: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
    device: Option<(u32, u32)>,
}

impl UstarFields<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + BLOCK, 0);
        let h = &mut out[start..start + BLOCK];
        put_str(&mut h[0..100], self.name);
        put_octal(&mut h[100..108], self.mode as u64);
        put_octal(&mut h[108..116], self.uid);
        put_octal(&mut h[116..124], self.gid);
        put_octal(&mut h[124..136], self.size);
        put_octal(&mut h[136..148], self.mtime);
        h[148..156].copy_from_slice(b"        ");
        h[156] = self.flag;
        put_str(&mut h[157..257], self.linkname);
        h[257..265].copy_from_slice(b"ustar\x0000");
        put_str(&mut h[265..297], self.uname);
        put_str(&mut h[297..329], self.gname);
        if let Some((major, minor)) = self.device {
            put_octal(&mut h[329..337], major as u64);
            put_octal(&mut h[337..345], minor as u64);
        }
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let chk = format!("{sum:06o}\0");
        h[148..155].copy_from_slice(chk.as_bytes());
    }
}

fn put_str(field: &mut [u8], v: &[u8]) {
    let a = ascii_copy(v);
    let n = a.len().min(field.len());
    field[..n].copy_from_slice(&a[..n]);
}

/// Python's `itn` for ustar: zero-padded octal in width-1 digits, then NUL.
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// The kinds of entries in difftar volumes and sigtars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryClass {
    Snapshot,
    Diff,
    Deleted,
    Signature,
    /// Chunk `k` (1-based) of a payload cut into 64 KiB pieces.
    MultivolSnapshot(u64),
    MultivolDiff(u64),
}

/// The tar name of an entry in a difftar volume (`root_dot`: the root is `snapshot/./`) or a sigtar
/// (the root is `snapshot/`). Directories end in `/`.
pub fn entry_name(class: EntryClass, index: &Index, is_dir: bool, root_dot: bool) -> Vec<u8> {
    let prefix: &[u8] = match class {
        EntryClass::Snapshot => b"snapshot/",
        EntryClass::Diff => b"diff/",
        EntryClass::Deleted => b"deleted/",
        EntryClass::Signature => b"signature/",
        EntryClass::MultivolSnapshot(_) => b"multivol_snapshot/",
        EntryClass::MultivolDiff(_) => b"multivol_diff/",
    };
    let mut name = prefix.to_vec();
    if index.is_root() {
        if root_dot {
            name.extend_from_slice(b"./");
        }
    } else {
        name.extend_from_slice(index.as_bytes());
        if is_dir {
            name.push(b'/');
        }
    }
    if let EntryClass::MultivolSnapshot(k) | EntryClass::MultivolDiff(k) = class {
        name.push(b'/');
        name.extend_from_slice(k.to_string().as_bytes());
    }
    name
}

/// Why an entry name cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EntryNameError {
    #[error("unknown entry {0:?} (not snapshot/, diff/, deleted/, signature/ or multivol_*)")]
    UnknownPrefix(String),
    #[error("bad multivol chunk number in {0:?}")]
    BadChunk(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Splits a tar entry name into its class and index, refusing names that would escape the target.
pub fn parse_entry_name(name: &[u8]) -> Result<(EntryClass, Index), EntryNameError> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    let (prefix, rest) = match name.iter().position(|b| *b == b'/') {
        Some(p) => (&name[..p], &name[p + 1..]),
        None => (name, &b""[..]),
    };
    let multivol = |rest: &[u8]| -> Result<(u64, Index), EntryNameError> {
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        let p = rest
            .iter()
            .rposition(|b| *b == b'/')
            .ok_or_else(|| EntryNameError::BadChunk(shown()))?;
        let k: u64 = std::str::from_utf8(&rest[p + 1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| EntryNameError::BadChunk(shown()))?;
        Ok((k, Index::parse(&rest[..p])?))
    };
    Ok(match prefix {
        b"snapshot" => (EntryClass::Snapshot, Index::parse(rest)?),
        b"diff" => (EntryClass::Diff, Index::parse(rest)?),
        b"deleted" => (EntryClass::Deleted, Index::parse(rest)?),
        b"signature" => (EntryClass::Signature, Index::parse(rest)?),
        b"multivol_snapshot" => {
            let (k, i) = multivol(rest)?;
            (EntryClass::MultivolSnapshot(k), i)
        }
        b"multivol_diff" => {
            let (k, i) = multivol(rest)?;
            (EntryClass::MultivolDiff(k), i)
        }
        _ => return Err(EntryNameError::UnknownPrefix(shown())),
    })
}

/// Metadata from a tar header (pax values win), for any tar dialect Python's reader accepts.
pub fn meta_from_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let flag = h.entry_type().as_byte();
    let ftype = FileType::from_tar_flag(flag).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "unsupported tar entry type {:?} for {:?} (hard links and sockets are never stored)",
                flag as char,
                String::from_utf8_lossy(&entry.path_bytes())
            ),
        )
    })?;
    let num = |r: io::Result<u64>| r.unwrap_or(0);
    let mut meta = Meta {
        ftype,
        mode: h.mode().unwrap_or(0) & 0o7777,
        uid: num(h.uid()) as u32,
        gid: num(h.gid()) as u32,
        uname: h.username_bytes().unwrap_or(b"").to_vec(),
        gname: h.groupname_bytes().unwrap_or(b"").to_vec(),
        mtime: num(h.mtime()) as i64,
        size: entry.size(),
        link_target: entry
            .link_name_bytes()
            .map(|c| c.into_owned())
            .unwrap_or_default(),
        dev_major: h.device_major().ok().flatten().unwrap_or(0),
        dev_minor: h.device_minor().ok().flatten().unwrap_or(0),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts.flatten() {
            let v = ext.value_bytes();
            let n = || {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
            };
            match ext.key_bytes() {
                b"uname" => meta.uname = v.to_vec(),
                b"gname" => meta.gname = v.to_vec(),
                b"uid" => meta.uid = n().unwrap_or(meta.uid as u64) as u32,
                b"gid" => meta.gid = n().unwrap_or(meta.gid as u64) as u32,
                b"mtime" => {
                    if let Some(t) = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.split('.').next())
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        meta.mtime = t;
                    }
                }
                _ => {}
            }
        }
    }
    if ftype != FileType::Regular {
        meta.size = 0;
    }
    Ok(meta)
}

/// Opens a tar stream for reading entries; stops at the first zero block, so gpg volumes' filler after
/// the footer is never parsed.
pub fn reader<R: Read>(r: R) -> tar::Archive<R> {
    tar::Archive::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ftype: FileType) -> Meta {
        Meta {
            ftype,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            mtime: 1_700_000_000,
            size: 0,
            link_target: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        }
    }

    #[test]
    fn ascii_header_matches_python() {
        let mut out = Vec::new();
        encode_header(&mut out, b"snapshot/a.txt", &meta(FileType::Regular), 12);
        assert_eq!(out.len(), 512);
        assert_eq!(&out[0..14], b"snapshot/a.txt");
        assert_eq!(&out[100..108], b"0000644\0");
        assert_eq!(&out[124..136], b"00000000014\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[329..345], &[0u8; 16]);
        // Python's checksum: six octal digits, NUL, space.
        assert_eq!(out[154], 0);
        assert_eq!(out[155], b' ');
        let mut h = out.clone();
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        assert_eq!(&out[148..154], format!("{sum:06o}").as_bytes());
    }

    #[test]
    fn non_ascii_and_non_utf8_names_get_pax() {
        let mut out = Vec::new();
        encode_header(
            &mut out,
            "snapshot/naïve ü.txt".as_bytes(),
            &meta(FileType::Regular),
            8,
        );
        assert_eq!(&out[0..14], b"././@PaxHeader");
        assert_eq!(out[156], b'x');
        assert_eq!(
            &out[512..512 + 31],
            "31 path=snapshot/naïve ü.txt\n".as_bytes()
        );
        assert_eq!(&out[1024..1024 + 20], b"snapshot/na?ve ?.txt");

        let mut out = Vec::new();
        encode_header(&mut out, b"snapshot/\xff\xfe", &meta(FileType::Regular), 0);
        assert_eq!(&out[512..512 + 21], b"21 hdrcharset=BINARY\n");
        assert_eq!(&out[1024..1024 + 11], b"snapshot/??");
    }

    #[test]
    fn tar_crate_reads_what_we_write() {
        let long = format!("snapshot/{}", "d/".repeat(80) + "file");
        let mut out = Vec::new();
        let mut m = meta(FileType::Symlink);
        m.link_target = b"target \xff".to_vec();
        encode_header(&mut out, long.as_bytes(), &m, 0);
        encode_header(
            &mut out,
            b"snapshot/dev",
            &{
                let mut d = meta(FileType::CharDevice);
                d.dev_major = 1;
                d.dev_minor = 3;
                d
            },
            0,
        );
        let mut ar = reader(&out[..]);
        let mut it = ar.entries().unwrap();
        let mut e = it.next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), long.as_bytes());
        let got = meta_from_entry(&mut e).unwrap();
        assert_eq!(got.link_target, b"target \xff");
        assert_eq!(got.ftype, FileType::Symlink);
        let mut e = it.next().unwrap().unwrap();
        let got = meta_from_entry(&mut e).unwrap();
        assert_eq!((got.dev_major, got.dev_minor), (1, 3));
        assert!(it.next().is_none());
    }

    #[test]
    fn entry_names_round_trip() {
        let i = Index::parse(b"a/b").unwrap();
        assert_eq!(
            entry_name(EntryClass::Snapshot, &Index::root(), true, true),
            b"snapshot/./"
        );
        assert_eq!(
            entry_name(EntryClass::Snapshot, &Index::root(), true, false),
            b"snapshot/"
        );
        assert_eq!(
            entry_name(EntryClass::Snapshot, &i, true, true),
            b"snapshot/a/b/"
        );
        assert_eq!(
            entry_name(EntryClass::MultivolDiff(3), &i, false, true),
            b"multivol_diff/a/b/3"
        );
        assert_eq!(
            parse_entry_name(b"snapshot/./").unwrap(),
            (EntryClass::Snapshot, Index::root())
        );
        assert_eq!(
            parse_entry_name(b"snapshot/").unwrap(),
            (EntryClass::Snapshot, Index::root())
        );
        assert_eq!(
            parse_entry_name(b"multivol_snapshot/a/b/12").unwrap(),
            (EntryClass::MultivolSnapshot(12), i.clone())
        );
        assert_eq!(
            parse_entry_name(b"deleted/a/b").unwrap(),
            (EntryClass::Deleted, i)
        );
        assert!(parse_entry_name(b"snapshot/../evil").is_err());
        assert!(parse_entry_name(b"snapshot//abs/evil").is_err());
        assert!(parse_entry_name(b"other/x").is_err());
    }
}
