//! Trusted dealer and key import (`split`), behind the `dealer` feature: one process sees the whole key, a
//! single point of failure. Prefer the distributed key generation.

use std::collections::BTreeMap;

use p256::Scalar;
use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::group::{self, Polynomial};
use super::key::KeyShare;
use super::{Error, check_params};
use crate::id::SignerId;

/// Makes a fresh key and Shamir-shares it among `n` parties with quorum `k` (`n >= 2k - 1`).
pub fn deal(k: u16, n: u16, rng: &mut impl CryptoRng) -> Result<Vec<KeyShare>, Error> {
    let mut x = group::random_nonzero_scalar(rng);
    let out = share_secret(&x, k, n, rng);
    x.zeroize();
    out
}

/// Imports an existing P-256 private key (SEC1 `ECPrivateKey` or PKCS#8 DER) and shares it among `n` parties
/// with quorum `k`.
pub fn split(
    private_key_der: &[u8],
    k: u16,
    n: u16,
    rng: &mut impl CryptoRng,
) -> Result<Vec<KeyShare>, Error> {
    let sk = p256::SecretKey::from_der(private_key_der)
        .map_err(|_| Error::InvalidKeyShare("not a P-256 private key in SEC1 or PKCS#8 DER"))?;
    split_secret_key(&sk, k, n, rng)
}

/// Shares an existing P-256 private key (already parsed, e.g. by [`crate::import`]) among `n` parties with quorum
/// `k`; the group public key is the key's own.
pub fn split_secret_key(
    sk: &p256::SecretKey,
    k: u16,
    n: u16,
    rng: &mut impl CryptoRng,
) -> Result<Vec<KeyShare>, Error> {
    let mut x: Scalar = *sk.to_nonzero_scalar();
    let out = share_secret(&x, k, n, rng);
    x.zeroize();
    out
}

fn share_secret(x: &Scalar, k: u16, n: u16, rng: &mut impl CryptoRng) -> Result<Vec<KeyShare>, Error> {
    check_params(k, n)?;
    let f = Polynomial::random(*x, k - 1, rng);
    let ids: Vec<SignerId> = (1..=n).filter_map(SignerId::new).collect();
    let mut secrets: Vec<Scalar> = ids.iter().map(|j| f.eval(*j)).collect();
    let public_shares: BTreeMap<SignerId, p256::ProjectivePoint> = ids
        .iter()
        .zip(&secrets)
        .map(|(j, s)| (*j, group::mul_g(s)))
        .collect();
    let public_key = group::mul_g(x);
    let out = ids
        .iter()
        .zip(&secrets)
        .map(|(j, s)| KeyShare::new(*j, k, n, *s, public_key, public_shares.clone()))
        .collect();
    secrets.zeroize();
    out
}
