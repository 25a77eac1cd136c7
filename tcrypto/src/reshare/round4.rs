//! Reshare steps 4 and 5 (each new holder): judge every dealer from the verdicts and answers, form the new share
//! from the qualified dealers with Lagrange weights over them, confirm the transcript to the other new holders,
//! and accept once every confirmation agrees.
//!
//! A dealer is excluded when the echoes of its dealing disagree ([`Fault::Equivocation`], the first new holder
//! whose echo differs from the lowest id's recorded as the witness), when no new holder received it ([`Fault::Silent`]), when its dealing has
//! the wrong number of commitments ([`Fault::Malformed`]) or a constant term other than its old verification share
//! ([`Fault::WrongCommitment`]), or when a complaint about its sub-share is not answered ([`Fault::NoAnswer`]) or is
//! answered with a sub-share that fails the Feldman check ([`Fault::InvalidShare`]). A complaint answered with a
//! correct sub-share names its accuser ([`Fault::FalseComplaint`]), who then uses the revealed value.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::round1::read_curve;
use super::round2::{ReceiverState, Verdict, public_fault};
use super::round3::Answer;
use super::{Culprit, Error, Fault, Parameters, Party, Reshared, sha256, sub_share_ok, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{Curve, KeyShare, Message, PublicKeySet, curve};
use crate::id::SignerId;

/// The confirmation of new holder `j`, sent to every other new holder: its view of every verdict and answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Confirmation<C: Curve> {
    /// For every new holder other than `j`: `H(transcript, m, V_m)` of its verdict as `j` received it.
    pub verdicts: BTreeMap<SignerId, [u8; 32]>,
    /// For every dealer: `H(transcript, i, A_i)` of its answer as `j` received it (an absent and an empty answer
    /// hash alike).
    pub answers: BTreeMap<SignerId, [u8; 32]>,
    _curve: core::marker::PhantomData<C>,
}

impl<C: Curve> Confirmation<C> {
    /// Builds a confirmation.
    pub fn new(verdicts: BTreeMap<SignerId, [u8; 32]>, answers: BTreeMap<SignerId, [u8; 32]>) -> Self {
        Self {
            verdicts,
            answers,
            _curve: core::marker::PhantomData,
        }
    }
}

impl<C: Curve> fmt::Debug for Confirmation<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::Confirmation")
            .field("verdicts", &self.verdicts.keys().collect::<Vec<_>>())
            .field("answers", &self.answers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: Curve> Message for Confirmation<C> {
    /// Tag 0x64, curve code, verdict hashes and answer hashes (each: count, strictly increasing `(id, 32 bytes)`).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::CONFIRMATION);
        w.u8(C::CODE);
        for map in [&self.verdicts, &self.answers] {
            w.u32(map.len() as u32);
            for (id, h) in map {
                id.encode(&mut w);
                w.raw(h);
            }
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::CONFIRMATION)?;
        read_curve::<C>(&mut r)?;
        let verdicts = SignerId::decode_map(&mut r, 32, |r| r.array::<32>())?;
        let answers = SignerId::decode_map(&mut r, 32, |r| r.array::<32>())?;
        r.finish()?;
        Ok(Self::new(verdicts, answers))
    }
}

/// What a new holder keeps between [`ReceiverState::judge`] and [`JudgedState::confirm`]: its verdict on the run
/// (the new share, or why the run fails) and its view of every verdict and answer.
pub struct JudgedState<C: Curve> {
    params: Parameters<C>,
    me: SignerId,
    verdicts: BTreeMap<SignerId, [u8; 32]>,
    answers: BTreeMap<SignerId, [u8; 32]>,
    outcome: Result<Reshared<C>, Error>,
}

