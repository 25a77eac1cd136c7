//! Resharing keys through the cluster (in-memory transport, `tcrypto_net::coordinator::reshare`): for each
//! algorithm a chain 3-of-5 -> 4-of-7 -> 2-of-3 -> three refreshes -> 3-of-5 over seven nodes, a signature after
//! every step checked by an independent verifier (`rsa`, `p256`, `ed25519-dalek`), the public key byte-identical
//! throughout, nodes left out holding nothing of the key, and a failed test signature (a new holder that lies)
//! rolling the reshare back with the old sharing still signing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use tcrypto::KeyId;
use tcrypto_net::algo;
use tcrypto_net::client::memory::MemoryEngine;
use tcrypto_net::client::{Cluster, Engine as _};
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::wire::{Algorithm, RequestBody, ResponseBody};

fn cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        frost_low_watermark: 2,
        frost_high_watermark: 4,
        ..CoordinatorConfig::default()
    }
}

fn cluster(n: usize) -> Cluster<MemoryEngine> {
    let (nodes, publics) = common::memory_nodes(n);
    Cluster::new(MemoryEngine::new(nodes, cfg()), publics)
}

/// A 3-of-5 key of `algorithm` on nodes 0..5 of `c` (dealt: RSA from the committed 384-bit safe primes).
fn import_3_of_5(c: &Cluster<MemoryEngine>, algorithm: Algorithm, seed: u64) -> KeyId {
    c.import_key(
        common::dealt_bundles(algorithm, 3, 5, seed),
        &mut common::rng(seed),
    )
    .unwrap()
}

/// Signs `message` with the cluster and checks the signature with an independent verifier under `spki` (the
/// public key before any reshare).
fn sign_checked(c: &Cluster<MemoryEngine>, key: KeyId, algorithm: Algorithm, spki: &[u8], message: &[u8]) {
    let public = common::sign_verified(c, key, algorithm, message);
    assert_eq!(public.to_spki_der().unwrap(), spki, "the public key changed");
}

/// What node `i` holds of `key`: (served epoch, signer id) or none.
fn held(c: &Cluster<MemoryEngine>, i: usize, key: KeyId) -> Option<(u64, u16)> {
    match c.request(i, RequestBody::ReshareStatus { key }).unwrap() {
        ResponseBody::ReshareStatus(s) => {
            assert!(s.pending.is_none(), "node {i} keeps a pending share");
            s.active.map(|(e, info)| (e, info.signer.get()))
        }
        other => panic!("{other:?}"),
    }
}

fn assert_holders(c: &Cluster<MemoryEngine>, key: KeyId, epoch: u64, holders: &[usize], k: u16) {
    for i in 0..7 {
        let h = held(c, i, key);
        match holders.iter().position(|n| *n == i) {
            Some(j) => assert_eq!(h, Some((epoch, u16::try_from(j + 1).unwrap())), "node {i}"),
            None => assert_eq!(h, None, "node {i} still holds a share"),
        }
    }
    let pk = c.public_key(&key).unwrap();
    let threshold = match &pk {
        algo::PublicKey::Rsa(p) => p.threshold(),
        algo::PublicKey::Ecdsa(p) => p.set.threshold(),
        algo::PublicKey::Ed25519(p) => p.threshold(),
        _ => unreachable!(),
    };
    assert_eq!(threshold, k);
}

