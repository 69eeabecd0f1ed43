//! `--file-prefix`, `--file-prefix-archive|-manifest|-signature|-jsonstat` (issue 13), side by side
//! with stock duplicity 3.2.1 (scripts/duplicity3.sh): a prefixed collection written by either tool is
//! listed, restored and continued by the other; and a target holding a prefixed and an unprefixed
//! collection is read as two collections by both tools, each seeing only its own files.

use crate::support::*;

/// The prefixes of every test here, all of them different, as separate arguments.
const PREFIXES: [&str; 5] = [
    "--file-prefix=P_",
    "--file-prefix-archive=A_",
    "--file-prefix-manifest=M_",
    "--file-prefix-signature=S_",
    "--file-prefix-jsonstat=J_",
];

/// duplicity 3.2.1 with its own archive dir, `PASSPHRASE` and the workspace's environment.
fn dup3(ws: &Ws, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(duplicity3());
    let (first, rest) = args.split_first().expect("a command");
    cmd.arg(first)
        .arg("--archive-dir")
        .arg(ws.p("cache-dup3"))
        .args(rest)
        .env("PASSPHRASE", PASS);
    ws.env(&mut cmd);
    run_cmd(cmd, &format!("duplicity3 {}", args.join(" ")))
}

/// Our binary (archive dir `cache-ours`, `PASSPHRASE`).
fn ours(ws: &Ws, args: &[&str]) -> Run {
    ws.run(Tool::Ours, Enc::Pass(PASS), args)
}

fn with_prefixes<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(PREFIXES);
    v
}

/// Every file of `repo` carries `P_` and the prefix of its kind.
fn assert_all_prefixed(ws: &Ws, repo: &str) {
    for f in repo_files(ws, repo) {
        let ok = (f.starts_with("P_A_") && f.contains(".difftar"))
            || (f.starts_with("P_M_") && f.contains(".manifest"))
            || (f.starts_with("P_S_") && f.contains(".sigtar"))
            || (f.starts_with("P_J_") && f.contains(".jsonstat"));
        assert!(ok, "{f} does not carry the prefixes of its kind");
    }
}

#[test]
fn a_prefixed_collection_written_by_duplicity3_is_read_and_continued_by_us() {
    let ws = Ws::new("pfx-from-dup3");
    let src = ws.p("src");
    build_sample(&src);
    let (s, url) = (src.to_str().unwrap(), ws.url("repo"));
    let t0 = T0.to_string();
    dup3(
        &ws,
        &with_prefixes(&["full", "--jsonstat", "--current-time", &t0, s, &url]),
    )
    .ok();
    assert_all_prefixed(&ws, "repo");
    assert!(
        repo_files(&ws, "repo")
            .iter()
            .any(|f| f.starts_with("P_J_")),
        "duplicity 3 wrote its jsonstat file too: {:?}",
        repo_files(&ws, "repo")
    );

    // Listed and restored by us, with the prefixes.
    let listed = ours(&ws, &with_prefixes(&["list-current-files", &url])).ok();
    assert!(listed.stdout.contains("a.txt"), "{}", listed.stdout);
    let dst = ws.p("restored-full");
    ours(
        &ws,
        &with_prefixes(&["restore", &url, dst.to_str().unwrap()]),
    )
    .ok();
    assert_same_tree(&src, &dst, "our restore of duplicity 3's prefixed full");

    // Our incremental continues duplicity's chain, with the prefixes.
    mutate(&src, 1);
    let t1 = t(1).to_string();
    ours(
        &ws,
        &with_prefixes(&["incremental", "--current-time", &t1, s, &url]),
    )
    .ok();
    assert_all_prefixed(&ws, "repo");
    assert!(
        repo_files(&ws, "repo")
            .iter()
            .any(|f| f.starts_with("P_A_duplicity-inc.")),
        "{:?}",
        repo_files(&ws, "repo")
    );
    let status = dup3(&ws, &with_prefixes(&["collection-status", &url])).ok();
    assert!(
        status.stdout.contains("Incremental") || status.stdout.contains("incremental"),
        "duplicity 3 sees our incremental in its chain:\n{}",
        status.stdout
    );
    let dst = ws.p("restored-by-dup3");
    dup3(
        &ws,
        &with_prefixes(&["restore", &url, dst.to_str().unwrap()]),
    )
    .ok();
    assert_same_tree(
        &src,
        &dst,
        "duplicity 3's restore of our prefixed incremental",
    );

    // Without the prefixes neither tool sees a backup there.
    let r = ours(&ws, &["list-current-files", &url]).fails();
    assert_eq!(
        r.code,
        Some(30),
        "no backup without the prefixes: {}",
        r.output()
    );
}

