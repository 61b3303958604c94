//! Writer → reader round trips through real ring files: wrap-around, lapping, expiry, writer
//! restarts and crashes, malformed descriptors, and the writer's file protocol.

mod real_data;

use ringgate::ingest::ring::layout::{
    descriptor_offset, RingSizes, DESCRIPTOR_SIZE, EXEC_SCHEMA_HASH, HEADER_SIZE,
};
use ringgate::ingest::ring::liveness::exclusive_writer_pid;
use ringgate::ingest::ring::{
    scratch_dir, MalformedReason, ReadOutcome, Ring, RingReader, RingWriter, StartAt, WriterError,
    WriterState,
};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

const MIN: RingSizes = RingSizes {
    descriptor_capacity: 1 << 16,
    payload_buf_size: 1 << 27,
    context_area_size: 0,
};
const BLOCK_START: u16 = 2;
const TXN_LOG: u16 = 18;

/// A unique ring path in the scratch dir; removes whatever is left there on drop.
struct RingPath(PathBuf);

impl RingPath {
    fn new(tag: &str) -> RingPath {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RingPath(scratch_dir().join(format!("ringgate-rt-{tag}-{}-{n}", std::process::id())))
    }
}

impl Drop for RingPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Deterministic payload bytes for a seqno (byte `i` = `(31·seqno + 7·i) mod 251`), built by
/// repeating one 251-byte period so megabyte payloads stay cheap in debug builds.
fn payload_for(seqno: u64, len: usize) -> Vec<u8> {
    let period: Vec<u8> = (0..251u64)
        .map(|i| ((seqno.wrapping_mul(31) % 251 + i * 7) % 251) as u8)
        .collect();
    let mut v = Vec::with_capacity(len + 251);
    while v.len() < len {
        v.extend_from_slice(&period);
    }
    v.truncate(len);
    v
}

fn open_reader(p: &RingPath, start: StartAt) -> RingReader {
    RingReader::new(Arc::new(Ring::open(&p.0).unwrap()), start)
}

fn expect_ready(r: &mut RingReader) -> (ringgate::ingest::ring::layout::Descriptor, Vec<u8>) {
    match r.try_next() {
        ReadOutcome::Ready(ev) => (ev.descriptor, ev.payload.to_vec()),
        other => panic!("expected Ready, got {other:?}"),
    }
}

/// Writes one block: BLOCK_START (flow tag = own seqno) and `n` logs tagged with it.
fn write_block(w: &mut RingWriter, n: u64) -> u64 {
    let start = w.next_seqno();
    w.write_event(BLOCK_START, [start, 0, 0, 0], &[1u8; 528], 1);
    for i in 0..n {
        let s = w.next_seqno();
        w.write_event(TXN_LOG, [start, i + 1, 0, 0], &payload_for(s, 40), 2);
    }
    start
}

#[test]
fn writer_files_follow_the_spec() {
    let p = RingPath::new("files");
    let w = RingWriter::create(&p.0, MIN).unwrap();
    let f = std::fs::File::open(&p.0).unwrap();
    let meta = f.metadata().unwrap();
    assert_eq!(meta.len(), MIN.file_size());
    assert_eq!(meta.permissions().mode() & 0o7777 & !0o664, 0);
    let mut head = vec![0u8; HEADER_SIZE as usize];
    f.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(&head[0..6], b"RING01");
    assert_eq!(&head[6..8], &2u16.to_le_bytes());
    assert_eq!(&head[8..40], &EXEC_SCHEMA_HASH);
    assert_eq!(&head[40..48], &(1u64 << 16).to_le_bytes());
    assert_eq!(&head[48..56], &(1u64 << 27).to_le_bytes());
    assert!(
        head[56..].iter().all(|&b| b == 0),
        "control words and padding must be zero"
    );
    // Temp file renamed away, lock held by us.
    let temp = format!("{}.{}", p.0.display(), std::process::id());
    assert!(!std::path::Path::new(&temp).exists());
    assert_eq!(exclusive_writer_pid(meta.ino()), Some(std::process::id()));
    match RingWriter::create(&p.0, MIN) {
        Err(WriterError::Owned { owner, .. }) => {
            assert_eq!(owner, format!("pid {}", std::process::id()))
        }
        other => panic!("second writer must be refused, got {other:?}"),
    }
    drop(w);
    assert!(!p.0.exists(), "a clean writer unlinks its ring");
}

