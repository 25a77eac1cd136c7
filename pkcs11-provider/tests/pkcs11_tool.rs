//! The built module driven by OpenSC's `pkcs11-tool`, signatures checked by `openssl` (habit 21, issue 6).
//!
//! `.ci/run` installs `opensc` and `openssl`; a missing tool fails the test.
#![allow(clippy::unwrap_used)] // integration-test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::USER_PIN;
use common::tool::{Tool, check, s};

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
    t.keypairgen("rsa:2048", "01", "rsa-key");
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
    t.p256_keypairgen_sign_and_verify_with_openssl_and_p11tool("tool", "02", "ec-key");
}

/// Existing keys written into the token with `pkcs11-tool --write-object KEY --type privkey` (`C_CreateObject`):
/// an `openssl genrsa 2048` key (ordinary primes) and a P-256 key sign, and openssl verifies under the public keys
/// of the original files; the imported objects are marked neither local, always sensitive nor never extractable;
/// an RSA-1024 key is refused with `CKR_KEY_SIZE_RANGE`. (The installed OpenSC cannot write Ed25519 private keys,
/// "Unsupported key type: 0x43F"; `tests/cryptoki.rs` imports one through `C_CreateObject` directly.)
#[test]
fn pkcs11_tool_write_object_imports_existing_keys_that_sign_under_their_original_public_keys() {
    let t = Tool::new("tool-import");
    t.init_token();
    let data = t.path("data.txt");
    std::fs::write(&data, b"signed by an imported key\n").unwrap();
    let write_args = |key: &Path, id: &'static str| {
        let key = key.to_str().unwrap().to_string();
        let args = ["--slot", "0", "--login", "--pin", USER_PIN, "--write-object"].map(String::from);
        let rest = ["--type", "privkey", "--id", id, "--label", id].map(String::from);
        args.into_iter().chain([key]).chain(rest).collect::<Vec<String>>()
    };
    let write = |key: &Path, id: &'static str| {
        let args = write_args(key, id);
        t.p11(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let public_of = |key: &Path| {
        let public = key.with_extension("pub.pem");
        t.openssl(&["pkey", "-in", s(key), "-pubout", "-out", s(&public)]);
        public
    };
    let verify_dgst = |public: &Path, sig: &Path| {
        let v = t.openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            s(public),
            "-signature",
            s(sig),
            s(&data),
        ]);
        assert!(v.contains("Verified OK"), "{v}");
    };

    let rsa = t.path("rsa.pem");
    t.openssl(&["genrsa", "-out", s(&rsa), "2048"]);
    write(&rsa, "a1");
    let sig = t.path("rsa.sig");
    t.sign("a1", "SHA256-RSA-PKCS", &data, &sig, &[]);
    verify_dgst(&public_of(&rsa), &sig);
    // The imported key signs a zone through the module (ldns-signzone, libp11's engine): ldns and BIND validate
    // it, and its DNSKEY carries the original modulus (so the original key tag).
    let conf = libp11_engine_conf(&t);
    let zone = write_zone(&t, "imported.zone");
    let signed = t.path("imported.signed");
    let args = [
        "-E",
        "pkcs11",
        "-o",
        "example.com.",
        "-f",
        s(&signed),
        "-k",
        "RSASHA256,0:a1",
        s(&zone),
    ];
    run_with(&t, "ldns-signzone", &args, &[("OPENSSL_CONF", conf.as_path())]);
    assert_zone_validates(&t, &signed, &["-z"]);
    let modulus = t.openssl(&["rsa", "-noout", "-modulus", "-in", s(&rsa)]);
    let modulus = modulus.trim().trim_start_matches("Modulus=").to_ascii_lowercase();
    let text = std::fs::read_to_string(&signed).unwrap();
    let dnskey = text
        .lines()
        .find(|l| l.contains("\tDNSKEY\t"))
        .unwrap_or_else(|| panic!("no DNSKEY in\n{text}"));
    let rdata_fields: Vec<&str> = dnskey
        .split(';')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip_while(|f| *f != "DNSKEY")
        .collect();
    let key_field: String = rdata_fields[4..].concat();
    std::fs::write(t.path("dnskey.b64"), &key_field).unwrap();
    t.openssl(&["base64", "-d", "-A", "-in", "dnskey.b64", "-out", "dnskey.bin"]);
    let rdata = std::fs::read(t.path("dnskey.bin")).unwrap();
    let hex: String = rdata[4..].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rdata[..4], [3, 1, 0, 1], "{dnskey}");
    assert_eq!(hex, modulus, "{dnskey}");

    let p256 = t.path("p256.pem");
    t.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&p256),
    ]);
    write(&p256, "a2");
    let sig = t.path("p256.sig");
    t.sign(
        "a2",
        "ECDSA-SHA256",
        &data,
        &sig,
        &["--signature-format", "openssl"],
    );
    verify_dgst(&public_of(&p256), &sig);

    // Imported, not born here: CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are false.
    let objects = t.p11(&[
        "--slot", "0", "--login", "--pin", USER_PIN, "-O", "--type", "privkey",
    ]);
    assert_eq!(objects.matches("Private Key Object").count(), 2, "{objects}");
    for flag in ["always sensitive", "never extractable", "local"] {
        assert!(
            !objects.contains(flag),
            "an imported key is marked {flag}:\n{objects}"
        );
    }
    assert!(objects.contains("sensitive"), "{objects}");

    // Below 2048 bits the dealer refuses: CKR_KEY_SIZE_RANGE, and nothing is stored.
    let small = t.path("rsa-1024.pem");
    t.openssl(&["genrsa", "-out", s(&small), "1024"]);
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&t.module)
        .args(write_args(&small, "a4"))
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("CKR_KEY_SIZE_RANGE"),
        "{text}"
    );
    let objects = t.p11(&[
        "--slot", "0", "--login", "--pin", USER_PIN, "-O", "--type", "privkey",
    ]);
    assert_eq!(objects.matches("Private Key Object").count(), 2, "{objects}");
}

