//! Full + two incrementals written by one tool and restored by the other, latest and at earlier times,
//! encrypted and not, with the default volume size and with `--volsize 1` (multivol chunks across volumes).

use crate::support::*;
use std::path::Path;

/// Writes the sample chain (full at t(0), step 1 inc at t(1), step 2 inc at t(2)) with `writer`, checks the
/// repository's file names, then restores with `reader` at the latest time, at t(1)+50 and at t(0)+50 and
/// compares each restore with the tree of that step.
pub fn chain_roundtrip(name: &str, writer: Tool, reader: Tool, enc: Enc, volsize: Option<u32>) {
    let ws = Ws::new(name);
    let src = ws.p("src");
    let vs = volsize.map(|v| v.to_string());
    let extra: Vec<&str> = match &vs {
        Some(v) => vec!["--volsize", v],
        None => vec![],
    };
    build_sample(&src);
    ws.backup(writer, "full", enc, &src, "repo", t(0), &extra);
    mutate(&src, 1);
    ws.backup(writer, "incremental", enc, &src, "repo", t(1), &extra);
    mutate(&src, 2);
    ws.backup(writer, "incremental", enc, &src, "repo", t(2), &extra);

    check_chain_names(&ws, "repo", enc, &[t(0), t(1), t(2)], volsize.is_some());

    ws.restore(reader, enc, "repo", &ws.p("latest"), None, &[]);
    assert_same_tree(
        &src,
        &ws.p("latest"),
        &format!("{writer:?} -> {reader:?} restore of the latest set"),
    );

    sample_at(&ws.p("expect1"), 1);
    ws.restore(reader, enc, "repo", &ws.p("at1"), Some(t(1) + 50), &[]);
    assert_same_tree(
        &ws.p("expect1"),
        &ws.p("at1"),
        &format!("{writer:?} -> {reader:?} restore -t t1+50"),
    );

    sample_at(&ws.p("expect0"), 0);
    ws.restore(reader, enc, "repo", &ws.p("at0"), Some(t(0) + 50), &[]);
    assert_same_tree(
        &ws.p("expect0"),
        &ws.p("at0"),
        &format!("{writer:?} -> {reader:?} restore -t t0+50"),
    );
}

/// The repository holds exactly one full and the incrementals linked T1 -> T2 with duplicity's names:
/// volumes, signatures and a manifest per set; with `multivol`, the full spans several volumes.
pub fn check_chain_names(ws: &Ws, repo: &str, enc: Enc, times: &[i64], multivol: bool) {
    let files = repo_files(ws, repo);
    let (vol_sfx, man_sfx) = match enc {
        Enc::Plain => (".gz", ""),
        Enc::Pass(_) | Enc::Keys => (".gpg", ".gpg"),
    };
    let mut expect = vec![
        format!("duplicity-full.{}.manifest{man_sfx}", stamp(times[0])),
        format!("duplicity-full.{}.vol1.difftar{vol_sfx}", stamp(times[0])),
        format!(
            "duplicity-full-signatures.{}.sigtar{vol_sfx}",
            stamp(times[0])
        ),
    ];
    for w in times.windows(2) {
        let (a, b) = (stamp(w[0]), stamp(w[1]));
        expect.push(format!("duplicity-inc.{a}.to.{b}.manifest{man_sfx}"));
        expect.push(format!("duplicity-inc.{a}.to.{b}.vol1.difftar{vol_sfx}"));
        expect.push(format!(
            "duplicity-new-signatures.{a}.to.{b}.sigtar{vol_sfx}"
        ));
    }
    if multivol {
        // ~5.7 MB of random data at --volsize 1.
        expect.push(format!(
            "duplicity-full.{}.vol5.difftar{vol_sfx}",
            stamp(times[0])
        ));
    }
    for e in &expect {
        assert!(
            files.contains(e),
            "repository lacks {e}; it has:\n  {}",
            files.join("\n  ")
        );
    }
    let stray: Vec<&String> = files
        .iter()
        .filter(|f| !f.starts_with("duplicity-") || f.ends_with(".part") || f.contains(".tmp"))
        .collect();
    assert!(
        stray.is_empty(),
        "unexpected files in the repository: {stray:?}"
    );
}

fn check(writer: Tool, reader: Tool, enc: Enc, volsize: Option<u32>) {
    let name = format!(
        "{}-{}-{}{}",
        if writer == Tool::Ours { "o" } else { "d" },
        if reader == Tool::Ours { "o" } else { "d" },
        if enc == Enc::Plain { "plain" } else { "enc" },
        if volsize.is_some() { "-v1" } else { "" }
    );
    chain_roundtrip(&name, writer, reader, enc, volsize);
}

#[test]
fn ours_to_duplicity_plain() {
    check(Tool::Ours, Tool::Duplicity, Enc::Plain, None);
}

#[test]
fn ours_to_duplicity_encrypted() {
    check(Tool::Ours, Tool::Duplicity, Enc::Pass(PASS), None);
}

#[test]
fn ours_to_duplicity_plain_volsize1() {
    check(Tool::Ours, Tool::Duplicity, Enc::Plain, Some(1));
}

#[test]
fn ours_to_duplicity_encrypted_volsize1() {
    check(Tool::Ours, Tool::Duplicity, Enc::Pass(PASS), Some(1));
}

#[test]
fn duplicity_to_ours_plain() {
    check(Tool::Duplicity, Tool::Ours, Enc::Plain, None);
}

#[test]
fn duplicity_to_ours_encrypted() {
    check(Tool::Duplicity, Tool::Ours, Enc::Pass(PASS), None);
}

/// Trap 1: 0.8.22 writes no tar footer in `.gz` volumes.
#[test]
fn duplicity_to_ours_plain_volsize1() {
    check(Tool::Duplicity, Tool::Ours, Enc::Plain, Some(1));
}

/// Trap 1: gpg volumes carry a footer and a top-off filler.
#[test]
fn duplicity_to_ours_encrypted_volsize1() {
    check(Tool::Duplicity, Tool::Ours, Enc::Pass(PASS), Some(1));
}

#[test]
fn ours_to_ours_encrypted_volsize1() {
    check(Tool::Ours, Tool::Ours, Enc::Pass(PASS), Some(1));
}

/// The sample tree really exercises the traps it claims to (guards the fixture, not the tools).
#[test]
fn sample_tree_has_the_trap_entries() {
    let ws = Ws::new("fixture");
    let src = ws.p("s");
    build_sample(&src);
    let deep = deep_path();
    assert!(deep.len() > 200, "deep path is {} bytes", deep.len());
    assert!(format!("{LONG_DIR}/{LONG_FILE}").len() > 100);
    for p in [
        "a/b",
        "a-b",
        "a.txt",
        "naïve ü.txt",
        "dangling",
        "fifo",
        "emptydir",
        "hard",
        "f65535",
        "f65536",
    ] {
        assert!(
            std::fs::symlink_metadata(src.join(p)).is_ok(),
            "missing {p}"
        );
    }
    assert!(std::fs::symlink_metadata(pb(&src, BAD_NAME)).is_ok());
    assert_eq!(
        std::fs::metadata(src.join("big.bin")).unwrap().len(),
        3 << 20
    );
    assert!(
        !Path::new(&src.join("dangling")).exists(),
        "dangling link must dangle"
    );
}
