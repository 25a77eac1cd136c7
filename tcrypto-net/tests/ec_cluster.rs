//! ECDSA P-256 and Ed25519 keys in the cluster (in-memory transport): key creation by DKG relayed through the
//! coordinator (all nodes, and `n - k` nodes down with delivery on return), FROST signing from the nonce pool,
//! every signature checked by `ed25519-dalek`; Byzantine nodes (bad FROST shares, bad DKG envelopes) named and
//! excluded.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use tcrypto::KeyId;
use tcrypto_net::algo::PublicKey;
use tcrypto_net::cluster::{Cluster, Engine};
use tcrypto_net::coordinator::{CoordinatorConfig, Event, SignError};
use tcrypto_net::memory::MemoryEngine;
use tcrypto_net::sealed::Envelope;
use tcrypto_net::wire::{Algorithm, Mechanism, Response, ResponseBody};

fn cluster(n: usize) -> Cluster<MemoryEngine> {
    let (nodes, publics) = common::memory_nodes(n);
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(2),
        frost_low_watermark: 4,
        frost_high_watermark: 16,
        ..CoordinatorConfig::default()
    };
    Cluster::new(MemoryEngine::new(nodes, cfg), publics)
}

fn ed25519_verifier(c: &Cluster<MemoryEngine>, key: &KeyId) -> ed25519_dalek::VerifyingKey {
    let Some(PublicKey::Ed25519(pk)) = c.public_key(key) else {
        panic!("not an Ed25519 key");
    };
    ed25519_dalek::VerifyingKey::from_bytes(&pk.public_key_bytes()).unwrap()
}

fn sign_and_verify_ed25519(c: &Cluster<MemoryEngine>, key: KeyId, count: u32) -> Vec<String> {
    let vk = ed25519_verifier(c, &key);
    let mut culprits = Vec::new();
    for i in 0..count {
        let message = format!("message {i}").into_bytes();
        let sig = c
            .sign(
                key,
                Mechanism::Ed25519 {
                    message: message.clone(),
                },
            )
            .unwrap_or_else(|e| panic!("signature {i}: {e}"));
        let sig_bytes: [u8; 64] = sig.bytes.as_slice().try_into().unwrap();
        vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig_bytes))
            .unwrap_or_else(|e| panic!("invalid Ed25519 signature released: {e}"));
        culprits.extend(sig.culprits);
    }
    culprits
}

fn holders_of(c: &Cluster<MemoryEngine>, key: &KeyId) -> usize {
    c.engine()
        .nodes()
        .iter()
        .filter(|n| n.key_infos().iter().any(|i| i.key == *key))
        .count()
}

#[test]
fn dkg_across_all_nodes_creates_keys_that_every_node_holds_and_ed25519_signatures_verify() {
    let c = cluster(5);
    let ed = c.create_key(Algorithm::Ed25519, 3).unwrap();
    assert_eq!(holders_of(&c, &ed), 5);
    assert!(sign_and_verify_ed25519(&c, ed, 20).is_empty());

    let ec = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
    assert_eq!(holders_of(&c, &ec), 5);
    let Some(PublicKey::Ecdsa(pk)) = c.public_key(&ec) else {
        panic!("not an ECDSA key")
    };
    // Every node reports the same public key set, whose key id is that of the verifying key.
    let publics: BTreeSet<Vec<u8>> = c
        .engine()
        .nodes()
        .iter()
        .flat_map(|n| n.key_infos())
        .filter(|i| i.key == ec)
        .map(|i| i.public)
        .collect();
    assert_eq!(publics.len(), 1);
    assert_eq!(pk.key_id(), ec);
    let mut keys = c.list();
    keys.sort();
    let mut expected = vec![ed, ec];
    expected.sort();
    assert_eq!(keys, expected);
}

#[test]
fn dkg_succeeds_with_n_minus_k_nodes_down_and_they_get_their_shares_when_they_return() {
    for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let c = cluster(5);
        c.engine().set_up(3, false);
        c.engine().set_up(4, false);
        let key = c.create_key(algorithm, 3).unwrap();
        assert_eq!(holders_of(&c, &key), 3, "{algorithm:?}");
        assert_eq!(c.pending_deliveries(3), vec![key]);
        c.engine().set_up(3, true);
        c.engine().set_up(4, true);
        c.health(); // drives the delivery requests
        assert!(c.pending_deliveries(3).is_empty(), "{algorithm:?}");
        assert!(c.pending_deliveries(4).is_empty(), "{algorithm:?}");
        assert_eq!(holders_of(&c, &key), 5, "{algorithm:?}");
        let publics: BTreeSet<Vec<u8>> = c
            .engine()
            .nodes()
            .iter()
            .flat_map(|n| n.key_infos())
            .filter(|i| i.key == key)
            .map(|i| i.public)
            .collect();
        assert_eq!(
            publics.len(),
            1,
            "{algorithm:?}: returning nodes hold another key"
        );
        if algorithm == Algorithm::Ed25519 {
            // Only the returned nodes and one dealer online: the delivered shares sign.
            c.engine().set_up(1, false);
            c.engine().set_up(2, false);
            assert!(sign_and_verify_ed25519(&c, key, 5).is_empty());
        }
    }
}

