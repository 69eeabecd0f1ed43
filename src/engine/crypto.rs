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

use super::keys::{KeySetup, SignatureCheck};

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
    #[error("signature check failed: {0}")]
    Signature(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
    #[error("I/O error during encryption or decryption: {0}")]
    Io(#[from] io::Error),
}

/// How the literal data is compressed inside the encrypted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// No compressed data packet at all.
    None,
    /// A ZIP (raw deflate, algorithm 1) compressed data packet at this zlib level (1..=9; 0 stores).
    Deflate(u32),
}

/// Encrypts many messages in one run with one passphrase; see the module documentation.
pub struct SymmetricEncryptor {
    s2k: S2K,
    /// The key derived from the passphrase by `s2k`; it encrypts each message's session key.
    kek: SessionKey,
    derivations: AtomicUsize,
}

impl fmt::Debug for SymmetricEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricEncryptor")
            .field("s2k", &self.s2k)
            .finish_non_exhaustive()
    }
}

impl SymmetricEncryptor {
    /// Derives the passphrase key once (this takes a fraction of a second) with a fresh random salt.
    pub fn new(passphrase: &Passphrase) -> Result<Self, CryptoError> {
        let s2k = S2K::new_iterated(WRITE_S2K_HASH, WRITE_S2K_COUNT).map_err(encrypt_err)?;
        let kek = s2k
            .derive_key(
                passphrase.password(),
                WRITE_CIPHER.key_size().map_err(encrypt_err)?,
            )
            .map_err(encrypt_err)?;
        Ok(SymmetricEncryptor {
            s2k,
            kek,
            derivations: AtomicUsize::new(1),
        })
    }

    /// How many S2K derivations this encryptor made (always 1; for tests and diagnostics).
    pub fn s2k_derivations(&self) -> usize {
        self.derivations.load(Ordering::Relaxed)
    }

    /// Starts one message written to `out`; bytes written to the returned writer are its literal data.
    /// [`EncryptWriter::finish`] must be called, or the message is incomplete.
    pub fn writer<'a, W: Write + Send + Sync + 'a>(
        &self,
        out: W,
        compression: Compression,
    ) -> Result<EncryptWriter<'a>, CryptoError> {
        check_level(compression)?;
        literal_writer(self.start(out)?, compression, None)
    }

    /// Starts one message whose encrypted body the caller fills with whole OpenPGP packets (e.g. a
    /// compressed packet it deflated itself, on several cores). [`EncryptWriter::finish`] must be called.
    pub fn packet_writer<'a, W: Write + Send + Sync + 'a>(
        &self,
        out: W,
    ) -> Result<EncryptWriter<'a>, CryptoError> {
        Ok(EncryptWriter {
            inner: Inner::Packets(self.start(out)?),
            signer: None,
        })
    }

    /// Writes the SKESK for this message and starts the SEIPD: what is written next is encrypted.
    fn start<'a, W: Write + Send + Sync + 'a>(
        &self,
        mut out: W,
    ) -> Result<SeipdWriter<'a>, CryptoError> {
        // A fresh session key for this message, encrypted under the run's derived key: ESK =
        // CFB(kek, IV 0)[cipher octet || session key] (RFC 4880 5.3).
        let key_size = WRITE_CIPHER.key_size().map_err(encrypt_err)?;
        let session_key = SessionKey::new(key_size).map_err(encrypt_err)?;
        let mut framed: SessionKey = vec![0u8; 1 + key_size].into();
        framed[0] = WRITE_CIPHER.into();
        framed[1..].copy_from_slice(&session_key);
        let mut esk = Vec::with_capacity(framed.len());
        let mut cfb = sym::Encryptor::new(
            WRITE_CIPHER,
            BlockCipherMode::CFB,
            PaddingMode::None,
            &self.kek,
            None,
            &mut esk,
        )
        .map_err(encrypt_err)?;
        cfb.write_all(&framed)?;
        cfb.finalize().map_err(encrypt_err)?;
        let skesk = SKESK4::new(WRITE_CIPHER, self.s2k.clone(), Some(esk.into_boxed_slice()))
            .map_err(encrypt_err)?;
        Packet::from(skesk)
            .serialize(&mut out)
            .map_err(encrypt_err)?;
        SeipdWriter::new(Box::new(out), WRITE_CIPHER, &session_key)
    }
}

/// Refuses a deflate level zlib does not have.
fn check_level(compression: Compression) -> Result<(), CryptoError> {
    if let Compression::Deflate(l) = compression {
        if l > 9 {
            return Err(CryptoError::Encrypt(format!(
                "deflate level {l} is out of range: use a level from 1 to 9 (0 stores without compressing), or Compression::None"
            )));
        }
    }
    Ok(())
}

/// A literal packet (new format, tag 11) with partial body lengths, optionally inside a ZIP compressed
/// packet and between a one-pass signature and its signature packet; its body starts with the format
/// 'b' (binary), no file name and no date.
fn literal_writer<'a>(
    mut seipd: SeipdWriter<'a>,
    compression: Compression,
    signer: Option<MessageSigner>,
) -> Result<EncryptWriter<'a>, CryptoError> {
    const LITERAL_TAG: [u8; 1] = [0xc0 | 11];
    const LITERAL_HEADER: &[u8] = b"b\0\0\0\0\0";
    let ops = signer.as_ref().map(|s| s.one_pass_packet()).transpose()?;
    let inner = match compression {
        Compression::None => {
            if let Some(ops) = &ops {
                seipd.write_all(ops)?;
            }
            seipd.write_all(&LITERAL_TAG)?;
            let mut literal = Partial::new(seipd, LITERAL_PIECE_BITS);
            literal.write_all(LITERAL_HEADER)?;
            Inner::Literal(literal)
        }
        Compression::Deflate(level) => {
            // Old-format compressed packet of indeterminate length, ZIP: what gpg writes.
            seipd.write_all(&[0xa3, 0x01])?;
            let mut deflate =
                flate2::write::DeflateEncoder::new(seipd, flate2::Compression::new(level));
            if let Some(ops) = &ops {
                deflate.write_all(ops)?;
            }
            deflate.write_all(&LITERAL_TAG)?;
            let mut literal = Partial::new(deflate, LITERAL_PIECE_BITS);
            literal.write_all(LITERAL_HEADER)?;
            Inner::Zip(literal)
        }
    };
    Ok(EncryptWriter { inner, signer })
}

/// A recipient of public-key encrypted messages: the encryption (sub)key chosen from its certificate
/// (see `keys::recipient`).
#[derive(Clone)]
pub struct Recipient {
    pub(crate) key: openpgp::packet::Key<key::PublicParts, key::UnspecifiedRole>,
    /// The PKESK carries the wildcard key id 0 (gpg's `--hidden-recipient`).
    pub hidden: bool,
    /// The certificate's fingerprint (hex), for messages.
    pub cert: String,
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("cert", &self.cert)
            .field("key", &self.key.fingerprint().to_hex())
            .field("hidden", &self.hidden)
            .finish()
    }
}

impl Recipient {
    /// The fingerprint (hex) of the (sub)key messages are encrypted to.
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint().to_hex()
    }
}

/// An unlocked signing (sub)key (see `keys::signing_key`). `Debug` shows only fingerprints.
pub struct SigningKey {
    pub(crate) keypair: KeyPair,
    pub(crate) fingerprint: Fingerprint,
    /// The certificate's fingerprint (hex), for messages.
    pub cert: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("cert", &self.cert)
            .field("key", &self.fingerprint.to_hex())
            .finish_non_exhaustive()
    }
}

/// The hash our signatures use (gpg 2.2's choice for RSA and EdDSA keys without preferences).
const SIGN_HASH: HashAlgorithm = HashAlgorithm::SHA256;

/// Signs one message as gpg does: a one-pass signature packet before the literal packet, the literal
/// body hashed as it streams, and the signature packet after the literal packet.
pub struct MessageSigner {
    key: Arc<SigningKey>,
    hash: hash::Context,
}

impl MessageSigner {
    pub fn new(key: Arc<SigningKey>) -> Result<Self, CryptoError> {
        let version = key.keypair.public().version();
        let hash = SIGN_HASH
            .context()
            .map_err(encrypt_err)?
            .for_signature(version);
        Ok(MessageSigner { key, hash })
    }

    /// The one-pass signature packet that goes before the literal packet.
    pub fn one_pass_packet(&self) -> Result<Vec<u8>, CryptoError> {
        let mut ops = OnePassSig3::new(SignatureType::Binary);
        ops.set_hash_algo(SIGN_HASH);
        ops.set_pk_algo(self.key.keypair.public().pk_algo());
        ops.set_issuer(KeyID::from(&self.key.fingerprint));
        ops.set_last(true);
        let mut out = Vec::new();
        Packet::from(ops).serialize(&mut out).map_err(encrypt_err)?;
        Ok(out)
    }

    /// Hashes literal body bytes (without the literal packet's format, name and date).
    pub fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
    }

    /// The signature packet that goes after the literal packet.
    pub fn signature_packet(self) -> Result<Vec<u8>, CryptoError> {
        let mut keypair = self.key.keypair.clone();
        let sig = SignatureBuilder::new(SignatureType::Binary)
            .sign_hash(&mut keypair, self.hash)
            .map_err(encrypt_err)?;
        let mut out = Vec::new();
        Packet::from(sig).serialize(&mut out).map_err(encrypt_err)?;
        Ok(out)
    }
}

