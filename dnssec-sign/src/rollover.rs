//! Key lifecycle and automatic rollovers: a policy (TOML), a per-zone key state (TOML, readable by people) and
//! a pure state machine that moves keys through their states by an injected clock.
//!
//! Timings follow RFC 7583 (§3.2.1 ZSK pre-publication, §3.3.2 KSK double-DS with the new KSK pre-published so
//! that CDS/CDNSKEY can name it, §3.3.1 double-KSK applied to the combined key), RFC 6781 §4.1.4 (algorithm rollover: new
//! signatures first, new DNSKEYs after they propagated, old DNSKEYs removed before old signatures) and RFC 7344 /
//! RFC 8078 (CDS/CDNSKEY tell the parent which DS to publish; they only ever name keys of the DNSKEY RRset, and a
//! new key only once its DNSKEY has reached every cache, so a parent that checks the CDS against the DNSKEY RRset
//! it resolves finds the key). A key is never removed while the parent's DS change it depends on is unconfirmed:
//! [`ds_seen`] records the confirmation (the operator's `keys ds-seen`, optionally checked against the parent's DS
//! set).
//!
//! Each run ([`advance`]) takes the policy, the state, the time and the zone's largest TTL; it creates keys
//! through a [`KeyFactory`] when a rollover starts, moves phases whose waiting time has passed, and returns a
//! [`Plan`]: which keys sign what, the DNSKEY and CDS/CDNSKEY sets, what the operator must do, and when the next
//! step is due. The signer then signs with [`crate::sign::ApexKeys`] set from the plan. The caller writes the
//! signed zone first and the state after it ([`KeyState::write`]): a crash between the two repeats the step
//! later, it never counts a waiting time from a zone that was not published.
//!
//! Phases (`O` the old keys, `N` the new ones; `Dprp` the propagation delay to the secondaries, `TTLkey` the
//! DNSKEY TTL, `TTLmax` the zone's largest TTL, `Dprp(parent) + TTLds` the parent's):
//!
//! | kind | phase | zone | next when |
//! |---|---|---|---|
//! | ZSK | 1 | N published | `Dprp + TTLkey` |
//! | ZSK | 2 | N signs, O still published | `Dprp + TTLmax`, then O removed |
//! | KSK | 1 | N published, does not sign; CDS/CDNSKEY = O | `Dprp + TTLkey` (N is ready) |
//! | KSK | 2 | N and O sign the DNSKEY RRset; CDS/CDNSKEY = O, N: operator adds N's DS | DS seen, then `Dprp(parent) + TTLds` (and at least `Dprp + TTLkey`) |
//! | KSK | 3 | O removed; CDS/CDNSKEY = N: operator removes O's DS | DS seen, then `Dprp(parent) + TTLds` |
//! | CSK | 1 | N published, signs the DNSKEY RRset only (pre-publication); CDS/CDNSKEY = O | `Dprp + TTLkey` (N is ready) |
//! | CSK | 2 | N signs everything, O the DNSKEY RRset only; CDS/CDNSKEY = N: operator replaces the DS | DS seen, then `Dprp(parent) + TTLds` (and at least `Dprp + TTLmax`), then O removed |
//! | algorithm | 1 | N signs everything, not published | `Dprp + TTLmax` |
//! | algorithm | 2 | N published | `Dprp + TTLkey` |
//! | algorithm | 3 | CDS/CDNSKEY = N: operator replaces the DS | DS seen, then `Dprp(parent) + TTLds` |
//! | algorithm | 4 | O's DNSKEYs removed, O still signs | `Dprp + TTLkey`, then O's signatures go |

use std::fmt;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};

use crate::error::{KeyError, ZoneError};
use crate::keys::{Algorithm, DsDigest, ZoneSigningKey as _, ds_rdata};
use crate::name::Name;
use crate::rdata::{Dnskey, format_time};
use crate::sign::ApexKeys;

/// Name of the state file in a key directory.
pub const STATE_FILE: &str = "dnssec-state.toml";

/// A problem with the policy, the key state or a rollover step. Each names the file (and line) or the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolloverError {
    /// A policy or state file does not parse or holds a bad value.
    #[error("{file}:{line}: {message}")]
    BadFile {
        /// The file.
        file: PathBuf,
        /// 1-based line (1 when the file as a whole is wrong).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A key could not be created or loaded.
    #[error("key {key}: {source}")]
    Key {
        /// The key (its source reference).
        key: String,
        /// What failed.
        source: KeyError,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::error::SignError),
    /// The operator's step does not fit the state (e.g. `ds-seen` while no DS change is awaited, or a parent
    /// DS set that lacks the expected DS).
    #[error("{0}")]
    Refused(String),
}

/// A duration in seconds, written in the policy as a number of seconds or as a string with a unit: `"90d"`,
/// `"2w"`, `"1h"`, `"30m"`, `"45s"`; at most [`Duration::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Duration(pub u64);

impl Duration {
    /// The longest duration a policy may give: 2^32 - 1 seconds (136 years). Times plus a few durations then
    /// never overflow, and the value writes back as a TOML integer.
    pub const MAX: u64 = u32::MAX as u64;
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        let secs = match Raw::deserialize(d)? {
            Raw::Secs(s) => s,
            Raw::Text(t) => {
                let t = t.trim();
                let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
                let n: u64 = num.parse().map_err(|_| {
                    serde::de::Error::custom(format!("duration {t:?}: a number and s, m, h, d or w"))
                })?;
                let mult = match unit {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86400,
                    "w" => 7 * 86400,
                    _ => {
                        return Err(serde::de::Error::custom(format!(
                            "duration {t:?}: unit {unit:?} is not s, m, h, d or w"
                        )));
                    }
                };
                n.checked_mul(mult)
                    .ok_or_else(|| serde::de::Error::custom(format!("duration {t:?} too large")))?
            }
        };
        if secs > Duration::MAX {
            return Err(serde::de::Error::custom(format!(
                "duration of {secs} s: more than 136 years"
            )));
        }
        Ok(Duration(secs))
    }
}

/// Key scheme: a KSK and a ZSK, or one combined key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// A key-signing key (signs the DNSKEY RRset, its DS is at the parent) and a zone-signing key.
    KskZsk,
    /// One combined signing key.
    Csk,
}

/// Where new keys are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySourceKind {
    /// Key files `K<zone>+<alg>+<tag>` in the key directory.
    Local,
    /// A PKCS#11 token (the signer's `--pkcs11-*` options).
    Pkcs11,
    /// The threshold cluster (the signer's `--cluster` options): distributed key generation.
    Cluster,
}

