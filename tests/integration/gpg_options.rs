//! `--gpg-options` beyond `--cipher-algo` (issue 12, item 4): what changes what is written is honoured and
//! stock gpg reads it (its `--list-packets` shows the choice), stock duplicity restores it; keyring
//! options inside the string find keys as ours do; what is not honoured is refused by name.

use std::path::Path;

use crate::support::*;

/// The first data volume in the local repository `repo`.
fn first_volume(ws: &Ws, repo: &str) -> std::path::PathBuf {
    std::fs::read_dir(ws.p(repo))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".vol1.difftar.gpg"))
        .expect("a volume")
}

/// `gpg --list-packets` of `file` (gpg decrypts it to list the inner packets), run with the passphrase
/// `pass` and GNUPGHOME `home`.
fn list_packets(ws: &Ws, file: &Path, pass: &str) -> String {
    let mut cmd = std::process::Command::new("gpg");
    ws.env(&mut cmd);
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        pass,
        "--list-packets",
    ])
    .arg(file);
    run_cmd(cmd, "gpg --list-packets").ok().output()
}

/// Stock duplicity 3.2.1 (scripts/duplicity3.sh installs it on first use) restores `repo` into `dst`,
/// with `pass` as PASSPHRASE and the workspace's GNUPGHOME.
fn restore_with_duplicity3(ws: &Ws, repo: &str, dst: &Path, pass: &str) {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/duplicity3.sh"))
        .output()
        .expect("run scripts/duplicity3.sh");
    assert!(
        out.status.success(),
        "scripts/duplicity3.sh failed (run scripts/setup-deps.sh first):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut cmd = std::process::Command::new(&exe);
    ws.env(&mut cmd);
    cmd.env("PASSPHRASE", pass)
        .arg("restore")
        .arg("--archive-dir")
        .arg(ws.p("cache-dup3"))
        .arg(ws.url(repo))
        .arg(dst);
    run_cmd(cmd, "duplicity 3.2.1 restore").ok();
}

#[test]
fn gpg_options_no_compression_symmetric_read_by_gpg_ours_and_duplicity() {
    let ws = Ws::new("gpgopt-z0");
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &["--gpg-options=--batch -z 0", src.to_str().unwrap(), &url],
    )
    .ok();
    let packets = list_packets(&ws, &first_volume(&ws, "repo"), PASS);
    assert!(
        packets.contains("literal data packet") && !packets.contains("compressed packet"),
        "a literal packet straight inside the encryption: {packets}"
    );
    let dst = ws.p("restored");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[url.as_str(), dst.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
    let dst = ws.p("restored-dup");
    ws.restore(Tool::Duplicity, Enc::Pass(PASS), "repo", &dst, None, &[]);
    assert_same_tree(&src, &dst, "stock duplicity");

    // The default stays ZIP-compressed (the check above sees a difference).
    let url2 = ws.url("repo2");
    ws.run(Tool::Ours, Enc::Pass(PASS), &[src.to_str().unwrap(), &url2])
        .ok();
    let packets = list_packets(&ws, &first_volume(&ws, "repo2"), PASS);
    assert!(packets.contains("compressed packet: algo=1"), "{packets}");
}

#[test]
fn gpg_options_homedir_and_compress_algo_none_with_a_public_key() {
    let ws = Ws::new("gpgopt-homedir");
    let key = ws.gen_key(
        "enc",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    // The key is only in the home named by --homedir; GNUPGHOME points at an empty one.
    let empty = ws.p("empty-gnupg");
    std::fs::create_dir_all(&empty).unwrap();
    let home = format!(
        "--gpg-options=--homedir={} --compress-algo none --trust-model always",
        ws.p("gnupg").display()
    );
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[
            home.as_str(),
            "--encrypt-key",
            &key.fpr,
            src.to_str().unwrap(),
            &url,
        ],
        &[("GNUPGHOME", empty.to_str().unwrap())],
    )
    .ok();
    let packets = list_packets(&ws, &first_volume(&ws, "repo"), KEY_PASS);
    assert!(
        packets.contains("pubkey enc packet") && !packets.contains("compressed packet"),
        "{packets}"
    );
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[home.as_str(), url.as_str(), dst.to_str().unwrap()],
        &[
            ("GNUPGHOME", empty.to_str().unwrap()),
            ("PASSPHRASE", KEY_PASS),
        ],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
    let dst = ws.p("restored-dup");
    ws.run_env(
        Tool::Duplicity,
        Enc::Keys,
        &[
            "restore",
            "--encrypt-key",
            &key.fpr,
            url.as_str(),
            dst.to_str().unwrap(),
        ],
        &[("PASSPHRASE", KEY_PASS)],
    )
    .ok();
    assert_same_tree(&src, &dst, "stock duplicity");
}

#[test]
fn gpg_options_keyring_files_inside_the_string() {
    let ws = Ws::new("gpgopt-keyring");
    let key = ws.gen_key(
        "enc",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    let empty = ws.p("empty-gnupg");
    std::fs::create_dir_all(&empty).unwrap();
    let keyring = format!("--gpg-options=--keyring {}", key.pub_bin.display());
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[
            keyring.as_str(),
            "--encrypt-key",
            &key.fpr,
            src.to_str().unwrap(),
            &url,
        ],
        &[("GNUPGHOME", empty.to_str().unwrap())],
    )
    .ok();
    let secret = format!(
        "--gpg-options=--secret-keyring={} --no-tty",
        key.sec_bin.display()
    );
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[secret.as_str(), url.as_str(), dst.to_str().unwrap()],
        &[
            ("GNUPGHOME", empty.to_str().unwrap()),
            ("PASSPHRASE", KEY_PASS),
        ],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
}

#[test]
fn gpg_options_refusals_name_the_option_and_weak_ciphers_warn() {
    let ws = Ws::new("gpgopt-refuse");
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    for (opts, named) in [
        ("--gpg-options=--s2k-mode 2", "--s2k-mode 2"),
        (
            "--gpg-options=--batch --digest-algo=MD5",
            "--digest-algo MD5",
        ),
        ("--gpg-options=--compress-algo lzma", "--compress-algo lzma"),
        ("--gpg-options=--rfc2440", "--rfc2440"),
        ("--gpg-options=--export-options x", "--export-options"),
    ] {
        let r = ws
            .run(
                Tool::Ours,
                Enc::Pass(PASS),
                &[opts, src.to_str().unwrap(), &url],
            )
            .fails();
        assert!(r.output().contains(named), "{opts}: {}", r.output());
    }
    let r = ws
        .run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[
                "--gpg-options=--cipher-algo CAST5",
                src.to_str().unwrap(),
                &url,
            ],
        )
        .ok();
    assert!(
        r.stderr
            .contains("warning: --gpg-options: --cipher-algo CAST5"),
        "{}",
        r.output()
    );
    // --rfc2440 only matters when writing: a restore accepts it.
    let dst = ws.p("restored");
    ws.run(
        Tool::Ours,
        Enc::Pass(PASS),
        &[
            "--gpg-options=--rfc2440",
            url.as_str(),
            dst.to_str().unwrap(),
        ],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
}

#[test]
fn gpg_options_s2k_choices_read_by_gpg_ours_and_duplicity() {
    let ws = Ws::new("gpgopt-s2k");
    let src = ws.p("src");
    build_sample(&src);
    for (repo, opts, shown) in [
        (
            "salted",
            "--gpg-options=--s2k-mode 1 --s2k-cipher-algo=AES128 --s2k-digest-algo SHA512",
            // AES128 is cipher 7, SHA512 hash 10.
            &["cipher 7", "s2k 1", "hash 10"][..],
        ),
        (
            "count",
            "--gpg-options=--s2k-count=1024 --s2k-mode=3",
            &["s2k 3", "count 1024"][..],
        ),
    ] {
        let url = ws.url(repo);
        ws.run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[opts, src.to_str().unwrap(), &url],
        )
        .ok();
        let packets = list_packets(&ws, &first_volume(&ws, repo), PASS);
        // The SKESK line and the line after it (gpg prints the salt and count there).
        let mut lines = packets
            .lines()
            .skip_while(|l| !l.contains("symkey enc packet"));
        let skesk = format!(
            "{} {}",
            lines.next().unwrap_or_default(),
            lines.next().unwrap_or_default()
        );
        for s in shown {
            assert!(skesk.contains(s), "{repo}: {s} in {packets}");
        }
        let dst = ws.p(&format!("{repo}-ours"));
        ws.run(
            Tool::Ours,
            Enc::Pass(PASS),
            &[url.as_str(), dst.to_str().unwrap()],
        )
        .ok();
        assert_same_tree(&src, &dst, "ours");
        let dst = ws.p(&format!("{repo}-dup"));
        ws.restore(Tool::Duplicity, Enc::Pass(PASS), repo, &dst, None, &[]);
        assert_same_tree(&src, &dst, "stock duplicity");
        let dst = ws.p(&format!("{repo}-dup3"));
        restore_with_duplicity3(&ws, repo, &dst, PASS);
        assert_same_tree(&src, &dst, "stock duplicity 3.2.1");
    }
}

