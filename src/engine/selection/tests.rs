//! duplicity's tricky selection cases, each run as a real walk over a small tree.

use super::*;
use crate::engine::meta::TreeWalk;
use std::fs;

use SelectionRule::*;

fn o(s: &str) -> OsString {
    OsString::from(s)
}

/// A tree: names ending in '/' are directories, others empty files.
fn tree(entries: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in entries {
        let p = d.path().join(e.trim_end_matches('/'));
        if e.ends_with('/') {
            fs::create_dir_all(&p).unwrap();
        } else {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, b"x").unwrap();
        }
    }
    d
}

fn walk_sel(root: &Path, sel: Selection) -> Vec<String> {
    TreeWalk::with_selection(root, sel)
        .map(|e| String::from_utf8_lossy(e.index.display_bytes()).into_owned())
        .collect()
}

/// Rules whose patterns say `R` for the root's absolute name.
fn walk(root: &Path, rules: &[SelectionRule]) -> Vec<String> {
    let sel = Selection::new(root, &with_root(root, rules), false).unwrap();
    walk_sel(root, sel)
}

fn with_root(root: &Path, rules: &[SelectionRule]) -> Vec<SelectionRule> {
    let r = root.to_str().unwrap();
    let fix = |s: &OsString| o(&s.to_str().unwrap().replace('R', r));
    rules
        .iter()
        .map(|rule| match rule {
            Exclude(s) => Exclude(fix(s)),
            Include(s) => Include(fix(s)),
            other => other.clone(),
        })
        .collect()
}

fn err(root: &Path, rules: &[SelectionRule]) -> SelectionError {
    Selection::new(root, &with_root(root, rules), false).unwrap_err()
}

const SELECT: &[&str] = &[
    "1/1/1", "1/1/2", "1/1/3", "1/2/1", "1/2/2", "1/3/1", "1/3/3", "2/1", "3/3/3",
];

#[test]
fn first_match_wins_and_includes_bring_their_parents() {
    let d = tree(SELECT);
    assert_eq!(
        walk(d.path(), &[Include(o("R/1/1")), Exclude(o("**"))]),
        [".", "1", "1/1", "1/1/1", "1/1/2", "1/1/3"]
    );
    assert_eq!(
        walk(
            d.path(),
            &[
                Exclude(o("R/1/1/1")),
                Include(o("R/1/1")),
                Exclude(o("R/1")),
                Exclude(o("**")),
            ]
        ),
        [".", "1", "1/1", "1/1/2", "1/1/3"]
    );
    // The exclude first: the include below it never gets a say.
    assert_eq!(
        walk(
            d.path(),
            &[Exclude(o("R/1")), Include(o("R/1/1")), Exclude(o("**"))]
        ),
        ["."]
    );
}

#[test]
fn an_include_under_an_exclude_still_enters_the_excluded_directory() {
    let d = tree(SELECT);
    // 1 is excluded, but the include of 1/2/1 asks for a scan first: 1 and 1/2 are stored for it.
    assert_eq!(
        walk(d.path(), &[Include(o("R/1/2/1")), Exclude(o("R/1"))]),
        [".", "1", "1/2", "1/2/1", "2", "2/1", "3", "3/3", "3/3/3"]
    );
}

#[test]
fn a_scanned_directory_is_stored_only_when_something_inside_is() {
    let d = tree(&["a/x.py", "a/y.txt", "b/c/y.txt", "top.py"]);
    assert_eq!(
        walk(d.path(), &[Include(o("R/**.py")), Exclude(o("**"))]),
        [".", "a", "a/x.py", "top.py"]
    );
}

#[test]
fn star_does_not_cross_a_slash_but_double_star_does() {
    let d = tree(&["a/x.py", "a/b/y.py", "z.py"]);
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/*/*.py"))]),
        [".", "a", "a/b", "a/b/y.py", "z.py"]
    );
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/**/*.py"))]),
        [".", "a", "a/b", "z.py"]
    );
    assert_eq!(walk(d.path(), &[Exclude(o("**.py"))]), [".", "a", "a/b"]);
}

#[test]
fn glob_characters_in_names_and_sets() {
    let d = tree(&["a*b", "axb", "q?", "qq", "[x]", "x", "e[z"]);
    // '*' in the pattern matches the literal '*' and anything else.
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/a*b"))]),
        [".", "[x]", "e[z", "q?", "qq", "x"]
    );
    // "[x]" is a set matching "x" only, not the name "[x]".
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/[x]"))]),
        [".", "[x]", "a*b", "axb", "e[z", "q?", "qq"]
    );
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/[[]x]"))]),
        [".", "a*b", "axb", "e[z", "q?", "qq", "x"]
    );
    // An unclosed '[' is literal.
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/e[z"))]),
        [".", "[x]", "a*b", "axb", "q?", "qq", "x"]
    );
    // Literal mode: glob characters are plain.
    assert_eq!(
        walk(d.path(), &[FilterLiteral, Exclude(o("R/q?"))]),
        [".", "[x]", "a*b", "axb", "e[z", "qq", "x"]
    );
}

