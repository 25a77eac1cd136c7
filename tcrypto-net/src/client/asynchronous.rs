//! The coordinator on tokio: [`AsyncCluster`], the async counterpart of [`crate::client::blocking::BlockingCluster`].
//!
//! One task per node keeps a mutual-TLS connection and carries all requests to that node, pipelined; it connects
//! when the coordinator says so ([`Coordinator::poll_connect`], with the coordinator's bounded back-off), and a
//! timer task drives the coordinator's deadlines and retry times. The sans-io [`Coordinator`] sits behind a
//! mutex that is never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use tcrypto::KeyId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_rustls::TlsConnector;

use crate::client::{ClusterError, wall_ms};
use crate::coordinator::{Coordinator, CoordinatorConfig, Event, NodeHealth, NodeIndex, OpId, Signature};
use crate::transport::frame::FrameDecoder;
use crate::transport::identity::{NodePublic, TlsIdentity};
use crate::transport::tls::{client_config, server_name};
use crate::transport::wire::{DataMechanism, Mechanism, RequestBody, ResponseBody, SignData};

struct State {
    coord: Coordinator,
    links: Vec<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    /// Wakes node `i`'s task for a connection attempt.
    dial: Vec<Arc<Notify>>,
    waiters: HashMap<OpId, oneshot::Sender<Event>>,
    done: HashMap<OpId, Event>,
    notices: Vec<Event>,
}

struct Shared {
    state: Mutex<State>,
    connected: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the connection attempts the coordinator asks for.
    fn dial(st: &mut State) {
        st.coord.set_clock(Instant::now(), wall_ms());
        while let Some(i) = st.coord.poll_connect(Instant::now()) {
            if let Some(d) = st.dial.get(i) {
                d.notify_one();
            }
        }
    }

    /// Starts due connection attempts, sends queued frames and delivers finished events.
    fn pump(st: &mut State) {
        Self::dial(st);
        while let Some(t) = st.coord.poll_transmit() {
            if let Some(Some(link)) = st.links.get(t.node) {
                let _ = link.send(t.frame);
            }
        }
        while let Some(e) = st.coord.poll_event() {
            match &e {
                Event::Signed { op, .. } | Event::Reply { op, .. } | Event::Created { op, .. } => {
                    match st.waiters.remove(op) {
                        Some(w) => {
                            let _ = w.send(e);
                        }
                        None => {
                            st.done.insert(*op, e);
                        }
                    }
                }
                _ => st.notices.push(e),
            }
        }
    }
}

