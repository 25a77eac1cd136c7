//! Presigning round 2 (DJNPØ §3, multiplication; BGW degree reduction): `P_i` reveals its Feldman vectors
//! `F_i`, `G_i` (checked against `c_i` in round 3), forms its shares `k_i = Σ_j f_j(i)` and `a_i = Σ_j g_j(i)`,
//! the degree-`2t` products `u_i = a_i·k_i` and `v_i = a_i·x_i`, and reshares both with fresh degree-`t`
//! polynomials `h^u_i`, `h^v_i` (Feldman vectors `HU_i`, `HV_i`, so `U_i = HU_{i,0} = u_i·G` and
//! `V_i = HV_{i,0} = v_i·G`). A Chaum–Pedersen proof shows that one exponent `a_i` links
//! `(G, A_i)`, `(K_i, U_i)` and `(X_i, V_i)`, where `A_i = a_i·G` and `K_i = k_i·G` are what everyone derives from
//! the Feldman vectors. `P_i` also echoes the round-1 commitments it received, so equivocation is seen.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::super::group::{self, Polynomial, get_point, get_scalar, put_point, put_scalar};
use super::super::{Error, Fault, tag};
use super::round1::{Round1Broadcast, Round1Direct, Round1State};
use super::{Context, fail_if_any, get_vectors, malformed_unless, put_vectors};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// Chaum–Pedersen proof that `A = a·G`, `U = a·K` and `V = a·X_i` share the exponent `a`:
/// commitments `T1 = τ·G`, `T2 = τ·K`, `T3 = τ·X_i`, challenge `c = H(sid, i, b, A, K, X_i, U, V, T1, T2, T3)`,
/// response `z = τ + c·a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DleqProof {
    /// `T1 = τ·G`.
    pub t1: ProjectivePoint,
    /// `T2 = τ·K_i`.
    pub t2: ProjectivePoint,
    /// `T3 = τ·X_i`.
    pub t3: ProjectivePoint,
    /// `z = τ + c·a_i`.
    pub z: Scalar,
}

/// Round-2 broadcast of `P_i` (every vector has one entry per presignature `b` of the batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round2Broadcast {
    /// `F_i^b`: Feldman vector of `f_i^b` (its constant term is `P_i`'s part of `R`).
    pub k_commitments: Vec<Vec<ProjectivePoint>>,
    /// `G_i^b`: Feldman vector of `g_i^b`.
    pub a_commitments: Vec<Vec<ProjectivePoint>>,
    /// `HU_i^b`: Feldman vector of the resharing of `u_i = a_i·k_i`.
    pub u_commitments: Vec<Vec<ProjectivePoint>>,
    /// `HV_i^b`: Feldman vector of the resharing of `v_i = a_i·x_i`.
    pub v_commitments: Vec<Vec<ProjectivePoint>>,
    /// Proofs that `U_i^b` and `V_i^b` use `a_i^b`.
    pub proofs: Vec<DleqProof>,
    /// Echo: the round-1 commitment `c_j` received from every member `j` of `P`, in id order.
    pub echo: Vec<[u8; 32]>,
}

/// Round-2 private message from `P_i` to `P_j` (secret).
#[derive(PartialEq, Eq)]
pub struct Round2Direct {
    /// `h^u_i(j)` for each `b`: shares of `u_i`.
    pub u_shares: Vec<Scalar>,
    /// `h^v_i(j)` for each `b`: shares of `v_i`.
    pub v_shares: Vec<Scalar>,
}

/// `P_i`'s secret state after round 2.
pub struct Round2State {
    pub(crate) ctx: Context,
    /// Round-1 commitments of every member of `P` (own included).
    pub(crate) commitments1: BTreeMap<SignerId, [u8; 32]>,
    /// Round-1 shares received from every member (own included).
    pub(crate) shares1: BTreeMap<SignerId, Round1Direct>,
    /// Own `K_i^b = k_i·G`, `A_i^b = a_i·G`.
    pub(crate) own_k_points: Vec<ProjectivePoint>,
    pub(crate) own_a_points: Vec<ProjectivePoint>,
    /// Own `a_i^b` (secret).
    pub(crate) a: Zeroizing<Vec<Scalar>>,
    /// Own resharing values `h^u_i(i)`, `h^v_i(i)`.
    pub(crate) own2: Round2Direct,
    /// Own broadcast (for echo and aggregation).
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
        let Round1State {
            ctx,
            k_commitments,
            a_commitments,
            own,
            commitment,
        } = self;
        ctx.check_senders(broadcasts.keys())?;
        ctx.check_senders(directs.keys())?;
        let mut bad = Vec::new();
        for (j, d) in directs {
            malformed_unless(
                d.k_shares.len() == ctx.batch && d.a_shares.len() == ctx.batch,
                *j,
                &mut bad,
            );
        }
        fail_if_any(bad)?;

