//! The README's runbook "Replace a failed node (reshare)", run as written: every `sh` block between the
//! `runbook:start` and `runbook:end` markers, concatenated, from the repository's root with a fresh `$HOME` and the
//! built `tcrypto-node` and `tcrypto-ctl` first on `PATH`. Five daemons from `local-cluster.sh`, an Ed25519 key,
//! node3 killed, node6 initialised, pinned and started, `tcrypto-ctl reshare --replace node3=node6`, and OpenSSL
//! verifying a signature of the new sharing under the public key exported before the failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn runbook_blocks(readme: &str, marker: &str) -> Vec<String> {
    let start = readme
        .find(&format!("<!-- {marker}:start -->"))
        .unwrap_or_else(|| panic!("{marker}:start marker"));
    let end = readme
        .find(&format!("<!-- {marker}:end -->"))
        .unwrap_or_else(|| panic!("{marker}:end marker"));
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unterminated sh block in the runbook");
    blocks
}

/// Kills the runbook's daemons whatever happens.
struct Daemons(std::path::PathBuf);

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Ok(pids) = std::fs::read_to_string(self.0.join("pids")) {
            for pid in pids.lines() {
                let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
            }
        }
    }
}

#[test]
fn the_replace_a_failed_node_runbook_runs_as_written_and_openssl_verifies_the_new_sharing() {
    let stdout = run_runbook("runbook", "reshare-lab", 4);
    assert!(stdout.contains("Signature Verified Successfully"), "{stdout}");
    // The key is 3-of-5 on node1, node2, node4, node5 and node6 at epoch 1.
    assert!(
        stdout.contains("epoch 1, 3-of-5 on node1, node2, node4, node5, node6"),
        "{stdout}"
    );
    let list: Vec<&str> = stdout.lines().filter(|l| l.contains("\ted25519\t")).collect();
    assert_eq!(list.len(), 1, "{stdout}");
    assert!(list[0].contains("\t3\t5\t"), "{list:?}");
}

/// Runs the README's `sh` blocks between the `MARKER:start` and `MARKER:end` markers (at least `min_blocks`) as
/// written, from the repository's root with a fresh `$HOME` (daemons under `$HOME/LAB` killed afterwards); stdout.
fn run_runbook(marker: &str, lab: &str, min_blocks: usize) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = runbook_blocks(&readme, marker);
    assert!(
        blocks.len() >= min_blocks,
        "only {} sh blocks found",
        blocks.len()
    );
    let script = format!("set -euo pipefail\nset -x\n{}", blocks.concat());
    let home = tempfile::tempdir().unwrap();
    let lab = home.path().join(lab);
    let _daemons = Daemons(lab.clone());
    let node_bin = Path::new(env!("CARGO_BIN_EXE_tcrypto-node"));
    let path = format!(
        "{}:{}",
        node_bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script_file = home.path().join("runbook.sh");
    std::fs::write(&script_file, &script).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(&script_file)
        .current_dir(root.canonicalize().unwrap())
        .env("HOME", home.path())
        .env("PATH", path);
    for var in [
        "TCRYPTO_NODE_PASSPHRASE",
        "TCRYPTO_COORDINATOR_PASSPHRASE",
        "RUST_LOG",
        "TCRYPTO_NODE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the runbook failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

#[cfg(feature = "dealer")]
#[test]
fn the_import_runbook_runs_as_written_and_imported_keys_sign_under_their_original_public_keys() {
    let stdout = run_runbook("import", "import-lab", 4);
    // RSA through `openssl dgst -verify`, Ed25519 through `openssl pkeyutl -verify`, both under the public keys
    // taken from the original files.
    assert_eq!(stdout.matches("Verified OK").count(), 1, "{stdout}");
    assert!(stdout.contains("Signature Verified Successfully"), "{stdout}");
    // The exported DNSKEY of the BIND key is BIND's own (flags, protocol, algorithm, public key).
    let rdata = |line: &str| -> String {
        let fields: Vec<&str> = line
            .split(';')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let at = fields.iter().position(|f| *f == "DNSKEY").unwrap();
        fields[at + 1..].concat()
    };
    let dnskeys: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains(" DNSKEY ") && !l.starts_with(';'))
        .map(rdata)
        .collect();
    assert_eq!(dnskeys.len(), 2, "{stdout}");
    assert_eq!(dnskeys[0], dnskeys[1], "the exported DNSKEY is not BIND's");
}
