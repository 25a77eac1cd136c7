//! Resharing with real `tcrypto-node` daemons over mutual TLS (issue 14): a dead node replaced by a sixth one
//! initialised and pinned while the key lives, and the two-phase commit under injected crashes
//! (`TCRYPTO_CRASH_AT`, `tcrypto_net::crash`) of a node or of the coordinator (`tcrypto-ctl reshare` killed) at
//! every phase: after the nodes restart and a fresh coordinator settles, exactly one sharing remains (every node
//! that holds the key serves the same epoch, no pending share is left, at least `k` hold it) and it signs under
//! the key's original public key (checked by `ed25519-dalek`).
//!
//! Operators' runs of `tcrypto-ctl reshare` for RSA, P-256 and Ed25519 keys (a dead node replaced by a new one, `k`
//! changed, a holder killed with SIGKILL mid-run, signatures checked by `openssl`); Byzantine old holders of every
//! kind (wrong sub-shares, wrong commitments, equivocation, silence, sub-shares that do not decode: named, left
//! out, the reshare completes from the honest ones; with fewer than `k` honest ones it fails naming them and the
//! old sharing serves on); a named dealer excluded by the coordinator; and two coordinators resharing one key (the
//! second is refused, naming the pending epoch and its coordinator; both started at once leave one sharing).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::testing::{NodeProc, pin_peers, write_coordinator_config};
use tcrypto::KeyId;
use tcrypto_net::client::Engine as _;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism, RequestBody, ResponseBody};

const CTL: &str = env!("CARGO_BIN_EXE_tcrypto-ctl");

fn cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(10),
        frost_low_watermark: 2,
        frost_high_watermark: 4,
        ..CoordinatorConfig::default()
    }
}

/// A fresh coordinator (this process, blocking driver) over every node of `nodes`, up or down, once every running
/// node answers it (`connect` may return while a node just restarted on a loaded machine is still connecting).
fn coordinator(id: &TlsIdentity, nodes: &[NodeProc]) -> BlockingCluster {
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let c = BlockingCluster::connect_tls(id, &addrs, cfg()).unwrap();
    c.connect(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for (i, node) in nodes.iter().enumerate().filter(|(_, n)| n.child.is_some()) {
        while c.request(i, RequestBody::Ping).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} does not answer",
                node.public.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    c
}

/// Signs `message` with `key` and checks it with `ed25519-dalek` under `public` (the key's birth public key).
fn signs(c: &BlockingCluster, key: KeyId, public: &ed25519_dalek::VerifyingKey, message: &[u8]) {
    let sig = c
        .sign(
            key,
            Mechanism::Ed25519 {
                message: message.to_vec(),
            },
        )
        .unwrap_or_else(|e| panic!("sign {:?}: {e}", String::from_utf8_lossy(message)));
    let sig = ed25519_dalek::Signature::from_slice(&sig.bytes).unwrap();
    public.verify_strict(message, &sig).unwrap();
}

fn verifying_key(c: &BlockingCluster, key: &KeyId) -> ed25519_dalek::VerifyingKey {
    let pk = c.public_key(key).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&pk.as_ed25519().unwrap().public_key_bytes()).unwrap()
}

/// Every reachable node's `(epoch, signer)` of the served share of `key` (none: no share), asserting that no
/// pending share is left.
fn served(c: &BlockingCluster, n: usize, key: KeyId) -> Vec<Option<(u64, u16)>> {
    (0..n)
        .map(|i| match c.request(i, RequestBody::ReshareStatus { key }) {
            Ok(ResponseBody::ReshareStatus(s)) => {
                assert!(s.pending.is_none(), "node {} keeps a pending share: {s:?}", i + 1);
                s.active.map(|(e, info)| (e, info.signer.get()))
            }
            other => panic!("node {}: {other:?}", i + 1),
        })
        .collect()
}

/// Exactly one sharing: every node that serves the key serves epoch `epoch` on the expected node set.
fn one_sharing(c: &BlockingCluster, n: usize, key: KeyId, epoch: u64, holders: &[usize]) {
    let served = served(c, n, key);
    for (i, s) in served.iter().enumerate() {
        match holders.iter().position(|h| *h == i) {
            Some(j) => assert_eq!(
                *s,
                Some((epoch, u16::try_from(j + 1).unwrap())),
                "node {}: {served:?}",
                i + 1
            ),
            None => assert_eq!(*s, None, "node {} still serves a share: {served:?}", i + 1),
        }
    }
}

