//! The versioned, strict binary encoding used by every stored or transmitted type.
//!
//! Every top-level object starts with a format version byte ([`VERSION`]) and a type tag, then its fields in a fixed
//! order: big-endian integers, `u32`-length-prefixed byte strings. A reader rejects an unknown version, an unknown
//! tag, a length that runs past the end and trailing bytes ([`Reader::finish`]), so one object has exactly one
//! encoding. Nothing here panics on any input.

use thiserror::Error;

/// The only format version this crate writes and reads.
pub const VERSION: u8 = 1;

/// Upper bound on any single length-prefixed field (16 MiB): a bogus length never makes us allocate gigabytes.
pub const MAX_FIELD_LEN: usize = 16 << 20;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("truncated input")]
    Truncated,
    /// Bytes were left after the object.
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    /// The format version is not one we know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The type tag is not the one expected.
    #[error("unexpected type tag {found:#04x} (expected {expected:#04x})")]
    UnexpectedTag {
        /// Tag expected by the caller.
        expected: u8,
        /// Tag found in the input.
        found: u8,
    },
    /// A length prefix is larger than allowed.
    #[error("field length {0} exceeds the limit")]
    TooLong(usize),
    /// A field is syntactically fine but its value is not allowed.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// Builds an encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts an object: version byte and type tag.
    pub fn new(tag: u8) -> Self {
        Self {
            buf: vec![VERSION, tag],
        }
    }

    /// Starts an object with room for `capacity` bytes in all (header included), so an encoding of known size never
    /// reallocates: secret bytes are then never left behind in a freed, larger-grown buffer.
    pub fn with_capacity(tag: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(2));
        buf.extend_from_slice(&[VERSION, tag]);
        Self { buf }
    }

    /// Starts a headerless buffer (for nested fields or hash inputs).
    pub fn bare() -> Self {
        Self::default()
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a boolean as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Appends bytes without a length (fixed-size fields).
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a `u32` length then the bytes.
    ///
    /// Fields longer than `u32::MAX` cannot occur for the types of this crate (they are bounded by
    /// [`MAX_FIELD_LEN`]); the length saturates rather than wrapping so a reader rejects such an encoding.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(v)
    }

    /// The encoding so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The finished encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads an encoding strictly.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads the header of an object: the version must be [`VERSION`] and the tag `tag`.
    pub fn new(input: &'a [u8], tag: u8) -> Result<Self, DecodeError> {
        let mut r = Self::bare(input);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let found = r.u8()?;
        if found != tag {
            return Err(DecodeError::UnexpectedTag { expected: tag, found });
        }
        Ok(r)
    }

    /// Reads headerless bytes.
    pub fn bare(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a boolean; any byte other than 0 or 1 is an error.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("boolean byte not 0 or 1")),
        }
    }

    /// Reads `n` bytes without a length prefix.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// Reads a `u32` length then that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > MAX_FIELD_LEN {
            return Err(DecodeError::TooLong(len));
        }
        self.take(len)
    }

    /// Reads a count of items that each take at least `min_item_len` bytes, refusing counts the input cannot hold
    /// (so a bogus count never drives a huge allocation).
    pub fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_len.max(1)) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    /// Ends reading: any byte left is an error.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_with_exact_capacity_writes_in_place() {
        // What KeyShare::encode relies on: a buffer that never moves leaves no stale copy of a secret behind.
        let mut w = Writer::with_capacity(7, 2 + 2 + 4 + 300);
        let start = w.as_slice().as_ptr();
        w.u16(1).bytes(&[0xAA; 300]);
        assert_eq!(w.as_slice().as_ptr(), start);
        let buf = w.finish();
        assert_eq!((buf.len(), buf.capacity()), (308, 308));
    }

    #[test]
    fn round_trip_of_every_field_kind() {
        let mut w = Writer::new(7);
        w.u8(1).u16(2).u32(3).u64(4).bool(true).raw(&[9, 9]).bytes(b"abc");
        let buf = w.finish();
        let mut r = Reader::new(&buf, 7).unwrap();
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(r.u64().unwrap(), 4);
        assert!(r.bool().unwrap());
        assert_eq!(r.raw(2).unwrap(), &[9, 9]);
        assert_eq!(r.bytes().unwrap(), b"abc");
        r.finish().unwrap();
    }

    #[test]
    fn rejects_unknown_version_wrong_tag_truncation_and_trailing_bytes() {
        assert_eq!(
            Reader::new(&[2, 7], 7).unwrap_err(),
            DecodeError::UnknownVersion(2)
        );
        assert!(matches!(
            Reader::new(&[VERSION, 8], 7).unwrap_err(),
            DecodeError::UnexpectedTag {
                expected: 7,
                found: 8
            }
        ));
        let mut r = Reader::new(&[VERSION, 7, 0, 0, 0, 5, 1], 7).unwrap();
        assert_eq!(r.bytes().unwrap_err(), DecodeError::Truncated);
        let r = Reader::new(&[VERSION, 7, 0], 7).unwrap();
        assert_eq!(r.finish().unwrap_err(), DecodeError::TrailingBytes(1));
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut r = Reader::bare(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(r.count(1).unwrap_err(), DecodeError::Truncated);
    }
}
