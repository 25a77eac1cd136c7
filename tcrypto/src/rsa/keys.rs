//! Key material of Shoup's Protocol 1: the [`PublicKeySet`] everybody knows and the [`KeyShare`] of one signer.
//!
//! A public key set holds the RSA public key `(N, e)`, the threshold `k`, the number of parties `n` (the paper's
//! `l`), the random square `v` and every verification key `v_i = v^{s_i}`. Its [`KeyId`] is a hash of all of that,
//! so a decoded set whose id does not match its contents is rejected. A key share holds the signer id `i`, the
//! secret `s_i = f(i) mod m` and the public key set; decoding one checks `v^{s_i} = v_i` (the node-side check on
//! receipt), so a [`KeyShare`] value is always consistent with its public key set.

use core::fmt;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use der::{Encode, EncodePem};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::encoding::MessageEncoding;
use super::math::{bezout_for_combination, factorial, fixed_be, from_be, mul_small, mul_wide, pow_vartime};
use super::{Error, MAX_MODULUS_BITS, MAX_PARTIES, MAX_SHARE_BITS, MIN_MODULUS_BITS, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::{KeyId, SignerId};

/// Domain separation of the key id hash.
const KEY_ID_DOMAIN: &[u8] = b"tcrypto/rsa/shoup2000/key-id/v1";

/// Domain separation of the key id hash of an ordinary-modulus key set ([`super::ordinary`]).
const ORDINARY_KEY_ID_DOMAIN: &[u8] = b"tcrypto/rsa/ordinary/key-id/v1";

/// Domain separation of the share digests `h_i` of an ordinary-modulus key set.
const SHARE_DIGEST_DOMAIN: &[u8] = b"tcrypto/rsa/ordinary/share-digest/v1";

/// Which verification the shares of a key get.
#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// Shoup 2000: safe primes, `v`, verification keys `v_i`, a proof of correctness with every share.
    Shoup,
    /// An ordinary modulus ([`super::ordinary`]): no `v`, no proofs; each share is committed to by its digest
    /// `h_i = SHA-256(…, i, s_i)` so a holder can check it, and the combiner verifies `y^e = x` and searches subsets.
    Ordinary {
        /// `h_1 … h_n`.
        share_digests: Vec<[u8; 32]>,
    },
}

/// The public part of a threshold RSA key: `N`, `e`, `k`, `n`, `v`, `v_1 … v_n` and the key id.
#[derive(Clone)]
pub struct PublicKeySet {
    threshold: u16,
    parties: u16,
    modulus: Odd<BoxedUint>,
    e: u64,
    v: BoxedUint,
    verification_keys: Vec<BoxedUint>,
    /// `c`: the sharing shares `c·d mod m` (1 for a dealt key; a redistribution multiplies it, see
    /// [`super::reshare`]).
    scale: BoxedUint,
    /// Upper bound on the bit length of every secret share (`|N|` for a dealt key, whose shares are below `N`).
    share_bits: u32,
    key_id: KeyId,
    // Derived, not encoded.
    params: BoxedMontyParams,
    delta: BoxedUint,
    /// `(a, |b|)` with `a·e' + b·e = 1`, `e' = 4Δ²·c` (the combiner's exponents; depend only on `n`, `c` and `e`).
    combination: (BoxedUint, BoxedUint),
    kind: Kind,
}

impl PublicKeySet {
    /// Builds and validates a public key set from its parts (big-endian integers); computes the key id.
    ///
    /// `verification_keys[i-1]` is `v_i`. Errors when `1 <= k <= n <= MAX_PARTIES` does not hold, `N` is even or out
    /// of size, `e` is not a prime greater than `n`, or `v`, `v_i` are not in `[1, N)`.
    pub fn from_parts(
        modulus: &[u8],
        e: u64,
        v: &[u8],
        verification_keys: &[Vec<u8>],
        threshold: u16,
        parties: u16,
    ) -> Result<Self, Error> {
        let mut set = Self::unchecked(modulus, e, v, verification_keys, threshold, parties)?;
        set.key_id = set.compute_key_id();
        Ok(set)
    }

