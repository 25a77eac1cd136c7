//! Our verifier rejects broken zones and names the owner: a wrong RRSIG, a missing RRSIG, a
//! broken NSEC/NSEC3 chain, a wrong bitmap, a bad ZONEMD, signatures over glue, expired
//! signatures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dnssec_sign::Denial;
use dnssec_sign::keys::Algorithm;
use dnssec_sign::rdata::{Nsec3, encode_bitmap, rrsig_type_covered, rtype};
use dnssec_sign::sign::SignOptions;
use dnssec_sign::verify::{Problem, VerifyOptions, verify_zone};
use dnssec_sign::zone::Zone;
use dnssec_sign::zonemd::ZonemdHash;

const NOW: u64 = 1_700_000_000;

fn signed(denial: Denial) -> Zone {
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(NOW);
    opts.denial = denial;
    opts.zonemd = vec![ZonemdHash::Sha384];
    sign(load("features.zone", "example."), &[&ksk, &zsk], &opts)
}

fn problems(z: &Zone) -> Vec<Problem> {
    verify_zone(
        z,
        &VerifyOptions {
            now: Some(NOW),
            require_zonemd: true,
        },
    )
    .unwrap()
}

fn at(z: &Zone, owner: &str, t: u16) -> usize {
    let o = name(owner);
    z.records
        .iter()
        .position(|r| r.owner == o && r.rtype == t)
        .unwrap()
}

fn rrsig_at(z: &Zone, owner: &str, covered: u16) -> usize {
    let o = name(owner);
    z.records
        .iter()
        .position(|r| {
            r.owner == o && r.rtype == rtype::RRSIG && rrsig_type_covered(&r.rdata) == Some(covered)
        })
        .unwrap()
}

fn assert_reported(p: &[Problem], owner: &str, needle: &str) {
    assert!(
        p.iter()
            .any(|p| p.owner == name(owner) && p.message.contains(needle)),
        "expected a problem at {owner} containing {needle:?}, got {p:#?}"
    );
}

#[test]
fn verifier_accepts_what_we_sign() {
    for d in [Denial::Nsec, Denial::nsec3_rfc9276()] {
        let z = signed(d);
        assert!(problems(&z).is_empty(), "{:#?}", problems(&z));
    }
}

#[test]
fn verifier_rejects_a_wrong_rrsig() {
    let mut z = signed(Denial::Nsec);
    let i = rrsig_at(&z, "mail.example.", rtype::AAAA);
    let mut rd = z.records[i].rdata.to_vec();
    let last = rd.len() - 1;
    rd[last] ^= 0x40;
    z.records[i].rdata = rd.into();
    assert_reported(&problems(&z), "mail.example.", "does not verify");
}

#[test]
fn verifier_rejects_a_changed_record_under_a_valid_rrsig() {
    let mut z = signed(Denial::Nsec);
    let i = at(&z, "ns1.example.", rtype::A);
    z.records[i].rdata = vec![192, 0, 2, 99].into();
    assert_reported(&problems(&z), "ns1.example.", "does not verify");
}

#[test]
fn verifier_rejects_a_missing_rrsig() {
    let mut z = signed(Denial::Nsec);
    let i = rrsig_at(&z, "host.inc.example.", rtype::A);
    z.records.remove(i);
    assert_reported(&problems(&z), "host.inc.example.", "missing RRSIG for A");
}

#[test]
fn verifier_rejects_an_expired_rrsig() {
    let z = signed(Denial::Nsec);
    let later = NOW + 365 * 86400;
    let p = verify_zone(
        &z,
        &VerifyOptions {
            now: Some(later),
            require_zonemd: true,
        },
    )
    .unwrap();
    assert_reported(&p, "example.", "validity");
}

#[test]
fn verifier_rejects_a_broken_nsec_chain() {
    let mut z = signed(Denial::Nsec);
    let i = at(&z, "mail.example.", rtype::NSEC);
    let mut rd = name("zzz.example.").wire().to_vec();
    rd.extend(encode_bitmap(&[rtype::A, rtype::AAAA, rtype::RRSIG, rtype::NSEC]));
    z.records[i].rdata = rd.into();
    assert_reported(&problems(&z), "mail.example.", "NSEC chain broken");
    // and a missing NSEC
    let mut z = signed(Denial::Nsec);
    let i = at(&z, "ns1.example.", rtype::NSEC);
    z.records.remove(i);
    assert_reported(&problems(&z), "ns1.example.", "missing NSEC");
}

#[test]
fn verifier_rejects_a_wrong_nsec_bitmap() {
    let mut z = signed(Denial::Nsec);
    let i = at(&z, "sub.example.", rtype::NSEC);
    let r = &z.records[i];
    let (next, _) = dnssec_sign::Name::read_wire(&r.rdata).unwrap();
    // the classic mistake: list the occluded A record at the delegation
    let mut rd = next.wire().to_vec();
    rd.extend(encode_bitmap(&[rtype::A, rtype::NS, rtype::RRSIG, rtype::NSEC]));
    z.records[i].rdata = rd.into();
    assert_reported(&problems(&z), "sub.example.", "NSEC bitmap");
}

#[test]
fn verifier_rejects_a_wrong_nsec3_bitmap_and_a_broken_nsec3_chain() {
    let z0 = signed(Denial::nsec3_rfc9276());
    let i = z0
        .records
        .iter()
        .position(|r| r.rtype == rtype::NSEC3 && Nsec3::from_wire(&r.rdata).unwrap().types.is_empty())
        .unwrap();
    // an ENT given its child's types
    let mut z = z0.clone();
    let mut n3 = Nsec3::from_wire(&z.records[i].rdata).unwrap();
    n3.types = vec![rtype::A, rtype::RRSIG];
    z.records[i].rdata = n3.to_wire().into();
    assert!(
        problems(&z).iter().any(|p| p.message.contains("NSEC3 bitmap")),
        "{:#?}",
        problems(&z)
    );
    // a next hash that skips one
    let mut z = z0.clone();
    let mut n3 = Nsec3::from_wire(&z.records[i].rdata).unwrap();
    n3.next_hashed[19] ^= 1;
    z.records[i].rdata = n3.to_wire().into();
    assert!(
        problems(&z)
            .iter()
            .any(|p| p.message.contains("NSEC3 chain broken")),
        "{:#?}",
        problems(&z)
    );
    // a missing NSEC3
    let mut z = z0.clone();
    z.records.remove(i);
    assert!(
        problems(&z).iter().any(|p| p.message.contains("missing NSEC3")),
        "{:#?}",
        problems(&z)
    );
}

#[test]
fn verifier_rejects_a_bad_zonemd() {
    let mut z = signed(Denial::Nsec);
    let i = at(&z, "example.", rtype::ZONEMD);
    let mut rd = z.records[i].rdata.to_vec();
    rd[10] ^= 1;
    z.records[i].rdata = rd.into();
    let p = problems(&z);
    assert_reported(&p, "example.", "ZONEMD invalid");
    // the RRSIG over the ZONEMD no longer matches either
    assert_reported(&p, "example.", "RRSIG ZONEMD");
}

#[test]
fn verifier_rejects_rrsigs_over_glue() {
    let mut z = signed(Denial::Nsec);
    let mut sig = z.records[rrsig_at(&z, "ns1.example.", rtype::A)].clone();
    sig.owner = name("ns1.sub.example.");
    z.records.push(sig);
    assert_reported(&problems(&z), "ns1.sub.example.", "not authoritative");
}
