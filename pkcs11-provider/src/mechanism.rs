//! Mechanisms (PKCS#11 v3.0 current mechanisms §2.1 RSA, §2.3 ECDSA, §2.3.14 EdDSA, §2.16 SHA): the table
//! behind `C_GetMechanismList`/`C_GetMechanismInfo`, digest state, the mapping from a signing mechanism and the
//! caller's data to a backend [`SignRequest`], and local verification with independent crates.

use cryptoki_sys::*;
use sha2::Digest as _;
use tcrypto::HashAlg;

use crate::backend::{Capabilities, PublicKey, SignRequest};
use crate::error::{Error, Result};

/// A mechanism as passed by the caller, with its parameter already decoded by the ABI layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    /// `CKM_*`.
    pub ty: CK_MECHANISM_TYPE,
    /// Decoded parameter.
    pub param: MechParam,
}

/// Mechanism parameters this module understands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MechParam {
    /// No parameter.
    None,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        /// `hashAlg`.
        hash_alg: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `sLen`.
        salt_len: CK_ULONG,
    },
    /// `CK_EDDSA_PARAMS`.
    EdDsa {
        /// `phFlag`.
        prehash: bool,
        /// Context bytes.
        context: Vec<u8>,
    },
    /// A parameter of a shape this module does not interpret.
    Other(Vec<u8>),
}

/// A signing scheme: what happens to the data before the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignScheme {
    /// `CKM_RSA_PKCS`: data is a DigestInfo.
    RsaPkcs,
    /// `CKM_SHAx_RSA_PKCS`.
    RsaPkcsHash(HashAlg),
    /// `CKM_RSA_PKCS_PSS` (data is a digest) or `CKM_SHAx_RSA_PKCS_PSS` (`hashes_data`).
    RsaPss {
        /// Hash (and MGF1 hash).
        hash: HashAlg,
        /// Salt length.
        salt_len: usize,
        /// Whether the module hashes the data first.
        hashes_data: bool,
    },
    /// `CKM_ECDSA` (data is a hash) or `CKM_ECDSA_SHAx`.
    Ecdsa(Option<HashAlg>),
    /// `CKM_EDDSA`, pure Ed25519.
    EdDsa,
}

/// The key type a mechanism needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// RSA.
    Rsa,
    /// P-256.
    P256,
    /// Ed25519.
    Ed25519,
}

impl SignScheme {
    /// Parses a signing mechanism.
    pub fn from_mechanism(m: &Mechanism) -> Result<Self> {
        let hash_of = |mech| match mech {
            CKM_SHA_1 => Ok(HashAlg::Sha1),
            CKM_SHA224 => Ok(HashAlg::Sha224),
            CKM_SHA256 => Ok(HashAlg::Sha256),
            CKM_SHA384 => Ok(HashAlg::Sha384),
            CKM_SHA512 => Ok(HashAlg::Sha512),
            _ => Err(Error::MechanismParamInvalid("unsupported PSS hash")),
        };
        let pss = |fixed: Option<HashAlg>| -> Result<SignScheme> {
            let MechParam::Pss {
                hash_alg,
                mgf,
                salt_len,
            } = m.param
            else {
                return Err(Error::MechanismParamInvalid("PSS needs CK_RSA_PKCS_PSS_PARAMS"));
            };
            let hash = hash_of(hash_alg)?;
            if fixed.is_some_and(|f| f != hash) {
                return Err(Error::MechanismParamInvalid(
                    "PSS hashAlg differs from the mechanism's hash",
                ));
            }
            if mgf != mgf_of(hash) {
                return Err(Error::MechanismParamInvalid("MGF1 hash must equal the PSS hash"));
            }
            let salt_len =
                usize::try_from(salt_len).map_err(|_| Error::MechanismParamInvalid("PSS salt length"))?;
            Ok(SignScheme::RsaPss {
                hash,
                salt_len,
                hashes_data: fixed.is_some(),
            })
        };
        let no_param = |s: SignScheme| match m.param {
            MechParam::None => Ok(s),
            _ => Err(Error::MechanismParamInvalid("mechanism takes no parameter")),
        };
        match m.ty {
            CKM_RSA_PKCS => no_param(SignScheme::RsaPkcs),
            CKM_SHA1_RSA_PKCS => no_param(SignScheme::RsaPkcsHash(HashAlg::Sha1)),
            CKM_SHA224_RSA_PKCS => no_param(SignScheme::RsaPkcsHash(HashAlg::Sha224)),
            CKM_SHA256_RSA_PKCS => no_param(SignScheme::RsaPkcsHash(HashAlg::Sha256)),
            CKM_SHA384_RSA_PKCS => no_param(SignScheme::RsaPkcsHash(HashAlg::Sha384)),
            CKM_SHA512_RSA_PKCS => no_param(SignScheme::RsaPkcsHash(HashAlg::Sha512)),
            CKM_RSA_PKCS_PSS => pss(None),
            CKM_SHA256_RSA_PKCS_PSS => pss(Some(HashAlg::Sha256)),
            CKM_SHA384_RSA_PKCS_PSS => pss(Some(HashAlg::Sha384)),
            CKM_SHA512_RSA_PKCS_PSS => pss(Some(HashAlg::Sha512)),
            CKM_ECDSA => no_param(SignScheme::Ecdsa(None)),
            CKM_ECDSA_SHA256 => no_param(SignScheme::Ecdsa(Some(HashAlg::Sha256))),
            CKM_ECDSA_SHA384 => no_param(SignScheme::Ecdsa(Some(HashAlg::Sha384))),
            CKM_ECDSA_SHA512 => no_param(SignScheme::Ecdsa(Some(HashAlg::Sha512))),
            CKM_EDDSA => match &m.param {
                MechParam::None => Ok(SignScheme::EdDsa),
                MechParam::EdDsa {
                    prehash: false,
                    context,
                } if context.is_empty() => Ok(SignScheme::EdDsa),
                _ => Err(Error::MechanismParamInvalid("only pure Ed25519 without context")),
            },
            _ => Err(Error::MechanismInvalid),
        }
    }

