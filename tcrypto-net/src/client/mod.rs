//! The coordinator API: a cluster of signer nodes seen as one signing device.
//!
//! [`Cluster`] offers create/import, sign, delete, list and health on top of any [`Engine`], the part that moves
//! frames between the sans-io [`Coordinator`] and the nodes:
//! - [`crate::client::memory::MemoryEngine`]: nodes in the same process, called directly (tests, embedded quickstart);
//! - [`crate::client::blocking::BlockingEngine`]: mutual TLS over TCP, driven from the caller's thread with non-blocking
//!   sockets and `poll`, without any runtime or extra thread (for PKCS#11 hosts).
//!
//! Many requests can be in flight at once: [`Cluster::sign_many`] pipelines a batch, and any number of threads may
//! call [`Cluster::sign`] at the same time.

//!
//! The engines and drivers: [`memory`] (in-process nodes), [`blocking`] (mutual TLS, thread-free), [`asynchronous`]
//! (the same on tokio), [`embedded`] (nodes inside the current process, for the quickstart and the PKCS#11 module's
//! embedded backend).

pub mod asynchronous;
pub mod blocking;
pub mod embedded;
pub mod memory;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tcrypto::{KeyId, SignerId};
use thiserror::Error;

use crate::algo::EcdsaPublicKey;
use crate::coordinator::{Coordinator, Event, NodeHealth, NodeIndex, OpId, SignError, Signature};
use crate::node::server::unix_ms_now;
use crate::transport::bundle::{BundleError, ShareBundle};
use crate::transport::identity::NodePublic;
use crate::transport::wire::{
    Algorithm, DataMechanism, KeyInfo, Mechanism, RequestBody, ResponseBody, SignData,
};

/// Errors of cluster operations.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// A node refused or failed a request.
    #[error("node {node}: {detail}")]
    Node {
        /// The node's name.
        node: String,
        /// Why.
        detail: String,
    },
    /// A bundle could not be sealed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A key could not be registered.
    #[error("key registration: {0}")]
    Key(String),
    /// The engine failed.
    #[error("transport: {0}")]
    Transport(String),
    /// A reshare, refresh or settle did not finish (another one of the key is in progress:
    /// [`crate::coordinator::reshare::ReshareError::Pending`]).
    #[error("reshare: {0}")]
    Reshare(crate::coordinator::reshare::ReshareError),
}

/// Moves frames between a [`Coordinator`] and the nodes.
pub trait Engine: Send + Sync {
    /// Runs `f` on the coordinator (with the current time) and sends what it queued.
    fn submit<R>(&self, f: impl FnOnce(&mut Coordinator, Instant, u64) -> R) -> R;

    /// Drives I/O until `op` completes and returns its event.
    fn wait(&self, op: OpId) -> Event;

    /// Drives I/O until the first connections are settled
    /// ([`crate::coordinator::Coordinator::connect_settled`]), or `timeout` passes; returns how many are
    /// connected. Not needed before signing: a request short of usable holders waits
    /// for the connection attempts under way and fails fast only when they cannot make up `k`.
    fn connect_all(&self, timeout: Duration) -> usize;

    /// Events that no operation waits for (culprits), drained.
    fn take_notices(&self) -> Vec<Event>;
}

/// How many DKG runs [`Cluster::create_key`] tries, each without the dealers named culprits by the previous.
pub(crate) const CREATE_ATTEMPTS: usize = 3;

/// The runs of one key creation: each new run avoids, as dealers, the nodes named culprits by earlier runs.
#[derive(Debug, Default)]
pub(crate) struct CreateAttempts {
    /// Nodes that do not deal.
    pub(crate) avoid: BTreeSet<NodeIndex>,
    runs: usize,
}

impl CreateAttempts {
    /// Judges a run's outcome: `Some` to return it, `None` to run again.
    pub(crate) fn judge(
        &mut self,
        event: Event,
        nodes: &[NodePublic],
    ) -> Option<Result<KeyId, ClusterError>> {
        self.runs += 1;
        match event {
            Event::Created { result: Ok(key), .. } => Some(Ok(key)),
            Event::Created { result: Err(e), .. } => {
                let culprits: Vec<NodeIndex> = match &e {
                    SignError::Aborted { culprits, .. } => culprits
                        .iter()
                        .filter_map(|name| nodes.iter().position(|n| &n.name == name))
                        .collect(),
                    _ => Vec::new(),
                };
                let fresh = culprits.iter().any(|c| !self.avoid.contains(c));
                self.avoid.extend(culprits);
                if fresh && self.runs < CREATE_ATTEMPTS {
                    None
                } else {
                    Some(Err(ClusterError::Sign(e)))
                }
            }
            other => Some(Err(ClusterError::Transport(format!(
                "unexpected event {other:?}"
            )))),
        }
    }
}

