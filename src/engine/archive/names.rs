//! Remote file names of duplicity's sets (full, inc, manifests, signatures) and their time stamps.
//!
//! Parsing accepts what duplicity 0.8.22 writes: the long names (`duplicity-full.T.vol1.difftar.gz`),
//! the 0.8 short names (`df.<base36>.<n>.dt.z`), and old-style names whose times are w3 datetimes with a
//! zone (`2002-04-26T04:22:01-07:00`). Times are case-insensitive, as duplicity upper-cases them, and
//! a time written as plain epoch seconds is accepted as duplicity accepts it.
//!
//! Deliberately stricter than duplicity: after `.difftar`/`.manifest`/`.sigtar` only `.part` and a
//! storage suffix (`.gz`, `.gpg`; short `.p`, `.z`, `.g`) may follow. duplicity also takes e.g.
//! `….vol1.difftar.bak` for a volume (and then crashes on the duplicate volume number); for us such
//! names are not duplicity's, so they are listed nowhere and never deleted.

use crate::engine::timestr;

/// What a duplicity file is, with the times and volume number from its name. Times are epoch seconds;
/// `from` is the end time of the set an incremental builds on, `to` its own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    FullVolume { time: i64, vol: u32 },
    IncVolume { from: i64, to: i64, vol: u32 },
    FullManifest { time: i64 },
    IncManifest { from: i64, to: i64 },
    FullSignatures { time: i64 },
    NewSignatures { from: i64, to: i64 },
}

impl NameKind {
    /// The time the set was taken: the full's time or the incremental's `to`.
    pub fn time(&self) -> i64 {
        match *self {
            NameKind::FullVolume { time, .. }
            | NameKind::FullManifest { time }
            | NameKind::FullSignatures { time } => time,
            NameKind::IncVolume { to, .. }
            | NameKind::IncManifest { to, .. }
            | NameKind::NewSignatures { to, .. } => to,
        }
    }

    /// The `from` time of an incremental or new-signatures file; None for fulls.
    pub fn from_time(&self) -> Option<i64> {
        match *self {
            NameKind::IncVolume { from, .. }
            | NameKind::IncManifest { from, .. }
            | NameKind::NewSignatures { from, .. } => Some(from),
            _ => None,
        }
    }

    /// The volume number of a difftar volume.
    pub fn volume(&self) -> Option<u32> {
        match *self {
            NameKind::FullVolume { vol, .. } | NameKind::IncVolume { vol, .. } => Some(vol),
            _ => None,
        }
    }

    pub fn is_manifest(&self) -> bool {
        matches!(
            self,
            NameKind::FullManifest { .. } | NameKind::IncManifest { .. }
        )
    }

    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            NameKind::FullSignatures { .. } | NameKind::NewSignatures { .. }
        )
    }
}

/// How the file's content is stored, as its ending says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// No suffix (`--no-encryption --no-compression`, and every manifest that is not encrypted).
    Plain,
    /// `.gz` (short names `.z`).
    Gzip,
    /// `.gpg` (short names `.g`); gpg compresses internally, so never `.gz.gpg`.
    Gpg,
}

/// How the name was spelled; we only ever write `Long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameStyle {
    /// `duplicity-full.20240102T030405Z…`
    Long,
    /// 0.8 `--short-filenames`: `df.<base36 time>…`
    Short,
    /// 0.8 `--old-filenames`: local time with zone, `duplicity-full.2002-04-26T04:22:01-07:00…`
    Old,
}

/// A recognised duplicity file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParsedName {
    pub kind: NameKind,
    pub storage: Storage,
    /// `.part` / `.p`: a file still being written, seen only in the local cache.
    pub partial: bool,
    pub style: NameStyle,
}

/// The name prefixes of `--file-prefix` and `--file-prefix-archive|-manifest|-signature|-jsonstat`.
/// Listing recognises only names carrying the same prefixes as writing uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    pub file: String,
    pub archive: String,
    pub manifest: String,
    pub signature: String,
    /// duplicity 3's `--file-prefix-jsonstat`, for its `.jsonstat` statistics files.
    pub jsonstat: String,
}

