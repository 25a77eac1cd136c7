//! The trusted dealer (Shoup 2000, §3 "The dealer") and key import. **Single point of failure**: the process
//! running this sees the whole key; everything secret (`p`, `q`, `p'`, `q'`, `m`, `d`, the polynomial) is zeroized
//! before returning and never leaves this module.
//!
//! The dealer picks safe primes `p = 2p'+1`, `q = 2q'+1` (`crypto-primes`), `N = pq` of exactly the requested size,
//! a prime `e > n`, `d = e⁻¹ mod m` with `m = p'q'`, a random polynomial `f` of degree `k−1` over `Z_m` with
//! `f(0) = d`, the shares `s_i = f(i) mod m`, a random square `v` and the verification keys `v_i = v^{s_i}`.
//!
//! [`deal`] searches the two primes one after the other on the calling thread (this crate spawns no threads). A
//! caller with several cores calls [`generate_safe_prime`] on two threads (each with its own RNG) and then
//! [`deal_with_primes`]; the `threshold_rsa` example and the dealer benchmark do that.
//!
//! **Import of existing keys** ([`split`], [`split_with`], [`split_primes`]): a key whose primes are both safe is
//! dealt as a Shoup key (with proofs); any other key by [`deal_ordinary`], the integer sharing of
//! [`super::ordinary`], which refuses moduli below 2048 bits unless [`SplitOptions::allowing_small_modulus`].
//! Everything secret of an ordinary key (`p`, `q`, `φ(N)`, `d`, `Δ·d`, the masks, the shares) is zeroized when
//! the dealer returns; the caller zeroizes its copy of the key file.

use core::fmt;

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, Limb, NonZero, Odd, RandomBits, RandomMod};
use crypto_primes::hazmat::{SetBits, SmallFactorsSieveFactory};
use crypto_primes::{Flavor, is_prime, sieve_and_find};
use der::Decode;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::keys::{KeyShare, PublicKeySet, check_public_exponent};
use super::math::{factorial, resize_secret};
use super::math::{fixed_be, mul_wide, resize};
use super::{DEFAULT_PUBLIC_EXPONENT, Error, MAX_MODULUS_BITS, MAX_PARTIES, MIN_MODULUS_BITS, ordinary};
use crate::SignerId;

/// Smallest modulus [`deal`] generates.
pub const MIN_DEAL_BITS: usize = 2048;

/// A safe prime `p = 2p' + 1` (both prime). Secret: zeroized on drop, `Debug` prints `<redacted>`.
pub struct SafePrime(BoxedUint);

impl SafePrime {
    /// Checks that `bytes` (big-endian) is a safe prime of at least 64 bits.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let p = Zeroizing::new(BoxedUint::from_be_slice_vartime(bytes));
        Self::new((*p).clone())
    }

    fn new(p: BoxedUint) -> Result<Self, Error> {
        let p = Self(p);
        if p.0.bit_width_vartime() < 64 || !is_prime(Flavor::Safe, &p.0) {
            return Err(Error::KeyImport("not a safe prime"));
        }
        Ok(p)
    }

    /// Bit length.
    pub fn bits(&self) -> u32 {
        self.0.bit_width_vartime()
    }
}

impl Drop for SafePrime {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SafePrime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SafePrime(<redacted>)")
    }
}

/// A random safe prime of exactly `bits` bits whose two top bits are set, so the product of two of them has
/// exactly `2·bits` bits.
pub fn generate_safe_prime(bits: u32, rng: &mut (impl CryptoRng + ?Sized)) -> Result<SafePrime, Error> {
    if !(32..=(MAX_MODULUS_BITS as u32) / 2).contains(&bits) {
        return Err(Error::InvalidParameters("safe prime size out of range"));
    }
    let factory = SmallFactorsSieveFactory::<BoxedUint>::new(Flavor::Safe, bits, SetBits::TwoMsb)
        .map_err(|_| Error::InvalidParameters("safe prime size out of range"))?;
    let p = sieve_and_find(rng, factory, |_, candidate| is_prime(Flavor::Safe, candidate))
        .map_err(|_| Error::Internal("prime sieve failed"))?
        .ok_or(Error::Internal("prime sieve exhausted"))?;
    Ok(SafePrime(p))
}

