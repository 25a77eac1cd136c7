//! The signing pipeline, as plain stages (RFC 4033–4035, RFC 5155, RFC 8976):
//!
//! 1. [`prepare`]: canonical sort (RFC 4034 §6), strip old DNSSEC data, SOA serial policy,
//!    DNSKEY / CDS / CDNSKEY / NSEC3PARAM / ZONEMD placeholder at the apex;
//! 2. [`classify`]: zone cuts — apex, authoritative names, delegations, occluded data (glue and
//!    anything below a cut or a DNAME);
//! 3. [`crate::denial`]: the NSEC or NSEC3 chain (ENTs, opt-out, bitmaps, RFC 9077 TTLs);
//! 4. [`sign_rrsets`]: RRSIGs, in parallel batches split at owner-name boundaries;
//! 5. [`crate::zonemd`]: digest the signed zone, fill in the ZONEMD placeholder, re-sign it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::denial::{self, Denial};
use crate::error::{KeyError, SignError};
use crate::keys::{DsDigest, ZoneSigningKey, ds_rdata, verify_signature};
use crate::name::Name;
use crate::rdata::{Rrsig, Zonemd, rtype};
use crate::zone::{Record, Zone, soa_serial_minimum, soa_with_serial};
use crate::zonemd::{self, ZonemdHash};

/// How the SOA serial changes when signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerialPolicy {
    /// Leave it.
    Keep,
    /// Add one (RFC 1982 arithmetic).
    Increment,
    /// Seconds since the epoch, or old + 1 if that is not newer.
    UnixTime,
    /// `YYYYMMDDnn`, or old + 1 if that is not newer.
    Date,
}

impl SerialPolicy {
    /// The new serial.
    pub fn apply(self, old: u32, now: u64) -> u32 {
        let newer = |cand: u32| {
            if serial_gt(cand, old) {
                cand
            } else {
                old.wrapping_add(1)
            }
        };
        match self {
            Self::Keep => old,
            Self::Increment => old.wrapping_add(1),
            Self::UnixTime => newer(now as u32),
            Self::Date => {
                let (y, m, d) = crate::rdata::civil_from_days((now / 86400) as i64);
                let base = (y * 1_000_000 + m * 10_000 + d * 100) as u32;
                newer(base)
            }
        }
    }
}

/// RFC 1982 "greater than" on 32-bit serials.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// What the signer does where BIND or Knot only warn. The default, [`Strictness::Standard`],
/// warns and goes on as they do; [`Strictness::Strict`] refuses instead (nothing is signed, the
/// error names file and line); [`Strictness::Lenient`] also lets through, with a warning, the one
/// case BIND only warns about that is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strictness {
    /// As [`Strictness::Standard`], and a TTL above 2^31-1 is set to 0 with a warning, as BIND
    /// does (RFC 2181 §8 reads such a TTL as 0), instead of being refused.
    Lenient,
    /// Warn and go on: out-of-zone data is dropped (BIND and Knot ignore it), an RRset whose
    /// TTLs differ gets the lowest (BIND takes the first, Knot the last; RFC 2181 §5.2), NSEC3
    /// with iterations or a salt is signed (RFC 9276 §3.1 asks for neither), and signatures
    /// that expire sooner than the largest TTL of the zone are made.
    #[default]
    Standard,
    /// Each of the warnings of [`Strictness::Standard`] is an error.
    Strict,
}

/// Options of one signing run. Time comes from `now` (the injected clock), never the system.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// Current time, seconds since the epoch.
    pub now: u64,
    /// Inception = `now - inception_offset` unless `inception` is set (clock skew margin).
    pub inception_offset: u32,
    /// Explicit inception.
    pub inception: Option<u32>,
    /// Expiration = inception time + `validity` unless `expiration` is set.
    pub validity: u32,
    /// Explicit expiration.
    pub expiration: Option<u32>,
    /// Expirations are spread over `[exp - jitter, exp]`, deterministically per RRset.
    pub jitter: u32,
    /// NSEC or NSEC3.
    pub denial: Denial,
    /// ZONEMD digests to add (empty: none).
    pub zonemd: Vec<ZonemdHash>,
    /// SOA serial policy.
    pub serial: SerialPolicy,
    /// Publish CDS (SHA-256) and CDNSKEY for the key-signing keys (RFC 7344).
    pub cds: bool,
    /// RRsets per batch handed to a key (and per parallel work item).
    pub batch_size: usize,
    /// Keep apex DNSKEYs of the input that belong to no signing key (pre-published keys of a
    /// rollover); by default they are removed, since a key that signs nothing is stale.
    pub keep_dnskeys: bool,
    /// Allow an expiration time that is already past (to re-create old test vectors).
    pub allow_expired: bool,
    /// What to do where BIND or Knot only warn.
    pub strictness: Strictness,
    /// The previous signed version of the zone: its RRSIGs are kept where they still hold (see [`Previous`]).
    pub previous: Option<Arc<Previous>>,
    /// A kept RRSIG must stay valid for at least this many seconds more (Knot's `rrsig-refresh`); sooner ones are
    /// made anew (with jitter, so that they do not all expire together again).
    pub refresh: u32,
    /// Check every kept RRSIG against its key before keeping it (on by default: a damaged previous file then
    /// costs new signatures, never an invalid zone).
    pub verify_previous: bool,
    /// The apex key records and key roles decided by key management (rollovers, [`crate::rollover`]); `None`:
    /// every signing key is published in the DNSKEY RRset, CDS/CDNSKEY follow [`SignOptions::cds`] and roles
    /// follow the SEP flags.
    pub apex_keys: Option<ApexKeys>,
}

