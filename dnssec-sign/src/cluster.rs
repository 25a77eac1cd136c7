//! Threshold keys held by the cluster (`tcrypto-net`), behind the same [`ZoneSigningKey`]
//! interface as local and PKCS#11 keys: the zone signer never sees a share.
//!
//! [`ClusterKey`] signs through any `tcrypto_net::client::Cluster` engine: the thread-free TLS
//! [`BlockingCluster`] (remote `tcrypto-node` daemons, or in-process nodes on loopback TLS) or
//! the in-memory engine. A batch is pipelined: up to [`ClusterKeyOptions::in_flight`] signature
//! requests are outstanding at any time (a sliding window: as the oldest completes the next is
//! started), never one request per RRset and a wait.
//!
//! The DNSSEC algorithm follows the cluster key's algorithm; the signature is brought into
//! DNSSEC wire form:
//! The nodes are sent each RRSIG's signed data itself (RRSIG RDATA without the signature, then the
//! RRset in canonical form, RFC 4034 §3.1.8.1), never a digest: each node checks it against its
//! operator's signing policy (`tcrypto_net::node::policy`), hashes it and builds the encoding itself.
//!
//! - RSA: PKCS#1 v1.5 over the SHA-256 (algorithm 8) or SHA-512 (algorithm 10) digest of the
//!   signed data, the node building the DigestInfo (RFC 5702 §3); the `|N|`-byte signature as is;
//! - ECDSA P-256: the cluster returns DER, DNSSEC wants the 64-octet `r‖s` (RFC 6605 §4);
//! - Ed25519: the 64-octet signature over the whole signed data (RFC 8080 §4).
//!
//! Every signature that comes back is checked against the DNSKEY with the `rsa`, `p256` or
//! `ed25519-dalek` crate before it goes into the zone.
//!
//! A key is found by its cluster key id (64 hex digits, or a unique prefix of at least 8), or by
//! the DNSSEC key tag its DNSKEY gets with the requested flags (the cluster has no key labels;
//! the key tag is the name DNSSEC operators use).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256, Sha512};
use tcrypto::{HashAlg, KeyId};
use tcrypto_net::algo::PublicKey;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::{Cluster, Engine};
use tcrypto_net::transport::wire::{DataMechanism, Mechanism, SignData};

use crate::error::KeyError;
use crate::keys::{Algorithm, ZoneSigningKey, dnskey_flags, rsa_dnskey_bytes, verify_signature};
use crate::name::Name;
use crate::rdata::Dnskey;

/// How a cluster key is named on the command line or in code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterKeyRef {
    /// The full key id.
    Id(KeyId),
    /// A prefix of the key id in hex (at least 8 digits), matching exactly one key.
    IdPrefix(String),
    /// The DNSSEC key tag of the key's DNSKEY with the requested flags.
    KeyTag(u16),
}

impl ClusterKeyRef {
    /// Parses 64 hex digits (an id), 8..63 hex digits (an id prefix) or a decimal number of at
    /// most 5 digits (a key tag).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let bad = || {
            KeyError::Cluster(format!(
                "{s:?} is neither a key id (hex), an id prefix nor a key tag"
            ))
        };
        if s.len() <= 5 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(Self::KeyTag).map_err(|_| bad());
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) || s.len() < 8 || s.len() > 64 {
            return Err(bad());
        }
        let s = s.to_ascii_lowercase();
        if s.len() == 64 {
            let mut id = [0u8; 32];
            hex::decode_to_slice(&s, &mut id).map_err(|_| bad())?;
            Ok(Self::Id(KeyId(id)))
        } else {
            Ok(Self::IdPrefix(s))
        }
    }
}

/// Signature requests a cluster key keeps outstanding per `sign_batch` call (per signing thread) by default.
///
/// Deep enough to hide loopback and LAN round trips, shallow enough that the signing threads' windows together
/// stay below the coordinator's pool refill thresholds (presignatures, FROST nonce commitments: 64 by default).
/// A deeper window adds nothing but queueing at the nodes, which serve requests in arrival order, so (most
/// likely) the pool refills wait behind whole windows and the pools run dry. On five
/// `tcrypto-node` processes on 2 cores (issue 19, `benches/pkcs11_zone_rate.sh`), 64 per thread signed an Ed25519
/// zone at 0.82–0.87 of the cluster's raw rate at 8 in flight, 4, 8 or 16 per thread at 0.94–0.96 (ECDSA 0.83
/// against 0.88–0.90).
pub const DEFAULT_IN_FLIGHT: usize = 16;

