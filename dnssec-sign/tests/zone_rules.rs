//! The rules a signer must follow on real zones: zone cuts, glue, occluded data, empty
//! non-terminals, wildcards, CNAME, out-of-zone data, $INCLUDE, name case, TTLs, key roles,
//! serial policies, malformed input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use dnssec_sign::denial::{nsec3_hash, nsec3_owner};
use dnssec_sign::keys::{Algorithm, DsDigest, ZoneSigningKey, ds_rdata, verify_signature};
use dnssec_sign::rdata::{Nsec3, Nsec3Param, Rrsig, decode_bitmap, rrsig_type_covered, rtype};
use dnssec_sign::sign::{SerialPolicy, SignOptions, signed_data};
use dnssec_sign::zone::{Record, Zone, soa_serial_minimum};
use dnssec_sign::{Denial, Name, ZoneError};

fn signed(denial: Denial) -> Zone {
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(1_700_000_000);
    opts.denial = denial;
    sign(load("features.zone", "example."), &[&ksk, &zsk], &opts)
}

fn opt_out() -> Denial {
    Denial::Nsec3 {
        params: Nsec3Param {
            hash_algorithm: 1,
            flags: 0,
            iterations: 0,
            salt: vec![],
        },
        opt_out: true,
    }
}

/// Types covered by RRSIGs at `owner`.
fn signed_types(z: &Zone, owner: &str) -> BTreeSet<u16> {
    let o = name(owner);
    z.records
        .iter()
        .filter(|r| r.owner == o && r.rtype == rtype::RRSIG)
        .map(|r| rrsig_type_covered(&r.rdata).unwrap())
        .collect()
}

fn types_at(z: &Zone, owner: &str, t: u16) -> Vec<Record> {
    let o = name(owner);
    z.records
        .iter()
        .filter(|r| r.owner == o && r.rtype == t)
        .cloned()
        .collect()
}

fn nsec_bitmap(z: &Zone, owner: &str) -> Option<Vec<u16>> {
    let r = types_at(z, owner, rtype::NSEC).into_iter().next()?;
    let (_, used) = Name::read_wire(&r.rdata).unwrap();
    Some(decode_bitmap(&r.rdata[used..]).unwrap())
}

fn nsec3_of(z: &Zone, owner: &str) -> Option<Nsec3> {
    let h = nsec3_hash(&name(owner), &[], 0);
    let o = nsec3_owner(&h, &z.origin).unwrap();
    z.records
        .iter()
        .find(|r| r.owner == o && r.rtype == rtype::NSEC3)
        .map(|r| Nsec3::from_wire(&r.rdata).unwrap())
}

#[test]
fn glue_records_are_not_signed() {
    let z = signed(Denial::Nsec);
    assert!(signed_types(&z, "ns1.sub.example.").is_empty());
    assert!(
        types_at(&z, "ns1.sub.example.", rtype::A).len() == 1,
        "glue is kept"
    );
}

#[test]
fn delegation_ns_is_not_signed_but_ds_is() {
    let z = signed(Denial::Nsec);
    assert_eq!(signed_types(&z, "sub.example."), BTreeSet::from([rtype::NSEC]));
    assert_eq!(
        signed_types(&z, "secure.example."),
        BTreeSet::from([rtype::DS, rtype::NSEC])
    );
}

#[test]
fn delegation_nsec_bitmap_lists_only_ns_ds_rrsig_nsec() {
    let z = signed(Denial::Nsec);
    // sub. also has an (occluded) A record: it must not show up
    assert_eq!(
        nsec_bitmap(&z, "sub.example.").unwrap(),
        vec![rtype::NS, rtype::RRSIG, rtype::NSEC]
    );
    assert_eq!(
        nsec_bitmap(&z, "secure.example.").unwrap(),
        vec![rtype::NS, rtype::DS, rtype::RRSIG, rtype::NSEC]
    );
}