/// Apex key records and roles set explicitly, as a rollover needs them: keys published that do not sign
/// (pre-published or retired), keys that sign and are not published (the first step of an algorithm rollover,
/// RFC 6781 §4.1.4), CDS/CDNSKEY for a chosen set, and a key-signing key that signs only the DNSKEY RRset
/// beside a combined key.
#[derive(Debug, Clone, Default)]
pub struct ApexKeys {
    /// The DNSKEY RRset, exactly (DNSKEYs of the input are replaced).
    pub dnskeys: Vec<crate::rdata::Dnskey>,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: u32,
    /// Keys to publish CDS (SHA-256) and CDNSKEY for (RFC 7344); empty: none (input ones are removed too).
    pub cds: Vec<crate::rdata::Dnskey>,
    /// Per signing key, in the order of the keys given to [`sign_zone`]: (signs the DNSKEY/CDS/CDNSKEY RRsets,
    /// signs the rest).
    pub roles: Vec<(bool, bool)>,
}

/// The RRSIGs of a previous signed version of a zone, for incremental signing: an RRSIG is kept when its RRset
/// is unchanged in canonical form (same records, same TTL), its key still signs (same algorithm and key tag),
/// its fields match what a new one would say (labels, original TTL, signer), it is valid now and for at least
/// [`SignOptions::refresh`] more seconds, and (unless [`SignOptions::verify_previous`] is off) it verifies.
/// Everything else is signed anew: changed RRsets, the NSEC/NSEC3 records whose links changed, the SOA when its
/// serial changes, ZONEMD when any data changes.
#[derive(Debug, Default)]
pub struct Previous {
    /// (owner, type) -> SHA-256 of the RRset in canonical form with its TTL.
    rrsets: HashMap<(Name, u16), [u8; 32]>,
    /// (owner, type covered) -> its RRSIG records.
    rrsigs: HashMap<(Name, u16), Vec<Record>>,
    /// RRSIGs in the previous version.
    pub total_rrsigs: usize,
}

/// SHA-256 over the canonical form of an RRset (records in canonical order), TTLs included.
fn rrset_digest(rrset: &[Record]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut buf = Vec::new();
    for r in rrset {
        buf.clear();
        r.write_canonical(r.ttl, &mut buf);
        h.update(&buf);
    }
    h.finalize().into()
}

impl Previous {
    /// Indexes a previous signed version of the zone (as read from its file).
    pub fn new(mut zone: Zone) -> Self {
        zone.sort_keeping_ttls();
        let mut prev = Previous::default();
        let records = &zone.records;
        let mut i = 0;
        while i < records.len() {
            let (owner, t) = (&records[i].owner, records[i].rtype);
            let mut j = i + 1;
            while j < records.len() && records[j].owner == *owner && records[j].rtype == t {
                j += 1;
            }
            if t == rtype::RRSIG {
                for r in &records[i..j] {
                    if let Some(covered) = crate::rdata::rrsig_type_covered(&r.rdata) {
                        prev.rrsigs
                            .entry((owner.clone(), covered))
                            .or_default()
                            .push(r.clone());
                        prev.total_rrsigs += 1;
                    }
                }
            } else {
                prev.rrsets
                    .insert((owner.clone(), t), rrset_digest(&records[i..j]));
            }
            i = j;
        }
        prev
    }

    /// The previous RRSIG that `key` can keep for `rrset` (see the type's docs), if any.
    fn keepable(
        &self,
        rrset: &[Record],
        apex: &Name,
        dk: &crate::rdata::Dnskey,
        opts: &SignOptions,
    ) -> Option<Record> {
        let first = &rrset[0];
        let key = (first.owner.clone(), first.rtype);
        if self.rrsets.get(&key) != Some(&rrset_digest(rrset)) {
            return None;
        }
        let now = opts.now as u32;
        self.rrsigs.get(&key)?.iter().find_map(|r| {
            let sig = Rrsig::from_wire(&r.rdata).ok()?;
            let fits = sig.algorithm == dk.algorithm
                && sig.key_tag == dk.key_tag()
                && sig.signer == *apex
                && sig.labels == first.owner.rrsig_labels()
                && sig.original_ttl == first.ttl
                // valid now (serial arithmetic, RFC 4034 §3.1.5) and for `refresh` more seconds
                && now.wrapping_sub(sig.inception) < 0x8000_0000
                && sig.expiration.wrapping_sub(now) < 0x8000_0000
                && sig.expiration.wrapping_sub(now) > opts.refresh;
            if !fits {
                return None;
            }
            if opts.verify_previous && !verify_signature(dk, &signed_data(&sig, rrset), &sig.signature) {
                tracing::warn!(owner = %first.owner, rtype = first.rtype, "previous RRSIG does not verify; signed anew");
                return None;
            }
            Some(Record {
                ttl: first.ttl,
                ..r.clone()
            })
        })
    }
}

