//! Secrets at rest: the node's identity and key shares, encrypted, written crash-safely.
//!
//! The data directory holds `store.meta` (how the store key is derived, plus a known plaintext sealed under it, so a
//! wrong passphrase is a clear error at start rather than garbage later) and one file per secret under `secrets/`.
//! The store key comes from an Argon2id passphrase hash (salt and cost in `store.meta`) or from a 32-byte key file.
//! Each secret is sealed with ChaCha20-Poly1305 under a fresh random nonce, its name bound as associated data so
//! files cannot be swapped. Every write goes to a temporary file in the same directory, is fsynced, renamed over the
//! old file and the directory fsynced: after a crash a file is the old or the new version, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{Algorithm as ArgonAlg, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::wire::{TAG_STORE_META, TAG_STORED_SHARE};

const META_FILE: &str = "store.meta";
const SECRETS_DIR: &str = "secrets";
const SUFFIX: &str = ".sealed";
const CHECK_PLAINTEXT: &[u8] = b"tcrypto-net key store v1";

/// Errors of the secret store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The data directory cannot be written.
    #[error("data directory {path} is not writable: {source}")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The passphrase or key file does not open this store.
    #[error("wrong passphrase or key file for the key store in {0}")]
    WrongKey(PathBuf),
    /// There is no store in the directory (run `tcrypto-node init`).
    #[error("no key store in {0} (run `tcrypto-node init` first)")]
    NotInitialised(PathBuf),
    /// `init` on a directory that already has a store.
    #[error("a key store already exists in {0}")]
    AlreadyInitialised(PathBuf),
    /// A stored file is corrupt or was tampered with.
    #[error("stored secret {name} is corrupt or was tampered with")]
    Corrupt {
        /// The secret's name.
        name: String,
    },
    /// A file does not decode.
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: DecodeError,
    },
    /// A key file is not 32 bytes (raw or 64 hex digits).
    #[error("key file {0} must hold 32 raw bytes or 64 hex digits")]
    BadKeyFile(PathBuf),
    /// Argon2 refused the parameters.
    #[error("Argon2id: {0}")]
    Kdf(String),
    /// A secret name with characters other than `[A-Za-z0-9._-]`.
    #[error("invalid secret name {0:?}")]
    BadName(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Where the store key comes from.
pub enum StoreKeySource {
    /// An Argon2id hash of this passphrase.
    Passphrase(Zeroizing<String>),
    /// A file holding 32 random bytes (raw, or as 64 hex digits).
    KeyFile(PathBuf),
}

impl std::fmt::Debug for StoreKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKeySource::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            StoreKeySource::KeyFile(p) => f.debug_tuple("KeyFile").field(p).finish(),
        }
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfCost {
    /// The default for new stores: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// Cheap parameters for tests only.
    pub const TESTING: Self = Self {
        m_kib: 64,
        t: 1,
        p: 1,
    };
}