/// How an [`Encryptor`] protects each message's session key.
enum Mode {
    Symmetric(SymmetricEncryptor),
    /// One PKESK v3 per recipient (duplicity: `--encrypt-key`; no passphrase then, as gpg `--encrypt`).
    PublicKey(Vec<Recipient>),
}

/// Encrypts the messages of one run, to a passphrase or to public keys, optionally signing each.
pub struct Encryptor {
    mode: Mode,
    signer: Option<Arc<SigningKey>>,
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Encryptor");
        match &self.mode {
            Mode::Symmetric(s) => d.field("symmetric", s),
            Mode::PublicKey(r) => d.field("recipients", r),
        };
        d.field("signer", &self.signer).finish()
    }
}

impl From<SymmetricEncryptor> for Encryptor {
    fn from(s: SymmetricEncryptor) -> Self {
        Encryptor {
            mode: Mode::Symmetric(s),
            signer: None,
        }
    }
}

impl Encryptor {
    /// Passphrase encryption (derives the passphrase key once).
    pub fn symmetric(passphrase: &Passphrase) -> Result<Self, CryptoError> {
        Ok(SymmetricEncryptor::new(passphrase)?.into())
    }

    /// Public-key encryption to every recipient.
    pub fn public_key(recipients: Vec<Recipient>) -> Result<Self, CryptoError> {
        if recipients.is_empty() {
            return Err(CryptoError::Encrypt(
                "no recipient: give at least one --encrypt-key".into(),
            ));
        }
        Ok(Encryptor {
            mode: Mode::PublicKey(recipients),
            signer: None,
        })
    }

    /// Signs every message with `signer`.
    pub fn with_signer(mut self, signer: Option<Arc<SigningKey>>) -> Self {
        self.signer = signer;
        self
    }

    /// A signer for one message, if this encryptor signs.
    pub fn message_signer(&self) -> Result<Option<MessageSigner>, CryptoError> {
        self.signer.clone().map(MessageSigner::new).transpose()
    }

    /// As [`SymmetricEncryptor::writer`], signed if this encryptor signs.
    pub fn writer<'a, W: Write + Send + Sync + 'a>(
        &self,
        out: W,
        compression: Compression,
    ) -> Result<EncryptWriter<'a>, CryptoError> {
        check_level(compression)?;
        literal_writer(self.start(out)?, compression, self.message_signer()?)
    }

    /// As [`SymmetricEncryptor::packet_writer`]: the caller writes whole packets (and signs them itself,
    /// with [`Encryptor::message_signer`]).
    pub fn packet_writer<'a, W: Write + Send + Sync + 'a>(
        &self,
        out: W,
    ) -> Result<EncryptWriter<'a>, CryptoError> {
        Ok(EncryptWriter {
            inner: Inner::Packets(self.start(out)?),
            signer: None,
        })
    }

    fn start<'a, W: Write + Send + Sync + 'a>(
        &self,
        mut out: W,
    ) -> Result<SeipdWriter<'a>, CryptoError> {
        match &self.mode {
            Mode::Symmetric(s) => s.start(out),
            Mode::PublicKey(recipients) => {
                // A fresh session key per message, encrypted to every recipient (RFC 4880 5.1).
                let key_size = WRITE_CIPHER.key_size().map_err(encrypt_err)?;
                let session_key = SessionKey::new(key_size).map_err(encrypt_err)?;
                for r in recipients {
                    let mut pkesk = PKESK3::for_recipient(WRITE_CIPHER, &session_key, &r.key)
                        .map_err(|e| {
                            CryptoError::Encrypt(format!(
                                "cannot encrypt to key {}: {e:#}",
                                r.key_fingerprint()
                            ))
                        })?;
                    if r.hidden {
                        pkesk.set_recipient(None);
                    }
                    Packet::from(pkesk)
                        .serialize(&mut out)
                        .map_err(encrypt_err)?;
                }
                SeipdWriter::new(Box::new(out), WRITE_CIPHER, &session_key)
            }
        }
    }
}

/// Where an encrypted message goes, its type erased.
type Sink<'a> = Box<dyn Write + Send + Sync + 'a>;

/// The body of a new-format packet with partial body lengths: full pieces of 2^bits bytes, then the last
/// piece with a definite length. One piece is buffered, because only the last may be short.
struct Partial<W: Write> {
    inner: W,
    buf: Vec<u8>,
    bits: u8,
}

impl<W: Write> Partial<W> {
    fn new(inner: W, bits: u8) -> Self {
        Partial {
            inner,
            buf: Vec::new(),
            bits,
        }
    }

    /// Writes the last piece and returns the writer below.
    fn finish(mut self) -> io::Result<W> {
        let len = self.buf.len();
        // New-format definite lengths (RFC 4880 4.2.2.1-3); a piece is at most 2^30 bytes.
        if len < 192 {
            self.inner.write_all(&[len as u8])?;
        } else if len < 8384 {
            let l = len - 192;
            self.inner.write_all(&[(l >> 8) as u8 + 192, l as u8])?;
        } else {
            self.inner.write_all(&[0xff])?;
            self.inner.write_all(&(len as u32).to_be_bytes())?;
        }
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Partial<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let piece = 1usize << self.bits;
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == piece {
                // More data follows, so the buffered piece is not the last one.
                self.inner.write_all(&[0xe0 | self.bits])?;
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
            if self.buf.is_empty() && rest.len() > piece {
                // A whole piece with more after it: straight through, without copying.
                self.inner.write_all(&[0xe0 | self.bits])?;
                self.inner.write_all(&rest[..piece])?;
                rest = &rest[piece..];
                continue;
            }
            let take = (piece - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The plaintext side of a SEIPD v1 packet being written (RFC 4880 5.13): the packet header and version
/// octet are out; what is written here is hashed for the MDC and CFB-encrypted into the partial-length body.
struct SeipdWriter<'a> {
    cfb: sym::Encryptor<Partial<Sink<'a>>>,
    mdc: Sha1,
}

impl<'a> SeipdWriter<'a> {
    fn new(
        mut out: Sink<'a>,
        algo: SymmetricAlgorithm,
        key: &SessionKey,
    ) -> Result<Self, CryptoError> {
        // New-format packet header, tag 18; the body starts with version 1 (not encrypted).
        out.write_all(&[0xc0 | 18])?;
        let mut body = Partial::new(out, SEIPD_PIECE_BITS);
        body.write_all(&[1])?;
        let cfb = sym::Encryptor::new(
            algo,
            BlockCipherMode::CFB,
            PaddingMode::None,
            key,
            None,
            body,
        )
        .map_err(encrypt_err)?;
        let mut w = SeipdWriter {
            cfb,
            mdc: Sha1::new(),
        };
        // A block of random octets, its last two repeated (the quick check).
        let bs = algo.block_size().map_err(encrypt_err)?;
        let mut prefix = [0u8; 18];
        openpgp::crypto::random(&mut prefix[..bs]).map_err(encrypt_err)?;
        prefix[bs] = prefix[bs - 2];
        prefix[bs + 1] = prefix[bs - 1];
        w.write_all(&prefix[..bs + 2])?;
        Ok(w)
    }

    /// Writes the MDC packet, ends the SEIPD packet and flushes the output.
    fn finish(mut self) -> io::Result<Sink<'a>> {
        const MDC_HEADER: [u8; 2] = [0xd3, 0x14];
        self.mdc.update(MDC_HEADER);
        let digest = self.mdc.finalize();
        self.cfb.write_all(&MDC_HEADER)?;
        self.cfb.write_all(&digest)?;
        let body = self.cfb.finalize().map_err(anyhow_to_io)?;
        let mut out = body.finish()?;
        out.flush()?;
        Ok(out)
    }
}

impl Write for SeipdWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for chunk in data.chunks(CFB_CHUNK) {
            self.mdc.update(chunk);
            self.cfb.write_all(chunk)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.cfb.flush()
    }
}

fn anyhow_to_io(e: anyhow::Error) -> io::Error {
    match e.downcast::<io::Error>() {
        Ok(e) => e,
        Err(e) => io::Error::other(e),
    }
}

/// The layers of one message being written.
enum Inner<'a> {
    /// The caller writes whole packets.
    Packets(SeipdWriter<'a>),
    /// Literal data, uncompressed.
    Literal(Partial<SeipdWriter<'a>>),
    /// Literal data in a ZIP compressed packet.
    Zip(Partial<flate2::write::DeflateEncoder<SeipdWriter<'a>>>),
}

/// The plaintext side of one message being encrypted. Call [`EncryptWriter::finish`] at the end.
pub struct EncryptWriter<'a> {
    inner: Inner<'a>,
    /// Hashes the literal data (only for `Literal` and `Zip`).
    signer: Option<MessageSigner>,
}

impl Write for EncryptWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Packets(w) => w.write(buf),
            Inner::Literal(w) => w.write(buf),
            Inner::Zip(w) => w.write(buf),
        }?;
        if let Some(s) = &mut self.signer {
            s.update(&buf[..n]);
        }
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(s) = &mut self.signer {
            s.update(buf);
        }
        match &mut self.inner {
            Inner::Packets(w) => w.write_all(buf),
            Inner::Literal(w) => w.write_all(buf),
            Inner::Zip(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Packets(w) => w.flush(),
            Inner::Literal(w) => w.flush(),
            Inner::Zip(w) => w.flush(),
        }
    }
}

