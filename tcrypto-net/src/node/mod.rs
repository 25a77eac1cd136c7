//! The signer node: the sans-io core that answers coordinator requests.
//!
//! [`SignerNode::handle_frame`] takes one request frame, the requester's pinned identity (from the TLS channel,
//! never from the message) and the node's clock, and returns the response frame. It never panics on any input:
//! garbage, truncated or unknown messages get a typed [`ErrorCode::Malformed`] answer and the node keeps serving.
//! Before anything else every request passes the [`ReplayGuard`]; every request, accepted or not, is written to the
//! audit log before its answer is returned (an audit failure turns the answer into an error, so no share leaves
//! unaudited); imported shares are written to the encrypted store before they are acknowledged. A request that
//! creates a key (the end of a DKG, a delivered DKG share, an imported bundle) is audited with the key's id and the
//! audit log is synced to disk before the answer leaves; if that fails the answer is an error.
//!
//! **Damage is contained** ([`SignerNode::load_keys`]): a key file that does not open or does not decode, or that
//! the store manifest lists but is gone, takes only that key out of service (its requests are refused naming the
//! file; [`SignerNode::health`] lists it, and the daemon shows it in `tcrypto-node status`); the other keys serve.
//! Damaged presignature batches are quarantined and presignatures whose spent state is in doubt are discarded
//! (`crate::node::ec::presign`). DKLs23 pair states (one per peer node) are sealed secrets of the store; a damaged one is
//! quarantined and a missing one noticed, and either is replaced by a new pair setup (`crate::node::ec::dkls`).
//!
//! The node is shared between connections (`&self` everywhere): the key table is behind a read-write lock and
//! signing happens outside any lock.

//!
//! Its parts, and the daemon's:
//! - [`replay`]: the replay and staleness guard every request passes first;
//! - [`policy`]: the operator's signing policy (what a key may sign, judged on data the node hashes itself);
//! - `ec` (internal): the node's side of the DKG, FROST, presigning and DKLs23 runs relayed through the coordinator;
//! - [`reshare`]: the node's side of a reshare and its durable two-phase commit;
//! - [`store`]: the encrypted, crash-safe secret store; [`audit`]: the hash-chained audit log; [`backup`]: sealed
//!   archives of a node's state;
//! - [`server`]: the daemon's tokio server around [`SignerNode`].

pub mod audit;
pub mod backup;
pub(crate) mod ec;
// Byzantine answers of `tcrypto-node serve` for multi-process tests (feature `test-support`).
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod misbehave;
pub mod policy;
pub mod replay;
pub mod reshare;
pub mod server;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rand_core::CryptoRng;
use tcrypto::{KeyId, SessionId};
use thiserror::Error;

use crate::algo::{HeldShare, Refusal};
use crate::node::audit::{AuditRecord, AuditSink};
use crate::node::policy::Policy;
use crate::node::replay::{ReplayError, ReplayGuard};
use crate::node::store::{SecretStore, StoreError};
use crate::transport::bundle::{SealedBundle, ShareBundle};
use crate::transport::identity::{NodeIdentity, NodePublic, SpkiFingerprint};
use crate::transport::wire::{
    DataMechanism, ErrorCode, KeyInfo, Mechanism, Request, RequestBody, Response, ResponseBody, SignData,
};
use ec::{Failure, Roster};

/// Errors loading a node's state.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored share does not decode or does not match its public key.
    #[error("stored share {name}: {detail}")]
    BadStoredShare {
        /// Secret name.
        name: String,
        /// Why.
        detail: String,
    },
}

struct Held {
    info: KeyInfo,
    share: HeldShare,
}

/// Prefix of the store names of key shares.
const KEY_PREFIX: &str = "key-";

fn store_name(key: &KeyId) -> String {
    format!("{KEY_PREFIX}{key}")
}

/// Opens the key file `name` of `store`: it must open under the store key, decode, match its public key and be
/// named after its key id. The error names the file.
fn open_key_file(store: &SecretStore, name: &str) -> Result<Held, String> {
    let path = store.path_of(name);
    let pt = store
        .get(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} vanished", path.display()))?;
    let bundle = ShareBundle::decode(&pt).map_err(|e| format!("{}: {e}", path.display()))?;
    let share = HeldShare::from_bundle(&bundle).map_err(|(_, d)| format!("{}: {d}", path.display()))?;
    if store_name(&bundle.info.key) != name {
        return Err(format!("{}: file name does not match the key id", path.display()));
    }
    Ok(Held {
        info: bundle.info,
        share,
    })
}

/// The signer node core.
pub struct SignerNode {
    identity: Arc<NodeIdentity>,
    keys: RwLock<BTreeMap<KeyId, Arc<Held>>>,
    replay: Mutex<ReplayGuard>,
    store: Option<Arc<SecretStore>>,
    audit: Arc<dyn AuditSink>,
    peers: RwLock<Vec<NodePublic>>,
    dkg_runs: Mutex<ec::Runs<ec::dkg::AnyDkg>>,
    /// Tentative DKG shares and the deliveries kept for offline parties.
    dkg_kept: ec::dkg::Keeping,
    nonces: ec::frost::NoncePool,
    presign_runs: Mutex<ec::Runs<ec::presign::PresignRun>>,
    presignatures: ec::presign::Stock,
    /// DKLs23 pair states (one per peer node) and the runs in progress (memory only, bounded, expiring).
    dkls_pairs: ec::dkls::Pairs,
    dkls_setups: Mutex<ec::Runs<ec::dkls::SetupRun>>,
    dkls_runs: Mutex<ec::Runs<ec::dkls::SignRun>>,
    /// Reshare runs in progress (memory only) and the durable reshare records (`crate::node::reshare`).
    reshare_runs: Mutex<ec::Runs<crate::node::reshare::Run>>,
    reshares: crate::node::reshare::Records,
    /// One reshare of a key at a time (memory only; `crate::node::reshare::Claims`).
    reshare_claims: crate::node::reshare::Claims,
    /// Keys taken out of service by damage, with the reason (named by key id, or by file when the id is unknown).
    out_of_service: RwLock<BTreeMap<String, String>>,
    /// What the node found wrong at start (damaged or missing files, discarded presignatures), for the operator.
    notices: Mutex<Vec<String>>,
    /// Request counters and latencies, when the daemon exposes metrics.
    metrics: std::sync::OnceLock<Arc<crate::metrics::NodeMetrics>>,
    /// The operator's signing policy ([`crate::node::policy`]); none: every pinned coordinator's request is signed.
    policy: RwLock<Option<Arc<Policy>>>,
    /// DNSKEY key tags of the keys held, by key, flags and algorithm (derived once from the public key).
    key_tags: Mutex<BTreeMap<(KeyId, u16, u8), Option<u16>>>,
}

/// The spent-presignature log's file name in the data directory.
pub const SPENT_LOG: &str = ec::presign::SPENT_LOG;

/// The default presignature witness of a data directory: a file beside it (`<data_dir>.witness`), outside the
/// directory so that restoring the directory from a copy is noticed. See `crate::node::ec::presign` for where to put it.
pub fn default_witness(data_dir: &Path) -> PathBuf {
    // Through the absolute path, so that "data/" or "." still name a file beside the directory, not inside it.
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => {
            let mut file = name.to_owned();
            file.push(".witness");
            parent.join(file)
        }
        _ => dir.join(".presignature-witness"),
    }
}

impl std::fmt::Debug for SignerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerNode")
            .field("name", &self.identity.name)
            .field("keys", &self.key_count())
            .finish_non_exhaustive()
    }
}

impl SignerNode {
    /// A node with `identity`, persisting shares to `store` (none: memory only) and auditing to `audit`; its
    /// presignature witness is [`default_witness`] of the store's directory.
    pub fn new(
        identity: Arc<NodeIdentity>,
        store: Option<Arc<SecretStore>>,
        audit: Arc<dyn AuditSink>,
        replay: ReplayGuard,
    ) -> Self {
        let witness = store.as_ref().map(|s| default_witness(s.dir()));
        Self::with_witness(identity, store, audit, replay, witness.as_deref())
    }

