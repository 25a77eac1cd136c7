//! Known answers from the RFCs: the RFC 4035 and RFC 5155 example zones (our NSEC/NSEC3
//! chains and bitmaps equal the published ones), the RFC 8976 ZONEMD examples, RFC 9276
//! defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dnssec_sign::Denial;
use dnssec_sign::keys::Algorithm;
use dnssec_sign::rdata::{Nsec3Param, present, rtype, type_name};
use dnssec_sign::sign::SignOptions;
use dnssec_sign::verify::{VerifyOptions, verify_zone};
use dnssec_sign::zone::Zone;
use dnssec_sign::zonemd::{self, ZonemdStatus};

/// Denial records of a zone as normalized text lines: owner TTL TYPE RDATA.
fn denial_lines(zone: &Zone, t: u16) -> Vec<String> {
    zone.records
        .iter()
        .filter(|r| r.rtype == t)
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.owner,
                r.ttl,
                type_name(t),
                present(t, &r.rdata).to_lowercase()
            )
        })
        .collect()
}

/// Expected lines from a data file, normalized the same way (bitmap types sorted by number).
fn expected_lines(file: &str, origin: &str) -> Vec<String> {
    let z = load(file, origin);
    let t = z.records[0].rtype;
    denial_lines(&z, t)
}

#[test]
fn rfc4035_appendix_a_nsec_chain_and_bitmaps_equal_the_rfc() {
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(now());
    opts.denial = Denial::Nsec;
    let signed = sign(load("rfc4035-example.zone", "example."), &[&ksk, &zsk], &opts);
    assert_eq!(
        denial_lines(&signed, rtype::NSEC),
        expected_lines("rfc4035-nsec.txt", "example.")
    );
}

#[test]
fn rfc5155_appendix_a_nsec3_chain_and_bitmaps_equal_the_rfc() {
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(now());
    opts.denial = Denial::Nsec3 {
        params: Nsec3Param {
            hash_algorithm: 1,
            flags: 0,
            iterations: 12,
            salt: vec![0xaa, 0xbb, 0xcc, 0xdd],
        },
        opt_out: true,
    };
    let signed = sign(load("rfc5155-example.zone", "example."), &[&ksk, &zsk], &opts);
    let mut got = denial_lines(&signed, rtype::NSEC3);
    let mut want = expected_lines("rfc5155-nsec3.txt", "example.");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let param: Vec<String> = denial_lines(&signed, rtype::NSEC3PARAM);
    assert_eq!(param, vec!["example. 0 NSEC3PARAM 1 0 12 aabbccdd".to_string()]);
}

#[test]
fn rfc9276_defaults_are_sha1_zero_iterations_empty_salt_no_opt_out() {
    let opts = SignOptions::new(0);
    assert_eq!(
        opts.denial,
        Denial::Nsec3 {
            params: Nsec3Param {
                hash_algorithm: 1,
                flags: 0,
                iterations: 0,
                salt: vec![]
            },
            opt_out: false
        }
    );
    let (ksk, zsk) = fixture_keys(Algorithm::Ed25519);
    let signed = sign(
        load("rfc5155-example.zone", "example."),
        &[&ksk, &zsk],
        &SignOptions::new(now()),
    );
    assert_eq!(
        denial_lines(&signed, rtype::NSEC3PARAM),
        vec!["example. 0 NSEC3PARAM 1 0 0 -".to_string()]
    );
    assert!(
        denial_lines(&signed, rtype::NSEC3)
            .iter()
            .all(|l| l.contains(" NSEC3 1 0 0 - "))
    );
}

const RFC8976: [(&str, &str); 5] = [
    ("simple.zone", "example."),
    ("complex.zone", "example."),
    ("multiple.zone", "example."),
    ("uri.arpa.zone", "uri.arpa."),
    ("root-servers.net.zone", "root-servers.net."),
];

#[test]
fn rfc8976_appendix_a_digests_equal_the_published_ones() {
    for (file, origin) in RFC8976 {
        let z = load(file, origin);
        assert_eq!(zonemd::verify(&z).unwrap(), ZonemdStatus::Valid, "{file}");
    }
}

#[test]
fn rfc8976_examples_fail_when_any_covered_record_is_tampered() {
    for (file, origin) in RFC8976 {
        let z = load(file, origin);
        // change the TTL, then the data, of every covered record in turn
        let apex = z.origin.clone();
        for i in 0..z.records.len() {
            let r = &z.records[i];
            let excluded = r.owner == apex
                && (r.rtype == rtype::ZONEMD
                    || (r.rtype == rtype::RRSIG
                        && dnssec_sign::rdata::rrsig_type_covered(&r.rdata) == Some(rtype::ZONEMD)));
            if excluded || !r.owner.is_subdomain_of(&apex) {
                continue;
            }
            let duplicated = z
                .records
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && o.owner == r.owner && o.rtype == r.rtype && o.rdata == r.rdata);
            let mut t = z.clone();
            t.records[i].ttl ^= 1;
            // (a TTL change of one of two identical records leaves the other, digested once)
            assert!(
                duplicated || matches!(zonemd::verify(&t).unwrap(), ZonemdStatus::Invalid(_)),
                "{file}: TTL change of {} not detected",
                r.owner
            );
            let mut t = z.clone();
            let mut rd = t.records[i].rdata.to_vec();
            if let Some(last) = rd.last_mut() {
                *last ^= 1;
            } else {
                rd.push(0);
            }
            t.records[i].rdata = rd.into();
            assert!(
                matches!(zonemd::verify(&t).unwrap(), ZonemdStatus::Invalid(_)),
                "{file}: data change of {} not detected",
                r.owner
            );
        }
    }
}

#[test]
fn rfc8976_digest_excludes_out_of_zone_data_and_counts_duplicates_once() {
    // complex.zone carries an out-of-zone TXT and a duplicated TXT; its published digest
    // only matches if the first is excluded and the second digested once.
    let z = load("complex.zone", "example.");
    assert!(z.records.iter().any(|r| !r.owner.is_subdomain_of(&z.origin)));
    assert_eq!(zonemd::verify(&z).unwrap(), ZonemdStatus::Valid);
}

#[test]
fn rfc8976_uri_arpa_example_passes_our_whole_verifier_at_its_signing_time() {
    // RRSIG, NSEC chain and ZONEMD of a zone signed by someone else (RSASHA256).
    let z = load("uri.arpa.zone", "uri.arpa.");
    let when = dnssec_sign::rdata::parse_time("20210201000000").unwrap() as u64;
    let problems = verify_zone(
        &z,
        &VerifyOptions {
            now: Some(when),
            require_zonemd: true,
        },
    )
    .unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    // and the same zone is out of its validity period today
    let later = verify_zone(
        &z,
        &VerifyOptions {
            now: Some(now()),
            require_zonemd: true,
        },
    )
    .unwrap();
    assert!(later.iter().any(|p| p.message.contains("validity")));
}
