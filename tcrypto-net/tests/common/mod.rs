//! Shared test helpers: RSA keys dealt from the committed safe-prime fixtures of `tcrypto`, and the `rsa` crate as
//! independent verifier.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::BoxedUint;
use rsa::pkcs8::DecodePublicKey;
use tcrypto::HashAlg;
use tcrypto::rsa::{KeyShare, PublicKeySet, SafePrime, deal_with_primes};
use tcrypto_net::wire::Mechanism;

/// Safe primes of `bits` bits committed in `tcrypto/tests/data/`.
pub fn safe_primes(bits: u32) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tcrypto/tests/data/safe_primes_{bits}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
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
        .collect()
}

/// A seeded RNG; the seed is printed so a failure can be replayed.
pub fn rng(seed: u64) -> StdRng {
    eprintln!("rng seed: {seed}");
    StdRng::seed_from_u64(seed)
}

/// A `k`-of-`n` RSA key whose modulus has `2 * prime_bits` bits, dealt from fixture primes.
pub fn rsa_key(prime_bits: u32, k: u16, n: u16, seed: u64) -> (PublicKeySet, Vec<KeyShare>) {
    let primes = safe_primes(prime_bits);
    let p = SafePrime::from_be_bytes(&primes[0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[1]).unwrap();
    deal_with_primes(&p, &q, 65537, k, n, &mut rng(seed)).unwrap()
}

fn rsa_public(pk: &PublicKeySet) -> rsa::PublicKey {
    if pk.modulus_bits() >= 1024 {
        rsa::PublicKey::from_public_key_der(&pk.to_spki_der().unwrap()).unwrap()
    } else {
        rsa::PublicKey::new_unchecked(
            BoxedUint::from_be_slice_vartime(&pk.modulus_bytes()),
            BoxedUint::from(pk.public_exponent()),
        )
    }
}

/// Verifies an RSA signature with the `rsa` crate (SHA-256 mechanisms and raw DigestInfo).
pub fn rsa_crate_verifies(pk: &PublicKeySet, mech: &Mechanism, sig: &[u8]) -> Result<(), String> {
    let key = rsa_public(pk);
    let r = match mech {
        Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha256,
            digest,
        } => key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, sig),
        Mechanism::RsaPkcs1v15DigestInfo { digest_info } => {
            key.verify(rsa::Pkcs1v15Sign::new_unprefixed(), digest_info, sig)
        }
        Mechanism::RsaPss {
            hash: HashAlg::Sha256,
            digest,
            salt,
        } => key.verify(
            rsa::pss::Pss::<sha2::Sha256>::new_with_salt(salt.len()),
            digest,
            sig,
        ),
        other => return Err(format!("no independent verifier wired for {other:?}")),
    };
    r.map_err(|e| e.to_string())
}

/// PKCS#1 v1.5 SHA-256 over `msg`.
pub fn pkcs1_sha256(msg: &[u8]) -> Mechanism {
    Mechanism::RsaPkcs1v15 {
        hash: HashAlg::Sha256,
        digest: HashAlg::Sha256.digest(msg),
    }
}

/// A scratch directory.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tcrypto-net-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
