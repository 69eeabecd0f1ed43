//! File selection on restore, side by side with stock duplicity 3.2.1 (installed by scripts/duplicity3.sh):
//! one backup of a tree full of traps is restored by both tools with the same selection arguments
//! (patterns relative to the archive root), and the restored trees must be the same entry for entry
//! (names, types, content, symlink targets, and the metadata both put back). A chain (full and
//! incrementals, several volumes, files changing type) is restored the same way at two times. Option
//! lines duplicity refuses must fail with ours with the same exit code, a message naming the problem,
//! and nothing restored.

use crate::support::*;
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

fn prog(tool: Tool) -> String {
    match tool {
        Tool::Ours => ours_bin().to_string(),
        Tool::Duplicity => duplicity3().to_string(),
    }
}

/// Runs one tool (`--no-encryption`, its own archive dir `cache-<cache>`) with `args`.
fn run(ws: &Ws, tool: Tool, cache: &str, args: &[OsString]) -> Run {
    let p = prog(tool);
    let mut argv: Vec<OsString> = vec![args[0].clone()];
    argv.push("--no-encryption".into());
    argv.push("--archive-dir".into());
    argv.push(ws.p(&format!("cache-{cache}")).into());
    argv.extend(args[1..].iter().cloned());
    let mut cmd = Command::new(&p);
    cmd.args(&argv).current_dir(ws.root());
    ws.env(&mut cmd);
    cmd.env_remove("PASSPHRASE");
    let shown: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    run_cmd(cmd, &format!("{p} {}", shown.join(" ")))
}

/// `restore [-t time] SEL... URL target` with one tool.
fn restore(
    ws: &Ws,
    tool: Tool,
    repo: &str,
    target: &str,
    time: Option<i64>,
    sel: &[String],
) -> Run {
    let mut args: Vec<OsString> = vec!["restore".into()];
    if let Some(t) = time {
        args.push("-t".into());
        args.push(t.to_string().into());
    }
    args.extend(sel.iter().map(OsString::from));
    args.push(ws.url(repo).into());
    args.push(ws.p(target).into());
    // Each restore reads the archive with an archive dir of its own, as on another machine.
    run(ws, tool, target, &args)
}

/// The trap tree, named from the archive root: glob characters in names, nested includes under
/// excludes, trailing slashes, case, a top-level name that `**/name` must not match, old files,
/// special files.
fn build_traps(s: &Path) {
    let files = [
        "a/b/c/keep.txt",
        "a/b/c/drop.tmp",
        "a/b/other.txt",
        "a/x.py",
        "a/sub/deep/y.py",
        "a/sub/deep/z.txt",
        "star*name.txt",
        "starXname.txt",
        "q?.txt",
        "qq.txt",
        "br[x].txt",
        "brx.txt",
        "Cache/UPPER.txt",
        "cache/lower.txt",
        "mixed/CaSe.TXT",
        "mixed/case.txt",
        "top",
        "n/top",
        "n/deeper/top/inside",
        "old/ancient.txt",
        "old/recent.txt",
        "sp ace/file name.txt",
        "uni/café.txt",
        "uni/ab.txt",
        "trail/dir/f",
        "trail/file",
        "links/real/f",
        "dotted/.hidden",
        "dotted/not-hidden",
    ];
    for f in files {
        write_file(&s.join(f), f.as_bytes(), 0o640, 1_700_000_000);
    }
    fs::create_dir_all(s.join("empty")).unwrap();
    fs::create_dir_all(s.join("dev")).unwrap();
    symlink("nowhere", &s.join("links/dangling"));
    symlink("real", &s.join("links/todir"));
    mkfifo(&s.join("dev/fifo"));
    if is_root() {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            s.join("dev/null-dev"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 3),
        )
        .expect("mknod");
    }
    set_mtime(&s.join("old/ancient.txt"), 1_000_000_000);
    set_mtime(&s.join("old/recent.txt"), 1_800_000_000);
    set_dir_mtimes(s, 1_700_000_100);
}

