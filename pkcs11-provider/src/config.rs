//! Module configuration: a TOML file named by `TCHSM_PKCS11_CONFIG`, else [`DEFAULT_CONFIG_PATH`].
//!
//! Read by `C_Initialize` (never at load time). A missing or malformed file makes `C_Initialize` fail with
//! `CKR_GENERAL_ERROR` and one log line that names the file and the problem. Relative paths inside the file are
//! resolved against the file's directory.
//!
//! ```toml
//! store = "objects.sqlite"      # SQLite object store (token metadata, public keys, PIN hashes)
//! backend = "embedded"          # "embedded": in-process threshold cluster (tests, quickstart)
//! min_pin_len = 4
//! pin_max_tries = 10            # wrong PINs before the PIN locks (CKR_PIN_LOCKED); 0: never locks
//! log_file = "tchsm-pkcs11.log" # the module's log (plain text, 0600); none: the module logs nothing
//! log_level = "info"            # a tracing filter: error, warn, info, debug, or per target
//!
//! [[tokens]]                    # one slot per token, in this order
//! label = "tchsm"
//!
//! [embedded]
//! dir = "embedded-nodes"        # one sub-directory of share files per simulated node
//! threshold = 2
//! parties = 3
//! ```
//!
//! With `backend = "cluster"`, a `[cluster]` table names a `tcrypto-net` coordinator configuration file (the same
//! format `tcrypto-node coordinator-init` and the cluster tools use: coordinator identity, nodes with addresses
//! and pinned identities, request timeout) and the threshold of keys made here. The coordinator identity is sealed
//! with the token's user PIN: `C_Login` opens it (see [`crate::backend::cluster`]).
//!
//! ```toml
//! backend = "cluster"
//! [cluster]
//! coordinator = "coordinator.toml"
//! threshold = 3
//! # pool = 64            # presignatures / FROST nonce commitments kept ready per key by this process
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "TCHSM_PKCS11_CONFIG";
/// Configuration file used when the environment variable is unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tchsm/pkcs11.toml";

/// The parsed configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of the SQLite object store.
    pub store: PathBuf,
    /// Which key backend to use.
    pub backend: BackendKind,
    /// Shortest PIN accepted (default 4).
    #[serde(default = "default_min_pin")]
    pub min_pin_len: usize,
    /// Consecutive wrong PINs after which that PIN is locked (default 10; 0: never). A locked user PIN is
    /// unlocked by the SO setting a new one (`C_InitPIN`); a locked SO PIN only by re-initialising the token,
    /// which the SO PIN guards: do not lose it.
    #[serde(default = "default_pin_max_tries")]
    pub pin_max_tries: u32,
    /// File the module appends its log to (plain text, created 0600); without it the module logs nothing (it
    /// never writes to the host's stderr). Relative to the configuration file.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// What is logged: a `tracing` filter (`error`, `warn`, `info`, `debug`, or per target); default `info`.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Tokens, one per slot (slot id = position).
    pub tokens: Vec<TokenConfig>,
    /// Settings of the embedded backend.
    #[serde(default)]
    pub embedded: Option<EmbeddedConfig>,
    /// Settings of the cluster backend.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

/// The networked cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A `tcrypto-net` coordinator configuration file ([`tcrypto_net::config::CoordinatorConfigFile`]).
    pub coordinator: PathBuf,
    /// Shares needed to sign (`k`) for keys generated or imported through the module; every node of the
    /// coordinator file gets one share.
    pub threshold: u16,
    /// TEST ONLY: a file of committed safe primes used instead of generating new ones (as for `[embedded]`).
    #[serde(default)]
    pub rsa_test_primes: Option<PathBuf>,
    /// Ready ECDSA presignatures and FROST nonce commitments the coordinator keeps per key (refilled when below a
    /// quarter of this). PKCS#11 hosts are often short-lived processes (`pkcs11-tool`, one signer run), and a
    /// process's pool dies with it, so the default (64) is a quarter of the long-running coordinator's.
    #[serde(default = "default_pool")]
    pub pool: usize,
}

fn default_pool() -> usize {
    64
}

/// The key backend selected by `backend = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// An in-process threshold cluster computed on the caller's thread (tests and quickstart; every share sits
    /// on this machine, so it protects nothing against a compromise of this machine).
    Embedded,
    /// The networked cluster (`tcrypto-net` coordinator driver).
    Cluster,
}

