//! Runs `examples/reshare.rs` for each algorithm (a 3-of-5 key through 4-of-7, 2-of-3, a refresh and 3-of-5) and
//! checks with the `openssl` CLI that the last sharing's signature verifies under the public key written before
//! any reshare, and that both public keys are the same. RSA uses the committed 384-bit test safe primes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/example.rs"]
mod example;
use example::{Scratch, example_binary, openssl};

fn run(algorithm: &str, scratch: &Scratch) -> (PathBuf, PathBuf, Output) {
    let file = scratch.0.join("message.txt");
    std::fs::write(
        &file,
        format!("signed by a {algorithm} key after four reshares\n"),
    )
    .expect("write");
    let out = scratch.0.join(format!("out-{algorithm}"));
    let primes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tcrypto/tests/data/safe_primes_384.txt");
    let run = Command::new(example_binary("reshare"))
        .args(["--algorithm", algorithm, "--primes"])
        .arg(&primes)
        .arg("--out")
        .arg(&out)
        .arg(&file)
        .output()
        .expect("run the example");
    (out, file, run)
}

fn verify(algorithm: &str, out: &Path, file: &Path) -> Output {
    let (public, signature) = (out.join("public-before.pem"), out.join("signature.bin"));
    if algorithm == "ed25519" {
        openssl(&[
            "pkeyutl".as_ref(),
            "-verify".as_ref(),
            "-pubin".as_ref(),
            "-inkey".as_ref(),
            public.as_os_str(),
            "-rawin".as_ref(),
            "-in".as_ref(),
            file.as_os_str(),
            "-sigfile".as_ref(),
            signature.as_os_str(),
        ])
    } else {
        openssl(&[
            "dgst".as_ref(),
            "-sha256".as_ref(),
            "-verify".as_ref(),
            public.as_os_str(),
            "-signature".as_ref(),
            signature.as_os_str(),
            file.as_os_str(),
        ])
    }
}

fn check(algorithm: &str, accepted: &str) {
    let scratch = Scratch::new(&format!("reshare-example-{algorithm}"));
    let (out, file, run) = run(algorithm, &scratch);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    for step in [
        "3-of-5 -> 4-of-7",
        "4-of-7 -> 2-of-3",
        "refresh 2-of-3",
        "2-of-3 -> 3-of-5",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(step) && l.contains("public key unchanged")),
            "{step} missing: {stdout}"
        );
    }
    let ok = verify(algorithm, &out, &file);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(accepted));
    assert_eq!(
        std::fs::read(out.join("public-before.pem")).expect("before"),
        std::fs::read(out.join("public-after.pem")).expect("after")
    );
    let other = scratch.0.join("other.txt");
    std::fs::write(&other, b"another message\n").expect("write");
    assert!(!verify(algorithm, &out, &other).status.success());
}

#[test]
fn reshare_example_rsa_signature_is_accepted_by_openssl_under_the_first_public_key() {
    check("rsa", "Verified OK");
}

#[test]
fn reshare_example_ecdsa_signature_is_accepted_by_openssl_under_the_first_public_key() {
    check("ecdsa", "Verified OK");
}

#[test]
fn reshare_example_ed25519_signature_is_accepted_by_openssl_under_the_first_public_key() {
    check("ed25519", "Signature Verified Successfully");
}