    fn unchecked(
        modulus: &[u8],
        e: u64,
        v: &[u8],
        verification_keys: &[Vec<u8>],
        threshold: u16,
        parties: u16,
    ) -> Result<Self, Error> {
        if threshold == 0 || threshold > parties {
            return Err(Error::InvalidParameters("threshold must satisfy 1 <= k <= n"));
        }
        if parties > MAX_PARTIES {
            return Err(Error::InvalidParameters("too many parties"));
        }
        if verification_keys.len() != usize::from(parties) {
            return Err(Error::InvalidParameters(
                "one verification key per party is needed",
            ));
        }
        if modulus.first() == Some(&0) {
            return Err(Error::Decode(DecodeError::Invalid(
                "modulus has a leading zero byte",
            )));
        }
        let bits = modulus_bits_of(modulus);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
            return Err(Error::InvalidParameters("modulus size out of range"));
        }
        let precision = u32::try_from(bits).map_err(|_| Error::InvalidParameters("modulus size"))?;
        let n = from_be(modulus, precision).ok_or(Error::Internal("modulus does not fit its own size"))?;
        let modulus = Odd::new(n)
            .into_option()
            .ok_or(Error::InvalidParameters("modulus is even"))?;
        check_public_exponent(e, parties)?;
        let element = |bytes: &[u8]| -> Result<BoxedUint, Error> {
            if bytes.len() != bits.div_ceil(8) {
                return Err(Error::Decode(DecodeError::Invalid(
                    "group element of wrong length",
                )));
            }
            let x = from_be(bytes, modulus.bits_precision())
                .ok_or(Error::Decode(DecodeError::Invalid("group element too large")))?;
            if bool::from(x.is_zero()) || x.cmp_vartime(modulus.as_ref()) != core::cmp::Ordering::Less {
                return Err(Error::Decode(DecodeError::Invalid("group element not in [1, N)")));
            }
            Ok(x)
        };
        let v = element(v)?;
        let verification_keys = verification_keys
            .iter()
            .map(|b| element(b))
            .collect::<Result<Vec<_>, _>>()?;
        let params = BoxedMontyParams::new_vartime(modulus.clone());
        let delta = factorial(parties);
        let e_prime = mul_small(&mul_wide(&delta, &delta), 4);
        let combination = bezout_for_combination(&e_prime, e)
            .ok_or(Error::InvalidParameters("public exponent must not divide 4Δ²"))?;
        Ok(Self {
            threshold,
            parties,
            modulus,
            e,
            v,
            verification_keys,
            scale: BoxedUint::one(),
            share_bits: bits as u32,
            key_id: KeyId([0; 32]),
            params,
            delta,
            combination,
            kind: Kind::Shoup,
        })
    }

    /// The public key set of an ordinary-modulus sharing ([`super::ordinary`]): `N`, `e`, `k`, `n`, the share bound
    /// `b` and the share digests `h_1 … h_n`; the scale is `c = Δ` (the sharing's constant term is `Δ·d`).
    ///
    /// Errors when `1 <= k <= n <= MAX_ORDINARY_PARTIES` does not hold, `N` is even or out of size, `e` is not a
    /// prime greater than `n`, or the share bound is below `|N|` or above [`super::MAX_SHARE_BITS`].
    pub fn ordinary(
        modulus: &[u8],
        e: u64,
        share_bits: u32,
        share_digests: &[[u8; 32]],
        threshold: u16,
        parties: u16,
    ) -> Result<Self, Error> {
        let mut set = Self::ordinary_unchecked(modulus, e, share_bits, share_digests, threshold, parties)?;
        set.key_id = set.compute_key_id();
        Ok(set)
    }

    fn ordinary_unchecked(
        modulus: &[u8],
        e: u64,
        share_bits: u32,
        share_digests: &[[u8; 32]],
        threshold: u16,
        parties: u16,
    ) -> Result<Self, Error> {
        if parties > super::ordinary::MAX_PARTIES {
            return Err(Error::InvalidParameters(
                "an ordinary-modulus key supports at most 16 parties",
            ));
        }
        if share_digests.len() != usize::from(parties) {
            return Err(Error::InvalidParameters("one share digest per party is needed"));
        }
        // Reuse the checks of a Shoup set (k, n, N, e); `v` and the verification keys are placeholders (1) that
        // never leave this type: an ordinary set has neither.
        let len = modulus.len();
        let mut one = vec![0u8; len];
        if let Some(last) = one.last_mut() {
            *last = 1;
        }
        let placeholders = vec![one.clone(); usize::from(parties)];
        let mut set = Self::unchecked(modulus, e, &one, &placeholders, threshold, parties)?;
        set.verification_keys.clear();
        let delta = set.delta.clone();
        set.set_scale(delta, share_bits)?;
        set.kind = Kind::Ordinary {
            share_digests: share_digests.to_vec(),
        };
        Ok(set)
    }

    /// Whether this is an ordinary-modulus key set ([`super::ordinary`]): shares carry no proof, [`verify_share`]
    /// cannot judge a single share, and [`super::combine()`] names culprits by a subset search.
    ///
    /// [`verify_share`]: super::verify_share
    pub fn is_ordinary(&self) -> bool {
        matches!(self.kind, Kind::Ordinary { .. })
    }

    /// The digest `h_i` of `signer`'s secret share, for an ordinary-modulus key set; `None` otherwise or for `i > n`.
    pub fn share_digest(&self, signer: SignerId) -> Option<[u8; 32]> {
        match &self.kind {
            Kind::Ordinary { share_digests } => share_digests.get(usize::from(signer.get()) - 1).copied(),
            Kind::Shoup => None,
        }
    }

    /// `h_i = SHA-256(domain, N, e, k, n, b, i, s_i)` with `s_i` big-endian in `ceil(b/8)` bytes.
    pub(crate) fn compute_share_digest(&self, signer: SignerId, secret: &BoxedUint) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((SHARE_DIGEST_DOMAIN.len() as u64).to_be_bytes());
        h.update(SHARE_DIGEST_DOMAIN);
        let n = self.modulus_bytes();
        h.update((n.len() as u64).to_be_bytes());
        h.update(&n);
        h.update(self.e.to_be_bytes());
        h.update(self.threshold.to_be_bytes());
        h.update(self.parties.to_be_bytes());
        h.update(self.share_bits.to_be_bytes());
        h.update(signer.get().to_be_bytes());
        let s = Zeroizing::new(fixed_be(secret, self.share_len()));
        h.update(&*s);
        h.finalize().into()
    }

    /// The public key set of a redistributed sharing of the same key (same `N`, `e`, `v`): `k'`, `n'`, the new
    /// verification keys, the new scale `c'` and share bound (see [`super::reshare`]).
    pub(crate) fn redistributed(
        &self,
        threshold: u16,
        parties: u16,
        verification_keys: &[Vec<u8>],
        scale: BoxedUint,
        share_bits: u32,
    ) -> Result<Self, Error> {
        let mut set = Self::unchecked(
            &self.modulus_bytes(),
            self.e,
            &self.v_bytes(),
            verification_keys,
            threshold,
            parties,
        )?;
        set.set_scale(scale, share_bits)?;
        set.key_id = set.compute_key_id();
        Ok(set)
    }

    /// Sets `c` and the share bound, and recomputes the combiner's exponents for `e' = 4Δ²·c`.
    fn set_scale(&mut self, scale: BoxedUint, share_bits: u32) -> Result<(), Error> {
        if bool::from(scale.is_zero()) {
            return Err(Error::InvalidParameters("scale must not be zero"));
        }
        if (share_bits as usize) < self.modulus_bits() || share_bits > MAX_SHARE_BITS {
            return Err(Error::InvalidParameters("share bound out of range"));
        }
        if scale.bit_width_vartime() > MAX_SHARE_BITS {
            return Err(Error::InvalidParameters("scale too large"));
        }
        let e_prime = mul_wide(&mul_small(&mul_wide(&self.delta, &self.delta), 4), &scale);
        self.combination = bezout_for_combination(&e_prime, self.e)
            .ok_or(Error::InvalidParameters("public exponent must not divide 4Δ²c"))?;
        self.scale = scale;
        self.share_bits = share_bits;
        Ok(())
    }

    /// Whether this set is a dealt one (`c = 1`, shares below `N`): it then encodes with the original tag.
    pub(crate) fn is_dealt(&self) -> bool {
        self.kind == Kind::Shoup
            && self.scale == BoxedUint::one()
            && self.share_bits as usize == self.modulus_bits()
    }

    /// `c`: this sharing shares `c·d mod m` (1 for a dealt key). Big-endian, minimal.
    pub fn scale_bytes(&self) -> Vec<u8> {
        super::math::minimal_be_vartime(&self.scale)
    }

    /// Upper bound on the bit length of every secret share (`|N|` for a dealt key).
    pub fn share_bits(&self) -> u32 {
        self.share_bits
    }

    /// Length in bytes of an encoded secret share, `ceil(share_bits / 8)`.
    pub fn share_len(&self) -> usize {
        (self.share_bits as usize).div_ceil(8)
    }

    /// The threshold `k`: shares needed for a signature.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The number of parties `n` (the paper's `l`); signer ids are `1..=n`.
    pub fn parties(&self) -> u16 {
        self.parties
    }

    /// The key id, a hash of everything in this set.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Bit length of the modulus `N`.
    pub fn modulus_bits(&self) -> usize {
        self.modulus.bit_width_vartime() as usize
    }

    /// Length of a signature in bytes, `ceil(|N| / 8)`.
    pub fn signature_len(&self) -> usize {
        self.modulus_bits().div_ceil(8)
    }

    /// The modulus `N`, big-endian, without leading zeros.
    pub fn modulus_bytes(&self) -> Vec<u8> {
        fixed_be(self.modulus.as_ref(), self.signature_len())
    }

    /// The public exponent `e`.
    pub fn public_exponent(&self) -> u64 {
        self.e
    }

    /// `v`, big-endian in [`Self::signature_len`] bytes (an ordinary-modulus set has no `v`: 1).
    pub fn v_bytes(&self) -> Vec<u8> {
        fixed_be(&self.v, self.signature_len())
    }

    /// The verification key `v_i` of `signer`, big-endian in [`Self::signature_len`] bytes; `None` for `i > n` and
    /// for an ordinary-modulus set (which has none).
    pub fn verification_key_bytes(&self, signer: SignerId) -> Option<Vec<u8>> {
        self.verification_key(signer)
            .map(|x| fixed_be(x, self.signature_len()))
    }

    /// Whether `signer` is one of `1..=n`.
    pub fn has_signer(&self, signer: SignerId) -> bool {
        signer.get() <= self.parties
    }

    /// Verifies an RSA signature on the message `msg` (exactly what a plain RSA verifier checks: `sig^e mod N`
    /// equals the encoded message).
    pub fn verify(&self, msg: &MessageEncoding, sig: &[u8]) -> Result<(), Error> {
        if sig.len() != self.signature_len() {
            return Err(Error::InvalidSignature);
        }
        let expected = msg.encoded_message(self.modulus_bits())?;
        let s = from_be(sig, self.precision()).ok_or(Error::InvalidSignature)?;
        if s.cmp_vartime(self.modulus.as_ref()) != core::cmp::Ordering::Less {
            return Err(Error::InvalidSignature);
        }
        let y = BoxedMontyForm::new(s, &self.params);
        let got = pow_vartime(&y, &BoxedUint::from(self.e)).retrieve();
        if fixed_be(&got, self.signature_len()) == expected {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }

    /// The public key as a PKCS#1 `RSAPublicKey`, DER.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, Error> {
        let n = self.modulus_bytes();
        let e = self.e.to_be_bytes();
        let e = &e[e.iter().position(|&b| b != 0).unwrap_or(7)..];
        let key = pkcs1::RsaPublicKey {
            modulus: der::asn1::UintRef::new(&n).map_err(|_| Error::Internal("modulus as DER INTEGER"))?,
            public_exponent: der::asn1::UintRef::new(e)
                .map_err(|_| Error::Internal("exponent as DER INTEGER"))?,
        };
        key.to_der().map_err(|_| Error::Internal("PKCS#1 encoding"))
    }

    /// The public key as a PKCS#1 `RSA PUBLIC KEY` PEM document.
    pub fn to_pkcs1_pem(&self) -> Result<String, Error> {
        let der = self.to_pkcs1_der()?;
        let key = pkcs1::RsaPublicKeyRef::try_from(der.as_slice())
            .map_err(|_| Error::Internal("PKCS#1 re-read"))?;
        key.to_pem(der::pem::LineEnding::LF)
            .map_err(|_| Error::Internal("PKCS#1 PEM encoding"))
    }

    /// The public key as an X.509 `SubjectPublicKeyInfo` (rsaEncryption), DER: what `openssl` reads as `PUBLIC KEY`.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, Error> {
        let pkcs1 = self.to_pkcs1_der()?;
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: pkcs1::ALGORITHM_ID,
            subject_public_key: der::asn1::BitStringRef::from_bytes(&pkcs1)
                .map_err(|_| Error::Internal("SPKI bit string"))?,
        };
        spki.to_der().map_err(|_| Error::Internal("SPKI encoding"))
    }

    /// The public key as a `PUBLIC KEY` PEM document (SPKI).
    pub fn to_spki_pem(&self) -> Result<String, Error> {
        let der = self.to_spki_der()?;
        der::Document::try_from(der.as_slice())
            .and_then(|doc| doc.to_pem("PUBLIC KEY", der::pem::LineEnding::LF))
            .map_err(|_| Error::Internal("SPKI PEM encoding"))
    }

    /// The strict binary encoding (version, tag [`tag::PUBLIC_KEY_SET`], fields, key id).
    ///
    /// A redistributed set ([`super::reshare`]: `c != 1` or shares longer than `N`) uses tag
    /// [`tag::PUBLIC_KEY_SET_RESHARED`] and appends `c` (length-prefixed, minimal big-endian) and the share bound
    /// (`u32`) to the fields.
    ///
    /// An ordinary-modulus set ([`super::ordinary`]) uses tag [`tag::PUBLIC_KEY_SET_ORDINARY`] with the fields
    /// `k`, `n`, `N`, `e`, the share bound (`u32`) and the `n` share digests (32 bytes each).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(if self.is_ordinary() {
            tag::PUBLIC_KEY_SET_ORDINARY
        } else if self.is_dealt() {
            tag::PUBLIC_KEY_SET
        } else {
            tag::PUBLIC_KEY_SET_RESHARED
        });
        self.encode_body(&mut w);
        self.key_id.encode(&mut w);
        w.finish()
    }

    fn encode_body(&self, w: &mut Writer) {
        if let Kind::Ordinary { share_digests } = &self.kind {
            w.u16(self.threshold).u16(self.parties);
            w.bytes(&self.modulus_bytes());
            w.u64(self.e);
            w.u32(self.share_bits);
            for h in share_digests {
                w.raw(h);
            }
            return;
        }
        w.u16(self.threshold).u16(self.parties);
        w.bytes(&self.modulus_bytes());
        w.u64(self.e);
        w.bytes(&self.v_bytes());
        for vk in &self.verification_keys {
            w.bytes(&fixed_be(vk, self.signature_len()));
        }
        if !self.is_dealt() {
            w.bytes(&self.scale_bytes());
            w.u32(self.share_bits);
        }
    }

    fn compute_key_id(&self) -> KeyId {
        let mut w = Writer::bare();
        self.encode_body(&mut w);
        let domain = if self.is_ordinary() {
            ORDINARY_KEY_ID_DOMAIN
        } else {
            KEY_ID_DOMAIN
        };
        let mut h = Sha256::new();
        h.update((domain.len() as u64).to_be_bytes());
        h.update(domain);
        h.update(w.as_slice());
        KeyId(h.finalize().into())
    }

    /// Decodes and validates [`Self::encode`]'s output; the key id must match the contents.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.get(1) == Some(&tag::PUBLIC_KEY_SET_ORDINARY) {
            let mut r = Reader::new(bytes, tag::PUBLIC_KEY_SET_ORDINARY)?;
            let set = Self::read_ordinary(&mut r)?;
            r.finish()?;
            return Ok(set);
        }
        let reshared = bytes.get(1) == Some(&tag::PUBLIC_KEY_SET_RESHARED);
        let mut r = Reader::new(
            bytes,
            if reshared {
                tag::PUBLIC_KEY_SET_RESHARED
            } else {
                tag::PUBLIC_KEY_SET
            },
        )?;
        let set = Self::read(&mut r, reshared)?;
        r.finish()?;
        Ok(set)
    }

    fn read(r: &mut Reader<'_>, reshared: bool) -> Result<Self, Error> {
        let threshold = r.u16()?;
        let parties = r.u16()?;
        if parties > MAX_PARTIES {
            return Err(Error::Decode(DecodeError::Invalid("too many parties")));
        }
        let modulus = r.bytes()?;
        let e = r.u64()?;
        let v = r.bytes()?;
        let mut vks = Vec::with_capacity(usize::from(parties));
        for _ in 0..parties {
            vks.push(r.bytes()?.to_vec());
        }
        let scaled = if reshared {
            let scale = r.bytes()?;
            if scale.first().is_none_or(|b| *b == 0) {
                return Err(Error::Decode(DecodeError::Invalid("scale not minimal or zero")));
            }
            if scale.len() > (MAX_SHARE_BITS as usize).div_ceil(8) {
                return Err(Error::Decode(DecodeError::Invalid("scale too large")));
            }
            Some((super::math::from_be_vartime(scale), r.u32()?))
        } else {
            None
        };
        let key_id = KeyId::decode(r)?;
        let mut set = Self::unchecked(modulus, e, v, &vks, threshold, parties)?;
        if let Some((scale, share_bits)) = scaled {
            set.set_scale(scale, share_bits)?;
            if set.is_dealt() {
                return Err(Error::Decode(DecodeError::Invalid(
                    "a dealt key set under the redistributed tag",
                )));
            }
        }
        set.key_id = set.compute_key_id();
        if set.key_id != key_id {
            return Err(Error::Decode(DecodeError::Invalid(
                "key id does not match the key",
            )));
        }
        Ok(set)
    }

    fn read_ordinary(r: &mut Reader<'_>) -> Result<Self, Error> {
        let threshold = r.u16()?;
        let parties = r.u16()?;
        if parties > super::ordinary::MAX_PARTIES {
            return Err(Error::Decode(DecodeError::Invalid("too many parties")));
        }
        let modulus = r.bytes()?;
        let e = r.u64()?;
        let share_bits = r.u32()?;
        let mut digests = Vec::with_capacity(usize::from(parties));
        for _ in 0..parties {
            digests.push(r.array::<32>()?);
        }
        let key_id = KeyId::decode(r)?;
        let mut set = Self::ordinary_unchecked(modulus, e, share_bits, &digests, threshold, parties)?;
        set.key_id = set.compute_key_id();
        if set.key_id != key_id {
            return Err(Error::Decode(DecodeError::Invalid(
                "key id does not match the key",
            )));
        }
        Ok(set)
    }

    pub(crate) fn verification_key(&self, signer: SignerId) -> Option<&BoxedUint> {
        self.verification_keys.get(usize::from(signer.get()) - 1)
    }

    pub(crate) fn modulus(&self) -> &Odd<BoxedUint> {
        &self.modulus
    }

    pub(crate) fn params(&self) -> &BoxedMontyParams {
        &self.params
    }

    pub(crate) fn precision(&self) -> u32 {
        self.modulus.bits_precision()
    }

    pub(crate) fn v(&self) -> &BoxedUint {
        &self.v
    }

    /// `Δ = n!`.
    pub(crate) fn delta(&self) -> &BoxedUint {
        &self.delta
    }

    /// `c`.
    pub(crate) fn scale(&self) -> &BoxedUint {
        &self.scale
    }

    /// `(a, |b|)` with `a·e' + b·e = 1` for `e' = 4Δ²·c` (`b ≤ 0`), computed once per key set.
    pub(crate) fn combination_exponents(&self) -> (&BoxedUint, &BoxedUint) {
        (&self.combination.0, &self.combination.1)
    }
}

