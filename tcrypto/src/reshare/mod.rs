//! Resharing of a P-256 or Ed25519 threshold key to a new set of holders with a new threshold, and its special
//! case, the refresh (reshare to the same set): the public key stays the same, the new shares are independent of
//! the old ones, and nobody ever holds the key.
//!
//! # The construction
//!
//! This is verifiable secret redistribution (Desmedt and Jajodia, "Redistributing secret shares to new access
//! structures and its applications", 1997; with the verification of Wong, Wang and Wing, "Verifiable secret
//! redistribution for archive systems", IEEE SISW 2002) over the Feldman commitments of [`crate::dkg`]. The old
//! key `x` is shared by a degree-`(k-1)` polynomial `f` among the old holders `I`, with public verification
//! shares `X_i = f(i)·G` and public key `X = x·G`.
//!
//! 1. Every dealer `i` of the agreed dealer set `D ⊆ I` (`|D| >= k`) draws a fresh polynomial `g_i` of degree
//!    `k'-1` with **`g_i(0) = x_i`, its raw share**, publishes the Feldman commitments `C_i = (g_i0·G, ..,
//!    g_i(k'-1)·G)` ([`round1::Dealing`]) and sends every new holder `j` the sub-share `g_i(j)`
//!    ([`round1::SubShare`]).
//! 2. Every new holder checks each dealing: `k'` commitments, the constant term against the old verification
//!    share it claims to carry, `C_i0 == X_i` (so `g_i(0) = x_i`), and its sub-share against the commitments,
//!    `g_i(j)·G == Σ_l j^l·C_il`. It broadcasts a [`round2::Verdict`]: an echo (a hash of every dealing as
//!    received, or "nothing received") and its complaints about sub-shares.
//! 3. An accused dealer answers each complaint by revealing the disputed sub-share ([`round3::Answer`]), as in the
//!    complaint round of the DKG ([`crate::dkg::resolve`], after Gennaro, Jarecki, Krawczyk and Rabin).
//! 4. Every new holder judges ([`round4`]): a dealer is **excluded** when the echoes of its dealing disagree
//!    (equivocation, or silence towards some), when nobody received it (silence), when its dealing is malformed or
//!    its constant term is not `X_i`, or when an accusation is not answered with a sub-share matching its
//!    commitments. The qualified set `Q` is what remains; with `|Q| >= k` the new share of `j` is
//!    `x'_j = Σ_{i∈Q} λ^Q_i·g_i(j)` and the new commitments `C'_l = Σ_{i∈Q} λ^Q_i·C_il`, where `λ^Q_i` are the
//!    Lagrange coefficients at 0 over `Q`. It broadcasts a [`round4::Confirmation`] (a hash of every verdict and
//!    answer as received).
//! 5. [`round4::JudgedState::confirm`] accepts when every confirmation agrees with its own view.
//!
//! **Why raw shares and weights applied after the complaints.** Had each dealer dealt its Lagrange-weighted share
//! `λ_i·x_i` for a dealer set fixed in advance, excluding one dealer would change every other dealer's weight and
//! force a new round. Dealing the raw share `x_i` makes exclusion free: for *any* `Q ⊆ I` with `|Q| >= k`,
//! `Σ_{i∈Q} λ^Q_i·x_i = f(0) = x` because `f` has degree `k - 1 < |Q|`. The new holders therefore apply the
//! weights themselves, over the set that survived the complaints, in the same local step; the dealer set can also
//! be larger than `k` (every old holder may deal), which makes the run robust to `|D| - k` faulty dealers.
//!
//! **Correctness.** `F(z) = Σ_{i∈Q} λ^Q_i·g_i(z)` has degree at most `k'-1` and `F(0) = Σ λ^Q_i·x_i = x`; the new
//! shares are `F(j)`, the new verification shares `X'_j = F(j)·G` are evaluated from `C'` by everyone, and
//! `C'_0 = Σ λ^Q_i·X_i = X`: the public key is unchanged (checked before a share is returned).
//!
//! **Secrecy.** An adversary holding at most `k-1` old shares and at most `k'-1` new shares learns nothing about
//! `x` beyond `X`: the constant-term commitment of a dealer is `X_i`, public already; its other commitments are
//! `a·G` for uniform `a`; and the `k'-1` sub-shares of a degree-`(k'-1)` polynomial are uniform and independent of
//! its constant term. Because at most `k-1` old holders are corrupt and `|Q| >= k`, some honest dealer `h` is in
//! `Q` with `λ^Q_h ≠ 0`, so the non-constant coefficients of `F` are uniform and independent of `f`: the new
//! sharing is a fresh random sharing of `x`, and old and new shares do not combine (a share of `f` and `k'-1`
//! shares of `F` are `k'` points of no common polynomial). This is the proactive argument of Herzberg,
//! Jarecki, Krawczyk and Yung ("Proactive secret sharing", CRYPTO 1995) for a refresh, and of Desmedt–Jajodia for a
//! change of holders. Dealers need no proof of knowledge (unlike the DKG): the constant term is bound to `X_i`,
//! which only the holder of `x_i` can open, and a rushing dealer cannot bias anything that matters: the secret
//! is fixed, and the honest dealer's coefficients are hidden.
//!
//! **Without a broadcast channel.** The new holders must agree on `Q` and on the qualified dealings. The echo in
//! the verdict makes a dealing consistent or excludes its dealer; a verdict or answer seen in two versions is
//! caught by the confirmations of step 4 and aborts the run naming the party seen in two versions (with the
//! echoing holder as the witness: without transferable signatures a lying echoer cannot be told from an
//! equivocating sender, as in the DKG; see [the DKG notes](crate::dkg#equivocation-and-complaints-without-a-broadcast-channel)).
//! A Byzantine *new* holder can therefore get an honest dealer excluded (by a false echo or a false complaint,
//! the latter named as [`Fault::FalseComplaint`]) or abort the run; it cannot make honest holders accept different
//! sharings or a sharing of another key.
//!
//! # Thresholds
//!
//! Old and new `(n, k)` are free: `1 <= k' <= n'` and any dealer set of at least `k` old holders. Ed25519 (FROST)
//! signs with any `k'`. For P-256 the new ids must be exactly `1..=n'` with `n' <= 255` (what
//! [`crate::ecdsa::KeyShare`] requires; [`crate::dkg::KeyShare::to_ecdsa`] checks it); the honest-majority
//! presignatures of [`crate::ecdsa::presign`] then need `n' >= 2k'-1`, while the `k`-online protocol
//! [`crate::ecdsa::dkls`] signs with any `k' <= n'` (its pair states do not depend on the key and survive a reshare).
//!
//! # Steps and messages
//!
//! | step | who | function | sends |
//! |---|---|---|---|
//! | 1 | each dealer `i ∈ D` | [`round1::deal`] | [`round1::Dealing`] `C_i` to every new holder, [`round1::SubShare`] `g_i(j)` to each new holder `j` |
//! | 2 | each new holder `j` | [`round2::receive`] | [`round2::Verdict`] (echo, complaints) to every other new holder and every dealer |
//! | 3 | each accused dealer | [`round1::DealerState::answer`] | [`round3::Answer`] (the disputed sub-shares) to every new holder |
//! | 4 | each new holder | [`round2::ReceiverState::judge`] | [`round4::Confirmation`] to every other new holder |
//! | 5 | each new holder | [`round4::JudgedState::confirm`] | nothing: the new key share ([`Reshared`]) |
//!
//! Step 3 may be skipped when no verdict carries a complaint (step 4 then takes an empty map of answers). Every
//! step is sans-io, consumes the previous state by value, takes messages keyed by the sender as the authenticated
//! channel reports it, and binds the session id and all parameters (the old public key set included) into every
//! hash.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Writer};
use crate::dkg::{self, Curve, Ed25519, P256, PublicKeySet, curve};
use crate::id::{SessionId, SignerId};

