//! The coordinator's threshold ECDSA: a presignature pool per P-256 key, kept filled in the background, and
//! one-round signing from any `k` members of a presignature's presigning set.
//!
//! **Presigning** needs `2k - 1` holders online (`tcrypto::ecdsa`: `n >= 2t + 1` evaluation points for the
//! degree-`2t` products). A run takes every usable holder, relays three rounds of envelopes (checked like the
//! DKG's), collects every member's public parts of the batch (all must be equal), and only then tells the members
//! to store the batch (step 5), so a presignature is usable only once every member passed its checks. When a
//! member's end-of-presigning check fails (or the members disagree), the blame step runs instead: every member
//! reveals its ephemeral polynomials (step 6), every member recomputes what each should have sent (step 7), and
//! a member named by at least `k` members is excluded as a culprit; the next run goes without it. So with
//! `n > 2k - 1` holders presigning goes on after an exclusion; with `n = 2k - 1` every holder is needed, and one
//! excluded or offline holder stops presigning (presignatures in stock still sign with any `k` of their members;
//! then signatures fail with [`SignError::Unavailable`] naming presigning). A run
//! starts when the ready stock falls below the low watermark or a signature waits, and makes enough to reach the
//! high watermark (at most `tcrypto::ecdsa::MAX_BATCH`). One run per key at a time.
//!
//! **Signing** takes one presignature out of the pool (the coordinator never hands it out twice; each member
//! also marks it spent on disk before its share leaves), asks `k` usable members under one fresh session, and
//! combines with the key's cached [`PreparedKey`] (`combine_with`, which verifies the signature). A member that
//! fails, times out, disconnects or sends a share the combination names as bad (excluded as a culprit) is
//! replaced by another member of the same presignature's presigning set, asked for the same session and digest:
//! the shares already in stay valid, so a failed member costs no presignature. Only when fewer than `k` usable
//! members of that set are left is another presignature (and session) taken. Reusing a presignature for the
//! same request is safe: each member computes one share per presignature, and a member refuses a presignature
//! it spent for any other request (`crate::node::ec::presign`).
//!
//! **When no presignature can serve** a signature (the pool is empty or has no entry with `k` usable members,
//! fewer than `2k - 1` holders are usable, the key has `k > (n + 1) / 2`, or a signature lost its presignature
//! and finds no other), the signature is made by `k` holders with DKLs23 instead (`super::dkls`), and waiting
//! signatures of a pool whose refills keep failing go there too: no error reaches the caller. An empty pool
//! sends a signature to DKLs23 only while the key's first batch is made in this process (at most four at a
//! time): once the pool has had a batch, a signature that finds it empty while presigning is possible waits for
//! the refill, because a stream that fell back to DKLs23 at every dry spell spent several times the CPU per
//! signature there and slowed the refill it was waiting for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use tcrypto::ecdsa::{self, PreparedKey, PresignatureId, PresignaturePublic, SignRequest};
use tcrypto::{KeyId, SessionId, SignerId};

use super::ec::{Tries, route_envelopes};
use super::pool::{Pool, PoolKind, Stocked};
use super::{Coordinator, CoordinatorConfig, NodeIndex, Op, OpId, SignError, Signature};
use crate::transport::sealed::Envelope;
use crate::transport::wire::{RequestBody, RequestId, ResponseBody, SignData};

/// Most presignatures one ECDSA signature may try.
const MAX_ECDSA_ATTEMPTS: u32 = 8;

/// A presignature of the pool and the members that stored it.
#[derive(Debug)]
pub(super) struct Entry {
    public: PresignaturePublic,
    members: BTreeMap<SignerId, NodeIndex>,
}

impl Stocked for Entry {
    fn members(&self) -> &BTreeMap<SignerId, NodeIndex> {
        &self.members
    }
}

/// Most DKLs23 signatures of one key in flight while its presignature pool is being filled; later ones wait
/// for presignatures.
const DKLS_WHILE_PRESIGNING: usize = 4;

/// The ECDSA pool: presignatures of the key, each with its presigning set.
#[derive(Debug)]
pub(super) struct Presignatures;

