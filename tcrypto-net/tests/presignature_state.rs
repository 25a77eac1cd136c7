//! The node's stored state fails closed and contains damage, on real `tcrypto-node` processes: spent-presignature
//! state damaged, truncated, deleted, an older copy, a store restored from a copy (zero presignatures reused, checked
//! by asking the restarted node for every presignature of its old batches, and by counting distinct `r` over
//! 2,450 `p256`-verified signatures); damaged and missing key files and presignature batches (the node
//! starts, serves its other keys and names the damage in `tcrypto-node status`); `store.meta` cost fields flipped;
//! file modes; empty passphrase.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::NodeProc;
use sha2::Digest as _;
use tcrypto::{KeyId, SessionId};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism, RequestBody, ResponseBody};

const BIN: &str = env!("CARGO_BIN_EXE_tcrypto-node");
/// Presignatures per presigning run are at most the coordinator's high watermark.
const HIGH: usize = 64;
const LOG: &str = "spent-presignatures.log";
const LOG_HEADER: usize = 40;
const LOG_RECORD: usize = 52;

fn cluster_of(nodes: &mut [NodeProc], coordinator: &TlsIdentity) -> BlockingCluster {
    common::testing::pin_peers(nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        presign_low_watermark: 32,
        presign_high_watermark: HIGH,
        ..CoordinatorConfig::default()
    };
    let cluster = BlockingCluster::connect_tls(coordinator, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), nodes.len());
    cluster
}

