//! The agreement part of a reshare, shared by the P-256/Ed25519 reshare of this module and the RSA redistribution
//! of [`crate::rsa::reshare`]: the wire layout of verdicts and confirmations, the judgement of every dealer from the
//! echoes, complaints and answers, and the comparison of confirmations. What differs between the two (how a
//! dealing and a sub-share are checked) comes in as closures.

use std::collections::{BTreeMap, BTreeSet};

use super::{Culprit, Error, Fault, Party, sha256};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// `(dealer, H(dealing) or None)` for every dealer, as a new holder received them.
pub(crate) type Echo = BTreeMap<SignerId, Option<[u8; 32]>>;

/// A new holder's verdict as the judgement reads it: its echo and its complaints.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) echo: &'a Echo,
    pub(crate) complaints: &'a BTreeSet<SignerId>,
}

/// Who deals, who receives, and who we are (a new holder).
pub(crate) struct Roles<'a> {
    pub(crate) dealers: &'a BTreeSet<SignerId>,
    pub(crate) receivers: &'a BTreeSet<SignerId>,
    pub(crate) me: SignerId,
}

impl Roles<'_> {
    /// Refuses a sender outside its role (or ourselves), and reports new holders whose message is missing.
    pub(crate) fn check_senders(
        &self,
        from_receivers: impl IntoIterator<Item = SignerId> + Clone,
        from_dealers: impl IntoIterator<Item = SignerId>,
    ) -> Result<(), Error> {
        for m in from_receivers.clone() {
            if m == self.me || !self.receivers.contains(&m) {
                return Err(Error::UnexpectedSender {
                    culprit: Party::New(m),
                });
            }
        }
        for i in from_dealers {
            if !self.dealers.contains(&i) {
                return Err(Error::UnexpectedSender {
                    culprit: Party::Old(i),
                });
            }
        }
        let got: BTreeSet<SignerId> = from_receivers.into_iter().collect();
        let missing: Vec<Party> = self
            .receivers
            .iter()
            .filter(|m| **m != self.me && !got.contains(m))
            .map(|m| Party::New(*m))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingMessages { culprits: missing })
        }
    }

    /// Refuses (naming the senders) verdicts that do not echo exactly the dealers or complain about a non-dealer.
    pub(crate) fn check_verdicts<'a>(
        &self,
        views: impl IntoIterator<Item = (SignerId, View<'a>)>,
    ) -> Result<(), Error> {
        let malformed: Vec<Culprit> = views
            .into_iter()
            .filter(|(_, v)| !v.echo.keys().eq(self.dealers.iter()) || !v.complaints.is_subset(self.dealers))
            .map(|(m, _)| Culprit {
                party: Party::New(m),
                fault: Fault::Malformed,
                witness: None,
            })
            .collect();
        if malformed.is_empty() {
            Ok(())
        } else {
            Err(Error::Inconsistent { culprits: malformed })
        }
    }

    /// Judges every dealer from every new holder's verdict (`views`, ours included): excluded when the echoes of
    /// its dealing disagree ([`Fault::Equivocation`], witness: the first new holder whose echo differs from the
    /// lowest id's, the same at every new holder), when nobody received it ([`Fault::Silent`]), when
    /// `public_fault` finds a fault in the agreed dealing, or when `answer(dealer, accuser)` says a complaint was
    /// not answered (`None`: [`Fault::NoAnswer`]) or answered wrongly (`Some(false)`: [`Fault::InvalidShare`]); a
    /// correct answer (`Some(true)`) names the accuser ([`Fault::FalseComplaint`]).
    ///
    /// Returns the qualified dealers and the culprits, or [`Error::NotEnoughDealers`] below `needed`.
    pub(crate) fn judge(
        &self,
        views: &BTreeMap<SignerId, View<'_>>,
        needed: u16,
        mut public_fault: impl FnMut(SignerId) -> Result<Option<Fault>, Error>,
        mut answer: impl FnMut(SignerId, SignerId) -> Option<bool>,
    ) -> Result<(BTreeSet<SignerId>, Vec<Culprit>), Error> {
        let mut culprits: Vec<Culprit> = Vec::new();
        let mut qualified: BTreeSet<SignerId> = BTreeSet::new();
        let mut exclude = |i: SignerId, fault: Fault, witness: Option<SignerId>| {
            culprits.push(Culprit {
                party: Party::Old(i),
                fault,
                witness,
            });
        };
        let mut false_accusers = Vec::new();
        for &i in self.dealers {
            let echo_of = |v: &View<'_>| v.echo.get(&i).copied().flatten();
            let own = views.get(&self.me).and_then(echo_of);
            if views.values().all(|v| echo_of(v).is_none()) {
                exclude(i, Fault::Silent, None);
                continue;
            }
            if views.values().any(|v| echo_of(v) != own) {
                let first = views.values().next().map(echo_of);
                let witness = views
                    .iter()
                    .find(|(_, v)| Some(echo_of(v)) != first)
                    .map(|(m, _)| *m);
                exclude(i, Fault::Equivocation, witness);
                continue;
            }
            if let Some(fault) = public_fault(i)? {
                exclude(i, fault, None);
                continue;
            }
            let mut fault = None;
            for (&m, v) in views {
                if !v.complaints.contains(&i) {
                    continue;
                }
                match answer(i, m) {
                    None => fault = Some(Fault::NoAnswer),
                    Some(true) => false_accusers.push(m),
                    Some(false) => fault = Some(Fault::InvalidShare),
                }
                if fault.is_some() {
                    break;
                }
            }
            match fault {
                Some(f) => exclude(i, f, None),
                None => {
                    qualified.insert(i);
                }
            }
        }
        culprits.extend(false_accusers.into_iter().map(|m| Culprit {
            party: Party::New(m),
            fault: Fault::FalseComplaint,
            witness: None,
        }));
        culprits.sort();
        culprits.dedup();
        if qualified.len() < usize::from(needed) {
            return Err(Error::NotEnoughDealers {
                qualified: qualified.len(),
                needed,
                culprits,
            });
        }
        Ok((qualified, culprits))
    }

    /// Compares every other new holder's confirmation `(verdict hashes, answer hashes)` with our own view
    /// (`verdicts`: every new holder's, ours included; `answers`: every dealer's).
    pub(crate) fn compare(
        &self,
        verdicts: &BTreeMap<SignerId, [u8; 32]>,
        answers: &BTreeMap<SignerId, [u8; 32]>,
        confirmations: &BTreeMap<SignerId, (&Hashes, &Hashes)>,
    ) -> Result<(), Error> {
        self.check_senders(confirmations.keys().copied(), [])?;
        let mut culprits = Vec::new();
        for (&m, (cv, ca)) in confirmations {
            if !cv.keys().eq(self.receivers.iter().filter(|j| **j != m)) || !ca.keys().eq(self.dealers.iter())
            {
                culprits.push(Culprit {
                    party: Party::New(m),
                    fault: Fault::Malformed,
                    witness: None,
                });
                continue;
            }
            for (&j, h) in cv.iter() {
                if verdicts.get(&j) != Some(h) {
                    // m misreports our own verdict: m lies. Otherwise j was seen in two versions (m the witness).
                    let (party, witness) = if j == self.me {
                        (Party::New(m), None)
                    } else {
                        (Party::New(j), Some(m))
                    };
                    culprits.push(Culprit {
                        party,
                        fault: Fault::Equivocation,
                        witness,
                    });
                }
            }
            for (&i, h) in ca.iter() {
                if answers.get(&i) != Some(h) {
                    culprits.push(Culprit {
                        party: Party::Old(i),
                        fault: Fault::Equivocation,
                        witness: Some(m),
                    });
                }
            }
        }
        if culprits.is_empty() {
            Ok(())
        } else {
            culprits.sort();
            culprits.dedup();
            Err(Error::Inconsistent { culprits })
        }
    }
}