/// Runs a DNS tool with our module configuration; panics with its output unless it succeeds.
fn run(t: &Tool, program: &str, args: &[&str]) -> String {
    run_with(t, program, args, &[])
}

/// [`run`] with extra environment variables (e.g. `OPENSSL_CONF`).
fn run_with(t: &Tool, program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .envs(env.iter().copied())
        .current_dir(&t.dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{program} must be installed (.ci/run installs knot, knot-dnssecutils, ldnsutils, \
                 libengine-pkcs11-openssl, bind9-utils and pkcs11-provider from bookworm-backports): {e}"
            )
        });
    check(program, args, &out);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The `C_SignInit` lines of the module's log (`mechanism=0x… data=…`, one entry per distinct line) since the
/// last call; the log is emptied. This is how the README's table of what each host sends was measured.
fn sign_inits(t: &Tool) -> std::collections::BTreeSet<String> {
    let log = t.path("module.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::write(&log, "").unwrap();
    text.lines()
        .filter_map(|l| l.split_once("C_SignInit ").map(|(_, m)| m.trim().to_owned()))
        .collect()
}

/// Knot 3.2 (`keymgr`, `kzonesign`, through GnuTLS) signs example.com with keys in the token, one zone per
/// algorithm: P-256, RSA-2048 and Ed25519 generated by `keymgr` in the token (GnuTLS 3.7.9 asks
/// `C_GenerateKeyPair` for an Ed25519 key with the signing mechanism `CKM_EDDSA`, which the module takes as
/// `CKM_EC_EDWARDS_KEY_PAIR_GEN`); an Ed25519 key generated by `pkcs11-tool` is also taken in with `keymgr
/// import-pkcs11`. kzonecheck and ldns validate each zone, and the module's log shows what Knot signs with:
/// `CKM_ECDSA` and `CKM_RSA_PKCS` (digests), `CKM_EDDSA` (the data).
#[test]
fn knot_keymgr_generates_in_the_token_and_kzonesign_output_validates() {
    let t = Tool::new("knot");
    t.init_token();
    let knot = |algorithm: &str| {
        let base = t.path(algorithm);
        let db = base.join("db");
        let zones = base.join("zones");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::create_dir_all(&zones).unwrap();
        std::fs::write(
            zones.join("example.com.zone"),
            "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ IN NS ns1\n\
             ns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n",
        )
        .unwrap();
        let conf = base.join("knot.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n    rundir: \"{db}\"\ndatabase:\n    storage: \"{db}\"\nkeystore:\n  - id: tchsm\n    backend: pkcs11\n\
                 \x20   config: \"pkcs11:token=tool;pin-value={USER_PIN} {module}\"\npolicy:\n  - id: p11\n    keystore: tchsm\n\
                 \x20   algorithm: {algorithm}\n    manual: on\n    single-type-signing: on\nzone:\n  - domain: example.com\n\
                 \x20   storage: \"{zones}\"\n    file: \"example.com.zone\"\n    dnssec-signing: on\n    dnssec-policy: p11\n",
                db = db.display(),
                zones = zones.display(),
                module = t.module.display(),
            ),
        )
        .unwrap();
        (conf, zones.join("example.com.zone"))
    };
    let sign_and_validate = |conf: &Path, zone: &Path| {
        sign_inits(&t);
        run(&t, "kzonesign", &["-c", s(conf), "example.com."]);
        let signed = std::fs::read_to_string(zone).unwrap();
        assert!(signed.contains("RRSIG") && signed.contains("DNSKEY"), "{signed}");
        run(&t, "kzonecheck", &["-o", "example.com.", "-d", "on", s(zone)]);
        let verified = run(&t, "ldns-verify-zone", &[s(zone)]);
        assert!(verified.contains("Zone is verified and complete"), "{verified}");
        sign_inits(&t)
    };
    let mut objects = 0;
    for (algorithm, size, mechanism, kind) in [
        ("ecdsap256sha256", None, "mechanism=0x1041 data=false", "EC"),
        ("rsasha256", Some("size=2048"), "mechanism=0x1 data=false", "RSA"),
        ("ed25519", None, "mechanism=0x1057 data=true", "EC_EDWARDS"),
    ] {
        let (conf, zone) = knot(algorithm);
        let mut args = vec!["-c", s(&conf), "example.com.", "generate"];
        let alg = format!("algorithm={algorithm}");
        args.extend([alg.as_str(), "ksk=yes", "zsk=yes"]);
        args.extend(size);
        run(&t, "keymgr", &args);
        // The key lives in the token (as threshold shares), not in Knot's key directory.
        let listed = t.p11(&[
            "--slot", "0", "--login", "--pin", USER_PIN, "-O", "--type", "privkey",
        ]);
        objects += 1;
        assert_eq!(listed.matches("Private Key Object").count(), objects, "{listed}");
        assert!(
            listed.contains(&format!("Private Key Object; {kind}")),
            "{listed}"
        );
        assert_eq!(sign_and_validate(&conf, &zone), [mechanism.to_owned()].into());
    }

    let (conf, zone) = knot("ed25519-imported");
    std::fs::write(
        &conf,
        std::fs::read_to_string(&conf)
            .unwrap()
            .replace("algorithm: ed25519-imported", "algorithm: ed25519"),
    )
    .unwrap();
    let id = "0123456789abcdef0123456789abcdef01234567";
    t.keypairgen("EC:edwards25519", id, "knot-ed25519");
    run(
        &t,
        "keymgr",
        &[
            "-c",
            s(&conf),
            "example.com.",
            "import-pkcs11",
            id,
            "algorithm=ed25519",
            "size=256",
            "ksk=yes",
            "zsk=yes",
        ],
    );
    assert_eq!(
        sign_and_validate(&conf, &zone),
        ["mechanism=0x1057 data=true".to_owned()].into()
    );
}

