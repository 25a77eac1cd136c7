//! The README's runbook "Replace a failed node (reshare)", run as written: every `sh` block between the
//! `runbook:start` and `runbook:end` markers, concatenated, from the repository's root with a fresh `$HOME` and the
//! built `tcrypto-node` and `tcrypto-ctl` first on `PATH`. Five daemons from `local-cluster.sh`, an Ed25519 key,
//! node3 killed, node6 initialised, pinned and started, `tcrypto-ctl reshare --replace node3=node6`, and OpenSSL
//! verifying a signature of the new sharing under the public key exported before the failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn runbook_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("<!-- runbook:start -->")
        .expect("runbook:start marker");
    let end = readme.find("<!-- runbook:end -->").expect("runbook:end marker");
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = runbook_blocks(&readme);
    assert!(blocks.len() >= 4, "only {} sh blocks found", blocks.len());
    let script = format!("set -euo pipefail\nset -x\n{}", blocks.concat());
    let home = tempfile::tempdir().unwrap();
    let lab = home.path().join("reshare-lab");
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the runbook failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
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
