//! ElGamal encryption of OpenPGP session keys (public-key algorithm 16, RFC 4880 5.1 and 13.1).
//!
//! Why hand-written: gpg 1.x's default key was DSA with an ElGamal encryption subkey, and years of
//! duplicity backups are encrypted to such subkeys, but sequoia's nettle backend implements no ElGamal.
//! Only the two operations OpenPGP needs are here: c1 = g^k, c2 = m·y^k (mod p) to write, and
//! m = c2·c1^(p-1-x) (mod p) to read, with the session key framed in EME-PKCS1-v1_5. The arithmetic is
//! num-bigint's; nothing here is constant-time, which is acceptable for decrypting one's own backups on
//! one's own machine (the issue of timing side channels is a remote oracle, which a restore is not).
//! Errors never contain key material or plaintext, only what is wrong with the input's shape.
//!
//! Inputs are big-endian unsigned integers as OpenPGP MPIs hold them; every one is checked against p
//! before use, so malformed keys or ciphertexts give errors, never panics (see fuzz/fuzz_targets/elgamal.rs).

use num_bigint::BigUint;
use sequoia_openpgp as openpgp;

use openpgp::crypto::{self, SessionKey};
use openpgp::types::SymmetricAlgorithm;

use super::CryptoError;

/// Smallest modulus we accept: gpg never made ElGamal keys below 768 bits; this only keeps the padding
/// arithmetic meaningful (EME-PKCS1 needs 11 octets more than the message).
const MIN_P_BITS: u64 = 512;
/// Largest modulus we accept (gpg's maximum is 4096 bits); bounds the work on hostile input.
const MAX_P_BITS: u64 = 8192;

fn malformed(what: &str) -> CryptoError {
    CryptoError::Malformed(format!("ElGamal {what}"))
}

/// The modulus p as a number, checked to be usable.
fn modulus(p: &[u8]) -> Result<BigUint, CryptoError> {
    let p = BigUint::from_bytes_be(p);
    if p.bits() < MIN_P_BITS || p.bits() > MAX_P_BITS || !p.bit(0) {
        return Err(malformed(
            "key: its prime p has an impossible size or is even",
        ));
    }
    Ok(p)
}

/// A number from `bytes` that must lie in [1, p-1].
fn element(bytes: &[u8], p: &BigUint, what: &str) -> Result<BigUint, CryptoError> {
    let v = BigUint::from_bytes_be(bytes);
    if v == BigUint::ZERO || &v >= p {
        return Err(malformed(what));
    }
    Ok(v)
}

/// The OpenPGP session-key checksum: the sum of the key octets modulo 65536.
fn checksum(key: &[u8]) -> u16 {
    key.iter().fold(0u16, |s, b| s.wrapping_add(u16::from(*b)))
}

/// Decrypts the session key of a PKESK made to the ElGamal key (p, x): `c1`, `c2` are the PKESK's two
/// MPIs (g^k and m·y^k). Returns the symmetric algorithm and the session key.
pub fn decrypt(
    p: &[u8],
    x: &[u8],
    c1: &[u8],
    c2: &[u8],
) -> Result<(SymmetricAlgorithm, SessionKey), CryptoError> {
    let p = modulus(p)?;
    let one = BigUint::from(1u8);
    let p_minus_1 = &p - &one;
    let x = BigUint::from_bytes_be(x);
    if x == BigUint::ZERO || x >= p_minus_1 {
        return Err(malformed("secret key: its exponent is out of range"));
    }
    let c1 = element(c1, &p, "ciphertext: its first number is out of range")?;
    let c2 = element(c2, &p, "ciphertext: its second number is out of range")?;
    // c1^(p-1-x) is the inverse of c1^x (Fermat, p prime), so no modular inversion is needed.
    let m = (c2 * c1.modpow(&(&p_minus_1 - &x), &p)) % &p;
    let k = p.bits().div_ceil(8) as usize;
    let digits = m.to_bytes_be();
    if digits.len() > k {
        return Err(malformed(
            "ciphertext: it decrypts to more than the modulus",
        ));
    }
    // EM = 0x00 0x02 PS 0x00 M, k octets; the leading zero octet is not among m's digits.
    let mut em: SessionKey = vec![0u8; k].into();
    em[k - digits.len()..].copy_from_slice(&digits);
    unpad(&em)
}

