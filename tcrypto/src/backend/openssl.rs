//! The OpenSSL backend: libcrypto's `BN_mod_exp` through the safe `openssl` crate (no `unsafe` here).
//!
//! Secret exponents go into a [`SecretBigNum`]: allocated with `BN_secure_new` (OpenSSL clears a secure number's
//! words when it frees them), flagged `BN_FLG_CONSTTIME` (so `BN_mod_exp` takes `BN_mod_exp_mont_consttime`, which
//! runs over all the exponent's words rather than its bit length), and cleared with `BN_clear` on drop. Their
//! temporaries live in a secure `BN_CTX` (`BN_CTX_secure_new`), whose numbers are cleared the same way. The byte
//! buffers that carry a secret across are wiped (`Zeroizing`).
//!
//! The safe crate offers no `BN_MONT_CTX` for `BN_mod_exp_mont_consttime`'s `in_mont` argument, so OpenSSL builds
//! the Montgomery context of `N` on every call: a few microseconds against the ~ms of a 2048-bit exponentiation.

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use openssl::bn::{BigNum, BigNumContext};
use zeroize::Zeroizing;

use super::{Arithmetic, BackendError};

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

/// A public integer as an OpenSSL number.
fn public(x: &BoxedUint) -> Result<BigNum, BackendError> {
    BigNum::from_slice(&x.to_be_bytes()).map_err(|_| BackendError)
}

/// A secret exponent in OpenSSL: secure allocation, constant-time flag, cleared on drop.
struct SecretBigNum(BigNum);

impl SecretBigNum {
    fn new(x: &BoxedUint) -> Result<Self, BackendError> {
        let bytes = Zeroizing::new(x.to_be_bytes());
        let mut bn = Self(BigNum::new_secure().map_err(|_| BackendError)?);
        bn.0.set_const_time();
        bn.0.copy_from_slice(&bytes).map_err(|_| BackendError)?;
        Ok(bn)
    }
}

impl Drop for SecretBigNum {
    fn drop(&mut self) {
        self.0.clear();
    }
}