#[test]
fn occluded_names_below_a_cut_get_no_nsec_no_nsec3_and_no_rrsig() {
    let z = signed(Denial::Nsec);
    for owner in ["deep.below.sub.example.", "ns1.sub.example."] {
        assert!(nsec_bitmap(&z, owner).is_none(), "{owner}");
        assert!(signed_types(&z, owner).is_empty(), "{owner}");
    }
    let z = signed(Denial::nsec3_rfc9276());
    for owner in [
        "deep.below.sub.example.",
        "ns1.sub.example.",
        "below.sub.example.",
    ] {
        assert!(nsec3_of(&z, owner).is_none(), "{owner}");
    }
}

#[test]
fn empty_non_terminals_get_an_empty_nsec3_and_no_nsec() {
    let z = signed(Denial::nsec3_rfc9276());
    for ent in [
        "b.c.ent.example.",
        "c.ent.example.",
        "ent.example.",
        "x.example.",
        "mixed.example.",
    ] {
        assert_eq!(nsec3_of(&z, ent).expect(ent).types, Vec::<u16>::new(), "{ent}");
    }
    let z = signed(Denial::Nsec);
    assert!(nsec_bitmap(&z, "c.ent.example.").is_none());
}

#[test]
fn nsec3_opt_out_really_omits_insecure_delegations_and_their_ents() {
    let z = signed(opt_out());
    assert!(nsec3_of(&z, "sub.example.").is_none());
    assert!(nsec3_of(&z, "insecure.x.example.").is_none());
    assert!(
        nsec3_of(&z, "x.example.").is_none(),
        "ENT above an insecure delegation only"
    );
    assert!(
        nsec3_of(&z, "secure.example.").is_some(),
        "secure delegations stay"
    );
    assert!(
        z.records
            .iter()
            .filter(|r| r.rtype == rtype::NSEC3)
            .all(|r| r.rdata[1] == 1),
        "opt-out flag"
    );
    // without opt-out they are there, with a bitmap of NS only (nothing signed at them)
    let z = signed(Denial::nsec3_rfc9276());
    assert_eq!(nsec3_of(&z, "sub.example.").unwrap().types, vec![rtype::NS]);
    assert_eq!(
        nsec3_of(&z, "secure.example.").unwrap().types,
        vec![rtype::NS, rtype::DS, rtype::RRSIG]
    );
}

#[test]
fn apex_nsec3_bitmap_includes_nsec3param_and_rrsig_but_not_nsec3() {
    let z = signed(Denial::nsec3_rfc9276());
    assert_eq!(
        nsec3_of(&z, "example.").unwrap().types,
        vec![
            rtype::NS,
            rtype::SOA,
            rtype::MX,
            rtype::RRSIG,
            rtype::DNSKEY,
            rtype::NSEC3PARAM
        ]
    );
}

#[test]
fn wildcard_rrsig_labels_do_not_count_the_asterisk() {
    let z = signed(Denial::Nsec);
    let sig = types_at(&z, "*.wild.example.", rtype::RRSIG);
    assert_eq!(Rrsig::from_wire(&sig[0].rdata).unwrap().labels, 2);
    let sig = types_at(&z, "*.example.", rtype::RRSIG);
    assert!(
        sig.iter()
            .all(|s| Rrsig::from_wire(&s.rdata).unwrap().labels == 1)
    );
}

#[test]
fn cname_owner_is_signed_and_its_bitmap_is_cname_rrsig_nsec() {
    let z = signed(Denial::Nsec);
    assert_eq!(
        nsec_bitmap(&z, "www.mixed.example.").unwrap(),
        vec![rtype::CNAME, rtype::RRSIG, rtype::NSEC]
    );
}

#[test]
fn names_below_a_dname_are_occluded_and_the_dname_is_signed() {
    let z = signed(Denial::Nsec);
    assert!(signed_types(&z, "alias.example.").contains(&39));
}

