//! The journal's byte layouts, exactly as `docs/history-format.md` states them: the segment
//! header, the chunk record header, the `identity` file and the `clean` marker.
//!
//! Pure functions over byte slices (no I/O), so every layout is unit-testable and a decoder
//! given arbitrary bytes returns `None` or a reason, never panics. All integers are
//! little-endian; every structure carries a magic and a CRC-32 (IEEE, `crc32fast`).

use crate::history::meta::{ChunkMeta, JournalIdentity};

/// First bytes of every segment file.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"RGSEGMNT";
/// Length of the segment header; the first record starts here.
pub(super) const SEGMENT_HEADER_LEN: usize = 64;
/// First bytes of every chunk record.
pub(super) const RECORD_MAGIC: [u8; 4] = *b"RGCK";
/// Record header: magic (4), payload length (4), CRC-32 (4), chunk meta (72).
pub(super) const RECORD_HEADER_LEN: usize = 12 + ChunkMeta::ENCODED_LEN;
/// Largest payload a record may carry. A length field above it is corruption, not a chunk:
/// the scan never trusts it to skip ahead.
pub(super) const MAX_PAYLOAD_LEN: u32 = 256 << 20;
/// First bytes of the `identity` file.
pub(super) const IDENTITY_MAGIC: [u8; 8] = *b"RGIDENTY";
/// Longest ring path the identity file holds (Linux `PATH_MAX`).
pub(super) const MAX_RING_PATH_LEN: usize = 4096;
/// First bytes of the `clean` marker.
pub(super) const CLEAN_MAGIC: [u8; 8] = *b"RGCLEAN\0";
/// Length of the `clean` marker.
pub(super) const CLEAN_LEN: usize = 20;
/// `clean`'s "no chunk was ever journaled".
const NO_SEQNO: u64 = u64::MAX;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The fixed header at offset 0 of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    /// The journal format version (`JournalIdentity::format_version`) it was written in.
    pub format_version: u32,
    /// The server epoch of every chunk in the segment.
    pub epoch: u64,
    /// `first_seqno` of the segment's first chunk; also the file name and the segment id.
    pub first_seqno: u64,
    /// Wall-clock time the segment was created, ns since the Unix epoch.
    pub created_ns: u64,
}

/// Why a segment header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderFault {
    Short,
    Magic,
    Crc,
    Length,
    /// A good header whose `first_seqno` is not the id in its file name.
    Name,
}

impl SegmentHeader {
    pub(super) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.epoch.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_seqno.to_le_bytes());
        out[32..40].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32fast::hash(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Checks magic, CRC and header length; the version is the caller's to judge (a header
    /// of another version is a refusal, not corruption).
    pub(super) fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderFault> {
        let bytes = bytes.get(..SEGMENT_HEADER_LEN).ok_or(HeaderFault::Short)?;
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderFault::Magic);
        }
        if crc32fast::hash(&bytes[..60]) != u32_at(bytes, 60) {
            return Err(HeaderFault::Crc);
        }
        if u32_at(bytes, 12) as usize != SEGMENT_HEADER_LEN {
            return Err(HeaderFault::Length);
        }
        Ok(SegmentHeader {
            format_version: u32_at(bytes, 8),
            epoch: u64_at(bytes, 16),
            first_seqno: u64_at(bytes, 24),
            created_ns: u64_at(bytes, 32),
        })
    }
}

/// A segment file's name: the id (its first chunk's `first_seqno`) in 20 digits, so that
/// `ls` lists segments in journal order.
pub(super) fn segment_file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// The id in a segment file name, `None` for any other file.
pub(super) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The CRC a record carries: over the encoded meta, then the payload.
pub(super) fn record_crc(meta: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(meta);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one whole record (header and payload) to `out`.
pub(super) fn encode_record(meta: &ChunkMeta, payload: &[u8], out: &mut Vec<u8>) {
    let meta = meta.encode();
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(&meta, payload).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(payload);
}

/// A record header as found on disk, before its payload is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub payload_len: u32,
    pub crc: u32,
    pub meta: [u8; ChunkMeta::ENCODED_LEN],
}

