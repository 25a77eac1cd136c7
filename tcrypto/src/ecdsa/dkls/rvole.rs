//! Two-party multiplication: DKLs23's random vector OLE `Π_RVOLE` (built
//! on the OT-based multiplication of DKLs19, "Threshold ECDSA from ECDSA Assumptions: The Multiparty Case",
//! S&P 2019, with its statistical consistency check), for vectors of length `ℓ = 2`.
//!
//! Bob speaks first and his input is random: he draws choice bits `β ∈ {0,1}^ξ` and his input is
//! `χ = ⟨g, β⟩` for the public gadget `g = (1, 2, …, 2^255, g_256, …, g_{ξ-1})` (the last `2s` entries
//! pseudo-random, DKLs19's encoding against selective failure). Alice inputs `a = (a_1, a_2)`. At the end
//! Alice holds `c` and Bob `d` with `c + d = χ·a` (component-wise).
//!
//! 1. Bob (`bob_start`) → [`BobMsg`]: a fresh nonce `n_B` and the KOS15 extension message for `β`
//!    ([`super::ote`]), under `ctx = H(base context, n_B)`.
//! 2. Alice (`alice`) checks the extension, draws a fresh nonce `n_A` and a mask `â`, and for every row `k`
//!    derives her pads `z^0_k = H(ctx, n_A, k, q_k)`, `z^1_k = H(ctx, n_A, k, q_k ⊕ Δ)` in `Z_q^3`. Her share
//!    of row `k` is `t^A_k = z^0_k`; she sends `τ_k = z^1_k − z^0_k + (a_1, a_2, â)`. The check: challenges
//!    `θ = H(ctx, n_A, τ)` in `Z_q^2`, `μ = θ_1 a_1 + θ_2 a_2 + â` (uniform: `â` masks it) and the digest
//!    of `r_k = θ_1 t^A_{k,1} + θ_2 t^A_{k,2} + t^A_{k,3}` for every `k`. → [`AliceMsg`]. Her output:
//!    `c_i = Σ_k g_k t^A_{k,i}`.
//! 3. Bob (`BobState::finish`): `t^B_k = β_k·τ_k − H(ctx, n_A, k, t_k)`, so `t^A_k + t^B_k = β_k·(a, â)`;
//!    he recomputes every `r_k = β_k·μ − (θ_1 t^B_{k,1} + θ_2 t^B_{k,2} + t^B_{k,3})` and compares the digest
//!    (DKLs19 sends the `r_k` themselves; the digest is equivalent for Bob and 13 KiB shorter). His output:
//!    `d_i = Σ_k g_k t^B_{k,i}`.
//!
//! A failed KOS15 check names Bob ([`super::Fault::OtExtensionCheck`]); a failed multiplication check names
//! Alice ([`super::Fault::MultiplicationCheck`]). An Alice who cheats on row `k` is caught exactly when
//! `β_k = 1`, which leaks that bit; the gadget's `2s` random entries keep `χ` uniform given a few leaked
//! bits (DKLs19's analysis), and each such attempt aborts and names her.
//!
//! **Freshness (the rule the node relies on).** Bob's columns depend on `n_B` (his own fresh randomness) and
//! Alice's pads on `n_A` (hers), both drawn from the caller's CSPRNG on every run. So the long-lived
//! [`PairState`] can be used for any number of signatures, concurrently, and after a restart, with no counter
//! or record of used session ids: it suffices that each party's RNG never repeats a 32-byte nonce. (Without
//! `n_A`, a Bob who replays `u` with flipped choice bits would learn `τ_k + τ'_k = a + a'` and so the key
//! share.) Only the per-run secret states (Bob's state, the signing rounds' states) are one-time: they live in
//! memory for one run and are never persisted.

use std::sync::OnceLock;

use p256::Scalar;
use rand_core::CryptoRng;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};
use zeroize::{Zeroize as _, Zeroizing};

use super::ote::{self, ExtensionMsg, XI};
use super::prg::{self, Hash};
use super::setup::PairState;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ecdsa::group::{self, get_scalar, put_scalar};

