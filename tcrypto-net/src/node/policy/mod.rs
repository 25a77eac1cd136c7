//! A node's signing policy: what this node agrees to sign, written by the node's own operator and never set or
//! loosened by a coordinator.
//!
//! Threshold cryptography keeps the key out of any one machine, but whoever holds a coordinator could still have
//! every node sign anything. With a policy, each of the `k` nodes a signature needs checks the request on its own:
//! which mechanisms a key may use, and for a DNSSEC key, the data it signs: an RRSIG over an RRset, sent as the
//! RRSIG RDATA without its signature followed by the RRset in canonical form (RFC 4034 §3.1.8.1), which the node
//! parses strictly ([`RrsigData::parse`]) and checks against the zones the key serves, its role, the algorithm and
//! key tag the RRSIG must name, and bounds on its validity period measured by the node's clock.
//!
//! The policy file (`policy_file` in the node configuration; reloaded on SIGHUP):
//! ```toml
//! # Keys without a [[key]] entry of their own (omit to refuse every such key).
//! [default]
//! mechanisms = ["rsa-pkcs1v15", "rsa-pss", "ecdsa", "ed25519", "rsa-pkcs1v15-data", "ecdsa-data"]
//!
//! [[key]]
//! key = "3f1c9a2e"                  # key id, or a unique prefix of at least 8 hex digits
//! mechanisms = ["dnssec-rrsig"]     # data only: bare digests are refused for this key
//! rate_per_minute = 6000            # optional
//! [key.dnssec]
//! zones = ["example.com."]          # the apexes the key signs for (the RRSIG's signer name)
//! role = "zsk"                      # ksk: DNSKEY, CDS, CDNSKEY at the apex only; zsk: every other type; csk: all
//! algorithm = 13                    # the DNSSEC algorithm the RRSIG must name
//! key_tag = 40436                   # optional; the node also derives it from its own key and the role
//! max_validity = "30d"              # expiration - inception
//! max_inception_age = "2h"          # how far inception may lie in the node's past
//! max_expiration_ahead = "31d"      # how far expiration may lie in the node's future
//! ```
//! A node without a policy file signs what its pinned coordinators ask (the behaviour before policies).
//!
//! Data-carrying requests ([`crate::transport::wire::SignData`]) let the node see what it signs; for a key with a
//! `[key.dnssec]` section every such request (and an Ed25519 message) is judged as RRSIG data under `dnssec-rrsig`,
//! whatever hash mechanism the host named, and that hash must be the one the RRSIG's algorithm names. Signers build
//! such data with [`RrsigBuilder`].
//!
//! Refusals name the [`Rule`] that failed (a [`Refused`]), which the node answers and audits with the rule.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tcrypto::KeyId;
use thiserror::Error;

/// DNS class IN.
const CLASS_IN: u16 = 1;
/// RR types a KSK signs (at the apex): DNSKEY, CDS, CDNSKEY.
const KSK_TYPES: [u16; 3] = [48, 59, 60];
/// RRSIG (never itself covered by an RRSIG).
const TYPE_RRSIG: u16 = 46;

/// The rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The node's policy has no entry for this key and no default.
    NoPolicyForKey,
    /// The mechanism is not among the key's allowed mechanisms (a bare digest for a key that signs data only).
    MechanismNotAllowed,
    /// The RRSIG data does not parse (truncated, compressed or overlong names, no RRset, trailing bytes).
    MalformedData,
    /// A name is not in canonical form (upper-case letters).
    NotCanonical,
    /// The RRs of the RRset do not share owner, type, class and TTL with each other and the RRSIG fields.
    InconsistentRrset,
    /// The RRset is not in canonical order, or holds a duplicate.
    NotSorted,
    /// The RRSIG's labels field does not match its owner name.
    LabelsMismatch,
    /// The signer name is not one of the zones the key may sign for.
    ZoneNotAllowed,
    /// The owner name is not at or below the signer name.
    OwnerOutsideZone,
    /// The type is not one the key's role may sign (a KSK signing an A record, a ZSK a DNSKEY set).
    TypeNotForRole,
    /// The RRSIG names another algorithm than the policy's, or one that does not fit the key.
    AlgorithmMismatch,
    /// The RRSIG names another key tag than the key's.
    KeyTagMismatch,
    /// Expiration is not after inception.
    InceptionAfterExpiration,
    /// The validity period is longer than allowed.
    ValidityTooLong,
    /// Inception lies further in the past than allowed.
    InceptionTooOld,
    /// Expiration lies further in the future than allowed.
    ExpirationTooFar,
    /// The key signed its allowance for this minute.
    RateLimited,
}

