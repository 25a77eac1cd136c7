//! The cluster backend: keys live as shares on `tcrypto-net` signer nodes reached over mutual TLS.
//!
//! The coordinator is [`tcrypto_net::client::blocking::BlockingCluster`], the thread-free driver: sockets are polled from
//! whichever caller's thread waits for a result, so the module creates no thread and no runtime (PKCS#11 hosts
//! may forbid both). `C_Initialize` reads the `tcrypto-net` coordinator configuration file named in `[cluster]`
//! (nodes, threshold) but neither opens the coordinator identity nor connects: the identity is sealed with the
//! token's user PIN (`tcrypto-node coordinator-init`), so the first `C_Login` of the user opens it and connects
//! (a wrong PIN: `CKR_PIN_INCORRECT`). Until then every key operation is refused (`CKR_USER_NOT_LOGGED_IN`);
//! objects are listed from the module's own store. `C_InitPIN` accepts only a user PIN that opens the identity,
//! and `C_SetPIN` of the user re-seals the identity file with the new PIN. A legacy unsealed identity file is
//! accepted with a warning. The connection stays up after `C_Logout` until `C_Finalize`; a forked child's
//! `C_Initialize` starts locked again (the parent's sockets are never touched).
//!
//! RSA keys are dealt in this process (the trusted dealer of `tcrypto::rsa`, which sees the whole key while
//! dealing) and one sealed share goes to each node; imported keys are split the same way and forgotten. P-256 and
//! Ed25519 keys are born by distributed key generation among the nodes (`Cluster::create_key`), so no machine ever
//! holds them; P-256 signs with threshold ECDSA, with any `k` of the `n` nodes online: from the coordinator's
//! presignature pool while `2k - 1` nodes are up and the pool has stock (the fast path), otherwise, and for keys
//! with `k > (n + 1) / 2`, with the `k`-online protocol DKLs23 (a fresh process, such as one `pkcs11-tool` run,
//! signs its first P-256 signature that way at once); Ed25519 with FROST. Signing sends the
//! mechanism (hash and digest, DigestInfo, PSS salt, the ECDSA hash value, or the whole Ed25519 message) and each
//! node builds the encoding itself; the cluster's DER ECDSA signature becomes PKCS#11's `r || s` here.
//! Destroying a key asks every node to delete its share; the nodes that do not answer are reported back to the
//! module, which keeps them in its store as pending deletions and retries them (see `crate::module`).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rand_core::UnwrapErr;
use tcrypto::KeyId;
use tcrypto::rsa;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::{ClusterError, Engine as _};
use tcrypto_net::config::CoordinatorConfigFile;
use tcrypto_net::coordinator::{CoordinatorConfig, Event, NodeIndex, SignError};
use tcrypto_net::transport::identity::{IdentityError, IdentityFile, SealedTlsIdentity};
use tcrypto_net::transport::wire::{
    Algorithm, DataMechanism, ErrorCode, Mechanism, RequestBody, ResponseBody, SignData,
};

use super::embedded::{deal_rsa, load_primes, rsa_bits, rsa_public};
use super::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use crate::config::ClusterConfig;
use crate::error::{Error, Result};

/// First byte of a [`KeyRef`] of an RSA key; the rest is the cluster's key id (32 bytes).
const TAG_RSA: u8 = 0x01;
/// First byte of a [`KeyRef`] of a P-256 key; the rest is the cluster's key id (32 bytes).
const TAG_P256: u8 = 0x02;
/// First byte of a [`KeyRef`] of an Ed25519 key; the rest is the cluster's key id (32 bytes).
const TAG_ED25519: u8 = 0x03;

