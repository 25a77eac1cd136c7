//! The daemon's life under a service manager: SIGTERM during a signing stream stops it gracefully (requests it read
//! are answered, the rest go to other nodes: every request gets exactly one valid signature, the process exits 0
//! and restarts cleanly); SIGHUP reloads the coordinator pins without dropping the connections of coordinators
//! that stay pinned, admits a newly pinned one and cuts off one that is no longer pinned.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NodeProc, pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{RequestBody, ResponseBody};

fn signal(node: &NodeProc, sig: &str) {
    let pid = node.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

/// Waits for the node's process to exit by itself; its exit status.
fn wait_exit(node: &mut NodeProc, within: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + within;
    let child = node.child.as_mut().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            node.child = None;
            return status;
        }
        assert!(Instant::now() < end, "the node did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_during_a_signing_stream_loses_nothing_and_the_node_exits_cleanly() {
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        ..CoordinatorConfig::default()
    };
    let (mut nodes, cluster, _) = common::pinned_cluster("lifecycle-term", 5, cfg);
    let (pk, shares) = rsa_key(1024, 3, 5, 31);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    for round in 0..2u32 {
        let reqs: Vec<_> = (0..200u32)
            .map(|i| (key, pkcs1_sha256(&(round * 1_000 + i).to_be_bytes())))
            .collect();
        let ops = cluster.start_signs(&reqs);
        signal(&nodes[round as usize], "-TERM");
        for ((_, m), op) in reqs.iter().zip(ops) {
            let sig = cluster
                .wait_signature(op)
                .unwrap_or_else(|e| panic!("a request was lost: {e}"));
            rsa_crate_verifies(&pk, m, &sig.bytes).unwrap();
        }
        // It stopped by itself, through its own shutdown path (a signal death has no exit code).
        let status = wait_exit(&mut nodes[round as usize], Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "{status:?}");
        assert!(!nodes[round as usize].data.join("tcrypto-node.pid").exists());
    }
    // Both restart cleanly and serve again; their audit logs verify.
    for n in &mut nodes[..2] {
        n.start();
    }
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);
    nodes[2].kill();
    nodes[3].kill();
    let m = pkcs1_sha256(b"after the restart");
    let sig = cluster.sign(key, m.clone()).unwrap();
    rsa_crate_verifies(&pk, &m, &sig.bytes).unwrap();
    for n in &nodes[..2] {
        let out = Command::new(&n.bin)
            .args(["audit", "verify", "--config", n.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn sighup_reloads_the_coordinator_pins_without_dropping_connections() {
    let dir = common::scratch("lifecycle-hup");
    let first = TlsIdentity::generate("first").unwrap();
    let second = TlsIdentity::generate("second").unwrap();
    let mut node = common::node_proc(&dir, 0, &first);
    node.start();
    let addrs = vec![(node.addr, node.public.clone())];
    let cfg = || CoordinatorConfig {
        request_timeout: Duration::from_secs(3),
        ..CoordinatorConfig::default()
    };
    let ping = |c: &BlockingCluster| matches!(c.request(0, RequestBody::Ping), Ok(ResponseBody::Pong { .. }));
    let a = BlockingCluster::connect_tls(&first, &addrs, cfg()).unwrap();
    assert_eq!(a.connect(Duration::from_secs(10)), 1);
    assert!(ping(&a));
    let b = BlockingCluster::connect_tls(&second, &addrs, cfg()).unwrap();
    // (TLS 1.3: the client may count the connection up before the node's refusal of its certificate arrives.)
    b.connect(Duration::from_secs(2));
    assert!(!ping(&b), "not pinned yet");

    // Pin the second coordinator too, and SIGHUP.
    let text = std::fs::read_to_string(&node.config).unwrap();
    let both = format!(
        "{text}\n[[coordinators]]\nname = \"second\"\nspki_sha256 = \"{}\"\n",
        second.fingerprint()
    );
    std::fs::write(&node.config, &both).unwrap();
    signal(&node, "-HUP");
    let end = Instant::now() + Duration::from_secs(20);
    while !ping(&b) {
        assert!(
            Instant::now() < end,
            "the newly pinned coordinator was not admitted"
        );
        b.connect(Duration::from_millis(500));
    }
    // The first one's connection was never dropped.
    assert!(ping(&a));
    assert_eq!(a.health()[0].failed, 0, "{:?}", a.health()[0]);

    // Unpin the first: its open connection is closed and it cannot come back.
    std::fs::write(
        &node.config,
        both.replacen(&first.fingerprint().to_string(), &"00".repeat(32), 1),
    )
    .unwrap();
    signal(&node, "-HUP");
    let end = Instant::now() + Duration::from_secs(20);
    while ping(&a) {
        assert!(
            Instant::now() < end,
            "the unpinned coordinator still signs requests"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    a.connect(Duration::from_secs(2));
    assert!(!ping(&a));
    assert!(ping(&b));
}
