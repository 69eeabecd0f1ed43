//! More of duplicity 3.2.1's options (issue 13), each checked by its effect and, where both tools
//! have it, against stock duplicity 3.2.1 (scripts/duplicity3.sh): `--jsonstat` (the same keys, in the
//! same order, with the same values where a run does not change them), `--rename`, `--numeric-owner`
//! and `--no-restore-ownership`.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The text of the gzipped jsonstat file `name` in `repo`.
fn jsonstat_text(ws: &Ws, repo: &str, name: &str) -> String {
    let f = std::fs::File::open(ws.p(repo).join(name)).unwrap_or_else(|e| {
        panic!(
            "{repo}/{name}: {e}; the repository has {:?}",
            repo_files(ws, repo)
        )
    });
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Every key path with the JSON type of its value, in document order.
fn shape(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value as V;
    match v {
        V::Object(m) => {
            for (k, x) in m {
                shape(x, &format!("{at}/{k}"), out);
            }
        }
        V::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                shape(x, &format!("{at}/{i}"), out);
            }
        }
        V::Null => out.push(format!("{at}: null")),
        V::Bool(_) => out.push(format!("{at}: bool")),
        V::Number(n) if n.is_f64() => out.push(format!("{at}: float")),
        V::Number(_) => out.push(format!("{at}: integer")),
        V::String(_) => out.push(format!("{at}: string")),
    }
}

/// The keys of the top level and of `backup_meta`, in the order the text has them.
fn key_order(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('"')
                && t.contains("\": ")
                && (l.len() - t.len() == 4 || l.len() - t.len() == 8)
        })
        .map(|l| l.trim().split('"').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn jsonstat_has_duplicity3_keys_types_order_and_values() {
    let ws = Ws::new("jsonstat");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    let (t0, t1) = (T0.to_string(), t(1).to_string());
    let ours_url = ws.url("repo-ours");
    let dup_url = ws.url("repo-dup");
    let mine = ours(
        &ws,
        &["full", "--jsonstat", "--current-time", &t0, s, &ours_url],
    )
    .ok();
    dup3(
        &ws,
        &["full", "--jsonstat", "--current-time", &t0, s, &dup_url],
    )
    .ok();
    mutate(&src, 1);
    ours(
        &ws,
        &[
            "incremental",
            "--jsonstat",
            "--current-time",
            &t1,
            s,
            &ours_url,
        ],
    )
    .ok();
    dup3(
        &ws,
        &[
            "incremental",
            "--jsonstat",
            "--current-time",
            &t1,
            s,
            &dup_url,
        ],
    )
    .ok();
    assert!(
        mine.stdout.contains("\n    \"backup_meta\": {\n"),
        "the JSON is printed too:\n{}",
        mine.stdout
    );

    for name in [
        format!("duplicity-full.{}.jsonstat.gz", stamp(T0)),
        format!("duplicity-inc.{}.to.{}.jsonstat.gz", stamp(T0), stamp(t(1))),
    ] {
        let (a, b) = (
            jsonstat_text(&ws, "repo-ours", &name),
            jsonstat_text(&ws, "repo-dup", &name),
        );
        assert_eq!(
            key_order(&a),
            key_order(&b),
            "{name}: keys in the same order"
        );
        let (va, vb): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&a).unwrap(),
            serde_json::from_str(&b).unwrap(),
        );
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        shape(&va, "", &mut sa);
        shape(&vb, "", &mut sb);
        sa.sort();
        sb.sort();
        assert_eq!(
            sa, sb,
            "{name}: the same keys with the same types\nours:\n{a}\nduplicity 3.2.1:\n{b}"
        );
        for key in [
            "/Filename",
            "/TotalDestinationSizeChange",
            "/Errors",
            "/SourceFiles",
            "/NewFiles",
            "/DeletedFiles",
            "/ChangedFiles",
            "/DeltaEntries",
            "/SourceFileSize",
            "/NewFileSize",
            "/ChangedFileSize",
            "/ChangedDeltaSize",
            "/backup_meta/action",
            "/backup_meta/skipped_inc",
            "/backup_meta/time_full_bkp",
            "/backup_meta/time_full_bkp_str",
            "/backup_meta/no_of_inc",
            "/backup_meta/concurrency",
            "/backup_meta/source",
            "/backup_meta/local_json_stat",
        ] {
            assert_eq!(
                va.pointer(key),
                vb.pointer(key),
                "{name}: {key}\nours:\n{a}\nduplicity 3.2.1:\n{b}"
            );
        }
        // RawDeltaSize depends on the delta encoder (checked within bounds in stats_parity.rs).
        assert_eq!(va["backup_meta"]["target"], ours_url.as_str());
    }

    // Each tool restores the other's collection, jsonstat files and all.
    let dst = ws.p("dup3-restores-ours");
    dup3(&ws, &["restore", &ours_url, dst.to_str().unwrap()]).ok();
    assert_same_tree(
        &src,
        &dst,
        "duplicity 3 restoring our collection with jsonstat files",
    );
    let dst = ws.p("ours-restores-dup3");
    ours(&ws, &["restore", &dup_url, dst.to_str().unwrap()]).ok();
    assert_same_tree(
        &src,
        &dst,
        "our restore of duplicity 3's collection with jsonstat files",
    );

    // Without --jsonstat, no such file.
    ours(
        &ws,
        &[
            "full",
            "--current-time",
            &t(2).to_string(),
            s,
            &ws.url("repo-plain"),
        ],
    )
    .ok();
    assert!(
        !repo_files(&ws, "repo-plain")
            .iter()
            .any(|f| f.contains("jsonstat")),
        "{:?}",
        repo_files(&ws, "repo-plain")
    );
}

