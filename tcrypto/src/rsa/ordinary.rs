//! Threshold RSA for **ordinary moduli**: any RSA key `N = pq` (primes not safe), e.g. an `openssl genrsa` key or a
//! BIND `dnssec-keygen -a RSASHA256` key, shared `k`-of-`n` without anyone keeping it whole after the split.
//!
//! # Why Shoup's protocol does not apply as is
//!
//! Shoup 2000 ("Practical Threshold Signatures", §3) shares `d` by Shamir's scheme over `Z_m`, `m = p'q'`, and
//! proves each signature share correct in the group of squares `Q_N`, which is cyclic of order `m` because `p`
//! and `q` are safe primes. For an ordinary key both fail:
//!
//! - **Sharing.** `φ(N) = (p−1)(q−1)` (and `λ(N)`) has small prime factors, typically all primes below `n`. Shamir
//!   sharing over `Z_M` with a composite `M` having a prime factor `r <= n` does not hide: the `k−1` evaluation
//!   points' Vandermonde system is not invertible modulo `r` (e.g. for `k = 2`, `f(r) = d + a·r ≡ d (mod r)` reveals
//!   `d mod r` to holder `r`). Implementations that run Shoup's dealer with `m = (p−1)(q−1)/4` on ordinary primes
//!   inherit this.
//! - **Proofs.** Shoup's proof of correctness is sound because `Q_N` has no elements of small order; in `Z_N^*` of an
//!   ordinary modulus a prover may deviate by an element of small order, and the simulation of the verification
//!   keys `v_i` relies on the same structure. Damgård and Koprowski ("Practical threshold RSA signatures without a
//!   trusted dealer", EUROCRYPT 2001) keep proofs for general moduli at the price of a non-standard assumption on
//!   elements of small order; Damgård and Dupont (PKC 2005) remove it with extra verifier work. Both were read
//!   here from memory only, not checked against their texts.
//!
//! # The construction
//!
//! We keep Shoup's signature shares and combination (so the node side is the same code for both kinds of keys)
//! and replace the rest:
//!
//! 1. **Integer sharing** (Rabin, "A simplified approach to threshold and proactive RSA", CRYPTO 1998; the `Δ`
//!    factor in the constant term as in Almansa–Damgård–Nielsen, EUROCRYPT 2006). The dealer
//!    ([`super::dealer::deal_ordinary`]) computes `d = e⁻¹ mod φ(N)`, draws `a_1 … a_{k−1}` uniformly from
//!    `[0, 2^A)` and gives holder `i` the non-negative integer `s_i = f(i)` for
//!    `f(z) = Δ·d + a_1 z + … + a_{k−1} z^{k−1}` over **Z**, `Δ = n!`. Nothing is reduced modulo anything: nobody
//!    needs `φ(N)` after the split.
//! 2. **Signature shares** exactly as Shoup's: `x_i = x^{2Δ s_i}` (canonical `±`), [`super::KeyShare::sign_share`],
//!    with **no proof** (`proof: None`).
//! 3. **Combination** exactly as Shoup's "Combining shares": for a set `S` of `k` holders,
//!    `w = Π_{i∈S} x_i^{2λ_i}`, `λ_i = Δ·Π_{j∈S∖i} j/(j−i)`. Over the integers `Σ_{i∈S} λ_i s_i = Δ·f(0) = Δ²·d`, so
//!    `w = x^{4Δ³·d}`; with `e' = 4Δ³` (scale `c = Δ` of [`super::PublicKeySet`]) and `a·e' + b·e = 1`,
//!    `y = w^a·x^b` satisfies `y^e = x^{a·e'·(ed)}·x^{b·e} = x` because `x^{ed} = x` for every `x` when
//!    `ed ≡ 1 (mod φ(N))`. The combiner releases `y` only if `y^e = x`: **the optimistic check**.
//! 4. **Robustness without proofs: subset search, culprits by elimination** ([`super::combine()`]). If the first
//!    `k` shares do not give a valid `y`, the combiner tries the other `k`-subsets of the shares it has (in
//!    lexicographic order of signer ids, skipping subsets all of whose members are already vouched for) until every
//!    share is either *vouched for* (member of a subset whose combination verifies) or every subset containing it
//!    has failed. The shares never vouched for are named as culprits ([`super::ShareFault::Inconsistent`]).
//! 5. **Share integrity.** The public key set carries `h_i = SHA-256(domain, N, e, k, n, b, i, s_i)` for each
//!    holder, so a node checks the share it receives or loads ([`super::KeyShare::new`]); there is no `v`, no
//!    `v_i`.
//!
//! # Parameters
//!
//! With `κ = 128` ([`KAPPA`]), `β(x)` the bit length of `x` and `|N|` the modulus size:
//!
//! - mask bits `A = κ + |N| + β(Δ) + (k−1)·β(n+1) + β(k−1)`;
//! - share bound `b = A + (k−1)·β(n) + β(k)`, since `s_i < Δ·2^{|N|} + (k−1)·2^A·n^{k−1} < 2^b`
//!   ([`share_bits`]); for 3-of-5 and a 2048-bit key, `b = 2199` (shares 7% longer than `N`, signing 7% slower);
//! - `n <= 16` ([`MAX_PARTIES`]), which bounds the subset search; `e` a prime `> n` (so `gcd(e, 4Δ³) = 1`).
//!
//! # What is guaranteed
//!
//! *Secrecy of the key shares (statistical, `2^{−κ}`).* For any set `T` of at most `k−1` holders, two keys `d`,
//! `d̃` give sharings whose restrictions to `T` are `2^{−κ}`-close: adding
//! `q(z) = (d̃ − d)·(Δ/Π_{t∈T} t)·Π_{t∈T}(t − z)` maps one onto the other keeping every `f(t)`, `t ∈ T`; it has
//! integer coefficients because the product of the distinct `t <= n` divides `Δ` (without the factor `Δ` in `f(0)`
//! there is no such map: for `k = 2`, `f(t) = d + a·t ≡ d (mod t)` leaks `d mod t`), bounded by
//! `2^{|N|}·Δ·(n+1)^{k−1}`, and shifting `k−1` uniform masks of `A` bits by that much moves their joint
//! distribution by at most `(k−1)·2^{|N|}·Δ·(n+1)^{k−1}/2^A <= 2^{−κ}`. The digests `h_i` are
//! hashes of values of full entropy given the adversary's view (random-oracle argument).
//!
//! *Secrecy of the signature shares (Shoup's simulation).* Given `y = x^d` and the shares of `T` (`|T| = k−1`),
//! every other holder's `x_j = x^{2Δ s_j}` is computable: over the integers,
//! `Δ·s_j = Λ_{0,j}·f(0) + Σ_{t∈T} Λ_{t,j}·s_t` with `f(0) = Δ·d` and the integral coefficients
//! `Λ_{m,j} = Δ·Π_{l∈(T∪{0})∖m} (j−l)/(m−l)` of Lagrange interpolation on `T ∪ {0}` (each denominator divides
//! `m!·(n−m)!`, which divides `Δ`), so `x_j = y^{2Λ_{0,j}·Δ}·Π_{t∈T} x^{2Λ_{t,j}·s_t}`. Signature shares therefore
//! reveal nothing beyond the signature.
//!
//! *Unforgeability* with at most `k−1` corrupt holders follows from the two points above and the security of RSA
//! signatures with the chosen encoding (PKCS#1 v1.5 or PSS), as in Shoup's Theorem 1.
//!
//! *Robustness.* Whenever the shares given to [`super::combine()`] include `k` honest ones, a signature is returned
//! (the subset of `k` honest shares verifies), whatever the other shares are; a returned signature always
//! satisfies `y^e = x`. With fewer than `k` shares that combine, [`super::Error::Unattributable`] asks for more.
//!
//! *Culprit naming.* An honest signer is **never** named when the given shares include `k` honest ones: it is in
//! a subset of `k` honest shares, which verifies. A Byzantine signer is named unless its share is in some subset
//! whose combination verifies. A single bad share `x̂_j = x_j·ζ` in a subset changes `y` by `ζ^{2λ_j·a}`, so it
//! can only pass if `ζ^{2λ_j·a·e} = 1`: `ζ = ±1` (the canonical form removes the sign; `x̂_j` is then the honest
//! share) or an element of small known order, which nobody is believed able to find without the factorisation
//! (this is where Damgård–Koprowski's kind of assumption enters, for naming only, not for robustness). Two or more
//! colluding Byzantine signers can craft deviations that cancel in one particular subset; that subset then yields
//! the correct signature, and those colluders may go unnamed. Shares that fail the structural checks (wrong
//! signer, out of range, not canonical, a proof attached) are always named.
//!
//! A Byzantine share is not caught on the happy path if it is not among the first `k` (it is not used).
//!
//! # Cost of the subset search
//!
//! One test costs `k` exponentiations with exponents `2λ_i` of at most `β(Δ) + (k−1)·β(n) + 1` bits, one
//! inversion and the check `y^e` (17 squarings for `e = 65537`); `x^{|b|}` is computed once per request. With
//! `r <= n` structurally valid shares the search makes at most `C(r, k)` tests; with one bad share it makes about
//! `C(r−1, k−1)` (every subset containing the bad share fails, and the others are mostly skipped once vouched for):
//!
//! | `n`, `k` | worst case `C(n, k)` | one bad among all `n`: `C(n−1, k−1)` | one bad among `r = k+1`: `k+1` |
//! |---|---|---|---|
//! | 3, 2 | 3 | 2 | 3 |
//! | 5, 3 | 10 | 6 | 4 |
//! | 7, 4 | 35 | 20 | 5 |
//! | 9, 5 | 126 | 70 | 6 |
//! | 16, 8 | 12 870 | 6 435 | 9 |
//!
//! Measured once at 2048 bits on a shared, loaded 2-core machine (dev profile, `opt-level = 3` for tcrypto and its dependencies, as
//! the tests build): a signature share 12–15 ms, one subset test 2–3 ms; one bad share among 9 shares of a 5-of-9
//! key 0.14 s, among 16 shares of an 8-of-16 key 20 s. The cost is driven by `r`, the number of shares given, not
//! by `n`: **a coordinator should add shares one (or a few) at a time** — `k` first, then `k+1` on
//! [`super::Error::Unattributable`], and so on — so that `t` bad shares cost at most `C(k+t, k)` tests
//! (`k+1` for one), rather than handing all `n` shares to the combiner.
//!
//! A coordinator that gets [`super::Error::Unattributable`] collects more shares and calls [`super::combine()`]
//! again with all of them (the earlier ones included: no share is wasted).

