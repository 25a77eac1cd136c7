//! Distributed key generation for P-256 and Ed25519 keys: no party ever holds the private key.
//!
//! The protocol is Pedersen's verifiable-secret-sharing DKG with Feldman commitments, as analysed by Gennaro,
//! Jarecki, Krawczyk and Rabin ("Secure Distributed Key Generation for Discrete-Log Based Cryptosystems", J.
//! Cryptology 2007) and as used by FROST's KeyGen (Komlo and Goldberg, "FROST", SAC 2020, Figure 1): every party
//! `P_i` deals a random polynomial `f_i` of degree `k-1`, proves knowledge of its constant term `a_i0` with a
//! Schnorr proof `σ_i = (R_i, μ_i)`, publishes the Feldman commitments `C_i = (φ_i0, .., φ_i(k-1))`, `φ_ij =
//! a_ij·G`, and sends `f_i(j)` privately to every `P_j`. The key is `Y = Σ_i φ_i0`, the share of `P_j` is `x_j =
//! Σ_i f_i(j)`.
//!
//! Two additions close the gaps of a DKG run over point-to-point channels without a broadcast channel:
//!
//! - **Commit before reveal** (round 1): each party first broadcasts only a hash `h_i` of `(C_i, σ_i)`, so a rushing
//!   party cannot choose its polynomial after seeing the others' (the key-biasing attack of Gennaro et al.).
//! - **Echo** (round 2): each party echoes the `h_j` it received from everyone; because the round-2 reveal must
//!   hash to the `h_j` echoed by everybody, one echo makes both broadcasts consistent. A sender whose broadcast was
//!   seen in two versions is named ([`Fault::Equivocation`]).
//!
//! Round 3 checks every reveal against its hash commitment, every proof of knowledge, and every private share
//! against the dealer's Feldman commitments, then broadcasts its complaints (naming the culprits) and a hash of
//! the whole public transcript. [`finish`](round4::finish) accepts only if nobody complained and every party
//! confirmed the same transcript; every party checks its own share against the public result.
//!
//! When somebody complained about a private share, the complaint-resolution round of Gennaro et al. settles it
//! ([`resolve`]): the accused dealer reveals the disputed share, everyone checks it against the dealer's Feldman
//! commitments, a dealer that fails or stays silent is disqualified and the key is formed from the qualified
//! dealers, and a complaint answered with a correct share names its accuser ([`Fault::FalseComplaint`]). The
//! answers are echoed like the round-1 commitments, so a dealer that shows different answers to different parties
//! is named ([`Fault::Equivocation`]) before anyone uses the key.
//!
//! | step | function | sends |
//! |---|---|---|
//! | 1 | [`round1::commit`] | [`round1::Broadcast`] `h_i` to all |
//! | 2 | [`round2::reveal`] | [`round2::Broadcast`] (echo, `C_i`, `σ_i`) to all, [`round2::Share`] `f_i(j)` to each `P_j` |
//! | 3 | [`round3::verify`] | [`round3::Broadcast`] (complaints, transcript hash) to all |
//! | 4 | [`round4::finish`] | nothing: the [`KeyShare`] (when nobody complained) |
//! | 3b | [`resolve::answer`] | [`resolve::Broadcast`] (the disputed shares) to all (when somebody complained) |
//! | 4b | [`resolve::finish`] | [`resolve::Confirmation`] (echo of every resolution broadcast) to all |
//! | 5b | [`resolve::confirm`] | nothing: a [`resolve::Resolved`] key share from the qualified dealers (when every echo agrees) |
//!
//! Every step is sans-io: it takes the previous step's state by value (so a state cannot be used twice) and the
//! messages received, keyed by the sender as the authenticated channel reports it. The session id is bound into
//! every hash and proof.
//!
//! ## Thresholds
//!
//! Any `1 <= k <= n` is accepted. FROST Ed25519 signs with any `k`. The honest-majority threshold ECDSA of
//! `tcrypto::ecdsa` multiplies two degree-`(k-1)` sharings, so it needs `n >= 2k - 1` signers online to
//! presign; the `k`-online protocol `tcrypto::ecdsa::dkls` (DKLs23) signs P-256 keys with any `k`.
//!
//! ## Equivocation and complaints without a broadcast channel
//!
//! Without transferable signatures, a mismatch between what `P_m` says it received from `P_j` and what we received
//! from `P_j` proves only that one of the two lies; the complaint names `P_j` (the sender seen in two versions) and
//! records `P_m` as the witness. When `P_j`'s own echo contradicts what it sent us directly, the evidence is
//! first-hand. A round-3 broadcast can still be equivocated (confirm to some, complain to others); callers that
//! need agreement on success should treat the key as usable only once every party has reported a successful
//! [`round4::finish`] (for example by the coordinator collecting the [`PublicKeySet`] hashes).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{SessionId, SignerId};

