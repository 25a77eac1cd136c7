//! Threshold RSA for ordinary moduli (`tcrypto::rsa::ordinary`): a committed `openssl genrsa 2048` key split 3-of-5,
//! its PKCS#1 v1.5 and PSS signatures checked by the `rsa` crate and the `openssl` command line, Byzantine shares
//! (the signature still comes out, the culprits are named), `k−1` shares that give nothing, the 2048-bit floor of
//! the dealer, and the strict encodings of the new key set kind.
#![cfg(feature = "dealer")]
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use std::collections::BTreeMap;

use common::*;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use tcrypto::rsa::{
    Error, KeyShare, MessageEncoding, PublicKeySet, ShareFault, SignatureShare, SplitOptions, VerifyError,
    combine, combine_encoded, split, split_with, verify_share,
};
use tcrypto::{HashAlg, SessionId, SignerId};

const OPENSSL_2048: &str = include_str!("data/import/openssl_rsa2048.pem");
const OPENSSL_1024: &str = include_str!("data/import/openssl_rsa1024.pem");

fn openssl_key(pem: &str) -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(pem).unwrap()
}

/// The committed `openssl genrsa 2048` key, split 3-of-5.
fn split_2048() -> (rsa::PrivateKey, PublicKeySet, Vec<KeyShare>) {
    let key = openssl_key(OPENSSL_2048);
    let der = key.to_pkcs8_der().unwrap();
    let (pk, shares) = split(der.as_bytes(), 3, 5, &mut rng(17)).unwrap();
    (key, pk, shares)
}

/// A share for another message: structurally perfect (canonical, in range, no proof), but wrong.
fn wrong_share(share: &KeyShare) -> SignatureShare {
    let other = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"something else entirely");
    share.sign_share_unproven(&other).unwrap()
}

#[test]
fn openssl_genrsa_key_split_3_of_5_signs_pkcs1_and_pss_for_the_rsa_crate_and_openssl() {
    let (key, pk, shares) = split_2048();
    assert!(
        pk.is_ordinary(),
        "openssl's primes are not safe: the ordinary kind"
    );
    assert_eq!(pk.modulus_bits(), 2048);
    assert_eq!((pk.threshold(), pk.parties()), (3, 5));
    // Same public key as the original.
    let original = rsa::pkcs8::EncodePublicKey::to_public_key_der(&key.to_public_key()).unwrap();
    assert_eq!(pk.to_spki_der().unwrap(), original.as_bytes());

    let message = b"an ordinary key, shared";
    let session = SessionId([7; 32]);
    let pkcs1 = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, message);
    for signers in [[1u16, 2, 3], [1, 3, 5], [2, 4, 5], [3, 4, 5]] {
        let received = sign_all(&shares, &signers, &session, &pkcs1, u64::from(signers[0]));
        assert!(
            received.values().all(|s| s.proof.is_none()),
            "no proofs for ordinary shares"
        );
        let combined = combine(&pk, &session, &pkcs1, &received).unwrap();
        assert!(combined.culprits.is_empty());
        // PKCS#1 v1.5 is deterministic: the very signature the whole key makes.
        let expected = key
            .sign(pkcs1_scheme(HashAlg::Sha256), &HashAlg::Sha256.digest(message))
            .unwrap();
        assert_eq!(combined.signature, expected, "signers {signers:?}");
        rsa_crate_verifies(&pk, &pkcs1, &combined.signature);
        openssl_verifies(&pk, HashAlg::Sha256, None, message, &combined.signature);
    }

    for (hash, seed) in [(HashAlg::Sha256, 1u8), (HashAlg::Sha512, 2)] {
        let salt = vec![seed; hash.output_len()];
        let pss = MessageEncoding::pss_of(hash, message, salt);
        let received = sign_all(&shares, &[2, 3, 5], &session, &pss, 9);
        let sig = combine(&pk, &session, &pss, &received).unwrap().signature;
        rsa_crate_verifies(&pk, &pss, &sig);
        openssl_verifies(&pk, hash, Some(hash.output_len()), message, &sig);
    }
}

