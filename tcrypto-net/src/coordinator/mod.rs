//! The coordinator: a sans-io state machine that turns signing requests into signatures from any `k` nodes.
//!
//! Inputs are calls ([`Coordinator::start_sign`], [`Coordinator::start_request`]), response frames from nodes
//! ([`Coordinator::handle_frame`]), connection changes and the passage of time ([`Coordinator::handle_timeout`]);
//! every input takes the current [`Instant`] (and, where a request is issued, the wall clock in Unix ms, which goes
//! into the request for the node's staleness check). Outputs are frames to send ([`Coordinator::poll_transmit`]) and
//! completed operations ([`Coordinator::poll_event`]). Nothing here touches a socket, a thread or a clock.
//!
//! Signing: the coordinator asks `k` holders of the key chosen by health (connected, not excluded, fewest recent
//! failures, fewest requests in flight, lowest latency). A node that answers an error, times out or disconnects is
//! replaced by the next best holder. When `k` shares are in, they are combined and the signature verified; if the
//! combination names culprits, their nodes are excluded (and reported in [`Event::Culprit`]) and replacements
//! asked. A signature that does not verify is never released. All requests of one signature share one fresh
//! session id; each node is asked at most once per signature, so node-side replay protection never trips.
//!
//! Imported RSA keys with an ordinary modulus (`tcrypto::rsa::ordinary`) have shares without proofs: when no `k` of
//! the shares in hand combine (`rsa::Error::Unattributable`), the coordinator keeps them and asks one more holder,
//! then combines all of them again, until a subset verifies or every usable holder was asked
//! ([`SignError::Aborted`]). The combiner's subset search names by elimination the signers in no verifying subset;
//! they are excluded and reported like the senders of bad Shoup proofs. Adding one share at a time keeps the search
//! at `C(k+t, k)` tests for `t` bad shares.
//!
//! Liveness: which node to connect to, and when, is decided here ([`Coordinator::poll_connect`]), so every driver
//! behaves alike whatever the request pattern. A node never tried is connected at once; a failed attempt is
//! retried after [`CoordinatorConfig::min_reconnect_backoff`] (100 ms), doubling with every further failure up
//! to [`CoordinatorConfig::max_reconnect_backoff`] (2 s); a dropped connection is retried after the minimum;
//! [`Coordinator::next_deadline`] includes the retry times. A returning node is ranked back in (its failure
//! record cleared), the pools are refilled, and it is asked what it holds about key creations. Fail fast: an
//! operation that cannot get `k` usable holders (connected, not excluded) waits only for connection attempts
//! under way that could make up the number (each bounded by the request timeout) and otherwise fails at once
//! with [`SignError::Unavailable`], which names every node that is down and why.
//!
//! Key creation is never left to one coordinator: dealers store their DKG share tentatively and serve it only
//! once the commit step reaches them (sent when every dealer reported the same key); the key is reported
//! created once one dealer confirmed the commit, else it is rolled back on every dealer and reported failed. A
//! later coordinator settles what a crash left from the nodes' own reports (module `ec`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tcrypto::{KeyId, SessionId, SignerId};
use thiserror::Error;

use crate::algo::{CombineFailure, PublicKey};
use crate::transport::frame::{FrameError, encode_frame};
use crate::transport::identity::NodePublic;

mod dkls;
mod ec;
mod ecdsa;
mod pool;
pub mod reshare;
mod suspicion;
use crate::transport::wire::{
    Algorithm, KeyInfo, Mechanism, Request, RequestBody, RequestId, Response, ResponseBody, SignData,
};

/// Index of a node in the coordinator's table.
pub type NodeIndex = usize;

/// Id of an operation started on the coordinator.
pub type OpId = u64;

/// [`Coordinator::connect_settled`]: connection attempts still under way are waited for this many times the
/// slowest successful one.
pub const CONNECT_GRACE_FACTOR: u32 = 3;
/// [`Coordinator::connect_settled`]: the shortest wait for attempts still under way.
pub const MIN_CONNECT_GRACE: Duration = Duration::from_millis(100);

/// Tunables.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How long to wait for one node's answer before asking another.
    pub request_timeout: Duration,
    /// Longest TCP connect plus TLS handshake of one connection attempt: an attempt not done by then (a hung
    /// node whose kernel still takes the TCP connection, a host that drops packets) is given up and tried again
    /// after the back-off. Requests never wait for an attempt under way when enough other nodes serve them.
    pub handshake_timeout: Duration,
    /// Longest time one signature may take, whatever its retries, pool waits and protocol switches: then it
    /// fails with what its attempts met, so a caller (a PKCS#11 consumer, a zone signer) never waits without
    /// bound.
    pub sign_timeout: Duration,
    /// Longest back-off of a failing node before it is preferred again.
    pub max_backoff: Duration,
    /// First delay before a node whose connection failed or dropped is tried again; doubled after every failed
    /// attempt up to [`CoordinatorConfig::max_reconnect_backoff`], reset when a connection is up.
    pub min_reconnect_backoff: Duration,
    /// Longest delay between two connection attempts to a down node.
    pub max_reconnect_backoff: Duration,
    /// A share a node stored at the end of a DKG but never saw committed is rolled back (deleted) once it is this
    /// old and no node serves its key (every node that may have dealt must have reported; a node that was down
    /// during the creation need not, one that dealt is waited for): the coordinator that ran the creation
    /// abandoned it. Long enough for a creation in progress elsewhere to commit.
    pub dkg_rollback_after: Duration,
    /// Ask first for shares without proofs of correctness (cheaper for the nodes) and fall back to proven shares,
    /// under a fresh session, only when the optimistic combination does not verify.
    pub optimistic: bool,
    /// FROST pool: below this many ready signing sessions per Ed25519 key, a refill is requested.
    pub frost_low_watermark: usize,
    /// FROST pool: a refill brings the pool up to this many sessions.
    pub frost_high_watermark: usize,
    /// FROST pool: holders asked for nonce commitments beyond the `k` a signature needs. With spares, pooled
    /// sessions stay usable when a holder fails (a signature picks `k` usable members of the session); without,
    /// a failed holder makes the sessions it committed to unusable, so they are dropped and the pool refills from
    /// other holders (one extra round trip), while every spare costs each signature a commitment that is never
    /// used (about 8% of the cluster's CPU per Ed25519 signature with 3-of-5 and one spare).
    pub frost_spare_holders: usize,
    /// ECDSA pool: below this many ready presignatures per P-256 key, a presigning run starts.
    pub presign_low_watermark: usize,
    /// ECDSA pool: a presigning run brings the pool up to this many presignatures.
    pub presign_high_watermark: usize,
    /// Test only: a key creation stops where its commit step would start, as if this coordinator died there
    /// (the dealers keep their tentative shares; nothing is rolled back).
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub test_halt_before_commit: bool,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(3),
            sign_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(5),
            min_reconnect_backoff: Duration::from_millis(100),
            max_reconnect_backoff: Duration::from_secs(2),
            dkg_rollback_after: Duration::from_secs(60),
            optimistic: true,
            frost_low_watermark: 64,
            frost_high_watermark: 256,
            frost_spare_holders: 0,
            presign_low_watermark: 64,
            presign_high_watermark: 256,
            #[cfg(feature = "test-support")]
            test_halt_before_commit: false,
        }
    }
}