fn write_lists(ws: &Ws) {
    // '+ '/'- ' prefixes, comments, blank and padded lines, quotes, a leading './'.
    fs::write(
        ws.p("exclude.list"),
        "# comment line\n\n   a/b/c/drop.tmp   \n+ a/b\n- a/sub/deep/z.txt\n\"Cache\"\n'uni'\n./a\n   \n",
    )
    .unwrap();
    fs::write(
        ws.p("include.list"),
        "a/sub\n- a/sub/deep/z.txt\n./star*\n  # indented comment\n+ n/deeper/\n- **\n",
    )
    .unwrap();
    fs::write(ws.p("literal.list"), "star*name.txt\nq?.txt\n- n\n").unwrap();
    fs::write(ws.p("nul.list"), "a/x.py\0+ trail\0- **\0").unwrap();
    fs::write(ws.p("files-from.list"), "a/x.py\n").unwrap();
}

/// Each case's selection arguments; `{W}` is the workspace.
const CASES: &[(&str, &[&str])] = &[
    ("exclude-dir", &["--exclude", "a"]),
    (
        "include-under-exclude",
        &["--include", "a/b/c", "--exclude", "a"],
    ),
    (
        "file-included-in-excluded-dir",
        // The directory is excluded first: duplicity never looks inside it.
        &[
            "--exclude",
            "a",
            "--include",
            "a/b/c/keep.txt",
            "--include",
            "star*",
            "--exclude",
            "**",
        ],
    ),
    (
        "first-match-wins",
        &[
            "--exclude",
            "a/b/c/drop.tmp",
            "--include",
            "a/b",
            "--exclude",
            "**",
        ],
    ),
    ("glob-star", &["--exclude", "star*name.txt"]),
    (
        "literal-star",
        &["--filter-literal", "--exclude", "star*name.txt"],
    ),
    ("glob-question", &["--exclude", "q?.txt"]),
    ("glob-class", &["--exclude", "br[x].txt"]),
    (
        "literal-class",
        &["--filter-literal", "--exclude", "br[x].txt"],
    ),
    ("doublestar-not-top", &["--exclude", "**/top"]),
    ("top-only", &["--exclude", "top"]),
    ("nested-py", &["--include", "a/**/*.py", "--exclude", "**"]),
    (
        "doublestar-txt",
        &["--include", "**/*.txt", "--exclude", "**"],
    ),
    (
        "trailing-slash",
        &["--exclude", "trail/dir/", "--exclude", "trail/file/"],
    ),
    (
        "trailing-slash-include",
        &["--include", "a/b/", "--exclude", "**"],
    ),
    (
        "leading-dot-slash",
        &["--include", "./a/b", "--exclude", "**"],
    ),
    ("strict-case", &["--exclude", "cache"]),
    ("ignorecase-prefix", &["--exclude", "ignorecase:CACHE"]),
    (
        "filter-ignorecase",
        &[
            "--filter-ignorecase",
            "--exclude",
            "MIXED/case.txt",
            "--filter-strictcase",
            "--exclude",
            "Cache",
        ],
    ),
    ("regexp-exclude", &["--exclude-regexp", "\\.(tmp|py)$"]),
    (
        // A regular expression never asks for a directory to be scanned: the directories on the way
        // must match too.
        "regexp-include-with-parents",
        &[
            "--include-regexp",
            "\\.py$",
            "--include-regexp",
            "^a(/sub(/deep)?)?$",
            "--exclude",
            "**",
        ],
    ),
    ("filter-regexp", &["--filter-regexp", "--exclude", "^uni/"]),
    (
        "exclude-filelist",
        &["--exclude-filelist", "{W}/exclude.list"],
    ),
    (
        "include-filelist",
        &["--include-filelist", "{W}/include.list"],
    ),
    (
        "literal-filelist",
        &["--filter-literal", "--exclude-filelist", "{W}/literal.list"],
    ),
    (
        "null-separator",
        &["--null-separator", "--include-filelist", "{W}/nul.list"],
    ),
    ("older-than", &["--exclude-older-than", "1500000000"]),
    ("device-files", &["--exclude-device-files"]),
    (
        "special-files",
        &["--include", "links", "--include", "dev", "--exclude", "**"],
    ),
    ("empty-dir", &["--include", "empty", "--exclude", "**"]),
    (
        "space-and-unicode",
        &[
            "--exclude",
            "sp ace/file name.txt",
            "--exclude",
            "uni/caf?.txt",
        ],
    ),
    ("hidden", &["--include", "dotted/.*", "--exclude", "**"]),
];

