//! A real-format ring writer (docs/ring-format.md#s7): files any Monad SDK reader accepts.
//!
//! Runs on the thread of whoever produces events (the synthetic chain, snapshot replay, tests);
//! single writer per ring. Input: event type, flow tags, payload bytes, timestamp. Output:
//! committed descriptors and payloads in the shared file, with the header control words kept
//! exactly as the daemon keeps them.
//!
//! # File protocol (docs/ring-format.md#s1-4, #s7-1 to #s7-3)
//!
//! 1. Claim: open any existing file at the path and `flock(LOCK_EX|LOCK_NB)`. `EWOULDBLOCK`
//!    means another writer owns it ([`WriterError::Owned`]); success means a zombie from a
//!    crash, which is unlinked.
//! 2. Create `<name>.<pid>` with `O_RDWR|O_CREAT|O_EXCL`, mode 0664, and `flock(LOCK_EX)` it.
//! 3. Size it with `ftruncate` (a new file reads as zeros, so the descriptor array is already
//!    zero); on hugetlbfs also `posix_fallocate`, because a hugetlbfs page that cannot be
//!    allocated later is a SIGBUS instead of an error. (tmpfs is not pre-allocated: test rings
//!    would otherwise pin 130 MiB each.)
//! 4. Map read-write, write the header (magic, type 2, schema hash, sizes; control words 0).
//! 5. `renameat2(RENAME_NOREPLACE)` into place (link + unlink where the filesystem lacks it).
//! 6. Keep the locked fd open for the writer's life; `Drop` unlinks the file. Signals are not
//!    blocked during creation (the temp file is removed on every error path instead).
//!
//! # Per-event order (docs/ring-format.md#s2-2, #s7-4)
//!
//! seqno = ++last_seqno (relaxed) → off = next_payload_byte += round_up(len, 16) (relaxed) →
//! slot seqno = 0 (relaxed) → slide `buffer_window_start` if `end − start > size − 2^24` →
//! **fence(Release)** (orders both the seqno-0 store and the window move before any byte of the
//! new event) → payload_size, offset, timestamp → payload bytes (wrapping at the physical end,
//! padding zeroed to the 16-byte allocation) → event type and flow tags → **Release** store of
//! the seqno. Payloads of `payload_buf_size − 2^25` bytes or more are written as an 8192-byte
//! RECORD_ERROR (docs/ring-format.md#s3-4) instead, as are payloads over 4 GiB (`payload_size` is a u32).
//!
//! Never: reset an existing file in place (a restart makes a new file), publish a payload that
//! would expire on creation.

use super::layout::{
    descriptor_offset as d, header_offset as h, RingSizes, CONTENT_TYPE_EXEC, DESCRIPTOR_SIZE,
    EXEC_SCHEMA_HASH, HEADER_SIZE, MAGIC, PAYLOAD_ALIGN, WINDOW_INCR,
};
use super::liveness::exclusive_writer_pid;
use super::map::Region;
use super::sys;
use super::validate::{check_sizes, AttachError};
use crate::model::kind::EventType;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

/// Event code of RECORD_ERROR.
const RECORD_ERROR: u16 = EventType::RecordError as u16;
/// Size of an overflow RECORD_ERROR payload (docs/ring-format.md#s3-4); the decoder's
/// `payload::layout::RECORD_ERROR_TRUNCATED`, tied to it by a test there.
pub(crate) const RECORD_ERROR_OVERFLOW_SIZE: usize = 8192;
/// `monad_event_record_error` header size.
const RECORD_ERROR_HEADER: usize = 16;
/// `error_type` values.
const OVERFLOW_4GB: u16 = 1;
const OVERFLOW_EXPIRE: u16 = 2;