impl EncryptWriter<'_> {
    /// Ends the literal and compressed packets, writes the MDC, and flushes the output writer.
    pub fn finish(self) -> Result<(), CryptoError> {
        let sig = self.signer.map(|s| s.signature_packet()).transpose()?;
        let sig = sig.as_deref().unwrap_or_default();
        match self.inner {
            Inner::Packets(w) => w.finish(),
            Inner::Literal(w) => {
                let mut seipd = w.finish()?;
                seipd.write_all(sig)?;
                seipd.finish()
            }
            Inner::Zip(w) => {
                let mut deflate = w.finish()?;
                deflate.write_all(sig)?;
                deflate.finish()?.finish()
            }
        }?;
        Ok(())
    }
}

fn encrypt_err(e: anyhow::Error) -> CryptoError {
    CryptoError::Encrypt(format!("{e:#}"))
}

/// A secret (sub)key that may decrypt session keys.
struct SecretKey {
    key: openpgp::packet::Key<key::SecretParts, key::UnspecifiedRole>,
    /// Its fingerprint (hex), for messages.
    label: String,
}

/// Derived keys shared by all readers of one [`Decryptor`].
struct DecryptState {
    passphrase: Option<Passphrase>,
    /// The secret (sub)keys of `--secret-keyring`.
    secret_keys: Vec<SecretKey>,
    /// Secret keys unlocked so far, by fingerprint (hex): unlocking runs the key's S2K once per run.
    unlocked: Mutex<HashMap<String, KeyPair>>,
    /// Signatures every message must carry (`--sign-key` at restore).
    check: Option<Arc<SignatureCheck>>,
    keys: Mutex<HashMap<(S2K, SymmetricAlgorithm), SessionKey>>,
    derivations: AtomicUsize,
    /// Messages opened by the fast path, and by sequoia (for tests and diagnostics).
    fast_reads: AtomicUsize,
    sequoia_reads: AtomicUsize,
}

impl DecryptState {
    /// The secret keys that may have made `pkesk`: the one it names, or every key of its algorithm when
    /// it names none (a hidden recipient).
    fn candidates<'s>(&'s self, pkesk: &PKESK) -> impl Iterator<Item = &'s SecretKey> + 's {
        let recipient = pkesk.recipient();
        let algo = match pkesk {
            PKESK::V3(p) => Some(p.pk_algo()),
            _ => None,
        };
        self.secret_keys.iter().filter(move |k| match &recipient {
            Some(h) => k.key.key_handle().aliases(h),
            None => algo.is_none_or(|a| a == k.key.pk_algo()),
        })
    }

    /// `k` unlocked (with the passphrase if its secret is protected), cached for the run.
    fn keypair(&self, k: &SecretKey) -> Result<KeyPair, CryptoError> {
        let fpr = k.key.fingerprint().to_hex();
        if let Some(kp) = self
            .unlocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fpr)
        {
            return Ok(kp.clone());
        }
        let key = if k.key.has_unencrypted_secret() {
            k.key.clone()
        } else {
            let p = self
                .passphrase
                .as_ref()
                .ok_or_else(|| CryptoError::NoKeyPassphrase(k.label.clone()))?;
            k.key
                .clone()
                .decrypt_secret(p.password())
                .map_err(|_| CryptoError::BadKeyPassphrase(k.label.clone()))?
        };
        let kp = key
            .into_keypair()
            .map_err(|e| CryptoError::Unsupported(format!("secret key {}: {e}", k.label)))?;
        self.unlocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fpr, kp.clone());
        Ok(kp)
    }

    /// The session key from the first PKESK a secret key opens and `accept` takes (the SEIPD's quick
    /// check). `Ok(None)` when there are no PKESKs; an error when there are but none opened.
    fn pkesk_session_key(
        &self,
        pkesks: &[PKESK],
        mut accept: impl FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> Result<bool, CryptoError>,
    ) -> Result<Option<(Option<SymmetricAlgorithm>, SessionKey)>, CryptoError> {
        if pkesks.is_empty() {
            return Ok(None);
        }
        let mut last_error = None;
        for pkesk in pkesks {
            for k in self.candidates(pkesk) {
                let mut kp = match self.keypair(k) {
                    Ok(kp) => kp,
                    Err(e) => {
                        last_error = Some(e);
                        continue;
                    }
                };
                if let Some((algo, sk)) = pkesk.decrypt(&mut kp, None) {
                    if accept(algo, &sk)? {
                        return Ok(Some((algo, sk)));
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            let ids: Vec<String> = pkesks
                .iter()
                .map(|p| match p.recipient() {
                    Some(h) => h.to_hex(),
                    None => "(hidden recipient)".into(),
                })
                .collect();
            CryptoError::NoSecretKey(ids.join(", "))
        }))
    }

    /// The key `s2k` derives from the passphrase for `algo`, from the cache if we derived it before.
    fn derived_key(
        &self,
        passphrase: &Passphrase,
        s2k: &S2K,
        algo: SymmetricAlgorithm,
    ) -> Result<SessionKey, CryptoError> {
        let slot = (s2k.clone(), algo);
        if let Some(k) = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&slot)
        {
            return Ok(k.clone());
        }
        let size = algo.key_size().map_err(|e| {
            CryptoError::Unsupported(format!("cipher {algo} for the passphrase key: {e}"))
        })?;
        let key = s2k.derive_key(passphrase.password(), size).map_err(|e| {
            CryptoError::Unsupported(format!("passphrase key derivation {s2k:?}: {e}"))
        })?;
        self.derivations.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        keys.insert(slot, key.clone());
        Ok(key)
    }
}

/// Decrypts messages made by us or by gpg with a passphrase; see the module documentation.
#[derive(Clone)]
pub struct Decryptor {
    state: Arc<DecryptState>,
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("has_passphrase", &self.state.passphrase.is_some())
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for one run. Without a passphrase every encrypted message fails with
    /// [`CryptoError::NoPassphrase`].
    pub fn new(passphrase: Option<Passphrase>) -> Self {
        Self::with_keys(passphrase, &KeySetup::default())
    }

