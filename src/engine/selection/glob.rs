//! duplicity's shell patterns, matched the way duplicity 3.2.1 matches them: a pattern is turned into
//! an anchored expression that matches the path or any path below it (`pattern($|/)`), directories that
//! could lead to a match of an include are "scanned", and a trailing `/` restricts an exact match to
//! directories. Matching works on text decoded as Python decodes file names (UTF-8, each invalid byte as
//! its own "surrogate escape" unit), so `?` stands for one character, not one byte.

/// One unit of decoded text: a Unicode scalar value, or `0xDC00 + byte` for a byte that is not UTF-8
/// (Python's surrogateescape, which no scalar value can collide with).
pub type Unit = u32;

const SLASH: Unit = b'/' as Unit;
const NEWLINE: Unit = b'\n' as Unit;

/// Decodes bytes as Python's `os.fsdecode` does on a UTF-8 system.
pub fn decode(bytes: &[u8]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(|c| c as Unit));
        out.extend(chunk.invalid().iter().map(|b| 0xDC00 + Unit::from(*b)));
    }
    out
}

fn as_char(u: Unit) -> Option<char> {
    char::from_u32(u)
}

/// Simple (one-to-one) lower case, as a regular expression's case-insensitive match uses.
fn lower(u: Unit) -> Unit {
    match as_char(u) {
        Some(c) => {
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(one), None) => one as Unit,
                _ => u,
            }
        }
        None => u,
    }
}

fn upper(u: Unit) -> Unit {
    match as_char(u) {
        Some(c) => {
            let mut l = c.to_uppercase();
            match (l.next(), l.next()) {
                (Some(one), None) => one as Unit,
                _ => u,
            }
        }
        None => u,
    }
}

/// Python's `str.casefold` closely enough for file names: full lower case, with the few letters whose
/// case folding differs from their lower case.
pub fn casefold(text: &[Unit]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(text.len());
    for &u in text {
        match as_char(u) {
            Some('ß') | Some('ẞ') => out.extend_from_slice(&['s' as Unit, 's' as Unit]),
            Some('ς') => out.push('σ' as Unit),
            Some('ſ') => out.push('s' as Unit),
            Some(c) => out.extend(c.to_lowercase().map(|l| l as Unit)),
            None => out.push(u),
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(Unit),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**`: any run of characters.
    AnyRun,
    /// `[...]`: a regular expression character set, as duplicity hands it to Python (so it can even
    /// match `/`).
    Set {
        negated: bool,
        ranges: Vec<(Unit, Unit)>,
    },
}

/// Why a pattern is not a usable shell pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// `a//b`: an empty component in the middle.
    ConsecutiveSlashes,
    /// `[z-a]`.
    BadRange(String),
    Empty,
}

/// Translates a shell pattern into tokens, as duplicity's `glob_to_regex` does: `**`, `*`, `?`, and
/// `[...]` with `!` or `^` for negation and a leading `]` taken literally; an unclosed `[` is literal.
fn tokens(pat: &[Unit]) -> Result<Vec<Token>, GlobError> {
    let is = |u: Unit, c: char| u == c as Unit;
    let mut out = Vec::new();
    let mut i = 0;
    let n = pat.len();
    while i < n {
        let c = pat[i];
        i += 1;
        if is(c, '*') && i < n && is(pat[i], '*') {
            out.push(Token::AnyRun);
            i += 1;
        } else if is(c, '*') {
            out.push(Token::Star);
        } else if is(c, '?') {
            out.push(Token::One);
        } else if is(c, '[') {
            let mut j = i;
            if j < n && (is(pat[j], '!') || is(pat[j], '^')) {
                j += 1;
            }
            if j < n && is(pat[j], ']') {
                j += 1;
            }
            while j < n && !is(pat[j], ']') {
                j += 1;
            }
            if j >= n {
                out.push(Token::Literal(c));
            } else {
                let inner = &pat[i..j];
                i = j + 1;
                out.push(parse_set(inner)?);
            }
        } else {
            out.push(Token::Literal(c));
        }
    }
    Ok(out)
}

/// Parses the inside of `[...]` as Python's regular expression parser reads a character set whose
/// backslashes are all literal (duplicity doubles them): a leading `]` is literal, `a-z` is a range,
/// a `-` first or last is literal.
fn parse_set(inner: &[Unit]) -> Result<Token, GlobError> {
    let (negated, rest) = match inner.first() {
        Some(&u) if u == '!' as Unit || u == '^' as Unit => (true, &inner[1..]),
        _ => (false, inner),
    };
    if rest.is_empty() {
        // Cannot happen after the bracket scan above, but an empty set would match nothing.
        return Err(GlobError::BadRange(String::new()));
    }
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < rest.len() {
        let this = rest[k];
        k += 1;
        if k < rest.len() && rest[k] == '-' as Unit {
            if k + 1 >= rest.len() {
                ranges.push((this, this));
                ranges.push(('-' as Unit, '-' as Unit));
                k += 1;
            } else {
                let that = rest[k + 1];
                k += 2;
                if that < this {
                    let show = |u: Unit| as_char(u).unwrap_or('\u{fffd}');
                    return Err(GlobError::BadRange(format!(
                        "{}-{}",
                        show(this),
                        show(that)
                    )));
                }
                ranges.push((this, that));
            }
        } else {
            ranges.push((this, this));
        }
    }
    Ok(Token::Set { negated, ranges })
}

fn set_contains(ranges: &[(Unit, Unit)], u: Unit) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= u && u <= hi)
}

