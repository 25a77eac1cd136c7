//! An in-process cluster on loopback mutual TLS (the embedded default): `n` signer nodes, a thread-free
//! coordinator, one key of each algorithm (RSA dealt, ECDSA P-256 and Ed25519 born by DKG across the nodes), a
//! stream of signatures per algorithm with many in flight, every signature checked by an independent verifier
//! (`rsa`, `p256`, `ed25519-dalek`), and the throughput and latency printed.
//!
//! ```sh
//! cargo run --release --example cluster -- -n 5 -k 3 --bits 2048 --count 2000 --in-flight 32
//! cargo run --release --example cluster -- --algorithms ecdsa,ed25519 --count 20000 --in-flight 64
//! # real daemons (tcrypto-net/scripts/local-cluster.sh): existing keys, or ECDSA/Ed25519 keys made and deleted
//! cargo run --release --example cluster -- --connect DIR/coordinator.toml --key 3f1c9a2e --key 77ab01cd
//! cargo run --release --example cluster -- --connect DIR/coordinator.toml --algorithms ecdsa,ed25519
//! ```
//! The ECDSA figure includes presigning: the coordinator keeps the presignature pool filled in the background
//! while the stream runs.
//! Dealing a fresh 2048-bit key needs two 1024-bit safe primes, which can take minutes; `--primes FILE` takes them
//! from a file of hex safe primes instead (e.g. `tcrypto/tests/data/safe_primes_1024.txt`, test keys only).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::BoxedUint;
use tcrypto::HashAlg;
use tcrypto::rsa::{SafePrime, deal, deal_with_primes};
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism};

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
    /// Algorithms to run, comma-separated: rsa, ecdsa, ed25519.
    #[arg(long, default_value = "rsa,ecdsa,ed25519", value_delimiter = ',')]
    algorithms: Vec<String>,
    /// Use running `tcrypto-node` daemons listed in this coordinator configuration instead of in-process nodes
    /// (see `tcrypto-net/scripts/local-cluster.sh`). ECDSA and Ed25519 keys are then created by DKG and deleted
    /// at the end; RSA needs `--key` (a key from an offline ceremony): nothing is dealt in this process.
    #[arg(long)]
    connect: Option<PathBuf>,
    /// Sign with these existing keys (id or unique id prefix; repeatable) instead of making keys; `--algorithms`
    /// is then ignored.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Print the coordinator's metrics (Prometheus text format) at the end.
    #[arg(long)]
    metrics: bool,
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

    if !args.keys.is_empty() {
        cluster.refresh_keys()?;
        for wanted in &args.keys {
            let known = cluster.list();
            let matching: Vec<_> = known
                .iter()
                .filter(|k| k.to_string().starts_with(&wanted.to_ascii_lowercase()))
                .collect();
            let [key] = matching.as_slice() else {
                return Err(format!(
                    "--key {wanted}: {} of the cluster's {} keys match",
                    matching.len(),
                    known.len()
                )
                .into());
            };
            stream_key(&cluster, &args, **key, "existing")?;
        }
        print_health(&cluster);
        if args.metrics {
            print!("{}", tcrypto_net::metrics::coordinator_metrics(&cluster));
        }
        return Ok(());
    }
    let wants = |a: &str| args.algorithms.iter().any(|x| x == a);
    // Keys this run creates on real nodes are deleted when it ends, whatever happens.
    let made = Made {
        cluster: cluster.clone(),
        keys: std::sync::Mutex::new(Vec::new()),
        real: args.connect.is_some(),
    };
    if wants("rsa") {
        if args.connect.is_some() {
            if args.algorithms.len() == 1 {
                return Err("RSA on real nodes: give --key with a key of an offline ceremony (`tcrypto-node \
                            ceremony`, then `tcrypto-node import` on each node); this example never deals an RSA \
                            key in its own process for real nodes"
                    .into());
            }
            println!("RSA skipped: on real nodes give --key with a ceremony's key (nothing is dealt here)");
        } else {
            let key = deal_rsa(&cluster, &args, &mut rng)?;
            stream_key(&cluster, &args, key, "dealt in this process")?;
        }
    }
    for (name, algorithm) in [("ecdsa", Algorithm::EcdsaP256), ("ed25519", Algorithm::Ed25519)] {
        if wants(name) {
            let t = Instant::now();
            let key = cluster.create_key(algorithm, args.k)?;
            made.keys.lock().map_err(|_| "lock")?.push(key);
            println!(
                "{} {}-of-{} key {key} created by DKG across the nodes in {:.1?}",
                algorithm.name(),
                args.k,
                cluster.nodes().len(),
                t.elapsed()
            );
            stream_key(&cluster, &args, key, "made by DKG")?;
        }
    }
    print_health(&cluster);
    if args.metrics {
        print!("{}", tcrypto_net::metrics::coordinator_metrics(&cluster));
    }
    Ok(())
}

