//! Shared helpers of the integration tests: where the built module is, and a throw-away configuration.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// Tokens configured for tests; each test uses its own slot so login states do not interfere.
pub const TOKENS: usize = 12;
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

/// Writes a configuration with [`TOKENS`] tokens and the embedded 2-of-3 cluster; returns its path.
pub fn write_config(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut text = String::from("store = \"objects.sqlite\"\nbackend = \"embedded\"\n");
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
