//! The thread-free coordinator transport: mutual TLS over TCP driven from the caller's own thread.
//!
//! No runtime and no thread is created: sockets are non-blocking and multiplexed with `poll` (via `mio`); TLS is a
//! plain `rustls::ClientConnection` fed by hand. Whichever calling thread is waiting for a result becomes the
//! driver for everyone (leader/followers): it polls without holding the state lock, then processes what is ready
//! and wakes exactly the threads whose results came in; a driver that leaves with its own result wakes one other
//! waiter to take over driving (waking every waiter after every poll cost 31 futex wake-ups and context switches
//! per poll with 32 callers, a tenth of the coordinator's CPU). So a PKCS#11 module can serve many sessions
//! at once without ever spawning a thread, and nothing depends on an async runtime being (or not being) present.
//!
//! One connection per node carries all requests, pipelined. Which node to connect to and when is the coordinator's
//! decision ([`Coordinator::poll_connect`], with its bounded back-off); every call into the engine (not only a
//! thread waiting for a result) first makes the attempts that are due and reads what the sockets hold, so a
//! coordinator whose requests all fail fast while nodes are down still reconnects them as soon as they are back.
//! Meanwhile the coordinator routes around down nodes, and a request short of holders waits only for attempts
//! under way (each bounded by [`CoordinatorConfig::handshake_timeout`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::client::{Cluster, ClusterError, Engine, wall_ms};
use crate::coordinator::{Coordinator, CoordinatorConfig, Event, NodeIndex, OpId};
use crate::transport::frame::FrameDecoder;
use crate::transport::identity::{NodePublic, TlsIdentity};
use crate::transport::tls::{client_config, server_name};

/// Longest single `poll` wait, so new work submitted by other threads is picked up promptly.
const MAX_POLL: Duration = Duration::from_millis(20);

enum ConnState {
    Down,
    Up {
        /// When the attempt started (a handshake not done within the connect timeout is given up).
        started: Instant,
        stream: TcpStream,
        tls: Box<rustls::ClientConnection>,
        decoder: FrameDecoder,
        established: bool,
        writable_interest: bool,
    },
}

struct Conn {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    state: ConnState,
}

struct Driver {
    coord: Coordinator,
    conns: Vec<Conn>,
    poll: Option<(Poll, Events)>,
    results: HashMap<OpId, Event>,
    /// Threads parked while another drives: the operation each waits for (none: `connect_all`), by thread.
    waiters: Vec<(Option<OpId>, Thread)>,
    notices: Vec<Event>,
    /// Longest TCP connect and TLS handshake ([`CoordinatorConfig::handshake_timeout`]).
    connect_timeout: Duration,
}

/// Coordinator transport over mutual TLS, driven by the calling threads.
pub struct BlockingEngine {
    state: Mutex<Driver>,
    registry: Registry,
}

impl std::fmt::Debug for BlockingEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingEngine").finish_non_exhaustive()
    }
}

