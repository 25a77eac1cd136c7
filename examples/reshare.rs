//! A key outlives its nodes (issue 14): seven in-process nodes on loopback mutual TLS, a 3-of-5 key on the first
//! five (ECDSA P-256 and Ed25519 born by DKG among them, RSA dealt from committed test primes), then the chain
//! 3-of-5 -> 4-of-7 -> 2-of-3 -> refresh -> 3-of-5 through the cluster's two-phase commit
//! (`Cluster::reshare`, `Cluster::refresh`), one line per step, and a signature of FILE by the last sharing.
//!
//! ```sh
//! cargo run --release --example reshare -- --algorithm ed25519 --out /tmp/reshare FILE
//! openssl pkeyutl -verify -pubin -inkey /tmp/reshare/public-before.pem -rawin -in FILE \
//!     -sigfile /tmp/reshare/signature.bin
//! cargo run --release --example reshare -- --algorithm ecdsa --out /tmp/reshare FILE   # or rsa
//! openssl dgst -sha256 -verify /tmp/reshare/public-before.pem -signature /tmp/reshare/signature.bin FILE
//! ```
//!
//! Writes `DIR/public-before.pem` (the key as created), `DIR/public-after.pem` (as the last sharing knows it: the
//! same) and `DIR/signature.bin` (RSA PKCS#1 v1.5 SHA-256, ECDSA DER, Ed25519 raw 64 bytes). RSA keys are dealt
//! from the committed 1024-bit safe primes (RSA-2048), or from `--primes FILE` (hex safe primes, test keys only).

#[path = "support/fixture_primes.rs"]
mod fixture_primes;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sha2::{Digest as _, Sha256};
use tcrypto::HashAlg;
use tcrypto::rsa::{SafePrime, deal_with_primes};
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism};

#[derive(Clone, Copy, ValueEnum)]
enum Alg {
    Rsa,
    Ecdsa,
    Ed25519,
}

#[derive(Parser)]
struct Args {
    /// Key algorithm.
    #[arg(long)]
    algorithm: Alg,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// File of hex safe primes to deal the RSA key from (test keys only; default: the committed 1024-bit ones).
    #[arg(long)]
    primes: Option<PathBuf>,
    /// The file to sign.
    file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let message = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let coordinator = TlsIdentity::generate("coordinator")?;
    let nodes = EmbeddedNodes::start(7, &[coordinator.fingerprint()])?;
    let cfg = || CoordinatorConfig {
        request_timeout: Duration::from_secs(60),
        ..CoordinatorConfig::default()
    };
    let mut rng = rand::rng();

    // The key: 3-of-5 on node1..node5 (a coordinator that knows only those five).
    let started = Instant::now();
    let five = BlockingCluster::connect_tls(&coordinator, &nodes.addresses[..5], cfg())?;
    five.connect(Duration::from_secs(10));
    let key = match args.algorithm {
        Alg::Rsa => {
            let (pk, shares) = match &args.primes {
                None => fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng)?,
                Some(file) => {
                    let primes = read_primes(file)?;
                    let [p, q, ..] = primes.as_slice() else {
                        return Err(format!("{}: two safe primes needed", file.display()).into());
                    };
                    let (p, q) = (SafePrime::from_be_bytes(p)?, SafePrime::from_be_bytes(q)?);
                    deal_with_primes(&p, &q, 65537, 3, 5, &mut rng)?
                }
            };
            five.import_rsa_shares(&pk, &shares, &mut rng)?
        }
        Alg::Ecdsa => five.create_key(Algorithm::EcdsaP256, 3)?,
        Alg::Ed25519 => five.create_key(Algorithm::Ed25519, 3)?,
    };
    let before = five.public_key(&key).ok_or("public key unknown")?;
    std::fs::write(args.out.join("public-before.pem"), pem(&before)?)?;
    println!(
        "3-of-5 on node1..node5: key {key} created, {} ({:.1?})",
        args.out.join("public-before.pem").display(),
        started.elapsed()
    );
    drop(five);

    // A coordinator over all seven nodes reshares it.
    let cluster = BlockingCluster::connect_tls(&coordinator, &nodes.addresses, cfg())?;
    cluster.connect(Duration::from_secs(10));
    cluster.refresh_keys()?;
    /// A step: its label and the new holders with `k'` (none: a refresh).
    type Step<'a> = (&'a str, Option<(&'a [usize], u16)>);
    let steps: [Step<'_>; 4] = [
        ("3-of-5 -> 4-of-7", Some((&[0, 1, 2, 3, 4, 5, 6], 4))),
        ("4-of-7 -> 2-of-3", Some((&[0, 1, 2], 2))),
        ("refresh 2-of-3", None),
        ("2-of-3 -> 3-of-5", Some((&[0, 1, 2, 3, 4], 3))),
    ];
    for (label, step) in steps {
        let t = Instant::now();
        let out = match step {
            Some((holders, k)) => cluster.reshare(key, holders, k)?,
            None => cluster.refresh(key)?,
        };
        let names: Vec<String> = out
            .holders
            .values()
            .map(|n| cluster.nodes()[*n].name.clone())
            .collect();
        let same = cluster
            .public_key(&key)
            .ok_or("public key unknown")?
            .to_spki_der()?
            == before.to_spki_der()?;
        println!(
            "{label}: epoch {} on {}, test signature verified, public key {} ({:.1?})",
            out.epoch,
            names.join(","),
            if same { "unchanged" } else { "CHANGED" },
            t.elapsed()
        );
        if !same {
            return Err("the public key changed".into());
        }
    }

    let mechanism = match args.algorithm {
        Alg::Rsa => Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha256,
            digest: Sha256::digest(&message).to_vec(),
        },
        Alg::Ecdsa => Mechanism::Ecdsa {
            digest: Sha256::digest(&message).to_vec(),
        },
        Alg::Ed25519 => Mechanism::Ed25519 {
            message: message.clone(),
        },
    };
    let signature = cluster.sign(key, mechanism)?;
    let after = cluster.public_key(&key).ok_or("public key unknown")?;
    std::fs::write(args.out.join("public-after.pem"), pem(&after)?)?;
    std::fs::write(args.out.join("signature.bin"), &signature.bytes)?;
    println!(
        "signed {} with the last sharing: {} and {}",
        args.file.display(),
        args.out.join("signature.bin").display(),
        args.out.join("public-after.pem").display()
    );
    Ok(())
}

/// The public key as a SubjectPublicKeyInfo PEM document.
fn pem(public: &PublicKey) -> Result<String, Box<dyn std::error::Error>> {
    use p256::pkcs8::EncodePublicKey as _;
    Ok(match public {
        PublicKey::Rsa(pk) => pk.to_spki_pem()?,
        PublicKey::Ecdsa(pk) => pk.verifying.to_public_key_pem(Default::default())?,
        PublicKey::Ed25519(pk) => {
            use ed25519_dalek::pkcs8::EncodePublicKey as _;
            ed25519_dalek::VerifyingKey::from_bytes(&pk.public_key_bytes())?
                .to_public_key_pem(Default::default())?
        }
        _ => return Err("unknown algorithm".into()),
    })
}

fn read_primes(file: &std::path::Path) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            hex::decode(if l.len() % 2 == 1 {
                format!("0{l}")
            } else {
                l.to_string()
            })
        })
        .collect::<Result<Vec<_>, _>>()?)
}
