//! Attach: open a ring file (live or zstd snapshot), validate its header once, map it.
//!
//! Runs at startup and on re-attach, on the tailer core (never per event). Input: a path.
//! Output: a [`Ring`] (read-only mapping of the whole file plus its validated sizes) or an
//! [`AttachError`] that names the file and says what was expected and what was found.
//!
//! Validation (spec/monad-event-ring.md §1.3, §6): magic `RING01`, content type 2 (exec),
//! schema hash = [`EXEC_SCHEMA_HASH`], descriptor capacity a power of two with shift 16..=32,
//! payload buffer a power of two with shift 27..=40, context area a multiple of 2 MiB, and a
//! file at least as long as the size the header implies. Snapshots may be up to 15 bytes short
//! (the snapshot tool pads the payload section by the rounded end), and are zero-padded.
//!
//! Live rings are mapped whole (all sections are 2 MiB multiples, so hugetlbfs accepts the
//! mapping), read-only, `MAP_SHARED`, populated. Snapshots are decompressed into anonymous
//! memory (not a memfd: nothing else needs an fd to it) in 64 KiB chunks; all-zero chunks are
//! skipped so the mostly-empty payload buffer costs no resident memory. Never: write to a live
//! ring, trust a size before validating it, panic on file contents.

use super::layout::{
    header_offset as h, RingSizes, CONTENT_TYPE_EXEC, EXEC_SCHEMA_HASH, HEADER_SIZE,
    HEADER_STRUCT_SIZE, MAGIC, MAX_DESCRIPTORS_SHIFT, MAX_PAYLOAD_BUF_SHIFT, MIN_DESCRIPTORS_SHIFT,
    MIN_PAYLOAD_BUF_SHIFT,
};
use super::map::Region;
use super::snapshot;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Largest shortfall accepted for a snapshot (the last payload is unrounded, alignment 16).
pub const SNAPSHOT_MAX_SHORT_TAIL: u64 = 15;

/// Why a ring file could not be attached. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The file does not exist.
    #[error(
        "ring file {path} does not exist (is the execution daemon running with --exec-event-ring?)"
    )]
    NotFound { path: PathBuf },
    /// An I/O call failed.
    #[error("ring file {path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The file is shorter than its header says.
    #[error("ring file {path} is truncated: expected at least {expected} bytes, found {found}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// A snapshot decompresses to more bytes than its header implies.
    #[error(
        "snapshot {path} is longer than its header implies: expected {expected} bytes, found more"
    )]
    SnapshotTooLong { path: PathBuf, expected: u64 },
    /// The zstd stream is corrupt.
    #[error("snapshot {path} is not a valid zstd stream: {source}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The first 6 bytes are not `RING01`.
    #[error("{path} is not an event ring: expected magic \"RING01\", found {found:02x?}")]
    BadMagic { path: PathBuf, found: [u8; 6] },
    /// The ring carries another content type (not execution events).
    #[error("ring file {path} has content type {found}, expected {expected} (execution events)")]
    ContentType {
        path: PathBuf,
        expected: u16,
        found: u16,
    },
    /// The ring was written with another event schema.
    #[error(
        "ring file {path} was written by a different Monad version (event schema): schema hash \
         {found}; this build reads {expected}"
    )]
    SchemaHash {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// A section size is outside the format's limits.
    #[error("ring file {path}: {field} is {found}, expected {expected}")]
    Size {
        path: PathBuf,
        field: &'static str,
        expected: &'static str,
        found: u64,
    },
    /// No default ring location could be found.
    #[error(
        "no default event ring: looked in /proc/mounts for a hugetlbfs mount with 2 MiB pages \
         that this user can read, write and search ({searched}); pass --ring PATH"
    )]
    NoDefaultRing { searched: String },
}

impl AttachError {
    fn io(path: &Path, op: &'static str, source: io::Error) -> AttachError {
        if source.kind() == io::ErrorKind::NotFound {
            AttachError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            AttachError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        }
    }
}

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
        let n = read_full_at(&file, &mut head).map_err(|e| AttachError::io(path, "read", e))?;
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

/// `read_at` until `buf` is full or EOF; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A ring's total size (from its header) as a mapping length, or the error naming the file
/// when it does not fit this machine's address space.
pub(crate) fn addressable_len(path: &Path, implied: u64) -> Result<usize, AttachError> {
    usize::try_from(implied).map_err(|_| AttachError::Size {
        path: path.to_path_buf(),
        field: "total file size",
        expected: "addressable on this machine",
        found: implied,
    })
}

