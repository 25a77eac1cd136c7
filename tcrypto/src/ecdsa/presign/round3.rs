//! Presigning round 3 and output (DJNPØ: open `w = a·k` and check it in the exponent, `g^w = R^a`; output of the
//! preprocessing). In [`Round2State::round3`], `P_i` checks the round-2 messages (echoes, the opening of the
//! nonce commitments, its `h^u` shares against `c'_ji`, its `h^v` shares against `HV_j`), then forms its
//! degree-`t` shares `u'_i = Σ_j λ_j h^u_j(i)` of `w = a·k` and `v'_i = Σ_j λ_j h^v_j(i)` of `a·x` (BGW degree
//! reduction with the Lagrange coefficients `λ_j` of `P`) and broadcasts `u'_i`, `a_i·R`, `a_i·X`,
//! `A_i = a_i·G` and `VX_i = v'_i·G` (DJNPØ's openings in the exponent).
//!
//! [`Round3State::finish`] opens `w` (all `|P| >= 2t + 1` shares must lie on one degree-`t` polynomial) and
//! checks, with one random linear combination over the dual of the Reed–Solomon code (so the `t + 1` honest
//! values fix every value): `(0, w·G), (j, a_j·R)` lie on one degree-`t` polynomial (so `w = a·k` with
//! `R = k·G`); the `A_j` and the `VX_j` each lie on one; and `(0, 0), (j, a_j·X − VX_j)` lie on one (so the
//! `VX_j` share `a·x`). On success it outputs `ρ_i = w^{-1}a_i` and `σ_i = w^{-1}v'_i`. On failure every
//! party opens its ephemeral polynomials ([`BlameReveal`]) and [`BlameState::conclude`] recomputes what each
//! party should have sent and names who did not.

use std::collections::BTreeMap;
use std::fmt;

use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::super::group;
use super::super::{Error, Fault, tag};
use super::round1::{Round1Broadcast, Round1Direct};
use super::round2::{Round2Broadcast, Round2Direct, Round2State, echo_hash};
use super::{
    Context, Presignature, PresignatureId, PresignaturePublic, fail_if_any, get_hashes, malformed_unless,
    put_hashes, salt_for,
};
use crate::codec::{Reader, Writer};
use crate::id::SignerId;

/// Round-3 broadcast of `P_i` (one entry per presignature `b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round3Broadcast {
    /// `u'_i^b`: `P_i`'s degree-`t` share of `w^b = a^b·k^b` (opened: `w` is public).
    pub w_shares: Vec<Scalar>,
    /// `a_i^b·R^b`.
    pub a_r: Vec<ProjectivePoint>,
    /// `a_i^b·X`.
    pub a_x: Vec<ProjectivePoint>,
    /// `A_i^b = a_i^b·G` (so `K_i = w^{-1}·A_i` commits to `P_i`'s share of `k^{-1}`).
    pub a_g: Vec<ProjectivePoint>,
    /// `VX_i^b = v'_i^b·G` (so `KX_i = w^{-1}·VX_i` commits to `P_i`'s share of `k^{-1}x`).
    pub vx: Vec<ProjectivePoint>,
    /// Dealers whose round-2 shares to `P_i` did not match their commitments (complaints).
    pub complaints: Vec<SignerId>,
    /// Echo: `H(round-2 broadcast of j)` for every member `j`, in id order.
    pub echo: Vec<[u8; 32]>,
}

/// `P_i`'s secret state after round 3.
pub struct Round3State {
    ctx: Context,
    r2: Round2State,
    /// Every member's round-2 broadcast.
    round2: BTreeMap<SignerId, Round2Broadcast>,
    /// `R^b = Σ_j R_j^b`.
    r_points: Vec<ProjectivePoint>,
    /// `v'_i^b` (secret).
    v: Zeroizing<Vec<Scalar>>,
    own: Round3Broadcast,
}

