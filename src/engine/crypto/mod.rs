//! OpenPGP encryption and decryption of volumes and metadata, in the packets gpg and duplicity use.
//!
//! Writing: one [`SymmetricEncryptor`] per run derives the passphrase key (S2K iterated+salted, SHA256,
//! 65011712 octets, one random salt per run) once. Every message gets its own random AES256 session key,
//! which is encrypted with that derived key into a SKESK v4 packet carrying the run's S2K (serialized by
//! sequoia), followed by a SEIPD v1 packet (with MDC) that we frame ourselves: partial body lengths, CFB
//! (sequoia's cipher, zero IV, no resync) over a random prefix, the caller's packets and the MDC packet,
//! whose SHA-1 comes from the `sha1` crate (SHA-NI). sequoia's own SEIPD writer hashes with SHA-1
//! collision detection, about six times slower, and needless for an MDC we compute ourselves. Inside
//! the SEIPD sits an optional ZIP (raw deflate) packet and a binary literal packet. That is plain
//! RFC 4880 and `gpg --decrypt` reads it.
//!
//! Reading: [`Decryptor`] has a fast streaming path for the shape gpg and we write (markers, SKESK v4s,
//! SEIPD v1, an optional compressed packet of any length form, a literal packet): it parses the packet
//! headers itself, decrypts CFB through sequoia's ECB block function, hashes with `sha1`, inflates with
//! flate2 and keeps every buffer bounded. sequoia's streaming decryptor buffers an indeterminate-length
//! compressed packet (gpg's default shape) whole, hundreds of MB for a large volume. Any other shape
//! (public-key encryption, signatures, SED, AEAD, bzip2...) goes to sequoia's streaming decryptor, fed the
//! bytes the fast path looked at followed by the rest of the input. Derived keys are cached by
//! (S2K, cipher) so our own messages (one salt per run) pay the S2K once per run; gpg's messages (a new
//! salt each) pay it each time, as with gpg itself.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sequoia_openpgp as openpgp;

