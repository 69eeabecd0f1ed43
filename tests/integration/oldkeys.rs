//! Keys and archives from the gpg 1.x years (issue 17), with keys made by real gpg 2.2 and archives by
//! stock duplicity 0.8.22: DSA-1024 + ElGamal-2048 and RSA-1024 keys self-signed with SHA-1, a key whose
//! subkeys expired and were renewed, gpg 1.x keyring files (pubring.gpg, secring.gpg), CAST5 volumes
//! without MDC (SED) written with `--rfc2440`, symmetric and public-key, and a tampered SED volume;
//! plus the messages for keys that are given but cannot be used, and `--refuse-weak-keys`.
//!
//! Each key is generated once per test binary (DSA/ElGamal generation takes seconds) in a shared
//! GNUPGHOME, then imported into each test's own GNUPGHOME so that duplicity has it too.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Where the shared keys are made; a static, so never removed: it lives in cargo's target tmp dir rather
/// than /tmp so that runs do not pile up there. Its gpg-agent is stopped.
fn key_home() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::Builder::new()
            .prefix("dc-oldkeys-keys-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        fs::create_dir_all(d.path().join("gnupg")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d.path().join("gnupg"), fs::Permissions::from_mode(0o700)).unwrap();
        d
    })
    .path()
}

/// Held while a key is made and exported: one gpg-agent serves the key home, and [`export`] stops it.
static KEYGEN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// gpg in the shared key home, unattended, with the test keys' passphrase.
fn key_gpg(args: &[&str]) -> Run {
    let home = key_home();
    let mut cmd = Command::new("gpg");
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        KEY_PASS,
    ])
    .args(args)
    .env("GNUPGHOME", home.join("gnupg"))
    .env("HOME", home)
    .env("LC_ALL", "C.UTF-8")
    .env("TZ", "UTC");
    run_cmd(cmd, &format!("gpg {}", args.join(" "))).ok()
}

fn fingerprint(uid: &str) -> String {
    key_gpg(&["--with-colons", "--list-keys", uid])
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|r| r.trim_matches(':').to_owned())
        .expect("fingerprint")
}

/// Exports `fpr` to `<name>.{pub,sec}.{asc,gpg}` in the key home and stops the agent.
fn export(name: &str, fpr: &str) -> TestKey {
    let p = |ext: &str| key_home().join(format!("{name}.{ext}"));
    let key = TestKey {
        fpr: fpr.to_owned(),
        pub_asc: p("pub.asc"),
        pub_bin: p("pub.gpg"),
        sec_asc: p("sec.asc"),
        sec_bin: p("sec.gpg"),
    };
    for (what, armor, path) in [
        ("--export", true, &key.pub_asc),
        ("--export", false, &key.pub_bin),
        ("--export-secret-keys", true, &key.sec_asc),
        ("--export-secret-keys", false, &key.sec_bin),
    ] {
        let mut args = vec!["--yes", "--output", s(path)];
        if armor {
            args.push("--armor");
        }
        args.extend([what, fpr]);
        key_gpg(&args);
    }
    stop_agent(&key_home().join("gnupg"));
    key
}

fn stop_agent(gnupghome: &Path) {
    let _ = Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("GNUPGHOME", gnupghome)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The classic duplicity guide's key: DSA-1024 signing key, ElGamal-2048 encryption subkey, SHA-1
/// self-signatures.
fn dsa_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| {
        let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
        let uid = "dsa <dsa@example.org>";
        let sha1 = ["--cert-digest-algo", "SHA1"];
        key_gpg(
            &[
                &sha1[..],
                &["--quick-gen-key", uid, "dsa1024", "sign,cert", "never"],
            ]
            .concat(),
        );
        let fpr = fingerprint(uid);
        key_gpg(
            &[
                &sha1[..],
                &["--quick-add-key", &fpr, "elg2048", "encr", "never"],
            ]
            .concat(),
        );
        export("dsa", &fpr)
    })
}

