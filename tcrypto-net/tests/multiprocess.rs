//! Five `tcrypto-node` processes on 127.0.0.x with mutual TLS: nodes killed during a stream of signatures, then
//! restarted and rejoining without operator action.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;

#[test]
fn killing_n_minus_k_nodes_during_a_stream_loses_no_signature_and_restarted_nodes_rejoin() {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let (mut nodes, addrs) = common::start_node_processes("multiprocess", 5, &coordinator);
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

    // Every node's audit log verifies, those killed with kill -9 mid-stream included (nodes 1 to 4).
    let audit_cmd = |n: &common::NodeProc, args: &[&str]| {
        let out = std::process::Command::new(&n.bin)
            .arg("audit")
            .args(args)
            .args(["--config", n.config.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for n in &nodes {
        let (ok, out) = audit_cmd(n, &["verify"]);
        assert!(ok, "{}: {out}", n.data.display());
        assert!(out.contains(": intact"), "{out}");
    }
    // `audit show` filters by key and outcome.
    let (ok, shown) = audit_cmd(
        &nodes[0],
        &["show", "--key", &key.to_string()[..8], "--outcome", "ok"],
    );
    assert!(ok);
    assert!(shown.lines().count() > 10, "{shown}");
    assert!(
        shown
            .lines()
            .all(|l| l.contains(&format!("key={key}")) && l.contains("outcome=ok")),
        "{shown}"
    );
    // One entry of a stopped node changed: named by file and line.
    let log = nodes[2].data.join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let (line_no, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("op=sign") && l.contains("outcome=ok"))
        .unwrap();
    std::fs::write(
        &log,
        text.replacen(line, &line.replace("outcome=ok", "outcome=error:Internal"), 1),
    )
    .unwrap();
    let (ok, out) = audit_cmd(&nodes[2], &["verify"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("audit.log line {}: entry", line_no + 1)),
        "{out}"
    );
}

#[test]
fn an_idle_coordinator_does_not_count_a_dead_node_as_connected() {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let (mut nodes, addrs) = common::start_node_processes("idle-health", 3, &coordinator);
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 3);
    // The node dies while nobody drives the coordinator.
    nodes[1].kill();
    assert_eq!(cluster.connect(Duration::from_millis(300)), 2);
    let health = cluster.health();
    assert!(!health[1].connected, "{:?}", health[1]);
    assert!(health[0].connected && health[2].connected, "{health:?}");
}
