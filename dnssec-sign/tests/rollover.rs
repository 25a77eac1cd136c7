//! Automatic rollovers under a simulated clock: `dnssec-sign keys sign` runs at every step over simulated weeks
//! (with `--now` and `--previous`), a simulated parent publishes the DS set when the tool says so or, in some
//! tests, as the zone's CDS RRset says (after an operator's delay), and the operator confirms with `keys ds-seen
//! --parent-ds`. Every snapshot passes our verifier, ldns-verify-zone, dnssec-verify and kzonecheck, and a
//! resolver-view checker ([`check_resolver_view`]) holds across snapshots: whatever DS, DNSKEY RRset and signed
//! RRset a resolver may hold at a time (each within its TTL, from any zone version some server may still serve)
//! validate together. Negative tests show the checker catches a wrong schedule. One rollover runs on cluster keys
//! of five real `tcrypto-node` daemons through the command line (`--cluster --now`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use dnssec_sign::Zone;
use dnssec_sign::keys::verify_signature;
use dnssec_sign::name::Name;
use dnssec_sign::rdata::{Dnskey, Rrsig, rtype};
use dnssec_sign::sign::signed_data;
use dnssec_sign::zone::Record;

const HOUR: u64 = 3600;
const DAY: u64 = 86400;

/// Delays of the simulated world (the policy says the same).
#[derive(Clone, Copy)]
struct Delays {
    /// Zone propagation to the secondaries.
    zone: u64,
    /// DS propagation at the parent.
    parent: u64,
    /// DS TTL.
    ds_ttl: u64,
    /// The operator's delay before acting on a "to do".
    operator: u64,
}

const DELAYS: Delays = Delays {
    zone: HOUR,
    parent: HOUR,
    ds_ttl: 2 * HOUR,
    operator: 3 * HOUR,
};

fn policy_text(algorithm: u8, scheme: &str, lifetimes: &str) -> String {
    format!(
        "# test policy\nalgorithm = {algorithm}\nrsa-bits = 1024\nscheme = \"{scheme}\"\n{lifetimes}\n\
         dnskey-ttl = \"1h\"\nds-ttl = \"2h\"\npropagation-delay = \"1h\"\nparent-propagation-delay = \"1h\"\n\
         signature-validity = \"400d\"\nsignature-refresh = \"7d\"\nsignature-jitter = \"1d\"\n"
    )
}

/// A small zone whose largest TTL is one day; `run` changes one TXT record.
fn zone_text(run: usize) -> String {
    format!(
        "$ORIGIN example.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n\
         www 86400 A 192.0.2.2\nmail 7200 MX 10 www\nrun TXT \"run {run}\"\nsub NS ns.sub\nns.sub A 192.0.2.9\n"
    )
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dnssec-sign")
}

fn cli(args: &[&str]) -> String {
    cli_env(args, &[])
}

fn cli_env(args: &[&str], env: &[(String, String)]) -> String {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dnssec-sign {}:\n{text}", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse_ds_lines(text: &str) -> Vec<Vec<u8>> {
    let lines: String = text
        .lines()
        .filter(|l| l.contains(" IN DS "))
        .map(|l| format!("{l}\n"))
        .collect();
    let z = dnssec_sign::parse_zone(
        format!("$TTL 3600\n{lines}"),
        Path::new("ds"),
        Some(&Name::root()),
    )
    .unwrap();
    z.records.iter().map(|r| r.rdata.to_vec()).collect()
}

fn ds_file_text(set: &[Vec<u8>]) -> String {
    set.iter()
        .map(|rd| {
            format!(
                "example. 7200 IN DS {}\n",
                dnssec_sign::rdata::present(rtype::DS, rd)
            )
        })
        .collect()
}

/// What happened over a simulated run.
struct History {
    /// (time the version was published, the signed zone).
    snapshots: Vec<(u64, Zone)>,
    /// (time the parent published it, the DS set).
    parent: Vec<(u64, Vec<Vec<u8>>)>,
    /// Every line the tool printed, with its time.
    log: Vec<(u64, String)>,
}

/// The simulated operator: runs the tool at every step (its "next" time, operator events, and at least every
/// `max_step`), publishes DS sets at the parent when told (after its delay), and confirms them once the parent
/// has them everywhere. `policy_at(t)` gives the policy text in force.
struct Operator {
    dir: tempfile::TempDir,
    keys: PathBuf,
    history: History,
    parent_pending: Option<(u64, Vec<Vec<u8>>)>,
    ds_seen_at: Option<u64>,
    runs: usize,
    extra_sign_args: Vec<String>,
    env: Vec<(String, String)>,
    /// Signs through the library instead of the command line: (now, zone file, policy file, key directory,
    /// output, previous) -> the report the command line would print.
    library: Option<Box<LibrarySigner>>,
    /// From this time on the operator ignores DS actions (never touches the parent).
    idle_from: u64,
    /// The parent follows the zone's CDS RRset (RFC 7344 §4.1, RFC 8078 §3 for the first DS) instead of the
    /// tool's "to do" lines.
    parent_follows_cds: bool,
}

type LibrarySigner = dyn FnMut(u64, &Path, &Path, &Path, &Path, Option<&Path>) -> String;

impl Operator {
    fn new() -> Self {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("ROLLOVER_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        Self {
            dir,
            keys,
            history: History {
                snapshots: Vec::new(),
                parent: Vec::new(),
                log: Vec::new(),
            },
            parent_pending: None,
            ds_seen_at: None,
            runs: 0,
            extra_sign_args: Vec::new(),
            env: Vec::new(),
            library: None,
            idle_from: u64::MAX,
            parent_follows_cds: false,
        }
    }

