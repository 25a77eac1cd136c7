//! FROST signing at the node (RFC 9591 through `tcrypto::ed25519`), split so that signing is one round trip:
//! the coordinator asks for nonce commitments for a batch of future signing sessions ahead of time
//! ([`NoncePool::commit`]), and later sends the signing package of one of those sessions ([`NoncePool::sign`]).
//!
//! The secret nonces stay in this node's memory only, keyed by (key, session), and are removed from the pool
//! before they are used (consumed by value): a session signs at most once, and a node that restarts has simply
//! lost its nonces (the coordinator drops its commitments when the connection drops). Nothing is written to disk
//! because nothing that survives a restart could be used twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rand_core::CryptoRng;
use tcrypto::ed25519::{self, SigningPackage, round1, round2};
use tcrypto::{KeyId, SessionId};

use crate::algo::Refusal;
use crate::transport::wire::ErrorCode;

/// Most nonce pairs a node keeps at once.
pub(crate) const MAX_NONCES: usize = 200_000;

/// The node's unused FROST nonces.
#[derive(Default)]
pub(crate) struct NoncePool {
    nonces: Mutex<Nonces>,
}

/// Unused nonces and their age order: when the pool is full the oldest are dropped (a coordinator asks more
/// holders for commitments than it finally uses, so some nonces are never asked for).
#[derive(Default)]
struct Nonces {
    map: HashMap<(KeyId, SessionId), round1::SigningNonces>,
    order: VecDeque<(KeyId, SessionId)>,
}

impl NoncePool {
    /// Unused nonces held for `key`.
    pub(crate) fn count(&self, key: &KeyId) -> usize {
        self.nonces
            .lock()
            .map(|n| n.map.keys().filter(|(k, _)| k == key).count())
            .unwrap_or(0)
    }

    /// Round 1 for each of `sessions`: keeps the nonces, returns the commitments' encodings.
    pub(crate) fn commit(
        &self,
        key: KeyId,
        share: &ed25519::KeyShare,
        sessions: &[SessionId],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Vec<u8>>, Refusal> {
        let mut made = Vec::with_capacity(sessions.len());
        for s in sessions {
            let (nonces, commitment) =
                round1::commit(share, *s, rng).map_err(|e| (ErrorCode::Internal, e.to_string()))?;
            made.push((*s, nonces, commitment.encode()));
        }
        let mut pool = self
            .nonces
            .lock()
            .map_err(|_| (ErrorCode::Internal, "nonce pool lock poisoned".to_string()))?;
        if made.iter().any(|(s, _, _)| pool.map.contains_key(&(key, *s))) {
            return Err((
                ErrorCode::Replayed,
                "nonces for that session were already made".into(),
            ));
        }
        let out = made
            .into_iter()
            .map(|(s, nonces, c)| {
                pool.map.insert((key, s), nonces);
                pool.order.push_back((key, s));
                c
            })
            .collect();
        while pool.map.len() > MAX_NONCES || pool.order.len() > 2 * MAX_NONCES {
            let Some(old) = pool.order.pop_front() else { break };
            pool.map.remove(&old);
        }
        Ok(out)
    }

    /// The commitment to the unused nonces of `(key, session)`, if held.
    pub(crate) fn commitment(&self, key: &KeyId, session: &SessionId) -> Option<round1::Commitment> {
        let pool = self.nonces.lock().ok()?;
        pool.map.get(&(*key, *session)).map(|n| *n.commitment())
    }

    /// Round 2: takes the session's nonces out of the pool and signs the package.
    pub(crate) fn sign(
        &self,
        key: KeyId,
        share: &ed25519::KeyShare,
        package: &SigningPackage,
    ) -> Result<Vec<u8>, Refusal> {
        let nonces = self
            .nonces
            .lock()
            .map_err(|_| (ErrorCode::Internal, "nonce pool lock poisoned".to_string()))?
            .map
            .remove(&(key, package.session))
            .ok_or_else(|| {
                (
                    ErrorCode::UnknownKey,
                    format!("no unused nonces for session {}", package.session),
                )
            })?;
        round2::sign(share, nonces, package)
            .map(|s| s.encode())
            .map_err(|e| (ErrorCode::BadEncoding, e.to_string()))
    }

    /// Forgets the nonces of a deleted key.
    pub(crate) fn forget(&self, key: &KeyId) {
        if let Ok(mut pool) = self.nonces.lock() {
            pool.map.retain(|(k, _), _| k != key);
            pool.order.retain(|(k, _)| k != key);
        }
    }
}