/// A cluster of signer nodes.
pub struct Cluster<E: Engine> {
    engine: E,
    nodes: Vec<NodePublic>,
    deliveries: Option<DeliveriesFile>,
    /// What signatures started with [`Cluster::start_signs`] asked for, to sign again under a key's new sharing.
    started: std::sync::Mutex<std::collections::HashMap<OpId, (KeyId, SignRequest)>>,
}

/// File name of the pending DKG deliveries in a coordinator's data directory.
pub const DELIVERIES_FILE: &str = "pending-deliveries.bin";

/// Where the pending DKG deliveries are kept, and the coordinator's version of them last written.
struct DeliveriesFile {
    dir: std::path::PathBuf,
    written: std::sync::Mutex<u64>,
}

impl<E: Engine> std::fmt::Debug for Cluster<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Cluster<E> {
    /// A cluster over `engine`, whose coordinator has the nodes `nodes` in this order.
    pub fn new(engine: E, nodes: Vec<NodePublic>) -> Self {
        Self {
            engine,
            nodes,
            deliveries: None,
            started: std::sync::Mutex::default(),
        }
    }

    /// Keeps the coordinator's pending DKG deliveries (the sealed shares of nodes that were down when a key was
    /// created) in `dir` ([`DELIVERIES_FILE`], rewritten crash-safely whenever they change, before
    /// [`Cluster::create_key`] returns), and restores those already there: after a coordinator restart, nodes
    /// that missed a key creation still get their shares when they connect.
    pub fn keep_deliveries_in(mut self, dir: &std::path::Path) -> Result<Self, ClusterError> {
        let io = |e: std::io::Error| ClusterError::Transport(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(DELIVERIES_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let restored = self
                    .engine
                    .submit(|c, now, unix| c.restore_deliveries(&bytes, now, unix))
                    .map_err(|e| ClusterError::Key(format!("{}: {e}", path.display())))?;
                tracing::info!(restored, "pending DKG deliveries restored");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        self.deliveries = Some(DeliveriesFile {
            dir: dir.to_path_buf(),
            written: std::sync::Mutex::new(u64::MAX),
        });
        self.save_deliveries()?;
        Ok(self)
    }

    /// Rewrites the pending-deliveries file if the coordinator's deliveries changed since it was written.
    fn save_deliveries(&self) -> Result<(), ClusterError> {
        let Some(file) = &self.deliveries else {
            return Ok(());
        };
        let mut written = file
            .written
            .lock()
            .map_err(|_| ClusterError::Transport("deliveries lock poisoned".into()))?;
        let (version, bytes) = self
            .engine
            .submit(|c, _, _| (c.deliveries_version(), c.encode_deliveries()));
        if *written == version {
            return Ok(());
        }
        crate::node::store::write_atomic(&file.dir, DELIVERIES_FILE, &bytes, version)
            .map_err(|e| ClusterError::Transport(format!("pending deliveries: {e}")))?;
        *written = version;
        Ok(())
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The nodes' public identities, by index.
    pub fn nodes(&self) -> &[NodePublic] {
        &self.nodes
    }

    /// Waits until the first connections are settled ([`crate::coordinator::Coordinator::connect_settled`]: a
    /// down node costs one refused attempt, one that drops packets a few handshake times, not the whole
    /// `timeout`), or `timeout` passes; returns the number connected.
    pub fn connect(&self, timeout: Duration) -> usize {
        self.engine.connect_all(timeout)
    }

    fn node_name(&self, i: NodeIndex) -> String {
        self.nodes.get(i).map(|n| n.name.clone()).unwrap_or_default()
    }

    /// Sends one request to one node and waits for its answer.
    pub fn request(&self, node: NodeIndex, body: RequestBody) -> Result<ResponseBody, ClusterError> {
        let op = self
            .engine
            .submit(|c, now, unix| c.start_request(node, body, now, unix, &mut rand::rng()));
        match self.engine.wait(op) {
            Event::Reply {
                result: Ok(ResponseBody::Error { code, detail }),
                ..
            } => Err(ClusterError::Node {
                node: self.node_name(node),
                detail: format!("{code:?}: {detail}"),
            }),
            Event::Reply { result: Ok(b), .. } => Ok(b),
            Event::Reply { result: Err(e), .. } => Err(ClusterError::Node {
                node: self.node_name(node),
                detail: e,
            }),
            other => Err(ClusterError::Transport(format!("unexpected event {other:?}"))),
        }
    }

    /// Distributes one share bundle per node (`bundles[i]` to the node holding signer id `i+1` in `holders`) and
    /// registers the key. Every holder must accept.
    pub fn import_key(
        &self,
        bundles: Vec<(NodeIndex, ShareBundle)>,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let Some((_, first)) = bundles.first() else {
            return Err(ClusterError::Key("no bundles".into()));
        };
        let mut info = first.info.clone();
        let mut ops = Vec::new();
        let mut holders = BTreeMap::new();
        for (node, b) in &bundles {
            let public = self
                .nodes
                .get(*node)
                .ok_or_else(|| ClusterError::Key(format!("no node {node}")))?;
            let sealed = b.seal(public, rng)?;
            holders.insert(b.info.signer, *node);
            let body = RequestBody::ImportShare {
                bundle: sealed.encode(),
            };
            let node = *node;
            ops.push((
                node,
                self.engine
                    .submit(|c, now, unix| c.start_request(node, body, now, unix, &mut rand::rng())),
            ));
        }
        let mut failures = Vec::new();
        for (node, op) in ops {
            match self.engine.wait(op) {
                Event::Reply {
                    result: Ok(ResponseBody::Done),
                    ..
                } => {}
                Event::Reply { result, .. } => failures.push(format!("{}: {result:?}", self.node_name(node))),
                other => failures.push(format!("{other:?}")),
            }
        }
        if !failures.is_empty() {
            return Err(ClusterError::Node {
                node: "import".into(),
                detail: failures.join("; "),
            });
        }
        info.signer = holders.keys().next().copied().unwrap_or(info.signer);
        let key = info.key;
        self.engine
            .submit(|c, _, _| c.register_key(&info, holders))
            .map_err(ClusterError::Key)?;
        Ok(key)
    }

    /// Distributes the shares of an RSA key, share with signer id `i` to node `i - 1`, and registers the key.
    pub fn import_rsa_shares(
        &self,
        pk: &tcrypto::rsa::PublicKeySet,
        shares: &[tcrypto::rsa::KeyShare],
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        if usize::from(pk.parties()) != self.nodes.len() {
            return Err(ClusterError::Key(format!(
                "key has {} shares but the cluster {} nodes",
                pk.parties(),
                self.nodes.len()
            )));
        }
        let bundles = crate::algo::rsa_bundles(pk, shares)
            .into_iter()
            .map(|b| (usize::from(b.info.signer.get()) - 1, b))
            .collect();
        self.import_key(bundles, rng)
    }

    /// Creates an RSA key with a trusted dealer in this process (which sees the whole key while dealing: a single
    /// point of failure, hence the `dealer` feature) and distributes one share per node.
    #[cfg(feature = "dealer")]
    pub fn create_rsa_key_with_dealer(
        &self,
        bits: usize,
        threshold: u16,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let parties =
            u16::try_from(self.nodes.len()).map_err(|_| ClusterError::Key("too many nodes".into()))?;
        let (pk, shares) = tcrypto::rsa::deal(bits, threshold, parties, rng)
            .map_err(|e| ClusterError::Key(e.to_string()))?;
        self.import_rsa_shares(&pk, &shares, rng)
    }

    /// Creates a `threshold`-of-`n` key of `algorithm` (ECDSA P-256 or Ed25519; `n` = the number of nodes, party
    /// `i + 1` on node `i`) by distributed key generation across the nodes; no machine ever holds the key.
    ///
    /// What must be online: at least `k` nodes, which deal; nodes that are down receive their shares sealed by
    /// the dealers when they reconnect (to this coordinator or any later one: the dealers keep the sealed shares).
    /// The key is reported created only once a dealer committed it; a failed creation is rolled back on the nodes. All dealers must stay up for the four rounds; a run
    /// whose dealers name a culprit is repeated without it as a dealer (up to three runs). The key is registered
    /// once every dealer reports the same public key set. For ECDSA, `n >= 2k - 1` (presigning needs `2k - 1`
    /// holders online).
    pub fn create_key(&self, algorithm: Algorithm, threshold: u16) -> Result<KeyId, ClusterError> {
        let mut attempts = CreateAttempts::default();
        loop {
            let op = self
                .engine
                .submit(|c, now, unix| c.start_create_key(algorithm, threshold, &attempts.avoid, now, unix));
            if let Some(result) = attempts.judge(self.engine.wait(op), &self.nodes) {
                let key = result?;
                self.save_deliveries()?;
                self.engine.submit(|c, now, unix| c.prefill(key, now, unix));
                return Ok(key);
            }
        }
    }

    /// Distributes the shares of a threshold P-256 key (signer `i` to node `i - 1`) and registers the key.
    pub fn import_ecdsa_shares(
        &self,
        pk: &EcdsaPublicKey,
        shares: &[tcrypto::ecdsa::KeyShare],
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        self.import_in_signer_order(crate::algo::ecdsa_bundles(pk, shares), rng)
    }

    /// Distributes the shares of a FROST Ed25519 key (signer `i` to node `i - 1`) and registers the key.
    pub fn import_ed25519_shares(
        &self,
        pk: &tcrypto::ed25519::PublicKeySet,
        shares: &[tcrypto::ed25519::KeyShare],
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let key = self.import_in_signer_order(crate::algo::ed25519_bundles(pk, shares), rng)?;
        self.engine.submit(|c, now, unix| c.prefill(key, now, unix));
        Ok(key)
    }

    fn import_in_signer_order(
        &self,
        bundles: Vec<ShareBundle>,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        if bundles
            .iter()
            .any(|b| usize::from(b.info.parties) != self.nodes.len())
        {
            return Err(ClusterError::Key(format!(
                "the key's party count differs from the cluster's {} nodes",
                self.nodes.len()
            )));
        }
        let bundles = bundles
            .into_iter()
            .map(|b| (usize::from(b.info.signer.get()) - 1, b))
            .collect();
        self.import_key(bundles, rng)
    }

    /// Creates a threshold P-256 key with a trusted dealer in this process (single point of failure, hence the
    /// `dealer` feature; prefer [`Cluster::create_key`]) and distributes one share per node.
    #[cfg(feature = "dealer")]
    pub fn create_ecdsa_key_with_dealer(
        &self,
        threshold: u16,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let ids = self.party_ids()?;
        let (set, shares) = tcrypto::dkg::dealer::deal::<tcrypto::dkg::P256>(threshold, ids, rng)
            .map_err(|e| ClusterError::Key(e.to_string()))?;
        let shares = shares
            .iter()
            .map(|s| s.to_ecdsa())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClusterError::Key(e.to_string()))?;
        let pk = EcdsaPublicKey::new(set).map_err(ClusterError::Key)?;
        self.import_ecdsa_shares(&pk, &shares, rng)
    }

    /// Creates a FROST Ed25519 key with a trusted dealer in this process (`dealer` feature) and distributes one
    /// share per node.
    #[cfg(feature = "dealer")]
    pub fn create_ed25519_key_with_dealer(
        &self,
        threshold: u16,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let ids = self.party_ids()?;
        let (pk, shares) =
            tcrypto::ed25519::deal(threshold, ids, rng).map_err(|e| ClusterError::Key(e.to_string()))?;
        self.import_ed25519_shares(&pk, &shares, rng)
    }

    #[cfg(feature = "dealer")]
    fn party_ids(&self) -> Result<Vec<SignerId>, ClusterError> {
        (1..=self.nodes.len())
            .map(|i| u16::try_from(i).ok().and_then(SignerId::new))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ClusterError::Key("too many nodes".into()))
    }

    /// Key ids whose DKG shares still wait to be delivered to node `node` (it was down during key creation).
    pub fn pending_deliveries(&self, node: NodeIndex) -> Vec<KeyId> {
        self.engine.submit(|c, _, _| c.pending_deliveries(node))
    }

    /// ECDSA presignatures of `key` ready in the coordinator's pool (for monitoring and tests; 0 for other keys).
    pub fn presignature_pool_len(&self, key: &KeyId) -> usize {
        self.engine.submit(|c, _, _| c.presignature_pool_len(key))
    }

    /// ECDSA signatures released so far by each path: `(presignatures, DKLs23)` (for monitoring and tests).
    pub fn ecdsa_signatures_by_path(&self) -> (u64, u64) {
        self.engine.submit(|c, _, _| c.ecdsa_signatures_by_path())
    }

    /// Signs with `key`. Blocks until a verified signature is out or `k` nodes cannot be had.
    pub fn sign(&self, key: KeyId, mechanism: Mechanism) -> Result<Signature, ClusterError> {
        let request = SignRequest::Digest(mechanism);
        let op = self
            .engine
            .submit(|c, now, unix| request.start(c, key, now, unix));
        self.signed(op, Some((key, request)))
    }

    /// Starts signatures without waiting (all in flight at once); collect each with [`Cluster::wait_signature`].
    pub fn start_signs(&self, requests: &[(KeyId, Mechanism)]) -> Vec<OpId> {
        self.start_all(
            requests
                .iter()
                .map(|(k, m)| (*k, SignRequest::Digest(m.clone())))
                .collect(),
        )
    }

    /// Signs `data` with `key`: the nodes receive the data itself, judge it by their signing policy, hash it and
    /// build the encoding (a node whose policy allows only data forms refuses [`Cluster::sign`]'s digests).
    /// Blocks until a verified signature is out, `k` nodes cannot be had, or the nodes' policy refuses.
    pub fn sign_data(
        &self,
        key: KeyId,
        mechanism: DataMechanism,
        data: Vec<u8>,
    ) -> Result<Signature, ClusterError> {
        let request = SignRequest::Data(SignData { mechanism, data });
        let op = self
            .engine
            .submit(|c, now, unix| request.start(c, key, now, unix));
        self.signed(op, Some((key, request)))
    }

    /// [`Cluster::start_signs`] for data-carrying requests ([`Cluster::sign_data`]).
    pub fn start_data_signs(&self, requests: Vec<(KeyId, SignData)>) -> Vec<OpId> {
        self.start_all(
            requests
                .into_iter()
                .map(|(k, d)| (k, SignRequest::Data(d)))
                .collect(),
        )
    }

    fn start_all(&self, requests: Vec<(KeyId, SignRequest)>) -> Vec<OpId> {
        // A node that reconnected may have reported a sharing learned elsewhere (suspicion.rs): learn it first.
        self.settle_suspicions();
        let ops: Vec<OpId> = self
            .engine
            .submit(|c, now, unix| requests.iter().map(|(k, r)| r.start(c, *k, now, unix)).collect());
        if let Ok(mut started) = self.started.lock() {
            started.extend(ops.iter().copied().zip(requests));
        }
        ops
    }

    /// Waits for a signature started with [`Cluster::start_signs`] or [`Cluster::start_data_signs`].
    pub fn wait_signature(&self, op: OpId) -> Result<Signature, ClusterError> {
        let again = self.started.lock().ok().and_then(|mut s| s.remove(&op));
        self.signed(op, again)
    }

    /// Waits for `op`, settles the coordinator's suspicions, and signs `again` once when the key's sharing
    /// turned out to have changed under the failed operation (a reshare by another coordinator).
    fn signed(&self, op: OpId, again: Option<(KeyId, SignRequest)>) -> Result<Signature, ClusterError> {
        let result = match self.engine.wait(op) {
            Event::Signed { result, .. } => result.map_err(ClusterError::Sign),
            other => Err(ClusterError::Transport(format!("unexpected event {other:?}"))),
        };
        let changed = self.settle_suspicions();
        match (result, again) {
            (Err(e), Some((key, request))) if changed.contains(&key) && worth_again(&e) => {
                tracing::info!(%key, error = %e, "signing again with the key's new sharing");
                let op = self
                    .engine
                    .submit(|c, now, unix| request.start(c, key, now, unix));
                self.signed(op, None)
            }
            (result, _) => result,
        }
    }

    /// Checks the keys the coordinator has suspicions about against every node's key list
    /// ([`Coordinator::settle_suspicions`]); returns the keys whose sharing changed.
    pub fn settle_suspicions(&self) -> Vec<KeyId> {
        if self.engine.submit(|c, _, _| c.suspected_keys()).is_empty() {
            return Vec::new();
        }
        let lists = self.key_lists();
        self.engine.submit(|c, _, _| c.settle_suspicions(&lists))
    }

    /// Every answering node's key list (`ListKeys`).
    fn key_lists(&self) -> BTreeMap<NodeIndex, Vec<KeyInfo>> {
        let mut lists = BTreeMap::new();
        for i in 0..self.nodes.len() {
            if let Ok(ResponseBody::Keys(keys)) = self.request(i, RequestBody::ListKeys) {
                lists.insert(i, keys);
            }
        }
        lists
    }

    /// Signs a batch with all requests in flight at once; results in input order.
    pub fn sign_many(&self, requests: Vec<(KeyId, Mechanism)>) -> Vec<Result<Signature, ClusterError>> {
        let ops = self.start_all(
            requests
                .into_iter()
                .map(|(k, m)| (k, SignRequest::Digest(m)))
                .collect(),
        );
        ops.into_iter().map(|op| self.wait_signature(op)).collect()
    }

    /// Asks every connected node for its keys and registers those that at least `k` nodes agree on.
    pub fn refresh_keys(&self) -> Result<Vec<KeyId>, ClusterError> {
        let lists = self.key_lists();
        Ok(self.engine.submit(|c, _, _| c.learn_keys(&lists)))
    }

    /// Keys known to the coordinator.
    pub fn list(&self) -> Vec<KeyId> {
        let mut keys: Vec<KeyId> = self
            .engine
            .submit(|c, _, _| c.keys().into_iter().map(|k| k.0).collect());
        keys.sort();
        keys
    }

    /// The public key material of a known key.
    pub fn public_key(&self, key: &KeyId) -> Option<crate::algo::PublicKey> {
        self.engine.submit(|c, _, _| c.public_key(key).cloned())
    }

    /// Deletes `key` on every holder and forgets it. Holders that are down keep their share; they are listed in
    /// the error.
    pub fn delete(&self, key: KeyId) -> Result<(), ClusterError> {
        let holders: Vec<NodeIndex> = self.engine.submit(|c, _, _| {
            c.keys()
                .into_iter()
                .find(|k| k.0 == key)
                .map(|k| k.2.values().copied().collect())
                .unwrap_or_default()
        });
        if holders.is_empty() {
            return Err(ClusterError::Sign(SignError::UnknownKey(key)));
        }
        self.engine.submit(|c, _, _| c.forget_key(&key));
        let mut failures = Vec::new();
        for node in holders {
            if let Err(e) = self.request(node, RequestBody::DeleteKey { key }) {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::Node {
                node: "delete".into(),
                detail: failures.join("; "),
            })
        }
    }

    /// Reshares `key` to the nodes `nodes` (new holder `j + 1` on `nodes[j]`) with threshold `threshold`, by the
    /// two-phase commit of [`crate::coordinator::reshare`]: new shares pending, one test signature, commit, old
    /// holders retired. The public key (and the key's name) stay; the coordinator registers the new sharing.
    /// What an earlier interrupted reshare left is settled first.
    ///
    /// A node the coordinator excluded (named a culprit) is refused as a new holder
    /// ([`crate::coordinator::reshare::ReshareError::Excluded`]); see [`Self::reshare_admitting`]. Nodes the new
    /// holders name are excluded in this coordinator.
    pub fn reshare(
        &self,
        key: KeyId,
        nodes: &[NodeIndex],
        threshold: u16,
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.reshare_admitting(key, nodes, threshold, &[])
    }

    /// [`Self::reshare`], making the excluded nodes of `admit` new holders all the same (the operator's explicit
    /// override, e.g. for a node repaired after it was named).
    pub fn reshare_admitting(
        &self,
        key: KeyId,
        nodes: &[NodeIndex],
        threshold: u16,
        admit: &[NodeIndex],
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.run_reshare(
            key,
            crate::coordinator::reshare::Goal::Reshare {
                nodes: nodes.to_vec(),
                threshold,
            },
            admit,
        )
    }

    /// Refreshes `key`: new shares for the same holders and threshold (the old shares become useless).
    pub fn refresh(&self, key: KeyId) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.run_reshare(key, crate::coordinator::reshare::Goal::Refresh, &[])
    }

