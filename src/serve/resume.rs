//! The resume store: recent frames kept for reconnecting clients, the rules that decide what
//! a reconnect gets, and (in `cursor`) the flow-controlled replay cursor
//! (docs/invariants.md#trust-5).
//!
//! Each shard keeps its own [`ResumeStore`] on its own core (frames are `Arc`s shared with
//! the tailer, so a store costs pointers, not copies of the bytes) and appends every frame
//! *before* handing it to its sessions. Runtime-free: takes frames, seqnos and requests.
//!
//! With the shared [`History`] attached (the default), the shard keeps only the frames the
//! history has not sealed yet (a fraction of a second) and everything older is read from the
//! history: the window is the history's, measured in bytes and time, not this store's
//! frames. Without it (`history_memory_mib = 0`), this store alone is the window.
//!
//! Invariants:
//! - frames are stored in strictly increasing `server_seqno` order (an out-of-order push is
//!   refused), bounded by count and bytes; the oldest are evicted first; with a history,
//!   the frames it has sealed are evicted (they are readable there), a few per push, and the
//!   count bound does not apply (only the bytes bound does: unsealed frames are nowhere else);
//! - a decision never claims `recovered` unless every frame after the client's cursor is
//!   still in the store (the client may still filter most of them out);
//! - replay is filtered by the caller's predicate (the session's compiled filter, channel
//!   and `min_stage`) and proceeds in bounded chunks, so a 100,000-frame replay never
//!   floods a session queue or aborts a connection.
//!
//! Never: block, copy frame bytes, or hand a session a frame twice (see [`ReplayCursor`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use crate::config::defaults;
use crate::history::store::History;
use crate::model::outbound::Outbound;
use crate::model::seqno::Epoch;
use crate::model::stage::CommitStage;
use crate::wire::protocol::messages::{ResumeInfo, ResumeMode, ResumeReason};

mod cursor;
pub use cursor::{ReplayChunk, ReplayCursor};

/// Frames the history has sealed that one push evicts at most (beyond the count and byte
/// bounds, which always hold). A sealed chunk is thousands of frames; freeing them all in the
/// push after the seal kept the live frame behind it waiting (tenths of a millisecond, more
/// with `min_stage` copies); a few per push free them over the next pushes, faster than
/// frames arrive.
const SEALED_EVICTIONS_PER_PUSH: usize = 8;

/// Bounds of the store. Defaults: 100,000 frames and 512 MiB of frame bytes (whichever is
/// hit first). 100,000 frames is about 20 mainnet-sized blocks, ~8 s at 400 ms blocks; raise
/// both to let clients survive longer disconnects, at the cost of memory on every shard
/// (the bytes are shared, so the real cost is the bytes once plus 16 B per frame per shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeConfig {
    pub max_frames: usize,
    pub max_bytes: usize,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            max_frames: defaults::RESUME_STORE_FRAMES,
            max_bytes: defaults::RESUME_STORE_MIB << 20,
        }
    }
}

/// What a reconnecting client asks for (query parameters `resume_from`, `epoch`,
/// `from_block`). `resume_from` wins when both it and `from_block` are given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumeRequest {
    /// The last `server_seqno` the client processed.
    pub resume_from: Option<u64>,
    /// The epoch that seqno belongs to; absent for old clients (assumed current).
    pub epoch: Option<u64>,
    /// Replay from the first frame of this block number (epoch-independent).
    pub from_block: Option<u64>,
}

/// What a reconnect gets: replay frames with seqno `> start_after` (filtered), announce
/// `gap` first when present, then join the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeDecision {
    pub mode: ResumeMode,
    pub start_after: u64,
    /// Seqnos of this epoch the client missed and cannot get (half-open range), announced
    /// as a `Gap` frame (`reason: "resume_window"`) before the replay.
    pub gap: Option<Range<u64>>,
    /// Whether the client gets everything it missed.
    pub recovered: bool,
    pub reason: ResumeReason,
}

