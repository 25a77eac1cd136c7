//! Liveness over real `tcrypto-node` processes (127.0.0.x, mutual TLS): every node killed with `kill -9` and
//! restarted while one long-lived coordinator keeps signing; requests during the outage fail fast and name the
//! down nodes, and signing resumes by itself once the nodes are back (RSA, ECDSA P-256, Ed25519). A fresh
//! coordinator with one node down, or with one host that never answers, starts at once instead of waiting for it.
//! Hung nodes (SIGSTOP) make a signature fail at the coordinator's `sign_timeout`, never block it without bound.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::NodeProc;
use tcrypto::KeyId;
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::{ClusterError, Engine as _};
use tcrypto_net::coordinator::{CoordinatorConfig, SignError};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::wire::{Algorithm, Mechanism, RequestBody, ResponseBody};

/// Longest wait for signing to resume after the nodes are back (generous: the reconnection back-off is 2 s).
const RESUME_WITHIN: Duration = Duration::from_secs(30);

/// Small pools and timeouts, as a test wants them.
fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(2),
        presign_low_watermark: 4,
        presign_high_watermark: 8,
        frost_low_watermark: 4,
        frost_high_watermark: 8,
        ..CoordinatorConfig::default()
    }
}

/// Five started nodes (peers pinned, as DKG needs) and a coordinator connected to all of them.
fn five_nodes(tag: &str) -> (Vec<NodeProc>, BlockingCluster, TlsIdentity) {
    common::pinned_cluster(tag, 5, config())
}

fn mechanism(algorithm: Algorithm, i: u32) -> Mechanism {
    common::mechanism(algorithm, format!("liveness {i}").as_bytes())
}

/// Signs and checks the signature with the stock verifier of the algorithm.
fn sign_checked(
    cluster: &BlockingCluster,
    key: KeyId,
    algorithm: Algorithm,
    i: u32,
) -> Result<(), ClusterError> {
    let mech = mechanism(algorithm, i);
    let sig = cluster.sign(key, mech.clone())?;
    let public = cluster.public_key(&key).unwrap();
    match public.as_rsa() {
        Some(pk) => common::rsa_crate_verifies(pk, &mech, &sig.bytes).unwrap(),
        None => common::ec_verifies(&public, &mech, &sig.bytes).unwrap(),
    }
    Ok(())
}

