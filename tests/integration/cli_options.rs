//! duplicity's command-line breadth (issue 13): option syntax as its parser takes it (`--opt=value`,
//! `--opt value`, unambiguous prefixes, ambiguous ones refused naming the candidates), and the operations
//! options, each checked by its effect on a real run.

use crate::support::*;

/// The file names list-current-files shows for `repo`.
fn listed(ws: &Ws, repo: &str) -> String {
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["list-current-files", &ws.url(repo)],
    )
    .ok()
    .stdout
}

#[test]
fn prefixes_and_both_value_forms_as_duplicity_parses_them() {
    let ws = Ws::new("opt-prefix");
    let src = ws.p("src");
    write_file(&src.join("keep.txt"), b"keep", 0o644, T0);
    write_file(&src.join("skip-me.txt"), b"skip", 0o644, T0);
    let url = ws.url("repo");
    // `--volsiz=1` (prefix with =), `--current-t T` (prefix, value apart), `--exclude-reg` (a prefix of a
    // file selection option, whose order is read from the raw arguments).
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[
            "full",
            "--volsiz=1",
            "--current-t",
            &T0.to_string(),
            "--exclude-reg",
            ".*skip.*",
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let files = listed(&ws, "repo");
    assert!(files.contains("keep.txt"), "{files}");
    assert!(
        !files.contains("skip-me.txt"),
        "the prefix --exclude-reg was applied: {files}"
    );
}

#[test]
fn an_ambiguous_prefix_is_refused_naming_the_candidates() {
    let ws = Ws::new("opt-ambiguous");
    let src = ws.p("src");
    write_file(&src.join("a"), b"a", 0o644, T0);
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "full",
                "--encrypt-s",
                "ABCD",
                src.to_str().unwrap(),
                &ws.url("repo"),
            ],
        )
        .fails();
    assert_eq!(
        r.code,
        Some(2),
        "a command-line error, as duplicity's: {}",
        r.output()
    );
    assert!(
        r.stderr
            .contains("ambiguous option: --encrypt-s could match")
            && r.stderr.contains("--encrypt-secret-keyring")
            && r.stderr.contains("--encrypt-sign-key"),
        "{}",
        r.output()
    );
    assert!(!ws.p("repo").exists());
}

/// Runs duplicity 3.2.1 with the workspace's environment and `PASSPHRASE=pass`.
fn run_duplicity3(ws: &Ws, pass: &str, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(duplicity3());
    cmd.args(args).env("PASSPHRASE", pass);
    ws.env(&mut cmd);
    run_cmd(cmd, &format!("duplicity3 {}", args.join(" ")))
}

/// Runs our binary with the workspace's environment, `PASSPHRASE`, and extra variables.
fn run_ours(ws: &Ws, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(ours_bin());
    cmd.args(args);
    ws.env(&mut cmd);
    cmd.env("PASSPHRASE", PASS);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run_cmd(cmd, &format!("{} {}", ours_bin(), args.join(" ")))
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The field names of duplicity's "Backup Statistics" block in `out`, in order.
fn statistics_fields(out: &str) -> Vec<String> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.contains("[ Backup Statistics ]"))
        .skip(1);
    let mut names = Vec::new();
    for l in lines.by_ref() {
        if l.starts_with("-----") {
            return names;
        }
        names.push(l.split_whitespace().next().unwrap_or("").to_string());
    }
    panic!("no complete statistics block in:\n{out}");
}

