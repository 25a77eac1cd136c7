//! Resharing with real `tcrypto-node` daemons over mutual TLS (issue 14): a dead node replaced by a sixth one
//! initialised and pinned while the key lives, and the two-phase commit under injected crashes
//! (`TCRYPTO_CRASH_AT`, `tcrypto_net::crash`) of a node or of the coordinator (`tcrypto-ctl reshare` killed) at
//! every phase: after the nodes restart and a fresh coordinator settles, exactly one sharing remains (every node
//! that holds the key serves the same epoch, no pending share is left, at least `k` hold it) and it signs under
//! the key's original public key (checked by `ed25519-dalek`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::testing::{NodeProc, pin_peers, write_coordinator_config};
use tcrypto::KeyId;
use tcrypto_net::blocking::BlockingCluster;
use tcrypto_net::cluster::Engine as _;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::identity::TlsIdentity;
use tcrypto_net::wire::{Algorithm, Mechanism, RequestBody, ResponseBody};

const CTL: &str = env!("CARGO_BIN_EXE_tcrypto-ctl");

fn cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(10),
        frost_low_watermark: 2,
        frost_high_watermark: 4,
        ..CoordinatorConfig::default()
    }
}

/// A fresh coordinator (this process, blocking driver) over every node of `nodes`, up or down.
fn coordinator(id: &TlsIdentity, nodes: &[NodeProc]) -> BlockingCluster {
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let c = BlockingCluster::connect_tls(id, &addrs, cfg()).unwrap();
    c.connect(Duration::from_secs(10));
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
    nodes[2].kill();
    let sixth = common::node_proc(&dir, 5, &id);
    pin_new_node(&nodes, &sixth);
    nodes.push(sixth);
    for n in nodes.iter().filter(|n| n.child.is_some()) {
        sighup(n);
    }
    nodes[5].start();
    std::thread::sleep(Duration::from_millis(300));

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
                let _ = c.reshare(key, &target, 2);
                drop(c);
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
