//! Threshold RSA through the cluster (in-memory transport): signatures verified by the `rsa` crate, nodes down,
//! Byzantine nodes, bad requests, delete and key discovery.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pkcs1_sha256, rsa_crate_verifies, rsa_key, sign_asking_first};
use tcrypto::HashAlg;
use tcrypto::rsa::{PublicKeySet, SignatureShare};
use tcrypto_net::client::memory::MemoryEngine;
use tcrypto_net::client::{Cluster, ClusterError, Engine};
use tcrypto_net::coordinator::{CoordinatorConfig, SignError};
use tcrypto_net::transport::wire::{Mechanism, RequestBody, Response, ResponseBody};

fn cluster(n: usize) -> Cluster<MemoryEngine> {
    cluster_with(n, true)
}

fn cluster_with(n: usize, optimistic: bool) -> Cluster<MemoryEngine> {
    let (nodes, publics) = common::memory_nodes(n);
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(2),
        optimistic,
        ..CoordinatorConfig::default()
    };
    Cluster::new(MemoryEngine::new(nodes, cfg), publics)
}

fn with_key() -> (Cluster<MemoryEngine>, PublicKeySet, tcrypto::KeyId) {
    let c = cluster(5);
    let (pk, shares) = rsa_key(384, 3, 5, 7);
    let key = c.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    (c, pk, key)
}

#[test]
fn threshold_rsa_signatures_from_3_of_5_verify_with_the_rsa_crate() {
    let (c, pk, key) = with_key();
    let digest = HashAlg::Sha256.digest(b"hello");
    let mut digest_info = tcrypto::rsa::encoding::digest_info_prefix(HashAlg::Sha256).to_vec();
    digest_info.extend_from_slice(&digest);
    let mechs = vec![
        pkcs1_sha256(b"hello"),
        Mechanism::RsaPkcs1v15DigestInfo { digest_info },
        Mechanism::RsaPss {
            hash: HashAlg::Sha256,
            digest: digest.clone(),
            salt: vec![9; 32],
        },
    ];
    for m in mechs {
        let sig = c.sign(key, m.clone()).unwrap();
        assert!(sig.culprits.is_empty());
        rsa_crate_verifies(&pk, &m, &sig.bytes).unwrap();
    }
}

#[test]
fn many_requests_in_flight_all_complete_with_valid_signatures() {
    let (c, pk, key) = with_key();
    let reqs: Vec<_> = (0..40u32)
        .map(|i| (key, pkcs1_sha256(&i.to_be_bytes())))
        .collect();
    let results = c.sign_many(reqs.clone());
    for ((_, m), r) in reqs.iter().zip(results) {
        rsa_crate_verifies(&pk, m, &r.unwrap().bytes).unwrap();
    }
}

#[test]
fn signing_succeeds_with_n_minus_k_nodes_down_and_fails_clearly_below_k() {
    let (c, pk, key) = with_key();
    c.engine().set_up(0, false);
    c.engine().set_up(3, false);
    let m = pkcs1_sha256(b"two down");
    rsa_crate_verifies(&pk, &m, &c.sign(key, m.clone()).unwrap().bytes).unwrap();
    c.engine().set_up(4, false);
    let err = c.sign(key, m.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            ClusterError::Sign(SignError::Unavailable {
                available: 2,
                needed: 3,
                ..
            })
        ),
        "{err}"
    );
    c.engine().set_up(0, true);
    rsa_crate_verifies(&pk, &m, &c.sign(key, m.clone()).unwrap().bytes).unwrap();
}

