//! The object store: SQLite (through `rusqlite`) holding tokens (label, serial, Argon2id PIN hashes) and token
//! objects with their attributes. Session objects never reach it; they live in the module's memory.
//!
//! Token objects are addressed by their row id, which is their `CK_OBJECT_HANDLE` in every process that opens the
//! same store. Several processes may use one store at once (WAL journal, busy timeout).

use std::path::Path;
use std::time::Duration;

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_OBJECT_HANDLE};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::backend::KeyRef;
use crate::error::{Error, Result};
use crate::object::Object;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    name        TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    serial      TEXT NOT NULL,
    initialized INTEGER NOT NULL DEFAULT 0,
    so_pin      TEXT,
    user_pin    TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    handle  INTEGER PRIMARY KEY AUTOINCREMENT,
    token   TEXT NOT NULL REFERENCES tokens(name),
    key_ref BLOB
);
CREATE TABLE IF NOT EXISTS pending_deletions (
    key_ref    BLOB NOT NULL,
    node       TEXT NOT NULL,
    since      INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (key_ref, node)
);
CREATE TABLE IF NOT EXISTS attributes (
    handle INTEGER NOT NULL REFERENCES objects(handle) ON DELETE CASCADE,
    type   INTEGER NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (handle, type)
);
";

/// A token's persistent record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Label set by `C_InitToken` (initially the configured label).
    pub label: String,
    /// Serial number (16 hex digits, chosen at creation).
    pub serial: String,
    /// Whether `C_InitToken` has run.
    pub initialized: bool,
    /// Argon2id PHC string of the SO PIN.
    pub so_pin: Option<String>,
    /// Argon2id PHC string of the user PIN.
    pub user_pin: Option<String>,
    /// Wrong SO PINs since the last right one (or since the SO PIN was set).
    pub so_pin_failures: u32,
    /// Wrong user PINs since the last right one (or since the user PIN was set).
    pub user_pin_failures: u32,
}

/// A key share a node still holds although its key was destroyed: the node did not answer the deletion. The
/// module retries until the node confirms (tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeletion {
    /// The destroyed key.
    pub key: KeyRef,
    /// The node's configured name.
    pub node: String,
    /// When the first deletion failed, seconds since the Unix epoch.
    pub since: i64,
    /// How many deletions have failed.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
}

/// The SQLite object store.
#[derive(Debug)]
pub struct Store {
    db: Connection,
}

fn to_sql_type(t: CK_ATTRIBUTE_TYPE) -> i64 {
    i64::from_ne_bytes(t.to_ne_bytes())
}

fn from_sql_type(t: i64) -> CK_ATTRIBUTE_TYPE {
    CK_ATTRIBUTE_TYPE::from_ne_bytes(t.to_ne_bytes())
}

fn to_handle(rowid: i64) -> Result<CK_OBJECT_HANDLE> {
    CK_OBJECT_HANDLE::try_from(rowid).map_err(|_| Error::Internal("negative row id"))
}

