//! The signer's step (Shoup 2000, §3 "Generating a signature share" and "Proof of correctness").
//!
//! Signer `i` builds `x` from the [`MessageEncoding`], computes `x_i = x^{2Δ s_i}` and proves that
//! `log_{x̃}(x_i²) = log_v(v_i)` for `x̃ = x^{4Δ}`: it picks `r` uniformly from `[0, 2^{|N| + 2·L1})`, computes
//! `v' = v^r`, `x' = x̃^r`, the challenge `c = H'(v, x̃, v_i, x_i², v', x')` (`L1 = 128` bits)
//! and `z = s_i c + r` over the integers. Exponentiations with `s_i` and `r` are constant time.
//!
//! Shares are sent in a canonical form: `x_i` and `N − x_i` are the same share (only `x_i²` enters the proof and
//! the combination), so the signer sends the smaller one and the combiner rejects the larger one.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, RandomBits};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::encoding::MessageEncoding;
use super::keys::{KeyShare, PublicKeySet};
use super::math::{fixed_be, from_be, minimal_be_vartime, mul_small, mul_wide, pow_vartime, resize};
use super::{CHALLENGE_BITS, Error, tag};
use crate::backend::{Active, Arithmetic, BackendError};
use crate::codec::{DecodeError, Reader, Writer};
use crate::{SessionId, SignerId};

/// Largest integer field of a share in bytes (a 16384-bit modulus plus the proof's margin).
const MAX_INT_LEN: usize = 2048 + 64;

/// Domain separation of the challenge hash.
const CHALLENGE_DOMAIN: &[u8] = b"tcrypto/rsa/shoup2000/share-proof/v1";

/// A signature share `x_i` with its proof of correctness, as sent by signer `i` to the combiner.
///
/// The combiner takes the sender's identity from the authenticated channel; [`Self::signer`] is only
/// cross-checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureShare {
    /// The signer id `i` the share claims.
    pub signer: SignerId,
    /// `x_i = ±x^{2Δ s_i} mod N`, big-endian, canonical (the smaller of `x_i`, `N − x_i`), no leading zeros.
    pub value: Vec<u8>,
    /// The proof `(c, z)`; `None` only for shares made with [`KeyShare::sign_share_unproven`].
    pub proof: Option<ShareProof>,
}

/// The non-interactive proof of correctness `(c, z)` of a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareProof {
    /// The challenge `c`, `L1 = 128` bits, big-endian.
    pub c: [u8; 16],
    /// `z = s_i c + r`, big-endian, no leading zeros.
    pub z: Vec<u8>,
}

