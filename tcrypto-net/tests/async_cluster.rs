//! The coordinator on tokio over loopback mutual TLS: RSA signatures verified by the `rsa` crate, many in flight,
//! a node down, delete; ECDSA P-256 and Ed25519 keys created by DKG and signing verified by `p256` /
//! `ed25519-dalek`; data-carrying requests (the nodes hash the data) for all three.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ec_verifies, pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::client::asynchronous::AsyncCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{DataMechanism, SignData};

#[test]
fn async_coordinator_signs_with_many_requests_in_flight_over_tls() {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster =
            AsyncCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
        assert_eq!(cluster.connect(Duration::from_secs(10)).await, 5);
        let (pk, shares) = rsa_key(384, 3, 5, 3);
        let key = cluster
            .import_rsa_shares(&pk, &shares, &mut rand::rng())
            .await
            .unwrap();
        assert_eq!(cluster.list(), vec![key]);
        let reqs: Vec<_> = (0..48u32)
            .map(|i| (key, pkcs1_sha256(&i.to_be_bytes())))
            .collect();
        for ((_, m), r) in reqs.iter().zip(cluster.sign_many(reqs.clone()).await) {
            rsa_crate_verifies(&pk, m, &r.unwrap().bytes).unwrap();
        }
        // Data-carrying requests: each node hashes the data and builds the DigestInfo itself.
        let data_reqs: Vec<_> = (0..8u32)
            .map(|i| {
                let mechanism = DataMechanism::RsaPkcs1v15 {
                    hash: tcrypto::HashAlg::Sha256,
                };
                let data = i.to_be_bytes().to_vec();
                (key, SignData { mechanism, data })
            })
            .collect();
        for ((_, d), r) in data_reqs
            .iter()
            .zip(cluster.sign_many_data(data_reqs.clone()).await)
        {
            rsa_crate_verifies(&pk, &d.digest_form().unwrap(), &r.unwrap().bytes).unwrap();
        }
        let health = cluster.health().await;
        assert!(health.iter().all(|h| h.connected && h.failed == 0), "{health:?}");
        cluster.delete(key).await.unwrap();
        assert!(cluster.list().is_empty());
        assert!(cluster.sign(key, pkcs1_sha256(b"gone")).await.is_err());
    });
}

#[test]
fn async_coordinator_creates_ec_keys_by_dkg_and_signs_with_both() {
    use sha2::Digest as _;
    use tcrypto_net::transport::wire::{Algorithm, Mechanism};
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster =
            AsyncCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
        assert_eq!(cluster.connect(Duration::from_secs(10)).await, 5);
        let ec = cluster.create_key(Algorithm::EcdsaP256, 3).await.unwrap();
        let ed = cluster.create_key(Algorithm::Ed25519, 3).await.unwrap();
        let mut reqs = Vec::new();
        for i in 0..24u32 {
            let message = i.to_be_bytes().to_vec();
            reqs.push((
                ec,
                Mechanism::Ecdsa {
                    digest: sha2::Sha256::digest(&message).to_vec(),
                },
            ));
            reqs.push((ed, Mechanism::Ed25519 { message }));
        }
        for ((key, m), r) in reqs.iter().zip(cluster.sign_many(reqs.clone()).await) {
            ec_verifies(&cluster.public_key(key).unwrap(), m, &r.unwrap().bytes).unwrap();
        }
        // A fresh coordinator has no presignatures yet: its first ECDSA signatures use DKLs23 (k online).
        let (fast, dkls) = cluster.ecdsa_signatures_by_path();
        assert!(dkls >= 1 && fast + dkls == 24, "fast {fast}, DKLs23 {dkls}");
        // The same keys asked with the data: the nodes hash it themselves.
        for (key, mechanism) in [
            (
                ec,
                DataMechanism::Ecdsa {
                    hash: tcrypto::HashAlg::Sha256,
                },
            ),
            (ed, DataMechanism::Ed25519),
        ] {
            let data = SignData {
                mechanism: mechanism.clone(),
                data: b"data, not a digest".to_vec(),
            };
            let sig = cluster
                .sign_data(key, mechanism, data.data.clone())
                .await
                .unwrap();
            ec_verifies(
                &cluster.public_key(&key).unwrap(),
                &data.digest_form().unwrap(),
                &sig.bytes,
            )
            .unwrap();
        }
        cluster.delete(ed).await.unwrap();
        assert_eq!(cluster.list(), vec![ec]);
    });
}

#[test]
fn async_coordinator_reshares_an_rsa_key_and_signs_with_the_same_public_key() {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster =
            AsyncCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
        assert_eq!(cluster.connect(Duration::from_secs(10)).await, 5);
        let (pk, shares) = rsa_key(384, 3, 5, 21);
        let key = cluster
            .import_rsa_shares(&pk, &shares, &mut rand::rng())
            .await
            .unwrap();
        let out = cluster.reshare(key, &[4, 3, 2], 2).await.unwrap();
        assert_eq!(out.epoch, 1);
        assert_eq!(out.holders.values().copied().collect::<Vec<_>>(), vec![4, 3, 2]);
        let m = pkcs1_sha256(b"after the reshare");
        rsa_crate_verifies(&pk, &m, &cluster.sign(key, m.clone()).await.unwrap().bytes).unwrap();
        let out = cluster.refresh(key).await.unwrap();
        assert_eq!(out.epoch, 2);
        rsa_crate_verifies(&pk, &m, &cluster.sign(key, m.clone()).await.unwrap().bytes).unwrap();
        // Nothing left to settle; the key keeps its name.
        assert!(cluster.settle_reshare(key).await.unwrap().settled.is_empty());
        assert_eq!(cluster.list(), vec![key]);
    });
}
