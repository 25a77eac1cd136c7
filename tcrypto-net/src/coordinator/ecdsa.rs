//! The coordinator's threshold ECDSA: a presignature pool per P-256 key, kept filled in the background, and
//! one-round signing from any `k` members of a presignature's presigning set.
//!
//! **Presigning** needs `2k - 1` holders online (`tcrypto::ecdsa`: `n >= 2t + 1` evaluation points for the
//! degree-`2t` products). A run takes every usable holder, relays three rounds of envelopes (checked like the
//! DKG's), collects every member's public parts of the batch (all must be equal), and only then tells the members
//! to store the batch (step 5), so a presignature is usable only once every member passed its checks. A run
//! starts when the ready stock falls below the low watermark or a signature waits, and makes enough to reach the
//! high watermark (at most `tcrypto::ecdsa::MAX_BATCH`). One run per key at a time.
//!
//! **Signing** takes one presignature out of the pool (the coordinator never hands it out twice; each member
//! also marks it spent on disk before its share leaves), asks `k` usable members, combines and verifies with the
//! public key; culprits named by the combination are excluded and the signature is retried with another
//! presignature. A member that fails or disconnects is avoided and another presignature taken.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use tcrypto::ecdsa::{self, PresignatureId, PresignaturePublic, SignRequest};
use tcrypto::{KeyId, SessionId, SignerId};

use super::ec::{Tries, route_envelopes};
use super::{Coordinator, Event, NodeIndex, Op, OpId, SignError, Signature, unavailable};
use crate::sealed::Envelope;
use crate::wire::{RequestBody, RequestId, ResponseBody};

/// Most presignatures one ECDSA signature may try.
const MAX_ECDSA_ATTEMPTS: u32 = 8;
/// Consecutive failed presigning runs after which waiting signatures fail.
const MAX_FAILED_RUNS: u32 = 3;

#[derive(Debug)]
struct Entry {
    public: PresignaturePublic,
    members: BTreeMap<SignerId, NodeIndex>,
}

#[derive(Debug, Default)]
pub(super) struct PresigPool {
    entries: VecDeque<Entry>,
    running: bool,
    failed_runs: u32,
    waiting: VecDeque<OpId>,
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
}

/// An ECDSA signature in progress.
#[derive(Debug)]
pub(super) struct EcdsaSignOp {
    key: KeyId,
    digest: Vec<u8>,
    session: SessionId,
    public: Option<PresignaturePublic>,
    asked: HashMap<RequestId, SignerId>,
    shares: BTreeMap<SignerId, ecdsa::SignatureShare>,
    pub(super) tries: Tries,
}

impl Coordinator {
    /// Starts an ECDSA signature (called by `start_sign` for P-256 keys).
    pub(super) fn start_ecdsa_sign(&mut self, key: KeyId, digest: Vec<u8>, now: Instant) -> OpId {
        let op = self.new_op(Op::EcdsaSign(Box::new(EcdsaSignOp {
            key,
            digest,
            session: self.fresh_session(),
            public: None,
            asked: HashMap::new(),
            shares: BTreeMap::new(),
            tries: Tries::default(),
        })));
        self.presig_pools.entry(key).or_default().waiting.push_back(op);
        self.ecdsa_serve(key, now);
        op
    }

    /// Presignatures ready in the pool of `key` (for monitoring and tests).
    pub fn presignature_pool_len(&self, key: &KeyId) -> usize {
        self.presig_pools.get(key).map_or(0, |p| p.entries.len())
    }

    /// Serves waiting ECDSA signatures of `key` and starts a presigning run when the pool is low.
    pub(super) fn ecdsa_serve(&mut self, key: KeyId, now: Instant) {
        let Some(k) = self.keys.get(&key).map(|k| usize::from(k.threshold)) else {
            let waiting: Vec<OpId> = self
                .presig_pools
                .remove(&key)
                .map(|p| p.waiting.into())
                .unwrap_or_default();
            for op in waiting {
                self.finish_sign(op, Err(SignError::UnknownKey(key)));
            }
            return;
        };
        loop {
            let Some(pool) = self.presig_pools.get(&key) else {
                return;
            };
            let Some(&op) = pool.waiting.front() else { break };
            let avoid = match self.ops.get(&op) {
                Some(Op::EcdsaSign(s)) => s.tries.avoid.clone(),
                _ => {
                    if let Some(p) = self.presig_pools.get_mut(&key) {
                        p.waiting.pop_front();
                    }
                    continue;
                }
            };
            let usable_members = |e: &Entry| -> Vec<(SignerId, NodeIndex)> {
                let mut m: Vec<(SignerId, NodeIndex)> = e
                    .members
                    .iter()
                    .filter(|(_, n)| self.usable(**n, now) && !avoid.contains(n))
                    .map(|(id, n)| (*id, *n))
                    .collect();
                m.sort_by_key(|(_, n)| self.health_rank(*n, now));
                m
            };
            let found = pool
                .entries
                .iter()
                .position(|e| usable_members(e).len() >= k)
                .and_then(|i| {
                    let signers: Vec<(SignerId, NodeIndex)> = pool.entries.get(i).map(&usable_members)?;
                    Some((i, signers))
                });
            let Some((i, mut signers)) = found else { break };
            signers.truncate(k);
            let Some(pool) = self.presig_pools.get_mut(&key) else {
                return;
            };
            pool.waiting.pop_front();
            let Some(entry) = pool.entries.remove(i) else {
                break;
            };
            self.ecdsa_send(op, entry.public, signers, now);
        }
        self.presign_if_low(key, k, now);
    }

