//! Combining signature shares, optimistically then with blame (house style; DJNPØ's online phase checks the result with
//! the public key): interpolate `s` from `k = t + 1` shares and verify `(r, s)`; only if that fails, check
//! every share against the presignature's per-party commitments,
//! `(w·s_j)·G == m·A_j + r·VX_j` (i.e. `s_j·G == m·K_j + r·KX_j`), name the culprits and combine from the
//! honest shares. The interpolated value is `δ·s`; one multiplication by `δ^{-1}` gives `s`.

use std::collections::BTreeMap;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::elliptic_curve::ops::Invert as _;
use p256::{ProjectivePoint, Scalar};

use super::group;
use super::presign::PresignaturePublic;
use super::sign::{SignRequest, SignatureShare, delta_and_message, rerandomise};
use super::{Culprit, Error, Fault};
use crate::id::SignerId;

/// A combined signature and the signers whose shares were rejected on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The ECDSA signature `(r, s)` (valid under the key; `s` is not normalised to the low half).
    pub signature: p256::ecdsa::Signature,
    /// Signers whose shares were invalid (empty when all were fine).
    pub culprits: Vec<Culprit>,
}

impl Combined {
    /// The signature in DER (what `openssl dgst -verify` reads).
    pub fn to_der(&self) -> Vec<u8> {
        self.signature.to_der().as_bytes().to_vec()
    }
}

/// A verifying key with precomputed multiples of the public key `X`, for fast verification of combined
/// signatures ([`combine_with`]): about half the cost of `p256`'s own verification, which computes `u_2·X` from
/// scratch every time. Build it once per key and keep it.
pub struct PreparedKey {
    key: p256::ecdsa::VerifyingKey,
    table: group::FixedBaseTable,
}

