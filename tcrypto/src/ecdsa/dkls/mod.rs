//! `k`-online threshold ECDSA on P-256: Doerner, Kondi, Lee, shelat, "Threshold ECDSA in Three Rounds"
//! (IEEE S&P 2024, ePrint 2023/765), called DKLs23 below, on the keys of [`crate::dkg`] (any `1 <= k <= n`).
//!
//! Unlike the honest-majority presignatures of [`crate::ecdsa::presign`] (which need `2k - 1` parties online),
//! any `k` holders sign together, and up to `k - 1` of them may be corrupt (dishonest majority). The price is
//! a per-pair setup (base OTs) and about 100 KiB of traffic per signer per signature for `k = 3`.
//!
//! # Pieces, one module each
//!
//! * [`base_ot`] — base OT (Chou–Orlandi "Simplest OT" with the sender's proof of knowledge and transcript
//!   hashing), [`setup`] — the per-pair setup that runs it in both directions and yields a [`PairState`].
//! * [`ote`] — KOS15 OT extension with its consistency check (Fiat–Shamir), over GF(2^128).
//! * [`rvole`] — DKLs23's `Π_RVOLE` (two-party vector multiplication, Bob's input random, DKLs19's check).
//! * [`round1`](mod@round1), [`round2`], [`round3`] — DKLs23's three-round signing protocol (with its key/nonce
//!   consistency check), and [`combine()`] — the combiner.
//!
//! The paper's text could not be consulted while this was written. The round structure and the equations of
//! the consistency check (`χ·R_j = d^u·G + Γ^u`, `χ·pk_j = d^v·G + Γ^v`, `u_i = r_i(φ_i + Σ_j ψ_{j,i}) +
//! Σ_j (c^u + d^u)`) were compared, by reading only, with an independent implementation (0xCarbon/DKLs23,
//! `sign.rs`, which cites the paper's Protocol 3.6 and notes that its second check must use `pk_j`, as here).
//! A line-by-line check against the paper is still to be done.
//!
//! # The signing protocol
//!
//! A signing set `S` of at least `k` parties converts its Shamir shares to additive ones with Lagrange
//! coefficients over `S`: `sk_i = λ_i·x_i`, and everyone knows `pk_j = λ_j·X_j` from the public shares
//! ([`crate::ecdsa::KeyShare::public_shares`]), so `Σ_{j∈S} pk_j = X` holds by construction and need not be
//! checked at signing time. For each ordered pair `(i, j)` in `S`, `P_i` plays Bob and `P_j` Alice in one
//! `Π_RVOLE` with Alice's input `(r_j, sk_j)`.
//!
//! 1. [`round1()`] — `P_i` draws its nonce share `r_i` and mask `φ_i`, `R_i = r_i·G`, commits
//!    `com_i = H(sid, i, R_i, salt_i)`, and sends every `P_j` the commitment and Bob's first `Π_RVOLE` message
//!    (its random input is `χ_{i,j}`).
//! 2. [`Round1State::round2`] — `P_i` answers each `P_j`'s VOLE as Alice with `(r_i, sk_i)`, getting
//!    `c^u_{i,j}, c^v_{i,j}`, and sends `P_j`: the opening `(R_i, salt_i)`, the echo of every commitment it
//!    received, `ψ_{i,j} = φ_i − χ_{i,j}` (so that `P_j`'s VOLE input becomes `φ_i`), Alice's VOLE message, and
//!    `Γ^u_{i,j} = c^u_{i,j}·G`, `Γ^v_{i,j} = c^v_{i,j}·G`.
//! 3. [`Round2State::round3`] — `P_i` checks each opening and echo, finishes each VOLE as Bob
//!    (`d^u_{i,j} + c^u_{j,i} = χ_{i,j}·r_j`, `d^v_{i,j} + c^v_{j,i} = χ_{i,j}·sk_j`) and runs DKLs23's
//!    consistency check `d^u_{i,j}·G = χ_{i,j}·R_j − Γ^u_{j,i}` and `d^v_{i,j}·G = χ_{i,j}·pk_j − Γ^v_{j,i}`
//!    (this binds the VOLE inputs of `P_j` to its committed `R_j` and its public key share; we check both at
//!    once, folded with a public hash-derived weight `ρ`, in one constant-time linear combination). With
//!    `R = Σ R_j`, `r = x(R) mod q`, it forms `u_i = r_i φ_i + Σ_j (c^u_{i,j} + r_i ψ_{j,i} + d^u_{i,j})` and
//!    `v_i` likewise with `sk_i` (so `Σ u_i = φ·k`, `Σ v_i = φ·x`), and sends the combiner
//!    `w_i = m·φ_i + r·v_i` and `u_i` ([`PartialSignature`]).
//! 4. [`combine()`] — `s = Σ w_i / Σ u_i = (m + r·x)/k`, and the signature `(r, s)` is verified with the
//!    public key before it is returned. Like [`crate::ecdsa::combine()`], `s` is returned as computed (not
//!    normalised to the low half); both are valid ECDSA signatures and the same output type
//!    ([`crate::ecdsa::Combined`], DER via `to_der`, raw `r || s` via `signature.to_bytes()`).
//!
//! # Blame: what is detected, attributed, or only aborts
//!
//! Sender identities come from the authenticated channel (the maps' keys). [`Error::Culprits`] names:
//!
//! * **a wrong base-OT proof** at setup ([`Fault::BaseOtProof`]), the base-OT sender;
//! * **a failed KOS15 check** ([`Fault::OtExtensionCheck`]): Bob's extension message is inconsistent (round 2,
//!   named by Alice). KOS15's selective failure means an abort may tell Bob one bit of `Δ`; an operator should
//!   re-run the pair's setup after such a failure (fresh `Δ`);
//! * **a failed multiplication check** ([`Fault::MultiplicationCheck`]): Alice's `τ`, `μ` or digest is
//!   inconsistent (round 3, named by Bob);
//! * **a failed key/nonce consistency check** ([`Fault::InconsistentInput`]): Alice's VOLE input is not her
//!   committed `r_j` or her key share `sk_j`, or her `Γ` values are wrong (round 3);
//! * **a wrong opening** ([`Fault::WrongCommitment`]) of `R_j`;
//! * **equivocation** ([`Fault::Equivocation`]) of the round-1 commitment, seen through the echoes: if `P_l`
//!   echoes a commitment of `P_j` other than the one `P_j` sent us, `P_j` is named (a lying echoer can make an
//!   honest `P_j` look guilty; the run aborts either way, as in the DJNPØ module); an echo that misreports *our
//!   own* commitment names the echoer (first-hand evidence);
//! * **malformed messages**, messages from outside the set ([`Fault::Malformed`], [`Fault::UnknownSender`]),
//!   and **silence** ([`Error::MissingMessages`] lists the silent parties).
//!
//! A culprit in rounds 2 and 3 is named by the receiver of the bad message: between nodes without transferable
//! evidence (the network layer signs its messages, which can make such a claim checkable by a third party),
//! others learn only that one of the two deviated, as with the DJNPØ module's complaints. A failed OT
//! check can also mean that the pair's setup went wrong (the peer's base-OT receiver message was not what the
//! protocol says); either way the pair state should be set up again before that pair signs again.
//!
//! What **only aborts**, naming nobody: a wrong `u_i` or `w_i` in round 3 (DKLs23 has no per-party check of
//! these; the combiner's verification fails: [`Error::InvalidSignature`]), partial signatures that disagree on
//! `R` (someone equivocated its opening after a consistent commitment is impossible, so this means a signer
//! lied to the combiner; which one cannot be told without more rounds), and degenerate values
//! ([`Error::Degenerate`]). In every case nothing invalid is released: [`combine()`] returns a signature only
//! after it verifies under the public key.
//!
//! # What the network layer needs
//!
//! **Per-pair setup** (once per unordered pair of nodes, independent of keys; both nodes use the same fresh
//! setup [`SessionId`]): each node sends its peer [`setup::SetupRound1`] (from [`setup::round1`]), then, on
//! receiving the peer's, [`setup::SetupRound2`] (from [`setup::SetupState1::round2`]), then builds its
//! [`PairState`] with [`setup::SetupState2::finish`]. Four messages per pair, two each way, in that order. The
//! node stores its [`PairState`] per peer ([`PairState::encode`]; secret: seal it like a share, write it
//! crash-safely). It is **reusable**: for any number of signatures, concurrently, across restarts. Nothing
//! per signature needs persisting: each run draws fresh 32-byte nonces `n_B`, `n_A` from the node's CSPRNG and
//! binds them into every expansion ([`rvole`] explains why that suffices); a run interrupted by a crash is
//! simply lost (its in-memory states are gone; the coordinator starts a new session id). If a peer fails
//! the OT-extension check ([`Fault::OtExtensionCheck`]) the node should discard that pair state and redo the
//! setup before signing with that peer again. A lost or damaged pair state is replaced by a new setup.
//!
//! **Per signature** (signing set `S`, `|S| >= k`, a fresh session id from the coordinator, digest known at
//! round 3 at the latest): the node calls [`round1()`] with its key share, the pair states for the other
//! members of `S` and [`SignParams`], and sends one [`Round1Msg`] to each other member; then
//! [`Round1State::round2`] with the map of received [`Round1Msg`]s (keyed by authenticated sender), sending
//! one [`Round2Msg`] to each; then [`Round2State::round3`] with the received [`Round2Msg`]s and the digest,
//! sending its [`PartialSignature`] to the combiner (the coordinator), which calls [`combine()`]. Every round
//! consumes the previous state by value. The Shamir share is converted inside [`round1()`] (`λ_i` over `S`),
//! the node only passes its [`crate::ecdsa::KeyShare`]. Messages between nodes are point-to-point (each
//! carries per-pair VOLE data) and must be confidential and authenticated (HPKE-sealed and signed).

