//! Reshare step 2 (each new holder): check every dealing and sub-share received, then broadcast a verdict: the
//! echo of every dealing (so that a dealer seen in two versions, or by some only, is excluded by everyone) and the
//! complaints about sub-shares that fail the Feldman check.
//!
//! The checks of Wong, Wang and Wing's verifiable redistribution: the dealing has `k'` commitments, its constant
//! term is the dealer's old verification share (`C_i0 == X_i`), and the sub-share lies on it
//! (`g_i(j)·G == Σ_l j^l·C_il`).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use super::round1::{Dealing, SubShare, read_curve};
use super::{Error, Fault, Parameters, Party, Secret, agree, dealing_hash, sub_share_ok, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{Curve, Message};
use crate::id::SignerId;

/// The verdict of new holder `j`, sent to every other new holder and to every dealer.
#[derive(Clone, PartialEq, Eq)]
pub struct Verdict<C: Curve> {
    /// For every dealer `i ∈ D`: `H(transcript, i, C_i)` of its dealing as `j` received it, or `None` when `j`
    /// received none.
    pub echo: BTreeMap<SignerId, Option<[u8; 32]>>,
    /// The dealers whose sub-share to `j` is missing or fails the Feldman check (their dealing being otherwise
    /// well-formed with the right constant term).
    pub complaints: BTreeSet<SignerId>,
    _curve: core::marker::PhantomData<C>,
}

impl<C: Curve> Verdict<C> {
    /// Builds a verdict.
    pub fn new(echo: BTreeMap<SignerId, Option<[u8; 32]>>, complaints: BTreeSet<SignerId>) -> Self {
        Self {
            echo,
            complaints,
            _curve: core::marker::PhantomData,
        }
    }
}

impl<C: Curve> fmt::Debug for Verdict<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let received: Vec<_> = self
            .echo
            .iter()
            .filter(|(_, h)| h.is_some())
            .map(|(i, _)| i)
            .collect();
        f.debug_struct("reshare::Verdict")
            .field("received", &received)
            .field("complaints", &self.complaints)
            .finish()
    }
}

impl<C: Curve> Message for Verdict<C> {
    /// Tag 0x62, curve code, echo (count, strictly increasing `(dealer id, 0 | 1 || 32-byte hash)`), complaints
    /// (count, strictly increasing dealer ids).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::VERDICT);
        w.u8(C::CODE);
        agree::encode_verdict(&mut w, &self.echo, &self.complaints);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::VERDICT)?;
        read_curve::<C>(&mut r)?;
        let (echo, complaints) = agree::decode_verdict(&mut r)?;
        r.finish()?;
        Ok(Self::new(echo, complaints))
    }
}

/// What new holder `j` keeps until step 4: the dealings and sub-shares it received and its own verdict.
pub struct ReceiverState<C: Curve> {
    pub(super) params: Parameters<C>,
    pub(super) me: SignerId,
    /// Every dealing received.
    pub(super) dealings: BTreeMap<SignerId, Vec<C::Point>>,
    /// `g_i(j)` for every dealer whose sub-share passed the check.
    pub(super) sub_shares: BTreeMap<SignerId, Secret<C>>,
    /// Our verdict, as sent.
    pub(super) verdict: Verdict<C>,
}

impl<C: Curve> fmt::Debug for ReceiverState<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::ReceiverState")
            .field("me", &self.me)
            .field("verdict", &self.verdict)
            .field("sub_shares", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl<C: Curve> Verdict<C> {
    pub(super) fn view(&self) -> agree::View<'_> {
        agree::View {
            echo: &self.echo,
            complaints: &self.complaints,
        }
    }
}

impl<C: Curve> ReceiverState<C> {
    /// This new holder's id.
    pub fn id(&self) -> SignerId {
        self.me
    }

    /// Our verdict (as returned by [`receive`]).
    pub fn verdict(&self) -> &Verdict<C> {
        &self.verdict
    }
}

/// Step 2 for new holder `me`: takes the dealings and sub-shares that arrived (keyed by the dealer; a silent dealer
/// is simply absent) and returns the state for step 4 and our verdict, to be sent to every other new holder and
/// every dealer.
///
/// Fails only for caller misuse or a message from a party that is not a dealer of the run.
pub fn receive<C: Curve>(
    params: Parameters<C>,
    me: SignerId,
    dealings: &BTreeMap<SignerId, Dealing<C>>,
    sub_shares: BTreeMap<SignerId, SubShare<C>>,
) -> Result<(ReceiverState<C>, Verdict<C>), Error> {
    if !params.receivers.contains(&me) {
        return Err(Error::InvalidParameters("own id is not a new holder"));
    }
    for &i in dealings.keys().chain(sub_shares.keys()) {
        Parameters::<C>::check_sender(&params.dealers, None, i, Party::Old)?;
    }
    let k = usize::from(params.threshold);
    let mut echo = BTreeMap::new();
    let mut complaints = BTreeSet::new();
    let mut valid = BTreeMap::new();
    for &i in &params.dealers {
        let Some(d) = dealings.get(&i) else {
            echo.insert(i, None);
            continue;
        };
        echo.insert(i, Some(dealing_hash(&params, i, &d.commitments)));
        if public_fault(&params, i, &d.commitments, k).is_some() {
            // Everyone sees the same public fault (once the echoes agree): no complaint needed.
            continue;
        }
        match sub_shares.get(&i) {
            Some(s) if sub_share_ok::<C>(&d.commitments, me, &s.value) => {
                valid.insert(i, s.value.clone());
            }
            _ => {
                complaints.insert(i);
            }
        }
    }
    let verdict = Verdict::new(echo, complaints);
    let dealings = dealings
        .iter()
        .map(|(i, d)| (*i, d.commitments.clone()))
        .collect();
    Ok((
        ReceiverState {
            params,
            me,
            dealings,
            sub_shares: valid,
            verdict: verdict.clone(),
        },
        verdict,
    ))
}

/// A fault of dealer `i` seen in its public dealing: not `k'` commitments, or a constant term that is not `X_i`.
pub(super) fn public_fault<C: Curve>(
    params: &Parameters<C>,
    dealer: SignerId,
    commitments: &[C::Point],
    k: usize,
) -> Option<Fault> {
    if commitments.len() != k {
        return Some(Fault::Malformed);
    }
    if params.old.public_shares().get(&dealer) != Some(&commitments[0]) {
        return Some(Fault::WrongCommitment);
    }
    None
}
