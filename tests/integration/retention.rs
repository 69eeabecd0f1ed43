//! Retention side by side with stock duplicity 0.8.22: both tools build identically named collections
//! with `--current-time` (full t0, inc, inc, full t0+1000, inc, full t0+2000); each remove-*/cleanup
//! command runs in both tools on copies of the same collection, first without `--force` (nothing may
//! change) and then with it; the remaining files must be identical, and our archive dir must hold exactly
//! the copies of the remaining metadata.

use crate::support::*;
use std::fs;

const TIMES: [(&str, i64); 6] = [
    ("full", T0),
    ("inc", T0 + 100),
    ("inc", T0 + 200),
    ("full", T0 + 1000),
    ("inc", T0 + 1100),
    ("full", T0 + 2000),
];

fn args(cmd: &[String], url: &str, force: bool) -> Vec<String> {
    let mut a: Vec<String> = cmd.to_vec();
    a.push(url.to_string());
    if force {
        a.push("--force".into());
    }
    a
}

/// Runs `cmd` (subcommand and its leading argument) with `tool` on a fresh copy of `base`; returns the
/// remote names after the run without --force and after the one with it.
fn run_on_copy(
    ws: &Ws,
    tool: Tool,
    base: &str,
    copy: &str,
    cmd: &[String],
) -> (Vec<String>, Vec<String>) {
    copy_tree(&ws.p(base), &ws.p(copy));
    let url = ws.url(copy);
    let enc = Enc::Plain;
    // Fill the archive dir first, as after backups on this machine (every chain's metadata: ours syncs
    // only the chain in use by default, as duplicity 3).
    let fill: &[&str] = match tool {
        Tool::Ours => &["list-current-files", "--metadata-sync-mode", "full", &url],
        Tool::Duplicity => &["list-current-files", &url],
    };
    ws.run(tool, enc, fill).ok();
    let before = dir_names(&ws.p(copy));
    let dry = ws.run(tool, enc, &args(cmd, &url, false)).ok();
    let after_dry = dir_names(&ws.p(copy));
    assert_eq!(
        before,
        after_dry,
        "{tool:?} {cmd:?} without --force changed the target:\n{}",
        dry.output()
    );
    let forced = ws.run(tool, enc, &args(cmd, &url, true)).ok();
    let after = dir_names(&ws.p(copy));
    if tool == Tool::Ours {
        // The archive dir holds the copies of the remaining metadata, nothing else.
        let cached = dir_names(&ws.cache(Tool::Ours).join(md5_hex(&url)));
        let want: Vec<String> = after
            .iter()
            .filter(|n| n.contains(".manifest") || n.contains(".sigtar"))
            .cloned()
            .collect();
        assert_eq!(
            cached,
            want,
            "our archive dir is out of step after {cmd:?}:\n{}",
            forced.output()
        );
    }
    (after_dry, after)
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(s.as_bytes()))
}

fn side_by_side(ws: &Ws, base: &str, cmd: &[&str], expect_left: Option<usize>) -> Vec<String> {
    let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let tag = cmd.join("-").replace(' ', "_");
    let (dry_o, ours) = run_on_copy(ws, Tool::Ours, base, &format!("{base}-{tag}-ours"), &cmd);
    let (dry_d, theirs) = run_on_copy(
        ws,
        Tool::Duplicity,
        base,
        &format!("{base}-{tag}-dup"),
        &cmd,
    );
    assert_eq!(dry_o, dry_d);
    assert_eq!(
        ours, theirs,
        "{cmd:?} on {base}: we leave other files than duplicity"
    );
    if let Some(n) = expect_left {
        assert_eq!(ours.len(), n, "{cmd:?} on {base}: {ours:?}");
    }
    ours
}

#[test]
fn retention_leaves_the_same_files_as_duplicity() {
    let ws = Ws::new("retention");
    build_collection(&ws, Tool::Ours, Enc::Plain, "built-ours", &TIMES);
    build_collection(&ws, Tool::Duplicity, Enc::Plain, "built-dup", &TIMES);
    let names = dir_names(&ws.p("built-ours"));
    assert_eq!(
        names,
        dir_names(&ws.p("built-dup")),
        "the tools named the same collection differently"
    );
    assert_eq!(names.len(), 18);
    for base in ["built-ours", "built-dup"] {
        fs::write(ws.p(base).join("notes.txt"), b"not duplicity's\n").unwrap();
        let s = |k: i64| (T0 + k).to_string();
        // Chain 1 (ends +200) goes; +1000 is kept because +1100 needs it.
        side_by_side(&ws, base, &["remove-older-than", &s(1050)], Some(10));
        // Nothing older than +150 can go (+0, +100 are needed by +200).
        side_by_side(&ws, base, &["remove-older-than", &s(150)], Some(19));
        side_by_side(&ws, base, &["remove-older-than", &s(1150)], Some(4));
        side_by_side(&ws, base, &["remove-all-but-n-full", "1"], Some(4));
        side_by_side(&ws, base, &["remove-all-but-n-full", "2"], Some(10));
        side_by_side(&ws, base, &["remove-all-but-n-full", "9"], Some(19));
        side_by_side(&ws, base, &["remove-all-inc-of-but-n-full", "1"], Some(10));
        side_by_side(&ws, base, &["remove-all-inc-of-but-n-full", "2"], Some(13));
    }
}

