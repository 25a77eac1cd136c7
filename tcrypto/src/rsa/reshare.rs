//! Redistribution (reshare, and its special case refresh) of a Shoup threshold RSA key to a new set of `n'`
//! holders with a new threshold `k'`, without anyone learning `d`, `φ(N)` or `m`: the same `N`, `e` and `v`, new
//! verification keys `v'_j`, and any `k'` new shares sign exactly as before ([`KeyShare::sign_share`],
//! [`crate::rsa::combine()`]).
//!
//! # The construction
//!
//! Shoup's shares `s_i` lie on a polynomial over `Z_m` that nobody can reduce (nobody knows `m`), so a
//! redistribution must work over the integers. The three papers the issue names all do so: Frankel, Gemmell,
//! MacKenzie and Yung ("Proactive RSA", CRYPTO 1997) re-share integer shares and verify them by exponentiation in
//! the RSA group; Rabin ("A simplified approach to threshold and proactive RSA", CRYPTO 1998) masks integer shares
//! with random integers from a range `2^κ` times larger than what they hide, which makes the masking statistically
//! hiding, and verifies with witnesses `g^{d_i}` of a public element; Almansa, Damgård and Nielsen ("Simplified
//! threshold RSA with adaptive and proactive security", EUROCRYPT 2006) use Shamir sharing over the integers with
//! the factor `Δ = n!` in the secret so that the shares reveal nothing modulo small numbers, and reconstruct a
//! known multiple of the secret. The construction below combines these three ingredients (integer Shamir
//! resharing, `2^κ`-wide masks, `Δ`-scaled constant terms) with Shoup's verification keys, in the redistribution
//! pattern of [`crate::reshare`]. The papers' texts could not be consulted while this was written: what is said of
//! them here is from memory of their constructions, without section names, and the argument below is our own.
//!
//! Write `G(0)` for the value a sharing interpolates to over the integers (with Shoup's integral Lagrange
//! coefficients `λ^S_i = Δ·Π_{l∈S∖i} l/(l−i)`, `Σ_{i∈S} λ^S_i·s_i = Δ·G(0)` for a sharing that is an integer
//! polynomial; for the dealt key, `G(0) = d` modulo `m`). The public key set carries a **scale** `c` with
//! `G(0) ≡ c·d (mod m)` (`c = 1` for a dealt key) and a bound `2^b` on every share (`b = |N|` for a dealt key).
//!
//! 1. Every dealer `i` of the dealer set `D` (at least `k` old holders) draws
//!    `g_i(z) = Δ'·s_i + Σ_{l=1}^{k'-1} a_il·z^l` with `a_il` uniform in `[0, 2^A)`, **its raw share** times
//!    `Δ' = n'!`. It publishes `C_il = v^{a_il}` ([`Dealing`]) and sends every new holder `j` the integer `g_i(j)`
//!    ([`SubShare`]); the commitment to the constant term is public already: `C_i0 = v_i^{Δ'}`.
//! 2. Every new holder checks `0 <= g_i(j) < 2^B` and `v^{g_i(j)} == v_i^{Δ'}·Π_l C_il^{j^l} (mod N)`, and sends a
//!    [`Verdict`] (echo of every dealing, complaints), exactly as in the P-256/Ed25519 reshare
//!    ([`crate::reshare`]); an accused dealer reveals the disputed sub-share ([`Answer`], the complaint round of
//!    Gennaro–Jarecki–Krawczyk–Rabin); every new holder judges the dealers the same way and confirms the
//!    transcript ([`Confirmation`]).
//! 3. With the qualified set `Q` (`|Q| >= k`) and `λ_i = λ^Q_i` over the old `Δ`, new holder `j` takes
//!    `s'_j = Σ_{i∈Q} λ_i·g_i(j) + M·j` with the public shift `M = 2^S` that makes every share positive, and
//!    everybody computes the new verification keys `v'_j = Π_{i∈Q} (v_i^{Δ'}·Π_l C_il^{j^l})^{λ_i}·v^{M·j}`.
//!
//! Dealing the raw share and weighting after the complaints makes excluding a dealer free (any `Q` with
//! `|Q| >= k` interpolates), as in [`crate::reshare`].
//!
//! **Correctness.** The new sharing is the integer polynomial `G'(z) = Σ_{i∈Q} λ_i·g_i(z) + M·z` of degree
//! `k'-1` (`k' >= 2`, so the shift `M·z` keeps the degree), with
//! `G'(0) = Δ'·Σ_{i∈Q} λ_i·s_i ≡ Δ'·Δ·c·d (mod m)`. So the new scale is **`c' = Δ·Δ'·c`** and, for any `k'` new
//! holders `S'`, `Σ_{j∈S'} λ'_j·s'_j = Δ'·G'(0)` exactly. Shoup's combiner then gets `w = x^{4Δ'²·c'·d}`, so
//! `w^e = x^{e'}` with **`e' = 4Δ'²·c'`** instead of `4Δ'²`; since `e` is a prime above every `n` the key was ever
//! shared among, `gcd(e, e') = 1` and `y = w^a·x^b` with `a·e' + b·e = 1` is the signature. The share proofs are
//! unchanged (`v'_j = v^{s'_j}`); only the randomness of a proof is sized to the share bound.
//!
//! **What changes in the public key set**: `k`, `n`, the verification keys, the scale `c` and the share bound `b`
//! (encoded under tag [`tag::PUBLIC_KEY_SET_RESHARED`]); `N`, `e` and `v` do not, so the RSA public key and
//! every signature stay the same. The key id (a hash of the whole set) changes.
//!
//! # Parameters and share growth
//!
//! With `κ >= 128` the statistical hiding parameter, `b` the old share bound, `β(x)` the bit length of `x`,
//! `Δ = n!`, `Δ' = n'!`:
//!
//! - mask bits `A = κ + b + β(Δ') + (k'−1)·β(n'+1) + β(k'−1)`;
//! - sub-share bound `B = A + k'·β(n') + 1`;
//! - shift `S = β(|D|) + β(Δ) + (|D|−1)·β(n) + B` (so that `Σ_{i∈Q} |λ_i|·g_i(j) < 2^S`);
//! - new share bound `b' = S + β(n'+1)`.
//!
//! So every redistribution adds exactly
//! `b' − b = κ + β(Δ') + (k'−1)·β(n'+1) + β(k'−1) + k'·β(n') + 1 + β(|D|) + β(Δ) + (|D|−1)·β(n) + β(n'+1)` bits to
//! the share bound ([`Parameters::share_growth`]): linear in the number of redistributions (for a 2-of-3
//! refresh by two dealers with `κ = 128`, 150 bits), and the scale `c` grows by `β(Δ·Δ')` bits. Signing time grows
//! with the share length; a key refreshed very often should be re-dealt (a new key) once its shares reach
//! [`super::MAX_SHARE_BITS`], which redistribution refuses to exceed.
//!
//! # Security argument
//!
//! *Secrecy of the sub-shares (statistical).* Fix the `k'−1` or fewer corrupt new holders `T`. Two constant terms
//! `Δ'·s` and `Δ'·s̃` (`s, s̃ < 2^b`) are mapped onto each other, keeping every `g(t)`, `t ∈ T`, fixed, by adding the
//! polynomial `q(z) = (s̃ − s)·(Δ'/Π_{t∈T} t)·Π_{t∈T}(t − z)`, which has integer coefficients because the distinct
//! `t <= n'` divide `Δ' = n'!` (the reason for the factor `Δ'`; without it `g(t) ≡ s (mod t)` would leak `s mod
//! t`, the pitfall of integer Shamir sharing that the `Δ` factor of Almansa–Damgård–Nielsen avoids).
//! Its non-constant coefficients are below `2^b·Δ'·(n'+1)^{k'−1}` in absolute value, so shifting the uniform masks
//! by them changes their joint distribution by at most `(k'−1)·2^b·Δ'·(n'+1)^{k'−1}/2^A <= 2^{−κ}`: the sub-shares
//! the adversary sees are statistically independent (distance `2^{−κ}` per honest dealer) of the honest dealer's
//! share.
//!
//! *Commitments (computational, as in Shoup).* `C_il = v^{a_il}` and `v'_j` live in the group generated by `v`,
//! like Shoup's verification keys. Given the corrupt holders' sub-shares and `v_i`, the values `C_il^{Δ'}` follow
//! by interpolation in the exponent (the factor `Δ'` clears the denominators), which is how Shoup's proof
//! simulates the `v_i` of corrupt-free parties; we argue informally that the commitments reveal nothing usable
//! beyond the public key set, as Shoup's verification keys do, but a simulation proof of this exact protocol has
//! not been written.
//!
//! *Binding and robustness.* A sub-share that passes `v^{g_i(j)} == v_i^{Δ'}·Π_l C_il^{j^l}` is `g_i(j)` modulo
//! `m = ord(v)`, which is all the exponentiation uses; a dealer that could open a commitment in two ways would
//! learn a multiple of `m` and factor `N`. A dealer's constant term is bound to its old verification key `v_i`, so
//! a dealer cannot change the secret. With at most `k−1` corrupt old holders and `|Q| >= k`, `Q` holds an honest
//! dealer, whose uniform masks make the new sharing independent of the old one: old and new shares do not
//! combine (`k'` shares of different sharings interpolate to nothing the combiner accepts).
//!
//! *Agreement* is that of [`crate::reshare`] (echoes, complaint round, confirmations).
//!
//! # Steps
//!
//! | step | who | function | sends |
//! |---|---|---|---|
//! | 1 | each dealer `i ∈ D` | [`deal`] | [`Dealing`] to every new holder, [`SubShare`] `g_i(j)` to each new holder `j` |
//! | 2 | each new holder | [`receive`] | [`Verdict`] to every other new holder and every dealer |
//! | 3 | each accused dealer | [`DealerState::answer`] | [`Answer`] to every new holder (skippable when nobody complained) |
//! | 4 | each new holder | [`ReceiverState::judge`] | [`Confirmation`] to every other new holder |
//! | 5 | each new holder | [`JudgedState::confirm`] | nothing: the new [`KeyShare`] ([`Reshared`]) |

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, RandomBits};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::keys::check_public_exponent;
use super::math::{factorial, fixed_be, from_be, lagrange_at_zero, mul_wide, pow_vartime, resize};
use super::{KeyShare, MAX_PARTIES, MAX_SHARE_BITS, PublicKeySet, tag};
use crate::codec::{DecodeError, MAX_FIELD_LEN, Reader, Writer};
use crate::id::{SessionId, SignerId};
use crate::reshare::agree::{self, Echo, Hashes, View};
use crate::reshare::{Culprit, Error, Fault, Party};

