//! Running a threshold-signing example (`examples/threshold_*.rs`) on a file and checking its output with the
//! `openssl` CLI: shared by the ECDSA and Ed25519 example tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example binary `name`, built by `cargo test` next to the test executables (built here if missing).
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("examples").join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    bin
}

/// A fresh scratch directory for one test (removed by [`Scratch`]'s drop).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Runs example `name` with `-k k -n n --out out_dir file`.
pub(crate) fn run_example(name: &str, k: &str, n: &str, out_dir: &Path, file: &Path) -> Output {
    Command::new(example_binary(name))
        .args(["-k", k, "-n", n, "--out"])
        .arg(out_dir)
        .arg(file)
        .output()
        .expect("run the example")
}

/// Runs the `openssl` CLI with `args`.
pub(crate) fn openssl(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI must be installed (CI installs it)")
}

/// Signs a message with example `name` as `k`-of-`n`, checks that `verify(out_dir, file)` (an `openssl` run)
/// accepts it and prints `accepted`, and that it refuses the signature for another message. Returns the output
/// directory's path inside `scratch`.
pub(crate) fn sign_and_check(
    scratch: &Scratch,
    name: &str,
    k: &str,
    n: &str,
    verify: impl Fn(&Path, &Path) -> Output,
    accepted: &str,
) -> PathBuf {
    let file = scratch.0.join(format!("message-{k}-{n}.txt"));
    std::fs::write(
        &file,
        format!("signed by {k} of {n} parties, no one holding the key\n"),
    )
    .expect("write");
    let out_dir = scratch.0.join(format!("out-{k}-{n}"));
    let run = run_example(name, k, n, &out_dir, &file);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ok = verify(&out_dir, &file);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(accepted));
    let other = scratch.0.join("other.txt");
    std::fs::write(&other, b"a different message\n").expect("write");
    assert!(!verify(&out_dir, &other).status.success());
    out_dir
}

/// Example `name` refuses `-k k -n n` with an error that mentions `reason`.
pub(crate) fn assert_refused(scratch: &Scratch, name: &str, k: &str, n: &str, reason: &str) {
    let file = scratch.0.join("m.txt");
    std::fs::write(&file, b"x").expect("write");
    let run = run_example(name, k, n, &scratch.0.join("out"), &file);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains(reason));
}
