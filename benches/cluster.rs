//! Criterion benchmark of the cluster: RSA-2048 3-of-5 PSS signatures through five signer nodes on loopback mutual
//! TLS 1.3 and the thread-free coordinator, with 32 requests in flight (32 caller threads of `Cluster::sign`).
//!
//! ```sh
//! cargo bench --bench cluster                      # criterion: time per batch of 64 signatures
//! cargo bench --bench cluster -- report            # 1000 signatures: signatures/min, p50/p99, CPU per signature
//! CLUSTER_BENCH_COUNT=3000 cargo bench --bench cluster -- report
//! ```
//!
//! The nodes run in this process on their own tokio runtime (as `examples/cluster.rs` does by default); every
//! signature is checked by the `rsa` crate. All of the work (nodes, TLS, coordinator, combination) is in this
//! process, so its CPU time per signature is a figure that other load on the machine does not distort; 2 cores
//! divided by it is the throughput ceiling of a 2-core machine. For node processes, run the example with
//! `--connect` against `tcrypto-net/scripts/local-cluster.sh`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsa::BoxedUint;
use tcrypto::rsa::PublicKeySet;
use tcrypto::{HashAlg, KeyId};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::Mechanism;

mod common;
use common::{fixture_key, process_cpu};

const IN_FLIGHT: usize = 32;
const BATCH: usize = 64;

struct Setup {
    cluster: BlockingCluster,
    key: KeyId,
    pk: PublicKeySet,
    _nodes: EmbeddedNodes,
}

fn setup() -> Setup {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let cluster =
        BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(10)), 5);
    let (pk, shares) = fixture_key(2048, 3, 5);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    Setup {
        cluster,
        key,
        pk,
        _nodes: nodes,
    }
}

/// Signs `count` distinct digests with `IN_FLIGHT` caller threads; every signature is checked by the `rsa` crate.
/// Returns each signature's latency.
fn sign_stream(s: &Setup, count: usize, first: usize) -> Vec<Duration> {
    let next = AtomicUsize::new(0);
    let verifier = rsa::PublicKey::new_unchecked(
        BoxedUint::from_be_slice_vartime(&s.pk.modulus_bytes()),
        BoxedUint::from(s.pk.public_exponent()),
    );
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..IN_FLIGHT.min(count))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return done;
                        }
                        let n = (first + i) as u64;
                        let digest = HashAlg::Sha256.digest(&n.to_be_bytes());
                        let salt = HashAlg::Sha256.digest(&(n ^ 0x5a5a).to_le_bytes());
                        let mechanism = Mechanism::RsaPss {
                            hash: HashAlg::Sha256,
                            digest: digest.clone(),
                            salt,
                        };
                        let t = Instant::now();
                        let sig = s.cluster.sign(s.key, mechanism).unwrap();
                        done.push((t.elapsed(), digest, sig.bytes));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    })
    .into_iter()
    .map(|(latency, digest, sig)| {
        verifier
            .verify(rsa::pss::Pss::<sha2::Sha256>::new_with_salt(32), &digest, &sig)
            .expect("the rsa crate accepts every cluster signature");
        latency
    })
    .collect();
    latencies.sort();
    latencies
}

fn cluster(c: &mut Criterion) {
    if std::env::args().any(|a| a == "report") {
        return;
    }
    let s = setup();
    let mut group = c.benchmark_group("cluster");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(BATCH as u64));
    let mut first = 0;
    group.bench_function("rsa2048_3of5_pss_tls_32_in_flight", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                sign_stream(&s, BATCH, first);
                first += BATCH;
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// Prints signatures/min, latency percentiles and CPU time per signature (`cargo bench --bench cluster -- report`).
fn report(_: &mut Criterion) {
    if !std::env::args().any(|a| a == "report") {
        return;
    }
    let count: usize = std::env::var("CLUSTER_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let s = setup();
    sign_stream(&s, 2 * IN_FLIGHT, 1 << 40); // warm up connections and thread pools
    let (start, cpu) = (Instant::now(), process_cpu());
    let latencies = sign_stream(&s, count, 0);
    let (wall, cpu) = (start.elapsed(), process_cpu() - cpu);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let cpu_per_sig = cpu / count as u32;
    println!(
        "cluster RSA-2048 3-of-5 PSS, 5 in-process nodes, loopback mTLS 1.3, {IN_FLIGHT} in flight: {count} \
         signatures in {wall:.2?}: {:.0} signatures/min (wall), p50 {:.1?}, p99 {:.1?}; CPU {:.2?} per signature \
         (all threads) = {:.0} signatures/min on 2 fully available cores",
        count as f64 / wall.as_secs_f64() * 60.0,
        pct(0.5),
        pct(0.99),
        cpu_per_sig,
        2.0 * 60.0 / cpu_per_sig.as_secs_f64(),
    );
    for h in s.cluster.health() {
        println!("  {}: answered={} failed={}", h.name, h.answered, h.failed);
    }
}

criterion_group!(benches, cluster, report);
criterion_main!(benches);
