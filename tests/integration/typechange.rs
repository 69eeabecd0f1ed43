//! Entries that change type between backups (dir <-> file <-> symlink <-> fifo <-> device, empty or not,
//! across several incrementals) restore exactly at every set, and neither restore nor verify ever
//! applies metadata or writes through a symlink to outside the target (issue 10, case 3).

use crate::support::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use EntryKind::*;

/// `p-A-B-C` for each path: kind A at the full, B at inc 1, C at inc 2.
type Plan = Vec<[EntryKind; 3]>;

fn path_name(kinds: &[EntryKind; 3]) -> String {
    format!("p-{:?}-{:?}-{:?}", kinds[0], kinds[1], kinds[2])
}

/// Builds step `k` of the plan in `src` (changing each path that changes kind) and keeps a copy of it as
/// `expected-<k>`; returns nothing, the copies are in the workspace.
fn build_step(ws: &Ws, plan: &Plan, k: usize, owners: bool) {
    let src = ws.p("src");
    let outside = ws.p("outside");
    fs::create_dir_all(&src).unwrap();
    for kinds in plan {
        let p = src.join(path_name(kinds));
        if k > 0 && kinds[k] == kinds[k - 1] {
            continue;
        }
        remove_entry(&p);
        make_entry(&p, kinds[k], k as i64, &outside, owners);
    }
    chmod(&src, 0o755);
    set_mtime(&src, 1_650_000_000 + k as i64);
    copy_tree(&src, &ws.p(&format!("expected-{k}")));
}

/// Backs up the three steps of `plan` with `writer` (full, inc, inc at t(0), t(1), t(2)).
fn back_up_plan(ws: &Ws, writer: Tool, plan: &Plan, owners: bool) {
    build_outside(&ws.p("outside"));
    for k in 0..3 {
        build_step(ws, plan, k, owners);
        let kind = if k == 0 { "full" } else { "incremental" };
        ws.backup(
            writer,
            kind,
            Enc::Plain,
            &ws.p("src"),
            "repo",
            t(k as i64),
            &[],
        );
    }
    copy_tree(&ws.p("outside"), &ws.p("outside-before"));
}

fn outside_unchanged(ws: &Ws, what: &str) {
    assert_same_tree(
        &ws.p("outside-before"),
        &ws.p("outside"),
        &format!("{what}: the directory outside the target"),
    );
}

/// Every path of every kind through every other kind and on to any kind: A -> B -> C with B != A, C != B.
fn full_matrix() -> Plan {
    let kinds = EntryKind::all();
    let mut plan = Vec::new();
    for &a in &kinds {
        for &b in kinds.iter().filter(|&&b| b != a) {
            for &c in kinds.iter().filter(|&&c| c != b) {
                plan.push([a, b, c]);
            }
        }
    }
    plan
}

#[test]
fn type_change_matrix_restores_every_set() {
    let ws = Ws::new("typechange-matrix");
    let plan = full_matrix();
    back_up_plan(&ws, Tool::Ours, &plan, true);
    for k in 0..3 {
        let dst = ws.p(&format!("dst-{k}"));
        ws.restore(Tool::Ours, Enc::Plain, "repo", &dst, Some(t(k)), &[]);
        assert_same_tree(
            &ws.p(&format!("expected-{k}")),
            &dst,
            &format!("restore of set {k}"),
        );
        outside_unchanged(&ws, &format!("restore of set {k}"));
        // verify restores into a scratch dir with the same code, then compares type by type.
        let r = ws.run(
            Tool::Ours,
            Enc::Plain,
            &[
                "verify",
                "-t",
                &t(k).to_string(),
                "--compare-data",
                &ws.url("repo"),
                ws.p(&format!("expected-{k}")).to_str().unwrap(),
            ],
        );
        assert_eq!(
            r.code,
            Some(0),
            "verify of set {k} against its tree:\n{}",
            r.output()
        );
        outside_unchanged(&ws, &format!("verify of set {k}"));
    }
    // The last state restored over the first one (--force): what an earlier restore built at a path is
    // replaced by each set's entry, whatever its type.
    let dst = ws.p("dst-0");
    ws.restore(
        Tool::Ours,
        Enc::Plain,
        "repo",
        &dst,
        Some(t(2)),
        &["--force"],
    );
    assert_same_tree(
        &ws.p("expected-2"),
        &dst,
        "restore of set 2 over set 0 with --force",
    );
    outside_unchanged(&ws, "restore with --force");
}

