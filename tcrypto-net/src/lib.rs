//! Coordinator and signer-node protocol of the distributed HSM.
//!
//! Protocol core (sans-io):
//! - [`frame`]: length-prefixed frames with a size limit;
//! - [`wire`]: strictly decoded, versioned request/response messages (tags `0x80..=0xff`);
//! - [`replay`]: the node's replay and staleness guard;
//! - [`node`]: the signer node state machine;
//! - [`coordinator`]: the coordinator state machine (k-of-n by health, fallback, culprit exclusion);
//! - [`algo`]: the bridge to the threshold schemes of `tcrypto`;
//! - `ec` (internal): the node's side of the DKG and FROST runs relayed through the coordinator;
//! - [`sealed`]: node-to-node envelopes relayed by the coordinator (HPKE-sealed, Ed25519-signed, echoed broadcasts);
//! - [`bundle`]: HPKE-sealed share bundles from a dealer or key ceremony.
//!
//! Identities, storage, transports:
//! - [`identity`]: node and coordinator keys (the coordinator's sealed with a passphrase), SPKI pinning fingerprints;
//! - [`tls`]: mutual TLS 1.3 configurations with SPKI-pinned peers;
//! - [`store`]: encrypted, crash-safe secret store; [`audit`]: the append-only audit log; [`config`]: TOML files;
//! - [`server`]: the node's tokio server; [`embedded`]: nodes inside the current process;
//! - [`cluster`]: the coordinator API over an engine: [`memory`] (in-process) or [`blocking`] (TLS, thread-free);
//!   [`asynchronous`]: the same on tokio.
//!
//! Binaries: `tcrypto-node` (the node daemon, its key store, the offline RSA ceremony, coordinator identities) and
//! `tcrypto-ctl` (the operator's tool on a coordinator configuration: list, create, import, export, sign, delete,
//! health).
#![forbid(unsafe_code)]

pub mod algo;
pub mod asynchronous;
pub mod audit;
pub mod backup;
pub mod blocking;
pub mod bundle;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod crash;
pub(crate) mod ec;
pub mod embedded;
pub mod frame;
pub mod identity;
pub mod memory;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod replay;
pub mod reshare;
pub mod sealed;
pub mod server;
pub mod store;
pub mod tls;
pub mod wire;

// Test support (feature `test-support`): `testing` names this crate `tcrypto_net`, so that integration tests can
// include the same file.
#[cfg(feature = "test-support")]
extern crate self as tcrypto_net;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod testing;
// Byzantine answers of `tcrypto-node serve` for multi-process tests (feature `test-support`).
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod misbehave;