use crypto_bigint::modular::BoxedMontyForm;

use super::Error;
use super::combine::interpolate_squares;
use super::keys::PublicKeySet;
use super::math::pow_vartime;
use super::share::ShareContext;
use crate::SignerId;

/// Largest number of parties of an ordinary-modulus key: bounds the subset search (`C(16, 8) = 12 870` tests).
pub const MAX_PARTIES: u16 = 16;

/// The statistical hiding parameter `κ` of the integer sharing (bits).
pub const KAPPA: u32 = 128;

/// Smallest modulus the ordinary-modulus dealer accepts without [`super::dealer::SplitOptions`]'
/// `allow_small_modulus`.
pub const MIN_BITS: usize = 2048;

/// The mask bits `A = κ + |N| + β(Δ) + (k−1)·β(n+1) + β(k−1)` of the module documentation.
pub fn mask_bits(modulus_bits: u32, threshold: u16, parties: u16) -> u32 {
    let delta_bits = super::math::factorial(parties).bit_width_vartime();
    KAPPA
        + modulus_bits
        + delta_bits
        + u32::from(threshold.saturating_sub(1)) * bit_len(u32::from(parties) + 1)
        + bit_len(u32::from(threshold.saturating_sub(1)))
}

/// The share bound `b = A + (k−1)·β(n) + β(k)`: every share `s_i` is below `2^b`.
pub fn share_bits(modulus_bits: u32, threshold: u16, parties: u16) -> u32 {
    mask_bits(modulus_bits, threshold, parties)
        + u32::from(threshold.saturating_sub(1)) * bit_len(u32::from(parties))
        + bit_len(u32::from(threshold))
}

