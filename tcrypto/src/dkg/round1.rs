//! DKG round 1: deal a polynomial, prove knowledge of its constant term, and broadcast only a hash commitment.
//!
//! FROST KeyGen round 1 steps 1-3 (Komlo–Goldberg 2020, Figure 1): `P_i` samples `f_i(x) = Σ_{j<k} a_ij x^j`,
//! computes `σ_i = (R_i, μ_i)` and `C_i = (φ_i0, .., φ_i(k-1))`. Unlike FROST, `C_i` and `σ_i` are not sent yet:
//! only `h_i = H(session, i, C_i, σ_i)`, so that nobody can pick its polynomial after seeing the others'.

use core::fmt;
use core::marker::PhantomData;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{Curve, Error, Message, Parameters, Proof, read_curve, reveal_commitment, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// The round-1 broadcast of `P_i`: the hash commitment `h_i` to its round-2 reveal.
#[derive(Clone, PartialEq, Eq)]
pub struct Broadcast<C: Curve> {
    /// `h_i = H(session, params, i, C_i, σ_i)` (SHA-256).
    pub commitment: [u8; 32],
    _curve: PhantomData<C>,
}

impl<C: Curve> fmt::Debug for Broadcast<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round1::Broadcast({})", super::hex_bytes(&self.commitment))
    }
}

impl<C: Curve> Broadcast<C> {
    /// Wraps a hash commitment.
    pub fn new(commitment: [u8; 32]) -> Self {
        Self {
            commitment,
            _curve: PhantomData,
        }
    }
}

impl<C: Curve> Message for Broadcast<C> {
    /// Tag 0x30, curve code, 32 bytes.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::ROUND1_BROADCAST);
        w.u8(C::CODE).raw(&self.commitment);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::ROUND1_BROADCAST)?;
        read_curve::<C>(&mut r)?;
        let commitment = r.array::<32>()?;
        r.finish()?;
        Ok(Self::new(commitment))
    }
}

/// The secret state `P_i` keeps until round 2: its polynomial (zeroized on drop).
pub struct State<C: Curve> {
    pub(super) params: Parameters,
    pub(super) me: SignerId,
    /// `a_i0, .., a_i(k-1)`.
    pub(super) coefficients: Zeroizing<Vec<C::Scalar>>,
    /// `C_i`.
    pub(super) commitments: Vec<C::Point>,
    /// `σ_i`.
    pub(super) proof: Proof<C>,
    /// `h_i`.
    pub(super) own: [u8; 32],
}

impl<C: Curve> fmt::Debug for State<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("round1::State")
            .field("me", &self.me)
            .field("coefficients", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Round 1 for party `me`: returns the secret state for round 2 and the broadcast for every other party.
pub fn commit<C: Curve>(
    params: Parameters,
    me: SignerId,
    rng: &mut impl CryptoRng,
) -> Result<(State<C>, Broadcast<C>), Error> {
    if !params.participants.contains(&me) {
        return Err(Error::InvalidParameters("own id is not a participant"));
    }
    let coefficients: Zeroizing<Vec<C::Scalar>> = Zeroizing::new(
        (0..params.threshold)
            .map(|_| C::random_nonzero_scalar(rng))
            .collect(),
    );
    let commitments: Vec<C::Point> = coefficients.iter().map(C::mul_base).collect();
    let proof = Proof::prove(&params, me, &coefficients[0], rng);
    let own = reveal_commitment::<C>(&params, me, &commitments, &proof);
    Ok((
        State {
            params,
            me,
            coefficients,
            commitments,
            proof,
            own,
        },
        Broadcast::new(own),
    ))
}

impl<C: Curve> State<C> {
    /// `f_i(j)` for a party `j` that receives a share of the key but does not deal in this run because it is
    /// offline (its dealers seal the value to it; on its return it checks the value against the dealer's Feldman
    /// commitments `C_i` of round 2 and sums). Refuses a participant of the run, whose share [`super::round2::reveal`]
    /// makes.
    pub fn share_for_non_dealer(&self, id: SignerId) -> Result<super::round2::Share<C>, Error> {
        if self.params.participants.contains(&id) {
            return Err(Error::InvalidParameters(
                "a participant receives its share from round 2",
            ));
        }
        Ok(super::round2::Share {
            value: Zeroizing::new(super::curve::evaluate::<C>(&self.coefficients, id.get())),
        })
    }
}