impl PoolKind for Presignatures {
    type Entry = Entry;
    const MAX_ATTEMPTS: u32 = MAX_ECDSA_ATTEMPTS;
    const REFILL: &'static str =
        "presigning (2k - 1 holders; with n = 2k - 1 one excluded or offline holder stops it)";

    fn pools(c: &Coordinator) -> &HashMap<KeyId, Pool<Entry>> {
        &c.presig_pools
    }

    fn pools_mut(c: &mut Coordinator) -> &mut HashMap<KeyId, Pool<Entry>> {
        &mut c.presig_pools
    }

    fn watermarks(cfg: &CoordinatorConfig) -> (usize, usize) {
        (cfg.presign_low_watermark, cfg.presign_high_watermark)
    }

    fn refill_quorum(k: usize) -> usize {
        2 * k - 1
    }

    fn refill(
        c: &mut Coordinator,
        key: KeyId,
        want: usize,
        _avoid: &BTreeSet<NodeIndex>,
        now: Instant,
    ) -> bool {
        // Presigning needs 2k - 1 holders; a signature then takes any k of them it does not avoid.
        c.presign_start(key, want, now)
    }

    fn dispatch(
        c: &mut Coordinator,
        op: OpId,
        entry: Entry,
        signers: Vec<(SignerId, NodeIndex)>,
        now: Instant,
    ) {
        c.ecdsa_send(op, entry, signers, now);
    }

    fn starved(c: &mut Coordinator, op: OpId, now: Instant) -> bool {
        // No presignature can be had: the k-online protocol signs instead (`super::dkls`).
        c.ecdsa_to_dkls(op, now);
        true
    }
}

/// A presigning run driven by the coordinator.
#[derive(Debug)]
pub(super) struct PresignOp {
    key: KeyId,
    run: SessionId,
    batch: u32,
    members: BTreeMap<SignerId, NodeIndex>,
    round: u8,
    asked: HashMap<RequestId, SignerId>,
    returned: BTreeMap<SignerId, Vec<Envelope>>,
    publics: Option<Vec<u8>>,
    checked: Vec<PresignaturePublic>,
    committed: BTreeSet<SignerId>,
    /// A member's check failed or the members disagree: the run ends with the blame step (rounds 6 and 7).
    blame: bool,
    /// Blame step: how many members named each member, and what they reported.
    accusations: BTreeMap<SignerId, usize>,
    reports: Vec<String>,
}

/// The blame step's rounds: every member reveals (6), every member concludes over the reveals (7).
const REVEAL_ROUND: u8 = 6;
const CONCLUDE_ROUND: u8 = 7;

/// An ECDSA signature in progress.
#[derive(Debug)]
pub(super) struct EcdsaSignOp {
    pub(super) key: KeyId,
    digest: Vec<u8>,
    /// The data of a data-carrying request (whose digest form `digest` is): the nodes are sent it instead.
    data: Option<SignData>,
    /// The session of the current presignature's requests (bound into the re-randomisation `δ`).
    session: SessionId,
    /// The presignature in use and its presigning set.
    presignature: Option<Entry>,
    /// Requests awaiting an answer, by the member asked.
    asked: HashMap<RequestId, SignerId>,
    /// Members asked with the current presignature (none is asked twice).
    used: BTreeSet<SignerId>,
    shares: BTreeMap<SignerId, ecdsa::SignatureShare>,
    pub(super) tries: Tries,
}

impl EcdsaSignOp {
    /// The key, digest, data and attempts record (when the signature moves to DKLs23).
    pub(super) fn into_parts(self) -> (KeyId, Vec<u8>, Option<SignData>, Tries) {
        (self.key, self.digest, self.data, self.tries)
    }
}

impl Coordinator {
    /// Starts an ECDSA signature (called by `start_sign` for P-256 keys): with a presignature when the pool
    /// holds one with `k` usable members, else with DKLs23 (`super::dkls`); the pool refills in the background
    /// while `2k - 1` holders are usable.
    pub(super) fn start_ecdsa_sign(
        &mut self,
        key: KeyId,
        digest: Vec<u8>,
        data: Option<SignData>,
        now: Instant,
    ) -> OpId {
        let op = self.new_op(Op::EcdsaSign(Box::new(EcdsaSignOp {
            key,
            digest,
            data,
            session: self.fresh_session(),
            presignature: None,
            asked: HashMap::new(),
            used: BTreeSet::new(),
            shares: BTreeMap::new(),
            tries: Tries::default(),
        })));
        self.ecdsa_route(op, key, now);
        op
    }

