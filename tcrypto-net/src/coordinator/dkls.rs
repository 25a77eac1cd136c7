//! The coordinator's `k`-online ECDSA: DKLs23 (`tcrypto::ecdsa::dkls`, the node side in `crate::node::ec::dkls`), used
//! per signature whenever the presignature fast path cannot serve it.
//!
//! **Which path.** A P-256 signature takes a presignature when the pool holds one with `k` usable members
//! (module `ecdsa`); otherwise it goes to DKLs23 at once, without an error: the pool is empty (a fresh process,
//! or stock spent), fewer than `2k - 1` holders are usable (presigning impossible), or the key has
//! `k > (n + 1) / 2` (it never presigns). A signature that loses its presignature on the way (members failed)
//! and finds no other, or that waits on a pool whose refills keep failing, goes to DKLs23 too. The pool still
//! refills in the background while `2k - 1` holders are usable, so the fast path resumes by itself.
//! [`Coordinator::ecdsa_signatures_by_path`] counts the signatures of each path.
//!
//! **Signing set.** `k` usable holders, best first by health, such that every pair of them is not known to lack
//! a pair state. The coordinator starts out assuming that every pair was set up (pair states live on the nodes,
//! sealed and reusable across restarts, so a fresh coordinator process signs at once); a node that lacks one
//! answers `PairsMissing`, and the coordinator then runs the pair's setup (four messages relayed as sealed,
//! signed envelopes, [`RequestBody::DklsPairStart`]) and tries again; signatures waiting for setups go on when
//! they finish. A signature run is three round trips relayed like presigning ([`RequestBody::DklsSign`],
//! [`RequestBody::DklsRound`] 2 and 3); the partial signatures are combined with the key's cached
//! [`PreparedKey`], which verifies the signature before it is released.
//!
//! **Blame** (what `tcrypto::ecdsa::dkls` can tell, module docs there). The coordinator itself checks what it
//! relays: every envelope signed by its sender for this run and round, one to each other member and nothing else,
//! partials that decode and come from the member asked; a member failing these is excluded as a culprit (the
//! coordinator's own evidence). A member's report that a peer's message failed a check (OT extension,
//! multiplication, key/nonce consistency, opening, echo) is evidence only that one of the two deviated: a member
//! named by two or more reporters of the same run is excluded as a culprit; one named by a single reporter is,
//! with its accuser, not asked again for this signature. In a pair setup a wrong base-OT proof is named by the
//! peer: one reporter, so the named node is not excluded, but the signatures waiting for that setup do not ask it
//! again. A silent member (timeout, error) is avoided for this
//! signature. A signature that does not verify names nobody (DKLs23 has no per-party check of `u_i`, `w_i`): the
//! next attempt takes another signing set. Every retry takes a fresh session; at most [`MAX_DKLS_ATTEMPTS`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use tcrypto::ecdsa::PreparedKey;
use tcrypto::ecdsa::dkls::{self, PartialSignature, SignParams};
use tcrypto::{KeyId, SessionId, SignerId};

use super::ec::{Tries, route_envelopes};
use super::{Coordinator, NodeIndex, Op, OpId, SignError, Signature};
use crate::transport::sealed::Envelope;
use crate::transport::wire::{RequestBody, RequestId, ResponseBody, SignData};

/// Most signing runs one DKLs23 signature may try.
pub(super) const MAX_DKLS_ATTEMPTS: u32 = 8;

/// Attempts of one signature that may end on missing pair states alone without counting as attempts.
const MAX_PAIR_ROUNDS: u32 = 32;

/// Holders considered when looking for a signing set whose pairs are all set up (the best by health).
const SET_CANDIDATES: usize = 10;

