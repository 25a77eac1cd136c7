//! The coordinator's side of a reshare (issue 14): a sans-io plan that says which requests to send and what to
//! sign, fed with the nodes' answers. [`crate::client::Cluster::reshare`] (blocking) and
//! [`crate::client::asynchronous::AsyncCluster::reshare`] (tokio) drive it.
//!
//! **Two-phase commit.** Every run starts by settling what an earlier run left (see below). Then:
//!
//! 1. the nodes' status of the key ([`RequestBody::ReshareStatus`]) gives the current sharing (the highest
//!    committed epoch `C`, its holders and public description) and the new epoch `E` (above every epoch seen);
//! 2. the reshare runs ([`RequestBody::ReshareStart`], [`RequestBody::ReshareRound`] 2..=5, envelopes relayed as
//!    they come: dealings and sub-shares to the new holders, verdicts to new holders and dealers, answers and
//!    confirmations to the new holders); every new holder must end with the same new public description and
//!    store its share **pending** (a failure anywhere aborts: [`RequestBody::ReshareAbort`] to every new holder);
//! 3. the coordinator registers the pending sharing under its pending id and obtains **one test signature**
//!    from a quorum of the new holders with their pending shares, verified under the key's public key (else
//!    abort);
//! 4. **commit**: [`RequestBody::ReshareCommit`] to the new holders one by one. The first that answers has
//!    recorded the decision on its disk; from then on the sharing of `E` is the key's;
//! 5. **retire**: once at least `k'` new holders committed, [`RequestBody::ReshareRetire`] to every old holder
//!    not in the new set (their shares, presignatures and nonces are deleted).
//!
//! **Settling** (what a later run, or [`crate::client::Cluster::settle_reshare`] on a fresh coordinator, does
//! first): with `C` the highest epoch any node committed (served or retired at), a node's pending share of epoch
//! `C` is committed (roll forward), one of any other epoch is aborted (no node decided it: roll back), and once
//! the sharing of `C` has `k'` committed holders every node still serving an older epoch is retired. So after a
//! crash of the coordinator or a node at any step, the nodes' records alone decide which one sharing remains.
//!
//! **Culprits.** The new holders name the old holders they left out of the new sharing (and false accusers) in
//! their round-5 answers ([`Outcome::culprits`], [`Outcome::disqualified`]), or, when fewer than `k` honest
//! dealers remain, in their aborts ([`ReshareError::Misbehaved`]; the run is rolled back). A node counts as named
//! when more than half of the new holders name it (honest new holders agree; one lying new holder names nobody). A dealer that signs two
//! dealings in round 1 is named by the coordinator itself, which relays neither. The driver excludes every named
//! node in the coordinator ([`exclude_culprits`], as a signature culprit is); a later run of that coordinator
//! leaves excluded nodes out of the dealers while `k` others can deal, and refuses to make one a new holder
//! ([`ReshareError::Excluded`]) unless the caller admits it ([`Resharing::admitting`]).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};
use tcrypto::{HashAlg, KeyId, SessionId, SignerId};

use super::NodeIndex;
use crate::node::reshare::pending_id;
use crate::transport::identity::NodePublic;
use crate::transport::sealed::Envelope;
use crate::transport::wire::{
    Algorithm, KeyInfo, Mechanism, RequestBody, ReshareClaim, ReshareSetup, ReshareState, ResponseBody,
};

/// What to do with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Only finish or roll back what an earlier run left.
    Settle,
    /// Reshare to `nodes` (new holder `j + 1` on `nodes[j]`) with threshold `threshold`.
    Reshare {
        /// The new holders, in new signer id order.
        nodes: Vec<NodeIndex>,
        /// `k'`.
        threshold: u16,
    },
    /// Reshare to the same holders (same signer ids) with the same threshold.
    Refresh,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Want {
    /// Send these requests (at once) and feed every answer back with [`Resharing::answers`], in this order.
    Ask(Vec<(NodeIndex, RequestBody)>),
    /// Register the sharing `info` under `id` with `holders`, sign `mechanism` with it (any quorum of the
    /// holders) and feed the outcome back with [`Resharing::signed`]; then forget `id`.
    TestSign {
        /// The pending id the new holders answer under.
        id: KeyId,
        /// The pending sharing's description (named after the key).
        info: KeyInfo,
        /// New signer id -> node.
        holders: BTreeMap<SignerId, NodeIndex>,
        /// What to sign.
        mechanism: Mechanism,
    },
    /// Finished.
    Done(Result<Outcome, ReshareError>),
}

