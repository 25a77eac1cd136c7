//! `tcrypto-ctl` against real `tcrypto-node` daemons: ceremony bundles imported through the coordinator, signatures
//! checked by the `rsa` crate and `ed25519-dalek`, `health` exit codes as a monitor reads them with nodes killed,
//! SIGHUP that leaves the daemon serving, and errors that name the key or file at fault.
#![cfg(feature = "dealer")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

use common::{NodeProc, node_proc};
use tcrypto_net::identity::{SealedTlsIdentity, TlsIdentity};
use tcrypto_net::store::KdfCost;

const CTL: &str = env!("CARGO_BIN_EXE_tcrypto-ctl");
const NODE: &str = env!("CARGO_BIN_EXE_tcrypto-node");
const COORDINATOR_PASS: &str = "operator test passphrase";

/// Three started daemons pinning each other, and a coordinator configuration with a sealed identity.
fn cluster(tag: &str) -> (PathBuf, Vec<NodeProc>, PathBuf) {
    let dir = common::scratch(tag);
    let coordinator = TlsIdentity::generate("ops").unwrap();
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| node_proc(&dir, i, &coordinator)).collect();
    common::testing::pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let sealed =
        SealedTlsIdentity::seal(&coordinator, COORDINATOR_PASS, KdfCost::TESTING, &mut rand::rng()).unwrap();
    std::fs::write(dir.join("coordinator.identity"), sealed.encode()).unwrap();
    std::fs::write(dir.join("coordinator.pass"), format!("{COORDINATOR_PASS}\n")).unwrap();
    let mut text =
        "identity = \"coordinator.identity\"\npassphrase_file = \"coordinator.pass\"\n".to_string();
    for n in &nodes {
        text.push_str(&format!(
            "[[nodes]]\naddress = \"{}\"\npublic = \"{}\"\n",
            n.addr,
            n.public_hex()
        ));
    }
    let config = dir.join("coordinator.toml");
    std::fs::write(&config, text).unwrap();
    (dir, nodes, config)
}

/// The DER inside a `PUBLIC KEY` PEM document.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    data_encoding::BASE64.decode(body.as_bytes()).unwrap()
}

fn ctl(config: &Path, args: &[&str]) -> Output {
    Command::new(CTL)
        .arg("--config")
        .arg(config)
        .args(["--wait", "3"])
        .args(args)
        .env_remove("TCRYPTO_COORDINATOR_PASSPHRASE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tcrypto-ctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ceremony_bundles_imported_through_the_coordinator_sign_and_sighup_keeps_the_daemon_serving() {
    let (dir, nodes, config) = cluster("ctl-import");
    let primes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tcrypto/tests/data/safe_primes_1024.txt");
    let ceremony = dir.join("ceremony");
    let mut cmd = Command::new(NODE);
    cmd.args(["ceremony", "--threshold", "2", "--primes"])
        .arg(&primes);
    for n in &nodes {
        cmd.arg("--node").arg(n.data.join("node.pub"));
    }
    let out = cmd.arg("--out").arg(&ceremony).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = std::fs::read_to_string(ceremony.join("key-id"))
        .unwrap()
        .trim()
        .to_string();

    let imported = ok(ctl(&config, &["--tsv", "import", ceremony.to_str().unwrap()]));
    assert_eq!(imported.trim(), key);
    let listed = ok(ctl(&config, &["--tsv", "list"]));
    assert!(
        listed.starts_with(&format!("{key}\trsa\t2048\t2\t3\t")),
        "{listed}"
    );

    // SIGHUP twice: the daemons reload and go on serving.
    for n in &nodes {
        let pid = n.child.as_ref().unwrap().id().to_string();
        for _ in 0..2 {
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    let digest = hex::encode(sha2::Sha256::digest(b"operator"));
    let sig_file = dir.join("rsa.sig");
    ok(ctl(
        &config,
        &[
            "sign",
            &key[..12],
            "--mechanism",
            "rsa-pss-sha256",
            "--digest",
            &digest,
            "--out",
            sig_file.to_str().unwrap(),
        ],
    ));
    let pem = ok(ctl(&config, &["export", &key]));
    use rsa::pkcs8::DecodePublicKey as _;
    let verifier = rsa::PublicKey::from_public_key_der(&pem_der(&pem)).unwrap();
    verifier
        .verify(
            rsa::pss::Pss::<sha2::Sha256>::new(),
            &hex::decode(&digest).unwrap(),
            &std::fs::read(&sig_file).unwrap(),
        )
        .unwrap();
    for mut n in nodes {
        assert!(
            n.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "SIGHUP killed a daemon"
        );
    }
}

#[test]
fn health_exit_codes_tell_a_monitor_whether_keys_can_still_sign() {
    let (dir, mut nodes, config) = cluster("ctl-health");
    let key = ok(ctl(
        &config,
        &["--tsv", "create", "--algorithm", "ed25519", "--threshold", "2"],
    ));
    let key = key.trim();
    let message = dir.join("message");
    std::fs::write(&message, b"monitored").unwrap();
    let sig = dir.join("ed.sig");
    ok(ctl(
        &config,
        &[
            "sign",
            key,
            "-m",
            "ed25519",
            "--in",
            message.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
    ));
    let pem = ok(ctl(&config, &["export", key]));
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let vk = ed25519_dalek::VerifyingKey::from_public_key_der(&pem_der(&pem)).unwrap();
    vk.verify_strict(
        b"monitored",
        &ed25519_dalek::Signature::from_slice(&std::fs::read(&sig).unwrap()).unwrap(),
    )
    .unwrap();

    assert_eq!(ctl(&config, &["health"]).status.code(), Some(0));
    nodes[2].kill();
    let out = ctl(&config, &["--tsv", "health"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node3\tdown"));
    nodes[1].kill();
    let out = ctl(&config, &["--json", "health"]);
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], 4);
    assert!(doc["keys_unable_to_sign"][0].as_str().unwrap().starts_with(key));
}

#[test]
fn errors_name_the_key_or_file_at_fault() {
    let (dir, _nodes, config) = cluster("ctl-errors");
    let out = ctl(&config, &["export", "deadbeef00"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key deadbeef00: no such key"), "{err}");

    // A wrong passphrase names the identity file; no connection is made.
    std::fs::write(dir.join("coordinator.pass"), "not it\n").unwrap();
    let out = ctl(&config, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("coordinator.identity") && err.contains("wrong passphrase"),
        "{err}"
    );
    let missing = dir.join("nope.toml");
    let out = ctl(&missing, &["list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}