/// DKLs23 state of the coordinator.
#[derive(Debug, Default)]
pub(super) struct DklsState {
    /// Pairs of nodes (lower index first) known to lack a common pair state, with the setup under way if any.
    pairs: BTreeMap<(NodeIndex, NodeIndex), Option<OpId>>,
    /// Signatures waiting for pair setups or connection attempts.
    waiting: BTreeSet<OpId>,
    /// Signatures released by the presignature path.
    pub(super) signed_fast: u64,
    /// Signatures released by DKLs23.
    pub(super) signed_dkls: u64,
    /// Keys that had an ECDSA signature without a presignature in this process: the next one starts presigning
    /// (a process that signs once, like one `pkcs11-tool` run, leaves no presignatures behind).
    pub(super) demanded: BTreeSet<KeyId>,
    /// Keys whose presignature pool received a batch in this process: from then on a signature that finds the
    /// pool empty while presigning is possible waits for the refill under way instead of taking the k-online
    /// path (a steady stream would otherwise spend several times the CPU per signature on DKLs23 at every dry
    /// spell, which slows the refill it waits for).
    pub(super) stocked: BTreeSet<KeyId>,
}

/// A pair setup between two nodes, relayed by the coordinator.
#[derive(Debug)]
pub(super) struct PairOp {
    nodes: [NodeIndex; 2],
    run: SessionId,
    round: u8,
    asked: HashMap<RequestId, NodeIndex>,
    returned: BTreeMap<SignerId, Vec<Envelope>>,
}

/// A DKLs23 signature in progress.
#[derive(Debug)]
pub(super) struct DklsSignOp {
    pub(super) key: KeyId,
    digest: Vec<u8>,
    /// The data of a data-carrying request (whose digest form `digest` is): the nodes are sent it instead.
    data: Option<SignData>,
    /// The current attempt's session and signing set (empty between attempts).
    session: SessionId,
    signers: BTreeMap<SignerId, NodeIndex>,
    round: u8,
    asked: HashMap<RequestId, SignerId>,
    returned: BTreeMap<SignerId, Vec<Envelope>>,
    partials: BTreeMap<SignerId, PartialSignature>,
    /// This attempt: members' reports (reporter, accused), and whether it failed.
    accusations: Vec<(SignerId, SignerId)>,
    failed: bool,
    /// This attempt failed only because pair states were missing (it does not count as an attempt, up to
    /// [`MAX_PAIR_ROUNDS`] times: a fresh coordinator learns which pairs need a setup this way).
    pairs_only: bool,
    pair_rounds: u32,
    /// Signing sets whose signature did not verify (nobody named): tried last.
    failed_sets: Vec<BTreeSet<NodeIndex>>,
    pub(super) tries: Tries,
}

/// The pair key of two nodes.
fn pair(a: NodeIndex, b: NodeIndex) -> (NodeIndex, NodeIndex) {
    (a.min(b), a.max(b))
}

/// The party id of a node in pair states: its position in the coordinator's table plus one (as in the DKG).
fn party_of(node: NodeIndex) -> Option<SignerId> {
    u16::try_from(node + 1).ok().and_then(SignerId::new)
}

/// The `k`-subsets of `0..n` in lexicographic order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if k == 0 || k > n {
        return out;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        out.push(idx.clone());
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return out;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

impl Coordinator {
    /// ECDSA signatures released so far by each path: `(presignatures, DKLs23)` (for monitoring and tests).
    pub fn ecdsa_signatures_by_path(&self) -> (u64, u64) {
        (self.dkls.signed_fast, self.dkls.signed_dkls)
    }

    /// Turns ECDSA signature `op` (waiting for or having lost a presignature) into a DKLs23 signature and starts
    /// it; its record of avoided nodes and failures is kept.
    pub(super) fn ecdsa_to_dkls(&mut self, op: OpId, now: Instant) {
        let Some(Op::EcdsaSign(s)) = self.ops.remove(&op) else {
            return;
        };
        let (key, digest, data, mut tries) = s.into_parts();
        tries.attempts = 0;
        tracing::debug!(%key, "ECDSA signature goes to DKLs23");
        self.ops.insert(
            op,
            Op::DklsSign(Box::new(DklsSignOp {
                key,
                digest,
                data,
                session: SessionId([0; 32]),
                signers: BTreeMap::new(),
                round: 0,
                asked: HashMap::new(),
                returned: BTreeMap::new(),
                partials: BTreeMap::new(),
                accusations: Vec::new(),
                failed: false,
                pairs_only: false,
                pair_rounds: 0,
                failed_sets: Vec::new(),
                tries,
            })),
        );
        self.dkls_attempt(op, now);
    }