#[test]
fn one_byzantine_share_among_all_five_still_signs_and_is_named() {
    let (_, pk, shares) = split_2048();
    let session = SessionId([8; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"robust");
    for bad in 1..=5u16 {
        let mut received = sign_all(&shares, &[1, 2, 3, 4, 5], &session, &msg, 3);
        received.insert(id(bad), wrong_share(&shares[usize::from(bad) - 1]));
        let combined = combine(&pk, &session, &msg, &received).unwrap();
        rsa_crate_verifies(&pk, &msg, &combined.signature);
        if bad <= 3 {
            // Among the first k: the optimistic combination fails, the search names the culprit.
            assert_eq!(combined.culprits, vec![id(bad)]);
            assert_eq!(combined.faults[&id(bad)], ShareFault::Inconsistent);
        } else {
            // Not used on the happy path: nobody is named, the signature is right.
            assert!(combined.culprits.is_empty());
        }
    }
}

#[test]
fn two_byzantine_shares_with_three_honest_ones_are_both_named() {
    let (_, pk, shares) = split_2048();
    let session = SessionId([9; 32]);
    let msg = MessageEncoding::pss_of(HashAlg::Sha256, b"two liars", vec![5; 32]);
    let mut received = sign_all(&shares, &[1, 2, 3, 4, 5], &session, &msg, 4);
    received.insert(id(1), wrong_share(&shares[0]));
    // Signer 4 sends signer 3's (valid) share value under its own id.
    let stolen = received[&id(3)].value.clone();
    received.get_mut(&id(4)).unwrap().value = stolen;
    let combined = combine(&pk, &session, &msg, &received).unwrap();
    rsa_crate_verifies(&pk, &msg, &combined.signature);
    assert_eq!(combined.culprits, vec![id(1), id(4)]);
}

#[test]
fn with_only_k_shares_a_bad_one_is_unattributable_and_more_shares_resolve_it() {
    let (_, pk, shares) = split_2048();
    let session = SessionId([10; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha384, b"ask for more");
    let mut received = sign_all(&shares, &[1, 2, 3], &session, &msg, 5);
    received.insert(id(2), wrong_share(&shares[1]));
    match combine(&pk, &session, &msg, &received) {
        Err(Error::Unattributable {
            signers,
            faults,
            needed,
        }) => {
            assert_eq!(signers, vec![id(1), id(2), id(3)]);
            assert!(faults.is_empty());
            assert_eq!(needed, 3);
        }
        other => panic!("expected Unattributable, got {other:?}"),
    }
    // The coordinator asks signers 4 and 5 and combines everything it has.
    received.extend(sign_all(&shares, &[4, 5], &session, &msg, 6));
    let combined = combine(&pk, &session, &msg, &received).unwrap();
    assert_eq!(combined.culprits, vec![id(2)]);
    rsa_crate_verifies(&pk, &msg, &combined.signature);
}

#[test]
fn fewer_than_k_shares_give_nothing_the_combiner_accepts() {
    let (_, pk, shares) = split_2048();
    let session = SessionId([11; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"k-1");
    let honest = sign_all(&shares, &[2, 5], &session, &msg, 7);
    assert!(matches!(
        combine(&pk, &session, &msg, &honest),
        Err(Error::NotEnoughShares { got: 2, needed: 3 })
    ));
    // Two honest shares and a third made up by whoever holds them (each of the other holders' shares of another
    // message, a share of the same message by a holder of another key, a small value) never combine.
    let (_, _, other_key) = {
        let key = openssl_key(OPENSSL_2048);
        let der = key.to_pkcs8_der().unwrap();
        let (pk2, s2) = split(der.as_bytes(), 3, 5, &mut rng(99)).unwrap();
        (key, pk2, s2)
    };
    let forged: Vec<SignatureShare> = vec![
        wrong_share(&shares[0]),
        other_key[0].sign_share_unproven(&msg).unwrap(),
        SignatureShare {
            signer: id(1),
            value: vec![2],
            proof: None,
        },
    ];
    for third in forged {
        let mut received = honest.clone();
        received.insert(id(1), third);
        assert!(
            matches!(
                combine(&pk, &session, &msg, &received),
                Err(Error::Unattributable { .. })
            ),
            "k−1 honest shares and a forged one must not combine"
        );
    }
}

#[test]
fn structurally_bad_shares_are_named_without_a_search() {
    let (_, pk, shares) = split_2048();
    let session = SessionId([12; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"structure");
    let mut received: BTreeMap<SignerId, Vec<u8>> = sign_all(&shares, &[1, 2, 3, 4], &session, &msg, 8)
        .into_iter()
        .map(|(id, s)| (id, s.encode()))
        .collect();
    received.insert(id(5), b"garbage".to_vec());
    // A share with a proof attached: ordinary shares never have one.
    let mut with_proof = shares[3].sign_share_unproven(&msg).unwrap();
    with_proof.proof = Some(tcrypto::rsa::ShareProof {
        c: [1; 16],
        z: vec![1],
    });
    received.insert(id(4), with_proof.encode());
    let combined = combine_encoded(&pk, &session, &msg, &received).unwrap();
    assert_eq!(combined.culprits, vec![id(4), id(5)]);
    assert_eq!(combined.faults[&id(4)], ShareFault::UnexpectedProof);
    assert!(matches!(combined.faults[&id(5)], ShareFault::Undecodable(_)));
    rsa_crate_verifies(&pk, &msg, &combined.signature);
    // A single ordinary share cannot be judged alone.
    let one = shares[0].sign_share(&session, &msg, &mut rng(1)).unwrap();
    assert!(matches!(
        verify_share(&pk, &session, &msg, id(1), &one),
        Err(VerifyError::Request(_))
    ));
}

#[test]
fn dealer_refuses_keys_below_2048_bits_unless_allowed() {
    let key = openssl_key(OPENSSL_1024);
    let der = key.to_pkcs8_der().unwrap();
    assert!(matches!(
        split(der.as_bytes(), 2, 3, &mut rng(1)),
        Err(Error::ModulusTooSmall {
            bits: 1024,
            min: 2048
        })
    ));
    let options = SplitOptions::default().allowing_small_modulus();
    let (pk, shares) = split_with(der.as_bytes(), 2, 3, &options, &mut rng(2)).unwrap();
    assert!(pk.is_ordinary());
    let session = SessionId([13; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha1, b"small, allowed");
    let sig = combine(
        &pk,
        &session,
        &msg,
        &sign_all(&shares, &[1, 3], &session, &msg, 2),
    )
    .unwrap()
    .signature;
    let expected = key
        .sign(
            pkcs1_scheme(HashAlg::Sha1),
            &HashAlg::Sha1.digest(b"small, allowed"),
        )
        .unwrap();
    assert_eq!(sig, expected);
    // More than 16 parties are refused for ordinary keys (the subset search is bounded).
    assert!(matches!(
        split_with(der.as_bytes(), 9, 17, &options, &mut rng(3)),
        Err(Error::InvalidParameters(_))
    ));
}

#[test]
fn ordinary_key_sets_and_shares_round_trip_strictly_and_are_checked_on_receipt() {
    let (_, pk, shares) = split_2048();
    let encoded = pk.encode();
    assert_eq!(
        encoded[..2],
        [
            tcrypto::codec::VERSION,
            tcrypto::rsa::tag::PUBLIC_KEY_SET_ORDINARY
        ]
    );
    let decoded = PublicKeySet::decode(&encoded).unwrap();
    assert_eq!(decoded, pk);
    assert!(decoded.is_ordinary());
    assert_eq!(decoded.verification_key_bytes(id(1)), None);
    assert!(decoded.share_digest(id(5)).is_some());
    assert_eq!(decoded.share_bits(), 2199);
    // Trailing bytes, a flipped digest bit, a changed parameter: refused.
    let mut longer = encoded.clone();
    longer.push(0);
    assert!(PublicKeySet::decode(&longer).is_err());
    for at in [encoded.len() - 40, 6, encoded.len() - 1] {
        let mut bad = encoded.clone();
        bad[at] ^= 1;
        assert!(PublicKeySet::decode(&bad).is_err(), "byte {at}");
    }
    for ks in &shares {
        let bytes = ks.encode();
        let back = KeyShare::decode(&bytes).unwrap();
        assert_eq!(back.id(), ks.id());
        let mut bad = bytes.to_vec();
        bad[10] ^= 0x40; // inside the secret
        assert!(matches!(KeyShare::decode(&bad), Err(Error::KeyShareMismatch(_))));
        assert!(!format!("{ks:?}").contains(&hex::encode(&bytes[8..20])));
        assert!(format!("{ks:?}").contains("<redacted>"));
    }
    // Redistribution (which needs Shoup's v and v_i) refuses an ordinary key.
    assert!(matches!(
        tcrypto::rsa::reshare::Parameters::new(
            SessionId([0; 32]),
            pk.clone(),
            [id(1), id(2), id(3)],
            2,
            3,
            128
        ),
        Err(tcrypto::reshare::Error::InvalidParameters(_))
    ));
}

/// Writes the ordinary-kind seeds of the `rsa_public_key_set` and `rsa_key_share` fuzz targets (checked by
/// `tests/encodings.rs`' `committed_fuzz_seeds_round_trip`):
/// `cargo test -p tcrypto --all-features --test rsa_ordinary -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate the fuzz seeds"]
fn write_fuzz_seeds() {
    let der = openssl_key(OPENSSL_1024).to_pkcs8_der().unwrap();
    let options = SplitOptions::default().allowing_small_modulus();
    let (pk, shares) = split_with(der.as_bytes(), 2, 3, &options, &mut rng(4)).unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    for (target, bytes) in [
        ("rsa_public_key_set", pk.encode()),
        ("rsa_key_share", shares[1].encode().to_vec()),
    ] {
        std::fs::write(root.join(target).join("ordinary-0"), &bytes).unwrap();
        std::fs::write(
            root.join(target).join("truncated-ordinary-0"),
            &bytes[..bytes.len() / 2],
        )
        .unwrap();
    }
}

#[test]
fn sixteen_parties_threshold_eight_sign_and_a_bad_share_is_found_among_seven() {
    let der = openssl_key(OPENSSL_1024).to_pkcs8_der().unwrap();
    let options = SplitOptions::default().allowing_small_modulus();
    let (pk, shares) = split_with(der.as_bytes(), 8, 16, &options, &mut rng(16)).unwrap();
    let session = SessionId([16; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"sixteen");
    let signers: Vec<u16> = (1..=16).filter(|i| i % 2 == 0).collect();
    let sig = combine(
        &pk,
        &session,
        &msg,
        &sign_all(&shares, &signers, &session, &msg, 16),
    )
    .unwrap()
    .signature;
    rsa_crate_verifies(&pk, &msg, &sig);

    // 4-of-7: one bad share among the first four, C(6, 3) = 20 subsets contain it.
    let (pk, shares) = split_with(der.as_bytes(), 4, 7, &options, &mut rng(7)).unwrap();
    let mut received = sign_all(&shares, &[1, 2, 3, 4, 5, 6, 7], &session, &msg, 7);
    received.insert(id(3), wrong_share(&shares[2]));
    let combined = combine(&pk, &session, &msg, &received).unwrap();
    assert_eq!(combined.culprits, vec![id(3)]);
    rsa_crate_verifies(&pk, &msg, &combined.signature);
}

/// `num-bigint` (independent of `crypto-bigint`) checks the dealer's integer sharing: every share is below
/// `2^b`, and any `k` shares interpolate over the integers to exactly `Δ·f(0) = Δ²·d` with `d = e⁻¹ mod φ(N)`.
#[test]
fn integer_shares_interpolate_exactly_to_delta_squared_d() {
    use num_bigint::{BigInt, BigUint};
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let key = openssl_key(OPENSSL_2048);
    let (_, pk, shares) = split_2048();
    let big = |b: &rsa::BoxedUint| BigUint::from_bytes_be(&b.to_be_bytes());
    let primes = key.primes();
    let phi = (big(&primes[0]) - 1u32) * (big(&primes[1]) - 1u32);
    let e = big(key.e());
    let d = e.modinv(&phi).unwrap();
    let secret_of = |ks: &KeyShare| {
        // version, tag, id (2), length (4), secret
        let bytes = ks.encode();
        let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        BigUint::from_bytes_be(&bytes[8..8 + len])
    };
    let s: Vec<BigUint> = shares.iter().map(secret_of).collect();
    for si in &s {
        assert!(si.bits() <= u64::from(pk.share_bits()));
        assert!(si.bits() > 2048 + 128, "masked well above the key size");
    }
    let delta = BigInt::from(120u32); // 5!
    let target = &delta * &delta * BigInt::from(d);
    for subset in [[1i64, 2, 3], [1, 3, 5], [2, 4, 5], [3, 4, 5]] {
        let mut sum = BigInt::from(0);
        for &i in &subset {
            let mut num = delta.clone();
            let mut den = BigInt::from(1);
            for &j in &subset {
                if j != i {
                    num *= j;
                    den *= j - i;
                }
            }
            assert_eq!(&num % &den, BigInt::from(0));
            sum += num / den * BigInt::from(s[(i - 1) as usize].clone());
        }
        assert_eq!(sum, target, "subset {subset:?}");
    }
}
