//! Our own verifier of signed zones: every RRSIG against the apex DNSKEYs (RFC 4035 §5.3),
//! every authoritative RRset signed by every algorithm (RFC 4035 §2.2), the NSEC chain
//! (RFC 4034 §4) or NSEC3 chain (RFC 5155 §7–8) complete, in order and with the right bitmaps,
//! and the ZONEMD digest (RFC 8976 §4). Each problem is reported with its owner name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use rayon::prelude::*;

use crate::denial::{nsec3_hash, nsec3_names};
use crate::error::ZoneError;
use crate::keys::verify_signature;
use crate::name::Name;
use crate::rdata::{Dnskey, Nsec3, Nsec3Param, Rrsig, decode_bitmap, rrsig_type_covered, rtype, type_name};
use crate::sign::{Node, NodeKind, classify, signed_data, signing_jobs};
use crate::zone::{Record, Zone};
use crate::zonemd::{self, ZonemdStatus};

/// One problem found, at one owner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub owner: Name,
    /// What.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.owner, self.message)
    }
}

/// Verifier options.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Check RRSIG validity periods at this time (seconds since the epoch); `None` skips it.
    pub now: Option<u64>,
    /// Require a valid ZONEMD.
    pub require_zonemd: bool,
}

/// Verifies a signed zone; an empty result means it is valid.
pub fn verify_zone(zone: &Zone, opts: &VerifyOptions) -> Result<Vec<Problem>, ZoneError> {
    // sorted and deduplicated, but with the TTLs as written: validators and the ZONEMD digest
    // see those, not a normalised copy
    let mut zone = zone.clone();
    zone.sort_keeping_ttls();
    let apex = zone.origin.clone();
    let mut problems = Vec::new();
    for (owner, t, min, max) in zone.ttl_mismatches() {
        problems.push(Problem {
            owner,
            message: format!(
                "{} RRset has differing TTLs ({min} to {max}; RFC 2181 §5.2)",
                type_name(t)
            ),
        });
    }
    for v in crate::rules::check(&zone) {
        problems.push(Problem {
            owner: v.owner,
            message: format!("{}{}", v.location, v.rule),
        });
    }
    if zone.soa().is_none() {
        problems.push(Problem {
            owner: apex.clone(),
            message: "no single SOA at the apex".into(),
        });
        return Ok(problems);
    }
    let keys: Vec<Dnskey> = zone
        .records
        .iter()
        .filter(|r| r.owner == apex && r.rtype == rtype::DNSKEY)
        .map(|r| Dnskey::from_wire(&r.rdata))
        .collect::<Result<_, _>>()?;
    let keys: Vec<Dnskey> = keys
        .into_iter()
        .filter(|k| k.flags & 0x0100 != 0 && k.protocol == 3)
        .collect();
    if keys.is_empty() {
        problems.push(Problem {
            owner: apex.clone(),
            message: "no zone DNSKEY at the apex".into(),
        });
    }
    problems.extend(check_signatures(&zone, &keys, opts));
    problems.extend(check_denial(&zone));
    match zonemd::verify(&zone)? {
        ZonemdStatus::Valid => {}
        ZonemdStatus::Absent if !opts.require_zonemd => {}
        ZonemdStatus::Absent => problems.push(Problem {
            owner: apex.clone(),
            message: "no ZONEMD".into(),
        }),
        ZonemdStatus::Invalid(why) => problems.push(Problem {
            owner: apex.clone(),
            message: format!("ZONEMD invalid: {why}"),
        }),
    }
    Ok(problems)
}

fn in_window(now: u64, inception: u32, expiration: u32) -> bool {
    let now = now as u32;
    let after_inc = now.wrapping_sub(inception) < 0x8000_0000;
    let before_exp = expiration.wrapping_sub(now) < 0x8000_0000;
    after_inc && before_exp
}