    /// Finishes or rolls back what an interrupted reshare of `key` left on the nodes (a fresh coordinator calls
    /// this before using a key it may have been resharing), and registers the sharing that remains.
    pub fn settle_reshare(&self, key: KeyId) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.run_reshare(key, crate::coordinator::reshare::Goal::Settle, &[])
    }

    fn run_reshare(
        &self,
        key: KeyId,
        goal: crate::coordinator::reshare::Goal,
        admit: &[NodeIndex],
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        use crate::coordinator::reshare::{Resharing, Want};
        let excluded = self.engine.submit(|c, _, _| c.excluded());
        let mut run = Resharing::new(key, goal, self.nodes.clone())
            .excluding(excluded)
            .admitting(admit.iter().copied());
        let mut want = run.start();
        let mut rng = rand::rng();
        loop {
            want = match want {
                Want::Ask(requests) => {
                    let ops: Vec<OpId> = self.engine.submit(|c, now, unix| {
                        let mut rng = rand::rng();
                        requests
                            .into_iter()
                            .map(|(node, body)| c.start_request(node, body, now, unix, &mut rng))
                            .collect()
                    });
                    let answers = ops
                        .into_iter()
                        .map(|op| match self.engine.wait(op) {
                            Event::Reply { result, .. } => result,
                            other => Err(format!("unexpected event {other:?}")),
                        })
                        .collect();
                    run.answers(answers, &mut rng)
                }
                Want::TestSign {
                    id,
                    info,
                    holders,
                    mechanism,
                } => {
                    let registered = self
                        .engine
                        .submit(|c, _, _| c.register_key_as(id, &info, holders));
                    let signed = match registered {
                        Ok(()) => self
                            .sign(id, mechanism)
                            .map(|s| s.bytes)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    self.engine.submit(|c, _, _| c.forget_key(&id));
                    run.signed(signed)
                }
                Want::Done(result) => {
                    let named = run.named();
                    self.engine
                        .submit(|c, _, _| crate::coordinator::reshare::exclude_culprits(c, key, &named));
                    let outcome = result.map_err(ClusterError::Reshare)?;
                    self.engine
                        .submit(|c, now, unix| {
                            crate::coordinator::reshare::register(c, key, &outcome, now, unix)
                        })
                        .map_err(ClusterError::Key)?;
                    return Ok(outcome);
                }
            };
        }
    }

    /// Pings every node and returns the coordinator's view of their health.
    pub fn health(&self) -> Vec<NodeHealth> {
        for i in 0..self.nodes.len() {
            let _ = self.request(i, RequestBody::Ping);
        }
        if let Err(e) = self.save_deliveries() {
            tracing::error!(error = %e, "pending DKG deliveries not saved");
        }
        self.engine.submit(|c, _, _| c.health())
    }

    /// Culprit notices since the last call (suspicions are settled first).
    pub fn culprits(&self) -> Vec<(NodeIndex, String, KeyId)> {
        self.settle_suspicions();
        self.engine
            .take_notices()
            .into_iter()
            .filter_map(|e| match e {
                Event::Culprit { node, name, key } => Some((node, name, key)),
                _ => None,
            })
            .collect()
    }
}

