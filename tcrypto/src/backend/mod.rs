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
//! `Active` is the one the protocol code calls; no protocol module names an implementation. Without the `openssl`
//! feature it is `Pure` itself. With it, `Active` forwards each operation to `OpenSsl` (the default) or to `Pure`,
//! as the process chose once, before its first operation, with [`install`] (rustls' `CryptoProvider::install_default`
//! in shape): one relaxed atomic load and a branch per operation, against the 10 µs–ms the operations cost. The
//! choice is fixed for the life of the process: by `install`, or by the first operation, which fixes the default.
//! Both give the same results bit for bit (differential tests in `tests.rs`), so nodes on either backend
//! interoperate (`tcrypto-net/tests/mixed_backends.rs` signs with five node processes on both at once).
//!
//! Hot paths routed here: the RSA share `x_i = x^{2Δs_i}` (Shoup 2000 §3; also the ordinary-modulus shares, which
//! use the same step), the prover's `v^r`, `x̃^r`, and the verifier's `v^z`, `x̃^z` (Shoup 2000 §3, "Proof of
//! correctness"); for P-256, `s·G` (the commitments, nonce points and public key shares of presigning, signing and
//! the DKG), `a·R` for a secret `a` and a public point (presigning's openings in the exponent), and the variable-time multi-scalar multiplications `Σ s_i·P_i` that check them (under `perf`, 3-of-5
//! presigning spent about 60% of a party's CPU in these two). Not routed: the constant-time fixed-base tables of
//! `ecdsa::group` (`a_i·X`), small-multiple helpers, Ed25519 (FROST on `curve25519-dalek`), and the combiner's
//! short public exponents (Lagrange coefficients, Bézout exponents), which cost little.

use std::sync::atomic::{AtomicU8, Ordering};

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use p256::{ProjectivePoint, Scalar};

#[cfg(feature = "openssl")]
mod openssl;
#[cfg(all(test, feature = "openssl", feature = "dealer"))]
mod tests;

#[cfg(feature = "openssl")]
pub(crate) use self::openssl::OpenSsl;

/// The backend the protocol code calls: `Pure` in a build without the `openssl` feature.
#[cfg(not(feature = "openssl"))]
pub(crate) type Active = Pure;

/// An arithmetic backend a process can run on (see [`install`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `crypto-bigint` and `p256`: in every build.
    PureRust,
    /// OpenSSL's libcrypto: only in builds with tcrypto's `openssl` feature.
    OpenSsl,
}

impl Backend {
    /// Every backend, built or not.
    pub const ALL: [Backend; 2] = [Backend::PureRust, Backend::OpenSsl];

    /// The backend a process runs on unless it installs another: `OpenSsl` in a build with the `openssl`
    /// feature, `PureRust` without.
    pub const DEFAULT: Backend = if cfg!(feature = "openssl") {
        Backend::OpenSsl
    } else {
        Backend::PureRust
    };

    /// Its name in configurations, logs and metrics: `"pure-rust"` or `"openssl"`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::PureRust => Pure::NAME,
            Backend::OpenSsl => "openssl",
        }
    }

    /// Whether this build has it.
    pub const fn is_built(self) -> bool {
        match self {
            Backend::PureRust => true,
            Backend::OpenSsl => cfg!(feature = "openssl"),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;

    /// Parses a name of [`Backend::name`] (whether or not this build has it: [`install`] says that).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBackend(s.to_string()))
    }
}

/// A backend name that is neither `"pure-rust"` nor `"openssl"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown arithmetic backend {0:?} (expected \"pure-rust\" or \"openssl\")")]
pub struct UnknownBackend(pub String);

/// Why [`install`] refused: the caller's misuse, or a build without the backend asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendInstallError {
    /// This build has no such backend (OpenSSL asked of a build without tcrypto's `openssl` feature).
    #[error(
        "the {requested} arithmetic backend is not in this build (built without tcrypto's `openssl` feature)"
    )]
    NotBuilt {
        /// The backend asked for.
        requested: Backend,
    },
    /// Arithmetic already ran in this process, which fixed the default.
    #[error("cannot install the {requested} arithmetic backend: arithmetic already ran on {in_force}")]
    AlreadyInUse {
        /// The backend asked for.
        requested: Backend,
        /// The one in force.
        in_force: Backend,
    },
    /// An earlier [`install`] chose another backend.
    #[error("cannot install the {requested} arithmetic backend: {installed} was installed before")]
    AlreadyInstalled {
        /// The backend asked for.
        requested: Backend,
        /// The one installed.
        installed: Backend,
    },
}