/// Options of a cluster key.
#[derive(Debug, Clone, Copy)]
pub struct ClusterKeyOptions {
    /// Key-signing key (DNSKEY flags 257) or zone-signing key (256).
    pub ksk: bool,
    /// For an RSA key: [`Algorithm::RsaSha256`] (8) or [`Algorithm::RsaSha512`] (10). Ignored
    /// for ECDSA and Ed25519 keys, whose DNSSEC algorithm is fixed.
    pub rsa_algorithm: Algorithm,
    /// Signature requests outstanding at once per `sign_batch` call ([`DEFAULT_IN_FLIGHT`] by default).
    pub in_flight: usize,
}

impl Default for ClusterKeyOptions {
    fn default() -> Self {
        Self {
            ksk: false,
            rsa_algorithm: Algorithm::RsaSha256,
            in_flight: DEFAULT_IN_FLIGHT,
        }
    }
}

/// A threshold key of the cluster as a DNSSEC signing key.
pub struct ClusterKey<E: Engine> {
    cluster: Arc<Cluster<E>>,
    key: KeyId,
    owner: Name,
    dnskey: Dnskey,
    algorithm: Algorithm,
    in_flight: usize,
}

impl<E: Engine> std::fmt::Debug for ClusterKey<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKey")
            .field("key", &self.key)
            .field("owner", &self.owner)
            .field("key_tag", &self.dnskey.key_tag())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Connects to the cluster of a coordinator configuration file (as `tcrypto-node` and the
/// PKCS#11 module read it), waits up to `timeout` for the nodes and learns the keys that at
/// least `k` nodes hold.
pub fn connect(config: &Path, timeout: Duration) -> Result<Arc<BlockingCluster>, KeyError> {
    let cluster = BlockingCluster::from_config_file(config)
        .map_err(|e| KeyError::Cluster(format!("{}: {e}", config.display())))?;
    cluster.connect(timeout);
    cluster
        .refresh_keys()
        .map_err(|e| KeyError::Cluster(format!("listing keys: {e}")))?;
    Ok(Arc::new(cluster))
}

impl<E: Engine> ClusterKey<E> {
    /// The cluster key `key` as a DNSSEC key of zone `owner`.
    pub fn new(
        cluster: Arc<Cluster<E>>,
        key: KeyId,
        owner: &Name,
        opts: ClusterKeyOptions,
    ) -> Result<Self, KeyError> {
        let public = cluster
            .public_key(&key)
            .ok_or_else(|| KeyError::Cluster(format!("the cluster knows no key {key}")))?;
        let (algorithm, public_key) = dnssec_public_key(&public, opts.rsa_algorithm)?;
        Ok(Self {
            cluster,
            key,
            owner: owner.clone(),
            dnskey: Dnskey {
                flags: dnskey_flags(opts.ksk),
                protocol: 3,
                algorithm: algorithm.number(),
                public_key,
            },
            algorithm,
            in_flight: opts.in_flight.max(1),
        })
    }

    /// Finds a key of the cluster by id, id prefix or key tag (see [`ClusterKeyRef`]).
    pub fn find(
        cluster: Arc<Cluster<E>>,
        which: &ClusterKeyRef,
        owner: &Name,
        opts: ClusterKeyOptions,
    ) -> Result<Self, KeyError> {
        let ids = cluster.list();
        let matching: Vec<Self> = match which {
            ClusterKeyRef::Id(id) => return Self::new(cluster, *id, owner, opts),
            ClusterKeyRef::IdPrefix(p) => ids
                .iter()
                .filter(|id| id.to_string().starts_with(p.as_str()))
                .map(|id| Self::new(cluster.clone(), *id, owner, opts))
                .collect::<Result<_, _>>()?,
            // keys of algorithms this signer cannot use are not candidates for a tag
            ClusterKeyRef::KeyTag(tag) => ids
                .iter()
                .filter_map(|id| Self::new(cluster.clone(), *id, owner, opts).ok())
                .filter(|k| k.dnskey.key_tag() == *tag)
                .collect(),
        };
        let count = matching.len();
        let mut it = matching.into_iter();
        match (it.next(), count) {
            (Some(k), 1) => Ok(k),
            (_, 0) => Err(KeyError::Cluster(format!(
                "no cluster key matches {which:?} ({} keys known)",
                ids.len()
            ))),
            _ => Err(KeyError::Cluster(format!("{count} cluster keys match {which:?}"))),
        }
    }

    /// The cluster key id.
    pub fn key_id(&self) -> KeyId {
        self.key
    }

    /// The DNSSEC algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The cluster this key signs through.
    pub fn cluster(&self) -> &Arc<Cluster<E>> {
        &self.cluster
    }

    /// The digest form of what the cluster signs for `message` (an RRSIG's signed data), for
    /// nodes asked without the data (the behaviour before signing policies; benchmarks).
    pub fn request(&self, message: &[u8]) -> Mechanism {
        mechanism(self.algorithm, message)
    }

    /// What the cluster is asked to sign for `message` (an RRSIG's signed data): the data itself.
    pub fn data_request(&self, message: &[u8]) -> SignData {
        SignData {
            mechanism: DataMechanism::DnssecRrsig,
            data: message.to_vec(),
        }
    }
}

impl<E: Engine> ZoneSigningKey for ClusterKey<E> {
    fn owner(&self) -> &Name {
        &self.owner
    }

    fn dnskey(&self) -> &Dnskey {
        &self.dnskey
    }

    fn long_batches(&self) -> bool {
        true
    }

    fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError> {
        let mut out = Vec::with_capacity(messages.len());
        let mut pending = VecDeque::with_capacity(self.in_flight);
        let mut next = 0;
        while out.len() < messages.len() {
            // top the window up, then collect the oldest request
            let start = next;
            next = (next + self.in_flight - pending.len()).min(messages.len());
            if next > start {
                let requests: Vec<(KeyId, SignData)> = messages[start..next]
                    .iter()
                    .map(|m| (self.key, self.data_request(m)))
                    .collect();
                pending.extend(self.cluster.start_data_signs(requests));
            }
            let Some(op) = pending.pop_front() else {
                return Err(KeyError::Cluster("no request in flight".into()));
            };
            let signature = self
                .cluster
                .wait_signature(op)
                .map_err(|e| KeyError::Cluster(format!("key {}: {e}", self.key)))?;
            let message = &messages[out.len()];
            let sig = dnssec_signature(self.algorithm, signature.bytes)?;
            if !verify_signature(&self.dnskey, message, &sig) {
                return Err(KeyError::Cluster(format!(
                    "key {}: the cluster's signature does not verify with the DNSKEY",
                    self.key
                )));
            }
            out.push(sig);
        }
        Ok(out)
    }
}

/// What the cluster is asked to sign for one RRSIG's signed data.
fn mechanism(algorithm: Algorithm, message: &[u8]) -> Mechanism {
    match algorithm {
        Algorithm::RsaSha512 => Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha512,
            digest: Sha512::digest(message).to_vec(),
        },
        Algorithm::EcdsaP256Sha256 => Mechanism::Ecdsa {
            digest: Sha256::digest(message).to_vec(),
        },
        Algorithm::Ed25519 => Mechanism::Ed25519 {
            message: message.to_vec(),
        },
        Algorithm::RsaSha256 => Mechanism::RsaPkcs1v15 {
            hash: HashAlg::Sha256,
            digest: Sha256::digest(message).to_vec(),
        },
    }
}

