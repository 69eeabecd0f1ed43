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
