//! `tcrypto-node backup` / `restore` on real daemons: a node's archive taken while it signs, the node wiped and
//! restored from it, signing again; no presignature is used twice across the restore (distinct `r` over every
//! ECDSA signature), and a damaged archive or a wrong passphrase restores nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::NodeProc;
use sha2::Digest as _;
use tcrypto::KeyId;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::wire::{Algorithm, Mechanism};

fn node_cmd(n: &NodeProc, passphrase: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(&n.bin)
        .args(args)
        .args(["--config", n.config.to_str().unwrap()])
        .env("TCRYPTO_NODE_PASSPHRASE", passphrase)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Signs `count` messages with each key, checks every signature, and records the `r` of the ECDSA ones (each must
/// be new).
fn sign(cluster: &BlockingCluster, keys: &[KeyId], from: u32, count: u32, seen_r: &mut HashSet<Vec<u8>>) {
    for i in from..from + count {
        for key in keys {
            let public = cluster.public_key(key).unwrap();
            let message = format!("backup test {i}").into_bytes();
            let mech = match public {
                tcrypto_net::algo::PublicKey::Ecdsa(_) => Mechanism::Ecdsa {
                    digest: sha2::Sha256::digest(&message).to_vec(),
                },
                _ => Mechanism::Ed25519 { message },
            };
            let sig = cluster.sign(*key, mech.clone()).unwrap();
            common::ec_verifies(&public, &mech, &sig.bytes).unwrap();
            if let Mechanism::Ecdsa { .. } = mech {
                let parsed = p256::ecdsa::Signature::from_der(&sig.bytes).unwrap();
                assert!(
                    seen_r.insert(parsed.r().to_bytes().to_vec()),
                    "a nonce was used twice"
                );
            }
        }
    }
}

fn flip_byte(from: &Path, to: &Path, at: usize) {
    let mut b = std::fs::read(from).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    std::fs::write(to, b).unwrap();
}

#[test]
fn a_node_restored_from_its_backup_signs_again_and_never_reuses_a_presignature() {
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(3),
        presign_low_watermark: 4,
        presign_high_watermark: 8,
        ..CoordinatorConfig::default()
    };
    let (mut nodes, cluster, _) = common::pinned_cluster("backup", 3, cfg);
    let dir = nodes[0].data.parent().unwrap().to_path_buf();
    let ec = cluster.create_key(Algorithm::EcdsaP256, 2).unwrap();
    let ed = cluster.create_key(Algorithm::Ed25519, 2).unwrap();
    let mut seen_r = HashSet::new();
    sign(&cluster, &[ec, ed], 0, 12, &mut seen_r);

    // The archive is taken while node 1 serves; then node 1 spends more presignatures.
    let pass = nodes[0].passphrase.clone();
    let archive = dir.join("node1.backup");
    let (ok, out) = node_cmd(&nodes[0], &pass, &["backup", "--out", archive.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("presignature files left out"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (ok, out) = node_cmd(&nodes[0], &pass, &["backup", "--out", archive.to_str().unwrap()]);
    assert!(!ok && out.contains("refusing to overwrite"), "{out}");
    sign(&cluster, &[ec, ed], 100, 12, &mut seen_r);

    // The machine dies: the data directory is gone (moved away here, so the test can look at it).
    nodes[0].kill();
    let wiped = dir.join("node1.wiped");
    std::fs::rename(&nodes[0].data, &wiped).unwrap();

    // Damaged archives and a wrong passphrase restore nothing.
    let len = std::fs::read(&archive).unwrap().len();
    for (at, what) in [(40, "header"), (len / 2, "contents"), (len - 1, "tag")] {
        let bad = dir.join(format!("bad-{what}.backup"));
        flip_byte(&archive, &bad, at);
        let (ok, out) = node_cmd(&nodes[0], &pass, &["restore", bad.to_str().unwrap()]);
        assert!(!ok, "{what}: {out}");
        assert!(
            out.contains("damaged") || out.contains("store.meta"),
            "{what}: {out}"
        );
        assert!(!nodes[0].data.exists(), "{what}: something was left");
    }
    let (ok, out) = node_cmd(
        &nodes[0],
        "not the passphrase",
        &["restore", archive.to_str().unwrap()],
    );
    assert!(!ok && out.contains("wrong passphrase"), "{out}");
    assert!(!nodes[0].data.exists());

    let (ok, out) = node_cmd(&nodes[0], &pass, &["restore", archive.to_str().unwrap()]);
    assert!(ok, "{out}");
    // Restoring over a live data directory is refused.
    let (ok, out) = node_cmd(&nodes[0], &pass, &["restore", archive.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");
    nodes[0].start();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 3);
    // All three sign ECDSA again: nothing spent before the restore comes back.
    sign(&cluster, &[ec, ed], 200, 24, &mut seen_r);
    // The restored node is needed: with node 2 down, Ed25519 signs with nodes 1 and 3.
    nodes[1].kill();
    sign(&cluster, &[ed], 300, 6, &mut seen_r);
    assert_eq!(seen_r.len(), 48);

    // Its audit chain goes on from the archived head.
    let (ok, out) = node_cmd(&nodes[0], &pass, &["audit", "verify"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("earlier files removed") || out.contains("starts at entry"),
        "{out}"
    );
}
