//! The coordinator's EC operations: key creation by DKG across the nodes, and FROST signing from a pool of
//! pre-made nonce commitments.
//!
//! **DKG.** The dealers are the holders connected when the run starts (at least `k`; all `n` is not needed).
//! The coordinator relays every round: it checks each envelope a dealer returns (signed by that dealer's identity
//! key, routed from its party id, for this run and round) and hands each dealer the other dealers' broadcasts and
//! the envelopes sealed to it. A dealer that answers a bad envelope, an error, or not at all aborts the run (named
//! in the error; the caller may run again without it). After round 4 every dealer answers the public key set it
//! stored; the key is registered only if all agree. For each party that was offline, the coordinator keeps every
//! dealer's round-2 broadcast and the share sealed to it, and delivers them when the node connects again (in
//! memory: a coordinator restart before that loses the delivery, and that party never gets a share).
//!
//! **FROST.** Per Ed25519 key, a pool of signing sessions, each with the nonce commitments of up to `k + 1`
//! holders, is refilled in batches whenever it falls below the low watermark. A signature takes one session
//! from the pool and is one round trip to `k` holders. A share that fails verification names its node, which is
//! excluded; a node that fails or disconnects is avoided and another session is taken.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use tcrypto::ed25519::{self, SigningPackage, round1, round2};
use tcrypto::{KeyId, SessionId, SignerId};

use super::{Coordinator, Event, NodeIndex, Op, OpId, SignError, Signature, unavailable};
use crate::sealed::Envelope;
use crate::wire::{Algorithm, DkgSetup, KeyInfo, RequestBody, RequestId, ResponseBody};

/// Party 1 (a placeholder in the shared setup; each dealer's copy names it).
const FIRST: SignerId = match SignerId::new(1) {
    Some(id) => id,
    None => panic!("1 is a signer id"),
};

/// Most attempts of one FROST signature before it fails.
const MAX_FROST_ATTEMPTS: u32 = 8;

/// EC state of the coordinator.
#[derive(Debug, Default)]
pub(super) struct EcState {
    /// DKG results waiting for parties that were offline, by node and key.
    deliveries: HashMap<NodeIndex, BTreeMap<KeyId, RequestBody>>,
    /// FROST session pools, by key.
    frost: HashMap<KeyId, FrostPool>,
}

#[derive(Debug)]
struct FrostEntry {
    commitments: BTreeMap<SignerId, (NodeIndex, round1::Commitment)>,
    /// Holders asked whose answer is still due.
    awaiting: usize,
}

#[derive(Debug, Default)]
struct FrostPool {
    entries: HashMap<SessionId, FrostEntry>,
    order: VecDeque<SessionId>,
    /// Refill requests not yet answered.
    refills: usize,
    /// Signatures waiting for a session.
    waiting: VecDeque<OpId>,
}

/// A DKG run driven by the coordinator.
#[derive(Debug)]
pub(super) struct DkgOp {
    setup: DkgSetup,
    key_parties: BTreeMap<SignerId, NodeIndex>,
    dealers: BTreeMap<SignerId, NodeIndex>,
    round: u8,
    asked: HashMap<RequestId, SignerId>,
    /// Envelopes returned in the current round, by sender.
    returned: BTreeMap<SignerId, Vec<Envelope>>,
    /// Round-2 envelopes kept for the parties that are offline.
    for_absent: BTreeMap<SignerId, Vec<Vec<u8>>>,
    created: BTreeMap<SignerId, KeyInfo>,
}

/// A FROST signature in progress.
#[derive(Debug)]
pub(super) struct FrostSignOp {
    key: KeyId,
    message: Vec<u8>,
    package: Option<SigningPackage>,
    asked: HashMap<RequestId, (SignerId, NodeIndex)>,
    shares: BTreeMap<SignerId, round2::SignatureShare>,
    tries: Tries,
}

