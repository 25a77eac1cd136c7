//! Threshold signatures end to end, checked by independent verifiers (`rsa` crate, `openssl`).
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use std::collections::BTreeMap;

use common::*;
use rsa::traits::PublicKeyParts;
use tcrypto::rsa::{Error, MessageEncoding, combine, encoding::digest_info_prefix};
use tcrypto::{HashAlg, SessionId};

#[test]
fn every_hash_and_encoding_gives_a_signature_the_rsa_crate_accepts() {
    let (pk, shares) = key_from_fixture(1024, (0, 1), 3, 5, 1);
    let session = SessionId([7; 32]);
    let mut msgs = Vec::new();
    for hash in HashAlg::ALL {
        msgs.push(MessageEncoding::pkcs1v15_of(hash, b"hello threshold"));
        msgs.push(MessageEncoding::pss_of(
            hash,
            b"hello threshold",
            vec![0x5a; hash.output_len()],
        ));
        let mut di = digest_info_prefix(hash).to_vec();
        di.extend(hash.digest(b"hello threshold"));
        msgs.push(MessageEncoding::Pkcs1v15DigestInfo { digest_info: di });
    }
    // A salt of another length, and an empty salt.
    msgs.push(MessageEncoding::pss_of(HashAlg::Sha256, b"x", vec![1; 20]));
    msgs.push(MessageEncoding::pss_of(HashAlg::Sha256, b"x", vec![]));
    for (n, msg) in msgs.iter().enumerate() {
        let sig_shares = sign_all(&shares, &[1, 3, 5], &session, msg, n as u64);
        let combined = combine(&pk, &session, msg, &sig_shares).unwrap();
        assert!(combined.culprits.is_empty());
        assert_eq!(combined.signature.len(), pk.signature_len());
        pk.verify(msg, &combined.signature).unwrap();
        rsa_crate_verifies(&pk, msg, &combined.signature);
    }
}

#[test]
fn all_sizes_verify_with_rsa_crate_and_openssl_for_pkcs1_and_pss() {
    let message = b"The quick brown fox jumps over the lazy dog";
    for (bits, pair) in [(1024u32, (0usize, 1usize)), (1536, (0, 1)), (2048, (0, 1))] {
        let (pk, shares) = key_from_fixture(bits, pair, 3, 5, u64::from(bits));
        assert_eq!(pk.modulus_bits(), 2 * bits as usize, "modulus size is exact");
        let session = SessionId([bits as u8; 32]);
        for (hash, pss) in [
            (HashAlg::Sha256, false),
            (HashAlg::Sha256, true),
            (HashAlg::Sha384, true),
            (HashAlg::Sha512, false),
        ] {
            let msg = if pss {
                MessageEncoding::pss_of(hash, message, vec![0xa5; hash.output_len()])
            } else {
                MessageEncoding::pkcs1v15_of(hash, message)
            };
            let sig_shares = sign_all(&shares, &[2, 4, 5], &session, &msg, 9);
            let sig = combine(&pk, &session, &msg, &sig_shares).unwrap().signature;
            rsa_crate_verifies(&pk, &msg, &sig);
            openssl_verifies(&pk, hash, pss.then_some(hash.output_len()), message, &sig);
        }
    }
}

#[test]
fn threshold_signature_equals_the_plain_rsa_signature_under_the_same_key() {
    let primes = safe_primes(1024);
    let (pk, shares) = key_from_fixture(1024, (0, 1), 2, 3, 5);
    let p = rsa::BoxedUint::from_be_slice_vartime(&primes[0]);
    let q = rsa::BoxedUint::from_be_slice_vartime(&primes[1]);
    let private = rsa::PrivateKey::from_p_q(p, q, rsa::BoxedUint::from(65537u64)).unwrap();
    assert_eq!(
        private.n().as_ref().to_be_bytes_trimmed_vartime().to_vec(),
        pk.modulus_bytes()
    );
    let digest = HashAlg::Sha256.digest(b"known answer");
    let expected = private.sign(pkcs1_scheme(HashAlg::Sha256), &digest).unwrap();
    let msg = MessageEncoding::Pkcs1v15 {
        hash: HashAlg::Sha256,
        digest,
    };
    let session = SessionId([1; 32]);
    for subset in [[1u16, 2], [1, 3], [2, 3]] {
        let sig = combine(
            &pk,
            &session,
            &msg,
            &sign_all(&shares, &subset, &session, &msg, 3),
        )
        .unwrap()
        .signature;
        assert_eq!(sig, expected, "subset {subset:?}");
    }
}

#[test]
fn one_of_one_and_n_of_n_and_many_parties_work() {
    let session = SessionId([3; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"m");
    for (k, n, signers) in [
        (1u16, 1u16, vec![1u16]),
        (1, 4, vec![3]),
        (4, 4, vec![1, 2, 3, 4]),
        (33, 64, (20..=52).collect::<Vec<u16>>()),
    ] {
        let (pk, shares) = small_key(k, n);
        let sig_shares = sign_all(&shares, &signers, &session, &msg, 4);
        let sig = combine(&pk, &session, &msg, &sig_shares).unwrap().signature;
        rsa_crate_verifies(&pk, &msg, &sig);
    }
}

#[test]
fn more_than_k_shares_are_fine_and_fewer_than_k_is_a_typed_error() {
    let (pk, shares) = small_key(3, 5);
    let session = SessionId([4; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"m");
    let all = sign_all(&shares, &[1, 2, 3, 4, 5], &session, &msg, 5);
    let sig = combine(&pk, &session, &msg, &all).unwrap().signature;
    rsa_crate_verifies(&pk, &msg, &sig);
    let two: BTreeMap<_, _> = all.into_iter().take(2).collect();
    assert_eq!(
        combine(&pk, &session, &msg, &two).unwrap_err(),
        Error::NotEnoughShares { got: 2, needed: 3 }
    );
}

#[test]
fn public_key_exports_parse_with_openssl_and_the_rsa_crate() {
    let (pk, _) = key_from_fixture(1024, (0, 1), 2, 3, 6);
    let dir = scratch_dir("export");
    let pem = dir.join("spki.pem");
    std::fs::write(&pem, pk.to_spki_pem().unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&pem)
        .output()
        .expect("openssl must be installed");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Public-Key: (2048 bit)"));
    let pkcs1 = dir.join("pkcs1.pem");
    std::fs::write(&pkcs1, pk.to_pkcs1_pem().unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_in", "-noout", "-modulus", "-in"])
        .arg(&pkcs1)
        .output()
        .expect("openssl must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let modulus = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        modulus,
        format!("Modulus={}", hex::encode_upper(pk.modulus_bytes()))
    );
    use rsa::pkcs1::DecodeRsaPublicKey;
    let key = rsa::PublicKey::from_pkcs1_der(&pk.to_pkcs1_der().unwrap()).unwrap();
    let e: &rsa::BoxedUint = key.e();
    assert_eq!(e.to_be_bytes_trimmed_vartime().to_vec(), vec![1, 0, 1]);
}

#[test]
fn a_signature_for_another_message_or_session_does_not_verify() {
    let (pk, shares) = small_key(2, 3);
    let session = SessionId([5; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"one");
    let other = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"two");
    let sig = combine(
        &pk,
        &session,
        &msg,
        &sign_all(&shares, &[1, 2], &session, &msg, 6),
    )
    .unwrap()
    .signature;
    assert_eq!(pk.verify(&other, &sig).unwrap_err(), Error::InvalidSignature);
    assert_eq!(pk.verify(&msg, &sig[1..]).unwrap_err(), Error::InvalidSignature);
}