#[test]
fn gpg_options_digest_algo_signs_with_it() {
    let ws = Ws::new("gpgopt-digest");
    let sig = ws.gen_key("signer", "rsa3072", "default", None, "never", None);
    let src = ws.p("src");
    build_sample(&src);
    let url = ws.url("repo");
    ws.run_env(
        Tool::Ours,
        Enc::Pass(PASS),
        &[
            "--gpg-options=--digest-algo SHA512",
            "--sign-key",
            &sig.fpr,
            "--secret-keyring",
            sig.sec_asc.to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ],
        &[("SIGN_PASSPHRASE", KEY_PASS)],
    )
    .ok();
    let vol = first_volume(&ws, "repo");
    let packets = list_packets(&ws, &vol, PASS);
    // SHA512 is digest algorithm 10 (the one-pass signature packet names it).
    assert!(packets.contains("digest 10,"), "{packets}");
    let mut cmd = std::process::Command::new("gpg");
    ws.env(&mut cmd);
    cmd.args([
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASS,
        "-o",
        "/dev/null",
        "--decrypt",
    ])
    .arg(&vol);
    let r = run_cmd(cmd, "gpg --decrypt").ok();
    assert!(r.output().contains("Good signature"), "{}", r.output());
    let dst = ws.p("restored-dup");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(PASS),
        "repo",
        &dst,
        None,
        &["--sign-key", sig.long_id()],
    );
    assert_same_tree(&src, &dst, "stock duplicity --sign-key");
}