    /// Whether the backend is sent the data (hashing mechanisms and EdDSA) rather than a digest.
    pub fn sends_data(&self) -> bool {
        match self {
            SignScheme::RsaPkcs | SignScheme::Ecdsa(None) => false,
            SignScheme::RsaPss { hashes_data, .. } => *hashes_data,
            SignScheme::RsaPkcsHash(_) | SignScheme::Ecdsa(Some(_)) | SignScheme::EdDsa => true,
        }
    }

    /// The key family the scheme signs with.
    pub fn family(&self) -> KeyFamily {
        match self {
            SignScheme::RsaPkcs | SignScheme::RsaPkcsHash(_) | SignScheme::RsaPss { .. } => KeyFamily::Rsa,
            SignScheme::Ecdsa(_) => KeyFamily::P256,
            SignScheme::EdDsa => KeyFamily::Ed25519,
        }
    }

    /// Builds the backend request from the whole data (after any multi-part accumulation).
    pub fn request(&self, data: &[u8], public: &PublicKey) -> Result<SignRequest> {
        match self {
            SignScheme::RsaPkcs => {
                if data.len() + 11 > signature_len(public) {
                    return Err(Error::DataLenRange);
                }
                // Raw PKCS#1 v1.5 blocks over anything else are not signed: the nodes build every encoding
                // themselves and sign only a DigestInfo, so a host can never obtain a signature over a chosen
                // padded block (a decryption-oracle-shaped primitive). CKR_DATA_INVALID says which.
                tcrypto::rsa::encoding::check_digest_info(data).map_err(|_| Error::DataInvalid)?;
                Ok(SignRequest::RsaPkcs1DigestInfo {
                    digest_info: data.to_vec(),
                })
            }
            SignScheme::RsaPkcsHash(h) => Ok(with_data(
                data,
                *h,
                SignRequest::RsaPkcs1 {
                    hash: *h,
                    digest: h.digest(data),
                },
            )),
            SignScheme::RsaPss {
                hash,
                salt_len,
                hashes_data,
            } => {
                let digest = if *hashes_data {
                    hash.digest(data)
                } else {
                    data.to_vec()
                };
                if digest.len() != hash.output_len() {
                    return Err(Error::DataLenRange);
                }
                // RFC 8017 §9.1.1: emLen >= hLen + sLen + 2.
                if hash.output_len() + salt_len + 2 > signature_len(public) {
                    return Err(Error::MechanismParamInvalid("PSS salt too long for the key"));
                }
                let mut salt = vec![0u8; *salt_len];
                getrandom::fill(&mut salt).map_err(|_| Error::Random)?;
                let signed = SignRequest::RsaPss {
                    hash: *hash,
                    digest,
                    salt,
                };
                Ok(if *hashes_data {
                    with_data(data, *hash, signed)
                } else {
                    signed
                })
            }
            SignScheme::Ecdsa(Some(h)) => Ok(with_data(
                data,
                *h,
                SignRequest::Ecdsa {
                    prehash: h.digest(data),
                },
            )),
            SignScheme::Ecdsa(None) => Ok(SignRequest::Ecdsa {
                prehash: ecdsa_hash_value(data)?,
            }),
            SignScheme::EdDsa => Ok(SignRequest::Ed25519 {
                message: data.to_vec(),
            }),
        }
    }
}

