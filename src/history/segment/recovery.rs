//! Reading a segment back at `open` (opening it, recovering it into the journal: a torn
//! newest segment removed or truncated, a damaged header moved aside): its header, then every
//! record in order, each checked
//! (magic, sane length, CRC over meta and payload, meta consistent, epoch and seqno order)
//! before it enters the index.
//!
//! The scan reads sequentially and never seeks: a record whose length is sane but whose
//! content fails a check is read through and counted, so the scan resyncs at the next record;
//! a header with no magic or an insane length (or the end of the file inside a record) stops
//! it. Whether what follows the last good record is a torn tail (truncated) or damage (counted
//! and kept) is the caller's call: it depends on whether the segment is the last one.

use super::error::io_err;
use super::files::CORRUPT_SUFFIX;
use super::format::{
    record_crc, segment_file_name, HeaderFault, RecordHeader, SegmentHeader, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use super::{ChunkLocation, Journal, JournalError, Recovered, Segment};
use crate::history::meta::{ChunkMeta, JournalIdentity};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One chunk found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    pub meta: ChunkMeta,
    pub offset: u64,
    pub payload_len: u32,
}

/// What a segment's records hold.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The good records, in file order (and so in seqno order).
    pub chunks: Vec<Found>,
    /// End of the last good record (the header's end when there is none).
    pub valid_end: u64,
    /// Damaged records before `valid_end` (each followed by a good one) and their bytes.
    pub corrupt_records: u64,
    pub corrupt_bytes: u64,
    /// Whether anything at all lies past `valid_end`.
    pub trailing_bytes: u64,
    /// Readable-but-damaged records past `valid_end`, and whether the scan then stopped on
    /// bytes that are not a record (no magic, insane length, cut short).
    pub trailing_records: u64,
    pub trailing_garbage: bool,
}

/// Reads and checks the records of a segment whose header (`header`, already accepted) ends
/// at `start`. `after` is the last seqno of the segments before it: every chunk must come
/// after it and after the chunk before it in this segment.
pub(super) fn scan_records(
    file: &File,
    file_len: u64,
    start: u64,
    header: &SegmentHeader,
    mut after: Option<u64>,
) -> io::Result<Scan> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(start))?;
    let mut scan = Scan {
        valid_end: start,
        ..Scan::default()
    };
    let mut pos = start;
    let mut pending_records = 0u64;
    let mut payload = Vec::new();
    loop {
        if pos == file_len {
            break;
        }
        let mut head = [0u8; RECORD_HEADER_LEN];
        if pos + RECORD_HEADER_LEN as u64 > file_len || !read_fully(&mut reader, &mut head)? {
            scan.trailing_garbage = true;
            break;
        }
        let Some(record) = RecordHeader::decode(&head) else {
            scan.trailing_garbage = true;
            break;
        };
        let end = pos + record.record_len();
        if end > file_len {
            scan.trailing_garbage = true;
            break;
        }
        payload.resize(record.payload_len as usize, 0);
        if !read_fully(&mut reader, &mut payload)? {
            scan.trailing_garbage = true;
            break;
        }
        let meta = (record_crc(&record.meta, &payload) == record.crc)
            .then(|| ChunkMeta::decode(&record.meta))
            .flatten()
            .filter(|meta| {
                meta.epoch == header.epoch
                    && meta.first_seqno >= header.first_seqno
                    && after.is_none_or(|after| meta.first_seqno > after)
            });
        match meta {
            Some(meta) => {
                scan.chunks.push(Found {
                    meta,
                    offset: pos,
                    payload_len: record.payload_len,
                });
                scan.corrupt_records += pending_records;
                scan.corrupt_bytes += pos - scan.valid_end;
                pending_records = 0;
                scan.valid_end = end;
                after = Some(meta.last_seqno);
            }
            None => pending_records += 1,
        }
        pos = end;
    }
    scan.trailing_records = pending_records;
    scan.trailing_bytes = file_len - scan.valid_end;
    Ok(scan)
}

/// Fills `buf`; `false` when the file ends first.
fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

