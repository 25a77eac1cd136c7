//! Online signing, one round (DJNPØ's "online phase" of the protocol with preprocessing: once the message is known, each party computes its share
//! of `s` with local operations only). The presignature is re-randomised with a hash of the request
//! (Groth–Shoup, Eurocrypt 2022, "re-randomized presignatures"): `δ = H(sid, presignature id, key id, m)`,
//! `R' = δ·R`, `r = x(R') mod n`, and `s_i = m·ρ_i + r·σ_i` is `P_i`'s degree-`t` share of
//! `δ·s = k^{-1}(m + r·x)`; the combiner multiplies the interpolated value by `δ^{-1}` once, so that
//! `s = (δk)^{-1}(m + r·x)`.
//!
//! A presignature signs at most once: [`sign_share`] consumes it by value, and before computing anything it
//! records the presignature id with [`SpentPresignatures::mark_spent`], which must make the record durable
//! before returning. A presignature restored from storage whose id is already recorded is refused with
//! [`Error::PresignatureSpent`].
//!
//! Using one presignature twice does not compile:
//!
//! ```compile_fail
//! # use std::collections::BTreeSet;
//! # use tcrypto::ecdsa::{KeyShare, Presignature, SignRequest, sign_share};
//! fn twice(key: &KeyShare, p: Presignature, req: &SignRequest) {
//!     let mut spent = BTreeSet::new();
//!     let _ = sign_share(key, p, req, &mut spent);
//!     let _ = sign_share(key, p, req, &mut spent); // error[E0382]: use of moved value: `p`
//! }
//! ```
//!
//! while using it once does:
//!
//! ```
//! # use std::collections::BTreeSet;
//! # use tcrypto::ecdsa::{KeyShare, Presignature, SignRequest, sign_share};
//! fn once(key: &KeyShare, p: Presignature, req: &SignRequest) {
//!     let mut spent = BTreeSet::new();
//!     let _ = sign_share(key, p, req, &mut spent);
//! }
//! ```

use std::collections::BTreeSet;

use p256::elliptic_curve::Field as _;
use p256::{ProjectivePoint, Scalar};

use super::group::{self, get_scalar, put_scalar};
use super::key::KeyShare;
use super::presign::{Presignature, PresignatureId, PresignaturePublic};
use super::{Error, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{SessionId, SignerId};

/// Shortest digest accepted (bytes): half the field size, as the `ecdsa` crate requires.
pub const MIN_DIGEST_LEN: usize = 16;
/// Longest digest accepted (bytes).
pub const MAX_DIGEST_LEN: usize = 64;

/// What the coordinator asks the signers to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Fresh session id of this signing request (bound into `δ`).
    pub session: SessionId,
    /// The presignature every signer must use.
    pub presignature: PresignatureId,
    /// The message digest (e.g. SHA-256 of the data); `m` is its leftmost 256 bits.
    pub digest: Vec<u8>,
}

impl SignRequest {
    /// Encodes (tag 0x28).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SIGN_REQUEST);
        self.session.encode(&mut w);
        self.presignature.encode(&mut w);
        w.bytes(&self.digest);
        w.finish()
    }

    /// Decodes strictly (digest length `16..=64`).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SIGN_REQUEST)?;
        let session = SessionId::decode(&mut r)?;
        let presignature = PresignatureId::decode(&mut r)?;
        let digest = r.bytes()?.to_vec();
        r.finish()?;
        if !(MIN_DIGEST_LEN..=MAX_DIGEST_LEN).contains(&digest.len()) {
            return Err(DecodeError::Invalid("digest length").into());
        }
        Ok(Self {
            session,
            presignature,
            digest,
        })
    }
}

/// One signer's share of `s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureShare {
    /// The signer (cross-checked against the channel's sender id by the combiner).
    pub id: SignerId,
    /// The presignature it was made with.
    pub presignature: PresignatureId,
    /// `r = x(δ·R) mod n` as the signer computed it, so that the combiner need not recompute `δ·R` when the
    /// combined signature verifies (it does when the shares are not all right: [`super::combine()`]).
    pub r: Scalar,
    /// `s_i = m·ρ_i + r·σ_i`, a degree-`t` share of `δ·s`.
    pub s: Scalar,
}

