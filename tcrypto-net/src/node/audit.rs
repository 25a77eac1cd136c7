//! The node's append-only, tamper-evident audit log: one line per request, written before the answer leaves the
//! node.
//!
//! Each line holds its position `seq`, the time (ms since the Unix epoch), the requester's pinned key fingerprint,
//! the request id and session, the operation, key, mechanism, what was asked to be signed (a digest or DigestInfo
//! in hex; a message, as Ed25519 signs, only by its SHA-256: messages are never logged in clear), the outcome, and
//! `chain`, the SHA-256 of the previous entry's `chain` and this entry's text. Entries are chained across files.
//!
//! **Checkpoints.** [`AuditLog::sync`] (every second in the daemon, and before a key creation is acknowledged)
//! appends, when entries were added since the last one, an `op=audit-checkpoint` entry whose `sig` is an Ed25519
//! signature by the node identity key over its `seq` and `chain`, and writes the same into `audit.log.head`
//! (crash-safely). Whoever edits, removes, reorders or inserts an entry must recompute every later `chain`, which
//! breaks the next signed checkpoint; whoever cuts the log short contradicts the head file. Only the entries after
//! the last checkpoint (at most about a second's worth) are protected by the chain alone. Rewinding the log *and*
//! the head file to an older consistent copy is not detectable from the node's disk.
//!
//! **Rotation.** When the file reaches [`Rotation::max_bytes`] or its first entry is older than
//! [`Rotation::max_age`], it is closed with a checkpoint and renamed `audit.log.N` (N = 1, 2, ... in order, never
//! reused), and the new `audit.log` starts with an `op=audit-rotated` entry that continues the chain.
//! [`verify`] checks all files in order. A node killed mid-write leaves a torn last line: [`verify`] reports and
//! skips it (the log verifies up to its last complete entry), and the next writer removes it (that request was
//! never answered).
//!
//! Writers in several processes (the daemon and `tcrypto-node import`) take an exclusive lock on the file for each
//! entry and pick the chain up from its end, so the chain never forks.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tcrypto::{KeyId, SessionId};

use crate::transport::identity::SpkiFingerprint;
use crate::transport::wire::{ErrorCode, RequestId};

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Node time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The requester's TLS key fingerprint (`None` for an in-process transport).
    pub requester: Option<SpkiFingerprint>,
    /// Request id.
    pub request: RequestId,
    /// Session id.
    pub session: SessionId,
    /// Operation name.
    pub operation: &'static str,
    /// Key concerned, if any.
    pub key: Option<KeyId>,
    /// Mechanism name, if signing.
    pub mechanism: Option<&'static str>,
    /// The digest / DigestInfo / message given to sign.
    pub payload: Option<Vec<u8>>,
    /// `Ok(())` or the error answered.
    pub outcome: Result<(), ErrorCode>,
    /// The policy rule that refused the request, if one did ([`crate::node::policy::Rule`]).
    pub rule: Option<&'static str>,
}

impl AuditRecord {
    /// The log line (without newline).
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(s, "time_ms={}", self.time_ms);
        match &self.requester {
            Some(fp) => {
                let _ = write!(s, " requester={fp}");
            }
            None => s.push_str(" requester=local"),
        }
        let _ = write!(
            s,
            " request={} session={} op={}",
            self.request, self.session, self.operation
        );
        if let Some(k) = &self.key {
            let _ = write!(s, " key={k}");
        }
        if let Some(m) = self.mechanism {
            let _ = write!(s, " mechanism={m}");
        }
        if let Some(p) = &self.payload {
            // Ed25519 and data-carrying requests sign the data itself: never logged in clear.
            let data = self
                .mechanism
                .is_some_and(|m| m == "ed25519" || m == "dnssec-rrsig" || m.ends_with("-data"));
            if p.len() <= 64 && !data {
                let _ = write!(s, " digest={}", hex::encode(p));
            } else {
                let _ = write!(s, " message_sha256={}", hex::encode(Sha256::digest(p)));
            }
        }
        match self.outcome {
            Ok(()) => s.push_str(" outcome=ok"),
            Err(code) => {
                let _ = write!(s, " outcome=error:{code:?}");
            }
        }
        if let Some(rule) = self.rule {
            let _ = write!(s, " rule={rule}");
        }
        s
    }
}

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Appends a record; an error makes the node refuse to answer the request.
    fn record(&self, rec: &AuditRecord) -> io::Result<()>;

    /// Makes the records so far durable (called before a key creation is acknowledged).
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// When [`AuditLog`] starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Size at which the file is rotated (at the next [`AuditLog::sync`]).
    pub max_bytes: u64,
    /// Age of a file's first entry at which it is rotated; `None`: by size only.
    pub max_age: Option<Duration>,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_age: None,
        }
    }
}

