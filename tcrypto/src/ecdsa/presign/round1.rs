//! Presigning round 1 (DJNPØ §3, random sharings `[k]`, `[a]`): every `P_i` deals Feldman-committed
//! degree-`t` sharings `f_i` (its part of the nonce `k = Σ f_i(0)`) and `g_i` (its part of the mask
//! `a = Σ g_i(0)`) for each presignature of the batch. It broadcasts only the hash commitment
//! `c_i = H(sid, i, F_i, G_i)` to its Feldman vectors — the vectors are revealed in round 2, after everybody is
//! bound, so no party can choose its contribution after seeing the others' `R`-parts — and sends the shares
//! `f_i(j)`, `g_i(j)` to each `P_j` privately.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::super::group::{self, Polynomial};
use super::super::key::KeyShare;
use super::super::{Error, tag};
use super::{Context, PresignParams, commitment_hash};
use crate::codec::{Reader, Writer};
use crate::id::SignerId;

/// Round-1 broadcast of `P_i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round1Broadcast {
    /// `c_i = H(sid, i, (F_i^b, G_i^b) for every b)`: commitment to the Feldman vectors revealed in round 2.
    pub commitment: [u8; 32],
}

/// Round-1 private message from `P_i` to `P_j` (secret: send over a confidential channel).
#[derive(PartialEq, Eq)]
pub struct Round1Direct {
    /// `f_i^b(j)` for every presignature `b` of the batch: shares of `P_i`'s nonce contribution.
    pub k_shares: Vec<Scalar>,
    /// `g_i^b(j)`: shares of `P_i`'s mask contribution.
    pub a_shares: Vec<Scalar>,
}

/// `P_i`'s secret state after round 1.
pub struct Round1State {
    pub(crate) ctx: Context,
    /// Own Feldman vectors `F_i^b = (f_{i,0}·G, …, f_{i,t}·G)`.
    pub(crate) k_commitments: Vec<Vec<ProjectivePoint>>,
    /// Own `G_i^b`.
    pub(crate) a_commitments: Vec<Vec<ProjectivePoint>>,
    /// Own shares `f_i^b(i)`, `g_i^b(i)`.
    pub(crate) own: Round1Direct,
    /// Own commitment `c_i`.
    pub(crate) commitment: [u8; 32],
}

/// Starts a presigning run: samples this party's sharings and returns its state, broadcast and direct messages
/// (one per other member of `P`).
pub fn round1(
    key: &KeyShare,
    params: PresignParams,
    rng: &mut impl CryptoRng,
) -> Result<(Round1State, Round1Broadcast, BTreeMap<SignerId, Round1Direct>), Error> {
    let ctx = Context::new(key, params)?;
    let mut k_commitments = Vec::with_capacity(ctx.batch);
    let mut a_commitments = Vec::with_capacity(ctx.batch);
    let mut directs: BTreeMap<SignerId, Round1Direct> = ctx
        .parties
        .iter()
        .map(|j| {
            (
                *j,
                Round1Direct {
                    k_shares: Vec::with_capacity(ctx.batch),
                    a_shares: Vec::with_capacity(ctx.batch),
                },
            )
        })
        .collect();
    for _ in 0..ctx.batch {
        let f = Polynomial::random(group::random_scalar(rng), ctx.t, rng);
        let g = Polynomial::random(group::random_scalar(rng), ctx.t, rng);
        k_commitments.push(f.commit());
        a_commitments.push(g.commit());
        for (j, d) in &mut directs {
            d.k_shares.push(f.eval(*j));
            d.a_shares.push(g.eval(*j));
        }
    }
    let own = directs
        .remove(&ctx.me)
        .ok_or(Error::Misuse("this party is not in the presigning set"))?;
    let commitment = commitment_hash(
        "round1-commitment",
        &ctx.session,
        ctx.me,
        &[&k_commitments, &a_commitments],
    );
    let state = Round1State {
        ctx,
        k_commitments,
        a_commitments,
        own,
        commitment,
    };
    Ok((state, Round1Broadcast { commitment }, directs))
}

impl Round1Broadcast {
    /// Encodes (tag 0x21).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND1_BROADCAST);
        w.raw(&self.commitment);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND1_BROADCAST)?;
        let commitment = r.array::<32>()?;
        r.finish()?;
        Ok(Self { commitment })
    }
}

impl Round1Direct {
    /// Encodes (tag 0x22). Contains secret shares.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND1_DIRECT);
        group::put_scalars(&mut w, &self.k_shares);
        group::put_scalars(&mut w, &self.a_shares);
        w.finish()
    }

    /// Decodes strictly (canonical scalars).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND1_DIRECT)?;
        let k_shares = group::get_scalars(&mut r)?;
        let a_shares = group::get_scalars(&mut r)?;
        r.finish()?;
        Ok(Self { k_shares, a_shares })
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