/// Why a reshare, refresh or settle did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReshareError {
    /// Another reshare of the key is in progress (a node's claim, `crate::node::reshare::Claims`): nothing of this run
    /// was left on the nodes. Retry once that one ends (it commits or aborts, or its claim expires).
    #[error("node {node} refused: {claim}")]
    Pending {
        /// The node that refused.
        node: String,
        /// The reshare in progress there: the key, its epoch, its coordinator, when the claim expires.
        claim: ReshareClaim,
    },
    /// The new holders aborted the run naming old holders (too few honest ones dealt: fewer than `k` qualified
    /// dealers) or new holders: the run was rolled back and the old sharing serves on. The named nodes are
    /// excluded in the coordinator that ran it ([`crate::coordinator::Coordinator::exclude`]).
    #[error("reshare of key {key} rolled back: the new holders named {culprits:?}: {detail}")]
    Misbehaved {
        /// The key.
        key: KeyId,
        /// The nodes named, by name.
        culprits: Vec<String>,
        /// What the new holders reported.
        detail: String,
    },
    /// A planned new holder is excluded in this coordinator (named a culprit: a bad signature share, a bad
    /// dealing in an earlier reshare, ...): nothing was started. Readmit it
    /// ([`crate::coordinator::Coordinator::readmit`]), or admit it for this run explicitly
    /// ([`Resharing::admitting`], [`crate::client::Cluster::reshare_admitting`]). Exclusions live in the
    /// coordinator's memory: a fresh coordinator (each `tcrypto-ctl` run) starts with none.
    #[error("node {node} is excluded ({reason}); admit it explicitly to make it a new holder")]
    Excluded {
        /// The node, by name.
        node: String,
        /// Why the coordinator excluded it.
        reason: String,
    },
    /// Anything else (what failed, naming the nodes).
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ReshareError {
    fn from(s: String) -> Self {
        Self::Failed(s)
    }
}

impl From<&str> for ReshareError {
    fn from(s: &str) -> Self {
        Self::Failed(s.to_string())
    }
}

/// A finished reshare or settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The epoch of the sharing the key has now (0: never reshared).
    pub epoch: u64,
    /// Its description (the coordinator registers it), when a sharing with enough holders was found.
    pub info: Option<KeyInfo>,
    /// Its holders (signer id -> node).
    pub holders: BTreeMap<SignerId, NodeIndex>,
    /// What was settled on the way (one line each: "committed epoch 3 on node-a", ...).
    pub settled: Vec<String>,
    /// Nodes that could not be told to retire their old share (down): a later settle retires them.
    pub not_retired: Vec<String>,
    /// Nodes the run named and completed without (an old holder whose sub-shares failed their commitments, a
    /// new holder whose complaint was false), by name: those more than half of the new holders reported (and a
    /// dealer the coordinator caught signing two dealings).
    pub culprits: Vec<String>,
    /// The old holders whose dealings the new sharing was made without (excluded by more than half of the new
    /// holders), by name.
    pub disqualified: Vec<String>,
}

#[derive(Debug)]
enum Phase {
    Status { settle_rounds: usize },
    Settling { settle_rounds: usize },
    Round(u8),
    Testing,
    Committing { next: usize, committed: usize },
    Retiring,
    Aborting(ReshareError),
    Finished,
}

/// A reshare (or settle) of one key in progress.
#[derive(Debug)]
pub struct Resharing {
    key: KeyId,
    goal: Goal,
    nodes: Vec<NodePublic>,
    phase: Phase,
    asked: Vec<(NodeIndex, RequestBody)>,
    settled: Vec<String>,
    run: Option<RunPlan>,
    outcome: Option<Outcome>,
    /// Nodes that refused this run because another run claims the key: they get no abort of ours.
    claimed_elsewhere: BTreeSet<NodeIndex>,
    /// Nodes the coordinator excluded, and why: not planned as new holders (nor as dealers while enough others
    /// deal) unless admitted.
    excluded: BTreeMap<NodeIndex, String>,
    /// Excluded nodes the operator admits as new holders of this run.
    admitted: BTreeSet<NodeIndex>,
    /// Nodes the new holders named during the run (in a finished run's outcome or an abort).
    named: BTreeSet<NodeIndex>,
}

#[derive(Debug)]
struct RunPlan {
    setup: ReshareSetup,
    /// Routing party -> node.
    party_nodes: BTreeMap<SignerId, NodeIndex>,
    dealer_parties: BTreeSet<SignerId>,
    receiver_parties: BTreeSet<SignerId>,
    /// New signer id -> node.
    holders: BTreeMap<SignerId, NodeIndex>,
    /// Nodes of the old sharing that are not new holders.
    to_retire: Vec<NodeIndex>,
    new_info: Option<KeyInfo>,
    /// Nodes the new holders named in round 5.
    culprits: Vec<String>,
    /// Dealers the new holders left out of the new sharing.
    disqualified: Vec<String>,
}

impl RunPlan {
    /// Whether `node` is a new holder of the run.
    fn receives(&self, node: NodeIndex) -> bool {
        self.receiver_parties
            .iter()
            .any(|p| self.party_nodes.get(p) == Some(&node))
    }

    /// The nodes that more than half of the new holders name in `reports` (one report per new holder that
    /// answered; routing parties). Honest new holders agree on whom they name (their views are confirmed equal
    /// before they finish or give up), so with an honest majority of new holders every true culprit is kept,
    /// and one Byzantine new holder naming honest nodes gets nobody excluded.
    fn named_by_most<'a>(&self, reports: impl Iterator<Item = &'a [SignerId]>) -> BTreeSet<NodeIndex> {
        let mut counts: BTreeMap<NodeIndex, usize> = BTreeMap::new();
        for report in reports {
            let nodes: BTreeSet<NodeIndex> = report
                .iter()
                .filter_map(|p| self.party_nodes.get(p).copied())
                .collect();
            for n in nodes {
                *counts.entry(n).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .filter(|(_, c)| c * 2 > self.receiver_parties.len())
            .map(|(n, _)| n)
            .collect()
    }
}

/// The message the test signature of a commit signs.
pub fn test_message(key: &KeyId, epoch: u64) -> Vec<u8> {
    let mut m = b"tcrypto-net reshare test signature v1 ".to_vec();
    m.extend_from_slice(&key.0);
    m.extend_from_slice(&epoch.to_be_bytes());
    m
}

fn test_mechanism(algorithm: Algorithm, message: &[u8]) -> Mechanism {
    let digest = Sha256::digest(message).to_vec();
    match algorithm {
        Algorithm::Rsa => Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha256,
            digest,
        },
        Algorithm::EcdsaP256 => Mechanism::Ecdsa { digest },
        Algorithm::Ed25519 => Mechanism::Ed25519 {
            message: message.to_vec(),
        },
    }
}