/// What a pooled EC signature (FROST or ECDSA) learned over its attempts.
#[derive(Debug, Default)]
pub(super) struct Tries {
    /// Nodes not to ask again for this signature.
    pub(super) avoid: BTreeSet<NodeIndex>,
    /// Why asked nodes failed, by node name.
    pub(super) failures: Vec<(String, String)>,
    /// Nodes named culprits, by name.
    pub(super) culprits: Vec<String>,
    /// Sessions (presignatures) tried.
    pub(super) attempts: u32,
}

impl Tries {
    /// Records a failed attempt (`avoid`: the node at fault and why, if one was); returns the error to finish
    /// the signature with once `max` attempts are used up.
    pub(super) fn failed(
        &mut self,
        avoid: Option<(NodeIndex, String, String)>,
        max: u32,
        needed: usize,
    ) -> Option<SignError> {
        if let Some((node, name, why)) = avoid {
            self.avoid.insert(node);
            if !why.is_empty() {
                self.failures.push((name, why));
            }
        }
        (self.attempts >= max).then(|| unavailable(0, needed, &self.failures, &self.culprits))
    }
}

impl Op {
    /// The attempts record of a pooled EC signature.
    pub(super) fn tries_mut(&mut self) -> Option<&mut Tries> {
        match self {
            Op::FrostSign(s) => Some(&mut s.tries),
            Op::EcdsaSign(s) => Some(&mut s.tries),
            _ => None,
        }
    }
}

/// Routes the envelopes returned in a round: each broadcast to every other recipient, each point-to-point
/// envelope to its addressee. Point-to-point envelopes for parties that are not recipients are returned apart.
#[allow(clippy::type_complexity)]
pub(super) fn route_envelopes(
    returned: &BTreeMap<SignerId, Vec<Envelope>>,
    recipients: impl Iterator<Item = SignerId>,
) -> (BTreeMap<SignerId, Vec<Vec<u8>>>, Vec<(SignerId, Vec<u8>)>) {
    let mut inboxes: BTreeMap<SignerId, Vec<Vec<u8>>> = recipients.map(|id| (id, Vec::new())).collect();
    let mut elsewhere = Vec::new();
    for (from, envs) in returned {
        for env in envs {
            let bytes = env.encode();
            match env.route.to {
                None => {
                    for (to, inbox) in inboxes.iter_mut() {
                        if to != from {
                            inbox.push(bytes.clone());
                        }
                    }
                }
                Some(to) => match inboxes.get_mut(&to) {
                    Some(inbox) => inbox.push(bytes),
                    None => elsewhere.push((to, bytes)),
                },
            }
        }
    }
    (inboxes, elsewhere)
}

impl Coordinator {
    /// Checks the envelopes party `from` (on `node`) returned for `round` of `run`: each decodes, is routed from
    /// `from` for this run and round, and carries the node's identity signature. The coordinator saw them come
    /// over the node's authenticated connection, so a bad one makes that node the culprit.
    pub(super) fn checked_envelopes(
        &self,
        node: NodeIndex,
        from: SignerId,
        run: SessionId,
        round: u8,
        envelopes: &[Vec<u8>],
    ) -> Result<Vec<Envelope>, String> {
        let verifying = self
            .nodes
            .get(node)
            .and_then(|n| n.identity.as_ref())
            .and_then(|p| p.verifying_key().ok())
            .ok_or_else(|| format!("no identity known for {}", self.node_name(node)))?;
        envelopes
            .iter()
            .map(|bytes| {
                let env = Envelope::decode(bytes).map_err(|e| format!("undecodable envelope: {e}"))?;
                let r = env.route;
                if r.from != from || r.session != run || r.round != round || !env.verify(&verifying) {
                    return Err(format!(
                        "envelope of {} not signed by it for round {round}",
                        self.node_name(node)
                    ));
                }
                Ok(env)
            })
            .collect()
    }

    pub(super) fn usable(&self, node: NodeIndex, now: Instant) -> bool {
        let _ = now;
        self.nodes
            .get(node)
            .is_some_and(|n| n.health.connected && n.health.excluded.is_none())
    }

    pub(super) fn party_node(&self, node: NodeIndex) -> Option<[u8; 32]> {
        self.nodes
            .get(node)
            .and_then(|n| n.identity.as_ref())
            .map(|p| p.identity_key)
    }

