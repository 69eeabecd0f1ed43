//! Backups killed with SIGKILL at exact points (the test-only hook `DUPLICITY_CHARM_TEST_KILL_AT` makes
//! the process kill itself there: during a volume, between volumes, after the last volume, after the
//! signatures and before the manifest), on an incremental and on a full. Afterwards: the earlier sets
//! restore bit-exact with us and with duplicity, both tools read the collection, the next backup is a
//! clean incremental of the intact chain, and `cleanup --force` removes every leftover (volumes of the
//! dead set, its signatures, `.part` uploads, the dead work directory in the archive dir).
//! The hook exists only with the cargo feature `test-hooks` (scripts/test.sh turns it on).
#![cfg(feature = "test-hooks")]

use crate::support::*;
use std::fs;

/// Enough incompressible data for several 1 MiB volumes.
fn grow(src: &std::path::Path, step: u64) {
    for i in 0..3 {
        write_file(
            &src.join(format!("data-{step}-{i}.bin")),
            &random_bytes(step * 10 + i, 700_000),
            0o644,
            1_600_000_000 + step as i64,
        );
    }
    write_file(
        &src.join("log.txt"),
        &text_bytes(step, 5000),
        0o644,
        1_600_000_100 + step as i64,
    );
    set_mtime(src, 1_650_000_000 + step as i64);
}

fn leftovers(ws: &Ws, dead: i64) -> Vec<String> {
    let mut v: Vec<String> = dir_names(&ws.p("repo"))
        .into_iter()
        .filter(|n| n.contains(&stamp(dead)) || n.ends_with(".part"))
        .collect();
    let cache = ws.cache(Tool::Ours);
    for sub in dir_names(&cache) {
        for n in dir_names(&cache.join(&sub)) {
            if n.starts_with("duplicity-charm-") {
                v.push(format!("archive dir: {n}"));
            }
        }
    }
    v
}

fn cleanup(ws: &Ws, enc: Enc, dead: i64) {
    let before = leftovers(ws, dead);
    assert!(
        !before.is_empty(),
        "the killed run left nothing to clean up?"
    );
    let dry = ws.run(Tool::Ours, enc, &["cleanup", &ws.url("repo")]).ok();
    assert_eq!(
        leftovers(ws, dead),
        before,
        "cleanup without --force deleted something:\n{}",
        dry.output()
    );
    let r = ws
        .run(Tool::Ours, enc, &["cleanup", "--force", &ws.url("repo")])
        .ok();
    assert_eq!(
        leftovers(ws, dead),
        Vec::<String>::new(),
        "cleanup --force left these:\n{}",
        r.output()
    );
}