/// A few representative changes written by one tool and restored by the other: stock duplicity agrees
/// with the expected trees, so the matrix's expectations are duplicity's.
fn representative_plan() -> Plan {
    vec![
        [FullDir, LinkToDir, FullDir],
        [EmptyDir, File, EmptyDir],
        [FullDir, File, Fifo],
        [Fifo, FullDir, Dangling],
        [LinkToFile, FullDir, LinkToDir],
        [File, EmptyDir, FullDir],
        [FullDir, Dangling, File],
    ]
}

fn across_tools(name: &str, writer: Tool, readers: &[Tool]) {
    let ws = Ws::new(name);
    let plan = representative_plan();
    back_up_plan(&ws, writer, &plan, false);
    for reader in readers {
        for k in 0..3 {
            let dst = ws.p(&format!("dst-{reader:?}-{k}"));
            ws.restore(*reader, Enc::Plain, "repo", &dst, Some(t(k)), &[]);
            assert_same_tree(
                &ws.p(&format!("expected-{k}")),
                &dst,
                &format!("{writer:?} -> {reader:?} restore of set {k}"),
            );
            outside_unchanged(&ws, &format!("{reader:?} restore of set {k}"));
        }
    }
}

#[test]
fn type_changes_in_our_archive_restore_alike_with_duplicity_and_ours() {
    across_tools(
        "typechange-ours-dup",
        Tool::Ours,
        &[Tool::Duplicity, Tool::Ours],
    );
}

#[test]
fn type_changes_in_duplicity_archive_restore_with_ours() {
    across_tools("typechange-dup-ours", Tool::Duplicity, &[Tool::Ours]);
}

/// The deploy pattern: `current` is a 0777 directory at the full (empty, or with a `sub` like the
/// sentinel's), then a symlink to a 0700 sentinel directory outside the target. Neither restore nor verify
/// may change the sentinel's mode, owner, mtime or its subdirectory.
#[test]
fn directory_replaced_by_symlink_never_changes_what_it_points_to() {
    let ws = Ws::new("typechange-escape");
    let sentinel = ws.p("outside/sentinel");
    write_file(&sentinel.join("sub/keep"), b"keep\n", 0o600, 1_500_000_000);
    chmod(&sentinel.join("sub"), 0o700);
    chmod(&sentinel, 0o700);
    set_mtime(&sentinel.join("sub"), 1_500_000_001);
    set_mtime(&sentinel, 1_500_000_002);
    copy_tree(&ws.p("outside"), &ws.p("outside-before"));
    for (variant, with_sub) in [("empty", false), ("full", true)] {
        let src = ws.p(&format!("src-{variant}"));
        let repo = format!("repo-{variant}");
        let p = src.join("current");
        fs::create_dir_all(&p).unwrap();
        if with_sub {
            fs::create_dir(p.join("sub")).unwrap();
            chmod(&p.join("sub"), 0o777);
            set_mtime(&p.join("sub"), 1_600_000_001);
            if is_root() {
                lchown(&p.join("sub"), 4321, 4321);
            }
        }
        if is_root() {
            lchown(&p, 4321, 4321);
        }
        chmod(&p, 0o777);
        set_mtime(&p, 1_600_000_000);
        set_mtime(&src, 1_650_000_000);
        ws.backup(Tool::Ours, "full", Enc::Plain, &src, &repo, t(0), &[]);
        fs::remove_dir_all(&p).unwrap();
        symlink(sentinel.to_str().unwrap(), &p);
        set_mtime(&src, 1_650_000_001);
        ws.backup(
            Tool::Ours,
            "incremental",
            Enc::Plain,
            &src,
            &repo,
            t(1),
            &[],
        );

        let dst = ws.p(&format!("dst-{variant}"));
        let r = ws.restore_try(Tool::Ours, Enc::Plain, &repo, &dst, None, &[]);
        outside_unchanged(&ws, &format!("restore ({variant} directory)"));
        assert!(
            r.success(),
            "restore ({variant} directory):\n{}",
            r.output()
        );
        assert_same_tree(&src, &dst, &format!("restore ({variant} directory)"));
        assert_eq!(
            fs::read_link(dst.join("current")).unwrap(),
            sentinel,
            "restored current is the symlink"
        );
        let r = ws.run(
            Tool::Ours,
            Enc::Plain,
            &[
                "verify",
                "--compare-data",
                &ws.url(&repo),
                src.to_str().unwrap(),
            ],
        );
        outside_unchanged(&ws, &format!("verify ({variant} directory)"));
        assert_eq!(
            r.code,
            Some(0),
            "verify ({variant} directory):\n{}",
            r.output()
        );
    }
}