    fn presign_if_low(&mut self, key: KeyId, k: usize, now: Instant) {
        let (low, high) = (
            self.cfg.presign_low_watermark,
            self.cfg.presign_high_watermark.max(1),
        );
        let Some(pool) = self.presig_pools.get(&key) else {
            return;
        };
        if pool.running || (pool.entries.len() >= low && pool.waiting.is_empty()) {
            return;
        }
        let want = high
            .saturating_sub(pool.entries.len())
            .max(pool.waiting.len())
            .max(1);
        let batch = u32::try_from(want).unwrap_or(u32::MAX).min(ecdsa::MAX_BATCH);
        let holders: BTreeMap<SignerId, NodeIndex> = self
            .keys
            .get(&key)
            .map(|kk| {
                kk.holders
                    .iter()
                    .filter(|(_, n)| self.usable(**n, now))
                    .map(|(s, n)| (*s, *n))
                    .collect()
            })
            .unwrap_or_default();
        let failed_too_often = pool.failed_runs >= MAX_FAILED_RUNS;
        if holders.len() + 1 < 2 * k || failed_too_often {
            // Presigning needs 2k - 1 holders online; signatures waiting for a presignature cannot be served.
            let waiting: Vec<OpId> = self
                .presig_pools
                .get_mut(&key)
                .map(|p| {
                    p.failed_runs = 0;
                    p.waiting.drain(..).collect()
                })
                .unwrap_or_default();
            for op in waiting {
                let err = match self.ops.get(&op) {
                    Some(Op::EcdsaSign(s)) => {
                        unavailable(holders.len(), 2 * k - 1, &s.tries.failures, &s.tries.culprits)
                    }
                    _ => unavailable(holders.len(), 2 * k - 1, &[], &[]),
                };
                self.finish_sign(op, Err(err));
            }
            return;
        }
        let run = self.fresh_session();
        let parties: Vec<(SignerId, [u8; 32])> = holders
            .iter()
            .filter_map(|(id, n)| Some((*id, self.party_node(*n)?)))
            .collect();
        if parties.len() != holders.len() {
            return;
        }
        if let Some(p) = self.presig_pools.get_mut(&key) {
            p.running = true;
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
            let name = self.node_name(node);
            self.exclude(node, format!("misbehaved in presigning for key {}", p.key));
            self.events.push_back(Event::Culprit {
                node,
                name,
                key: p.key,
            });
        }
        if let Some(pool) = self.presig_pools.get_mut(&p.key) {
            pool.running = false;
            pool.failed_runs += 1;
        }
        self.ecdsa_serve(p.key, now);
    }