fn token_takes(tok: &Token, u: Unit, ignore_case: bool) -> bool {
    match tok {
        Token::Literal(c) => {
            u == *c || (ignore_case && (lower(u) == lower(*c) || upper(u) == upper(*c)))
        }
        Token::One => u != SLASH,
        Token::Set { negated, ranges } => {
            let hit = set_contains(ranges, u)
                || (ignore_case
                    && (set_contains(ranges, lower(u)) || set_contains(ranges, upper(u))));
            hit != *negated
        }
        Token::Star | Token::AnyRun => unreachable!("runs are handled by the matcher"),
    }
}

/// Every `e` such that the tokens match `text[..e]` exactly.
fn match_ends(toks: &[Token], text: &[Unit], ignore_case: bool) -> Vec<bool> {
    let n = text.len();
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    for tok in toks {
        let mut next = vec![false; n + 1];
        match tok {
            Token::Star => {
                for p in 0..=n {
                    if !cur[p] {
                        continue;
                    }
                    next[p] = true;
                    let mut q = p;
                    while q < n && text[q] != SLASH {
                        q += 1;
                        next[q] = true;
                    }
                }
            }
            Token::AnyRun => {
                if let Some(first) = cur.iter().position(|&b| b) {
                    next[first..].fill(true);
                }
            }
            _ => {
                for p in 0..n {
                    if cur[p] && token_takes(tok, text[p], ignore_case) {
                        next[p + 1] = true;
                    }
                }
            }
        }
        if !next.iter().any(|&b| b) {
            return next;
        }
        cur = next;
    }
    cur
}

/// Python's `$` without MULTILINE: the end, or just before a final newline.
fn at_end(text: &[Unit], e: usize) -> bool {
    e == text.len() || (e + 1 == text.len() && text[e] == NEWLINE)
}

/// What one shell pattern says about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobVerdict {
    /// The pattern matches the path or a directory above it.
    Matches,
    /// An include pattern could match something below this path.
    Scan,
    /// Nothing to say.
    Silent,
}

/// A compiled shell pattern.
#[derive(Clone, Debug)]
pub struct Glob {
    full: Vec<Token>,
    /// The pattern ended in `/`: an exact match must be a directory.
    dir_only: bool,
    /// One alternative per leading part of the pattern (up to its first `**`), each matched whole.
    scan: Vec<Vec<Token>>,
    ignore_case: bool,
}

impl Glob {
    pub fn new(pattern: &[Unit], ignore_case: bool) -> Result<Glob, GlobError> {
        let slash = [SLASH];
        let (pat, dir_only): (Vec<Unit>, bool) = match pattern {
            [] => return Err(GlobError::Empty),
            // "/" alone means everything.
            p if p == slash => (decode(b"/**"), false),
            [head @ .., last] if *last == SLASH => (head.to_vec(), true),
            p => (p.to_vec(), false),
        };
        let full = tokens(&pat)?;
        let star_star = pat.windows(2).position(|w| w == [b'*' as Unit; 2]);
        let scan_src = match star_star {
            Some(at) => &pat[..at + 2],
            None => &pat[..],
        };
        let parts: Vec<&[Unit]> = scan_src.split(|u| *u == SLASH).collect();
        if parts.len() > 2 && parts[1..parts.len() - 1].iter().any(|p| p.is_empty()) {
            return Err(GlobError::ConsecutiveSlashes);
        }
        let mut scan = Vec::with_capacity(parts.len());
        for i in 0..parts.len() {
            let prefix = parts[..=i].join(&SLASH);
            let prefix = if i == 0 && prefix.is_empty() {
                slash.to_vec()
            } else {
                prefix
            };
            scan.push(tokens(&prefix)?);
        }
        Ok(Glob {
            full,
            dir_only,
            scan,
            ignore_case,
        })
    }