/// Keys created on real nodes by this run, deleted when it ends.
struct Made {
    cluster: Arc<BlockingCluster>,
    keys: std::sync::Mutex<Vec<tcrypto::KeyId>>,
    real: bool,
}

impl Drop for Made {
    fn drop(&mut self) {
        if !self.real {
            return;
        }
        for key in self.keys.lock().map(|k| k.clone()).unwrap_or_default() {
            match self.cluster.delete(key) {
                Ok(()) => println!("key {key} deleted from the nodes"),
                Err(e) => eprintln!("key {key} not deleted everywhere: {e}"),
            }
        }
    }
}

/// Deals an RSA key in this process (in-process nodes only) and distributes it.
fn deal_rsa(
    cluster: &BlockingCluster,
    args: &Args,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<tcrypto::KeyId, Box<dyn std::error::Error>> {
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
            deal_with_primes(&p, &q, 65537, args.k, args.n, rng)?
        }
        None => deal(args.bits, args.k, args.n, rng)?,
    };
    let key = cluster.import_rsa_shares(&pk, &shares, rng)?;
    println!(
        "RSA-{} {}-of-{} key {key} dealt and distributed in {:.1?}",
        pk.modulus_bits(),
        args.k,
        args.n,
        t.elapsed()
    );
    Ok(key)
}

/// Streams signatures with `key`, each checked by an independent verifier for its algorithm.
fn stream_key(
    cluster: &Arc<BlockingCluster>,
    args: &Args,
    key: tcrypto::KeyId,
    origin: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let public = cluster
        .public_key(&key)
        .ok_or_else(|| format!("key {key}: public key unknown"))?;
    println!("signing with key {key} ({}, {origin})", public.algorithm().name());
    match public {
        PublicKey::Rsa(pk) => {
            let verifier = rsa::PublicKey::new_unchecked(
                BoxedUint::from_be_slice_vartime(&pk.modulus_bytes()),
                BoxedUint::from(pk.public_exponent()),
            );
            let label = format!("RSA-{} PSS", pk.modulus_bits());
            stream(
                cluster,
                args,
                key,
                &label,
                "the rsa crate",
                move |i| Mechanism::RsaPss {
                    hash: HashAlg::Sha256,
                    digest: HashAlg::Sha256.digest(&i.to_be_bytes()),
                    // RSASSA-PSS with SHA-256 and a 32-byte salt chosen here, the coordinator's side.
                    salt: HashAlg::Sha256.digest(&(i as u64 ^ 0x5a5a).to_le_bytes()),
                },
                move |m, sig| match m {
                    Mechanism::RsaPss { digest, .. } => verifier
                        .verify(rsa::pss::Pss::<sha2::Sha256>::new_with_salt(32), digest, sig)
                        .map_err(|e| e.to_string()),
                    _ => Err("mechanism".into()),
                },
            )
        }
        PublicKey::Ecdsa(pk) => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&pk.set.public_key_bytes())?;
            stream(
                cluster,
                args,
                key,
                "ECDSA P-256 (presigning included)",
                "p256",
                move |i| Mechanism::Ecdsa {
                    digest: HashAlg::Sha256.digest(&i.to_be_bytes()),
                },
                move |m, sig| match m {
                    Mechanism::Ecdsa { digest } => p256::ecdsa::Signature::from_der(sig)
                        .and_then(|s| vk.verify_prehash(digest, &s))
                        .map_err(|e| e.to_string()),
                    _ => Err("mechanism".into()),
                },
            )
        }
        PublicKey::Ed25519(pk) => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.public_key_bytes())?;
            stream(
                cluster,
                args,
                key,
                "Ed25519 (FROST)",
                "ed25519-dalek",
                move |i| Mechanism::Ed25519 {
                    message: format!("message {i}").into_bytes(),
                },
                move |m, sig| match m {
                    Mechanism::Ed25519 { message } => ed25519_dalek::Signature::from_slice(sig)
                        .and_then(|s| vk.verify_strict(message, &s))
                        .map_err(|e| e.to_string()),
                    _ => Err("mechanism".into()),
                },
            )
        }
        _ => Err(format!("key {key}: algorithm not handled here").into()),
    }
}

