//! The combiner (DKLs23's three-round signing protocol, output): `s = Σ w_i / Σ u_i`, `r = x(R) mod q`, and the
//! signature is verified with the public key before it is returned. A failed verification aborts without
//! naming anyone (DKLs23 has no per-party check of `u_i`, `w_i`); nothing invalid is ever released.

use std::collections::BTreeMap;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::{ProjectivePoint, Scalar};

use super::round1::SignParams;
use super::round3::PartialSignature;
use super::{Error, Fault};
use crate::ecdsa::group;
use crate::ecdsa::sign::{MAX_DIGEST_LEN, MIN_DIGEST_LEN};
use crate::ecdsa::{Combined, PreparedKey};
use crate::id::SignerId;

/// Combines the partial signatures of every member of the signing set (keyed by the authenticated sender)
/// and verifies the result under `verifying_key` (`p256`'s verifier) for the prehashed `digest`.
pub fn combine(
    verifying_key: &p256::ecdsa::VerifyingKey,
    params: &SignParams,
    digest: &[u8],
    partials: &BTreeMap<SignerId, PartialSignature>,
) -> Result<Combined, Error> {
    combine_verified(params, digest, partials, |sig| {
        verifying_key.verify_prehash(digest, sig).is_ok()
    })
}

/// [`combine()`] with a [`PreparedKey`] (the same checks; the verification reuses the key's table of `X`,
/// about half the cost of `p256`'s): for a coordinator that combines many signatures under one key.
pub fn combine_with(
    key: &PreparedKey,
    params: &SignParams,
    digest: &[u8],
    partials: &BTreeMap<SignerId, PartialSignature>,
) -> Result<Combined, Error> {
    combine_verified(params, digest, partials, |sig| key.verify_prehash(digest, sig))
}

fn combine_verified(
    params: &SignParams,
    digest: &[u8],
    partials: &BTreeMap<SignerId, PartialSignature>,
    verify: impl Fn(&p256::ecdsa::Signature) -> bool,
) -> Result<Combined, Error> {
    if !(MIN_DIGEST_LEN..=MAX_DIGEST_LEN).contains(&digest.len()) {
        return Err(Error::Misuse("digest length must be 16..=64 bytes"));
    }
    let mut culprits: Vec<(SignerId, Fault)> = partials
        .keys()
        .filter(|j| !params.signers.contains(j))
        .map(|j| (*j, Fault::UnknownSender))
        .collect();
    culprits.extend(
        partials
            .iter()
            .filter(|(j, p)| params.signers.contains(j) && p.session != params.session)
            .map(|(j, _)| (*j, Fault::Malformed)),
    );
    super::check_culprits(culprits)?;
    let missing: Vec<SignerId> = params
        .signers
        .iter()
        .filter(|j| !partials.contains_key(j))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingMessages(missing));
    }
    let mut values = partials.values();
    let big_r = values
        .next()
        .map(|p| p.big_r)
        .ok_or(Error::Misuse("empty signing set"))?;
    if values.any(|p| p.big_r != big_r) {
        return Err(Error::InvalidSignature("the signers disagree on R"));
    }
    if big_r == ProjectivePoint::IDENTITY {
        return Err(Error::Degenerate("R is the identity"));
    }
    let u: Scalar = partials.values().map(|p| p.u).sum();
    let w: Scalar = partials.values().map(|p| p.w).sum();
    let u_inv: Scalar = Option::from(u.invert()).ok_or(Error::Degenerate("Σ u_i = 0"))?;
    let r = group::x_coordinate_scalar(&big_r);
    let s = w * u_inv;
    let signature = p256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes())
        .map_err(|_| Error::Degenerate("r = 0 or s = 0"))?;
    if !verify(&signature) {
        return Err(Error::InvalidSignature("does not verify under the public key"));
    }
    Ok(Combined {
        signature,
        culprits: Vec::new(),
    })
}
