//! The `tcrypto-node` binary: init, clear start-up errors, status.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tcrypto-node");

fn write_config(dir: &Path, data_dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"n1\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"{}\"\n{extra}[[coordinators]]\nname = \"c\"\nspki_sha256 = \"{}\"\n",
            data_dir.display(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    cfg
}

fn run(args: &[&str], pass: &str) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("TCRYPTO_NODE_PASSPHRASE", pass)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_prints_the_pins_and_refuses_to_run_twice() {
    let dir = common::scratch("daemon-init");
    let cfg = write_config(&dir, &dir.join("data"), "");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, err) = run(&["init", "--config", cfg, "--insecure-fast-kdf"], "pw");
    assert!(ok, "{err}");
    assert!(out.contains("tls_spki_sha256 = \""), "{out}");
    assert!(out.contains("[[nodes]]"), "{out}");
    let public = std::fs::read_to_string(dir.join("data/node.pub")).unwrap();
    tcrypto_net::config::decode_public(&public).unwrap();
    let (ok, _, err) = run(&["init", "--config", cfg, "--insecure-fast-kdf"], "pw");
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, out, _) = run(&["status", "--config", cfg], "pw");
    assert!(ok);
    assert!(out.contains("keys 0"), "{out}");
    assert!(out.contains(": no"), "{out}");
}

#[test]
fn serve_with_a_wrong_passphrase_fails_clearly() {
    let dir = common::scratch("daemon-pw");
    let cfg = write_config(&dir, &dir.join("data"), "");
    let cfg = cfg.to_str().unwrap();
    assert!(run(&["init", "--config", cfg, "--insecure-fast-kdf"], "right").0);
    let (ok, _, err) = run(&["serve", "--config", cfg], "wrong");
    assert!(!ok);
    assert!(err.contains("wrong passphrase or key file"), "{err}");
}

#[test]
fn serve_with_an_unwritable_data_directory_fails_clearly() {
    let dir = common::scratch("daemon-ro");
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let cfg = write_config(&dir, &blocker.join("data"), "");
    let (ok, _, err) = run(&["serve", "--config", cfg.to_str().unwrap()], "pw");
    assert!(!ok);
    assert!(err.contains("is not writable"), "{err}");
}

#[test]
fn unknown_configuration_fields_are_refused() {
    let dir = common::scratch("daemon-cfg");
    let cfg = write_config(&dir, &dir.join("data"), "colour = \"red\"\n");
    let (ok, _, err) = run(&["init", "--config", cfg.to_str().unwrap()], "pw");
    assert!(!ok);
    assert!(err.contains("colour"), "{err}");
}
