//! The path of an entry inside a backup ("index" in duplicity): raw bytes, components joined by `/`,
//! ordered as duplicity orders them (as tuples of byte-string components).

use std::cmp::Ordering;
use std::fmt;

/// Why a path taken from an archive or the command line cannot be an index.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("path {0:?} is absolute; archive paths must be relative")]
    Absolute(String),
    #[error("path {0:?} has a '..' component, which would escape the target")]
    ParentComponent(String),
    #[error("path {0:?} has an empty component")]
    EmptyComponent(String),
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
}

/// A relative path as raw bytes; the empty path is the root of the backup (duplicity's `()` / `.`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Index(Vec<u8>);

impl Index {
    /// The root of the backup.
    pub fn root() -> Index {
        Index(Vec::new())
    }

    /// Parses a relative path from an archive or manifest: `.`/empty is the root, a trailing `/` and
    /// `./` components are dropped, `..`, absolute paths and NUL bytes are refused.
    pub fn parse(bytes: &[u8]) -> Result<Index, IndexError> {
        let shown = || String::from_utf8_lossy(bytes).into_owned();
        if bytes.contains(&0) {
            return Err(IndexError::Nul(shown()));
        }
        if bytes.first() == Some(&b'/') {
            return Err(IndexError::Absolute(shown()));
        }
        let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
        let mut out = Vec::with_capacity(trimmed.len());
        for comp in trimmed.split(|b| *b == b'/') {
            match comp {
                b"." => continue,
                b".." => return Err(IndexError::ParentComponent(shown())),
                b"" if trimmed.is_empty() => continue,
                b"" => return Err(IndexError::EmptyComponent(shown())),
                _ => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(comp);
                }
            }
        }
        Ok(Index(out))
    }

    /// Builds an index from bytes already known to be valid (e.g. joined from directory entries).
    pub fn from_trusted(bytes: Vec<u8>) -> Index {
        Index(bytes)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw path, empty for the root.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as duplicity prints it: `.` for the root.
    pub fn display_bytes(&self) -> &[u8] {
        if self.0.is_empty() {
            b"."
        } else {
            &self.0
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/').filter(|c| !c.is_empty())
    }

    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// The child `name` of this index (`name` is one component).
    pub fn join(&self, name: &[u8]) -> Index {
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        Index(v)
    }

    /// True when `self` is `prefix` or lies below it, component-wise (`a/b` is under `a`, `ab` is not).
    pub fn starts_with(&self, prefix: &Index) -> bool {
        if prefix.0.is_empty() {
            return true;
        }
        self.0.starts_with(&prefix.0)
            && (self.0.len() == prefix.0.len() || self.0[prefix.0.len()] == b'/')
    }

    /// The part of `self` below `prefix` (which must be a component-wise prefix).
    pub fn strip_prefix(&self, prefix: &Index) -> Option<Index> {
        if !self.starts_with(prefix) {
            return None;
        }
        if prefix.0.is_empty() {
            return Some(self.clone());
        }
        let rest = &self.0[prefix.0.len()..];
        Some(Index(rest.strip_prefix(b"/").unwrap_or(rest).to_vec()))
    }

    /// The path relative to a directory, as an OS path (raw bytes, no re-encoding).
    pub fn to_path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }
}

impl Ord for Index {
    /// Component-tuple order: `a/` < `a/b` < `a-b` < `a.txt`. Mapping `/` below every other byte makes a
    /// plain byte comparison agree with comparing the component tuples.
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |b: &u8| if *b == b'/' { 0u8 } else { *b };
        self.0.iter().map(key).cmp(other.0.iter().map(key))
    }
}

impl PartialOrd for Index {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Index({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.display_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn orders_as_component_tuples() {
        let mut v = vec![
            ix("a.txt"),
            ix("a-b"),
            ix("a/b"),
            ix("a"),
            ix("_u"),
            ix("Z"),
            ix("B/x"),
            ix("B"),
            ix(""),
        ];
        v.sort();
        let names: Vec<String> = v.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            names,
            [".", "B", "B/x", "Z", "_u", "a", "a/b", "a-b", "a.txt"]
        );
    }

    #[test]
    fn parse_accepts_duplicity_forms_and_refuses_escapes() {
        assert_eq!(ix("./"), Index::root());
        assert_eq!(ix("."), Index::root());
        assert_eq!(ix("sub/"), ix("sub"));
        assert_eq!(ix("./a/./b"), ix("a/b"));
        assert!(matches!(
            Index::parse(b"../x"),
            Err(IndexError::ParentComponent(_))
        ));
        assert!(matches!(
            Index::parse(b"a/../../x"),
            Err(IndexError::ParentComponent(_))
        ));
        assert!(matches!(
            Index::parse(b"/etc/passwd"),
            Err(IndexError::Absolute(_))
        ));
        assert!(matches!(
            Index::parse(b"a//b"),
            Err(IndexError::EmptyComponent(_))
        ));
        assert!(matches!(Index::parse(b"a\0b"), Err(IndexError::Nul(_))));
    }

    #[test]
    fn prefix_is_component_wise() {
        assert!(ix("a/b").starts_with(&ix("a")));
        assert!(!ix("ab").starts_with(&ix("a")));
        assert!(ix("a").starts_with(&Index::root()));
        assert_eq!(ix("a/b/c").strip_prefix(&ix("a")), Some(ix("b/c")));
        assert_eq!(ix("a").strip_prefix(&ix("a")), Some(Index::root()));
    }
}
