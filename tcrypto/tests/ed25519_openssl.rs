//! Threshold Ed25519 signatures checked by the `openssl` command-line tool (CI installs it; a missing tool fails
//! the test).

#![allow(clippy::unwrap_used)]

#[path = "common/dkg_net.rs"]
mod net;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use net::{honest, seeded_rng};
use tcrypto::SessionId;
use tcrypto::dkg::Ed25519;
use tcrypto::ed25519::{self, KeyShare, SigningPackage, round1, round2};

fn openssl_verifies(dir: &Path, msg: &[u8], sig: &[u8]) -> bool {
    std::fs::write(dir.join("msg"), msg).unwrap();
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(dir.join("public.pem"))
        .arg("-rawin")
        .arg("-in")
        .arg(dir.join("msg"))
        .arg("-sigfile")
        .arg(dir.join("sig.bin"))
        .output()
        .expect("the openssl CLI must be installed (CI installs it)");
    if !out.status.success() {
        eprintln!(
            "openssl: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

#[test]
fn openssl_accepts_threshold_ed25519_signatures_and_rejects_altered_ones() {
    let mut rng = seeded_rng("ed25519_openssl");
    let shares: Vec<KeyShare> = honest::<Ed25519>(3, 5, &mut rng)
        .into_iter()
        .map(|s| KeyShare::from_dkg(s).unwrap())
        .collect();
    let public = shares[0].public();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("public.pem"), public.to_public_key_pem().unwrap()).unwrap();
    for (signers, msg) in [
        (vec![0usize, 1, 2], b"example.com. 3600 IN DNSKEY".to_vec()),
        (vec![1, 3, 4], vec![0u8; 1000]),
        // (openssl 3.0 pkeyutl cannot read an empty -rawin file, so no empty message here.)
        (vec![0, 2, 3, 4], vec![0x0a]),
    ] {
        let session = SessionId::random(&mut rng);
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for &i in &signers {
            let (n, c) = round1::commit(&shares[i], session, &mut rng).unwrap();
            nonces.insert(shares[i].id(), n);
            commitments.insert(shares[i].id(), c);
        }
        let package = SigningPackage::new(session, msg.clone(), commitments).unwrap();
        let mut z = BTreeMap::new();
        for &i in &signers {
            let n = nonces.remove(&shares[i].id()).unwrap();
            z.insert(shares[i].id(), round2::sign(&shares[i], n, &package).unwrap());
        }
        let sig = ed25519::aggregate(public, &package, &z).unwrap().to_bytes();
        assert!(
            openssl_verifies(dir.path(), &msg, &sig),
            "openssl rejected a threshold signature"
        );
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(
            !openssl_verifies(dir.path(), &msg, &bad),
            "openssl accepted an altered signature"
        );
    }
}
