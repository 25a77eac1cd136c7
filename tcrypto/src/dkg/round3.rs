//! DKG round 3: check everything received, then broadcast complaints and a hash of the public transcript.
//!
//! FROST KeyGen round 1 step 5 (verify every `σ_j`) and round 2 step 2 (verify every share against `C_j`:
//! `f_j(i)·G == Σ_l i^l·φ_jl`), plus the checks of our two additions: every echo must agree with what we received
//! in round 1, and every reveal must hash to its round-1 commitment. Faults become complaints naming the culprit;
//! without complaints the party computes its share `x_i = Σ_j f_j(i)` and the group commitments `Σ_j C_j`.

use core::fmt;
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{
    Complaint, Curve, Error, Fault, Message, Parameters, curve, read_curve, reveal_commitment, round2, tag,
    transcript,
};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// The round-3 broadcast of `P_i`.
#[derive(Clone, PartialEq, Eq)]
pub struct Broadcast<C: Curve> {
    /// `P_i`'s complaints: accused party and fault. Empty when all is well.
    pub complaints: BTreeMap<SignerId, Fault>,
    /// `H(session, params, (j, h_j, C_j, σ_j) for every j)`: the public transcript `P_i` accepts (all zero when
    /// it complains about a broadcast; a complaint about a private share alone leaves the transcript confirmed).
    pub confirmation: [u8; 32],
    _curve: core::marker::PhantomData<C>,
}

impl<C: Curve> fmt::Debug for Broadcast<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("round3::Broadcast")
            .field("complaints", &self.complaints)
            .field("confirmation", &super::hex_bytes(&self.confirmation))
            .finish()
    }
}

impl<C: Curve> Broadcast<C> {
    /// Builds a broadcast.
    pub fn new(complaints: BTreeMap<SignerId, Fault>, confirmation: [u8; 32]) -> Self {
        Self {
            complaints,
            confirmation,
            _curve: core::marker::PhantomData,
        }
    }
}

impl<C: Curve> Message for Broadcast<C> {
    /// Tag 0x33, curve code, complaints (count, strictly increasing `(accused, fault code)`), confirmation.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND3_BROADCAST);
        w.u8(C::CODE);
        w.u32(self.complaints.len() as u32);
        for (id, fault) in &self.complaints {
            id.encode(&mut w);
            w.u8(fault.code());
        }
        w.raw(&self.confirmation);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::ROUND3_BROADCAST)?;
        read_curve::<C>(&mut r)?;
        let complaints = SignerId::decode_map(&mut r, 1, |r| Fault::from_code(r.u8()?))?;
        let confirmation = r.array::<32>()?;
        r.finish()?;
        Ok(Self::new(complaints, confirmation))
    }
}

/// What `P_i` keeps until the end: its share `x_i` (zeroized on drop) and the public result.
pub struct State<C: Curve> {
    pub(super) params: Parameters,
    pub(super) me: SignerId,
    /// `x_i = Σ_j f_j(i)`.
    pub(super) secret: Zeroizing<C::Scalar>,
    /// `Σ_j C_j` (empty when we complained).
    pub(super) group_commitments: Vec<C::Point>,
    pub(super) complaints: BTreeMap<SignerId, Fault>,
    pub(super) confirmation: [u8; 32],
    /// Every dealer's Feldman commitments `C_j` (own included), kept for the complaint-resolution round.
    pub(super) dealings: BTreeMap<SignerId, Vec<C::Point>>,
    /// `f_j(i)` as received from every dealer `P_j` (own `f_i(i)` included).
    pub(super) received: BTreeMap<SignerId, Zeroizing<C::Scalar>>,
    /// `f_i(j)` as sent to every other `P_j` (revealed only to answer `P_j`'s complaint).
    pub(super) sent: BTreeMap<SignerId, Zeroizing<C::Scalar>>,
}

impl<C: Curve> fmt::Debug for State<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("round3::State")
            .field("me", &self.me)
            .field("secret", &"<redacted>")
            .field("complaints", &self.complaints)
            .finish_non_exhaustive()
    }
}

impl<C: Curve> State<C> {
    /// Our own complaints (the ones we broadcast).
    pub fn complaints(&self) -> Vec<Complaint> {
        self.complaints
            .iter()
            .map(|(accused, fault)| Complaint {
                accuser: self.me,
                accused: *accused,
                fault: *fault,
            })
            .collect()
    }
}

