//! PKCS#11 keys (SoftHSM2 through `cryptoki`) sign zones that the independent validators
//! accept, for algorithms 8, 13 and 15.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use dnssec_sign::keys::{Algorithm, ZoneSigningKey, verify_signature};
use dnssec_sign::pkcs11::Token;
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::verify::{VerifyOptions, verify_zone};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[test]
fn softhsm_keys_sign_zones_that_validators_accept() {
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} missing: .ci/run installs softhsm2"
    );
    // SoftHSM2 reads SOFTHSM2_CONF when the module is initialized. Setting the variable in
    // this process would need `unsafe` (edition 2024), which the workspace denies: the test
    // re-runs itself as a child process with the variable set.
    if let Some(dir) = std::env::var_os("DNSSEC_SIGN_SOFTHSM_DIR") {
        return signs_with_token(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "softhsm_keys_sign_zones_that_validators_accept",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .env("DNSSEC_SIGN_SOFTHSM_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signs_with_token(dir: &Path) {
    let (ok, out) = run(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            "dnssec",
            "--so-pin",
            "5678",
            "--pin",
            "1234",
        ],
    );
    assert!(ok, "{out}");
    let token = Token::open(Path::new(MODULE), "dnssec", "1234").unwrap();
    let owner = name("example.");
    for (alg, bits) in [
        (Algorithm::EcdsaP256Sha256, 0),
        (Algorithm::Ed25519, 0),
        (Algorithm::RsaSha256, 2048),
    ] {
        let ksk_label = format!("ksk-{}", alg.number());
        let zsk_label = format!("zsk-{}", alg.number());
        token.generate(&ksk_label, alg, bits).unwrap();
        token.generate(&zsk_label, alg, bits).unwrap();
        let ksk = token.key(&ksk_label, &owner, true, false, 2).unwrap();
        let zsk = token.key(&zsk_label, &owner, false, false, 4).unwrap();
        assert_eq!(zsk.dnskey().algorithm, alg.number());
        // signatures come back in order and verify with the DNSKEY built from the public object
        let msgs: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 40]).collect();
        let sigs = zsk.sign_batch(&msgs).unwrap();
        for (m, s) in msgs.iter().zip(&sigs) {
            assert!(verify_signature(zsk.dnskey(), m, s), "alg {}", alg.number());
        }
        let keys: [&dyn ZoneSigningKey; 2] = [&ksk, &zsk];
        let (signed, _) = sign_zone(
            load("features.zone", "example."),
            &keys,
            &SignOptions::new(now()),
            None,
        )
        .unwrap();
        let problems = verify_zone(
            &signed,
            &VerifyOptions {
                now: Some(now()),
                require_zonemd: false,
            },
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        let path = write_zone(dir, &format!("p11-{}.signed", alg.number()), &signed);
        assert_validators_accept(&path, "example");
    }
    // the same keys through the command line
    let out = dir.join("cli.signed");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dnssec-sign"))
        .args(["sign", "-o", "example", "-n", "-f", out.to_str().unwrap()])
        .arg(data("features.zone"))
        .args([
            "--pkcs11-module",
            MODULE,
            "--pkcs11-token",
            "dnssec",
            "--pkcs11-ksk",
            "ksk-13",
            "--pkcs11-zsk",
            "zsk-13",
        ])
        .env("DNSSEC_SIGN_PKCS11_PIN", "1234")
        .status()
        .unwrap();
    assert!(status.success());
    assert_validators_accept(&out, "example");
}