/// Why a ring could not be created.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// Another live process holds the ring's write lock.
    #[error("another writer ({owner}) owns {path}")]
    Owned { path: PathBuf, owner: String },
    /// The requested sizes are outside the format limits.
    #[error("cannot create ring: {0}")]
    Sizes(#[source] AttachError),
    /// A filesystem call failed.
    #[error("cannot create ring {path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> WriterError + 'a {
    move |source| WriterError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The directory for rings that need no hugetlbfs: `/dev/shm` when usable, else the temp dir.
pub fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && sys::access_rwx(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The single writer of one ring file.
#[derive(Debug)]
pub struct RingWriter {
    path: PathBuf,
    /// The locked fd; held open for the writer's life (readers check `/proc/locks`).
    _lock: File,
    region: Region,
    sizes: RingSizes,
    /// Inode of our file: `Drop` unlinks the path only while it still names this file.
    inode: u64,
    unlink_on_drop: bool,
}

impl RingWriter {
    /// Creates a new ring at `path` following the daemon's claim / temp / rename protocol.
    pub fn create(path: &Path, sizes: RingSizes) -> Result<RingWriter, WriterError> {
        check_sizes(path, &sizes).map_err(WriterError::Sizes)?;
        claim(path)?;
        let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
        temp_name.push(format!(".{}", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o664)
            .open(&temp)
            .map_err(io_err(path, "create temp file"))?;
        match init(path, &temp, file, sizes) {
            Ok(w) => Ok(w),
            Err(e) => {
                // Best effort: the error already says what failed.
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// The ring's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ring's section sizes.
    pub fn sizes(&self) -> RingSizes {
        self.sizes
    }

    /// The seqno the next `write_event` will get (set a BLOCK_START's block flow tag to it).
    pub fn next_seqno(&self) -> u64 {
        self.region.load(h::LAST_SEQNO, Ordering::Relaxed) + 1
    }

    /// Writes and commits one event; returns its seqno. Oversize payloads become RECORD_ERROR.
    pub fn write_event(
        &mut self,
        event_type: u16,
        content_ext: [u64; 4],
        payload: &[u8],
        timestamp_ns: u64,
    ) -> u64 {
        let (seq, slot) = self.write_body(event_type, content_ext, payload, timestamp_ns);
        self.region.store(slot, seq, Ordering::Release);
        seq
    }

    /// Test seam: writes an event completely but never commits it, as a writer that dies
    /// mid-event leaves it (the slot keeps seqno 0). Returns the seqno it allocated.
    pub fn write_event_uncommitted(
        &mut self,
        event_type: u16,
        content_ext: [u64; 4],
        payload: &[u8],
    ) -> u64 {
        self.write_body(event_type, content_ext, payload, 0).0
    }

    /// Test seam: a crash. Closes the locked fd and unmaps without unlinking the file.
    pub fn abandon(mut self) {
        self.unlink_on_drop = false;
    }

    /// Steps 1–7 of docs/ring-format.md#s7-4; returns (seqno, slot offset). The caller commits.
    fn write_body(
        &mut self,
        event_type: u16,
        content_ext: [u64; 4],
        payload: &[u8],
        timestamp_ns: u64,
    ) -> (u64, usize) {
        let size = self.sizes.payload_buf_size;
        let len = payload.len() as u64;
        let alloc = len.div_ceil(PAYLOAD_ALIGN) * PAYLOAD_ALIGN;
        if alloc >= size - 2 * WINDOW_INCR || len > u64::from(u32::MAX) {
            let err = record_error(event_type, payload);
            return self.write_body(RECORD_ERROR, content_ext, &err, timestamp_ns);
        }
        let r = &self.region;
        let seq = r.fetch_add(h::LAST_SEQNO, 1, Ordering::Relaxed) + 1;
        let off = r.fetch_add(h::NEXT_PAYLOAD_BYTE, alloc, Ordering::Relaxed);
        let slot = HEADER_SIZE as usize
            + (((seq - 1) & (self.sizes.descriptor_capacity - 1)) * DESCRIPTOR_SIZE) as usize;
        r.store(slot, 0, Ordering::Relaxed);
        let end = off + alloc;
        let width = size - WINDOW_INCR;
        let start = r.load(h::BUFFER_WINDOW_START, Ordering::Relaxed);
        if end.saturating_sub(start) > width {
            let new_start = end.div_ceil(WINDOW_INCR) * WINDOW_INCR - width;
            r.store(h::BUFFER_WINDOW_START, new_start, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        r.store(slot + d::EVENT_TYPE, len << 32, Ordering::Relaxed);
        r.store(
            slot + d::RECORD_EPOCH_NANOS,
            timestamp_ns,
            Ordering::Relaxed,
        );
        r.store(slot + d::PAYLOAD_BUF_OFFSET, off, Ordering::Relaxed);
        // Two pieces when the allocation wraps the physical end (both boundaries 16-aligned).
        let base = self.sizes.payload_offset() as usize;
        let phys = (off & (size - 1)) as usize;
        let alloc = alloc as usize;
        let first_alloc = alloc.min(size as usize - phys);
        let first_src = payload.len().min(first_alloc);
        r.copy_in(base + phys, &payload[..first_src], first_alloc);
        if alloc > first_alloc {
            r.copy_in(base, &payload[first_src..], alloc - first_alloc);
        }
        r.store(
            slot + d::EVENT_TYPE,
            u64::from(event_type) | (len << 32),
            Ordering::Relaxed,
        );
        for (i, v) in content_ext.iter().enumerate() {
            r.store(slot + d::CONTENT_EXT + 8 * i, *v, Ordering::Relaxed);
        }
        (seq, slot)
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        let still_ours = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if self.unlink_on_drop && still_ours {
            // Nothing useful to do on failure in a destructor; a leftover file is reclaimed as
            // a zombie by the next writer.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The 8192-byte overflow RECORD_ERROR payload for a dropped event (docs/ring-format.md#s3-4).
fn record_error(dropped_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; RECORD_ERROR_OVERFLOW_SIZE];
    let len = payload.len() as u64;
    let kind = if len > u64::from(u32::MAX) {
        OVERFLOW_4GB
    } else {
        OVERFLOW_EXPIRE
    };
    let truncated = RECORD_ERROR_OVERFLOW_SIZE - RECORD_ERROR_HEADER;
    b[0..2].copy_from_slice(&kind.to_le_bytes());
    b[2..4].copy_from_slice(&dropped_type.to_le_bytes());
    b[4..8].copy_from_slice(&(truncated as u32).to_le_bytes());
    b[8..16].copy_from_slice(&len.to_le_bytes());
    let n = truncated.min(payload.len());
    b[RECORD_ERROR_HEADER..RECORD_ERROR_HEADER + n].copy_from_slice(&payload[..n]);
    b
}

/// Step 1: refuse a live owner, unlink a zombie.
fn claim(path: &Path) -> Result<(), WriterError> {
    let existing = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, "open existing ring")(e)),
    };
    match sys::try_lock_exclusive(&existing) {
        Ok(()) => {
            drop(existing);
            std::fs::remove_file(path).map_err(io_err(path, "unlink zombie ring"))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let pid = existing
                .metadata()
                .ok()
                .and_then(|m| exclusive_writer_pid(m.ino()));
            let owner = pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
            Err(WriterError::Owned {
                path: path.to_path_buf(),
                owner,
            })
        }
        Err(e) => Err(io_err(path, "flock existing ring")(e)),
    }
}

/// Steps 2–5 on the freshly created temp file.
fn init(path: &Path, temp: &Path, file: File, sizes: RingSizes) -> Result<RingWriter, WriterError> {
    sys::try_lock_exclusive(&file).map_err(io_err(path, "flock temp file"))?;
    let inode = file
        .metadata()
        .map_err(io_err(path, "stat temp file"))?
        .ino();
    let total = sizes.file_size();
    file.set_len(total).map_err(io_err(path, "ftruncate"))?;
    let dir = temp
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if sys::statfs(dir).is_ok_and(|fs| fs.fs_type == sys::HUGETLBFS_MAGIC) {
        sys::fallocate(&file, total).map_err(io_err(path, "posix_fallocate"))?;
    }
    let len = usize::try_from(total).map_err(|_| {
        io_err(path, "size the mapping")(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ring larger than the address space",
        ))
    })?;
    let raw = memmap2::MmapOptions::new()
        .len(len)
        .map_raw(&file)
        .map_err(io_err(path, "mmap"))?;
    let region = Region::writable(raw);
    let mut head = [0u8; 64];
    head[h::MAGIC..h::MAGIC + 6].copy_from_slice(&MAGIC);
    head[h::CONTENT_TYPE..h::CONTENT_TYPE + 2].copy_from_slice(&CONTENT_TYPE_EXEC.to_le_bytes());
    head[h::SCHEMA_HASH..h::SCHEMA_HASH + 32].copy_from_slice(&EXEC_SCHEMA_HASH);
    head[h::DESCRIPTOR_CAPACITY..h::DESCRIPTOR_CAPACITY + 8]
        .copy_from_slice(&sizes.descriptor_capacity.to_le_bytes());
    head[h::PAYLOAD_BUF_SIZE..h::PAYLOAD_BUF_SIZE + 8]
        .copy_from_slice(&sizes.payload_buf_size.to_le_bytes());
    head[h::CONTEXT_AREA_SIZE..h::CONTEXT_AREA_SIZE + 8]
        .copy_from_slice(&sizes.context_area_size.to_le_bytes());
    for (i, w) in head.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        region.store(8 * i, u64::from_le_bytes(word), Ordering::Relaxed);
    }
    fence(Ordering::Release);
    match sys::rename_noreplace(temp, path) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
            std::fs::hard_link(temp, path).map_err(io_err(path, "link into place"))?;
            std::fs::remove_file(temp).map_err(io_err(path, "unlink temp file"))?;
        }
        Err(e) => return Err(io_err(path, "rename into place")(e)),
    }
    Ok(RingWriter {
        path: path.to_path_buf(),
        _lock: file,
        region,
        sizes,
        inode,
        unlink_on_drop: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_error_payload_has_the_overflow_layout() {
        let big = vec![7u8; 10_000];
        let b = record_error(18, &big);
        assert_eq!(b.len(), 8192);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), OVERFLOW_EXPIRE);
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 18);
        assert_eq!(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), 8176);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 10_000);
        assert!(b[16..].iter().all(|&x| x == 7));
    }
}
