//! The replay cursor: one session's flow-controlled walk through the resume store and the
//! shared history behind it, a chunk at a time, announcing every hole before the frames after
//! it (the handoff rule is on [`ReplayCursor`]).

use std::ops::Range;
use std::sync::Arc;

use super::ResumeStore;
use crate::history::store::{ChunkRead, DecodedChunk};
use crate::model::outbound::{MetaKind, Outbound};
use sonic_rs::JsonValueTrait;

/// What one [`ReplayCursor::next_chunk`] call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayChunk {
    /// Frames the cursor needed were evicted while the session replayed slowly: announce
    /// this half-open range as a `Gap` (the cursor skipped to the oldest stored frame).
    pub lost: Option<Range<u64>>,
    /// Frames appended to the output.
    pub delivered: usize,
    /// The cursor reached the store's head: switch to live (see [`ReplayCursor`]).
    pub caught_up: bool,
}

/// Whether `f` is a `Gap` frame stamped with the last seqno of its own range, that range
/// starting at or before `from`: an edge's `bus_lost` Gap for seqnos the stream does not
/// hold (crate::ingest::tailer::edge), which the history stores in place of those seqnos.
/// Replaying it announces the hole; a `resume_window` Gap for the same seqnos would say
/// it twice, with the wrong reason. Parses JSON only for a Gap frame after a hole.
fn announces_hole_before(f: &Outbound, from: u64) -> bool {
    let Outbound::Meta(m) = f else {
        return false;
    };
    if m.kind != MetaKind::Gap || m.server_seqno <= from {
        return false;
    }
    let Ok(v) = sonic_rs::from_slice::<sonic_rs::Value>(&m.frame) else {
        return false;
    };
    let seqno = |key: &str| {
        v.get("Gap")
            .and_then(|g| g.get(key))
            .and_then(|n| n.as_u64())
    };
    seqno("to_seqno") == Some(m.server_seqno) && seqno("from_seqno").is_some_and(|s| s <= from)
}

/// A session's position in a replay from the resume store (and the history behind it).
///
/// Handoff rule (no duplicate, no hole): the shard appends every frame to its store before
/// any session sees it. While replaying, a session does not deliver live frames (they are
/// in the store and the cursor will reach them). Once a chunk reports `caught_up`, the
/// session goes live and delivers only live frames with `seqno > position()`; any with
/// `seqno ≤ position()` were already replayed or filtered out.
///
/// Frames older than the shard's store come from the history, one decoded chunk at a time
/// (held by the cursor while it reads it). Seqnos the history lacks (a chunk that failed its
/// checksum, frames dropped before they reached it, copies whose original was retired) are
/// reported as `lost`, before any frame after them.
#[derive(Debug, Clone)]
pub struct ReplayCursor {
    after: u64,
    chunk: Option<Arc<DecodedChunk>>,
}

impl PartialEq for ReplayCursor {
    fn eq(&self, other: &ReplayCursor) -> bool {
        self.after == other.after
    }
}

impl ReplayCursor {
    /// A cursor that replays frames with seqno `> start_after`
    /// ([`ResumeDecision::start_after`](super::ResumeDecision::start_after)).
    pub fn new(start_after: u64) -> ReplayCursor {
        ReplayCursor {
            after: start_after,
            chunk: None,
        }
    }

    /// The last seqno examined (delivered or filtered out).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// Appends to `out` up to `max_frames` frames after the position that satisfy
    /// `matches`, examining at most `max_scan` frames (so a very selective filter still
    /// costs a bounded step), and advances the position past everything examined. A lost
    /// range is reported only before any frame (the caller queues its `Gap` first): one met
    /// after delivering ends the call.
    pub fn next_chunk(
        &mut self,
        store: &ResumeStore,
        max_frames: usize,
        max_scan: usize,
        mut matches: impl FnMut(&Outbound) -> bool,
        out: &mut Vec<Outbound>,
    ) -> ReplayChunk {
        let mut lost: Option<Range<u64>> = None;
        let (mut delivered, mut scanned) = (0, 0);
        // Skips the cursor to `to` (exclusive) as a loss; false when frames were already
        // delivered in this call (the loss waits for the next one).
        let mut lose = |after: &mut u64, to: u64, delivered: usize| -> bool {
            if to <= *after + 1 {
                return true;
            }
            if delivered > 0 {
                return false;
            }
            lost = Some(match lost.take() {
                Some(r) => r.start..to,
                None => *after + 1..to,
            });
            *after = to - 1;
            true
        };
        let oldest = store.oldest_seqno();
        lose(&mut self.after, oldest, 0);
        'outer: while delivered < max_frames && scanned < max_scan {
            let memory_oldest = store.memory_oldest_seqno();
            let history = match &store.history {
                Some(h) if self.after + 1 < memory_oldest => h,
                _ => break,
            };
            let chunk = match self.chunk.take() {
                Some(c) if c.meta.last_seqno > self.after => c,
                _ => match history.chunk_after(self.after) {
                    ChunkRead::Chunk(c) => c,
                    ChunkRead::Lost(meta) => {
                        if !lose(&mut self.after, meta.last_seqno + 1, delivered) {
                            break;
                        }
                        continue;
                    }
                    ChunkRead::End => {
                        if !lose(&mut self.after, memory_oldest, delivered) {
                            break;
                        }
                        break;
                    }
                },
            };
            let start = chunk
                .frames
                .partition_point(|f| f.server_seqno() <= self.after);
            for f in &chunk.frames[start..] {
                if delivered >= max_frames || scanned >= max_scan {
                    self.chunk = Some(chunk);
                    break 'outer;
                }
                if announces_hole_before(f, self.after + 1) {
                    // The hole is this frame's own range: it is the announcement.
                    self.after = f.server_seqno() - 1;
                }
                if !lose(&mut self.after, f.server_seqno(), delivered) {
                    self.chunk = Some(chunk);
                    break 'outer;
                }
                scanned += 1;
                self.after = f.server_seqno();
                if matches(f) {
                    out.push(f.clone());
                    delivered += 1;
                }
            }
            // Seqnos of the chunk's range it could not rebuild.
            if !lose(&mut self.after, chunk.meta.last_seqno + 1, delivered) {
                break;
            }
        }
        if self.after + 1 >= store.memory_oldest_seqno() {
            let mut i = store.position_after(self.after);
            while delivered < max_frames && scanned < max_scan {
                let Some(f) = store.get(i) else {
                    break;
                };
                i += 1;
                scanned += 1;
                self.after = f.server_seqno();
                if matches(f) {
                    out.push(f.clone());
                    delivered += 1;
                }
            }
        }
        ReplayChunk {
            lost,
            delivered,
            caught_up: self.after >= store.head(),
        }
    }
}
