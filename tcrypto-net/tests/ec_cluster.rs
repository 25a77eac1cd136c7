//! ECDSA P-256 and Ed25519 keys in the cluster (in-memory transport): key creation by DKG relayed through the
//! coordinator (all nodes, and `n - k` nodes down with delivery on return), FROST signing from the nonce pool,
//! every signature checked by `ed25519-dalek`; Byzantine nodes (bad FROST shares, bad DKG envelopes) named and
//! excluded.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tcrypto::KeyId;
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::memory::MemoryEngine;
use tcrypto_net::client::{Cluster, Engine};
use tcrypto_net::coordinator::{CoordinatorConfig, Event, SignError};
use tcrypto_net::node::SignerNode;
use tcrypto_net::node::audit::MemoryAudit;
use tcrypto_net::node::replay::ReplayGuard;
use tcrypto_net::transport::sealed::Envelope;
use tcrypto_net::transport::wire::{Algorithm, Mechanism, Response, ResponseBody};

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
    sign_and_verify_ed25519_asking(c, key, count, &[])
}

/// Signs `count` messages; from the second one on, while no culprit has been named, the first round goes to the
/// nodes in `first` (a Byzantine test's tampering node among them), whatever the health-based choice would be.
fn sign_and_verify_ed25519_asking(
    c: &Cluster<MemoryEngine>,
    key: KeyId,
    count: u32,
    first: &[usize],
) -> Vec<String> {
    let vk = ed25519_verifier(c, &key);
    let mut culprits = Vec::new();
    for i in 0..count {
        let message = format!("message {i}").into_bytes();
        let mechanism = Mechanism::Ed25519 {
            message: message.clone(),
        };
        let sig = if i > 0 && culprits.is_empty() && !first.is_empty() {
            common::sign_asking_first(c, key, mechanism, first)
        } else {
            c.sign(key, mechanism)
        }
        .unwrap_or_else(|e| panic!("signature {i}: {e}"));
        let sig_bytes: [u8; 64] = sig.bytes.as_slice().try_into().unwrap();
        vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig_bytes))
            .unwrap_or_else(|e| panic!("invalid Ed25519 signature released: {e}"));
        culprits.extend(sig.culprits);
    }
    culprits
}

