//! The README's "Real nodes" walk-through, run as written: every `sh` block between the `walkthrough:start` and
//! `walkthrough:end` markers, concatenated, in a fresh `$HOME`, with the built `tcrypto-node` and `tcrypto-ctl`
//! first on `PATH`. Three real daemons on 127.0.0.2-4, an offline RSA ceremony (committed test primes through the
//! `CEREMONY_TEST_PRIMES` variable the README shows), import into running nodes, P-256 and Ed25519 keys by DKG, and
//! OpenSSL verifying a signature of each. The README cannot drift from what the tools do.
#![cfg(feature = "dealer")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The walk-through's shell blocks, in order.
fn walkthrough_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("README has a walkthrough:start marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("README has a walkthrough:end marker");
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
    assert!(current.is_none(), "unterminated sh block in the walk-through");
    blocks
}

/// Kills the walk-through's daemons whatever happens (their pid files), so a failed run leaves nothing behind.
struct Daemons(PathBuf);

impl Drop for Daemons {
    fn drop(&mut self) {
        for i in 1..=3 {
            let pid_file = self.0.join(format!("node{i}/tcrypto-node.pid"));
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
            }
        }
    }
}

#[test]
fn the_readme_walkthrough_runs_as_written_and_openssl_verifies_the_ceremony_and_dkg_signatures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = walkthrough_blocks(&readme);
    assert!(blocks.len() >= 10, "only {} sh blocks found", blocks.len());
    let script = format!("set -euo pipefail\nset -x\n{}", blocks.concat());

    let home = tempfile::tempdir().unwrap();
    let lab = home.path().join("tcrypto-lab");
    let _daemons = Daemons(lab.clone());
    let node_bin = Path::new(env!("CARGO_BIN_EXE_tcrypto-node"));
    let ctl_bin = Path::new(env!("CARGO_BIN_EXE_tcrypto-ctl"));
    assert_eq!(node_bin.parent(), ctl_bin.parent());
    let path = format!(
        "{}:{}",
        node_bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script_file = home.path().join("walkthrough.sh");
    std::fs::write(&script_file, &script).unwrap();
    let primes = root.join("tcrypto/tests/data/safe_primes_1024.txt");
    let mut cmd = Command::new("bash");
    cmd.arg(&script_file)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("PATH", path)
        .env("CEREMONY_TEST_PRIMES", primes.canonicalize().unwrap());
    // Literally as an operator's shell: none of the test process's own settings leak in.
    for var in [
        "TCRYPTO_NODE_PASSPHRASE",
        "TCRYPTO_COORDINATOR_PASSPHRASE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: String = (1..=3)
        .map(|i| {
            let log = std::fs::read_to_string(lab.join(format!("node{i}.log"))).unwrap_or_default();
            format!("--- node{i}.log\n{log}")
        })
        .collect();
    assert!(
        out.status.success(),
        "the walk-through failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{logs}",
        out.status
    );
    // RSA (ceremony) and P-256 (DKG) through `openssl dgst -verify`, Ed25519 through `openssl pkeyutl -verify`.
    assert_eq!(stdout.matches("Verified OK").count(), 2, "{stdout}");
    assert!(stdout.contains("Signature Verified Successfully"), "{stdout}");
    // The running nodes served the imported key without a restart.
    assert_eq!(stdout.matches("serves key").count(), 3, "{stdout}");
    // DNSKEY records for the RSA (KSK, algorithm 8) and P-256 (ZSK, algorithm 13) keys.
    assert!(
        stdout.contains("example.com. 3600 IN DNSKEY 257 3 8 "),
        "{stdout}"
    );
    assert!(
        stdout.contains("example.com. 3600 IN DNSKEY 256 3 13 "),
        "{stdout}"
    );
    // After the Ed25519 key's deletion the TSV list holds the RSA and P-256 keys, each 2-of-3 on 3 holders.
    let rsa_key = std::fs::read_to_string(lab.join("ceremony/key-id")).unwrap();
    let tsv: Vec<&str> = stdout.lines().filter(|l| l.split('\t').count() == 7).collect();
    let last_list = &tsv[tsv.len().saturating_sub(2)..];
    assert_eq!(last_list.len(), 2, "{stdout}");
    assert!(
        last_list
            .iter()
            .any(|l| l.starts_with(&format!("{}\trsa\t2048\t2\t3\t", rsa_key.trim()))),
        "{last_list:?}"
    );
    assert!(
        last_list.iter().any(|l| l.contains("\tecdsa-p256\t256\t2\t3\t")),
        "{last_list:?}"
    );
    // The sealed coordinator identity does not contain its key in the clear.
    let identity = std::fs::read(lab.join("coordinator.identity")).unwrap();
    assert_eq!(identity[..2], [1, 0x90], "identity file is not sealed");
}