//! # What the tests check against what
//!
//! * ChaCha20 (the PRG) against RFC 7539 appendix A.1 vector 1; SHA-256 against FIPS 180-4 ("abc"), and our
//!   hash layout against `sha2` over bytes written out by hand (`prg` tests).
//! * GF(2^128) multiplication against an independent shift-and-reduce implementation and the modulus
//!   identity `x^127·x = x^7 + x^2 + x + 1` (`gf128` tests).
//! * Base OT: the receiver's key equals the sender's key of its choice bit and differs from the other, for
//!   all 128 OTs; a wrong proof or session is refused (`base_ot`, `setup` tests).
//! * OT extension: Bob's and Alice's rows against a bit-by-bit recomputation from the PRG definition, and the
//!   correlation `q_j = t_j ⊕ x_j·Δ` on every row; a flipped column bit is caught exactly when `Δ_l = 1`
//!   (`ote` tests).
//! * VOLE: `c + d = χ·a` with `χ` recomputed from Bob's bits; tampered `τ`, `μ`, digest are caught (`rvole`).
//! * Signing: signatures from DKG keys (2-of-3, every 3-subset of 3-of-5, 4-of-5, 5-of-5, 1-of-3) verified by
//!   `p256`'s verifier; misbehaviour in every message; strict decoding (`tests/dkls.rs`).