    /// DKLs23 signatures of `key` in progress.
    pub(super) fn dkls_in_flight(&self, key: &KeyId) -> usize {
        self.ops
            .values()
            .filter(|o| matches!(o, Op::DklsSign(s) if s.key == *key))
            .count()
    }

    /// Signatures waiting for pair setups or connections try again.
    pub(super) fn dkls_serve_waiting(&mut self, now: Instant) {
        for op in std::mem::take(&mut self.dkls.waiting) {
            self.dkls_attempt(op, now);
        }
    }

    /// Starts an attempt of `op`: picks a signing set and sends round 1, or waits for pair setups or
    /// connections, or fails when `k` usable holders cannot be had.
    fn dkls_attempt(&mut self, op: OpId, now: Instant) {
        let Some(Op::DklsSign(s)) = self.ops.get(&op) else {
            return;
        };
        let key = s.key;
        let Some(known) = self.keys.get(&key) else {
            return self.finish_sign(op, Err(SignError::UnknownKey(key)));
        };
        let k = usize::from(known.threshold);
        if s.tries.attempts >= MAX_DKLS_ATTEMPTS {
            let err = self.unavailable(0, k, &s.tries.failures, &s.tries.culprits);
            return self.finish_sign(op, Err(err));
        }
        let mut candidates: Vec<(SignerId, NodeIndex)> = known
            .holders
            .iter()
            .filter(|(_, n)| {
                self.usable(**n, now) && !s.tries.avoid.contains(n) && self.party_node(**n).is_some()
            })
            .map(|(id, n)| (*id, *n))
            .collect();
        candidates.sort_by_key(|(_, n)| self.health_rank(*n, now));
        if candidates.len() < k {
            let connecting = known
                .holders
                .values()
                .filter(|n| !s.tries.avoid.contains(n) && self.connecting(**n))
                .count();
            if candidates.len() + connecting >= k {
                self.dkls.waiting.insert(op);
                return;
            }
            let err = self.unavailable(candidates.len(), k, &s.tries.failures, &s.tries.culprits);
            return self.finish_sign(op, Err(err));
        }
        candidates.truncate(SET_CANDIDATES.max(k));
        let sets: Vec<Vec<(SignerId, NodeIndex)>> = subsets(candidates.len(), k)
            .into_iter()
            .map(|idx| idx.into_iter().map(|i| candidates[i]).collect())
            .collect();
        let set_ready = |set: &[(SignerId, NodeIndex)]| {
            set.iter().enumerate().all(|(i, (_, a))| {
                set[i + 1..]
                    .iter()
                    .all(|(_, b)| !self.dkls.pairs.contains_key(&pair(*a, *b)))
            })
        };
        let fresh = |set: &[(SignerId, NodeIndex)]| {
            let nodes: BTreeSet<NodeIndex> = set.iter().map(|(_, n)| *n).collect();
            !s.failed_sets.contains(&nodes)
        };
        let chosen = sets
            .iter()
            .find(|set| set_ready(set) && fresh(set))
            .or_else(|| sets.iter().find(|set| set_ready(set)));
        let Some(set) = chosen.cloned() else {
            // No set of usable holders has all its pairs set up: set up the best set's pairs and wait.
            let best = sets
                .iter()
                .find(|set| fresh(set))
                .or(sets.first())
                .cloned()
                .unwrap_or_default();
            let mut needed = Vec::new();
            for (i, (_, a)) in best.iter().enumerate() {
                for (_, b) in &best[i + 1..] {
                    if matches!(self.dkls.pairs.get(&pair(*a, *b)), Some(None)) {
                        needed.push(pair(*a, *b));
                    }
                }
            }
            self.dkls.waiting.insert(op);
            for (a, b) in needed {
                self.dkls_pair_setup(a, b, now);
            }
            return;
        };
        self.dkls_send_round1(op, set, now);
    }