pub mod curve;
#[cfg(feature = "dealer")]
pub mod dealer;
pub mod resolve;
pub mod round1;
pub mod round2;
pub mod round3;
pub mod round4;

pub use curve::{Curve, Ed25519, P256};

/// Type tags of the DKG encodings (0x30..0x3f).
pub(crate) mod tag {
    pub(crate) const ROUND1_BROADCAST: u8 = 0x30;
    pub(crate) const ROUND2_BROADCAST: u8 = 0x31;
    pub(crate) const ROUND2_SHARE: u8 = 0x32;
    pub(crate) const ROUND3_BROADCAST: u8 = 0x33;
    pub(crate) const KEY_SHARE: u8 = 0x34;
    pub(crate) const PUBLIC_KEY_SET: u8 = 0x35;
    pub(crate) const RESOLVE_BROADCAST: u8 = 0x36;
    pub(crate) const RESOLVE_CONFIRMATION: u8 = 0x37;
}

/// The public parameters every party of a run agrees on before starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameters {
    session: SessionId,
    threshold: u16,
    participants: BTreeSet<SignerId>,
}

impl Parameters {
    /// Parameters of a `threshold`-of-`participants` run with a fresh session id.
    ///
    /// Refuses a threshold of 0 or above the number of participants, an empty or duplicated participant list.
    pub fn new(
        session: SessionId,
        threshold: u16,
        participants: impl IntoIterator<Item = SignerId>,
    ) -> Result<Self, Error> {
        let mut set = BTreeSet::new();
        for id in participants {
            if !set.insert(id) {
                return Err(Error::InvalidParameters("duplicate participant id"));
            }
        }
        if set.is_empty() {
            return Err(Error::InvalidParameters("no participants"));
        }
        if threshold == 0 || usize::from(threshold) > set.len() {
            return Err(Error::InvalidParameters("threshold must be in 1..=n"));
        }
        Ok(Self {
            session,
            threshold,
            participants: set,
        })
    }

    /// The session id bound into every hash and proof of the run.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// `k`: how many shares reconstruct (and sign).
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The ids of the `n` parties.
    pub fn participants(&self) -> &BTreeSet<SignerId> {
        &self.participants
    }

    fn encode_into(&self, w: &mut Writer) {
        w.raw(self.session.as_bytes()).u16(self.threshold);
        w.u32(self.participants.len() as u32);
        for id in &self.participants {
            id.encode(w);
        }
    }

    /// Checks that `received` holds exactly one message from every participant other than `me`.
    fn check_senders<M>(&self, me: SignerId, received: &BTreeMap<SignerId, M>) -> Result<(), Error> {
        if let Some(&culprit) = received
            .keys()
            .find(|id| **id == me || !self.participants.contains(id))
        {
            return Err(Error::UnexpectedSender { culprit });
        }
        let missing: Vec<SignerId> = self
            .participants
            .iter()
            .filter(|id| **id != me && !received.contains_key(id))
            .copied()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingMessages { culprits: missing })
        }
    }
}

/// What a party did wrong, as named in a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Its round-1 broadcast (or its resolution broadcast, [`resolve`]) was seen in two versions (by us and in
    /// someone's echo, or in its own echo), or its echo misreports our own broadcast.
    Equivocation,
    /// Its round-2 reveal `(C_i, σ_i)` does not hash to its round-1 commitment `h_i`.
    WrongCommitment,
    /// Its proof of knowledge `σ_i` of the constant term does not verify.
    InvalidProof,
    /// The private share `f_i(j)` it sent does not match its Feldman commitments.
    InvalidShare,
    /// Its message is well-formed but does not fit the run (wrong number of commitments, incomplete echo).
    Malformed,
    /// It confirmed a different transcript than ours in round 3.
    InconsistentTranscript,
    /// Accused of sending a wrong share, it did not reveal that share in the resolution round
    /// ([`resolve`]); it is disqualified.
    NoAnswer,
    /// It complained about a share that the dealer then revealed and that matches the dealer's commitments.
    FalseComplaint,
}

