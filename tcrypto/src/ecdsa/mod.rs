//! Threshold ECDSA on P-256 with an honest majority, after Damgård, Jakobsen, Nielsen, Pagter and Østergaard,
//! "Fast Threshold ECDSA with Honest Majority" (SCN 2020, LNCS 12238; J. Comput. Secur. 30(1):167–196, 2022;
//! ePrint 2020/501), called DJNPØ below. Its parts are cited by name (the basic protocol, the preprocessing and
//! online phases, the opening in the exponent `g^w = R^a`) rather than by section number, because the numbering of
//! the conference, journal and ePrint versions could not be checked against each other.
//!
//! # Model and supported parameters
//!
//! The key `x` is Shamir-shared with degree `t` among `n` parties ([`KeyShare`]); any `k = t + 1` shares
//! determine it and `t` reveal nothing. We require an honest majority, **`n >= 2t + 1`**, with `1 <= t`,
//! `n <= 255`; other `(k, n)` are refused with [`Error::UnsupportedParameters`].
//!
//! * **Presigning** ([`presign`]) is run by a set `P` of **at least `2t + 1`** of the `n` parties, all of whom
//!   must stay online for its three rounds (the degree-`2t` products of DJNPØ need `2t + 1` evaluation points).
//!   It produces a batch of message-independent presignatures. With fewer than `2t + 1` parties online no new
//!   presignatures can be made ([`Error::UnsupportedParameters`]), but those already made remain usable.
//!   A misbehaving party makes the run abort with its id in [`Error::Culprits`]; run again without it.
//! * **Online signing** ([`sign`]) is one round: **any `k = t + 1` members of `P`** each return a
//!   [`sign::SignatureShare`] computed locally from its presignature, and [`combine::combine`] interpolates,
//!   verifies `(r, s)` with the public key, and on failure checks each share against the per-party commitments
//!   of the presignature, names the culprits and combines from the honest shares. So up to `|P| - k` members of
//!   `P` may be down at signing time.
//!
//! # The protocol (DJNPØ with BGW degree reduction)
//!
//! DJNPØ (the basic protocol, and its variant with preprocessing) computes random sharings `[k]`, `[a]`, opens
//! `R = g^k`, multiplies and opens `w = a·k`, checks `g^w = R^a` in the exponent (their "openExp" with the
//! redundancy of `n >= 2t + 1` shares), and then gets `[k^{-1}] = w^{-1}[a]` locally. Their online phase
//! multiplies `[k^{-1}]·[x]` into a degree-`2t` sharing and so needs `2t + 1` signers. We move that
//! multiplication into presigning too and reduce its degree with the resharing step of Ben-Or, Goldwasser and
//! Wigderson (and Gennaro, Rabin, Rabin 1998), so that the online phase needs only `t + 1` signers, is one
//! round, and every share is checkable:
//!
//! 1. [`presign::round1()`] — each `P_i` deals degree-`t` sharings `f_i` (for `k`) and `g_i` (for `a`); it
//!    broadcasts a hash commitment to `R_i = f_i(0)·G` (commit before reveal, so nobody can bias `R`) and a
//!    salted hash commitment to the shares it sends each `P_j` privately.
//! 2. [`presign::Round1State::round2`] — `P_i` checks its shares against the commitments (complaining
//!    otherwise), reveals `R_i`, forms `k_i`, `a_i`, the degree-`2t` products `u_i = a_i k_i` and `v_i = a_i x_i`,
//!    and reshares them with degree-`t` polynomials: `h^u_i` under salted hash commitments, `h^v_i` under Feldman
//!    commitments `HV_i` (it hides `a_i x_i`, which is never opened). It echoes the round-1 broadcasts.
//! 3. [`presign::Round2State::round3`] — `P_i` checks the reveals, echoes and its shares, forms its degree-`t`
//!    shares `u'_i` of `w = a·k` and `v'_i` of `a·x` (BGW degree reduction) and broadcasts `u'_i` (opening `w`)
//!    and DJNPØ's openings in the exponent `a_i·R`, `a_i·X`, plus `A_i = a_i·G` and `VX_i = v'_i·G`.
//! 4. [`presign::Round3State::finish`] — opens `w` (all `|P|` shares on one degree-`t` polynomial) and checks,
//!    with one random linear combination over the dual of the Reed–Solomon code, that `(0, w·G), (j, a_j·R)`
//!    lie on one degree-`t` polynomial (`g^w = R^a`, DJNPØ's check), that the `A_j` and the `VX_j` each do, and
//!    that `(0, 0), (j, a_j·X − VX_j)` do (so the `VX_j` share `a·x`). With `t + 1` honest members in `P`, the
//!    honest values fix every polynomial, so a wrong value anywhere fails the check. The output is
//!    `ρ_i = w^{-1}a_i` (a share of `k^{-1}`) and `σ_i = w^{-1}v'_i` (a share of `k^{-1}x`), with the public `R`,
//!    `w`, `A_j`, `VX_j`, so that `K_j = w^{-1}·A_j = ρ_j·G` and `KX_j = w^{-1}·VX_j = σ_j·G`.
//! 5. If a check fails, every member opens its ephemeral polynomials ([`presign::BlameReveal`]; never the
//!    resharing of `a_i x_i`) and [`presign::BlameState::conclude`] recomputes what each party should have sent
//!    and names who did not.
//!
//! Online ([`sign`]), for digest `m` the signers derive `δ = H(session, presignature id, key id, m)` and use the
//! re-randomised nonce `R' = δ·R` (Groth and Shoup, "On the security of ECDSA with additive key derivation and
//! presignatures", Eurocrypt 2022, recommend re-randomising presignatures with a hash of the message; we use the
//! multiplicative form `k' = δ·k`, which keeps the online phase linear in the shares of `k^{-1}`),
//! `r = x(R') mod n` and send `s_i = m·ρ_i + r·σ_i` (a share of `δ·s`); the combiner interpolates, multiplies by
//! `δ^{-1}` and verifies. Each share is checkable: `(w·s_i)·G == m·A_i + r·VX_i`.
//!
//! A private share that does not match its commitment is reported by the receiver (its complaint names the
//! dealer; without signatures on private messages such a complaint cannot be verified by others). A party that
//! sends different broadcasts to different members is named through the echoes (a lying echoer could make an
//! honest sender look like an equivocator; the run aborts either way and nothing secret is revealed).
//!
//! Verification is optimistic throughout (aggregate checks and random-linear-combination batch checks first;
//! per-party checks only on failure, to name the culprit).
//!
//! # Disclosure
//!
//! Besides `R`, a presignature makes `g^{k^{-1}}` and `X^{k^{-1}}` public (through `K_j`, `KX_j`); this is what
//! makes one-round, attributable signing by any `t + 1` parties possible.

