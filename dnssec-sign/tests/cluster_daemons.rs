//! `dnssec-sign`'s cluster keys on real `tcrypto-node` daemons (five processes on 127.0.0.x, mutual TLS): one
//! long-lived zone signer keeps asking while every daemon is killed (`kill -9`) and restarted, and signs again by
//! itself once they are back; the zones it then signs pass ldns, BIND and Knot. Then an operator refreshes one
//! key and reshares the other from a second coordinator, and the same signer's zones still pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
    while let Err(e) = key.sign_batch(&[b"back".to_vec()]) {
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
    let ids = [
        cluster.create_key(ClusterAlgorithm::Ed25519, 3).unwrap(),
        cluster.create_key(ClusterAlgorithm::EcdsaP256, 3).unwrap(),
    ];
    let keys = ids.map(|id| example_cluster_csk(&cluster, id));
    for key in &keys {
        key.sign_batch(&[b"all up".to_vec()]).unwrap();
    }
    for n in &mut nodes {
        n.kill();
    }
    // While every daemon is gone, requests fail at once and name the nodes.
    for key in &keys {
        let err = key.sign_batch(&[b"all down".to_vec()]).unwrap_err().to_string();
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

    // The operator refreshes one key and moves the other to new signer ids from a second coordinator (as
    // `tcrypto-ctl refresh` and `reshare` do): the long-lived signer learns the new sharings by itself, and the
    // zones it signs still validate with the same DNSKEYs.
    let operator = dnssec_sign::cluster::connect(&config, Duration::from_secs(10)).unwrap();
    operator.refresh_keys().unwrap();
    operator.refresh(ids[0]).unwrap();
    operator.reshare(ids[1], &[4, 3, 2, 1, 0], 3).unwrap();
    for (i, key) in keys.iter().enumerate() {
        let mut opts = SignOptions::new(now());
        opts.denial = Denial::nsec3_rfc9276();
        let keys: [&dyn ZoneSigningKey; 1] = [key];
        let (signed, _) = sign_zone(load("features.zone", "example."), &keys, &opts, None).unwrap();
        assert_signed_zone_accepted(
            dir.path(),
            &format!("after-reshare-{i}.signed"),
            &signed,
            "example",
            true,
            false,
        );
    }
}