#[test]
fn a_prefixed_collection_written_by_us_is_read_and_continued_by_duplicity3() {
    let ws = Ws::new("pfx-to-dup3");
    let src = ws.p("src");
    build_sample(&src);
    let (s, url) = (src.to_str().unwrap(), ws.url("repo"));
    let t0 = T0.to_string();
    ours(
        &ws,
        &with_prefixes(&["full", "--volsize", "1", "--current-time", &t0, s, &url]),
    )
    .ok();
    assert_all_prefixed(&ws, "repo");
    let files = repo_files(&ws, "repo");
    for prefix in [
        "P_A_duplicity-full.",
        "P_M_duplicity-full.",
        "P_S_duplicity-full-signatures.",
    ] {
        assert!(
            files.iter().any(|f| f.starts_with(prefix)),
            "{prefix}: {files:?}"
        );
    }

    let listed = dup3(&ws, &with_prefixes(&["list-current-files", &url])).ok();
    assert!(listed.stdout.contains("a.txt"), "{}", listed.stdout);
    let dst = ws.p("restored-by-dup3");
    dup3(
        &ws,
        &with_prefixes(&["restore", &url, dst.to_str().unwrap()]),
    )
    .ok();
    assert_same_tree(&src, &dst, "duplicity 3's restore of our prefixed full");

    // duplicity 3 continues our chain; we restore its incremental.
    mutate(&src, 1);
    let t1 = t(1).to_string();
    dup3(
        &ws,
        &with_prefixes(&["incremental", "--current-time", &t1, s, &url]),
    )
    .ok();
    assert_all_prefixed(&ws, "repo");
    let dst = ws.p("restored-by-us");
    ours(
        &ws,
        &with_prefixes(&["restore", &url, dst.to_str().unwrap()]),
    )
    .ok();
    assert_same_tree(
        &src,
        &dst,
        "our restore of duplicity 3's prefixed incremental",
    );
}

#[test]
fn prefixed_and_unprefixed_collections_in_one_target_stay_apart() {
    let ws = Ws::new("pfx-two");
    let (a, b) = (ws.p("src-a"), ws.p("src-b"));
    write_file(&a.join("only-in-a.txt"), b"a", 0o644, T0);
    write_file(&b.join("only-in-b.txt"), b"b", 0o644, T0);
    let url = ws.url("repo");
    let (t0, t1) = (T0.to_string(), t(1).to_string());
    // Collection A without prefixes (duplicity 3), collection B with them (us, two chains), at the
    // same times, so only the prefixes tell their files apart.
    dup3(
        &ws,
        &["full", "--current-time", &t0, a.to_str().unwrap(), &url],
    )
    .ok();
    for now in [&t0, &t1] {
        ours(
            &ws,
            &with_prefixes(&["full", "--current-time", now, b.to_str().unwrap(), &url]),
        )
        .ok();
    }

    for (tool, prefixed) in [
        ("ours", false),
        ("ours", true),
        ("dup3", false),
        ("dup3", true),
    ] {
        let mut args = vec!["list-current-files", url.as_str()];
        if prefixed {
            args.extend(PREFIXES);
        }
        let out = if tool == "ours" {
            ours(&ws, &args).ok()
        } else {
            dup3(&ws, &args).ok()
        };
        let (want, other) = if prefixed {
            ("only-in-b.txt", "only-in-a.txt")
        } else {
            ("only-in-a.txt", "only-in-b.txt")
        };
        assert!(
            out.stdout.contains(want) && !out.stdout.contains(other),
            "{tool}, prefixes {prefixed}: the other collection's files were mixed in:\n{}",
            out.stdout
        );
    }
    let st = ours(&ws, &["--json", "collection-status", &url]).ok();
    assert!(
        !st.stdout.contains("only-in-b") && !st.stdout.contains("P_"),
        "without prefixes the prefixed files are not listed as part of anything:\n{}",
        st.stdout
    );

    // Deleting the prefixed collection's older chain touches nothing of the unprefixed one, whose
    // only chain is as old.
    let before: Vec<String> = repo_files(&ws, "repo")
        .into_iter()
        .filter(|f| !f.starts_with("P_"))
        .collect();
    ours(
        &ws,
        &with_prefixes(&["remove-all-but-n-full", "1", "--force", &url]),
    )
    .ok();
    let after = repo_files(&ws, "repo");
    let unprefixed: Vec<String> = after
        .iter()
        .filter(|f| !f.starts_with("P_"))
        .cloned()
        .collect();
    assert_eq!(
        unprefixed, before,
        "the unprefixed collection's files are all there"
    );
    let stamp0 = stamp(T0);
    assert!(
        !after
            .iter()
            .any(|f| f.starts_with("P_") && f.contains(&stamp0)),
        "the prefixed older chain is gone: {after:?}"
    );
    let dst = ws.p("restored-a");
    dup3(&ws, &["restore", &url, dst.to_str().unwrap()]).ok();
    assert_same_tree(
        &a,
        &dst,
        "the unprefixed collection after the prefixed removal",
    );
    let dst = ws.p("restored-b");
    ours(
        &ws,
        &with_prefixes(&["restore", &url, dst.to_str().unwrap()]),
    )
    .ok();
    assert_same_tree(&b, &dst, "the prefixed collection's newest chain");
}