/// How long `C_Initialize` waits for the first node connections (the driver keeps reconnecting afterwards).
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The networked threshold cluster.
pub struct ClusterBackend {
    cfg: ClusterConfig,
    /// The coordinator, made by the first [`Backend::unlock`].
    cluster: OnceLock<BlockingCluster>,
    /// Serialises unlocking (two sessions logging in at once build one coordinator).
    unlocking: Mutex<()>,
    threshold: u16,
    parties: u16,
    /// TEST ONLY: committed safe primes by bit length.
    test_primes: Option<BTreeMap<u32, Vec<Vec<u8>>>>,
}

impl core::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClusterBackend")
            .field("coordinator", &self.cfg.coordinator)
            .field("unlocked", &self.cluster.get().is_some())
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

fn os_rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

fn cluster_error(e: ClusterError) -> BackendError {
    match e {
        ClusterError::Sign(SignError::UnknownKey(_)) => BackendError::UnknownKey,
        ClusterError::Sign(e @ SignError::PolicyRefused { .. }) => BackendError::PolicyRefused(e.to_string()),
        other => BackendError::Cluster(other.to_string()),
    }
}

fn key_id(key: &KeyRef) -> Result<KeyId, BackendError> {
    match key.0.split_first() {
        Some((&(TAG_RSA | TAG_P256 | TAG_ED25519), id)) => <[u8; 32]>::try_from(id)
            .map(KeyId)
            .map_err(|_| BackendError::UnknownKey),
        _ => Err(BackendError::UnknownKey),
    }
}

/// A PIN as the passphrase of the coordinator identity (which is text).
fn pin_text(pin: &[u8]) -> Result<&str, BackendError> {
    std::str::from_utf8(pin)
        .map_err(|_| BackendError::PinIncorrect("the coordinator identity (PIN not UTF-8)".into()))
}

impl ClusterBackend {
    /// Reads the coordinator file of `cfg` (nodes, threshold); connects only when [`Backend::unlock`] opens the
    /// coordinator identity.
    pub fn new(cfg: &ClusterConfig) -> Result<Self> {
        let file = CoordinatorConfigFile::load(&cfg.coordinator)
            .map_err(|e| Error::Config(format!("cluster {}: {e}", cfg.coordinator.display())))?;
        let parties =
            u16::try_from(file.nodes.len()).map_err(|_| Error::Config("cluster: too many nodes".into()))?;
        if cfg.threshold > parties {
            return Err(Error::Config(format!(
                "cluster: threshold {} above the {parties} nodes of {}",
                cfg.threshold,
                cfg.coordinator.display()
            )));
        }
        let test_primes = cfg.rsa_test_primes.as_deref().map(load_primes).transpose()?;
        Ok(Self {
            cfg: cfg.clone(),
            cluster: OnceLock::new(),
            unlocking: Mutex::new(()),
            threshold: cfg.threshold,
            parties,
            test_primes,
        })
    }

    /// The coordinator, once unlocked.
    fn cluster(&self) -> Result<&BlockingCluster, BackendError> {
        self.cluster.get().ok_or_else(|| {
            BackendError::Locked(format!(
                "the coordinator identity of {} opens with the user PIN",
                self.cfg.coordinator.display()
            ))
        })
    }

    /// Builds the coordinator with the identity opened by `pin`, connects and learns the nodes' keys.
    fn connect(&self, pin: &str) -> Result<BlockingCluster, BackendError> {
        let pool = self.cfg.pool.max(1);
        let cluster = BlockingCluster::from_config_file_unlocked(&self.cfg.coordinator, Some(pin), |c| {
            CoordinatorConfig {
                presign_low_watermark: pool / 4,
                presign_high_watermark: pool,
                frost_low_watermark: pool / 4,
                frost_high_watermark: pool,
                ..c
            }
        })
        .map_err(|e| {
            let text = format!("{}: {e}", self.cfg.coordinator.display());
            if text.contains(&IdentityError::WrongPassphrase.to_string()) {
                BackendError::PinIncorrect(text)
            } else {
                BackendError::Cluster(text)
            }
        })?;
        let connected = cluster.connect(CONNECT_WAIT);
        if connected < usize::from(self.threshold) {
            tracing::warn!(
                connected,
                parties = self.parties,
                "cluster: fewer nodes than the threshold reachable at login"
            );
        }
        // Keys made by earlier processes: registered from the nodes' own lists (any `k` agreeing).
        if let Err(e) = cluster.refresh_keys() {
            tracing::warn!(error = %e, "cluster: could not list the nodes' keys");
        }
        Ok(cluster)
    }