/// Kills every node, checks that requests fail fast naming the five down nodes, restarts them and waits (no
/// caller action but retrying) until signing resumes; then signs a few more.
fn outage_and_recovery(nodes: &mut [NodeProc], cluster: &BlockingCluster, key: KeyId, algorithm: Algorithm) {
    sign_checked(cluster, key, algorithm, 0).unwrap();
    for n in nodes.iter_mut() {
        n.kill();
    }
    let names: Vec<String> = nodes.iter().map(|n| n.public.name.clone()).collect();
    for i in 1..=5 {
        let err = sign_checked(cluster, key, algorithm, i).unwrap_err();
        let ClusterError::Sign(SignError::Unavailable { down, .. }) = &err else {
            panic!("expected Unavailable, got {err}");
        };
        let down: Vec<&String> = down.iter().map(|(name, _)| name).collect();
        assert_eq!(down, names.iter().collect::<Vec<_>>(), "{err}");
        let text = err.to_string();
        assert!(names.iter().all(|n| text.contains(n.as_str())), "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in nodes.iter_mut() {
        n.start();
    }
    let deadline = Instant::now() + RESUME_WITHIN;
    let mut i = 100;
    loop {
        i += 1;
        match sign_checked(cluster, key, algorithm, i) {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "signing did not resume: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for j in 0..8 {
        sign_checked(cluster, key, algorithm, 1_000 + j).unwrap();
    }
}

#[test]
fn rsa_signing_resumes_by_itself_after_every_node_was_killed_and_restarted() {
    let (mut nodes, cluster, _) = five_nodes("liveness-rsa");
    let (pk, shares) = common::rsa_key(1024, 3, 5, 21);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    outage_and_recovery(&mut nodes, &cluster, key, Algorithm::Rsa);
}

#[test]
fn ecdsa_signing_resumes_by_itself_after_every_node_was_killed_and_restarted() {
    let (mut nodes, cluster, _) = five_nodes("liveness-ecdsa");
    let key = cluster.create_key(Algorithm::EcdsaP256, 3).unwrap();
    outage_and_recovery(&mut nodes, &cluster, key, Algorithm::EcdsaP256);
}

#[test]
fn ed25519_signing_resumes_by_itself_after_every_node_was_killed_and_restarted() {
    let (mut nodes, cluster, _) = five_nodes("liveness-ed25519");
    let key = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    outage_and_recovery(&mut nodes, &cluster, key, Algorithm::Ed25519);
}

/// Five nodes holding an RSA 3-of-5 key, node 5 then replaced by `node5_becomes` (given its address); a fresh
/// coordinator (same identity, nothing but the node list, `request_timeout`) must connect to the four others, learn
/// the key and sign well before `within`: the fifth host must not hold up the start.
fn fresh_coordinator_starts_without_node5(
    tag: &str,
    request_timeout: Duration,
    within: Duration,
    node5_becomes: impl FnOnce(std::net::SocketAddr) -> Option<std::net::TcpListener>,
) {
    let (mut nodes, cluster, identity) = five_nodes(tag);
    let (pk, shares) = common::rsa_key(1024, 3, 5, 22);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    drop(cluster);
    nodes[4].kill();
    let _host = node5_becomes(nodes[4].addr);
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cfg = CoordinatorConfig {
        request_timeout,
        ..config()
    };
    let fresh = BlockingCluster::connect_tls(&identity, &addrs, cfg).unwrap();
    let started = Instant::now();
    assert_eq!(fresh.connect(Duration::from_secs(120)), 4);
    assert!(started.elapsed() < within, "{:?}", started.elapsed());
    assert_eq!(fresh.refresh_keys().unwrap(), vec![key]);
    sign_checked(&fresh, key, Algorithm::Rsa, 0).unwrap();
    assert!(started.elapsed() < within, "{:?}", started.elapsed());
}

#[test]
fn a_fresh_coordinator_with_one_node_down_starts_without_waiting_for_it() {
    // The down node costs one refused connection attempt, not the whole wait.
    fresh_coordinator_starts_without_node5(
        "liveness-fresh",
        config().request_timeout,
        Duration::from_secs(60),
        |_| None,
    );
}

#[test]
fn a_fresh_coordinator_does_not_wait_the_request_timeout_for_a_host_that_never_answers() {
    // Node 5's address now belongs to a host that takes the TCP connection and then says nothing (like one whose
    // firewall drops the TLS traffic): its attempt can only end by the connect timeout, here one minute. The start
    // is bounded by a few handshake times instead (a generous margin: no speed is measured).
    fresh_coordinator_starts_without_node5(
        "liveness-silent",
        Duration::from_secs(60),
        Duration::from_secs(30),
        |addr| Some(std::net::TcpListener::bind(addr).unwrap()),
    );
}

/// What node `i` reports about key creations: (served keys, tentative keys, keys with deliveries kept).
fn dkg_state(cluster: &BlockingCluster, i: usize) -> (Vec<KeyId>, Vec<KeyId>, Vec<KeyId>) {
    match cluster.request(i, RequestBody::DkgPending).unwrap() {
        ResponseBody::DkgPending {
            held,
            tentative,
            kept,
        } => {
            let mut held = held;
            held.sort();
            (
                held,
                tentative.into_iter().map(|(k, _)| k).collect(),
                kept.into_iter().map(|k| k.key).collect(),
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_node_killed_at_any_point_of_a_dkg_leaves_keys_either_everywhere_or_nowhere() {
    let (mut nodes, cluster, identity) = five_nodes("liveness-dkg");
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    // How long a creation takes here, to spread the kill points over it; the Ed25519 key is made with node 5
    // down, so it gets its share later, from what the dealers kept, through another coordinator.
    let started = Instant::now();
    let ecdsa = cluster.create_key(Algorithm::EcdsaP256, 3).unwrap();
    let took_ecdsa = started.elapsed();
    nodes[4].kill();
    let started = Instant::now();
    let ed25519 = cluster.create_key(Algorithm::Ed25519, 3).unwrap();
    let took_ed25519 = started.elapsed();
    drop(cluster);
    nodes[4].start();
    let mut created = vec![(ecdsa, Algorithm::EcdsaP256), (ed25519, Algorithm::Ed25519)];
    // Shares left tentative by an abandoned creation are rolled back after a second (a minute by default).
    let cfg = || CoordinatorConfig {
        dkg_rollback_after: Duration::from_secs(1),
        ..config()
    };
    let mut failed = 0;
    let seed: u64 = rand::random();
    println!("kill-point seed {seed}");
    let mut rng = common::rng(seed);
    // Each point: a fresh coordinator without any state directory; one node killed `delay` into the creation;
    // every third point with node 5 down all along (it gets its share later, from what the dealers kept).
    for point in 0..12u32 {
        use rand::RngExt as _;
        let algorithm = if point % 2 == 0 {
            Algorithm::EcdsaP256
        } else {
            Algorithm::Ed25519
        };
        let absent = point % 3 == 0;
        if absent {
            nodes[4].kill();
        }
        let victim = usize::try_from(point).unwrap() % if absent { 4 } else { 5 };
        let took = if algorithm == Algorithm::EcdsaP256 {
            took_ecdsa
        } else {
            took_ed25519
        };
        let delay = took.mul_f64(rng.random_range(0.0..1.3));
        let coord = BlockingCluster::connect_tls(&identity, &addrs, cfg()).unwrap();
        assert_eq!(coord.connect(Duration::from_secs(20)), if absent { 4 } else { 5 });
        let result = std::thread::scope(|s| {
            let node = &mut nodes[victim];
            s.spawn(move || {
                std::thread::sleep(delay);
                node.kill();
            });
            coord.create_key(algorithm, 3)
        });
        println!(
            "point {point}: {algorithm:?}, node{} killed after {delay:?}: {result:?}",
            victim + 1
        );
        match result {
            Ok(key) => created.push((key, algorithm)),
            Err(_) => failed += 1,
        }
        drop(coord);
        nodes[victim].start();
        if absent {
            nodes[4].start();
        }
    }
    println!("{} created, {failed} failed", created.len() - 2);

    // A coordinator restarted without state settles everything from the nodes' reports: tentative shares are
    // committed or rolled back, kept deliveries delivered.
    std::thread::sleep(Duration::from_millis(1_200));
    let fresh = BlockingCluster::connect_tls(&identity, &addrs, cfg()).unwrap();
    assert_eq!(fresh.connect(Duration::from_secs(20)), 5);
    let mut expected: Vec<KeyId> = created.iter().map(|(k, _)| *k).collect();
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<_> = (0..5).map(|i| dkg_state(&fresh, i)).collect();
        let settled = states
            .iter()
            .all(|(held, tentative, kept)| *held == expected && tentative.is_empty() && kept.is_empty());
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: expected {expected:?}, nodes {states:?}"
        );
        fresh.connect(Duration::from_millis(50));
    }
    let mut learned = fresh.refresh_keys().unwrap();
    learned.sort();
    assert_eq!(learned, expected);
    for (i, (key, algorithm)) in created.iter().enumerate() {
        sign_checked(&fresh, *key, *algorithm, u32::try_from(i).unwrap()).unwrap();
    }
}

/// A tokio runtime as a service would run the coordinator on.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_tokio_coordinator_also_resumes_by_itself_after_every_node_was_killed_and_restarted() {
    use tcrypto_net::client::asynchronous::AsyncCluster;
    let (mut nodes, cluster, identity) = five_nodes("liveness-async");
    drop(cluster);
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let rt = tokio_runtime();
    rt.block_on(async {
        let cluster = AsyncCluster::connect_tls(&identity, &addrs, config()).unwrap();
        assert_eq!(cluster.connect(Duration::from_secs(20)).await, 5);
        let key = cluster.create_key(Algorithm::Ed25519, 3).await.unwrap();
        let sign = |i: u32| cluster.sign(key, mechanism(Algorithm::Ed25519, i));
        let public = cluster.public_key(&key).unwrap();
        let sig = sign(0).await.unwrap();
        common::ec_verifies(&public, &mechanism(Algorithm::Ed25519, 0), &sig.bytes).unwrap();
        for n in nodes.iter_mut() {
            n.kill();
        }
        let names: Vec<String> = nodes.iter().map(|n| n.public.name.clone()).collect();
        // The connection tasks see each close in their own time (under load, one may still count as up for the
        // first request): every request fails, and once all five closes are seen the errors name every node.
        let names_all = |text: &str| names.iter().all(|n| text.contains(n.as_str()));
        let seen_by = Instant::now() + Duration::from_secs(10);
        let mut i = 1;
        loop {
            let text = sign(i).await.unwrap_err().to_string();
            if names_all(&text) {
                break;
            }
            assert!(Instant::now() < seen_by, "the closes were never all seen: {text}");
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in 2..=3 {
            let text = sign(i).await.unwrap_err().to_string();
            assert!(names_all(&text), "{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for n in nodes.iter_mut() {
            n.start();
        }
        let deadline = Instant::now() + RESUME_WITHIN;
        let mut i = 100;
        let sig = loop {
            i += 1;
            match sign(i).await {
                Ok(sig) => break sig,
                Err(e) => assert!(Instant::now() < deadline, "signing did not resume: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        common::ec_verifies(&public, &mechanism(Algorithm::Ed25519, i), &sig.bytes).unwrap();
    });
}

/// The detail of a node's refusal, which starts with its error code (the test fails on any other answer).
fn refused(answer: Result<ResponseBody, ClusterError>) -> String {
    match answer {
        Err(ClusterError::Node { detail, .. }) => detail,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits until every node serves exactly `keys` and holds nothing tentative, asking through `cluster`.
fn settled_to(cluster: &BlockingCluster, keys: &[KeyId]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<_> = (0..5).map(|i| dkg_state(cluster, i)).collect();
        if states
            .iter()
            .all(|(held, tentative, _)| held == keys && tentative.is_empty())
        {
            return;
        }
        assert!(Instant::now() < deadline, "not settled to {keys:?}: {states:?}");
        cluster.connect(Duration::from_millis(100));
    }
}

#[test]
fn a_creation_given_up_by_another_coordinator_can_no_longer_be_committed_by_its_creator() {
    let (mut nodes, cluster, identity) = five_nodes("liveness-abandon");
    drop(cluster);
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    // The creator stops where its commit step would start, as if it died there: every node holds a tentative
    // share and nobody has decided yet.
    let creator = BlockingCluster::connect_tls(
        &identity,
        &addrs,
        CoordinatorConfig {
            test_halt_before_commit: true,
            ..config()
        },
    )
    .unwrap();
    assert_eq!(creator.connect(Duration::from_secs(20)), 5);
    creator.create_key(Algorithm::EcdsaP256, 3).unwrap_err();
    let key = dkg_state(&creator, 0).1[0];
    for i in 0..5 {
        assert_eq!(dkg_state(&creator, i).1, vec![key], "node{}", i + 1);
    }

    // Node 1 records the abandonment before it answers: the creator's late commit is refused there, also after
    // a kill -9 and a restart.
    assert!(matches!(
        creator.request(0, RequestBody::DkgAbandon { key }),
        Ok(ResponseBody::Done)
    ));
    let why = refused(creator.request(0, RequestBody::DkgCommit { key }));
    assert!(why.starts_with("UnknownKey") && why.contains("given up"), "{why}");
    nodes[0].kill();
    nodes[0].start();
    assert_eq!(creator.connect(Duration::from_secs(20)), 5);
    let why = refused(creator.request(0, RequestBody::DkgCommit { key }));
    assert!(why.starts_with("UnknownKey") && why.contains("given up"), "{why}");
    // Node 2 got the creator's commit first: it serves the key and refuses the abandonment.
    assert!(matches!(
        creator.request(1, RequestBody::DkgCommit { key }),
        Ok(ResponseBody::Done)
    ));
    let why = refused(creator.request(1, RequestBody::DkgAbandon { key }));
    assert!(why.starts_with("KeyExists"), "{why}");
    // A settling coordinator sees node 2 serve the key and commits it everywhere, over node 1's record too.
    let settle_cfg = || CoordinatorConfig {
        dkg_rollback_after: Duration::from_secs(1),
        ..config()
    };
    let settler = BlockingCluster::connect_tls(&identity, &addrs, settle_cfg()).unwrap();
    assert_eq!(settler.connect(Duration::from_secs(20)), 5);
    settled_to(&settler, &[key]);
    assert_eq!(settler.refresh_keys().unwrap(), vec![key]);
    sign_checked(&settler, key, Algorithm::EcdsaP256, 0).unwrap();
    drop(settler);

    // A second creation that nobody commits: once its shares are older than the grace, a settling coordinator
    // gives it up on every node, then deletes it; the creator's commit, however late, then makes nothing served.
    creator.create_key(Algorithm::Ed25519, 3).unwrap_err();
    let abandoned = dkg_state(&creator, 0).1[0];
    std::thread::sleep(Duration::from_millis(1_200));
    let settler = BlockingCluster::connect_tls(&identity, &addrs, settle_cfg()).unwrap();
    assert_eq!(settler.connect(Duration::from_secs(20)), 5);
    settled_to(&settler, &[key]);
    for i in 0..5 {
        let why = refused(creator.request(i, RequestBody::DkgCommit { key: abandoned }));
        assert!(why.starts_with("UnknownKey"), "{why}");
    }
    settled_to(&settler, &[key]);
}

/// Three of five nodes hang (SIGSTOP: connections open, nothing answered) with a request timeout longer than the
/// signature timeout: each signature fails at its `sign_timeout` with an error saying so, for every algorithm,
/// instead of blocking its caller; once the nodes are thawed, signing resumes by itself.
#[test]
fn signatures_fail_at_the_sign_timeout_while_nodes_hang_and_resume_when_they_thaw() {
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(120),
        sign_timeout: Duration::from_secs(2),
        ..config()
    };
    let (nodes, cluster, _) = common::pinned_cluster("liveness-frozen", 5, cfg);
    let keys: Vec<(KeyId, Algorithm)> = [Algorithm::Ed25519, Algorithm::EcdsaP256]
        .into_iter()
        .map(|a| (cluster.create_key(a, 3).unwrap(), a))
        .collect();
    for (i, (key, algorithm)) in keys.iter().enumerate() {
        sign_checked(&cluster, *key, *algorithm, i as u32).unwrap();
    }
    for n in &nodes[..3] {
        n.freeze(true);
    }
    for (i, (key, algorithm)) in keys.iter().enumerate() {
        // k = 3 of 5 with three hung: every signature needs a node that will not answer.
        let err = sign_checked(&cluster, *key, *algorithm, 100 + i as u32).unwrap_err();
        assert!(err.to_string().contains("sign_timeout"), "{algorithm:?}: {err}");
    }
    for n in &nodes[..3] {
        n.freeze(false);
    }
    for (key, algorithm) in &keys {
        let deadline = Instant::now() + RESUME_WITHIN;
        let mut i = 200;
        while let Err(e) = sign_checked(&cluster, *key, *algorithm, i) {
            assert!(Instant::now() < deadline, "{algorithm:?} did not resume: {e}");
            i += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Keys of all three algorithms on five nodes (RSA imported, P-256 and Ed25519 by DKG), then node 5 frozen
/// (SIGSTOP: the kernel still takes its TCP connections, no TLS handshake ever completes, like a hung host).
fn keys_then_node5_frozen(tag: &str) -> (Vec<NodeProc>, TlsIdentity, Vec<(KeyId, Algorithm)>) {
    let (nodes, cluster, identity) = five_nodes(tag);
    let (pk, shares) = common::rsa_key(1024, 3, 5, 23);
    let keys = vec![
        (
            cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap(),
            Algorithm::Rsa,
        ),
        (
            cluster.create_key(Algorithm::EcdsaP256, 3).unwrap(),
            Algorithm::EcdsaP256,
        ),
        (
            cluster.create_key(Algorithm::Ed25519, 3).unwrap(),
            Algorithm::Ed25519,
        ),
    ];
    drop(cluster);
    nodes[4].freeze(true);
    (nodes, identity, keys)
}

/// A request timeout far above anything a test waits, and attempts to connect given up after a second.
fn hung_node_config() -> CoordinatorConfig {
    CoordinatorConfig {
        request_timeout: Duration::from_secs(120),
        handshake_timeout: Duration::from_secs(1),
        ..config()
    }
}

/// What a fresh coordinator with node 5 frozen must say about it: not connected, named.
fn node5_named_not_connected(down: &[(String, String)]) {
    assert_eq!(
        down.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["node5"],
        "{down:?}"
    );
}

#[test]
fn a_fresh_coordinator_signs_at_once_while_one_node_hangs_and_takes_it_in_when_it_thaws() {
    let (nodes, identity, keys) = keys_then_node5_frozen("liveness-hung");
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let started = Instant::now();
    let fresh = BlockingCluster::connect_tls(&identity, &addrs, hung_node_config()).unwrap();
    assert_eq!(fresh.connect(Duration::from_secs(300)), 4);
    let mut learned = fresh.refresh_keys().unwrap();
    learned.sort();
    let mut expected: Vec<KeyId> = keys.iter().map(|k| k.0).collect();
    expected.sort();
    assert_eq!(learned, expected);
    println!("connected, keys learned: {:?} after the start", started.elapsed());
    for (i, (key, algorithm)) in keys.iter().enumerate() {
        let t = Instant::now();
        sign_checked(&fresh, *key, *algorithm, i as u32).unwrap();
        println!(
            "{algorithm:?}: first signature in {:?}, {:?} after the start",
            t.elapsed(),
            started.elapsed()
        );
    }
    // The attempt to node 5 is given up by the handshake timeout (not the request timeout) and made again.
    let deadline = Instant::now() + RESUME_WITHIN;
    loop {
        let down = fresh.engine().submit(|c, _, _| c.down_nodes());
        node5_named_not_connected(&down);
        if down[0].1.contains("handshake_timeout") {
            break;
        }
        assert!(Instant::now() < deadline, "{down:?}");
        fresh.connect(Duration::from_millis(100));
    }
    // Thawed, node 5 is connected by the next attempt and serves again.
    nodes[4].freeze(false);
    let deadline = Instant::now() + RESUME_WITHIN;
    while !fresh.health().iter().all(|h| h.connected) {
        assert!(
            Instant::now() < deadline,
            "node5 never joined: {:?}",
            fresh.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its key list, checked when it connected, makes the coordinator learn the keys again with node 5 among
    // their holders (the driver's check around each signature).
    let holders = || {
        fresh
            .engine()
            .submit(|c, _, _| c.keys().into_iter().map(|k| k.2.len()).collect::<Vec<_>>())
    };
    let mut i = 10;
    while holders() != [5, 5, 5] {
        assert!(
            Instant::now() < deadline,
            "node5 not a holder again: {:?}",
            holders()
        );
        for (key, algorithm) in &keys {
            i += 1;
            sign_checked(&fresh, *key, *algorithm, i).unwrap();
        }
    }
}

/// Two creations left tentative by a creator that stopped before its commit step, then node 5 down for good: the
/// one node 5 was absent from (it dealt nothing, so it cannot have committed) is rolled back by a settling
/// coordinator on the four others without waiting for node 5; the one node 5 dealt in stays tentative, since node
/// 5 may have committed it before it went down, until node 5 is back and reports.
#[test]
fn an_abandoned_creation_is_rolled_back_without_an_absent_party_but_never_without_a_dealer() {
    let (mut nodes, cluster, identity) = five_nodes("liveness-rollback-down");
    drop(cluster);
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let halting = || CoordinatorConfig {
        test_halt_before_commit: true,
        ..config()
    };
    let creator = BlockingCluster::connect_tls(&identity, &addrs, halting()).unwrap();
    assert_eq!(creator.connect(Duration::from_secs(20)), 5);
    creator.create_key(Algorithm::EcdsaP256, 3).unwrap_err();
    let dealt = dkg_state(&creator, 0).1[0];
    drop(creator);
    nodes[4].kill();
    let creator = BlockingCluster::connect_tls(&identity, &addrs, halting()).unwrap();
    assert_eq!(creator.connect(Duration::from_secs(20)), 4);
    creator.create_key(Algorithm::Ed25519, 3).unwrap_err();
    let absent = *dkg_state(&creator, 0).1.iter().find(|k| **k != dealt).unwrap();
    for i in 0..4 {
        let (held, mut tentative, kept) = dkg_state(&creator, i);
        tentative.sort();
        let mut both = vec![dealt, absent];
        both.sort();
        assert!(held.is_empty(), "node{}: {held:?}", i + 1);
        assert_eq!(tentative, both, "node{}", i + 1);
        assert_eq!(kept, vec![absent], "node{} keeps node5's part", i + 1);
    }
    drop(creator);

    // Both creations are older than the grace when a settling coordinator comes; node 5 stays down.
    std::thread::sleep(Duration::from_millis(1_200));
    let settle_cfg = || CoordinatorConfig {
        dkg_rollback_after: Duration::from_secs(1),
        ..config()
    };
    let settler = BlockingCluster::connect_tls(&identity, &addrs, settle_cfg()).unwrap();
    assert_eq!(settler.connect(Duration::from_secs(20)), 4);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<_> = (0..4).map(|i| dkg_state(&settler, i)).collect();
        if states
            .iter()
            .all(|(held, tentative, kept)| held.is_empty() && *tentative == [dealt] && kept.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{absent} not rolled back without node5 (or {dealt} touched): {states:?}"
        );
        settler.connect(Duration::from_millis(100));
    }
    // Another settling coordinator still leaves the creation node 5 dealt in alone.
    drop(settler);
    let settler = BlockingCluster::connect_tls(&identity, &addrs, settle_cfg()).unwrap();
    assert_eq!(settler.connect(Duration::from_secs(20)), 4);
    settler.connect(Duration::from_millis(500));
    for i in 0..4 {
        assert_eq!(dkg_state(&settler, i).1, vec![dealt], "node{}", i + 1);
    }
    // Node 5 back: it reports the same tentative share, and the creation is rolled back on all five.
    nodes[4].start();
    let deadline = Instant::now() + RESUME_WITHIN;
    while settler.connect(Duration::from_millis(100)) < 5 {
        assert!(Instant::now() < deadline, "node5 did not reconnect");
    }
    settled_to(&settler, &[]);
}

#[test]
fn the_tokio_coordinator_also_signs_at_once_while_one_node_hangs_and_takes_it_in_when_it_thaws() {
    use tcrypto_net::client::asynchronous::AsyncCluster;
    let (nodes, identity, keys) = keys_then_node5_frozen("liveness-hung-async");
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let rt = tokio_runtime();
    rt.block_on(async {
        let started = Instant::now();
        let fresh = AsyncCluster::connect_tls(&identity, &addrs, hung_node_config()).unwrap();
        assert_eq!(fresh.connect(Duration::from_secs(300)).await, 4);
        let mut learned = fresh.refresh_keys().await;
        learned.sort();
        let mut expected: Vec<KeyId> = keys.iter().map(|k| k.0).collect();
        expected.sort();
        assert_eq!(learned, expected);
        for (i, (key, algorithm)) in keys.iter().enumerate() {
            let mech = mechanism(*algorithm, i as u32);
            let sig = fresh.sign(*key, mech.clone()).await.unwrap();
            let public = fresh.public_key(key).unwrap();
            match public.as_rsa() {
                Some(pk) => common::rsa_crate_verifies(pk, &mech, &sig.bytes).unwrap(),
                None => common::ec_verifies(&public, &mech, &sig.bytes).unwrap(),
            }
            println!(
                "tokio, {algorithm:?}: first signature {:?} after the start",
                started.elapsed()
            );
        }
        let down: Vec<(String, String)> = fresh
            .health()
            .await
            .into_iter()
            .filter(|h| !h.connected)
            .map(|h| (h.name, String::new()))
            .collect();
        node5_named_not_connected(&down);
        nodes[4].freeze(false);
        let deadline = Instant::now() + RESUME_WITHIN;
        while !fresh.health().await.iter().all(|h| h.connected) {
            assert!(Instant::now() < deadline, "node5 never joined");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (i, (key, algorithm)) in keys.iter().enumerate() {
            fresh
                .sign(*key, mechanism(*algorithm, 10 + i as u32))
                .await
                .unwrap();
        }
    });
}
