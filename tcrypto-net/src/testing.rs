//! Test support, not part of the API (feature `test-support`, hidden from the docs): `tcrypto-node serve` daemons
//! as child processes on loopback addresses, for the multi-process tests of this crate and of `pkcs11-provider`.
//!
//! It names everything through `tcrypto_net::` (the library aliases itself under that name) and uses only the
//! public API, so this crate's own integration tests include the same file by path (`#[path]` in `tests/common`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tcrypto_net::config::decode_public;
use tcrypto_net::transport::identity::{NodePublic, TlsIdentity};

/// A `tcrypto-node` daemon of a test: its files, address and identity, and the running process (killed on drop).
#[derive(Debug)]
pub struct NodeProc {
    /// The `tcrypto-node` binary.
    pub bin: PathBuf,
    /// `TCRYPTO_NODE_PASSPHRASE` of its store.
    pub passphrase: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its data directory (identity, `node.pub`, key store, audit log).
    pub data: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its public identity.
    pub public: NodePublic,
    /// The `serve` process while it runs.
    pub child: Option<Child>,
    /// Misbehaviour modes for the next [`NodeProc::start`] (`TCRYPTO_NODE_MISBEHAVE`; test builds only).
    pub misbehave: Option<String>,
    /// Injected crash point for the next [`NodeProc::start`] (`TCRYPTO_CRASH_AT`, `tcrypto_net::crash`).
    pub crash_at: Option<String>,
}

impl NodeProc {
    /// Initialises node `i + 1` (named `node{i+1}`) under `dir` with `tcrypto-node init --insecure-fast-kdf`: it
    /// listens on a free port of `127.0.0.{first_ip + i}` and accepts the coordinator identity `coordinator`.
    pub fn create(
        bin: &Path,
        passphrase: &str,
        dir: &Path,
        i: usize,
        first_ip: u8,
        coordinator: &TlsIdentity,
    ) -> Self {
        let ip = format!("127.0.0.{}", usize::from(first_ip) + i);
        let port = TcpListener::bind((ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let data = dir.join(format!("node{}", i + 1));
        let config = dir.join(format!("node{}.toml", i + 1));
        std::fs::write(
            &config,
            format!(
                "name = \"node{}\"\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n\n[[coordinators]]\nname = \"test\"\nspki_sha256 = \"{}\"\n",
                i + 1,
                data.display(),
                coordinator.fingerprint()
            ),
        )
        .unwrap();
        let out = Command::new(bin)
            .args([
                "init",
                "--config",
                config.to_str().unwrap(),
                "--insecure-fast-kdf",
            ])
            .env("TCRYPTO_NODE_PASSPHRASE", passphrase)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let public = decode_public(&std::fs::read_to_string(data.join("node.pub")).unwrap()).unwrap();
        Self {
            bin: bin.to_path_buf(),
            passphrase: passphrase.to_string(),
            config,
            data,
            addr,
            public,
            child: None,
            misbehave: None,
            crash_at: None,
        }
    }

    /// The encoded public identity, as `node.pub` holds it and configurations pin it.
    pub fn public_hex(&self) -> String {
        std::fs::read_to_string(self.data.join("node.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Starts `tcrypto-node serve` and waits until it listens.
    pub fn start(&mut self) {
        let mut command = Command::new(&self.bin);
        if let Some(modes) = &self.misbehave {
            command.env("TCRYPTO_NODE_MISBEHAVE", modes);
        }
        if let Some(point) = &self.crash_at {
            command.env("TCRYPTO_CRASH_AT", point);
        }
        let mut child = command
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env("TCRYPTO_NODE_PASSPHRASE", &self.passphrase)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        // What the node says before it listens (the signing policy it loaded, say) is skipped.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).expect("node did not start");
            if line.contains("listening on") {
                break;
            }
        }
        self.child = Some(child);
    }

    /// Whether the `serve` process has ended (crashed at an injected point, say); reaps it then.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(_))) => {
                self.child = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Writes `policy` as this node's signing policy (`<name>-policy.toml` beside its data directory, named by
    /// `policy_file` in its configuration) and, when it runs, sends it SIGHUP to load it. The reload is
    /// asynchronous: wait for its effect.
    pub fn set_policy(&self, policy: &str) {
        let file = self
            .data
            .parent()
            .unwrap()
            .join(format!("{}-policy.toml", self.public.name));
        std::fs::write(&file, policy).unwrap();
        let text = std::fs::read_to_string(&self.config).unwrap();
        if !text.contains("policy_file") {
            let line = format!("policy_file = {:?}\n", file.display().to_string());
            std::fs::write(&self.config, line + &text).unwrap();
        }
        self.signal("-HUP");
    }

    /// Sends `signal` (`kill`'s form, e.g. `-HUP`) to the running `serve` process, if any.
    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {signal} {}", child.id());
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the running `serve` process, as a hung host: its connections
    /// stay open and nothing is answered.
    pub fn freeze(&self, frozen: bool) {
        self.signal(if frozen { "-STOP" } else { "-CONT" });
    }

    /// Kills the `serve` process (if running) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Pins every node's peers (all the other nodes) in its configuration, as distributed key generation needs. Call
/// before [`NodeProc::start`].
pub fn pin_peers(nodes: &[NodeProc]) {
    for n in nodes {
        let mut text = std::fs::read_to_string(&n.config).unwrap();
        for peer in nodes.iter().filter(|p| p.public.name != n.public.name) {
            text.push_str(&format!(
                "\n[[peers]]\nname = \"{}\"\npublic = \"{}\"\n",
                peer.public.name,
                peer.public_hex()
            ));
        }
        std::fs::write(&n.config, text).unwrap();
    }
}

/// Writes the coordinator identity (`coordinator.id`) and a coordinator configuration (`coordinator.toml`) for
/// `nodes` into `dir`; returns the configuration's path.
pub fn write_coordinator_config(
    dir: &Path,
    coordinator: &TlsIdentity,
    nodes: &[NodeProc],
    request_timeout_ms: u64,
) -> PathBuf {
    std::fs::write(dir.join("coordinator.id"), &*coordinator.to_secret_bytes()).unwrap();
    let mut text = format!("identity = \"coordinator.id\"\nrequest_timeout_ms = {request_timeout_ms}\n");
    for n in nodes {
        text.push_str(&format!(
            "[[nodes]]\naddress = \"{}\"\npublic = \"{}\"\n",
            n.addr,
            n.public_hex()
        ));
    }
    let path = dir.join("coordinator.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `tcrypto-node` binary of this workspace, built (or found up to date) by cargo in the target directory of the
/// running test binary: for the tests of other crates (`pkcs11-provider`, `dnssec-sign`), which have no
/// `CARGO_BIN_EXE_tcrypto-node`.
pub fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => "dev".to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "tcrypto-net",
            "--bin",
            "tcrypto-node",
            // Same features as `cargo test --workspace --all-features`: this build replaces the binary that
            // tcrypto-net's own tests run, so it must keep every subcommand (the key ceremony is behind `dealer`).
            "--all-features",
            "--profile",
            &profile,
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of tcrypto-node failed");
    let bin = profile_dir.join("tcrypto-node");
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}
