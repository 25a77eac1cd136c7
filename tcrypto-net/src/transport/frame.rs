//! Length-prefixed frames: how wire messages are cut out of a byte stream.
//!
//! A frame is a big-endian `u32` length followed by that many bytes of one encoded message. A length of zero or
//! above [`MAX_FRAME_LEN`] is an error: the decoder never allocates more than the limit, whatever a peer sends, and a
//! stream that produced an error is not read further (the connection is closed).

use thiserror::Error;

/// Largest payload of one frame (1 MiB): far above any share or relayed DKG message, far below memory trouble.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a byte stream cannot be cut into frames.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME_LEN`] bytes.
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    Oversized(usize),
    /// The length prefix is zero.
    #[error("empty frame")]
    Empty,
    /// The payload to send is larger than [`MAX_FRAME_LEN`].
    #[error("message of {0} bytes is too large to send")]
    TooLargeToSend(usize),
}

/// Prepends the length prefix to `payload`.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    append_frame(&mut out, payload)?;
    Ok(out)
}

/// Appends one frame carrying `payload` to `out`.
pub fn append_frame(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLargeToSend(payload.len()));
    }
    // The length fits in u32 because MAX_FRAME_LEN does.
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLargeToSend(payload.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Accumulates bytes from a stream and yields whole frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.compact();
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed. After an error every call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        let Some(header) = avail.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        let err = if len == 0 {
            Some(FrameError::Empty)
        } else if len > MAX_FRAME_LEN {
            Some(FrameError::Oversized(len))
        } else {
            None
        };
        if let Some(e) = err {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            self.start = 0;
            return Err(e);
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let frame = avail[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        Ok(Some(frame))
    }

    fn compact(&mut self) {
        if self.start > 0 && (self.start == self.buf.len() || self.start > 64 * 1024) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut stream = encode_frame(b"hello").unwrap();
        stream.extend(encode_frame(b"world!").unwrap());
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"world!".to_vec()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn oversized_length_is_refused_before_buffering_the_payload() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            d.next_frame().unwrap_err(),
            FrameError::Oversized(u32::MAX as usize)
        );
        d.push(&[0; 1000]);
        assert_eq!(d.buffered(), 0);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn empty_frames_are_refused_both_ways() {
        assert_eq!(encode_frame(b"").unwrap_err(), FrameError::Empty);
        let mut d = FrameDecoder::new();
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame().unwrap_err(), FrameError::Empty);
    }

    #[test]
    fn truncated_frame_waits_for_more_bytes() {
        let f = encode_frame(b"abcdef").unwrap();
        let mut d = FrameDecoder::new();
        d.push(&f[..7]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&f[7..]);
        assert_eq!(d.next_frame().unwrap().unwrap(), b"abcdef");
    }
}