/// Alice's correlation width: `(a_1, a_2, â)`.
const WIDTH: usize = 3;

/// Bob's message (sent in signing round 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BobMsg {
    /// Bob's fresh nonce `n_B`.
    pub nonce: [u8; 32],
    /// The KOS15 extension message for his choice bits `β`.
    pub ote: ExtensionMsg,
}

/// Alice's message (sent in signing round 2).
#[derive(Clone, PartialEq, Eq)]
pub struct AliceMsg {
    /// Alice's fresh nonce `n_A`.
    pub nonce: [u8; 32],
    /// `τ_k = z^1_k − z^0_k + (a_1, a_2, â)` for `k < ξ`.
    pub tau: Vec<[Scalar; WIDTH]>,
    /// The check value `μ = θ_1 a_1 + θ_2 a_2 + â`.
    pub mu: Scalar,
    /// `H(ctx, n_A, r_0, …, r_{ξ-1})`.
    pub check: [u8; 32],
}

impl core::fmt::Debug for AliceMsg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AliceMsg")
            .field("tau", &format_args!("[{} rows]", self.tau.len()))
            .finish_non_exhaustive()
    }
}

/// Bob's secret between his two steps. One-time: consumed by [`BobState::finish`].
pub(crate) struct BobState {
    ctx: [u8; 32],
    beta: Zeroizing<[u8; XI / 8]>,
    rows: Zeroizing<Vec<u128>>,
    /// Bob's random input `χ = ⟨g, β⟩`.
    pub(crate) chi: Scalar,
}

impl Drop for BobState {
    fn drop(&mut self) {
        self.chi.zeroize();
    }
}

/// The gadget vector `g`.
pub(crate) fn gadget() -> &'static [Scalar] {
    static GADGET: OnceLock<Vec<Scalar>> = OnceLock::new();
    GADGET.get_or_init(|| {
        let mut g = Vec::with_capacity(XI);
        let mut p = Scalar::ONE;
        for _ in 0..256 {
            g.push(p);
            p = p.double();
        }
        let mut rest = vec![Scalar::ZERO; XI - 256];
        prg::scalars(&Hash::new("rvole/gadget").finish(), &mut rest);
        g.extend(rest);
        g
    })
}

/// `Σ_k g_k·rows[k][i]`: Horner's rule over the powers of two (`g_k = 2^k`, `k < 256`: doublings instead of
/// multiplications), then the `2s` pseudo-random entries.
fn gadget_combine(rows: &[[Scalar; WIDTH]], i: usize) -> Scalar {
    let mut acc = Scalar::ZERO;
    for row in rows[..256].iter().rev() {
        acc = acc.double() + row[i];
    }
    for (g, row) in gadget()[256..].iter().zip(&rows[256..]) {
        acc += g * &row[i];
    }
    acc
}

fn context(base: &[u8; 32], bob_nonce: &[u8; 32]) -> [u8; 32] {
    Hash::new("rvole/ctx").raw(base).raw(bob_nonce).finish()
}

fn pad(prefix: &Hash, k: usize, row: u128) -> [Scalar; WIDTH] {
    let mut key = prefix.clone().u32(k as u32).raw(&row.to_le_bytes()).finish();
    let mut out = [Scalar::ZERO; WIDTH];
    prg::scalars(&key, &mut out);
    key.zeroize();
    out
}

fn theta(ctx: &[u8; 32], alice_nonce: &[u8; 32], tau: &[[Scalar; WIDTH]]) -> [Scalar; 2] {
    let mut h = Hash::new("rvole/theta").raw(ctx).raw(alice_nonce);
    for row in tau {
        for s in row {
            h = h.raw(&s.to_bytes());
        }
    }
    let mut out = [Scalar::ZERO; 2];
    prg::scalars(&h.finish(), &mut out);
    out
}