fn expand(args: &[&str], w: &Path) -> Vec<String> {
    args.iter()
        .map(|a| a.replace("{W}", w.to_str().unwrap()))
        .collect()
}

/// Runs `f` on each item, two at a time (the machine has two cores; duplicity's start-up dominates).
fn in_pairs<T: Sync>(items: &[T], f: impl Fn(usize, &T) + Sync) {
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(item) = items.get(i) else { break };
                f(i, item);
            });
        }
    });
}

/// Restores `repo` with both tools for each case and returns every difference, one entry per case.
fn compare_cases(
    ws: &Ws,
    repo: &str,
    time: Option<i64>,
    cases: &[(&str, &[&str])],
    tag: &str,
) -> Vec<String> {
    let failures = Mutex::new(Vec::<String>::new());
    in_pairs(cases, |i, (name, args)| {
        let sel = expand(args, ws.root());
        let theirs = restore(
            ws,
            Tool::Duplicity,
            repo,
            &format!("{tag}-dup-{i}"),
            time,
            &sel,
        );
        let ours = restore(ws, Tool::Ours, repo, &format!("{tag}-ours-{i}"), time, &sel);
        if !theirs.success() || !ours.success() {
            failures.lock().unwrap().push(format!(
                "case {name}: a restore failed\n{} -> {:?}\n{}\n{} -> {:?}\n{}",
                theirs.cmdline,
                theirs.code,
                theirs.output(),
                ours.cmdline,
                ours.code,
                ours.output()
            ));
            return;
        }
        let (d, o) = (
            ws.p(&format!("{tag}-dup-{i}")),
            ws.p(&format!("{tag}-ours-{i}")),
        );
        let diff = diff_trees(&d, &o);
        if std::env::var_os("SELECTION_SHOW").is_some() {
            let names: Vec<String> = walk(&d).into_iter().map(|(p, _)| show(&p)).collect();
            eprintln!("{tag} {name}: {names:?}");
        }
        if !diff.is_empty() {
            failures.lock().unwrap().push(format!(
                "case {name} {sel:?}: duplicity's restore ({}) and ours ({}) differ:\n  {}",
                d.display(),
                o.display(),
                diff.join("\n  ")
            ));
        }
    });
    failures.into_inner().unwrap()
}

#[test]
fn restore_selection_matches_stock_duplicity_3() {
    let ws = Ws::new("restore-selection");
    let src = ws.p("src");
    build_traps(&src);
    write_lists(&ws);
    // The backup is duplicity's own, so both tools read the same archive.
    let s: OsString = src.clone().into();
    run(
        &ws,
        Tool::Duplicity,
        "backup",
        &["full".into(), s, ws.url("repo").into()],
    )
    .ok();
    let failures = compare_cases(&ws, "repo", None, CASES, "r");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from duplicity 3.2.1:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
    // Not vacuous: a selective restore restores less than everything, and what it keeps is whole.
    let i = CASES
        .iter()
        .position(|(n, _)| *n == "include-under-exclude")
        .unwrap();
    let ours = ws.p(&format!("r-ours-{i}"));
    assert_eq!(
        fs::read(ours.join("a/b/c/keep.txt")).unwrap(),
        b"a/b/c/keep.txt"
    );
    assert!(!ours.join("a/x.py").exists());
    assert!(ours.join("top").exists());
}

