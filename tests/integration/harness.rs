//! Self-checks of the test harness that need only stock duplicity: if these fail, the interop tests below
//! cannot be trusted.

use crate::chains::chain_roundtrip;
use crate::support::*;
use std::fs;
use std::path::Path;

/// duplicity -> duplicity over the whole sample chain: the comparator must see the trees as equal.
#[test]
fn harness_duplicity_roundtrip_plain_volsize1() {
    chain_roundtrip(
        "h-dup-plain",
        Tool::Duplicity,
        Tool::Duplicity,
        Enc::Plain,
        Some(1),
    );
}

#[test]
fn harness_duplicity_roundtrip_encrypted() {
    chain_roundtrip(
        "h-dup-enc",
        Tool::Duplicity,
        Tool::Duplicity,
        Enc::Pass(PASS),
        None,
    );
}

/// Two trees built separately for the same step are equal; the sample builder is deterministic.
#[test]
fn harness_sample_trees_are_reproducible() {
    let ws = Ws::new("h-repro");
    sample_at(&ws.p("x"), 2);
    sample_at(&ws.p("y"), 2);
    assert_same_tree(&ws.p("x"), &ws.p("y"), "two builds of step 2");
    let d = diff_trees(&ws.p("x"), &{
        sample_at(&ws.p("z"), 1);
        ws.p("z")
    });
    assert!(!d.is_empty(), "step 1 and step 2 trees must differ");
}

/// The comparator reports each kind of difference, one line per difference.
#[test]
fn harness_comparator_reports_every_kind_of_difference() {
    let ws = Ws::new("h-cmp");
    let (a, b) = (ws.p("a"), ws.p("b"));
    build_sample(&a);
    build_sample(&b);
    assert!(diff_trees(&a, &b).is_empty());

    let keep = |p: &Path| fs::symlink_metadata(p).unwrap();
    // same size, same mtime, other content
    let md = keep(&b.join("a.txt"));
    fs::write(b.join("a.txt"), b"HELLO WORLD\n").unwrap();
    set_mtime(
        &b.join("a.txt"),
        md.modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    chmod(&b.join("private"), 0o644); // mode
    chmod(&b.join("sticky"), 0o777); // sticky bit lost
    chmod(&b.join("setgid"), 0o755); // setgid lost
    set_mtime(&b.join("Z"), 12345); // mtime
    fs::remove_file(b.join("link")).unwrap();
    symlink("elsewhere", &b.join("link")); // symlink target
    fs::remove_file(b.join("empty")).unwrap(); // only in a
    fs::write(b.join("extra"), b"x").unwrap(); // only in b
    fs::remove_file(b.join("fifo")).unwrap();
    fs::write(b.join("fifo"), b"").unwrap(); // type
    fs::write(b.join("_u"), b"_u longer\n").unwrap(); // size (and mtime)
    fs::remove_dir(b.join("emptydir")).unwrap(); // empty dir missing
    fs::write(pb(&b, BAD_NAME), b"other").unwrap(); // non-UTF-8 name, content
    if is_root() {
        std::os::unix::fs::chown(b.join("owned"), Some(0), Some(0)).unwrap(); // owner
    }
    set_dir_mtimes(&b, 1_650_000_000); // undo the directory mtime changes made above

    let d = diff_trees(&a, &b);
    let text = d.join("\n");
    let expect = [
        "a.txt: content differs",
        "private: mode 0600 vs 0644",
        "sticky: mode 1777 vs 0777",
        "setgid: mode 2755 vs 0755",
        "Z: mtime",
        "link: symlink target a.txt vs elsewhere",
        "empty: only in",
        "extra: only in",
        "fifo: type fifo vs file",
        "_u: size 3 vs 10",
        "emptydir: only in",
        "bad-\\xff\\xfe.bin: size 1000 vs 5",
    ];
    for e in expect {
        assert!(
            text.contains(e),
            "comparator did not report `{e}`; it said:\n{text}"
        );
    }
    if is_root() {
        assert!(
            text.contains("owned: owner 4242:4343 vs 0:0"),
            "owner not reported:\n{text}"
        );
    }
    // Exactly the differences made, nothing spurious (the rewrites of _u and bad-\xff\xfe.bin changed
    // their mtimes too).
    let n = expect.len() + 2 + usize::from(is_root());
    assert_eq!(d.len(), n, "unexpected differences:\n{text}");

    // A whole-tree assertion names the differences.
    let err = std::panic::catch_unwind(|| assert_same_tree(&a, &b, "deliberate")).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("deliberate") && msg.contains("private: mode"),
        "{msg}"
    );
}

/// A duplicity restore of a changed tree is reported as different (the comparator is not vacuous on real
/// restores).
#[test]
fn harness_detects_a_changed_tree_after_duplicity_restore() {
    let ws = Ws::new("h-changed");
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(Tool::Duplicity, "full", Enc::Plain, &src, "repo", t(0), &[]);
    ws.restore(Tool::Duplicity, Enc::Plain, "repo", &ws.p("out"), None, &[]);
    assert_same_tree(&src, &ws.p("out"), "duplicity restore of the full");
    mutate(&src, 1);
    let d = diff_trees(&src, &ws.p("out"));
    let text = d.join("\n");
    for e in [
        "a.txt: size",
        "big.bin: content differs",
        "new.txt: only in",
        "newdir: only in",
        "link: symlink target",
    ] {
        assert!(text.contains(e), "missing `{e}` in:\n{text}");
    }
}
