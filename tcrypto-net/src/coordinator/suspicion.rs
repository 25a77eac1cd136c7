//! Suspicion before blame: a key reshared by another coordinator.
//!
//! A coordinator checks every share against the public key set it knows. When another coordinator (an operator's
//! `tcrypto-ctl reshare`) has reshared or refreshed the key since, every honest holder's share fails that check,
//! and a holder that left the key answers that it does not know it. Blaming them would exclude the honest nodes
//! of a long-lived host (a PKCS#11 module inside BIND, a zone signer) one after the other.
//!
//! So a node that fails a check is excluded at once (the operation asks others) but only *suspected*
//! ([`Coordinator::accuse`]); a holder that no longer knows the key raises a doubt ([`Coordinator::doubt`]).
//! The driver then asks every node for its keys and hands the lists to [`Coordinator::settle_suspicions`]:
//!
//! - the nodes hold the sharing this coordinator knows: the suspects are culprits (excluded for good,
//!   [`Event::Culprit`](super::Event::Culprit));
//! - they hold another one (learned under the rules of [`Coordinator::learn_keys`], which trust no `k - 1`
//!   nodes with a public key set): the coordinator takes it, drops what it made for the old one (presignatures,
//!   nonce commitments), lets the suspects serve again, and the driver signs once more.
//!
//! A node that (re)connects is asked for its key list at once ([`Coordinator::node_connected`]); when it reports
//! a sharing other than the one this coordinator knows for a key (another public key set, another signer id, a
//! key it no longer holds, a key it now holds), the key is doubted, and the driver's next check (before and after
//! each signature) learns the new sharing from every node's list: a reshare done elsewhere while the host kept
//! running is learned when a node it touched reconnects, before a signature fails on it.
//!
//! Whatever is learned, no signature is released unless it verifies under the key's public key, which a reshare
//! never changes.

use std::collections::BTreeMap;

use tcrypto::KeyId;

use std::time::Instant;

use super::{Coordinator, NodeIndex};
use crate::transport::wire::{KeyInfo, RequestBody, ResponseBody};

/// A node suspected of misbehaving with a key's sharing.
#[derive(Debug, Clone)]
pub(super) struct Suspect {
    node: NodeIndex,
    /// What it did (the exclusion reason once it is named a culprit).
    why: String,
}

/// Marks an exclusion that waits for the key's sharing to be confirmed.
const SUSPECTED: &str = "suspected until the key's sharing is confirmed: ";

impl Coordinator {
    /// `node` failed a check with `key`'s sharing: it is excluded now, and named a culprit once the nodes confirm
    /// the sharing ([`Coordinator::settle_suspicions`]).
    pub(crate) fn accuse(&mut self, node: NodeIndex, key: KeyId, why: String) {
        let name = self.node_name(node);
        tracing::warn!(node = %name, %key, %why, "node suspected; excluded until the key's sharing is confirmed");
        self.exclude(node, format!("{SUSPECTED}{why}"));
        self.suspicions
            .entry(key)
            .or_default()
            .push(Suspect { node, why });
    }

    /// A holder of `key` says it does not know it: the sharing may have changed.
    pub(crate) fn doubt(&mut self, key: KeyId) {
        self.suspicions.entry(key).or_default();
    }

    /// Asks `node`, which just (re)connected, for its key list, when this coordinator knows keys.
    pub(super) fn check_keys(&mut self, node: NodeIndex, now: Instant) {
        if self.keys.is_empty() {
            return;
        }
        let op = self.new_op(super::Op::KeyCheck);
        let (session, unix) = (self.fresh_session(), self.unix_at(now));
        if self
            .send(op, node, session, unix, RequestBody::ListKeys, now)
            .is_err()
        {
            self.ops.remove(&op);
        }
    }

    /// `node`'s key list after it (re)connected: every key whose sharing it reports otherwise than this
    /// coordinator knows it (or that it holds unknown, or no longer holds) is doubted.
    pub(super) fn keys_checked(&mut self, node: NodeIndex, body: &ResponseBody) {
        let ResponseBody::Keys(infos) = body else {
            return;
        };
        let mut doubted: Vec<KeyId> = infos
            .iter()
            .filter(|info| {
                self.keys
                    .get(&info.key)
                    .is_none_or(|k| k.encoded != info.public || k.holders.get(&info.signer) != Some(&node))
            })
            .map(|info| info.key)
            .collect();
        doubted.extend(
            self.keys
                .iter()
                .filter(|(key, k)| {
                    k.holders.values().any(|n| *n == node) && !infos.iter().any(|i| i.key == **key)
                })
                .map(|(key, _)| *key),
        );
        for key in doubted {
            tracing::info!(node = %self.node_name(node), %key, "a reconnected node reports another sharing; checking");
            self.doubt(key);
        }
    }

    /// Keys whose sharing should be checked against the nodes' key lists.
    pub fn suspected_keys(&self) -> Vec<KeyId> {
        self.suspicions.keys().copied().collect()
    }

    /// Settles every suspicion with the nodes' key lists (`ListKeys` answers): learns the keys
    /// ([`Coordinator::learn_keys`]); where a suspected key's sharing changed, the suspects serve again, and
    /// elsewhere they are culprits. Returns the keys whose sharing changed.
    pub fn settle_suspicions(&mut self, lists: &BTreeMap<NodeIndex, Vec<KeyInfo>>) -> Vec<KeyId> {
        let suspicions = std::mem::take(&mut self.suspicions);
        let before: BTreeMap<KeyId, _> = suspicions
            .keys()
            .filter_map(|k| {
                Some((
                    *k,
                    self.keys.get(k).map(|s| (s.encoded.clone(), s.holders.clone()))?,
                ))
            })
            .collect();
        self.learn_keys(lists);
        let mut changed = Vec::new();
        for (key, suspects) in suspicions {
            let after = self
                .keys
                .get(&key)
                .map(|s| (s.encoded.clone(), s.holders.clone()));
            if before.get(&key).is_some_and(|b| Some(b) != after.as_ref()) {
                tracing::info!(%key, "the nodes hold another sharing of the key (reshared elsewhere): learned it");
                for s in suspects {
                    let suspected = self.nodes.get(s.node).and_then(|n| n.health.excluded.as_deref());
                    if suspected.is_some_and(|r| r.starts_with(SUSPECTED)) {
                        self.readmit(s.node);
                    }
                }
                changed.push(key);
                continue;
            }
            for s in suspects {
                self.name_culprit(s.node, key, s.why);
            }
        }
        changed
    }
}