impl Fault {
    fn code(self) -> u8 {
        match self {
            Fault::Equivocation => 1,
            Fault::WrongCommitment => 2,
            Fault::InvalidProof => 3,
            Fault::InvalidShare => 4,
            Fault::Malformed => 5,
            Fault::InconsistentTranscript => 6,
            Fault::NoAnswer => 7,
            Fault::FalseComplaint => 8,
        }
    }

    fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            1 => Fault::Equivocation,
            2 => Fault::WrongCommitment,
            3 => Fault::InvalidProof,
            4 => Fault::InvalidShare,
            5 => Fault::Malformed,
            6 => Fault::InconsistentTranscript,
            7 => Fault::NoAnswer,
            8 => Fault::FalseComplaint,
            _ => return Err(DecodeError::Invalid("unknown DKG fault code")),
        })
    }
}

/// One complaint: `accuser` says `accused` committed `fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Complaint {
    /// Who complained (the sender of the round-3 broadcast, or ourselves).
    pub accuser: SignerId,
    /// Who is blamed.
    pub accused: SignerId,
    /// What for.
    pub fault: Fault,
}

/// Why a DKG step failed. Variants that blame other parties name them; [`Error::culprits`] lists them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller asked for something impossible (caller misuse).
    #[error("invalid DKG parameters: {0}")]
    InvalidParameters(&'static str),
    /// A message came from an id that is not another participant of the run.
    #[error("message from unexpected sender {culprit}")]
    UnexpectedSender {
        /// The sender, as the channel reported it.
        culprit: SignerId,
    },
    /// A participant sent the same round's message twice.
    #[error("duplicate message from {culprit}")]
    DuplicateSender {
        /// The sender.
        culprit: SignerId,
    },
    /// Participants did not send this round's message.
    #[error("missing messages from {culprits:?}")]
    MissingMessages {
        /// Who is missing.
        culprits: Vec<SignerId>,
    },
    /// A participant's message could not be decoded.
    #[error("malformed message from {culprit}: {error}")]
    Malformed {
        /// The sender.
        culprit: SignerId,
        /// Why decoding failed.
        error: DecodeError,
    },
    /// Complaints were raised (by us or others); the run must be repeated without the accused.
    #[error("DKG aborted; accused: {culprits:?}")]
    Complaints {
        /// Every accused party.
        culprits: BTreeSet<SignerId>,
        /// The complaints, with accuser and fault.
        complaints: Vec<Complaint>,
    },
    /// The result failed our own final check (the group key or a public share is the identity, or our share does
    /// not match the public result). Only happens with negligible probability or through a bug.
    #[error("DKG result check failed: {0}")]
    InvalidResult(&'static str),
}

impl Error {
    /// The parties this error blames (empty for caller misuse).
    pub fn culprits(&self) -> Vec<SignerId> {
        match self {
            Error::UnexpectedSender { culprit }
            | Error::DuplicateSender { culprit }
            | Error::Malformed { culprit, .. } => vec![*culprit],
            Error::MissingMessages { culprits } => culprits.clone(),
            Error::Complaints { culprits, .. } => culprits.iter().copied().collect(),
            Error::InvalidParameters(_) | Error::InvalidResult(_) => Vec::new(),
        }
    }
}

/// Collects a round's messages into the map a step takes, refusing a second message from the same sender.
pub fn collect<M>(messages: impl IntoIterator<Item = (SignerId, M)>) -> Result<BTreeMap<SignerId, M>, Error> {
    let mut map = BTreeMap::new();
    for (sender, msg) in messages {
        if map.insert(sender, msg).is_some() {
            return Err(Error::DuplicateSender { culprit: sender });
        }
    }
    Ok(map)
}

/// A DKG message with a strict encoding.
pub trait Message: Sized {
    /// The encoding (version byte, tag, curve code, fields).
    fn encode(&self) -> Vec<u8>;
    /// Strict decoding: never panics, refuses non-canonical scalars and points and the identity.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Decodes a message received from `sender`, blaming the sender if it does not decode.
pub fn decode_from<M: Message>(sender: SignerId, bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|error| Error::Malformed {
        culprit: sender,
        error,
    })
}

/// A Schnorr proof of knowledge of the constant term `a_i0` of a dealer's polynomial: `σ_i = (R_i, μ_i)` with
/// `R_i = r·G`, `c_i = H(session, i, φ_i0, R_i)`, `μ_i = r + a_i0·c_i` (FROST KeyGen round 1, step 2).
#[derive(Clone, Copy, PartialEq)]
pub struct Proof<C: Curve> {
    /// `R_i`, the commitment of the proof.
    pub r: C::Point,
    /// `μ_i`, the response.
    pub mu: C::Scalar,
}

impl<C: Curve> fmt::Debug for Proof<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proof")
            .field("r", &hex_point::<C>(&self.r))
            .field("mu", &hex_bytes(&C::scalar_to_bytes(&self.mu)))
            .finish()
    }
}