impl Rule {
    /// Every rule (for tests and documentation).
    pub const ALL: [Rule; 17] = [
        Rule::NoPolicyForKey,
        Rule::MechanismNotAllowed,
        Rule::MalformedData,
        Rule::NotCanonical,
        Rule::InconsistentRrset,
        Rule::NotSorted,
        Rule::LabelsMismatch,
        Rule::ZoneNotAllowed,
        Rule::OwnerOutsideZone,
        Rule::TypeNotForRole,
        Rule::AlgorithmMismatch,
        Rule::KeyTagMismatch,
        Rule::InceptionAfterExpiration,
        Rule::ValidityTooLong,
        Rule::InceptionTooOld,
        Rule::ExpirationTooFar,
        Rule::RateLimited,
    ];

    /// The rule's stable name (in refusals and the audit log).
    pub const fn name(self) -> &'static str {
        match self {
            Rule::NoPolicyForKey => "no-policy-for-key",
            Rule::MechanismNotAllowed => "mechanism-not-allowed",
            Rule::MalformedData => "malformed-data",
            Rule::NotCanonical => "not-canonical",
            Rule::InconsistentRrset => "inconsistent-rrset",
            Rule::NotSorted => "not-sorted",
            Rule::LabelsMismatch => "labels-mismatch",
            Rule::ZoneNotAllowed => "zone-not-allowed",
            Rule::OwnerOutsideZone => "owner-outside-zone",
            Rule::TypeNotForRole => "type-not-for-role",
            Rule::AlgorithmMismatch => "algorithm-mismatch",
            Rule::KeyTagMismatch => "key-tag-mismatch",
            Rule::InceptionAfterExpiration => "inception-after-expiration",
            Rule::ValidityTooLong => "validity-too-long",
            Rule::InceptionTooOld => "inception-too-old",
            Rule::ExpirationTooFar => "expiration-too-far",
            Rule::RateLimited => "rate-limited",
        }
    }

    /// The rule named `name`.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A request the policy refuses: the rule and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{rule}: {detail}")]
pub struct Refused {
    /// The rule that failed.
    pub rule: Rule,
    /// What the node saw.
    pub detail: String,
}

fn refuse<T>(rule: Rule, detail: impl Into<String>) -> Result<T, Refused> {
    Err(Refused {
        rule,
        detail: detail.into(),
    })
}

// ------------------------------------------------------------------------------------------------ names