    // ------------------------------------------------------------------ DKG

    /// Starts creating a `threshold`-of-`n` key of `algorithm` by distributed key generation, where `n` is the
    /// number of nodes (party `i + 1` is node `i`). Nodes in `avoid` do not deal (they receive their share later,
    /// like offline nodes). The result comes as [`Event::Created`].
    pub fn start_create_key(
        &mut self,
        algorithm: Algorithm,
        threshold: u16,
        avoid: &BTreeSet<NodeIndex>,
        now: Instant,
        unix_ms: u64,
    ) -> OpId {
        self.observe_clock(now, unix_ms);
        let run = self.fresh_session();
        let mut parties = Vec::new();
        let mut key_parties = BTreeMap::new();
        let mut dealers = BTreeMap::new();
        let mut problem = None;
        for node in 0..self.nodes.len() {
            let Some(id) = u16::try_from(node + 1).ok().and_then(SignerId::new) else {
                problem = Some("too many nodes".to_string());
                break;
            };
            match self.party_node(node) {
                Some(key) => parties.push(key),
                None => problem = Some(format!("node {} has no known identity", self.node_name(node))),
            }
            key_parties.insert(id, node);
            if self.usable(node, now) && !avoid.contains(&node) {
                dealers.insert(id, node);
            }
        }
        let n = parties.len();
        if problem.is_none() {
            problem = match algorithm {
                Algorithm::EcdsaP256 => (threshold < 2 || 2 * usize::from(threshold) > n + 1).then(|| {
                    format!("threshold ECDSA needs 2 <= k and n >= 2k - 1 (k = {threshold}, n = {n})")
                }),
                Algorithm::Ed25519 => (threshold == 0 || usize::from(threshold) > n)
                    .then(|| format!("threshold must be in 1..=n (k = {threshold}, n = {n})")),
                other => Some(format!("no DKG for {}", other.name())),
            };
        }
        let setup = DkgSetup {
            run,
            algorithm,
            threshold,
            me: FIRST,
            parties,
            dealers: dealers.keys().copied().collect(),
        };
        let op = self.new_op(Op::Dkg(Box::new(DkgOp {
            setup,
            key_parties,
            dealers,
            round: 1,
            asked: HashMap::new(),
            returned: BTreeMap::new(),
            for_absent: BTreeMap::new(),
            created: BTreeMap::new(),
        })));
        if let Some(why) = problem {
            self.finish_created(op, Err(SignError::BadRequest(why)));
            return op;
        }
        let Some(Op::Dkg(d)) = self.ops.get(&op) else {
            return op;
        };
        if d.dealers.len() < usize::from(threshold) {
            let err = unavailable(d.dealers.len(), usize::from(threshold), &[], &[]);
            self.finish_created(op, Err(err));
            return op;
        }
        let starts: Vec<(SignerId, NodeIndex, RequestBody)> = d
            .dealers
            .iter()
            .map(|(id, node)| {
                let setup = DkgSetup {
                    me: *id,
                    ..d.setup.clone()
                };
                (*id, *node, RequestBody::DkgStart(setup))
            })
            .collect();
        self.dkg_send_round(op, starts, now);
        op
    }

    fn dkg_send_round(&mut self, op: OpId, requests: Vec<(SignerId, NodeIndex, RequestBody)>, now: Instant) {
        for (id, node, body) in requests {
            let request = self.next_request;
            if let Err(e) = self.send(op, node, self.fresh_session(), self.unix_at(now), body, now) {
                self.finish_created(op, Err(SignError::Frame(e)));
                return;
            }
            if let Some(Op::Dkg(d)) = self.ops.get_mut(&op) {
                d.asked.insert(request, id);
            }
        }
    }

    fn finish_created(&mut self, op: OpId, result: Result<KeyId, SignError>) {
        if self.ops.remove(&op).is_some() {
            self.events.push_back(Event::Created { op, result });
        }
    }

