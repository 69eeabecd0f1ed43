//! OpenPGP keys named on the command line: certificates from `--keyring` files or key files, secret keys
//! from `--secret-keyring`, and the choice of the (sub)key that encrypts or signs, as gpg chooses it: the
//! newest subkey with the right capability that is valid now. Validity is judged under the policy gpg 2.2
//! applies (`crypto::read_policy`: DSA, ElGamal, RSA-1024 and SHA-1 self-signatures accepted), so keys
//! made with gpg 1.x work as they do with gpg and duplicity; [`weakness`] says what is weak about them,
//! which a backup reports as a warning, or as an error with `--refuse-weak-keys` ([`weak_key_policy`]).
//! A key that cannot do the job (expired, revoked, wrong capability, no secret, an algorithm we do not
//! implement) is refused with the reason.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::{HashAlgorithm, RevocationStatus};
use openpgp::Cert;

use super::crypto::{is_elgamal, key_algo_name, read_policy, secret_is_stub, unsupported_algo};
use super::crypto::{Passphrase, Recipient, SigningKey};
// The key types the crypto layer consumes live there (so `crypto` never imports `keys`); re-exported
// so `keys::KeySetup` keeps working.
pub use super::crypto::{KeySetup, SignatureCheck};

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {reason}")]
    Load { path: String, reason: String },
    #[error(
        "no key {spec} in {where_}: pass the file holding it with {option}, or give the fingerprint of a key it holds"
    )]
    NotFound {
        spec: String,
        where_: String,
        option: &'static str,
    },
    #[error("the key id {spec} matches several keys ({matches}): give the full fingerprint")]
    Ambiguous { spec: String, matches: String },
    #[error("key {key} cannot encrypt: {reason}; choose another --encrypt-key")]
    CannotEncrypt { key: String, reason: String },
    #[error("key {key} cannot sign: {reason}; choose another --sign-key")]
    CannotSign { key: String, reason: String },
    #[error(
        "the secret part of signing key {key} is protected by a passphrase: set SIGN_PASSPHRASE (or PASSPHRASE) to it"
    )]
    NoSignPassphrase { key: String },
    #[error("wrong passphrase for the signing key {key}: set SIGN_PASSPHRASE (or PASSPHRASE) to its passphrase")]
    BadSignPassphrase { key: String },
    #[error("{0:?} is not a key id (8, 16 or 40 hex digits, optionally with 0x): give the key's fingerprint")]
    BadKeyId(String),
    #[error(
        "key {key} was given but cannot be used: it is weak ({reason}) and --refuse-weak-keys is set: \
         move to a new key (gpg --quick-gen-key NAME rsa3072, or ed25519 with a cv25519 subkey), or \
         drop --refuse-weak-keys to write with it anyway"
    )]
    Weak { key: String, reason: String },
    #[error("cannot get secret keys from gpg's keyring in {home}: {reason}")]
    GpgExport { home: String, reason: String },
    #[error(
        "gpg's keyring in {home} holds secret key {keys} protected by a passphrase, and PASSPHRASE \
         (SIGN_PASSPHRASE for --sign-key) is not set: set it to that key's passphrase"
    )]
    GpgNoPassphrase { home: String, keys: String },
    #[error(
        "wrong passphrase for secret key {keys} in gpg's keyring in {home}: set PASSPHRASE \
         (SIGN_PASSPHRASE for --sign-key) to that key's passphrase"
    )]
    GpgBadPassphrase { home: String, keys: String },
}

/// A key id as the user gave it, normalized: upper-case hex without `0x` or spaces; `None` if it is not
/// 8, 16, 40 or 64 hex digits.
pub fn normalize_key_id(spec: &str) -> Option<String> {
    let s: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(&s);
    let ok = matches!(s.len(), 8 | 16 | 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| s.to_ascii_uppercase())
}

/// Reads every certificate (public or secret, armored or binary) in `path`.
pub fn load_certs(path: &Path) -> Result<Vec<Cert>, KeyError> {
    let load_err = |reason: String| KeyError::Load {
        path: path.display().to_string(),
        reason,
    };
    let parser = CertParser::from_file(path).map_err(|e| load_err(format!("{e:#}")))?;
    let mut certs = Vec::new();
    for c in parser {
        certs.push(c.map_err(|e| load_err(format!("not an OpenPGP key file ({e:#})")))?);
    }
    if certs.is_empty() {
        return Err(load_err("it holds no OpenPGP key".into()));
    }
    Ok(certs)
}

