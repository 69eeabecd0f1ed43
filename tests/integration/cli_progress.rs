//! `--progress` and `--progress-rate` (issue 13): on a terminal (a pseudo-terminal made by `script`) a
//! bar with the bytes read of the total, the rate, the percentage and the time left; off a terminal no
//! bar but one line per volume stored or restored; without `--progress`, neither.

use std::process::Command;

use crate::support::*;

/// 3 MiB of incompressible data in 3 files, so 1 MiB volumes make several.
fn source(ws: &Ws) -> std::path::PathBuf {
    let src = ws.p("src");
    for i in 0..3u64 {
        write_file(
            &src.join(format!("f{i}")),
            &random_bytes(i, 1024 * 1024),
            0o644,
            T0,
        );
    }
    src
}

/// Runs our binary in a pseudo-terminal (`script`), stdin from /dev/null; returns what the terminal
/// showed (stdout and stderr are the terminal) and the exit code.
fn in_terminal(ws: &Ws, args: &[&str]) -> (String, Option<i32>) {
    let line = std::iter::once(ours_bin())
        .chain(args.iter().copied())
        .map(|a| {
            assert!(
                a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-.:=,".contains(&b)),
                "{a}: keep test arguments free of shell syntax"
            );
            a.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ");
    // A wide terminal, so the bar's line is not cut to fit.
    let line = format!("stty cols 200 rows 50; {line}");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("PASSPHRASE", PASS);
    ws.env(&mut cmd);
    let r = run_cmd(cmd, &format!("script -c {line}"));
    (r.stdout, r.code)
}

fn volumes_in(ws: &Ws, repo: &str) -> usize {
    repo_files(ws, repo)
        .iter()
        .filter(|f| f.contains(".difftar"))
        .count()
}

#[test]
fn on_a_terminal_a_bar_shows_bytes_rate_percentage_and_eta() {
    let ws = Ws::new("progress-tty");
    let src = source(&ws);
    let cache = ws.p("cache");
    let (screen, code) = in_terminal(
        &ws,
        &[
            "full",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--volsize",
            "1",
            "--progress",
            "--progress-rate",
            "1",
            src.to_str().unwrap(),
            &ws.url("repo"),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    // The last drawing of the bar: all 3 MiB read, 100%, nothing left.
    assert!(
        screen.contains("3.00 MiB/3.00 MiB"),
        "bytes read of the total:\n{screen}"
    );
    assert!(
        screen.contains("MiB/s]") || screen.contains("KiB/s]") || screen.contains("B/s]"),
        "the rate:\n{screen}"
    );
    assert!(
        screen.contains("100% ETA 0s"),
        "percentage and ETA:\n{screen}"
    );
    assert!(screen.contains("[========"), "the bar:\n{screen}");
    // No per-volume lines on a terminal: the bar says it.
    assert!(!screen.contains("Progress: volume"), "{screen}");

    // A restore draws its bar of volumes.
    let dst = ws.p("dst");
    let (screen, code) = in_terminal(
        &ws,
        &[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--progress",
            &ws.url("repo"),
            dst.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    let n = volumes_in(&ws, "repo");
    assert!(
        screen.contains(&format!("{n}/{n} volumes")) && screen.contains("100%"),
        "all {n} volumes restored:\n{screen}"
    );
    assert!(screen.contains("3.00 MiB written"), "{screen}");
    assert_same_tree(&src, &dst, "restore with --progress");
}

#[test]
fn off_a_terminal_a_line_per_volume_and_nothing_without_progress() {
    let ws = Ws::new("progress-lines");
    let src = source(&ws);
    let s = src.to_str().unwrap();
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &["full", "--volsize", "1", "--progress", s, &ws.url("repo")],
        )
        .ok();
    let n = volumes_in(&ws, "repo");
    assert!(n >= 3, "{n} volumes");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("Progress: volume "))
        .collect();
    assert_eq!(lines.len(), n, "one line per volume:\n{}", r.stderr);
    for l in &lines {
        assert!(
            l.contains(" stored (") && l.contains(" of 3.00 MiB read (") && l.contains("/s, ETA "),
            "{l}"
        );
    }
    assert!(
        !r.stderr.contains('\r') && !r.stderr.contains("\x1b["),
        "no bar drawing: {:?}",
        r.stderr
    );

    let dst = ws.p("dst");
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "restore",
                "--progress",
                &ws.url("repo"),
                dst.to_str().unwrap(),
            ],
        )
        .ok();
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("Progress: volume "))
        .collect();
    assert_eq!(lines.len(), n, "{}", r.stderr);
    assert!(
        lines[n - 1].starts_with(&format!(
            "Progress: volume {n} of {n} restored (100%), 3.00 MiB written"
        )),
        "{}",
        lines[n - 1]
    );

    // Without --progress: no lines.
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &["full", "--volsize", "1", s, &ws.url("repo2")],
        )
        .ok();
    assert!(!r.stderr.contains("Progress:"), "{}", r.stderr);
}

#[test]
fn a_progress_rate_of_zero_is_refused() {
    let ws = Ws::new("progress-rate");
    let src = source(&ws);
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "full",
                "--progress",
                "--progress-rate",
                "0",
                src.to_str().unwrap(),
                &ws.url("repo"),
            ],
        )
        .fails();
    assert_eq!(r.code, Some(2), "{}", r.output());
    assert!(r.stderr.contains("--progress-rate"), "{}", r.stderr);
}

#[test]
fn the_total_counts_only_the_selected_files_so_the_bar_reaches_100() {
    let ws = Ws::new("progress-selection");
    let src = source(&ws);
    // 2 MiB the selection leaves out: counted, the bar would stop at 60% and the ETA mislead.
    let skip = src.join("skip");
    write_file(&skip.join("big"), &random_bytes(9, 2 << 20), 0o644, T0);
    let (screen, code) = in_terminal(
        &ws,
        &[
            "full",
            "--archive-dir",
            ws.p("cache").to_str().unwrap(),
            "--volsize",
            "1",
            "--progress",
            "--progress-rate",
            "1",
            "--exclude",
            skip.to_str().unwrap(),
            src.to_str().unwrap(),
            &ws.url("repo"),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("3.00 MiB/3.00 MiB") && screen.contains("100% ETA 0s"),
        "the selected 3 MiB of 3 MiB, 100%:\n{screen}"
    );
    assert!(!screen.contains("/5.00 MiB"), "{screen}");
}