    pub(super) fn dkg_abort(&mut self, op: OpId, culprits: Vec<NodeIndex>, detail: String) {
        let names = culprits.iter().map(|n| self.node_name(*n)).collect();
        tracing::warn!(%detail, "DKG run aborted");
        self.finish_created(
            op,
            Err(SignError::Aborted {
                culprits: names,
                detail,
            }),
        );
    }

    /// A dealer's answer in a DKG run.
    pub(super) fn dkg_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let Some(Op::Dkg(d)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(id) = d.asked.remove(&request) else {
            return;
        };
        let run = d.setup.run;
        let round = d.round;
        match body {
            ResponseBody::Envelopes(envs) if round < 4 => {
                let checked = match self.checked_envelopes(node, id, run, round, &envs) {
                    Ok(c) => c,
                    Err(why) => {
                        self.dkg_abort(op, vec![node], why);
                        return;
                    }
                };
                let Some(Op::Dkg(d)) = self.ops.get_mut(&op) else {
                    return;
                };
                d.returned.insert(id, checked);
                if d.asked.is_empty() {
                    self.dkg_next_round(op, now);
                }
            }
            ResponseBody::KeyCreated(info) if round == 4 => {
                d.created.insert(id, info);
                if d.asked.is_empty() {
                    self.dkg_register(op, now);
                }
            }
            ResponseBody::Aborted { culprits, detail } => {
                let nodes: Vec<NodeIndex> = culprits
                    .iter()
                    .filter_map(|c| d.key_parties.get(c).copied())
                    .collect();
                let detail = format!("{} reports: {detail}", self.node_name(node));
                self.dkg_abort(op, nodes, detail);
            }
            other => {
                let detail = format!("{} answered {other:?} in DKG round {round}", self.node_name(node));
                self.dkg_abort(op, vec![node], detail);
            }
        }
    }

    fn dkg_next_round(&mut self, op: OpId, now: Instant) {
        let Some(Op::Dkg(d)) = self.ops.get_mut(&op) else {
            return;
        };
        let run = d.setup.run;
        let next = d.round + 1;
        let returned = std::mem::take(&mut d.returned);
        let (inboxes, elsewhere) = route_envelopes(&returned, d.dealers.keys().copied());
        if d.round == 2 {
            // What an offline party needs: every dealer's round-2 broadcast and the shares sealed to it.
            for absent in d.key_parties.keys().filter(|p| !d.dealers.contains_key(p)) {
                let kept = d.for_absent.entry(*absent).or_default();
                for env in returned.values().flatten().filter(|e| e.route.to.is_none()) {
                    kept.push(env.encode());
                }
            }
            for (to, bytes) in elsewhere {
                if d.key_parties.contains_key(&to) {
                    d.for_absent.entry(to).or_default().push(bytes);
                }
            }
        }
        d.round = next;
        let requests = inboxes
            .into_iter()
            .filter_map(|(id, inbox)| {
                let node = *d.dealers.get(&id)?;
                Some((
                    id,
                    node,
                    RequestBody::DkgRound {
                        run,
                        round: next,
                        inbox,
                    },
                ))
            })
            .collect();
        self.dkg_send_round(op, requests, now);
    }

    fn dkg_register(&mut self, op: OpId, now: Instant) {
        let Some(Op::Dkg(d)) = self.ops.get(&op) else {
            return;
        };
        let mut infos = d.created.iter();
        let Some((_, first)) = infos.next() else { return };
        let agreed = d.created.iter().all(|(id, info)| {
            info.signer == *id
                && info.key == first.key
                && info.public == first.public
                && info.algorithm == d.setup.algorithm
                && info.threshold == d.setup.threshold
                && usize::from(info.parties) == d.key_parties.len()
        });
        if !agreed {
            let detail = "dealers disagree on the public key set; key not registered".to_string();
            let key = first.key;
            let dealers: Vec<NodeIndex> = d.dealers.values().copied().collect();
            for node in dealers {
                self.send_unanswered(node, RequestBody::DeleteKey { key }, now);
            }
            self.dkg_abort(op, Vec::new(), detail);
            return;
        }
        let info = first.clone();
        let holders = d.key_parties.clone();
        let deliveries: Vec<(NodeIndex, RequestBody)> = d
            .key_parties
            .iter()
            .filter(|(id, _)| !d.dealers.contains_key(id))
            .map(|(id, node)| {
                let body = RequestBody::DkgDeliver {
                    setup: DkgSetup {
                        me: *id,
                        ..d.setup.clone()
                    },
                    key: info.key,
                    inbox: d.for_absent.get(id).cloned().unwrap_or_default(),
                };
                (*node, body)
            })
            .collect();
        if let Err(e) = self.register_key(&info, holders) {
            self.dkg_abort(op, Vec::new(), e);
            return;
        }
        for (node, body) in deliveries {
            self.ec.deliveries.entry(node).or_default().insert(info.key, body);
            if self.is_connected(node) {
                self.send_delivery(node, info.key, now);
            }
        }
        self.finish_created(op, Ok(info.key));
    }