#[test]
fn retries_are_counted_against_an_unreachable_target_and_logged() {
    let ws = Ws::new("opt-retries");
    let url = format!("sftp://u@127.0.0.1:{}/x", closed_port());
    let log = ws.p("dup.log");
    // The forms duplicity's own test harness passes.
    let r = run_ours(
        &ws,
        &[
            "collection-status",
            "--num-ret=3",
            "--backend-ret=0",
            "--log-file",
            log.to_str().unwrap(),
            &url,
        ],
        &[],
    )
    .fails();
    let attempts = r.stderr.matches("failed, retrying").count();
    assert_eq!(
        attempts,
        2,
        "3 attempts: 2 retried, the last gives up:\n{}",
        r.output()
    );
    assert!(r.stderr.contains("attempt 2 of 3 failed"), "{}", r.output());
    assert!(
        r.stderr.contains("gave up after 3 attempts"),
        "{}",
        r.output()
    );
    assert_eq!(
        r.code,
        Some(50),
        "duplicity's backend_error: {}",
        r.output()
    );
    // The log file: duplicity's machine-readable records, the same messages.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("WARNING 1\n. sftp://").count(), 2, "{text}");
    assert!(text.contains("attempt 1 of 3 failed"), "{text}");
    assert!(
        text.contains("\n\nERROR 50\n. cannot list sftp://"),
        "{text}"
    );
    assert!(text.ends_with("(temporary; try again)\n\n"), "{text}");
    // --backend-retry-delay keeps the pause fixed (our default doubles it).
    let r = run_ours(
        &ws,
        &[
            "collection-status",
            "--num-retries",
            "3",
            "--backend-retry-delay",
            "1",
            &url,
        ],
        &[],
    )
    .fails();
    assert_eq!(
        r.stderr.matches("retrying in 1s").count(),
        2,
        "{}",
        r.output()
    );
}

#[test]
fn verbosity_timestamps_and_log_fd() {
    let ws = Ws::new("opt-verbosity");
    let url = format!("sftp://u@127.0.0.1:{}/x", closed_port());
    // -v e (error): the warnings about each failed attempt are not shown, the error is.
    for v in [&["-v", "e"][..], &["--verbosity=error"], &["-v0"]] {
        let mut args = vec![
            "collection-status",
            "--num-retries",
            "2",
            "--backend-retry-delay=0",
        ];
        args.extend_from_slice(v);
        args.push(&url);
        let r = run_ours(&ws, &args, &[]).fails();
        assert!(!r.stderr.contains("warning"), "{v:?}: {}", r.output());
        assert!(
            r.stderr.contains("error: cannot list"),
            "{v:?}: {}",
            r.output()
        );
    }
    let r = run_ours(&ws, &["collection-status", "-v", "loud", &url], &[]).fails();
    assert_eq!(r.code, Some(2), "{}", r.output());
    assert!(r.stderr.contains("e, w, n, i, d"), "{}", r.output());
    // --log-timestamp: time and level first, as duplicity's.
    let r = run_ours(
        &ws,
        &[
            "collection-status",
            "--num-retries=1",
            "--log-timestamp",
            &url,
        ],
        &[],
    )
    .fails();
    let line = r.stderr.lines().last().unwrap();
    let (date, rest) = line.split_at(23);
    assert!(
        date.as_bytes()[4] == b'-' && date.as_bytes()[13] == b':' && date.as_bytes()[19] == b',',
        "{line}"
    );
    assert!(
        rest.starts_with(" ERROR  duplicity-charm: error: cannot list"),
        "{line}"
    );
    // --log-fd: the same records on an inherited descriptor.
    let fd_log = ws.p("fd.log");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            "exec 3>{}; exec {} collection-status --num-retries=2 --backend-retry-delay=0 --log-fd 3 {url}",
            fd_log.display(),
            ours_bin()
        ));
    ws.env(&mut cmd);
    let r = run_cmd(cmd, "log-fd").fails();
    assert_eq!(r.code, Some(50));
    let text = std::fs::read_to_string(&fd_log).unwrap();
    assert!(text.starts_with("WARNING 1\n. sftp://"), "{text}");
    assert!(text.contains("\nERROR 50\n"), "{text}");
}

