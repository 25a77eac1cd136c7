//! The cluster backend: keys live as shares on `tcrypto-net` signer nodes reached over mutual TLS.
//!
//! The coordinator is [`tcrypto_net::blocking::BlockingCluster`], the thread-free driver: sockets are polled from
//! whichever caller's thread waits for a result, so the module creates no thread and no runtime (PKCS#11 hosts
//! may forbid both). It is built in `C_Initialize` from the `tcrypto-net` coordinator configuration file named in
//! `[cluster]`; a forked child's `C_Initialize` builds a fresh one (the parent's sockets are never touched).
//!
//! RSA keys are dealt in this process (the trusted dealer of `tcrypto::rsa`, which sees the whole key while
//! dealing) and one sealed share goes to each node; imported keys are split the same way and forgotten. Ed25519
//! keys are born by distributed key generation among the nodes (`Cluster::create_key`), so no machine ever holds
//! them, and sign with FROST. Signing sends the mechanism (hash and digest, DigestInfo, PSS salt, or the whole
//! Ed25519 message) and each node builds the encoding itself.
//! Destroying a key asks every node to delete its share; the nodes that do not answer are reported back to the
//! module, which keeps them in its store as pending deletions and retries them (see `crate::module`).
//! P-256 is refused, never faked: the nodes serve threshold ECDSA, but this backend does not use it yet.

use std::collections::BTreeMap;
use std::time::Duration;

use rand_core::UnwrapErr;
use tcrypto::KeyId;
use tcrypto::rsa;
use tcrypto_net::blocking::BlockingCluster;
use tcrypto_net::cluster::{ClusterError, Engine as _};
use tcrypto_net::coordinator::{Event, NodeIndex, SignError};
use tcrypto_net::wire::{Algorithm, ErrorCode, Mechanism, RequestBody, ResponseBody};

use super::embedded::{deal_rsa, load_primes, rsa_bits, rsa_public};
use super::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
    UndeletedShare,
};
use crate::config::ClusterConfig;
use crate::error::{Error, Result};

/// First byte of a [`KeyRef`] of an RSA key; the rest is the cluster's key id (32 bytes).
const TAG_RSA: u8 = 0x01;
/// First byte of a [`KeyRef`] of an Ed25519 key; the rest is the cluster's key id (32 bytes).
const TAG_ED25519: u8 = 0x03;

/// How long `C_Initialize` waits for the first node connections (the driver keeps reconnecting afterwards).
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The networked threshold cluster.
pub struct ClusterBackend {
    cluster: BlockingCluster,
    threshold: u16,
    parties: u16,
    /// TEST ONLY: committed safe primes by bit length.
    test_primes: Option<BTreeMap<u32, Vec<Vec<u8>>>>,
}

impl core::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClusterBackend")
            .field("cluster", &self.cluster)
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
        other => BackendError::Cluster(other.to_string()),
    }
}

fn key_id(key: &KeyRef) -> Result<KeyId, BackendError> {
    match key.0.split_first() {
        Some((&(TAG_RSA | TAG_ED25519), id)) => <[u8; 32]>::try_from(id)
            .map(KeyId)
            .map_err(|_| BackendError::UnknownKey),
        _ => Err(BackendError::UnknownKey),
    }
}

impl ClusterBackend {
    /// Connects (lazily; no thread) to the cluster described by the coordinator file of `cfg`.
    pub fn new(cfg: &ClusterConfig) -> Result<Self> {
        let cluster = BlockingCluster::from_config_file(&cfg.coordinator)
            .map_err(|e| Error::Config(format!("cluster {}: {e}", cfg.coordinator.display())))?;
        let parties = u16::try_from(cluster.nodes().len())
            .map_err(|_| Error::Config("cluster: too many nodes".into()))?;
        if cfg.threshold > parties {
            return Err(Error::Config(format!(
                "cluster: threshold {} above the {parties} nodes of {}",
                cfg.threshold,
                cfg.coordinator.display()
            )));
        }
        let test_primes = cfg.rsa_test_primes.as_deref().map(load_primes).transpose()?;
        let connected = cluster.connect(CONNECT_WAIT);
        if connected < usize::from(cfg.threshold) {
            tracing::warn!(
                connected,
                parties,
                "cluster: fewer nodes than the threshold reachable at start"
            );
        }
        // Keys made by earlier processes: registered from the nodes' own lists (any `k` agreeing).
        if let Err(e) = cluster.refresh_keys() {
            tracing::warn!(error = %e, "cluster: could not list the nodes' keys");
        }
        Ok(Self {
            cluster,
            threshold: cfg.threshold,
            parties,
            test_primes,
        })
    }

    fn distribute(
        &self,
        public: &rsa::PublicKeySet,
        shares: &[rsa::KeyShare],
    ) -> Result<(PublicKey, KeyRef), BackendError> {
        let id = self
            .cluster
            .import_rsa_shares(public, shares, &mut os_rng())
            .map_err(cluster_error)?;
        let mut key = vec![TAG_RSA];
        key.extend_from_slice(id.as_bytes());
        Ok((rsa_public(public), KeyRef(key)))
    }

