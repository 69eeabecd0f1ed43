//! Reading OpenPGP messages: the fast streaming path for the shapes gpg and we write (packet headers,
//! SEIPD with CFB and MDC, inflate, signatures), handing anything else to the sequoia fallback.

use super::*;

/// A secret (sub)key that may decrypt session keys.
pub(super) struct SecretKey {
    pub(super) key: openpgp::packet::Key<key::SecretParts, key::UnspecifiedRole>,
    /// Its fingerprint (hex), for messages.
    label: String,
}

/// Derived keys shared by all readers of one [`Decryptor`].
pub(super) struct DecryptState {
    pub(super) passphrase: Option<Passphrase>,
    /// The secret (sub)keys of `--secret-keyring`.
    pub(super) secret_keys: Vec<SecretKey>,
    /// Asked for the secret keys of a message that none of `secret_keys` opens (gpg's keyring), once.
    source: Option<Arc<dyn SecretKeySource>>,
    from_source: OnceLock<Result<Vec<SecretKey>, String>>,
    /// Secret keys unlocked so far, by fingerprint (hex): unlocking runs the key's S2K once per run.
    pub(super) unlocked: Mutex<HashMap<String, KeyPair>>,
    /// Keys of `--secret-keyring` held there without their secret part (fingerprint, label): named when
    /// a message is encrypted to one, so the error says the key was given but lacks its secret.
    public_only: Vec<(Fingerprint, String)>,
    /// Signatures every message must carry (`--sign-key` at restore).
    pub(super) check: Option<Arc<SignatureCheck>>,

    pub(super) keys: Mutex<HashMap<(S2K, SymmetricAlgorithm), SessionKey>>,
    pub(super) derivations: AtomicUsize,
    /// Messages opened by the fast path, and by sequoia (for tests and diagnostics).
    fast_reads: AtomicUsize,
    sequoia_reads: AtomicUsize,
}

impl DecryptState {
    /// Warns if a message's session key is for a 64-bit block cipher (gpg 1.x's CAST5 and kin).
    pub(super) fn warn_cipher(&self, algo: SymmetricAlgorithm) {
        if algo.block_size().is_ok_and(|bs| bs < 16) {
            warn_once(format!(
                "the backup is encrypted with {algo}, a 64-bit block cipher (gpg 1.x's default); it \
                 is read as gpg reads it, and new backups by this program use AES256"
            ));
        }
    }

