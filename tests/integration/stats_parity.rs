//! Parity with stock duplicity 3.2.1 (issue 13) of what a backup counts and of what becomes of
//! `--jsonstat` files: the "Backup Statistics" block field for field for the same backups of the same
//! tree (new, changed and deleted files, directories, symlinks), and remove-*/cleanup deleting the
//! jsonstat files with their sets, remotely and in the archive dir, as 3.2.1 does.

use std::path::Path;

use duplicity_charm::engine::commands::jsonstat::OrderedJson;
use duplicity_charm::engine::repository::{Encryption, Repository, RepositoryConfig};

use crate::support::*;

/// The lines of the "Backup Statistics" block in `out` (between its rulers), as (field, rest).
fn statistics(out: &str) -> Vec<(String, String)> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.contains("[ Backup Statistics ]"))
        .skip(1);
    let mut fields = Vec::new();
    for l in lines.by_ref() {
        if l.starts_with("-----") {
            return fields;
        }
        let (k, v) = l.split_once(' ').unwrap_or((l, ""));
        fields.push((k.to_string(), v.to_string()));
    }
    panic!("no complete statistics block in:\n{out}");
}

/// Fields whose value depends on the clock or on the bytes written (compression, container).
const UNCOMPARABLE: [&str; 4] = [
    "StartTime",
    "EndTime",
    "ElapsedTime",
    "TotalDestinationSizeChange",
];

#[test]
fn backup_statistics_equal_duplicity3_field_for_field() {
    let ws = Ws::new("stats-parity");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    let (ours_url, dup_url) = (ws.url("repo-ours"), ws.url("repo-dup"));
    for step in 0..=2i64 {
        if step > 0 {
            mutate(&src, step);
        }
        let kind = if step == 0 { "full" } else { "incremental" };
        let time = t(step).to_string();
        let mine = ours(&ws, &[kind, "--current-time", &time, s, &ours_url]).ok();
        let theirs = dup3(&ws, &[kind, "--current-time", &time, s, &dup_url]).ok();
        let (a, b) = (statistics(&mine.stdout), statistics(&theirs.stdout));
        let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&a),
            names(&b),
            "{kind} {step}: the same fields in the same order"
        );
        for ((k, va), (_, vb)) in a.iter().zip(&b) {
            if UNCOMPARABLE.contains(&k.as_str()) {
                continue;
            }
            if k == "RawDeltaSize" && step > 0 {
                // A delta's bytes depend on how the encoder frames its commands (ours is not
                // librsync): the same changes, within 2%.
                let n = |v: &str| v.split(' ').next().unwrap().parse::<f64>().unwrap();
                let (x, y) = (n(va), n(vb));
                assert!((x - y).abs() <= y * 0.02, "{kind} {step}: {k} {va} vs {vb}");
                continue;
            }
            assert_eq!(
                va, vb,
                "{kind} {step}: {k}\nours:\n{}\nduplicity 3.2.1:\n{}",
                mine.stdout, theirs.stdout
            );
        }
        // The counts are not all zero: the comparison means something.
        let field = |k: &str| a.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_ne!(field("DeltaEntries"), "0", "{step}: {}", mine.stdout);
        if step == 2 {
            assert_ne!(field("DeletedFiles"), "0", "{}", mine.stdout);
            assert_ne!(field("ChangedFiles"), "0", "{}", mine.stdout);
        }
    }
}

