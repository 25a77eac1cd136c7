//! `tcrypto-net/scripts/local-cluster.sh`: starts N daemons from a base port and waits until each listens (then
//! `tcrypto-ctl health` sees them all up); when a node cannot start it exits non-zero naming the node, shows its
//! log, and stops the others.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_tcrypto-node");
const CTL: &str = env!("CARGO_BIN_EXE_tcrypto-ctl");

fn script(dir: &Path, n: u16, port: u16) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg(root.join("scripts/local-cluster.sh"))
        .arg(dir)
        .arg(n.to_string())
        .arg(port.to_string())
        .env("TCRYPTO_NODE", NODE)
        .env("LOCAL_CLUSTER_WAIT", "60")
        .output()
        .unwrap()
}

/// A base port whose next `n` ports look free on 127.0.0.2.. (the kernel's choice, so not a fixed one that another
/// test or a developer's cluster may hold).
fn free_base(n: u16) -> u16 {
    loop {
        let base = TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base.checked_add(n).is_some()
            && (0..n).all(|i| TcpListener::bind((format!("127.0.0.{}", 2 + i).as_str(), base + i)).is_ok())
        {
            return base;
        }
    }
}

fn pids(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
}

struct Stop(std::path::PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        for pid in pids(&self.0) {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
}

#[test]
fn local_cluster_starts_every_node_from_the_base_port_and_waits_until_they_listen() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let _stop = Stop(cluster.clone());
    let base = free_base(3);
    let out = script(&cluster, 3, base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(cluster.join("coordinator.toml")).unwrap();
    for i in 0..3u16 {
        assert!(
            config.contains(&format!("address = \"127.0.0.{}:{}\"", 2 + i, base + i)),
            "{config}"
        );
    }
    assert!(config.contains("data_dir = \"coordinator-state\""), "{config}");
    // Every node listens when the script returns: health sees all three up at once.
    let health = Command::new(CTL)
        .arg("--config")
        .arg(cluster.join("coordinator.toml"))
        .args(["--tsv", "health"])
        .output()
        .unwrap();
    assert_eq!(
        health.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&health.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).matches("\tup\t").count(),
        3
    );
}

#[test]
fn local_cluster_fails_naming_the_node_that_cannot_listen_and_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let _stop = Stop(cluster.clone());
    let base = free_base(3);
    // Node 2's address is taken.
    let _taken = TcpListener::bind(("127.0.0.3", base + 1)).unwrap();
    let out = script(&cluster, 3, base);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("node2 (pid") && err.contains("exited"), "{err}");
    assert!(
        err.contains("Address already in use"),
        "the node's log tail is shown: {err}"
    );
    let started = pids(&cluster);
    assert_eq!(started.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.iter().any(|p| alive(p)) {
        assert!(Instant::now() < deadline, "daemons left running: {started:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
