#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod codec;
pub mod id;

pub use id::{KeyId, SessionId, SignerId};