/// Signs `args.count` requests from `args.in_flight` caller threads, verifies every signature with `verify`, and
/// prints the throughput and latency.
fn stream(
    cluster: &Arc<BlockingCluster>,
    args: &Args,
    key: tcrypto::KeyId,
    label: &str,
    verifier: &str,
    mechanism: impl Fn(usize) -> Mechanism + Send + Sync + 'static,
    verify: impl Fn(&Mechanism, &[u8]) -> Result<(), String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mechanism = Arc::new(mechanism);
    let next = Arc::new(AtomicUsize::new(0));
    let paths = cluster.ecdsa_signatures_by_path();
    let cpu = process_cpu();
    let start = Instant::now();
    let workers: Vec<_> = (0..args.in_flight)
        .map(|_| {
            let cluster = cluster.clone();
            let next = next.clone();
            let mechanism = mechanism.clone();
            let count = args.count;
            std::thread::spawn(move || {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let m = mechanism(i);
                    let t = Instant::now();
                    let r = cluster.sign(key, m.clone());
                    done.push((t.elapsed(), m, r));
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
    let cpu = process_cpu().saturating_sub(cpu);
    let mut latencies = Vec::new();
    for (lat, m, r) in &results {
        let sig = r
            .as_ref()
            .map_err(|e| format!("{label}: signature failed: {e}"))?;
        verify(m, &sig.bytes).map_err(|e| format!("{verifier} rejects a {label} signature: {e}"))?;
        latencies.push(*lat);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "{} {label} signatures, {} in flight: {:.0} signatures/min, p50 {:.1?}, p99 {:.1?}; process CPU {:.2} ms per signature; all verified by {verifier}",
        results.len(),
        args.in_flight,
        results.len() as f64 / elapsed.as_secs_f64() * 60.0,
        pct(0.5),
        pct(0.99),
        cpu.as_secs_f64() * 1000.0 / results.len().max(1) as f64,
    );
    let (fast, dkls) = cluster.ecdsa_signatures_by_path();
    if (fast, dkls) != paths {
        println!(
            "  ECDSA paths: {} from presignatures, {} by DKLs23 (k nodes online)",
            fast - paths.0,
            dkls - paths.1
        );
    }
    Ok(())
}

/// CPU time of this process (all threads: coordinator callers and, in-process, the nodes).
fn process_cpu() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(Duration::from_millis(ticks * 10))
        })
        .unwrap_or_default()
}

fn print_health(cluster: &BlockingCluster) {
    for h in cluster.health() {
        println!(
            "  {}: connected={} answered={} failed={} latency={:.1?}",
            h.name, h.connected, h.answered, h.failed, h.latency
        );
    }
}