/// What a signature operation asks for: a digest (the host hashed) or the data (the nodes hash it).
#[derive(Debug, Clone)]
pub(crate) enum SignRequest {
    Digest(Mechanism),
    Data(SignData),
}

impl SignRequest {
    /// Starts the operation on `c`.
    pub(crate) fn start(&self, c: &mut Coordinator, key: KeyId, now: Instant, unix: u64) -> OpId {
        match self {
            SignRequest::Digest(m) => c.start_sign(key, m.clone(), now, unix, &mut rand::rng()),
            SignRequest::Data(d) => c.start_sign_data(key, d.clone(), now, unix, &mut rand::rng()),
        }
    }
}

/// Whether a failed signature is worth asking again once the key's new sharing is learned (the nodes' policy
/// refusals are final).
pub(crate) fn worth_again(e: &ClusterError) -> bool {
    !matches!(e, ClusterError::Sign(SignError::PolicyRefused { .. }))
}

/// The current wall clock for requests.
pub(crate) fn wall_ms() -> u64 {
    unix_ms_now()
}

/// Public key info for a node holding signer `signer` of a key described by `info`.
pub fn info_for(info: &KeyInfo, signer: SignerId) -> KeyInfo {
    KeyInfo {
        signer,
        ..info.clone()
    }
}