    /// A presigning request failed at `node` (error, timeout, disconnection).
    pub(super) fn presign_request_failed(&mut self, op: OpId, node: NodeIndex, why: String, now: Instant) {
        let detail = format!("{} failed during presigning: {why}", self.node_name(node));
        let committing = matches!(self.ops.get(&op), Some(Op::Presign(p)) if p.round == 5);
        if committing {
            // Step 5: the other members stored the batch; this one will not be asked to sign with it.
            self.presign_committed(op, None, now);
        } else {
            self.presign_abort(op, Vec::new(), detail, now);
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
                        return self.presign_abort(
                            op,
                            Vec::new(),
                            "members disagree on the presignatures".into(),
                            now,
                        );
                    }
                    Some(_) => {}
                    None => {
                        let decoded: Option<Vec<PresignaturePublic>> = publics
                            .iter()
                            .map(|b| PresignaturePublic::decode(b).ok())
                            .collect();
                        let fits = decoded.as_ref().is_some_and(|d| {
                            d.len() == p.batch as usize
                                && d.iter().enumerate().all(|(i, x)| {
                                    x.key_id == p.key
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
                    p.round = 5;
                    let requests = p
                        .members
                        .iter()
                        .map(|(id, n)| {
                            let body = RequestBody::PresignRound {
                                key: p.key,
                                run,
                                round: 5,
                                inbox: Vec::new(),
                            };
                            (*id, *n, body)
                        })
                        .collect();
                    self.presign_send(op, requests, now);
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
        let pool = self.presig_pools.entry(p.key).or_default();
        pool.running = false;
        pool.failed_runs = 0;
        for public in p.checked {
            pool.entries.push_back(Entry {
                public,
                members: members.clone(),
            });
        }
        tracing::debug!(key = %p.key, stock = pool.entries.len(), "presignatures added");
        self.ecdsa_serve(p.key, now);
    }

    fn ecdsa_send(
        &mut self,
        op: OpId,
        public: PresignaturePublic,
        signers: Vec<(SignerId, NodeIndex)>,
        now: Instant,
    ) {
        let session = self.fresh_session();
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        let PresignatureId { session: run, index } = public.id;
        s.session = session;
        s.public = Some(public);
        s.asked.clear();
        s.shares.clear();
        s.tries.attempts += 1;
        let (key, digest) = (s.key, s.digest.clone());
        for (id, node) in signers {
            let request = self.next_request;
            let body = RequestBody::EcdsaSign {
                key,
                run,
                index,
                digest: digest.clone(),
            };
            if let Err(e) = self.send(op, node, session, self.unix_at(now), body, now) {
                self.finish_sign(op, Err(SignError::Frame(e)));
                return;
            }
            if let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) {
                s.asked.insert(request, id);
            }
        }
    }

    fn ecdsa_retry(&mut self, op: OpId, avoid: Option<NodeIndex>, why: Option<String>, now: Instant) {
        let avoid = avoid.map(|n| (n, self.node_name(n), why.unwrap_or_default()));
        let Some(Op::EcdsaSign(s)) = self.ops.get_mut(&op) else {
            return;
        };
        s.asked.clear();
        s.shares.clear();
        s.public = None;
        let key = s.key;
        let needed = self.keys.get(&key).map_or(0, |k| usize::from(k.threshold));
        if let Some(err) = s.tries.failed(avoid, MAX_ECDSA_ATTEMPTS, needed) {
            self.finish_sign(op, Err(err));
            return;
        }
        self.presig_pools.entry(key).or_default().waiting.push_front(op);
        self.ecdsa_serve(key, now);
    }

    /// An ECDSA signature request failed at `node`.
    pub(super) fn ecdsa_request_failed(
        &mut self,
        op: OpId,
        request: RequestId,
        node: NodeIndex,
        why: String,
        now: Instant,
    ) {
        let Some(Op::EcdsaSign(s)) = self.ops.get(&op) else {
            return;
        };
        if s.asked.contains_key(&request) {
            self.ecdsa_retry(op, Some(node), Some(why), now);
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
            return self.ecdsa_retry(op, Some(node), None, now);
        };
        s.shares.insert(expected, share);
        if !s.asked.is_empty() {
            return;
        }
        let key = s.key;
        let (Some(public), Some(pk)) = (
            s.public.as_ref(),
            self.keys.get(&key).and_then(|k| k.public.as_ecdsa()),
        ) else {
            return;
        };
        let req = SignRequest {
            session: s.session,
            presignature: public.id,
            digest: s.digest.clone(),
        };
        let outcome = ecdsa::combine(public, &pk.verifying, &req, &s.shares).map(|c| {
            let valid = pk.verifying.verify_prehash(&req.digest, &c.signature).is_ok();
            (c, valid)
        });
        let holders = self.keys.get(&key).map(|k| k.holders.clone()).unwrap_or_default();
        let culprits = match &outcome {
            Ok((c, _)) => c.culprits.iter().map(|c| c.id).collect(),
            Err(e) => e.culprits(),
        };
        for c in culprits {
            if let Some(&n) = holders.get(&c) {
                self.culprit(op, n, key, "sent an invalid ECDSA signature share");
            }
        }
        match outcome {
            Ok((c, true)) => {
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
            other => {
                if let Err(e) = other {
                    tracing::warn!(error = %e, "ECDSA shares did not combine; another presignature is tried");
                }
                self.ecdsa_retry(op, None, None, now);
            }
        }
    }

    /// Keys with ECDSA signatures waiting.
    pub(super) fn ecdsa_keys_waiting(&self) -> Vec<KeyId> {
        self.presig_pools
            .iter()
            .filter(|(_, p)| !p.waiting.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Fills the presignature pool of `key` now (e.g. right after creating the key).
    pub(super) fn ecdsa_prefill(&mut self, key: KeyId, now: Instant) {
        self.presig_pools.entry(key).or_default();
        self.ecdsa_serve(key, now);
    }
}