/// The smallest statistical hiding parameter accepted: sub-shares hide a dealer's share to within `2^{-κ}`.
pub const MIN_KAPPA: u32 = 128;

/// Largest statistical hiding parameter accepted.
const MAX_KAPPA: u32 = 512;

/// The public parameters every dealer and new holder agrees on.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    session: SessionId,
    old: PublicKeySet,
    dealers: BTreeSet<SignerId>,
    threshold: u16,
    receivers: BTreeSet<SignerId>,
    kappa: u32,
    bounds: Bounds,
}

/// The public bounds of a run (in bits), derived from the parameters (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
struct Bounds {
    /// `Δ' = n'!`.
    delta_new: BoxedUint,
    /// `A`: masks are below `2^A`.
    mask_bits: u32,
    /// `B`: sub-shares are below `2^B`.
    sub_bits: u32,
    /// `S`: the shift is `M = 2^S`.
    shift_bits: u32,
    /// `b'`: new shares are below `2^{b'}`.
    share_bits: u32,
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl Parameters {
    /// Parameters to redistribute the key of `old` from the `dealers` (at least `k` old holders) to new holders
    /// `1..=parties` with threshold `threshold`, hiding parameter `kappa` ([`MIN_KAPPA`] or more).
    ///
    /// Refuses a dealer outside `1..=n`, fewer than `k` dealers, `k' < 2` (a 1-of-`n'` RSA sharing would give every
    /// holder the whole key, and the positivity shift needs degree 1), `k' > n'`, `n' > 255`, a public exponent
    /// not above `n'`, and a share bound above [`MAX_SHARE_BITS`].
    pub fn new(
        session: SessionId,
        old: PublicKeySet,
        dealers: impl IntoIterator<Item = SignerId>,
        threshold: u16,
        parties: u16,
        kappa: u32,
    ) -> Result<Self, Error> {
        if old.is_ordinary() {
            return Err(Error::InvalidParameters(
                "redistribution of an ordinary-modulus key is not supported",
            ));
        }
        let mut set = BTreeSet::new();
        for i in dealers {
            if !set.insert(i) {
                return Err(Error::InvalidParameters("duplicate dealer id"));
            }
        }
        if set.iter().any(|i| !old.has_signer(*i)) {
            return Err(Error::InvalidParameters(
                "a dealer is not a holder of the old key",
            ));
        }
        if set.len() < usize::from(old.threshold()) {
            return Err(Error::InvalidParameters("fewer dealers than the old threshold"));
        }
        if threshold < 2 || threshold > parties || parties > MAX_PARTIES {
            return Err(Error::InvalidParameters("need 2 <= k' <= n' <= 255"));
        }
        if !(MIN_KAPPA..=MAX_KAPPA).contains(&kappa) {
            return Err(Error::InvalidParameters("hiding parameter out of range"));
        }
        check_public_exponent(old.public_exponent(), parties)
            .map_err(|_| Error::InvalidParameters("the public exponent must be a prime above n'"))?;
        let bounds = Bounds::new(&old, set.len(), threshold, parties, kappa)?;
        Ok(Self {
            session,
            old,
            dealers: set,
            threshold,
            receivers: (1..=parties).filter_map(SignerId::new).collect(),
            kappa,
            bounds,
        })
    }

    /// A refresh: every old holder deals to the same ids with the same threshold, `κ = 128`.
    pub fn refresh(session: SessionId, old: PublicKeySet) -> Result<Self, Error> {
        let ids: Vec<SignerId> = (1..=old.parties()).filter_map(SignerId::new).collect();
        let (k, n) = (old.threshold(), old.parties());
        Self::new(session, old, ids, k, n, MIN_KAPPA)
    }

    /// The old public key set.
    pub fn old(&self) -> &PublicKeySet {
        &self.old
    }

    /// `D`: the dealers.
    pub fn dealers(&self) -> &BTreeSet<SignerId> {
        &self.dealers
    }

    /// `k'`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The new holders, `1..=n'`.
    pub fn receivers(&self) -> &BTreeSet<SignerId> {
        &self.receivers
    }

    /// The new share bound `b'` in bits.
    pub fn new_share_bits(&self) -> u32 {
        self.bounds.share_bits
    }

    /// `b' − b`: how many bits this redistribution adds to the share bound (the formula of the module
    /// documentation).
    pub fn share_growth(&self) -> u32 {
        self.bounds.share_bits - self.old.share_bits()
    }

    /// The hash input `("tcrypto/rsa/reshare/v1", label, session, old key set, D, k', n', κ)`.
    fn transcript(&self, label: &'static str) -> Writer {
        let mut w = Writer::bare();
        w.bytes(b"tcrypto/rsa/reshare/v1")
            .bytes(label.as_bytes())
            .raw(self.session.as_bytes())
            .bytes(&self.old.encode());
        w.u32(self.dealers.len() as u32);
        for i in &self.dealers {
            i.encode(&mut w);
        }
        w.u16(self.threshold)
            .u16(self.receivers.len() as u16)
            .u32(self.kappa);
        w
    }

    fn roles(&self, me: SignerId) -> agree::Roles<'_> {
        agree::Roles {
            dealers: &self.dealers,
            receivers: &self.receivers,
            me,
        }
    }

