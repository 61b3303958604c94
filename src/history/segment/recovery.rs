//! Reading a segment back at `open`: its header, then every record in order, each checked
//! (magic, sane length, CRC over meta and payload, meta consistent, epoch and seqno order)
//! before it enters the index.
//!
//! The scan reads sequentially and never seeks: a record whose length is sane but whose
//! content fails a check is read through and counted, so the scan resyncs at the next record;
//! a header with no magic or an insane length (or the end of the file inside a record) stops
//! it. Whether what follows the last good record is a torn tail (truncated) or damage (counted
//! and kept) is the caller's call: it depends on whether the segment is the last one.

use super::format::{record_crc, RecordHeader, SegmentHeader, RECORD_HEADER_LEN};
use crate::history::meta::ChunkMeta;
use std::fs::File;
use std::io::{self, BufReader, ErrorKind, Read, Seek, SeekFrom};

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
