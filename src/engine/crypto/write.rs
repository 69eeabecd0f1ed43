//! Writing OpenPGP messages: the SKESK/PKESK packets, our own SEIPD framing and CFB, the literal and
//! compressed packets inside, and signing.

use super::*;

/// How the literal data is compressed inside the encrypted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// No compressed data packet at all.
    None,
    /// A ZIP (raw deflate, algorithm 1) compressed data packet at this zlib level (1..=9; 0 stores).
    Deflate(u32),
    /// A ZLIB (algorithm 2) compressed data packet at this level (1..=9; 0 stores): gpg's
    /// `--compress-algo zlib`.
    Zlib(u32),
    /// A BZip2 (algorithm 3) compressed data packet with this block size (1..=9, in 100 kB): gpg's
    /// `--compress-algo bzip2`.
    Bzip2(u32),
}

/// gpg's `--s2k-*` options: how the passphrase becomes the key that encrypts each message's session
/// key. Unset fields keep our defaults (AES256, SHA256, iterated and salted with gpg's largest count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S2kOptions {
    /// `--s2k-cipher-algo`: the cipher of the encrypted session key.
    pub cipher: Option<SymmetricAlgorithm>,
    /// `--s2k-digest-algo`.
    pub hash: Option<HashAlgorithm>,
    /// `--s2k-mode`: 0 simple, 1 salted, 3 iterated and salted.
    pub mode: Option<u8>,
    /// `--s2k-count`: octets hashed in mode 3 (rounded up to what OpenPGP can encode).
    pub count: Option<u32>,
}

/// Encrypts many messages in one run with one passphrase; see the module documentation.
pub struct SymmetricEncryptor {
    /// The cipher of the encrypted session keys (`--s2k-cipher-algo`).
    pub(super) kek_cipher: SymmetricAlgorithm,
    pub(super) s2k: S2K,
    /// The key derived from the passphrase by `s2k`; it encrypts each message's session key.
    pub(super) kek: SessionKey,
    pub(super) derivations: AtomicUsize,
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
        Self::with_s2k(passphrase, &S2kOptions::default())
    }

    /// As [`SymmetricEncryptor::new`], with gpg's `--s2k-*` choices.
    #[allow(deprecated)] // simple and salted S2K: gpg still writes them when told to
    pub fn with_s2k(passphrase: &Passphrase, o: &S2kOptions) -> Result<Self, CryptoError> {
        let hash = o.hash.unwrap_or(WRITE_S2K_HASH);
        let kek_cipher = o.cipher.unwrap_or(WRITE_CIPHER);
        if !hash.is_supported() {
            return Err(CryptoError::Encrypt(format!(
                "S2K digest {hash} is not supported by this program: use SHA256, SHA384, SHA512 or SHA1"
            )));
        }
        supported_cipher(kek_cipher)?;
        let s2k = match o.mode.unwrap_or(3) {
            0 => S2K::Simple { hash },
            1 => {
                let mut salt = [0u8; 8];
                sequoia_openpgp::crypto::random(&mut salt).map_err(encrypt_err)?;
                S2K::Salted { hash, salt }
            }
            3 => S2K::new_iterated(hash, o.count.unwrap_or(WRITE_S2K_COUNT))
                .map_err(encrypt_err)?,
            m => {
                return Err(CryptoError::Encrypt(format!(
                    "S2K mode {m} does not exist: use 0 (simple), 1 (salted) or 3 (iterated and salted)"
                )))
            }
        };
        let kek = s2k
            .derive_key(
                passphrase.password(),
                kek_cipher.key_size().map_err(encrypt_err)?,
            )
            .map_err(encrypt_err)?;
        Ok(SymmetricEncryptor {
            kek_cipher,
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
    pub(super) fn start<'a, W: Write + Send + Sync + 'a>(
        &self,
        out: W,
    ) -> Result<SeipdWriter<'a>, CryptoError> {
        self.start_with(out, WRITE_CIPHER)
    }

    /// As `start`, the message encrypted with `cipher` (the SKESK's own key stays AES256: its
    /// encrypted session key names the message's cipher, RFC 4880 5.3).
    pub(super) fn start_with<'a, W: Write + Send + Sync + 'a>(
        &self,
        mut out: W,
        cipher: SymmetricAlgorithm,
    ) -> Result<SeipdWriter<'a>, CryptoError> {
        // A fresh session key for this message, encrypted under the run's derived key: ESK =
        // CFB(kek, IV 0)[cipher octet || session key] (RFC 4880 5.3).
        let key_size = cipher.key_size().map_err(encrypt_err)?;
        let session_key = SessionKey::new(key_size).map_err(encrypt_err)?;
        let mut framed: SessionKey = vec![0u8; 1 + key_size].into();
        framed[0] = cipher.into();
        framed[1..].copy_from_slice(&session_key);
        let mut esk = Vec::with_capacity(framed.len());
        let mut cfb = sym::Encryptor::new(
            self.kek_cipher,
            BlockCipherMode::CFB,
            PaddingMode::None,
            &self.kek,
            None,
            &mut esk,
        )
        .map_err(encrypt_err)?;
        cfb.write_all(&framed)?;
        cfb.finalize().map_err(encrypt_err)?;
        let skesk = SKESK4::new(
            self.kek_cipher,
            self.s2k.clone(),
            Some(esk.into_boxed_slice()),
        )
        .map_err(encrypt_err)?;
        Packet::from(skesk)
            .serialize(&mut out)
            .map_err(encrypt_err)?;
        SeipdWriter::new(Box::new(out), cipher, &session_key)
    }
}