    fn precision(&self) -> u32 {
        self.old.modulus_bits() as u32
    }

    fn monty(&self, x: BoxedUint) -> BoxedMontyForm {
        BoxedMontyForm::new(x, self.old.params())
    }

    /// `v_i^{Δ'}·Π_l C_il^{j^l}`: what `v^{g_i(j)}` must be.
    fn expected(
        &self,
        dealer: SignerId,
        commitments: &[BoxedMontyForm],
        j: SignerId,
    ) -> Option<BoxedMontyForm> {
        let v_i = self.monty(self.old.verification_key(dealer)?.clone());
        let mut acc = pow_vartime(&v_i, &self.bounds.delta_new);
        let mut power = BoxedUint::one();
        for c in commitments {
            power = mul_wide(&power, &BoxedUint::from(u64::from(j.get())));
            acc = acc.mul(&pow_vartime(c, &power));
        }
        Some(acc)
    }

    /// Parses a sub-share (`B` bits, big-endian in `ceil(B/8)` bytes).
    fn parse_sub_share(&self, bytes: &[u8]) -> Option<Zeroizing<BoxedUint>> {
        if bytes.len() != (self.bounds.sub_bits as usize).div_ceil(8) {
            return None;
        }
        from_be(bytes, self.bounds.sub_bits).map(Zeroizing::new)
    }