/// Why a signature could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignError {
    /// The coordinator knows no such key.
    #[error("unknown key {0}")]
    UnknownKey(KeyId),
    /// The mechanism cannot be used with the key (caller's error).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Fewer than `k` usable holders.
    #[error(
        "only {available} of the {needed} needed nodes are usable; down: {}; failures: {failures:?}",
        down_list(down)
    )]
    Unavailable {
        /// Usable holders (connected and not excluded) left.
        available: usize,
        /// `k`.
        needed: usize,
        /// The nodes that were not usable when the operation failed, by name, and why (the connection error,
        /// "connecting", or why it is excluded).
        down: Vec<(String, String)>,
        /// Why asked nodes failed, by node name.
        failures: Vec<(String, String)>,
        /// Nodes excluded as culprits during this signature.
        culprits: Vec<String>,
    },
    /// The request frame could not be built.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// A node's signing policy refused the signature ([`crate::node::policy`]); no other node was asked.
    #[error("refused by the signing policy of {node}: {detail}")]
    PolicyRefused {
        /// The refusing node, by name.
        node: String,
        /// The rule (its name first, [`crate::node::policy::Rule::name`]) and what the node saw.
        detail: String,
    },
    /// A multi-party run (key generation) was aborted; the nodes found misbehaving, by name.
    #[error("aborted: {detail} (culprits: {culprits:?})")]
    Aborted {
        /// Nodes named as culprits.
        culprits: Vec<String>,
        /// What went wrong.
        detail: String,
    },
}

fn down_list(down: &[(String, String)]) -> String {
    if down.is_empty() {
        return "none".into();
    }
    down.iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A released signature: verified under the key's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signature bytes in the algorithm's standard format.
    pub bytes: Vec<u8>,
    /// Nodes whose shares were rejected and who were excluded on the way (by name).
    pub culprits: Vec<String>,
}

/// Something that completed or happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A signing operation finished.
    Signed {
        /// The operation.
        op: OpId,
        /// Its outcome.
        result: Result<Signature, SignError>,
    },
    /// A single-node request finished.
    Reply {
        /// The operation.
        op: OpId,
        /// The node asked.
        node: NodeIndex,
        /// The node's answer, or why there was none.
        result: Result<ResponseBody, String>,
    },
    /// A key creation (DKG) finished.
    Created {
        /// The operation.
        op: OpId,
        /// The key, registered with the coordinator, or why not.
        result: Result<KeyId, SignError>,
    },
    /// A node sent a bad share and was excluded.
    Culprit {
        /// The node.
        node: NodeIndex,
        /// Its name.
        name: String,
        /// The key concerned.
        key: KeyId,
    },
}

impl Event {
    /// The operation this event completes (`None` for notices such as [`Event::Culprit`]).
    pub fn op(&self) -> Option<OpId> {
        match self {
            Event::Signed { op, .. } | Event::Reply { op, .. } | Event::Created { op, .. } => Some(*op),
            Event::Culprit { .. } => None,
        }
    }
}

/// A frame to send to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The node.
    pub node: NodeIndex,
    /// The whole frame (length prefix included).
    pub frame: Vec<u8>,
}

/// What the coordinator knows about a node's health.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    /// Name.
    pub name: String,
    /// Whether a connection is up.
    pub connected: bool,
    /// Why the node is excluded, if it is.
    pub excluded: Option<String>,
    /// Requests awaiting an answer.
    pub in_flight: usize,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Smoothed answer latency.
    pub latency: Duration,
    /// Answers received.
    pub answered: u64,
    /// Errors, timeouts and disconnections.
    pub failed: u64,
}

/// The connection to a node, as the coordinator schedules it (the driver makes the attempts it is told to).
#[derive(Debug, Clone)]
enum Link {
    /// Never tried: the driver connects at its next [`Coordinator::poll_connect`].
    New,
    /// An attempt is under way, started at `since`.
    Connecting { since: Instant },
    /// Connected; the attempt took `took`.
    Up { took: Duration },
    /// The last attempt failed or the connection dropped: tried again at `retry_at`.
    Down {
        retry_at: Instant,
        /// The delay after the next failed attempt.
        backoff: Duration,
        why: String,
        /// When the last connection attempt failed; `None` after a connection dropped (no attempt failed yet).
        failed_at: Option<Instant>,
    },
}

#[derive(Debug)]
struct NodeState {
    health: NodeHealth,
    down_until: Option<Instant>,
    identity: Option<NodePublic>,
    link: Link,
}

#[derive(Debug, Clone)]
struct KnownKey {
    algorithm: Algorithm,
    threshold: u16,
    public: PublicKey,
    /// The public description's encoding (`KeyInfo::public`), to tell a new sharing from the known one.
    encoded: Vec<u8>,
    /// The key's name (`KeyInfo::key`; differs from the id it is registered under for a reshare's pending
    /// sharing).
    name: KeyId,
    holders: BTreeMap<SignerId, NodeIndex>,
}

#[derive(Debug)]
struct SignOp {
    key: KeyId,
    session: SessionId,
    /// What the shares sign (for a data-carrying request, the digest form of `data`).
    mechanism: Mechanism,
    /// The data of a data-carrying request: the nodes are sent it and hash it themselves.
    data: Option<SignData>,
    unix_ms: u64,
    asked: BTreeSet<NodeIndex>,
    outstanding: BTreeSet<NodeIndex>,
    shares: BTreeMap<SignerId, (NodeIndex, Vec<u8>)>,
    failures: Vec<(String, String)>,
    culprits: Vec<String>,
    /// Whether shares are requested with proofs.
    proven: bool,
    /// The session of the proven retry after a failed optimistic round.
    retry_session: SessionId,
    /// Nodes of the failed optimistic round, asked first in the proven retry so a bad share's sender is named.
    suspects: BTreeSet<NodeIndex>,
    /// Ordinary-modulus RSA keys: shares wanted beyond `k`, one more after each combination of all the shares in
    /// hand failed without naming anyone (`rsa::Error::Unattributable`); the shares already in are kept.
    extra: usize,
}

#[derive(Debug)]
enum Op {
    Sign(Box<SignOp>),
    Single,
    /// A request whose answer nobody waits for.
    Unanswered,
    Dkg(Box<ec::DkgOp>),
    Deliver {
        node: NodeIndex,
        key: KeyId,
    },
    /// A [`RequestBody::DkgPending`] query.
    Pending,
    /// A [`RequestBody::ListKeys`] to a node that (re)connected, checked against the known sharings
    /// (`suspicion.rs`).
    KeyCheck,
    /// A [`RequestBody::DkgAbandon`] request.
    Abandon {
        key: KeyId,
    },
    FrostRefill {
        key: KeyId,
        signer: SignerId,
        sessions: Vec<SessionId>,
    },
    FrostSign(Box<ec::FrostSignOp>),
    Presign(Box<ecdsa::PresignOp>),
    EcdsaSign(Box<ecdsa::EcdsaSignOp>),
    /// A DKLs23 pair setup between two nodes.
    DklsPair(Box<dkls::PairOp>),
    /// A DKLs23 (`k`-online) ECDSA signature.
    DklsSign(Box<dkls::DklsSignOp>),
}

#[derive(Debug)]
struct Pending {
    op: OpId,
    node: NodeIndex,
    sent: Instant,
    deadline: Instant,
}

/// The coordinator state machine.
#[derive(Debug)]
pub struct Coordinator {
    cfg: CoordinatorConfig,
    nodes: Vec<NodeState>,
    keys: HashMap<KeyId, KnownKey>,
    ops: HashMap<OpId, Op>,
    pending: HashMap<RequestId, Pending>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_request: RequestId,
    next_op: OpId,
    ec: ec::EcState,
    presig_pools: HashMap<KeyId, pool::Pool<ecdsa::Entry>>,
    /// DKLs23: pairs known to need a setup, signatures waiting for setups, counters by path.
    dkls: dkls::DklsState,
    /// Verifying keys of P-256 keys with their precomputed tables, made at the first signature.
    prepared_keys: HashMap<KeyId, tcrypto::ecdsa::PreparedKey>,
    /// Secret seed of the session ids the coordinator makes for its own requests.
    session_seed: [u8; 32],
    session_counter: std::cell::Cell<u64>,
    /// The last wall clock given by the caller, and when.
    clock: (Instant, u64),
    /// Signatures (RSA) waiting for connection attempts under way to reach `k` usable holders.
    parked: BTreeSet<OpId>,
    /// Nodes suspected of misbehaving with a key, until the nodes confirm the key's sharing.
    suspicions: BTreeMap<KeyId, Vec<suspicion::Suspect>>,
    /// When each signature in flight gives up ([`CoordinatorConfig::sign_timeout`]), by op and in time order.
    sign_deadline: HashMap<OpId, Instant>,
    sign_deadlines: BTreeSet<(Instant, OpId)>,
}

