//! Nodes that judge what they sign: five `tcrypto-node` processes whose operators wrote a signing policy, and a
//! stolen coordinator (this test holds the coordinator's identity) that tries what the policy forbids. Every
//! forbidden request is refused by the nodes asked, with the rule in their audit logs, and nothing is signed; the
//! allowed RRSIG is signed and verifies. The policy is loaded on SIGHUP; one that does not load leaves the
//! previous one in force.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::NodeProc;
use tcrypto::KeyId;
use tcrypto_net::client::ClusterError;
use tcrypto_net::coordinator::{CoordinatorConfig, SignError};
use tcrypto_net::node::policy::{RrsigBuilder, dnskey_public_key, key_tag, rrsig_time};
use tcrypto_net::transport::wire::{Algorithm, DataMechanism, Mechanism, RequestBody, SignData};

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        frost_low_watermark: 4,
        frost_high_watermark: 8,
        presign_low_watermark: 4,
        presign_high_watermark: 8,
        ..CoordinatorConfig::default()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// RRSIG signature data (RFC 4034 3.1.8.1) with `algorithm` for one A record, times relative to now in seconds.
fn rrsig_data(
    algorithm: u8,
    signer: &str,
    owner: &str,
    rtype: u16,
    tag: u16,
    inception: i64,
    expiration: i64,
) -> Vec<u8> {
    let now = now();
    RrsigBuilder::new(signer, owner, rtype, algorithm)
        .unwrap()
        .signed(rrsig_time(now, inception), rrsig_time(now, expiration), tag)
        .rdata(&[192, 0, 2, 1])
        .build()
}

/// What a stolen coordinator tries with a key of DNSSEC `algorithm` and key tag `tag`, and the rule each must fall
/// to.
fn forbidden(algorithm: u8, tag: u16) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let day = 86_400;
    let data = |signer, owner, rtype, tag, inception, expiration| {
        rrsig_data(algorithm, signer, owner, rtype, tag, inception, expiration)
    };
    vec![
        (
            "a record of example.net",
            data("example.net.", "www.example.net.", 1, tag, -3600, 14 * day),
            "zone-not-allowed",
        ),
        (
            "valid for ten years",
            data("example.com.", "www.example.com.", 1, tag, -3600, 3650 * day),
            "expiration-too-far",
        ),
        (
            "inception a year back",
            data("example.com.", "www.example.com.", 1, tag, -365 * day, -350 * day),
            "inception-too-old",
        ),
        (
            "the DNSKEY set, a KSK's type",
            data("example.com.", "example.com.", 48, tag, -3600, 14 * day),
            "type-not-for-role",
        ),
        (
            "another key tag",
            data("example.com.", "www.example.com.", 1, tag ^ 1, -3600, 14 * day),
            "key-tag-mismatch",
        ),
        (
            "arbitrary bytes",
            b"pay 1000 to mallory".to_vec(),
            "malformed-data",
        ),
    ]
}

