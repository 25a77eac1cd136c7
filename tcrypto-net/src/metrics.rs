//! Metrics in the Prometheus text format (`prometheus-client`), for the node daemon and for coordinator hosts.
//!
//! **Node** ([`NodeMetrics`], served by `tcrypto-node serve` on `metrics_listen` when it is set; off by default):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `tcrypto_node_requests_total` | `operation`, `key`, `mechanism`, `outcome` | requests answered |
//! | `tcrypto_node_request_seconds` | `operation` | time to answer (histogram) |
//! | `tcrypto_node_presignatures` | `key` | unspent ECDSA presignatures held |
//! | `tcrypto_node_frost_nonces` | `key` | unused FROST nonces held |
//! | `tcrypto_node_keys` | | keys served |
//! | `tcrypto_node_store_secrets`, `tcrypto_node_store_bytes` | | files and bytes in the sealed store |
//! | `tcrypto_node_tls_handshakes_refused_total` | | handshakes refused or timed out (unpinned clients) |
//! | `tcrypto_node_connections` | | coordinator connections open |
//! | `tcrypto_node_arithmetic_info` | `backend` | always 1; `backend` is the arithmetic backend in force when the metrics were set up (`pure-rust` or `openssl`, see `tcrypto::backend`) |
//!
//! `key` is the key id in hex; `mechanism` is empty for requests that do not sign; `outcome` is `ok` or the error
//! code. Policy refusals will appear as their own outcome once nodes enforce a signing policy.
//!
//! **Coordinator** ([`coordinator_metrics`]): a snapshot of a [`crate::client::Cluster`] in the same format
//! (per node: connected, in flight, answers, failures, smoothed latency; per key: presignature pool level), for a
//! host to print or serve (`dnssec-sign --metrics`, `examples/cluster --metrics`).
//!
//! [`serve_metrics`] answers `GET /metrics` over HTTP/1.1 (`hyper`) with whatever a render function returns.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    key: String,
    mechanism: String,
    outcome: String,
}

/// Labels by operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

/// Labels by key.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: String,
}

/// Labels by node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// A node's metrics (see the module docs). Counters are updated as requests are answered; stock gauges are set
/// from the node's state when rendered.
pub struct NodeMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    presignatures: Family<KeyLabels, Gauge>,
    nonces: Family<KeyLabels, Gauge>,
    keys: Gauge,
    store_secrets: Gauge,
    store_bytes: Gauge<u64, AtomicU64>,
    handshakes_refused: Counter,
    connections: Gauge,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What a node reports when its metrics are rendered.
#[derive(Debug, Default, Clone)]
pub struct NodeStock {
    /// Unspent presignatures per key.
    pub presignatures: Vec<(String, u64)>,
    /// Unused FROST nonces per key.
    pub nonces: Vec<(String, u64)>,
    /// Keys served.
    pub keys: u64,
    /// Files in the sealed store.
    pub store_secrets: u64,
    /// Bytes in the sealed store.
    pub store_bytes: u64,
}

