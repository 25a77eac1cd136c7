//! Property tests over random `k`, `n`, signer subsets, messages and encodings, with small committed safe primes;
//! `num-bigint` computes the plain RSA signature independently and the `rsa` crate verifies.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use common::*;
use num_bigint::BigUint;
use proptest::prelude::*;
use tcrypto::rsa::{MessageEncoding, SafePrime, combine, deal_with_primes};
use tcrypto::{HashAlg, SessionId};

/// `d = e^{-1} mod λ(N)` and `N` for the fixture pair, computed with `num-bigint` only.
fn plain_key(pair: (usize, usize)) -> (BigUint, BigUint) {
    let primes = safe_primes(384);
    let p = BigUint::from_bytes_be(&primes[pair.0]);
    let q = BigUint::from_bytes_be(&primes[pair.1]);
    let one = BigUint::from(1u32);
    let lambda = (&p - &one) * (&q - &one) / BigUint::from(2u32); // p−1, q−1 share only the factor 2
    let d = BigUint::from(65537u32).modinv(&lambda).unwrap();
    (&p * &q, d)
}

fn pairs() -> &'static [(usize, usize)] {
    &[(0, 1), (2, 3), (4, 5), (6, 7), (1, 6)]
}

fn encodings() -> impl Strategy<Value = (u8, usize)> {
    (0u8..3, 0usize..5)
}

fn message_encoding(kind: u8, hash_index: usize, message: &[u8], salt_seed: u8) -> MessageEncoding {
    let hash = HashAlg::ALL[hash_index];
    match kind {
        0 => MessageEncoding::pkcs1v15_of(hash, message),
        1 => MessageEncoding::Pkcs1v15DigestInfo {
            digest_info: [
                tcrypto::rsa::encoding::digest_info_prefix(hash),
                &hash.digest(message)[..],
            ]
            .concat(),
        },
        // 768-bit modulus: room for a SHA-512 PSS only with a short salt.
        _ => MessageEncoding::pss_of(hash, message, vec![salt_seed; 20.min(94 - 2 - hash.output_len())]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn any_k_of_any_n_signers_produce_the_plain_rsa_signature(
        n in 1u16..=9,
        k_frac in 0.0f64..1.0,
        subset_seed in any::<u64>(),
        extra in 0usize..3,
        pair_index in 0usize..5,
        message in proptest::collection::vec(any::<u8>(), 0..200),
        (kind, hash_index) in encodings(),
        salt_seed in any::<u8>(),
        session in any::<[u8; 32]>(),
    ) {
        let k = 1 + ((f64::from(n) * k_frac) as u16).min(n - 1);
        let pair = pairs()[pair_index];
        let primes = safe_primes(384);
        let p = SafePrime::from_be_bytes(&primes[pair.0]).unwrap();
        let q = SafePrime::from_be_bytes(&primes[pair.1]).unwrap();
        let (pk, shares) = deal_with_primes(&p, &q, 65537, k, n, &mut rng(subset_seed)).unwrap();
        prop_assert_eq!(pk.threshold(), k);
        prop_assert_eq!(pk.parties(), n);
        prop_assert_eq!(pk.modulus_bits(), 768);

        // A random subset of at least k signers.
        let mut ids: Vec<u16> = (1..=n).collect();
        let mut s = subset_seed;
        for i in (1..ids.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ids.swap(i, (s >> 33) as usize % (i + 1));
        }
        let take = (usize::from(k) + extra).min(usize::from(n));
        let signers = &ids[..take];

        let msg = message_encoding(kind, hash_index, &message, salt_seed);
        let session = SessionId(session);
        let sig_shares = sign_all(&shares, signers, &session, &msg, subset_seed ^ 1);
        let combined = combine(&pk, &session, &msg, &sig_shares).unwrap();
        prop_assert!(combined.culprits.is_empty());

        // Independent checks: num-bigint's x^d mod N, and the rsa crate.
        let (modulus, d) = plain_key(pair);
        let x = BigUint::from_bytes_be(&msg.encoded_message(pk.modulus_bits()).unwrap());
        let expected = x.modpow(&d, &modulus);
        prop_assert_eq!(BigUint::from_bytes_be(&combined.signature), expected);
        rsa_crate_verifies(&pk, &msg, &combined.signature);
    }

    #[test]
    fn every_share_of_a_random_key_verifies_and_decodes(
        n in 1u16..=6,
        seed in any::<u64>(),
        message in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let k = 1 + (seed % u64::from(n)) as u16;
        let (pk, shares) = key_from_fixture(384, (2, 5), k, n, seed);
        let session = SessionId([9; 32]);
        let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, &message);
        for ks in &shares {
            let decoded = tcrypto::rsa::KeyShare::decode(&ks.encode()).unwrap();
            decoded.check_against(&pk).unwrap();
            let share = ks.sign_share(&session, &msg, &mut rng(seed)).unwrap();
            let share = tcrypto::rsa::SignatureShare::decode(&share.encode()).unwrap();
            tcrypto::rsa::verify_share(&pk, &session, &msg, ks.id(), &share).unwrap();
        }
    }

    #[test]
    fn decoders_never_panic_on_mutated_encodings(
        flip_at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let (pk, shares) = small_key(2, 3);
        let msg = MessageEncoding::pss_of(HashAlg::Sha256, b"m", vec![1; 32]);
        let share = shares[0].sign_share(&SessionId([1; 32]), &msg, &mut rng(3)).unwrap();
        for bytes in [pk.encode(), shares[1].encode().to_vec(), share.encode(), msg.encode()] {
            let mut mutated = bytes.clone();
            let i = flip_at.index(mutated.len());
            mutated[i] ^= flip;
            let truncated = &bytes[..cut.index(bytes.len())];
            for b in [&mutated[..], truncated] {
                let _ = tcrypto::rsa::PublicKeySet::decode(b);
                let _ = tcrypto::rsa::KeyShare::decode(b);
                let _ = tcrypto::rsa::SignatureShare::decode(b);
                let _ = MessageEncoding::decode(b);
            }
            prop_assert!(tcrypto::rsa::PublicKeySet::decode(truncated).is_err());
        }
    }
}
