//! TOML configuration of a node daemon and of a coordinator.
//!
//! Node (`tcrypto-node --config node.toml`):
//! ```toml
//! name = "node1"
//! listen = "127.0.0.2:7001"
//! data_dir = "/var/lib/tcrypto-node"
//! passphrase_file = "/etc/tcrypto-node/passphrase"   # or key_file = "...", or $TCRYPTO_NODE_PASSPHRASE
//! max_clock_skew_ms = 30000
//! presignature_witness = "/run/tcrypto-node/node1.witness"   # default: "<data_dir>.witness"
//! policy_file = "policy.toml"    # the node's signing policy (see crate::node::policy); reloaded on SIGHUP
//! reshare_claim_secs = 120     # another coordinator's reshare of a key is refused while one runs (see crate::node::reshare)
//! arithmetic = "pure-rust"     # or "openssl"; default: the build's (OpenSSL in the default build), see tcrypto::backend
//!
//! [[coordinators]]
//! name = "coord-a"
//! spki_sha256 = "<64 hex digits printed by `tcrypto-node coordinator-init`>"
//!
//! [[peers]]
//! name = "node2"
//! public = "<hex printed by `tcrypto-node init` on node2>"
//! ```
//!
//! Coordinator (used by [`crate::client`] and the PKCS#11 module):
//! ```toml
//! identity = "/etc/tcrypto/coordinator.identity"    # written by `tcrypto-node coordinator-init`, sealed
//! passphrase_file = "/etc/tcrypto/coordinator.pass"  # or $TCRYPTO_COORDINATOR_PASSPHRASE
//! request_timeout_ms = 5000                         # one node's answer
//! handshake_timeout_ms = 3000                       # one connection attempt (TCP connect and TLS handshake)
//! sign_timeout_ms = 60000                           # one signature, all retries included
//! data_dir = "/var/lib/tcrypto-coordinator"          # pending DKG deliveries
//!
//! [[nodes]]
//! address = "127.0.0.2:7001"
//! public = "<hex printed by `tcrypto-node init`>"
//! ```
//! Unknown fields are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tcrypto::backend::{Backend, BackendInstallError};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::node::store::StoreKeySource;
use crate::transport::identity::{IdentityError, IdentityFile, NodePublic, SpkiFingerprint, TlsIdentity};

/// Environment variable holding the store passphrase when no file is configured.
pub const PASSPHRASE_ENV: &str = "TCRYPTO_NODE_PASSPHRASE";
/// Environment variable holding the coordinator identity's passphrase when the coordinator configuration names no
/// `passphrase_file`.
pub const COORDINATOR_PASSPHRASE_ENV: &str = "TCRYPTO_COORDINATOR_PASSPHRASE";

/// Configuration errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown fields.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A pinned identity is malformed.
    #[error("{path}: {source}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// No source for the store key.
    #[error("no store key: set passphrase_file or key_file in the configuration, or ${PASSPHRASE_ENV}")]
    NoStoreKey,
    /// The coordinator identity is sealed and no passphrase was given.
    #[error(
        "{path} is sealed: set passphrase_file in the coordinator configuration or ${COORDINATOR_PASSPHRASE_ENV}"
    )]
    NoCoordinatorPassphrase {
        /// The identity file.
        path: PathBuf,
    },
    /// The configured arithmetic backend is not in this build (or could not be installed).
    #[error("{path}: arithmetic = \"{requested}\": {source}")]
    Arithmetic {
        /// The file.
        path: PathBuf,
        /// The backend it names.
        requested: Backend,
        /// Why.
        source: BackendInstallError,
    },
    /// Something else is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// A pinned coordinator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedCoordinator {
    /// A label for logs.
    pub name: String,
    /// SHA-256 of its TLS SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
}

/// Another node, for relayed node-to-node messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its name.
    pub name: String,
    /// Its [`NodePublic`] encoding, hex.
    pub public: String,
}

