//! Where private keys live: the key backend.
//!
//! The module never holds a private key. A [`Backend`] creates a key pair (returning only the public key and an
//! opaque [`KeyRef`]), signs a mechanism-derived [`SignRequest`] with it, imports a private key (split and
//! distributed, then forgotten), and destroys it. Backends are called **without** the module's state lock held,
//! so many sessions sign at once.
//!
//! Implementations: [`embedded::EmbeddedBackend`] (an in-process threshold cluster on `tcrypto`, computed on the
//! caller's thread; the test and quickstart mode) and [`cluster::ClusterBackend`] (the networked `tcrypto-net`
//! cluster, driven from the caller's thread without any runtime or extra thread).

pub mod cluster;
pub mod embedded;

use cryptoki_sys::{
    CK_RV, CKR_DEVICE_ERROR, CKR_FUNCTION_FAILED, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE, CKR_MECHANISM_INVALID, CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_USER_NOT_LOGGED_IN,
};
use tcrypto::HashAlg;

/// The kinds of key pair a backend can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits and public exponent 65537.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA over NIST P-256.
    P256,
    /// Ed25519 (EdDSA over edwards25519).
    Ed25519,
}

/// A public key as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// RSA: big-endian modulus and public exponent without leading zeros.
    Rsa {
        /// `n`, big-endian.
        modulus: Vec<u8>,
        /// `e`, big-endian.
        public_exponent: Vec<u8>,
    },
    /// P-256: the uncompressed SEC1 point `04 || x || y`.
    P256 {
        /// 65 bytes.
        sec1_uncompressed: Vec<u8>,
    },
    /// Ed25519: the 32-byte RFC 8032 encoding.
    Ed25519 {
        /// 32 bytes.
        point: [u8; 32],
    },
}

/// A private key handed to [`Backend::import`]; the backend splits it and forgets it.
#[non_exhaustive]
pub enum PrivateKeyMaterial {
    /// A PKCS#1 `RSAPrivateKey` DER encoding.
    RsaPkcs1Der(zeroize::Zeroizing<Vec<u8>>),
    /// A P-256 private key: the scalar, 32 bytes big-endian.
    P256Scalar(zeroize::Zeroizing<[u8; 32]>),
    /// An Ed25519 private key: the 32-byte RFC 8032 seed.
    Ed25519Seed(zeroize::Zeroizing<[u8; 32]>),
}

impl PrivateKeyMaterial {
    /// Splits the key `threshold`-of-`parties` (RSA: any primes, at least 2048 bits; P-256 and Ed25519: the form
    /// the DKG produces) and drops it; an RSA modulus below 2048 bits is [`BackendError::KeySize`].
    pub fn split(self, threshold: u16, parties: u16) -> Result<tcrypto::import::SplitKey, BackendError> {
        use tcrypto::import::{self, Ed25519PrivateKey, ImportError, P256PrivateKey, PrivateKey};
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let options = tcrypto::rsa::SplitOptions::default();
        let key = match self {
            PrivateKeyMaterial::RsaPkcs1Der(der) => {
                return match tcrypto::rsa::split_with(&der, threshold, parties, &options, &mut rng) {
                    Ok((public, shares)) => Ok(import::SplitKey::Rsa { public, shares }),
                    Err(tcrypto::rsa::Error::ModulusTooSmall { .. }) => Err(BackendError::KeySize),
                    Err(e) => Err(BackendError::Protocol(e.to_string())),
                };
            }
            PrivateKeyMaterial::P256Scalar(x) => PrivateKey::P256(
                P256PrivateKey::from_scalar_bytes(&x[..])
                    .map_err(|e| BackendError::Protocol(e.to_string()))?,
            ),
            PrivateKeyMaterial::Ed25519Seed(seed) => PrivateKey::Ed25519(
                Ed25519PrivateKey::from_seed(&seed[..]).map_err(|e| BackendError::Protocol(e.to_string()))?,
            ),
        };
        import::split(key, threshold, parties, &options, &mut rng).map_err(|e| match e {
            ImportError::Rsa(tcrypto::rsa::Error::ModulusTooSmall { .. }) => BackendError::KeySize,
            e => BackendError::Protocol(e.to_string()),
        })
    }
}

impl core::fmt::Debug for PrivateKeyMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateKeyMaterial(<redacted>)")
    }
}

/// Opaque reference to a key held by the backend (for the cluster: the key id). Stored in the object store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef(pub Vec<u8>);

/// What to sign, derived from the mechanism and the caller's data. Nodes build the encoded message themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignRequest {
    /// RSASSA-PKCS1-v1_5 over a digest; the signer builds the DigestInfo.
    RsaPkcs1 {
        /// Hash that produced `digest`.
        hash: HashAlg,
        /// The digest.
        digest: Vec<u8>,
    },
    /// `CKM_RSA_PKCS`: the caller supplied a DigestInfo.
    RsaPkcs1DigestInfo {
        /// DER DigestInfo.
        digest_info: Vec<u8>,
    },
    /// RSASSA-PSS over a digest with MGF1 of the same hash and a fresh salt chosen by the module.
    RsaPss {
        /// Hash (and MGF1 hash).
        hash: HashAlg,
        /// The digest.
        digest: Vec<u8>,
        /// The salt, of the length the caller asked for.
        salt: Vec<u8>,
    },
    /// ECDSA P-256 over a hash value (truncated to the group order's bit length by the signer).
    Ecdsa {
        /// The hash value as given to `CKM_ECDSA`.
        prehash: Vec<u8>,
    },
    /// Pure Ed25519 over the whole message.
    Ed25519 {
        /// The message.
        message: Vec<u8>,
    },
    /// A hashing mechanism's data as the caller gave it (`CKM_SHA256_RSA_PKCS`, `CKM_SHA*_RSA_PKCS_PSS`,
    /// `CKM_ECDSA_SHA*`), with what the module derived from it: a backend whose signers judge data by a policy
    /// sends the data (they hash it themselves); one that signs digests signs `signed`.
    WithData {
        /// The data.
        data: Vec<u8>,
        /// The hash the mechanism applies to it.
        hash: HashAlg,
        /// The digest form (an `RsaPkcs1`, `RsaPss` or `Ecdsa` request of `hash` of `data`).
        signed: Box<SignRequest>,
    },
}