/// A party's opening of its ephemeral polynomials after a failed presigning run (never the resharing of
/// `a_i·x_i`): enough for everyone to recompute what it sent.
#[derive(PartialEq, Eq)]
pub struct BlameReveal {
    /// Coefficients of `f_i^b` (`t + 1` each).
    pub f: Vec<Vec<Scalar>>,
    /// Coefficients of `g_i^b`.
    pub g: Vec<Vec<Scalar>>,
    /// Coefficients of `h^u_i^b`.
    pub hu: Vec<Vec<Scalar>>,
    /// Seeds of the round-1 and round-2 salts.
    pub seeds: [[u8; 32]; 2],
}

/// State of a failed run, waiting for the other members' [`BlameReveal`]s.
pub struct BlameState {
    ctx: Context,
    round1: BTreeMap<SignerId, Round1Broadcast>,
    round2: BTreeMap<SignerId, Round2Broadcast>,
    round3: BTreeMap<SignerId, Round3Broadcast>,
    r_points: Vec<ProjectivePoint>,
    own: BlameReveal,
}

/// What [`Round3State::finish`] produces.
#[derive(Debug)]
pub enum Finished {
    /// This party's checks passed: its presignatures, in batch order.
    Presignatures(Output),
    /// A check failed: broadcast the [`BlameReveal`], collect everyone's, and call [`BlameState::conclude`].
    Blame(Box<BlameState>, BlameReveal),
}

/// A successful run's output. Use the presignatures only once the driver knows that every member of `P`
/// succeeded; if another member reports a failed check, call [`Output::abort_and_reveal`] instead (which
/// destroys the presignatures) so that the blame step can name the culprit.
pub struct Output {
    presignatures: Vec<Presignature>,
    blame: Box<BlameState>,
}

impl Output {
    /// The presignatures, in batch order.
    pub fn into_presignatures(self) -> Vec<Presignature> {
        self.presignatures
    }

    /// The presignatures' public parts, in batch order (what every member must agree on before any is used).
    pub fn public_parts(&self) -> impl Iterator<Item = &PresignaturePublic> {
        self.presignatures.iter().map(Presignature::public)
    }

    /// Discards the presignatures and opens this party's ephemeral polynomials for the blame step.
    pub fn abort_and_reveal(self) -> (Box<BlameState>, BlameReveal) {
        let reveal = self.blame.own.duplicate();
        (self.blame, reveal)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("presignatures", &self.presignatures)
            .finish_non_exhaustive()
    }
}

/// Compares every echo with our own view: a sender whose message was seen differently equivocated.
fn check_echoes(
    ctx: &Context,
    mine: &[[u8; 32]],
    echoes: impl Iterator<Item = (SignerId, Vec<[u8; 32]>)>,
) -> Result<(), Error> {
    let mut bad = Vec::new();
    for (_echoer, echo) in echoes {
        for ((s, seen), my) in ctx.parties.iter().zip(&echo).zip(mine) {
            if seen != my {
                bad.push((*s, Fault::Equivocation));
            }
        }
    }
    fail_if_any(bad)
}

fn complaints_error(list: impl Iterator<Item = SignerId>) -> Result<(), Error> {
    fail_if_any(list.map(|j| (j, Fault::WrongShare)).collect())
}