/// A node daemon's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name.
    pub name: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory (key store, audit log).
    pub data_dir: PathBuf,
    /// File holding the store passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// File holding a 32-byte store key.
    pub key_file: Option<PathBuf>,
    /// Accepted clock difference to coordinators.
    #[serde(default = "default_skew")]
    pub max_clock_skew_ms: u64,
    /// The presignature witness, a file outside the data directory that tells a store restored from a copy from
    /// the live one (see [`NodeConfig::witness`]).
    pub presignature_witness: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`, plain HTTP: keep it on loopback or a
    /// monitoring network); off when absent. See [`crate::metrics`].
    pub metrics_listen: Option<SocketAddr>,
    /// The audit log is rotated when it reaches this size (default 64 MiB; see [`crate::node::audit`]).
    pub audit_max_bytes: Option<u64>,
    /// The audit log is also rotated when its first entry is this old (default: by size only).
    pub audit_max_age_secs: Option<u64>,
    /// How long a reshare's claim on a key outlives the run's last step at this node (default 120 s): while it
    /// lives, another coordinator's reshare of the key is refused (see `tcrypto_net::node::reshare`).
    pub reshare_claim_secs: Option<u64>,
    /// The node operator's signing policy ([`crate::node::policy`]; relative to the configuration file's directory);
    /// without one, the node signs what its pinned coordinators ask.
    pub policy_file: Option<PathBuf>,
    /// The arithmetic backend the node signs on, `"pure-rust"` or `"openssl"` (default: the build's,
    /// [`Backend::DEFAULT`]: OpenSSL in the default build). `tcrypto-node serve` installs it at start, before any key
    /// is loaded; a backend the build lacks is refused when the file is loaded. Nodes on different backends sign
    /// together (the results are the same bit for bit); see [`tcrypto::backend`].
    #[serde(default, deserialize_with = "backend_name")]
    pub arithmetic: Option<Backend>,
    /// Coordinators allowed to connect.
    #[serde(default)]
    pub coordinators: Vec<PinnedCoordinator>,
    /// The other nodes.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

fn backend_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Backend>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(serde::de::Error::custom)
}

fn default_skew() -> u64 {
    crate::node::replay::ReplayGuard::DEFAULT_MAX_SKEW_MS
}

impl NodeConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = read_toml(path)?;
        cfg.pinned_coordinators()
            .map_err(|source| ConfigError::Identity {
                path: path.to_path_buf(),
                source,
            })?;
        for p in &cfg.peers {
            decode_public(&p.public).map_err(|source| ConfigError::Identity {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if let Some(requested) = cfg.arithmetic
            && !requested.is_built()
        {
            return Err(ConfigError::Arithmetic {
                path: path.to_path_buf(),
                requested,
                source: BackendInstallError::NotBuilt { requested },
            });
        }
        Ok(cfg)
    }

    /// Installs the configured arithmetic backend in this process ([`tcrypto::backend::install`]; nothing when the
    /// file names none) and returns the one in force. Call it before any key work. `path`: the file, for errors.
    pub fn install_arithmetic(&self, path: &Path) -> Result<Backend, ConfigError> {
        if let Some(requested) = self.arithmetic {
            tcrypto::backend::install(requested).map_err(|source| ConfigError::Arithmetic {
                path: path.to_path_buf(),
                requested,
                source,
            })?;
        }
        Ok(tcrypto::backend::in_force())
    }

    /// The pinned coordinator fingerprints.
    pub fn pinned_coordinators(&self) -> Result<Vec<SpkiFingerprint>, IdentityError> {
        self.coordinators
            .iter()
            .map(|c| SpkiFingerprint::from_hex(&c.spki_sha256))
            .collect()
    }

    /// Where the store key comes from: key file, passphrase file, then the environment.
    pub fn store_key(&self) -> Result<StoreKeySource, ConfigError> {
        if let Some(k) = &self.key_file {
            return Ok(StoreKeySource::KeyFile(k.clone()));
        }
        if let Some(p) = &self.passphrase_file {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            let pass = text.trim_end_matches(['\n', '\r']).to_string();
            return Ok(StoreKeySource::Passphrase(Zeroizing::new(pass)));
        }
        match std::env::var(PASSPHRASE_ENV) {
            Ok(p) => Ok(StoreKeySource::Passphrase(Zeroizing::new(p))),
            Err(_) => Err(ConfigError::NoStoreKey),
        }
    }

    /// The pinned peers' public identities.
    pub fn peer_publics(&self) -> Result<Vec<NodePublic>, IdentityError> {
        self.peers.iter().map(|p| decode_public(&p.public)).collect()
    }

    /// The presignature witness: `presignature_witness`, or `<data_dir>.witness` beside the data directory. Best
    /// on a tmpfs such as `/run` (never in a backup; a reboot then discards the stored presignatures, which is safe).
    pub fn witness(&self) -> PathBuf {
        self.presignature_witness
            .clone()
            .unwrap_or_else(|| crate::node::default_witness(&self.data_dir))
    }

    /// The signing policy file, if one is configured (`config`: the configuration file, whose directory a
    /// relative path is taken from).
    pub fn policy_path(&self, config: &Path) -> Option<PathBuf> {
        self.policy_file
            .as_ref()
            .map(|p| config.parent().unwrap_or(Path::new(".")).join(p))
    }

    /// The file where the running daemon writes what it found wrong at start (read by `tcrypto-node status`).
    pub fn health_file(&self) -> PathBuf {
        self.data_dir.join("health")
    }

    /// The audit log path.
    pub fn audit_log(&self) -> PathBuf {
        self.data_dir.join("audit.log")
    }

    /// When the audit log is rotated.
    pub fn audit_rotation(&self) -> crate::node::audit::Rotation {
        let default = crate::node::audit::Rotation::default();
        crate::node::audit::Rotation {
            max_bytes: self.audit_max_bytes.unwrap_or(default.max_bytes),
            max_age: self.audit_max_age_secs.map(std::time::Duration::from_secs),
        }
    }
}

/// Decodes a hex [`NodePublic`].
pub fn decode_public(hex_text: &str) -> Result<NodePublic, IdentityError> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| IdentityError::BadHex {
        what: "node public identity",
        detail: e.to_string(),
    })?;
    Ok(NodePublic::decode(&bytes)?)
}

/// A node as a coordinator sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its public identity, hex (name and pins inside).
    pub public: String,
}

/// A coordinator's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfigFile {
    /// File written by `tcrypto-node coordinator-init` (TLS certificate and key).
    pub identity: PathBuf,
    /// File holding the passphrase that opens a sealed `identity` (else `$TCRYPTO_COORDINATOR_PASSPHRASE`);
    /// relative to the configuration file.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// Per-node answer timeout.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Longest TCP connect plus TLS handshake of one connection attempt
    /// ([`crate::coordinator::CoordinatorConfig::handshake_timeout`]).
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    /// Longest time one signature may take in all (retries, pool waits); then it fails with what its attempts
    /// met.
    #[serde(default = "default_sign_timeout")]
    pub sign_timeout_ms: u64,
    /// The nodes.
    pub nodes: Vec<NodeEntry>,
    /// Directory for the coordinator's own state (the pending DKG deliveries of nodes that were down when a key
    /// was created); relative to the configuration file. Without it that state lives in memory only.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

fn default_timeout() -> u64 {
    5000
}

fn default_handshake_timeout() -> u64 {
    3000
}

fn default_sign_timeout() -> u64 {
    60_000
}

impl CoordinatorConfigFile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Self = read_toml(path)?;
        // A relative identity path is relative to the configuration file, not to the current directory.
        if cfg.identity.is_relative()
            && let Some(dir) = path.parent()
        {
            cfg.identity = dir.join(&cfg.identity);
        }
        for p in [cfg.data_dir.as_mut(), cfg.passphrase_file.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative()
                && let Some(dir) = path.parent()
            {
                *p = dir.join(&*p);
            }
        }
        if cfg.nodes.is_empty() {
            return Err(ConfigError::Invalid(format!("{}: no nodes", path.display())));
        }
        cfg.node_publics().map_err(|source| ConfigError::Identity {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(cfg)
    }

    /// Reads the coordinator identity file. A sealed file is opened with `passphrase` when given (the PKCS#11
    /// module passes the user PIN), else with the configured one ([`CoordinatorConfigFile::passphrase`]). A legacy
    /// unsealed file is accepted with a warning naming the command that seals it.
    pub fn load_identity(&self, passphrase: Option<&str>) -> Result<TlsIdentity, ConfigError> {
        let path = &self.identity;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?);
        let bad = |source| ConfigError::Identity {
            path: path.clone(),
            source,
        };
        match IdentityFile::decode(&bytes).map_err(bad)? {
            IdentityFile::Unsealed(id) => {
                tracing::warn!(
                    file = %path.display(),
                    "coordinator identity is not sealed: anyone who reads this file can sign with every key; seal \
                     it with `tcrypto-node coordinator-seal --identity {}`",
                    path.display()
                );
                Ok(id)
            }
            IdentityFile::Sealed(sealed) => {
                let configured;
                let pass = match passphrase {
                    Some(p) => p,
                    None => {
                        configured = self.passphrase()?;
                        configured.as_str()
                    }
                };
                sealed.open(pass).map_err(bad)
            }
        }
    }

    /// The configured passphrase of the coordinator identity: `passphrase_file`, else
    /// `$TCRYPTO_COORDINATOR_PASSPHRASE`.
    pub fn passphrase(&self) -> Result<Zeroizing<String>, ConfigError> {
        if let Some(p) = &self.passphrase_file {
            let text = Zeroizing::new(std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?);
            return Ok(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        std::env::var(COORDINATOR_PASSPHRASE_ENV)
            .map(Zeroizing::new)
            .map_err(|_| ConfigError::NoCoordinatorPassphrase {
                path: self.identity.clone(),
            })
    }

    /// The nodes' public identities, in order.
    pub fn node_publics(&self) -> Result<Vec<(SocketAddr, NodePublic)>, IdentityError> {
        self.nodes
            .iter()
            .map(|n| Ok((n.address, decode_public(&n.public)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_configuration_errors() {
        let dir = std::env::temp_dir().join(format!("tcrypto-cfg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("node.toml");
        std::fs::write(
            &p,
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp/x\"\ncolour = \"blue\"\n",
        )
        .unwrap();
        let err = NodeConfig::load(&p).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        std::fs::write(
            &p,
            "name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp/x\"\n[[coordinators]]\nname = \"c\"\nspki_sha256 = \"zz\"\n",
        )
        .unwrap();
        assert!(matches!(NodeConfig::load(&p), Err(ConfigError::Identity { .. })));
    }

    #[test]
    fn the_arithmetic_backend_is_read_by_name_and_one_the_build_lacks_is_refused_naming_file_and_key() {
        let dir = std::env::temp_dir().join(format!("tcrypto-cfg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("node.toml");
        let with = |line: &str| {
            std::fs::write(
                &p,
                format!("name = \"n\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp/x\"\n{line}\n"),
            )
            .unwrap();
            NodeConfig::load(&p)
        };
        assert_eq!(with("").unwrap().arithmetic, None);
        assert_eq!(
            with("arithmetic = \"pure-rust\"").unwrap().arithmetic,
            Some(Backend::PureRust)
        );
        let err = with("arithmetic = \"gmp\"").unwrap_err().to_string();
        assert!(
            err.contains("node.toml") && err.contains("arithmetic") && err.contains("\"gmp\""),
            "{err}"
        );
        let openssl = with("arithmetic = \"openssl\"");
        if Backend::OpenSsl.is_built() {
            assert_eq!(openssl.unwrap().arithmetic, Some(Backend::OpenSsl));
        } else {
            let err = openssl.unwrap_err();
            assert!(matches!(err, ConfigError::Arithmetic { .. }), "{err:?}");
            let err = err.to_string();
            assert!(
                err.contains("node.toml") && err.contains("arithmetic = \"openssl\""),
                "{err}"
            );
        }
    }

    #[test]
    fn a_relative_coordinator_identity_is_resolved_against_the_config_files_directory() {
        let dir = std::env::temp_dir().join(format!("tcrypto-cfg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let node = crate::transport::identity::NodeIdentity::generate("n1", &mut rand::rng()).unwrap();
        let p = dir.join("coordinator.toml");
        std::fs::write(
            &p,
            format!(
                "identity = \"coordinator.identity\"\n[[nodes]]\naddress = \"127.0.0.1:1\"\npublic = \"{}\"\n",
                hex::encode(node.public().encode())
            ),
        )
        .unwrap();
        let cfg = CoordinatorConfigFile::load(&p).unwrap();
        assert_eq!(cfg.identity, dir.join("coordinator.identity"));
    }

    #[test]
    fn a_sealed_coordinator_identity_opens_with_the_configured_passphrase_file_and_names_the_file_otherwise()
    {
        use crate::transport::identity::SealedTlsIdentity;
        let dir = std::env::temp_dir().join(format!("tcrypto-cfg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let node = crate::transport::identity::NodeIdentity::generate("n1", &mut rand::rng()).unwrap();
        let id = TlsIdentity::generate("coordinator").unwrap();
        let sealed = SealedTlsIdentity::seal(
            &id,
            "s3cret",
            crate::node::store::KdfCost::TESTING,
            &mut rand::rng(),
        )
        .unwrap();
        std::fs::write(dir.join("coordinator.identity"), sealed.encode()).unwrap();
        let nodes = format!(
            "[[nodes]]\naddress = \"127.0.0.1:1\"\npublic = \"{}\"\n",
            hex::encode(node.public().encode())
        );
        let p = dir.join("coordinator.toml");
        std::fs::write(&p, format!("identity = \"coordinator.identity\"\n{nodes}")).unwrap();
        let cfg = CoordinatorConfigFile::load(&p).unwrap();
        // An explicit passphrase (the PKCS#11 PIN) opens it without any configured source.
        assert_eq!(
            cfg.load_identity(Some("s3cret")).unwrap().fingerprint(),
            id.fingerprint()
        );
        let err = cfg.load_identity(Some("nope")).unwrap_err().to_string();
        assert!(
            err.contains("coordinator.identity") && err.contains("wrong passphrase"),
            "{err}"
        );
        // The configured file, relative to the configuration, with its trailing newline.
        std::fs::write(dir.join("pass"), "s3cret\n").unwrap();
        std::fs::write(
            &p,
            format!("identity = \"coordinator.identity\"\npassphrase_file = \"pass\"\n{nodes}"),
        )
        .unwrap();
        let cfg = CoordinatorConfigFile::load(&p).unwrap();
        assert_eq!(cfg.load_identity(None).unwrap().fingerprint(), id.fingerprint());
    }
}
