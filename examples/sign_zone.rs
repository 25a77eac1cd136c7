//! Reference signer: signs the bundled example zone (or a synthetic one) with NSEC3 and
//! ZONEMD, verifies it with our verifier, and prints the figures.
//!
//! Keys are local (an ECDSA P-256 KSK and ZSK generated in-process); the same pipeline takes
//! any `dnssec_sign::ZoneSigningKey`, e.g. a threshold key of an in-process 3-of-5 cluster
//! once `tcrypto-net` provides one.
//!
//! ```sh
//! cargo run --release --example sign_zone -- --out /tmp/example.com.signed
//! cargo run --release --example sign_zone -- --synthetic 100000 --algorithm 15
//! ```

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::verify::{VerifyOptions, verify_zone};
use dnssec_sign::zone::Record;
use dnssec_sign::{Name, ZonemdHash, read_zone_file, write_zone_file};

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
    /// DNSSEC algorithm: 8, 10, 13 or 15.
    #[arg(long, default_value = "13")]
    algorithm: String,
    /// Write the signed zone here.
    #[arg(long)]
    out: Option<PathBuf>,
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
    let alg = Algorithm::parse(&args.algorithm)?;
    let mut rng = rand::rng();
    let t = Instant::now();
    let ksk = LocalKey::generate(&origin, alg, true, 2048, &mut rng)?;
    let zsk = LocalKey::generate(&origin, alg, false, 2048, &mut rng)?;
    println!(
        "keys: {} KSK {} + ZSK {} ({:.2} s)",
        alg.mnemonic(),
        ksk.dnskey().key_tag(),
        zsk.dnskey().key_tag(),
        t.elapsed().as_secs_f64()
    );
    let keys: [&dyn ZoneSigningKey; 2] = [&ksk, &zsk];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut opts = SignOptions::new(now); // NSEC3, RFC 9276 parameters
    opts.zonemd = vec![ZonemdHash::Sha384];
    let input = zone.records.len();
    let (signed, stats) = sign_zone(zone, &keys, &opts, None)?;
    println!(
        "signed {} records: {} RRSIGs, {} NSEC3, {:.3} s total, {:.3} s signing, {:.0} RRSIGs/s on {} cores",
        input,
        stats.rrsigs,
        stats.denial_records,
        stats.total_seconds,
        stats.signing_seconds,
        stats.rrsigs as f64 / stats.signing_seconds.max(1e-9),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
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