        let mut commitments1: BTreeMap<SignerId, [u8; 32]> =
            broadcasts.iter().map(|(j, b)| (*j, b.commitment)).collect();
        commitments1.insert(ctx.me, commitment);
        let echo: Vec<[u8; 32]> = commitments1.values().copied().collect();

        let mut shares1: BTreeMap<SignerId, Round1Direct> = BTreeMap::new();
        for (j, d) in directs {
            shares1.insert(
                *j,
                Round1Direct {
                    k_shares: d.k_shares.clone(),
                    a_shares: d.a_shares.clone(),
                },
            );
        }
        shares1.insert(ctx.me, own);

        let x_me = ctx.public_shares[&ctx.me];
        let mut out_directs: BTreeMap<SignerId, Round2Direct> = ctx
            .others()
            .map(|j| {
                (
                    j,
                    Round2Direct {
                        u_shares: Vec::with_capacity(ctx.batch),
                        v_shares: Vec::with_capacity(ctx.batch),
                    },
                )
            })
            .collect();
        let mut own2 = Round2Direct {
            u_shares: Vec::with_capacity(ctx.batch),
            v_shares: Vec::with_capacity(ctx.batch),
        };
        let mut a_all = Zeroizing::new(Vec::with_capacity(ctx.batch));
        let mut own_k_points = Vec::with_capacity(ctx.batch);
        let mut own_a_points = Vec::with_capacity(ctx.batch);
        let mut u_commitments = Vec::with_capacity(ctx.batch);
        let mut v_commitments = Vec::with_capacity(ctx.batch);
        let mut proofs = Vec::with_capacity(ctx.batch);
        for b in 0..ctx.batch {
            let mut k: Scalar = shares1.values().map(|d| d.k_shares[b]).sum();
            let a: Scalar = shares1.values().map(|d| d.a_shares[b]).sum();
            let mut u = a * k;
            let mut v = a * ctx.x;
            let hu = Polynomial::random(u, ctx.t, rng);
            let hv = Polynomial::random(v, ctx.t, rng);
            let hu_c = hu.commit();
            let hv_c = hv.commit();
            let k_point = group::mul_g(&k);
            let a_point = group::mul_g(&a);
            k.zeroize();
            u.zeroize();
            v.zeroize();
            let mut tau = group::random_scalar(rng);
            let t1 = group::mul_g(&tau);
            let t2 = k_point * tau;
            let t3 = x_me * tau;
            let c = dleq_challenge(
                &ctx,
                ctx.me,
                b,
                [&a_point, &k_point, &x_me, &hu_c[0], &hv_c[0], &t1, &t2, &t3],
            );
            let z = tau + c * a;
            tau.zeroize();
            proofs.push(DleqProof { t1, t2, t3, z });
            for (j, d) in &mut out_directs {
                d.u_shares.push(hu.eval(*j));
                d.v_shares.push(hv.eval(*j));
            }
            own2.u_shares.push(hu.eval(ctx.me));
            own2.v_shares.push(hv.eval(ctx.me));
            u_commitments.push(hu_c);
            v_commitments.push(hv_c);
            own_k_points.push(k_point);
            own_a_points.push(a_point);
            a_all.push(a);
        }
        let broadcast = Round2Broadcast {
            k_commitments,
            a_commitments,
            u_commitments,
            v_commitments,
            proofs,
            echo,
        };
        let state = Round2State {
            ctx,
            commitments1,
            shares1,
            own_k_points,
            own_a_points,
            a: a_all,
            own2,
            broadcast: broadcast.clone(),
        };
        Ok((state, broadcast, out_directs))
    }
}