impl Prefixes {
    /// No prefix at all: names as duplicity writes them by default.
    pub fn is_empty(&self) -> bool {
        [
            &self.file,
            &self.archive,
            &self.manifest,
            &self.signature,
            &self.jsonstat,
        ]
        .iter()
        .all(|p| p.is_empty())
    }

    /// The name stored on the target for a name without prefixes: `--file-prefix`, then the prefix of
    /// the file's kind (volume, manifest, signature or jsonstat), as duplicity 3 writes them. A name that
    /// is none of duplicity's gets the file prefix only.
    pub fn add_to(&self, bare: &str) -> String {
        let kind_prefix = match parse(bare).map(|p| p.family()) {
            Some(Family::Volume) => self.archive.as_str(),
            Some(Family::Manifest) => self.manifest.as_str(),
            Some(Family::Signature) => self.signature.as_str(),
            None if is_jsonstat(bare) => self.jsonstat.as_str(),
            None => "",
        };
        format!("{}{kind_prefix}{bare}", self.file)
    }

    /// The name without prefixes of a stored name that carries exactly these prefixes for its kind;
    /// None for any other name (as duplicity 3, whose patterns start with the prefixes, ignores names
    /// without them, and names with other prefixes).
    pub fn strip_from<'a>(&self, stored: &'a str) -> Option<&'a str> {
        let rest = stored.strip_prefix(self.file.as_str())?;
        let families = [
            (&self.archive, Some(Family::Volume)),
            (&self.manifest, Some(Family::Manifest)),
            (&self.signature, Some(Family::Signature)),
            (&self.jsonstat, None),
        ];
        families.iter().find_map(|(prefix, family)| {
            let body = rest.strip_prefix(prefix.as_str())?;
            let fits = match family {
                Some(f) => parse(body).is_some_and(|p| p.family() == *f),
                None => is_jsonstat(body),
            };
            fits.then_some(body)
        })
    }
}

/// duplicity 3's statistics files (`--jsonstat`): `duplicity-full.T.jsonstat[.part][.gz|.gpg]`,
/// `duplicity-inc.T1.to.T2.jsonstat…`, and the short `dfst.`/`dist.…jst` forms.
pub fn is_jsonstat(name: &str) -> bool {
    let tokens: Vec<&str> = name.split('.').collect();
    match tokens.first() {
        Some(&"duplicity-full") | Some(&"duplicity-inc") => tokens.contains(&"jsonstat"),
        Some(&"dfst") | Some(&"dist") => tokens.contains(&"jst"),
        _ => false,
    }
}

/// A parsed jsonstat name: the set it belongs to (`from` only for an incremental), as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStatName {
    pub from: Option<i64>,
    pub time: i64,
    pub partial: bool,
    pub storage: Storage,
}

/// Parses a jsonstat name written with the given prefixes (duplicity 3's `stat_re` and `stat_re_short`):
/// `duplicity-full.T.jsonstat`, `duplicity-inc.T1.to.T2.jsonstat`, `dfst.T.jst`, `dist.T1.to.T2.jst`,
/// each with an optional `.part`/`.p` and `.gz`/`.gpg` (`.z`/`.g`).
pub fn parse_jsonstat_with_prefixes(name: &str, prefixes: &Prefixes) -> Option<JsonStatName> {
    let body = name
        .strip_prefix(prefixes.file.as_str())?
        .strip_prefix(prefixes.jsonstat.as_str())?;
    let tokens: Vec<&str> = body.split('.').collect();
    let long = |s: &str| long_time(s).map(|(t, _)| t);
    let short = |s: &str| base36(s).filter(|t| *t != 0 && writable(*t));
    let (from, time, after, short_form) = match tokens.as_slice() {
        ["duplicity-full", t, "jsonstat", after @ ..] => (None, long(t)?, after, false),
        ["duplicity-inc", t1, "to", t2, "jsonstat", after @ ..] => {
            (Some(long(t1)?), long(t2)?, after, false)
        }
        ["dfst", t, "jst", after @ ..] => (None, short(t)?, after, true),
        ["dist", t1, "to", t2, "jst", after @ ..] => (Some(short(t1)?), short(t2)?, after, true),
        _ => return None,
    };
    let (partial, storage) = if short_form {
        tail(after, "p", "z", "g")?
    } else {
        tail(after, "part", "gz", "gpg")?
    };
    Some(JsonStatName {
        from,
        time,
        partial,
        storage,
    })
}