impl Coordinator {
    /// An empty coordinator.
    pub fn new(cfg: CoordinatorConfig) -> Self {
        Self {
            cfg,
            nodes: Vec::new(),
            keys: HashMap::new(),
            ops: HashMap::new(),
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            sign_deadline: HashMap::new(),
            sign_deadlines: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            next_request: 1,
            next_op: 1,
            ec: ec::EcState::default(),
            presig_pools: HashMap::new(),
            dkls: dkls::DklsState::default(),
            prepared_keys: HashMap::new(),
            session_seed: rand::random(),
            session_counter: std::cell::Cell::new(0),
            clock: (Instant::now(), 0),
            parked: BTreeSet::new(),
            suspicions: BTreeMap::new(),
        }
    }

    /// A fresh, unpredictable session id: SHA-256 of a secret seed and a counter.
    fn fresh_session(&self) -> SessionId {
        use sha2::Digest as _;
        let n = self.session_counter.get();
        self.session_counter.set(n + 1);
        let mut h = sha2::Sha256::new();
        h.update(b"tcrypto-net coordinator session v1");
        h.update(self.session_seed);
        h.update(n.to_be_bytes());
        SessionId(h.finalize().into())
    }

    /// Records the caller's wall clock at `now`.
    fn observe_clock(&mut self, now: Instant, unix_ms: u64) {
        self.clock = (now, unix_ms);
    }

    /// Gives the wall clock (ms since the Unix epoch) at `now`, for the requests the coordinator sends on its
    /// own (deliveries and the pending-DKG query when a node connects, roll-backs): nodes refuse stale
    /// requests. Drivers call it whenever they drive; the calls that start operations take it too.
    pub fn set_clock(&mut self, now: Instant, unix_ms: u64) {
        self.observe_clock(now, unix_ms);
    }

