//! File selection side by side with stock duplicity 3.2.1 (installed by scripts/duplicity3.sh): each case
//! backs up one tree full of traps with the same selection options with both tools, then compares the
//! paths each stored (both repositories listed by our `list-current-files --json`, which other tests
//! prove equal to duplicity's listing). Option lines that duplicity refuses must fail with ours too.

use crate::support::*;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// The trap tree: glob characters in names, nested includes under excludes, case, markers, old files.
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
        "e[z.txt",
        "Cache/UPPER.txt",
        "cache/lower.txt",
        "mixed/CaSe.TXT",
        "mixed/case.txt",
        "nb/.nobackup",
        "nb/inner/f.txt",
        "nb2/inner/.nobackup",
        "nb2/inner/g",
        "nb2/h",
        "old/ancient.txt",
        "old/recent.txt",
        "old/olddir/new.txt",
        "sp ace/file name.txt",
        "uni/café.txt",
        "uni/ß.txt",
        "uni/ab.txt",
        "trail/dir/f",
        "trail/file",
        "links/real/f",
    ];
    for f in files {
        write_file(&s.join(f), f.as_bytes(), 0o644, 1_700_000_000);
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
    set_mtime(&s.join("old/olddir"), 1_000_000_000);
    set_mtime(&s.join("old/recent.txt"), 1_800_000_000);
}

/// One case: its name and arguments; `{S}` is the source's absolute path, `{W}` the workspace.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "nothing",
        args: &[],
    },
    Case {
        name: "exclude-dir",
        args: &["--exclude", "{S}/a"],
    },
    Case {
        name: "include-under-exclude",
        args: &["--include", "{S}/a/b/c", "--exclude", "{S}/a"],
    },
    Case {
        name: "first-match-wins",
        args: &[
            "--exclude",
            "{S}/a/b/c/drop.tmp",
            "--include",
            "{S}/a/b",
            "--exclude",
            "**",
        ],
    },
    Case {
        name: "exclude-then-include",
        args: &[
            "--exclude",
            "{S}/a",
            "--include",
            "{S}/a/b",
            "--exclude",
            "{S}/nb",
        ],
    },
    Case {
        name: "double-star-include",
        args: &["--include", "**.py", "--exclude", "**"],
    },
    Case {
        name: "star-one-level",
        args: &["--include", "{S}/*/x.py", "--exclude", "**"],
    },
    Case {
        name: "star-vs-double-star",
        args: &["--exclude", "{S}/*.txt", "--exclude", "{S}/a/**/*.txt"],
    },
    Case {
        name: "double-star-anywhere",
        args: &["--exclude", "**.txt"],
    },
    Case {
        name: "glob-chars-in-names",
        args: &["--exclude", "{S}/star*name.txt", "--exclude", "{S}/q?.txt"],
    },
    Case {
        name: "literal-then-glob",
        args: &[
            "--filter-literal",
            "--exclude",
            "{S}/star*name.txt",
            "--filter-globbing",
            "--exclude",
            "{S}/br[x].txt",
        ],
    },
    Case {
        name: "set-and-unclosed-bracket",
        args: &["--exclude", "{S}/[bq]?*", "--exclude", "{S}/e[z.txt"],
    },
    Case {
        name: "negated-set",
        args: &["--include", "{S}/[!a-m]*", "--exclude", "**"],
    },
    Case {
        name: "trailing-slash",
        args: &[
            "--exclude",
            "{S}/trail/file/",
            "--exclude",
            "{S}/trail/dir/",
            "--exclude",
            "{S}/links/todir/",
        ],
    },
    Case {
        name: "trailing-slash-include",
        args: &[
            "--include",
            "{S}/a/b/",
            "--include",
            "{S}/links/todir/",
            "--exclude",
            "**",
        ],
    },
    Case {
        name: "ignorecase-prefix",
        args: &["--exclude", "ignorecase:{S}/CACHE"],
    },
    Case {
        name: "filter-ignorecase",
        args: &[
            "--filter-ignorecase",
            "--exclude",
            "{S}/CACHE/upper.txt",
            "--filter-strictcase",
            "--exclude",
            "{S}/cache",
        ],
    },
    Case {
        name: "strict-case",
        args: &["--exclude", "{S}/cache"],
    },
    Case {
        name: "exclude-if-present",
        args: &["--exclude-if-present", ".nobackup"],
    },
    Case {
        name: "exclude-if-present-goes-first",
        args: &[
            "--include",
            "{S}/nb/inner",
            "--exclude-if-present",
            ".nobackup",
            "--exclude",
            "{S}/nb",
        ],
    },
    Case {
        name: "exclude-older-than",
        args: &["--exclude-older-than", "1500000000"],
    },
    Case {
        name: "exclude-device-files",
        args: &["--exclude-device-files"],
    },
    Case {
        name: "exclude-filelist",
        args: &["--exclude-filelist", "{W}/exclude.list"],
    },
    Case {
        name: "include-filelist",
        args: &["--include-filelist", "{W}/include.list"],
    },
    Case {
        name: "include-filelist-literal",
        args: &["--filter-literal", "--include-filelist", "{W}/literal.list"],
    },
    Case {
        name: "null-separator",
        args: &["--null-separator", "--include-filelist", "{W}/nul.list"],
    },
    Case {
        name: "files-from",
        args: &["--files-from", "{W}/files-from.list"],
    },
    Case {
        name: "files-from-and-rules",
        args: &[
            "--files-from",
            "{W}/files-from.list",
            "--exclude",
            "{S}/a/x.py",
        ],
    },
    Case {
        name: "files-from-include-missing",
        args: &[
            "--files-from",
            "{W}/files-from.list",
            "--include",
            "{S}/a/ghost",
            "--exclude",
            "**",
        ],
    },
    Case {
        name: "regexps",
        args: &[
            "--exclude-regexp",
            "\\.tmp$",
            "--include-regexp",
            "sub/deep",
            "--exclude",
            "{S}/a/sub",
        ],
    },
    Case {
        name: "filter-regexp",
        args: &[
            "--filter-regexp",
            "--exclude",
            "x\\.py$",
            "--filter-globbing",
            "--exclude",
            "{S}/old",
        ],
    },
    Case {
        name: "regexp-ignorecase",
        args: &["--filter-ignorecase", "--exclude-regexp", "upper"],
    },
    Case {
        name: "unicode-one-char",
        args: &[
            "--exclude",
            "{S}/uni/caf?.txt",
            "--exclude",
            "{S}/uni/?.txt",
        ],
    },
    Case {
        name: "spaces",
        args: &["--exclude", "{S}/sp ace/file name.txt"],
    },
    Case {
        name: "root-slash",
        args: &["--include", "{S}/a/x.py", "--exclude", "/"],
    },
    Case {
        name: "options-around-subcommand",
        args: &[
            "--include",
            "{S}/old/recent.txt",
            "@",
            "--exclude",
            "{S}/old",
            "--exclude",
            "{S}/a",
        ],
    },
];