/// Chooses the arithmetic backend of this process. Call it once, before the first signature, key generation or
/// proof check (in a daemon: at start, before keys are loaded). Installing the backend already in force again is
/// not an error; any other change of mind is, since the choice holds for the life of the process.
pub fn install(backend: Backend) -> Result<(), BackendInstallError> {
    CHOICE.install(backend)
}

/// The backend in force: the one installed, else the one the first operation fixed or will fix
/// ([`Backend::DEFAULT`]). Does not fix the choice.
pub fn in_force() -> Backend {
    CHOICE.in_force()
}

/// The name of the arithmetic backend in force (`"openssl"` or `"pure-rust"`; see [`in_force`]). For logs and
/// `--version` output.
pub fn name() -> &'static str {
    in_force().name()
}

/// The process's choice of backend.
static CHOICE: Choice = Choice::new();

/// The process's choice of backend: unfixed, fixed to the default by a first operation, or installed.
///
/// One byte in an atomic. `Relaxed` is enough: no other memory is published through it, and coherence alone
/// guarantees that once a thread has seen the choice fixed it never sees it unfixed or changed.
struct Choice(AtomicU8);

/// Neither installed nor used yet.
const UNFIXED: u8 = 0;
/// An operation ran before any `install`: [`Backend::DEFAULT`] is fixed.
const DEFAULT_USED: u8 = 1;
/// `install(PureRust)`.
const INSTALLED_PURE: u8 = 2;
/// `install(OpenSsl)`.
const INSTALLED_OPENSSL: u8 = 3;

impl Choice {
    const fn new() -> Self {
        Self(AtomicU8::new(UNFIXED))
    }

    fn decode(state: u8) -> Backend {
        match state {
            INSTALLED_PURE => Backend::PureRust,
            INSTALLED_OPENSSL => Backend::OpenSsl,
            _ => Backend::DEFAULT,
        }
    }

    fn in_force(&self) -> Backend {
        Self::decode(self.0.load(Ordering::Relaxed))
    }

    /// The backend of the operation about to run; the first call without an install fixes the default.
    #[cfg_attr(not(feature = "openssl"), allow(dead_code))]
    #[inline]
    fn for_operation(&self) -> Backend {
        match self.0.load(Ordering::Relaxed) {
            UNFIXED => {
                // Fix the default, unless an install got in first (then that one).
                match self
                    .0
                    .compare_exchange(UNFIXED, DEFAULT_USED, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => Backend::DEFAULT,
                    Err(state) => Self::decode(state),
                }
            }
            state => Self::decode(state),
        }
    }

    fn install(&self, requested: Backend) -> Result<(), BackendInstallError> {
        if !requested.is_built() {
            return Err(BackendInstallError::NotBuilt { requested });
        }
        let state = match requested {
            Backend::PureRust => INSTALLED_PURE,
            Backend::OpenSsl => INSTALLED_OPENSSL,
        };
        match self
            .0
            .compare_exchange(UNFIXED, state, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Ok(()),
            Err(now) if Self::decode(now) == requested => Ok(()),
            Err(DEFAULT_USED) => Err(BackendInstallError::AlreadyInUse {
                requested,
                in_force: Backend::DEFAULT,
            }),
            Err(now) => Err(BackendInstallError::AlreadyInstalled {
                requested,
                installed: Self::decode(now),
            }),
        }
    }
}

/// The backend the protocol code calls, in a build with the `openssl` feature: each operation goes to the backend
/// of the process's choice ([`install`]; `OpenSsl` by default). The secret handling is each implementation's own.
#[cfg(feature = "openssl")]
pub(crate) struct Active;

#[cfg(feature = "openssl")]
impl Active {
    #[inline]
    fn pure() -> bool {
        CHOICE.for_operation() == Backend::PureRust
    }
}

#[cfg(feature = "openssl")]
impl Arithmetic for Active {
    const NAME: &'static str = "chosen at run time";

    fn pow_secret(base: &BoxedMontyForm, exponent: &BoxedUint) -> Result<BoxedMontyForm, BackendError> {
        if Self::pure() {
            Pure::pow_secret(base, exponent)
        } else {
            OpenSsl::pow_secret(base, exponent)
        }
    }

