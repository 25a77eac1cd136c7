//! Threshold Ed25519 end to end, with every party in this process: a distributed key generation among `n`
//! parties (nobody ever holds the private key), FROST signing of FILE by `k` of them, and files that `openssl`
//! checks:
//!
//! ```text
//! cargo run --example threshold_ed25519 -- -k 3 -n 5 --out /tmp/sig FILE
//! openssl pkeyutl -verify -pubin -inkey /tmp/sig/public.pem -rawin -in FILE -sigfile /tmp/sig/signature.bin
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use tcrypto::dkg::{self, Ed25519};
use tcrypto::ed25519::{self, KeyShare, SigningPackage, round1, round2};
use tcrypto::{SessionId, SignerId};

/// Threshold Ed25519 demo: distributed key generation, then two-round FROST signing.
#[derive(Parser)]
struct Args {
    /// Quorum k: any k parties sign (1 <= k <= n).
    #[arg(short = 'k', default_value_t = 3)]
    k: u16,
    /// Number of parties n.
    #[arg(short = 'n', default_value_t = 5)]
    n: u16,
    /// Directory for public.pem and signature.bin.
    #[arg(long)]
    out: PathBuf,
    /// The file to sign.
    file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut rng = rand::rng();
    let data = std::fs::read(&args.file)?;

    // Distributed key generation: four rounds of messages among the n parties.
    let parties = (1..=args.n).filter_map(SignerId::new);
    let params = dkg::Parameters::new(SessionId::random(&mut rng), args.k, parties)?;
    let shares: Vec<KeyShare> = dkg::run_in_process::<Ed25519>(&params, &mut rng)?
        .into_iter()
        .map(KeyShare::from_dkg)
        .collect::<Result<_, _>>()?;
    let public = shares.first().ok_or("no parties")?.public().clone();
    println!(
        "distributed key generation among {} parties (quorum {}): public key {}",
        args.n,
        args.k,
        public
            .public_key_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    // FROST round 1: the first k parties commit to nonces.
    let signers = &shares[..usize::from(args.k)];
    let session = SessionId::random(&mut rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for s in signers {
        let (n, c) = round1::commit(s, session, &mut rng)?;
        nonces.insert(s.id(), n);
        commitments.insert(s.id(), c);
    }
    // The coordinator's package, then FROST round 2: each signer returns its share.
    let package = SigningPackage::new(session, data, commitments)?;
    let mut sig_shares = BTreeMap::new();
    for s in signers {
        let n = nonces.remove(&s.id()).ok_or("missing nonces")?;
        sig_shares.insert(s.id(), round2::sign(s, n, &package)?);
    }
    // Aggregation, verified under the group key before it is released.
    let signature = ed25519::aggregate(&public, &package, &sig_shares)?;

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("public.pem"), public.to_public_key_pem()?)?;
    std::fs::write(args.out.join("signature.bin"), signature.to_bytes())?;
    println!(
        "signed {} by parties {:?}; wrote {}/public.pem and {}/signature.bin",
        args.file.display(),
        signers.iter().map(|s| s.id().get()).collect::<Vec<_>>(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