#[test]
fn out_of_zone_data_is_dropped() {
    let z = signed(Denial::Nsec);
    assert!(z.records.iter().all(|r| r.owner.is_subdomain_of(&z.origin)));
    let unsigned = load("features.zone", "example.");
    assert!(unsigned.records.iter().any(|r| r.owner == name("foo.other.")));
}

#[test]
fn include_with_origin_applies_that_origin_to_the_included_file_only() {
    let z = load("features.zone", "example.");
    assert_eq!(types_at(&z, "inc.example.", rtype::TXT).len(), 1);
    assert_eq!(types_at(&z, "host.inc.example.", rtype::A).len(), 1);
    let z = signed(Denial::Nsec);
    assert!(signed_types(&z, "host.inc.example.").contains(&rtype::A));
}

#[test]
fn mixed_case_owner_names_are_signed_in_lowercase_canonical_form() {
    let z = signed(Denial::Nsec);
    assert!(!types_at(&z, "www.mixed.example.", rtype::CNAME).is_empty());
    assert!(
        z.records
            .iter()
            .all(|r| !r.owner.to_string().chars().any(|c| c.is_ascii_uppercase()))
    );
    // MX target "Mail" is lowercased in the signed data (RFC 4034 §6.2)
    let mx = types_at(&z, "example.", rtype::MX);
    assert_eq!(&mx[0].rdata[2..], name("mail.example.").wire());
}

#[test]
fn unknown_types_are_kept_signed_and_listed_in_bitmaps() {
    let z = signed(Denial::Nsec);
    assert_eq!(
        types_at(&z, "unknown.example.", 65280)[0].rdata.as_ref(),
        &[10, 0, 0, 1]
    );
    assert!(nsec_bitmap(&z, "unknown.example.").unwrap().contains(&65280));
    assert!(signed_types(&z, "unknown.example.").contains(&65280));
}

#[test]
fn nsec_and_nsec3_ttl_is_the_lower_of_soa_ttl_and_soa_minimum() {
    // SOA TTL 3600, MINIMUM 300 (RFC 9077)
    for d in [Denial::Nsec, Denial::nsec3_rfc9276()] {
        let z = signed(d);
        assert!(
            z.records
                .iter()
                .filter(|r| matches!(r.rtype, rtype::NSEC | rtype::NSEC3))
                .all(|r| r.ttl == 300)
        );
    }
}

#[test]
fn ksk_signs_the_dnskey_rrset_and_zsk_signs_everything_else() {
    let (ksk, zsk) = fixture_keys(Algorithm::Ed25519);
    let mut opts = SignOptions::new(1_700_000_000);
    opts.cds = true;
    let z = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
    for r in z.records.iter().filter(|r| r.rtype == rtype::RRSIG) {
        let s = Rrsig::from_wire(&r.rdata).unwrap();
        let key_rrset = matches!(s.type_covered, rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY);
        let want = if key_rrset {
            ksk.dnskey().key_tag()
        } else {
            zsk.dnskey().key_tag()
        };
        assert_eq!(
            s.key_tag, want,
            "RRSIG over type {} at {}",
            s.type_covered, r.owner
        );
    }
    // CDS is the SHA-256 DS of the KSK, CDNSKEY its DNSKEY
    assert_eq!(
        types_at(&z, "example.", rtype::CDS)[0].rdata.as_ref(),
        ds_rdata(&z.origin, ksk.dnskey(), DsDigest::Sha256).as_slice()
    );
    assert_eq!(
        types_at(&z, "example.", rtype::CDNSKEY)[0].rdata.to_vec(),
        ksk.dnskey().to_wire()
    );
}

