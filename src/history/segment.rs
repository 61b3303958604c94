//! The on-disk journal (`--history-dir DIR`): append-only segment files of checksummed,
//! compressed chunks, recovered at start, trimmed by bytes and age.
//!
//! Runs on the history thread (never the tailer, never a shard executor): every call does
//! blocking file I/O. Runtime-free (std files only), so it is unit-tested directly.
//! The byte layout and the recovery rules are specified in `docs/history-format.md`; the
//! choices behind them (flock, `pwrite(2)` rather than mmap, no fsync) in
//! `docs/decisions/history-journal.md`.
//!
//! Input: sealed chunks ([`ChunkMeta`] + compressed bytes) in strictly increasing seqno order.
//! Output: a [`ChunkLocation`] per chunk, chunks read back verified, and at [`Journal::open`]
//! the index of every good chunk already on disk ([`Recovered`]).
//!
//! Parts: `format` (byte layouts, pure), `recovery` (opening and scanning segments at open),
//! `files` (the directory's lock, identity and clean marker), `error` ([`JournalError`]); this
//! file holds the journal's state and its operations.
//!
//! Invariants:
//! - one process per directory (an exclusive `flock` on `DIR/lock` for the journal's life);
//! - a directory of another ring, chain or format version is refused, never mixed, and left
//!   as it was; every segment and chunk carries the journal's epoch;
//! - chunks are appended with strictly increasing, non-overlapping seqno ranges; segment ids
//!   (= file names) are their first chunk's `first_seqno`, so file order is seqno order;
//! - nothing unverified is returned: every record is CRC-checked at `open` and at `read`;
//! - a torn tail of the last segment is truncated at `open`, never served; damage elsewhere is
//!   counted and skipped, never deleted (retention removes it with its segment);
//! - never panics on anything read from disk; every I/O failure is a [`JournalError`] and
//!   leaves the journal usable (a failed append writes nothing that a later append or a
//!   restart would take for a chunk).
//!
//! Never: fsync on the append path (the page cache outlives a killed process; a power loss
//! may cost the last seconds, which the scan at `open` then truncates), delete a segment that
//! is not a whole prefix of the journal, or delete the newest segment.

mod error;
mod files;
mod format;
mod recovery;

pub use self::error::JournalError;

use self::error::io_err;
use self::files::{
    list_segments, lock_dir, read_identity, take_clean_marker, write_atomically, CLEAN_FILE,
    IDENTITY_FILE,
};
use self::format::{
    encode_clean, encode_identity, encode_record, segment_file_name, RecordHeader, SegmentHeader,
    MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use self::recovery::open_segment;
use crate::history::meta::{ChunkMeta, JournalIdentity};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sizes and ages of the journal. No `Default`: the defaults live in `config::defaults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// A segment is closed and a new one started when the next record would take it past
    /// this size (a single larger chunk gets a segment of its own). Retention deletes whole
    /// segments, so this is also the granularity of retention: smaller = finer trimming but
    /// more files. Suggested: 64 MiB.
    pub max_segment_bytes: u64,
    /// Retention: oldest segments are deleted while the journal is larger than this.
    pub max_total_bytes: u64,
    /// Retention: oldest segments are deleted once their newest chunk is older than this.
    pub max_age: Option<Duration>,
}

/// Where a chunk lies on disk. Opaque to callers: what [`Journal::append`] returned, given
/// back to [`Journal::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    /// The segment's id (its first chunk's `first_seqno`).
    segment: u64,
    /// Offset of the record header in the segment file.
    offset: u64,
    /// Length of the compressed payload.
    len: u32,
}

impl ChunkLocation {
    /// Length of the chunk's compressed payload on disk (its record adds a fixed header).
    pub fn compressed_len(&self) -> u32 {
        self.len
    }
}

/// What [`Journal::open`] found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Every good chunk, in seqno order (the history's index).
    pub chunks: Vec<(ChunkMeta, ChunkLocation)>,
    /// Bytes cut off the end of the last segment: a record torn by a crash (or anything
    /// unreadable after the last good record). Never served.
    pub torn_tail_bytes: u64,
    /// Records (or unreadable stretches, or whole segments with a damaged header) skipped
    /// because they failed their checks, and the bytes they took. Their seqnos are a hole in
    /// the index: a replaying client gets a `Gap` for them.
    pub corrupt_records: u64,
    pub corrupt_bytes: u64,
    /// Segments whose header was unreadable, renamed to `<name>.corrupt` (kept for a human).
    pub moved_aside: Vec<PathBuf>,
    /// The identity the directory already had; `None` when it was new (or empty), in which
    /// case the expected identity was written.
    pub identity: Option<JournalIdentity>,
    /// Whether the previous run ended with [`Journal::close`] and nothing was lost since.
    pub clean_shutdown: bool,
}

