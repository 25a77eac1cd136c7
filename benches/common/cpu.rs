//! Thread CPU time for benchmarks on a shared machine: other processes do not inflate it as they inflate
//! wall-clock time.

use std::time::Duration;

/// CPU time this thread has run so far (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn cpu_now() -> Duration {
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
        let start = cpu_now();
        let out = f(input);
        total += cpu_now().saturating_sub(start);
        std::hint::black_box(out);
    }
    total
}
