//! Independent validators accept what we sign: `ldns-verify-zone`, `dnssec-verify` (BIND),
//! `kzonecheck -d on` (Knot), for NSEC, NSEC3 and NSEC3 opt-out, algorithms 8, 10, 13, 15;
//! ZONEMD checked by `ldns-verify-zone -ZZ` (NSEC) or `pdnsutil zonemd-verify-file` (NSEC3,
//! since ldns 1.8.3 hangs on NSEC3 zones with ZONEMD).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dnssec_sign::Denial;
use dnssec_sign::keys::Algorithm;
use dnssec_sign::rdata::rtype;
use dnssec_sign::sign::SignOptions;
use dnssec_sign::verify::{VerifyOptions, verify_zone};
use dnssec_sign::zonemd::ZonemdHash;

fn check_algorithm(alg: Algorithm) {
    let dir = tempfile::tempdir().unwrap();
    let (ksk, zsk) = fixture_keys(alg);
    for (label, denial) in denial_modes() {
        let nsec3 = !matches!(denial, Denial::Nsec);
        for with_zonemd in [false, true] {
            // ldns 1.8.3 hangs on NSEC3 zones with ZONEMD: it checks those without ZONEMD only
            let mut opts = SignOptions::new(now());
            opts.denial = denial.clone();
            if with_zonemd {
                opts.zonemd = vec![if nsec3 {
                    ZonemdHash::Sha512
                } else {
                    ZonemdHash::Sha384
                }];
            }
            let signed = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
            let file = format!("{label}-{}-{}.signed", alg.number(), with_zonemd);
            assert_signed_zone_accepted(dir.path(), &file, &signed, "example", nsec3, with_zonemd);
        }
    }
}

#[test]
fn rsasha256_zones_pass_ldns_bind_and_knot_validators() {
    check_algorithm(Algorithm::RsaSha256);
}

#[test]
fn rsasha512_zones_pass_ldns_bind_and_knot_validators() {
    check_algorithm(Algorithm::RsaSha512);
}

#[test]
fn ecdsap256_zones_pass_ldns_bind_and_knot_validators() {
    check_algorithm(Algorithm::EcdsaP256Sha256);
}

#[test]
fn ed25519_zones_pass_ldns_bind_and_knot_validators() {
    check_algorithm(Algorithm::Ed25519);
}

#[test]
fn single_combined_key_csk_zone_passes_validators() {
    let dir = tempfile::tempdir().unwrap();
    let (ksk, _) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(now());
    opts.cds = true;
    let signed = sign(load("features.zone", "example."), &[&ksk], &opts);
    let path = write_zone(dir.path(), "csk.signed", &signed);
    let p = path.to_str().unwrap();
    let (ok, out) = run("ldns-verify-zone", &[p]);
    assert!(ok, "ldns-verify-zone rejected:\n{out}");
    // -z: BIND otherwise expects a separate key without the SEP flag for zone data
    let (ok, out) = run("dnssec-verify", &["-z", "-o", "example", p]);
    assert!(ok, "dnssec-verify rejected:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", "example", p]);
    assert!(ok, "kzonecheck rejected:\n{out}");
    // every RRSIG comes from the one key
    let tags: std::collections::BTreeSet<u16> = signed
        .records
        .iter()
        .filter(|r| r.rtype == rtype::RRSIG)
        .map(|r| dnssec_sign::rdata::Rrsig::from_wire(&r.rdata).unwrap().key_tag)
        .collect();
    assert_eq!(tags.len(), 1);
    assert!(signed.records.iter().any(|r| r.rtype == rtype::CDS));
    assert!(signed.records.iter().any(|r| r.rtype == rtype::CDNSKEY));
}

#[test]
fn glue_edited_after_signing_is_caught_only_by_zonemd() {
    let dir = tempfile::tempdir().unwrap();
    let (ksk, zsk) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let mut opts = SignOptions::new(now());
    opts.denial = Denial::Nsec;
    opts.zonemd = vec![ZonemdHash::Sha384];
    let mut signed = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
    let glue = signed
        .records
        .iter_mut()
        .find(|r| r.owner == name("ns1.sub.example.") && r.rtype == rtype::A)
        .unwrap();
    glue.rdata = vec![203, 0, 113, 66].into();
    let path = write_zone(dir.path(), "edited.signed", &signed);
    let p = path.to_str().unwrap();
    // DNSSEC validators do not cover glue ...
    let (ok, out) = run("dnssec-verify", &["-o", "example", p]);
    assert!(ok, "dnssec-verify should not see unsigned glue:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", "example", p]);
    assert!(ok, "kzonecheck should not see unsigned glue:\n{out}");
    // ... ZONEMD does, in an independent verifier and in ours
    let (ok, out) = independent_zonemd_ok(&path, "example", false);
    assert!(!ok, "ldns-verify-zone -ZZ should reject the edited glue:\n{out}");
    let problems = verify_zone(
        &signed,
        &VerifyOptions {
            now: Some(now()),
            require_zonemd: true,
        },
    )
    .unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("ZONEMD"), "{problems:#?}");
    assert_eq!(problems[0].owner, name("example."));
}
