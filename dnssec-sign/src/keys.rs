//! The key interface of the zone signer, and local keys in BIND's `K<name>+<alg>+<tag>` files.
//!
//! # The key interface
//!
//! [`ZoneSigningKey`] is a *batch* signer: the pipeline hands it many messages at once (one per
//! RRset, RFC 4034 §3.1.8.1 "signed data") and gets one DNSSEC-encoded signature per message
//! back, in order. A local key just loops; a threshold key in the cluster or a PKCS#11 session
//! pool can put every request of the batch in flight at once instead of paying one round trip
//! per RRset. The pipeline calls `sign_batch` from several threads at the same time (one batch
//! per thread, split at owner-name boundaries), so implementations must be `Send + Sync`.
//!
//! Signatures are returned in DNSSEC wire form: RSA PKCS#1 v1.5 (RFC 5702 §3), ECDSA P-256 as
//! the raw 64-octet `r‖s` (RFC 6605 §4), Ed25519 as the 64-octet signature (RFC 8080 §4).

use std::fmt;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::name::Name;
use crate::rdata::Dnskey;

/// DNSSEC algorithms this signer supports (RFC 8624 "MUST sign" set plus RSASHA512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// 8: RSA/SHA-256 (RFC 5702).
    RsaSha256,
    /// 10: RSA/SHA-512 (RFC 5702).
    RsaSha512,
    /// 13: ECDSA P-256 with SHA-256 (RFC 6605).
    EcdsaP256Sha256,
    /// 15: Ed25519 (RFC 8080).
    Ed25519,
}

impl Algorithm {
    /// The IANA number.
    pub fn number(self) -> u8 {
        match self {
            Self::RsaSha256 => 8,
            Self::RsaSha512 => 10,
            Self::EcdsaP256Sha256 => 13,
            Self::Ed25519 => 15,
        }
    }

    /// From the IANA number.
    pub fn from_number(n: u8) -> Result<Self, KeyError> {
        match n {
            8 => Ok(Self::RsaSha256),
            10 => Ok(Self::RsaSha512),
            13 => Ok(Self::EcdsaP256Sha256),
            15 => Ok(Self::Ed25519),
            other => Err(KeyError::UnsupportedAlgorithm(other)),
        }
    }

    /// The mnemonic used in key files and by the classic tools.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Self::RsaSha256 => "RSASHA256",
            Self::RsaSha512 => "RSASHA512",
            Self::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Self::Ed25519 => "ED25519",
        }
    }

    /// Parses a number or mnemonic (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if let Ok(n) = s.parse::<u8>() {
            return Self::from_number(n);
        }
        let up = s.to_ascii_uppercase();
        [
            Self::RsaSha256,
            Self::RsaSha512,
            Self::EcdsaP256Sha256,
            Self::Ed25519,
        ]
        .into_iter()
        .find(|a| a.mnemonic() == up)
        .ok_or(KeyError::UnsupportedAlgorithm(0))
    }
}

/// A DNSSEC signing key, whatever holds it (a local file, the threshold cluster, a PKCS#11
/// token). See the module documentation for the contract.
pub trait ZoneSigningKey: Send + Sync {
    /// The zone (DNSKEY owner) this key belongs to.
    fn owner(&self) -> &Name;
    /// The public DNSKEY record data (flags, protocol 3, algorithm, public key).
    fn dnskey(&self) -> &Dnskey;
    /// Signs each message (complete RRSIG signed data), returning one DNSSEC wire signature per
    /// message, in the same order.
    fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError>;
    /// Whether this key wants long `sign_batch` calls: a key that keeps many requests in flight
    /// to a remote signer drains its window at the end of every call, so the pipeline then
    /// hands each signing thread up to eight times [`crate::SignOptions::batch_size`] RRsets
    /// per call (never fewer than that batch size).
    fn long_batches(&self) -> bool {
        false
    }
}

/// Digest type of a DS record (RFC 4509, RFC 6605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsDigest {
    /// 2: SHA-256.
    Sha256,
    /// 4: SHA-384.
    Sha384,
}

impl DsDigest {
    /// IANA number.
    pub fn number(self) -> u8 {
        match self {
            Self::Sha256 => 2,
            Self::Sha384 => 4,
        }
    }
}

