//! OT extension: KOS15 (Keller, Orsini, Scholl, "Actively Secure OT Extension with Optimal Overhead",
//! CRYPTO 2015, ePrint 2015/546), the correlated-OT extension with its consistency check, as DKLs19/DKLs23
//! use it under their multiplication (DKLs23's `Π_RVOLE` takes any OT extension with this interface).
//!
//! From `κ = 128` base OTs ([`super::setup::PairState`]) the receiver ("Bob") with choice bits `x_j`, `j <
//! ROWS`, and the sender ("Alice") with `Δ ∈ {0,1}^κ` obtain rows `t_j` (Bob) and `q_j = t_j ⊕ x_j·Δ`
//! (Alice), `κ` bits each. The first [`XI`] rows carry the multiplication's choice bits; the last `κ + s`
//! (`s = 80`) rows are random and only mask the check.
//!
//! * Bob: `t^0_l = PRG(k^0_l, ctx)`, `t^1_l = PRG(k^1_l, ctx)` (columns, `ROWS` bits), sends
//!   `u_l = t^0_l ⊕ t^1_l ⊕ x`, and the check values `x̃ = Σ_j χ_j·x_j`, `t̃ = Σ_j χ_j·t_j` in
//!   GF(2^128) with `χ_j` derived from `H(ctx, u)` (Fiat–Shamir in place of KOS15's coin toss).
//! * Alice: `q_l = PRG(k^{Δ_l}_l, ctx) ⊕ Δ_l·u_l`, checks `Σ_j χ_j·q_j = t̃ ⊕ x̃·Δ`, keeps `q_j`, `j < XI`.
//!
//! **Freshness.** `ctx` is derived from the signing session and a 32-byte nonce that Bob draws fresh for every
//! run ([`super::rvole`]), so Bob never expands the same columns twice (else `u ⊕ u'` would reveal `x ⊕ x'`
//! to Alice). A malicious Bob may replay a nonce; that gains him nothing, as he knows both seeds of every base
//! OT anyway. Alice's protection is in the next step: her pads hash a nonce *she* draws fresh
//! ([`super::rvole`]), so two runs never reuse the pads of one row.

use p256::Scalar;
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};
use zeroize::Zeroize as _;

use super::base_ot::BASE_OTS;
use super::gf128;
use super::prg::{self, Hash};
use super::setup::PairState;
use crate::codec::{DecodeError, Reader, Writer};

/// Number of OTs per multiplication: `ξ = 256 + 2·80` (DKLs19's encoding: `κ_q + 2s` with `|q| = 256`,
/// statistical security `s = 80`).
pub const XI: usize = 256 + 2 * 80;
/// Extra rows that mask the KOS15 check: `κ + s`.
const CHECK_ROWS: usize = BASE_OTS + 80;
/// Rows extended per run.
pub const ROWS: usize = XI + CHECK_ROWS;
/// Bytes per column (`ROWS` bits).
pub const COL_BYTES: usize = ROWS / 8;

const _: () = assert!(ROWS.is_multiple_of(8) && XI.is_multiple_of(8) && BASE_OTS == 128);

/// Bob's extension message.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtensionMsg {
    /// `u_l = t^0_l ⊕ t^1_l ⊕ x` for `l < κ`, `ROWS` bits each (bit `j` of row `j` is byte `j / 8`, bit `j % 8`).
    pub u: Vec<[u8; COL_BYTES]>,
    /// KOS15's `x̃ = Σ χ_j·x_j`.
    pub check_x: u128,
    /// KOS15's `t̃ = Σ χ_j·t_j`.
    pub check_t: u128,
}

impl core::fmt::Debug for ExtensionMsg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExtensionMsg")
            .field("u", &format_args!("[{} columns]", self.u.len()))
            .field("check_x", &self.check_x)
            .field("check_t", &self.check_t)
            .finish()
    }
}

fn column_key(seed: &[u8; 32], ctx: &[u8; 32], l: usize) -> [u8; 32] {
    Hash::new("ote/prg").raw(seed).raw(ctx).u32(l as u32).finish()
}

fn expand_column(seed: &[u8; 32], ctx: &[u8; 32], l: usize) -> [u8; COL_BYTES] {
    let mut key = column_key(seed, ctx, l);
    let mut col = [0u8; COL_BYTES];
    prg::expand(&key, &mut col);
    key.zeroize();
    col
}

/// Transposes an 8×8 bit matrix held in a `u64` (bit `8r + c` is entry `(r, c)`) with three delta swaps
/// (Warren, "Hacker's Delight", §7-3).
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00aa_00aa_00aa_00aa;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_cccc_0000_cccc;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_f0f0_f0f0;
    x ^= t ^ (t << 28);
    x
}