fn check_signatures(zone: &Zone, keys: &[Dnskey], opts: &VerifyOptions) -> Vec<Problem> {
    let apex = &zone.origin;
    let recs = &zone.records;
    // RRSIGs by (owner index range, covered type)
    let mut sigs: HashMap<(&Name, u16), Vec<&Record>> = HashMap::new();
    for r in recs.iter().filter(|r| r.rtype == rtype::RRSIG) {
        let t = rrsig_type_covered(&r.rdata).unwrap_or(0);
        sigs.entry((&r.owner, t)).or_default().push(r);
    }
    let jobs = signing_jobs(recs, apex);
    let algorithms: BTreeSet<u8> = keys.iter().map(|k| k.algorithm).collect();
    let mut covered: HashMap<(&Name, u16), ()> = HashMap::new();
    for j in &jobs {
        covered.insert((&recs[j.start].owner, recs[j.start].rtype), ());
    }
    let mut problems: Vec<Problem> = jobs
        .par_iter()
        .flat_map_iter(|job| {
            let rrset = &recs[job.start..job.end];
            let first = &rrset[0];
            let mut out = Vec::new();
            let tn = type_name(first.rtype);
            let Some(list) = sigs.get(&(&first.owner, first.rtype)) else {
                out.push(Problem {
                    owner: first.owner.clone(),
                    message: format!("missing RRSIG for {tn}"),
                });
                return out;
            };
            let mut good_algs = BTreeSet::new();
            for s in list {
                let rrsig = match Rrsig::from_wire(&s.rdata) {
                    Ok(r) => r,
                    Err(e) => {
                        out.push(Problem {
                            owner: first.owner.clone(),
                            message: format!("malformed RRSIG {tn}: {e}"),
                        });
                        continue;
                    }
                };
                let fail = |m: String| Problem {
                    owner: first.owner.clone(),
                    message: format!("RRSIG {tn} key {} alg {}: {m}", rrsig.key_tag, rrsig.algorithm),
                };
                if rrsig.signer != *apex {
                    out.push(fail(format!("signer {} is not the apex", rrsig.signer)));
                    continue;
                }
                if rrsig.labels != first.owner.rrsig_labels() {
                    out.push(fail(format!(
                        "labels {} but owner has {}",
                        rrsig.labels,
                        first.owner.rrsig_labels()
                    )));
                    continue;
                }
                if let Some(r) = rrset.iter().find(|r| r.ttl != rrsig.original_ttl) {
                    out.push(fail(format!(
                        "RRset TTL {} differs from the Original TTL {} (RFC 4035 §5.3.3)",
                        r.ttl, rrsig.original_ttl
                    )));
                    continue;
                }
                if let Some(now) = opts.now
                    && !in_window(now, rrsig.inception, rrsig.expiration)
                {
                    out.push(fail("outside its validity period".into()));
                    continue;
                }
                if !keys.iter().any(|k| k.algorithm == rrsig.algorithm) {
                    // an algorithm without DNSKEYs: validators skip these signatures (RFC 4035 §5.3.1); the first
                    // step of an algorithm rollover publishes them (RFC 6781 §4.1.4)
                    continue;
                }
                let msg = signed_data(&rrsig, rrset);
                let ok = keys.iter().any(|k| {
                    k.algorithm == rrsig.algorithm
                        && k.key_tag() == rrsig.key_tag
                        && verify_signature(k, &msg, &rrsig.signature)
                });
                if ok {
                    good_algs.insert(rrsig.algorithm);
                } else {
                    out.push(fail("signature does not verify with any DNSKEY".into()));
                }
            }
            for alg in &algorithms {
                if !good_algs.contains(alg) {
                    out.push(Problem {
                        owner: first.owner.clone(),
                        message: format!("{tn} has no valid RRSIG of algorithm {alg}"),
                    });
                }
            }
            out
        })
        .collect();
    // RRSIGs over data that must not be signed (glue, delegation NS, occluded names)
    for ((owner, t), list) in &sigs {
        if !covered.contains_key(&(*owner, *t)) {
            problems.push(Problem {
                owner: (*owner).clone(),
                message: format!(
                    "{} RRSIG(s) over {} which is not authoritative data",
                    list.len(),
                    type_name(*t)
                ),
            });
        }
    }
    problems
}

fn bitmap_of(r: &Record, offset: usize) -> Vec<u16> {
    r.rdata
        .get(offset..)
        .and_then(|b| decode_bitmap(b).ok())
        .unwrap_or_default()
}

fn types_text(t: &[u16]) -> String {
    t.iter().map(|t| type_name(*t)).collect::<Vec<_>>().join(" ")
}