/// RSA-1024 with an RSA-1024 encryption subkey, SHA-1 self-signatures.
fn rsa1024_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| {
        let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
        let uid = "rsa1024 <rsa1024@example.org>";
        let sha1 = ["--cert-digest-algo", "SHA1"];
        key_gpg(
            &[
                &sha1[..],
                &["--quick-gen-key", uid, "rsa1024", "sign,cert", "never"],
            ]
            .concat(),
        );
        let fpr = fingerprint(uid);
        key_gpg(
            &[
                &sha1[..],
                &["--quick-add-key", &fpr, "rsa1024", "encr", "never"],
            ]
            .concat(),
        );
        export("rsa1024", &fpr)
    })
}

/// A certification-only primary key made in 2020 with a signing and an encryption subkey that expired
/// in mid-2020 and were renewed now (new binding signatures with a later expiry).
fn renewed_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| {
        let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
        let uid = "renewed <renewed@example.org>";
        let then = ["--faked-system-time", "20200101T000000"];
        key_gpg(
            &[
                &then[..],
                &["--quick-gen-key", uid, "rsa2048", "cert", "never"],
            ]
            .concat(),
        );
        let fpr = fingerprint(uid);
        for usage in ["sign", "encr"] {
            key_gpg(
                &[
                    &then[..],
                    &["--quick-add-key", &fpr, "rsa2048", usage, "2020-06-01"],
                ]
                .concat(),
            );
        }
        // "*" skips expired subkeys: name them.
        let list = key_gpg(&["--with-colons", "--list-keys", &fpr]).stdout;
        let subkeys: Vec<&str> = list
            .lines()
            .filter_map(|l| l.strip_prefix("fpr:"))
            .map(|r| r.trim_matches(':'))
            .skip(1)
            .collect();
        assert_eq!(subkeys.len(), 2, "{list}");
        key_gpg(&[&["--quick-set-expire", &fpr, "10y"][..], &subkeys].concat());
        export("renewed", &fpr)
    })
}

/// A brainpoolP256r1 key (gpg 2.2 makes it; sequoia's nettle backend has no Brainpool curves).
fn brainpool_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| {
        let _one_at_a_time = KEYGEN.lock().unwrap_or_else(|p| p.into_inner());
        let uid = "brainpool <brainpool@example.org>";
        key_gpg(&[
            "--quick-gen-key",
            uid,
            "brainpoolP256r1",
            "sign,cert",
            "never",
        ]);
        let fpr = fingerprint(uid);
        key_gpg(&["--quick-add-key", &fpr, "brainpoolP256r1", "encr", "never"]);
        export("brainpool", &fpr)
    })
}

/// Puts `key` (public and secret, fully trusted) into the workspace's GNUPGHOME for duplicity.
fn give_duplicity(ws: &Ws, key: &TestKey) {
    ws.gpg(&["--import", s(&key.sec_bin)]).ok();
    let trust = ws.p("ownertrust.txt");
    fs::write(&trust, format!("{}:6:\n", key.fpr)).unwrap();
    ws.gpg(&["--import-ownertrust", s(&trust)]).ok();
}

fn ours(ws: &Ws, enc: Enc, args: &[&str], vars: &[(&str, &str)]) -> Run {
    ws.run_env(Tool::Ours, enc, args, vars)
}

