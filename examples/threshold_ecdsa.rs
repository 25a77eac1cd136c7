//! Threshold ECDSA P-256 end to end, with every party in this process: key generation among `n` parties,
//! a batch of presignatures, one-round signing of FILE by a quorum of `k`, and files that `openssl` checks:
//!
//! ```text
//! cargo run --example threshold_ecdsa -- -k 3 -n 5 --out /tmp/sig FILE
//! openssl dgst -sha256 -verify /tmp/sig/public.pem -signature /tmp/sig/signature.der FILE
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Parser;
use p256::pkcs8::EncodePublicKey as _;
use sha2::Digest as _;
use tcrypto::ecdsa::{self, KeyShare, SignRequest};
use tcrypto::{SessionId, SignerId};

/// Threshold ECDSA P-256 demo: key generation, presigning, one-round signing.
#[derive(Parser)]
struct Args {
    /// Quorum k = t + 1 (any k parties sign; needs n >= 2k - 1).
    #[arg(short = 'k', default_value_t = 3)]
    k: u16,
    /// Number of parties n.
    #[arg(short = 'n', default_value_t = 5)]
    n: u16,
    /// Directory for public.pem and signature.der.
    #[arg(long)]
    out: PathBuf,
    /// The file to sign.
    file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut rng = rand::rng();
    let data = std::fs::read(&args.file)?;

    // Key generation: each party gets its Shamir share of x and everyone's public shares.
    let keys: Vec<KeyShare> = ecdsa::deal(args.k, args.n, &mut rng)?;
    println!(
        "key generation among {} parties (quorum {}): trusted dealer",
        args.n, args.k
    );

    // Presigning by all n parties (at least 2t + 1 = 2k - 1 are needed), message-independent.
    let refs: Vec<&KeyShare> = keys.iter().collect();
    let mut presigs = ecdsa::presign::run_in_process(&refs, SessionId::random(&mut rng), 1, &mut rng)?;

    // Online signing: the last k parties each return one share; the combiner interpolates and verifies.
    let digest = sha2::Sha256::digest(&data).to_vec();
    let signers: Vec<SignerId> = keys
        .iter()
        .rev()
        .take(usize::from(args.k))
        .map(|k| k.id())
        .collect();
    let first = presigs
        .get(&signers[0])
        .and_then(|v| v.first())
        .ok_or("no presignature")?;
    let public = first.public().clone();
    let req = SignRequest {
        session: SessionId::random(&mut rng),
        presignature: public.id,
        digest,
    };
    let mut shares = BTreeMap::new();
    for id in &signers {
        let key = keys.iter().find(|k| k.id() == *id).ok_or("missing key")?;
        let presig = presigs
            .get_mut(id)
            .and_then(|v| v.pop())
            .ok_or("missing presignature")?;
        let mut spent = BTreeSet::new();
        shares.insert(*id, ecdsa::sign_share(key, presig, &req, &mut spent)?);
    }
    let vk = keys[0].verifying_key()?;
    let combined = ecdsa::combine(&public, &vk, &req, &shares)?;

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("public.pem"),
        vk.to_public_key_pem(Default::default())?,
    )?;
    std::fs::write(args.out.join("signature.der"), combined.to_der())?;
    println!(
        "signed {} by parties {:?}; wrote {}/public.pem and {}/signature.der",
        args.file.display(),
        signers.iter().map(|s| s.get()).collect::<Vec<_>>(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
