//! Byzantine nodes over the real transport: seven `tcrypto-node` processes (127.0.0.x, mutual TLS), two of which
//! are restarted in the test build's misbehaving mode (`TCRYPTO_NODE_MISBEHAVE`, see `tcrypto_net::node::misbehave`):
//! they corrupt signature shares, replay old answers, answer after the coordinator gave up, forge public key sets
//! and claim signer ids they do not hold. With 3-of-7 keys of all three algorithms, every signature the coordinator
//! releases verifies with an independent verifier, the share-corrupting and replaying nodes are named, and a fresh
//! coordinator that learns the keys from the nodes' listings registers the true public key sets and holders.
#![cfg(feature = "test-support")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::NodeProc;
use tcrypto::{KeyId, SignerId};
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::Engine as _;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::{CoordinatorConfig, NodeIndex};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Algorithm;

const N: usize = 7;
const K: u16 = 3;

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        frost_low_watermark: 16,
        frost_high_watermark: 48,
        presign_low_watermark: 16,
        presign_high_watermark: 48,
        ..CoordinatorConfig::default()
    }
}

fn connect(coordinator: &TlsIdentity, nodes: &[NodeProc]) -> BlockingCluster {
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cluster = BlockingCluster::connect_tls(coordinator, &addrs, config()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), N);
    cluster
}

/// Signs `count` messages with each key, all in flight at once; every signature must verify.
fn sign_all(cluster: &BlockingCluster, keys: &[(KeyId, Algorithm)], tag: &str, count: usize) {
    let mut reqs = Vec::new();
    for i in 0..count {
        let message = format!("{tag} message {i}").into_bytes();
        for &(key, algorithm) in keys {
            reqs.push((key, common::mechanism(algorithm, &message)));
        }
    }
    let ops = cluster.start_signs(&reqs);
    for ((key, mech), op) in reqs.iter().zip(ops) {
        let sig = cluster
            .wait_signature(op)
            .unwrap_or_else(|e| panic!("{tag}: signature with {key} failed: {e}"));
        let verified = match cluster.public_key(key).unwrap() {
            PublicKey::Rsa(pk) => common::rsa_crate_verifies(&pk, mech, &sig.bytes),
            public => common::ec_verifies(&public, mech, &sig.bytes),
        };
        verified.unwrap_or_else(|e| panic!("{tag}: an invalid signature was released for {key}: {e}"));
    }
}

/// What a coordinator holds for a key: its threshold, its public key set and which node holds which share.
fn registered(cluster: &BlockingCluster, key: KeyId) -> (u16, String, BTreeMap<SignerId, NodeIndex>) {
    let holders = cluster
        .engine()
        .submit(|c, _, _| c.keys())
        .into_iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, _, holders)| holders)
        .unwrap_or_else(|| panic!("{key} not registered"));
    let (threshold, set) = match cluster.public_key(&key).unwrap() {
        PublicKey::Rsa(pk) => (pk.threshold(), format!("{:?}", pk.key_id())),
        PublicKey::Ecdsa(pk) => (pk.set.threshold(), format!("{:?}", pk.set.public_shares())),
        PublicKey::Ed25519(pk) => (pk.threshold(), format!("{:?}", pk.as_dkg().public_shares())),
        other => panic!("unexpected key {other:?}"),
    };
    (threshold, set, holders)
}

fn restart_misbehaving(node: &mut NodeProc, modes: &str) {
    node.kill();
    node.misbehave = Some(modes.to_string());
    node.start();
}

