//! Per-pair setup: two batches of base OTs ([`super::base_ot`]) between two parties, one in each direction, and
//! the resulting [`PairState`] that each party keeps for every peer (sealed at rest by the node).
//!
//! For the pair `{i, j}`, party `i` is the base-OT *sender* of the batch that seeds its role as OT-extension
//! receiver (the VOLE's "Bob" in DKLs23's `Π_RVOLE`), and the base-OT *receiver*, with KOS15's secret choice
//! string `Δ_i`, of the batch that seeds its role as OT-extension sender ("Alice"). Each party sends two
//! messages to each peer:
//!
//! 1. [`round1`] → [`SetupRound1`] (its base-OT sender message: `A`, proof of knowledge);
//! 2. [`SetupState1::round2`] on the peer's [`SetupRound1`] → [`SetupRound2`] (its base-OT receiver message,
//!    choice bits `Δ_i`);
//! 3. [`SetupState2::finish`] on the peer's [`SetupRound2`] → [`PairState`].
//!
//! The pair state is long-lived and reusable: the OT extension binds a fresh nonce of each side into every
//! expansion ([`super::ote`], [`super::rvole`]), so no signature ever re-expands one-time material from it.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize as _, Zeroizing};

use super::base_ot::{self, BASE_OTS, ReceiverKeys, SenderKeys};
use super::prg::Hash;
use super::{Error, Fault, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{SessionId, SignerId};

/// Setup message 1, `P_i → P_j`: `P_i`'s base-OT sender message for the batch `P_i → P_j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRound1 {
    /// `A = a·G` and the proof of knowledge of `a`.
    pub ot: base_ot::SenderMsg,
}

/// Setup message 2, `P_i → P_j`: `P_i`'s base-OT receiver message for the batch `P_j → P_i` (choices `Δ_i`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRound2 {
    /// `B_l = b_l·G + Δ_{i,l}·A_j`.
    pub ot: base_ot::ReceiverMsg,
}

/// `P_i`'s secret after setup message 1.
pub struct SetupState1 {
    me: SignerId,
    peer: SignerId,
    session: SessionId,
    sender: base_ot::SenderState,
}

/// `P_i`'s secret after setup message 2.
pub struct SetupState2 {
    me: SignerId,
    peer: SignerId,
    session: SessionId,
    sender: base_ot::SenderState,
    delta: Zeroizing<u128>,
    alice: Zeroizing<ReceiverKeys>,
}

/// The long-lived state `P_i` (`me`) keeps for one peer `P_j`: the base-OT keys of both directions.
/// Secret: it zeroizes on drop and prints as `<redacted>`. Encoded with [`PairState::encode`] for sealed
/// storage.
pub struct PairState {
    me: SignerId,
    peer: SignerId,
    session: SessionId,
    /// As OT-extension receiver (VOLE Bob): the base-OT sender keys `(k_l^0, k_l^1)`, `l < κ`.
    pub(crate) bob: SenderKeys,
    /// As OT-extension sender (VOLE Alice): KOS15's `Δ` (bit `l` is the choice of base OT `l`)…
    pub(crate) delta: u128,
    /// …and the chosen keys `k_l^{Δ_l}`.
    pub(crate) alice: ReceiverKeys,
}

/// The session id of the base-OT batch in which `sender` is the base-OT sender.
fn batch_sid(session: &SessionId, sender: SignerId, receiver: SignerId) -> [u8; 32] {
    Hash::new("setup/base-ot")
        .raw(session.as_bytes())
        .raw(&sender.get().to_be_bytes())
        .raw(&receiver.get().to_be_bytes())
        .finish()
}

/// Starts the setup of the pair `(me, peer)` under a fresh setup session id (the same at both parties).
pub fn round1(
    session: SessionId,
    me: SignerId,
    peer: SignerId,
    rng: &mut impl CryptoRng,
) -> Result<(SetupState1, SetupRound1), Error> {
    if me == peer {
        return Err(Error::Misuse("a pair needs two different parties"));
    }
    let (sender, ot) = base_ot::sender_start(&batch_sid(&session, me, peer), rng);
    Ok((
        SetupState1 {
            me,
            peer,
            session,
            sender,
        },
        SetupRound1 { ot },
    ))
}