/// The cluster's signature in DNSSEC wire form.
fn dnssec_signature(algorithm: Algorithm, signature: Vec<u8>) -> Result<Vec<u8>, KeyError> {
    match algorithm {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => Ok(signature),
        Algorithm::EcdsaP256Sha256 => p256::ecdsa::Signature::from_der(&signature)
            .map(|s| s.to_bytes().to_vec())
            .map_err(|_| KeyError::Cluster("the cluster's ECDSA signature is not DER".into())),
        Algorithm::Ed25519 if signature.len() == 64 => Ok(signature),
        Algorithm::Ed25519 => Err(KeyError::Cluster(format!(
            "the cluster's Ed25519 signature has {} octets, not 64",
            signature.len()
        ))),
    }
}

/// The DNSSEC algorithm and DNSKEY public key field of a cluster key.
fn dnssec_public_key(public: &PublicKey, rsa_algorithm: Algorithm) -> Result<(Algorithm, Vec<u8>), KeyError> {
    match public {
        PublicKey::Rsa(pk) => {
            if !matches!(rsa_algorithm, Algorithm::RsaSha256 | Algorithm::RsaSha512) {
                return Err(KeyError::UnsupportedAlgorithm(rsa_algorithm.number()));
            }
            let e = pk.public_exponent().to_be_bytes();
            let first = e.iter().position(|b| *b != 0).unwrap_or(e.len() - 1);
            Ok((rsa_algorithm, rsa_dnskey_bytes(&pk.modulus_bytes(), &e[first..])))
        }
        PublicKey::Ecdsa(pk) => {
            // RFC 6605 §4: the uncompressed point without its 0x04 prefix
            let sec1 = pk.verifying.to_sec1_point(false);
            let xy = sec1.as_bytes().get(1..).unwrap_or_default().to_vec();
            Ok((Algorithm::EcdsaP256Sha256, xy))
        }
        PublicKey::Ed25519(pk) => Ok((Algorithm::Ed25519, pk.public_key_bytes().to_vec())),
        other => Err(KeyError::Cluster(format!(
            "cluster keys of algorithm {} cannot sign DNSSEC zones",
            other.algorithm().name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_parse_as_id_prefix_or_key_tag() {
        let id = "ab".repeat(32);
        assert_eq!(
            ClusterKeyRef::parse(&id).unwrap(),
            ClusterKeyRef::Id(KeyId([0xab; 32]))
        );
        assert_eq!(
            ClusterKeyRef::parse("ABCDEF01").unwrap(),
            ClusterKeyRef::IdPrefix("abcdef01".into())
        );
        assert_eq!(
            ClusterKeyRef::parse("12345").unwrap(),
            ClusterKeyRef::KeyTag(12345)
        );
        for bad in ["", "99999", "abc", "xyz12345", &"a".repeat(65), "123456z"] {
            assert!(ClusterKeyRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn default_windows_of_two_signing_threads_stay_below_the_pool_refill_thresholds() {
        let coordinator = tcrypto_net::coordinator::CoordinatorConfig::default();
        let two_threads = 2 * ClusterKeyOptions::default().in_flight;
        assert!(two_threads <= coordinator.presign_low_watermark, "{two_threads}");
        assert!(two_threads <= coordinator.frost_low_watermark, "{two_threads}");
    }

    #[test]
    fn ecdsa_der_signatures_become_raw_r_and_s() {
        use p256::ecdsa::signature::Signer as _;
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let sig: p256::ecdsa::Signature = key.sign(b"signed data");
        let der = sig.to_der().as_bytes().to_vec();
        let raw = dnssec_signature(Algorithm::EcdsaP256Sha256, der).unwrap();
        assert_eq!(raw.len(), 64);
        assert_eq!(raw, sig.to_bytes().to_vec());
        assert!(dnssec_signature(Algorithm::EcdsaP256Sha256, raw).is_err());
    }

    #[test]
    fn ed25519_signatures_must_be_64_octets() {
        assert!(dnssec_signature(Algorithm::Ed25519, vec![1; 64]).is_ok());
        assert!(dnssec_signature(Algorithm::Ed25519, vec![1; 63]).is_err());
    }

    #[test]
    fn mechanisms_carry_the_dnssec_hash_or_the_whole_message() {
        let m = b"rrsig signed data";
        assert_eq!(
            mechanism(Algorithm::RsaSha256, m),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha256,
                digest: Sha256::digest(m).to_vec()
            }
        );
        assert_eq!(
            mechanism(Algorithm::RsaSha512, m),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha512,
                digest: Sha512::digest(m).to_vec()
            }
        );
        assert_eq!(
            mechanism(Algorithm::EcdsaP256Sha256, m),
            Mechanism::Ecdsa {
                digest: Sha256::digest(m).to_vec()
            }
        );
        assert_eq!(
            mechanism(Algorithm::Ed25519, m),
            Mechanism::Ed25519 { message: m.to_vec() }
        );
    }
}