    /// The secret keys that may have made `pkesk`: the one it names, or every key of its algorithm when
    /// it names none (a hidden recipient).
    fn candidates<'s>(&'s self, pkesk: &PKESK) -> impl Iterator<Item = &'s SecretKey> + 's {
        let recipient = pkesk.recipient();
        let algo = match pkesk {
            PKESK::V3(p) => Some(p.pk_algo()),
            _ => None,
        };
        let fetched = self
            .from_source
            .get()
            .and_then(|r| r.as_ref().ok())
            .into_iter()
            .flatten();
        self.secret_keys
            .iter()
            .chain(fetched)
            .filter(move |k| match &recipient {
                Some(h) => k.key.key_handle().aliases(h),
                None => algo.is_none_or(|a| a == k.key.pk_algo()),
            })
    }

    /// `k` unlocked (with the passphrase if its secret is protected), cached for the run.
    pub(super) fn keypair(&self, k: &SecretKey) -> Result<KeyPair, CryptoError> {
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
    pub(super) fn pkesk_session_key(
        &self,
        pkesks: &[PKESK],
        mut accept: impl FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> Result<bool, CryptoError>,
    ) -> Result<Option<(Option<SymmetricAlgorithm>, SessionKey)>, CryptoError> {
        if pkesks.is_empty() {
            return Ok(None);
        }
        if let Some(source) = &self.source {
            if pkesks.iter().all(|p| self.candidates(p).next().is_none()) {
                self.from_source.get_or_init(|| {
                    let wanted: Vec<KeyHandle> =
                        pkesks.iter().filter_map(|p| p.recipient()).collect();
                    source
                        .secret_keys(&wanted)
                        .map(|certs| secret_keys_of(&certs))
                });
            }
        }
        let mut last_error = None;
        for pkesk in pkesks {
            for k in self.candidates(pkesk) {
                let unusable = |reason: String| CryptoError::KeyUnusable {
                    key: k.label.clone(),
                    reason,
                };
                if let Some(why) = unsupported_algo(&k.key) {
                    last_error = Some(unusable(why));
                    continue;
                }
                if secret_is_stub(&k.key) {
                    last_error = Some(unusable(
                        "the secret key file holds only a stub of its secret part (gpg writes one for \
                         a key on a smartcard or left out by --export-secret-subkeys): pass the real \
                         secret key, exported with gpg --export-secret-keys"
                            .into(),
                    ));
                    continue;
                }
                let mut kp = match self.keypair(k) {
                    Ok(kp) => kp,
                    Err(e) => {
                        last_error = Some(e);
                        continue;
                    }
                };
                let opened = if is_elgamal(k.key.pk_algo()) {
                    elgamal_session_key(&kp, pkesk)
                } else {
                    pkesk.decrypt(&mut kp, None)
                };
                if let Some((algo, sk)) = opened {
                    if accept(algo, &sk)? {
                        return Ok(Some((algo, sk)));
                    }
                }
            }
        }
        if last_error.is_none() {
            if let Some(Err(e)) = self.from_source.get() {
                last_error = Some(CryptoError::KeySource(e.clone()));
            }
        }
        if last_error.is_none() {
            // A key given only by its public part is given all the same: say what it lacks.
            last_error = pkesks.iter().find_map(|p| {
                let r = p.recipient()?;
                let (_, label) = self
                    .public_only
                    .iter()
                    .find(|(f, _)| KeyHandle::from(f).aliases(&r))?;
                Some(CryptoError::KeyUnusable {
                    key: label.clone(),
                    reason: "--secret-keyring holds only its public part: export its secret key \
                             with gpg --export-secret-keys"
                        .into(),
                })
            });
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
    pub(super) fn derived_key(
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

/// Prints a warning about a weak part of what is being read, once per process: reading goes on (a
/// restore never fails for a policy reason).
pub(super) fn warn_once(msg: String) {
    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if !warned.contains(&msg) {
        crate::logging::warn(&msg);
        warned.push(msg);
    }
}

/// Warns if a good signature uses a hash that is broken for signatures (SHA-1, RIPEMD-160).
pub(super) fn warn_signature_hash(key: &str, hash: HashAlgorithm) {
    if matches!(
        hash,
        HashAlgorithm::SHA1 | HashAlgorithm::RipeMD | HashAlgorithm::MD5
    ) {
        warn_once(format!(
            "the backup's signatures by key {key} use {hash}, which is broken for signatures (gpg \
             1.x's default, or a DSA-1024 key); they are checked as gpg checks them: sign new backups \
             with a newer key (rsa3072, ed25519)"
        ));
    }
}

/// True if the first encrypted packet among the first bytes of a message (dearmored if armored) is
/// a SED packet: encrypted without integrity protection (gpg 1.x without MDC, or `--rfc2440`).
fn starts_with_sed(head: &[u8]) -> bool {
    let dearmored;
    let mut bytes = head;
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'-') {
        let mut out = Vec::new();
        let mut armor =
            openpgp::armor::Reader::from_bytes(head, openpgp::armor::ReaderMode::Tolerant(None));
        let _ = armor.read_to_end(&mut out);
        dearmored = out;
        bytes = &dearmored;
    }
    let mut r = Cursor::new(bytes);
    while let Ok(Some(header)) = read_header(&mut r) {
        match header.tag {
            9 => return true,
            18 | 20 => return false,
            _ => {}
        }
        let BodyLen::Definite(len) = header.len else {
            return false;
        };
        if io::copy(&mut (&mut r).take(len), &mut io::sink()).unwrap_or(0) < len {
            return false;
        }
    }
    false
}

/// A (sub)key's fingerprint for messages: "FPR", or "SUBFPR (of FPR)" for a subkey.
fn key_label(key: &Fingerprint, cert: &str) -> String {
    let fpr = key.to_hex();
    if fpr == cert {
        fpr
    } else {
        format!("{fpr} (of {cert})")
    }
}

/// The session key of `pkesk` decrypted with the ElGamal key `kp` (see [`elgamal`]); `None` if it is
/// not for this key, as sequoia's `PKESK::decrypt` says it.
fn elgamal_session_key(
    kp: &KeyPair,
    pkesk: &PKESK,
) -> Option<(Option<SymmetricAlgorithm>, SessionKey)> {
    use openpgp::crypto::mpi;
    let PKESK::V3(p3) = pkesk else {
        return None;
    };
    let mpi::Ciphertext::ElGamal { e, c } = p3.esk() else {
        return None;
    };
    let mpi::PublicKey::ElGamal { p, .. } = kp.public().mpis() else {
        return None;
    };
    let (algo, key) = kp.secret().map(|s| match s {
        mpi::SecretKeyMaterial::ElGamal { x } => {
            elgamal::decrypt(p.value(), x.value(), e.value(), c.value()).ok()
        }
        _ => None,
    })?;
    Some((Some(algo), key))
}

/// The secret (sub)keys of `certs`, labelled for messages.
fn secret_keys_of(certs: &[Cert]) -> Vec<SecretKey> {
    certs
        .iter()
        .flat_map(|c| {
            let label = c.fingerprint().to_hex();
            c.keys()
                .secret()
                .map(move |k| SecretKey {
                    key: k.key().clone().role_into_unspecified(),
                    label: key_label(&k.key().fingerprint(), &label),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Decrypts messages made by us or by gpg with a passphrase; see the module documentation.
#[derive(Clone)]
pub struct Decryptor {
    pub(super) state: Arc<DecryptState>,
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
        let public_only = keys
            .secret_keys
            .iter()
            .flat_map(|c| {
                let cert = c.fingerprint().to_hex();
                c.keys()
                    .filter(|k| !k.key().has_secret())
                    .map(move |k| {
                        (
                            k.key().fingerprint(),
                            key_label(&k.key().fingerprint(), &cert),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Decryptor {
            state: Arc::new(DecryptState {
                passphrase,
                secret_keys: secret_keys_of(&keys.secret_keys),
                source: keys.secret_source.clone(),
                from_source: OnceLock::new(),
                public_only,
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
    pub(super) fn paths(&self) -> (usize, usize) {
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
        if starts_with_sed(&head) {
            warn_once(
                "the backup's files are encrypted without OpenPGP's integrity check (SED packets, \
                 made by gpg 1.x or --rfc2440): they are read as duplicity reads them; a changed \
                 volume is still caught by the SHA-1 the manifest holds for it, but the manifests \
                 and signature files themselves are not protected (see the README)"
                    .into(),
            );
        }
        let Some((algo, key)) = chosen else {
            if short_seipd(&head, complete) {
                return Err(CryptoError::Malformed(
                    "the encrypted packet (SEIPD) is shorter than its random prefix and integrity \
                     check: the file is truncated"
                        .into(),
                ));
            }
            let input = Cursor::new(head).chain(input);
            self.state.sequoia_reads.fetch_add(1, Ordering::Relaxed);
            return self.sequoia_reader(input);
        };
        self.state.warn_cipher(algo);
        let input = Cursor::new(head).chain(input);
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
    pub(super) fn sequoia_reader<'a, R: Read + Send + Sync + 'a>(
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
                .with_policy(read_policy(), None, helper)
        }));
        let inner = match built {
            Ok(result) => result.map_err(|e| classify(e, false))?,
            Err(_) => return Err(parser_panic()),
        };
        Ok(Box::new(PlainReader { inner: Some(inner) }))
    }
}

/// The shortest body a SEIPD v1 packet can have: the version, the random prefix of a 16-byte block plus
/// its two check octets, a literal packet with no data (8 octets) and the MDC packet.
const MIN_SEIPD_V1_BODY: u64 = 1 + 16 + 2 + 8 + MDC_LEN as u64;

/// True if the first SEIPD v1 packet among the first bytes of a message (`head`, dearmored if armored;
/// `complete`: the whole message) ends, or the message ends, before [`MIN_SEIPD_V1_BODY`]. sequoia 2.4.2
/// panics on such a packet once the session key passes its quick check (`data_consume_hard(..).unwrap()`
/// in `PacketParser::decrypt_`), so the fallback never sees one.
fn short_seipd(head: &[u8], complete: bool) -> bool {
    let dearmored;
    let mut bytes = head;
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'-') {
        let mut out = Vec::new();
        let mut armor =
            openpgp::armor::Reader::from_bytes(head, openpgp::armor::ReaderMode::Tolerant(None));
        // What decodes before an error (a cut armor) is what sequoia would parse too.
        let _ = armor.read_to_end(&mut out);
        dearmored = out;
        bytes = &dearmored;
    }
    let mut r = Cursor::new(bytes);
    loop {
        let Ok(Some(header)) = read_header(&mut r) else {
            return false;
        };
        if header.tag == 18 {
            let mut body = PacketBody::new(&mut r, header.len);
            let mut seen = [0u8; MIN_SEIPD_V1_BODY as usize];
            let mut n = 0;
            let ended = loop {
                match body.read(&mut seen[n..]) {
                    Ok(0) => break true,
                    Ok(k) => n += k,
                    // The bytes in hand end inside the packet: short only if the message does.
                    Err(_) => break complete,
                }
                if n == seen.len() {
                    return false;
                }
            };
            return ended && seen.first().is_none_or(|v| *v == 1);
        }
        let BodyLen::Definite(len) = header.len else {
            return false;
        };
        let skipped = io::copy(&mut (&mut r).take(len), &mut io::sink()).unwrap_or(0);
        if skipped < len {
            return false;
        }
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
pub(super) enum BodyLen {
    Definite(u64),
    /// A partial body length: this many bytes, then another length.
    Partial(u64),
    /// Old format, indeterminate: the body runs to the end of what contains the packet.
    Indeterminate,
}

pub(super) struct Header {
    pub(super) tag: u8,
    pub(super) len: BodyLen,
    /// The header's octets.
    pub(super) raw: Vec<u8>,
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
pub(super) fn read_header<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Option<Header>> {
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
    pub(super) inner: B,
    /// Bytes left in the current piece.
    left: u64,
    /// The current piece has a partial length: another length follows it.
    pub(super) more: bool,
    /// Indeterminate length: the body is the rest of `inner`.
    to_end: bool,
}

impl<B: BufRead> PacketBody<B> {
    pub(super) fn new(inner: B, len: BodyLen) -> Self {
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
///
/// Also the plaintext of the old SED packet (RFC 4880 5.7; gpg 1.x without MDC, `--rfc2440`): its CFB
/// resynchronizes after the prefix, so the data after the prefix is plain CFB with the prefix's last
/// block-size ciphertext octets as IV; there is no MDC to hold back or check (the caller warns).
struct Seipd<'a> {
    pub(super) body: PacketBody<Raw<'a>>,
    ecb: sym::Encryptor<KeyStream>,
    pub(super) keystream: KeyStream,
    pub(super) bs: usize,
    /// The previous ciphertext block (C[-1] = the zero IV), then ciphertext not yet decrypted.
    ct: Vec<u8>,
    /// Decrypted data: [pos..ready] is released, [ready..] held back (the possible MDC packet).
    pub(super) plain: Vec<u8>,
    pub(super) pos: usize,
    ready: usize,
    /// Prefix bytes still to drop.
    skip: usize,
    pub(super) mdc: Sha1,
    /// False for a SED packet: no MDC at the end.
    with_mdc: bool,
    eof: bool,
    verified: bool,
}

impl<'a> Seipd<'a> {
    /// `first`: ciphertext already read from the start of `body` (at least the prefix). `with_mdc`:
    /// a SEIPD v1 packet; false for a SED packet.
    pub(super) fn new(
        body: PacketBody<Raw<'a>>,
        algo: SymmetricAlgorithm,
        key: &SessionKey,
        first: &[u8],
        with_mdc: bool,
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
        let skip = if with_mdc {
            ct.resize(bs, 0);
            ct.extend_from_slice(first);
            bs + 2
        } else {
            // SED: the prefix was checked by the quick check; resynchronize after it.
            if first.len() < bs + 2 {
                return Err(CryptoError::Malformed(
                    "the encrypted packet (SED) is shorter than its random prefix: the file is truncated"
                        .into(),
                ));
            }
            ct.extend_from_slice(&first[2..]);
            0
        };
        Ok(Seipd {
            body,
            ecb,
            keystream,
            bs,
            ct,
            plain: Vec::with_capacity(FAST_BUFFER + 3 * bs + MDC_LEN),
            pos: 0,
            ready: 0,
            skip,
            mdc: Sha1::new(),
            with_mdc,
            eof: false,
            verified: false,
        })
    }

    /// Decrypts the next `n` ciphertext bytes (whole blocks, or the short last block).
    pub(super) fn decrypt(&mut self, n: usize) -> io::Result<()> {
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
    pub(super) fn release(&mut self, upto: usize) {
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
        if !self.with_mdc {
            self.release(n);
            self.verified = true;
            return Ok(());
        }
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
                let held = if self.with_mdc { MDC_LEN } else { 0 };
                self.release(self.plain.len().saturating_sub(held));
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
    pub(super) inner: L,
    z: flate2::Decompress,
    pub(super) out: Vec<u8>,
    pub(super) pos: usize,
    pub(super) end: bool,
}

impl<L: BufRead> Inflate<L> {
    pub(super) fn new(inner: L, zlib: bool) -> Self {
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
    pub(super) literal: PacketBody<Box<dyn Layer + 'a>>,
    pub(super) state: FastState,
    /// Signature checks (`--sign-key` at restore), if asked for.
    sigs: Option<Sigs>,
    /// How many signature packets follow the literal packet (one per one-pass signature).
    pub(super) signatures: usize,
}

enum FastState {
    Reading,
    Done,
    Failed(String),
}

impl FastReader<'_> {
    /// After the literal data: checks that nothing else follows and that the MDC matches.
    pub(super) fn end(&mut self) -> io::Result<()> {
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
    pub(super) fn io(e: io::Error, what: &str) -> OpenError {
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
pub(super) enum Keys<'s> {
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
            18 => break (header.len, true),
            // SED (no MDC): gpg 1.x's default, read as gpg --ignore-mdc-error and duplicity read it.
            9 => break (header.len, false),
            _ => return Err(OpenError::Fallback),
        }
    };
    let (seipd_len, with_mdc) = seipd_len;
    if skesks.is_empty() && pkesks.is_empty() {
        return Err(OpenError::Fallback);
    }
    let mut body = PacketBody::new(raw, seipd_len);
    let what = "the encrypted packet (SEIPD)";
    if with_mdc {
        let version = read_u8(&mut body).map_err(|e| OpenError::io(e, what))?;
        if version != 1 {
            return Err(OpenError::Fallback);
        }
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
    let seipd = Seipd::new(body, algo, &key, &first, with_mdc).map_err(OpenError::Failed)?;
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
    pub(super) check: Arc<SignatureCheck>,
    pub(super) ops: Vec<OnePassSig>,
    pub(super) hashes: Vec<hash::Context>,
}

impl Sigs {
    pub(super) fn new(
        check: Arc<SignatureCheck>,
        ops: Vec<OnePassSig>,
    ) -> Result<Self, CryptoError> {
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

    pub(super) fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashes {
            h.update(data);
        }
    }

    /// Reads the signature packets from `r` (right after the literal packet) and checks them.
    pub(super) fn finish<R: BufRead + ?Sized>(self, r: &mut R) -> io::Result<()> {
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
pub(super) enum Finding {
    /// Good, by the (sub)key with this fingerprint of the certificate with this fingerprint.
    Good {
        key: String,
        cert: String,
        hash: HashAlgorithm,
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
                .with_policy(read_policy(), when)
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
                hash: sig.hash_algo(),
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
pub(super) fn judge(check: &SignatureCheck, findings: Vec<Finding>) -> Result<(), CryptoError> {
    let mut why = Vec::new();
    for f in findings {
        match f {
            Finding::Good { key, cert, hash } => {
                if key.ends_with(&check.id) || cert.ends_with(&check.id) {
                    warn_signature_hash(&key, hash);
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

/// Who can open a message: the key ids its PKESK packets name (None for a hidden recipient) and
/// whether a passphrase can (a SKESK packet). Read from the packets before the encrypted data, so no
/// key or passphrase is needed: an incremental encrypting to public keys uses it to check that it
/// writes to the same keys as the chain it continues.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageKeys {
    pub recipients: Vec<Option<String>>,
    pub passphrase: bool,
}

impl MessageKeys {
    /// True if `recipient` (an encryption subkey of ours) is among the named recipients, or a hidden
    /// recipient could be it.
    pub fn includes(&self, recipient: &Recipient) -> bool {
        let ours = KeyHandle::from(recipient.key.fingerprint());
        self.recipients.iter().any(|r| match r {
            None => true,
            Some(hex) => hex
                .parse::<KeyHandle>()
                .is_ok_and(|theirs| ours.aliases(&theirs)),
        })
    }

    /// The named recipients, for messages.
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .recipients
            .iter()
            .map(|r| r.clone().unwrap_or_else(|| "a hidden recipient".into()))
            .collect();
        if self.passphrase {
            v.push("a passphrase".into());
        }
        v.join(", ")
    }
}

/// The session-key packets at the start of the OpenPGP message in `input`.
pub fn message_keys<R: Read + Send + Sync>(input: R) -> Result<MessageKeys, CryptoError> {
    use openpgp::parse::{PacketParser, PacketParserResult};
    let malformed = |e: anyhow::Error| CryptoError::Malformed(format!("{e}"));
    let mut out = MessageKeys::default();
    let mut ppr = PacketParser::from_reader(input).map_err(malformed)?;
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => out.recipients.push(p.recipient().map(|h| h.to_hex())),
            Packet::SKESK(_) => out.passphrase = true,
            Packet::Marker(_) => {}
            _ => break,
        }
        ppr = pp.next().map_err(malformed)?.1;
    }
    Ok(out)
}
