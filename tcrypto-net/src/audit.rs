//! The node's append-only audit log: one line per request, written before the answer leaves the node.
//!
//! Each line holds the time (ms since the Unix epoch), the requester's pinned key fingerprint, the request id and
//! session, the operation, key, mechanism, the digest or message asked to be signed (hex; messages above 64 bytes
//! by their SHA-256), and the outcome. The file is opened in append mode and each record is one `write`, so records
//! never interleave; [`AuditLog::sync`] makes them durable (the daemon calls it periodically and on shutdown).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tcrypto::{KeyId, SessionId};

use crate::identity::SpkiFingerprint;
use crate::wire::{ErrorCode, RequestId};

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
            if p.len() <= 64 {
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

/// An append-only audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating, mode 0600) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = crate::store::private_file_options()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes appended records to disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file
            .lock()
            .map_err(|_| io::Error::other("audit log lock poisoned"))?
            .sync_data()
    }
}

impl AuditSink for AuditLog {
    fn record(&self, rec: &AuditRecord) -> io::Result<()> {
        let mut line = rec.to_line();
        line.push('\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| io::Error::other("audit log lock poisoned"))?;
        f.write_all(line.as_bytes())
    }

    fn sync(&self) -> io::Result<()> {
        AuditLog::sync(self)
    }
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

    #[test]
    fn records_are_appended_one_line_each_and_never_rewritten() {
        let path = std::env::temp_dir().join(format!("tcrypto-audit-{:x}.log", rand::random::<u64>()));
        let rec = AuditRecord {
            time_ms: 42,
            requester: Some(SpkiFingerprint([0xab; 32])),
            request: 7,
            session: SessionId([1; 32]),
            operation: "sign",
            key: Some(KeyId([2; 32])),
            mechanism: Some("rsa-pkcs1v15"),
            payload: Some(vec![0xde, 0xad]),
            outcome: Err(ErrorCode::UnknownKey),
        };
        {
            let log = AuditLog::open(&path).unwrap();
            log.record(&rec).unwrap();
            log.sync().unwrap();
        }
        {
            let log = AuditLog::open(&path).unwrap();
            log.record(&AuditRecord {
                outcome: Ok(()),
                ..rec.clone()
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(&format!("requester={}", "ab".repeat(32))));
        assert!(lines[0].contains("op=sign"));
        assert!(lines[0].contains("digest=dead"));
        assert!(lines[0].ends_with("outcome=error:UnknownKey"));
        assert!(lines[1].ends_with("outcome=ok"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn long_messages_are_logged_by_their_hash() {
        let rec = AuditRecord {
            time_ms: 1,
            requester: None,
            request: 1,
            session: SessionId([0; 32]),
            operation: "sign",
            key: None,
            mechanism: Some("ed25519"),
            payload: Some(vec![0; 100]),
            outcome: Ok(()),
        };
        assert!(rec.to_line().contains("message_sha256="));
    }
}
