//! Presigning round 3 and output (DJNPØ §3: opening `w = a·k` and checking it in the exponent; §4 output of
//! preprocessing). In [`Round2State::round3`], `P_i` checks every round-2 message — the revealed Feldman
//! vectors against the round-1 commitments, the echoes, its private shares against the Feldman vectors, the
//! Chaum–Pedersen proofs — then forms its degree-`t` shares `u'_i = Σ_j λ_j h^u_j(i)` of `w = a·k` and
//! `v'_i = Σ_j λ_j h^v_j(i)` of `a·x` (BGW degree reduction with the Lagrange coefficients `λ_j` of `P`), and
//! broadcasts `u'_i` and `VX_i = v'_i·G`. [`Round3State::finish`] opens `w`, checks
//! `w·G == Σ_j λ_j U_j`, checks that the `VX_j` lie on one degree-`t` polynomial through `a·X = Σ_j λ_j V_j`,
//! and outputs the presignatures `(ρ_i = w^{-1}a_i, σ_i = w^{-1}v'_i)`.
//!
//! All checks are optimistic: aggregated or batched with random weights first, one by one only on failure,
//! to name the culprits.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::super::group::{self, get_point, put_point};
use super::super::{Error, Fault, tag};
use super::round2::{Round2Broadcast, Round2Direct, Round2State, dleq_challenge, identity_culprit};
use super::{
    Context, Presignature, PresignatureId, PresignaturePublic, commitment_hash, fail_if_any, malformed_unless,
};
use crate::codec::{Reader, Writer};
use crate::id::SignerId;

/// Round-3 broadcast of `P_i` (one entry per presignature `b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round3Broadcast {
    /// `u'_i^b`: `P_i`'s degree-`t` share of `w^b = a^b·k^b` (opened: `w` is public).
    pub w_shares: Vec<Scalar>,
    /// `VX_i^b = v'_i^b·G`: commitment to `P_i`'s share of `a^b·x`.
    pub vx: Vec<ProjectivePoint>,
    /// Echo: `H(round-2 broadcast of j)` for every member `j` of `P`, in id order.
    pub echo: Vec<[u8; 32]>,
}

/// `P_i`'s secret state after round 3.
pub struct Round3State {
    ctx: Context,
    /// `R^b = Σ_j F_j^b[0]`.
    r_points: Vec<ProjectivePoint>,
    /// `A_j^b` for every member `j` (from the aggregated Feldman vectors of `a`).
    a_points: Vec<BTreeMap<SignerId, ProjectivePoint>>,
    /// Every member's round-2 broadcast (own included).
    round2: BTreeMap<SignerId, Round2Broadcast>,
    /// Own `a_i^b`, `v'_i^b` (secret).
    a: Zeroizing<Vec<Scalar>>,
    v: Zeroizing<Vec<Scalar>>,
    /// Own round-3 broadcast.
    own: Round3Broadcast,
}

fn echo_hash(ctx: &Context, sender: SignerId, b: &Round2Broadcast) -> [u8; 32] {
    let mut w = Writer::bare();
    b.write(&mut w);
    let mut tr = group::Transcript::new("round2-echo");
    tr.bytes(ctx.session.as_bytes()).id(sender).bytes(w.as_slice());
    tr.digest()
}

/// Compares every echo with our own view: a sender whose message was seen differently equivocated.
fn check_echoes(
    ctx: &Context,
    mine: &BTreeMap<SignerId, [u8; 32]>,
    echoes: impl Iterator<Item = (SignerId, Vec<[u8; 32]>)>,
) -> Result<(), Error> {
    let mut bad = Vec::new();
    for (_echoer, echo) in echoes {
        for (s, seen) in ctx.parties.iter().zip(&echo) {
            if mine.get(s) != Some(seen) {
                bad.push((*s, Fault::Equivocation));
            }
        }
    }
    fail_if_any(bad)
}

