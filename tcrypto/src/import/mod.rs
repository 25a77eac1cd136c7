//! Key import (`dealer` feature): parse an existing RSA, P-256 or Ed25519 private key and split it into the shares
//! the nodes store. **Single point of failure**, like every dealer: the process running this sees the whole key.
//!
//! Formats ([`parse`] guesses, the others are explicit):
//!
//! - PEM (RFC 7468, [`parse_pem`]): `PRIVATE KEY` (PKCS#8 v1/v2, RFC 5208/5958: RSA, P-256, Ed25519 per RFC 8410),
//!   `RSA PRIVATE KEY` (PKCS#1, RFC 8017 A.1.2), `EC PRIVATE KEY` (SEC1, RFC 5915; an `EC PARAMETERS` block naming
//!   P-256 before it, as `openssl ecparam -genkey` writes, is accepted). `ENCRYPTED PRIVATE KEY` is refused
//!   ([`ImportError::Encrypted`]).
//! - DER ([`parse_der`]): the same three structures, tried in that order.
//! - BIND / ldns `.private` files ([`parse_bind_private`], [`bind`]): `Private-key-format: v1.2` or `v1.3`,
//!   algorithms 8 (RSASHA256), 10 (RSASHA512), 13 (ECDSAP256SHA256) and 15 (ED25519).
//!
//! Errors are typed ([`ImportError`]) and name the line for the text formats; the caller adds the file name.
//!
//! Then [`split`] consumes the parsed key and returns the shares: RSA by [`crate::rsa::split_primes`] (Shoup when
//! both primes are safe, the ordinary-modulus sharing of [`crate::rsa::ordinary`] otherwise), P-256 by
//! [`crate::ecdsa::split_secret_key`] (Shamir over the scalar field with Feldman commitments, the form the DKG
//! produces), Ed25519 by [`crate::ed25519::split_seed`] (the RFC 8032 signing scalar, same). Each path checks that
//! the shared key's public key is the original one. Every secret (primes, scalars, seeds, decoded base64 and DER
//! buffers) is zeroized when dropped; `Debug` never prints one.

use core::fmt;

use crypto_bigint::{BoxedUint, ConcatenatingMul};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::rsa::{self, Prime, SplitOptions};
use crate::{SignerId, ecdsa, ed25519};

pub mod bind;
mod der_pem;

pub use bind::{BindPrivateKey, parse_bind_private};
pub use der_pem::{parse_der, parse_pem};

/// Largest RSA modulus accepted for import (bits), as everywhere in [`crate::rsa`].
pub const MAX_RSA_BITS: usize = rsa::MAX_MODULUS_BITS;

/// A private key to import. Secret: zeroized on drop, `Debug` prints no secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum PrivateKey {
    /// An RSA key (two primes).
    Rsa(RsaPrivateKey),
    /// A NIST P-256 key (ECDSA).
    P256(P256PrivateKey),
    /// An Ed25519 key (RFC 8032 seed).
    Ed25519(Ed25519PrivateKey),
}

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA.
    Rsa,
    /// ECDSA over P-256.
    P256,
    /// Ed25519.
    Ed25519,
}

/// An RSA private key `(N, e, p, q)` with `N = p·q` checked. The primes are secret.
pub struct RsaPrivateKey {
    modulus: Vec<u8>,
    e: u64,
    p: Prime,
    q: Prime,
}

/// A P-256 private key (a non-zero scalar).
pub struct P256PrivateKey(p256::SecretKey);

/// An Ed25519 private key: the 32-byte RFC 8032 seed.
pub struct Ed25519PrivateKey(Zeroizing<[u8; 32]>);