/// A domain name in uncompressed wire form, as labels (canonical: lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// Reads a name in uncompressed wire form at the start of `input`; returns it and the bytes after it. Refuses
    /// compression pointers, labels over 63 octets, names over 255 octets and upper-case ASCII letters.
    fn read(input: &[u8]) -> Result<(Name, &[u8]), Refused> {
        let mut labels = Vec::new();
        let mut rest = input;
        let mut wire_len = 0usize;
        loop {
            let Some((&len, after)) = rest.split_first() else {
                return refuse(Rule::MalformedData, "name runs past the end of the data");
            };
            wire_len += 1 + usize::from(len);
            if wire_len > 255 {
                return refuse(Rule::MalformedData, "name longer than 255 octets");
            }
            if len == 0 {
                return Ok((Name { labels }, after));
            }
            if len > 63 {
                return refuse(
                    Rule::MalformedData,
                    "label length over 63 (compression pointers are not canonical)",
                );
            }
            let Some((label, after)) = after.split_at_checked(usize::from(len)) else {
                return refuse(Rule::MalformedData, "label runs past the end of the data");
            };
            if label.iter().any(u8::is_ascii_uppercase) {
                return refuse(
                    Rule::NotCanonical,
                    "upper-case letters in a name (canonical form is lower case)",
                );
            }
            labels.push(label.to_vec());
            rest = after;
        }
    }

    /// Parses a zone apex written in a policy file (`example.com.`; letters, digits, `-`, `_` and `*`-free
    /// labels; the trailing dot optional; `.` for the root).
    pub fn parse_apex(text: &str) -> Result<Name, String> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if trimmed.is_empty() {
            return Ok(Name { labels: Vec::new() });
        }
        let mut labels = Vec::new();
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("{text:?}: empty label or label over 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "{text:?}: only letters, digits, '-' and '_' are accepted in zone names"
                ));
            }
            labels.push(label.to_ascii_lowercase().into_bytes());
        }
        let name = Name { labels };
        if name.wire_len() > 255 {
            return Err(format!("{text:?}: longer than 255 octets"));
        }
        Ok(name)
    }

    fn wire_len(&self) -> usize {
        1 + self.labels.iter().map(|l| 1 + l.len()).sum::<usize>()
    }

    /// Number of labels (the root has none).
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// Whether the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.labels.first().is_some_and(|l| l.as_slice() == b"*")
    }

    /// Whether this name is `apex` or below it.
    pub fn is_at_or_below(&self, apex: &Name) -> bool {
        self.labels.len() >= apex.labels.len()
            && self.labels[self.labels.len() - apex.labels.len()..] == apex.labels[..]
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for label in &self.labels {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------ RRSIG data

/// One RR of the signed RRset (owner, type, class and TTL are checked to be the RRset's; kept: the RDATA).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record<'a> {
    owner: Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &'a [u8],
}

/// The data of an RRSIG signature as RFC 4034 §3.1.8.1 defines it: the RRSIG RDATA without the signature field,
/// then the RRset in canonical form and order. [`RrsigData::parse`] checks everything about it that holds for
/// every zone; [`DnssecPolicy::check`] what a key's policy adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsigData {
    /// Type covered.
    pub type_covered: u16,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Labels field.
    pub labels: u8,
    /// Original TTL.
    pub original_ttl: u32,
    /// Signature expiration (serial number arithmetic, RFC 1982).
    pub expiration: u32,
    /// Signature inception.
    pub inception: u32,
    /// Key tag.
    pub key_tag: u16,
    /// Signer name.
    pub signer: Name,
    /// The RRset's owner name.
    pub owner: Name,
    /// Number of RRs in the RRset.
    pub rr_count: usize,
}

fn take<const N: usize>(input: &[u8]) -> Result<([u8; N], &[u8]), Refused> {
    let Some((head, rest)) = input.split_first_chunk::<N>() else {
        return refuse(Rule::MalformedData, "data ends inside a fixed field");
    };
    Ok((*head, rest))
}

impl RrsigData {
    /// Parses and checks RRSIG signature data: fixed fields, an uncompressed canonical signer name, then at
    /// least one RR, all with the same owner, the covered type, class IN and the original TTL, in strictly
    /// increasing canonical RDATA order (no duplicates), an owner whose label count fits the labels field, and
    /// nothing after the last RR.
    pub fn parse(data: &[u8]) -> Result<RrsigData, Refused> {
        let (type_covered, rest) = take::<2>(data)?;
        let (algorithm, rest) = take::<1>(rest)?;
        let (labels, rest) = take::<1>(rest)?;
        let (original_ttl, rest) = take::<4>(rest)?;
        let (expiration, rest) = take::<4>(rest)?;
        let (inception, rest) = take::<4>(rest)?;
        let (key_tag, rest) = take::<2>(rest)?;
        let (signer, mut rest) = Name::read(rest)?;
        let type_covered = u16::from_be_bytes(type_covered);
        let original_ttl = u32::from_be_bytes(original_ttl);
        if type_covered == TYPE_RRSIG || type_covered == 0 {
            return refuse(
                Rule::MalformedData,
                format!("type covered {type_covered} is never signed"),
            );
        }
        let mut records: Vec<Record<'_>> = Vec::new();
        while !rest.is_empty() {
            let (owner, after) = Name::read(rest)?;
            let (rtype, after) = take::<2>(after)?;
            let (class, after) = take::<2>(after)?;
            let (ttl, after) = take::<4>(after)?;
            let (rdlength, after) = take::<2>(after)?;
            let Some((rdata, after)) = after.split_at_checked(usize::from(u16::from_be_bytes(rdlength)))
            else {
                return refuse(Rule::MalformedData, "RDATA runs past the end of the data");
            };
            records.push(Record {
                owner,
                rtype: u16::from_be_bytes(rtype),
                class: u16::from_be_bytes(class),
                ttl: u32::from_be_bytes(ttl),
                rdata,
            });
            rest = after;
        }
        let Some(first) = records.first() else {
            return refuse(Rule::MalformedData, "no RRset after the RRSIG fields");
        };
        for r in &records {
            if r.owner != first.owner {
                return refuse(
                    Rule::InconsistentRrset,
                    format!("owners {} and {} in one RRset", first.owner, r.owner),
                );
            }
            if r.rtype != type_covered {
                return refuse(
                    Rule::InconsistentRrset,
                    format!("type {} in an RRset of type covered {type_covered}", r.rtype),
                );
            }
            if r.class != CLASS_IN {
                return refuse(
                    Rule::InconsistentRrset,
                    format!("class {} (only IN is signed)", r.class),
                );
            }
            if r.ttl != original_ttl {
                return refuse(
                    Rule::InconsistentRrset,
                    format!("TTL {} differs from the original TTL {original_ttl}", r.ttl),
                );
            }
        }
        for pair in records.windows(2) {
            if pair[0].rdata >= pair[1].rdata {
                return refuse(
                    Rule::NotSorted,
                    "RRs not in strictly increasing canonical RDATA order (unsorted or duplicate)",
                );
            }
        }
        let owner = first.owner.clone();
        let expected = owner.label_count() - usize::from(owner.is_wildcard());
        if usize::from(labels[0]) != expected {
            return refuse(
                Rule::LabelsMismatch,
                format!(
                    "labels field {} for owner {owner} ({expected} expected)",
                    labels[0]
                ),
            );
        }
        Ok(RrsigData {
            type_covered,
            algorithm: algorithm[0],
            labels: labels[0],
            original_ttl,
            expiration: u32::from_be_bytes(expiration),
            inception: u32::from_be_bytes(inception),
            key_tag: u16::from_be_bytes(key_tag),
            signer,
            rr_count: records.len(),
            owner,
        })
    }
}