    /// The wall clock at `now`, extrapolated from the last one given.
    fn unix_at(&self, now: Instant) -> u64 {
        let (at, unix) = self.clock;
        let elapsed = u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX);
        unix.saturating_add(elapsed)
    }

    /// Sends a request whose answer nobody waits for (clean-up).
    fn send_unanswered(&mut self, node: NodeIndex, body: RequestBody, now: Instant) {
        let op = self.new_op(Op::Unanswered);
        if self
            .send(op, node, self.fresh_session(), self.unix_at(now), body, now)
            .is_err()
        {
            self.ops.remove(&op);
        }
    }

    /// Records a node's public identity (needed for key generation: the parties are named by identity key, and
    /// the coordinator checks the signatures of the envelopes it relays).
    pub fn set_identity(&mut self, node: NodeIndex, public: NodePublic) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.identity = Some(public);
        }
    }

    /// Sort key of a node by health: not backing off, fewest failures, fewest in flight, lowest latency.
    fn health_rank(&self, node: NodeIndex, now: Instant) -> (bool, u32, usize, Duration) {
        match self.nodes.get(node) {
            Some(n) => (
                n.down_until.is_some_and(|t| t > now),
                n.health.consecutive_failures.min(8),
                n.health.in_flight,
                n.health.latency,
            ),
            None => (true, u32::MAX, usize::MAX, Duration::MAX),
        }
    }

    /// Adds a node (initially disconnected).
    pub fn add_node(&mut self, name: impl Into<String>) -> NodeIndex {
        self.nodes.push(NodeState {
            health: NodeHealth {
                name: name.into(),
                connected: false,
                excluded: None,
                in_flight: 0,
                consecutive_failures: 0,
                latency: Duration::ZERO,
                answered: 0,
                failed: 0,
            },
            down_until: None,
            identity: None,
            link: Link::New,
        });
        self.nodes.len() - 1
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Health of every node, by index.
    pub fn health(&self) -> Vec<NodeHealth> {
        self.nodes.iter().map(|n| n.health.clone()).collect()
    }

    /// Registers a key: its public description and which node holds which share.
    pub fn register_key(
        &mut self,
        info: &KeyInfo,
        holders: BTreeMap<SignerId, NodeIndex>,
    ) -> Result<(), String> {
        self.register_key_as(info.key, info, holders)
    }

    /// Registers the sharing described by `info` under the id `id` (a reshare's pending sharing answers under
    /// its pending id, `crate::node::reshare::pending_id`, for the commit's test signature).
    pub fn register_key_as(
        &mut self,
        id: KeyId,
        info: &KeyInfo,
        holders: BTreeMap<SignerId, NodeIndex>,
    ) -> Result<(), String> {
        let public = PublicKey::from_info(info)?;
        if holders.values().any(|&n| n >= self.nodes.len()) {
            return Err("holder index out of range".into());
        }
        if self.keys.get(&id).is_some_and(|k| {
            k.encoded != info.public
                || holders
                    .iter()
                    .any(|(s, n)| k.holders.get(s).is_some_and(|m| m != n))
        }) {
            // Another sharing of the key (a reshare): what was made for the old one is of no use.
            self.prepared_keys.remove(&id);
            self.presig_pools.remove(&id);
            self.ec.forget_pool(&id);
        }
        self.keys.insert(
            id,
            KnownKey {
                algorithm: info.algorithm,
                threshold: info.threshold,
                public,
                encoded: info.public.clone(),
                name: info.key,
                holders,
            },
        );
        Ok(())
    }

    /// Learns keys from nodes' key lists, trusting no single node (nor any `k - 1` of them) with a key's public
    /// key set:
    ///
    /// - a node that reports one key twice (two public key sets, or two signer ids) is ignored for that key;
    /// - a signer id claimed by two nodes is dropped from the claim (unless this coordinator already holds that
    ///   key set with that signer at one of the two nodes);
    /// - a claim counts when its public key set decodes and matches the key id (the id is a hash of the group public
    ///   key, so no claim can put another group key under a known id) and at least `k'` distinct nodes make it,
    ///   where `k'` is the claim's own threshold;
    /// - of the claims that count, the one with the largest threshold wins (ties: more supporters; still tied: the
    ///   key is left out). Honest holders report the true threshold `k`; at most `k - 1` colluding nodes can only
    ///   make a claim with a threshold below `k` count, so whenever `k` honest holders answer, the true set wins;
    /// - a key already known is never replaced by a set of smaller threshold while a node still claims the known
    ///   set (once none does, the key was reshared to a smaller threshold: at worst, colluders answering alone
    ///   make this coordinator ask them for signatures that will not verify).
    ///
    /// Whatever set is registered, no signature is released unless it verifies under the group public key.
    pub fn learn_keys(&mut self, lists: &BTreeMap<NodeIndex, Vec<KeyInfo>>) -> Vec<KeyId> {
        type Claim = (Algorithm, u16, u16, Vec<u8>);
        // key -> node -> what it claims.
        let mut by_node: BTreeMap<KeyId, BTreeMap<NodeIndex, Vec<(Claim, SignerId)>>> = BTreeMap::new();
        for (&node, infos) in lists {
            for info in infos {
                let claim = (info.algorithm, info.threshold, info.parties, info.public.clone());
                by_node
                    .entry(info.key)
                    .or_default()
                    .entry(node)
                    .or_default()
                    .push((claim, info.signer));
            }
        }
        let mut learned = Vec::new();
        for (key, nodes) in by_node {
            // claim -> signer -> nodes claiming it.
            let mut claims: BTreeMap<Claim, BTreeMap<SignerId, Vec<NodeIndex>>> = BTreeMap::new();
            for (node, mut said) in nodes {
                said.sort();
                said.dedup();
                if said.len() != 1 {
                    tracing::warn!(node = %self.node_name(node), %key, "node reports one key more than once; ignored");
                    continue;
                }
                let Some((claim, signer)) = said.pop() else {
                    continue;
                };
                claims
                    .entry(claim)
                    .or_default()
                    .entry(signer)
                    .or_default()
                    .push(node);
            }
            let known = self.keys.get(&key);
            let known_claimed = known.is_some_and(|k| claims.keys().any(|c| c.3 == k.encoded));
            let mut best: Option<(u16, usize, KeyInfo, BTreeMap<SignerId, NodeIndex>)> = None;
            let mut tied = false;
            for ((algorithm, threshold, parties, public), signers) in claims {
                let holders: BTreeMap<SignerId, NodeIndex> = signers
                    .into_iter()
                    .filter_map(|(signer, nodes)| match nodes.as_slice() {
                        [one] => Some((signer, *one)),
                        _ => known
                            .and_then(|k| k.holders.get(&signer))
                            .filter(|n| nodes.contains(n))
                            .map(|n| (signer, *n)),
                    })
                    .collect();
                let Some(&signer) = holders.keys().next() else {
                    continue;
                };
                let info = KeyInfo {
                    key,
                    algorithm,
                    signer,
                    threshold,
                    parties,
                    public,
                };
                if holders.len() < usize::from(threshold) || PublicKey::from_info(&info).is_err() {
                    continue;
                }
                let rank = (threshold, holders.len());
                match &best {
                    Some((t, h, ..)) if (*t, *h) > rank => {}
                    Some((t, h, ..)) if (*t, *h) == rank => tied = true,
                    _ => {
                        tied = false;
                        best = Some((threshold, holders.len(), info, holders));
                    }
                }
            }
            let Some((threshold, _, info, holders)) = best else {
                continue;
            };
            if tied {
                tracing::warn!(%key, "nodes disagree on the public key set and no set wins; key left out");
                continue;
            }
            if known_claimed && known.is_some_and(|k| k.threshold > threshold) {
                tracing::warn!(%key, "nodes report a set of lower threshold than the known one; ignored");
                continue;
            }
            if self.register_key(&info, holders).is_ok() {
                learned.push(key);
            }
        }
        learned
    }

    /// Whether `key` is known with exactly the public description `public`.
    pub fn knows_sharing(&self, key: &KeyId, public: &[u8]) -> bool {
        self.keys.get(key).is_some_and(|k| k.encoded == public)
    }

    /// Forgets a key.
    pub fn forget_key(&mut self, key: &KeyId) {
        self.keys.remove(key);
        self.prepared_keys.remove(key);
        self.presig_pools.remove(key);
        self.ec.forget_pool(key);
    }

    /// Keys known, with their algorithm and holders.
    pub fn keys(&self) -> Vec<(KeyId, Algorithm, BTreeMap<SignerId, NodeIndex>)> {
        self.keys
            .iter()
            .map(|(k, v)| (*k, v.algorithm, v.holders.clone()))
            .collect()
    }

    /// The public key material of a known key.
    pub fn public_key(&self, key: &KeyId) -> Option<&PublicKey> {
        self.keys.get(key).map(|k| &k.public)
    }

    /// The next node the driver should connect to now (never tried, or down with its retry time passed). The
    /// node counts as connecting until the driver reports [`Coordinator::node_connected`] or
    /// [`Coordinator::node_connect_failed`]; a signature short of usable holders waits for connecting ones and
    /// fails at once otherwise. Drivers call this after every input; [`Coordinator::next_deadline`] includes the
    /// next retry time.
    pub fn poll_connect(&mut self, now: Instant) -> Option<NodeIndex> {
        let i = self.nodes.iter().position(|n| match &n.link {
            Link::New => true,
            Link::Down { retry_at, .. } => *retry_at <= now,
            Link::Connecting { .. } | Link::Up { .. } => false,
        })?;
        if let Some(n) = self.nodes.get_mut(i) {
            n.link = Link::Connecting { since: now };
        }
        Some(i)
    }

    /// Marks a node connected: it is ranked back in (its failure record cleared), pools low on stock are
    /// refilled, and signatures that waited for it go on.
    pub fn node_connected(&mut self, node: NodeIndex, now: Instant) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.connected = true;
            n.health.consecutive_failures = 0;
            n.down_until = None;
            let took = match n.link {
                Link::Connecting { since } => now.saturating_duration_since(since),
                _ => Duration::ZERO,
            };
            n.link = Link::Up { took };
        }
        self.deliver_missed(node, now);
        self.ask_pending(node, now);
        self.check_keys(node, now);
        // A node that missed key creations refills pools once it holds their keys (`delivery_answered`).
        if self.pending_deliveries(node).is_empty() {
            self.pools_recovered(now);
        }
        self.links_changed(now);
    }

    /// A connection attempt to `node` failed (`why`): it is tried again after the back-off, which starts at
    /// [`CoordinatorConfig::min_reconnect_backoff`] and doubles with every failed attempt up to
    /// [`CoordinatorConfig::max_reconnect_backoff`]. Signatures that waited for it fail now if they cannot get
    /// `k` holders otherwise.
    pub fn node_connect_failed(&mut self, node: NodeIndex, why: &str, now: Instant) {
        let (min, max) = (self.cfg.min_reconnect_backoff, self.cfg.max_reconnect_backoff);
        if let Some(n) = self.nodes.get_mut(node) {
            let backoff = match &n.link {
                Link::Down { backoff, .. } => *backoff,
                _ => min,
            };
            n.health.connected = false;
            n.link = Link::Down {
                retry_at: now + backoff,
                backoff: (backoff * 2).min(max).max(min),
                why: why.to_string(),
                failed_at: Some(now),
            };
        }
        self.node_lost(node, now);
    }

    /// Marks a node disconnected: its outstanding requests fail over to other nodes, and it is tried again after
    /// [`CoordinatorConfig::min_reconnect_backoff`].
    pub fn node_disconnected(&mut self, node: NodeIndex, now: Instant) {
        let (min, max) = (self.cfg.min_reconnect_backoff, self.cfg.max_reconnect_backoff);
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.connected = false;
            let why = match &n.link {
                Link::Down { why, .. } => why.clone(),
                _ => "connection lost".to_string(),
            };
            n.link = Link::Down {
                retry_at: now + min,
                backoff: (min * 2).min(max).max(min),
                why,
                failed_at: None,
            };
        }
        self.node_lost(node, now);
    }

    fn node_lost(&mut self, node: NodeIndex, now: Instant) {
        self.outbox.retain(|t| t.node != node);
        self.forget_report(node);
        let lost: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(id, _)| *id)
            .collect();
        self.frost_forget_node(node);
        for id in lost {
            self.fail_request(id, "connection lost".into(), now);
        }
        self.links_changed(now);
    }

    /// Whether an attempt to connect to `node` is under way (a signature short of holders waits for it).
    pub(crate) fn connecting(&self, node: NodeIndex) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| matches!(n.link, Link::Connecting { .. }) && n.health.excluded.is_none())
    }

    /// Whether a caller waiting since `since` for the first connections ([`crate::client::Cluster::connect`])
    /// may go on: every node is connected or has failed an attempt since then, except (when a majority is
    /// connected) attempts under way for longer than [`CONNECT_GRACE_FACTOR`] times the slowest successful one
    /// (at least [`MIN_CONNECT_GRACE`]). A host that drops packets thus delays a fresh process by a few handshake
    /// times rather than the request timeout; requests that need it still wait for its attempt. A node waiting
    /// for its next attempt (back-off) is waited for.
    pub fn connect_settled(&self, since: Instant, now: Instant) -> bool {
        let mut connected = 0;
        let mut slowest = Duration::ZERO;
        for n in &self.nodes {
            if let Link::Up { took } = n.link {
                connected += 1;
                slowest = slowest.max(took);
            }
        }
        let grace = (slowest * CONNECT_GRACE_FACTOR).max(MIN_CONNECT_GRACE);
        let mut hanging = false;
        for (i, n) in self.nodes.iter().enumerate() {
            match n.link {
                Link::Up { .. } => {}
                _ if self.failed_since(i, since) => {}
                Link::Connecting { since: attempt } if now.saturating_duration_since(attempt) >= grace => {
                    hanging = true;
                }
                _ => return false,
            }
        }
        !hanging || connected > self.nodes.len() / 2
    }

    /// Whether a connection attempt to `node` failed at `since` or later and none succeeded since. A connection
    /// that dropped does not count: the node may be back by the next attempt (a restarted node).
    pub fn failed_since(&self, node: NodeIndex, since: Instant) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| matches!(&n.link, Link::Down { failed_at: Some(at), .. } if *at >= since))
    }

    /// A connection came up or an attempt ended: signatures that waited for connections are looked at again.
    fn links_changed(&mut self, now: Instant) {
        for op in std::mem::take(&mut self.parked) {
            self.top_up(op, now);
        }
        self.serve_waiting_pools(now);
        self.dkls_serve_waiting(now);
    }

    /// The nodes that are not usable now, by name, and why.
    pub fn down_nodes(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let why = if let Some(x) = &n.health.excluded {
                    format!("excluded: {x}")
                } else {
                    match &n.link {
                        Link::Up { .. } => return None,
                        Link::New => "not connected yet".to_string(),
                        Link::Connecting { .. } => "connecting".to_string(),
                        Link::Down { why, .. } => why.clone(),
                    }
                };
                Some((n.health.name.clone(), why))
            })
            .collect()
    }

    /// The error of an operation that cannot get `needed` usable holders; it names the nodes that are down.
    pub(crate) fn unavailable(
        &self,
        available: usize,
        needed: usize,
        failures: &[(String, String)],
        culprits: &[String],
    ) -> SignError {
        SignError::Unavailable {
            available,
            needed,
            down: self.down_nodes(),
            failures: failures.to_vec(),
            culprits: culprits.to_vec(),
        }
    }

    /// Whether the node is connected.
    pub fn is_connected(&self, node: NodeIndex) -> bool {
        self.nodes.get(node).is_some_and(|n| n.health.connected)
    }

    /// Excludes a node from future requests (operator action or misbehaviour).
    pub fn exclude(&mut self, node: NodeIndex, reason: impl Into<String>) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.excluded = Some(reason.into());
        }
    }

    /// Names `node` a culprit for `key`: logged, excluded with `why` (as [`Self::exclude`]) and reported once as an
    /// [`Event::Culprit`]. Signature share checks (once suspicion settles), DKG complaint resolutions and reshares
    /// name culprits this way.
    pub(crate) fn name_culprit(&mut self, node: NodeIndex, key: KeyId, why: String) {
        let name = self.node_name(node);
        tracing::error!(node = %name, %key, %why, "node named a culprit; excluded");
        self.exclude(node, why);
        self.events.push_back(Event::Culprit { node, name, key });
    }

    /// The excluded nodes and why.
    pub fn excluded(&self) -> Vec<(NodeIndex, String)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.health.excluded.clone()?)))
            .collect()
    }

    /// Lets an excluded node serve again.
    pub fn readmit(&mut self, node: NodeIndex) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.excluded = None;
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next completed operation or notable event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Coordinator::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let retry = self
            .nodes
            .iter()
            .filter_map(|n| match &n.link {
                Link::Down { retry_at, .. } => Some(*retry_at),
                _ => None,
            })
            .min();
        let request = self.deadlines.first().map(|(t, _)| *t);
        let sign = self.sign_deadlines.first().map(|(t, _)| *t);
        [retry, request, sign].into_iter().flatten().min()
    }

    /// Operations not yet finished.
    pub fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }

    fn new_op(&mut self, op: Op) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        self.ops.insert(id, op);
        id
    }

    fn send(
        &mut self,
        op: OpId,
        node: NodeIndex,
        session: SessionId,
        unix_ms: u64,
        body: RequestBody,
        now: Instant,
    ) -> Result<(), FrameError> {
        let id = self.next_request;
        self.next_request += 1;
        let req = Request {
            id,
            session,
            issued_at_ms: unix_ms,
            body,
        };
        let frame = encode_frame(&req.encode())?;
        let deadline = now + self.cfg.request_timeout;
        self.pending.insert(
            id,
            Pending {
                op,
                node,
                sent: now,
                deadline,
            },
        );
        self.deadlines.insert((deadline, id));
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.in_flight += 1;
        }
        self.outbox.push_back(Transmit { node, frame });
        Ok(())
    }

    /// Sends one request to one node (ping, key list, import, delete). The answer comes as [`Event::Reply`].
    pub fn start_request(
        &mut self,
        node: NodeIndex,
        body: RequestBody,
        now: Instant,
        unix_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> OpId {
        let op = self.new_op(Op::Single);
        let usable = self.nodes.get(node).is_some_and(|n| n.health.connected);
        if !usable {
            self.ops.remove(&op);
            self.events.push_back(Event::Reply {
                op,
                node,
                result: Err("node not connected".into()),
            });
            return op;
        }
        if let Err(e) = self.send(op, node, SessionId::random(rng), unix_ms, body, now) {
            self.ops.remove(&op);
            self.events.push_back(Event::Reply {
                op,
                node,
                result: Err(e.to_string()),
            });
        }
        op
    }

    /// Starts a signature with `key`. The result comes as [`Event::Signed`] (possibly already queued on return).
    pub fn start_sign(
        &mut self,
        key: KeyId,
        mechanism: Mechanism,
        now: Instant,
        unix_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> OpId {
        self.start_signature(key, mechanism, None, now, unix_ms, rng)
    }

    /// Starts a signature of `data` with `key`: the nodes receive the data (not a digest), judge it by their
    /// policy, hash it and build the encoding themselves; the coordinator derives the same digest form to combine
    /// and verify. The result comes as [`Event::Signed`].
    pub fn start_sign_data(
        &mut self,
        key: KeyId,
        data: SignData,
        now: Instant,
        unix_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> OpId {
        match data.digest_form() {
            Ok(mechanism) => self.start_signature(key, mechanism, Some(data), now, unix_ms, rng),
            Err(e) => {
                let op = self.new_op(Op::Unanswered);
                self.finish_sign(op, Err(SignError::BadRequest(e)));
                op
            }
        }
    }

    fn start_signature(
        &mut self,
        key: KeyId,
        mechanism: Mechanism,
        data: Option<SignData>,
        now: Instant,
        unix_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> OpId {
        let op = self.begin_signature(key, mechanism, data, now, unix_ms, rng);
        if self.ops.contains_key(&op) {
            let deadline = now + self.cfg.sign_timeout;
            self.sign_deadline.insert(op, deadline);
            self.sign_deadlines.insert((deadline, op));
        }
        op
    }

    fn begin_signature(
        &mut self,
        key: KeyId,
        mechanism: Mechanism,
        data: Option<SignData>,
        now: Instant,
        unix_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> OpId {
        self.observe_clock(now, unix_ms);
        // An Ed25519 signature's FROST signing package carries the message itself: the data form as it is.
        if let (Some(Algorithm::Ed25519), Mechanism::Ed25519 { message }) =
            (self.keys.get(&key).map(|k| k.algorithm), &mechanism)
        {
            return self.start_frost_sign(key, message.clone(), now);
        }
        if let (Some(Algorithm::EcdsaP256), Mechanism::Ecdsa { digest }) =
            (self.keys.get(&key).map(|k| k.algorithm), &mechanism)
            && self
                .keys
                .get(&key)
                .is_some_and(|k| k.public.check_mechanism(&mechanism).is_ok())
        {
            return self.start_ecdsa_sign(key, digest.clone(), data, now);
        }
        let op = self.new_op(Op::Sign(Box::new(SignOp {
            key,
            session: SessionId::random(rng),
            mechanism,
            data,
            unix_ms,
            asked: BTreeSet::new(),
            outstanding: BTreeSet::new(),
            shares: BTreeMap::new(),
            failures: Vec::new(),
            culprits: Vec::new(),
            proven: !self.cfg.optimistic,
            retry_session: SessionId::random(rng),
            suspects: BTreeSet::new(),
            extra: 0,
        })));
        let check = match self.keys.get(&key) {
            None => Err(SignError::UnknownKey(key)),
            Some(k) => match &self.ops.get(&op) {
                Some(Op::Sign(s)) => k
                    .public
                    .check_mechanism(&s.mechanism)
                    .map_err(SignError::BadRequest),
                _ => Ok(()),
            },
        };
        if let Err(e) = check {
            self.finish_sign(op, Err(e));
            return op;
        }
        self.top_up(op, now);
        op
    }

    /// Holders of the op's key not yet asked, best first.
    fn candidates(&self, key: &KnownKey, s: &SignOp, now: Instant) -> Vec<(SignerId, NodeIndex)> {
        let mut c: Vec<(SignerId, NodeIndex)> = key
            .holders
            .iter()
            .filter(|(signer, node)| {
                !s.asked.contains(node)
                    && !s.shares.contains_key(signer)
                    && self
                        .nodes
                        .get(**node)
                        .is_some_and(|n| n.health.connected && n.health.excluded.is_none())
            })
            .map(|(s, n)| (*s, *n))
            .collect();
        c.sort_by_key(|(_, idx)| (!s.suspects.contains(idx), self.health_rank(*idx, now)));
        c
    }

    /// Asks more holders until `k` answers are expected, or fails the op if that is impossible.
    fn top_up(&mut self, op: OpId, now: Instant) {
        let Some(Op::Sign(s)) = self.ops.get(&op) else {
            return;
        };
        let Some(key) = self.keys.get(&s.key) else {
            let key = s.key;
            self.finish_sign(op, Err(SignError::UnknownKey(key)));
            return;
        };
        let k = usize::from(key.threshold) + s.extra;
        let have = s.shares.len() + s.outstanding.len();
        if have >= k {
            return;
        }
        let cands = self.candidates(key, s, now);
        if have + cands.len() < k {
            // Holders being connected to may still make up the number: wait for them; fail fast otherwise.
            let connecting = key
                .holders
                .iter()
                .filter(|(signer, node)| {
                    !s.asked.contains(node) && !s.shares.contains_key(signer) && self.connecting(**node)
                })
                .count();
            let in_hand = s.shares.len() >= usize::from(key.threshold);
            if s.extra > 0 && in_hand && have + cands.len() + connecting < k {
                // Every usable holder has been asked and no k of the answers combine: nobody can be named.
                let detail = format!(
                    "no {} of the shares from {} combine into a valid signature and no other holder is usable \
                     (ordinary-modulus RSA key: shares carry no proofs)",
                    key.threshold,
                    s.shares
                        .values()
                        .map(|(node, _)| self.node_name(*node))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let culprits = s.culprits.clone();
                self.finish_sign(op, Err(SignError::Aborted { culprits, detail }));
                return;
            }
            if have + cands.len() + connecting < k {
                let available = s.shares.len() + s.outstanding.len() + cands.len();
                let err = self.unavailable(available, k, &s.failures, &s.culprits);
                self.finish_sign(op, Err(err));
                return;
            }
            self.parked.insert(op);
        }
        let (session, unix_ms, key_id, mechanism, data, proven) = (
            s.session,
            s.unix_ms,
            s.key,
            s.mechanism.clone(),
            s.data.clone(),
            s.proven,
        );
        for (_, node) in cands.into_iter().take(k - have) {
            if let Some(Op::Sign(s)) = self.ops.get_mut(&op) {
                s.asked.insert(node);
                s.outstanding.insert(node);
            }
            let (key, mechanism) = (key_id, mechanism.clone());
            let body = match (data.clone(), proven) {
                (None, true) => RequestBody::Sign { key, mechanism },
                (None, false) => RequestBody::SignOptimistic { key, mechanism },
                (Some(data), true) => RequestBody::SignData { key, data },
                (Some(data), false) => RequestBody::SignDataOptimistic { key, data },
            };
            if let Err(e) = self.send(op, node, session, unix_ms, body, now) {
                self.finish_sign(op, Err(SignError::Frame(e)));
                return;
            }
        }
    }

    fn finish_sign(&mut self, op: OpId, result: Result<Signature, SignError>) {
        self.parked.remove(&op);
        if let Some(t) = self.sign_deadline.remove(&op) {
            self.sign_deadlines.remove(&(t, op));
        }
        if self.ops.remove(&op).is_some() {
            // A request the coordinator gives up on leaves a line in the host's log (the module's log_file,
            // dnssec-sign's standard error), not only an error code at the caller.
            if let Err(e) = &result {
                tracing::warn!(op, error = %e, "signature request failed");
            }
            self.events.push_back(Event::Signed { op, result });
        }
    }

    fn node_failed(&mut self, node: NodeIndex, now: Instant) {
        let max = self.cfg.max_backoff;
        if let Some(n) = self.nodes.get_mut(node) {
            n.health.failed += 1;
            n.health.consecutive_failures = n.health.consecutive_failures.saturating_add(1);
            let backoff = Duration::from_millis(100u64 << n.health.consecutive_failures.min(6)).min(max);
            n.down_until = Some(now + backoff);
        }
    }

    fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        if let Some(n) = self.nodes.get_mut(p.node) {
            n.health.in_flight = n.health.in_flight.saturating_sub(1);
        }
        Some(p)
    }

    fn fail_request(&mut self, id: RequestId, why: String, now: Instant) {
        let Some(p) = self.take_pending(id) else { return };
        self.node_failed(p.node, now);
        self.request_failed(p.op, id, p.node, why, now);
    }

    fn request_failed(&mut self, op: OpId, request: RequestId, node: NodeIndex, why: String, now: Instant) {
        let name = self.node_name(node);
        match self.ops.get_mut(&op) {
            Some(Op::Unanswered) => {
                self.ops.remove(&op);
            }
            Some(Op::Dkg(_)) => self.dkg_request_failed(op, request, node, why, now),
            Some(Op::Deliver { .. }) => self.delivery_answered(op, Err(why), now),
            Some(Op::Pending) | Some(Op::KeyCheck) => {
                self.ops.remove(&op);
            }
            Some(Op::Abandon { key }) => {
                let key = *key;
                self.ops.remove(&op);
                self.abandon_answered(key, node, None, now);
            }
            Some(Op::FrostRefill { .. }) => self.frost_refill_answered(op, node, None, now),
            Some(Op::FrostSign(_)) => self.frost_request_failed(op, request, node, why, now),
            Some(Op::Presign(_)) => self.presign_request_failed(op, request, node, why, now),
            Some(Op::EcdsaSign(_)) => self.ecdsa_request_failed(op, request, node, why, now),
            Some(Op::DklsPair(_)) => self.dkls_pair_request_failed(op, node, why, now),
            Some(Op::DklsSign(_)) => self.dkls_request_failed(op, request, node, why, now),
            Some(Op::Sign(s)) => {
                s.outstanding.remove(&node);
                s.failures.push((name, why));
                self.top_up(op, now);
            }
            Some(Op::Single) => {
                self.ops.remove(&op);
                self.events.push_back(Event::Reply {
                    op,
                    node,
                    result: Err(why),
                });
            }
            None => {}
        }
    }

    fn node_name(&self, node: NodeIndex) -> String {
        self.nodes
            .get(node)
            .map(|n| n.health.name.clone())
            .unwrap_or_default()
    }

    /// Fails requests whose deadline passed (their operations fall back to other nodes), then signatures that
    /// ran out of time ([`CoordinatorConfig::sign_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.fail_request(id, "timed out".into(), now);
        }
        while let Some(&(deadline, op)) = self.sign_deadlines.first() {
            if deadline > now {
                break;
            }
            self.sign_timed_out(op, now);
        }
    }

    /// Signature `op` ran out of time: it fails with what its attempts met.
    fn sign_timed_out(&mut self, op: OpId, now: Instant) {
        let key = self.ops.get(&op).and_then(Op::signing_key);
        let needed = key.and_then(|k| self.threshold_of(&k)).unwrap_or(0);
        let available = key.map_or(0, |k| self.usable_holders(&k, now).len());
        let why = (
            "coordinator".to_string(),
            format!("no signature within {:?} (sign_timeout)", self.cfg.sign_timeout),
        );
        self.fail_unavailable(op, available, needed, Some(why));
    }

    /// Fails signature `op` as [`SignError::Unavailable`] with what its attempts met (its failures and culprits),
    /// and `why` last when given.
    pub(super) fn fail_unavailable(
        &mut self,
        op: OpId,
        available: usize,
        needed: usize,
        why: Option<(String, String)>,
    ) {
        let (mut failures, culprits) = match self.ops.get(&op) {
            Some(Op::Sign(s)) => (s.failures.clone(), s.culprits.clone()),
            Some(o) => o
                .tries()
                .map(|t| (t.failures.clone(), t.culprits.clone()))
                .unwrap_or_default(),
            None => Default::default(),
        };
        failures.extend(why);
        let err = self.unavailable(available, needed, &failures, &culprits);
        self.finish_sign(op, Err(err));
    }

    /// Handles one frame received from `node`. A frame that does not decode, or answers a request this node was
    /// not asked, counts against the node.
    pub fn handle_frame(&mut self, node: NodeIndex, frame: &[u8], now: Instant) {
        let resp = match Response::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node = %self.node_name(node), error = %e, "undecodable response");
                self.node_failed(node, now);
                return;
            }
        };
        match self.pending.get(&resp.id) {
            Some(p) if p.node == node => {}
            _ => {
                tracing::warn!(node = %self.node_name(node), id = resp.id, "response to no request of this node");
                self.node_failed(node, now);
                return;
            }
        }
        let Some(p) = self.take_pending(resp.id) else {
            return;
        };
        let latency = now.saturating_duration_since(p.sent);
        if let ResponseBody::Error { code, detail } = &resp.body {
            let signing = matches!(
                self.ops.get(&p.op),
                Some(Op::Sign(_) | Op::FrostSign(_) | Op::EcdsaSign(_) | Op::DklsSign(_))
            );
            if *code == crate::transport::wire::ErrorCode::PolicyRefused && signing {
                // The node is healthy and the others would judge the same request by their own policies:
                // the signature is refused as a whole, without asking anyone else.
                let name = self.node_name(node);
                tracing::warn!(node = %name, %detail, "signature refused by a node's signing policy");
                self.finish_sign(
                    p.op,
                    Err(SignError::PolicyRefused {
                        node: name,
                        detail: detail.clone(),
                    }),
                );
                return;
            }
            self.node_failed(node, now);
            if *code == crate::transport::wire::ErrorCode::UnknownKey
                && signing
                && let Some(key) = self.ops.get(&p.op).and_then(Op::signing_key)
            {
                // A holder that no longer knows the key: reshared elsewhere, or deleted.
                self.doubt(key);
            }
            if *code == crate::transport::wire::ErrorCode::BadEncoding
                && matches!(self.ops.get(&p.op), Some(Op::FrostSign(_)))
            {
                // The package holds this node's own commitment, as it sent it: refusing it blames the node.
                self.frost_response(p.op, resp.id, node, resp.body, now);
            } else {
                self.request_failed(p.op, resp.id, node, format!("{code:?}: {detail}"), now);
            }
            return;
        }
        if let Some(n) = self.nodes.get_mut(node) {
            let h = &mut n.health;
            h.answered += 1;
            h.consecutive_failures = 0;
            h.latency = if h.latency.is_zero() {
                latency
            } else {
                (h.latency * 7 + latency) / 8
            };
            n.down_until = None;
        }
        match self.ops.get_mut(&p.op) {
            Some(Op::Single) => {
                self.ops.remove(&p.op);
                self.events.push_back(Event::Reply {
                    op: p.op,
                    node,
                    result: Ok(resp.body),
                });
            }
            Some(Op::Sign(s)) => {
                if resp.session != s.session {
                    // An answer from an abandoned optimistic round.
                    return;
                }
                s.outstanding.remove(&node);
                let ResponseBody::Share { signer, share } = resp.body else {
                    self.node_failed(node, now);
                    self.request_failed(
                        p.op,
                        resp.id,
                        node,
                        "answered a signature request with something else".into(),
                        now,
                    );
                    return;
                };
                let expected = self
                    .keys
                    .get(&s.key)
                    .and_then(|k| k.holders.iter().find(|(_, n)| **n == node).map(|(s, _)| *s));
                // The share counts under the signer id this node holds, whatever the message claims.
                if expected != Some(signer) {
                    let key = s.key;
                    let name = self.node_name(node);
                    self.node_failed(node, now);
                    self.accuse(
                        node,
                        key,
                        format!("sent a share claiming signer {signer} for key {key}"),
                    );
                    if let Some(Op::Sign(s)) = self.ops.get_mut(&p.op)
                        && !s.culprits.contains(&name)
                    {
                        s.culprits.push(name);
                    }
                    self.request_failed(p.op, resp.id, node, format!("share claims signer {signer}"), now);
                    return;
                }
                s.shares.insert(signer, (node, share));
                self.try_combine(p.op, now);
            }
            Some(Op::Unanswered) => {
                self.ops.remove(&p.op);
            }
            Some(Op::Dkg(_)) => self.dkg_response(p.op, resp.id, node, resp.body, now),
            Some(Op::Deliver { .. }) => self.delivery_answered(p.op, Ok(resp.body), now),
            Some(Op::Pending) => {
                self.ops.remove(&p.op);
                self.pending_answered(node, resp.body, now);
            }
            Some(Op::KeyCheck) => {
                self.ops.remove(&p.op);
                self.keys_checked(node, &resp.body);
            }
            Some(Op::Abandon { key }) => {
                let key = *key;
                self.ops.remove(&p.op);
                self.abandon_answered(key, node, Some(resp.body), now);
            }
            Some(Op::FrostRefill { .. }) => {
                let commitments = match resp.body {
                    ResponseBody::Commitments(c) => Some(c),
                    _ => None,
                };
                self.frost_refill_answered(p.op, node, commitments, now);
            }
            Some(Op::FrostSign(_)) => self.frost_response(p.op, resp.id, node, resp.body, now),
            Some(Op::Presign(_)) => self.presign_response(p.op, resp.id, node, resp.body, now),
            Some(Op::EcdsaSign(_)) => self.ecdsa_response(p.op, resp.id, node, resp.body, now),
            Some(Op::DklsPair(_)) => self.dkls_pair_response(p.op, resp.id, node, resp.body, now),
            Some(Op::DklsSign(_)) => self.dkls_response(p.op, resp.id, node, resp.body, now),
            None => match resp.body {
                // A dealer's share of a key creation that was aborted meanwhile: rolled back.
                ResponseBody::KeyCreated(info) | ResponseBody::KeyResolved { info, .. } => {
                    self.send_unanswered(node, RequestBody::DeleteKey { key: info.key }, now);
                }
                _ => {}
            },
        }
    }

    fn try_combine(&mut self, op: OpId, now: Instant) {
        let Some(Op::Sign(s)) = self.ops.get(&op) else {
            return;
        };
        let Some(key) = self.keys.get(&s.key) else { return };
        if s.shares.len() < usize::from(key.threshold) {
            return;
        }
        let shares: BTreeMap<SignerId, Vec<u8>> =
            s.shares.iter().map(|(id, (_, b))| (*id, b.clone())).collect();
        let outcome = key.public.combine(&s.session, &s.mechanism, &shares);
        let holders = key.holders.clone();
        let key_id = s.key;
        // Ordinary-modulus RSA shares have no proofs to fall back on: the combiner's subset search names culprits.
        let ordinary = key.public.as_rsa().is_some_and(|pk| pk.is_ordinary());
        if !s.proven && !ordinary {
            match outcome {
                Ok(c) => {
                    let culprits = s.culprits.clone();
                    self.finish_sign(
                        op,
                        Ok(Signature {
                            bytes: c.signature,
                            culprits,
                        }),
                    );
                }
                Err(_) => {
                    tracing::warn!(key = %key_id, "optimistic combination failed; asking again with proofs");
                    if let Some(Op::Sign(s)) = self.ops.get_mut(&op) {
                        s.proven = true;
                        s.session = s.retry_session;
                        s.suspects = std::mem::take(&mut s.asked);
                        s.outstanding.clear();
                        s.shares.clear();
                    }
                    self.top_up(op, now);
                }
            }
            return;
        }
        match outcome {
            Ok(c) => {
                self.blame(op, key_id, &holders, &c.culprits);
                let culprits = match self.ops.get(&op) {
                    Some(Op::Sign(s)) => s.culprits.clone(),
                    _ => Vec::new(),
                };
                self.finish_sign(
                    op,
                    Ok(Signature {
                        bytes: c.signature,
                        culprits,
                    }),
                );
            }
            Err(CombineFailure::Culprits(culprits)) => {
                self.blame(op, key_id, &holders, &culprits);
                if culprits.is_empty() {
                    self.finish_sign(op, Err(SignError::BadRequest("shares do not combine".into())));
                    return;
                }
                self.top_up(op, now);
            }
            Err(CombineFailure::Unattributable(culprits)) => {
                self.blame(op, key_id, &holders, &culprits);
                if let Some(Op::Sign(s)) = self.ops.get_mut(&op) {
                    s.extra += 1;
                    tracing::warn!(
                        key = %key_id,
                        shares = s.shares.len(),
                        "no k of the shares combine (ordinary-modulus RSA key); asking one more holder"
                    );
                }
                self.top_up(op, now);
            }
            Err(CombineFailure::BadRequest(why)) => self.finish_sign(op, Err(SignError::BadRequest(why))),
        }
    }

    fn blame(
        &mut self,
        op: OpId,
        key: KeyId,
        holders: &BTreeMap<SignerId, NodeIndex>,
        culprits: &[SignerId],
    ) {
        for signer in culprits {
            let Some(&node) = holders.get(signer) else {
                continue;
            };
            let name = self.node_name(node);
            self.accuse(
                node,
                key,
                format!("invalid signature share (signer {signer}) for key {key}"),
            );
            if let Some(Op::Sign(s)) = self.ops.get_mut(&op) {
                s.shares.remove(signer);
                if !s.culprits.contains(&name) {
                    s.culprits.push(name);
                }
            }
        }
    }
}

