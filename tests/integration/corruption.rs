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