/// Deals a fresh `k`-of-`n` key with a modulus of exactly `bits` bits (even, `2048..=16384`) and `e = 65537`.
pub fn deal(
    bits: usize,
    threshold: u16,
    parties: u16,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    check_counts(threshold, parties)?;
    if !bits.is_multiple_of(2) || !(MIN_DEAL_BITS..=MAX_MODULUS_BITS).contains(&bits) {
        return Err(Error::InvalidParameters(
            "modulus size must be even and in 2048..=16384",
        ));
    }
    let half = u32::try_from(bits / 2).map_err(|_| Error::InvalidParameters("modulus size"))?;
    let p = generate_safe_prime(half, rng)?;
    let q = loop {
        let q = generate_safe_prime(half, rng)?;
        if q.0 != p.0 {
            break q;
        }
    };
    let dealt = deal_with_primes(&p, &q, DEFAULT_PUBLIC_EXPONENT, threshold, parties, rng)?;
    if dealt.0.modulus_bits() != bits {
        return Err(Error::Internal("modulus has the wrong size"));
    }
    Ok(dealt)
}

/// Deals a `k`-of-`n` key from given safe primes `p ≠ q` and a prime public exponent `e > n` with
/// `gcd(e, m) = 1`.
pub fn deal_with_primes(
    p: &SafePrime,
    q: &SafePrime,
    e: u64,
    threshold: u16,
    parties: u16,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    check_counts(threshold, parties)?;
    check_public_exponent(e, parties)?;
    if p.0 == q.0 {
        return Err(Error::InvalidParameters("p and q must differ"));
    }
    let n = mul_wide(&p.0, &q.0);
    let bits = n.bit_width_vartime();
    if (bits as usize) < MIN_MODULUS_BITS || bits as usize > MAX_MODULUS_BITS {
        return Err(Error::InvalidParameters("modulus size out of range"));
    }
    let n = Zeroizing::new(resize(&n, bits)?);
    let precision = n.bits_precision();
    let modulus = Odd::new((*n).clone())
        .into_option()
        .ok_or(Error::Internal("product of odd primes is even"))?;

    // m = p'q', at the precision of N.
    let p_half = Zeroizing::new(p.0.shr(1));
    let q_half = Zeroizing::new(q.0.shr(1));
    let m = Zeroizing::new(resize(&mul_wide(&p_half, &q_half), precision)?);
    let m_odd = Zeroizing::new(
        Odd::new((*m).clone())
            .into_option()
            .ok_or(Error::InvalidParameters("p' and q' must be odd primes"))?,
    );
    let m_nz = Zeroizing::new(
        NonZero::new((*m).clone())
            .into_option()
            .ok_or(Error::Internal("m is zero"))?,
    );

    // d = e^{-1} mod m (exists iff gcd(e, m) = 1).
    let e_big = resize(&BoxedUint::from(e), precision)?;
    let d = Zeroizing::new(
        e_big
            .invert_odd_mod(&m_odd)
            .into_option()
            .ok_or(Error::InvalidParameters("gcd(e, m) != 1"))?,
    );

    // f(X) = d + a_1 X + … + a_{k−1} X^{k−1} over Z_m.
    let mut coefficients: Vec<Zeroizing<BoxedUint>> = Vec::with_capacity(usize::from(threshold));
    coefficients.push(d);
    for _ in 1..threshold {
        coefficients.push(Zeroizing::new(random_below(&m_nz, rng)));
    }
    let shares: Vec<Zeroizing<BoxedUint>> = (1..=parties)
        .map(|i| {
            let i = resize(&BoxedUint::from(u64::from(i)), precision)?;
            let mut acc = Zeroizing::new(BoxedUint::zero_with_precision(precision));
            for a in coefficients.iter().rev() {
                *acc = acc.mul_mod(&i, &m_nz).add_mod(a, &m_nz);
            }
            Ok(acc)
        })
        .collect::<Result<_, Error>>()?;

    // v: a random square in Z_N^*.
    let n_nz = modulus.as_nz_ref();
    let params = crypto_bigint::modular::BoxedMontyParams::new_vartime(modulus.clone());
    let v = loop {
        let r = BoxedUint::random_mod_vartime(rng, n_nz);
        let r = BoxedMontyForm::new(r, &params);
        let v = r.square();
        if bool::from(v.invert_vartime().is_some()) {
            break v;
        }
    };
    let len = (bits as usize).div_ceil(8);
    let verification_keys: Vec<Vec<u8>> = shares
        .iter()
        .map(|s| fixed_be(&v.pow(s).retrieve(), len))
        .collect();
    let public = PublicKeySet::from_parts(
        &fixed_be(&n, len),
        e,
        &fixed_be(&v.retrieve(), len),
        &verification_keys,
        threshold,
        parties,
    )?;
    let key_shares = shares
        .iter()
        .zip(1..=parties)
        .map(|(s, i)| {
            let id = SignerId::new(i).ok_or(Error::Internal("signer id 0"))?;
            Ok(KeyShare::from_dealer(id, (**s).clone(), public.clone()))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((public, key_shares))
}

/// How [`split_with`] and [`deal_ordinary`] treat a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitOptions {
    /// Accept an ordinary-modulus key below [`ordinary::MIN_BITS`] (2048) bits. For tests; never in production.
    pub allow_small_modulus: bool,
}

impl SplitOptions {
    /// The options with `allow_small_modulus` set.
    pub fn allowing_small_modulus(mut self) -> Self {
        self.allow_small_modulus = true;
        self
    }
}

/// A prime factor of an RSA modulus (not necessarily safe). Secret: zeroized on drop, `Debug` prints `<redacted>`.
pub struct Prime(BoxedUint);

impl Prime {
    /// Checks that `bytes` (big-endian) is a prime of at least 64 bits.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let p = Zeroizing::new(BoxedUint::from_be_slice_vartime(bytes));
        let p = Self((*p).clone());
        if p.0.bit_width_vartime() < 64 || !is_prime(Flavor::Any, &p.0) {
            return Err(Error::KeyImport("not a prime"));
        }
        Ok(p)
    }

    /// Bit length.
    pub fn bits(&self) -> u32 {
        self.0.bit_width_vartime()
    }

    /// Whether `p = 2p' + 1` with `p'` prime.
    pub fn is_safe(&self) -> bool {
        is_prime(Flavor::Safe, &self.0)
    }
}

