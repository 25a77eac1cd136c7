//! Nodes that judge what they sign: five in-process nodes (loopback mutual TLS) whose operators each set an
//! `example.com` zone-signing policy for an Ed25519 key made by DKG. The example signs an allowed RRSIG (verified
//! with `ed25519-dalek`), then tries what a stolen coordinator would — another zone, ten years of validity, an
//! inception a year back, a KSK's type, another key tag, arbitrary bytes — printing one line per attempt
//! (`signed` or `refused: <rule>`). It exits non-zero if anything forbidden was signed or the allowed RRSIG was
//! refused.
//!
//! ```text
//! cargo run --release --example policy
//! ```

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tcrypto_net::client::ClusterError;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::{CoordinatorConfig, SignError};
use tcrypto_net::node::policy::{Policy, RrsigBuilder, dnskey_public_key, key_tag, rrsig_time};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism};

/// The data an RRSIG signs (RFC 4034 3.1.8.1) for `owner` IN `rtype` with one 4-byte RDATA, signed by
/// `signer` with Ed25519 (algorithm 15) and `tag`, valid from `inception` to `expiration` seconds from now.
fn rrsig_data(
    signer: &str,
    owner: &str,
    rtype: u16,
    tag: u16,
    inception: i64,
    expiration: i64,
) -> Result<Vec<u8>, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(RrsigBuilder::new(signer, owner, rtype, 15)?
        .signed(rrsig_time(now, inception), rrsig_time(now, expiration), tag)
        .rdata(&[192, 0, 2, 1])
        .build())
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let coordinator = TlsIdentity::generate("coordinator")?;
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()])?;
    let cluster = BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default())?;
    cluster.connect(Duration::from_secs(10));
    let key = cluster.create_key(Algorithm::Ed25519, 3)?;
    let public = cluster
        .public_key(&key)
        .ok_or("the new key's public key is unknown")?;
    let tag = key_tag(256, 15, &dnskey_public_key(&public, 15)?);
    println!("Ed25519 3-of-5 key {key} made by DKG; as an example.com ZSK its key tag is {tag}");

    // What each node's operator writes in the file named by `policy_file` in its configuration.
    let policy = format!(
        r#"[[key]]
key = "{key}"
mechanisms = ["dnssec-rrsig"]
[key.dnssec]
zones = ["example.com."]
role = "zsk"
algorithm = 15
max_validity = "30d"
max_inception_age = "2h"
max_expiration_ahead = "31d"
"#
    );
    for node in &nodes.nodes {
        node.set_policy(Some(Policy::parse(&policy, "policy.toml".as_ref())?));
    }
    let short = &key.to_string()[..8];
    println!("every node: key {short} signs RRSIGs of example.com as a ZSK, at most 30 days valid\n");

    let verifier = ed25519_dalek::VerifyingKey::from_bytes(
        &dnskey_public_key(&public, 15)?
            .try_into()
            .map_err(|_| "key length")?,
    )?;
    let day = 86_400;
    let allowed = rrsig_data("example.com.", "www.example.com.", 1, tag, -3600, 14 * day)?;
    let attempts: [(&str, Vec<u8>, bool); 7] = [
        ("www.example.com. A, 14 days (allowed)", allowed, true),
        (
            "www.example.net. A (another zone)",
            rrsig_data("example.net.", "www.example.net.", 1, tag, -3600, 14 * day)?,
            false,
        ),
        (
            "www.example.com. A valid for ten years",
            rrsig_data("example.com.", "www.example.com.", 1, tag, -3600, 3650 * day)?,
            false,
        ),
        (
            "www.example.com. A with inception a year back",
            rrsig_data("example.com.", "www.example.com.", 1, tag, -365 * day, -350 * day)?,
            false,
        ),
        (
            "example.com. DNSKEY (a KSK's type)",
            rrsig_data("example.com.", "example.com.", 48, tag, -3600, 14 * day)?,
            false,
        ),
        (
            "www.example.com. A naming another key tag",
            rrsig_data("example.com.", "www.example.com.", 1, tag ^ 1, -3600, 14 * day)?,
            false,
        ),
        ("arbitrary bytes", b"pay 1000 to mallory".to_vec(), false),
    ];
    let mut wrong = 0;
    for (what, data, allowed) in attempts {
        let result = cluster.sign(
            key,
            Mechanism::Ed25519 {
                message: data.clone(),
            },
        );
        let line = match &result {
            Ok(sig) => {
                let signature = ed25519_dalek::Signature::from_slice(&sig.bytes)?;
                match verifier.verify_strict(&data, &signature) {
                    Ok(()) => "signed (verified by ed25519-dalek)".to_string(),
                    Err(e) => format!("signed, but ed25519-dalek rejects it: {e}"),
                }
            }
            Err(ClusterError::Sign(SignError::PolicyRefused { node, detail })) => {
                format!("refused: {} ({node})", detail.split(':').next().unwrap_or(detail))
            }
            Err(e) => format!("failed: {e}"),
        };
        let as_expected = match (&result, allowed) {
            (Ok(_), true) => line.ends_with("(verified by ed25519-dalek)"),
            (Err(ClusterError::Sign(SignError::PolicyRefused { .. })), false) => true,
            _ => false,
        };
        if !as_expected {
            wrong += 1;
        }
        println!(
            "{what:<48} {line}{}",
            if as_expected {
                ""
            } else {
                "   <-- NOT AS THE POLICY SAYS"
            }
        );
    }
    Ok(if wrong == 0 {
        println!("\nthe policy held: the allowed RRSIG signed, every forbidden request refused");
        ExitCode::SUCCESS
    } else {
        println!("\n{wrong} attempts did not go as the policy says");
        ExitCode::FAILURE
    })
}