#[test]
fn rrsig_times_come_from_the_injected_clock_with_jitter_inside_the_window() {
    let (ksk, zsk) = fixture_keys(Algorithm::Ed25519);
    let mut opts = SignOptions::new(1_700_000_000);
    opts.validity = 10 * 86400;
    opts.jitter = 86400;
    let z = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
    let mut exps = BTreeSet::new();
    for r in z.records.iter().filter(|r| r.rtype == rtype::RRSIG) {
        let s = Rrsig::from_wire(&r.rdata).unwrap();
        assert_eq!(s.inception, 1_700_000_000 - 3600);
        assert!(s.expiration <= 1_700_000_000 + 10 * 86400 && s.expiration >= 1_700_000_000 + 9 * 86400);
        exps.insert(s.expiration);
    }
    assert!(exps.len() > 5, "jitter spreads expirations");
}

#[test]
fn rrsig_original_ttl_is_the_rrset_ttl_and_signatures_verify() {
    let (ksk, zsk) = fixture_keys(Algorithm::RsaSha256);
    let z = sign(
        load("features.zone", "example."),
        &[&ksk, &zsk],
        &SignOptions::new(1_700_000_000),
    );
    let r = types_at(&z, "*.wild.example.", rtype::RRSIG).remove(0);
    let s = Rrsig::from_wire(&r.rdata).unwrap();
    let rrset = types_at(&z, "*.wild.example.", rtype::TXT);
    assert_eq!(s.original_ttl, rrset[0].ttl);
    assert!(verify_signature(
        zsk.dnskey(),
        &signed_data(&s, &rrset),
        &s.signature
    ));
    // RSA signatures are PKCS#1 v1.5 over the whole modulus length (RFC 5702)
    assert_eq!(s.signature.len(), 256);
}

#[test]
fn ecdsa_rrsigs_are_raw_64_octet_r_and_s_per_rfc6605() {
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let z = sign(
        load("features.zone", "example."),
        &[&ksk, &zsk],
        &SignOptions::new(1_700_000_000),
    );
    for r in z.records.iter().filter(|r| r.rtype == rtype::RRSIG) {
        let s = Rrsig::from_wire(&r.rdata).unwrap();
        assert_eq!(s.signature.len(), 64, "not DER");
        // nonces are random, so r begins with 0x30 (a SEQUENCE tag) once in 256 signatures:
        // parse instead of looking at the first octet
        assert!(p256::ecdsa::Signature::from_slice(&s.signature).is_ok());
        assert!(p256::ecdsa::Signature::from_der(&s.signature).is_err(), "DER");
    }
}

#[test]
fn soa_serial_policies_keep_increment_unixtime_and_date() {
    let now = 1_700_000_000; // 2023-11-14
    assert_eq!(SerialPolicy::Keep.apply(5, now), 5);
    assert_eq!(SerialPolicy::Increment.apply(u32::MAX, now), 0);
    assert_eq!(SerialPolicy::UnixTime.apply(5, now), 1_700_000_000);
    assert_eq!(SerialPolicy::UnixTime.apply(1_800_000_000, now), 1_800_000_001);
    assert_eq!(SerialPolicy::Date.apply(2023010101, now), 2023111400);
    assert_eq!(SerialPolicy::Date.apply(2023111400, now), 2023111401);
    let (ksk, zsk) = fixture_keys(Algorithm::Ed25519);
    let mut opts = SignOptions::new(now);
    opts.serial = SerialPolicy::Date;
    let z = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
    // the zone's serial 2024010101 is already newer than today's date serial
    assert_eq!(soa_serial_minimum(&z.soa().unwrap().rdata).unwrap().0, 2024010102);
}