impl ResumeDecision {
    /// The decision when the store is disabled (`resume_store_frames = 0`): live from
    /// `head`, nothing recovered.
    pub fn disabled(head: u64) -> ResumeDecision {
        ResumeDecision {
            mode: ResumeMode::Snapshot,
            start_after: head,
            gap: None,
            recovered: false,
            reason: ResumeReason::Disabled,
        }
    }

    /// The session's starting cursor: the seqno its `Hello` and `Resume` carry and from
    /// which its per-connection frames count. With a gap it is the last seqno before the
    /// gap (the client's own cursor when it is too old; 0 for another epoch), so a client
    /// that saves it and disconnects before the `Gap` frame still learns of the loss on its
    /// next resume; the `Gap` frame then carries the last lost seqno (`start_after`).
    /// Otherwise it is `start_after`; every replayed frame is above it.
    pub fn cursor(&self) -> u64 {
        self.gap
            .as_ref()
            .map_or(self.start_after, |g| g.start.saturating_sub(1))
    }

    /// The `Resume` message for this decision: the replayed range is the stored frames
    /// after `start_after` up to `head` (the client's filter may select none of them), and
    /// absent when there are none.
    pub fn info(&self, epoch: u64, head: u64) -> ResumeInfo {
        let replays = self.start_after < head;
        ResumeInfo {
            mode: self.mode,
            reason: self.reason,
            epoch,
            from_seqno: replays.then_some(self.start_after + 1),
            to_seqno: replays.then_some(head),
            recovered: self.recovered,
        }
    }
}

/// Result of [`ResumeStore::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored; `evicted` older frames were dropped to stay in bounds.
    Stored { evicted: usize },
    /// Refused: its seqno is not above the head (a caller bug; counted, never stored).
    OutOfOrder,
}

/// Index entries kept for `from_block` at most (one per block number).
const BLOCK_INDEX_CAP: usize = 65_536;

/// Recent frames in seqno order, bounded.
#[derive(Debug)]
pub struct ResumeStore {
    config: ResumeConfig,
    frames: VecDeque<Outbound>,
    bytes: usize,
    head: u64,
    /// Block number → seqno of its first live (`Proposed`) in-block event.
    blocks: BTreeMap<u64, u64>,
    max_block_seen: Option<u64>,
    /// Highest block number dropped from the index; never re-indexed (a partial block
    /// must not look complete).
    pruned_max: Option<u64>,
    evicted: u64,
    out_of_order: u64,
    history: Option<Arc<History>>,
}

impl ResumeStore {
    /// An empty store.
    pub fn new(config: ResumeConfig) -> ResumeStore {
        ResumeStore {
            config,
            frames: VecDeque::new(),
            bytes: 0,
            head: 0,
            blocks: BTreeMap::new(),
            max_block_seen: None,
            pruned_max: None,
            evicted: 0,
            out_of_order: 0,
            history: None,
        }
    }

    /// Reads frames older than this store from `history` (which seals every frame this store
    /// receives); frames the history has sealed are evicted from this store.
    pub fn with_history(mut self, history: Arc<History>) -> ResumeStore {
        // A restarted gateway's history already holds frames up to its head.
        self.head = self.head.max(history.sealed_head());
        self.history = Some(history);
        self
    }

    /// The shared history, when attached.
    pub fn history(&self) -> Option<&Arc<History>> {
        self.history.as_ref()
    }

