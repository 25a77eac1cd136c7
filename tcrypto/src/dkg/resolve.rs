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
//! The answers are a broadcast over point-to-point channels, so they are echoed like the round-1 commitments: a
//! dealer that answered some parties and not others (or differently) would otherwise leave them with different
//! qualified sets. [`finish`] judges the answers it received and sends a [`Confirmation`]: a hash of every other
//! party's resolution broadcast as received (or of its absence), bound to the session and to the round-3
//! transcript. [`confirm`] compares everybody's echo with its own and yields the key share only when they all
//! agree. A dealer whose answers were seen in two versions is named ([`Fault::Equivocation`], the echoing party
//! recorded as the witness), and a party whose echo misreports our own broadcast is named as the liar, by the
//! rule of round 3 (see [the module notes](super#equivocation-and-complaints-without-a-broadcast-channel)).
//!
//! | step | function | sends |
//! |---|---|---|
//! | 3b | [`answer`] | [`Broadcast`] `f_i(j)` for every `P_j` that complained about `P_i` (often empty) to all |
//! | 4b | [`finish`] | [`Confirmation`] (echo of every resolution broadcast received) to all |
//! | 5b | [`confirm`] | nothing: a [`Resolved`] key share and the culprits, once every echo agrees |
//!
//! A run without complaints may skip this round ([`round3::State::needs_resolution`] says whether it is needed);
//! running it anyway gives the same key as [`round4::finish`](super::round4::finish).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::{
    Complaint, Curve, Error, Fault, KeyShare, Message, Parameters, PublicKeySet, curve, read_curve,
    read_scalar, round3, tag, transcript,
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

/// The resolution confirmation of `P_i`: its echo of every other party's resolution broadcast.
#[derive(Clone, PartialEq, Eq)]
pub struct Confirmation<C: Curve> {
    /// For every other participant `P_j`: `H(session, params, round-3 transcript hash, j, B_j)` of the resolution
    /// broadcast `B_j` as `P_i` received it (or of its absence, when `P_j` sent none).
    pub echo: BTreeMap<SignerId, [u8; 32]>,
    _curve: core::marker::PhantomData<C>,
}

impl<C: Curve> Confirmation<C> {
    /// Builds a confirmation.
    pub fn new(echo: BTreeMap<SignerId, [u8; 32]>) -> Self {
        Self {
            echo,
            _curve: core::marker::PhantomData,
        }
    }
}

impl<C: Curve> fmt::Debug for Confirmation<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let echo: BTreeMap<_, _> = self.echo.iter().map(|(j, h)| (j, super::hex_bytes(h))).collect();
        f.debug_struct("resolve::Confirmation")
            .field("echo", &echo)
            .finish()
    }
}