/// Reads the certificates of several files.
pub fn load_all(paths: &[impl AsRef<Path>]) -> Result<Vec<Cert>, KeyError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(load_certs(p.as_ref())?);
    }
    Ok(all)
}

/// True if the fingerprint (hex) of `fpr` ends with `id`, duplicity's test for "this key".
pub fn id_matches(fpr_hex: &str, id: &str) -> bool {
    fpr_hex.ends_with(id)
}

/// The certificate holding the key `spec` (a key id or fingerprint of its primary key or a subkey, or
/// the path of a key file), and the fingerprint of the key the id named.
fn find<'c>(
    spec: &str,
    certs: &'c [Cert],
    from_file: &'c mut Vec<Cert>,
    where_: &str,
    option: &'static str,
) -> Result<(&'c Cert, Option<String>), KeyError> {
    let Some(id) = normalize_key_id(spec) else {
        let path = Path::new(spec);
        if path.is_file() {
            *from_file = load_certs(path)?;
            if from_file.len() > 1 {
                return Err(KeyError::Ambiguous {
                    spec: spec.into(),
                    matches: format!("{} keys in the file", from_file.len()),
                });
            }
            return Ok((&from_file[0], None));
        }
        return Err(KeyError::BadKeyId(spec.into()));
    };
    let mut found: Vec<(&Cert, String)> = Vec::new();
    for cert in certs {
        if let Some(k) = cert
            .keys()
            .find(|k| id_matches(&k.key().fingerprint().to_hex(), &id))
        {
            // The same key in the public and the secret keyring is one key; keep the first.
            if !found
                .iter()
                .any(|(c, _)| c.fingerprint() == cert.fingerprint())
            {
                found.push((cert, k.key().fingerprint().to_hex()));
            }
        }
    }
    match found.len() {
        0 => Err(KeyError::NotFound {
            spec: spec.into(),
            where_: where_.into(),
            option,
        }),
        1 => {
            let (c, f) = found.remove(0);
            Ok((c, Some(f)))
        }
        _ => Err(KeyError::Ambiguous {
            spec: spec.into(),
            matches: found
                .iter()
                .map(|(c, _)| c.fingerprint().to_hex())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The policy keys are chosen under: what gpg 2.2 accepts (see the module documentation).
fn policy() -> &'static StandardPolicy<'static> {
    read_policy()
}

/// Hashes that current practice (sequoia's standard policy, RFC 9580) no longer accepts in signatures.
fn weak_hash(h: HashAlgorithm) -> bool {
    matches!(
        h,
        HashAlgorithm::SHA1 | HashAlgorithm::RipeMD | HashAlgorithm::MD5
    )
}

/// What is weak about using the (sub)key `k` of `vc`, if anything: an algorithm or size that current
/// practice deprecates (DSA, ElGamal, RSA below 2048 bits) for the key or its primary key, or SHA-1
/// self-signatures. gpg 2.2 and duplicity accept all of these, and so do we; the caller warns.
pub fn weakness(
    vc: &ValidCert<'_>,
    k: &ValidErasedKeyAmalgamation<'_, openpgp::packet::key::PublicParts>,
) -> Option<String> {
    use openpgp::crypto::mpi::PublicKey as M;
    let mut parts = Vec::new();
    let primary = vc.primary_key();
    let mut keys = vec![(
        "primary key",
        primary.key().mpis(),
        key_algo_name(primary.key()),
    )];
    if k.key().fingerprint() != primary.key().fingerprint() {
        keys.push(("subkey", k.key().mpis(), key_algo_name(k.key())));
    }
    for (role, mpis, name) in keys {
        let why = match mpis {
            M::RSA { n, .. } if n.bits() < 2048 => "RSA below 2048 bits can be factored",
            M::DSA { .. } => {
                "DSA is deprecated (RFC 9580) and gpg 1.x made it 1024 bits with SHA-1"
            }
            M::ElGamal { .. } => "ElGamal is deprecated (RFC 9580)",
            _ => continue,
        };
        parts.push(format!("its {role} is {name}: {why}"));
    }
    let sigs = [
        primary.binding_signature().hash_algo(),
        k.binding_signature().hash_algo(),
    ];
    if let Some(h) = sigs.into_iter().find(|h| weak_hash(*h)) {
        parts.push(format!(
            "its self-signatures use {h}, which current OpenPGP software rejects (sequoia since 2023)"
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Reports the weak keys a backup writes with (see [`weakness`]): a warning on stderr for each, or
/// with `refuse` (`--refuse-weak-keys`) an error for the first. Reading is never refused for this.
pub fn weak_key_policy(setup: KeySetup, refuse: bool) -> Result<KeySetup, KeyError> {
    let weak = setup.weak_keys();
    if let (true, Some((key, reason))) = (refuse, weak.first()) {
        return Err(KeyError::Weak {
            key: key.clone(),
            reason: reason.clone(),
        });
    }
    for (key, reason) in weak {
        crate::logging::warn(&format!(
            "key {key} is weak: {reason}. gpg and duplicity accept it, and \
             so does this backup; move to a new key (gpg --quick-gen-key NAME rsa3072, or ed25519 with \
             a cv25519 subkey), and pass --refuse-weak-keys to make this an error"
        ));
    }
    Ok(setup)
}

fn date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d")
        .to_string()
}

/// Why the certificate as a whole is unusable now, if it is.
fn cert_problem(cert: &Cert, now: SystemTime) -> Option<String> {
    let p = policy();
    if let RevocationStatus::Revoked(_) = cert.revocation_status(p, now) {
        return Some("it is revoked".into());
    }
    let vc = match cert.with_policy(p, now) {
        Ok(vc) => vc,
        // A key we cannot compute with has no self-signature we can check: say which algorithm.
        Err(_) if unsupported_algo(cert.primary_key().key()).is_some() => {
            return unsupported_algo(cert.primary_key().key())
        }
        Err(e) => return Some(format!("it has no valid self-signature ({e})")),
    };
    if vc.alive().is_err() || vc.primary_key().alive().is_err() {
        return Some(match vc.primary_key().key_expiration_time() {
            Some(t) if t <= now => format!("it expired on {}", date(t)),
            _ => "it is not valid now (expired or not yet valid)".into(),
        });
    }
    None
}

/// Why each key with `capable` flags is unusable now; empty if none has the capability.
fn key_problems(
    vc: &ValidCert<'_>,
    now: SystemTime,
    capable: impl Fn(&ValidErasedKeyAmalgamation<'_, openpgp::packet::key::PublicParts>) -> bool,
) -> Vec<String> {
    vc.keys()
        .filter(|k| capable(k))
        .map(|k| {
            let fpr = k.key().fingerprint().to_hex();
            if let RevocationStatus::Revoked(_) = k.revocation_status() {
                format!("its key {fpr} is revoked")
            } else if k.alive().is_err() {
                match k.key_expiration_time() {
                    Some(t) if t <= now => format!("its key {fpr} expired on {}", date(t)),
                    _ => format!("its key {fpr} is not valid now"),
                }
            } else if let Some(why) = unsupported_algo(k.key()) {
                format!("its key {fpr} cannot be used: {why}")
            } else {
                format!("its key {fpr} is unusable")
            }
        })
        .collect()
}

/// The encryption key of the certificate named by `spec`, searched in `certs` (the `--keyring` files) or
/// read from the key file `spec`. `hidden`: the PKESK will carry key id 0 (`--hidden-encrypt-key`).
pub fn recipient(
    spec: &str,
    certs: &[Cert],
    hidden: bool,
    now: SystemTime,
) -> Result<Recipient, KeyError> {
    let mut from_file = Vec::new();
    let (cert, matched) = find(spec, certs, &mut from_file, "--keyring", "--keyring")?;
    let label = cert.fingerprint().to_hex();
    let refuse = |reason: String| KeyError::CannotEncrypt {
        key: label.clone(),
        reason,
    };
    if let Some(why) = cert_problem(cert, now) {
        return Err(refuse(why));
    }
    let vc = cert
        .with_policy(policy(), now)
        .map_err(|e| refuse(e.to_string()))?;
    let usable: Vec<_> = vc
        .keys()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .filter(|k| unsupported_algo(k.key()).is_none())
        .collect();
    let chosen = usable
        .iter()
        .find(|k| Some(k.key().fingerprint().to_hex()) == matched)
        .or_else(|| usable.iter().max_by_key(|k| k.key().creation_time()));
    match chosen {
        Some(k) => Ok(Recipient {
            key: k.key().clone().role_into_unspecified(),
            hidden,
            weakness: weakness(&vc, k),
            cert: label,
        }),
        None => {
            let problems = key_problems(&vc, now, |k| {
                k.for_transport_encryption() || k.for_storage_encryption()
            });
            Err(refuse(if problems.is_empty() {
                "it has no encryption key (it is a signing-only key): add an encryption subkey or use another key"
                    .into()
            } else {
                problems.join(", ")
            }))
        }
    }
}

/// The signing key named by `spec`, from `secret` (the `--secret-keyring` files), unlocked with
/// `passphrase` if its secret is protected.
pub fn signing_key(
    spec: &str,
    secret: &[Cert],
    passphrase: Option<&Passphrase>,
    now: SystemTime,
) -> Result<Arc<SigningKey>, KeyError> {
    let mut from_file = Vec::new();
    let (cert, matched) = find(
        spec,
        secret,
        &mut from_file,
        "--secret-keyring",
        "--secret-keyring",
    )?;
    let label = cert.fingerprint().to_hex();
    let refuse = |reason: String| KeyError::CannotSign {
        key: label.clone(),
        reason,
    };
    if let Some(why) = cert_problem(cert, now) {
        return Err(refuse(why));
    }
    let vc = cert
        .with_policy(policy(), now)
        .map_err(|e| refuse(e.to_string()))?;
    let usable: Vec<_> = vc
        .keys()
        .alive()
        .revoked(false)
        .for_signing()
        .filter(|k| unsupported_algo(k.key()).is_none() && !is_elgamal(k.key().pk_algo()))
        .collect();
    // Keys whose secret is really in the file first: gpg's stubs (smartcard, --export-secret-subkeys)
    // carry none.
    let real_secret = |k: &&ValidErasedKeyAmalgamation<'_, _>| {
        k.key()
            .clone()
            .parts_into_secret()
            .is_ok_and(|s| !secret_is_stub(&s.role_into_unspecified()))
    };
    let with_secret: Vec<_> = usable.iter().filter(real_secret).collect();
    let chosen = with_secret
        .iter()
        .find(|k| Some(k.key().fingerprint().to_hex()) == matched)
        .or_else(|| with_secret.iter().max_by_key(|k| k.key().creation_time()))
        .copied()
        .or_else(|| usable.iter().max_by_key(|k| k.key().creation_time()));
    let Some(k) = chosen else {
        let problems = key_problems(&vc, now, |k| k.for_signing());
        return Err(refuse(if problems.is_empty() {
            "it has no signing key".into()
        } else {
            problems.join(", ")
        }));
    };
    let fingerprint = k.key().fingerprint();
    let weak = weakness(&vc, k);
    let key = k
        .key()
        .clone()
        .parts_into_secret()
        .map_err(|_| {
            refuse(
                "--secret-keyring holds only its public part: export it with gpg --export-secret-keys"
                    .into(),
            )
        })?
        .role_into_unspecified();
    if secret_is_stub(&key) {
        return Err(refuse(
            "--secret-keyring holds only a stub of its secret part (gpg writes one for a key on a \
             smartcard or left out by --export-secret-subkeys): pass the real secret key, exported with \
             gpg --export-secret-keys"
                .into(),
        ));
    }
    let key = if key.has_unencrypted_secret() {
        key
    } else {
        let p = passphrase.ok_or_else(|| KeyError::NoSignPassphrase { key: label.clone() })?;
        key.decrypt_secret(p.password())
            .map_err(|_| KeyError::BadSignPassphrase { key: label.clone() })?
    };
    let keypair = key.into_keypair().map_err(|e| refuse(e.to_string()))?;
    Ok(Arc::new(SigningKey {
        keypair,
        fingerprint,
        cert: label,
        weakness: weak,
    }))
}

/// Finds the certificate of a signing key id for checking signatures, in `certs`.
pub fn has_key(id: &str, certs: &[Cert]) -> bool {
    certs.iter().any(|c| {
        c.keys()
            .any(|k| id_matches(&k.key().fingerprint().to_hex(), id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        assert_eq!(normalize_key_id("0xab12cd34").as_deref(), Some("AB12CD34"));
        assert_eq!(
            normalize_key_id("1234 5678 9ABC DEF0").as_deref(),
            Some("123456789ABCDEF0")
        );
        assert!(normalize_key_id("xyz").is_none());
        assert!(normalize_key_id("12345").is_none());
        assert!(id_matches(
            "00112233445566778899AABBCCDDEEFF00112233",
            "CCDDEEFF00112233"
        ));
    }

    #[test]
    fn policy_is_usable() {
        let _: &dyn openpgp::policy::Policy = policy();
    }
}