fn to_rowid(h: CK_OBJECT_HANDLE) -> Option<i64> {
    i64::try_from(h).ok()
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Connection::open(path)?;
        Self::setup(db)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(db: Connection) -> Result<Self> {
        db.busy_timeout(Duration::from_secs(10))?;
        db.pragma_update(None, "foreign_keys", true)?;
        // WAL lets readers in other processes proceed while one writes; in-memory databases answer "memory".
        let _mode: String = db.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        db.execute_batch(SCHEMA)?;
        // Stores made before PIN retry counting get the counters (zero).
        for column in ["so_pin_failures", "user_pin_failures"] {
            let has: bool = db.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('tokens') WHERE name = ?1",
                params![column],
                |r| r.get(0),
            )?;
            if !has {
                db.execute_batch(&format!(
                    "ALTER TABLE tokens ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                ))?;
            }
        }
        Ok(Self { db })
    }

    /// The token named `name` in the configuration, created (uninitialized) on first use.
    pub fn ensure_token(&self, name: &str) -> Result<TokenRecord> {
        if let Some(t) = self.token(name)? {
            return Ok(t);
        }
        let mut serial = [0u8; 8];
        getrandom::fill(&mut serial).map_err(|_| Error::Random)?;
        let serial: String = serial.iter().map(|b| format!("{b:02x}")).collect();
        self.db.execute(
            "INSERT OR IGNORE INTO tokens (name, label, serial) VALUES (?1, ?1, ?2)",
            params![name, serial],
        )?;
        self.token(name)?
            .ok_or(Error::Internal("token vanished after insert"))
    }

    /// The token record, if it exists.
    pub fn token(&self, name: &str) -> Result<Option<TokenRecord>> {
        Ok(self
            .db
            .query_row(
                "SELECT label, serial, initialized, so_pin, user_pin, so_pin_failures, user_pin_failures \
                 FROM tokens WHERE name = ?1",
                params![name],
                |r| {
                    Ok(TokenRecord {
                        label: r.get(0)?,
                        serial: r.get(1)?,
                        initialized: r.get(2)?,
                        so_pin: r.get(3)?,
                        user_pin: r.get(4)?,
                        so_pin_failures: r.get(5)?,
                        user_pin_failures: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// `C_InitToken`: deletes the token's objects, sets label and SO PIN, clears the user PIN. Returns the key
    /// references of deleted objects so the caller can destroy the keys.
    pub fn init_token(&mut self, name: &str, label: &str, so_pin_hash: &str) -> Result<Vec<KeyRef>> {
        let tx = self.db.transaction()?;
        let refs = {
            let mut st =
                tx.prepare("SELECT key_ref FROM objects WHERE token = ?1 AND key_ref IS NOT NULL")?;
            let rows = st.query_map(params![name], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|r| r.map(KeyRef)).collect::<Result<Vec<_>, _>>()?
        };
        tx.execute("DELETE FROM objects WHERE token = ?1", params![name])?;
        tx.execute(
            "UPDATE tokens SET label = ?2, initialized = 1, so_pin = ?3, user_pin = NULL, so_pin_failures = 0, \
             user_pin_failures = 0 WHERE name = ?1",
            params![name, label, so_pin_hash],
        )?;
        tx.commit()?;
        Ok(refs)
    }

    /// Sets the user PIN hash.
    pub fn set_user_pin(&self, name: &str, hash: &str) -> Result<()> {
        self.db.execute(
            "UPDATE tokens SET user_pin = ?2, user_pin_failures = 0 WHERE name = ?1",
            params![name, hash],
        )?;
        Ok(())
    }

    /// Sets the SO PIN hash.
    pub fn set_so_pin(&self, name: &str, hash: &str) -> Result<()> {
        self.db.execute(
            "UPDATE tokens SET so_pin = ?2, so_pin_failures = 0 WHERE name = ?1",
            params![name, hash],
        )?;
        Ok(())
    }

    /// Counts a wrong PIN (SO when `so`) and returns the new count; atomic across processes sharing the store.
    pub fn pin_failed(&self, name: &str, so: bool) -> Result<u32> {
        let column = if so {
            "so_pin_failures"
        } else {
            "user_pin_failures"
        };
        Ok(self.db.query_row(
            &format!("UPDATE tokens SET {column} = {column} + 1 WHERE name = ?1 RETURNING {column}"),
            params![name],
            |r| r.get(0),
        )?)
    }

    /// A right PIN (SO when `so`): its failure count starts again.
    pub fn pin_succeeded(&self, name: &str, so: bool) -> Result<()> {
        let column = if so {
            "so_pin_failures"
        } else {
            "user_pin_failures"
        };
        self.db.execute(
            &format!("UPDATE tokens SET {column} = 0 WHERE name = ?1 AND {column} <> 0"),
            params![name],
        )?;
        Ok(())
    }

    /// Stores a new token object; returns its handle.
    pub fn insert_object(&mut self, token: &str, o: &Object) -> Result<CK_OBJECT_HANDLE> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO objects (token, key_ref) VALUES (?1, ?2)",
            params![token, o.key.as_ref().map(|k| k.0.as_slice())],
        )?;
        let rowid = tx.last_insert_rowid();
        Self::write_attrs(&tx, rowid, o)?;
        tx.commit()?;
        to_handle(rowid)
    }

    fn write_attrs(tx: &rusqlite::Transaction<'_>, rowid: i64, o: &Object) -> Result<()> {
        tx.execute("DELETE FROM attributes WHERE handle = ?1", params![rowid])?;
        let mut st = tx.prepare("INSERT INTO attributes (handle, type, value) VALUES (?1, ?2, ?3)")?;
        for (t, v) in &o.attrs {
            st.execute(params![rowid, to_sql_type(*t), v])?;
        }
        Ok(())
    }

    /// Replaces a token object's attributes.
    pub fn update_object(&mut self, h: CK_OBJECT_HANDLE, o: &Object) -> Result<()> {
        let rowid = to_rowid(h).ok_or(Error::ObjectHandleInvalid)?;
        let tx = self.db.transaction()?;
        Self::write_attrs(&tx, rowid, o)?;
        tx.commit()?;
        Ok(())
    }

    /// A token object and the name of its token.
    pub fn object(&self, h: CK_OBJECT_HANDLE) -> Result<Option<(String, Object)>> {
        let Some(rowid) = to_rowid(h) else { return Ok(None) };
        let head = self
            .db
            .query_row(
                "SELECT token, key_ref FROM objects WHERE handle = ?1",
                params![rowid],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)),
            )
            .optional()?;
        let Some((token, key_ref)) = head else {
            return Ok(None);
        };
        let mut o = Object {
            key: key_ref.map(KeyRef),
            ..Object::default()
        };
        let mut st = self
            .db
            .prepare_cached("SELECT type, value FROM attributes WHERE handle = ?1")?;
        let rows = st.query_map(params![rowid], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (t, v) = row?;
            o.attrs.insert(from_sql_type(t), v);
        }
        Ok(Some((token, o)))
    }

    /// Handles of every object of a token, in creation order.
    pub fn object_handles(&self, token: &str) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut st = self
            .db
            .prepare_cached("SELECT handle FROM objects WHERE token = ?1 ORDER BY handle")?;
        let rows = st.query_map(params![token], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map_err(Error::from).and_then(to_handle)).collect()
    }

    /// Deletes a token object.
    pub fn delete_object(&self, h: CK_OBJECT_HANDLE) -> Result<()> {
        let rowid = to_rowid(h).ok_or(Error::ObjectHandleInvalid)?;
        self.db
            .execute("DELETE FROM objects WHERE handle = ?1", params![rowid])?;
        Ok(())
    }

    /// Records (or, when already recorded, counts another) failed deletion of `key`'s share on `node`.
    pub fn add_pending_deletion(&self, key: &KeyRef, node: &str, error: &str) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.db.execute(
            "INSERT INTO pending_deletions (key_ref, node, since, attempts, last_error) VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (key_ref, node) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error",
            params![key.0, node, now, error],
        )?;
        Ok(())
    }

    /// Every share still waiting to be deleted, oldest first.
    pub fn pending_deletions(&self) -> Result<Vec<PendingDeletion>> {
        let mut st = self.db.prepare_cached(
            "SELECT key_ref, node, since, attempts, last_error FROM pending_deletions ORDER BY since, node",
        )?;
        let rows = st.query_map([], |r| {
            Ok(PendingDeletion {
                key: KeyRef(r.get(0)?),
                node: r.get(1)?,
                since: r.get(2)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The node confirmed the deletion.
    pub fn remove_pending_deletion(&self, key: &KeyRef, node: &str) -> Result<()> {
        self.db.execute(
            "DELETE FROM pending_deletions WHERE key_ref = ?1 AND node = ?2",
            params![key.0, node],
        )?;
        Ok(())
    }

    /// Whether shares of the key wait to be deleted (its object was destroyed while a node was down).
    pub fn deletion_pending(&self, key: &KeyRef) -> Result<bool> {
        let mut st = self
            .db
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM pending_deletions WHERE key_ref = ?1)")?;
        Ok(st.query_row(params![key.0], |r| r.get(0))?)
    }

    /// Deletes every token object that refers to the key; returns their handles.
    pub fn delete_objects_of_key(&self, key: &KeyRef) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut st = self
            .db
            .prepare("DELETE FROM objects WHERE key_ref = ?1 RETURNING handle")?;
        let rows = st.query_map(params![key.0], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map_err(Error::from).and_then(to_handle)).collect()
    }

    /// Whether a token object other than `except` refers to the key.
    pub fn key_in_use_except(&self, key: &KeyRef, except: CK_OBJECT_HANDLE) -> Result<bool> {
        let except = to_rowid(except).unwrap_or(-1);
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM objects WHERE key_ref = ?1 AND handle != ?2",
            params![key.0, except],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Whether any token object still refers to the key.
    pub fn key_in_use(&self, key: &KeyRef) -> Result<bool> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM objects WHERE key_ref = ?1",
            params![key.0],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{encode_bool, encode_ulong};
    use cryptoki_sys::{CKA_CLASS, CKA_LABEL, CKA_TOKEN, CKO_DATA};

    fn data(label: &[u8]) -> Object {
        let mut o = Object::default();
        o.set(CKA_CLASS, encode_ulong(CKO_DATA));
        o.set(CKA_TOKEN, encode_bool(true));
        o.set(CKA_LABEL, label.to_vec());
        o
    }

    #[test]
    fn objects_round_trip_and_init_token_wipes_them() {
        let mut s = Store::in_memory().unwrap();
        let t = s.ensure_token("t").unwrap();
        assert!(!t.initialized);
        assert_eq!(t.serial.len(), 16);
        let mut o = data(b"one");
        o.key = Some(KeyRef(vec![1, 2]));
        let h = s.insert_object("t", &o).unwrap();
        assert_eq!(s.object(h).unwrap().unwrap(), ("t".to_string(), o.clone()));
        assert!(s.key_in_use(&KeyRef(vec![1, 2])).unwrap());
        let mut changed = o.clone();
        changed.set(CKA_LABEL, b"two".to_vec());
        s.update_object(h, &changed).unwrap();
        assert_eq!(s.object(h).unwrap().unwrap().1, changed);
        let refs = s.init_token("t", "new label", "$argon2id$x").unwrap();
        assert_eq!(refs, vec![KeyRef(vec![1, 2])]);
        assert!(s.object(h).unwrap().is_none());
        let t = s.token("t").unwrap().unwrap();
        assert!(t.initialized && t.user_pin.is_none());
        assert_eq!(t.label, "new label");
    }

    #[test]
    fn pending_deletions_count_attempts_until_removed() {
        let s = Store::in_memory().unwrap();
        let k = KeyRef(vec![1, 9]);
        s.add_pending_deletion(&k, "node2", "not connected").unwrap();
        s.add_pending_deletion(&k, "node5", "not connected").unwrap();
        s.add_pending_deletion(&k, "node2", "timed out").unwrap();
        let p = s.pending_deletions().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].node.as_str(), p[0].attempts), ("node2", 2));
        assert_eq!(p[0].last_error, "timed out");
        assert_eq!((p[1].node.as_str(), p[1].attempts), ("node5", 1));
        assert!(s.deletion_pending(&k).unwrap());
        assert!(!s.deletion_pending(&KeyRef(vec![1, 8])).unwrap());
        s.remove_pending_deletion(&k, "node2").unwrap();
        let p = s.pending_deletions().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, k);
        s.remove_pending_deletion(&k, "node5").unwrap();
        assert!(!s.deletion_pending(&k).unwrap());
    }

    #[test]
    fn handles_are_stable_across_connections() {
        let dir = std::env::temp_dir().join(format!("p11-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let mut a = Store::open(&path).unwrap();
        a.ensure_token("t").unwrap();
        let h = a.insert_object("t", &data(b"x")).unwrap();
        let b = Store::open(&path).unwrap();
        assert_eq!(b.object(h).unwrap().unwrap().1, data(b"x"));
        assert_eq!(b.object_handles("t").unwrap(), vec![h]);
        b.delete_object(h).unwrap();
        assert!(a.object(h).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