    /// Appends a frame (its seqno must be above the head); evicts the oldest to stay within
    /// bounds. Call before handing the frame to sessions.
    pub fn push(&mut self, frame: Outbound) -> StoreOutcome {
        let seqno = frame.server_seqno();
        if seqno <= self.head {
            self.out_of_order += 1;
            return StoreOutcome::OutOfOrder;
        }
        self.head = seqno;
        if let Outbound::Event(e) = &frame {
            if let (Some(n), true, CommitStage::Proposed) =
                (e.keys.block_number, e.keys.block_seqno != 0, e.gate)
            {
                self.max_block_seen = Some(self.max_block_seen.map_or(n, |m| m.max(n)));
                if self.pruned_max.is_none_or(|p| n > p) {
                    self.blocks.entry(n).or_insert(seqno);
                }
            }
        }
        self.bytes += frame.byte_len();
        self.frames.push_back(frame);
        let sealed = self.history.as_ref().map_or(0, |h| h.sealed_head());
        // With a history, frames it has not sealed yet stay whatever their count (only the
        // byte bound applies): evicting them would leave a hole neither side can replay.
        let max_frames = if self.history.is_some() {
            usize::MAX
        } else {
            self.config.max_frames.max(1)
        };
        let mut evicted = 0;
        while self.frames.len() > max_frames
            || (self.bytes > self.config.max_bytes && self.frames.len() > 1)
            || (evicted < SEALED_EVICTIONS_PER_PUSH
                && self
                    .frames
                    .front()
                    .is_some_and(|f| f.server_seqno() <= sealed))
        {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= old.byte_len();
            evicted += 1;
        }
        if evicted > 0 {
            self.evicted += evicted as u64;
            self.prune_blocks();
        }
        StoreOutcome::Stored { evicted }
    }

    fn prune_blocks(&mut self) {
        let oldest = self.oldest_seqno();
        while let Some((&n, &first)) = self.blocks.first_key_value() {
            if first >= oldest && self.blocks.len() <= BLOCK_INDEX_CAP {
                break;
            }
            self.blocks.pop_first();
            self.pruned_max = Some(self.pruned_max.map_or(n, |p| p.max(n)));
        }
    }

    /// The seqno of the oldest frame a replay can provide (the history's oldest when it holds
    /// anything older than this store); `head + 1` when there is none (so `oldest − 1` is
    /// always the last seqno a replay cannot provide).
    pub fn oldest_seqno(&self) -> u64 {
        let here = self.memory_oldest_seqno();
        self.history
            .as_ref()
            .and_then(|h| h.oldest_seqno())
            .map_or(here, |h| h.min(here))
    }

    /// The seqno of the oldest frame in this shard's own store; `head + 1` when empty.
    pub fn memory_oldest_seqno(&self) -> u64 {
        self.frames
            .front()
            .map_or(self.head + 1, Outbound::server_seqno)
    }

    /// The highest seqno ever stored (0 before the first).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Frames stored.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame bytes pinned by the store.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames evicted since start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Pushes refused for being out of order.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// The seqno of the first stored live event of block `number`, if still stored (here
    /// or in the history).
    pub fn first_seqno_of_block(&self, number: u64) -> Option<u64> {
        let history = self
            .history
            .as_ref()
            .filter(|h| h.oldest_block().is_some_and(|o| o <= number))
            .and_then(|h| h.first_seqno_of_block(number));
        history.or_else(|| {
            let first = *self.blocks.get(&number)?;
            (first >= self.memory_oldest_seqno()).then_some(first)
        })
    }

    /// Index of the first stored frame with seqno `> after`.
    fn position_after(&self, after: u64) -> usize {
        self.frames.partition_point(|f| f.server_seqno() <= after)
    }

    /// The stored frame at `i` in seqno order.
    fn get(&self, i: usize) -> Option<&Outbound> {
        self.frames.get(i)
    }