impl SetupState1 {
    /// Answers the peer's [`SetupRound1`] (received from `peer` over the authenticated channel): checks its
    /// proof of knowledge (else [`Fault::BaseOtProof`]) and chooses `Δ`.
    pub fn round2(
        self,
        msg: &SetupRound1,
        rng: &mut impl CryptoRng,
    ) -> Result<(SetupState2, SetupRound2), Error> {
        let mut d = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(&mut d[..]);
        let delta = u128::from_le_bytes(*d);
        let sid = batch_sid(&self.session, self.peer, self.me);
        let (alice, ot) = base_ot::receive(&sid, &msg.ot, delta, rng)
            .ok_or(super::culprit(self.peer, Fault::BaseOtProof))?;
        Ok((
            SetupState2 {
                me: self.me,
                peer: self.peer,
                session: self.session,
                sender: self.sender,
                delta: Zeroizing::new(delta),
                alice: Zeroizing::new(alice),
            },
            SetupRound2 { ot },
        ))
    }
}

impl SetupState2 {
    /// Finishes with the peer's [`SetupRound2`].
    pub fn finish(self, msg: &SetupRound2) -> Result<PairState, Error> {
        let bob = self
            .sender
            .finish(&msg.ot)
            .map_err(|_| super::culprit(self.peer, Fault::Malformed))?;
        Ok(PairState {
            me: self.me,
            peer: self.peer,
            session: self.session,
            bob,
            delta: *self.delta,
            alice: self.alice.to_vec(),
        })
    }
}

impl PairState {
    /// The party holding this state.
    pub fn me(&self) -> SignerId {
        self.me
    }

    /// The peer it was set up with.
    pub fn peer(&self) -> SignerId {
        self.peer
    }

    /// The setup session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The same base OTs under the ids `(me, peer)` of another key. The state belongs to two parties, not to a
    /// key: nothing it holds depends on the ids (they only label it; every expansion binds the signing run's own
    /// ids and nonces, [`super::rvole`]), so two nodes that set up a pair once use it for every key they share,
    /// whatever ids those keys give them (after a reshare, a node's id differs from key to key). The caller
    /// answers for the state being the one of these two parties (the node looks it up by the peer's identity).
    pub fn relabel(mut self, me: SignerId, peer: SignerId) -> Result<Self, Error> {
        if me == peer {
            return Err(Error::Misuse("pair state of a party with itself"));
        }
        self.me = me;
        self.peer = peer;
        Ok(self)
    }

    /// Encoded length.
    const LEN: usize = 2 + 2 + 2 + 32 + BASE_OTS * 64 + 16 + BASE_OTS * 32;

    /// Encodes for sealed storage (tag 0x50): `me`, `peer`, setup session, `κ` key pairs `(k^0, k^1)`, `Δ`
    /// (16 bytes, little-endian), `κ` keys `k^{Δ_l}`. The buffer is allocated once at its final size.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(tag::PAIR_STATE, Self::LEN);
        self.me.encode(&mut w);
        self.peer.encode(&mut w);
        self.session.encode(&mut w);
        for pair in self.bob.iter() {
            w.raw(&pair[0]).raw(&pair[1]);
        }
        w.raw(&self.delta.to_le_bytes());
        for k in self.alice.iter() {
            w.raw(k);
        }
        w.finish()
    }

    /// Decodes strictly (`me != peer`, exact length).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::PAIR_STATE)?;
        let me = SignerId::decode(&mut r)?;
        let peer = SignerId::decode(&mut r)?;
        if me == peer {
            return Err(DecodeError::Invalid("pair state of a party with itself").into());
        }
        let session = SessionId::decode(&mut r)?;
        let mut bob: SenderKeys = vec![[[0u8; 32]; 2]; BASE_OTS];
        for pair in bob.iter_mut() {
            pair[0] = r.array()?;
            pair[1] = r.array()?;
        }
        let delta = u128::from_le_bytes(r.array()?);
        let mut alice: ReceiverKeys = vec![[0u8; 32]; BASE_OTS];
        for k in alice.iter_mut() {
            *k = r.array()?;
        }
        r.finish()?;
        Ok(Self {
            me,
            peer,
            session,
            bob,
            delta,
            alice,
        })
    }
}