/// Most settle passes before a run gives up on a key whose nodes keep disagreeing.
const MAX_SETTLE_ROUNDS: usize = 3;

impl Resharing {
    /// A run for `key` over the cluster's `nodes` (by index).
    pub fn new(key: KeyId, goal: Goal, nodes: Vec<NodePublic>) -> Self {
        Self {
            key,
            goal,
            nodes,
            phase: Phase::Status { settle_rounds: 0 },
            asked: Vec::new(),
            settled: Vec::new(),
            run: None,
            outcome: None,
            claimed_elsewhere: BTreeSet::new(),
            excluded: BTreeMap::new(),
            admitted: BTreeSet::new(),
            named: BTreeSet::new(),
        }
    }

    /// The nodes the coordinator excluded (node, reason; see [`crate::coordinator::NodeHealth::excluded`]): the run
    /// refuses to make one a new holder ([`ReshareError::Excluded`]) unless it is [admitted](Self::admitting), and
    /// leaves them out of the dealers while at least `k` other old holders are reachable.
    pub fn excluding(mut self, excluded: impl IntoIterator<Item = (NodeIndex, String)>) -> Self {
        self.excluded = excluded.into_iter().collect();
        self
    }

    /// Excluded nodes the operator makes new holders all the same (an explicit override: the node was
    /// repaired, or the exclusion was a mistake). An admitted node also deals.
    pub fn admitting(mut self, nodes: impl IntoIterator<Item = NodeIndex>) -> Self {
        self.admitted = nodes.into_iter().collect();
        self
    }

    /// The nodes the new holders named in this run (excluded dealers, false accusers), whether the run finished
    /// or was rolled back: the driver excludes them in the coordinator ([`exclude_culprits`]).
    pub fn named(&self) -> Vec<NodeIndex> {
        self.named.iter().copied().collect()
    }

    /// The first step: the status of the key on every node.
    pub fn start(&mut self) -> Want {
        self.ask_status()
    }

    fn ask_status(&mut self) -> Want {
        let key = self.key;
        self.ask(
            (0..self.nodes.len())
                .map(|n| (n, RequestBody::ReshareStatus { key }))
                .collect(),
        )
    }

    fn ask(&mut self, requests: Vec<(NodeIndex, RequestBody)>) -> Want {
        self.asked = requests.clone();
        Want::Ask(requests)
    }

    fn name(&self, node: NodeIndex) -> String {
        self.nodes.get(node).map(|n| n.name.clone()).unwrap_or_default()
    }

