//! The pool of pre-made signing material that both pooled EC schemes share: FROST nonce commitments
//! ([`super::ec`]) and ECDSA presignatures ([`super::ecdsa`]).
//!
//! Per key, a [`Pool`] holds entries (each usable by a set of members, by signer id and node) and the signatures
//! waiting for one. [`Coordinator::pool_serve`] hands each waiting signature the first entry with at least `k`
//! usable members it has not had to avoid, drops entries that can no longer reach `k` members, and asks for a
//! refill when the stock is below the low watermark or a signature waits with nothing on the way. What an entry
//! is, how a refill is made and how a signature is sent with an entry is the scheme's part ([`PoolKind`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use tcrypto::{KeyId, SignerId};

use super::{Coordinator, CoordinatorConfig, NodeIndex, Op, OpId, SignError};

/// Consecutive failed refills after which the signatures waiting on an empty pool fail.
const MAX_FAILED_REFILLS: u32 = 3;

/// An entry of a pool: signing material that a set of members can use.
pub(super) trait Stocked {
    /// The members that can sign with this entry.
    fn members(&self) -> &BTreeMap<SignerId, NodeIndex>;
    /// Whether members may still join (answers to the refill are due).
    fn filling(&self) -> bool {
        false
    }
}

/// The pool of one key.
#[derive(Debug)]
pub(super) struct Pool<E> {
    /// Ready (or filling) entries, oldest first.
    pub(super) entries: VecDeque<E>,
    /// Refill requests (FROST) or runs (ECDSA) not yet answered.
    pub(super) refilling: usize,
    /// Refills that failed in a row.
    pub(super) failed_refills: u32,
    /// Signatures waiting for an entry.
    pub(super) waiting: VecDeque<OpId>,
}

impl<E> Default for Pool<E> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            refilling: 0,
            failed_refills: 0,
            waiting: VecDeque::new(),
        }
    }
}

/// A pooled signature scheme: its entries, its refill and how a signature is sent with an entry.
pub(super) trait PoolKind {
    /// One entry.
    type Entry: Stocked;
    /// Most entries one signature may take before it fails.
    const MAX_ATTEMPTS: u32;
    /// The pools of this scheme, by key.
    fn pools(c: &Coordinator) -> &HashMap<KeyId, Pool<Self::Entry>>;
    /// The same, mutable.
    fn pools_mut(c: &mut Coordinator) -> &mut HashMap<KeyId, Pool<Self::Entry>>;
    /// (low, high) watermarks.
    fn watermarks(cfg: &CoordinatorConfig) -> (usize, usize);
    /// Usable holders a refill needs, for a `k`-of-`n` key.
    fn refill_quorum(k: usize) -> usize;
    /// What a refill is and who it needs, for error messages.
    const REFILL: &'static str;
    /// Starts making about `want` entries; `false` if that is impossible now. `avoid`: nodes the first waiting
    /// signature must not use (a scheme whose entries need no more than `k` members makes them elsewhere).
    fn refill(
        c: &mut Coordinator,
        key: KeyId,
        want: usize,
        avoid: &BTreeSet<NodeIndex>,
        now: Instant,
    ) -> bool;
    /// Signature `op` waited on a pool that cannot be refilled: the scheme may sign it another way (`true`:
    /// taken over) instead of failing it.
    fn starved(c: &mut Coordinator, op: OpId, now: Instant) -> bool {
        let _ = (c, op, now);
        false
    }
    /// Sends signature `op` with `entry`; `signers` are its usable members, best first (at least `k`).
    fn dispatch(
        c: &mut Coordinator,
        op: OpId,
        entry: Self::Entry,
        signers: Vec<(SignerId, NodeIndex)>,
        now: Instant,
    );
}

impl Coordinator {
    /// The threshold `k` of a known key.
    pub(super) fn threshold_of(&self, key: &KeyId) -> Option<usize> {
        self.keys.get(key).map(|k| usize::from(k.threshold))
    }

    /// Usable members not in `avoid`, best first.
    pub(super) fn usable_members(
        &self,
        members: &BTreeMap<SignerId, NodeIndex>,
        avoid: &BTreeSet<NodeIndex>,
        now: Instant,
    ) -> Vec<(SignerId, NodeIndex)> {
        let mut m: Vec<(SignerId, NodeIndex)> = members
            .iter()
            .filter(|(_, n)| self.usable(**n, now) && !avoid.contains(n))
            .map(|(id, n)| (*id, *n))
            .collect();
        m.sort_by_key(|(_, n)| self.health_rank(*n, now));
        m
    }

