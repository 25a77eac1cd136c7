//! Incremental signing (`SignOptions::previous`, `dnssec-sign sign --previous`): a 10k-record zone signed, then 1%
//! of its RRsets changed, added and removed, signed again from the previous version. The result passes the three
//! validators, holds the same data (and the same RRSIG coverage) as a full signing of the changed zone, and the key
//! was asked for exactly the signatures whose RRset changed or is new (counted, and recomputed independently by
//! comparing the two zones), for NSEC, NSEC3 and NSEC3 opt-out.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dnssec_sign::error::KeyError;
use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::rdata::{Dnskey, rtype};
use dnssec_sign::sign::{Previous, SignOptions, sign_zone};
use dnssec_sign::zone::Zone;
use dnssec_sign::{Name, SerialPolicy};

/// A key that counts the signatures it is asked for.
struct Counting<'a> {
    inner: &'a LocalKey,
    signed: AtomicUsize,
}

impl ZoneSigningKey for Counting<'_> {
    fn owner(&self) -> &Name {
        self.inner.owner()
    }
    fn dnskey(&self) -> &Dnskey {
        self.inner.dnskey()
    }
    fn sign_batch(&self, messages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, KeyError> {
        self.signed.fetch_add(messages.len(), Ordering::Relaxed);
        self.inner.sign_batch(messages)
    }
}

fn refs<'a>(keys: &'a [Counting<'_>]) -> Vec<&'a dyn ZoneSigningKey> {
    keys.iter().map(|k| k as &dyn ZoneSigningKey).collect()
}

/// 10,000 records: 9,000 hosts with an A record, 600 with TXT, 100 delegations with NS, glue and (half) DS.
fn base_zone() -> String {
    let mut z = String::from(
        "$ORIGIN example.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..9_000 {
        z.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    for i in 0..600 {
        z.push_str(&format!("t{i} TXT \"text {i}\"\n"));
    }
    for i in 0..100 {
        z.push_str(&format!("d{i} NS ns.d{i}\nns.d{i} A 198.51.100.{}\n", i % 250));
        if i % 2 == 0 {
            z.push_str(&format!("d{i} DS 12345 13 2 {}\n", "ab".repeat(32)));
        }
    }
    z
}

/// 1% of the RRsets: 60 A records changed, 20 TXT changed, 10 hosts removed, 10 added, one delegation's DS added.
fn changed_zone() -> String {
    let mut z = String::new();
    for line in base_zone().lines() {
        let host: Option<usize> = line
            .strip_prefix('h')
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok());
        let txt: Option<usize> = line
            .strip_prefix('t')
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok());
        match (host, txt) {
            (Some(i), _) if i % 150 == 7 => z.push_str(&format!("h{i} A 172.16.0.{}\n", i % 250)),
            (Some(i), _) if i % 900 == 11 => {}
            (_, Some(i)) if i % 30 == 3 => z.push_str(&format!("t{i} TXT \"changed {i}\"\n")),
            _ => {
                z.push_str(line);
                z.push('\n');
            }
        }
    }
    for i in 0..10 {
        z.push_str(&format!("new{i} AAAA 2001:db8::{i}\n"));
    }
    z.push_str(&format!("d1 DS 54321 13 2 {}\n", "cd".repeat(32)));
    z
}

fn zone(text: &str) -> Zone {
    common::zone_from(text, "example.")
}

/// (owner, type) -> the RRset's records (rdata and TTL).
type RrsetMap = BTreeMap<(Vec<u8>, u16), BTreeSet<(Vec<u8>, u32)>>;

/// Every non-RRSIG RRset of `z`.
fn rrsets(z: &Zone) -> RrsetMap {
    let mut m: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    for r in z.records.iter().filter(|r| r.rtype != rtype::RRSIG) {
        m.entry((r.owner.wire().to_vec(), r.rtype))
            .or_default()
            .insert((r.rdata.to_vec(), r.ttl));
    }
    m
}

