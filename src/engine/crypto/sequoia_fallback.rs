//! The general reader: sequoia's streaming decryptor for every message shape the fast path does not
//! take (public-key details, SED, AEAD, bzip2...), and the mapping of its errors onto `CryptoError`.

use super::*;

/// sequoia's standard policy, relaxed to what gpg 2.2 accepts by default, for reading what exists and
/// for choosing keys (see `keys`): old ciphers that gpg 1.x and others used (CAST5 was gpg 1.x's
/// default, 3DES, IDEA, Blowfish), SHA-1 and RIPEMD-160 in signatures and self-signatures (gpg 1.x's
/// default digest), DSA, ElGamal and RSA below 2048 bits, and the SED packet without MDC (gpg 1.x
/// without --force-mdc, or `--rfc2440`). A restore must never fail for a policy reason; weak parts are
/// reported as warnings instead ([`DecryptState::warn`], `keys::weakness`). MD5 stays refused, as gpg
/// 2.2 refuses it. We never write the old ciphers or SED.
#[allow(deprecated)] // the old ciphers are deprecated for writing, which we never do
pub(crate) fn read_policy() -> &'static StandardPolicy<'static> {
    static POLICY: OnceLock<StandardPolicy<'static>> = OnceLock::new();
    POLICY.get_or_init(|| {
        use openpgp::policy::AsymmetricAlgorithm as A;
        let mut p = StandardPolicy::new();
        for algo in [
            SymmetricAlgorithm::CAST5,
            SymmetricAlgorithm::TripleDES,
            SymmetricAlgorithm::IDEA,
            SymmetricAlgorithm::Blowfish,
        ] {
            p.accept_symmetric_algo(algo);
        }
        for hash in [HashAlgorithm::SHA1, HashAlgorithm::RipeMD] {
            p.accept_hash(hash);
        }
        for algo in [
            A::RSA1024,
            A::DSA1024,
            A::DSA2048,
            A::DSA3072,
            A::DSA4096,
            A::ElGamal1024,
            A::ElGamal2048,
            A::ElGamal3072,
            A::ElGamal4096,
        ] {
            p.accept_asymmetric_algo(algo);
        }
        p.accept_packet_tag(openpgp::packet::Tag::SED);
        p
    })
}

pub(super) struct Helper {
    pub(super) state: Arc<DecryptState>,
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
                            hash: good.sig.hash_algo(),
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
        let state = Arc::clone(&self.state);
        let mut warning_decrypt = |algo: Option<SymmetricAlgorithm>, sk: &SessionKey| {
            let opened = decrypt(algo, sk);
            if let (true, Some(algo)) = (opened, algo) {
                state.warn_cipher(algo);
            }
            opened
        };
        let decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool =
            &mut warning_decrypt;
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
pub(super) fn cfb_decrypt(
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
pub(super) fn classify(e: anyhow::Error, reading: bool) -> CryptoError {
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
                // The fast path reads SED (gpg 1.x's packet without MDC) in gpg's shapes; sequoia 2.x
                // dropped SED from its message grammar, so an unusual SED message ends here.
                E::MalformedMessage(what) if what.contains("SED packet") => {
                    CryptoError::Unsupported(sed_fallback_message())
                }
                E::PolicyViolation(what, _) if what.contains("Symmetrically Encrypted Data") => {
                    CryptoError::Unsupported(sed_fallback_message())
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

fn sed_fallback_message() -> String {
    "the file uses the old encrypted packet without integrity protection (SED, made by gpg 1.x \
     without --force-mdc) in a shape this program does not read (armored, or with BZip2 inside): \
     decrypt it with `gpg --decrypt --ignore-mdc-error` and use the plaintext"
        .into()
}

/// Turns sequoia's read errors into `io::Error`s carrying a [`CryptoError`].
pub(super) struct PlainReader<'a> {
    /// `None` once sequoia panicked: its state is then unknown, so every later read fails too.
    pub(super) inner: Option<openpgp::parse::stream::Decryptor<'a, Helper>>,
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

pub(super) fn parser_panic() -> CryptoError {
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
