//! duplicity manifests: volume bounds and hashes, the file list, and duplicity's path quoting.
//!
//! **Writing** is byte-exact with duplicity 0.8.22 and streams, so a backup of 200,000 files never
//! holds its file list in memory. The order is fixed by duplicity: header, one block per volume as
//! each volume closes, then the file list. Two ways to write:
//! - the free functions [`write_header`], [`write_volume`], [`write_filelist_header`] and
//!   [`write_filelist_entry`], when the caller knows the file count before listing the files;
//! - [`ManifestWriter`], which keeps the (few) volume blocks in memory, spools file-list lines to an
//!   anonymous temporary file while the backup runs, and emits everything in [`ManifestWriter::finish`].
//!
//! **Reading** ([`parse`]) is as lenient as duplicity: case-insensitive field names, volume blocks
//! start at lines beginning with `volume`, unknown lines are ignored, Hostname/Localdir/Filelist are
//! optional, and a missing `Hash SHA1` is accepted here but reported by [`Manifest::volumes_without_hash`]
//! (duplicity 0.8.22 cannot restore such a volume).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Seek, Write};

use crate::engine::index::Index;

/// One volume's entry: the first and last paths it holds, the multivol chunk numbers when a file
/// crosses the volume boundary, and the SHA1 (hex) of the stored volume file (after gzip/gpg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub number: u32,
    pub start: Index,
    pub start_chunk: Option<u64>,
    pub end: Index,
    pub end_chunk: Option<u64>,
    pub sha1: Option<String>,
}

impl VolumeInfo {
    /// duplicity's `contains(p, recursive)`: `start[:len(p)] <= p <= end`, compared as component
    /// tuples, i.e. the volume may hold `p` or something below it.
    pub fn may_contain(&self, path: &Index) -> bool {
        let depth = path.depth();
        let start_prefix = Index::from_trusted(
            self.start
                .components()
                .take(depth)
                .collect::<Vec<_>>()
                .join(&b'/'),
        );
        start_prefix <= *path && *path <= self.end
    }
}

/// What happened to a regular file in this set (the manifest's file list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileAction {
    New,
    Changed,
    Deleted,
}

impl FileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::New => "new",
            FileAction::Changed => "changed",
            FileAction::Deleted => "deleted",
        }
    }

    fn from_bytes(b: &[u8]) -> Option<FileAction> {
        match b {
            b"new" => Some(FileAction::New),
            b"changed" => Some(FileAction::Changed),
            b"deleted" => Some(FileAction::Deleted),
            _ => None,
        }
    }
}

/// Why a manifest cannot be used. duplicity crashes on all of these; we name the problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest: bad volume line {0:?} (expected \"Volume <n>:\")")]
    BadVolumeLine(String),
    #[error("manifest: volume {0} has no StartingPath or no EndingPath")]
    MissingBounds(u32),
    #[error("manifest: volume {volume}: bad chunk number {value:?}")]
    BadChunk { volume: u32, value: String },
    #[error("manifest: bad quoted path {0:?}")]
    BadQuoting(String),
    #[error("manifest: unusable path {0:?}: {1}")]
    BadPath(String, crate::engine::index::IndexError),
}

/// A parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub hostname: Option<Vec<u8>>,
    pub localdir: Option<Vec<u8>>,
    /// Ascending by volume number.
    pub volumes: Vec<VolumeInfo>,
    /// The file list, in manifest order (empty when the manifest has none).
    pub files: Vec<(FileAction, Index)>,
    /// The count on the `Filelist N` line, if any; differs from `files.len()` when the list is
    /// corrupt (duplicity logs an error and carries on).
    pub filelist_count: Option<u64>,
}

