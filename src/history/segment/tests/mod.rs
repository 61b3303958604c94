//! The journal against real files in a temporary directory: round trips across segment
//! rolls, reopening, torn tails, flipped bytes and damaged headers; the directory's identity,
//! retention, I/O failures, the lock and arbitrary damage are in `directory` (never a panic,
//! never an unverified chunk).

use super::format::{
    decode_clean, decode_identity, encode_clean, encode_identity, parse_segment_file_name,
    segment_file_name, IdentityFault, SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::*;
use proptest::prelude::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, removed (permissions restored first) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "ringgate-segment-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
        let _ = fs::remove_dir_all(&self.0);
    }
}

const EPOCH: u64 = 42;

fn identity() -> JournalIdentity {
    JournalIdentity {
        format_version: 1,
        epoch: EPOCH,
        ring_path: "/dev/hugepages/monad-exec-events".to_owned(),
        chain_id: 143,
    }
}

fn config(max_segment_bytes: u64) -> SegmentConfig {
    SegmentConfig {
        max_segment_bytes,
        max_total_bytes: u64::MAX,
        max_age: None,
    }
}

/// Chunk `i` (0-based): seqnos `10 i + 1 ..= 10 i + 10`, time `i` seconds.
fn meta(i: u64) -> ChunkMeta {
    ChunkMeta {
        epoch: EPOCH,
        first_seqno: 10 * i + 1,
        last_seqno: 10 * i + 10,
        first_block: (!i.is_multiple_of(3)).then_some(1_000 + i),
        last_block: (!i.is_multiple_of(3)).then_some(1_000 + i),
        first_time_ns: i * 1_000_000_000,
        last_time_ns: i * 1_000_000_000 + 999,
        last_ring_seqno: 5 * i,
        frames: 10,
        raw_len: 4_000,
    }
}

/// Payload of chunk `i`: 50..=549 bytes of a pattern that differs per chunk.
fn payload(i: u64) -> Vec<u8> {
    let len = 50 + (i * 37 % 500) as usize;
    (0..len)
        .map(|j| (i as usize * 31 + j * 7) as u8 ^ 0x5a)
        .collect()
}

/// Appends chunks `range` and returns what each was written as.
fn append_chunks(
    journal: &mut Journal,
    range: std::ops::Range<u64>,
) -> Vec<(ChunkMeta, ChunkLocation)> {
    range
        .map(|i| {
            let m = meta(i);
            let loc = journal.append(&m, &payload(i)).expect("append");
            assert_eq!(loc.compressed_len() as usize, payload(i).len());
            (m, loc)
        })
        .collect()
}

/// The chunk number of a meta made by [`meta`].
fn index_of(m: &ChunkMeta) -> u64 {
    (m.first_seqno - 1) / 10
}

fn assert_reads_back(journal: &Journal, chunks: &[(ChunkMeta, ChunkLocation)]) {
    for (m, loc) in chunks {
        assert_eq!(
            journal.read(*loc, m).expect("read"),
            payload(index_of(m)),
            "chunk {}",
            m.first_seqno
        );
    }
}

/// Segment files in `dir`, in `ls` order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// A journal in a new directory with chunks `0..chunks` in 4 KiB segments, dropped (not
/// closed), and what was written.
fn journal_with(name: &str, chunks: u64) -> (TempDir, Vec<(ChunkMeta, ChunkLocation)>) {
    let dir = TempDir::new(name);
    let (mut journal, _) = reopen(&dir);
    let written = append_chunks(&mut journal, 0..chunks);
    (dir, written)
}

/// Opens the journal in `dir` as the tests' gateway (4 KiB segments).
fn reopen(dir: &TempDir) -> (Journal, Recovered) {
    Journal::open(&dir.0, &identity(), config(4096)).unwrap()
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x40;
    file.write_all_at(&byte, offset).unwrap();
}

fn record_len(i: u64) -> u64 {
    (RECORD_HEADER_LEN + payload(i).len()) as u64
}