/// One segment of the journal, as the journal tracks it.
#[derive(Debug)]
struct Segment {
    /// First chunk's `first_seqno`; the file name.
    id: u64,
    /// File length: header plus good records (plus any damage kept in a middle segment).
    len: u64,
    /// `last_time_ns` of its newest chunk, else the segment's creation time (for age).
    newest_ns: u64,
    /// Whether it holds at least one chunk.
    has_chunks: bool,
}

/// The journal of one history directory. See the module header for its invariants.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    config: SegmentConfig,
    identity: JournalIdentity,
    /// Holds the directory's `flock` for the journal's life.
    _lock: File,
    /// Every segment in the journal, oldest first.
    segments: VecDeque<Segment>,
    /// The newest segment opened for writing; `None` until the next append creates one
    /// (new directory, or the newest segment was lost).
    active: Option<File>,
    /// `last_seqno` of the newest chunk journaled (found or appended).
    last_seqno: Option<u64>,
    total_bytes: u64,
    /// One record being assembled, reused across appends.
    record: Vec<u8>,
}

impl Journal {
    /// Opens (creating if absent) `dir` and recovers what it holds.
    ///
    /// Takes an exclusive `flock` on `DIR/lock` (refused with [`JournalError::Locked`] while
    /// another process holds it). Reads `DIR/identity`: a directory of another ring path,
    /// chain id (0 on either side = unknown, compatible) or format version is refused; the
    /// expected epoch is not compared, the caller adopts the directory's
    /// ([`Recovered::identity`]). A new directory gets `expected` as its identity. Then scans
    /// every segment in order, verifying each record (see `docs/history-format.md` for the
    /// rules): a torn tail of the last segment is truncated, damage elsewhere is counted and
    /// skipped, a segment with an unreadable header is renamed aside.
    pub fn open(
        dir: &Path,
        expected: &JournalIdentity,
        config: SegmentConfig,
    ) -> Result<(Journal, Recovered), JournalError> {
        fs::create_dir_all(dir).map_err(io_err("create history dir", dir))?;
        let lock = lock_dir(dir)?;
        let ids = list_segments(dir)?;
        let found = read_identity(dir, expected)?;
        let identity = match &found {
            Some(found) => found.clone(),
            None if !ids.is_empty() => {
                return Err(JournalError::MissingIdentity {
                    dir: dir.to_path_buf(),
                })
            }
            None => {
                write_atomically(dir, IDENTITY_FILE, &encode_identity(expected))?;
                expected.clone()
            }
        };
        // Check every segment header before changing anything: a refused directory is left
        // as it was (but for its lock file).
        let mut opened = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            opened.push(open_segment(dir, id, i + 1 == ids.len(), &identity)?);
        }
        let clean_marker = take_clean_marker(dir)?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            config,
            identity,
            _lock: lock,
            segments: VecDeque::with_capacity(ids.len()),
            active: None,
            last_seqno: None,
            total_bytes: 0,
            record: Vec::new(),
        };
        let mut recovered = Recovered {
            chunks: Vec::new(),
            torn_tail_bytes: 0,
            corrupt_records: 0,
            corrupt_bytes: 0,
            moved_aside: Vec::new(),
            identity: found,
            clean_shutdown: false,
        };
        for segment in opened {
            journal.recover_segment(segment, &mut recovered)?;
        }
        recovered.clean_shutdown = clean_marker == Some(journal.last_seqno)
            && recovered.torn_tail_bytes == 0
            && recovered.corrupt_records == 0;
        Ok((journal, recovered))
    }

    /// Appends one chunk record to the newest segment with one `pwrite(2)` (no fsync),
    /// rolling to a new segment when this record would take the current one past
    /// `max_segment_bytes`.
    ///
    /// The chunk must carry the journal's epoch and start after every chunk already
    /// journaled ([`Journal::min_next_seqno`]). Any failure (disk full, read-only, directory
    /// deleted) is returned and leaves nothing that would be taken for a chunk: the caller
    /// keeps the chunk in memory only.
    pub fn append(
        &mut self,
        meta: &ChunkMeta,
        compressed: &[u8],
    ) -> Result<ChunkLocation, JournalError> {
        self.check_chunk(meta, compressed)?;
        let record_len = (RECORD_HEADER_LEN + compressed.len()) as u64;
        let roll = match self.segments.back() {
            Some(newest) => {
                self.active.is_none()
                    || (newest.has_chunks
                        && newest.len + record_len > self.config.max_segment_bytes)
            }
            None => true,
        };
        if roll {
            self.start_segment(meta)?;
        }
        let (Some(file), Some(segment)) = (self.active.as_ref(), self.segments.back_mut()) else {
            // Not reached: a roll that did not fail left an active newest segment.
            return Err(io_err("append to", &self.dir)(io::Error::other(
                "no active segment",
            )));
        };
        let path = self.dir.join(segment_file_name(segment.id));
        if file
            .metadata()
            .map_err(io_err("stat segment", &path))?
            .nlink()
            == 0
        {
            self.active = None;
            return Err(JournalError::Deleted { path });
        }
        self.record.clear();
        encode_record(meta, compressed, &mut self.record);
        if let Err(e) = file.write_all_at(&self.record, segment.len) {
            // A partial write past `len` is overwritten by the next append, or cut off at the
            // next open as a torn tail; trim it now when the disk lets us.
            let _ = file.set_len(segment.len);
            return Err(io_err("append to segment", &path)(e));
        }
        let loc = ChunkLocation {
            segment: segment.id,
            offset: segment.len,
            len: compressed.len() as u32,
        };
        segment.len += record_len;
        segment.newest_ns = meta.last_time_ns;
        segment.has_chunks = true;
        self.total_bytes += record_len;
        self.last_seqno = Some(meta.last_seqno);
        Ok(loc)
    }

    fn check_chunk(&self, meta: &ChunkMeta, compressed: &[u8]) -> Result<(), JournalError> {
        if meta.first_seqno > meta.last_seqno || meta.frames == 0 {
            return Err(JournalError::BadMeta {
                first: meta.first_seqno,
                last: meta.last_seqno,
                frames: meta.frames,
            });
        }
        if meta.epoch != self.identity.epoch {
            return Err(JournalError::WrongEpoch {
                found: meta.epoch,
                expected: self.identity.epoch,
            });
        }
        let min_next = self.min_next_seqno();
        if meta.first_seqno < min_next {
            return Err(JournalError::OutOfOrder {
                first: meta.first_seqno,
                last: meta.last_seqno,
                min_next,
            });
        }
        if compressed.len() > MAX_PAYLOAD_LEN as usize {
            return Err(JournalError::TooLarge {
                len: compressed.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(())
    }

    /// Creates the segment that `meta` will be the first chunk of and makes it the active one.
    fn start_segment(&mut self, meta: &ChunkMeta) -> Result<(), JournalError> {
        let id = meta.first_seqno;
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        let header = SegmentHeader {
            format_version: self.identity.format_version,
            epoch: self.identity.epoch,
            first_seqno: id,
            created_ns: now_ns(),
        };
        if let Err(e) = file.write_all_at(&header.encode(), 0) {
            let _ = fs::remove_file(&path);
            return Err(io_err("write segment header", &path)(e));
        }
        self.segments.push_back(Segment {
            id,
            len: SEGMENT_HEADER_LEN as u64,
            newest_ns: header.created_ns,
            has_chunks: false,
        });
        self.total_bytes += SEGMENT_HEADER_LEN as u64;
        self.active = Some(file);
        Ok(())
    }

    /// Reads a chunk back with `pread(2)`, verifying its record (magic, length, CRC) and that
    /// its meta is `meta`. An `Err` means the chunk is lost (damaged, or its segment deleted):
    /// the caller counts it and announces a `Gap` for its seqnos.
    pub fn read(&self, loc: ChunkLocation, meta: &ChunkMeta) -> Result<Vec<u8>, JournalError> {
        let path = self.segment_path(loc.segment);
        let opened;
        let file = match (&self.active, self.segments.back()) {
            (Some(active), Some(newest)) if newest.id == loc.segment => active,
            _ => {
                opened = File::open(&path).map_err(io_err("open segment", &path))?;
                &opened
            }
        };
        let corrupt = |why| JournalError::Corrupt {
            path: path.clone(),
            offset: loc.offset,
            why,
        };
        let mut head = [0u8; RECORD_HEADER_LEN];
        read_exact_at(file, &mut head, loc.offset)
            .map_err(io_err("read segment", &path))?
            .ok_or_else(|| corrupt("cut short"))?;
        let record = RecordHeader::decode(&head).ok_or_else(|| corrupt("no record header"))?;
        if record.payload_len != loc.len {
            return Err(corrupt("record length changed"));
        }
        if record.meta != meta.encode() {
            return Err(corrupt("record holds another chunk"));
        }
        let mut payload = vec![0u8; loc.len as usize];
        read_exact_at(file, &mut payload, loc.offset + RECORD_HEADER_LEN as u64)
            .map_err(io_err("read segment", &path))?
            .ok_or_else(|| corrupt("cut short"))?;
        if format::record_crc(&record.meta, &payload) != record.crc {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(payload)
    }

    /// Deletes whole oldest segments, never the newest one, while the journal is larger than
    /// `max_total_bytes` or the oldest segment's newest chunk is older than `max_age` at
    /// `now_ns`. Returns the seqno through which history is now gone (every chunk at or
    /// below it), `None` when nothing was deleted.
    ///
    /// A segment that cannot be deleted stops the pass: `Err` if it was the first, else the
    /// deletions so far are reported and the next call returns the error.
    pub fn enforce_retention(&mut self, now_ns: u64) -> Result<Option<u64>, JournalError> {
        let mut deleted = false;
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let too_big = self.total_bytes > self.config.max_total_bytes;
            let too_old = self.config.max_age.is_some_and(|age| {
                let age_ns = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
                oldest.newest_ns.saturating_add(age_ns) < now_ns
            });
            if !too_big && !too_old {
                break;
            }
            let path = self.segment_path(oldest.id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) if deleted => break,
                Err(e) => return Err(io_err("delete old segment", &path)(e)),
            }
            self.total_bytes -= oldest.len;
            self.segments.pop_front();
            deleted = true;
        }
        // Every chunk of the kept segments starts at or after the oldest kept segment's id.
        Ok(deleted.then(|| self.segments[0].id.saturating_sub(1)))
    }

    /// Rewrites `DIR/identity` atomically (temporary file, fsync, rename), e.g. when the
    /// chain id becomes known. The format version and epoch cannot change: every segment is
    /// stamped with them.
    pub fn set_identity(&mut self, identity: &JournalIdentity) -> Result<(), JournalError> {
        let unchanged = |field: &'static str, from: String, to: String| {
            if from == to {
                Ok(())
            } else {
                Err(JournalError::IdentityChange { field, from, to })
            }
        };
        unchanged(
            "format version",
            self.identity.format_version.to_string(),
            identity.format_version.to_string(),
        )?;
        unchanged(
            "epoch",
            self.identity.epoch.to_string(),
            identity.epoch.to_string(),
        )?;
        write_atomically(&self.dir, IDENTITY_FILE, &encode_identity(identity))?;
        self.identity = identity.clone();
        Ok(())
    }

    /// Ends the journal after a clean shutdown: writes `DIR/clean` with the last journaled
    /// seqno, so the next [`Journal::open`] reports [`Recovered::clean_shutdown`], and
    /// releases the directory lock.
    pub fn close(self) -> Result<(), JournalError> {
        write_atomically(&self.dir, CLEAN_FILE, &encode_clean(self.last_seqno))
    }

    /// The smallest `first_seqno` the next chunk may have: past the newest chunk, and not
    /// before the newest segment's id.
    pub fn min_next_seqno(&self) -> u64 {
        let after_chunks = self.last_seqno.map_or(0, |s| s.saturating_add(1));
        let newest_segment = self.segments.back().map_or(0, |s| s.id);
        after_chunks.max(newest_segment)
    }

    /// Bytes of all segment files.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Number of segment files.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// The identity the journal runs under (the directory's).
    pub fn identity(&self) -> &JournalIdentity {
        &self.identity
    }

    /// `last_seqno` of the newest chunk journaled.
    pub fn last_seqno(&self) -> Option<u64> {
        self.last_seqno
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(segment_file_name(id))
    }
}

/// `pread` of exactly `buf.len()` bytes: `None` when the file ends first.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<Option<()>> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Wall-clock now, ns since the Unix epoch (0 if the clock is before it).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
