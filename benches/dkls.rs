//! DKLs23 `k`-online threshold ECDSA P-256 (`tcrypto::ecdsa::dkls`), 3-of-5 signing with 3 signers: CPU per
//! party for one signature (all three parties' rounds and the combination run in this thread, divided by 3),
//! the one-time per-pair setup (base OTs, both sides), and the bytes each party sends per signature (printed).
//!
//! Every benchmark measures the **CPU time of the benchmark thread** (`CLOCK_THREAD_CPUTIME_ID`); key dealing
//! and pair setup for the signing benchmark are outside the measured sections.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng as _;
use tcrypto::ecdsa::dkls::{self, PairState, PartialSignature, Round1Msg, Round2Msg, SignParams, setup};
use tcrypto::ecdsa::{self, KeyShare};
use tcrypto::{SessionId, SignerId};

type Rng = rand::rngs::StdRng;

#[allow(clippy::unwrap_used)] // the shared fixture loader unwraps (benchmarks only)
mod common;
use common::cpu_time;

const SIGNERS: [u16; 3] = [1, 3, 5];

fn id(i: u16) -> SignerId {
    SignerId::new(i).expect("id")
}

struct Fixture {
    keys: Vec<KeyShare>,
    pairs: BTreeMap<SignerId, BTreeMap<SignerId, PairState>>,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut rng = Rng::seed_from_u64(7);
        let keys = ecdsa::deal(3, 5, &mut rng).expect("deal");
        let mut pairs: BTreeMap<SignerId, BTreeMap<SignerId, PairState>> = BTreeMap::new();
        for (n, &i) in SIGNERS.iter().enumerate() {
            for &j in &SIGNERS[n + 1..] {
                let (a, b) =
                    setup::run_pair(SessionId::random(&mut rng), id(i), id(j), &mut rng).expect("setup");
                pairs.entry(id(i)).or_default().insert(id(j), a);
                pairs.entry(id(j)).or_default().insert(id(i), b);
            }
        }
        Fixture { keys, pairs }
    })
}

/// One whole signature; returns the signature and the bytes each party sent.
fn sign_once(f: &Fixture, digest: &[u8], rng: &mut Rng) -> (ecdsa::Combined, BTreeMap<SignerId, usize>) {
    let params = SignParams {
        session: SessionId::random(rng),
        signers: SIGNERS.iter().map(|i| id(*i)).collect(),
    };
    let key = |i: SignerId| &f.keys[usize::from(i.get()) - 1];
    let mut sent: BTreeMap<SignerId, usize> = BTreeMap::new();
    let mut states = BTreeMap::new();
    let mut inbox1: BTreeMap<SignerId, BTreeMap<SignerId, Round1Msg>> = BTreeMap::new();
    for &i in &params.signers {
        let (s, out) = dkls::round1(key(i), &f.pairs[&i], params.clone(), rng).expect("round1");
        states.insert(i, s);
        for (to, m) in out {
            let bytes = m.encode();
            *sent.entry(i).or_default() += bytes.len();
            inbox1
                .entry(to)
                .or_default()
                .insert(i, Round1Msg::decode(&bytes).expect("decode"));
        }
    }
    let mut states2 = BTreeMap::new();
    let mut inbox2: BTreeMap<SignerId, BTreeMap<SignerId, Round2Msg>> = BTreeMap::new();
    for (i, s) in states {
        let (s, out) = s.round2(&f.pairs[&i], &inbox1[&i], rng).expect("round2");
        states2.insert(i, s);
        for (to, m) in out {
            let bytes = m.encode();
            *sent.entry(i).or_default() += bytes.len();
            inbox2
                .entry(to)
                .or_default()
                .insert(i, Round2Msg::decode(&bytes).expect("decode"));
        }
    }
    let mut partials = BTreeMap::new();
    for (i, s) in states2 {
        let p = s.round3(&inbox2[&i], digest).expect("round3");
        let bytes = p.encode();
        *sent.entry(i).or_default() += bytes.len();
        partials.insert(i, PartialSignature::decode(&bytes).expect("decode"));
    }
    let vk = f.keys[0].verifying_key().expect("vk");
    (
        dkls::combine(&vk, &params, digest, &partials).expect("combine"),
        sent,
    )
}

fn signing(c: &mut Criterion) {
    let f = fixture();
    let mut rng = Rng::seed_from_u64(1);
    let digest = [0x42u8; 32];
    let (_, sent) = sign_once(f, &digest, &mut rng);
    for (i, bytes) in &sent {
        println!("dkls_3of5: party {i} sends {bytes} bytes per signature");
    }
    c.bench_function("dkls_3of5/sign_per_party", |b| {
        b.iter_custom(|iters| cpu_time(iters, || (), |()| sign_once(f, &digest, &mut rng)) / 3)
    });
}

fn pair_setup(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(2);
    c.bench_function("dkls/pair_setup_both_sides", |b| {
        b.iter_custom(|iters| {
            cpu_time(
                iters,
                || (),
                |()| setup::run_pair(SessionId::random(&mut rng), id(1), id(2), &mut rng).expect("setup"),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = signing, pair_setup
}
criterion_main!(benches);
