//! The node's network side on tokio: accepts mutual-TLS connections from pinned coordinators and answers pipelined
//! request frames.
//!
//! Each connection reads frames, hands each to [`SignerNode::handle_frame`] on the blocking pool (signing is CPU
//! work) and writes answers as they complete, so many requests are in flight per connection and answers may come
//! back out of order (they carry the request id). A bad frame length closes that connection only; an undecodable
//! message is answered with a typed error; neither affects other connections.
//!
//! [`serve_until`] is the daemon's form: the accepted coordinators ([`Access`]) can be replaced while it runs
//! (SIGHUP), which applies to new connections and closes those of coordinators no longer pinned, without touching
//! the others; and a shutdown (SIGTERM) stops accepting and reading, lets the requests already read finish and
//! their answers go out, and closes each connection cleanly. A coordinator sees the connection end and sends what
//! it had not been answered to other nodes: nothing is lost, and nothing answered is signed again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::node::SignerNode;
use crate::transport::frame::{FrameDecoder, append_frame};
use crate::transport::identity::SpkiFingerprint;
use crate::transport::tls::peer_fingerprint;

/// Requests one connection may have in flight on the node before it stops reading.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch by the system clock.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Who may connect: the TLS configuration (with its pinned-coordinator verifier) and the same pins as a set, so
/// that a connection can tell whether its coordinator is still pinned after a change.
#[derive(Debug, Clone)]
pub struct Access {
    /// The server's TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The pinned coordinator fingerprints `tls` accepts.
    pub pinned: Vec<SpkiFingerprint>,
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, node: Arc<SignerNode>) {
    let access = Access {
        tls,
        pinned: Vec::new(),
    };
    let (_keep, access) = watch::channel(access);
    let (_never, shutdown) = watch::channel(false);
    serve_inner(listener, access, node, shutdown, false).await;
}

/// Serves until `shutdown` becomes `true`, then stops accepting, finishes what the connections had read, and
/// returns once every connection is closed. New connections are accepted with the latest `access`; when it
/// changes, connections whose coordinator is no longer pinned are closed.
pub async fn serve_until(
    listener: TcpListener,
    access: watch::Receiver<Access>,
    node: Arc<SignerNode>,
    shutdown: watch::Receiver<bool>,
) {
    serve_inner(listener, access, node, shutdown, true).await;
}

async fn serve_inner(
    listener: TcpListener,
    access: watch::Receiver<Access>,
    node: Arc<SignerNode>,
    mut shutdown: watch::Receiver<bool>,
    check_pins: bool,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(access.borrow().tls.clone());
        let node = node.clone();
        let access = access.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let requester = peer_fingerprint(stream.get_ref().1.peer_certificates());
                    tracing::info!(%peer, requester = ?requester, "coordinator connected");
                    let revoked = revoked(access, requester, check_pins);
                    let metrics = node.metrics().cloned();
                    if let Some(m) = &metrics {
                        m.connection(1);
                    }
                    connection(stream, requester, node, peer, shutdown, revoked).await;
                    if let Some(m) = &metrics {
                        m.connection(-1);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake refused");
                    if let Some(m) = node.metrics() {
                        m.handshake_refused();
                    }
                }
                Err(_) => {
                    tracing::warn!(%peer, "TLS handshake timed out");
                    if let Some(m) = node.metrics() {
                        m.handshake_refused();
                    }
                }
            }
        });
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            "shutting down: finishing the requests already read"
        );
    }
    while connections.join_next().await.is_some() {}
}

/// Resolves when `requester` is no longer among the pinned coordinators (never, unless `check`).
async fn revoked(mut access: watch::Receiver<Access>, requester: Option<SpkiFingerprint>, check: bool) {
    if !check {
        return std::future::pending().await;
    }
    loop {
        if access.changed().await.is_err() {
            return std::future::pending().await;
        }
        let still = requester.is_some_and(|r| access.borrow().pinned.contains(&r));
        if !still {
            return;
        }
    }
}

async fn connection<S>(
    stream: S,
    requester: Option<crate::transport::identity::SpkiFingerprint>,
    node: Arc<SignerNode>,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    revoked: impl std::future::Future<Output = ()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    tokio::pin!(revoked);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(resp) = rx.recv().await {
            out.clear();
            if append_frame(&mut out, &resp).is_err() {
                continue;
            }
            while let Ok(more) = rx.try_recv() {
                let _ = append_frame(&mut out, &more);
            }
            if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let read = tokio::select! {
            r = rd.read(&mut buf) => r,
            _ = shutdown.wait_for(|s| *s) => break,
            () = &mut revoked => {
                tracing::warn!(%peer, "coordinator no longer pinned; closing its connection");
                break;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break 'read;
                    };
                    let node = node.clone();
                    let tx = tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let resp = node.handle_frame(requester, unix_ms_now(), &frame, &mut rand::rng());
                        #[cfg(feature = "test-support")]
                        let resp = crate::node::misbehave::apply(resp);
                        let _ = tx.send(resp);
                        drop(permit);
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "bad frame; closing connection");
                    break 'read;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::info!(%peer, "coordinator disconnected");
}
