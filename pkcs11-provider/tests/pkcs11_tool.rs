//! The built module driven by OpenSC's `pkcs11-tool`, signatures checked by `openssl` (habit 21, issue 6).
//!
//! `.ci/run` installs `opensc` and `openssl`; a missing tool fails the test.
#![allow(clippy::unwrap_used)] // integration-test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{SO_PIN, USER_PIN};

struct Tool {
    module: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

impl Tool {
    fn new(name: &str) -> Self {
        let dir = common::scratch_dir(name);
        let config = common::write_config(&dir);
        Self {
            module: common::module_path(),
            config,
            dir,
        }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    /// Runs `pkcs11-tool --module <ours> args…`; panics with its output unless it succeeds.
    fn p11(&self, args: &[&str]) -> String {
        let out = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(args)
            .env("TCHSM_PKCS11_CONFIG", &self.config)
            .output()
            .expect("pkcs11-tool must be installed (Debian package opensc; .ci/run installs it)");
        check("pkcs11-tool", args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl installed");
        check("openssl", args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Initialises token 0 with the SO and user PINs.
    fn init_token(&self) {
        self.p11(&[
            "--init-token",
            "--slot",
            "0",
            "--label",
            "tool",
            "--so-pin",
            SO_PIN,
        ]);
        self.p11(&["--init-pin", "--slot", "0", "--so-pin", SO_PIN, "--pin", USER_PIN]);
    }

    /// Reads the public key with id `id` back and converts it to PEM for openssl.
    fn public_pem(&self, id: &str, name: &str) -> PathBuf {
        let der = self.path(&format!("{name}.der"));
        self.p11(&[
            "--slot",
            "0",
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            id,
            "-o",
            der.to_str().unwrap(),
        ]);
        let pem = self.path(&format!("{name}.pem"));
        self.openssl(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            s(&der),
            "-out",
            s(&pem),
        ]);
        pem
    }

    fn sign(&self, id: &str, mechanism: &str, input: &Path, output: &Path, extra: &[&str]) {
        let mut args = vec![
            "--slot",
            "0",
            "--login",
            "--pin",
            USER_PIN,
            "--sign",
            "--id",
            id,
            "-m",
            mechanism,
            "-i",
            s(input),
            "-o",
            s(output),
        ];
        args.extend_from_slice(extra);
        self.p11(&args);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check(tool: &str, args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pkcs11_tool_lists_info_slots_and_mechanisms_and_survives_fork() {
    let t = Tool::new("tool-info");
    let info = t.p11(&["-I"]);
    assert!(info.contains("distributed-hsm"), "{info}");
    t.init_token();
    let slots = t.p11(&["-L"]);
    assert!(
        slots.contains("tool") && slots.contains("PIN initialized"),
        "{slots}"
    );
    let mechs = t.p11(&["-M", "--slot", "0"]);
    for m in [
        "SHA256-RSA-PKCS",
        "RSA-PKCS-PSS",
        "SHA256",
        "RSA-PKCS-KEY-PAIR-GEN",
    ] {
        assert!(mechs.contains(m), "{m} missing from\n{mechs}");
    }
    let fork = t.p11(&["--slot", "0", "--test-fork"]);
    assert!(!fork.contains("error"), "{fork}");
}

#[test]
fn pkcs11_tool_and_p11tool_rsa_2048_signatures_verify_with_openssl() {
    let t = Tool::new("tool-rsa");
    t.init_token();
    t.p11(&[
        "--slot",
        "0",
        "--login",
        "--pin",
        USER_PIN,
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--id",
        "01",
        "--label",
        "rsa-key",
    ]);
    let objects = t.p11(&["--slot", "0", "--login", "--pin", USER_PIN, "-O"]);
    assert!(
        objects.contains("rsa-key") && objects.contains("Private Key Object"),
        "{objects}"
    );
    let pem = t.public_pem("01", "rsa");
    let text = t.openssl(&["pkey", "-pubin", "-in", s(&pem), "-noout", "-text"]);
    assert!(text.contains("2048 bit"), "{text}");

    let data = t.path("data.txt");
    std::fs::write(&data, b"threshold signatures through pkcs11-tool\n").unwrap();
    // SHA256-RSA-PKCS: the module hashes.
    let sig = t.path("sig-sha256-rsa-pkcs");
    t.sign("01", "SHA256-RSA-PKCS", &data, &sig, &[]);
    let v = t.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pem),
        "-signature",
        s(&sig),
        s(&data),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
    // RSA-PKCS over a DigestInfo built here.
    let digest = t.openssl(&["dgst", "-sha256", "-hex", "-r", s(&data)]);
    let digest = digest.split_whitespace().next().unwrap();
    let prefix = "3031300d060960864801650304020105000420";
    let digest_info: Vec<u8> = (0..(prefix.len() + digest.len()) / 2)
        .map(|i| {
            let h = format!("{prefix}{digest}");
            u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    let di = t.path("digest-info.der");
    std::fs::write(&di, &digest_info).unwrap();
    let sig = t.path("sig-rsa-pkcs");
    t.sign("01", "RSA-PKCS", &di, &sig, &[]);
    let v = t.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pem),
        "-signature",
        s(&sig),
        s(&data),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
    // SHA256-RSA-PKCS-PSS with a digest-length salt.
    let sig = t.path("sig-pss");
    t.sign(
        "01",
        "SHA256-RSA-PKCS-PSS",
        &data,
        &sig,
        &["--mgf", "MGF1-SHA256", "--salt-len", "-1"],
    );
    let v = t.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pem),
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-signature",
        s(&sig),
        s(&data),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
    // OpenSC's own self-test signs and verifies with every RSA mechanism it knows.
    let selftest = t.p11(&["--slot", "0", "--login", "--pin", USER_PIN, "--test"]);
    assert!(
        selftest.contains("all 4 signature functions seem to work") && selftest.contains("No errors"),
        "{selftest}"
    );
    // GnuTLS signs with the key and checks the result against the token's public key.
    let out = Command::new("p11tool")
        .arg("--provider")
        .arg(&t.module)
        .args(["--login", "--test-sign", "pkcs11:token=tool;object=rsa-key"])
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .env("GNUTLS_PIN", USER_PIN)
        .output()
        .expect("p11tool must be installed (Debian package gnutls-bin; .ci/run installs it)");
    check("p11tool", &["--test-sign"], &out);
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        report.contains("Verifying against public key in the token... ok"),
        "{report}"
    );
    // A tampered file does not verify (the check above can fail).
    std::fs::write(&data, b"something else\n").unwrap();
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            s(&pem),
            "-signature",
            s(&t.path("sig-sha256-rsa-pkcs")),
            s(&data),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn pkcs11_tool_p256_ecdsa_signatures_verify_with_openssl() {
    let t = Tool::new("tool-ec");
    t.init_token();
    t.p11(&[
        "--slot",
        "0",
        "--login",
        "--pin",
        USER_PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "02",
        "--label",
        "ec-key",
    ]);
    let pem = t.public_pem("02", "ec");
    let text = t.openssl(&["pkey", "-pubin", "-in", s(&pem), "-noout", "-text"]);
    assert!(text.contains("prime256v1") || text.contains("P-256"), "{text}");
    let data = t.path("data.txt");
    std::fs::write(&data, b"threshold ECDSA through pkcs11-tool\n").unwrap();
    let hash = t.path("data.sha256");
    t.openssl(&["dgst", "-sha256", "-binary", "-out", s(&hash), s(&data)]);
    // ECDSA over a hash; pkcs11-tool converts r||s to DER for openssl.
    let sig = t.path("sig-ecdsa");
    t.sign("02", "ECDSA", &hash, &sig, &["--signature-format", "openssl"]);
    let v = t.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pem),
        "-signature",
        s(&sig),
        s(&data),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
    // ECDSA-SHA256: the module hashes.
    let sig = t.path("sig-ecdsa-sha256");
    t.sign(
        "02",
        "ECDSA-SHA256",
        &data,
        &sig,
        &["--signature-format", "openssl"],
    );
    let v = t.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pem),
        "-signature",
        s(&sig),
        s(&data),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
    // GnuTLS signs with the EC key too.
    let out = Command::new("p11tool")
        .arg("--provider")
        .arg(&t.module)
        .args(["--login", "--test-sign", "pkcs11:token=tool;object=ec-key"])
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .env("GNUTLS_PIN", USER_PIN)
        .output()
        .expect("p11tool installed");
    check("p11tool", &["--test-sign"], &out);
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        report.contains("Verifying against public key in the token... ok"),
        "{report}"
    );
}

/// Runs a DNS tool with our module configuration; panics with its output unless it succeeds.
fn run(t: &Tool, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} must be installed (.ci/run installs knot, knot-dnssecutils, ldnsutils): {e}")
        });
    check(program, args, &out);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn knot_keymgr_generates_in_the_token_and_kzonesign_output_validates() {
    let t = Tool::new("knot");
    t.init_token();
    let db = t.path("db");
    let zones = t.path("zones");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(
        zones.join("example.com.zone"),
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ IN NS ns1\n\
         ns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n",
    )
    .unwrap();
    let conf = t.path("knot.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    rundir: \"{db}\"\ndatabase:\n    storage: \"{db}\"\nkeystore:\n  - id: tchsm\n    backend: pkcs11\n\
             \x20   config: \"pkcs11:token=tool;pin-value={USER_PIN} {module}\"\npolicy:\n  - id: p11\n    keystore: tchsm\n\
             \x20   algorithm: ecdsap256sha256\n    manual: on\n    single-type-signing: on\nzone:\n  - domain: example.com\n\
             \x20   storage: \"{zones}\"\n    file: \"example.com.zone\"\n    dnssec-signing: on\n    dnssec-policy: p11\n",
            db = db.display(),
            zones = zones.display(),
            module = t.module.display(),
        ),
    )
    .unwrap();
    let c = s(&conf);
    run(
        &t,
        "keymgr",
        &[
            "-c",
            c,
            "example.com.",
            "generate",
            "algorithm=ecdsap256sha256",
            "ksk=yes",
            "zsk=yes",
        ],
    );
    // The key lives in the token (as threshold shares), not in Knot's key directory.
    let objects = t.p11(&["--slot", "0", "--login", "--pin", USER_PIN, "-O"]);
    assert!(objects.contains("Private Key Object; EC"), "{objects}");
    run(&t, "kzonesign", &["-c", c, "example.com."]);
    let zone = zones.join("example.com.zone");
    let signed = std::fs::read_to_string(&zone).unwrap();
    assert!(signed.contains("RRSIG") && signed.contains("DNSKEY"), "{signed}");
    run(&t, "kzonecheck", &["-o", "example.com.", "-d", "on", s(&zone)]);
    let verified = run(&t, "ldns-verify-zone", &[s(&zone)]);
    assert!(verified.contains("Zone is verified and complete"), "{verified}");
}
