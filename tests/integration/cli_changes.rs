//! duplicity 3.2.1's change and symlink options (issue 13), each checked by its effect and against
//! stock duplicity 3.2.1 (scripts/duplicity3.sh) and 0.8.22: `--copy-links`, `--skip-if-no-change`,
//! `--no-files-changed`, `--max-blocksize`, collection-status `--file-changed` and
//! `--show-changes-in-set`.

use std::io::Read;

use crate::support::*;

/// The paths of a list-current-files output.
fn listed(stdout: &str) -> Vec<String> {
    listing_lines(stdout)
        .iter()
        .map(|l| l[25..].to_string())
        .collect()
}

/// The gunzipped bytes of the one file in `repo` whose name contains `part`.
fn gunzip_one(ws: &Ws, repo: &str, part: &str) -> Vec<u8> {
    let names: Vec<String> = repo_files(ws, repo)
        .into_iter()
        .filter(|n| n.contains(part))
        .collect();
    assert_eq!(names.len(), 1, "{part} in {:?}", repo_files(ws, repo));
    let f = std::fs::File::open(ws.p(repo).join(&names[0])).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn copy_links_stores_link_targets_as_duplicity3_and_warns_about_the_rest() {
    let ws = Ws::new("copy-links");
    let src = ws.p("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    write_file(&src.join("a.txt"), b"hello", 0o644, T0 - 100);
    write_file(&src.join("d/b"), b"inside", 0o600, T0 - 100);
    symlink("a.txt", &src.join("link"));
    symlink("d", &src.join("dlink"));
    symlink("nowhere", &src.join("dangling"));
    symlink("loop2", &src.join("loop1"));
    symlink("loop1", &src.join("loop2"));
    let s = src.to_str().unwrap();
    let t0 = T0.to_string();
    let run = ours(
        &ws,
        &[
            "full",
            "--copy-links",
            "--current-time",
            &t0,
            s,
            &ws.url("repo-ours"),
        ],
    )
    .ok();
    // Not lost in silence: each link left out is named, with the reason.
    let err = run.stderr.clone();
    assert!(
        err.contains("dangling") && err.contains("a dangling symlink"),
        "{err}"
    );
    assert!(
        err.contains("loop1") && err.contains("a loop of symlinks"),
        "{err}"
    );
    dup3(
        &ws,
        &[
            "full",
            "--copy-links",
            "--current-time",
            &t0,
            s,
            &ws.url("repo-dup3"),
        ],
    )
    .ok();
    let mine = listed(
        &ours(&ws, &["list-current-files", &ws.url("repo-ours")])
            .ok()
            .stdout,
    );
    let theirs = listed(
        &dup3(&ws, &["list-current-files", &ws.url("repo-dup3")])
            .ok()
            .stdout,
    );
    assert_eq!(mine, theirs);
    assert!(mine.contains(&"dlink/b".to_string()), "{mine:?}");
    // Stock duplicity 0.8.22 restores the targets' contents as regular files.
    let dst = ws.p("restored");
    ws.restore(Tool::Duplicity, Enc::Plain, "repo-ours", &dst, None, &[]);
    let link = std::fs::symlink_metadata(dst.join("link")).unwrap();
    assert!(link.file_type().is_file());
    assert_eq!(std::fs::read(dst.join("link")).unwrap(), b"hello");
    assert_eq!(std::fs::read(dst.join("dlink/b")).unwrap(), b"inside");
    assert!(!dst.join("dangling").exists() && !dst.join("loop1").exists());
    // Without the option the links are stored as links.
    ours(
        &ws,
        &["full", "--current-time", &t0, s, &ws.url("repo-links")],
    )
    .ok();
    let dst = ws.p("restored-links");
    ws.restore(Tool::Ours, Enc::Plain, "repo-links", &dst, None, &[]);
    assert!(std::fs::symlink_metadata(dst.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// The counts of a verify run's "Verify complete: N files compared, M differences found." line
/// (duplicity 3.2.1 words it "file(s)", 0.8.22 and this tool "files").
fn verify_summary(stdout: &str) -> Vec<u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Verify complete:"))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

#[test]
fn verify_with_copy_links_walks_the_source_as_the_backup_did() {
    let ws = Ws::new("verify-copy-links");
    let src = ws.p("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir_all(src.join("elsewhere")).unwrap();
    write_file(&src.join("a.txt"), b"hello", 0o644, T0 - 100);
    write_file(&src.join("d/b"), b"inside", 0o600, T0 - 100);
    write_file(&src.join("elsewhere/t"), b"target", 0o640, T0 - 100);
    symlink("a.txt", &src.join("link"));
    symlink("d", &src.join("dlink"));
    symlink("elsewhere/t", &src.join("tlink"));
    let s = src.to_str().unwrap();
    let t0 = T0.to_string();
    for (tool_repo, dup) in [("repo-ours", false), ("repo-dup3", true)] {
        let args = [
            "full",
            "--copy-links",
            "--current-time",
            &t0,
            s,
            &ws.url(tool_repo),
        ];
        if dup {
            dup3(&ws, &args).ok();
        } else {
            ours(&ws, &args).ok();
        }
    }
    let url = ws.url("repo-ours");
    // Integrity only, and every entry compared: both pass when the source is walked as backed up.
    let plain = ours(&ws, &["verify", "--copy-links", &url, s]).ok();
    let data = ours(&ws, &["verify", "--copy-links", "--compare-data", &url, s]).ok();
    assert!(
        data.stdout.contains(", 0 differences found."),
        "{}",
        data.stdout
    );
    // The same counts as duplicity 3.2.1's verify of its own --copy-links backup.
    let theirs = dup3(
        &ws,
        &[
            "verify",
            "--copy-links",
            "--compare-data",
            &ws.url("repo-dup3"),
            s,
        ],
    )
    .ok();
    assert_eq!(verify_summary(&data.stdout), verify_summary(&theirs.stdout));
    assert_eq!(verify_summary(&plain.stdout), verify_summary(&data.stdout));
    // Without --copy-links the links are links, not what the backup stored.
    let links = ours(&ws, &["verify", "--compare-data", &url, s]);
    assert_eq!(links.code, Some(1), "{}", links.output());
    assert!(
        links
            .stdout
            .contains("Difference found: File link has type sym, expected reg"),
        "{}",
        links.stdout
    );
    // A link's target changed (same size and mtime): its content is reported, through the link too.
    write_file(&src.join("elsewhere/t"), b"TARGET", 0o640, T0 - 100);
    let changed = ours(&ws, &["verify", "--copy-links", "--compare-data", &url, s]);
    assert_eq!(changed.code, Some(1), "{}", changed.output());
    assert!(
        changed
            .stdout
            .contains("Difference found: Data for file tlink is different"),
        "{}",
        changed.stdout
    );
    // Read in 1 KiB blocks (--copy-blocksize), the comparison finds the same.
    let small = ours(
        &ws,
        &[
            "verify",
            "--copy-links",
            "--compare-data",
            "--copy-blocksize",
            "1",
            &url,
            s,
        ],
    );
    assert_eq!(small.code, Some(1), "{}", small.output());
    assert_eq!(small.stdout, changed.stdout);
    let theirs = dup3(
        &ws,
        &[
            "verify",
            "--copy-links",
            "--compare-data",
            &ws.url("repo-dup3"),
            s,
        ],
    );
    assert_eq!(theirs.code, Some(1), "{}", theirs.output());
    assert_eq!(
        verify_summary(&changed.stdout),
        verify_summary(&theirs.stdout)
    );
}

#[test]
fn skip_if_no_change_stores_nothing_when_nothing_changed() {
    let ws = Ws::new("skip-if-no-change");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    let url = ws.url("repo");
    ours(&ws, &["full", "--current-time", &T0.to_string(), s, &url]).ok();
    let before = repo_files(&ws, "repo");
    let run = ours(
        &ws,
        &[
            "incremental",
            "--skip-if-no-change",
            "--jsonstat",
            "--current-time",
            &t(1).to_string(),
            s,
            &url,
        ],
    )
    .ok();
    assert!(
        run.output()
            .contains("Skipped volume upload, as effectivly nothing has changed"),
        "{}",
        run.output()
    );
    // duplicity 3 prints the jsonstat but stores it (nor anything else) not.
    assert!(
        run.stdout.contains("\"skipped_inc\": true"),
        "{}",
        run.output()
    );
    assert_eq!(repo_files(&ws, "repo"), before);
    // Without the option an empty incremental is stored, as always.
    ours(
        &ws,
        &["incremental", "--current-time", &t(2).to_string(), s, &url],
    )
    .ok();
    assert!(repo_files(&ws, "repo").len() > before.len());
    // A change is stored with the option.
    mutate(&src, 1);
    ours(
        &ws,
        &[
            "incremental",
            "--skip-if-no-change",
            "--current-time",
            &t(3).to_string(),
            s,
            &url,
        ],
    )
    .ok();
    let after = repo_files(&ws, "repo");
    assert!(
        after
            .iter()
            .any(|n| n.contains(&stamp(t(3))) && n.contains(".manifest")),
        "{after:?}"
    );
    let dst = ws.p("restored");
    ws.restore(Tool::Duplicity, Enc::Plain, "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "restore after a skipped incremental");
}

/// The block collection-status prints for --file-changed / --show-changes-in-set: from the first
/// dashed line to the last, duplicity 3.2.1's Python byte-string quoting (`b'New'`) removed.
fn change_block(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("-----"))
        .expect(stdout);
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("-----"))
        .expect(stdout);
    let re = regex::Regex::new(r"b'([^']*)'").unwrap();
    lines[first..=last]
        .iter()
        .map(|l| {
            // Removing b'..' shifts right-aligned columns by 3: compare trimmed cells.
            let l = re.replace_all(l, "$1");
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn file_changed_and_show_changes_in_set_match_duplicity3() {
    let ws = Ws::new("changes-in-set");
    let src = ws.p("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    write_file(&src.join("a.txt"), b"one", 0o644, T0 - 100);
    write_file(&src.join("d/b c"), b"two", 0o644, T0 - 100);
    let s = src.to_str().unwrap();
    let url = ws.url("repo");
    ours(&ws, &["full", "--current-time", &T0.to_string(), s, &url]).ok();
    append_file(&src.join("a.txt"), b" more", t(1) - 10);
    write_file(&src.join("new"), b"n", 0o644, t(1) - 10);
    std::fs::remove_file(src.join("d/b c")).unwrap();
    ours(
        &ws,
        &["incremental", "--current-time", &t(1).to_string(), s, &url],
    )
    .ok();
    // duplicity 3 reads the file lists from its archive dir only (an empty one shows no changes), and
    // collection-status does not fill it: list-current-files does. Ours reads the target's manifests.
    dup3(&ws, &["list-current-files", &url]).ok();
    for args in [
        &["--show-changes-in-set", "0"][..],
        &["--show-changes-in-set", "1"],
        &["--file-changed", "a.txt"],
        &["--file-changed", "d/b c"],
        &["--file-changed", "absent"],
    ] {
        let mut a = vec!["collection-status"];
        a.extend_from_slice(args);
        a.push(&url);
        let mine = ours(&ws, &a).ok().stdout;
        let theirs = dup3(&ws, &a).ok().stdout;
        assert_eq!(
            change_block(&mine),
            change_block(&theirs),
            "{args:?}\n{mine}\n{theirs}"
        );
        assert!(mine.starts_with("Last full backup date: "), "{mine}");
    }
    let mine = ours(
        &ws,
        &["collection-status", "--show-changes-in-set", "0", &url],
    )
    .ok()
    .stdout;
    assert!(
        mine.contains("\"d/b\\x20c\"               deleted\n"),
        "{mine}"
    );
    // A set the chain does not have: a clear error, not a crash.
    let e = ours(
        &ws,
        &["collection-status", "--show-changes-in-set", "2", &url],
    )
    .fails();
    assert!(
        e.stderr.contains("--show-changes-in-set 2") && e.stderr.contains("has 2 set(s)"),
        "{}",
        e.stderr
    );
}

/// The JSON document after the "Last full backup date" line, text for text.
fn json_block(stdout: &str) -> &str {
    let start = stdout.find('{').expect(stdout);
    let end = stdout.rfind('}').expect(stdout);
    &stdout[start..=end]
}

#[test]
fn show_changes_in_set_with_jsonstat_prints_duplicity3s_json() {
    let ws = Ws::new("changes-in-set-json");
    let src = ws.p("src");
    std::fs::create_dir_all(&src).unwrap();
    write_file(&src.join("a.txt"), b"one", 0o644, T0 - 100);
    write_file(&src.join("gone"), b"two", 0o644, T0 - 100);
    let s = src.to_str().unwrap();
    let url = ws.url("repo");
    let now = T0.to_string();
    ours(
        &ws,
        &["full", "--jsonstat", "--current-time", &now, s, &url],
    )
    .ok();
    append_file(&src.join("a.txt"), b" more", t(1) - 10);
    write_file(&src.join("new"), b"n", 0o644, t(1) - 10);
    std::fs::remove_file(src.join("gone")).unwrap();
    let later = t(1).to_string();
    ours(
        &ws,
        &[
            "incremental",
            "--jsonstat",
            "--current-time",
            &later,
            s,
            &url,
        ],
    )
    .ok();
    // duplicity 3 reads file lists from its archive dir only: fill it first.
    dup3(&ws, &["list-current-files", &url]).ok();
    for n in ["-1", "0", "1"] {
        let args = [
            "collection-status",
            "--jsonstat",
            "--show-changes-in-set",
            n,
            &url,
        ];
        let mine = ours(&ws, &args).ok().stdout;
        let theirs = dup3(&ws, &args).ok().stdout;
        assert!(mine.starts_with("Last full backup date: "), "{mine}");
        // The same text: keys in duplicity's order, floats as Python prints them, 4-space indent.
        assert_eq!(
            json_block(&mine),
            json_block(&theirs),
            "-{n}\n{mine}\n{theirs}"
        );
    }
    let all: serde_json::Value = serde_json::from_str(json_block(
        &ours(
            &ws,
            &[
                "collection-status",
                "--jsonstat",
                "--show-changes-in-set",
                "-1",
                &url,
            ],
        )
        .ok()
        .stdout,
    ))
    .unwrap();
    let inc = &all[format!("inc-{}", stamp(t(1)))];
    assert_eq!(inc["files_changed"]["gone"], "deleted", "{all}");
    assert_eq!(inc["files_changed"]["new"], "new", "{all}");
    assert_eq!(inc["json_stat"]["DeletedFiles"], 1, "{all}");
    assert!(all[format!("full-{}", stamp(T0))]["json_stat"]["SourceFiles"].as_u64() > Some(0));
    // Out of range (any negative N is every set, as in duplicity): a clear error naming the range.
    let e = ours(
        &ws,
        &[
            "collection-status",
            "--jsonstat",
            "--show-changes-in-set",
            "5",
            &url,
        ],
    )
    .fails();
    assert!(e.stderr.contains("has 2 set(s)"), "{}", e.stderr);
}

#[test]
fn no_files_changed_writes_an_empty_file_list() {
    let ws = Ws::new("no-files-changed");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    ours(
        &ws,
        &[
            "full",
            "--no-files-changed",
            "--current-time",
            &T0.to_string(),
            s,
            &ws.url("repo"),
        ],
    )
    .ok();
    let m = std::fs::read(
        ws.p("repo")
            .join(format!("duplicity-full.{}.manifest", stamp(T0))),
    )
    .unwrap();
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("\nFilelist 0\n") && !m.contains("    new "),
        "{m}"
    );
    let out = dup3(
        &ws,
        &[
            "collection-status",
            "--show-changes-in-set",
            "0",
            &ws.url("repo"),
        ],
    )
    .ok()
    .stdout;
    assert!(out.contains("Total number of changes: 0"), "{out}");
    // --files-changed (the default) lists them.
    ours(
        &ws,
        &[
            "full",
            "--files-changed",
            "--current-time",
            &T0.to_string(),
            s,
            &ws.url("repo2"),
        ],
    )
    .ok();
    let m = std::fs::read(
        ws.p("repo2")
            .join(format!("duplicity-full.{}.manifest", stamp(T0))),
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&m).contains("    new "));
    let dst = ws.p("restored");
    ws.restore(Tool::Duplicity, Enc::Plain, "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "restore of a set without a file list");
}

#[test]
fn max_blocksize_signatures_are_read_by_both_duplicity_versions() {
    let ws = Ws::new("max-blocksize");
    let src = ws.p("src");
    std::fs::create_dir_all(&src).unwrap();
    // 20 MB: duplicity 3.2.1's block would be round512(isqrt) = 4608; the option caps it at 4096.
    write_large_file(&src.join("big.bin"), 7, 20_000_000);
    write_file(&src.join("small"), b"s", 0o644, T0 - 100);
    let s = src.to_str().unwrap();
    let url = ws.url("repo");
    ours(
        &ws,
        &[
            "full",
            "--max-blocksize",
            "4000",
            "--current-time",
            &T0.to_string(),
            s,
            &url,
        ],
    )
    .ok();
    let sig = gunzip_one(&ws, "repo", "full-signatures");
    let header_4096 = [0x72, 0x73, 0x01, 0x36, 0, 0, 0x10, 0];
    assert!(
        sig.windows(8).any(|w| w == header_4096),
        "no signature with 4096-byte blocks"
    );
    patch_file(
        &src.join("big.bin"),
        10_000_000,
        b"changed in the middle",
        t(1) - 10,
    );
    ours(
        &ws,
        &[
            "incremental",
            "--max-blocksize",
            "4000",
            "--current-time",
            &t(1).to_string(),
            s,
            &url,
        ],
    )
    .ok();
    let inc = repo_files(&ws, "repo");
    let vol = inc
        .iter()
        .find(|n| n.starts_with("duplicity-inc.") && n.contains(".vol1."))
        .unwrap();
    // A delta, not the whole file again.
    assert!(std::fs::metadata(ws.p("repo").join(vol)).unwrap().len() < 1_000_000);
    let dst = ws.p("restored-0.8");
    ws.restore(Tool::Duplicity, Enc::Plain, "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "0.8.22 restore");
    let dst = ws.p("restored-3");
    dup3(&ws, &["restore", &url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "3.2.1 restore");
    // Bad values are refused before anything is read.
    let e = ours(
        &ws,
        &["full", "--max-blocksize", "big", s, &ws.url("repo-bad")],
    )
    .fails();
    assert!(e.stderr.contains("--max-blocksize"), "{}", e.stderr);
}