impl Drop for Prime {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Prime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prime(<redacted>)")
    }
}

/// Splits an existing RSA private key (PKCS#1 `RSAPrivateKey` or PKCS#8 `PrivateKeyInfo`, DER) into a `k`-of-`n`
/// threshold key with the same public key, with the default [`SplitOptions`] (see [`split_with`]).
pub fn split(
    private_key_der: &[u8],
    threshold: u16,
    parties: u16,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    split_with(private_key_der, threshold, parties, &SplitOptions::default(), rng)
}

/// Splits an existing RSA private key (PKCS#1 `RSAPrivateKey` or PKCS#8 `PrivateKeyInfo`, DER): a Shoup key when
/// both primes are safe, an ordinary-modulus key ([`super::ordinary`]) otherwise ([`split_primes`]). The modulus
/// in the file must be `p·q`.
pub fn split_with(
    private_key_der: &[u8],
    threshold: u16,
    parties: u16,
    options: &SplitOptions,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    check_counts(threshold, parties)?;
    let pkcs1_der: &[u8] = match pkcs8::PrivateKeyInfoRef::from_der(private_key_der) {
        Ok(info) => {
            if info.algorithm.oid != pkcs1::ALGORITHM_OID {
                return Err(Error::KeyImport("PKCS#8 key is not an RSA key"));
            }
            info.private_key.as_bytes()
        }
        Err(_) => private_key_der,
    };
    let key = pkcs1::RsaPrivateKey::<der::asn1::UintRef<'_>>::from_der(pkcs1_der)
        .map_err(|_| Error::KeyImport("not a PKCS#1 or PKCS#8 RSA private key"))?;
    if key.other_prime_infos.is_some() {
        return Err(Error::KeyImport("multi-prime keys are not supported"));
    }
    let e = public_exponent_u64(key.public_exponent.as_bytes())?;
    let p = Prime::from_be_bytes(key.prime1.as_bytes()).map_err(|_| Error::KeyImport("p is not a prime"))?;
    let q = Prime::from_be_bytes(key.prime2.as_bytes()).map_err(|_| Error::KeyImport("q is not a prime"))?;
    let (public, shares) = split_primes(&p, &q, e, threshold, parties, options, rng)?;
    if public.modulus_bytes() != key.modulus.as_bytes() {
        return Err(Error::KeyImport("modulus is not p·q"));
    }
    Ok((public, shares))
}