pub mod combine;
#[cfg(feature = "dealer")]
pub mod dealer;
pub mod dkls;
pub(crate) mod group;
pub mod key;
pub mod presign;
pub mod sign;

use thiserror::Error;

use crate::codec::DecodeError;
use crate::id::SignerId;

pub use combine::{Combined, PreparedKey, combine, combine_with};
#[cfg(feature = "dealer")]
pub use dealer::{deal, split, split_secret_key};
pub use key::KeyShare;
pub use presign::{Presignature, PresignatureId, PresignaturePublic};
pub use sign::{SignRequest, SignatureShare, SpentPresignatures, sign_share};

/// Type tags (codec header) of this module: 0x20..0x2f.
pub(crate) mod tag {
    pub(crate) const KEY_SHARE: u8 = 0x20;
    pub(crate) const ROUND1_BROADCAST: u8 = 0x21;
    pub(crate) const ROUND1_DIRECT: u8 = 0x22;
    pub(crate) const ROUND2_BROADCAST: u8 = 0x23;
    pub(crate) const ROUND2_DIRECT: u8 = 0x24;
    pub(crate) const ROUND3_BROADCAST: u8 = 0x25;
    /// 0x26 was the presignature with `2^128·R` (refused since).
    pub(crate) const PRESIGNATURE: u8 = 0x2c;
    pub(crate) const PRESIGNATURE_PUBLIC: u8 = 0x27;
    pub(crate) const SIGN_REQUEST: u8 = 0x28;
    pub(crate) const SIGNATURE_SHARE: u8 = 0x29;
    pub(crate) const PRESIGN_PARAMS: u8 = 0x2a;
    pub(crate) const BLAME_REVEAL: u8 = 0x2b;
}

/// Largest number of parties supported.
pub const MAX_PARTIES: u16 = 255;

/// Largest number of presignatures in one batch.
pub const MAX_BATCH: u32 = 1024;

/// What a misbehaving party did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A message arrived from a party that is not part of this run.
    UnknownSender,
    /// A message is malformed (wrong number of entries, wrong session or id field, undecodable).
    Malformed,
    /// A revealed value does not match the party's earlier commitment.
    WrongCommitment,
    /// A share does not match the sender's commitment (named by the receiver's complaint when the share was
    /// private), a resharing does not hold the product it must, or a signature share fails its check.
    WrongShare,
    /// The party sent different broadcasts to different parties (seen through the echoes).
    Equivocation,
    /// A commitment or public value is the identity point.
    IdentityPoint,
    /// The party's opened value (share of `w`, `a_i·R`, `a_i·X`, `A_i`, `VX_i`) is not what it must be.
    WrongOpening,
}