/// A domain name in text (`www.example.com.`, `*.example.com`; letters, digits, `-`, `_`, and `*` as a whole
/// first label) in lower-case uncompressed wire form, for [`RrsigBuilder`].
pub fn wire_name(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    let mut out = Vec::with_capacity(trimmed.len() + 2);
    if !trimmed.is_empty() {
        for (i, label) in trimmed.split('.').enumerate() {
            let ok = (i == 0 && label == "*")
                || label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let len = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l));
            let (true, Some(len)) = (ok, len) else {
                return Err(format!("{text:?}: bad label {label:?}"));
            };
            out.push(len);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    if out.len() > 255 {
        return Err(format!("{text:?}: longer than 255 octets"));
    }
    Ok(out)
}

/// RRSIG signature data as a signer builds it (the other side of [`RrsigData::parse`]): the RRSIG RDATA without
/// the signature, then the RRset (every RR with the owner, type covered, class and original TTL) in canonical
/// order. The fields are public so tests can also build data a node must refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsigBuilder {
    /// Type covered.
    pub type_covered: u16,
    /// DNSSEC algorithm.
    pub algorithm: u8,
    /// Labels field; `None`: the owner's label count, not counting a leading `*`.
    pub labels: Option<u8>,
    /// Original TTL (also the TTL of every RR, unless `rr_ttl`).
    pub original_ttl: u32,
    /// Signature expiration.
    pub expiration: u32,
    /// Signature inception.
    pub inception: u32,
    /// Key tag.
    pub key_tag: u16,
    /// Signer name, wire form.
    pub signer: Vec<u8>,
    /// Owner name, wire form.
    pub owner: Vec<u8>,
    /// Class of the RRs (IN).
    pub class: u16,
    /// TTL of the RRs when it is not the original TTL (only data a node refuses has that).
    pub rr_ttl: Option<u32>,
    /// The RDATA of each RR, canonical (uncompressed, lower-case names).
    pub rdatas: Vec<Vec<u8>>,
}

impl RrsigBuilder {
    /// An RRSIG of `type_covered` at `owner` by zone `signer` with `algorithm`: TTL 3600, class IN, times and key
    /// tag 0 and no RR yet (set the fields, add RDATA with [`RrsigBuilder::rdata`]).
    pub fn new(signer: &str, owner: &str, type_covered: u16, algorithm: u8) -> Result<RrsigBuilder, String> {
        Ok(RrsigBuilder {
            type_covered,
            algorithm,
            labels: None,
            original_ttl: 3600,
            expiration: 0,
            inception: 0,
            key_tag: 0,
            signer: wire_name(signer)?,
            owner: wire_name(owner)?,
            class: CLASS_IN,
            rr_ttl: None,
            rdatas: Vec::new(),
        })
    }

