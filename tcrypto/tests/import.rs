//! Key import (`tcrypto::import`): committed keys written by `openssl` (PEM and DER: PKCS#8, PKCS#1, SEC1), by BIND
//! `dnssec-keygen` and by `ldns-keygen` (`.private` v1.3 and v1.2) parse to the very public keys the tools wrote
//! (SPKI from `openssl pkey -pubout`; DNSKEY and key tag from the `.key` files), split into shares with the same
//! public key, and an imported RSA key signs for the `rsa` crate. Broken files fail with typed errors naming the
//! line.
#![cfg(feature = "dealer")]
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use tcrypto::import::{self, ImportError, KeyAlgorithm, PrivateKey, SplitKey};
use tcrypto::rsa::{MessageEncoding, SplitOptions, combine};
use tcrypto::{HashAlg, SessionId};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The DER of a `PUBLIC KEY` PEM written by `openssl pkey -pubout`.
fn spki_of(pub_pem: &str) -> Vec<u8> {
    let pem = read(pub_pem);
    let (label, der) = p256::pkcs8::der::pem::decode_vec(&pem).unwrap();
    assert_eq!(label, "PUBLIC KEY");
    der
}

#[test]
fn openssl_pem_and_der_keys_parse_to_the_public_keys_openssl_wrote() {
    let cases: [(&str, KeyAlgorithm, &str); 10] = [
        (
            "openssl_rsa2048.pem",
            KeyAlgorithm::Rsa,
            "openssl_rsa2048.pub.pem",
        ),
        (
            "openssl_rsa2048_pkcs1.pem",
            KeyAlgorithm::Rsa,
            "openssl_rsa2048.pub.pem",
        ),
        (
            "openssl_rsa2048_pkcs1.der",
            KeyAlgorithm::Rsa,
            "openssl_rsa2048.pub.pem",
        ),
        (
            "openssl_rsa2048_pkcs8.der",
            KeyAlgorithm::Rsa,
            "openssl_rsa2048.pub.pem",
        ),
        (
            "openssl_p256_sec1.pem",
            KeyAlgorithm::P256,
            "openssl_p256_sec1.pub.pem",
        ),
        (
            "openssl_p256_sec1.der",
            KeyAlgorithm::P256,
            "openssl_p256_sec1.pub.pem",
        ),
        (
            "openssl_p256_pkcs8.pem",
            KeyAlgorithm::P256,
            "openssl_p256_sec1.pub.pem",
        ),
        (
            "openssl_p256_pkcs8.der",
            KeyAlgorithm::P256,
            "openssl_p256_sec1.pub.pem",
        ),
        (
            "openssl_ed25519.pem",
            KeyAlgorithm::Ed25519,
            "openssl_ed25519.pub.pem",
        ),
        (
            "openssl_ed25519.der",
            KeyAlgorithm::Ed25519,
            "openssl_ed25519.pub.pem",
        ),
    ];
    for (file, algorithm, public) in cases {
        let bytes = read(file);
        let key = import::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), algorithm, "{file}");
        assert_eq!(key.public_key_spki_der().unwrap(), spki_of(public), "{file}");
        let debug = format!("{key:?}");
        assert!(debug.contains("redacted"), "{file}: {debug}");
        // The explicit entry points agree with the guessing one.
        let again = if file.ends_with(".pem") {
            import::parse_pem(std::str::from_utf8(&bytes).unwrap()).unwrap()
        } else {
            import::parse_der(&bytes).unwrap()
        };
        assert_eq!(again.public_key_spki_der().unwrap(), spki_of(public));
    }
}

#[test]
fn bad_pem_files_are_refused_naming_the_line() {
    let rsa = String::from_utf8(read("openssl_rsa2048.pem")).unwrap();
    let encrypted = String::from_utf8(read("openssl_ed25519_encrypted.pem")).unwrap();
    assert!(matches!(
        import::parse_pem(&encrypted),
        Err(ImportError::Encrypted)
    ));
    let syntax_line = |text: &str| match import::parse_pem(text) {
        Err(ImportError::Syntax { line, .. }) => line,
        other => panic!("expected a syntax error, got {other:?}"),
    };
    assert_eq!(syntax_line(&format!("\nhello\n{rsa}")), 2);
    assert_eq!(syntax_line(&format!("{rsa}\n{rsa}")), 30);
    assert_eq!(syntax_line(&rsa.replace("-----END PRIVATE KEY-----", "")), 1);
    assert_eq!(syntax_line(&rsa.replace("PRIVATE KEY", "CERTIFICATE")), 1);
    // A damaged base64 body (one character changed in line 5).
    let mut lines: Vec<String> = rsa.lines().map(str::to_string).collect();
    lines[4].replace_range(3..4, "!");
    assert_eq!(syntax_line(&lines.join("\n")), 1);
    assert!(matches!(
        import::parse_der(b"\x30\x03\x02\x01\x00"),
        Err(ImportError::Der(_))
    ));
    assert!(matches!(import::parse(b""), Err(ImportError::Der(_))));
}