/// A small zone without DNSSEC records, written to `name` in the tool's directory.
fn write_zone(t: &Tool, name: &str) -> PathBuf {
    let zone = t.path(name);
    std::fs::write(
        &zone,
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ IN NS ns1\n\
         ns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\nmail IN MX 10 www\n",
    )
    .unwrap();
    zone
}

/// Checks a signed zone with both independent validators, then checks that a tampered copy is rejected (so the
/// validation above can fail).
fn assert_zone_validates(t: &Tool, signed: &Path, dnssec_verify_args: &[&str]) {
    let verified = run(t, "ldns-verify-zone", &[s(signed)]);
    assert!(verified.contains("Zone is verified and complete"), "{verified}");
    let mut args = vec!["-o", "example.com."];
    args.extend_from_slice(dnssec_verify_args);
    args.push(s(signed));
    run(t, "dnssec-verify", &args);
    let text = std::fs::read_to_string(signed).unwrap();
    assert!(text.contains("192.0.2.2"), "{text}");
    let tampered = t.path("tampered.zone");
    std::fs::write(&tampered, text.replace("192.0.2.2", "192.0.2.99")).unwrap();
    let out = Command::new("ldns-verify-zone").arg(&tampered).output().unwrap();
    assert!(!out.status.success(), "a tampered zone must not verify");
}

