//! The shared-memory layout of a Monad event ring file: a written contract
//! (docs/ring-format.md#s1-2, #s1-3, #s2-1). Pure constants and plain copies; the mapping
//! itself lives elsewhere.
//!
//! All integers are little-endian x86-64. Offsets are bytes from the start of the header or
//! descriptor.

/// File offset 0: ASCII `RING01`, no NUL.
pub const MAGIC: [u8; 6] = *b"RING01";
/// `MONAD_EVENT_CONTENT_TYPE_EXEC`, the u16 at header offset 6.
pub const CONTENT_TYPE_EXEC: u16 = 2;
/// The exec schema hash this build understands (header offset 8, 32 bytes). A ring with any
/// other hash was written by a Monad version with a different event schema.
pub const EXEC_SCHEMA_HASH: [u8; 32] = [
    0x89, 0x33, 0xf9, 0x07, 0xc4, 0x32, 0xc9, 0x8a, 0xc0, 0xc8, 0xdb, 0x62, 0xf9, 0xaa, 0x16, 0x4c,
    0x0c, 0x3f, 0x16, 0x72, 0xf4, 0x12, 0x90, 0xe4, 0xea, 0x34, 0x08, 0xdf, 0x6c, 0x67, 0x23, 0xf3,
];

/// The header section is one 2 MiB page; only the first [`HEADER_STRUCT_SIZE`] bytes are used.
pub const HEADER_SIZE: u64 = 2 * 1024 * 1024;
/// `sizeof(struct monad_event_ring_header)`.
pub const HEADER_STRUCT_SIZE: usize = 192;
/// `sizeof(struct monad_event_descriptor)`; descriptors are 64-aligned.
pub const DESCRIPTOR_SIZE: u64 = 64;
/// Payloads are allocated in multiples of 16 bytes.
pub const PAYLOAD_ALIGN: u64 = 16;
/// `MONAD_EVENT_WINDOW_INCR`: the expiry window moves in 16 MiB steps.
pub const WINDOW_INCR: u64 = 1 << 24;

/// Descriptor capacity limits, as shifts (`MONAD_EVENT_{MIN,MAX}_DESCRIPTORS_SHIFT`).
pub const MIN_DESCRIPTORS_SHIFT: u32 = 16;
pub const MAX_DESCRIPTORS_SHIFT: u32 = 32;
/// Payload buffer size limits, as shifts (`MONAD_EVENT_{MIN,MAX}_PAYLOAD_BUF_SHIFT`).
pub const MIN_PAYLOAD_BUF_SHIFT: u32 = 27;
pub const MAX_PAYLOAD_BUF_SHIFT: u32 = 40;

/// Header field offsets.
pub mod header_offset {
    pub const MAGIC: usize = 0;
    pub const CONTENT_TYPE: usize = 6;
    pub const SCHEMA_HASH: usize = 8;
    pub const DESCRIPTOR_CAPACITY: usize = 40;
    pub const PAYLOAD_BUF_SIZE: usize = 48;
    pub const CONTEXT_AREA_SIZE: usize = 56;
    /// Atomic u64: last seqno *allocated* (maybe not committed yet).
    pub const LAST_SEQNO: usize = 64;
    /// Atomic u64: next virtual payload byte to allocate.
    pub const NEXT_PAYLOAD_BYTE: usize = 72;
    /// Atomic u64 on its own cache line: smallest virtual payload offset still valid.
    pub const BUFFER_WINDOW_START: usize = 128;
}

/// Descriptor field offsets.
pub mod descriptor_offset {
    /// Atomic u64; 0 while the writer rewrites the slot; the real value is stored last.
    pub const SEQNO: usize = 0;
    pub const EVENT_TYPE: usize = 8;
    pub const PAYLOAD_SIZE: usize = 12;
    pub const RECORD_EPOCH_NANOS: usize = 16;
    pub const PAYLOAD_BUF_OFFSET: usize = 24;
    pub const CONTENT_EXT: usize = 32;
}

/// Exec flow tags in `content_ext` (docs/ring-format.md#s4-1).
pub mod flow {
    /// Seqno of the owning block's BLOCK_START (its own seqno for BLOCK_START); 0 outside.
    pub const BLOCK_SEQNO: usize = 0;
    /// Transaction index + 1; 0 = not transaction-scoped.
    pub const TXN_ID: usize = 1;
    /// STORAGE_ACCESS only: index of the owning ACCOUNT_ACCESS.
    pub const ACCOUNT_INDEX: usize = 2;
}

