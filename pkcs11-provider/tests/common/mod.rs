//! Shared helpers of the integration tests: where the built module is, and a throw-away configuration.
#![allow(dead_code, unreachable_pub)]

pub mod tool;

use std::path::{Path, PathBuf};

/// Tokens configured for tests; each test uses its own slot so login states do not interfere.
pub const TOKENS: usize = 13;
pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "user-pin-5678";

/// The `cdylib` cargo built for this test run. `cargo test` compiles the library with both crate types into
/// `target/<profile>/deps/`, next to the test binary (only `cargo build` copies it up to `target/<profile>/`, so
/// that copy may be stale or missing).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let so = exe
        .parent()
        .expect("target/<profile>/deps")
        .join("libpkcs11_provider.so");
    assert!(
        so.exists(),
        "{} was not built; cargo builds the cdylib with the tests",
        so.display()
    );
    so
}

/// A fresh directory under the target directory (kept for post-mortem inspection, wiped on the next run).
pub fn scratch_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("p11-test-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes a configuration with [`TOKENS`] tokens and the embedded 2-of-3 cluster, logging to `module.log` beside
/// it; returns its path.
pub fn write_config(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut text = String::from(
        "store = \"objects.sqlite\"\nbackend = \"embedded\"\nlog_file = \"module.log\"\nlog_level = \"info\"\n",
    );
    for i in 0..TOKENS {
        text.push_str(&format!("[[tokens]]\nlabel = \"test-{i}\"\n"));
    }
    text.push_str("[embedded]\ndir = \"nodes\"\nthreshold = 2\nparties = 3\n");
    let primes = fixtures.join("rsa-test-primes.txt");
    if primes.exists() {
        text.push_str(&format!("rsa_test_primes = \"{}\"\n", primes.display()));
    }
    let path = dir.join("pkcs11.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Initialises slot 0's token of a module driven directly (SO PIN `so-pin`, user PIN `user-pin`) and returns a
/// read-write session logged in as the user.
pub fn user_session(module: &pkcs11_provider::Module) -> cryptoki_sys::CK_SESSION_HANDLE {
    use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_SO, CKU_USER};
    module.init_token(0, b"so-pin", &[b' '; 32]).expect("C_InitToken");
    let s = module
        .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .expect("C_OpenSession");
    module.login(s, CKU_SO, b"so-pin").expect("SO login");
    module.init_pin(s, b"user-pin").expect("C_InitPIN");
    module.logout(s).expect("C_Logout");
    module.login(s, CKU_USER, b"user-pin").expect("user login");
    s
}

/// The RSA public key of object `h` (its `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`), for the `rsa` crate as verifier.
pub fn rsa_public(session: &cryptoki::session::Session, h: cryptoki::object::ObjectHandle) -> rsa::PublicKey {
    use cryptoki::object::{Attribute, AttributeType};
    let attrs = session
        .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
        .unwrap();
    let (Attribute::Modulus(n), Attribute::PublicExponent(e)) = (&attrs[0], &attrs[1]) else {
        panic!("{attrs:?}")
    };
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice(n, (n.len() * 8) as u32).unwrap(),
        rsa::BoxedUint::from_be_slice(e, (e.len() * 8) as u32).unwrap(),
    )
    .unwrap()
}

/// `CKA_EC_PARAMS` of P-256: the DER OBJECT IDENTIFIER prime256v1 (1.2.840.10045.3.1.7).
pub const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Generates a P-256 token key pair with `CKM_EC_KEY_PAIR_GEN`, checks the attributes both objects expose
/// (`CKA_KEY_TYPE` EC, `CKA_EC_PARAMS` the P-256 OID, `CKA_EC_POINT` the same DER OCTET STRING of an uncompressed
/// point, the private key sensitive and not extractable, `CKA_VALUE` unavailable), and returns the handles and the
/// public key as the `p256` crate reads it.
pub fn p256_key_pair(
    session: &cryptoki::session::Session,
    id: &[u8],
) -> (
    cryptoki::object::ObjectHandle,
    cryptoki::object::ObjectHandle,
    p256::ecdsa::VerifyingKey,
) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeType, KeyType};
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Id(id.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Id(id.to_vec()),
            ],
        )
        .unwrap();
    let read = |h| {
        session
            .get_attributes(
                h,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .unwrap()
    };
    let public_attrs = read(public);
    assert_eq!(public_attrs, read(private), "both objects describe one key");
    let [
        Attribute::KeyType(ty),
        Attribute::EcParams(params),
        Attribute::EcPoint(point),
    ] = &public_attrs[..]
    else {
        panic!("{public_attrs:?}")
    };
    assert_eq!((*ty, &params[..]), (KeyType::EC, &P256_OID[..]));
    assert_eq!(
        &point[..2],
        &[0x04, 65],
        "CKA_EC_POINT is a DER OCTET STRING of the uncompressed point"
    );
    assert_eq!(point[2], 0x04, "uncompressed SEC1 point");
    let secret = session
        .get_attributes(
            private,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Value,
            ],
        )
        .unwrap();
    assert_eq!(
        secret,
        [Attribute::Sensitive(true), Attribute::Extractable(false)],
        "CKA_VALUE is never returned"
    );
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point[2..]).unwrap();
    (public, private, vk)
}

