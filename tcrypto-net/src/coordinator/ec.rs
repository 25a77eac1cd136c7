//! The coordinator's EC operations: key creation by DKG across the nodes, and FROST signing from a pool of
//! pre-made nonce commitments.
//!
//! **DKG.** The dealers are the holders connected when the run starts (at least `k`; all `n` is not needed).
//! The coordinator relays every round: it checks each envelope a dealer returns (signed by that dealer's identity
//! key, routed from its party id, for this run and round) and hands each dealer the other dealers' broadcasts and
//! the envelopes sealed to it. A dealer that answers a bad envelope, an error, or not at all aborts the run (named
//! in the error; the caller may run again without it). After round 4 every dealer answers the public key set it
//! stored; the key is registered only if all agree. When round 3 carried a complaint about a private share,
//! rounds 4 to 6 are `tcrypto::dkg::resolve` (answers, confirmation echo, outcome; see `crate::node::ec::dkg`): every
//! dealer answers `KeyResolved` with the key of the qualified dealers and the parties named (a dealer whose
//! answer does not open its commitments is disqualified, an accuser whose complaint was refuted is named); the
//! key is registered when all agree (a named dealer may refuse, if at least `k` agree), the named nodes are
//! excluded and reported as [`Event::Culprit`], and offline parties are delivered the qualified dealers' shares.
//!
//! **Commit and roll-back.** Dealers store their share tentatively at the end of the run; once every dealer
//! reported the same key, the coordinator sends `DkgCommit` to each and the key is registered and reported
//! created as soon as one dealer confirmed (a dealer that did not answer commits when it returns, below). If the
//! run fails before, or no dealer confirms, `DeleteKey` rolls the tentative shares back on every reachable
//! dealer, and a `KeyCreated` answer arriving after the run was aborted is rolled back too.
//!
//! **Deliveries and settling.** For each party that was offline, the coordinator keeps every dealer's round-2
//! broadcast and the share sealed to it, and delivers them when the node connects again (they can be kept across
//! coordinator restarts: [`Coordinator::encode_deliveries`], [`Coordinator::restore_deliveries`],
//! `Cluster::keep_deliveries_in`). The dealers keep the same (each its own part, in its store), so no state lives
//! only in one coordinator: every coordinator asks each node that connects for `DkgPending` (its served keys,
//! tentative shares with their age, kept deliveries) and settles: a tentative share of a key that some node
//! serves is committed; one older than [`super::CoordinatorConfig::dkg_rollback_after`] whose key no node serves
//! is, once every node that may have dealt has reported, given up on every such node (`DkgAbandon`: each node
//! records it before it answers and from then on refuses the creator's commit, or answers that it serves the key
//! already) and then deleted everywhere, or committed everywhere when some node served it after all. A node
//! that the dealers list as an absent party of the creation (it was down during the run) need not report: it
//! holds no tentative share, so no commit can have reached it. A dealer that is down is always waited for, for
//! as long as it stays away: it may have committed the key before it went down (and its creator reported the key
//! created on that commit), which nobody else can tell, so rolling back without it could destroy a created key. Per node the creator's commit
//! and a settling coordinator's abandonment are thus ordered, and a creation a second coordinator rolls back
//! can never end up served by some nodes only; a party that some dealer keeps a delivery for is delivered it once
//! every qualified dealer's part is in, and the dealers drop their parts on `DkgDelivered`. All of it is
//! broadcasts and envelopes sealed to their recipients, nothing the coordinator can open.
//!
//! **FROST.** Per Ed25519 key, a pool of signing sessions, each with the nonce commitments of `k` holders (plus
//! [`CoordinatorConfig::frost_spare_holders`] spares, none by default), is refilled in batches whenever it falls
//! below the low watermark. A signature takes one session from the pool and is one round trip to `k` holders. A share that fails verification names its node, which is
//! excluded, and so does a node that refuses a package as not matching its nonces (the package carries the
//! commitment that node sent, so it committed to other nonces than it holds); a node that fails or disconnects
//! is avoided and another session is taken.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use tcrypto::ed25519::{self, SigningPackage, round1, round2};
use tcrypto::{KeyId, SessionId, SignerId};

use super::pool::{Pool, PoolKind, Stocked};
use super::{Coordinator, CoordinatorConfig, Event, NodeIndex, Op, OpId, SignError, Signature};
use crate::transport::sealed::Envelope;
use crate::transport::wire::{
    Algorithm, DkgSetup, KeptDelivery, KeyInfo, Request, RequestBody, RequestId, ResponseBody,
};
use tcrypto::codec::{DecodeError, Reader, Writer};

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
    /// Changes of `deliveries` so far (a caller keeping them on disk rewrites its copy when this moves).
    deliveries_version: u64,
    /// FROST session pools, by key.
    frost: HashMap<KeyId, Pool<FrostEntry>>,
    /// What each node last answered to [`RequestBody::DkgPending`] (since it connected).
    reports: BTreeMap<NodeIndex, PendingReport>,
    /// Key creations being given up ([`RequestBody::DkgAbandon`] sent to every node), by key.
    abandoning: BTreeMap<KeyId, Abandoning>,
}

/// An abandonment of a key creation in progress: the nodes not answered yet and what the others said.
#[derive(Debug, Default)]
struct Abandoning {
    waiting: BTreeSet<NodeIndex>,
    /// Some node serves the key (its creator's commit came first there): commit it everywhere instead.
    served: bool,
    /// Some node did not acknowledge: nothing is deleted; a later settlement tries again.
    failed: bool,
    /// Nodes whose failure to answer does not count: absent parties of the creation that had not reported.
    optional: BTreeSet<NodeIndex>,
}

