//! The trusted dealer and key import: exact modulus sizes, parameter checks, `split` of PKCS#1 / PKCS#8 keys with
//! safe primes (other keys: tests/rsa_ordinary.rs; small ones refused), and every share passing the node-side check on receipt.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use common::*;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use tcrypto::rsa::{Error, KeyShare, MessageEncoding, SafePrime, combine, deal, deal_with_primes, split};
use tcrypto::{HashAlg, SessionId};

#[test]
fn dealt_2048_bit_key_has_an_exact_modulus_and_signs() {
    let (pk, shares) = deal(2048, 3, 5, &mut rng(2048)).unwrap();
    assert_eq!(pk.modulus_bits(), 2048);
    assert_eq!(pk.signature_len(), 256);
    assert_eq!(pk.public_exponent(), 65537);
    assert_eq!((pk.threshold(), pk.parties()), (3, 5));
    for ks in &shares {
        ks.check_against(&pk).unwrap();
        KeyShare::decode(&ks.encode()).unwrap();
    }
    let session = SessionId([1; 32]);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"dealt");
    let sig = combine(
        &pk,
        &session,
        &msg,
        &sign_all(&shares, &[1, 4, 5], &session, &msg, 1),
    )
    .unwrap()
    .signature;
    rsa_crate_verifies(&pk, &msg, &sig);
    openssl_verifies(&pk, HashAlg::Sha256, None, b"dealt", &sig);
}

#[test]
fn dealer_refuses_bad_parameters() {
    let mut rng = rng(3);
    for (bits, k, n) in [
        (2048, 0, 3),
        (2048, 4, 3),
        (2047, 2, 3),
        (1024, 2, 3),
        (2048, 2, 256),
    ] {
        assert!(
            matches!(deal(bits, k, n, &mut rng), Err(Error::InvalidParameters(_))),
            "{bits} {k} {n}"
        );
    }
    let primes = safe_primes(384);
    let p = SafePrime::from_be_bytes(&primes[0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[1]).unwrap();
    let p_again = SafePrime::from_be_bytes(&primes[0]).unwrap();
    // e must be a prime greater than n.
    for e in [3u64, 5, 65536, 65535, 1] {
        assert!(matches!(
            deal_with_primes(&p, &q, e, 2, 5, &mut rng),
            Err(Error::InvalidParameters(_))
        ));
    }
    // p = q.
    assert!(deal_with_primes(&p, &p_again, 65537, 2, 3, &mut rng).is_err());
    // A prime e > n works (e = 7 for n = 5), and so does a large one.
    for e in [7u64, 1_000_000_007] {
        let (pk, shares) = deal_with_primes(&p, &q, e, 3, 5, &mut rng).unwrap();
        let session = SessionId([2; 32]);
        let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha1, b"e");
        let sig = combine(
            &pk,
            &session,
            &msg,
            &sign_all(&shares, &[1, 2, 3], &session, &msg, 2),
        )
        .unwrap()
        .signature;
        pk.verify(&msg, &sig).unwrap();
        rsa_crate_verifies(&pk, &msg, &sig);
    }
}

#[test]
fn dealer_refuses_e_dividing_m() {
    // p = 2p'+1 with p' prime: e = p' divides m = p'q', so d = e^{-1} mod m does not exist.
    let mut rng = rng(4);
    let mut candidate = (1u64 << 62) + 1;
    let p_prime = loop {
        candidate += 2;
        if is_prime_u64(candidate) && is_prime_u64(2 * candidate + 1) {
            break candidate;
        }
    };
    let p = SafePrime::from_be_bytes(&(2 * u128::from(p_prime) + 1).to_be_bytes()).unwrap();
    let q = SafePrime::from_be_bytes(&safe_primes(384)[0]).unwrap();
    assert_eq!(
        deal_with_primes(&p, &q, p_prime, 2, 3, &mut rng).unwrap_err(),
        Error::InvalidParameters("gcd(e, m) != 1")
    );
}