/// An OpenSSL configuration loading libp11's engine (Debian libengine-pkcs11-openssl) with our module; the PIN
/// comes from the engine section, so ldns-signzone never prompts.
fn libp11_engine_conf(t: &Tool) -> PathBuf {
    let engine = std::env::var("LIBP11_ENGINE")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so".to_owned());
    assert!(
        Path::new(&engine).exists(),
        "{engine} missing: .ci/run installs libengine-pkcs11-openssl"
    );
    let conf = t.path("openssl-engine.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n[engine_section]\n\
             pkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {engine}\n\
             MODULE_PATH = {module}\nPIN = {USER_PIN}\ninit = 0\n",
            module = t.module.display(),
        ),
    )
    .unwrap();
    conf
}

#[test]
fn ldns_signzone_signs_through_the_libp11_engine_and_the_zone_validates() {
    let t = Tool::new("ldns");
    t.init_token();
    t.keypairgen("rsa:2048", "01", "ldns-rsa-ksk");
    t.keypairgen("rsa:2048", "03", "ldns-rsa-zsk");
    t.keypairgen("EC:prime256v1", "02", "ldns-ec-ksk");
    t.keypairgen("EC:prime256v1", "04", "ldns-ec-zsk");
    let conf = libp11_engine_conf(&t);
    let env = [("OPENSSL_CONF", conf.as_path())];
    for (alg, ksk, zsk, mechanism) in [
        ("RSASHA256", "01", "03", "mechanism=0x1 data=false"),
        ("ECDSAP256SHA256", "02", "04", "mechanism=0x1041 data=false"),
    ] {
        let zone = write_zone(&t, &format!("{alg}.zone"));
        let signed = t.path(&format!("{alg}.signed"));
        sign_inits(&t);
        let out = run_with(
            &t,
            "ldns-signzone",
            &[
                "-E",
                "pkcs11",
                "-o",
                "example.com.",
                "-f",
                s(&signed),
                "-K",
                &format!("{alg},0:{ksk}"),
                "-k",
                &format!("{alg},0:{zsk}"),
                s(&zone),
            ],
            &env,
        );
        assert!(out.contains("Engine key id"), "{out}");
        assert_eq!(sign_inits(&t), [mechanism.to_owned()].into(), "{alg}");
        let text = std::fs::read_to_string(&signed).unwrap();
        let algorithm = if alg == "RSASHA256" { " 8 " } else { " 13 " };
        assert!(
            text.lines()
                .filter(|l| l.contains("\tDNSKEY\t") && l.contains(algorithm))
                .count()
                == 2,
            "a KSK and a ZSK DNSKEY read from the token:\n{text}"
        );
        assert_zone_validates(&t, &signed, &[]);
    }
}