impl EcState {
    /// Drops the FROST session pool of `key` (its nonces belong to a sharing that is gone).
    pub(super) fn forget_pool(&mut self, key: &KeyId) {
        self.frost.remove(key);
    }
}

/// A node's answer to [`RequestBody::DkgPending`].
#[derive(Debug, Default)]
struct PendingReport {
    held: BTreeSet<KeyId>,
    /// Tentative shares not yet committed or rolled back by this coordinator, with their age when reported.
    tentative: BTreeMap<KeyId, u64>,
    kept: Vec<crate::transport::wire::KeptDelivery>,
}

/// The deliveries dealers keep for one key, gathered from their reports.
struct Gathered {
    /// The run's setup (dealers: the qualified ones).
    setup: DkgSetup,
    /// Each dealer's part (broadcast and sealed shares), with the node that reported it.
    by_dealer: BTreeMap<SignerId, (NodeIndex, Vec<Vec<u8>>)>,
    /// The parties that some dealer still keeps a delivery for.
    absent: BTreeSet<SignerId>,
}

/// Round number of a DKG run's commit step (after the last protocol round).
const COMMIT_ROUND: u8 = 10;

/// A DKG run whose dealers agreed on the key: the commit step is under way.
#[derive(Debug)]
struct Commit {
    info: KeyInfo,
    named: Vec<SignerId>,
    disqualified: Vec<SignerId>,
    /// Dealers that answered the commit.
    committed: usize,
}

/// A FROST signing session of the pool: the holders that committed to nonces for it.
#[derive(Debug)]
pub(super) struct FrostEntry {
    session: SessionId,
    members: BTreeMap<SignerId, NodeIndex>,
    commitments: BTreeMap<SignerId, round1::Commitment>,
    /// Holders asked whose answer is still due.
    awaiting: usize,
}

impl Stocked for FrostEntry {
    fn members(&self) -> &BTreeMap<SignerId, NodeIndex> {
        &self.members
    }

    fn filling(&self) -> bool {
        self.awaiting > 0
    }
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
    /// After a resolution round: what each dealer reports (parties named, dealers disqualified).
    resolved: BTreeMap<SignerId, (Vec<SignerId>, Vec<SignerId>)>,
    /// Dealers that aborted the last resolution round (accepted only if the others named them).
    dissent: BTreeMap<SignerId, String>,
    /// The commit step, once the dealers agreed.
    commit: Option<Commit>,
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
    /// Pool entries (sessions, presignatures) tried.
    pub(super) attempts: u32,
}

impl Tries {
    /// Records a failed attempt (`avoid`: the node at fault and why, if one was); returns whether the `max`
    /// attempts are used up.
    pub(super) fn failed(&mut self, avoid: Option<(NodeIndex, String, String)>, max: u32) -> bool {
        if let Some((node, name, why)) = avoid {
            self.avoid_node(node, name, why);
        }
        self.attempts >= max
    }

    /// Records that `node` (named `name`) failed for `why` (empty: no failure to report) and is not asked again.
    pub(super) fn avoid_node(&mut self, node: NodeIndex, name: String, why: String) {
        self.avoid.insert(node);
        if !why.is_empty() {
            self.failures.push((name, why));
        }
    }
}

impl Op {
    /// The attempts record of a pooled EC signature.
    pub(super) fn tries(&self) -> Option<&Tries> {
        match self {
            Op::FrostSign(s) => Some(&s.tries),
            Op::EcdsaSign(s) => Some(&s.tries),
            Op::DklsSign(s) => Some(&s.tries),
            _ => None,
        }
    }

    /// The key a signature operation signs with.
    pub(super) fn signing_key(&self) -> Option<KeyId> {
        match self {
            Op::Sign(s) => Some(s.key),
            Op::FrostSign(s) => Some(s.key),
            Op::EcdsaSign(s) => Some(s.key),
            Op::DklsSign(s) => Some(s.key),
            _ => None,
        }
    }

    /// The attempts record of a pooled EC signature, mutable.
    pub(super) fn tries_mut(&mut self) -> Option<&mut Tries> {
        match self {
            Op::FrostSign(s) => Some(&mut s.tries),
            Op::EcdsaSign(s) => Some(&mut s.tries),
            Op::DklsSign(s) => Some(&mut s.tries),
            _ => None,
        }
    }
}

