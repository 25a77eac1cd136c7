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
use tcrypto_net::cluster::ClusterError;
use tcrypto_net::coordinator::{CoordinatorConfig, SignError};
use tcrypto_net::policy::{dnskey_public_key, key_tag};
use tcrypto_net::wire::{Algorithm, Mechanism, RequestBody};

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

fn wire_name(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).unwrap());
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// RRSIG signature data (RFC 4034 3.1.8.1) for one A record, times relative to now in seconds.
fn rrsig_data(signer: &str, owner: &str, rtype: u16, tag: u16, inception: i64, expiration: i64) -> Vec<u8> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let stamp = |offset: i64| u32::try_from((now + offset).rem_euclid(1 << 32)).unwrap();
    let owner_wire = wire_name(owner);
    let labels = u8::try_from(owner.trim_end_matches('.').split('.').count()).unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(&rtype.to_be_bytes());
    out.push(15);
    out.push(labels);
    out.extend_from_slice(&3600u32.to_be_bytes());
    out.extend_from_slice(&stamp(expiration).to_be_bytes());
    out.extend_from_slice(&stamp(inception).to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&wire_name(signer));
    out.extend_from_slice(&owner_wire);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&3600u32.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&[192, 0, 2, 1]);
    out
}

fn hup(node: &NodeProc) {
    let pid = node.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
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
    let (pk, shares) = common::rsa_key(1024, 3, 5, 31);
    let rsa = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    let public = cluster.public_key(&ed).unwrap();
    let tag = key_tag(256, 15, &dnskey_public_key(&public, 15).unwrap());

    // Each node's operator: the Ed25519 key is an example.com ZSK for 30 days, the P-256 key signs RRSIG data
    // only (no bare digests), and other keys (the RSA key) are refused.
    let policy = format!(
        r#"
[[key]]
key = "{ed}"
mechanisms = ["dnssec-rrsig"]
[key.dnssec]
zones = ["example.com."]
role = "zsk"
algorithm = 15
max_validity = "30d"
max_inception_age = "2h"
max_expiration_ahead = "31d"

[[key]]
key = "{ec}"
mechanisms = ["dnssec-rrsig"]
[key.dnssec]
zones = ["example.com."]
role = "zsk"
algorithm = 13
max_validity = "30d"
max_inception_age = "2h"
max_expiration_ahead = "31d"
"#
    );
    for n in &nodes {
        let file = n
            .data
            .parent()
            .unwrap()
            .join(format!("{}-policy.toml", n.public.name));
        std::fs::write(&file, &policy).unwrap();
        let text = std::fs::read_to_string(&n.config).unwrap();
        std::fs::write(
            &n.config,
            format!("policy_file = {:?}\n{text}", file.display().to_string()),
        )
        .unwrap();
        hup(n);
    }
    // SIGHUP is handled asynchronously: wait until every node refuses the RSA key.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..5 {
        loop {
            let answer = cluster.request(
                i,
                RequestBody::Sign {
                    key: rsa,
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
    let allowed = rrsig_data("example.com.", "www.example.com.", 1, tag, -3600, 14 * 86_400);
    let mech = Mechanism::Ed25519 {
        message: allowed.clone(),
    };
    let sig = cluster.sign(ed, mech.clone()).unwrap();
    common::ec_verifies(&public, &mech, &sig.bytes).unwrap();

    // What the stolen coordinator tries, and the rule each must fall to.
    let day = 86_400;
    let attempts: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a record of example.net",
            rrsig_data("example.net.", "www.example.net.", 1, tag, -3600, 14 * day),
            "zone-not-allowed",
        ),
        (
            "valid for ten years",
            rrsig_data("example.com.", "www.example.com.", 1, tag, -3600, 3650 * day),
            "expiration-too-far",
        ),
        (
            "inception a year back",
            rrsig_data("example.com.", "www.example.com.", 1, tag, -365 * day, -350 * day),
            "inception-too-old",
        ),
        (
            "the DNSKEY set, a KSK's type",
            rrsig_data("example.com.", "example.com.", 48, tag, -3600, 14 * day),
            "type-not-for-role",
        ),
        (
            "another key tag",
            rrsig_data("example.com.", "www.example.com.", 1, tag ^ 1, -3600, 14 * day),
            "key-tag-mismatch",
        ),
        (
            "arbitrary bytes",
            b"pay 1000 to mallory".to_vec(),
            "malformed-data",
        ),
    ];
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
        refused_rule(cluster.sign(rsa, common::pkcs1_sha256(b"a document"))),
        "no-policy-for-key"
    );

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
            log.lines()
                .any(|l| (l.contains("op=sign ") || l.contains("op=ecdsa-sign")) && l.contains("outcome=ok"))
        })
        .count();
    assert_eq!(sign_ok, 0, "an RSA or ECDSA share was made");

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
    let file = nodes[0].data.parent().unwrap().join("node1-policy.toml");
    std::fs::write(&file, "[[key]]\nkey = \"not hex\"\n").unwrap();
    hup(&nodes[0]);
    std::thread::sleep(Duration::from_millis(500));
    let answer = cluster.request(
        0,
        RequestBody::Sign {
            key: rsa,
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
