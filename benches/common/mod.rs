//! Helpers shared by the benchmarks: test keys from the committed fixture primes, CPU clocks.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use tcrypto::rsa::{KeyShare, PublicKeySet, SafePrime, deal_with_primes};

/// A `k`-of-`n` RSA key of `bits` bits dealt from the committed fixture safe primes (`tcrypto/tests/data/`): test
/// keys only, but no prime search in a benchmark.
pub(crate) fn fixture_key(bits: usize, k: u16, n: u16) -> (PublicKeySet, Vec<KeyShare>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tcrypto/tests/data/safe_primes_{}.txt", bits / 2));
    let text = std::fs::read_to_string(path).unwrap();
    let primes: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| hex::decode(l.trim()).unwrap())
        .collect();
    let p = SafePrime::from_be_bytes(&primes[0]).unwrap();
    let q = SafePrime::from_be_bytes(&primes[1]).unwrap();
    deal_with_primes(&p, &q, 65537, k, n, &mut rand::rng()).unwrap()
}

/// CPU time of the whole process (every thread).
pub(crate) fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time this thread has run so far (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Measures `f` over `iters` runs in thread CPU time; `setup` runs outside the measurement.
pub(crate) fn cpu_time<S, T>(
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> T,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = thread_cpu();
        let out = f(input);
        total += thread_cpu().saturating_sub(start);
        std::hint::black_box(out);
    }
    total
}
