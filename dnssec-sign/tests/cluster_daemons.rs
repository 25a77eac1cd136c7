//! `dnssec-sign`'s cluster keys on real `tcrypto-node` daemons (five processes on 127.0.0.x, mutual TLS): one
//! long-lived zone signer keeps asking while every daemon is killed (`kill -9`) and restarted, and signs again by
//! itself once they are back; the zones it then signs pass ldns, BIND and Knot. Then an operator refreshes one
//! key and reshares the other from a second coordinator, and the same signer's zones still pass. Daemons whose
//! operators bound the keys to a signing policy sign zones from RRSIG data (RSA, P-256, Ed25519) that pass the
//! same validators, and refuse what the policy forbids.
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
use tcrypto_net::testing::{NodeProc, node_binary, pin_peers, write_coordinator_config};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Algorithm as ClusterAlgorithm;

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
    let ids = [
        cluster.create_key(ClusterAlgorithm::Ed25519, 3).unwrap(),
        cluster.create_key(ClusterAlgorithm::EcdsaP256, 3).unwrap(),
    ];
    let keys = ids.map(|id| example_cluster_csk(&cluster, id));
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

/// Existing RSA keys as operators bring them, a BIND `dnssec-keygen -a RSASHA256` key file and an
/// `openssl genrsa 2048` key (ordinary primes), split 3-of-5 onto five daemons: the zones they sign validate with
/// the ORIGINAL DNSKEY (BIND's own `K*.key` record, byte for byte, so the same key tag; ldns, BIND and Knot validate
/// the zones).
#[test]
fn imported_bind_and_openssl_rsa_keys_sign_zones_that_validate_with_the_original_dnskey() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let bin = node_binary();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| NodeProc::create(&bin, "zone signer test", dir.path(), i, 50, &coordinator))
        .collect();
    for n in &mut nodes {
        n.start();
    }
    let config = write_coordinator_config(dir.path(), &coordinator, &nodes, 2000);
    let cluster = dnssec_sign::cluster::connect(&config, Duration::from_secs(10)).unwrap();

    // BIND's key files: Kexample.+008+TAG.{key,private}.
    let out = std::process::Command::new("dnssec-keygen")
        .current_dir(dir.path())
        .args(["-a", "RSASHA256", "-b", "2048", "-f", "KSK", "example."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let base = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let bind_anchor = dir.path().join(format!("{base}.key"));
    let bind_private = dir.path().join(format!("{base}.private"));
    // openssl's key: its DNSKEY (RFC 3110) built from the modulus openssl prints.
    let openssl_private = dir.path().join("genrsa.pem");
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&openssl_private)
        .arg("2048")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let openssl_anchor = dir.path().join("genrsa.anchor");
    std::fs::write(
        &openssl_anchor,
        format!(
            "example. 3600 IN DNSKEY 257 3 8 {}\n",
            data_encoding::BASE64.encode(&rfc3110_of_pem(&openssl_private))
        ),
    )
    .unwrap();

    for (tag, private, anchor) in [
        ("bind", &bind_private, &bind_anchor),
        ("openssl", &openssl_private, &openssl_anchor),
    ] {
        let parsed = tcrypto::import::parse(&std::fs::read(private).unwrap()).unwrap();
        let tcrypto::import::SplitKey::Rsa { public, shares } = tcrypto::import::split(
            parsed,
            3,
            5,
            &tcrypto::rsa::SplitOptions::default(),
            &mut rand::rng(),
        )
        .unwrap() else {
            panic!("{tag}: not split as RSA");
        };
        assert!(public.is_ordinary(), "{tag}: primes are not safe primes");
        let key = cluster
            .import_rsa_shares(&public, &shares, &mut rand::rng())
            .unwrap();
        drop(shares);
        let csk = example_cluster_csk(&cluster, key);
        let mut opts = SignOptions::new(now());
        opts.denial = Denial::Nsec;
        let keys: [&dyn ZoneSigningKey; 1] = [&csk];
        let (signed, _) = sign_zone(load("features.zone", "example."), &keys, &opts, None).unwrap();
        assert_signed_zone_accepted(
            dir.path(),
            &format!("{tag}.signed"),
            &signed,
            "example",
            false,
            false,
        );
        // The zone's DNSKEY is the original key's, byte for byte (so is its key tag).
        let original = dnskey_rdata(&std::fs::read_to_string(anchor).unwrap());
        let text = std::fs::read_to_string(dir.path().join(format!("{tag}.signed"))).unwrap();
        let in_zone: Vec<String> = text
            .lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("DNSKEY"))
            .map(dnskey_rdata)
            .collect();
        assert_eq!(
            in_zone,
            [original],
            "{tag}: the zone's DNSKEY is not the original one"
        );
    }
}

/// The DNSKEY rdata (flags, protocol, algorithm, key) of a DNSKEY line, fields joined, comments dropped.
fn dnskey_rdata(line: &str) -> String {
    let line = line
        .lines()
        .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
        .unwrap_or_default();
    let fields: Vec<&str> = line
        .split(';')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let at = fields.iter().position(|f| *f == "DNSKEY").unwrap();
    fields[at + 1..].concat()
}

/// The RFC 3110 DNSKEY public key (exponent length, exponent, modulus) of an `openssl genrsa` key (`e = 65537`,
/// openssl's default), the modulus as `openssl rsa -modulus` prints it.
fn rfc3110_of_pem(path: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().strip_prefix("Modulus=").unwrap();
    let n = data_encoding::HEXUPPER.decode(hex.as_bytes()).unwrap();
    [&[3u8, 1, 0, 1][..], &n].concat()
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
                tcrypto_net::transport::wire::RequestBody::Sign {
                    key: rsa,
                    // Not an RSA mechanism: without a policy the node refuses it too, and signs nothing.
                    mechanism: tcrypto_net::transport::wire::Mechanism::Ed25519 {
                        message: b"policy loaded?".to_vec(),
                    },
                },
            );
            match answer {
                Err(tcrypto_net::client::ClusterError::Node { detail, .. })
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