/// A delivery's request body in a request frame of its own (no id, session or time: those are made when it is
/// sent), for [`Coordinator::encode_deliveries`].
fn delivery_request(body: RequestBody) -> Request {
    Request {
        id: 0,
        session: SessionId([0; 32]),
        issued_at_ms: 0,
        body,
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
                // Any k: keys with n >= 2k - 1 also presign (the fast path); the others sign with DKLs23 only.
                Algorithm::EcdsaP256 | Algorithm::Ed25519 => (threshold == 0 || usize::from(threshold) > n)
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
            resolved: BTreeMap::new(),
            dissent: BTreeMap::new(),
            commit: None,
        })));
        if let Some(why) = problem {
            self.finish_created(op, Err(SignError::BadRequest(why)));
            return op;
        }
        let Some(Op::Dkg(d)) = self.ops.get(&op) else {
            return op;
        };
        if d.dealers.len() < usize::from(threshold) {
            let err = self.unavailable(d.dealers.len(), usize::from(threshold), &[], &[]);
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

    pub(super) fn dkg_abort(&mut self, op: OpId, culprits: Vec<NodeIndex>, detail: String, now: Instant) {
        let names = culprits.iter().map(|n| self.node_name(*n)).collect();
        tracing::warn!(%detail, "DKG run aborted");
        // Dealers may have stored the share tentatively: roll it back on every reachable dealer (an unreachable
        // one is rolled back when it returns: `Coordinator::settle_pending`).
        if let Some(Op::Dkg(d)) = self.ops.get(&op) {
            let keys: BTreeSet<KeyId> = d.created.values().map(|i| i.key).collect();
            let dealers: Vec<NodeIndex> = d.dealers.values().copied().collect();
            for key in keys {
                for &node in &dealers {
                    if self.is_connected(node) {
                        self.send_unanswered(node, RequestBody::DeleteKey { key }, now);
                    }
                }
            }
        }
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
            // Rounds 4 and 5 return envelopes only in a run that resolves complaints (module docs of
            // `crate::node::ec::dkg`); every dealer sees the same complaints, so all answer alike.
            ResponseBody::Envelopes(envs) if round < 6 && d.created.is_empty() => {
                let checked = match self.checked_envelopes(node, id, run, round, &envs) {
                    Ok(c) => c,
                    Err(why) => {
                        self.dkg_abort(op, vec![node], why, now);
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
            ResponseBody::KeyCreated(info) if round == 4 && d.returned.is_empty() => {
                d.created.insert(id, info);
                if d.asked.is_empty() {
                    self.dkg_register(op, now);
                }
            }
            ResponseBody::KeyResolved {
                info,
                culprits,
                disqualified,
            } if round == 6 => {
                d.created.insert(id, info);
                d.resolved.insert(id, (culprits, disqualified));
                if d.asked.is_empty() {
                    self.dkg_register(op, now);
                }
            }
            ResponseBody::Done if round == COMMIT_ROUND => {
                if let Some(c) = d.commit.as_mut() {
                    c.committed += 1;
                }
                if d.asked.is_empty() {
                    self.dkg_committed(op, now);
                }
            }
            ResponseBody::Aborted { detail, .. } if round == 6 => {
                // A dealer that the resolution names may refuse its outcome; the others decide (dkg_register).
                d.dissent.insert(id, detail);
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
                self.dkg_abort(op, nodes, detail, now);
            }
            other => {
                let detail = format!("{} answered {other:?} in DKG round {round}", self.node_name(node));
                self.dkg_abort(op, vec![node], detail, now);
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
        let mut reports = d.resolved.values();
        let resolution = reports.next().cloned();
        // After a resolution, at least k dealers must agree, and only dealers they all named may have refused.
        let dissent_named = resolution
            .as_ref()
            .is_some_and(|(named, _)| d.dissent.keys().all(|id| named.contains(id)));
        let agreed = agreed
            && reports.all(|r| Some(r) == resolution.as_ref())
            && (resolution.is_none() || d.resolved.len() == d.created.len())
            && (d.dissent.is_empty() || (dissent_named && d.created.len() >= usize::from(d.setup.threshold)));
        if !agreed {
            let detail = "dealers disagree on the public key set; key not registered".to_string();
            let key = first.key;
            let dealers: Vec<NodeIndex> = d.dealers.values().copied().collect();
            for node in dealers {
                self.send_unanswered(node, RequestBody::DeleteKey { key }, now);
            }
            self.dkg_abort(op, Vec::new(), detail, now);
            return;
        }
        let info = first.clone();
        #[cfg(feature = "test-support")]
        if self.cfg.test_halt_before_commit {
            let detail = format!("halted before the commit of key {} (test)", info.key);
            self.finish_created(
                op,
                Err(SignError::Aborted {
                    culprits: Vec::new(),
                    detail,
                }),
            );
            return;
        }
        let (named, disqualified) = resolution.unwrap_or_default();
        // The commit step: every dealer that stored the share is told to serve it; the key exists once one did.
        let requests: Vec<(SignerId, NodeIndex, RequestBody)> = d
            .dealers
            .iter()
            .filter(|(id, _)| d.created.contains_key(id))
            .map(|(id, node)| (*id, *node, RequestBody::DkgCommit { key: info.key }))
            .collect();
        if let Some(Op::Dkg(d)) = self.ops.get_mut(&op) {
            d.round = COMMIT_ROUND;
            d.commit = Some(Commit {
                info,
                named,
                disqualified,
                committed: 0,
            });
        }
        self.dkg_send_round(op, requests, now);
    }

    /// A DKG request failed at `node`: before the commit step the run is aborted (and rolled back); during it,
    /// the dealer just does not count as committed.
    pub(super) fn dkg_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let name = self.node_name(node);
        let Some(Op::Dkg(d)) = self.ops.get_mut(&op) else {
            return;
        };
        if d.round != COMMIT_ROUND {
            let detail = format!("{name} failed during key generation: {why}");
            return self.dkg_abort(op, Vec::new(), detail, now);
        }
        tracing::warn!(node = %name, %why, "DKG commit not answered; the node is settled when it returns");
        d.asked.remove(&request);
        if d.asked.is_empty() {
            self.dkg_committed(op, now);
        }
    }

    /// Every dealer answered the commit step (or failed): the key is registered and reported created when at
    /// least one dealer committed it, else rolled back on every dealer and reported failed.
    fn dkg_committed(&mut self, op: OpId, now: Instant) {
        let Some(Op::Dkg(d)) = self.ops.get(&op) else {
            return;
        };
        let Some(commit) = d.commit.as_ref() else { return };
        if commit.committed == 0 {
            let detail = "no dealer confirmed the commit of the new key; rolled back".to_string();
            let key = commit.info.key;
            let dealers: Vec<NodeIndex> = d.dealers.values().copied().collect();
            for node in dealers {
                self.send_unanswered(node, RequestBody::DeleteKey { key }, now);
            }
            self.dkg_abort(op, Vec::new(), detail, now);
            return;
        }
        let info = commit.info.clone();
        let named = commit.named.clone();
        let disqualified = commit.disqualified.clone();
        let holders = d.key_parties.clone();
        // A party that was offline sums the shares of the qualified dealers only.
        let qualified: Vec<SignerId> = d
            .setup
            .dealers
            .iter()
            .filter(|id| !disqualified.contains(id))
            .copied()
            .collect();
        let deliveries: Vec<(NodeIndex, RequestBody)> = d
            .key_parties
            .iter()
            .filter(|(id, _)| !d.dealers.contains_key(id))
            .map(|(id, node)| {
                let inbox = d
                    .for_absent
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter(|bytes| Envelope::decode(bytes).is_ok_and(|e| qualified.contains(&e.route.from)))
                    .cloned()
                    .collect();
                let body = RequestBody::DkgDeliver {
                    setup: DkgSetup {
                        me: *id,
                        dealers: qualified.clone(),
                        ..d.setup.clone()
                    },
                    key: info.key,
                    inbox,
                };
                (*node, body)
            })
            .collect();
        let culprits: Vec<NodeIndex> = named
            .iter()
            .filter_map(|id| d.key_parties.get(id).copied())
            .collect();
        if let Err(e) = self.register_key(&info, holders) {
            self.dkg_abort(op, Vec::new(), e, now);
            return;
        }
        for node in culprits {
            // Named by every dealer's resolution: a false accuser or a disqualified dealer.
            let why = format!("named in the DKG complaint resolution of key {}", info.key);
            self.name_culprit(node, info.key, why);
        }
        for (node, body) in deliveries {
            self.ec.deliveries_version += 1;
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

    /// Asks a node that just connected what it holds about key creations (tentative shares, kept deliveries).
    pub(super) fn ask_pending(&mut self, node: NodeIndex, now: Instant) {
        // Only a coordinator that knows the nodes' identities can tell parties apart (and run DKGs).
        if self.party_node(node).is_none() {
            return;
        }
        let op = self.new_op(Op::Pending);
        if self
            .send(
                op,
                node,
                self.fresh_session(),
                self.unix_at(now),
                RequestBody::DkgPending,
                now,
            )
            .is_err()
        {
            self.ops.remove(&op);
        }
    }

    /// A node's report is out of date once it disconnects.
    pub(super) fn forget_report(&mut self, node: NodeIndex) {
        self.ec.reports.remove(&node);
    }

    /// A node's answer to [`RequestBody::DkgPending`].
    pub(super) fn pending_answered(&mut self, node: NodeIndex, body: ResponseBody, now: Instant) {
        let ResponseBody::DkgPending {
            held,
            tentative,
            kept,
        } = body
        else {
            tracing::warn!(node = %self.node_name(node), "no answer to the pending-DKG query");
            return;
        };
        self.ec.reports.insert(
            node,
            PendingReport {
                held: held.into_iter().collect(),
                tentative: tentative.into_iter().collect(),
                kept,
            },
        );
        self.settle_pending(now);
    }

    /// Settles what the nodes' reports show, so that no key creation depends on the coordinator that ran it:
    /// - a tentative share whose key some node serves is committed (the creating coordinator committed it);
    /// - a tentative share older than [`super::CoordinatorConfig::dkg_rollback_after`] whose key no node serves,
    ///   once every node that may have dealt has reported ([`Coordinator::dealers_reported`]), is given up: every node records the abandonment
    ///   ([`RequestBody::DkgAbandon`], which its creator's late commit can no longer overtake), then the key is
    ///   deleted everywhere, or committed everywhere when some node answers that it serves the key after all
    ///   (its creator's commit reached it between its report and the abandonment);
    /// - a party that dealers keep a delivery for is delivered its share once every qualified dealer's part is
    ///   in (or, if it already serves the key, the dealers are told to drop it).
    fn settle_pending(&mut self, now: Instant) {
        let grace = u64::try_from(self.cfg.dkg_rollback_after.as_millis()).unwrap_or(u64::MAX);
        let served: BTreeSet<KeyId> = self
            .ec
            .reports
            .values()
            .flat_map(|r| r.held.iter().copied())
            .collect();
        let mut settle: Vec<(NodeIndex, KeyId, RequestBody)> = Vec::new();
        let mut abandon: BTreeSet<KeyId> = BTreeSet::new();
        for (&node, report) in &self.ec.reports {
            for (&key, &age) in &report.tentative {
                if served.contains(&key) {
                    settle.push((node, key, RequestBody::DkgCommitServed { key }));
                } else if age >= grace && self.dealers_reported(&key) {
                    abandon.insert(key);
                }
            }
        }
        for (node, key, body) in settle {
            if let Some(r) = self.ec.reports.get_mut(&node) {
                r.tentative.remove(&key);
            }
            self.send_unanswered(node, body, now);
        }
        for key in abandon {
            self.abandon_creation(key, now);
        }
        self.deliver_kept(&served, now);
    }

    /// Whether every node that may have been a dealer of the creation of `key` has reported, so that its
    /// tentative shares may be given up: every node, except those that every dealer reporting a kept delivery of
    /// `key` lists as an absent party (a party that did not deal). Such a party holds no tentative share, so no
    /// commit of its creator can have reached it, and it is delivered its share only once a dealer serves the key
    /// (which that dealer then reports). A node that dealt and is down is waited for: it may have committed the
    /// key before it went down (its creator then reported the key created), and nobody else can tell.
    fn dealers_reported(&self, key: &KeyId) -> bool {
        let unreported: Vec<NodeIndex> = (0..self.nodes.len())
            .filter(|n| !self.ec.reports.contains_key(n))
            .collect();
        if unreported.is_empty() {
            return true;
        }
        // What the dealers themselves say they keep for the absent parties of this creation.
        let entries: Vec<&KeptDelivery> = self
            .ec
            .reports
            .iter()
            .flat_map(|(&node, r)| r.kept.iter().map(move |k| (node, k)))
            .filter(|(node, k)| {
                k.key == *key
                    && k.setup.parties.get(usize::from(k.setup.me.get()) - 1).copied()
                        == self.party_node(*node)
            })
            .map(|(_, k)| k)
            .collect();
        !entries.is_empty()
            && unreported.iter().all(|&node| {
                let Some(identity) = self.party_node(node) else {
                    return false;
                };
                entries.iter().all(|k| {
                    k.absent
                        .iter()
                        .any(|party| k.setup.parties.get(usize::from(party.get()) - 1) == Some(&identity))
                })
            })
    }

    /// Gives the creation of `key` up on every node (see [`Coordinator::settle_pending`]); nodes that have not
    /// reported (absent parties of the creation, [`Coordinator::dealers_reported`]) are told too when they can
    /// be, but not waited for.
    fn abandon_creation(&mut self, key: KeyId, now: Instant) {
        if self.ec.abandoning.contains_key(&key) {
            return;
        }
        for r in self.ec.reports.values_mut() {
            r.tentative.remove(&key);
        }
        let optional: BTreeSet<NodeIndex> = (0..self.nodes.len())
            .filter(|n| !self.ec.reports.contains_key(n))
            .collect();
        tracing::warn!(
            %key,
            unreported = optional.len(),
            "abandoned key creation: every node that dealt records it, then it is rolled back"
        );
        self.ec.abandoning.insert(
            key,
            Abandoning {
                waiting: (0..self.nodes.len()).collect(),
                optional,
                ..Abandoning::default()
            },
        );
        for node in 0..self.nodes.len() {
            let op = self.new_op(Op::Abandon { key });
            let body = RequestBody::DkgAbandon { key };
            if self
                .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
                .is_err()
            {
                self.ops.remove(&op);
                self.abandon_answered(key, node, None, now);
            }
        }
    }

    /// A node's answer to [`RequestBody::DkgAbandon`] (`None`: the request failed). Once every node answered:
    /// delete the key everywhere when every node recorded the abandonment, commit it everywhere when one serves
    /// it, and leave it for a later settlement when one did not answer.
    pub(super) fn abandon_answered(
        &mut self,
        key: KeyId,
        node: NodeIndex,
        body: Option<ResponseBody>,
        now: Instant,
    ) {
        let Some(a) = self.ec.abandoning.get_mut(&key) else {
            return;
        };
        a.waiting.remove(&node);
        match body {
            Some(ResponseBody::Done) => {}
            Some(ResponseBody::Error {
                code: crate::transport::wire::ErrorCode::KeyExists,
                ..
            }) => a.served = true,
            // An absent party of the creation: it holds nothing of the key to record or refuse.
            _ if a.optional.contains(&node) => {}
            _ => a.failed = true,
        }
        if !a.waiting.is_empty() {
            return;
        }
        let Some(a) = self.ec.abandoning.remove(&key) else {
            return;
        };
        let body = if a.served {
            tracing::warn!(%key, "abandoned key creation is served by a node after all: committed everywhere");
            RequestBody::DkgCommitServed { key }
        } else if a.failed {
            tracing::warn!(%key, "abandoned key creation not recorded by every node; settled later");
            return;
        } else {
            tracing::warn!(%key, "abandoned key creation rolled back");
            RequestBody::DeleteKey { key }
        };
        for node in 0..self.nodes.len() {
            self.send_unanswered(node, body.clone(), now);
        }
    }

    /// Delivers the shares that dealers keep for parties that were offline (keys some node serves): once every
    /// qualified dealer's part is in, or tells the dealers to drop it if the party already serves the key.
    fn deliver_kept(&mut self, served: &BTreeSet<KeyId>, now: Instant) {
        let mut parts: BTreeMap<KeyId, Gathered> = BTreeMap::new();
        for (&node, report) in &self.ec.reports {
            for k in &report.kept {
                // A dealer reports its own part only (the envelopes are signed by it; the party checks them).
                let dealer = k.setup.parties.get(usize::from(k.setup.me.get()) - 1);
                if dealer.is_none() || dealer.copied() != self.party_node(node) {
                    continue;
                }
                let entry = parts.entry(k.key).or_insert_with(|| Gathered {
                    setup: k.setup.clone(),
                    by_dealer: BTreeMap::new(),
                    absent: BTreeSet::new(),
                });
                entry.by_dealer.insert(k.setup.me, (node, k.envelopes.clone()));
                entry.absent.extend(k.absent.iter().copied());
            }
        }
        for (
            key,
            Gathered {
                setup,
                by_dealer,
                absent,
            },
        ) in parts
        {
            if !served.contains(&key) {
                continue;
            }
            for party in absent {
                let Some(node) = setup
                    .parties
                    .get(usize::from(party.get()) - 1)
                    .and_then(|id| (0..self.nodes.len()).find(|n| self.party_node(*n) == Some(*id)))
                else {
                    continue;
                };
                if self.ec.reports.get(&node).is_some_and(|r| r.held.contains(&key)) {
                    for (dealer, _) in by_dealer.values() {
                        self.send_unanswered(*dealer, RequestBody::DkgDelivered { key, party }, now);
                        if let Some(r) = self.ec.reports.get_mut(dealer) {
                            for k in r.kept.iter_mut().filter(|k| k.key == key) {
                                k.absent.retain(|p| *p != party);
                            }
                        }
                    }
                    continue;
                }
                let complete = setup.dealers.iter().all(|d| by_dealer.contains_key(d));
                let queued = self
                    .ec
                    .deliveries
                    .get(&node)
                    .is_some_and(|m| m.contains_key(&key));
                if !complete || queued || !self.is_connected(node) {
                    continue;
                }
                let inbox: Vec<Vec<u8>> = by_dealer
                    .values()
                    .flat_map(|(_, envs)| envs.iter())
                    .filter(|b| {
                        Envelope::decode(b).is_ok_and(|e| e.route.to.is_none() || e.route.to == Some(party))
                    })
                    .cloned()
                    .collect();
                let body = RequestBody::DkgDeliver {
                    setup: DkgSetup {
                        me: party,
                        ..setup.clone()
                    },
                    key,
                    inbox,
                };
                tracing::info!(node = %self.node_name(node), %key, "delivering a DKG share kept by the dealers");
                self.ec.deliveries_version += 1;
                self.ec.deliveries.entry(node).or_default().insert(key, body);
                self.send_delivery(node, key, now);
            }
        }
    }

    /// `node` (party `party`) now holds its share of `key`: every other connected node drops what it kept for it
    /// (a dealer that is down is told by a later coordinator, from its report).
    fn confirm_delivered(&mut self, node: NodeIndex, key: KeyId, party: SignerId, now: Instant) {
        if let Some(r) = self.ec.reports.get_mut(&node) {
            r.held.insert(key);
        }
        for other in 0..self.nodes.len() {
            if other != node && self.is_connected(other) {
                self.send_unanswered(other, RequestBody::DkgDelivered { key, party }, now);
            }
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

    /// Number of changes of the pending deliveries so far: when it moves, a copy kept on disk is out of date.
    pub fn deliveries_version(&self) -> u64 {
        self.ec.deliveries_version
    }

    /// The pending DKG deliveries, encoded to be kept across a coordinator restart (tag
    /// [`crate::transport::wire::TAG_PENDING_DELIVERIES`]); each names its node by identity key, not by index.
    pub fn encode_deliveries(&self) -> Vec<u8> {
        let mut records = Vec::new();
        for (node, by_key) in &self.ec.deliveries {
            let Some(identity) = self.party_node(*node) else {
                continue;
            };
            for (key, body) in by_key {
                records.push((identity, *key, delivery_request(body.clone()).encode()));
            }
        }
        records.sort();
        let mut w = Writer::new(crate::transport::wire::TAG_PENDING_DELIVERIES);
        w.u32(u32::try_from(records.len()).unwrap_or(u32::MAX));
        for (identity, key, request) in &records {
            w.raw(identity);
            key.encode(&mut w);
            w.bytes(request);
        }
        w.finish()
    }

    /// Adds the deliveries of [`Coordinator::encode_deliveries`] (from before a restart) and sends those of
    /// connected nodes; returns how many were restored. Deliveries for nodes this coordinator does not have are
    /// left out; a key a node already holds is answered `KeyExists` and counts as delivered.
    pub fn restore_deliveries(
        &mut self,
        bytes: &[u8],
        now: Instant,
        unix_ms: u64,
    ) -> Result<usize, DecodeError> {
        self.observe_clock(now, unix_ms);
        let mut r = Reader::new(bytes, crate::transport::wire::TAG_PENDING_DELIVERIES)?;
        let n = r.count(32 + 32 + 4)?;
        let mut restored = Vec::with_capacity(n);
        for _ in 0..n {
            let identity: [u8; 32] = r.array()?;
            let key = KeyId::decode(&mut r)?;
            let request = Request::decode(r.bytes()?)?;
            if !matches!(&request.body, RequestBody::DkgDeliver { key: k, .. } if *k == key) {
                return Err(DecodeError::Invalid(
                    "a pending delivery that is not a DKG delivery of its key",
                ));
            }
            restored.push((identity, key, request.body));
        }
        r.finish()?;
        let mut count = 0;
        for (identity, key, body) in restored {
            let Some(node) = (0..self.nodes.len()).find(|n| self.party_node(*n) == Some(identity)) else {
                continue;
            };
            self.ec.deliveries.entry(node).or_default().insert(key, body);
            self.ec.deliveries_version += 1;
            count += 1;
            if self.is_connected(node) {
                self.send_delivery(node, key, now);
            }
        }
        Ok(count)
    }

    /// The answer to a delivery (`Err`: the request failed); a delivered key is not sent again.
    pub(super) fn delivery_answered(&mut self, op: OpId, result: Result<ResponseBody, String>, now: Instant) {
        let Some(Op::Deliver { node, key }) = self.ops.remove(&op) else {
            return;
        };
        let done = match &result {
            Ok(ResponseBody::KeyCreated(info)) => info.key == key,
            Ok(ResponseBody::Error { code, .. }) => *code == crate::transport::wire::ErrorCode::KeyExists,
            _ => false,
        };
        if done {
            let delivered = self.ec.deliveries.get_mut(&node).and_then(|m| m.remove(&key));
            if let Some(RequestBody::DkgDeliver { setup, .. }) = delivered {
                self.ec.deliveries_version += 1;
                self.confirm_delivered(node, key, setup.me, now);
            }
            tracing::info!(node = %self.node_name(node), %key, "DKG share delivered");
            if self.pending_deliveries(node).is_empty() {
                self.pools_recovered(now);
            }
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
        self.pool_enqueue::<FrostSessions>(key, op, now);
        op
    }

    /// Asks up to `k` + [`CoordinatorConfig::frost_spare_holders`] usable holders, none in `avoid` (the nodes the
    /// first waiting signature must not use), for `count` fresh session commitments.
    fn frost_refill(&mut self, key: KeyId, count: usize, avoid: &BTreeSet<NodeIndex>, now: Instant) -> bool {
        let Some(k) = self.threshold_of(&key) else {
            return false;
        };
        let holders = self.usable_members(&self.usable_holders(&key, now), avoid, now);
        if holders.len() < k {
            return false;
        }
        let asked: Vec<(SignerId, NodeIndex)> = holders
            .into_iter()
            .take(k + self.cfg.frost_spare_holders)
            .collect();
        let sessions: Vec<SessionId> = (0..count).map(|_| self.fresh_session()).collect();
        let pool = self.ec.frost.entry(key).or_default();
        for s in &sessions {
            pool.entries.push_back(FrostEntry {
                session: *s,
                members: BTreeMap::new(),
                commitments: BTreeMap::new(),
                awaiting: asked.len(),
            });
        }
        pool.refilling += asked.len();
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
        self.pool_serve::<FrostSessions>(key, now);
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
        let decoded: Option<HashMap<SessionId, round1::Commitment>> = commitments.and_then(|c| {
            let d: Vec<round1::Commitment> = c
                .iter()
                // Relayed only: the signers check every point of a package strictly; the subgroup check here
                // (a scalar multiplication per point, a quarter of the coordinator's CPU per Ed25519 signature)
                // is made only when a signer refuses a package, to name whose commitment it was.
                .filter_map(|b| round1::Commitment::decode_deferring_subgroup_check(b).ok())
                .collect();
            (d.len() == sessions.len() && d.iter().zip(sessions).all(|(c, s)| c.session == *s))
                .then(|| d.into_iter().map(|c| (c.session, c)).collect())
        });
        let k = self.threshold_of(&key).unwrap_or(usize::MAX);
        // The refill counts as failed when its last answer leaves no session with `k` members (holders that
        // answer while others keep refusing must not make it refill forever).
        let mut round = None;
        if let Some(pool) = self.ec.frost.get_mut(&key) {
            let asked: HashSet<&SessionId> = sessions.iter().collect();
            let mut done = true;
            let mut usable = false;
            for e in pool.entries.iter_mut().filter(|e| asked.contains(&e.session)) {
                e.awaiting = e.awaiting.saturating_sub(1);
                if let Some(c) = decoded.as_ref().and_then(|d| d.get(&e.session)) {
                    e.members.insert(signer, node);
                    e.commitments.insert(signer, *c);
                }
                done &= e.awaiting == 0;
                usable |= e.members.len() >= k;
            }
            if done {
                round = Some(usable);
            }
        }
        self.pool_refill_answered::<FrostSessions>(key, round);
    }

    fn frost_send(&mut self, op: OpId, entry: FrostEntry, signers: Vec<(SignerId, NodeIndex)>, now: Instant) {
        let key = match self.ops.get(&op) {
            Some(Op::FrostSign(s)) => s.key,
            _ => return,
        };
        let Some(k) = self.threshold_of(&key) else {
            return;
        };
        let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let signers: Vec<(SignerId, NodeIndex)> = signers.into_iter().take(k).collect();
        let commitments = signers
            .iter()
            .filter_map(|(id, _)| Some((*id, *entry.commitments.get(id)?)))
            .collect();
        let package = match SigningPackage::new(entry.session, s.message.clone(), commitments) {
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
        for (id, node) in signers {
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

    /// Puts a FROST signature back in line for another session (a session's nonces sign one package only, so a
    /// failed attempt is never repeated with other signers), avoiding `node`.
    fn frost_retry(&mut self, op: OpId, avoid: Option<(NodeIndex, String)>, now: Instant) {
        let Some(Op::FrostSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        s.asked.clear();
        s.shares.clear();
        s.package = None;
        let key = s.key;
        self.pool_retry::<FrostSessions>(op, key, avoid, now);
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
        self.frost_retry(op, Some((node, why)), now);
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
        let refused = matches!(body, ResponseBody::Error { .. });
        let (share, fault) = match body {
            ResponseBody::Share { signer, share } if signer == expected => (
                round2::SignatureShare::decode(&share).ok(),
                "sent a malformed FROST share",
            ),
            ResponseBody::Error { .. } => (
                None,
                "refused a signing package made from its own nonce commitment",
            ),
            _ => (None, "sent a malformed FROST share"),
        };
        let Some(share) = share else {
            let key = s.key;
            // A package a signer refuses may hold another member's commitment outside the prime-order subgroup
            // (taken unchecked at the refill): then that member is to blame, not the signer.
            let makers: Vec<NodeIndex> = match (refused, s.package.as_ref(), self.keys.get(&key)) {
                (true, Some(package), Some(known)) => package
                    .commitments
                    .iter()
                    .filter(|(_, c)| c.check_subgroup().is_err())
                    .filter_map(|(id, _)| known.holders.get(id).copied())
                    .collect(),
                _ => Vec::new(),
            };
            if makers.is_empty() {
                self.culprit(op, node, key, fault);
                self.frost_retry(op, Some((node, String::new())), now);
            } else {
                for maker in makers {
                    self.culprit(
                        op,
                        maker,
                        key,
                        "sent a FROST nonce commitment outside the prime-order subgroup",
                    );
                }
                self.frost_retry(op, None, now);
            }
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
        // `aggregate` releases a signature only after verifying it under the group key on the package's message
        // (which is `s.message`); verifying it a second time here cost a sixth of the coordinator's CPU per
        // signature.
        match ed25519::aggregate(pk, package, &s.shares) {
            Ok(sig) => {
                let culprits = s.tries.culprits.clone();
                self.finish_sign(
                    op,
                    Ok(Signature {
                        bytes: sig.to_bytes().to_vec(),
                        culprits,
                    }),
                );
                self.pool_serve::<FrostSessions>(key, now);
            }
            Err(e) if !e.culprits().is_empty() => {
                let holders = self.keys.get(&key).map(|k| k.holders.clone()).unwrap_or_default();
                for c in e.culprits() {
                    if let Some(&n) = holders.get(&c) {
                        self.culprit(op, n, key, "sent an invalid FROST signature share");
                    }
                }
                self.frost_retry(op, None, now);
            }
            other => {
                tracing::error!(?other, "FROST shares did not combine and nobody was blamed");
                self.frost_retry(op, None, now);
            }
        }
    }

    /// Names `node` a culprit for `key`: excluded, reported in the operation's result, and in an event once the
    /// nodes confirm the sharing this coordinator knows ([`Coordinator::accuse`]).
    pub(super) fn culprit(&mut self, op: OpId, node: NodeIndex, key: KeyId, what: &str) {
        let name = self.node_name(node);
        self.accuse(node, key, format!("{what} for key {key}"));
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
            for e in pool.entries.iter_mut() {
                if let Some(id) = e.members.iter().find(|(_, n)| **n == node).map(|(id, _)| *id) {
                    e.members.remove(&id);
                    e.commitments.remove(&id);
                }
            }
        }
    }

    /// Keys with pooled (FROST or ECDSA) signatures waiting, served again when a node connects.
    pub(super) fn serve_waiting_pools(&mut self, now: Instant) {
        for key in self.pool_keys_waiting::<FrostSessions>() {
            self.pool_serve::<FrostSessions>(key, now);
        }
        for key in self.pool_keys_waiting::<super::ecdsa::Presignatures>() {
            self.pool_serve::<super::ecdsa::Presignatures>(key, now);
        }
    }

    /// A node came back: pools of both schemes refill again.
    pub(super) fn pools_recovered(&mut self, now: Instant) {
        self.pool_recovered::<FrostSessions>(now);
        self.pool_recovered::<super::ecdsa::Presignatures>(now);
    }

    /// Fills the FROST pool (Ed25519 key) or presignature pool (P-256 key) of `key` up to the high watermark now
    /// (e.g. right after creating the key).
    pub fn prefill(&mut self, key: KeyId, now: Instant, unix_ms: u64) {
        self.observe_clock(now, unix_ms);
        match self.keys.get(&key).map(|k| k.algorithm) {
            Some(Algorithm::Ed25519) => self.pool_prefill::<FrostSessions>(key, now),
            Some(Algorithm::EcdsaP256) => self.pool_prefill::<super::ecdsa::Presignatures>(key, now),
            _ => {}
        }
    }

    /// Sessions ready in the FROST pool of `key` (for monitoring and tests).
    pub fn frost_pool_len(&self, key: &KeyId) -> usize {
        self.pool_len::<FrostSessions>(key)
    }
}

/// The FROST pool: signing sessions with the nonce commitments of `k` holders plus the configured spares.
#[derive(Debug)]
pub(super) struct FrostSessions;

impl PoolKind for FrostSessions {
    type Entry = FrostEntry;
    const MAX_ATTEMPTS: u32 = MAX_FROST_ATTEMPTS;
    const REFILL: &'static str = "making FROST nonce commitments (k holders)";

    fn pools(c: &Coordinator) -> &HashMap<KeyId, Pool<FrostEntry>> {
        &c.ec.frost
    }

    fn pools_mut(c: &mut Coordinator) -> &mut HashMap<KeyId, Pool<FrostEntry>> {
        &mut c.ec.frost
    }

    fn watermarks(cfg: &CoordinatorConfig) -> (usize, usize) {
        (cfg.frost_low_watermark, cfg.frost_high_watermark)
    }

    fn refill_quorum(k: usize) -> usize {
        k
    }

    fn refill(
        c: &mut Coordinator,
        key: KeyId,
        want: usize,
        avoid: &BTreeSet<NodeIndex>,
        now: Instant,
    ) -> bool {
        c.frost_refill(key, want, avoid, now)
    }

    fn dispatch(
        c: &mut Coordinator,
        op: OpId,
        entry: FrostEntry,
        signers: Vec<(SignerId, NodeIndex)>,
        now: Instant,
    ) {
        c.frost_send(op, entry, signers, now);
    }
}
