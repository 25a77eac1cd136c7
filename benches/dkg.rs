//! Distributed key generation, 3-of-5, on P-256 and Ed25519: the whole run (all five parties, in this process)
//! and the CPU of one party (the whole run divided by five).

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng as _;
use tcrypto::dkg::{self, Curve, Ed25519, P256, Parameters};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

fn params(rng: &mut Rng) -> Parameters {
    Parameters::new(SessionId::random(rng), 3, (1..=5).filter_map(SignerId::new)).expect("parameters")
}

fn bench_curve<C: Curve>(c: &mut Criterion, name: &str) {
    let mut rng = Rng::seed_from_u64(7);
    c.bench_function(&format!("dkg_3of5/{name}/whole_run"), |b| {
        b.iter(|| {
            let p = params(&mut rng);
            dkg::run_in_process::<C>(&p, &mut rng).expect("dkg")
        })
    });
    c.bench_function(&format!("dkg_3of5/{name}/per_party"), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let p = params(&mut rng);
                let start = std::time::Instant::now();
                let out = dkg::run_in_process::<C>(&p, &mut rng).expect("dkg");
                total += start.elapsed();
                std::hint::black_box(out);
            }
            total / 5
        })
    });
}

fn dkg_p256(c: &mut Criterion) {
    bench_curve::<P256>(c, "p256");
}

fn dkg_ed25519(c: &mut Criterion) {
    bench_curve::<Ed25519>(c, "ed25519");
}

criterion_group!(benches, dkg_p256, dkg_ed25519);
criterion_main!(benches);