/// A cluster reached over mutual TLS from a tokio runtime.
pub struct AsyncCluster {
    shared: Arc<Shared>,
    nodes: Vec<NodePublic>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for AsyncCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCluster")
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl AsyncCluster {
    /// Starts connection tasks to `nodes` on the current tokio runtime.
    pub fn connect_tls(
        identity: &TlsIdentity,
        nodes: &[(SocketAddr, NodePublic)],
        cfg: CoordinatorConfig,
    ) -> Result<Self, ClusterError> {
        let connect_timeout = cfg.handshake_timeout;
        let mut coord = Coordinator::new(cfg);
        for (_, p) in nodes {
            let i = coord.add_node(p.name.clone());
            coord.set_identity(i, p.clone());
        }
        let dial: Vec<Arc<Notify>> = nodes.iter().map(|_| Arc::new(Notify::new())).collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                coord,
                links: vec![None; nodes.len()],
                dial: dial.clone(),
                waiters: HashMap::new(),
                done: HashMap::new(),
                notices: Vec::new(),
            }),
            connected: Notify::new(),
        });
        let mut tasks = Vec::new();
        for (i, (addr, public)) in nodes.iter().enumerate() {
            let cfg = client_config(identity, public.tls_spki)
                .map_err(|e| ClusterError::Transport(e.to_string()))?;
            tasks.push(tokio::spawn(link(
                shared.clone(),
                i,
                *addr,
                TlsConnector::from(cfg),
                dial[i].clone(),
                connect_timeout,
            )));
        }
        Shared::pump(&mut shared.lock());
        let timer = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut st = timer.lock();
                st.coord.handle_timeout(Instant::now());
                Shared::pump(&mut st);
            }
        }));
        Ok(Self {
            shared,
            nodes: nodes.iter().map(|(_, p)| p.clone()).collect(),
            tasks,
        })
    }

    /// Waits until the first connections are settled ([`Coordinator::connect_settled`]: a node that is down
    /// costs one refused attempt, one that drops packets a few handshake times, not the whole `timeout`), or
    /// `timeout` passes; returns the number connected.
    pub async fn connect(&self, timeout: Duration) -> usize {
        let start = Instant::now();
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.connected.notified();
            let (n, settled) = {
                let st = self.shared.lock();
                let c = &st.coord;
                let n = (0..c.node_count()).filter(|&i| c.is_connected(i)).count();
                (n, c.connect_settled(start, Instant::now()))
            };
            if settled || tokio::time::Instant::now() >= end {
                return n;
            }
            // Attempts under way are also given up on by the clock (`connect_settled`), not only by events.
            let tick = (tokio::time::Instant::now() + crate::coordinator::MIN_CONNECT_GRACE / 4).min(end);
            let _ = tokio::time::timeout_at(tick, notified).await;
        }
    }

    fn submit<R>(&self, f: impl FnOnce(&mut Coordinator, Instant, u64) -> R) -> R {
        let mut st = self.shared.lock();
        st.coord.handle_timeout(Instant::now());
        Shared::dial(&mut st);
        let r = f(&mut st.coord, Instant::now(), wall_ms());
        Shared::pump(&mut st);
        r
    }

    async fn wait(&self, op: OpId) -> Event {
        let rx = {
            let mut st = self.shared.lock();
            if let Some(e) = st.done.remove(&op) {
                return e;
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.insert(op, tx);
            rx
        };
        rx.await.unwrap_or(Event::Reply {
            op,
            node: 0,
            result: Err("cluster shut down".into()),
        })
    }

    /// Sends one request to one node and waits for its answer.
    pub async fn request(&self, node: NodeIndex, body: RequestBody) -> Result<ResponseBody, ClusterError> {
        let op = self.submit(|c, now, unix| c.start_request(node, body, now, unix, &mut rand::rng()));
        let name = self.nodes.get(node).map(|n| n.name.clone()).unwrap_or_default();
        match self.wait(op).await {
            Event::Reply {
                result: Ok(ResponseBody::Error { code, detail }),
                ..
            } => Err(ClusterError::Node {
                node: name,
                detail: format!("{code:?}: {detail}"),
            }),
            Event::Reply { result: Ok(b), .. } => Ok(b),
            Event::Reply { result: Err(e), .. } => Err(ClusterError::Node {
                node: name,
                detail: e,
            }),
            other => Err(ClusterError::Transport(format!("unexpected event {other:?}"))),
        }
    }

    /// Creates a `threshold`-of-`n` ECDSA P-256 or Ed25519 key by distributed key generation across the nodes
    /// (see [`crate::client::Cluster::create_key`]).
    pub async fn create_key(
        &self,
        algorithm: crate::transport::wire::Algorithm,
        threshold: u16,
    ) -> Result<KeyId, ClusterError> {
        let mut attempts = crate::client::CreateAttempts::default();
        loop {
            let op = self
                .submit(|c, now, unix| c.start_create_key(algorithm, threshold, &attempts.avoid, now, unix));
            if let Some(result) = attempts.judge(self.wait(op).await, &self.nodes) {
                let key = result?;
                self.submit(|c, now, unix| c.prefill(key, now, unix));
                return Ok(key);
            }
        }
    }

    /// Reshares `key` to `nodes` with threshold `threshold` (see [`crate::client::Cluster::reshare`]).
    pub async fn reshare(
        &self,
        key: KeyId,
        nodes: &[NodeIndex],
        threshold: u16,
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.reshare_admitting(key, nodes, threshold, &[]).await
    }

    /// Reshares `key`, admitting excluded nodes as new holders (see [`crate::client::Cluster::reshare_admitting`]).
    pub async fn reshare_admitting(
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
        .await
    }

    /// Refreshes `key` (see [`crate::client::Cluster::refresh`]).
    pub async fn refresh(&self, key: KeyId) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.run_reshare(key, crate::coordinator::reshare::Goal::Refresh, &[])
            .await
    }

    /// Settles an interrupted reshare of `key` (see [`crate::client::Cluster::settle_reshare`]).
    pub async fn settle_reshare(
        &self,
        key: KeyId,
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        self.run_reshare(key, crate::coordinator::reshare::Goal::Settle, &[])
            .await
    }

    async fn run_reshare(
        &self,
        key: KeyId,
        goal: crate::coordinator::reshare::Goal,
        admit: &[NodeIndex],
    ) -> Result<crate::coordinator::reshare::Outcome, ClusterError> {
        use crate::coordinator::reshare::{Resharing, Want};
        let excluded = self.submit(|c, _, _| c.excluded());
        let mut run = Resharing::new(key, goal, self.nodes.clone())
            .excluding(excluded)
            .admitting(admit.iter().copied());
        let mut want = run.start();
        loop {
            want = match want {
                Want::Ask(requests) => {
                    let ops: Vec<OpId> = self.submit(|c, now, unix| {
                        let mut rng = rand::rng();
                        requests
                            .into_iter()
                            .map(|(node, body)| c.start_request(node, body, now, unix, &mut rng))
                            .collect()
                    });
                    let mut answers = Vec::with_capacity(ops.len());
                    for op in ops {
                        answers.push(match self.wait(op).await {
                            Event::Reply { result, .. } => result,
                            other => Err(format!("unexpected event {other:?}")),
                        });
                    }
                    run.answers(answers, &mut rand::rng())
                }
                Want::TestSign {
                    id,
                    info,
                    holders,
                    mechanism,
                } => {
                    let registered = self.submit(|c, _, _| c.register_key_as(id, &info, holders));
                    let signed = match registered {
                        Ok(()) => self
                            .sign(id, mechanism)
                            .await
                            .map(|s| s.bytes)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    self.submit(|c, _, _| c.forget_key(&id));
                    run.signed(signed)
                }
                Want::Done(result) => {
                    let named = run.named();
                    self.submit(|c, _, _| crate::coordinator::reshare::exclude_culprits(c, key, &named));
                    let outcome = result.map_err(ClusterError::Reshare)?;
                    self.submit(|c, now, unix| {
                        crate::coordinator::reshare::register(c, key, &outcome, now, unix)
                    })
                    .map_err(ClusterError::Key)?;
                    return Ok(outcome);
                }
            };
        }
    }

    /// Signs with `key`.
    pub async fn sign(&self, key: KeyId, mechanism: Mechanism) -> Result<Signature, ClusterError> {
        let request = crate::client::SignRequest::Digest(mechanism);
        // A node that reconnected may have reported a sharing learned elsewhere (suspicion.rs): learn it first.
        self.settle_suspicions().await;
        let op = self.submit(|c, now, unix| request.start(c, key, now, unix));
        self.signed(op, key, request).await
    }

    /// Signs `data` with `key`; the nodes judge the data by their policy and hash it themselves (see
    /// [`crate::client::Cluster::sign_data`]).
    pub async fn sign_data(
        &self,
        key: KeyId,
        mechanism: DataMechanism,
        data: Vec<u8>,
    ) -> Result<Signature, ClusterError> {
        let request = crate::client::SignRequest::Data(SignData { mechanism, data });
        // A node that reconnected may have reported a sharing learned elsewhere (suspicion.rs): learn it first.
        self.settle_suspicions().await;
        let op = self.submit(|c, now, unix| request.start(c, key, now, unix));
        self.signed(op, key, request).await
    }

    /// Signs a batch with all requests in flight at once; results in input order.
    pub async fn sign_many(&self, requests: Vec<(KeyId, Mechanism)>) -> Vec<Result<Signature, ClusterError>> {
        self.all_signed(
            requests
                .into_iter()
                .map(|(k, m)| (k, crate::client::SignRequest::Digest(m)))
                .collect(),
        )
        .await
    }

    /// [`AsyncCluster::sign_many`] for data-carrying requests.
    pub async fn sign_many_data(
        &self,
        requests: Vec<(KeyId, SignData)>,
    ) -> Vec<Result<Signature, ClusterError>> {
        self.all_signed(
            requests
                .into_iter()
                .map(|(k, d)| (k, crate::client::SignRequest::Data(d)))
                .collect(),
        )
        .await
    }

    /// Waits for `op`, settles the coordinator's suspicions, and signs once more when the key's sharing turned
    /// out to have changed under the failed operation (a reshare by another coordinator; see
    /// [`crate::client::Cluster::settle_suspicions`]).
    async fn signed(
        &self,
        op: OpId,
        key: KeyId,
        request: crate::client::SignRequest,
    ) -> Result<Signature, ClusterError> {
        let result = self.outcome(op).await;
        let changed = self.settle_suspicions().await;
        match result {
            Err(e) if changed.contains(&key) && crate::client::worth_again(&e) => {
                tracing::info!(%key, error = %e, "signing again with the key's new sharing");
                let op = self.submit(|c, now, unix| request.start(c, key, now, unix));
                self.outcome(op).await
            }
            result => result,
        }
    }

    async fn outcome(&self, op: OpId) -> Result<Signature, ClusterError> {
        match self.wait(op).await {
            Event::Signed { result, .. } => result.map_err(ClusterError::Sign),
            other => Err(ClusterError::Transport(format!("unexpected event {other:?}"))),
        }
    }

    async fn all_signed(
        &self,
        requests: Vec<(KeyId, crate::client::SignRequest)>,
    ) -> Vec<Result<Signature, ClusterError>> {
        // A node that reconnected may have reported a sharing learned elsewhere (suspicion.rs): learn it first.
        self.settle_suspicions().await;
        let ops: Vec<OpId> =
            self.submit(|c, now, unix| requests.iter().map(|(k, r)| r.start(c, *k, now, unix)).collect());
        let mut out = Vec::with_capacity(ops.len());
        for (op, (key, request)) in ops.into_iter().zip(requests) {
            out.push(self.signed(op, key, request).await);
        }
        out
    }

    /// Checks the keys the coordinator has suspicions about against every node's key list; returns the keys
    /// whose sharing changed.
    pub async fn settle_suspicions(&self) -> Vec<KeyId> {
        if self.submit(|c, _, _| c.suspected_keys()).is_empty() {
            return Vec::new();
        }
        let lists = self.key_lists().await;
        self.submit(|c, _, _| c.settle_suspicions(&lists))
    }

    /// Every answering node's key list (`ListKeys`).
    async fn key_lists(&self) -> BTreeMap<NodeIndex, Vec<crate::transport::wire::KeyInfo>> {
        let mut lists = BTreeMap::new();
        for i in 0..self.nodes.len() {
            if let Ok(ResponseBody::Keys(k)) = self.request(i, RequestBody::ListKeys).await {
                lists.insert(i, k);
            }
        }
        lists
    }

    /// Distributes the shares of an RSA key (signer `i` to node `i - 1`) and registers the key.
    pub async fn import_rsa_shares(
        &self,
        pk: &tcrypto::rsa::PublicKeySet,
        shares: &[tcrypto::rsa::KeyShare],
        rng: &mut impl CryptoRng,
    ) -> Result<KeyId, ClusterError> {
        let bundles = crate::algo::rsa_bundles(pk, shares);
        let mut ops = Vec::new();
        let mut holders = BTreeMap::new();
        for b in &bundles {
            let node = usize::from(b.info.signer.get()) - 1;
            let public = self
                .nodes
                .get(node)
                .ok_or_else(|| ClusterError::Key(format!("no node for signer {}", b.info.signer)))?;
            let body = RequestBody::ImportShare {
                bundle: b.seal(public, rng)?.encode(),
            };
            holders.insert(b.info.signer, node);
            ops.push(self.submit(|c, now, unix| c.start_request(node, body, now, unix, &mut rand::rng())));
        }
        for op in ops {
            match self.wait(op).await {
                Event::Reply {
                    result: Ok(ResponseBody::Done),
                    ..
                } => {}
                other => return Err(ClusterError::Key(format!("import failed: {other:?}"))),
            }
        }
        let info = bundles
            .first()
            .map(|b| b.info.clone())
            .ok_or_else(|| ClusterError::Key("no shares".into()))?;
        self.submit(|c, _, _| c.register_key(&info, holders))
            .map_err(ClusterError::Key)?;
        Ok(info.key)
    }

    /// Asks every node for its keys and registers those that at least `k` nodes agree on.
    pub async fn refresh_keys(&self) -> Vec<KeyId> {
        let lists = self.key_lists().await;
        self.submit(|c, _, _| c.learn_keys(&lists))
    }

    /// The public key material of a known key.
    pub fn public_key(&self, key: &KeyId) -> Option<crate::algo::PublicKey> {
        self.submit(|c, _, _| c.public_key(key).cloned())
    }

    /// ECDSA signatures released so far by each path: `(presignatures, DKLs23)` (for monitoring and tests).
    pub fn ecdsa_signatures_by_path(&self) -> (u64, u64) {
        self.submit(|c, _, _| c.ecdsa_signatures_by_path())
    }

    /// Keys known to the coordinator.
    pub fn list(&self) -> Vec<KeyId> {
        let mut keys: Vec<KeyId> = self.submit(|c, _, _| c.keys().into_iter().map(|k| k.0).collect());
        keys.sort();
        keys
    }

    /// Deletes `key` on every holder and forgets it.
    pub async fn delete(&self, key: KeyId) -> Result<(), ClusterError> {
        let holders: Vec<NodeIndex> = self.submit(|c, _, _| {
            c.keys()
                .into_iter()
                .find(|k| k.0 == key)
                .map(|k| k.2.values().copied().collect())
                .unwrap_or_default()
        });
        self.submit(|c, _, _| c.forget_key(&key));
        for node in holders {
            self.request(node, RequestBody::DeleteKey { key }).await?;
        }
        Ok(())
    }

    /// Pings every node and returns the coordinator's view of their health.
    pub async fn health(&self) -> Vec<NodeHealth> {
        for i in 0..self.nodes.len() {
            let _ = self.request(i, RequestBody::Ping).await;
        }
        self.submit(|c, _, _| c.health())
    }

    /// Culprit notices since the last call.
    pub fn culprits(&self) -> Vec<Event> {
        std::mem::take(&mut self.shared.lock().notices)
    }
}

