//! Presigning round 1 (DJNPØ, random sharings `[k]`, `[a]`): every `P_i` deals degree-`t` sharings `f_i`
//! (its part of the nonce, `k = Σ_i f_i(0)`) and `g_i` (its part of the mask, `a = Σ_i g_i(0)`) for each
//! presignature of the batch. Commit before reveal: it broadcasts a hash commitment to its nonce parts
//! `R_i = f_i(0)·G` (revealed in round 2, once everybody is bound, so nobody can bias `R`) and a salted hash
//! commitment `c_ij` to the shares it sends to each `P_j` — the receiver checks its shares against `c_ij`, and
//! if presigning fails the dealer opens its polynomials and everyone can recompute what it sent.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::super::group::{self, Polynomial};
use super::super::key::KeyShare;
use super::super::{Error, tag};
use super::{Context, PresignParams, salt_for, share_commitment};
use crate::codec::{Reader, Writer};
use crate::id::SignerId;

/// Round-1 broadcast of `P_i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round1Broadcast {
    /// `H(sid, i, R_i^1, …, R_i^B)`: commitment to the nonce parts `R_i^b = f_i^b(0)·G`, revealed in round 2.
    pub r_commitment: [u8; 32],
    /// `c_ij = H(sid, i, j, (f_i^b(j), g_i^b(j))_b, salt_ij)` for every member `j` of `P`, in id order.
    pub share_commitments: Vec<[u8; 32]>,
}

/// Round-1 private message from `P_i` to `P_j` (secret: send over a confidential channel).
#[derive(PartialEq, Eq)]
pub struct Round1Direct {
    /// `f_i^b(j)` for every presignature `b` of the batch: shares of `P_i`'s nonce part.
    pub k_shares: Vec<Scalar>,
    /// `g_i^b(j)`: shares of `P_i`'s mask part.
    pub a_shares: Vec<Scalar>,
    /// `salt_ij`, opening `c_ij`.
    pub salt: [u8; 32],
}

/// `P_i`'s secret state after round 1.
pub struct Round1State {
    pub(crate) ctx: Context,
    /// `f_i^b`, `g_i^b` (opened only if presigning fails, for blame).
    pub(crate) f: Vec<Polynomial>,
    pub(crate) g: Vec<Polynomial>,
    /// Seed of the salts `salt_ij`.
    pub(crate) seed: [u8; 32],
    /// `R_i^b`.
    pub(crate) r_points: Vec<ProjectivePoint>,
    /// Own shares `f_i^b(i)`, `g_i^b(i)`.
    pub(crate) own: Round1Direct,
    /// Own broadcast.
    pub(crate) broadcast: Round1Broadcast,
}

/// Starts a presigning run: samples this party's sharings and returns its state, its broadcast and one
/// direct message per other member of `P`.
pub fn round1(
    key: &KeyShare,
    params: PresignParams,
    rng: &mut impl CryptoRng,
) -> Result<(Round1State, Round1Broadcast, BTreeMap<SignerId, Round1Direct>), Error> {
    let ctx = Context::new(key, params)?;
    let mut f = Vec::with_capacity(ctx.batch);
    let mut g = Vec::with_capacity(ctx.batch);
    let mut r_points = Vec::with_capacity(ctx.batch);
    for _ in 0..ctx.batch {
        let fb = Polynomial::random(group::random_nonzero_scalar(rng), ctx.t, rng);
        r_points.push(group::mul_g(fb.constant()));
        f.push(fb);
        g.push(Polynomial::random(group::random_scalar(rng), ctx.t, rng));
    }
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let mut directs = BTreeMap::new();
    let mut share_commitments = Vec::with_capacity(ctx.parties.len());
    for j in &ctx.parties {
        let d = Round1Direct {
            k_shares: f.iter().map(|p| p.eval(*j)).collect(),
            a_shares: g.iter().map(|p| p.eval(*j)).collect(),
            salt: salt_for(&ctx, "round1", &seed, *j),
        };
        share_commitments.push(d.commitment(&ctx, ctx.me, *j));
        directs.insert(*j, d);
    }
    let own = directs
        .remove(&ctx.me)
        .ok_or(Error::Misuse("this party is not in the presigning set"))?;
    let broadcast = Round1Broadcast {
        r_commitment: r_commitment(&ctx, ctx.me, &r_points),
        share_commitments,
    };
    let state = Round1State {
        ctx,
        f,
        g,
        seed,
        r_points,
        own,
        broadcast: broadcast.clone(),
    };
    Ok((state, broadcast, directs))
}

/// `H(sid, i, R_i^1..R_i^B)`.
pub(crate) fn r_commitment(ctx: &Context, i: SignerId, r_points: &[ProjectivePoint]) -> [u8; 32] {
    let mut tr = group::Transcript::new("round1-nonce-commitment");
    tr.bytes(ctx.session.as_bytes()).id(i).points(r_points);
    tr.digest()
}

impl Round1Direct {
    /// `c_ij` for these shares.
    pub(crate) fn commitment(&self, ctx: &Context, dealer: SignerId, receiver: SignerId) -> [u8; 32] {
        share_commitment(
            ctx,
            "round1-shares",
            dealer,
            receiver,
            &[&self.k_shares, &self.a_shares],
            &self.salt,
        )
    }

    /// Encodes (tag 0x22). Contains secret shares.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND1_DIRECT);
        group::put_scalars(&mut w, &self.k_shares);
        group::put_scalars(&mut w, &self.a_shares);
        w.raw(&self.salt);
        w.finish()
    }

    /// Decodes strictly (canonical scalars).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND1_DIRECT)?;
        let k_shares = group::get_scalars(&mut r)?;
        let a_shares = group::get_scalars(&mut r)?;
        let salt = r.array::<32>()?;
        r.finish()?;
        Ok(Self {
            k_shares,
            a_shares,
            salt,
        })
    }
}

impl Round1Broadcast {
    /// Encodes (tag 0x21).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND1_BROADCAST);
        self.write(&mut w);
        w.finish()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(&self.r_commitment);
        super::put_hashes(w, &self.share_commitments);
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND1_BROADCAST)?;
        let r_commitment = r.array::<32>()?;
        let share_commitments = super::get_hashes(&mut r)?;
        r.finish()?;
        Ok(Self {
            r_commitment,
            share_commitments,
        })
    }
}

impl Drop for Round1Direct {
    fn drop(&mut self) {
        self.k_shares.zeroize();
        self.a_shares.zeroize();
    }
}

impl fmt::Debug for Round1Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round1Direct(<redacted>)")
    }
}

impl fmt::Debug for Round1State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round1State")
            .field("me", &self.ctx.me)
            .field("secrets", &"<redacted>")
            .finish()
    }
}
