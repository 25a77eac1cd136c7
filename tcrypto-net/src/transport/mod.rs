//! What travels between coordinator and nodes, and who may send it.
//!
//! - [`frame`]: length-prefixed frames with a size limit;
//! - [`wire`]: strictly decoded, versioned request/response messages (tags `0x80..=0xff`);
//! - [`tls`]: mutual TLS 1.3 configurations with SPKI-pinned peers;
//! - [`identity`]: node and coordinator keys (the coordinator's sealed with a passphrase), SPKI pinning fingerprints;
//! - [`sealed`]: node-to-node envelopes relayed by the coordinator (HPKE-sealed, Ed25519-signed, echoed broadcasts);
//! - [`bundle`]: HPKE-sealed share bundles from a dealer or key ceremony.

pub mod bundle;
pub mod frame;
pub mod identity;
pub mod sealed;
pub mod tls;
pub mod wire;
