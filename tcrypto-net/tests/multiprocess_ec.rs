//! ECDSA P-256 and Ed25519 keys on five `tcrypto-node` processes (127.0.0.x, mutual TLS): keys created by DKG
//! with two nodes down, shares delivered when they come back, signing streams while `n - k` nodes are killed,
//! restarted nodes rejoining; every signature checked by `p256` / `ed25519-dalek`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::NodeProc;
use sha2::Digest as _;
use tcrypto::KeyId;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism};

/// Signs 32 requests in flight for each key; `during` runs while they are in flight. Every signature verifies.
fn stream(cluster: &BlockingCluster, ec: KeyId, ed: KeyId, from: u32, during: impl FnOnce()) {
    let mut reqs = Vec::new();
    for i in from..from + 32 {
        let message = format!("message {i}").into_bytes();
        reqs.push((
            ec,
            Mechanism::Ecdsa {
                digest: sha2::Sha256::digest(&message).to_vec(),
            },
        ));
        reqs.push((ed, Mechanism::Ed25519 { message }));
    }
    let ops = cluster.start_signs(&reqs);
    during();
    for ((key, mech), op) in reqs.iter().zip(ops) {
        let sig = cluster
            .wait_signature(op)
            .unwrap_or_else(|e| panic!("in-flight request failed: {e}"));
        common::ec_verifies(&cluster.public_key(key).unwrap(), mech, &sig.bytes).unwrap();
    }
}

/// Drives the cluster until the ECDSA presignature pool of `key` holds at least `want` (refilled in the background
/// while the coordinator is driven).
fn wait_for_pool(cluster: &BlockingCluster, key: KeyId, want: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while cluster.presignature_pool_len(&key) < want {
        assert!(
            std::time::Instant::now() < deadline,
            "presignature pool stuck at {}",
            cluster.presignature_pool_len(&key)
        );
        // One round of driving that waits for socket events (health() would ping every node in a busy loop:
        // hundreds of thousands of audited pings per run).
        cluster.connect(Duration::from_millis(20));
    }
}

#[test]
fn ec_keys_are_created_with_n_minus_k_nodes_down_and_sign_while_nodes_are_killed_and_restarted() {
    let dir = common::scratch("multiprocess-ec");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..5).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    common::testing::pin_peers(&nodes);
    for n in &mut nodes[..3] {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(3),
        // A signature spends one presignature even when a member dies mid-flight (another member of the same
        // presignature is asked), and no refill is possible while 2 are down: 96 cover the streams below.
        presign_low_watermark: 96,
        presign_high_watermark: 128,
        ..CoordinatorConfig::default()
    };
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(5)), 3);

    // Two of five nodes are down: the three others deal; the absent two get their shares when they return.
    let ed = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    let ec = cluster.create_key(Algorithm::EcdsaP256, 3).unwrap();
    let mut expected = vec![ed, ec];
    expected.sort();
    let mut pending = cluster.pending_deliveries(3);
    pending.sort();
    assert_eq!(pending, expected);
    nodes[3].start();
    nodes[4].start();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);
    for _ in 0..50 {
        if cluster.pending_deliveries(3).is_empty() && cluster.pending_deliveries(4).is_empty() {
            break;
        }
        cluster.connect(Duration::from_millis(20));
    }
    assert!(cluster.pending_deliveries(3).is_empty() && cluster.pending_deliveries(4).is_empty());

    stream(&cluster, ec, ed, 0, || {});
    // Presigning needs all 2k-1 = 5 nodes, so with two of them down ECDSA signs from the pool only: let it hold at
    // least the low watermark (then no presigning run is in flight: a run adds its whole batch at once) before
    // nodes are killed. A run that the streams start before the kill is cut short by it and adds nothing.
    wait_for_pool(&cluster, ec, 96);
    let before = cluster.presignature_pool_len(&ec);
    // Kill two nodes while 64 requests are in flight.
    stream(&cluster, ec, ed, 100, || {
        nodes[0].kill();
        nodes[1].kill();
    });
    stream(&cluster, ec, ed, 200, || {});
    // 64 ECDSA signatures, members killed under some of them: 64 presignatures spent, not one more.
    assert_eq!(cluster.presignature_pool_len(&ec), before - 64);
    // Restart them: they rejoin by themselves, with their shares and unspent presignatures from disk.
    nodes[0].start();
    nodes[1].start();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 5);
    stream(&cluster, ec, ed, 250, || {});
    wait_for_pool(&cluster, ec, 96);
    let before = cluster.presignature_pool_len(&ec);
    stream(&cluster, ec, ed, 300, || {
        nodes[2].kill();
        nodes[4].kill();
    });
    stream(&cluster, ec, ed, 400, || {});
    assert_eq!(cluster.presignature_pool_len(&ec), before - 64);

    let audit = std::fs::read_to_string(nodes[3].data.join("audit.log")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("op=dkg-deliver") && l.contains("outcome=ok")),
        "{audit}"
    );
    let spent = std::fs::metadata(nodes[0].data.join("spent-presignatures.log")).unwrap();
    // A 40-byte header (magic, epoch, tag), then 52-byte records (run, index, chained tag) since its last start.
    assert!(spent.len() > 40 && (spent.len() - 40).is_multiple_of(52));
}