impl<C: Curve> Proof<C> {
    fn prove(
        params: &Parameters,
        me: SignerId,
        secret: &C::Scalar,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Self {
        let k = Zeroizing::new(C::random_nonzero_scalar(rng));
        let r = C::mul_base(&k);
        let c = pok_challenge::<C>(params, me, &C::mul_base(secret), &r);
        Self {
            r,
            mu: *k + *secret * c,
        }
    }

    /// `μ_i·G == R_i + c_i·φ_i0`.
    fn verify(&self, params: &Parameters, sender: SignerId, constant: &C::Point) -> bool {
        let c = pok_challenge::<C>(params, sender, constant, &self.r);
        C::mul_base(&self.mu) == self.r + *constant * c
    }
}

/// The public result of a run: the group key `Y`, the summed Feldman commitments `(Σ_i φ_i0, .., Σ_i φ_i(k-1))`
/// and the public share `Y_j = x_j·G` of every party.
#[derive(Clone, PartialEq)]
pub struct PublicKeySet<C: Curve> {
    threshold: u16,
    commitments: Vec<C::Point>,
    public_shares: BTreeMap<SignerId, C::Point>,
}

impl<C: Curve> fmt::Debug for PublicKeySet<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("curve", &C::NAME)
            .field("threshold", &self.threshold)
            .field("public_key", &hex_point::<C>(&self.public_key()))
            .field("parties", &self.public_shares.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: Curve> PublicKeySet<C> {
    /// Builds a public key set from Feldman commitments `(φ_0, .., φ_{k-1})` (for key import or known-answer
    /// tests), refusing an identity group key or public share and a vector whose length is not the threshold.
    pub fn new(
        threshold: u16,
        participants: &BTreeSet<SignerId>,
        commitments: Vec<C::Point>,
    ) -> Result<Self, Error> {
        Self::from_commitments(threshold, participants, commitments).map_err(Error::InvalidParameters)
    }

    /// Builds the public key set from the summed Feldman commitments, refusing an identity group key or public
    /// share and a commitment vector whose length is not the threshold.
    pub(crate) fn from_commitments(
        threshold: u16,
        participants: &BTreeSet<SignerId>,
        commitments: Vec<C::Point>,
    ) -> Result<Self, &'static str> {
        if threshold == 0
            || commitments.len() != usize::from(threshold)
            || participants.len() < commitments.len()
        {
            return Err("commitment vector length is not the threshold");
        }
        let identity = C::identity();
        if commitments[0] == identity {
            return Err("group public key is the identity");
        }
        let mut public_shares = BTreeMap::new();
        for id in participants {
            let y = curve::evaluate_commitment::<C>(&commitments, id.get());
            if y == identity {
                return Err("a public share is the identity");
            }
            public_shares.insert(*id, y);
        }
        Ok(Self {
            threshold,
            commitments,
            public_shares,
        })
    }

    /// `k`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// `n`.
    pub fn parties(&self) -> u16 {
        self.public_shares.len() as u16
    }

    /// The group public key `Y = φ_0`.
    pub fn public_key(&self) -> C::Point {
        self.commitments[0]
    }

    /// The encoded group public key (SEC1 compressed for P-256, RFC 8032 for Ed25519).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        C::point_to_bytes(&self.public_key())
    }

    /// The summed Feldman commitments `(φ_0, .., φ_{k-1})`.
    pub fn commitments(&self) -> &[C::Point] {
        &self.commitments
    }

    /// The public share `Y_j = x_j·G` of every party.
    pub fn public_shares(&self) -> &BTreeMap<SignerId, C::Point> {
        &self.public_shares
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.u16(self.threshold);
        w.u32(self.public_shares.len() as u32);
        for id in self.public_shares.keys() {
            id.encode(w);
        }
        for p in &self.commitments {
            w.raw(&C::point_to_bytes(p));
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let threshold = r.u16()?;
        let participants = SignerId::decode_set(r)?;
        if threshold == 0 || usize::from(threshold) > participants.len() {
            return Err(DecodeError::Invalid("threshold not in 1..=n"));
        }
        let mut commitments = Vec::with_capacity(usize::from(threshold));
        for _ in 0..threshold {
            commitments.push(read_point::<C>(r)?);
        }
        Self::from_commitments(threshold, &participants, commitments).map_err(DecodeError::Invalid)
    }

    /// Strict encoding (tag 0x35).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::PUBLIC_KEY_SET);
        w.u8(C::CODE);
        self.encode_body(&mut w);
        w.finish()
    }

