//! Shared test helpers: committed safe-prime fixtures, keys dealt from them, and independent verifiers (the `rsa`
//! crate and the `openssl` command line).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::BoxedUint;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use tcrypto::rsa::{KeyShare, MessageEncoding, PublicKeySet, SafePrime, SignatureShare, deal_with_primes};
use tcrypto::{HashAlg, SessionId, SignerId};

/// The safe primes of `bits` bits committed under `tests/data/`.
pub fn safe_primes(bits: u32) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/safe_primes_{bits}.txt"));
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

/// A `k`-of-`n` key dealt from fixture primes `pair` (indices into the file of `bits`-bit primes).
pub fn key_from_fixture(
    bits: u32,
    pair: (usize, usize),
    k: u16,
    n: u16,
    seed: u64,
) -> (PublicKeySet, Vec<KeyShare>) {
    let primes = safe_primes(bits);
    let p = SafePrime::from_be_bytes(&primes[pair.0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[pair.1]).unwrap();
    deal_with_primes(&p, &q, 65537, k, n, &mut rng(seed)).unwrap()
}

/// A small (768-bit) `k`-of-`n` test key.
pub fn small_key(k: u16, n: u16) -> (PublicKeySet, Vec<KeyShare>) {
    key_from_fixture(384, (0, 1), k, n, 42)
}

/// The `rsa` crate's view of our public key (size limits off, so small test keys work too).
pub fn rsa_public_key(pk: &PublicKeySet) -> rsa::PublicKey {
    let n = BoxedUint::from_be_slice_vartime(&pk.modulus_bytes());
    let e = BoxedUint::from(pk.public_exponent());
    if pk.modulus_bits() >= 1024 {
        // Goes through our SPKI export.
        let key = rsa::PublicKey::from_public_key_der(&pk.to_spki_der().unwrap()).unwrap();
        assert_eq!(
            key.n().as_ref().to_be_bytes_trimmed_vartime(),
            n.to_be_bytes_trimmed_vartime()
        );
        key
    } else {
        rsa::PublicKey::new_unchecked(n, e)
    }
}

/// Verifies `sig` on `msg` with the `rsa` crate; panics with the reason otherwise.
pub fn rsa_crate_verifies(pk: &PublicKeySet, msg: &MessageEncoding, sig: &[u8]) {
    let key = rsa_public_key(pk);
    let result = match msg {
        MessageEncoding::Pkcs1v15 { hash, digest } => key.verify(pkcs1_scheme(*hash), digest, sig),
        MessageEncoding::Pkcs1v15DigestInfo { digest_info } => {
            key.verify(rsa::Pkcs1v15Sign::new_unprefixed(), digest_info, sig)
        }
        MessageEncoding::Pss { hash, digest, salt } => match hash {
            HashAlg::Sha1 => key.verify(
                rsa::pss::Pss::<sha1::Sha1>::new_with_salt(salt.len()),
                digest,
                sig,
            ),
            HashAlg::Sha224 => key.verify(
                rsa::pss::Pss::<sha2::Sha224>::new_with_salt(salt.len()),
                digest,
                sig,
            ),
            HashAlg::Sha256 => key.verify(
                rsa::pss::Pss::<sha2::Sha256>::new_with_salt(salt.len()),
                digest,
                sig,
            ),
            HashAlg::Sha384 => key.verify(
                rsa::pss::Pss::<sha2::Sha384>::new_with_salt(salt.len()),
                digest,
                sig,
            ),
            HashAlg::Sha512 => key.verify(
                rsa::pss::Pss::<sha2::Sha512>::new_with_salt(salt.len()),
                digest,
                sig,
            ),
            _ => panic!("unknown hash"),
        },
        _ => panic!("unknown encoding"),
    };
    result.unwrap_or_else(|e| panic!("rsa crate rejects the signature: {e}"));
}

pub fn pkcs1_scheme(hash: HashAlg) -> rsa::Pkcs1v15Sign {
    match hash {
        HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
        HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        _ => panic!("unknown hash"),
    }
}

fn openssl_digest_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha1 => "-sha1",
        HashAlg::Sha224 => "-sha224",
        HashAlg::Sha256 => "-sha256",
        HashAlg::Sha384 => "-sha384",
        HashAlg::Sha512 => "-sha512",
        _ => panic!("unknown hash"),
    }
}

/// A fresh scratch directory under the target temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcrypto-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Verifies with `openssl dgst` a signature over `message` (hashed by openssl itself). PSS uses the digest's
/// length as salt length. Fails (does not skip) when `openssl` is missing: CI installs it.
pub fn openssl_verifies(
    pk: &PublicKeySet,
    hash: HashAlg,
    pss_salt_len: Option<usize>,
    message: &[u8],
    sig: &[u8],
) {
    let dir = scratch_dir(&format!("ossl-{}", hex::encode(&pk.key_id().as_bytes()[..6])));
    let tag = format!("{}-{:?}-{}", hex::encode(&sig[..6]), hash, pss_salt_len.is_some());
    let pem = dir.join(format!("{tag}.pem"));
    let sig_path = dir.join(format!("{tag}.sig"));
    let msg_path = dir.join(format!("{tag}.msg"));
    std::fs::write(&pem, pk.to_spki_pem().unwrap()).unwrap();
    std::fs::write(&sig_path, sig).unwrap();
    std::fs::write(&msg_path, message).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("dgst")
        .arg(openssl_digest_name(hash))
        .arg("-verify")
        .arg(&pem);
    if let Some(salt) = pss_salt_len {
        cmd.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt"])
            .arg(format!("rsa_pss_saltlen:{salt}"));
    }
    cmd.arg("-signature").arg(&sig_path).arg(&msg_path);
    let out = cmd
        .output()
        .expect("the openssl command line tool must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl rejects the signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
}

/// Every signer of `signers` signs `msg`; the map is keyed by sender (as the channel would be).
pub fn sign_all(
    shares: &[KeyShare],
    signers: &[u16],
    session: &SessionId,
    msg: &MessageEncoding,
    seed: u64,
) -> BTreeMap<SignerId, SignatureShare> {
    let mut rng = rng(seed);
    signers
        .iter()
        .map(|&i| {
            let ks = &shares[usize::from(i) - 1];
            (ks.id(), ks.sign_share(session, msg, &mut rng).unwrap())
        })
        .collect()
}

pub fn id(i: u16) -> SignerId {
    SignerId::new(i).unwrap()
}