/// Highest NSEC3 iteration count accepted: BIND 9.18 and later treat zones above 50 as
/// insecure and refuse to sign them; RFC 9276 §3.1 asks for 0.
pub const MAX_NSEC3_ITERATIONS: u16 = 50;

impl SignOptions {
    /// Defaults: NSEC3 with RFC 9276 parameters, 30 days validity, 1 hour backdating,
    /// no jitter, serial kept, no ZONEMD.
    pub fn new(now: u64) -> Self {
        Self {
            now,
            inception_offset: 3600,
            inception: None,
            validity: 30 * 86400,
            expiration: None,
            jitter: 0,
            denial: Denial::nsec3_rfc9276(),
            zonemd: Vec::new(),
            serial: SerialPolicy::Keep,
            cds: false,
            batch_size: 512,
            keep_dnskeys: false,
            allow_expired: false,
            strictness: Strictness::Standard,
            previous: None,
            refresh: 7 * 86400,
            verify_previous: true,
            apex_keys: None,
        }
    }

    /// Checks the options before anything is signed: validity window (inception before
    /// expiration, expiration in the future unless [`SignOptions::allow_expired`], jitter
    /// inside the window) and NSEC3 parameters (salt at most 255 octets, iterations at most
    /// [`MAX_NSEC3_ITERATIONS`], SHA-1).
    pub fn check(&self) -> Result<(), SignError> {
        let (inc, exp) = self.window();
        let span = exp.wrapping_sub(inc);
        if span == 0 || span >= 0x8000_0000 {
            return Err(SignError::Options(format!(
                "signature expiration {} is not after inception {}",
                crate::rdata::format_time(exp),
                crate::rdata::format_time(inc)
            )));
        }
        let now = self.now as u32;
        if !self.allow_expired && exp.wrapping_sub(now).wrapping_sub(1) >= 0x7fff_ffff {
            return Err(SignError::Options(format!(
                "signature expiration {} is not in the future (now {})",
                crate::rdata::format_time(exp),
                crate::rdata::format_time(now)
            )));
        }
        if self.jitter >= span {
            return Err(SignError::Options(format!(
                "jitter of {} s is not shorter than the validity period of {span} s",
                self.jitter
            )));
        }
        if let Denial::Nsec3 { params, .. } = &self.denial {
            if params.salt.len() > 255 {
                return Err(SignError::Options(format!(
                    "NSEC3 salt of {} octets; at most 255 (RFC 5155 §3.1.5)",
                    params.salt.len()
                )));
            }
            if params.iterations > MAX_NSEC3_ITERATIONS {
                return Err(SignError::Options(format!(
                    "NSEC3 iterations {} above {MAX_NSEC3_ITERATIONS}: validators treat the zone as insecure \
                     (RFC 9276 §3.1 asks for 0)",
                    params.iterations
                )));
            }
            if self.strictness == Strictness::Strict && (params.iterations > 0 || !params.salt.is_empty()) {
                return Err(SignError::Options(format!(
                    "NSEC3 with {} iterations and a salt of {} octets: RFC 9276 §3.1 asks for 0 and \
                     none (refused with --strict)",
                    params.iterations,
                    params.salt.len()
                )));
            }
            if params.hash_algorithm != 1 {
                return Err(SignError::Options(format!(
                    "NSEC3 hash algorithm {} unknown (only 1, SHA-1)",
                    params.hash_algorithm
                )));
            }
        }
        if self.batch_size == 0 {
            return Err(SignError::Options("batch size 0".into()));
        }
        if let Some(a) = &self.apex_keys
            && a.dnskeys.is_empty()
        {
            return Err(SignError::Options("explicit apex keys without any DNSKEY".into()));
        }
        Ok(())
    }

    fn window(&self) -> (u32, u32) {
        let inc = self
            .inception
            .unwrap_or((self.now as u32).wrapping_sub(self.inception_offset));
        let exp = self
            .expiration
            .unwrap_or((self.now as u32).wrapping_add(self.validity));
        (inc, exp)
    }
}

/// Figures of one run.
#[derive(Debug, Clone, Default)]
pub struct SignStats {
    /// Records in the input after canonicalization.
    pub input_records: usize,
    /// RRSIGs created.
    pub rrsigs: usize,
    /// RRSIGs of the previous version kept (incremental signing).
    pub kept: usize,
    /// RRSIGs of the previous version not kept.
    pub dropped: usize,
    /// NSEC or NSEC3 records created.
    pub denial_records: usize,
    /// Seconds spent creating RRSIGs (the parallel stage).
    pub signing_seconds: f64,
    /// Seconds for the whole pipeline.
    pub total_seconds: f64,
}