/// Every file name under `dir` (recursively) that names a jsonstat file, sorted.
fn jsonstat_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir)
        .into_iter()
        .filter_map(|(p, _)| {
            let n = p.file_name()?.to_string_lossy().into_owned();
            n.contains(".jsonstat").then_some(n)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn remove_and_cleanup_treat_jsonstat_files_as_duplicity3_does() {
    let ws = Ws::new("jsonstat-retention");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    let (ours_url, dup_url) = (ws.url("repo-ours"), ws.url("repo-dup"));
    let both = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.push(&ours_url);
        ours(&ws, &a).ok();
        let mut b: Vec<&str> = args.to_vec();
        b.push(&dup_url);
        dup3(&ws, &b).ok();
    };
    // Two chains of a full and an incremental each, every set with its jsonstat file.
    for (step, kind) in [
        (0, "full"),
        (1, "incremental"),
        (2, "full"),
        (3, "incremental"),
    ] {
        if step == 1 || step == 3 {
            mutate(&src, if step == 1 { 1 } else { 2 });
        }
        let time = t(step).to_string();
        both(&[kind, "--jsonstat", "--current-time", &time, s]);
    }
    let listing = |repo: &str| repo_files(&ws, repo);
    assert_eq!(listing("repo-ours"), listing("repo-dup"));
    assert_eq!(jsonstat_files(&ws.p("repo-ours")).len(), 4);

    // Each set's statistics read back (duplicity 3's `get_jsonstat`): from our archive dir's copies,
    // and from duplicity 3's target, whose archive dir is not ours.
    for (url, dir) in [
        (&ours_url, ws.cache(Tool::Ours)),
        (&dup_url, ws.p("elsewhere")),
    ] {
        let mut config = RepositoryConfig::new(url.as_str());
        config.archive_dir = Some(dir);
        config.keys.encryption = Encryption::None;
        let stats = Repository::open(config)
            .unwrap()
            .primary_chain_jsonstats()
            .unwrap();
        let keys: Vec<&str> = stats.iter().map(|(k, _)| k.as_str()).collect();
        let want = [
            format!("full-{}", stamp(t(2))),
            format!("inc-{}", stamp(t(3))),
        ];
        assert_eq!(keys, want, "{url}");
        let inc = serde_json::to_value(&stats[1].1).unwrap();
        assert_eq!(inc["backup_meta"]["action"], "inc", "{url}");
        assert!(inc["DeletedFiles"].as_u64().unwrap() > 0, "{url}: {inc}");
        // Keys in the file's order, as duplicity 3 prints them again.
        let OrderedJson::Object(fields) = &stats[1].1 else {
            panic!("{url}: not an object")
        };
        assert_eq!(fields[0].0, "Filename", "{url}");
    }

    // remove-all-but-n-full 1: the old chain's jsonstat files go with it, in the target and in the
    // archive dir; the kept chain keeps its own.
    both(&["remove-all-but-n-full", "1", "--force"]);
    assert_eq!(listing("repo-ours"), listing("repo-dup"));
    let kept = vec![
        format!("duplicity-full.{}.jsonstat.gz", stamp(t(2))),
        format!(
            "duplicity-inc.{}.to.{}.jsonstat.gz",
            stamp(t(2)),
            stamp(t(3))
        ),
    ];
    assert_eq!(jsonstat_files(&ws.p("repo-ours")), kept);
    assert_eq!(
        jsonstat_files(&ws.cache(Tool::Ours)),
        jsonstat_files(&ws.p("cache-dup3")),
        "the archive dirs keep the same jsonstat copies"
    );
    assert_eq!(jsonstat_files(&ws.cache(Tool::Ours)), kept);

    // A jsonstat file without its set (left by an older remove-*): an incomplete set to both tools,
    // which cleanup deletes.
    let stray = format!("duplicity-inc.{}.to.{}.jsonstat.gz", stamp(T0), stamp(t(1)));
    for repo in ["repo-ours", "repo-dup"] {
        std::fs::copy(ws.p(repo).join(&kept[1]), ws.p(repo).join(&stray)).unwrap();
    }
    let status_ours = ours(&ws, &["collection-status", &ours_url]).ok();
    let status_dup = dup3(&ws, &["collection-status", &dup_url]).ok();
    // 3.2.1 counts it as incomplete (and, a quirk of its jsonstat handling, also lists an empty
    // orphaned set); ours warns of the incomplete set.
    let warned = "Warning, found incomplete backup sets";
    assert!(
        status_dup.output().contains("1 incomplete backup set(s)"),
        "{}",
        status_dup.output()
    );
    assert!(
        status_ours.output().contains(warned),
        "{}",
        status_ours.output()
    );
    both(&["cleanup", "--force"]);
    assert_eq!(listing("repo-ours"), listing("repo-dup"));
    assert_eq!(jsonstat_files(&ws.p("repo-ours")), kept);
    let status_ours = ours(&ws, &["collection-status", &ours_url]).ok();
    assert!(
        !status_ours.output().contains("Warning"),
        "{}",
        status_ours.output()
    );

    // What is left restores with both tools.
    let dst = ws.p("restored");
    ours(&ws, &["restore", &dup_url, dst.to_str().unwrap()]).ok();
    assert_same_tree(&src, &dst, "our restore after removal and cleanup");
}