impl Round2State {
    /// Round 3: takes the other members' round-2 broadcasts and private shares.
    #[allow(clippy::needless_range_loop)] // `b` indexes several per-presignature vectors at once
    pub fn round3(
        self,
        broadcasts: &BTreeMap<SignerId, Round2Broadcast>,
        directs: &BTreeMap<SignerId, Round2Direct>,
        rng: &mut impl CryptoRng,
    ) -> Result<(Round3State, Round3Broadcast), Error> {
        let ctx = self.ctx.clone_of();
        ctx.check_senders(broadcasts.keys())?;
        ctx.check_senders(directs.keys())?;
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            if b.has_identity() {
                bad.push((*j, Fault::IdentityPoint));
            }
            malformed_unless(b.well_formed(&ctx), *j, &mut bad);
        }
        for (j, d) in directs {
            malformed_unless(
                d.u_shares.len() == ctx.batch && d.v_shares.len() == ctx.batch,
                *j,
                &mut bad,
            );
        }
        fail_if_any(bad)?;
        // Complaints about round-1 dealings abort the run, naming the accused dealer.
        complaints_error(
            self.broadcast
                .complaints
                .iter()
                .chain(broadcasts.values().flat_map(|b| b.complaints.iter()))
                .copied(),
        )?;
        // Equivocation in round 1, then the opening of the nonce commitments.
        let my_echo: Vec<[u8; 32]> = self.broadcast.echo.clone();
        check_echoes(
            &ctx,
            &my_echo,
            broadcasts.iter().map(|(j, b)| (*j, b.echo.clone())),
        )?;
        let bad: Vec<(SignerId, Fault)> = broadcasts
            .iter()
            .filter(|(j, b)| {
                super::round1::r_commitment(&ctx, **j, &b.r_points) != self.round1[*j].r_commitment
            })
            .map(|(j, _)| (*j, Fault::WrongCommitment))
            .collect();
        fail_if_any(bad)?;

        let mut round2 = broadcasts.clone();
        round2.insert(ctx.me, self.broadcast.clone());
        let my_pos = ctx.position(ctx.me);

        // Own h^u shares against c'_ji; own h^v shares against HV_j (batched, per dealer on failure).
        let mut complaints: Vec<SignerId> = directs
            .iter()
            .filter(|(j, d)| d.commitment(&ctx, **j, ctx.me) != round2[*j].u_share_commitments[my_pos])
            .map(|(j, _)| *j)
            .collect();
        let mut lhs = Scalar::ZERO;
        let mut terms = Vec::with_capacity(ctx.parties.len() * ctx.batch);
        for (j, d) in directs {
            for b in 0..ctx.batch {
                let wgt = group::random_weight(rng);
                lhs += wgt * d.v_shares[b];
                terms.push((group::eval_commitment(&round2[j].v_commitments[b], ctx.me), wgt));
            }
        }
        if group::mul_g(&lhs) != group::lincomb_vartime(&terms) {
            for (j, d) in directs {
                let ok = (0..ctx.batch).all(|b| {
                    group::mul_g(&d.v_shares[b])
                        == group::eval_commitment(&round2[j].v_commitments[b], ctx.me)
                });
                if !ok && !complaints.contains(j) {
                    complaints.push(*j);
                }
            }
            complaints.sort();
        }

        let r_points: Vec<ProjectivePoint> = (0..ctx.batch)
            .map(|b| round2.values().map(|x| x.r_points[b]).sum())
            .collect();
        if r_points.contains(&ProjectivePoint::IDENTITY) {
            return Err(Error::Degenerate("R is the identity"));
        }
        let mut v = Zeroizing::new(Vec::with_capacity(ctx.batch));
        let mut own = Round3Broadcast {
            w_shares: Vec::with_capacity(ctx.batch),
            a_r: Vec::with_capacity(ctx.batch),
            a_x: Vec::with_capacity(ctx.batch),
            a_g: Vec::with_capacity(ctx.batch),
            vx: Vec::with_capacity(ctx.batch),
            complaints,
            echo: round2
                .iter()
                .map(|(j, b)| echo_hash(&ctx, "round2-echo", *j, |w| b.write(w)))
                .collect(),
        };
        for b in 0..ctx.batch {
            let mut u_sum = ctx.lambda(ctx.me) * self.own.u_shares[b];
            let mut v_sum = ctx.lambda(ctx.me) * self.own.v_shares[b];
            for (j, d) in directs {
                let l = ctx.lambda(*j);
                u_sum += l * d.u_shares[b];
                v_sum += l * d.v_shares[b];
            }
            let a = self.a[b];
            own.w_shares.push(u_sum);
            own.a_x.push(ctx.x_table.mul(&a));
            own.a_g.push(group::mul_g(&a));
            own.vx.push(group::mul_g(&v_sum));
            v.push(v_sum);
            v_sum.zeroize();
        }
        // `a_i^b·R^b`: secret `a`, one constant-time multiplication per presignature (with the OpenSSL backend, one
        // field inversion for the whole batch and OpenSSL's constant-time variable-base multiplication).
        let a_terms = Zeroizing::new(
            r_points
                .iter()
                .zip(self.a.iter())
                .map(|(r, a)| (*r, *a))
                .collect::<Vec<_>>(),
        );
        own.a_r = group::mul_each(&a_terms);
        drop(a_terms);
        let state = Round3State {
            ctx,
            r2: self,
            round2,
            r_points,
            v,
            own: own.clone(),
        };
        Ok((state, own))
    }
}