impl Default for Coordinator {
    fn default() -> Self {
        Self::new(CoordinatorConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::FrameDecoder;

    fn frames_of(t: &Transmit) -> Vec<u8> {
        let mut d = FrameDecoder::new();
        d.push(&t.frame);
        d.next_frame().unwrap().unwrap()
    }

    #[test]
    fn single_requests_are_answered_by_request_id_and_time_out() {
        let mut c = Coordinator::default();
        let n = c.add_node("n1");
        let t0 = Instant::now();
        c.node_connected(n, t0);
        let op1 = c.start_request(n, RequestBody::Ping, t0, 1000, &mut rand::rng());
        let op2 = c.start_request(n, RequestBody::ListKeys, t0, 1000, &mut rand::rng());
        let t1 = c.poll_transmit().unwrap();
        let t2 = c.poll_transmit().unwrap();
        let r1 = Request::decode(&frames_of(&t1)).unwrap();
        let r2 = Request::decode(&frames_of(&t2)).unwrap();
        assert_ne!(r1.session, r2.session);
        assert_eq!(r1.issued_at_ms, 1000);
        // Answer the second first: pipelined, out of order.
        let ans = Response {
            id: r2.id,
            session: r2.session,
            body: ResponseBody::Keys(vec![]),
        };
        c.handle_frame(n, &ans.encode(), t0);
        assert_eq!(
            c.poll_event(),
            Some(Event::Reply {
                op: op2,
                node: n,
                result: Ok(ResponseBody::Keys(vec![]))
            })
        );
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(5)));
        c.handle_timeout(t0 + Duration::from_secs(6));
        assert!(matches!(c.poll_event(), Some(Event::Reply { op, result: Err(_), .. }) if op == op1));
        assert_eq!(c.health()[n].failed, 1);
        assert_eq!(c.health()[n].in_flight, 0);
    }

