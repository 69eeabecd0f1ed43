use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PASS: &str = "correct horse battery staple";

/// A throwaway GNUPGHOME (0700); its gpg-agent is stopped on drop.
struct Gpg {
    dir: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs gpg with `args`; `passphrase` is the first line on stdin, followed by `stdin`.
    /// Returns (success, stdout, stderr).
    fn run(&self, args: &[&str], passphrase: &str, stdin: &[u8]) -> (bool, Vec<u8>, String) {
        let mut child = Command::new("/usr/bin/gpg")
            .env("GNUPGHOME", self.dir.path())
            .args([
                "--batch",
                "--no-tty",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--no-symkey-cache",
                "--passphrase-fd",
                "0",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/gpg");
        let mut input = child.stdin.take().unwrap();
        let mut feed = Vec::with_capacity(passphrase.len() + 1 + stdin.len());
        feed.extend_from_slice(passphrase.as_bytes());
        feed.push(b'\n');
        feed.extend_from_slice(stdin);
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&feed);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `gpg --symmetric` of `plain` (from a file, or streamed on stdin) with extra options.
    fn symmetric(&self, plain: &[u8], extra: &[&str], from_stdin: bool) -> Vec<u8> {
        let out = self.path("gpg-out.gpg");
        let _ = std::fs::remove_file(&out);
        let input = self.path("gpg-in");
        let out_s = out.to_str().unwrap().to_owned();
        let mut args: Vec<&str> = vec!["--symmetric", "--output", &out_s];
        args.extend_from_slice(extra);
        let (ok, _, err) = if from_stdin {
            self.run(&args, PASS, plain)
        } else {
            std::fs::write(&input, plain).unwrap();
            args.push(input.to_str().unwrap());
            self.run(&args, PASS, b"")
        };
        assert!(ok, "gpg --symmetric {extra:?} failed: {err}");
        std::fs::read(&out).unwrap()
    }

    /// `gpg --decrypt` of `cipher`; returns the plaintext or gpg's stderr.
    fn decrypt(&self, cipher: &[u8], passphrase: &str) -> Result<Vec<u8>, String> {
        let input = self.path("to-decrypt.gpg");
        std::fs::write(&input, cipher).unwrap();
        let (ok, out, err) = self.run(&["--decrypt", input.to_str().unwrap()], passphrase, b"");
        if ok {
            Ok(out)
        } else {
            Err(err)
        }
    }

    /// Makes a key protected by PASS (primary `algo`, optional encryption subkey `sub`); returns
    /// its secret key as exported and the primary fingerprint.
    fn gen_key(&self, uid: &str, algo: &str, sub: Option<&str>) -> (Vec<Cert>, String) {
        let usage = if sub.is_some() {
            "sign,cert"
        } else {
            "default"
        };
        let (ok, _, err) = self.run(&["--quick-gen-key", uid, algo, usage, "never"], PASS, b"");
        assert!(ok, "gpg --quick-gen-key: {err}");
        let (_, out, _) = self.run(&["--with-colons", "--list-keys", uid], PASS, b"");
        let out = String::from_utf8(out).unwrap();
        let fpr = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .unwrap();
        if let Some(sub) = sub {
            let (ok, _, err) =
                self.run(&["--quick-add-key", &fpr, sub, "encr", "never"], PASS, b"");
            assert!(ok, "gpg --quick-add-key: {err}");
        }
        let (ok, out, err) = self.run(&["--export-secret-keys", &fpr], PASS, b"");
        assert!(ok, "gpg --export-secret-keys: {err}");
        let certs = openpgp::cert::CertParser::from_bytes(&out)
            .unwrap()
            .collect::<openpgp::Result<Vec<Cert>>>()
            .unwrap();
        (certs, fpr)
    }

    /// `gpg --encrypt` of `plain` with extra options (recipients).
    fn encrypt_to(&self, plain: &[u8], extra: &[&str]) -> Vec<u8> {
        let mut args = vec!["--encrypt", "--trust-model", "always"];
        args.extend_from_slice(extra);
        let (ok, out, err) = self.run(&args, PASS, plain);
        assert!(ok, "gpg --encrypt {extra:?}: {err}");
        out
    }

    fn list_packets(&self, cipher: &[u8]) -> String {
        let input = self.path("to-list.gpg");
        std::fs::write(&input, cipher).unwrap();
        let (_, out, err) = self.run(&["--list-packets", input.to_str().unwrap()], PASS, b"");
        format!("{}{}", String::from_utf8_lossy(&out), err)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/gpgconf")
            .env("GNUPGHOME", self.dir.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Deterministic mixed data: alternating pseudo-random and log-like text segments.
fn mixed(len: usize, segment: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0u64;
    while out.len() < len {
        let seg_end = (out.len() + segment).min(len);
        if (out.len() / segment) % 2 == 0 {
            while out.len() < seg_end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let take = (seg_end - out.len()).min(8);
                out.extend_from_slice(&x.to_le_bytes()[..take]);
            }
        } else {
            while out.len() < seg_end {
                line += 1;
                let l = format!(
                    "2024-05-{:02} 12:{:02}:{:02} host backup[{}]: processed /srv/data/file-{}.dat ok\n",
                    line % 28 + 1,
                    line % 60,
                    line % 59,
                    1000 + line % 977,
                    line
                );
                let take = (seg_end - out.len()).min(l.len());
                out.extend_from_slice(&l.as_bytes()[..take]);
            }
        }
    }
    out
}

fn encrypt(enc: &SymmetricEncryptor, plain: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = enc.writer(&mut out, compression).unwrap();
    for chunk in plain.chunks(100_000) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap();
    out
}

/// Reads the whole message; the error (from `reader` or `read`) as a CryptoError.
fn decrypt_all(dec: &Decryptor, cipher: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut r = dec.reader(cipher)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(into_crypto)?;
    Ok(out)
}

fn into_crypto(e: io::Error) -> CryptoError {
    match e.get_ref().and_then(|r| r.downcast_ref::<CryptoError>()) {
        Some(_) => *e.into_inner().unwrap().downcast::<CryptoError>().unwrap(),
        None => panic!("read error without a CryptoError inside: {e:?}"),
    }
}

fn pass() -> Passphrase {
    Passphrase::new(PASS)
}

/// Keys that demand a signature by `id`, checked with `certs`.
fn check_by(id: &str, certs: &[Cert]) -> KeySetup {
    KeySetup {
        check: Some(SignatureCheck {
            id: id.to_owned(),
            certs: certs.to_vec(),
        }),
        ..KeySetup::default()
    }
}

/// Secret keys for decryption.
fn secret(certs: &[Cert]) -> KeySetup {
    KeySetup {
        secret_keys: certs.to_vec(),
        ..KeySetup::default()
    }
}

#[test]
fn passphrase_is_redacted() {
    let p = Passphrase::new("hunter2");
    assert!(!format!("{p:?}").contains("hunter2"));
    assert_eq!(format!("{p}"), "<redacted>");
    for e in [
        CryptoError::BadPassphrase,
        CryptoError::NoPassphrase,
        CryptoError::Tampered("x".into()),
    ] {
        assert!(!e.to_string().contains("hunter2"));
    }
    assert!(CryptoError::BadPassphrase
        .to_string()
        .contains("PASSPHRASE"));
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SymmetricEncryptor>();
    check::<Decryptor>();
    check::<EncryptWriter<'static>>();
    check::<Passphrase>();
}

#[test]
fn ours_to_gpg() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let big = mixed(3 << 20, 256 << 10);
    let cases: [(&str, &[u8]); 3] = [
        ("small", b"hello, duplicity\n"),
        ("empty", b""),
        ("mixed", &big),
    ];
    for (name, plain) in cases {
        for c in [
            Compression::Deflate(6),
            Compression::Deflate(1),
            Compression::Deflate(0),
            Compression::None,
        ] {
            let cipher = encrypt(&enc, plain, c);
            assert!(looks_like_openpgp(&cipher));
            let got = gpg
                .decrypt(&cipher, PASS)
                .unwrap_or_else(|e| panic!("gpg rejected {name} {c:?}: {e}"));
            assert!(
                got == plain,
                "gpg gave different plaintext for {name} {c:?}"
            );
            if name == "small" {
                let packets = gpg.list_packets(&cipher);
                assert!(
                    packets.contains("symkey enc packet: version 4, cipher 9"),
                    "{packets}"
                );
                assert!(packets.contains("mdc_method: 2"), "{packets}");
                assert_eq!(
                    packets.contains("compressed packet: algo=1"),
                    c != Compression::None,
                    "{packets}"
                );
            }
        }
    }
    // Same message content, two messages: different session keys (different ESKs).
    let a = encrypt(&enc, b"x", Compression::None);
    let b = encrypt(&enc, b"x", Compression::None);
    assert_ne!(a, b);
    assert_eq!(enc.s2k_derivations(), 1);
}

/// A binary literal packet with a definite length (new format), as raw packet bytes.
fn literal_packet(data: &[u8]) -> Vec<u8> {
    let mut p = vec![0xcb, 0xff];
    p.extend_from_slice(&(data.len() as u32 + 6).to_be_bytes());
    p.extend_from_slice(b"b\0\0\0\0\0");
    p.extend_from_slice(data);
    p
}

/// `packet_writer` with the backend's packets (`PgpLiteralWriter`) or a hand-made literal packet.
fn encrypt_packets(enc: &SymmetricEncryptor, plain: &[u8], level: Option<u32>) -> Vec<u8> {
    use crate::engine::archive::deflate::PgpLiteralWriter;
    let mut out = Vec::new();
    let w = enc.packet_writer(&mut out).unwrap();
    match level {
        Some(level) => {
            let mut lw = PgpLiteralWriter::new(w, level).unwrap();
            for chunk in plain.chunks(300_000) {
                lw.write_all(chunk).unwrap();
            }
            lw.finish().unwrap().finish().unwrap();
        }
        None => {
            let mut w = w;
            w.write_all(&literal_packet(plain)).unwrap();
            w.finish().unwrap();
        }
    }
    out
}

#[test]
fn packet_writer_to_gpg_and_ours() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    // SEIPD body = version + 18 prefix + packets + 22 MDC; 12 bytes of literal header: these sizes put
    // the body at 2^20 - 1, 2^20 and 2^20 + 1 bytes, around the first partial-length piece.
    let edge = (1usize << 20) - 41 - 12;
    let big = mixed(3 << 20, 200_000);
    for (level, len) in [
        (None, 0),
        (None, 1),
        (None, edge - 1),
        (None, edge),
        (None, edge + 1),
        (None, 3 << 20),
        (Some(0), 0),
        (Some(0), 5),
        (Some(0), 3 << 20),
        (Some(6), 3 << 20),
        (Some(1), 1 << 20),
    ] {
        let plain = &big[..len];
        let cipher = encrypt_packets(&enc, plain, level);
        assert!(looks_like_openpgp(&cipher));
        let got = gpg
            .decrypt(&cipher, PASS)
            .unwrap_or_else(|e| panic!("gpg rejected {level:?} {len}: {e}"));
        assert!(got == plain, "gpg: different plaintext for {level:?} {len}");
        let ours =
            decrypt_all(&dec, &cipher).unwrap_or_else(|e| panic!("ours, {level:?} {len}: {e}"));
        assert!(
            ours == plain,
            "ours: different plaintext for {level:?} {len}"
        );
        if len == 5 {
            let packets = gpg.list_packets(&cipher);
            assert!(
                packets.contains("symkey enc packet: version 4, cipher 9"),
                "{packets}"
            );
            assert!(packets.contains("mdc_method: 2"), "{packets}");
            assert!(packets.contains("compressed packet: algo=1"), "{packets}");
        }
    }
}

#[test]
fn gpg_to_ours() {
    let gpg = Gpg::new();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(1 << 20, 100_000);
    // (name, gpg options, plaintext on stdin, read by the fast path)
    let cases: [(&str, &[&str], bool, bool); 16] = [
        ("defaults", &[], false, true),
        ("cast5", &["--cipher-algo", "CAST5"], false, true),
        (
            "aes128-sha1",
            &["--cipher-algo", "AES128", "--s2k-digest-algo", "SHA1"],
            false,
            true,
        ),
        ("zlib", &["--compress-algo", "zlib"], false, true),
        ("bzip2", &["--compress-algo", "bzip2"], false, false),
        ("uncompressed", &["--compress-algo", "none"], false, true),
        ("stdin-partial", &[], true, true),
        (
            "stdin-uncompressed",
            &["--compress-algo", "none"],
            true,
            true,
        ),
        ("zip-level-0", &["--compress-level", "0"], false, true),
        ("3des", &["--cipher-algo", "3DES"], false, true),
        ("blowfish", &["--cipher-algo", "BLOWFISH"], false, true),
        ("twofish", &["--cipher-algo", "TWOFISH"], false, true),
        (
            "camellia256",
            &["--cipher-algo", "CAMELLIA256"],
            false,
            true,
        ),
        ("aes192", &["--cipher-algo", "AES192"], false, true),
        (
            "s2k-simple-sha512",
            &["--s2k-mode", "1", "--s2k-digest-algo", "SHA512"],
            false,
            true,
        ),
        (
            "s2k-mode-0-md5",
            &["--s2k-mode", "0", "--s2k-digest-algo", "MD5"],
            false,
            true,
        ),
    ];
    for (name, args, stdin, fast) in cases {
        let cipher = gpg.symmetric(&plain, args, stdin);
        assert!(looks_like_openpgp(&cipher), "{name}");
        let before = dec.paths();
        let got = decrypt_all(&dec, &cipher).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == plain, "{name}: different plaintext");
        let after = dec.paths();
        let expected = if fast {
            (before.0 + 1, before.1)
        } else {
            (before.0, before.1 + 1)
        };
        assert_eq!(after, expected, "{name}: (fast, sequoia) reads");
    }
    // gpg uses a new salt each time: one derivation per message (mode 0 has no salt, and mode 1's
    // simple hash too is derived once per message here).
    assert_eq!(dec.s2k_derivations(), cases.len());
    // gpg's small and empty messages too.
    for p in [&b""[..], b"tiny"] {
        let cipher = gpg.symmetric(p, &[], false);
        assert_eq!(decrypt_all(&dec, &cipher).unwrap(), p);
    }
    assert_eq!(dec.paths().1, 1, "only bzip2 goes to sequoia");
}

#[test]
fn our_messages_take_the_fast_path() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(300_000, 50_000);
    for c in [
        Compression::None,
        Compression::Deflate(0),
        Compression::Deflate(6),
    ] {
        assert_eq!(decrypt_all(&dec, &encrypt(&enc, &plain, c)).unwrap(), plain);
    }
    for level in [None, Some(0), Some(6)] {
        let cipher = encrypt_packets(&enc, &plain, level);
        assert_eq!(decrypt_all(&dec, &cipher).unwrap(), plain);
    }
    assert_eq!(dec.paths(), (6, 0));
}