/// The rule of a policy refusal through the cluster (the test fails on anything else).
fn refused_rule(result: Result<tcrypto_net::coordinator::Signature, ClusterError>) -> String {
    match result {
        Err(ClusterError::Sign(SignError::PolicyRefused { detail, .. })) => {
            detail.split(':').next().unwrap().to_string()
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

/// Nodes whose audit log holds `needle`.
fn audited(nodes: &[NodeProc], needle: &str) -> usize {
    nodes
        .iter()
        .filter(|n| {
            std::fs::read_to_string(n.data.join("audit.log"))
                .unwrap_or_default()
                .contains(needle)
        })
        .count()
}

#[test]
fn a_stolen_coordinator_signs_only_what_the_node_operators_policy_allows() {
    let (nodes, cluster, _identity) = common::pinned_cluster("policy", 5, config());
    let ed = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    let ec = cluster.create_key(Algorithm::EcdsaP256, 3).unwrap();
    let other = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    let (pk, shares) = common::rsa_key(1024, 3, 5, 31);
    let rsa = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    let public = cluster.public_key(&ed).unwrap();
    let tag = key_tag(256, 15, &dnskey_public_key(&public, 15).unwrap());
    let ec_public = cluster.public_key(&ec).unwrap();
    let ec_tag = key_tag(256, 13, &dnskey_public_key(&ec_public, 13).unwrap());
    let rsa_public = cluster.public_key(&rsa).unwrap();
    let rsa_tag = key_tag(256, 8, &dnskey_public_key(&rsa_public, 8).unwrap());

    // Each node's operator: the Ed25519, P-256 and RSA keys are example.com ZSKs for 30 days and sign RRSIG data
    // only (no bare digests); other keys are refused.
    let zsk = |key: &dyn std::fmt::Display, algorithm: u8| {
        format!(
            r#"
[[key]]
key = "{key}"
mechanisms = ["dnssec-rrsig"]
[key.dnssec]
zones = ["example.com."]
role = "zsk"
algorithm = {algorithm}
max_validity = "30d"
max_inception_age = "2h"
max_expiration_ahead = "31d"
"#
        )
    };
    let policy = [zsk(&rsa, 8), zsk(&ed, 15), zsk(&ec, 13)].concat();
    for n in &nodes {
        n.set_policy(&policy);
    }
    // SIGHUP is handled asynchronously: wait until every node refuses the key without a policy.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..5 {
        loop {
            let answer = cluster.request(
                i,
                RequestBody::Sign {
                    key: other,
                    mechanism: common::pkcs1_sha256(b"anything"),
                },
            );
            match answer {
                Err(ClusterError::Node { detail, .. }) if detail.starts_with("PolicyRefused") => {
                    assert!(detail.contains("no-policy-for-key"), "{detail}");
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

    // The allowed RRSIG is signed, and verifies.
    let allowed = rrsig_data(15, "example.com.", "www.example.com.", 1, tag, -3600, 14 * 86_400);
    let mech = Mechanism::Ed25519 {
        message: allowed.clone(),
    };
    let sig = cluster.sign(ed, mech.clone()).unwrap();
    common::ec_verifies(&public, &mech, &sig.bytes).unwrap();

    // What the stolen coordinator tries, and the rule each must fall to.
    let attempts = forbidden(15, tag);
    for (what, data, rule) in &attempts {
        let got = refused_rule(cluster.sign(
            ed,
            Mechanism::Ed25519 {
                message: data.clone(),
            },
        ));
        assert_eq!(&got, rule, "{what}");
    }
    // A bare digest for a key that signs data only, and a key the policy does not name.
    let digest = tcrypto::HashAlg::Sha256.digest(b"a bare digest");
    assert_eq!(
        refused_rule(cluster.sign(ec, Mechanism::Ecdsa { digest })),
        "mechanism-not-allowed"
    );
    assert_eq!(
        refused_rule(cluster.sign(
            other,
            Mechanism::Ed25519 {
                message: b"a document".to_vec()
            }
        )),
        "no-policy-for-key"
    );

    rsa_and_p256_data_requests_are_judged_by_every_node(&nodes, &cluster, (rsa, rsa_tag), (ec, ec_tag));

    // Every node asked refused with the rule in its audit log (a FROST signature asks k = 3 nodes at once; the
    // RSA key was asked of every node above); nothing but the allowed RRSIG was signed.
    let deadline = Instant::now() + Duration::from_secs(10);
    for rule in attempts
        .iter()
        .map(|(_, _, r)| *r)
        .chain(["mechanism-not-allowed"])
    {
        while audited(&nodes, &format!("rule={rule}")) < 3 {
            assert!(
                Instant::now() < deadline,
                "rule {rule} audited by fewer than 3 nodes"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(audited(&nodes, "rule=no-policy-for-key"), 5);
    let signed: usize = nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(n.data.join("audit.log"))
                .unwrap()
                .lines()
                .filter(|l| l.contains("op=frost-sign") && l.contains("outcome=ok"))
                .count()
        })
        .sum();
    assert_eq!(signed, 3, "frost-sign answered other than for the allowed RRSIG");
    let sign_ok = nodes
        .iter()
        .map(|n| std::fs::read_to_string(n.data.join("audit.log")).unwrap())
        .filter(|log| {
            log.lines().any(|l| {
                ["op=sign ", "op=ecdsa-sign ", "op=dkls-sign "]
                    .iter()
                    .any(|op| l.contains(op))
                    && l.contains("outcome=ok")
            })
        })
        .count();
    assert_eq!(sign_ok, 0, "an RSA or ECDSA share was made for a digest");

    // `status` shows the policy; a policy file that no longer loads is reported there and, on SIGHUP, leaves the
    // previous policy in force.
    let status = |n: &NodeProc| {
        Command::new(&n.bin)
            .args(["status", "--config"])
            .arg(&n.config)
            .output()
            .unwrap()
    };
    let out = status(&nodes[1]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("policy ") && text.contains(&format!("key {ed}")),
        "{text}"
    );
    nodes[0].set_policy("[[key]]\nkey = \"not hex\"\n");
    std::thread::sleep(Duration::from_millis(500));
    let answer = cluster.request(
        0,
        RequestBody::Sign {
            key: other,
            mechanism: common::pkcs1_sha256(b"after a broken reload"),
        },
    );
    assert!(
        matches!(&answer, Err(ClusterError::Node { detail, .. }) if detail.contains("no-policy-for-key")),
        "{answer:?}"
    );
    let out = status(&nodes[0]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("does not load"), "{text}");
    assert_ne!(out.status.code(), Some(0));
    let _: KeyId = ed;
}

/// The allowed RSA (algorithm 8) and P-256 (algorithm 13) RRSIGs are signed from their data and verify (with the
/// `rsa` and `p256` crates); every forbidden one, sent as data to every node in each data-carrying request kind
/// (RSA shares, ECDSA presignature shares, DKLs23 round 1), is refused by each node with the rule, and through the
/// cluster with a typed policy refusal. A bare digest, and data whose hash is not the RRSIG algorithm's, are
/// refused too.
fn rsa_and_p256_data_requests_are_judged_by_every_node(
    nodes: &[NodeProc],
    cluster: &tcrypto_net::client::blocking::BlockingCluster,
    (rsa, rsa_tag): (KeyId, u16),
    (ec, ec_tag): (KeyId, u16),
) {
    let rrsig = |data: Vec<u8>| SignData {
        mechanism: DataMechanism::DnssecRrsig,
        data,
    };
    for (key, algorithm, tag) in [(rsa, 8, rsa_tag), (ec, 13, ec_tag)] {
        let public = cluster.public_key(&key).unwrap();
        let allowed = rrsig_data(
            algorithm,
            "example.com.",
            "www.example.com.",
            1,
            tag,
            -3600,
            14 * 86_400,
        );
        let sig = cluster
            .sign_data(key, DataMechanism::DnssecRrsig, allowed.clone())
            .unwrap();
        let digest_form = rrsig(allowed.clone()).digest_form().unwrap();
        match &public {
            tcrypto_net::algo::PublicKey::Rsa(pk) => {
                common::rsa_crate_verifies(pk, &digest_form, &sig.bytes).unwrap();
            }
            p => common::ec_verifies(p, &digest_form, &sig.bytes).unwrap(),
        }
        for (what, data, rule) in forbidden(algorithm, tag) {
            let audited_as = format!(
                "message_sha256={}",
                hex::encode(tcrypto::HashAlg::Sha256.digest(&data))
            );
            let result = cluster.sign_data(key, DataMechanism::DnssecRrsig, data.clone());
            if rule == "malformed-data" {
                // An honest coordinator does not even send what does not parse; a stolen one does (below).
                assert!(
                    matches!(&result, Err(ClusterError::Sign(SignError::BadRequest(d))) if d.contains(rule)),
                    "{result:?}"
                );
            } else {
                assert_eq!(refused_rule(result), rule, "algorithm {algorithm}: {what}");
            }
            for (i, node) in nodes.iter().enumerate() {
                let run = tcrypto::SessionId([7; 32]);
                let body = if algorithm == 8 {
                    RequestBody::SignData {
                        key,
                        data: rrsig(data.clone()),
                    }
                } else if i % 2 == 0 {
                    RequestBody::EcdsaSignData {
                        key,
                        run,
                        index: 0,
                        data: rrsig(data.clone()),
                    }
                } else {
                    RequestBody::DklsSignData {
                        key,
                        run,
                        signers: Vec::new(),
                        data: rrsig(data.clone()),
                    }
                };
                match cluster.request(i, body) {
                    Err(ClusterError::Node { detail, .. }) => assert!(
                        detail.starts_with("PolicyRefused") && detail.contains(rule),
                        "{} on algorithm {algorithm}, {what}: {detail}",
                        node.public.name
                    ),
                    other => panic!("{} signed {what}: {other:?}", node.public.name),
                }
                // Every node audited the refusals of this data, and answered none of them.
                let log = std::fs::read_to_string(node.data.join("audit.log")).unwrap();
                let lines: Vec<&str> = log.lines().filter(|l| l.contains(&audited_as)).collect();
                assert!(
                    lines.iter().any(|l| l.contains(&format!("rule={rule}"))),
                    "{}: no refusal of {what} audited",
                    node.public.name
                );
                assert!(
                    lines.iter().all(|l| !l.contains("outcome=ok")),
                    "{} signed {what}",
                    node.public.name
                );
            }
        }
        // A bare digest, plain data the key's policy judges as RRSIG data, and a hash the RRSIG does not name.
        let digest = rrsig(allowed.clone()).digest_form().unwrap();
        assert_eq!(refused_rule(cluster.sign(key, digest)), "mechanism-not-allowed");
        let (plain, other_hash) = if algorithm == 8 {
            (
                DataMechanism::RsaPkcs1v15 {
                    hash: tcrypto::HashAlg::Sha256,
                },
                DataMechanism::RsaPkcs1v15 {
                    hash: tcrypto::HashAlg::Sha512,
                },
            )
        } else {
            (
                DataMechanism::Ecdsa {
                    hash: tcrypto::HashAlg::Sha256,
                },
                DataMechanism::Ecdsa {
                    hash: tcrypto::HashAlg::Sha384,
                },
            )
        };
        assert_eq!(
            refused_rule(cluster.sign_data(key, plain.clone(), b"pay 1000 to mallory".to_vec())),
            "malformed-data"
        );
        assert_eq!(
            refused_rule(cluster.sign_data(key, other_hash, allowed.clone())),
            "algorithm-mismatch"
        );
        // The same RRSIG data under the plain hashing mechanism a PKCS#11 host uses is signed.
        let sig = cluster.sign_data(key, plain, allowed.clone()).unwrap();
        match &public {
            tcrypto_net::algo::PublicKey::Rsa(pk) => {
                common::rsa_crate_verifies(pk, &digest_form, &sig.bytes).unwrap();
            }
            p => common::ec_verifies(p, &digest_form, &sig.bytes).unwrap(),
        }
    }
}