/// BIND 9.20's `dnssec-keyfromlabel` opens `pkcs11:` URIs through OpenSSL's store API, which the OpenSSL 3
/// `pkcs11-provider` (not libp11's engine: BIND 9.18 built against OpenSSL 3 has no engine support) serves from our
/// module. Debian bookworm ships BIND 9.18; `.ci/run` installs 9.20 and pkcs11-provider from bookworm-backports.
/// RSA, P-256 and Ed25519 zones validate; the module's log shows what BIND signs with (`CKM_RSA_PKCS`, a digest;
/// `CKM_ECDSA_SHA256` and `CKM_EDDSA`, the data). For Ed25519, `dnssec-keyfromlabel` writes the `.key` file but
/// fails writing `.private` ("failed to write key": BIND 9.20.23 asks OpenSSL for the raw private key of any
/// Ed25519 key it holds, which a token never gives), so the `.private` file is written here as BIND writes it for
/// the other algorithms (format, algorithm and the `Label:`, base64 of the URI with its NUL).
#[test]
fn bind_9_20_signs_through_the_openssl_pkcs11_provider_and_the_zone_validates() {
    let t = Tool::new("bind");
    t.init_token();
    t.keypairgen("rsa:2048", "01", "bind-rsa");
    t.keypairgen("EC:prime256v1", "02", "bind-ec");
    t.keypairgen("EC:edwards25519", "05", "bind-ed");
    let version = run(&t, "dnssec-keyfromlabel", &["-V"]);
    let minor: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.strip_prefix("9."))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected version line {version:?}"));
    assert!(
        minor >= 20,
        "BIND 9.20 or later is needed for pkcs11: labels, found {version}: .ci/run installs bind9-utils from \
         bookworm-backports"
    );
    let modules = t.openssl(&["version", "-m"]);
    let modules = modules
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("openssl version -m: {modules}"));
    let provider = Path::new(modules).join("pkcs11.so");
    assert!(
        provider.exists(),
        "{} missing: .ci/run installs pkcs11-provider from bookworm-backports",
        provider.display()
    );
    let conf = t.path("openssl-provider.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\n\
             default = default_sect\npkcs11 = pkcs11_sect\n[default_sect]\nactivate = 1\n[pkcs11_sect]\n\
             module = {provider}\npkcs11-module-path = {module}\npkcs11-module-token-pin = {USER_PIN}\nactivate = 1\n",
            provider = provider.display(),
            module = t.module.display(),
        ),
    )
    .unwrap();
    let env = [("OPENSSL_CONF", conf.as_path())];
    let keys = t.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for (alg, label, mechanism) in [
        ("RSASHA256", "bind-rsa", "mechanism=0x1 data=false"),
        ("ECDSAP256SHA256", "bind-ec", "mechanism=0x1044 data=true"),
        ("ED25519", "bind-ed", "mechanism=0x1057 data=true"),
    ] {
        // One key per zone, flagged KSK and signing everything (`-z`); `-S` takes it from the key directory.
        let uri = format!("pkcs11:token=tool;object={label}");
        let args = ["-K", s(&keys), "-a", alg, "-f", "KSK", "-l", &uri, "example.com."];
        let name = if alg == "ED25519" {
            let out = Command::new("dnssec-keyfromlabel")
                .args(args)
                .env("TCHSM_PKCS11_CONFIG", &t.config)
                .env("OPENSSL_CONF", &conf)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && text.contains("failed to write key"),
                "BIND wrote an Ed25519 token key (update the README's table): {text}"
            );
            let key = std::fs::read_dir(&keys)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .find(|f| f.starts_with("Kexample.com.+015+") && f.ends_with(".key"))
                .unwrap_or_else(|| panic!("no .key file written: {text}"));
            let name = key.trim_end_matches(".key").to_owned();
            let uri_file = t.path("bind-ed.uri");
            std::fs::write(&uri_file, format!("{uri}\0")).unwrap();
            let label = t.openssl(&["base64", "-A", "-in", s(&uri_file)]);
            std::fs::write(
                keys.join(format!("{name}.private")),
                format!(
                    "Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\nLabel: {}\nCreated: 20261207000000\n\
                     Publish: 20261207000000\nActivate: 20261207000000\n",
                    label.trim()
                ),
            )
            .unwrap();
            name
        } else {
            let out = run_with(&t, "dnssec-keyfromlabel", &args, &env);
            out.lines()
                .find(|l| l.starts_with("Kexample.com."))
                .unwrap_or_else(|| panic!("no key name in {out:?}"))
                .to_owned()
        };
        let private = std::fs::read_to_string(keys.join(format!("{name}.private"))).unwrap();
        assert!(
            private.contains("Label:")
                && !private.contains("PrivateExponent")
                && !private.contains("PrivateKey"),
            "the key file must only name the token key:\n{private}"
        );
        let zone = write_zone(&t, &format!("{alg}.bind.zone"));
        let signed = t.path(&format!("{alg}.bind.signed"));
        sign_inits(&t);
        run_with(
            &t,
            "dnssec-signzone",
            &[
                "-z",
                "-S",
                "-K",
                s(&keys),
                "-o",
                "example.com.",
                "-f",
                s(&signed),
                s(&zone),
            ],
            &env,
        );
        assert_eq!(sign_inits(&t), [mechanism.to_owned()].into(), "{alg}");
        assert_zone_validates(&t, &signed, &["-z"]);
        std::fs::remove_file(keys.join(format!("{name}.key"))).unwrap();
        std::fs::remove_file(keys.join(format!("{name}.private"))).unwrap();
    }
}

