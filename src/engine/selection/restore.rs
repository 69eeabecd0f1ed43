//! File selection on restore, as duplicity 3.2.1 applies it: to the backup's state as of the restore
//! time, entry by entry in index order. A selected entry brings the directories above it along; a
//! directory that is only "scanned" is restored when something inside it is; an excluded directory
//! takes everything below it out, whatever the rules say about its contents. The root comes along
//! with the first selected entry.

use super::{Candidate, Decision, Selection};
use crate::engine::index::Index;
use crate::engine::meta::FileType;

/// Runs a restore selection over the entries of a backup state, offered in index order.
pub struct RestoreFilter<'a> {
    selection: &'a Selection,
    /// Scanned directories above the current entry, restored if something below them is selected.
    deferred: Vec<Index>,
    /// Excluded directories above the current entry.
    excluded: Vec<Index>,
    chosen: Vec<Index>,
}

impl<'a> RestoreFilter<'a> {
    /// `selection` must be a restore's ([`Selection::for_restore`]): it names paths from the archive root.
    pub fn new(selection: &'a Selection) -> RestoreFilter<'a> {
        debug_assert!(selection.is_for_restore());
        RestoreFilter {
            selection,
            deferred: Vec::new(),
            excluded: Vec::new(),
            chosen: Vec::new(),
        }
    }

    /// The next entry of the state (index order, each index once), with its backed-up type and mtime.
    pub fn offer(&mut self, index: &Index, ftype: FileType, mtime: i64) {
        while self.deferred.last().is_some_and(|d| !index.starts_with(d)) {
            self.deferred.pop();
        }
        while self.excluded.last().is_some_and(|d| !index.starts_with(d)) {
            self.excluded.pop();
        }
        if !self.excluded.is_empty() {
            return;
        }
        if index.is_root() {
            self.deferred.push(index.clone());
            return;
        }
        let is_dir = ftype == FileType::Directory;
        let decision = self.selection.decide(&Candidate {
            index,
            path: std::path::Path::new(""),
            ftype: Some(ftype),
            dev: 0,
            mtime,
        });
        match decision {
            Decision::Include => {
                self.chosen.append(&mut self.deferred);
                self.chosen.push(index.clone());
            }
            Decision::Scan if is_dir => self.deferred.push(index.clone()),
            Decision::Exclude if is_dir => self.excluded.push(index.clone()),
            Decision::Scan | Decision::Exclude => {}
        }
    }

    /// The entries to restore, the root first when anything is.
    pub fn finish(self) -> ChosenPaths {
        let mut paths = self.chosen;
        // Already in order when offered in order; sorting keeps lookups right whatever the caller did.
        paths.sort();
        paths.dedup();
        ChosenPaths { paths }
    }
}

/// The paths a selective restore puts back, for lookups by path and by a volume's range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChosenPaths {
    paths: Vec<Index>,
}

impl ChosenPaths {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn contains(&self, index: &Index) -> bool {
        self.paths.binary_search(index).is_ok()
    }

    /// True when a chosen path lies in `start..=end` (a volume's range in its manifest).
    pub fn any_between(&self, start: &Index, end: &Index) -> bool {
        let i = self.paths.partition_point(|p| p < start);
        self.paths.get(i).is_some_and(|p| p <= end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Index> {
        self.paths.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::selection::{os, SelectionRule};

    fn run(rules: &[SelectionRule], entries: &[(&str, FileType)]) -> Vec<String> {
        let sel = Selection::for_restore(rules, false).unwrap();
        let mut f = RestoreFilter::new(&sel);
        for (p, t) in entries {
            let idx = if p.is_empty() {
                Index::root()
            } else {
                Index::parse(p.as_bytes()).unwrap()
            };
            f.offer(&idx, *t, 0);
        }
        f.finish().iter().map(|i| i.to_string()).collect()
    }

    use FileType::{Directory as D, Regular as R};
    const TREE: &[(&str, FileType)] = &[
        ("", D),
        ("a", D),
        ("a/b", D),
        ("a/b/keep", R),
        ("a/b/skip", R),
        ("a/c", R),
        ("z", R),
    ];

    #[test]
    fn parents_of_selected_entries_come_along() {
        let got = run(
            &[
                SelectionRule::Include(os(b"a/b/keep")),
                SelectionRule::Exclude(os(b"**")),
            ],
            TREE,
        );
        let root = Index::root().to_string();
        assert_eq!(got, vec![root.as_str(), "a", "a/b", "a/b/keep"]);
    }

    #[test]
    fn an_excluded_directory_takes_its_subtree_out() {
        // The include below the exclude never gets asked: duplicity prunes at the directory.
        let got = run(
            &[
                SelectionRule::Exclude(os(b"a")),
                SelectionRule::Include(os(b"a/b/keep")),
                SelectionRule::Exclude(os(b"**")),
            ],
            TREE,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn leading_dot_slash_is_dropped_and_absolute_patterns_refused() {
        let got = run(&[SelectionRule::Exclude(os(b"././a"))], TREE);
        let root = Index::root().to_string();
        assert_eq!(got, vec![root.as_str(), "z"]);
        for bad in [&b"/a"[..], b"./../a", b"a/./b", b"a/..", b"./"] {
            let e = Selection::for_restore(&[SelectionRule::Exclude(os(bad))], false).unwrap_err();
            assert!(
                e.to_string().contains("relative to the archive root"),
                "{e}"
            );
        }
    }

    #[test]
    fn double_star_slash_does_not_match_a_top_level_name() {
        let got = run(
            &[
                SelectionRule::Include(os(b"**/c")),
                SelectionRule::Include(os(b"**/z")),
                SelectionRule::Exclude(os(b"**")),
            ],
            TREE,
        );
        let root = Index::root().to_string();
        assert_eq!(got, vec![root.as_str(), "a", "a/c"]);
    }

    #[test]
    fn options_about_the_source_on_disk_are_refused() {
        for r in [
            SelectionRule::ExcludeIfPresent(os(b"x")),
            SelectionRule::ExcludeOtherFilesystems,
            SelectionRule::FilesFrom("/l".into()),
        ] {
            let opt = r.option();
            let e = Selection::for_restore(&[r], false).unwrap_err();
            assert!(e.to_string().contains(opt), "{e}");
        }
    }

    #[test]
    fn volume_ranges() {
        let sel = Selection::for_restore(
            &[
                SelectionRule::Include(os(b"a/b/keep")),
                SelectionRule::Exclude(os(b"**")),
            ],
            false,
        )
        .unwrap();
        let mut f = RestoreFilter::new(&sel);
        for (p, t) in TREE {
            let idx = if p.is_empty() {
                Index::root()
            } else {
                Index::parse(p.as_bytes()).unwrap()
            };
            f.offer(&idx, *t, 0);
        }
        let chosen = f.finish();
        let i = |s: &str| Index::parse(s.as_bytes()).unwrap();
        assert!(chosen.any_between(&i("a/b/keep"), &i("z")));
        assert!(chosen.any_between(&i("a/b/k"), &i("a/b/l")));
        assert!(!chosen.any_between(&i("a/b/skip"), &i("z")));
        assert!(chosen.contains(&i("a/b")));
        assert!(!chosen.contains(&i("a/c")));
    }
}