#[test]
fn a_crashed_writers_file_is_reclaimed_as_a_zombie() {
    let p = RingPath::new("zombie");
    let w = RingWriter::create(&p.0, MIN).unwrap();
    let old = std::fs::metadata(&p.0).unwrap().ino();
    w.abandon();
    assert!(p.0.exists(), "abandon leaves the file");
    let w2 = RingWriter::create(&p.0, MIN).unwrap();
    assert_ne!(std::fs::metadata(&p.0).unwrap().ino(), old);
    assert_eq!(w2.next_seqno(), 1);
}

#[test]
fn descriptor_array_wraps_around() {
    let p = RingPath::new("dwrap");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let mut r = open_reader(&p, StartAt::First);
    let total = (1u64 << 16) + 3000;
    let mut read = 0u64;
    while read < total {
        for _ in 0..5000.min(total - w.next_seqno() + 1) {
            let s = w.next_seqno();
            w.write_event(TXN_LOG, [0; 4], &payload_for(s, (s % 50) as usize), s);
        }
        loop {
            match r.try_next() {
                ReadOutcome::Ready(ev) => {
                    read += 1;
                    assert_eq!(ev.descriptor.seqno, read);
                    assert_eq!(ev.descriptor.record_epoch_nanos, read);
                    assert_eq!(ev.payload, &payload_for(read, (read % 50) as usize)[..]);
                }
                ReadOutcome::NotReady => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(r.counters().ready, total);
    assert_eq!(r.counters().gaps, 0);
}

#[test]
fn payloads_crossing_the_physical_end_read_back_intact() {
    let p = RingPath::new("pwrap");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let mut r = open_reader(&p, StartAt::First);
    let len = (1 << 20) + 13;
    let mut crossed = 0;
    for _ in 0..140 {
        let s = w.next_seqno();
        w.write_event(TXN_LOG, [0; 4], &payload_for(s, len), 0);
        let (d, bytes) = expect_ready(&mut r);
        assert_eq!(d.seqno, s);
        assert_eq!(bytes, payload_for(s, len));
        let phys = d.payload_buf_offset & (MIN.payload_buf_size - 1);
        if phys + len as u64 > MIN.payload_buf_size {
            crossed += 1;
        }
    }
    assert_eq!(
        crossed, 1,
        "exactly one payload straddles the end in 140 MiB"
    );
}

#[test]
fn lapped_reader_gets_the_exact_gap_and_resumes_at_a_block_start() {
    let p = RingPath::new("lap");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let mut r = open_reader(&p, StartAt::First);
    let mut last_start = 0;
    while w.next_seqno() <= (1 << 16) + 5000 {
        last_start = write_block(&mut w, 999);
    }
    match r.try_next() {
        ReadOutcome::Gap { missing } => assert_eq!(missing, 1..last_start),
        other => panic!("expected Gap, got {other:?}"),
    }
    let (d, _) = expect_ready(&mut r);
    assert_eq!((d.seqno, d.event_type), (last_start, BLOCK_START));
    let c = r.counters();
    assert_eq!((c.gaps, c.missing_events), (1, last_start - 1));
}

#[test]
fn overwritten_payload_is_expired_not_returned() {
    let p = RingPath::new("expire");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let mut r = open_reader(&p, StartAt::First);
    w.write_event(TXN_LOG, [0; 4], &payload_for(1, 100), 0);
    for _ in 0..120 {
        let s = w.next_seqno();
        w.write_event(TXN_LOG, [0; 4], &payload_for(s, 1 << 20), 0);
    }
    match r.try_next() {
        ReadOutcome::Expired { descriptor } => assert_eq!(descriptor.seqno, 1),
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut last = None;
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => last = Some(ev.descriptor.seqno),
            ReadOutcome::Expired { .. } => assert!(last.is_none(), "expiry only at the front"),
            ReadOutcome::NotReady => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(last, Some(121));
    assert!(r.counters().expired >= 1);
}

#[test]
fn replaced_ring_is_detected_and_reattach_reads_from_seqno_1() {
    let p = RingPath::new("replace");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    for s in 1..=10 {
        w.write_event(TXN_LOG, [0; 4], &payload_for(s, 8), 0);
    }
    let mut r = open_reader(&p, StartAt::First);
    for _ in 0..10 {
        expect_ready(&mut r);
    }
    assert_eq!(r.writer_state(), WriterState::Alive);
    drop(w);
    assert_eq!(r.writer_state(), WriterState::Gone);
    let mut w2 = RingWriter::create(&p.0, MIN).unwrap();
    for s in 1..=3 {
        w2.write_event(TXN_LOG, [0; 4], &payload_for(s + 100, 8), 0);
    }
    assert!(matches!(r.try_next(), ReadOutcome::NotReady));
    assert_eq!(r.writer_state(), WriterState::Replaced);
    r.reattach().unwrap();
    for s in 1..=3 {
        let (d, bytes) = expect_ready(&mut r);
        assert_eq!(d.seqno, s);
        assert_eq!(bytes, payload_for(s + 100, 8));
    }
    assert!(matches!(r.try_next(), ReadOutcome::NotReady));
    assert_eq!(r.writer_state(), WriterState::Alive);
}

#[test]
fn writer_dying_mid_event_leaves_not_ready_and_gone() {
    let p = RingPath::new("crash");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    for s in 1..=5 {
        w.write_event(TXN_LOG, [0; 4], &payload_for(s, 8), 0);
    }
    assert_eq!(w.write_event_uncommitted(TXN_LOG, [0; 4], &[9; 8]), 6);
    let mut r = open_reader(&p, StartAt::First);
    assert_eq!(r.writer_state(), WriterState::Alive);
    w.abandon();
    for _ in 0..5 {
        expect_ready(&mut r);
    }
    for _ in 0..1000 {
        assert!(matches!(r.try_next(), ReadOutcome::NotReady));
    }
    assert_eq!(r.writer_state(), WriterState::Gone);
    // A late reader skips the dead slot and starts at the newest committed event.
    let late = open_reader(&p, StartAt::NewestBlock);
    assert_eq!(late.next_seqno(), 5);
}

#[test]
fn newest_block_starts_at_the_newest_blocks_block_start() {
    let p = RingPath::new("newest");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    write_block(&mut w, 20);
    w.write_event(7, [0; 4], &[0; 56], 0); // QC, outside any block
    let second = write_block(&mut w, 7);
    let mut r = open_reader(&p, StartAt::NewestBlock);
    let (d, _) = expect_ready(&mut r);
    assert_eq!((d.seqno, d.event_type), (second, BLOCK_START));
    let mut n = 1;
    while let ReadOutcome::Ready(_) = r.try_next() {
        n += 1;
    }
    assert_eq!(n, 8);
    // An empty ring starts at seqno 1.
    let q = RingPath::new("newest-empty");
    let _w = RingWriter::create(&q.0, MIN).unwrap();
    assert_eq!(open_reader(&q, StartAt::NewestBlock).next_seqno(), 1);
}

/// Rewrites bytes of committed descriptor `seqno` in the file.
fn corrupt(p: &RingPath, seqno: u64, field: usize, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(&p.0).unwrap();
    let off = HEADER_SIZE + (seqno - 1) * DESCRIPTOR_SIZE + field as u64;
    f.write_all_at(bytes, off).unwrap();
}

#[test]
fn corrupted_descriptors_are_counted_as_malformed_and_skipped() {
    let p = RingPath::new("malformed");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    for s in 1..=3 {
        w.write_event(TXN_LOG, [0; 4], &payload_for(s, 64), 0);
    }
    corrupt(
        &p,
        1,
        descriptor_offset::PAYLOAD_SIZE,
        &u32::MAX.to_le_bytes(),
    );
    corrupt(
        &p,
        2,
        descriptor_offset::PAYLOAD_BUF_OFFSET,
        &8u64.to_le_bytes(),
    );
    let mut r = open_reader(&p, StartAt::First);
    match r.try_next() {
        ReadOutcome::Malformed { descriptor, reason } => {
            assert_eq!(descriptor.seqno, 1);
            assert!(matches!(
                reason,
                MalformedReason::PayloadTooLarge { size: u32::MAX, .. }
            ));
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match r.try_next() {
        ReadOutcome::Malformed { reason, .. } => {
            assert_eq!(reason, MalformedReason::MisalignedOffset { offset: 8 })
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let (d, bytes) = expect_ready(&mut r);
    assert_eq!((d.seqno, bytes), (3, payload_for(3, 64)));
    assert_eq!(r.counters().malformed, 2);
}

#[test]
fn unknown_event_types_pass_through_as_raw_descriptors() {
    let p = RingPath::new("unknown");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    w.write_event(999, [5, 6, 7, 8], b"raw", 0);
    w.write_event(0, [0; 4], &[], 0);
    let mut r = open_reader(&p, StartAt::First);
    let (d, bytes) = expect_ready(&mut r);
    assert_eq!(
        (d.event_type, d.content_ext, bytes),
        (999, [5, 6, 7, 8], b"raw".to_vec())
    );
    let (d, bytes) = expect_ready(&mut r);
    assert_eq!((d.event_type, bytes.len()), (0, 0));
}

#[test]
fn oversize_payload_becomes_an_8192_byte_record_error() {
    let p = RingPath::new("oversize");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let big = payload_for(1, (MIN.payload_buf_size - (1 << 25)) as usize);
    w.write_event(TXN_LOG, [3, 4, 0, 0], &big, 0);
    let mut r = open_reader(&p, StartAt::First);
    let (d, bytes) = expect_ready(&mut r);
    assert_eq!((d.event_type, d.content_ext), (1, [3, 4, 0, 0]));
    assert_eq!(bytes.len(), 8192);
    assert_eq!(u16::from_le_bytes([bytes[2], bytes[3]]), TXN_LOG);
    assert_eq!(&bytes[16..], &big[..8176]);
    let hd = r.ring().header();
    assert_eq!((hd.last_seqno, hd.next_payload_byte), (1, 8192));
}

/// A block-tag payload (`id`, `block_number`) padded to `len`.
fn tagged(id_low: u8, number: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[31] = id_low;
    b[32..40].copy_from_slice(&number.to_le_bytes());
    b
}

#[test]
fn looped_replay_rewrites_flow_tags_numbers_and_ids() {
    let src = RingPath::new("replay-src");
    let mut w = RingWriter::create(&src.0, MIN).unwrap();
    for number in [100u64, 101] {
        let start = w.next_seqno();
        let mut bs = tagged(number as u8, number, 528);
        bs[280..288].copy_from_slice(&number.to_le_bytes());
        w.write_event(BLOCK_START, [start, 0, 0, 0], &bs, 1);
        w.write_event(TXN_LOG, [start, 1, 0, 0], &payload_for(start, 40), 1);
        w.write_event(6, [start, 0, 0, 0], &[0; 360], 1); // BLOCK_END
        w.write_event(7, [0; 4], &tagged(number as u8, number, 56), 1); // QC
        w.write_event(8, [0; 4], &tagged(number as u8, number, 40), 1); // FINALIZED
        w.write_event(9, [0; 4], &number.to_le_bytes(), 1); // VERIFIED
    }
    let dst = RingPath::new("replay-dst");
    let mut out = RingWriter::create(&dst.0, MIN).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let opts = ringgate::tools::replay::ReplayOptions {
        loops: Some(3),
        events_per_sec: None,
    };
    let source = Arc::new(Ring::open(&src.0).unwrap());
    let stats = ringgate::tools::replay::replay(source, &mut out, opts, &stop);
    assert_eq!((stats.events_written, stats.loops_completed), (36, 3));
    assert!(!stats.stopped);

    let mut r = open_reader(&dst, StartAt::First);
    let (mut numbers, mut ids, mut current_start) = (Vec::new(), Vec::new(), 0);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 60_000_000_000;
    while let ReadOutcome::Ready(ev) = r.try_next() {
        let d = ev.descriptor;
        assert!(d.record_epoch_nanos > before, "fresh timestamp");
        let num_at = |o: usize| u64::from_le_bytes(ev.payload[o..o + 8].try_into().unwrap());
        match d.event_type {
            BLOCK_START => {
                assert_eq!(d.content_ext[0], d.seqno);
                current_start = d.seqno;
                assert_eq!(num_at(32), num_at(280));
                numbers.push(num_at(32));
                ids.push(ev.payload[0..32].to_vec());
            }
            7 | 8 => {
                assert_eq!(Some(&num_at(32)), numbers.last());
                assert_eq!(
                    Some(&ev.payload[0..32].to_vec()),
                    ids.last(),
                    "QC/FINALIZED id follows its block"
                );
            }
            9 => assert_eq!(Some(&num_at(0)), numbers.last()),
            _ => assert_eq!(
                d.content_ext[0], current_start,
                "flow tag points at the new BLOCK_START"
            ),
        }
    }
    assert_eq!(numbers, vec![100, 101, 102, 103, 104, 105]);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "block ids unique across loops");
}

#[test]
fn replay_stops_when_the_flag_is_set() {
    let src = RingPath::new("replay-stop-src");
    let mut w = RingWriter::create(&src.0, MIN).unwrap();
    write_block(&mut w, 10);
    let dst = RingPath::new("replay-stop-dst");
    let mut out = RingWriter::create(&dst.0, MIN).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(true);
    let opts = ringgate::tools::replay::ReplayOptions {
        loops: None,
        events_per_sec: Some(1000.0),
    };
    let stats = ringgate::tools::replay::replay(
        Arc::new(Ring::open(&src.0).unwrap()),
        &mut out,
        opts,
        &stop,
    );
    assert!(stats.stopped);
    assert_eq!(stats.events_written, 0);
    assert_eq!(out.next_seqno(), 1);
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn real_snapshot_replays_into_a_live_ring_event_for_event() {
    let p = real_data::snapshot();
    let snap = Arc::new(Ring::open(&p).unwrap());
    let dst = RingPath::new("replay-real");
    let mut out = RingWriter::create(&dst.0, MIN).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let opts = ringgate::tools::replay::ReplayOptions {
        loops: Some(2),
        events_per_sec: None,
    };
    let stats = ringgate::tools::replay::replay(Arc::clone(&snap), &mut out, opts, &stop);
    assert_eq!(stats.events_written, 2 * 6597);
    assert_eq!(stats.skipped, 0);
    let mut a = RingReader::new(snap, StartAt::First);
    let mut b = open_reader(&dst, StartAt::First);
    for _ in 0..6597 {
        let (da, pa) = expect_ready(&mut a);
        let (db, pb) = expect_ready(&mut b);
        assert_eq!(
            (da.seqno, da.event_type, da.content_ext),
            (db.seqno, db.event_type, db.content_ext)
        );
        assert_eq!(pa, pb, "loop 0 copies payloads unchanged");
    }
    let mut second_block = None;
    for _ in 0..6597 {
        let (d, p) = expect_ready(&mut b);
        if d.event_type == BLOCK_START {
            second_block = Some(u64::from_le_bytes(p[32..40].try_into().unwrap()));
        }
    }
    assert_eq!(second_block, Some(15_000_002));
    assert!(matches!(b.try_next(), ReadOutcome::NotReady));
}

#[test]
fn dropping_a_writer_never_unlinks_a_file_that_is_not_its_own() {
    let p = RingPath::new("not-mine");
    let w = RingWriter::create(&p.0, MIN).unwrap();
    std::fs::remove_file(&p.0).unwrap();
    std::fs::write(&p.0, b"someone else's file").unwrap();
    drop(w);
    assert_eq!(std::fs::read(&p.0).unwrap(), b"someone else's file");
}

#[test]
fn concurrent_writer_and_reader_never_yield_torn_events_and_account_for_every_seqno() {
    let p = RingPath::new("concurrent");
    let mut w = RingWriter::create(&p.0, MIN).unwrap();
    let mut r = open_reader(&p, StartAt::First);
    const TOTAL: u64 = 150_000;
    const LAP_AT: u64 = 40_000;
    let len_for = |s: u64| ((s * 37) % 2000) as usize;
    let writer = std::thread::spawn(move || {
        for s in 1..=TOTAL {
            w.write_event(TXN_LOG, [s, 0, 0, 0], &payload_for(s, len_for(s)), s);
        }
        w // keep the ring alive (and locked) until the reader is done
    });
    let mut writer_done = None;
    let mut writer = Some(writer);
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => {
                let s = ev.descriptor.seqno;
                assert_eq!(ev.descriptor.content_ext[0], s, "torn descriptor");
                assert_eq!(ev.descriptor.record_epoch_nanos, s, "torn descriptor");
                assert!(
                    ev.payload == &payload_for(s, len_for(s))[..],
                    "torn payload at {s}"
                );
                if s == LAP_AT {
                    // Act as a stalled consumer until the writer is more than a lap ahead, so
                    // the rest of the run exercises lapping while the writer keeps writing.
                    while r.ring().last_seqno() < LAP_AT + (1 << 16) + 5_000 {
                        std::thread::yield_now();
                    }
                }
            }
            ReadOutcome::Gap { missing } => assert!(!missing.is_empty()),
            ReadOutcome::Expired { .. } => {}
            ReadOutcome::Malformed { descriptor, reason } => {
                panic!("writer never writes malformed events: {descriptor:?} {reason:?}")
            }
            ReadOutcome::NotReady => {
                if r.next_seqno() > TOTAL {
                    break;
                }
                // Every event is committed once the writer has finished: NotReady then is a bug
                // (and would hang this loop).
                assert!(
                    writer_done.is_none(),
                    "NotReady at {} after the writer finished",
                    r.next_seqno()
                );
                if writer.as_ref().is_some_and(|h| h.is_finished()) {
                    writer_done = writer.take().map(|h| h.join().unwrap());
                }
                std::thread::yield_now();
            }
        }
    }
    let c = r.counters();
    assert_eq!(c.malformed, 0);
    assert!(c.gaps >= 1, "the stalled reader was lapped: {c:?}");
    assert_eq!(c.ready + c.expired + c.missing_events, TOTAL, "{c:?}");
    eprintln!("concurrent read: {c:?}");
    drop(writer_done);
    drop(writer.map(|h| h.join().unwrap()));
}

#[test]
fn endless_replay_of_an_empty_source_returns() {
    let src = RingPath::new("replay-empty-src");
    let _w = RingWriter::create(&src.0, MIN).unwrap();
    let dst = RingPath::new("replay-empty-dst");
    let mut out = RingWriter::create(&dst.0, MIN).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let opts = ringgate::tools::replay::ReplayOptions {
        loops: None,
        events_per_sec: None,
    };
    let stats = ringgate::tools::replay::replay(
        Arc::new(Ring::open(&src.0).unwrap()),
        &mut out,
        opts,
        &stop,
    );
    assert_eq!(
        (stats.events_written, stats.loops_completed, stats.stopped),
        (0, 1, false)
    );
}
