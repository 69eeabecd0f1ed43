//! Public-key encryption and signing (issue 4, items 1 and 2) against stock duplicity + gpg, with keys made
//! by real gpg in each test: RSA 3072 and ed25519/cv25519, `--encrypt-key` and `--hidden-encrypt-key`,
//! full + incremental both ways, an incremental with only the public key, signatures both ways, forged
//! and stripped signatures, keys that cannot encrypt, and a wrong secret key.

use crate::support::*;
use std::fs;
use std::path::Path;

/// An encryption key of the given type, made by gpg in the workspace (so duplicity has it too).
fn encryption_key(ws: &Ws, kind: &str) -> TestKey {
    match kind {
        "ed25519" => ws.gen_key("ed", "ed25519", "sign,cert", Some("cv25519"), "never", None),
        "rsa3072" => ws.gen_key(
            "rsa",
            "rsa3072",
            "sign,cert",
            Some("rsa3072"),
            "never",
            None,
        ),
        other => panic!("unknown key type {other}"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Ours with extra arguments after the subcommand; `vars` are extra environment variables.
fn ours(ws: &Ws, enc: Enc, args: &[&str], vars: &[(&str, &str)]) -> Run {
    ws.run_env(Tool::Ours, enc, args, vars)
}

/// Full + incremental by us (the incremental with only the public key: no secret key, no
/// passphrase), restored by duplicity and by us; then full + incremental by duplicity restored by us.
fn round_trip(kind: &str) {
    let ws = Ws::new(&format!("pubkey-{kind}"));
    let key = encryption_key(&ws, kind);
    let src = ws.p("src");
    build_sample(&src);
    let exp0 = ws.p("exp0");
    sample_at(&exp0, 0);
    let exp1 = ws.p("exp1");
    sample_at(&exp1, 1);
    let (t0, t1) = (t(0).to_string(), t(1).to_string());

    // Ours: full to the fingerprint in an armored keyring, incremental to the hidden key given as
    // the path of its armored public key file. Neither needs a secret.
    ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t0,
            "--encrypt-key",
            &key.fpr,
            "--keyring",
            s(&key.pub_asc),
            s(&src),
            &ws.url("repo"),
        ],
        &[],
    )
    .ok();
    mutate(&src, 1);
    ours(
        &ws,
        Enc::Keys,
        &[
            "incremental",
            "--current-time",
            &t1,
            "--hidden-encrypt-key",
            s(&key.pub_asc),
            s(&src),
            &ws.url("repo"),
        ],
        &[],
    )
    .ok();
    // The incremental's files carry the wildcard key id.
    let inc_vol = ws.p("repo").join(format!(
        "duplicity-inc.{}.to.{}.vol1.difftar.gpg",
        stamp(t(0)),
        stamp(t(1))
    ));
    let packets = ws.gpg(&["--list-packets", s(&inc_vol)]);
    assert!(
        packets.stdout.contains("keyid 0000000000000000"),
        "{}",
        packets.output()
    );

    // duplicity restores both sets with the secret key in its GNUPGHOME.
    let d1 = ws.p("dup-latest");
    ws.restore(Tool::Duplicity, Enc::Pass(KEY_PASS), "repo", &d1, None, &[]);
    assert_same_tree(
        &exp1,
        &d1,
        "duplicity restore of our public-key incremental",
    );
    let d0 = ws.p("dup-t0");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &d0,
        Some(t(0)),
        &[],
    );
    assert_same_tree(&exp0, &d0, "duplicity restore of our public-key full");
    // We restore with the binary secret keyring.
    let o1 = ws.p("ours-latest");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "repo",
        &o1,
        None,
        &["--secret-keyring", s(&key.sec_bin)],
    );
    assert_same_tree(&exp1, &o1, "our restore of our public-key backup");

    // duplicity: full to the hidden key, incremental to the key; we restore with the armored
    // secret key.
    let dsrc = ws.p("dsrc");
    build_sample(&dsrc);
    ws.backup(
        Tool::Duplicity,
        "full",
        Enc::Keys,
        &dsrc,
        "drepo",
        t(0),
        &["--hidden-encrypt-key", &key.fpr],
    );
    mutate(&dsrc, 1);
    ws.backup(
        Tool::Duplicity,
        "incremental",
        Enc::Keys,
        &dsrc,
        "drepo",
        t(1),
        &["--encrypt-key", &key.fpr],
    );
    for (time, exp, dst) in [(None, &exp1, "o-d-latest"), (Some(t(0)), &exp0, "o-d-t0")] {
        let dst = ws.p(dst);
        ws.restore(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "drepo",
            &dst,
            time,
            &["--secret-keyring", s(&key.sec_asc)],
        );
        assert_same_tree(exp, &dst, "our restore of duplicity's public-key backup");
    }
    // Verify and list work with the secret key too.
    ours(
        &ws,
        Enc::Pass(KEY_PASS),
        &[
            "verify",
            "--compare-data",
            "--secret-keyring",
            s(&key.sec_bin),
            &ws.url("drepo"),
            s(&dsrc),
        ],
        &[],
    )
    .ok();
}