/// Progress callback: called with the number of RRsets just signed and the total to sign.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Signs a zone with the given keys. The zone may contain old signatures; they are replaced.
pub fn sign_zone(
    zone: Zone,
    keys: &[&dyn ZoneSigningKey],
    opts: &SignOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Zone, SignStats), SignError> {
    let t0 = Instant::now();
    if keys.is_empty() {
        return Err(SignError::Options("no signing keys".into()));
    }
    opts.check()?;
    if let Denial::Nsec3 { params, .. } = &opts.denial
        && (params.iterations > 0 || !params.salt.is_empty())
    {
        tracing::warn!(
            iterations = params.iterations,
            salt_octets = params.salt.len(),
            "RFC 9276 asks for NSEC3 with 0 iterations and no salt"
        );
    }
    for k in keys {
        if *k.owner() != zone.origin {
            return Err(SignError::Options(format!(
                "key {} belongs to {}, not to zone {}",
                k.dnskey().key_tag(),
                k.owner(),
                zone.origin
            )));
        }
    }
    let mut stats = SignStats::default();
    // Stage 1: canonical form and apex records.
    let mut zone = prepare(zone, keys, opts)?;
    stats.input_records = zone.records.len();
    check_validity_against_ttls(&zone, opts)?;
    // Stage 2: zone cuts.
    let nodes = classify(&zone.records, &zone.origin);
    // Stage 3: denial of existence.
    let soa = zone.soa().ok_or_else(|| SignError::Options("no SOA".into()))?;
    let (_, minimum) =
        soa_serial_minimum(&soa.rdata).ok_or_else(|| SignError::Options("malformed SOA".into()))?;
    let denial_ttl = soa.ttl.min(minimum); // RFC 9077 §3.1
    let chain = denial::build_chain(&zone, &nodes, &opts.denial, denial_ttl)?;
    stats.denial_records = chain.len();
    append_exact(&mut zone.records, vec![chain]);
    zone.records.par_sort_unstable_by(Record::output_cmp);
    // Stage 4: RRSIGs.
    let t_sign = Instant::now();
    let mut jobs = signing_jobs(&zone.records, &zone.origin);
    if !opts.zonemd.is_empty() {
        // The apex ZONEMD still holds placeholders: it is signed once its digest is in (stage 5).
        let apex = &zone.origin;
        jobs.retain(|j| {
            !(zone.records[j.start].owner == *apex && zone.records[j.start].rtype == rtype::ZONEMD)
        });
    }
    let kept = AtomicUsize::new(0);
    let sigs = sign_rrsets_keeping(&zone.records, &jobs, &zone.origin, keys, opts, progress, &kept)?;
    drop(jobs);
    stats.signing_seconds = t_sign.elapsed().as_secs_f64();
    stats.rrsigs = append_exact(&mut zone.records, sigs);
    zone.records.par_sort_unstable_by(Record::output_cmp);
    // Stage 5: ZONEMD.
    if !opts.zonemd.is_empty() {
        zonemd::fill_placeholders(&mut zone)?;
        let apex = zone.origin.clone();
        zone.records.retain(|r| {
            !(r.owner == apex
                && r.rtype == rtype::RRSIG
                && crate::rdata::rrsig_type_covered(&r.rdata) == Some(rtype::ZONEMD))
        });
        // the apex ZONEMD RRset is contiguous in output order
        let is_zonemd = |r: &Record| r.owner == apex && r.rtype == rtype::ZONEMD;
        let jobs: Vec<Job> = zone
            .records
            .iter()
            .position(is_zonemd)
            .map(|start| Job {
                start,
                end: start + zone.records[start..].iter().take_while(|r| is_zonemd(r)).count(),
            })
            .into_iter()
            .collect();
        let sigs = sign_rrsets_keeping(&zone.records, &jobs, &zone.origin, keys, opts, None, &kept)?;
        stats.rrsigs += append_exact(&mut zone.records, sigs);
        zone.records.par_sort_unstable_by(Record::output_cmp);
    }
    stats.kept = kept.into_inner();
    stats.rrsigs -= stats.kept;
    stats.dropped = opts
        .previous
        .as_ref()
        .map_or(0, |p| p.total_rrsigs.saturating_sub(stats.kept));
    stats.total_seconds = t0.elapsed().as_secs_f64();
    Ok((zone, stats))
}

/// Signatures that expire (at the earliest, with jitter) sooner than the largest TTL of the
/// zone: validators cut the cached TTL to the expiration (RFC 4035 §5.3.3), so caching suffers,
/// and RFC 6781 §4.4.2 wants the validity well above the TTLs. A warning, an error with
/// [`Strictness::Strict`].
fn check_validity_against_ttls(zone: &Zone, opts: &SignOptions) -> Result<(), SignError> {
    let Some(max_ttl) = zone.records.iter().map(|r| r.ttl).max() else {
        return Ok(());
    };
    let (_, exp) = opts.window();
    let left = exp.wrapping_sub(opts.jitter).wrapping_sub(opts.now as u32);
    if left >= 0x8000_0000 || left >= max_ttl {
        return Ok(()); // already expired (allowed by allow_expired) or long enough
    }
    let msg = format!(
        "signatures expire in {left} s, sooner than the largest TTL of the zone ({max_ttl} s): \
         resolvers cut cached TTLs to the expiration (RFC 4035 §5.3.3)"
    );
    if opts.strictness == Strictness::Strict {
        return Err(SignError::Options(format!("{msg} (refused with --strict)")));
    }
    tracing::warn!("{msg}");
    Ok(())
}