    /// A decryptor that also opens messages encrypted to the secret keys of `keys` (unlocked with
    /// `passphrase` when protected) and, if `keys.check` is set, demands a good signature by that key on
    /// every message: a message without one fails at its end, like an MDC mismatch.
    pub fn with_keys(passphrase: Option<Passphrase>, keys: &KeySetup) -> Self {
        let secret_keys = keys
            .secret_keys
            .iter()
            .flat_map(|c| {
                let label = c.fingerprint().to_hex();
                c.keys()
                    .secret()
                    .map(move |k| SecretKey {
                        key: k.key().clone().role_into_unspecified(),
                        label: if k.key().fingerprint().to_hex() == label {
                            label.clone()
                        } else {
                            format!("{} (of {label})", k.key().fingerprint().to_hex())
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Decryptor {
            state: Arc::new(DecryptState {
                passphrase,
                secret_keys,
                unlocked: Mutex::new(HashMap::new()),
                check: keys.check.clone().map(Arc::new),
                keys: Mutex::new(HashMap::new()),
                derivations: AtomicUsize::new(0),
                fast_reads: AtomicUsize::new(0),
                sequoia_reads: AtomicUsize::new(0),
            }),
        }
    }

    /// How many S2K derivations this decryptor has made so far (the rest came from its cache).
    pub fn s2k_derivations(&self) -> usize {
        self.state.derivations.load(Ordering::Relaxed)
    }

    /// How many messages the fast path read, and how many went to sequoia.
    #[cfg(test)]
    fn paths(&self) -> (usize, usize) {
        (
            self.state.fast_reads.load(Ordering::Relaxed),
            self.state.sequoia_reads.load(Ordering::Relaxed),
        )
    }

    /// Streams the literal data of one message read from `input`.
    ///
    /// Memory stays flat: every stage holds a bounded buffer. Data is therefore released before the MDC
    /// is checked; an integrity failure (bad MDC, truncation, corrupt compressed data) comes as an
    /// `io::Error` from `read` whose inner error is a [`CryptoError`] (downcast it), and callers must
    /// treat everything read from such a message as bad.
    pub fn reader<'a, R: Read + Send + Sync + 'a>(
        &self,
        mut input: R,
    ) -> Result<Box<dyn Read + Send + Sync + 'a>, CryptoError> {
        // Decide on the first bytes, in memory, whether the fast path can read the message; they are
        // then read again, followed by the rest of the input, by whichever path takes it.
        let mut head = Vec::with_capacity(PROBE);
        (&mut input).take(PROBE as u64).read_to_end(&mut head)?;
        let complete = head.len() < PROBE;
        let chosen = match open_fast(
            Box::new(Cursor::new(&head[..])),
            &Keys::Search(&self.state),
            None,
        ) {
            Ok((probe, chosen)) => {
                drop(probe);
                Some(chosen)
            }
            Err(OpenError::Fallback) => None,
            // The fast path needed more than the first bytes (a strange message): sequoia streams it.
            Err(OpenError::Truncated(_)) if !complete => None,
            Err(OpenError::Truncated(what)) => return Err(truncated_message(&what)),
            Err(OpenError::Failed(e)) => return Err(e),
        };
        let input = Cursor::new(head).chain(input);
        let Some((algo, key)) = chosen else {
            self.state.sequoia_reads.fetch_add(1, Ordering::Relaxed);
            return self.sequoia_reader(input);
        };
        self.state.fast_reads.fetch_add(1, Ordering::Relaxed);
        match open_fast(
            Box::new(input),
            &Keys::Known(algo, key),
            self.state.check.clone(),
        ) {
            Ok((reader, _)) => Ok(Box::new(reader)),
            Err(OpenError::Failed(e)) => Err(e),
            Err(OpenError::Truncated(what)) => Err(truncated_message(&what)),
            Err(OpenError::Fallback) => Err(CryptoError::Malformed(
                "the start of the message read differently the second time".into(),
            )),
        }
    }

    /// The message through sequoia's streaming decryptor, for shapes the fast path does not read.
    fn sequoia_reader<'a, R: Read + Send + Sync + 'a>(
        &self,
        input: R,
    ) -> Result<Box<dyn Read + Send + Sync + 'a>, CryptoError> {
        let helper = Helper {
            state: Arc::clone(&self.state),
        };
        // sequoia 2.4.2 panics on some damaged input (a SEIPD v1 body shorter than its prefix plus an
        // MDC: an unwrap in parse.rs); turn that into an error instead of taking the process down.
        let built = panic::catch_unwind(AssertUnwindSafe(move || {
            DecryptorBuilder::from_reader(input)?
                .buffer_size(DECRYPT_BUFFER)
                .with_policy(decrypt_policy(), None, helper)
        }));
        let inner = match built {
            Ok(result) => result.map_err(|e| classify(e, false))?,
            Err(_) => return Err(parser_panic()),
        };
        Ok(Box::new(PlainReader { inner: Some(inner) }))
    }
}

fn truncated_message(what: &str) -> CryptoError {
    CryptoError::Malformed(format!(
        "the message is truncated: the file ends while reading {what}"
    ))
}

// ---------------------------------------------------------------------------------------------------
// The fast reader: markers, SKESK v4s, SEIPD v1, [compressed packet], literal packet.

/// A packet body length as a packet header gives it.
#[derive(Clone, Copy, Debug)]
enum BodyLen {
    Definite(u64),
    /// A partial body length: this many bytes, then another length.
    Partial(u64),
    /// Old format, indeterminate: the body runs to the end of what contains the packet.
    Indeterminate,
}

struct Header {
    tag: u8,
    len: BodyLen,
    /// The header's octets.
    raw: Vec<u8>,
}

fn read_u8<R: Read + ?Sized>(r: &mut R) -> io::Result<u8> {
    let mut b = [0u8];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// A new-format body length (RFC 4880 4.2.2), its octets appended to `raw`.
fn read_new_len<R: Read + ?Sized>(r: &mut R, raw: &mut Vec<u8>) -> io::Result<BodyLen> {
    let o = read_u8(r)?;
    raw.push(o);
    Ok(match o {
        0..=191 => BodyLen::Definite(o.into()),
        192..=223 => {
            let o2 = read_u8(r)?;
            raw.push(o2);
            BodyLen::Definite(((u64::from(o) - 192) << 8) + u64::from(o2) + 192)
        }
        224..=254 => BodyLen::Partial(1 << (o & 0x1f)),
        255 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            raw.extend_from_slice(&b);
            BodyLen::Definite(u32::from_be_bytes(b).into())
        }
    })
}

/// Reads a packet header (old or new format): `None` at the end of the input, an `InvalidData` error
/// (the octet left unread) if the next octet cannot start a packet.
fn read_header<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Option<Header>> {
    let Some(&ctb) = r.fill_buf()?.first() else {
        return Ok(None);
    };
    if ctb & 0x80 == 0 {
        // Left unread.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("octet {ctb:#04x} does not start an OpenPGP packet"),
        ));
    }
    r.consume(1);
    let mut raw = vec![ctb];
    if ctb & 0x40 != 0 {
        let len = read_new_len(r, &mut raw)?;
        return Ok(Some(Header {
            tag: ctb & 0x3f,
            len,
            raw,
        }));
    }
    let octets = match ctb & 0x03 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 0,
    };
    let len = if octets == 0 {
        BodyLen::Indeterminate
    } else {
        let mut b = [0u8; 4];
        r.read_exact(&mut b[4 - octets..])?;
        raw.extend_from_slice(&b[4 - octets..]);
        BodyLen::Definite(u32::from_be_bytes(b).into())
    };
    Ok(Some(Header {
        tag: (ctb >> 2) & 0x0f,
        len,
        raw,
    }))
}

/// One packet's body read from the stream below, whatever its length form.
struct PacketBody<B> {
    inner: B,
    /// Bytes left in the current piece.
    left: u64,
    /// The current piece has a partial length: another length follows it.
    more: bool,
    /// Indeterminate length: the body is the rest of `inner`.
    to_end: bool,
}

impl<B: BufRead> PacketBody<B> {
    fn new(inner: B, len: BodyLen) -> Self {
        let (left, more, to_end) = match len {
            BodyLen::Definite(n) => (n, false, false),
            BodyLen::Partial(n) => (n, true, false),
            BodyLen::Indeterminate => (0, false, true),
        };
        PacketBody {
            inner,
            left,
            more,
            to_end,
        }
    }
}

impl<B: BufRead> BufRead for PacketBody<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.to_end {
            return self.inner.fill_buf();
        }
        while self.left == 0 {
            if !self.more {
                return Ok(&[]);
            }
            let mut raw = Vec::new();
            match read_new_len(&mut self.inner, &mut raw)? {
                BodyLen::Partial(n) => self.left = n,
                BodyLen::Definite(n) => {
                    self.left = n;
                    self.more = false;
                }
                // read_new_len never returns it.
                BodyLen::Indeterminate => self.more = false,
            }
        }
        let avail = self.inner.fill_buf()?.len();
        if avail == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a packet ends before its length says",
            ));
        }
        let n = usize::try_from(self.left).map_or(avail, |left| left.min(avail));
        Ok(&self.inner.fill_buf()?[..n])
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        if !self.to_end {
            self.left -= n as u64;
        }
    }
}

/// `Read` for a `BufRead` that implements only `fill_buf` and `consume`.
fn read_buffered<B: BufRead + ?Sized>(b: &mut B, buf: &mut [u8]) -> io::Result<usize> {
    let data = b.fill_buf()?;
    let n = data.len().min(buf.len());
    buf[..n].copy_from_slice(&data[..n]);
    b.consume(n);
    Ok(n)
}

impl<B: BufRead> Read for PacketBody<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

/// A stage of the fast reader below the literal packet.
trait Layer: BufRead + Send + Sync {
    /// Reads this stage to its end, checking it (the MDC, the end of the compressed data); returns how
    /// many bytes of unexpected data it held.
    fn finish(&mut self) -> io::Result<u64>;
}

impl<L: Layer + ?Sized> Layer for Box<L> {
    fn finish(&mut self) -> io::Result<u64> {
        (**self).finish()
    }
}

impl<B: Layer> Layer for PacketBody<B> {
    fn finish(&mut self) -> io::Result<u64> {
        let extra = drain(self)?;
        Ok(extra + self.inner.finish()?)
    }
}

/// Reads `b` to its end; returns how many bytes that was.
fn drain<B: BufRead + ?Sized>(b: &mut B) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let k = b.fill_buf()?.len();
        if k == 0 {
            return Ok(n);
        }
        b.consume(k);
        n += k as u64;
    }
}

fn tampered(what: impl Into<String>) -> io::Error {
    io::Error::other(CryptoError::Tampered(what.into()))
}

/// Where sequoia's ECB encryptor writes the CFB key stream.
#[derive(Clone, Default)]
struct KeyStream(Arc<Mutex<Vec<u8>>>);

impl Write for KeyStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Raw<'a> = BufReader<Box<dyn Read + Send + Sync + 'a>>;

/// The plaintext of a SEIPD v1 packet (RFC 4880 5.13), streamed: CFB with a zero IV, decrypted as
/// P[i] = C[i] ^ E(C[i-1]) with the block cipher run over the ciphertext (ECB, which can pipeline), the
/// prefix dropped, everything hashed with SHA-1 and the last 22 bytes held back for the MDC check.
struct Seipd<'a> {
    body: PacketBody<Raw<'a>>,
    ecb: sym::Encryptor<KeyStream>,
    keystream: KeyStream,
    bs: usize,
    /// The previous ciphertext block (C[-1] = the zero IV), then ciphertext not yet decrypted.
    ct: Vec<u8>,
    /// Decrypted data: [pos..ready] is released, [ready..] held back (the possible MDC packet).
    plain: Vec<u8>,
    pos: usize,
    ready: usize,
    /// Prefix bytes still to drop.
    skip: usize,
    mdc: Sha1,
    eof: bool,
    verified: bool,
}