/// An opened secret store.
pub struct SecretStore {
    dir: PathBuf,
    secrets: PathBuf,
    cipher: ChaCha20Poly1305,
    tmp_counter: AtomicU64,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn derive_key(
    source: &StoreKeySource,
    salt: &[u8; 16],
    cost: KdfCost,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    match source {
        StoreKeySource::Passphrase(p) => {
            let params = Params::new(cost.m_kib, cost.t, cost.p, Some(32))
                .map_err(|e| StoreError::Kdf(e.to_string()))?;
            Argon2::new(ArgonAlg::Argon2id, Version::V0x13, params)
                .hash_password_into(p.as_bytes(), salt, key.as_mut())
                .map_err(|e| StoreError::Kdf(e.to_string()))?;
        }
        StoreKeySource::KeyFile(path) => {
            let raw = Zeroizing::new(fs::read(path).map_err(io_err("read key file", path))?);
            let text = std::str::from_utf8(&raw).ok().map(str::trim);
            let bytes: Zeroizing<Vec<u8>> = match text.and_then(|t| hex::decode(t).ok()) {
                Some(b) if b.len() == 32 => Zeroizing::new(b),
                _ if raw.len() == 32 => Zeroizing::new(raw.to_vec()),
                _ => return Err(StoreError::BadKeyFile(path.clone())),
            };
            let mut h = Sha256::new();
            h.update(b"tcrypto-net key file v1");
            h.update(salt);
            h.update(&bytes[..]);
            key.copy_from_slice(&h.finalize());
        }
    }
    Ok(key)
}

/// Writes `bytes` to `dir/name` so that after a crash the file is either the old or the new content: temporary
/// file, fsync, rename, fsync of the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], counter: u64) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".{name}.tmp-{}-{counter}", std::process::id()));
    let target = dir.join(name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(io_err("rename", &target))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Checks that `dir` exists (creating it) and that files can be created in it.
pub fn check_writable(dir: &Path) -> Result<(), StoreError> {
    let not_writable = |source| StoreError::NotWritable {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(not_writable)?;
    drop(f);
    fs::remove_file(&probe).map_err(not_writable)
}

fn valid_name(name: &str) -> Result<(), StoreError> {
    if !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::BadName(name.to_string()))
    }
}

impl SecretStore {
    /// Creates a new store in `dir` (which may exist but must not hold a store).
    pub fn create(
        dir: &Path,
        source: &StoreKeySource,
        cost: KdfCost,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, StoreError> {
        check_writable(dir)?;
        let meta_path = dir.join(META_FILE);
        if meta_path.exists() {
            return Err(StoreError::AlreadyInitialised(dir.to_path_buf()));
        }
        let secrets = dir.join(SECRETS_DIR);
        fs::create_dir_all(&secrets).map_err(io_err("create directory", &secrets))?;
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let key = derive_key(source, &salt, cost)?;
        let store = Self::with_key(dir, &key);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let check = store.seal_raw(META_FILE, &nonce, CHECK_PLAINTEXT)?;
        let mut w = Writer::new(TAG_STORE_META);
        w.u8(match source {
            StoreKeySource::Passphrase(_) => 1,
            StoreKeySource::KeyFile(_) => 2,
        });
        w.raw(&salt)
            .u32(cost.m_kib)
            .u32(cost.t)
            .u32(cost.p)
            .raw(&nonce)
            .bytes(&check);
        write_atomic(dir, META_FILE, &w.finish(), 0)?;
        Ok(store)
    }

    /// Opens the store in `dir`: checks the directory is writable, derives the key and checks it.
    pub fn open(dir: &Path, source: &StoreKeySource) -> Result<Self, StoreError> {
        check_writable(dir)?;
        let meta_path = dir.join(META_FILE);
        let meta = match fs::read(&meta_path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotInitialised(dir.to_path_buf()));
            }
            Err(e) => return Err(io_err("read", &meta_path)(e)),
        };
        let decode_err = |source| StoreError::Decode {
            path: meta_path.clone(),
            source,
        };
        let mut r = Reader::new(&meta, TAG_STORE_META).map_err(decode_err)?;
        let (salt, cost, nonce, check) = (|| {
            let _kind = r.u8()?;
            let salt = r.array::<16>()?;
            let cost = KdfCost {
                m_kib: r.u32()?,
                t: r.u32()?,
                p: r.u32()?,
            };
            let nonce = r.array::<12>()?;
            let check = r.bytes()?.to_vec();
            r.clone().finish()?;
            Ok((salt, cost, nonce, check))
        })()
        .map_err(decode_err)?;
        let key = derive_key(source, &salt, cost)?;
        let store = Self::with_key(dir, &key);
        match store.open_raw(META_FILE, &nonce, &check) {
            Ok(pt) if pt.as_slice() == CHECK_PLAINTEXT => Ok(store),
            _ => Err(StoreError::WrongKey(dir.to_path_buf())),
        }
    }