    /// Whether the pool of `key` holds a presignature with `k` usable members not in `avoid`.
    fn presignature_ready(&self, key: &KeyId, avoid: &BTreeSet<NodeIndex>, now: Instant) -> bool {
        let Some(k) = self.threshold_of(key) else {
            return false;
        };
        self.presig_pools.get(key).is_some_and(|p| {
            p.entries
                .iter()
                .any(|e| self.usable_members(&e.members, avoid, now).len() >= k)
        })
    }

    /// Sends signature `op` down the fast path when a presignature is ready for it, else to DKLs23; starts a
    /// background refill of the pool when presigning is possible (from the key's second signature on).
    fn ecdsa_route(&mut self, op: OpId, key: KeyId, now: Instant) {
        let avoid = self
            .ops
            .get(&op)
            .and_then(Op::tries)
            .map(|t| t.avoid.clone())
            .unwrap_or_default();
        if self.presignature_ready(&key, &avoid, now) {
            return self.pool_enqueue::<Presignatures>(key, op, now);
        }
        // Presigning starts with the second signature of a key that finds no presignature in this process (or
        // with its creation here, or an explicit prefill, or once its pool has had a batch): a process that signs
        // once spends nothing on a batch it would abandon.
        let again = !self.dkls.demanded.insert(key) || self.dkls.stocked.contains(&key);
        let presigning = again
            && self
                .threshold_of(&key)
                .is_some_and(|k| self.usable_holders(&key, now).len() >= Presignatures::refill_quorum(k));
        if presigning {
            self.pool_prefill::<Presignatures>(key, now);
            // A burst (a zone signer's batch) waits for the presigning under way instead of going to DKLs23,
            // which costs each signer several times the CPU of a presignature: only the first few signatures of
            // a key take the k-online path while its first batch is made (they are the ones a caller waits on),
            // and none once the pool has had a batch (a steady stream waits for the refill).
            if self.dkls.stocked.contains(&key) || self.dkls_in_flight(&key) >= DKLS_WHILE_PRESIGNING {
                return self.pool_enqueue::<Presignatures>(key, op, now);
            }
        }
        self.ecdsa_to_dkls(op, now);
    }

    /// Signature `op` lost its presignature: it takes another one if the pool has one for it, else goes to
    /// DKLs23; it fails once its attempts are used up.
    fn ecdsa_retry(&mut self, op: OpId, key: KeyId, now: Instant) {
        let needed = self.threshold_of(&key).unwrap_or(0);
        let Some(t) = self.ops.get_mut(&op).and_then(Op::tries_mut) else {
            return;
        };
        if t.failed(None, MAX_ECDSA_ATTEMPTS) {
            let (failures, culprits) = (t.failures.clone(), t.culprits.clone());
            let err = self.unavailable(0, needed, &failures, &culprits);
            return self.finish_sign(op, Err(err));
        }
        self.ecdsa_route(op, key, now);
    }

    /// Presignatures ready in the pool of `key` (for monitoring and tests).
    pub fn presignature_pool_len(&self, key: &KeyId) -> usize {
        self.pool_len::<Presignatures>(key)
    }