#[test]
fn public_key_round_trip_ed25519() {
    round_trip("ed25519");
}

#[test]
fn public_key_round_trip_rsa3072() {
    round_trip("rsa3072");
}

/// The incremental needs nothing remote when the cache is in step; with a fresh cache it has to read
/// the target's metadata, which needs the secret key: then the error says so.
#[test]
fn incremental_with_only_the_public_key() {
    let ws = Ws::new("pubkey-inc-only-public");
    let key = encryption_key(&ws, "ed25519");
    let src = ws.p("src");
    build_sample(&src);
    let keyring = ["--encrypt-key", &key.fpr, "--keyring", s(&key.pub_bin)];
    ws.backup(Tool::Ours, "full", Enc::Keys, &src, "repo", t(0), &keyring);
    mutate(&src, 1);
    // No PASSPHRASE and no secret key: nothing remote can be decrypted, so the cache (plaintext
    // manifests, gzipped sigtars) must serve the incremental.
    ws.backup(
        Tool::Ours,
        "incremental",
        Enc::Keys,
        &src,
        "repo",
        t(1),
        &keyring,
    );
    let files = repo_files(&ws, "repo");
    assert!(
        files.iter().any(|f| f.starts_with("duplicity-inc.")),
        "{files:?}"
    );
    // A fresh cache: the manifest must be decrypted, and there is no secret key.
    let mut args: Vec<String> = vec![
        "incremental".into(),
        "--name".into(),
        "fresh-cache".into(),
        "--current-time".into(),
        t(2).to_string(),
    ];
    args.extend(keyring.iter().map(|a| a.to_string()));
    args.push(s(&src).into());
    args.push(ws.url("repo"));
    let r = ours(
        &ws,
        Enc::Keys,
        &args.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        &[],
    )
    .fails();
    assert!(r.stderr.contains("--secret-keyring"), "{}", r.output());
    // duplicity restores the chain.
    let exp = ws.p("exp1");
    sample_at(&exp, 1);
    let d = ws.p("dup");
    ws.restore(Tool::Duplicity, Enc::Pass(KEY_PASS), "repo", &d, None, &[]);
    assert_same_tree(&exp, &d, "duplicity restore of a public-key-only chain");
}

/// A signing key (RSA, sign+cert only) and an encryption key (ed25519/cv25519).
fn sign_setup(ws: &Ws) -> (TestKey, TestKey) {
    let enc = encryption_key(ws, "ed25519");
    let sig = ws.gen_key("signer", "rsa3072", "default", None, "never", None);
    (enc, sig)
}

