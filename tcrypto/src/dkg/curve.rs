//! The small prime-order group interface the distributed key generation is written against, with the two groups
//! we need: NIST P-256 ([`P256`], for ECDSA) and the prime-order subgroup of edwards25519 ([`Ed25519`], for FROST).
//!
//! Decoding is strict everywhere: a scalar must be the canonical encoding of an integer below the group order, a
//! point must be the canonical encoding of a point of the prime-order group and never the identity. Every decoder
//! re-encodes what it parsed and compares, so one value has exactly one accepted encoding.

use core::ops::{Add, Mul, Neg, Sub};

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha512};
use zeroize::Zeroize;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::P256 {}
    impl Sealed for super::Ed25519 {}
}

/// A prime-order group with canonical encodings (sealed: implemented for [`P256`] and [`Ed25519`] only).
pub trait Curve:
    sealed::Sealed + Copy + Clone + core::fmt::Debug + PartialEq + Eq + Send + Sync + 'static
{
    /// An integer modulo the group order `q`.
    type Scalar: Copy
        + Default
        + PartialEq
        + Zeroize
        + Add<Output = Self::Scalar>
        + Sub<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>
        + Neg<Output = Self::Scalar>
        + Send
        + Sync;
    /// A group element.
    type Point: Copy
        + PartialEq
        + Add<Output = Self::Point>
        + Sub<Output = Self::Point>
        + Mul<Self::Scalar, Output = Self::Point>
        + Send
        + Sync;

    /// Human-readable name, also the hash domain separator.
    const NAME: &'static str;
    /// The one-byte code of the group in encodings.
    const CODE: u8;
    /// Length of an encoded point.
    const POINT_LEN: usize;

    /// The scalar 0.
    fn zero() -> Self::Scalar;
    /// The scalar for a small integer (a signer id).
    fn scalar_from_u16(v: u16) -> Self::Scalar;
    /// Inverse modulo `q`; `None` for 0. Only used on public values (Lagrange coefficients of signer ids).
    fn invert_vartime(s: &Self::Scalar) -> Option<Self::Scalar>;
    /// Reduces 64 uniformly random bytes modulo `q` (bias below 2^-256).
    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar;
    /// The canonical 32-byte encoding of a scalar.
    fn scalar_to_bytes(s: &Self::Scalar) -> [u8; 32];
    /// Decodes a scalar; `None` unless the encoding is canonical (value below `q`).
    fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar>;

    /// The standard generator `G`.
    fn generator() -> Self::Point;
    /// The neutral element.
    fn identity() -> Self::Point;
    /// `s·G`.
    fn mul_base(s: &Self::Scalar) -> Self::Point;
    /// The canonical encoding of a point (`POINT_LEN` bytes).
    fn point_to_bytes(p: &Self::Point) -> Vec<u8>;
    /// Decodes a point strictly: canonical, in the prime-order group, not the identity.
    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point>;

    /// A uniformly random non-zero scalar.
    fn random_nonzero_scalar(rng: &mut impl CryptoRng) -> Self::Scalar {
        loop {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            let s = Self::scalar_from_wide(&wide);
            wide.zeroize();
            if s != Self::zero() {
                return s;
            }
        }
    }

    /// Hashes `input` (already domain-separated by the caller) to a scalar: SHA-512, reduced modulo `q`.
    fn hash_to_scalar(input: &[u8]) -> Self::Scalar {
        let digest = Sha512::digest(input);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&digest);
        Self::scalar_from_wide(&wide)
    }
}

/// NIST P-256 (secp256r1), as implemented by the `p256` crate. Scalars are big-endian, points SEC1 compressed
/// (33 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct P256;

impl Curve for P256 {
    type Scalar = p256::Scalar;
    type Point = p256::ProjectivePoint;

    const NAME: &'static str = "P-256";
    const CODE: u8 = 1;
    const POINT_LEN: usize = 33;

    fn zero() -> Self::Scalar {
        p256::Scalar::ZERO
    }

    fn scalar_from_u16(v: u16) -> Self::Scalar {
        p256::Scalar::from(u64::from(v))
    }

