//! Reference signer: signs the bundled example zone (or a synthetic one) with NSEC3 and
//! ZONEMD, verifies it with our verifier, and prints the figures.
//!
//! By default the key is a threshold key of an in-process 3-of-5 cluster (the embedded default:
//! five signer nodes on loopback mutual TLS 1.3, the thread-free coordinator): an RSA-2048 key
//! dealt from the committed test primes (`--algorithm 13` or `15`: an ECDSA P-256 or Ed25519
//! key made by distributed key generation among the nodes), used as a combined key (CSK) through
//! `dnssec_sign::cluster::ClusterKey` with many requests in flight. The figures include the
//! cluster's raw signature rate for the same number of requests in flight. `--keys local` signs
//! with a local KSK and ZSK of `--algorithm` instead.
//!
//! ```sh
//! cargo run --release --example sign_zone -- --out /tmp/example.com.signed
//! cargo run --release --example sign_zone -- --synthetic 10000
//! cargo run --release --example sign_zone -- --keys local --synthetic 100000 --algorithm 15
//! ```

#[path = "support/fixture_primes.rs"]
mod fixture_primes;

use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dnssec_sign::cluster::{ClusterKey, ClusterKeyOptions};
use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::verify::{VerifyOptions, verify_zone};
use dnssec_sign::zone::Record;
use dnssec_sign::{Name, ZonemdHash, read_zone_file, write_zone_file};
use tcrypto_net::client::blocking::{BlockingCluster, BlockingEngine};
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::node::policy::{Policy, RrsigBuilder, rrsig_time};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Algorithm as ClusterAlgorithm;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Keys {
    /// A 3-of-5 threshold key of an in-process cluster.
    Cluster,
    /// Local keys generated in this process.
    Local,
}

