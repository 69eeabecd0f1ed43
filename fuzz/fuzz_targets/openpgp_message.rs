//! Whole OpenPGP messages as restore decrypts them (`Decryptor::reader`): packet headers, marker,
//! SKESK and PKESK packets, SEIPD (fast path) and everything the sequoia fallback takes (SED, AEAD,
//! armor, bzip2...), with the passphrase `fuzz` and the secret key in `fuzz/keys/` (cv25519, not
//! protected), as a restore with both `PASSPHRASE` and `--secret-keyring` would.
#![no_main]

use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::OnceLock;

use duplicity_charm::engine::crypto::{looks_like_openpgp, Decryptor, Passphrase};
use duplicity_charm::engine::keys::{self, KeySetup};
use libfuzzer_sys::fuzz_target;

fn decryptor() -> &'static Decryptor {
    static D: OnceLock<Decryptor> = OnceLock::new();
    D.get_or_init(|| {
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/fuzz-secret.pgp");
        let setup = KeySetup {
            secret_keys: keys::load_certs(&key).expect("the fuzz secret key"),
            ..KeySetup::default()
        };
        Decryptor::with_keys(Some(Passphrase::new("fuzz")), &setup)
    })
}

/// The iterated-and-salted S2K count an encoded count octet stands for (RFC 4880 3.7.1.3).
fn s2k_count(c: u8) -> u64 {
    (16 + u64::from(c & 15)) << ((c >> 4) + 6)
}

/// True if a top-level SKESK v4 asks for an iterated S2K above 64 Ki octets: legitimate (gpg's default is
/// 65011712), but a derivation of a tenth of a second would dominate the run; the seeds use 1024.
fn costly_s2k(mut data: &[u8]) -> bool {
    while let Some((&ctb, rest)) = data.split_first() {
        if ctb & 0x80 == 0 {
            return false;
        }
        let (tag, len, rest) = if ctb & 0x40 != 0 {
            match rest {
                [o @ 0..=191, r @ ..] => (ctb & 0x3f, usize::from(*o), r),
                [o @ 192..=223, o2, r @ ..] => (
                    ctb & 0x3f,
                    ((usize::from(*o) - 192) << 8) + usize::from(*o2) + 192,
                    r,
                ),
                [255, a, b, c, d, r @ ..] => {
                    (ctb & 0x3f, u32::from_be_bytes([*a, *b, *c, *d]) as usize, r)
                }
                _ => return false,
            }
        } else {
            let tag = (ctb >> 2) & 0x0f;
            match (ctb & 3, rest) {
                (0, [o, r @ ..]) => (tag, usize::from(*o), r),
                (1, [a, b, r @ ..]) => (tag, usize::from(u16::from_be_bytes([*a, *b])), r),
                (2, [a, b, c, d, r @ ..]) => {
                    (tag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, r)
                }
                _ => return false,
            }
        };
        let body = &rest[..len.min(rest.len())];
        // Version 4, any cipher, S2K type 3 (iterated and salted), hash, 8 octets of salt, count.
        if tag == 3
            && body.len() >= 13
            && body[0] == 4
            && body[2] == 3
            && s2k_count(body[12]) > 1 << 16
        {
            return true;
        }
        data = &rest[len.min(rest.len())..];
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_openpgp(data);
    if costly_s2k(data) {
        return;
    }
    let Ok(r) = decryptor().reader(Cursor::new(data)) else {
        return;
    };
    // Bounded: a decompression bomb is read only so far (restore streams it to a file the same way).
    let _ = io::copy(&mut r.take(32 << 20), &mut io::sink());
});