/// Rows of `κ` columns: bit `l` of row `j` is bit `j` of column `l`, in 8×8 blocks.
fn transpose(cols: &[[u8; COL_BYTES]]) -> Vec<u128> {
    let mut rows = vec![0u128; ROWS];
    for g in 0..BASE_OTS / 8 {
        for byte_index in 0..COL_BYTES {
            let mut x = 0u64;
            for k in 0..8 {
                x |= u64::from(cols[8 * g + k][byte_index]) << (8 * k);
            }
            let x = transpose8(x);
            for j in 0..8 {
                rows[8 * byte_index + j] |= u128::from((x >> (8 * j)) as u8) << (8 * g);
            }
        }
    }
    rows
}

fn challenges(ctx: &[u8; 32], u: &[[u8; COL_BYTES]]) -> Vec<u128> {
    let mut h = Hash::new("ote/check").raw(ctx);
    for col in u {
        h = h.raw(col);
    }
    let mut bytes = vec![0u8; ROWS * 16];
    prg::expand(&h.finish(), &mut bytes);
    bytes
        .chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
        .collect()
}

/// Bob's side: extends with choice bits `choices` (the first [`XI`] bits of `x`; the rest are drawn from
/// `rng`) and returns the rows `t_j`, `j < XI`, and the message for Alice.
pub(crate) fn receive(
    pair: &PairState,
    ctx: &[u8; 32],
    choices: &[u8; XI / 8],
    rng: &mut impl rand_core::CryptoRng,
) -> (Vec<u128>, ExtensionMsg) {
    let mut x = [0u8; COL_BYTES];
    x[..XI / 8].copy_from_slice(choices);
    rng.fill_bytes(&mut x[XI / 8..]);
    let (mut rows, u) = extend(pair, ctx, &x);
    let (check_x, check_t) = bob_check(ctx, &u, &rows, &x);
    x.zeroize();
    rows[XI..].zeroize();
    rows.truncate(XI);
    (rows, ExtensionMsg { u, check_x, check_t })
}

/// Bob's columns: the rows `t_j` (all `ROWS`) and `u_l = t^0_l ⊕ t^1_l ⊕ x`.
fn extend(pair: &PairState, ctx: &[u8; 32], x: &[u8; COL_BYTES]) -> (Vec<u128>, Vec<[u8; COL_BYTES]>) {
    let mut t0 = Vec::with_capacity(BASE_OTS);
    let mut u = Vec::with_capacity(BASE_OTS);
    for (l, keys) in pair.bob.iter().enumerate() {
        let c0 = expand_column(&keys[0], ctx, l);
        let mut c1 = expand_column(&keys[1], ctx, l);
        let mut ul = [0u8; COL_BYTES];
        for k in 0..COL_BYTES {
            ul[k] = c0[k] ^ c1[k] ^ x[k];
        }
        c1.zeroize();
        t0.push(c0);
        u.push(ul);
    }
    let rows = transpose(&t0);
    t0.zeroize();
    (rows, u)
}

/// Bob's check values `(x̃, t̃)` for the challenges derived from `u`.
fn bob_check(ctx: &[u8; 32], u: &[[u8; COL_BYTES]], rows: &[u128], x: &[u8; COL_BYTES]) -> (u128, u128) {
    let chi = challenges(ctx, u);
    let check_t = gf128::inner_product_public(rows.iter().copied().zip(chi.iter().copied()));
    let mut check_x = 0u128;
    for (j, c) in chi.iter().enumerate() {
        let bit = (x[j / 8] >> (j % 8)) & 1;
        check_x ^= c & 0u128.wrapping_sub(u128::from(bit));
    }
    (check_x, check_t)
}

/// Alice's side: the rows `q_j = t_j ⊕ x_j·Δ`, `j < XI`, or `None` if the KOS15 check fails (Bob is at
/// fault: his columns are inconsistent with one choice string).
pub(crate) fn send(pair: &PairState, ctx: &[u8; 32], msg: &ExtensionMsg) -> Option<Vec<u128>> {
    if msg.u.len() != BASE_OTS {
        return None;
    }
    let mut q = Vec::with_capacity(BASE_OTS);
    for (l, (key, ul)) in pair.alice.iter().zip(&msg.u).enumerate() {
        let mut col = expand_column(key, ctx, l);
        let bit = ((pair.delta >> l) & 1) as u8;
        let mask = 0u8.wrapping_sub(bit);
        for k in 0..COL_BYTES {
            col[k] ^= ul[k] & mask;
        }
        q.push(col);
    }
    let mut rows = transpose(&q);
    q.zeroize();
    let chi = challenges(ctx, &msg.u);
    let lhs = gf128::inner_product_public(rows.iter().copied().zip(chi.iter().copied()));
    let rhs = msg.check_t ^ gf128::mul_public(pair.delta, msg.check_x);
    // Constant-time comparison: a mismatch reveals only that Bob cheated.
    let ok = bool::from(lhs.to_le_bytes().ct_eq(&rhs.to_le_bytes()));
    rows[XI..].zeroize();
    rows.truncate(XI);
    if ok {
        Some(rows)
    } else {
        rows.zeroize();
        None
    }
}