    /// The coordinator identity file and its decoded content.
    fn identity_file(&self) -> Result<(std::path::PathBuf, IdentityFile), BackendError> {
        let file = CoordinatorConfigFile::load(&self.cfg.coordinator)
            .map_err(|e| BackendError::Cluster(format!("{}: {e}", self.cfg.coordinator.display())))?;
        let path = file.identity;
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(&path).map_err(|e| BackendError::Cluster(format!("{}: {e}", path.display())))?,
        );
        let id = IdentityFile::decode(&bytes)
            .map_err(|e| BackendError::Cluster(format!("{}: {e}", path.display())))?;
        Ok((path, id))
    }

    fn distribute(
        &self,
        public: &rsa::PublicKeySet,
        shares: &[rsa::KeyShare],
    ) -> Result<(PublicKey, KeyRef), BackendError> {
        let id = self
            .cluster()?
            .import_rsa_shares(public, shares, &mut os_rng())
            .map_err(cluster_error)?;
        Ok((rsa_public(public), key_ref(TAG_RSA, id)))
    }

    /// Creates a key of `algorithm` by DKG among the nodes and returns its public key as the module reports it.
    fn create_by_dkg(&self, algorithm: Algorithm) -> Result<(PublicKey, KeyRef), BackendError> {
        let cluster = self.cluster()?;
        let id = cluster
            .create_key(algorithm, self.threshold)
            .map_err(cluster_error)?;
        let unregistered =
            || BackendError::Cluster(format!("the new {} key is not registered", algorithm.name()));
        let public = cluster.public_key(&id).ok_or_else(unregistered)?;
        match algorithm {
            Algorithm::EcdsaP256 => {
                let vk = &public.as_ecdsa().ok_or_else(unregistered)?.verifying;
                let sec1_uncompressed = vk.to_sec1_point(false).as_bytes().to_vec();
                Ok((PublicKey::P256 { sec1_uncompressed }, key_ref(TAG_P256, id)))
            }
            _ => {
                let point = public.as_ed25519().ok_or_else(unregistered)?.public_key_bytes();
                Ok((PublicKey::Ed25519 { point }, key_ref(TAG_ED25519, id)))
            }
        }
    }

    /// Runs `op`; when the coordinator does not know the key (made by another process, or a node list changed),
    /// learns the nodes' keys once and retries. A key still unknown is gone only if every node answered; with
    /// nodes down it may simply be out of reach: that is a device error (`CKR_DEVICE_ERROR`) naming the down
    /// nodes, not `CKR_KEY_HANDLE_INVALID`, so a host does not conclude that its key was destroyed.
    fn with_refresh<T>(&self, op: impl Fn() -> Result<T, ClusterError>) -> Result<T, BackendError> {
        match op() {
            Err(ClusterError::Sign(SignError::UnknownKey(_))) => {
                let cluster = self.cluster()?;
                cluster.refresh_keys().map_err(cluster_error)?;
                match op() {
                    Err(ClusterError::Sign(SignError::UnknownKey(key))) => {
                        let down: Vec<String> = cluster
                            .health()
                            .into_iter()
                            .filter(|h| !h.connected)
                            .map(|h| h.name)
                            .collect();
                        if down.is_empty() {
                            Err(BackendError::UnknownKey)
                        } else {
                            Err(BackendError::Cluster(format!(
                                "key {key} is not known to the nodes that answered; down: {}",
                                down.join(", ")
                            )))
                        }
                    }
                    other => other.map_err(cluster_error),
                }
            }
            other => other.map_err(cluster_error),
        }
    }
}