pub mod base_ot;
pub mod combine;
pub(crate) mod gf128;
pub mod ote;
pub(crate) mod prg;
pub mod round1;
pub mod round2;
pub mod round3;
pub mod rvole;
pub mod setup;

use thiserror::Error;

use crate::codec::DecodeError;
use crate::id::SignerId;

pub use combine::{combine, combine_with};
pub use round1::{Round1Msg, Round1State, SignParams, round1};
pub use round2::{Round2Msg, Round2State};
pub use round3::PartialSignature;
pub use setup::PairState;

#[doc(no_inline)]
pub use crate::id::SessionId;

/// Type tags (codec header) of this module: 0x50..0x5f.
pub(crate) mod tag {
    pub(crate) const PAIR_STATE: u8 = 0x50;
    pub(crate) const SETUP_ROUND1: u8 = 0x51;
    pub(crate) const SETUP_ROUND2: u8 = 0x52;
    pub(crate) const SIGN_ROUND1: u8 = 0x53;
    pub(crate) const SIGN_ROUND2: u8 = 0x54;
    pub(crate) const PARTIAL_SIGNATURE: u8 = 0x55;
}

/// What a misbehaving party did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A message arrived from a party that is not part of this run.
    UnknownSender,
    /// A message is malformed (undecodable, wrong session, wrong set of entries).
    Malformed,
    /// The base-OT sender's proof of knowledge failed (setup).
    BaseOtProof,
    /// The KOS15 consistency check of the party's OT extension (as Bob) failed.
    OtExtensionCheck,
    /// The multiplication check of the party's VOLE message (as Alice) failed.
    MultiplicationCheck,
    /// DKLs23's consistency check failed: the party's VOLE input is not its committed nonce share or its key
    /// share, or its `Γ` values are wrong.
    InconsistentInput,
    /// The opened `R_j` does not match the party's commitment.
    WrongCommitment,
    /// The party sent different commitments to different parties, or misreported ours in its echo.
    Equivocation,
}

