//! Backup and restore of a node's state: `tcrypto-node backup` and `tcrypto-node restore`.
//!
//! **What is in an archive.** The node identity, every key share, tentative DKG shares and the deliveries this node
//! keeps for others, and the store manifest: the sealed files of the store as they are on disk (each still sealed
//! under the store key), plus `node.pub` and the audit log's signed head (`audit.log.head`, so the restored node's
//! audit chain goes on from the same position and a verifier sees where the restored log starts).
//!
//! **What is not, on purpose.** Presignatures and their spent log, and FROST nonces (kept in memory only): one-time
//! material. A restored node therefore holds no presignature at all and cannot use one twice, whatever happened
//! after the backup was taken (the coordinator's stock that refers to it fails on that node and is replaced; the
//! presignature witness would make it discard a restored stock anyway). The audit log itself is not copied: ship
//! it off the machine as it grows.
//!
//! **Format.** A codec object (tag [`TAG_BACKUP`]) holding the store's `store.meta` in clear (salt, Argon2id
//! costs and the sealed check value: nothing secret), the creation time, a nonce, then the contents sealed with
//! ChaCha20-Poly1305 under a key derived from the store key for this purpose, with everything before the
//! ciphertext as associated data. Opening an archive therefore needs the store's passphrase or key file, exactly
//! as starting the node does; a flipped byte anywhere is [`BackupError::Damaged`].
//!
//! **Restore** writes into a temporary directory beside the target, checks that every secret opens under the
//! store key and that the identity decodes, then renames it into place: an interrupted restore leaves no
//! half-written data directory.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use tcrypto::codec::{DecodeError, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::node::store::{SecretStore, StoreError, StoreKeySource, create_private_dir, private_file_options};

/// Codec tag of an archive.
pub const TAG_BACKUP: u8 = 0x9a;
/// Codec tag of an archive's sealed contents.
const TAG_BACKUP_CONTENTS: u8 = 0x9b;
/// Purpose string of the archive key ([`SecretStore::mac_key`]).
const KEY_PURPOSE: &str = "tcrypto-net backup archive v1";
/// Store names never archived (one-time material: presignature batches and their state).
const ONE_TIME_PREFIX: &str = "presig";
/// The store's parameter file and the node's public identity, in the data directory.
const META_FILE: &str = "store.meta";
const NODE_PUB: &str = "node.pub";
const AUDIT_HEAD: &str = "audit.log.head";
const SECRETS_DIR: &str = "secrets";

/// Errors of backup and restore.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The key store refused (wrong passphrase, damaged `store.meta`, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The archive does not decode or does not open (changed, truncated, or not an archive).
    #[error("{path}: backup archive damaged: {detail}")]
    Damaged {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The output or target exists already.
    #[error("{0} exists already: refusing to overwrite")]
    Exists(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`write_backup`] archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Secrets archived (identity, shares, DKG state, manifest).
    pub secrets: usize,
    /// Secrets left out as one-time material.
    pub skipped_one_time: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// The archive's plaintext.
#[derive(Default)]
struct Contents {
    node_public: Vec<u8>,
    audit_head: Vec<u8>,
    /// Store name and the sealed file as on disk.
    secrets: Vec<(String, Vec<u8>)>,
}

impl Contents {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(TAG_BACKUP_CONTENTS);
        w.bytes(&self.node_public).bytes(&self.audit_head);
        w.u32(u32::try_from(self.secrets.len()).unwrap_or(u32::MAX));
        for (name, file) in &self.secrets {
            w.bytes(name.as_bytes()).bytes(file);
        }
        Zeroizing::new(w.finish())
    }

    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_BACKUP_CONTENTS)?;
        let node_public = r.bytes()?.to_vec();
        let audit_head = r.bytes()?.to_vec();
        let n = r.u32()?;
        let mut secrets = Vec::new();
        for _ in 0..n {
            let name = std::str::from_utf8(r.bytes()?)
                .map_err(|_| DecodeError::Invalid("secret name"))?
                .to_string();
            secrets.push((name, r.bytes()?.to_vec()));
        }
        r.finish()?;
        Ok(Self {
            node_public,
            audit_head,
            secrets,
        })
    }
}

fn cipher(store: &SecretStore) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&(*store.mac_key(KEY_PURPOSE)).into())
}

/// The archive header (everything before the ciphertext, which it authenticates).
fn header(meta: &[u8], created_ms: u64, nonce: &[u8; 12]) -> Vec<u8> {
    let mut w = Writer::new(TAG_BACKUP);
    w.bytes(meta).u64(created_ms).raw(nonce);
    w.finish()
}

/// A decoded archive: its header fields and the ciphertext.
#[derive(Debug)]
pub struct Archive<'a> {
    /// The store's `store.meta`.
    pub meta: &'a [u8],
    /// When the archive was made (ms since the Unix epoch).
    pub created_ms: u64,
    nonce: [u8; 12],
    header_len: usize,
    ciphertext: &'a [u8],
}

impl<'a> Archive<'a> {
    /// Decodes an archive strictly (the ciphertext is opened by [`restore_backup`]).
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, TAG_BACKUP)?;
        let meta = r.bytes()?;
        let created_ms = r.u64()?;
        let nonce = r.array::<12>()?;
        let header_len = b.len() - r.remaining();
        let ciphertext = r.raw(r.remaining())?;
        r.finish()?;
        if ciphertext.len() < 16 {
            return Err(DecodeError::Invalid("ciphertext shorter than its tag"));
        }
        Ok(Self {
            meta,
            created_ms,
            nonce,
            header_len,
            ciphertext,
        })
    }
}