/// The data-carrying form of a module sign request (the data of a hashing mechanism, or an Ed25519 message).
fn data_request(request: &SignRequest) -> Option<SignData> {
    let (mechanism, data) = match request {
        SignRequest::WithData { data, hash, signed } => (
            match signed.as_ref() {
                SignRequest::RsaPkcs1 { .. } => DataMechanism::RsaPkcs1v15 { hash: *hash },
                SignRequest::RsaPss { salt, .. } => DataMechanism::RsaPss {
                    hash: *hash,
                    salt: salt.clone(),
                },
                SignRequest::Ecdsa { .. } => DataMechanism::Ecdsa { hash: *hash },
                _ => return None,
            },
            data,
        ),
        SignRequest::Ed25519 { message } => (DataMechanism::Ed25519, message),
        _ => return None,
    };
    Some(SignData {
        mechanism,
        data: data.clone(),
    })
}

/// The wire mechanism of a module sign request; the node builds the encoding from it.
fn mechanism(request: &SignRequest) -> Result<Mechanism, BackendError> {
    Ok(match request.digest_form() {
        SignRequest::RsaPkcs1 { hash, digest } => Mechanism::RsaPkcs1v15 {
            hash: *hash,
            digest: digest.clone(),
        },
        SignRequest::RsaPkcs1DigestInfo { digest_info } => Mechanism::RsaPkcs1v15DigestInfo {
            digest_info: digest_info.clone(),
        },
        SignRequest::RsaPss { hash, digest, salt } => Mechanism::RsaPss {
            hash: *hash,
            digest: digest.clone(),
            salt: salt.clone(),
        },
        SignRequest::Ed25519 { message } => Mechanism::Ed25519 {
            message: message.clone(),
        },
        SignRequest::Ecdsa { prehash } => Mechanism::Ecdsa {
            digest: prehash.clone(),
        },
        SignRequest::WithData { .. } => {
            return Err(BackendError::Unsupported(
                "a data request nested in a data request",
            ));
        }
    })
}

/// The module's reference to the cluster key `id`: the key type's tag, then the id.
fn key_ref(tag: u8, id: KeyId) -> KeyRef {
    let mut key = vec![tag];
    key.extend_from_slice(id.as_bytes());
    KeyRef(key)
}

/// The cluster's ECDSA signature (DER `SEQUENCE { r, s }`) as PKCS#11 wants it: `r || s`, 32 bytes each.
fn ecdsa_raw(der: &[u8]) -> Result<Vec<u8>, BackendError> {
    p256::ecdsa::Signature::from_der(der)
        .map(|s| s.to_bytes().to_vec())
        .map_err(|e| BackendError::Protocol(format!("ECDSA signature from the cluster: {e}")))
}

impl Backend for ClusterBackend {
    fn capabilities(&self) -> Capabilities {
        let rsa_bits = rsa_bits(self.test_primes.as_ref());
        Capabilities {
            rsa: rsa_bits.1 > 0,
            // Any k: DKLs23 signs with k nodes online (presignatures, when 2k - 1 are up, are the fast path).
            p256: true,
            ed25519: true,
            rsa_bits,
        }
    }

    fn generate(&self, kind: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        match kind {
            KeyKind::Rsa { bits } => {
                let (public, shares) = deal_rsa(
                    bits,
                    self.threshold,
                    self.parties,
                    self.test_primes.as_ref(),
                    &mut os_rng(),
                )?;
                self.distribute(&public, &shares)
            }
            KeyKind::Ed25519 => self.create_by_dkg(Algorithm::Ed25519),
            KeyKind::P256 if self.capabilities().p256 => self.create_by_dkg(Algorithm::EcdsaP256),
            KeyKind::P256 => Err(BackendError::Unsupported(
                "threshold ECDSA needs nodes >= 2 * threshold - 1",
            )),
        }
    }