impl Round3State {
    /// Output: takes the other members' round-3 broadcasts, opens `w` and returns this party's presignatures,
    /// or — if a check fails — the blame step.
    pub fn finish(
        self,
        broadcasts: &BTreeMap<SignerId, Round3Broadcast>,
        rng: &mut impl CryptoRng,
    ) -> Result<Finished, Error> {
        let ctx = &self.ctx;
        ctx.check_senders(broadcasts.keys())?;
        let mut bad = Vec::new();
        for (j, b) in broadcasts {
            let pts = [&b.a_r, &b.a_x, &b.a_g, &b.vx];
            if pts.iter().any(|v| v.contains(&ProjectivePoint::IDENTITY)) {
                bad.push((*j, Fault::IdentityPoint));
            }
            malformed_unless(
                b.w_shares.len() == ctx.batch
                    && pts.iter().all(|v| v.len() == ctx.batch)
                    && b.echo.len() == ctx.parties.len()
                    && b.complaints.iter().all(|c| ctx.parties.contains(c)),
                *j,
                &mut bad,
            );
        }
        fail_if_any(bad)?;
        complaints_error(
            self.own
                .complaints
                .iter()
                .chain(broadcasts.values().flat_map(|b| b.complaints.iter()))
                .copied(),
        )?;
        check_echoes(
            ctx,
            &self.own.echo,
            broadcasts.iter().map(|(j, b)| (*j, b.echo.clone())),
        )?;
        let mut all = broadcasts.clone();
        all.insert(ctx.me, self.own.clone());

        // Every opened share of `w^b` must lie on one degree-`t` polynomial (a scalar check per presignature).
        let mut ws = Vec::with_capacity(ctx.batch);
        let (ap, bp) = (&ctx.alphas0[1..], &ctx.weights);
        for b in 0..ctx.batch {
            let ys: Vec<Scalar> = all.values().map(|x| x.w_shares[b]).collect();
            if !group::on_low_degree_polynomial(ap, bp, &ys, ctx.t) {
                let (state, reveal) = self.blame_state(all);
                return Ok(Finished::Blame(state, reveal));
            }
            ws.push(ys.iter().zip(&ctx.lambdas).map(|(y, l)| *y * l).sum::<Scalar>());
        }
        if !self.openings_consistent(&all, &ws, rng) {
            let (state, reveal) = self.blame_state(all);
            return Ok(Finished::Blame(state, reveal));
        }
        let mut out = Vec::with_capacity(ctx.batch);
        for (b, w) in ws.into_iter().enumerate() {
            let w_inv: Scalar = Option::from(w.invert()).ok_or(Error::Degenerate("w = a·k is zero"))?;
            let commitments = ctx
                .parties
                .iter()
                .map(|j| (*j, (all[j].a_g[b], all[j].vx[b])))
                .collect();
            out.push(Presignature {
                signer: ctx.me,
                rho: w_inv * self.r2.a[b],
                sigma: w_inv * self.v[b],
                public: PresignaturePublic {
                    id: PresignatureId {
                        session: ctx.session,
                        index: u32::try_from(b).unwrap_or(u32::MAX),
                    },
                    key_id: ctx.key_id,
                    threshold: ctx.t + 1,
                    r_point: self.r_points[b],
                    w,
                    commitments,
                },
            });
        }
        let (blame, _) = self.blame_state(all);
        Ok(Finished::Presignatures(Output {
            presignatures: out,
            blame,
        }))
    }

