//! Threshold keys of an in-process 3-of-5 cluster (five signer nodes on loopback mutual TLS, the
//! thread-free coordinator) sign zones that `ldns-verify-zone`, `dnssec-verify` and `kzonecheck`
//! accept, also with `n - k` nodes down (ECDSA from a presignature pool filled while all five
//! were up).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../examples/support/fixture_primes.rs"]
mod fixture_primes;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dnssec_sign::Denial;
use dnssec_sign::cluster::{ClusterKey, ClusterKeyOptions, ClusterKeyRef};
use dnssec_sign::keys::{Algorithm, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::zonemd::ZonemdHash;
use tcrypto::KeyId;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Algorithm as ClusterAlgorithm;

struct InProcess {
    cluster: Arc<BlockingCluster>,
    coordinator: TlsIdentity,
    nodes: EmbeddedNodes,
    rsa_key: KeyId,
    ed25519_key: KeyId,
}

/// Five nodes, a coordinator, and an RSA-2048 3-of-5 key dealt from the fixture primes.
fn in_process_cluster() -> InProcess {
    // RUST_LOG=warn shows the coordinator's view of the nodes on a failure
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let cluster =
        BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(10)), 5);
    let mut rng = rand::rng();
    let (pk, shares) = fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng).unwrap();
    let rsa_key = cluster.import_rsa_shares(&pk, &shares, &mut rng).unwrap();
    // born by distributed key generation among the five nodes
    let ed25519_key = cluster.create_key(ClusterAlgorithm::Ed25519, 3).unwrap();
    InProcess {
        cluster: Arc::new(cluster),
        coordinator,
        nodes,
        rsa_key,
        ed25519_key,
    }
}

fn sign_with(keys: &[&dyn ZoneSigningKey], denial: Denial, zonemd: Option<ZonemdHash>) -> dnssec_sign::Zone {
    let mut opts = SignOptions::new(now());
    opts.denial = denial;
    opts.zonemd = zonemd.into_iter().collect();
    sign_zone(load("features.zone", "example."), keys, &opts, None)
        .unwrap()
        .0
}