fn check_denial(zone: &Zone) -> Vec<Problem> {
    let apex = &zone.origin;
    let has_param = zone
        .records
        .iter()
        .any(|r| r.owner == *apex && r.rtype == rtype::NSEC3PARAM);
    let has_nsec = zone.records.iter().any(|r| r.rtype == rtype::NSEC);
    if has_param {
        check_nsec3(zone)
    } else if has_nsec {
        check_nsec(zone)
    } else {
        vec![Problem {
            owner: apex.clone(),
            message: "neither NSEC nor NSEC3PARAM found".into(),
        }]
    }
}

fn check_nsec(zone: &Zone) -> Vec<Problem> {
    let mut problems = Vec::new();
    let nodes = classify(&zone.records, &zone.origin);
    let chain: Vec<&Node> = nodes.iter().filter(|n| n.kind != NodeKind::Occluded).collect();
    for (i, node) in chain.iter().enumerate() {
        let next = &chain[(i + 1) % chain.len()].name;
        let recs = &zone.records[node.start..node.end];
        let nsecs: Vec<&Record> = recs.iter().filter(|r| r.rtype == rtype::NSEC).collect();
        let Some(nsec) = nsecs.first() else {
            problems.push(Problem {
                owner: node.name.clone(),
                message: "missing NSEC".into(),
            });
            continue;
        };
        if nsecs.len() > 1 {
            problems.push(Problem {
                owner: node.name.clone(),
                message: "more than one NSEC".into(),
            });
        }
        let Ok((got_next, used)) = Name::read_wire(&nsec.rdata) else {
            problems.push(Problem {
                owner: node.name.clone(),
                message: "malformed NSEC".into(),
            });
            continue;
        };
        if got_next != *next {
            problems.push(Problem {
                owner: node.name.clone(),
                message: format!("NSEC chain broken: next is {got_next}, expected {next}"),
            });
        }
        let mut want: Vec<u16> = recs
            .iter()
            .map(|r| r.rtype)
            .filter(|t| match node.kind {
                NodeKind::Delegation { .. } => *t == rtype::NS || *t == rtype::DS,
                _ => *t != rtype::RRSIG && *t != rtype::NSEC,
            })
            .chain([rtype::RRSIG, rtype::NSEC])
            .collect();
        want.sort_unstable();
        want.dedup();
        let got = bitmap_of(nsec, used);
        if got != want {
            problems.push(Problem {
                owner: node.name.clone(),
                message: format!(
                    "NSEC bitmap [{}], expected [{}]",
                    types_text(&got),
                    types_text(&want)
                ),
            });
        }
    }
    for node in nodes.iter().filter(|n| n.kind == NodeKind::Occluded) {
        if zone.records[node.start..node.end]
            .iter()
            .any(|r| r.rtype == rtype::NSEC)
        {
            problems.push(Problem {
                owner: node.name.clone(),
                message: "NSEC at an occluded name (glue or below a cut)".into(),
            });
        }
    }
    problems
}

