//! DKG complaint resolution (after round 3): an accused dealer answers each complaint about a private share by
//! revealing that share publicly; everyone checks it against the dealer's Feldman commitments; a dealer whose
//! answer is wrong or missing is disqualified and the key is formed from the qualified dealers only; a complaint
//! answered with a correct share was false and names its accuser.
//!
//! This is the complaint step of Pedersen's joint-Feldman DKG as analysed by Gennaro, Jarecki, Krawczyk and Rabin
//! ("Secure Distributed Key Generation for Discrete-Log Based Cryptosystems", J. Cryptology 2007): a receiver
//! whose share fails the Feldman check broadcasts a complaint against the dealer, the dealer broadcasts the
//! disputed share, every party marks as disqualified a dealer whose answer does not satisfy the check, and the set
//! `QUAL` of the others defines the key `Y = Σ_{i∈QUAL} φ_i0` and the shares `x_j = Σ_{i∈QUAL} f_i(j)`.
//!
//! Only complaints about private shares ([`Fault::InvalidShare`]) can be answered this way. A fault in a broadcast
//! (equivocation, a reveal that does not open its commitment, a bad proof, a malformed message, a differing
//! confirmation) is seen in the transcript itself; [`answer`] refuses to resolve it and the run aborts with
//! [`Error::Complaints`], as [`round4::finish`](super::round4::finish) does.
//!
//! | step | function | sends |
//! |---|---|---|
//! | 3b | [`answer`] | [`Broadcast`] `f_i(j)` for every `P_j` that complained about `P_i` (often empty) to all |
//! | 4b | [`finish`] | nothing: a [`Resolved`] key share and the culprits |
//!
//! A run without complaints may skip this round ([`round3::State::needs_resolution`] says whether it is needed);
//! running it anyway gives the same key as [`round4::finish`](super::round4::finish).
//!
//! The answers travel as an ordinary broadcast without an echo, so a dealer could answer some parties and not
//! others, leaving them with different qualified sets; as for round 3, a caller that needs agreement must compare
//! the parties' [`PublicKeySet`]s (or [`Resolved::qualified`]) before using the key.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::{
    Complaint, Curve, Error, Fault, KeyShare, Message, PublicKeySet, curve, read_curve, read_scalar, round3,
    tag,
};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// The resolution broadcast of `P_i`: for every `P_j` that complained about the share `P_i` sent it, the share
/// `f_i(j)` itself (public from now on). Empty when nobody complained about `P_i`.
#[derive(Clone, PartialEq)]
pub struct Broadcast<C: Curve> {
    /// `f_i(j)`, keyed by the accuser `j`.
    pub answers: BTreeMap<SignerId, C::Scalar>,
}

impl<C: Curve> fmt::Debug for Broadcast<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("resolve::Broadcast")
            .field("answered", &self.answers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: Curve> Message for Broadcast<C> {
    /// Tag 0x36, curve code, answers (count, strictly increasing `(accuser id, 32-byte scalar)`).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESOLVE_BROADCAST);
        w.u8(C::CODE);
        w.u32(self.answers.len() as u32);
        for (id, s) in &self.answers {
            id.encode(&mut w);
            w.raw(&C::scalar_to_bytes(s));
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESOLVE_BROADCAST)?;
        read_curve::<C>(&mut r)?;
        let answers = SignerId::decode_map(&mut r, 32, read_scalar::<C>)?;
        r.finish()?;
        Ok(Self { answers })
    }
}

/// What `P_i` keeps between [`answer`] and [`finish`].
pub struct State<C: Curve> {
    inner: round3::State<C>,
    /// Every share complaint of the run (ours and everybody's), by accused dealer then accuser.
    complaints: BTreeMap<SignerId, BTreeSet<SignerId>>,
    own: Broadcast<C>,
}

impl<C: Curve> fmt::Debug for State<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("resolve::State")
            .field("me", &self.inner.me)
            .field("complaints", &self.complaints)
            .finish_non_exhaustive()
    }
}

/// The outcome of a resolved run.
pub struct Resolved<C: Curve> {
    /// This party's key share, formed from the qualified dealers.
    pub share: KeyShare<C>,
    /// `QUAL`: the dealers whose polynomials make up the key.
    pub qualified: BTreeSet<SignerId>,
    /// Who misbehaved: a disqualified dealer ([`Fault::InvalidShare`] when its answer failed the check,
    /// [`Fault::NoAnswer`] when it gave none, [`Fault::Malformed`] when it answered nobody's complaint) or a false
    /// accuser ([`Fault::FalseComplaint`]).
    pub culprits: BTreeMap<SignerId, Fault>,
}

impl<C: Curve> fmt::Debug for Resolved<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("share", &self.share)
            .field("qualified", &self.qualified)
            .field("culprits", &self.culprits)
            .finish()
    }
}

impl<C: Curve> round3::State<C> {
    /// Whether the complaint-resolution round must run: somebody (we included) complained in round 3.
    pub fn needs_resolution(&self, broadcasts: &BTreeMap<SignerId, round3::Broadcast<C>>) -> bool {
        !self.complaints.is_empty() || broadcasts.values().any(|b| !b.complaints.is_empty())
    }
}