/// Domain of the chain's starting value and of checkpoint signatures.
const CHAIN_GENESIS: &[u8] = b"tcrypto-net audit chain v1";
const CHECKPOINT_DOMAIN: &[u8] = b"tcrypto-net audit checkpoint v1";
/// Longest tail read to find where the chain stands.
const TAIL_BYTES: u64 = 1 << 16;

/// The chain value before entry 1.
fn genesis() -> [u8; 32] {
    Sha256::digest(CHAIN_GENESIS).into()
}

fn chain_next(prev: &[u8; 32], text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(text.as_bytes());
    h.finalize().into()
}

/// What a checkpoint signature covers.
fn checkpoint_message(seq: u64, chain: &[u8; 32]) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(chain);
    m
}

/// Where the chain stands: the last entry's position and chain value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChainHead {
    seq: u64,
    chain: [u8; 32],
}

/// One parsed chained line.
#[derive(Debug)]
struct Entry<'a> {
    seq: u64,
    /// The text the chain covers (everything before ` chain=`).
    text: &'a str,
    chain: [u8; 32],
    sig: Option<[u8; 64]>,
}

fn parse_entry(line: &str) -> Option<Entry<'_>> {
    let (text, rest) = line.rsplit_once(" chain=")?;
    let (chain_hex, sig_hex) = match rest.split_once(" sig=") {
        Some((c, s)) => (c, Some(s)),
        None => (rest, None),
    };
    let chain: [u8; 32] = hex::decode(chain_hex).ok()?.try_into().ok()?;
    let sig = match sig_hex {
        Some(s) => Some(hex::decode(s).ok()?.try_into().ok()?),
        None => None,
    };
    let seq = text.strip_prefix("seq=")?.split(' ').next()?.parse().ok()?;
    Some(Entry {
        seq,
        text,
        chain,
        sig,
    })
}

/// The last complete chained entry in the tail of `file`, and the length of a torn last line (0 if none).
fn read_tail(file: &mut File) -> io::Result<(Option<ChainHead>, u64)> {
    let len = file.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let torn = if buf.last().is_some_and(|b| *b != b'\n') {
        let kept = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        (buf.len() - kept) as u64
    } else {
        0
    };
    let text = String::from_utf8_lossy(&buf);
    let mut complete: Vec<&str> = text.split('\n').collect();
    complete.pop(); // after the last newline: empty or torn
    let head = complete.iter().rev().find_map(|l| {
        parse_entry(l).map(|e| ChainHead {
            seq: e.seq,
            chain: e.chain,
        })
    });
    Ok((head, torn))
}

/// The head file beside `log`.
pub fn head_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".head");
    log.with_file_name(name)
}

fn read_head(path: &Path) -> Option<(ChainHead, [u8; 64])> {
    let text = std::fs::read_to_string(path).ok()?;
    let e = parse_entry(text.trim_end())?;
    Some((
        ChainHead {
            seq: e.seq,
            chain: e.chain,
        },
        e.sig?,
    ))
}

