//! File selection with duplicity 3.2.1's semantics: `--include`/`--exclude` and their filelist, regexp
//! and literal forms, `--exclude-if-present`, `--exclude-device-files`, `--exclude-other-filesystems`,
//! `--exclude-older-than`, `--files-from`, and the `--filter-*` mode switches.
//!
//! The rules, in command-line order, are asked in turn about each path below the source; the first that
//! includes or excludes decides. An include that could match something below a directory asks for the
//! directory to be "scanned": the walk enters it, and stores it only if something inside is stored.
//! With no rule deciding, a path is included. Patterns are matched against the path's full name as
//! duplicity forms it: the source as typed (made canonical) joined with the path inside it, so
//! `--exclude /srv/data/cache` needs the source to be given as `/srv/data` (or a parent's name).

mod glob;
mod restore;

pub use restore::{ChosenPaths, RestoreFilter};

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use glob::{casefold, decode, Glob, GlobError, GlobVerdict, Unit};

use super::index::Index;
use super::meta::FileType;

/// One selection option with its argument, as given on the command line (order matters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectionRule {
    /// `--exclude PATTERN` (a shell pattern, or literal/regexp under `--filter-literal/-regexp`).
    Exclude(OsString),
    /// `--include PATTERN`.
    Include(OsString),
    /// `--exclude-filelist FILE`: one pattern a line; `+ ` includes, `- ` excludes.
    ExcludeFilelist(PathBuf),
    /// `--include-filelist FILE`.
    IncludeFilelist(PathBuf),
    /// `--exclude-regexp REGEX`: matched anywhere in the full name.
    ExcludeRegexp(OsString),
    /// `--include-regexp REGEX`.
    IncludeRegexp(OsString),
    /// `--exclude-if-present NAME`: a directory holding an entry of this name is excluded.
    ExcludeIfPresent(OsString),
    /// `--exclude-other-filesystems`.
    ExcludeOtherFilesystems,
    /// `--exclude-device-files`.
    ExcludeDeviceFiles,
    /// `--exclude-older-than TIME`: regular files last modified before this epoch second.
    ExcludeOlderThan(i64),
    /// `--files-from FILE`: only these paths (relative to the source) and their parents are walked.
    FilesFrom(PathBuf),
    FilterGlobbing,
    FilterLiteral,
    FilterRegexp,
    FilterIgnorecase,
    FilterStrictcase,
}

impl SelectionRule {
    /// The option's name, as typed.
    pub fn option(&self) -> &'static str {
        match self {
            SelectionRule::Exclude(_) => "--exclude",
            SelectionRule::Include(_) => "--include",
            SelectionRule::ExcludeFilelist(_) => "--exclude-filelist",
            SelectionRule::IncludeFilelist(_) => "--include-filelist",
            SelectionRule::ExcludeRegexp(_) => "--exclude-regexp",
            SelectionRule::IncludeRegexp(_) => "--include-regexp",
            SelectionRule::ExcludeIfPresent(_) => "--exclude-if-present",
            SelectionRule::ExcludeOtherFilesystems => "--exclude-other-filesystems",
            SelectionRule::ExcludeDeviceFiles => "--exclude-device-files",
            SelectionRule::ExcludeOlderThan(_) => "--exclude-older-than",
            SelectionRule::FilesFrom(_) => "--files-from",
            SelectionRule::FilterGlobbing => "--filter-globbing",
            SelectionRule::FilterLiteral => "--filter-literal",
            SelectionRule::FilterRegexp => "--filter-regexp",
            SelectionRule::FilterIgnorecase => "--filter-ignorecase",
            SelectionRule::FilterStrictcase => "--filter-strictcase",
        }
    }

    fn is_filter(&self) -> bool {
        self.option().starts_with("--filter-")
    }
}

