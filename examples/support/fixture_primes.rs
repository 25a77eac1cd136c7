//! Threshold RSA keys dealt from the committed test safe primes of `tcrypto` (public: test keys only), so examples
//! and tests need not search for fresh safe primes. Shared by `examples/sign_zone.rs` and the `dnssec-sign` tests.

use tcrypto::rsa::{KeyShare, PublicKeySet, SafePrime, deal_with_primes};

/// The committed 1024-bit safe primes (hex, one per line, `#` comments).
const SAFE_PRIMES_1024: &str = include_str!("../../tcrypto/tests/data/safe_primes_1024.txt");

/// A `k`-of-`n` RSA-2048 key (e = 65537) dealt from the first two committed 1024-bit safe primes.
pub(crate) fn rsa2048_from_fixture_primes(
    k: u16,
    n: u16,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(PublicKeySet, Vec<KeyShare>), Box<dyn std::error::Error>> {
    let primes = SAFE_PRIMES_1024
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            hex::decode(if l.len() % 2 == 1 {
                format!("0{l}")
            } else {
                l.to_string()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let [p, q, ..] = primes.as_slice() else {
        return Err("the fixture needs two primes".into());
    };
    let p = SafePrime::from_be_bytes(p)?;
    let q = SafePrime::from_be_bytes(q)?;
    Ok(deal_with_primes(&p, &q, 65537, k, n, rng)?)
}