impl PreparedKey {
    /// Precomputes the table of `X` (about one scalar multiplication).
    pub fn new(key: &p256::ecdsa::VerifyingKey) -> Self {
        Self {
            key: *key,
            table: group::FixedBaseTable::new(&ProjectivePoint::from(*key.as_affine())),
        }
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &p256::ecdsa::VerifyingKey {
        &self.key
    }

    /// ECDSA verification of `signature` over a prehashed `digest` (FIPS 186-5 §6.4.2, as
    /// `p256::ecdsa::VerifyingKey::verify_prehash` for the digests [`SignRequest`] accepts):
    /// `u_1 = m·s^{-1}`, `u_2 = r·s^{-1}`, `Q = u_1·G + u_2·X ≠ O`, `x(Q) mod n == r`. Public data: variable time.
    pub fn verify_prehash(&self, digest: &[u8], signature: &p256::ecdsa::Signature) -> bool {
        let (r, s) = signature.split_scalars();
        let s_inv: Scalar = *s.invert_vartime();
        let m = group::message_scalar(digest);
        let q = group::mul_g_vartime(&(m * s_inv)) + self.table.mul_vartime(&(*r * s_inv));
        q != ProjectivePoint::IDENTITY && group::x_coordinate_scalar(&q) == *r
    }
}

impl core::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Combines the shares (keyed by the channel's sender id) of any `t + 1` or more members of the presigning set,
/// verifying with `p256`'s verifier (see [`combine_with`] for the faster verification of a [`PreparedKey`]).
pub fn combine(
    public: &PresignaturePublic,
    verifying_key: &p256::ecdsa::VerifyingKey,
    req: &SignRequest,
    shares: &BTreeMap<SignerId, SignatureShare>,
) -> Result<Combined, Error> {
    combine_verified(public, verifying_key, req, shares, |sig| {
        verifying_key.verify_prehash(&req.digest, sig).is_ok()
    })
}

/// [`combine`] with a [`PreparedKey`]: the same checks, with a verification that reuses the key's table.
pub fn combine_with(
    public: &PresignaturePublic,
    key: &PreparedKey,
    req: &SignRequest,
    shares: &BTreeMap<SignerId, SignatureShare>,
) -> Result<Combined, Error> {
    combine_verified(public, &key.key, req, shares, |sig| {
        key.verify_prehash(&req.digest, sig)
    })
}

/// Optimistic path: the first `t + 1` well-formed shares that agree on `r` are interpolated and the result
/// verified with `verify` (one verification; `δ·R` is not recomputed). Blame path, only if that fails: `r` is
/// recomputed from `δ·R`, every share is checked against it and against its commitments, and the honest shares
/// are combined.
fn combine_verified(
    public: &PresignaturePublic,
    verifying_key: &p256::ecdsa::VerifyingKey,
    req: &SignRequest,
    shares: &BTreeMap<SignerId, SignatureShare>,
    verify: impl Fn(&p256::ecdsa::Signature) -> bool,
) -> Result<Combined, Error> {
    if super::key::key_id_of_affine(verifying_key.as_affine()) != public.key_id {
        return Err(Error::Misuse("presignature belongs to another key"));
    }
    let (delta, m) = delta_and_message(public, req)?;
    let delta_inv: Scalar = Option::from(delta.invert_vartime()).ok_or(Error::Degenerate("δ = 0"))?;
    let needed = usize::from(public.threshold);
    let mut culprits = Vec::new();
    let mut candidates: Vec<(SignerId, Scalar, Scalar)> = Vec::new();
    for (j, share) in shares {
        if !public.commitments.contains_key(j) {
            culprits.push(Culprit {
                id: *j,
                fault: Fault::UnknownSender,
            });
        } else if share.id != *j || share.presignature != public.id {
            culprits.push(Culprit {
                id: *j,
                fault: Fault::Malformed,
            });
        } else {
            candidates.push((*j, share.r, share.s));
        }
    }
    if candidates.len() >= needed {
        let first = &candidates[..needed];
        let r = first[0].1;
        if first.iter().all(|c| c.1 == r)
            && let Some(signature) = try_combine(first, r, delta_inv, &verify)
        {
            return Ok(Combined { signature, culprits });
        }
    }
    // Blame: the true r, then every share against it and against its commitments.
    let (_, _, r, _) = rerandomise(public, req)?;
    let w = public.w;
    let mut honest = Vec::new();
    for (j, share_r, s) in candidates {
        let (a, vx) = public.commitments[&j];
        let check = group::lincomb_vartime(&[(a, m), (vx, r), (ProjectivePoint::GENERATOR, -(w * s))]);
        if share_r == r && check == ProjectivePoint::IDENTITY {
            honest.push((j, r, s));
        } else {
            culprits.push(Culprit {
                id: j,
                fault: Fault::WrongShare,
            });
        }
    }
    culprits.sort_by_key(|c| c.id);
    if honest.len() < needed {
        return Err(Error::NotEnoughShares {
            valid: honest.len(),
            needed,
            culprits,
        });
    }
    match try_combine(&honest[..needed], r, delta_inv, &verify) {
        Some(signature) => Ok(Combined { signature, culprits }),
        // Every share matches its commitment yet the signature is invalid: the presignature itself is bad,
        // which its checks at presigning time rule out.
        None => Err(Error::Degenerate("shares consistent but signature invalid")),
    }
}

fn try_combine(
    shares: &[(SignerId, Scalar, Scalar)],
    r: Scalar,
    delta_inv: Scalar,
    verify: &impl Fn(&p256::ecdsa::Signature) -> bool,
) -> Option<p256::ecdsa::Signature> {
    let ids: Vec<SignerId> = shares.iter().map(|(j, _, _)| *j).collect();
    let lambdas = group::lagrange_at_zero(&ids);
    let s: Scalar = delta_inv
        * shares
            .iter()
            .zip(&lambdas)
            .map(|((_, _, s), l)| *s * l)
            .sum::<Scalar>();
    let signature = p256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes()).ok()?;
    verify(&signature).then_some(signature)
}