pub(crate) mod agree;
pub mod round1;
pub mod round2;
pub mod round3;
pub mod round4;

/// Type tags of the reshare encodings (0x60..0x6f).
pub(crate) mod tag {
    pub(crate) const DEALING: u8 = 0x60;
    pub(crate) const SUB_SHARE: u8 = 0x61;
    pub(crate) const VERDICT: u8 = 0x62;
    pub(crate) const ANSWER: u8 = 0x63;
    pub(crate) const CONFIRMATION: u8 = 0x64;
}

/// The public parameters every dealer and new holder agrees on before starting.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters<C: Curve> {
    session: SessionId,
    old: PublicKeySet<C>,
    dealers: BTreeSet<SignerId>,
    threshold: u16,
    receivers: BTreeSet<SignerId>,
}

impl<C: Curve> Parameters<C> {
    /// Parameters to reshare the key of `old` from the `dealers` (old holders, at least the old threshold of them)
    /// to the `receivers` with the new threshold `threshold`.
    ///
    /// Refuses a dealer that is not an old holder, fewer dealers than the old threshold, an empty or duplicated
    /// receiver list and a new threshold outside `1..=n'`.
    pub fn new(
        session: SessionId,
        old: PublicKeySet<C>,
        dealers: impl IntoIterator<Item = SignerId>,
        threshold: u16,
        receivers: impl IntoIterator<Item = SignerId>,
    ) -> Result<Self, Error> {
        let dealers = unique(dealers, "duplicate dealer id")?;
        let receivers = unique(receivers, "duplicate new holder id")?;
        if dealers.iter().any(|i| !old.public_shares().contains_key(i)) {
            return Err(Error::InvalidParameters(
                "a dealer is not a holder of the old key",
            ));
        }
        if dealers.len() < usize::from(old.threshold()) {
            return Err(Error::InvalidParameters("fewer dealers than the old threshold"));
        }
        if receivers.is_empty() {
            return Err(Error::InvalidParameters("no new holders"));
        }
        if threshold == 0 || usize::from(threshold) > receivers.len() {
            return Err(Error::InvalidParameters("new threshold must be in 1..=n'"));
        }
        Ok(Self {
            session,
            old,
            dealers,
            threshold,
            receivers,
        })
    }