/// Round 3: takes every other participant's round-2 broadcast and the private share it sent us (both keyed by
/// sender), checks them, and returns the final state and our broadcast (complaints or confirmation).
///
/// Returns an error (rather than complaints) only when a message is missing or comes from a non-participant.
pub fn verify<C: Curve>(
    state: round2::State<C>,
    broadcasts: &BTreeMap<SignerId, round2::Broadcast<C>>,
    shares: BTreeMap<SignerId, round2::Share<C>>,
) -> Result<(State<C>, Broadcast<C>), Error> {
    let round2::State {
        params,
        me,
        own_share,
        commitments,
        proof,
        seen,
        sent,
    } = state;
    params.check_senders(me, broadcasts)?;
    params.check_senders(me, &shares)?;
    let k = usize::from(params.threshold);

    let mut complaints: BTreeMap<SignerId, Fault> = BTreeMap::new();
    let mut blame = |accused: SignerId, fault: Fault| {
        complaints.entry(accused).or_insert(fault);
    };
    for (&m, b) in broadcasts {
        // The echo: P_m's view of every round-1 broadcast must equal ours.
        if b.echo.len() != params.participants.len() || !b.echo.keys().eq(params.participants.iter()) {
            blame(m, Fault::Malformed);
            continue;
        }
        for (&j, h) in &b.echo {
            if seen.get(&j) != Some(h) {
                // P_m misreports our own broadcast, or contradicts what it sent us itself: P_m lies. Otherwise P_j
                // was seen in two versions (P_m is the witness).
                let accused = if j == me || j == m { m } else { j };
                blame(accused, Fault::Equivocation);
            }
        }
        if b.commitments.len() != k {
            blame(m, Fault::Malformed);
            continue;
        }
        if seen.get(&m) != Some(&reveal_commitment::<C>(&params, m, &b.commitments, &b.proof)) {
            blame(m, Fault::WrongCommitment);
            continue;
        }
        if !b.proof.verify(&params, m, &b.commitments[0]) {
            blame(m, Fault::InvalidProof);
            continue;
        }
        let share_ok = shares.get(&m).is_some_and(|s| {
            C::mul_base(&s.value) == curve::evaluate_commitment::<C>(&b.commitments, me.get())
        });
        if !share_ok {
            blame(m, Fault::InvalidShare);
        }
    }

    let mut secret = own_share.clone();
    let mut group_commitments = Vec::new();
    let mut confirmation = [0u8; 32];
    if complaints.is_empty() {
        for s in shares.values() {
            *secret = *secret + *s.value;
        }
        group_commitments = commitments.clone();
        for b in broadcasts.values() {
            for (acc, p) in group_commitments.iter_mut().zip(&b.commitments) {
                *acc = *acc + *p;
            }
        }
    }
    // The public transcript is complete unless a broadcast itself was at fault: a complaint about a private share
    // alone leaves it intact, and it is confirmed so that the resolution round starts from an agreed transcript.
    if complaints.values().all(|f| *f == Fault::InvalidShare) {
        let mut w = transcript::<C>("confirmation", &params);
        for (&j, h) in &seen {
            j.encode(&mut w);
            w.raw(h);
            let (cs, pf) = match broadcasts.get(&j) {
                Some(b) => (&b.commitments, &b.proof),
                None => (&commitments, &proof),
            };
            for p in cs {
                w.raw(&C::point_to_bytes(p));
            }
            w.raw(&C::point_to_bytes(&pf.r)).raw(&C::scalar_to_bytes(&pf.mu));
        }
        confirmation = super::sha256(w.as_slice());
    }
    let broadcast = Broadcast::new(complaints.clone(), confirmation);
    let mut dealings: BTreeMap<SignerId, Vec<C::Point>> = broadcasts
        .iter()
        .map(|(j, b)| (*j, b.commitments.clone()))
        .collect();
    dealings.insert(me, commitments);
    let mut received: BTreeMap<SignerId, Zeroizing<C::Scalar>> =
        shares.into_iter().map(|(j, s)| (j, s.value)).collect();
    received.insert(me, own_share);
    Ok((
        State {
            params,
            me,
            secret,
            group_commitments,
            complaints,
            confirmation,
            dealings,
            received,
            sent,
        },
        broadcast,
    ))
}
