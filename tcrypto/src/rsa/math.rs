//! Integer helpers on `crypto-bigint` boxed integers: conversions, `Δ = n!`, integral Lagrange coefficients.
//!
//! Everything here except [`from_be`] and [`fixed_be`] works on public values only and may take variable time.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero, Resize};
use zeroize::Zeroizing;

/// Parses big-endian bytes (leading zeros allowed) into an integer of `precision` bits; `None` if it does not fit.
/// Constant time in the value for a given input length.
pub(crate) fn from_be(bytes: &[u8], precision: u32) -> Option<BoxedUint> {
    let max = precision.div_ceil(8) as usize;
    let start = bytes.len().saturating_sub(max);
    if bytes[..start].iter().any(|&b| b != 0) {
        return None;
    }
    let v = BoxedUint::from_be_slice(&bytes[start..], precision).ok()?;
    (v.bit_width_vartime() <= precision).then_some(v)
}

/// The big-endian encoding of `x` in exactly `len` bytes (`x` must fit; leading bytes are zero).
///
/// Also used for secrets: the output is allocated once at its final size and the intermediate full-width encoding
/// is wiped, so no copy of `x` is left in freed memory (the caller wraps a secret's output in `Zeroizing`).
pub(crate) fn fixed_be(x: &BoxedUint, len: usize) -> Vec<u8> {
    let full = Zeroizing::new(x.to_be_bytes());
    let mut out = vec![0u8; len];
    if full.len() >= len {
        out.copy_from_slice(&full[full.len() - len..]);
    } else {
        out[len - full.len()..].copy_from_slice(&full);
    }
    out
}

/// The shortest big-endian encoding of a public integer (empty for 0).
pub(crate) fn minimal_be_vartime(x: &BoxedUint) -> Vec<u8> {
    x.to_be_bytes_trimmed_vartime().into_vec()
}

/// A public integer from its shortest big-endian encoding, sized to its length.
pub(crate) fn from_be_vartime(bytes: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(bytes)
}

/// `base^exp` for a public exponent (time depends on the exponent's length).
pub(crate) fn pow_vartime(base: &BoxedMontyForm, exp: &BoxedUint) -> BoxedMontyForm {
    base.pow_bounded_exp(exp, exp.bit_width_vartime())
}

/// `n!`.
pub(crate) fn factorial(n: u16) -> BoxedUint {
    let mut acc = BoxedUint::one();
    for i in 2..=u64::from(n) {
        acc = mul_small(&acc, i);
    }
    acc
}

/// `a · b` for a small `b`, trimmed to the result's length.
pub(crate) fn mul_small(a: &BoxedUint, b: u64) -> BoxedUint {
    let p = mul_wide(a, &BoxedUint::from(b));
    let bits = p.bit_width_vartime().max(1);
    p.resize_unchecked(bits)
}

/// `a · b` at the sum of the precisions (constant time).
pub(crate) fn mul_wide(a: &BoxedUint, b: &BoxedUint) -> BoxedUint {
    a.concatenating_mul(b)
}

/// `x` at `bits` bits of precision (rounded up to whole limbs); an error if it does not fit.
pub(crate) fn resize(x: &BoxedUint, bits: u32) -> Result<BoxedUint, super::Error> {
    x.clone().try_resize(bits).ok_or(super::Error::Internal(
        "integer does not fit the requested precision",
    ))
}

/// A secret `x` at `bits` bits of precision, copied into a fresh buffer (no reallocation of a secret leaves a copy
/// in freed memory) that is zeroized on drop; an error if it does not fit.
#[cfg(feature = "dealer")]
pub(crate) fn resize_secret(x: &BoxedUint, bits: u32) -> Result<Zeroizing<BoxedUint>, super::Error> {
    Resize::try_resize(x, bits)
        .map(Zeroizing::new)
        .ok_or(super::Error::Internal(
            "integer does not fit the requested precision",
        ))
}

/// A signed public integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// Absolute value.
    pub(crate) magnitude: BoxedUint,
    /// True when negative (never for zero).
    pub(crate) negative: bool,
}

