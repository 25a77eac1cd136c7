//! The OpenSSL backend: libcrypto's `BN_mod_exp` and `EC_POINT_mul` through the safe `openssl` crate (no `unsafe`
//! here).
//!
//! Secret exponents go into a `SecretBigNum`: allocated with `BN_secure_new` (OpenSSL clears a secure number's
//! words when it frees them), flagged `BN_FLG_CONSTTIME` (so `BN_mod_exp` takes `BN_mod_exp_mont_consttime`, which
//! runs over all the exponent's words rather than its bit length), and cleared with `BN_clear` on drop. Their
//! temporaries live in a secure `BN_CTX` (`BN_CTX_secure_new`), whose numbers are cleared the same way. The byte
//! buffers that carry a secret across are wiped (`Zeroizing`).
//!
//! P-256 goes through `EC_POINT_mul` (on x86-64 OpenSSL's `ecp_nistz256` code: a constant-time comb over a
//! precomputed table for `s·G`, a constant-time window for other points); secret scalars travel in a
//! `SecretBigNum` as exponents do. Points cross as uncompressed SEC1 bytes (each crossing costs a field inversion
//! on the side that makes them affine; `p256` checks every point it reads is on the curve). Should OpenSSL fail
//! (allocation), the point operations fall back to `Pure`, which computes the same point, in constant time where
//! it must.
//!
//! The safe crate offers no `BN_MONT_CTX` for `BN_mod_exp_mont_consttime`'s `in_mont` argument, so OpenSSL builds
//! the Montgomery context of `N` on every call: a few microseconds against the ~ms of a 2048-bit exponentiation.

use std::sync::OnceLock;

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint, EcPointRef, PointConversionForm};
use openssl::nid::Nid;
use p256::elliptic_curve::point::BatchNormalize as _;
use p256::elliptic_curve::sec1::{FromSec1Point as _, ToSec1Point as _};
use p256::{AffinePoint, ProjectivePoint, Scalar};
use zeroize::Zeroizing;

use super::{Arithmetic, BackendError, Pure};

/// OpenSSL's libcrypto.
pub(crate) struct OpenSsl;

impl Arithmetic for OpenSsl {
    const NAME: &'static str = "openssl";

    fn pow_secret(base: &BoxedMontyForm, exponent: &BoxedUint) -> Result<BoxedMontyForm, BackendError> {
        let exponent = SecretBigNum::new(exponent)?;
        let mut ctx = BigNumContext::new_secure().map_err(|_| BackendError)?;
        mod_exp(base, &exponent.0, &mut ctx)
    }

    fn pow_public_vartime(
        base: &BoxedMontyForm,
        exponent: &BoxedUint,
    ) -> Result<BoxedMontyForm, BackendError> {
        let exponent = public(exponent)?;
        let mut ctx = BigNumContext::new().map_err(|_| BackendError)?;
        mod_exp(base, &exponent, &mut ctx)
    }

    fn p256_mul_g(s: &Scalar) -> ProjectivePoint {
        p256_mul_g(s).unwrap_or_else(|_| Pure::p256_mul_g(s))
    }

    fn p256_lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
        // OpenSSL multiplies one point at a time; `p256`'s wNAF multi-exponentiation shares its doublings among
        // all terms and is quicker on short scalars (Feldman powers `i^j`, 128-bit batch weights): it wins on the
        // long sums of presigning's checks, OpenSSL on the few-term sums of signing and verification.
        if terms.len() > OPENSSL_LINCOMB_MAX_TERMS {
            return Pure::p256_lincomb_vartime(terms);
        }
        p256_lincomb_vartime(terms).unwrap_or_else(|_| Pure::p256_lincomb_vartime(terms))
    }

    fn p256_mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Vec<ProjectivePoint> {
        p256_mul_each(terms).unwrap_or_else(|_| Pure::p256_mul_each(terms))
    }
}

/// `base^exponent mod N` by `BN_mod_exp`; `N` and the result's precision come from `base`'s parameters.
fn mod_exp(
    base: &BoxedMontyForm,
    exponent: &BigNum,
    ctx: &mut BigNumContext,
) -> Result<BoxedMontyForm, BackendError> {
    let params = base.params();
    let modulus = public(params.modulus().as_ref())?;
    let a = public(&base.retrieve())?;
    let mut result = BigNum::new().map_err(|_| BackendError)?;
    result
        .mod_exp(&a, exponent, &modulus, ctx)
        .map_err(|_| BackendError)?;
    let precision = params.bits_precision();
    let len = i32::try_from(precision.div_ceil(8)).map_err(|_| BackendError)?;
    let bytes = result.to_vec_padded(len).map_err(|_| BackendError)?;
    let value = BoxedUint::from_be_slice(&bytes, precision).map_err(|_| BackendError)?;
    Ok(BoxedMontyForm::new(value, params))
}

/// Longest sum `Σ s_i·P_i` given to OpenSSL (measured on 3-of-5 presigning; see `p256_lincomb_vartime`).
const OPENSSL_LINCOMB_MAX_TERMS: usize = 4;

