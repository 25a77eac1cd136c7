//! Runs the README quickstart (`examples/threshold_rsa.rs`) and checks its output with the `openssl` command line,
//! exactly as the README tells a user to. The key is dealt from the committed test primes (`--fixture-primes`):
//! the safe-prime search (seconds to minutes, at random) is tested in `tcrypto` and would only slow this test down.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[path = "common/example.rs"]
mod example;

#[test]
fn readme_quickstart_signatures_verify_with_openssl() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("trsa-example-{}", std::process::id()));
    let file = root.join("README.md");
    let status = Command::new(example::example_binary("threshold_rsa"))
        .args(["-k", "3", "-n", "5", "--bits", "2048", "--fixture-primes"])
        .arg("--out")
        .arg(&out)
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    for (sig, pss) in [("signature-pkcs1.bin", false), ("signature-pss.bin", true)] {
        let mut cmd = Command::new("openssl");
        cmd.args(["dgst", "-sha256"]);
        if pss {
            cmd.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]);
        }
        let output = cmd
            .arg("-verify")
            .arg(out.join("public.pem"))
            .arg("-signature")
            .arg(out.join(sig))
            .arg(&file)
            .output()
            .expect("the openssl command line tool must be installed (.ci/run installs it)");
        assert!(
            output.status.success(),
            "{sig}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("Verified OK"));
    }
    let pem = std::fs::read_to_string(out.join("public.pem")).unwrap();
    let text = Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(out.join("public.pem"))
        .output()
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(String::from_utf8_lossy(&text.stdout).contains("Public-Key: (2048 bit)"));
}