/// A message with several SKESKs: the first that opens the SEIPD wins; wrong ones are skipped.
#[test]
fn several_session_key_packets() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let other = SymmetricEncryptor::new(&Passphrase::new("other")).unwrap();
    let mine = encrypt_packets(&enc, b"the data", Some(6));
    let theirs = encrypt_packets(&other, b"something else", None);
    // Our SKESKs are 48 bytes: new-format header 0xc3 0x2e.
    assert_eq!(&mine[..2], &[0xc3, 0x2e]);
    let mut both = theirs[..48].to_vec();
    both.extend_from_slice(&mine);
    // A marker packet first, as PGP 5 wrote.
    let mut marked = vec![0xa8, 0x03, b'P', b'G', b'P'];
    marked.extend_from_slice(&both);
    let dec = Decryptor::new(Some(pass()));
    assert_eq!(decrypt_all(&dec, &both).unwrap(), b"the data");
    assert_eq!(decrypt_all(&dec, &marked).unwrap(), b"the data");
    assert_eq!(dec.paths(), (2, 0));
    // "other" opens the first SKESK, whose session key fails the quick check on this SEIPD; the
    // second does not open.
    let dec = Decryptor::new(Some(Passphrase::new("other")));
    assert!(matches!(
        decrypt_all(&dec, &both),
        Err(CryptoError::BadPassphrase)
    ));
    // gpg 2.2 gives up after a SKESK whose ESK does not decrypt ("Bad session key"), so check only
    // the marker with it.
    let mut marked_mine = marked[..5].to_vec();
    marked_mine.extend_from_slice(&mine);
    let gpg = Gpg::new();
    assert_eq!(gpg.decrypt(&marked_mine, PASS).unwrap(), b"the data");
}