/// [`parse_jsonstat_with_prefixes`] without prefixes.
pub fn parse_jsonstat(name: &str) -> Option<JsonStatName> {
    parse_jsonstat_with_prefixes(name, &Prefixes::default())
}

/// Parses a name with no prefixes. Names that are not duplicity's give None.
pub fn parse(name: &str) -> Option<ParsedName> {
    parse_with_prefixes(name, &Prefixes::default())
}

/// Parses a name written with the given prefixes.
pub fn parse_with_prefixes(name: &str, prefixes: &Prefixes) -> Option<ParsedName> {
    let rest = name.strip_prefix(prefixes.file.as_str())?;
    // Each kind has its own prefix; the name decides which one applies.
    let candidates = [
        (&prefixes.archive, Family::Volume),
        (&prefixes.manifest, Family::Manifest),
        (&prefixes.signature, Family::Signature),
    ];
    candidates.iter().find_map(|(prefix, family)| {
        let body = rest.strip_prefix(prefix.as_str())?;
        let parsed = parse_long(body).or_else(|| parse_short(body))?;
        (parsed.family() == *family).then_some(parsed)
    })
}

/// Formats the long name duplicity 0.8.22 writes. Manifests are never gzipped, so `Gzip` gives the
/// plain manifest name.
pub fn format(kind: &NameKind, storage: Storage) -> String {
    format_with(kind, storage, false, &Prefixes::default())
}

/// Formats the `.part` name used in the local cache while a set is being written.
pub fn format_partial(kind: &NameKind, storage: Storage) -> String {
    format_with(kind, storage, true, &Prefixes::default())
}

/// Formats a name with prefixes and optionally the `.part` marker.
pub fn format_with(
    kind: &NameKind,
    storage: Storage,
    partial: bool,
    prefixes: &Prefixes,
) -> String {
    let ts = timestr::format_timestamp;
    let (kind_prefix, body) = match *kind {
        NameKind::FullVolume { time, vol } => (
            &prefixes.archive,
            format!("duplicity-full.{}.vol{vol}.difftar", ts(time)),
        ),
        NameKind::IncVolume { from, to, vol } => (
            &prefixes.archive,
            format!("duplicity-inc.{}.to.{}.vol{vol}.difftar", ts(from), ts(to)),
        ),
        NameKind::FullManifest { time } => (
            &prefixes.manifest,
            format!("duplicity-full.{}.manifest", ts(time)),
        ),
        NameKind::IncManifest { from, to } => (
            &prefixes.manifest,
            format!("duplicity-inc.{}.to.{}.manifest", ts(from), ts(to)),
        ),
        NameKind::FullSignatures { time } => (
            &prefixes.signature,
            format!("duplicity-full-signatures.{}.sigtar", ts(time)),
        ),
        NameKind::NewSignatures { from, to } => (
            &prefixes.signature,
            format!("duplicity-new-signatures.{}.to.{}.sigtar", ts(from), ts(to)),
        ),
    };
    let part = if partial { ".part" } else { "" };
    let suffix = match (storage, kind.is_manifest()) {
        (Storage::Gpg, _) => ".gpg",
        (Storage::Gzip, false) => ".gz",
        _ => "",
    };
    format!("{}{kind_prefix}{body}{part}{suffix}", prefixes.file)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Volume,
    Manifest,
    Signature,
}