    /// The openings in the exponent, checked all at once: for every presignature `b`, `(0, w^b·G), (j, a_j^b·R^b)`
    /// lie on one degree-`t` polynomial (DJNPØ's `g^w = R^a`), so do the `A_j^b` and the `VX_j^b`, and
    /// `(0, 0), (j, a_j^b·X − VX_j^b)` do too.
    ///
    /// Each of the four checks is one random vector `μ` of the dual of the Reed–Solomon code (`Σ_j μ_j Y_j = 0` for
    /// every low-degree `Y`), the same for the whole batch, and the presignatures are combined with random 128-bit
    /// weights `ρ_b` (error `2^-128 + 1/n`): `Σ_j μ_j·(Σ_b ρ_b Y_j^b) = 0`. The inner sums have short scalars and the
    /// outer one has a few terms per party, about half the additions of one full-length term per point. Our own
    /// `A_i^b`, `VX_i^b`, `a_i^b·X` are known multiples of `G` and `X`: they enter as two constant-time
    /// multiplications by the combined secret scalars instead of `3·batch` terms.
    fn openings_consistent(
        &self,
        all: &BTreeMap<SignerId, Round3Broadcast>,
        ws: &[Scalar],
        rng: &mut impl CryptoRng,
    ) -> bool {
        let ctx = &self.ctx;
        let (a0, b0) = (&ctx.alphas0, &ctx.weights0);
        let (ap, bp) = (&ctx.alphas0[1..], &ctx.weights);
        let m1 = group::random_dual_codeword(a0, b0, ctx.t, rng); // (0, wG), (j, a_j R)
        let m2 = group::random_dual_codeword(ap, bp, ctx.t, rng); // (j, A_j)
        let m3 = group::random_dual_codeword(ap, bp, ctx.t, rng); // (j, VX_j)
        let m4 = group::random_dual_codeword(a0, b0, ctx.t, rng); // (0, 0), (j, a_j X − VX_j)
        // One presignature needs no weights.
        let rho: Vec<Scalar> = if ctx.batch == 1 {
            vec![Scalar::ONE]
        } else {
            (0..ctx.batch).map(|_| group::random_weight(rng)).collect()
        };
        let combined = |points: &[ProjectivePoint]| {
            let terms: Vec<(ProjectivePoint, Scalar)> =
                points.iter().copied().zip(rho.iter().copied()).collect();
            group::lincomb_vartime(&terms)
        };
        let w_rho: Scalar = ws.iter().zip(&rho).map(|(w, r)| *w * r).sum();
        let mut terms = vec![(ProjectivePoint::GENERATOR, m1[0] * w_rho)];
        let mut own = ProjectivePoint::IDENTITY;
        for (i, j) in ctx.parties.iter().enumerate() {
            let x = &all[j];
            terms.push((combined(&x.a_r), m1[i + 1]));
            if *j == ctx.me {
                // Secret scalars: constant-time multiplications only.
                let mut a_rho: Scalar = self.r2.a.iter().zip(&rho).map(|(a, r)| *a * r).sum();
                let mut v_rho: Scalar = self.v.iter().zip(&rho).map(|(v, r)| *v * r).sum();
                let mut g_scalar = m2[i] * a_rho + (m3[i] - m4[i + 1]) * v_rho;
                let mut x_scalar = m4[i + 1] * a_rho;
                own = group::mul_g(&g_scalar) + ctx.x_table.mul(&x_scalar);
                for s in [&mut a_rho, &mut v_rho, &mut g_scalar, &mut x_scalar] {
                    s.zeroize();
                }
            } else {
                terms.push((combined(&x.a_g), m2[i]));
                terms.push((combined(&x.vx), m3[i] - m4[i + 1]));
                terms.push((combined(&x.a_x), m4[i + 1]));
            }
        }
        group::lincomb_vartime(&terms) + own == ProjectivePoint::IDENTITY
    }

