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
    assert!(!ok, "not running: exit 4");
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

/// The offline key ceremony: bundles sealed per node, imported with the CLI, then a coordinator learns the key
/// from the nodes' stores and signs; the `rsa` crate verifies.
#[cfg(feature = "dealer")]
#[test]
fn key_ceremony_bundles_are_imported_by_each_node_and_sign() {
    use std::sync::Arc;
    use tcrypto_net::client::Cluster;
    use tcrypto_net::client::memory::MemoryEngine;
    use tcrypto_net::node::SignerNode;
    use tcrypto_net::node::store::{SecretStore, StoreKeySource};
    use tcrypto_net::transport::identity::NodeIdentity;

    let dir = common::scratch("ceremony");
    let mut configs = Vec::new();
    for i in 1..=3 {
        let sub = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let cfg = write_config(&sub, &sub.join("data"), "");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("name = \"n1\"", &format!("name = \"n{i}\""));
        std::fs::write(&cfg, text).unwrap();
        assert!(
            run(
                &["init", "--config", cfg.to_str().unwrap(), "--insecure-fast-kdf"],
                "pw"
            )
            .0
        );
        configs.push((sub, cfg));
    }
    let primes = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tcrypto/tests/data/safe_primes_384.txt");
    let out = dir.join("ceremony");
    let mut args = vec![
        "ceremony".to_string(),
        "--threshold".into(),
        "2".into(),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--primes".into(),
        primes.to_str().unwrap().into(),
    ];
    for (sub, _) in &configs {
        args.push("--node".into());
        args.push(sub.join("data/node.pub").to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, err) = run(&args, "pw");
    assert!(ok, "{err}");
    assert!(stdout.contains("2-of-3 key"), "{stdout}");
    // A bundle opens only at its own node.
    let wrong = run(
        &[
            "import",
            "--config",
            configs[0].1.to_str().unwrap(),
            out.join("n2.bundle").to_str().unwrap(),
        ],
        "pw",
    );
    assert!(!wrong.0 && wrong.2.contains("another node"), "{}", wrong.2);
    for (i, (_, cfg)) in configs.iter().enumerate() {
        let bundle = out.join(format!("n{}.bundle", i + 1));
        let (ok, stdout, err) = run(
            &[
                "import",
                "--config",
                cfg.to_str().unwrap(),
                bundle.to_str().unwrap(),
            ],
            "pw",
        );
        assert!(ok, "{err}");
        assert!(stdout.contains("imported rsa share"), "{stdout}");
        let (_, status, _) = run(&["status", "--config", cfg.to_str().unwrap()], "pw");
        assert!(status.contains("keys 1"), "{status}");
    }
    // Load the three nodes from their encrypted stores and sign through a fresh coordinator.
    let mut nodes = Vec::new();
    let mut publics = Vec::new();
    for (sub, _) in &configs {
        let pass = StoreKeySource::Passphrase(zeroize::Zeroizing::new("pw".into()));
        let store = SecretStore::open(&sub.join("data"), &pass).unwrap();
        let identity = NodeIdentity::from_secret_bytes(&store.get("identity").unwrap().unwrap()).unwrap();
        publics.push(identity.public());
        let node = SignerNode::new(
            Arc::new(identity),
            Some(Arc::new(store)),
            Arc::new(tcrypto_net::node::audit::MemoryAudit::default()),
            tcrypto_net::node::replay::ReplayGuard::default(),
        );
        assert_eq!(node.load_keys().unwrap(), 1);
        nodes.push(Arc::new(node));
    }
    let cluster = Cluster::new(MemoryEngine::new(nodes, Default::default()), publics);
    let keys = cluster.refresh_keys().unwrap();
    assert_eq!(keys.len(), 1);
    let pk = cluster.public_key(&keys[0]).unwrap();
    let pk = pk.as_rsa().unwrap();
    let m = common::pkcs1_sha256(b"ceremony");
    let sig = cluster.sign(keys[0], m.clone()).unwrap();
    common::rsa_crate_verifies(pk, &m, &sig.bytes).unwrap();
}

#[test]
fn a_second_daemon_on_the_same_data_directory_is_refused_until_the_first_is_gone() {
    let dir = common::scratch("daemon-lock");
    let coordinator = tcrypto_net::transport::identity::TlsIdentity::generate("coordinator").unwrap();
    let mut node = common::node_proc(&dir, 0, &coordinator);
    node.start();
    let pid = node.child.as_ref().unwrap().id();
    // Same data directory, another port: it would share the spent-presignature state.
    let text = std::fs::read_to_string(&node.config).unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let twin = dir.join("twin.toml");
    std::fs::write(&twin, text.replace(&node.addr.to_string(), &free.to_string())).unwrap();
    let (ok, _, err) = run(&["serve", "--config", twin.to_str().unwrap()], &node.passphrase);
    assert!(!ok);
    assert!(err.contains("in use by another tcrypto-node"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains(&node.data.display().to_string()), "{err}");
    // The first one still serves.
    assert!(node.child.as_mut().unwrap().try_wait().unwrap().is_none());
    let (ok, out, _) = run(
        &["status", "--config", node.config.to_str().unwrap()],
        &node.passphrase,
    );
    assert!(ok);
    assert!(out.contains("yes"), "{out}");
    // kill -9 releases the lock with the process: the twin starts now.
    node.kill();
    node.config = twin;
    node.addr = free;
    node.start();
}