    /// Feeds the answers to the last [`Want::Ask`], in order (an error string for a node that failed or is down).
    pub fn answers(&mut self, answers: Vec<Result<ResponseBody, String>>, rng: &mut impl CryptoRng) -> Want {
        let asked = std::mem::take(&mut self.asked);
        let mut aborted_naming = BTreeSet::new();
        if let (Phase::Round(_), Some(plan)) = (&self.phase, &self.run) {
            let reports = asked.iter().zip(&answers).filter_map(|((n, _), a)| match a {
                Ok(ResponseBody::Aborted { culprits, .. }) if plan.receives(*n) => Some(culprits.as_slice()),
                _ => None,
            });
            aborted_naming = plan.named_by_most(reports);
        }
        self.named.extend(aborted_naming.iter().copied());
        let answers: Vec<(NodeIndex, Result<ResponseBody, String>)> = asked
            .iter()
            .map(|(n, _)| *n)
            .zip(answers.into_iter().map(|a| match a {
                Ok(ResponseBody::Error { code, detail }) => Err(format!("{code:?}: {detail}")),
                Ok(ResponseBody::Aborted { culprits, detail }) => {
                    Err(format!("aborted (culprits {culprits:?}): {detail}"))
                }
                other => other,
            }))
            .collect();
        let claims: Vec<(NodeIndex, ReshareClaim)> = answers
            .iter()
            .filter_map(|(n, a)| match a {
                Ok(ResponseBody::ResharePending(c)) => Some((*n, c.clone())),
                _ => None,
            })
            .collect();
        if let Some((node, claim)) = claims.first() {
            let refused = ReshareError::Pending {
                node: self.name(*node),
                claim: claim.clone(),
            };
            match &self.phase {
                Phase::Aborting(_) => {}
                Phase::Round(_) => {
                    self.claimed_elsewhere = claims.iter().map(|(n, _)| *n).collect();
                    self.phase = Phase::Finished;
                    return self.abort(refused);
                }
                _ => {
                    self.phase = Phase::Finished;
                    return Want::Done(Err(refused));
                }
            }
        }
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::Status { settle_rounds } => self.on_status(&answers, settle_rounds, rng),
            Phase::Settling { settle_rounds } => {
                for ((node, req), (_, a)) in asked.iter().zip(&answers) {
                    match a {
                        Ok(_) => self
                            .settled
                            .push(format!("{} on {}", req.name(), self.name(*node))),
                        Err(e) => {
                            self.settled
                                .push(format!("{} on {} failed: {e}", req.name(), self.name(*node)))
                        }
                    }
                }
                self.phase = Phase::Status {
                    settle_rounds: settle_rounds + 1,
                };
                self.ask_status()
            }
            Phase::Round(r) => self.on_round(r, answers, aborted_naming),
            Phase::Committing { next, committed } => {
                let ok = answers.first().is_some_and(|(_, a)| a.is_ok());
                if ok && committed == 0 {
                    crate::crash::point("coordinator-first-commit");
                }
                self.commit_next(next, committed + usize::from(ok))
            }
            Phase::Retiring => {
                let mut out = self.outcome.take().unwrap_or_else(|| self.empty_outcome());
                for (node, a) in &answers {
                    if let Err(e) = a {
                        out.not_retired.push(format!("{}: {e}", self.name(*node)));
                    }
                }
                out.settled = std::mem::take(&mut self.settled);
                Want::Done(Ok(out))
            }
            Phase::Aborting(why) => Want::Done(Err(why)),
            Phase::Testing | Phase::Finished => Want::Done(Err("answers out of turn".into())),
        }
    }

    fn empty_outcome(&self) -> Outcome {
        Outcome {
            epoch: 0,
            info: None,
            holders: BTreeMap::new(),
            settled: Vec::new(),
            not_retired: Vec::new(),
            culprits: Vec::new(),
            disqualified: Vec::new(),
        }
    }

    fn on_status(
        &mut self,
        answers: &[(NodeIndex, Result<ResponseBody, String>)],
        settle_rounds: usize,
        rng: &mut impl CryptoRng,
    ) -> Want {
        let states: BTreeMap<NodeIndex, ReshareState> = answers
            .iter()
            .filter_map(|(n, a)| match a {
                Ok(ResponseBody::ReshareStatus(s)) => Some((*n, s.clone())),
                _ => None,
            })
            .collect();
        let down: Vec<String> = answers
            .iter()
            .filter(|(n, _)| !states.contains_key(n))
            .map(|(n, _)| self.name(*n))
            .collect();
        let view = View::of(&states);
        let actions = view.settle_actions(self.key);
        if !actions.is_empty() {
            if settle_rounds >= MAX_SETTLE_ROUNDS {
                return Want::Done(Err(ReshareError::Failed(format!(
                    "key {}: the nodes' reshare states do not settle ({} actions left)",
                    self.key,
                    actions.len()
                ))));
            }
            self.phase = Phase::Settling { settle_rounds };
            return self.ask(actions);
        }
        let current = view.current();
        let mut outcome = self.empty_outcome();
        outcome.epoch = view.committed;
        if let Some((info, holders)) = &current {
            outcome.info = Some(info.clone());
            outcome.holders = holders.clone();
        }
        let Some((info, holders)) = current else {
            return Want::Done(Err(ReshareError::Failed(format!(
                "key {}: no sharing with enough reachable holders (down: {})",
                self.key,
                down.join(", ")
            ))));
        };
        let (new_nodes, threshold) = match &self.goal {
            Goal::Settle => {
                outcome.settled = std::mem::take(&mut self.settled);
                return Want::Done(Ok(outcome));
            }
            Goal::Refresh => (holders.values().copied().collect::<Vec<_>>(), info.threshold),
            Goal::Reshare { nodes, threshold } => (nodes.clone(), *threshold),
        };
        match self.plan(&info, &holders, &states, &view, new_nodes, threshold, rng) {
            Ok(plan) => {
                let requests = plan
                    .party_nodes
                    .values()
                    .map(|n| (*n, RequestBody::ReshareStart(plan.setup.clone())))
                    .collect();
                self.run = Some(plan);
                self.phase = Phase::Round(1);
                self.ask(requests)
            }
            Err(e) => Want::Done(Err(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        info: &KeyInfo,
        holders: &BTreeMap<SignerId, NodeIndex>,
        states: &BTreeMap<NodeIndex, ReshareState>,
        view: &View<'_>,
        new_nodes: Vec<NodeIndex>,
        threshold: u16,
        rng: &mut impl CryptoRng,
    ) -> Result<RunPlan, ReshareError> {
        let unique: BTreeSet<NodeIndex> = new_nodes.iter().copied().collect();
        if unique.len() != new_nodes.len() || new_nodes.is_empty() {
            return Err("the new holders must be distinct and at least one".into());
        }
        if let Some(n) = new_nodes.iter().find(|n| **n >= self.nodes.len()) {
            return Err(format!("no node {n}").into());
        }
        if threshold == 0 || usize::from(threshold) > new_nodes.len() {
            return Err(format!("threshold {threshold} outside 1..={}", new_nodes.len()).into());
        }
        if let Some(n) = new_nodes.iter().find(|n| !states.contains_key(n)) {
            return Err(format!("new holder {} is not reachable", self.name(*n)).into());
        }
        let barred = |n: &NodeIndex| self.excluded.contains_key(n) && !self.admitted.contains(n);
        if let Some(n) = new_nodes.iter().find(|n| barred(n)) {
            return Err(ReshareError::Excluded {
                node: self.name(*n),
                reason: self.excluded.get(n).cloned().unwrap_or_default(),
            });
        }
        // Every reachable old holder deals (robust to faulty dealers beyond k); excluded ones only when the others
        // are too few.
        let reachable: Vec<(SignerId, NodeIndex)> = holders
            .iter()
            .filter(|(_, n)| states.contains_key(n))
            .map(|(s, n)| (*s, *n))
            .collect();
        let trusted: Vec<(SignerId, NodeIndex)> =
            reachable.iter().copied().filter(|(_, n)| !barred(n)).collect();
        let dealers = if trusted.len() >= usize::from(info.threshold) {
            trusted
        } else {
            reachable
        };
        if dealers.len() < usize::from(info.threshold) {
            return Err(format!(
                "only {} old holders reachable, {} needed to deal",
                dealers.len(),
                info.threshold
            )
            .into());
        }
        let mut participants: Vec<NodeIndex> = dealers.iter().map(|(_, n)| *n).collect();
        for n in &new_nodes {
            if !participants.contains(n) {
                participants.push(*n);
            }
        }
        participants.sort_unstable();
        let party_of = |n: NodeIndex| -> Option<SignerId> {
            let i = participants.iter().position(|p| *p == n)?;
            SignerId::new(u16::try_from(i + 1).ok()?)
        };
        let mut parties = Vec::new();
        for n in &participants {
            parties.push(self.nodes[*n].identity_key);
        }
        let mut dealer_list: Vec<(SignerId, SignerId)> = dealers
            .iter()
            .filter_map(|(old, n)| Some((party_of(*n)?, *old)))
            .collect();
        dealer_list.sort_unstable();
        let receivers: Vec<SignerId> = new_nodes.iter().filter_map(|n| party_of(*n)).collect();
        let mut run = [0u8; 32];
        rng.fill_bytes(&mut run);
        let setup = ReshareSetup {
            key: self.key,
            epoch: view.highest + 1,
            run: SessionId(run),
            old: info.clone(),
            parties,
            dealers: dealer_list.clone(),
            receivers: receivers.clone(),
            threshold,
        };
        let holders_new: BTreeMap<SignerId, NodeIndex> = new_nodes
            .iter()
            .enumerate()
            .filter_map(|(j, n)| Some((SignerId::new(u16::try_from(j + 1).ok()?)?, *n)))
            .collect();
        let to_retire = holders
            .values()
            .copied()
            .filter(|n| !unique.contains(n))
            .collect();
        Ok(RunPlan {
            party_nodes: participants
                .iter()
                .filter_map(|n| Some((party_of(*n)?, *n)))
                .collect(),
            dealer_parties: dealer_list.iter().map(|(p, _)| *p).collect(),
            receiver_parties: receivers.into_iter().collect(),
            holders: holders_new,
            to_retire,
            setup,
            new_info: None,
            culprits: Vec::new(),
            disqualified: Vec::new(),
        })
    }

    /// Rolls the run back: [`RequestBody::ReshareAbort`] to every node taking part (new holders delete their
    /// pending share; every participant ends its claim on the key), except those that refused the run for
    /// another's claim.
    fn abort(&mut self, why: impl Into<ReshareError>) -> Want {
        let why = why.into();
        let Some(plan) = &self.run else {
            return Want::Done(Err(why));
        };
        let (key, epoch) = (self.key, plan.setup.epoch);
        let requests = plan
            .party_nodes
            .values()
            .filter(|n| !self.claimed_elsewhere.contains(n))
            .map(|n| (*n, RequestBody::ReshareAbort { key, epoch }))
            .collect();
        self.phase = Phase::Aborting(match why {
            ReshareError::Failed(why) => ReshareError::Failed(format!(
                "reshare of key {key} to epoch {epoch} rolled back: {why}"
            )),
            other => other,
        });
        self.ask(requests)
    }

    fn on_round(
        &mut self,
        round: u8,
        answers: Vec<(NodeIndex, Result<ResponseBody, String>)>,
        aborted_naming: BTreeSet<NodeIndex>,
    ) -> Want {
        let Some(plan) = &mut self.run else {
            return Want::Done(Err("no run".into()));
        };
        let node_party: BTreeMap<NodeIndex, SignerId> =
            plan.party_nodes.iter().map(|(p, n)| (*n, *p)).collect();
        let mut failures = Vec::new();
        let mut returned: BTreeMap<SignerId, Vec<Envelope>> = BTreeMap::new();
        let mut created: BTreeMap<SignerId, KeyInfo> = BTreeMap::new();
        let mut named: Vec<Vec<SignerId>> = Vec::new();
        let mut left_out: Vec<Vec<SignerId>> = Vec::new();
        for (node, a) in answers {
            let name = self.nodes.get(node).map(|n| n.name.clone()).unwrap_or_default();
            let Some(&party) = node_party.get(&node) else {
                continue;
            };
            match a {
                Ok(ResponseBody::Envelopes(envs)) if round < 5 => {
                    let verifying = self.nodes.get(node).and_then(|n| n.verifying_key().ok());
                    let mut checked = Vec::new();
                    for bytes in envs {
                        match Envelope::decode(&bytes) {
                            Ok(env)
                                if env.route.from == party
                                    && env.route.round == round
                                    && env.route.session == plan.setup.run
                                    && verifying.as_ref().is_some_and(|v| env.verify(v)) =>
                            {
                                checked.push(env)
                            }
                            _ => failures.push(format!("{name}: bad envelope in round {round}")),
                        }
                    }
                    returned.insert(party, checked);
                }
                Ok(ResponseBody::KeyCreated(info))
                    if round == 5 && plan.receiver_parties.contains(&party) =>
                {
                    created.insert(party, info);
                }
                Ok(ResponseBody::KeyResolved {
                    info,
                    culprits,
                    disqualified,
                }) if round == 5 && plan.receiver_parties.contains(&party) => {
                    named.push(culprits);
                    left_out.push(
                        disqualified
                            .into_iter()
                            .filter(|p| plan.dealer_parties.contains(p))
                            .collect(),
                    );
                    created.insert(party, info);
                }
                Ok(ResponseBody::Done) | Ok(ResponseBody::Envelopes(_))
                    if round == 5 && !plan.receiver_parties.contains(&party) => {}
                Ok(other) => failures.push(format!("{name}: unexpected answer {other:?} in round {round}")),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        if !failures.is_empty() {
            if !aborted_naming.is_empty() {
                let culprits = aborted_naming.iter().map(|n| self.name(*n)).collect();
                // Every new holder reports much the same: the first report, and how many more there were.
                let mut detail = failures[0].clone();
                if failures.len() > 1 {
                    detail.push_str(&format!(" (and {} more reports)", failures.len() - 1));
                }
                return self.abort(ReshareError::Misbehaved {
                    key: self.key,
                    culprits,
                    detail,
                });
            }
            return self.abort(failures.join("; "));
        }
        if round == 1 {
            // A dealer that signed two broadcasts (two dealings) equivocates, provably: relay neither, nor its
            // sub-shares. The new holders then see it silent, exclude it, and complete from the others.
            for (party, envs) in returned.iter_mut() {
                let broadcasts = envs.iter().filter(|e| e.route.to.is_none()).count();
                if broadcasts > 1
                    && plan.dealer_parties.contains(party)
                    && let Some(&node) = plan.party_nodes.get(party)
                {
                    let name = self.nodes.get(node).map(|n| n.name.clone()).unwrap_or_default();
                    tracing::error!(key = %self.key, node = %name, "reshare: the dealer signed two dealings; neither relayed");
                    envs.clear();
                    plan.culprits.push(name);
                    self.named.insert(node);
                }
            }
        }
        if round == 5 {
            let named = plan.named_by_most(named.iter().map(Vec::as_slice));
            let left_out = plan.named_by_most(left_out.iter().map(Vec::as_slice));
            self.named.extend(named.iter().copied());
            let left_out: Vec<String> = left_out.iter().map(|n| self.name(*n)).collect();
            if let Some(plan) = &mut self.run {
                plan.disqualified = left_out;
            }
            for node in named {
                let name = self.name(node);
                tracing::warn!(key = %self.key, node = %name, "reshare completed without a node the new holders named");
                if let Some(plan) = &mut self.run
                    && !plan.culprits.contains(&name)
                {
                    plan.culprits.push(name);
                }
            }
            return self.on_pending(created);
        }
        // Who gets the envelopes of this round.
        let recipients: BTreeSet<SignerId> = match round {
            2 => plan
                .receiver_parties
                .union(&plan.dealer_parties)
                .copied()
                .collect(),
            _ => plan.receiver_parties.clone(),
        };
        let mut inboxes: BTreeMap<SignerId, Vec<Vec<u8>>> = BTreeMap::new();
        for (from, envs) in &returned {
            for env in envs {
                let bytes = env.encode();
                match env.route.to {
                    None => {
                        for to in recipients.iter().filter(|to| *to != from) {
                            inboxes.entry(*to).or_default().push(bytes.clone());
                        }
                    }
                    Some(to) => inboxes.entry(to).or_default().push(bytes),
                }
            }
        }
        let (key, run) = (self.key, plan.setup.run);
        let next = round + 1;
        let requests = plan
            .party_nodes
            .iter()
            .map(|(p, n)| {
                (
                    *n,
                    RequestBody::ReshareRound {
                        key,
                        run,
                        round: next,
                        inbox: inboxes.remove(p).unwrap_or_default(),
                    },
                )
            })
            .collect();
        self.phase = Phase::Round(next);
        self.ask(requests)
    }

    fn on_pending(&mut self, created: BTreeMap<SignerId, KeyInfo>) -> Want {
        let Some(plan) = &mut self.run else {
            return Want::Done(Err("no run".into()));
        };
        let mut infos = created.values();
        let Some(first) = infos.next().cloned() else {
            return self.abort("no new holder stored a share");
        };
        let same = |i: &KeyInfo| {
            i.key == first.key
                && i.algorithm == first.algorithm
                && i.threshold == first.threshold
                && i.parties == first.parties
                && i.public == first.public
        };
        let complete = created.len() == plan.receiver_parties.len() && infos.all(same);
        let ids_right = plan.setup.receivers.iter().enumerate().all(|(j, p)| {
            created
                .get(p)
                .is_some_and(|i| usize::from(i.signer.get()) == j + 1)
        });
        if !complete || !ids_right || first.key != self.key {
            return self.abort("the new holders do not report one new sharing");
        }
        crate::crash::point("coordinator-pending");
        plan.new_info = Some(first.clone());
        let epoch = plan.setup.epoch;
        let message = test_message(&self.key, epoch);
        self.phase = Phase::Testing;
        Want::TestSign {
            id: pending_id(&self.key, epoch),
            mechanism: test_mechanism(first.algorithm, &message),
            info: first,
            holders: plan.holders.clone(),
        }
    }

    /// Feeds the outcome of the test signature (the signature bytes, already verified by the signing path).
    pub fn signed(&mut self, result: Result<Vec<u8>, String>) -> Want {
        if !matches!(self.phase, Phase::Testing) {
            return Want::Done(Err("test signature out of turn".into()));
        }
        let verified = result.and_then(|sig| {
            let plan = self.run.as_ref().ok_or("no run")?;
            let info = plan.new_info.as_ref().ok_or("no new sharing")?;
            verify(info, &test_message(&self.key, plan.setup.epoch), &sig)
        });
        match verified {
            Ok(()) => {
                crate::crash::point("coordinator-tested");
                self.commit_next(0, 0)
            }
            Err(e) => self.abort(format!("test signature with the pending shares failed: {e}")),
        }
    }

    fn commit_next(&mut self, next: usize, committed: usize) -> Want {
        let Some(plan) = &self.run else {
            return Want::Done(Err("no run".into()));
        };
        let (key, epoch) = (self.key, plan.setup.epoch);
        if let Some((_, node)) = plan.holders.iter().nth(next) {
            let node = *node;
            self.phase = Phase::Committing {
                next: next + 1,
                committed,
            };
            return self.ask(vec![(node, RequestBody::ReshareCommit { key, epoch })]);
        }
        let threshold = plan.new_info.as_ref().map_or(u16::MAX, |i| i.threshold);
        if committed == 0 {
            return self.abort("no new holder committed");
        }
        if committed < usize::from(threshold) {
            return Want::Done(Err(ReshareError::Failed(format!(
                "key {key}: epoch {epoch} committed on {committed} new holders only (k' = {threshold}); \
                 a later settle commits the others and retires the old holders"
            ))));
        }
        crate::crash::point("coordinator-committed");
        let outcome = Outcome {
            epoch,
            info: plan.new_info.clone(),
            holders: plan.holders.clone(),
            settled: Vec::new(),
            not_retired: Vec::new(),
            culprits: plan.culprits.clone(),
            disqualified: plan.disqualified.clone(),
        };
        self.outcome = Some(outcome);
        let requests = plan
            .to_retire
            .iter()
            .map(|n| (*n, RequestBody::ReshareRetire { key, epoch }))
            .collect();
        self.phase = Phase::Retiring;
        self.ask(requests)
    }
}

/// Excludes the nodes a reshare of `key` named ([`Resharing::named`]) in the coordinator, as signature culprits
/// are: they serve no signature and are planned as no new holder until readmitted
/// ([`crate::coordinator::Coordinator::readmit`]); each is reported once as an [`super::Event::Culprit`].
pub fn exclude_culprits(c: &mut super::Coordinator, key: KeyId, named: &[NodeIndex]) {
    for &node in named {
        c.name_culprit(
            node,
            key,
            format!("named by the new holders in a reshare of key {key}"),
        );
    }
}

/// Registers the sharing a finished run leaves (when it found one): the key's pools of one-time material (of the
/// sharing that may be gone) are dropped first unless the sharing is the one the coordinator knows.
pub fn register(
    c: &mut super::Coordinator,
    key: KeyId,
    outcome: &Outcome,
    now: std::time::Instant,
    unix_ms: u64,
) -> Result<(), String> {
    let Some(info) = &outcome.info else {
        return Ok(());
    };
    if !c.knows_sharing(&key, &info.public) {
        c.forget_key(&key);
    }
    c.register_key(info, outcome.holders.clone())?;
    c.prefill(key, now, unix_ms);
    Ok(())
}

/// Verifies a signature of `message` under the public key of `info` (RSA PKCS#1 v1.5 SHA-256, ECDSA P-256
/// SHA-256 DER, Ed25519), with `p256` and `ed25519-dalek` on the public key's SubjectPublicKeyInfo.
pub fn verify(info: &KeyInfo, message: &[u8], signature: &[u8]) -> Result<(), String> {
    let public = crate::algo::PublicKey::from_info(info)?;
    let spki = public.to_spki_der()?;
    let bad = |e: String| format!("the signature does not verify: {e}");
    match info.algorithm {
        Algorithm::Rsa => {
            let pk = public.as_rsa().ok_or("not an RSA key")?;
            let enc = tcrypto::rsa::MessageEncoding::pkcs1v15_of(HashAlg::Sha256, message);
            pk.verify(&enc, signature).map_err(|e| bad(e.to_string()))
        }
        Algorithm::EcdsaP256 => {
            use p256::ecdsa::signature::Verifier as _;
            use p256::pkcs8::DecodePublicKey as _;
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|e| e.to_string())?;
            let sig = p256::ecdsa::DerSignature::try_from(signature).map_err(|e| bad(e.to_string()))?;
            vk.verify(message, &sig).map_err(|e| bad(e.to_string()))
        }
        Algorithm::Ed25519 => {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            let vk = ed25519_dalek::VerifyingKey::from_public_key_der(&spki).map_err(|e| e.to_string())?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| bad(e.to_string()))?;
            vk.verify_strict(message, &sig).map_err(|e| bad(e.to_string()))
        }
    }
}

/// The nodes' reshare states of one key, summarised.
struct View<'a> {
    states: &'a BTreeMap<NodeIndex, ReshareState>,
    /// Highest epoch any node committed (served or retired at).
    committed: u64,
    /// Highest epoch seen anywhere (pending included).
    highest: u64,
}

impl<'a> View<'a> {
    fn of(states: &'a BTreeMap<NodeIndex, ReshareState>) -> Self {
        let mut committed = 0;
        let mut highest = 0;
        for s in states.values() {
            let c = s
                .active
                .as_ref()
                .map(|(e, _)| *e)
                .into_iter()
                .chain(s.retired)
                .max()
                .unwrap_or(0);
            committed = committed.max(c);
            highest = highest.max(c).max(s.pending.as_ref().map_or(0, |(e, _)| *e));
        }
        Self {
            states,
            committed,
            highest,
        }
    }

    /// The sharing of the committed epoch: its description and the holders serving it (when they are at least
    /// its threshold and agree).
    fn current(&self) -> Option<(KeyInfo, BTreeMap<SignerId, NodeIndex>)> {
        type Claim = (u16, u16, Vec<u8>, u8);
        let mut claims: BTreeMap<Claim, BTreeMap<SignerId, NodeIndex>> = BTreeMap::new();
        let mut infos = BTreeMap::new();
        for (n, s) in self.states {
            if let Some((e, info)) = &s.active
                && *e == self.committed
            {
                let claim = (
                    info.threshold,
                    info.parties,
                    info.public.clone(),
                    info.algorithm.code(),
                );
                claims.entry(claim.clone()).or_default().insert(info.signer, *n);
                infos.insert(claim, info.clone());
            }
        }
        let (claim, holders) = claims.into_iter().max_by_key(|(c, h)| (h.len(), c.0))?;
        let info = infos.remove(&claim)?;
        (holders.len() >= usize::from(info.threshold)).then_some((info, holders))
    }

    /// What settles the states: commit pending shares of the committed epoch, abort the others, and retire
    /// older sharings once the committed one has its quorum.
    fn settle_actions(&self, key: KeyId) -> Vec<(NodeIndex, RequestBody)> {
        let c = self.committed;
        let mut out = Vec::new();
        let mut aborted = BTreeSet::new();
        let mut committed_holders = 0usize;
        let mut threshold = None;
        for (n, s) in self.states {
            if let Some((e, info)) = &s.active
                && *e == c
            {
                committed_holders += 1;
                threshold = Some(info.threshold);
            }
            match &s.pending {
                Some((e, info)) if *e == c && c > 0 => {
                    threshold = Some(info.threshold);
                    out.push((*n, RequestBody::ReshareCommit { key, epoch: c }));
                }
                Some((e, _)) => {
                    aborted.insert(*e);
                }
                None => {}
            }
        }
        // A rolled-back epoch is aborted on every node, not only where a pending share of it is left: every node
        // that took part in its run still claims the key for it (`crate::node::reshare::Claims`) and ends the claim
        // on this abort (or refuses it, naming the claim, while another coordinator's run is alive).
        for epoch in aborted {
            for n in self.states.keys() {
                out.push((*n, RequestBody::ReshareAbort { key, epoch }));
            }
        }
        if !out.is_empty() {
            return out;
        }
        if threshold.is_some_and(|k| committed_holders >= usize::from(k)) {
            for (n, s) in self.states {
                if s.active.as_ref().is_some_and(|(e, _)| *e < c) {
                    out.push((*n, RequestBody::ReshareRetire { key, epoch: c }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> SignerId {
        SignerId::new(n).unwrap()
    }

    /// A node counts as named only when more than half of the new holders name it: one new holder naming an
    /// honest node gets nobody excluded; what every new holder reports is kept.
    #[test]
    fn a_node_is_named_only_by_a_majority_of_the_new_holders() {
        let old = KeyInfo {
            key: KeyId([4; 32]),
            algorithm: Algorithm::Ed25519,
            signer: id(1),
            threshold: 2,
            parties: 4,
            public: vec![1, 2, 3],
        };
        let plan = RunPlan {
            setup: ReshareSetup {
                key: old.key,
                epoch: 1,
                run: SessionId([1; 32]),
                old,
                parties: vec![[1; 32], [2; 32], [3; 32], [4; 32]],
                dealers: (1..=4).map(|i| (id(i), id(i))).collect(),
                receivers: vec![id(1), id(2), id(3)],
                threshold: 2,
            },
            party_nodes: (1..=4).map(|p| (id(p), usize::from(p) + 9)).collect(),
            dealer_parties: (1..=4).map(id).collect(),
            receiver_parties: (1..=3).map(id).collect(),
            holders: BTreeMap::new(),
            to_retire: Vec::new(),
            new_info: None,
            culprits: Vec::new(),
            disqualified: Vec::new(),
        };
        assert!(plan.receives(11) && !plan.receives(13));
        let reports = [vec![id(4)], vec![id(4), id(4)], vec![id(2), id(4)]];
        assert_eq!(
            plan.named_by_most(reports.iter().map(Vec::as_slice)),
            BTreeSet::from([13])
        );
        let one_liar = [vec![id(1), id(2)], vec![], vec![]];
        assert!(plan.named_by_most(one_liar.iter().map(Vec::as_slice)).is_empty());
        let two_of_three = [vec![id(3)], vec![id(3)]];
        assert_eq!(
            plan.named_by_most(two_of_three.iter().map(Vec::as_slice)),
            BTreeSet::from([12])
        );
    }
}