    fn blame_state(&self, round3: BTreeMap<SignerId, Round3Broadcast>) -> (Box<BlameState>, BlameReveal) {
        let coeffs = |ps: &[group::Polynomial]| ps.iter().map(|p| p.coefficients().to_vec()).collect();
        let own = BlameReveal {
            f: coeffs(&self.r2.r1.f),
            g: coeffs(&self.r2.r1.g),
            hu: coeffs(&self.r2.hu),
            seeds: [self.r2.r1.seed, self.r2.seed],
        };
        let reveal = own.duplicate();
        let state = BlameState {
            ctx: self.ctx.clone_of(),
            round1: self.r2.round1.clone(),
            round2: self.round2.clone(),
            round3,
            r_points: self.r_points.clone(),
            own,
        };
        (Box::new(state), reveal)
    }
}

impl BlameState {
    /// Concludes a failed run from the other members' reveals: recomputes every party's shares, products,
    /// resharings and openings and names who deviated (a member that sends no reveal is named too).
    pub fn conclude(self, reveals: &BTreeMap<SignerId, BlameReveal>) -> Error {
        let ctx = &self.ctx;
        let t1 = usize::from(ctx.t) + 1;
        let mut bad: Vec<(SignerId, Fault)> = Vec::new();
        let mut all: BTreeMap<SignerId, &BlameReveal> = BTreeMap::new();
        for j in ctx.others() {
            match reveals.get(&j) {
                Some(r)
                    if [&r.f, &r.g, &r.hu]
                        .iter()
                        .all(|v| v.len() == ctx.batch && v.iter().all(|c| c.len() == t1)) =>
                {
                    all.insert(j, r);
                }
                _ => bad.push((j, Fault::Malformed)),
            }
        }
        all.insert(ctx.me, &self.own);
        if !bad.is_empty() {
            return super::super::culprits(bad);
        }
        let eval = |c: &[Scalar], j: SignerId| {
            let x = group::scalar_of(j);
            c.iter().rev().fold(Scalar::ZERO, |acc, k| acc * x + k)
        };
        // Dealers: shares must match the commitments c_ij, c'_ij and R_i.
        for (i, rv) in &all {
            let pos_ok = ctx.parties.iter().enumerate().all(|(pj, j)| {
                let d1 = Round1Direct {
                    k_shares: rv.f.iter().map(|c| eval(c, *j)).collect(),
                    a_shares: rv.g.iter().map(|c| eval(c, *j)).collect(),
                    salt: salt_for(ctx, "round1", &rv.seeds[0], *j),
                };
                let u_ok = {
                    let d2 = Round2Direct {
                        u_shares: rv.hu.iter().map(|c| eval(c, *j)).collect(),
                        v_shares: Vec::new(),
                        salt: salt_for(ctx, "round2", &rv.seeds[1], *j),
                    };
                    d2.commitment(ctx, *i, *j) == self.round2[i].u_share_commitments[pj]
                };
                d1.commitment(ctx, *i, *j) == self.round1[i].share_commitments[pj] && u_ok
            });
            let r_ok = (0..ctx.batch).all(|b| group::mul_g(&rv.f[b][0]) == self.round2[i].r_points[b]);
            if !pos_ok || !r_ok {
                bad.push((*i, Fault::WrongCommitment));
            }
        }
        if !bad.is_empty() {
            return super::super::culprits(bad);
        }
        // Every party: its products, resharings and openings.
        for j in &ctx.parties {
            let x3 = &self.round3[j];
            for b in 0..ctx.batch {
                let k: Scalar = all.values().map(|rv| eval(&rv.f[b], *j)).sum();
                let a: Scalar = all.values().map(|rv| eval(&rv.g[b], *j)).sum();
                let hu0 = all[j].hu[b][0];
                let v0 = self.round2[j].v_commitments[b][0];
                let xj = ctx.public_shares[j];
                let w_share: Scalar = ctx
                    .parties
                    .iter()
                    .map(|m| ctx.lambda(*m) * eval(&all[m].hu[b], *j))
                    .sum();
                let hv_agg: Vec<ProjectivePoint> = (0..t1)
                    .map(|c| {
                        let terms: Vec<_> = ctx
                            .parties
                            .iter()
                            .map(|m| (self.round2[m].v_commitments[b][c], ctx.lambda(*m)))
                            .collect();
                        group::lincomb_vartime(&terms)
                    })
                    .collect();
                if hu0 != a * k || v0 != xj * a {
                    bad.push((*j, Fault::WrongShare));
                } else if x3.w_shares[b] != w_share
                    || x3.a_r[b] != self.r_points[b] * a
                    || x3.a_x[b] != ctx.x_table.mul_vartime(&a)
                    || x3.a_g[b] != group::mul_g(&a)
                    || x3.vx[b] != group::eval_commitment(&hv_agg, *j)
                {
                    bad.push((*j, Fault::WrongOpening));
                }
            }
        }
        if bad.is_empty() {
            Error::Degenerate("presigning failed but no culprit was found")
        } else {
            super::super::culprits(bad)
        }
    }
}

