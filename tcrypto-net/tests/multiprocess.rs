//! Five `tcrypto-node` processes on 127.0.0.x with mutual TLS: nodes killed during a stream of signatures, then
//! restarted and rejoining without operator action.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::blocking::BlockingCluster;
use tcrypto_net::config::decode_public;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::identity::{NodePublic, TlsIdentity};

const BIN: &str = env!("CARGO_BIN_EXE_tcrypto-node");
const PASS: &str = "multi-process test passphrase";

struct NodeProc {
    config: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    public: NodePublic,
}

impl NodeProc {
    fn create(dir: &std::path::Path, i: usize, coordinator: &TlsIdentity) -> Self {
        let ip = format!("127.0.0.{}", 2 + i);
        let port = TcpListener::bind((ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let data = dir.join(format!("node{}", i + 1));
        let config = dir.join(format!("node{}.toml", i + 1));
        std::fs::write(
            &config,
            format!(
                "name = \"node{}\"\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n\n[[coordinators]]\nname = \"test\"\nspki_sha256 = \"{}\"\n",
                i + 1,
                data.display(),
                coordinator.fingerprint()
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args([
                "init",
                "--config",
                config.to_str().unwrap(),
                "--insecure-fast-kdf",
            ])
            .env("TCRYPTO_NODE_PASSPHRASE", PASS)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let public = decode_public(&std::fs::read_to_string(data.join("node.pub")).unwrap()).unwrap();
        Self {
            config,
            data,
            child: None,
            addr,
            public,
        }
    }

    fn start(&mut self) {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env("TCRYPTO_NODE_PASSPHRASE", PASS)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("node did not start");
        assert!(line.contains("listening on"), "{line}");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn killing_n_minus_k_nodes_during_a_stream_loses_no_signature_and_restarted_nodes_rejoin() {
    let dir = common::scratch("multiprocess");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..5).map(|i| NodeProc::create(&dir, i, &coordinator)).collect();
    for n in &mut nodes {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(3),
        ..CoordinatorConfig::default()
    };
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);

    // A 2048-bit 3-of-5 key from fixture primes, one encrypted share per node process.
    let (pk, shares) = rsa_key(1024, 3, 5, 11);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();

    let mut counter = 0u32;
    let mut batch = |cluster: &BlockingCluster| {
        let reqs: Vec<_> = (0..16)
            .map(|_| {
                counter += 1;
                (key, pkcs1_sha256(&counter.to_be_bytes()))
            })
            .collect();
        for ((_, m), r) in reqs.iter().zip(cluster.sign_many(reqs.clone())) {
            let sig = r.unwrap_or_else(|e| panic!("a request failed: {e}"));
            rsa_crate_verifies(&pk, m, &sig.bytes).unwrap();
        }
    };

    batch(&cluster);
    // Kill two nodes while requests are in flight.
    let reqs: Vec<_> = (0..32u32)
        .map(|i| (key, pkcs1_sha256(&(1_000 + i).to_be_bytes())))
        .collect();
    let ops: Vec<_> = cluster.start_signs(&reqs);
    nodes[0].kill();
    nodes[1].kill();
    for ((_, m), op) in reqs.iter().zip(ops) {
        let sig = cluster
            .wait_signature(op)
            .unwrap_or_else(|e| panic!("in-flight request failed: {e}"));
        rsa_crate_verifies(&pk, m, &sig.bytes).unwrap();
    }
    batch(&cluster);

    // Restart them: the coordinator reconnects by itself and they serve from their encrypted stores.
    nodes[0].start();
    nodes[1].start();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);
    nodes[2].kill();
    nodes[3].kill();
    batch(&cluster);
    batch(&cluster);

    let audit = std::fs::read_to_string(nodes[0].data.join("audit.log")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("op=sign") && l.contains("outcome=ok")),
        "{audit}"
    );
    assert!(audit.lines().any(|l| l.contains("op=import-share")), "{audit}");
}