#[test]
fn statistics_as_duplicity_3_prints_them_or_not() {
    let ws = Ws::new("opt-stats");
    let src = ws.p("src");
    build_sample(&src);
    let src_s = src.to_str().unwrap();
    let log = ws.p("stats.log");
    let ours = run_ours(
        &ws,
        &[
            "full",
            "--no-encryption",
            "--archive-dir",
            ws.p("cache-ours").to_str().unwrap(),
            "--log-file",
            log.to_str().unwrap(),
            src_s,
            &ws.url("repo-ours"),
        ],
        &[],
    )
    .ok();
    let theirs = run_duplicity3(
        &ws,
        PASS,
        &[
            "full",
            "--no-encryption",
            "--archive-dir",
            ws.p("cache-dup").to_str().unwrap(),
            src_s,
            &ws.url("repo-dup"),
        ],
    )
    .ok();
    let fields = statistics_fields(&ours.stdout);
    assert_eq!(
        fields,
        statistics_fields(&theirs.stdout),
        "the same fields in the same order"
    );
    assert!(fields.contains(&"TotalDestinationSizeChange".to_string()));
    // The block also goes to the log file, as a NOTICE record, as duplicity's.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(
            "NOTICE 1\n. --------------[ Backup Statistics ]--------------\n. StartTime "
        ),
        "{text}"
    );
    mutate(&src, 1);
    let quiet = run_ours(
        &ws,
        &[
            "incremental",
            "--no-encryption",
            "--archive-dir",
            ws.p("cache-ours").to_str().unwrap(),
            "--no-print-statistics",
            src_s,
            &ws.url("repo-ours"),
        ],
        &[],
    )
    .ok();
    assert!(
        !quiet.stdout.contains("Backup Statistics"),
        "{}",
        quiet.output()
    );
    mutate(&src, 2);
    let again = run_ours(
        &ws,
        &[
            "incremental",
            "--no-encryption",
            "--archive-dir",
            ws.p("cache-ours").to_str().unwrap(),
            "--no-print-statistics",
            "--print-statistics",
            src_s,
            &ws.url("repo-ours"),
        ],
        &[],
    )
    .ok();
    assert!(
        again.stdout.contains("Backup Statistics"),
        "the last one given wins"
    );
}

#[test]
fn tempdir_is_where_temporary_files_go() {
    let ws = Ws::new("opt-tempdir");
    let src = ws.p("src");
    write_file(&src.join("a"), b"a", 0o644, T0);
    let gone = ws.p("no-such-tmp");
    let gone_s = gone.to_str().unwrap();
    let cache = ws.p("cache");
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "full",
            "--no-encryption",
            "--archive-dir",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let src_s = src.to_str().unwrap();
        let url = ws.url("repo");
        args.extend([src_s, url.as_str()]);
        // TMPDIR names a directory that does not exist: only --tempdir can make the run work.
        run_ours(&ws, &args, &[("TMPDIR", gone_s)])
    };
    let r = backup(&[]).fails();
    assert!(
        r.stderr.contains("error"),
        "TMPDIR is used without --tempdir: {}",
        r.output()
    );
    let tmp2 = ws.p("tmp2");
    std::fs::create_dir(&tmp2).unwrap();
    backup(&["--tempdir", tmp2.to_str().unwrap()]).ok();
    // A --tempdir that cannot be used is named, before anything runs.
    let r = backup(&["--tempdir", gone_s]).fails();
    assert!(
        r.stderr.contains(&format!("--tempdir {gone_s}")),
        "{}",
        r.output()
    );
    assert_eq!(
        r.code,
        Some(23),
        "a user error, as duplicity's: {}",
        r.output()
    );
}