/// Shapes the fast path leaves to sequoia: a signed symmetric message (one-pass signature inside)
/// decrypts there after the fast path looked into its SEIPD; public-key encryption is refused as before.
#[test]
fn signed_and_public_key_messages_take_the_fast_path() {
    let gpg = Gpg::new();
    let (sec, fpr) = gpg.gen_key("Test <test@example.org>", "future-default", None);
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(300_000, 100_000);
    let signed = gpg.symmetric(
        &plain,
        &["--sign", "--local-user", "test@example.org"],
        false,
    );
    // Signatures are skipped when not asked for, checked when asked for.
    assert_eq!(decrypt_all(&dec, &signed).unwrap(), plain);
    assert_eq!(dec.paths(), (1, 0));
    let checking = Decryptor::with_keys(Some(pass()), &check_by(&fpr[24..], &sec));
    assert_eq!(decrypt_all(&checking, &signed).unwrap(), plain);
    let other = Decryptor::with_keys(Some(pass()), &check_by("0123456789ABCDEF", &sec));
    match decrypt_all(&other, &signed) {
        Err(CryptoError::Signature(w)) => assert!(w.contains("not by 0123456789ABCDEF"), "{w}"),
        r => panic!("expected a signature error, got {r:?}"),
    }
    // Unsigned, but a signature is demanded.
    let unsigned = gpg.symmetric(&plain, &[], false);
    match decrypt_all(&checking, &unsigned) {
        Err(CryptoError::Signature(w)) => assert!(w.contains("not signed"), "{w}"),
        r => panic!("expected a signature error, got {r:?}"),
    }
    // gpg --encrypt to the key: our secret key opens it on the fast path.
    let pk = gpg.encrypt_to(&plain, &["--recipient", "test@example.org"]);
    match decrypt_all(&dec, &pk) {
        Err(e @ CryptoError::NoSecretKey(_)) => {
            assert!(e.to_string().contains("--secret-keyring"), "{e}")
        }
        other => panic!("expected NoSecretKey, got {other:?}"),
    }
    let with_key = Decryptor::with_keys(Some(pass()), &secret(&sec));
    assert_eq!(decrypt_all(&with_key, &pk).unwrap(), plain);
    assert_eq!(with_key.paths(), (1, 0));
    let wrong = Decryptor::with_keys(Some(Passphrase::new("wrong")), &secret(&sec));
    assert!(matches!(
        decrypt_all(&wrong, &pk),
        Err(CryptoError::BadKeyPassphrase(_))
    ));
    // Hidden recipient (key id 0): every secret key is tried.
    let hidden = gpg.encrypt_to(&plain, &["--hidden-recipient", "test@example.org"]);
    assert_eq!(decrypt_all(&with_key, &hidden).unwrap(), plain);
}