impl ParsedName {
    fn family(&self) -> Family {
        if self.kind.volume().is_some() {
            Family::Volume
        } else if self.kind.is_manifest() {
            Family::Manifest
        } else {
            Family::Signature
        }
    }
}

/// A time from a long or old-style name, as duplicity reads it (`genstrtotime(t.upper())`, of which
/// only the forms that do not depend on the clock or the local zone). Zero is refused, as duplicity
/// treats it as "no time".
fn long_time(s: &str) -> Option<(i64, NameStyle)> {
    let upper = s.to_ascii_uppercase();
    let (t, style) = if !upper.is_empty() && upper.bytes().all(|b| b.is_ascii_digit()) {
        (upper.parse().ok()?, NameStyle::Long)
    } else if upper.len() == 16 {
        (timestr::parse_timestamp(&upper)?, NameStyle::Long)
    } else {
        (timestr::parse_w3(&upper)?, NameStyle::Old)
    };
    (t != 0 && writable(t)).then_some((t, style))
}

/// True if `t` written as a long name's time (`YYYYMMDDTHHMMSSZ`) reads back as `t`: times outside
/// 1901..2099 (epoch seconds or short names far off) would name a file we could not read again.
fn writable(t: i64) -> bool {
    timestr::parse_timestamp(&timestr::format_timestamp(t)) == Some(t)
}

/// Splits the tail after the type word (`difftar`, `manifest`, `sigtar`, …) into partial and storage.
fn tail(tokens: &[&str], part: &str, gzip: &str, gpg: &str) -> Option<(bool, Storage)> {
    let (partial, rest) = match tokens.split_first() {
        Some((first, rest)) if *first == part => (true, rest),
        _ => (false, tokens),
    };
    let storage = match rest {
        [] => Storage::Plain,
        [s] if *s == gzip => Storage::Gzip,
        [s] if *s == gpg => Storage::Gpg,
        _ => return None,
    };
    Some((partial, storage))
}

fn parse_long(body: &str) -> Option<ParsedName> {
    let tokens: Vec<&str> = body.split('.').collect();
    let (head, rest) = tokens.split_first()?;
    let mut style = NameStyle::Long;
    let mut time = |s: &str| {
        let (t, st) = long_time(s)?;
        if st == NameStyle::Old {
            style = NameStyle::Old;
        }
        Some(t)
    };
    let (kind, after) = match (*head, rest) {
        ("duplicity-full", [t, vol, "difftar", after @ ..]) => {
            let vol = volume_number(vol.strip_prefix("vol")?, 10)?;
            (
                NameKind::FullVolume {
                    time: time(t)?,
                    vol,
                },
                after,
            )
        }
        ("duplicity-full", [t, "manifest", after @ ..]) => {
            (NameKind::FullManifest { time: time(t)? }, after)
        }
        ("duplicity-inc", [t1, "to", t2, vol, "difftar", after @ ..]) => {
            let vol = volume_number(vol.strip_prefix("vol")?, 10)?;
            let (from, to) = (time(t1)?, time(t2)?);
            (NameKind::IncVolume { from, to, vol }, after)
        }
        ("duplicity-inc", [t1, "to", t2, "manifest", after @ ..]) => {
            let (from, to) = (time(t1)?, time(t2)?);
            (NameKind::IncManifest { from, to }, after)
        }
        ("duplicity-full-signatures", [t, "sigtar", after @ ..]) => {
            (NameKind::FullSignatures { time: time(t)? }, after)
        }
        ("duplicity-new-signatures", [t1, "to", t2, "sigtar", after @ ..]) => {
            let (from, to) = (time(t1)?, time(t2)?);
            (NameKind::NewSignatures { from, to }, after)
        }
        _ => return None,
    };
    let (partial, storage) = tail(after, "part", "gz", "gpg")?;
    if kind.is_manifest() && storage == Storage::Gzip {
        return None; // duplicity never writes a gzipped manifest
    }
    Some(ParsedName {
        kind,
        storage,
        partial,
        style,
    })
}