/// Our signed backup passes duplicity's `--sign-key` check and ours; duplicity's signed backup passes
/// ours; a signature by another key fails, naming the file.
#[test]
fn signatures_both_ways() {
    let ws = Ws::new("pubkey-sign");
    let (enc, sig) = sign_setup(&ws);
    let src = ws.p("src");
    build_sample(&src);
    let exp = ws.p("exp");
    sample_at(&exp, 0);
    // Ours, signed; SIGN_PASSPHRASE unlocks the signing key (PASSPHRASE is not set).
    ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &enc.fpr,
            "--sign-key",
            &sig.fpr,
            "--keyring",
            s(&enc.pub_asc),
            "--secret-keyring",
            s(&sig.sec_asc),
            s(&src),
            &ws.url("repo"),
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let d = ws.p("dup");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &d,
        None,
        &["--sign-key", sig.long_id()],
    );
    assert_same_tree(
        &exp,
        &d,
        "duplicity restore --sign-key of our signed backup",
    );
    let secret = s(&enc.sec_bin).to_owned();
    let o = ws.p("ours");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "repo",
        &o,
        None,
        &[
            "--secret-keyring",
            &secret,
            "--keyring",
            s(&sig.pub_bin),
            "--sign-key",
            &sig.fpr[32..],
        ],
    );
    assert_same_tree(&exp, &o, "our restore --sign-key of our signed backup");
    // Demanding another key's signature fails, naming the file.
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "repo",
            &ws.p("wrong-signer"),
            None,
            &[
                "--secret-keyring",
                &secret,
                "--keyring",
                s(&enc.pub_asc),
                "--sign-key",
                &enc.fpr,
            ],
        )
        .fails();
    assert!(
        r.stderr.contains("duplicity-full.") && r.stderr.contains("signature check failed"),
        "{}",
        r.output()
    );

    // duplicity, signed (SIGN_PASSPHRASE unlocks the key in its GNUPGHOME): we check its signatures.
    ws.run_env(
        Tool::Duplicity,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &enc.fpr,
            "--sign-key",
            sig.long_id(),
            s(&src),
            &ws.url("drepo"),
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let o = ws.p("ours-of-dup");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "drepo",
        &o,
        None,
        &[
            "--secret-keyring",
            &secret,
            "--keyring",
            s(&sig.pub_asc),
            "--sign-key",
            sig.long_id(),
        ],
    );
    assert_same_tree(
        &exp,
        &o,
        "our restore --sign-key of duplicity's signed backup",
    );
    ours(
        &ws,
        Enc::Pass(KEY_PASS),
        &[
            "verify",
            "--secret-keyring",
            &secret,
            "--keyring",
            s(&sig.pub_asc),
            "--sign-key",
            sig.long_id(),
            &ws.url("drepo"),
            s(&src),
        ],
        &[],
    )
    .ok();
    // An unsigned duplicity backup fails our --sign-key check.
    ws.backup(
        Tool::Duplicity,
        "full",
        Enc::Keys,
        &src,
        "urepo",
        t(0),
        &["--encrypt-key", &enc.fpr],
    );
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "urepo",
            &ws.p("unsigned"),
            None,
            &[
                "--secret-keyring",
                &secret,
                "--keyring",
                s(&sig.pub_asc),
                "--sign-key",
                sig.long_id(),
            ],
        )
        .fails();
    assert!(r.stderr.contains("not signed"), "{}", r.output());
}

