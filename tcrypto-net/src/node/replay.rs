//! Replay and staleness protection for requests arriving at a node.
//!
//! A request is accepted only if its issue time is within [`ReplayGuard::max_skew_ms`] of the node's clock and its
//! session id has not been seen. Session ids are remembered for as long as a request carrying them could still pass
//! the time check (twice the skew), so the memory needed is bounded by the request rate times that window; above
//! [`ReplayGuard::max_entries`] the guard refuses new sessions (fail closed) rather than forgetting old ones.

use std::collections::{HashSet, VecDeque};

use tcrypto::SessionId;
use thiserror::Error;

/// Why a request was refused by the replay guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The session id was already used.
    #[error("session id already used")]
    Replayed,
    /// The request time is too far from the node's clock.
    #[error("request issued {skew_ms} ms away from the node's clock (limit {limit_ms} ms)")]
    Stale {
        /// Absolute difference between request time and node time.
        skew_ms: u64,
        /// The accepted difference.
        limit_ms: u64,
    },
    /// Too many sessions in the window.
    #[error("too many sessions in the replay window")]
    Full,
}

/// Remembers recent session ids. Time is passed in (ms since the Unix epoch), never read from the system.
#[derive(Debug)]
pub struct ReplayGuard {
    max_skew_ms: u64,
    max_entries: usize,
    seen: HashSet<SessionId>,
    order: VecDeque<(u64, SessionId)>,
}

impl ReplayGuard {
    /// Default accepted clock difference between coordinator and node: 30 s.
    pub const DEFAULT_MAX_SKEW_MS: u64 = 30_000;
    /// Default bound on remembered sessions.
    pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

    /// A guard with the given skew bound and capacity.
    pub fn new(max_skew_ms: u64, max_entries: usize) -> Self {
        Self {
            max_skew_ms,
            max_entries,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// The accepted clock difference.
    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// The capacity.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Number of sessions remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Checks a request issued at `issued_at_ms` with `session`, at node time `now_ms`, and remembers the session if
    /// it is accepted.
    pub fn check(&mut self, session: SessionId, issued_at_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        self.expire(now_ms);
        let skew_ms = issued_at_ms.abs_diff(now_ms);
        if skew_ms > self.max_skew_ms {
            return Err(ReplayError::Stale {
                skew_ms,
                limit_ms: self.max_skew_ms,
            });
        }
        if self.seen.contains(&session) {
            return Err(ReplayError::Replayed);
        }
        if self.seen.len() >= self.max_entries {
            return Err(ReplayError::Full);
        }
        self.seen.insert(session);
        // Forget the id once a request carrying it would be stale anyway. Entries are appended with
        // non-decreasing expiry as long as `now_ms` does not go backwards; a clock step back only delays expiry.
        let expires = now_ms.saturating_add(2 * self.max_skew_ms);
        self.order.push_back((expires, session));
        Ok(())
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&(exp, sid)) = self.order.front() {
            if exp > now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&sid);
        }
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_SKEW_MS, Self::DEFAULT_MAX_ENTRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(b: u8) -> SessionId {
        SessionId([b; 32])
    }

    #[test]
    fn a_session_id_is_accepted_once() {
        let mut g = ReplayGuard::new(1000, 10);
        g.check(sid(1), 5000, 5000).unwrap();
        assert_eq!(g.check(sid(1), 5000, 5001), Err(ReplayError::Replayed));
        g.check(sid(2), 5000, 5001).unwrap();
    }

    #[test]
    fn stale_and_future_requests_are_refused() {
        let mut g = ReplayGuard::new(1000, 10);
        assert!(matches!(
            g.check(sid(1), 1000, 2001),
            Err(ReplayError::Stale { skew_ms: 1001, .. })
        ));
        assert!(matches!(
            g.check(sid(1), 3002, 2001),
            Err(ReplayError::Stale { .. })
        ));
        g.check(sid(1), 1001, 2001).unwrap();
    }

    #[test]
    fn a_replay_stays_refused_until_it_would_be_stale_anyway() {
        let mut g = ReplayGuard::new(1000, 10);
        g.check(sid(1), 10_000, 10_000).unwrap();
        // Within the window: remembered.
        assert_eq!(g.check(sid(1), 10_000, 10_999), Err(ReplayError::Replayed));
        // Once forgotten, the old timestamp is stale.
        assert!(matches!(
            g.check(sid(1), 10_000, 12_001),
            Err(ReplayError::Stale { .. })
        ));
        assert!(g.is_empty());
    }

    #[test]
    fn a_full_window_fails_closed() {
        let mut g = ReplayGuard::new(1000, 2);
        g.check(sid(1), 0, 0).unwrap();
        g.check(sid(2), 0, 0).unwrap();
        assert_eq!(g.check(sid(3), 0, 0), Err(ReplayError::Full));
        g.check(sid(3), 2000, 2000).unwrap();
    }
}