impl<C: Curve> Message for Confirmation<C> {
    /// Tag 0x37, curve code, echo (count, strictly increasing `(id, 32-byte hash)`).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESOLVE_CONFIRMATION);
        w.u8(C::CODE);
        w.u32(self.echo.len() as u32);
        for (id, h) in &self.echo {
            id.encode(&mut w);
            w.raw(h);
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESOLVE_CONFIRMATION)?;
        read_curve::<C>(&mut r)?;
        let echo = SignerId::decode_map(&mut r, 32, |r| r.array::<32>())?;
        r.finish()?;
        Ok(Self::new(echo))
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

/// What `P_i` keeps between [`finish`] and [`confirm`]: its verdict on the answers (the key share, or why the run
/// fails) and its own echo, including the hash of its own broadcast.
pub struct ConfirmState<C: Curve> {
    params: Parameters,
    me: SignerId,
    echo: BTreeMap<SignerId, [u8; 32]>,
    outcome: Result<Resolved<C>, Error>,
}

impl<C: Curve> fmt::Debug for ConfirmState<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("resolve::ConfirmState")
            .field("me", &self.me)
            .field("outcome", &"<redacted>")
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
/// absent), judges every complaint, and returns the verdict (kept until [`confirm`]) and our [`Confirmation`],
/// to be sent to all.
///
/// Fails with [`Error::UnexpectedSender`] for a message from a non-participant or from ourselves. When fewer
/// than `k` dealers remain qualified, [`confirm`] reports it once the echoes agree.
pub fn finish<C: Curve>(
    state: State<C>,
    answers: &BTreeMap<SignerId, Broadcast<C>>,
) -> Result<(ConfirmState<C>, Confirmation<C>), Error> {
    let me = state.inner.me;
    if let Some(&culprit) = answers
        .keys()
        .find(|id| **id == me || !state.inner.params.participants.contains(id))
    {
        return Err(Error::UnexpectedSender { culprit });
    }
    let echo: BTreeMap<SignerId, [u8; 32]> = state
        .inner
        .params
        .participants
        .iter()
        .map(|&j| {
            let seen = if j == me {
                Some(&state.own)
            } else {
                answers.get(&j)
            };
            (j, echo_hash(&state.inner, j, seen))
        })
        .collect();
    let mut others = echo.clone();
    others.remove(&me);
    let params = state.inner.params.clone();
    let outcome = judge(state, answers);
    Ok((
        ConfirmState {
            params,
            me,
            echo,
            outcome,
        },
        Confirmation::new(others),
    ))
}

/// Step 5b: takes every other participant's [`Confirmation`] (keyed by sender) and yields the key share once
/// every echo agrees with ours.
///
/// Fails with [`Error::Complaints`] when an echo differs: naming the dealer whose resolution broadcast was seen
/// in two versions ([`Fault::Equivocation`], the echoing party as the witness), or the echoing party when it
/// misreports our own broadcast ([`Fault::Equivocation`]) or does not echo exactly the other participants
/// ([`Fault::Malformed`]). Otherwise returns the verdict of [`finish`]: the key share, or [`Error::Complaints`]
/// when fewer than `k` dealers remain qualified (then at least one of the qualified ones might not be honest, and
/// nobody should use the key).
pub fn confirm<C: Curve>(
    state: ConfirmState<C>,
    confirmations: &BTreeMap<SignerId, Confirmation<C>>,
) -> Result<Resolved<C>, Error> {
    let ConfirmState {
        params,
        me,
        echo,
        outcome,
    } = state;
    params.check_senders(me, confirmations)?;
    let mut complaints = Vec::new();
    for (&m, c) in confirmations {
        if !c.echo.keys().eq(params.participants.iter().filter(|j| **j != m)) {
            complaints.push(Complaint {
                accuser: me,
                accused: m,
                fault: Fault::Malformed,
            });
            continue;
        }
        for (&j, h) in &c.echo {
            if echo.get(&j) != Some(h) {
                // P_m misreports our own broadcast: P_m lies. Otherwise P_j was seen in two versions.
                let (accuser, accused) = if j == me { (me, m) } else { (m, j) };
                complaints.push(Complaint {
                    accuser,
                    accused,
                    fault: Fault::Equivocation,
                });
            }
        }
    }
    if !complaints.is_empty() {
        return Err(super::round4::complaints_error(complaints));
    }
    outcome
}

/// `H(session, params, round-3 transcript hash, j, B_j)`, with a distinct value for "nothing received".
fn echo_hash<C: Curve>(inner: &round3::State<C>, sender: SignerId, seen: Option<&Broadcast<C>>) -> [u8; 32] {
    let mut w = transcript::<C>("resolution echo", &inner.params);
    w.raw(&inner.confirmation);
    sender.encode(&mut w);
    match seen {
        Some(b) => {
            w.u8(1).bytes(&b.encode());
        }
        None => {
            w.u8(0);
        }
    }
    super::sha256(w.as_slice())
}

/// Judges every complaint against the answers and forms the key from the qualified dealers.
fn judge<C: Curve>(
    state: State<C>,
    answers: &BTreeMap<SignerId, Broadcast<C>>,
) -> Result<Resolved<C>, Error> {
    let State {
        inner,
        complaints,
        own,
    } = state;
    let me = inner.me;
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