#[test]
fn trailing_slash_matches_directories_only() {
    let d = tree(&["d/f", "f"]);
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/f/"))]),
        [".", "d", "d/f", "f"]
    );
    assert_eq!(walk(d.path(), &[Exclude(o("R/d/"))]), [".", "f"]);
    assert_eq!(walk(d.path(), &[Exclude(o("R/*/"))]), [".", "f"]);
}

#[test]
fn case_rules() {
    let d = tree(&["Foo/Bar", "foo2"]);
    assert_eq!(
        walk(d.path(), &[Exclude(o("R/foo"))]),
        [".", "Foo", "Foo/Bar", "foo2"]
    );
    let r = d.path().to_str().unwrap().to_uppercase();
    // The prefix folds the whole pattern, the source's part too.
    let rules = [Exclude(o(&format!("IGNORECASE:{r}/FOO")))];
    let sel = Selection::new(d.path(), &rules, false).unwrap();
    assert_eq!(walk_sel(d.path(), sel), [".", "foo2"]);
    assert_eq!(
        walk(d.path(), &[FilterIgnorecase, Exclude(o("R/fOO/bar"))]),
        [".", "Foo", "foo2"]
    );
    // --filter-strictcase switches it back for what follows.
    assert_eq!(
        walk(
            d.path(),
            &[
                FilterIgnorecase,
                Exclude(o("R/FOO2")),
                FilterStrictcase,
                Exclude(o("R/foo"))
            ]
        ),
        [".", "Foo", "Foo/Bar"]
    );
}