#[derive(Parser)]
struct Args {
    /// Zone file (default: the bundled examples/data/example.zone).
    #[arg(long)]
    zone: Option<PathBuf>,
    /// Origin of the zone.
    #[arg(long, default_value = "example.com.")]
    origin: String,
    /// Add this many synthetic A/AAAA/TXT records to the zone, for throughput figures.
    #[arg(long, default_value_t = 0)]
    synthetic: usize,
    /// Where the keys are.
    #[arg(long, value_enum, default_value = "cluster")]
    keys: Keys,
    /// DNSSEC algorithm: 8, 10, 13 or 15 (default: 8 on the cluster, 13 locally). Cluster RSA
    /// keys are dealt from the committed test primes; ECDSA and Ed25519 keys are made by DKG.
    #[arg(long)]
    algorithm: Option<String>,
    /// Signature requests in flight per signing thread (cluster keys).
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Write the signed zone here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cluster keys: every node gets a signing policy binding the key to this zone as a CSK (RRSIG data only,
    /// 30 days), so each node parses and checks every RRSIG it signs; the raw rate then signs RRSIG data too (without
    /// it: digests). For the CPU cost of the policy checks (benches/policy.sh).
    #[arg(long)]
    policy: bool,
}

/// The CSK policy every node gets with `--policy`.
fn csk_policy(
    key: &tcrypto::KeyId,
    origin: &Name,
    algorithm: u8,
) -> Result<Policy, Box<dyn std::error::Error>> {
    let text = format!(
        "[[key]]\nkey = \"{key}\"\nmechanisms = [\"dnssec-rrsig\"]\n[key.dnssec]\nzones = [\"{origin}\"]\nrole = \"csk\"\n\
         algorithm = {algorithm}\nmax_validity = \"31d\"\nmax_inception_age = \"2h\"\nmax_expiration_ahead = \"31d\"\n"
    );
    Ok(Policy::parse(
        &text,
        std::path::Path::new("sign_zone-policy.toml"),
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let origin = Name::parse(&args.origin, None)?;
    let path = args
        .zone
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/example.zone"));
    let mut zone = read_zone_file(&path, Some(&origin))?;
    for i in 0..args.synthetic / 3 {
        let owner = origin.prepend(format!("host{i}").as_bytes())?;
        let ip = (i as u32).to_be_bytes();
        let mut aaaa = [0u8; 16];
        aaaa[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        aaaa[12..].copy_from_slice(&ip);
        let txt = format!("record {i}");
        let mut t = vec![txt.len() as u8];
        t.extend_from_slice(txt.as_bytes());
        for (rtype, rdata) in [
            (1u16, vec![10, ip[1], ip[2], ip[3]]),
            (28, aaaa.to_vec()),
            (16, t),
        ] {
            zone.records.push(Record {
                owner: owner.clone(),
                rtype,
                class: 1,
                ttl: 3600,
                rdata: rdata.into(),
            });
        }
    }
    let mut rng = rand::rng();
    let t = Instant::now();
    let mut _nodes = None;
    let mut cluster_key = None;
    let mut local_keys = Vec::new();
    match args.keys {
        Keys::Cluster => {
            let alg = Algorithm::parse(args.algorithm.as_deref().unwrap_or("8"))?;
            let coordinator = TlsIdentity::generate("coordinator")?;
            let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()])?;
            let cluster =
                BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default())?;
            let up = cluster.connect(Duration::from_secs(10));
            let id = match alg {
                Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                    let (pk, shares) = fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng)?;
                    cluster.import_rsa_shares(&pk, &shares, &mut rng)?
                }
                // born by distributed key generation among the five nodes
                Algorithm::EcdsaP256Sha256 => cluster.create_key(ClusterAlgorithm::EcdsaP256, 3)?,
                _ => cluster.create_key(ClusterAlgorithm::Ed25519, 3)?,
            };
            let opts = ClusterKeyOptions {
                ksk: true,
                rsa_algorithm: alg,
                in_flight: args.in_flight,
            };
            let key = ClusterKey::new(Arc::new(cluster), id, &origin, opts)?;
            if args.policy {
                for node in &nodes.nodes {
                    node.set_policy(Some(csk_policy(&id, &origin, alg.number())?));
                }
                println!("every node judges each RRSIG by its signing policy");
            }
            println!(
                "key: {} CSK {} = 3-of-5 threshold key {id} on {up} in-process nodes (loopback mutual TLS), {:.2} s",
                alg.mnemonic(),
                key.dnskey().key_tag(),
                t.elapsed().as_secs_f64()
            );
            _nodes = Some(nodes);
            cluster_key = Some(key);
        }
        Keys::Local => {
            let alg = Algorithm::parse(args.algorithm.as_deref().unwrap_or("13"))?;
            let ksk = LocalKey::generate(&origin, alg, true, 2048, &mut rng)?;
            let zsk = LocalKey::generate(&origin, alg, false, 2048, &mut rng)?;
            println!(
                "keys: local {} KSK {} + ZSK {} ({:.2} s)",
                alg.mnemonic(),
                ksk.dnskey().key_tag(),
                zsk.dnskey().key_tag(),
                t.elapsed().as_secs_f64()
            );
            local_keys = vec![ksk, zsk];
        }
    }
    let keys: Vec<&dyn ZoneSigningKey> = local_keys
        .iter()
        .map(|k| k as &dyn ZoneSigningKey)
        .chain(cluster_key.iter().map(|k| k as &dyn ZoneSigningKey))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut opts = SignOptions::new(now); // NSEC3, RFC 9276 parameters
    opts.zonemd = vec![ZonemdHash::Sha384];
    let input = zone.records.len();
    // the cluster's raw rate is measured right before and right after signing the zone, so that
    // a change of load on a shared machine shows as a difference between the two
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let raw_in_flight = threads * args.in_flight;
    let raw_before = match &cluster_key {
        Some(key) => Some(raw_cluster_rate(
            key,
            RAW_COUNT,
            raw_in_flight,
            args.policy,
            &origin,
        )?),
        None => None,
    };
    let cpu = process_cpu_seconds();
    let (signed, stats) = sign_zone(zone, &keys, &opts, None)?;
    let cpu = process_cpu_seconds() - cpu;
    println!(
        "signed {} records: {} RRSIGs, {} NSEC3, {:.3} s total, {:.3} s signing, {:.0} RRSIGs/s on {} cores ({:.2} s process CPU{})",
        input,
        stats.rrsigs,
        stats.denial_records,
        stats.total_seconds,
        stats.signing_seconds,
        stats.rrsigs as f64 / stats.signing_seconds.max(1e-9),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        if cluster_key.is_some() {
            ", nodes included"
        } else {
            ""
        }
    );
    if let (Some(key), Some(before)) = (&cluster_key, raw_before) {
        let after = raw_cluster_rate(key, RAW_COUNT, raw_in_flight, args.policy, &origin)?;
        let rate = (before.rate + after.rate) / 2.0;
        let raw_cpu = (before.cpu_per_signature + after.cpu_per_signature) / 2.0;
        let zone_cpu = cpu / stats.rrsigs.max(1) as f64;
        // on a shared machine the wall-clock rates move with the load; CPU time per signature
        // (nodes included) much less
        println!(
            "cluster raw rate with {raw_in_flight} in flight: {:.0} signatures/s before, {:.0} after, {:.2} ms process CPU per signature; the zone signer reached {:.0}% of it by wall clock, {:.0}% by CPU per signature ({:.2} ms per RRSIG, whole pipeline)",
            before.rate,
            after.rate,
            raw_cpu * 1e3,
            100.0 * stats.rrsigs as f64 / stats.signing_seconds.max(1e-9) / rate,
            100.0 * raw_cpu / zone_cpu.max(1e-12),
            zone_cpu * 1e3
        );
    }
    let t = Instant::now();
    let problems = verify_zone(
        &signed,
        &VerifyOptions {
            now: Some(now),
            require_zonemd: true,
        },
    )?;
    println!(
        "verified by our verifier in {:.3} s: {} problem(s)",
        t.elapsed().as_secs_f64(),
        problems.len()
    );
    for p in problems.iter().take(20) {
        println!("  {p}");
    }
    if let Some(out) = args.out {
        write_zone_file(&out, &signed.origin, &signed.records)?;
        println!("written to {}", out.display());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err("verification failed".into())
    }
}

