//! duplicity 3.2.1's help screens and metadata options (issue 13), by their effect and against stock
//! duplicity 3.2.1 where both tools have them: `--help-*`, `--metadata-sync-mode`,
//! `--check-remote`/`--no-check-remote`, `--copy-blocksize`, `--config-dir`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::*;

/// duplicity 3.2.1 with `--no-encryption` and the workspace's environment.
fn dup3(ws: &Ws, args: &[&str]) -> Run {
    let mut cmd = Command::new(duplicity3());
    cmd.args(args).arg("--no-encryption");
    ws.env(&mut cmd);
    run_cmd(cmd, &format!("duplicity3 {}", args.join(" ")))
}

/// The metadata files in an archive dir folder.
fn cached(dir: &Path) -> BTreeSet<String> {
    dir_names(dir)
        .into_iter()
        .filter(|n| n.contains(".manifest") || n.contains(".sigtar"))
        .collect()
}

const HELP_FLAGS: &[&str] = &[
    "--help-backup",
    "--help-cleanup",
    "--help-collection-status",
    "--help-full",
    "--help-inc",
    "--help-list-current-files",
    "--help-remove-all-but-n-full",
    "--help-remove-all-inc-of-but-n-full",
    "--help-remove-older-than",
    "--help-restore",
    "--help-urls",
    "--help-verify",
];

#[test]
fn help_screens_exit_0_with_the_commands_options_as_duplicity_3() {
    let ws = Ws::new("help-screens");
    for flag in HELP_FLAGS {
        let r = ours(&ws, &[flag]).ok();
        assert!(r.stderr.is_empty(), "{flag}: {}", r.output());
        let d = dup3(&ws, &[flag]);
        assert_eq!(d.code, Some(0), "duplicity 3 {flag}: {}", d.output());
        if *flag == "--help-urls" {
            for form in [
                "file:///", "sftp://", "rsync://", "ftp://", "s3://", "azure://",
            ] {
                assert!(r.stdout.contains(form), "{form}: {}", r.stdout);
            }
            continue;
        }
        assert!(
            r.stdout.starts_with("Usage: duplicity-charm"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("--archive-dir DIR"), "{}", r.stdout);
        assert!(r.stdout.contains("--help-urls"), "{}", r.stdout);
    }
    let restore = ours(&ws, &["--help-restore"]).ok().stdout;
    assert!(restore.contains("--file-to-restore PATH") && restore.contains("--numeric-owner"));
    assert!(!restore.contains("--full-if-older-than"), "{restore}");
    let backup = ours(&ws, &["--help-backup"]).ok().stdout;
    assert!(backup.contains("--volsize MiB") && backup.contains("--full-if-older-than TIME"));
    assert!(!backup.contains("--file-to-restore"), "{backup}");
    // Whatever else is on the command line, and as a prefix (argparse's abbreviation).
    let r = ours(&ws, &["full", "--help-verif", "/nonexistent", "file:///x"]).ok();
    assert!(r.stdout.contains("--compare-data"), "{}", r.output());
}

#[test]
fn metadata_sync_mode_partial_fetches_only_the_chain_in_use_as_duplicity_3() {
    let ws = Ws::new("metadata-sync");
    build_collection(
        &ws,
        Tool::Ours,
        Enc::Plain,
        "repo",
        &[("full", t(0)), ("inc", t(1)), ("full", t(2)), ("inc", t(3))],
    );
    let url = ws.url("repo");
    let all = cached(
        &ws.cache(Tool::Ours)
            .join(dir_names(&ws.cache(Tool::Ours))[0].as_str()),
    );
    assert_eq!(all.len(), 8, "{all:?}");
    let second: BTreeSet<String> = all
        .iter()
        .filter(|n| n.contains(&stamp(t(2))))
        .cloned()
        .collect();
    assert_eq!(second.len(), 4, "{all:?}");
    let first: BTreeSet<String> = all.difference(&second).cloned().collect();

    // Default (partial): a listing of now fetches the newest chain's metadata only, at -t the older one's.
    ours(&ws, &["list-current-files", "--name", "now", &url]).ok();
    let now_dir = ws.cache(Tool::Ours).join("now");
    assert_eq!(cached(&now_dir), second);
    let past = t(1).to_string();
    ours(
        &ws,
        &["list-current-files", "--name", "past", "-t", &past, &url],
    )
    .ok();
    assert_eq!(cached(&ws.cache(Tool::Ours).join("past")), first);
    let r = ours(
        &ws,
        &[
            "list-current-files",
            "--name",
            "all",
            "--metadata-sync-mode",
            "full",
            &url,
        ],
    )
    .ok();
    assert!(r.stdout.contains("f3.txt"), "{}", r.output());
    assert_eq!(cached(&ws.cache(Tool::Ours).join("all")), all);
    // Partial explicitly, and a later full sync completes a partial folder.
    ours(
        &ws,
        &[
            "list-current-files",
            "--name",
            "now",
            "--metadata-sync-mode=partial",
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&now_dir), second);
    ours(
        &ws,
        &[
            "list-current-files",
            "--name",
            "now",
            "--metadata-sync-mode",
            "full",
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&now_dir), all);
    let e = ours(
        &ws,
        &["list-current-files", "--metadata-sync-mode", "some", &url],
    )
    .fails();
    assert_eq!(e.code, Some(2), "{}", e.output());
    assert!(e.stderr.contains("--metadata-sync-mode"), "{}", e.stderr);

    // duplicity 3.2.1 fetches the same files for the same requests.
    let dup_cache = ws.p("cache-dup3");
    let dc = dup_cache.to_str().unwrap();
    dup3(
        &ws,
        &[
            "list-current-files",
            "--archive-dir",
            dc,
            "--name",
            "now",
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&dup_cache.join("now")), second);
    let past_time = chrono::DateTime::from_timestamp(t(1), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    dup3(
        &ws,
        &[
            "list-current-files",
            "--archive-dir",
            dc,
            "--name",
            "past",
            "-t",
            &past_time,
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&dup_cache.join("past")), first);
    dup3(
        &ws,
        &[
            "list-current-files",
            "--archive-dir",
            dc,
            "--name",
            "all",
            "--metadata-sync-mode",
            "full",
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&dup_cache.join("all")), all);
}

/// Changes the `Localdir` line of the newest manifest in the archive dir folder `dir`.
fn tamper_cached_manifest(dir: &Path) {
    let newest = dir_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".manifest"))
        .max_by_key(|n| n.rsplit('.').nth(1).map(str::to_string))
        .expect("a cached manifest");
    let p = dir.join(&newest);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("\nLocaldir "), "{text}");
    std::fs::write(&p, text.replace("\nLocaldir ", "\nLocaldir elsewhere-")).unwrap();
}