    /// Round 1 of an attempt with the signing set `set`, under a fresh session.
    fn dkls_send_round1(&mut self, op: OpId, set: Vec<(SignerId, NodeIndex)>, now: Instant) {
        let session = self.fresh_session();
        let mut listed: Vec<(SignerId, [u8; 32])> = set
            .iter()
            .filter_map(|(id, n)| Some((*id, self.party_node(*n)?)))
            .collect();
        listed.sort_by_key(|(id, _)| *id);
        let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        s.session = session;
        s.signers = set.iter().copied().collect();
        s.round = 1;
        s.asked.clear();
        s.returned.clear();
        s.partials.clear();
        s.accusations.clear();
        s.failed = false;
        s.pairs_only = true;
        s.tries.attempts += 1;
        let (key, digest, data) = (s.key, s.digest.clone(), s.data.clone());
        let requests = set
            .iter()
            .map(|(id, node)| {
                let body = match &data {
                    Some(data) => RequestBody::DklsSignData {
                        key,
                        run: session,
                        signers: listed.clone(),
                        data: data.clone(),
                    },
                    None => RequestBody::DklsSign {
                        key,
                        run: session,
                        signers: listed.clone(),
                        digest: digest.clone(),
                    },
                };
                (*id, *node, body)
            })
            .collect();
        self.dkls_send(op, requests, now);
    }

