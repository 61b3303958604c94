//! Repairs what a shard's full SPSC queue lost, from the shared history, so its sessions
//! receive those frames instead of a `Gap{reason:"shard_queue_full"}`.
//!
//! Runs on the shard core, inside the dispatch loop ([`crate::serve::shard`]). The tailer
//! never waits for a full shard queue: it loses the frames for that shard and, once there is
//! room, sends one `Gap` stamped with the last lost seqno. The history thread got every one of
//! those frames from the tailer on its own queue, so when that `Gap` reaches the head of the
//! inbox the shard holds everything after it, waits until the history has sealed the lost
//! range (a chunk seals within 250 ms, `HistoryConfig::chunk_max_wait`), reads the range
//! back and dispatches it in place of the `Gap`, then the frames it held.
//!
//! Invariants:
//! - order: nothing after the lost range is dispatched before the range (held frames wait),
//!   so every session still sees strictly increasing seqnos, each once;
//! - nothing is lost silently: seqnos of the range the history does not have (its own queue
//!   overflowed, a chunk failed its checksum) are announced by a `Gap{reason:
//!   "shard_queue_full"}` with exactly those seqnos, in their place;
//! - bounded: a repair gives up after [`GIVE_UP_AFTER`] or [`MAX_HELD`] held frames (the
//!   history thread stuck or far behind) and dispatches the original `Gap`, then what it held.
//!
//! Without a history (`--history-mib 0`) there is nothing to repair from and the `Gap` is
//! dispatched as before. Never: await, block, or read the history before it sealed the range.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

use crate::history::store::{ChunkRead, History};
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::{MetaKind, Outbound};
use crate::wire::protocol::messages::gap_frame;

/// Longest a repair waits for the history to seal the lost range (many chunk waits).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// Most frames a repair holds back while it waits; past it, it gives up.
pub const MAX_HELD: usize = 1 << 20;

/// One shard's repair in progress.
#[derive(Debug)]
pub struct Repair {
    lost: RangeInclusive<u64>,
    /// The tailer's announcement, dispatched if the repair gives up.
    gap: Outbound,
    started: Instant,
    /// Frames after the lost range, in inbox order, dispatched once the range is.
    held: VecDeque<Outbound>,
}

/// What a repair yields when it ends, to dispatch in this order: `frames` as they are (the
/// range read back, with a `Gap` for what could not be), then `held` as if they had just
/// come from the inbox (one may be the next `shard_queue_full` announcement).
#[derive(Debug, Default)]
pub struct Repaired {
    pub frames: Vec<Outbound>,
    pub held: VecDeque<Outbound>,
    /// Frames read back from the history (the rest were announced as lost).
    pub recovered: u64,
}

impl Repair {
    /// A repair for `frame` when it is a `shard_queue_full` announcement and a history is
    /// attached; `None` otherwise (the frame is dispatched as it is).
    pub fn start(frame: &Outbound, history: Option<&Arc<History>>) -> Option<Repair> {
        history?;
        let lost = shard_queue_full_range(frame)?;
        Some(Repair {
            lost,
            gap: frame.clone(),
            started: Instant::now(),
            held: VecDeque::new(),
        })
    }

    /// Holds `frame` (after the lost range) until the repair ends.
    pub fn hold(&mut self, frame: Outbound) {
        self.held.push_back(frame);
    }

    /// Ends the repair when the history has sealed the lost range (or, at `now`, it is time
    /// to give up): the frames to dispatch, in order. `None` while it must wait.
    pub fn try_finish(&mut self, history: &History, now: Instant) -> Option<Repaired> {
        let sealed = history.sealed_head() >= *self.lost.end();
        let give_up =
            now.duration_since(self.started) >= GIVE_UP_AFTER || self.held.len() >= MAX_HELD;
        if !sealed && !give_up {
            return None;
        }
        let mut out = Repaired {
            held: std::mem::take(&mut self.held),
            ..Repaired::default()
        };
        if sealed {
            out.recovered = read_back(history, &self.lost, &mut out.frames);
        } else {
            out.frames.push(self.gap.clone());
        }
        Some(out)
    }
}

/// The lost range a `Gap{reason:"shard_queue_full"}` frame announces.
fn shard_queue_full_range(frame: &Outbound) -> Option<RangeInclusive<u64>> {
    let Outbound::Meta(m) = frame else {
        return None;
    };
    if m.kind != MetaKind::Gap {
        return None;
    }
    let v: sonic_rs::Value = sonic_rs::from_slice(&m.frame).ok()?;
    let g = v.get("Gap")?;
    if g.get("reason")?.as_str()? != GapReason::ShardQueueFull.name() {
        return None;
    }
    let (from, to) = (g.get("from_seqno")?.as_u64()?, g.get("to_seqno")?.as_u64()?);
    (from <= to).then_some(from..=to)
}

