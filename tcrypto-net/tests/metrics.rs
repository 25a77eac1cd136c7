//! Metrics over HTTP from a real `tcrypto-node` (`metrics_listen`) during a signing run: the request counters match
//! the requests made, refused handshakes are counted, the stock gauges are there; and the coordinator's snapshot.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;

fn scrape(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: monitor\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the sample whose line starts with `prefix` and contains every one of `has`.
fn sample(body: &str, prefix: &str, has: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(prefix) && has.iter().all(|h| l.contains(h)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .next()
}

#[test]
fn a_scrape_during_signing_counts_what_was_asked() {
    let dir = common::scratch("metrics");
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let mut nodes: Vec<_> = (0..3).map(|i| common::node_proc(&dir, i, &coordinator)).collect();
    let metrics_addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg_text = std::fs::read_to_string(&nodes[0].config).unwrap();
    let with_metrics = cfg_text.replacen(
        "data_dir =",
        &format!("metrics_listen = \"{metrics_addr}\"\ndata_dir ="),
        1,
    );
    std::fs::write(&nodes[0].config, with_metrics).unwrap();
    for n in &mut nodes {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| (n.addr, n.public.clone())).collect();
    let cfg = CoordinatorConfig {
        request_timeout: Duration::from_secs(5),
        ..CoordinatorConfig::default()
    };
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, cfg).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 3);
    // 3-of-3: every signature asks every node exactly once.
    let (pk, shares) = rsa_key(1024, 3, 3, 41);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    for i in 0..25u32 {
        let m = pkcs1_sha256(&i.to_be_bytes());
        let sig = cluster.sign(key, m.clone()).unwrap();
        rsa_crate_verifies(&pk, &m, &sig.bytes).unwrap();
    }
    // A client that is not pinned.
    let stranger = TlsIdentity::generate("stranger").unwrap();
    let other = BlockingCluster::connect_tls(&stranger, &addrs[..1], CoordinatorConfig::default()).unwrap();
    other.connect(Duration::from_secs(2));
    let _ = other.request(0, tcrypto_net::transport::wire::RequestBody::Ping);

    // The node counts the refusal once it has checked the stranger's certificate, which may come after the
    // stranger's own call returned: scrape until it shows (bounded), then check everything on that scrape.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (head, body) = loop {
        let (head, body) = scrape(metrics_addr, "/metrics");
        let refused = sample(&body, "tcrypto_node_tls_handshakes_refused_total ", &[]);
        if refused.is_some_and(|r| r >= 1.0) || std::time::Instant::now() > deadline {
            break (head, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/plain"),
        "{head}"
    );
    let k = format!("key=\"{key}\"");
    let signed = sample(
        &body,
        "tcrypto_node_requests_total{",
        &["operation=\"sign-optimistic\"", &k, "outcome=\"ok\""],
    );
    assert_eq!(signed, Some(25.0), "{body}");
    assert_eq!(
        sample(
            &body,
            "tcrypto_node_request_seconds_count{",
            &["operation=\"sign-optimistic\""]
        ),
        Some(25.0),
        "{body}"
    );
    assert!(
        sample(
            &body,
            "tcrypto_node_requests_total{",
            &["operation=\"import-share\""]
        )
        .is_some(),
        "{body}"
    );
    assert_eq!(sample(&body, "tcrypto_node_keys ", &[]), Some(1.0), "{body}");
    assert!(
        sample(&body, "tcrypto_node_store_secrets ", &[]).unwrap() >= 2.0,
        "{body}"
    );
    assert!(
        sample(&body, "tcrypto_node_tls_handshakes_refused_total ", &[]).unwrap() >= 1.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "tcrypto_node_connections ", &[]),
        Some(1.0),
        "{body}"
    );
    let (head, _) = scrape(metrics_addr, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The coordinator's side: every node answered at least the 25 signatures.
    let text = tcrypto_net::metrics::coordinator_metrics(&cluster);
    for n in &nodes {
        let node = format!("node=\"{}\"", n.public.name);
        assert_eq!(
            sample(&text, "tcrypto_coordinator_node_connected{", &[&node]),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(&text, "tcrypto_coordinator_node_answers_total{", &[&node]).unwrap() >= 25.0,
            "{text}"
        );
    }
}