#[test]
fn chunks_round_trip_across_segment_rolls() {
    let dir = TempDir::new("roundtrip");
    let (mut journal, recovered) = reopen(&dir);
    assert_eq!(
        recovered.identity, None,
        "a new directory has no identity yet"
    );
    assert!(recovered.chunks.is_empty());
    let written = append_chunks(&mut journal, 0..200);
    assert_reads_back(&journal, &written);

    let files = segment_files(&dir.0);
    assert!(
        files.len() >= 10,
        "200 chunks of ~300 B in 4 KiB segments: {files:?}"
    );
    assert_eq!(journal.segments(), files.len());
    let on_disk: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    assert_eq!(journal.total_bytes(), on_disk);
    for file in &files {
        let len = fs::metadata(file).unwrap().len();
        let records = len - SEGMENT_HEADER_LEN as u64;
        assert!(
            len <= 4096 || records == record_len(0),
            "{file:?} is {len} bytes"
        );
    }
    // `ls` order is seqno order, and each file is named after its first chunk.
    let mut ids: Vec<u64> = files
        .iter()
        .map(|f| parse_segment_file_name(f.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    ids.dedup();
    assert_eq!(ids.len(), files.len());
    for (id, file) in ids.iter().zip(&files) {
        let head = fs::read(file).unwrap();
        let header = SegmentHeader::decode(&head).unwrap();
        assert_eq!((header.first_seqno, header.epoch), (*id, EPOCH));
        assert!(written.iter().any(|(m, _)| m.first_seqno == *id));
    }
}

#[test]
fn reopening_gives_the_same_index_and_appends_continue() {
    let dir = TempDir::new("reopen");
    let (mut journal, _) = reopen(&dir);
    let written = append_chunks(&mut journal, 0..60);
    let segments = journal.segments();
    drop(journal);

    let (mut journal, recovered) = reopen(&dir);
    assert_eq!(recovered.chunks, written);
    assert_eq!(recovered.identity, Some(identity()));
    assert_eq!(
        (recovered.torn_tail_bytes, recovered.corrupt_records),
        (0, 0)
    );
    assert!(!recovered.clean_shutdown, "dropped without close()");
    assert_eq!(journal.segments(), segments);
    assert_eq!(journal.last_seqno(), Some(600));
    assert_eq!(journal.min_next_seqno(), 601);
    assert_reads_back(&journal, &recovered.chunks);

    // Appends go on in the newest segment, then roll as before.
    let more = append_chunks(&mut journal, 60..80);
    assert_reads_back(&journal, &more);
    journal.close().unwrap();

    let (journal, recovered) = reopen(&dir);
    assert!(recovered.clean_shutdown);
    let all: Vec<_> = written.into_iter().chain(more).collect();
    assert_eq!(recovered.chunks, all);
    drop(journal);
    // The marker is consumed by the open: a crash of that run does not look clean.
    let (_, recovered) = reopen(&dir);
    assert!(!recovered.clean_shutdown);
}

#[test]
fn a_torn_last_record_is_truncated_and_earlier_chunks_stay() {
    let (dir, written) = journal_with("torn", 50);
    let last = segment_files(&dir.0).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    // Cut the last record 10 bytes short, as a process killed mid-write would.
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    let (mut journal, recovered) = reopen(&dir);
    assert_eq!(recovered.torn_tail_bytes, record_len(49) - 10);
    assert_eq!(recovered.corrupt_records, 0);
    assert_eq!(recovered.chunks, written[..49]);
    assert_eq!(
        fs::metadata(&last).unwrap().len(),
        len - record_len(49),
        "truncated"
    );
    assert_reads_back(&journal, &recovered.chunks);
    // The torn chunk's seqnos can be journaled again, and nothing torn is left behind them.
    let again = append_chunks(&mut journal, 49..51);
    drop(journal);
    let (_, recovered) = reopen(&dir);
    assert_eq!(recovered.torn_tail_bytes, 0);
    assert_eq!(recovered.chunks[49..], again);
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let (dir, written) = journal_with("garbage", 30);
    let last = segment_files(&dir.0).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let garbage: Vec<u8> = (0..777u32).map(|i| (i * 13) as u8).collect();
    OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&garbage)
        .unwrap();

    let (journal, recovered) = reopen(&dir);
    assert_eq!(recovered.torn_tail_bytes, 777);
    assert_eq!(recovered.chunks, written);
    assert_eq!(fs::metadata(&last).unwrap().len(), len);
    assert_reads_back(&journal, &written);
}

#[test]
fn a_header_only_segment_cut_short_is_removed() {
    let (dir, written) = journal_with("shortheader", 5);
    // A run that died right after creating its next segment.
    let next = dir.0.join(segment_file_name(999));
    fs::write(&next, [0u8; 20]).unwrap();

    let (_, recovered) = reopen(&dir);
    assert_eq!(recovered.torn_tail_bytes, 20);
    assert_eq!(recovered.chunks, written);
    assert!(!next.exists());
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_counted_and_skipped() {
    let (dir, written) = journal_with("flip", 100);
    // Chunk 30's payload (in a middle segment), and chunk 98's (in the last segment, with a
    // good record after it, so it is damage, not a torn tail).
    for victim in [30usize, 98] {
        let (_, loc) = written[victim];
        let path = dir.0.join(segment_file_name(loc.segment));
        flip_byte(&path, loc.offset + RECORD_HEADER_LEN as u64 + 5);
    }

    let (journal, recovered) = reopen(&dir);
    assert_eq!(recovered.corrupt_records, 2);
    assert_eq!(recovered.corrupt_bytes, record_len(30) + record_len(98));
    assert_eq!(recovered.torn_tail_bytes, 0);
    let expected: Vec<_> = written
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 30 && *i != 98)
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(recovered.chunks, expected);
    assert_reads_back(&journal, &recovered.chunks);
}

#[test]
fn a_damaged_record_header_skips_the_rest_of_its_segment_only() {
    let (dir, written) = journal_with("flipmagic", 100);
    let (_, loc) = written[30];
    let path = dir.0.join(segment_file_name(loc.segment));
    flip_byte(&path, loc.offset); // the record magic: nothing after it can be trusted
    let lost: Vec<_> = written
        .iter()
        .filter(|(_, l)| l.segment == loc.segment && l.offset >= loc.offset)
        .map(|(m, _)| *m)
        .collect();

    let (journal, recovered) = reopen(&dir);
    assert_eq!(recovered.corrupt_records, 1);
    let lost_bytes: u64 = lost.iter().map(|m| record_len(index_of(m))).sum();
    assert_eq!(recovered.corrupt_bytes, lost_bytes);
    assert_eq!(recovered.chunks.len(), 100 - lost.len());
    assert!(recovered.chunks.iter().all(|(m, _)| !lost.contains(m)));
    assert_reads_back(&journal, &recovered.chunks);
}

#[test]
fn a_segment_with_a_damaged_header_is_moved_aside() {
    let (dir, written) = journal_with("badheader", 100);
    let victim = segment_files(&dir.0)[2].clone();
    flip_byte(&victim, 20);

    let (mut journal, recovered) = reopen(&dir);
    assert_eq!(recovered.corrupt_records, 1);
    let aside = PathBuf::from(format!("{}.corrupt", victim.display()));
    assert_eq!(recovered.moved_aside, std::slice::from_ref(&aside));
    assert!(aside.exists() && !victim.exists());
    let victim_id = parse_segment_file_name(victim.file_name().unwrap().to_str().unwrap());
    let kept: Vec<_> = written
        .iter()
        .filter(|(_, l)| Some(l.segment) != victim_id)
        .copied()
        .collect();
    assert_eq!(recovered.chunks, kept);
    assert_reads_back(&journal, &kept);
    append_chunks(&mut journal, 100..101);
}

#[test]
fn read_detects_a_flipped_byte_and_a_wrong_meta() {
    let dir = TempDir::new("readflip");
    let (mut journal, _) = reopen(&dir);
    let written = append_chunks(&mut journal, 0..40);
    let (m, loc) = written[20];
    let path = dir.0.join(segment_file_name(loc.segment));
    flip_byte(&path, loc.offset + RECORD_HEADER_LEN as u64 + 1);
    let err = journal.read(loc, &m).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Corrupt {
                why: "checksum mismatch",
                ..
            }
        ),
        "{err}"
    );
    let (m2, loc2) = written[21];
    assert_eq!(journal.read(loc2, &m2).unwrap(), payload(21));
    let err = journal.read(loc2, &m).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    // The newest segment (read through the append handle) is checked the same way.
    let (m, loc) = *written.last().unwrap();
    flip_byte(
        &path.with_file_name(segment_file_name(loc.segment)),
        loc.offset + 90,
    );
    assert!(matches!(
        journal.read(loc, &m),
        Err(JournalError::Corrupt { .. })
    ));
}

mod directory;