impl NodeMetrics {
    /// Registers every node metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tcrypto_node");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered", requests.clone());
        let latency =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("request_seconds", "Time to answer a request", latency.clone());
        let presignatures = Family::<KeyLabels, Gauge>::default();
        registry.register(
            "presignatures",
            "Unspent ECDSA presignatures held",
            presignatures.clone(),
        );
        let nonces = Family::<KeyLabels, Gauge>::default();
        registry.register("frost_nonces", "Unused FROST nonces held", nonces.clone());
        let keys = Gauge::default();
        registry.register("keys", "Keys served", keys.clone());
        let store_secrets = Gauge::default();
        registry.register(
            "store_secrets",
            "Files in the sealed store",
            store_secrets.clone(),
        );
        let store_bytes = Gauge::<u64, AtomicU64>::default();
        registry.register("store_bytes", "Bytes in the sealed store", store_bytes.clone());
        let handshakes_refused = Counter::default();
        registry.register(
            "tls_handshakes_refused",
            "TLS handshakes refused or timed out",
            handshakes_refused.clone(),
        );
        let connections = Gauge::default();
        registry.register("connections", "Coordinator connections open", connections.clone());
        // Set up after the daemon installed its backend; the choice holds for the life of the process.
        registry.register(
            "arithmetic",
            "The arithmetic backend the node signs on",
            Info::new(vec![(
                "backend".to_string(),
                tcrypto::backend::name().to_string(),
            )]),
        );
        Self {
            registry,
            requests,
            latency,
            presignatures,
            nonces,
            keys,
            store_secrets,
            store_bytes,
            handshakes_refused,
            connections,
        }
    }

    /// Counts one answered request and its time.
    pub fn request(
        &self,
        operation: &str,
        key: Option<String>,
        mechanism: Option<&str>,
        outcome: &str,
        took: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                key: key.unwrap_or_default(),
                mechanism: mechanism.unwrap_or_default().to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a refused or timed-out TLS handshake.
    pub fn handshake_refused(&self) {
        self.handshakes_refused.inc();
    }

    /// A coordinator connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// The text exposition, with the stock gauges set from `stock`.
    pub fn render(&self, stock: &NodeStock) -> String {
        self.presignatures.clear();
        for (key, n) in &stock.presignatures {
            self.presignatures
                .get_or_create(&KeyLabels { key: key.clone() })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.nonces.clear();
        for (key, n) in &stock.nonces {
            self.nonces
                .get_or_create(&KeyLabels { key: key.clone() })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.keys.set(i64::try_from(stock.keys).unwrap_or(i64::MAX));
        self.store_secrets
            .set(i64::try_from(stock.store_secrets).unwrap_or(i64::MAX));
        self.store_bytes.set(stock.store_bytes);
        encode(&self.registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// A coordinator's state in the Prometheus text format: per node `tcrypto_coordinator_node_connected`,
/// `_node_excluded` (1 once named a culprit: a bad signature share, Shoup proof or, for an ordinary-modulus RSA key,
/// by elimination; or named by the new holders of a reshare), `_node_in_flight`, `_node_answers_total`, `_node_failures_total`, `_node_latency_seconds`, and per key
/// `tcrypto_coordinator_presignature_pool`.
pub fn coordinator_metrics<E: crate::client::Engine>(cluster: &crate::client::Cluster<E>) -> String {
    let mut registry = Registry::with_prefix("tcrypto_coordinator");
    let connected = Family::<NodeLabels, Gauge>::default();
    registry.register(
        "node_connected",
        "Whether a connection to the node is up",
        connected.clone(),
    );
    let excluded = Family::<NodeLabels, Gauge>::default();
    registry.register(
        "node_excluded",
        "Whether the coordinator excluded the node (a culprit, or held back by the operator)",
        excluded.clone(),
    );
    let in_flight = Family::<NodeLabels, Gauge>::default();
    registry.register(
        "node_in_flight",
        "Requests awaiting the node's answer",
        in_flight.clone(),
    );
    let answers = Family::<NodeLabels, Counter>::default();
    registry.register("node_answers", "Answers received from the node", answers.clone());
    let failures = Family::<NodeLabels, Counter>::default();
    registry.register(
        "node_failures",
        "Errors, timeouts and disconnections of the node",
        failures.clone(),
    );
    let latency = Family::<NodeLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    registry.register(
        "node_latency_seconds",
        "Smoothed answer latency of the node",
        latency.clone(),
    );
    for h in cluster.health() {
        let l = NodeLabels { node: h.name.clone() };
        connected.get_or_create(&l).set(i64::from(h.connected));
        excluded.get_or_create(&l).set(i64::from(h.excluded.is_some()));
        in_flight
            .get_or_create(&l)
            .set(i64::try_from(h.in_flight).unwrap_or(i64::MAX));
        answers.get_or_create(&l).inc_by(h.answered);
        failures.get_or_create(&l).inc_by(h.failed);
        latency.get_or_create(&l).set(h.latency.as_secs_f64());
    }
    let pool = Family::<KeyLabels, Gauge>::default();
    registry.register(
        "presignature_pool",
        "Presignatures ready in the coordinator's pool",
        pool.clone(),
    );
    for key in cluster.list() {
        let n = cluster.presignature_pool_len(&key);
        pool.get_or_create(&KeyLabels { key: key.to_string() })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    encode(&registry)
}

/// Answers `GET /metrics` on `listener` with `render()` (and 404 elsewhere) until the task is dropped.
pub async fn serve_metrics(listener: tokio::net::TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move {
                    if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(render())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"GET /metrics\n")))
                    }
                }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}
