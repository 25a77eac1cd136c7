//! The embedded backend: an in-process threshold cluster for tests and the quickstart.
//!
//! `n` simulated nodes each keep their key shares in their own directory (`<dir>/node-<i>/`); a signature is
//! computed from `k` shares, one node after the other on the caller's thread (no thread is created), and
//! combined exactly as the networked coordinator does (optimistic combine, then blame). A node whose share is
//! missing or unreadable is skipped while `k` others answer. It is genuinely threshold (no file holds a whole
//! key; RSA keys come from the trusted dealer of `tcrypto::rsa`), but every share sits on this machine and
//! share files are not encrypted: it protects nothing against a compromise of this machine. Use the cluster
//! backend in production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand_core::UnwrapErr;
use tcrypto::rsa::{self, MessageEncoding};
use tcrypto::{SessionId, SignerId};

use super::{
    Backend, BackendError, Capabilities, KeyKind, KeyRef, PrivateKeyMaterial, PublicKey, SignRequest,
};
use crate::config::EmbeddedConfig;
use crate::error::{Error, Result};

/// First byte of a [`KeyRef`] of an RSA key; the rest is the `tcrypto` key id.
const TAG_RSA: u8 = 0x01;

/// The in-process threshold cluster.
#[derive(Debug)]
pub struct EmbeddedBackend {
    dir: PathBuf,
    threshold: u16,
    parties: u16,
    /// TEST ONLY: committed safe primes by bit length.
    test_primes: Option<BTreeMap<u32, Vec<Vec<u8>>>>,
}

/// The operating system's CSPRNG as a `rand_core` generator (a failure of the OS source panics, which the ABI
/// guard turns into `CKR_GENERAL_ERROR`).
fn os_rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

fn protocol(e: impl core::fmt::Display) -> BackendError {
    BackendError::Protocol(e.to_string())
}

impl EmbeddedBackend {
    /// Opens (creating the node directories if needed) the embedded cluster described by `cfg`.
    pub fn new(cfg: &EmbeddedConfig) -> Result<Self> {
        for d in (1..=cfg.parties)
            .map(|i| node_dir(&cfg.dir, i))
            .chain([cfg.dir.join("public")])
        {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::Config(format!("embedded node directory {}: {e}", d.display())))?;
        }
        let test_primes = cfg.rsa_test_primes.as_deref().map(load_primes).transpose()?;
        Ok(Self {
            dir: cfg.dir.clone(),
            threshold: cfg.threshold,
            parties: cfg.parties,
            test_primes,
        })
    }

    fn share_path(&self, node: u16, key: &KeyRef) -> PathBuf {
        node_dir(&self.dir, node).join(hex(&key.0))
    }

    fn public_path(&self, key: &KeyRef) -> PathBuf {
        self.dir.join("public").join(hex(&key.0))
    }

    fn rsa_generate(&self, bits: usize) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut rng = os_rng();
        let (k, n) = (self.threshold, self.parties);
        let dealt = match &self.test_primes {
            Some(by_size) => {
                let half = u32::try_from(bits / 2).map_err(|_| BackendError::KeySize)?;
                let primes = by_size
                    .get(&half)
                    .filter(|p| p.len() >= 2)
                    .ok_or(BackendError::KeySize)?;
                let mut pick = [0u8; 2];
                getrandom::fill(&mut pick).map_err(|e| BackendError::Protocol(e.to_string()))?;
                let i = usize::from(pick[0]) % primes.len();
                let j = (i + 1 + usize::from(pick[1]) % (primes.len() - 1)) % primes.len();
                let p = rsa::SafePrime::from_be_bytes(&primes[i]).map_err(protocol)?;
                let q = rsa::SafePrime::from_be_bytes(&primes[j]).map_err(protocol)?;
                rsa::deal_with_primes(&p, &q, 65537, k, n, &mut rng)
            }
            None => rsa::deal(bits, k, n, &mut rng),
        };
        let (public, shares) = dealt.map_err(protocol)?;
        self.store_rsa(&public, shares)
    }

    fn store_rsa(
        &self,
        public: &rsa::PublicKeySet,
        shares: Vec<rsa::KeyShare>,
    ) -> Result<(PublicKey, KeyRef), BackendError> {
        let mut id = vec![TAG_RSA];
        id.extend_from_slice(public.key_id().as_bytes());
        let key = KeyRef(id);
        write_atomic(&self.public_path(&key), &public.encode())?;
        for s in shares {
            write_atomic(&self.share_path(s.id().get(), &key), &s.encode())?;
        }
        let e = public.public_exponent().to_be_bytes();
        let start = e.iter().position(|b| *b != 0).unwrap_or(e.len() - 1);
        Ok((
            PublicKey::Rsa {
                modulus: public.modulus_bytes(),
                public_exponent: e[start..].to_vec(),
            },
            key,
        ))
    }

    fn rsa_sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        let msg = match request {
            SignRequest::RsaPkcs1 { hash, digest } => MessageEncoding::Pkcs1v15 {
                hash: *hash,
                digest: digest.clone(),
            },
            SignRequest::RsaPkcs1DigestInfo { digest_info } => MessageEncoding::Pkcs1v15DigestInfo {
                digest_info: digest_info.clone(),
            },
            SignRequest::RsaPss { hash, digest, salt } => MessageEncoding::Pss {
                hash: *hash,
                digest: digest.clone(),
                salt: salt.clone(),
            },
            _ => return Err(BackendError::Unsupported("mechanism does not fit an RSA key")),
        };
        let public = match std::fs::read(self.public_path(key)) {
            Ok(b) => rsa::PublicKeySet::decode(&b).map_err(protocol)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackendError::UnknownKey),
            Err(e) => return Err(e.into()),
        };
        let mut rng = os_rng();
        let session = SessionId::random(&mut rng);
        let mut shares = BTreeMap::new();
        for node in 1..=self.parties {
            if shares.len() == usize::from(self.threshold) {
                break;
            }
            // Each node: load its share, check it belongs to this key, sign its share with a proof.
            let answer = std::fs::read(self.share_path(node, key))
                .map_err(protocol)
                .and_then(|b| rsa::KeyShare::decode(&b).map_err(protocol))
                .and_then(|s| s.check_against(&public).map(|()| s).map_err(protocol))
                .and_then(|s| s.sign_share(&session, &msg, &mut rng).map_err(protocol));
            match (answer, SignerId::new(node)) {
                (Ok(share), Some(id)) => {
                    shares.insert(id, share);
                }
                (Err(e), _) => tracing::warn!(node, error = %e, "embedded node did not answer"),
                (_, None) => {}
            }
        }
        if shares.len() < usize::from(self.threshold) {
            return Err(BackendError::Cluster(format!(
                "only {} of the {} nodes needed answered",
                shares.len(),
                self.threshold
            )));
        }
        let combined = rsa::combine(&public, &session, &msg, &shares).map_err(protocol)?;
        if !combined.culprits.is_empty() {
            tracing::warn!(culprits = ?combined.culprits, "misbehaving nodes excluded");
        }
        Ok(combined.signature)
    }
}