impl Drop for PairState {
    fn drop(&mut self) {
        self.bob.zeroize();
        self.delta.zeroize();
        self.alice.zeroize();
    }
}

impl fmt::Debug for PairState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairState")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .field("session", &self.session)
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for SetupState1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupState1")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SetupState2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupState2")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl SetupRound1 {
    /// Encodes (tag 0x51): `A`, `T`, `z`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SETUP_ROUND1);
        self.ot.write(&mut w);
        w.finish()
    }

    /// Decodes strictly (canonical non-identity points, canonical scalar, no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SETUP_ROUND1)?;
        let ot = base_ot::SenderMsg::read(&mut r)?;
        r.finish()?;
        Ok(Self { ot })
    }
}

impl SetupRound2 {
    /// Encodes (tag 0x52): the `κ = 128` points `B_l`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SETUP_ROUND2);
        self.ot.write(&mut w);
        w.finish()
    }

    /// Decodes strictly (exactly 128 canonical non-identity points).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SETUP_ROUND2)?;
        let ot = base_ot::ReceiverMsg::read(&mut r)?;
        r.finish()?;
        Ok(Self { ot })
    }
}

/// Runs the whole setup between two parties in memory (tests, benches, a single-process deployment).
pub fn run_pair(
    session: SessionId,
    i: SignerId,
    j: SignerId,
    rng: &mut impl CryptoRng,
) -> Result<(PairState, PairState), Error> {
    let (si, mi) = round1(session, i, j, rng)?;
    let (sj, mj) = round1(session, j, i, rng)?;
    let (si, ni) = si.round2(&mj, rng)?;
    let (sj, nj) = sj.round2(&mi, rng)?;
    Ok((si.finish(&nj)?, sj.finish(&ni)?))
}

/// A pair `(P_1, P_2)` set up from a seeded RNG, and the RNG (unit tests of the layers above).
#[cfg(test)]
pub(crate) fn test_pair(seed: u64) -> (PairState, PairState, rand::rngs::StdRng) {
    use rand::SeedableRng as _;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let one = SignerId::new(1).expect("id");
    let two = SignerId::new(2).expect("id");
    let (a, b) = run_pair(SessionId::random(&mut rng), one, two, &mut rng).expect("setup");
    (a, b, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn id(i: u16) -> SignerId {
        SignerId::new(i).unwrap()
    }

    #[test]
    fn both_directions_hold_matching_base_ot_keys_and_state_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let (a, b) = run_pair(SessionId::random(&mut rng), id(1), id(2), &mut rng).unwrap();
        for (bob, alice) in [(&a, &b), (&b, &a)] {
            for l in 0..BASE_OTS {
                let choice = ((alice.delta >> l) & 1) as usize;
                assert_eq!(alice.alice[l], bob.bob[l][choice]);
                assert_ne!(alice.alice[l], bob.bob[l][1 - choice]);
            }
        }
        let bytes = a.encode();
        assert_eq!(bytes.len(), PairState::LEN);
        let again = PairState::decode(&bytes).unwrap();
        assert_eq!(again.encode(), bytes);
        assert!(format!("{again:?}").contains("<redacted>"));
        let mut long = bytes.clone();
        long.push(0);
        assert!(PairState::decode(&long).is_err());
        assert!(PairState::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut v2 = bytes;
        v2[0] = 2;
        assert!(PairState::decode(&v2).is_err());
    }
}