/// Rewrites node answers carrying a share with `f`.
fn corrupt_shares(
    f: impl Fn(&mut SignatureShare) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> tcrypto_net::client::memory::Tamper {
    Box::new(move |frame: &mut Vec<u8>| {
        let Ok(mut resp) = Response::decode(frame) else {
            return;
        };
        if let ResponseBody::Share { share, .. } = &mut resp.body {
            let mut s = SignatureShare::decode(share).unwrap();
            *share = f(&mut s).unwrap_or_else(|| s.encode());
        }
        *frame = resp.encode();
    })
}

fn byzantine_node_is_named_excluded_and_never_yields_a_bad_signature(
    name: &str,
    f: impl Fn(&mut SignatureShare) -> Option<Vec<u8>> + Send + Sync + 'static,
) {
    let (c, pk, key) = with_key();
    c.engine().set_tamper(1, corrupt_shares(f));
    // The first signature asks node2 (with node1 and node3); later ones are left to the health-based choice.
    for i in 0..6u32 {
        let m = pkcs1_sha256(&i.to_be_bytes());
        let sig = if i == 0 {
            sign_asking_first(&c, key, m.clone(), &[0, 1, 2])
        } else {
            c.sign(key, m.clone())
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        rsa_crate_verifies(&pk, &m, &sig.bytes)
            .unwrap_or_else(|e| panic!("{name}: invalid signature released: {e}"));
        if i == 0 {
            assert_eq!(
                sig.culprits,
                vec!["node2".to_string()],
                "{name}: culprit not named"
            );
        } else {
            assert!(sig.culprits.is_empty(), "{name}: {:?}", sig.culprits);
        }
    }
    let culprits = c.culprits();
    assert!(
        culprits
            .iter()
            .any(|(node, n, k)| *node == 1 && n == "node2" && *k == key),
        "{name}"
    );
    let health = c.engine().submit(|co, _, _| co.health());
    assert!(health[1].excluded.is_some(), "{name}: node2 not excluded");
}

#[test]
fn byzantine_wrong_share_value_is_caught() {
    byzantine_node_is_named_excluded_and_never_yields_a_bad_signature("value", |s| {
        let last = s.value.len() - 1;
        s.value[last] ^= 1;
        None
    });
}

#[test]
fn byzantine_bad_proof_with_wrong_value_is_caught() {
    byzantine_node_is_named_excluded_and_never_yields_a_bad_signature("proof", |s| {
        s.value[0] ^= 0x40;
        if let Some(p) = &mut s.proof {
            p.c[0] ^= 1;
        }
        None
    });
}

#[test]
fn byzantine_missing_proof_with_wrong_value_is_caught() {
    byzantine_node_is_named_excluded_and_never_yields_a_bad_signature("no proof", |s| {
        s.value[1] ^= 1;
        s.proof = None;
        None
    });
}

#[test]
fn byzantine_garbage_share_is_caught() {
    byzantine_node_is_named_excluded_and_never_yields_a_bad_signature("garbage", |_| {
        Some(vec![1, 0x11, 0xff, 0])
    });
}

#[test]
fn byzantine_share_claiming_another_signer_is_not_counted() {
    let (c, pk, key) = with_key();
    c.engine().set_tamper(
        1,
        Box::new(|frame: &mut Vec<u8>| {
            let Ok(mut resp) = Response::decode(frame) else {
                return;
            };
            if let ResponseBody::Share { signer, .. } = &mut resp.body {
                *signer = tcrypto::SignerId::new(5).unwrap();
            }
            *frame = resp.encode();
        }),
    );
    for i in 0..4u32 {
        let m = pkcs1_sha256(&i.to_be_bytes());
        let sig = if i == 0 {
            sign_asking_first(&c, key, m.clone(), &[0, 1, 2])
        } else {
            c.sign(key, m.clone())
        }
        .unwrap();
        rsa_crate_verifies(&pk, &m, &sig.bytes).unwrap();
        if i == 0 {
            assert_eq!(sig.culprits, vec!["node2".to_string()]);
        }
    }
    let health = c.engine().submit(|co, _, _| co.health());
    assert!(
        health[1].failed >= 1 && health[1].excluded.is_some(),
        "{:?}",
        health[1]
    );
}

#[test]
fn bad_encoding_is_a_typed_error_and_the_node_keeps_serving() {
    let (c, pk, key) = with_key();
    let bad = Mechanism::RsaPkcs1v15DigestInfo {
        digest_info: vec![0x30, 0x03, 0x02, 0x01, 0x00],
    };
    // The coordinator refuses it before asking anyone.
    assert!(matches!(
        c.sign(key, bad.clone()),
        Err(ClusterError::Sign(SignError::BadRequest(_)))
    ));
    // Asked directly, the node answers a typed error.
    let err = c
        .request(0, RequestBody::Sign { key, mechanism: bad })
        .unwrap_err();
    assert!(err.to_string().contains("BadEncoding"), "{err}");
    let ecdsa_on_rsa = c
        .request(
            0,
            RequestBody::Sign {
                key,
                mechanism: Mechanism::Ecdsa { digest: vec![1; 32] },
            },
        )
        .unwrap_err();
    assert!(ecdsa_on_rsa.to_string().contains("BadEncoding"), "{ecdsa_on_rsa}");
    let m = pkcs1_sha256(b"still serving");
    rsa_crate_verifies(&pk, &m, &c.sign(key, m.clone()).unwrap().bytes).unwrap();
}

#[test]
fn deleted_key_is_gone_from_every_node() {
    let (c, _pk, key) = with_key();
    assert_eq!(c.list(), vec![key]);
    c.delete(key).unwrap();
    assert!(c.list().is_empty());
    for i in 0..5 {
        assert!(
            matches!(c.request(i, RequestBody::ListKeys).unwrap(), ResponseBody::Keys(k) if k.is_empty())
        );
    }
    assert!(matches!(
        c.sign(key, pkcs1_sha256(b"x")),
        Err(ClusterError::Sign(SignError::UnknownKey(_)))
    ));
}

#[test]
fn a_fresh_coordinator_learns_keys_that_k_nodes_agree_on() {
    let (c, pk, key) = with_key();
    c.engine().submit(|co, _, _| co.forget_key(&key));
    assert!(c.list().is_empty());
    assert_eq!(c.refresh_keys().unwrap(), vec![key]);
    let m = pkcs1_sha256(b"learned");
    rsa_crate_verifies(&pk, &m, &c.sign(key, m.clone()).unwrap().bytes).unwrap();
}

#[test]
fn proven_shares_mode_signs_and_names_a_byzantine_node_at_once() {
    let c = cluster_with(5, false);
    let (pk, shares) = rsa_key(384, 3, 5, 7);
    let key = c.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    c.engine().set_tamper(
        0,
        corrupt_shares(|s| {
            s.value[2] ^= 1;
            None
        }),
    );
    let m = pkcs1_sha256(b"proven");
    let sig = sign_asking_first(&c, key, m.clone(), &[0, 1, 2]).unwrap();
    rsa_crate_verifies(&pk, &m, &sig.bytes).unwrap();
    assert_eq!(sig.culprits, vec!["node1".to_string()]);
}
