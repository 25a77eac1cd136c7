#![doc = include_str!("../README.md")]

mod abi;
pub mod backend;
pub mod config;
pub mod error;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod pin;
pub mod random;
pub mod store;

pub use error::{Error, Result};
pub use module::Module;
