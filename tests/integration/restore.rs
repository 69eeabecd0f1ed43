//! Restore options and refusals: `--file-to-restore` of a file in the last volume (trap 5), a non-empty
//! DST without `--force`, a wrong passphrase.

use crate::support::*;
use std::fs;

/// Six 400 KB random files and `zz/last.txt` at `--volsize 1`: the last file is in the last of several
/// volumes, and the manifest's bounds must say so; `reader` restores just that file.
fn file_to_restore_in_last_volume(name: &str, writer: Tool, reader: Tool) {
    let ws = Ws::new(name);
    let src = ws.p("src");
    for i in 1..=6u64 {
        write_file(
            &src.join(format!("r{i}.bin")),
            &random_bytes(200 + i, 400_000),
            0o644,
            1_600_000_000 + i as i64,
        );
    }
    write_file(
        &src.join("zz/last.txt"),
        &text_bytes(300, 5000),
        0o600,
        1_600_000_100,
    );
    set_dir_mtimes(&src, 1_650_000_000);
    ws.backup(
        writer,
        "full",
        Enc::Plain,
        &src,
        "repo",
        t(0),
        &["--volsize", "1"],
    );

    let manifest = fs::read(
        ws.p("repo")
            .join(format!("duplicity-full.{}.manifest", stamp(t(0)))),
    )
    .unwrap();
    let vols = manifest_volume_bounds(&manifest);
    assert!(
        vols.len() >= 2,
        "expected several volumes, manifest:\n{}",
        String::from_utf8_lossy(&manifest)
    );
    let (first, last) = vols.last().unwrap();
    assert_eq!(last.as_str(), "zz/last.txt", "last volume's EndingPath");
    assert!(
        first.as_str() < "zz",
        "last volume starts at {first}: then zz/last.txt is not only in it"
    );

    let out = ws.p("one.txt");
    ws.restore(
        reader,
        Enc::Plain,
        "repo",
        &out,
        None,
        &["--file-to-restore", "zz/last.txt"],
    );
    assert_same_entry(
        &src.join("zz/last.txt"),
        &out,
        &format!("{writer:?} -> {reader:?} --file-to-restore"),
    );

    // A whole directory too.
    let outdir = ws.p("zz-out");
    ws.restore(
        reader,
        Enc::Plain,
        "repo",
        &outdir,
        None,
        &["--file-to-restore", "zz"],
    );
    assert_same_tree(
        &src.join("zz"),
        &outdir,
        &format!("{writer:?} -> {reader:?} --file-to-restore zz"),
    );
}

#[test]
fn file_to_restore_last_volume_ours_to_duplicity() {
    file_to_restore_in_last_volume("ftr-od", Tool::Ours, Tool::Duplicity);
}

#[test]
fn file_to_restore_last_volume_duplicity_to_ours() {
    file_to_restore_in_last_volume("ftr-do", Tool::Duplicity, Tool::Ours);
}

#[test]
fn harness_file_to_restore_last_volume_duplicity_only() {
    file_to_restore_in_last_volume("ftr-dd", Tool::Duplicity, Tool::Duplicity);
}

#[test]
fn restore_refuses_non_empty_dst_without_force() {
    let ws = Ws::new("nonempty");
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(Tool::Ours, "full", Enc::Plain, &src, "repo", t(0), &[]);

    let dst = ws.p("dst");
    write_file(
        &dst.join("keep.txt"),
        b"do not touch\n",
        0o644,
        1_600_000_000,
    );
    let r = ws
        .restore_try(Tool::Ours, Enc::Plain, "repo", &dst, None, &[])
        .fails();
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "want one clear line on stderr:\n{}",
        r.stderr
    );
    assert_eq!(fs::read(dst.join("keep.txt")).unwrap(), b"do not touch\n");
    let left: Vec<_> = fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("keep.txt")],
        "a refused restore wrote into DST"
    );

    ws.restore(Tool::Ours, Enc::Plain, "repo", &dst, None, &["--force"]);
    assert_same_entry(
        &src.join("a.txt"),
        &dst.join("a.txt"),
        "restore --force into a non-empty DST",
    );
    assert_same_entry(
        &src.join("big.bin"),
        &dst.join("big.bin"),
        "restore --force into a non-empty DST",
    );
}

fn wrong_passphrase(name: &str, writer: Tool) {
    let ws = Ws::new(name);
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(writer, "full", Enc::Pass(PASS), &src, "repo", t(0), &[]);
    let dst = ws.p("dst");
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass("not the passphrase"),
            "repo",
            &dst,
            None,
            &[],
        )
        .fails();
    let msg = r.stderr.to_lowercase();
    assert!(
        msg.contains("passphrase") || msg.contains("decrypt"),
        "the message should say the passphrase or decryption failed:\n{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "want one clear line on stderr:\n{}",
        r.stderr
    );
    assert!(
        !dst.join("a.txt").exists() || fs::read(dst.join("a.txt")).unwrap() == b"hello world\n",
        "garbage was written"
    );
}

#[test]
fn wrong_passphrase_fails_clearly_on_duplicity_archive() {
    wrong_passphrase("wrongpass-d", Tool::Duplicity);
}

#[test]
fn wrong_passphrase_fails_clearly_on_own_archive() {
    wrong_passphrase("wrongpass-o", Tool::Ours);
}