/// Refuses a cipher this program cannot encrypt with.
fn supported_cipher(c: SymmetricAlgorithm) -> Result<(), CryptoError> {
    if !c.is_supported() || c.key_size().is_err() || c.block_size().is_err() {
        return Err(CryptoError::Encrypt(format!(
            "cipher {c} is not supported by this program: use AES256, AES192, AES128, TWOFISH or CAMELLIA256"
        )));
    }
    Ok(())
}

/// Refuses a deflate level zlib does not have.
fn check_level(compression: Compression) -> Result<(), CryptoError> {
    match compression {
        Compression::Deflate(l) | Compression::Zlib(l) if l > 9 => Err(CryptoError::Encrypt(format!(
            "deflate level {l} is out of range: use a level from 1 to 9 (0 stores without compressing), or Compression::None"
        ))),
        Compression::Bzip2(l) if !(1..=9).contains(&l) => Err(CryptoError::Encrypt(format!(
            "bzip2 level {l} is out of range: use a level from 1 to 9, or Compression::None"
        ))),
        _ => Ok(()),
    }
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
        Compression::Zlib(level) => {
            // The same packet framing as ZIP, algorithm 2: a zlib stream (header and Adler-32).
            seipd.write_all(&[0xa3, 0x02])?;
            let mut zlib = flate2::write::ZlibEncoder::new(seipd, flate2::Compression::new(level));
            if let Some(ops) = &ops {
                zlib.write_all(ops)?;
            }
            zlib.write_all(&LITERAL_TAG)?;
            let mut literal = Partial::new(zlib, LITERAL_PIECE_BITS);
            literal.write_all(LITERAL_HEADER)?;
            Inner::Zlib(literal)
        }
        Compression::Bzip2(level) => {
            seipd.write_all(&[0xa3, 0x03])?;
            let mut bz = bzip2::write::BzEncoder::new(seipd, bzip2::Compression::new(level));
            if let Some(ops) = &ops {
                bz.write_all(ops)?;
            }
            bz.write_all(&LITERAL_TAG)?;
            let mut literal = Partial::new(bz, LITERAL_PIECE_BITS);
            literal.write_all(LITERAL_HEADER)?;
            Inner::Bzip2(literal)
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
    /// Why the key is weak (gpg accepts it; current practice does not), if it is: see `keys::weakness`.
    pub weakness: Option<String>,
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
    /// Why the key is weak, if it is: see `keys::weakness`.
    pub weakness: Option<String>,
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
    pub(super) key: Arc<SigningKey>,
    pub(super) hash: hash::Context,
}

impl MessageSigner {
    pub fn new(key: Arc<SigningKey>) -> Result<Self, CryptoError> {
        Self::with_hash(key, SIGN_HASH)
    }

    /// As [`MessageSigner::new`], hashing with `algo` (gpg's `--digest-algo`).
    pub fn with_hash(key: Arc<SigningKey>, algo: HashAlgorithm) -> Result<Self, CryptoError> {
        let version = key.keypair.public().version();
        let hash = algo.context().map_err(encrypt_err)?.for_signature(version);
        Ok(MessageSigner { key, hash })
    }

    /// The one-pass signature packet that goes before the literal packet.
    pub fn one_pass_packet(&self) -> Result<Vec<u8>, CryptoError> {
        let mut ops = OnePassSig3::new(SignatureType::Binary);
        ops.set_hash_algo(self.hash.algo());
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
    /// The cipher of the messages (gpg's `--cipher-algo`; AES256 unless set).
    cipher: SymmetricAlgorithm,
    /// The hash of the signatures (gpg's `--digest-algo`; SHA256 unless set).
    digest: HashAlgorithm,
    pub(super) signer: Option<Arc<SigningKey>>,
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
            cipher: WRITE_CIPHER,
            digest: SIGN_HASH,
            signer: None,
        }
    }
}

