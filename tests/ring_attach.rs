//! Attaching ring files: the real snapshot reads back exactly, and every kind of bad file is
//! refused with the right typed error (never a panic).

mod real_data;

use ringgate::ingest::ring::layout::{
    header_offset as h, RingSizes, EXEC_SCHEMA_HASH, HEADER_SIZE, HEADER_STRUCT_SIZE,
};
use ringgate::ingest::ring::{scratch_dir, AttachError, ReadOutcome, Ring, RingReader, StartAt};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A unique file in the scratch dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempFile(scratch_dir().join(format!("ringgate-attach-{tag}-{}-{n}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const MIN: RingSizes = RingSizes {
    descriptor_capacity: 1 << 16,
    payload_buf_size: 1 << 27,
    context_area_size: 0,
};

fn header(sizes: RingSizes) -> [u8; HEADER_STRUCT_SIZE] {
    let mut b = [0u8; HEADER_STRUCT_SIZE];
    b[0..6].copy_from_slice(b"RING01");
    b[h::CONTENT_TYPE..h::CONTENT_TYPE + 2].copy_from_slice(&2u16.to_le_bytes());
    b[h::SCHEMA_HASH..h::SCHEMA_HASH + 32].copy_from_slice(&EXEC_SCHEMA_HASH);
    b[h::DESCRIPTOR_CAPACITY..h::DESCRIPTOR_CAPACITY + 8]
        .copy_from_slice(&sizes.descriptor_capacity.to_le_bytes());
    b[h::PAYLOAD_BUF_SIZE..h::PAYLOAD_BUF_SIZE + 8]
        .copy_from_slice(&sizes.payload_buf_size.to_le_bytes());
    b[h::CONTEXT_AREA_SIZE..h::CONTEXT_AREA_SIZE + 8]
        .copy_from_slice(&sizes.context_area_size.to_le_bytes());
    b
}

/// Writes `head` and extends the (sparse) file to `len` bytes.
fn ring_file(tag: &str, head: &[u8], len: u64) -> TempFile {
    let t = TempFile::new(tag);
    let mut f = std::fs::File::create(&t.0).unwrap();
    f.write_all(head).unwrap();
    f.set_len(len).unwrap();
    t
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn real_snapshot_header_matches_the_recording() {
    let p = real_data::snapshot();
    let ring = Ring::open(&p).unwrap();
    assert!(ring.is_snapshot());
    let hd = ring.header();
    assert_eq!(hd.content_type, 2);
    assert_eq!(hd.schema_hash, EXEC_SCHEMA_HASH);
    assert_eq!(hd.sizes, MIN);
    assert_eq!(hd.last_seqno, 6597);
    assert_eq!(hd.buffer_window_start, 0);
    assert!(hd.next_payload_byte > 0 && hd.next_payload_byte < 1 << 27);
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn real_snapshot_reads_every_event_in_order_then_not_ready() {
    let p = real_data::snapshot();
    let ring = Arc::new(Ring::open(&p).unwrap());
    let end = ring.header().next_payload_byte;
    let mut r = RingReader::new(ring, StartAt::First);
    let (mut n, mut block_starts, mut prev_off) = (0u64, 0, 0u64);
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => {
                n += 1;
                let d = ev.descriptor;
                assert_eq!(d.seqno, n);
                assert_eq!(ev.payload.len(), d.payload_size as usize);
                assert_eq!(d.payload_buf_offset % 16, 0);
                // Dense layout: each payload starts where the previous allocation ended.
                assert!(d.payload_buf_offset >= prev_off);
                assert!(d.payload_buf_offset + u64::from(d.payload_size) <= end);
                prev_off = d.payload_buf_offset + u64::from(d.payload_size).div_ceil(16) * 16;
                if d.event_type == 2 {
                    block_starts += 1;
                    assert_eq!(d.content_ext[0], d.seqno);
                    assert_eq!(ev.payload.len(), 528);
                    let number = u64::from_le_bytes(ev.payload[32..40].try_into().unwrap());
                    assert_eq!(number, 15_000_001);
                }
            }
            ReadOutcome::NotReady => break,
            other => panic!("unexpected {other:?} after {n} events"),
        }
    }
    assert_eq!(n, 6597);
    assert_eq!(block_starts, 1);
    assert_eq!(r.counters().ready, 6597);
    assert!(matches!(r.try_next(), ReadOutcome::NotReady));
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn newest_block_start_on_the_snapshot_rewinds_past_consensus_events() {
    let p = real_data::snapshot();
    // The snapshot ends with QC / FINALIZED outside any block (flow tag 0): the newest
    // committed event is where reading starts.
    let mut r = RingReader::new(Arc::new(Ring::open(&p).unwrap()), StartAt::NewestBlock);
    assert_eq!(r.next_seqno(), 6597);
    let ReadOutcome::Ready(ev) = r.try_next() else {
        panic!("newest event not ready")
    };
    assert_eq!(ev.descriptor.content_ext[0], 0);
}

#[test]
fn minimal_valid_sparse_ring_attaches() {
    let f = ring_file("ok", &header(MIN), MIN.file_size());
    let ring = Ring::open(&f.0).unwrap();
    assert!(!ring.is_snapshot());
    assert_eq!(ring.sizes(), MIN);
    assert_eq!(ring.header().last_seqno, 0);
    let mut r = RingReader::new(Arc::new(ring), StartAt::NewestBlock);
    assert!(matches!(r.try_next(), ReadOutcome::NotReady));
}

#[test]
fn missing_file_is_not_found() {
    let e = Ring::open(Path::new("/nonexistent/ringgate/ring")).unwrap_err();
    assert!(matches!(e, AttachError::NotFound { .. }), "{e}");
}

#[test]
fn truncated_file_is_refused_with_both_sizes() {
    let f = ring_file("trunc", &header(MIN), MIN.file_size() - 1);
    let e = Ring::open(&f.0).unwrap_err();
    match &e {
        AttachError::Truncated {
            expected, found, ..
        } => {
            assert_eq!(*expected, MIN.file_size());
            assert_eq!(*found, MIN.file_size() - 1);
        }
        other => panic!("wrong error {other}"),
    }
    let short = ring_file("tiny", &header(MIN)[..100], 100);
    assert!(matches!(
        Ring::open(&short.0),
        Err(AttachError::Truncated { .. })
    ));
}

#[test]
fn wrong_magic_is_not_a_ring() {
    let mut head = header(MIN);
    head[5] = b'2';
    let f = ring_file("magic", &head, MIN.file_size());
    let e = Ring::open(&f.0).unwrap_err();
    assert!(matches!(e, AttachError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains(&f.0.display().to_string()));
}

#[test]
fn wrong_content_type_is_refused() {
    let mut head = header(MIN);
    head[h::CONTENT_TYPE] = 1;
    let f = ring_file("ctype", &head, MIN.file_size());
    match Ring::open(&f.0).unwrap_err() {
        AttachError::ContentType {
            expected, found, ..
        } => assert_eq!((expected, found), (2, 1)),
        other => panic!("wrong error {other}"),
    }
}

#[test]
fn wrong_schema_hash_says_different_monad_version() {
    let mut head = header(MIN);
    head[h::SCHEMA_HASH] ^= 0xff;
    let f = ring_file("hash", &head, MIN.file_size());
    let e = Ring::open(&f.0).unwrap_err();
    assert!(matches!(e, AttachError::SchemaHash { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("different Monad version"), "{msg}");
    assert!(msg.contains("this build reads 8933f907"), "{msg}");
}

#[test]
fn sizes_out_of_range_or_not_powers_of_two_are_refused() {
    for (tag, sizes) in [
        (
            "small-desc",
            RingSizes {
                descriptor_capacity: 1 << 15,
                ..MIN
            },
        ),
        (
            "npot-desc",
            RingSizes {
                descriptor_capacity: 3 << 15,
                ..MIN
            },
        ),
        (
            "big-payload",
            RingSizes {
                payload_buf_size: 1 << 41,
                ..MIN
            },
        ),
        (
            "npot-payload",
            RingSizes {
                payload_buf_size: (1 << 27) + 16,
                ..MIN
            },
        ),
        (
            "ctx",
            RingSizes {
                context_area_size: 4096,
                ..MIN
            },
        ),
        (
            "zero",
            RingSizes {
                descriptor_capacity: 0,
                ..MIN
            },
        ),
    ] {
        let f = ring_file(tag, &header(sizes), HEADER_SIZE);
        let e = Ring::open(&f.0).unwrap_err();
        assert!(matches!(e, AttachError::Size { .. }), "{tag}: {e}");
    }
}

fn compress(parts: &[(&[u8], usize)]) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    for (bytes, zeros) in parts {
        enc.write_all(bytes).unwrap();
        enc.write_all(&vec![0u8; *zeros]).unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn snapshot_with_wrong_hash_is_refused_before_allocating() {
    let mut head = header(MIN);
    head[h::SCHEMA_HASH + 31] ^= 1;
    let f = TempFile::new("snap-hash");
    std::fs::write(&f.0, compress(&[(&head, 0)])).unwrap();
    assert!(matches!(
        Ring::open(&f.0),
        Err(AttachError::SchemaHash { .. })
    ));
}

#[test]
fn snapshot_short_by_more_than_15_bytes_is_truncated() {
    let f = TempFile::new("snap-short");
    let body = (MIN.file_size() as usize) - HEADER_STRUCT_SIZE - 16;
    std::fs::write(&f.0, compress(&[(&header(MIN), body)])).unwrap();
    assert!(matches!(
        Ring::open(&f.0),
        Err(AttachError::Truncated { .. })
    ));
}

#[test]
fn snapshot_short_by_8_bytes_is_zero_padded_and_too_long_is_refused() {
    let body = (MIN.file_size() as usize) - HEADER_STRUCT_SIZE;
    let short = TempFile::new("snap-8");
    std::fs::write(&short.0, compress(&[(&header(MIN), body - 8)])).unwrap();
    let ring = Ring::open(&short.0).unwrap();
    assert!(ring.is_snapshot());
    let long = TempFile::new("snap-long");
    std::fs::write(&long.0, compress(&[(&header(MIN), body + 1)])).unwrap();
    assert!(matches!(
        Ring::open(&long.0),
        Err(AttachError::SnapshotTooLong { .. })
    ));
}

#[test]
fn corrupt_zstd_stream_is_a_snapshot_error() {
    let f = TempFile::new("snap-bad");
    let mut bytes = compress(&[(&header(MIN), 1 << 20)]);
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    std::fs::write(&f.0, bytes).unwrap();
    let e = Ring::open(&f.0).unwrap_err();
    assert!(
        matches!(
            e,
            AttachError::Snapshot { .. } | AttachError::Truncated { .. }
        ),
        "{e}"
    );
}

#[test]
fn snapshot_shorter_than_the_header_is_truncated() {
    let f = TempFile::new("snap-head");
    std::fs::write(&f.0, compress(&[(&header(MIN)[..100], 0)])).unwrap();
    match Ring::open(&f.0).unwrap_err() {
        AttachError::Truncated { found, .. } => assert_eq!(found, 100),
        other => panic!("wrong error {other}"),
    }
}