/// `Σ_k g_k·β_k` in constant time (β packed little-endian in bytes).
pub(crate) fn select_sum(gadget: &[Scalar], bits: &[u8]) -> Scalar {
    let mut acc = Scalar::ZERO;
    for (k, g) in gadget.iter().enumerate() {
        let bit = subtle::Choice::from((bits[k / 8] >> (k % 8)) & 1);
        acc += Scalar::conditional_select(&Scalar::ZERO, g, bit);
    }
    acc
}

impl ExtensionMsg {
    /// Encoded length.
    pub(crate) const LEN: usize = BASE_OTS * COL_BYTES + 32;

    pub(crate) fn write(&self, w: &mut Writer) {
        for col in &self.u {
            w.raw(col);
        }
        w.raw(&self.check_x.to_le_bytes())
            .raw(&self.check_t.to_le_bytes());
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let u = (0..BASE_OTS)
            .map(|_| r.array::<COL_BYTES>())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            u,
            check_x: u128::from_le_bytes(r.array()?),
            check_t: u128::from_le_bytes(r.array()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::setup::test_pair as pair;
    use super::*;
    use rand::{Rng as _, RngExt as _};

    /// Recomputes Bob's and Alice's rows naively (one bit at a time, straight from the definition
    /// `t_j[l] = PRG(k^0_l)[j]`, `q_j[l] = PRG(k^{Δ_l}_l)[j] ⊕ Δ_l·u_l[j]`) and checks the correlation.
    #[test]
    fn rows_match_a_bitwise_recomputation_and_satisfy_q_eq_t_xor_x_delta() {
        let (bob, alice, mut rng) = pair(31);
        let ctx = [9u8; 32];
        let mut choices = [0u8; XI / 8];
        rng.fill_bytes(&mut choices);
        let (t, msg) = receive(&bob, &ctx, &choices, &mut rng);
        let q = send(&alice, &ctx, &msg).expect("honest check passes");
        for j in 0..XI {
            let x = (choices[j / 8] >> (j % 8)) & 1 == 1;
            let mut naive_t = 0u128;
            let mut naive_q = 0u128;
            for l in 0..BASE_OTS {
                let mut col = [0u8; COL_BYTES];
                prg::expand(&column_key(&bob.bob[l][0], &ctx, l), &mut col);
                naive_t |= u128::from((col[j / 8] >> (j % 8)) & 1) << l;
                prg::expand(&column_key(&alice.alice[l], &ctx, l), &mut col);
                let d = (alice.delta >> l) & 1;
                let bit = u128::from((col[j / 8] >> (j % 8)) & 1)
                    ^ (d & u128::from((msg.u[l][j / 8] >> (j % 8)) & 1));
                naive_q |= bit << l;
            }
            assert_eq!(t[j], naive_t, "row {j}");
            assert_eq!(q[j], naive_q, "row {j}");
            assert_eq!(q[j], t[j] ^ if x { alice.delta } else { 0 }, "row {j}");
        }
    }

    #[test]
    fn inconsistent_columns_fail_the_check_where_delta_is_one() {
        let (bob, alice, mut rng) = pair(32);
        let ctx = [1u8; 32];
        let choices = [0u8; XI / 8];
        let (_, msg) = receive(&bob, &ctx, &choices, &mut rng);
        let mut x = [0u8; COL_BYTES];
        rng.fill_bytes(&mut x);
        let (rows, u) = extend(&bob, &ctx, &x);
        for l in 0..BASE_OTS {
            // A cheating Bob flips one bit of u_l and recomputes his check values for the new challenges.
            let mut bad_u = u.clone();
            bad_u[l][rng.random_range(0..COL_BYTES)] ^= 1 << rng.random_range(0..8);
            let (check_x, check_t) = bob_check(&ctx, &bad_u, &rows, &x);
            let bad = ExtensionMsg {
                u: bad_u,
                check_x,
                check_t,
            };
            // The flip only reaches Alice's rows through Δ_l: caught if Δ_l = 1, harmless if 0 (KOS15's
            // selective failure: an abort tells Bob one bit of Δ).
            let caught = send(&alice, &ctx, &bad).is_none();
            assert_eq!(caught, (alice.delta >> l) & 1 == 1, "column {l}");
        }
        let mut bad = msg.clone();
        bad.check_t ^= 1;
        assert!(send(&alice, &ctx, &bad).is_none());
        // Another context (a replayed message under a new nonce) fails too.
        assert!(send(&alice, &[2u8; 32], &msg).is_none());
    }
}
