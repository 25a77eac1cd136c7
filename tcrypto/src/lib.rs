#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod backend;
pub mod codec;
pub mod dkg;
pub mod ecdsa;
pub mod ed25519;
pub mod hash;
pub mod id;
#[cfg(feature = "dealer")]
pub mod import;
pub mod reshare;
pub mod rsa;

pub use hash::HashAlg;
pub use id::{KeyId, SessionId, SignerId};
