//! The shipped systemd unit (`deploy/tcrypto-node@.service`) loads without a warning in systemd's own checker
//! (`systemd-analyze verify`, with `ExecStart` pointed at the built binary) and keeps the exposure score that
//! `systemd-analyze security` gives it at 2.0 or lower ("OK").
#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tcrypto-node");

#[test]
fn the_unit_file_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/tcrypto-node@.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/tcrypto-node serve --config /etc/tcrypto/%i.toml"));
    let dir = std::env::temp_dir().join(format!("tcrypto-unit-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tcrypto-node@node1.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/tcrypto-node", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed: .ci/run installs it");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--threshold=20",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
