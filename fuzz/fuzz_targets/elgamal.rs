//! ElGamal session-key decryption (src/engine/crypto/elgamal.rs, hand-written because sequoia's nettle
//! backend has no ElGamal): the PKESK's two numbers come from a backup target, the key from the user's
//! keyring. Any p, x, c1, c2 must give a session key or an error, never a panic or a hang. Input: three
//! length octets (p, x, c1; each length is the octet + 1), then p, x, c1, and c2 as the rest.
#![no_main]

use duplicity_charm::engine::crypto::elgamal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((lens, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let mut rest = rest;
    let mut parts = [&[][..]; 3];
    for (part, n) in parts.iter_mut().zip(lens) {
        let (a, b) = rest.split_at((usize::from(*n) + 1).min(rest.len()));
        *part = a;
        rest = b;
    }
    let _ = elgamal::decrypt(parts[0], parts[1], parts[2], rest);
});