fn parse_short(body: &str) -> Option<ParsedName> {
    let tokens: Vec<&str> = body.split('.').collect();
    let (head, rest) = tokens.split_first()?;
    let t = |s: &str| base36(s).filter(|t| *t != 0 && writable(*t));
    let (kind, after) = match (*head, rest) {
        ("df", [tm, n, "dt", after @ ..]) => {
            let vol = volume_number(n, 36)?;
            (NameKind::FullVolume { time: t(tm)?, vol }, after)
        }
        ("df", [tm, "m", after @ ..]) => (NameKind::FullManifest { time: t(tm)? }, after),
        ("di", [t1, t2, n, "dt", after @ ..]) => {
            let vol = volume_number(n, 36)?;
            (
                NameKind::IncVolume {
                    from: t(t1)?,
                    to: t(t2)?,
                    vol,
                },
                after,
            )
        }
        ("di", [t1, t2, "m", after @ ..]) => (
            NameKind::IncManifest {
                from: t(t1)?,
                to: t(t2)?,
            },
            after,
        ),
        ("dfs", [tm, "st", after @ ..]) => (NameKind::FullSignatures { time: t(tm)? }, after),
        ("dns", [t1, t2, "st", after @ ..]) => (
            NameKind::NewSignatures {
                from: t(t1)?,
                to: t(t2)?,
            },
            after,
        ),
        _ => return None,
    };
    let (partial, storage) = tail(after, "p", "z", "g")?;
    if kind.is_manifest() && storage == Storage::Gzip {
        return None;
    }
    Some(ParsedName {
        kind,
        storage,
        partial,
        style: NameStyle::Short,
    })
}

/// A volume number; 0 is refused (duplicity treats it as "no volume" and fails).
fn volume_number(s: &str, radix: u32) -> Option<u32> {
    let n = if radix == 10 {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()?
    } else {
        u32::try_from(base36(s)?).ok()?
    };
    (n != 0).then_some(n)
}

