//! Shared helpers of the integration tests: fixtures, signing, external validators.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::zone::Zone;
use dnssec_sign::{Name, parse_zone, read_zone_file};

pub fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(p)
}

pub fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

pub fn load(file: &str, origin: &str) -> Zone {
    read_zone_file(&data(file), Some(&name(origin))).unwrap()
}

pub fn zone_from(text: &str, origin: &str) -> Zone {
    parse_zone(text, Path::new("test.zone"), Some(&name(origin))).unwrap()
}

/// The committed fixture keys of `example.` for one algorithm: (KSK, ZSK).
pub fn fixture_keys(alg: Algorithm) -> (LocalKey, LocalKey) {
    let mut ksk = None;
    let mut zsk = None;
    for e in std::fs::read_dir(data("keys")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "key") {
            let k = LocalKey::read_files(&p).unwrap();
            if k.algorithm() == alg {
                if k.dnskey().is_sep() {
                    ksk = Some(k)
                } else {
                    zsk = Some(k)
                }
            }
        }
    }
    (ksk.expect("fixture KSK"), zsk.expect("fixture ZSK"))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn sign(zone: Zone, keys: &[&LocalKey], opts: &SignOptions) -> Zone {
    let refs: Vec<&dyn ZoneSigningKey> = keys.iter().map(|k| *k as &dyn ZoneSigningKey).collect();
    sign_zone(zone, &refs, opts, None).unwrap().0
}

/// Path of an external tool; panics (the test fails) when it is missing, since `.ci/run`
/// installs it.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: .ci/run installs it (ldnsutils, bind9-utils, knot-dnssecutils, pdns-server)");
}

/// Runs a tool with a timeout; returns (success, combined output).
pub fn run(tool_name: &str, args: &[&str]) -> (bool, String) {
    let t = tool(tool_name);
    let out = Command::new("timeout")
        .arg("120")
        .arg(&t)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool_name}: {e}"));
    let text = format!(
        "{} {}\n{}{}",
        tool_name,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn write_zone(dir: &Path, file: &str, zone: &Zone) -> PathBuf {
    let p = dir.join(file);
    dnssec_sign::write_zone_file(&p, &zone.origin, &zone.records).unwrap();
    p
}

/// Asserts that ldns-verify-zone, dnssec-verify and kzonecheck accept the zone file.
pub fn assert_validators_accept(path: &Path, origin: &str) {
    let p = path.to_str().unwrap();
    let (ok, out) = run("ldns-verify-zone", &[p]);
    assert!(ok, "ldns-verify-zone rejected:\n{out}");
    let (ok, out) = run("dnssec-verify", &["-o", origin, p]);
    assert!(ok, "dnssec-verify rejected:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", origin, p]);
    assert!(ok, "kzonecheck rejected:\n{out}");
}

/// An independent ZONEMD check: `ldns-verify-zone -Z` for NSEC zones, `pdnsutil
/// zonemd-verify-file` for NSEC3 zones (ldns 1.8.3 hangs on NSEC3 zones with ZONEMD).
pub fn independent_zonemd_ok(path: &Path, origin: &str, nsec3: bool) -> (bool, String) {
    let p = path.to_str().unwrap();
    if nsec3 {
        let (ok, out) = run("pdnsutil", &["zonemd-verify-file", origin, p]);
        (ok && out.contains("succeeded"), out)
    } else {
        run("ldns-verify-zone", &["-Z", "-Z", p])
    }
}

/// Writes `signed` to `dir/file` and asserts that our verifier, `ldns-verify-zone` (not on NSEC3
/// zones with ZONEMD, where ldns 1.8.3 hangs), `dnssec-verify` and `kzonecheck -d on` accept it,
/// and, with a ZONEMD, the independent ZONEMD check.
pub fn assert_signed_zone_accepted(
    dir: &Path,
    file: &str,
    signed: &Zone,
    origin: &str,
    nsec3: bool,
    with_zonemd: bool,
) {
    use dnssec_sign::verify::{VerifyOptions, verify_zone};
    let path = write_zone(dir, file, signed);
    let p = path.to_str().unwrap();
    let problems = verify_zone(
        signed,
        &VerifyOptions {
            now: Some(now()),
            require_zonemd: with_zonemd,
        },
    )
    .unwrap();
    assert!(problems.is_empty(), "{file}: our verifier: {problems:#?}");
    if !(nsec3 && with_zonemd) {
        let (ok, out) = run("ldns-verify-zone", &[p]);
        assert!(ok, "{file}: ldns-verify-zone rejected:\n{out}");
    }
    // -z for a combined key (only SEP keys): BIND otherwise wants a key without SEP for zone data
    let csk = !signed
        .records
        .iter()
        .any(|r| r.rtype == dnssec_sign::rdata::rtype::DNSKEY && r.rdata.get(..2) == Some(&[1, 0]));
    let bind_args = if csk {
        vec!["-z", "-o", origin, p]
    } else {
        vec!["-o", origin, p]
    };
    let (ok, out) = run("dnssec-verify", &bind_args);
    assert!(ok, "{file}: dnssec-verify rejected:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", origin, p]);
    assert!(ok, "{file}: kzonecheck rejected:\n{out}");
    if with_zonemd {
        let (ok, out) = independent_zonemd_ok(&path, origin, nsec3);
        assert!(ok, "{file}: independent ZONEMD check failed:\n{out}");
    }
}
