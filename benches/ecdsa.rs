//! Threshold ECDSA P-256, 3-of-5: presigning per party, online share, combination, a whole signature, and a
//! plain `p256` signature for comparison.

use std::collections::{BTreeMap, BTreeSet};

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use rand::SeedableRng as _;
use tcrypto::ecdsa::presign::{self, PresignParams};
use tcrypto::ecdsa::{self, KeyShare, Presignature, SignRequest};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

/// Runs presigning among all `keys`, returning every party's presignatures.
fn presign_all(keys: &[KeyShare], batch: u32, rng: &mut Rng) -> BTreeMap<SignerId, Vec<Presignature>> {
    let refs: Vec<&KeyShare> = keys.iter().collect();
    presign::run_in_process(&refs, SessionId::random(rng), batch, rng).expect("presign")
}

/// CPU of ONE party for one presignature: all five parties run (sequentially, in this process), and the
/// time is divided by the number of parties in the `iter_custom` loop.
fn presign_per_party(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(1);
    let keys = keys_3of5();
    c.bench_function("ecdsa_3of5/presign_per_party", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let start = std::time::Instant::now();
                let out = presign_all(keys, 1, &mut rng);
                total += start.elapsed();
                std::hint::black_box(out);
            }
            total / 5
        })
    });
    // The same, in batches of 16 presignatures (per party per presignature).
    c.bench_function("ecdsa_3of5/presign_per_party_batch16", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let start = std::time::Instant::now();
                let out = presign_all(keys, 16, &mut rng);
                total += start.elapsed();
                std::hint::black_box(out);
            }
            total / (5 * 16)
        })
    });
    // Round by round for one party (the others' messages are prepared outside the timing).
    let ids: Vec<SignerId> = keys.iter().map(|k| k.id()).collect();
    c.bench_function("ecdsa_3of5/presign_round1_one_party", |b| {
        b.iter(|| {
            let params = PresignParams {
                session: SessionId([1; 32]),
                parties: ids.iter().copied().collect(),
                batch: 1,
            };
            presign::round1(&keys[0], params, &mut rng).expect("round1")
        })
    });
}

fn keys_3of5() -> &'static [KeyShare] {
    static KEYS: std::sync::OnceLock<Vec<KeyShare>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| ecdsa::deal(3, 5, &mut Rng::seed_from_u64(2)).expect("deal"))
}

fn online(c: &mut Criterion) {
    let keys = keys_3of5();
    let mut rng = Rng::seed_from_u64(3);
    let digest = vec![0x42u8; 32];
    let signers = [SignerId::new(1), SignerId::new(3), SignerId::new(5)].map(|s| s.expect("id"));
    // A pool of presignatures (made outside the timing); each iteration consumes one per signer.
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
    let vk = keys[0].verifying_key().expect("vk");

    c.bench_function("ecdsa_3of5/online_share", |b| {
        b.iter_batched(
            || {
                let mut p = next();
                let presig = p.remove(&signers[0]).expect("presig");
                let req = SignRequest {
                    session: SessionId([2; 32]),
                    presignature: presig.id(),
                    digest: digest.clone(),
                };
                (presig, req)
            },
            |(presig, req)| ecdsa::sign_share(&keys[0], presig, &req, &mut BTreeSet::new()).expect("share"),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("ecdsa_3of5/combine", |b| {
        b.iter_batched(
            || {
                let p = next();
                let public = p[&signers[0]].public().clone();
                let req = SignRequest {
                    session: SessionId([2; 32]),
                    presignature: public.id,
                    digest: digest.clone(),
                };
                let shares: BTreeMap<_, _> = p
                    .into_iter()
                    .map(|(j, presig)| {
                        let key = &keys[usize::from(j.get()) - 1];
                        (
                            j,
                            ecdsa::sign_share(key, presig, &req, &mut BTreeSet::new()).expect("share"),
                        )
                    })
                    .collect();
                (public, req, shares)
            },
            |(public, req, shares)| ecdsa::combine(&public, &vk, &req, &shares).expect("combine"),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("ecdsa_3of5/whole_signature_all_parties", |b| {
        let mut rng = Rng::seed_from_u64(4);
        b.iter(|| {
            let mut p = presign_all(keys, 1, &mut rng);
            let public = p[&signers[0]][0].public().clone();
            let req = SignRequest {
                session: SessionId([2; 32]),
                presignature: public.id,
                digest: digest.clone(),
            };
            let shares: BTreeMap<_, _> = signers
                .iter()
                .map(|j| {
                    let presig = p.get_mut(j).and_then(|v| v.pop()).expect("presig");
                    let key = &keys[usize::from(j.get()) - 1];
                    (
                        *j,
                        ecdsa::sign_share(key, presig, &req, &mut BTreeSet::new()).expect("share"),
                    )
                })
                .collect();
            ecdsa::combine(&public, &vk, &req, &shares).expect("combine")
        })
    });
    let sk = p256::ecdsa::SigningKey::from_bytes(&p256::FieldBytes::from([7u8; 32])).expect("key");
    c.bench_function("p256/plain_sign_prehash", |b| {
        b.iter(|| -> p256::ecdsa::Signature { sk.sign_prehash(&digest).expect("sign") })
    });
}

criterion_group!(benches, presign_per_party, online);
criterion_main!(benches);