impl BlockingEngine {
    /// An engine for `nodes` (address and pinned identity each), presenting `identity`. Connections are opened
    /// lazily; call [`Engine::connect_all`] to wait for them.
    pub fn new(
        identity: &TlsIdentity,
        nodes: &[(SocketAddr, NodePublic)],
        cfg: CoordinatorConfig,
    ) -> Result<Self, ClusterError> {
        let poll = Poll::new().map_err(|e| ClusterError::Transport(e.to_string()))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| ClusterError::Transport(e.to_string()))?;
        let connect_timeout = cfg.handshake_timeout;
        let mut coord = Coordinator::new(cfg);
        let mut conns = Vec::new();
        for (addr, public) in nodes {
            let i = coord.add_node(public.name.clone());
            coord.set_identity(i, public.clone());
            conns.push(Conn {
                addr: *addr,
                config: client_config(identity, public.tls_spki)
                    .map_err(|e| ClusterError::Transport(e.to_string()))?,
                state: ConnState::Down,
            });
        }
        Ok(Self {
            state: Mutex::new(Driver {
                coord,
                conns,
                poll: Some((poll, Events::with_capacity(256))),
                results: HashMap::new(),
                waiters: Vec::new(),
                notices: Vec::new(),
                connect_timeout,
            }),
            registry,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Driver> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round of driving by the current thread, waiting for `op`: poll (lock released), then process. Returns
    /// the relocked state. When another thread drives, parks until that one hands over `op`'s result or the
    /// driving, or [`MAX_POLL`] passes.
    fn drive<'a>(&'a self, mut g: MutexGuard<'a, Driver>, op: Option<OpId>) -> MutexGuard<'a, Driver> {
        let Some((mut poll, mut events)) = g.poll.take() else {
            let me = std::thread::current();
            let id = me.id();
            g.waiters.push((op, me));
            drop(g);
            // An unpark between the unlock and here is kept for this call: no wake-up is lost.
            std::thread::park_timeout(MAX_POLL);
            let mut g = self.lock();
            g.waiters.retain(|(_, t)| t.id() != id);
            return g;
        };
        let now = Instant::now();
        g.coord.set_clock(now, wall_ms());
        self.reconnect(&mut g, now);
        self.flush(&mut g, now);
        let mut timeout = MAX_POLL;
        if let Some(d) = g.coord.next_deadline() {
            timeout = timeout.min(d.saturating_duration_since(now));
        }
        drop(g);
        let polled = poll.poll(&mut events, Some(timeout));
        let mut g = self.lock();
        let now = Instant::now();
        g.coord.set_clock(now, wall_ms());
        if polled.is_ok() {
            for ev in events.iter() {
                let i = ev.token().0;
                self.service(&mut g, i, now);
            }
        }
        g.coord.handle_timeout(now);
        self.flush(&mut g, now);
        g.poll = Some((poll, events));
        g
    }

    /// Called by a driver that stops driving: wakes one waiter still without its result to take over the polling
    /// (the others are woken by whoever drives when their results come in).
    fn hand_over(&self, g: &Driver) {
        if g.poll.is_none() {
            return;
        }
        if let Some((_, thread)) = g
            .waiters
            .iter()
            .find(|(waited, _)| !waited.is_some_and(|w| g.results.contains_key(&w)))
        {
            thread.unpark();
        }
    }

    /// What a call into the engine does first, without blocking: the coordinator's timeouts, the connection
    /// attempts due, and (unless another thread is polling) whatever the sockets already hold. So reconnection
    /// and failure detection go on whatever the request pattern, even when every request fails fast.
    fn tick(&self, g: &mut Driver, now: Instant) {
        g.coord.set_clock(now, wall_ms());
        g.coord.handle_timeout(now);
        self.reconnect(g, now);
        if let Some((mut poll, mut events)) = g.poll.take() {
            if poll.poll(&mut events, Some(Duration::ZERO)).is_ok() {
                for ev in events.iter() {
                    self.service(g, ev.token().0, now);
                }
            }
            g.poll = Some((poll, events));
            self.reconnect(g, now);
        }
    }

    /// Gives up handshakes older than the connect timeout, then starts the attempts the coordinator asks for.
    fn reconnect(&self, g: &mut Driver, now: Instant) {
        for i in 0..g.conns.len() {
            if let ConnState::Up {
                started,
                established: false,
                ..
            } = g.conns[i].state
                && now.saturating_duration_since(started) >= g.connect_timeout
            {
                let why = format!(
                    "no TLS handshake within {:?} (handshake_timeout)",
                    g.connect_timeout
                );
                self.close(g, i, now, &why);
            }
        }
        while let Some(i) = g.coord.poll_connect(now) {
            let Some(conn) = g.conns.get_mut(i) else {
                continue;
            };
            let attempt = (|| -> io::Result<ConnState> {
                let mut stream = TcpStream::connect(conn.addr)?;
                stream.set_nodelay(true).ok();
                let mut tls = rustls::ClientConnection::new(conn.config.clone(), server_name())
                    .map_err(io::Error::other)?;
                // Frames are queued whole into TLS by `flush`; with rustls' default 64 KiB limit a deep pipeline
                // (hundreds of requests per node) would cut a frame short and corrupt the stream. The queue is
                // bounded by the requests in flight.
                tls.set_buffer_limit(None);
                self.registry
                    .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
                Ok(ConnState::Up {
                    started: now,
                    stream,
                    tls: Box::new(tls),
                    decoder: FrameDecoder::new(),
                    established: false,
                    writable_interest: true,
                })
            })();
            match attempt {
                Ok(state) => conn.state = state,
                Err(e) => {
                    let why = format!("{}: {e}", conn.addr);
                    g.coord.node_connect_failed(i, &why, now);
                }
            }
        }
    }

    fn close(&self, g: &mut Driver, i: NodeIndex, now: Instant, why: &str) {
        let Some(conn) = g.conns.get_mut(i) else { return };
        let mut was_established = false;
        if let ConnState::Up {
            stream, established, ..
        } = &mut conn.state
        {
            let _ = self.registry.deregister(stream);
            was_established = *established;
            if *established {
                tracing::warn!(node = i, addr = %conn.addr, why, "connection to node lost");
            }
        }
        conn.state = ConnState::Down;
        let why = format!("{}: {why}", conn.addr);
        if was_established {
            g.coord.node_disconnected(i, now);
        } else {
            g.coord.node_connect_failed(i, &why, now);
        }
    }

    /// Reads and writes what the socket of node `i` allows.
    fn service(&self, g: &mut Driver, i: NodeIndex, now: Instant) {
        let mut frames = Vec::new();
        let mut failed = None;
        let mut became_established = false;
        if let Some(Conn {
            state:
                ConnState::Up {
                    stream,
                    tls,
                    decoder,
                    established,
                    ..
                },
            ..
        }) = g.conns.get_mut(i)
        {
            // Read everything available. The plaintext is moved into the frame decoder after every TLS read:
            // rustls refuses to read more records while its received-plaintext buffer (16 KiB) is full, which a
            // burst of answers to a deep pipeline fills.
            let mut buf = [0u8; 16 * 1024];
            loop {
                match tls.read_tls(stream) {
                    Ok(0) => {
                        failed = Some("closed by peer".to_string());
                        break;
                    }
                    Ok(_) => {
                        if let Err(e) = tls.process_new_packets() {
                            tracing::warn!(node = i, error = %e, "TLS error");
                            failed = Some(format!("TLS error: {e}"));
                            break;
                        }
                        loop {
                            match tls.reader().read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => decoder.push(&buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(_) => {
                        failed = Some("bad frame".to_string());
                        break;
                    }
                }
            }
            if !*established && !tls.is_handshaking() && failed.is_none() {
                *established = true;
                became_established = true;
            }
        }
        if became_established {
            g.coord.node_connected(i, now);
            if let Some(c) = g.conns.get(i) {
                tracing::info!(node = i, addr = %c.addr, "connected to node");
            }
        }
        for f in frames {
            g.coord.handle_frame(i, &f, now);
        }
        if let Some(why) = failed {
            self.close(g, i, now, &why);
        }
        self.collect(g);
        self.write_out(g, i, now);
    }

    /// Moves queued frames into TLS and TLS records onto the socket. The frames queued for one node go into TLS
    /// in one write, so that they share records (one AEAD seal and one record for the node to open per 16 KiB,
    /// not per frame).
    fn flush(&self, g: &mut Driver, now: Instant) {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        while let Some(t) = g.coord.poll_transmit() {
            if batch.len() <= t.node {
                batch.resize_with(t.node + 1, Vec::new);
            }
            if batch[t.node].is_empty() {
                batch[t.node] = t.frame;
            } else {
                batch[t.node].extend_from_slice(&t.frame);
            }
        }
        for (i, bytes) in batch.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
            if let Some(Conn {
                state: ConnState::Up { tls, .. },
                ..
            }) = g.conns.get_mut(i)
            {
                let _ = tls.writer().write_all(bytes);
            }
        }
        for i in 0..g.conns.len() {
            self.write_out(g, i, now);
        }
        self.collect(g);
    }

    fn write_out(&self, g: &mut Driver, i: NodeIndex, now: Instant) {
        let mut failed = false;
        if let Some(Conn {
            state:
                ConnState::Up {
                    stream,
                    tls,
                    writable_interest,
                    ..
                },
            ..
        }) = g.conns.get_mut(i)
        {
            while tls.wants_write() {
                match tls.write_tls(stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            let want = tls.wants_write();
            if want != *writable_interest {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                if self.registry.reregister(stream, Token(i), interest).is_err() {
                    failed = true;
                }
                *writable_interest = want;
            }
        }
        if failed {
            self.close(g, i, now, "write error");
        }
    }

    fn collect(&self, g: &mut Driver) {
        while let Some(e) = g.coord.poll_event() {
            match e {
                Event::Signed { op, .. } | Event::Reply { op, .. } | Event::Created { op, .. } => {
                    g.results.insert(op, e);
                    // Its waiter, if parked, is woken (it leaves the list itself).
                    if let Some((_, thread)) = g.waiters.iter().find(|(waited, _)| *waited == Some(op)) {
                        thread.unpark();
                    }
                }
                other => g.notices.push(other),
            }
        }
    }
}

impl Engine for BlockingEngine {
    fn submit<R>(&self, f: impl FnOnce(&mut Coordinator, Instant, u64) -> R) -> R {
        let mut g = self.lock();
        let now = Instant::now();
        self.tick(&mut g, now);
        let r = f(&mut g.coord, now, wall_ms());
        self.flush(&mut g, now);
        r
    }

    fn wait(&self, op: OpId) -> Event {
        let mut g = self.lock();
        loop {
            if let Some(e) = g.results.remove(&op) {
                self.hand_over(&g);
                return e;
            }
            g = self.drive(g, Some(op));
        }
    }

    /// Returns as soon as the coordinator says the first connections are settled
    /// ([`Coordinator::connect_settled`]: a node that is down costs one refused attempt, one that drops packets a
    /// few handshake times, not the whole `timeout`), or when `timeout` passes.
    fn connect_all(&self, timeout: Duration) -> usize {
        let start = Instant::now();
        let end = start + timeout;
        // Drive once before counting: a connection that closed while nobody was driving (an idle coordinator)
        // still looks connected until its socket is read.
        let mut g = self.drive(self.lock(), None);
        loop {
            let n = (0..g.coord.node_count())
                .filter(|&i| g.coord.is_connected(i))
                .count();
            let now = Instant::now();
            if g.coord.connect_settled(start, now) || now >= end {
                self.hand_over(&g);
                return n;
            }
            g = self.drive(g, None);
        }
    }

    fn take_notices(&self) -> Vec<Event> {
        std::mem::take(&mut self.lock().notices)
    }
}

/// A cluster reached over mutual TLS without any runtime or thread.
pub type BlockingCluster = Cluster<BlockingEngine>;

impl Cluster<BlockingEngine> {
    /// Builds a cluster from a coordinator configuration file ([`crate::config::CoordinatorConfigFile`]): the
    /// coordinator identity written by `tcrypto-node coordinator-init`, the nodes and their pins, and the data
    /// directory where pending DKG deliveries are kept ([`Cluster::keep_deliveries_in`]) if one is set.
    pub fn from_config_file(path: &std::path::Path) -> Result<Self, ClusterError> {
        Self::from_config_file_with(path, |c| c)
    }

    /// [`Cluster::from_config_file`] with the coordinator settings the file does not hold (pool watermarks and
    /// the like) adjusted by `adjust`, starting from the defaults with the file's request timeout.
    pub fn from_config_file_with(
        path: &std::path::Path,
        adjust: impl FnOnce(CoordinatorConfig) -> CoordinatorConfig,
    ) -> Result<Self, ClusterError> {
        Self::from_config_file_unlocked(path, None, adjust)
    }

    /// [`Cluster::from_config_file_with`], the sealed coordinator identity opened with `passphrase` when given
    /// (the PKCS#11 module's user PIN) instead of the configured passphrase source.
    pub fn from_config_file_unlocked(
        path: &std::path::Path,
        passphrase: Option<&str>,
        adjust: impl FnOnce(CoordinatorConfig) -> CoordinatorConfig,
    ) -> Result<Self, ClusterError> {
        let cfg = crate::config::CoordinatorConfigFile::load(path)
            .map_err(|e| ClusterError::Transport(e.to_string()))?;
        let identity = cfg
            .load_identity(passphrase)
            .map_err(|e| ClusterError::Transport(e.to_string()))?;
        let nodes = cfg
            .node_publics()
            .map_err(|e| ClusterError::Transport(e.to_string()))?;
        let coordinator = adjust(CoordinatorConfig {
            request_timeout: Duration::from_millis(cfg.request_timeout_ms),
            handshake_timeout: Duration::from_millis(cfg.handshake_timeout_ms),
            sign_timeout: Duration::from_millis(cfg.sign_timeout_ms),
            ..CoordinatorConfig::default()
        });
        let cluster = Self::connect_tls(&identity, &nodes, coordinator)?;
        match &cfg.data_dir {
            Some(dir) => cluster.keep_deliveries_in(dir),
            None => Ok(cluster),
        }
    }

    /// Builds a cluster from a coordinator configuration file's contents.
    pub fn connect_tls(
        identity: &TlsIdentity,
        nodes: &[(SocketAddr, NodePublic)],
        cfg: CoordinatorConfig,
    ) -> Result<Self, ClusterError> {
        let engine = BlockingEngine::new(identity, nodes, cfg)?;
        Ok(Cluster::new(
            engine,
            nodes.iter().map(|(_, p)| p.clone()).collect(),
        ))
    }
}