    /// Sets the validity period and key tag.
    pub fn signed(mut self, inception: u32, expiration: u32, key_tag: u16) -> RrsigBuilder {
        self.inception = inception;
        self.expiration = expiration;
        self.key_tag = key_tag;
        self
    }

    /// Adds an RR with this RDATA.
    pub fn rdata(mut self, rdata: &[u8]) -> RrsigBuilder {
        self.rdatas.push(rdata.to_vec());
        self
    }

    /// The signature data with the RRset in canonical order and without duplicates (RFC 4034 §6.3).
    pub fn build(&self) -> Vec<u8> {
        let mut rdatas: Vec<&Vec<u8>> = self.rdatas.iter().collect();
        rdatas.sort();
        rdatas.dedup();
        self.encode(&rdatas)
    }

    /// The signature data with the RRs in the order given (to build unsorted data a node must refuse).
    pub fn build_in_given_order(&self) -> Vec<u8> {
        self.encode(&self.rdatas.iter().collect::<Vec<_>>())
    }

    fn encode(&self, rdatas: &[&Vec<u8>]) -> Vec<u8> {
        let labels = self.labels.unwrap_or_else(|| {
            let (count, wildcard) = Name::read(&self.owner)
                .map(|(n, _)| (n.label_count(), n.is_wildcard()))
                .unwrap_or((0, false));
            u8::try_from(count - usize::from(wildcard)).unwrap_or(u8::MAX)
        });
        let mut out = Vec::new();
        out.extend_from_slice(&self.type_covered.to_be_bytes());
        out.push(self.algorithm);
        out.push(labels);
        out.extend_from_slice(&self.original_ttl.to_be_bytes());
        out.extend_from_slice(&self.expiration.to_be_bytes());
        out.extend_from_slice(&self.inception.to_be_bytes());
        out.extend_from_slice(&self.key_tag.to_be_bytes());
        out.extend_from_slice(&self.signer);
        for rdata in rdatas {
            out.extend_from_slice(&self.owner);
            out.extend_from_slice(&self.type_covered.to_be_bytes());
            out.extend_from_slice(&self.class.to_be_bytes());
            out.extend_from_slice(&self.rr_ttl.unwrap_or(self.original_ttl).to_be_bytes());
            out.extend_from_slice(&u16::try_from(rdata.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(rdata);
        }
        out
    }
}

/// The 32-bit RRSIG time (RFC 1982 serial arithmetic) `offset` seconds from `now` (Unix seconds).
pub fn rrsig_time(now: u64, offset: i64) -> u32 {
    // Truncation intended: RRSIG times are the low 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let t = (now as i64).wrapping_add(offset) as u32;
    t
}

/// `stamp` (a 32-bit RRSIG time, RFC 1982 serial arithmetic) as seconds relative to `now` (Unix seconds): the
/// nearest time with those low 32 bits.
fn relative_to_now(stamp: u32, now: u64) -> i64 {
    // Truncation intended: serial arithmetic works on the low 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let now32 = now as u32;
    i64::from(stamp.wrapping_sub(now32) as i32)
}

// ------------------------------------------------------------------------------------------------ policy file

/// What a key does in its zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Key-signing key: DNSKEY, CDS and CDNSKEY at the apex only.
    Ksk,
    /// Zone-signing key: every type but DNSKEY, CDS and CDNSKEY.
    Zsk,
    /// Combined signing key: every type.
    Csk,
}

impl Role {
    /// DNSKEY flags of a key in this role (SEP bit for KSK and CSK).
    pub const fn dnskey_flags(self) -> u16 {
        match self {
            Role::Ksk | Role::Csk => 257,
            Role::Zsk => 256,
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
}

/// The DNSSEC part of a key's policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecPolicy {
    /// The zone apexes the key signs for.
    pub zones: Vec<String>,
    /// The key's role.
    pub role: Role,
    /// The DNSSEC algorithm the RRSIG must name.
    pub algorithm: u8,
    /// The key tag the RRSIG must name (the node also derives it from its own key and the role).
    pub key_tag: Option<u16>,
    /// Longest validity period (`expiration - inception`).
    #[serde(deserialize_with = "duration")]
    pub max_validity: Duration,
    /// How far inception may lie in the node's past.
    #[serde(deserialize_with = "duration")]
    pub max_inception_age: Duration,
    /// How far expiration may lie in the node's future.
    #[serde(deserialize_with = "duration")]
    pub max_expiration_ahead: Duration,
    #[serde(skip)]
    apexes: Vec<Name>,
}

impl DnssecPolicy {
    /// Checks parsed RRSIG data against this policy at `now` (Unix seconds, the node's clock). `derived_key_tag`
    /// is the key tag of the node's own key in this role, when the node can compute it.
    pub fn check(&self, data: &RrsigData, derived_key_tag: Option<u16>, now: u64) -> Result<(), Refused> {
        if !self.apexes.contains(&data.signer) {
            return refuse(
                Rule::ZoneNotAllowed,
                format!("signer {} is not one of this key's zones", data.signer),
            );
        }
        if !data.owner.is_at_or_below(&data.signer) {
            return refuse(
                Rule::OwnerOutsideZone,
                format!("owner {} is not in zone {}", data.owner, data.signer),
            );
        }
        let ksk_type = KSK_TYPES.contains(&data.type_covered);
        let allowed = match self.role {
            Role::Ksk => ksk_type && data.owner == data.signer,
            Role::Zsk => !ksk_type,
            Role::Csk => true,
        };
        if !allowed {
            return refuse(
                Rule::TypeNotForRole,
                format!(
                    "type {} at {} is not for a {:?} key",
                    data.type_covered, data.owner, self.role
                ),
            );
        }
        if data.algorithm != self.algorithm {
            return refuse(
                Rule::AlgorithmMismatch,
                format!(
                    "algorithm {} (the policy says {})",
                    data.algorithm, self.algorithm
                ),
            );
        }
        for tag in [self.key_tag, derived_key_tag].into_iter().flatten() {
            if data.key_tag != tag {
                return refuse(
                    Rule::KeyTagMismatch,
                    format!("key tag {} (the key's is {tag})", data.key_tag),
                );
            }
        }
        let inception = relative_to_now(data.inception, now);
        let expiration = relative_to_now(data.expiration, now);
        if expiration <= inception {
            return refuse(
                Rule::InceptionAfterExpiration,
                format!(
                    "expiration {} is not after inception {}",
                    data.expiration, data.inception
                ),
            );
        }
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if -inception > secs(self.max_inception_age) {
            return refuse(
                Rule::InceptionTooOld,
                format!(
                    "inception {} s ago, at most {} s allowed",
                    -inception,
                    self.max_inception_age.as_secs()
                ),
            );
        }
        if expiration > secs(self.max_expiration_ahead) {
            return refuse(
                Rule::ExpirationTooFar,
                format!(
                    "expiration in {expiration} s, at most {} s allowed",
                    self.max_expiration_ahead.as_secs()
                ),
            );
        }
        if expiration - inception > secs(self.max_validity) {
            return refuse(
                Rule::ValidityTooLong,
                format!(
                    "valid for {} s, at most {} s allowed",
                    expiration - inception,
                    self.max_validity.as_secs()
                ),
            );
        }
        Ok(())
    }
}

/// What one key (or the default) may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Allowed mechanisms, by their wire names ([`crate::transport::wire::Mechanism::name`]).
    pub mechanisms: Vec<String>,
    /// Most signatures per minute with this key (none: no limit).
    pub rate_per_minute: Option<u32>,
    /// What an RRSIG made with this key may be.
    pub dnssec: Option<DnssecPolicy>,
}

/// A `[[key]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    /// Key id or unique prefix (at least 8 hex digits).
    key: String,
    #[serde(flatten)]
    policy: KeyPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    default: Option<KeyPolicy>,
    #[serde(default, rename = "key")]
    keys: Vec<KeyEntry>,
}