fn put_point_list(w: &mut Writer, v: &[ProjectivePoint]) {
    group::put_points_wide(w, v);
}

fn get_point_list(r: &mut Reader<'_>) -> Result<Vec<ProjectivePoint>, Error> {
    Ok(group::get_points_wide(r)?)
}

impl Round3Broadcast {
    /// Encodes (tag 0x25); the points uncompressed (`x || y`, see the presigning module).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND3_BROADCAST);
        group::put_scalars(&mut w, &self.w_shares);
        for v in [&self.a_r, &self.a_x, &self.a_g, &self.vx] {
            put_point_list(&mut w, v);
        }
        group::put_ids(&mut w, self.complaints.iter());
        put_hashes(&mut w, &self.echo);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::ROUND3_BROADCAST)?;
        let w_shares = group::get_scalars(&mut r)?;
        let a_r = get_point_list(&mut r)?;
        let a_x = get_point_list(&mut r)?;
        let a_g = get_point_list(&mut r)?;
        let vx = get_point_list(&mut r)?;
        let complaints = group::get_ids(&mut r)?;
        let echo = get_hashes(&mut r)?;
        r.finish()?;
        Ok(Self {
            w_shares,
            a_r,
            a_x,
            a_g,
            vx,
            complaints,
            echo,
        })
    }
}

impl BlameReveal {
    fn duplicate(&self) -> Self {
        Self {
            f: self.f.clone(),
            g: self.g.clone(),
            hu: self.hu.clone(),
            seeds: self.seeds,
        }
    }

    /// Encodes (tag 0x2b).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::BLAME_REVEAL);
        for polys in [&self.f, &self.g, &self.hu] {
            w.u32(u32::try_from(polys.len()).unwrap_or(u32::MAX));
            for p in polys {
                group::put_scalars(&mut w, p);
            }
        }
        w.raw(&self.seeds[0]).raw(&self.seeds[1]);
        w.finish()
    }

    /// Decodes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::BLAME_REVEAL)?;
        let mut lists = Vec::with_capacity(3);
        for _ in 0..3 {
            let n = r.count(4)?;
            lists.push(
                (0..n)
                    .map(|_| group::get_scalars(&mut r))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        let seeds = [r.array::<32>()?, r.array::<32>()?];
        r.finish()?;
        let hu = lists.pop().unwrap_or_default();
        let g = lists.pop().unwrap_or_default();
        let f = lists.pop().unwrap_or_default();
        Ok(Self { f, g, hu, seeds })
    }
}

impl Drop for BlameReveal {
    fn drop(&mut self) {
        for v in [&mut self.f, &mut self.g, &mut self.hu] {
            for p in v.iter_mut() {
                p.zeroize();
            }
        }
        self.seeds.zeroize();
    }
}

impl fmt::Debug for BlameReveal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlameReveal(<ephemeral values redacted>)")
    }
}

impl fmt::Debug for BlameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlameState").field("me", &self.ctx.me).finish()
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
