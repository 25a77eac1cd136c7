//! Reshare step 1 (each dealer): deal the raw share `x_i` with a fresh polynomial `g_i` of degree `k'-1`,
//! `g_i(0) = x_i`; publish its Feldman commitments and send each new holder its sub-share. Step 3 (an accused
//! dealer) answers the complaints of step 2 from the state kept here.

use core::fmt;
use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{Error, OldShare, Parameters, Party, Secret, round2, round3, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::dkg::{Curve, Message, curve, read_point, read_scalar};
use crate::id::SignerId;

/// The public dealing of dealer `i`, sent to every new holder.
#[derive(Clone, PartialEq)]
pub struct Dealing<C: Curve> {
    /// `C_i = (g_i0·G, .., g_i(k'-1)·G)`; `C_i0` must equal the old verification share `X_i`.
    pub commitments: Vec<C::Point>,
}

impl<C: Curve> fmt::Debug for Dealing<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::Dealing")
            .field("commitments", &self.commitments.len())
            .finish()
    }
}

impl<C: Curve> Message for Dealing<C> {
    /// Tag 0x60, curve code, commitments (count, points).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::DEALING);
        w.u8(C::CODE);
        w.u32(self.commitments.len() as u32);
        for p in &self.commitments {
            w.raw(&C::point_to_bytes(p));
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::DEALING)?;
        read_curve::<C>(&mut r)?;
        let k = r.count(C::POINT_LEN)?;
        if k == 0 {
            return Err(DecodeError::Invalid("no commitments"));
        }
        let mut commitments = Vec::with_capacity(k);
        for _ in 0..k {
            commitments.push(read_point::<C>(&mut r)?);
        }
        r.finish()?;
        Ok(Self { commitments })
    }
}

/// The sub-share `g_i(j)` that dealer `i` sends to new holder `j` only (over a confidential channel). Zeroized on
/// drop, never printed.
#[derive(Clone)]
pub struct SubShare<C: Curve> {
    /// `g_i(j)`.
    pub value: Secret<C>,
}

impl<C: Curve> fmt::Debug for SubShare<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reshare::SubShare(<redacted>)")
    }
}

impl<C: Curve> SubShare<C> {
    /// Strict encoding (tag 0x61, curve code, 32-byte scalar), zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Message::encode(self))
    }
}

impl<C: Curve> Message for SubShare<C> {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(tag::SUB_SHARE, 3 + 32);
        w.u8(C::CODE);
        let mut b = C::scalar_to_bytes(&self.value);
        w.raw(&b);
        zeroize::Zeroize::zeroize(&mut b);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::SUB_SHARE)?;
        read_curve::<C>(&mut r)?;
        let value = Zeroizing::new(read_scalar::<C>(&mut r)?);
        r.finish()?;
        Ok(Self { value })
    }
}

/// What a dealer keeps until step 3: the sub-shares it sent (revealed only to answer a complaint). Zeroized on
/// drop.
pub struct DealerState<C: Curve> {
    params: Parameters<C>,
    me: SignerId,
    sent: BTreeMap<SignerId, Secret<C>>,
}

impl<C: Curve> fmt::Debug for DealerState<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("reshare::DealerState")
            .field("me", &self.me)
            .field("sent", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Step 1 for the old holder of `share`: returns the state for step 3, the dealing for every new holder and the
/// sub-share for each new holder (every new holder, including one on the same machine).
///
/// Refuses a share that is not a dealer's of `params` or that does not match the old public key set.
#[allow(clippy::type_complexity)]
pub fn deal<C: Curve>(
    params: Parameters<C>,
    share: &impl OldShare<C>,
    rng: &mut impl CryptoRng,
) -> Result<(DealerState<C>, Dealing<C>, BTreeMap<SignerId, SubShare<C>>), Error> {
    let (me, secret) = share.id_and_secret();
    let secret = Zeroizing::new(secret);
    if !params.dealers.contains(&me) {
        return Err(Error::InvalidParameters("own id is not a dealer"));
    }
    if params.old.public_shares().get(&me) != Some(&C::mul_base(&secret)) {
        return Err(Error::InvalidParameters(
            "the share does not belong to the old key set of the run",
        ));
    }
    let mut coefficients: Zeroizing<Vec<C::Scalar>> = Zeroizing::new(vec![*secret]);
    for _ in 1..params.threshold {
        coefficients.push(C::random_nonzero_scalar(rng));
    }
    let commitments: Vec<C::Point> = coefficients.iter().map(C::mul_base).collect();
    let mut sent = BTreeMap::new();
    let mut out = BTreeMap::new();
    for &j in &params.receivers {
        let value = Zeroizing::new(curve::evaluate::<C>(&coefficients, j.get()));
        out.insert(j, SubShare { value: value.clone() });
        sent.insert(j, value);
    }
    Ok((DealerState { params, me, sent }, Dealing { commitments }, out))
}

impl<C: Curve> DealerState<C> {
    /// This dealer's id.
    pub fn id(&self) -> SignerId {
        self.me
    }

    /// Step 3: takes the verdicts that reached us (keyed by the new holder that sent them; not all are needed)
    /// and answers every complaint about our dealing by revealing the disputed sub-share.
    ///
    /// The answer is empty when nobody complained about us (sending it is then optional).
    pub fn answer(
        self,
        verdicts: &BTreeMap<SignerId, round2::Verdict<C>>,
    ) -> Result<round3::Answer<C>, Error> {
        for &j in verdicts.keys() {
            Parameters::<C>::check_sender(&self.params.receivers, None, j, Party::New)?;
        }
        let answers = verdicts
            .iter()
            .filter(|(_, v)| v.complaints.contains(&self.me))
            .filter_map(|(j, _)| self.sent.get(j).map(|s| (*j, **s)))
            .collect();
        Ok(round3::Answer { answers })
    }
}

pub(super) fn read_curve<C: Curve>(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    if r.u8()? == C::CODE {
        Ok(())
    } else {
        Err(DecodeError::Invalid("message is for another curve"))
    }
}