/// A policy file that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (the message names line and column).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range (the message names the entry).
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What and where.
        detail: String,
    },
}

/// The mechanism names a policy may list.
///
/// Digest forms (the node cannot see what it signs): `rsa-pkcs1v15`, `rsa-pkcs1v15-digestinfo`, `rsa-pss`,
/// `ecdsa`. Data forms (the node hashes the data itself, [`crate::transport::wire::DataMechanism`]): `rsa-pkcs1v15-data`,
/// `rsa-pss-data`, `ecdsa-data`, `ed25519` (Ed25519 always signs the data) and `dnssec-rrsig` (RRSIG data, checked
/// against `[key.dnssec]`). A key whose list holds only data forms never signs a bare digest.
pub const MECHANISMS: [&str; 9] = [
    "rsa-pkcs1v15",
    "rsa-pkcs1v15-digestinfo",
    "rsa-pss",
    "ecdsa",
    "rsa-pkcs1v15-data",
    "rsa-pss-data",
    "ecdsa-data",
    "ed25519",
    "dnssec-rrsig",
];

/// A node's signing policy, with its rate-limit state.
#[derive(Debug)]
pub struct Policy {
    path: PathBuf,
    default: Option<KeyPolicy>,
    keys: Vec<(String, KeyPolicy)>,
    /// Signatures per key in the current minute: (minute, count).
    rates: Mutex<HashMap<KeyId, (u64, u32)>>,
}