/// Appends batches of records, growing `records` once to the exact size (not doubling it) and
/// freeing each batch as it is moved; returns how many were appended.
fn append_exact(records: &mut Vec<Record>, batches: Vec<Vec<Record>>) -> usize {
    let n = batches.iter().map(Vec::len).sum();
    records.reserve_exact(n);
    for b in batches {
        records.extend(b);
    }
    n
}

/// Stage 1: canonical sort and apex records (serial, DNSKEY, CDS/CDNSKEY, NSEC3PARAM, ZONEMD
/// placeholders). Old RRSIG, NSEC, NSEC3, NSEC3PARAM and apex ZONEMD records are dropped.
pub fn prepare(mut zone: Zone, keys: &[&dyn ZoneSigningKey], opts: &SignOptions) -> Result<Zone, SignError> {
    if opts.strictness == Strictness::Lenient {
        for r in zone
            .records
            .iter_mut()
            .filter(|r| r.ttl > crate::zonefile::MAX_TTL)
        {
            tracing::warn!(
                "{}{}: TTL {} above 2^31-1 set to 0 (RFC 2181 §8; --lenient)",
                zone.sources.locate(&r.owner, r.rtype),
                r.owner,
                r.ttl
            );
            r.ttl = 0;
        }
    }
    let report = zone.canonicalize();
    // what BIND and Knot only warn about: (owner, type, the rule, what was done instead)
    let mut warned: Vec<(&Name, u16, String, &str)> = Vec::new();
    for (n, t) in &report.out_of_zone {
        let what = format!(
            "{} record out of zone {}",
            crate::rdata::type_name(*t),
            zone.origin
        );
        warned.push((n, *t, what, "dropped"));
    }
    if report.duplicates > 0 {
        tracing::info!(count = report.duplicates, "duplicate records dropped");
    }
    for (n, t) in &report.ttl_fixed {
        let what = format!(
            "{} RRset with differing TTLs (RFC 2181 §5.2)",
            crate::rdata::type_name(*t)
        );
        warned.push((n, *t, what, "all set to the lowest"));
    }
    let mut refused = Vec::new();
    for (n, t, what, done) in warned {
        let location = zone.sources.locate(n, t);
        if opts.strictness == Strictness::Strict {
            refused.push(crate::rules::Violation {
                location,
                owner: n.clone(),
                rule: format!("{what} (BIND and Knot only warn; refused with --strict)"),
            });
        } else {
            tracing::warn!("{location}{n}: {what}: {done}");
        }
    }
    if !refused.is_empty() {
        return Err(SignError::Zone(crate::error::ZoneError::Invalid(refused)));
    }
    let apex = zone.origin.clone();
    let regenerate_cds = opts.cds || opts.apex_keys.is_some();
    zone.records.retain(|r| {
        let old_dnssec = matches!(
            r.rtype,
            rtype::RRSIG | rtype::NSEC | rtype::NSEC3 | rtype::NSEC3PARAM
        );
        let apex_regenerated = r.owner == apex
            && (r.rtype == rtype::ZONEMD
                || (regenerate_cds && matches!(r.rtype, rtype::CDS | rtype::CDNSKEY)));
        !old_dnssec && !apex_regenerated
    });
    let violations = crate::rules::check(&zone);
    if !violations.is_empty() {
        return Err(SignError::Zone(crate::error::ZoneError::Invalid(violations)));
    }
    // DNSKEYs of the input that no signing key has: removed, or kept as pre-published keys
    // when asked (then their algorithms must be signed with too, RFC 4035 §2.2)
    let ours: Vec<Vec<u8>> = match &opts.apex_keys {
        // the input's DNSKEYs all go: the explicit set replaces them
        Some(_) => Vec::new(),
        None => keys.iter().map(|k| k.dnskey().to_wire()).collect(),
    };
    let keep_foreign = opts.keep_dnskeys && opts.apex_keys.is_none();
    let our_algs: Vec<u8> = keys.iter().map(|k| k.dnskey().algorithm).collect();
    let mut stale = Vec::new();
    zone.records.retain(|r| {
        let foreign =
            r.owner == apex && r.rtype == rtype::DNSKEY && !ours.iter().any(|o| o[..] == r.rdata[..]);
        if foreign {
            stale.push(r.rdata.clone());
        }
        !foreign || keep_foreign
    });
    for rd in stale.iter().filter(|_| opts.apex_keys.is_none()) {
        let k = crate::rdata::Dnskey::from_wire(rd)?;
        if keep_foreign {
            if !our_algs.contains(&k.algorithm) {
                return Err(SignError::Options(format!(
                    "kept DNSKEY {} has algorithm {} that no signing key has; validators want every \
                     algorithm of the DNSKEY RRset to sign the zone (RFC 4035 §2.2)",
                    k.key_tag(),
                    k.algorithm
                )));
            }
            tracing::info!(
                key_tag = k.key_tag(),
                "DNSKEY of no signing key kept (--keep-dnskeys)"
            );
        } else {
            tracing::warn!(key_tag = k.key_tag(), "DNSKEY of no signing key removed");
        }
    }
    let soa_count = zone.records.iter().filter(|r| r.rtype == rtype::SOA).count();
    let soa_idx = zone
        .records
        .iter()
        .position(|r| r.rtype == rtype::SOA && r.owner == apex)
        .ok_or_else(|| {
            SignError::Zone(crate::error::ZoneError::Structure(format!(
                "{}no SOA at the apex {apex}",
                zone.sources.file()
            )))
        })?;
    if soa_count != 1 {
        let stray = zone
            .records
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.owner != apex)
            .or_else(|| zone.records.iter().filter(|r| r.rtype == rtype::SOA).nth(1));
        let at = stray.map_or_else(String::new, |r| {
            format!("{}{}: ", zone.sources.locate(&r.owner, rtype::SOA), r.owner)
        });
        return Err(SignError::Zone(crate::error::ZoneError::Structure(format!(
            "{at}{soa_count} SOA records; a zone has exactly one, at its apex"
        ))));
    }
    let (serial, _) = soa_serial_minimum(&zone.records[soa_idx].rdata)
        .ok_or_else(|| SignError::Options("malformed SOA".into()))?;
    let new_serial = opts.serial.apply(serial, opts.now);
    zone.records[soa_idx].rdata = soa_with_serial(&zone.records[soa_idx].rdata, new_serial)
        .ok_or_else(|| SignError::Options("malformed SOA".into()))?;
    let soa_ttl = zone.records[soa_idx].ttl;
    let dnskey_ttl = zone
        .records
        .iter()
        .find(|r| r.owner == apex && r.rtype == rtype::DNSKEY)
        .map_or(soa_ttl, |r| r.ttl);
    let dnskey_ttl = opts.apex_keys.as_ref().map_or(dnskey_ttl, |a| a.dnskey_ttl);
    let mut add = |rt: u16, ttl: u32, rdata: Vec<u8>| {
        zone.records.push(Record {
            owner: apex.clone(),
            rtype: rt,
            class: 1,
            ttl,
            rdata: rdata.into(),
        })
    };
    let (published, cds): (Vec<&crate::rdata::Dnskey>, Vec<&crate::rdata::Dnskey>) = match &opts.apex_keys {
        Some(a) => (a.dnskeys.iter().collect(), a.cds.iter().collect()),
        None => (
            keys.iter().map(|k| k.dnskey()).collect(),
            keys.iter()
                .map(|k| k.dnskey())
                .filter(|k| opts.cds && k.is_sep())
                .collect(),
        ),
    };
    for k in published {
        add(rtype::DNSKEY, dnskey_ttl, k.to_wire());
    }
    for k in cds {
        add(rtype::CDNSKEY, dnskey_ttl, k.to_wire());
        add(rtype::CDS, dnskey_ttl, ds_rdata(&apex, k, DsDigest::Sha256));
    }
    if let Denial::Nsec3 { params, .. } = &opts.denial {
        // NSEC3PARAM flags are zero (RFC 5155 §4.1.2); TTL 0 as BIND and Knot do.
        let mut p = params.clone();
        p.flags = 0;
        add(rtype::NSEC3PARAM, 0, p.to_wire());
    }
    for h in &opts.zonemd {
        add(
            rtype::ZONEMD,
            soa_ttl,
            Zonemd {
                serial: new_serial,
                scheme: 1,
                hash_algorithm: h.number(),
                digest: vec![0; h.len()],
            }
            .to_wire(),
        );
    }
    zone.canonicalize();
    Ok(zone)
}