impl Manifest {
    /// The volumes `--file-to-restore path` reads, in manifest order (see [`VolumeInfo::may_contain`]).
    pub fn volumes_for<'a>(&'a self, path: &'a Index) -> impl Iterator<Item = &'a VolumeInfo> + 'a {
        self.volumes.iter().filter(move |v| v.may_contain(path))
    }

    /// Volume numbers without a `Hash SHA1` line; duplicity 0.8.22 fails to restore those.
    pub fn volumes_without_hash(&self) -> Vec<u32> {
        self.volumes
            .iter()
            .filter(|v| v.sha1.is_none())
            .map(|v| v.number)
            .collect()
    }

    /// Writes the whole manifest in duplicity's order (header, volumes, file list).
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        write_header(
            w,
            self.hostname.as_deref().unwrap_or_default(),
            self.localdir.as_deref().unwrap_or_default(),
        )?;
        for v in &self.volumes {
            write_volume(w, v)?;
        }
        write_filelist_header(w, self.files.len() as u64)?;
        for (action, path) in &self.files {
            write_filelist_entry(w, *action, path)?;
        }
        Ok(())
    }
}

/// `Hostname` (raw) and `Localdir` (quoted) lines; an empty value is left out, as duplicity does.
pub fn write_header(w: &mut dyn Write, hostname: &[u8], localdir: &[u8]) -> io::Result<()> {
    if !hostname.is_empty() {
        w.write_all(b"Hostname ")?;
        w.write_all(hostname)?;
        w.write_all(b"\n")?;
    }
    if !localdir.is_empty() {
        w.write_all(b"Localdir ")?;
        w.write_all(&quote(localdir))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// One `Volume N:` block. A bound without a chunk number ends in a single space after the path
/// (so the line ends in two spaces for the root `.`), exactly as duplicity writes it.
pub fn write_volume(w: &mut dyn Write, v: &VolumeInfo) -> io::Result<()> {
    let bound = |w: &mut dyn Write, label: &[u8], path: &Index, chunk: Option<u64>| {
        w.write_all(label)?;
        w.write_all(&index_to_field(path))?;
        match chunk {
            Some(k) => writeln!(w, " {k}"),
            None => w.write_all(b"  \n"),
        }
    };
    writeln!(w, "Volume {}:", v.number)?;
    bound(w, b"    StartingPath   ", &v.start, v.start_chunk)?;
    bound(w, b"    EndingPath     ", &v.end, v.end_chunk)?;
    if let Some(h) = &v.sha1 {
        writeln!(w, "    Hash SHA1 {h}")?;
    }
    Ok(())
}

/// The `Filelist N` line; N must equal the number of entries that follow.
pub fn write_filelist_header(w: &mut dyn Write, count: u64) -> io::Result<()> {
    writeln!(w, "Filelist {count}")
}

/// One file-list line: 4 spaces, the action left-justified to 7, 2 spaces, the quoted path.
pub fn write_filelist_entry(w: &mut dyn Write, action: FileAction, path: &Index) -> io::Result<()> {
    write!(w, "    {:<7}  ", action.as_str())?;
    w.write_all(&quote(path.display_bytes()))?;
    w.write_all(b"\n")
}

/// Builds a manifest while a backup runs, with memory independent of the number of files: file-list
/// lines go to an anonymous temporary file and are copied out by [`ManifestWriter::finish`].
pub struct ManifestWriter {
    head: Vec<u8>,
    files: BufWriter<std::fs::File>,
    count: u64,
    /// `--no-files-changed`: the list stays empty (`Filelist 0`, as duplicity 3 writes it).
    omit_files: bool,
}

impl ManifestWriter {
    pub fn new(hostname: &[u8], localdir: &[u8]) -> io::Result<ManifestWriter> {
        let mut head = Vec::new();
        write_header(&mut head, hostname, localdir)?;
        Ok(ManifestWriter {
            head,
            files: BufWriter::new(tempfile::tempfile()?),
            count: 0,
            omit_files: false,
        })
    }

    /// Records a closed volume; call in ascending volume order.
    pub fn add_volume(&mut self, v: &VolumeInfo) -> io::Result<()> {
        write_volume(&mut self.head, v)
    }

    /// Records a regular file that is new, changed or deleted in this set, in index order.
    pub fn add_file(&mut self, action: FileAction, path: &Index) -> io::Result<()> {
        if self.omit_files {
            return Ok(());
        }
        self.count += 1;
        write_filelist_entry(&mut self.files, action, path)
    }

    /// From now on files are not listed (`--no-files-changed`).
    pub fn omit_file_list(&mut self) {
        self.omit_files = true;
    }

    /// Writes the complete manifest to `out`.
    pub fn finish(self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.head)?;
        write_filelist_header(out, self.count)?;
        let mut spool = self.files.into_inner().map_err(|e| e.into_error())?;
        spool.rewind()?;
        io::copy(&mut spool, out)?;
        Ok(())
    }
}

/// The path as a volume bound: `.` for the root, otherwise quoted.
fn index_to_field(path: &Index) -> Vec<u8> {
    if path.is_root() {
        b".".to_vec()
    } else {
        quote(path.as_bytes())
    }
}

/// The bytes duplicity escapes: ASCII whitespace (Python's bytes `\s`), backslash and both quotes.
fn needs_escape(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'\\' | b'"' | b'\''
    )
}