    #[test]
    fn first_connections_settle_early_only_with_a_majority_up_and_the_grace_passed() {
        let mut c = Coordinator::default();
        for i in 0..5 {
            c.add_node(format!("n{i}"));
        }
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let started: Vec<NodeIndex> = std::iter::from_fn(|| c.poll_connect(t0)).collect();
        assert_eq!(started, vec![0, 1, 2, 3, 4]);
        assert!(!c.connect_settled(t0, ms(1_000)), "nothing connected yet");
        // Two of five up after 40 ms: no majority, so the rest is waited for whatever the time.
        c.node_connected(0, ms(30));
        c.node_connected(1, ms(40));
        assert!(!c.connect_settled(t0, ms(10_000)));
        // A majority, the slowest having taken 60 ms: the others get 3 x 60 = 180 ms.
        c.node_connected(2, ms(60));
        assert!(!c.connect_settled(t0, ms(179)));
        assert!(c.connect_settled(t0, ms(180)));
        // Every node connected or failed since the call: settled at once, grace or not.
        c.node_connect_failed(3, "refused", ms(61));
        assert!(!c.connect_settled(t0, ms(62)), "node 4 is still connecting");
        c.node_connect_failed(4, "refused", ms(62));
        assert!(c.connect_settled(t0, ms(62)));
        // A node waiting for its next attempt (back-off) is waited for, whatever the time.
        let mut e = Coordinator::default();
        for i in 0..3 {
            e.add_node(format!("n{i}"));
        }
        while e.poll_connect(t0).is_some() {}
        e.node_connected(0, ms(1));
        e.node_connected(1, ms(2));
        e.node_connect_failed(2, "refused", ms(3));
        let later = ms(5_000);
        assert!(e.connect_settled(t0, later), "failed since the call");
        assert!(!e.connect_settled(ms(4), later), "its retry is pending");
        // Fast handshakes still leave the minimum grace to the others.
        let mut d = Coordinator::default();
        for i in 0..3 {
            d.add_node(format!("n{i}"));
        }
        while d.poll_connect(t0).is_some() {}
        d.node_connected(0, ms(1));
        d.node_connected(1, ms(2));
        assert!(!d.connect_settled(t0, ms(99)));
        assert!(d.connect_settled(t0, ms(100)));
    }