impl KeyShare {
    /// Signs `msg` for the request `session`: the share `x_i` and its proof (Shoup 2000, Protocol 1). For an
    /// ordinary-modulus key ([`PublicKeySet::is_ordinary`]) the share has no proof, as with
    /// [`Self::sign_share_unproven`].
    pub fn sign_share(
        &self,
        session: &SessionId,
        msg: &MessageEncoding,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<SignatureShare, Error> {
        self.sign_share_with::<Active>(session, msg, rng)
    }

    /// [`Self::sign_share`] on the arithmetic backend `B`.
    pub(crate) fn sign_share_with<B: Arithmetic>(
        &self,
        session: &SessionId,
        msg: &MessageEncoding,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<SignatureShare, Error> {
        if self.public_key_set().is_ordinary() {
            // An ordinary-modulus key has no v, no v_i: its shares carry no proof (see `super::ordinary`).
            return self.sign_share_unproven_with::<B>(msg);
        }
        let ctx = ShareContext::new(self.public_key_set(), msg)?;
        let x_i = B::pow_secret(&ctx.x_2delta, self.secret()).map_err(backend_failed)?;
        let (value, x_i_squared) = canonical(self.public_key_set(), &x_i);
        let proof = self.prove::<B>(&ctx, session, &x_i_squared, rng)?;
        Ok(SignatureShare {
            signer: self.id(),
            value,
            proof: Some(proof),
        })
    }

    /// The share `x_i` without a proof: cheaper, but a combiner can then not tell who sent a bad share. For
    /// benchmarks and for deployments where every signer is trusted not to lie.
    pub fn sign_share_unproven(&self, msg: &MessageEncoding) -> Result<SignatureShare, Error> {
        self.sign_share_unproven_with::<Active>(msg)
    }

    /// [`Self::sign_share_unproven`] on the arithmetic backend `B`.
    pub(crate) fn sign_share_unproven_with<B: Arithmetic>(
        &self,
        msg: &MessageEncoding,
    ) -> Result<SignatureShare, Error> {
        let ctx = ShareContext::new(self.public_key_set(), msg)?;
        let x_i = B::pow_secret(&ctx.x_2delta, self.secret()).map_err(backend_failed)?;
        let (value, _) = canonical(self.public_key_set(), &x_i);
        Ok(SignatureShare {
            signer: self.id(),
            value,
            proof: None,
        })
    }

    fn prove<B: Arithmetic>(
        &self,
        ctx: &ShareContext,
        session: &SessionId,
        x_i_squared: &BoxedMontyForm,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<ShareProof, Error> {
        let pk = self.public_key_set();
        let r_bits = r_bits(pk);
        let r = Zeroizing::new(BoxedUint::random_bits_with_precision(rng, r_bits, r_bits));
        let v = BoxedMontyForm::new(pk.v().clone(), pk.params());
        let v_prime = B::pow_secret(&v, &r).map_err(backend_failed)?;
        let x_prime = B::pow_secret(&ctx.x_tilde, &r).map_err(backend_failed)?;
        let v_i = pk
            .verification_key(self.id())
            .ok_or(Error::Internal("own verification key missing"))?;
        let c = challenge(
            pk,
            self.id(),
            session,
            &ctx.x,
            &ctx.x_tilde.retrieve(),
            v_i,
            &x_i_squared.retrieve(),
            &v_prime.retrieve(),
            &x_prime.retrieve(),
        );
        // z = s_i c + r over the integers, constant time at fixed precision.
        let c_int =
            BoxedUint::from_be_slice(&c, CHALLENGE_BITS).map_err(|_| Error::Internal("challenge size"))?;
        let s_c = Zeroizing::new(mul_wide(self.secret(), &c_int));
        let width = s_c.bits_precision().max(r.bits_precision()) + 64;
        let s_c = Zeroizing::new(resize(&s_c, width)?);
        let r = Zeroizing::new(resize(&r, width)?);
        let z = Zeroizing::new(s_c.wrapping_add(&*r));
        Ok(ShareProof {
            c,
            z: minimal_be_vartime(&z),
        })
    }
}

/// A signer's error when the arithmetic backend fails (OpenSSL could not allocate): nobody else is at fault.
fn backend_failed(_: BackendError) -> Error {
    Error::Internal("arithmetic backend failed")
}

/// Public values both prover and verifier derive from the message.
pub(crate) struct ShareContext {
    /// `x` as an integer.
    pub(crate) x: BoxedUint,
    /// `x` in Montgomery form.
    pub(crate) x_mont: BoxedMontyForm,
    /// `x^{2Δ}`.
    pub(crate) x_2delta: BoxedMontyForm,
    /// `x̃ = x^{4Δ}`.
    pub(crate) x_tilde: BoxedMontyForm,
}

impl ShareContext {
    pub(crate) fn new(pk: &PublicKeySet, msg: &MessageEncoding) -> Result<Self, Error> {
        let em = msg.encoded_message(pk.modulus_bits())?;
        let x = from_be(&em, pk.precision()).ok_or(Error::Internal("encoded message larger than modulus"))?;
        let x_mont = BoxedMontyForm::new(x.clone(), pk.params());
        let x_2delta = pow_vartime(&x_mont, &mul_small(pk.delta(), 2));
        let x_tilde = x_2delta.square();
        Ok(Self {
            x,
            x_mont,
            x_2delta,
            x_tilde,
        })
    }
}

/// `(canonical x_i bytes, x_i²)` where canonical is the smaller of `x_i` and `N − x_i`.
fn canonical(pk: &PublicKeySet, x_i: &BoxedMontyForm) -> (Vec<u8>, BoxedMontyForm) {
    let value = x_i.retrieve();
    let negated = x_i.neg().retrieve();
    let smaller = if value.cmp_vartime(&negated) == core::cmp::Ordering::Greater {
        negated
    } else {
        value
    };
    let _ = pk;
    (minimal_be_vartime(&smaller), x_i.square())
}

/// Bits of the proof's randomness `r`: `|s_i| + 2·L1` (the share bound: `|N|` for a dealt key).
pub(crate) fn r_bits(pk: &PublicKeySet) -> u32 {
    pk.share_bits() + 2 * CHALLENGE_BITS
}

/// The Fiat–Shamir challenge `H'` of the proof: SHA-256 over length-prefixed, domain-separated inputs binding the
/// key (id and modulus), the signer id, the session id, the message representative `x` and the paper's
/// `(v, x̃, v_i, x_i², v', x')`, truncated to `L1 = 128` bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn challenge(
    pk: &PublicKeySet,
    signer: SignerId,
    session: &SessionId,
    x: &BoxedUint,
    x_tilde: &BoxedUint,
    v_i: &BoxedUint,
    x_i_squared: &BoxedUint,
    v_prime: &BoxedUint,
    x_prime: &BoxedUint,
) -> [u8; 16] {
    let len = pk.signature_len();
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(CHALLENGE_DOMAIN);
    field(pk.key_id().as_bytes());
    field(&pk.modulus_bytes());
    field(&signer.get().to_be_bytes());
    field(session.as_bytes());
    for value in [pk.v(), x, x_tilde, v_i, x_i_squared, v_prime, x_prime] {
        field(&fixed_be(value, len));
    }
    let digest = h.finalize();
    let mut c = [0u8; 16];
    c.copy_from_slice(&digest[..16]);
    c
}

impl SignatureShare {
    /// The strict binary encoding (tag [`tag::SIGNATURE_SHARE`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::SIGNATURE_SHARE);
        self.signer.encode(&mut w);
        w.bytes(strip(&self.value));
        match &self.proof {
            None => {
                w.bool(false);
            }
            Some(p) => {
                w.bool(true);
                w.raw(&p.c);
                w.bytes(strip(&p.z));
            }
        }
        w.finish()
    }

    /// Decodes [`Self::encode`]'s output. Integers must be minimal (no leading zero byte), so every share has
    /// exactly one encoding. Range checks against the key happen in [`super::verify_share`] and
    /// [`super::combine()`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::SIGNATURE_SHARE)?;
        let signer = SignerId::decode(&mut r)?;
        let value = read_int(&mut r)?;
        let proof = if r.bool()? {
            let c = r.array::<16>()?;
            let z = read_int(&mut r)?;
            Some(ShareProof { c, z })
        } else {
            None
        };
        r.finish()?;
        Ok(Self { signer, value, proof })
    }
}

fn strip(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn read_int(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let b = r.bytes()?;
    if b.len() > MAX_INT_LEN {
        return Err(DecodeError::TooLong(b.len()));
    }
    if b.first() == Some(&0) {
        return Err(DecodeError::Invalid("integer with a leading zero byte"));
    }
    Ok(b.to_vec())
}
