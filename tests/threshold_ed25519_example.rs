//! Runs `examples/threshold_ed25519.rs` on a file and checks its output with the `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The example binary, built by `cargo test` next to the test executables (built here if missing).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("examples").join("threshold_ed25519");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "threshold_ed25519"])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    bin
}

fn openssl_verify(out_dir: &Path, file: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(out_dir.join("public.pem"))
        .arg("-rawin")
        .arg("-in")
        .arg(file)
        .arg("-sigfile")
        .arg(out_dir.join("signature.bin"))
        .output()
        .expect("the openssl CLI must be installed (CI installs it)")
}

#[test]
fn example_ed25519_signature_is_accepted_by_openssl() {
    let dir = std::env::temp_dir().join(format!("threshold-ed25519-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (k, n) in [("3", "5"), ("1", "1"), ("4", "4")] {
        let file = dir.join(format!("message-{k}-{n}.txt"));
        std::fs::write(&file, format!("signed by {k} of {n} parties after a DKG\n")).expect("write");
        let out_dir = dir.join(format!("out-{k}-{n}"));
        let run = Command::new(example_binary())
            .args(["-k", k, "-n", n, "--out"])
            .arg(&out_dir)
            .arg(&file)
            .output()
            .expect("run the example");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let sig = std::fs::read(out_dir.join("signature.bin")).expect("signature.bin");
        assert_eq!(sig.len(), 64, "raw Ed25519 signature");
        let ok = openssl_verify(&out_dir, &file);
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        assert!(String::from_utf8_lossy(&ok.stdout).contains("Signature Verified Successfully"));
        let other = dir.join("other.txt");
        std::fs::write(&other, b"a different message\n").expect("write");
        assert!(!openssl_verify(&out_dir, &other).status.success());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn example_ed25519_rejects_a_threshold_above_n() {
    let dir = std::env::temp_dir().join(format!("threshold-ed25519-example-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("m.txt");
    std::fs::write(&file, b"x").expect("write");
    let run = Command::new(example_binary())
        .args(["-k", "4", "-n", "3", "--out"])
        .arg(dir.join("out"))
        .arg(&file)
        .output()
        .expect("run the example");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("threshold"));
    std::fs::remove_dir_all(&dir).ok();
}