/// duplicity's `Quote`: if any byte needs escaping, each such byte becomes `\xNN` (lowercase) and
/// the whole path is wrapped in double quotes; other bytes (UTF-8 or not) stay raw.
pub fn quote(path: &[u8]) -> Vec<u8> {
    if !path.iter().copied().any(needs_escape) {
        return path.to_vec();
    }
    let mut out = Vec::with_capacity(path.len() + 8);
    out.push(b'"');
    for &b in path {
        if needs_escape(b) {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
    out
}

/// The inverse of [`quote`]. A field not starting with `"` is taken as is (as duplicity does).
pub fn unquote(field: &[u8]) -> Result<Vec<u8>, ManifestError> {
    let bad = || ManifestError::BadQuoting(String::from_utf8_lossy(field).into_owned());
    if field.first() != Some(&b'"') {
        return Ok(field.to_vec());
    }
    if field.len() < 2 || field.last() != Some(&b'"') {
        return Err(bad());
    }
    let inner = &field[1..field.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' {
            if inner.get(i + 1) != Some(&b'x') || i + 4 > inner.len() {
                return Err(bad());
            }
            let hex = std::str::from_utf8(&inner[i + 2..i + 4]).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 4;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn field_to_index(field: &[u8]) -> Result<Index, ManifestError> {
    let raw = unquote(field)?;
    Index::parse(&raw)
        .map_err(|e| ManifestError::BadPath(String::from_utf8_lossy(&raw).into_owned(), e))
}

/// Python's `bytes.split()`: runs of ASCII whitespace separate, none are kept.
fn split_ws(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|t| !t.is_empty())
        .collect()
}

/// `word` followed by a whitespace byte at the start of `line`, case-insensitively.
fn starts_with_field(line: &[u8], word: &[u8]) -> bool {
    line.len() > word.len()
        && line[..word.len()].eq_ignore_ascii_case(word)
        && (line[word.len()].is_ascii_whitespace() || line[word.len()] == 0x0b)
}

/// Parses a manifest leniently, as duplicity reads it.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let mut m = Manifest::default();

    // Hostname/Localdir: the first such line anywhere; the value is the rest of the line.
    let value_of = |word: &[u8]| -> Result<Option<Vec<u8>>, ManifestError> {
        match lines.iter().find(|l| starts_with_field(l, word)) {
            Some(l) => unquote(&l[word.len() + 1..]).map(Some),
            None => Ok(None),
        }
    };
    m.hostname = value_of(b"hostname")?;
    m.localdir = value_of(b"localdir")?;

    // Volume blocks: from a line starting with "volume" up to the next one (or the end).
    let mut vols: BTreeMap<u32, VolumeInfo> = BTreeMap::new();
    let mut latest = 0u32;
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| starts_with_field(lines[i], b"volume"))
        .collect();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let v = parse_volume(&lines[start..end])?;
        latest = v.number;
        vols.insert(v.number, v);
    }
    // A restarted backup may list "vol1, vol2, vol3, vol2": duplicity then drops what follows the
    // last one listed.
    vols.retain(|&n, _| n <= latest);
    m.volumes = vols.into_values().collect();

    // File list: lines after "Filelist N" up to the next volume block.
    if let Some(pos) = lines.iter().position(|l| starts_with_field(l, b"filelist")) {
        let count = split_ws(lines[pos]).get(1).and_then(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|c| c.parse::<u64>().ok())
        });
        m.filelist_count = count;
        for line in &lines[pos + 1..] {
            if starts_with_field(line, b"volume") {
                break;
            }
            let toks = split_ws(line);
            let (Some(action), Some(path)) = (
                toks.first().and_then(|a| FileAction::from_bytes(a)),
                toks.get(1),
            ) else {
                continue; // unknown or blank lines are ignored
            };
            m.files.push((action, field_to_index(path)?));
        }
    }
    Ok(m)
}