impl<C: Curve> fmt::Debug for JudgedState<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::JudgedState")
            .field("me", &self.me)
            .field("outcome", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl<C: Curve> ReceiverState<C> {
    /// Step 4: takes the verdict of every other new holder and the answers that arrived (keyed by dealer; an
    /// unaccused dealer need not answer, and an empty map is fine when nobody complained), judges every dealer and
    /// returns the verdict on the run (kept until [`JudgedState::confirm`]) and our confirmation, to be sent to
    /// every other new holder.
    ///
    /// Fails at once with [`Error::MissingMessages`] when a new holder sent no verdict, and with
    /// [`Error::Inconsistent`] when a verdict does not echo exactly the dealers or complains about a non-dealer.
    pub fn judge(
        self,
        verdicts: &BTreeMap<SignerId, Verdict<C>>,
        answers: &BTreeMap<SignerId, Answer<C>>,
    ) -> Result<(JudgedState<C>, Confirmation<C>), Error> {
        let params = &self.params;
        let me = self.me;
        for &m in verdicts.keys() {
            Parameters::<C>::check_sender(&params.receivers, Some(me), m, Party::New)?;
        }
        for &i in answers.keys() {
            Parameters::<C>::check_sender(&params.dealers, None, i, Party::Old)?;
        }
        let missing: Vec<Party> = params
            .receivers
            .iter()
            .filter(|m| **m != me && !verdicts.contains_key(m))
            .map(|m| Party::New(*m))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingMessages { culprits: missing });
        }
        let malformed: Vec<Culprit> = verdicts
            .iter()
            .filter(|(_, v)| {
                !v.echo.keys().eq(params.dealers.iter()) || !v.complaints.is_subset(&params.dealers)
            })
            .map(|(m, _)| Culprit {
                party: Party::New(*m),
                fault: Fault::Malformed,
                witness: None,
            })
            .collect();
        if !malformed.is_empty() {
            return Err(Error::Inconsistent { culprits: malformed });
        }
        let mut all: BTreeMap<SignerId, &Verdict<C>> = verdicts.iter().map(|(m, v)| (*m, v)).collect();
        let own = self.verdict.clone();
        all.insert(me, &own);

        let verdict_hashes: BTreeMap<SignerId, [u8; 32]> = all
            .iter()
            .map(|(m, v)| (*m, message_hash(params, "verdict", *m, Some(&v.encode()))))
            .collect();
        let answer_hashes: BTreeMap<SignerId, [u8; 32]> = params
            .dealers
            .iter()
            .map(|i| {
                let a = answers
                    .get(i)
                    .filter(|a| !a.answers.is_empty())
                    .map(Message::encode);
                (*i, message_hash(params, "answer", *i, a.as_deref()))
            })
            .collect();
        let mut others = verdict_hashes.clone();
        others.remove(&me);
        let confirmation = Confirmation::new(others, answer_hashes.clone());
        let params = self.params.clone();
        let outcome = self.settle(&all, answers);
        Ok((
            JudgedState {
                params,
                me,
                verdicts: verdict_hashes,
                answers: answer_hashes,
                outcome,
            },
            confirmation,
        ))
    }

    /// Judges every dealer and forms the new share from the qualified ones.
    fn settle(
        self,
        verdicts: &BTreeMap<SignerId, &Verdict<C>>,
        answers: &BTreeMap<SignerId, Answer<C>>,
    ) -> Result<Reshared<C>, Error> {
        let ReceiverState {
            params,
            me,
            dealings,
            mut sub_shares,
            verdict,
        } = self;
        let k = usize::from(params.threshold);
        let mut culprits: Vec<Culprit> = Vec::new();
        let mut qualified: BTreeSet<SignerId> = BTreeSet::new();
        let exclude = |culprits: &mut Vec<Culprit>, i: SignerId, fault: Fault, witness: Option<SignerId>| {
            culprits.push(Culprit {
                party: Party::Old(i),
                fault,
                witness,
            });
        };
        for &i in &params.dealers {
            let echo_of = |v: &Verdict<C>| v.echo.get(&i).copied().flatten();
            let own = echo_of(&verdict);
            if verdicts.values().all(|v| echo_of(v).is_none()) {
                exclude(&mut culprits, i, Fault::Silent, None);
                continue;
            }
            if verdicts.values().any(|v| echo_of(v) != own) {
                // The same witness at every new holder: the first whose echo differs from the lowest id's.
                let first = verdicts.values().next().map(|v| echo_of(v));
                let witness = verdicts
                    .iter()
                    .find(|(_, v)| Some(echo_of(v)) != first)
                    .map(|(m, _)| *m);
                exclude(&mut culprits, i, Fault::Equivocation, witness);
                continue;
            }
            let Some(commitments) = dealings.get(&i) else {
                return Err(Error::InvalidResult("echoed dealing missing from our state"));
            };
            if let Some(fault) = public_fault(&params, i, commitments, k) {
                exclude(&mut culprits, i, fault, None);
                continue;
            }
            let mut ok = true;
            for (&m, v) in verdicts {
                if !v.complaints.contains(&i) {
                    continue;
                }
                match answers.get(&i).and_then(|a| a.answers.get(&m)) {
                    None => {
                        ok = false;
                        exclude(&mut culprits, i, Fault::NoAnswer, None);
                        break;
                    }
                    Some(s) if sub_share_ok::<C>(commitments, m, s) => {
                        culprits.push(Culprit {
                            party: Party::New(m),
                            fault: Fault::FalseComplaint,
                            witness: None,
                        });
                        if m == me {
                            sub_shares.insert(i, Zeroizing::new(*s));
                        }
                    }
                    Some(_) => {
                        ok = false;
                        exclude(&mut culprits, i, Fault::InvalidShare, None);
                        break;
                    }
                }
            }
            if ok {
                qualified.insert(i);
            }
        }
        culprits.sort();
        culprits.dedup();
        if qualified.len() < usize::from(params.old.threshold()) {
            return Err(Error::NotEnoughDealers {
                qualified: qualified.len(),
                needed: params.old.threshold(),
                culprits,
            });
        }
        let ids: Vec<u16> = qualified.iter().map(|i| i.get()).collect();
        let mut secret = Zeroizing::new(C::zero());
        let mut commitments = vec![C::identity(); k];
        for &i in &qualified {
            let lambda = curve::lagrange_at_zero::<C>(i.get(), &ids)
                .ok_or(Error::InvalidResult("duplicate dealer id"))?;
            let s = sub_shares
                .get(&i)
                .ok_or(Error::InvalidResult("missing sub-share of a qualified dealer"))?;
            *secret = *secret + lambda * **s;
            for (acc, c) in commitments.iter_mut().zip(&dealings[&i]) {
                *acc = *acc + *c * lambda;
            }
        }
        if commitments[0] != params.old.public_key() {
            return Err(Error::InvalidResult("the public key changed"));
        }
        let public = PublicKeySet::from_commitments(params.threshold, &params.receivers, commitments)
            .map_err(Error::InvalidResult)?;
        let share = KeyShare::new(me, *secret, public).map_err(Error::InvalidResult)?;
        Ok(Reshared {
            share,
            qualified,
            culprits,
        })
    }
}

