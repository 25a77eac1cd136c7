//! Identifiers shared by every protocol: signer ids, session ids and key ids.
//!
//! A [`SignerId`] is the Shamir evaluation point of a party, `1..=65535`. It is never 0 (the secret lives at 0) and
//! never silently truncated: constructing one from a wider integer checks the range.

use core::fmt;
use core::num::NonZeroU16;
use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;

use crate::codec::{DecodeError, Reader, Writer};

/// The id of a signer (a share holder): its Shamir evaluation point, `1..=65535`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignerId(NonZeroU16);

impl SignerId {
    /// Makes a signer id; `None` for 0.
    pub const fn new(id: u16) -> Option<Self> {
        match NonZeroU16::new(id) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// Makes a signer id from any integer; `None` for 0 or anything above `u16::MAX`.
    pub fn from_u64(id: u64) -> Option<Self> {
        u16::try_from(id).ok().and_then(Self::new)
    }

    /// The id as an integer, `>= 1`.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// Appends the id to an encoding.
    pub fn encode(self, w: &mut Writer) {
        w.u16(self.get());
    }

    /// Reads an id; 0 is an error.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = r.u16()?;
        Self::new(v).ok_or(DecodeError::Invalid("signer id 0"))
    }

    /// Reads a map keyed by signer id: a `u32` count, then `(id, value)` entries with strictly increasing ids, so
    /// that a map has exactly one encoding and a duplicated id is refused. `value_len` is the shortest encoding of
    /// a value (it bounds the count by the bytes left); `value` reads one value.
    pub(crate) fn decode_map<T>(
        r: &mut Reader<'_>,
        value_len: usize,
        mut value: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<BTreeMap<Self, T>, DecodeError> {
        let n = r.count(2 + value_len)?;
        let mut out = BTreeMap::new();
        let mut last: Option<Self> = None;
        for _ in 0..n {
            let id = Self::decode(r)?;
            if last.is_some_and(|l| l >= id) {
                return Err(DecodeError::Invalid(
                    "signer ids not strictly increasing (duplicate id)",
                ));
            }
            last = Some(id);
            out.insert(id, value(r)?);
        }
        Ok(out)
    }

    /// Reads a set of signer ids: a `u32` count, then strictly increasing ids (see [`SignerId::decode_map`]).
    pub(crate) fn decode_set(r: &mut Reader<'_>) -> Result<BTreeSet<Self>, DecodeError> {
        Ok(Self::decode_map(r, 0, |_| Ok(()))?.into_keys().collect())
    }
}

impl fmt::Debug for SignerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerId({})", self.get())
    }
}

impl fmt::Display for SignerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl From<SignerId> for u16 {
    fn from(id: SignerId) -> u16 {
        id.get()
    }
}

/// Default quorum for `n` parties under the honest-majority model: `floor(n/2) + 1`.
pub const fn default_threshold(n: u16) -> u16 {
    n / 2 + 1
}

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// A fresh random id.
            pub fn random(rng: &mut impl CryptoRng) -> Self {
                let mut b = [0u8; 32];
                rng.fill_bytes(&mut b);
                Self(b)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Appends the id to an encoding.
            pub fn encode(&self, w: &mut Writer) {
                w.raw(&self.0);
            }

            /// Reads an id.
            pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(r.array::<32>()?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                for b in &self.0[..8] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}

byte_id!(
    /// A per-run session id, chosen fresh by the coordinator for every request and bound into every proof,
    /// hash and commitment of that run.
    SessionId
);
byte_id!(
    /// The id of a threshold key, bound into every proof made with its shares.
    KeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_id_refuses_zero_and_out_of_range() {
        assert!(SignerId::new(0).is_none());
        assert!(SignerId::from_u64(0).is_none());
        assert!(SignerId::from_u64(65_536).is_none());
        assert_eq!(SignerId::from_u64(65_535).map(SignerId::get), Some(65_535));
    }

    #[test]
    fn default_threshold_is_strict_majority() {
        assert_eq!(default_threshold(1), 1);
        assert_eq!(default_threshold(3), 2);
        assert_eq!(default_threshold(4), 3);
        assert_eq!(default_threshold(5), 3);
    }
}
