//! Signer nodes started inside the current process on loopback TLS: the embedded quickstart and test harness.
//!
//! The nodes run on a private tokio runtime (its own threads); the coordinator side talks to them over real
//! mutual TLS sockets exactly as to remote daemons.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::node::SignerNode;
use crate::node::audit::MemoryAudit;
use crate::node::replay::ReplayGuard;
use crate::node::server::serve;
use crate::transport::identity::{NodeIdentity, NodePublic, SpkiFingerprint};

/// Nodes running in this process.
pub struct EmbeddedNodes {
    runtime: tokio::runtime::Runtime,
    /// The node cores (memory-only storage).
    pub nodes: Vec<Arc<SignerNode>>,
    /// Address and public identity of each node, for a coordinator.
    pub addresses: Vec<(SocketAddr, NodePublic)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedNodes")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl EmbeddedNodes {
    /// Starts `n` nodes named `node1..` on `127.0.0.1` ephemeral ports, accepting the `coordinators`.
    pub fn start(n: usize, coordinators: &[SpkiFingerprint]) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut nodes = Vec::new();
        let mut addresses = Vec::new();
        let mut tasks = Vec::new();
        for i in 1..=n {
            let identity = NodeIdentity::generate(&format!("node{i}"), &mut rand::rng())
                .map_err(std::io::Error::other)?;
            let public = identity.public();
            let tls = crate::transport::tls::server_config(&identity.tls, coordinators.iter().copied())
                .map_err(std::io::Error::other)?;
            let node = Arc::new(SignerNode::new(
                Arc::new(identity),
                None,
                Arc::new(MemoryAudit::default()),
                ReplayGuard::default(),
            ));
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            tasks.push(runtime.spawn(serve(listener, tls, node.clone())));
            nodes.push(node);
            addresses.push((addr, public));
        }
        let publics: Vec<NodePublic> = addresses.iter().map(|(_, p)| p.clone()).collect();
        for node in &nodes {
            node.set_peers(publics.clone());
        }
        Ok(Self {
            runtime,
            nodes,
            addresses,
            tasks,
        })
    }

    /// The runtime the nodes run on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

impl Drop for EmbeddedNodes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
