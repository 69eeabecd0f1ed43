//! `list-current-files` and `verify` side by side with stock duplicity 0.8.22: the same listing lines at
//! several times, the same "Difference found" lines and exit codes, on chains written by either tool.

use crate::support::*;
use std::fs;

/// Builds the sample chain (full, inc after step 1, inc after step 2) with `writer`.
fn sample_chain(ws: &Ws, writer: Tool, enc: Enc) -> std::path::PathBuf {
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(writer, "full", enc, &src, "repo", t(0), &[]);
    mutate(&src, 1);
    ws.backup(writer, "incremental", enc, &src, "repo", t(1), &[]);
    mutate(&src, 2);
    ws.backup(writer, "incremental", enc, &src, "repo", t(2), &[]);
    src
}

fn listing(ws: &Ws, tool: Tool, enc: Enc, time: Option<i64>) -> Vec<String> {
    let mut args = vec!["list-current-files".to_string()];
    if let Some(t) = time {
        args.extend(["-t".into(), t.to_string()]);
    }
    args.push(ws.url("repo"));
    let r = ws.run(tool, enc, &args).ok();
    listing_lines(&r.stdout)
}

fn listings_agree(name: &str, writer: Tool, enc: Enc) {
    let ws = Ws::new(name);
    sample_chain(&ws, writer, enc);
    for time in [None, Some(t(0) + 50), Some(t(1) + 50), Some(t(0) - 1000)] {
        let ours = listing(&ws, Tool::Ours, enc, time);
        let theirs = listing(&ws, Tool::Duplicity, enc, time);
        assert!(
            ours.len() > 20,
            "too few entries listed at {time:?}: {ours:?}"
        );
        assert_eq!(
            ours, theirs,
            "list-current-files at {time:?} differs from duplicity's"
        );
    }
    // The JSON form has the same entries.
    let r = ws
        .run(
            Tool::Ours,
            enc,
            &["list-current-files", "--json", &ws.url("repo")],
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.output()));
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), listing(&ws, Tool::Ours, enc, None).len());
    assert_eq!(files[0]["path"], ".");
    assert_eq!(files[0]["type"], "dir");
}

#[test]
fn list_current_files_matches_duplicity_on_our_chain() {
    listings_agree("list-ours", Tool::Ours, Enc::Pass(PASS));
}

#[test]
fn list_current_files_matches_duplicity_on_its_chain() {
    listings_agree("list-dup", Tool::Duplicity, Enc::Plain);
}

fn verify(ws: &Ws, tool: Tool, enc: Enc, src: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(ws.url("repo"));
    args.push(src.to_string_lossy().into_owned());
    ws.run(tool, enc, &args)
}

/// Both tools verify the chain, first unchanged (0 differences either way), then after edits (integrity
/// only: still 0; with --compare-data: the same differences, exit 1), and at an earlier time.
fn verify_agrees(name: &str, writer: Tool, enc: Enc) {
    let ws = Ws::new(name);
    let src = sample_chain(&ws, writer, enc);
    for tool in [Tool::Ours, Tool::Duplicity] {
        let r = verify(&ws, tool, enc, &src, &["--compare-data"]);
        assert_eq!(
            r.code,
            Some(0),
            "{tool:?} verify of an unchanged tree:\n{}",
            r.output()
        );
        let lines = verify_lines(&r.stdout);
        assert_eq!(lines.len(), 1, "{:?}", lines);
        assert!(lines[0].ends_with(" 0 differences found."), "{lines:?}");
    }
    // Edits: content with the same size and mtime kept, a chmod, a new file, a deleted file, a
    // retargeted symlink, a touched file.
    let mtime_of = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        fs::symlink_metadata(p).unwrap().mtime()
    };
    let a = src.join("a.txt");
    let m = mtime_of(&a);
    let len = fs::metadata(&a).unwrap().len() as usize;
    write_file(&a, &vec![b'X'; len], 0o644, m);
    chmod(&src.join("ro.txt"), 0o400);
    write_file(&src.join("brand-new.txt"), b"new\n", 0o644, 1_600_000_000);
    fs::remove_file(src.join("Z")).unwrap();
    fs::remove_file(src.join("dangling")).unwrap();
    symlink("elsewhere", &src.join("dangling"));
    set_mtime(&src.join("_u"), 1_234_567_890);
    set_dir_mtimes(&src, 1_650_000_002);
    let ours = verify(&ws, Tool::Ours, enc, &src, &["--compare-data"]);
    let theirs = verify(&ws, Tool::Duplicity, enc, &src, &["--compare-data"]);
    assert_eq!(ours.code, Some(1), "{}", ours.output());
    assert_eq!(theirs.code, Some(1), "{}", theirs.output());
    let (lo, lt) = (verify_lines(&ours.stdout), verify_lines(&theirs.stdout));
    assert_eq!(lo, lt, "verify --compare-data differs from duplicity's");
    assert!(lo.len() >= 6, "{lo:?}");
    // Integrity only: no differences, exit 0, same counts as duplicity.
    let ours = verify(&ws, Tool::Ours, enc, &src, &[]);
    let theirs = verify(&ws, Tool::Duplicity, enc, &src, &[]);
    assert_eq!(
        (ours.code, theirs.code),
        (Some(0), Some(0)),
        "{}\n{}",
        ours.output(),
        theirs.output()
    );
    assert_eq!(verify_lines(&ours.stdout), verify_lines(&theirs.stdout));
    // An earlier state compared with the tree of that step.
    let old = ws.p("step0");
    sample_at(&old, 0);
    let r = verify(
        &ws,
        Tool::Ours,
        enc,
        &old,
        &["--compare-data", "-t", &(t(0) + 50).to_string()],
    );
    assert_eq!(
        r.code,
        Some(0),
        "verify at t(0) against the step-0 tree:\n{}",
        r.output()
    );
    // JSON.
    let r = verify(&ws, Tool::Ours, enc, &src, &["--compare-data", "--json"]);
    assert_eq!(r.code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["differences"].as_array().unwrap().len(), lo.len() - 1);
}

#[test]
fn verify_matches_duplicity_on_our_chain() {
    verify_agrees("verify-ours", Tool::Ours, Enc::Pass(PASS));
}

#[test]
fn verify_matches_duplicity_on_its_chain() {
    verify_agrees("verify-dup", Tool::Duplicity, Enc::Plain);
}