    /// Usable holders of `key`.
    pub(super) fn usable_holders(&self, key: &KeyId, now: Instant) -> BTreeMap<SignerId, NodeIndex> {
        self.keys
            .get(key)
            .map(|k| {
                k.holders
                    .iter()
                    .filter(|(_, n)| self.usable(**n, now))
                    .map(|(s, n)| (*s, *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts signature `op` of `key` in line for an entry.
    pub(super) fn pool_enqueue<P: PoolKind>(&mut self, key: KeyId, op: OpId, now: Instant) {
        P::pools_mut(self).entry(key).or_default().waiting.push_back(op);
        self.pool_serve::<P>(key, now);
    }

    /// Records a failed attempt of signature `op` (`avoid`: the node at fault and why) and puts it back in line
    /// for another entry, or fails it once its attempts are used up.
    pub(super) fn pool_retry<P: PoolKind>(
        &mut self,
        op: OpId,
        key: KeyId,
        avoid: Option<(NodeIndex, String)>,
        now: Instant,
    ) {
        let avoid = avoid.map(|(n, why)| (n, self.node_name(n), why));
        let needed = self.threshold_of(&key).unwrap_or(0);
        let Some(t) = self.ops.get_mut(&op).and_then(Op::tries_mut) else {
            return;
        };
        if t.failed(avoid, P::MAX_ATTEMPTS) {
            self.fail_unavailable(op, 0, needed, None);
            return;
        }
        P::pools_mut(self).entry(key).or_default().waiting.push_front(op);
        self.pool_serve::<P>(key, now);
    }

    /// Serves the signatures waiting on the pool of `key` and refills it when low.
    pub(super) fn pool_serve<P: PoolKind>(&mut self, key: KeyId, now: Instant) {
        let Some(k) = self.threshold_of(&key) else {
            let waiting: Vec<OpId> = P::pools_mut(self)
                .remove(&key)
                .map(|p| p.waiting.into())
                .unwrap_or_default();
            for op in waiting {
                self.finish_sign(op, Err(SignError::UnknownKey(key)));
            }
            return;
        };
        loop {
            let Some(pool) = P::pools(self).get(&key) else {
                return;
            };
            let Some(&op) = pool.waiting.front() else { break };
            let Some(avoid) = self.ops.get(&op).and_then(Op::tries).map(|t| t.avoid.clone()) else {
                if let Some(p) = P::pools_mut(self).get_mut(&key) {
                    p.waiting.pop_front();
                }
                continue;
            };
            if self.reachable_holders(&key, &avoid, now) < k {
                // No entry can ever serve it (it avoids too many holders): another way, or its error now, rather
                // than refills that cannot help it.
                if let Some(p) = P::pools_mut(self).get_mut(&key) {
                    p.waiting.pop_front();
                }
                self.pool_give_up::<P>(op, key, k, now);
                continue;
            }
            // The first entry with k usable members; entries that can no longer get there are dropped.
            let mut chosen = None;
            let mut dead = Vec::new();
            for (i, e) in pool.entries.iter().enumerate() {
                let signers = self.usable_members(e.members(), &avoid, now);
                if signers.len() >= k {
                    chosen = Some((i, signers));
                    break;
                }
                if !e.filling() && e.members().len() < k {
                    dead.push(i);
                }
            }
            let Some(pool) = P::pools_mut(self).get_mut(&key) else {
                return;
            };
            let taken = chosen.and_then(|(i, signers)| Some((pool.entries.remove(i)?, signers)));
            // Every dead index is below the chosen one: removing that first shifts none of them.
            for i in dead.into_iter().rev() {
                pool.entries.remove(i);
            }
            let Some((entry, signers)) = taken else { break };
            pool.waiting.pop_front();
            P::dispatch(self, op, entry, signers, now);
        }
        self.pool_refill_if_low::<P>(key, k, now);
    }

    /// Holders of `key` not in `avoid` that are usable or being connected.
    fn reachable_holders(&self, key: &KeyId, avoid: &BTreeSet<NodeIndex>, now: Instant) -> usize {
        self.keys.get(key).map_or(0, |known| {
            known
                .holders
                .values()
                .filter(|n| !avoid.contains(n) && (self.usable(**n, now) || self.connecting(**n)))
                .count()
        })
    }

    /// Signature `op` cannot be served by the pool: the scheme signs it another way, or it fails with what its
    /// attempts met.
    fn pool_give_up<P: PoolKind>(&mut self, op: OpId, key: KeyId, k: usize, now: Instant) {
        if P::starved(self, op, now) {
            return;
        }
        let available = self.usable_holders(&key, now).len();
        self.fail_unavailable(op, available, k, None);
    }

    /// Refills below the low watermark, or when signatures wait and nothing is on the way; fails the waiting
    /// signatures when no refill can be made.
    fn pool_refill_if_low<P: PoolKind>(&mut self, key: KeyId, k: usize, now: Instant) {
        let (low, high) = P::watermarks(&self.cfg);
        let Some(pool) = P::pools(self).get(&key) else {
            return;
        };
        let stock = pool.entries.len();
        let starving = !pool.waiting.is_empty();
        if pool.refilling > 0 || (stock >= low && !starving) {
            return;
        }
        let want = high.max(1).saturating_sub(stock).max(pool.waiting.len()).max(1);
        let gave_up = pool.failed_refills >= MAX_FAILED_REFILLS;
        let avoid = pool
            .waiting
            .front()
            .and_then(|op| self.ops.get(op))
            .and_then(Op::tries)
            .map(|t| t.avoid.clone())
            .unwrap_or_default();
        if (!gave_up && P::refill(self, key, want, &avoid, now)) || !starving {
            return;
        }
        let available = self.usable_holders(&key, now).len();
        let needed = P::refill_quorum(k);
        if !gave_up && self.reachable_holders(&key, &BTreeSet::new(), now) >= needed {
            // Connection attempts under way may make up the quorum: the signatures wait for them
            // (`Coordinator::links_changed` serves the pool again when each attempt ends).
            return;
        }
        let waiting: Vec<OpId> = P::pools_mut(self)
            .get_mut(&key)
            .map(|p| {
                p.failed_refills = 0;
                p.waiting.drain(..).collect()
            })
            .unwrap_or_default();
        let why = (
            "pool".to_string(),
            if gave_up {
                format!(
                    "{} failed {MAX_FAILED_REFILLS} times in a row ({available} usable holders, {needed} needed)",
                    P::REFILL
                )
            } else {
                format!("{} needs {needed} usable holders; {available} usable", P::REFILL)
            },
        );
        for op in waiting {
            if P::starved(self, op, now) {
                continue;
            }
            self.fail_unavailable(op, available, needed, Some(why.clone()));
        }
    }

    /// One refill request (FROST) or run (ECDSA) of `key` ended; `brought`: it brought entries.
    pub(super) fn pool_refilled<P: PoolKind>(&mut self, key: KeyId, brought: bool) {
        self.pool_refill_answered::<P>(key, Some(brought));
    }

    /// One answer of a refill asked of several nodes came back; `round` is whether the refill brought usable
    /// entries, once that is known (`None`: other answers decide).
    pub(super) fn pool_refill_answered<P: PoolKind>(&mut self, key: KeyId, round: Option<bool>) {
        if let Some(pool) = P::pools_mut(self).get_mut(&key) {
            pool.refilling = pool.refilling.saturating_sub(1);
            match round {
                Some(true) => pool.failed_refills = 0,
                Some(false) => pool.failed_refills += 1,
                None => {}
            }
        }
    }

    /// Keys of this scheme with signatures waiting.
    pub(super) fn pool_keys_waiting<P: PoolKind>(&self) -> Vec<KeyId> {
        P::pools(self)
            .iter()
            .filter(|(_, p)| !p.waiting.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Entries in the pool of `key`.
    pub(super) fn pool_len<P: PoolKind>(&self, key: &KeyId) -> usize {
        P::pools(self).get(key).map_or(0, |p| p.entries.len())
    }

    /// After a node came back: every pool of this scheme may refill again (the failed-refill count is cleared)
    /// and is refilled now if below its low watermark.
    pub(super) fn pool_recovered<P: PoolKind>(&mut self, now: Instant) {
        let keys: Vec<KeyId> = P::pools_mut(self)
            .iter_mut()
            .map(|(key, pool)| {
                pool.failed_refills = 0;
                *key
            })
            .collect();
        for key in keys {
            self.pool_serve::<P>(key, now);
        }
    }

    /// Creates the pool of `key` if needed and fills it now.
    pub(super) fn pool_prefill<P: PoolKind>(&mut self, key: KeyId, now: Instant) {
        P::pools_mut(self).entry(key).or_default();
        self.pool_serve::<P>(key, now);
    }
}