impl Round2State {
    /// Round 3: takes the other members' round-2 broadcasts and private shares.
    pub fn round3(
        self,
        broadcasts: &BTreeMap<SignerId, Round2Broadcast>,
        directs: &BTreeMap<SignerId, Round2Direct>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Round3State, Round3Broadcast), Error> {
        let Round2State {
            ctx,
            commitments1,
            shares1,
            own_k_points,
            own_a_points,
            a,
            own2,
            broadcast,
        } = self;
        let ctx_ref = &ctx;
        let ctx = ctx_ref;
        ctx.check_senders(broadcasts.keys())?;
        ctx.check_senders(directs.keys())?;
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            malformed_unless(b.well_formed(ctx), *j, &mut bad);
            if b.has_identity() {
                identity_culprit(*j, &mut bad);
            }
        }
        for (j, d) in directs {
            malformed_unless(
                d.u_shares.len() == ctx.batch && d.v_shares.len() == ctx.batch,
                *j,
                &mut bad,
            );
        }
        fail_if_any(bad)?;

        // Equivocation of round 1 (echoes) and opening of the round-1 commitments.
        check_echoes(
            ctx,
            &commitments1,
            broadcasts.iter().map(|(j, b)| (*j, b.echo.clone())),
        )?;
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            let c = commitment_hash(
                "round1-commitment",
                &ctx.session,
                *j,
                &[&b.k_commitments, &b.a_commitments],
            );
            if Some(&c) != commitments1.get(j) {
                bad.push((*j, Fault::WrongCommitment));
            }
        }
        fail_if_any(bad)?;

        let mut all: BTreeMap<SignerId, Round2Broadcast> = broadcasts.clone();
        all.insert(ctx.me, broadcast.clone());
        let t1 = usize::from(ctx.t) + 1;

        // Aggregated Feldman vectors of k and a: Fsum^b, Gsum^b.
        let sum_vectors = |pick: &dyn Fn(&Round2Broadcast) -> &Vec<Vec<ProjectivePoint>>| {
            (0..ctx.batch)
                .map(|b| {
                    (0..t1)
                        .map(|m| all.values().map(|x| pick(x)[b][m]).sum::<ProjectivePoint>())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let f_sum = sum_vectors(&|x| &x.k_commitments);
        let g_sum = sum_vectors(&|x| &x.a_commitments);

        // Own round-1 shares against the Feldman vectors: aggregated first (k_i·G == Fsum(i)), per dealer on
        // failure.
        let mut bad = Vec::new();
        for b in 0..ctx.batch {
            let ok = own_k_points[b] == group::eval_commitment(&f_sum[b], ctx.me)
                && own_a_points[b] == group::eval_commitment(&g_sum[b], ctx.me);
            if !ok {
                for (j, d) in &shares1 {
                    let x = &all[j];
                    if group::mul_g(&d.k_shares[b]) != group::eval_commitment(&x.k_commitments[b], ctx.me)
                        || group::mul_g(&d.a_shares[b]) != group::eval_commitment(&x.a_commitments[b], ctx.me)
                    {
                        bad.push((*j, Fault::WrongShare));
                    }
                }
            }
        }
        fail_if_any(bad)?;

        // Resharing values against HU_j, HV_j: one batched check with random weights.
        let mut own_directs: BTreeMap<SignerId, (&[Scalar], &[Scalar])> = directs
            .iter()
            .map(|(j, d)| (*j, (d.u_shares.as_slice(), d.v_shares.as_slice())))
            .collect();
        own_directs.insert(ctx.me, (own2.u_shares.as_slice(), own2.v_shares.as_slice()));
        let mut lhs = Scalar::ZERO;
        let mut terms = Vec::with_capacity(2 * ctx.parties.len() * ctx.batch);
        for (j, (us, vs)) in &own_directs {
            let x = &all[j];
            for b in 0..ctx.batch {
                let (bu, bv) = (group::random_weight(rng), group::random_weight(rng));
                lhs += bu * us[b] + bv * vs[b];
                terms.push((group::eval_commitment(&x.u_commitments[b], ctx.me), bu));
                terms.push((group::eval_commitment(&x.v_commitments[b], ctx.me), bv));
            }
        }
        if group::mul_g(&lhs) != group::lincomb_vartime(&terms) {
            let mut bad = Vec::new();
            for (j, (us, vs)) in &own_directs {
                let x = &all[j];
                for b in 0..ctx.batch {
                    if group::mul_g(&us[b]) != group::eval_commitment(&x.u_commitments[b], ctx.me)
                        || group::mul_g(&vs[b]) != group::eval_commitment(&x.v_commitments[b], ctx.me)
                    {
                        bad.push((*j, Fault::WrongShare));
                    }
                }
            }
            fail_if_any(bad)?;
        }

        // Public shares A_j^b, K_j^b of every member, and the Chaum–Pedersen proofs (batched).
        let a_points: Vec<BTreeMap<SignerId, ProjectivePoint>> = (0..ctx.batch)
            .map(|b| {
                ctx.parties
                    .iter()
                    .map(|j| (*j, group::eval_commitment(&g_sum[b], *j)))
                    .collect()
            })
            .collect();
        let k_points: Vec<BTreeMap<SignerId, ProjectivePoint>> = (0..ctx.batch)
            .map(|b| {
                ctx.parties
                    .iter()
                    .map(|j| (*j, group::eval_commitment(&f_sum[b], *j)))
                    .collect()
            })
            .collect();
        let proof_terms = |j: SignerId, b: usize, w: [Scalar; 3]| {
            let x = &all[&j];
            let p = &x.proofs[b];
            let (a, k, xj) = (a_points[b][&j], k_points[b][&j], ctx.public_shares[&j]);
            let (u, v) = (x.u_commitments[b][0], x.v_commitments[b][0]);
            let c = dleq_challenge(ctx, j, b, [&a, &k, &xj, &u, &v, &p.t1, &p.t2, &p.t3]);
            // w0(zG - T1 - cA) + w1(zK - T2 - cU) + w2(zX_j - T3 - cV) == 0; the G term is returned apart.
            let g_coeff = w[0] * p.z;
            let terms = [
                (p.t1, -w[0]),
                (a, -(w[0] * c)),
                (k, w[1] * p.z),
                (p.t2, -w[1]),
                (u, -(w[1] * c)),
                (xj, w[2] * p.z),
                (p.t3, -w[2]),
                (v, -(w[2] * c)),
            ];
            (g_coeff, terms)
        };
        let mut g_total = Scalar::ZERO;
        let mut terms = Vec::with_capacity(8 * ctx.parties.len() * ctx.batch);
        for j in ctx.others() {
            for b in 0..ctx.batch {
                let w = [
                    group::random_weight(rng),
                    group::random_weight(rng),
                    group::random_weight(rng),
                ];
                let (g, t) = proof_terms(j, b, w);
                g_total += g;
                terms.extend_from_slice(&t);
            }
        }
        terms.push((ProjectivePoint::GENERATOR, g_total));
        if group::lincomb_vartime(&terms) != ProjectivePoint::IDENTITY {
            let mut bad = Vec::new();
            for j in ctx.others() {
                for b in 0..ctx.batch {
                    for i in 0..3 {
                        let mut w = [Scalar::ZERO; 3];
                        w[i] = Scalar::ONE;
                        let (g, t) = proof_terms(j, b, w);
                        let mut terms = t.to_vec();
                        terms.push((ProjectivePoint::GENERATOR, g));
                        if group::lincomb_vartime(&terms) != ProjectivePoint::IDENTITY {
                            bad.push((j, Fault::WrongProof));
                        }
                    }
                }
            }
            fail_if_any(bad)?;
        }

        // R^b, then BGW degree reduction: u'_i = Σ λ_j h^u_j(i), v'_i = Σ λ_j h^v_j(i).
        let r_points: Vec<ProjectivePoint> = (0..ctx.batch).map(|b| f_sum[b][0]).collect();
        if r_points.iter().any(|r| *r == ProjectivePoint::IDENTITY) {
            return Err(Error::Degenerate("R is the identity"));
        }
        let mut w_shares = Vec::with_capacity(ctx.batch);
        let mut v = Zeroizing::new(Vec::with_capacity(ctx.batch));
        let mut vx = Vec::with_capacity(ctx.batch);
        for b in 0..ctx.batch {
            let mut u_sum = Scalar::ZERO;
            let mut v_sum = Scalar::ZERO;
            for (j, (us, vs)) in &own_directs {
                let l = ctx.lambda(*j);
                u_sum += l * us[b];
                v_sum += l * vs[b];
            }
            w_shares.push(u_sum);
            vx.push(group::mul_g(&v_sum));
            v.push(v_sum);
            v_sum.zeroize();
        }
        let echo = all.iter().map(|(j, x)| echo_hash(ctx, *j, x)).collect();
        let own = Round3Broadcast { w_shares, vx, echo };
        drop(shares1);
        let state = Round3State {
            ctx: Context::clone_of(ctx),
            r_points,
            a_points,
            round2: all,
            a,
            v,
            own: own.clone(),
        };
        Ok((state, own))
    }
}

impl Round3State {
    /// Output: takes the other members' round-3 broadcasts, opens `w` and returns this party's batch of
    /// presignatures.
    pub fn finish(
        self,
        broadcasts: &BTreeMap<SignerId, Round3Broadcast>,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Presignature>, Error> {
        let ctx = &self.ctx;
        ctx.check_senders(broadcasts.keys())?;
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            malformed_unless(
                b.w_shares.len() == ctx.batch && b.vx.len() == ctx.batch && b.echo.len() == ctx.parties.len(),
                *j,
                &mut bad,
            );
            if b.vx.iter().any(|p| *p == ProjectivePoint::IDENTITY) {
                identity_culprit(*j, &mut bad);
            }
        }
        fail_if_any(bad)?;
        let mine: BTreeMap<SignerId, [u8; 32]> = ctx
            .parties
            .iter()
            .copied()
            .zip(self.own.echo.iter().copied())
            .collect();
        check_echoes(ctx, &mine, broadcasts.iter().map(|(j, b)| (*j, b.echo.clone())))?;
        let mut all = broadcasts.clone();
        all.insert(ctx.me, self.own.clone());

        let mut out = Vec::with_capacity(ctx.batch);
        for b in 0..ctx.batch {
            // Open w (degree t, all |P| >= 2t + 1 shares must agree) and check g^w = Σ λ_j U_j.
            let points: Vec<(SignerId, Scalar)> = all.iter().map(|(j, x)| (*j, x.w_shares[b])).collect();
            let opened = group::interpolate_checked(&points, ctx.t);
            let u_terms: Vec<(ProjectivePoint, Scalar)> = ctx
                .parties
                .iter()
                .map(|j| (self.round2[j].u_commitments[b][0], ctx.lambda(*j)))
                .collect();
            let w = match opened {
                Ok(w) if group::mul_g_vartime(&w) == group::lincomb_vartime(&u_terms) => w,
                _ => return Err(self.blame_opening(b, &all, true)),
            };
            let w_inv: Scalar = Option::from(w.invert()).ok_or(Error::Degenerate("w = a·k is zero"))?;

            // VX_j on one degree-t polynomial through a·X = Σ λ_j V_j: random dual-code check.
            let mut eval_points = vec![Scalar::ZERO];
            eval_points.extend(ctx.parties.iter().map(|j| group::scalar_of(*j)));
            let mu = random_dual_codeword(&eval_points, ctx.t, rng);
            let mut terms = Vec::with_capacity(2 * ctx.parties.len());
            for (i, j) in ctx.parties.iter().enumerate() {
                terms.push((all[j].vx[b], mu[i + 1]));
                terms.push((self.round2[j].v_commitments[b][0], mu[0] * ctx.lambda(*j)));
            }
            if group::lincomb_vartime(&terms) != ProjectivePoint::IDENTITY {
                return Err(self.blame_opening(b, &all, false));
            }

            let commitments = ctx
                .parties
                .iter()
                .map(|j| (*j, (self.a_points[b][j], all[j].vx[b])))
                .collect();
            let public = PresignaturePublic {
                id: PresignatureId {
                    session: ctx.session,
                    index: u32::try_from(b).unwrap_or(u32::MAX),
                },
                key_id: ctx.key_id,
                threshold: ctx.t + 1,
                r_point: self.r_points[b],
                w,
                commitments,
            };
            out.push(Presignature {
                signer: ctx.me,
                rho: w_inv * self.a[b],
                sigma: w_inv * self.v[b],
                public,
            });
        }
        Ok(out)
    }

    /// Blame for a failed opening: recompute the aggregated resharing vectors `Σ_j λ_j HU_j` (or `HV_j`) and
    /// name every party whose opened value (`u'_j·G`, or `VX_j`) is off it.
    fn blame_opening(&self, b: usize, all: &BTreeMap<SignerId, Round3Broadcast>, w: bool) -> Error {
        let ctx = &self.ctx;
        let t1 = usize::from(ctx.t) + 1;
        let agg: Vec<ProjectivePoint> = (0..t1)
            .map(|m| {
                let terms: Vec<(ProjectivePoint, Scalar)> = ctx
                    .parties
                    .iter()
                    .map(|j| {
                        let x = &self.round2[j];
                        let c = if w { &x.u_commitments } else { &x.v_commitments };
                        (c[b][m], ctx.lambda(*j))
                    })
                    .collect();
                group::lincomb_vartime(&terms)
            })
            .collect();
        let bad: Vec<(SignerId, Fault)> = ctx
            .parties
            .iter()
            .filter(|j| {
                let expected = group::eval_commitment(&agg, **j);
                let got = if w {
                    group::mul_g_vartime(&all[*j].w_shares[b])
                } else {
                    all[*j].vx[b]
                };
                expected != got
            })
            .map(|j| (*j, Fault::WrongOpening))
            .collect();
        if bad.is_empty() {
            Error::Degenerate("inconsistent opening without a culprit")
        } else {
            super::super::culprits(bad)
        }
    }
}

/// A random vector `μ` orthogonal to every evaluation vector `(f(α_0), …, f(α_{N-1}))` of a polynomial `f` of
/// degree `<= t` (the dual of the Reed–Solomon code): `μ_i = q(α_i) / Π_{m≠i}(α_i − α_m)` for a random `q` of
/// degree `<= N − t − 2`.
fn random_dual_codeword(alphas: &[Scalar], t: u16, rng: &mut impl CryptoRng) -> Vec<Scalar> {
    let deg = alphas.len().saturating_sub(usize::from(t) + 2);
    let q: Vec<Scalar> = (0..=deg).map(|_| group::random_scalar(rng)).collect();
    alphas
        .iter()
        .enumerate()
        .map(|(i, ai)| {
            let mut den = Scalar::ONE;
            for (m, am) in alphas.iter().enumerate() {
                if m != i {
                    den *= *ai - am;
                }
            }
            let mut qv = Scalar::ZERO;
            for c in q.iter().rev() {
                qv = qv * ai + c;
            }
            qv * Option::<Scalar>::from(den.invert()).unwrap_or(Scalar::ZERO)
        })
        .collect()
}

impl Round3Broadcast {
    /// Encodes (tag 0x25).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND3_BROADCAST);
        group::put_scalars(&mut w, &self.w_shares);
        w.u32(u32::try_from(self.vx.len()).unwrap_or(u32::MAX));
        for p in &self.vx {
            put_point(&mut w, p);
        }
        w.u32(u32::try_from(self.echo.len()).unwrap_or(u32::MAX));
        for e in &self.echo {
            w.raw(e);
        }
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND3_BROADCAST)?;
        let w_shares = group::get_scalars(&mut r)?;
        let n = r.count(group::POINT_LEN)?;
        let vx = (0..n).map(|_| get_point(&mut r)).collect::<Result<Vec<_>, _>>()?;
        let n = r.count(32)?;
        let echo = (0..n).map(|_| r.array::<32>()).collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self { w_shares, vx, echo })
    }
}

impl fmt::Debug for Round3State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round3State")
            .field("me", &self.ctx.me)
            .field("secrets", &"<redacted>")
            .finish()
    }
}
