//! Authenticated denial of existence: NSEC chains (RFC 4034 §4, RFC 4035 §2.3) and NSEC3
//! chains (RFC 5155 §7.1) with opt-out, empty non-terminals and the TTL of RFC 9077.

use std::collections::HashSet;

use data_encoding::BASE32_DNSSEC;
use sha1::{Digest, Sha1};

use crate::error::SignError;
use crate::name::Name;
use crate::rdata::{Nsec3, Nsec3Param, encode_bitmap, rtype};
use crate::sign::{Node, NodeKind};
use crate::zone::{Record, Zone};

/// Which denial-of-existence chain to build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// NSEC (RFC 4034).
    Nsec,
    /// NSEC3 (RFC 5155).
    Nsec3 {
        /// Hash algorithm (1), additional iterations and salt. `flags` is ignored here.
        params: Nsec3Param,
        /// Opt-out: insecure delegations (and ENTs leading only to them) get no NSEC3.
        opt_out: bool,
    },
}

impl Denial {
    /// NSEC3 as RFC 9276 §3.1 recommends: SHA-1, 0 additional iterations, empty salt, no
    /// opt-out.
    pub fn nsec3_rfc9276() -> Self {
        Self::Nsec3 {
            params: Nsec3Param {
                hash_algorithm: 1,
                flags: 0,
                iterations: 0,
                salt: Vec::new(),
            },
            opt_out: false,
        }
    }
}

/// The NSEC3 hash of a name (RFC 5155 §5): `IH(salt, x, k)`, SHA-1.
pub fn nsec3_hash(name: &Name, salt: &[u8], iterations: u16) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(name.wire());
    h.update(salt);
    let mut d: [u8; 20] = h.finalize().into();
    for _ in 0..iterations {
        let mut h = Sha1::new();
        h.update(d);
        h.update(salt);
        d = h.finalize().into();
    }
    d
}

/// The owner name of the NSEC3 record for `hash` in zone `apex`.
pub fn nsec3_owner(hash: &[u8], apex: &Name) -> Result<Name, SignError> {
    Ok(apex.prepend(BASE32_DNSSEC.encode(hash).as_bytes())?)
}

/// Types at a node as they appear in its NSEC/NSEC3 bitmap, without RRSIG/NSEC.
fn node_types(zone: &Zone, node: &Node) -> Vec<u16> {
    let mut types: Vec<u16> = zone.records[node.start..node.end]
        .iter()
        .map(|r| r.rtype)
        .filter(|t| match node.kind {
            NodeKind::Delegation { .. } => *t == rtype::NS || *t == rtype::DS,
            _ => !matches!(*t, rtype::RRSIG | rtype::NSEC | rtype::NSEC3),
        })
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// Builds the NSEC or NSEC3 records for a classified zone (stage 3).
pub fn build_chain(zone: &Zone, nodes: &[Node], denial: &Denial, ttl: u32) -> Result<Vec<Record>, SignError> {
    match denial {
        Denial::Nsec => Ok(build_nsec(zone, nodes, ttl)),
        Denial::Nsec3 { params, opt_out } => build_nsec3(zone, nodes, params, *opt_out, ttl),
    }
}

fn build_nsec(zone: &Zone, nodes: &[Node], ttl: u32) -> Vec<Record> {
    let chain: Vec<&Node> = nodes.iter().filter(|n| n.kind != NodeKind::Occluded).collect();
    let mut out = Vec::with_capacity(chain.len());
    for (i, node) in chain.iter().enumerate() {
        let next = &chain[(i + 1) % chain.len()].name;
        let mut types = node_types(zone, node);
        types.push(rtype::RRSIG);
        types.push(rtype::NSEC);
        types.sort_unstable();
        types.dedup();
        let mut rdata = next.wire().to_vec();
        rdata.extend(encode_bitmap(&types));
        out.push(Record {
            owner: node.name.clone(),
            rtype: rtype::NSEC,
            class: 1,
            ttl,
            rdata: rdata.into_boxed_slice(),
        });
    }
    out
}

/// The names an NSEC3 chain covers, with their bitmaps: authoritative names, delegations
/// (secure ones always, insecure ones unless opt-out) and the empty non-terminals above them.
pub fn nsec3_names(zone: &Zone, nodes: &[Node], opt_out: bool) -> Vec<(Name, Vec<u16>)> {
    let mut out: Vec<(Name, Vec<u16>)> = Vec::new();
    let existing: HashSet<&Name> = nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Occluded)
        .map(|n| &n.name)
        .collect();
    let mut ents: HashSet<Name> = HashSet::new();
    for node in nodes {
        let mut types = node_types(zone, node);
        match node.kind {
            NodeKind::Occluded => continue,
            NodeKind::Delegation { has_ds: false } if opt_out => continue,
            NodeKind::Delegation { has_ds: false } => {}
            NodeKind::Delegation { has_ds: true } | NodeKind::Apex | NodeKind::Authoritative => {
                types.push(rtype::RRSIG);
                types.sort_unstable();
            }
        }
        // empty non-terminals between this name and the apex
        let mut p = node.name.parent();
        while let Some(parent) = p {
            if parent == zone.origin || !parent.is_strict_subdomain_of(&zone.origin) {
                break;
            }
            if existing.contains(&parent) || ents.contains(&parent) {
                break;
            }
            ents.insert(parent.clone());
            p = parent.parent();
        }
        out.push((node.name.clone(), types));
    }
    out.extend(ents.into_iter().map(|n| (n, Vec::new())));
    out
}

fn build_nsec3(
    zone: &Zone,
    nodes: &[Node],
    params: &Nsec3Param,
    opt_out: bool,
    ttl: u32,
) -> Result<Vec<Record>, SignError> {
    if params.hash_algorithm != 1 {
        return Err(SignError::Options(format!(
            "NSEC3 hash algorithm {} (only 1, SHA-1, is defined)",
            params.hash_algorithm
        )));
    }
    let names = nsec3_names(zone, nodes, opt_out);
    let mut hashed: Vec<([u8; 20], Vec<u16>, &Name)> = names
        .iter()
        .map(|(n, t)| (nsec3_hash(n, &params.salt, params.iterations), t.clone(), n))
        .collect();
    hashed.sort_unstable_by_key(|a| a.0);
    for w in hashed.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(SignError::Options(format!(
                "NSEC3 hash collision between {} and {}; choose another salt",
                w[0].2, w[1].2
            )));
        }
    }
    let flags = u8::from(opt_out);
    let mut out = Vec::with_capacity(hashed.len());
    for (i, (h, types, _)) in hashed.iter().enumerate() {
        let next = hashed[(i + 1) % hashed.len()].0;
        let rd = Nsec3 {
            params: Nsec3Param {
                flags,
                ..params.clone()
            },
            next_hashed: next.to_vec(),
            types: types.clone(),
        };
        out.push(Record {
            owner: nsec3_owner(h, &zone.origin)?,
            rtype: rtype::NSEC3,
            class: 1,
            ttl,
            rdata: rd.to_wire().into_boxed_slice(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsec3_hash_matches_rfc5155_appendix_a() {
        // RFC 5155 appendix A: salt aabbccdd, 12 iterations
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let h = nsec3_hash(&Name::parse("example.", None).unwrap(), &salt, 12);
        assert_eq!(BASE32_DNSSEC.encode(&h), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
        let h = nsec3_hash(&Name::parse("a.example.", None).unwrap(), &salt, 12);
        assert_eq!(BASE32_DNSSEC.encode(&h), "35mthgpgcu1qg68fab165klnsnk3dpvl");
    }
}