    /// Whether `g` is dealer `i`'s sub-share for `j` under its commitments.
    fn sub_share_ok(
        &self,
        dealer: SignerId,
        commitments: &[BoxedMontyForm],
        j: SignerId,
        g: &BoxedUint,
    ) -> bool {
        let v = self.monty(self.old.v().clone());
        self.expected(dealer, commitments, j)
            .is_some_and(|want| v.pow(g) == want)
    }
}

impl Bounds {
    fn new(old: &PublicKeySet, dealers: usize, k_new: u16, n_new: u16, kappa: u32) -> Result<Self, Error> {
        let delta_new = factorial(n_new);
        let b = old.share_bits();
        let n_old = u64::from(old.parties());
        let beta_delta_old = old.delta().bit_width_vartime();
        let mask_bits = kappa
            + b
            + delta_new.bit_width_vartime()
            + u32::from(k_new - 1) * bit_len(u64::from(n_new) + 1)
            + bit_len(u64::from(k_new - 1));
        let sub_bits = mask_bits + u32::from(k_new) * bit_len(u64::from(n_new)) + 1;
        let shift_bits =
            bit_len(dealers as u64) + beta_delta_old + (dealers as u32 - 1) * bit_len(n_old) + sub_bits;
        let share_bits = shift_bits + bit_len(u64::from(n_new) + 1);
        if share_bits > MAX_SHARE_BITS {
            return Err(Error::InvalidParameters(
                "the new shares would exceed MAX_SHARE_BITS: deal a new key",
            ));
        }
        Ok(Self {
            delta_new,
            mask_bits,
            sub_bits,
            shift_bits,
            share_bits,
        })
    }
}

// ----- Messages -----

/// The public dealing of dealer `i`: `C_il = v^{a_il}` for `l = 1..k'-1`, big-endian in `|N|/8` bytes each.
#[derive(Clone, PartialEq, Eq)]
pub struct Dealing {
    /// `C_i1, .., C_i(k'-1)`.
    pub commitments: Vec<Vec<u8>>,
}