fn validate(path: &Path, what: &str, p: &mut KeyPolicy) -> Result<(), PolicyError> {
    let invalid = |detail: String| PolicyError::Invalid {
        path: path.to_path_buf(),
        detail: format!("{what}: {detail}"),
    };
    if let Some(m) = p.mechanisms.iter().find(|m| !MECHANISMS.contains(&m.as_str())) {
        return Err(invalid(format!(
            "unknown mechanism {m:?} (known: {})",
            MECHANISMS.join(", ")
        )));
    }
    if p.rate_per_minute == Some(0) {
        return Err(invalid(
            "rate_per_minute = 0 refuses everything; remove the key instead".into(),
        ));
    }
    if let Some(d) = &mut p.dnssec {
        if d.zones.is_empty() {
            return Err(invalid("dnssec.zones is empty".into()));
        }
        d.apexes = d
            .zones
            .iter()
            .map(|z| Name::parse_apex(z))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("dnssec.zones: {e}")))?;
        if !matches!(d.algorithm, 8 | 10 | 13 | 15) {
            return Err(invalid(format!(
                "dnssec.algorithm {} (8, 10, 13 or 15)",
                d.algorithm
            )));
        }
    }
    Ok(())
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text, path)
    }

    /// Parses and checks policy text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let parsed: PolicyToml = toml::from_str(text).map_err(|source| PolicyError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let mut default = parsed.default;
        if let Some(d) = &mut default {
            validate(path, "[default]", d)?;
        }
        let mut keys = Vec::new();
        for (i, mut entry) in parsed.keys.into_iter().enumerate() {
            let what = format!("[[key]] #{} ({:?})", i + 1, entry.key);
            let id = entry.key.to_ascii_lowercase();
            if id.len() < 8 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PolicyError::Invalid {
                    path: path.to_path_buf(),
                    detail: format!("{what}: key must be a key id or a prefix of at least 8 hex digits"),
                });
            }
            if let Some((other, _)) = keys
                .iter()
                .find(|(k, _): &&(String, KeyPolicy)| k.starts_with(&id) || id.starts_with(k.as_str()))
            {
                return Err(PolicyError::Invalid {
                    path: path.to_path_buf(),
                    detail: format!("{what}: overlaps the entry for {other:?}"),
                });
            }
            validate(path, &what, &mut entry.policy)?;
            keys.push((id, entry.policy));
        }
        Ok(Policy {
            path: path.to_path_buf(),
            default,
            keys,
            rates: Mutex::new(HashMap::new()),
        })
    }

    /// The file the policy came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy of `key`: its own entry, else the default.
    pub fn for_key(&self, key: &KeyId) -> Option<&KeyPolicy> {
        let id = key.to_string();
        self.keys
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix.as_str()))
            .map(|(_, p)| p)
            .or(self.default.as_ref())
    }

    /// Checks a request to sign with `key` using mechanism `mechanism` (its wire name) and, for `dnssec-rrsig`,
    /// the signature data; counts it against the key's rate limit when it passes. `derived_key_tag` gives the key
    /// tag of the node's own key given the policy's role and algorithm (see [`DnssecPolicy`]), or a refusal when
    /// the key cannot be of that algorithm; `now` is the node's Unix time in seconds.
    pub fn check(
        &self,
        key: &KeyId,
        mechanism: &str,
        data: Option<&[u8]>,
        derived_key_tag: impl FnOnce(&DnssecPolicy) -> Result<Option<u16>, Refused>,
        now: u64,
    ) -> Result<(), Refused> {
        let Some(p) = self.for_key(key) else {
            return refuse(
                Rule::NoPolicyForKey,
                format!(
                    "key {key} has no entry in {} and there is no [default]",
                    self.path.display()
                ),
            );
        };
        if !p.mechanisms.iter().any(|m| m == mechanism) {
            return refuse(
                Rule::MechanismNotAllowed,
                format!("{mechanism} (allowed for this key: {})", p.mechanisms.join(", ")),
            );
        }
        if mechanism == "dnssec-rrsig" {
            let Some(data) = data else {
                return refuse(Rule::MalformedData, "no RRSIG data");
            };
            let parsed = RrsigData::parse(data)?;
            let Some(dnssec) = &p.dnssec else {
                return refuse(
                    Rule::MechanismNotAllowed,
                    "dnssec-rrsig for a key whose policy has no [key.dnssec] section",
                );
            };
            dnssec.check(&parsed, derived_key_tag(dnssec)?, now)?;
        }
        if let Some(limit) = p.rate_per_minute {
            let minute = now / 60;
            let mut rates = self
                .rates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = rates.entry(*key).or_insert((minute, 0));
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            if slot.1 >= limit {
                return refuse(
                    Rule::RateLimited,
                    format!("{limit} signatures per minute reached"),
                );
            }
            slot.1 += 1;
        }
        Ok(())
    }

    /// One line per entry, for `tcrypto-node status`.
    pub fn summary(&self) -> Vec<String> {
        let describe = |p: &KeyPolicy| {
            let mut s = format!("mechanisms {}", p.mechanisms.join(","));
            if let Some(r) = p.rate_per_minute {
                s.push_str(&format!(", at most {r}/min"));
            }
            if let Some(d) = &p.dnssec {
                s.push_str(&format!(
                    ", {:?} of {} with algorithm {}, validity <= {}, inception >= now - {}, expiration <= now + {}",
                    d.role,
                    d.zones.join(" "),
                    d.algorithm,
                    humantime::format_duration(d.max_validity),
                    humantime::format_duration(d.max_inception_age),
                    humantime::format_duration(d.max_expiration_ahead),
                ));
            }
            s
        };
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(|(k, p)| format!("key {k}: {}", describe(p)))
            .collect();
        match &self.default {
            Some(d) => out.push(format!("other keys: {}", describe(d))),
            None => out.push("other keys: refused".to_string()),
        }
        out
    }
}

