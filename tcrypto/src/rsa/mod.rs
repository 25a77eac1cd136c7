//! Threshold RSA: Victor Shoup, "Practical Threshold Signatures", EUROCRYPT 2000, Protocol 1.
//!
//! A trusted dealer ([`deal`], [`split`]; `dealer` feature) picks safe primes `p = 2p'+1`, `q = 2q'+1`, the modulus
//! `N = pq`, a prime public exponent `e > n`, `d = e⁻¹ mod m` with `m = p'q'`, and a random polynomial `f` of degree
//! `k-1` over `Z_m` with `f(0) = d`. Signer `i` holds `s_i = f(i)` ([`KeyShare`]); everybody knows the
//! [`PublicKeySet`]: `N`, `e`, a random square `v` and the verification keys `v_i = v^{s_i}`.
//!
//! To sign, every signer builds the message representative `x` itself from a [`MessageEncoding`] (EMSA-PKCS1-v1_5
//! or EMSA-PSS, never a raw integer), and returns the [`SignatureShare`] `x_i = x^{2Δ s_i}` with `Δ = n!` and a
//! non-interactive proof that `log_{x̃}(x_i²) = log_v(v_i)` for `x̃ = x^{4Δ}` ([`KeyShare::sign_share`]).
//! [`combine()`] takes any `k` shares, computes `w = Π x_i^{2λ_i}` with the integral Lagrange coefficients
//! `λ_i = Δ·Π j/(j-i)`, then `y = w^a x^b` with `a·4Δ² + b·e = 1`, and releases `y` only if `y^e = x`. When that
//! check fails it verifies every proof ([`verify_share`]), names every culprit and combines from the valid shares.
//!
//! Modules follow the protocol: [`keys`] (key material and its encodings), [`encoding`] (message representatives),
//! [`share`] (the signer's step), [`verify`] (share verification), [`mod@combine`] (the combiner's step),
//! [`reshare`] (redistribution of the shares to new holders, same public key) and, behind the `dealer` feature,
//! [`dealer`].
//!
//! **Two kinds of keys, one set of types.** Shoup's proofs need safe primes, which no ordinary RSA key has. Keys
//! imported from elsewhere (`openssl genrsa`, BIND, SoftHSM) are shared by the ordinary-modulus construction of
//! [`ordinary`]: integer Shamir sharing, the same share and combination formulas, **no proofs**; the combiner
//! verifies `y^e = x` and, when that fails, searches subsets of the shares and names culprits by elimination. Both
//! kinds use the same [`PublicKeySet`], [`KeyShare`], [`SignatureShare`], [`combine()`] and wire encodings
//! ([`PublicKeySet::is_ordinary`] tells them apart; the ordinary kind has its own tag,
//! [`tag::PUBLIC_KEY_SET_ORDINARY`]), so a node signs and a coordinator combines without knowing which kind it has.
//!
//! | kind | primes | share verification | culprits named by | redistribution |
//! |---|---|---|---|---|
//! | Shoup ([`deal`], [`split`] of a safe-prime key) | safe | proof of correctness per share ([`verify_share`]) | the failing proofs | [`reshare`] |
//! | ordinary ([`deal_ordinary`], [`split`] of any other key) | any | none per share; `y^e = x` per subset | subset search ([`ordinary`]) | not supported |
//!
//! Arithmetic with a secret exponent (`s_i`, the proof's `r`, `d`) is constant time: `crypto-bigint` boxed
//! Montgomery arithmetic at the full precision of the modulus. Arithmetic on public values only (verification,
//! combination) may take variable time; such functions say `_vartime` or work on public data only.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::SignerId;
use crate::codec::DecodeError;

pub mod combine;
#[cfg(feature = "dealer")]
pub mod dealer;
pub mod encoding;
pub mod keys;
mod math;
pub mod ordinary;
pub mod reshare;
pub mod share;
pub mod verify;

pub use combine::{Combined, combine, combine_encoded};
#[cfg(feature = "dealer")]
pub use dealer::{
    Prime, SafePrime, SplitOptions, deal, deal_ordinary, deal_with_primes, generate_safe_prime, split,
    split_primes, split_with,
};
pub use encoding::MessageEncoding;
pub use keys::{KeyShare, PublicKeySet};
pub use share::{ShareProof, SignatureShare};
pub use verify::{ShareFault, VerifyError, verify_share};

/// Largest number of parties `n`. `Δ = n!` enters every exponent, so `n` is bounded (255! has 1684 bits).
pub const MAX_PARTIES: u16 = 255;

/// Smallest modulus any function of this module accepts (test keys); [`deal`] itself insists on 2048 bits.
pub const MIN_MODULUS_BITS: usize = 256;