fn status(node: &NodeProc) -> String {
    let out = Command::new(BIN)
        .args(["status", "--config", node.config.to_str().unwrap()])
        .env("TCRYPTO_NODE_PASSPHRASE", &node.passphrase)
        .output()
        .unwrap();
    // 0: listening and well, 3: listening with problems to show (what these tests cause).
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs of the presignature batches the node holds on disk now.
fn batch_runs(node: &NodeProc) -> Vec<SessionId> {
    std::fs::read_dir(node.data.join("secrets"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            let hex = name.strip_prefix("presig-")?.strip_suffix(".sealed")?;
            Some(SessionId(hex::decode(hex).ok()?.try_into().ok()?))
        })
        .collect()
}

/// The presignature ids in the node's spent log (marks made since its last start).
fn logged_spent(node: &NodeProc) -> HashSet<(SessionId, u32)> {
    let bytes = std::fs::read(node.data.join(LOG)).unwrap();
    bytes[LOG_HEADER..]
        .chunks_exact(LOG_RECORD)
        .map(|r| {
            (
                SessionId(r[..32].try_into().unwrap()),
                u32::from_be_bytes(r[32..36].try_into().unwrap()),
            )
        })
        .collect()
}

/// Signs `count` ECDSA digests (all in flight in chunks), checks each with `p256`, and adds its `r` to `seen`,
/// which must not hold it yet.
fn sign_and_collect_r(
    cluster: &BlockingCluster,
    key: KeyId,
    from: usize,
    count: usize,
    seen: &mut HashSet<Vec<u8>>,
) {
    let pk = cluster.public_key(&key).unwrap();
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(100) {
        let reqs: Vec<(KeyId, Mechanism)> = chunk
            .iter()
            .map(|i| {
                (
                    key,
                    Mechanism::Ecdsa {
                        digest: sha2::Sha256::digest(format!("message {i}")).to_vec(),
                    },
                )
            })
            .collect();
        for ((_, mech), sig) in reqs.iter().zip(cluster.sign_many(reqs.clone())) {
            let sig = sig.unwrap();
            common::ec_verifies(&pk, mech, &sig.bytes).unwrap();
            assert!(
                seen.insert(sig.bytes[..32].to_vec()),
                "r repeated: a presignature was used twice"
            );
        }
    }
}

/// Asks node 0 directly, as a coordinator gone wrong would, for a share of every presignature of `runs` with a
/// fresh digest; returns the presignatures it signed.
fn probe(cluster: &BlockingCluster, key: KeyId, runs: &[SessionId]) -> Vec<(SessionId, u32)> {
    let mut signed = Vec::new();
    for run in runs {
        for index in 0..HIGH as u32 {
            let body = RequestBody::EcdsaSign {
                key,
                run: *run,
                index,
                digest: SessionId::random(&mut rand::rng()).0.to_vec(),
            };
            if let Ok(ResponseBody::Share { .. }) = cluster.request(0, body) {
                signed.push((*run, index));
            }
        }
    }
    signed
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// kill -9 only: the control case, unspent presignatures survive.
    None,
    FlipBit,
    Truncate,
    Delete,
    OlderCopy,
    RestoredStore,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn damaged_or_restored_spent_state_never_lets_a_presignature_be_used_twice() {
    let dir = common::scratch("presig-state");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    let cluster = cluster_of(&mut nodes, &coordinator);
    let key = cluster.create_key(Algorithm::EcdsaP256, 2).unwrap();
    let mut seen = HashSet::new();
    let mut signed = 0;
    let cases = [
        Damage::None,
        Damage::FlipBit,
        Damage::Truncate,
        Damage::Delete,
        Damage::OlderCopy,
        Damage::RestoredStore,
        Damage::None,
    ];
    for (round, damage) in cases.into_iter().enumerate() {
        let backup = dir.join(format!("backup-{round}"));
        let old_log = std::fs::read(nodes[0].data.join(LOG)).unwrap();
        if matches!(damage, Damage::RestoredStore) {
            copy_dir(&nodes[0].data, &backup);
        }
        sign_and_collect_r(&cluster, key, signed, 300, &mut seen);
        signed += 300;
        let runs = batch_runs(&nodes[0]);
        let spent = logged_spent(&nodes[0]);
        assert!(
            !runs.is_empty() && !spent.is_empty(),
            "{damage:?}: nothing to test"
        );
        nodes[0].kill();
        let log = nodes[0].data.join(LOG);
        match damage {
            Damage::None => {}
            Damage::FlipBit => {
                let mut b = std::fs::read(&log).unwrap();
                let at = LOG_HEADER + LOG_RECORD * (spent.len() / 2) + 7;
                b[at] ^= 0x04;
                std::fs::write(&log, b).unwrap();
            }
            Damage::Truncate => {
                let len = std::fs::metadata(&log).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
                f.set_len(len - LOG_RECORD as u64).unwrap();
            }
            Damage::Delete => std::fs::remove_file(&log).unwrap(),
            Damage::OlderCopy => std::fs::write(&log, &old_log).unwrap(),
            Damage::RestoredStore => {
                std::fs::remove_dir_all(&nodes[0].data).unwrap();
                copy_dir(&backup, &nodes[0].data);
            }
        }
        nodes[0].start();
        assert_eq!(cluster.connect(Duration::from_secs(20)), 3, "{damage:?}");
        let status = status(&nodes[0]);
        let reused = probe(&cluster, key, &runs);
        let spent_again: Vec<_> = reused.iter().filter(|id| spent.contains(id)).collect();
        assert!(
            spent_again.is_empty(),
            "{damage:?}: spent presignatures signed again: {spent_again:?}"
        );
        match damage {
            Damage::None => {
                assert!(status.contains("problems 0"), "{status}");
                // The probe can see a presignature: unspent ones survive a kill -9 (the probe spends them).
                assert!(
                    !reused.is_empty(),
                    "no unspent presignature survived a plain restart"
                );
            }
            _ => {
                assert!(
                    reused.is_empty(),
                    "{damage:?}: {} presignatures survived",
                    reused.len()
                );
                assert!(status.contains("presignatures discarded"), "{damage:?}: {status}");
            }
        }
        // The cluster keeps signing across the restart (the restarted node refuses what it discarded; the
        // coordinator takes the other members).
        sign_and_collect_r(&cluster, key, signed, 50, &mut seen);
        signed += 50;
    }
    assert_eq!(seen.len(), signed);
    assert!(signed >= 2000);
}

#[test]
fn damaged_and_missing_files_take_out_only_what_they_hold() {
    let dir = common::scratch("damaged-files");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    let cluster = cluster_of(&mut nodes, &coordinator);
    let damaged = cluster.create_key(Algorithm::Ed25519, 2).unwrap();
    let deleted = cluster.create_key(Algorithm::Ed25519, 2).unwrap();
    let healthy = cluster.create_key(Algorithm::Ed25519, 2).unwrap();
    let ec = cluster.create_key(Algorithm::EcdsaP256, 2).unwrap();
    // Key creation is audited with the key id before it is acknowledged.
    for n in &nodes {
        let audit = std::fs::read_to_string(n.data.join("audit.log")).unwrap();
        for k in [damaged, deleted, healthy, ec] {
            assert!(
                audit.lines().any(|l| l.contains("op=dkg")
                    && l.contains(&format!("key={k}"))
                    && l.contains(" outcome=ok ")),
                "{}: creation of {k} not audited",
                n.public.name
            );
        }
    }
    let digest = |i: u32| sha2::Sha256::digest(format!("m{i}")).to_vec();
    cluster.sign(ec, Mechanism::Ecdsa { digest: digest(0) }).unwrap();
    // The presigning run that the key's creation started progresses only while the (thread-free) cluster is
    // driven: sign until node1 stored a batch (under load the first signature may end, by DKLs23, before it).
    let mut i = 1;
    while batch_runs(&nodes[0]).is_empty() {
        assert!(i < 500, "no presignature batch on node1 after {i} signatures");
        cluster
            .sign(
                ec,
                Mechanism::Ecdsa {
                    digest: digest(1000 + i),
                },
            )
            .unwrap();
        i += 1;
    }
    nodes[0].kill();
    let secrets = nodes[0].data.join("secrets");
    let key_file = |k: &KeyId| secrets.join(format!("key-{k}.sealed"));
    let mut b = std::fs::read(key_file(&damaged)).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(key_file(&damaged), b).unwrap();
    std::fs::remove_file(key_file(&deleted)).unwrap();
    let batch = batch_runs(&nodes[0])[0];
    let batch_file = secrets.join(format!("presig-{batch}.sealed"));
    let mut b = std::fs::read(&batch_file).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x80;
    std::fs::write(&batch_file, b).unwrap();

    nodes[0].start();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 3);
    let status = status(&nodes[0]);
    assert!(
        status.contains(&format!("key {damaged} out of service")),
        "{status}"
    );
    assert!(
        status.contains(&key_file(&damaged).display().to_string()),
        "{status}"
    );
    assert!(
        status.contains(&format!("key {deleted} out of service")),
        "{status}"
    );
    assert!(status.contains("is missing"), "{status}");
    assert!(
        status.contains(&format!(
            "presignature batch quarantined: {} is damaged",
            batch_file.display()
        )),
        "{status}"
    );
    assert!(status.contains("quarantined files 2"), "{status}");
    // The node lists and serves its other keys: with node 2 down, node 1 and 3 sign with the healthy keys.
    match cluster.request(0, RequestBody::ListKeys).unwrap() {
        ResponseBody::Keys(keys) => {
            let ids: HashSet<KeyId> = keys.iter().map(|k| k.key).collect();
            assert_eq!(ids, HashSet::from([healthy, ec]));
        }
        other => panic!("{other:?}"),
    }
    for i in 0..4u32 {
        let mech = Mechanism::Ecdsa {
            digest: digest(i + 1),
        };
        let sig = cluster.sign(ec, mech.clone()).unwrap();
        common::ec_verifies(&cluster.public_key(&ec).unwrap(), &mech, &sig.bytes).unwrap();
    }
    nodes[1].kill();
    let pk = cluster.public_key(&healthy).unwrap();
    for i in 0..4u32 {
        let mech = Mechanism::Ed25519 {
            message: format!("after damage {i}").into_bytes(),
        };
        let sig = cluster.sign(healthy, mech.clone()).unwrap();
        common::ec_verifies(&pk, &mech, &sig.bytes).unwrap();
    }
    // A request for the damaged key names the damage.
    let err = cluster
        .request(
            0,
            RequestBody::Sign {
                key: damaged,
                mechanism: Mechanism::Ed25519 {
                    message: b"x".to_vec(),
                },
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of service"), "{err}");
}

fn init_node(dir: &Path, pass: &str) -> (PathBuf, std::process::Output) {
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"n1\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"{}\"\n[[coordinators]]\nname = \"c\"\nspki_sha256 = \"{}\"\n",
            dir.join("data").display(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["init", "--config", cfg.to_str().unwrap(), "--insecure-fast-kdf"])
        .env("TCRYPTO_NODE_PASSPHRASE", pass)
        .output()
        .unwrap();
    (cfg, out)
}

#[test]
fn an_empty_passphrase_is_refused_at_init() {
    let dir = common::scratch("empty-pass");
    let (_, out) = init_node(&dir, "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty passphrase"), "{err}");
    assert!(!dir.join("data/store.meta").exists());
}

#[test]
fn flipped_kdf_cost_fields_are_refused_at_once_naming_store_meta() {
    // store.meta: version, tag, kind, salt (16), m_kib, t, p (u32 each), ...
    const M_KIB: usize = 2 + 1 + 16;
    for (what, at) in [("memory", M_KIB), ("passes", M_KIB + 4), ("lanes", M_KIB + 8)] {
        let dir = common::scratch("kdf-flip");
        let (cfg, out) = init_node(&dir, "pw");
        assert!(out.status.success());
        let meta = dir.join("data/store.meta");
        let mut b = std::fs::read(&meta).unwrap();
        b[at] ^= 0x40;
        std::fs::write(&meta, b).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .env("TCRYPTO_NODE_PASSPHRASE", "pw")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&meta.display().to_string()) && err.contains("damaged"),
            "{what}: {err}"
        );
        assert!(!err.contains("wrong passphrase"), "{what}: {err}");
    }
}

#[test]
fn the_node_creates_its_files_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = common::scratch("modes");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    let cluster = cluster_of(&mut nodes, &coordinator);
    let key = cluster.create_key(Algorithm::EcdsaP256, 2).unwrap();
    cluster
        .sign(key, Mechanism::Ecdsa { digest: vec![1; 32] })
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let n = &nodes[0];
    assert_eq!(mode(&n.data), 0o700);
    assert_eq!(mode(&n.data.join("secrets")), 0o700);
    let mut files: Vec<PathBuf> = std::fs::read_dir(n.data.join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 4, "{files:?}");
    for f in ["store.meta", "audit.log", LOG, "health"] {
        files.push(n.data.join(f));
    }
    let mut witness = n.data.as_os_str().to_owned();
    witness.push(".witness");
    files.push(PathBuf::from(witness));
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}