/// One error case: the selection arguments, and a phrase our message must contain.
const ERRORS: &[(&str, &[&str], &str)] = &[
    (
        "absolute",
        &["--include", "/a", "--exclude", "**"],
        "relative to the archive root",
    ),
    (
        "dot-dot",
        &["--exclude", "./../a"],
        "relative to the archive root",
    ),
    (
        "dot-element",
        &["--exclude", "a/./b"],
        "relative to the archive root",
    ),
    (
        "absolute-in-filelist",
        &["--exclude-filelist", "{W}/absolute.list"],
        "relative to the archive root",
    ),
    ("include-only", &["--include", "a"], "only includes"),
    (
        "exclude-if-present",
        &["--exclude-if-present", "x"],
        "--exclude-if-present",
    ),
    (
        "exclude-other-filesystems",
        &["--exclude-other-filesystems"],
        "--exclude-other-filesystems",
    ),
    (
        "files-from",
        &["--files-from", "{W}/files-from.list"],
        "--files-from",
    ),
    (
        "with-path-to-restore",
        &["--path-to-restore", "a", "--exclude", "a/b"],
        "--path-to-restore",
    ),
    (
        "with-short-path-to-restore",
        &["-r", "a", "--exclude", "a/b"],
        "--path-to-restore",
    ),
    ("nothing-selected", &["--exclude", "**"], "selects nothing"),
    (
        "doublestar-misses-top",
        &["--include", "**/a", "--exclude", "**"],
        "selects nothing",
    ),
    (
        // The regular expression does not match "a", so "**" excludes it and everything below.
        "regexp-include-without-parents",
        &["--include-regexp", "^a/sub", "--exclude", "**"],
        "selects nothing",
    ),
    (
        "trailing-filter",
        &["--exclude", "a", "--filter-literal"],
        "--filter-literal",
    ),
    (
        "redundant-filter",
        &["--filter-globbing", "--exclude", "a"],
        "--filter-globbing",
    ),
    ("consecutive-slashes", &["--exclude", "a//b"], "consecutive"),
];