impl Drop for AsyncCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects to node `i` whenever the coordinator asks (`dial`), and moves its frames while connected.
async fn link(
    shared: Arc<Shared>,
    i: NodeIndex,
    addr: SocketAddr,
    connector: TlsConnector,
    dial: Arc<Notify>,
    connect_timeout: Duration,
) {
    loop {
        dial.notified().await;
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            connector.connect(server_name(), tcp).await
        };
        let stream = match tokio::time::timeout(connect_timeout, attempt).await {
            Ok(Ok(s)) => s,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => format!("{addr}: {e}"),
                    _ => format!("{addr}: no TLS handshake within {connect_timeout:?} (handshake_timeout)"),
                };
                {
                    let mut st = shared.lock();
                    st.coord.node_connect_failed(i, &why, Instant::now());
                    Shared::pump(&mut st);
                }
                shared.connected.notify_waiters();
                continue;
            }
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        {
            let mut st = shared.lock();
            st.links[i] = Some(tx);
            st.coord.set_clock(Instant::now(), wall_ms());
            st.coord.node_connected(i, Instant::now());
        }
        shared.connected.notify_waiters();
        tracing::info!(node = i, %addr, "connected to node");
        let writer = tokio::spawn(async move {
            while let Some(mut frame) = rx.recv().await {
                while let Ok(more) = rx.try_recv() {
                    frame.extend_from_slice(&more);
                }
                if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
        });
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        'read: loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            decoder.push(&buf[..n]);
            let mut frames = Vec::new();
            loop {
                match decoder.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(_) => break 'read,
                }
            }
            let mut st = shared.lock();
            let now = Instant::now();
            for f in frames {
                st.coord.handle_frame(i, &f, now);
            }
            Shared::pump(&mut st);
        }
        writer.abort();
        {
            let mut st = shared.lock();
            st.links[i] = None;
            st.coord.node_disconnected(i, Instant::now());
            Shared::pump(&mut st);
        }
        shared.connected.notify_waiters();
        tracing::warn!(node = i, %addr, "connection to node lost");
    }
}