impl Journal {
    /// Adds what segment `opened` holds to the journal and to `recovered`: removes it if it
    /// is the torn newest one, moves it aside if its header is damaged, else scans its
    /// records and truncates a torn tail of the newest segment.
    pub(super) fn recover_segment(
        &mut self,
        opened: OpenedSegment,
        recovered: &mut Recovered,
    ) -> Result<(), JournalError> {
        let OpenedSegment {
            id,
            path,
            file,
            file_len,
            newest,
            header,
        } = opened;
        let header = match header {
            Ok(header) => header,
            Err(HeaderFault::Short) if newest => {
                // Created by a run that died before its header was written: nothing in it.
                fs::remove_file(&path).map_err(io_err("remove torn segment", &path))?;
                recovered.torn_tail_bytes += file_len;
                return Ok(());
            }
            Err(_) => {
                let aside = PathBuf::from(format!("{}{CORRUPT_SUFFIX}", path.display()));
                fs::rename(&path, &aside).map_err(io_err("move aside damaged segment", &path))?;
                recovered.corrupt_records += 1;
                recovered.corrupt_bytes += file_len;
                recovered.moved_aside.push(aside);
                return Ok(());
            }
        };
        let scan = scan_records(
            &file,
            file_len,
            SEGMENT_HEADER_LEN as u64,
            &header,
            self.last_seqno,
        )
        .map_err(io_err("read segment", &path))?;
        recovered.corrupt_records += scan.corrupt_records;
        recovered.corrupt_bytes += scan.corrupt_bytes;
        let mut len = file_len;
        if newest {
            if scan.trailing_bytes > 0 {
                file.set_len(scan.valid_end)
                    .map_err(io_err("truncate torn tail of", &path))?;
                recovered.torn_tail_bytes += scan.trailing_bytes;
                len = scan.valid_end;
            }
            self.active = Some(file);
        } else if scan.trailing_bytes > 0 {
            recovered.corrupt_records += scan.trailing_records + u64::from(scan.trailing_garbage);
            recovered.corrupt_bytes += scan.trailing_bytes;
        }
        let mut segment = Segment {
            id,
            len,
            newest_ns: header.created_ns,
            has_chunks: !scan.chunks.is_empty(),
        };
        for found in scan.chunks {
            segment.newest_ns = found.meta.last_time_ns;
            self.last_seqno = Some(found.meta.last_seqno);
            let loc = ChunkLocation {
                segment: id,
                offset: found.offset,
                len: found.payload_len,
            };
            recovered.chunks.push((found.meta, loc));
        }
        self.total_bytes += segment.len;
        self.segments.push_back(segment);
        Ok(())
    }
}

/// A segment file opened at `open`, its header read but nothing changed yet.
pub(super) struct OpenedSegment {
    pub(super) id: u64,
    path: PathBuf,
    file: File,
    file_len: u64,
    /// The newest segment of the directory (where a crash tears, and appends continue).
    newest: bool,
    /// The header, or why it is unreadable (including a header that names another segment).
    header: Result<SegmentHeader, HeaderFault>,
}

/// Opens segment `id` (for writing too if it is the newest) and reads its header. A readable
/// header of another format version or epoch than `identity`'s refuses the directory.
pub(super) fn open_segment(
    dir: &Path,
    id: u64,
    newest: bool,
    identity: &JournalIdentity,
) -> Result<OpenedSegment, JournalError> {
    let path = dir.join(segment_file_name(id));
    let file = OpenOptions::new()
        .read(true)
        .write(newest)
        .open(&path)
        .map_err(io_err("open segment", &path))?;
    let file_len = file
        .metadata()
        .map_err(io_err("stat segment", &path))?
        .len();
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    let head_len =
        usize::try_from(file_len).map_or(SEGMENT_HEADER_LEN, |len| len.min(SEGMENT_HEADER_LEN));
    file.read_exact_at(&mut head[..head_len], 0)
        .map_err(io_err("read segment", &path))?;
    let header = SegmentHeader::decode(&head[..head_len]).and_then(|h| {
        if h.first_seqno == id {
            Ok(h)
        } else {
            Err(HeaderFault::Name)
        }
    });
    if let Ok(header) = &header {
        if header.format_version != identity.format_version {
            return Err(JournalError::UnsupportedVersion {
                dir: dir.to_path_buf(),
                found: header.format_version,
                supported: identity.format_version,
            });
        }
        if header.epoch != identity.epoch {
            return Err(JournalError::Foreign {
                dir: dir.to_path_buf(),
                field: "epoch (of a segment file)",
                found: header.epoch.to_string(),
                expected: identity.epoch.to_string(),
            });
        }
    }
    Ok(OpenedSegment {
        id,
        path,
        file,
        file_len,
        newest,
        header,
    })
}