/// The chain of the issue. `small` and `last` are the node sets of the 2-of-3 and the final 3-of-5 sharings.
fn chain(algorithm: Algorithm, seed: u64, small: [usize; 3], last: [usize; 5]) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RESHARE_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let c = cluster(7);
    let key = import_3_of_5(&c, algorithm, seed);
    let spki = c.public_key(&key).unwrap().to_spki_der().unwrap();
    sign_checked(&c, key, algorithm, &spki, b"before");

    let out = c.reshare(key, &[0, 1, 2, 3, 4, 5, 6], 4).unwrap();
    assert_eq!(out.epoch, 1);
    assert_holders(&c, key, 1, &[0, 1, 2, 3, 4, 5, 6], 4);
    sign_checked(&c, key, algorithm, &spki, b"after 4-of-7");

    c.reshare(key, &small, 2).unwrap();
    assert_holders(&c, key, 2, &small, 2);
    sign_checked(&c, key, algorithm, &spki, b"after 2-of-3");

    for r in 0..3u64 {
        let out = c.refresh(key).unwrap();
        assert_eq!(out.epoch, 3 + r);
        assert_holders(&c, key, 3 + r, &small, 2);
        sign_checked(&c, key, algorithm, &spki, format!("after refresh {r}").as_bytes());
    }

    c.reshare(key, &last, 3).unwrap();
    assert_holders(&c, key, 6, &last, 3);
    sign_checked(&c, key, algorithm, &spki, b"after 3-of-5");
    // Only `k` of the new holders up: ECDSA cannot presign (2k - 1 needed) and signs with DKLs23, whose pair
    // states two nodes set up once serve every id a reshare gave them.
    for down in &last[..2] {
        c.engine().set_up(*down, false);
    }
    sign_checked(&c, key, algorithm, &spki, b"after 3-of-5, two holders down");
    if algorithm == Algorithm::EcdsaP256 {
        assert!(c.ecdsa_signatures_by_path().1 >= 1, "no DKLs23 signature");
    }
    for down in &last[..2] {
        c.engine().set_up(*down, true);
    }
    // The key keeps its name: it is the only key the nodes list.
    assert_eq!(c.refresh_keys().unwrap(), vec![key]);
    assert_eq!(c.list(), vec![key]);
}

#[test]
fn rsa_key_survives_a_chain_of_reshares_with_the_same_public_key() {
    chain(Algorithm::Rsa, 14, [4, 5, 6], [1, 2, 3, 5, 6]);
}

#[test]
fn ecdsa_key_survives_a_chain_of_reshares_with_the_same_public_key() {
    // Signer ids move to other nodes ([4, 5, 6] get ids 1..3): DKLs23 relabels the nodes' pair states.
    chain(Algorithm::EcdsaP256, 15, [4, 5, 6], [1, 2, 3, 5, 6]);
}

#[test]
fn ed25519_key_survives_a_chain_of_reshares_with_the_same_public_key() {
    chain(Algorithm::Ed25519, 16, [4, 5, 6], [1, 2, 3, 5, 6]);
}

#[test]
fn a_reshare_to_an_unreachable_node_is_refused_and_the_old_sharing_signs() {
    let c = cluster(7);
    let key = import_3_of_5(&c, Algorithm::Ed25519, 17);
    let spki = c.public_key(&key).unwrap().to_spki_der().unwrap();
    c.engine().set_up(6, false);
    let err = c.reshare(key, &[0, 1, 2, 3, 6], 3).unwrap_err().to_string();
    assert!(err.contains("node7"), "{err}");
    c.engine().set_up(6, true);
    assert_holders(&c, key, 0, &[0, 1, 2, 3, 4], 3);
    sign_checked(&c, key, Algorithm::Ed25519, &spki, b"still the old sharing");
}

#[test]
fn nodes_with_a_signing_policy_refresh_a_key_their_policy_names() {
    // The test signature of a reshare runs under the pending sharing's id; a node's policy names the key, and
    // judges the test signature as the key's.
    let (nodes, publics) = common::memory_nodes(5);
    let c = Cluster::new(MemoryEngine::new(nodes.clone(), cfg()), publics);
    let key = import_3_of_5(&c, Algorithm::Ed25519, 18);
    let spki = c.public_key(&key).unwrap().to_spki_der().unwrap();
    let policy = format!("[[key]]\nkey = \"{key}\"\nmechanisms = [\"ed25519\"]\n");
    for n in &nodes {
        n.set_policy(Some(
            tcrypto_net::node::policy::Policy::parse(&policy, std::path::Path::new("policy.toml")).unwrap(),
        ));
    }
    sign_checked(&c, key, Algorithm::Ed25519, &spki, b"under a policy");
    assert_eq!(c.refresh(key).unwrap().epoch, 1);
    for i in 0..5 {
        assert_eq!(
            held(&c, i, key),
            Some((1, u16::try_from(i + 1).unwrap())),
            "node{}",
            i + 1
        );
    }
    sign_checked(&c, key, Algorithm::Ed25519, &spki, b"refreshed under a policy");
}