/// The key and signing policy of a zone (a TOML file; see the README's "Key rollovers").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// DNSSEC algorithm number (8, 10, 13, 15). Changing it starts an algorithm rollover.
    pub algorithm: u8,
    /// RSA modulus size for new RSA keys.
    #[serde(default = "default_rsa_bits")]
    pub rsa_bits: usize,
    /// KSK and ZSK, or CSK.
    pub scheme: Scheme,
    /// Where new keys come from.
    #[serde(default = "default_source")]
    pub key_source: KeySourceKind,
    /// KSK lifetime (0: never rolled).
    #[serde(default = "zero")]
    pub ksk_lifetime: Duration,
    /// ZSK lifetime (0: never rolled).
    #[serde(default = "zero")]
    pub zsk_lifetime: Duration,
    /// CSK lifetime (0: never rolled).
    #[serde(default = "zero")]
    pub csk_lifetime: Duration,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: Duration,
    /// TTL of the DS RRset at the parent.
    pub ds_ttl: Duration,
    /// Time for a new zone version to reach every secondary.
    pub propagation_delay: Duration,
    /// Time for a DS change to reach every server of the parent.
    pub parent_propagation_delay: Duration,
    /// Signature validity.
    pub signature_validity: Duration,
    /// Signatures expiring sooner than this are made anew.
    pub signature_refresh: Duration,
    /// Expirations are spread over this much time.
    #[serde(default = "zero")]
    pub signature_jitter: Duration,
    /// Publish CDS/CDNSKEY (RFC 7344) for the key the parent should have.
    #[serde(default = "yes")]
    pub cds: bool,
}

fn default_rsa_bits() -> usize {
    2048
}
fn default_source() -> KeySourceKind {
    KeySourceKind::Local
}
fn zero() -> Duration {
    Duration(0)
}
fn yes() -> bool {
    true
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |t| t.matches('\n').count() + 1)
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, file: &Path) -> Result<T, RolloverError> {
    toml::from_str(text).map_err(|e| RolloverError::BadFile {
        file: file.to_path_buf(),
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: e.message().to_string(),
    })
}

fn read_text(file: &Path) -> Result<String, RolloverError> {
    std::fs::read_to_string(file).map_err(|e| RolloverError::Io {
        file: file.to_path_buf(),
        message: e.to_string(),
    })
}

impl Policy {
    /// Parses a policy; errors name `file` and the line.
    pub fn parse(text: &str, file: &Path) -> Result<Self, RolloverError> {
        let p: Policy = parse_toml(text, file)?;
        let bad = |key: &str, message: String| RolloverError::BadFile {
            file: file.to_path_buf(),
            line: text
                .lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(1, |i| i + 1),
            message,
        };
        Algorithm::from_number(p.algorithm).map_err(|e| bad("algorithm", e.to_string()))?;
        if p.signature_refresh.0 >= p.signature_validity.0 {
            return Err(bad(
                "signature-refresh",
                "signature-refresh must be shorter than signature-validity".into(),
            ));
        }
        if p.signature_jitter.0 >= p.signature_validity.0 - p.signature_refresh.0 {
            return Err(bad(
                "signature-jitter",
                "signature-jitter must be shorter than signature-validity - signature-refresh".into(),
            ));
        }
        if p.signature_validity.0 > u32::MAX as u64 / 2 {
            return Err(bad(
                "signature-validity",
                "signature-validity above 68 years".into(),
            ));
        }
        for (k, v) in [("dnskey-ttl", p.dnskey_ttl), ("ds-ttl", p.ds_ttl)] {
            if v.0 > crate::zonefile::MAX_TTL as u64 {
                return Err(bad(k, format!("{k} above 2^31-1")));
            }
        }
        Ok(p)
    }

    /// Reads a policy file.
    pub fn read(file: &Path) -> Result<Self, RolloverError> {
        Self::parse(&read_text(file)?, file)
    }

    /// The policy as TOML (durations in seconds), as [`Policy::parse`] reads it.
    pub fn to_toml(&self) -> Result<String, RolloverError> {
        toml::to_string(self).map_err(|e| RolloverError::Refused(e.to_string()))
    }

    fn alg(&self) -> Algorithm {
        // checked in `parse`
        Algorithm::from_number(self.algorithm).unwrap_or(Algorithm::EcdsaP256Sha256)
    }

    fn lifetime(&self, role: Role) -> u64 {
        match role {
            Role::Ksk => self.ksk_lifetime.0,
            Role::Zsk => self.zsk_lifetime.0,
            Role::Csk => self.csk_lifetime.0,
        }
    }
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Key-signing key (flags 257): signs the DNSKEY, CDS and CDNSKEY RRsets; the parent's DS points to it.
    Ksk,
    /// Zone-signing key (flags 256): signs the rest.
    Zsk,
    /// Combined signing key (flags 257): signs everything.
    Csk,
}

impl Role {
    /// Whether the key has the SEP flag (flags 257).
    pub fn is_sep(self) -> bool {
        self != Role::Zsk
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Made for a rollover in progress (see the rollover's phase for what it does).
    Incoming,
    /// The zone's current key.
    Active,
    /// Being replaced by a rollover in progress.
    Outgoing,
    /// Out of the zone and of the parent; kept in the state for the record.
    Removed,
}

/// One key of the zone, as the state file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyEntry {
    /// Where the key is: `local:K<zone>+<alg>+<tag>` (files in the key directory), `pkcs11:<label>`,
    /// `cluster:<key id>`. Unique in the state.
    pub source: String,
    /// Its role.
    pub role: Role,
    /// Its status.
    pub status: Status,
    /// Key tag (for people; the DNSKEY decides).
    pub tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// The DNSKEY record data in presentation form (`257 3 13 <base64>`).
    pub dnskey: String,
    /// When it was made (seconds since the epoch, as every time here).
    pub created: u64,
    /// When it became the active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<u64>,
    /// When its DS was confirmed at the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds_seen: Option<u64>,
    /// When it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

impl KeyEntry {
    /// The DNSKEY record data.
    pub fn dnskey(&self) -> Result<Dnskey, RolloverError> {
        let bad =
            |m: &str| RolloverError::Refused(format!("key {}: DNSKEY {:?}: {m}", self.source, self.dnskey));
        let mut f = self.dnskey.split_whitespace();
        let flags = f
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| bad("flags"))?;
        let protocol = f
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| bad("protocol"))?;
        let algorithm = f
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| bad("algorithm"))?;
        let b64: String = f.collect();
        let public_key = BASE64.decode(b64.as_bytes()).map_err(|_| bad("base64"))?;
        let k = Dnskey {
            flags,
            protocol,
            algorithm,
            public_key,
        };
        if k.key_tag() != self.tag || k.algorithm != self.algorithm {
            return Err(bad("key tag or algorithm differs from the entry's"));
        }
        Ok(k)
    }
}

