//! What the history knows about one sealed chunk and about the journal as a whole.
//!
//! A *chunk* is a run of consecutive frames (by `server_seqno`) of one epoch, serialized and
//! compressed together; it is the unit of storage, retention and replay reads. Its
//! [`ChunkMeta`] is kept in memory for every chunk in the history (the index) and is written
//! in front of the chunk on disk, so a journal can be indexed without decompressing anything.
//!
//! Invariants: `first_seqno <= last_seqno`; chunks of one journal have strictly increasing,
//! non-overlapping seqno ranges (a hole between two chunks is a history loss, announced to a
//! replaying client as a `Gap`).

/// Sentinel for "no block" in the fixed encoding.
const NO_BLOCK: u64 = u64::MAX;

/// The index entry of one sealed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// The server epoch every frame of the chunk belongs to.
    pub epoch: u64,
    /// `server_seqno` of the first and last frame (inclusive).
    pub first_seqno: u64,
    pub last_seqno: u64,
    /// Lowest and highest block number of the live (`Proposed`) in-block events in the chunk,
    /// if any (for `from_block`).
    pub first_block: Option<u64>,
    pub last_block: Option<u64>,
    /// Wall-clock time (ns since the Unix epoch) when the first and last frame were journaled
    /// (for retention by age and the reported time span).
    pub first_time_ns: u64,
    pub last_time_ns: u64,
    /// Highest ring seqno of any event in the chunk, or of any earlier chunk if this one has
    /// none (where a restarted tailer continues reading the ring).
    pub last_ring_seqno: u64,
    /// Frames in the chunk.
    pub frames: u32,
    /// Length of the chunk's serialized frames before compression.
    pub raw_len: u32,
}

impl ChunkMeta {
    /// Length of [`ChunkMeta::encode`]'s output.
    pub const ENCODED_LEN: usize = 8 * 8 + 4 + 4;

    /// The fixed little-endian encoding (absent blocks as `u64::MAX`).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let words = [
            self.epoch,
            self.first_seqno,
            self.last_seqno,
            self.first_block.unwrap_or(NO_BLOCK),
            self.last_block.unwrap_or(NO_BLOCK),
            self.first_time_ns,
            self.last_time_ns,
            self.last_ring_seqno,
        ];
        for (i, w) in words.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out[64..68].copy_from_slice(&self.frames.to_le_bytes());
        out[68..72].copy_from_slice(&self.raw_len.to_le_bytes());
        out
    }

    /// Decodes [`ChunkMeta::encode`]'s output; `None` when it is too short or inconsistent
    /// (`first_seqno > last_seqno`, no frames).
    pub fn decode(bytes: &[u8]) -> Option<ChunkMeta> {
        let bytes = bytes.get(..Self::ENCODED_LEN)?;
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let block = |w: u64| (w != NO_BLOCK).then_some(w);
        let meta = ChunkMeta {
            epoch: word(0),
            first_seqno: word(1),
            last_seqno: word(2),
            first_block: block(word(3)),
            last_block: block(word(4)),
            first_time_ns: word(5),
            last_time_ns: word(6),
            last_ring_seqno: word(7),
            frames: u32::from_le_bytes(bytes[64..68].try_into().unwrap()),
            raw_len: u32::from_le_bytes(bytes[68..72].try_into().unwrap()),
        };
        (meta.first_seqno <= meta.last_seqno && meta.frames > 0).then_some(meta)
    }
}

/// What makes a journal belong to one gateway setup: a journal whose identity differs from the
/// running gateway's is refused, never mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalIdentity {
    /// Version of the journal's binary format (segment and chunk layout, frame records).
    pub format_version: u32,
    /// The server epoch the journal's seqnos belong to (kept across restarts).
    pub epoch: u64,
    /// The ring file the gateway reads (as given, canonicalized when possible).
    pub ring_path: String,
    /// The chain id from the ring's `BlockStart`, once one has been seen (0 = not yet).
    pub chain_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_meta_round_trips_and_rejects_nonsense() {
        let meta = ChunkMeta {
            epoch: 7,
            first_seqno: 100,
            last_seqno: 199,
            first_block: Some(15_000_001),
            last_block: None,
            first_time_ns: 1,
            last_time_ns: 2,
            last_ring_seqno: 4242,
            frames: 100,
            raw_len: 65_536,
        };
        assert_eq!(ChunkMeta::decode(&meta.encode()), Some(meta));
        let mut bad = meta.encode();
        bad[8..16].copy_from_slice(&500u64.to_le_bytes());
        assert_eq!(ChunkMeta::decode(&bad), None);
        assert_eq!(ChunkMeta::decode(&meta.encode()[..10]), None);
    }
}