impl<'a> Seipd<'a> {
    /// `first`: ciphertext already read from the start of `body` (at least the prefix).
    fn new(
        body: PacketBody<Raw<'a>>,
        algo: SymmetricAlgorithm,
        key: &SessionKey,
        first: &[u8],
    ) -> Result<Self, CryptoError> {
        let unsupported =
            |e: anyhow::Error| CryptoError::Unsupported(format!("cipher {algo}: {e}"));
        let bs = algo.block_size().map_err(unsupported)?;
        let keystream = KeyStream::default();
        let ecb = sym::Encryptor::new(
            algo,
            BlockCipherMode::ECB,
            PaddingMode::None,
            key,
            None,
            keystream.clone(),
        )
        .map_err(unsupported)?;
        let mut ct = Vec::with_capacity(FAST_BUFFER + 3 * bs);
        ct.resize(bs, 0);
        ct.extend_from_slice(first);
        Ok(Seipd {
            body,
            ecb,
            keystream,
            bs,
            ct,
            plain: Vec::with_capacity(FAST_BUFFER + 3 * bs + MDC_LEN),
            pos: 0,
            ready: 0,
            skip: bs + 2,
            mdc: Sha1::new(),
            eof: false,
            verified: false,
        })
    }

    /// Decrypts the next `n` ciphertext bytes (whole blocks, or the short last block).
    fn decrypt(&mut self, n: usize) -> io::Result<()> {
        let bs = self.bs;
        let blocks = n.div_ceil(bs) * bs;
        self.ecb.write_all(&self.ct[..blocks])?;
        let mut ks = self.keystream.0.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.plain.len();
        self.plain.extend_from_slice(&self.ct[bs..bs + n]);
        for (p, k) in self.plain[start..].iter_mut().zip(ks.iter()) {
            *p ^= *k;
        }
        ks.clear();
        drop(ks);
        self.ct.drain(..n);
        Ok(())
    }

    /// Hashes and releases the plaintext up to `upto`, dropping the prefix.
    fn release(&mut self, upto: usize) {
        if upto > self.ready {
            self.mdc.update(&self.plain[self.ready..upto]);
            self.ready = upto;
        }
        let skip = self.skip.min(self.ready - self.pos);
        self.pos += skip;
        self.skip -= skip;
    }

    /// At the end of the packet: checks and removes the MDC packet.
    fn verify(&mut self) -> io::Result<()> {
        let n = self.plain.len();
        if n < MDC_LEN {
            return Err(tampered(
                "the encrypted data ends before its integrity check (MDC): the file is truncated",
            ));
        }
        let body_end = n - MDC_LEN;
        self.release(body_end);
        if self.skip > 0 {
            return Err(tampered(
                "the encrypted data is shorter than its random prefix and MDC: the file is truncated",
            ));
        }
        let tail = &self.plain[body_end..];
        if tail[..2] != [0xd3, 0x14] {
            return Err(tampered(
                "the encrypted data does not end with an MDC packet (truncated or modified)",
            ));
        }
        self.mdc.update(&tail[..2]);
        let digest = std::mem::take(&mut self.mdc).finalize();
        if digest[..] != tail[2..] {
            return Err(tampered(
                "the MDC (SHA-1 of the decrypted data) does not match",
            ));
        }
        self.plain.truncate(body_end);
        self.verified = true;
        Ok(())
    }
}

impl BufRead for Seipd<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.ready && !self.verified {
            // Keep only the held-back bytes.
            self.plain.drain(..self.ready);
            self.pos = 0;
            self.ready = 0;
            if !self.eof {
                let chunk = self.body.fill_buf()?;
                if chunk.is_empty() {
                    self.eof = true;
                } else {
                    let n = chunk.len().min(FAST_BUFFER);
                    self.ct.extend_from_slice(&chunk[..n]);
                    self.body.consume(n);
                }
            }
            let whole = (self.ct.len() - self.bs) / self.bs * self.bs;
            if whole > 0 {
                self.decrypt(whole)?;
            }
            if self.eof {
                let rest = self.ct.len() - self.bs;
                if rest > 0 {
                    self.decrypt(rest)?;
                }
                self.verify()?;
            } else {
                self.release(self.plain.len().saturating_sub(MDC_LEN));
            }
        }
        Ok(&self.plain[self.pos..self.ready])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.ready);
    }
}

impl Read for Seipd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl Layer for Seipd<'_> {
    fn finish(&mut self) -> io::Result<u64> {
        // Reading to the end checks the MDC.
        let extra = drain(self)?;
        if !self.body.inner.fill_buf()?.is_empty() {
            return Err(io::Error::other(CryptoError::Malformed(
                "unexpected data after the encrypted packet (the file has extra bytes at its end)"
                    .into(),
            )));
        }
        Ok(extra)
    }
}

/// The contents of a ZIP (raw deflate) or ZLIB compressed packet.
struct Inflate<L> {
    inner: L,
    z: flate2::Decompress,
    out: Vec<u8>,
    pos: usize,
    end: bool,
}

impl<L: BufRead> Inflate<L> {
    fn new(inner: L, zlib: bool) -> Self {
        Inflate {
            inner,
            z: flate2::Decompress::new(zlib),
            out: Vec::with_capacity(FAST_BUFFER),
            pos: 0,
            end: false,
        }
    }
}

impl<L: BufRead> BufRead for Inflate<L> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.out.len() && !self.end {
            self.out.clear();
            self.pos = 0;
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let before = self.z.total_in();
            let status = self
                .z
                .decompress_vec(input, &mut self.out, flate2::FlushDecompress::None)
                .map_err(|e| tampered(format!("the compressed data is corrupt ({e})")))?;
            let used = (self.z.total_in() - before) as usize;
            self.inner.consume(used);
            if status == flate2::Status::StreamEnd {
                self.end = true;
            } else if self.out.is_empty() && used == 0 {
                return Err(if eof {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the compressed data ends before its deflate stream does",
                    )
                } else {
                    tampered("the compressed data is corrupt (the decompressor makes no progress)")
                });
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.out.len());
    }
}

impl<L: BufRead> Read for Inflate<L> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl<L: Layer> Layer for Inflate<L> {
    fn finish(&mut self) -> io::Result<u64> {
        let extra = drain(self)?;
        Ok(extra + self.inner.finish()?)
    }
}

/// The literal data of a message opened by the fast path.
struct FastReader<'a> {
    literal: PacketBody<Box<dyn Layer + 'a>>,
    state: FastState,
    /// Signature checks (`--sign-key` at restore), if asked for.
    sigs: Option<Sigs>,
    /// How many signature packets follow the literal packet (one per one-pass signature).
    signatures: usize,
}

enum FastState {
    Reading,
    Done,
    Failed(String),
}

impl FastReader<'_> {
    /// After the literal data: checks that nothing else follows and that the MDC matches.
    fn end(&mut self) -> io::Result<()> {
        // The literal body is read; the signature packets follow it.
        drain(&mut self.literal)?;
        match self.sigs.take() {
            Some(sigs) => sigs.finish(&mut self.literal.inner)?,
            // Not asked to check: the signature packets are skipped.
            None => {
                for _ in 0..self.signatures {
                    read_signature_packet(&mut self.literal.inner)?;
                }
            }
        }
        let extra = self.literal.finish()?;
        if extra > 0 {
            return Err(io::Error::other(CryptoError::Malformed(format!(
                "{extra} bytes of unexpected data follow the literal data inside the encryption"
            ))));
        }
        self.state = FastState::Done;
        Ok(())
    }
}

impl Read for FastReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            FastState::Reading => {}
            FastState::Done => return Ok(0),
            FastState::Failed(what) => {
                return Err(io::Error::other(CryptoError::Tampered(format!(
                    "an earlier read failed: {what}"
                ))))
            }
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let result = match self.literal.read(buf) {
            Ok(0) => self.end().map(|()| 0),
            Ok(n) => {
                if let Some(s) = &mut self.sigs {
                    s.update(&buf[..n]);
                }
                Ok(n)
            }
            other => other,
        };
        result.map_err(|e| {
            let e = match take_crypto(e) {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    CryptoError::Tampered(format!("the message is truncated ({e})"))
                }
                Err(e) => CryptoError::Io(e),
            };
            self.state = FastState::Failed(e.to_string());
            io::Error::other(e)
        })
    }
}

/// The [`CryptoError`] inside `e`, or `e` itself.
fn take_crypto(e: io::Error) -> Result<CryptoError, io::Error> {
    if !e.get_ref().is_some_and(|r| r.is::<CryptoError>()) {
        return Err(e);
    }
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => inner
            .downcast::<CryptoError>()
            .map(|c| *c)
            .map_err(|inner| io::Error::new(kind, inner)),
        None => Err(io::Error::from(kind)),
    }
}

/// Why the fast path did not open a message.
enum OpenError {
    /// Not a shape the fast path reads: sequoia will.
    Fallback,
    /// The input ended inside this part of the message.
    Truncated(String),
    Failed(CryptoError),
}

impl OpenError {
    /// An error while reading `what`.
    fn io(e: io::Error, what: &str) -> OpenError {
        match take_crypto(e) {
            Ok(c) => OpenError::Failed(c),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                OpenError::Truncated(what.to_owned())
            }
            Err(e) => OpenError::Failed(CryptoError::Io(e)),
        }
    }
}

/// Where the session key comes from.
enum Keys<'s> {
    /// From the SKESKs and the passphrase (derived keys cached in the state).
    Search(&'s DecryptState),
    /// Found before, for this same message.
    Known(SymmetricAlgorithm, SessionKey),
}