fn parse_volume(lines: &[&[u8]]) -> Result<VolumeInfo, ManifestError> {
    let first = lines[0];
    let bad_first = || ManifestError::BadVolumeLine(String::from_utf8_lossy(first).into_owned());
    // "Volume <digits>:" (case-insensitive), anything may follow.
    let rest = &first[6..];
    let rest = rest.strip_prefix(b" ").ok_or_else(bad_first)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b':') {
        return Err(bad_first());
    }
    let number: u32 = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(bad_first)?;

    let chunk = |tok: Option<&&[u8]>| -> Result<Option<u64>, ManifestError> {
        match tok {
            None => Ok(None),
            Some(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| ManifestError::BadChunk {
                    volume: number,
                    value: String::from_utf8_lossy(t).into_owned(),
                }),
        }
    };
    let (mut start, mut end, mut sha1) = (None, None, None);
    for line in &lines[1..] {
        let toks = split_ws(line);
        let Some(field) = toks.first() else { continue };
        match field.to_ascii_lowercase().as_slice() {
            b"startingpath" if toks.len() > 1 => {
                start = Some((field_to_index(toks[1])?, chunk(toks.get(2))?));
            }
            b"endingpath" if toks.len() > 1 => {
                end = Some((field_to_index(toks[1])?, chunk(toks.get(2))?));
            }
            b"hash" if toks.len() > 2 && toks[1] == b"SHA1" => {
                sha1 = Some(String::from_utf8_lossy(toks[2]).into_owned());
            }
            _ => {}
        }
    }
    let ((start, start_chunk), (end, end_chunk)) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        _ => return Err(ManifestError::MissingBounds(number)),
    };
    Ok(VolumeInfo {
        number,
        start,
        start_chunk,
        end,
        end_chunk,
        sha1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    // §10 of the format doc, from duplicity 0.8.22 (note the two trailing spaces).
    const FULL: &str = concat!(
        "Hostname vm\n",
        "Localdir src\n",
        "Volume 1:\n",
        "    StartingPath   .  \n",
        "    EndingPath     \"with\\x20space.txt\"  \n",
        "    Hash SHA1 abdd7b112bf4c8df963d86f058208f106e4f72af\n",
        "Filelist 6\n",
        "    new      a.txt\n",
        "    new      big.bin\n",
        "    new      empty\n",
        "    new      \"na\u{ef}ve\\x20\u{fc}.txt\"\n",
        "    new      sub/b.txt\n",
        "    new      \"with\\x20space.txt\"\n",
    );

    const INC: &str = "Hostname vm\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     new.txt  \n    Hash SHA1 8dcf8721a5fe9909fc96f5cba21f3208395d8dc9\nFilelist 2\n    changed  a.txt\n    new      new.txt\n";

    const MULTI: &str = "Volume 1:\n    StartingPath   .  \n    EndingPath     m.bin 14\n    Hash SHA1 aa\nVolume 2:\n    StartingPath   m.bin 15\n    EndingPath     m.bin 29\n    Hash SHA1 bb\nVolume 3:\n    StartingPath   m.bin 30\n    EndingPath     z.txt  \n    Hash SHA1 cc\nFilelist 0\n";

    fn rewrite(m: &Manifest) -> Vec<u8> {
        let mut out = Vec::new();
        m.write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn full_manifest_round_trips_byte_exact() {
        let m = parse(FULL.as_bytes()).unwrap();
        assert_eq!(m.hostname.as_deref(), Some(&b"vm"[..]));
        assert_eq!(m.localdir.as_deref(), Some(&b"src"[..]));
        assert_eq!(
            m.volumes,
            vec![VolumeInfo {
                number: 1,
                start: Index::root(),
                start_chunk: None,
                end: ix("with space.txt"),
                end_chunk: None,
                sha1: Some("abdd7b112bf4c8df963d86f058208f106e4f72af".into()),
            }]
        );
        assert_eq!(m.files.len(), 6);
        assert_eq!(m.files[3], (FileAction::New, ix("naïve ü.txt")));
        assert_eq!(m.filelist_count, Some(6));
        assert_eq!(rewrite(&m), FULL.as_bytes());
    }

    #[test]
    fn inc_manifest_round_trips_and_streams() {
        let m = parse(INC.as_bytes()).unwrap();
        assert_eq!(m.files[0], (FileAction::Changed, ix("a.txt")));
        assert_eq!(rewrite(&m), INC.as_bytes());
        // Same bytes through the spooling writer.
        let mut w = ManifestWriter::new(b"vm", b"src").unwrap();
        w.add_volume(&m.volumes[0]).unwrap();
        for (a, p) in &m.files {
            w.add_file(*a, p).unwrap();
        }
        let mut out = Vec::new();
        w.finish(&mut out).unwrap();
        assert_eq!(out, INC.as_bytes());
    }

    #[test]
    fn omitted_file_list_writes_filelist_0() {
        let m = parse(INC.as_bytes()).unwrap();
        let mut w = ManifestWriter::new(b"vm", b"src").unwrap();
        w.omit_file_list();
        w.add_volume(&m.volumes[0]).unwrap();
        for (a, p) in &m.files {
            w.add_file(*a, p).unwrap();
        }
        let mut out = Vec::new();
        w.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Filelist 0\n"), "{text}");
        assert!(parse(text.as_bytes()).unwrap().files.is_empty());
    }

    #[test]
    fn chunk_numbers_round_trip() {
        let m = parse(MULTI.as_bytes()).unwrap();
        let v2 = &m.volumes[1];
        assert_eq!((v2.start_chunk, v2.end_chunk), (Some(15), Some(29)));
        assert_eq!(m.volumes[0].end_chunk, Some(14));
        assert_eq!(m.volumes[2].end_chunk, None);
        assert!(m.hostname.is_none() && m.localdir.is_none());
        assert_eq!(rewrite(&m), MULTI.as_bytes());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"plain/na\xc3\xafve"), b"plain/na\xc3\xafve");
        assert_eq!(quote(b"a b"), b"\"a\\x20b\"");
        assert_eq!(
            quote(b"q\"'\\\t\n\x0b\x0c\r"),
            b"\"q\\x22\\x27\\x5c\\x09\\x0a\\x0b\\x0c\\x0d\"".to_vec()
        );
        // Non-UTF-8 stays raw, also inside a quoted path.
        assert_eq!(quote(b"\xff\xfe x"), b"\"\xff\xfe\\x20x\"");
        assert_eq!(quote(b"\x1f"), b"\x1f");
        for p in [&b"a b"[..], b"\xff\xfe x", b"q\"'\\\t", b"plain", b"\"lead"] {
            assert_eq!(unquote(&quote(p)).unwrap(), p);
        }
        assert!(unquote(b"\"abc").is_err());
        assert!(unquote(b"\"a\\y00\"").is_err());
        assert!(unquote(b"\"a\\x2\"").is_err());
    }

    #[test]
    fn lenient_reading() {
        let text = b"HOSTNAME h\nsomething else\nVOLUME 1:\n  StartingPath .\n  EndingPath a\n  hash SHA1 ff\nvolume 2:\n  startingpath a\n  endingpath b 3\n  whatever x\n";
        let m = parse(text).unwrap();
        assert_eq!(m.hostname.as_deref(), Some(&b"h"[..]));
        let nums: Vec<u32> = m.volumes.iter().map(|v| v.number).collect();
        assert_eq!(nums, [1, 2]);
        assert_eq!(m.volumes_without_hash(), vec![2]);
        assert_eq!(m.volumes[1].end_chunk, Some(3));
        assert!(m.files.is_empty() && m.filelist_count.is_none());
        assert_eq!(
            parse(b"Volume x:\n"),
            Err(ManifestError::BadVolumeLine("Volume x:".into()))
        );
        assert_eq!(
            parse(b"Volume 1:\n StartingPath a\n"),
            Err(ManifestError::MissingBounds(1))
        );
        assert!(parse(b"Volume 1:\n StartingPath ../x\n EndingPath a\n").is_err());
    }

    #[test]
    fn restarted_manifest_drops_later_volumes() {
        let text = b"Volume 1:\n StartingPath .\n EndingPath a\nVolume 2:\n StartingPath a\n EndingPath b\nVolume 3:\n StartingPath b\n EndingPath c\nVolume 2:\n StartingPath a\n EndingPath z\n";
        let m = parse(text).unwrap();
        let nums: Vec<u32> = m.volumes.iter().map(|v| v.number).collect();
        assert_eq!(nums, [1, 2]);
        assert_eq!(m.volumes[1].end, ix("z"));
    }

    #[test]
    fn volume_selection_for_file_to_restore() {
        let m = parse(MULTI.as_bytes()).unwrap();
        let pick = |p: &str| -> Vec<u32> { m.volumes_for(&ix(p)).map(|v| v.number).collect() };
        assert_eq!(pick("m.bin"), [1, 2, 3]);
        assert_eq!(pick("a.txt"), [1]);
        assert_eq!(pick("z.txt"), [3]);
        assert_eq!(pick("zz"), Vec::<u32>::new());
        assert_eq!(pick(""), [1, 2, 3]);
        // A directory prefix: volume 3 starts at "m.bin", so "d/x" style prefixes compare per component.
        let v = VolumeInfo {
            number: 1,
            start: ix("d/k"),
            start_chunk: None,
            end: ix("d/z"),
            end_chunk: None,
            sha1: None,
        };
        assert!(v.may_contain(&ix("d")));
        assert!(v.may_contain(&ix("d/m")));
        assert!(!v.may_contain(&ix("d/a")));
        assert!(!v.may_contain(&ix("d-x")));
        assert!(!v.may_contain(&ix("c")));
    }

    #[test]
    fn real_multivolume_manifest_with_odd_names_round_trips() {
        // Written by duplicity 0.8.22 (--volsize 1): quotes, backslash, tab, non-UTF-8, chunk numbers.
        let lines: [&[u8]; 22] = [
            b"Hostname vm\n",
            b"Localdir src\n",
            b"Volume 1:\n",
            b"    StartingPath   .  \n",
            b"    EndingPath     m.bin 15\n",
            b"    Hash SHA1 6aa74864ea4e2e63f0b632e6e2eb0326bc93b772\n",
            b"Volume 2:\n",
            b"    StartingPath   m.bin 16\n",
            b"    EndingPath     m.bin 30\n",
            b"    Hash SHA1 d8152e65da6b0f7b357ce2c9b6010f704328f3e5\n",
            b"Volume 3:\n",
            b"    StartingPath   m.bin 31\n",
            b"    EndingPath     \"\xff\xfe\\x20tab\\x09x\"  \n",
            b"    Hash SHA1 fd6cb139c9671ac54de4c58c57bcae33fb4a8aae\n",
            b"Filelist 7\n",
            b"    new      d/k\n",
            b"    new      \"it\\x27s\\x20\\x22q\\x22\\x5cb\"\n",
            b"    new      m.bin\n",
            b"    new      \"na\xc3\xafve\\x20\xc3\xbc.txt\"\n",
            b"    new      \"with\\x20space.txt\"\n",
            b"    new      z.txt\n",
            b"    new      \"\xff\xfe\\x20tab\\x09x\"\n",
        ];
        let text = lines.concat();
        let m = parse(&text).unwrap();
        assert_eq!(m.volumes.len(), 3);
        assert_eq!(
            m.volumes[2].end,
            Index::from_trusted(b"\xff\xfe tab\tx".to_vec())
        );
        assert_eq!(m.files[1].1, ix("it's \"q\"\\b"));
        assert_eq!(rewrite(&m), text);
    }
}
