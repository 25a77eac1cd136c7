//! DKG round 2: echo the round-1 commitments, reveal `(C_i, σ_i)` and send each party its share `f_i(j)`.
//!
//! FROST KeyGen round 1 step 4 (the broadcast of `C_i`, `σ_i`) and round 2 step 1 (the private shares), preceded
//! by the echo that makes the round-1 broadcast consistent: the reveal must hash to `h_i`, and every party checks
//! in round 3 that everybody echoed the same `h_j` for every `j`.

use core::fmt;
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{
    Curve, Error, Message, Parameters, Proof, curve, read_curve, read_point, read_scalar, round1, tag,
};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// The round-2 broadcast of `P_i`.
#[derive(Clone, PartialEq)]
pub struct Broadcast<C: Curve> {
    /// The echo: `h_j` as `P_i` received it, for every participant `j` (its own `h_i` included).
    pub echo: BTreeMap<SignerId, [u8; 32]>,
    /// `C_i = (φ_i0, .., φ_i(k-1))`, `φ_ij = a_ij·G`: the Feldman commitments to `f_i`.
    pub commitments: Vec<C::Point>,
    /// `σ_i = (R_i, μ_i)`: the proof of knowledge of `a_i0`.
    pub proof: Proof<C>,
}

impl<C: Curve> fmt::Debug for Broadcast<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("round2::Broadcast")
            .field("echo", &self.echo.keys().collect::<Vec<_>>())
            .field(
                "commitments",
                &self
                    .commitments
                    .iter()
                    .map(super::hex_point::<C>)
                    .collect::<Vec<_>>(),
            )
            .field("proof", &self.proof)
            .finish()
    }
}

impl<C: Curve> Message for Broadcast<C> {
    /// Tag 0x31, curve code, echo (count, then strictly increasing `(id, h)`), commitments (count, points),
    /// `R_i`, `μ_i`.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_BROADCAST);
        w.u8(C::CODE);
        w.u32(self.echo.len() as u32);
        for (id, h) in &self.echo {
            id.encode(&mut w);
            w.raw(h);
        }
        w.u32(self.commitments.len() as u32);
        for p in &self.commitments {
            w.raw(&C::point_to_bytes(p));
        }
        w.raw(&C::point_to_bytes(&self.proof.r))
            .raw(&C::scalar_to_bytes(&self.proof.mu));
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::ROUND2_BROADCAST)?;
        read_curve::<C>(&mut r)?;
        let echo = SignerId::decode_map(&mut r, 32, |r| r.array::<32>())?;
        let k = r.count(C::POINT_LEN)?;
        if k == 0 {
            return Err(DecodeError::Invalid("no commitments"));
        }
        let mut commitments = Vec::with_capacity(k);
        for _ in 0..k {
            commitments.push(read_point::<C>(&mut r)?);
        }
        let proof = Proof {
            r: read_point::<C>(&mut r)?,
            mu: read_scalar::<C>(&mut r)?,
        };
        r.finish()?;
        Ok(Self {
            echo,
            commitments,
            proof,
        })
    }
}

/// The private share `f_i(j)` that `P_i` sends to `P_j` only (over a confidential channel). Zeroized on drop,
/// never printed.
#[derive(Clone)]
pub struct Share<C: Curve> {
    /// `f_i(j)`.
    pub value: Zeroizing<C::Scalar>,
}

impl<C: Curve> fmt::Debug for Share<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("round2::Share(<redacted>)")
    }
}

impl<C: Curve> Share<C> {
    /// Strict encoding (tag 0x32, curve code, 32-byte scalar), zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Message::encode(self))
    }
}

impl<C: Curve> Message for Share<C> {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND2_SHARE);
        w.u8(C::CODE);
        let mut b = C::scalar_to_bytes(&self.value);
        w.raw(&b);
        zeroize::Zeroize::zeroize(&mut b);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::ROUND2_SHARE)?;
        read_curve::<C>(&mut r)?;
        let value = Zeroizing::new(read_scalar::<C>(&mut r)?);
        r.finish()?;
        Ok(Self { value })
    }
}

/// What `P_i` keeps until round 3: its own share `f_i(i)` and what it saw in round 1.
pub struct State<C: Curve> {
    pub(super) params: Parameters,
    pub(super) me: SignerId,
    /// `f_i(i)`.
    pub(super) own_share: Zeroizing<C::Scalar>,
    /// `C_i`.
    pub(super) commitments: Vec<C::Point>,
    /// `σ_i`.
    pub(super) proof: Proof<C>,
    /// `h_j` as received, for every participant (own included).
    pub(super) seen: BTreeMap<SignerId, [u8; 32]>,
    /// `f_i(j)` as sent to every other `P_j`: revealed only to answer `P_j`'s complaint ([`super::resolve`]).
    pub(super) sent: BTreeMap<SignerId, Zeroizing<C::Scalar>>,
}

impl<C: Curve> fmt::Debug for State<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("round2::State")
            .field("me", &self.me)
            .field("own_share", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Round 2: takes the round-1 broadcasts of every other participant (keyed by sender) and returns the state for
/// round 3, this party's broadcast, and the private share for every other participant.
#[allow(clippy::type_complexity)]
pub fn reveal<C: Curve>(
    state: round1::State<C>,
    received: &BTreeMap<SignerId, round1::Broadcast<C>>,
) -> Result<(State<C>, Broadcast<C>, BTreeMap<SignerId, Share<C>>), Error> {
    let round1::State {
        params,
        me,
        coefficients,
        commitments,
        proof,
        own,
    } = state;
    params.check_senders(me, received)?;
    let mut seen: BTreeMap<SignerId, [u8; 32]> = received.iter().map(|(id, b)| (*id, b.commitment)).collect();
    seen.insert(me, own);
    let shares: BTreeMap<SignerId, Share<C>> = params
        .participants
        .iter()
        .filter(|id| **id != me)
        .map(|id| {
            (
                *id,
                Share {
                    value: Zeroizing::new(curve::evaluate::<C>(&coefficients, id.get())),
                },
            )
        })
        .collect();
    let own_share = Zeroizing::new(curve::evaluate::<C>(&coefficients, me.get()));
    let sent = shares.iter().map(|(id, s)| (*id, s.value.clone())).collect();
    let broadcast = Broadcast {
        echo: seen.clone(),
        commitments: commitments.clone(),
        proof,
    };
    Ok((
        State {
            params,
            me,
            own_share,
            commitments,
            proof,
            seen,
            sent,
        },
        broadcast,
        shares,
    ))
}