/// A long-lived coordinator (a PKCS#11 host, a zone signer) keeps signing with a key another coordinator
/// reshared or refreshed under it: it learns the new sharing from the nodes instead of blaming them.
fn signs_after_another_coordinator_reshared(algorithm: Algorithm, seed: u64) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RESHARE_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let (nodes, publics) = common::memory_nodes(7);
    let long_lived = Cluster::new(MemoryEngine::new(nodes.clone(), cfg()), publics.clone());
    let key = import_3_of_5(&long_lived, algorithm, seed);
    let spki = long_lived.public_key(&key).unwrap().to_spki_der().unwrap();
    sign_checked(&long_lived, key, algorithm, &spki, b"before");
    let operator = Cluster::new(MemoryEngine::new(nodes.clone(), cfg()), publics);
    operator.refresh_keys().unwrap();
    operator.refresh(key).unwrap();
    for i in 0..3 {
        sign_checked(
            &long_lived,
            key,
            algorithm,
            &spki,
            format!("after a refresh {i}").as_bytes(),
        );
    }
    operator.reshare(key, &[6, 5, 4, 3, 2], 3).unwrap();
    for i in 0..3 {
        sign_checked(
            &long_lived,
            key,
            algorithm,
            &spki,
            format!("after a reshare {i}").as_bytes(),
        );
    }
    // The same holders with their ids permuted.
    operator.reshare(key, &[2, 3, 4, 5, 6], 3).unwrap();
    for i in 0..3 {
        let message = format!("after ids moved {i}");
        sign_checked(&long_lived, key, algorithm, &spki, message.as_bytes());
    }
    assert_eq!(
        long_lived.culprits(),
        vec![],
        "honest nodes were blamed for a sharing the coordinator did not know"
    );
    assert!(long_lived.health().iter().all(|h| h.excluded.is_none()));
}

#[test]
fn rsa_signs_after_another_coordinator_reshared() {
    signs_after_another_coordinator_reshared(Algorithm::Rsa, 19);
}

#[test]
fn ecdsa_signs_after_another_coordinator_reshared() {
    signs_after_another_coordinator_reshared(Algorithm::EcdsaP256, 20);
}

#[test]
fn ed25519_signs_after_another_coordinator_reshared() {
    signs_after_another_coordinator_reshared(Algorithm::Ed25519, 21);
}

/// A long-lived coordinator learns the sharing another coordinator made when a node it touched reconnects (the
/// node's key list, asked at once, reports another sharing), before any signature fails on it.
fn learns_a_reshare_when_a_node_reconnects(algorithm: Algorithm, seed: u64) {
    let (nodes, publics) = common::memory_nodes(7);
    let long_lived = Cluster::new(MemoryEngine::new(nodes.clone(), cfg()), publics.clone());
    let key = import_3_of_5(&long_lived, algorithm, seed);
    let spki = long_lived.public_key(&key).unwrap().to_spki_der().unwrap();
    sign_checked(&long_lived, key, algorithm, &spki, b"before");
    let operator = Cluster::new(MemoryEngine::new(nodes, cfg()), publics);
    operator.refresh_keys().unwrap();
    operator.reshare(key, &[2, 3, 4, 5, 6], 3).unwrap();
    // node7, a new holder, reconnects to the long-lived coordinator; pings drive it until its key list is in.
    long_lived.engine().set_up(6, false);
    long_lived.engine().set_up(6, true);
    long_lived.health();
    assert_eq!(
        long_lived.settle_suspicions(),
        vec![key],
        "the reconnect raised no check"
    );
    let holders: Vec<usize> = long_lived.engine().submit(|c, _, _| {
        c.keys()
            .into_iter()
            .find(|k| k.0 == key)
            .map(|k| k.2.values().copied().collect())
            .unwrap()
    });
    assert_eq!(holders, vec![2, 3, 4, 5, 6]);
    sign_checked(&long_lived, key, algorithm, &spki, b"after the reconnect");
    assert_eq!(long_lived.culprits(), vec![]);
    assert!(long_lived.health().iter().all(|h| h.excluded.is_none()));
}

#[test]
fn ed25519_sharing_is_learned_when_a_node_reconnects() {
    learns_a_reshare_when_a_node_reconnects(Algorithm::Ed25519, 22);
}

#[test]
fn ecdsa_sharing_is_learned_when_a_node_reconnects() {
    learns_a_reshare_when_a_node_reconnects(Algorithm::EcdsaP256, 23);
}