#[test]
fn malformed_lines_give_an_error_naming_file_and_line_without_panicking() {
    let cases = [
        ("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nwww A 192.0.2.300\n", 3),
        ("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\n\nwww BOGUS data\n", 4),
        ("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nmx MX ten mail\n", 3),
        ("$TTL 300\n@ SOA ns1 admin ( 1 2 3\n 4 5\n", 2),
        ("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\ntxt TXT \"unterminated\n", 3),
        ("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nx TYPE999 \\# 3 0102\n", 3),
        (
            "$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nx RRSIG A 13 2 300 nottime 20240101000000 1 example. AAAA\n",
            3,
        ),
        ("@ SOA ns1 admin 1 2 3 4 5\n", 1),
        ("$TTL 300\n$INCLUDE /nonexistent/file\n", 2),
        ("$TTL 300\nbad..name A 192.0.2.1\n", 2),
    ];
    for (text, line) in cases {
        let err = dnssec_sign::parse_zone(text, std::path::Path::new("bad.zone"), Some(&name("example.")))
            .expect_err(text);
        match &err {
            ZoneError::Syntax { file, line: l, .. } => {
                assert_eq!(file, std::path::Path::new("bad.zone"));
                assert_eq!(*l, line, "{text:?}: {err}");
            }
            other => panic!("{text:?}: expected a syntax error, got {other}"),
        }
        assert!(err.to_string().starts_with(&format!("bad.zone:{line}:")), "{err}");
    }
}

#[test]
fn signed_zone_round_trips_through_the_zone_file_writer_and_reader() {
    let z = signed(Denial::nsec3_rfc9276());
    let dir = tempfile::tempdir().unwrap();
    let p = write_zone(dir.path(), "rt.signed", &z);
    let mut back = dnssec_sign::read_zone_file(&p, Some(&name("example."))).unwrap();
    back.canonicalize();
    assert_eq!(back.records, z.records);
}

#[test]
fn every_algorithm_signs_every_rrset_when_keys_of_two_algorithms_are_used() {
    let (ksk13, zsk13) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let (ksk15, _) = fixture_keys(Algorithm::Ed25519);
    let z = sign(
        load("features.zone", "example."),
        &[&ksk13, &zsk13, &ksk15],
        &SignOptions::new(1_700_000_000),
    );
    let p = dnssec_sign::verify::verify_zone(
        &z,
        &dnssec_sign::verify::VerifyOptions {
            now: Some(1_700_000_000),
            require_zonemd: false,
        },
    )
    .unwrap();
    assert!(p.is_empty(), "{p:#?}");
    // Ed25519 has only a KSK: it signs the zone data as well (CSK for its algorithm)
    let ed_sigs_over_a = z
        .records
        .iter()
        .filter(|r| r.rtype == rtype::RRSIG)
        .map(|r| Rrsig::from_wire(&r.rdata).unwrap())
        .filter(|s| s.algorithm == 15 && s.type_covered == rtype::A)
        .count();
    assert!(ed_sigs_over_a > 0);
}

#[test]
fn zone_parser_never_panics_and_what_parses_round_trips_on_mutated_input() {
    let base = std::fs::read_to_string(data("features.zone"))
        .unwrap()
        .replace("$INCLUDE", ";");
    let base = base.as_bytes();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b" \t\n\\\"();$@*.-_0123456789abcdefxyzABZ#\x7f\xc3";
    let mut parsed = 0;
    for round in 0..3000 {
        let mut text = base.to_vec();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() % text.len() as u64) as usize;
            let c = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => text[pos] = c,
                1 => text.insert(pos, c),
                _ => {
                    text.remove(pos);
                }
            }
        }
        let Ok(text) = String::from_utf8(text) else {
            continue;
        };
        let origin = name("example.");
        let Ok(mut zone) = dnssec_sign::parse_zone(&text, std::path::Path::new("m.zone"), Some(&origin))
        else {
            continue;
        };
        parsed += 1;
        zone.canonicalize();
        let mut out = Vec::new();
        dnssec_sign::zonefile::write_records(&mut out, &zone.origin, &zone.records).unwrap();
        let written = String::from_utf8(out).unwrap();
        let mut back = dnssec_sign::parse_zone(&written, std::path::Path::new("w.zone"), Some(&origin))
            .unwrap_or_else(|e| panic!("round {round}: our output does not parse: {e}\n{written}"));
        back.canonicalize();
        assert_eq!(back.records, zone.records, "round {round}");
    }
    assert!(parsed > 100, "only {parsed} mutated zones parsed");
}