/// Both ways with stock duplicity, one key encrypting and signing: we back up (full + incremental),
/// duplicity restores with `--sign-key`; duplicity backs up, we restore checking its signature.
/// Returns the stderr of our backup (for the weak-key warning).
fn both_ways(name: &str, key: &TestKey) -> String {
    let ws = Ws::new(&format!("oldkeys-{name}"));
    give_duplicity(&ws, key);
    let src = ws.p("src");
    build_sample(&src);
    let exp0 = ws.p("exp0");
    sample_at(&exp0, 0);
    let exp1 = ws.p("exp1");
    sample_at(&exp1, 1);
    let keyargs = |kind: &str, time: i64| -> Vec<String> {
        vec![
            kind.into(),
            "--current-time".into(),
            time.to_string(),
            "--encrypt-key".into(),
            key.fpr.clone(),
            "--sign-key".into(),
            key.fpr.clone(),
            "--keyring".into(),
            s(&key.pub_asc).into(),
            "--secret-keyring".into(),
            s(&key.sec_bin).into(),
            s(&src).into(),
            ws.url("repo"),
        ]
    };
    let full = keyargs("full", t(0));
    let full = full.iter().map(String::as_str).collect::<Vec<_>>();
    let r = ours(&ws, Enc::Keys, &full, &[("SIGN_PASSPHRASE", KEY_PASS)]).ok();
    mutate(&src, 1);
    let inc = keyargs("incremental", t(1));
    let inc = inc.iter().map(String::as_str).collect::<Vec<_>>();
    ours(&ws, Enc::Keys, &inc, &[("SIGN_PASSPHRASE", KEY_PASS)]).ok();
    // duplicity compares --sign-key with the id of the (sub)key that made the signature.
    let signer = signing_key_id(&ws, key);
    let d = ws.p("dup");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &d,
        None,
        &["--sign-key", &signer],
    );
    assert_same_tree(&exp1, &d, "duplicity restore --sign-key of our backup");

    // duplicity, signed: we restore and check the signatures.
    let dsrc = ws.p("dsrc");
    build_sample(&dsrc);
    ws.run_env(
        Tool::Duplicity,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            &key.fpr,
            "--sign-key",
            key.long_id(),
            s(&dsrc),
            &ws.url("drepo"),
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let o = ws.p("ours");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "drepo",
        &o,
        None,
        &[
            "--secret-keyring",
            s(&key.sec_asc),
            "--sign-key",
            key.long_id(),
        ],
    );
    assert_same_tree(&exp0, &o, "our restore --sign-key of duplicity's backup");
    r.stderr
}

/// The long id of the key gpg signs with for `key`: its signing subkey if it has one, else the primary.
fn signing_key_id(ws: &Ws, key: &TestKey) -> String {
    let list = ws
        .gpg(&["--with-colons", "--list-keys", &key.fpr])
        .ok()
        .stdout;
    let mut lines = list.lines();
    while let Some(l) = lines.next() {
        let f: Vec<&str> = l.split(':').collect();
        if f[0] == "sub" && f.get(11).is_some_and(|c| c.contains('s')) {
            let fpr = lines
                .next()
                .and_then(|l| l.strip_prefix("fpr:"))
                .map(|r| r.trim_matches(':').to_owned())
                .expect("subkey fingerprint");
            return fpr[fpr.len() - 16..].to_owned();
        }
    }
    key.long_id().to_owned()
}

#[test]
fn dsa_elgamal_both_ways() {
    let stderr = both_ways("dsa", dsa_key());
    // Writing with it is allowed, with a warning that names the weak parts and the way out.
    assert!(
        stderr.contains("is weak")
            && stderr.contains("dsa1024")
            && stderr.contains("elg2048")
            && stderr.contains("SHA1")
            && stderr.contains("--refuse-weak-keys"),
        "{stderr}"
    );
}

#[test]
fn rsa1024_sha1_both_ways() {
    let stderr = both_ways("rsa1024", rsa1024_key());
    assert!(
        stderr.contains("is weak") && stderr.contains("rsa1024") && stderr.contains("SHA1"),
        "{stderr}"
    );
}

#[test]
fn renewed_subkeys_both_ways() {
    let stderr = both_ways("renewed", renewed_key());
    assert!(!stderr.contains("is weak"), "{stderr}");
}