    /// Decides what a reconnect gets (rules in docs/decisions/resume-rules.md):
    ///
    /// | case | mode | start_after | gap | recovered |
    /// |---|---|---|---|---|
    /// | no cursor | snapshot | head | – | false |
    /// | other epoch | snapshot | oldest−1 | 1..oldest if any evicted | false |
    /// | cursor > head | snapshot | head | – | false |
    /// | cursor = head | resume | head | – | true |
    /// | oldest−1 ≤ cursor < head | resume | cursor | – | true |
    /// | cursor < oldest−1 | snapshot | oldest−1 | cursor+1..oldest | false |
    /// | from_block stored | resume | first−1 | – | true |
    /// | from_block above all seen | resume | head | – | true |
    /// | from_block evicted | snapshot | oldest−1 | – | false |
    pub fn decide(&self, req: &ResumeRequest, current: Epoch) -> ResumeDecision {
        let head = self.head;
        let oldest = self.oldest_seqno();
        let d = |mode, start_after, gap, recovered, reason| ResumeDecision {
            mode,
            start_after,
            gap,
            recovered,
            reason,
        };
        if let Some(cursor) = req.resume_from {
            if req.epoch.is_some_and(|e| e != current.get()) {
                let gap = (oldest > 1).then_some(1..oldest);
                return d(
                    ResumeMode::Snapshot,
                    oldest - 1,
                    gap,
                    false,
                    ResumeReason::OtherEpoch,
                );
            }
            return if cursor > head {
                d(
                    ResumeMode::Snapshot,
                    head,
                    None,
                    false,
                    ResumeReason::AheadOfHead,
                )
            } else if cursor == head {
                d(ResumeMode::Resume, head, None, true, ResumeReason::AtHead)
            } else if cursor + 1 >= oldest {
                d(
                    ResumeMode::Resume,
                    cursor,
                    None,
                    true,
                    ResumeReason::InRange,
                )
            } else {
                d(
                    ResumeMode::Snapshot,
                    oldest - 1,
                    Some(cursor + 1..oldest),
                    false,
                    ResumeReason::TooOld,
                )
            };
        }
        if let Some(number) = req.from_block {
            if let Some(first) = self.first_seqno_of_block(number) {
                return d(
                    ResumeMode::Resume,
                    first - 1,
                    None,
                    true,
                    ResumeReason::BlockInRange,
                );
            }
            let seen = self
                .max_block_seen
                .or_else(|| self.history.as_ref().and_then(|h| h.bounds()?.1.last_block));
            return if seen.is_none_or(|m| number > m) {
                d(
                    ResumeMode::Resume,
                    head,
                    None,
                    true,
                    ResumeReason::BlockAhead,
                )
            } else {
                d(
                    ResumeMode::Snapshot,
                    oldest - 1,
                    None,
                    false,
                    ResumeReason::BlockTooOld,
                )
            };
        }
        d(ResumeMode::Snapshot, head, None, false, ResumeReason::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(start_after: u64, gap: Option<Range<u64>>) -> ResumeDecision {
        ResumeDecision {
            mode: ResumeMode::Snapshot,
            start_after,
            gap,
            recovered: false,
            reason: ResumeReason::TooOld,
        }
    }

    #[test]
    fn the_cursor_stops_before_a_gap_and_the_range_ends_at_the_head() {
        // Too old: the client's own cursor (40) until the Gap announces 41..=100.
        let d = decision(100, Some(41..101));
        assert_eq!(d.cursor(), 40);
        let info = d.info(7, 250);
        assert_eq!((info.from_seqno, info.to_seqno), (Some(101), Some(250)));
        assert_eq!((info.epoch, info.reason), (7, ResumeReason::TooOld));
        // Another epoch with frames evicted: cursor 0.
        assert_eq!(decision(100, Some(1..101)).cursor(), 0);
        // No gap: the cursor is where the replay starts; nothing to replay at the head.
        let d = decision(250, None);
        assert_eq!(d.cursor(), 250);
        assert_eq!(d.info(7, 250).from_seqno, None);
    }

    #[test]
    fn a_disabled_store_recovers_nothing_and_starts_at_the_head() {
        let d = ResumeDecision::disabled(9);
        assert_eq!(
            (d.mode, d.start_after, d.cursor(), d.recovered),
            (ResumeMode::Snapshot, 9, 9, false)
        );
        assert_eq!(d.reason.name(), "disabled");
    }
}
