//! Share verification (Shoup 2000, §3 "Proof of correctness"): checks `c = H'(v, x̃, v_i, x_i², v^z v_i^{-c},
//! x̃^z x_i^{-2c})`, plus the structural checks a combiner makes before using a share.
//!
//! All values here are public; the arithmetic may take variable time.

use core::cmp::Ordering;

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use thiserror::Error;

use super::CHALLENGE_BITS;
use super::Error as RsaError;
use super::encoding::MessageEncoding;
use super::keys::PublicKeySet;
use super::math::{from_be, from_be_vartime, pow_vartime};
use super::share::{ShareContext, SignatureShare, challenge, r_bits};
use crate::backend::{Active, Arithmetic};
use crate::codec::DecodeError;
use crate::{SessionId, SignerId};

/// Why a signer's share was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ShareFault {
    /// The share's bytes did not decode.
    #[error("undecodable share: {0}")]
    Undecodable(DecodeError),
    /// The sender is not one of the key's signers (`i > n`).
    #[error("sender is not a signer of this key")]
    UnknownSigner,
    /// The share claims another signer id than the channel it came from.
    #[error("share claims signer {claimed}")]
    SignerMismatch {
        /// The id inside the share.
        claimed: SignerId,
    },
    /// `x_i` is 0 or not below `N`.
    #[error("share value out of range")]
    OutOfRange,
    /// `x_i` is not the canonical (smaller) one of `x_i`, `N − x_i`.
    #[error("share value not canonical")]
    NotCanonical,
    /// `x_i` has no inverse modulo `N`.
    #[error("share value not invertible")]
    NotInvertible,
    /// The combination failed and this share carries no proof.
    #[error("share has no proof")]
    MissingProof,
    /// The proof's `z` is longer than an honest `s_i c + r` can be.
    #[error("proof out of range")]
    ProofOutOfRange,
    /// The proof does not verify.
    #[error("proof of correctness does not verify")]
    InvalidProof,
    /// Ordinary-modulus key: the share carries a proof, which such shares never have.
    #[error("share of an ordinary-modulus key carries a proof")]
    UnexpectedProof,
    /// Ordinary-modulus key: the share is in no `k`-subset of the shares whose combination verifies, although some
    /// subset does (see [`super::ordinary`] for what this proves).
    #[error("share is inconsistent with every subset that combines into a valid signature")]
    Inconsistent,
}

/// Verifies the share `share` that arrived from `sender` for request `session` on `msg`: the structural checks
/// the combiner makes (sender is a signer and matches the share's id, `x_i` in range, canonical and invertible)
/// and the proof of correctness.
///
/// A share of an ordinary-modulus key ([`PublicKeySet::is_ordinary`]) has no proof and cannot be judged alone:
/// this returns [`VerifyError::Request`]; [`super::combine()`] judges such shares by a subset search.
pub fn verify_share(
    pk: &PublicKeySet,
    session: &SessionId,
    msg: &MessageEncoding,
    sender: SignerId,
    share: &SignatureShare,
) -> Result<(), VerifyError> {
    if pk.is_ordinary() {
        return Err(VerifyError::Request(RsaError::InvalidParameters(
            "a share of an ordinary-modulus key cannot be verified alone; combine() searches subsets",
        )));
    }
    let ctx = ShareContext::new(pk, msg).map_err(VerifyError::Request)?;
    let x_i = check_share(pk, sender, share).map_err(VerifyError::Fault)?;
    verify_proof(pk, session, &ctx, sender, share, &x_i).map_err(VerifyError::Fault)
}

/// What [`verify_share`] found: the share is bad, or the request itself cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The share is bad; its sender misbehaved.
    #[error("{0}")]
    Fault(ShareFault),
    /// The request (message encoding for this key) is invalid; nobody's share is at fault.
    #[error("{0}")]
    Request(RsaError),
}

/// The checks that need no proof: the sender is a signer, the share names the sender, and `x_i` is in
/// `[1, N)`, canonical and invertible. Returns `x_i` in Montgomery form.
pub(crate) fn check_share(
    pk: &PublicKeySet,
    sender: SignerId,
    share: &SignatureShare,
) -> Result<BoxedMontyForm, ShareFault> {
    let x_i = check_share_range(pk, sender, share)?;
    if !bool::from(x_i.invert_vartime().is_some()) {
        return Err(ShareFault::NotInvertible);
    }
    Ok(x_i)
}