    fn with_key(dir: &Path, key: &[u8; 32]) -> Self {
        Self {
            dir: dir.to_path_buf(),
            secrets: dir.join(SECRETS_DIR),
            cipher: ChaCha20Poly1305::new(&(*key).into()),
            tmp_counter: AtomicU64::new(1),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn aad(name: &str) -> Vec<u8> {
        let mut w = Writer::new(TAG_STORED_SHARE);
        w.bytes(name.as_bytes());
        w.finish()
    }

    fn seal_raw(&self, name: &str, nonce: &[u8; 12], pt: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.cipher
            .encrypt(
                &(*nonce).into(),
                Payload {
                    msg: pt,
                    aad: &Self::aad(name),
                },
            )
            .map_err(|_| StoreError::Corrupt {
                name: name.to_string(),
            })
    }

    fn open_raw(&self, name: &str, nonce: &[u8; 12], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.cipher
            .decrypt(
                &(*nonce).into(),
                Payload {
                    msg: ct,
                    aad: &Self::aad(name),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Corrupt {
                name: name.to_string(),
            })
    }

    /// Encrypts and crash-safely writes the secret `name`, replacing any previous version.
    pub fn put(&self, name: &str, plaintext: &[u8], rng: &mut impl CryptoRng) -> Result<(), StoreError> {
        valid_name(name)?;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let ct = self.seal_raw(name, &nonce, plaintext)?;
        let mut w = Writer::new(TAG_STORED_SHARE);
        w.raw(&nonce).bytes(&ct);
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        write_atomic(&self.secrets, &format!("{name}{SUFFIX}"), &w.finish(), n)
    }

    /// Reads and decrypts the secret `name`; `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        valid_name(name)?;
        let path = self.secrets.join(format!("{name}{SUFFIX}"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let decode_err = |source| StoreError::Decode {
            path: path.clone(),
            source,
        };
        let mut r = Reader::new(&bytes, TAG_STORED_SHARE).map_err(decode_err)?;
        let nonce = r.array::<12>().map_err(decode_err)?;
        let ct = r.bytes().map_err(decode_err)?;
        r.finish().map_err(decode_err)?;
        self.open_raw(name, &nonce, ct).map(Some)
    }

    /// Deletes the secret `name` (no error if absent).
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        valid_name(name)?;
        let path = self.secrets.join(format!("{name}{SUFFIX}"));
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.secrets),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", &path)(e)),
        }
    }

    /// Names of the stored secrets (temporary files left by a crash are ignored).
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.secrets).map_err(io_err("list", &self.secrets))? {
            let entry = entry.map_err(io_err("list", &self.secrets))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(SUFFIX)
                && !stem.starts_with('.')
            {
                out.push(stem.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes temporary files left by a crash during a write.
    pub fn remove_stale_temporaries(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for dir in [&self.dir, &self.secrets] {
            for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
                let entry = entry.map_err(io_err("list", dir))?;
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|s| s.starts_with('.') && s.contains(".tmp-"))
                {
                    fs::remove_file(entry.path()).map_err(io_err("delete", &entry.path()))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(p: &str) -> StoreKeySource {
        StoreKeySource::Passphrase(Zeroizing::new(p.to_string()))
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tcrypto-net-store-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn secrets_round_trip_and_are_not_stored_in_clear() {
        let d = tempdir("rt");
        let s = SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        s.put("key-abc", b"very secret share", &mut rand::rng()).unwrap();
        assert_eq!(
            s.get("key-abc").unwrap().unwrap().as_slice(),
            b"very secret share"
        );
        assert_eq!(s.list().unwrap(), vec!["key-abc".to_string()]);
        let raw = fs::read(d.join("secrets/key-abc.sealed")).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        let reopened = SecretStore::open(&d, &pass("pw")).unwrap();
        assert_eq!(
            reopened.get("key-abc").unwrap().unwrap().as_slice(),
            b"very secret share"
        );
        s.delete("key-abc").unwrap();
        assert!(s.get("key-abc").unwrap().is_none());
    }

    #[test]
    fn wrong_passphrase_is_a_clear_error() {
        let d = tempdir("wrong");
        SecretStore::create(&d, &pass("right"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        let err = SecretStore::open(&d, &pass("wrong")).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey(_)), "{err}");
        assert!(err.to_string().contains("wrong passphrase"));
    }

    #[test]
    fn key_file_opens_the_store_and_another_key_file_does_not() {
        let d = tempdir("kf");
        let kf = d.join("store.key");
        fs::write(&kf, hex::encode([7u8; 32])).unwrap();
        let other = d.join("other.key");
        fs::write(&other, [8u8; 32]).unwrap();
        SecretStore::create(
            &d,
            &StoreKeySource::KeyFile(kf.clone()),
            KdfCost::TESTING,
            &mut rand::rng(),
        )
        .unwrap();
        SecretStore::open(&d, &StoreKeySource::KeyFile(kf)).unwrap();
        assert!(matches!(
            SecretStore::open(&d, &StoreKeySource::KeyFile(other)),
            Err(StoreError::WrongKey(_))
        ));
        let short = d.join("short.key");
        fs::write(&short, b"abc").unwrap();
        assert!(matches!(
            SecretStore::open(&d, &StoreKeySource::KeyFile(short)),
            Err(StoreError::BadKeyFile(_))
        ));
    }

    #[test]
    fn swapped_or_tampered_files_are_detected() {
        let d = tempdir("swap");
        let s = SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        s.put("a", b"AAAA", &mut rand::rng()).unwrap();
        s.put("b", b"BBBB", &mut rand::rng()).unwrap();
        fs::copy(d.join("secrets/a.sealed"), d.join("secrets/b.sealed")).unwrap();
        assert!(matches!(s.get("b"), Err(StoreError::Corrupt { .. })));
        let mut raw = fs::read(d.join("secrets/a.sealed")).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(d.join("secrets/a.sealed"), raw).unwrap();
        assert!(matches!(s.get("a"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn missing_store_and_existing_store_are_clear_errors() {
        let d = tempdir("missing");
        assert!(matches!(
            SecretStore::open(&d, &pass("pw")),
            Err(StoreError::NotInitialised(_))
        ));
        SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        assert!(matches!(
            SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()),
            Err(StoreError::AlreadyInitialised(_))
        ));
    }

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        let d = tempdir("names");
        let s = SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        for bad in ["../x", "a/b", "", ".hidden"] {
            assert!(matches!(
                s.put(bad, b"x", &mut rand::rng()),
                Err(StoreError::BadName(_))
            ));
        }
    }
}