/// Why the selection options cannot be used; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("the pattern {pattern:?} cannot match any file under the source {source_name:?}: selection patterns are full paths, so begin it with the source directory as given on the command line, or with a pattern such as '**' that matches it")]
    OutsideSource {
        pattern: String,
        source_name: String,
    },
    #[error("invalid shell pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("invalid regular expression {pattern:?}: {reason} (the syntax is Rust's regex crate's, which is Python's without look-around or back-references)")]
    InvalidRegex { pattern: String, reason: String },
    #[error("{option} cannot be empty: give a pattern or file name")]
    EmptyArgument { option: &'static str },
    #[error("cannot read the {option} file {}: {source}", path.display())]
    Filelist {
        option: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {option} file {} is not UTF-8 text (duplicity reads filelists as UTF-8); convert it", path.display())]
    FilelistNotUtf8 { option: &'static str, path: PathBuf },
    #[error("the --files-from list {} contains the absolute path {line:?}: give every path relative to the backup source", path.display())]
    FilesFromAbsolute { path: PathBuf, line: String },
    #[error("the --files-from list {} names no files, so the backup would be empty: check the file (or --null-separator)", path.display())]
    FilesFromEmpty { path: PathBuf },
    #[error("the last selection option ({rule}) only includes files; everything is included by default, so it has no effect: end with an exclude such as --exclude '**', or drop it")]
    RedundantInclude { rule: String },
    #[error("the last selection option is {option}, which affects only the selection options after it: move it before them or drop it")]
    TrailingFilter { option: &'static str },
    #[error("only the default filter modes were given ({options}): case-sensitive globbing is the default, so they have no effect; drop them")]
    RedundantFilters { options: String },
    #[error("the restore selection pattern {pattern:?} is invalid: restore patterns are relative to the archive root, as list-current-files prints the paths (e.g. 'etc/app', not '/etc/app'), and must not be absolute or contain '.' or '..' path elements")]
    NotArchiveRelative { pattern: String },
    #[error("{options} cannot be used with restore (it looks at the source's files on disk, which a restore does not have): drop it, and select with --include/--exclude")]
    NotForRestore { options: String },
    #[error("cannot read the source {} for --exclude-other-filesystems: {source}", path.display())]
    SourceUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the selection says about one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Include,
    Exclude,
    /// A directory to enter, stored only when something inside is stored (non-directories: excluded).
    Scan,
}

/// What the rules may look at for one path.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The path inside the source.
    pub index: &'a Index,
    /// Its location on disk (for `--exclude-if-present`).
    pub path: &'a Path,
    /// None when a `--files-from` entry does not exist.
    pub ftype: Option<FileType>,
    /// `st_dev` of the entry itself (not followed).
    pub dev: u64,
    pub mtime: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Globbing,
    Literal,
    Regex,
}

/// One compiled rule's answer: None = nothing to say.
type Verdict = Option<Decision>;

#[derive(Clone, Debug)]
enum Test {
    Glob(Glob),
    /// `**`: matches everything.
    Everything,
    Literal {
        text: Vec<Unit>,
        ignore_case: bool,
    },
    Regex(regex::bytes::Regex),
    IfPresent(Vec<u8>),
    DeviceFiles,
    OtherFilesystems {
        root_dev: u64,
    },
    OlderThan(i64),
}

#[derive(Clone, Debug)]
struct Rule {
    test: Test,
    include: bool,
    /// How duplicity names it in its "last option only includes" error.
    name: String,
}

/// The compiled selection. The default includes everything.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// The source's canonical name, the start of every full name.
    base: Vec<u8>,
    rules: Vec<Rule>,
    /// `--files-from`: the full name of each directory to enter, with the names to look at inside it.
    files_from: Option<HashMap<Vec<u8>, BTreeSet<Vec<u8>>>>,
    /// A restore's selection: paths are named relative to the archive root (`base` is empty), as
    /// duplicity 3.2.1's restore names them; see [`Selection::for_restore`].
    archive: bool,
}

/// duplicity's canonical form of a typed path: `.` and empty components dropped, absolute stays absolute,
/// nothing left is `.`.
fn canonical(typed: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = typed
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    let joined = parts.join(&b'/');
    if typed.first() == Some(&b'/') {
        [b"/".as_slice(), &joined].concat()
    } else if joined.is_empty() {
        b".".to_vec()
    } else {
        joined
    }
}

/// `os.path.join(a, b)` for a relative `b`.
fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() || a.ends_with(b"/") {
        [a, b].concat()
    } else {
        [a, b"/", b].concat()
    }
}