/// Our PKESK v3 + SEIPD, and one-pass signature + literal + signature inside the ZIP packet, for
/// both key types gpg makes: gpg decrypts them, checks the signature and lists the packets
/// duplicity's gpg writes; we read them back on the fast path.
#[test]
fn public_key_and_signature_packet_shapes() {
    use crate::engine::archive::deflate::PgpLiteralWriter;
    use crate::engine::keys;
    let gpg = Gpg::new();
    let (ed_sec, ed) = gpg.gen_key("Ed <ed@example.org>", "ed25519", Some("cv25519"));
    let (rsa_sec, rsa) = gpg.gen_key("Rsa <rsa@example.org>", "rsa3072", Some("rsa3072"));
    let now = std::time::SystemTime::now();
    let mut all = ed_sec.clone();
    all.extend(rsa_sec.clone());
    let plain = mixed(700_000, 200_000);
    for (name, fpr) in [("ed25519", &ed), ("rsa3072", &rsa)] {
        for hidden in [false, true] {
            let r = keys::recipient(fpr, &all, hidden, now).unwrap();
            assert_ne!(r.key_fingerprint(), *fpr, "{name}: the encryption subkey");
            let signer = keys::signing_key(&rsa, &all, Some(&pass()), now).unwrap();
            let enc = Encryptor::public_key(vec![r])
                .unwrap()
                .with_signer(Some(signer));
            let mut backend_shape = Vec::new();
            let mut w = PgpLiteralWriter::with_signer(
                enc.packet_writer(&mut backend_shape).unwrap(),
                2,
                enc.message_signer().unwrap(),
            )
            .unwrap();
            w.write_all(&plain).unwrap();
            w.finish().unwrap().finish().unwrap();
            let mut plain_shape = Vec::new();
            let mut w = enc.writer(&mut plain_shape, Compression::None).unwrap();
            w.write_all(&plain).unwrap();
            w.finish().unwrap();
            for (shape, cipher) in [("zip", &backend_shape), ("none", &plain_shape)] {
                let what = format!("{name} hidden={hidden} {shape}");
                let packets = gpg.list_packets(cipher);
                assert!(
                    packets.contains(":pubkey enc packet: version 3"),
                    "{what}: {packets}"
                );
                assert_eq!(
                    packets.contains("keyid 0000000000000000"),
                    hidden,
                    "{what}: {packets}"
                );
                assert!(packets.contains(":onepass_sig packet"), "{what}: {packets}");
                // (gpg --list-packets stops at a literal packet of partial lengths; the
                // signature packet after it is proven by GOODSIG below.)
                let (ok, out, err) = gpg.run(&["--status-fd", "2", "--decrypt", "-"], PASS, cipher);
                assert!(ok, "{what}: gpg --decrypt: {err}");
                assert!(out == plain, "{what}: gpg's plaintext differs");
                assert!(
                    err.contains(&format!("[GNUPG:] GOODSIG {}", &rsa[24..])),
                    "{what}: {err}"
                );
                let dec = Decryptor::with_keys(
                    Some(pass()),
                    &keys::KeySetup {
                        secret_keys: all.clone(),
                        ..check_by(&rsa[32..], &all)
                    },
                );
                assert_eq!(decrypt_all(&dec, cipher).unwrap(), plain, "{what}");
                assert_eq!(dec.paths(), (1, 0), "{what}");
            }
        }
    }
}

