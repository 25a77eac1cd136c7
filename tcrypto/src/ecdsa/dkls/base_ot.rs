//! Base oblivious transfer: a batch of [`BASE_OTS`] random 1-out-of-2 OTs of 32-byte keys, run once per
//! ordered pair of parties at setup ([`super::setup`]).
//!
//! The protocol is the "Simplest OT" of Chou and Orlandi (LATINCRYPT 2015) over P-256, with the two fixes its
//! later analyses call for (Hauck and Loss, "Efficient and Universally Composable Protocols for Oblivious
//! Transfer from the CDH Assumption", ePrint 2017/1011; Doerner, Kondi, Lee, shelat, "Secure Two-party
//! Threshold ECDSA from ECDSA Assumptions", S&P 2018, its "VSOT"):
//!
//! * the sender proves knowledge of `a` for `A = a·G` (a Schnorr proof, Fiat–Shamir), so that a simulator can
//!   extract `a` and the sender's two keys are fixed by `(a, B_l)`;
//! * every key hash binds the session id, the OT index and the whole transcript of that OT
//!   (`A`, `B_l` and the Diffie–Hellman point), which removes CO15's cross-instance malleability.
//!
//! Messages: the sender sends [`SenderMsg`] (`A`, proof); the receiver, with choice bits `ω_l`, answers
//! [`ReceiverMsg`] with `B_l = b_l·G + ω_l·A` and keeps `ρ_l = H(sid, l, A, B_l, b_l·A)`; the sender derives
//! `ρ_l^0 = H(sid, l, A, B_l, a·B_l)` and `ρ_l^1 = H(sid, l, A, B_l, a·(B_l − A))`, so `ρ_l = ρ_l^{ω_l}`.
//! DKLs18's VSOT adds three verification messages on top (the receiver proves it can open `ρ_l^{ω_l}`); they
//! protect a random-OT functionality used directly, whereas here the keys only seed KOS15, whose own check
//! covers an inconsistent receiver, so we leave them out (two messages per direction instead of five).

use p256::elliptic_curve::group::GroupEncoding as _;
use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use subtle::{Choice, ConditionallySelectable as _};
use zeroize::Zeroize as _;

use super::prg::Hash;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ecdsa::group::{self, get_point, get_scalar, put_point, put_scalar};

/// Number of base OTs per ordered pair: KOS15's computational security parameter `κ = 128`.
pub const BASE_OTS: usize = 128;

/// The sender's message: `A = a·G` and a Schnorr proof of knowledge of `a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderMsg {
    /// `A = a·G`.
    pub a: ProjectivePoint,
    /// The proof's commitment `T = k·G`.
    pub proof_commitment: ProjectivePoint,
    /// The proof's response `z = k + e·a` with `e = H(sid, A, T)`.
    pub proof_response: Scalar,
}

/// The receiver's message: `B_l = b_l·G + ω_l·A` for `l` in `0..BASE_OTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverMsg {
    /// `B_0 .. B_{κ-1}`.
    pub b: Vec<ProjectivePoint>,
}

/// The sender's secret between its two messages.
pub(crate) struct SenderState {
    sid: [u8; 32],
    a: Scalar,
    a_point: ProjectivePoint,
}

/// The sender's two keys per OT, `(ρ_l^0, ρ_l^1)`, `l < BASE_OTS`.
pub(crate) type SenderKeys = Vec<[[u8; 32]; 2]>;
/// The receiver's key per OT, `ρ_l^{ω_l}`, `l < BASE_OTS`.
pub(crate) type ReceiverKeys = Vec<[u8; 32]>;

fn challenge(sid: &[u8; 32], a: &ProjectivePoint, t: &ProjectivePoint) -> Scalar {
    let digest = Hash::new("base-ot/pok")
        .raw(sid)
        .raw(&a.to_bytes())
        .raw(&t.to_bytes())
        .finish();
    let mut e = [Scalar::ZERO];
    super::prg::scalars(&digest, &mut e);
    e[0]
}

fn key(sid: &[u8; 32], l: usize, a: &ProjectivePoint, b: &ProjectivePoint, dh: &ProjectivePoint) -> [u8; 32] {
    Hash::new("base-ot/key")
        .raw(sid)
        .u32(l as u32)
        .raw(&a.to_bytes())
        .raw(&b.to_bytes())
        .raw(&dh.to_bytes())
        .finish()
}