#[test]
fn zones_signed_by_a_3_of_5_cluster_rsa_key_pass_ldns_bind_and_knot() {
    let c = in_process_cluster();
    let dir = tempfile::tempdir().unwrap();
    let origin = name("example.");
    // a combined key (CSK) in the cluster, found by its id
    let csk = ClusterKey::find(
        c.cluster.clone(),
        &ClusterKeyRef::Id(c.rsa_key),
        &origin,
        ClusterKeyOptions {
            ksk: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(csk.algorithm(), Algorithm::RsaSha256);
    let signed = sign_with(&[&csk], Denial::nsec3_rfc9276(), Some(ZonemdHash::Sha512));
    assert_signed_zone_accepted(
        dir.path(),
        "cluster-csk-nsec3.signed",
        &signed,
        "example",
        true,
        true,
    );

    // a KSK in the cluster (algorithm 10, found by its key tag) with a local ZSK
    let tag = {
        let probe = ClusterKey::new(
            c.cluster.clone(),
            c.rsa_key,
            &origin,
            ClusterKeyOptions {
                ksk: true,
                rsa_algorithm: Algorithm::RsaSha512,
                ..Default::default()
            },
        )
        .unwrap();
        probe.dnskey().key_tag()
    };
    let ksk = ClusterKey::find(
        c.cluster.clone(),
        &ClusterKeyRef::KeyTag(tag),
        &origin,
        ClusterKeyOptions {
            ksk: true,
            rsa_algorithm: Algorithm::RsaSha512,
            in_flight: 4,
        },
    )
    .unwrap();
    let (_, zsk) = fixture_keys(Algorithm::RsaSha512);
    let signed = sign_with(&[&ksk, &zsk], Denial::Nsec, Some(ZonemdHash::Sha384));
    assert_signed_zone_accepted(
        dir.path(),
        "cluster-ksk-nsec.signed",
        &signed,
        "example",
        false,
        true,
    );
    drop(c.nodes);
}

/// A CSK (NSEC3, ZONEMD) and a cluster KSK with a local ZSK of the same algorithm (NSEC), for a
/// key of the in-process cluster.
fn check_cluster_ec_key(c: &InProcess, key: KeyId, alg: Algorithm) {
    let dir = tempfile::tempdir().unwrap();
    let origin = name("example.");
    let ksk = ClusterKey::find(
        c.cluster.clone(),
        &ClusterKeyRef::Id(key),
        &origin,
        ClusterKeyOptions {
            ksk: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ksk.algorithm(), alg);
    let n = alg.number();
    let signed = sign_with(&[&ksk], Denial::nsec3_rfc9276(), Some(ZonemdHash::Sha384));
    let file = format!("{n}-csk-nsec3.signed");
    assert_signed_zone_accepted(dir.path(), &file, &signed, "example", true, true);
    let (_, zsk) = fixture_keys(alg);
    let signed = sign_with(&[&ksk, &zsk], Denial::Nsec, None);
    let file = format!("{n}-ksk-nsec.signed");
    assert_signed_zone_accepted(dir.path(), &file, &signed, "example", false, false);
}

#[test]
fn zones_signed_by_a_3_of_5_cluster_ed25519_key_pass_ldns_bind_and_knot() {
    let c = in_process_cluster();
    check_cluster_ec_key(&c, c.ed25519_key, Algorithm::Ed25519);
}

#[test]
fn zones_signed_by_a_3_of_5_cluster_ecdsa_p256_key_pass_ldns_bind_and_knot() {
    let c = in_process_cluster();
    // born by distributed key generation; presignatures made by the nodes before signing
    let key = c.cluster.create_key(ClusterAlgorithm::EcdsaP256, 3).unwrap();
    check_cluster_ec_key(&c, key, Algorithm::EcdsaP256Sha256);
}

#[test]
fn signing_completes_with_n_minus_k_cluster_nodes_down() {
    let c = in_process_cluster();
    // A second coordinator view of the same nodes in which two of the five cannot be reached
    // (their addresses point at closed ports): it learns the key from the three that answer.
    let mut addresses = c.nodes.addresses.clone();
    for a in addresses.iter_mut().skip(3) {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        a.0 = closed.local_addr().unwrap();
    }
    let degraded =
        BlockingCluster::connect_tls(&c.coordinator, &addresses, CoordinatorConfig::default()).unwrap();
    assert_eq!(degraded.connect(Duration::from_secs(2)), 3);
    degraded.refresh_keys().unwrap();
    let degraded = Arc::new(degraded);
    let dir = tempfile::tempdir().unwrap();
    for (id, label) in [(c.rsa_key, "rsa"), (c.ed25519_key, "ed25519")] {
        let prefix = id.to_string()[..12].to_string();
        let key = ClusterKey::find(
            degraded.clone(),
            &ClusterKeyRef::parse(&prefix).unwrap(),
            &name("example."),
            ClusterKeyOptions {
                ksk: true,
                ..Default::default()
            },
        )
        .unwrap();
        let signed = sign_with(&[&key], Denial::nsec3_rfc9276(), None);
        let file = format!("two-down-{label}.signed");
        assert_signed_zone_accepted(dir.path(), &file, &signed, "example", true, false);
    }
    let health = degraded.health();
    assert_eq!(health.iter().filter(|h| h.connected).count(), 3, "{health:?}");
}

/// A TCP relay in front of one node: the coordinator reaches the node through it, and [`Relay::cut`]
/// closes every relayed connection, as when the node's machine goes down (new connections are closed
/// at once from then on, until [`Relay::restore`]). TLS runs end to end through it, untouched.
struct Relay {
    addr: std::net::SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    streams: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(node: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            cut: Arc::default(),
            streams: Arc::default(),
        };
        let (cut, streams) = (relay.cut.clone(), relay.streams.clone());
        std::thread::spawn(move || {
            loop {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if cut.load(Ordering::SeqCst) {
                    // down: the connection is closed at once
                    continue;
                }
                client.set_nonblocking(false).unwrap();
                let Ok(upstream) = std::net::TcpStream::connect(node) else {
                    continue;
                };
                let mut all = streams.lock().unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                all.extend([client, upstream]);
            }
        });
        relay
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn signing_through_a_coordinator_config_resumes_by_itself_after_every_node_was_unreachable() {
    // the coordinator of `dnssec-sign --cluster` (dnssec_sign::cluster::connect on a configuration
    // file), long-lived; every node goes away and comes back while it keeps being asked
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let relays: Vec<Relay> = nodes.addresses.iter().map(|(a, _)| Relay::start(*a)).collect();
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("coordinator.identity");
    std::fs::write(&identity, coordinator.to_secret_bytes()).unwrap();
    let mut config = format!(
        "identity = {:?}\nrequest_timeout_ms = 2000\n",
        identity.to_str().unwrap()
    );
    for ((_, public), relay) in nodes.addresses.iter().zip(&relays) {
        config.push_str(&format!(
            "[[nodes]]\naddress = \"{}\"\npublic = \"{}\"\n",
            relay.addr,
            hex::encode(public.encode())
        ));
    }
    let config_path = dir.path().join("coordinator.toml");
    std::fs::write(&config_path, config).unwrap();
    let cluster = dnssec_sign::cluster::connect(&config_path, Duration::from_secs(10)).unwrap();
    let mut rng = rand::rng();
    let (pk, shares) = fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng).unwrap();
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rng).unwrap();
    let csk = example_cluster_csk(&cluster, key);
    csk.sign_batch(&[rrsig_message(&csk, "all up")]).unwrap();
    for relay in &relays {
        relay.cut();
    }
    // requests fail at once while the nodes are away, naming them
    for _ in 0..3 {
        let err = csk
            .sign_batch(&[rrsig_message(&csk, "all down")])
            .unwrap_err()
            .to_string();
        assert!((1..=5).all(|i| err.contains(&format!("node{i} ("))), "{err}");
    }
    for relay in &relays {
        relay.restore();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = csk.sign_batch(&[rrsig_message(&csk, "back")]) {
        assert!(
            std::time::Instant::now() < deadline,
            "signing did not resume: {e}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let signed = sign_with(&[&csk], Denial::nsec3_rfc9276(), Some(ZonemdHash::Sha384));
    assert_signed_zone_accepted(dir.path(), "after-outage.signed", &signed, "example", true, true);
}

#[test]
fn ecdsa_signing_completes_with_n_minus_k_nodes_down_from_a_filled_presignature_pool() {
    // Presigning needs all 2k - 1 = 5 members, signing any k = 3 of a presignature's members:
    // the pool is filled for the whole zone while the five are up, then two go down.
    let (local_csk, _) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let trial = sign_with(&[&local_csk], Denial::nsec3_rfc9276(), Some(ZonemdHash::Sha384));
    // the ZONEMD RRset is signed twice (placeholder, then digest), and a margin
    let needed = trial
        .records
        .iter()
        .filter(|r| r.rtype == dnssec_sign::rdata::rtype::RRSIG)
        .count()
        + 8;
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let relays: Vec<Relay> = nodes.addresses[3..]
        .iter()
        .map(|(a, _)| Relay::start(*a))
        .collect();
    let mut addresses = nodes.addresses.clone();
    for (a, relay) in addresses[3..].iter_mut().zip(&relays) {
        a.0 = relay.addr;
    }
    let config = CoordinatorConfig {
        presign_high_watermark: CoordinatorConfig::default()
            .presign_high_watermark
            .max(needed + 1),
        ..CoordinatorConfig::default()
    };
    let cluster = Arc::new(BlockingCluster::connect_tls(&coordinator, &addresses, config).unwrap());
    assert_eq!(cluster.connect(Duration::from_secs(10)), 5);
    let key = cluster.create_key(ClusterAlgorithm::EcdsaP256, 3).unwrap();
    let csk = example_cluster_csk(&cluster, key);
    // one signature starts the pool; the engine is thread-free, so drive it while it fills
    csk.sign_batch(&[rrsig_message(&csk, "first")]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while cluster.presignature_pool_len(&key) < needed {
        assert!(
            std::time::Instant::now() < deadline,
            "pool stuck at {} of {needed} presignatures",
            cluster.presignature_pool_len(&key)
        );
        cluster.connect(Duration::from_millis(20));
    }
    for relay in &relays {
        relay.cut();
    }
    while cluster.health().iter().filter(|h| h.connected).count() > 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", cluster.health());
    }
    let dir = tempfile::tempdir().unwrap();
    let signed = sign_with(&[&csk], Denial::nsec3_rfc9276(), Some(ZonemdHash::Sha384));
    assert_signed_zone_accepted(
        dir.path(),
        "two-down-ecdsa.signed",
        &signed,
        "example",
        true,
        true,
    );
    let health = cluster.health();
    assert_eq!(health.iter().filter(|h| h.connected).count(), 3, "{health:?}");
}

#[test]
fn unknown_cluster_keys_are_clear_errors() {
    let c = in_process_cluster();
    let err = ClusterKey::find(
        c.cluster.clone(),
        &ClusterKeyRef::Id(KeyId([9; 32])),
        &name("example."),
        ClusterKeyOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("knows no key"), "{err}");
    // a prefix that differs from the only key's id in its first digit
    let id = c.rsa_key.to_string();
    let other = if id.starts_with('0') { "1" } else { "0" };
    let err = ClusterKey::find(
        c.cluster.clone(),
        &ClusterKeyRef::parse(&format!("{other}{}", &id[1..10])).unwrap(),
        &name("example."),
        ClusterKeyOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no cluster key matches"), "{err}");
}

#[test]
fn command_line_signs_with_cluster_keys_named_in_a_coordinator_config() {
    let c = in_process_cluster();
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("coordinator.identity");
    std::fs::write(&identity, c.coordinator.to_secret_bytes()).unwrap();
    let mut config = format!("identity = {:?}\n", identity.to_str().unwrap());
    for (addr, public) in &c.nodes.addresses {
        config.push_str(&format!(
            "[[nodes]]\naddress = \"{addr}\"\npublic = \"{}\"\n",
            hex::encode(public.encode())
        ));
    }
    let config_path = dir.path().join("coordinator.toml");
    std::fs::write(&config_path, config).unwrap();
    let out_path = dir.path().join("cli.signed");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnssec-sign"))
        .args(["sign", "-n", "-z", "sha512", "-o", "example.", "-f"])
        .arg(&out_path)
        .arg(data("features.zone"))
        .arg("--cluster")
        .arg(&config_path)
        .args(["--cluster-ksk", &c.rsa_key.to_string()[..16]])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dnssec-sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = dnssec_sign::read_zone_file(&out_path, Some(&name("example."))).unwrap();
    assert_signed_zone_accepted(dir.path(), "cli-checked.signed", &signed, "example", true, true);
}