/// The rotated files of `log` (`audit.log.1`, `audit.log.2`, ...), oldest first, with their numbers.
pub fn rotated_files(log: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let Some(name) = log.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = log
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix('.'))
            .and_then(|f| f.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

struct Inner {
    file: File,
    head: ChainHead,
    /// The file's length after our last write (another process appended if it differs).
    len: u64,
    /// Entries since the last checkpoint.
    unsigned: u64,
    /// Time of the current file's first entry.
    first_ms: Option<u64>,
}

/// A chained audit file (see the module docs).
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    signer: Option<SigningKey>,
    rotation: Rotation,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("signed", &self.signer.is_some())
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn open_append(path: &Path) -> io::Result<File> {
    crate::node::store::private_file_options()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
}

impl AuditLog {
    /// Opens (creating, mode 0600) `path` for appending, without checkpoint signatures and with the default
    /// [`Rotation`].
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, None, Rotation::default())
    }

    /// Opens (creating, mode 0600) `path` for appending; checkpoints are signed with `signer` (the node identity
    /// key) when given. If the head file records more entries than the log holds (the log was cut short or
    /// replaced), the chain goes on from the head file's position, so the loss stays visible to [`verify`].
    pub fn open_with(path: &Path, signer: Option<SigningKey>, rotation: Rotation) -> io::Result<Self> {
        let mut file = open_append(path)?;
        file.lock()?;
        let (tail, torn) = read_tail(&mut file)?;
        if torn > 0 {
            // The last writer died mid-line (that request was never answered): drop the fragment.
            let len = file.metadata()?.len();
            file.set_len(len - torn)?;
        }
        let mut head = tail.unwrap_or(ChainHead {
            seq: 0,
            chain: genesis(),
        });
        if let Some((recorded, _)) = read_head(&head_path(path))
            && recorded.seq > head.seq
        {
            tracing::error!(
                log = %path.display(),
                log_ends_at = head.seq,
                head_file_says = recorded.seq,
                "audit log shorter than its head file: entries were removed; the chain goes on from the head file"
            );
            head = recorded;
        }
        let len = file.metadata()?.len();
        file.unlock()?;
        Ok(Self {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                head,
                len,
                unsigned: 0,
                first_ms: None,
            }),
            signer,
            rotation,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| io::Error::other("audit log lock poisoned"))
    }

    /// Takes the file lock, switching to the current file if another process rotated it and picking the chain
    /// up from the end if another process appended.
    fn acquire(&self, inner: &mut Inner) -> io::Result<()> {
        inner.file.lock()?;
        let result = (|| {
            // One fstat serves both the rotation check and the length (a syscall per audited request).
            let mut ours = inner.file.metadata()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt as _;
                let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
                if current != Some(ours.ino()) {
                    let _ = inner.file.unlock();
                    inner.file = open_append(&self.path)?;
                    inner.file.lock()?;
                    inner.len = u64::MAX;
                    inner.first_ms = None;
                    ours = inner.file.metadata()?;
                }
            }
            let len = ours.len();
            if len != inner.len {
                let (tail, torn) = read_tail(&mut inner.file)?;
                if let Some(t) = tail
                    && t.seq >= inner.head.seq
                {
                    inner.head = t;
                }
                if torn > 0 {
                    // A writer died mid-line (its request was never answered): drop the fragment.
                    let len = inner.file.metadata()?.len();
                    inner.file.set_len(len - torn)?;
                }
                inner.len = inner.file.metadata()?.len();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = inner.file.unlock();
        }
        result
    }

    /// Appends one entry made of `fields` (the file lock held), signing it when `checkpoint`.
    fn append(&self, inner: &mut Inner, fields: &str, checkpoint: bool) -> io::Result<()> {
        let seq = inner.head.seq + 1;
        let text = format!("seq={seq} {fields}");
        let chain = chain_next(&inner.head.chain, &text);
        let mut line = format!("{text} chain={}", hex::encode(chain));
        if checkpoint && let Some(k) = &self.signer {
            let sig = k.sign(&checkpoint_message(seq, &chain));
            let _ = write!(line, " sig={}", hex::encode(sig.to_bytes()));
        }
        line.push('\n');
        inner.file.write_all(line.as_bytes())?;
        inner.len += line.len() as u64;
        inner.head = ChainHead { seq, chain };
        inner.unsigned = if checkpoint { 0 } else { inner.unsigned + 1 };
        if inner.first_ms.is_none() {
            inner.first_ms = fields
                .strip_prefix("time_ms=")
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok());
        }
        Ok(())
    }

    /// Writes a signed checkpoint entry and the head file (the file lock held).
    fn checkpoint(&self, inner: &mut Inner) -> io::Result<()> {
        if self.signer.is_none() || inner.unsigned == 0 {
            return Ok(());
        }
        self.append(inner, &format!("time_ms={} op=audit-checkpoint", now_ms()), true)?;
        inner.file.sync_data()?;
        if let Some(k) = &self.signer {
            let ChainHead { seq, chain } = inner.head;
            let sig = k.sign(&checkpoint_message(seq, &chain));
            let text = format!(
                "seq={seq} chain={} sig={}\n",
                hex::encode(chain),
                hex::encode(sig.to_bytes())
            );
            let head = head_path(&self.path);
            let dir = head.parent().unwrap_or(Path::new("."));
            let name = head
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("audit.log.head");
            crate::node::store::write_atomic(dir, name, text.as_bytes(), seq).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// Closes the current file with a checkpoint, renames it `audit.log.N` and starts a new one (the file lock
    /// held, and kept on the new file).
    fn rotate(&self, inner: &mut Inner) -> io::Result<()> {
        inner.unsigned = inner.unsigned.max(1);
        self.checkpoint(inner)?;
        inner.file.sync_data()?;
        let next = rotated_files(&self.path)?.last().map_or(1, |(n, _)| n + 1);
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(format!(".{next}"));
        let rotated = self.path.with_file_name(name);
        std::fs::rename(&self.path, &rotated)?;
        let file = open_append(&self.path)?;
        file.lock()?;
        let _ = inner.file.unlock();
        inner.file = file;
        inner.len = 0;
        inner.first_ms = None;
        let previous = rotated
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        self.append(
            inner,
            &format!("time_ms={} op=audit-rotated previous={previous}", now_ms()),
            false,
        )?;
        self.checkpoint(inner)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Makes the entries so far durable: a signed checkpoint when entries were added since the last one, the
    /// head file, and a rotation when one is due.
    pub fn sync(&self) -> io::Result<()> {
        let mut inner = self.lock()?;
        self.acquire(&mut inner)?;
        let result = (|| {
            let age_due = match (self.rotation.max_age, inner.first_ms) {
                (Some(age), Some(first)) => {
                    now_ms().saturating_sub(first) >= u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
                }
                _ => false,
            };
            if inner.len >= self.rotation.max_bytes || (age_due && inner.len > 0) {
                self.rotate(&mut inner)
            } else {
                self.checkpoint(&mut inner)?;
                inner.file.sync_data()
            }
        })();
        let _ = inner.file.unlock();
        result
    }
}

impl AuditSink for AuditLog {
    fn record(&self, rec: &AuditRecord) -> io::Result<()> {
        let mut inner = self.lock()?;
        self.acquire(&mut inner)?;
        let result = self.append(&mut inner, &rec.to_line(), false);
        let _ = inner.file.unlock();
        result
    }

    fn sync(&self) -> io::Result<()> {
        AuditLog::sync(self)
    }
}

/// What [`verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The files read, oldest first.
    pub files: Vec<PathBuf>,
    /// Complete chained entries checked.
    pub entries: u64,
    /// Checkpoints whose signature was checked.
    pub checkpoints: u64,
    /// Position of the last entry.
    pub last_seq: u64,
    /// Entries after the last checkpoint (protected by the chain only).
    pub unsigned_tail: u64,
    /// Evidence of tampering or loss, each naming file and line: any makes the log fail.
    pub problems: Vec<String>,
    /// What is worth knowing but is not tampering (torn last lines, entries written before chaining).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the audit log at `log` (its rotated files first, then the file itself) and its head file: every chain
/// value, every position, every checkpoint signature against `key` (the node's identity key), and that the log
/// reaches the head file's position. Reading errors are returned; everything found in the files is reported.
pub fn verify(log: &Path, key: &VerifyingKey) -> io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut files: Vec<PathBuf> = rotated_files(log)?.into_iter().map(|(_, p)| p).collect();
    files.push(log.to_path_buf());
    let mut prev: Option<ChainHead> = None;
    let mut since_checkpoint = 0u64;
    let head = head_path(log);
    let recorded = read_head(&head);
    // Whether the entry at the head file's position carries its chain value (None: not met).
    let mut head_matched = None;
    for path in &files {
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.split('\n').collect();
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{} line {}", path.display(), i + 1);
            if i == last {
                if !line.is_empty() {
                    report.notes.push(format!(
                        "{at}: torn last entry (a write was interrupted), not counted"
                    ));
                }
                break;
            }
            let Some(e) = parse_entry(line) else {
                if prev.is_none() && line.starts_with("time_ms=") {
                    report
                        .notes
                        .push(format!("{at}: entry written before the log was chained"));
                } else if line.is_empty() {
                    // The newline a writer adds after a torn line.
                } else {
                    report
                        .problems
                        .push(format!("{at}: not a chained entry (damaged or inserted)"));
                }
                continue;
            };
            if let Some((h, _)) = recorded
                && h.seq == e.seq
            {
                head_matched = Some(h.chain == e.chain);
            }
            let expected_prev = match prev {
                Some(p) => {
                    if e.seq != p.seq + 1 {
                        if e.seq > p.seq + 1 {
                            report.problems.push(format!(
                                "{at}: entry {} follows entry {}: entries {} to {} are missing",
                                e.seq,
                                p.seq,
                                p.seq + 1,
                                e.seq - 1
                            ));
                        } else {
                            report.problems.push(format!(
                                "{at}: entry {} follows entry {} (entries reordered or repeated)",
                                e.seq, p.seq
                            ));
                        }
                    }
                    p.chain
                }
                None => {
                    if e.seq == 1 {
                        genesis()
                    } else {
                        // Earlier files were removed: the chain can only be checked from here on.
                        report.notes.push(format!(
                            "{at}: the log starts at entry {} (earlier files removed); checked from there",
                            e.seq
                        ));
                        prev = Some(ChainHead {
                            seq: e.seq,
                            chain: e.chain,
                        });
                        report.entries += 1;
                        continue;
                    }
                }
            };
            if chain_next(&expected_prev, e.text) != e.chain {
                report.problems.push(format!(
                    "{at}: entry {} does not chain to the entry before it (changed, inserted or moved)",
                    e.seq
                ));
            }
            if let Some(sig) = e.sig {
                let ok = key
                    .verify_strict(&checkpoint_message(e.seq, &e.chain), &Signature::from_bytes(&sig))
                    .is_ok();
                if ok {
                    report.checkpoints += 1;
                    since_checkpoint = 0;
                } else {
                    report
                        .problems
                        .push(format!("{at}: checkpoint {} has an invalid signature", e.seq));
                }
            } else {
                since_checkpoint += 1;
            }
            report.entries += 1;
            prev = Some(ChainHead {
                seq: e.seq,
                chain: e.chain,
            });
        }
    }
    report.files = files;
    report.last_seq = prev.map_or(0, |p| p.seq);
    report.unsigned_tail = since_checkpoint;
    match recorded {
        Some((h, sig)) => {
            if key
                .verify_strict(&checkpoint_message(h.seq, &h.chain), &Signature::from_bytes(&sig))
                .is_err()
            {
                report
                    .problems
                    .push(format!("{}: invalid signature", head.display()));
            } else if h.seq > report.last_seq {
                report.problems.push(format!(
                    "{}: the log was cut short: the head file records entry {}, the log ends at entry {}",
                    head.display(),
                    h.seq,
                    report.last_seq
                ));
            } else if head_matched == Some(false) {
                report.problems.push(format!(
                    "{}: entry {} of the log is not the one the head file records (log replaced)",
                    head.display(),
                    h.seq
                ));
            }
        }
        None if head.exists() => report
            .problems
            .push(format!("{}: damaged (not a signed head)", head.display())),
        None => report.notes.push(format!(
            "{}: missing (no checkpoint written yet, or removed): a cut-short log cannot be told",
            head.display()
        )),
    }
    Ok(report)
}

