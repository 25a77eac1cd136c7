//! The combiner's step (Shoup 2000, §3 "Combining shares"), optimistic.
//!
//! From any `k` shares with ids `S`: `w = Π_{i∈S} x_i^{2λ_i}` with `λ_i = Δ·Π_{j∈S∖{i}} j/(j−i)` (an integer), so
//! `w^e = x^{e'}` for `e' = 4Δ²`; with `a·e' + b·e = 1` (extended Euclid, `e` is a prime greater than `n`),
//! `y = w^a x^b` satisfies `y^e = x`. The combiner first tries the first `k` shares that pass the cheap structural
//! checks and releases `y` only if `y^e = x`. Only when that fails does it verify every proof, name every culprit
//! and combine again from `k` shares whose proofs verify. A signature that does not verify is never returned.
//!
//! Shares of an ordinary-modulus key ([`super::ordinary`]) have no proofs: when the optimistic combination fails,
//! the combiner searches `k`-subsets of the shares and names by elimination the signers in no subset that verifies.

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
/// [`Error::NotEnoughShares`] when fewer than `k` shares were given at all. For an ordinary-modulus key
/// ([`PublicKeySet::is_ordinary`]), [`Error::Unattributable`] when no `k` of the shares combine and nobody can be
/// blamed: combine again with shares from more signers.
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
    if pk.is_ordinary() {
        return combine_ordinary(pk, &ctx, candidates, faults);
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

/// An ordinary-modulus key (see [`super::ordinary`]): optimistic, then the subset search; culprits by elimination.
fn combine_ordinary(
    pk: &PublicKeySet,
    ctx: &ShareContext,
    candidates: Vec<(SignerId, &SignatureShare, BoxedMontyForm)>,
    mut faults: BTreeMap<SignerId, ShareFault>,
) -> Result<Combined, Error> {
    let k = usize::from(pk.threshold());
    let mut valid = Vec::with_capacity(candidates.len());
    for (sender, share, x_i) in candidates {
        if share.proof.is_some() {
            faults.insert(sender, ShareFault::UnexpectedProof);
        } else {
            valid.push((sender, x_i));
        }
    }
    if valid.len() < k {
        return Err(not_enough(faults, valid.len(), k));
    }
    let found = super::ordinary::search(pk, ctx, &valid)?;
    match found.signature {
        Some(signature) => {
            for id in found.unvouched {
                faults.insert(id, ShareFault::Inconsistent);
            }
            Ok(done(signature, faults))
        }
        None if !bool::from(ctx.x_mont.invert_vartime().is_some()) => {
            Err(Error::Encoding("message representative shares a factor with N"))
        }
        None => Err(Error::Unattributable {
            signers: valid.iter().map(|(id, _)| *id).collect(),
            faults,
            needed: k,
        }),
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

/// `y = w^a x^b` from exactly `k` shares; `Some(signature)` only if `y^e = x` (see [`interpolate_squares`]).
fn interpolate(
    pk: &PublicKeySet,
    ctx: &ShareContext,
    subset: &[(SignerId, &BoxedMontyForm)],
) -> Result<Option<Vec<u8>>, Error> {
    let squares: Vec<(SignerId, BoxedMontyForm)> = subset.iter().map(|(id, x)| (*id, x.square())).collect();
    let squares: Vec<(SignerId, &BoxedMontyForm)> = squares.iter().map(|(id, x)| (*id, x)).collect();
    let x_b = pow_vartime(&ctx.x_mont, pk.combination_exponents().1);
    interpolate_squares(pk, ctx, &x_b, &squares)
}

/// `y = w^a x^b` from exactly `k` squared shares `x_i²`, given `x^{|b|}`; `Some(signature)` only if `y^e = x`.
///
/// `w = P / Q` with `P` the product of the `x_i^{2λ_i}` with `λ_i > 0` and `Q` that of the `x_i^{2|λ_i|}` with
/// `λ_i < 0`; as `b ≤ 0`, `y = P^a · (Q^a · x^{|b|})^{-1}`: one modular inversion per combination. `None` also when
/// that inversion does not exist (a share or `x` shares a factor with `N`), so the caller falls back to the proofs
/// (or, for an ordinary-modulus key, to other subsets).
pub(crate) fn interpolate_squares(
    pk: &PublicKeySet,
    ctx: &ShareContext,
    x_b: &BoxedMontyForm,
    subset: &[(SignerId, &BoxedMontyForm)],
) -> Result<Option<Vec<u8>>, Error> {
    let ids: Vec<u16> = subset.iter().map(|(id, _)| id.get()).collect();
    let mut numerator = BoxedMontyForm::one(pk.params());
    let mut denominator = BoxedMontyForm::one(pk.params());
    for (id, x_i_squared) in subset {
        let lambda = lagrange_at_zero(pk.delta(), &ids, id.get())
            .ok_or(Error::Internal("Lagrange coefficient not integral"))?;
        let term = pow_vartime(x_i_squared, &lambda.magnitude);
        if lambda.negative {
            denominator = denominator.mul(&term);
        } else {
            numerator = numerator.mul(&term);
        }
    }
    let a = pk.combination_exponents().0;
    let divisor = pow_vartime(&denominator, a).mul(x_b);
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
