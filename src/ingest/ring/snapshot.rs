//! Snapshot loading: a zstd-compressed copy of a whole ring file → a read-only in-memory ring.
//!
//! Runs at attach time (tests, benches, replay). Input: an open `.zst` file (already detected by
//! its magic `28 B5 2F FD`). Output: an anonymous read-only mapping holding the decompressed
//! image, zero-padded to the size the header implies, plus the validated sizes.
//!
//! The header is decompressed and validated *before* anything is allocated, so a corrupt or
//! hostile stream can never make us allocate more than a valid header implies, and the stream
//! is read at most one byte past that size. Chunks that are all zero are not copied: anonymous
//! memory is already zero, so the mostly empty descriptor and payload sections stay unallocated.
//! Never: keep the decompressed image on disk, accept a shortfall above 15 bytes.

use super::layout::{RingSizes, HEADER_STRUCT_SIZE};
use super::validate::{
    addressable_len, check_magic, read_full, validate_header, AttachError, SNAPSHOT_MAX_SHORT_TAIL,
};
use memmap2::{MmapMut, MmapRaw};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The zstd frame magic, little-endian `0xFD2FB528`.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

const CHUNK: usize = 64 * 1024;

/// Decompresses a snapshot into anonymous memory, validating its header first.
pub(crate) fn decompress(path: &Path, file: File) -> Result<(MmapRaw, RingSizes), AttachError> {
    let corrupt = |source: io::Error| AttachError::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut dec = zstd::stream::read::Decoder::new(file).map_err(corrupt)?;
    let mut head = [0u8; HEADER_STRUCT_SIZE];
    let n = read_full(|b, _| dec.read(b), &mut head).map_err(corrupt)?;
    if n < HEADER_STRUCT_SIZE {
        check_magic(path, &head[..n])?;
        return Err(AttachError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER_STRUCT_SIZE as u64,
            found: n as u64,
        });
    }
    let sizes = validate_header(path, &head)?;
    let implied = sizes.file_size();
    let len = addressable_len(path, implied)?;
    let mut mem = MmapMut::map_anon(len).map_err(|e| AttachError::Io {
        path: path.to_path_buf(),
        op: "allocate memory for the decompressed snapshot",
        source: e,
    })?;
    mem[..HEADER_STRUCT_SIZE].copy_from_slice(&head);
    let mut at = HEADER_STRUCT_SIZE;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let want = (len - at).min(CHUNK);
        if want == 0 {
            // Full size reached: the stream must end here.
            let mut probe = [0u8; 1];
            if read_full(|b, _| dec.read(b), &mut probe).map_err(corrupt)? != 0 {
                return Err(AttachError::SnapshotTooLong {
                    path: path.to_path_buf(),
                    expected: implied,
                });
            }
            break;
        }
        let got = read_full(|b, _| dec.read(b), &mut chunk[..want]).map_err(corrupt)?;
        if chunk[..got].iter().any(|&b| b != 0) {
            mem[at..at + got].copy_from_slice(&chunk[..got]);
        }
        at += got;
        if got < want {
            break;
        }
    }
    let found = at as u64;
    if found + SNAPSHOT_MAX_SHORT_TAIL < implied {
        return Err(AttachError::Truncated {
            path: path.to_path_buf(),
            expected: implied,
            found,
        });
    }
    let ro = mem.make_read_only().map_err(|e| AttachError::Io {
        path: path.to_path_buf(),
        op: "mprotect the decompressed snapshot read-only",
        source: e,
    })?;
    Ok((MmapRaw::from(ro), sizes))
}
