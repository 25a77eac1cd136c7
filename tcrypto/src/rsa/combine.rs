//! The combiner's step (Shoup 2000, §3 "Combining shares"), optimistic.
//!
//! From any `k` shares with ids `S`: `w = Π_{i∈S} x_i^{2λ_i}` with `λ_i = Δ·Π_{j∈S∖{i}} j/(j−i)` (an integer), so
//! `w^e = x^{e'}` for `e' = 4Δ²`; with `a·e' + b·e = 1` (extended Euclid, `e` is a prime greater than `n`),
//! `y = w^a x^b` satisfies `y^e = x`. The combiner first tries the first `k` shares that pass the cheap structural
//! checks and releases `y` only if `y^e = x`. Only when that fails does it verify every proof, name every culprit
//! and combine again from `k` shares whose proofs verify. A signature that does not verify is never returned.

use std::collections::BTreeMap;

use crypto_bigint::modular::BoxedMontyForm;

use super::Error;
use super::encoding::MessageEncoding;
use super::keys::PublicKeySet;
use super::math::{fixed_be, lagrange_at_zero, pow_vartime};
use super::share::{ShareContext, SignatureShare};
use super::verify::{ShareFault, check_share_range, verify_proof};
use crate::{SessionId, SignerId};

/// A verified signature, and the signers whose shares were found bad on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The RSA signature, [`PublicKeySet::signature_len`] bytes; `signature^e mod N` equals the encoded message.
    pub signature: Vec<u8>,
    /// Signers whose shares were rejected, in id order (empty on the happy path).
    pub culprits: Vec<SignerId>,
    /// Why each culprit's share was rejected.
    pub faults: BTreeMap<SignerId, ShareFault>,
}

/// Combines the shares received for request `session` on `msg` into a signature; `shares` is keyed by the sender's
/// identity from the authenticated channel.
///
/// Returns [`Error::Culprits`] naming every misbehaving signer when fewer than `k` valid shares remain, and
/// [`Error::NotEnoughShares`] when fewer than `k` shares were given at all.
pub fn combine(
    pk: &PublicKeySet,
    session: &SessionId,
    msg: &MessageEncoding,
    shares: &BTreeMap<SignerId, SignatureShare>,
) -> Result<Combined, Error> {
    combine_with_faults(pk, session, msg, shares, BTreeMap::new())
}

/// Like [`combine`], for shares still in their encoded form: a share that does not decode is a fault of its sender.
pub fn combine_encoded(
    pk: &PublicKeySet,
    session: &SessionId,
    msg: &MessageEncoding,
    shares: &BTreeMap<SignerId, Vec<u8>>,
) -> Result<Combined, Error> {
    let mut decoded = BTreeMap::new();
    let mut faults = BTreeMap::new();
    for (&sender, bytes) in shares {
        match SignatureShare::decode(bytes) {
            Ok(share) => {
                decoded.insert(sender, share);
            }
            Err(Error::Decode(e)) => {
                faults.insert(sender, ShareFault::Undecodable(e));
            }
            Err(_) => {
                faults.insert(
                    sender,
                    ShareFault::Undecodable(crate::codec::DecodeError::Invalid("share")),
                );
            }
        }
    }
    combine_with_faults(pk, session, msg, &decoded, faults)
}