/// Lowercase base-36 (0-9, a-z), as the short names use.
fn base36(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0i64, |acc, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        acc.checked_mul(36)?.checked_add(i64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_411_945; // 20261123T053225Z
    const T1: i64 = 1_795_411_966; // 20261123T053246Z

    fn pn(kind: NameKind, storage: Storage) -> ParsedName {
        ParsedName {
            kind,
            storage,
            partial: false,
            style: NameStyle::Long,
        }
    }

    #[test]
    fn prefixes_are_added_per_kind_and_only_exact_ones_are_stripped() {
        let p = Prefixes {
            file: "P_".into(),
            archive: "A_".into(),
            manifest: "M_".into(),
            signature: "S_".into(),
            jsonstat: "J_".into(),
        };
        let vol = "duplicity-full.20261123T053225Z.vol1.difftar.gz";
        let man = "duplicity-inc.20261123T053225Z.to.20261123T053246Z.manifest.gpg";
        let sig = "duplicity-full-signatures.20261123T053225Z.sigtar.gz";
        let stat = "duplicity-full.20261123T053225Z.jsonstat.gz";
        for (bare, stored) in [
            (vol, format!("P_A_{vol}")),
            (man, format!("P_M_{man}")),
            (sig, format!("P_S_{sig}")),
            (stat, format!("P_J_{stat}")),
        ] {
            assert_eq!(p.add_to(bare), stored);
            assert_eq!(p.strip_from(&stored), Some(bare));
            // Without the prefixes, or with those of another kind, the name is not this collection's.
            assert_eq!(p.strip_from(bare), None);
        }
        assert_eq!(p.strip_from(&format!("P_M_{vol}")), None);
        assert_eq!(p.strip_from(&format!("A_{vol}")), None);
        assert_eq!(p.strip_from("P_A_notes.txt"), None);
        assert!(!p.is_empty());
        assert!(Prefixes::default().is_empty());
        // No prefixes: a prefixed name is not duplicity's (duplicity's patterns start at the name's start).
        assert_eq!(parse(&format!("P_A_{vol}")), None);
        assert_eq!(Prefixes::default().strip_from(vol), Some(vol));
    }

    /// Found by fuzz/names: a short name whose time is in the year 3931 parsed, but the long name we
    /// would write for it did not.
    #[test]
    fn fuzz_times_we_could_not_write_back_are_refused() {
        assert_eq!(parse("di.sfkgj7p.sfgj7b.2.dt"), None);
        assert_eq!(parse("duplicity-full.99999999999.manifest"), None);
        assert!(parse("duplicity-full.1700000000.manifest").is_some());
    }

    #[test]
    fn long_names_round_trip() {
        let cases = [
            (
                "duplicity-full.20261123T053225Z.vol1.difftar.gz",
                NameKind::FullVolume { time: T0, vol: 1 },
                Storage::Gzip,
            ),
            (
                "duplicity-full.20261123T053225Z.manifest",
                NameKind::FullManifest { time: T0 },
                Storage::Plain,
            ),
            (
                "duplicity-full.20261123T053225Z.manifest.gpg",
                NameKind::FullManifest { time: T0 },
                Storage::Gpg,
            ),
            (
                "duplicity-inc.20261123T053225Z.to.20261123T053246Z.vol12.difftar.gpg",
                NameKind::IncVolume {
                    from: T0,
                    to: T1,
                    vol: 12,
                },
                Storage::Gpg,
            ),
            (
                "duplicity-inc.20261123T053225Z.to.20261123T053246Z.manifest",
                NameKind::IncManifest { from: T0, to: T1 },
                Storage::Plain,
            ),
            (
                "duplicity-full-signatures.20261123T053225Z.sigtar.gz",
                NameKind::FullSignatures { time: T0 },
                Storage::Gzip,
            ),
            (
                "duplicity-new-signatures.20261123T053225Z.to.20261123T053246Z.sigtar",
                NameKind::NewSignatures { from: T0, to: T1 },
                Storage::Plain,
            ),
        ];
        for (name, kind, storage) in cases {
            assert_eq!(parse(name), Some(pn(kind, storage)), "{name}");
            assert_eq!(format(&kind, storage), name);
        }
        // Manifests are never gzipped.
        assert_eq!(
            format(&NameKind::FullManifest { time: T0 }, Storage::Gzip),
            "duplicity-full.20261123T053225Z.manifest"
        );
    }

    #[test]
    fn partial_names() {
        let kind = NameKind::FullSignatures { time: T0 };
        let name = format_partial(&kind, Storage::Gzip);
        assert_eq!(
            name,
            "duplicity-full-signatures.20261123T053225Z.sigtar.part.gz"
        );
        let p = parse(&name).unwrap();
        assert!(p.partial);
        assert_eq!(p.kind, kind);
        let m = parse("duplicity-full.20261123T053225Z.manifest.part").unwrap();
        assert!(m.partial && m.kind.is_manifest());
    }

    #[test]
    fn short_names() {
        // 1700000000 = s44we8 in base 36 (format doc, verified).
        assert_eq!(base36("s44we8"), Some(1_700_000_000));
        let p = parse("df.s44we8.a.dt.z").unwrap();
        assert_eq!(
            p.kind,
            NameKind::FullVolume {
                time: 1_700_000_000,
                vol: 10
            }
        );
        assert_eq!((p.storage, p.style), (Storage::Gzip, NameStyle::Short));
        assert_eq!(
            parse("di.s44we8.s44we9.m.g").unwrap().kind,
            NameKind::IncManifest {
                from: 1_700_000_000,
                to: 1_700_000_001
            }
        );
        assert!(parse("dfs.s44we8.st.p.z").unwrap().partial);
        assert_eq!(
            parse("dns.s44we8.s44we9.st").unwrap().kind,
            NameKind::NewSignatures {
                from: 1_700_000_000,
                to: 1_700_000_001
            }
        );
        assert_eq!(parse("df.S44WE8.m"), None);
    }

    #[test]
    fn old_style_and_lowercase_times() {
        let p = parse("duplicity-full.2002-04-26T04:22:01-07:00.manifest").unwrap();
        assert_eq!(
            p.kind,
            NameKind::FullManifest {
                time: 1_019_820_121
            }
        );
        assert_eq!(p.style, NameStyle::Old);
        assert_eq!(
            parse("duplicity-full.20261123t053225z.manifest")
                .unwrap()
                .kind,
            NameKind::FullManifest { time: T0 }
        );
    }

    #[test]
    fn jsonstat_names() {
        let full = parse_jsonstat("duplicity-full.20261123T053225Z.jsonstat.gz").unwrap();
        assert_eq!(
            (full.from, full.partial, full.storage),
            (None, false, Storage::Gzip)
        );
        assert_eq!(
            full.time,
            timestr::parse_timestamp("20261123T053225Z").unwrap()
        );
        let inc =
            parse_jsonstat("duplicity-inc.20261123T053225Z.to.20261124T053225Z.jsonstat.part.gpg")
                .unwrap();
        assert_eq!(
            (inc.from, inc.partial, inc.storage),
            (Some(full.time), true, Storage::Gpg)
        );
        assert!(
            parse_jsonstat("duplicity-inc.20261123T053225Z.to.20261124T053225Z.jsonstat").is_some()
        );
        assert!(parse_jsonstat("dfst.abc.jst.z").is_some());
        assert!(parse_jsonstat("duplicity-full.20261123T053225Z.manifest").is_none());
        assert!(parse_jsonstat("duplicity-full.20261123T053225Z.jsonstat.zip").is_none());
        let p = Prefixes {
            file: "F_".into(),
            jsonstat: "J_".into(),
            ..Default::default()
        };
        assert!(
            parse_jsonstat_with_prefixes("F_J_duplicity-full.20261123T053225Z.jsonstat", &p)
                .is_some()
        );
        assert!(
            parse_jsonstat_with_prefixes("F_duplicity-full.20261123T053225Z.jsonstat", &p)
                .is_none()
        );
    }

    #[test]
    fn foreign_names_are_ignored() {
        for name in [
            "notduplicity.txt",
            "duplicity-full.20261123T053225Z.vol1.difftar.bak",
            "duplicity-full.20261123T053225Z.vol0.difftar.gz",
            "duplicity-full.20261123T053225Z.volx.difftar.gz",
            "duplicity-full.20261123T053225Z.manifest.gz",
            "duplicity-full.garbage.manifest",
            "duplicity-full.20261123T053225Z.jsonstat.gz",
            "duplicity-inc.20261123T053225Z.20261123T053246Z.manifest",
            "duplicity-full.20261123T053225Z.vol1.difftar.gz.gpg",
            ".duplicity-full.20261123T053225Z.manifest.part",
            "",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }

    #[test]
    fn prefixes_must_match() {
        let pre = Prefixes {
            file: "P-".into(),
            archive: "A-".into(),
            manifest: "M-".into(),
            signature: "S-".into(),
            jsonstat: String::new(),
        };
        let vol = NameKind::FullVolume { time: T0, vol: 1 };
        let name = format_with(&vol, Storage::Gzip, false, &pre);
        assert_eq!(name, "P-A-duplicity-full.20261123T053225Z.vol1.difftar.gz");
        assert_eq!(parse_with_prefixes(&name, &pre).unwrap().kind, vol);
        assert_eq!(parse(&name), None);
        // A volume carrying the manifest prefix is not ours.
        assert_eq!(
            parse_with_prefixes("P-M-duplicity-full.20261123T053225Z.vol1.difftar.gz", &pre),
            None
        );
        assert!(
            parse_with_prefixes("P-M-duplicity-full.20261123T053225Z.manifest", &pre).is_some()
        );
    }
}
