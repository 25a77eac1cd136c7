//! The node's side of the multi-party EC protocols, relayed by the coordinator: the distributed key generation
//! ([`dkg`]), FROST nonce commitments and signature shares ([`frost`]), ECDSA presigning ([`presign`]) and
//! DKLs23 `k`-online ECDSA ([`dkls`]).
//!
//! Every node-to-node message travels as a [`crate::transport::sealed::Envelope`]: signed with the sender's Ed25519 identity
//! key, and for point-to-point messages sealed (HPKE) to the recipient. The parties of a run are named by their
//! identity keys in the coordinator's request; each must be one of the node's pinned peers, so a coordinator can
//! choose who takes part but can neither impersonate a party nor read what is sealed to it.

pub(crate) mod dkg;
pub(crate) mod dkls;
pub(crate) mod frost;
pub(crate) mod presign;

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use tcrypto::{SessionId, SignerId};

use crate::transport::identity::{HpkeKem, NodeIdentity, NodePublic};
use crate::transport::sealed::{Envelope, Route};
use crate::transport::wire::ErrorCode;

/// Why a step of a multi-party run failed at this node.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request itself is unacceptable (typed error, nobody blamed).
    Refused(ErrorCode, String),
    /// The run must be aborted; these parties misbehaved (possibly none identified).
    Aborted(Vec<SignerId>, String),
}

impl Failure {
    pub(crate) fn refused(code: ErrorCode, detail: impl Into<String>) -> Self {
        Failure::Refused(code, detail.into())
    }

    pub(crate) fn blame(culprit: SignerId, detail: impl Into<String>) -> Self {
        Failure::Aborted(vec![culprit], detail.into())
    }
}

/// One party of a run, resolved against the node's pinned peers.
pub(crate) struct Party {
    verifying: ed25519_dalek::VerifyingKey,
    hpke: <HpkeKem as hpke::Kem>::PublicKey,
}

/// The parties of a run (party id `i + 1` is the `i`-th listed identity key) and this node's own id.
pub(crate) struct Roster {
    pub(crate) me: SignerId,
    pub(crate) parties: BTreeMap<SignerId, Party>,
}

/// Messages received in one round, by sender: broadcasts and point-to-point messages to this node.
#[derive(Default)]
pub(crate) struct Inbox {
    pub(crate) broadcasts: BTreeMap<SignerId, Vec<u8>>,
    pub(crate) direct: BTreeMap<SignerId, Vec<u8>>,
}