/// Writes an archive of the store in `store` (whose data directory holds `node.pub` and maybe the audit head) to
/// `out` (created 0600; refuses to overwrite). Safe beside a running daemon: every file is read whole, and the
/// store replaces files atomically.
pub fn write_backup(
    store: &SecretStore,
    out: &Path,
    created_ms: u64,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<BackupSummary, BackupError> {
    if out.exists() {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    let dir = store.dir();
    let read = |p: PathBuf| fs::read(&p).map_err(io_err(&p));
    let meta = read(dir.join(META_FILE))?;
    let mut contents = Contents {
        node_public: read(dir.join(NODE_PUB))?,
        audit_head: match fs::read(dir.join(AUDIT_HEAD)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&dir.join(AUDIT_HEAD))(e)),
        },
        secrets: Vec::new(),
    };
    let mut skipped = 0;
    let mut names = store.list()?;
    names.push("manifest".to_string());
    for name in names {
        if name.starts_with(ONE_TIME_PREFIX) {
            skipped += 1;
            continue;
        }
        let path = store.path_of(&name);
        match fs::read(&path) {
            Ok(file) => contents.secrets.push((name, file)),
            // Deleted between listing and reading (a key deleted meanwhile).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let head = header(&meta, created_ms, &nonce);
    let plaintext = contents.encode();
    let sealed = cipher(store)
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &plaintext,
                aad: &head,
            },
        )
        .map_err(|_| BackupError::Damaged {
            path: out.to_path_buf(),
            detail: "sealing failed".into(),
        })?;
    let mut archive = head;
    archive.extend_from_slice(&sealed);
    let mut f = private_file_options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(io_err(out))?;
    f.write_all(&archive).map_err(io_err(out))?;
    f.sync_all().map_err(io_err(out))?;
    Ok(BackupSummary {
        secrets: contents.secrets.len(),
        skipped_one_time: skipped,
        bytes: archive.len(),
    })
}

/// What [`restore_backup`] restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Secrets restored.
    pub secrets: usize,
    /// When the archive was made (ms since the Unix epoch).
    pub created_ms: u64,
}

/// Restores the archive at `archive` into `data_dir`, which must not exist or be an empty directory; `key` is the
/// store's passphrase or key file (as when the archive was made). Nothing is left at `data_dir` unless everything
/// was written and every secret opened.
pub fn restore_backup(
    archive: &Path,
    data_dir: &Path,
    key: &StoreKeySource,
) -> Result<RestoreSummary, BackupError> {
    let bytes = fs::read(archive).map_err(io_err(archive))?;
    let damaged = |detail: String| BackupError::Damaged {
        path: archive.to_path_buf(),
        detail,
    };
    let parsed = Archive::decode(&bytes).map_err(|e| damaged(e.to_string()))?;
    if data_dir.exists() {
        let empty = fs::read_dir(data_dir).map_err(io_err(data_dir))?.next().is_none();
        if !empty {
            return Err(BackupError::Exists(data_dir.to_path_buf()));
        }
    }
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let tmp = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let result = (|| {
        create_private_dir(&tmp.join(SECRETS_DIR)).map_err(io_err(&tmp))?;
        write_file(&tmp.join(META_FILE), parsed.meta)?;
        // The store key opens `store.meta` (a wrong passphrase is said here, as at start-up).
        let store = SecretStore::open(&tmp, key)?;
        let plaintext = Zeroizing::new(
            cipher(&store)
                .decrypt(
                    &parsed.nonce.into(),
                    Payload {
                        msg: parsed.ciphertext,
                        aad: &bytes[..parsed.header_len],
                    },
                )
                .map_err(|_| {
                    damaged("contents do not open under the store key (changed or truncated)".into())
                })?,
        );
        let contents = Contents::decode(&plaintext).map_err(|e| damaged(e.to_string()))?;
        write_file(&tmp.join(NODE_PUB), &contents.node_public)?;
        if !contents.audit_head.is_empty() {
            write_file(&tmp.join(AUDIT_HEAD), &contents.audit_head)?;
        }
        for (name, file) in &contents.secrets {
            let path = store.path_of(name);
            if path.parent() != Some(tmp.join(SECRETS_DIR).as_path()) || name.starts_with('.') {
                return Err(damaged(format!("invalid secret name {name:?}")));
            }
            write_file(&path, file)?;
        }
        // Every secret must open, and the identity must be there.
        for (name, _) in &contents.secrets {
            if name != "manifest" {
                store.get(name)?;
            }
        }
        if store.get("identity")?.is_none() {
            return Err(damaged("no node identity in the archive".into()));
        }
        sync(&tmp.join(SECRETS_DIR))?;
        sync(&tmp)?;
        if data_dir.exists() {
            fs::remove_dir(data_dir).map_err(io_err(data_dir))?;
        }
        fs::rename(&tmp, data_dir).map_err(io_err(data_dir))?;
        sync(parent)?;
        Ok(RestoreSummary {
            secrets: contents.secrets.len(),
            created_ms: parsed.created_ms,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn sync(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