/// (owner, type covered) of every RRSIG.
fn coverage(z: &Zone) -> BTreeSet<(Vec<u8>, u16)> {
    z.records
        .iter()
        .filter(|r| r.rtype == rtype::RRSIG)
        .map(|r| {
            (
                r.owner.wire().to_vec(),
                dnssec_sign::rdata::rrsig_type_covered(&r.rdata).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_one_percent_change_signs_only_what_changed_and_validates() {
    let (ksk, zsk) = common::fixture_keys(Algorithm::EcdsaP256Sha256);
    let counting = |k| Counting {
        inner: k,
        signed: AtomicUsize::new(0),
    };
    let asked = |keys: &[Counting<'_>]| {
        keys.iter()
            .map(|k| k.signed.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    let dir = std::env::temp_dir().join(format!("dnssec-incremental-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let now = common::now();
    for (mode, denial) in common::denial_modes() {
        // Signed a day ago (validators check against the real clock).
        let mut opts = SignOptions::new(now - 86400);
        opts.denial = denial;
        opts.jitter = 86400;
        opts.serial = SerialPolicy::Increment;
        let first = [counting(&ksk), counting(&zsk)];
        let (signed, full_stats) = sign_zone(zone(&base_zone()), &refs(&first), &opts, None).unwrap();
        // The previous version as an operator has it: the file written last time, read back.
        let prev_path = common::write_zone(&dir, &format!("{mode}.signed"), &signed);
        let previous = dnssec_sign::read_zone_file(&prev_path, Some(&common::name("example."))).unwrap();

        // Today, the changed zone, from the previous version.
        let mut inc_opts = opts.clone();
        inc_opts.now = now;
        inc_opts.previous = Some(Arc::new(Previous::new(previous.clone())));
        let second = [counting(&ksk), counting(&zsk)];
        let (incremental, stats) = sign_zone(zone(&changed_zone()), &refs(&second), &inc_opts, None).unwrap();
        let made = asked(&second);
        assert_eq!(made, stats.rrsigs, "{mode}");
        assert_eq!(stats.kept + stats.dropped, full_stats.rrsigs, "{mode}");

        // Exactly the RRsets that differ from the previous version (or are new) were signed.
        let before = rrsets(&previous);
        let after = rrsets(&incremental);
        let differing: BTreeSet<_> = coverage(&incremental)
            .into_iter()
            .filter(|k| before.get(k) != after.get(k))
            .collect();
        assert_eq!(made, differing.len(), "{mode}");
        // About 1% changed: the RRsets themselves, the denial records whose links changed, the SOA.
        assert!(
            made * 100 < full_stats.rrsigs * 3,
            "{mode}: {made} of {}",
            full_stats.rrsigs
        );
        assert!(
            stats.kept * 100 > full_stats.rrsigs * 95,
            "{mode}: kept {}",
            stats.kept
        );

        // The same zone a full signing of the changed zone gives, except for which signatures are kept.
        let full_opts = SignOptions {
            previous: None,
            ..inc_opts.clone()
        };
        let (full, _) = sign_zone(
            zone(&changed_zone()),
            &refs(&[counting(&ksk), counting(&zsk)]),
            &full_opts,
            None,
        )
        .unwrap();
        assert_eq!(rrsets(&full), after, "{mode}");
        assert_eq!(coverage(&full), coverage(&incremental), "{mode}");

        let path = common::write_zone(&dir, &format!("{mode}.incremental"), &incremental);
        common::assert_validators_accept(&path, "example.");
        // And our own verifier.
        let problems = dnssec_sign::verify::verify_zone(
            &incremental,
            &dnssec_sign::verify::VerifyOptions {
                now: Some(now),
                require_zonemd: false,
            },
        )
        .unwrap();
        assert!(problems.is_empty(), "{mode}: {problems:?}");
    }
}

#[test]
fn damaged_or_expiring_previous_signatures_are_made_anew() {
    let key = LocalKey::generate(
        &common::name("example."),
        Algorithm::Ed25519,
        true,
        0,
        &mut rand::rng(),
    )
    .unwrap();
    let now = common::now();
    let mut opts = SignOptions::new(now);
    opts.denial = dnssec_sign::Denial::Nsec;
    let text = "$ORIGIN example.\n$TTL 3600\n@ SOA ns1 h 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n";
    let (signed, full) = sign_zone(zone(text), &[&key as &dyn ZoneSigningKey], &opts, None).unwrap();
    // One signature damaged (a flipped bit in the www A RRSIG).
    let mut damaged = signed.clone();
    let www = damaged
        .records
        .iter_mut()
        .find(|r| {
            r.rtype == rtype::RRSIG
                && r.owner == common::name("www.example.")
                && dnssec_sign::rdata::rrsig_type_covered(&r.rdata) == Some(rtype::A)
        })
        .unwrap();
    let mut rdata = www.rdata.to_vec();
    let last = rdata.len() - 1;
    rdata[last] ^= 1;
    www.rdata = rdata.into_boxed_slice();
    let mut again = opts.clone();
    again.previous = Some(Arc::new(Previous::new(damaged)));
    let (_, stats) = sign_zone(zone(text), &[&key as &dyn ZoneSigningKey], &again, None).unwrap();
    assert_eq!((stats.rrsigs, stats.kept), (1, full.rrsigs - 1));
    // Thirty days of validity and a refresh margin of 31 days: nothing is kept.
    again.previous = Some(Arc::new(Previous::new(signed.clone())));
    again.refresh = 31 * 86400;
    let (_, stats) = sign_zone(zone(text), &[&key as &dyn ZoneSigningKey], &again, None).unwrap();
    assert_eq!(
        (stats.rrsigs, stats.kept, stats.dropped),
        (full.rrsigs, 0, full.rrsigs)
    );
    // Another key: nothing of the old key's is kept.
    let other = LocalKey::generate(
        &common::name("example."),
        Algorithm::Ed25519,
        true,
        0,
        &mut rand::rng(),
    )
    .unwrap();
    again.refresh = 0;
    let (_, stats) = sign_zone(zone(text), &[&other as &dyn ZoneSigningKey], &again, None).unwrap();
    assert_eq!(stats.kept, 0);
}
