//! Damaged and hostile repositories: one flipped byte in a volume, a manifest or a signature file, a
//! truncated or missing volume, a manifest that lies about its volumes' bounds, a wrong passphrase. Each
//! must fail with one clear line naming what failed, a non-zero exit, and nothing written outside the
//! restore target.

use crate::support::*;
use std::fs;

/// A two-backup chain with several volumes; returns the workspace.
fn chain(name: &str, enc: Enc) -> Ws {
    let ws = Ws::new(name);
    let src = ws.p("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        write_file(
            &src.join(format!("d{i}.bin")),
            &random_bytes(i, 600_000),
            0o644,
            1_600_000_000,
        );
    }
    write_file(&src.join("z.txt"), b"last\n", 0o644, 1_600_000_000);
    ws.backup(
        Tool::Ours,
        "full",
        enc,
        &src,
        "repo",
        t(0),
        &["--volsize", "1"],
    );
    write_file(&src.join("z.txt"), b"changed\n", 0o644, 1_600_000_500);
    ws.backup(
        Tool::Ours,
        "incremental",
        enc,
        &src,
        "repo",
        t(1),
        &["--volsize", "1"],
    );
    ws
}

fn file_named(ws: &Ws, pat: &str) -> String {
    dir_names(&ws.p("repo"))
        .into_iter()
        .find(|n| n.contains(pat))
        .unwrap_or_else(|| panic!("no file matching {pat}"))
}

fn flip(ws: &Ws, name: &str, at_fraction: f64) {
    let p = ws.p("repo").join(name);
    let mut b = fs::read(&p).unwrap();
    let i = (((b.len() as f64) * at_fraction) as usize).min(b.len() - 1);
    b[i] ^= 0x01;
    fs::write(&p, b).unwrap();
}

/// Runs `args` with our tool and asserts a non-zero exit with one stderr line containing `needle`.
fn fails_naming(ws: &Ws, enc: Enc, args: &[&str], needle: &str) -> String {
    let r = ws.run(Tool::Ours, enc, args).fails();
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one error line:\n{}", r.output());
    assert!(
        lines[0].contains(needle),
        "the error does not name {needle}:\n{}",
        r.output()
    );
    lines[0].to_string()
}

fn restore_fails(ws: &Ws, enc: Enc, needle: &str) -> String {
    let dst = ws.p("dst");
    let _ = fs::remove_dir_all(&dst);
    let url = ws.url("repo");
    let e = fails_naming(ws, enc, &["restore", &url, dst.to_str().unwrap()], needle);
    let v = fails_naming(
        ws,
        enc,
        &["verify", &url, ws.p("src").to_str().unwrap()],
        needle,
    );
    // Nothing beside the known workspace entries.
    for n in dir_names(ws.root()) {
        assert!(
            ["home", "tmp", "gnupg", "src", "repo", "dst", "cache-ours"].contains(&n.as_str()),
            "unexpected {n} in the workspace"
        );
    }
    format!("{e}\n{v}")
}

#[test]
fn flipped_byte_in_a_volume_is_named() {
    for enc in [Enc::Plain, Enc::Pass(PASS)] {
        let ws = chain("flip-vol", enc);
        let vol = file_named(&ws, "full.");
        let vol = if vol.contains("vol") {
            vol
        } else {
            file_named(&ws, ".vol2.")
        };
        flip(&ws, &vol, 0.5);
        restore_fails(&ws, enc, &vol);
    }
}

#[test]
fn truncated_and_missing_volumes_are_named() {
    let ws = chain("trunc-vol", Enc::Pass(PASS));
    let vol = file_named(&ws, ".vol2.");
    let p = ws.p("repo").join(&vol);
    let b = fs::read(&p).unwrap();
    fs::write(&p, &b[..b.len() / 2]).unwrap();
    restore_fails(&ws, Enc::Pass(PASS), &vol);
    fs::remove_file(&p).unwrap();
    restore_fails(&ws, Enc::Pass(PASS), "volume 2");
}