pub(crate) fn check_magic(path: &Path, head: &[u8]) -> Result<(), AttachError> {
    let mut found = [0u8; 6];
    let n = head.len().min(6);
    found[..n].copy_from_slice(&head[..n]);
    if found != MAGIC {
        return Err(AttachError::BadMagic {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates the 192-byte header struct and returns the section sizes.
pub(crate) fn validate_header(
    path: &Path,
    head: &[u8; HEADER_STRUCT_SIZE],
) -> Result<RingSizes, AttachError> {
    check_magic(path, head)?;
    let content_type = u16::from_le_bytes([head[h::CONTENT_TYPE], head[h::CONTENT_TYPE + 1]]);
    if content_type != CONTENT_TYPE_EXEC {
        return Err(AttachError::ContentType {
            path: path.to_path_buf(),
            expected: CONTENT_TYPE_EXEC,
            found: content_type,
        });
    }
    let hash = &head[h::SCHEMA_HASH..h::SCHEMA_HASH + 32];
    if hash != EXEC_SCHEMA_HASH {
        return Err(AttachError::SchemaHash {
            path: path.to_path_buf(),
            expected: hex(&EXEC_SCHEMA_HASH),
            found: hex(hash),
        });
    }
    let u64_at = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&head[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let sizes = RingSizes {
        descriptor_capacity: u64_at(h::DESCRIPTOR_CAPACITY),
        payload_buf_size: u64_at(h::PAYLOAD_BUF_SIZE),
        context_area_size: u64_at(h::CONTEXT_AREA_SIZE),
    };
    check_sizes(path, &sizes)?;
    Ok(sizes)
}

/// Checks the three sizes against the format limits (also used by the writer).
pub(crate) fn check_sizes(path: &Path, s: &RingSizes) -> Result<(), AttachError> {
    let shift_ok =
        |v: u64, lo: u32, hi: u32| v.is_power_of_two() && (lo..=hi).contains(&v.trailing_zeros());
    let err = |field, expected, found| AttachError::Size {
        path: path.to_path_buf(),
        field,
        expected,
        found,
    };
    if !shift_ok(
        s.descriptor_capacity,
        MIN_DESCRIPTORS_SHIFT,
        MAX_DESCRIPTORS_SHIFT,
    ) {
        return Err(err(
            "descriptor_capacity",
            "a power of two from 2^16 to 2^32",
            s.descriptor_capacity,
        ));
    }
    if !shift_ok(
        s.payload_buf_size,
        MIN_PAYLOAD_BUF_SHIFT,
        MAX_PAYLOAD_BUF_SHIFT,
    ) {
        return Err(err(
            "payload_buf_size",
            "a power of two from 2^27 to 2^40",
            s.payload_buf_size,
        ));
    }
    // The context area is unused by exec rings; cap it like the payload buffer so the implied
    // size cannot overflow.
    if !s.context_area_size.is_multiple_of(HEADER_SIZE)
        || s.context_area_size > 1 << MAX_PAYLOAD_BUF_SHIFT
    {
        return Err(err(
            "context_area_size",
            "a multiple of 2 MiB, at most 2^40",
            s.context_area_size,
        ));
    }
    Ok(())
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

    #[test]
    fn sizes_outside_the_limits_are_refused() {
        let p = Path::new("x");
        let ok = RingSizes {
            descriptor_capacity: 1 << 16,
            payload_buf_size: 1 << 27,
            context_area_size: 0,
        };
        assert!(check_sizes(p, &ok).is_ok());
        for bad in [
            RingSizes {
                descriptor_capacity: 1 << 15,
                ..ok
            },
            RingSizes {
                descriptor_capacity: (1 << 16) + 1,
                ..ok
            },
            RingSizes {
                payload_buf_size: 1 << 41,
                ..ok
            },
            RingSizes {
                payload_buf_size: 3 << 27,
                ..ok
            },
            RingSizes {
                context_area_size: 4096,
                ..ok
            },
        ] {
            assert!(
                matches!(check_sizes(p, &bad), Err(AttachError::Size { .. })),
                "{bad:?}"
            );
        }
    }
}
