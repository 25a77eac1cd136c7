//! Threshold ECDSA P-256, 3-of-5: presigning per party, online share, combination, a whole signature, and a
//! plain `p256` signature for comparison.
//!
//! Every benchmark measures the **CPU time of the benchmark thread** (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall-clock time, so that other processes on a shared machine do not inflate the figures;
//! setup (making presignatures for the online benchmarks) is outside the measured sections.

use std::collections::{BTreeMap, BTreeSet};

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use rand::SeedableRng as _;
use tcrypto::ecdsa::{self, KeyShare, Presignature, SignRequest};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

#[allow(clippy::unwrap_used)] // the shared fixture loader unwraps (benchmarks only)
mod common;
use common::cpu_time;

fn keys_3of5() -> &'static [KeyShare] {
    static KEYS: std::sync::OnceLock<Vec<KeyShare>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| ecdsa::deal(3, 5, &mut Rng::seed_from_u64(2)).expect("deal"))
}

/// Runs presigning among all `keys`, returning every party's presignatures.
fn presign_all(keys: &[KeyShare], batch: u32, rng: &mut Rng) -> BTreeMap<SignerId, Vec<Presignature>> {
    let refs: Vec<&KeyShare> = keys.iter().collect();
    ecdsa::presign::run_in_process(&refs, SessionId::random(rng), batch, rng).expect("presign")
}

/// CPU of ONE party for one presignature: all five parties run in this thread, and the CPU time is divided
/// by the number of parties (and of presignatures in the batch).
fn presigning(c: &mut Criterion) {
    let keys = keys_3of5();
    let mut rng = Rng::seed_from_u64(1);
    for batch in [1u32, 16] {
        let name = format!("ecdsa_3of5/presign_per_party_batch{batch}");
        c.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                cpu_time(iters, || (), |()| presign_all(keys, batch, &mut rng)) / (5 * batch)
            })
        });
    }
}

fn online(c: &mut Criterion) {
    let keys = keys_3of5();
    let mut rng = Rng::seed_from_u64(3);
    let digest = vec![0x42u8; 32];
    let signers = [SignerId::new(1), SignerId::new(3), SignerId::new(5)].map(|s| s.expect("id"));
    let vk = keys[0].verifying_key().expect("vk");
    // A pool of presignatures (made outside the measurement); each use consumes one per signer.
    let mut pool = presign_all(keys, 64, &mut rng);
    let mut next = move || -> BTreeMap<SignerId, Presignature> {
        if pool.values().any(|v| v.is_empty()) {
            pool = presign_all(keys, 64, &mut rng);
        }
        signers
            .iter()
            .map(|s| (*s, pool.get_mut(s).and_then(|v| v.pop()).expect("presig")))
            .collect()
    };
    let request = |public: &ecdsa::PresignaturePublic| SignRequest {
        session: SessionId([2; 32]),
        presignature: public.id,
        digest: digest.clone(),
    };
    let shares_of = |p: BTreeMap<SignerId, Presignature>, req: &SignRequest| -> BTreeMap<_, _> {
        p.into_iter()
            .map(|(j, presig)| {
                let key = &keys[usize::from(j.get()) - 1];
                (
                    j,
                    ecdsa::sign_share(key, presig, req, &mut BTreeSet::new()).expect("share"),
                )
            })
            .collect()
    };

    c.bench_function("ecdsa_3of5/online_share", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let mut p = next();
                    let presig = p.remove(&signers[0]).expect("presig");
                    let req = request(presig.public());
                    (presig, req)
                },
                |(presig, req)| {
                    ecdsa::sign_share(&keys[0], presig, &req, &mut BTreeSet::new()).expect("share")
                },
            )
        })
    });
    c.bench_function("ecdsa_3of5/combine", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let p = next();
                    let public = p[&signers[0]].public().clone();
                    let req = request(&public);
                    let shares = shares_of(p, &req);
                    (public, req, shares)
                },
                |(public, req, shares)| ecdsa::combine(&public, &vk, &req, &shares).expect("combine"),
            )
        })
    });
    // The same with the key's precomputed table (built once, outside the measurement).
    let prepared = ecdsa::PreparedKey::new(&vk);
    c.bench_function("ecdsa_3of5/combine_with_prepared_key", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let p = next();
                    let public = p[&signers[0]].public().clone();
                    let req = request(&public);
                    let shares = shares_of(p, &req);
                    (public, req, shares)
                },
                |(public, req, shares)| {
                    ecdsa::combine_with(&public, &prepared, &req, &shares).expect("combine")
                },
            )
        })
    });
    c.bench_function("ecdsa_3of5/combine_with_one_bad_share", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || {
                    let p = next();
                    let public = p[&signers[0]].public().clone();
                    let req = request(&public);
                    let mut shares = shares_of(p, &req);
                    if let Some(s) = shares.get_mut(&signers[1]) {
                        s.s += p256::Scalar::ONE;
                    }
                    (public, req, shares)
                },
                |(public, req, shares)| ecdsa::combine(&public, &vk, &req, &shares),
            )
        })
    });
    c.bench_function("ecdsa_3of5/whole_signature_all_parties", |b| {
        let mut rng = Rng::seed_from_u64(4);
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || (),
                |()| {
                    let p = presign_all(keys, 1, &mut rng);
                    let chosen: BTreeMap<_, _> = p
                        .into_iter()
                        .filter(|(j, _)| signers.contains(j))
                        .filter_map(|(j, mut v)| v.pop().map(|x| (j, x)))
                        .collect();
                    let public = chosen[&signers[0]].public().clone();
                    let req = request(&public);
                    let shares = shares_of(chosen, &req);
                    ecdsa::combine(&public, &vk, &req, &shares).expect("combine")
                },
            )
        })
    });
    let sk = p256::ecdsa::SigningKey::from_bytes(&p256::FieldBytes::from([7u8; 32])).expect("key");
    c.bench_function("p256/plain_sign_prehash", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || (),
                |()| -> p256::ecdsa::Signature { sk.sign_prehash(&digest).expect("sign") },
            )
        })
    });
}

criterion_group!(benches, presigning, online);
criterion_main!(benches);
