//! ZONEMD, the message digest of a zone (RFC 8976): the SIMPLE scheme with SHA-384 and
//! SHA-512, computed and verified.
//!
//! The digest covers every record at or below the apex in canonical order (owner, type,
//! RDATA), each once, including glue and occluded data, excluding the apex ZONEMD RRset and
//! the apex RRSIGs covering ZONEMD (RFC 8976 §3.3.1).

use sha2::{Digest, Sha384, Sha512};

use crate::error::{SignError, ZoneError};
use crate::name::Name;
use crate::rdata::{Zonemd, rrsig_type_covered, rtype};
use crate::zone::{Record, Zone, soa_serial_minimum};

/// ZONEMD hash algorithms (RFC 8976 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZonemdHash {
    /// 1: SHA-384.
    Sha384,
    /// 2: SHA-512.
    Sha512,
}

impl ZonemdHash {
    /// IANA number.
    pub fn number(self) -> u8 {
        match self {
            Self::Sha384 => 1,
            Self::Sha512 => 2,
        }
    }
    /// Digest length.
    pub fn len(self) -> usize {
        match self {
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
    /// Always false (digests are never empty); for clippy's `len_without_is_empty`.
    pub fn is_empty(self) -> bool {
        false
    }
    /// From the IANA number.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(Self::Sha384),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }
}

fn excluded(r: &Record, apex: &Name) -> bool {
    r.owner == *apex
        && (r.rtype == rtype::ZONEMD
            || (r.rtype == rtype::RRSIG && rrsig_type_covered(&r.rdata) == Some(rtype::ZONEMD)))
}

/// Computes the SIMPLE-scheme digest of `records` (any order; duplicates counted once) for the
/// zone at `apex`. Out-of-zone records are not digested.
pub fn digest(records: &[Record], apex: &Name, hash: ZonemdHash) -> Vec<u8> {
    let mut refs: Vec<&Record> = records
        .iter()
        .filter(|r| r.owner.is_subdomain_of(apex) && !excluded(r, apex))
        .collect();
    refs.sort_unstable_by(|a, b| a.canonical_cmp(b));
    refs.dedup_by(|a, b| {
        a.owner == b.owner && a.rtype == b.rtype && a.class == b.class && a.rdata == b.rdata
    });
    let mut buf = Vec::with_capacity(512);
    match hash {
        ZonemdHash::Sha384 => {
            let mut h = Sha384::new();
            for r in refs {
                buf.clear();
                r.write_canonical(r.ttl, &mut buf);
                h.update(&buf);
            }
            h.finalize().to_vec()
        }
        ZonemdHash::Sha512 => {
            let mut h = Sha512::new();
            for r in refs {
                buf.clear();
                r.write_canonical(r.ttl, &mut buf);
                h.update(&buf);
            }
            h.finalize().to_vec()
        }
    }
}

/// Replaces the digest of every apex ZONEMD placeholder with the zone's digest.
pub fn fill_placeholders(zone: &mut Zone) -> Result<(), SignError> {
    let apex = zone.origin.clone();
    let mut wanted = Vec::new();
    for r in zone
        .records
        .iter()
        .filter(|r| r.owner == apex && r.rtype == rtype::ZONEMD)
    {
        let z = Zonemd::from_wire(&r.rdata)?;
        let h = ZonemdHash::from_number(z.hash_algorithm).ok_or_else(|| {
            SignError::Options(format!("ZONEMD hash algorithm {} unsupported", z.hash_algorithm))
        })?;
        wanted.push(h);
    }
    let digests: Vec<(ZonemdHash, Vec<u8>)> = wanted
        .into_iter()
        .map(|h| (h, digest(&zone.records, &apex, h)))
        .collect();
    for r in zone
        .records
        .iter_mut()
        .filter(|r| r.owner == apex && r.rtype == rtype::ZONEMD)
    {
        let mut z = Zonemd::from_wire(&r.rdata)?;
        if let Some((_, d)) = digests.iter().find(|(h, _)| h.number() == z.hash_algorithm) {
            z.digest = d.clone();
            r.rdata = z.to_wire().into_boxed_slice();
        }
    }
    Ok(())
}

/// Outcome of checking a zone's ZONEMD records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZonemdStatus {
    /// At least one supported SIMPLE digest matched (RFC 8976 §4).
    Valid,
    /// No ZONEMD at the apex.
    Absent,
    /// Present but nothing verifiable, or a digest that does not match; with the reason.
    Invalid(String),
}

/// Verifies the apex ZONEMD RRset (RFC 8976 §4): serial equal to the SOA's, no duplicate
/// scheme/algorithm pairs, and a supported SIMPLE digest that matches.
pub fn verify(zone: &Zone) -> Result<ZonemdStatus, ZoneError> {
    let apex = &zone.origin;
    let zms: Vec<Zonemd> = zone
        .records
        .iter()
        .filter(|r| r.owner == *apex && r.rtype == rtype::ZONEMD)
        .map(|r| Zonemd::from_wire(&r.rdata))
        .collect::<Result<_, _>>()?;
    if zms.is_empty() {
        return Ok(ZonemdStatus::Absent);
    }
    let soa = zone
        .soa()
        .ok_or_else(|| ZoneError::Structure("no SOA at the apex".into()))?;
    let (serial, _) =
        soa_serial_minimum(&soa.rdata).ok_or_else(|| ZoneError::Structure("malformed SOA".into()))?;
    for (i, a) in zms.iter().enumerate() {
        if zms[i + 1..]
            .iter()
            .any(|b| b.scheme == a.scheme && b.hash_algorithm == a.hash_algorithm)
        {
            return Ok(ZonemdStatus::Invalid(format!(
                "two ZONEMD records with scheme {} and hash {}",
                a.scheme, a.hash_algorithm
            )));
        }
    }
    let mut reasons = Vec::new();
    for z in &zms {
        if z.scheme != 1 {
            reasons.push(format!("scheme {} unsupported", z.scheme));
            continue;
        }
        let Some(h) = ZonemdHash::from_number(z.hash_algorithm) else {
            reasons.push(format!("hash algorithm {} unsupported", z.hash_algorithm));
            continue;
        };
        if z.serial != serial {
            reasons.push(format!(
                "ZONEMD serial {} differs from SOA serial {serial}",
                z.serial
            ));
            continue;
        }
        if digest(&zone.records, apex, h) == z.digest {
            return Ok(ZonemdStatus::Valid);
        }
        reasons.push(format!("hash {} digest does not match", z.hash_algorithm));
    }
    Ok(ZonemdStatus::Invalid(reasons.join("; ")))
}