#[test]
fn flipped_byte_in_an_encrypted_manifest_is_named() {
    let ws = chain("flip-man", Enc::Pass(PASS));
    let man = file_named(&ws, "full.20231114T221320Z.manifest");
    flip(&ws, &man, 0.7);
    restore_fails(&ws, Enc::Pass(PASS), &man);
}

#[test]
fn flipped_byte_in_a_plain_manifest_never_escapes() {
    let ws = chain("flip-plain-man", Enc::Plain);
    let man = file_named(&ws, "full.20231114T221320Z.manifest");
    // The first hash digit: the volume no longer matches its hash.
    let p = ws.p("repo").join(&man);
    let text = fs::read_to_string(&p).unwrap();
    let i = text.find("Hash SHA1 ").unwrap() + 10;
    let mut b = text.into_bytes();
    b[i] = if b[i] == b'0' { b'1' } else { b'0' };
    fs::write(&p, b).unwrap();
    restore_fails(&ws, Enc::Plain, "corrupt");
}

#[test]
fn manifest_lying_about_bounds_is_a_clear_error() {
    let ws = chain("lying-man", Enc::Plain);
    let man = file_named(&ws, "full.20231114T221320Z.manifest");
    let p = ws.p("repo").join(&man);
    let text = fs::read_to_string(&p).unwrap();
    // Claim volume 1 ends at the first path, so a single-file restore skips the volume holding it.
    let lie = text.replacen("EndingPath     d0.bin", "EndingPath     .", 1);
    fs::write(&p, lie).unwrap();
    let dst = ws.p("one");
    let url = ws.url("repo");
    let r = ws.run(
        Tool::Ours,
        Enc::Plain,
        &[
            "restore",
            "--file-to-restore",
            "d0.bin",
            "-t",
            &t(0).to_string(),
            &url,
            dst.to_str().unwrap(),
        ],
    );
    if !r.success() {
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", r.output());
    } else {
        assert_eq!(fs::read(&dst).unwrap(), random_bytes(0, 600_000));
    }
}

#[test]
fn flipped_byte_in_a_signature_file_is_named() {
    for enc in [Enc::Plain, Enc::Pass(PASS)] {
        let ws = chain("flip-sig", enc);
        let sig = file_named(&ws, "full-signatures");
        flip(&ws, &sig, 0.5);
        // A fresh archive dir must copy (and so check) the signature file.
        let _ = fs::remove_dir_all(ws.cache(Tool::Ours));
        fails_naming(&ws, enc, &["list-current-files", &ws.url("repo")], &sig);
        let src = ws.p("src");
        write_file(&src.join("new.txt"), b"new\n", 0o644, 1_600_000_900);
        let r = ws.run(
            Tool::Ours,
            enc,
            &[
                "incremental",
                "--current-time",
                &t(2).to_string(),
                src.to_str().unwrap(),
                &ws.url("repo"),
            ],
        );
        assert!(!r.success() && r.stderr.contains(&sig), "{}", r.output());
    }
}

#[test]
fn wrong_passphrase_is_one_clear_line() {
    let ws = chain("wrong-pass", Enc::Pass(PASS));
    let line = restore_fails(&ws, Enc::Pass("not the passphrase"), "passphrase");
    assert!(
        !line.contains("not the passphrase"),
        "the passphrase was printed: {line}"
    );
}

