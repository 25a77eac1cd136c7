//! Deals a `k`-of-`n` threshold RSA key in-process, signs a file with PKCS#1 v1.5 SHA-256 and with PSS SHA-256
//! (MGF1-SHA-256, 32-byte salt), and writes `public.pem`, `signature-pkcs1.bin` and `signature-pss.bin` so OpenSSL can
//! check them:
//!
//! ```sh
//! cargo run --release --example threshold_rsa -- -k 3 -n 5 --bits 2048 --out /tmp/trsa README.md
//! openssl dgst -sha256 -verify /tmp/trsa/public.pem -signature /tmp/trsa/signature-pkcs1.bin README.md
//! openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
//!     -verify /tmp/trsa/public.pem -signature /tmp/trsa/signature-pss.bin README.md
//! ```
//!
//! The dealer searches the two safe primes `p` and `q` on two threads at once (one per core);
//! `--fixture-primes` deals a 2048-bit test key from the committed test primes instead (no search).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use rand_core::Rng;
use tcrypto::rsa::{
    KeyShare, MessageEncoding, PublicKeySet, SafePrime, combine, deal_with_primes, generate_safe_prime,
};
use tcrypto::{HashAlg, SessionId};

#[path = "support/fixture_primes.rs"]
mod fixture_primes;

/// Threshold RSA demo: deal, sign a file twice (PKCS#1 v1.5 and PSS), write the public key and signatures.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Modulus size in bits (exact).
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Threshold: shares needed for a signature (default: a strict majority, floor(n/2) + 1).
    #[arg(short)]
    k: Option<u16>,
    /// Number of signers.
    #[arg(short, default_value_t = 5)]
    n: u16,
    /// Deal from the committed test safe primes (public: test keys only; 2048 bits) instead of searching.
    #[arg(long)]
    fixture_primes: bool,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// The file to sign.
    file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let data = std::fs::read(&args.file)?;
    std::fs::create_dir_all(&args.out)?;

    let start = Instant::now();
    let k = args.k.unwrap_or(tcrypto::id::default_threshold(args.n));
    let (pk, shares) = if args.fixture_primes {
        if args.bits != 2048 {
            return Err("--fixture-primes deals 2048-bit keys only".into());
        }
        fixture_primes::rsa2048_from_fixture_primes(k, args.n, &mut rand::rng())?
    } else {
        deal_two_threads(args.bits, k, args.n)?
    };
    println!(
        "dealt a {}-of-{} key, {}-bit modulus, in {:.2?}",
        pk.threshold(),
        pk.parties(),
        pk.modulus_bits(),
        start.elapsed()
    );
    if pk.modulus_bits() != args.bits {
        return Err(format!("modulus has {} bits, not {}", pk.modulus_bits(), args.bits).into());
    }

    let mut rng = rand::rng();
    let mut salt = vec![0u8; 32];
    rng.fill_bytes(&mut salt);
    for (name, msg) in [
        (
            "signature-pkcs1.bin",
            MessageEncoding::pkcs1v15_of(HashAlg::Sha256, &data),
        ),
        (
            "signature-pss.bin",
            MessageEncoding::pss_of(HashAlg::Sha256, &data, salt.clone()),
        ),
    ] {
        let start = Instant::now();
        let signature = threshold_sign(&pk, &shares, &msg)?;
        pk.verify(&msg, &signature)?;
        std::fs::write(args.out.join(name), &signature)?;
        println!(
            "{name}: {} shares combined in {:.2?}",
            pk.threshold(),
            start.elapsed()
        );
    }
    std::fs::write(args.out.join("public.pem"), pk.to_spki_pem()?)?;
    println!(
        "wrote {}/{{public.pem,signature-pkcs1.bin,signature-pss.bin}}",
        args.out.display()
    );
    Ok(())
}

/// The dealer with both cores busy: `p` and `q` are searched on two threads, each with its own RNG.
fn deal_two_threads(
    bits: usize,
    k: u16,
    n: u16,
) -> Result<(PublicKeySet, Vec<KeyShare>), tcrypto::rsa::Error> {
    if !bits.is_multiple_of(2) {
        return Err(tcrypto::rsa::Error::InvalidParameters(
            "modulus size must be even",
        ));
    }
    let half = u32::try_from(bits / 2).map_err(|_| tcrypto::rsa::Error::InvalidParameters("modulus size"))?;
    let search = move || generate_safe_prime(half, &mut rand::rng());
    let (p, q): (SafePrime, SafePrime) = std::thread::scope(|s| {
        let p = s.spawn(search);
        let q = s.spawn(search);
        let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
            h.join()
                .unwrap_or(Err(tcrypto::rsa::Error::Internal("prime search thread panicked")))
        };
        Ok::<_, tcrypto::rsa::Error>((join(p)?, join(q)?))
    })?;
    // p = q has probability ~2^-1000; deal_with_primes refuses it anyway.
    deal_with_primes(
        &p,
        &q,
        tcrypto::rsa::DEFAULT_PUBLIC_EXPONENT,
        k,
        n,
        &mut rand::rng(),
    )
}

/// Signers `1..=k` each make a share with proof; the combiner combines them into a verified signature.
fn threshold_sign(
    pk: &PublicKeySet,
    shares: &[KeyShare],
    msg: &MessageEncoding,
) -> Result<Vec<u8>, tcrypto::rsa::Error> {
    let mut rng = rand::rng();
    let session = SessionId::random(&mut rng);
    let mut received = BTreeMap::new();
    for ks in shares.iter().take(usize::from(pk.threshold())) {
        received.insert(ks.id(), ks.sign_share(&session, msg, &mut rng)?);
    }
    Ok(combine(pk, &session, msg, &received)?.signature)
}