/// A misbehaving party and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Culprit {
    /// The party at fault (its id comes from the authenticated channel, not from message contents).
    pub id: SignerId,
    /// What it did.
    pub fault: Fault,
}

/// Errors of threshold ECDSA.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller asked for parameters this scheme does not support (see the module docs).
    #[error("unsupported parameters: {0}")]
    UnsupportedParameters(&'static str),
    /// A key share is inconsistent (caller's or dealer's fault).
    #[error("invalid key share: {0}")]
    InvalidKeyShare(&'static str),
    /// Parties misbehaved; the run must be aborted (presigning) or they were skipped (signing).
    #[error("misbehaving parties: {culprits:?}")]
    Culprits {
        /// Who misbehaved and how.
        culprits: Vec<Culprit>,
    },
    /// Messages expected from these parties did not arrive (the caller must wait or abort).
    #[error("missing messages from {0:?}")]
    MissingMessages(Vec<SignerId>),
    /// Too few valid signature shares to combine.
    #[error("not enough valid signature shares: {valid} valid, {needed} needed (culprits: {culprits:?})")]
    NotEnoughShares {
        /// Valid shares available.
        valid: usize,
        /// Shares needed (`t + 1`).
        needed: usize,
        /// Parties whose shares were invalid.
        culprits: Vec<Culprit>,
    },
    /// The presignature is recorded as spent: it is refused, never used twice.
    #[error("presignature {0:?} is already spent")]
    PresignatureSpent(PresignatureId),
    /// The spent-presignature log could not record the presignature; no share was released.
    #[error("could not record the presignature as spent: {0}")]
    SpentLog(String),
    /// The caller passed inputs that do not belong together (wrong key, wrong presignature, bad digest).
    #[error("misuse: {0}")]
    Misuse(&'static str),
    /// Bytes could not be decoded.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A negligible-probability event (zero nonce, zero signature); retry with a fresh presignature.
    #[error("degenerate value ({0}); retry with another presignature")]
    Degenerate(&'static str),
}

impl Error {
    /// The parties named as misbehaving by this error (empty if none).
    pub fn culprits(&self) -> Vec<SignerId> {
        match self {
            Error::Culprits { culprits } | Error::NotEnoughShares { culprits, .. } => {
                culprits.iter().map(|c| c.id).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Builds a culprits error from `(id, fault)` pairs, deduplicated by id (first fault wins).
pub(crate) fn culprits(list: impl IntoIterator<Item = (SignerId, Fault)>) -> Error {
    let mut out: Vec<Culprit> = Vec::new();
    for (id, fault) in list {
        if !out.iter().any(|c| c.id == id) {
            out.push(Culprit { id, fault });
        }
    }
    out.sort_by_key(|c| c.id);
    Error::Culprits { culprits: out }
}

/// Checks the parameters of a key share: `1 <= k <= n <= MAX_PARTIES`. Any such key signs with the
/// `k`-online protocol ([`dkls`]); only keys that also pass [`check_params`] can presign (DJNPØ).
pub(crate) fn check_key_params(k: u16, n: u16) -> Result<(), Error> {
    if n > MAX_PARTIES {
        return Err(Error::UnsupportedParameters("at most 255 parties"));
    }
    if k == 0 || k > n {
        return Err(Error::UnsupportedParameters("quorum k must be in 1..=n"));
    }
    Ok(())
}

/// Checks `(k, n)` with `k = t + 1` for honest-majority presigning (DJNPØ): `k >= 2`, `n >= 2k - 1` (i.e. `n >= 2t + 1`), `n <= MAX_PARTIES`.
pub(crate) fn check_params(k: u16, n: u16) -> Result<(), Error> {
    if k < 2 {
        return Err(Error::UnsupportedParameters(
            "quorum k = t + 1 must be at least 2",
        ));
    }
    if n > MAX_PARTIES {
        return Err(Error::UnsupportedParameters("at most 255 parties"));
    }
    if u32::from(n) + 1 < 2 * u32::from(k) {
        return Err(Error::UnsupportedParameters(
            "honest majority required: n >= 2t + 1, i.e. k = t + 1 <= (n + 1) / 2",
        ));
    }
    Ok(())
}