#[test]
fn two_byzantine_nodes_of_seven_never_make_the_coordinator_release_an_invalid_signature() {
    let dir = common::scratch("byzantine");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..N).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    common::testing::pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }

    // Keys are made while every node is honest: Ed25519 and ECDSA by DKG, RSA by importing fixture shares.
    let cluster = connect(&coordinator, &nodes);
    let ed = cluster.create_key(Algorithm::Ed25519, K).unwrap();
    let ec = cluster.create_key(Algorithm::EcdsaP256, K).unwrap();
    let (pk, shares) = common::rsa_key(1024, K, N as u16, 7);
    let rsa = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    let keys = [
        (rsa, Algorithm::Rsa),
        (ec, Algorithm::EcdsaP256),
        (ed, Algorithm::Ed25519),
    ];
    let truth: Vec<_> = keys.iter().map(|(k, _)| registered(&cluster, *k)).collect();
    sign_all(&cluster, &keys, "honest", 8);
    drop(cluster);

    // Phase 1: node 6 corrupts every share it sends, node 7 replays its previous share under each new request.
    restart_misbehaving(&mut nodes[5], "corrupt-shares");
    restart_misbehaving(&mut nodes[6], "replay");
    let cluster = connect(&coordinator, &nodes);
    assert_eq!(cluster.refresh_keys().unwrap().len(), 3);
    sign_all(&cluster, &keys, "corrupt", 40);
    let named: Vec<NodeIndex> = cluster.culprits().into_iter().map(|(node, ..)| node).collect();
    assert!(named.contains(&5), "share-corrupting node not named: {named:?}");
    assert!(named.contains(&6), "replaying node not named: {named:?}");
    assert!(
        named.iter().all(|n| *n >= 5),
        "an honest node was named: {named:?}"
    );
    drop(cluster);

    // Phase 2: node 6 forges public key sets (threshold 1, same group key), node 7 forges and also claims the next
    // party's signer id, and answers only after the coordinator has given up on it. A fresh coordinator learns the
    // keys from the listings: it must register the true sets and holders, and sign.
    restart_misbehaving(&mut nodes[5], "forge-keys");
    restart_misbehaving(&mut nodes[6], "forge-keys,steal-signer,late:6000");
    let cluster = connect(&coordinator, &nodes);
    let mut learned = cluster.refresh_keys().unwrap();
    learned.sort();
    let mut want: Vec<KeyId> = keys.iter().map(|(k, _)| *k).collect();
    want.sort();
    assert_eq!(learned, want);
    for ((key, _), expected) in keys.iter().zip(&truth) {
        let (threshold, set, holders) = registered(&cluster, *key);
        assert_eq!(
            (threshold, &set),
            (expected.0, &expected.1),
            "forged set registered for {key}"
        );
        for (signer, node) in &holders {
            assert_eq!(
                expected.2.get(signer),
                Some(node),
                "{key}: signer {signer:?} mapped to the wrong node"
            );
        }
        assert!(holders.len() >= usize::from(K));
    }
    sign_all(&cluster, &keys, "forged listings", 24);

    // Phase 3: node 6 forges and steals a signer id, node 7 forges only, and only two honest nodes are up: fewer than
    // k honest holders, so no signature can come out, and a set of threshold k can only be the true one.
    restart_misbehaving(&mut nodes[5], "forge-keys,steal-signer");
    restart_misbehaving(&mut nodes[6], "forge-keys");
    for n in &mut nodes[2..5] {
        n.kill();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, config()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 4);
    cluster.refresh_keys().unwrap();
    for ((key, algorithm), expected) in keys.into_iter().zip(&truth) {
        if cluster.public_key(&key).is_some() {
            // A set of threshold k can only come from a claim at least one honest node makes: it is the true one.
            // A liar's set (threshold 1) may be registered, but nothing the liars sign verifies under the group key.
            let (threshold, set, _) = registered(&cluster, key);
            assert!(
                threshold < K || (threshold, &set) == (expected.0, &expected.1),
                "{algorithm:?}: a forged set of threshold {threshold} was registered"
            );
            let mech = common::mechanism(algorithm, b"only liars and two honest nodes");
            assert!(
                cluster.sign(key, mech).is_err(),
                "{algorithm:?} signed without k honest holders"
            );
        }
    }
}