/// A misbehaving party and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Culprit {
    /// The party at fault (from the authenticated channel).
    pub id: SignerId,
    /// What it did.
    pub fault: Fault,
}

/// Errors of the DKLs23 protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller asked for parameters this protocol does not support (e.g. a set smaller than `k`).
    #[error("unsupported parameters: {0}")]
    UnsupportedParameters(&'static str),
    /// The caller passed inputs that do not belong together (missing pair state, wrong key, own id missing).
    #[error("misuse: {0}")]
    Misuse(&'static str),
    /// Parties misbehaved; the run is aborted.
    #[error("misbehaving parties: {culprits:?}")]
    Culprits {
        /// Who misbehaved and how.
        culprits: Vec<Culprit>,
    },
    /// Messages expected from these parties did not arrive.
    #[error("missing messages from {0:?}")]
    MissingMessages(Vec<SignerId>),
    /// The combined signature does not verify under the public key: some signer sent a wrong `u_i` or `w_i`,
    /// or the signers disagree on `R`; DKLs23 cannot tell who. Nothing is released.
    #[error("combined signature is invalid ({0}); aborted without naming a party")]
    InvalidSignature(&'static str),
    /// Bytes could not be decoded.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A negligible-probability event (`R` the identity, `r = 0`, `Σ u_i = 0`); run again.
    #[error("degenerate value ({0}); run again")]
    Degenerate(&'static str),
}

impl Error {
    /// The parties named as misbehaving (empty if none).
    pub fn culprits(&self) -> Vec<SignerId> {
        match self {
            Error::Culprits { culprits } => culprits.iter().map(|c| c.id).collect(),
            _ => Vec::new(),
        }
    }
}

/// One culprit.
pub(crate) fn culprit(id: SignerId, fault: Fault) -> Error {
    Error::Culprits {
        culprits: vec![Culprit { id, fault }],
    }
}

/// Builds a culprits error, deduplicated by id (first fault wins), sorted by id; `Ok` if the list is empty.
pub(crate) fn check_culprits(list: Vec<(SignerId, Fault)>) -> Result<(), Error> {
    if list.is_empty() {
        return Ok(());
    }
    let mut out: Vec<Culprit> = Vec::new();
    for (id, fault) in list {
        if !out.iter().any(|c| c.id == id) {
            out.push(Culprit { id, fault });
        }
    }
    out.sort_by_key(|c| c.id);
    Err(Error::Culprits { culprits: out })
}