fn is_prime_u64(n: u64) -> bool {
    // Deterministic Miller–Rabin for 64-bit integers (independent of the crate under test).
    if n < 2 || n.is_multiple_of(2) {
        return n == 2;
    }
    let (mut d, mut s) = (n - 1, 0);
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    let mul = |a: u64, b: u64| ((u128::from(a) * u128::from(b)) % u128::from(n)) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    'bases: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow(a % n, d);
        if x == 1 || x == n - 1 || a % n == 0 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn private_key_from_fixture(bits: u32) -> rsa::PrivateKey {
    let primes = safe_primes(bits);
    rsa::PrivateKey::from_p_q(
        rsa::BoxedUint::from_be_slice_vartime(&primes[0]),
        rsa::BoxedUint::from_be_slice_vartime(&primes[1]),
        rsa::BoxedUint::from(65537u64),
    )
    .unwrap()
}

#[test]
fn split_of_a_pkcs1_or_pkcs8_key_with_safe_primes_keeps_its_signatures() {
    let key = private_key_from_fixture(1024);
    let digest = HashAlg::Sha256.digest(b"imported");
    let expected = key.sign(pkcs1_scheme(HashAlg::Sha256), &digest).unwrap();
    let msg = MessageEncoding::Pkcs1v15 {
        hash: HashAlg::Sha256,
        digest,
    };
    let pkcs1 = key.to_pkcs1_der().unwrap();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    for der in [pkcs1.as_bytes(), pkcs8.as_bytes()] {
        let (pk, shares) = split(der, 2, 4, &mut rng(5)).unwrap();
        assert_eq!(pk.modulus_bits(), 2048);
        let session = SessionId([3; 32]);
        let sig = combine(
            &pk,
            &session,
            &msg,
            &sign_all(&shares, &[2, 4], &session, &msg, 5),
        )
        .unwrap()
        .signature;
        assert_eq!(sig, expected);
    }
}

#[test]
fn split_refuses_small_keys_whose_primes_are_not_safe_and_garbage() {
    let mut rng = rng(6);
    // Primes not safe: the ordinary-modulus dealer, which refuses 1024 bits without the explicit option
    // (tests/rsa_ordinary.rs covers such keys).
    let ordinary = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
    let der = ordinary.to_pkcs1_der().unwrap();
    assert!(matches!(
        split(der.as_bytes(), 2, 3, &mut rng),
        Err(Error::ModulusTooSmall {
            bits: 1024,
            min: 2048
        })
    ));
    let der8 = ordinary.to_pkcs8_der().unwrap();
    assert!(matches!(
        split(der8.as_bytes(), 2, 3, &mut rng),
        Err(Error::ModulusTooSmall { .. })
    ));
    assert!(matches!(
        split(b"not a key", 2, 3, &mut rng),
        Err(Error::KeyImport(_))
    ));
    let key = private_key_from_fixture(1024);
    let der = key.to_pkcs1_der().unwrap();
    assert!(matches!(
        split(&der.as_bytes()[..der.as_bytes().len() - 1], 2, 3, &mut rng),
        Err(Error::KeyImport(_))
    ));
    assert!(matches!(
        split(der.as_bytes(), 4, 3, &mut rng),
        Err(Error::InvalidParameters(_))
    ));
}

#[test]
fn sixty_four_parties_with_a_majority_threshold() {
    let (pk, shares) = key_from_fixture(384, (3, 4), 33, 64, 7);
    assert_eq!(shares.len(), 64);
    assert_eq!(shares.last().unwrap().id().get(), 64);
    for ks in &shares {
        ks.check_against(&pk).unwrap();
    }
    let session = SessionId([4; 32]);
    let msg = MessageEncoding::pss_of(HashAlg::Sha256, b"many", vec![1; 32]);
    let signers: Vec<u16> = (32..=64).collect();
    let sig = combine(
        &pk,
        &session,
        &msg,
        &sign_all(&shares, &signers, &session, &msg, 7),
    )
    .unwrap()
    .signature;
    rsa_crate_verifies(&pk, &msg, &sig);
}