impl RecordHeader {
    /// `None` when the magic is wrong or the length is above [`MAX_PAYLOAD_LEN`]: nothing in
    /// it can be trusted, not even to skip the record.
    pub(super) fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Option<RecordHeader> {
        if bytes[0..4] != RECORD_MAGIC {
            return None;
        }
        let payload_len = u32_at(bytes, 4);
        if payload_len > MAX_PAYLOAD_LEN {
            return None;
        }
        let mut meta = [0u8; ChunkMeta::ENCODED_LEN];
        meta.copy_from_slice(&bytes[12..]);
        Some(RecordHeader {
            payload_len,
            crc: u32_at(bytes, 8),
            meta,
        })
    }

    /// Header plus payload.
    pub(super) fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Why an `identity` file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IdentityFault {
    /// Not an identity file, or cut short, or its checksum fails.
    Damaged(&'static str),
    /// An identity file of another format version (its layout may differ past the version).
    Version(u32),
}

/// The `identity` file: magic, version, path length, epoch, chain id, path, CRC.
pub(super) fn encode_identity(identity: &JournalIdentity) -> Vec<u8> {
    let path = identity.ring_path.as_bytes();
    let mut out = Vec::with_capacity(36 + path.len());
    out.extend_from_slice(&IDENTITY_MAGIC);
    out.extend_from_slice(&identity.format_version.to_le_bytes());
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(&identity.epoch.to_le_bytes());
    out.extend_from_slice(&identity.chain_id.to_le_bytes());
    out.extend_from_slice(path);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes [`encode_identity`]'s output. The version is read right after the magic and
/// judged before the checksum, so an identity file of another version is reported as such
/// rather than as damage.
pub(super) fn decode_identity(
    bytes: &[u8],
    supported_version: u32,
) -> Result<JournalIdentity, IdentityFault> {
    if bytes.len() < 36 {
        return Err(IdentityFault::Damaged("too short"));
    }
    if bytes[0..8] != IDENTITY_MAGIC {
        return Err(IdentityFault::Damaged("not an identity file (no magic)"));
    }
    let format_version = u32_at(bytes, 8);
    if format_version != supported_version {
        return Err(IdentityFault::Version(format_version));
    }
    let path_len = u32_at(bytes, 12) as usize;
    if path_len > MAX_RING_PATH_LEN || bytes.len() != 36 + path_len {
        return Err(IdentityFault::Damaged(
            "length does not match its ring path length",
        ));
    }
    let body = &bytes[..32 + path_len];
    if crc32fast::hash(body) != u32_at(bytes, 32 + path_len) {
        return Err(IdentityFault::Damaged("checksum mismatch"));
    }
    let ring_path = std::str::from_utf8(&body[32..])
        .map_err(|_| IdentityFault::Damaged("ring path is not UTF-8"))?
        .to_owned();
    Ok(JournalIdentity {
        format_version,
        epoch: u64_at(bytes, 16),
        ring_path,
        chain_id: u64_at(bytes, 24),
    })
}

/// The `clean` marker: written at a clean shutdown with the last journaled seqno.
pub(super) fn encode_clean(last_seqno: Option<u64>) -> [u8; CLEAN_LEN] {
    let mut out = [0u8; CLEAN_LEN];
    out[0..8].copy_from_slice(&CLEAN_MAGIC);
    out[8..16].copy_from_slice(&last_seqno.unwrap_or(NO_SEQNO).to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes [`encode_clean`]'s output: `Some(last_seqno)`, or `None` when it is not a valid
/// marker (which reads as "not a clean shutdown").
pub(super) fn decode_clean(bytes: &[u8]) -> Option<Option<u64>> {
    if bytes.len() != CLEAN_LEN
        || bytes[0..8] != CLEAN_MAGIC
        || crc32fast::hash(&bytes[..16]) != u32_at(bytes, 16)
    {
        return None;
    }
    let seqno = u64_at(bytes, 8);
    Some((seqno != NO_SEQNO).then_some(seqno))
}