#[test]
fn check_remote_refuses_an_incremental_on_a_changed_cached_manifest_as_duplicity_3() {
    let ws = Ws::new("check-remote");
    let src = ws.p("src");
    std::fs::create_dir_all(&src).unwrap();
    write_file(&src.join("a"), b"one", 0o644, 1_600_000_000);
    ws.backup(Tool::Ours, "full", Enc::Plain, &src, "repo", t(0), &[]);
    let folder = ws
        .cache(Tool::Ours)
        .join(&dir_names(&ws.cache(Tool::Ours))[0]);
    tamper_cached_manifest(&folder);
    write_file(&src.join("a"), b"two", 0o644, 1_600_000_100);
    let url = ws.url("repo");
    let (s, t1, t2) = (src.to_str().unwrap(), t(1).to_string(), t(2).to_string());
    for extra in [&[][..], &["--check-remote"]] {
        let mut args = vec!["incremental", "--current-time", &t1];
        args.extend(extra);
        args.extend([s, &url]);
        let r = ours(&ws, &args).fails();
        assert_eq!(r.code, Some(5), "{}", r.output());
        assert!(r.stderr.contains("does not match"), "{}", r.stderr);
    }
    assert_eq!(repo_files(&ws, "repo").len(), 3, "nothing was written");
    // --no-check-remote takes the archive dir's manifest as it is: its directory is now another.
    let r = ours(
        &ws,
        &[
            "incremental",
            "--no-check-remote",
            "--current-time",
            &t1,
            s,
            &url,
        ],
    )
    .fails();
    assert!(
        r.stderr.contains("--allow-source-mismatch"),
        "{}",
        r.output()
    );
    ours(
        &ws,
        &[
            "incremental",
            "--no-check-remote",
            "--allow-source-mismatch",
            "--current-time",
            &t2,
            s,
            &url,
        ],
    )
    .ok();
    assert_eq!(
        repo_files(&ws, "repo").len(),
        6,
        "{:?}",
        repo_files(&ws, "repo")
    );

    // duplicity 3.2.1 exits 5 the same way.
    let dup_cache = ws.p("cache-dup3");
    let dc = dup_cache.to_str().unwrap();
    let durl = ws.url("repo-dup3");
    dup3(&ws, &["full", "--archive-dir", dc, "--name", "n", s, &durl]).ok();
    tamper_cached_manifest(&dup_cache.join("n"));
    let d = dup3(
        &ws,
        &["incremental", "--archive-dir", dc, "--name", "n", s, &durl],
    );
    assert_eq!(d.code, Some(5), "{}", d.output());
}