/// The public key field of a DNSKEY record for `public` as DNSSEC algorithm `algorithm` (RSA: RFC 3110, for 5, 7,
/// 8 and 10; P-256: `x || y`, RFC 6605; Ed25519: the 32-byte key, RFC 8080).
pub fn dnskey_public_key(public: &crate::algo::PublicKey, algorithm: u8) -> Result<Vec<u8>, String> {
    use crate::algo::PublicKey;
    match (public, algorithm) {
        (PublicKey::Rsa(pk), 5 | 7 | 8 | 10) => {
            let e = pk.public_exponent().to_be_bytes();
            let e = &e[e.iter().position(|&b| b != 0).unwrap_or(e.len() - 1)..];
            let mut out = vec![u8::try_from(e.len()).unwrap_or(8)];
            out.extend_from_slice(e);
            out.extend_from_slice(&pk.modulus_bytes());
            Ok(out)
        }
        (PublicKey::Ecdsa(pk), 13) => Ok(pk.verifying.to_sec1_point(false).as_bytes()[1..].to_vec()),
        (PublicKey::Ed25519(pk), 15) => Ok(pk.public_key_bytes().to_vec()),
        (p, a) => Err(format!(
            "a {} key cannot be DNSSEC algorithm {a}",
            p.algorithm().name()
        )),
    }
}

/// The key tag of a DNSKEY (RFC 4034 Appendix B) with these flags, protocol 3, algorithm and public key field.
pub fn key_tag(flags: u16, algorithm: u8, public_key: &[u8]) -> u16 {
    let mut rdata = Vec::with_capacity(4 + public_key.len());
    rdata.extend_from_slice(&flags.to_be_bytes());
    rdata.push(3);
    rdata.push(algorithm);
    rdata.extend_from_slice(public_key);
    key_tag_of_rdata(&rdata)
}

/// The key tag of a DNSKEY's wire RDATA (RFC 4034 Appendix B).
pub fn key_tag_of_rdata(rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        acc += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    acc += (acc >> 16) & 0xffff;
    // Truncation intended: the tag is the low 16 bits.
    #[allow(clippy::cast_possible_truncation)]
    let tag = (acc & 0xffff) as u16;
    tag
}

#[cfg(test)]
mod tests;