/// `os.path.split`.
fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let cut = p.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
    let (mut head, tail) = p.split_at(cut);
    if !head.is_empty() && head.iter().any(|b| *b != b'/') {
        while head.ends_with(b"/") {
            head = &head[..head.len() - 1];
        }
    }
    (head, tail)
}

/// Python's `str.strip()`: Unicode white space, including the separators U+001C..U+001F.
fn strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads a filelist as duplicity does: UTF-8 text with universal newlines, split on `\n` or NUL.
fn read_list(
    option: &'static str,
    path: &Path,
    null_separator: bool,
) -> Result<Vec<String>, SelectionError> {
    let bytes = std::fs::read(path).map_err(|source| SelectionError::Filelist {
        option,
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| SelectionError::FilelistNotUtf8 {
        option,
        path: path.to_path_buf(),
    })?;
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let sep = if null_separator { '\0' } else { '\n' };
    Ok(text.split(sep).map(str::to_owned).collect())
}

impl Selection {
    /// Compiles `rules` (in command-line order) for the source given as `source_as_typed`. Filelists are
    /// read now. Errors as duplicity's: a pattern that cannot match under the source, a trailing or
    /// redundant filter option, a last rule that only includes.
    pub fn new(
        source_as_typed: &Path,
        rules: &[SelectionRule],
        null_separator: bool,
    ) -> Result<Selection, SelectionError> {
        let sel = Selection {
            base: canonical(source_as_typed.as_os_str().as_bytes()),
            rules: Vec::new(),
            files_from: None,
            archive: false,
        };
        sel.compile(Some(source_as_typed), rules, null_separator)
    }

    /// Compiles `rules` for a restore, as duplicity 3.2.1 applies them to one: patterns name paths
    /// relative to the archive root, as list-current-files prints them (`etc/app`, a leading `./`
    /// dropped; absolute ones or `.`/`..` elements are an error), regular expressions are matched
    /// against that relative path, `--exclude-older-than` and `--exclude-device-files` look at the
    /// backed-up mtime and type. Options that look at the source on disk (`--exclude-if-present`,
    /// `--exclude-other-filesystems`, `--files-from`) are refused. Only [`Selection::decide`] and
    /// [`Selection::for_restore`]'s own checks apply; see [`RestoreFilter`] for the walk.
    pub fn for_restore(
        rules: &[SelectionRule],
        null_separator: bool,
    ) -> Result<Selection, SelectionError> {
        let refused: BTreeSet<&'static str> = rules
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    SelectionRule::ExcludeIfPresent(_)
                        | SelectionRule::ExcludeOtherFilesystems
                        | SelectionRule::FilesFrom(_)
                )
            })
            .map(|r| r.option())
            .collect();
        if !refused.is_empty() {
            return Err(SelectionError::NotForRestore {
                options: refused.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let sel = Selection {
            base: Vec::new(),
            rules: Vec::new(),
            files_from: None,
            archive: true,
        };
        sel.compile(None, rules, null_separator)
    }

    /// True for a selection made by [`Selection::for_restore`].
    pub fn is_for_restore(&self) -> bool {
        self.archive
    }

    fn compile(
        self,
        source_as_typed: Option<&Path>,
        rules: &[SelectionRule],
        null_separator: bool,
    ) -> Result<Selection, SelectionError> {
        let mut sel = self;
        if let Some(last) = rules.last().filter(|r| r.is_filter()) {
            return Err(SelectionError::TrailingFilter {
                option: last.option(),
            });
        }
        let filters: BTreeSet<&'static str> = rules
            .iter()
            .filter(|r| r.is_filter())
            .map(|r| r.option())
            .collect();
        if !filters.is_empty()
            && filters
                .iter()
                .all(|o| *o == "--filter-globbing" || *o == "--filter-strictcase")
        {
            return Err(SelectionError::RedundantFilters {
                options: filters.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let mut mode = Mode::Globbing;
        let mut ignore_case = false;
        for rule in rules {
            let empty = |s: &OsString| {
                if s.is_empty() {
                    Err(SelectionError::EmptyArgument {
                        option: rule.option(),
                    })
                } else {
                    Ok(())
                }
            };
            match rule {
                SelectionRule::Exclude(p) | SelectionRule::Include(p) => {
                    empty(p)?;
                    let include = matches!(rule, SelectionRule::Include(_));
                    let r = sel.pattern_rule(p.as_bytes(), include, mode, ignore_case)?;
                    sel.rules.push(r);
                }
                SelectionRule::ExcludeFilelist(f) | SelectionRule::IncludeFilelist(f) => {
                    let include = matches!(rule, SelectionRule::IncludeFilelist(_));
                    for line in read_list(rule.option(), f, null_separator)? {
                        let Some((pattern, inc)) = filelist_line(&line, include) else {
                            continue;
                        };
                        let r = sel.pattern_rule(pattern.as_bytes(), inc, mode, ignore_case)?;
                        sel.rules.push(r);
                    }
                }
                SelectionRule::ExcludeRegexp(p) | SelectionRule::IncludeRegexp(p) => {
                    empty(p)?;
                    let include = matches!(rule, SelectionRule::IncludeRegexp(_));
                    sel.rules
                        .push(regex_rule(p.as_bytes(), include, ignore_case)?);
                }
                SelectionRule::ExcludeIfPresent(name) => {
                    empty(name)?;
                    sel.rules.insert(
                        0,
                        Rule {
                            test: Test::IfPresent(name.as_bytes().to_vec()),
                            include: false,
                            name: format!("--exclude-if-present {}", show(name.as_bytes())),
                        },
                    );
                }
                SelectionRule::ExcludeDeviceFiles => sel.rules.insert(
                    0,
                    Rule {
                        test: Test::DeviceFiles,
                        include: false,
                        name: "--exclude-device-files".into(),
                    },
                ),
                SelectionRule::ExcludeOtherFilesystems => {
                    // Refused for restores before compiling.
                    let source_as_typed = source_as_typed.unwrap_or(Path::new("."));
                    let md = std::fs::symlink_metadata(source_as_typed).map_err(|source| {
                        SelectionError::SourceUnreadable {
                            path: source_as_typed.to_path_buf(),
                            source,
                        }
                    })?;
                    sel.rules.push(Rule {
                        test: Test::OtherFilesystems {
                            root_dev: std::os::unix::fs::MetadataExt::dev(&md),
                        },
                        include: false,
                        name: "--exclude-other-filesystems".into(),
                    });
                }
                SelectionRule::ExcludeOlderThan(t) => sel.rules.push(Rule {
                    test: Test::OlderThan(*t),
                    include: false,
                    name: format!("--exclude-older-than {t}"),
                }),
                SelectionRule::FilesFrom(f) => {
                    sel.files_from = Some(sel.parse_files_from(f, null_separator)?);
                }
                SelectionRule::FilterGlobbing => mode = Mode::Globbing,
                SelectionRule::FilterLiteral => mode = Mode::Literal,
                SelectionRule::FilterRegexp => mode = Mode::Regex,
                SelectionRule::FilterIgnorecase => ignore_case = true,
                SelectionRule::FilterStrictcase => ignore_case = false,
            }
        }
        if let Some(last) = sel.rules.last().filter(|r| r.include) {
            return Err(SelectionError::RedundantInclude {
                rule: last.name.clone(),
            });
        }
        Ok(sel)
    }

    /// True when every path is included and every directory listed (no rules, no `--files-from`).
    pub fn is_everything(&self) -> bool {
        self.rules.is_empty() && self.files_from.is_none()
    }

    /// `--include`/`--exclude` and filelist lines, interpreted in the current filter mode.
    fn pattern_rule(
        &self,
        pattern: &[u8],
        include: bool,
        mode: Mode,
        ignore_case: bool,
    ) -> Result<Rule, SelectionError> {
        let verb = if include { "include" } else { "exclude" };
        match mode {
            Mode::Regex => regex_rule(pattern, include, ignore_case),
            Mode::Literal => {
                let mut text = self.archive_relative(decode(pattern))?;
                if text != [b'/' as Unit] && text.last() == Some(&(b'/' as Unit)) {
                    text.pop();
                }
                if ignore_case {
                    text = casefold(&text);
                }
                let rule = Rule {
                    test: Test::Literal { text, ignore_case },
                    include,
                    name: format!("{}literal string {verb}: {}", self.kind(), show(pattern)),
                };
                // The prefix check asks the pattern, as an include, about the source itself (a
                // restore's patterns are relative to the archive root: nothing to check).
                if let Test::Literal { text, ignore_case } = &rule.test {
                    if !self.archive
                        && literal_verdict(text, *ignore_case, &self.base, true).is_none()
                    {
                        return Err(self.outside(pattern));
                    }
                }
                Ok(rule)
            }
            Mode::Globbing => {
                let mut text = decode(pattern);
                let mut ignore_case = ignore_case;
                // The legacy prefix, in any case, folds the rest of the pattern.
                const PREFIX: &[u8] = b"ignorecase:";
                if pattern.len() >= PREFIX.len()
                    && pattern[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
                {
                    text = casefold(&decode(&pattern[PREFIX.len()..]));
                    ignore_case = true;
                }
                let text = self.archive_relative(text)?;
                let invalid = |e: GlobError| SelectionError::InvalidPattern {
                    pattern: show(pattern),
                    reason: match e {
                        GlobError::ConsecutiveSlashes => {
                            "it has consecutive '/'s; write a single '/'".into()
                        }
                        GlobError::BadRange(r) => format!(
                            "the character range {r:?} is reversed; write the lower character first"
                        ),
                        GlobError::Empty => "nothing follows 'ignorecase:'".into(),
                    },
                };
                let glob = Glob::new(&text, ignore_case).map_err(invalid)?;
                // The prefix check asks the pattern, as an include, about the source itself.
                let root = decode(&self.base);
                if !self.archive && glob.verdict(&root, true, true) == GlobVerdict::Silent {
                    return Err(self.outside(pattern));
                }
                let test = if text == decode(b"**") {
                    Test::Everything
                } else {
                    Test::Glob(glob)
                };
                Ok(Rule {
                    test,
                    include,
                    name: format!("{}shell glob {verb}: {}", self.kind(), show(pattern)),
                })
            }
        }
    }

    /// How duplicity names this kind of pattern in its messages.
    fn kind(&self) -> &'static str {
        if self.archive {
            "archive "
        } else {
            ""
        }
    }

    /// A restore's pattern as duplicity 3.2.1 takes it: leading `./`s dropped; absolute, or with a `.`
    /// or `..` element, it is an error. Backup patterns are returned unchanged.
    fn archive_relative(&self, mut text: Vec<Unit>) -> Result<Vec<Unit>, SelectionError> {
        if !self.archive {
            return Ok(text);
        }
        let slash = b'/' as Unit;
        let dot = b'.' as Unit;
        while text.len() >= 2 && text[0] == dot && text[1] == slash {
            text.drain(..2);
        }
        let bad = text.first() == Some(&slash)
            || text
                .split(|u| *u == slash)
                .any(|part| part == [dot] || part == [dot, dot])
            // duplicity fails on a pattern left empty ("./"); name it as the invalid pattern it is.
            || text.is_empty();
        if bad {
            let shown: String = text.iter().filter_map(|u| char::from_u32(*u)).collect();
            return Err(SelectionError::NotArchiveRelative {
                pattern: if shown.is_empty() { "./".into() } else { shown },
            });
        }
        Ok(text)
    }

    fn outside(&self, pattern: &[u8]) -> SelectionError {
        SelectionError::OutsideSource {
            pattern: show(pattern),
            source_name: show(&self.base),
        }
    }

    /// The full name duplicity matches patterns against: the source's name joined with `index`.
    pub fn full_name(&self, index: &Index) -> Vec<u8> {
        if index.is_root() {
            self.base.clone()
        } else {
            join(&self.base, index.as_bytes())
        }
    }

    /// With `--files-from`: the names to look at inside the directory `dir` (possibly none). None: list
    /// the directory.
    pub fn listed_children(&self, dir: &Index) -> Option<Vec<Vec<u8>>> {
        let ff = self.files_from.as_ref()?;
        Some(
            ff.get(&self.full_name(dir))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// The first rule that includes or excludes decides; an include that asks for a scan is remembered,
    /// and wins over a later exclude (the directory is entered, its contents decided one by one).
    pub fn decide(&self, c: &Candidate<'_>) -> Decision {
        if self.rules.is_empty() {
            return Decision::Include;
        }
        let name = self.full_name(c.index);
        let mut decoded: Option<Vec<Unit>> = None;
        let mut scan_pending = false;
        let mut result = None;
        for rule in &self.rules {
            let v = self.test(rule, c, &name, &mut decoded);
            match v {
                Some(Decision::Scan) => scan_pending = true,
                Some(d) => {
                    result = Some(d);
                    break;
                }
                None => {}
            }
        }
        match result {
            Some(Decision::Include) => Decision::Include,
            _ if scan_pending => Decision::Scan,
            Some(d) => d,
            None => Decision::Include,
        }
    }

    fn test(
        &self,
        rule: &Rule,
        c: &Candidate<'_>,
        name: &[u8],
        decoded: &mut Option<Vec<Unit>>,
    ) -> Verdict {
        let yes = if rule.include {
            Decision::Include
        } else {
            Decision::Exclude
        };
        let is_dir = c.ftype == Some(FileType::Directory);
        match &rule.test {
            Test::Everything => Some(yes),
            Test::Glob(g) => {
                let text = decoded.get_or_insert_with(|| decode(name));
                match g.verdict(text, is_dir, rule.include) {
                    GlobVerdict::Matches => Some(yes),
                    GlobVerdict::Scan => Some(Decision::Scan),
                    GlobVerdict::Silent => None,
                }
            }
            Test::Literal { text, ignore_case } => {
                literal_verdict(text, *ignore_case, name, rule.include)
            }
            Test::Regex(re) => re.is_match(name).then_some(yes),
            Test::IfPresent(file) => {
                // Only real directories (a symlink is not followed), and only a plain entry name.
                let present = is_dir
                    && !file.contains(&b'/')
                    && file != b"."
                    && file != b".."
                    && std::fs::symlink_metadata(c.path.join(std::ffi::OsStr::from_bytes(file)))
                        .is_ok();
                present.then_some(Decision::Exclude)
            }
            Test::DeviceFiles => matches!(
                c.ftype,
                Some(FileType::CharDevice) | Some(FileType::BlockDevice)
            )
            .then_some(Decision::Exclude),
            Test::OtherFilesystems { root_dev } => {
                (c.ftype.is_some() && c.dev != *root_dev).then_some(Decision::Exclude)
            }
            Test::OlderThan(t) => {
                (c.ftype == Some(FileType::Regular) && c.mtime < *t).then_some(Decision::Exclude)
            }
        }
    }

    /// `--files-from`: each line (not trimmed: every character counts) names a path relative to the
    /// source; it and its parents are entered, nothing else.
    fn parse_files_from(
        &self,
        list: &Path,
        null_separator: bool,
    ) -> Result<HashMap<Vec<u8>, BTreeSet<Vec<u8>>>, SelectionError> {
        let mut map: HashMap<Vec<u8>, BTreeSet<Vec<u8>>> = HashMap::new();
        let base_is_root = self.base == b"/";
        for line in read_list("--files-from", list, null_separator)? {
            if line.is_empty() {
                continue;
            }
            if line.starts_with('/') {
                return Err(SelectionError::FilesFromAbsolute {
                    path: list.to_path_buf(),
                    line,
                });
            }
            let mut rest = line.as_bytes();
            while !rest.is_empty() {
                let (dir, name) = split(rest);
                let mut key = join(&self.base, dir);
                if !base_is_root || !dir.is_empty() {
                    while key.ends_with(b"/") {
                        key.pop();
                    }
                }
                map.entry(key).or_default().insert(name.to_vec());
                rest = dir;
            }
        }
        if map.is_empty() {
            return Err(SelectionError::FilesFromEmpty {
                path: list.to_path_buf(),
            });
        }
        Ok(map)
    }
}

fn literal_verdict(lit: &[Unit], ignore_case: bool, name: &[u8], include: bool) -> Verdict {
    let mut text = decode(name);
    if ignore_case {
        text = casefold(&text);
    }
    let slash = b'/' as Unit;
    let yes = if include {
        Decision::Include
    } else {
        Decision::Exclude
    };
    if text == lit || (text.starts_with(lit) && text.get(lit.len()) == Some(&slash)) {
        Some(yes)
    } else if include && lit.starts_with(&text) && lit.get(text.len()) == Some(&slash) {
        Some(Decision::Scan)
    } else {
        None
    }
}

fn regex_rule(pattern: &[u8], include: bool, ignore_case: bool) -> Result<Rule, SelectionError> {
    let text = std::str::from_utf8(pattern).map_err(|_| SelectionError::InvalidRegex {
        pattern: show(pattern),
        reason: "it is not UTF-8".into(),
    })?;
    let re = regex::bytes::RegexBuilder::new(text)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| SelectionError::InvalidRegex {
            pattern: text.into(),
            reason: e.to_string().lines().last().unwrap_or("").trim().into(),
        })?;
    Ok(Rule {
        test: Test::Regex(re),
        include,
        name: format!(
            "regular expression {}: {text}",
            if include { "include" } else { "exclude" }
        ),
    })
}

/// One filelist line: blank lines and `#` comments skipped, white space trimmed, a `+ ` or `- ` prefix
/// overriding the list's default, then one pair of surrounding quotes removed.
fn filelist_line(line: &str, include_default: bool) -> Option<(String, bool)> {
    let line = strip(line);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (mut line, include) = if let Some(rest) = line.strip_prefix("+ ") {
        (rest, true)
    } else if let Some(rest) = line.strip_prefix("- ") {
        (rest, false)
    } else {
        (line, include_default)
    };
    if (line.starts_with('\'') && line.ends_with('\''))
        || (line.starts_with('"') && line.ends_with('"'))
    {
        // A lone quote is both first and last: nothing is left, as in duplicity.
        line = line.get(1..line.len() - 1).unwrap_or("");
    }
    if line.is_empty() {
        return None;
    }
    Some((line.to_owned(), include))
}

/// The `--include`/`--exclude` rules of a filelist given as text (the charm's `exclude_patterns`
/// option), read line by line as duplicity reads a filelist file: blank lines and `#` comments skipped,
/// a `+ ` or `- ` prefix overriding `include_default`, one pair of quotes removed. In list order.
pub fn filelist_rules(text: &str, include_default: bool) -> Vec<SelectionRule> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split('\n')
        .filter_map(|line| filelist_line(line, include_default))
        .map(|(pattern, include)| {
            let pattern = OsString::from(pattern);
            if include {
                SelectionRule::Include(pattern)
            } else {
                SelectionRule::Exclude(pattern)
            }
        })
        .collect()
}

/// Builds the rules' `OsString` from bytes (for tests and callers holding raw bytes).
pub fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

#[cfg(test)]
mod tests;