/// The integral Lagrange coefficient `Δ·λ^S_{0,i} = Δ · Π_{j ∈ S, j ≠ i} j / (j − i)` (Shoup 2000, §3), exact.
///
/// `ids` are the distinct signer ids of the subset `S`, `i` one of them; `delta` is `Δ = n!` with `n >= max(S)`.
pub(crate) fn lagrange_at_zero(delta: &BoxedUint, ids: &[u16], i: u16) -> Option<Signed> {
    let mut numerator = delta.clone();
    let mut denominator = BoxedUint::one();
    let mut negatives = 0usize;
    for &j in ids {
        if j == i {
            continue;
        }
        numerator = mul_small(&numerator, u64::from(j));
        denominator = mul_small(&denominator, u64::from(j.abs_diff(i)));
        if j < i {
            negatives += 1;
        }
    }
    let denominator = NonZero::new(denominator).into_option()?;
    let (quotient, remainder) = numerator.div_rem_vartime(&denominator);
    if !bool::from(remainder.is_zero()) {
        return None;
    }
    let negative = negatives % 2 == 1 && !bool::from(quotient.is_zero());
    Some(Signed {
        magnitude: quotient,
        negative,
    })
}

/// `(a, b)` with `a·e' + b·e = 1` for `e' = 4Δ²` and a prime `e` that does not divide `e'`: `a = e'^{-1} mod e`,
/// `b = (1 − a·e') / e ≤ 0`. Returns `a` and `|b|`.
pub(crate) fn bezout_for_combination(e_prime: &BoxedUint, e: u64) -> Option<(BoxedUint, BoxedUint)> {
    let e_nz = NonZero::new(BoxedUint::from(e)).into_option()?;
    let rem = e_prime.rem_vartime(&e_nz);
    let r = rem.as_words().first().copied().unwrap_or(0);
    let a = inverse_mod_u64(r, e)?;
    // a·e' − 1 is divisible by e; |b| = (a·e' − 1)/e.
    let ae = mul_wide(e_prime, &BoxedUint::from(a));
    let (ae_minus_1, borrow) = ae.borrowing_sub(BoxedUint::one(), crypto_bigint::Limb::ZERO);
    if borrow != crypto_bigint::Limb::ZERO {
        return None;
    }
    let (b, rem) = ae_minus_1.div_rem_vartime(&e_nz);
    if !bool::from(rem.is_zero()) {
        return None;
    }
    Some((BoxedUint::from(a), b))
}

/// `a^{-1} mod m` for public word-sized values (extended Euclid).
pub(crate) fn inverse_mod_u64(a: u64, m: u64) -> Option<u64> {
    let (mut old_r, mut r) = (i128::from(a % m), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    if old_r != 1 {
        return None;
    }
    u64::try_from(old_s.rem_euclid(i128::from(m))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_to_i128(s: &Signed) -> i128 {
        let words = s.magnitude.as_words();
        let mut v: i128 = 0;
        for (k, w) in words.iter().enumerate() {
            if *w != 0 {
                assert!(k < 2);
                v |= i128::from(*w) << (64 * k);
            }
        }
        if s.negative { -v } else { v }
    }

    #[test]
    fn lagrange_vector_for_delta_5_factorial_is_the_known_answer() {
        let delta = factorial(5);
        let ids = [1u16, 2, 3, 4, 5];
        let got: Vec<i128> = ids
            .iter()
            .map(|&i| signed_to_i128(&lagrange_at_zero(&delta, &ids, i).unwrap()))
            .collect();
        assert_eq!(got, vec![600, -1200, 1200, -600, 120]);
    }

    #[test]
    fn factorial_of_small_numbers() {
        assert_eq!(factorial(0), BoxedUint::one());
        assert_eq!(factorial(5).as_words()[0], 120);
        assert_eq!(factorial(20).as_words()[0], 2_432_902_008_176_640_000);
    }

    #[test]
    fn bezout_coefficients_satisfy_the_identity() {
        let delta = factorial(7);
        let e_prime = mul_small(&mul_small(&delta, 4), 5040);
        let (a, b) = bezout_for_combination(&e_prime, 65537).unwrap();
        let lhs = mul_wide(&e_prime, &a);
        let rhs = mul_wide(&b, &BoxedUint::from(65537u64));
        // a·e' − |b|·e = 1
        let width = rhs.bits_precision().max(lhs.bits_precision());
        let (diff, _) = resize(&lhs, width)
            .unwrap()
            .borrowing_sub(resize(&rhs, width).unwrap(), crypto_bigint::Limb::ZERO);
        assert_eq!(diff.bit_width_vartime(), 1);
        assert_eq!(diff.as_words()[0], 1);
    }

    #[test]
    fn fixed_width_and_minimal_encodings() {
        let x = BoxedUint::from(0x0102u64);
        assert_eq!(fixed_be(&x, 4), vec![0, 0, 1, 2]);
        assert_eq!(minimal_be_vartime(&x), vec![1, 2]);
        assert_eq!(from_be(&[0, 0, 1, 2], 64).unwrap(), resize(&x, 64).unwrap());
        assert!(from_be(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 64).is_none());
    }
}