/// Presentation form of a DNSKEY's record data.
pub fn dnskey_text(k: &Dnskey) -> String {
    format!(
        "{} {} {} {}",
        k.flags,
        k.protocol,
        k.algorithm,
        BASE64.encode(&k.public_key)
    )
}

/// Kind of rollover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollKind {
    /// ZSK pre-publication (RFC 7583 §3.2.1).
    Zsk,
    /// KSK double-DS (RFC 7583 §3.3.2), the new KSK pre-published for CDS/CDNSKEY (RFC 7344).
    Ksk,
    /// Combined key: the new key pre-published, then a DS swap (RFC 7583 §3.3.1 double-KSK applied to
    /// a CSK, as Knot rolls one).
    Csk,
    /// Algorithm (RFC 6781 §4.1.4).
    Algorithm,
}

/// A rollover in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Roll {
    /// Kind.
    pub kind: RollKind,
    /// Phase (1, 2, ...; see the module's table).
    pub phase: u8,
    /// When the phase started.
    pub since: u64,
    /// When the DS change this phase waits for was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds_seen: Option<u64>,
    /// The largest TTL of the zone seen during the rollover.
    pub max_ttl: u32,
}

/// The key state of a zone (the file [`STATE_FILE`] in its key directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyState {
    /// The zone.
    pub zone: String,
    /// The rollover in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<Roll>,
    /// The keys, oldest first.
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
}

impl KeyState {
    /// An empty state for `zone` (the first run makes its keys).
    pub fn new(zone: &Name) -> Self {
        Self {
            zone: zone.to_string(),
            roll: None,
            keys: Vec::new(),
        }
    }

    /// Parses a state file; errors name `file` and line.
    pub fn parse(text: &str, file: &Path) -> Result<Self, RolloverError> {
        let s: KeyState = parse_toml(text, file)?;
        if let Some(r) = &s.roll
            && !(1..=last_phase(r.kind)).contains(&r.phase)
        {
            return Err(RolloverError::BadFile {
                file: file.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("phase"))
                    .map_or(1, |i| i + 1),
                message: format!(
                    "a {:?} rollover has phases 1 to {}, not {}",
                    r.kind,
                    last_phase(r.kind),
                    r.phase
                ),
            });
        }
        for k in &s.keys {
            k.dnskey().map_err(|e| RolloverError::BadFile {
                file: file.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.contains(&k.source))
                    .map_or(1, |i| i + 1),
                message: e.to_string(),
            })?;
        }
        Ok(s)
    }

    /// Reads `dir/`[`STATE_FILE`], or a new state when it does not exist.
    pub fn load(dir: &Path, zone: &Name) -> Result<Self, RolloverError> {
        let file = dir.join(STATE_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let s = Self::parse(&text, &file)?;
                if s.zone != zone.to_string() {
                    return Err(RolloverError::BadFile {
                        file,
                        line: 1,
                        message: format!("state of zone {}, not {zone}", s.zone),
                    });
                }
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new(zone)),
            Err(e) => Err(RolloverError::Io {
                file,
                message: e.to_string(),
            }),
        }
    }

    /// The state as TOML, with a header comment.
    pub fn to_toml(&self) -> Result<String, RolloverError> {
        let body = toml::to_string_pretty(self).map_err(|e| RolloverError::Refused(e.to_string()))?;
        Ok(format!(
            "# dnssec-sign key state of {} (times in seconds since the epoch; `dnssec-sign keys status` shows them \
             as dates)\n{body}",
            self.zone
        ))
    }

    /// Writes `dir/`[`STATE_FILE`] crash-safely (temporary file, fsync, rename, fsync of the directory), 0600.
    pub fn write(&self, dir: &Path) -> Result<(), RolloverError> {
        let text = self.to_toml()?;
        tcrypto_net::node::store::write_atomic(dir, STATE_FILE, text.as_bytes(), 0).map_err(|e| {
            RolloverError::Io {
                file: dir.join(STATE_FILE),
                message: e.to_string(),
            }
        })
    }

    fn live(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.iter().filter(|k| k.status != Status::Removed)
    }
}

/// Makes new keys (local files, PKCS#11, cluster).
pub trait KeyFactory {
    /// Creates a key of `role` and `algorithm` for `zone`; returns its source reference (see
    /// [`KeyEntry::source`]) and DNSKEY. `in_use` lists the sources the state already has.
    fn create(
        &mut self,
        zone: &Name,
        role: Role,
        algorithm: Algorithm,
        in_use: &[String],
    ) -> Result<(String, Dnskey), KeyError>;
}

/// What a key does in the zone now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uses {
    /// Its DNSKEY is in the DNSKEY RRset.
    pub published: bool,
    /// It signs the DNSKEY, CDS and CDNSKEY RRsets.
    pub signs_keys: bool,
    /// It signs the other RRsets.
    pub signs_zone: bool,
    /// CDS/CDNSKEY are published for it.
    pub cds: bool,
}

/// The outcome of a run: how to sign now, what the operator must do, and when the next step is due.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The signing keys (source references) with their roles, in the order of [`ApexKeys::roles`].
    pub signers: Vec<String>,
    /// The apex key records.
    pub apex: ApexKeys,
    /// What changed in this run (for the log).
    pub changes: Vec<String>,
    /// What the operator must do now.
    pub actions: Vec<String>,
    /// When the next step is due and what it is (`None`: nothing scheduled, or it waits for the operator).
    pub next: Option<(u64, String)>,
}

impl Plan {
    /// What the operator reads: `changed: ...`, `to do: ...` and `next: <date> <seconds> <what>` lines (the
    /// command line prints this).
    pub fn report(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&format!("changed: {c}\n"));
        }
        for a in &self.actions {
            out.push_str(&format!("to do: {a}\n"));
        }
        match &self.next {
            Some((t, what)) => out.push_str(&format!("next: {} {t} {what}\n", format_time(*t as u32))),
            None if self.actions.is_empty() => out.push_str("next: nothing scheduled\n"),
            None => out.push_str("next: waits for the step above\n"),
        }
        out
    }
}