/// [`check_share`] without the invertibility check, which costs a modular inversion per share: the combiner's
/// optimistic path skips it (a non-invertible share makes the combination fail, and [`verify_proof`] then names it).
pub(crate) fn check_share_range(
    pk: &PublicKeySet,
    sender: SignerId,
    share: &SignatureShare,
) -> Result<BoxedMontyForm, ShareFault> {
    if !pk.has_signer(sender) {
        return Err(ShareFault::UnknownSigner);
    }
    if share.signer != sender {
        return Err(ShareFault::SignerMismatch {
            claimed: share.signer,
        });
    }
    let n = pk.modulus().as_ref();
    let value = from_be(&share.value, pk.precision()).ok_or(ShareFault::OutOfRange)?;
    if bool::from(value.is_zero()) || value.cmp_vartime(n) != Ordering::Less {
        return Err(ShareFault::OutOfRange);
    }
    // Canonical: x_i <= (N − 1) / 2, i.e. 2·x_i < N.
    if value.shl(1).cmp_vartime(n) != Ordering::Less || value.bit_width_vartime() >= n.bit_width_vartime() {
        return Err(ShareFault::NotCanonical);
    }
    Ok(BoxedMontyForm::new(value, pk.params()))
}

/// Checks the proof `(c, z)` of a structurally valid share.
pub(crate) fn verify_proof(
    pk: &PublicKeySet,
    session: &SessionId,
    ctx: &ShareContext,
    sender: SignerId,
    share: &SignatureShare,
    x_i: &BoxedMontyForm,
) -> Result<(), ShareFault> {
    verify_proof_with::<Active>(pk, session, ctx, sender, share, x_i)
}

/// [`verify_proof`] on the arithmetic backend `B`.
pub(crate) fn verify_proof_with<B: Arithmetic>(
    pk: &PublicKeySet,
    session: &SessionId,
    ctx: &ShareContext,
    sender: SignerId,
    share: &SignatureShare,
    x_i: &BoxedMontyForm,
) -> Result<(), ShareFault> {
    let proof = share.proof.as_ref().ok_or(ShareFault::MissingProof)?;
    let z = from_be_vartime(&proof.z);
    // Honest z = s_i c + r < 2^{b + 2·L1 + 1}, b the share bound (|N| for a dealt key).
    if z.bit_width_vartime() > r_bits(pk) + 1 {
        return Err(ShareFault::ProofOutOfRange);
    }
    let c = BoxedUint::from_be_slice(&proof.c, CHALLENGE_BITS).map_err(|_| ShareFault::InvalidProof)?;
    let v_i = pk.verification_key(sender).ok_or(ShareFault::UnknownSigner)?;
    let v = BoxedMontyForm::new(pk.v().clone(), pk.params());
    let v_i_mont = BoxedMontyForm::new(v_i.clone(), pk.params());
    let v_i_inv = v_i_mont
        .invert_vartime()
        .into_option()
        .ok_or(ShareFault::InvalidProof)?;
    let x_i_squared = x_i.square();
    let x_i_squared_inv = x_i_squared
        .invert_vartime()
        .into_option()
        .ok_or(ShareFault::NotInvertible)?;
    // v' = v^z · v_i^{-c},  x' = x̃^z · (x_i²)^{-c}
    // The two long exponentiations (|z| ≈ |N| + 2·L1 bits) go to the backend; c has only L1 = 128 bits.
    let v_prime = pow_public::<B>(&v, &z).mul(&pow_vartime(&v_i_inv, &c));
    let x_prime = pow_public::<B>(&ctx.x_tilde, &z).mul(&pow_vartime(&x_i_squared_inv, &c));
    let expected = challenge(
        pk,
        sender,
        session,
        &ctx.x,
        &ctx.x_tilde.retrieve(),
        v_i,
        &x_i_squared.retrieve(),
        &v_prime.retrieve(),
        &x_prime.retrieve(),
    );
    if expected == proof.c {
        Ok(())
    } else {
        Err(ShareFault::InvalidProof)
    }
}

/// `base^exp` for public values on backend `B`; should `B` fail (OpenSSL could not allocate), the pure-Rust
/// computation gives the same value, so a sender is never blamed for the verifier's fault.
fn pow_public<B: Arithmetic>(base: &BoxedMontyForm, exp: &BoxedUint) -> BoxedMontyForm {
    B::pow_public_vartime(base, exp).unwrap_or_else(|_| pow_vartime(base, exp))
}