/// Option lines duplicity 3.2.1 refuses; ours must refuse them too.
const ERRORS: &[Case] = &[
    Case {
        name: "relative-pattern",
        args: &["--exclude", "a/b"],
    },
    Case {
        name: "other-tree",
        args: &["--exclude", "/elsewhere/a"],
    },
    Case {
        name: "star-cannot-match-root",
        args: &["--include", "*/a", "--exclude", "**"],
    },
    Case {
        name: "last-only-includes",
        args: &["--include", "{S}/a"],
    },
    Case {
        name: "trailing-filter",
        args: &["--exclude", "{S}/a", "--filter-literal"],
    },
    Case {
        name: "redundant-filters",
        args: &["--filter-globbing", "--exclude", "{S}/a"],
    },
    Case {
        name: "consecutive-slashes",
        args: &["--exclude", "{S}//a"],
    },
    Case {
        name: "literal-outside",
        args: &["--filter-literal", "--exclude", "{S}x/a"],
    },
    Case {
        name: "files-from-absolute",
        args: &["--files-from", "{W}/absolute.list"],
    },
    Case {
        name: "empty-pattern",
        args: &["--exclude", ""],
    },
    Case {
        name: "missing-filelist",
        args: &["--exclude-filelist", "{W}/no-such.list"],
    },
];