/// Step 3b: takes every other participant's round-3 broadcast (keyed by sender) and answers the complaints about
/// our own dealing by revealing the disputed shares.
///
/// Fails with [`Error::Complaints`] if a complaint is about something other than a private share, if a party
/// accused itself or a non-participant, or if a party confirmed a different transcript (these cannot be answered).
pub fn answer<C: Curve>(
    state: round3::State<C>,
    broadcasts: &BTreeMap<SignerId, round3::Broadcast<C>>,
) -> Result<(State<C>, Broadcast<C>), Error> {
    state.params.check_senders(state.me, broadcasts)?;
    let all = super::round4::gather_complaints(&state, broadcasts);
    let unanswerable: Vec<Complaint> = all
        .iter()
        .filter(|c| c.fault != Fault::InvalidShare)
        .copied()
        .collect();
    let mut fatal = unanswerable;
    fatal.extend(super::round4::transcript_mismatches(&state, broadcasts));
    if !fatal.is_empty() {
        return Err(super::round4::complaints_error(fatal));
    }
    let mut complaints: BTreeMap<SignerId, BTreeSet<SignerId>> = BTreeMap::new();
    for c in &all {
        complaints.entry(c.accused).or_default().insert(c.accuser);
    }
    let answers = complaints
        .get(&state.me)
        .into_iter()
        .flatten()
        .filter_map(|j| state.sent.get(j).map(|s| (*j, **s)))
        .collect();
    let own = Broadcast { answers };
    Ok((
        State {
            inner: state,
            complaints,
            own: own.clone(),
        },
        own,
    ))
}

/// Step 4b: takes the resolution broadcasts that arrived (keyed by sender; a dealer that stays silent is simply
/// absent), judges every complaint and forms the key from the qualified dealers.
///
/// Fails with [`Error::UnexpectedSender`] for a message from a non-participant or from ourselves, and with
/// [`Error::Complaints`] when fewer than `k` dealers remain qualified (then at least one of the qualified ones
/// might not be honest, and nobody should use the key).
pub fn finish<C: Curve>(
    state: State<C>,
    answers: &BTreeMap<SignerId, Broadcast<C>>,
) -> Result<Resolved<C>, Error> {
    let State {
        inner,
        complaints,
        own,
    } = state;
    let me = inner.me;
    if let Some(&culprit) = answers
        .keys()
        .find(|id| **id == me || !inner.params.participants.contains(id))
    {
        return Err(Error::UnexpectedSender { culprit });
    }
    let mut culprits: BTreeMap<SignerId, Fault> = BTreeMap::new();
    let mut disqualified: BTreeSet<SignerId> = BTreeSet::new();
    let mut received = inner.received;
    for (&dealer, accusers) in &complaints {
        let response = if dealer == me {
            Some(&own)
        } else {
            answers.get(&dealer)
        };
        let Some(response) = response else {
            disqualified.insert(dealer);
            culprits.insert(dealer, Fault::NoAnswer);
            continue;
        };
        if response.answers.keys().any(|j| !accusers.contains(j)) {
            // Revealing a share nobody asked for is not part of the protocol.
            disqualified.insert(dealer);
            culprits.insert(dealer, Fault::Malformed);
            continue;
        }
        let commitments = &inner.dealings[&dealer];
        for &accuser in accusers {
            match response.answers.get(&accuser) {
                None => {
                    disqualified.insert(dealer);
                    culprits.entry(dealer).or_insert(Fault::NoAnswer);
                }
                Some(s) if C::mul_base(s) == curve::evaluate_commitment::<C>(commitments, accuser.get()) => {
                    // A correct share: the complaint was false. The accuser uses the share now made public.
                    culprits.entry(accuser).or_insert(Fault::FalseComplaint);
                    if accuser == me {
                        received.insert(dealer, Zeroizing::new(*s));
                    }
                }
                Some(_) => {
                    disqualified.insert(dealer);
                    culprits.insert(dealer, Fault::InvalidShare);
                }
            }
        }
    }
    for (&dealer, b) in answers {
        if !complaints.contains_key(&dealer) && !b.answers.is_empty() {
            // Answers without a complaint reveal shares for nothing; the dealing itself stands.
            culprits.entry(dealer).or_insert(Fault::Malformed);
        }
    }
    let qualified: BTreeSet<SignerId> = inner
        .params
        .participants
        .iter()
        .filter(|id| !disqualified.contains(id))
        .copied()
        .collect();
    if qualified.len() < usize::from(inner.params.threshold) {
        let complaints = culprits
            .iter()
            .map(|(&accused, &fault)| Complaint {
                accuser: me,
                accused,
                fault,
            })
            .collect();
        return Err(super::round4::complaints_error(complaints));
    }
    let mut secret = Zeroizing::new(C::zero());
    let mut group: Vec<C::Point> = vec![C::identity(); usize::from(inner.params.threshold)];
    for dealer in &qualified {
        // Our own share from a dealer we did not complain about passed the Feldman check in round 3.
        let share = received
            .get(dealer)
            .ok_or(Error::InvalidResult("missing share of a qualified dealer"))?;
        *secret = *secret + **share;
        for (acc, p) in group.iter_mut().zip(&inner.dealings[dealer]) {
            *acc = *acc + *p;
        }
    }
    let public = PublicKeySet::from_commitments(inner.params.threshold, &inner.params.participants, group)
        .map_err(Error::InvalidResult)?;
    let share = KeyShare::new(me, *secret, public).map_err(Error::InvalidResult)?;
    Ok(Resolved {
        share,
        qualified,
        culprits,
    })
}
