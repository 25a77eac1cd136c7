//! A mixed cluster: five `tcrypto-node` processes (127.0.0.x, mutual TLS), a 3-of-5 quorum, two nodes configured
//! `arithmetic = "pure-rust"`, two `arithmetic = "openssl"` and one on the build's default (OpenSSL). An RSA-2048 key
//! dealt from the committed safe primes, and P-256 and Ed25519 keys made by DKG across both backends, sign with
//! signer sets that are mixed, all OpenSSL and all pure Rust; ECDSA both on its presignature path (all five up, so
//! all five presign) and on its DKLs23 path (two nodes killed). Every node's metrics say which backend it runs, and
//! its `sign`/`frost-sign`/`dkls-sign` counters say which nodes made each signature. Every signature is checked by
//! the `rsa`, `p256` or `ed25519-dalek` crate.
#![cfg(feature = "openssl-backend")]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::NodeProc;
use tcrypto::KeyId;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Algorithm;

const PURE: &str = "pure-rust";
const OPENSSL: &str = "openssl";

/// `GET /metrics` of a node (which binds its metrics port just after it says it listens: a refused connection is
/// tried again for a while).
fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("metrics {addr}: {e}; trying again");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("metrics {addr}: {e}"),
        }
    };
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: monitor\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The backend a node's metrics report (`tcrypto_node_arithmetic_info{backend="…"} 1`).
fn backend_of(metrics: SocketAddr) -> String {
    let body = scrape(metrics);
    let line = body
        .lines()
        .find(|l| l.starts_with("tcrypto_node_arithmetic_info{"))
        .unwrap_or_else(|| panic!("no arithmetic info in\n{body}"));
    assert!(line.ends_with(" 1"), "{line}");
    line.split("backend=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The node's count of successful `operations` on `key`.
fn answered(metrics: SocketAddr, operations: &[&str], key: &KeyId) -> f64 {
    let key = format!("key=\"{key}\"");
    scrape(metrics)
        .lines()
        .filter(|l| {
            l.starts_with("tcrypto_node_requests_total{")
                && l.contains(&key)
                && l.contains("outcome=\"ok\"")
                && operations
                    .iter()
                    .any(|op| l.contains(&format!("operation=\"{op}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The five nodes, their metrics addresses and the backend each was asked to run.
struct Lab {
    nodes: Vec<NodeProc>,
    metrics: Vec<SocketAddr>,
    backends: Vec<&'static str>,
}

impl Lab {
    /// The nodes running now, as indices.
    fn up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some())
            .collect()
    }

    /// Each running node's count of `operations` on `key` (0 for a node that is down).
    fn counts(&self, operations: &[&str], key: &KeyId) -> Vec<f64> {
        (0..self.nodes.len())
            .map(|i| {
                if self.nodes[i].child.is_some() {
                    answered(self.metrics[i], operations, key)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Runs `sign`, then returns the nodes whose count of `operations` on `key` went up meanwhile.
    fn signers(&self, operations: &[&str], key: &KeyId, sign: impl FnOnce()) -> Vec<usize> {
        let before = self.counts(operations, key);
        sign();
        let after = self.counts(operations, key);
        (0..self.nodes.len()).filter(|&i| after[i] > before[i]).collect()
    }

    /// Checks every running node reports the backend it was asked to run.
    fn assert_backends(&self) {
        for i in self.up() {
            assert_eq!(
                backend_of(self.metrics[i]),
                self.backends[i],
                "node{} runs the wrong backend",
                i + 1
            );
        }
    }

    /// The backends of a signer set, for messages.
    fn describe(&self, set: &[usize]) -> String {
        set.iter()
            .map(|&i| format!("node{}={}", i + 1, self.backends[i]))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Signs `message` with `key` asking exactly the nodes of `set` (the others held back), checks the signature with
/// the independent verifier and that exactly `set` answered.
fn sign_with_set(
    lab: &Lab,
    cluster: &BlockingCluster,
    key: KeyId,
    algorithm: Algorithm,
    operations: &[&str],
    set: &[usize],
    message: &[u8],
) {
    let signers = lab.signers(operations, &key, || {
        let mech = common::mechanism(algorithm, message);
        let sig = common::sign_asking_first(cluster, key, mech.clone(), set)
            .unwrap_or_else(|e| panic!("{algorithm:?} with {}: {e}", lab.describe(set)));
        verify(cluster, key, &mech, &sig.bytes)
            .unwrap_or_else(|e| panic!("{algorithm:?} with {}: does not verify: {e}", lab.describe(set)));
    });
    assert_eq!(signers, set, "{algorithm:?}: asked {}", lab.describe(set));
    eprintln!("{algorithm:?} signed by {}", lab.describe(set));
}

/// Waits (bounded) until the coordinator is connected to every running node and to no other.
fn settle(lab: &Lab, cluster: &BlockingCluster) {
    let up = lab.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        cluster.connect(Duration::from_millis(100));
        let connected: Vec<usize> = (0..lab.nodes.len())
            .filter(|&i| cluster.health()[i].connected)
            .collect();
        if connected == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "coordinator connected to {connected:?}, nodes up {up:?}"
        );
    }
}

/// The independent verifier of the key's algorithm.
fn verify(
    cluster: &BlockingCluster,
    key: KeyId,
    mech: &tcrypto_net::transport::wire::Mechanism,
    sig: &[u8],
) -> Result<(), String> {
    match cluster.public_key(&key).unwrap() {
        tcrypto_net::algo::PublicKey::Rsa(pk) => common::rsa_crate_verifies(&pk, mech, sig),
        other => common::ec_verifies(&other, mech, sig),
    }
}

/// Signs ECDSA digests of `tag` until one is made on the path asked for (`fast`: a presignature; else DKLs23),
/// checking each with `p256`; returns the nodes that answered that signature's `operations`.
fn sign_ecdsa_until(lab: &Lab, cluster: &BlockingCluster, key: KeyId, fast: bool, tag: &str) -> Vec<usize> {
    let operations: &[&str] = if fast { &["ecdsa-sign"] } else { &["dkls-sign"] };
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0u32.. {
        let before = cluster.ecdsa_signatures_by_path();
        let signers = lab.signers(operations, &key, || {
            let msg = format!("{tag} {i}");
            common::sign_verified(cluster, key, Algorithm::EcdsaP256, msg.as_bytes());
        });
        let after = cluster.ecdsa_signatures_by_path();
        let on_path = if fast {
            after.0 > before.0
        } else {
            after.1 > before.1
        };
        if on_path {
            eprintln!("ECDSA ({tag}) signed by {}", lab.describe(&signers));
            return signers;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: no ECDSA signature on the {} path",
            if fast { "presignature" } else { "DKLs23" }
        );
        if fast {
            // The pool fills in the background.
            cluster.connect(Duration::from_millis(100));
        }
    }
    unreachable!()
}

#[test]
fn nodes_on_pure_rust_and_openssl_arithmetic_sign_together_in_every_mix() {
    let started = Instant::now();
    let dir = common::scratch("mixed-backends");
    let identity = TlsIdentity::generate("coordinator").unwrap();
    // node1, node2: pure Rust; node3, node4: OpenSSL by configuration; node5: the build's default (OpenSSL).
    let asked: [Option<&str>; 5] = [Some(PURE), Some(PURE), Some(OPENSSL), Some(OPENSSL), None];
    let mut nodes: Vec<NodeProc> = (0..5).map(|i| common::node_proc(&dir, i, &identity)).collect();
    let mut metrics = Vec::new();
    for (node, arithmetic) in nodes.iter().zip(asked) {
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut lines = format!("metrics_listen = \"{addr}\"\n");
        if let Some(a) = arithmetic {
            lines.push_str(&format!("arithmetic = \"{a}\"\n"));
        }
        let text = std::fs::read_to_string(&node.config).unwrap();
        std::fs::write(
            &node.config,
            text.replacen("data_dir =", &format!("{lines}data_dir ="), 1),
        )
        .unwrap();
        metrics.push(addr);
    }
    common::testing::pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let mut lab = Lab {
        nodes,
        metrics,
        backends: asked.map(|a| a.unwrap_or(OPENSSL)).to_vec(),
    };
    lab.assert_backends();

    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(3),
        // Ed25519 sessions are made per signature, so the nodes a signature asks are its signers.
        frost_low_watermark: 0,
        frost_high_watermark: 0,
        // A small ECDSA pool: the presignature path soon, and soon used up when nodes go down.
        presign_low_watermark: 2,
        presign_high_watermark: 4,
        ..CoordinatorConfig::default()
    };
    let addrs: Vec<_> = lab.nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cluster = BlockingCluster::connect_tls(&identity, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);

    // Keys: RSA-2048 dealt from fixture primes; P-256 and Ed25519 by DKG among all five, both backends.
    let (pk, shares) = common::rsa_key(1024, 3, 5, 19);
    let rsa = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    let ecdsa = cluster.create_key(Algorithm::EcdsaP256, 3).unwrap();
    let ed25519 = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    eprintln!("setup (5 nodes, 3 keys): {:?}", started.elapsed());

    let rsa_ops: &[&str] = &["sign", "sign-optimistic"];
    let frost_ops: &[&str] = &["frost-sign"];
    // RSA and Ed25519 signed by exactly `set` (the other nodes held back), each checked by its own crate.
    let sign_rsa_and_ed25519 = |lab: &Lab, set: &[usize], msg: &[u8]| {
        sign_with_set(lab, &cluster, rsa, Algorithm::Rsa, rsa_ops, set, msg);
        sign_with_set(lab, &cluster, ed25519, Algorithm::Ed25519, frost_ops, set, msg);
    };
    let sets: [(&str, &[usize]); 3] = [
        ("mixed", &[0, 2, 4]),
        ("mixed", &[1, 2, 3]),
        ("all openssl", &[2, 3, 4]),
    ];
    for (what, set) in sets {
        let msg = format!("all up, {what} {set:?}");
        sign_rsa_and_ed25519(&lab, set, msg.as_bytes());
    }

    // ECDSA, all five up: the presignature path, whose presigning ran on all five nodes (both backends).
    let signers = sign_ecdsa_until(&lab, &cluster, ecdsa, true, "presignature path");
    assert!(signers.len() >= 3, "{signers:?}");
    let presigned = lab.counts(&["presign-round"], &ecdsa);
    assert!(
        presigned.iter().all(|&c| c > 0.0),
        "not every node presigned: {presigned:?}"
    );
    eprintln!("all up, presignature path: {:?}", started.elapsed());

    // node1 and node2 (pure Rust) killed: DKLs23 and the others on node3-5, all OpenSSL.
    lab.nodes[0].kill();
    lab.nodes[1].kill();
    settle(&lab, &cluster);
    let all_openssl = sign_ecdsa_until(&lab, &cluster, ecdsa, false, "DKLs23 all openssl");
    assert_eq!(all_openssl, [2, 3, 4]);
    sign_rsa_and_ed25519(&lab, &[2, 3, 4], b"2 down, openssl");
    eprintln!("node1, node2 down (all OpenSSL): {:?}", started.elapsed());

    // They return, node4 and node5 go: node1-3, pure, pure, OpenSSL.
    lab.nodes[0].start();
    lab.nodes[1].start();
    lab.nodes[3].kill();
    lab.nodes[4].kill();
    lab.assert_backends();
    settle(&lab, &cluster);
    let mixed = sign_ecdsa_until(&lab, &cluster, ecdsa, false, "DKLs23 mixed");
    assert_eq!(mixed, [0, 1, 2]);
    sign_rsa_and_ed25519(&lab, &[0, 1, 2], b"2 down, mixed");
    eprintln!("node4, node5 down (mixed): {:?}", started.elapsed());

    // node3 restarted on pure Rust by `--arithmetic`, over its configuration's "openssl": node1-3 all pure Rust.
    lab.nodes[2].kill();
    let node3 = &mut lab.nodes[2];
    let mut child = Command::new(&node3.bin)
        .args([
            "serve",
            "--config",
            node3.config.to_str().unwrap(),
            "--arithmetic",
            PURE,
        ])
        .env("TCRYPTO_NODE_PASSPHRASE", &node3.passphrase)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    node3.child = Some(child);
    let banner = loop {
        let line = lines.next().expect("node3 ended before listening").unwrap();
        if line.contains("listening on") {
            break line;
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    assert!(banner.ends_with("(arithmetic: pure-rust)"), "{banner}");
    lab.backends[2] = PURE;
    lab.assert_backends();
    settle(&lab, &cluster);
    let all_pure = sign_ecdsa_until(&lab, &cluster, ecdsa, false, "DKLs23 all pure");
    assert_eq!(all_pure, [0, 1, 2]);
    sign_rsa_and_ed25519(&lab, &[0, 1, 2], b"2 down, pure");
    eprintln!(
        "node4, node5 down, node3 on pure Rust (all pure): {:?}",
        started.elapsed()
    );
}

#[test]
fn version_names_the_backends_of_the_build_and_an_unknown_one_is_refused_by_name() {
    let bin = env!("CARGO_BIN_EXE_tcrypto-node");
    let out = common::run_ok(Command::new(bin).arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("arithmetic backends: pure-rust, openssl (default: openssl)"),
        "{text}"
    );
    let dir = common::scratch("mixed-backends-refusal");
    let identity = TlsIdentity::generate("coordinator").unwrap();
    let node = common::node_proc(&dir, 0, &identity);
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, format!("arithmetic = \"gmp\"\n{text}")).unwrap();
    let out = Command::new(bin)
        .args(["serve", "--config", node.config.to_str().unwrap()])
        .env("TCRYPTO_NODE_PASSPHRASE", &node.passphrase)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("node1.toml") && err.contains("arithmetic") && err.contains("\"gmp\""),
        "{err}"
    );
    let out = Command::new(bin)
        .args([
            "serve",
            "--config",
            node.config.to_str().unwrap(),
            "--arithmetic",
            "gmp",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--arithmetic"));
}