fn uses(policy: &Policy, key: &KeyEntry, roll: Option<&Roll>) -> Uses {
    let normal = |k: &KeyEntry| Uses {
        published: true,
        signs_keys: k.role != Role::Zsk,
        signs_zone: k.role != Role::Ksk,
        cds: k.role != Role::Zsk && policy.cds,
    };
    let none = Uses::default();
    let publish_only = Uses {
        published: true,
        ..none
    };
    match key.status {
        Status::Removed => return none,
        Status::Active => return normal(key),
        Status::Incoming | Status::Outgoing => {}
    }
    let Some(r) = roll else {
        return none;
    };
    let new = key.status == Status::Incoming;
    let n = normal(key);
    match (r.kind, r.phase, new) {
        (RollKind::Zsk, 1, false) => n,
        (RollKind::Zsk, 1, true) => publish_only,
        (RollKind::Zsk, _, false) => publish_only,
        (RollKind::Zsk, _, true) => n,
        // phase 1: the new KSK is published only, until every cache has it; phase 2: both sign the DNSKEY RRset
        // (so it validates with the old DS, the new one or both) and CDS/CDNSKEY name both (the parent adds the
        // new DS); phase 3: the old KSK is gone and CDS/CDNSKEY name the new one only (the parent drops the old DS)
        (RollKind::Ksk, 1, false) => n,
        (RollKind::Ksk, 1, true) => publish_only,
        (RollKind::Ksk, 2, _) => n,
        (RollKind::Ksk, _, false) => none,
        (RollKind::Ksk, _, true) => n,
        // phase 1: the new CSK is published and signs the DNSKEY RRset beside the old one, zone data stays with
        // the old one; phase 2: the new CSK signs everything and CDS/CDNSKEY name it (the parent swaps the DS),
        // the old one still signs the DNSKEY RRset for resolvers that hold its DS
        (RollKind::Csk, 1, false) => n,
        (RollKind::Csk, 1, true) => Uses {
            signs_zone: false,
            cds: false,
            ..n
        },
        (RollKind::Csk, _, false) => Uses {
            signs_zone: false,
            cds: false,
            ..n
        },
        (RollKind::Csk, _, true) => n,
        (RollKind::Algorithm, 1 | 2, false) => n,
        (RollKind::Algorithm, 1, true) => Uses {
            published: false,
            cds: false,
            ..n
        },
        (RollKind::Algorithm, 2, true) => Uses { cds: false, ..n },
        (RollKind::Algorithm, 3, false) => Uses { cds: false, ..n },
        (RollKind::Algorithm, _, false) => Uses {
            published: false,
            cds: false,
            ..n
        },
        (RollKind::Algorithm, _, true) => n,
    }
}

/// The last phase of each kind.
fn last_phase(kind: RollKind) -> u8 {
    match kind {
        RollKind::Zsk | RollKind::Csk => 2,
        RollKind::Ksk => 3,
        RollKind::Algorithm => 4,
    }
}

/// Whether the phase waits for a DS change at the parent.
fn waits_for_ds(r: &Roll) -> bool {
    matches!(
        (r.kind, r.phase),
        (RollKind::Ksk, 2) | (RollKind::Ksk, 3) | (RollKind::Csk, 2) | (RollKind::Algorithm, 3)
    )
}

/// When the phase may end (`None`: waiting for the operator's `ds-seen`), and what happens then.
fn phase_end(policy: &Policy, r: &Roll) -> (Option<u64>, &'static str) {
    let key = policy.propagation_delay.0 + policy.dnskey_ttl.0;
    let sigs = policy.propagation_delay.0 + r.max_ttl as u64;
    let ds = |r: &Roll| {
        r.ds_seen
            .filter(|t| *t >= r.since)
            .map(|t| t + policy.parent_propagation_delay.0 + policy.ds_ttl.0)
    };
    match (r.kind, r.phase) {
        (RollKind::Zsk, 1) => (Some(r.since + key), "the new ZSK starts signing"),
        (RollKind::Zsk, _) => (Some(r.since + sigs), "the old ZSK is removed"),
        (RollKind::Ksk, 1) => (
            Some(r.since + key),
            "the new KSK is ready: it signs the DNSKEY RRset beside the old one and CDS/CDNSKEY name both, the \
             new DS is to be added",
        ),
        // the DNSKEY RRsets signed by the old KSK alone (phase 1) must have left the caches before the parent
        // may drop the old DS
        (RollKind::Ksk, 2) => (
            ds(r).map(|t| t.max(r.since + key)),
            "the old KSK is removed and CDS/CDNSKEY name the new KSK only: the old DS is to be removed",
        ),
        (RollKind::Ksk, _) => (ds(r), "the KSK rollover ends"),
        (RollKind::Csk, 1) => (
            Some(r.since + key),
            "the new CSK is ready: it signs the zone and CDS/CDNSKEY name it, the DS is to be replaced",
        ),
        // the old key may go once the DS changed and the data signed by it alone has left the caches
        (RollKind::Csk, _) => (ds(r).map(|t| t.max(r.since + sigs)), "the old CSK is removed"),
        (RollKind::Algorithm, 1) => (Some(r.since + sigs), "the new algorithm's DNSKEYs are published"),
        (RollKind::Algorithm, 2) => (
            Some(r.since + key),
            "CDS/CDNSKEY name the new algorithm's key: the DS is to be replaced",
        ),
        (RollKind::Algorithm, 3) => (ds(r), "the old algorithm's DNSKEYs are removed"),
        (RollKind::Algorithm, _) => (Some(r.since + key), "the old algorithm's signatures are removed"),
    }
}

fn make_key(
    state: &mut KeyState,
    factory: &mut dyn KeyFactory,
    zone: &Name,
    role: Role,
    alg: Algorithm,
    status: Status,
    now: u64,
) -> Result<String, RolloverError> {
    let in_use: Vec<String> = state.keys.iter().map(|k| k.source.clone()).collect();
    let (source, dk) = factory
        .create(zone, role, alg, &in_use)
        .map_err(|source| RolloverError::Key {
            key: format!("new {role:?} of algorithm {}", alg.number()),
            source,
        })?;
    if dk.is_sep() != role.is_sep() || dk.algorithm != alg.number() {
        return Err(RolloverError::Refused(format!(
            "key {source}: made with flags {} algorithm {}, wanted a {role:?} of algorithm {}",
            dk.flags,
            dk.algorithm,
            alg.number()
        )));
    }
    if state.keys.iter().any(|k| k.source == source) {
        return Err(RolloverError::Refused(format!(
            "key {source} is already in the state"
        )));
    }
    state.keys.push(KeyEntry {
        source: source.clone(),
        role,
        status,
        tag: dk.key_tag(),
        algorithm: dk.algorithm,
        dnskey: dnskey_text(&dk),
        created: now,
        active_since: (status == Status::Active).then_some(now),
        ds_seen: None,
        removed: None,
    });
    Ok(format!("made {role:?} {source} (key tag {})", dk.key_tag()))
}