    /// Strict decoding; recomputes and checks every public share.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::PUBLIC_KEY_SET)?;
        read_curve::<C>(&mut r)?;
        let set = Self::decode_body(&mut r)?;
        r.finish()?;
        Ok(set)
    }
}

/// One party's result of a run (or of the trusted dealer): its id, its secret share `x_i` and the public key set.
/// The secret zeroizes on drop and is never printed.
pub struct KeyShare<C: Curve> {
    id: SignerId,
    secret: Zeroizing<C::Scalar>,
    public: PublicKeySet<C>,
}

impl<C: Curve> fmt::Debug for KeyShare<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("public", &self.public)
            .finish()
    }
}

impl<C: Curve> KeyShare<C> {
    /// A key share from its parts (key import): refuses a secret that does not match the party's public share.
    pub fn from_parts(id: SignerId, secret: C::Scalar, public: PublicKeySet<C>) -> Result<Self, Error> {
        Self::new(id, secret, public).map_err(Error::InvalidParameters)
    }

    /// Checks `x_i·G == Y_i` and wraps.
    pub(crate) fn new(
        id: SignerId,
        secret: C::Scalar,
        public: PublicKeySet<C>,
    ) -> Result<Self, &'static str> {
        let secret = Zeroizing::new(secret);
        match public.public_shares.get(&id) {
            Some(y) if *y == C::mul_base(&secret) => Ok(Self { id, secret, public }),
            Some(_) => Err("secret share does not match the public share"),
            None => Err("id is not a participant"),
        }
    }

    /// This party's id.
    pub fn id(&self) -> SignerId {
        self.id
    }

    /// `k`.
    pub fn threshold(&self) -> u16 {
        self.public.threshold
    }

    /// The public result of the run.
    pub fn public(&self) -> &PublicKeySet<C> {
        &self.public
    }

    /// The group public key `Y`.
    pub fn public_key(&self) -> C::Point {
        self.public.public_key()
    }

    /// The secret share `x_i` (handle with care: it is the party's long-term secret).
    pub fn secret(&self) -> &C::Scalar {
        &self.secret
    }

    /// Strict encoding (tag 0x34): id, public key set, then the 32-byte secret.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(tag::KEY_SHARE);
        w.u8(C::CODE);
        self.id.encode(&mut w);
        self.public.encode_body(&mut w);
        let mut secret = C::scalar_to_bytes(&self.secret);
        w.raw(&secret);
        zeroize::Zeroize::zeroize(&mut secret);
        Zeroizing::new(w.finish())
    }

    /// Strict decoding; checks that the secret matches the party's public share.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::KEY_SHARE)?;
        read_curve::<C>(&mut r)?;
        let id = SignerId::decode(&mut r)?;
        let public = PublicKeySet::decode_body(&mut r)?;
        let secret = Zeroizing::new(read_scalar::<C>(&mut r)?);
        r.finish()?;
        Self::new(id, *secret, public).map_err(DecodeError::Invalid)
    }
}

impl KeyShare<P256> {
    /// Converts a P-256 result into a threshold ECDSA key share (`tcrypto::ecdsa`), which checks its own
    /// requirements: ids exactly `1..=n` (any `1 <= k <= n`; presigning additionally needs `n >= 2k - 1`, the
    /// `k`-online protocol `tcrypto::ecdsa::dkls` does not).
    pub fn to_ecdsa(&self) -> Result<crate::ecdsa::KeyShare, crate::ecdsa::Error> {
        crate::ecdsa::KeyShare::new(
            self.id,
            self.public.threshold,
            self.public.parties(),
            *self.secret,
            self.public_key(),
            self.public.public_shares.clone(),
        )
    }
}

impl TryFrom<KeyShare<P256>> for crate::ecdsa::KeyShare {
    type Error = crate::ecdsa::Error;
    fn try_from(share: KeyShare<P256>) -> Result<Self, Self::Error> {
        share.to_ecdsa()
    }
}

