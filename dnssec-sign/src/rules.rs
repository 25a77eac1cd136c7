//! Zone content rules that validators enforce, checked before anything is signed (and by the
//! verifier after): RDATA and TTL limits (RFC 1035 §3.2.1, RFC 2181 §8), CNAME alone at its
//! name (RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 4035 §2.5), one CNAME per name, NS at the apex
//! and no DS there (RFC 4034 §5), nothing below a DNAME (RFC 6672 §2.4), no MD or MF
//! (RFC 973 §2.2), and an address for every name server inside the zone (glue, RFC 9471).
//!
//! Each violation names the file and line the record came from (when it was read from a file),
//! its owner and the rule. BIND (`named-checkzone`) or Knot (`kzonecheck`) refuses each of
//! these, except a TTL above 2^31-1, which BIND sets to 0 with a warning: the signer does that
//! too when lenient ([`crate::sign::Strictness::Lenient`]). What BIND and Knot only warn about
//! is not here but in [`crate::sign::prepare`]: a warning, or an error when strict.

use crate::name::Name;
use crate::presentation::MAX_RDATA;
use crate::rdata::{rtype, type_name};
use crate::zone::Zone;
use crate::zonefile::MAX_TTL;

/// One rule broken by a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `file:line: ` where the record was read, or empty.
    pub location: String,
    /// The owner name concerned.
    pub owner: Name,
    /// The rule, in words, with its RFC.
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}: {}", self.location, self.owner, self.rule)
    }
}

/// Checks the zone (records in output order, as after [`Zone::canonicalize`]); returns every
/// violation found, in zone order.
pub fn check(zone: &Zone) -> Vec<Violation> {
    let apex = &zone.origin;
    let recs = &zone.records;
    let mut out = Vec::new();
    let mut push = |owner: &Name, t: u16, rule: String| {
        out.push(Violation {
            location: zone.sources.locate(owner, t),
            owner: owner.clone(),
            rule,
        })
    };
    for r in recs {
        if r.rdata.len() > MAX_RDATA {
            push(
                &r.owner,
                r.rtype,
                format!(
                    "{} RDATA of {} octets; at most {MAX_RDATA} (RFC 1035 §3.2.1)",
                    type_name(r.rtype),
                    r.rdata.len()
                ),
            );
        }
        if matches!(r.rtype, rtype::MD | rtype::MF) {
            push(
                &r.owner,
                r.rtype,
                format!(
                    "{} is obsolete (RFC 973 §2.2: use MX); BIND refuses to load it in any form",
                    if r.rtype == rtype::MD { "MD" } else { "MF" }
                ),
            );
        }
        if r.ttl > MAX_TTL {
            push(
                &r.owner,
                r.rtype,
                format!("{} TTL {} above 2^31-1 (RFC 2181 §8)", type_name(r.rtype), r.ttl),
            );
        }
    }
    let mut apex_ns = false;
    let mut dname_cut: Option<Name> = None;
    let mut i = 0;
    while i < recs.len() {
        let owner = &recs[i].owner;
        let mut j = i + 1;
        while j < recs.len() && recs[j].owner == *owner {
            j += 1;
        }
        let at = &recs[i..j];
        let count = |t: u16| at.iter().filter(|r| r.rtype == t).count();
        if dname_cut
            .as_ref()
            .is_some_and(|d| !owner.is_strict_subdomain_of(d))
        {
            dname_cut = None;
        }
        if let Some(d) = &dname_cut {
            push(
                owner,
                at[0].rtype,
                format!("data below the DNAME at {d} (RFC 6672 §2.4)"),
            );
        } else if owner.is_subdomain_of(apex) {
            let cnames = count(rtype::CNAME);
            if cnames > 1 {
                push(
                    owner,
                    rtype::CNAME,
                    format!("{cnames} CNAME records; at most one (RFC 2181 §10.1)"),
                );
            }
            if cnames > 0 {
                let others: Vec<String> = at
                    .iter()
                    .filter(|r| !matches!(r.rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
                    .map(|r| type_name(r.rtype))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !others.is_empty() || owner == apex {
                    let what = if owner == apex {
                        "CNAME at the zone apex".to_string()
                    } else {
                        format!("CNAME beside other data ({})", others.join(" "))
                    };
                    push(
                        owner,
                        rtype::CNAME,
                        format!("{what} (RFC 1034 §3.6.2, RFC 2181 §10.1)"),
                    );
                }
            }
            if owner == apex {
                apex_ns = count(rtype::NS) > 0;
                if count(rtype::DS) > 0 {
                    push(
                        owner,
                        rtype::DS,
                        "DS at the zone apex; it belongs in the parent (RFC 4034 §5)".into(),
                    );
                }
            }
            if count(rtype::DNAME) > 1 {
                push(owner, rtype::DNAME, "more than one DNAME (RFC 6672 §2.4)".into());
            }
            let delegation = owner != apex && count(rtype::NS) > 0;
            if count(rtype::DNAME) > 0 && !delegation {
                dname_cut = Some(owner.clone());
            }
        }
        i = j;
    }
    for (owner, target) in missing_glue(zone) {
        push(
            &owner,
            rtype::NS,
            format!(
                "name server {target} inside the zone has no A or AAAA record (Knot refuses the \
                 zone: missing glue; BIND refuses it for the apex NS, warns for a delegation)"
            ),
        );
    }
    if !apex_ns {
        out.push(Violation {
            location: zone.sources.locate(apex, rtype::SOA),
            owner: apex.clone(),
            rule: "no NS records at the zone apex (RFC 1035 §5.2)".into(),
        });
    }
    out
}

/// NS records (at the apex or a delegation) naming a server inside the zone that has no address:
/// (NS owner, server). A server below another delegation than its own is not asked for (its
/// address is that delegation's glue; Knot does not ask either).
fn missing_glue(zone: &Zone) -> Vec<(Name, Name)> {
    use std::collections::HashSet;
    let apex = &zone.origin;
    let recs = &zone.records;
    let cuts: HashSet<&Name> = recs
        .iter()
        .filter(|r| r.rtype == rtype::NS && r.owner != *apex && r.owner.is_subdomain_of(apex))
        .map(|r| &r.owner)
        .collect();
    let addressed: HashSet<&Name> = recs
        .iter()
        .filter(|r| matches!(r.rtype, rtype::A | rtype::AAAA))
        .map(|r| &r.owner)
        .collect();
    // the delegation at or above `n` (the closest to it), or the apex
    let cut_of = |n: &Name| -> Name {
        let mut cur = Some(n.clone());
        while let Some(c) = cur {
            if c == *apex || cuts.contains(&c) {
                return c;
            }
            cur = c.parent();
        }
        apex.clone()
    };
    let mut out = Vec::new();
    for r in recs
        .iter()
        .filter(|r| r.rtype == rtype::NS && r.owner.is_subdomain_of(apex))
    {
        // NS records below a delegation are occluded, not the zone's
        if r.owner != *apex && r.owner.parent().is_some_and(|p| cut_of(&p) != *apex) {
            continue;
        }
        let Ok(target) = Name::from_wire(&r.rdata) else {
            continue;
        };
        if !target.is_subdomain_of(apex) || addressed.contains(&target) {
            continue;
        }
        let cut = cut_of(&target);
        if cut == *apex || cut == r.owner {
            out.push((r.owner.clone(), target));
        }
    }
    out
}
