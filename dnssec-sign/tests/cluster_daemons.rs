//! `dnssec-sign`'s cluster keys on real `tcrypto-node` daemons (five processes on 127.0.0.x, mutual TLS): one
//! long-lived zone signer keeps asking while every daemon is killed (`kill -9`) and restarted, and signs again by
//! itself once they are back; the zones it then signs pass ldns, BIND and Knot. Daemons whose operators bound
//! the keys to a signing policy sign zones from RRSIG data (RSA, P-256, Ed25519) that pass the same validators, and
//! refuse what the policy forbids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../examples/support/fixture_primes.rs"]
mod fixture_primes;

use std::time::{Duration, Instant};

use common::*;
use dnssec_sign::Denial;
use dnssec_sign::keys::ZoneSigningKey;
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::zonemd::ZonemdHash;
use tcrypto_net::identity::TlsIdentity;
use tcrypto_net::testing::{NodeProc, node_binary, pin_peers, write_coordinator_config};
use tcrypto_net::wire::Algorithm as ClusterAlgorithm;

/// Asks `key` until it signs again (at most 30 s).
fn wait_until_it_signs(key: &impl ZoneSigningKey) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = key.sign_batch(&[rrsig_message(key, "back")]) {
        assert!(Instant::now() < deadline, "signing did not resume: {e}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_long_lived_zone_signer_resumes_by_itself_after_every_node_daemon_was_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let bin = node_binary();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| NodeProc::create(&bin, "zone signer test", dir.path(), i, 40, &coordinator))
        .collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let config = write_coordinator_config(dir.path(), &coordinator, &nodes, 2000);
    // The coordinator `dnssec-sign sign --cluster` runs, built from the configuration file.
    let cluster = dnssec_sign::cluster::connect(&config, Duration::from_secs(10)).unwrap();
    let csk = |algorithm| example_cluster_csk(&cluster, cluster.create_key(algorithm, 3).unwrap());
    let keys = [csk(ClusterAlgorithm::Ed25519), csk(ClusterAlgorithm::EcdsaP256)];
    for key in &keys {
        key.sign_batch(&[rrsig_message(key, "all up")]).unwrap();
    }
    for n in &mut nodes {
        n.kill();
    }
    // While every daemon is gone, requests fail at once and name the nodes.
    for key in &keys {
        let err = key
            .sign_batch(&[rrsig_message(key, "all down")])
            .unwrap_err()
            .to_string();
        assert!((1..=5).all(|i| err.contains(&format!("node{i} ("))), "{err}");
    }
    for n in &mut nodes {
        n.start();
    }
    for (i, key) in keys.iter().enumerate() {
        wait_until_it_signs(key);
        let mut opts = SignOptions::new(now());
        opts.denial = Denial::nsec3_rfc9276();
        opts.zonemd = vec![ZonemdHash::Sha384];
        let keys: [&dyn ZoneSigningKey; 1] = [key];
        let (signed, _) = sign_zone(load("features.zone", "example."), &keys, &opts, None).unwrap();
        assert_signed_zone_accepted(
            dir.path(),
            &format!("after-restart-{i}.signed"),
            &signed,
            "example",
            true,
            true,
        );
    }
}

/// The policy each node's operator writes: every key a combined key of `example.` for 30 days, RRSIG data only.
fn csk_policy(keys: &[(tcrypto::KeyId, u8)]) -> String {
    keys.iter()
        .map(|(key, algorithm)| {
            format!(
                "[[key]]\nkey = \"{key}\"\nmechanisms = [\"dnssec-rrsig\"]\n[key.dnssec]\nzones = [\"example.\"]\n\
                 role = \"csk\"\nalgorithm = {algorithm}\nmax_validity = \"31d\"\nmax_inception_age = \"2h\"\n\
                 max_expiration_ahead = \"31d\"\n\n"
            )
        })
        .collect()
}

#[test]
fn zones_signed_through_policy_bound_cluster_keys_pass_ldns_bind_and_knot() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let bin = node_binary();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| NodeProc::create(&bin, "policy zone test", dir.path(), i, 41, &coordinator))
        .collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let config = write_coordinator_config(dir.path(), &coordinator, &nodes, 2000);
    let cluster = dnssec_sign::cluster::connect(&config, Duration::from_secs(10)).unwrap();
    let mut rng = rand::rng();
    let (pk, shares) = fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng).unwrap();
    let rsa = cluster.import_rsa_shares(&pk, &shares, &mut rng).unwrap();
    let ec = cluster.create_key(ClusterAlgorithm::EcdsaP256, 3).unwrap();
    let ed = cluster.create_key(ClusterAlgorithm::Ed25519, 3).unwrap();
    let policy = csk_policy(&[(rsa, 8), (ec, 13), (ed, 15)]);
    for n in &nodes {
        n.set_policy(&policy);
    }
    // SIGHUP is handled asynchronously: wait until every node judges requests for the RSA key by the policy.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..nodes.len() {
        loop {
            let answer = cluster.request(
                i,
                tcrypto_net::wire::RequestBody::Sign {
                    key: rsa,
                    // Not an RSA mechanism: without a policy the node refuses it too, and signs nothing.
                    mechanism: tcrypto_net::wire::Mechanism::Ed25519 {
                        message: b"policy loaded?".to_vec(),
                    },
                },
            );
            match answer {
                Err(tcrypto_net::cluster::ClusterError::Node { detail, .. })
                    if detail.starts_with("PolicyRefused") =>
                {
                    assert!(detail.contains("malformed-data"), "{detail}");
                    break;
                }
                other => {
                    assert!(
                        Instant::now() < deadline,
                        "node{} has no policy yet: {other:?}",
                        i + 1
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    for (key, label) in [(rsa, "rsa"), (ec, "p256"), (ed, "ed25519")] {
        let csk = example_cluster_csk(&cluster, key);
        // NSEC and ZONEMD: ldns-verify-zone, dnssec-verify, kzonecheck and the independent ZONEMD check all run.
        let mut opts = SignOptions::new(now());
        opts.denial = Denial::Nsec;
        opts.zonemd = vec![ZonemdHash::Sha384];
        let keys: [&dyn ZoneSigningKey; 1] = [&csk];
        let (signed, _) = sign_zone(load("features.zone", "example."), &keys, &opts, None).unwrap();
        assert_signed_zone_accepted(
            dir.path(),
            &format!("policy-{label}.signed"),
            &signed,
            "example",
            false,
            true,
        );
        // What the policy forbids is refused, naming the rule: an RRSIG valid for a year.
        let mut opts = SignOptions::new(now());
        opts.validity = 365 * 86_400;
        let err = sign_zone(load("features.zone", "example."), &keys, &opts, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expiration-too-far"), "{label}: {err}");
    }
    // The nodes signed from data only: no digest request was answered.
    let mut signed_data = 0;
    for n in &nodes {
        let log = std::fs::read_to_string(n.data.join("audit.log")).unwrap();
        signed_data += usize::from(
            log.lines()
                .any(|l| l.contains("mechanism=dnssec-rrsig") && l.contains("outcome=ok")),
        );
        assert!(
            !log.lines().any(|l| l.contains("outcome=ok")
                && [
                    "mechanism=rsa-pkcs1v15 ",
                    "mechanism=ecdsa ",
                    "mechanism=ecdsa-dkls "
                ]
                .iter()
                .any(|m| l.contains(m))),
            "{}: a digest was signed",
            n.public.name
        );
    }
    assert!(signed_data >= 3, "only {signed_data} nodes signed RRSIG data");
}
