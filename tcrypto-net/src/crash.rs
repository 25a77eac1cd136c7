//! Injected crash points for multi-process tests of the reshare commit (feature `test-support` only; a no-op in
//! release builds).
//!
//! A process started with `TCRYPTO_CRASH_AT=<point>` aborts (as `kill -9` would end it: no destructor, no flush)
//! when it reaches the named point. Node points: `node-pending-stored` (a new share stored pending, before the
//! answer), `node-commit-decided` (the commit recorded, before the key file is replaced), `node-commit-installed`
//! (the key file replaced, before the pending copy goes), `node-retire-recorded` (the retirement recorded, before
//! the key file goes). Coordinator points (`tcrypto-ctl reshare`): `coordinator-pending` (every new holder stored
//! its pending share), `coordinator-tested` (the test signature verified), `coordinator-first-commit` (one new
//! holder committed), `coordinator-committed` (every new holder committed, no old holder retired).

/// The environment variable naming the crash point.
pub const ENV: &str = "TCRYPTO_CRASH_AT";

/// Aborts the process when [`ENV`] names `point` (test builds only).
pub fn point(point: &str) {
    #[cfg(feature = "test-support")]
    if std::env::var(ENV).is_ok_and(|v| v == point) {
        eprintln!("{ENV}={point}: crashing here");
        std::process::abort();
    }
    #[cfg(not(feature = "test-support"))]
    let _ = point;
}