impl PartialEq for PublicKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}

impl Eq for PublicKeySet {}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("key_id", &self.key_id)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("modulus_bits", &self.modulus_bits())
            .field("e", &self.e)
            .field("ordinary", &self.is_ordinary())
            .finish_non_exhaustive()
    }
}

/// One signer's share of a threshold RSA key: its id `i`, the secret `s_i` and the public key set.
///
/// Zeroized on drop; `Debug` prints `<redacted>` for the secret; no `Clone`.
pub struct KeyShare {
    id: SignerId,
    /// `s_i = f(i) mod m`, at the precision of `N`.
    secret: BoxedUint,
    public: PublicKeySet,
}

impl KeyShare {
    /// Builds a share from its secret (big-endian) and checks it against the public key set: `i <= n`,
    /// `0 <= s_i < N` (for a redistributed or ordinary-modulus set: `s_i < 2^share_bits`) and `v^{s_i} = v_i` (for an
    /// ordinary-modulus set: the share digest `h_i`).
    pub fn new(id: SignerId, secret: &[u8], public: PublicKeySet) -> Result<Self, Error> {
        if !public.has_signer(id) {
            return Err(Error::KeyShareMismatch(
                "signer id greater than the number of parties",
            ));
        }
        let secret = from_be(secret, public.share_bits()).ok_or(Error::KeyShareMismatch(
            "secret share larger than the share bound",
        ))?;
        let share = Self { id, secret, public };
        if share.public.is_dealt()
            && share.secret.cmp_vartime(share.public.modulus().as_ref()) != core::cmp::Ordering::Less
        {
            return Err(Error::KeyShareMismatch("secret share larger than the modulus"));
        }
        share.check_verification_key()?;
        Ok(share)
    }