/// What a name is, after zone cuts are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// The zone apex.
    Apex,
    /// An authoritative name (signed).
    Authoritative,
    /// A delegation point: only DS (and NSEC) are authoritative.
    Delegation {
        /// Whether a DS RRset exists (a secure delegation).
        has_ds: bool,
    },
    /// Below a delegation or a DNAME, or out of the authoritative data: glue and occluded
    /// records; never signed, never in the NSEC/NSEC3 chain.
    Occluded,
}

/// One owner name and its records.
#[derive(Debug, Clone)]
pub struct Node {
    /// Owner.
    pub name: Name,
    /// Index of the first record in the zone's record vector.
    pub start: usize,
    /// One past the last record.
    pub end: usize,
    /// Classification.
    pub kind: NodeKind,
}

/// Stage 2: groups records by owner (they are contiguous in output order) and classifies each
/// name. Works on canonical order: everything below a name follows it directly.
pub fn classify(records: &[Record], apex: &Name) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut cut: Option<Name> = None;
    let mut i = 0;
    while i < records.len() {
        let mut j = i + 1;
        while j < records.len() && records[j].owner == records[i].owner {
            j += 1;
        }
        let name = records[i].owner.clone();
        let has = |t: u16| records[i..j].iter().any(|r| r.rtype == t);
        if cut.as_ref().is_some_and(|c| !name.is_strict_subdomain_of(c)) {
            cut = None;
        }
        let kind = if cut.is_some() || !name.is_subdomain_of(apex) {
            NodeKind::Occluded
        } else if name == *apex {
            if has(rtype::DNAME) {
                cut = Some(name.clone());
            }
            NodeKind::Apex
        } else if has(rtype::NS) {
            cut = Some(name.clone());
            NodeKind::Delegation {
                has_ds: has(rtype::DS),
            }
        } else {
            if has(rtype::DNAME) {
                cut = Some(name.clone());
            }
            NodeKind::Authoritative
        };
        nodes.push(Node {
            name,
            start: i,
            end: j,
            kind,
        });
        i = j;
    }
    nodes
}