    fn dkls_send(&mut self, op: OpId, requests: Vec<(SignerId, NodeIndex, RequestBody)>, now: Instant) {
        for (id, node, body) in requests {
            let request = self.next_request;
            if let Err(e) = self.send(op, node, self.fresh_session(), self.unix_at(now), body, now) {
                return self.finish_sign(op, Err(SignError::Frame(e)));
            }
            if let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) {
                s.asked.insert(request, id);
            }
        }
    }

    /// Checks that a member's envelopes of `round` are one to each other member of the set and nothing else.
    fn dkls_checked(
        &self,
        node: NodeIndex,
        from: SignerId,
        run: SessionId,
        round: u8,
        envelopes: &[Vec<u8>],
        members: &BTreeSet<SignerId>,
    ) -> Result<Vec<Envelope>, String> {
        let checked = self.checked_envelopes(node, from, run, round, envelopes)?;
        let to: BTreeSet<Option<SignerId>> = checked.iter().map(|e| e.route.to).collect();
        let expected: BTreeSet<Option<SignerId>> =
            members.iter().filter(|m| **m != from).map(|m| Some(*m)).collect();
        if to != expected || checked.len() != expected.len() {
            return Err(format!(
                "{} sent {} envelopes in round {round}, not one to each other member",
                self.node_name(node),
                checked.len()
            ));
        }
        Ok(checked)
    }

    /// A member's answer in a DKLs23 signature.
    pub(super) fn dkls_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let name = self.node_name(node);
        let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(id) = s.asked.remove(&request) else {
            return;
        };
        let (key, run, round) = (s.key, s.session, s.round);
        let members: BTreeSet<SignerId> = s.signers.keys().copied().collect();
        match body {
            ResponseBody::Envelopes(envs) if round < 3 => {
                match self.dkls_checked(node, id, run, round, &envs, &members) {
                    Ok(checked) => {
                        if let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) {
                            s.returned.insert(id, checked);
                        }
                    }
                    Err(why) => {
                        self.culprit(op, node, key, "relayed bad DKLs23 envelopes");
                        self.dkls_failed(op, Some((node, name, why)));
                    }
                }
            }
            ResponseBody::PairsMissing(ids) if round < 3 => {
                let missing: Vec<NodeIndex> = ids.iter().filter_map(|i| s.signers.get(i).copied()).collect();
                for other in &missing {
                    self.dkls.pairs.entry(pair(node, *other)).or_insert(None);
                }
                tracing::debug!(node = %name, ?ids, "DKLs23 pair states missing; pairs will be set up");
                if let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) {
                    s.failed = true;
                }
            }
            ResponseBody::Share { signer, share } if round == 3 && signer == id => {
                match PartialSignature::decode(&share) {
                    Ok(p) => {
                        s.partials.insert(id, p);
                    }
                    Err(e) => {
                        self.culprit(op, node, key, "sent a malformed DKLs23 partial signature");
                        self.dkls_failed(op, Some((node, name, e.to_string())));
                    }
                }
            }
            ResponseBody::Aborted { culprits, detail } => {
                let accused: Vec<SignerId> = culprits
                    .into_iter()
                    .filter(|c| *c != id && members.contains(c))
                    .collect();
                tracing::warn!(node = %name, ?accused, %detail, "DKLs23 member reports a failed check");
                s.accusations.extend(accused.iter().map(|c| (id, *c)));
                s.tries.failures.push((name, detail));
                self.dkls_failed(op, None);
            }
            other => {
                let why = format!("answered {} in DKLs23 round {round}", response_name(&other));
                self.culprit(op, node, key, "answered a DKLs23 round out of turn");
                self.dkls_failed(op, Some((node, name, why)));
            }
        }
        self.dkls_round_done(op, now);
    }

    /// A DKLs23 signing request failed at `node` (error, timeout, disconnection): the node is avoided for this
    /// signature.
    pub(super) fn dkls_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let name = self.node_name(node);
        let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        if s.asked.remove(&request).is_none() {
            return;
        }
        self.dkls_failed(op, Some((node, name, why)));
        self.dkls_round_done(op, now);
    }

    /// Marks the current attempt failed (`avoid`: a node not to ask again for this signature, and why).
    fn dkls_failed(&mut self, op: OpId, avoid: Option<(NodeIndex, String, String)>) {
        if let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) {
            s.failed = true;
            s.pairs_only = false;
            if let Some((node, name, why)) = avoid {
                s.tries.avoid_node(node, name, why);
            }
        }
    }

    /// When every member of the round answered: the next round, the combination, or a new attempt.
    fn dkls_round_done(&mut self, op: OpId, now: Instant) {
        let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        if !s.asked.is_empty() {
            return;
        }
        if s.failed {
            return self.dkls_conclude_failed(op, now);
        }
        if s.round == 3 {
            return self.dkls_combine(op, now);
        }
        let returned = std::mem::take(&mut s.returned);
        let (inboxes, _) = route_envelopes(&returned, s.signers.keys().copied());
        s.round += 1;
        let (key, run, round) = (s.key, s.session, s.round);
        let requests = inboxes
            .into_iter()
            .filter_map(|(id, inbox)| {
                let node = *s.signers.get(&id)?;
                Some((
                    id,
                    node,
                    RequestBody::DklsRound {
                        key,
                        run,
                        round,
                        inbox,
                    },
                ))
            })
            .collect();
        self.dkls_send(op, requests, now);
    }

    /// A failed attempt: members named by two or more reporters are excluded as culprits; a member named by one
    /// is avoided, with its accuser, for this signature; then another attempt.
    fn dkls_conclude_failed(&mut self, op: OpId, now: Instant) {
        let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let key = s.key;
        if s.pairs_only && s.pair_rounds < MAX_PAIR_ROUNDS {
            s.pair_rounds += 1;
            s.tries.attempts -= 1;
        }
        let mut reporters: BTreeMap<SignerId, BTreeSet<SignerId>> = BTreeMap::new();
        for (by, accused) in s.accusations.drain(..) {
            reporters.entry(accused).or_default().insert(by);
        }
        let signers = s.signers.clone();
        let mut culprits = Vec::new();
        for (accused, by) in &reporters {
            let Some(&node) = signers.get(accused) else {
                continue;
            };
            if by.len() >= 2 {
                culprits.push(node);
            } else {
                s.tries.avoid.insert(node);
                for b in by {
                    if let Some(&n) = signers.get(b) {
                        s.tries.avoid.insert(n);
                    }
                }
            }
        }
        for node in culprits {
            self.culprit(op, node, key, "failed DKLs23 checks of two or more members");
        }
        self.dkls_attempt(op, now);
    }

    /// Combines the partial signatures (verifying the signature) and releases it, or tries again.
    fn dkls_combine(&mut self, op: OpId, now: Instant) {
        let Some(Op::DklsSign(s)) = self.ops.get(&op) else {
            return;
        };
        let key = s.key;
        let Some(pk) = self.keys.get(&key).and_then(|k| k.public.as_ecdsa()) else {
            return;
        };
        let prepared = self
            .prepared_keys
            .entry(key)
            .or_insert_with(|| PreparedKey::new(&pk.verifying));
        let params = SignParams {
            session: s.session,
            signers: s.signers.keys().copied().collect(),
        };
        match dkls::combine_with(prepared, &params, &s.digest, &s.partials) {
            Ok(c) => {
                self.dkls.signed_dkls += 1;
                let culprits = s.tries.culprits.clone();
                self.finish_sign(
                    op,
                    Ok(Signature {
                        bytes: c.to_der(),
                        culprits,
                    }),
                );
            }
            Err(e) => {
                let named: Vec<NodeIndex> = e
                    .culprits()
                    .iter()
                    .filter_map(|c| s.signers.get(c).copied())
                    .collect();
                let nodes: BTreeSet<NodeIndex> = s.signers.values().copied().collect();
                tracing::warn!(error = %e, "DKLs23 partial signatures did not combine; another attempt");
                for node in named {
                    self.culprit(op, node, key, "sent a bad DKLs23 partial signature");
                }
                if let Some(Op::DklsSign(s)) = self.ops.get_mut(&op) {
                    s.failed_sets.push(nodes);
                    s.tries.failures.push(("combiner".into(), e.to_string()));
                }
                self.dkls_attempt(op, now);
            }
        }
    }

    // ------------------------------------------------------------------ pair setup

    /// Starts the pair setup of nodes `a` and `b` (both must be usable with known identities).
    fn dkls_pair_setup(&mut self, a: NodeIndex, b: NodeIndex, now: Instant) {
        let (Some(ka), Some(kb), Some(ia), Some(ib)) =
            (self.party_node(a), self.party_node(b), party_of(a), party_of(b))
        else {
            return;
        };
        if !self.usable(a, now) || !self.usable(b, now) {
            return;
        }
        let run = self.fresh_session();
        let op = self.new_op(Op::DklsPair(Box::new(PairOp {
            nodes: [a, b],
            run,
            round: 1,
            asked: HashMap::new(),
            returned: BTreeMap::new(),
        })));
        self.dkls.pairs.insert(pair(a, b), Some(op));
        tracing::debug!(a = %self.node_name(a), b = %self.node_name(b), "DKLs23 pair setup started");
        let requests = vec![
            (
                a,
                RequestBody::DklsPairStart {
                    run,
                    me: ia,
                    peer: ib,
                    peer_key: kb,
                },
            ),
            (
                b,
                RequestBody::DklsPairStart {
                    run,
                    me: ib,
                    peer: ia,
                    peer_key: ka,
                },
            ),
        ];
        self.dkls_pair_send(op, requests, now);
    }

    fn dkls_pair_send(&mut self, op: OpId, requests: Vec<(NodeIndex, RequestBody)>, now: Instant) {
        for (node, body) in requests {
            let request = self.next_request;
            if self
                .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
                .is_err()
            {
                return self.dkls_pair_failed(op, "request frame".into(), None, now);
            }
            if let Some(Op::DklsPair(p)) = self.ops.get_mut(&op) {
                p.asked.insert(request, node);
            }
        }
    }

    /// A pair setup failed: the pair is still missing; the signatures waiting for it count an attempt and try
    /// again (another set, or another setup). `accused`: a node its peer reported (a wrong base-OT proof): one
    /// reporter's word, so it is not excluded, but the waiting signatures do not ask it again.
    fn dkls_pair_failed(&mut self, op: OpId, why: String, accused: Option<NodeIndex>, now: Instant) {
        let Some(Op::DklsPair(p)) = self.ops.remove(&op) else {
            return;
        };
        let [a, b] = p.nodes;
        tracing::warn!(a = %self.node_name(a), b = %self.node_name(b), %why, "DKLs23 pair setup failed");
        self.dkls.pairs.insert(pair(a, b), None);
        let waiting: Vec<OpId> = self.dkls.waiting.iter().copied().collect();
        for w in waiting {
            if let Some(t) = self.ops.get_mut(&w).and_then(Op::tries_mut) {
                t.attempts += 1;
                t.failures.push(("pair setup".into(), why.clone()));
                if let Some(n) = accused {
                    t.avoid.insert(n);
                }
            }
        }
        self.dkls_serve_waiting(now);
    }

    /// A pair setup request failed (error, timeout, disconnection).
    pub(super) fn dkls_pair_request_failed(&mut self, op: OpId, node: NodeIndex, why: String, now: Instant) {
        let why = format!("{}: {why}", self.node_name(node));
        self.dkls_pair_failed(op, why, None, now);
    }

    /// A node's answer in a pair setup.
    pub(super) fn dkls_pair_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let Some(Op::DklsPair(p)) = self.ops.get_mut(&op) else {
            return;
        };
        if p.asked.remove(&request).is_none() {
            return;
        }
        let (run, round, [a, b]) = (p.run, p.round, p.nodes);
        let (Some(id), Some(ia), Some(ib)) = (party_of(node), party_of(a), party_of(b)) else {
            return;
        };
        match body {
            ResponseBody::Envelopes(envs) if round < 3 => {
                let members = BTreeSet::from([ia, ib]);
                match self.dkls_checked(node, id, run, round, &envs, &members) {
                    Ok(checked) => {
                        if let Some(Op::DklsPair(p)) = self.ops.get_mut(&op) {
                            p.returned.insert(id, checked);
                        }
                    }
                    Err(why) => return self.dkls_pair_failed(op, why, None, now),
                }
            }
            ResponseBody::Done if round == 3 => {}
            ResponseBody::Aborted { culprits, detail } => {
                let peer = if node == a { b } else { a };
                let accused = party_of(peer).filter(|p| culprits.contains(p)).map(|_| peer);
                let named = accused
                    .map(|n| format!(" naming {}", self.node_name(n)))
                    .unwrap_or_default();
                let why = format!("{} reports{named}: {detail}", self.node_name(node));
                return self.dkls_pair_failed(op, why, accused, now);
            }
            other => {
                let why = format!(
                    "{} answered {} in pair setup round {round}",
                    self.node_name(node),
                    response_name(&other)
                );
                return self.dkls_pair_failed(op, why, None, now);
            }
        }
        let Some(Op::DklsPair(p)) = self.ops.get_mut(&op) else {
            return;
        };
        if !p.asked.is_empty() {
            return;
        }
        if round == 3 {
            self.ops.remove(&op);
            self.dkls.pairs.remove(&pair(a, b));
            tracing::debug!(a = %self.node_name(a), b = %self.node_name(b), "DKLs23 pair set up");
            return self.dkls_serve_waiting(now);
        }
        let returned = std::mem::take(&mut p.returned);
        let (mut inboxes, _) = route_envelopes(&returned, [ia, ib].into_iter());
        p.round += 1;
        let round = p.round;
        let requests = [(a, ia), (b, ib)]
            .into_iter()
            .map(|(n, id)| {
                let inbox = inboxes.remove(&id).unwrap_or_default();
                (n, RequestBody::DklsPairRound { run, round, inbox })
            })
            .collect();
        self.dkls_pair_send(op, requests, now);
    }

    /// Records a presignature-path ECDSA signature (for [`Coordinator::ecdsa_signatures_by_path`]).
    pub(super) fn count_fast_signature(&mut self) {
        self.dkls.signed_fast += 1;
    }
}

/// A short name of an answer, for error messages.
fn response_name(body: &ResponseBody) -> &'static str {
    match body {
        ResponseBody::Envelopes(_) => "envelopes",
        ResponseBody::Share { .. } => "a share",
        ResponseBody::Done => "done",
        ResponseBody::Error { .. } => "an error",
        ResponseBody::Aborted { .. } => "an abort",
        ResponseBody::PairsMissing(_) => "pairs missing",
        _ => "another answer",
    }
}

#[cfg(test)]
mod tests {
    use super::subsets;

    #[test]
    fn subsets_are_every_k_subset_in_order() {
        assert_eq!(
            subsets(4, 2),
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(subsets(5, 5).len(), 1);
        assert_eq!(subsets(10, 3).len(), 120);
        assert!(subsets(2, 3).is_empty());
    }
}