    fn current_parent(&self) -> Vec<Vec<u8>> {
        self.history
            .parent
            .last()
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    fn sign(&mut self, t: u64, policy: &str) -> Option<u64> {
        let p = self.dir.path();
        std::fs::write(p.join("policy.toml"), policy).unwrap();
        let zf = p.join("example.zone");
        std::fs::write(&zf, zone_text(self.runs)).unwrap();
        let out = p.join(format!("example.{}.signed", self.runs));
        let prev = (self.runs > 0).then(|| p.join(format!("example.{}.signed", self.runs - 1)));
        let now = t.to_string();
        let mut args: Vec<String> = [
            "keys",
            "sign",
            zf.to_str().unwrap(),
            "--policy",
            p.join("policy.toml").to_str().unwrap(),
            "-K",
            self.keys.to_str().unwrap(),
            "-f",
            out.to_str().unwrap(),
            "--now",
            &now,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(prev) = &prev {
            args.push("--previous".into());
            args.push(prev.to_str().unwrap().into());
        }
        args.extend(self.extra_sign_args.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = match &mut self.library {
            Some(f) => f(t, &zf, &p.join("policy.toml"), &self.keys, &out, prev.as_deref()),
            None => cli_env(&argv, &self.env),
        };
        self.runs += 1;
        for l in stdout.lines() {
            self.history.log.push((t, l.to_string()));
        }
        // every snapshot passes the validators (validity checked at the simulated time by ours)
        let zone = dnssec_sign::read_zone_file(&out, Some(&name("example."))).unwrap();
        let problems = dnssec_sign::verify::verify_zone(
            &zone,
            &dnssec_sign::verify::VerifyOptions {
                now: Some(t),
                require_zonemd: false,
            },
        )
        .unwrap();
        assert!(
            problems.is_empty(),
            "run at {t}: our verifier: {problems:#?}\n{stdout}"
        );
        assert_validators(&out);
        let mut sorted = zone;
        sorted.sort_keeping_ttls();
        self.history.snapshots.push((t, sorted));
        // a DS action: the operator (or the parent's CDS scan) acts after a delay (once per DS set)
        let target = if self.parent_follows_cds {
            self.cds_of_last_snapshot(t)
        } else {
            stdout.split("to do: ").nth(1).map(|todo| {
                let set = parse_ds_lines(todo);
                if todo.starts_with("add at the parent") {
                    let mut s = self.current_parent();
                    s.extend(set);
                    s
                } else {
                    set
                }
            })
        };
        if let Some(mut target) = target {
            target.sort();
            let already = self.parent_pending.as_ref().map(|(_, s)| s) == Some(&target)
                || self.current_parent() == target;
            if !already && self.parent_pending.is_none() && t < self.idle_from {
                self.parent_pending = Some((t + DELAYS.operator, target));
            }
        }
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("next: "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    }

    /// The DS set the CDS RRset of the newest snapshot asks for, as a parent takes it: only when the RRset is
    /// signed by a key the parent's current DS set points to (RFC 7344 §4.1 "Signer"), or when the parent has no
    /// DS yet (initial enrolment, RFC 8078 §3). Asserts that the CDS names only keys of the DNSKEY RRset, each
    /// with the CDNSKEY beside it.
    fn cds_of_last_snapshot(&self, t: u64) -> Option<Vec<Vec<u8>>> {
        let zone = &self.history.snapshots.last()?.1;
        let snap = index(zone);
        let key = (name("example."), rtype::CDS);
        let cds = snap.rrsets.get(&key)?;
        let set: Vec<Vec<u8>> = cds.iter().map(|r| r.rdata.to_vec()).collect();
        let cdnskeys = cdnskey_tags(zone);
        for ds in &set {
            let tag = u16::from_be_bytes([ds[0], ds[1]]);
            assert!(
                snap.dnskeys.iter().any(|k| k.key_tag() == tag
                    && *ds
                        == dnssec_sign::keys::ds_rdata(
                            &name("example."),
                            k,
                            dnssec_sign::keys::DsDigest::Sha256
                        )),
                "at {t}: CDS of key {tag}, which the DNSKEY RRset does not have"
            );
            assert!(
                cdnskeys.contains(&tag),
                "at {t}: CDS of key {tag} without its CDNSKEY"
            );
        }
        assert_eq!(cdnskeys.len(), set.len(), "at {t}: CDS and CDNSKEY differ");
        let current = self.current_parent();
        let accepted =
            current.is_empty() || validates(cds, &snap.rrsigs[&key], &snap.dnskeys, t, Some(&current));
        assert!(
            accepted,
            "at {t}: the CDS RRset is signed by no key of the parent's DS set"
        );
        Some(set)
    }

    /// Runs the world from `start` to `end`.
    fn run(&mut self, start: u64, end: u64, max_step: u64, policy_at: &dyn Fn(u64) -> String) {
        let mut next_sign = start;
        loop {
            let publish = self.parent_pending.as_ref().map(|(t, _)| *t).unwrap_or(u64::MAX);
            let seen = self.ds_seen_at.unwrap_or(u64::MAX);
            let t = next_sign.min(publish).min(seen);
            if t > end {
                break;
            }
            if t == publish {
                let (_, set) = self.parent_pending.take().unwrap();
                self.history.parent.push((t, set));
                self.ds_seen_at = Some(t + DELAYS.parent);
            } else if t == seen {
                self.ds_seen_at = None;
                let f = self.dir.path().join("parent-ds.txt");
                std::fs::write(&f, ds_file_text(&self.current_parent())).unwrap();
                let now = t.to_string();
                let out = cli(&[
                    "keys",
                    "ds-seen",
                    "example.",
                    "-K",
                    self.keys.to_str().unwrap(),
                    "--parent-ds",
                    f.to_str().unwrap(),
                    "--now",
                    &now,
                ]);
                self.history.log.push((t, out.trim().to_string()));
                // the confirmation may end a phase: sign again now
                next_sign = next_sign.min(t);
                if next_sign == t {
                    let n = self.sign(t, &policy_at(t));
                    next_sign = n.filter(|n| *n > t).unwrap_or(u64::MAX).min(t + max_step);
                }
            } else {
                let n = self.sign(t, &policy_at(t));
                next_sign = n.filter(|n| *n > t).unwrap_or(u64::MAX).min(t + max_step);
            }
        }
    }

    fn logged(&self, what: &str) -> Option<u64> {
        self.history
            .log
            .iter()
            .find(|(_, l)| l.starts_with("changed: ") && l.contains(what))
            .map(|(t, _)| *t)
    }
}

fn assert_validators(path: &Path) {
    let p = path.to_str().unwrap();
    let (ok, out) = run("ldns-verify-zone", &[p]);
    assert!(ok, "ldns-verify-zone rejected:\n{out}");
    let text = std::fs::read_to_string(path).unwrap();
    // -z for combined keys only: BIND otherwise wants a key without SEP for zone data
    let csk = !text.lines().any(|l| l.contains("\tDNSKEY\t256 "));
    let args: Vec<&str> = if csk {
        vec!["-z", "-o", "example.", p]
    } else {
        vec!["-o", "example.", p]
    };
    let (ok, out) = run("dnssec-verify", &args);
    assert!(ok, "dnssec-verify rejected:\n{out}");
    // kzonecheck 3.2.6 rejects every zone with two combined keys of one algorithm (`no valid signature for a
    // record` for one RRset, a different one from run to run), ldns-signzone's too: see
    // `kzonecheck_rejects_any_zone_with_two_combined_keys`; such versions (during a CSK rollover) are left to
    // the other validators
    let seps = text.lines().filter(|l| l.contains("\tDNSKEY\t257 ")).count();
    if !(csk && seps > 1) {
        let (ok, out) = run("kzonecheck", &["-d", "on", "-o", "example.", p]);
        assert!(ok, "kzonecheck rejected:\n{out}");
    }
}

#[test]
fn kzonecheck_rejects_any_zone_with_two_combined_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("z"), zone_text(0)).unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let out = Command::new(tool("ldns-keygen"))
            .args(["-a", "ECDSAP256SHA256", "-k", "example."])
            .current_dir(d)
            .output()
            .unwrap();
        keys.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let st = Command::new(tool("ldns-signzone"))
        .args(["-f", "z.signed", "z", &keys[0], &keys[1]])
        .current_dir(d)
        .status()
        .unwrap();
    assert!(st.success());
    let p = d.join("z.signed");
    let (ok, _) = run("ldns-verify-zone", &[p.to_str().unwrap()]);
    assert!(ok);
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", "example.", p.to_str().unwrap()]);
    assert!(
        !ok && out.contains("no valid signature"),
        "kzonecheck accepts two CSKs now: check them in rollovers\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// The resolver-view checker

/// RRsets of a snapshot by (owner, type), with the RRSIGs covering each.
struct Snapshot<'a> {
    rrsets: BTreeMap<(Name, u16), Vec<&'a Record>>,
    rrsigs: BTreeMap<(Name, u16), Vec<Rrsig>>,
    dnskeys: Vec<Dnskey>,
}

fn index(zone: &Zone) -> Snapshot<'_> {
    let mut rrsets: BTreeMap<(Name, u16), Vec<&Record>> = BTreeMap::new();
    let mut rrsigs: BTreeMap<(Name, u16), Vec<Rrsig>> = BTreeMap::new();
    let apex = &zone.origin;
    for r in &zone.records {
        if r.rtype == rtype::RRSIG {
            let s = Rrsig::from_wire(&r.rdata).unwrap();
            rrsigs
                .entry((r.owner.clone(), s.type_covered))
                .or_default()
                .push(s);
        } else {
            rrsets.entry((r.owner.clone(), r.rtype)).or_default().push(r);
        }
    }
    // only what a validator checks: signed RRsets (glue and delegation NS have no RRSIG)
    rrsets.retain(|k, _| rrsigs.contains_key(k));
    let dnskeys = rrsets
        .get(&(apex.clone(), rtype::DNSKEY))
        .map(|v| v.iter().map(|r| Dnskey::from_wire(&r.rdata).unwrap()).collect())
        .unwrap_or_default();
    Snapshot {
        rrsets,
        rrsigs,
        dnskeys,
    }
}

/// Whether one of `sigs` over `rrset`, valid at `t`, made by one of `keys` (and, with `ds`, by a key matching a
/// DS of the set) verifies.
fn validates(rrset: &[&Record], sigs: &[Rrsig], keys: &[Dnskey], t: u64, ds: Option<&[Vec<u8>]>) -> bool {
    let owned: Vec<Record> = rrset.iter().map(|r| (*r).clone()).collect();
    let t = t as u32;
    sigs.iter().any(|s| {
        let in_time = t.wrapping_sub(s.inception) < 0x8000_0000 && s.expiration.wrapping_sub(t) < 0x8000_0000;
        in_time
            && keys.iter().any(|k| {
                k.key_tag() == s.key_tag
                    && k.algorithm == s.algorithm
                    && ds.is_none_or(|set| {
                        set.iter().any(|d| {
                            *d == dnssec_sign::keys::ds_rdata(
                                &name("example."),
                                k,
                                dnssec_sign::keys::DsDigest::Sha256,
                            )
                        })
                    })
                    && verify_signature(k, &signed_data(s, &owned), &s.signature)
            })
    })
}

/// The invariant: at every moment `y` when something new appears (a zone version or a parent DS set), for every
/// DS set a resolver may hold (published at the parent, within the parent's propagation delay and the DS TTL),
/// every DNSKEY RRset it may hold or fetch (any zone version some secondary may serve, within the propagation
/// delay and the DNSKEY TTL) validates: signed by a key that matches a DS of the set. And every signed RRset it
/// may hold or fetch validates with every DNSKEY RRset it may hold, with a signature for each algorithm of that
/// RRset (a conservative validator's reading of RFC 4035 §2.2). Before the parent has any DS the zone is
/// insecure and only the second part applies.
fn check_resolver_view(h: &History, d: Delays) -> Result<usize, String> {
    let snaps: Vec<(u64, Snapshot<'_>)> = h.snapshots.iter().map(|(t, z)| (*t, index(z))).collect();
    let served_until = |i: usize| snaps.get(i + 1).map_or(u64::MAX, |(t, _)| t + d.zone);
    let parent_until = |i: usize| h.parent.get(i + 1).map_or(u64::MAX, |(t, _)| t + d.parent);
    let mut moments: Vec<u64> = snaps
        .iter()
        .map(|(t, _)| *t)
        .chain(h.parent.iter().map(|(t, _)| *t))
        .collect();
    moments.sort_unstable();
    moments.dedup();
    let mut checks = 0;
    for &y in &moments {
        // may a resolver hold at `y` something with `ttl` from a version served from `from` to `until`?
        let held = |from: u64, until: u64, ttl: u64| from <= y && until.saturating_add(ttl) > y;
        let ds_sets: Vec<&Vec<Vec<u8>>> = h
            .parent
            .iter()
            .enumerate()
            .filter(|(i, (p, set))| !set.is_empty() && held(*p, parent_until(*i), d.ds_ttl))
            .map(|(_, (_, s))| s)
            .collect();
        let apex = (name("example."), rtype::DNSKEY);
        for (a, (ta, sa)) in snaps.iter().enumerate() {
            let dnskey_ttl = sa.rrsets[&apex][0].ttl as u64;
            if !held(*ta, served_until(a), dnskey_ttl) {
                continue;
            }
            for ds in &ds_sets {
                checks += 1;
                if !validates(&sa.rrsets[&apex], &sa.rrsigs[&apex], &sa.dnskeys, y, Some(ds)) {
                    return Err(format!(
                        "at {y}: the DNSKEY RRset of the version of {ta} (keys {:?}) is signed by no key matching \
                         the parent's DS set (tags {:?})",
                        sa.dnskeys.iter().map(Dnskey::key_tag).collect::<Vec<_>>(),
                        ds.iter()
                            .map(|x| u16::from_be_bytes([x[0], x[1]]))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            for (b, (tb, sb)) in snaps.iter().enumerate() {
                for (key, rrset) in &sb.rrsets {
                    // a DNSKEY RRset replaces the one held: it is checked against the DS set above
                    if *key == apex {
                        continue;
                    }
                    if !held(*tb, served_until(b), rrset[0].ttl as u64) {
                        continue;
                    }
                    checks += 1;
                    // as a conservative validator does (RFC 4035 §2.2, the reason for RFC 6781 §4.1.4's order):
                    // a valid signature for every algorithm of the DNSKEY RRset
                    let mut algs: Vec<u8> = sa.dnskeys.iter().map(|k| k.algorithm).collect();
                    algs.sort_unstable();
                    algs.dedup();
                    let all = algs.iter().all(|alg| {
                        let of_alg: Vec<Dnskey> = sa
                            .dnskeys
                            .iter()
                            .filter(|k| k.algorithm == *alg)
                            .cloned()
                            .collect();
                        validates(rrset, &sb.rrsigs[key], &of_alg, y, None)
                    });
                    if !all {
                        return Err(format!(
                            "at {y}: {} {} of the version of {tb} does not validate with the DNSKEY RRset of the \
                             version of {ta} (keys {:?}); its RRSIGs are by keys {:?}",
                            key.0,
                            dnssec_sign::rdata::type_name(key.1),
                            sa.dnskeys.iter().map(Dnskey::key_tag).collect::<Vec<_>>(),
                            sb.rrsigs[key].iter().map(|s| s.key_tag).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
    }
    Ok(checks)
}

// ---------------------------------------------------------------------------------------------------------
// The rollovers

/// A start time in the past so that every snapshot's signatures are valid for the external validators, which
/// check them at the real time: the simulated runs end before now, and signatures last 400 days.
fn start() -> u64 {
    (now() - 120 * DAY) / HOUR * HOUR
}

fn state_text(op: &Operator) -> String {
    std::fs::read_to_string(op.keys.join("dnssec-state.toml")).unwrap()
}

/// Key tags of the CDNSKEY RRset, sorted.
fn cdnskey_tags(z: &Zone) -> Vec<u16> {
    let mut v: Vec<u16> = z
        .records
        .iter()
        .filter(|r| r.rtype == rtype::CDNSKEY)
        .map(|r| Dnskey::from_wire(&r.rdata).unwrap().key_tag())
        .collect();
    v.sort_unstable();
    v
}

/// Key tags of the DNSKEY RRset with the SEP flag (`sep`) or without, sorted.
fn dnskey_tags(z: &Zone, sep: bool) -> Vec<u16> {
    let mut v: Vec<u16> = z
        .records
        .iter()
        .filter(|r| r.rtype == rtype::DNSKEY)
        .map(|r| Dnskey::from_wire(&r.rdata).unwrap())
        .filter(|k| k.is_sep() == sep)
        .map(|k| k.key_tag())
        .collect();
    v.sort_unstable();
    v
}

/// Key tags of the RRSIGs over the apex RRset of type `covered`, sorted.
fn signer_tags(z: &Zone, covered: u16) -> Vec<u16> {
    let mut v: Vec<u16> = z
        .records
        .iter()
        .filter(|r| r.rtype == rtype::RRSIG && r.owner == z.origin)
        .map(|r| Rrsig::from_wire(&r.rdata).unwrap())
        .filter(|s| s.type_covered == covered)
        .map(|s| s.key_tag)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The snapshot in force at `t`.
fn snapshot_at(h: &History, t: u64) -> &Zone {
    &h.snapshots.iter().rev().find(|(s, _)| *s <= t).unwrap().1
}

/// `h` with the version published at `from` replaced by the version published at `by` (a wrong schedule that
/// publishes a later step too early).
fn published_early(h: &History, from: u64, by: u64) -> History {
    let i = h.snapshots.iter().position(|(t, _)| *t == from).unwrap();
    let j = h.snapshots.iter().position(|(t, _)| *t == by).unwrap();
    let mut snapshots: Vec<(u64, Zone)> = h.snapshots[..i].to_vec();
    snapshots.push((from, h.snapshots[j].1.clone()));
    snapshots.extend(h.snapshots[j + 1..].iter().cloned());
    History {
        snapshots,
        parent: h.parent.clone(),
        log: Vec::new(),
    }
}

#[test]
fn zsk_pre_publication_rollover_keeps_every_resolver_view_valid() {
    let mut op = Operator::new();
    let policy = policy_text(13, "ksk-zsk", "zsk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 16 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    let started = op.logged("Zsk rollover started").expect("a ZSK rollover started");
    let signing = op
        .logged("the new ZSK starts signing")
        .expect("the new ZSK signed");
    let removed = op
        .logged("the old ZSK is removed")
        .expect("the old ZSK was removed");
    assert!(
        started >= t0 + 10 * DAY && started < signing && signing < removed,
        "{:?}",
        h.log
    );
    // the waits of RFC 7583 §3.2.1: Dprp + TTLkey, then Dprp + the largest TTL of the zone (1 day)
    assert!(signing - started >= HOUR + HOUR);
    assert!(removed - signing >= HOUR + DAY);
    let checks = check_resolver_view(h, DELAYS).unwrap();
    assert!(checks > 100, "{checks}");
    // runs re-sign incrementally: outside the rollover only the SOA, the changed TXT and their NSEC3 are signed
    let kept_most = h
        .log
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("RRSIGs: kept "))
        .filter(|l| {
            let n: Vec<usize> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|x| x.parse().ok())
                .collect();
            n[0] > 4 * n[1]
        })
        .count();
    assert!(kept_most >= 5, "{:?}", h.log);
    // three ZSKs and the KSK in the state: the first ZSK removed
    let state = state_text(&op);
    assert_eq!(state.matches("status = \"removed\"").count(), 1, "{state}");
    assert_eq!(state.matches("status = \"active\"").count(), 2, "{state}");
}

#[test]
fn the_checker_catches_a_zsk_removed_too_early() {
    let mut op = Operator::new();
    let policy = policy_text(13, "ksk-zsk", "zsk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 16 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    check_resolver_view(h, DELAYS).unwrap();
    // the wrong schedule: the version without the old ZSK published as soon as the new ZSK signs
    let signing = op.logged("the new ZSK starts signing").unwrap();
    let removed = op.logged("the old ZSK is removed").unwrap();
    let err = check_resolver_view(&published_early(h, signing, removed), DELAYS).unwrap_err();
    assert!(err.contains("does not validate"), "{err}");
}

#[test]
fn ksk_double_ds_rollover_names_the_new_ksk_in_cds_once_it_is_ready_and_keeps_every_resolver_view_valid() {
    let mut op = Operator::new();
    // the parent takes its DS set from the zone's CDS RRset, as RFC 7344 / RFC 8078 automation does
    op.parent_follows_cds = true;
    let policy = policy_text(13, "ksk-zsk", "ksk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 16 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    let started = op.logged("Ksk rollover started").expect("a KSK rollover started");
    let ready = op
        .logged("the new KSK is ready")
        .expect("the new KSK became ready");
    let swapped = op
        .logged("the old KSK is removed")
        .expect("the old KSK was removed");
    let ended = op.logged("the KSK rollover ends").expect("the rollover ended");
    assert!(
        started < ready && ready < swapped && swapped < ended,
        "{:?}",
        h.log
    );
    // the new KSK is published for Dprp + TTLkey before CDS/CDNSKEY name it (RFC 7583's "ready")
    assert!(ready - started >= HOUR + HOUR);
    let old = dnskey_tags(snapshot_at(h, started - 1), true);
    assert_eq!(old.len(), 1);
    let both = dnskey_tags(snapshot_at(h, started), true);
    assert_eq!(both.len(), 2);
    let new: Vec<u16> = both.iter().copied().filter(|t| !old.contains(t)).collect();
    // before: the old KSK signs the DNSKEY RRset and CDS/CDNSKEY name it
    assert_eq!(cdnskey_tags(snapshot_at(h, started - 1)), old);
    // phase 1: the new KSK published, signing nothing, not in CDS/CDNSKEY
    assert_eq!(cdnskey_tags(snapshot_at(h, started)), old);
    assert_eq!(signer_tags(snapshot_at(h, started), rtype::DNSKEY), old);
    // phase 2: both sign the DNSKEY RRset and CDS/CDNSKEY name both: the parent adds the new DS
    assert_eq!(cdnskey_tags(snapshot_at(h, ready)), both);
    assert_eq!(signer_tags(snapshot_at(h, ready), rtype::DNSKEY), both);
    assert_eq!(signer_tags(snapshot_at(h, ready), rtype::CDS), both);
    // phase 3: the old KSK gone, CDS/CDNSKEY name the new one: the parent drops the old DS
    for t in [swapped, ended] {
        assert_eq!(dnskey_tags(snapshot_at(h, t), true), new);
        assert_eq!(cdnskey_tags(snapshot_at(h, t)), new);
        assert_eq!(signer_tags(snapshot_at(h, t), rtype::DNSKEY), new);
    }
    // the parent (following CDS) had the first DS, both before the swap, the new one only at the end
    assert_eq!(h.parent.len(), 3, "initial DS, both, new only");
    assert_eq!(h.parent[1].1.len(), 2);
    assert_eq!(h.parent[2].1.len(), 1);
    assert!(h.parent[1].0 > ready && h.parent[1].0 + DELAYS.parent + DELAYS.ds_ttl <= swapped);
    assert!(h.parent[2].0 > swapped && h.parent[2].0 + DELAYS.parent <= ended);
    check_resolver_view(h, DELAYS).unwrap();
    // wrong parents are caught: one that replaces the DS set with the new DS while the new KSK does not sign yet,
    // and one that never has both DS (goes from the old to the new when the old KSK has left the zone)
    for wrong_parent in [
        vec![h.parent[0].clone(), (started, h.parent[2].1.clone())],
        vec![h.parent[0].clone(), h.parent[2].clone()],
    ] {
        let wrong = History {
            snapshots: h.snapshots.clone(),
            parent: wrong_parent,
            log: Vec::new(),
        };
        let err = check_resolver_view(&wrong, DELAYS).unwrap_err();
        assert!(err.contains("signed by no key matching"), "{err}");
    }
}

#[test]
fn ksk_rollover_driven_by_the_tools_to_do_lines_keeps_every_resolver_view_valid() {
    let mut op = Operator::new();
    let policy = policy_text(13, "ksk-zsk", "ksk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 16 * DAY, 2 * DAY, &|_| policy.clone());
    assert!(
        op.logged("the KSK rollover ends").is_some(),
        "{:?}",
        op.history.log
    );
    assert_eq!(op.history.parent.len(), 3, "initial DS, both, new only");
    check_resolver_view(&op.history, DELAYS).unwrap();
}

#[test]
fn csk_rollover_pre_publishes_the_new_key_and_keeps_every_resolver_view_valid() {
    let mut op = Operator::new();
    op.parent_follows_cds = true;
    let policy = policy_text(13, "csk", "csk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 16 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    let started = op.logged("Csk rollover started").expect("a CSK rollover started");
    let ready = op.logged("the new CSK is ready").expect("the new CSK signed");
    let removed = op
        .logged("the old CSK is removed")
        .expect("the old CSK was removed");
    assert!(started < ready && ready < removed, "{:?}", h.log);
    // pre-publication: Dprp + TTLkey before the new key signs zone data; the old key stays until the data it
    // signed alone has left the caches (Dprp + the zone's largest TTL, one day)
    assert!(ready - started >= HOUR + HOUR);
    assert!(removed - ready >= HOUR + DAY);
    let old = dnskey_tags(snapshot_at(h, started - 1), true);
    let both = dnskey_tags(snapshot_at(h, started), true);
    assert_eq!((old.len(), both.len()), (1, 2));
    let new: Vec<u16> = both.iter().copied().filter(|t| !old.contains(t)).collect();
    // phase 1: published, signs the DNSKEY RRset beside the old key, not the zone; CDS/CDNSKEY name the old key
    let z = snapshot_at(h, started);
    assert_eq!(signer_tags(z, rtype::DNSKEY), both);
    assert_eq!(signer_tags(z, rtype::SOA), old);
    assert_eq!(signer_tags(z, rtype::NS), old);
    assert_eq!(cdnskey_tags(z), old);
    // phase 2: the new key signs the zone, CDS/CDNSKEY name it, the old key still signs the DNSKEY RRset
    let z = snapshot_at(h, ready);
    assert_eq!(signer_tags(z, rtype::DNSKEY), both);
    assert_eq!(signer_tags(z, rtype::SOA), new);
    assert_eq!(cdnskey_tags(z), new);
    // then the old key is gone
    let z = &h.snapshots.last().unwrap().1;
    assert_eq!(dnskey_tags(z, true), new);
    assert_eq!(signer_tags(z, rtype::DNSKEY), new);
    assert_eq!(h.parent.len(), 2);
    assert!(h.parent[1].0 > ready && h.parent[1].0 + DELAYS.parent + DELAYS.ds_ttl <= removed);
    check_resolver_view(h, DELAYS).unwrap();
    // the wrong schedule: the new key signs the zone as soon as it is published (no pre-publication)
    // (caught for the right reason: a DNSKEY RRset without the new key, data signed by the new key only)
    let err = check_resolver_view(&published_early(h, started, ready), DELAYS).unwrap_err();
    let (dnskeys, sigs) = err.split_once("; its RRSIGs are by keys ").expect(&err);
    let dnskeys = dnskeys.rsplit_once("(keys ").expect(&err).1;
    assert!(
        sigs == format!("{new:?}") && dnskeys == format!("{old:?})"),
        "{err}"
    );
}

#[test]
fn algorithm_rollover_from_8_to_13_keeps_every_resolver_view_valid() {
    let mut op = Operator::new();
    let t0 = start();
    let switch = t0 + 3 * DAY;
    let rsa = policy_text(8, "ksk-zsk", "");
    let ecdsa = policy_text(13, "ksk-zsk", "");
    op.run(t0, t0 + 10 * DAY, 2 * DAY, &|t| {
        if t < switch { rsa.clone() } else { ecdsa.clone() }
    });
    let h = &op.history;
    let started = op.logged("Algorithm rollover started").expect("started");
    let published = op
        .logged("the new algorithm's DNSKEYs are published")
        .expect("published");
    let removed = op
        .logged("the old algorithm's signatures are removed")
        .expect("ended");
    assert!(started < published && published < removed);
    // while signatures propagate, every RRset is signed with both algorithms and the new DNSKEYs are not published
    let first = &h.snapshots.iter().find(|(t, _)| *t == started).unwrap().1;
    let algs = |z: &Zone, t: u16| -> Vec<u8> {
        let mut v: Vec<u8> = z
            .records
            .iter()
            .filter(|r| r.rtype == t)
            .map(|r| {
                if t == rtype::RRSIG {
                    Rrsig::from_wire(&r.rdata).unwrap().algorithm
                } else {
                    Dnskey::from_wire(&r.rdata).unwrap().algorithm
                }
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    assert_eq!(algs(first, rtype::RRSIG), vec![8, 13]);
    assert_eq!(algs(first, rtype::DNSKEY), vec![8]);
    let last = &h.snapshots.last().unwrap().1;
    assert_eq!(algs(last, rtype::RRSIG), vec![13]);
    assert_eq!(algs(last, rtype::DNSKEY), vec![13]);
    assert_eq!(h.parent.len(), 2);
    check_resolver_view(h, DELAYS).unwrap();
    // the wrong schedule: the new DNSKEYs published with the first new signatures, before those propagated
    let err = check_resolver_view(&published_early(h, started, published), DELAYS).unwrap_err();
    assert!(err.contains("does not validate"), "{err}");
}

#[test]
fn readme_rollover_example_works() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("## Key rollovers").nth(1).unwrap();
    let policy = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("policy.toml"), policy).unwrap();
    std::fs::write(d.join("example.zone"), zone_text(0)).unwrap();
    std::fs::create_dir(d.join("keys")).unwrap();
    let s = |p: &str| d.join(p).to_str().unwrap().to_string();
    let (zone, pol, keys, signed) = (
        s("example.zone"),
        s("policy.toml"),
        s("keys"),
        s("example.zone.signed"),
    );
    let out = cli(&[
        "keys", "sign", &zone, "--policy", &pol, "-K", &keys, "-f", &signed,
    ]);
    assert!(out.contains("to do: publish this DS at the parent"), "{out}");
    assert_validators(Path::new(&signed));
    // the state file is private
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("keys/dnssec-state.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // a parent without the DS: refused, nothing recorded
    std::fs::write(d.join("parent-ds.txt"), "").unwrap();
    let refused = Command::new(bin())
        .args([
            "keys",
            "ds-seen",
            "example.",
            "-K",
            &keys,
            "--parent-ds",
            &s("parent-ds.txt"),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lacks the DS"));
    std::fs::write(d.join("parent-ds.txt"), ds_file_text(&parse_ds_lines(&out))).unwrap();
    let seen = cli(&[
        "keys",
        "ds-seen",
        "example.",
        "-K",
        &keys,
        "--parent-ds",
        &s("parent-ds.txt"),
    ]);
    assert!(seen.contains("confirmed"), "{seen}");
    let again = cli(&[
        "keys",
        "sign",
        &zone,
        "--policy",
        &pol,
        "-K",
        &keys,
        "-f",
        &signed,
        "--previous",
        &signed,
    ]);
    assert!(!again.contains("to do:"), "{again}");
    assert!(again.contains("RRSIGs: kept"), "{again}");
    let status = cli(&[
        "keys", "status", "example.", "--policy", &pol, "-K", &keys, "--signed", &signed,
    ]);
    assert!(
        status.contains("Ksk\tActive") && status.contains("Zsk\tActive"),
        "{status}"
    );
    assert!(status.contains("signatures expiring soonest"), "{status}");
    assert!(status.contains("next: "), "{status}");
}

#[test]
fn bad_policy_and_state_files_are_refused_naming_file_and_line() {
    use dnssec_sign::rollover::{KeyState, Policy, RolloverError};
    let text = policy_text(13, "ksk-zsk", "zsk-lifetime = \"10 days\"");
    match Policy::parse(&text, Path::new("p.toml")) {
        Err(RolloverError::BadFile { file, line, message }) => {
            assert_eq!(file, Path::new("p.toml"));
            assert_eq!(
                line,
                1 + text.lines().position(|l| l.starts_with("zsk-lifetime")).unwrap()
            );
            assert!(message.contains("unit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let text = policy_text(13, "ksk-zsk", "zsk-lifetim = 5");
    let err = Policy::parse(&text, Path::new("p.toml")).unwrap_err().to_string();
    assert!(
        err.starts_with("p.toml:5:") && err.contains("zsk-lifetim"),
        "{err}"
    );
    let text = policy_text(7, "ksk-zsk", "");
    let err = Policy::parse(&text, Path::new("p.toml")).unwrap_err().to_string();
    assert!(err.starts_with("p.toml:2:"), "{err}");
    let state =
        "zone = \"example.\"\n\n[[key]]\nsource = \"local:x\"\nrole = \"ksk\"\nstatus = \"sleeping\"\n";
    let err = KeyState::parse(state, Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("s.toml:6:"), "{err}");
}

#[test]
fn zsk_rollover_with_softhsm_keys_keeps_every_resolver_view_valid() {
    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} missing: .ci/run installs softhsm2"
    );
    let mut op = Operator::new();
    let d = op.dir.path().to_path_buf();
    std::fs::create_dir(d.join("tokens")).unwrap();
    let conf = d.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            d.join("tokens").display()
        ),
    )
    .unwrap();
    let init = Command::new(tool("softhsm2-util"))
        .args([
            "--init-token",
            "--free",
            "--label",
            "dnssec",
            "--so-pin",
            "5678",
            "--pin",
            "1234",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    op.env = vec![
        ("SOFTHSM2_CONF".into(), conf.to_str().unwrap().into()),
        ("DNSSEC_SIGN_PKCS11_PIN".into(), "1234".into()),
    ];
    op.extra_sign_args = ["--pkcs11-module", MODULE, "--pkcs11-token", "dnssec"]
        .map(String::from)
        .to_vec();
    let policy = policy_text(13, "ksk-zsk", "key-source = \"pkcs11\"\nzsk-lifetime = \"10d\"");
    let t0 = start();
    op.run(t0, t0 + 13 * DAY, 2 * DAY, &|_| policy.clone());
    assert!(op.logged("Zsk rollover started").is_some());
    assert!(
        op.logged("the old ZSK is removed").is_some(),
        "{:?}",
        op.history.log
    );
    let state = state_text(&op);
    assert_eq!(state.matches("source = \"pkcs11:").count(), 3, "{state}");
    assert!(!state.contains("source = \"local:"), "{state}");
    check_resolver_view(&op.history, DELAYS).unwrap();
}

#[path = "../../examples/support/fixture_primes.rs"]
mod fixture_primes;

/// A combined key in an in-process 3-of-5 cluster rolled from algorithm 8 (an RSA key dealt from the fixture
/// primes) to 13 (a P-256 key the nodes make by distributed key generation when the rollover starts), signed
/// through the library with the cluster as key source.
#[test]
fn algorithm_rollover_of_a_cluster_key_from_dealt_rsa_to_dkg_ecdsa() {
    use dnssec_sign::rollover::{Policy, Sources, sign_managed};
    use std::sync::Arc;
    use tcrypto_net::client::blocking::BlockingCluster;
    use tcrypto_net::client::embedded::EmbeddedNodes;
    use tcrypto_net::coordinator::CoordinatorConfig;
    use tcrypto_net::transport::identity::TlsIdentity;
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(5, &[coordinator.fingerprint()]).unwrap();
    let cluster =
        BlockingCluster::connect_tls(&coordinator, &nodes.addresses, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(std::time::Duration::from_secs(10)), 5);
    let mut rng = rand::rng();
    let (pk, shares) = fixture_primes::rsa2048_from_fixture_primes(3, 5, &mut rng).unwrap();
    let dealt = cluster.import_rsa_shares(&pk, &shares, &mut rng).unwrap();
    let cluster = Arc::new(cluster);
    let mut op = Operator::new();
    let c = cluster.clone();
    op.library = Some(Box::new(move |now, zf, policy, keys, out, prev| {
        let policy = Policy::read(policy).unwrap();
        let zone = dnssec_sign::read_zone_file(zf, Some(&name("example."))).unwrap();
        let mut sources = Sources::local(keys, policy.rsa_bits);
        sources.kind = policy.key_source.clone();
        sources.cluster = Some(c.clone());
        sources.cluster_threshold = 3;
        let mut opts = dnssec_sign::SignOptions::new(now);
        opts.serial = dnssec_sign::SerialPolicy::UnixTime;
        if let Some(prev) = prev {
            let old = dnssec_sign::read_zone_file(prev, Some(&name("example."))).unwrap();
            opts.previous = Some(Arc::new(dnssec_sign::sign::Previous::new(old)));
        }
        let (signed, stats, plan, state) = sign_managed(&policy, zone, &mut sources, opts).unwrap();
        dnssec_sign::write_zone_file(out, &signed.origin, &signed.records).unwrap();
        state.write(keys).unwrap();
        format!(
            "{}RRSIGs: kept {}, made {}, dropped {}\n",
            plan.report(),
            stats.kept,
            stats.rrsigs,
            stats.dropped
        )
    }));
    let t0 = start();
    let switch = t0 + 3 * DAY;
    let rsa = policy_text(8, "csk", "key-source = \"cluster\"");
    let ecdsa = policy_text(13, "csk", "key-source = \"cluster\"");
    op.run(t0, t0 + 9 * DAY, 2 * DAY, &|t| {
        if t < switch { rsa.clone() } else { ecdsa.clone() }
    });
    assert!(op.logged("Algorithm rollover started").is_some());
    assert!(
        op.logged("the old algorithm's signatures are removed").is_some(),
        "{:?}",
        op.history.log
    );
    let state = state_text(&op);
    assert!(
        state.contains(&format!("source = \"cluster:{dealt}\"")),
        "{state}"
    );
    assert_eq!(state.matches("source = \"cluster:").count(), 2, "{state}");
    check_resolver_view(&op.history, DELAYS).unwrap();
    drop(nodes);
}

#[test]
fn no_ksk_leaves_the_zone_while_the_parent_has_not_confirmed_the_new_ds() {
    let mut op = Operator::new();
    let policy = policy_text(13, "ksk-zsk", "ksk-lifetime = \"10d\"");
    let t0 = start();
    // the operator publishes the first DS, then never touches the parent again
    op.idle_from = t0 + 5 * DAY;
    op.run(t0, t0 + 30 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    assert!(op.logged("Ksk rollover started").is_some());
    assert!(op.logged("the new KSK is ready").is_some(), "{:?}", h.log);
    assert!(op.logged("the old KSK is removed").is_none(), "{:?}", h.log);
    assert_eq!(h.parent.len(), 1);
    // the last version still has the old KSK beside the new one, and the tool still asks for the DS
    let last_run = h.log.last().unwrap().0;
    assert!(
        h.log
            .iter()
            .any(|(t, l)| *t == last_run && l.contains("to do: add at the parent")),
        "{:?}",
        h.log
    );
    let last = &h.snapshots.last().unwrap().1;
    let first_ksk = dnskey_tags(&h.snapshots[0].1, true);
    let ksks = dnskey_tags(last, true);
    assert_eq!(ksks.len(), 2);
    assert!(ksks.contains(&first_ksk[0]));
    assert_eq!(signer_tags(last, rtype::DNSKEY), ksks);
    check_resolver_view(h, DELAYS).unwrap();
    // the status says where the rollover stands and what it waits for
    let status = cli(&[
        "keys",
        "status",
        "example.",
        "--policy",
        op.dir.path().join("policy.toml").to_str().unwrap(),
        "-K",
        op.keys.to_str().unwrap(),
        "--now",
        &last_run.to_string(),
    ]);
    assert!(status.contains("rollover: Ksk, phase 2"), "{status}");
    assert!(status.contains("Ksk\tIncoming\tyes\tkeys\tyes"), "{status}");
    assert!(status.contains("Ksk\tOutgoing\tyes\tkeys\tyes"), "{status}");
    assert!(status.contains("to do: add at the parent"), "{status}");
    assert!(status.contains("next: waits for the step above"), "{status}");
    // ds-seen with the parent's unchanged DS set is refused
    let f = op.dir.path().join("parent-ds.txt");
    std::fs::write(&f, ds_file_text(&op.current_parent())).unwrap();
    let out = Command::new(bin())
        .args([
            "keys",
            "ds-seen",
            "example.",
            "-K",
            op.keys.to_str().unwrap(),
            "--parent-ds",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lacks the DS"));
}

#[test]
fn a_damaged_state_file_stops_the_run_naming_file_and_line_and_writes_nothing() {
    let mut op = Operator::new();
    let policy = policy_text(13, "ksk-zsk", "");
    let t0 = start();
    op.run(t0, t0, DAY, &|_| policy.clone());
    let state_file = op.keys.join("dnssec-state.toml");
    let good = std::fs::read_to_string(&state_file).unwrap();
    let bad = good.replacen("role = \"zsk\"", "role = \"zsk\"\nrole = \"csk\"", 1);
    std::fs::write(&state_file, &bad).unwrap();
    // toml points at the first or the second `role`
    let second = 1 + bad.lines().position(|l| l == "role = \"csk\"").unwrap();
    let d = op.dir.path();
    let out_file = d.join("never.signed");
    let out = Command::new(bin())
        .args([
            "keys",
            "sign",
            d.join("example.zone").to_str().unwrap(),
            "--policy",
        ])
        .arg(d.join("policy.toml"))
        .arg("-K")
        .arg(&op.keys)
        .arg("-f")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let named = |line: usize| err.contains(&format!("{}:{line}: duplicate key", state_file.display()));
    assert!(named(second) || named(second - 1), "{err}");
    assert!(!out_file.exists());
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), bad);
}

/// The `dnssec-sign` binary itself (`keys sign --cluster --now`, one process per step) rolls a combined key made
/// by distributed key generation on five real `tcrypto-node` processes (3 of 5): the first CSK and its successor
/// come from the daemons, every version passes the validators, the parent follows CDS, and the resolver view stays
/// valid. Two daemons are killed (`kill -9`) during the rollover: the remaining three sign on.
#[test]
fn csk_rollover_of_a_cluster_key_on_node_daemons_through_the_command_line() {
    use tcrypto_net::testing::{NodeProc, node_binary, pin_peers, write_coordinator_config};
    use tcrypto_net::transport::identity::TlsIdentity;
    let mut op = Operator::new();
    let d = op.dir.path().to_path_buf();
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let node_bin = node_binary();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| NodeProc::create(&node_bin, "rollover test", &d, i, 60, &coordinator))
        .collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let config = write_coordinator_config(&d, &coordinator, &nodes, 2000);
    op.extra_sign_args = ["--cluster", config.to_str().unwrap(), "--cluster-threshold", "3"]
        .map(String::from)
        .to_vec();
    op.parent_follows_cds = true;
    let policy = policy_text(13, "csk", "key-source = \"cluster\"\ncsk-lifetime = \"3d\"");
    let t0 = start();
    op.run(t0, t0 + 3 * DAY, 2 * DAY, &|_| policy.clone());
    assert!(
        op.logged("Csk rollover started").is_some(),
        "{:?}",
        op.history.log
    );
    // two of five daemons die in the middle of the rollover; the other three are enough
    nodes[0].kill();
    nodes[3].kill();
    op.run(t0 + 3 * DAY + 1, t0 + 6 * DAY, 2 * DAY, &|_| policy.clone());
    let h = &op.history;
    let ready = op.logged("the new CSK is ready").expect("the new CSK signed");
    let removed = op
        .logged("the old CSK is removed")
        .expect("the old CSK was removed");
    assert!(ready < removed);
    assert!(
        ready > t0 + 3 * DAY,
        "the new key signed after the daemons were killed"
    );
    let state = state_text(&op);
    assert_eq!(state.matches("source = \"cluster:").count(), 2, "{state}");
    assert!(!state.contains("source = \"local:"), "{state}");
    assert_eq!(dnskey_tags(&h.snapshots.last().unwrap().1, true).len(), 1);
    assert_eq!(h.parent.len(), 2, "the first DS, then the new one");
    check_resolver_view(h, DELAYS).unwrap();
}
