//! Attach: open a ring file (live or zstd snapshot), validate its header once, map it.
//!
//! Runs at startup and on re-attach, on the tailer core (never per event). Input: a path.
//! Output: a [`Ring`] (read-only mapping of the whole file plus its validated sizes) or an
//! [`AttachError`] that names the file and says what was expected and what was found.
//!
//! Validation (docs/ring-format.md#s1-3, #s6): magic `RING01`, content type 2 (exec),
//! schema hash = [`EXEC_SCHEMA_HASH`](super::layout::EXEC_SCHEMA_HASH), descriptor capacity a power of two with shift 16..=32,
//! payload buffer a power of two with shift 27..=40, context area a multiple of 2 MiB, and a
//! file at least as long as the size the header implies. Snapshots may be up to 15 bytes short
//! (the snapshot tool pads the payload section by the rounded end), and are zero-padded.
//!
//! Live rings are mapped whole (all sections are 2 MiB multiples, so hugetlbfs accepts the
//! mapping), read-only, `MAP_SHARED`, populated. Snapshots are decompressed into anonymous
//! memory (not a memfd: nothing else needs an fd to it) in 64 KiB chunks; all-zero chunks are
//! skipped so the mostly-empty payload buffer costs no resident memory. Never: write to a live
//! ring, trust a size before validating it, panic on file contents.

use super::layout::{header_offset as h, RingSizes, HEADER_SIZE, HEADER_STRUCT_SIZE};
use super::map::Region;
use super::snapshot;
use super::validate::{addressable_len, check_magic, read_full, validate_header};
pub use super::validate::{AttachError, SNAPSHOT_MAX_SHORT_TAIL};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// The header as loaded at one moment: the fixed fields plus a snapshot of the control words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingHeader {
    /// `content_type` (2 = exec).
    pub content_type: u16,
    /// `schema_hash`.
    pub schema_hash: [u8; 32],
    /// Section sizes.
    pub sizes: RingSizes,
    /// Last seqno allocated by the writer (maybe not committed yet).
    pub last_seqno: u64,
    /// Next virtual payload byte the writer will allocate.
    pub next_payload_byte: u64,
    /// Smallest virtual payload offset still valid.
    pub buffer_window_start: u64,
    /// Inode of the mapped file (for a snapshot: of the `.zst` file), for replacement detection.
    pub inode: u64,
}

/// An attached ring: a read-only mapping of the whole file with validated sizes.
///
/// `Send + Sync` (memmap2's `MmapRaw`); share it as `Arc<Ring>` between readers.
#[derive(Debug)]
pub struct Ring {
    path: PathBuf,
    region: Region,
    sizes: RingSizes,
    snapshot: bool,
    inode: u64,
}

impl Ring {
    /// Opens and validates a live ring file or a zstd snapshot (detected by its magic).
    pub fn open(path: &Path) -> Result<Ring, AttachError> {
        let file = File::open(path).map_err(|e| AttachError::io(path, "open", e))?;
        let meta = file
            .metadata()
            .map_err(|e| AttachError::io(path, "stat", e))?;
        let mut magic = [0u8; 4];
        let n = file
            .read_at(&mut magic, 0)
            .map_err(|e| AttachError::io(path, "read", e))?;
        if n == 4 && magic == snapshot::ZSTD_MAGIC {
            let (raw, sizes) = snapshot::decompress(path, file)?;
            return Ok(Ring {
                path: path.to_path_buf(),
                region: Region::read_only(raw),
                sizes,
                snapshot: true,
                inode: meta.ino(),
            });
        }
        let mut head = [0u8; HEADER_STRUCT_SIZE];
        let n = read_full(|b, at| file.read_at(b, at as u64), &mut head)
            .map_err(|e| AttachError::io(path, "read", e))?;
        if n < HEADER_STRUCT_SIZE {
            // Report the magic first if even that is wrong: "not a ring" beats "truncated".
            check_magic(path, &head)?;
            return Err(AttachError::Truncated {
                path: path.to_path_buf(),
                expected: HEADER_SIZE,
                found: meta.len(),
            });
        }
        let sizes = validate_header(path, &head)?;
        let implied = sizes.file_size();
        if meta.len() < implied {
            return Err(AttachError::Truncated {
                path: path.to_path_buf(),
                expected: implied,
                found: meta.len(),
            });
        }
        let len = addressable_len(path, implied)?;
        let raw = memmap2::MmapOptions::new()
            .len(len)
            .populate()
            .map_raw_read_only(&file)
            .map_err(|e| AttachError::io(path, "mmap", e))?;
        Ok(Ring {
            path: path.to_path_buf(),
            region: Region::read_only(raw),
            sizes,
            snapshot: false,
            inode: meta.ino(),
        })
    }

    /// The path this ring was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated section sizes.
    pub fn sizes(&self) -> RingSizes {
        self.sizes
    }

    /// True for a decompressed snapshot (static: never grows, never Gone or Replaced).
    pub fn is_snapshot(&self) -> bool {
        self.snapshot
    }

    /// Inode of the opened file.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Loads the header now (control words with Acquire).
    pub fn header(&self) -> RingHeader {
        let mut fixed = [0u8; 40];
        self.region.copy_out(0, &mut fixed);
        let mut schema_hash = [0u8; 32];
        schema_hash.copy_from_slice(&fixed[h::SCHEMA_HASH..h::SCHEMA_HASH + 32]);
        RingHeader {
            content_type: u16::from_le_bytes([fixed[h::CONTENT_TYPE], fixed[h::CONTENT_TYPE + 1]]),
            schema_hash,
            sizes: self.sizes,
            last_seqno: self.last_seqno(),
            next_payload_byte: self.region.load(h::NEXT_PAYLOAD_BYTE, Ordering::Acquire),
            buffer_window_start: self.buffer_window_start(),
            inode: self.inode,
        }
    }

    /// `control.last_seqno` now (Acquire): the newest seqno allocated, maybe not yet committed.
    /// `last_seqno() - reader.next_seqno() + 1` is a reader's lag in events.
    pub fn last_seqno(&self) -> u64 {
        self.region.load(h::LAST_SEQNO, Ordering::Acquire)
    }

    /// `control.buffer_window_start` now (Acquire): payloads below this offset are expired.
    pub fn buffer_window_start(&self) -> u64 {
        self.region.load(h::BUFFER_WINDOW_START, Ordering::Acquire)
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_and_reader_can_move_to_the_tailer_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Ring>();
        send_sync::<crate::ingest::ring::RingReader>();
        send_sync::<crate::ingest::ring::RingWriter>();
    }
}