/// An RRset to sign: a range of records of one owner and type.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// First record.
    pub start: usize,
    /// One past the last.
    pub end: usize,
}

/// The RRsets that get RRSIGs: every RRset at authoritative names and the apex, and DS and
/// NSEC at delegations; nothing occluded, no RRSIGs themselves.
pub fn signing_jobs(records: &[Record], apex: &Name) -> Vec<Job> {
    let mut jobs = Vec::new();
    for node in classify(records, apex) {
        let signable = |t: u16| match node.kind {
            NodeKind::Apex | NodeKind::Authoritative => t != rtype::RRSIG,
            NodeKind::Delegation { .. } => t == rtype::DS || t == rtype::NSEC,
            NodeKind::Occluded => false,
        };
        let mut i = node.start;
        while i < node.end {
            let t = records[i].rtype;
            let mut j = i + 1;
            while j < node.end && records[j].rtype == t {
                j += 1;
            }
            if signable(t) {
                jobs.push(Job { start: i, end: j });
            }
            i = j;
        }
    }
    jobs
}

/// The RRSIG signed data (RFC 4034 §3.1.8.1) of an RRset.
pub fn signed_data(rrsig: &Rrsig, rrset: &[Record]) -> Vec<u8> {
    let size: usize = rrset
        .iter()
        .map(|r| r.owner.wire().len() + 10 + r.rdata.len())
        .sum();
    let mut msg = rrsig.prefix_wire();
    msg.reserve(size);
    for r in rrset {
        r.write_canonical(rrsig.original_ttl, &mut msg);
    }
    msg
}

fn jitter_for(owner: &Name, t: u16, jitter: u32) -> u32 {
    if jitter == 0 {
        return 0;
    }
    // FNV-1a: a fixed, reproducible spread; not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.wire().iter().chain(t.to_be_bytes().iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h % (jitter as u64 + 1)) as u32
}

/// Stage 4: RRSIGs for `jobs`, in parallel. Work is split into batches of whole owner names
/// (never inside a name); each batch goes to each key as one `sign_batch` call. Returns the
/// RRSIGs of each batch, in job order.
pub fn sign_rrsets(
    records: &[Record],
    jobs: &[Job],
    apex: &Name,
    keys: &[&dyn ZoneSigningKey],
    opts: &SignOptions,
    progress: Option<Progress<'_>>,
) -> Result<Vec<Vec<Record>>, SignError> {
    sign_rrsets_keeping(records, jobs, apex, keys, opts, progress, &AtomicUsize::new(0))
}