#[test]
fn no_check_remote_uses_the_archive_dir_as_it_is() {
    let ws = Ws::new("no-check-remote");
    build_collection(
        &ws,
        Tool::Ours,
        Enc::Plain,
        "repo",
        &[("full", t(0)), ("inc", t(1))],
    );
    let url = ws.url("repo");
    // A cold archive dir is not filled from the target.
    let r = ours(
        &ws,
        &[
            "list-current-files",
            "--name",
            "cold",
            "--no-check-remote",
            &url,
        ],
    )
    .fails();
    assert!(r.stderr.contains("--no-check-remote"), "{}", r.stderr);
    assert!(cached(&ws.cache(Tool::Ours).join("cold")).is_empty());
    // --check-remote after it wins (the last of the two counts).
    ours(
        &ws,
        &[
            "list-current-files",
            "--name",
            "cold",
            "--no-check-remote",
            "--check-remote",
            &url,
        ],
    )
    .ok();
    assert_eq!(cached(&ws.cache(Tool::Ours).join("cold")).len(), 4);
    // A backup whose chain the archive dir lacks starts a new chain instead of fetching it.
    let src = ws.p("src-repo");
    let t2 = t(2).to_string();
    let r = ours(
        &ws,
        &[
            "incremental",
            "--name",
            "cold2",
            "--no-check-remote",
            "--current-time",
            &t2,
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    assert!(
        r.stderr.contains("starting a new full backup"),
        "{}",
        r.output()
    );
    let fulls = repo_files(&ws, "repo")
        .into_iter()
        .filter(|n| n.starts_with("duplicity-full.") && n.ends_with(".manifest"))
        .count();
    assert_eq!(fulls, 2);
    // Nothing of the first chain was fetched.
    assert_eq!(cached(&ws.cache(Tool::Ours).join("cold2")).len(), 2);
}

#[test]
fn copy_blocksize_and_config_dir_are_checked_and_backups_round_trip() {
    let ws = Ws::new("copy-blocksize");
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(
        Tool::Ours,
        "full",
        Enc::Plain,
        &src,
        "repo",
        t(0),
        &[
            "--copy-blocksize",
            "3",
            "--config-dir",
            "~/.config/duplicity",
        ],
    );
    let dst = ws.p("restored");
    ws.restore(
        Tool::Ours,
        Enc::Plain,
        "repo",
        &dst,
        None,
        &["--copy-blocksize=1"],
    );
    assert_same_tree(&src, &dst, "restored with --copy-blocksize");
    let url = ws.url("repo");
    for bad in [
        &["--copy-blocksize", "0"][..],
        &["--copy-blocksize=-1"],
        &["--copy-blocksize", "64k"],
        &["--copy-blocksize", "2000000"],
        &["--config-dir", ""],
    ] {
        let mut args = vec!["collection-status"];
        args.extend(bad);
        args.push(&url);
        let r = ours(&ws, &args).fails();
        assert_eq!(r.code, Some(2), "{bad:?}: {}", r.output());
        let name = bad[0].split('=').next().unwrap();
        assert!(r.stderr.contains(name), "{bad:?}: {}", r.stderr);
    }
}

/// A put and a get of a file that is not a multiple of the block size, through `url` with
/// `--copy-blocksize 3` (KiB) in the options.
fn copy_blocksize_round_trip(url: &str, mut o: duplicity_charm::backend::OpenOptions) {
    o.attempts = 1;
    o.copy_blocksize = Some(3 * 1024);
    let b = duplicity_charm::backend::open(url, &o).unwrap();
    let ws = Ws::new("copy-blocksize-backend");
    let data = random_bytes(7, 100_001);
    std::fs::write(ws.p("f"), &data).unwrap();
    b.put(&ws.p("f"), ROUND_TRIP_NAME).unwrap();
    b.get(ROUND_TRIP_NAME, &ws.p("got")).unwrap();
    assert!(std::fs::read(ws.p("got")).unwrap() == data, "{url}");
    b.delete(&[ROUND_TRIP_NAME.to_string()]).unwrap();
}

#[test]
fn copy_blocksize_copies_whole_files_over_sftp_and_ftp() {
    let mut sftp = duplicity_charm::backend::OpenOptions::new();
    sftp.set_ssh_options(&ssh_options_with(
        server("SSH_KEY_ED25519"),
        server("SSH_KNOWN_HOSTS"),
    ));
    copy_blocksize_round_trip(
        &format!(
            "sftp://{}@127.0.0.1:{}/{}",
            server("SSH_USER"),
            server("SSH_PORT"),
            unique("copy-blocksize")
        ),
        sftp,
    );
    let ftp = duplicity_charm::backend::OpenOptions {
        ftp_password: Some(server("FTP_PASSWORD").to_string()),
        ..duplicity_charm::backend::OpenOptions::new()
    };
    copy_blocksize_round_trip(
        &format!(
            "ftp://{}@127.0.0.1:{}/{}",
            server("FTP_USER"),
            server("FTP_PORT"),
            unique("copy-blocksize")
        ),
        ftp,
    );
}