    /// Used by the dealer, which knows the share is right; still checked in debug builds and tests.
    #[cfg(feature = "dealer")]
    pub(crate) fn from_dealer(id: SignerId, secret: BoxedUint, public: PublicKeySet) -> Self {
        Self { id, secret, public }
    }

    /// This signer's id `i`.
    pub fn id(&self) -> SignerId {
        self.id
    }

    /// The public key set this share belongs to.
    pub fn public_key_set(&self) -> &PublicKeySet {
        &self.public
    }

    /// Checks this share against a public key set obtained elsewhere (e.g. published by the coordinator): same
    /// key, and `v^{s_i} = v_i`.
    pub fn check_against(&self, public: &PublicKeySet) -> Result<(), Error> {
        if &self.public != public {
            return Err(Error::KeyShareMismatch("share belongs to another public key set"));
        }
        self.check_verification_key()
    }

    fn check_verification_key(&self) -> Result<(), Error> {
        if let Kind::Ordinary { share_digests } = &self.public.kind {
            let expected =
                share_digests
                    .get(usize::from(self.id.get()) - 1)
                    .ok_or(Error::KeyShareMismatch(
                        "signer id greater than the number of parties",
                    ))?;
            let got = self.public.compute_share_digest(self.id, &self.secret);
            return if bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &expected[..])) {
                Ok(())
            } else {
                Err(Error::KeyShareMismatch(
                    "share digest h_i does not match the secret share",
                ))
            };
        }
        let v = BoxedMontyForm::new(self.public.v().clone(), self.public.params());
        let got = v.pow(&self.secret).retrieve();
        match self.public.verification_key(self.id) {
            Some(vk) if got == *vk => Ok(()),
            _ => Err(Error::KeyShareMismatch("v^s_i does not equal v_i")),
        }
    }

    pub(crate) fn secret(&self) -> &BoxedUint {
        &self.secret
    }

    /// The strict binary encoding, secret included (tag [`tag::KEY_SHARE`]); zeroized when dropped.
    ///
    /// The buffer is sized up front (header, id, two length-prefixed fields), so it never grows and no copy of the
    /// secret is left in a freed allocation.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let public = self.public.encode();
        let secret = Zeroizing::new(fixed_be(&self.secret, self.public.share_len()));
        let len = 2 + 2 + (4 + secret.len()) + (4 + public.len());
        let mut w = Writer::with_capacity(tag::KEY_SHARE, len);
        self.id.encode(&mut w);
        w.bytes(&secret);
        w.bytes(&public);
        let out = Zeroizing::new(w.finish());
        debug_assert_eq!(out.len(), len, "key share encoding size");
        out
    }

    /// Decodes a key share and performs the node-side check `v^{s_i} = v_i` (see [`Self::new`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::KEY_SHARE)?;
        let id = SignerId::decode(&mut r)?;
        let secret = r.bytes()?;
        let public = PublicKeySet::decode(r.bytes()?)?;
        r.finish()?;
        if secret.len() != public.share_len() {
            return Err(Error::Decode(DecodeError::Invalid(
                "secret share of wrong length",
            )));
        }
        Self::new(id, secret, public)
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("key_id", &self.public.key_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Bit length of a big-endian integer.
fn modulus_bits_of(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i - 1) * 8 + (8 - bytes[i].leading_zeros() as usize),
    }
}

/// Shoup requires a prime `e > n`.
pub(crate) fn check_public_exponent(e: u64, parties: u16) -> Result<(), Error> {
    if e <= u64::from(parties) || e < 3 {
        return Err(Error::InvalidParameters(
            "public exponent must be a prime greater than n",
        ));
    }
    let candidate = crypto_bigint::U64::from_u64(e);
    if !crypto_primes::is_prime(crypto_primes::Flavor::Any, &candidate) {
        return Err(Error::InvalidParameters(
            "public exponent must be a prime greater than n",
        ));
    }
    Ok(())
}