    fn send_delivery(&mut self, node: NodeIndex, key: KeyId, now: Instant) {
        let Some(body) = self.ec.deliveries.get(&node).and_then(|m| m.get(&key)).cloned() else {
            return;
        };
        let op = self.new_op(Op::Deliver { node, key });
        if self
            .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
            .is_err()
        {
            self.ops.remove(&op);
        }
    }

    /// Sends a returning node the DKG results it missed.
    pub(super) fn deliver_missed(&mut self, node: NodeIndex, now: Instant) {
        let keys: Vec<KeyId> = self
            .ec
            .deliveries
            .get(&node)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for key in keys {
            self.send_delivery(node, key, now);
        }
    }

    /// Key ids whose shares still wait for delivery to `node`.
    pub fn pending_deliveries(&self, node: NodeIndex) -> Vec<KeyId> {
        self.ec
            .deliveries
            .get(&node)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The answer to a delivery (`Err`: the request failed); a delivered key is not sent again.
    pub(super) fn delivery_answered(&mut self, op: OpId, result: Result<ResponseBody, String>) {
        let Some(Op::Deliver { node, key }) = self.ops.remove(&op) else {
            return;
        };
        let done = match &result {
            Ok(ResponseBody::KeyCreated(info)) => info.key == key,
            Ok(ResponseBody::Error { code, .. }) => *code == crate::wire::ErrorCode::KeyExists,
            _ => false,
        };
        if done {
            if let Some(m) = self.ec.deliveries.get_mut(&node) {
                m.remove(&key);
            }
            tracing::info!(node = %self.node_name(node), %key, "DKG share delivered");
        } else {
            tracing::warn!(node = %self.node_name(node), %key, ?result, "DKG share delivery failed; retried on reconnect");
        }
    }

    // ------------------------------------------------------------------ FROST

    /// Starts an Ed25519 signature (called by `start_sign` for Ed25519 keys).
    pub(super) fn start_frost_sign(&mut self, key: KeyId, message: Vec<u8>, now: Instant) -> OpId {
        let op = self.new_op(Op::FrostSign(Box::new(FrostSignOp {
            key,
            message,
            package: None,
            asked: HashMap::new(),
            shares: BTreeMap::new(),
            tries: Tries::default(),
        })));
        self.ec.frost.entry(key).or_default().waiting.push_back(op);
        self.frost_serve(key, now);
        op
    }

    fn frost_holders(&self, key: &KeyId, now: Instant) -> Vec<(SignerId, NodeIndex)> {
        let Some(k) = self.keys.get(key) else {
            return Vec::new();
        };
        let mut c: Vec<(SignerId, NodeIndex)> = k
            .holders
            .iter()
            .filter(|(_, n)| self.usable(**n, now))
            .map(|(s, n)| (*s, *n))
            .collect();
        c.sort_by_key(|(_, idx)| self.health_rank(*idx, now));
        c
    }

    /// Asks up to `k + 1` usable holders for `count` fresh session commitments.
    fn frost_refill(&mut self, key: KeyId, count: usize, now: Instant) -> bool {
        let Some(k) = self.keys.get(&key).map(|k| usize::from(k.threshold)) else {
            return false;
        };
        let holders = self.frost_holders(&key, now);
        if holders.len() < k {
            return false;
        }
        let asked: Vec<(SignerId, NodeIndex)> = holders.into_iter().take(k + 1).collect();
        let sessions: Vec<SessionId> = (0..count).map(|_| self.fresh_session()).collect();
        let pool = self.ec.frost.entry(key).or_default();
        for s in &sessions {
            pool.entries.insert(
                *s,
                FrostEntry {
                    commitments: BTreeMap::new(),
                    awaiting: asked.len(),
                },
            );
            pool.order.push_back(*s);
        }
        pool.refills += asked.len();
        for (signer, node) in asked {
            let op = self.new_op(Op::FrostRefill {
                key,
                signer,
                sessions: sessions.clone(),
            });
            let body = RequestBody::FrostCommit {
                key,
                sessions: sessions.clone(),
            };
            if self
                .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
                .is_err()
            {
                self.ops.remove(&op);
                self.frost_refill_done(key, node, signer, &sessions, None);
            }
        }
        true
    }

    /// A refill request's answer (`None`: it failed): records the commitments and serves waiting signatures.
    pub(super) fn frost_refill_answered(
        &mut self,
        op: OpId,
        node: NodeIndex,
        commitments: Option<Vec<Vec<u8>>>,
        now: Instant,
    ) {
        let Some(Op::FrostRefill {
            key,
            signer,
            sessions,
        }) = self.ops.remove(&op)
        else {
            return;
        };
        self.frost_refill_done(key, node, signer, &sessions, commitments);
        self.frost_serve(key, now);
    }

    /// A refill request ended (`commitments` when it succeeded).
    fn frost_refill_done(
        &mut self,
        key: KeyId,
        node: NodeIndex,
        signer: SignerId,
        sessions: &[SessionId],
        commitments: Option<Vec<Vec<u8>>>,
    ) {
        let decoded: Option<Vec<round1::Commitment>> = commitments.and_then(|c| {
            let d: Vec<round1::Commitment> = c
                .iter()
                .filter_map(|b| round1::Commitment::decode(b).ok())
                .collect();
            (d.len() == sessions.len() && d.iter().zip(sessions).all(|(c, s)| c.session == *s)).then_some(d)
        });
        let Some(pool) = self.ec.frost.get_mut(&key) else {
            return;
        };
        pool.refills = pool.refills.saturating_sub(1);
        for (i, s) in sessions.iter().enumerate() {
            if let Some(e) = pool.entries.get_mut(s) {
                e.awaiting = e.awaiting.saturating_sub(1);
                if let Some(c) = decoded.as_ref().and_then(|d| d.get(i)) {
                    e.commitments.insert(signer, (node, *c));
                }
            }
        }
    }

    fn frost_pool_config(&self) -> (usize, usize) {
        (self.cfg.frost_low_watermark, self.cfg.frost_high_watermark.max(1))
    }

    /// Serves waiting signatures of `key` from the pool and refills it when low.
    pub(super) fn frost_serve(&mut self, key: KeyId, now: Instant) {
        let Some(k) = self.keys.get(&key).map(|k| usize::from(k.threshold)) else {
            let waiting: Vec<OpId> = self
                .ec
                .frost
                .remove(&key)
                .map(|p| p.waiting.into())
                .unwrap_or_default();
            for op in waiting {
                self.finish_sign(op, Err(SignError::UnknownKey(key)));
            }
            return;
        };
        loop {
            let Some(pool) = self.ec.frost.get(&key) else {
                return;
            };
            let Some(&op) = pool.waiting.front() else { break };
            let avoid = match self.ops.get(&op) {
                Some(Op::FrostSign(s)) => s.tries.avoid.clone(),
                _ => {
                    if let Some(p) = self.ec.frost.get_mut(&key) {
                        p.waiting.pop_front();
                    }
                    continue;
                }
            };
            // The first session with k usable commitments; sessions that can no longer get there are dropped.
            let mut chosen = None;
            let mut dead = Vec::new();
            for s in &pool.order {
                let Some(e) = pool.entries.get(s) else { continue };
                let mut usable: Vec<(SignerId, NodeIndex, round1::Commitment)> = e
                    .commitments
                    .iter()
                    .filter(|(_, (n, _))| self.usable(*n, now) && !avoid.contains(n))
                    .map(|(id, (n, c))| (*id, *n, *c))
                    .collect();
                if usable.len() >= k {
                    usable.sort_by_key(|(_, n, _)| self.health_rank(*n, now));
                    usable.truncate(k);
                    chosen = Some((*s, usable));
                    break;
                }
                if e.awaiting == 0 && e.commitments.len() < k {
                    dead.push(*s);
                }
            }
            let Some(pool) = self.ec.frost.get_mut(&key) else {
                return;
            };
            for s in dead {
                pool.entries.remove(&s);
                pool.order.retain(|x| *x != s);
            }
            let Some((session, signers)) = chosen else { break };
            pool.waiting.pop_front();
            pool.entries.remove(&session);
            pool.order.retain(|x| *x != session);
            self.frost_send(op, session, signers, now);
        }
        // Refill below the low watermark, or when signatures wait and nothing is on the way.
        let (low, high) = self.frost_pool_config();
        let Some(pool) = self.ec.frost.get(&key) else {
            return;
        };
        let stock = pool.entries.len();
        let starving = !pool.waiting.is_empty() && pool.refills == 0;
        if (stock < low && pool.refills == 0) || starving {
            let want = high.saturating_sub(stock).max(pool.waiting.len()).max(1);
            if !self.frost_refill(key, want, now) && starving {
                let available = self.frost_holders(&key, now).len();
                let waiting: Vec<OpId> = self
                    .ec
                    .frost
                    .get_mut(&key)
                    .map(|p| p.waiting.drain(..).collect())
                    .unwrap_or_default();
                for op in waiting {
                    let err = match self.ops.get(&op) {
                        Some(Op::FrostSign(s)) => {
                            unavailable(available, k, &s.tries.failures, &s.tries.culprits)
                        }
                        _ => unavailable(available, k, &[], &[]),
                    };
                    self.finish_sign(op, Err(err));
                }
            }
        }
    }

    fn frost_send(
        &mut self,
        op: OpId,
        session: SessionId,
        signers: Vec<(SignerId, NodeIndex, round1::Commitment)>,
        now: Instant,
    ) {
        let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let commitments = signers.iter().map(|(id, _, c)| (*id, *c)).collect();
        let package = match SigningPackage::new(session, s.message.clone(), commitments) {
            Ok(p) => p,
            Err(e) => {
                self.finish_sign(op, Err(SignError::BadRequest(e.to_string())));
                return;
            }
        };
        let encoded = package.encode();
        let key = s.key;
        s.package = Some(package);
        s.shares.clear();
        s.asked.clear();
        s.tries.attempts += 1;
        for (id, node, _) in signers {
            let request = self.next_request;
            let body = RequestBody::FrostSign {
                key,
                package: encoded.clone(),
            };
            if let Err(e) = self.send(op, node, self.fresh_session(), self.unix_at(now), body, now) {
                self.finish_sign(op, Err(SignError::Frame(e)));
                return;
            }
            if let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) {
                s.asked.insert(request, (id, node));
            }
        }
    }

