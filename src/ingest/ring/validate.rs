//! Validation of a ring image: the header checks every reader and writer applies, and the
//! typed [`AttachError`] that names the file and says what was expected and what was found.
//!
//! Runs at attach and at writer creation, never per event. Shared one way: `attach` and
//! `snapshot` (readers) and `writer` depend on this file; it depends on none of them. The
//! checks follow docs/ring-format.md: magic `RING01`, content type 2 (exec), schema hash,
//! descriptor capacity 2^16..=2^32, payload buffer 2^27..=2^40, context area a multiple of
//! 2 MiB. Never: trust a size before it is checked, panic on file contents.

use std::io;
use std::path::{Path, PathBuf};

use super::layout::{
    header_offset as h, RingSizes, CONTENT_TYPE_EXEC, EXEC_SCHEMA_HASH, HEADER_SIZE,
    HEADER_STRUCT_SIZE, MAGIC, MAX_DESCRIPTORS_SHIFT, MAX_PAYLOAD_BUF_SHIFT, MIN_DESCRIPTORS_SHIFT,
    MIN_PAYLOAD_BUF_SHIFT,
};
use crate::wire::json::push_hex_digits;

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
    /// This user may not read the file.
    #[error(
        "ring file {path}: permission denied (the gateway's user needs read access to the ring: \
         add it to the group that owns the node's event-rings directory)"
    )]
    PermissionDenied { path: PathBuf },
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
    /// A short label of the reason (logs, `/v1/status` `ring_error.kind`, tests): the same
    /// label for the same reason, whatever the path.
    pub fn kind(&self) -> &'static str {
        match self {
            AttachError::NotFound { .. } => "not_found",
            AttachError::PermissionDenied { .. } => "permission_denied",
            AttachError::Io { .. } => "io",
            AttachError::Truncated { .. } => "truncated",
            AttachError::SnapshotTooLong { .. } => "snapshot_too_long",
            AttachError::Snapshot { .. } => "snapshot_corrupt",
            AttachError::BadMagic { .. } => "not_a_ring",
            AttachError::ContentType { .. } => "wrong_content_type",
            AttachError::SchemaHash { .. } => "wrong_schema",
            AttachError::Size { .. } => "bad_size",
            AttachError::NoDefaultRing { .. } => "no_default_ring",
        }
    }

    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> AttachError {
        if source.kind() == io::ErrorKind::NotFound {
            AttachError::NotFound {
                path: path.to_path_buf(),
            }
        } else if source.kind() == io::ErrorKind::PermissionDenied {
            AttachError::PermissionDenied {
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

/// Reads until `buf` is full or the source ends; returns the bytes read. `read(dst, at)`
/// reads into `dst` what belongs at offset `at` of `buf` (a positioned `read_at` of a file,
/// or the next bytes of a stream, which ignores `at`), retrying on `EINTR`.
pub(crate) fn read_full(
    mut read: impl FnMut(&mut [u8], usize) -> io::Result<usize>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read(&mut buf[done..], done) {
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
    let mut digits = Vec::with_capacity(2 * bytes.len());
    push_hex_digits(&mut digits, bytes);
    String::from_utf8_lossy(&digits).into_owned()
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