/// Our view of the transcript, for the confirmation: the hash of every new holder's verdict (`verdicts`: the
/// encodings, ours included) and of every dealer's answer (`answer(i)`: its encoding when it sent a non-empty one;
/// an absent and an empty answer hash alike, so relaying an empty answer to some only is harmless).
pub(crate) fn transcript_hashes(
    transcript: impl Fn(&'static str) -> Writer,
    verdicts: impl IntoIterator<Item = (SignerId, Vec<u8>)>,
    dealers: &BTreeSet<SignerId>,
    mut answer: impl FnMut(SignerId) -> Option<Vec<u8>>,
) -> (Hashes, Hashes) {
    let verdicts = verdicts
        .into_iter()
        .map(|(m, v)| (m, message_hash(transcript("verdict"), m, Some(&v))))
        .collect();
    let answers = dealers
        .iter()
        .map(|&i| (i, message_hash(transcript("answer"), i, answer(i).as_deref())))
        .collect();
    (verdicts, answers)
}

/// Hashes keyed by party.
pub(crate) type Hashes = BTreeMap<SignerId, [u8; 32]>;

/// `H(prefix, sender, encoding)`, with a distinct value for "nothing received".
pub(crate) fn message_hash(mut prefix: Writer, sender: SignerId, encoding: Option<&[u8]>) -> [u8; 32] {
    sender.encode(&mut prefix);
    match encoding {
        Some(b) => {
            prefix.u8(1).bytes(b);
        }
        None => {
            prefix.u8(0);
        }
    }
    sha256(prefix.as_slice())
}

/// Verdict fields: echo (count, strictly increasing `(dealer id, 0 | 1 || 32-byte hash)`), complaints (count,
/// strictly increasing dealer ids).
pub(crate) fn encode_verdict(w: &mut Writer, echo: &Echo, complaints: &BTreeSet<SignerId>) {
    w.u32(echo.len() as u32);
    for (i, h) in echo {
        i.encode(w);
        match h {
            Some(h) => {
                w.u8(1).raw(h);
            }
            None => {
                w.u8(0);
            }
        }
    }
    w.u32(complaints.len() as u32);
    for i in complaints {
        i.encode(w);
    }
}

/// Reads [`encode_verdict`]'s fields strictly.
pub(crate) fn decode_verdict(r: &mut Reader<'_>) -> Result<(Echo, BTreeSet<SignerId>), DecodeError> {
    let echo = SignerId::decode_map(r, 1, |r| match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.array::<32>()?)),
        _ => Err(DecodeError::Invalid("echo flag not 0 or 1")),
    })?;
    let complaints = SignerId::decode_set(r)?;
    Ok((echo, complaints))
}

/// Confirmation fields: verdict hashes and answer hashes (each: count, strictly increasing `(id, 32 bytes)`).
pub(crate) fn encode_confirmation(w: &mut Writer, verdicts: &Hashes, answers: &Hashes) {
    for map in [verdicts, answers] {
        w.u32(map.len() as u32);
        for (id, h) in map {
            id.encode(w);
            w.raw(h);
        }
    }
}

/// Reads [`encode_confirmation`]'s fields strictly.
pub(crate) fn decode_confirmation(r: &mut Reader<'_>) -> Result<(Hashes, Hashes), DecodeError> {
    let verdicts = SignerId::decode_map(r, 32, |r| r.array::<32>())?;
    let answers = SignerId::decode_map(r, 32, |r| r.array::<32>())?;
    Ok((verdicts, answers))
}
