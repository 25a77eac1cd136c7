//! An in-process cluster on loopback mutual TLS (the embedded default): `n` signer nodes, a thread-free
//! coordinator, a threshold RSA key, a stream of signatures with many in flight, every signature checked by the
//! independent `rsa` crate, and the throughput and latency printed.
//!
//! ```sh
//! cargo run --release --example cluster -- -n 5 -k 3 --bits 2048 --count 2000 --in-flight 32
//! ```
//! Dealing a fresh 2048-bit key needs two 1024-bit safe primes, which can take minutes; `--primes FILE` takes them
//! from a file of hex safe primes instead (e.g. `tcrypto/tests/data/safe_primes_1024.txt`, test keys only).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rsa::BoxedUint;
use tcrypto::HashAlg;
use tcrypto::rsa::{SafePrime, deal, deal_with_primes};
use tcrypto_net::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::embedded::EmbeddedNodes;
use tcrypto_net::identity::TlsIdentity;
use tcrypto_net::wire::Mechanism;

#[derive(Parser)]
struct Args {
    /// Number of nodes.
    #[arg(short, default_value_t = 5)]
    n: u16,
    /// Threshold.
    #[arg(short, default_value_t = 3)]
    k: u16,
    /// RSA modulus size.
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Signatures to make.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Requests in flight at once (one caller thread each).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// File of hex safe primes of `bits/2` bits to deal from (test keys only).
    #[arg(long)]
    primes: Option<PathBuf>,
    /// Use running `tcrypto-node` daemons listed in this coordinator configuration instead of in-process nodes
    /// (see `tcrypto-net/scripts/local-cluster.sh`).
    #[arg(long)]
    connect: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut rng = rand::rng();
    let mut _embedded = None;
    let cluster = Arc::new(match &args.connect {
        Some(cfg) => BlockingCluster::from_config_file(cfg)?,
        None => {
            let coordinator = TlsIdentity::generate("coordinator")?;
            let nodes = EmbeddedNodes::start(usize::from(args.n), &[coordinator.fingerprint()])?;
            let c =
                BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default())?;
            _embedded = Some(nodes);
            c
        }
    });
    let up = cluster.connect(Duration::from_secs(10));
    println!(
        "{up} of {} nodes connected over mutual TLS 1.3 ({})",
        cluster.nodes().len(),
        if args.connect.is_some() {
            "node processes"
        } else {
            "in-process nodes"
        }
    );

    let t = Instant::now();
    let (pk, shares) = match &args.primes {
        Some(file) => {
            let text = std::fs::read_to_string(file)?;
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
                })
                .collect::<Result<_, _>>()?;
            if primes.len() < 2 {
                return Err("need two primes".into());
            }
            let p = SafePrime::from_be_bytes(&primes[0])?;
            let q = SafePrime::from_be_bytes(&primes[1])?;
            deal_with_primes(&p, &q, 65537, args.k, args.n, &mut rng)?
        }
        None => deal(args.bits, args.k, args.n, &mut rng)?,
    };
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rng)?;
    println!(
        "RSA-{} {}-of-{} key {key} dealt and distributed in {:.1?}",
        pk.modulus_bits(),
        args.k,
        args.n,
        t.elapsed()
    );
    println!("ECDSA P-256 and Ed25519 keys: not yet wired into the cluster (DKG and presigning pending)");

    let verifier = rsa::PublicKey::new_unchecked(
        BoxedUint::from_be_slice_vartime(&pk.modulus_bytes()),
        BoxedUint::from(pk.public_exponent()),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.in_flight)
        .map(|_| {
            let cluster = cluster.clone();
            let next = next.clone();
            let count = args.count;
            std::thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let digest = HashAlg::Sha256.digest(&i.to_be_bytes());
                    let t = Instant::now();
                    // RSASSA-PSS with SHA-256 and a 32-byte salt chosen here, the coordinator's side.
                    let salt = HashAlg::Sha256.digest(&(i as u64 ^ 0x5a5a).to_le_bytes());
                    let r = cluster.sign(
                        key,
                        Mechanism::RsaPss {
                            hash: HashAlg::Sha256,
                            digest: digest.clone(),
                            salt,
                        },
                    );
                    done.push((t.elapsed(), digest, r));
                }
                done
            })
        })
        .collect();
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.join().map_err(|_| "worker panicked")?);
    }
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    for (lat, digest, r) in &results {
        let sig = r.as_ref().map_err(|e| format!("signature failed: {e}"))?;
        verifier
            .verify(
                rsa::pss::Pss::<sha2::Sha256>::new_with_salt(32),
                digest,
                &sig.bytes,
            )
            .map_err(|e| format!("rsa crate rejects a signature: {e}"))?;
        latencies.push(*lat);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "{} RSA-{} PSS signatures, {} in flight: {:.0} signatures/min, p50 {:.1?}, p99 {:.1?}; all verified by the rsa crate",
        results.len(),
        pk.modulus_bits(),
        args.in_flight,
        results.len() as f64 / elapsed.as_secs_f64() * 60.0,
        pct(0.5),
        pct(0.99)
    );
    print_health(&cluster);
    Ok(())
}

fn print_health(cluster: &BlockingCluster) {
    for h in cluster.health() {
        println!(
            "  {}: connected={} answered={} failed={} latency={:.1?}",
            h.name, h.connected, h.answered, h.failed, h.latency
        );
    }
}
