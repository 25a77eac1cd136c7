//! Reshare steps 4 and 5 (each new holder): judge every dealer from the verdicts and answers, form the new share
//! from the qualified dealers with Lagrange weights over them, confirm the transcript to the other new holders,
//! and accept once every confirmation agrees.
//!
//! A dealer is excluded when the echoes of its dealing disagree ([`Fault::Equivocation`](super::Fault::Equivocation), the first new holder
//! whose echo differs from the lowest id's recorded as the witness), when no new holder received it ([`Fault::Silent`](super::Fault::Silent)), when its dealing has
//! the wrong number of commitments ([`Fault::Malformed`](super::Fault::Malformed)) or a constant term other than its old verification share
//! ([`Fault::WrongCommitment`](super::Fault::WrongCommitment)), or when a complaint about its sub-share is not answered ([`Fault::NoAnswer`](super::Fault::NoAnswer)) or is
//! answered with a sub-share that fails the Feldman check ([`Fault::InvalidShare`](super::Fault::InvalidShare)). A complaint answered with a
//! correct sub-share names its accuser ([`Fault::FalseComplaint`](super::Fault::FalseComplaint)), who then uses the revealed value.

use core::fmt;
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::round1::read_curve;
use super::round2::{ReceiverState, Verdict, public_fault};
use super::round3::Answer;
use super::{Error, Parameters, Reshared, agree, sub_share_ok, tag};
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
        agree::encode_confirmation(&mut w, &self.verdicts, &self.answers);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::CONFIRMATION)?;
        read_curve::<C>(&mut r)?;
        let (verdicts, answers) = agree::decode_confirmation(&mut r)?;
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
    fn roles(&self) -> agree::Roles<'_> {
        agree::Roles {
            dealers: &self.params.dealers,
            receivers: &self.params.receivers,
            me: self.me,
        }
    }

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
        let roles = self.roles();
        roles.check_senders(verdicts.keys().copied(), answers.keys().copied())?;
        roles.check_verdicts(verdicts.iter().map(|(m, v)| (*m, v.view())))?;
        let me = self.me;
        let params = &self.params;
        let mut all: BTreeMap<SignerId, &Verdict<C>> = verdicts.iter().map(|(m, v)| (*m, v)).collect();
        let own = self.verdict.clone();
        all.insert(me, &own);
        let (verdict_hashes, answer_hashes) = agree::transcript_hashes(
            |label| params.transcript(label),
            all.iter().map(|(m, v)| (*m, v.encode())),
            &params.dealers,
            |i| {
                answers
                    .get(&i)
                    .filter(|a| !a.answers.is_empty())
                    .map(Message::encode)
            },
        );
        let mut others = verdict_hashes.clone();
        others.remove(&me);
        let confirmation = Confirmation::new(others, answer_hashes.clone());
        let views: BTreeMap<SignerId, agree::View<'_>> = all.iter().map(|(m, v)| (*m, v.view())).collect();
        let params = self.params.clone();
        let outcome = self.settle(&views, answers);
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
        views: &BTreeMap<SignerId, agree::View<'_>>,
        answers: &BTreeMap<SignerId, Answer<C>>,
    ) -> Result<Reshared<C>, Error> {
        let k = usize::from(self.params.threshold);
        let mut sub_shares = self.sub_shares.clone();
        let (qualified, culprits) = self.roles().judge(
            views,
            self.params.old.threshold(),
            |i| {
                let commitments = self
                    .dealings
                    .get(&i)
                    .ok_or(Error::InvalidResult("echoed dealing missing from our state"))?;
                Ok(public_fault(&self.params, i, commitments, k))
            },
            |i, m| {
                let s = answers.get(&i).and_then(|a| a.answers.get(&m))?;
                let ok = sub_share_ok::<C>(&self.dealings[&i], m, s);
                if ok && m == self.me {
                    sub_shares.insert(i, Zeroizing::new(*s));
                }
                Some(ok)
            },
        )?;
        let ReceiverState {
            params, me, dealings, ..
        } = self;
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
        let roles = agree::Roles {
            dealers: &self.params.dealers,
            receivers: &self.params.receivers,
            me: self.me,
        };
        let views = confirmations
            .iter()
            .map(|(m, c)| (*m, (&c.verdicts, &c.answers)))
            .collect();
        roles.compare(&self.verdicts, &self.answers, &views)?;
        self.outcome
    }
}