    /// Starts a presigning run of about `want` presignatures with every usable holder; `false` if fewer than
    /// `2k - 1` are usable.
    fn presign_start(&mut self, key: KeyId, want: usize, now: Instant) -> bool {
        let Some(k) = self.threshold_of(&key) else {
            return false;
        };
        let batch = u32::try_from(want).unwrap_or(u32::MAX).min(ecdsa::MAX_BATCH);
        let holders = self.usable_holders(&key, now);
        if holders.len() < Presignatures::refill_quorum(k) {
            // Presigning needs 2k - 1 holders online (n = 2k - 1: every holder).
            tracing::warn!(%key, usable = holders.len(), needed = 2 * k - 1, "presigning impossible");
            return false;
        }
        let run = self.fresh_session();
        let parties: Vec<(SignerId, [u8; 32])> = holders
            .iter()
            .filter_map(|(id, n)| Some((*id, self.party_node(*n)?)))
            .collect();
        if parties.len() != holders.len() {
            return false;
        }
        if let Some(p) = self.presig_pools.get_mut(&key) {
            p.refilling += 1;
        }
        let op = self.new_op(Op::Presign(Box::new(PresignOp {
            key,
            run,
            batch,
            members: holders.clone(),
            round: 1,
            asked: HashMap::new(),
            returned: BTreeMap::new(),
            publics: None,
            checked: Vec::new(),
            committed: BTreeSet::new(),
            blame: false,
            accusations: BTreeMap::new(),
            reports: Vec::new(),
        })));
        tracing::debug!(%key, batch, members = holders.len(), "presigning run started");
        let requests = holders
            .iter()
            .map(|(id, n)| {
                let body = RequestBody::PresignStart {
                    key,
                    run,
                    parties: parties.clone(),
                    batch,
                };
                (*id, *n, body)
            })
            .collect();
        self.presign_send(op, requests, now);
        true
    }

    fn presign_send(&mut self, op: OpId, requests: Vec<(SignerId, NodeIndex, RequestBody)>, now: Instant) {
        for (id, node, body) in requests {
            let request = self.next_request;
            if self
                .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
                .is_err()
            {
                self.presign_abort(op, Vec::new(), "request frame".into(), now);
                return;
            }
            if let Some(Op::Presign(p)) = self.ops.get_mut(&op) {
                p.asked.insert(request, id);
            }
        }
    }

    /// Ends a failed presigning run: its members named culprits are excluded; waiting signatures get a new run.
    pub(super) fn presign_abort(&mut self, op: OpId, culprits: Vec<NodeIndex>, detail: String, now: Instant) {
        let Some(Op::Presign(p)) = self.ops.remove(&op) else {
            return;
        };
        tracing::warn!(key = %p.key, %detail, "presigning run aborted");
        for node in culprits {
            self.accuse(node, p.key, format!("misbehaved in presigning for key {}", p.key));
        }
        self.pool_refilled::<Presignatures>(p.key, false);
        self.pool_serve::<Presignatures>(p.key, now);
    }