#[test]
fn sed_without_mdc_is_read() {
    // gpg 1.x with CAST5 wrote SED (tag 9, no MDC) unless told --force-mdc; duplicity reads such
    // files (gpg --ignore-mdc-error), and so does our fast path (sequoia 2.4 cannot). Large enough for
    // many partial-length pieces, with 8- and 16-byte blocks (the CFB resync differs by block size).
    let gpg = Gpg::new();
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for algo in ["CAST5", "AES256"] {
        let cipher = gpg.symmetric(&plain, &["--rfc2440", "--cipher-algo", algo], false);
        assert!(looks_like_openpgp(&cipher));
        let dec = Decryptor::new(Some(pass()));
        assert!(decrypt_all(&dec, &cipher).unwrap() == plain, "{algo}");
        assert_eq!(dec.paths(), (1, 0), "{algo}");
        let wrong = Decryptor::new(Some(Passphrase::new("not it")));
        assert!(
            matches!(
                decrypt_all(&wrong, &cipher),
                Err(CryptoError::BadPassphrase)
            ),
            "{algo}"
        );
    }
    // Armored SED goes to sequoia, which cannot read SED: the message says what to do.
    let armored = gpg.symmetric(b"old data", &["--rfc2440", "--armor"], false);
    match decrypt_all(&Decryptor::new(Some(pass())), &armored) {
        Err(e @ CryptoError::Unsupported(_)) => {
            assert!(e.to_string().contains("--ignore-mdc-error"), "{e}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn wrong_or_missing_passphrase() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let ours = encrypt(&enc, b"secret data", Compression::Deflate(6));
    let theirs = gpg.symmetric(b"secret data", &[], false);
    let wrong = Decryptor::new(Some(Passphrase::new("not it")));
    let none = Decryptor::new(None);
    for cipher in [&ours, &theirs] {
        assert!(matches!(
            decrypt_all(&wrong, cipher),
            Err(CryptoError::BadPassphrase)
        ));
        assert!(matches!(
            decrypt_all(&none, cipher),
            Err(CryptoError::NoPassphrase)
        ));
    }
    assert!(gpg.decrypt(&ours, "not it").is_err());
}

#[test]
fn flipped_byte_is_an_error() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(1 << 20, 64 << 10);
    for c in [Compression::None, Compression::Deflate(6)] {
        let cipher = encrypt(&enc, &plain, c);
        for pos in [cipher.len() / 2, cipher.len() - 5, 80] {
            let mut bad = cipher.clone();
            bad[pos] ^= 0x01;
            match decrypt_all(&dec, &bad) {
                // Without compression nothing but the MDC can notice.
                Err(CryptoError::Malformed(e)) if c == Compression::None => {
                    panic!("flip at {pos} should fail the MDC check, got: {e}")
                }
                Err(CryptoError::Tampered(_)) | Err(CryptoError::Malformed(_)) => {}
                Ok(_) => panic!("{c:?}: flipped byte at {pos} of {} not detected", bad.len()),
                Err(e) => panic!("{c:?}: flipped byte at {pos}: unexpected error {e}"),
            }
        }
    }
}

#[test]
fn truncation_is_an_error() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(1 << 20, 64 << 10);
    let messages = [
        encrypt(&enc, &plain, Compression::None),
        encrypt(&enc, &plain, Compression::Deflate(6)),
        gpg.symmetric(&plain, &[], true),
    ];
    for cipher in &messages {
        for cut in [
            cipher.len() - 1,
            cipher.len() - 22,
            cipher.len() / 2,
            100,
            40,
        ] {
            match decrypt_all(&dec, &cipher[..cut]) {
                Err(CryptoError::Tampered(_)) | Err(CryptoError::Malformed(_)) => {}
                Ok(p) => panic!(
                    "truncated at {cut} of {} gave {} bytes silently",
                    cipher.len(),
                    p.len()
                ),
                Err(e) => panic!("truncated at {cut}: unexpected error {e}"),
            }
        }
    }
}

/// Where the SEIPD packet starts: after the SKESK (and any marker).
fn seipd_offset(cipher: &[u8]) -> usize {
    let mut r = cipher;
    loop {
        let start = cipher.len() - r.len();
        let h = read_header(&mut r).unwrap().unwrap();
        if h.tag == 18 {
            return start;
        }
        let BodyLen::Definite(n) = h.len else {
            panic!("unexpected length")
        };
        r = &r[n as usize..];
    }
}

/// Every single flipped bit in the SEIPD (header, prefix, packets, MDC) of small messages, ours and
/// gpg's, is an error by the end of the read: never a silent success, never a panic.
#[test]
fn every_flipped_byte_in_the_seipd_is_an_error() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(1500, 500);
    let messages = [
        ("ours/stored", encrypt_packets(&enc, &plain, Some(0))),
        ("ours/zip", encrypt_packets(&enc, &plain, Some(6))),
        ("ours/literal", encrypt_packets(&enc, &plain, None)),
        (
            "ours/writer",
            encrypt(&enc, &plain, Compression::Deflate(6)),
        ),
        ("gpg", gpg.symmetric(&plain, &[], true)),
        (
            "gpg/none",
            gpg.symmetric(&plain, &["--compress-algo", "none"], false),
        ),
    ];
    for (name, cipher) in &messages {
        assert_eq!(&decrypt_all(&dec, cipher).unwrap(), &plain, "{name}");
        for pos in seipd_offset(cipher)..cipher.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = cipher.clone();
                bad[pos] ^= bit;
                match decrypt_all(&dec, &bad) {
                    Ok(_) => panic!(
                        "{name}: flipped bit {bit:#x} at {pos} of {} not detected",
                        bad.len()
                    ),
                    Err(CryptoError::Tampered(_))
                    | Err(CryptoError::Malformed(_))
                    | Err(CryptoError::BadPassphrase)
                    | Err(CryptoError::Unsupported(_)) => {}
                    Err(e) => panic!("{name}: flip at {pos}: unexpected error {e}"),
                }
            }
        }
    }
}