use openpgp::crypto::symmetric::{self as sym, BlockCipherMode, PaddingMode};
use openpgp::crypto::{hash, KeyPair, Password, SessionKey, S2K};
use openpgp::packet::key;
use openpgp::packet::one_pass_sig::OnePassSig3;
use openpgp::packet::pkesk::PKESK3;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::skesk::SKESK4;
use openpgp::packet::{OnePassSig, Signature};
use openpgp::packet::{Packet, PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Serialize;
use openpgp::types::{HashAlgorithm, SignatureType, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle, KeyID};
use sha1::{Digest, Sha1};

/// The cipher we write (session key and SKESK key-encryption key alike).
const WRITE_CIPHER: SymmetricAlgorithm = SymmetricAlgorithm::AES256;
/// The S2K hash we write.
const WRITE_S2K_HASH: HashAlgorithm = HashAlgorithm::SHA256;
/// Octets hashed by the S2K we write: gpg's default count, the largest OpenPGP can encode.
const WRITE_S2K_COUNT: u32 = 65_011_712;
/// We write the SEIPD body in partial-length pieces of 2^20 bytes (one piece is buffered).
const SEIPD_PIECE_BITS: u8 = 20;
/// [`SymmetricEncryptor::writer`] frames the literal body in pieces of 2^16 bytes.
const LITERAL_PIECE_BITS: u8 = 16;
/// Largest slice handed to sequoia's CFB encryptor at once (its scratch buffer grows to the largest write).
const CFB_CHUNK: usize = 64 * 1024;
/// How much decrypted data sequoia holds back before releasing it (it verifies the MDC once the rest of the
/// message fits in this window). Peak memory per reader is about twice this, plus the parsers' buffers.
const DECRYPT_BUFFER: usize = 64 * 1024;
/// Buffer size of each stage of the fast reader (input, ciphertext, plaintext, inflated data).
const FAST_BUFFER: usize = 64 * 1024;
/// The fast reader first decides on the first this many bytes of a message whether it can read it.
const PROBE: usize = 64 * 1024;
/// Marker and SKESK packets are a few dozen bytes; longer ones are refused as damaged.
const MAX_SMALL_PACKET: u64 = 1024;
/// A PKESK holds one public-key ciphertext: about 1 KiB for RSA 8192; longer ones are refused.
const MAX_PKESK: u64 = 4096;
/// Signature packets inside a message are a few hundred bytes.
const MAX_SIGNATURE_PACKET: u64 = 16 * 1024;
/// The MDC packet at the end of a SEIPD's plaintext: 0xD3 0x14 and a SHA-1 digest.
const MDC_LEN: usize = 22;
/// Bound on the derived-key cache of a [`Decryptor`] (gpg's files use a new salt each).
const KEY_CACHE_MAX: usize = 256;

/// A secret passphrase. `Debug` and `Display` never show it. Held in sequoia's memory-encrypted
/// `Password`, which is zeroed on drop.
#[derive(Clone)]
pub struct Passphrase(Password);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(s: impl Into<String>) -> Self {
        Passphrase(Password::from(s.into()))
    }

    /// Reads a passphrase from the environment variable `var` (e.g. `PASSPHRASE`); `None` if it is unset.
    /// Non-UTF-8 values are used as the raw bytes, as gpg does.
    pub fn from_env(var: &str) -> Option<Self> {
        use std::os::unix::ffi::OsStringExt;
        std::env::var_os(var).map(|v| Passphrase(Password::from(v.into_vec())))
    }

    pub(crate) fn password(&self) -> &Password {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What went wrong while encrypting or decrypting. Messages name the problem and the fix; none ever
/// contains the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("wrong passphrase: set PASSPHRASE to the passphrase the backup was made with")]
    BadPassphrase,
    #[error(
        "the file is encrypted with a passphrase but none was given: set PASSPHRASE to the passphrase \
         the backup was made with"
    )]
    NoPassphrase,
    #[error(
        "integrity check failed ({0}): the file was modified or truncated after it was written; \
         restore it from another copy of the backup"
    )]
    Tampered(String),
    #[error(
        "not a valid OpenPGP message ({0}): the file is damaged or is not an encrypted backup file"
    )]
    Malformed(String),
    #[error("unsupported OpenPGP message: {0}")]
    Unsupported(String),
    #[error(
        "the file is encrypted to the public key(s) {0}, and no secret key for them was given: pass \
         --secret-keyring FILE holding one of their secret keys (with its passphrase in PASSPHRASE)"
    )]
    NoSecretKey(String),
    #[error("the secret key {0} is protected by a passphrase: set PASSPHRASE to its passphrase")]
    NoKeyPassphrase(String),
    #[error("wrong passphrase for the secret key {0}: set PASSPHRASE to its passphrase")]
    BadKeyPassphrase(String),
    #[error("key {key} was given but cannot be used: {reason}")]
    KeyUnusable { key: String, reason: String },
    /// The secret key source (gpg's keyring) could not give the keys a message is encrypted to.
    #[error("{0}")]
    KeySource(String),
    #[error("signature check failed: {0}")]
    Signature(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
    #[error("I/O error during encryption or decryption: {0}")]
    Io(#[from] io::Error),
}

pub mod elgamal;
mod read;
mod sequoia_fallback;
mod setup;
mod write;

pub use self::read::*;
pub(crate) use self::sequoia_fallback::read_policy;
use self::sequoia_fallback::*;
pub use self::setup::{KeySetup, SecretKeySource, SignatureCheck};
pub use self::write::*;

/// True for ElGamal keys, which sequoia's nettle backend lacks and [`elgamal`] implements.
#[allow(deprecated)] // ElGamal is deprecated for new keys; old keys carry it
pub(crate) fn is_elgamal(algo: openpgp::types::PublicKeyAlgorithm) -> bool {
    use openpgp::types::PublicKeyAlgorithm as A;
    matches!(algo, A::ElGamalEncrypt | A::ElGamalEncryptSign)
}

/// A key's algorithm and size as gpg lists them: "dsa1024", "elg2048", "rsa1024", "brainpoolP256r1".
pub(crate) fn key_algo_name<P: key::KeyParts, R: key::KeyRole>(
    k: &openpgp::packet::Key<P, R>,
) -> String {
    use openpgp::crypto::mpi::PublicKey as M;
    match k.mpis() {
        M::RSA { n, .. } => format!("rsa{}", n.bits()),
        M::DSA { p, .. } => format!("dsa{}", p.bits()),
        M::ElGamal { p, .. } => format!("elg{}", p.bits()),
        M::ECDH { curve, .. } | M::ECDSA { curve, .. } | M::EdDSA { curve, .. } => {
            curve.to_string()
        }
        _ => k.pk_algo().to_string(),
    }
}

/// Why this program cannot compute with the key's algorithm, if it cannot (sequoia's nettle backend
/// lacks it; ElGamal we do ourselves).
pub(crate) fn unsupported_algo<P: key::KeyParts, R: key::KeyRole>(
    k: &openpgp::packet::Key<P, R>,
) -> Option<String> {
    use openpgp::crypto::mpi::PublicKey as M;
    let algo = k.pk_algo();
    if is_elgamal(algo) {
        return None;
    }
    let curve_ok = match k.mpis() {
        M::ECDH { curve, .. } | M::ECDSA { curve, .. } | M::EdDSA { curve, .. } => {
            curve.is_supported()
        }
        _ => true,
    };
    (!algo.is_supported() || !curve_ok).then(|| {
        format!(
            "it is a {} key, an algorithm this program does not implement; decrypt or sign with gpg, \
             or use a key of another kind (rsa3072, ed25519/cv25519)",
            key_algo_name(k)
        )
    })
}

/// True if a secret key's secret part is not in the file: gpg writes a stub (S2K "gnu-dummy" or
/// "divert-to-card") for a key on a smartcard or left out by `--export-secret-subkeys`.
pub(crate) fn secret_is_stub(
    k: &openpgp::packet::Key<key::SecretParts, key::UnspecifiedRole>,
) -> bool {
    use openpgp::packet::key::SecretKeyMaterial;
    match k.secret() {
        SecretKeyMaterial::Encrypted(e) => {
            matches!(e.s2k(), S2K::Private { .. } | S2K::Unknown { .. })
        }
        SecretKeyMaterial::Unencrypted(_) => false,
    }
}

/// True if `bytes` (the start of a file) look like a binary OpenPGP message: a packet header whose tag
/// can start a message (PKESK, SKESK, one-pass signature, signature, compressed, SED, marker, literal,
/// SEIPD, AEAD), checked further for the session key packets.
pub fn looks_like_openpgp(bytes: &[u8]) -> bool {
    let Some(&ctb) = bytes.first() else {
        return false;
    };
    if ctb & 0x80 == 0 {
        return false;
    }
    let (tag, header_len) = if ctb & 0x40 != 0 {
        // New format: length octets follow.
        let len = match bytes.get(1) {
            Some(0..=191) => 1,
            Some(192..=223) => 2,
            Some(255) => 5,
            Some(_) => 1, // partial body length
            None => return matches!(ctb & 0x3f, 1..=4 | 8..=11 | 18 | 20),
        };
        (ctb & 0x3f, 1 + len)
    } else {
        let len = match ctb & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 0,
        };
        ((ctb >> 2) & 0x0f, 1 + len)
    };
    let version = bytes.get(header_len).copied();
    match tag {
        // PKESK v3/v6, SKESK v4/v5/v6, one-pass signature v3/v6, signature v3..v6.
        1 => version.is_none_or(|v| v == 3 || v == 6),
        3 => version.is_none_or(|v| (4..=6).contains(&v)),
        4 => version.is_none_or(|v| v == 3 || v == 6),
        2 => version.is_none_or(|v| (3..=6).contains(&v)),
        // SEIPD v1/v2.
        18 => version.is_none_or(|v| v == 1 || v == 2),
        8 | 9 | 10 | 11 | 20 => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