/// The three section sizes from the header (`struct monad_event_ring_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// Number of descriptor slots; a power of two.
    pub descriptor_capacity: u64,
    /// Payload buffer bytes; a power of two.
    pub payload_buf_size: u64,
    /// Context area bytes; 0 for exec rings.
    pub context_area_size: u64,
}

impl RingSizes {
    /// File offset of the descriptor array.
    pub fn descriptors_offset(&self) -> u64 {
        HEADER_SIZE
    }

    /// File offset of the payload buffer.
    pub fn payload_offset(&self) -> u64 {
        HEADER_SIZE + self.descriptor_capacity * DESCRIPTOR_SIZE
    }

    /// Total file size the header implies (header + descriptors + payload + context).
    pub fn file_size(&self) -> u64 {
        self.payload_offset() + self.payload_buf_size + self.context_area_size
    }
}

/// A plain copy of one descriptor, taken under the seqlock protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    pub seqno: u64,
    pub event_type: u16,
    /// Exact, unrounded payload length.
    pub payload_size: u32,
    /// CLOCK_REALTIME ns at the start of reservation.
    pub record_epoch_nanos: u64,
    /// Virtual offset (never wraps); physical = `offset & (payload_buf_size - 1)`.
    pub payload_buf_offset: u64,
    pub content_ext: [u64; 4],
}

impl Descriptor {
    /// Decodes the 64 descriptor bytes.
    pub fn from_bytes(b: &[u8; 64]) -> Descriptor {
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(w)
        };
        use descriptor_offset as d;
        Descriptor {
            seqno: u64_at(d::SEQNO),
            event_type: u16::from_le_bytes([b[d::EVENT_TYPE], b[d::EVENT_TYPE + 1]]),
            payload_size: u32::from_le_bytes([
                b[d::PAYLOAD_SIZE],
                b[d::PAYLOAD_SIZE + 1],
                b[d::PAYLOAD_SIZE + 2],
                b[d::PAYLOAD_SIZE + 3],
            ]),
            record_epoch_nanos: u64_at(d::RECORD_EPOCH_NANOS),
            payload_buf_offset: u64_at(d::PAYLOAD_BUF_OFFSET),
            content_ext: [
                u64_at(d::CONTENT_EXT),
                u64_at(d::CONTENT_EXT + 8),
                u64_at(d::CONTENT_EXT + 16),
                u64_at(d::CONTENT_EXT + 24),
            ],
        }
    }

    /// Encodes the 64 descriptor bytes (unused bytes zero).
    pub fn to_bytes(&self) -> [u8; 64] {
        use descriptor_offset as d;
        let mut b = [0u8; 64];
        b[d::SEQNO..d::SEQNO + 8].copy_from_slice(&self.seqno.to_le_bytes());
        b[d::EVENT_TYPE..d::EVENT_TYPE + 2].copy_from_slice(&self.event_type.to_le_bytes());
        b[d::PAYLOAD_SIZE..d::PAYLOAD_SIZE + 4].copy_from_slice(&self.payload_size.to_le_bytes());
        b[d::RECORD_EPOCH_NANOS..d::RECORD_EPOCH_NANOS + 8]
            .copy_from_slice(&self.record_epoch_nanos.to_le_bytes());
        b[d::PAYLOAD_BUF_OFFSET..d::PAYLOAD_BUF_OFFSET + 8]
            .copy_from_slice(&self.payload_buf_offset.to_le_bytes());
        for (i, v) in self.content_ext.iter().enumerate() {
            let o = d::CONTENT_EXT + 8 * i;
            b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Flow tag: seqno of the owning BLOCK_START, 0 outside a block.
    pub fn block_seqno(&self) -> u64 {
        self.content_ext[flow::BLOCK_SEQNO]
    }

    /// Flow tag: transaction index, `None` when not transaction-scoped.
    pub fn txn_idx(&self) -> Option<u64> {
        self.content_ext[flow::TXN_ID].checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_bytes_round_trip() {
        let d = Descriptor {
            seqno: 7,
            event_type: 18,
            payload_size: 129,
            record_epoch_nanos: 1_756_499_174_388_871_879,
            payload_buf_offset: 4096,
            content_ext: [3, 2, 0, 0],
        };
        assert_eq!(Descriptor::from_bytes(&d.to_bytes()), d);
        assert_eq!(d.txn_idx(), Some(1));
    }

    #[test]
    fn default_sizes_give_the_documented_file_size() {
        let s = RingSizes {
            descriptor_capacity: 1 << 21,
            payload_buf_size: 1 << 29,
            context_area_size: 0,
        };
        assert_eq!(s.file_size(), 673_185_792);
    }
}
