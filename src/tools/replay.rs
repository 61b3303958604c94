//! Snapshot replay: copy a recorded ring's events into a live ring, as if a daemon were
//! producing them now.
//!
//! Runs on its own thread (tests, benches, `ringgate demo`/replay mode), never on the tailer
//! core. Input: an attached source [`Ring`] (normally a snapshot), a [`RingWriter`], options and
//! a stop flag. Output: the events written, plus [`ReplayStats`].
//!
//! Per event: a fresh `CLOCK_REALTIME` timestamp; the block flow tag `content_ext[0]` rewritten
//! to the new seqno of its BLOCK_START (a BLOCK_START gets its own new seqno; a tag whose
//! BLOCK_START was not replayed becomes 0); the payload copied unchanged, except on loop
//! `k > 0`, where block identity is shifted so the looped stream stays a valid chain:
//! - block numbers + `k × span` (span = highest − lowest BLOCK_START number + 1): BLOCK_START
//!   `block_tag.block_number` @32 and `eth_block_input.number` @280, BLOCK_QC and
//!   BLOCK_FINALIZED `block_tag.block_number` @32, BLOCK_VERIFIED `block_number` @0;
//! - block ids made unique by xoring `k` (big-endian) into id bytes 0..8 of BLOCK_START,
//!   BLOCK_QC and BLOCK_FINALIZED. Not the low bytes: mock-consensus ids *are* the block number
//!   in the low bytes, so xoring there would collide with another block's id.
//!
//! Payloads too short for a patched field are copied unchanged (never a panic). Source events
//! that are not `Ready` (gap, expired, malformed: impossible in a sound snapshot) are skipped
//! and counted. Pacing is [`Pacer`]'s. A pass that writes nothing (empty source) ends the
//! replay, even when looping forever. Never: modify the source, spin when paced.

use crate::ingest::event::payload::layout::{block_start, block_tag, block_verified};
use crate::ingest::ring::attach::Ring;
use crate::ingest::ring::reader::{ReadOutcome, RingReader, StartAt};
use crate::ingest::ring::writer::RingWriter;
use crate::model::kind::EventType;
use crate::tools::pacer::Pacer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Replay settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayOptions {
    /// How many times to replay the source; `None` = until stopped.
    pub loops: Option<u64>,
    /// Target rate in events per second; `None` = as fast as the writer goes.
    pub events_per_sec: Option<f64>,
}

impl Default for ReplayOptions {
    /// One pass, flat out.
    fn default() -> Self {
        ReplayOptions {
            loops: Some(1),
            events_per_sec: None,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Events written to the destination ring.
    pub events_written: u64,
    /// Complete passes over the source.
    pub loops_completed: u64,
    /// Source events skipped because they were not readable (gap, expired, malformed).
    pub skipped: u64,
    /// True when the stop flag ended the replay early.
    pub stopped: bool,
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn add_at(b: &mut [u8], off: usize, delta: u64) {
    if let Some(v) = u64_at(b, off) {
        b[off..off + 8].copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
    }
}

fn xor_id(b: &mut [u8], k: u64) {
    if let Some(id_high) = b.get_mut(0..8) {
        for (x, m) in id_high.iter_mut().zip(k.to_be_bytes()) {
            *x ^= m;
        }
    }
}

/// Block-number span of the source: highest − lowest BLOCK_START number + 1 (0 if none).
fn block_span(source: &Arc<Ring>) -> u64 {
    let mut r = RingReader::new(Arc::clone(source), StartAt::First);
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) if ev.descriptor.event_type == EventType::BlockStart.code() => {
                if let Some(n) = u64_at(ev.payload, block_start::NUMBER) {
                    lo = lo.min(n);
                    hi = hi.max(n);
                }
            }
            ReadOutcome::NotReady => break,
            _ => {}
        }
    }
    if lo > hi {
        0
    } else {
        hi - lo + 1
    }
}