fn check_digest(ctx: &[u8; 32], alice_nonce: &[u8; 32], r: impl Iterator<Item = Scalar>) -> [u8; 32] {
    let mut h = Hash::new("rvole/check").raw(ctx).raw(alice_nonce);
    for v in r {
        h = h.raw(&v.to_bytes());
    }
    h.finish()
}

/// Bob's first step for the multiplication identified by `base` (which binds the signing session, the key and
/// both parties' ids and roles).
pub(crate) fn bob_start(pair: &PairState, base: &[u8; 32], rng: &mut impl CryptoRng) -> (BobState, BobMsg) {
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let ctx = context(base, &nonce);
    let mut beta = Zeroizing::new([0u8; XI / 8]);
    rng.fill_bytes(&mut beta[..]);
    let (rows, ote) = ote::receive(pair, &ctx, &beta, rng);
    let chi = ote::select_sum(gadget(), &beta[..]);
    (
        BobState {
            ctx,
            beta,
            rows: Zeroizing::new(rows),
            chi,
        },
        BobMsg { nonce, ote },
    )
}

/// Alice's step: her outputs `c = (c_1, c_2)` and her message, or `None` if Bob's extension fails its check.
pub(crate) fn alice(
    pair: &PairState,
    base: &[u8; 32],
    a: [Scalar; 2],
    msg: &BobMsg,
    rng: &mut impl CryptoRng,
) -> Option<(Zeroizing<[Scalar; 2]>, AliceMsg)> {
    let ctx = context(base, &msg.nonce);
    let q = Zeroizing::new(ote::send(pair, &ctx, &msg.ote)?);
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let a_hat = group::random_scalar(rng);
    let alpha = [a[0], a[1], a_hat];
    let prefix = Hash::new("rvole/pad").raw(&ctx).raw(&nonce);
    let mut t_a: Zeroizing<Vec<[Scalar; WIDTH]>> = Zeroizing::new(Vec::with_capacity(XI));
    let mut tau = Vec::with_capacity(XI);
    for (k, qk) in q.iter().enumerate() {
        let z0 = pad(&prefix, k, *qk);
        let z1 = pad(&prefix, k, qk ^ pair.delta);
        tau.push([
            z1[0] - z0[0] + alpha[0],
            z1[1] - z0[1] + alpha[1],
            z1[2] - z0[2] + alpha[2],
        ]);
        t_a.push(z0);
    }
    let th = theta(&ctx, &nonce, &tau);
    let mu = th[0] * alpha[0] + th[1] * alpha[1] + alpha[2];
    let check = check_digest(
        &ctx,
        &nonce,
        t_a.iter().map(|t| th[0] * t[0] + th[1] * t[1] + t[2]),
    );
    let c = Zeroizing::new([gadget_combine(&t_a, 0), gadget_combine(&t_a, 1)]);
    Some((
        c,
        AliceMsg {
            nonce,
            tau,
            mu,
            check,
        },
    ))
}

impl BobState {
    /// Bob's outputs `d = (d_1, d_2)`, or `None` if Alice's message fails the multiplication check.
    pub(crate) fn finish(self, msg: &AliceMsg) -> Option<Zeroizing<[Scalar; 2]>> {
        if msg.tau.len() != XI {
            return None;
        }
        let prefix = Hash::new("rvole/pad").raw(&self.ctx).raw(&msg.nonce);
        let th = theta(&self.ctx, &msg.nonce, &msg.tau);
        let mut t_b: Zeroizing<Vec<[Scalar; WIDTH]>> = Zeroizing::new(Vec::with_capacity(XI));
        let mut r = Zeroizing::new(Vec::with_capacity(XI));
        for (k, (tk, tau)) in self.rows.iter().zip(&msg.tau).enumerate() {
            let h = pad(&prefix, k, *tk);
            let bit = Choice::from((self.beta[k / 8] >> (k % 8)) & 1);
            let mut row = [Scalar::ZERO; WIDTH];
            for i in 0..WIDTH {
                row[i] = Scalar::conditional_select(&Scalar::ZERO, &tau[i], bit) - h[i];
            }
            let own = th[0] * row[0] + th[1] * row[1] + row[2];
            r.push(Scalar::conditional_select(&Scalar::ZERO, &msg.mu, bit) - own);
            t_b.push(row);
        }
        let d = Zeroizing::new([gadget_combine(&t_b, 0), gadget_combine(&t_b, 1)]);
        let expected = check_digest(&self.ctx, &msg.nonce, r.iter().copied());
        bool::from(expected.ct_eq(&msg.check)).then_some(d)
    }
}