    /// A refresh: every old holder deals, to the same holders, with the same threshold.
    pub fn refresh(session: SessionId, old: PublicKeySet<C>) -> Result<Self, Error> {
        let ids: Vec<SignerId> = old.public_shares().keys().copied().collect();
        let k = old.threshold();
        Self::new(session, old, ids.clone(), k, ids)
    }

    /// The session id bound into every hash of the run.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The old public key set (threshold `k`, verification shares `X_i`, public key `X`).
    pub fn old(&self) -> &PublicKeySet<C> {
        &self.old
    }

    /// `D`: the old holders that deal.
    pub fn dealers(&self) -> &BTreeSet<SignerId> {
        &self.dealers
    }

    /// `k'`: the new threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The ids of the `n'` new holders.
    pub fn receivers(&self) -> &BTreeSet<SignerId> {
        &self.receivers
    }

    /// `H("tcrypto/reshare/v1", curve, label, session, old public key set, D, k', new holders)` as a hash input.
    fn transcript(&self, label: &'static str) -> Writer {
        let mut w = Writer::bare();
        w.bytes(b"tcrypto/reshare/v1")
            .bytes(C::NAME.as_bytes())
            .bytes(label.as_bytes())
            .raw(self.session.as_bytes());
        self.old.encode_body(&mut w);
        w.u32(self.dealers.len() as u32);
        for i in &self.dealers {
            i.encode(&mut w);
        }
        w.u16(self.threshold);
        w.u32(self.receivers.len() as u32);
        for j in &self.receivers {
            j.encode(&mut w);
        }
        w
    }