fn roles_of(scheme: Scheme) -> &'static [Role] {
    match scheme {
        Scheme::KskZsk => &[Role::Ksk, Role::Zsk],
        Scheme::Csk => &[Role::Csk],
    }
}

fn ds_lines(zone: &Name, keys: &[&KeyEntry]) -> Result<String, RolloverError> {
    let mut out = Vec::new();
    for k in keys {
        let rd = ds_rdata(zone, &k.dnskey()?, DsDigest::Sha256);
        out.push(format!(
            "{zone} IN DS {}",
            crate::rdata::present(crate::rdata::rtype::DS, &rd)
        ));
    }
    Ok(out.join("\n"))
}

/// One run: makes keys when a rollover starts, ends phases whose time has come (several in one run if due),
/// and returns the [`Plan`] to sign with. `max_ttl` is the largest TTL of the zone being signed.
pub fn advance(
    policy: &Policy,
    state: &mut KeyState,
    zone: &Name,
    now: u64,
    max_ttl: u32,
    factory: &mut dyn KeyFactory,
) -> Result<Plan, RolloverError> {
    let mut changes = Vec::new();
    if state.live().next().is_none() {
        for role in roles_of(policy.scheme) {
            changes.push(make_key(
                state,
                factory,
                zone,
                *role,
                policy.alg(),
                Status::Active,
                now,
            )?);
        }
    }
    loop {
        if let Some(r) = &mut state.roll {
            r.max_ttl = r.max_ttl.max(max_ttl);
            let (end, what) = phase_end(policy, r);
            if end.is_none_or(|t| now < t) {
                break;
            }
            changes.push(format!("{what} ({:?} rollover phase {} done)", r.kind, r.phase));
            if r.phase < last_phase(r.kind) {
                r.phase += 1;
                r.since = now;
                r.ds_seen = None;
                continue;
            }
            // the rollover ends: old keys removed, new ones active
            let kind = r.kind;
            state.roll = None;
            for k in &mut state.keys {
                match k.status {
                    Status::Outgoing => {
                        k.status = Status::Removed;
                        k.removed = Some(now);
                    }
                    Status::Incoming => {
                        k.status = Status::Active;
                        k.active_since = Some(now);
                        if matches!(kind, RollKind::Ksk | RollKind::Csk | RollKind::Algorithm)
                            && k.role.is_sep()
                        {
                            // the last phase waited for the new DS
                            k.ds_seen = Some(now);
                        }
                    }
                    _ => {}
                }
            }
            continue;
        }
        // no rollover in progress: should one start?
        let active: Vec<&KeyEntry> = state.live().filter(|k| k.status == Status::Active).collect();
        let start = if active.iter().any(|k| k.algorithm != policy.algorithm) {
            Some((RollKind::Algorithm, roles_of(policy.scheme).to_vec()))
        } else {
            let due = |k: &&KeyEntry| {
                let life = policy.lifetime(k.role);
                life > 0 && k.active_since.is_some_and(|t| now >= t + life)
                    // a KSK or CSK whose DS is not yet confirmed is not rolled
                    && (!k.role.is_sep() || k.ds_seen.is_some())
            };
            active.iter().find(|k| due(k)).map(|k| {
                let kind = match k.role {
                    Role::Ksk => RollKind::Ksk,
                    Role::Zsk => RollKind::Zsk,
                    Role::Csk => RollKind::Csk,
                };
                (kind, vec![k.role])
            })
        };
        let Some((kind, roles)) = start else {
            break;
        };
        if kind == RollKind::Algorithm && active.iter().any(|k| k.role.is_sep() && k.ds_seen.is_none()) {
            break; // the current DS is not confirmed yet
        }
        for k in &mut state.keys {
            if k.status == Status::Active && (kind == RollKind::Algorithm || roles.contains(&k.role)) {
                k.status = Status::Outgoing;
            }
        }
        for role in roles {
            changes.push(make_key(
                state,
                factory,
                zone,
                role,
                policy.alg(),
                Status::Incoming,
                now,
            )?);
        }
        changes.push(format!("{kind:?} rollover started"));
        state.roll = Some(Roll {
            kind,
            phase: 1,
            since: now,
            ds_seen: None,
            max_ttl,
        });
    }
    plan(policy, state, zone, now, changes)
}