impl<C: Curve> JudgedState<C> {
    /// Step 5: takes the confirmation of every other new holder and yields the new share once they all agree
    /// with ours.
    ///
    /// Fails with [`Error::Inconsistent`] when a confirmation differs (naming the new holder or dealer seen in two
    /// versions, with the confirming holder as the witness, or the confirming holder when it misreports our own
    /// verdict or is malformed). Otherwise returns the verdict of [`ReceiverState::judge`]: the new share, or
    /// [`Error::NotEnoughDealers`].
    pub fn confirm(self, confirmations: &BTreeMap<SignerId, Confirmation<C>>) -> Result<Reshared<C>, Error> {
        let JudgedState {
            params,
            me,
            verdicts,
            answers,
            outcome,
        } = self;
        for &m in confirmations.keys() {
            Parameters::<C>::check_sender(&params.receivers, Some(me), m, Party::New)?;
        }
        let missing: Vec<Party> = params
            .receivers
            .iter()
            .filter(|m| **m != me && !confirmations.contains_key(m))
            .map(|m| Party::New(*m))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingMessages { culprits: missing });
        }
        let mut culprits = Vec::new();
        for (&m, c) in confirmations {
            if !c.verdicts.keys().eq(params.receivers.iter().filter(|j| **j != m))
                || !c.answers.keys().eq(params.dealers.iter())
            {
                culprits.push(Culprit {
                    party: Party::New(m),
                    fault: Fault::Malformed,
                    witness: None,
                });
                continue;
            }
            for (&j, h) in &c.verdicts {
                if verdicts.get(&j) != Some(h) {
                    culprits.push(if j == me {
                        Culprit {
                            party: Party::New(m),
                            fault: Fault::Equivocation,
                            witness: None,
                        }
                    } else {
                        Culprit {
                            party: Party::New(j),
                            fault: Fault::Equivocation,
                            witness: Some(m),
                        }
                    });
                }
            }
            for (&i, h) in &c.answers {
                if answers.get(&i) != Some(h) {
                    culprits.push(Culprit {
                        party: Party::Old(i),
                        fault: Fault::Equivocation,
                        witness: Some(m),
                    });
                }
            }
        }
        if !culprits.is_empty() {
            culprits.sort();
            culprits.dedup();
            return Err(Error::Inconsistent { culprits });
        }
        outcome
    }
}

/// `H(transcript(label), sender, encoding)`, with a distinct value for "nothing received".
fn message_hash<C: Curve>(
    params: &Parameters<C>,
    label: &'static str,
    sender: SignerId,
    encoding: Option<&[u8]>,
) -> [u8; 32] {
    let mut w = params.transcript(label);
    sender.encode(&mut w);
    match encoding {
        Some(b) => {
            w.u8(1).bytes(b);
        }
        None => {
            w.u8(0);
        }
    }
    sha256(w.as_slice())
}
