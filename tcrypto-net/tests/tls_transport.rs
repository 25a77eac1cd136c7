//! The TLS transport end to end: in-process nodes on loopback, a thread-free coordinator, raw attackers.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tcrypto::{KeyId, SessionId};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::client::embedded::EmbeddedNodes;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::node::server::unix_ms_now;
use tcrypto_net::transport::frame::{FrameDecoder, encode_frame};
use tcrypto_net::transport::identity::TlsIdentity;
use tcrypto_net::transport::tls::{client_config, server_name};
use tcrypto_net::transport::wire::{ErrorCode, Mechanism, Request, RequestBody, Response, ResponseBody};

/// A raw TLS client speaking frames, to play a coordinator that misbehaves.
struct RawClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    decoder: FrameDecoder,
}

impl RawClient {
    fn connect(identity: &TlsIdentity, nodes: &EmbeddedNodes, i: usize) -> std::io::Result<Self> {
        let (addr, public) = &nodes.addresses[i];
        let cfg = client_config(identity, public.tls_spki).unwrap();
        let conn = rustls::ClientConnection::new(cfg, server_name()).unwrap();
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Drive the handshake to completion (and learn about refusal).
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Self {
            tls,
            decoder: FrameDecoder::new(),
        })
    }

    fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    fn recv(&mut self) -> std::io::Result<Response> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.decoder.next_frame().unwrap() {
                return Ok(Response::decode(&f).unwrap());
            }
            let n = self.tls.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.decoder.push(&buf[..n]);
        }
    }

    fn ask(&mut self, req: &Request) -> std::io::Result<Response> {
        self.send_raw(&encode_frame(&req.encode()).unwrap())?;
        self.recv()
    }
}

fn ping(id: u64) -> Request {
    Request {
        id,
        session: SessionId::random(&mut rand::rng()),
        issued_at_ms: unix_ms_now(),
        body: RequestBody::Ping,
    }
}

fn setup(n: usize) -> (TlsIdentity, EmbeddedNodes) {
    let coord = TlsIdentity::generate("coordinator").unwrap();
    let nodes = EmbeddedNodes::start(n, &[coord.fingerprint()]).unwrap();
    (coord, nodes)
}

#[test]
fn thread_free_coordinator_reaches_every_node_over_pinned_tls() {
    let (coord, nodes) = setup(3);
    let cluster =
        BlockingCluster::connect_tls(&coord, &nodes.addresses, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(10)), 3);
    let health = cluster.health();
    assert_eq!(health.len(), 3);
    for h in &health {
        assert!(h.connected, "{h:?}");
        assert!(h.answered >= 1, "{h:?}");
    }
    // Many requests in flight on one connection per node, from several caller threads at once.
    let cluster = Arc::new(cluster);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = cluster.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    assert!(matches!(
                        c.request(1, RequestBody::Ping).unwrap(),
                        ResponseBody::Pong { .. }
                    ));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn unpinned_client_is_refused_at_the_handshake() {
    let (_coord, nodes) = setup(1);
    let intruder = TlsIdentity::generate("coordinator").unwrap();
    let result = RawClient::connect(&intruder, &nodes, 0).and_then(|mut c| c.ask(&ping(1)));
    assert!(result.is_err(), "an unpinned client got an answer");
}

#[test]
fn replayed_request_is_refused_over_tls() {
    let (coord, nodes) = setup(1);
    let mut c = RawClient::connect(&coord, &nodes, 0).unwrap();
    let req = ping(9);
    assert!(matches!(c.ask(&req).unwrap().body, ResponseBody::Pong { .. }));
    // The same bytes again, on the same or on a new connection.
    let again = c.ask(&req).unwrap();
    assert!(
        matches!(
            again.body,
            ResponseBody::Error {
                code: ErrorCode::Replayed,
                ..
            }
        ),
        "{again:?}"
    );
    let mut c2 = RawClient::connect(&coord, &nodes, 0).unwrap();
    let again = c2.ask(&req).unwrap();
    assert!(
        matches!(
            again.body,
            ResponseBody::Error {
                code: ErrorCode::Replayed,
                ..
            }
        ),
        "{again:?}"
    );
}