impl fmt::Debug for Dealing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rsa::reshare::Dealing")
            .field("commitments", &self.commitments.len())
            .finish()
    }
}

impl Dealing {
    /// Tag 0x15, count, length-prefixed group elements.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESHARE_DEALING);
        w.u32(self.commitments.len() as u32);
        for c in &self.commitments {
            w.bytes(c);
        }
        w.finish()
    }

    /// Strict decoding: at least one element, none empty or with a leading zero byte beyond its fixed width
    /// (the width itself is checked against `N` by [`receive`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESHARE_DEALING)?;
        let n = r.count(5)?;
        if n == 0 {
            return Err(DecodeError::Invalid("no commitments"));
        }
        let mut commitments = Vec::with_capacity(n);
        for _ in 0..n {
            let c = r.bytes()?;
            if c.is_empty() || c.len() > super::MAX_MODULUS_BITS / 8 {
                return Err(DecodeError::Invalid("group element of impossible length"));
            }
            commitments.push(c.to_vec());
        }
        r.finish()?;
        Ok(Self { commitments })
    }
}

/// The sub-share `g_i(j)` for new holder `j` only (confidential channel), big-endian in `ceil(B/8)` bytes.
/// Zeroized on drop, never printed.
#[derive(Clone)]
pub struct SubShare {
    /// `g_i(j)`.
    pub value: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SubShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rsa::reshare::SubShare(<redacted>)")
    }
}

impl SubShare {
    /// Tag 0x16, the length-prefixed integer; zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(tag::RESHARE_SUB_SHARE, 2 + 4 + self.value.len());
        w.bytes(&self.value);
        Zeroizing::new(w.finish())
    }

    /// Strict decoding (the length is checked against the run by [`receive`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESHARE_SUB_SHARE)?;
        let value = Zeroizing::new(r.bytes()?.to_vec());
        r.finish()?;
        if value.is_empty() {
            return Err(DecodeError::Invalid("empty sub-share"));
        }
        Ok(Self { value })
    }
}

/// The verdict of a new holder: echo of every dealing and complaints (as in [`crate::reshare::round2::Verdict`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// For every dealer: `H(transcript, i, dealing)` as received, or `None`.
    pub echo: Echo,
    /// Dealers whose sub-share is missing or fails the check.
    pub complaints: BTreeSet<SignerId>,
}

impl Verdict {
    /// Tag 0x17, then the fields of [`crate::reshare::round2::Verdict`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESHARE_VERDICT);
        agree::encode_verdict(&mut w, &self.echo, &self.complaints);
        w.finish()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESHARE_VERDICT)?;
        let (echo, complaints) = agree::decode_verdict(&mut r)?;
        r.finish()?;
        Ok(Self { echo, complaints })
    }

    fn view(&self) -> View<'_> {
        View {
            echo: &self.echo,
            complaints: &self.complaints,
        }
    }
}

/// The answer of an accused dealer: the disputed sub-shares, keyed by accuser (public from now on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `g_i(j)` for every accuser `j`, big-endian.
    pub answers: BTreeMap<SignerId, Vec<u8>>,
}

impl Answer {
    /// Tag 0x18, count, strictly increasing `(accuser id, length-prefixed integer)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESHARE_ANSWER);
        w.u32(self.answers.len() as u32);
        for (j, g) in &self.answers {
            j.encode(&mut w);
            w.bytes(g);
        }
        w.finish()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESHARE_ANSWER)?;
        let answers = SignerId::decode_map(&mut r, 4, |r| {
            let b = r.bytes()?;
            if b.is_empty() || b.len() > MAX_FIELD_LEN {
                return Err(DecodeError::Invalid("empty sub-share"));
            }
            Ok(b.to_vec())
        })?;
        r.finish()?;
        Ok(Self { answers })
    }
}

/// The confirmation of a new holder (as in [`crate::reshare::round4::Confirmation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// `H(transcript, m, V_m)` for every other new holder's verdict as received.
    pub verdicts: Hashes,
    /// `H(transcript, i, A_i)` for every dealer's answer as received (absent and empty alike).
    pub answers: Hashes,
}

impl Confirmation {
    /// Tag 0x19, then the fields of [`crate::reshare::round4::Confirmation`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::RESHARE_CONFIRMATION);
        agree::encode_confirmation(&mut w, &self.verdicts, &self.answers);
        w.finish()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tag::RESHARE_CONFIRMATION)?;
        let (verdicts, answers) = agree::decode_confirmation(&mut r)?;
        r.finish()?;
        Ok(Self { verdicts, answers })
    }
}

// ----- Step 1: deal -----