    /// What this pattern, as an include (`include`) or an exclude, says about `name` (the path's full
    /// name as duplicity forms it).
    pub fn verdict(&self, name: &[Unit], is_dir: bool, include: bool) -> GlobVerdict {
        let ends = match_ends(&self.full, name, self.ignore_case);
        let at_or_above = ends
            .iter()
            .enumerate()
            .any(|(e, &ok)| ok && (at_end(name, e) || name.get(e) == Some(&SLASH)));
        if at_or_above {
            if !self.dir_only {
                return GlobVerdict::Matches;
            }
            let exact = ends
                .iter()
                .enumerate()
                .any(|(e, &ok)| ok && at_end(name, e));
            return if !exact || is_dir {
                GlobVerdict::Matches
            } else {
                GlobVerdict::Silent
            };
        }
        if include
            && self.scan.iter().any(|toks| {
                let ends = match_ends(toks, name, self.ignore_case);
                ends.iter()
                    .enumerate()
                    .any(|(e, &ok)| ok && at_end(name, e))
            })
        {
            return GlobVerdict::Scan;
        }
        GlobVerdict::Silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(&decode(p.as_bytes()), false).unwrap()
    }
    fn v(p: &str, name: &str, dir: bool, include: bool) -> GlobVerdict {
        g(p).verdict(&decode(name.as_bytes()), dir, include)
    }
    use GlobVerdict::*;

    #[test]
    fn star_stays_in_one_component_and_double_star_crosses() {
        assert_eq!(v("/r/*.py", "/r/a.py", false, false), Matches);
        assert_eq!(v("/r/*.py", "/r/d/a.py", false, false), Silent);
        assert_eq!(v("/r/**.py", "/r/d/a.py", false, false), Matches);
        // Below a match counts as a match: excluding a directory excludes its contents.
        assert_eq!(v("/r/*.py", "/r/a.py/inner", false, false), Matches);
        assert_eq!(v("/r/?", "/r/é", false, false), Matches);
        assert_eq!(v("/r/??", "/r/é", false, false), Silent);
    }

    #[test]
    fn sets_ranges_negation_and_literal_brackets() {
        assert_eq!(v("/r/[a-c]x", "/r/bx", false, false), Matches);
        assert_eq!(v("/r/[!a-c]x", "/r/bx", false, false), Silent);
        assert_eq!(v("/r/[^a-c]x", "/r/dx", false, false), Matches);
        assert_eq!(v("/r/[]]x", "/r/]x", false, false), Matches);
        assert_eq!(v("/r/[a-]", "/r/-", false, false), Matches);
        // An unclosed bracket is literal.
        assert_eq!(v("/r/a[b", "/r/a[b", false, false), Matches);
        // A set is a regular expression set: it may match '/'.
        assert_eq!(v("/r[/]x", "/r/x", false, false), Matches);
        assert!(matches!(
            Glob::new(&decode(b"/r/[z-a]"), false),
            Err(GlobError::BadRange(_))
        ));
    }

    #[test]
    fn includes_scan_their_parents_up_to_the_first_double_star() {
        assert_eq!(v("/r/a/b/c", "/r/a", true, true), Scan);
        assert_eq!(v("/r/a/b/c", "/r/a", true, false), Silent);
        assert_eq!(v("/r/a/b/c", "/", true, true), Scan);
        assert_eq!(v("/r/a/**/c", "/r/a/x/y/z", true, true), Scan);
        assert_eq!(v("/r/*/c", "/r/x", true, true), Scan);
        assert_eq!(v("/r/*/c", "/r/x/y", true, true), Silent);
    }

    #[test]
    fn trailing_slash_needs_a_directory_for_an_exact_match() {
        assert_eq!(v("/r/a/", "/r/a", true, true), Matches);
        assert_eq!(v("/r/a/", "/r/a", false, true), Silent);
        assert_eq!(v("/r/a/", "/r/a/f", false, true), Matches);
        assert_eq!(v("/", "/anything/at/all", false, false), Matches);
    }

    #[test]
    fn consecutive_slashes_are_an_error_but_not_after_double_star() {
        assert_eq!(
            Glob::new(&decode(b"/r//a"), false).unwrap_err(),
            GlobError::ConsecutiveSlashes
        );
        assert!(Glob::new(&decode(b"/r/**//a"), false).is_ok());
    }

    #[test]
    fn ignore_case_and_undecodable_bytes() {
        let gl = Glob::new(&decode(b"/r/abc*"), true).unwrap();
        assert_eq!(gl.verdict(&decode(b"/R/ABCd"), false, false), Matches);
        let gl = Glob::new(&decode(b"/r/[a-c]"), true).unwrap();
        assert_eq!(gl.verdict(&decode(b"/r/B"), false, false), Matches);
        // A byte that is not UTF-8 is one character for '?', and only matches itself.
        assert_eq!(
            g("/r/?").verdict(&decode(b"/r/\xff"), false, false),
            Matches
        );
        assert_eq!(casefold(&decode("Straße".as_bytes())), decode(b"strasse"));
    }

    #[test]
    fn a_final_newline_ends_the_name_as_in_python() {
        assert_eq!(v("/r/a", "/r/a\n", false, false), Matches);
    }
}
