//! Threshold Ed25519 (FROST), 3-of-5: round 1 (commit), round 2 (sign share), aggregation, a whole signature,
//! and a plain `ed25519-dalek` signature for comparison.
//!
//! Every benchmark measures the **CPU time of the benchmark thread**, not wall-clock time, so that other processes
//! on a shared machine do not inflate the figures; setup is outside the measured sections.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signer as _;
use rand::SeedableRng as _;
use tcrypto::dkg::{self, Ed25519};
use tcrypto::ed25519::{self, KeyShare, SigningPackage, round1, round2};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

#[allow(clippy::unwrap_used)] // the shared fixture loader unwraps (benchmarks only)
mod common;
use common::cpu_time;

const MSG: &[u8] = b"example.com. 3600 IN DNSKEY 257 3 15 ... a typical RRset to sign";

fn keys_3of5(rng: &mut Rng) -> Vec<KeyShare> {
    let params = dkg::Parameters::new(SessionId::random(rng), 3, (1..=5).filter_map(SignerId::new))
        .expect("parameters");
    dkg::run_in_process::<Ed25519>(&params, rng)
        .expect("dkg")
        .into_iter()
        .map(|s| KeyShare::from_dkg(s).expect("key share"))
        .collect()
}

/// Round 1 for the first three signers and the coordinator's package.
fn round1_all(
    keys: &[KeyShare],
    rng: &mut Rng,
) -> (BTreeMap<SignerId, round1::SigningNonces>, SigningPackage) {
    let session = SessionId::random(rng);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for k in &keys[..3] {
        let (n, c) = round1::commit(k, session, rng).expect("commit");
        nonces.insert(k.id(), n);
        commitments.insert(k.id(), c);
    }
    let package = SigningPackage::new(session, MSG.to_vec(), commitments).expect("package");
    (nonces, package)
}

fn whole_signature(keys: &[KeyShare], rng: &mut Rng) -> ed25519::Signature {
    let (mut nonces, package) = round1_all(keys, rng);
    let mut shares = BTreeMap::new();
    for k in &keys[..3] {
        let n = nonces.remove(&k.id()).expect("nonces");
        shares.insert(k.id(), round2::sign(k, n, &package).expect("sign"));
    }
    ed25519::aggregate(keys[0].public(), &package, &shares).expect("aggregate")
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(3);
    let keys = keys_3of5(&mut rng);

    c.bench_function("ed25519_3of5/round1_commit_per_signer", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || (),
                |()| round1::commit(&keys[0], SessionId([1; 32]), &mut rng).expect("commit"),
            )
        })
    });

    let mut setup_rng = Rng::seed_from_u64(4);
    c.bench_function("ed25519_3of5/round2_sign_share_per_signer", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let (mut nonces, package) = round1_all(&keys, &mut setup_rng);
                    (nonces.remove(&keys[0].id()).expect("nonces"), package)
                },
                |(n, package)| round2::sign(&keys[0], n, &package).expect("sign"),
            )
        })
    });

    c.bench_function("ed25519_3of5/aggregate", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let (mut nonces, package) = round1_all(&keys, &mut setup_rng);
                    let mut shares = BTreeMap::new();
                    for k in &keys[..3] {
                        let n = nonces.remove(&k.id()).expect("nonces");
                        shares.insert(k.id(), round2::sign(k, n, &package).expect("sign"));
                    }
                    (package, shares)
                },
                |(package, shares)| {
                    ed25519::aggregate(keys[0].public(), &package, &shares).expect("aggregate")
                },
            )
        })
    });

    c.bench_function("ed25519_3of5/whole_signature", |b| {
        b.iter_custom(|iters| cpu_time(iters, || (), |()| whole_signature(&keys, &mut rng)))
    });

    let plain = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    c.bench_function("ed25519_plain/ed25519_dalek_sign", |b| {
        b.iter_custom(|iters| cpu_time(iters, || (), |()| plain.sign(MSG)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