/// Signs with every ECDSA mechanism and checks each signature with the `p256` crate: `CKM_ECDSA` over hash values
/// of SHA-1, SHA-256, SHA-384 and SHA-512 size (p256 truncates or zero-extends them by the SEC 1 rule on its own)
/// and over a short (8-byte) and a long (100-byte) input, `CKM_ECDSA_SHA{256,384,512}` where the module hashes;
/// the module's own `C_Verify` accepts each and refuses a signature over other data.
pub fn p256_signs_with_every_ecdsa_mechanism(
    session: &cryptoki::session::Session,
    public: cryptoki::object::ObjectHandle,
    private: cryptoki::object::ObjectHandle,
    vk: &p256::ecdsa::VerifyingKey,
    tag: &[u8],
) {
    use cryptoki::mechanism::Mechanism;
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let msg = [b"threshold ECDSA ".as_slice(), tag].concat();
    let check = |mech: &Mechanism<'_>, data: &[u8], prehash: &[u8]| {
        let sig = session.sign(mech, private, data).unwrap();
        assert_eq!(sig.len(), 64, "{mech:?}: r || s");
        let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        vk.verify_prehash(prehash, &s)
            .unwrap_or_else(|e| panic!("{mech:?} over {} bytes: {e}", data.len()));
        assert!(vk.verify_prehash(&sha2::Sha256::digest(b"other"), &s).is_err());
        session.verify(mech, public, data, &sig).unwrap();
        let mut other = data.to_vec();
        other[0] ^= 1;
        assert!(session.verify(mech, public, &other, &sig).is_err());
    };
    for hash in [
        sha1::Sha1::digest(&msg).to_vec(),
        sha2::Sha256::digest(&msg).to_vec(),
        sha2::Sha384::digest(&msg).to_vec(),
        sha2::Sha512::digest(&msg).to_vec(),
        vec![0xa5; 100],
    ] {
        check(&Mechanism::Ecdsa, &hash, &hash);
    }
    // p256's verifier wants at least 16 bytes; an 8-byte value is the same integer zero-extended to 32 bytes.
    let short = [0x5a; 8];
    check(
        &Mechanism::Ecdsa,
        &short,
        &[[0u8; 24].as_slice(), &short].concat(),
    );
    check(&Mechanism::EcdsaSha256, &msg, &sha2::Sha256::digest(&msg));
    check(&Mechanism::EcdsaSha384, &msg, &sha2::Sha384::digest(&msg));
    check(&Mechanism::EcdsaSha512, &msg, &sha2::Sha512::digest(&msg));
}

/// The `tcrypto-node` binary of this workspace (see [`tcrypto_net::testing::node_binary`]).
pub fn node_binary() -> PathBuf {
    tcrypto_net::testing::node_binary()
}