impl Encryptor {
    /// Passphrase encryption (derives the passphrase key once).
    pub fn symmetric(passphrase: &Passphrase) -> Result<Self, CryptoError> {
        Ok(SymmetricEncryptor::new(passphrase)?.into())
    }

    /// Passphrase encryption with gpg's `--s2k-*` choices.
    pub fn symmetric_with(passphrase: &Passphrase, s2k: &S2kOptions) -> Result<Self, CryptoError> {
        Ok(SymmetricEncryptor::with_s2k(passphrase, s2k)?.into())
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
            cipher: WRITE_CIPHER,
            digest: SIGN_HASH,
            signer: None,
        })
    }

    /// Encrypts the messages with `cipher` (gpg's `--cipher-algo`) instead of AES256.
    pub fn with_cipher(mut self, cipher: Option<SymmetricAlgorithm>) -> Result<Self, CryptoError> {
        if let Some(c) = cipher {
            supported_cipher(c)?;
            self.cipher = c;
        }
        Ok(self)
    }

    /// Signs with `digest` (gpg's `--digest-algo`) instead of SHA256.
    pub fn with_digest(mut self, digest: Option<HashAlgorithm>) -> Result<Self, CryptoError> {
        if let Some(d) = digest {
            if !d.is_supported() {
                return Err(CryptoError::Encrypt(format!(
                    "digest {d} is not supported by this program: use SHA256, SHA384, SHA512 or SHA1"
                )));
            }
            self.digest = d;
        }
        Ok(self)
    }

    /// Signs every message with `signer`.
    pub fn with_signer(mut self, signer: Option<Arc<SigningKey>>) -> Self {
        self.signer = signer;
        self
    }

    /// A signer for one message, if this encryptor signs.
    pub fn message_signer(&self) -> Result<Option<MessageSigner>, CryptoError> {
        let digest = self.digest;
        self.signer
            .clone()
            .map(|k| MessageSigner::with_hash(k, digest))
            .transpose()
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

    pub(super) fn start<'a, W: Write + Send + Sync + 'a>(
        &self,
        mut out: W,
    ) -> Result<SeipdWriter<'a>, CryptoError> {
        match &self.mode {
            Mode::Symmetric(s) => s.start_with(out, self.cipher),
            Mode::PublicKey(recipients) => {
                // A fresh session key per message, encrypted to every recipient (RFC 4880 5.1).
                let key_size = self.cipher.key_size().map_err(encrypt_err)?;
                let session_key = SessionKey::new(key_size).map_err(encrypt_err)?;
                for r in recipients {
                    let mut pkesk = if is_elgamal(r.key.pk_algo()) {
                        elgamal_pkesk(r, &session_key, self.cipher)?
                    } else {
                        PKESK3::for_recipient(self.cipher, &session_key, &r.key).map_err(|e| {
                            CryptoError::Encrypt(format!(
                                "cannot encrypt to key {}: {e:#}",
                                r.key_fingerprint()
                            ))
                        })?
                    };
                    if r.hidden {
                        pkesk.set_recipient(None);
                    }
                    Packet::from(pkesk)
                        .serialize(&mut out)
                        .map_err(encrypt_err)?;
                }
                SeipdWriter::new(Box::new(out), self.cipher, &session_key)
            }
        }
    }
}