/// The plan for the state as it is (no change to it).
pub fn plan(
    policy: &Policy,
    state: &KeyState,
    zone: &Name,
    now: u64,
    changes: Vec<String>,
) -> Result<Plan, RolloverError> {
    let roll = state.roll.as_ref();
    let mut signers = Vec::new();
    let mut apex = ApexKeys {
        dnskey_ttl: policy.dnskey_ttl.0 as u32,
        ..Default::default()
    };
    for k in state.live() {
        let u = uses(policy, k, roll);
        let dk = k.dnskey()?;
        if u.published {
            apex.dnskeys.push(dk.clone());
        }
        if u.cds {
            apex.cds.push(dk);
        }
        if u.signs_keys || u.signs_zone {
            signers.push(k.source.clone());
            apex.roles.push((u.signs_keys, u.signs_zone));
        }
    }
    let mut actions = Vec::new();
    let active_roles: Vec<Role> = state
        .live()
        .filter(|k| k.status == Status::Active)
        .map(|k| k.role)
        .collect();
    if roll.is_none() && roles_of(policy.scheme).iter().any(|r| !active_roles.contains(r)) {
        actions.push(format!(
            "the policy asks for scheme {:?} and the zone's keys are {active_roles:?}: changing the scheme is \
             not automated; the keys are kept",
            policy.scheme
        ));
    }
    let fmt_t = |t: u64| format_time(t as u32);
    let incoming_sep: Vec<&KeyEntry> = state
        .live()
        .filter(|k| k.status == Status::Incoming && k.role.is_sep())
        .collect();
    let next = match roll {
        Some(r) => {
            let (end, what) = phase_end(policy, r);
            if waits_for_ds(r) && end.is_none() {
                let (verb, mut tail) = if r.kind == RollKind::Ksk && r.phase == 2 {
                    (
                        "add at the parent, beside the DS there now,",
                        " (the CDS/CDNSKEY records in the zone name both)",
                    )
                } else {
                    (
                        "make the parent's DS set exactly",
                        " (the CDS/CDNSKEY records in the zone say the same)",
                    )
                };
                if !policy.cds {
                    tail = "";
                }
                actions.push(format!(
                    "{verb} this DS{tail}:\n{}\nthen, once every parent server has it, run `dnssec-sign keys \
                     ds-seen`",
                    ds_lines(zone, &incoming_sep)?
                ));
                None
            } else {
                end.map(|t| {
                    (
                        t,
                        format!("{what}; run the signer again at or after {}", fmt_t(t)),
                    )
                })
            }
        }
        None => {
            let unconfirmed: Vec<&KeyEntry> = state
                .live()
                .filter(|k| k.status == Status::Active && k.role.is_sep() && k.ds_seen.is_none())
                .collect();
            if !unconfirmed.is_empty() {
                actions.push(format!(
                    "publish this DS at the parent:\n{}\nthen run `dnssec-sign keys ds-seen` (no rollover starts \
                     before)",
                    ds_lines(zone, &unconfirmed)?
                ));
            }
            state
                .live()
                .filter(|k| k.status == Status::Active)
                .filter_map(|k| {
                    let life = policy.lifetime(k.role);
                    (life > 0).then(|| (k.active_since.unwrap_or(now) + life, k))
                })
                .min_by_key(|(t, _)| *t)
                .map(|(t, k)| {
                    (
                        t,
                        format!(
                            "{:?} {} reaches its lifetime: a rollover starts; run the signer again at or after {}",
                            k.role,
                            k.tag,
                            fmt_t(t)
                        ),
                    )
                })
        }
    };
    if signers.is_empty() || apex.dnskeys.is_empty() {
        return Err(RolloverError::Refused(
            "the state leaves no key to sign with".into(),
        ));
    }
    Ok(Plan {
        signers,
        apex,
        changes,
        actions,
        next,
    })
}

/// Records the operator's confirmation that the parent publishes the DS set the zone waits for. With
/// `parent_ds` (the parent's DS records, record data), checks it first: the DS of every key the parent should
/// point to must be there, and, when the old DS is to go, no DS of a key on its way out. Returns what was
/// confirmed.
pub fn ds_seen(
    state: &mut KeyState,
    zone: &Name,
    now: u64,
    parent_ds: Option<&[Vec<u8>]>,
) -> Result<String, RolloverError> {
    let matches = |ds: &[u8], k: &Dnskey| {
        ds.get(3).is_some_and(|d| {
            let digest = match d {
                2 => DsDigest::Sha256,
                4 => DsDigest::Sha384,
                _ => return false,
            };
            ds_rdata(zone, k, digest) == ds
        })
    };
    let (want, gone): (Vec<&KeyEntry>, Vec<&KeyEntry>) = match &state.roll {
        Some(r) if waits_for_ds(r) => {
            let incoming = state
                .live()
                .filter(|k| k.status == Status::Incoming && k.role.is_sep())
                .collect();
            let outgoing = if r.kind == RollKind::Ksk && r.phase == 2 {
                Vec::new()
            } else {
                state
                    .live()
                    .filter(|k| k.status == Status::Outgoing && k.role.is_sep())
                    .collect()
            };
            (incoming, outgoing)
        }
        Some(r) => {
            return Err(RolloverError::Refused(format!(
                "{:?} rollover phase {} waits for no DS change",
                r.kind, r.phase
            )));
        }
        None => {
            let unconfirmed: Vec<&KeyEntry> = state
                .live()
                .filter(|k| k.status == Status::Active && k.role.is_sep() && k.ds_seen.is_none())
                .collect();
            if unconfirmed.is_empty() {
                return Err(RolloverError::Refused("no DS change is awaited".into()));
            }
            (unconfirmed, Vec::new())
        }
    };
    if let Some(set) = parent_ds {
        for k in &want {
            let dk = k.dnskey()?;
            if !set.iter().any(|ds| matches(ds, &dk)) {
                return Err(RolloverError::Refused(format!(
                    "the parent's DS set lacks the DS of key {} ({})",
                    k.tag, k.source
                )));
            }
        }
        for k in &gone {
            let dk = k.dnskey()?;
            if set.iter().any(|ds| matches(ds, &dk)) {
                return Err(RolloverError::Refused(format!(
                    "the parent still has the DS of the old key {} ({})",
                    k.tag, k.source
                )));
            }
        }
    }
    let tags: Vec<String> = want.iter().map(|k| k.tag.to_string()).collect();
    let what = format!("DS of key(s) {} confirmed at the parent", tags.join(", "));
    match &mut state.roll {
        Some(r) => r.ds_seen = Some(now),
        None => {
            for k in &mut state.keys {
                if k.status == Status::Active && k.role.is_sep() && k.ds_seen.is_none() {
                    k.ds_seen = Some(now);
                }
            }
        }
    }
    Ok(what)
}

/// A human-readable status: keys, what each does, the rollover's phase and the next step.
pub fn status(policy: &Policy, state: &KeyState, zone: &Name, now: u64) -> Result<String, RolloverError> {
    let p = plan(policy, state, zone, now, Vec::new())?;
    let mut out = format!("zone {}  (now {})\n", state.zone, format_time(now as u32));
    out.push_str("tag\talg\trole\tstatus\tpublished\tsigns\tcds\tsince\tsource\n");
    for k in &state.keys {
        let u = uses(policy, k, state.roll.as_ref());
        let signs = match (u.signs_keys, u.signs_zone) {
            (true, true) => "all",
            (true, false) => "keys",
            (false, true) => "zone",
            (false, false) => "-",
        };
        let since = k.removed.or(k.active_since).unwrap_or(k.created);
        out.push_str(&format!(
            "{}\t{}\t{:?}\t{:?}\t{}\t{signs}\t{}\t{}\t{}\n",
            k.tag,
            k.algorithm,
            k.role,
            k.status,
            if u.published { "yes" } else { "no" },
            if u.cds { "yes" } else { "no" },
            format_time(since as u32),
            k.source
        ));
    }
    match &state.roll {
        Some(r) => out.push_str(&format!(
            "rollover: {:?}, phase {} since {}\n",
            r.kind,
            r.phase,
            format_time(r.since as u32)
        )),
        None => out.push_str("rollover: none\n"),
    }
    for a in &p.actions {
        out.push_str(&format!("to do: {a}\n"));
    }
    match &p.next {
        Some((t, what)) => out.push_str(&format!("next: {} {what}\n", format_time(*t as u32))),
        None if p.actions.is_empty() => out.push_str("next: nothing scheduled\n"),
        None => out.push_str("next: waits for the step above\n"),
    }
    Ok(out)
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Ksk => "KSK",
            Role::Zsk => "ZSK",
            Role::Csk => "CSK",
        })
    }
}

