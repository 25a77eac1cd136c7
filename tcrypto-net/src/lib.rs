//! Coordinator and signer-node protocol of the distributed HSM.
//!
//! The crate is grouped by role; the sans-io state machines take bytes and a clock and return bytes, and the
//! drivers around them do the I/O:
//! - [`transport`]: frames, the versioned wire messages, mutual TLS, identities and pinning, sealed node-to-node
//!   envelopes and share bundles;
//! - [`node`]: the signer node state machine and everything a node keeps (replay guard, signing policy, encrypted
//!   store, audit log, backups, reshare records) and its tokio server;
//! - [`coordinator`]: the coordinator state machine (k-of-n by health, retries, pools, culprit exclusion, DKG and
//!   reshare plans);
//! - [`client`]: the coordinator API ([`client::Cluster`]) over an engine: in-process ([`client::memory`],
//!   [`client::embedded`]), TLS without threads ([`client::blocking`]) or on tokio ([`client::asynchronous`]);
//! - [`algo`]: the bridge to the threshold schemes of `tcrypto`, used by both sides; [`config`]: the TOML files;
//!   [`metrics`]: Prometheus metrics of nodes and coordinator hosts.
//!
//! Binaries: `tcrypto-node` (the node daemon, its key store, the offline RSA ceremony, coordinator identities) and
//! `tcrypto-ctl` (the operator's tool on a coordinator configuration: list, create, import, export, sign, delete,
//! health).
#![forbid(unsafe_code)]

pub mod algo;
pub mod client;
pub mod config;
pub mod coordinator;
pub mod crash;
pub mod metrics;
pub mod node;
pub mod transport;

// Test support (feature `test-support`): `testing` names this crate `tcrypto_net`, so that integration tests can
// include the same file.
#[cfg(feature = "test-support")]
extern crate self as tcrypto_net;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod testing;
