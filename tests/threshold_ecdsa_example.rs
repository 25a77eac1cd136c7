//! Runs `examples/threshold_ecdsa.rs` on a file and checks its output with the `openssl` CLI.

use std::path::PathBuf;
use std::process::Command;

/// The example binary, built by `cargo test` next to the test executables (built here if missing).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("examples").join("threshold_ecdsa");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "threshold_ecdsa"])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    bin
}

#[test]
fn example_signature_is_accepted_by_openssl() {
    let dir = std::env::temp_dir().join(format!("threshold-ecdsa-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("message.txt");
    std::fs::write(&file, b"signed by 3 of 5 parties, no one holding the key\n").expect("write");
    let out_dir = dir.join("out");
    let run = Command::new(example_binary())
        .args(["-k", "3", "-n", "5", "--out"])
        .arg(&out_dir)
        .arg(&file)
        .output()
        .expect("run the example");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let verify = |f: &PathBuf| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(out_dir.join("public.pem"))
            .arg("-signature")
            .arg(out_dir.join("signature.der"))
            .arg(f)
            .output()
            .expect("the openssl CLI must be installed (CI installs it)")
    };
    let ok = verify(&file);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Verified OK"));
    let other = dir.join("other.txt");
    std::fs::write(&other, b"a different message\n").expect("write");
    assert!(!verify(&other).status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn example_rejects_a_dishonest_majority_quorum() {
    let dir = std::env::temp_dir().join(format!("threshold-ecdsa-example-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("m");
    std::fs::write(&file, b"x").expect("write");
    let run = Command::new(example_binary())
        .args(["-k", "3", "-n", "4", "--out"])
        .arg(dir.join("out"))
        .arg(&file)
        .output()
        .expect("run the example");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("honest majority"));
    std::fs::remove_dir_all(&dir).ok();
}
