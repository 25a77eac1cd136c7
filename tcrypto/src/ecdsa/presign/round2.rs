//! Presigning round 2 (DJNPØ's multiplication `w = a·k`, with BGW degree reduction): `P_i` checks its round-1 shares
//! against the commitments `c_ji`, reveals its nonce parts `R_i^b`, forms `k_i = Σ_j f_j(i)`,
//! `a_i = Σ_j g_j(i)` and the degree-`2t` products `u_i = a_i·k_i` (of `w = a·k`) and `v_i = a_i·x_i` (of
//! `a·x`), and reshares each with a fresh degree-`t` polynomial: `h^u_i` under salted hash commitments (it
//! holds only ephemeral values and is opened if presigning fails), `h^v_i` under Feldman commitments `HV_i`
//! (it holds `a_i·x_i`, which must never be opened). It echoes the round-1 broadcasts it saw and names the
//! dealers whose shares did not match their commitments.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::super::group::{self, Polynomial};
use super::super::{Error, tag};
use super::round1::{Round1Broadcast, Round1Direct, Round1State};
use super::{
    Context, fail_if_any, get_hashes, get_vectors, malformed_unless, put_hashes, put_vectors, salt_for,
    share_commitment,
};
use crate::codec::{Reader, Writer};
use crate::id::SignerId;

/// Round-2 broadcast of `P_i` (one entry per presignature `b` where indexed by `b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round2Broadcast {
    /// `R_i^b = f_i^b(0)·G`, opening the round-1 nonce commitment.
    pub r_points: Vec<ProjectivePoint>,
    /// `HV_i^b`: Feldman vector of `h^v_i` (`HV_{i,0} = v_i·G = a_i·X_i`).
    pub v_commitments: Vec<Vec<ProjectivePoint>>,
    /// `c'_ij = H(sid, i, j, (h^u_i^b(j))_b, salt'_ij)` for every member `j`, in id order.
    pub u_share_commitments: Vec<[u8; 32]>,
    /// Dealers whose round-1 shares to `P_i` did not match their commitment (complaints).
    pub complaints: Vec<SignerId>,
    /// Echo: `H(round-1 broadcast of j)` for every member `j`, in id order.
    pub echo: Vec<[u8; 32]>,
}

/// Round-2 private message from `P_i` to `P_j` (secret).
#[derive(PartialEq, Eq)]
pub struct Round2Direct {
    /// `h^u_i^b(j)`: shares of `u_i = a_i·k_i`.
    pub u_shares: Vec<Scalar>,
    /// `h^v_i^b(j)`: shares of `v_i = a_i·x_i`.
    pub v_shares: Vec<Scalar>,
    /// `salt'_ij`, opening `c'_ij`.
    pub salt: [u8; 32],
}

/// `P_i`'s secret state after round 2.
pub struct Round2State {
    pub(crate) ctx: Context,
    pub(crate) r1: Round1State,
    /// Every member's round-1 broadcast (own included).
    pub(crate) round1: BTreeMap<SignerId, Round1Broadcast>,
    /// `a_i^b` (secret).
    pub(crate) a: Zeroizing<Vec<Scalar>>,
    /// `h^u_i^b` (ephemeral; opened for blame).
    pub(crate) hu: Vec<Polynomial>,
    /// Seed of the salts `salt'_ij`.
    pub(crate) seed: [u8; 32],
    /// Own `h^u_i(i)`, `h^v_i(i)`.
    pub(crate) own: Round2Direct,
    /// Own broadcast.
    pub(crate) broadcast: Round2Broadcast,
}

impl Round1State {
    /// Round 2: takes the other members' round-1 broadcasts and private shares (keyed by channel sender).
    pub fn round2(
        self,
        broadcasts: &BTreeMap<SignerId, Round1Broadcast>,
        directs: &BTreeMap<SignerId, Round1Direct>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Round2State, Round2Broadcast, BTreeMap<SignerId, Round2Direct>), Error> {
        let ctx = self.ctx.clone_of();
        ctx.check_senders(broadcasts.keys())?;
        ctx.check_senders(directs.keys())?;
        let p = ctx.parties.len();
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            malformed_unless(b.share_commitments.len() == p, *j, &mut bad);
        }
        for (j, d) in directs {
            malformed_unless(
                d.k_shares.len() == ctx.batch && d.a_shares.len() == ctx.batch,
                *j,
                &mut bad,
            );
        }
        fail_if_any(bad)?;
        let my_pos = ctx.position(ctx.me);
        let complaints: Vec<SignerId> = directs
            .iter()
            .filter(|(j, d)| d.commitment(&ctx, **j, ctx.me) != broadcasts[*j].share_commitments[my_pos])
            .map(|(j, _)| *j)
            .collect();

        let mut round1 = broadcasts.clone();
        round1.insert(ctx.me, self.broadcast.clone());
        let echo = round1
            .iter()
            .map(|(j, b)| echo_hash(&ctx, "round1-echo", *j, |w| b.write(w)))
            .collect();