/// The public exponent from its big-endian bytes (at most 64 bits).
pub(crate) fn public_exponent_u64(bytes: &[u8]) -> Result<u64, Error> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    if bytes.len() > 8 {
        return Err(Error::KeyImport("public exponent larger than 64 bits"));
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Shares the key `(p, q, e)`: by [`deal_with_primes`] (Shoup, with proofs) when both primes are safe, by
/// [`deal_ordinary`] otherwise. The caller checks that `p·q` is the modulus it expects.
pub fn split_primes(
    p: &Prime,
    q: &Prime,
    e: u64,
    threshold: u16,
    parties: u16,
    options: &SplitOptions,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    if p.is_safe() && q.is_safe() {
        let p = SafePrime(p.0.clone());
        let q = SafePrime(q.0.clone());
        deal_with_primes(&p, &q, e, threshold, parties, rng)
    } else {
        deal_ordinary(p, q, e, threshold, parties, options, rng)
    }
}

/// Deals a `k`-of-`n` ordinary-modulus key ([`super::ordinary`]) from primes `p ≠ q` (any primes) and a prime public
/// exponent `e > n`: `d = e⁻¹ mod φ(N)`, `s_i = f(i)` for `f(z) = Δ·d + Σ a_l z^l` over the integers with `a_l`
/// uniform in `[0, 2^A)`, and the share digests `h_i`. `n <= 16`; `|N| >= 2048` unless `options` allow less.
pub fn deal_ordinary(
    p: &Prime,
    q: &Prime,
    e: u64,
    threshold: u16,
    parties: u16,
    options: &SplitOptions,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(PublicKeySet, Vec<KeyShare>), Error> {
    check_counts(threshold, parties)?;
    if parties > ordinary::MAX_PARTIES {
        return Err(Error::InvalidParameters(
            "an ordinary-modulus key supports at most 16 parties",
        ));
    }
    check_public_exponent(e, parties)?;
    if p.0 == q.0 {
        return Err(Error::InvalidParameters("p and q must differ"));
    }
    let n = Zeroizing::new(mul_wide(&p.0, &q.0));
    let bits = n.bit_width_vartime();
    if (bits as usize) < MIN_MODULUS_BITS || bits as usize > MAX_MODULUS_BITS {
        return Err(Error::InvalidParameters("modulus size out of range"));
    }
    if (bits as usize) < ordinary::MIN_BITS && !options.allow_small_modulus {
        return Err(Error::ModulusTooSmall {
            bits: bits as usize,
            min: ordinary::MIN_BITS,
        });
    }
    let n = Zeroizing::new(resize(&n, bits)?);
    let precision = n.bits_precision();
    let len = (bits as usize).div_ceil(8);

    let d = private_exponent(p, q, e, precision)?;

    // f(z) = Δ·d + a_1 z + … + a_{k−1} z^{k−1} over Z, evaluated at a precision that holds every share.
    let mask_bits = ordinary::mask_bits(bits, threshold, parties);
    let share_bits = ordinary::share_bits(bits, threshold, parties);
    let work = share_bits + 64;
    let delta = factorial(parties);
    let constant = resize_secret(&Zeroizing::new(mul_wide(&d, &delta)), work)?;
    let mut coefficients: Vec<Zeroizing<BoxedUint>> = Vec::with_capacity(usize::from(threshold));
    coefficients.push(constant);
    for _ in 1..threshold {
        coefficients.push(Zeroizing::new(BoxedUint::random_bits_with_precision(
            rng, mask_bits, work,
        )));
    }
    let shares: Vec<Zeroizing<BoxedUint>> = (1..=parties)
        .map(|i| {
            let i = resize(&BoxedUint::from(u64::from(i)), work)?;
            let mut acc = Zeroizing::new(BoxedUint::zero_with_precision(work));
            for a in coefficients.iter().rev() {
                let product = Zeroizing::new(acc.wrapping_mul(&i));
                *acc = product.wrapping_add(&**a);
            }
            if !bool::from(Zeroizing::new(acc.shr(share_bits)).is_zero()) {
                return Err(Error::Internal("share exceeds its bound"));
            }
            resize_secret(&acc, share_bits)
        })
        .collect::<Result<_, Error>>()?;
    drop(coefficients);

    let modulus = fixed_be(&n, len);
    let placeholder = PublicKeySet::ordinary(
        &modulus,
        e,
        share_bits,
        &vec![[0u8; 32]; usize::from(parties)],
        threshold,
        parties,
    )?;
    let ids = (1..=parties)
        .map(|i| SignerId::new(i).ok_or(Error::Internal("signer id 0")))
        .collect::<Result<Vec<_>, _>>()?;
    let digests: Vec<[u8; 32]> = ids
        .iter()
        .zip(&shares)
        .map(|(id, s)| placeholder.compute_share_digest(*id, s))
        .collect();
    let public = PublicKeySet::ordinary(&modulus, e, share_bits, &digests, threshold, parties)?;
    let key_shares = ids
        .iter()
        .zip(&shares)
        .map(|(id, s)| KeyShare::from_dealer(*id, (**s).clone(), public.clone()))
        .collect();
    Ok((public, key_shares))
}

/// `d = e⁻¹ mod φ(N)` for a prime `e`, in constant time: `d = (1 + φ·t)/e` with `t = (−φ)⁻¹ mod e`, and
/// `t = (e − φ mod e)^{e−2} mod e` (Fermat, `e` prime).
fn private_exponent(p: &Prime, q: &Prime, e: u64, precision: u32) -> Result<Zeroizing<BoxedUint>, Error> {
    let one = BoxedUint::one();
    let p1 = Zeroizing::new(p.0.wrapping_sub(&one));
    let q1 = Zeroizing::new(q.0.wrapping_sub(&one));
    let phi = resize_secret(&Zeroizing::new(mul_wide(&p1, &q1)), precision)?;
    let e_limb = NonZero::new(Limb::from(e))
        .into_option()
        .ok_or(Error::InvalidParameters("public exponent is zero"))?;
    let phi_mod_e = Zeroizing::new(phi.rem_limb(e_limb).0);
    // −φ mod e, then t = (−φ)^{e−2} mod e, constant time (crypto-bigint Montgomery arithmetic modulo the public e).
    let e_odd = Odd::new(BoxedUint::from(e))
        .into_option()
        .ok_or(Error::InvalidParameters("public exponent must be odd"))?;
    let params = crypto_bigint::modular::BoxedMontyParams::new_vartime(e_odd);
    let minus_phi = Zeroizing::new(BoxedUint::from(e - *phi_mod_e));
    let t = BoxedMontyForm::new((*minus_phi).clone(), &params)
        .pow(&BoxedUint::from(e - 2))
        .retrieve();
    let t = Zeroizing::new(t);
    // t·(−φ) ≡ 1 (mod e) unless e divides φ (then t = 0 and the division below is not exact).
    let numerator = Zeroizing::new(Zeroizing::new(mul_wide(&phi, &t)).wrapping_add(&one));
    let e_nz = NonZero::new(resize(&BoxedUint::from(e), numerator.bits_precision())?)
        .into_option()
        .ok_or(Error::InvalidParameters("public exponent is zero"))?;
    let d = Zeroizing::new(numerator.div_exact(&e_nz).into_option().ok_or(Error::KeyImport(
        "gcd(e, φ(N)) != 1: e is not a valid public exponent for p, q",
    ))?);
    resize_secret(&d, precision)
}

fn check_counts(threshold: u16, parties: u16) -> Result<(), Error> {
    if threshold == 0 || threshold > parties {
        return Err(Error::InvalidParameters("threshold must satisfy 1 <= k <= n"));
    }
    if parties > MAX_PARTIES {
        return Err(Error::InvalidParameters("too many parties"));
    }
    Ok(())
}

/// Uniform in `[0, m)` up to a `2^{-128}` bias: `|m| + 128` random bits reduced mod `m` in constant time.
fn random_below(m: &NonZero<BoxedUint>, rng: &mut (impl CryptoRng + ?Sized)) -> BoxedUint {
    let bits = m.bits_precision() + 128;
    let wide = Zeroizing::new(BoxedUint::random_bits_with_precision(rng, bits, bits));
    wide.rem(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_prime_refuses_non_safe_primes() {
        // 2^61 - 1 is prime, (p - 1)/2 is not.
        assert!(SafePrime::from_be_bytes(&((1u64 << 61) - 1).to_be_bytes()).is_err());
        assert!(SafePrime::from_be_bytes(&[0xff; 16]).is_err());
    }

    #[test]
    fn safe_prime_debug_is_redacted() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let p = generate_safe_prime(64, &mut rng).unwrap();
        assert_eq!(format!("{p:?}"), "SafePrime(<redacted>)");
        assert_eq!(p.bits(), 64);
    }

    #[test]
    fn generated_safe_primes_are_safe_and_have_their_two_top_bits_set() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for bits in [128u32, 256, 512] {
            let p = generate_safe_prime(bits, &mut rng).unwrap();
            let big = num_bigint::BigUint::from_bytes_be(&p.0.to_be_bytes());
            assert_eq!(big.bits(), u64::from(bits));
            assert!(big.bit(u64::from(bits) - 2), "second-highest bit set");
            let half = (&big - 1u32) >> 1;
            assert!(miller_rabin(&big) && miller_rabin(&half), "p and (p-1)/2 prime");
        }
    }

    #[test]
    fn product_of_two_generated_primes_has_exactly_twice_the_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..4 {
            let p = generate_safe_prime(160, &mut rng).unwrap();
            let q = generate_safe_prime(160, &mut rng).unwrap();
            let (pk, _) = deal_with_primes(&p, &q, 65537, 2, 3, &mut rng).unwrap();
            assert_eq!(pk.modulus_bits(), 320);
        }
    }

    /// Miller–Rabin with 32 fixed bases, on `num-bigint` (independent of `crypto-primes`).
    fn miller_rabin(n: &num_bigint::BigUint) -> bool {
        let one = num_bigint::BigUint::from(1u32);
        let n1 = n - &one;
        let s = n1.trailing_zeros().unwrap_or(0);
        let d = &n1 >> s;
        'bases: for a in 2u32..34 {
            let mut x = num_bigint::BigUint::from(a).modpow(&d, n);
            if x == one || x == n1 {
                continue;
            }
            for _ in 1..s {
                x = x.modpow(&num_bigint::BigUint::from(2u32), n);
                if x == n1 {
                    continue 'bases;
                }
            }
            return false;
        }
        true
    }

    use rand::SeedableRng;
}