/// OpenSSL's P-256 group (`prime256v1`), made once.
fn p256_group() -> Result<&'static EcGroup, BackendError> {
    static GROUP: OnceLock<Option<EcGroup>> = OnceLock::new();
    GROUP
        .get_or_init(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok())
        .as_ref()
        .ok_or(BackendError)
}

fn p256_mul_g(s: &Scalar) -> Result<ProjectivePoint, BackendError> {
    let group = p256_group()?;
    let bytes = Zeroizing::new(<[u8; 32]>::from(s.to_bytes()));
    let scalar = SecretBigNum::from_bytes(&*bytes)?;
    let mut ctx = BigNumContext::new_secure().map_err(|_| BackendError)?;
    let mut r = EcPoint::new(group).map_err(|_| BackendError)?;
    r.mul_generator2(group, &scalar.0, &mut ctx)
        .map_err(|_| BackendError)?;
    from_openssl(group, &r, &mut ctx)
}

fn p256_lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> Result<ProjectivePoint, BackendError> {
    let group = p256_group()?;
    let mut ctx = BigNumContext::new().map_err(|_| BackendError)?;
    // One field inversion for all the points (p256's batch normalization), then one `EC_POINT_mul` per term.
    let points: Vec<ProjectivePoint> = terms.iter().map(|(p, _)| *p).collect();
    let affine = ProjectivePoint::batch_normalize(points.as_slice());
    let mut acc = EcPoint::new(group).map_err(|_| BackendError)?;
    let mut term = EcPoint::new(group).map_err(|_| BackendError)?;
    for (point, (_, s)) in affine.iter().zip(terms) {
        if bool::from(point.is_identity()) {
            continue;
        }
        let p = EcPoint::from_bytes(group, point.to_sec1_point(false).as_bytes(), &mut ctx)
            .map_err(|_| BackendError)?;
        let s = BigNum::from_slice(&s.to_bytes()).map_err(|_| BackendError)?;
        term.mul2(group, &p, &s, &mut ctx).map_err(|_| BackendError)?;
        let mut sum = EcPoint::new(group).map_err(|_| BackendError)?;
        sum.add(group, &acc, &term, &mut ctx).map_err(|_| BackendError)?;
        acc = sum;
    }
    from_openssl(group, &acc, &mut ctx)
}

fn p256_mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Result<Vec<ProjectivePoint>, BackendError> {
    let group = p256_group()?;
    let mut ctx = BigNumContext::new_secure().map_err(|_| BackendError)?;
    // One field inversion for all the points, then one constant-time `EC_POINT_mul` per pair.
    let points: Vec<ProjectivePoint> = terms.iter().map(|(p, _)| *p).collect();
    let affine = ProjectivePoint::batch_normalize(points.as_slice());
    let mut out = Vec::with_capacity(terms.len());
    let mut r = EcPoint::new(group).map_err(|_| BackendError)?;
    for (point, (_, s)) in affine.iter().zip(terms) {
        if bool::from(point.is_identity()) {
            out.push(ProjectivePoint::IDENTITY);
            continue;
        }
        let p = EcPoint::from_bytes(group, point.to_sec1_point(false).as_bytes(), &mut ctx)
            .map_err(|_| BackendError)?;
        let bytes = Zeroizing::new(<[u8; 32]>::from(s.to_bytes()));
        let scalar = SecretBigNum::from_bytes(&*bytes)?;
        r.mul2(group, &p, &scalar.0, &mut ctx).map_err(|_| BackendError)?;
        out.push(from_openssl(group, &r, &mut ctx)?);
    }
    Ok(out)
}

/// An OpenSSL point as a `p256` point (through its uncompressed encoding).
fn from_openssl(
    group: &EcGroup,
    p: &EcPointRef,
    ctx: &mut BigNumContext,
) -> Result<ProjectivePoint, BackendError> {
    if p.is_infinity(group) {
        return Ok(ProjectivePoint::IDENTITY);
    }
    let bytes = p
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, ctx)
        .map_err(|_| BackendError)?;
    AffinePoint::from_sec1_bytes(&bytes)
        .map(ProjectivePoint::from)
        .map_err(|_| BackendError)
}

/// A public integer as an OpenSSL number.
fn public(x: &BoxedUint) -> Result<BigNum, BackendError> {
    BigNum::from_slice(&x.to_be_bytes()).map_err(|_| BackendError)
}

/// A secret exponent in OpenSSL: secure allocation, constant-time flag, cleared on drop.
struct SecretBigNum(BigNum);

impl SecretBigNum {
    fn new(x: &BoxedUint) -> Result<Self, BackendError> {
        Self::from_bytes(&Zeroizing::new(x.to_be_bytes()))
    }

    /// From big-endian bytes (the caller wipes them).
    fn from_bytes(bytes: &[u8]) -> Result<Self, BackendError> {
        let mut bn = Self(BigNum::new_secure().map_err(|_| BackendError)?);
        bn.0.set_const_time();
        bn.0.copy_from_slice(bytes).map_err(|_| BackendError)?;
        Ok(bn)
    }
}

impl Drop for SecretBigNum {
    fn drop(&mut self) {
        self.0.clear();
    }
}