/// A hashing mechanism's request: the data itself, for signers that hash it (and judge it) themselves, with the
/// digest form `signed`.
fn with_data(data: &[u8], hash: HashAlg, signed: SignRequest) -> SignRequest {
    SignRequest::WithData {
        data: data.to_vec(),
        hash,
        signed: Box::new(signed),
    }
}

/// The hash value a signer gets for `CKM_ECDSA` data (PKCS#11 v3.0 §2.3.6: the input is a raw hash of any length,
/// truncated internally). The signers take `bits2int(h) mod n` (SEC 1 §4.1.3 step 5, FIPS 186-5 §6.4.1): the
/// leftmost 256 bits of a longer hash, the integer value of a shorter one, and accept hashes of 16 to 64 bytes as
/// they are (SHA-1 to SHA-512). A longer input is cut to its leftmost 32 bytes and a shorter one left-padded with
/// zeros to 32 bytes: both give the same integer, so the signature is the one the rule defines for the input as
/// given. An empty input is refused.
pub fn ecdsa_hash_value(data: &[u8]) -> Result<Vec<u8>> {
    const FIELD: usize = 32;
    match data.len() {
        0 => Err(Error::DataLenRange),
        16..=64 => Ok(data.to_vec()),
        n if n > 64 => Ok(data[..FIELD].to_vec()),
        n => {
            let mut padded = vec![0u8; FIELD];
            padded[FIELD - n..].copy_from_slice(data);
            Ok(padded)
        }
    }
}

/// The `CKG_MGF1_*` that goes with a hash.
pub fn mgf_of(h: HashAlg) -> CK_RSA_PKCS_MGF_TYPE {
    match h {
        HashAlg::Sha1 => CKG_MGF1_SHA1,
        HashAlg::Sha224 => CKG_MGF1_SHA224,
        HashAlg::Sha256 => CKG_MGF1_SHA256,
        HashAlg::Sha384 => CKG_MGF1_SHA384,
        _ => CKG_MGF1_SHA512,
    }
}

/// Signature length of a public key, known locally (so `C_Sign` with a NULL buffer needs no network round).
pub fn signature_len(public: &PublicKey) -> usize {
    match public {
        PublicKey::Rsa { modulus, .. } => crate::object::modulus_bits(modulus).div_ceil(8),
        PublicKey::P256 { .. } | PublicKey::Ed25519 { .. } => 64,
    }
}

/// The key family of a public key.
pub fn family_of(public: &PublicKey) -> KeyFamily {
    match public {
        PublicKey::Rsa { .. } => KeyFamily::Rsa,
        PublicKey::P256 { .. } => KeyFamily::P256,
        PublicKey::Ed25519 { .. } => KeyFamily::Ed25519,
    }
}

fn rsa_key(modulus: &[u8], e: &[u8]) -> Result<rsa::PublicKey> {
    let bits = u32::try_from(modulus.len() * 8).map_err(|_| Error::KeyHandleInvalid)?;
    let n = rsa::BoxedUint::from_be_slice(modulus, bits).map_err(|_| Error::KeyHandleInvalid)?;
    let ebits = u32::try_from(e.len().max(1) * 8).map_err(|_| Error::KeyHandleInvalid)?;
    let e = rsa::BoxedUint::from_be_slice(e, ebits).map_err(|_| Error::KeyHandleInvalid)?;
    rsa::PublicKey::new(n, e).map_err(|_| Error::KeyHandleInvalid)
}

