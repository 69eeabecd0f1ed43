//! gpg's own keyring (issue 12, item 3): with no `--keyring`/`--secret-keyring`, keys are found where
//! `gpg --import` put them (`GNUPGHOME`): public keys in `pubring.kbx` (gpg 2.2, read in process) or
//! `pubring.gpg` (gpg 1.x), secret keys exported by gpg with `PASSPHRASE` on a pipe, or read from
//! gpg 1.x's `secring.gpg` without gpg. Stock duplicity, which runs gpg on the same GNUPGHOME, is the
//! reference both ways.

use crate::support::*;
use std::fs;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rsa_key(ws: &Ws) -> TestKey {
    ws.gen_key(
        "rsa",
        "rsa3072",
        "sign,cert",
        Some("rsa3072"),
        "never",
        None,
    )
}

/// A directory for `PATH` that holds no gpg (our binary needs nothing on PATH for file:// targets).
fn no_gpg_path(ws: &Ws) -> String {
    let d = ws.p("empty-path");
    fs::create_dir_all(&d).unwrap();
    s(&d).to_string()
}

#[test]
fn imported_key_encrypts_signs_and_restores_both_ways() {
    let ws = Ws::new("gnupg-home");
    let key = rsa_key(&ws);
    assert!(
        ws.p("gnupg/pubring.kbx").is_file(),
        "gpg 2.2 keeps a keybox"
    );
    let src = ws.p("src");
    build_sample(&src);
    let exp0 = ws.p("exp0");
    sample_at(&exp0, 0);
    let exp1 = ws.p("exp1");
    sample_at(&exp1, 1);
    let url = ws.url("repo");

    // The command line: only the key's fingerprint, found in pubring.kbx; no passphrase needed.
    ws.run(
        Tool::Ours,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &key.fpr,
            s(&src),
            &url,
        ],
    )
    .ok();
    // Signed incremental: the signing key's secret comes out of gpg's agent with PASSPHRASE.
    mutate(&src, 1);
    ws.run(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        &[
            "incremental",
            "--current-time",
            &t(1).to_string(),
            "--encrypt-key",
            &key.fpr,
            "--sign-key",
            key.long_id(),
            s(&src),
            &url,
        ],
    )
    .ok();

    // Restore by us: the secret key for the recipients comes from gpg, unlocked with PASSPHRASE.
    let ours = ws.p("restored-ours");
    ws.restore(Tool::Ours, Enc::Pass(KEY_PASS), "repo", &ours, None, &[]);
    assert_same_tree(&exp1, &ours, "our restore with gpg's keyring");
    // Stock duplicity reads the same chain from the same GNUPGHOME.
    let theirs = ws.p("restored-duplicity");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &theirs,
        None,
        &[],
    );
    assert_same_tree(&exp1, &theirs, "duplicity's restore of our chain");

    // And a chain duplicity made with the key in its keyring is restored by us, signature checked.
    let url2 = ws.url("repo-dup");
    ws.run_env(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &key.fpr,
            "--sign-key",
            key.long_id(),
            s(&src),
            &url2,
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let from_dup = ws.p("restored-from-dup");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "repo-dup",
        &from_dup,
        None,
        &["--sign-key", key.long_id()],
    );
    assert_same_tree(&exp1, &from_dup, "our restore of duplicity's chain");
}

#[test]
fn wrong_or_missing_passphrase_and_unknown_key_are_named() {
    let ws = Ws::new("gnupg-home-errors");
    let key = rsa_key(&ws);
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(
        Tool::Ours,
        "full",
        Enc::Keys,
        &src,
        "repo",
        t(0),
        &["--encrypt-key", &key.fpr],
    );

    let wrong = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass("not the key passphrase"),
            "repo",
            &ws.p("out-wrong"),
            None,
            &[],
        )
        .fails();
    let msg = wrong.output();
    assert!(
        msg.contains("wrong passphrase") && msg.contains("gpg's keyring"),
        "{msg}"
    );
    assert!(!msg.contains("not the key passphrase"), "{msg}");

    let none = ws
        .restore_try(Tool::Ours, Enc::Keys, "repo", &ws.p("out-none"), None, &[])
        .fails();
    let msg = none.output();
    assert!(msg.contains("PASSPHRASE"), "{msg}");

    let unknown = ws
        .run(
            Tool::Ours,
            Enc::Keys,
            &[
                "full",
                "--encrypt-key",
                "0123456789ABCDEF0123456789ABCDEF01234567",
                s(&src),
                &ws.url("repo2"),
            ],
        )
        .fails();
    let msg = unknown.output();
    assert!(
        msg.contains("no key 0123456789ABCDEF0123456789ABCDEF01234567 in gpg's keyring in"),
        "{msg}"
    );

    // Without gpg, a key in gpg 2.2's agent cannot be had: the message says so and what to do.
    let path = no_gpg_path(&ws);
    let no_gpg = ws
        .run_env(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            &["restore", &ws.url("repo"), s(&ws.p("out-nogpg"))],
            &[("PATH", &path)],
        )
        .fails();
    let msg = no_gpg.output();
    assert!(
        msg.contains("gpg is not installed") && msg.contains("--secret-keyring"),
        "{msg}"
    );
}

#[test]
fn gpg1_keyring_files_work_without_gpg() {
    let ws = Ws::new("gnupg-home-gpg1");
    let key = rsa_key(&ws);
    // A gpg 1.x home: pubring.gpg and secring.gpg, no keybox, and no gpg on PATH.
    let home = ws.p("gpg1home");
    fs::create_dir_all(&home).unwrap();
    fs::copy(&key.pub_bin, home.join("pubring.gpg")).unwrap();
    fs::copy(&key.sec_bin, home.join("secring.gpg")).unwrap();
    let path = no_gpg_path(&ws);
    let vars = [("GNUPGHOME", s(&home)), ("PATH", &path)];
    let src = ws.p("src");
    build_sample(&src);
    let exp0 = ws.p("exp0");
    sample_at(&exp0, 0);
    ws.run_env(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &key.fpr,
            "--sign-key",
            &key.fpr,
            s(&src),
            &ws.url("repo"),
        ],
        &vars,
    )
    .ok();
    let out = ws.p("out");
    ws.run_env(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        &["restore", "--sign-key", &key.fpr, &ws.url("repo"), s(&out)],
        &vars,
    )
    .ok();
    assert_same_tree(&exp0, &out, "restore with gpg 1.x keyring files");
}

#[test]
fn passphrase_backups_never_run_gpg() {
    // A home full of keys but no gpg on PATH: symmetric backups and restores do not need it.
    let ws = Ws::new("gnupg-home-symmetric");
    rsa_key(&ws);
    let path = no_gpg_path(&ws);
    let src = ws.p("src");
    build_sample(&src);
    let exp0 = ws.p("exp0");
    sample_at(&exp0, 0);
    ws.run_env(
        Tool::Ours,
        Enc::Pass("symmetric"),
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            s(&src),
            &ws.url("repo"),
        ],
        &[("PATH", &path)],
    )
    .ok();
    let out = ws.p("out");
    ws.run_env(
        Tool::Ours,
        Enc::Pass("symmetric"),
        &["restore", &ws.url("repo"), s(&out)],
        &[("PATH", &path)],
    )
    .ok();
    assert_same_tree(&exp0, &out, "symmetric restore");
}