impl SignatureShare {
    /// Encodes (tag 0x29).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SIGNATURE_SHARE);
        self.id.encode(&mut w);
        self.presignature.encode(&mut w);
        put_scalar(&mut w, &self.r);
        put_scalar(&mut w, &self.s);
        w.finish()
    }

    /// Decodes strictly (canonical scalars, `r` not zero).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SIGNATURE_SHARE)?;
        let id = SignerId::decode(&mut r)?;
        let presignature = PresignatureId::decode(&mut r)?;
        let r_value = group::get_nonzero_scalar(&mut r)?;
        let s = get_scalar(&mut r)?;
        r.finish()?;
        Ok(Self {
            id,
            presignature,
            r: r_value,
            s,
        })
    }
}

/// The durable record of spent presignatures a signer keeps.
pub trait SpentPresignatures {
    /// Records `id` as spent. Returns `Ok(true)` if it was not spent before and the record is now durable,
    /// `Ok(false)` if it was already spent, `Err` if it could not be recorded (then no share is released).
    fn mark_spent(&mut self, id: &PresignatureId) -> Result<bool, String>;
}

/// An in-memory record (tests; a node persists its record, e.g. in its secret store).
impl SpentPresignatures for BTreeSet<PresignatureId> {
    fn mark_spent(&mut self, id: &PresignatureId) -> Result<bool, String> {
        Ok(self.insert(*id))
    }
}

/// The re-randomisation of a presignature for a request: `(δ, R' = δ·R, r = x(R') mod n, m)`.
pub(crate) fn rerandomise(
    public: &PresignaturePublic,
    req: &SignRequest,
) -> Result<(Scalar, ProjectivePoint, Scalar, Scalar), Error> {
    let (delta, m) = delta_and_message(public, req)?;
    let r_prime = group::lincomb_vartime(&[(public.r_point, delta)]); // public values: variable time
    Ok((delta, r_prime, r_of(&r_prime)?, m))
}

/// `r = x(R') mod n`, refusing 0.
fn r_of(r_prime: &ProjectivePoint) -> Result<Scalar, Error> {
    let r = group::x_coordinate_scalar(r_prime);
    if bool::from(r.is_zero()) {
        return Err(Error::Degenerate("r = 0"));
    }
    Ok(r)
}

/// `δ = H(sid, presignature id, key id, m)` and `m` for a request, after checking that the request fits the
/// presignature (no point arithmetic).
pub(crate) fn delta_and_message(
    public: &PresignaturePublic,
    req: &SignRequest,
) -> Result<(Scalar, Scalar), Error> {
    if !(MIN_DIGEST_LEN..=MAX_DIGEST_LEN).contains(&req.digest.len()) {
        return Err(Error::Misuse("digest must be 16..=64 bytes"));
    }
    if req.presignature != public.id {
        return Err(Error::Misuse("the request names a different presignature"));
    }
    // The presignature id names R (one per run and index) and the key id names X.
    let mut tr = group::Transcript::new("sign-rerandomise");
    tr.bytes(req.session.as_bytes())
        .bytes(public.id.session.as_bytes())
        .u32(public.id.index)
        .bytes(public.key_id.as_bytes())
        .bytes(&req.digest);
    let delta = tr.challenge();
    if bool::from(delta.is_zero()) {
        return Err(Error::Degenerate("δ = 0"));
    }
    Ok((delta, group::message_scalar(&req.digest)))
}

/// Computes this signer's share for `req`, consuming the presignature. The presignature id is recorded with
/// `spent` first; if it was already spent the presignature is refused.
pub fn sign_share(
    key: &KeyShare,
    presignature: Presignature,
    req: &SignRequest,
    spent: &mut impl SpentPresignatures,
) -> Result<SignatureShare, Error> {
    if presignature.signer != key.id() || presignature.public.key_id != key.key_id() {
        return Err(Error::Misuse("presignature belongs to another key or signer"));
    }
    let (_, _, r, m) = rerandomise(&presignature.public, req)?;
    match spent.mark_spent(&presignature.id()) {
        Ok(true) => {}
        Ok(false) => return Err(Error::PresignatureSpent(presignature.id())),
        Err(e) => return Err(Error::SpentLog(e)),
    }
    let s = m * presignature.rho + r * presignature.sigma;
    Ok(SignatureShare {
        id: key.id(),
        presignature: presignature.id(),
        r,
        s,
    })
}
