//! The committed fuzz seed corpora (`fuzz/seeds/<target>/`): where they live and how they are written.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;

/// `fuzz/seeds/<target>`.
pub fn seeds_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/seeds/{target}"))
}

/// Writes `valid-<i>` (each seed) and `truncated-<i>` (its first half, which must not decode) for a target.
pub fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    let dir = seeds_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("valid-{i}")), seed).unwrap();
        std::fs::write(dir.join(format!("truncated-{i}")), &seed[..seed.len() / 2]).unwrap();
    }
}