fn combine_with_faults(
    pk: &PublicKeySet,
    session: &SessionId,
    msg: &MessageEncoding,
    shares: &BTreeMap<SignerId, SignatureShare>,
    mut faults: BTreeMap<SignerId, ShareFault>,
) -> Result<Combined, Error> {
    let ctx = ShareContext::new(pk, msg)?;
    let k = usize::from(pk.threshold());

    let mut candidates = Vec::with_capacity(shares.len());
    for (&sender, share) in shares {
        match check_share_range(pk, sender, share) {
            Ok(x_i) => candidates.push((sender, share, x_i)),
            Err(fault) => {
                faults.insert(sender, fault);
            }
        }
    }
    if candidates.len() < k {
        return Err(not_enough(faults, candidates.len(), k));
    }

    // Optimistic: the first k structurally valid shares.
    let subset: Vec<_> = candidates[..k].iter().map(|(id, _, x)| (*id, x)).collect();
    if let Some(signature) = interpolate(pk, &ctx, &subset)? {
        return Ok(done(signature, faults));
    }

    // Pessimistic: verify every proof, name every culprit.
    let mut valid = Vec::with_capacity(candidates.len());
    for (sender, share, x_i) in &candidates {
        match verify_proof(pk, session, &ctx, *sender, share, x_i) {
            Ok(()) => valid.push((*sender, x_i)),
            Err(fault) => {
                faults.insert(*sender, fault);
            }
        }
    }
    if valid.len() < k {
        return Err(not_enough(faults, valid.len(), k));
    }
    match interpolate(pk, &ctx, &valid[..k])? {
        Some(signature) => Ok(done(signature, faults)),
        None if !bool::from(ctx.x_mont.invert_vartime().is_some()) => {
            Err(Error::Encoding("message representative shares a factor with N"))
        }
        None => Err(Error::Internal(
            "shares with valid proofs did not combine (inconsistent public key set)",
        )),
    }
}

fn done(signature: Vec<u8>, faults: BTreeMap<SignerId, ShareFault>) -> Combined {
    Combined {
        signature,
        culprits: faults.keys().copied().collect(),
        faults,
    }
}

fn not_enough(faults: BTreeMap<SignerId, ShareFault>, valid: usize, needed: usize) -> Error {
    if faults.is_empty() {
        Error::NotEnoughShares { got: valid, needed }
    } else {
        Error::Culprits {
            culprits: faults.keys().copied().collect(),
            faults,
            valid,
            needed,
        }
    }
}

/// `y = w^a x^b` from exactly `k` shares; `Some(signature)` only if `y^e = x`.
///
/// `w = P / Q` with `P` the product of the `x_i^{2λ_i}` with `λ_i > 0` and `Q` that of the `x_i^{2|λ_i|}` with
/// `λ_i < 0`; as `b ≤ 0`, `y = P^a · (Q^a · x^{|b|})^{-1}`: one modular inversion per combination. `None` also when
/// that inversion does not exist (a share or `x` shares a factor with `N`), so the caller falls back to the proofs.
fn interpolate(
    pk: &PublicKeySet,
    ctx: &ShareContext,
    subset: &[(SignerId, &BoxedMontyForm)],
) -> Result<Option<Vec<u8>>, Error> {
    let ids: Vec<u16> = subset.iter().map(|(id, _)| id.get()).collect();
    let mut numerator = BoxedMontyForm::one(pk.params());
    let mut denominator = BoxedMontyForm::one(pk.params());
    for (id, x_i) in subset {
        let lambda = lagrange_at_zero(pk.delta(), &ids, id.get())
            .ok_or(Error::Internal("Lagrange coefficient not integral"))?;
        let term = pow_vartime(&x_i.square(), &lambda.magnitude);
        if lambda.negative {
            denominator = denominator.mul(&term);
        } else {
            numerator = numerator.mul(&term);
        }
    }
    let (a, b) = pk.combination_exponents();
    let divisor = pow_vartime(&denominator, a).mul(&pow_vartime(&ctx.x_mont, b));
    let Some(divisor_inv) = divisor.invert_vartime().into_option() else {
        return Ok(None);
    };
    let y = pow_vartime(&numerator, a).mul(&divisor_inv);
    let check = pow_vartime(&y, &crypto_bigint::BoxedUint::from(pk.public_exponent()));
    if check == ctx.x_mont {
        Ok(Some(fixed_be(&y.retrieve(), pk.signature_len())))
    } else {
        Ok(None)
    }
}