#[test]
fn full_if_n_inc_starts_a_new_chain() {
    let ws = Ws::new("opt-n-inc");
    let src = ws.p("src");
    for k in 0..4 {
        write_file(&src.join(format!("f{k}")), b"x", 0o644, t(k));
        ws.backup(
            Tool::Ours,
            "incremental",
            Enc::Pass(PASS),
            &src,
            "repo",
            t(k),
            &["--full-if-n-inc", "2"],
        );
    }
    // full, inc, inc, then (2 incs) a new full.
    let fulls = repo_files(&ws, "repo")
        .iter()
        .filter(|f| f.starts_with("duplicity-full.") && f.ends_with(".manifest.gpg"))
        .count();
    assert_eq!(fulls, 2, "{:?}", repo_files(&ws, "repo"));
}

#[test]
fn time_separator_in_time_strings() {
    let ws = Ws::new("opt-timesep");
    let src = ws.p("src");
    write_file(&src.join("a"), b"a", 0o644, T0);
    ws.backup(Tool::Ours, "full", Enc::Pass(PASS), &src, "repo", T0, &[]);
    // T0 is 2023-11-14T22:13:20Z.
    let url = ws.url("repo");
    let ok = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "list-current-files",
                "--time-separator",
                "_",
                "-t",
                "2023-11-14T22_13_20Z",
                &url,
            ],
        )
        .ok();
    assert!(
        ok.stdout.contains(" a\n") || ok.stdout.ends_with(" a"),
        "{}",
        ok.output()
    );
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["list-current-files", "-t", "2023-11-14T22_13_20Z", &url],
    )
    .fails();
}

#[test]
fn exit_codes_as_duplicity_3() {
    let ws = Ws::new("opt-exit");
    let src = ws.p("src");
    write_file(&src.join("a"), b"a", 0o644, T0);
    let src_s = src.to_str().unwrap();
    let url = ws.url("repo");
    let empty = ws.url("empty");
    std::fs::create_dir(ws.p("empty")).unwrap();
    run_ours(
        &ws,
        &[
            "full",
            "--archive-dir",
            ws.p("c0").to_str().unwrap(),
            src_s,
            &url,
        ],
        &[],
    )
    .ok();
    // Each case: ours, then duplicity 3.2.1 on the same backup (ours is readable by it).
    let cases: Vec<(&str, Vec<String>, &str, i32)> = vec![
        (
            "restore into a non-empty dir",
            vec!["restore".into(), url.clone(), src_s.into()],
            PASS,
            11,
        ),
        (
            "a path not in the backup",
            vec![
                "restore".into(),
                "--path-to-restore".into(),
                "nope".into(),
                url.clone(),
                ws.p("r1").to_str().unwrap().into(),
            ],
            PASS,
            19,
        ),
        (
            "a wrong passphrase",
            vec![
                "restore".into(),
                url.clone(),
                ws.p("r2").to_str().unwrap().into(),
            ],
            "wrong passphrase",
            31,
        ),
        (
            "no backup at the target",
            vec![
                "restore".into(),
                empty.clone(),
                ws.p("r3").to_str().unwrap().into(),
            ],
            PASS,
            30,
        ),
    ];
    for (i, (what, args, pass, code)) in cases.iter().enumerate() {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        let cache_o = ws.p(&format!("co{i}"));
        let cache_d = ws.p(&format!("cd{i}"));
        a.splice(1..1, ["--archive-dir", cache_o.to_str().unwrap()]);
        let r = run_ours(&ws, &a, &[("PASSPHRASE", pass)]).fails();
        assert_eq!(r.code, Some(*code), "ours, {what}: {}", r.output());
        a[2] = cache_d.to_str().unwrap();
        let d = run_duplicity3(&ws, pass, &a);
        assert_eq!(
            d.code,
            Some(*code),
            "duplicity 3.2.1, {what}: {}",
            d.output()
        );
    }
    // A backend that cannot be reached: 50 (duplicity 3.2.1 has no sftp module here to compare).
    let r = run_ours(
        &ws,
        &[
            "collection-status",
            "--num-retries=1",
            &format!("sftp://u@127.0.0.1:{}/x", closed_port()),
        ],
        &[],
    )
    .fails();
    assert_eq!(r.code, Some(50), "{}", r.output());
}
