//! The in-memory transport: nodes in the same process, called directly. Used by tests and the embedded quickstart.
//!
//! Frames still go through the full encoding, framing and node request handling; only sockets and TLS are left
//! out. A node can be taken down and brought back, and its answers can be passed through a tamper hook to play a
//! Byzantine node.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::client::{Engine, wall_ms};
use crate::coordinator::{Coordinator, CoordinatorConfig, Event, NodeIndex, OpId};
use crate::node::SignerNode;
use crate::transport::frame::{FrameDecoder, encode_frame};

/// Rewrites the response frame payload a node sends (to simulate a Byzantine node).
pub type Tamper = Box<dyn Fn(&mut Vec<u8>) + Send + Sync>;

struct Inner {
    coord: Coordinator,
    up: Vec<bool>,
    results: HashMap<OpId, Event>,
    notices: Vec<Event>,
    queue: VecDeque<(NodeIndex, Vec<u8>)>,
}

/// Nodes in this process.
pub struct MemoryEngine {
    nodes: Vec<Arc<SignerNode>>,
    tamper: Mutex<HashMap<NodeIndex, Tamper>>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEngine")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl MemoryEngine {
    /// Connects a coordinator to `nodes` (all up).
    pub fn new(nodes: Vec<Arc<SignerNode>>, cfg: CoordinatorConfig) -> Self {
        let mut coord = Coordinator::new(cfg);
        let now = Instant::now();
        coord.set_clock(now, wall_ms());
        for n in &nodes {
            let i = coord.add_node(n.name());
            coord.set_identity(i, n.public());
            coord.node_connected(i, now);
        }
        let up = vec![true; nodes.len()];
        Self {
            nodes,
            tamper: Mutex::new(HashMap::new()),
            inner: Mutex::new(Inner {
                coord,
                up,
                results: HashMap::new(),
                notices: Vec::new(),
                queue: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes node `i` down (its connection drops) or brings it back.
    pub fn set_up(&self, i: NodeIndex, up: bool) {
        let mut g = self.lock();
        if let Some(u) = g.up.get_mut(i) {
            *u = up;
        }
        let now = Instant::now();
        g.coord.set_clock(now, wall_ms());
        if up {
            g.coord.node_connected(i, now);
        } else {
            g.coord.node_disconnected(i, now);
        }
    }

    /// Passes every answer of node `i` through `f`.
    pub fn set_tamper(&self, i: NodeIndex, f: Tamper) {
        if let Ok(mut t) = self.tamper.lock() {
            t.insert(i, f);
        }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Arc<SignerNode>] {
        &self.nodes
    }

    fn pump(&self, g: &mut Inner) {
        while let Some(t) = g.coord.poll_transmit() {
            g.queue.push_back((t.node, t.frame));
        }
        while let Some(e) = g.coord.poll_event() {
            match e {
                Event::Signed { op, .. } | Event::Reply { op, .. } | Event::Created { op, .. } => {
                    g.results.insert(op, e);
                }
                other => g.notices.push(other),
            }
        }
    }

    fn step(&self, g: &mut Inner) -> bool {
        self.pump(g);
        let Some((node, frame)) = g.queue.pop_front() else {
            return false;
        };
        if !g.up.get(node).copied().unwrap_or(false) {
            return true;
        }
        let mut d = FrameDecoder::new();
        d.push(&frame);
        let Ok(Some(payload)) = d.next_frame() else {
            return true;
        };
        let Some(n) = self.nodes.get(node) else {
            return true;
        };
        let mut resp = n.handle_frame(None, wall_ms(), &payload, &mut rand::rng());
        if let Ok(t) = self.tamper.lock()
            && let Some(f) = t.get(&node)
        {
            f(&mut resp);
        }
        // Round-trip through framing like a socket would.
        if let Ok(f) = encode_frame(&resp) {
            let mut d = FrameDecoder::new();
            d.push(&f);
            if let Ok(Some(p)) = d.next_frame() {
                g.coord.handle_frame(node, &p, Instant::now());
            }
        }
        self.pump(g);
        true
    }
}

impl Engine for MemoryEngine {
    fn submit<R>(&self, f: impl FnOnce(&mut Coordinator, Instant, u64) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g.coord, Instant::now(), wall_ms());
        self.pump(&mut g);
        r
    }

    fn wait(&self, op: OpId) -> Event {
        let mut g = self.lock();
        loop {
            if let Some(e) = g.results.remove(&op) {
                return e;
            }
            if !self.step(&mut g) {
                // Nothing left to deliver: let deadlines pass.
                let now = Instant::now();
                match g.coord.next_deadline() {
                    Some(d) if d > now => {
                        drop(g);
                        std::thread::sleep((d - now).min(Duration::from_millis(20)));
                        g = self.lock();
                    }
                    Some(_) => {}
                    None => {
                        self.pump(&mut g);
                        if let Some(e) = g.results.remove(&op) {
                            return e;
                        }
                        return Event::Reply {
                            op,
                            node: 0,
                            result: Err("operation unknown".into()),
                        };
                    }
                }
                g.coord.handle_timeout(Instant::now());
            }
        }
    }

    fn connect_all(&self, _timeout: Duration) -> usize {
        self.lock().up.iter().filter(|u| **u).count()
    }

    fn take_notices(&self) -> Vec<Event> {
        std::mem::take(&mut self.lock().notices)
    }
}