/// What a dealer keeps until step 3: the sub-shares it sent. Zeroized on drop.
pub struct DealerState {
    params: Parameters,
    me: SignerId,
    sent: BTreeMap<SignerId, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for DealerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rsa::reshare::DealerState")
            .field("me", &self.me)
            .field("sent", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Step 1 for the old holder of `share`: the state for step 3, the dealing for every new holder and each new
/// holder's sub-share.
#[allow(clippy::type_complexity)]
pub fn deal(
    params: Parameters,
    share: &KeyShare,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(DealerState, Dealing, BTreeMap<SignerId, SubShare>), Error> {
    let me = share.id();
    if !params.dealers.contains(&me) {
        return Err(Error::InvalidParameters("own id is not a dealer"));
    }
    if share.public_key_set() != &params.old {
        return Err(Error::InvalidParameters("the share belongs to another key set"));
    }
    let b = &params.bounds;
    let precision = b.sub_bits + 64;
    let internal = |_| Error::InvalidResult("sub-share arithmetic overflow");
    // Δ'·s_i and the masks a_i1..a_i(k'-1), at a fixed precision.
    let constant =
        Zeroizing::new(resize(&mul_wide(share.secret(), &b.delta_new), precision).map_err(internal)?);
    let masks: Vec<Zeroizing<BoxedUint>> = (1..params.threshold)
        .map(|_| Zeroizing::new(BoxedUint::random_bits_with_precision(rng, b.mask_bits, precision)))
        .collect();
    let v = params.monty(params.old.v().clone());
    let len = params.old.signature_len();
    let commitments = masks
        .iter()
        .map(|a| fixed_be(&v.pow(a).retrieve(), len))
        .collect();
    let sub_len = (b.sub_bits as usize).div_ceil(8);
    let mut sent = BTreeMap::new();
    let mut out = BTreeMap::new();
    for &j in &params.receivers {
        // Horner: ((a_{k'-1}·j + a_{k'-2})·j + .. + a_1)·j + Δ'·s_i.
        let jj = BoxedUint::from(u64::from(j.get()));
        let mut acc = Zeroizing::new(BoxedUint::zero_with_precision(precision));
        for a in masks.iter().rev() {
            *acc = resize(&mul_wide(&acc.wrapping_add(&**a), &jj), precision).map_err(internal)?;
        }
        *acc = acc.wrapping_add(&*constant);
        let bytes = Zeroizing::new(fixed_be(&acc, sub_len));
        out.insert(j, SubShare { value: bytes.clone() });
        sent.insert(j, bytes);
    }
    Ok((DealerState { params, me, sent }, Dealing { commitments }, out))
}

impl DealerState {
    /// Step 3: answers every complaint about our dealing (in the verdicts that reached us, keyed by new holder)
    /// by revealing the disputed sub-share. Empty when nobody complained.
    pub fn answer(self, verdicts: &BTreeMap<SignerId, Verdict>) -> Result<Answer, Error> {
        if let Some(j) = verdicts.keys().find(|j| !self.params.receivers.contains(j)) {
            return Err(Error::UnexpectedSender {
                culprit: Party::New(*j),
            });
        }
        let answers = verdicts
            .iter()
            .filter(|(_, v)| v.complaints.contains(&self.me))
            .filter_map(|(j, _)| self.sent.get(j).map(|s| (*j, s.to_vec())))
            .collect();
        Ok(Answer { answers })
    }
}

// ----- Step 2: receive -----

/// What a new holder keeps until step 4.
pub struct ReceiverState {
    params: Parameters,
    me: SignerId,
    /// The commitments of every well-formed dealing received.
    dealings: BTreeMap<SignerId, Vec<BoxedMontyForm>>,
    /// Dealers whose dealing was malformed (public fault).
    malformed: BTreeSet<SignerId>,
    /// `g_i(j)` of every dealer whose sub-share passed the check.
    sub_shares: BTreeMap<SignerId, Zeroizing<BoxedUint>>,
    verdict: Verdict,
}

impl fmt::Debug for ReceiverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rsa::reshare::ReceiverState")
            .field("me", &self.me)
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

/// Step 2 for new holder `me`: checks the dealings and sub-shares that arrived (keyed by dealer; a silent dealer
/// is absent) and returns the state for step 4 and our verdict.
pub fn receive(
    params: Parameters,
    me: SignerId,
    dealings: &BTreeMap<SignerId, Dealing>,
    sub_shares: &BTreeMap<SignerId, SubShare>,
) -> Result<(ReceiverState, Verdict), Error> {
    if !params.receivers.contains(&me) {
        return Err(Error::InvalidParameters("own id is not a new holder"));
    }
    if let Some(i) = dealings
        .keys()
        .chain(sub_shares.keys())
        .find(|i| !params.dealers.contains(i))
    {
        return Err(Error::UnexpectedSender {
            culprit: Party::Old(*i),
        });
    }
    let len = params.old.signature_len();
    let mut echo = BTreeMap::new();
    let mut complaints = BTreeSet::new();
    let mut parsed = BTreeMap::new();
    let mut malformed = BTreeSet::new();
    let mut valid = BTreeMap::new();
    for &i in &params.dealers {
        let Some(d) = dealings.get(&i) else {
            echo.insert(i, None);
            continue;
        };
        echo.insert(i, Some(dealing_hash(&params, i, d)));
        let commitments: Option<Vec<BoxedMontyForm>> = (d.commitments.len() + 1
            == usize::from(params.threshold))
        .then(|| {
            d.commitments
                .iter()
                .map(|c| {
                    let x = (c.len() == len)
                        .then(|| from_be(c, params.precision()))
                        .flatten()?;
                    let ok = !bool::from(x.is_zero())
                        && x.cmp_vartime(params.old.modulus().as_ref()) == core::cmp::Ordering::Less;
                    ok.then(|| params.monty(x))
                })
                .collect()
        })
        .flatten();
        let Some(commitments) = commitments else {
            malformed.insert(i);
            continue;
        };
        let g = sub_shares.get(&i).and_then(|s| params.parse_sub_share(&s.value));
        match g {
            Some(g) if params.sub_share_ok(i, &commitments, me, &g) => {
                valid.insert(i, g);
            }
            _ => {
                complaints.insert(i);
            }
        }
        parsed.insert(i, commitments);
    }
    let verdict = Verdict { echo, complaints };
    Ok((
        ReceiverState {
            params,
            me,
            dealings: parsed,
            malformed,
            sub_shares: valid,
            verdict: verdict.clone(),
        },
        verdict,
    ))
}

fn dealing_hash(params: &Parameters, dealer: SignerId, d: &Dealing) -> [u8; 32] {
    agree::message_hash(params.transcript("dealing"), dealer, Some(&d.encode()))
}

// ----- Steps 4 and 5: judge and confirm -----

/// What a new holder keeps between [`ReceiverState::judge`] and [`JudgedState::confirm`].
pub struct JudgedState {
    params: Parameters,
    me: SignerId,
    verdicts: Hashes,
    answers: Hashes,
    outcome: Result<Reshared, Error>,
}

impl fmt::Debug for JudgedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rsa::reshare::JudgedState")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// The outcome of a redistribution for one new holder.
#[derive(Debug)]
pub struct Reshared {
    /// The new key share (same `N`, `e`, `v`; new `k'`, `n'`, verification keys, scale and share bound).
    pub share: KeyShare,
    /// `Q`: the dealers whose dealings make up the new sharing.
    pub qualified: BTreeSet<SignerId>,
    /// Every excluded dealer and false accuser.
    pub culprits: Vec<Culprit>,
}

impl ReceiverState {
    /// Step 4: takes every other new holder's verdict and the answers that arrived (keyed by dealer), judges every
    /// dealer as [`crate::reshare::round2::ReceiverState::judge`] does, and returns the verdict on the run and our
    /// confirmation.
    pub fn judge(
        self,
        verdicts: &BTreeMap<SignerId, Verdict>,
        answers: &BTreeMap<SignerId, Answer>,
    ) -> Result<(JudgedState, Confirmation), Error> {
        let params = &self.params;
        let roles = params.roles(self.me);
        roles.check_senders(verdicts.keys().copied(), answers.keys().copied())?;
        roles.check_verdicts(verdicts.iter().map(|(m, v)| (*m, v.view())))?;
        let mut all: BTreeMap<SignerId, &Verdict> = verdicts.iter().map(|(m, v)| (*m, v)).collect();
        all.insert(self.me, &self.verdict);
        let (verdict_hashes, answer_hashes) = agree::transcript_hashes(
            |label| params.transcript(label),
            all.iter().map(|(m, v)| (*m, v.encode())),
            &params.dealers,
            |i| {
                answers
                    .get(&i)
                    .filter(|a| !a.answers.is_empty())
                    .map(Answer::encode)
            },
        );
        let mut others = verdict_hashes.clone();
        others.remove(&self.me);
        let confirmation = Confirmation {
            verdicts: others,
            answers: answer_hashes.clone(),
        };
        let views: BTreeMap<SignerId, View<'_>> = all.iter().map(|(m, v)| (*m, v.view())).collect();
        let outcome = self.settle(&views, answers);
        Ok((
            JudgedState {
                params: self.params.clone(),
                me: self.me,
                verdicts: verdict_hashes,
                answers: answer_hashes,
                outcome,
            },
            confirmation,
        ))
    }

    fn settle(
        &self,
        views: &BTreeMap<SignerId, View<'_>>,
        answers: &BTreeMap<SignerId, Answer>,
    ) -> Result<Reshared, Error> {
        let params = &self.params;
        let mut sub_shares = self.sub_shares.clone();
        let (qualified, culprits) = params.roles(self.me).judge(
            views,
            params.old.threshold(),
            |i| {
                if self.malformed.contains(&i) {
                    Ok(Some(Fault::Malformed))
                } else if self.dealings.contains_key(&i) {
                    Ok(None)
                } else {
                    Err(Error::InvalidResult("echoed dealing missing from our state"))
                }
            },
            |i, m| {
                let bytes = answers.get(&i).and_then(|a| a.answers.get(&m))?;
                let ok = params
                    .parse_sub_share(bytes)
                    .filter(|g| params.sub_share_ok(i, &self.dealings[&i], m, g));
                if let Some(g) = ok.as_ref().filter(|_| m == self.me) {
                    sub_shares.insert(i, g.clone());
                }
                Some(ok.is_some())
            },
        )?;
        let b = &params.bounds;
        let ids: Vec<u16> = qualified.iter().map(|i| i.get()).collect();
        let lambdas = qualified
            .iter()
            .map(|i| {
                lagrange_at_zero(params.old.delta(), &ids, i.get())
                    .map(|l| (*i, l))
                    .ok_or(Error::InvalidResult("Lagrange coefficient not integral"))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        // s'_j = M·j + Σ_{λ>0} λ·g − Σ_{λ<0} |λ|·g, at a fixed precision.
        let precision = b.share_bits + 64;
        let overflow = |_| Error::InvalidResult("share arithmetic overflow");
        let me = BoxedUint::from(u64::from(self.me.get()));
        let shift = resize(&BoxedUint::one(), precision)
            .map_err(overflow)?
            .shl_vartime(b.shift_bits)
            .ok_or(Error::InvalidResult("shift overflow"))?;
        let mut positive = Zeroizing::new(resize(&mul_wide(&shift, &me), precision).map_err(overflow)?);
        let mut negative = Zeroizing::new(BoxedUint::zero_with_precision(precision));
        for (i, lambda) in &lambdas {
            let g = sub_shares
                .get(i)
                .ok_or(Error::InvalidResult("missing sub-share of a qualified dealer"))?;
            let term = Zeroizing::new(resize(&mul_wide(g, &lambda.magnitude), precision).map_err(overflow)?);
            let acc = if lambda.negative {
                &mut negative
            } else {
                &mut positive
            };
            **acc = acc.wrapping_add(&*term);
        }
        let secret = Zeroizing::new(positive.wrapping_sub(&*negative));
        if secret.bit_width_vartime() > b.share_bits {
            return Err(Error::InvalidResult("new share above its bound"));
        }
        // v'_j for every new holder, from public values only.
        let v = params.monty(params.old.v().clone());
        let len = params.old.signature_len();
        let mut verification_keys = Vec::with_capacity(params.receivers.len());
        for &j in &params.receivers {
            let mut num = pow_vartime(&v, &mul_wide(&shift, &BoxedUint::from(u64::from(j.get()))));
            let mut den = BoxedMontyForm::one(params.old.params());
            for (i, lambda) in &lambdas {
                let e = params
                    .expected(*i, &self.dealings[i], j)
                    .ok_or(Error::InvalidResult("dealer without a verification key"))?;
                let term = pow_vartime(&e, &lambda.magnitude);
                if lambda.negative {
                    den = den.mul(&term);
                } else {
                    num = num.mul(&term);
                }
            }
            let inv = den
                .invert_vartime()
                .into_option()
                .ok_or(Error::InvalidResult("a commitment is not invertible modulo N"))?;
            verification_keys.push(fixed_be(&num.mul(&inv).retrieve(), len));
        }
        let scale = mul_wide(&mul_wide(params.old.scale(), params.old.delta()), &b.delta_new);
        let scale = resize(&scale, scale.bit_width_vartime().max(1)).map_err(overflow)?;
        let public = params
            .old
            .redistributed(
                params.threshold,
                params.receivers.len() as u16,
                &verification_keys,
                scale,
                b.share_bits,
            )
            .map_err(|_| Error::InvalidResult("new public key set refused"))?;
        let bytes = Zeroizing::new(fixed_be(&secret, public.share_len()));
        let share = KeyShare::new(self.me, &bytes, public)
            .map_err(|_| Error::InvalidResult("new share does not match its verification key"))?;
        Ok(Reshared {
            share,
            qualified,
            culprits,
        })
    }
}

impl JudgedState {
    /// Step 5: takes every other new holder's confirmation; yields the new share once all agree with ours.
    pub fn confirm(self, confirmations: &BTreeMap<SignerId, Confirmation>) -> Result<Reshared, Error> {
        let views = confirmations
            .iter()
            .map(|(m, c)| (*m, (&c.verdicts, &c.answers)))
            .collect();
        self.params
            .roles(self.me)
            .compare(&self.verdicts, &self.answers, &views)?;
        self.outcome
    }
}
