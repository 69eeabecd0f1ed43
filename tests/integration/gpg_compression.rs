//! gpg's compression algorithms inside the encrypted files (`--gpg-options "--compress-algo
//! zip|zlib|bzip2"`: OpenPGP compressed packets of algorithm 1, 2 and 3). Every archive stock duplicity
//! reads, we read: backups stock duplicity 0.8.22 writes with each restore with ours, a full and an
//! incremental on top of it, and their signature files list. And ours writes each, as gpg's
//! `--list-packets` shows, and stock duplicity restores it.

use crate::support::*;

/// `gpg --list-packets` of the first data volume of `repo` (gpg decrypts it to list the inner packets).
fn first_volume_packets(ws: &Ws, repo: &str) -> String {
    let vol = std::fs::read_dir(ws.p(repo))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".vol1.difftar.gpg"))
        .expect("a volume");
    let mut cmd = std::process::Command::new("gpg");
    ws.env(&mut cmd);
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASS,
        "--list-packets",
    ])
    .arg(&vol);
    run_cmd(cmd, "gpg --list-packets").ok().output()
}

#[test]
fn archives_stock_duplicity_compresses_with_zip_zlib_or_bzip2_restore_with_ours() {
    for (algo, number) in [("zip", 1), ("zlib", 2), ("bzip2", 3)] {
        let ws = Ws::new(&format!("gpg-read-{algo}"));
        let src = ws.p("src");
        build_sample(&src);
        let gpg = format!("--compress-algo {algo}");
        let extra = ["--gpg-options", gpg.as_str()];
        ws.backup(
            Tool::Duplicity,
            "full",
            Enc::Pass(PASS),
            &src,
            "repo",
            t(1),
            &extra,
        );
        let packets = first_volume_packets(&ws, "repo");
        assert!(
            packets.contains(&format!("compressed packet: algo={number}")),
            "{algo}: duplicity should have written algorithm {number}: {packets}"
        );
        let full = ws.p("full-state");
        copy_tree(&src, &full);
        mutate(&src, 1);
        ws.backup(
            Tool::Duplicity,
            "incremental",
            Enc::Pass(PASS),
            &src,
            "repo",
            t(2),
            &extra,
        );
        let dst = ws.p("restored");
        ws.restore(Tool::Ours, Enc::Pass(PASS), "repo", &dst, None, &[]);
        assert_same_tree(&src, &dst, &format!("{algo}: ours, the incremental"));
        let dst = ws.p("restored-full");
        ws.restore(Tool::Ours, Enc::Pass(PASS), "repo", &dst, Some(t(1)), &[]);
        assert_same_tree(&full, &dst, &format!("{algo}: ours, the full"));
        // The signature files (compressed the same way) read too.
        let listed = ws
            .run(
                Tool::Ours,
                Enc::Pass(PASS),
                &["list-current-files", &ws.url("repo")],
            )
            .ok();
        assert!(
            listed.stdout.lines().count() > 10,
            "{algo}: {}",
            listed.output()
        );
    }
}

#[test]
fn ours_writes_zlib_and_bzip2_as_asked_and_stock_duplicity_restores_them() {
    for (opts, number) in [
        ("--compress-algo zlib", 2),
        ("--compress-algo=bzip2 -z 9", 3),
        ("--compress-algo BZIP2", 3),
    ] {
        let ws = Ws::new("gpg-write-compress");
        let src = ws.p("src");
        build_sample(&src);
        let extra = ["--gpg-options", opts];
        ws.backup(
            Tool::Ours,
            "full",
            Enc::Pass(PASS),
            &src,
            "repo",
            t(1),
            &extra,
        );
        let full = ws.p("full-state");
        copy_tree(&src, &full);
        mutate(&src, 1);
        ws.backup(
            Tool::Ours,
            "incremental",
            Enc::Pass(PASS),
            &src,
            "repo",
            t(2),
            &extra,
        );
        let packets = first_volume_packets(&ws, "repo");
        assert!(
            packets.contains(&format!("compressed packet: algo={number}")),
            "{opts}: algorithm {number} expected: {packets}"
        );
        let dst = ws.p("restored-dup");
        ws.restore(Tool::Duplicity, Enc::Pass(PASS), "repo", &dst, None, &[]);
        assert_same_tree(&src, &dst, &format!("{opts}: stock duplicity"));
        let dst = ws.p("restored-dup-full");
        ws.restore(
            Tool::Duplicity,
            Enc::Pass(PASS),
            "repo",
            &dst,
            Some(t(1)),
            &[],
        );
        assert_same_tree(&full, &dst, &format!("{opts}: stock duplicity, the full"));
        let dst = ws.p("restored");
        ws.restore(Tool::Ours, Enc::Pass(PASS), "repo", &dst, None, &[]);
        assert_same_tree(&src, &dst, &format!("{opts}: ours"));
    }
}