/// EME-PKCS1-v1_5 decoding and the session key framing (algorithm octet, key, checksum).
fn unpad(em: &[u8]) -> Result<(SymmetricAlgorithm, SessionKey), CryptoError> {
    // A wrong key gives random octets: all of these say "not for this key".
    let wrong = || CryptoError::Malformed("ElGamal session key: bad padding (wrong key?)".into());
    if em.len() < 11 || em[0] != 0 || em[1] != 2 {
        return Err(wrong());
    }
    let sep = em[2..].iter().position(|b| *b == 0).ok_or_else(wrong)? + 2;
    // At least eight padding octets.
    if sep < 10 {
        return Err(wrong());
    }
    let framed = &em[sep + 1..];
    if framed.len() < 3 {
        return Err(wrong());
    }
    let algo = SymmetricAlgorithm::from(framed[0]);
    let key = &framed[1..framed.len() - 2];
    if algo.key_size().ok() != Some(key.len()) {
        return Err(wrong());
    }
    let sum = u16::from_be_bytes([framed[framed.len() - 2], framed[framed.len() - 1]]);
    if sum != checksum(key) {
        return Err(wrong());
    }
    Ok((algo, key.into()))
}

/// Encrypts `session_key` for `algo` to the ElGamal public key (p, g, y): returns the PKESK's two MPIs
/// (c1, c2) as big-endian octets.
pub fn encrypt(
    p: &[u8],
    g: &[u8],
    y: &[u8],
    algo: SymmetricAlgorithm,
    session_key: &SessionKey,
) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let p = modulus(p)?;
    let g = element(g, &p, "key: its generator is out of range")?;
    let y = element(y, &p, "key: its public value is out of range")?;
    let k_len = p.bits().div_ceil(8) as usize;
    // M = algorithm octet, key, checksum; EM = 0x00 0x02 PS 0x00 M with PS nonzero random octets.
    let m_len = 1 + session_key.len() + 2;
    if m_len + 11 > k_len {
        return Err(CryptoError::Encrypt(
            "the ElGamal key is too small for the session key".into(),
        ));
    }
    let mut em: SessionKey = vec![0u8; k_len].into();
    em[1] = 2;
    let ps_end = k_len - m_len - 1;
    random_nonzero(&mut em[2..ps_end])?;
    em[ps_end + 1] = algo.into();
    em[ps_end + 2..k_len - 2].copy_from_slice(session_key);
    em[k_len - 2..].copy_from_slice(&checksum(session_key).to_be_bytes());
    let m = BigUint::from_bytes_be(&em);

    // The ephemeral exponent k, uniform enough in [1, p-2]: 64 extra random bits before the reduction.
    let mut k_bytes: SessionKey = vec![0u8; k_len + 8].into();
    random(&mut k_bytes)?;
    let two = BigUint::from(2u8);
    let k = BigUint::from_bytes_be(&k_bytes) % (&p - &two) + BigUint::from(1u8);
    let c1 = g.modpow(&k, &p);
    let c2 = (m * y.modpow(&k, &p)) % &p;
    Ok((c1.to_bytes_be(), c2.to_bytes_be()))
}

fn random(buf: &mut [u8]) -> Result<(), CryptoError> {
    crypto::random(buf).map_err(|e| CryptoError::Encrypt(format!("random numbers: {e}")))
}

fn random_nonzero(buf: &mut [u8]) -> Result<(), CryptoError> {
    random(buf)?;
    for b in buf.iter_mut() {
        while *b == 0 {
            let mut one = [0u8];
            random(&mut one)?;
            *b = one[0];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy group for the unit tests only (the integration tests use keys gpg made): p = 2q+1 with q
    /// prime is not needed for correctness of the algebra, only p prime. This p is the 521-bit Mersenne
    /// prime 2^521 - 1, and g = 3.
    fn group() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let p = (BigUint::from(1u8) << 521u32) - BigUint::from(1u8);
        let g = BigUint::from(3u8);
        let x = BigUint::from_bytes_be(&[0x5a; 40]);
        let y = g.modpow(&x, &p);
        (
            p.to_bytes_be(),
            g.to_bytes_be(),
            x.to_bytes_be(),
            y.to_bytes_be(),
        )
    }

    #[test]
    fn round_trip() {
        let (p, g, x, y) = group();
        let sk: SessionKey = vec![7u8; 32].into();
        let (c1, c2) = encrypt(&p, &g, &y, SymmetricAlgorithm::AES256, &sk).unwrap();
        let (algo, out) = decrypt(&p, &x, &c1, &c2).unwrap();
        assert_eq!(algo, SymmetricAlgorithm::AES256);
        assert_eq!(&out[..], &sk[..]);
    }

    #[test]
    fn wrong_key_and_garbage_are_errors() {
        let (p, g, x, y) = group();
        let sk: SessionKey = vec![1u8; 16].into();
        let (c1, c2) = encrypt(&p, &g, &y, SymmetricAlgorithm::AES128, &sk).unwrap();
        let mut other = x.clone();
        other[5] ^= 1;
        assert!(decrypt(&p, &other, &c1, &c2).is_err());
        assert!(decrypt(&p, &x, &[], &c2).is_err());
        assert!(decrypt(&p, &x, &p, &c2).is_err());
        assert!(decrypt(&[4, 0], &x, &c1, &c2).is_err());
        assert!(decrypt(&p, &[], &c1, &c2).is_err());
    }
}