#[test]
fn cleanup_leaves_the_same_files_as_duplicity() {
    let ws = Ws::new("cleanup");
    build_collection(&ws, Tool::Ours, Enc::Plain, "base", &TIMES);
    let repo = ws.p("base");
    let st = |k: i64| stamp(T0 + k);
    // An interrupted inc after the last full (volumes, no manifest), an orphaned new-signatures file
    // and a stranger.
    let vol = fs::read(repo.join(format!(
        "duplicity-inc.{}.to.{}.vol1.difftar.gz",
        st(1000),
        st(1100)
    )))
    .unwrap();
    for v in 1..=2 {
        fs::write(
            repo.join(format!(
                "duplicity-inc.{}.to.{}.vol{v}.difftar.gz",
                st(2000),
                st(2100)
            )),
            &vol,
        )
        .unwrap();
    }
    let sig = fs::read(repo.join(format!(
        "duplicity-new-signatures.{}.to.{}.sigtar.gz",
        st(1000),
        st(1100)
    )))
    .unwrap();
    fs::write(
        repo.join(format!(
            "duplicity-new-signatures.{}.to.{}.sigtar.gz",
            st(500),
            st(600)
        )),
        sig,
    )
    .unwrap();
    fs::write(repo.join("notes.txt"), b"mine\n").unwrap();
    let left = side_by_side(&ws, "base", &["cleanup"], Some(19));
    assert!(left.contains(&"notes.txt".to_string()));
    // Nothing more to clean.
    let r = ws
        .run(
            Tool::Ours,
            Enc::Plain,
            &["cleanup", &ws.url("base-cleanup-ours")],
        )
        .ok();
    assert!(
        r.stdout.contains("No extraneous files found"),
        "{}",
        r.output()
    );
}

#[test]
fn retention_plan_as_json() {
    let ws = Ws::new("retention-json");
    build_collection(&ws, Tool::Ours, Enc::Pass(PASS), "repo", &TIMES);
    let url = ws.url("repo");
    let before = dir_names(&ws.p("repo"));
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &["remove-all-but-n-full", "2", &url, "--json"],
        )
        .ok();
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.output()));
    assert_eq!(v["command"], "remove-all-but-n-full");
    assert_eq!(v["remove_time"]["epoch"], T0 + 1000);
    assert!(v["applied"].is_null());
    let dels = v["deletions"].as_array().unwrap();
    let remote: Vec<&str> = dels
        .iter()
        .filter(|d| d["location"] == "remote")
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(remote.len(), 9, "{dels:?}");
    assert!(remote.iter().all(|n| n.contains(&stamp(T0))
        || n.contains(&stamp(T0 + 100))
        || n.contains(&stamp(T0 + 200))));
    assert!(dels.iter().all(|d| d["reason"] == "old-chain"
        || d["reason"] == "old-signatures"
        || d["reason"] == "cache-copy"));
    assert_eq!(dir_names(&ws.p("repo")), before);
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &["remove-all-but-n-full", "2", &url, "--json", "--force"],
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["applied"]["remote_deleted"], 9);
    assert_eq!(dir_names(&ws.p("repo")).len(), before.len() - 9);
    // What remains still restores with duplicity.
    let out = ws.p("out");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(PASS),
        "repo",
        &out,
        Some(T0 + 1100),
        &[],
    );
    assert!(out.join("f4.txt").exists());
}

/// A removal time after the active chain's end: duplicity 0.8.22 keeps the active chain but, with its
/// archive dir filled, deletes the *remote* signatures of that chain (it keeps the local copy as the
/// matched one), so a later incremental from another machine must start a new full. We keep them: the
/// only difference from duplicity's result.
#[test]
fn remove_older_than_after_the_active_chain_keeps_its_signatures() {
    let ws = Ws::new("retention-active");
    build_collection(&ws, Tool::Ours, Enc::Plain, "base", &TIMES);
    let cmd = ["remove-older-than".to_string(), (T0 + 5000).to_string()];
    let (_, ours) = run_on_copy(&ws, Tool::Ours, "base", "ours", &cmd);
    let (_, theirs) = run_on_copy(&ws, Tool::Duplicity, "base", "dup", &cmd);
    let active_sigs: Vec<String> = ours
        .iter()
        .filter(|n| n.contains("signatures"))
        .cloned()
        .collect();
    assert_eq!(
        active_sigs,
        [format!(
            "duplicity-full-signatures.{}.sigtar.gz",
            stamp(T0 + 2000)
        )]
    );
    let mut expected = theirs.clone();
    expected.extend(active_sigs);
    expected.sort();
    assert_eq!(ours, expected, "duplicity left {theirs:?}");
    // Our result is still a working chain: an incremental continues it.
    let src = ws.p("src-base");
    write_file(&src.join("later.txt"), b"later\n", 0o644, 1_700_000_000);
    let r = ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Plain,
        &src,
        "ours",
        T0 + 6000,
        &[],
    );
    assert!(
        dir_names(&ws.p("ours"))
            .iter()
            .any(|n| n.starts_with("duplicity-inc.")),
        "{}",
        r.output()
    );
}