/// Replaces the first volume of `repo` by its plaintext re-encrypted with gpg, signed by `signer` or
/// not at all, and rewrites the manifest's hash (re-signed by `good`), so that only the volume's
/// signature is wrong. Returns the volume's name.
fn reseal_volume(
    ws: &Ws,
    repo: &str,
    enc: &TestKey,
    signer: Option<&TestKey>,
    good: &TestKey,
) -> String {
    let dir = ws.p(repo);
    let vol = repo_files(ws, repo)
        .into_iter()
        .find(|f| f.contains(".vol1.difftar.gpg"))
        .expect("volume 1");
    let plain = ws.p("vol.plain");
    ws.gpg(&[
        "--yes",
        "--output",
        s(&plain),
        "--decrypt",
        s(&dir.join(&vol)),
    ])
    .ok();
    let sealed = ws.p("vol.sealed");
    let mut args = vec!["--yes", "--trust-model", "always", "--output", s(&sealed)];
    args.extend(["--recipient", enc.fpr.as_str()]);
    if let Some(k) = signer {
        args.extend(["--local-user", k.fpr.as_str(), "--sign"]);
    }
    args.extend(["--encrypt", s(&plain)]);
    ws.gpg(&args).ok();
    let bytes = fs::read(&sealed).unwrap();
    fs::write(dir.join(&vol), &bytes).unwrap();
    let sha1 = {
        use sha1_smol_like::sha1_hex;
        sha1_hex(&bytes)
    };
    let man = repo_files(ws, repo)
        .into_iter()
        .find(|f| f.ends_with(".manifest.gpg"))
        .expect("manifest");
    let mplain = ws.p("man.plain");
    ws.gpg(&[
        "--yes",
        "--output",
        s(&mplain),
        "--decrypt",
        s(&dir.join(&man)),
    ])
    .ok();
    let text = fs::read(&mplain).unwrap();
    let mut fixed = Vec::new();
    for l in text.split_inclusive(|b| *b == b'\n') {
        if l.starts_with(b"    Hash SHA1 ") {
            fixed.extend_from_slice(format!("    Hash SHA1 {sha1}\n").as_bytes());
        } else {
            fixed.extend_from_slice(l);
        }
    }
    fs::write(&mplain, fixed).unwrap();
    let msealed = ws.p("man.sealed");
    ws.gpg(&[
        "--yes",
        "--trust-model",
        "always",
        "--output",
        s(&msealed),
        "--recipient",
        &enc.fpr,
        "--local-user",
        &good.fpr,
        "--sign",
        "--encrypt",
        s(&mplain),
    ])
    .ok();
    fs::copy(&msealed, dir.join(&man)).unwrap();
    vol
}

/// SHA-1 through the `sha1sum` tool (the tests have no SHA-1 crate of their own).
mod sha1_smol_like {
    pub fn sha1_hex(bytes: &[u8]) -> String {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sha1sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha1sum");
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..40].to_owned()
    }
}

/// A volume re-signed by another key, or with its signature stripped, fails our `--sign-key` restore
/// and verify, naming the volume (the manifest itself is properly signed).
#[test]
fn forged_or_stripped_volume_signature_fails_naming_the_file() {
    let ws = Ws::new("pubkey-badsig");
    let (enc, sig) = sign_setup(&ws);
    let other = ws.gen_key("other", "ed25519", "sign,cert", None, "never", None);
    let src = ws.p("src");
    build_sample(&src);
    let secret = s(&enc.sec_bin).to_owned();
    let check = [
        "--secret-keyring",
        secret.as_str(),
        "--keyring",
        s(&sig.pub_asc),
        "--keyring",
        s(&other.pub_asc),
        "--sign-key",
        sig.long_id(),
    ];
    for (case, signer) in [("forged", Some(&other)), ("stripped", None)] {
        let repo = format!("repo-{case}");
        ours(
            &ws,
            Enc::Keys,
            &[
                "full",
                "--current-time",
                &t(0).to_string(),
                "--encrypt-key",
                &enc.fpr,
                "--sign-key",
                &sig.fpr,
                "--keyring",
                s(&enc.pub_asc),
                "--secret-keyring",
                s(&sig.sec_bin),
                s(&src),
                &ws.url(&repo),
            ],
            &[("SIGN_PASSPHRASE", KEY_PASS)],
        )
        .ok();
        let vol = reseal_volume(&ws, &repo, &enc, signer, &sig);
        // Without --sign-key the volume still restores (its hash matches the manifest).
        let plain = ws.p(&format!("plain-{case}"));
        ws.restore(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            &repo,
            &plain,
            None,
            &["--secret-keyring", &secret],
        );
        let r = ws
            .restore_try(
                Tool::Ours,
                Enc::Pass(KEY_PASS),
                &repo,
                &ws.p(&format!("out-{case}")),
                None,
                &check,
            )
            .fails();
        assert!(r.stderr.contains(&vol), "{case}: {}", r.output());
        let want = if signer.is_some() {
            "not by"
        } else {
            "not signed"
        };
        assert!(r.stderr.contains(want), "{case}: {}", r.output());
        let mut args = vec!["verify"];
        args.extend(check);
        let url = ws.url(&repo);
        args.extend([url.as_str(), s(&src)]);
        let r = ours(&ws, Enc::Pass(KEY_PASS), &args, &[]).fails();
        assert!(r.stderr.contains(&vol), "{case} verify: {}", r.output());
        // duplicity agrees.
        let r = ws.restore_try(
            Tool::Duplicity,
            Enc::Pass(KEY_PASS),
            &repo,
            &ws.p(&format!("dup-{case}")),
            None,
            &["--sign-key", sig.long_id()],
        );
        assert!(
            !r.success(),
            "{case}: duplicity accepted it: {}",
            r.output()
        );
    }
}