    fn invert_vartime(s: &Self::Scalar) -> Option<Self::Scalar> {
        Option::from(s.invert_vartime())
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar {
        use p256::elliptic_curve::ff::FromUniformBytes as _;
        p256::Scalar::from_uniform_bytes(bytes)
    }

    fn scalar_to_bytes(s: &Self::Scalar) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&s.to_bytes());
        out
    }

    fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar> {
        use p256::elliptic_curve::ff::PrimeField as _;
        let repr = p256::FieldBytes::from(*bytes);
        Option::from(p256::Scalar::from_repr(repr))
    }

    fn generator() -> Self::Point {
        p256::ProjectivePoint::GENERATOR
    }

    fn identity() -> Self::Point {
        p256::ProjectivePoint::IDENTITY
    }

    fn mul_base(s: &Self::Scalar) -> Self::Point {
        use crate::backend::Arithmetic as _;
        crate::backend::Active::p256_mul_g(s)
    }

    fn point_to_bytes(p: &Self::Point) -> Vec<u8> {
        use p256::elliptic_curve::group::GroupEncoding as _;
        p.to_bytes().to_vec()
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point> {
        use p256::elliptic_curve::group::{Group as _, GroupEncoding as _};
        let arr: [u8; 33] = bytes.try_into().ok()?;
        let repr = p256::CompressedPoint::from(arr);
        let point: p256::ProjectivePoint = Option::from(p256::ProjectivePoint::from_bytes(&repr))?;
        if bool::from(point.is_identity()) || Self::point_to_bytes(&point) != bytes {
            return None;
        }
        Some(point)
    }
}

/// The prime-order subgroup of edwards25519, as implemented by `curve25519-dalek` 4 (the version `frost-ed25519`
/// uses). Scalars are little-endian, points the 32-byte compressed Edwards y form of RFC 8032.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519;

impl Curve for Ed25519 {
    type Scalar = curve25519_dalek::Scalar;
    type Point = curve25519_dalek::EdwardsPoint;

    const NAME: &'static str = "Ed25519";
    const CODE: u8 = 2;
    const POINT_LEN: usize = 32;

    fn zero() -> Self::Scalar {
        curve25519_dalek::Scalar::ZERO
    }

    fn scalar_from_u16(v: u16) -> Self::Scalar {
        curve25519_dalek::Scalar::from(v)
    }