/// The cases of the issue one by one: an empty 0777 directory that became a 0600 file comes back 0600;
/// a non-empty directory that became a file, a symlink or a fifo restores.
#[test]
fn directories_replaced_by_other_types_restore() {
    let ws = Ws::new("typechange-dirs");
    let plan: Plan = vec![
        [EmptyDir, File, File],
        [FullDir, File, File],
        [FullDir, LinkToDir, LinkToDir],
        [FullDir, Dangling, Dangling],
        [FullDir, Fifo, Fifo],
    ];
    build_outside(&ws.p("outside"));
    for k in 0..2 {
        build_step(&ws, &plan, k, true);
        let kind = if k == 0 { "full" } else { "incremental" };
        ws.backup(
            Tool::Ours,
            kind,
            Enc::Plain,
            &ws.p("src"),
            "repo",
            t(k as i64),
            &[],
        );
    }
    copy_tree(&ws.p("outside"), &ws.p("outside-before"));
    let dst = ws.p("dst");
    ws.restore(Tool::Ours, Enc::Plain, "repo", &dst, None, &[]);
    let file = dst.join(path_name(&plan[0]));
    assert_eq!(
        fs::symlink_metadata(&file).unwrap().mode() & 0o7777,
        0o600,
        "the 0777 directory that became a 0600 file"
    );
    assert_same_tree(&ws.p("expected-1"), &dst, "restore of the incremental");
    outside_unchanged(&ws, "restore");
}

/// A restore killed with SIGKILL while it writes (a directory already replaced by a symlink to outside,
/// or not yet), then run again with --force into the same target, gives the source exactly and leaves
/// everything outside the target as it was.
#[test]
fn killed_restore_then_forced_restore_is_exact() {
    let ws = Ws::new("typechange-kill");
    let src = ws.p("src");
    build_outside(&ws.p("outside"));
    // ~48 MB of incompressible data, so the restore takes a while.
    for i in 0..48u64 {
        write_file(
            &src.join(format!("big/f{i:03}")),
            &random_bytes(900 + i, 1 << 20),
            0o644,
            1_600_000_000 + i as i64,
        );
    }
    let current = src.join("current");
    make_entry(&current, FullDir, 0, &ws.p("outside"), true);
    chmod(&current, 0o777);
    set_dir_mtimes(&src, 1_650_000_000);
    ws.backup(Tool::Ours, "full", Enc::Plain, &src, "repo", t(0), &[]);
    // The incremental: a directory becomes a symlink to outside, big files change (deltas to apply).
    remove_entry(&current);
    symlink(ws.p("outside/dir").to_str().unwrap(), &current);
    for i in (0..48u64).step_by(5) {
        patch_file(
            &src.join(format!("big/f{i:03}")),
            4096,
            b"changed",
            1_600_001_000 + i as i64,
        );
    }
    set_mtime(&src.join("big"), 1_650_000_001);
    set_mtime(&src, 1_650_000_001);
    ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Plain,
        &src,
        "repo",
        t(1),
        &[],
    );
    copy_tree(&ws.p("outside"), &ws.p("outside-before"));

    let dst = ws.p("dst");
    let url = ws.url("repo");
    let mut child = spawn_ours(
        &ws,
        Enc::Plain,
        &[OsStr::new("restore"), OsStr::new(&url), dst.as_os_str()],
    );
    let first = dst.join("big/f000");
    let started = std::time::Instant::now();
    while fs::symlink_metadata(&first).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the restore ended ({st}) before writing its first file");
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "the restore wrote nothing in 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(
        st.signal(),
        Some(9),
        "the restore had finished before the kill ({st}): make the tree bigger"
    );
    outside_unchanged(&ws, "the killed restore");

    ws.restore(Tool::Ours, Enc::Plain, "repo", &dst, None, &["--force"]);
    assert_same_tree(&src, &dst, "restore with --force after the killed one");
    outside_unchanged(&ws, "the forced restore");
    assert!(
        fs::symlink_metadata(dst.join("current"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "current is restored as the symlink"
    );
}
