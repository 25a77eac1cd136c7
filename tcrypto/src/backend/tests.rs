//! Differential tests: the pure-Rust and OpenSSL backends give the same exponentiations, shares, proofs and
//! signatures, and signers on different backends make one signature together.
//!
//! Here a "mixed cluster" lives in one process: different parties of the same signing call the two implementations
//! (`sign_share_with::<Pure>` / `::<OpenSsl>`), and the combiner runs on each. What this shows: the bytes a signer
//! sends and the combiner's verdicts do not depend on the backend, so a node on either interoperates with the
//! others. The transport and the daemon are `tcrypto-net/tests/mixed_backends.rs`'s: node processes on each backend
//! (chosen at run time) signing together.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, RandomBits, Resize};
use p256::{ProjectivePoint, Scalar};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use super::{Arithmetic, OpenSsl, Pure};
use crate::rsa::share::ShareContext;
use crate::rsa::verify::{ShareFault, check_share, verify_proof_with};
use crate::rsa::{
    KeyShare, MessageEncoding, PublicKeySet, SafePrime, SignatureShare, SplitOptions, combine,
    deal_with_primes, split_with,
};
use crate::{HashAlg, SessionId, SignerId};

/// A `k`-of-`n` key dealt from the committed safe primes of `prime_bits` bits (fixture lines `a`, `b`).
fn fixture_key(prime_bits: u32, k: u16, n: u16, seed: u64) -> (PublicKeySet, Vec<KeyShare>) {
    let text = match prime_bits {
        384 => include_str!("../../tests/data/safe_primes_384.txt"),
        1024 => include_str!("../../tests/data/safe_primes_1024.txt"),
        _ => panic!("no fixture of {prime_bits} bits"),
    };
    let primes: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            hex::decode(if l.len() % 2 == 1 {
                format!("0{l}")
            } else {
                l.to_string()
            })
            .unwrap()
        })
        .collect();
    let p = SafePrime::from_be_bytes(&primes[0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[1]).unwrap();
    deal_with_primes(&p, &q, 65537, k, n, &mut StdRng::seed_from_u64(seed)).unwrap()
}

/// The small (768-bit) 3-of-5 test key, dealt once.
fn small_key() -> &'static (PublicKeySet, Vec<KeyShare>) {
    static KEY: std::sync::OnceLock<(PublicKeySet, Vec<KeyShare>)> = std::sync::OnceLock::new();
    KEY.get_or_init(|| fixture_key(384, 3, 5, 7))
}

fn id(i: u16) -> SignerId {
    SignerId::new(i).unwrap()
}

/// Checks `share` from `sender` (structure and proof) on backend `B`.
fn verify_with<B: Arithmetic>(
    pk: &PublicKeySet,
    session: &SessionId,
    msg: &MessageEncoding,
    sender: SignerId,
    share: &SignatureShare,
) -> Result<(), ShareFault> {
    let ctx = ShareContext::new(pk, msg).unwrap();
    let x_i = check_share(pk, sender, share)?;
    verify_proof_with::<B>(pk, session, &ctx, sender, share, &x_i)
}

/// The `rsa` crate checks a PKCS#1 v1.5 SHA-256 signature on `message`.
fn rsa_crate_verifies(pk: &PublicKeySet, message: &[u8], signature: &[u8]) {
    let n = rsa::BoxedUint::from_be_slice_vartime(&pk.modulus_bytes());
    let key = rsa::PublicKey::new_unchecked(n, rsa::BoxedUint::from(pk.public_exponent()));
    key.verify(
        rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        &Sha256::digest(message),
        signature,
    )
    .unwrap();
}

/// Each party signs on its own backend (`on_openssl` lists the parties that use OpenSSL), with proofs.
fn sign_mixed(
    shares: &[KeyShare],
    signers: &[u16],
    on_openssl: &[u16],
    session: &SessionId,
    msg: &MessageEncoding,
    rng: &mut StdRng,
) -> BTreeMap<SignerId, SignatureShare> {
    signers
        .iter()
        .map(|&i| {
            let key = &shares[usize::from(i) - 1];
            let share = if on_openssl.contains(&i) {
                key.sign_share_with::<OpenSsl>(session, msg, rng)
            } else {
                key.sign_share_with::<Pure>(session, msg, rng)
            };
            (id(i), share.unwrap())
        })
        .collect()
}

