//! Issue 13: what validators reject is never signed. Each bad zone or option is refused by the
//! `sign` command with an error naming file, line and rule, and no output file appears; each
//! bad zone written out unsigned-then-signed by force is also caught by our `verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use dnssec_sign::keys::Algorithm;

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnssec-sign"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";

/// Runs `sign` on `zone` (written to `dir/file`) with the fixture keys and `extra` options;
/// returns the exit code, the output and the path of the signed file.
fn sign_cli(dir: &Path, file: &str, zone: &[u8], extra: &[&str]) -> (i32, String, std::path::PathBuf) {
    let zf = dir.join(file);
    std::fs::write(&zf, zone).unwrap();
    let out = zf.with_extension("signed");
    let keys: Vec<String> = std::fs::read_dir(data("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("+013+") && p.extension().is_some_and(|x| x == "key"))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["sign", "-f", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(zf.to_str().unwrap());
    args.extend(keys.iter().map(String::as_str));
    let (code, text) = cli(&args);
    (code, text, out)
}

/// Signs `zone` (text) with the fixture keys through the CLI with `extra` options; asserts it
/// fails, that stderr contains each of `want`, and that no output file was written.
fn refused(zone: &[u8], extra: &[&str], want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (code, text, out) = sign_cli(dir.path(), "bad.zone", zone, extra);
    assert_ne!(code, 0, "signed a bad zone ({want:?}):\n{text}");
    for w in want {
        assert!(text.contains(w), "error lacks {w:?}:\n{text}");
    }
    assert!(text.len() < 4000, "error too long ({} chars)", text.len());
    assert!(!out.exists(), "output written despite the error");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "stray files left"
    );
}

fn z(tail: impl AsRef<[u8]>) -> Vec<u8> {
    let mut v = HEAD.as_bytes().to_vec();
    v.extend_from_slice(tail.as_ref());
    v
}

#[test]
fn txt_rdata_over_65535_octets_is_refused_with_its_line() {
    let strings: Vec<String> = (0..258).map(|_| format!("\"{}\"", "x".repeat(255))).collect();
    refused(
        &z(format!("big TXT {}\n", strings.join(" "))),
        &[],
        &["bad.zone:6:", "RDATA of 66048 octets"],
    );
}

#[test]
fn nsec3_salt_over_255_octets_is_refused() {
    let salt = "ab".repeat(256);
    refused(&z(""), &["-n", "-s", &salt], &["salt of 256 octets"]);
}

#[test]
fn nsec3_iterations_above_bind_ceiling_are_refused() {
    refused(&z(""), &["-n", "-t", "51"], &["iterations 51 above 50"]);
}

#[test]
fn expiration_before_inception_or_in_the_past_is_refused() {
    refused(
        &z(""),
        &["-i", "20300101000000", "-e", "20290101000000"],
        &["not after inception"],
    );
    refused(
        &z(""),
        &["-i", "20200101000000", "-e", "20200201000000"],
        &["not in the future"],
    );
}

#[test]
fn expired_signatures_only_when_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let zf = dir.path().join("z.zone");
    std::fs::write(&zf, z("")).unwrap();
    let key = std::fs::read_dir(data("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("+013+") && p.extension().is_some_and(|x| x == "key"))
        .unwrap();
    let out = dir.path().join("z.signed");
    let (code, text) = cli(&[
        "sign",
        "--allow-expired",
        "-i",
        "20200101000000",
        "-e",
        "20200201000000",
        "-f",
        out.to_str().unwrap(),
        zf.to_str().unwrap(),
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(out.exists());
}

#[test]
fn cname_beside_other_data_is_refused() {
    refused(
        &z("www CNAME ns1\nwww A 192.0.2.2\n"),
        &[],
        &["bad.zone:6:", "www.example.", "CNAME beside other data (A)"],
    );
}

#[test]
fn cname_at_the_apex_is_refused() {
    refused(
        &z("@ CNAME other.example.net.\n"),
        &[],
        &["bad.zone:6:", "CNAME at the zone apex"],
    );
}

#[test]
fn cname_at_a_delegation_is_refused() {
    refused(
        &z("sub NS ns.example.net.\nsub CNAME ns1\n"),
        &[],
        &["bad.zone:7:", "CNAME beside other data (NS)"],
    );
}

#[test]
fn two_cnames_are_refused() {
    refused(
        &z("www CNAME ns1\nwww CNAME ns2\n"),
        &[],
        &["bad.zone:6:", "2 CNAME records"],
    );
}

#[test]
fn ttl_above_2_pow_31_is_refused() {
    refused(
        &z("big 2147483648 A 192.0.2.2\n"),
        &[],
        &["bad.zone:6:", "TTL 2147483648 above 2^31-1"],
    );
    refused(
        &z("$TTL 4294967295\nbig A 192.0.2.2\n"),
        &[],
        &["bad.zone:7: big.example.: A TTL 4294967295 above 2^31-1"],
    );
}

#[test]
fn a_zone_without_soa_is_refused_naming_its_file() {
    refused(
        b"$ORIGIN example.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.1\n",
        &[],
        &["bad.zone: no SOA at the apex example."],
    );
}

#[test]
fn a_second_soa_is_refused_with_its_line() {
    refused(
        &z("sub SOA ns1 admin 1 2 3 4 5\n"),
        &[],
        &["bad.zone:6:", "2 SOA records"],
    );
}

#[test]
fn zone_without_apex_ns_is_refused() {
    refused(
        b"$ORIGIN example.\n$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nns1 A 192.0.2.1\n",
        &[],
        &["bad.zone:3:", "no NS records at the zone apex"],
    );
}

#[test]
fn ds_at_the_apex_is_refused() {
    refused(
        &z("@ DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F\n"),
        &[],
        &["bad.zone:6:", "DS at the zone apex"],
    );
}

#[test]
fn data_below_a_dname_is_refused() {
    refused(
        &z("dn DNAME example.net.\nx.dn A 192.0.2.3\n"),
        &[],
        &["bad.zone:7:", "below the DNAME at dn.example."],
    );
}

#[test]
fn relative_names_without_any_origin_are_refused() {
    refused(
        b"$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\n",
        &[],
        &["bad.zone:2:", "no origin known"],
    );
    refused(
        b"$TTL 300\nexample SOA ns1 admin 1 2 3 4 5\n",
        &[],
        &["bad.zone:2:", "no origin known"],
    );
}

#[test]
fn the_absolute_soa_owner_is_the_origin_for_data_too() {
    let zone = dnssec_sign::parse_zone(
        "$TTL 300\nexample. SOA ns1 admin 1 2 3 4 5\nexample. NS ns1\nwww CNAME @\n",
        Path::new("t.zone"),
        None,
    )
    .unwrap();
    assert_eq!(zone.origin, name("example."));
    assert_eq!(zone.records[1].rdata.as_ref(), name("ns1.example.").wire());
    assert_eq!(zone.records[2].owner, name("www.example."));
    assert_eq!(zone.records[2].rdata.as_ref(), name("example.").wire());
}

#[test]
fn a_huge_owner_name_is_not_echoed_whole() {
    let mut zone = z("");
    zone.extend(std::iter::repeat_n(b'a', 10 << 20));
    zone.extend_from_slice(b" A 192.0.2.1\n");
    refused(&zone, &[], &["bad.zone:6:", "10485760 octets"]);
}

#[test]
fn bad_ttl_and_bad_class_are_named_as_such() {
    refused(&z("x 1y A 192.0.2.1\n"), &[], &["bad.zone:6:", "bad TTL"]);
    refused(
        &z("x CH A 192.0.2.1\n"),
        &[],
        &["bad.zone:6:", "class CH is not supported"],
    );
    refused(
        &z("x CLASS3 A 192.0.2.1\n"),
        &[],
        &["bad.zone:6:", "class CLASS3 is not supported"],
    );
    refused(
        &z("x FOO 192.0.2.1\n"),
        &[],
        &["bad.zone:6:", "unknown record type FOO"],
    );
}

#[test]
fn invalid_non_utf8_data_is_refused_with_its_line_but_latin1_text_is_read() {
    // Latin-1 in TXT and comments is data, not an error
    let mut ok = z(b"t TXT caf\xe9 ; \xff\n");
    ok.extend_from_slice(b"t2 TXT \"\xe9\xe8\"\n");
    let zone = dnssec_sign::parse_zone(&ok, Path::new("t.zone"), None).unwrap();
    assert_eq!(zone.records[3].rdata.as_ref(), b"\x04caf\xe9");
    // a raw octet where a number belongs is an error on its line
    refused(
        &z(b"x MX 1\xe9 mail\n"),
        &[],
        &["bad.zone:6:", "x.example. MX: bad value"],
    );
}

#[test]
fn a_name_server_inside_the_zone_without_an_address_is_refused() {
    // Knot refuses both (missing glue); BIND refuses the apex case and warns for a delegation
    refused(
        &z("sub NS ns.sub\nsub NS ns.example.net.\n"),
        &[],
        &["bad.zone:6: sub.example.: name server ns.sub.example. inside the zone has no A or AAAA"],
    );
    refused(
        &z("@ NS ns2\n"),
        &[],
        &["bad.zone:4: example.: name server ns2.example. inside the zone"],
    );
    refused(&z("sub NS www\n"), &[], &["name server www.example."]);
    // a server below another delegation is that delegation's glue: Knot accepts, so do we
    signed_with(&z("sub NS ns.sub2\nsub2 NS ns.example.net.\n"), &[]);
}

#[test]
fn obsolete_md_and_mf_are_refused_in_either_form() {
    // BIND refuses to load MD and MF, by mnemonic or as TYPE3/TYPE4 \# data
    refused(
        &z("m MD mail.example.\n"),
        &[],
        &["bad.zone:6:", "MD is obsolete (RFC 973"],
    );
    refused(
        &z("m TYPE4 \\# 14 046D61696C076578616D706C6500\n"),
        &[],
        &["bad.zone:6:", "MF is obsolete"],
    );
}

#[test]
fn generic_data_that_is_not_valid_for_its_type_is_refused() {
    refused(
        &z("x A \\# 3 010203\n"),
        &[],
        &["bad.zone:6:", "not valid A data"],
    );
    // a rare type's RFC 3597 data is checked too: a HIP whose key runs past the end
    refused(
        &z("h HIP \\# 6 01020010AB01\n"),
        &[],
        &["bad.zone:6:", "not valid HIP data"],
    );
    // and an A6 suffix with bits inside the prefix
    refused(
        &z("a A6 64 2001:db8::1 p.example.\n"),
        &[],
        &["bad.zone:6:", "bits inside the 64-bit prefix"],
    );
}

#[test]
fn resigning_with_new_keys_drops_the_old_dnskeys() {
    let dir = tempfile::tempdir().unwrap();
    let (k13, z13) = fixture_keys(Algorithm::EcdsaP256Sha256);
    let (k15, z15) = fixture_keys(Algorithm::Ed25519);
    let opts = dnssec_sign::SignOptions::new(now());
    let first = sign(load("features.zone", "example."), &[&k13, &z13], &opts);
    let again = sign(first.clone(), &[&k15, &z15], &opts);
    let algs: Vec<u8> = again
        .records
        .iter()
        .filter(|r| r.rtype == dnssec_sign::rdata::rtype::DNSKEY)
        .map(|r| r.rdata[3])
        .collect();
    assert_eq!(algs, vec![15, 15]);
    assert_signed_zone_accepted(dir.path(), "resigned.zone", &again, "example", true, false);
    // kept on request: a ZSK pre-published for a rollover (signed with another key before)
    let next_zsk = dnssec_sign::LocalKey::generate(
        &name("example."),
        Algorithm::EcdsaP256Sha256,
        false,
        0,
        &mut rand::rng(),
    )
    .unwrap();
    let with_next = sign(load("features.zone", "example."), &[&k13, &next_zsk], &opts);
    let mut keep = opts.clone();
    keep.keep_dnskeys = true;
    let kept = sign(with_next, &[&k13, &z13], &keep);
    let n = kept
        .records
        .iter()
        .filter(|r| r.rtype == dnssec_sign::rdata::rtype::DNSKEY)
        .count();
    assert_eq!(n, 3);
    assert_signed_zone_accepted(dir.path(), "kept.zone", &kept, "example", true, false);
    // kept keys of an algorithm nobody signs with: refused (RFC 4035 §2.2)
    let refs: Vec<&dyn dnssec_sign::ZoneSigningKey> = vec![&k15, &z15];
    let e = dnssec_sign::sign_zone(first, &refs, &keep, None).unwrap_err();
    assert!(e.to_string().contains("algorithm 13"), "{e}");
}

#[test]
fn verify_reports_every_content_rule_the_signer_refuses() {
    let cases: [(&str, &str); 7] = [
        ("www CNAME ns1\nwww A 192.0.2.2\n", "CNAME beside other data (A)"),
        ("@ CNAME other.example.net.\n", "CNAME at the zone apex"),
        (
            "sub NS ns.example.net.\nsub CNAME ns1\n",
            "CNAME beside other data (NS)",
        ),
        ("www CNAME ns1\nwww CNAME ns2\n", "2 CNAME records"),
        (
            "@ DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F\n",
            "DS at the zone apex",
        ),
        (
            "dn DNAME example.net.\nx.dn A 192.0.2.3\n",
            "below the DNAME at dn.example.",
        ),
        ("", ""),
    ];
    for (tail, rule) in cases {
        let zone = dnssec_sign::parse_zone(z(tail), Path::new("v.zone"), None).unwrap();
        let problems =
            dnssec_sign::verify::verify_zone(&zone, &dnssec_sign::verify::VerifyOptions::default()).unwrap();
        if rule.is_empty() {
            assert!(
                !problems.iter().any(|p| p.message.contains("RFC 1034")),
                "{problems:#?}"
            );
            continue;
        }
        let hit = problems.iter().find(|p| p.message.contains(rule));
        assert!(
            hit.is_some_and(|p| p.message.starts_with("v.zone:")),
            "{rule}: {problems:#?}"
        );
    }
    // records built in memory: an oversized RDATA, a TTL above 2^31-1, no apex NS
    let mut zone = dnssec_sign::parse_zone(z(""), Path::new("v.zone"), None).unwrap();
    zone.records.retain(|r| r.rtype != dnssec_sign::rdata::rtype::NS);
    zone.records[1].ttl = 1 << 31;
    zone.records.push(dnssec_sign::Record {
        owner: name("big.example."),
        rtype: 16,
        class: 1,
        ttl: 300,
        rdata: vec![0u8; 65536].into(),
    });
    let problems =
        dnssec_sign::verify::verify_zone(&zone, &dnssec_sign::verify::VerifyOptions::default()).unwrap();
    for rule in [
        "RDATA of 65536 octets",
        "TTL 2147483648 above",
        "no NS records at the zone apex",
    ] {
        assert!(
            problems.iter().any(|p| p.message.contains(rule)),
            "{rule}: {problems:#?}"
        );
    }
}

/// Signs `zone` through the CLI with the fixture keys and `extra` options; asserts success and
/// returns (stderr + stdout, signed zone text).
fn signed_with(zone: &[u8], extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, text, out) = sign_cli(dir.path(), "warn.zone", zone, extra);
    assert_eq!(code, 0, "{text}");
    assert_validators_accept(&out, "example");
    (text, std::fs::read_to_string(&out).unwrap())
}

/// What BIND or Knot only warn about: (zone tail, extra options, the warning by default, the
/// error with --strict).
fn warned_cases() -> Vec<(&'static str, Vec<&'static str>, &'static str, &'static str)> {
    vec![
        (
            "www A 192.0.2.2\nx.example.net. A 192.0.2.3\n",
            vec![],
            "warn.zone:7: x.example.net.: A record out of zone example.: dropped",
            "bad.zone:7: x.example.net.: A record out of zone example. (BIND and Knot only warn",
        ),
        (
            "www 100 A 192.0.2.2\nwww 200 A 192.0.2.3\n",
            vec![],
            "warn.zone:6: www.example.: A RRset with differing TTLs (RFC 2181 §5.2): all set to the lowest",
            "bad.zone:6: www.example.: A RRset with differing TTLs (RFC 2181 §5.2) (BIND and Knot",
        ),
        (
            "",
            vec!["-n", "-t", "1", "-s", "abcd"],
            "RFC 9276 asks for NSEC3 with 0 iterations and no salt",
            "NSEC3 with 1 iterations and a salt of 2 octets",
        ),
        (
            "",
            vec!["--validity", "200"],
            "signatures expire in 200 s, sooner than the largest TTL of the zone (300 s)",
            "signatures expire in 200 s, sooner than the largest TTL",
        ),
    ]
}

#[test]
fn what_bind_or_knot_only_warn_about_is_a_warning_by_default() {
    for (tail, extra, warning, _) in warned_cases() {
        let (log, signed) = signed_with(&z(tail), &extra);
        assert!(log.contains(warning), "no warning {warning:?}:\n{log}");
        assert!(!signed.contains("example.net.\t"), "out-of-zone data written");
    }
    // the RRset gets the lowest TTL
    let (_, signed) = signed_with(&z("www 100 A 192.0.2.2\nwww 200 A 192.0.2.3\n"), &["--lenient"]);
    assert_eq!(
        signed.matches("www.example.\t100\tIN\tA\t").count(),
        2,
        "{signed}"
    );
}

#[test]
fn strict_refuses_what_bind_or_knot_only_warn_about() {
    for (tail, mut extra, _, error) in warned_cases() {
        extra.push("--strict");
        refused(&z(tail), &extra, &[error]);
    }
    // --strict and --lenient exclude each other
    refused(&z(""), &["--strict", "--lenient"], &["cannot be used with"]);
}

#[test]
fn lenient_sets_a_ttl_above_2_pow_31_to_0_as_bind_does() {
    let (log, signed) = signed_with(&z("big 2147483648 A 192.0.2.2\n"), &["--lenient"]);
    assert!(
        log.contains("warn.zone:6: big.example.: TTL 2147483648 above 2^31-1 set to 0"),
        "{log}"
    );
    assert!(signed.contains("big.example.\t0\tIN\tA\t192.0.2.2"), "{signed}");
}