/// The ciphers the fast path decrypts (all that sequoia's nettle backend has).
#[allow(deprecated)] // the old ciphers are deprecated for writing, which we never do
fn fast_cipher(algo: SymmetricAlgorithm) -> bool {
    use SymmetricAlgorithm as S;
    matches!(
        algo,
        S::AES128
            | S::AES192
            | S::AES256
            | S::CAST5
            | S::TripleDES
            | S::Blowfish
            | S::Twofish
            | S::Camellia128
            | S::Camellia192
            | S::Camellia256
    )
}

/// Opens a message for the fast path, up to the start of its literal data; also returns the session key.
fn open_fast<'a>(
    src: Box<dyn Read + Send + Sync + 'a>,
    keys: &Keys<'_>,
    check: Option<Arc<SignatureCheck>>,
) -> Result<(FastReader<'a>, (SymmetricAlgorithm, SessionKey)), OpenError> {
    let mut raw = BufReader::with_capacity(FAST_BUFFER, src);
    let mut skesks = Vec::new();
    let mut pkesks = Vec::new();
    let mut first_packet = true;
    let seipd_len = loop {
        let header = match read_header(&mut raw) {
            Ok(Some(h)) => h,
            Ok(None) if first_packet => {
                return Err(OpenError::Failed(CryptoError::Malformed(
                    "the file is empty".into(),
                )))
            }
            Err(e) if first_packet && e.kind() == io::ErrorKind::InvalidData => {
                // ASCII armor ("-----BEGIN PGP MESSAGE-----"): sequoia reads it.
                if raw
                    .buffer()
                    .first()
                    .is_none_or(|b| *b != b'-' && !b.is_ascii_whitespace())
                {
                    return Err(OpenError::Failed(CryptoError::Malformed(format!(
                        "the file does not start with an OpenPGP packet: {e}"
                    ))));
                }
                return Err(OpenError::Fallback);
            }
            // Not OpenPGP, or no encrypted packet: sequoia says what is wrong.
            Ok(None) => return Err(OpenError::Fallback),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(OpenError::Fallback),
            Err(e) => return Err(OpenError::io(e, "a packet header")),
        };
        first_packet = false;
        match header.tag {
            1 | 3 | 10 => {
                let (what, max) = match header.tag {
                    1 => ("a public-key session key packet (PKESK)", MAX_PKESK),
                    3 => ("a session key packet (SKESK)", MAX_SMALL_PACKET),
                    _ => ("a marker packet", MAX_SMALL_PACKET),
                };
                let BodyLen::Definite(len) = header.len else {
                    return Err(OpenError::Fallback);
                };
                if len > max {
                    return Err(OpenError::Failed(CryptoError::Malformed(format!(
                        "{what} claims to be {len} bytes long, where such packets take a few dozen"
                    ))));
                }
                let mut packet = header.raw;
                let start = packet.len();
                packet.resize(start + len as usize, 0);
                raw.read_exact(&mut packet[start..])
                    .map_err(|e| OpenError::io(e, what))?;
                match header.tag {
                    3 => match Packet::from_bytes(&packet) {
                        Ok(Packet::SKESK(SKESK::V4(s))) => skesks.push(s),
                        _ => return Err(OpenError::Fallback),
                    },
                    1 => match Packet::from_bytes(&packet) {
                        Ok(Packet::PKESK(p @ PKESK::V3(_))) => pkesks.push(p),
                        _ => return Err(OpenError::Fallback),
                    },
                    _ => {}
                }
            }
            18 => break header.len,
            _ => return Err(OpenError::Fallback),
        }
    };
    if skesks.is_empty() && pkesks.is_empty() {
        return Err(OpenError::Fallback);
    }
    let mut body = PacketBody::new(raw, seipd_len);
    let what = "the encrypted packet (SEIPD)";
    let version = read_u8(&mut body).map_err(|e| OpenError::io(e, what))?;
    if version != 1 {
        return Err(OpenError::Fallback);
    }
    // Enough ciphertext for the largest prefix (a 16-byte block and the two quick-check bytes).
    let mut first = Vec::with_capacity(18);
    (&mut body)
        .take(18)
        .read_to_end(&mut first)
        .map_err(|e| OpenError::io(e, what))?;
    let (algo, key) = match keys {
        Keys::Known(algo, key) => (*algo, key.clone()),
        Keys::Search(state) => find_session_key(state, &skesks, &pkesks, &first)?,
    };
    let seipd = Seipd::new(body, algo, &key, &first).map_err(OpenError::Failed)?;
    let (container, literal, ops) = open_inner(seipd)?;
    let signatures = ops.len();
    let sigs = match check {
        None => None,
        Some(check) if ops.is_empty() => {
            return Err(OpenError::Failed(CryptoError::Signature(format!(
                "the file is not signed, but --sign-key {} demands its signature",
                check.id
            ))))
        }
        Some(check) => Some(Sigs::new(check, ops).map_err(OpenError::Failed)?),
    };
    let mut literal = PacketBody::new(container, literal.len);
    // Format, file name length, file name, date.
    let what = "the literal data packet";
    let mut meta = [0u8; 2 + 255 + 4];
    literal
        .read_exact(&mut meta[..2])
        .map_err(|e| OpenError::io(e, what))?;
    let name_len = usize::from(meta[1]);
    literal
        .read_exact(&mut meta[2..2 + name_len + 4])
        .map_err(|e| OpenError::io(e, what))?;
    Ok((
        FastReader {
            literal,
            state: FastState::Reading,
            sigs,
            signatures,
        },
        (algo, key),
    ))
}

/// The next packet header inside the encryption.
fn inner_header<R: BufRead + ?Sized>(r: &mut R) -> Result<Header, OpenError> {
    match read_header(r) {
        Ok(Some(h)) => Ok(h),
        // No packet, or not a packet: sequoia says what is wrong.
        Ok(None) => Err(OpenError::Fallback),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(OpenError::Fallback),
        Err(e) => Err(OpenError::io(e, "a packet inside the encrypted data")),
    }
}

/// The stream holding the literal packet, its header, and the one-pass signatures before it.
type Opened<'a> = (Box<dyn Layer + 'a>, Header, Vec<OnePassSig>);

/// Inside the SEIPD: an optional compressed packet, then one-pass signature packets and the literal
/// packet's header. Returns the stream holding the literal packet, its header and the one-pass
/// signatures.
fn open_inner<'a>(mut seipd: Seipd<'a>) -> Result<Opened<'a>, OpenError> {
    let header = inner_header(&mut seipd)?;
    let (mut container, mut header): (Box<dyn Layer + 'a>, Header) = match header.tag {
        8 => {
            let seipd: Box<dyn Layer + 'a> = Box::new(seipd);
            let mut body = PacketBody::new(seipd, header.len);
            let algo =
                read_u8(&mut body).map_err(|e| OpenError::io(e, "the compressed data packet"))?;
            let mut container: Box<dyn Layer + 'a> = match algo {
                0 => Box::new(body),
                1 => Box::new(Inflate::new(body, false)),
                2 => Box::new(Inflate::new(body, true)),
                // BZip2 and others: sequoia.
                _ => return Err(OpenError::Fallback),
            };
            let header = inner_header(&mut container)?;
            (container, header)
        }
        _ => (Box::new(seipd), header),
    };
    // gpg --sign: one-pass signatures, the literal packet, then the signatures.
    let mut ops = Vec::new();
    while header.tag == 4 {
        let what = "a one-pass signature packet";
        let BodyLen::Definite(len) = header.len else {
            return Err(OpenError::Fallback);
        };
        if len > MAX_SMALL_PACKET {
            return Err(OpenError::Failed(CryptoError::Malformed(format!(
                "{what} claims to be {len} bytes long"
            ))));
        }
        let mut packet = header.raw;
        let start = packet.len();
        packet.resize(start + len as usize, 0);
        container
            .read_exact(&mut packet[start..])
            .map_err(|e| OpenError::io(e, what))?;
        match Packet::from_bytes(&packet) {
            Ok(Packet::OnePassSig(o)) => ops.push(o),
            _ => return Err(OpenError::Fallback),
        }
        header = inner_header(&mut container)?;
    }
    if header.tag != 11 {
        return Err(OpenError::Fallback);
    }
    Ok((container, header, ops))
}

/// The signature checks of a message opened by the fast path: a hash of the literal data per one-pass
/// signature, checked against the signature packets after the literal packet.
struct Sigs {
    check: Arc<SignatureCheck>,
    ops: Vec<OnePassSig>,
    hashes: Vec<hash::Context>,
}