#[test]
fn unknown_key_and_garbage_get_typed_errors_and_the_node_keeps_serving() {
    let (coord, nodes) = setup(1);
    let mut c = RawClient::connect(&coord, &nodes, 0).unwrap();
    let sign = Request {
        id: 2,
        session: SessionId::random(&mut rand::rng()),
        issued_at_ms: unix_ms_now(),
        body: RequestBody::Sign {
            key: KeyId([3; 32]),
            mechanism: Mechanism::Ecdsa { digest: vec![1; 32] },
        },
    };
    let r = c.ask(&sign).unwrap();
    assert!(
        matches!(
            r.body,
            ResponseBody::Error {
                code: ErrorCode::UnknownKey,
                ..
            }
        ),
        "{r:?}"
    );
    c.send_raw(&encode_frame(b"\x01\x80garbage").unwrap()).unwrap();
    let r = c.recv().unwrap();
    assert!(
        matches!(
            r.body,
            ResponseBody::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(matches!(c.ask(&ping(3)).unwrap().body, ResponseBody::Pong { .. }));
}

#[test]
fn oversized_and_truncated_frames_close_only_that_connection() {
    let (coord, nodes) = setup(1);
    let mut bad = RawClient::connect(&coord, &nodes, 0).unwrap();
    bad.send_raw(&u32::MAX.to_be_bytes()).unwrap();
    bad.send_raw(&[0u8; 100]).unwrap();
    assert!(
        bad.recv().is_err(),
        "an oversized frame must close the connection"
    );
    let mut truncated = RawClient::connect(&coord, &nodes, 0).unwrap();
    let frame = encode_frame(&ping(4).encode()).unwrap();
    truncated.send_raw(&frame[..frame.len() / 2]).unwrap();
    drop(truncated);
    let mut good = RawClient::connect(&coord, &nodes, 0).unwrap();
    assert!(matches!(
        good.ask(&ping(5)).unwrap().body,
        ResponseBody::Pong { .. }
    ));
}

#[test]
fn a_node_serves_several_pinned_coordinators() {
    let a = TlsIdentity::generate("coordinator-a").unwrap();
    let b = TlsIdentity::generate("coordinator-b").unwrap();
    let nodes = EmbeddedNodes::start(1, &[a.fingerprint(), b.fingerprint()]).unwrap();
    for id in [&a, &b] {
        let mut c = RawClient::connect(id, &nodes, 0).unwrap();
        assert!(matches!(c.ask(&ping(1)).unwrap().body, ResponseBody::Pong { .. }));
    }
}

#[test]
fn thirty_two_threads_waiting_on_one_thread_free_coordinator_each_get_their_own_signature() {
    // One thread drives while the others are parked; each is woken for its own result (or to take over the
    // driving), so every signature reaches the thread that asked for it.
    let (coord, nodes) = setup(3);
    let cluster = Arc::new(
        BlockingCluster::connect_tls(&coord, &nodes.addresses, CoordinatorConfig::default()).unwrap(),
    );
    assert_eq!(cluster.connect(Duration::from_secs(10)), 3);
    let key = cluster
        .create_key(tcrypto_net::transport::wire::Algorithm::Ed25519, 2)
        .unwrap();
    let Some(tcrypto_net::algo::PublicKey::Ed25519(pk)) = cluster.public_key(&key) else {
        panic!("no Ed25519 public key");
    };
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.public_key_bytes()).unwrap();
    let handles: Vec<_> = (0..32u32)
        .map(|t| {
            let c = cluster.clone();
            std::thread::spawn(move || {
                (0..8u32)
                    .map(|i| {
                        let message = format!("thread {t} message {i}").into_bytes();
                        let sig = c
                            .sign(
                                key,
                                Mechanism::Ed25519 {
                                    message: message.clone(),
                                },
                            )
                            .unwrap();
                        (message, sig.bytes)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut signed = 0;
    for h in handles {
        for (message, sig) in h.join().unwrap() {
            let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            vk.verify_strict(&message, &sig)
                .unwrap_or_else(|e| panic!("a signature reached a thread that did not ask for it: {e}"));
            signed += 1;
        }
    }
    assert_eq!(signed, 32 * 8);
}