/// Largest modulus accepted anywhere.
pub const MAX_MODULUS_BITS: usize = 16384;

/// Default public exponent, `65537`.
pub const DEFAULT_PUBLIC_EXPONENT: u64 = 65537;

/// Largest bound on the bit length of a secret share (shares of a redistributed key grow, [`reshare`]).
pub const MAX_SHARE_BITS: u32 = 1 << 16;

/// Bit length `L1` of the Fiat–Shamir challenge (and the statistical hiding margin of the proof).
pub const CHALLENGE_BITS: u32 = 128;

/// Type tags of the encodings of this module (see [`crate::codec`]).
pub mod tag {
    /// [`super::PublicKeySet`].
    pub const PUBLIC_KEY_SET: u8 = 0x10;
    /// [`super::KeyShare`].
    pub const KEY_SHARE: u8 = 0x11;
    /// [`super::SignatureShare`].
    pub const SIGNATURE_SHARE: u8 = 0x12;
    /// [`super::MessageEncoding`].
    pub const MESSAGE_ENCODING: u8 = 0x13;
    /// [`super::PublicKeySet`] of a redistributed sharing (scale `c != 1` or long shares, [`super::reshare`]).
    pub const PUBLIC_KEY_SET_RESHARED: u8 = 0x14;
    /// [`super::reshare::Dealing`].
    pub const RESHARE_DEALING: u8 = 0x15;
    /// [`super::reshare::SubShare`].
    pub const RESHARE_SUB_SHARE: u8 = 0x16;
    /// [`super::reshare::Verdict`].
    pub const RESHARE_VERDICT: u8 = 0x17;
    /// [`super::reshare::Answer`].
    pub const RESHARE_ANSWER: u8 = 0x18;
    /// [`super::reshare::Confirmation`].
    pub const RESHARE_CONFIRMATION: u8 = 0x19;
    /// [`super::PublicKeySet`] of an ordinary-modulus sharing ([`super::ordinary`]).
    pub const PUBLIC_KEY_SET_ORDINARY: u8 = 0x1A;
}

/// What went wrong, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from outside could not be decoded.
    #[error("decoding failed: {0}")]
    Decode(#[from] DecodeError),
    /// The caller asked for something impossible (threshold, party count, modulus size, exponent …).
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// The message cannot be encoded (digest length, modulus too small for digest and salt, not a DigestInfo …).
    #[error("message encoding: {0}")]
    Encoding(&'static str),
    /// A key share does not match the public key set (wrong key, or `v^{s_i} != v_i`).
    #[error("key share does not match the public key set: {0}")]
    KeyShareMismatch(&'static str),
    /// Fewer than `k` shares were given; nobody is known to have misbehaved.
    #[error("not enough signature shares: {got} of {needed}")]
    NotEnoughShares {
        /// Shares received.
        got: usize,
        /// Threshold `k`.
        needed: usize,
    },
    /// Signers misbehaved and fewer than `k` valid shares remain.
    #[error("misbehaving signers {culprits:?}; only {valid} valid shares of {needed} needed")]
    Culprits {
        /// Every signer whose share was found invalid, in id order.
        culprits: Vec<SignerId>,
        /// Why each culprit's share was rejected.
        faults: BTreeMap<SignerId, ShareFault>,
        /// Valid shares left.
        valid: usize,
        /// Threshold `k`.
        needed: usize,
    },
    /// An ordinary-modulus key ([`ordinary`]): no `k` of the given shares combine into a valid signature, and as
    /// these shares carry no proofs nobody among them can be blamed. Obtain shares from further signers (not in
    /// `signers`) and combine all of them together: with `k` honest shares among them the search succeeds.
    #[error(
        "no {needed} of the shares from {signers:?} combine into a valid signature; more shares are needed"
    )]
    Unattributable {
        /// The signers whose structurally valid shares were tried, in id order.
        signers: Vec<SignerId>,
        /// Shares rejected before the search (undecodable, out of range …); their senders misbehaved.
        faults: BTreeMap<SignerId, ShareFault>,
        /// Threshold `k`.
        needed: usize,
    },
    /// The dealer refuses a modulus this small without [`SplitOptions::allowing_small_modulus`].
    #[error("modulus of {bits} bits is below the minimum of {min} bits")]
    ModulusTooSmall {
        /// Bits of the modulus given.
        bits: usize,
        /// The minimum, [`ordinary::MIN_BITS`].
        min: usize,
    },
    /// A signature does not verify under the public key.
    #[error("invalid signature")]
    InvalidSignature,
    /// A private key given to [`split`] cannot be used (not parseable, multi-prime, primes not safe …).
    #[error("key import: {0}")]
    KeyImport(&'static str),
    /// A bug in this crate: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