#[test]
fn ed25519_signing_survives_n_minus_k_nodes_going_down_mid_stream() {
    let c = cluster(5);
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    sign_and_verify_ed25519(&c, key, 5);
    c.engine().set_up(0, false);
    sign_and_verify_ed25519(&c, key, 5);
    c.engine().set_up(4, false);
    sign_and_verify_ed25519(&c, key, 5);
    c.engine().set_up(0, true);
    c.engine().set_up(4, true);
    sign_and_verify_ed25519(&c, key, 5);
}

fn tamper_frost_shares(c: &Cluster<MemoryEngine>, node: usize) {
    c.engine().set_tamper(
        node,
        Box::new(|frame: &mut Vec<u8>| {
            let Ok(mut resp) = Response::decode(frame) else {
                return;
            };
            if let ResponseBody::Share { share, .. } = &mut resp.body
                && let Ok(mut s) = tcrypto::ed25519::round2::SignatureShare::decode(share)
            {
                s.z += curve25519_dalek::Scalar::ONE;
                *share = s.encode();
            }
            *frame = resp.encode();
        }),
    );
}

#[test]
fn a_node_returning_bad_frost_shares_is_named_excluded_and_no_invalid_signature_is_released() {
    let c = cluster(5);
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    tamper_frost_shares(&c, 1);
    let culprits = sign_and_verify_ed25519(&c, key, 12);
    assert!(culprits.contains(&"node2".to_string()), "culprit never named");
    assert!(
        c.culprits()
            .iter()
            .any(|(node, name, k)| *node == 1 && name == "node2" && *k == key)
    );
    let health = c.engine().submit(|co, _, _| co.health());
    assert!(health[1].excluded.is_some(), "node2 not excluded");
}

#[test]
fn a_dealer_returning_a_forged_dkg_envelope_is_named_and_the_key_is_made_without_it() {
    let c = cluster(5);
    c.engine().set_tamper(
        2,
        Box::new(|frame: &mut Vec<u8>| {
            let Ok(mut resp) = Response::decode(frame) else {
                return;
            };
            if let ResponseBody::Envelopes(envs) = &mut resp.body
                && let Some(first) = envs.first_mut()
                && let Ok(mut env) = Envelope::decode(first)
            {
                if let Some(b) = env.body.last_mut() {
                    *b ^= 1;
                }
                *first = env.encode();
            }
            *frame = resp.encode();
        }),
    );
    let op = c
        .engine()
        .submit(|co, now, unix| co.start_create_key(Algorithm::Ed25519, 3, &BTreeSet::new(), now, unix));
    match c.engine().wait(op) {
        Event::Created {
            result: Err(SignError::Aborted { culprits, .. }),
            ..
        } => assert_eq!(culprits, vec!["node3".to_string()]),
        other => panic!("expected an aborted run naming node3, got {other:?}"),
    }
    // The cluster API runs again without node3 as a dealer; node3 still receives its share.
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    c.health();
    assert_eq!(holders_of(&c, &key), 5);
    sign_and_verify_ed25519(&c, key, 3);
}

#[test]
fn dkg_is_refused_with_fewer_than_k_nodes_online_and_for_unsupported_thresholds() {
    let c = cluster(5);
    for i in 0..3 {
        c.engine().set_up(i, false);
    }
    assert!(c.create_key(Algorithm::Ed25519, 3).is_err());
    let c = cluster(5);
    // Threshold ECDSA needs n >= 2k - 1.
    assert!(c.create_key(Algorithm::EcdsaP256, 4).is_err());
    assert!(c.create_key(Algorithm::Rsa, 3).is_err());
}

#[test]
fn a_node_refuses_a_dkg_naming_a_party_it_has_not_pinned() {
    let c = cluster(3);
    // Node 1 forgets its peers: the run cannot start with it as a dealer.
    c.engine().nodes()[0].set_peers(Vec::new());
    let err = c.create_key(Algorithm::Ed25519, 2).unwrap_err();
    assert!(err.to_string().contains("not a pinned peer"), "{err}");
}