/// Why a key could not be imported.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A text format (PEM, BIND) is malformed at `line` (1-based).
    #[error("line {line}: {reason}")]
    Syntax {
        /// The line, counting from 1.
        line: usize,
        /// What is wrong there.
        reason: &'static str,
    },
    /// A BIND file lacks a field its algorithm needs.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A BIND file names an algorithm we cannot import (only 8, 10, 13, 15).
    #[error("line {line}: unsupported DNSSEC algorithm {algorithm}")]
    UnsupportedAlgorithm {
        /// The line of the `Algorithm:` field.
        line: usize,
        /// The algorithm as written.
        algorithm: String,
    },
    /// The bytes are not one of the DER structures we read (or the PEM body is not).
    #[error("not a supported private key: {0}")]
    Der(&'static str),
    /// An encrypted PKCS#8 key: decrypt it first (`openssl pkey -in KEY -out PLAIN`).
    #[error("encrypted private keys are not supported; decrypt first (openssl pkey -in KEY -out PLAIN)")]
    Encrypted,
    /// A key type we cannot share (another curve, multi-prime RSA, a key held in an HSM …).
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The key's parts do not fit together (`N != p·q`, a point not on the curve, a public key that differs …).
    #[error("inconsistent key: {0}")]
    Inconsistent(&'static str),
    /// The RSA dealer refused (too small, bad exponent, parameters …).
    #[error("RSA: {0}")]
    Rsa(#[from] rsa::Error),
    /// The P-256 dealer refused.
    #[error("P-256: {0}")]
    P256(#[from] ecdsa::Error),
    /// The Ed25519 dealer refused.
    #[error("Ed25519: {0}")]
    Ed25519(#[from] ed25519::Error),
    /// A bug in this crate.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Parses a key in any of the supported formats: BIND when it starts with `Private-key-format:`, PEM when it is
/// UTF-8 text containing `-----BEGIN `, DER otherwise.
pub fn parse(bytes: &[u8]) -> Result<PrivateKey, ImportError> {
    if bytes.starts_with(b"Private-key-format:") {
        let text = core::str::from_utf8(bytes).map_err(|e| ImportError::Syntax {
            line: 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
            reason: "not UTF-8",
        })?;
        return Ok(parse_bind_private(text)?.key);
    }
    // PEM is text; bytes that are not UTF-8 are DER even if they happen to contain "-----BEGIN ".
    if let Ok(text) = core::str::from_utf8(bytes)
        && text.contains("-----BEGIN ")
    {
        return parse_pem(text);
    }
    parse_der(bytes)
}

/// The shares of an imported key, in the types the nodes store.
#[derive(Debug)]
#[non_exhaustive]
pub enum SplitKey {
    /// Threshold RSA ([`crate::rsa`]); [`rsa::PublicKeySet::is_ordinary`] tells the two kinds apart.
    Rsa {
        /// The public key set.
        public: rsa::PublicKeySet,
        /// Share `i` at index `i − 1`.
        shares: Vec<rsa::KeyShare>,
    },
    /// Threshold ECDSA P-256 ([`crate::ecdsa`]); each share carries the public key and all public shares.
    P256 {
        /// The Feldman commitments of the sharing, the form a DKG produces (what the nodes' key descriptions
        /// carry).
        public: crate::dkg::PublicKeySet<crate::dkg::P256>,
        /// Share `i` at index `i − 1`.
        shares: Vec<ecdsa::KeyShare>,
    },
    /// FROST Ed25519 ([`crate::ed25519`]).
    Ed25519 {
        /// The public key set.
        public: ed25519::PublicKeySet,
        /// Share `i` at index `i − 1`.
        shares: Vec<ed25519::KeyShare>,
    },
}

/// Splits `key` into `k`-of-`n` shares for the signers `1..=n` and drops (zeroizes) it. `options` apply to RSA
/// keys whose primes are not safe ([`rsa::deal_ordinary`]: at least 2048 bits unless allowed, `n <= 16`).
pub fn split(
    key: PrivateKey,
    threshold: u16,
    parties: u16,
    options: &SplitOptions,
    rng: &mut impl CryptoRng,
) -> Result<SplitKey, ImportError> {
    match key {
        PrivateKey::Rsa(k) => {
            let (public, shares) = rsa::split_primes(&k.p, &k.q, k.e, threshold, parties, options, rng)?;
            if public.modulus_bytes() != k.modulus || public.public_exponent() != k.e {
                return Err(ImportError::Inconsistent(
                    "the shared key's public key differs from the original",
                ));
            }
            Ok(SplitKey::Rsa { public, shares })
        }
        PrivateKey::P256(k) => {
            ecdsa::check_params(threshold, parties)?;
            let secret = Zeroizing::new(*k.0.to_nonzero_scalar());
            let ids = (1..=parties).filter_map(SignerId::new);
            let (public, dkg_shares) =
                crate::dkg::dealer::split::<crate::dkg::P256>(&secret, threshold, ids, rng)
                    .map_err(|_| ImportError::Internal("P-256 sharing"))?;
            let shares = dkg_shares
                .iter()
                .map(crate::dkg::KeyShare::to_ecdsa)
                .collect::<Result<Vec<_>, _>>()?;
            let original = k.0.public_key().to_projective();
            if public.public_key() != original || shares.iter().any(|s| s.public_key() != original) {
                return Err(ImportError::Inconsistent(
                    "the shared key's public key differs from the original",
                ));
            }
            Ok(SplitKey::P256 { public, shares })
        }
        PrivateKey::Ed25519(k) => {
            let ids = (1..=parties).filter_map(SignerId::new);
            let (public, shares) = ed25519::split_seed(&k.0, threshold, ids, rng)?;
            Ok(SplitKey::Ed25519 { public, shares })
        }
    }
}

impl PrivateKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Rsa(_) => KeyAlgorithm::Rsa,
            Self::P256(_) => KeyAlgorithm::P256,
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// The public key as a DNSKEY public key field: RFC 3110 §2 for RSA (exponent length, exponent, modulus),
    /// RFC 6605 §4 for P-256 (`x || y`, 64 bytes), RFC 8080 §3 for Ed25519 (32 bytes).
    pub fn dnskey_public_key(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => {
                let e = k.e.to_be_bytes();
                let e = &e[e.iter().position(|&b| b != 0).unwrap_or(7)..];
                let mut out = Vec::with_capacity(1 + e.len() + k.modulus.len());
                // e has at most 8 bytes, so the one-byte length form always applies.
                out.push(e.len() as u8);
                out.extend_from_slice(e);
                out.extend_from_slice(&k.modulus);
                out
            }
            Self::P256(k) => k.public_key_sec1()[1..].to_vec(),
            Self::Ed25519(k) => k.public_key().to_vec(),
        }
    }

    /// The public key as an X.509 `SubjectPublicKeyInfo`, DER (what `openssl pkey -pubout -outform DER` writes).
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, ImportError> {
        use pkcs8::EncodePublicKey as _;
        let bad = |_| ImportError::Inconsistent("public key encoding");
        match self {
            Self::Rsa(k) => {
                let e = k.e.to_be_bytes();
                let e = &e[e.iter().position(|&b| b != 0).unwrap_or(7)..];
                let key = pkcs1::RsaPublicKey {
                    modulus: der::asn1::UintRef::new(&k.modulus).map_err(bad)?,
                    public_exponent: der::asn1::UintRef::new(e).map_err(bad)?,
                };
                let pkcs1 = der::Encode::to_der(&key).map_err(bad)?;
                let spki = spki::SubjectPublicKeyInfoRef {
                    algorithm: pkcs1::ALGORITHM_ID,
                    subject_public_key: der::asn1::BitStringRef::from_bytes(&pkcs1).map_err(bad)?,
                };
                der::Encode::to_der(&spki).map_err(bad)
            }
            Self::P256(k) => Ok(k
                .0
                .public_key()
                .to_public_key_der()
                .map_err(|_| ImportError::Inconsistent("public key encoding"))?
                .into_vec()),
            Self::Ed25519(k) => Ok(ed25519_dalek::SigningKey::from_bytes(&k.0)
                .verifying_key()
                .to_public_key_der()
                .map_err(|_| ImportError::Inconsistent("public key encoding"))?
                .into_vec()),
        }
    }
}

impl RsaPrivateKey {
    /// Builds a key from big-endian `N`, `e`, `p`, `q`: `N` must be `p·q` of `256..=16384` bits, `p`, `q` primes,
    /// `e` at most 64 bits.
    pub fn from_parts(modulus: &[u8], e: &[u8], p: &[u8], q: &[u8]) -> Result<Self, ImportError> {
        let modulus = &modulus[modulus.iter().position(|&b| b != 0).unwrap_or(modulus.len())..];
        let bits = modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(rsa::MIN_MODULUS_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(ImportError::UnsupportedKey("RSA modulus size out of range"));
        }
        // Refuse oversized primes before the (costly) primality tests.
        if p.len() > modulus.len() || q.len() > modulus.len() {
            return Err(ImportError::Inconsistent("a prime is longer than the modulus"));
        }
        let e = rsa::dealer::public_exponent_u64(e)
            .map_err(|_| ImportError::UnsupportedKey("public exponent larger than 64 bits"))?;
        let product = {
            let p = Zeroizing::new(BoxedUint::from_be_slice_vartime(p));
            let q = Zeroizing::new(BoxedUint::from_be_slice_vartime(q));
            let pq = Zeroizing::new(p.concatenating_mul(&*q));
            pq.to_be_bytes_trimmed_vartime()
        };
        if product.as_ref() != modulus {
            return Err(ImportError::Inconsistent(
                "the modulus is not the product of the two primes",
            ));
        }
        let p = Prime::from_be_bytes(p).map_err(|_| ImportError::Inconsistent("prime1 is not a prime"))?;
        let q = Prime::from_be_bytes(q).map_err(|_| ImportError::Inconsistent("prime2 is not a prime"))?;
        Ok(Self {
            modulus: modulus.to_vec(),
            e,
            p,
            q,
        })
    }

    /// `N`, big-endian, no leading zero.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// `e`.
    pub fn public_exponent(&self) -> u64 {
        self.e
    }

    /// Bit length of `N`.
    pub fn bits(&self) -> usize {
        self.modulus.len() * 8 - self.modulus.first().map_or(8, |b| b.leading_zeros() as usize)
    }
}

impl P256PrivateKey {
    /// From the 32-byte big-endian scalar (refuses 0 and values `>= n`).
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, ImportError> {
        if bytes.len() != 32 {
            return Err(ImportError::Inconsistent("P-256 private key is not 32 bytes"));
        }
        p256::SecretKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| ImportError::Inconsistent("P-256 private key out of range"))
    }

    /// The public key, SEC1 uncompressed (`04 || x || y`).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.0.public_key().to_sec1_bytes().into_vec()
    }
}

impl Ed25519PrivateKey {
    /// From the 32-byte RFC 8032 seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self, ImportError> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| ImportError::Inconsistent("Ed25519 private key is not 32 bytes"))?;
        Ok(Self(Zeroizing::new(seed)))
    }

    /// The RFC 8032 public key `A`.
    pub fn public_key(&self) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&self.0)
            .verifying_key()
            .to_bytes()
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.bits())
            .field("e", &self.e)
            .field("primes", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for P256PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P256PrivateKey(<redacted>)")
    }
}

impl fmt::Debug for Ed25519PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519PrivateKey(<redacted>)")
    }
}