#[test]
fn restore_selection_errors_match_stock_duplicity_3() {
    let ws = Ws::new("restore-selection-errors");
    let src = ws.p("src");
    build_traps(&src);
    write_lists(&ws);
    fs::write(ws.p("absolute.list"), "a/x.py\n/top\n").unwrap();
    let s: OsString = src.clone().into();
    run(
        &ws,
        Tool::Duplicity,
        "backup",
        &["full".into(), s, ws.url("repo").into()],
    )
    .ok();
    let failures = Mutex::new(Vec::<String>::new());
    in_pairs(ERRORS, |i, (name, args, phrase)| {
        let sel = expand(args, ws.root());
        let theirs = restore(
            &ws,
            Tool::Duplicity,
            "repo",
            &format!("e-dup-{i}"),
            None,
            &sel,
        );
        let ours = restore(&ws, Tool::Ours, "repo", &format!("e-ours-{i}"), None, &sel);
        let target = ws.p(&format!("e-ours-{i}"));
        let restored_nothing = !target.exists() || fs::read_dir(&target).unwrap().next().is_none();
        let ok = !theirs.success()
            && theirs.code == ours.code
            && ours.stderr.contains(phrase)
            && restored_nothing;
        if !ok {
            failures.lock().unwrap().push(format!(
                "case {name}: both should fail alike (ours naming {phrase:?}, restoring nothing)\n{} -> {:?}\n{}\n{} -> {:?}\n{}",
                theirs.cmdline,
                theirs.code,
                theirs.output(),
                ours.cmdline,
                ours.code,
                ours.output()
            ));
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A chain made by ours (a full and two incrementals, 1 MiB volumes so big files span several, files
/// changed, deleted, recreated and changing type) restored with selection at its end and in its
/// middle: the same as stock duplicity 3.2.1's restore of it.
#[test]
fn restore_selection_from_a_chain_matches_stock_duplicity_3() {
    let ws = Ws::new("restore-selection-chain");
    let src = ws.p("src");
    build_traps(&src);
    write_file(
        &src.join("big/one.bin"),
        &random_bytes(1, 2_500_000),
        0o644,
        t(0),
    );
    write_file(
        &src.join("big/two.bin"),
        &random_bytes(2, 2_500_000),
        0o644,
        t(0),
    );
    write_file(&src.join("tc"), b"a file first", 0o644, t(0));
    write_file(&src.join("td/inner"), b"a directory first", 0o644, t(0));
    let backup = |kind: &str, k: i64| {
        let args: Vec<OsString> = vec![
            kind.into(),
            "--volsize".into(),
            "1".into(),
            "--current-time".into(),
            t(k).to_string().into(),
            src.clone().into(),
            ws.url("repo").into(),
        ];
        run(&ws, Tool::Ours, "backup", &args).ok();
    };
    backup("full", 1);
    // Set 2: changed, deleted, added, a file becoming a directory and the other way round.
    write_file(&src.join("a/b/c/keep.txt"), b"keep v2", 0o600, t(2));
    fs::remove_file(src.join("a/x.py")).unwrap();
    write_file(&src.join("a/new.py"), b"new in 2", 0o644, t(2));
    patch_file(
        &src.join("big/two.bin"),
        1_000_000,
        b"changed in the middle",
        t(2),
    );
    fs::remove_file(src.join("tc")).unwrap();
    write_file(&src.join("tc/inner.txt"), b"now a directory", 0o644, t(2));
    fs::remove_dir_all(src.join("td")).unwrap();
    write_file(&src.join("td"), b"now a file", 0o644, t(2));
    backup("incremental", 2);
    // Set 3: a directory gone, a deleted file back, a change under an excluded directory.
    fs::remove_dir_all(src.join("a/b")).unwrap();
    write_file(&src.join("a/x.py"), b"back in 3", 0o644, t(3));
    write_file(&src.join("n/top"), b"changed in 3", 0o644, t(3));
    backup("incremental", 3);

    let cases: &[(&str, &[&str])] = &[
        (
            "a-and-type-changes",
            &[
                "--include",
                "a/**",
                "--include",
                "tc",
                "--include",
                "td",
                "--exclude",
                "**",
            ],
        ),
        (
            "big-second",
            &["--include", "big/two.bin", "--exclude", "**"],
        ),
        (
            "exclude-some",
            &[
                "--exclude",
                "n",
                "--exclude",
                "big/one.bin",
                "--exclude",
                "**/*.txt",
            ],
        ),
        (
            "keep-only",
            &[
                "--include",
                "a/b/c/keep.txt",
                "--include",
                "tc/",
                "--exclude",
                "**",
            ],
        ),
    ];
    let mut failures = compare_cases(&ws, "repo", None, cases, "end");
    failures.extend(compare_cases(&ws, "repo", Some(t(2)), cases, "mid"));
    assert!(
        failures.is_empty(),
        "{} restores differ from duplicity 3.2.1:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // Not vacuous: the middle state's selection holds set 2's versions.
    let mid = ws.p("mid-ours-3");
    assert_eq!(fs::read(mid.join("a/b/c/keep.txt")).unwrap(), b"keep v2");
    assert_eq!(
        fs::read(mid.join("tc/inner.txt")).unwrap(),
        b"now a directory"
    );
    let big = ws.p("end-ours-1/big/two.bin");
    let mut expected = random_bytes(2, 2_500_000);
    expected[1_000_000..1_000_000 + 21].copy_from_slice(b"changed in the middle");
    assert_eq!(fs::read(big).unwrap(), expected);
    assert!(!ws.p("end-ours-1/big/one.bin").exists());
}
