//! Runs `examples/threshold_ecdsa.rs` on a file and checks its output with the `openssl` CLI.

use std::path::Path;

#[path = "common/example.rs"]
mod example;
use example::{Scratch, assert_refused, openssl, sign_and_check};

fn openssl_verify(out_dir: &Path, file: &Path) -> std::process::Output {
    let (public, signature) = (out_dir.join("public.pem"), out_dir.join("signature.der"));
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

#[test]
fn example_signature_is_accepted_by_openssl() {
    let scratch = Scratch::new("threshold-ecdsa-example");
    sign_and_check(
        &scratch,
        "threshold_ecdsa",
        "3",
        "5",
        openssl_verify,
        "Verified OK",
    );
}

#[test]
fn example_rejects_a_dishonest_majority_quorum() {
    let scratch = Scratch::new("threshold-ecdsa-example-bad");
    assert_refused(&scratch, "threshold_ecdsa", "3", "4", "honest majority");
}