/// Every truncation of small messages is an error.
#[test]
fn every_truncation_is_an_error() {
    let gpg = Gpg::new();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(1500, 500);
    let messages = [
        encrypt_packets(&enc, &plain, Some(6)),
        encrypt_packets(&enc, &plain, None),
        gpg.symmetric(&plain, &[], true),
    ];
    for cipher in &messages {
        for cut in 0..cipher.len() {
            match decrypt_all(&dec, &cipher[..cut]) {
                Err(CryptoError::Tampered(_)) | Err(CryptoError::Malformed(_)) => {}
                Ok(p) => panic!(
                    "truncated at {cut} of {}: {} bytes, no error",
                    cipher.len(),
                    p.len()
                ),
                Err(e) => panic!("truncated at {cut}: unexpected error {e}"),
            }
        }
    }
}

/// A SEIPD written with a wrong MDC, or without one, decrypts to an integrity error at the end.
#[test]
fn mdc_mismatch_is_tampered() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(200_000, 50_000);
    for case in ["digest", "tag", "missing"] {
        let mut out = Vec::new();
        {
            let SeipdWriter { mut cfb, mut mdc } = enc.start(&mut out).unwrap();
            let packet = literal_packet(&plain);
            mdc.update(&packet);
            cfb.write_all(&packet).unwrap();
            let mut tail = vec![0xd3, 0x14];
            mdc.update(&tail);
            tail.extend_from_slice(&mdc.finalize());
            match case {
                "digest" => tail[7] ^= 0x40,
                "tag" => tail[0] = 0xd2,
                _ => tail.clear(),
            }
            cfb.write_all(&tail).unwrap();
            cfb.finalize().unwrap().finish().unwrap();
        }
        let mut r = dec.reader(&out[..]).unwrap();
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        match into_crypto(e) {
            CryptoError::Tampered(what) => assert!(what.contains("MDC"), "{case}: {what}"),
            other => panic!("{case}: {other:?}"),
        }
        // Everything before the MDC was released (flat memory); the caller must drop it.
        assert!(got.len() <= plain.len(), "{case}");
        // Reading on repeats the error.
        assert!(r.read(&mut [0u8; 10]).is_err());
    }
}

/// Absurd lengths in headers, outside and inside the encryption: a clear error, no panic, no
/// allocation by the claimed length.
#[test]
fn hostile_headers() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let good = encrypt_packets(&enc, b"data", None);
    let skesk = &good[..48];
    let expect_err = |what: &str, bytes: &[u8]| -> CryptoError {
        match decrypt_all(&dec, bytes) {
            Ok(p) => panic!("{what}: {} bytes, no error", p.len()),
            Err(e) => {
                assert!(!e.to_string().contains(PASS), "{what}");
                e
            }
        }
    };
    // A SKESK claiming 4 GiB.
    let e = expect_err("huge skesk", &[0xc3, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 9, 3]);
    assert!(matches!(e, CryptoError::Malformed(_)), "{e:?}");
    // Old-format SKESK claiming 4 GiB.
    expect_err("huge old skesk", &[0x8e, 0xff, 0xff, 0xff, 0xff, 4, 9]);
    // A PKESK claiming 4 GiB (goes to sequoia).
    expect_err(
        "huge pkesk",
        &[0xc1, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 1, 2, 3],
    );
    // A SEIPD claiming 4 GiB, or a huge partial piece, after a good SKESK.
    for seipd_header in [&[0xd2, 0xff, 0xff, 0xff, 0xff, 0xff][..], &[0xd2, 0xfe]] {
        let mut m = skesk.to_vec();
        m.extend_from_slice(seipd_header);
        m.extend_from_slice(&good[seipd_offset(&good) + 2..]);
        expect_err("huge seipd", &m);
    }
    // Inside the encryption: literal and compressed packets with absurd lengths.
    let inner: [&[u8]; 5] = [
        &[
            0xcb, 0xff, 0xff, 0xff, 0xff, 0xff, b'b', 0, 0, 0, 0, 0, 1, 2, 3,
        ],
        &[0xcb, 0xfe, b'b', 0, 0, 0, 0, 0, 1, 2, 3],
        &[0xc8, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xcb, 3, b'b', 0, 0],
        &[0xa3, 0x01, 0xff, 0xff, 0xff],
        &[0xa3, 0x00, 0xcb, 0xe0],
    ];
    for (i, packets) in inner.iter().enumerate() {
        let mut m = Vec::new();
        let mut w = enc.packet_writer(&mut m).unwrap();
        w.write_all(packets).unwrap();
        w.finish().unwrap();
        let e = expect_err(&format!("inner {i}"), &m);
        assert!(
            matches!(e, CryptoError::Tampered(_) | CryptoError::Malformed(_)),
            "inner {i}: {e:?}"
        );
    }
    // Data after the SEIPD.
    let mut m = good.clone();
    m.extend_from_slice(&good);
    let e = expect_err("two messages", &m);
    assert!(e.to_string().contains("after the encrypted packet"), "{e}");
    // Not OpenPGP at all, and empty.
    expect_err("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00");
    expect_err("empty", b"");
}