/// The sender's first step: `a`, `A = a·G` and the proof.
pub(crate) fn sender_start(sid: &[u8; 32], rng: &mut impl CryptoRng) -> (SenderState, SenderMsg) {
    let a = group::random_nonzero_scalar(rng);
    let a_point = group::mul_g(&a);
    let mut k = group::random_nonzero_scalar(rng);
    let t = group::mul_g(&k);
    let z = k + challenge(sid, &a_point, &t) * a;
    k.zeroize();
    let msg = SenderMsg {
        a: a_point,
        proof_commitment: t,
        proof_response: z,
    };
    (
        SenderState {
            sid: *sid,
            a,
            a_point,
        },
        msg,
    )
}

impl SenderState {
    /// The sender's keys `(ρ_l^0, ρ_l^1)` from the receiver's points.
    pub(crate) fn finish(self, msg: &ReceiverMsg) -> Result<SenderKeys, DecodeError> {
        if msg.b.len() != BASE_OTS {
            return Err(DecodeError::Invalid("wrong number of base OT points"));
        }
        let a_a = self.a_point * self.a;
        let mut out: SenderKeys = vec![[[0u8; 32]; 2]; BASE_OTS];
        for (l, b) in msg.b.iter().enumerate() {
            let p0 = b * &self.a;
            let p1 = p0 - a_a;
            out[l][0] = key(&self.sid, l, &self.a_point, b, &p0);
            out[l][1] = key(&self.sid, l, &self.a_point, b, &p1);
        }
        Ok(out)
    }
}

impl Drop for SenderState {
    fn drop(&mut self) {
        self.a.zeroize();
    }
}

/// The receiver's step: checks the sender's proof, then for choice bits `choices` (bit `l` is `ω_l`) returns
/// its keys and its message. `None` if the proof fails (the sender is at fault).
pub(crate) fn receive(
    sid: &[u8; 32],
    msg: &SenderMsg,
    choices: u128,
    rng: &mut impl CryptoRng,
) -> Option<(ReceiverKeys, ReceiverMsg)> {
    let e = challenge(sid, &msg.a, &msg.proof_commitment);
    let lhs = group::mul_g_vartime(&msg.proof_response);
    if lhs != msg.proof_commitment + group::lincomb_vartime(&[(msg.a, e)]) {
        return None;
    }
    let mut keys: ReceiverKeys = vec![[0u8; 32]; BASE_OTS];
    let mut points = Vec::with_capacity(BASE_OTS);
    for (l, k) in keys.iter_mut().enumerate() {
        let mut b = group::random_nonzero_scalar(rng);
        let omega = Choice::from(((choices >> l) & 1) as u8);
        let big_b =
            group::mul_g(&b) + ProjectivePoint::conditional_select(&ProjectivePoint::IDENTITY, &msg.a, omega);
        *k = key(sid, l, &msg.a, &big_b, &(msg.a * b));
        b.zeroize();
        points.push(big_b);
    }
    Some((keys, ReceiverMsg { b: points }))
}

impl SenderMsg {
    pub(crate) fn write(&self, w: &mut Writer) {
        put_point(w, &self.a);
        put_point(w, &self.proof_commitment);
        put_scalar(w, &self.proof_response);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            a: get_point(r)?,
            proof_commitment: get_point(r)?,
            proof_response: get_scalar(r)?,
        })
    }
}

impl ReceiverMsg {
    pub(crate) fn write(&self, w: &mut Writer) {
        for p in &self.b {
            put_point(w, p);
        }
    }

    /// Reads exactly [`BASE_OTS`] points (none the identity).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            b: (0..BASE_OTS).map(|_| get_point(r)).collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};

    #[test]
    fn receiver_gets_exactly_the_chosen_key_of_every_ot() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let sid = [3u8; 32];
        let choices: u128 = rng.random();
        let (state, m1) = sender_start(&sid, &mut rng);
        let (got, m2) = receive(&sid, &m1, choices, &mut rng).unwrap();
        let keys = state.finish(&m2).unwrap();
        for l in 0..BASE_OTS {
            let w = ((choices >> l) & 1) as usize;
            assert_eq!(got[l], keys[l][w], "OT {l}");
            assert_ne!(got[l], keys[l][1 - w], "OT {l}");
        }
    }

    #[test]
    fn a_wrong_proof_or_another_session_is_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let (_, mut m1) = sender_start(&[1u8; 32], &mut rng);
        assert!(receive(&[2u8; 32], &m1, 0, &mut rng).is_none());
        m1.proof_response += Scalar::ONE;
        assert!(receive(&[1u8; 32], &m1, 0, &mut rng).is_none());
    }
}
