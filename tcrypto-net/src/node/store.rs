//! Secrets at rest: the node's identity and key shares, encrypted, written crash-safely.
//!
//! The data directory holds `store.meta` (how the store key is derived, plus a known plaintext sealed under it, so a
//! wrong passphrase is a clear error at start rather than garbage later) and one file per secret under `secrets/`.
//! The store key comes from an Argon2id passphrase hash (salt and cost in `store.meta`) or from a 32-byte key file.
//! Each secret is sealed with ChaCha20-Poly1305 under a fresh random nonce, its name bound as associated data so
//! files cannot be swapped. Every write goes to a temporary file in the same directory, is fsynced, renamed over the
//! old file and the directory fsynced: after a crash a file is the old or the new version, never a torn one.
//!
//! **Damage is named, not mistaken for a wrong passphrase.** `store.meta` ends with a SHA-256 of its contents (files
//! written before that checksum existed are still read), so a flipped byte there is reported as damage to
//! `store.meta`; its Argon2id cost fields are bounded ([`KdfCost::MAX_M_KIB`], [`KdfCost::MAX_T`],
//! [`KdfCost::MAX_P`], [`KdfCost::MAX_WORK`]) before any hashing, so a damaged field can neither run for minutes nor
//! allocate gigabytes. A secret that does not open is [`StoreError::Corrupt`] naming its file, and can be moved
//! aside with [`SecretStore::quarantine`] (into `quarantine/`) so that the rest of the store keeps serving.
//!
//! **Deletions are noticed.** A manifest (`secrets/manifest.sealed`, sealed like any secret, so it cannot be
//! edited without the store key) lists every secret except presignature batches (which have their own sealed
//! state, see `crate::node::ec::presign`). [`SecretStore::put`] and [`SecretStore::delete`] keep it current;
//! [`SecretStore::check_manifest`] reports names listed but missing (deleted or lost files) and adopts sealed
//! files that are not listed (written by another process, e.g. `tcrypto-node import`: they open under the store
//! key, so only a holder of that key made them).
//!
//! **One server per directory.** A daemon holds an exclusive lock on `serve.lock` ([`lock_data_dir`]) for as
//! long as it runs (released by the kernel when the process dies, even by `kill -9`): a second daemon started on
//! the same directory would share the spent-presignature state and could use a presignature twice, so it is
//! refused with [`StoreError::InUse`]. Manifest updates take a lock on `manifest.lock` so that a
//! `tcrypto-node import` beside a running daemon loses neither process's entries.
//!
//! **Modes.** Directories the store creates are 0700 and every file it writes is 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{Algorithm as ArgonAlg, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hmac::{Hmac, Mac as _};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Mutex;
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::transport::wire::{TAG_STORE_META, TAG_STORED_SHARE};

const META_FILE: &str = "store.meta";
const SECRETS_DIR: &str = "secrets";
const SUFFIX: &str = ".sealed";
const CHECK_PLAINTEXT: &[u8] = b"tcrypto-net key store v1";
/// The manifest's secret name.
const MANIFEST: &str = "manifest";
/// Directory (in the data directory) where damaged files are moved.
pub const QUARANTINE_DIR: &str = "quarantine";
/// The lock file of a data directory (held by the process that serves it, [`lock_data_dir`]).
pub const LOCK_FILE: &str = "serve.lock";
/// The lock file that serialises manifest updates across processes (`tcrypto-node import` beside a daemon).
const MANIFEST_LOCK_FILE: &str = "manifest.lock";
/// Names starting with this are not listed in the manifest (presignature batches have their own sealed state).
const UNTRACKED_PREFIX: &str = "presig";

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
    #[error("{} is damaged or was tampered with (it does not open under the store key)", path.display())]
    Corrupt {
        /// The secret's name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// `store.meta` is damaged (checksum mismatch, undecodable, or cost parameters out of bounds).
    #[error("{}: the key store's parameter file is damaged: {detail}", path.display())]
    DamagedMeta {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// `init` with an empty passphrase.
    #[error("refusing an empty passphrase for the key store")]
    EmptyPassphrase,
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
    /// Another process serves this data directory ([`lock_data_dir`]).
    #[error("data directory {} is in use by another tcrypto-node ({holder})", dir.display())]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says about its holder (its process id), or `unknown process`.
        holder: String,
    },
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
    /// Most memory accepted: 1 GiB.
    pub const MAX_M_KIB: u32 = 1 << 20;
    /// Most passes accepted.
    pub const MAX_T: u32 = 16;
    /// Most lanes accepted.
    pub const MAX_P: u32 = 16;
    /// Most work accepted, `m_kib * t` (KiB passes): 2 GiB passes, about ten times the default.
    pub const MAX_WORK: u64 = 2 << 20;

    /// Checks the parameters against the bounds (before any hashing).
    pub fn check(self) -> Result<(), String> {
        if self.p == 0 || self.p > Self::MAX_P {
            return Err(format!("Argon2id lanes {} outside 1..={}", self.p, Self::MAX_P));
        }
        if self.t == 0 || self.t > Self::MAX_T {
            return Err(format!("Argon2id passes {} outside 1..={}", self.t, Self::MAX_T));
        }
        if self.m_kib < 8 * self.p || self.m_kib > Self::MAX_M_KIB {
            return Err(format!(
                "Argon2id memory {} KiB outside {}..={} KiB",
                self.m_kib,
                8 * self.p,
                Self::MAX_M_KIB
            ));
        }
        if u64::from(self.m_kib) * u64::from(self.t) > Self::MAX_WORK {
            return Err(format!(
                "Argon2id work {} KiB x {} passes above {} KiB passes",
                self.m_kib,
                self.t,
                Self::MAX_WORK
            ));
        }
        Ok(())
    }
}