/// A P-256 scalar from 32 arbitrary bytes (reduced mod n), sometimes 0 or 1.
fn scalar_of(bytes: [u8; 32]) -> Scalar {
    use p256::elliptic_curve::ops::Reduce as _;
    match bytes[0] {
        0 => Scalar::ZERO,
        1 => Scalar::ONE,
        _ => Scalar::reduce(&p256::FieldBytes::from(bytes)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// P-256 `s·G`, `s_i·P_i` and `Σ s_i·P_i` (up to 6 terms, so both sides of OpenSSL's term limit; identity points, zero
    /// scalars and cancelling terms included) are the same point on both backends. Every P-256 multiplication of
    /// presigning, signing, verification and the DKG that the backend serves goes through these three.
    #[test]
    fn both_backends_multiply_p256_points_alike(
        s in any::<[u8; 32]>(),
        terms in proptest::collection::vec((any::<[u8; 32]>(), any::<[u8; 32]>(), 0u8..8), 0..7),
    ) {
        let s = scalar_of(s);
        prop_assert_eq!(OpenSsl::p256_mul_g(&s), Pure::p256_mul_g(&s));
        let mut terms: Vec<(ProjectivePoint, Scalar)> = terms
            .into_iter()
            .map(|(p, k, kind)| {
                let point = match kind {
                    0 => ProjectivePoint::IDENTITY,
                    _ => Pure::p256_mul_g(&scalar_of(p)),
                };
                (point, scalar_of(k))
            })
            .collect();
        if let Some(&(p, k)) = terms.first() {
            terms.push((-p, k)); // cancels the first term
        }
        for n in 0..=terms.len() {
            prop_assert_eq!(
                OpenSsl::p256_lincomb_vartime(&terms[..n]),
                Pure::p256_lincomb_vartime(&terms[..n])
            );
        }
        prop_assert_eq!(OpenSsl::p256_mul_each(&terms), Pure::p256_mul_each(&terms));
    }

    /// Raw exponentiation: same value for random bases and exponents of random length (0 and 1 included), on the
    /// secret (constant-time) and the public path.
    #[test]
    fn both_backends_exponentiate_alike(
        base in proptest::collection::vec(any::<u8>(), 0..96),
        exp in proptest::collection::vec(any::<u8>(), 0..130),
    ) {
        let (pk, _) = small_key();
        let precision = pk.modulus().bits_precision();
        let base = BoxedUint::from_be_slice_vartime(&base).resize(precision);
        let base = BoxedMontyForm::new(base, pk.params());
        let exp = BoxedUint::from_be_slice_vartime(&exp);
        let pure = Pure::pow_secret(&base, &exp).unwrap();
        prop_assert_eq!(&OpenSsl::pow_secret(&base, &exp).unwrap(), &pure);
        prop_assert_eq!(&OpenSsl::pow_public_vartime(&base, &exp).unwrap(), &pure);
        prop_assert_eq!(&Pure::pow_public_vartime(&base, &exp).unwrap(), &pure);
    }

    /// A signer's share and proof (same randomness) are the same bytes on both backends, and each backend's
    /// verifier accepts the other's share.
    #[test]
    fn both_backends_make_identical_shares_and_proofs(
        message in proptest::collection::vec(any::<u8>(), 0..64),
        signer in 1u16..=5,
        seed in any::<u64>(),
    ) {
        let (pk, shares) = small_key();
        let key = &shares[usize::from(signer) - 1];
        let session = SessionId([seed as u8; 32]);
        let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, &message);
        let pure = key.sign_share_with::<Pure>(&session, &msg, &mut StdRng::seed_from_u64(seed)).unwrap();
        let fast = key.sign_share_with::<OpenSsl>(&session, &msg, &mut StdRng::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(&pure, &fast);
        prop_assert!(pure.proof.is_some());
        prop_assert_eq!(
            key.sign_share_unproven_with::<Pure>(&msg).unwrap(),
            key.sign_share_unproven_with::<OpenSsl>(&msg).unwrap()
        );
        prop_assert_eq!(verify_with::<Pure>(pk, &session, &msg, id(signer), &fast), Ok(()));
        prop_assert_eq!(verify_with::<OpenSsl>(pk, &session, &msg, id(signer), &pure), Ok(()));
    }

    /// A 3-of-5 signing where each signer picks its backend at random combines into a signature the `rsa` crate
    /// accepts, the same bytes as an all-pure-Rust signing.
    #[test]
    fn mixed_backend_signers_make_one_signature(
        message in proptest::collection::vec(any::<u8>(), 0..64),
        on_openssl in proptest::collection::vec(1u16..=5, 0..=5),
        seed in any::<u64>(),
    ) {
        let (pk, shares) = small_key();
        let session = SessionId([1; 32]);
        let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, &message);
        let mut rng = StdRng::seed_from_u64(seed);
        let mixed = sign_mixed(shares, &[1, 3, 5], &on_openssl, &session, &msg, &mut rng);
        let pure = sign_mixed(shares, &[1, 3, 5], &[], &session, &msg, &mut rng);
        let combined = combine(pk, &session, &msg, &mixed).unwrap();
        prop_assert!(combined.culprits.is_empty());
        rsa_crate_verifies(pk, &message, &combined.signature);
        prop_assert_eq!(combined.signature, combine(pk, &session, &msg, &pure).unwrap().signature);
    }
}

/// At the production size (2048 bits, 3-of-5): signers 1 and 4 on OpenSSL, 3 on pure Rust, and signer 2 (pure
/// Rust) sends a share for another message. The combiner (tried first on 1, 2, 3) names 2 and still produces the
/// signature from 1, 3, 4; both backends' verifiers judge every share alike.
#[test]
fn mixed_cluster_at_2048_bits_names_the_bad_signer_on_either_backend() {
    let (pk, shares) = fixture_key(1024, 3, 5, 11);
    let session = SessionId([9; 32]);
    let message = b"mixed cluster";
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, message);
    let mut rng = StdRng::seed_from_u64(5);
    let mut received = sign_mixed(&shares, &[1, 3, 4], &[1, 4], &session, &msg, &mut rng);
    let other = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"something else");
    let bad = shares[1]
        .sign_share_with::<Pure>(&session, &other, &mut rng)
        .unwrap();
    received.insert(id(2), bad);
    let combined = combine(&pk, &session, &msg, &received).unwrap();
    assert_eq!(combined.culprits, vec![id(2)]);
    rsa_crate_verifies(&pk, message, &combined.signature);
    for (sender, share) in &received {
        let expect = if *sender == id(2) {
            Err(ShareFault::InvalidProof)
        } else {
            Ok(())
        };
        assert_eq!(verify_with::<Pure>(&pk, &session, &msg, *sender, share), expect);
        assert_eq!(
            verify_with::<OpenSsl>(&pk, &session, &msg, *sender, share),
            expect
        );
    }
}