#[test]
fn one_s2k_per_run_both_ways() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let a = encrypt(&enc, b"first message", Compression::Deflate(6));
    let b = encrypt(&enc, b"second message", Compression::None);
    assert_eq!(decrypt_all(&dec, &a).unwrap(), b"first message");
    assert_eq!(decrypt_all(&dec, &b).unwrap(), b"second message");
    assert_eq!(enc.s2k_derivations(), 1);
    assert_eq!(dec.s2k_derivations(), 1);
    // Shared across threads by reference.
    std::thread::scope(|s| {
        for i in 0..2 {
            let (enc, dec) = (&enc, &dec);
            s.spawn(move || {
                let msg = format!("thread {i}");
                let c = encrypt(enc, msg.as_bytes(), Compression::Deflate(1));
                assert_eq!(decrypt_all(dec, &c).unwrap(), msg.as_bytes());
            });
        }
    });
    assert_eq!(dec.s2k_derivations(), 1);
}

#[test]
fn big_message_streams_through_small_buffer() {
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    let plain = mixed(64 << 20, 4 << 20);
    let cipher = encrypt(&enc, &plain, Compression::Deflate(1));
    let mut r = dec.reader(&cipher[..]).unwrap();
    let mut buf = [0u8; 8192];
    let mut pos = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n] == plain[pos..pos + n], "mismatch at {pos}");
        pos += n;
    }
    assert_eq!(pos, plain.len());
}

#[test]
fn sniffing() {
    assert!(!looks_like_openpgp(b""));
    assert!(!looks_like_openpgp(b"\x1f\x8b\x08\x00"));
    assert!(!looks_like_openpgp(b"Version 0\nHostname x\n"));
    assert!(!looks_like_openpgp(b"-----BEGIN PGP MESSAGE-----"));
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    assert!(looks_like_openpgp(
        &encrypt(&enc, b"", Compression::None)[..4]
    ));
    // gpg 2.2's first octets: SKESK v4, old-format header.
    assert!(looks_like_openpgp(b"\x8c\x0d\x04\x09"));
    assert!(looks_like_openpgp(b"\xc3\x2e\x04\x09"));
}