#[test]
fn rename_restores_paths_elsewhere_as_duplicity3_does() {
    let ws = Ws::new("rename");
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    ours(
        &ws,
        &[
            "full",
            "--current-time",
            &T0.to_string(),
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let renames = [
        "--rename",
        "a/b",
        "renamed-b",
        "--rename",
        "B/y",
        "moved/y2",
    ];
    let theirs = ws.p("dup3");
    let mut args = vec!["restore", url.as_str(), theirs.to_str().unwrap()];
    args.extend(renames);
    dup3(&ws, &args).ok();
    let mine = ws.p("ours");
    let mut args = vec!["restore", url.as_str(), mine.to_str().unwrap()];
    args.extend(renames);
    ours(&ws, &args).ok();
    assert!(mine.join("renamed-b").is_file() && !mine.join("a/b").exists());
    assert!(mine.join("moved/y2/z.txt").is_file() && !mine.join("B/y").exists());
    assert_same_entry(&src.join("a/b"), &mine.join("renamed-b"), "a/b renamed");
    // `moved`, made for the renamed `B/y`, is in no backup: both tools leave it with the time it was made.
    set_mtime(&theirs.join("moved"), T0);
    set_mtime(&mine.join("moved"), T0);
    assert_same_tree(&theirs, &mine, "our --rename restore against duplicity 3's");

    // Implicit restore (URL DIR) with --rename's two values after the arguments.
    let implicit = ws.p("implicit");
    ours(
        &ws,
        &[
            url.as_str(),
            implicit.to_str().unwrap(),
            "--rename",
            "a/b",
            "renamed-b",
        ],
    )
    .ok();
    assert!(implicit.join("renamed-b").is_file());

    // A rule that would leave the target is refused before anything is written.
    let r = ours(
        &ws,
        &[
            "restore",
            &url,
            ws.p("bad").to_str().unwrap(),
            "--rename",
            "a/b",
            "../escape",
        ],
    )
    .fails();
    assert!(r.stderr.contains("--rename a/b ../escape"), "{}", r.stderr);
    assert!(!ws.p("escape").exists() && !ws.p("bad").exists());
}

/// Runs our restore where the user database says `daemon` is 4321:4322 (bind mounts in a mount
/// namespace of its own), so owners by name and by number differ.
fn restore_with_other_ids(ws: &Ws, url: &str, dst: &Path, extra: &[&str]) {
    let passwd = ws.p("passwd");
    let group = ws.p("group");
    let text = std::fs::read_to_string("/etc/passwd").unwrap();
    std::fs::write(
        &passwd,
        text.replace("\ndaemon:x:1:1:", "\ndaemon:x:4321:4322:"),
    )
    .unwrap();
    let text = std::fs::read_to_string("/etc/group").unwrap();
    std::fs::write(&group, text.replace("\ndaemon:x:1:", "\ndaemon:x:4322:")).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /etc/passwd && mount --bind {} /etc/group && exec \"$@\"",
            passwd.display(),
            group.display()
        ))
        .arg("sh")
        .arg(ours_bin())
        .args(["restore", "--no-encryption", "--archive-dir"])
        .arg(ws.p("cache-ours"))
        .args(extra)
        .arg(url)
        .arg(dst);
    ws.env(&mut cmd);
    run_cmd(cmd, "unshare ... restore").ok();
}

