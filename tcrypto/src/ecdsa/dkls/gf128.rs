//! Arithmetic in GF(2^128) = GF(2)[x] / (x^128 + x^7 + x^2 + x + 1) for the consistency check of KOS15 OT
//! extension (Keller, Orsini, Scholl, "Actively Secure OT Extension with Optimal Overhead", CRYPTO 2015:
//! the check sums `χ_j·t_j` over the extension field `F_{2^κ}`, `κ = 128`).
//!
//! An element is a `u128` whose bit `i` is the coefficient of `x^i` (no bit reflection, unlike GCM's GHASH).
//! Every product here has one public factor (a Fiat–Shamir challenge or Bob's `x̃`): [`mul_wide_public`] uses a
//! 4-bit window over the public factor, so no branch or memory index depends on the secret one; a sum of
//! products is reduced once.

/// The unreduced carry-less product `a·b` as `(high, low)` 128-bit halves, constant time in both factors
/// (a second implementation that the tests compare [`mul_wide_public`] with).
#[cfg(test)]
pub(crate) fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let mut lo = 0u128;
    let mut hi = 0u128;
    lo ^= a & 0u128.wrapping_sub(b & 1);
    // The loop index is public; only the masks depend on the (secret) bits of `b`.
    for i in 1..128 {
        let mask = 0u128.wrapping_sub((b >> i) & 1);
        lo ^= (a << i) & mask;
        hi ^= (a >> (128 - i)) & mask;
    }
    (hi, lo)
}

/// The unreduced product `a·b` for a secret `a` and a **public** `b`: a 4-bit window over `b` (32 steps with
/// a 16-entry table of multiples of `a`). The table indices are nibbles of `b` only, so memory access does not
/// depend on `a`; about four times faster than [`mul_wide`]. Every product in KOS15's check has a public
/// factor (the Fiat–Shamir challenges `χ_j`, Bob's `x̃`).
pub(crate) fn mul_wide_public(a: u128, b: u128) -> (u128, u128) {
    let mut table = [(0u128, 0u128); 16];
    for v in 1..16 {
        // v·a = (v >> 1)·a·x + (v & 1)·a; `v` is a public loop index.
        let (h, l) = table[v >> 1];
        let (h, mut l) = ((h << 1) | (l >> 127), l << 1);
        if v & 1 == 1 {
            l ^= a;
        }
        table[v] = (h, l);
    }
    let (mut hi, mut lo) = (0u128, 0u128);
    for i in (0..32).rev() {
        hi = (hi << 4) | (lo >> 124);
        lo <<= 4;
        let (h, l) = table[((b >> (4 * i)) & 0xf) as usize];
        hi ^= h;
        lo ^= l;
    }
    (hi, lo)
}

/// Reduces `hi·x^128 + lo` modulo `x^128 + x^7 + x^2 + x + 1`.
pub(crate) fn reduce(hi: u128, lo: u128) -> u128 {
    // x^128 = x^7 + x^2 + x + 1: fold hi down once; the bits shifted past x^127 fold again.
    let spill = (hi >> 127) ^ (hi >> 126) ^ (hi >> 121);
    let folded = hi ^ (hi << 1) ^ (hi << 2) ^ (hi << 7);
    lo ^ folded ^ spill ^ (spill << 1) ^ (spill << 2) ^ (spill << 7)
}

/// `a·b` in GF(2^128), constant time in both factors.
#[cfg(test)]
pub(crate) fn mul(a: u128, b: u128) -> u128 {
    let (hi, lo) = mul_wide(a, b);
    reduce(hi, lo)
}

/// `a·b` in GF(2^128) for a secret `a` and a public `b`.
pub(crate) fn mul_public(a: u128, b: u128) -> u128 {
    let (hi, lo) = mul_wide_public(a, b);
    reduce(hi, lo)
}

/// `Σ a_j·b_j` in GF(2^128) for secret `a_j` and public `b_j`, reduced once.
pub(crate) fn inner_product_public(pairs: impl Iterator<Item = (u128, u128)>) -> u128 {
    let (mut hi, mut lo) = (0u128, 0u128);
    for (a, b) in pairs {
        let (h, l) = mul_wide_public(a, b);
        hi ^= h;
        lo ^= l;
    }
    reduce(hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};

    /// An independent multiplication: shift-and-add with reduction after every shift ("xtime").
    fn naive_mul(mut a: u128, b: u128) -> u128 {
        let mut acc = 0u128;
        for i in 0..128 {
            if (b >> i) & 1 == 1 {
                acc ^= a;
            }
            let carry = a >> 127;
            a <<= 1;
            if carry == 1 {
                a ^= 0x87;
            }
        }
        acc
    }

    #[test]
    fn multiplication_matches_shift_and_add_and_the_modulus() {
        // x^127 · x = x^128 = x^7 + x^2 + x + 1.
        assert_eq!(mul(1 << 127, 2), 0x87);
        assert_eq!(mul(1 << 127, 1 << 127), naive_mul(1 << 127, 1 << 127));
        assert_eq!(mul(u128::MAX, 1), u128::MAX);
        let mut rng = rand::rngs::StdRng::seed_from_u64(128);
        for _ in 0..200 {
            let (a, b, c): (u128, u128, u128) = (rng.random(), rng.random(), rng.random());
            assert_eq!(mul(a, b), naive_mul(a, b));
            assert_eq!(mul(a, b), mul(b, a));
            assert_eq!(mul(a, b ^ c), mul(a, b) ^ mul(a, c));
            assert_eq!(mul_public(a, b), naive_mul(a, b));
            assert_eq!(mul_public(b, a), naive_mul(a, b));
            assert_eq!(
                inner_product_public([(a, b), (b, c)].into_iter()),
                mul(a, b) ^ mul(b, c)
            );
        }
    }
}
