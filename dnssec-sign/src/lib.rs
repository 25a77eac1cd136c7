#![doc = include_str!("../README.md")]

pub mod cluster;
pub mod denial;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod name;
pub mod pkcs11;
pub mod presentation;
pub mod rdata;
pub mod rollover;
pub mod rules;
pub mod sign;
pub mod verify;
pub mod zone;
pub mod zonefile;
pub mod zonemd;

pub use denial::Denial;
pub use error::{KeyError, SignError, ZoneError};
pub use keys::{Algorithm, DsDigest, LocalKey, ZoneSigningKey, ds_rdata, verify_signature};
pub use name::Name;
pub use sign::{ApexKeys, SerialPolicy, SignOptions, SignStats, Strictness, sign_zone};
pub use zone::{Record, Zone};
pub use zonefile::{parse_zone, read_zone_file, write_zone_file};
pub use zonemd::ZonemdHash;