fn interrupted(name: &str, kind: &str, point: &str, enc: Enc, cleanup_first: bool) {
    let ws = Ws::new(name);
    let src = ws.p("src");
    fs::create_dir_all(&src).unwrap();
    grow(&src, 0);
    let vs = ["--volsize", "1"];
    ws.backup(Tool::Ours, "full", enc, &src, "repo", t(0), &vs);
    grow(&src, 1);
    ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(1), &vs);
    let state1 = ws.p("state1");
    copy_tree(&src, &state1);
    grow(&src, 2);

    // The killed run.
    let mut args: Vec<String> = vec![kind.into(), "--current-time".into(), t(2).to_string()];
    args.extend(vs.iter().map(|s| s.to_string()));
    args.push(src.to_string_lossy().into_owned());
    args.push(ws.url("repo"));
    let r = ws.run_env(
        Tool::Ours,
        enc,
        &args,
        &[("DUPLICITY_CHARM_TEST_KILL_AT", point)],
    );
    assert_eq!(
        r.code,
        None,
        "the backup was not killed at {point}:\n{}",
        r.output()
    );
    if point.starts_with("during-volume") {
        // What a kill inside the file backend's copy leaves beside the target's files.
        let part = format!(
            ".duplicity-inc.{}.to.{}.vol9.difftar.gz.part",
            stamp(t(1)),
            stamp(t(2))
        );
        fs::write(ws.p("repo").join(part), b"half a volume").unwrap();
    }

    // Earlier sets restore bit-exact, with both tools.
    for tool in [Tool::Ours, Tool::Duplicity] {
        let out = ws.p(&format!("restore-1-{tool:?}"));
        ws.restore(tool, enc, "repo", &out, None, &[]);
        assert_same_tree(
            &state1,
            &out,
            &format!("{tool:?} restore after a kill at {point}"),
        );
    }
    // Both read the collection. The chain ending at t(1) stays primary, except when an incremental's
    // signatures were uploaded and its manifest was not: then, as in duplicity's view, no chain pairs
    // with the signatures until the next backup or cleanup removes that file.
    ws.run(
        Tool::Duplicity,
        enc,
        &["collection-status", &ws.url("repo")],
    )
    .ok();
    let st = ws
        .run(
            Tool::Ours,
            enc,
            &["collection-status", "--json", &ws.url("repo")],
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    if !(kind == "incremental" && point == "before-manifest") {
        assert_eq!(v["primary_chain"]["end"]["epoch"], t(1), "{v}");
    }
    // Volumes are sealed and uploaded on worker threads: a kill during volume 2 may come before
    // volume 1 is stored.
    let stored = dir_names(&ws.p("repo"))
        .iter()
        .any(|n| n.starts_with("duplicity-") && n.contains(&stamp(t(2))));
    assert_eq!(
        !v["incomplete_sets"].as_array().unwrap().is_empty(),
        stored,
        "{v}"
    );

    if cleanup_first {
        cleanup(&ws, enc, t(2));
    }
    // The next backup continues the intact chain.
    grow(&src, 3);
    let r = ws.backup(Tool::Ours, "incremental", enc, &src, "repo", t(3), &vs);
    let inc = format!("duplicity-inc.{}.to.{}.manifest", stamp(t(1)), stamp(t(3)));
    assert!(
        dir_names(&ws.p("repo")).iter().any(|n| n.starts_with(&inc)),
        "the next backup did not continue the chain:\n{}",
        r.output()
    );
    if !cleanup_first {
        cleanup(&ws, enc, t(2));
    }
    // Duplicity reads the collection as whole and clean, and both tools restore the new state.
    let d = ws
        .run(
            Tool::Duplicity,
            enc,
            &["collection-status", &ws.url("repo")],
        )
        .ok();
    assert!(
        d.stdout
            .contains("No orphaned or incomplete backup sets found."),
        "{}",
        d.output()
    );
    assert!(
        d.stdout.contains("Found primary backup chain"),
        "{}",
        d.output()
    );
    for tool in [Tool::Ours, Tool::Duplicity] {
        let out = ws.p(&format!("restore-3-{tool:?}"));
        ws.restore(tool, enc, "repo", &out, None, &[]);
        assert_same_tree(
            &src,
            &out,
            &format!("{tool:?} restore of the backup after the kill"),
        );
        let out = ws.p(&format!("restore-1b-{tool:?}"));
        ws.restore(tool, enc, "repo", &out, Some(t(1) + 10), &[]);
        assert_same_tree(
            &state1,
            &out,
            &format!("{tool:?} restore of t(1) at the end"),
        );
    }
}

#[test]
fn killed_incremental_during_a_volume() {
    interrupted(
        "kill-during-vol",
        "incremental",
        "during-volume-2",
        Enc::Plain,
        false,
    );
}

#[test]
fn killed_incremental_between_volumes() {
    interrupted(
        "kill-between-vols",
        "incremental",
        "after-volume-1",
        Enc::Plain,
        true,
    );
}

#[test]
fn killed_incremental_after_the_last_volume() {
    interrupted(
        "kill-before-sigs",
        "incremental",
        "before-signatures",
        Enc::Pass(PASS),
        false,
    );
}

#[test]
fn killed_incremental_before_the_manifest() {
    interrupted(
        "kill-before-manifest",
        "incremental",
        "before-manifest",
        Enc::Pass(PASS),
        true,
    );
}

#[test]
fn killed_incremental_before_the_manifest_then_backup() {
    interrupted(
        "kill-before-manifest-2",
        "incremental",
        "before-manifest",
        Enc::Plain,
        false,
    );
}

#[test]
fn killed_full_before_the_manifest() {
    interrupted("kill-full", "full", "before-manifest", Enc::Plain, false);
}