/// Peak memory for a 200 MiB message, encrypted to and decrypted from a file. Run alone with
/// `cargo test --lib engine::crypto::tests::memory_200mib -- --ignored --nocapture`.
#[test]
#[ignore]
fn memory_200mib() {
    fn peak_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    let chunk = mixed(4 << 20, 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.gpg");
    let before = peak_kib();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let mut w = enc
        .writer(io::BufWriter::new(file), Compression::Deflate(1))
        .unwrap();
    for _ in 0..50 {
        w.write_all(&chunk).unwrap();
    }
    w.finish().unwrap();
    let after_enc = peak_kib();
    let dec = Decryptor::new(Some(pass()));
    let mut r = dec.reader(std::fs::File::open(&path).unwrap()).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert_eq!(n, 200 << 20);
    let after_dec = peak_kib();
    println!(
        "peak RSS: start {before} KiB, after encrypting 200 MiB {after_enc} KiB, after decrypting {after_dec} KiB"
    );
    assert!(
        after_dec < before + 32 * 1024,
        "decryption memory grew too much"
    );
}

/// The backup engine's shape: raw packets from `PgpLiteralWriter` (stored deflate) through
/// `packet_writer`, 256 MiB of incompressible data. Run in release with
/// `cargo test --release --lib engine::crypto::tests::throughput_packets -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_packets() {
    use crate::engine::archive::deflate::PgpLiteralWriter;
    use std::time::Instant;
    let plain = mixed(256 << 20, 256 << 20);
    let mb = plain.len() as f64 / 1e6;
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let dec = Decryptor::new(Some(pass()));
    for round in 0..3 {
        let t = Instant::now();
        let mut cipher = Vec::with_capacity(plain.len() + (1 << 20));
        let mut w = PgpLiteralWriter::new(enc.packet_writer(&mut cipher).unwrap(), 0).unwrap();
        for chunk in plain.chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap().finish().unwrap();
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut r = dec.reader(&cipher[..]).unwrap();
        let mut buf = vec![0u8; 256 << 10];
        let mut n = 0;
        loop {
            let k = r.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        let d = t.elapsed().as_secs_f64();
        assert_eq!(n, plain.len());
        println!(
            "round {round}: packet_writer + stored deflate, 256 MiB: encrypt {:.0} MB/s; decrypt {:.0} MB/s",
            mb / e,
            mb / d
        );
    }
}

/// Peak RSS while decrypting 200 MiB messages with an indeterminate-length ZIP packet, made by gpg
/// (`--compress-algo zip`) and by us (`PgpLiteralWriter`), each read from a file: the fast path, and
/// sequoia's path for comparison. Run alone with
/// `cargo test --release --lib engine::crypto::tests::memory_indeterminate_zip -- --ignored --nocapture`.
#[test]
#[ignore]
fn memory_indeterminate_zip() {
    use crate::engine::archive::deflate::PgpLiteralWriter;
    fn status_kib(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    /// Resets VmHWM to the current RSS.
    fn reset_peak() {
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
    }
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let plain_path = dir.path().join("plain");
    let chunk = mixed(4 << 20, 1 << 20);
    let mut sha = Sha1::new();
    {
        let mut f = io::BufWriter::new(std::fs::File::create(&plain_path).unwrap());
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
            sha.update(&chunk);
        }
    }
    let want = sha.finalize();
    drop(chunk);
    let theirs = dir.path().join("gpg.gpg");
    let (ok, _, err) = gpg.run(
        &[
            "--symmetric",
            "--compress-algo",
            "zip",
            "--output",
            theirs.to_str().unwrap(),
            plain_path.to_str().unwrap(),
        ],
        PASS,
        b"",
    );
    assert!(ok, "{err}");
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    let ours = dir.path().join("ours.gpg");
    {
        let out = io::BufWriter::new(std::fs::File::create(&ours).unwrap());
        let mut w = PgpLiteralWriter::new(enc.packet_writer(out).unwrap(), 1).unwrap();
        let mut input = std::fs::File::open(&plain_path).unwrap();
        io::copy(&mut input, &mut w).unwrap();
        w.finish().unwrap().finish().unwrap();
    }
    let dec = Decryptor::new(Some(pass()));
    // Derive gpg's key once outside the timings.
    drop(dec.reader(std::fs::File::open(&theirs).unwrap()).unwrap());
    for (name, path) in [("gpg", &theirs), ("ours", &ours)] {
        for (fast, read_size) in [(true, 512), (true, 1 << 20), (false, 512), (false, 1 << 20)] {
            let file = std::fs::File::open(path).unwrap();
            reset_peak();
            let before = status_kib("VmRSS:");
            let t = std::time::Instant::now();
            let mut r = if fast {
                dec.reader(file).unwrap()
            } else {
                dec.sequoia_reader(file).unwrap()
            };
            let mut buf = vec![0u8; read_size];
            let mut sha = Sha1::new();
            let mut n = 0u64;
            loop {
                let k = r.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                sha.update(&buf[..k]);
                n += k as u64;
            }
            drop(r);
            let secs = t.elapsed().as_secs_f64();
            let peak = status_kib("VmHWM:");
            assert_eq!(n, 200 << 20);
            assert!(sha.finalize() == want, "{name}: different plaintext");
            println!(
                "{name} ({} MiB), {}, reads of {read_size} B: RSS before {before} KiB, peak {peak} KiB (+{} KiB), {:.2} s",
                std::fs::metadata(path).unwrap().len() >> 20,
                if fast { "fast path" } else { "sequoia" },
                peak - before,
                secs
            );
            if fast {
                assert!(
                    peak - before < 8 * 1024,
                    "{name}: the fast path grew by {} KiB",
                    peak - before
                );
            }
        }
    }
    assert_eq!(dec.paths(), (5, 0));
}

/// Throughput on 64 MiB of half random, half text data. Run with
/// `cargo test --lib engine::crypto::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let plain = mixed(64 << 20, 4 << 20);
    let mb = plain.len() as f64 / 1e6;
    let t = Instant::now();
    let enc = SymmetricEncryptor::new(&pass()).unwrap();
    println!("S2K derivation: {:.3} s", t.elapsed().as_secs_f64());
    let dec = Decryptor::new(Some(pass()));
    for c in [
        Compression::Deflate(1),
        Compression::Deflate(6),
        Compression::None,
    ] {
        let t = Instant::now();
        let cipher = encrypt(&enc, &plain, c);
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut r = dec.reader(&cipher[..]).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0;
        loop {
            let k = r.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        let d = t.elapsed().as_secs_f64();
        assert_eq!(n, plain.len());
        println!(
            "{c:?}: {:.1}% of input; encrypt {:.0} MB/s; decrypt {:.0} MB/s",
            100.0 * cipher.len() as f64 / plain.len() as f64,
            mb / e,
            mb / d
        );
    }
}

/// Found by fuzz/openpgp_message: an armored gpg message (SKESK, then a SEIPD cut after a few bytes)
/// made sequoia 2.4.2 panic in `PacketParser::decrypt_` once the passphrase passed the quick check.
#[test]
fn fuzz_truncated_armored_seipd_is_refused_before_sequoia() {
    const INPUT: &[u8] = b"-----BEGIN PGP MESSAGE-----\n\njA0ECQMCMrPnktpglbb/0sBNAV0cddhdmBQDEpYmuKt1Xe55jcOQ0*xBOn43cqqZvqSQyXh2ST2vbFuackO6p1FeV2Jjgdohwe\nwVVcE";
    let dec = Decryptor::new(Some(Passphrase::new("fuzz")));
    let err = dec.reader(INPUT).map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, CryptoError::Malformed(m) if m.contains("shorter than its random prefix")),
        "{err}"
    );
}