/// Five files over four full volumes (d1 spans volumes 1–2, d3 volumes 2–3), then an incremental
/// that changes d2 (a delta against the full's copy, which lies in volume 2) and z.txt. Returns the
/// workspace and each file's content as of the incremental.
fn spanning_chain(name: &str, enc: Enc) -> (Ws, Vec<(String, Vec<u8>)>) {
    let ws = Ws::new(name);
    let src = ws.p("src");
    fs::create_dir_all(&src).unwrap();
    let mut want = Vec::new();
    for i in 0..5 {
        let data = random_bytes(10 + i, 600_000);
        write_file(&src.join(format!("d{i}.bin")), &data, 0o644, 1_600_000_000);
        want.push((format!("d{i}.bin"), data));
    }
    write_file(&src.join("z.txt"), b"last\n", 0o644, 1_600_000_000);
    ws.backup(
        Tool::Ours,
        "full",
        enc,
        &src,
        "repo",
        t(0),
        &["--volsize", "1"],
    );
    let mut d2 = want[2].1.clone();
    d2[1000..1100].fill(7);
    write_file(&src.join("d2.bin"), &d2, 0o644, 1_600_000_500);
    want[2].1 = d2;
    write_file(&src.join("z.txt"), b"changed\n", 0o644, 1_600_000_500);
    want.push(("z.txt".into(), b"changed\n".to_vec()));
    ws.backup(
        Tool::Ours,
        "incremental",
        enc,
        &src,
        "repo",
        t(1),
        &["--volsize", "1"],
    );
    assert!(
        dir_names(&ws.p("repo"))
            .iter()
            .any(|n| n.contains("full.") && n.contains(".vol4.")),
        "the full set should have four volumes: {:?}",
        dir_names(&ws.p("repo"))
    );
    (ws, want)
}

/// The files of `want` that `dst` holds exactly; any other file in `dst` (one not restored
/// intact, left behind as if it were) fails the test.
fn intact_files(dst: &std::path::Path, want: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut intact = Vec::new();
    for n in dir_names(dst) {
        let (_, data) = want
            .iter()
            .find(|(w, _)| *w == n)
            .unwrap_or_else(|| panic!("unexpected {n} in the restore"));
        assert!(
            fs::read(dst.join(&n)).unwrap() == *data,
            "{n} was left in the restore with the wrong content"
        );
        intact.push(n);
    }
    intact.sort();
    intact
}

/// The same restore by stock duplicity 3.2.1: its exit code and the files it restored intact
/// (its damaged leftovers are not counted).
fn duplicity3_restore(ws: &Ws, dst: &str) -> (Option<i32>, Vec<String>) {
    let dst = ws.p(dst);
    let mut cmd = std::process::Command::new(crate::support::duplicity3());
    cmd.arg("restore")
        .arg("--archive-dir")
        .arg(ws.p("cache-dup3"))
        .arg("--no-encryption")
        .arg("--ignore-errors")
        .arg(ws.url("repo"))
        .arg(&dst);
    ws.env(&mut cmd);
    let r = run_cmd(cmd, "duplicity3 restore --ignore-errors");
    let src = ws.p("src");
    let mut intact: Vec<String> = dir_names(&dst)
        .into_iter()
        .filter(|n| fs::read(dst.join(n)).ok() == fs::read(src.join(n)).ok())
        .collect();
    intact.sort();
    (r.code, intact)
}

/// Restores with --ignore-errors after `damage` named `needle` on stderr; checks what came back.
fn restore_ignoring(ws: &Ws, enc: Enc, want: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    let dst = ws.p("dst");
    let url = ws.url("repo");
    // Without the option: one error line naming the damage, as before.
    fails_naming(ws, enc, &["restore", &url, dst.to_str().unwrap()], needle);
    let _ = fs::remove_dir_all(&dst);
    let r = ws.run(
        Tool::Ours,
        enc,
        &["restore", "--ignore-errors", &url, dst.to_str().unwrap()],
    );
    // As duplicity 3.2.1: the errors the option lets pass leave the exit code 0.
    assert!(r.success(), "{}", r.output());
    let intact = intact_files(&dst, want);
    assert_eq!(intact, ["d0.bin", "d4.bin", "z.txt"], "{}", r.output());
    // Every file not restored is named: d1 and d3 run through volume 2, d2's base is in it (the
    // incremental's delta cannot be applied); the volume is named with its bounds.
    for lost in ["d1.bin", "d2.bin", "d3.bin"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains(&format!("dst/{lost}: not restored"))),
            "{lost} is not named as not restored:\n{}",
            r.output()
        );
    }
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains(needle) && l.contains("from d1.bin to d3.bin")),
        "the skipped volume is not named with its bounds:\n{}",
        r.output()
    );
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("--ignore-errors")
            && last.contains("1 volume(s) skipped")
            && last.contains("3 file(s)"),
        "no summary last:\n{}",
        r.output()
    );
    intact
}