impl Backend for EmbeddedBackend {
    fn capabilities(&self) -> Capabilities {
        let rsa_bits = match &self.test_primes {
            Some(by_size) => {
                let sizes: Vec<usize> = by_size
                    .iter()
                    .filter(|(_, v)| v.len() >= 2)
                    .map(|(b, _)| *b as usize * 2)
                    .collect();
                (
                    sizes.first().copied().unwrap_or(0),
                    sizes.last().copied().unwrap_or(0),
                )
            }
            None => (2048, 4096), // the dealer generates 2048 bits and more
        };
        Capabilities {
            rsa: rsa_bits.1 > 0,
            p256: false,
            ed25519: false,
            rsa_bits,
        }
    }

    fn generate(&self, kind: KeyKind) -> Result<(PublicKey, KeyRef), BackendError> {
        match kind {
            KeyKind::Rsa { bits } => self.rsa_generate(bits),
            KeyKind::P256 | KeyKind::Ed25519 => Err(BackendError::Unsupported(
                "EC threshold keys are not available in the embedded cluster yet",
            )),
        }
    }

    fn import(&self, key: PrivateKeyMaterial) -> Result<(PublicKey, KeyRef), BackendError> {
        match key {
            PrivateKeyMaterial::RsaPkcs1Der(der) => {
                let (public, shares) =
                    rsa::split(&der, self.threshold, self.parties, &mut os_rng()).map_err(protocol)?;
                self.store_rsa(&public, shares)
            }
        }
    }

    fn sign(&self, key: &KeyRef, request: &SignRequest) -> Result<Vec<u8>, BackendError> {
        match key.0.first() {
            Some(&TAG_RSA) => self.rsa_sign(key, request),
            _ => Err(BackendError::UnknownKey),
        }
    }

    fn destroy(&self, key: &KeyRef) -> Result<(), BackendError> {
        for path in (1..=self.parties)
            .map(|i| self.share_path(i, key))
            .chain([self.public_path(key)])
        {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn node_dir(dir: &Path, i: u16) -> PathBuf {
    dir.join(format!("node-{i}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a file so that readers see the old or the new content, never a torn one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Reads a file of hexadecimal safe primes, one per line (`#` comments), grouped by bit length.
fn load_primes(path: &Path) -> Result<BTreeMap<u32, Vec<Vec<u8>>>> {
    let bad = |m: String| Error::Config(format!("rsa_test_primes {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut out: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let digits = if line.len() % 2 == 1 {
            format!("0{line}")
        } else {
            line.to_string()
        };
        let bytes = (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<core::result::Result<Vec<u8>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let bits = crate::object::modulus_bits(&bytes) as u32;
        out.entry(bits).or_default().push(bytes);
    }
    Ok(out)
}