impl Sigs {
    fn new(check: Arc<SignatureCheck>, ops: Vec<OnePassSig>) -> Result<Self, CryptoError> {
        let hashes = ops
            .iter()
            .map(|o| {
                let version = if matches!(o, OnePassSig::V6(_)) { 6 } else { 4 };
                o.hash_algo()
                    .context()
                    .map(|c| c.for_signature(version))
                    .map_err(|e| {
                        CryptoError::Unsupported(format!("signature hash {}: {e}", o.hash_algo()))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sigs { check, ops, hashes })
    }

    fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashes {
            h.update(data);
        }
    }

    /// Reads the signature packets from `r` (right after the literal packet) and checks them.
    fn finish<R: BufRead + ?Sized>(self, r: &mut R) -> io::Result<()> {
        let mut sigs = Vec::new();
        for _ in 0..self.ops.len() {
            sigs.push(read_signature_packet(r)?);
        }
        let mut findings = Vec::new();
        for sig in &sigs {
            let Some(i) = self
                .ops
                .iter()
                .position(|o| o.hash_algo() == sig.hash_algo())
            else {
                findings.push(Finding::Bad(
                    "its hash does not match its one-pass packet".into(),
                ));
                continue;
            };
            findings.push(check_signature(&self.check, sig, self.hashes[i].clone()));
        }
        judge(&self.check, findings).map_err(io::Error::other)
    }
}

/// Reads one signature packet (after the literal packet).
fn read_signature_packet<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Signature> {
    let missing = || {
        io::Error::other(CryptoError::Signature(
            "the signature packet after the data is missing or damaged (the file was cut or altered)"
                .into(),
        ))
    };
    let header = match read_header(r) {
        Ok(Some(h)) if h.tag == 2 => h,
        Ok(_) => return Err(missing()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(missing()),
        Err(e) => return Err(e),
    };
    let BodyLen::Definite(len) = header.len else {
        return Err(missing());
    };
    if len > MAX_SIGNATURE_PACKET {
        return Err(missing());
    }
    let mut packet = header.raw;
    let start = packet.len();
    packet.resize(start + len as usize, 0);
    r.read_exact(&mut packet[start..])?;
    match Packet::from_bytes(&packet) {
        Ok(Packet::Signature(s)) => Ok(s),
        _ => Err(missing()),
    }
}

/// What one signature turned out to be.
enum Finding {
    /// Good, by the (sub)key with this fingerprint of the certificate with this fingerprint.
    Good {
        key: String,
        cert: String,
    },
    /// Made by a key we do not have.
    Unknown(String),
    Bad(String),
}

/// Checks one signature over the data hashed into `hash`, with the certificates of `check`: the issuer
/// must be a signing-capable key of a certificate valid when the signature was made.
fn check_signature(check: &SignatureCheck, sig: &Signature, hash: hash::Context) -> Finding {
    let issuers = sig.get_issuers();
    let when = sig.signature_creation_time();
    for cert in &check.certs {
        for ka in cert.keys() {
            if !issuers.iter().any(|h| ka.key().key_handle().aliases(h)) {
                continue;
            }
            let key = ka.key().fingerprint().to_hex();
            if sig.verify_hash(ka.key(), hash.clone()).is_err() {
                return Finding::Bad(format!(
                    "the signature by key {key} does not match the data: the file was modified after it was signed"
                ));
            }
            let valid = cert
                .with_policy(decrypt_policy(), when)
                .ok()
                .is_some_and(|vc| {
                    vc.keys()
                        .key_handle(ka.key().key_handle())
                        .for_signing()
                        .alive()
                        .revoked(false)
                        .next()
                        .is_some()
                });
            if !valid {
                return Finding::Bad(format!(
                    "the signature by key {key} was made when that key was not valid for signing (expired, revoked or not a signing key)"
                ));
            }
            return Finding::Good {
                key,
                cert: cert.fingerprint().to_hex(),
            };
        }
    }
    Finding::Unknown(
        issuers
            .first()
            .map(|h| h.to_hex())
            .unwrap_or_else(|| "(no issuer)".into()),
    )
}

/// Accepts the message if one signature is good and made by the key `check.id` names (its fingerprint,
/// or its certificate's, ends with the id: duplicity's test), else says why not.
fn judge(check: &SignatureCheck, findings: Vec<Finding>) -> Result<(), CryptoError> {
    let mut why = Vec::new();
    for f in findings {
        match f {
            Finding::Good { key, cert } => {
                if key.ends_with(&check.id) || cert.ends_with(&check.id) {
                    return Ok(());
                }
                why.push(format!("it is signed by key {key}, not by {}", check.id));
            }
            Finding::Unknown(id) => why.push(format!(
                "it is signed by key {id}, whose public key is in neither --keyring nor --secret-keyring (and it is not {})",
                check.id
            )),
            Finding::Bad(w) => why.push(w),
        }
    }
    if why.is_empty() {
        why.push(format!(
            "the file is not signed, but --sign-key {} demands its signature",
            check.id
        ));
    }
    Err(CryptoError::Signature(why.join("; ")))
}

/// The session key from the first SKESK whose key passes the SEIPD's quick check on `first` (its first
/// ciphertext bytes).
fn find_session_key(
    state: &DecryptState,
    skesks: &[SKESK4],
    pkesks: &[PKESK],
    first: &[u8],
) -> Result<(SymmetricAlgorithm, SessionKey), OpenError> {
    // Public-key session keys first (gpg --encrypt), then passphrases.
    let mut pk_error = None;
    if !pkesks.is_empty() {
        let mut unsupported = false;
        let mut short = false;
        let found = state.pkesk_session_key(pkesks, |algo, key| {
            let Some(algo) = algo.filter(|a| fast_cipher(*a)) else {
                unsupported = true;
                return Ok(false);
            };
            match quick_check(algo, key, first)? {
                Some(ok) => Ok(ok),
                None => {
                    short = true;
                    Ok(false)
                }
            }
        });
        match found {
            Ok(Some((Some(algo), key))) => return Ok((algo, key)),
            _ if short => {
                return Err(OpenError::Truncated(
                    "the encrypted packet's random prefix".into(),
                ))
            }
            _ if unsupported => return Err(OpenError::Fallback),
            Ok(_) => {}
            Err(e) => pk_error = Some(e),
        }
    }
    let Some(passphrase) = state.passphrase.as_ref().filter(|_| !skesks.is_empty()) else {
        return Err(OpenError::Failed(
            pk_error.unwrap_or(CryptoError::NoPassphrase),
        ));
    };
    let mut unsupported = false;
    for skesk in skesks {
        let esk_algo = skesk.symmetric_algo();
        let Ok(esk) = skesk.esk() else {
            unsupported = true;
            continue;
        };
        if !fast_cipher(esk_algo) {
            unsupported = true;
            continue;
        }
        let Ok(kek) = state.derived_key(passphrase, skesk.s2k(), esk_algo) else {
            unsupported = true;
            continue;
        };
        let (algo, key) = match esk {
            // gpg's symmetric-only messages: the derived key is the session key.
            None => (esk_algo, kek),
            Some(esk) => {
                let framed = cfb_decrypt(esk_algo, &kek, esk).map_err(OpenError::Failed)?;
                if framed.len() < 2 {
                    continue;
                }
                let algo = SymmetricAlgorithm::from(framed[0]);
                if algo.key_size().ok() != Some(framed.len() - 1) {
                    // A wrong passphrase gives a random cipher octet.
                    continue;
                }
                if !fast_cipher(algo) {
                    unsupported = true;
                    continue;
                }
                (algo, SessionKey::from(&framed[1..]))
            }
        };
        match quick_check(algo, &key, first).map_err(OpenError::Failed)? {
            None => {
                return Err(OpenError::Truncated(
                    "the encrypted packet's random prefix".into(),
                ))
            }
            Some(true) => return Ok((algo, key)),
            Some(false) => {}
        }
    }
    Err(if unsupported {
        OpenError::Fallback
    } else {
        OpenError::Failed(pk_error.unwrap_or(CryptoError::BadPassphrase))
    })
}

/// The SEIPD's quick check of a session key on `first` (its first ciphertext bytes): the random
/// prefix's last two octets are repeated, so a mismatch means a wrong key. `None` if `first` is too
/// short to tell.
fn quick_check(
    algo: SymmetricAlgorithm,
    key: &SessionKey,
    first: &[u8],
) -> Result<Option<bool>, CryptoError> {
    let bs = algo
        .block_size()
        .map_err(|e| CryptoError::Unsupported(format!("cipher {algo}: {e}")))?;
    if first.len() < bs + 2 {
        return Ok(None);
    }
    let prefix = cfb_decrypt(algo, key, &first[..bs + 2])?;
    Ok(Some(prefix[bs - 2..bs] == prefix[bs..bs + 2]))
}

/// sequoia's standard policy, relaxed for reading only: old ciphers that gpg 1.x and others used
/// (CAST5 was gpg 1.x's default, 3DES, IDEA) are accepted so old archives restore. We never write them.
#[allow(deprecated)] // the old ciphers are deprecated for writing, which we never do
fn decrypt_policy() -> &'static StandardPolicy<'static> {
    static POLICY: OnceLock<StandardPolicy<'static>> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut p = StandardPolicy::new();
        for algo in [
            SymmetricAlgorithm::CAST5,
            SymmetricAlgorithm::TripleDES,
            SymmetricAlgorithm::IDEA,
            SymmetricAlgorithm::Blowfish,
        ] {
            p.accept_symmetric_algo(algo);
        }
        p
    })
}

struct Helper {
    state: Arc<DecryptState>,
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .state
            .check
            .as_ref()
            .map(|c| c.certs.clone())
            .unwrap_or_default())
    }

    /// With `--sign-key` at restore, one good signature by that key is required.
    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let Some(check) = &self.state.check else {
            return Ok(());
        };
        let mut findings = Vec::new();
        for layer in structure {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    findings.push(match r {
                        Ok(good) => Finding::Good {
                            key: good.ka.key().fingerprint().to_hex(),
                            cert: good.ka.cert().fingerprint().to_hex(),
                        },
                        Err(VerificationError::MissingKey { sig }) => Finding::Unknown(
                            sig.get_issuers()
                                .first()
                                .map(|h| h.to_hex())
                                .unwrap_or_else(|| "(no issuer)".into()),
                        ),
                        Err(e) => Finding::Bad(e.to_string()),
                    });
                }
            }
        }
        Ok(judge(check, findings)?)
    }
}

