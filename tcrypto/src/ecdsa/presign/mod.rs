//! Presigning (DJNPØ §4, preprocessing): message-independent presignatures, made in batches by a set `P` of at
//! least `2t + 1` parties in three rounds.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SessionId;

/// Names one presignature: the presigning run's session id and its index in the batch. This is what a signer
/// must durably record as spent before releasing a signature share made with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PresignatureId {
    /// Session id of the presigning run.
    pub session: SessionId,
    /// Index in the batch, `0..batch`.
    pub index: u32,
}

impl PresignatureId {
    /// Appends the id.
    pub fn encode(&self, w: &mut Writer) {
        self.session.encode(w);
        w.u32(self.index);
    }

    /// Reads an id.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            session: SessionId::decode(r)?,
            index: r.u32()?,
        })
    }
}