/// One token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The label reported before `C_InitToken` sets one (at most 32 bytes).
    pub label: String,
}

/// The embedded threshold cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Directory holding one sub-directory of share files per simulated node.
    pub dir: PathBuf,
    /// Shares needed to sign (`k`).
    pub threshold: u16,
    /// Share holders (`n`).
    pub parties: u16,
    /// TEST ONLY: a file of committed safe primes used instead of generating new ones, so RSA key generation in
    /// tests is fast. Every key made from the same file has the same modulus.
    #[serde(default)]
    pub rsa_test_primes: Option<PathBuf>,
}

fn default_min_pin() -> usize {
    4
}

fn default_pin_max_tries() -> u32 {
    10
}

impl Config {
    /// Loads the configuration named by the environment (or the default path).
    pub fn load_from_env() -> Result<Self> {
        let path = std::env::var_os(CONFIG_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        Self::load(&path)
    }

    /// Loads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if cfg.tokens.is_empty() {
            return Err(Error::Config("at least one [[tokens]] entry is required".into()));
        }
        for t in &cfg.tokens {
            if t.label.len() > 32 {
                return Err(Error::Config(format!(
                    "token label {:?} longer than 32 bytes",
                    t.label
                )));
            }
        }
        if cfg.min_pin_len == 0 || cfg.min_pin_len > 255 {
            return Err(Error::Config("min_pin_len must be in 1..=255".into()));
        }
        cfg.store = resolve(base, &cfg.store);
        if let Some(f) = &cfg.log_file {
            cfg.log_file = Some(resolve(base, f));
        }
        if let Some(level) = &cfg.log_level {
            tracing_subscriber::EnvFilter::try_new(level)
                .map_err(|e| Error::Config(format!("log_level {level:?}: {e}")))?;
        }
        match (cfg.backend, cfg.embedded.as_mut()) {
            (BackendKind::Embedded, None) => {
                return Err(Error::Config(
                    "backend = \"embedded\" needs an [embedded] table".into(),
                ));
            }
            (BackendKind::Embedded, Some(e)) => {
                if e.threshold == 0 || e.threshold > e.parties {
                    return Err(Error::Config("embedded: need 1 <= threshold <= parties".into()));
                }
                e.dir = resolve(base, &e.dir);
                e.rsa_test_primes = e.rsa_test_primes.as_ref().map(|p| resolve(base, p));
            }
            (BackendKind::Cluster, _) => match cfg.cluster.as_mut() {
                None => {
                    return Err(Error::Config(
                        "backend = \"cluster\" needs a [cluster] table".into(),
                    ));
                }
                Some(c) => {
                    if c.threshold == 0 {
                        return Err(Error::Config("cluster: threshold must be at least 1".into()));
                    }
                    c.coordinator = resolve(base, &c.coordinator);
                    c.rsa_test_primes = c.rsa_test_primes.as_ref().map(|p| resolve(base, p));
                }
            },
        }
        Ok(cfg)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        store = "objects.sqlite"
        backend = "embedded"
        [[tokens]]
        label = "tchsm"
        [embedded]
        dir = "nodes"
        threshold = 2
        parties = 3
    "#;

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let cfg = Config::parse(GOOD, Path::new("/etc/x")).unwrap();
        assert_eq!(cfg.store, PathBuf::from("/etc/x/objects.sqlite"));
        assert_eq!(cfg.embedded.unwrap().dir, PathBuf::from("/etc/x/nodes"));
        assert_eq!(cfg.min_pin_len, 4);
    }

    #[test]
    fn unknown_keys_and_bad_thresholds_are_rejected() {
        let unknown = format!("{GOOD}\nfoo = 1");
        assert!(matches!(
            Config::parse(&unknown, Path::new("/")),
            Err(Error::Config(_))
        ));
        let bad = GOOD.replace("threshold = 2", "threshold = 4");
        assert!(matches!(
            Config::parse(&bad, Path::new("/")),
            Err(Error::Config(_))
        ));
        let no_tokens = GOOD.replace("[[tokens]]\n        label = \"tchsm\"", "");
        assert!(matches!(
            Config::parse(&no_tokens, Path::new("/")),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Config::load(Path::new("/nonexistent/tchsm.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/tchsm.toml"), "{err}");
    }
}