/// Appends the frames of `lost` the history holds, and a `Gap` for each run it does not, in
/// seqno order; returns how many frames it read back.
fn read_back(history: &History, lost: &RangeInclusive<u64>, out: &mut Vec<Outbound>) -> u64 {
    let (first, last) = (*lost.start(), *lost.end());
    let mut next = first; // the next seqno of the range to account for
    let mut recovered = 0;
    while next <= last {
        match history.chunk_after(next.saturating_sub(1)) {
            ChunkRead::Chunk(chunk) => {
                for f in chunk.frames.iter() {
                    let s = f.server_seqno();
                    if s < next {
                        continue;
                    }
                    if s > last {
                        break;
                    }
                    announce(next, s - 1, out);
                    out.push(f.clone());
                    recovered += 1;
                    next = s + 1;
                }
                let end = chunk.meta.last_seqno.min(last);
                announce(next, end, out);
                next = next.max(end + 1);
            }
            ChunkRead::Lost(meta) => {
                let end = meta.last_seqno.min(last);
                announce(next, end, out);
                next = next.max(end + 1);
            }
            ChunkRead::End => {
                announce(next, last, out);
                break;
            }
        }
    }
    recovered
}

/// Appends the `Gap` for seqnos `from..=to` the history does not have (none when empty).
fn announce(from: u64, to: u64, out: &mut Vec<Outbound>) {
    if from <= to {
        let g = Gap::seqnos(GapReason::ShardQueueFull, from, to);
        out.push(Outbound::Meta(Arc::new(gap_frame(to, &g))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::history::writer;

    fn meta(seqno: u64) -> Outbound {
        Outbound::Meta(Arc::new(gap_frame(
            seqno,
            &Gap::new(GapReason::WriterRestart),
        )))
    }

    fn announcement(from: u64, to: u64) -> Outbound {
        let g = Gap::seqnos(GapReason::ShardQueueFull, from, to);
        Outbound::Meta(Arc::new(gap_frame(to, &g)))
    }

    /// A history holding seqnos 1..=10 and 16..=20 (11..=15 never reached it).
    fn history_with_a_hole() -> Arc<History> {
        let history = Arc::new(History::new(Config::default().history_setup().config, 1));
        let (mut sender, thread) = writer::spawn(history.clone(), 0, Vec::new()).unwrap();
        for s in (1..=10).chain(16..=20) {
            sender.push(&meta(s));
        }
        sender.flush();
        drop(sender);
        thread.join().unwrap();
        history
    }

    #[test]
    fn only_a_shard_queue_full_announcement_starts_a_repair_and_only_with_a_history() {
        let history = history_with_a_hole();
        assert!(Repair::start(&announcement(3, 5), Some(&history)).is_some());
        assert!(Repair::start(&announcement(3, 5), None).is_none());
        assert!(Repair::start(&meta(4), Some(&history)).is_none());
    }

    #[test]
    fn the_range_comes_back_in_order_with_a_gap_for_exactly_what_the_history_lacks() {
        let history = history_with_a_hole();
        let mut repair = Repair::start(&announcement(8, 18), Some(&history)).unwrap();
        repair.hold(meta(19));
        let done = repair
            .try_finish(&history, Instant::now())
            .expect("sealed through 18");
        let seqnos: Vec<u64> = done.frames.iter().map(Outbound::server_seqno).collect();
        assert_eq!(seqnos, [8, 9, 10, 15, 16, 17, 18]);
        assert_eq!(shard_queue_full_range(&done.frames[3]), Some(11..=15));
        assert_eq!(done.recovered, 6);
        let held: Vec<u64> = done.held.iter().map(Outbound::server_seqno).collect();
        assert_eq!(held, [19]);
    }

    #[test]
    fn a_range_the_history_has_not_sealed_waits_then_the_announcement_goes_out_as_it_was() {
        let history = history_with_a_hole();
        let mut repair = Repair::start(&announcement(19, 25), Some(&history)).unwrap();
        repair.hold(meta(26));
        assert!(repair.try_finish(&history, Instant::now()).is_none());
        let later = Instant::now() + GIVE_UP_AFTER;
        let done = repair.try_finish(&history, later).expect("gives up");
        assert_eq!(done.frames.len(), 1);
        assert_eq!(shard_queue_full_range(&done.frames[0]), Some(19..=25));
        assert_eq!((done.recovered, done.held.len()), (0, 1));
    }
}