        let x_i = ctx.x;
        let mut a_all = Zeroizing::new(Vec::with_capacity(ctx.batch));
        let mut hu_all = Vec::with_capacity(ctx.batch);
        let mut hv_all = Vec::with_capacity(ctx.batch);
        let mut v_commitments = Vec::with_capacity(ctx.batch);
        for b in 0..ctx.batch {
            let mut k: Scalar =
                self.own.k_shares[b] + directs.values().map(|d| d.k_shares[b]).sum::<Scalar>();
            let a: Scalar = self.own.a_shares[b] + directs.values().map(|d| d.a_shares[b]).sum::<Scalar>();
            let mut u = a * k;
            let mut v = a * x_i;
            let hu = Polynomial::random(u, ctx.t, rng);
            let hv = Polynomial::random(v, ctx.t, rng);
            k.zeroize();
            u.zeroize();
            v.zeroize();
            v_commitments.push(hv.commit());
            hu_all.push(hu);
            hv_all.push(hv);
            a_all.push(a);
        }
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut out = BTreeMap::new();
        let mut u_share_commitments = Vec::with_capacity(p);
        for j in &ctx.parties {
            let d = Round2Direct {
                u_shares: hu_all.iter().map(|h| h.eval(*j)).collect(),
                v_shares: hv_all.iter().map(|h| h.eval(*j)).collect(),
                salt: salt_for(&ctx, "round2", &seed, *j),
            };
            u_share_commitments.push(d.commitment(&ctx, ctx.me, *j));
            out.insert(*j, d);
        }
        let own = out
            .remove(&ctx.me)
            .ok_or(Error::Misuse("this party is not in the presigning set"))?;
        let broadcast = Round2Broadcast {
            r_points: self.r_points.clone(),
            v_commitments,
            u_share_commitments,
            complaints,
            echo,
        };
        let state = Round2State {
            ctx,
            r1: self,
            round1,
            a: a_all,
            hu: hu_all,
            seed,
            own,
            broadcast: broadcast.clone(),
        };
        Ok((state, broadcast, out))
    }
}

/// `H(label, sid, sender, encoding)`, used for echoes.
pub(crate) fn echo_hash(
    ctx: &Context,
    label: &'static str,
    sender: SignerId,
    write: impl FnOnce(&mut Writer),
) -> [u8; 32] {
    let mut w = Writer::bare();
    write(&mut w);
    let mut tr = group::Transcript::new(label);
    tr.bytes(ctx.session.as_bytes()).id(sender).bytes(w.as_slice());
    tr.digest()
}

impl Round2Direct {
    /// `c'_ij` for these shares (the `v` shares are checked against `HV_i` instead).
    pub(crate) fn commitment(&self, ctx: &Context, dealer: SignerId, receiver: SignerId) -> [u8; 32] {
        share_commitment(
            ctx,
            "round2-shares",
            dealer,
            receiver,
            &[&self.u_shares],
            &self.salt,
        )
    }

    /// Encodes (tag 0x24). Contains secret shares.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_DIRECT);
        group::put_scalars(&mut w, &self.u_shares);
        group::put_scalars(&mut w, &self.v_shares);
        w.raw(&self.salt);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND2_DIRECT)?;
        let u_shares = group::get_scalars(&mut r)?;
        let v_shares = group::get_scalars(&mut r)?;
        let salt = r.array::<32>()?;
        r.finish()?;
        Ok(Self {
            u_shares,
            v_shares,
            salt,
        })
    }
}

impl Round2Broadcast {
    /// Encodes (tag 0x23); the points uncompressed (`x || y`, see the presigning module).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_BROADCAST);
        self.write(&mut w);
        w.finish()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        group::put_points_wide(w, &self.r_points);
        put_vectors(w, &self.v_commitments);
        put_hashes(w, &self.u_share_commitments);
        group::put_ids(w, self.complaints.iter());
        put_hashes(w, &self.echo);
    }

    /// Decodes strictly (points on the curve, coordinates below `p`, so never the identity).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND2_BROADCAST)?;
        let r_points = group::get_points_wide(&mut r)?;
        let v_commitments = get_vectors(&mut r)?;
        let u_share_commitments = get_hashes(&mut r)?;
        let complaints = group::get_ids(&mut r)?;
        let echo = get_hashes(&mut r)?;
        r.finish()?;
        Ok(Self {
            r_points,
            v_commitments,
            u_share_commitments,
            complaints,
            echo,
        })
    }

    /// Checks the shape: `batch` entries, `t + 1` points per vector, one hash per member of `P`.
    pub(crate) fn well_formed(&self, ctx: &Context) -> bool {
        self.r_points.len() == ctx.batch
            && self.v_commitments.len() == ctx.batch
            && self
                .v_commitments
                .iter()
                .all(|v| v.len() == usize::from(ctx.t) + 1)
            && self.u_share_commitments.len() == ctx.parties.len()
            && self.echo.len() == ctx.parties.len()
            && self.complaints.iter().all(|c| ctx.parties.contains(c))
    }

    /// Whether a point is the identity (decoding refuses it; a locally built message may still hold one).
    pub(crate) fn has_identity(&self) -> bool {
        let id = ProjectivePoint::IDENTITY;
        self.r_points.contains(&id) || self.v_commitments.iter().flatten().any(|p| *p == id)
    }
}

impl Drop for Round2Direct {
    fn drop(&mut self) {
        self.u_shares.zeroize();
        self.v_shares.zeroize();
    }
}

impl fmt::Debug for Round2Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round2Direct(<redacted>)")
    }
}

impl fmt::Debug for Round2State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round2State")
            .field("me", &self.ctx.me)
            .field("secrets", &"<redacted>")
            .finish()
    }
}
