//! The packets inside the encryption, which mutations of a whole message almost never reach intact:
//! the input is encrypted as the body of a SEIPD (our own `Encryptor::packet_writer`, passphrase
//! `fuzz`), then decrypted by `Decryptor::reader`: compressed packets (ZIP, ZLIB, BZip2, uncompressed),
//! one-pass signatures, the literal packet, signature packets and the MDC. The first input byte picks
//! whether the decryptor demands a signature by the key in `fuzz/keys/` (`--sign-key` at restore).
#![no_main]

use std::io::{self, Cursor, Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use duplicity_charm::engine::crypto::{Decryptor, Encryptor, Passphrase};
use duplicity_charm::engine::keys::{self, KeySetup, SignatureCheck};
use libfuzzer_sys::fuzz_target;

struct Keys {
    encryptor: Encryptor,
    plain: Decryptor,
    checking: Decryptor,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let pass = Passphrase::new("fuzz");
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/fuzz-secret.pgp");
        let certs = keys::load_certs(&key).expect("the fuzz secret key");
        let id = certs[0].fingerprint().to_hex();
        let checking = KeySetup {
            check: Some(SignatureCheck { id, certs }),
            ..KeySetup::default()
        };
        Keys {
            // Derives the passphrase key once (gpg's default count); the decryptors cache theirs.
            encryptor: Encryptor::symmetric(&pass).expect("encryptor"),
            plain: Decryptor::new(Some(pass.clone())),
            checking: Decryptor::with_keys(Some(pass), &checking),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, packets)) = data.split_first() else {
        return;
    };
    let k = keys();
    let mut message = Vec::with_capacity(packets.len() + 128);
    let mut w = k
        .encryptor
        .packet_writer(&mut message)
        .expect("packet writer");
    w.write_all(packets).expect("encrypting to memory");
    w.finish().expect("finishing the message");
    let d = if mode & 1 == 0 { &k.plain } else { &k.checking };
    let Ok(r) = d.reader(Cursor::new(&message[..])) else {
        return;
    };
    let _ = io::copy(&mut r.take(32 << 20), &mut io::sink());
});