/// Reads the parent's DS set from a file in zone-file form (as `dnssec-sign ds` prints it or `dig DS` shows it):
/// the record data of every DS of `zone`.
pub fn read_parent_ds(file: &Path, zone: &Name) -> Result<Vec<Vec<u8>>, ZoneError> {
    let text = std::fs::read_to_string(file).map_err(|source| ZoneError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let z = crate::zonefile::parse_zone(format!("$TTL 3600\n{text}"), file, Some(&Name::root()))?;
    Ok(z.records
        .iter()
        .filter(|r| r.rtype == crate::rdata::rtype::DS && r.owner == *zone)
        .map(|r| r.rdata.to_vec())
        .collect())
}

/// The key sources of the signer: local key files in the key directory, a PKCS#11 token, the threshold cluster.
/// New keys go to the source the policy names; existing keys are found by their source reference.
pub struct Sources {
    /// The key directory (local key files, the state file).
    pub dir: PathBuf,
    /// The PKCS#11 token, if any.
    pub token: Option<crate::pkcs11::Token>,
    /// Requests in flight per PKCS#11 key.
    pub pkcs11_sessions: usize,
    /// The cluster, if any.
    pub cluster: Option<std::sync::Arc<tcrypto_net::client::blocking::BlockingCluster>>,
    /// Threshold `k` of keys the cluster makes by distributed key generation (ECDSA P-256, Ed25519).
    pub cluster_threshold: u16,
    /// Where new keys go.
    pub kind: KeySourceKind,
    /// RSA modulus size of new RSA keys.
    pub rsa_bits: usize,
    /// Clock of the run (names of new PKCS#11 keys).
    pub now: u64,
}

impl Sources {
    /// Local keys in `dir` only.
    pub fn local(dir: &Path, rsa_bits: usize) -> Self {
        Self {
            dir: dir.to_path_buf(),
            token: None,
            pkcs11_sessions: 4,
            cluster: None,
            cluster_threshold: 2,
            kind: KeySourceKind::Local,
            rsa_bits,
            now: 0,
        }
    }

    /// Opens the key a state entry names.
    pub fn open(
        &self,
        zone: &Name,
        entry: &KeyEntry,
    ) -> Result<Box<dyn crate::keys::ZoneSigningKey>, RolloverError> {
        let err = |source: KeyError| RolloverError::Key {
            key: entry.source.clone(),
            source,
        };
        let missing = |what: &str| {
            err(KeyError::Generation(format!(
                "the key is in {what}, and no {what} is configured"
            )))
        };
        let ksk = entry.role.is_sep();
        let key: Box<dyn crate::keys::ZoneSigningKey> =
            if let Some(base) = entry.source.strip_prefix("local:") {
                if base.contains('/') {
                    return Err(err(KeyError::Generation(
                        "a local key is a file name in the key directory".into(),
                    )));
                }
                Box::new(crate::keys::LocalKey::read_files(&self.dir.join(base)).map_err(err)?)
            } else if let Some(label) = entry.source.strip_prefix("pkcs11:") {
                let token = self.token.as_ref().ok_or_else(|| missing("a PKCS#11 token"))?;
                Box::new(
                    token
                        .key(label, zone, ksk, entry.algorithm == 10, self.pkcs11_sessions)
                        .map_err(err)?,
                )
            } else if let Some(id) = entry.source.strip_prefix("cluster:") {
                let cluster = self.cluster.as_ref().ok_or_else(|| missing("the cluster"))?;
                let opts = crate::cluster::ClusterKeyOptions {
                    ksk,
                    rsa_algorithm: Algorithm::from_number(entry.algorithm).map_err(err)?,
                    ..Default::default()
                };
                let which = crate::cluster::ClusterKeyRef::parse(id).map_err(err)?;
                Box::new(crate::cluster::ClusterKey::find(cluster.clone(), &which, zone, opts).map_err(err)?)
            } else {
                return Err(err(KeyError::Generation(
                    "unknown source (local:, pkcs11: or cluster:)".into(),
                )));
            };
        let want = entry.dnskey()?;
        if *key.dnskey() != want {
            return Err(err(KeyError::Generation(format!(
                "the key found has DNSKEY {}, the state says {}",
                dnskey_text(key.dnskey()),
                entry.dnskey
            ))));
        }
        Ok(key)
    }
}

impl KeyFactory for Sources {
    fn create(
        &mut self,
        zone: &Name,
        role: Role,
        algorithm: Algorithm,
        in_use: &[String],
    ) -> Result<(String, Dnskey), KeyError> {
        let ksk = role.is_sep();
        match self.kind {
            KeySourceKind::Local => {
                let key =
                    crate::keys::LocalKey::generate(zone, algorithm, ksk, self.rsa_bits, &mut rand::rng())?;
                key.write_files(&self.dir)?;
                Ok((format!("local:{}", key.base_name()), key.dnskey().clone()))
            }
            KeySourceKind::Pkcs11 => {
                let token = self.token.as_ref().ok_or_else(|| {
                    KeyError::Generation("the policy asks for PKCS#11 keys: give a token".into())
                })?;
                let mut n = 0;
                let label = loop {
                    let l = format!(
                        "{}{role}-{}-{n}",
                        zone.to_string().trim_end_matches('.'),
                        self.now
                    );
                    let source = format!("pkcs11:{l}");
                    if !in_use.contains(&source) {
                        break l;
                    }
                    n += 1;
                };
                token.generate(&label, algorithm, self.rsa_bits as u64)?;
                let key = token.key(&label, zone, ksk, algorithm == Algorithm::RsaSha512, 1)?;
                Ok((format!("pkcs11:{label}"), key.dnskey().clone()))
            }
            KeySourceKind::Cluster => {
                let cluster = self.cluster.as_ref().ok_or_else(|| {
                    KeyError::Generation("the policy asks for cluster keys: give a cluster".into())
                })?;
                let opts = crate::cluster::ClusterKeyOptions {
                    ksk,
                    rsa_algorithm: algorithm,
                    ..Default::default()
                };
                let id = match algorithm {
                    Algorithm::EcdsaP256Sha256 | Algorithm::Ed25519 => {
                        let a = if algorithm == Algorithm::Ed25519 {
                            tcrypto_net::transport::wire::Algorithm::Ed25519
                        } else {
                            tcrypto_net::transport::wire::Algorithm::EcdsaP256
                        };
                        cluster
                            .create_key(a, self.cluster_threshold)
                            .map_err(|e| KeyError::Cluster(format!("distributed key generation: {e}")))?
                    }
                    // RSA keys are dealt (the dealer runs apart, `tcrypto-node deal`): take one the cluster
                    // has that no state entry uses
                    Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                        cluster
                            .refresh_keys()
                            .map_err(|e| KeyError::Cluster(format!("listing keys: {e}")))?;
                        cluster
                            .list()
                            .into_iter()
                            .find(|id| {
                                !in_use.contains(&format!("cluster:{id}"))
                                    && crate::cluster::ClusterKey::new(cluster.clone(), *id, zone, opts)
                                        .is_ok()
                            })
                            .ok_or_else(|| {
                                KeyError::Cluster(
                                    "no unused RSA key in the cluster: deal one for the rollover first"
                                        .into(),
                                )
                            })?
                    }
                };
                let key = crate::cluster::ClusterKey::new(cluster.clone(), id, zone, opts)?;
                Ok((format!("cluster:{id}"), key.dnskey().clone()))
            }
        }
    }
}