impl Roster {
    /// Resolves the parties `1..=n` of a key, party `i + 1` with the `i`-th identity key (see
    /// [`Roster::resolve_pairs`]).
    pub(crate) fn resolve(
        identity_keys: &[[u8; 32]],
        me: SignerId,
        own: &NodeIdentity,
        peers: &[NodePublic],
    ) -> Result<Self, Failure> {
        let pairs = identity_keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                u16::try_from(i + 1)
                    .ok()
                    .and_then(SignerId::new)
                    .map(|id| (id, *key))
                    .ok_or_else(|| Failure::refused(ErrorCode::Malformed, "too many parties"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::resolve_pairs(&pairs, me, own, peers)
    }

    /// Resolves the listed parties and their identity keys: this node must be party `me`, every other must be a
    /// pinned peer.
    pub(crate) fn resolve_pairs(
        listed: &[(SignerId, [u8; 32])],
        me: SignerId,
        own: &NodeIdentity,
        peers: &[NodePublic],
    ) -> Result<Self, Failure> {
        let own_key = own.signing.verifying_key().to_bytes();
        let mut parties = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for &(id, ref key) in listed {
            if !seen.insert(*key) {
                return Err(Failure::refused(ErrorCode::Malformed, "a node is listed twice"));
            }
            let party = if *key == own_key {
                if id != me {
                    return Err(Failure::refused(
                        ErrorCode::Malformed,
                        format!("this node is party {id}, not {me}"),
                    ));
                }
                Party {
                    verifying: own.signing.verifying_key(),
                    hpke: own.hpke_public.clone(),
                }
            } else {
                let peer = peers.iter().find(|p| p.identity_key == *key).ok_or_else(|| {
                    Failure::refused(
                        ErrorCode::Unsupported,
                        format!("party {id} is not a pinned peer of this node"),
                    )
                })?;
                let bad =
                    |e: tcrypto::codec::DecodeError| Failure::refused(ErrorCode::Internal, e.to_string());
                Party {
                    verifying: peer.verifying_key().map_err(bad)?,
                    hpke: peer.hpke_public().map_err(bad)?,
                }
            };
            parties.insert(id, party);
        }
        if !listed.iter().any(|(id, key)| *id == me && *key == own_key) {
            return Err(Failure::refused(
                ErrorCode::Malformed,
                format!("party {me} is not this node"),
            ));
        }
        Ok(Self { me, parties })
    }

    /// Every party id.
    pub(crate) fn ids(&self) -> BTreeSet<SignerId> {
        self.parties.keys().copied().collect()
    }

    /// Signs a broadcast of round `round`.
    pub(crate) fn broadcast(
        &self,
        own: &NodeIdentity,
        run: SessionId,
        round: u8,
        message: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let route = Route {
            from: self.me,
            to: None,
            session: run,
            round,
        };
        Envelope::broadcast(route, message, &own.signing)
            .map(|e| e.encode())
            .map_err(|e| Failure::refused(ErrorCode::Internal, e.to_string()))
    }

    /// Seals and signs a point-to-point message of round `round` to `to`.
    pub(crate) fn seal(
        &self,
        own: &NodeIdentity,
        run: SessionId,
        round: u8,
        to: SignerId,
        message: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, Failure> {
        let party = self
            .parties
            .get(&to)
            .ok_or_else(|| Failure::refused(ErrorCode::Internal, format!("no party {to}")))?;
        let route = Route {
            from: self.me,
            to: Some(to),
            session: run,
            round,
        };
        Envelope::seal(route, message, &party.hpke, &own.signing, rng)
            .map(|e| e.encode())
            .map_err(|e| Failure::refused(ErrorCode::Internal, e.to_string()))
    }

    /// Opens the envelopes of round `round` relayed to this node. Only `senders` may send; each at most one
    /// broadcast and one message to us. A bad signature names the claimed sender: the coordinator checked the
    /// signature when it received the envelope from that sender's authenticated connection.
    pub(crate) fn open(
        &self,
        own: &NodeIdentity,
        run: SessionId,
        round: u8,
        senders: &BTreeSet<SignerId>,
        envelopes: &[Vec<u8>],
    ) -> Result<Inbox, Failure> {
        let mut inbox = Inbox::default();
        for bytes in envelopes {
            let env = Envelope::decode(bytes)
                .map_err(|e| Failure::refused(ErrorCode::Malformed, format!("relayed envelope: {e}")))?;
            let from = env.route.from;
            if from == self.me || !senders.contains(&from) {
                return Err(Failure::refused(
                    ErrorCode::Malformed,
                    format!("envelope from {from}, who does not send in this round"),
                ));
            }
            let Some(party) = self.parties.get(&from) else {
                return Err(Failure::refused(ErrorCode::Malformed, "unknown sender"));
            };
            let expected = Route {
                from,
                to: env.route.to,
                session: run,
                round,
            };
            let (slot, message) = match env.route.to {
                None => (
                    &mut inbox.broadcasts,
                    env.open_broadcast(&expected, &party.verifying)
                        .map(<[u8]>::to_vec),
                ),
                Some(to) if to == self.me => (
                    &mut inbox.direct,
                    env.open(&expected, &party.verifying, &own.hpke_secret),
                ),
                Some(_) => {
                    return Err(Failure::refused(
                        ErrorCode::Malformed,
                        "envelope addressed to another party",
                    ));
                }
            };
            let message = message.map_err(|e| Failure::blame(from, format!("envelope from {from}: {e}")))?;
            if slot.insert(from, message).is_some() {
                return Err(Failure::blame(
                    from,
                    format!("two envelopes from {from} in one round"),
                ));
            }
        }
        Ok(inbox)
    }
}

/// Checks that `got` has a message from every id of `expected` (none missing).
pub(crate) fn require_all<M>(
    got: &BTreeMap<SignerId, M>,
    expected: &BTreeSet<SignerId>,
    what: &str,
) -> Result<(), Failure> {
    let missing: Vec<SignerId> = expected
        .iter()
        .filter(|id| !got.contains_key(id))
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Aborted(missing, format!("{what} missing")))
    }
}

/// Multi-party runs open at a node, by run id; beyond `max` the oldest is dropped (a coordinator that abandons
/// runs cannot fill the node's memory).
pub(crate) struct Runs<T> {
    runs: std::collections::HashMap<SessionId, T>,
    order: std::collections::VecDeque<SessionId>,
    max: usize,
}

impl<T> Runs<T> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            runs: std::collections::HashMap::new(),
            order: std::collections::VecDeque::new(),
            max,
        }
    }

    pub(crate) fn insert(&mut self, run: SessionId, state: T) {
        if self.runs.insert(run, state).is_none() {
            self.order.push_back(run);
        }
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.runs.remove(&old);
            }
        }
    }

    pub(crate) fn take(&mut self, run: &SessionId) -> Option<T> {
        self.order.retain(|r| r != run);
        self.runs.remove(run)
    }
}