    /// Runs `op`; when the coordinator does not know the key (made by another process, or a node list changed),
    /// learns the nodes' keys once and retries.
    fn with_refresh<T>(&self, op: impl Fn() -> Result<T, ClusterError>) -> Result<T, BackendError> {
        match op() {
            Err(ClusterError::Sign(SignError::UnknownKey(_))) => {
                self.cluster.refresh_keys().map_err(cluster_error)?;
                op().map_err(cluster_error)
            }
            other => other.map_err(cluster_error),
        }
    }
}

/// The wire mechanism of a module sign request; the node builds the encoding from it.
fn mechanism(request: &SignRequest) -> Result<Mechanism, BackendError> {
    Ok(match request {
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
        SignRequest::Ecdsa { .. } => {
            return Err(BackendError::Unsupported(
                "ECDSA on the cluster backend (not wired yet)",
            ));
        }
    })
}

impl Backend for ClusterBackend {
    fn capabilities(&self) -> Capabilities {
        let rsa_bits = rsa_bits(self.test_primes.as_ref());
        Capabilities {
            rsa: rsa_bits.1 > 0,
            p256: false,
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
            KeyKind::Ed25519 => {
                let id = self
                    .cluster
                    .create_key(Algorithm::Ed25519, self.threshold)
                    .map_err(cluster_error)?;
                let point = self
                    .cluster
                    .public_key(&id)
                    .as_ref()
                    .and_then(|pk| pk.as_ed25519().map(|pk| pk.public_key_bytes()))
                    .ok_or_else(|| BackendError::Cluster("the new Ed25519 key is not registered".into()))?;
                let mut key = vec![TAG_ED25519];
                key.extend_from_slice(id.as_bytes());
                Ok((PublicKey::Ed25519 { point }, KeyRef(key)))
            }
            KeyKind::P256 => {
                tracing::error!(?kind, "the cluster backend does not support P-256 yet");
                Err(BackendError::Unsupported(
                    "P-256 on the cluster backend (not wired yet)",
                ))
            }
        }
    }

    fn import(&self, key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        match key {
            PrivateKeyMaterial::RsaPkcs1Der(der) => {
                let (public, shares) = rsa::split(&der, self.threshold, self.parties, &mut os_rng())
                    .map_err(|e| BackendError::Protocol(e.to_string()))?;
                self.distribute(&public, &shares)
            }
        }
    }

    fn sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        let id = key_id(key)?;
        let mech = mechanism(request)?;
        let sig = self.with_refresh(|| self.cluster.sign(id, mech.clone()))?;
        if !sig.culprits.is_empty() {
            tracing::warn!(culprits = ?sig.culprits, "cluster: misbehaving nodes excluded");
        }
        Ok(sig.bytes)
    }

    fn destroy(&self, key: &KeyRef) -> Result<Vec<UndeletedShare>, BackendError> {
        let id = key_id(key)?;
        // The coordinator stops using the key at once; every node is asked, holder or not (the coordinator's
        // holder map may be stale, and a node without the share simply says so).
        self.cluster.engine().submit(|c, _, _| c.forget_key(&id));
        let all: Vec<NodeIndex> = (0..self.cluster.nodes().len()).collect();
        Ok(self
            .delete_shares(id, &all)
            .into_iter()
            .filter_map(|(node, result)| {
                result.err().map(|reason| UndeletedShare {
                    node: self
                        .cluster
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
        let index = self
            .cluster
            .nodes()
            .iter()
            .position(|n| n.name == node)
            .ok_or_else(|| {
                BackendError::Cluster(format!("node {node} is no longer in the cluster configuration"))
            })?;
        match self.delete_shares(id, &[index]).pop() {
            Some((_, Ok(()))) => Ok(()),
            Some((_, Err(reason))) => Err(BackendError::Cluster(format!("node {node}: {reason}"))),
            None => Err(BackendError::Cluster(format!("node {node}: no answer"))),
        }
    }
}

impl ClusterBackend {
    /// Asks the nodes `nodes` to delete their shares of `id`, all requests in flight at once. A node that holds no
    /// share (any more) counts as done; a node that is down fails at once ("not connected").
    fn delete_shares(&self, id: KeyId, nodes: &[NodeIndex]) -> Vec<(NodeIndex, Result<(), String>)> {
        let engine = self.cluster.engine();
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
    fn every_rsa_and_ed25519_request_maps_to_the_same_wire_mechanism_and_ecdsa_is_refused() {
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
        assert!(matches!(
            mechanism(&SignRequest::Ecdsa { prehash: vec![0; 32] }),
            Err(BackendError::Unsupported(_))
        ));
    }

    #[test]
    fn key_refs_of_other_backends_are_unknown_keys() {
        // P-256 key refs (tag 0x02) are not the cluster's.
        assert!(matches!(
            key_id(&KeyRef(vec![0x02; 33])),
            Err(BackendError::UnknownKey)
        ));
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