fn write_lists(ws: &Ws, s: &str) {
    fs::write(
        ws.p("exclude.list"),
        format!(
            "# comment line\n\n   {s}/a/b/c/drop.tmp   \n+ {s}/a/b\n- {s}/a/sub/deep/z.txt\n\"{s}/Cache\"\n'{s}/uni'\n{s}/a\n   \n"
        ),
    )
    .unwrap();
    fs::write(
        ws.p("include.list"),
        format!("{s}/a/sub\n- {s}/a/sub/deep/z.txt\n{s}/star*\n  # indented comment\n- **\n"),
    )
    .unwrap();
    fs::write(
        ws.p("literal.list"),
        format!("{s}/star*name.txt\n{s}/q?.txt\n- {s}\n"),
    )
    .unwrap();
    fs::write(ws.p("nul.list"), format!("{s}/a/x.py\0{s}/nb2\0- **\0")).unwrap();
    fs::write(
        ws.p("files-from.list"),
        "a/x.py\na/b/c\na/ghost\nold/recent.txt\nmissing/z\nsp ace/file name.txt\n",
    )
    .unwrap();
    fs::write(ws.p("absolute.list"), format!("{s}/a/x.py\n")).unwrap();
}

/// Runs `full` with one tool; `@` in `args` marks where the subcommand goes (default: first).
fn run_full(ws: &Ws, tool: Tool, args: &[String], src: &str, repo: &str, cwd: &Path) -> Run {
    let prog = match tool {
        Tool::Ours => ours_bin().to_string(),
        Tool::Duplicity => duplicity3().to_string(),
    };
    let mut argv: Vec<OsString> = Vec::new();
    let cache = ws.p(&format!("cache-{repo}"));
    let before: Vec<&String> = args.iter().take_while(|a| *a != "@").collect();
    let after: Vec<&String> = args.iter().skip_while(|a| *a != "@").skip(1).collect();
    let (first, second) = if args.iter().any(|a| a == "@") {
        (before, after)
    } else {
        (Vec::new(), before)
    };
    argv.extend(first.iter().map(|a| OsString::from(a.as_str())));
    argv.push("full".into());
    argv.extend([
        "--no-encryption".into(),
        "--archive-dir".into(),
        cache.into_os_string(),
    ]);
    argv.extend(second.iter().map(|a| OsString::from(a.as_str())));
    argv.push(src.into());
    argv.push(ws.url(repo).into());
    let mut cmd = Command::new(&prog);
    cmd.args(&argv).current_dir(cwd);
    ws.env(&mut cmd);
    cmd.env_remove("PASSPHRASE");
    let shown: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    run_cmd(cmd, &format!("{prog} {}", shown.join(" ")))
}

fn stored(ws: &Ws, repo: &str) -> BTreeSet<String> {
    let r = ws
        .run(
            Tool::Ours,
            Enc::Plain,
            &["list-current-files", "--json", &ws.url(repo)],
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.output()));
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