    #[test]
    fn a_response_for_another_node_or_unknown_request_is_ignored_and_counted() {
        let mut c = Coordinator::default();
        let a = c.add_node("a");
        let b = c.add_node("b");
        let t0 = Instant::now();
        c.node_connected(a, t0);
        c.node_connected(b, t0);
        c.start_request(a, RequestBody::Ping, t0, 1, &mut rand::rng());
        let r = Request::decode(&frames_of(&c.poll_transmit().unwrap())).unwrap();
        let forged = Response {
            id: r.id,
            session: r.session,
            body: ResponseBody::Done,
        };
        c.handle_frame(b, &forged.encode(), t0);
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.health()[b].failed, 1);
        c.handle_frame(a, b"garbage", t0);
        assert_eq!(c.health()[a].failed, 1);
    }

    #[test]
    fn signing_with_an_unknown_key_fails_at_once() {
        let mut c = Coordinator::default();
        let op = c.start_sign(
            KeyId([1; 32]),
            Mechanism::Ecdsa { digest: vec![1; 32] },
            Instant::now(),
            1,
            &mut rand::rng(),
        );
        assert_eq!(
            c.poll_event(),
            Some(Event::Signed {
                op,
                result: Err(SignError::UnknownKey(KeyId([1; 32])))
            })
        );
    }

    #[test]
    fn disconnection_fails_requests_to_that_node() {
        let mut c = Coordinator::default();
        let a = c.add_node("a");
        let t0 = Instant::now();
        c.node_connected(a, t0);
        let op = c.start_request(a, RequestBody::Ping, t0, 1, &mut rand::rng());
        c.node_disconnected(a, t0);
        assert!(matches!(c.poll_event(), Some(Event::Reply { op: o, result: Err(_), .. }) if o == op));
        assert_eq!(c.poll_transmit(), None);
        let op2 = c.start_request(a, RequestBody::Ping, t0, 1, &mut rand::rng());
        assert!(matches!(c.poll_event(), Some(Event::Reply { op: o, result: Err(_), .. }) if o == op2));
    }
}