    /// Refuses a message from `sender` unless it is in `allowed` (and is not ourselves, `me`).
    fn check_sender(
        allowed: &BTreeSet<SignerId>,
        me: Option<SignerId>,
        sender: SignerId,
        party: fn(SignerId) -> Party,
    ) -> Result<(), Error> {
        if Some(sender) == me || !allowed.contains(&sender) {
            return Err(Error::UnexpectedSender {
                culprit: party(sender),
            });
        }
        Ok(())
    }
}

fn unique(ids: impl IntoIterator<Item = SignerId>, what: &'static str) -> Result<BTreeSet<SignerId>, Error> {
    let mut set = BTreeSet::new();
    for id in ids {
        if !set.insert(id) {
            return Err(Error::InvalidParameters(what));
        }
    }
    Ok(set)
}

/// A party of a reshare: an old holder in its role of dealer, or a new holder. The two id spaces are distinct (old
/// holder 3 and new holder 3 may be different machines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    /// Old holder (dealer) `i`.
    Old(SignerId),
    /// New holder (receiver) `j`.
    New(SignerId),
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Old(i) => write!(f, "old holder {i}"),
            Party::New(j) => write!(f, "new holder {j}"),
        }
    }
}

/// What a party did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// A dealer sent no dealing to any new holder.
    Silent,
    /// A dealer's dealing was seen in two versions (or by some new holders only); a verdict or an answer was seen
    /// in two versions; or an echo misreports our own message.
    Equivocation,
    /// A dealer's constant-term commitment `C_i0` is not its old verification share `X_i`.
    WrongCommitment,
    /// A message that is well-formed but does not fit the run (wrong number of commitments, an echo that does not
    /// cover exactly the dealers, a complaint about a non-dealer).
    Malformed,
    /// A dealer's sub-share, revealed to answer a complaint, does not match its commitments.
    InvalidShare,
    /// A dealer did not answer a complaint about its sub-share.
    NoAnswer,
    /// A new holder complained about a sub-share that the dealer revealed and that matches its commitments.
    FalseComplaint,
}

/// A misbehaving party and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Culprit {
    /// Who (from the authenticated channel, never from message contents).
    pub party: Party,
    /// What.
    pub fault: Fault,
    /// The new holder whose echo disagreed with ours, for [`Fault::Equivocation`] seen through an echo (without
    /// transferable signatures a lying witness cannot be told from an equivocating sender).
    pub witness: Option<SignerId>,
}