/// A PKESK v3 to an ElGamal key (gpg 1.x's encryption subkeys), which sequoia's backend cannot make.
fn elgamal_pkesk(
    r: &Recipient,
    session_key: &SessionKey,
    cipher: SymmetricAlgorithm,
) -> Result<PKESK3, CryptoError> {
    use openpgp::crypto::mpi;
    let mpi::PublicKey::ElGamal { p, g, y } = r.key.mpis() else {
        return Err(CryptoError::Encrypt(format!(
            "key {} is not an ElGamal key",
            r.key_fingerprint()
        )));
    };
    let (c1, c2) = elgamal::encrypt(p.value(), g.value(), y.value(), cipher, session_key)?;
    let esk = mpi::Ciphertext::ElGamal {
        e: mpi::MPI::new(&c1),
        c: mpi::MPI::new(&c2),
    };
    PKESK3::new(Some(r.key.keyid()), r.key.pk_algo(), esk).map_err(encrypt_err)
}

/// Where an encrypted message goes, its type erased.
type Sink<'a> = Box<dyn Write + Send + Sync + 'a>;

/// The body of a new-format packet with partial body lengths: full pieces of 2^bits bytes, then the last
/// piece with a definite length. One piece is buffered, because only the last may be short.
pub(super) struct Partial<W: Write> {
    pub(super) inner: W,
    pub(super) buf: Vec<u8>,
    bits: u8,
}

impl<W: Write> Partial<W> {
    pub(super) fn new(inner: W, bits: u8) -> Self {
        Partial {
            inner,
            buf: Vec::new(),
            bits,
        }
    }

    /// Writes the last piece and returns the writer below.
    pub(super) fn finish(mut self) -> io::Result<W> {
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
pub(super) struct SeipdWriter<'a> {
    pub(super) cfb: sym::Encryptor<Partial<Sink<'a>>>,
    pub(super) mdc: Sha1,
}

impl<'a> SeipdWriter<'a> {
    pub(super) fn new(
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
    pub(super) fn finish(mut self) -> io::Result<Sink<'a>> {
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
pub(super) enum Inner<'a> {
    /// The caller writes whole packets.
    Packets(SeipdWriter<'a>),
    /// Literal data, uncompressed.
    Literal(Partial<SeipdWriter<'a>>),
    /// Literal data in a ZIP compressed packet.
    Zip(Partial<flate2::write::DeflateEncoder<SeipdWriter<'a>>>),
    /// Literal data in a ZLIB compressed packet.
    Zlib(Partial<flate2::write::ZlibEncoder<SeipdWriter<'a>>>),
    /// Literal data in a BZip2 compressed packet.
    Bzip2(Partial<bzip2::write::BzEncoder<SeipdWriter<'a>>>),
}

/// The plaintext side of one message being encrypted. Call [`EncryptWriter::finish`] at the end.
pub struct EncryptWriter<'a> {
    pub(super) inner: Inner<'a>,
    /// Hashes the literal data (only for `Literal` and `Zip`).
    pub(super) signer: Option<MessageSigner>,
}

impl Write for EncryptWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Packets(w) => w.write(buf),
            Inner::Literal(w) => w.write(buf),
            Inner::Zip(w) => w.write(buf),
            Inner::Zlib(w) => w.write(buf),
            Inner::Bzip2(w) => w.write(buf),
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
            Inner::Zlib(w) => w.write_all(buf),
            Inner::Bzip2(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Packets(w) => w.flush(),
            Inner::Literal(w) => w.flush(),
            Inner::Zip(w) => w.flush(),
            Inner::Zlib(w) => w.flush(),
            Inner::Bzip2(w) => w.flush(),
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
            Inner::Zlib(w) => {
                let mut zlib = w.finish()?;
                zlib.write_all(sig)?;
                zlib.finish()?.finish()
            }
            Inner::Bzip2(w) => {
                let mut bz = w.finish()?;
                bz.write_all(sig)?;
                bz.finish()?.finish()
            }
        }?;
        Ok(())
    }
}

fn encrypt_err(e: anyhow::Error) -> CryptoError {
    CryptoError::Encrypt(format!("{e:#}"))
}