/// Runs every party of a DKG in this process, in order, and returns every party's share (for examples,
/// benchmarks, tests and single-host demos: a deployment runs one party per node, over `tcrypto-net`).
pub fn run_in_process<C: Curve>(
    params: &Parameters,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<KeyShare<C>>, Error> {
    let others = |me: SignerId| params.participants.iter().copied().filter(move |id| *id != me);
    let mut states1 = BTreeMap::new();
    let mut b1 = BTreeMap::new();
    for &id in &params.participants {
        let (state, b) = round1::commit::<C>(params.clone(), id, rng)?;
        states1.insert(id, state);
        b1.insert(id, b);
    }
    let mut states2 = BTreeMap::new();
    let mut b2 = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for (id, state) in states1 {
        let inbox = others(id)
            .filter_map(|j| b1.get(&j).map(|b| (j, b.clone())))
            .collect();
        let (state, b, shares) = round2::reveal(state, &inbox)?;
        states2.insert(id, state);
        b2.insert(id, b);
        sent.insert(id, shares);
    }
    let mut states3 = BTreeMap::new();
    let mut b3 = BTreeMap::new();
    for (id, state) in states2 {
        let inbox = others(id)
            .filter_map(|j| b2.get(&j).map(|b| (j, b.clone())))
            .collect();
        let shares = others(id)
            .filter_map(|j| sent.get_mut(&j).and_then(|m| m.remove(&id)).map(|s| (j, s)))
            .collect();
        let (state, b) = round3::verify(state, &inbox, shares)?;
        states3.insert(id, state);
        b3.insert(id, b);
    }
    states3
        .into_iter()
        .map(|(id, state)| {
            let inbox = others(id)
                .filter_map(|j| b3.get(&j).map(|b| (j, b.clone())))
                .collect();
            round4::finish(state, &inbox)
        })
        .collect()
}

// ----- hashing: every hash is domain-separated by protocol, curve, purpose and session -----

fn transcript<C: Curve>(label: &'static str, params: &Parameters) -> Writer {
    let mut w = Writer::bare();
    w.bytes(b"tcrypto/dkg/v1")
        .bytes(C::NAME.as_bytes())
        .bytes(label.as_bytes());
    params.encode_into(&mut w);
    w
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut out = [0u8; 32];
    out.copy_from_slice(&sha2::Sha256::digest(data));
    out
}

/// `c_i = H(session, params, i, φ_i0, R_i)`.
fn pok_challenge<C: Curve>(
    params: &Parameters,
    sender: SignerId,
    constant: &C::Point,
    r: &C::Point,
) -> C::Scalar {
    let mut w = transcript::<C>("proof of knowledge", params);
    sender.encode(&mut w);
    w.raw(&C::point_to_bytes(constant)).raw(&C::point_to_bytes(r));
    C::hash_to_scalar(w.as_slice())
}

/// `h_i = H(session, params, i, C_i, σ_i)`: the round-1 hash commitment to the round-2 reveal.
fn reveal_commitment<C: Curve>(
    params: &Parameters,
    sender: SignerId,
    commitments: &[C::Point],
    proof: &Proof<C>,
) -> [u8; 32] {
    let mut w = transcript::<C>("reveal commitment", params);
    sender.encode(&mut w);
    w.u32(commitments.len() as u32);
    for p in commitments {
        w.raw(&C::point_to_bytes(p));
    }
    w.raw(&C::point_to_bytes(&proof.r))
        .raw(&C::scalar_to_bytes(&proof.mu));
    sha256(w.as_slice())
}

// ----- encoding helpers -----

fn read_curve<C: Curve>(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    if r.u8()? == C::CODE {
        Ok(())
    } else {
        Err(DecodeError::Invalid("message is for another curve"))
    }
}

pub(crate) fn read_point<C: Curve>(r: &mut Reader<'_>) -> Result<C::Point, DecodeError> {
    let bytes = r.raw(C::POINT_LEN)?;
    C::point_from_bytes(bytes).ok_or(DecodeError::Invalid(
        "point not canonical, not in the prime-order group, or the identity",
    ))
}

pub(crate) fn read_scalar<C: Curve>(r: &mut Reader<'_>) -> Result<C::Scalar, DecodeError> {
    let mut bytes = r.array::<32>()?;
    let s = C::scalar_from_bytes(&bytes).ok_or(DecodeError::Invalid("scalar not canonical"));
    zeroize::Zeroize::zeroize(&mut bytes);
    s
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_point<C: Curve>(p: &C::Point) -> String {
    hex_bytes(&C::point_to_bytes(p))
}

#[cfg(test)]
mod tests;