/// A key that is given but cannot be used is named as such, with the reason and the fix; never "no
/// secret key was given". And `--refuse-weak-keys` turns the weak-key warning into an error.
#[test]
fn given_but_unusable_keys() {
    let ws = Ws::new("oldkeys-unusable");
    let dsa = dsa_key();
    let bp = brainpool_key();
    give_duplicity(&ws, dsa);
    give_duplicity(&ws, bp);
    let src = ws.p("src");
    build_sample(&src);

    // --refuse-weak-keys: an error that names the key and why it is weak; nothing is written.
    let r = ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--refuse-weak-keys",
            "--encrypt-key",
            &dsa.fpr,
            "--keyring",
            s(&dsa.pub_bin),
            s(&src),
            &ws.url("weak"),
        ],
        &[],
    )
    .fails();
    assert!(
        r.stderr
            .contains(&format!("key {} was given but cannot be used", dsa.fpr))
            && r.stderr.contains("elg2048"),
        "{}",
        r.output()
    );
    assert!(!ws.p("weak").exists() || repo_files(&ws, "weak").is_empty());

    // duplicity's backup to the ElGamal subkey, restored with a secret keyring that holds only the
    // public key: "given but cannot be used", not "no secret key given".
    ws.backup(
        Tool::Duplicity,
        "full",
        Enc::Keys,
        &src,
        "drepo",
        t(0),
        &["--encrypt-key", &dsa.fpr],
    );
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "drepo",
            &ws.p("o1"),
            None,
            &["--secret-keyring", s(&dsa.pub_bin)],
        )
        .fails();
    assert!(
        r.stderr.contains("was given but cannot be used")
            && r.stderr.contains("only its public part")
            && !r.stderr.contains("no secret key for them was given"),
        "{}",
        r.output()
    );

    // Signing with a secret keyring whose signing key is a gpg stub (--export-secret-subkeys of the
    // encryption subkey only).
    let elg_sub = ws
        .gpg(&["--with-colons", "--list-keys", &dsa.fpr])
        .ok()
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("fpr:"))
        .nth(1)
        .map(|r| r.trim_matches(':').to_owned())
        .expect("subkey fingerprint");
    let stub = ws.p("stub.sec.gpg");
    ws.gpg(&[
        "--output",
        s(&stub),
        "--export-secret-subkeys",
        &format!("{elg_sub}!"),
    ])
    .ok();
    let r = ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--encrypt-key",
            &dsa.fpr,
            "--sign-key",
            &dsa.fpr,
            "--keyring",
            s(&dsa.pub_bin),
            "--secret-keyring",
            s(&stub),
            s(&src),
            &ws.url("stub"),
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .fails();
    assert!(
        r.stderr.contains("cannot sign")
            && r.stderr.contains("stub")
            && !r.stderr.contains("wrong passphrase"),
        "{}",
        r.output()
    );

    // A Brainpool key gpg made: restoring duplicity's backup to it names the curve.
    ws.backup(
        Tool::Duplicity,
        "full",
        Enc::Keys,
        &src,
        "bprepo",
        t(0),
        &["--encrypt-key", &bp.fpr],
    );
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "bprepo",
            &ws.p("o2"),
            None,
            &["--secret-keyring", s(&bp.sec_bin)],
        )
        .fails();
    assert!(
        r.stderr.contains("was given but cannot be used") && r.stderr.contains("brainpoolP256r1"),
        "{}",
        r.output()
    );
    // And encrypting to it says why it cannot.
    let r = ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--encrypt-key",
            &bp.fpr,
            "--keyring",
            s(&bp.pub_bin),
            s(&src),
            &ws.url("bp-ours"),
        ],
        &[],
    )
    .fails();
    assert!(
        r.stderr.contains("cannot encrypt") && r.stderr.contains("brainpoolP256r1"),
        "{}",
        r.output()
    );
}

