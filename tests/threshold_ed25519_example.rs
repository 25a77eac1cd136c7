//! Runs `examples/threshold_ed25519.rs` on a file and checks its output with the `openssl` CLI.

use std::path::Path;

#[path = "common/example.rs"]
mod example;
use example::{Scratch, assert_refused, openssl, sign_and_check};

fn openssl_verify(out_dir: &Path, file: &Path) -> std::process::Output {
    let (public, signature) = (out_dir.join("public.pem"), out_dir.join("signature.bin"));
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
}

#[test]
fn example_ed25519_signature_is_accepted_by_openssl() {
    let scratch = Scratch::new("threshold-ed25519-example");
    for (k, n) in [("3", "5"), ("1", "1"), ("4", "4")] {
        let out_dir = sign_and_check(
            &scratch,
            "threshold_ed25519",
            k,
            n,
            openssl_verify,
            "Signature Verified Successfully",
        );
        let sig = std::fs::read(out_dir.join("signature.bin")).expect("signature.bin");
        assert_eq!(sig.len(), 64, "raw Ed25519 signature");
    }
}

#[test]
fn example_ed25519_rejects_a_threshold_above_n() {
    let scratch = Scratch::new("threshold-ed25519-example-bad");
    assert_refused(&scratch, "threshold_ed25519", "4", "3", "threshold");
}