    /// A presigning request failed at `node` (error, timeout, disconnection).
    pub(super) fn presign_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let detail = format!("{} failed during presigning: {why}", self.node_name(node));
        let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
            return;
        };
        if p.asked.remove(&request).is_none() {
            return;
        }
        match p.round {
            // Step 5: the other members stored the batch; this one will not be asked to sign with it.
            5 => self.presign_committed(op, None, now),
            // Blame step: a member that does not reveal is named by the others' conclusions.
            REVEAL_ROUND | CONCLUDE_ROUND => {
                p.reports.push(detail);
                if p.asked.is_empty() {
                    self.presign_blame_next(op, now);
                }
            }
            _ => self.presign_abort(op, Vec::new(), detail, now),
        }
    }

    /// A member's answer in a presigning run.
    pub(super) fn presign_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let name = self.node_name(node);
        let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(id) = p.asked.remove(&request) else {
            return;
        };
        let (run, round) = (p.run, p.round);
        match body {
            ResponseBody::Envelopes(envs) if round < 4 => {
                let checked = match self.checked_envelopes(node, id, run, round, &envs) {
                    Ok(c) => c,
                    Err(why) => return self.presign_abort(op, vec![node], why, now),
                };
                let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
                    return;
                };
                p.returned.insert(id, checked);
                if p.asked.is_empty() {
                    self.presign_next_round(op, now);
                }
            }
            ResponseBody::Presigned(publics) if round == 4 => {
                let bytes: Vec<u8> = publics.concat();
                match &p.publics {
                    Some(first) if *first != bytes => {
                        p.reports.push("members disagree on the presignatures".into());
                        p.blame = true;
                    }
                    Some(_) => {}
                    None => {
                        let decoded: Option<Vec<PresignaturePublic>> = publics
                            .iter()
                            .map(|b| PresignaturePublic::decode(b).ok())
                            .collect();
                        // A sharing registered under another id (a reshare's pending id) presigns under its name.
                        let name = self.keys.get(&p.key).map_or(p.key, |k| k.name);
                        let fits = decoded.as_ref().is_some_and(|d| {
                            d.len() == p.batch as usize
                                && d.iter().enumerate().all(|(i, x)| {
                                    x.key_id == name
                                        && x.id.session == run
                                        && x.id.index as usize == i
                                        && x.commitments.keys().eq(p.members.keys())
                                })
                        });
                        match decoded {
                            Some(d) if fits => p.checked = d,
                            _ => {
                                return self.presign_abort(
                                    op,
                                    vec![node],
                                    "presignatures do not fit the run".into(),
                                    now,
                                );
                            }
                        }
                        p.publics = Some(bytes);
                    }
                }
                if p.asked.is_empty() {
                    self.presign_checked(op, now);
                }
            }
            ResponseBody::Envelopes(envs) if round == 4 || round == REVEAL_ROUND => {
                // A member's reveal: its check failed (round 4), or it was asked to reveal (round 6).
                let checked = match self.checked_envelopes(node, id, run, REVEAL_ROUND, &envs) {
                    Ok(c) => c,
                    Err(why) => return self.presign_abort(op, vec![node], why, now),
                };
                let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
                    return;
                };
                if round == 4 {
                    p.blame = true;
                    p.reports.push(format!("{name}: presignature checks failed"));
                }
                p.returned.insert(id, checked);
                if p.asked.is_empty() {
                    if round == 4 {
                        self.presign_checked(op, now);
                    } else {
                        self.presign_blame_next(op, now);
                    }
                }
            }
            ResponseBody::Aborted { culprits, detail } if round == CONCLUDE_ROUND => {
                for c in culprits.iter().filter(|c| p.members.contains_key(c)) {
                    *p.accusations.entry(*c).or_default() += 1;
                }
                p.reports.push(format!("{name}: {detail}"));
                if p.asked.is_empty() {
                    self.presign_blame_next(op, now);
                }
            }
            ResponseBody::Done if round == 5 => self.presign_committed(op, Some(id), now),
            ResponseBody::Aborted { culprits, detail } => {
                let nodes: Vec<NodeIndex> = culprits
                    .iter()
                    .filter_map(|c| p.members.get(c).copied())
                    .collect();
                let detail = format!("{} reports: {detail}", self.node_name(node));
                self.presign_abort(op, nodes, detail, now);
            }
            other => {
                let detail = format!(
                    "{} answered {other:?} in presigning round {round}",
                    self.node_name(node)
                );
                self.presign_abort(op, vec![node], detail, now);
            }
        }
    }

    /// Every member answered step 4: commit the batch (step 5) when all passed their checks and agree, else run
    /// the blame step (the members that passed reveal too, which destroys their presignatures).
    fn presign_checked(&mut self, op: OpId, now: Instant) {
        let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
            return;
        };
        let (key, run) = (p.key, p.run);
        if p.blame {
            p.round = REVEAL_ROUND;
            let requests: Vec<(SignerId, NodeIndex, RequestBody)> = p
                .members
                .iter()
                .filter(|(id, _)| !p.returned.contains_key(id))
                .map(|(id, n)| {
                    let body = RequestBody::PresignRound {
                        key,
                        run,
                        round: REVEAL_ROUND,
                        inbox: Vec::new(),
                    };
                    (*id, *n, body)
                })
                .collect();
            if requests.is_empty() {
                return self.presign_blame_next(op, now);
            }
            return self.presign_send(op, requests, now);
        }
        p.round = 5;
        let requests = p
            .members
            .iter()
            .map(|(id, n)| {
                let body = RequestBody::PresignRound {
                    key,
                    run,
                    round: 5,
                    inbox: Vec::new(),
                };
                (*id, *n, body)
            })
            .collect();
        self.presign_send(op, requests, now);
    }

    /// The blame step moves on once every member asked answered: after the reveals (6), every member gets the
    /// others' reveals to conclude (7); after the conclusions, the run is aborted naming every member that at
    /// least `k` members named. With at most `k - 1` faulty members among the `>= 2k - 1`, the honest ones (at
    /// least `k`) all name a real culprit, and the faulty ones alone cannot get an honest member named.
    fn presign_blame_next(&mut self, op: OpId, now: Instant) {
        let Some(Op::Presign(p)) = self.ops.get(&op) else {
            return;
        };
        if p.round == REVEAL_ROUND {
            return self.presign_next_round(op, now);
        }
        let k = self.threshold_of(&p.key).unwrap_or(usize::MAX);
        let culprits: Vec<NodeIndex> = p
            .accusations
            .iter()
            .filter(|(_, named)| **named >= k)
            .filter_map(|(id, _)| p.members.get(id).copied())
            .collect();
        let detail = format!("presigning checks failed; blame step: {}", p.reports.join("; "));
        self.presign_abort(op, culprits, detail, now);
    }

    fn presign_next_round(&mut self, op: OpId, now: Instant) {
        let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
            return;
        };
        let returned = std::mem::take(&mut p.returned);
        let (inboxes, _) = route_envelopes(&returned, p.members.keys().copied());
        p.round += 1;
        let (key, run, round) = (p.key, p.run, p.round);
        let requests = inboxes
            .into_iter()
            .filter_map(|(id, inbox)| {
                let node = *p.members.get(&id)?;
                Some((
                    id,
                    node,
                    RequestBody::PresignRound {
                        key,
                        run,
                        round,
                        inbox,
                    },
                ))
            })
            .collect();
        self.presign_send(op, requests, now);
    }

    /// Step 5 answered by `member` (`None`: the member failed); when all answered, the batch joins the pool.
    fn presign_committed(&mut self, op: OpId, member: Option<SignerId>, now: Instant) {
        let Some(Op::Presign(p)) = self.ops.get_mut(&op) else {
            return;
        };
        if let Some(m) = member {
            p.committed.insert(m);
        }
        if !p.asked.is_empty() {
            return;
        }
        let Some(Op::Presign(p)) = self.ops.remove(&op) else {
            return;
        };
        let members: BTreeMap<SignerId, NodeIndex> = p
            .members
            .iter()
            .filter(|(id, _)| p.committed.contains(id))
            .map(|(id, n)| (*id, *n))
            .collect();
        self.pool_refilled::<Presignatures>(p.key, true);
        if !p.checked.is_empty() {
            self.dkls.stocked.insert(p.key);
        }
        let pool = self.presig_pools.entry(p.key).or_default();
        for public in p.checked {
            pool.entries.push_back(Entry {
                public,
                members: members.clone(),
            });
        }
        tracing::debug!(key = %p.key, stock = pool.entries.len(), "presignatures added");
        self.pool_serve::<Presignatures>(p.key, now);
    }

    /// Starts signature `op` with presignature `entry`: a fresh session, the first `k` of `signers` asked.
    fn ecdsa_send(&mut self, op: OpId, entry: Entry, signers: Vec<(SignerId, NodeIndex)>, now: Instant) {
        let session = self.fresh_session();
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(k) = self.keys.get(&s.key).map(|k| usize::from(k.threshold)) else {
            return;
        };
        s.session = session;
        s.presignature = Some(entry);
        s.asked.clear();
        s.used.clear();
        s.shares.clear();
        s.tries.attempts += 1;
        for (id, node) in signers.into_iter().take(k) {
            self.ecdsa_ask(op, id, node, now);
        }
    }

    /// Asks member `id` on `node` for its share of the current presignature, session and digest.
    fn ecdsa_ask(&mut self, op: OpId, id: SignerId, node: NodeIndex, now: Instant) {
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(PresignatureId { session: run, index }) = s.presignature.as_ref().map(|e| e.public.id)
        else {
            return;
        };
        let body = match &s.data {
            Some(data) => RequestBody::EcdsaSignData {
                key: s.key,
                run,
                index,
                data: data.clone(),
            },
            None => RequestBody::EcdsaSign {
                key: s.key,
                run,
                index,
                digest: s.digest.clone(),
            },
        };
        let (request, session) = (self.next_request, s.session);
        s.used.insert(id);
        if let Err(e) = self.send(op, node, session, self.unix_at(now), body, now) {
            self.finish_sign(op, Err(SignError::Frame(e)));
            return;
        }
        if let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) {
            s.asked.insert(request, id);
        }
    }

    /// Asks members of the current presignature not asked yet until `k` shares are in or due; when too few are
    /// left, the presignature is given up and the signature goes back in line for another.
    fn ecdsa_replace(&mut self, op: OpId, now: Instant) {
        let Some(Op::EcdsaSign(s)) = self.ops.get(&op) else {
            return;
        };
        let Some(k) = self.threshold_of(&s.key) else {
            return;
        };
        let due = s.shares.len() + s.asked.len();
        if due >= k {
            return;
        }
        let spare: Vec<(SignerId, NodeIndex)> = match &s.presignature {
            Some(e) => self
                .usable_members(&e.members, &s.tries.avoid, now)
                .into_iter()
                .filter(|(id, _)| !s.used.contains(id))
                .collect(),
            None => Vec::new(),
        };
        if spare.len() < k - due {
            let key = s.key;
            if let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) {
                s.presignature = None;
                s.asked.clear();
                s.used.clear();
                s.shares.clear();
            }
            return self.ecdsa_retry(op, key, now);
        }
        for (id, node) in spare.into_iter().take(k - due) {
            tracing::debug!(member = %id, "asking another member with the same presignature");
            self.ecdsa_ask(op, id, node, now);
        }
    }

    /// An ECDSA signature request failed at `node` (error, timeout, disconnection): another member of the same
    /// presignature is asked.
    pub(super) fn ecdsa_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let name = self.node_name(node);
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        if s.asked.remove(&request).is_some() {
            s.tries.avoid_node(node, name, why);
            self.ecdsa_replace(op, now);
        }
    }

    /// An ECDSA signature share arrived.
    pub(super) fn ecdsa_response(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        body: ResponseBody,
        now: Instant,
    ) {
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(expected) = s.asked.remove(&request) else {
            return;
        };
        let share = match body {
            ResponseBody::Share { signer, share } if signer == expected => {
                ecdsa::SignatureShare::decode(&share).ok()
            }
            _ => None,
        };
        let Some(share) = share else {
            let key = s.key;
            self.culprit(op, node, key, "sent a malformed ECDSA share");
            return self.ecdsa_replace(op, now);
        };
        s.shares.insert(expected, share);
        if !s.asked.is_empty() {
            return;
        }
        self.ecdsa_combine(op, now);
    }

    /// Combines the shares in with the key's [`PreparedKey`] (verifying the signature); members named by the
    /// combination are excluded, their shares dropped and replaced with the same presignature.
    fn ecdsa_combine(&mut self, op: OpId, now: Instant) {
        let Some(Op::EcdsaSign(s)) = self.ops.get(&op) else {
            return;
        };
        let key = s.key;
        let (Some(entry), Some(known)) = (s.presignature.as_ref(), self.keys.get(&key)) else {
            return;
        };
        let Some(pk) = known.public.as_ecdsa() else {
            return;
        };
        let prepared = self
            .prepared_keys
            .entry(key)
            .or_insert_with(|| PreparedKey::new(&pk.verifying));
        let req = SignRequest {
            session: s.session,
            presignature: entry.public.id,
            digest: s.digest.clone(),
        };
        let outcome = ecdsa::combine_with(&entry.public, prepared, &req, &s.shares);
        let culprits = match &outcome {
            Ok(c) => c.culprits.iter().map(|c| c.id).collect(),
            Err(e) => e.culprits(),
        };
        let holders = known.holders.clone();
        for c in &culprits {
            if let Some(&n) = holders.get(c) {
                self.culprit(op, n, key, "sent an invalid ECDSA signature share");
            }
        }
        match outcome {
            Ok(c) => {
                self.count_fast_signature();
                let culprits = match self.ops.get(&op) {
                    Some(Op::EcdsaSign(s)) => s.tries.culprits.clone(),
                    _ => Vec::new(),
                };
                self.finish_sign(
                    op,
                    Ok(Signature {
                        bytes: c.to_der(),
                        culprits,
                    }),
                );
            }
            Err(e) if !culprits.is_empty() => {
                tracing::warn!(error = %e, "bad ECDSA shares dropped; other members asked with the same presignature");
                if let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) {
                    s.shares.retain(|id, _| !culprits.contains(id));
                }
                self.ecdsa_replace(op, now);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ECDSA shares did not combine; another presignature is tried");
                if let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) {
                    s.presignature = None;
                    s.asked.clear();
                    s.used.clear();
                    s.shares.clear();
                }
                self.ecdsa_retry(op, key, now);
            }
        }
    }
}