impl AliceMsg {
    /// Encoded length.
    pub(crate) const LEN: usize = 32 + XI * WIDTH * 32 + 32 + 32;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(&self.nonce);
        for row in &self.tau {
            for s in row {
                put_scalar(w, s);
            }
        }
        put_scalar(w, &self.mu);
        w.raw(&self.check);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let nonce = r.array()?;
        let mut tau = Vec::with_capacity(XI);
        for _ in 0..XI {
            tau.push([get_scalar(r)?, get_scalar(r)?, get_scalar(r)?]);
        }
        Ok(Self {
            nonce,
            tau,
            mu: get_scalar(r)?,
            check: r.array()?,
        })
    }
}

impl BobMsg {
    /// Encoded length.
    pub(crate) const LEN: usize = 32 + ExtensionMsg::LEN;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(&self.nonce);
        self.ote.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: r.array()?,
            ote: ExtensionMsg::read(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::setup::test_pair as setup;
    use super::*;

    #[test]
    fn outputs_add_up_to_chi_times_a() {
        let (bob, alice_state, mut rng) = setup(41);
        let base = [5u8; 32];
        for _ in 0..3 {
            let a = [group::random_scalar(&mut rng), group::random_scalar(&mut rng)];
            let (state, m1) = bob_start(&bob, &base, &mut rng);
            let chi = state.chi;
            let (c, m2) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
            let d = state.finish(&m2).unwrap();
            assert_eq!(c[0] + d[0], chi * a[0]);
            assert_eq!(c[1] + d[1], chi * a[1]);
        }
    }

    #[test]
    fn gadget_starts_with_powers_of_two() {
        let g = gadget();
        assert_eq!(g.len(), XI);
        assert_eq!(g[0], Scalar::ONE);
        assert_eq!(g[255], g[254].double());
        assert_eq!(g[8], Scalar::from(256u64));
    }

    #[test]
    fn a_changed_tau_row_mu_or_check_digest_fails_the_check() {
        let (bob, alice_state, mut rng) = setup(42);
        let base = [6u8; 32];
        let a = [group::random_scalar(&mut rng), group::random_scalar(&mut rng)];
        for k in [0usize, 100, 300, XI - 1] {
            let (state, m1) = bob_start(&bob, &base, &mut rng);
            let (_, mut m2) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
            m2.tau[k][0] += Scalar::ONE;
            assert!(state.finish(&m2).is_none(), "row {k}");
        }
        let (state, m1) = bob_start(&bob, &base, &mut rng);
        let (_, mut m2) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
        m2.mu += Scalar::ONE;
        assert!(state.finish(&m2).is_none());
        let (state, m1) = bob_start(&bob, &base, &mut rng);
        let (_, mut m2) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
        m2.check[0] ^= 1;
        assert!(state.finish(&m2).is_none());
    }

    #[test]
    fn a_replayed_bob_message_gets_fresh_pads() {
        // Bob replays one extension message; Alice's fresh n_A makes her τ differ entirely.
        let (bob, alice_state, mut rng) = setup(43);
        let base = [7u8; 32];
        let a = [group::random_scalar(&mut rng), group::random_scalar(&mut rng)];
        let (_, m1) = bob_start(&bob, &base, &mut rng);
        let (_, x) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
        let (_, y) = alice(&alice_state, &base, a, &m1, &mut rng).unwrap();
        assert!(
            x.tau
                .iter()
                .zip(&y.tau)
                .all(|(p, q)| p[0] != q[0] && p[1] != q[1])
        );
    }
}