/// DS record data for a DNSKEY of `owner` (RFC 4034 §5.1.4).
pub fn ds_rdata(owner: &Name, key: &Dnskey, digest: DsDigest) -> Vec<u8> {
    let kw = key.to_wire();
    let mut input = owner.wire().to_vec();
    input.extend_from_slice(&kw);
    let d: Vec<u8> = match digest {
        DsDigest::Sha256 => Sha256::digest(&input).to_vec(),
        DsDigest::Sha384 => Sha384::digest(&input).to_vec(),
    };
    let mut v = key.key_tag().to_be_bytes().to_vec();
    v.push(key.algorithm);
    v.push(digest.number());
    v.extend_from_slice(&d);
    v
}

/// Verifies a DNSSEC signature with a DNSKEY (independent of how the key was held).
pub fn verify_signature(key: &Dnskey, message: &[u8], signature: &[u8]) -> bool {
    use rsa::signature::Verifier as _;
    match Algorithm::from_number(key.algorithm) {
        Ok(Algorithm::RsaSha256) => rsa_public(&key.public_key).is_some_and(|pk| {
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk);
            rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
        }),
        Ok(Algorithm::RsaSha512) => rsa_public(&key.public_key).is_some_and(|pk| {
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha512>::new(pk);
            rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
        }),
        Ok(Algorithm::EcdsaP256Sha256) => {
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&key.public_key);
            let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) else {
                return false;
            };
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| vk.verify(message, &s).is_ok())
        }
        Ok(Algorithm::Ed25519) => {
            let (Ok(pk), Ok(sig)) = (
                <[u8; 32]>::try_from(key.public_key.as_slice()),
                <[u8; 64]>::try_from(signature),
            ) else {
                return false;
            };
            ed25519_dalek::VerifyingKey::from_bytes(&pk).is_ok_and(|vk| {
                vk.verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_ok()
            })
        }
        Err(_) => false,
    }
}

/// RSA public key from RFC 3110 encoding.
fn rsa_public(b: &[u8]) -> Option<rsa::PublicKey> {
    let (elen, rest) = match b.first()? {
        0 => (u16::from_be_bytes([*b.get(1)?, *b.get(2)?]) as usize, b.get(3..)?),
        n => (*n as usize, b.get(1..)?),
    };
    let e = rest.get(..elen)?;
    let n = rest.get(elen..)?;
    if n.is_empty() {
        return None;
    }
    let n = rsa::BoxedUint::from_be_slice_vartime(n);
    let e = rsa::BoxedUint::from_be_slice_vartime(e);
    rsa::PublicKey::new(n, e).ok()
}