/// Ordinary-modulus keys (no safe primes, no proofs) take the same share step: both backends give the same share,
/// and a mixed 2-of-3 signing verifies.
#[test]
fn ordinary_modulus_shares_agree_across_backends() {
    let key = openssl::rsa::Rsa::generate(1024).unwrap();
    let der = key.private_key_to_der().unwrap();
    let options = SplitOptions::default().allowing_small_modulus();
    let (pk, shares) = split_with(&der, 2, 3, &options, &mut StdRng::seed_from_u64(3)).unwrap();
    assert!(pk.is_ordinary());
    let session = SessionId([4; 32]);
    let message = b"ordinary modulus";
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, message);
    for share in &shares {
        assert_eq!(
            share.sign_share_unproven_with::<Pure>(&msg).unwrap(),
            share.sign_share_unproven_with::<OpenSsl>(&msg).unwrap()
        );
    }
    let mut rng = StdRng::seed_from_u64(8);
    let received = sign_mixed(&shares, &[1, 3], &[3], &session, &msg, &mut rng);
    let combined = combine(&pk, &session, &msg, &received).unwrap();
    rsa_crate_verifies(&pk, message, &combined.signature);
}

/// A secret exponent wider than the modulus, a base of 0, 1 or −1, and the P-256 scalars 0, 1, −1: edge values of
/// the constant-time paths agree.
#[test]
fn edge_values_agree() {
    let (pk, _) = small_key();
    let params: &BoxedMontyParams = pk.params();
    let precision = pk.modulus().bits_precision();
    let mut rng = StdRng::seed_from_u64(1);
    let wide = BoxedUint::random_bits_with_precision(&mut rng, 2 * precision + 64, 2 * precision + 64);
    let n_minus_1 = pk.modulus().as_ref().wrapping_sub(BoxedUint::one());
    for base in [
        BoxedUint::zero_with_precision(precision),
        BoxedUint::one().resize(precision),
        n_minus_1,
    ] {
        let base = BoxedMontyForm::new(base, params);
        for exp in [BoxedUint::zero(), BoxedUint::one(), wide.clone()] {
            assert_eq!(
                OpenSsl::pow_secret(&base, &exp).unwrap(),
                Pure::pow_secret(&base, &exp).unwrap()
            );
        }
    }
    for s in [Scalar::ZERO, Scalar::ONE, -Scalar::ONE] {
        assert_eq!(OpenSsl::p256_mul_g(&s), Pure::p256_mul_g(&s));
    }
    assert_eq!(OpenSsl::p256_mul_g(&Scalar::ZERO), ProjectivePoint::IDENTITY);
}