#[test]
fn patterns_must_be_able_to_match_under_the_source() {
    let d = tree(&["a"]);
    for bad in ["a", "*/a", "/elsewhere/a", "R?x"] {
        assert!(
            matches!(
                err(d.path(), &[Exclude(o(bad))]),
                SelectionError::OutsideSource { .. }
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        err(d.path(), &[FilterLiteral, Exclude(o("a"))]),
        SelectionError::OutsideSource { .. }
    ));
    // A parent of the source, or '**', is fine.
    walk(d.path(), &[Exclude(o("/"))]);
    walk(d.path(), &[Exclude(o("**/a"))]);
    assert!(matches!(
        err(d.path(), &[Exclude(o("R//a"))]),
        SelectionError::InvalidPattern { .. }
    ));
    assert!(matches!(
        err(d.path(), &[Exclude(o("R/[z-a]"))]),
        SelectionError::InvalidPattern { .. }
    ));
}

#[test]
fn a_relative_source_matches_relative_patterns() {
    let d = tree(&["src/a", "src/b"]);
    // Selection::new only reads the typed name; the walk is given the real path.
    let sel = Selection::new(Path::new("./src/"), &[Exclude(o("src/a"))], false).unwrap();
    assert_eq!(walk_sel(&d.path().join("src"), sel), [".", "b"]);
    let e = Selection::new(Path::new("src"), &[Exclude(o("/abs/src/a"))], false).unwrap_err();
    assert!(matches!(e, SelectionError::OutsideSource { .. }));
}

#[test]
fn duplicity_refuses_options_that_do_nothing() {
    let d = tree(&["a"]);
    assert!(matches!(
        err(d.path(), &[Include(o("R/a"))]),
        SelectionError::RedundantInclude { .. }
    ));
    assert!(matches!(
        err(d.path(), &[Exclude(o("R/a")), FilterLiteral]),
        SelectionError::TrailingFilter {
            option: "--filter-literal"
        }
    ));
    assert!(matches!(
        err(d.path(), &[FilterGlobbing, Exclude(o("R/a"))]),
        SelectionError::RedundantFilters { .. }
    ));
    assert!(matches!(
        err(d.path(), &[Exclude(o(""))]),
        SelectionError::EmptyArgument {
            option: "--exclude"
        }
    ));
    // --exclude-if-present goes first, so an include typed after it is still the last rule.
    assert!(matches!(
        err(
            d.path(),
            &[Include(o("R/a")), ExcludeIfPresent(o(".nobackup"))]
        ),
        SelectionError::RedundantInclude { .. }
    ));
}

#[test]
fn filelists_with_signs_comments_quotes_and_blanks() {
    let d = tree(&["keep/a", "keep/b", "drop/c", "other"]);
    let r = d.path().to_str().unwrap();
    let list = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    fs::write(
        &list,
        format!("# a comment\n\n  - {r}/keep/b  \r\n+ \"{r}/keep\"\n'{r}/other'\n   \n**\n"),
    )
    .unwrap();
    let sel = Selection::new(d.path(), &[ExcludeFilelist(list.to_path_buf())], false).unwrap();
    assert_eq!(walk_sel(d.path(), sel), [".", "keep", "keep/a"]);
    fs::write(&list, format!("{r}/keep/a\0- **\0")).unwrap();
    let sel = Selection::new(d.path(), &[IncludeFilelist(list.to_path_buf())], true).unwrap();
    assert_eq!(walk_sel(d.path(), sel), [".", "keep", "keep/a"]);
    assert!(matches!(
        Selection::new(
            d.path(),
            &[IncludeFilelist(d.path().join("missing"))],
            false
        ),
        Err(SelectionError::Filelist { .. })
    ));
}

#[test]
fn files_from_walks_only_the_listed_paths_and_their_parents() {
    let d = tree(&["a/x", "a/y", "b/c/d", "b/c/e", "f", "g"]);
    let list = d.path().join("list");
    fs::write(&list, "a/x\nb/c\ng\nmissing/z\n").unwrap();
    let sel = Selection::new(d.path(), &[FilesFrom(list.clone())], false).unwrap();
    // A listed directory is stored without its contents.
    assert_eq!(walk_sel(d.path(), sel), [".", "a", "a/x", "b", "b/c", "g"]);
    // With rules too.
    let rules = with_root(d.path(), &[FilesFrom(list.clone()), Exclude(o("R/a"))]);
    let sel = Selection::new(d.path(), &rules, false).unwrap();
    assert_eq!(walk_sel(d.path(), sel), [".", "b", "b/c", "g"]);
    fs::write(&list, "/abs\n").unwrap();
    assert!(matches!(
        Selection::new(d.path(), &[FilesFrom(list.clone())], false),
        Err(SelectionError::FilesFromAbsolute { .. })
    ));
    fs::write(&list, "\n\n").unwrap();
    assert!(matches!(
        Selection::new(d.path(), &[FilesFrom(list.clone())], false),
        Err(SelectionError::FilesFromEmpty { .. })
    ));
}

#[test]
fn exclude_if_present_older_than_and_regexps() {
    let d = tree(&["a/.nobackup", "a/f", "b/f.tmp", "b/g", "c/old", "c/new"]);
    assert_eq!(
        walk(d.path(), &[ExcludeIfPresent(o(".nobackup"))]),
        [".", "b", "b/f.tmp", "b/g", "c", "c/new", "c/old"]
    );
    let t = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    fs::File::options()
        .write(true)
        .open(d.path().join("c/old"))
        .unwrap()
        .set_modified(t(1000))
        .unwrap();
    fs::File::options()
        .write(true)
        .open(d.path().join("c/new"))
        .unwrap()
        .set_modified(t(3000))
        .unwrap();
    let out = walk(d.path(), &[ExcludeOlderThan(2000)]);
    assert!(out.contains(&"c/new".to_string()) && !out.contains(&"c/old".to_string()));
    // Directories are never "older".
    fs::File::open(d.path().join("c"))
        .unwrap()
        .set_modified(t(1000))
        .unwrap();
    assert!(walk(d.path(), &[ExcludeOlderThan(2000)]).contains(&"c".to_string()));
    assert_eq!(
        walk(
            d.path(),
            &[ExcludeRegexp(o(r"\.tmp$")), ExcludeRegexp(o("/[ac]$"))]
        ),
        [".", "b", "b/g"]
    );
    // Regular expressions never ask for a scan: b is excluded before b/g is looked at.
    assert_eq!(
        walk(
            d.path(),
            &[
                FilterIgnorecase,
                IncludeRegexp(o("/B/G$")),
                Exclude(o("**"))
            ]
        ),
        ["."]
    );
    assert_eq!(
        walk(
            d.path(),
            &[
                FilterIgnorecase,
                IncludeRegexp(o("/B(/G)?$")),
                FilterRegexp,
                Exclude(o("."))
            ]
        ),
        [".", "b", "b/g"]
    );
    assert!(matches!(
        err(d.path(), &[ExcludeRegexp(o("(?=x)"))]),
        SelectionError::InvalidRegex { .. }
    ));
}

#[test]
fn canonical_names_and_os_path_helpers() {
    assert_eq!(canonical(b"./src/"), b"src");
    assert_eq!(canonical(b"/a//b/./"), b"/a/b");
    assert_eq!(canonical(b"."), b".");
    assert_eq!(canonical(b"/"), b"/");
    assert_eq!(split(b"a/b"), (&b"a"[..], &b"b"[..]));
    assert_eq!(split(b"a//b"), (&b"a"[..], &b"b"[..]));
    assert_eq!(split(b"b"), (&b""[..], &b"b"[..]));
    assert_eq!(join(b"/", b"a"), b"/a");
    assert_eq!(join(b"src", b"a"), b"src/a");
}