/// Why a reshare step failed. Variants that blame parties name them; [`Error::culprits`] lists them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller asked for something impossible (caller misuse: bad parameters, a share of another key).
    #[error("invalid reshare parameters: {0}")]
    InvalidParameters(&'static str),
    /// A message came from a party that has no such role in the run.
    #[error("message from unexpected sender ({culprit})")]
    UnexpectedSender {
        /// The sender, as the channel reported it.
        culprit: Party,
    },
    /// New holders did not send this step's message (every new holder must take part in every step).
    #[error("missing messages from {culprits:?}")]
    MissingMessages {
        /// Who is missing.
        culprits: Vec<Party>,
    },
    /// A message could not be decoded.
    #[error("malformed message from {culprit}: {error}")]
    Malformed {
        /// The sender.
        culprit: Party,
        /// Why decoding failed.
        error: DecodeError,
    },
    /// Fewer than `k` dealers remain qualified: the run fails and no new share exists (the old sharing stays).
    #[error("only {qualified} qualified dealers, {needed} needed; culprits: {culprits:?}")]
    NotEnoughDealers {
        /// Dealers left in `Q`.
        qualified: usize,
        /// The old threshold `k`.
        needed: u16,
        /// Every excluded dealer and false accuser.
        culprits: Vec<Culprit>,
    },
    /// The new holders do not agree on the transcript (a verdict or an answer was seen in two versions, or a
    /// confirmation is malformed or misreports ours): the run aborts; run it again without the culprits.
    #[error("reshare aborted, inconsistent views; culprits: {culprits:?}")]
    Inconsistent {
        /// Who was seen in two versions (with the witness) or confirmed something malformed.
        culprits: Vec<Culprit>,
    },
    /// The result failed our own final check (a new verification share is the identity, the public key
    /// changed). Only through a bug or with negligible probability.
    #[error("reshare result check failed: {0}")]
    InvalidResult(&'static str),
}

impl Error {
    /// The parties this error blames (empty for caller misuse).
    pub fn culprits(&self) -> Vec<Party> {
        match self {
            Error::UnexpectedSender { culprit } | Error::Malformed { culprit, .. } => vec![*culprit],
            Error::MissingMessages { culprits } => culprits.clone(),
            Error::NotEnoughDealers { culprits, .. } | Error::Inconsistent { culprits } => {
                let set: BTreeSet<Party> = culprits.iter().map(|c| c.party).collect();
                set.into_iter().collect()
            }
            Error::InvalidParameters(_) | Error::InvalidResult(_) => Vec::new(),
        }
    }
}

/// The outcome of a reshare for one new holder.
pub struct Reshared<C: Curve> {
    /// The new key share (same public key, new threshold, new verification shares). Convert it with
    /// [`dkg::KeyShare::to_ecdsa`] or [`crate::ed25519::KeyShare::from_dkg`].
    pub share: dkg::KeyShare<C>,
    /// `Q`: the dealers whose dealings make up the new sharing.
    pub qualified: BTreeSet<SignerId>,
    /// Every excluded dealer and every false accuser, with what it did.
    pub culprits: Vec<Culprit>,
}

impl<C: Curve> fmt::Debug for Reshared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reshared")
            .field("share", &self.share)
            .field("qualified", &self.qualified)
            .field("culprits", &self.culprits)
            .finish()
    }
}

/// A share of the old key that can deal in a reshare: a DKG key share of either curve, a threshold ECDSA key share
/// or a threshold Ed25519 key share (sealed).
pub trait OldShare<C: Curve>: sealed::Sealed<C> {}

pub(crate) mod sealed {
    use super::{Curve, Error, PublicKeySet, SignerId};

    /// The parts of an old share the dealer needs.
    pub trait Sealed<C: Curve> {
        /// The old holder's id and secret share `x_i`.
        fn id_and_secret(&self) -> (SignerId, C::Scalar);
        /// The old public key set.
        fn old_public(&self) -> Result<PublicKeySet<C>, Error>;
    }
}

impl<C: Curve> sealed::Sealed<C> for dkg::KeyShare<C> {
    fn id_and_secret(&self) -> (SignerId, C::Scalar) {
        (self.id(), *self.secret())
    }
    fn old_public(&self) -> Result<PublicKeySet<C>, Error> {
        Ok(self.public().clone())
    }
}
impl<C: Curve> OldShare<C> for dkg::KeyShare<C> {}

impl sealed::Sealed<Ed25519> for crate::ed25519::KeyShare {
    fn id_and_secret(&self) -> (SignerId, <Ed25519 as Curve>::Scalar) {
        (self.id(), *self.as_dkg().secret())
    }
    fn old_public(&self) -> Result<PublicKeySet<Ed25519>, Error> {
        Ok(self.public().as_dkg().clone())
    }
}
impl OldShare<Ed25519> for crate::ed25519::KeyShare {}

impl sealed::Sealed<P256> for crate::ecdsa::KeyShare {
    fn id_and_secret(&self) -> (SignerId, <P256 as Curve>::Scalar) {
        (self.id(), *self.secret())
    }
    fn old_public(&self) -> Result<PublicKeySet<P256>, Error> {
        public_key_set_from_shares(self.threshold(), self.public_shares())
    }
}
impl OldShare<P256> for crate::ecdsa::KeyShare {}

