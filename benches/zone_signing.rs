//! Zone signing throughput: a synthetic zone signed with NSEC3 (RFC 9276 parameters) by local
//! ECDSA P-256, Ed25519 and RSA-2048 keys (the committed test fixtures), all cores; and the
//! signing paths of one RRSIG each (our fixed-size RSA-2048 CRT and batched ECDSA against the
//! `rsa` and `p256` crates' own signing), one thread.
//!
//! Times are **CPU time** (`zone_signing/*`: of the whole process, all signing threads;
//! `rrsig/*`: of the benchmark thread), not wall-clock, so that other processes on a shared
//! machine do not inflate them.

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::zone::{Record, Zone};
use dnssec_sign::{Denial, Name, parse_zone};

const HOSTS: usize = 3_000; // 9,000 records, ~12,000 RRSIGs

fn zone() -> Zone {
    let origin = Name::parse("example.", None).unwrap();
    let mut z = parse_zone(
        "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        Path::new("bench.zone"),
        Some(&origin),
    )
    .unwrap();
    for i in 0..HOSTS {
        let owner = origin.prepend(format!("h{i}").as_bytes()).unwrap();
        let ip = (i as u32).to_be_bytes();
        let txt = format!("record {i}");
        let mut t = vec![txt.len() as u8];
        t.extend_from_slice(txt.as_bytes());
        let mut aaaa = [0u8; 16];
        aaaa[12..].copy_from_slice(&ip);
        for (rtype, rdata) in [(1u16, ip.to_vec()), (28, aaaa.to_vec()), (16, t)] {
            z.records.push(Record {
                owner: owner.clone(),
                rtype,
                class: 1,
                ttl: 3600,
                rdata: rdata.into(),
            });
        }
    }
    z
}

fn fixture(alg: Algorithm) -> (LocalKey, LocalKey) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dnssec-sign/tests/data/keys");
    let keys: Vec<LocalKey> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .map(|p| LocalKey::read_files(&p).unwrap())
        .filter(|k| k.algorithm() == alg)
        .collect();
    let mut it = keys.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

fn bench(c: &mut Criterion) {
    let base = zone();
    let mut group = c.benchmark_group("zone_signing");
    group.sample_size(10);
    for (label, alg) in [
        ("ecdsa_p256_nsec3", Algorithm::EcdsaP256Sha256),
        ("ed25519_nsec3", Algorithm::Ed25519),
        ("rsa2048_nsec3", Algorithm::RsaSha256),
    ] {
        let (a, b) = fixture(alg);
        let keys: [&dyn ZoneSigningKey; 2] = [&a, &b];
        let mut opts = SignOptions::new(1_700_000_000);
        opts.denial = Denial::nsec3_rfc9276();
        let (_, stats) = sign_zone(base.clone(), &keys, &opts, None).unwrap();
        group.throughput(Throughput::Elements(stats.rrsigs as u64));
        group.bench_function(label, |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let zone = base.clone();
                    let start = cpu_now(rustix::time::ClockId::ProcessCPUTime);
                    let out = sign_zone(zone, &keys, &opts, None).unwrap();
                    total += cpu_now(rustix::time::ClockId::ProcessCPUTime).saturating_sub(start);
                    std::hint::black_box(out);
                }
                total
            });
        });
    }
    group.finish();
}

/// CPU time of this thread or process so far.
fn cpu_now(clock: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(clock);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// One RRSIG's signature, per path, in thread CPU time: `sign_batch` of `batch` messages (our
/// fast paths) against the crates' own signing of the same messages one by one.
fn rrsig_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("rrsig");
    for (label, alg, batch) in [
        ("rsa2048", Algorithm::RsaSha256, 8usize),
        ("ecdsa_p256", Algorithm::EcdsaP256Sha256, 512),
        ("ed25519", Algorithm::Ed25519, 512),
    ] {
        let (key, _) = fixture(alg);
        let msgs: Vec<Vec<u8>> = (0..batch).map(|i| format!("{i:0>120}").into_bytes()).collect();
        group.throughput(Throughput::Elements(batch as u64));
        let thread = rustix::time::ClockId::ThreadCPUTime;
        group.bench_function(format!("{label}/ours_sign_batch"), |b| {
            b.iter_custom(|iters| {
                let start = cpu_now(thread);
                for _ in 0..iters {
                    std::hint::black_box(key.sign_batch(&msgs).unwrap());
                }
                cpu_now(thread).saturating_sub(start)
            });
        });
        group.bench_function(format!("{label}/crate_one_by_one"), |b| {
            b.iter_custom(|iters| {
                let start = cpu_now(thread);
                for _ in 0..iters {
                    for m in &msgs {
                        std::hint::black_box(key.sign_with_crates(m));
                    }
                }
                cpu_now(thread).saturating_sub(start)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench, rrsig_paths);
criterion_main!(benches);