#[test]
fn ignore_errors_restores_around_a_missing_middle_volume() {
    let (ws, want) = spanning_chain("ignerr-missing", Enc::Plain);
    let vol2 = file_named(&ws, "full.20231114T221320Z.vol2.");
    fs::remove_file(ws.p("repo").join(&vol2)).unwrap();
    let ours = restore_ignoring(&ws, Enc::Plain, &want, "volume 2");
    // duplicity 3.2.1 stops on the missing volume even with the option (a KeyError): it restores
    // nothing we do not.
    let (_, theirs) = duplicity3_restore(&ws, "dst3");
    assert!(
        theirs.iter().all(|n| ours.contains(n)),
        "duplicity 3.2.1 restored {theirs:?}, we {ours:?}"
    );
}

#[test]
fn ignore_errors_restores_around_a_tampered_volume() {
    // Encrypted: the damage is found by the SHA1 check too, before anything is decrypted.
    let (ws, want) = spanning_chain("ignerr-tampered-gpg", Enc::Pass(PASS));
    let vol2 = file_named(&ws, "full.20231114T221320Z.vol2.");
    flip(&ws, &vol2, 0.5);
    restore_ignoring(&ws, Enc::Pass(PASS), &want, &vol2);

    let (ws, want) = spanning_chain("ignerr-tampered", Enc::Plain);
    let vol2 = file_named(&ws, "full.20231114T221320Z.vol2.");
    flip(&ws, &vol2, 0.5);
    let ours = restore_ignoring(&ws, Enc::Plain, &want, &vol2);
    // One file asked for, all lost: an error, not a restore that did nothing; one intact: restored.
    let url = ws.url("repo");
    let one = ws.p("one");
    let r = ws
        .run(
            Tool::Ours,
            Enc::Plain,
            &[
                "restore",
                "--ignore-errors",
                "--file-to-restore",
                "d1.bin",
                &url,
                one.to_str().unwrap(),
            ],
        )
        .fails();
    assert!(
        r.stderr.contains("d1.bin could not be restored") && !one.exists(),
        "{}",
        r.output()
    );
    let r = ws.run(
        Tool::Ours,
        Enc::Plain,
        &[
            "restore",
            "--ignore-errors",
            "--file-to-restore",
            "d4.bin",
            &url,
            one.to_str().unwrap(),
        ],
    );
    assert!(r.success(), "{}", r.output());
    assert_eq!(fs::read(&one).unwrap(), want[4].1);
    // duplicity 3.2.1 skips the volume too and exits 0, but leaves d1 and d3 cut or garbled in
    // place; the files it restores intact are the ones we do.
    let (code, theirs) = duplicity3_restore(&ws, "dst3");
    assert_eq!(code, Some(0));
    assert_eq!(theirs, ours);
}

#[test]
fn ignore_errors_never_leaves_an_earlier_version_for_a_file_of_a_skipped_incremental_volume() {
    let (ws, want) = spanning_chain("ignerr-inc", Enc::Plain);
    let inc = dir_names(&ws.p("repo"))
        .into_iter()
        .find(|n| n.contains("inc.") && n.contains(".vol1."))
        .expect("the incremental's volume");
    fs::remove_file(ws.p("repo").join(&inc)).unwrap();
    let dst = ws.p("dst");
    let r = ws.run(
        Tool::Ours,
        Enc::Plain,
        &[
            "restore",
            "--ignore-errors",
            &ws.url("repo"),
            dst.to_str().unwrap(),
        ],
    );
    assert!(r.success(), "{}", r.output());
    // d2 and z.txt changed in the incremental: their full versions must not stand in for them.
    assert_eq!(
        intact_files(&dst, &want),
        ["d0.bin", "d1.bin", "d3.bin", "d4.bin"],
        "{}",
        r.output()
    );
    for lost in ["d2.bin", "z.txt"] {
        assert!(
            r.stderr.contains(&format!("dst/{lost}: not restored")),
            "{lost} is not named:\n{}",
            r.output()
        );
    }
}
