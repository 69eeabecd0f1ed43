//! Backup `--dry-run` (everything computed, nothing stored: neither the target nor the archive dir
//! changes) and the backup statistics as `--json`.

use crate::support::*;
use std::fs;

/// Every file below `dir` with its size and mtime, to prove nothing was touched.
fn snapshot(dir: &std::path::Path) -> Vec<(String, u64, i64)> {
    if !dir.exists() {
        return Vec::new();
    }
    use std::os::unix::fs::MetadataExt;
    walk(dir)
        .into_iter()
        .filter(|(_, m)| !m.is_dir())
        .map(|(p, m)| (show(&p), m.len(), m.mtime()))
        .collect()
}

#[test]
fn dry_run_writes_nothing_and_reports_the_files() {
    let ws = Ws::new("dry-run");
    let enc = Enc::Pass(PASS);
    let src = ws.p("src");
    build_sample(&src);
    let cache = ws.cache(Tool::Ours);

    // A dry full on an empty target: no target, no archive dir.
    let r = ws.backup(Tool::Ours, "full", enc, &src, "repo", t(0), &["--dry-run"]);
    assert!(!ws.p("repo").exists(), "dry run created the target");
    assert!(!cache.exists(), "dry run created the archive dir");
    assert!(
        r.stdout.contains("Dry run: nothing was stored"),
        "{}",
        r.output()
    );
    assert!(r
        .stdout
        .contains(&format!("duplicity-full.{}.vol1.difftar.gpg", stamp(t(0)))));
    assert!(r
        .stdout
        .contains("--------------[ Backup Statistics ]--------------"));

    ws.backup(Tool::Ours, "full", enc, &src, "repo", t(0), &[]);
    mutate(&src, 1);
    let (repo_before, cache_before) = (snapshot(&ws.p("repo")), snapshot(&cache));
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        enc,
        &src,
        "repo",
        t(1),
        &["--dry-run", "--json"],
    );
    assert_eq!(
        snapshot(&ws.p("repo")),
        repo_before,
        "dry run changed the target"
    );
    assert_eq!(
        snapshot(&cache),
        cache_before,
        "dry run changed the archive dir"
    );
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", r.output()));
    assert_eq!(v["type"], "incremental");
    assert_eq!(v["dry_run"], true);
    assert!(
        v["statistics"]["ChangedFiles"].as_u64().unwrap() >= 3,
        "{v}"
    );
    assert!(v["statistics"]["NewFiles"].as_u64().unwrap() >= 2, "{v}");
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        files.last().unwrap(),
        &format!(
            "duplicity-inc.{}.to.{}.manifest.gpg",
            stamp(t(0)),
            stamp(t(1))
        )
    );

    // Without the archive dir (another machine): the dry incremental reads the target's signatures.
    fs::remove_dir_all(&cache).unwrap();
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        enc,
        &src,
        "repo",
        t(1),
        &["--dry-run", "--json"],
    );
    assert!(!cache.exists(), "dry run recreated the archive dir");
    let v2: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v2["statistics"]["ChangedFiles"],
        v["statistics"]["ChangedFiles"]
    );
    assert_eq!(v2["files"], v["files"]);

    // The real incremental then writes what the dry run announced, and its statistics agree.
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        enc,
        &src,
        "repo",
        t(1),
        &["--json"],
    );
    let real: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(real["dry_run"], false);
    assert_eq!(real["files"], v["files"]);
    for k in [
        "SourceFiles",
        "NewFiles",
        "ChangedFiles",
        "DeletedFiles",
        "DeltaEntries",
        "RawDeltaSize",
    ] {
        assert_eq!(real["statistics"][k], v["statistics"][k], "{k}");
    }
    let names = dir_names(&ws.p("repo"));
    for f in real["files"].as_array().unwrap() {
        assert!(
            names.contains(&f.as_str().unwrap().to_string()),
            "{f} not stored"
        );
    }
    let out = ws.p("out");
    ws.restore(Tool::Duplicity, enc, "repo", &out, None, &[]);
    assert_same_tree(&src, &out, "duplicity restore after the dry runs");
}