fn pkcs1v15_scheme(h: HashAlg) -> rsa::Pkcs1v15Sign {
    match h {
        HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
        HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        _ => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

fn pss_verify(pk: &rsa::PublicKey, h: HashAlg, salt: usize, digest: &[u8], sig: &[u8]) -> rsa::Result<()> {
    match h {
        HashAlg::Sha1 => pk.verify(rsa::Pss::<sha1::Sha1>::new_with_salt(salt), digest, sig),
        HashAlg::Sha224 => pk.verify(rsa::Pss::<sha2::Sha224>::new_with_salt(salt), digest, sig),
        HashAlg::Sha256 => pk.verify(rsa::Pss::<sha2::Sha256>::new_with_salt(salt), digest, sig),
        HashAlg::Sha384 => pk.verify(rsa::Pss::<sha2::Sha384>::new_with_salt(salt), digest, sig),
        _ => pk.verify(rsa::Pss::<sha2::Sha512>::new_with_salt(salt), digest, sig),
    }
}

/// Verifies `sig` over `data` with the independent `rsa`/`p256`/`ed25519-dalek` implementations. Used by
/// `C_Verify` and, before release, on every signature the backend returns.
pub fn verify(scheme: &SignScheme, public: &PublicKey, data: &[u8], sig: &[u8]) -> Result<()> {
    if sig.len() != signature_len(public) {
        return Err(Error::SignatureLenRange);
    }
    let bad = |_| Error::SignatureInvalid;
    match (scheme, public) {
        (
            SignScheme::RsaPkcs,
            PublicKey::Rsa {
                modulus,
                public_exponent,
            },
        ) => rsa_key(modulus, public_exponent)?
            .verify(rsa::Pkcs1v15Sign::new_unprefixed(), data, sig)
            .map_err(bad),
        (
            SignScheme::RsaPkcsHash(h),
            PublicKey::Rsa {
                modulus,
                public_exponent,
            },
        ) => rsa_key(modulus, public_exponent)?
            .verify(pkcs1v15_scheme(*h), &h.digest(data), sig)
            .map_err(bad),
        (
            SignScheme::RsaPss {
                hash,
                salt_len,
                hashes_data,
            },
            PublicKey::Rsa {
                modulus,
                public_exponent,
            },
        ) => {
            let digest = if *hashes_data {
                hash.digest(data)
            } else {
                data.to_vec()
            };
            if digest.len() != hash.output_len() {
                return Err(Error::DataLenRange);
            }
            pss_verify(
                &rsa_key(modulus, public_exponent)?,
                *hash,
                *salt_len,
                &digest,
                sig,
            )
            .map_err(bad)
        }
        (SignScheme::Ecdsa(h), PublicKey::P256 { sec1_uncompressed }) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1_uncompressed)
                .map_err(|_| Error::KeyHandleInvalid)?;
            let s = p256::ecdsa::Signature::from_slice(sig).map_err(|_| Error::SignatureInvalid)?;
            let prehash = match h {
                Some(h) => h.digest(data),
                None => ecdsa_hash_value(data)?,
            };
            vk.verify_prehash(&prehash, &s)
                .map_err(|_| Error::SignatureInvalid)
        }
        (SignScheme::EdDsa, PublicKey::Ed25519 { point }) => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(point).map_err(|_| Error::KeyHandleInvalid)?;
            let s: [u8; 64] = sig.try_into().map_err(|_| Error::SignatureLenRange)?;
            vk.verify_strict(data, &ed25519_dalek::Signature::from_bytes(&s))
                .map_err(|_| Error::SignatureInvalid)
        }
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// DER SubjectPublicKeyInfo (`CKA_PUBLIC_KEY_INFO`) of a public key.
pub fn public_key_info(public: &PublicKey) -> Result<Vec<u8>> {
    let fail = |_| Error::AttributeValueInvalid("public key");
    match public {
        PublicKey::Rsa {
            modulus,
            public_exponent,
        } => {
            use rsa::pkcs8::EncodePublicKey as _;
            let k = rsa_key(modulus, public_exponent)?;
            Ok(k.to_public_key_der().map_err(fail)?.into_vec())
        }
        PublicKey::P256 { sec1_uncompressed } => {
            use p256::pkcs8::EncodePublicKey as _;
            let k = p256::PublicKey::from_sec1_bytes(sec1_uncompressed)
                .map_err(|_| Error::AttributeValueInvalid("P-256 point"))?;
            Ok(k.to_public_key_der().map_err(fail)?.into_vec())
        }
        PublicKey::Ed25519 { point } => {
            use ed25519_dalek::pkcs8::EncodePublicKey as _;
            let k = ed25519_dalek::VerifyingKey::from_bytes(point)
                .map_err(|_| Error::AttributeValueInvalid("Ed25519 point"))?;
            Ok(k.to_public_key_der().map_err(fail)?.into_vec())
        }
    }
}

/// Incremental digest state of `C_DigestInit`/`C_DigestUpdate`.
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-224.
    Sha224(sha2::Sha224),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Starts a digest for `CKM_SHA_1`/`CKM_SHA224`/`CKM_SHA256`/`CKM_SHA384`/`CKM_SHA512`.
    pub fn new(m: &Mechanism) -> Result<Self> {
        if m.param != MechParam::None {
            return Err(Error::MechanismParamInvalid("digests take no parameter"));
        }
        Ok(match m.ty {
            CKM_SHA_1 => Hasher::Sha1(sha1::Sha1::new()),
            CKM_SHA224 => Hasher::Sha224(sha2::Sha224::new()),
            CKM_SHA256 => Hasher::Sha256(sha2::Sha256::new()),
            CKM_SHA384 => Hasher::Sha384(sha2::Sha384::new()),
            CKM_SHA512 => Hasher::Sha512(sha2::Sha512::new()),
            _ => return Err(Error::MechanismInvalid),
        })
    }

    /// Output length in bytes.
    pub fn output_len(&self) -> usize {
        match self {
            Hasher::Sha1(_) => 20,
            Hasher::Sha224(_) => 28,
            Hasher::Sha256(_) => 32,
            Hasher::Sha384(_) => 48,
            Hasher::Sha512(_) => 64,
        }
    }

    /// Absorbs data.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// One row of the mechanism table.
struct MechEntry {
    ty: CK_MECHANISM_TYPE,
    family: Option<KeyFamily>,
    flags: CK_FLAGS,
}

/// Sign/verify mechanisms. `CKF_HW`: the private-key operation is performed by the cluster's nodes, outside this
/// process (verification is local).
const SV: CK_FLAGS = CKF_HW | CKF_SIGN | CKF_VERIFY;
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS;

const TABLE: &[MechEntry] = &[
    MechEntry {
        ty: CKM_SHA_1,
        family: None,
        flags: CKF_DIGEST,
    },
    MechEntry {
        ty: CKM_SHA224,
        family: None,
        flags: CKF_DIGEST,
    },
    MechEntry {
        ty: CKM_SHA256,
        family: None,
        flags: CKF_DIGEST,
    },
    MechEntry {
        ty: CKM_SHA384,
        family: None,
        flags: CKF_DIGEST,
    },
    MechEntry {
        ty: CKM_SHA512,
        family: None,
        flags: CKF_DIGEST,
    },
    MechEntry {
        ty: CKM_RSA_PKCS_KEY_PAIR_GEN,
        family: Some(KeyFamily::Rsa),
        flags: CKF_HW | CKF_GENERATE_KEY_PAIR,
    },
    MechEntry {
        ty: CKM_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA1_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA224_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA256_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA384_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA512_RSA_PKCS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_RSA_PKCS_PSS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA256_RSA_PKCS_PSS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA384_RSA_PKCS_PSS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_SHA512_RSA_PKCS_PSS,
        family: Some(KeyFamily::Rsa),
        flags: SV,
    },
    MechEntry {
        ty: CKM_EC_KEY_PAIR_GEN,
        family: Some(KeyFamily::P256),
        flags: CKF_HW | CKF_GENERATE_KEY_PAIR | EC_FLAGS,
    },
    MechEntry {
        ty: CKM_ECDSA,
        family: Some(KeyFamily::P256),
        flags: SV | EC_FLAGS,
    },
    MechEntry {
        ty: CKM_ECDSA_SHA256,
        family: Some(KeyFamily::P256),
        flags: SV | EC_FLAGS,
    },
    MechEntry {
        ty: CKM_ECDSA_SHA384,
        family: Some(KeyFamily::P256),
        flags: SV | EC_FLAGS,
    },
    MechEntry {
        ty: CKM_ECDSA_SHA512,
        family: Some(KeyFamily::P256),
        flags: SV | EC_FLAGS,
    },
    MechEntry {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        family: Some(KeyFamily::Ed25519),
        flags: CKF_HW | CKF_GENERATE_KEY_PAIR,
    },
    MechEntry {
        ty: CKM_EDDSA,
        family: Some(KeyFamily::Ed25519),
        flags: SV,
    },
    // AES keys held in a session, only to unwrap private keys with (crate::module::unwrap).
    MechEntry {
        ty: CKM_AES_KEY_GEN,
        family: None,
        flags: CKF_GENERATE,
    },
    MechEntry {
        ty: CKM_AES_KEY_WRAP,
        family: None,
        flags: CKF_UNWRAP,
    },
    MechEntry {
        ty: CKM_AES_KEY_WRAP_PAD,
        family: None,
        flags: CKF_UNWRAP,
    },
    MechEntry {
        ty: CKM_AES_KEY_WRAP_KWP,
        family: None,
        flags: CKF_UNWRAP,
    },
];

fn available(e: &MechEntry, caps: &Capabilities) -> bool {
    match e.family {
        // Unwrapping needs a key type to unwrap into.
        None if is_aes(e) => caps.rsa || caps.p256 || caps.ed25519,
        None => true,
        Some(KeyFamily::Rsa) => caps.rsa,
        Some(KeyFamily::P256) => caps.p256,
        Some(KeyFamily::Ed25519) => caps.ed25519,
    }
}

/// The AES key generation and key-wrap mechanisms (for `C_UnwrapKey`).
fn is_aes(e: &MechEntry) -> bool {
    e.flags & (CKF_GENERATE | CKF_UNWRAP) != 0
}

/// `C_GetMechanismList`: the mechanisms the backend can serve, plus digests (and, when it serves any key type, AES
/// key generation and unwrapping to import keys with).
pub fn mechanism_list(caps: &Capabilities) -> Vec<CK_MECHANISM_TYPE> {
    TABLE
        .iter()
        .filter(|e| available(e, caps))
        .map(|e| e.ty)
        .collect()
}

/// `C_GetMechanismInfo`.
pub fn mechanism_info(caps: &Capabilities, ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    let e = TABLE
        .iter()
        .find(|e| e.ty == ty && available(e, caps))
        .ok_or(Error::MechanismInvalid)?;
    let (min, max) = match e.family {
        // AES key sizes are in bytes (PKCS#11 v3.0 §2.13.2).
        None if is_aes(e) => (16, 32),
        None => (0, 0),
        Some(KeyFamily::Rsa) => (caps.rsa_bits.0 as CK_ULONG, caps.rsa_bits.1 as CK_ULONG),
        Some(KeyFamily::P256) => (256, 256),
        Some(KeyFamily::Ed25519) => (255, 255),
    };
    Ok(CK_MECHANISM_INFO {
        ulMinKeySize: min,
        ulMaxKeySize: max,
        flags: e.flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mech(ty: CK_MECHANISM_TYPE, param: MechParam) -> Mechanism {
        Mechanism { ty, param }
    }

    #[test]
    fn pss_parameters_must_agree_with_the_mechanism() {
        let ok = MechParam::Pss {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32,
        };
        assert_eq!(
            SignScheme::from_mechanism(&mech(CKM_SHA256_RSA_PKCS_PSS, ok.clone())).unwrap(),
            SignScheme::RsaPss {
                hash: HashAlg::Sha256,
                salt_len: 32,
                hashes_data: true
            }
        );
        let wrong_hash = MechParam::Pss {
            hash_alg: CKM_SHA384,
            mgf: CKG_MGF1_SHA384,
            salt_len: 48,
        };
        assert!(matches!(
            SignScheme::from_mechanism(&mech(CKM_SHA256_RSA_PKCS_PSS, wrong_hash)),
            Err(Error::MechanismParamInvalid(_))
        ));
        let wrong_mgf = MechParam::Pss {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA1,
            salt_len: 32,
        };
        assert!(SignScheme::from_mechanism(&mech(CKM_RSA_PKCS_PSS, wrong_mgf)).is_err());
        assert!(SignScheme::from_mechanism(&mech(CKM_RSA_PKCS_PSS, MechParam::None)).is_err());
        assert!(matches!(
            SignScheme::from_mechanism(&mech(CKM_MD5_RSA_PKCS, MechParam::None)),
            Err(Error::MechanismInvalid)
        ));
    }

    #[test]
    fn mechanism_list_follows_backend_capabilities() {
        let none = Capabilities::default();
        assert_eq!(
            mechanism_list(&none),
            vec![CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512]
        );
        assert!(mechanism_info(&none, CKM_RSA_PKCS).is_err());
        let rsa = Capabilities {
            rsa: true,
            rsa_bits: (1024, 4096),
            ..Capabilities::default()
        };
        let info = mechanism_info(&rsa, CKM_RSA_PKCS_KEY_PAIR_GEN).unwrap();
        assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (1024, 4096));
        assert_eq!(info.flags, CKF_HW | CKF_GENERATE_KEY_PAIR);
        let info = mechanism_info(&rsa, CKM_AES_KEY_WRAP_PAD).unwrap();
        assert_eq!(
            (info.ulMinKeySize, info.ulMaxKeySize, info.flags),
            (16, 32, CKF_UNWRAP)
        );
        assert!(mechanism_info(&none, CKM_AES_KEY_GEN).is_err());
    }

    #[test]
    fn hashing_mechanisms_carry_the_data_and_digest_mechanisms_do_not() {
        let public = PublicKey::P256 {
            sec1_uncompressed: p256::ecdsa::SigningKey::from_slice(&[7; 32])
                .unwrap()
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
        };
        let hashing = SignScheme::Ecdsa(Some(HashAlg::Sha256));
        assert!(hashing.sends_data());
        match hashing.request(b"data", &public).unwrap() {
            SignRequest::WithData { data, hash, signed } => {
                assert_eq!((data.as_slice(), hash), (b"data".as_slice(), HashAlg::Sha256));
                assert_eq!(
                    *signed,
                    SignRequest::Ecdsa {
                        prehash: HashAlg::Sha256.digest(b"data")
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        let digest = SignScheme::Ecdsa(None);
        assert!(!digest.sends_data());
        assert!(matches!(
            digest.request(&[1; 32], &public).unwrap(),
            SignRequest::Ecdsa { .. }
        ));
    }

    #[test]
    fn digests_match_the_hash_functions() {
        let mut h = Hasher::new(&mech(CKM_SHA384, MechParam::None)).unwrap();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finalize(), HashAlg::Sha384.digest(b"abc"));
    }

    #[test]
    fn ed25519_signatures_verify_with_dalek_and_tampering_is_caught() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        use ed25519_dalek::Signer as _;
        let sig = sk.sign(b"msg").to_bytes();
        let pk = PublicKey::Ed25519 {
            point: sk.verifying_key().to_bytes(),
        };
        verify(&SignScheme::EdDsa, &pk, b"msg", &sig).unwrap();
        assert!(matches!(
            verify(&SignScheme::EdDsa, &pk, b"msh", &sig),
            Err(Error::SignatureInvalid)
        ));
        assert!(matches!(
            verify(&SignScheme::EdDsa, &pk, b"msg", &sig[..63]),
            Err(Error::SignatureLenRange)
        ));
    }

    #[test]
    fn ecdsa_hash_values_of_any_length_keep_the_integer_the_sec1_rule_takes() {
        use p256::ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
        let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        for len in [1usize, 8, 15, 16, 20, 31, 32, 33, 48, 64, 65, 100] {
            let data: Vec<u8> = (1..=len).map(|i| i as u8).collect();
            let value = ecdsa_hash_value(&data).unwrap();
            assert!((16..=64).contains(&value.len()), "{len}");
            let sig: p256::ecdsa::Signature = sk.sign_prehash(&value).unwrap();
            // p256's verifier applies bits2int to the input as given (truncated or zero-extended).
            sk.verifying_key().verify_prehash(&data, &sig).unwrap();
            let pk = PublicKey::P256 {
                sec1_uncompressed: sk.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            };
            verify(&SignScheme::Ecdsa(None), &pk, &data, &sig.to_bytes()).unwrap();
        }
        assert!(matches!(ecdsa_hash_value(&[]), Err(Error::DataLenRange)));
    }
}