/// The Fiat–Shamir challenge of a [`DleqProof`], binding the session, the prover, the batch index and
/// `[A, K, X_i, U, V, T1, T2, T3]`.
pub(crate) fn dleq_challenge(
    ctx: &Context,
    prover: SignerId,
    b: usize,
    points: [&ProjectivePoint; 8],
) -> Scalar {
    let mut tr = group::Transcript::new("round2-dleq");
    tr.bytes(ctx.session.as_bytes())
        .bytes(ctx.key_id.as_bytes())
        .id(prover)
        .u32(u32::try_from(b).unwrap_or(u32::MAX));
    for p in points {
        tr.point(p);
    }
    tr.challenge()
}

impl Round2Broadcast {
    /// Encodes (tag 0x23).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_BROADCAST);
        self.write(&mut w);
        w.finish()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        put_vectors(w, &self.k_commitments);
        put_vectors(w, &self.a_commitments);
        put_vectors(w, &self.u_commitments);
        put_vectors(w, &self.v_commitments);
        w.u32(u32::try_from(self.proofs.len()).unwrap_or(u32::MAX));
        for p in &self.proofs {
            put_point(w, &p.t1);
            put_point(w, &p.t2);
            put_point(w, &p.t3);
            put_scalar(w, &p.z);
        }
        w.u32(u32::try_from(self.echo.len()).unwrap_or(u32::MAX));
        for e in &self.echo {
            w.raw(e);
        }
    }

    /// Decodes strictly (canonical, non-identity points; canonical scalars).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND2_BROADCAST)?;
        let k_commitments = get_vectors(&mut r)?;
        let a_commitments = get_vectors(&mut r)?;
        let u_commitments = get_vectors(&mut r)?;
        let v_commitments = get_vectors(&mut r)?;
        let n = r.count(3 * group::POINT_LEN + group::SCALAR_LEN)?;
        let proofs = (0..n)
            .map(|_| {
                Ok(DleqProof {
                    t1: get_point(&mut r)?,
                    t2: get_point(&mut r)?,
                    t3: get_point(&mut r)?,
                    z: get_scalar(&mut r)?,
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let n = r.count(32)?;
        let echo = (0..n).map(|_| r.array::<32>()).collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            k_commitments,
            a_commitments,
            u_commitments,
            v_commitments,
            proofs,
            echo,
        })
    }

    /// Checks the shape: `batch` entries everywhere, `t + 1` points per vector, one echo per member of `P`.
    pub(crate) fn well_formed(&self, ctx: &Context) -> bool {
        let vec_ok = |vs: &[Vec<ProjectivePoint>]| {
            vs.len() == ctx.batch && vs.iter().all(|v| v.len() == usize::from(ctx.t) + 1)
        };
        vec_ok(&self.k_commitments)
            && vec_ok(&self.a_commitments)
            && vec_ok(&self.u_commitments)
            && vec_ok(&self.v_commitments)
            && self.proofs.len() == ctx.batch
            && self.echo.len() == ctx.parties.len()
    }

    /// Whether any point is the identity (decoding refuses it; a locally built message may still hold one).
    pub(crate) fn has_identity(&self) -> bool {
        let id = ProjectivePoint::IDENTITY;
        [
            &self.k_commitments,
            &self.a_commitments,
            &self.u_commitments,
            &self.v_commitments,
        ]
        .iter()
        .any(|vs| vs.iter().flatten().any(|p| *p == id))
            || self.proofs.iter().any(|p| p.t1 == id || p.t2 == id || p.t3 == id)
    }
}

impl Round2Direct {
    /// Encodes (tag 0x24). Contains secret shares.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_DIRECT);
        group::put_scalars(&mut w, &self.u_shares);
        group::put_scalars(&mut w, &self.v_shares);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND2_DIRECT)?;
        let u_shares = group::get_scalars(&mut r)?;
        let v_shares = group::get_scalars(&mut r)?;
        r.finish()?;
        Ok(Self { u_shares, v_shares })
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

/// Marks `j` as having sent an identity point.
pub(crate) fn identity_culprit(j: SignerId, out: &mut Vec<(SignerId, Fault)>) {
    out.push((j, Fault::IdentityPoint));
}
