//! The keys of one run, as the crypto layer consumes them. They live here, below `keys`, so that the
//! dependency goes one way: `keys` (loading keyrings, choosing keys) builds these; `crypto` reads them.

use std::sync::Arc;

use sequoia_openpgp::{Cert, KeyHandle};

use super::{Recipient, SigningKey};

/// What signature a restore demands (`--sign-key` at restore or verify): a good one by a key whose
/// fingerprint ends with `id`, checked with `certs`.
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    pub id: String,
    pub certs: Vec<Cert>,
}

/// Where secret keys that none of the given ones is come from when a message needs them: gpg's own
/// keyring (`engine::gnupg`). Asked at most once per run, on the first message encrypted to keys that
/// `KeySetup::secret_keys` lacks, so a run that needs none never touches it.
pub trait SecretKeySource: Send + Sync {
    /// The secret keys for `recipients` (all it has when empty: a hidden recipient), protected as
    /// stored; the error is a message that names the problem and the fix.
    fn secret_keys(&self, recipients: &[KeyHandle]) -> Result<Vec<Cert>, String>;
}

/// The keys of one run. Backups use `recipients` and `signer`; restores use `secret_keys` (tried with
/// `PASSPHRASE`), then `secret_source`, and `check`.
#[derive(Clone, Default)]
pub struct KeySetup {
    pub recipients: Vec<Recipient>,
    pub signer: Option<Arc<SigningKey>>,
    pub secret_keys: Vec<Cert>,
    pub secret_source: Option<Arc<dyn SecretKeySource>>,
    pub check: Option<SignatureCheck>,
    /// Backups: the cipher of the messages (gpg's `--cipher-algo`); AES256 when unset.
    pub cipher: Option<sequoia_openpgp::types::SymmetricAlgorithm>,
    /// Backups: the compression inside encrypted files (gpg's `--compress-algo`/`-z`); ZIP level 2
    /// when unset.
    pub compression: Option<super::Compression>,
    /// Backups with a passphrase: gpg's `--s2k-*`.
    pub s2k: super::S2kOptions,
    /// Backups that sign: the signatures' hash (gpg's `--digest-algo`); SHA256 when unset.
    pub digest: Option<sequoia_openpgp::types::HashAlgorithm>,
}

impl std::fmt::Debug for KeySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySetup")
            .field("recipients", &self.recipients.len())
            .field("signer", &self.signer.as_ref().map(|s| s.cert.clone()))
            .field("secret_keys", &self.secret_keys.len())
            .field("secret_source", &self.secret_source.is_some())
            .field("check", &self.check.as_ref().map(|c| c.id.clone()))
            .finish()
    }
}

impl KeySetup {
    /// True if backups encrypt to public keys (then no passphrase is needed to write).
    pub fn public_key(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The keys this run writes with that are weak (see `keys::weakness`): (certificate fingerprint,
    /// why), each certificate once.
    pub fn weak_keys(&self) -> Vec<(String, String)> {
        let recipients = self
            .recipients
            .iter()
            .filter_map(|r| r.weakness.as_ref().map(|w| (&r.cert, w)));
        let signer = self
            .signer
            .iter()
            .filter_map(|s| s.weakness.as_ref().map(|w| (&s.cert, w)));
        let mut out: Vec<(String, String)> = Vec::new();
        for (cert, why) in recipients.chain(signer) {
            if !out.iter().any(|(c, _)| c == cert) {
                out.push((cert.clone(), why.clone()));
            }
        }
        out
    }
}