fn sighup(node: &NodeProc) {
    let pid = node.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Pins `new` on every node of `nodes` and every node on `new`.
fn pin_new_node(nodes: &[NodeProc], new: &NodeProc) {
    let mut text = std::fs::read_to_string(&new.config).unwrap();
    for n in nodes {
        text.push_str(&format!(
            "\n[[peers]]\nname = \"{}\"\npublic = \"{}\"\n",
            n.public.name,
            n.public_hex()
        ));
        let mut theirs = std::fs::read_to_string(&n.config).unwrap();
        theirs.push_str(&format!(
            "\n[[peers]]\nname = \"{}\"\npublic = \"{}\"\n",
            new.public.name,
            new.public_hex()
        ));
        std::fs::write(&n.config, theirs).unwrap();
    }
    std::fs::write(&new.config, text).unwrap();
}

/// Node `dead` dies for good; node `nodes.len() + 1` is initialised (fresh store), pinned on every node and
/// every node on it (the running nodes reload their peers on SIGHUP) and started.
fn replace_for_good(dir: &Path, id: &TlsIdentity, nodes: &mut Vec<NodeProc>, dead: usize) {
    nodes[dead].kill();
    let new = common::node_proc(dir, nodes.len(), id);
    pin_new_node(nodes, &new);
    nodes.push(new);
    for n in nodes.iter().filter(|n| n.child.is_some()) {
        sighup(n);
    }
    nodes.last_mut().unwrap().start();
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn a_dead_node_is_replaced_by_a_new_one_and_the_key_signs_with_the_same_public_key() {
    let dir = common::scratch("reshare-replace");
    let id = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..5).map(|i| common::node_proc(&dir, i, &id)).collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let c = coordinator(&id, &nodes);
    let key = c.create_key(Algorithm::Ed25519, 3).unwrap();
    let public = verifying_key(&c, &key);
    signs(&c, key, &public, b"before");
    drop(c);

    // node3 dies for good; node6 is initialised and pinned (the running nodes reload their peers on SIGHUP).
    replace_for_good(&dir, &id, &mut nodes, 2);

    let c = coordinator(&id, &nodes);
    c.refresh_keys().unwrap();
    let out = c.reshare(key, &[0, 1, 3, 4, 5], 3).unwrap();
    assert_eq!(out.epoch, 1);
    assert!(out.not_retired.is_empty(), "{:?}", out.not_retired);
    signs(&c, key, &public, b"after the replacement");
    drop(c);

    // Restarted daemons and a fresh coordinator: the new sharing was stored; node6 signs in it.
    for n in nodes.iter_mut().filter(|n| n.child.is_some()) {
        n.kill();
        n.start();
    }
    let c = coordinator(&id, &nodes);
    c.refresh_keys().unwrap();
    assert_eq!(c.list(), vec![key]);
    let holders: Vec<usize> = c.engine().submit(|co, _, _| {
        co.keys()
            .into_iter()
            .find(|k| k.0 == key)
            .map(|k| k.2.values().copied().collect())
            .unwrap()
    });
    assert_eq!(holders, vec![0, 1, 3, 4, 5]);
    signs(&c, key, &public, b"after restarts");
}

fn ctl_reshare(config: &Path, key: &KeyId, nodes: &str, crash: &str) -> std::process::Output {
    Command::new(CTL)
        .arg("--config")
        .arg(config)
        .args([
            "--wait",
            "5",
            "reshare",
            &key.to_string(),
            "--nodes",
            nodes,
            "--threshold",
            "2",
        ])
        .env("TCRYPTO_CRASH_AT", crash)
        .output()
        .unwrap()
}

/// The node sets the crash test alternates between (node indexes) and their names.
const SETS: [([usize; 3], &str); 2] = [([1, 2, 3], "node2,node3,node4"), ([0, 1, 2], "node1,node2,node3")];

#[test]
fn a_crash_at_any_phase_of_the_commit_leaves_exactly_one_usable_sharing() {
    let dir = common::scratch("reshare-crash");
    let id = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..4).map(|i| common::node_proc(&dir, i, &id)).collect();
    pin_peers(&nodes);
    for n in &mut nodes {
        n.start();
    }
    let config: PathBuf = write_coordinator_config(&dir, &id, &nodes, 10_000);
    let c = coordinator(&id, &nodes);
    let key = c.create_key(Algorithm::Ed25519, 2).unwrap();
    let public = verifying_key(&c, &key);
    c.reshare(key, &SETS[1].0, 2).unwrap();
    drop(c);
    let mut epoch = 1u64;
    let mut holders = SETS[1].0;

    // (crash point, which process crashes: Some(node) or the coordinator, whether the new sharing wins)
    let cases: &[(&str, Option<usize>, bool)] = &[
        ("coordinator-pending", None, false),
        ("coordinator-tested", None, false),
        ("coordinator-first-commit", None, true),
        ("coordinator-committed", None, true),
        ("node-pending-stored", Some(3), false),
        ("node-commit-decided", Some(1), true),
        ("node-commit-installed", Some(1), true),
        ("node-retire-recorded", Some(0), true),
    ];
    for (round, &(point, node, forward)) in cases.iter().enumerate() {
        // Alternate between the two sets so that every reshare moves the key (and some node retires).
        let (target, names) = if holders == SETS[1].0 { SETS[0] } else { SETS[1] };
        // The crashing node must take part in the phase: a dealer-only node for a retirement, a new holder
        // otherwise.
        let node = node.map(|n| match point {
            "node-retire-recorded" => *holders.iter().find(|h| !target.contains(h)).unwrap(),
            "node-pending-stored" => *target.iter().find(|t| !holders.contains(t)).unwrap_or(&n),
            _ => target[0],
        });
        eprintln!("case {round}: {point} (node {node:?}), {holders:?} -> {target:?}");
        match node {
            Some(n) => {
                nodes[n].kill();
                nodes[n].crash_at = Some(point.to_string());
                nodes[n].start();
                let c = coordinator(&id, &nodes);
                c.refresh_keys().unwrap();
                let result = c.reshare(key, &target, 2);
                eprintln!("reshare with the crashing node: {result:?}");
                drop(c);
                // The coordinator sees the connection drop before the dying process is reaped: wait for it.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !nodes[n].exited() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                assert!(nodes[n].exited(), "{point}: node {} did not crash", n + 1);
                nodes[n].crash_at = None;
                nodes[n].start();
            }
            None => {
                let out = ctl_reshare(&config, &key, names, point);
                assert!(!out.status.success(), "{point}: tcrypto-ctl did not crash");
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains(point),
                    "{point}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        // A fresh coordinator settles: roll back or forward, from the nodes' records alone.
        let c = coordinator(&id, &nodes);
        let settled = c.settle_reshare(key).unwrap();
        eprintln!("settled: {:?}", settled.settled);
        if forward {
            epoch += 1;
            holders = target;
        }
        assert_eq!(settled.epoch, epoch, "{point}");
        one_sharing(&c, 4, key, epoch, &holders);
        signs(&c, key, &public, point.as_bytes());
        // The next reshare runs from there.
        drop(c);
    }
}

// ----- Operators' reshares with `tcrypto-ctl`, for RSA and P-256 (issue 14) -----

/// Runs `tcrypto-ctl --config CONFIG ARGS` to its end.
fn ctl(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(CTL)
        .arg("--config")
        .arg(config)
        .args(["--wait", "5"])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "tcrypto-ctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Signs `file` with `tcrypto-ctl sign` and verifies the signature with `openssl` under `pem` (the public key
/// exported before any reshare).
fn ctl_signs_and_openssl_verifies(config: &Path, key: &KeyId, algorithm: Algorithm, pem: &Path, file: &Path) {
    let sig = file.with_extension("sig");
    let mechanism = match algorithm {
        Algorithm::Rsa => "rsa-pkcs1-sha256",
        Algorithm::EcdsaP256 => "ecdsa-sha256",
        _ => "ed25519",
    };
    let key = key.to_string();
    ok(ctl(
        config,
        &[
            "sign",
            &key,
            "--mechanism",
            mechanism,
            "--in",
            file.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
    ));
    let mut openssl = Command::new("openssl");
    match algorithm {
        Algorithm::Ed25519 => openssl
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(pem)
            .arg("-in")
            .arg(file)
            .arg("-sigfile")
            .arg(&sig),
        _ => openssl
            .args(["dgst", "-sha256", "-verify"])
            .arg(pem)
            .arg("-signature")
            .arg(&sig)
            .arg(file),
    };
    let out = openssl.output().unwrap();
    assert!(
        out.status.success(),
        "openssl rejects the {algorithm:?} signature of {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `(epoch, signer)` every running node serves of `key` (down nodes: skipped), asserting that no running node
/// keeps a pending share.
fn served_by_running(
    c: &BlockingCluster,
    nodes: &[NodeProc],
    key: KeyId,
) -> BTreeMap<usize, Option<(u64, u16)>> {
    (0..nodes.len())
        .filter(|i| nodes[*i].child.is_some())
        .map(|i| match c.request(i, RequestBody::ReshareStatus { key }) {
            Ok(ResponseBody::ReshareStatus(s)) => {
                assert!(s.pending.is_none(), "node {} keeps a pending share: {s:?}", i + 1);
                (i, s.active.map(|(e, info)| (e, info.signer.get())))
            }
            other => panic!("node {}: {other:?}", i + 1),
        })
        .collect()
}

/// Waits until node `i`'s audit log records a request of `op` (`op=reshare-round`, say).
fn wait_for_audited(node: &NodeProc, op: &str) {
    let log = node.data.join("audit.log");
    let needle = format!("op={op}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&needle)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never audited {op}",
            node.public.name
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` started nodes pinning each other (node `misbehave.0` with `TCRYPTO_NODE_MISBEHAVE=misbehave.1`), a
/// coordinator, and a `k`-of-`n` key of `algorithm` dealt here and imported (no slow key generation).
fn imported(
    tag: &str,
    n: usize,
    misbehave: (usize, &str),
    algorithm: Algorithm,
    k: u16,
    seed: u64,
) -> (PathBuf, TlsIdentity, Vec<NodeProc>, BlockingCluster, KeyId) {
    let dir = common::scratch(tag);
    let id = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..n).map(|i| common::node_proc(&dir, i, &id)).collect();
    pin_peers(&nodes);
    nodes[misbehave.0].misbehave = Some(misbehave.1.to_string());
    for node in &mut nodes {
        node.start();
    }
    let c = coordinator(&id, &nodes);
    let n = u16::try_from(n).unwrap();
    let key = c
        .import_key(
            common::dealt_bundles(algorithm, k, n, seed),
            &mut common::rng(seed),
        )
        .unwrap();
    (dir, id, nodes, c, key)
}

/// Five nodes hold a dealt 3-of-5 key of `algorithm`; node5 dies for good and node6 (a new process, fresh store) is
/// initialised and pinned; `tcrypto-ctl reshare --replace node5=node6 --threshold 2` moves the key to 2-of-5 on
/// node1-4 and node6 while node1 is killed with SIGKILL in the middle of the run (its audit log shows a reshare
/// round). The run either finishes or rolls back; after node1 restarts and `tcrypto-ctl settle`, no running node
/// keeps a pending share and exactly one sharing serves (the operator runs the reshare again when it was rolled
/// back). Then two holders go down and the two left sign (`k` is now 2, node6's share works), each signature
/// verified by `openssl` under the public key exported before the reshare.
fn replace_a_dead_node_with_ctl_while_a_node_is_killed(algorithm: Algorithm, seed: u64) {
    // node2 answers late, so that the run is surely in its rounds when node1 is killed.
    let (dir, id, mut nodes, c, key) = imported("reshare-ctl", 5, (1, "late:150"), algorithm, 3, seed);
    drop(c);

    replace_for_good(&dir, &id, &mut nodes, 4);
    let config = write_coordinator_config(&dir, &id, &nodes, 10_000);
    let pem = dir.join("public-before.pem");
    let name = key.to_string();
    ok(ctl(&config, &["export", &name, "--out", pem.to_str().unwrap()]));

    let reshare_args = [
        "reshare",
        name.as_str(),
        "--replace",
        "node5=node6",
        "--threshold",
        "2",
    ];
    let run = Command::new(CTL)
        .arg("--config")
        .arg(&config)
        .args(["--wait", "5"])
        .args(reshare_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_audited(&nodes[0], "reshare-round");
    nodes[0].kill();
    let out = run.wait_with_output().unwrap();
    let finished = out.status.success();
    eprintln!(
        "{algorithm:?}: the reshare with node1 killed {}: {}",
        if finished { "finished" } else { "failed" },
        String::from_utf8_lossy(&out.stderr)
    );
    if !finished {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("node1"),
            "the failure does not name the killed node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    nodes[0].start();
    ok(ctl(&config, &["settle", &name]));
    let c = coordinator(&id, &nodes);
    let served = served_by_running(&c, &nodes, key);
    let old: BTreeMap<usize, Option<(u64, u16)>> = [0, 1, 2, 3, 5]
        .into_iter()
        .map(|i| (i, (i < 4).then(|| (0, i as u16 + 1))))
        .collect();
    let new: BTreeMap<usize, Option<(u64, u16)>> = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 5)]
        .into_iter()
        .map(|(i, s)| (i, Some((1, s))))
        .collect();
    assert!(
        served == old || served == new,
        "not exactly one sharing: {served:?}"
    );
    drop(c);
    if served == old {
        // Rolled back: the operator runs the same command again.
        let out = ok(ctl(&config, &reshare_args));
        assert!(out.contains("epoch 1, 2-of-5"), "{out}");
        let c = coordinator(&id, &nodes);
        assert_eq!(served_by_running(&c, &nodes, key), new);
    }
    let message = dir.join("after-the-replacement.txt");
    std::fs::write(&message, b"signed after node5 was replaced by node6").unwrap();
    ctl_signs_and_openssl_verifies(&config, &key, algorithm, &pem, &message);
    // k is 2 now: node3, node4 and node6 sign without node1 and node2 (ECDSA presigns with 2k'-1 = 3).
    nodes[0].kill();
    nodes[1].kill();
    let message = dir.join("two-holders-down.txt");
    std::fs::write(&message, b"signed by three of the five new holders").unwrap();
    ctl_signs_and_openssl_verifies(&config, &key, algorithm, &pem, &message);
}

#[test]
fn rsa_key_moves_to_a_new_node_with_tcrypto_ctl_while_a_holder_is_killed_mid_reshare() {
    replace_a_dead_node_with_ctl_while_a_node_is_killed(Algorithm::Rsa, 141);
}

#[test]
fn p256_key_moves_to_a_new_node_with_tcrypto_ctl_while_a_holder_is_killed_mid_reshare() {
    replace_a_dead_node_with_ctl_while_a_node_is_killed(Algorithm::EcdsaP256, 142);
}

#[test]
fn ed25519_key_moves_to_a_new_node_with_tcrypto_ctl_while_a_holder_is_killed_mid_reshare() {
    replace_a_dead_node_with_ctl_while_a_node_is_killed(Algorithm::Ed25519, 145);
}

/// One old holder deals bad sub-shares and stands by them when the new holders complain
/// (`TCRYPTO_NODE_MISBEHAVE=reshare-subshare`): the new holders name it, the reshare completes from the three
/// honest old holders, and the new sharing signs under the key's public key.
fn byzantine_old_holder_is_named_and_left_out(algorithm: Algorithm, seed: u64) {
    let (_dir, _id, _nodes, c, key) = imported(
        "reshare-byzantine",
        4,
        (3, "reshare-subshare"),
        algorithm,
        2,
        seed,
    );
    let spki = c.public_key(&key).unwrap().to_spki_der().unwrap();
    // Reshare to node1-3 (2-of-3): node4 only deals.
    let out = c.reshare(key, &[0, 1, 2], 2).unwrap();
    assert_eq!(out.epoch, 1);
    assert_eq!(out.culprits, vec!["node4".to_string()], "{out:?}");
    assert_eq!(out.disqualified, vec!["node4".to_string()], "{out:?}");
    assert!(out.not_retired.is_empty(), "{:?}", out.not_retired);
    one_sharing(&c, 4, key, 1, &[0, 1, 2]);
    let message = b"signed by the sharing the honest old holders made";
    let public = common::sign_verified(&c, key, algorithm, message);
    assert_eq!(public.to_spki_der().unwrap(), spki, "the public key changed");
}

#[test]
fn rsa_old_holder_dealing_bad_sub_shares_is_named_and_the_reshare_completes_without_it() {
    byzantine_old_holder_is_named_and_left_out(Algorithm::Rsa, 143);
}

#[test]
fn p256_old_holder_dealing_bad_sub_shares_is_named_and_the_reshare_completes_without_it() {
    byzantine_old_holder_is_named_and_left_out(Algorithm::EcdsaP256, 144);
}

#[test]
fn ed25519_old_holder_dealing_bad_sub_shares_is_named_and_the_reshare_completes_without_it() {
    byzantine_old_holder_is_named_and_left_out(Algorithm::Ed25519, 146);
}

/// Four started nodes pinning two operators' coordinator identities `a` and `b` (node4 with the misbehaviour
/// `node4`, when given), and each operator's `tcrypto-ctl` configuration.
fn two_operators(
    tag: &str,
    node4: Option<&str>,
) -> (TlsIdentity, TlsIdentity, Vec<NodeProc>, PathBuf, PathBuf) {
    let dir = common::scratch(tag);
    let a = TlsIdentity::generate("coordinator").unwrap();
    let b = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<NodeProc> = (0..4).map(|i| common::node_proc(&dir, i, &a)).collect();
    pin_peers(&nodes);
    nodes[3].misbehave = node4.map(str::to_string);
    for n in &mut nodes {
        let text = std::fs::read_to_string(&n.config).unwrap();
        let pin = format!(
            "\n[[coordinators]]\nname = \"operator-b\"\nspki_sha256 = \"{}\"\n",
            b.fingerprint()
        );
        std::fs::write(&n.config, text + &pin).unwrap();
        n.start();
    }
    let dir_a = dir.join("operator-a");
    let dir_b = dir.join("operator-b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let config_a = write_coordinator_config(&dir_a, &a, &nodes, 10_000);
    let config_b = write_coordinator_config(&dir_b, &b, &nodes, 10_000);
    (a, b, nodes, config_a, config_b)
}

/// Two operators, each with its own coordinator identity pinned on every node, reshare one key. Operator A's
/// `tcrypto-ctl reshare` dies after the new holders stored their pending shares (its run is in progress as far as
/// the nodes know); operator B's `tcrypto-ctl reshare` is refused, naming the pending epoch and A's coordinator,
/// and leaves A's pending shares alone. A's `tcrypto-ctl settle` rolls its run back at once (its own claim); then
/// B's reshare runs, and the key signs under its original public key.
#[test]
fn a_second_coordinator_cannot_reshare_a_key_while_another_ones_reshare_is_pending() {
    let (a, b, nodes, config_a, config_b) = two_operators("reshare-two-coordinators", None);
    let c = coordinator(&a, &nodes);
    let key = c.create_key(Algorithm::Ed25519, 2).unwrap();
    let public = verifying_key(&c, &key);
    drop(c);
    let name = key.to_string();

    let out = Command::new(CTL)
        .arg("--config")
        .arg(&config_a)
        .args([
            "reshare",
            &name,
            "--nodes",
            "node2,node3,node4",
            "--threshold",
            "2",
        ])
        .env("TCRYPTO_CRASH_AT", "coordinator-pending")
        .output()
        .unwrap();
    assert!(!out.status.success(), "operator A's tcrypto-ctl did not crash");

    let out = ctl(
        &config_b,
        &[
            "reshare",
            &name,
            "--nodes",
            "node1,node2,node3",
            "--threshold",
            "2",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("operator B: {err}");
    assert!(
        !out.status.success(),
        "operator B resharing at the same time: {err}"
    );
    assert!(
        err.contains("epoch 1"),
        "the refusal does not name the pending epoch: {err}"
    );
    assert!(
        err.contains(&a.fingerprint().to_string()),
        "the refusal does not name operator A's coordinator: {err}"
    );
    // A's pending shares were left alone.
    let c = coordinator(&b, &nodes);
    for i in 1..4 {
        match c.request(i, RequestBody::ReshareStatus { key }) {
            Ok(ResponseBody::ReshareStatus(s)) => {
                assert_eq!(s.pending.map(|(e, _)| e), Some(1), "node {}", i + 1)
            }
            other => panic!("node {}: {other:?}", i + 1),
        }
    }
    drop(c);

    // Operator A settles its own run: rolled back at once.
    ok(ctl(&config_a, &["settle", &name]));
    let out = ok(ctl(
        &config_b,
        &[
            "reshare",
            &name,
            "--nodes",
            "node1,node2,node3",
            "--threshold",
            "2",
        ],
    ));
    assert!(out.contains("epoch 1, 2-of-3"), "{out}");
    let c = coordinator(&b, &nodes);
    c.refresh_keys().unwrap();
    one_sharing(&c, 4, key, 1, &[0, 1, 2]);
    signs(&c, key, &public, b"after operator B's reshare");
}

/// Restarts node `i` with the misbehaviour `mode` (`TCRYPTO_NODE_MISBEHAVE`; empty: honest).
fn restart_as(nodes: &mut [NodeProc], i: usize, mode: &str) {
    nodes[i].kill();
    nodes[i].misbehave = Some(mode.to_string());
    nodes[i].start();
}

/// `tcrypto-ctl --json reshare KEY --nodes NODES --threshold K`.
fn ctl_reshare_json(config: &Path, key: &str, nodes: &str, k: &str) -> std::process::Output {
    ctl(
        config,
        &["--json", "reshare", key, "--nodes", nodes, "--threshold", k],
    )
}

/// Every other kind of Byzantine old holder, over real daemons and `tcrypto-ctl` (the reshare-subshare kind has
/// its own test above): node3 of a dealt 2-of-4 key is restarted as a dealer of a wrong commitment, an
/// equivocator (one dealing kept for itself, another broadcast), a silent dealer and a dealer of sub-shares that
/// do not decode, in turn. Each time `tcrypto-ctl reshare` to the four nodes (node3 deals and receives) names
/// node3 alone (its JSON `culprits` and its warning), completes at the next epoch, and the new sharing signs under
/// the public key exported before any reshare (`openssl`). Then node3, as a dealer that does not receive, signs two
/// dealings: the coordinator relays neither, it is named and the reshare to node1, node2 and node4 completes.
/// Then two of those three old holders misbehave at once (wrong commitment, silent): one honest dealer is fewer
/// than `k` = 2, the run fails naming the two, no node keeps a pending share, and the old sharing still signs.
fn byzantine_old_holders_of_every_kind(algorithm: Algorithm, seed: u64) {
    let (dir, id, mut nodes, c, key) = imported("reshare-byzantine-kinds", 4, (2, ""), algorithm, 2, seed);
    drop(c);
    let config = write_coordinator_config(&dir, &id, &nodes, 10_000);
    let pem = dir.join("public-before.pem");
    let name = key.to_string();
    ok(ctl(&config, &["export", &name, "--out", pem.to_str().unwrap()]));
    let all = "node1,node2,node3,node4";
    let modes = [
        "reshare-commitment",
        "reshare-equivocate",
        "reshare-silent",
        "reshare-garbled",
    ];
    for (epoch, mode) in (1u64..).zip(modes) {
        restart_as(&mut nodes, 2, mode);
        let out = ctl_reshare_json(&config, &name, all, "2");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
        eprintln!("{algorithm:?} {mode}: {report}");
        assert_eq!(report["epoch"], epoch, "{mode}: {report}");
        assert_eq!(
            report["culprits"],
            serde_json::json!(["node3"]),
            "{mode}: {report}"
        );
        assert_eq!(
            report["disqualified"],
            serde_json::json!(["node3"]),
            "{mode}: {report}"
        );
        assert!(
            stderr.contains("node node3 misbehaved"),
            "{mode}: no warning naming node3: {stderr}"
        );
        let message = dir.join(format!("after-{mode}.txt"));
        std::fs::write(
            &message,
            format!("signed after a reshare with a {mode} old holder"),
        )
        .unwrap();
        ctl_signs_and_openssl_verifies(&config, &key, algorithm, &pem, &message);
    }

    // An equivocator that only deals signs two dealings: the coordinator relays neither and names it; the run
    // completes without it (node3 is left out of the new holders and retires).
    restart_as(&mut nodes, 2, "reshare-equivocate");
    let out = ctl_reshare_json(&config, &name, "node1,node2,node4", "2");
    let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(report["epoch"], 5, "{report}");
    assert_eq!(report["culprits"], serde_json::json!(["node3"]), "{report}");
    assert_eq!(report["disqualified"], serde_json::json!(["node3"]), "{report}");
    let message = dir.join("after-a-dealer-only-equivocator.txt");
    std::fs::write(
        &message,
        b"signed after a reshare with a dealer that signed two dealings",
    )
    .unwrap();
    ctl_signs_and_openssl_verifies(&config, &key, algorithm, &pem, &message);

    // Two Byzantine old holders of three, k = 2: the honest one is not enough.
    restart_as(&mut nodes, 1, "reshare-commitment");
    restart_as(&mut nodes, 3, "reshare-silent");
    let out = ctl_reshare_json(&config, &name, all, "2");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{algorithm:?} two Byzantine: {stderr}");
    assert!(!out.status.success(), "the reshare completed: {stderr}");
    assert!(
        stderr.contains("rolled back") && stderr.contains(r#"["node2", "node4"]"#),
        "the failure does not name the two: {stderr}"
    );
    let c = coordinator(&id, &nodes);
    let served = served_by_running(&c, &nodes, key);
    let expected: BTreeMap<usize, Option<(u64, u16)>> =
        [(0, Some((5, 1))), (1, Some((5, 2))), (2, None), (3, Some((5, 3)))]
            .into_iter()
            .collect();
    assert_eq!(served, expected, "the old sharing does not serve on");
    drop(c);
    let message = dir.join("after-the-failed-reshare.txt");
    std::fs::write(&message, b"signed by the old sharing after the failed reshare").unwrap();
    ctl_signs_and_openssl_verifies(&config, &key, algorithm, &pem, &message);
}

#[test]
fn rsa_byzantine_old_holders_of_every_kind_are_named_and_too_many_fail_the_reshare_cleanly() {
    byzantine_old_holders_of_every_kind(Algorithm::Rsa, 147);
}

#[test]
fn p256_byzantine_old_holders_of_every_kind_are_named_and_too_many_fail_the_reshare_cleanly() {
    byzantine_old_holders_of_every_kind(Algorithm::EcdsaP256, 148);
}

#[test]
fn ed25519_byzantine_old_holders_of_every_kind_are_named_and_too_many_fail_the_reshare_cleanly() {
    byzantine_old_holders_of_every_kind(Algorithm::Ed25519, 149);
}

/// A node a reshare named is excluded in the coordinator as a signature culprit is (health, the
/// `tcrypto_coordinator_node_excluded` metric, a culprit notice); the coordinator then refuses to make it a new
/// holder (`ReshareError::Excluded` naming it, nothing started), leaves it out of the dealers while `k` others
/// deal (a reshare without it names nobody although it still holds a share and would stay silent), and makes it a
/// new holder only when the operator admits it explicitly (`reshare_admitting`). With fewer than `k` honest
/// dealers left the reshare fails with `ReshareError::Misbehaved` naming them (now excluded too, this coordinator
/// no longer signs with them), and the old sharing serves on (a fresh coordinator signs with it).
#[test]
fn a_dealer_named_in_a_reshare_is_excluded_and_becomes_a_new_holder_only_when_admitted() {
    use tcrypto_net::client::ClusterError;
    use tcrypto_net::coordinator::reshare::ReshareError;
    let algorithm = Algorithm::Ed25519;
    let (_dir, id, mut nodes, c, key) =
        imported("reshare-exclude", 4, (2, "reshare-silent"), algorithm, 2, 150);
    let spki = c.public_key(&key).unwrap().to_spki_der().unwrap();
    let out = c.reshare(key, &[0, 1, 2, 3], 2).unwrap();
    assert_eq!(out.culprits, vec!["node3".to_string()]);
    assert_eq!(out.disqualified, vec!["node3".to_string()]);

    let health = c.health();
    assert!(
        health[2]
            .excluded
            .as_deref()
            .is_some_and(|w| w.contains("reshare")),
        "{health:?}"
    );
    assert!(
        health
            .iter()
            .enumerate()
            .all(|(i, h)| i == 2 || h.excluded.is_none())
    );
    let metrics = tcrypto_net::metrics::coordinator_metrics(&c);
    assert!(
        metrics.contains("tcrypto_coordinator_node_excluded{node=\"node3\"} 1"),
        "{metrics}"
    );
    assert!(
        c.culprits()
            .iter()
            .any(|(n, name, k)| *n == 2 && name == "node3" && *k == key)
    );

    match c.reshare(key, &[0, 1, 2, 3], 2) {
        Err(ClusterError::Reshare(ReshareError::Excluded { node, reason })) => {
            assert_eq!(node, "node3");
            assert!(reason.contains("reshare"), "{reason}");
        }
        other => panic!("an excluded node planned as a new holder: {other:?}"),
    }
    assert_eq!(
        served_by_running(&c, &nodes, key),
        (0..4).map(|i| (i, Some((1, i as u16 + 1)))).collect(),
        "the refused reshare changed something"
    );

    // node3 still holds a share of epoch 1 but does not deal: nobody is named.
    let out = c.reshare(key, &[0, 1, 3], 2).unwrap();
    assert_eq!((out.epoch, out.culprits.clone()), (2, Vec::new()), "{out:?}");
    assert!(out.disqualified.is_empty(), "{out:?}");
    assert_eq!(served_by_running(&c, &nodes, key)[&2], None);

    let out = c.reshare_admitting(key, &[0, 1, 2, 3], 2, &[2]).unwrap();
    assert_eq!(out.epoch, 3);
    one_sharing(&c, 4, key, 3, &[0, 1, 2, 3]);
    let public = common::sign_verified(&c, key, algorithm, b"after node3 was admitted again");
    assert_eq!(public.to_spki_der().unwrap(), spki);

    // node2 and node4 turn Byzantine too; this coordinator (which still excludes node3) leaves node3 out of the
    // dealers: one honest dealer of three is fewer than k = 2. The typed error names the two, the run is rolled
    // back, both are excluded now.
    restart_as(&mut nodes, 1, "reshare-commitment");
    restart_as(&mut nodes, 3, "reshare-garbled");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for i in [1, 3] {
        while c.request(i, RequestBody::Ping).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "node{} does not answer",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    match c.reshare(key, &[0, 1, 3], 2) {
        Err(ClusterError::Reshare(ReshareError::Misbehaved { key: k, culprits, .. })) => {
            assert_eq!(k, key);
            assert_eq!(culprits, vec!["node2".to_string(), "node4".to_string()]);
        }
        other => panic!("a reshare with one honest dealer of three: {other:?}"),
    }
    one_sharing(&c, 4, key, 3, &[0, 1, 2, 3]);
    let health = c.health();
    assert!([1, 3].iter().all(|i| health[*i].excluded.is_some()), "{health:?}");
    // This coordinator signs with no excluded node: the old sharing signs through a fresh one.
    drop(c);
    let c = coordinator(&id, &nodes);
    c.refresh_keys().unwrap();
    let public = common::sign_verified(&c, key, algorithm, b"the old sharing serves on");
    assert_eq!(public.to_spki_der().unwrap(), spki);
}

/// Two operators start `tcrypto-ctl reshare` of one key at the same moment, to different node sets, while node4
/// answers late (so that both runs are in their rounds at once, whichever way their requests interleave at the
/// nodes). Whatever the interleaving: a run that fails was refused for the other's claim (naming the epoch) and
/// rolled back; after both operators settle, exactly one sharing serves, no node keeps a pending share, its epoch
/// counts the runs that succeeded, and it signs under the key's original public key. Three rounds in a row.
#[test]
fn two_coordinators_resharing_one_key_at_once_leave_exactly_one_sharing() {
    let (a, _b, nodes, config_a, config_b) = two_operators("reshare-at-once", Some("late:100"));
    let c = coordinator(&a, &nodes);
    let key = c
        .import_key(
            common::dealt_bundles(Algorithm::Ed25519, 2, 4, 151),
            &mut common::rng(151),
        )
        .unwrap();
    let public = verifying_key(&c, &key);
    drop(c);
    let name = key.to_string();
    let spawn = |config: &Path, set: &str| {
        Command::new(CTL)
            .arg("--config")
            .arg(config)
            .args([
                "--wait",
                "5",
                "reshare",
                &name,
                "--nodes",
                set,
                "--threshold",
                "2",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut epoch = 0u64;
    for round in 0..3 {
        let run_a = spawn(&config_a, "node1,node2,node4");
        let run_b = spawn(&config_b, "node2,node3,node4");
        let mut succeeded = Vec::new();
        for (who, run) in [("A", run_a), ("B", run_b)] {
            let out = run.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            eprintln!("round {round}, operator {who}: {} {err}", out.status);
            if out.status.success() {
                succeeded.push(who);
            } else {
                assert!(
                    err.contains("refused") && err.contains("epoch"),
                    "operator {who} failed otherwise than refused for the other's claim: {err}"
                );
            }
        }
        // Each operator settles what its run left (its own claims end at once).
        ok(ctl(&config_a, &["settle", &name]));
        ok(ctl(&config_b, &["settle", &name]));
        epoch += succeeded.len() as u64;
        let c = coordinator(&a, &nodes);
        let served = served(&c, 4, key);
        let epochs: BTreeSet<u64> = served.iter().flatten().map(|(e, _)| *e).collect();
        assert_eq!(
            epochs.len(),
            1,
            "round {round}: not exactly one sharing: {served:?}"
        );
        let holders = served.iter().flatten().count();
        assert!(holders >= 2, "round {round}: {served:?}");
        assert!(
            epochs.contains(&epoch) || (succeeded.is_empty() && epochs.iter().all(|e| *e <= epoch)),
            "round {round}: epoch {epochs:?} after {succeeded:?} succeeded (expected {epoch}): {served:?}"
        );
        epoch = *epochs.iter().next().unwrap();
        c.refresh_keys().unwrap();
        signs(
            &c,
            key,
            &public,
            format!("after round {round} of two operators").as_bytes(),
        );
    }
}