/// `(flags, algorithm, public key)` of the DNSKEY record in a `.key` file.
fn dnskey_of(key_file: &Path) -> (u16, u8, Vec<u8>) {
    let text = std::fs::read_to_string(key_file).unwrap();
    let line = text
        .lines()
        .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
        .unwrap();
    let line = line.split(';').next().unwrap();
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens.iter().position(|t| *t == "DNSKEY").unwrap();
    let flags = tokens[at + 1].parse().unwrap();
    assert_eq!(tokens[at + 2], "3");
    let algorithm = tokens[at + 3].parse().unwrap();
    let b64: String = tokens[at + 4..].concat();
    (flags, algorithm, base64_decode(&b64))
}

fn base64_decode(text: &str) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// RFC 4034 appendix B.
fn key_tag(flags: u16, algorithm: u8, public_key: &[u8]) -> u16 {
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.extend([3, algorithm]);
    rdata.extend_from_slice(public_key);
    let mut acc: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        acc += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

/// The public key of the shares, as a DNSKEY public key field.
fn dnskey_of_shares(split: &SplitKey) -> Vec<u8> {
    match split {
        SplitKey::Rsa { public, .. } => {
            let e = public.public_exponent().to_be_bytes();
            let e = &e[e.iter().position(|&b| b != 0).unwrap()..];
            [&[e.len() as u8][..], e, &public.modulus_bytes()].concat()
        }
        SplitKey::P256 { shares, .. } => {
            use p256::elliptic_curve::sec1::ToSec1Point;
            let point = shares[0].public_key().to_affine().to_sec1_point(false);
            point.as_bytes()[1..].to_vec()
        }
        SplitKey::Ed25519 { public, .. } => public.public_key_bytes().to_vec(),
        _ => panic!("unknown kind"),
    }
}

#[test]
fn bind_and_ldns_private_files_import_with_the_same_dnskey_and_key_tag() {
    let mut seen = 0;
    for dir in ["bind", "ldns"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(data(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "private"))
            .collect();
        names.sort();
        for private in names {
            let stem = private.file_stem().unwrap().to_string_lossy().to_string();
            // K<name>+<alg>+<tag>
            let parts: Vec<&str> = stem.rsplitn(3, '+').collect();
            let (tag, alg): (u16, u8) = (parts[0].parse().unwrap(), parts[1].parse().unwrap());
            let text = std::fs::read_to_string(&private).unwrap();
            let parsed = import::parse_bind_private(&text).unwrap_or_else(|e| panic!("{stem}: {e}"));
            assert_eq!(parsed.algorithm, alg);
            assert_eq!(parsed.format, if dir == "bind" { (1, 3) } else { (1, 2) });
            let (flags, key_alg, public_key) = dnskey_of(&private.with_extension("key"));
            assert_eq!(key_alg, alg);
            assert_eq!(parsed.key.dnskey_public_key(), public_key, "{stem}");
            assert_eq!(
                key_tag(flags, alg, &parsed.key.dnskey_public_key()),
                tag,
                "{stem}"
            );
            // The guessing entry point reads it too.
            assert_eq!(
                import::parse(text.as_bytes()).unwrap().dnskey_public_key(),
                public_key
            );

            let split = import::split(
                parsed.key,
                3,
                5,
                &SplitOptions::default(),
                &mut rng(u64::from(tag)),
            )
            .unwrap();
            assert_eq!(
                dnskey_of_shares(&split),
                public_key,
                "{stem}: shared key, same DNSKEY"
            );
            if let SplitKey::Rsa { public, shares } = &split {
                assert!(public.is_ordinary(), "{stem}: BIND's primes are not safe");
                let hash = if alg == 8 {
                    HashAlg::Sha256
                } else {
                    HashAlg::Sha512
                };
                let msg = MessageEncoding::pkcs1v15_of(hash, stem.as_bytes());
                let session = SessionId([alg; 32]);
                let sig = combine(
                    public,
                    &session,
                    &msg,
                    &sign_all(shares, &[1, 4, 5], &session, &msg, 1),
                )
                .unwrap()
                .signature;
                rsa_crate_verifies(public, &msg, &sig);
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 7);
}

#[test]
fn openssl_ec_keys_split_to_shares_with_the_original_public_key() {
    for file in ["openssl_p256_sec1.pem", "openssl_ed25519.der"] {
        let key = import::parse(&read(file)).unwrap();
        let expected = key.dnskey_public_key();
        let split = import::split(key, 2, 3, &SplitOptions::default(), &mut rng(3)).unwrap();
        assert_eq!(dnskey_of_shares(&split), expected, "{file}");
        match &split {
            SplitKey::P256 { shares, .. } => assert_eq!(shares.len(), 3),
            SplitKey::Ed25519 { shares, .. } => assert_eq!(shares.len(), 3),
            _ => panic!("{file}: wrong kind"),
        }
    }
}

fn bind_error(text: &str) -> ImportError {
    import::parse_bind_private(text).map(|k| k.algorithm).unwrap_err()
}

#[test]
fn broken_bind_files_are_refused_naming_the_line() {
    let good = std::fs::read_to_string(data("bind/Kexample.com.+013+31281.private")).unwrap();
    let rsa = std::fs::read_to_string(data("bind/Kexample.com.+008+00784.private")).unwrap();
    let line_of = |e: ImportError| match e {
        ImportError::Syntax { line, .. } => line,
        other => panic!("expected a syntax error, got {other:?}"),
    };
    assert_eq!(line_of(bind_error(&good.replace("v1.3", "v1.1"))), 1);
    assert_eq!(line_of(bind_error(&format!("Algorithm: 13\n{good}"))), 1);
    assert_eq!(
        line_of(bind_error(&good.replace("(ECDSAP256SHA256)", "(ED25519)"))),
        2
    );
    assert!(matches!(
        bind_error(&good.replace("13 (ECDSAP256SHA256)", "14 (ECDSAP384SHA384)")),
        ImportError::UnsupportedAlgorithm { line: 2, .. }
    ));
    assert_eq!(line_of(bind_error(&good.replace("Created:", "Frobnicate:"))), 4);
    assert_eq!(
        line_of(bind_error(&good.replace("Created: 2026", "Created: x026"))),
        4
    );
    assert_eq!(
        line_of(bind_error(&format!("{good}Publish: 20260101000000\n"))),
        7
    );
    assert_eq!(
        line_of(bind_error(&good.replace("PrivateKey: ", "PrivateKey: *"))),
        3
    );
    assert_eq!(line_of(bind_error(&good.replace("Created", "no colon here"))), 4);
    assert!(matches!(
        bind_error(&format!("{good}Label: pkcs11:token=x\n")),
        ImportError::UnsupportedKey(_)
    ));
    let without_prime2: String = rsa
        .lines()
        .filter(|l| !l.starts_with("Prime2"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(matches!(
        bind_error(&without_prime2),
        ImportError::MissingField("Prime2")
    ));
    // Prime1 and Prime2 swapped with Exponent1: N is no longer p·q.
    let swapped = rsa
        .replace("Prime1:", "Tmp:")
        .replace("Exponent1:", "Prime1:")
        .replace("Tmp:", "Exponent1:");
    assert!(matches!(bind_error(&swapped), ImportError::Inconsistent(_)));
    // An ECDSA scalar of the wrong length.
    assert!(matches!(
        bind_error("Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n"),
        ImportError::Inconsistent(_)
    ));
    assert!(matches!(
        bind_error(""),
        ImportError::MissingField("Private-key-format")
    ));
}

#[test]
fn a_small_bind_rsa_key_needs_the_explicit_option() {
    let key = import::parse(&read("openssl_rsa1024.pem")).unwrap();
    assert!(matches!(key, PrivateKey::Rsa(_)));
    assert!(matches!(
        import::split(key, 2, 3, &SplitOptions::default(), &mut rng(1)),
        Err(ImportError::Rsa(tcrypto::rsa::Error::ModulusTooSmall {
            bits: 1024,
            ..
        }))
    ));
}