fn check_nsec3(zone: &Zone) -> Vec<Problem> {
    let apex = &zone.origin;
    let mut problems = Vec::new();
    let Some(param_rec) = zone
        .records
        .iter()
        .find(|r| r.owner == *apex && r.rtype == rtype::NSEC3PARAM)
    else {
        return problems;
    };
    let params = match Nsec3Param::from_wire_prefix(&param_rec.rdata) {
        Ok((p, _)) => p,
        Err(e) => {
            problems.push(Problem {
                owner: apex.clone(),
                message: format!("bad NSEC3PARAM: {e}"),
            });
            return problems;
        }
    };
    // actual NSEC3 records, keyed by the hash in their owner label
    let mut actual: BTreeMap<Vec<u8>, (Name, Nsec3)> = BTreeMap::new();
    let mut opt_out = false;
    for r in zone.records.iter().filter(|r| r.rtype == rtype::NSEC3) {
        let n3 = match Nsec3::from_wire(&r.rdata) {
            Ok(n) => n,
            Err(e) => {
                problems.push(Problem {
                    owner: r.owner.clone(),
                    message: format!("malformed NSEC3: {e}"),
                });
                continue;
            }
        };
        let label = r.owner.labels().next().unwrap_or_default();
        let hash = data_encoding::BASE32_DNSSEC.decode(label).ok();
        match (hash, r.owner.parent()) {
            (Some(h), Some(p)) if p == *apex => {
                opt_out |= n3.params.flags & 1 == 1;
                if n3.params.salt != params.salt
                    || n3.params.iterations != params.iterations
                    || n3.params.hash_algorithm != params.hash_algorithm
                {
                    problems.push(Problem {
                        owner: r.owner.clone(),
                        message: "NSEC3 parameters differ from NSEC3PARAM".into(),
                    });
                }
                actual.insert(h, (r.owner.clone(), n3));
            }
            _ => problems.push(Problem {
                owner: r.owner.clone(),
                message: "NSEC3 owner is not a hash label directly below the apex".into(),
            }),
        }
    }
    // expected names, from the zone without its NSEC3 owner names
    let owners: HashSet<&Name> = actual.values().map(|(o, _)| o).collect();
    let data: Vec<Record> = zone
        .records
        .iter()
        .filter(|r| !is_nsec3_data(r, &owners))
        .cloned()
        .collect();
    let data_zone = Zone::new(apex.clone(), data);
    let nodes = classify(&data_zone.records, apex);
    for node in nodes.iter().filter(|n| n.kind == NodeKind::Occluded) {
        if data_zone.records[node.start..node.end]
            .iter()
            .any(|r| r.rtype == rtype::NSEC)
        {
            problems.push(Problem {
                owner: node.name.clone(),
                message: "NSEC in an NSEC3 zone".into(),
            });
        }
    }
    let required = nsec3_names(&data_zone, &nodes, opt_out);
    let allowed: HashMap<Vec<u8>, (Name, Vec<u16>)> = nsec3_names(&data_zone, &nodes, false)
        .into_iter()
        .map(|(n, t)| (nsec3_hash(&n, &params.salt, params.iterations).to_vec(), (n, t)))
        .collect();
    for (name, want) in &required {
        let h = nsec3_hash(name, &params.salt, params.iterations).to_vec();
        match actual.get(&h) {
            None => problems.push(Problem {
                owner: name.clone(),
                message: "missing NSEC3".into(),
            }),
            Some((_, n3)) if n3.types != *want => problems.push(Problem {
                owner: name.clone(),
                message: format!(
                    "NSEC3 bitmap [{}], expected [{}]",
                    types_text(&n3.types),
                    types_text(want)
                ),
            }),
            Some(_) => {}
        }
    }
    for (h, (owner, n3)) in &actual {
        match allowed.get(h) {
            None => problems.push(Problem {
                owner: owner.clone(),
                message: "NSEC3 matches no name of the zone".into(),
            }),
            Some((name, want)) if n3.types != *want => {
                if !required.iter().any(|(n, _)| n == name) {
                    problems.push(Problem {
                        owner: name.clone(),
                        message: format!(
                            "NSEC3 bitmap [{}], expected [{}]",
                            types_text(&n3.types),
                            types_text(want)
                        ),
                    });
                }
            }
            Some(_) => {}
        }
    }
    // chain order: each next hash is the following owner hash, the last wraps to the first
    let hashes: Vec<&Vec<u8>> = actual.keys().collect();
    for (i, h) in hashes.iter().enumerate() {
        let want_next = hashes[(i + 1) % hashes.len()];
        if let Some((owner, n3)) = actual.get(*h)
            && n3.next_hashed != **want_next
        {
            problems.push(Problem {
                owner: owner.clone(),
                message: format!(
                    "NSEC3 chain broken: next {}, expected {}",
                    data_encoding::BASE32_DNSSEC.encode(&n3.next_hashed),
                    data_encoding::BASE32_DNSSEC.encode(want_next)
                ),
            });
        }
    }
    problems
}

/// Records owned by an NSEC3 owner name (the NSEC3 and its RRSIGs).
fn is_nsec3_data(r: &Record, owners: &HashSet<&Name>) -> bool {
    if r.rtype == rtype::NSEC3 {
        return true;
    }
    r.rtype == rtype::RRSIG && rrsig_type_covered(&r.rdata) == Some(rtype::NSEC3) && owners.contains(&r.owner)
}