/// [`sign_rrsets`], keeping what [`SignOptions::previous`] allows (counted in `kept`; kept RRSIGs are among the
/// returned records).
fn sign_rrsets_keeping(
    records: &[Record],
    jobs: &[Job],
    apex: &Name,
    keys: &[&dyn ZoneSigningKey],
    opts: &SignOptions,
    progress: Option<Progress<'_>>,
    kept: &AtomicUsize,
) -> Result<Vec<Vec<Record>>, SignError> {
    // Roles per algorithm (RFC 4035 §2.2: every algorithm signs every RRset): its KSKs sign the
    // DNSKEY/CDS/CDNSKEY RRsets and its ZSKs the rest; an algorithm with keys of one kind only
    // (a CSK) signs everything with them.
    let has = |alg: u8, sep: bool| {
        keys.iter()
            .any(|k| k.dnskey().algorithm == alg && k.dnskey().is_sep() == sep)
    };
    let roles: Vec<(bool, bool)> = match &opts.apex_keys {
        Some(a) if a.roles.len() == keys.len() => a.roles.clone(),
        Some(a) => {
            return Err(SignError::Options(format!(
                "{} key roles for {} signing keys",
                a.roles.len(),
                keys.len()
            )));
        }
        None => keys
            .iter()
            .map(|k| {
                let (alg, sep) = (k.dnskey().algorithm, k.dnskey().is_sep());
                let signs_keys = sep || !has(alg, true);
                let signs_zone = !sep || !has(alg, false);
                (signs_keys, signs_zone)
            })
            .collect(),
    };
    let (inception, expiration) = opts.window();
    // batches end at owner boundaries
    let mut batches: Vec<&[Job]> = Vec::new();
    let mut s = 0;
    let mut batch = opts.batch_size.max(1);
    if keys.iter().any(|k| k.long_batches()) {
        let per_thread = jobs.len().div_ceil(rayon::current_num_threads().max(1));
        batch = batch.max(per_thread.min(batch.saturating_mul(8)));
    }
    while s < jobs.len() {
        let mut e = (s + batch).min(jobs.len());
        while e < jobs.len() && records[jobs[e].start].owner == records[jobs[e - 1].start].owner {
            e += 1;
        }
        batches.push(&jobs[s..e]);
        s = e;
    }
    let results: Vec<Result<Vec<Record>, KeyError>> = batches
        .par_iter()
        .map(|batch| {
            // one RRSIG per RRset and algorithm is the usual case (a ZSK, or a CSK)
            let mut out = Vec::with_capacity(batch.len());
            for (key, (is_key_signer, is_zone_signer)) in keys.iter().zip(roles.iter().copied()) {
                let dk = key.dnskey();
                let mut templates = Vec::new();
                let mut msgs = Vec::new();
                for job in batch.iter() {
                    let rrset = &records[job.start..job.end];
                    let first = &rrset[0];
                    let apex_key_rrset = first.owner == *apex
                        && matches!(first.rtype, rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY);
                    if (apex_key_rrset && !is_key_signer) || (!apex_key_rrset && !is_zone_signer) {
                        continue;
                    }
                    if let Some(old) = opts
                        .previous
                        .as_ref()
                        .and_then(|p| p.keepable(rrset, apex, dk, opts))
                    {
                        out.push(old);
                        kept.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let rrsig = Rrsig {
                        type_covered: first.rtype,
                        algorithm: dk.algorithm,
                        labels: first.owner.rrsig_labels(),
                        original_ttl: first.ttl,
                        expiration: expiration.wrapping_sub(jitter_for(
                            &first.owner,
                            first.rtype,
                            opts.jitter,
                        )),
                        inception,
                        key_tag: dk.key_tag(),
                        signer: apex.clone(),
                        signature: Vec::new(),
                    };
                    msgs.push(signed_data(&rrsig, rrset));
                    templates.push((rrsig, first.owner.clone(), first.ttl));
                }
                if msgs.is_empty() {
                    continue;
                }
                let sigs = key.sign_batch(&msgs)?;
                if sigs.len() != msgs.len() {
                    return Err(KeyError::BatchMismatch {
                        want: msgs.len(),
                        got: sigs.len(),
                    });
                }
                for ((mut rrsig, owner, ttl), sig) in templates.into_iter().zip(sigs) {
                    rrsig.signature = sig;
                    out.push(Record {
                        owner,
                        rtype: rtype::RRSIG,
                        class: 1,
                        ttl,
                        rdata: rrsig.to_wire().into_boxed_slice(),
                    });
                }
            }
            if let Some(p) = progress {
                p(batch.len(), jobs.len());
            }
            out.shrink_to_fit();
            Ok(out)
        })
        .collect();
    Ok(results.into_iter().collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::keys::{Algorithm, LocalKey};
    use crate::rdata::Dnskey;

    /// A local key that records the size of every `sign_batch` call.
    struct Recording {
        inner: LocalKey,
        long: bool,
        calls: Mutex<Vec<usize>>,
    }

    impl ZoneSigningKey for Recording {
        fn owner(&self) -> &Name {
            self.inner.owner()
        }
        fn dnskey(&self) -> &Dnskey {
            self.inner.dnskey()
        }
        fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError> {
            self.calls.lock().unwrap().push(messages.len());
            self.inner.sign_batch(messages)
        }
        fn long_batches(&self) -> bool {
            self.long
        }
    }

    fn call_sizes(long: bool) -> Vec<usize> {
        let origin = Name::parse("example.", None).unwrap();
        let mut text = String::from(
            "@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.53\n",
        );
        for i in 0..3000 {
            text.push_str(&format!("h{i} 3600 IN A 192.0.2.1\n"));
        }
        let zone = crate::parse_zone(&text, std::path::Path::new("t.zone"), Some(&origin)).unwrap();
        let key = Recording {
            inner: LocalKey::generate(&origin, Algorithm::EcdsaP256Sha256, true, 0, &mut rand::rng())
                .unwrap(),
            long,
            calls: Mutex::default(),
        };
        let mut opts = SignOptions::new(1_700_000_000);
        opts.batch_size = 64;
        let (_, stats) = sign_zone(zone, &[&key], &opts, None).unwrap();
        let calls = key.calls.into_inner().unwrap();
        assert_eq!(calls.iter().sum::<usize>(), stats.rrsigs);
        calls
    }

    #[test]
    fn keys_that_want_long_batches_get_fewer_and_longer_sign_batch_calls() {
        // 3000 names with an A record and 3000 NSEC3 names: about 6000 RRsets to sign
        let short = call_sizes(false);
        let long = call_sizes(true);
        // whole owner names per batch: a few RRsets past the batch size at most
        assert!(short.iter().all(|n| *n <= 64 + 4), "{short:?}");
        assert!(long.iter().any(|n| *n > 64 + 4), "{long:?}");
        assert!(long.iter().all(|n| *n <= 8 * 64 + 4), "{long:?}");
        assert!(
            long.len() * 4 < short.len(),
            "{} vs {} calls",
            long.len(),
            short.len()
        );
    }
}
