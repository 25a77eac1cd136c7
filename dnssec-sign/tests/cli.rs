//! The `dnssec-sign` command line: sign, verify, digest, keygen, ds; clear errors with file
//! and line; nothing half-written on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnssec-sign"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_sign_verify_ds_round_trip_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, ksk, err) = cli(&["keygen", "-a", "ECDSAP256SHA256", "-k", "-K", d, "example"]);
    assert_eq!(code, 0, "{err}");
    let (code, zsk, err) = cli(&["keygen", "-a", "13", "-K", d, "example"]);
    assert_eq!(code, 0, "{err}");
    let ksk = dir.path().join(ksk.trim());
    let zsk = dir.path().join(zsk.trim());
    assert!(ksk.to_str().unwrap().contains("Kexample.+013+"));
    let out = dir.path().join("out.signed");
    let metrics = dir.path().join("dnssec-sign.prom");
    let zone = data("features.zone");
    let (code, _, err) = cli(&[
        "sign",
        "-o",
        "example",
        "-n",
        "-p",
        "-z",
        "sha384",
        "-N",
        "increment",
        "--metrics",
        metrics.to_str().unwrap(),
        "-f",
        out.to_str().unwrap(),
        zone.to_str().unwrap(),
        ksk.to_str().unwrap(),
        zsk.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, _) = cli(&["verify", "-o", "example", "-Z", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert_validators_accept_without_ldns(&out);
    let (ok, o) = independent_zonemd_ok(&out, "example", true);
    assert!(ok, "{o}");
    // Signed again from the previous output (--previous), from the same input: every RRSIG is kept, none is
    // made, and the result is as valid.
    // The run's metrics file counts what the signed zone holds.
    let text = std::fs::read_to_string(&out).unwrap();
    let rrsigs = text
        .lines()
        .filter(|l| l.split_whitespace().take(4).any(|w| w == "RRSIG"))
        .count();
    assert_eq!(metric(&metrics, "rrsigs_made"), rrsigs as f64);
    assert_eq!(metric(&metrics, "rrsigs_kept"), 0.0);
    assert!(metric(&metrics, "last_success_timestamp_seconds") > 1.7e9);
    let again = dir.path().join("again.signed");
    let again_metrics = dir.path().join("again.prom");
    let (code, stdout, err) = cli(&[
        "sign",
        "-o",
        "example",
        "-n",
        "-p",
        "-z",
        "sha384",
        "-N",
        "increment",
        "--previous",
        out.to_str().unwrap(),
        "--metrics",
        again_metrics.to_str().unwrap(),
        "-f",
        again.to_str().unwrap(),
        zone.to_str().unwrap(),
        ksk.to_str().unwrap(),
        zsk.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RRSIGs: kept "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [kept, made, dropped] = numbers[..] else {
        panic!("{line}")
    };
    assert_eq!((kept, made, dropped), (rrsigs, 0, 0), "{line}");
    assert_eq!(metric(&again_metrics, "rrsigs_kept"), kept as f64);
    assert_eq!(metric(&again_metrics, "rrsigs_made"), 0.0);
    let (code, stdout, _) = cli(&["verify", "-o", "example", "-Z", again.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert_validators_accept_without_ldns(&again);
    // DS output equals BIND's dnssec-dsfromkey
    let (code, ds, _) = cli(&["ds", ksk.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (ok, bind) = run(
        "dnssec-dsfromkey",
        &["-2", &format!("{}.key", ksk.to_str().unwrap())],
    );
    assert!(ok, "{bind}");
    let norm = |s: &str| {
        s.split_whitespace()
            .filter(|w| *w != "IN")
            .map(str::to_uppercase)
            .collect::<Vec<_>>()
    };
    let bind_line = bind.lines().find(|l| l.contains(" DS ")).unwrap();
    assert_eq!(norm(ds.trim()), norm(bind_line));
    let (code, ds384, _) = cli(&["ds", "-d", "sha384", ksk.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (ok, bind384) = run(
        "dnssec-dsfromkey",
        &["-a", "SHA-384", &format!("{}.key", ksk.to_str().unwrap())],
    );
    assert!(ok, "{bind384}");
    assert_eq!(
        norm(ds384.trim()),
        norm(bind384.lines().find(|l| l.contains(" DS ")).unwrap())
    );
}

/// The value of `dnssec_sign_<name>{zone="example."}` in a `--metrics` file (which ends with `# EOF`).
fn metric(file: &std::path::Path, name: &str) -> f64 {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let prefix = format!("dnssec_sign_{name}{{zone=\"example.\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .parse()
        .unwrap()
}

fn assert_validators_accept_without_ldns(path: &std::path::Path) {
    // (ldns 1.8.3 hangs on NSEC3 zones with ZONEMD)
    let p = path.to_str().unwrap();
    let (ok, out) = run("dnssec-verify", &["-o", "example", p]);
    assert!(ok, "{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", "example", p]);
    assert!(ok, "{out}");
}

#[test]
fn bad_zone_file_error_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("bad.zone");
    std::fs::write(
        &zone,
        "$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A not-an-address\n",
    )
    .unwrap();
    let (ksk, _) = fixture_keys(dnssec_sign::Algorithm::Ed25519);
    let key = ksk.base_name();
    let key_path = data("keys").join(key);
    let out = dir.path().join("bad.signed");
    let (code, _, err) = cli(&[
        "sign",
        "-o",
        "example",
        "-f",
        out.to_str().unwrap(),
        zone.to_str().unwrap(),
        key_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.zone:5:"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the input remains");
}

#[test]
fn verify_reports_problems_with_owner_names_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (ksk, zsk) = fixture_keys(dnssec_sign::Algorithm::EcdsaP256Sha256);
    let mut opts = dnssec_sign::SignOptions::new(now());
    opts.denial = dnssec_sign::Denial::Nsec;
    let mut z = sign(load("features.zone", "example."), &[&ksk, &zsk], &opts);
    let i = z
        .records
        .iter()
        .position(|r| r.owner == name("mail.example.") && r.rtype == 1)
        .unwrap();
    z.records[i].rdata = vec![192, 0, 2, 200].into();
    let p = write_zone(dir.path(), "broken.signed", &z);
    let (code, stdout, _) = cli(&["verify", "-o", "example", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("mail.example.: RRSIG A"), "{stdout}");
}

#[test]
fn digest_adds_and_checks_zonemd_on_an_unsigned_zone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("simple.zonemd");
    let src = data("rfc4035-example.zone");
    let (code, _, err) = cli(&[
        "digest",
        "-o",
        "example",
        "-z",
        "sha512",
        "-f",
        out.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, _) = cli(&["digest", "--check", "-o", "example", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let (ok, o) = run("ldns-verify-zone", &["-Z", out.to_str().unwrap()]);
    assert!(ok, "{o}");
    let (ok, o) = run(
        "pdnsutil",
        &["zonemd-verify-file", "example", out.to_str().unwrap()],
    );
    assert!(ok && o.contains("succeeded"), "{o}");
    // the published RFC 8976 example checks out, a tampered copy does not
    let (code, _, _) = cli(&[
        "digest",
        "--check",
        "-o",
        "example",
        data("simple.zone").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let tampered = dir.path().join("tampered.zone");
    let text = std::fs::read_to_string(data("simple.zone"))
        .unwrap()
        .replace("203.0.113.63", "203.0.113.64");
    std::fs::write(&tampered, text).unwrap();
    let (code, _, _) = cli(&["digest", "--check", "-o", "example", tampered.to_str().unwrap()]);
    assert_eq!(code, 1);
}