/// gpg 1.x keyring files: a `pubring.gpg` that gpg itself maintains in the old format (gpg 2.2 keeps
/// using a legacy `pubring.gpg` it finds in GNUPGHOME), and a `secring.gpg` of protected secret keys.
#[test]
fn gpg1_keyring_files() {
    let ws = Ws::new("oldkeys-keyring-files");
    let dsa = dsa_key();
    let rsa = rsa1024_key();
    give_duplicity(&ws, dsa);
    // The legacy keyring: an empty pubring.gpg makes gpg use the old format instead of a keybox.
    let legacy = ws.p("legacy");
    fs::create_dir_all(&legacy).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&legacy, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let pubring = legacy.join("pubring.gpg");
    fs::write(&pubring, b"").unwrap();
    for k in [dsa, rsa] {
        let mut cmd = Command::new("gpg");
        cmd.args(["--batch", "--no-tty", "--import", s(&k.pub_bin)])
            .env("GNUPGHOME", &legacy)
            .env("HOME", ws.p("home"));
        run_cmd(cmd, "gpg --import into a legacy pubring.gpg").ok();
    }
    stop_agent(&legacy);
    assert!(
        !legacy.join("pubring.kbx").exists(),
        "gpg made a keybox instead of using pubring.gpg"
    );
    let secring = ws.p("secring.gpg");
    let mut sec = fs::read(&dsa.sec_bin).unwrap();
    sec.extend(fs::read(&rsa.sec_bin).unwrap());
    fs::write(&secring, sec).unwrap();

    let src = ws.p("src");
    build_sample(&src);
    let exp = ws.p("exp");
    sample_at(&exp, 0);
    ours(
        &ws,
        Enc::Keys,
        &[
            "full",
            "--current-time",
            &t(0).to_string(),
            "--encrypt-key",
            dsa.long_id(),
            "--sign-key",
            dsa.long_id(),
            "--keyring",
            s(&pubring),
            "--secret-keyring",
            s(&secring),
            s(&src),
            &ws.url("repo"),
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let o = ws.p("ours");
    ws.restore(
        Tool::Ours,
        Enc::Pass(KEY_PASS),
        "repo",
        &o,
        None,
        &[
            "--secret-keyring",
            s(&secring),
            "--keyring",
            s(&pubring),
            "--sign-key",
            dsa.long_id(),
        ],
    );
    assert_same_tree(&exp, &o, "our restore with gpg 1.x keyring files");
    let d = ws.p("dup");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &d,
        None,
        &["--sign-key", dsa.long_id()],
    );
    assert_same_tree(
        &exp,
        &d,
        "duplicity restore of our backup made with keyring files",
    );
}

const OLD_GPG: &str = "--gpg-options=--rfc2440 --cipher-algo CAST5";

/// A chain (full + 2 incrementals) by duplicity with gpg 1.x's defaults: CAST5, no MDC.
fn old_chain(ws: &Ws, enc: Enc, extra: &[&str]) {
    let src = ws.p("src");
    build_sample(&src);
    for (k, kind) in [(0, "full"), (1, "incremental"), (2, "incremental")] {
        if k > 0 {
            mutate(&src, k);
        }
        let mut args = vec![OLD_GPG];
        args.extend(extra);
        ws.backup(Tool::Duplicity, kind, enc, &src, "repo", t(k), &args);
    }
    // They are SED packets with CAST5, as gpg 1.x wrote them.
    let vol = ws
        .p("repo")
        .join(format!("duplicity-full.{}.vol1.difftar.gpg", stamp(t(0))));
    let packets = ws.gpg(&["--list-packets", s(&vol)]);
    assert!(
        packets.stdout.contains(":encrypted data packet:")
            && !packets.stdout.contains("mdc_method"),
        "{}",
        packets.output()
    );
}

/// Restores the chain of [`old_chain`] at each time and compares.
fn restore_old_chain(ws: &Ws, extra: &[&str]) {
    for (k, time) in [(2, None), (0, Some(t(0))), (1, Some(t(1)))] {
        let exp = ws.p(&format!("exp{k}"));
        sample_at(&exp, k);
        let dst = ws.p(&format!("ours{k}"));
        let r = ws.restore(Tool::Ours, Enc::Pass(KEY_PASS), "repo", &dst, time, extra);
        assert_same_tree(&exp, &dst, "our restore of a CAST5/SED chain");
        assert!(
            r.stderr.contains("without OpenPGP's integrity check") && r.stderr.contains("CAST5"),
            "{}",
            r.output()
        );
    }
}

#[test]
fn cast5_sed_chain_symmetric() {
    let ws = Ws::new("oldkeys-sed-sym");
    old_chain(&ws, Enc::Pass(KEY_PASS), &[]);
    restore_old_chain(&ws, &[]);

    // Tampering with a SED volume (no MDC to catch it) is still caught: by the manifest's SHA-1.
    let vol = ws
        .p("repo")
        .join(format!("duplicity-full.{}.vol1.difftar.gpg", stamp(t(0))));
    let mut bytes = fs::read(&vol).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&vol, bytes).unwrap();
    let r = ws
        .restore_try(
            Tool::Ours,
            Enc::Pass(KEY_PASS),
            "repo",
            &ws.p("tampered"),
            Some(t(0)),
            &[],
        )
        .fails();
    assert!(
        r.stderr.contains("is corrupt") && r.stderr.contains("manifest says"),
        "{}",
        r.output()
    );
}

#[test]
fn cast5_sed_chain_public_key() {
    let ws = Ws::new("oldkeys-sed-pk");
    let dsa = dsa_key();
    give_duplicity(&ws, dsa);
    old_chain(&ws, Enc::Keys, &["--encrypt-key", &dsa.fpr]);
    let secret: PathBuf = dsa.sec_bin.clone();
    restore_old_chain(&ws, &["--secret-keyring", s(&secret)]);
}