/// RFC 3110 encoding of an RSA public key.
pub(crate) fn rsa_dnskey_bytes(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + n.len() + e.len());
    if e.len() < 256 {
        v.push(e.len() as u8);
    } else {
        v.push(0);
        v.extend_from_slice(&(e.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(e);
    v.extend_from_slice(n);
    v
}

enum Secret {
    RsaSha256(rsa::pkcs1v15::SigningKey<Sha256>),
    RsaSha512(rsa::pkcs1v15::SigningKey<Sha512>),
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key held in this process, read from or written to BIND key files.
pub struct LocalKey {
    owner: Name,
    dnskey: Dnskey,
    secret: Secret,
    rsa: Option<rsa::PrivateKey>,
    /// The same key in an assembly-backed library, which signs: RSA in OpenSSL's libcrypto
    /// (the library `ldns-signzone` and BIND sign with), P-256 in `ring`; `None` where the
    /// library refuses the key, then the pure-Rust crates sign.
    native: Option<NativeKey>,
}

/// A key in the form of the library that signs with it.
enum NativeKey {
    Rsa(openssl::pkey::PKey<openssl::pkey::Private>),
    P256(Box<ring::signature::EcdsaKeyPair>),
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey")
            .field("owner", &self.owner)
            .field("key_tag", &self.dnskey.key_tag())
            .field("algorithm", &self.dnskey.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The RSA key in OpenSSL's libcrypto (CRT with the `rsa` crate's `p`, `q`, `dP`, `dQ` and
/// `qInv = q^-1 mod p`, as PKCS#1 orders them).
fn openssl_rsa(k: &rsa::PrivateKey) -> Option<NativeKey> {
    use openssl::bn::BigNum;
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
    // BigNum copies the bytes; the secret copies here are wiped on drop
    let bn = |v: &[u8]| BigNum::from_slice(v).ok();
    let secret = |v: Box<[u8]>| Zeroizing::new(v.into_vec());
    let d = secret(k.d().to_be_bytes());
    let p = secret(k.p()?.modulus().as_ref().to_be_bytes());
    let q = secret(k.q()?.modulus().as_ref().to_be_bytes());
    let dp = secret(k.dp()?.to_be_bytes());
    let dq = secret(k.dq()?.to_be_bytes());
    let qinv = secret(k.qinv()?.retrieve().to_be_bytes());
    let rsa = openssl::rsa::Rsa::from_private_components(
        bn(&k.n_bytes())?,
        bn(&k.e_bytes())?,
        bn(&d)?,
        bn(&p)?,
        bn(&q)?,
        bn(&dp)?,
        bn(&dq)?,
        bn(&qinv)?,
    )
    .ok()?;
    openssl::pkey::PKey::from_rsa(rsa).ok().map(NativeKey::Rsa)
}

/// The P-256 key in `ring` (signatures come out as the fixed 64-octet `r‖s` of RFC 6605).
fn ring_p256(k: &p256::ecdsa::SigningKey) -> Option<NativeKey> {
    let scalar = Zeroizing::new(k.to_bytes().to_vec());
    let point = k.verifying_key().to_sec1_point(false);
    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &scalar,
        point.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .ok()
    .map(|k| NativeKey::P256(Box::new(k)))
}

/// DNSKEY flags of a zone key (256) or a key-signing key (257, SEP bit).
pub fn dnskey_flags(ksk: bool) -> u16 {
    if ksk { 257 } else { 256 }
}

impl LocalKey {
    /// Generates a key. `rsa_bits` is used for RSA algorithms only (2048 or more advised).
    pub fn generate<R: CryptoRng + ?Sized>(
        owner: &Name,
        algorithm: Algorithm,
        ksk: bool,
        rsa_bits: usize,
        rng: &mut R,
    ) -> Result<Self, KeyError> {
        let flags = dnskey_flags(ksk);
        match algorithm {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                if !(1024..=4096).contains(&rsa_bits) {
                    return Err(KeyError::Generation(format!(
                        "RSA size {rsa_bits} not in 1024..=4096"
                    )));
                }
                let k =
                    rsa::PrivateKey::new(rng, rsa_bits).map_err(|e| KeyError::Generation(e.to_string()))?;
                Self::from_rsa(owner.clone(), algorithm, flags, k)
            }
            Algorithm::EcdsaP256Sha256 => loop {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                    return Ok(Self::from_p256(owner.clone(), flags, k));
                }
            },
            Algorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                Ok(Self::from_ed25519(
                    owner.clone(),
                    flags,
                    ed25519_dalek::SigningKey::from_bytes(&seed),
                ))
            }
        }
    }

    fn from_rsa(owner: Name, algorithm: Algorithm, flags: u16, k: rsa::PrivateKey) -> Result<Self, KeyError> {
        use rsa::traits::PublicKeyParts as _;
        let public_key = rsa_dnskey_bytes(&k.n_bytes(), &k.e_bytes());
        let secret = match algorithm {
            Algorithm::RsaSha256 => Secret::RsaSha256(rsa::pkcs1v15::SigningKey::new(k.clone())),
            Algorithm::RsaSha512 => Secret::RsaSha512(rsa::pkcs1v15::SigningKey::new(k.clone())),
            other => return Err(KeyError::UnsupportedAlgorithm(other.number())),
        };
        Ok(Self {
            owner,
            dnskey: Dnskey {
                flags,
                protocol: 3,
                algorithm: algorithm.number(),
                public_key,
            },
            secret,
            native: openssl_rsa(&k),
            rsa: Some(k),
        })
    }

    fn from_p256(owner: Name, flags: u16, k: p256::ecdsa::SigningKey) -> Self {
        let sec1 = k.verifying_key().to_sec1_bytes();
        let public_key = sec1.get(1..).unwrap_or_default().to_vec();
        Self {
            owner,
            dnskey: Dnskey {
                flags,
                protocol: 3,
                algorithm: 13,
                public_key,
            },
            native: ring_p256(&k),
            secret: Secret::P256(k),
            rsa: None,
        }
    }

    fn from_ed25519(owner: Name, flags: u16, k: ed25519_dalek::SigningKey) -> Self {
        let public_key = k.verifying_key().to_bytes().to_vec();
        Self {
            owner,
            dnskey: Dnskey {
                flags,
                protocol: 3,
                algorithm: 15,
                public_key,
            },
            secret: Secret::Ed25519(k),
            rsa: None,
            native: None,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.secret {
            Secret::RsaSha256(_) => Algorithm::RsaSha256,
            Secret::RsaSha512(_) => Algorithm::RsaSha512,
            Secret::P256(_) => Algorithm::EcdsaP256Sha256,
            Secret::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// BIND file base name `K<name>+<alg>+<tag>` (without extension).
    pub fn base_name(&self) -> String {
        format!(
            "K{}+{:03}+{:05}",
            self.owner,
            self.dnskey.algorithm,
            self.dnskey.key_tag()
        )
    }

    /// Signs one message: RSA through OpenSSL, ECDSA P-256 through `ring`, Ed25519 through
    /// `ed25519-dalek`. ECDSA nonces are random (from the operating system, hedged with the key
    /// and message by ring), so ECDSA signatures differ from run to run; RSA PKCS#1 v1.5 is
    /// deterministic.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signed = match (&self.native, &self.secret) {
            (Some(NativeKey::Rsa(k)), Secret::RsaSha256(_) | Secret::RsaSha512(_)) => {
                let md = match self.secret {
                    Secret::RsaSha512(_) => openssl::hash::MessageDigest::sha512(),
                    _ => openssl::hash::MessageDigest::sha256(),
                };
                openssl::sign::Signer::new(md, k)
                    .and_then(|mut s| s.sign_oneshot_to_vec(message))
                    .ok()
            }
            (Some(NativeKey::P256(k)), _) => k
                .sign(&ring::rand::SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            _ => None,
        };
        // the libraries fail only on a broken system (RNG, allocation); the pure-Rust crates
        // still sign then
        signed.unwrap_or_else(|| self.sign_with_crates(message))
    }

    /// Signs one message with the pure-Rust `rsa`, `p256` (RFC 6979 nonces) or `ed25519-dalek`
    /// crate: the path for keys that OpenSSL or ring refuse, the reference that the tests
    /// compare OpenSSL's RSA signatures with byte for byte, and what `benches/zone_signing.rs`
    /// times the native libraries against.
    pub fn sign_with_crates(&self, message: &[u8]) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        match &self.secret {
            Secret::RsaSha256(k) => k.sign(message).to_vec(),
            Secret::RsaSha512(k) => k.sign(message).to_vec(),
            Secret::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_bytes().to_vec()
            }
            Secret::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    /// Writes `<dir>/K<name>+<alg>+<tag>.key` and `.private` (mode 0600); returns the base path.
    pub fn write_files(&self, dir: &Path) -> Result<PathBuf, KeyError> {
        let base = dir.join(self.base_name());
        // not `with_extension`: the base name contains dots
        let key_path = PathBuf::from(format!("{}.key", base.display()));
        let priv_path = PathBuf::from(format!("{}.private", base.display()));
        let key_text = format!(
            "; This is a {} key, keyid {}, for {}\n{} IN DNSKEY {} 3 {} {}\n",
            if self.dnskey.is_sep() {
                "key-signing"
            } else {
                "zone-signing"
            },
            self.dnskey.key_tag(),
            self.owner,
            self.owner,
            self.dnskey.flags,
            self.dnskey.algorithm,
            BASE64.encode(&self.dnskey.public_key)
        );
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |source| KeyError::Io { file, source }
        };
        std::fs::write(&key_path, key_text).map_err(io(&key_path))?;
        let private = self.private_file_text()?;
        write_private(&priv_path, private.as_bytes()).map_err(io(&priv_path))?;
        Ok(base)
    }

    fn private_file_text(&self) -> Result<Zeroizing<String>, KeyError> {
        use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
        let alg = self.algorithm();
        let mut s = Zeroizing::new(format!(
            "Private-key-format: v1.3\nAlgorithm: {} ({})\n",
            alg.number(),
            alg.mnemonic()
        ));
        let b64 = |b: &[u8]| BASE64.encode(b);
        match (&self.secret, &self.rsa) {
            (Secret::RsaSha256(_) | Secret::RsaSha512(_), Some(k)) => {
                let missing = || KeyError::Generation("RSA key without CRT values".into());
                let p = k.p().ok_or_else(missing)?;
                let q = k.q().ok_or_else(missing)?;
                let dp = k.dp().ok_or_else(missing)?;
                let dq = k.dq().ok_or_else(missing)?;
                let qinv = k.qinv().ok_or_else(missing)?.retrieve();
                let trim = |v: Box<[u8]>| {
                    let first = v
                        .iter()
                        .position(|b| *b != 0)
                        .unwrap_or(v.len().saturating_sub(1));
                    Zeroizing::new(v[first..].to_vec())
                };
                let fields: [(&str, Zeroizing<Vec<u8>>); 8] = [
                    ("Modulus", Zeroizing::new(k.n_bytes().to_vec())),
                    ("PublicExponent", Zeroizing::new(k.e_bytes().to_vec())),
                    ("PrivateExponent", trim(k.d().to_be_bytes())),
                    ("Prime1", trim(p.modulus().as_ref().to_be_bytes())),
                    ("Prime2", trim(q.modulus().as_ref().to_be_bytes())),
                    ("Exponent1", trim(dp.to_be_bytes())),
                    ("Exponent2", trim(dq.to_be_bytes())),
                    ("Coefficient", trim(qinv.to_be_bytes())),
                ];
                for (name, v) in fields.iter() {
                    s.push_str(&format!("{name}: {}\n", b64(v)));
                }
            }
            (Secret::P256(k), _) => {
                let b = Zeroizing::new(k.to_bytes().to_vec());
                s.push_str(&format!("PrivateKey: {}\n", b64(&b)));
            }
            (Secret::Ed25519(k), _) => {
                let b = Zeroizing::new(k.to_bytes().to_vec());
                s.push_str(&format!("PrivateKey: {}\n", b64(&b)));
            }
            _ => return Err(KeyError::Generation("inconsistent key state".into())),
        }
        Ok(s)
    }

    /// Reads a key pair from `K<name>+<alg>+<tag>` (with or without `.key`/`.private`).
    pub fn read_files(path: &Path) -> Result<Self, KeyError> {
        let s = path.to_string_lossy();
        let base = s
            .strip_suffix(".key")
            .or_else(|| s.strip_suffix(".private"))
            .unwrap_or(&s);
        let key_path = PathBuf::from(format!("{base}.key"));
        let priv_path = PathBuf::from(format!("{base}.private"));
        let bad = |file: &Path, m: String| KeyError::BadKeyFile {
            file: file.to_path_buf(),
            message: m,
        };
        let key_text = std::fs::read_to_string(&key_path).map_err(|source| KeyError::Io {
            file: key_path.clone(),
            source,
        })?;
        // BIND writes .key files without a TTL
        let zone =
            crate::zonefile::parse_zone(format!("$TTL 3600\n{key_text}"), &key_path, Some(&Name::root()))
                .map_err(|e| bad(&key_path, e.to_string()))?;
        let rec = zone
            .records
            .iter()
            .find(|r| r.rtype == crate::rdata::rtype::DNSKEY)
            .ok_or_else(|| bad(&key_path, "no DNSKEY record".into()))?;
        let dnskey = Dnskey::from_wire(&rec.rdata).map_err(|e| bad(&key_path, e.to_string()))?;
        let owner = rec.owner.clone();
        let text = Zeroizing::new(
            std::fs::read_to_string(&priv_path).map_err(|source| KeyError::Io {
                file: priv_path.clone(),
                source,
            })?,
        );
        let field = |name: &str| -> Result<Zeroizing<Vec<u8>>, KeyError> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .ok_or_else(|| bad(&priv_path, format!("missing field {name}")))?;
            BASE64
                .decode(line.trim().as_bytes())
                .map(Zeroizing::new)
                .map_err(|e| bad(&priv_path, format!("{name}: {e}")))
        };
        let alg_line = text
            .lines()
            .find_map(|l| l.strip_prefix("Algorithm:"))
            .ok_or_else(|| bad(&priv_path, "missing Algorithm".into()))?;
        let alg_num: u8 = alg_line
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(&priv_path, "bad Algorithm".into()))?;
        if alg_num != dnskey.algorithm {
            return Err(bad(&priv_path, "algorithm differs from the .key file".into()));
        }
        let alg = Algorithm::from_number(alg_num)?;
        let key = match alg {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                let u = |v: &[u8]| rsa::BoxedUint::from_be_slice_vartime(v);
                let n = field("Modulus")?;
                let k = rsa::PrivateKey::from_components(
                    u(&n),
                    u(&field("PublicExponent")?),
                    u(&field("PrivateExponent")?),
                    vec![u(&field("Prime1")?), u(&field("Prime2")?)],
                )
                .map_err(|e| bad(&priv_path, format!("RSA key: {e}")))?;
                Self::from_rsa(owner, alg, dnskey.flags, k)?
            }
            Algorithm::EcdsaP256Sha256 => {
                let b = field("PrivateKey")?;
                let k = p256::ecdsa::SigningKey::from_slice(&b)
                    .map_err(|_| bad(&priv_path, "bad P-256 private key".into()))?;
                Self::from_p256(owner, dnskey.flags, k)
            }
            Algorithm::Ed25519 => {
                let b = field("PrivateKey")?;
                let arr: [u8; 32] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad(&priv_path, "Ed25519 private key must be 32 octets".into()))?;
                Self::from_ed25519(owner, dnskey.flags, ed25519_dalek::SigningKey::from_bytes(&arr))
            }
        };
        if key.dnskey != dnskey {
            return Err(bad(
                &priv_path,
                "private key does not match the public key in .key".into(),
            ));
        }
        Ok(key)
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

impl ZoneSigningKey for LocalKey {
    fn owner(&self) -> &Name {
        &self.owner
    }
    fn dnskey(&self) -> &Dnskey {
        &self.dnskey
    }
    fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError> {
        Ok(messages.iter().map(|m| self.sign(m)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_rsa_signatures_equal_the_rsa_crate_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys");
        let mut seen = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "key") {
                continue;
            }
            let k = LocalKey::read_files(&p).unwrap();
            if !matches!(k.algorithm(), Algorithm::RsaSha256 | Algorithm::RsaSha512) {
                continue;
            }
            assert!(
                matches!(k.native, Some(NativeKey::Rsa(_))),
                "OpenSSL takes the RSA keys"
            );
            for i in 0..5u8 {
                let m = vec![i; 100 + i as usize];
                let reference = k.sign_with_crates(&m);
                assert_eq!(k.sign(&m), reference);
                assert_eq!(
                    k.sign_batch(std::slice::from_ref(&m)).unwrap(),
                    vec![reference.clone()]
                );
                assert!(verify_signature(k.dnskey(), &m, &reference));
            }
            seen += 1;
        }
        assert_eq!(seen, 4);
    }

    #[test]
    fn openssl_signs_with_either_prime_order() {
        use rsa::traits::PrivateKeyParts as _;
        let owner = Name::parse("example.", None).unwrap();
        let mut rng = rand::rng();
        let mut orders = [false, false];
        while orders != [true, true] {
            let k = LocalKey::generate(&owner, Algorithm::RsaSha256, false, 2048, &mut rng).unwrap();
            let [p, q] = k.rsa.as_ref().unwrap().primes() else {
                panic!("two primes")
            };
            orders[usize::from(p.as_ref() < q.as_ref())] = true;
            assert!(matches!(k.native, Some(NativeKey::Rsa(_))));
            let m = b"either prime order";
            assert_eq!(k.sign(m), k.sign_with_crates(m));
        }
    }

    #[test]
    fn ring_ecdsa_signatures_are_raw_r_and_s_that_p256_verifies() {
        let owner = Name::parse("example.", None).unwrap();
        let key = LocalKey::generate(&owner, Algorithm::EcdsaP256Sha256, false, 0, &mut rand::rng()).unwrap();
        assert!(matches!(key.native, Some(NativeKey::P256(_))));
        let msgs: Vec<Vec<u8>> = (0..50u32).map(|i| format!("message {i}").into_bytes()).collect();
        for (m, s) in msgs.iter().zip(key.sign_batch(&msgs).unwrap()) {
            assert_eq!(s.len(), 64);
            assert!(verify_signature(key.dnskey(), m, &s));
            assert!(!verify_signature(key.dnskey(), b"another message", &s));
        }
        let reference = key.sign_with_crates(&msgs[0]);
        assert!(verify_signature(key.dnskey(), &msgs[0], &reference));
    }
}