impl SignRequest {
    /// What a digest-signing backend signs: the digest form of a [`SignRequest::WithData`], else the request.
    pub fn digest_form(&self) -> &SignRequest {
        match self {
            SignRequest::WithData { signed, .. } => signed,
            other => other,
        }
    }
}

/// Why the backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend does not provide this key type or operation.
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// Key size not available.
    #[error("key size not available")]
    KeySize,
    /// The backend does not know the key.
    #[error("unknown key")]
    UnknownKey,
    /// Not enough share holders answered or they disagreed; the message names what happened.
    #[error("cluster failure: {0}")]
    Cluster(String),
    /// A local I/O failure (share files of the embedded cluster).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The threshold protocol rejected the request or an input.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The backend is locked until the user logs in (the cluster backend's coordinator identity is sealed with
    /// the user PIN).
    #[error("locked until C_Login: {0}")]
    Locked(String),
    /// The PIN does not unlock the backend (the message names the file).
    #[error("PIN does not unlock {0}")]
    PinIncorrect(String),
    /// The PIN cannot become the user PIN (the message says why).
    #[error("PIN refused: {0}")]
    PinInvalid(String),
    /// A node's signing policy refuses this use of the key (the message names the node and the rule).
    #[error("{0}")]
    PolicyRefused(String),
}

impl BackendError {
    /// The PKCS#11 return value for this error.
    pub fn rv(&self) -> CK_RV {
        match self {
            BackendError::Unsupported(_) => CKR_MECHANISM_INVALID,
            BackendError::KeySize => CKR_KEY_SIZE_RANGE,
            BackendError::UnknownKey => CKR_KEY_HANDLE_INVALID,
            BackendError::Cluster(_) | BackendError::Io(_) => CKR_DEVICE_ERROR,
            BackendError::Protocol(_) => CKR_FUNCTION_FAILED,
            BackendError::Locked(_) => CKR_USER_NOT_LOGGED_IN,
            BackendError::PinIncorrect(_) => CKR_PIN_INCORRECT,
            BackendError::PinInvalid(_) => CKR_PIN_INVALID,
            BackendError::PolicyRefused(_) => CKR_KEY_FUNCTION_NOT_PERMITTED,
        }
    }
}

/// Which key kinds and mechanisms a backend can serve; the mechanism list is derived from this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RSA key generation, PKCS#1 v1.5 and PSS signing.
    pub rsa: bool,
    /// P-256 key generation (DKG) and ECDSA.
    pub p256: bool,
    /// Ed25519 key generation (DKG) and EdDSA.
    pub ed25519: bool,
    /// Smallest and largest RSA modulus in bits.
    pub rsa_bits: (usize, usize),
}

/// The keeper of private keys. Methods run on the caller's thread and may block on the network; the module calls
/// them without holding its state lock.
pub trait Backend: Send + Sync {
    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;
    /// Creates a key pair; only the public key and a reference come back.
    fn generate(&self, kind: KeyKind) -> Result<(PublicKey, KeyRef), BackendError>;
    /// Imports a private key: split into shares, distributed, and forgotten.
    fn import(&self, key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError>;
    /// Signs; the result is the signature in PKCS#11 format (RSA: |n| bytes; ECDSA: `r || s`; Ed25519: 64 bytes).
    fn sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError>;
    /// Deletes the key's shares everywhere it can. The shares of nodes that could not be reached are still there:
    /// they come back as [`UndeletedShare`]s, which the module records and retries with [`Backend::destroy_share`].
    fn destroy(&self, key: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError>;
    /// Retries deleting the share of `key` held by the node named `node` (a name [`Backend::destroy`] returned).
    /// `Ok` once the node holds no share of the key.
    fn destroy_share(&self, key: &KeyRef, node: &str) -> Result<(), BackendError> {
        let _ = (key, node);
        Err(BackendError::Unsupported("this backend has no per-node shares"))
    }
    /// The normal user logged in with `pin` (its hash already checked): unlocks what the backend needs to reach
    /// its keys (the cluster backend opens the coordinator identity sealed with this PIN and connects to the
    /// nodes). Default: nothing to unlock.
    fn unlock(&self, pin: &[u8]) -> Result<(), BackendError> {
        let _ = pin;
        Ok(())
    }
    /// Whether key operations wait for [`Backend::unlock`] (no `C_Login` of the user yet in this process).
    fn locked(&self) -> bool {
        false
    }
    /// Whether `pin` can become the user PIN (`C_InitPIN`): the cluster backend needs it to open the sealed
    /// coordinator identity.
    fn accepts_user_pin(&self, pin: &[u8]) -> Result<(), BackendError> {
        let _ = pin;
        Ok(())
    }
    /// The user PIN changes from `old` to `new` (`C_SetPIN`): re-seals what `old` unlocked.
    fn change_user_pin(&self, old: &[u8], new: &[u8]) -> Result<(), BackendError> {
        let _ = (old, new);
        Ok(())
    }
}

/// A key share left on a node that did not answer a deletion (it is down or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeletedShare {
    /// The node's configured name.
    pub node: String,
    /// Why the deletion failed there.
    pub reason: String,
}