fn bit_len(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// What the subset search found.
pub(crate) struct Search {
    /// The signature, if some subset verified.
    pub(crate) signature: Option<Vec<u8>>,
    /// Signers in no verifying subset (all of them when `signature` is `None`; none when the first `k` verified).
    pub(crate) unvouched: Vec<SignerId>,
}

/// Combines `k`-subsets of `candidates` (structurally valid shares `x_i` in id order) until every candidate is
/// vouched for or every subset containing it has failed. The first subset (the first `k`) is the optimistic one;
/// when it verifies nothing else is tested.
pub(crate) fn search(
    pk: &PublicKeySet,
    ctx: &ShareContext,
    candidates: &[(SignerId, BoxedMontyForm)],
) -> Result<Search, Error> {
    let k = usize::from(pk.threshold());
    let r = candidates.len();
    if k == 0 || r < k {
        return Err(Error::Internal("subset search with fewer than k shares"));
    }
    let squares: Vec<BoxedMontyForm> = candidates.iter().map(|(_, x)| x.square()).collect();
    let x_b = pow_vartime(&ctx.x_mont, pk.combination_exponents().1);
    let mut vouched = vec![false; r];
    let mut signature = None;
    let test = |subset: &[usize]| {
        let members: Vec<(SignerId, &BoxedMontyForm)> =
            subset.iter().map(|&i| (candidates[i].0, &squares[i])).collect();
        interpolate_squares(pk, ctx, &x_b, &members)
    };
    let mut subset: Vec<usize> = (0..k).collect();
    {
        // Optimistic: the first k. When they verify the others are not used, hence not judged.
        if let Some(sig) = test(&subset)? {
            return Ok(Search {
                signature: Some(sig),
                unvouched: Vec::new(),
            });
        }
    }
    if !next_combination(&mut subset, r) {
        return Ok(Search {
            signature: None,
            unvouched: candidates.iter().map(|(id, _)| *id).collect(),
        });
    }
    loop {
        // A subset whose members are all vouched for already teaches nothing.
        let useful = signature.is_none() || subset.iter().any(|&i| !vouched[i]);
        if useful && let Some(sig) = test(&subset)? {
            for &i in &subset {
                vouched[i] = true;
            }
            signature.get_or_insert(sig);
            if vouched.iter().all(|v| *v) {
                break;
            }
        }
        if !next_combination(&mut subset, r) {
            break;
        }
    }
    let unvouched = candidates
        .iter()
        .zip(&vouched)
        .filter(|(_, v)| !**v)
        .map(|((id, _), _)| *id)
        .collect();
    Ok(Search { signature, unvouched })
}

/// The next `k`-subset of `0..r` in lexicographic order; `false` after the last one.
fn next_combination(subset: &mut [usize], r: usize) -> bool {
    let k = subset.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        if subset[i] < r - k + i {
            subset[i] += 1;
            for j in i + 1..k {
                subset[j] = subset[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// `C(r, k)`, saturating: the worst-case number of subsets the search of [`super::combine()`] tests.
pub fn worst_case_tests(r: u16, k: u16) -> u64 {
    if k > r {
        return 0;
    }
    let k = k.min(r - k);
    let mut acc: u64 = 1;
    for i in 0..u64::from(k) {
        acc = acc.saturating_mul(u64::from(r) - i) / (i + 1);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_enumerated_in_lexicographic_order_exactly_once() {
        let mut subset = vec![0, 1, 2];
        let mut seen = vec![subset.clone()];
        while next_combination(&mut subset, 5) {
            seen.push(subset.clone());
        }
        assert_eq!(seen.len(), 10);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen);
        assert_eq!(seen.last().unwrap(), &vec![2, 3, 4]);
    }

    #[test]
    fn worst_case_tests_are_binomials() {
        assert_eq!(worst_case_tests(5, 3), 10);
        assert_eq!(worst_case_tests(16, 8), 12_870);
        assert_eq!(worst_case_tests(15, 7), 6_435);
        assert_eq!(worst_case_tests(3, 4), 0);
    }

    #[test]
    fn share_bound_of_3_of_5_with_a_2048_bit_key() {
        // A = 128 + 2048 + β(120) = 7 + 2·β(6) = 6 + β(2) = 2 → 2191; b = A + 2·β(5) + β(3) = 2191 + 6 + 2.
        assert_eq!(mask_bits(2048, 3, 5), 2191);
        assert_eq!(share_bits(2048, 3, 5), 2199);
        assert_eq!((bit_len(0), bit_len(1), bit_len(8)), (0, 1, 4));
    }
}