    /// Puts a FROST signature back in line for another session, avoiding `node`, or fails it after too many
    /// attempts.
    fn frost_retry(&mut self, op: OpId, avoid: Option<NodeIndex>, why: Option<String>, now: Instant) {
        let avoid = avoid.map(|n| (n, self.node_name(n), why.unwrap_or_default()));
        let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        s.asked.clear();
        s.shares.clear();
        s.package = None;
        let key = s.key;
        let needed = self.keys.get(&key).map_or(0, |k| usize::from(k.threshold));
        if let Some(err) = s.tries.failed(avoid, MAX_FROST_ATTEMPTS, needed) {
            self.finish_sign(op, Err(err));
            return;
        }
        self.ec.frost.entry(key).or_default().waiting.push_front(op);
        self.frost_serve(key, now);
    }

    /// A FROST signature request failed at `node` (error, timeout, disconnection).
    pub(super) fn frost_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let Some(Op::FrostSign(s)) = self.ops.get(&op) else {
            return;
        };
        if !s.asked.contains_key(&request) {
            return;
        }
        self.frost_retry(op, Some(node), Some(why), now);
    }

    /// A FROST signature share arrived.
    pub(super) fn frost_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some((expected, _)) = s.asked.remove(&request) else {
            return;
        };
        let share = match body {
            ResponseBody::Share { signer, share } if signer == expected => {
                round2::SignatureShare::decode(&share).ok()
            }
            _ => None,
        };
        let Some(share) = share else {
            let key = s.key;
            self.culprit(op, node, key, "sent a malformed FROST share");
            self.frost_retry(op, Some(node), None, now);
            return;
        };
        s.shares.insert(expected, share);
        if !s.asked.is_empty() {
            return;
        }
        let key = s.key;
        let (Some(package), Some(pk)) = (
            s.package.as_ref(),
            self.keys.get(&key).and_then(|k| k.public.as_ed25519()),
        ) else {
            return;
        };
        match ed25519::aggregate(pk, package, &s.shares) {
            Ok(sig) if pk.verify(&s.message, &sig).is_ok() => {
                let culprits = s.tries.culprits.clone();
                self.finish_sign(
                    op,
                    Ok(Signature {
                        bytes: sig.to_bytes().to_vec(),
                        culprits,
                    }),
                );
                self.frost_serve(key, now);
            }
            Err(e) if !e.culprits().is_empty() => {
                let holders = self.keys.get(&key).map(|k| k.holders.clone()).unwrap_or_default();
                for c in e.culprits() {
                    if let Some(&n) = holders.get(&c) {
                        self.culprit(op, n, key, "sent an invalid FROST signature share");
                    }
                }
                self.frost_retry(op, None, None, now);
            }
            other => {
                tracing::error!(?other, "FROST shares did not combine and nobody was blamed");
                self.frost_retry(op, None, None, now);
            }
        }
    }

    /// Names `node` a culprit for `key`: excluded, reported in an event and in the operation's result.
    pub(super) fn culprit(&mut self, op: OpId, node: NodeIndex, key: KeyId, what: &str) {
        let name = self.node_name(node);
        tracing::error!(node = %name, %key, what, "node misbehaved; excluded");
        self.exclude(node, format!("{what} for key {key}"));
        self.events.push_back(Event::Culprit {
            node,
            name: name.clone(),
            key,
        });
        if let Some(t) = self.ops.get_mut(&op).and_then(Op::tries_mut) {
            if !t.culprits.contains(&name) {
                t.culprits.push(name);
            }
            t.avoid.insert(node);
        }
    }

    /// Drops the commitments a node made (its nonces are gone if it restarts).
    pub(super) fn frost_forget_node(&mut self, node: NodeIndex) {
        for pool in self.ec.frost.values_mut() {
            for e in pool.entries.values_mut() {
                e.commitments.retain(|_, (n, _)| *n != node);
            }
        }
    }

    /// Keys with FROST signatures waiting.
    pub(super) fn frost_keys_waiting(&self) -> Vec<KeyId> {
        self.ec
            .frost
            .iter()
            .filter(|(_, p)| !p.waiting.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Fills the FROST pool of `key` up to the high watermark now (e.g. right after creating the key).
    pub fn prefill(&mut self, key: KeyId, now: Instant, unix_ms: u64) {
        self.observe_clock(now, unix_ms);
        match self.keys.get(&key).map(|k| k.algorithm) {
            Some(Algorithm::Ed25519) => {
                self.ec.frost.entry(key).or_default();
                self.frost_serve(key, now);
            }
            Some(Algorithm::EcdsaP256) => self.ecdsa_prefill(key, now),
            _ => {}
        }
    }

    /// Sessions ready in the FROST pool of `key` (for monitoring and tests).
    pub fn frost_pool_len(&self, key: &KeyId) -> usize {
        self.ec.frost.get(key).map_or(0, |p| p.entries.len())
    }
}