fn expand(args: &[&str], s: &str, w: &Path) -> Vec<String> {
    args.iter()
        .map(|a| a.replace("{S}", s).replace("{W}", w.to_str().unwrap()))
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

#[test]
fn selection_matches_stock_duplicity_3() {
    let dup = duplicity3();
    let ws = Ws::new("selection");
    let src = ws.p("src");
    build_traps(&src);
    let s = src.to_str().unwrap().to_string();
    write_lists(&ws, &s);
    let failures = Mutex::new(Vec::<String>::new());
    in_pairs(CASES, |i, case| {
        let args = expand(case.args, &s, ws.root());
        let theirs = run_full(
            &ws,
            Tool::Duplicity,
            &args,
            &s,
            &format!("dup-{i}"),
            ws.root(),
        );
        let ours = run_full(&ws, Tool::Ours, &args, &s, &format!("ours-{i}"), ws.root());
        let mut f = failures.lock().unwrap();
        if !theirs.success() || !ours.success() {
            f.push(format!(
                "case {}: a run failed\n{} -> {:?}\n{}\n{} -> {:?}\n{}",
                case.name,
                theirs.cmdline,
                theirs.code,
                theirs.output(),
                ours.cmdline,
                ours.code,
                ours.output()
            ));
            return;
        }
        drop(f);
        let (d, o) = (
            stored(&ws, &format!("dup-{i}")),
            stored(&ws, &format!("ours-{i}")),
        );
        if std::env::var_os("SELECTION_SHOW").is_some() {
            eprintln!("{}: {} stored: {d:?}", case.name, d.len());
        }
        if d != o {
            failures.lock().unwrap().push(format!(
                "case {}: {:?}\n  only duplicity stored: {:?}\n  only ours stored: {:?}",
                case.name,
                args,
                d.difference(&o).collect::<Vec<_>>(),
                o.difference(&d).collect::<Vec<_>>()
            ));
        }
    });
    // A relative source: patterns are matched against the source as typed.
    let rel = expand(
        &["--include", "src/a/b", "--exclude", "src/a"],
        &s,
        ws.root(),
    );
    let theirs = run_full(&ws, Tool::Duplicity, &rel, "src", "dup-rel", ws.root()).ok();
    let ours = run_full(&ws, Tool::Ours, &rel, "src", "ours-rel", ws.root()).ok();
    let _ = (theirs, ours);
    let (d, o) = (stored(&ws, "dup-rel"), stored(&ws, "ours-rel"));
    if d != o {
        failures
            .lock()
            .unwrap()
            .push(format!("relative source: duplicity {d:?}\nours {o:?}"));
    }
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from duplicity 3.2.1 ({dup}):\n{}",
        failures.len(),
        CASES.len() + 1,
        failures.join("\n\n")
    );
}

#[test]
fn selection_errors_match_stock_duplicity_3() {
    let ws = Ws::new("selection-errors");
    let src = ws.p("src");
    build_traps(&src);
    let s = src.to_str().unwrap().to_string();
    write_lists(&ws, &s);
    let failures = Mutex::new(Vec::<String>::new());
    in_pairs(ERRORS, |i, case| {
        let args = expand(case.args, &s, ws.root());
        let theirs = run_full(
            &ws,
            Tool::Duplicity,
            &args,
            &s,
            &format!("dup-{i}"),
            ws.root(),
        );
        let ours = run_full(&ws, Tool::Ours, &args, &s, &format!("ours-{i}"), ws.root());
        let stored_nothing = !ws.p(&format!("ours-{i}")).exists()
            || fs::read_dir(ws.p(&format!("ours-{i}")))
                .unwrap()
                .next()
                .is_none();
        if theirs.success() || ours.success() || ours.stderr.trim().is_empty() || !stored_nothing {
            failures.lock().unwrap().push(format!(
                "case {}: both should fail\n{} -> {:?}\n{}\n{} -> {:?}\n{}",
                case.name,
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

/// `verify --compare-data` compares only the selected files, as duplicity: a backup made with an
/// exclude verifies clean with the same exclude, although the excluded files exist on disk.
#[test]
fn verify_compares_only_selected_files() {
    let ws = Ws::new("selection-verify");
    let src = ws.p("src");
    build_traps(&src);
    let s = src.to_str().unwrap().to_string();
    let args = expand(
        &["--exclude", "{S}/a", "--exclude", "{S}/dev"],
        &s,
        ws.root(),
    );
    run_full(&ws, Tool::Ours, &args, &s, "repo", ws.root()).ok();
    let verify = |tool: Tool, extra: &[String]| {
        let prog = match tool {
            Tool::Ours => ours_bin().to_string(),
            Tool::Duplicity => duplicity3().to_string(),
        };
        let mut cmd = Command::new(&prog);
        cmd.args([
            "verify",
            "--compare-data",
            "--no-encryption",
            "--archive-dir",
        ])
        .arg(ws.p("cache-verify"))
        .args(extra)
        .arg(ws.url("repo"))
        .arg(&src);
        ws.env(&mut cmd);
        run_cmd(cmd, &format!("{prog} verify {extra:?}"))
    };
    for tool in [Tool::Duplicity, Tool::Ours] {
        let with = verify(tool, &args);
        assert_eq!(
            with.code,
            Some(0),
            "{tool:?} with the backup's excludes:\n{}",
            with.output()
        );
        let without = verify(tool, &[]);
        assert_eq!(
            without.code,
            Some(1),
            "{tool:?} without excludes:\n{}",
            without.output()
        );
    }
}
