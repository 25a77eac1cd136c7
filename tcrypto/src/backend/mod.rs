//! The arithmetic backend: the few big-number operations that dominate a signer's CPU time, behind one small
//! internal trait, in the shape of rustls' crypto providers.
//!
//! Two implementations exist:
//! - `Pure`, always built: `crypto-bigint` (constant-time Montgomery exponentiation at the integer's full
//!   precision) and `p256`. This is the library's default.
//! - `OpenSsl`, built with the `openssl` feature: OpenSSL's libcrypto through the safe `openssl` crate
//!   (`BN_mod_exp` with `BN_FLG_CONSTTIME` on secret exponents, which selects `BN_mod_exp_mont_consttime`;
//!   `EC_POINT_mul` for P-256).
//!
//! `Active` is the one the protocol code calls; which it is is fixed at build time by the `openssl` feature, and
//! no protocol module names an implementation. Both give the same results bit for bit (differential tests in
//! `tests.rs`), so nodes built either way interoperate.
//!
//! Hot paths routed here: the RSA share `x_i = x^{2Δs_i}` (Shoup 2000 §3; also the ordinary-modulus shares, which
//! use the same step), the prover's `v^r`, `x̃^r`, and the verifier's `v^z`, `x̃^z` (Shoup 2000 §3, "Proof of
//! correctness"); for P-256, `s·G` (the commitments, nonce points and public key shares of presigning, signing and
//! the DKG), `a·R` for a secret `a` and a public point (presigning's openings in the exponent), and the variable-time multi-scalar multiplications `Σ s_i·P_i` that check them (under `perf`, 3-of-5
//! presigning spent about 60% of a party's CPU in these two). Not routed: the constant-time fixed-base tables of
//! `ecdsa::group` (`a_i·X`), small-multiple helpers, Ed25519 (FROST on `curve25519-dalek`), and the combiner's
//! short public exponents (Lagrange coefficients, Bézout exponents), which cost little.

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use p256::{ProjectivePoint, Scalar};

#[cfg(feature = "openssl")]
mod openssl;
#[cfg(all(test, feature = "openssl", feature = "dealer"))]
mod tests;

#[cfg(feature = "openssl")]
pub(crate) use self::openssl::OpenSsl;

/// The backend this build uses.
#[cfg(not(feature = "openssl"))]
pub(crate) type Active = Pure;
/// The backend this build uses.
#[cfg(feature = "openssl")]
pub(crate) type Active = OpenSsl;

/// The name of the arithmetic backend this build of `tcrypto` uses: `"openssl"` with the `openssl` feature,
/// `"pure-rust"` without. For logs and `--version` output.
pub fn name() -> &'static str {
    Active::NAME
}

/// The backend failed to compute (OpenSSL reported an error, in practice an allocation failure). Never returned by
/// `Pure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackendError;

/// Modular exponentiation with an RSA-size modulus (the modulus travels with the base's Montgomery parameters).
pub(crate) trait Arithmetic {
    /// Short name of the implementation.
    const NAME: &'static str;

    /// `base^exponent mod N` for a **secret** exponent: constant time in the exponent's value (its length in
    /// machine words may show; callers pass exponents of a public, fixed size).
    fn pow_secret(base: &BoxedMontyForm, exponent: &BoxedUint) -> Result<BoxedMontyForm, BackendError>;

    /// `base^exponent mod N` for a **public** exponent: may take time depending on the exponent.
    fn pow_public_vartime(
        base: &BoxedMontyForm,
        exponent: &BoxedUint,
    ) -> Result<BoxedMontyForm, BackendError>;

    /// `s·G` on P-256 for a **secret** scalar (constant time).
    fn p256_mul_g(s: &Scalar) -> ProjectivePoint;

    /// `Σ s_i·P_i` on P-256 for **public** points and scalars (variable time).
    fn p256_lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint;

    /// `s_i·P_i` for each pair, on P-256, for **secret** scalars and public points (constant time in the scalars).
    fn p256_mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Vec<ProjectivePoint>;
}

/// Pure Rust: `crypto-bigint`'s Montgomery exponentiation and `p256`'s point arithmetic (with the `openssl` feature:
/// the fallback when OpenSSL fails, and the reference of the differential tests).
pub(crate) struct Pure;

impl Arithmetic for Pure {
    const NAME: &'static str = "pure-rust";

    fn pow_secret(base: &BoxedMontyForm, exponent: &BoxedUint) -> Result<BoxedMontyForm, BackendError> {
        Ok(base.pow(exponent))
    }

    fn pow_public_vartime(
        base: &BoxedMontyForm,
        exponent: &BoxedUint,
    ) -> Result<BoxedMontyForm, BackendError> {
        Ok(base.pow_bounded_exp(exponent, exponent.bit_width_vartime()))
    }

    fn p256_mul_g(s: &Scalar) -> ProjectivePoint {
        use p256::elliptic_curve::group::Group as _;
        ProjectivePoint::mul_by_generator(s)
    }

    fn p256_lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
        use p256::elliptic_curve::ops::LinearCombination as _;
        if terms.is_empty() {
            return ProjectivePoint::IDENTITY;
        }
        ProjectivePoint::lincomb_vartime(terms)
    }

    fn p256_mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Vec<ProjectivePoint> {
        terms.iter().map(|(p, s)| p * s).collect()
    }
}