/// How many different public key sets the nodes report for `key` (1: they all hold the same key).
fn public_sets_held(c: &Cluster<MemoryEngine>, key: &KeyId) -> usize {
    let sets: BTreeSet<Vec<u8>> = c
        .engine()
        .nodes()
        .iter()
        .flat_map(|n| n.key_infos())
        .filter(|i| i.key == *key)
        .map(|i| i.public)
        .collect();
    sets.len()
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
    assert_eq!(public_sets_held(&c, &ec), 1);
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
        assert_eq!(
            public_sets_held(&c, &key),
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
fn nodes_that_missed_a_dkg_get_their_shares_from_a_restarted_coordinator() {
    let dir = std::env::temp_dir().join(format!("tcrypto-net-deliveries-{:x}", rand::random::<u64>()));
    let (nodes, publics) = common::memory_nodes(5);
    let coordinator = |nodes: Vec<Arc<SignerNode>>| {
        Cluster::new(
            MemoryEngine::new(nodes, CoordinatorConfig::default()),
            publics.clone(),
        )
        .keep_deliveries_in(&dir)
        .unwrap()
    };
    let first = coordinator(nodes.clone());
    first.engine().set_up(3, false);
    first.engine().set_up(4, false);
    let key = first.create_key(Algorithm::Ed25519, 3).unwrap();
    assert_eq!(first.pending_deliveries(3), vec![key]);
    // The coordinator goes away before nodes 4 and 5 return; a new one starts from the same data directory.
    drop(first);
    let second = coordinator(nodes);
    assert_eq!(second.pending_deliveries(3), vec![key]);
    second.health(); // drives the deliveries
    assert!(second.pending_deliveries(3).is_empty() && second.pending_deliveries(4).is_empty());
    assert_eq!(holders_of(&second, &key), 5);
    // Delivered and rewritten: a third coordinator has nothing left to deliver.
    let third = coordinator(second.engine().nodes().to_vec());
    assert!(third.pending_deliveries(3).is_empty());
    // The returned nodes sign with one dealer.
    assert_eq!(third.refresh_keys().unwrap(), vec![key]);
    third.engine().set_up(0, false);
    third.engine().set_up(1, false);
    assert!(sign_and_verify_ed25519(&third, key, 3).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
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

/// Passes every answer of `node` through `f` (a Byzantine node).
fn tamper_bodies(
    c: &Cluster<MemoryEngine>,
    node: usize,
    f: impl Fn(&mut ResponseBody) + Send + Sync + 'static,
) {
    c.engine().set_tamper(
        node,
        Box::new(move |frame: &mut Vec<u8>| {
            let Ok(mut resp) = Response::decode(frame) else {
                return;
            };
            f(&mut resp.body);
            *frame = resp.encode();
        }),
    );
}

/// A way to corrupt what a node answers in FROST signing.
type FrostCorruption = fn(&mut ResponseBody);

fn frost_share(body: &mut ResponseBody, f: impl Fn(&mut tcrypto::ed25519::round2::SignatureShare)) {
    if let ResponseBody::Share { share, .. } = body
        && let Ok(mut s) = tcrypto::ed25519::round2::SignatureShare::decode(share)
    {
        f(&mut s);
        *share = s.encode();
    }
}

#[test]
fn a_node_corrupting_frost_data_is_named_excluded_and_no_invalid_signature_is_released() {
    let kinds: [(&str, FrostCorruption); 5] = [
        ("z + 1", |b| {
            frost_share(b, |s| s.z += curve25519_dalek::Scalar::ONE)
        }),
        ("another signer id", |b| {
            if let ResponseBody::Share { signer, .. } = b {
                *signer = tcrypto::SignerId::new(5).unwrap();
            }
        }),
        ("undecodable share", |b| {
            if let ResponseBody::Share { share, .. } = b {
                share.truncate(share.len() / 2);
            }
        }),
        ("signs with other nonces than it committed", |b| {
            if let ResponseBody::Commitments(commitments) = b {
                for bytes in commitments.iter_mut() {
                    let mut c = tcrypto::ed25519::round1::Commitment::decode(bytes).unwrap();
                    c.hiding += curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
                    *bytes = c.encode();
                }
            }
        }),
        // The coordinator relays commitments without the subgroup check; the signers refuse the package, and
        // the coordinator names the commitment's maker, not them.
        ("a nonce commitment outside the prime-order subgroup", |b| {
            if let ResponseBody::Commitments(commitments) = b {
                for bytes in commitments.iter_mut() {
                    let mut c = tcrypto::ed25519::round1::Commitment::decode(bytes).unwrap();
                    c.binding += curve25519_dalek::constants::EIGHT_TORSION[1];
                    *bytes = c.encode();
                }
            }
        }),
    ];
    for (name, f) in kinds {
        let c = cluster(5);
        let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
        tamper_bodies(&c, 1, f);
        let culprits = sign_and_verify_ed25519_asking(&c, key, 12, &[1, 3, 4]);
        assert!(
            culprits.contains(&"node2".to_string()),
            "{name}: culprit never named"
        );
        assert!(
            c.culprits()
                .iter()
                .any(|(node, n, k)| *node == 1 && n == "node2" && *k == key),
            "{name}"
        );
        let health = c.engine().submit(|co, _, _| co.health());
        assert!(health[1].excluded.is_some(), "{name}: node2 not excluded");
        assert!(
            health
                .iter()
                .enumerate()
                .all(|(i, h)| i == 1 || h.excluded.is_none()),
            "{name}: an honest node was excluded"
        );
    }
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

type Ed = tcrypto::dkg::Ed25519;

/// Dealer `dealer` (node index) seals party `victim` a share off its commitments in DKG round 2 (signed with its
/// own identity, so only the victim can tell); with `repeat`, it also answers the victim's complaint in the
/// resolution round with that same wrong share (else it answers with the right one, as its node computes it).
fn dealer_sends_a_wrong_share(
    c: &Cluster<MemoryEngine>,
    dealer: usize,
    identity: &tcrypto_net::transport::identity::NodeIdentity,
    victim: u16,
    victim_public: &tcrypto_net::transport::identity::NodePublic,
    repeat: bool,
) {
    use tcrypto::dkg::Message as _;
    let wrong = || tcrypto::dkg::round2::Share::<Ed> {
        value: zeroize::Zeroizing::new(curve25519_dalek::Scalar::from(7u64)),
    };
    let victim = tcrypto::SignerId::new(victim).unwrap();
    let signing = identity.signing.clone();
    let hpke = victim_public.hpke_public().unwrap();
    tamper_bodies(c, dealer, move |body| {
        let ResponseBody::Envelopes(envs) = body else {
            return;
        };
        for bytes in envs.iter_mut() {
            let Ok(env) = Envelope::decode(bytes) else {
                continue;
            };
            let forged = match (env.route.round, env.route.to) {
                (2, Some(to)) if to == victim => {
                    Envelope::seal(env.route, &wrong().encode(), &hpke, &signing, &mut rand::rng())
                }
                (4, None) if repeat => {
                    let mut a = tcrypto::dkg::resolve::Broadcast::<Ed>::decode(&env.body).unwrap();
                    a.answers.insert(victim, *wrong().value);
                    Envelope::broadcast(env.route, &a.encode(), &signing)
                }
                _ => continue,
            };
            *bytes = forged.unwrap().encode();
        }
    });
}

/// Five in-memory nodes (default coordinator settings) with their public and secret identities.
#[allow(clippy::type_complexity)]
fn cluster_with_identities() -> (
    Cluster<MemoryEngine>,
    Vec<tcrypto_net::transport::identity::NodePublic>,
    Vec<Arc<tcrypto_net::transport::identity::NodeIdentity>>,
) {
    let (nodes, publics, identities) = common::memory_nodes_with_identities(5);
    let c = Cluster::new(
        MemoryEngine::new(nodes, CoordinatorConfig::default()),
        publics.clone(),
    );
    (c, publics, identities)
}

fn named_culprits(c: &Cluster<MemoryEngine>) -> Vec<(usize, String)> {
    c.culprits().into_iter().map(|(n, name, _)| (n, name)).collect()
}

#[test]
fn a_dkg_complaint_answered_with_a_share_that_opens_the_commitments_names_the_accuser() {
    let (c, publics, identities) = cluster_with_identities();
    // Party 3 complains about dealer 1, which then reveals a share that opens its commitments: the complaint
    // stands refuted in public, its accuser is named, and the key is made from all five dealers.
    dealer_sends_a_wrong_share(&c, 0, &identities[0], 3, &publics[2], false);
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    assert_eq!(holders_of(&c, &key), 5);
    assert_eq!(named_culprits(&c), vec![(2, "node3".to_string())]);
    assert!(sign_and_verify_ed25519(&c, key, 3).is_empty());
}

#[test]
fn a_true_dkg_complaint_disqualifies_the_dealer_and_the_key_forms_without_it() {
    let (c, publics, identities) = cluster_with_identities();
    dealer_sends_a_wrong_share(&c, 1, &identities[1], 4, &publics[3], true);
    // Party 5 is offline: it gets the qualified dealers' shares when it returns.
    c.engine().set_up(4, false);
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    assert_eq!(named_culprits(&c), vec![(1, "node2".to_string())]);
    c.engine().set_up(4, true);
    c.health();
    assert!(c.pending_deliveries(4).is_empty());
    // Every party but the disqualified dealer holds the key (its node, which saw its own honest answer, refuses
    // the outcome; the others registered the key over it).
    assert_eq!(holders_of(&c, &key), 4);
    assert!(c.engine().nodes()[1].key_infos().is_empty());
    assert_eq!(public_sets_held(&c, &key), 1);
    // Signers without the disqualified dealer's node (excluded) and with the returned party.
    c.engine().set_up(0, false);
    assert!(sign_and_verify_ed25519(&c, key, 3).is_empty());
}

#[test]
fn dkg_is_refused_with_fewer_than_k_nodes_online_and_for_unsupported_thresholds() {
    let c = cluster(5);
    for i in 0..3 {
        c.engine().set_up(i, false);
    }
    assert!(c.create_key(Algorithm::Ed25519, 3).is_err());
    let c = cluster(5);
    // Any 1 <= k <= n (ECDSA keys with n < 2k - 1 sign with DKLs23 only).
    assert!(c.create_key(Algorithm::EcdsaP256, 6).is_err());
    assert!(c.create_key(Algorithm::EcdsaP256, 0).is_err());
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

fn p256_verifier(c: &Cluster<MemoryEngine>, key: &KeyId) -> p256::ecdsa::VerifyingKey {
    let Some(PublicKey::Ecdsa(pk)) = c.public_key(key) else {
        panic!("not an ECDSA key");
    };
    // An independent verifier built from the SEC1 bytes alone.
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&pk.set.public_key_bytes()).unwrap()
}

fn sign_and_verify_ecdsa(c: &Cluster<MemoryEngine>, key: KeyId, from: u32, count: u32) -> Vec<String> {
    sign_and_verify_ecdsa_asking(c, key, from, count, &[])
}

/// As [`sign_and_verify_ed25519_asking`]: after the first signature (which fills the presignature pool), while no
/// culprit has been named, the first round goes to the nodes in `first`.
fn sign_and_verify_ecdsa_asking(
    c: &Cluster<MemoryEngine>,
    key: KeyId,
    from: u32,
    count: u32,
    first: &[usize],
) -> Vec<String> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let vk = p256_verifier(c, &key);
    let mut culprits = Vec::new();
    for i in from..from + count {
        let digest = sha2::Sha256::digest(format!("message {i}")).to_vec();
        let mechanism = Mechanism::Ecdsa {
            digest: digest.clone(),
        };
        let sig = if i > from && culprits.is_empty() && !first.is_empty() {
            common::sign_asking_first(c, key, mechanism, first)
        } else {
            c.sign(key, mechanism)
        }
        .unwrap_or_else(|e| panic!("signature {i}: {e}"));
        let der = p256::ecdsa::Signature::from_der(&sig.bytes).unwrap();
        vk.verify_prehash(&digest, &der)
            .unwrap_or_else(|e| panic!("invalid ECDSA signature released: {e}"));
        culprits.extend(sig.culprits);
    }
    culprits
}

#[test]
fn ecdsa_signatures_from_the_presignature_pool_verify_with_p256() {
    let c = cluster(5);
    let key = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
    assert!(sign_and_verify_ecdsa(&c, key, 0, 40).is_empty());
    // The pool was refilled in the background: more than one presigning run served the 40 signatures.
    let left = c.engine().submit(|co, _, _| co.presignature_pool_len(&key));
    assert!(left > 0);
}

#[test]
fn ecdsa_signing_survives_n_minus_k_nodes_going_down_and_presigning_resumes_when_they_return() {
    let c = cluster(5);
    let key = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
    sign_and_verify_ecdsa(&c, key, 0, 3);
    c.engine().set_up(1, false);
    c.engine().set_up(3, false);
    // Presignatures made by all five still sign with the three left.
    sign_and_verify_ecdsa(&c, key, 3, 8);
    c.engine().set_up(1, true);
    c.engine().set_up(3, true);
    sign_and_verify_ecdsa(&c, key, 11, 30);
}

/// Fills the presignature pool of `key` to the high watermark (the first signatures of a fresh coordinator use
/// DKLs23 while it fills in the background).
fn fill_pool(c: &Cluster<MemoryEngine>, key: KeyId) {
    c.engine().submit(|co, now, unix| co.prefill(key, now, unix));
    // Waiting for an operation that does not exist delivers every message until nothing is left.
    c.engine().wait(u64::MAX);
}

/// A 3-of-5 cluster whose presignature pool is refilled only when empty, so tests can count presignatures.
fn counting_cluster() -> (Cluster<MemoryEngine>, KeyId) {
    let (nodes, publics) = common::memory_nodes(5);
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_millis(300),
        presign_low_watermark: 1,
        presign_high_watermark: 8,
        ..CoordinatorConfig::default()
    };
    let c = Cluster::new(MemoryEngine::new(nodes, cfg), publics);
    let key = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
    fill_pool(&c, key);
    assert_eq!(c.presignature_pool_len(&key), 8);
    (c, key)
}

fn ecdsa_mechanism(i: u32) -> (Vec<u8>, Mechanism) {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("message {i}")).to_vec();
    (digest.clone(), Mechanism::Ecdsa { digest })
}

/// Checks the signature with `p256` and that it cost exactly one presignature of the counting cluster's pool.
fn assert_valid_from_one_presignature(c: &Cluster<MemoryEngine>, key: &KeyId, digest: &[u8], der: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
    p256_verifier(c, key)
        .verify_prehash(digest, &sig)
        .unwrap_or_else(|e| panic!("invalid ECDSA signature released: {e}"));
    assert_eq!(c.presignature_pool_len(key), 7, "a second presignature was spent");
    assert_eq!(
        c.ecdsa_signatures_by_path(),
        (1, 0),
        "not signed by the fast path"
    );
}

#[test]
fn a_member_that_times_out_is_replaced_with_the_same_presignature() {
    let (c, key) = counting_cluster();
    // Node 2 answers garbage from now on: its request times out and another member is asked.
    c.engine()
        .set_tamper(1, Box::new(|frame: &mut Vec<u8>| *frame = b"garbage".to_vec()));
    let (digest, mechanism) = ecdsa_mechanism(1);
    let sig = common::sign_asking_first(&c, key, mechanism, &[0, 1, 2]).unwrap();
    assert_valid_from_one_presignature(&c, &key, &digest, &sig.bytes);
}

#[test]
fn a_member_that_disconnects_mid_signature_is_replaced_with_the_same_presignature() {
    let (c, key) = counting_cluster();
    let (digest, mechanism) = ecdsa_mechanism(1);
    let op = c
        .engine()
        .submit(|co, now, unix| co.start_sign(key, mechanism, now, unix, &mut rand::rng()));
    // Take down a node that was asked, before it answers.
    let health = c.engine().submit(|co, _, _| co.health());
    let asked = (0..5).find(|i| health[*i].in_flight > 0).unwrap();
    c.engine().set_up(asked, false);
    let sig = c.wait_signature(op).unwrap();
    assert_valid_from_one_presignature(&c, &key, &digest, &sig.bytes);
}

#[test]
fn a_node_sending_a_bad_ecdsa_share_is_replaced_with_the_same_presignature() {
    let (c, key) = counting_cluster();
    tamper_ecdsa_shares(&c, 2, |s| s.s += p256::Scalar::ONE);
    let (digest, mechanism) = ecdsa_mechanism(1);
    let sig = common::sign_asking_first(&c, key, mechanism, &[0, 2, 4]).unwrap();
    assert_valid_from_one_presignature(&c, &key, &digest, &sig.bytes);
    assert_eq!(sig.culprits, vec!["node3".to_string()]);
}

#[test]
fn a_node_corrupting_its_presigning_opening_is_named_by_the_blame_step_and_excluded() {
    // n = 5 > 2k - 1 = 3: presigning goes on with the four members left once the culprit is excluded.
    let (nodes, publics, identities) = common::memory_nodes_with_identities(5);
    let cfg = CoordinatorConfig {
        presign_low_watermark: 2,
        presign_high_watermark: 4,
        ..CoordinatorConfig::default()
    };
    let c = Cluster::new(MemoryEngine::new(nodes, cfg), publics);
    let key = c.create_key(Algorithm::EcdsaP256, 2).unwrap();
    // Node 3 opens a wrong share of w in its round-3 broadcast, signed with its own identity (so it passes the
    // coordinator's envelope check and only the end-of-presigning check can catch it).
    let signing = identities[2].signing.clone();
    c.engine().set_tamper(
        2,
        Box::new(move |frame: &mut Vec<u8>| {
            let Ok(mut resp) = Response::decode(frame) else {
                return;
            };
            if let ResponseBody::Envelopes(envs) = &mut resp.body {
                for bytes in envs.iter_mut() {
                    let Ok(env) = Envelope::decode(bytes) else {
                        continue;
                    };
                    let Ok(mut b3) = tcrypto::ecdsa::presign::Round3Broadcast::decode(&env.body) else {
                        continue;
                    };
                    if env.route.round != 3 || env.route.to.is_some() {
                        continue;
                    }
                    b3.w_shares[0] += p256::Scalar::ONE;
                    *bytes = Envelope::broadcast(env.route, &b3.encode(), &signing)
                        .unwrap()
                        .encode();
                }
            }
            *frame = resp.encode();
        }),
    );
    sign_and_verify_ecdsa(&c, key, 0, 3);
    assert!(
        c.culprits()
            .iter()
            .any(|(node, name, k)| *node == 2 && name == "node3" && *k == key),
        "culprit not named: {:?}",
        c.culprits()
    );
    let health = c.engine().submit(|co, _, _| co.health());
    assert!(health[2].excluded.is_some(), "node3 not excluded");
    assert!(
        health
            .iter()
            .enumerate()
            .all(|(i, h)| i == 2 || h.excluded.is_none())
    );
}

#[test]
fn with_n_equal_to_2k_minus_1_one_excluded_node_stops_presigning_and_dkls23_signs_instead() {
    let (nodes, publics) = common::memory_nodes(3);
    let cfg = CoordinatorConfig {
        presign_low_watermark: 1,
        presign_high_watermark: 2,
        ..CoordinatorConfig::default()
    };
    let c = Cluster::new(MemoryEngine::new(nodes, cfg), publics);
    let key = c.create_key(Algorithm::EcdsaP256, 2).unwrap();
    fill_pool(&c, key);
    assert_eq!(c.presignature_pool_len(&key), 2);
    c.engine().submit(|co, _, _| co.exclude(0, "test"));
    // The presignatures in stock still sign with the two members left ...
    sign_and_verify_ecdsa(&c, key, 0, 2);
    assert_eq!(c.ecdsa_signatures_by_path(), (2, 0));
    // ... and then presigning, which needs all three, cannot run: the k-online protocol signs, no error.
    sign_and_verify_ecdsa(&c, key, 2, 3);
    assert_eq!(c.ecdsa_signatures_by_path(), (2, 3));
}

/// A stream that empties a pool which has had a batch waits for the refill instead of taking the k-online path:
/// DKLs23 costs each signer several times the CPU of a presignature, and under load the dry spells sent about a
/// third of a 32-in-flight stream to it (`benches/ecdsa_quorum.sh`: 965 of 3,000 with all five nodes up).
#[test]
fn a_burst_that_empties_a_stocked_pool_waits_for_presignatures_instead_of_going_to_dkls23() {
    let (nodes, publics) = common::memory_nodes(5);
    let cfg = CoordinatorConfig {
        presign_low_watermark: 1,
        presign_high_watermark: 2,
        ..CoordinatorConfig::default()
    };
    let c = Cluster::new(MemoryEngine::new(nodes, cfg), publics);
    let key = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
    fill_pool(&c, key);
    assert_eq!(c.presignature_pool_len(&key), 2);
    let vk = p256_verifier(&c, &key);
    let requests: Vec<(Vec<u8>, Mechanism)> = (0..12).map(ecdsa_mechanism).collect();
    let results = c.sign_many(requests.iter().map(|(_, m)| (key, m.clone())).collect());
    for ((digest, _), result) in requests.iter().zip(results) {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let sig = result.unwrap();
        let der = p256::ecdsa::Signature::from_der(&sig.bytes).unwrap();
        vk.verify_prehash(digest, &der).unwrap();
    }
    assert_eq!(c.ecdsa_signatures_by_path(), (12, 0));
}

#[test]
fn a_dkls23_signature_costs_each_signer_about_51_kb_per_other_signer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let c = cluster(5);
    let key = c.create_key(Algorithm::EcdsaP256, 5).unwrap();
    // The pairs are set up by the first signature; the second is measured.
    sign_and_verify_ecdsa(&c, key, 0, 1);
    let sent: Vec<Arc<AtomicUsize>> = (0..5).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    for (i, counter) in sent.iter().enumerate() {
        let counter = counter.clone();
        c.engine().set_tamper(
            i,
            Box::new(move |frame: &mut Vec<u8>| {
                counter.fetch_add(frame.len(), Ordering::Relaxed);
            }),
        );
    }
    sign_and_verify_ecdsa(&c, key, 1, 1);
    for (i, counter) in sent.iter().enumerate() {
        let bytes = counter.load(Ordering::Relaxed);
        eprintln!(
            "node{}: {bytes} bytes of answers for one 5-of-5 DKLs23 signature",
            i + 1
        );
        // Four peers, each a ~10 KB round-1 and a ~40 KB round-2 message in sealed envelopes: ~51 KB per peer.
        assert!(
            (4 * 50_000..4 * 52_000).contains(&bytes),
            "node{}: {bytes} bytes",
            i + 1
        );
    }
}

#[test]
fn ecdsa_keys_with_k_above_half_of_n_sign_with_dkls23() {
    let c = cluster(5);
    for k in [4, 5] {
        let key = c.create_key(Algorithm::EcdsaP256, k).unwrap();
        assert!(sign_and_verify_ecdsa(&c, key, 0, 3).is_empty());
        assert_eq!(
            c.presignature_pool_len(&key),
            0,
            "a key with n < 2k - 1 never presigns"
        );
    }
    assert_eq!(c.ecdsa_signatures_by_path(), (0, 6));
}

/// A way to corrupt an ECDSA signature share.
type Corruption = fn(&mut tcrypto::ecdsa::SignatureShare);

fn tamper_ecdsa_shares(c: &Cluster<MemoryEngine>, node: usize, f: Corruption) {
    tamper_bodies(c, node, move |body| {
        if let ResponseBody::Share { share, .. } = body
            && let Ok(mut s) = tcrypto::ecdsa::SignatureShare::decode(share)
        {
            f(&mut s);
            *share = s.encode();
        }
    });
}

#[test]
fn a_node_returning_corrupted_ecdsa_shares_is_named_excluded_and_no_invalid_signature_is_released() {
    let kinds: [(&str, Corruption); 4] = [
        ("s + 1", |s| s.s += p256::Scalar::ONE),
        ("s negated", |s| s.s = -s.s),
        ("another presignature", |s| s.presignature.index ^= 1),
        ("another signer id", |s| s.id = tcrypto::SignerId::new(5).unwrap()),
    ];
    for (name, f) in kinds {
        let c = cluster(5);
        let key = c.create_key(Algorithm::EcdsaP256, 3).unwrap();
        tamper_ecdsa_shares(&c, 2, f);
        let culprits = sign_and_verify_ecdsa_asking(&c, key, 0, 10, &[2, 0, 4]);
        assert!(
            culprits.contains(&"node3".to_string()),
            "{name}: culprit never named"
        );
        let health = c.engine().submit(|co, _, _| co.health());
        assert!(health[2].excluded.is_some(), "{name}: node3 not excluded");
    }
}

#[test]
fn a_presignature_is_never_used_twice_across_a_node_restart() {
    use tcrypto_net::node::store::{KdfCost, SecretStore, StoreKeySource};
    use tcrypto_net::transport::wire::{Request, RequestBody};
    let dir = std::env::temp_dir().join(format!("tcrypto-net-presig-{:x}", rand::random::<u64>()));
    let pass = StoreKeySource::Passphrase(zeroize::Zeroizing::new("pw".into()));
    let store = Arc::new(SecretStore::create(&dir, &pass, KdfCost::TESTING, &mut rand::rng()).unwrap());
    let (mut nodes, publics, identities) = common::memory_nodes_with_identities(3);
    let identity = identities[0].clone();
    let stored = |store: Arc<SecretStore>| {
        let n = Arc::new(SignerNode::new(
            identity.clone(),
            Some(store),
            Arc::new(MemoryAudit::default()),
            ReplayGuard::default(),
        ));
        n.set_peers(publics.clone());
        n
    };
    nodes[0] = stored(store.clone());
    let cfg = CoordinatorConfig {
        presign_low_watermark: 4,
        presign_high_watermark: 8,
        ..CoordinatorConfig::default()
    };
    let c = Cluster::new(MemoryEngine::new(nodes, cfg), publics.clone());
    let key = c.create_key(Algorithm::EcdsaP256, 2).unwrap();
    sign_and_verify_ecdsa(&c, key, 0, 1);
    let node = c.engine().nodes()[0].clone();
    let before = node.presignature_count(&key);
    assert!(before > 0);
    let batch = store
        .list()
        .unwrap()
        .into_iter()
        .find_map(|n| n.strip_prefix("presig-").map(str::to_string))
        .expect("a stored batch");
    let run = tcrypto::SessionId(hex::decode(&batch).unwrap().try_into().unwrap());
    let ask_for = |n: &SignerNode, index: u32, digest: Vec<u8>| {
        let req = Request {
            id: 1,
            session: tcrypto::SessionId::random(&mut rand::rng()),
            issued_at_ms: tcrypto_net::node::server::unix_ms_now(),
            body: RequestBody::EcdsaSign {
                key,
                run,
                index,
                digest,
            },
        };
        n.handle(
            None,
            tcrypto_net::node::server::unix_ms_now(),
            req,
            &mut rand::rng(),
        )
        .body
    };
    let ask = |n: &SignerNode, index: u32| ask_for(n, index, vec![7; 32]);
    // Find a presignature of the batch this node has not used yet, and use it.
    let used = (0..8)
        .find(|i| matches!(ask(&node, *i), ResponseBody::Share { .. }))
        .expect("an unused presignature");
    // Asked again, for another message or for the same one under another session: refused as spent.
    for digest in [vec![8; 32], vec![7; 32]] {
        match ask_for(&node, used, digest) {
            ResponseBody::Error { code, detail } => {
                assert_eq!(
                    code,
                    tcrypto_net::transport::wire::ErrorCode::Replayed,
                    "{detail}"
                );
            }
            other => panic!("used twice in one process: {other:?}"),
        }
    }
    // Restart: the same identity and store, a fresh process state.
    let restarted = stored(store.clone());
    restarted.load_keys().unwrap();
    assert_eq!(restarted.presignature_count(&key), node.presignature_count(&key));
    match ask(&restarted, used) {
        ResponseBody::Error { .. } => {}
        other => panic!("a spent presignature was used again after a restart: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
