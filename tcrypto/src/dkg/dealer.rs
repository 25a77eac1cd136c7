//! The trusted dealer, key import (`split`) and key reconstruction — behind the `dealer` feature because one
//! process sees the whole private key (a single point of failure). Prefer the DKG.
//!
//! Shamir sharing with Feldman commitments: the dealer samples `f(x) = s + Σ_{j=1}^{k-1} a_j x^j`, gives `x_i =
//! f(i)` to party `i` and publishes `(s·G, a_1·G, ..)`; the result has the same form as a DKG result.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{Curve, Error, KeyShare, PublicKeySet, curve};
use crate::id::SignerId;

/// Deals a fresh random key to `participants` with threshold `threshold`.
pub fn deal<C: Curve>(
    threshold: u16,
    participants: impl IntoIterator<Item = SignerId>,
    rng: &mut impl CryptoRng,
) -> Result<(PublicKeySet<C>, Vec<KeyShare<C>>), Error> {
    let secret = Zeroizing::new(C::random_nonzero_scalar(rng));
    split::<C>(&secret, threshold, participants, rng)
}

/// Splits an existing private key `secret` (non-zero) into shares for `participants` with threshold `threshold`.
pub fn split<C: Curve>(
    secret: &C::Scalar,
    threshold: u16,
    participants: impl IntoIterator<Item = SignerId>,
    rng: &mut impl CryptoRng,
) -> Result<(PublicKeySet<C>, Vec<KeyShare<C>>), Error> {
    let params = super::Parameters::new(crate::SessionId([0; 32]), threshold, participants)?;
    if *secret == C::zero() {
        return Err(Error::InvalidParameters("the private key is zero"));
    }
    let mut coefficients = Zeroizing::new(vec![*secret]);
    for _ in 1..threshold {
        coefficients.push(C::random_nonzero_scalar(rng));
    }
    let commitments: Vec<C::Point> = coefficients.iter().map(C::mul_base).collect();
    let public = PublicKeySet::from_commitments(threshold, &params.participants, commitments)
        .map_err(Error::InvalidResult)?;
    let shares = params
        .participants
        .iter()
        .map(|id| {
            KeyShare::new(*id, curve::evaluate::<C>(&coefficients, id.get()), public.clone())
                .map_err(Error::InvalidResult)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((public, shares))
}

/// Reconstructs the private key from at least `k` shares of the same key (Lagrange interpolation at 0).
///
/// Refuses fewer than `k` shares, shares of different keys, and duplicate ids.
pub fn reconstruct<C: Curve>(shares: &[KeyShare<C>]) -> Result<Zeroizing<C::Scalar>, Error> {
    let first = shares.first().ok_or(Error::InvalidParameters("no shares"))?;
    let ids: BTreeSet<u16> = shares.iter().map(|s| s.id().get()).collect();
    if ids.len() != shares.len() {
        return Err(Error::InvalidParameters("duplicate share ids"));
    }
    if shares.len() < usize::from(first.threshold()) {
        return Err(Error::InvalidParameters("fewer than k shares"));
    }
    if shares.iter().any(|s| s.public() != first.public()) {
        return Err(Error::InvalidParameters("shares of different keys"));
    }
    let ids: Vec<u16> = ids.into_iter().collect();
    let mut secret = Zeroizing::new(C::zero());
    for s in shares {
        let lambda = curve::lagrange_at_zero::<C>(s.id().get(), &ids)
            .ok_or(Error::InvalidParameters("duplicate share ids"))?;
        *secret = *secret + lambda * *s.secret();
    }
    if C::mul_base(&secret) != first.public_key() {
        return Err(Error::InvalidResult(
            "reconstructed key does not match the public key",
        ));
    }
    Ok(secret)
}