/// The old public key set of a share (what [`Parameters::new`] takes): for ECDSA shares it is rebuilt from the
/// verification shares (the Feldman commitments are interpolated in the exponent and checked against every share).
pub fn old_public<C: Curve>(share: &impl OldShare<C>) -> Result<PublicKeySet<C>, Error> {
    share.old_public()
}

/// The public key set whose verification shares are `public_shares` (degree `threshold - 1`): the commitments
/// `A_c = Σ_m [z^c]L_m(z)·X_{b_m}` over the first `threshold` ids `b_m` (`L_m` their Lagrange basis polynomials),
/// then every share recomputed from them and compared.
pub fn public_key_set_from_shares<C: Curve>(
    threshold: u16,
    public_shares: &BTreeMap<SignerId, C::Point>,
) -> Result<PublicKeySet<C>, Error> {
    let k = usize::from(threshold);
    if k == 0 || k > public_shares.len() {
        return Err(Error::InvalidParameters("threshold must be in 1..=n"));
    }
    let base: Vec<u16> = public_shares.keys().take(k).map(|i| i.get()).collect();
    let mut commitments = vec![C::identity(); k];
    for (m, &bm) in base.iter().enumerate() {
        // L_m(z) = Π_{l≠m} (z - b_l) / (b_m - b_l), coefficients lowest first.
        let mut poly = vec![C::scalar_from_u16(1)];
        let mut den = C::scalar_from_u16(1);
        for (l, &bl) in base.iter().enumerate() {
            if l == m {
                continue;
            }
            let b = C::scalar_from_u16(bl);
            let mut next = vec![C::zero(); poly.len() + 1];
            for (c, &a) in poly.iter().enumerate() {
                next[c + 1] = next[c + 1] + a;
                next[c] = next[c] - a * b;
            }
            poly = next;
            den = den * (C::scalar_from_u16(bm) - b);
        }
        let inv = C::invert_vartime(&den).ok_or(Error::InvalidParameters("duplicate id"))?;
        let xm = public_shares
            .get(&SignerId::new(bm).ok_or(Error::InvalidParameters("id 0"))?)
            .ok_or(Error::InvalidParameters("missing public share"))?;
        for (acc, a) in commitments.iter_mut().zip(&poly) {
            *acc = *acc + *xm * (*a * inv);
        }
    }
    let ids: BTreeSet<SignerId> = public_shares.keys().copied().collect();
    let set =
        PublicKeySet::from_commitments(threshold, &ids, commitments).map_err(Error::InvalidParameters)?;
    if set.public_shares() != public_shares {
        return Err(Error::InvalidParameters(
            "public shares do not lie on one polynomial of degree k - 1",
        ));
    }
    Ok(set)
}

/// Decodes a message received from `sender`, blaming the sender if it does not decode.
pub fn decode_from<M: dkg::Message>(sender: Party, bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|error| Error::Malformed {
        culprit: sender,
        error,
    })
}

/// `H(transcript("dealing"), i, C_i)`: what a new holder echoes of dealer `i`'s dealing.
fn dealing_hash<C: Curve>(params: &Parameters<C>, dealer: SignerId, commitments: &[C::Point]) -> [u8; 32] {
    let mut w = params.transcript("dealing");
    dealer.encode(&mut w);
    w.u32(commitments.len() as u32);
    for p in commitments {
        w.raw(&C::point_to_bytes(p));
    }
    sha256(w.as_slice())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// `g_i(j)·G == Σ_l j^l·C_il`.
fn sub_share_ok<C: Curve>(commitments: &[C::Point], receiver: SignerId, value: &C::Scalar) -> bool {
    C::mul_base(value) == curve::evaluate_commitment::<C>(commitments, receiver.get())
}

/// A secret scalar (zeroized on drop).
type Secret<C> = Zeroizing<<C as Curve>::Scalar>;