    fn invert_vartime(s: &Self::Scalar) -> Option<Self::Scalar> {
        if *s == curve25519_dalek::Scalar::ZERO {
            None
        } else {
            Some(s.invert())
        }
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar {
        curve25519_dalek::Scalar::from_bytes_mod_order_wide(bytes)
    }

    fn scalar_to_bytes(s: &Self::Scalar) -> [u8; 32] {
        s.to_bytes()
    }

    fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar> {
        Option::from(curve25519_dalek::Scalar::from_canonical_bytes(*bytes))
    }

    fn generator() -> Self::Point {
        curve25519_dalek::constants::ED25519_BASEPOINT_POINT
    }

    fn identity() -> Self::Point {
        use curve25519_dalek::traits::Identity as _;
        curve25519_dalek::EdwardsPoint::identity()
    }

    fn mul_base(s: &Self::Scalar) -> Self::Point {
        curve25519_dalek::EdwardsPoint::mul_base(s)
    }

    fn point_to_bytes(p: &Self::Point) -> Vec<u8> {
        p.compress().to_bytes().to_vec()
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point> {
        use curve25519_dalek::traits::IsIdentity as _;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        let point = curve25519_dalek::edwards::CompressedEdwardsY(arr).decompress()?;
        // Prime order only (no torsion component), never the identity, and the canonical encoding (y < p).
        if point.is_identity() || !point.is_torsion_free() || point.compress().to_bytes() != arr {
            return None;
        }
        Some(point)
    }
}

/// Evaluates the polynomial with coefficients `coeffs` (constant term first) at `x`, by Horner's rule.
pub(crate) fn evaluate<C: Curve>(coeffs: &[C::Scalar], x: u16) -> C::Scalar {
    let x = C::scalar_from_u16(x);
    coeffs.iter().rev().fold(C::zero(), |acc, &c| acc * x + c)
}

/// Evaluates a Feldman commitment vector `(A_0, .., A_{k-1})` "in the exponent" at `x`: `Σ_j x^j·A_j`.
pub(crate) fn evaluate_commitment<C: Curve>(commitments: &[C::Point], x: u16) -> C::Point {
    let x = C::scalar_from_u16(x);
    commitments
        .iter()
        .rev()
        .fold(C::identity(), |acc, &a| acc * x + a)
}

/// The Lagrange coefficient of `i` for interpolation at 0 over the set `ids` (public values, variable time).
#[cfg_attr(not(feature = "dealer"), allow(dead_code))]
pub(crate) fn lagrange_at_zero<C: Curve>(i: u16, ids: &[u16]) -> Option<C::Scalar> {
    let xi = C::scalar_from_u16(i);
    let mut num = C::scalar_from_u16(1);
    let mut den = C::scalar_from_u16(1);
    for &j in ids {
        if j == i {
            continue;
        }
        let xj = C::scalar_from_u16(j);
        num = num * xj;
        den = den * (xj - xi);
    }
    Some(num * C::invert_vartime(&den)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<C: Curve>() {
        let mut rng = rand::rng();
        for _ in 0..20 {
            let s = C::random_nonzero_scalar(&mut rng);
            let bytes = C::scalar_to_bytes(&s);
            assert!(C::scalar_from_bytes(&bytes) == Some(s));
            let p = C::mul_base(&s);
            let enc = C::point_to_bytes(&p);
            assert_eq!(enc.len(), C::POINT_LEN);
            assert!(C::point_from_bytes(&enc) == Some(p));
        }
    }

    #[test]
    fn scalars_and_points_round_trip_on_both_curves() {
        round_trips::<P256>();
        round_trips::<Ed25519>();
    }

    #[test]
    fn identity_point_is_refused_on_both_curves() {
        assert!(P256::point_from_bytes(&P256::point_to_bytes(&P256::identity())).is_none());
        assert!(P256::point_from_bytes(&[0u8; 33]).is_none());
        assert!(Ed25519::point_from_bytes(&Ed25519::point_to_bytes(&Ed25519::identity())).is_none());
    }

    #[test]
    fn scalar_equal_to_the_order_is_refused() {
        // P-256 order n, big-endian.
        let n = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap();
        assert!(P256::scalar_from_bytes(&n.try_into().unwrap()).is_none());
        // Ed25519 order l, little-endian.
        let l = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
        assert!(Ed25519::scalar_from_bytes(&l.try_into().unwrap()).is_none());
    }

    #[test]
    fn non_canonical_ed25519_point_encoding_is_refused() {
        // y = p + 1 encodes y = 1 (the identity) non-canonically; y = p + 2 is not even reduced.
        let mut y = [0xffu8; 32];
        y[0] = 0xee; // p + 1 = 2^255 - 18
        y[31] = 0x7f;
        assert!(Ed25519::point_from_bytes(&y).is_none());
        // A canonical point with the sign bit flipped onto x = 0 (non-canonical "-0"): y = 1, sign 1.
        let mut minus_zero = [0u8; 32];
        minus_zero[0] = 1;
        minus_zero[31] = 0x80;
        assert!(Ed25519::point_from_bytes(&minus_zero).is_none());
    }

    #[test]
    fn small_order_ed25519_point_is_refused() {
        // The point of order 2, (0, -1).
        let mut y = [0u8; 32];
        y[0] = 0xec;
        y[1..31].fill(0xff);
        y[31] = 0x7f;
        assert!(Ed25519::point_from_bytes(&y).is_none());
    }

    #[test]
    fn p256_point_with_x_not_below_p_is_refused() {
        // 0x02 || p (x = p is not a canonical field element).
        let mut enc = vec![2u8];
        enc.extend(hex::decode("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff").unwrap());
        assert!(P256::point_from_bytes(&enc).is_none());
        // A bad prefix byte.
        let g = P256::point_to_bytes(&P256::generator());
        let mut bad = g.clone();
        bad[0] = 4;
        assert!(P256::point_from_bytes(&bad).is_none());
    }

    #[test]
    fn lagrange_interpolation_recovers_the_constant_term() {
        let mut rng = rand::rng();
        let coeffs: Vec<_> = (0..3).map(|_| P256::random_nonzero_scalar(&mut rng)).collect();
        let ids = [2u16, 5, 7];
        let mut acc = P256::zero();
        for &i in &ids {
            acc += lagrange_at_zero::<P256>(i, &ids).unwrap() * evaluate::<P256>(&coeffs, i);
        }
        assert!(acc == coeffs[0]);
        let commits: Vec<_> = coeffs.iter().map(P256::mul_base).collect();
        assert!(evaluate_commitment::<P256>(&commits, 5) == P256::mul_base(&evaluate::<P256>(&coeffs, 5)));
    }
}