    /// [`SignerNode::new`] with the presignature witness at `witness`. The stored presignatures are loaded here:
    /// those whose spent state is in doubt are discarded, damaged batches quarantined (see [`SignerNode::health`]);
    /// if the spent log cannot be started, every ECDSA signature is refused (a presignature is never used without
    /// a durable spent mark).
    pub fn with_witness(
        identity: Arc<NodeIdentity>,
        store: Option<Arc<SecretStore>>,
        audit: Arc<dyn AuditSink>,
        replay: ReplayGuard,
        witness: Option<&Path>,
    ) -> Self {
        let mut notices = Vec::new();
        let presignatures = match (&store, witness) {
            (Some(s), Some(w)) => {
                let (stock, report) =
                    ec::presign::Stock::open(s.clone(), w, crate::node::server::unix_ms_now());
                if let Some(why) = &report.discarded_all {
                    tracing::warn!(reason = %why, "every stored presignature discarded: their spent state is in doubt");
                    notices.push(format!("presignatures discarded: {why}"));
                }
                for q in &report.quarantined {
                    tracing::warn!(detail = %q, "damaged presignature batch quarantined");
                    notices.push(format!("presignature batch quarantined: {q}"));
                }
                if report.expired > 0 {
                    tracing::info!(
                        batches = report.expired,
                        "abandoned presignature batches discarded"
                    );
                }
                stock
            }
            _ => ec::presign::Stock::in_memory(),
        };
        let dkls_pairs = ec::dkls::Pairs::new(store.clone());
        for q in dkls_pairs.load() {
            tracing::warn!(detail = %q, "damaged DKLs pair state quarantined");
            notices.push(format!("DKLs pair state quarantined: {q}"));
        }
        Self {
            identity,
            keys: RwLock::new(BTreeMap::new()),
            replay: Mutex::new(replay),
            store,
            audit,
            peers: RwLock::new(Vec::new()),
            dkg_runs: Mutex::new(ec::Runs::new(ec::dkg::MAX_RUNS)),
            dkg_kept: ec::dkg::Keeping::default(),
            nonces: ec::frost::NoncePool::default(),
            presign_runs: Mutex::new(ec::Runs::new(ec::presign::MAX_RUNS)),
            presignatures,
            dkls_pairs,
            dkls_setups: Mutex::new(ec::Runs::new(ec::dkls::MAX_RUNS)),
            dkls_runs: Mutex::new(ec::Runs::new(ec::dkls::MAX_RUNS)),
            reshare_runs: Mutex::new(ec::Runs::new(crate::node::reshare::MAX_RUNS)),
            reshares: crate::node::reshare::Records::default(),
            reshare_claims: crate::node::reshare::Claims::default(),
            out_of_service: RwLock::new(BTreeMap::new()),
            notices: Mutex::new(notices),
            metrics: std::sync::OnceLock::new(),
            policy: RwLock::new(None),
            key_tags: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets (or, with `None`, removes) the signing policy; requests answered from now on follow it.
    pub fn set_policy(&self, policy: Option<Policy>) {
        if let Ok(mut p) = self.policy.write() {
            *p = policy.map(Arc::new);
        }
    }

    /// The signing policy in force, one line per entry (`None`: no policy, every request is signed).
    pub fn policy_summary(&self) -> Option<Vec<String>> {
        self.policy.read().ok()?.as_ref().map(|p| p.summary())
    }

    /// The policy's verdict on a signing request with `key` (`mechanism`: the audit name, `payload` the data or
    /// digest). `None`: no policy or not a signing request.
    fn policy_verdict(
        &self,
        body: &RequestBody,
        key: Option<KeyId>,
        mechanism: Option<&'static str>,
        payload: Option<&[u8]>,
        now_ms: u64,
    ) -> Option<crate::node::policy::Refused> {
        let signing = matches!(
            body,
            RequestBody::Sign { .. }
                | RequestBody::SignOptimistic { .. }
                | RequestBody::FrostSign { .. }
                | RequestBody::EcdsaSign { .. }
                | RequestBody::DklsSign { .. }
                | RequestBody::SignData { .. }
                | RequestBody::SignDataOptimistic { .. }
                | RequestBody::EcdsaSignData { .. }
                | RequestBody::DklsSignData { .. }
        );
        let policy = self.policy.read().ok()?.clone()?;
        let (true, Some(key), Some(mechanism)) = (signing, key, mechanism) else {
            return None;
        };
        // A reshare's test signature runs under the pending sharing's id: the key it stands for is judged.
        let key = self.reshares.name_of(&key).unwrap_or(key);
        // Both ECDSA paths sign the same digest; an Ed25519 key signs the data itself, so for a DNSSEC key the
        // message is the RRSIG data; a data-carrying request's data is judged as such.
        let dnssec = policy.for_key(&key).is_some_and(|p| p.dnssec.is_some());
        let data_request = match body {
            RequestBody::SignData { data, .. }
            | RequestBody::SignDataOptimistic { data, .. }
            | RequestBody::EcdsaSignData { data, .. }
            | RequestBody::DklsSignData { data, .. } => Some(data),
            _ => None,
        };
        // A DNSSEC key's data is RRSIG data however the host named the hash (a PKCS#11 host signs an RRSIG with
        // CKM_SHA256_RSA_PKCS): judged as such, and the hash must be the one the RRSIG's algorithm names.
        if let Some(d) = data_request.filter(|d| dnssec && d.mechanism != DataMechanism::DnssecRrsig) {
            let as_rrsig = SignData {
                mechanism: DataMechanism::DnssecRrsig,
                data: d.data.clone(),
            };
            if let (Ok(asked), Ok(named)) = (d.digest_form(), as_rrsig.digest_form())
                && asked != named
            {
                return Some(crate::node::policy::Refused {
                    rule: crate::node::policy::Rule::AlgorithmMismatch,
                    detail: format!(
                        "{} data whose RRSIG names another algorithm's hash or encoding",
                        d.mechanism.name()
                    ),
                });
            }
        }
        let (name, data) = match mechanism {
            "ecdsa-dkls" => ("ecdsa", None),
            "ed25519" if dnssec => ("dnssec-rrsig", payload),
            _ if dnssec && data_request.is_some() => ("dnssec-rrsig", payload),
            "dnssec-rrsig" => ("dnssec-rrsig", payload),
            m => (m, None),
        };
        let derive =
            |d: &crate::node::policy::DnssecPolicy| self.key_tag(&key, d.role.dnskey_flags(), d.algorithm);
        policy.check(&key, name, data, derive, now_ms / 1000).err()
    }

    /// The key tag of held key `key` as a DNSKEY with these flags and algorithm; a refusal when the key cannot be
    /// of that algorithm.
    fn key_tag(
        &self,
        key: &KeyId,
        flags: u16,
        algorithm: u8,
    ) -> Result<Option<u16>, crate::node::policy::Refused> {
        let cached = self
            .key_tags
            .lock()
            .ok()
            .and_then(|t| t.get(&(*key, flags, algorithm)).copied());
        let tag = match cached {
            Some(tag) => tag,
            None => {
                let public = self
                    .held(key)
                    .and_then(|h| crate::algo::PublicKey::from_info(&h.info).ok());
                let tag = public
                    .and_then(|p| crate::node::policy::dnskey_public_key(&p, algorithm).ok())
                    .map(|field| crate::node::policy::key_tag(flags, algorithm, &field));
                if let Ok(mut t) = self.key_tags.lock() {
                    t.insert((*key, flags, algorithm), tag);
                }
                tag
            }
        };
        match tag {
            Some(tag) => Ok(Some(tag)),
            None if self.held(key).is_some() => Err(crate::node::policy::Refused {
                rule: crate::node::policy::Rule::AlgorithmMismatch,
                detail: format!("key {key} cannot be DNSSEC algorithm {algorithm}"),
            }),
            // Not held here: the request is refused as for an unknown key.
            None => Ok(None),
        }
    }

    /// What is wrong with the node's stored state, one line each: keys out of service and why, quarantined files,
    /// discarded presignatures. Empty when all is well.
    pub fn health(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .out_of_service
            .read()
            .map(|m| {
                m.iter()
                    .map(|(k, why)| format!("key {k} out of service: {why}"))
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(n) = self.notices.lock() {
            out.extend(n.iter().cloned());
        }
        out
    }

    fn notice(&self, line: String) {
        if let Ok(mut n) = self.notices.lock() {
            n.push(line);
        }
    }

    /// DKLs23 pair states held (one per peer node set up).
    pub fn dkls_pair_count(&self) -> usize {
        self.dkls_pairs.len()
    }

    /// Unused presignatures of `key` held by this node.
    pub fn presignature_count(&self, key: &KeyId) -> usize {
        self.presignatures.count(key)
    }

    /// Pins the other nodes this node exchanges relayed messages with (DKG, presigning); from the
    /// configuration's `[[peers]]`.
    pub fn set_peers(&self, peers: Vec<NodePublic>) {
        if let Ok(mut p) = self.peers.write() {
            *p = peers;
        }
    }

    /// The node's public identity.
    pub fn public(&self) -> NodePublic {
        self.identity.public()
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// Loads every share from the store; returns how many are in service. A key file that is damaged (does not
    /// open under the store key, does not decode, does not match its public key or its name) is moved to
    /// `quarantine/` and takes only its key out of service; a key the store manifest lists without a file is out of
    /// service too. Each case is logged as an error naming the file, and listed by [`SignerNode::health`]. Only a
    /// store that cannot be listed at all is an error.
    pub fn load_keys(&self) -> Result<usize, NodeError> {
        let Some(store) = &self.store else { return Ok(0) };
        let mut loaded = BTreeMap::new();
        let mut broken = BTreeMap::new();
        let report = store.check_manifest(&mut rand::rng())?;
        if let Some(problem) = &report.problem {
            tracing::error!(%problem, "store manifest rebuilt from the files: deleted key files cannot be noticed this time");
            self.notice(format!("store manifest rebuilt: {problem}"));
        }
        for name in &report.adopted {
            tracing::info!(name, "sealed file not in the store manifest adopted");
        }
        for name in &report.missing {
            if name.starts_with(ec::dkls::PAIR_PREFIX) {
                // A lost pair state only costs a new pair setup (the coordinator runs it when next needed).
                tracing::warn!(name, "DKLs pair state missing; it is set up again when needed");
                self.notice(format!(
                    "DKLs pair state {} is missing; set up again when needed",
                    store.path_of(name).display()
                ));
                let _ = store.forget(name);
                continue;
            }
            let why = format!(
                "{} is missing (listed in the store manifest)",
                store.path_of(name).display()
            );
            tracing::error!(detail = %why, "key out of service");
            broken.insert(name.strip_prefix(KEY_PREFIX).unwrap_or(name).to_string(), why);
        }
        // A commit decided before a crash is finished first (the key file gets the new share); a retirement
        // recorded before a crash deletes the key file it did not reach.
        let reshares = self.reshares.load(store);
        for detail in &reshares.damaged {
            tracing::error!(%detail, "damaged reshare record quarantined");
            self.notice(format!("reshare record quarantined: {detail}"));
        }
        for (key, bundle) in reshares.finish {
            let mut rng = rand::rng();
            let done = store
                .put(&store_name(&key), &bundle.encode(), &mut rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))
                .and_then(|()| {
                    let (epoch, _) = self.reshares.active(&key);
                    self.reshares.installed(Some(store), key, epoch, &mut rng)
                });
            match done {
                Ok(()) => tracing::info!(%key, "reshare commit finished at start"),
                Err((_, why)) => tracing::error!(%key, %why, "reshare commit not finished"),
            }
        }
        for key in reshares.retired {
            if store.get(&store_name(&key)).ok().flatten().is_some() {
                let _ = store.delete(&store_name(&key));
                tracing::info!(%key, "retired share deleted at start");
            }
        }
        for name in store.list()? {
            if !name.starts_with(KEY_PREFIX) {
                continue;
            }
            let opened = open_key_file(store, &name);
            match opened {
                Ok(held) => {
                    loaded.insert(held.info.key, Arc::new(held));
                }
                Err(why) => {
                    let why = match store.quarantine(&name) {
                        Ok(to) => format!("{why}; moved to {}", to.display()),
                        Err(e) => format!("{why}; could not be moved aside: {e}"),
                    };
                    tracing::error!(detail = %why, "damaged key file: key out of service");
                    broken.insert(name.strip_prefix(KEY_PREFIX).unwrap_or(&name).to_string(), why);
                }
            }
        }
        let n = loaded.len();
        if let Ok(mut keys) = self.keys.write() {
            *keys = loaded;
        }
        if let Ok(mut oos) = self.out_of_service.write() {
            *oos = broken;
        }
        // Damage here loses only a key still being created or a delivery kept for an offline party: the node serves.
        match self.dkg_kept.load(store) {
            Ok(damaged) => {
                for detail in damaged {
                    tracing::error!(%detail, "damaged DKG state record quarantined");
                    self.notice(format!("DKG state record quarantined: {detail}"));
                }
            }
            Err(detail) => {
                tracing::error!(%detail, "DKG state not loaded");
                self.notice(format!("DKG state not loaded: {detail}"));
            }
        }
        Ok(n)
    }

    /// Keys out of service by damage (key id in hex, or the file's name) and why.
    pub fn out_of_service(&self) -> BTreeMap<String, String> {
        self.out_of_service.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Loads the shares that reached the store since the node started (`tcrypto-node import` writes them while the
    /// daemon runs and sends it SIGHUP). Returns the new key ids, and the files that did not load, each with why
    /// (the other new keys are still loaded). Keys already held are left as they are.
    pub fn load_new_keys(&self) -> Result<(Vec<KeyId>, Vec<String>), NodeError> {
        let Some(store) = &self.store else {
            return Ok((Vec::new(), Vec::new()));
        };
        let held: Vec<String> = self
            .keys
            .read()
            .map(|k| k.keys().map(store_name).collect())
            .unwrap_or_default();
        let mut added = Vec::new();
        let mut failures = Vec::new();
        for name in store.list()? {
            if !name.starts_with(KEY_PREFIX) || held.contains(&name) {
                continue;
            }
            let loaded = open_key_file(store, &name);
            match loaded {
                Ok(h) => {
                    let key = h.info.key;
                    if let Ok(mut keys) = self.keys.write() {
                        keys.entry(key).or_insert_with(|| Arc::new(h));
                    }
                    if let Ok(mut oos) = self.out_of_service.write() {
                        oos.remove(&key.to_string());
                    }
                    added.push(key);
                }
                Err(detail) => failures.push(format!("{name}: {detail}")),
            }
        }
        Ok((added, failures))
    }

    /// Number of keys held.
    pub fn key_count(&self) -> usize {
        self.keys.read().map(|k| k.len()).unwrap_or(0)
    }

    /// Public descriptions of the keys held.
    pub fn key_infos(&self) -> Vec<KeyInfo> {
        self.keys
            .read()
            .map(|k| k.values().map(|h| h.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Answers one request frame.
    pub fn handle_frame(
        &self,
        requester: Option<SpkiFingerprint>,
        now_ms: u64,
        frame: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        let response = match Request::decode(frame) {
            Ok(req) => self.handle(requester, now_ms, req, rng),
            Err(e) => {
                let (id, session) = Request::decode_header(frame).unwrap_or((0, SessionId([0; 32])));
                let rec = AuditRecord {
                    time_ms: now_ms,
                    requester,
                    request: id,
                    session,
                    operation: "malformed",
                    key: None,
                    mechanism: None,
                    payload: None,
                    outcome: Err(ErrorCode::Malformed),
                    rule: None,
                };
                let _ = self.audit.record(&rec);
                Response::error(
                    id,
                    session,
                    ErrorCode::Malformed,
                    format!("undecodable request: {e}"),
                )
            }
        };
        response.encode()
    }

    /// Counts requests in `metrics` from now on (once; later calls are ignored).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::NodeMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The metrics set with [`SignerNode::set_metrics`].
    pub fn metrics(&self) -> Option<&Arc<crate::metrics::NodeMetrics>> {
        self.metrics.get()
    }

    /// The node's stock and store, for [`crate::metrics::NodeMetrics::render`].
    pub fn stock(&self) -> crate::metrics::NodeStock {
        let keys: Vec<KeyId> = self
            .keys
            .read()
            .map(|k| k.keys().copied().collect())
            .unwrap_or_default();
        let mut stock = crate::metrics::NodeStock {
            keys: keys.len() as u64,
            ..Default::default()
        };
        for key in &keys {
            let p = self.presignatures.count(key);
            if p > 0 {
                stock.presignatures.push((key.to_string(), p as u64));
            }
            let n = self.nonces.count(key);
            if n > 0 {
                stock.nonces.push((key.to_string(), n as u64));
            }
        }
        if let Some(store) = &self.store {
            for name in store.list().unwrap_or_default() {
                stock.store_secrets += 1;
                stock.store_bytes += std::fs::metadata(store.path_of(&name)).map_or(0, |m| m.len());
            }
        }
        stock
    }

    /// Answers one decoded request.
    pub fn handle(
        &self,
        requester: Option<SpkiFingerprint>,
        now_ms: u64,
        req: Request,
        rng: &mut impl CryptoRng,
    ) -> Response {
        let started = std::time::Instant::now();
        // A FROST signing package is decoded once, here: its decoder checks every nonce commitment (a scalar
        // multiplication per point), and both the audit record (the message) and the signer need it. Our own
        // commitment in it was made here and is not checked again.
        let frost_package = match &req.body {
            RequestBody::FrostSign { key, package } => {
                use tcrypto::ed25519::SigningPackage;
                let own = SigningPackage::peek_session(package)
                    .ok()
                    .and_then(|session| self.nonces.commitment(key, &session));
                Some(SigningPackage::decode_with_own(package, own.as_ref()))
            }
            _ => None,
        };
        let (key, mechanism, payload) = match &req.body {
            RequestBody::Sign { key, mechanism } | RequestBody::SignOptimistic { key, mechanism } => (
                Some(*key),
                Some(mechanism.name()),
                Some(mechanism.payload().to_vec()),
            ),
            RequestBody::SignData { key, data }
            | RequestBody::SignDataOptimistic { key, data }
            | RequestBody::EcdsaSignData { key, data, .. }
            | RequestBody::DklsSignData { key, data, .. } => {
                (Some(*key), Some(data.mechanism.name()), Some(data.data.clone()))
            }
            RequestBody::DeleteKey { key }
            | RequestBody::ReshareRound { key, .. }
            | RequestBody::ReshareStatus { key }
            | RequestBody::ReshareCommit { key, .. }
            | RequestBody::ReshareAbort { key, .. }
            | RequestBody::ReshareRetire { key, .. }
            | RequestBody::FrostCommit { key, .. }
            | RequestBody::PresignStart { key, .. }
            | RequestBody::PresignRound { key, .. }
            | RequestBody::DklsRound { key, .. }
            | RequestBody::DkgDeliver { key, .. }
            | RequestBody::DkgCommit { key }
            | RequestBody::DkgAbandon { key }
            | RequestBody::DkgCommitServed { key }
            | RequestBody::DkgDelivered { key, .. } => (Some(*key), None, None),
            RequestBody::FrostSign { key, .. } => (
                Some(*key),
                Some("ed25519"),
                frost_package
                    .as_ref()
                    .and_then(|p| p.as_ref().ok())
                    .map(|p| p.message.clone()),
            ),
            RequestBody::EcdsaSign { key, digest, .. } => (Some(*key), Some("ecdsa"), Some(digest.clone())),
            RequestBody::DklsSign { key, digest, .. } => {
                (Some(*key), Some("ecdsa-dkls"), Some(digest.clone()))
            }
            RequestBody::ReshareStart(setup) => (Some(setup.key), None, None),
            RequestBody::ImportShare { bundle } => (
                SealedBundle::decode(bundle)
                    .ok()
                    .and_then(|s| s.open(&self.identity).ok())
                    .map(|b| b.info.key),
                None,
                None,
            ),
            _ => (None, None, None),
        };
        let verdict = self.policy_verdict(&req.body, key, mechanism, payload.as_deref(), now_ms);
        let rule = verdict.as_ref().map(|r| r.rule.name());
        let mut body = match verdict {
            Some(refused) => {
                tracing::warn!(key = ?key, %refused, "request refused by the signing policy");
                ResponseBody::Error {
                    code: ErrorCode::PolicyRefused,
                    detail: refused.to_string(),
                }
            }
            None => match self.reshare_claimed(requester, now_ms, &req.body) {
                Some(claim) => ResponseBody::ResharePending(claim),
                None => self.answer(now_ms, &req, frost_package, rng),
            },
        };
        let outcome = match &body {
            ResponseBody::Error { code, .. } => Err(*code),
            ResponseBody::ResharePending(_) => Err(ErrorCode::Busy),
            _ => Ok(()),
        };
        // A key created here is audited with its id, durably, before the coordinator hears of it.
        let (key, creates) = match &body {
            ResponseBody::KeyCreated(info) | ResponseBody::KeyResolved { info, .. } => (Some(info.key), true),
            ResponseBody::Done if matches!(req.body, RequestBody::ImportShare { .. }) => (key, true),
            _ => (key, false),
        };
        let rec = AuditRecord {
            time_ms: now_ms,
            requester,
            request: req.id,
            session: req.session,
            operation: req.body.name(),
            key,
            mechanism,
            payload,
            outcome,
            rule,
        };
        let audited = self
            .audit
            .record(&rec)
            .and_then(|()| if creates { self.audit.sync() } else { Ok(()) });
        if let Err(e) = audited {
            tracing::error!(error = %e, "audit log write failed; refusing to answer");
            body = ResponseBody::Error {
                code: ErrorCode::Internal,
                detail: "audit log unavailable".into(),
            };
        }
        if let Some(m) = self.metrics.get() {
            let outcome = match &body {
                ResponseBody::Error { code, .. } => format!("{code:?}"),
                _ => "ok".to_string(),
            };
            m.request(
                req.body.name(),
                key.map(|k| k.to_string()),
                mechanism,
                &outcome,
                started.elapsed(),
            );
        }
        Response {
            id: req.id,
            session: req.session,
            body,
        }
    }

    fn answer(
        &self,
        now_ms: u64,
        req: &Request,
        frost_package: Option<Result<tcrypto::ed25519::SigningPackage, tcrypto::codec::DecodeError>>,
        rng: &mut impl CryptoRng,
    ) -> ResponseBody {
        let checked = match self.replay.lock() {
            Ok(mut g) => g.check(req.session, req.issued_at_ms, now_ms),
            Err(_) => Err(ReplayError::Full),
        };
        if let Err(e) = checked {
            let code = match e {
                ReplayError::Replayed => ErrorCode::Replayed,
                ReplayError::Stale { .. } => ErrorCode::Stale,
                _ => ErrorCode::Busy,
            };
            return refuse((code, e.to_string()));
        }
        match &req.body {
            RequestBody::Ping => ResponseBody::Pong {
                node: self.identity.name.clone(),
                time_ms: now_ms,
                keys: u32::try_from(self.key_count()).unwrap_or(u32::MAX),
            },
            RequestBody::ListKeys => ResponseBody::Keys(self.key_infos()),
            RequestBody::Sign { key, mechanism } | RequestBody::SignOptimistic { key, mechanism } => {
                let proven = matches!(req.body, RequestBody::Sign { .. });
                self.sign_share(req, key, mechanism, proven, rng)
            }
            RequestBody::SignData { key, data } | RequestBody::SignDataOptimistic { key, data } => {
                // The node hashes the data itself; the digest form is what the share signs.
                match data.digest_form() {
                    Ok(mechanism) => {
                        let proven = matches!(req.body, RequestBody::SignData { .. });
                        self.sign_share(req, key, &mechanism, proven, rng)
                    }
                    Err(e) => refuse((ErrorCode::BadEncoding, e)),
                }
            }
            RequestBody::ImportShare { bundle } => match self.import(bundle, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::DeleteKey { key } => match self.delete(key) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::DkgStart(setup) => {
                let run = setup.run;
                let started = self
                    .roster(&setup.parties, setup.me)
                    .and_then(|roster| ec::dkg::start(setup.clone(), roster, &self.identity, rng));
                match started {
                    Ok((state, out)) => {
                        if let Ok(mut runs) = self.dkg_runs.lock() {
                            runs.insert(run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::DkgRound { run, round, inbox } => {
                let state = self.dkg_runs.lock().ok().and_then(|mut r| r.take(run));
                let Some(state) = state else {
                    return refuse((ErrorCode::UnknownKey, format!("no DKG run {run} in progress")));
                };
                match state.advance(*round, inbox, &self.identity, rng) {
                    Ok(ec::dkg::Step::Continue(state, out)) => {
                        if let Ok(mut runs) = self.dkg_runs.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Ok(ec::dkg::Step::Created(bundle, kept)) => {
                        match self.hold_tentative(bundle, kept, now_ms, rng) {
                            Ok(info) => ResponseBody::KeyCreated(info),
                            Err(r) => refuse(r),
                        }
                    }
                    Ok(ec::dkg::Step::Resolved(bundle, culprits, disqualified, kept)) => {
                        match self.hold_tentative(bundle, kept, now_ms, rng) {
                            Ok(info) => ResponseBody::KeyResolved {
                                info,
                                culprits,
                                disqualified,
                            },
                            Err(r) => refuse(r),
                        }
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::DkgDeliver { setup, key, inbox } => {
                let made = self
                    .roster(&setup.parties, setup.me)
                    .and_then(|roster| ec::dkg::deliver(setup, &roster, *key, inbox, &self.identity));
                match made {
                    Ok(bundle) => match self.store_new_key(bundle, rng) {
                        Ok(info) => ResponseBody::KeyCreated(info),
                        Err(r) => refuse(r),
                    },
                    Err(f) => failed(f),
                }
            }
            RequestBody::DkgCommit { key } => match self.commit_created(key, false, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::DkgCommitServed { key } => match self.commit_created(key, true, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::DkgAbandon { key } => match self.abandon_created(key, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::DkgPending => {
                let held = self
                    .keys
                    .read()
                    .map(|k| k.keys().copied().collect())
                    .unwrap_or_default();
                self.dkg_kept.report(held, now_ms)
            }
            RequestBody::DkgDelivered { key, party } => {
                match self.dkg_kept.delivered(self.store.as_deref(), key, *party, rng) {
                    Ok(()) => ResponseBody::Done,
                    Err(r) => refuse(r),
                }
            }
            RequestBody::FrostCommit { key, sessions } => {
                let held = self.held(key);
                match held.as_ref().and_then(|h| h.share.as_ed25519()) {
                    Some(share) => match self.nonces.commit(*key, share, sessions, rng) {
                        Ok(c) => ResponseBody::Commitments(c),
                        Err(r) => refuse(r),
                    },
                    None => refuse(self.not_of(key, "Ed25519")),
                }
            }
            RequestBody::FrostSign { key, .. } => {
                let held = self.held(key);
                let Some((held, share)) = held.as_ref().and_then(|h| Some((h, h.share.as_ed25519()?))) else {
                    return refuse(self.not_of(key, "Ed25519"));
                };
                let package = match frost_package {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return refuse((ErrorCode::BadEncoding, e.to_string())),
                    None => return refuse((ErrorCode::Internal, "signing package not decoded".into())),
                };
                match self.nonces.sign(*key, share, &package) {
                    Ok(s) => ResponseBody::Share {
                        signer: held.info.signer,
                        share: s,
                    },
                    Err(r) => refuse(r),
                }
            }
            RequestBody::PresignStart {
                key,
                run,
                parties,
                batch,
            } => {
                let held = self.held(key);
                let Some(share) = held.as_ref().and_then(|h| h.share.as_ecdsa()) else {
                    return refuse(self.not_of(key, "ECDSA"));
                };
                let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
                let started =
                    Roster::resolve_pairs(parties, share.id(), &self.identity, &peers).and_then(|roster| {
                        ec::presign::start(*key, share, roster, *run, *batch, &self.identity, rng)
                    });
                match started {
                    Ok((state, out)) => {
                        if let Ok(mut runs) = self.presign_runs.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::PresignRound {
                key,
                run,
                round,
                inbox,
            } => {
                let state = self.presign_runs.lock().ok().and_then(|mut r| r.take(run));
                let Some(state) = state.filter(|s| s.key() == *key) else {
                    return refuse((
                        ErrorCode::UnknownKey,
                        format!("no presigning run {run} of key {key}"),
                    ));
                };
                match state.advance(*run, *round, inbox, &self.identity, rng) {
                    Ok(ec::presign::Step::Envelopes(state, out)) => {
                        if let Ok(mut runs) = self.presign_runs.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Ok(ec::presign::Step::Checked(state, publics)) => {
                        if let Ok(mut runs) = self.presign_runs.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Presigned(publics)
                    }
                    Ok(ec::presign::Step::Commit(key, batch)) => {
                        match self
                            .presignatures
                            .commit(self.store.as_deref(), key, *run, batch, now_ms, rng)
                        {
                            Ok(_) => ResponseBody::Done,
                            Err(r) => refuse(r),
                        }
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::EcdsaSignData {
                key,
                run,
                index,
                data,
            } => match ecdsa_digest(data) {
                Ok(digest) => self.ecdsa_sign_share(key, *run, *index, req.session, &digest),
                Err(r) => refuse(r),
            },
            RequestBody::EcdsaSign {
                key,
                run,
                index,
                digest,
            } => self.ecdsa_sign_share(key, *run, *index, req.session, digest),
            RequestBody::DklsSignData {
                key,
                run,
                signers,
                data,
            } => match ecdsa_digest(data) {
                Ok(digest) => self.dkls_sign_start(key, *run, signers, &digest, now_ms, rng),
                Err(r) => refuse(r),
            },
            RequestBody::DklsSign {
                key,
                run,
                signers,
                digest,
            } => self.dkls_sign_start(key, *run, signers, digest, now_ms, rng),
            RequestBody::DklsPairStart {
                run,
                me,
                peer,
                peer_key,
            } => {
                let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
                match ec::dkls::setup_start(*run, *me, *peer, *peer_key, &self.identity, &peers, now_ms, rng)
                {
                    Ok((state, out)) => {
                        if let Ok(mut runs) = self.dkls_setups.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::DklsPairRound { run, round, inbox } => {
                let state = self.dkls_setups.lock().ok().and_then(|mut r| r.take(run));
                let Some(state) = state.filter(|s| !s.expired(now_ms)) else {
                    return refuse((ErrorCode::UnknownKey, format!("no pair setup {run}")));
                };
                match state.advance(*run, *round, inbox, &self.identity, &self.dkls_pairs, rng) {
                    Ok(ec::dkls::SetupOut::Envelopes(state, out)) => {
                        if let Ok(mut runs) = self.dkls_setups.lock() {
                            runs.insert(*run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Ok(ec::dkls::SetupOut::Stored) => ResponseBody::Done,
                    Err(f) => failed(f),
                }
            }
            RequestBody::DklsRound {
                key,
                run,
                round,
                inbox,
            } => {
                let state = self.dkls_runs.lock().ok().and_then(|mut r| r.take(run));
                let Some(state) = state.filter(|s| s.key() == *key && !s.expired(now_ms)) else {
                    return refuse((
                        ErrorCode::UnknownKey,
                        format!("no DKLs signature {run} of key {key}"),
                    ));
                };
                let signer = self.held(key).map(|h| h.info.signer);
                let advanced = state.advance(*run, *round, inbox, &self.identity, &self.dkls_pairs, rng);
                match (advanced, signer) {
                    (Ok(ec::dkls::SignOut::Partial(share)), Some(signer)) => {
                        ResponseBody::Share { signer, share }
                    }
                    (Ok(ec::dkls::SignOut::Partial(_)), None) => refuse(self.not_of(key, "ECDSA")),
                    (other, _) => self.dkls_answer(*run, other),
                }
            }
            RequestBody::ReshareStart(setup) => {
                let held = self.keys.read().ok().and_then(|k| k.get(&setup.key).cloned());
                let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
                let started = crate::node::reshare::start(
                    setup.clone(),
                    held.as_deref().map(|h| (&h.info, &h.share)),
                    &self.identity,
                    &peers,
                    rng,
                );
                match started {
                    Ok((state, out)) => {
                        if let Ok(mut runs) = self.reshare_runs.lock() {
                            runs.insert(setup.run, state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::ReshareRound {
                key,
                run,
                round,
                inbox,
            } => {
                let state = self.reshare_runs.lock().ok().and_then(|mut r| r.take(run));
                let Some(state) = state.filter(|s| s.key() == *key) else {
                    return refuse((
                        ErrorCode::UnknownKey,
                        format!("no reshare run {run} of key {key}"),
                    ));
                };
                match state.advance(*round, inbox, &self.identity, rng) {
                    Ok(crate::node::reshare::Step::Continue(state, out)) => {
                        if let Ok(mut runs) = self.reshare_runs.lock() {
                            runs.insert(*run, *state);
                        }
                        ResponseBody::Envelopes(out)
                    }
                    Ok(crate::node::reshare::Step::Done) => ResponseBody::Done,
                    Ok(crate::node::reshare::Step::Pending(key, epoch, bundle, culprits, disqualified)) => {
                        match self.hold_pending(key, epoch, bundle, rng) {
                            Ok(info) if culprits.is_empty() && disqualified.is_empty() => {
                                ResponseBody::KeyCreated(info)
                            }
                            // The run named parties (dealers left out, false accusers) and completed without
                            // them: the coordinator reports them.
                            Ok(info) => ResponseBody::KeyResolved {
                                info,
                                culprits,
                                disqualified,
                            },
                            Err(r) => refuse(r),
                        }
                    }
                    Err(f) => failed(f),
                }
            }
            RequestBody::ReshareStatus { key } => {
                let served = self
                    .keys
                    .read()
                    .ok()
                    .and_then(|k| k.get(key).map(|h| h.info.clone()));
                ResponseBody::ReshareStatus(self.reshares.state(key, served))
            }
            RequestBody::ReshareCommit { key, epoch } => match self.reshare_commit(*key, *epoch, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
            RequestBody::ReshareAbort { key, epoch } => {
                match self.reshares.abort(self.store.as_deref(), *key, *epoch, rng) {
                    Ok(()) => {
                        self.forget_one_time(&crate::node::reshare::pending_id(key, *epoch));
                        ResponseBody::Done
                    }
                    Err(r) => refuse(r),
                }
            }
            RequestBody::ReshareRetire { key, epoch } => match self.reshare_retire(*key, *epoch, rng) {
                Ok(()) => ResponseBody::Done,
                Err(r) => refuse(r),
            },
        }
    }

    /// The claim that refuses a reshare step of `body` (another run's start, another coordinator's abort of the
    /// claimed epoch), if any; a step of the claiming run keeps its claim alive (`crate::node::reshare::Claims`).
    fn reshare_claimed(
        &self,
        requester: Option<SpkiFingerprint>,
        now_ms: u64,
        body: &RequestBody,
    ) -> Option<crate::transport::wire::ReshareClaim> {
        let coordinator = requester.map(|r| r.0);
        match body {
            RequestBody::ReshareStart(setup) => self.reshare_claims.claim(setup, coordinator, now_ms).err(),
            RequestBody::ReshareRound { key, run, .. } => {
                self.reshare_claims.touch(key, run, now_ms);
                None
            }
            RequestBody::ReshareAbort { key, epoch } => {
                self.reshare_claims.abort(key, *epoch, coordinator, now_ms).err()
            }
            _ => None,
        }
    }

    /// Sets how long a reshare's claim on a key outlives the run's last step here (default 2 minutes).
    pub fn set_reshare_claim_ttl(&self, ttl: std::time::Duration) {
        self.reshare_claims.set_ttl(ttl);
    }

    /// Stores a reshare's new share as pending (served only under its pending id, for the test signature).
    /// A Shoup signature share of `mechanism` (the digest form) with the node's share of RSA key `key`.
    fn sign_share(
        &self,
        req: &Request,
        key: &KeyId,
        mechanism: &Mechanism,
        proven: bool,
        rng: &mut impl CryptoRng,
    ) -> ResponseBody {
        let Some(held) = self.held(key) else {
            return refuse(self.unknown(key));
        };
        if mechanism.algorithm() != held.info.algorithm {
            return refuse((
                ErrorCode::BadEncoding,
                format!(
                    "mechanism {} does not apply to a {} key",
                    mechanism.name(),
                    held.info.algorithm.name()
                ),
            ));
        }
        match held.share.sign(&req.session, mechanism, proven, rng) {
            Ok(share) => ResponseBody::Share {
                signer: held.info.signer,
                share,
            },
            Err(r) => refuse(r),
        }
    }

    /// An ECDSA signature share of `digest` with presignature `index` of batch `run` of key `key`.
    fn ecdsa_sign_share(
        &self,
        key: &KeyId,
        run: SessionId,
        index: u32,
        session: SessionId,
        digest: &[u8],
    ) -> ResponseBody {
        let held = self.held(key);
        let Some((held, share)) = held.as_ref().and_then(|h| Some((h, h.share.as_ecdsa()?))) else {
            return refuse(self.not_of(key, "ECDSA"));
        };
        let id = tcrypto::ecdsa::PresignatureId { session: run, index };
        match self
            .presignatures
            .sign(self.store.as_deref(), *key, share, id, session, digest)
        {
            Ok(s) => ResponseBody::Share {
                signer: held.info.signer,
                share: s,
            },
            Err(r) => refuse(r),
        }
    }

    /// DKLs23 signing round 1 of `digest` with key `key` in the signing set `signers`.
    fn dkls_sign_start(
        &self,
        key: &KeyId,
        run: SessionId,
        signers: &[(tcrypto::SignerId, [u8; 32])],
        digest: &[u8],
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> ResponseBody {
        let held = self.held(key);
        let Some(share) = held.as_ref().and_then(|h| h.share.as_ecdsa()) else {
            return refuse(self.not_of(key, "ECDSA"));
        };
        let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
        let started = ec::dkls::sign_start(
            *key,
            share,
            signers,
            digest,
            run,
            &self.identity,
            &peers,
            &self.dkls_pairs,
            now_ms,
            rng,
        );
        self.dkls_answer(run, started)
    }

    fn hold_pending(
        &self,
        key: KeyId,
        epoch: u64,
        bundle: ShareBundle,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyInfo, Refusal> {
        HeldShare::from_bundle(&bundle)?;
        let info = bundle.info.clone();
        self.reshares
            .hold_pending(self.store.as_deref(), key, epoch, bundle, rng)?;
        crate::crash::point("node-pending-stored");
        Ok(info)
    }

    /// Phase 2 of a reshare at this node: records the decision, installs the new share, drops the old one's
    /// one-time material (presignatures, nonces), then the pending copy.
    fn reshare_commit(&self, key: KeyId, epoch: u64, rng: &mut impl CryptoRng) -> Result<(), Refusal> {
        let Some(bundle) = self.reshares.decide(self.store.as_deref(), key, epoch, rng)? else {
            self.reshare_claims.end(&key, epoch);
            return Ok(());
        };
        self.reshare_claims.end(&key, epoch);
        crate::crash::point("node-commit-decided");
        let share = HeldShare::from_bundle(&bundle)?;
        if let Some(store) = &self.store {
            store
                .put(&store_name(&key), &bundle.encode(), rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(
                key,
                Arc::new(Held {
                    info: bundle.info,
                    share,
                }),
            );
        }
        self.forget_one_time(&key);
        self.forget_one_time(&crate::node::reshare::pending_id(&key, epoch));
        crate::crash::point("node-commit-installed");
        self.reshares.installed(self.store.as_deref(), key, epoch, rng)
    }

    /// A committed reshare left this node out: its share of `key` goes, with its one-time material.
    fn reshare_retire(&self, key: KeyId, epoch: u64, rng: &mut impl CryptoRng) -> Result<(), Refusal> {
        self.reshares.retire(self.store.as_deref(), key, epoch, rng)?;
        self.reshare_claims.end(&key, epoch);
        crate::crash::point("node-retire-recorded");
        if let Some(store) = &self.store
            && store.get(&store_name(&key)).ok().flatten().is_some()
        {
            store
                .delete(&store_name(&key))
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(&key);
        }
        self.forget_one_time(&key);
        Ok(())
    }

    /// Presignatures (in memory and on disk) and FROST nonces of `key` become unusable.
    fn forget_one_time(&self, key: &KeyId) {
        self.nonces.forget(key);
        self.presignatures
            .discard_key(self.store.as_deref(), key, &mut rand::rng());
    }

    /// The answer to a DKLs23 signing step; a run that continues is kept (in memory only).
    fn dkls_answer(&self, run: SessionId, out: Result<ec::dkls::SignOut, Failure>) -> ResponseBody {
        match out {
            Ok(ec::dkls::SignOut::Envelopes(state, out)) => {
                if let Ok(mut runs) = self.dkls_runs.lock() {
                    runs.insert(run, state);
                }
                ResponseBody::Envelopes(out)
            }
            Ok(ec::dkls::SignOut::PairsMissing(ids)) => ResponseBody::PairsMissing(ids),
            Ok(ec::dkls::SignOut::Partial(_)) => {
                refuse((ErrorCode::Internal, "partial signature out of turn".into()))
            }
            Err(f) => failed(f),
        }
    }

    /// The served share of `key`, or the pending share whose pending id is `key` (the reshare's test signature).
    fn held(&self, key: &KeyId) -> Option<Arc<Held>> {
        if let Some(h) = self.keys.read().ok().and_then(|k| k.get(key).cloned()) {
            return Some(h);
        }
        let Some(bundle) = self.reshares.pending_by_id(key) else {
            let served = self.reshares.committed_alias(key)?;
            return self.keys.read().ok().and_then(|k| k.get(&served).cloned());
        };
        let share = HeldShare::from_bundle(&bundle).ok()?;
        let mut info = bundle.info;
        info.key = *key;
        Some(Arc::new(Held { info, share }))
    }

    /// The refusal for a key without a share of `algorithm` here: out of service (naming the damage) or unknown.
    fn not_of(&self, key: &KeyId, algorithm: &str) -> Refusal {
        match self.unknown(key) {
            (ErrorCode::UnknownKey, _) => (
                ErrorCode::UnknownKey,
                format!("no {algorithm} share of key {key}"),
            ),
            out_of_service => out_of_service,
        }
    }

    /// The refusal for a key not held: out of service (naming the damage) or unknown.
    fn unknown(&self, key: &KeyId) -> Refusal {
        match self
            .out_of_service
            .read()
            .ok()
            .and_then(|m| m.get(&key.to_string()).cloned())
        {
            Some(why) => (ErrorCode::Storage, format!("key {key} is out of service: {why}")),
            None => (ErrorCode::UnknownKey, format!("no share of key {key}")),
        }
    }

    fn roster(&self, parties: &[[u8; 32]], me: tcrypto::SignerId) -> Result<Roster, Failure> {
        let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
        Roster::resolve(parties, me, &self.identity, &peers)
    }

    /// Validates a share, stores it encrypted (crash-safe) and adds it to the key table.
    fn store_new_key(&self, bundle: ShareBundle, rng: &mut impl CryptoRng) -> Result<KeyInfo, Refusal> {
        let share = HeldShare::from_bundle(&bundle)?;
        let key = bundle.info.key;
        let mut keys = self
            .keys
            .write()
            .map_err(|_| (ErrorCode::Internal, "key table lock poisoned".to_string()))?;
        if keys.contains_key(&key) {
            return Err((
                ErrorCode::KeyExists,
                format!("a share of key {key} is already held"),
            ));
        }
        if let Some(store) = &self.store {
            store
                .put(&store_name(&key), &bundle.encode(), rng)
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
        }
        let info = bundle.info.clone();
        keys.insert(
            key,
            Arc::new(Held {
                info: bundle.info,
                share,
            }),
        );
        // A key out of service is repaired by importing (or delivering) its share again.
        if let Ok(mut oos) = self.out_of_service.write() {
            oos.remove(&key.to_string());
        }
        Ok(info)
    }

    /// Stores a DKG's share tentatively (not served until [`RequestBody::DkgCommit`]) with what this dealer keeps
    /// for the offline parties.
    fn hold_tentative(
        &self,
        bundle: ShareBundle,
        kept: Option<crate::transport::wire::KeptDelivery>,
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyInfo, Refusal> {
        HeldShare::from_bundle(&bundle)?;
        let info = bundle.info.clone();
        if self.dkg_kept.is_abandoned(&info.key) {
            return Err((
                ErrorCode::UnknownKey,
                format!(
                    "the creation of key {} was given up by a settling coordinator",
                    info.key
                ),
            ));
        }
        if self.held(&info.key).is_some() {
            return Err((
                ErrorCode::KeyExists,
                format!("a share of key {} is already held", info.key),
            ));
        }
        self.dkg_kept
            .hold(self.store.as_deref(), bundle, kept, now_ms, rng)?;
        Ok(info)
    }

    /// Makes the tentative share of `key` a served key (idempotent). The creating coordinator's commit
    /// (`served == false`) is refused once a settling coordinator gave the creation up here; a commit because
    /// another node serves the key (`served`) clears that record.
    fn commit_created(&self, key: &KeyId, served: bool, rng: &mut impl CryptoRng) -> Result<(), Refusal> {
        let mut abandoned = self.dkg_kept.lock_abandoned()?;
        if self.held(key).is_some() {
            drop(abandoned);
            return self.dkg_kept.committed(self.store.as_deref(), key, rng);
        }
        if served {
            ec::dkg::Keeping::unabandon(self.store.as_deref(), &mut abandoned, key)?;
        } else if abandoned.contains(key) {
            return Err((
                ErrorCode::UnknownKey,
                format!("the creation of key {key} was given up by a settling coordinator; not committed"),
            ));
        }
        let bundle = self.dkg_kept.tentative(key).ok_or_else(|| {
            (
                ErrorCode::UnknownKey,
                format!("no tentative share of key {key} (rolled back?)"),
            )
        })?;
        self.store_new_key(bundle, rng)?;
        drop(abandoned);
        self.dkg_kept.committed(self.store.as_deref(), key, rng)
    }

    /// Gives the creation of `key` up here (a settling coordinator's [`RequestBody::DkgAbandon`]): refused when
    /// the key is served here already; otherwise recorded before the answer, whether or not a tentative share
    /// exists, so the creating coordinator's commit can no longer make it served.
    fn abandon_created(&self, key: &KeyId, rng: &mut impl CryptoRng) -> Result<(), Refusal> {
        // Under the lock a commit of this key holds from its check to the key being served.
        let mut abandoned = self.dkg_kept.lock_abandoned()?;
        if self.held(key).is_some() {
            return Err((
                ErrorCode::KeyExists,
                format!("key {key} is served here (committed)"),
            ));
        }
        ec::dkg::Keeping::abandon(self.store.as_deref(), &mut abandoned, key, rng)
    }

    /// Checks that an opened bundle holds a share this node can use (it matches its public key).
    pub fn check_bundle(&self, bundle: &ShareBundle) -> Result<(), String> {
        HeldShare::from_bundle(bundle).map(|_| ()).map_err(|(_, d)| d)
    }

    fn import(&self, bundle: &[u8], rng: &mut impl CryptoRng) -> Result<(), Refusal> {
        let sealed = SealedBundle::decode(bundle).map_err(|e| (ErrorCode::BadBundle, e.to_string()))?;
        let opened = sealed
            .open(&self.identity)
            .map_err(|e| (ErrorCode::BadBundle, e.to_string()))?;
        self.store_new_key(opened, rng).map(|_| ())
    }

    fn delete(&self, key: &KeyId) -> Result<(), Refusal> {
        let tentative = self.dkg_kept.forget(self.store.as_deref(), key)?;
        let mut keys = self
            .keys
            .write()
            .map_err(|_| (ErrorCode::Internal, "key table lock poisoned".to_string()))?;
        if !keys.contains_key(key) {
            if tentative {
                return Ok(());
            }
            // A key out of service is deleted by forgetting it (its damaged file stays in quarantine).
            let removed = self
                .out_of_service
                .write()
                .ok()
                .and_then(|mut m| m.remove(&key.to_string()));
            return match (removed, &self.store) {
                (Some(_), Some(store)) => store
                    .forget(&store_name(key))
                    .map_err(|e| (ErrorCode::Storage, e.to_string())),
                _ => Err((ErrorCode::UnknownKey, format!("no share of key {key}"))),
            };
        }
        if let Some(store) = &self.store {
            store
                .delete(&store_name(key))
                .map_err(|e| (ErrorCode::Storage, e.to_string()))?;
        }
        keys.remove(key);
        self.nonces.forget(key);
        self.presignatures.forget(key);
        self.reshares.forget(self.store.as_deref(), key);
        Ok(())
    }
}

/// The ECDSA digest of a data-carrying request: the data hashed by the node (a refusal when the mechanism is not
/// an ECDSA one or the data does not parse).
fn ecdsa_digest(data: &crate::transport::wire::SignData) -> Result<Vec<u8>, Refusal> {
    match data.digest_form() {
        Ok(Mechanism::Ecdsa { digest }) => Ok(digest),
        Ok(other) => Err((
            ErrorCode::BadEncoding,
            format!("{} data is not signed with an ECDSA key", other.name()),
        )),
        Err(e) => Err((ErrorCode::BadEncoding, e)),
    }
}

fn refuse((code, detail): Refusal) -> ResponseBody {
    ResponseBody::Error { code, detail }
}

fn failed(f: Failure) -> ResponseBody {
    match f {
        Failure::Refused(code, detail) => ResponseBody::Error { code, detail },
        Failure::Aborted(culprits, detail) => ResponseBody::Aborted { culprits, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::audit::MemoryAudit;
    use crate::transport::frame::{FrameDecoder, MAX_FRAME_LEN};
    use tcrypto::HashAlg;

    const NOW: u64 = 1_800_000_000_000;

    fn node() -> (SignerNode, Arc<MemoryAudit>) {
        let id = Arc::new(NodeIdentity::generate("n1", &mut rand::rng()).unwrap());
        let audit = Arc::new(MemoryAudit::default());
        (
            SignerNode::new(id, None, audit.clone(), ReplayGuard::default()),
            audit,
        )
    }

    fn req(id: u64, body: RequestBody) -> Request {
        Request {
            id,
            session: SessionId::random(&mut rand::rng()),
            issued_at_ms: NOW,
            body,
        }
    }

    fn ask(n: &SignerNode, r: &Request) -> Response {
        Response::decode(&n.handle_frame(None, NOW, &r.encode(), &mut rand::rng())).unwrap()
    }

    fn error_code(r: &Response) -> Option<ErrorCode> {
        match r.body {
            ResponseBody::Error { code, .. } => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_replayed_request_is_refused() {
        let (n, _) = node();
        let r = req(1, RequestBody::Ping);
        assert!(matches!(ask(&n, &r).body, ResponseBody::Pong { .. }));
        let again = ask(&n, &r);
        assert_eq!(again.id, 1);
        assert_eq!(error_code(&again), Some(ErrorCode::Replayed));
    }

    #[test]
    fn the_audit_record_names_the_requester_from_the_channel() {
        let (n, audit) = node();
        let fp = SpkiFingerprint([7; 32]);
        let r = req(3, RequestBody::ListKeys);
        n.handle_frame(Some(fp), NOW, &r.encode(), &mut rand::rng());
        let recs = audit.records();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].requester, Some(fp));
        assert_eq!(recs[0].session, r.session);
        assert_eq!(recs[0].operation, "list-keys");
    }

    #[test]
    fn a_stale_request_is_refused() {
        let (n, _) = node();
        let mut r = req(1, RequestBody::Ping);
        r.issued_at_ms = NOW - 60_000;
        assert_eq!(error_code(&ask(&n, &r)), Some(ErrorCode::Stale));
    }

    #[test]
    fn unknown_key_gets_a_typed_error_and_the_node_keeps_serving() {
        let (n, audit) = node();
        let r = req(
            5,
            RequestBody::Sign {
                key: KeyId([9; 32]),
                mechanism: Mechanism::RsaPkcs1v15 {
                    hash: HashAlg::Sha256,
                    digest: vec![0; 32],
                },
            },
        );
        let resp = ask(&n, &r);
        assert_eq!(resp.id, 5);
        assert_eq!(error_code(&resp), Some(ErrorCode::UnknownKey));
        assert!(matches!(
            ask(&n, &req(6, RequestBody::Ping)).body,
            ResponseBody::Pong { .. }
        ));
        let recs = audit.records();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].operation, "sign");
        assert_eq!(recs[0].key, Some(KeyId([9; 32])));
        assert_eq!(recs[0].mechanism, Some("rsa-pkcs1v15"));
        assert_eq!(recs[0].outcome, Err(ErrorCode::UnknownKey));
    }

    #[test]
    fn dkls_requests_out_of_place_get_typed_errors_and_are_audited() {
        let (n, audit) = node();
        let one = tcrypto::SignerId::new(1).unwrap();
        let two = tcrypto::SignerId::new(2).unwrap();
        let run = SessionId([3; 32]);
        // A pair setup with a node that is not a pinned peer.
        let r = ask(
            &n,
            &req(
                1,
                RequestBody::DklsPairStart {
                    run,
                    me: one,
                    peer: two,
                    peer_key: [7; 32],
                },
            ),
        );
        assert_eq!(error_code(&r), Some(ErrorCode::Unsupported));
        // Rounds of runs this node never started (or that expired), and a signature with a key it does not hold.
        let r = ask(
            &n,
            &req(
                2,
                RequestBody::DklsPairRound {
                    run,
                    round: 2,
                    inbox: Vec::new(),
                },
            ),
        );
        assert_eq!(error_code(&r), Some(ErrorCode::UnknownKey));
        let r = ask(
            &n,
            &req(
                3,
                RequestBody::DklsRound {
                    key: KeyId([9; 32]),
                    run,
                    round: 2,
                    inbox: Vec::new(),
                },
            ),
        );
        assert_eq!(error_code(&r), Some(ErrorCode::UnknownKey));
        let r = ask(
            &n,
            &req(
                4,
                RequestBody::DklsSign {
                    key: KeyId([9; 32]),
                    run,
                    signers: vec![(one, [1; 32]), (two, [2; 32])],
                    digest: vec![5; 32],
                },
            ),
        );
        assert_eq!(error_code(&r), Some(ErrorCode::UnknownKey));
        let recs = audit.records();
        let ops: Vec<&str> = recs.iter().map(|r| r.operation).collect();
        assert_eq!(
            ops,
            ["dkls-pair-start", "dkls-pair-round", "dkls-round", "dkls-sign"]
        );
        assert_eq!(recs[3].mechanism, Some("ecdsa-dkls"));
        assert_eq!(recs[3].payload.as_deref(), Some(&[5u8; 32][..]));
        assert_eq!(n.dkls_pair_count(), 0);
    }

    #[test]
    fn garbage_truncated_and_unknown_frames_get_malformed_answers() {
        let (n, _) = node();
        let good = req(77, RequestBody::ListKeys).encode();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0xff; 3], vec![1, 0x80], vec![9; 1000]];
        for cut in 0..good.len() {
            inputs.push(good[..cut].to_vec());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        inputs.push(trailing);
        for input in inputs {
            let resp = Response::decode(&n.handle_frame(None, NOW, &input, &mut rand::rng())).unwrap();
            assert_eq!(error_code(&resp), Some(ErrorCode::Malformed), "{input:?}");
        }
        let truncated_body = &good[..good.len() - 1];
        let resp = Response::decode(&n.handle_frame(None, NOW, truncated_body, &mut rand::rng())).unwrap();
        assert_eq!(resp.id, 77);
        assert!(matches!(
            ask(&n, &req(1, RequestBody::Ping)).body,
            ResponseBody::Pong { .. }
        ));
    }

    #[test]
    fn a_bundle_for_another_node_is_refused() {
        let (n, _) = node();
        let other = NodeIdentity::generate("other", &mut rand::rng()).unwrap();
        let bundle = ShareBundle {
            info: KeyInfo {
                key: KeyId([1; 32]),
                algorithm: crate::transport::wire::Algorithm::Rsa,
                signer: tcrypto::SignerId::new(1).unwrap(),
                threshold: 1,
                parties: 1,
                public: vec![],
            },
            share: zeroize::Zeroizing::new(vec![1]),
        };
        let sealed = bundle.seal(&other.public(), &mut rand::rng()).unwrap();
        let resp = ask(
            &n,
            &req(
                1,
                RequestBody::ImportShare {
                    bundle: sealed.encode(),
                },
            ),
        );
        assert_eq!(error_code(&resp), Some(ErrorCode::BadBundle));
        assert_eq!(n.key_count(), 0);
    }

    #[test]
    fn an_imported_key_is_audited_with_its_id_before_it_is_acknowledged() {
        let (n, audit) = node();
        let ids = [
            tcrypto::SignerId::new(1).unwrap(),
            tcrypto::SignerId::new(2).unwrap(),
        ];
        let (pk, shares) = tcrypto::ed25519::deal(2, ids, &mut rand::rng()).unwrap();
        let bundle = crate::algo::ed25519_bundles(&pk, &shares).remove(0);
        let key = bundle.info.key;
        let sealed = bundle.seal(&n.public(), &mut rand::rng()).unwrap();
        let resp = ask(
            &n,
            &req(
                1,
                RequestBody::ImportShare {
                    bundle: sealed.encode(),
                },
            ),
        );
        assert!(matches!(resp.body, ResponseBody::Done), "{:?}", resp.body);
        let recs = audit.records();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].operation, "import-share");
        assert_eq!(recs[0].key, Some(key));
        assert_eq!(recs[0].outcome, Ok(()));
    }

    /// A fresh store (test KDF cost) in a scratch directory named after `tag`.
    fn scratch_store(tag: &str) -> (std::path::PathBuf, Arc<SecretStore>) {
        use crate::node::store::{KdfCost, StoreKeySource};
        let dir = std::env::temp_dir().join(format!("tcrypto-node-{tag}-{:x}", rand::random::<u64>()));
        let pass = StoreKeySource::Passphrase(zeroize::Zeroizing::new("pw".into()));
        let store = Arc::new(SecretStore::create(&dir, &pass, KdfCost::TESTING, &mut rand::rng()).unwrap());
        (dir, store)
    }

    #[test]
    fn a_damaged_key_file_takes_only_its_key_out_of_service_until_its_share_is_imported_again() {
        let (dir, store) = scratch_store("damage");
        let id = Arc::new(NodeIdentity::generate("n1", &mut rand::rng()).unwrap());
        let bundles: Vec<ShareBundle> = (0..3)
            .map(|_| {
                let ids = [
                    tcrypto::SignerId::new(1).unwrap(),
                    tcrypto::SignerId::new(2).unwrap(),
                ];
                let (pk, shares) = tcrypto::ed25519::deal(2, ids, &mut rand::rng()).unwrap();
                crate::algo::ed25519_bundles(&pk, &shares).remove(0)
            })
            .collect();
        for b in &bundles {
            store
                .put(&store_name(&b.info.key), &b.encode(), &mut rand::rng())
                .unwrap();
        }
        let [damaged, deleted, healthy] = [0, 1, 2].map(|i| bundles[i].info.key);
        let path = store.path_of(&store_name(&damaged));
        let mut raw = std::fs::read(&path).unwrap();
        raw[20] ^= 1;
        std::fs::write(&path, raw).unwrap();
        std::fs::remove_file(store.path_of(&store_name(&deleted))).unwrap();
        let audit = Arc::new(MemoryAudit::default());
        let n = SignerNode::new(id.clone(), Some(store.clone()), audit, ReplayGuard::default());
        assert_eq!(n.load_keys().unwrap(), 1);
        assert_eq!(n.key_infos()[0].key, healthy);
        let oos = n.out_of_service();
        assert!(
            oos[&damaged.to_string()].contains(&path.display().to_string()),
            "{oos:?}"
        );
        assert!(oos[&deleted.to_string()].contains("is missing"), "{oos:?}");
        assert_eq!(n.health().len(), 2, "{:?}", n.health());
        assert_eq!(store.quarantined().len(), 1);
        // Importing the damaged key's share again puts it back in service.
        let sealed = bundles[0].seal(&id.public(), &mut rand::rng()).unwrap();
        let resp = ask(
            &n,
            &req(
                1,
                RequestBody::ImportShare {
                    bundle: sealed.encode(),
                },
            ),
        );
        assert!(matches!(resp.body, ResponseBody::Done), "{:?}", resp.body);
        assert_eq!(n.key_count(), 2);
        assert_eq!(n.out_of_service().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_dkg_state_records_are_quarantined_and_the_node_serves_its_keys() {
        let (dir, store) = scratch_store("dkgstate");
        let ids = [
            tcrypto::SignerId::new(1).unwrap(),
            tcrypto::SignerId::new(2).unwrap(),
        ];
        let (pk, shares) = tcrypto::ed25519::deal(2, ids, &mut rand::rng()).unwrap();
        let bundle = crate::algo::ed25519_bundles(&pk, &shares).remove(0);
        store
            .put(&store_name(&bundle.info.key), &bundle.encode(), &mut rand::rng())
            .unwrap();
        // A tentative share that does not decode, and a kept delivery whose file was flipped on disk.
        store
            .put("dkgtentative-00", b"not a tentative share", &mut rand::rng())
            .unwrap();
        store.put("dkgkept-00", b"whatever", &mut rand::rng()).unwrap();
        let kept = store.path_of("dkgkept-00");
        let mut raw = std::fs::read(&kept).unwrap();
        raw[20] ^= 1;
        std::fs::write(&kept, raw).unwrap();
        let id = Arc::new(NodeIdentity::generate("n1", &mut rand::rng()).unwrap());
        let n = SignerNode::new(
            id,
            Some(store.clone()),
            Arc::new(MemoryAudit::default()),
            ReplayGuard::default(),
        );
        assert_eq!(n.load_keys().unwrap(), 1);
        let health = n.health();
        assert_eq!(
            health
                .iter()
                .filter(|l| l.contains("DKG state record quarantined"))
                .count(),
            2,
            "{health:?}"
        );
        assert!(
            health.iter().any(|l| l.contains(&kept.display().to_string())),
            "{health:?}"
        );
        assert_eq!(store.quarantined().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_default_witness_is_beside_the_data_directory() {
        assert_eq!(
            default_witness(Path::new("/var/lib/tcrypto-node/")),
            Path::new("/var/lib/tcrypto-node.witness")
        );
        assert_eq!(
            default_witness(Path::new("/srv/n1")),
            Path::new("/srv/n1.witness")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(default_witness(Path::new("data")), cwd.join("data.witness"));
    }

    #[test]
    fn oversized_frames_never_reach_the_node() {
        let mut d = FrameDecoder::new();
        d.push(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        assert!(d.next_frame().is_err());
    }
}