/// One signing run under key management: loads the state of `sources.dir`, advances it to `opts.now` (making
/// keys as needed), and signs `zone` as the plan says, with the policy's signature validity, refresh and jitter
/// and, when given in `opts.previous`, incrementally. Returns the signed zone, the figures, the plan and the new
/// state; the caller writes the zone, then the state ([`KeyState::write`]).
pub fn sign_managed(
    policy: &Policy,
    zone: crate::zone::Zone,
    sources: &mut Sources,
    mut opts: crate::sign::SignOptions,
) -> Result<(crate::zone::Zone, crate::sign::SignStats, Plan, KeyState), RolloverError> {
    let origin = zone.origin.clone();
    let mut state = KeyState::load(&sources.dir, &origin)?;
    let max_ttl = zone.records.iter().map(|r| r.ttl).max().unwrap_or(0);
    sources.now = opts.now;
    let plan = advance(policy, &mut state, &origin, opts.now, max_ttl, sources)?;
    let mut keys = Vec::new();
    for src in &plan.signers {
        let entry = state
            .keys
            .iter()
            .find(|k| &k.source == src)
            .ok_or_else(|| RolloverError::Refused(format!("no key {src}")))?;
        keys.push(sources.open(&origin, entry)?);
    }
    opts.validity = policy.signature_validity.0 as u32;
    opts.refresh = policy.signature_refresh.0 as u32;
    opts.jitter = policy.signature_jitter.0 as u32;
    opts.cds = false;
    opts.apex_keys = Some(plan.apex.clone());
    let refs: Vec<&dyn crate::keys::ZoneSigningKey> = keys.iter().map(|k| k.as_ref()).collect();
    let (signed, stats) = crate::sign::sign_zone(zone, &refs, &opts, None)?;
    Ok((signed, stats, plan, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct D {
        d: Duration,
    }

    fn dur(v: &str) -> Result<u64, String> {
        toml::from_str::<D>(&format!("d = {v}"))
            .map(|x| x.d.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(dur("3600"), Ok(3600));
        assert_eq!(dur("\"90d\""), Ok(90 * 86400));
        assert_eq!(dur("\"2w\""), Ok(14 * 86400));
        assert_eq!(dur("\"1h\""), Ok(3600));
        assert_eq!(dur("\"30m\""), Ok(1800));
        assert_eq!(dur("\"45s\""), Ok(45));
        assert_eq!(dur("\"45\""), Ok(45));
        assert!(dur("\"5y\"").unwrap_err().contains("unit"));
        assert!(dur("\"d\"").is_err());
        assert!(dur("\"99999999999999999999d\"").is_err());
        assert!(dur("-1").is_err());
        // at most 2^32 - 1 s, so that it writes back as a TOML integer and times plus durations do not overflow
        assert_eq!(dur("4294967295"), Ok(u64::from(u32::MAX)));
        assert!(dur("4294967296").unwrap_err().contains("136 years"));
        assert!(dur("\"7102w\"").unwrap_err().contains("136 years"));
    }

    #[test]
    fn the_state_round_trips_through_its_file_form() {
        let zone = Name::parse("example.", None).unwrap();
        let key =
            crate::keys::LocalKey::generate(&zone, Algorithm::Ed25519, true, 0, &mut rand::rng()).unwrap();
        let mut s = KeyState::new(&zone);
        s.keys.push(KeyEntry {
            source: "local:x".into(),
            role: Role::Ksk,
            status: Status::Outgoing,
            tag: key.dnskey().key_tag(),
            algorithm: 15,
            dnskey: dnskey_text(key.dnskey()),
            created: 1,
            active_since: Some(2),
            ds_seen: None,
            removed: None,
        });
        s.roll = Some(Roll {
            kind: RollKind::Ksk,
            phase: 2,
            since: 3,
            ds_seen: Some(4),
            max_ttl: 86400,
        });
        let text = s.to_toml().unwrap();
        let back = KeyState::parse(&text, Path::new("s.toml")).unwrap();
        assert_eq!(back.to_toml().unwrap(), text);
        assert_eq!(back.keys[0].dnskey().unwrap(), *key.dnskey());
        // a DNSKEY that does not match its tag is refused, naming the line
        let bad = text.replace(&format!("tag = {}", s.keys[0].tag), "tag = 1");
        let err = KeyState::parse(&bad, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.toml:") && err.contains("key tag"), "{err}");
        // a phase the rollover kind does not have is refused, naming its line
        let bad = text.replace("phase = 2", "phase = 4");
        let line = 1 + bad.lines().position(|l| l == "phase = 4").unwrap();
        let err = KeyState::parse(&bad, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("s.toml:{line}: a Ksk rollover has phases 1 to 3")),
            "{err}"
        );
    }
}