/// Keeps records in memory (tests, embedded nodes).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemoryAudit {
    /// All records so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, rec: &AuditRecord) -> io::Result<()> {
        self.records
            .lock()
            .map_err(|_| io::Error::other("audit lock poisoned"))?
            .push(rec.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::wire::ErrorCode;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tcrypto-audit-{tag}-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            time_ms: 1_000 + i,
            requester: Some(SpkiFingerprint([0xab; 32])),
            request: i,
            session: SessionId([1; 32]),
            operation: "sign",
            key: Some(KeyId([2; 32])),
            mechanism: Some("rsa-pkcs1v15"),
            payload: Some(vec![0xde, 0xad, u8::try_from(i % 256).unwrap()]),
            outcome: if i.is_multiple_of(3) {
                Err(ErrorCode::UnknownKey)
            } else {
                Ok(())
            },
            rule: None,
        }
    }

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A log of `n` records with a checkpoint after every 4 (rotated at `max_bytes`).
    fn write_log(dir: &Path, n: u64, max_bytes: u64) -> PathBuf {
        let path = dir.join("audit.log");
        let rotation = Rotation {
            max_bytes,
            max_age: None,
        };
        let log = AuditLog::open_with(&path, Some(signer()), rotation).unwrap();
        for i in 1..=n {
            log.record(&record(i)).unwrap();
            if i.is_multiple_of(4) {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
        path
    }

    fn check(path: &Path) -> VerifyReport {
        verify(path, &signer().verifying_key()).unwrap()
    }

    fn edit(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        f(&mut lines);
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn records_are_chained_checkpointed_and_verify() {
        let dir = scratch("ok");
        let path = write_log(&dir, 10, 1 << 30);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        // 10 records and a checkpoint after records 4, 8 and 10.
        assert_eq!(lines.len(), 13);
        assert!(lines[0].starts_with("seq=1 time_ms=1001 "), "{}", lines[0]);
        assert!(lines[0].contains(&format!("requester={}", "ab".repeat(32))));
        assert!(lines[0].contains("op=sign") && lines[0].contains("digest=dead01"));
        assert!(
            lines[2].contains("outcome=error:UnknownKey chain="),
            "{}",
            lines[2]
        );
        assert!(lines[4].contains("op=audit-checkpoint") && lines[4].contains(" sig="));
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert_eq!(
            (r.entries, r.checkpoints, r.last_seq, r.unsigned_tail),
            (13, 3, 13, 0)
        );
        // Reopened (a restart), the chain goes on.
        let log = AuditLog::open_with(&path, Some(signer()), Rotation::default()).unwrap();
        log.record(&record(11)).unwrap();
        log.sync().unwrap();
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.last_seq, 15);
        // The head file is what `verify` compares the end of the log with.
        assert!(head_path(&path).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for f in [&path, &head_path(&path)] {
                assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
    }

    #[test]
    fn every_kind_of_tampering_is_named_with_its_line() {
        type Tamper = Box<dyn Fn(&mut Vec<String>)>;
        let cases: Vec<(&str, Tamper, &str)> = vec![
            (
                "changed",
                Box::new(|l: &mut Vec<String>| l[5] = l[5].replace("digest=dead05", "digest=dead07")),
                "line 6: entry 6 does not chain",
            ),
            (
                "removed",
                Box::new(|l: &mut Vec<String>| drop(l.remove(2))),
                "entries 3 to 3 are missing",
            ),
            (
                "reordered",
                Box::new(|l: &mut Vec<String>| l.swap(1, 2)),
                "line 2: entry 3 follows entry 1",
            ),
            (
                "inserted",
                Box::new(|l: &mut Vec<String>| l.insert(3, "time_ms=5 op=sign outcome=ok".into())),
                "line 4: not a chained entry",
            ),
            (
                "truncated",
                Box::new(|l: &mut Vec<String>| l.truncate(9)),
                "the log was cut short",
            ),
            (
                "checkpoint forged",
                Box::new(|l: &mut Vec<String>| {
                    let sig_at = l[4].find(" sig=").unwrap();
                    let mut forged = l[4][..sig_at + 5].to_string();
                    forged.push_str(&"00".repeat(64));
                    l[4] = forged;
                }),
                "line 5: checkpoint 5 has an invalid signature",
            ),
        ];
        for (what, tamper, expected) in cases {
            let dir = scratch("tamper");
            let path = write_log(&dir, 10, 1 << 30);
            let before = std::fs::read_to_string(&path).unwrap();
            edit(&path, |l| tamper(l));
            assert_ne!(
                before,
                std::fs::read_to_string(&path).unwrap(),
                "{what}: nothing changed"
            );
            let r = check(&path);
            assert!(!r.ok(), "{what}: passed");
            assert!(
                r.problems.iter().any(|p| p.contains(expected)),
                "{what}: {:?}",
                r.problems
            );
        }
        // Rewriting every later chain value does not help: the next signed checkpoint no longer matches.
        let dir = scratch("rechain");
        let path = write_log(&dir, 10, 1 << 30);
        edit(&path, |l| {
            let mut prev = genesis();
            for (i, line) in l.iter_mut().enumerate() {
                let e = parse_entry(line).unwrap();
                let text = if i == 1 {
                    e.text.replace("dead02", "dead09")
                } else {
                    e.text.to_string()
                };
                prev = chain_next(&prev, &text);
                let sig = line
                    .split_once(" sig=")
                    .map(|(_, s)| format!(" sig={s}"))
                    .unwrap_or_default();
                *line = format!("{text} chain={}{sig}", hex::encode(prev));
            }
        });
        let r = check(&path);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("checkpoint 5 has an invalid signature")),
            "{r:?}"
        );
    }

    #[test]
    fn rotated_files_verify_as_one_chain_and_a_removed_file_is_missed() {
        let dir = scratch("rotate");
        let path = write_log(&dir, 60, 2_000);
        let rotated = rotated_files(&path).unwrap();
        assert!(rotated.len() >= 3, "{rotated:?}");
        let first_new = std::fs::read_to_string(&path).unwrap();
        assert!(
            first_new
                .lines()
                .next()
                .unwrap()
                .contains("op=audit-rotated previous=audit.log.")
        );
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.files.len(), rotated.len() + 1);
        // Every record is there once, across the files.
        let all: usize = r
            .files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap().matches(" op=sign ").count())
            .sum();
        assert_eq!(all, 60);
        // A middle file removed: its entries are missing.
        std::fs::remove_file(&rotated[1].1).unwrap();
        let r = check(&path);
        assert!(r.problems.iter().any(|p| p.contains("are missing")), "{r:?}");
        // The oldest files removed (archived): checked from where the log starts now, with a note.
        let dir = scratch("archive");
        let path = write_log(&dir, 60, 2_000);
        std::fs::remove_file(&rotated_files(&path).unwrap()[0].1).unwrap();
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert!(
            r.notes.iter().any(|n| n.contains("earlier files removed")),
            "{r:?}"
        );
    }

    #[test]
    fn a_write_cut_by_a_crash_verifies_up_to_the_last_entry_and_the_next_writer_drops_it() {
        let dir = scratch("torn");
        let path = write_log(&dir, 6, 1 << 30);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"seq=9 time_ms=1 op=sign key=0202").unwrap();
        drop(f);
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("torn last entry")), "{r:?}");
        let log = AuditLog::open_with(&path, Some(signer()), Rotation::default()).unwrap();
        log.record(&record(7)).unwrap();
        log.sync().unwrap();
        let r = check(&path);
        assert!(r.ok() && r.notes.is_empty(), "{r:?}");
        assert!(!std::fs::read_to_string(&path).unwrap().contains("key=0202\n"));
    }

    #[test]
    fn two_writers_on_one_file_keep_one_chain() {
        let dir = scratch("two");
        let path = dir.join("audit.log");
        let a = AuditLog::open_with(&path, Some(signer()), Rotation::default()).unwrap();
        let b = AuditLog::open_with(&path, Some(signer()), Rotation::default()).unwrap();
        for i in 0..10 {
            a.record(&record(i)).unwrap();
            b.record(&record(100 + i)).unwrap();
            if i.is_multiple_of(3) {
                b.sync().unwrap();
            }
        }
        a.sync().unwrap();
        let r = check(&path);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.last_seq, r.entries);
    }

    #[test]
    fn a_log_shorter_than_its_head_file_keeps_the_gap_visible() {
        let dir = scratch("gap");
        let path = write_log(&dir, 8, 1 << 30);
        std::fs::remove_file(&path).unwrap();
        let log = AuditLog::open_with(&path, Some(signer()), Rotation::default()).unwrap();
        log.record(&record(9)).unwrap();
        log.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("seq=11 "), "{text}");
        let r = check(&path);
        assert!(r.notes.iter().any(|n| n.contains("starts at entry 11")), "{r:?}");
    }

    #[test]
    fn messages_are_never_logged_in_clear() {
        let mut rec = record(1);
        rec.mechanism = Some("ed25519");
        rec.payload = Some(b"short message".to_vec());
        let line = rec.to_line();
        assert!(line.contains("message_sha256="), "{line}");
        assert!(!line.contains(&hex::encode(b"short message")), "{line}");
        rec.payload = Some(vec![0; 100]);
        assert!(rec.to_line().contains("message_sha256="));
    }
}