impl DecryptionHelper for Helper {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        _sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        if skesks.is_empty() && pkesks.is_empty() {
            return Err(CryptoError::Malformed(
                "no session key packet before the encrypted data".into(),
            )
            .into());
        }
        let mut pk_error = None;
        match self
            .state
            .pkesk_session_key(pkesks, |algo, sk| Ok(decrypt(algo, sk)))
        {
            Ok(Some(_)) => return Ok(None),
            Ok(None) => {}
            Err(e) => pk_error = Some(e),
        }
        let Some(passphrase) = self
            .state
            .passphrase
            .as_ref()
            .filter(|_| !skesks.is_empty())
        else {
            return Err(pk_error.unwrap_or(CryptoError::NoPassphrase).into());
        };
        let mut last_error = None;
        for skesk in skesks {
            let result = match skesk {
                SKESK::V4(s) => self.try_skesk4(passphrase, s, decrypt),
                // SKESK v6 (RFC 9580, gpg 2.5+); not cached, it is rare here.
                other => Ok(other
                    .decrypt(passphrase.password())
                    .map(|(algo, sk)| decrypt(algo, &sk))
                    .unwrap_or(false)),
            };
            match result {
                Ok(true) => return Ok(None),
                Ok(false) => {}
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(CryptoError::BadPassphrase).into())
    }
}

impl Helper {
    /// Tries one SKESK v4: true if its session key opened the encrypted packet.
    fn try_skesk4(
        &self,
        passphrase: &Passphrase,
        skesk: &SKESK4,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> Result<bool, CryptoError> {
        let esk_algo = skesk.symmetric_algo();
        let esk = skesk
            .esk()
            .map_err(|e| CryptoError::Unsupported(format!("passphrase key derivation: {e}")))?;
        let kek = self.state.derived_key(passphrase, skesk.s2k(), esk_algo)?;
        match esk {
            // gpg's symmetric-only messages: the derived key is the session key.
            None => Ok(decrypt(Some(esk_algo), &kek)),
            Some(esk) => {
                let framed = cfb_decrypt(esk_algo, &kek, esk)?;
                if framed.len() < 2 {
                    return Ok(false);
                }
                let algo = SymmetricAlgorithm::from(framed[0]);
                if algo.key_size().ok() != Some(framed.len() - 1) {
                    // A wrong passphrase gives a random cipher octet.
                    return Ok(false);
                }
                let sk: SessionKey = framed[1..].into();
                Ok(decrypt(Some(algo), &sk))
            }
        }
    }
}

/// Plain CFB decryption with a zero IV (the ESK of a SKESK v4), built from sequoia's public CFB encryptor:
/// the key stream block i is E(C[i-1]) with C[-1] = 0, which is the CFB encryption of a zero block under
/// IV C[i-1].
fn cfb_decrypt(
    algo: SymmetricAlgorithm,
    key: &SessionKey,
    ciphertext: &[u8],
) -> Result<SessionKey, CryptoError> {
    let bs = algo
        .block_size()
        .map_err(|e| CryptoError::Unsupported(format!("cipher {algo}: {e}")))?;
    let mut plain: SessionKey = vec![0u8; ciphertext.len()].into();
    let zeros = vec![0u8; bs];
    let mut iv = vec![0u8; bs];
    let mut keystream: SessionKey = vec![0u8; bs].into();
    for (i, block) in ciphertext.chunks(bs).enumerate() {
        let mut ks = Vec::with_capacity(bs);
        let mut enc = openpgp::crypto::symmetric::Encryptor::new(
            algo,
            BlockCipherMode::CFB,
            PaddingMode::None,
            key,
            Some(&iv),
            &mut ks,
        )
        .map_err(|e| CryptoError::Unsupported(format!("cipher {algo}: {e}")))?;
        enc.write_all(&zeros)?;
        enc.finalize()
            .map_err(|e| CryptoError::Unsupported(format!("cipher {algo}: {e}")))?;
        keystream.copy_from_slice(&ks);
        ks.iter_mut().for_each(|b| *b = 0);
        for (j, c) in block.iter().enumerate() {
            plain[i * bs + j] = c ^ keystream[j];
        }
        if block.len() == bs {
            iv.copy_from_slice(block);
        }
    }
    Ok(plain)
}

/// Maps an error out of sequoia to a [`CryptoError`]. `reading` is true once literal data flows: then a
/// premature end means truncation, an integrity failure.
fn classify(e: anyhow::Error, reading: bool) -> CryptoError {
    let e = match e.downcast::<CryptoError>() {
        Ok(c) => return c,
        Err(e) => e,
    };
    let text = format!("{e:#}");
    for cause in e.chain() {
        if let Some(pe) = cause.downcast_ref::<openpgp::Error>() {
            use openpgp::Error as E;
            return match pe {
                E::ManipulatedMessage => CryptoError::Tampered(
                    "MDC mismatch or packets changed inside the encryption".into(),
                ),
                E::UnsupportedSymmetricAlgorithm(_)
                | E::UnsupportedAEADAlgorithm(_)
                | E::UnsupportedCompressionAlgorithm(_)
                | E::UnsupportedHashAlgorithm(_)
                | E::UnsupportedPacketType(_)
                | E::UnsupportedPublicKeyAlgorithm(_) => CryptoError::Unsupported(text),
                E::PolicyViolation(what, _) if what.contains("Symmetrically Encrypted Data") => {
                    CryptoError::Unsupported(
                        "the file uses the old encrypted packet without integrity protection (SED, made \
                         by gpg 1.x without --force-mdc), which sequoia cannot decrypt: decrypt it with \
                         `gpg --decrypt --ignore-mdc-error` and use the plaintext"
                            .into(),
                    )
                }
                // A garbage packet tag (damage, truncation) also shows up as a policy rejection.
                E::PolicyViolation(what, _)
                    if what.contains("Reserved") || what.contains("Unknown") =>
                {
                    CryptoError::Malformed(text)
                }
                E::PolicyViolation(..) => CryptoError::Unsupported(text),
                _ if reading => CryptoError::Tampered(text),
                _ => CryptoError::Malformed(text),
            };
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::UnexpectedEof {
                return if reading {
                    CryptoError::Tampered(format!("the message is truncated: {text}"))
                } else {
                    CryptoError::Malformed(format!("the message is truncated: {text}"))
                };
            }
        }
    }
    match e.downcast::<io::Error>() {
        Ok(io) => CryptoError::Io(io),
        Err(_) if text.contains("olicy") => CryptoError::Unsupported(text),
        Err(_) if reading => CryptoError::Tampered(text),
        Err(_) => CryptoError::Malformed(text),
    }
}

/// Turns sequoia's read errors into `io::Error`s carrying a [`CryptoError`].
struct PlainReader<'a> {
    /// `None` once sequoia panicked: its state is then unknown, so every later read fails too.
    inner: Option<openpgp::parse::stream::Decryptor<'a, Helper>>,
}

impl Read for PlainReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(io::Error::other(parser_panic()));
        };
        match panic::catch_unwind(AssertUnwindSafe(|| inner.read(buf))) {
            Ok(result) => result.map_err(read_error),
            Err(_) => {
                self.inner = None;
                Err(io::Error::other(parser_panic()))
            }
        }
    }
}

fn parser_panic() -> CryptoError {
    CryptoError::Malformed("the OpenPGP parser failed on damaged input".into())
}

fn read_error(e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|r| r.is::<CryptoError>()) {
        return e;
    }
    let kind = e.kind();
    match kind {
        io::ErrorKind::UnexpectedEof => io::Error::other(CryptoError::Tampered(format!(
            "the message is truncated: {e}"
        ))),
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            let inner: anyhow::Error = match e.into_inner() {
                Some(inner) => anyhow::Error::from_boxed(inner),
                None => anyhow::anyhow!("{kind}"),
            };
            io::Error::other(classify(inner, true))
        }
        // Genuine I/O trouble with the input (EIO, interrupted network...): pass it on as it is.
        _ => e,
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
mod tests {
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
                    let (ok, out, err) =
                        gpg.run(&["--status-fd", "2", "--decrypt", "-"], PASS, cipher);
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
    fn sed_without_mdc_is_refused_clearly() {
        // gpg 1.x with CAST5 wrote SED (tag 9, no MDC) unless told --force-mdc; sequoia 2.4 cannot
        // decrypt SED at all, so such files must fail with a message that says what to do.
        let gpg = Gpg::new();
        let cipher = gpg.symmetric(b"old data", &["--rfc2440", "--cipher-algo", "CAST5"], false);
        assert!(looks_like_openpgp(&cipher));
        let dec = Decryptor::new(Some(pass()));
        match decrypt_all(&dec, &cipher) {
            Err(e @ CryptoError::Unsupported(_)) => assert!(e.to_string().contains("gpg"), "{e}"),
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
            for (fast, read_size) in [(true, 512), (true, 1 << 20), (false, 512), (false, 1 << 20)]
            {
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
}
