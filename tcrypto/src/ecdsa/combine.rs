//! Combining signature shares, optimistically then with blame (house style; DJNPØ §4 checks the result with
//! the public key): interpolate `s` from `k = t + 1` shares and verify `(r, s)`; only if that fails, check
//! every share against the presignature's per-party commitments,
//! `(w·s_j)·G == m·A_j + r·VX_j` (i.e. `s_j·G == m·K_j + r·KX_j`), name the culprits and combine from the
//! honest shares. The interpolated value is `δ·s`; one multiplication by `δ^{-1}` gives `s`.

use std::collections::BTreeMap;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::{ProjectivePoint, Scalar};

use super::group;
use super::presign::PresignaturePublic;
use super::sign::{SignRequest, SignatureShare, rerandomise};
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

/// Combines the shares (keyed by the channel's sender id) of any `t + 1` or more members of the presigning set.
pub fn combine(
    public: &PresignaturePublic,
    verifying_key: &p256::ecdsa::VerifyingKey,
    req: &SignRequest,
    shares: &BTreeMap<SignerId, SignatureShare>,
) -> Result<Combined, Error> {
    if super::key::key_id_of_affine(verifying_key.as_affine()) != public.key_id {
        return Err(Error::Misuse("presignature belongs to another key"));
    }
    let (delta, _, r, m) = rerandomise(public, req)?;
    let delta_inv: Scalar = Option::from(delta.invert()).ok_or(Error::Degenerate("δ = 0"))?;
    let needed = usize::from(public.threshold);
    let mut culprits = Vec::new();
    let mut candidates: Vec<(SignerId, Scalar)> = Vec::new();
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
            candidates.push((*j, share.s));
        }
    }
    if candidates.len() >= needed
        && let Some(signature) = try_combine(&candidates[..needed], r, delta_inv, verifying_key, req)
    {
        return Ok(Combined { signature, culprits });
    }
    // Blame: check every share against its commitments.
    let w = public.w;
    let mut honest = Vec::new();
    for (j, s) in candidates {
        let (a, vx) = public.commitments[&j];
        let check = group::lincomb_vartime(&[(a, m), (vx, r), (ProjectivePoint::GENERATOR, -(w * s))]);
        if check == ProjectivePoint::IDENTITY {
            honest.push((j, s));
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
    match try_combine(&honest[..needed], r, delta_inv, verifying_key, req) {
        Some(signature) => Ok(Combined { signature, culprits }),
        // Every share matches its commitment yet the signature is invalid: the presignature itself is bad,
        // which its checks at presigning time rule out.
        None => Err(Error::Degenerate("shares consistent but signature invalid")),
    }
}

fn try_combine(
    shares: &[(SignerId, Scalar)],
    r: Scalar,
    delta_inv: Scalar,
    verifying_key: &p256::ecdsa::VerifyingKey,
    req: &SignRequest,
) -> Option<p256::ecdsa::Signature> {
    let ids: Vec<SignerId> = shares.iter().map(|(j, _)| *j).collect();
    let lambdas = group::lagrange_at_zero(&ids);
    let s: Scalar = delta_inv
        * shares
            .iter()
            .zip(&lambdas)
            .map(|((_, s), l)| *s * l)
            .sum::<Scalar>();
    let signature = p256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes()).ok()?;
    verifying_key
        .verify_prehash(&req.digest, &signature)
        .ok()
        .map(|()| signature)
}
