//! Coordinator and signer-node protocol of the distributed HSM.
//!
//! - [`frame`]: length-prefixed frames with a size limit;
//! - [`wire`]: strictly decoded, versioned request/response messages (tags `0x80..=0xff`);
//! - [`replay`]: the node's replay and staleness guard;
//! - [`identity`]: node and coordinator keys, SPKI pinning fingerprints;
//! - [`sealed`]: node-to-node envelopes relayed by the coordinator (HPKE-sealed, Ed25519-signed, echoed broadcasts).
//! - [`tls`]: mutual TLS 1.3 configurations with SPKI-pinned peers;
#![forbid(unsafe_code)]

pub mod algo;
pub mod audit;
pub mod bundle;
pub mod config;
pub mod coordinator;
pub mod frame;
pub mod identity;
pub mod node;
pub mod replay;
pub mod sealed;
pub mod server;
pub mod store;
pub mod tls;
pub mod wire;