/// Runs `tests/<script>` with python3 (python-pkcs11) against the module and the token "tool" of `t`; panics with
/// its output unless it succeeds; returns its stdout.
fn python_pkcs11(t: &Tool, script: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let out = Command::new("python3")
        .arg(&path)
        .arg(&t.module)
        .arg("tool")
        .current_dir(&t.dir)
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .output()
        .expect("python3 with python-pkcs11 must be installed (.ci/run installs it with pip)");
    check("python3", &[script], &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn python_pkcs11_generates_finds_and_signs_and_openssl_verifies() {
    let t = Tool::new("python-pkcs11");
    t.init_token();
    assert!(python_pkcs11(&t, "python_pkcs11.py").contains("Verified OK"));
}

/// `C_UnwrapKey` from python-pkcs11 (`tests/python_pkcs11_unwrap.py`): RSA-2048, P-256 and Ed25519 PKCS#8 keys made
/// by openssl, wrapped by openssl under an AES key generated in the token (RFC 5649) and under one written with
/// `C_CreateObject` (RFC 3394), unwrapped into the token, signing under their original public keys (openssl
/// verifies); damaged data, the wrong key, a private key as unwrapping key and inconsistent templates refused.
#[test]
fn python_pkcs11_unwraps_keys_wrapped_by_openssl_and_they_sign_under_their_original_public_keys() {
    let t = Tool::new("python-unwrap");
    t.init_token();
    let text = python_pkcs11(&t, "python_pkcs11_unwrap.py");
    assert!(text.contains("all unwrap checks passed"), "{text}");
    // The unwrapped keys are token objects (shares), the AES keys are gone with the session.
    let objects = t.p11(&["--slot", "0", "--login", "--pin", USER_PIN, "-O"]);
    assert_eq!(objects.matches("Private Key Object").count(), 3, "{objects}");
    assert!(!objects.contains("Secret Key Object"), "{objects}");
}

/// The lines of `output` from the one that starts with `header` up to the next blank line.
fn block<'a>(output: &'a str, header: &str) -> &'a str {
    let start = output
        .find(header)
        .unwrap_or_else(|| panic!("no `{header}` in:\n{output}"));
    let rest = &output[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn opendnssec_hsm_self_test_generates_signs_and_deletes_through_the_module() {
    let t = Tool::new("ods");
    t.init_token();
    let conf = t.path("conf.xml");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Configuration>\n<RepositoryList>\n\
             <Repository name=\"tchsm\"><Module>{module}</Module><TokenLabel>tool</TokenLabel>\
             <PIN>{USER_PIN}</PIN></Repository>\n</RepositoryList>\n\
             <Common><Logging><Syslog><Facility>local0</Facility></Syslog></Logging>\
             <PolicyFile>{dir}/kasp.xml</PolicyFile><ZoneListFile>{dir}/zonelist.xml</ZoneListFile></Common>\n\
             <Enforcer><Datastore><SQLite>{dir}/kasp.db</SQLite></Datastore></Enforcer>\n\
             <Signer><WorkingDirectory>{dir}</WorkingDirectory></Signer>\n</Configuration>\n",
            module = t.module.display(),
            dir = t.dir.display(),
        ),
    )
    .unwrap();
    // OpenDNSSEC's libhsm self-test (Debian libhsm-bin): it also tries key types and sizes this token does not
    // offer (DSA, GOST, P-384, Ed448, RSA sizes without test primes) and then exits non-zero, so the exit code is
    // not the verdict; the sections of the algorithms we serve are.
    let out = Command::new("ods-hsmutil")
        .args(["-c", conf.to_str().unwrap(), "test", "tchsm"])
        .env("TCHSM_PKCS11_CONFIG", &t.config)
        .current_dir(&t.dir)
        .output()
        .expect("ods-hsmutil must be installed (Debian libhsm-bin; .ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // What libhsm signs with, from the module's log: CKM_RSA_PKCS (a digest) and CKM_EDDSA (the data).
    assert_eq!(
        sign_inits(&t),
        [
            "mechanism=0x1 data=false".to_owned(),
            "mechanism=0x1057 data=true".to_owned()
        ]
        .into(),
        "{text}"
    );
    let rsa = block(&text, "Generating 2048-bit RSA key... ");
    for line in [
        "Generating 2048-bit RSA key... OK",
        "Extracting key identifier... OK",
        "Signing (RSA/SHA1) with key... OK",
        "Signing (RSA/SHA256) with key... OK",
        "Signing (RSA/SHA512) with key... OK",
        "Deleting key... OK",
    ] {
        assert!(rsa.contains(line), "`{line}` missing from:\n{text}");
    }
    // libhsm 2.1.12's self-test prints the ECDSA signing line but never signs (its loop body ends there), so key
    // generation and the key id are what it checks for P-256.
    let ec = block(&text, "Generating ECDSA Curve P-256 key... ");
    assert!(
        ec.contains("Generating ECDSA Curve P-256 key... OK\nExtracting key identifier... OK"),
        "{text}"
    );
    let ed = block(&text, "Generating ED25519 key... ");
    for line in [
        "Generating ED25519 key... OK",
        "Signing with key... OK",
        "Deleting key... OK",
    ] {
        assert!(ed.contains(line), "`{line}` missing from:\n{text}");
    }
    assert!(
        text.contains("Generating 1024 bytes of random data... OK"),
        "{text}"
    );
}
