//! The symmetric primitives of this module: a domain-separated hash (SHA-256 over length-prefixed fields, as
//! the random oracle `H` of the papers and as KOS15's correlation-robust hash), and a PRG (the ChaCha20
//! keystream of RFC 8439 with a zero nonce, keyed by a hash of the seed and of the context the expansion is
//! for, so that one seed never expands the same output for two contexts).
//!
//! Known answers: SHA-256 (FIPS 180-4) and ChaCha20 (RFC 7539 appendix A.1, vector 1) vectors in the tests.

use chacha20::ChaCha20Rng;
use p256::Scalar;
use p256::elliptic_curve::PrimeField as _;
use rand_core::{Rng as _, SeedableRng as _};
use sha2::Digest as _;
use zeroize::Zeroize as _;

/// A domain-separated SHA-256: a length-prefixed label, then fixed-size fields (each label has one layout).
#[derive(Clone)]
pub(crate) struct Hash(sha2::Sha256);

impl Hash {
    /// Starts a hash for `label` (prefixed with this module's protocol name and version).
    pub(crate) fn new(label: &'static str) -> Self {
        let mut h = sha2::Sha256::new();
        let name = b"tcrypto/ecdsa-p256/dkls23/v1";
        h.update((name.len() as u32).to_be_bytes());
        h.update(name);
        h.update((label.len() as u32).to_be_bytes());
        h.update(label.as_bytes());
        Self(h)
    }

    /// Appends a fixed-size field (its length is implied by the label's layout).
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.update(b);
        self
    }

    /// Appends a big-endian `u32`.
    pub(crate) fn u32(self, v: u32) -> Self {
        self.raw(&v.to_be_bytes())
    }

    /// The digest.
    pub(crate) fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Fills `out` with the ChaCha20 keystream of `key` (zero nonce, block counter 0).
pub(crate) fn expand(key: &[u8; 32], out: &mut [u8]) {
    let mut rng = ChaCha20Rng::from_seed(*key);
    rng.fill_bytes(out);
}

/// Fills `out` with scalars uniform in `[0, q)` drawn from the ChaCha20 keystream of `key`: 32-byte
/// big-endian candidates, rejecting those `>= q` (probability about `2^-32` each; a rejection only skips a
/// discarded value, so its timing reveals nothing about the kept ones).
pub(crate) fn scalars(key: &[u8; 32], out: &mut [Scalar]) {
    let mut rng = ChaCha20Rng::from_seed(*key);
    let mut buf = [0u8; 32];
    for s in out.iter_mut() {
        loop {
            rng.fill_bytes(&mut buf);
            if let Some(v) = Option::<Scalar>::from(Scalar::from_repr(buf.into())) {
                *s = v;
                break;
            }
        }
    }
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha20_keystream_matches_rfc_7539_appendix_a1_vector_1() {
        // RFC 7539 A.1 test vector #1: key 0^32, nonce 0^12, block counter 0.
        let mut out = [0u8; 64];
        expand(&[0u8; 32], &mut out);
        assert_eq!(
            hex::encode(out),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
        );
    }

    #[test]
    fn hash_is_sha256_over_the_documented_layout() {
        // The layout written out by hand and hashed by sha2 directly (FIPS 180-4 SHA-256).
        let mut manual = Vec::new();
        let name = b"tcrypto/ecdsa-p256/dkls23/v1";
        manual.extend_from_slice(&(name.len() as u32).to_be_bytes());
        manual.extend_from_slice(name);
        manual.extend_from_slice(&4u32.to_be_bytes());
        manual.extend_from_slice(b"test");
        manual.extend_from_slice(b"abc");
        manual.extend_from_slice(&7u32.to_be_bytes());
        let want: [u8; 32] = sha2::Sha256::digest(&manual).into();
        assert_eq!(Hash::new("test").raw(b"abc").u32(7).finish(), want);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scalars_are_the_keystream_read_as_canonical_big_endian_values() {
        let key = [7u8; 32];
        let mut stream = [0u8; 96];
        expand(&key, &mut stream);
        let mut s = [Scalar::ZERO; 3];
        scalars(&key, &mut s);
        for (i, v) in s.iter().enumerate() {
            // A uniform 256-bit value is >= q with probability 2^-32: not for this fixed key.
            assert_eq!(v.to_bytes().as_slice(), &stream[32 * i..32 * (i + 1)]);
        }
    }
}