/// An opened secret store.
pub struct SecretStore {
    dir: PathBuf,
    secrets: PathBuf,
    cipher: ChaCha20Poly1305,
    /// Root of the MAC keys handed out by [`SecretStore::mac_key`].
    mac_root: Zeroizing<[u8; 32]>,
    tmp_counter: AtomicU64,
    /// Serialises this process's manifest updates.
    manifest_lock: Mutex<()>,
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
        let mut f = private_file_options()
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

/// Proof that this process serves a data directory: an exclusive lock on its [`LOCK_FILE`], released when the
/// value is dropped or the process ends (however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory `dir` for this process (see the module docs); [`StoreError::InUse`] naming the
/// holder's process id when another process has it. The lock file is 0600 and holds the holder's process id.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = match io::Read::read_to_string(&mut file, &mut text) {
                Ok(_) if !text.trim().is_empty() => format!("pid {}", text.trim()),
                _ => "unknown process".to_string(),
            };
            return Err(StoreError::InUse {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
    }
    file.set_len(0).map_err(io_err("truncate", &path))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io_err("write", &path))?;
    Ok(DataDirLock { _file: file })
}

/// Options that create files with mode 0600 (secrets, logs, state: nothing the node writes is for other users).
pub fn private_file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
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
    create_private_dir(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let f = private_file_options()
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
        if let StoreKeySource::Passphrase(p) = source
            && p.is_empty()
        {
            return Err(StoreError::EmptyPassphrase);
        }
        cost.check().map_err(StoreError::Kdf)?;
        check_writable(dir)?;
        let meta_path = dir.join(META_FILE);
        if meta_path.exists() {
            return Err(StoreError::AlreadyInitialised(dir.to_path_buf()));
        }
        let secrets = dir.join(SECRETS_DIR);
        create_private_dir(&secrets).map_err(io_err("create directory", &secrets))?;
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
        let mut meta = w.finish();
        let sum = Sha256::digest(&meta);
        meta.extend_from_slice(&sum);
        write_atomic(dir, META_FILE, &meta, 0)?;
        store.write_manifest(&BTreeSet::new(), rng)?;
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
        let damaged = |detail: String| StoreError::DamagedMeta {
            path: meta_path.clone(),
            detail,
        };
        let mut r = Reader::new(&meta, TAG_STORE_META).map_err(|e| damaged(e.to_string()))?;
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
            Ok((salt, cost, nonce, check))
        })()
        .map_err(|e: DecodeError| damaged(e.to_string()))?;
        // Since the checksum was added the file ends with the SHA-256 of what precedes it; older files end here.
        match r.remaining() {
            0 => {}
            32 => {
                let body = &meta[..meta.len() - 32];
                if Sha256::digest(body).as_slice() != &meta[meta.len() - 32..] {
                    return Err(damaged("checksum mismatch".into()));
                }
            }
            n => return Err(damaged(format!("{n} unexpected bytes at the end"))),
        }
        cost.check().map_err(damaged)?;
        let key = derive_key(source, &salt, cost)?;
        let store = Self::with_key(dir, &key);
        match store.open_raw(META_FILE, &nonce, &check) {
            Ok(pt) if pt.as_slice() == CHECK_PLAINTEXT => Ok(store),
            _ => Err(StoreError::WrongKey(dir.to_path_buf())),
        }
    }

    fn with_key(dir: &Path, key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"tcrypto-net store MAC keys v1");
        h.update(key);
        let mut mac_root = Zeroizing::new([0u8; 32]);
        mac_root.copy_from_slice(&h.finalize());
        Self {
            dir: dir.to_path_buf(),
            secrets: dir.join(SECRETS_DIR),
            cipher: ChaCha20Poly1305::new(&(*key).into()),
            mac_root,
            tmp_counter: AtomicU64::new(1),
            manifest_lock: Mutex::new(()),
        }
    }

    /// A 32-byte key for authenticating data with HMAC-SHA256, derived from the store key for `purpose` (distinct
    /// purposes get independent keys).
    pub fn mac_key(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.mac_root[..]) {
            m.update(purpose.as_bytes());
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        out
    }

    /// The file of secret `name`.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.secrets.join(format!("{name}{SUFFIX}"))
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
                path: self.path_of(name),
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
                path: if name == META_FILE {
                    self.dir.join(META_FILE)
                } else {
                    self.path_of(name)
                },
            })
    }

    /// Encrypts and crash-safely writes the secret `name`, replacing any previous version, and lists it in the
    /// manifest (after the file is written: a crash in between leaves a sealed file that is adopted at start).
    pub fn put(&self, name: &str, plaintext: &[u8], rng: &mut impl CryptoRng) -> Result<(), StoreError> {
        self.put_file(name, plaintext, rng)?;
        if tracked(name) {
            self.update_manifest(|m| m.insert(name.to_string()), rng)?;
        }
        Ok(())
    }

    fn put_file(&self, name: &str, plaintext: &[u8], rng: &mut impl CryptoRng) -> Result<(), StoreError> {
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

    /// Deletes the secret `name` (no error if absent) and removes it from the manifest (before the file: a crash in
    /// between leaves an unlisted sealed file, adopted at start, never a listed name without its file).
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        valid_name(name)?;
        if tracked(name) {
            self.update_manifest(|m| m.remove(name), &mut rand::rng())?;
        }
        let path = self.path_of(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.secrets),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", &path)(e)),
        }
    }

    /// Moves the file of secret `name` (or `file`, a file of the data directory) into `quarantine/` under a name
    /// that says when; returns where it went. The file is kept for the operator, never read again.
    pub fn quarantine(&self, name: &str) -> Result<PathBuf, StoreError> {
        valid_name(name)?;
        self.quarantine_path(&self.path_of(name))
    }

    /// Moves the file `path` (inside the data directory) into `quarantine/`; returns where it went.
    pub fn quarantine_path(&self, path: &Path) -> Result<PathBuf, StoreError> {
        let q = self.dir.join(QUARANTINE_DIR);
        create_private_dir(&q).map_err(io_err("create directory", &q))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("unnamed")
            .to_string();
        let target = q.join(format!("{file}.{stamp}"));
        fs::rename(path, &target).map_err(io_err("quarantine", path))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(target)
    }

    /// Files moved into `quarantine/` so far.
    pub fn quarantined(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(self.dir.join(QUARANTINE_DIR))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    fn read_manifest(&self) -> Result<Option<BTreeSet<String>>, StoreError> {
        let Some(plain) = self.get(MANIFEST)? else {
            return Ok(None);
        };
        let path = self.path_of(MANIFEST);
        let decode_err = |source| StoreError::Decode {
            path: path.clone(),
            source,
        };
        let mut r = Reader::bare(&plain);
        let n = r.count(4).map_err(decode_err)?;
        let mut names = BTreeSet::new();
        for _ in 0..n {
            let name = r.bytes().map_err(decode_err)?;
            let name = std::str::from_utf8(name)
                .map_err(|_| decode_err(DecodeError::Invalid("secret name not UTF-8")))?;
            names.insert(name.to_string());
        }
        r.finish().map_err(decode_err)?;
        Ok(Some(names))
    }

    fn write_manifest(&self, names: &BTreeSet<String>, rng: &mut impl CryptoRng) -> Result<(), StoreError> {
        let mut w = Writer::bare();
        w.u32(u32::try_from(names.len()).unwrap_or(u32::MAX));
        for n in names {
            w.bytes(n.as_bytes());
        }
        self.put_file(MANIFEST, &w.finish(), rng)
    }

    /// Waits for the cross-process manifest lock; held until the returned file is dropped.
    fn lock_manifest_file(&self) -> Result<File, StoreError> {
        let path = self.dir.join(MANIFEST_LOCK_FILE);
        let file = private_file_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        Ok(file)
    }

    /// Read-modify-write of the manifest from disk (so that another process's additions are kept).
    fn update_manifest(
        &self,
        change: impl FnOnce(&mut BTreeSet<String>) -> bool,
        rng: &mut impl CryptoRng,
    ) -> Result<(), StoreError> {
        let _g = self.manifest_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _across = self.lock_manifest_file()?;
        // A manifest that is missing or does not open is rebuilt by `check_manifest` at start; until then the
        // listed names are what the files say.
        let mut names = match self.read_manifest() {
            Ok(Some(m)) => m,
            _ => self.list()?.into_iter().filter(|n| tracked(n)).collect(),
        };
        if change(&mut names) {
            self.write_manifest(&names, rng)?;
        }
        Ok(())
    }

    /// Compares the manifest with the files: names listed without a file are reported missing; sealed files not
    /// listed are added. A manifest that is missing or damaged is quarantined (when damaged) and rebuilt from the
    /// files, and reported (deletions before that moment cannot be told).
    pub fn check_manifest(&self, rng: &mut impl CryptoRng) -> Result<ManifestReport, StoreError> {
        let _g = self.manifest_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _across = self.lock_manifest_file()?;
        let files: BTreeSet<String> = self.list()?.into_iter().filter(|n| tracked(n)).collect();
        let mut report = ManifestReport::default();
        let listed = match self.read_manifest() {
            Ok(Some(m)) => m,
            Ok(None) => {
                report.problem = Some(format!("{} is missing", self.path_of(MANIFEST).display()));
                BTreeSet::new()
            }
            Err(e) => {
                let moved = self.quarantine(MANIFEST)?;
                report.problem = Some(format!("{e}; moved to {}", moved.display()));
                BTreeSet::new()
            }
        };
        report.missing = listed.difference(&files).cloned().collect();
        report.adopted = files.difference(&listed).cloned().collect();
        if report.problem.is_some() || !report.adopted.is_empty() {
            let mut names = listed;
            names.extend(report.adopted.iter().cloned());
            self.write_manifest(&names, rng)?;
        }
        Ok(report)
    }

    /// Removes `name` from the manifest although it has no file (the operator's answer to a reported missing
    /// secret: the key is deleted).
    pub fn forget(&self, name: &str) -> Result<(), StoreError> {
        self.update_manifest(|m| m.remove(name), &mut rand::rng())
    }

    /// Names of the stored secrets (temporary files left by a crash, and the manifest, are ignored).
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.secrets).map_err(io_err("list", &self.secrets))? {
            let entry = entry.map_err(io_err("list", &self.secrets))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(SUFFIX)
                && !stem.starts_with('.')
                && stem != MANIFEST
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

/// Whether the manifest lists `name`.
fn tracked(name: &str) -> bool {
    name != MANIFEST && !name.starts_with(UNTRACKED_PREFIX)
}

/// What [`SecretStore::check_manifest`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManifestReport {
    /// Listed secrets whose file is gone.
    pub missing: Vec<String>,
    /// Sealed files that were not listed and now are.
    pub adopted: Vec<String>,
    /// The manifest itself was missing or damaged (and was rebuilt from the files).
    pub problem: Option<String>,
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

    #[test]
    fn a_flipped_byte_in_store_meta_is_named_as_damage_not_a_wrong_passphrase() {
        let d = tempdir("meta-flip");
        SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        let meta = d.join(META_FILE);
        let good = fs::read(&meta).unwrap();
        for at in [3, 19, 24, 30, good.len() - 40, good.len() - 1] {
            let mut b = good.clone();
            b[at] ^= 0x01;
            fs::write(&meta, &b).unwrap();
            let err = SecretStore::open(&d, &pass("pw")).unwrap_err();
            assert!(matches!(err, StoreError::DamagedMeta { .. }), "byte {at}: {err}");
            assert!(err.to_string().contains(&meta.display().to_string()), "{err}");
        }
        fs::write(&meta, &good).unwrap();
        SecretStore::open(&d, &pass("pw")).unwrap();
    }

    #[test]
    fn kdf_costs_out_of_bounds_are_refused_before_hashing() {
        // A store.meta from before the checksum (nothing to catch the flip but the bounds).
        let d = tempdir("meta-bounds");
        SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        let meta = d.join(META_FILE);
        let good = fs::read(&meta).unwrap();
        let legacy = &good[..good.len() - 32];
        fs::write(&meta, legacy).unwrap();
        SecretStore::open(&d, &pass("pw")).unwrap();
        // m_kib (16 GiB), t, p: a flipped high byte in each.
        for at in [19, 23, 27] {
            let mut b = legacy.to_vec();
            b[at] ^= 0x01;
            fs::write(&meta, &b).unwrap();
            let err = SecretStore::open(&d, &pass("pw")).unwrap_err();
            assert!(matches!(err, StoreError::DamagedMeta { .. }), "byte {at}: {err}");
            assert!(err.to_string().contains("Argon2id"), "{err}");
        }
        assert!(KdfCost::DEFAULT.check().is_ok());
        assert!(
            SecretStore::create(
                &tempdir("meta-cost"),
                &pass("pw"),
                KdfCost {
                    m_kib: 1 << 24,
                    t: 1,
                    p: 1
                },
                &mut rand::rng()
            )
            .is_err()
        );
    }

    #[test]
    fn an_empty_passphrase_is_refused() {
        let d = tempdir("empty");
        assert!(matches!(
            SecretStore::create(&d, &pass(""), KdfCost::TESTING, &mut rand::rng()),
            Err(StoreError::EmptyPassphrase)
        ));
        assert!(!d.join(META_FILE).exists());
    }

    #[test]
    fn the_manifest_notices_deleted_files_and_adopts_unlisted_ones() {
        let d = tempdir("manifest");
        let s = SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        s.put("key-a", b"A", &mut rand::rng()).unwrap();
        s.put("key-b", b"B", &mut rand::rng()).unwrap();
        s.put("presig-x", b"P", &mut rand::rng()).unwrap();
        assert_eq!(
            s.check_manifest(&mut rand::rng()).unwrap(),
            ManifestReport::default()
        );
        fs::remove_file(s.path_of("key-a")).unwrap();
        // Another process (another handle on the store) writes a key: adopted, not a problem.
        let other = SecretStore::open(&d, &pass("pw")).unwrap();
        other.put_file("key-c", b"C", &mut rand::rng()).unwrap();
        fs::remove_file(s.path_of("presig-x")).unwrap();
        let r = s.check_manifest(&mut rand::rng()).unwrap();
        assert_eq!(r.missing, vec!["key-a".to_string()]);
        assert_eq!(r.adopted, vec!["key-c".to_string()]);
        assert!(r.problem.is_none());
        // Still missing until forgotten; the adopted one is now listed.
        let r = s.check_manifest(&mut rand::rng()).unwrap();
        assert_eq!(r.missing, vec!["key-a".to_string()]);
        assert!(r.adopted.is_empty());
        s.forget("key-a").unwrap();
        assert_eq!(
            s.check_manifest(&mut rand::rng()).unwrap(),
            ManifestReport::default()
        );
        // A damaged manifest is moved aside and rebuilt, and said so.
        let mut b = fs::read(s.path_of(MANIFEST)).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        fs::write(s.path_of(MANIFEST), b).unwrap();
        let r = s.check_manifest(&mut rand::rng()).unwrap();
        assert!(r.problem.unwrap().contains("manifest.sealed"));
        assert_eq!(s.quarantined().len(), 1);
        assert_eq!(
            s.check_manifest(&mut rand::rng()).unwrap(),
            ManifestReport::default()
        );
    }

    #[test]
    fn store_files_are_0600_and_directories_0700() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempdir("modes").join("data");
        let s = SecretStore::create(&d, &pass("pw"), KdfCost::TESTING, &mut rand::rng()).unwrap();
        s.put("key-a", b"A", &mut rand::rng()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join(SECRETS_DIR)), 0o700);
        assert_eq!(mode(&d.join(META_FILE)), 0o600);
        assert_eq!(mode(&s.path_of("key-a")), 0o600);
        assert_eq!(mode(&s.path_of(MANIFEST)), 0o600);
    }
}