    fn import(&self, key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        use tcrypto::import::SplitKey;
        match key.split(self.threshold, self.parties)? {
            SplitKey::Rsa { public, shares } => self.distribute(&public, &shares),
            SplitKey::P256 { public, shares } => {
                let pk = tcrypto_net::algo::EcdsaPublicKey::new(public).map_err(BackendError::Protocol)?;
                let sec1_uncompressed = pk.verifying.to_sec1_point(false).as_bytes().to_vec();
                let id = self
                    .cluster()?
                    .import_ecdsa_shares(&pk, &shares, &mut os_rng())
                    .map_err(cluster_error)?;
                Ok((PublicKey::P256 { sec1_uncompressed }, key_ref(TAG_P256, id)))
            }
            SplitKey::Ed25519 { public, shares } => {
                let point = public.public_key_bytes();
                let id = self
                    .cluster()?
                    .import_ed25519_shares(&public, &shares, &mut os_rng())
                    .map_err(cluster_error)?;
                Ok((PublicKey::Ed25519 { point }, key_ref(TAG_ED25519, id)))
            }
            _ => Err(BackendError::Unsupported("key kind")),
        }
    }

    fn sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        let id = key_id(key)?;
        let cluster = self.cluster()?;
        // The data of a hashing mechanism goes to the nodes, which judge it by their policy and hash it; digest
        // mechanisms (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA) can only send the digest.
        let sig = match data_request(request) {
            Some(data) => {
                self.with_refresh(|| cluster.sign_data(id, data.mechanism.clone(), data.data.clone()))?
            }
            None => {
                let mech = mechanism(request)?;
                self.with_refresh(|| cluster.sign(id, mech.clone()))?
            }
        };
        if !sig.culprits.is_empty() {
            tracing::warn!(culprits = ?sig.culprits, "cluster: misbehaving nodes excluded");
        }
        match request.digest_form() {
            SignRequest::Ecdsa { .. } => ecdsa_raw(&sig.bytes),
            _ => Ok(sig.bytes),
        }
    }

    fn destroy(&self, key: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError> {
        let id = key_id(key)?;
        // The coordinator stops using the key at once; every node is asked, holder or not (the coordinator's
        // holder map may be stale, and a node without the share simply says so).
        let cluster = self.cluster()?;
        cluster.engine().submit(|c, _, _| c.forget_key(&id));
        let all: Vec<NodeIndex> = (0..cluster.nodes().len()).collect();
        Ok(self
            .delete_shares(cluster, id, &all)
            .into_iter()
            .filter_map(|(node, result)| {
                result.err().map(|reason| UndeletedShare {
                    node: cluster
                        .nodes()
                        .get(node)
                        .map_or_else(|| format!("#{node}"), |n| n.name.clone()),
                    reason,
                })
            })
            .collect())
    }

    fn destroy_share(&self, key: &KeyRef, node: &str) -> Result<(), BackendError> {
        let id = key_id(key)?;
        let cluster = self.cluster()?;
        let index = cluster
            .nodes()
            .iter()
            .position(|n| n.name == node)
            .ok_or_else(|| {
                BackendError::Cluster(format!("node {node} is no longer in the cluster configuration"))
            })?;
        match self.delete_shares(cluster, id, &[index]).pop() {
            Some((_, Ok(()))) => Ok(()),
            Some((_, Err(reason))) => Err(BackendError::Cluster(format!("node {node}: {reason}"))),
            None => Err(BackendError::Cluster(format!("node {node}: no answer"))),
        }
    }

    fn unlock(&self, pin: &[u8]) -> Result<(), BackendError> {
        let _one = self.unlocking.lock().unwrap_or_else(|p| p.into_inner());
        if self.cluster.get().is_some() {
            return Ok(());
        }
        let cluster = self.connect(pin_text(pin)?)?;
        let _ = self.cluster.set(cluster);
        Ok(())
    }

    fn locked(&self) -> bool {
        self.cluster.get().is_none()
    }

    fn accepts_user_pin(&self, pin: &[u8]) -> Result<(), BackendError> {
        let (path, file) = self.identity_file()?;
        match file {
            IdentityFile::Unsealed(_) => Ok(()),
            IdentityFile::Sealed(sealed) => sealed.open(pin_text(pin)?).map(|_| ()).map_err(|e| {
                BackendError::PinInvalid(format!(
                    "the user PIN of a cluster token must open the coordinator identity {}: {e}",
                    path.display()
                ))
            }),
        }
    }

    fn change_user_pin(&self, old: &[u8], new: &[u8]) -> Result<(), BackendError> {
        let (path, file) = self.identity_file()?;
        let IdentityFile::Sealed(sealed) = file else {
            return Ok(());
        };
        let id = sealed
            .open(pin_text(old)?)
            .map_err(|e| BackendError::PinIncorrect(format!("{}: {e}", path.display())))?;
        let new = std::str::from_utf8(new)
            .map_err(|_| BackendError::PinInvalid("the PIN of a cluster token must be UTF-8 text".into()))?;
        let resealed = SealedTlsIdentity::seal(&id, new, sealed.cost(), &mut os_rng())
            .map_err(|e| BackendError::PinInvalid(format!("{}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BackendError::Cluster(format!("{}: not a file name", path.display())))?;
        tcrypto_net::node::store::write_atomic(dir, name, &resealed.encode(), u64::from(std::process::id()))
            .map_err(|e| BackendError::Cluster(format!("re-sealing {}: {e}", path.display())))?;
        tracing::info!(file = %path.display(), "coordinator identity re-sealed with the new user PIN");
        Ok(())
    }
}

impl ClusterBackend {
    /// Asks the nodes `nodes` to delete their shares of `id`, all requests in flight at once. A node that holds no
    /// share (any more) counts as done; a node that is down fails at once ("not connected").
    fn delete_shares(
        &self,
        cluster: &BlockingCluster,
        id: KeyId,
        nodes: &[NodeIndex],
    ) -> Vec<(NodeIndex, Result<(), String>)> {
        let engine = cluster.engine();
        let ops: Vec<_> = nodes
            .iter()
            .map(|&node| {
                let body = RequestBody::DeleteKey { key: id };
                (
                    node,
                    engine.submit(|c, now, unix| c.start_request(node, body, now, unix, &mut os_rng())),
                )
            })
            .collect();
        ops.into_iter()
            .map(|(node, op)| {
                let result = match engine.wait(op) {
                    Event::Reply {
                        result:
                            Ok(
                                ResponseBody::Done
                                | ResponseBody::Error {
                                    code: ErrorCode::UnknownKey,
                                    ..
                                },
                            ),
                        ..
                    } => Ok(()),
                    Event::Reply {
                        result: Ok(ResponseBody::Error { code, detail }),
                        ..
                    } => Err(format!("{code:?}: {detail}")),
                    Event::Reply { result: Err(e), .. } => Err(e),
                    other => Err(format!("unexpected answer {other:?}")),
                };
                (node, result)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcrypto::HashAlg;

    #[test]
    fn hashing_mechanisms_send_the_data_and_digest_mechanisms_the_digest() {
        let with = |hash: HashAlg, signed: SignRequest| SignRequest::WithData {
            data: b"the data".to_vec(),
            hash,
            signed: Box::new(signed),
        };
        let pkcs1 = with(
            HashAlg::Sha256,
            SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: HashAlg::Sha256.digest(b"the data"),
            },
        );
        let sent = data_request(&pkcs1).unwrap();
        assert_eq!(
            sent.mechanism,
            DataMechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha256
            }
        );
        assert_eq!(sent.data, b"the data");
        // What the nodes sign for the data is what the module would have sent as a digest.
        assert_eq!(sent.digest_form().unwrap(), mechanism(&pkcs1).unwrap());
        let pss = with(
            HashAlg::Sha384,
            SignRequest::RsaPss {
                hash: HashAlg::Sha384,
                digest: HashAlg::Sha384.digest(b"the data"),
                salt: vec![9; 48],
            },
        );
        assert_eq!(
            data_request(&pss).unwrap().digest_form().unwrap(),
            mechanism(&pss).unwrap()
        );
        let ecdsa = with(
            HashAlg::Sha512,
            SignRequest::Ecdsa {
                prehash: HashAlg::Sha512.digest(b"the data"),
            },
        );
        assert_eq!(
            data_request(&ecdsa).unwrap().digest_form().unwrap(),
            mechanism(&ecdsa).unwrap()
        );
        assert!(data_request(&SignRequest::Ecdsa { prehash: vec![1; 32] }).is_none());
        assert!(
            data_request(&SignRequest::RsaPkcs1DigestInfo {
                digest_info: vec![0x30]
            })
            .is_none()
        );
        assert_eq!(
            data_request(&SignRequest::Ed25519 {
                message: b"m".to_vec()
            })
            .unwrap()
            .mechanism,
            DataMechanism::Ed25519
        );
    }

    #[test]
    fn every_request_maps_to_the_same_wire_mechanism() {
        let d = vec![7u8; 32];
        assert_eq!(
            mechanism(&SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: d.clone()
            })
            .unwrap(),
            Mechanism::RsaPkcs1v15 {
                hash: HashAlg::Sha256,
                digest: d.clone()
            }
        );
        assert_eq!(
            mechanism(&SignRequest::RsaPss {
                hash: HashAlg::Sha384,
                digest: d.clone(),
                salt: vec![1; 48]
            })
            .unwrap(),
            Mechanism::RsaPss {
                hash: HashAlg::Sha384,
                digest: d.clone(),
                salt: vec![1; 48]
            }
        );
        assert_eq!(
            mechanism(&SignRequest::RsaPkcs1DigestInfo {
                digest_info: d.clone()
            })
            .unwrap(),
            Mechanism::RsaPkcs1v15DigestInfo { digest_info: d }
        );
        assert_eq!(
            mechanism(&SignRequest::Ed25519 {
                message: b"m".to_vec()
            })
            .unwrap(),
            Mechanism::Ed25519 {
                message: b"m".to_vec()
            }
        );
        assert_eq!(
            mechanism(&SignRequest::Ecdsa { prehash: vec![5; 20] }).unwrap(),
            Mechanism::Ecdsa { digest: vec![5; 20] }
        );
    }

    #[test]
    fn cluster_ecdsa_der_signatures_become_r_concatenated_with_s() {
        let mut r = [0u8; 32];
        r[31] = 1;
        let mut s = [0u8; 32];
        s[0] = 0x7f;
        s[31] = 2;
        let sig = p256::ecdsa::Signature::from_scalars(r, s).unwrap();
        let raw = ecdsa_raw(sig.to_der().as_bytes()).unwrap();
        assert_eq!(raw, [r, s].concat());
        assert!(matches!(ecdsa_raw(&raw), Err(BackendError::Protocol(_))));
    }

    #[test]
    fn key_refs_of_unknown_types_or_lengths_are_unknown_keys() {
        assert!(matches!(
            key_id(&KeyRef(vec![0x04; 33])),
            Err(BackendError::UnknownKey)
        ));
        assert_eq!(
            key_id(&key_ref(TAG_P256, KeyId([2; 32]))).unwrap(),
            KeyId([2; 32])
        );
        assert_eq!(
            key_id(&KeyRef([vec![TAG_ED25519], vec![8; 32]].concat())).unwrap(),
            KeyId([8; 32])
        );
        assert!(matches!(
            key_id(&KeyRef(vec![TAG_RSA; 5])),
            Err(BackendError::UnknownKey)
        ));
        assert_eq!(
            key_id(&KeyRef([vec![TAG_RSA], vec![9; 32]].concat())).unwrap(),
            KeyId([9; 32])
        );
    }
}