/// Keys that cannot encrypt are refused before anything is written, with the reason.
#[test]
fn unusable_keys_are_refused_with_the_reason() {
    let ws = Ws::new("pubkey-refused");
    let src = ws.p("src");
    build_sample(&src);
    let sign_only = ws.gen_key("signonly", "rsa3072", "default", None, "never", None);
    let expired = ws.gen_key(
        "expired",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "2020-01-05",
        Some("20200101T000000"),
    );
    let revoked = ws.gen_key(
        "revoked",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    ws.revoke_key(&revoked);
    for (key, reason) in [
        (&sign_only, "signing-only"),
        (&expired, "expired on 2020-01-05"),
        (&revoked, "revoked"),
    ] {
        let r = ours(
            &ws,
            Enc::Keys,
            &[
                "full",
                "--encrypt-key",
                &key.fpr,
                "--keyring",
                s(&key.pub_asc),
                s(&src),
                &ws.url("repo"),
            ],
            &[],
        )
        .fails();
        assert!(
            r.stderr.contains("cannot encrypt") && r.stderr.contains(reason),
            "{reason}: {}",
            r.output()
        );
        assert!(!ws.p("repo").exists(), "{reason}: files written");
    }
    // An unknown key and a key that cannot sign.
    let r = ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--encrypt-key",
            "0123456789ABCDEF",
            "--keyring",
            s(&sign_only.pub_asc),
            s(&src),
            &ws.url("repo"),
        ],
        &[],
    )
    .fails();
    assert!(
        r.stderr.contains("no key 0123456789ABCDEF"),
        "{}",
        r.output()
    );
    let r = ours(
        &ws,
        Enc::Pass(KEY_PASS),
        &[
            "full",
            "--sign-key",
            &revoked.fpr,
            "--secret-keyring",
            s(&revoked.sec_bin),
            s(&src),
            &ws.url("repo"),
        ],
        &[],
    )
    .fails();
    assert!(r.stderr.contains("cannot sign"), "{}", r.output());
}

/// Restoring with the secret key of another key pair, or without the key's passphrase, is a clear
/// error.
#[test]
fn wrong_secret_key_is_a_clear_error() {
    let ws = Ws::new("pubkey-wrong-secret");
    let key = encryption_key(&ws, "ed25519");
    let other = ws.gen_key(
        "other",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(
        Tool::Ours,
        "full",
        Enc::Keys,
        &src,
        "repo",
        t(0),
        &["--encrypt-key", &key.fpr, "--keyring", s(&key.pub_asc)],
    );
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "repo",
            &ws.p("out"),
            None,
            &["--secret-keyring", s(&other.sec_bin)],
        )
        .fails();
    assert!(
        r.stderr.contains("no secret key") && r.stderr.contains("--secret-keyring"),
        "{}",
        r.output()
    );
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass("not the key passphrase"),
            "repo",
            &ws.p("out2"),
            None,
            &["--secret-keyring", s(&key.sec_bin)],
        )
        .fails();
    assert!(
        r.stderr.contains("wrong passphrase for the secret key"),
        "{}",
        r.output()
    );
    let r = ws
        .restore_try(Tool::Ours, Enc::Keys, "repo", &ws.p("out3"), None, &[])
        .fails();
    // No keyring file: the key is looked for in gpg's keyring (GNUPGHOME), where gpg made it; it is
    // there, protected, and no passphrase was given.
    assert!(
        r.stderr.contains("gpg's keyring") && r.stderr.contains("PASSPHRASE"),
        "{}",
        r.output()
    );
}