/// Shifts block numbers and ids of a consensus/block event for loop `k`.
fn patch_for_loop(event_type: u16, payload: &mut [u8], k: u64, delta: u64) {
    match EventType::from_code(event_type) {
        Some(EventType::BlockStart) if payload.len() >= block_start::ETH_NUMBER + 8 => {
            add_at(payload, block_start::NUMBER, delta);
            add_at(payload, block_start::ETH_NUMBER, delta);
            xor_id(payload, k);
        }
        Some(EventType::BlockQc | EventType::BlockFinalized)
            if payload.len() >= block_tag::NUMBER + 8 =>
        {
            add_at(payload, block_tag::NUMBER, delta);
            xor_id(payload, k);
        }
        Some(EventType::BlockVerified) => add_at(payload, block_verified::NUMBER, delta),
        _ => {}
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Replays `source` into `writer` until the loops are done or `stop` is set.
pub fn replay(
    source: Arc<Ring>,
    writer: &mut RingWriter,
    opts: ReplayOptions,
    stop: &AtomicBool,
) -> ReplayStats {
    let span = block_span(&source);
    let mut pacer = Pacer::new(opts.events_per_sec);
    let mut stats = ReplayStats::default();
    let mut scratch = Vec::new();
    let mut block_map: HashMap<u64, u64> = HashMap::new();
    let mut k = 0u64;
    while opts.loops.is_none_or(|n| k < n) {
        let mut r = RingReader::new(Arc::clone(&source), StartAt::First);
        block_map.clear();
        let written_before = stats.events_written;
        loop {
            if stop.load(Ordering::Relaxed) {
                stats.stopped = true;
                return stats;
            }
            let ev = match r.try_next() {
                ReadOutcome::Ready(ev) => ev,
                ReadOutcome::NotReady => break,
                _ => {
                    stats.skipped += 1;
                    continue;
                }
            };
            let d = ev.descriptor;
            let mut ext = d.content_ext;
            if d.event_type == EventType::BlockStart.code() {
                let new = writer.next_seqno();
                block_map.insert(d.seqno, new);
                ext[0] = new;
            } else if ext[0] != 0 {
                ext[0] = block_map.get(&ext[0]).copied().unwrap_or(0);
            }
            let payload = if k == 0 {
                ev.payload
            } else {
                scratch.clear();
                scratch.extend_from_slice(ev.payload);
                patch_for_loop(d.event_type, &mut scratch, k, k.wrapping_mul(span));
                &scratch[..]
            };
            writer.write_event(d.event_type, ext, payload, now_ns());
            stats.events_written += 1;
            pacer.pace(1);
        }
        k += 1;
        stats.loops_completed = k;
        if stats.events_written == written_before {
            // An empty source would make an endless replay spin without writing anything.
            break;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_patch_shifts_numbers_and_makes_ids_unique() {
        let mut start = vec![0u8; 528];
        start[31] = 0xc1; // mock id: number in the low bytes
        start[32..40].copy_from_slice(&100u64.to_le_bytes());
        start[280..288].copy_from_slice(&100u64.to_le_bytes());
        patch_for_loop(EventType::BlockStart.code(), &mut start, 3, 30);
        assert_eq!(u64_at(&start, 32), Some(130));
        assert_eq!(u64_at(&start, 280), Some(130));
        assert_eq!(start[7], 3);
        assert_eq!(start[31], 0xc1);
        let mut verified = 100u64.to_le_bytes().to_vec();
        patch_for_loop(EventType::BlockVerified.code(), &mut verified, 1, 30);
        assert_eq!(u64_at(&verified, 0), Some(130));
        let mut short = vec![1u8; 10];
        patch_for_loop(EventType::BlockFinalized.code(), &mut short, 1, 30);
        assert_eq!(
            short,
            vec![1u8; 10],
            "too short to patch: unchanged, no panic"
        );
    }
}