/// CPU time of this process (all threads, the in-process nodes included).
fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Signatures per raw-rate measurement.
const RAW_COUNT: usize = 2000;

/// The bare cluster's figures.
#[derive(Clone, Copy)]
struct RawRate {
    /// Signatures per second.
    rate: f64,
    /// Process CPU seconds per signature (nodes included).
    cpu_per_signature: f64,
}

/// Signatures per second of the bare cluster (the key's requests, `in_flight` at once in a
/// sliding window), without any DNSSEC work, for comparison with the zone signer. `data`: each
/// request carries RRSIG data (a TXT RRset at the apex) the nodes parse, check and hash; else a
/// digest.
fn raw_cluster_rate(
    key: &ClusterKey<BlockingEngine>,
    count: usize,
    in_flight: usize,
    data: bool,
    origin: &Name,
) -> Result<RawRate, Box<dyn std::error::Error>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let base = RrsigBuilder::new(
        &origin.to_string(),
        &origin.to_string(),
        16,
        key.dnskey().algorithm,
    )?
    .signed(
        rrsig_time(now, -3600),
        rrsig_time(now, 14 * 86_400),
        key.dnskey().key_tag(),
    );
    let message = |i: usize| {
        let text = format!("record {i}");
        let mut rdata = vec![text.len() as u8];
        rdata.extend_from_slice(text.as_bytes());
        base.clone().rdata(&rdata).build()
    };
    let cpu = process_cpu_seconds();
    let cluster = key.cluster();
    let t = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    let mut started = 0;
    let mut done = 0;
    while done < count {
        let range = started..count.min(started + in_flight - pending.len());
        started = range.end.max(started);
        if data {
            let more: Vec<_> = range
                .map(|i| (key.key_id(), key.data_request(&message(i))))
                .collect();
            pending.extend(cluster.start_data_signs(more));
        } else {
            let more: Vec<_> = range.map(|i| (key.key_id(), key.request(&message(i)))).collect();
            pending.extend(cluster.start_signs(&more));
        }
        let op = pending.pop_front().ok_or("nothing in flight")?;
        cluster.wait_signature(op)?;
        done += 1;
    }
    Ok(RawRate {
        rate: count as f64 / t.elapsed().as_secs_f64(),
        cpu_per_signature: (process_cpu_seconds() - cpu) / count as f64,
    })
}