#[test]
fn gpg_options_throw_keyids_writes_wildcard_ids_that_every_reader_decrypts() {
    let ws = Ws::new("gpgopt-throw");
    let key = ws.gen_key(
        "enc",
        "ed25519",
        "sign,cert",
        Some("cv25519"),
        "never",
        None,
    );
    // A second secret key the readers also hold, tried before the right one.
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
    let url = ws.url("repo");
    ws.run(
        Tool::Ours,
        Enc::Keys,
        &[
            "--gpg-options=--throw-keyids",
            "--encrypt-key",
            &key.fpr,
            "--keyring",
            key.pub_bin.to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let packets = list_packets(&ws, &first_volume(&ws, "repo"), KEY_PASS);
    assert!(
        packets.contains("pubkey enc packet") && packets.contains("keyid 0000000000000000"),
        "{packets}"
    );
    let dst = ws.p("restored");
    ws.run_env(
        Tool::Ours,
        Enc::Keys,
        &[
            "restore",
            "--secret-keyring",
            other.sec_bin.to_str().unwrap(),
            "--secret-keyring",
            key.sec_bin.to_str().unwrap(),
            url.as_str(),
            dst.to_str().unwrap(),
        ],
        &[("PASSPHRASE", KEY_PASS)],
    )
    .ok();
    assert_same_tree(&src, &dst, "ours");
    let dst = ws.p("restored-dup");
    ws.restore(
        Tool::Duplicity,
        Enc::Pass(KEY_PASS),
        "repo",
        &dst,
        None,
        &[],
    );
    assert_same_tree(&src, &dst, "stock duplicity");
    let dst = ws.p("restored-dup3");
    restore_with_duplicity3(&ws, "repo", &dst, KEY_PASS);
    assert_same_tree(&src, &dst, "stock duplicity 3.2.1");
}
