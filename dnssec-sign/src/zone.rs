//! Records and zones in canonical form (RFC 4034 §6): the data every pipeline stage works on.

use std::cmp::Ordering;

use crate::name::{Name, canonical_cmp};
use crate::rdata::{rrsig_type_covered, rtype};

/// One resource record, owner and data in canonical (lowercased, uncompressed) wire form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// Owner name.
    pub owner: Name,
    /// Type.
    pub rtype: u16,
    /// Class (1 = IN).
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// Record data in canonical wire form.
    pub rdata: Box<[u8]>,
}

impl Record {
    /// The type this record is sorted with: RRSIGs sit next to the RRset they cover.
    fn sort_type(&self) -> (u16, bool) {
        if self.rtype == rtype::RRSIG {
            (rrsig_type_covered(&self.rdata).unwrap_or(0), true)
        } else {
            (self.rtype, false)
        }
    }

    /// Output order: owner (canonical), then type (an RRSIG right after the RRset it covers),
    /// then RDATA (RFC 4034 §6.3).
    pub fn output_cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(self.owner.wire(), other.owner.wire())
            .then_with(|| self.sort_type().cmp(&other.sort_type()))
            .then_with(|| self.rdata.cmp(&other.rdata))
    }

    /// Canonical order of RFC 4034 §6 / RFC 8976 §3.3.1: owner, numeric type, RDATA.
    pub fn canonical_cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(self.owner.wire(), other.owner.wire())
            .then_with(|| self.rtype.cmp(&other.rtype))
            .then_with(|| self.rdata.cmp(&other.rdata))
    }

    /// Appends the canonical wire form of the whole RR with the given TTL (RFC 4034 §6.2).
    pub fn write_canonical(&self, ttl: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(self.owner.wire());
        out.extend_from_slice(&self.rtype.to_be_bytes());
        out.extend_from_slice(&self.class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.rdata);
    }
}

/// A zone: its apex and its records.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The apex.
    pub origin: Name,
    /// Records, in output order once [`Zone::canonicalize`] ran.
    pub records: Vec<Record>,
    /// Where the records were read (empty for a zone built in memory).
    pub sources: crate::zonefile::Sources,
}

impl Zone {
    /// A zone built in memory (no source file).
    pub fn new(origin: Name, records: Vec<Record>) -> Self {
        Self {
            origin,
            records,
            sources: Default::default(),
        }
    }
}

/// What [`Zone::canonicalize`] dropped or fixed, for the logs and the caller.
#[derive(Debug, Default, Clone)]
pub struct CanonicalizeReport {
    /// Out-of-zone records removed (owner not at or below the apex): owner and type.
    pub out_of_zone: Vec<(Name, u16)>,
    /// Exact duplicates removed.
    pub duplicates: usize,
    /// RRsets whose TTLs disagreed; all set to the lowest (RFC 2181 §5.2).
    pub ttl_fixed: Vec<(Name, u16)>,
}

impl Zone {
    /// Canonicalization stage: drop out-of-zone data, sort into output order, remove exact
    /// duplicates and give every RRset one TTL.
    pub fn canonicalize(&mut self) -> CanonicalizeReport {
        let mut report = self.sort_keeping_ttls();
        report.ttl_fixed = self.unify_ttls();
        report
    }

    /// Drops out-of-zone data, sorts into output order and removes exact duplicates, but leaves
    /// the TTLs as they are (the verifier digests and checks the zone as written).
    pub fn sort_keeping_ttls(&mut self) -> CanonicalizeReport {
        let mut report = CanonicalizeReport::default();
        let origin = self.origin.clone();
        self.records.retain(|r| {
            let keep = r.owner.is_subdomain_of(&origin);
            if !keep {
                report.out_of_zone.push((r.owner.clone(), r.rtype));
            }
            keep
        });
        self.records.sort_unstable_by(Record::output_cmp);
        let before = self.records.len();
        self.records.dedup_by(|a, b| {
            a.owner == b.owner && a.rtype == b.rtype && a.class == b.class && a.rdata == b.rdata
        });
        report.duplicates = before - self.records.len();
        report
    }

    /// RRsets (records sorted) whose TTLs differ: (owner, type, lowest, highest).
    pub fn ttl_mismatches(&self) -> Vec<(Name, u16, u32, u32)> {
        let mut out = Vec::new();
        for (i, j) in self.rrset_ranges() {
            let set = &self.records[i..j];
            let min = set.iter().map(|r| r.ttl).min().unwrap_or(0);
            let max = set.iter().map(|r| r.ttl).max().unwrap_or(0);
            if min != max && set[0].rtype != rtype::RRSIG {
                out.push((set[0].owner.clone(), set[0].rtype, min, max));
            }
        }
        out
    }

    fn rrset_ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.records.len() {
            let mut j = i + 1;
            while j < self.records.len()
                && self.records[j].owner == self.records[i].owner
                && self.records[j].rtype == self.records[i].rtype
                && self.records[j].sort_type() == self.records[i].sort_type()
            {
                j += 1;
            }
            out.push((i, j));
            i = j;
        }
        out
    }

    /// Gives every RRset (records sorted) one TTL, the lowest (RFC 2181 §5.2); returns the
    /// RRsets changed.
    fn unify_ttls(&mut self) -> Vec<(Name, u16)> {
        let mut fixed = Vec::new();
        // RRSIGs are per covered type and keep their own TTLs
        for (i, j) in self.rrset_ranges() {
            let set = &mut self.records[i..j];
            if set[0].rtype == rtype::RRSIG {
                continue;
            }
            let min = set.iter().map(|r| r.ttl).min().unwrap_or(0);
            if set.iter().any(|r| r.ttl != min) {
                fixed.push((set[0].owner.clone(), set[0].rtype));
                for r in set.iter_mut() {
                    r.ttl = min;
                }
            }
        }
        fixed
    }

    /// The apex SOA record, if there is exactly one.
    pub fn soa(&self) -> Option<&Record> {
        let mut it = self
            .records
            .iter()
            .filter(|r| r.rtype == rtype::SOA && r.owner == self.origin);
        let first = it.next()?;
        if it.next().is_some() { None } else { Some(first) }
    }
}

/// Reads the SOA fields (serial, minimum) from SOA wire rdata.
pub fn soa_serial_minimum(rdata: &[u8]) -> Option<(u32, u32)> {
    let (_, u1) = Name::read_wire(rdata).ok()?;
    let (_, u2) = Name::read_wire(rdata.get(u1..)?).ok()?;
    let f = rdata.get(u1 + u2..)?;
    if f.len() != 20 {
        return None;
    }
    let serial = u32::from_be_bytes(f[0..4].try_into().ok()?);
    let minimum = u32::from_be_bytes(f[16..20].try_into().ok()?);
    Some((serial, minimum))
}

/// Returns SOA wire rdata with its serial replaced.
pub fn soa_with_serial(rdata: &[u8], serial: u32) -> Option<Box<[u8]>> {
    let (_, u1) = Name::read_wire(rdata).ok()?;
    let (_, u2) = Name::read_wire(rdata.get(u1..)?).ok()?;
    let at = u1 + u2;
    if rdata.len() != at + 20 {
        return None;
    }
    let mut v = rdata.to_vec();
    v[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    Some(v.into_boxed_slice())
}
