//! Reshare step 3 (an accused dealer): the answer to the complaints of step 2, revealing each disputed sub-share
//! `g_i(j)` publicly so that every new holder can check it against the dealer's commitments (the complaint round
//! of Gennaro, Jarecki, Krawczyk and Rabin, as in [`crate::dkg::resolve`]). Made by
//! [`DealerState::answer`](super::round1::DealerState::answer).

use core::fmt;
use std::collections::BTreeMap;

use super::round1::read_curve;
use super::tag;
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{Curve, Message, read_scalar};
use crate::id::SignerId;

/// The answer of dealer `i`: for every new holder `j` that complained about it, the sub-share `g_i(j)` (public
/// from now on). Empty when nobody complained.
#[derive(Clone, PartialEq)]
pub struct Answer<C: Curve> {
    /// `g_i(j)`, keyed by the accuser `j`.
    pub answers: BTreeMap<SignerId, C::Scalar>,
}

impl<C: Curve> fmt::Debug for Answer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::Answer")
            .field("answered", &self.answers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: Curve> Message for Answer<C> {
    /// Tag 0x63, curve code, answers (count, strictly increasing `(accuser id, 32-byte scalar)`).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ANSWER);
        w.u8(C::CODE);
        w.u32(self.answers.len() as u32);
        for (j, s) in &self.answers {
            j.encode(&mut w);
            w.raw(&C::scalar_to_bytes(s));
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::ANSWER)?;
        read_curve::<C>(&mut r)?;
        let answers = SignerId::decode_map(&mut r, 32, read_scalar::<C>)?;
        r.finish()?;
        Ok(Self { answers })
    }
}
