//! The node's network side on tokio: accepts mutual-TLS connections from pinned coordinators and answers pipelined
//! request frames.
//!
//! Each connection reads frames, hands each to [`SignerNode::handle_frame`] on the blocking pool (signing is CPU
//! work) and writes answers as they complete, so many requests are in flight per connection and answers may come
//! back out of order (they carry the request id). A bad frame length closes that connection only; an undecodable
//! message is answered with a typed error; neither affects other connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::frame::{FrameDecoder, append_frame};
use crate::node::SignerNode;
use crate::tls::peer_fingerprint;

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

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, node: Arc<SignerNode>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let node = node.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let requester = peer_fingerprint(stream.get_ref().1.peer_certificates());
                    tracing::info!(%peer, requester = ?requester, "coordinator connected");
                    connection(stream, requester, node, peer).await;
                }
                Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

async fn connection<S>(
    stream: S,
    requester: Option<crate::identity::SpkiFingerprint>,
    node: Arc<SignerNode>,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
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
        let n = match rd.read(&mut buf).await {
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
                        let resp = crate::misbehave::apply(resp);
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