/// An imported `openssl genrsa 2048` key (ordinary primes: shares without proofs) on five `tcrypto-node` processes,
/// 3-of-5. Byzantine nodes that corrupt every share are asked first: the coordinator keeps the shares it has, asks
/// one more holder at a time, and the combiner's subset search names the corrupting nodes by elimination; the
/// signature verifies under the original key (`rsa` crate and openssl).
#[test]
fn byzantine_nodes_are_named_while_an_imported_ordinary_rsa_key_signs() {
    let dir = common::scratch("byzantine-ordinary");
    let (key_file, public_file) = common::openssl_genrsa(&dir, "imported", 2048);
    let key = tcrypto::import::parse(&std::fs::read(&key_file).unwrap()).unwrap();
    let tcrypto::import::SplitKey::Rsa { public, shares } = tcrypto::import::split(
        key,
        3,
        5,
        &tcrypto::rsa::SplitOptions::default(),
        &mut rand::rng(),
    )
    .unwrap() else {
        panic!("an RSA key did not split as RSA");
    };
    assert!(public.is_ordinary(), "openssl's primes are not safe primes");

    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..5).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    nodes[0].misbehave = Some("corrupt-shares".into());
    for n in &mut nodes {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let connect = || {
        let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, config()).unwrap();
        assert_eq!(cluster.connect(Duration::from_secs(20)), 5);
        cluster
    };
    let cluster = connect();
    let key = cluster
        .import_rsa_shares(&public, &shares, &mut rand::rng())
        .unwrap();
    drop(shares);

    let sign_checked = |cluster: &BlockingCluster, message: &[u8], first: &[usize]| {
        let mech = common::pkcs1_sha256(message);
        let sig = common::sign_asking_first(cluster, key, mech.clone(), first).unwrap();
        common::rsa_crate_verifies(&public, &mech, &sig.bytes).unwrap();
        common::openssl_verifies_sha256(&dir, &public_file, message, &sig.bytes);
        sig
    };

    // One bad share among the first three: the fourth share makes a verifying subset without node1.
    let sig = sign_checked(&cluster, b"one Byzantine node of five", &[0, 1, 2]);
    assert_eq!(sig.culprits, ["node1"]);
    let named: Vec<NodeIndex> = cluster.culprits().into_iter().map(|(n, ..)| n).collect();
    assert_eq!(named, [0]);
    assert!(
        cluster.health()[0].excluded.is_some(),
        "the culprit is still asked"
    );
    let metrics = tcrypto_net::metrics::coordinator_metrics(&cluster);
    assert!(
        metrics.contains("tcrypto_coordinator_node_excluded{node=\"node1\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tcrypto_coordinator_node_excluded{node=\"node2\"} 0"),
        "{metrics}"
    );
    // Excluded, node1 is no longer asked: the next signature has no culprit.
    assert!(
        sign_checked(&cluster, b"after the exclusion", &[1, 2, 3])
            .culprits
            .is_empty()
    );
    drop(cluster);

    // Two bad shares among the first three (a fresh coordinator, which has excluded nobody): two more holders are
    // asked one after the other before a subset of three honest shares exists, and both liars are named.
    restart_misbehaving(&mut nodes[1], "corrupt-shares");
    let cluster = connect();
    cluster.refresh_keys().unwrap();
    let mut named = sign_checked(&cluster, b"two Byzantine nodes of five", &[0, 1, 2]).culprits;
    named.sort();
    assert_eq!(named, ["node1", "node2"]);
    drop(cluster);

    // Three liars of five: fewer than k honest holders, so nothing is released, nobody can be told apart from the
    // others, and the error says why.
    restart_misbehaving(&mut nodes[2], "corrupt-shares");
    let cluster = connect();
    cluster.refresh_keys().unwrap();
    let err = cluster
        .sign(key, common::pkcs1_sha256(b"three Byzantine nodes of five"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("combine"), "{err}");
    assert!(
        cluster.culprits().is_empty(),
        "somebody was named without evidence"
    );
}