#[test]
fn numeric_owner_and_no_restore_ownership() {
    if !is_root() {
        eprintln!("skipped: setting owners needs root");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let ws = Ws::new("owners");
    let src = ws.p("src");
    write_file(&src.join("f"), b"owned by daemon", 0o644, T0);
    rustix::fs::chown(
        src.join("f"),
        Some(rustix::fs::Uid::from_raw(1)),
        Some(rustix::fs::Gid::from_raw(1)),
    )
    .unwrap();
    let url = ws.url("repo");
    ours(
        &ws,
        &[
            "full",
            "--current-time",
            &T0.to_string(),
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let owner = |d: &str| {
        let m = std::fs::metadata(ws.p(d).join("f")).unwrap();
        (m.uid(), m.gid())
    };
    restore_with_other_ids(&ws, &url, &ws.p("by-name"), &[]);
    assert_eq!(
        owner("by-name"),
        (4321, 4322),
        "by the recorded names (duplicity's default)"
    );
    restore_with_other_ids(&ws, &url, &ws.p("by-number"), &["--numeric-owner"]);
    assert_eq!(
        owner("by-number"),
        (1, 1),
        "--numeric-owner: by the recorded numbers"
    );
    restore_with_other_ids(&ws, &url, &ws.p("no-owner"), &["--no-restore-ownership"]);
    assert_eq!(
        owner("no-owner"),
        (0, 0),
        "--no-restore-ownership: the restoring user's"
    );
    restore_with_other_ids(
        &ws,
        &url,
        &ws.p("old-name"),
        &["--do-not-restore-ownership"],
    );
    assert_eq!(owner("old-name"), (0, 0), "0.8's spelling");
}

#[test]
fn no_compression_stores_plain_files_that_duplicity3_reads_and_the_reverse() {
    let ws = Ws::new("no-compression");
    let src = ws.p("src");
    build_sample(&src);
    let s = src.to_str().unwrap();
    let t0 = T0.to_string();
    ours(
        &ws,
        &[
            "full",
            "--no-compression",
            "--current-time",
            &t0,
            s,
            &ws.url("repo-ours"),
        ],
    )
    .ok();
    let files = repo_files(&ws, "repo-ours");
    assert!(
        files
            .iter()
            .all(|f| f.ends_with(".difftar") || f.ends_with(".sigtar") || f.ends_with(".manifest")),
        "nothing gzipped: {files:?}"
    );
    let dst = ws.p("dup3-restores-ours");
    dup3(
        &ws,
        &["restore", &ws.url("repo-ours"), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(
        &src,
        &dst,
        "duplicity 3 restoring our --no-compression backup",
    );

    dup3(
        &ws,
        &[
            "full",
            "--no-compression",
            "--current-time",
            &t0,
            s,
            &ws.url("repo-dup"),
        ],
    )
    .ok();
    assert!(repo_files(&ws, "repo-dup")
        .iter()
        .any(|f| f.ends_with(".vol1.difftar")));
    let dst = ws.p("ours-restores-dup3");
    ours(
        &ws,
        &["restore", &ws.url("repo-dup"), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(
        &src,
        &dst,
        "our restore of duplicity 3's --no-compression backup",
    );

    // Encrypted: no compression inside, so compressible data takes more room; `--compression` (last)
    // wins over an earlier `--no-compression`, and `--encryption` over an earlier `--no-encryption`.
    let text = ws.p("text");
    write_file(&text.join("t"), &text_bytes(7, 400_000), 0o644, T0);
    let vol_size = |repo: &str| -> u64 {
        repo_files(&ws, repo)
            .iter()
            .filter(|f| f.contains(".vol1.difftar"))
            .map(|f| std::fs::metadata(ws.p(repo).join(f)).unwrap().len())
            .sum()
    };
    let tx = text.to_str().unwrap();
    for (repo, extra) in [
        ("enc-plain", &["--no-compression"][..]),
        ("enc-default", &["--no-compression", "--compression"][..]),
        ("enc-again", &["--no-encryption", "--encryption"][..]),
    ] {
        let mut args = vec!["full", "--current-time", t0.as_str()];
        args.extend(extra);
        let url = ws.url(repo);
        args.extend([tx, url.as_str()]);
        ws.run(Tool::Ours, Enc::Pass(PASS), &args).ok();
        assert!(
            repo_files(&ws, repo).iter().all(|f| f.ends_with(".gpg")),
            "{repo}: encrypted: {:?}",
            repo_files(&ws, repo)
        );
    }
    assert!(
        vol_size("enc-plain") > vol_size("enc-default") + 100_000,
        "uncompressed inside: {} vs {}",
        vol_size("enc-plain"),
        vol_size("enc-default")
    );
    let dst = ws.p("enc-restored");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["restore", &ws.url("enc-plain"), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(
        &text,
        &dst,
        "our restore of an encrypted --no-compression backup",
    );
}