    fn pow_public_vartime(
        base: &BoxedMontyForm,
        exponent: &BoxedUint,
    ) -> Result<BoxedMontyForm, BackendError> {
        if Self::pure() {
            Pure::pow_public_vartime(base, exponent)
        } else {
            OpenSsl::pow_public_vartime(base, exponent)
        }
    }

    fn p256_mul_g(s: &Scalar) -> ProjectivePoint {
        if Self::pure() {
            Pure::p256_mul_g(s)
        } else {
            OpenSsl::p256_mul_g(s)
        }
    }

    fn p256_lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
        if Self::pure() {
            Pure::p256_lincomb_vartime(terms)
        } else {
            OpenSsl::p256_lincomb_vartime(terms)
        }
    }

    fn p256_mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Vec<ProjectivePoint> {
        if Self::pure() {
            Pure::p256_mul_each(terms)
        } else {
            OpenSsl::p256_mul_each(terms)
        }
    }
}

/// The backend failed to compute (OpenSSL reported an error, in practice an allocation failure). Never returned by
/// `Pure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackendError;

/// Modular exponentiation with an RSA-size modulus (the modulus travels with the base's Montgomery parameters).
///
/// A method added here needs its forwarding in `impl Arithmetic for Active` too (without a default body, the
/// compiler says so).
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

#[cfg(test)]
mod choice_tests {
    //! The rules of [`install`] on private instances of the choice (the process's own is shared by every test of
    //! this binary; `tcrypto-net/tests/mixed_backends.rs` checks it in node processes).
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_first_operation_fixes_the_default_and_only_the_default_may_then_be_installed() {
        let choice = Choice::new();
        assert_eq!(choice.in_force(), Backend::DEFAULT);
        assert_eq!(choice.for_operation(), Backend::DEFAULT);
        assert_eq!(choice.install(Backend::DEFAULT), Ok(()));
        if Backend::OpenSsl.is_built() {
            assert_eq!(
                choice.install(Backend::PureRust),
                Err(BackendInstallError::AlreadyInUse {
                    requested: Backend::PureRust,
                    in_force: Backend::OpenSsl
                })
            );
        }
        assert_eq!(choice.for_operation(), Backend::DEFAULT);
    }

    #[test]
    fn an_install_before_any_operation_holds_for_every_later_operation() {
        let choice = Choice::new();
        assert_eq!(choice.install(Backend::PureRust), Ok(()));
        assert_eq!(choice.install(Backend::PureRust), Ok(()));
        assert_eq!(choice.in_force(), Backend::PureRust);
        assert_eq!(choice.for_operation(), Backend::PureRust);
        if Backend::OpenSsl.is_built() {
            assert_eq!(
                choice.install(Backend::OpenSsl),
                Err(BackendInstallError::AlreadyInstalled {
                    requested: Backend::OpenSsl,
                    installed: Backend::PureRust
                })
            );
            let choice = Choice::new();
            assert_eq!(choice.install(Backend::OpenSsl), Ok(()));
            assert_eq!(choice.for_operation(), Backend::OpenSsl);
            assert!(matches!(
                choice.install(Backend::PureRust),
                Err(BackendInstallError::AlreadyInstalled { .. })
            ));
        }
        assert_eq!(choice.for_operation(), Backend::PureRust);
    }

    #[test]
    fn openssl_is_refused_by_a_build_without_it() {
        let choice = Choice::new();
        if Backend::OpenSsl.is_built() {
            assert_eq!(Backend::DEFAULT, Backend::OpenSsl);
        } else {
            assert_eq!(Backend::DEFAULT, Backend::PureRust);
            let err = choice.install(Backend::OpenSsl).unwrap_err();
            assert_eq!(
                err,
                BackendInstallError::NotBuilt {
                    requested: Backend::OpenSsl
                }
            );
            assert!(err.to_string().contains("`openssl` feature"), "{err}");
            // The refusal fixes nothing.
            assert_eq!(choice.install(Backend::PureRust), Ok(()));
        }
    }

    #[test]
    fn backend_names_parse_back_and_others_are_refused() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>(), Ok(b));
        }
        assert_eq!(Backend::PureRust.to_string(), "pure-rust");
        assert!("OpenSSL".parse::<Backend>().is_err());
        assert!("pure".parse::<Backend>().is_err());
    }
}
