//! Per-session backpressure: a bounded queue of frames for one client, drop accounting with
//! `Warning`s, and the slow-client disconnect.
//!
//! Runs on shard cores, one [`SessionQueue`] per session; runtime-free
//! (frames, seqnos and `now` are arguments). A slow client costs only its own queue: when it
//! is full, new frames for that client are dropped and counted, never waited on
//! (docs/invariants.md#fast-5), and the client is told exactly which seqno range it lost
//! (docs/invariants.md#trust-2):
//! - every [`QueueLimits::warn_every`] drops, and at the end of every run of drops, a
//!   `Warning` with the dropped range since the previous warning is queued (outside the
//!   capacity, so it is never itself dropped) and reaches the client in order, right after
//!   the frames that preceded the loss;
//! - at [`QueueLimits::disconnect_after`] total drops the session is closed with 1008;
//!   [`SessionQueue::close_out`] then discards what is still queued and leaves one final
//!   `Warning` naming everything the client will not get on this connection, so the client
//!   reads: the frames already in flight, that warning, the close frame.
//!
//! [`SessionQueue::write_pending`] drains the queue into the session's outgoing buffer:
//! runs of events become `Events` batches, meta frames and warnings their own frames, all in
//! one buffer for one write (docs/invariants.md#fast-8). It also keeps the session's cursor (the last
//! data seqno written), which per-connection messages carry.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::defaults;
use crate::model::outbound::{EncodedEvent, Outbound};
use crate::model::stage::CommitStage;
use crate::wire::protocol::messages::{self, WarningInfo};
use crate::wire::protocol::{BatchWriter, FrameSink};

/// Bounds of one session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Frames queued before drops start. Default 4,096 (about 2 MB of shared event bytes at
    /// 524 B per event; the bytes are `Arc`-shared, so the queue itself costs 16 B a frame).
    pub capacity: usize,
    /// Drops per `Warning`. Default 1,000.
    pub warn_every: u64,
    /// Total drops at which the session is closed. Default 10,000.
    pub disconnect_after: u64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            capacity: defaults::SESSION_QUEUE_FRAMES,
            warn_every: defaults::DROP_WARNING_EVERY,
            disconnect_after: defaults::DROP_DISCONNECT_AFTER,
        }
    }
}

/// Outcome of offering one frame to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue was full: the frame was dropped and counted. `warning` is set when this
    /// drop completed a block of `warn_every` drops and a `Warning` was queued.
    Dropped {
        warning: Option<WarningInfo>,
    },
    /// The drop limit is reached: close the session with 1008 and
    /// [`SessionQueue::disconnect_reason`].
    Disconnect,
}

#[derive(Debug)]
enum Entry {
    Frame(Outbound),
    Warning(WarningInfo),
}

/// Drops not yet reported in a warning.
#[derive(Debug, Clone, Copy)]
struct Unreported {
    count: u64,
    from: u64,
    to: u64,
}

/// What [`SessionQueue::write_pending`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// WebSocket frames appended.
    pub frames: usize,
    /// Events delivered in them.
    pub events: usize,
    /// Bytes appended.
    pub bytes: usize,
    /// Ring timestamp (`timestamp_ns`) of the oldest live (`Proposed`) event written, 0 when
    /// none: the ring → send latency sample of this write.
    pub oldest_live_ts_ns: u64,
}

/// One session's bounded frame queue.
#[derive(Debug)]
pub struct SessionQueue {
    limits: QueueLimits,
    entries: VecDeque<Entry>,
    /// Frames (not warnings) in `entries`.
    frames: usize,
    total_dropped: u64,
    unreported: Option<Unreported>,
    warnings: u64,
    cursor: u64,
}

impl SessionQueue {
    /// An empty queue whose cursor starts at `cursor` (the head at connect, or the client's
    /// resume cursor).
    pub fn new(limits: QueueLimits, cursor: u64) -> SessionQueue {
        SessionQueue {
            limits: QueueLimits {
                capacity: limits.capacity.max(1),
                warn_every: limits.warn_every.max(1),
                disconnect_after: limits.disconnect_after.max(1),
            },
            entries: VecDeque::new(),
            frames: 0,
            total_dropped: 0,
            unreported: None,
            warnings: 0,
            cursor,
        }
    }

    /// Offers a frame that matched this session's filter.
    pub fn offer(&mut self, frame: Outbound) -> Offer {
        if self.total_dropped >= self.limits.disconnect_after {
            return Offer::Disconnect;
        }
        if self.frames < self.limits.capacity {
            // The loss ended: report what was not yet reported before newer frames.
            self.flush_warning();
            self.entries.push_back(Entry::Frame(frame));
            self.frames += 1;
            return Offer::Queued;
        }
        let seqno = frame.server_seqno();
        self.total_dropped += 1;
        let u = self.unreported.get_or_insert(Unreported {
            count: 0,
            from: seqno,
            to: seqno,
        });
        u.count += 1;
        u.to = seqno;
        if self.total_dropped >= self.limits.disconnect_after {
            return Offer::Disconnect;
        }
        let warning = if u.count >= self.limits.warn_every {
            self.flush_warning()
        } else {
            None
        };
        Offer::Dropped { warning }
    }

    fn flush_warning(&mut self) -> Option<WarningInfo> {
        let u = self.unreported.take()?;
        let w = WarningInfo {
            dropped: u.count,
            total_dropped: self.total_dropped,
            drop_limit: self.limits.disconnect_after,
            dropped_from_seqno: u.from,
            dropped_to_seqno: u.to,
        };
        self.entries.push_back(Entry::Warning(w));
        self.warnings += 1;
        Some(w)
    }

    /// Keeps only the queued frames `keep` accepts (warnings always stay): a new
    /// subscription applies to every frame not yet written, so nothing selected by the old
    /// one follows its acknowledgement. Frames removed so are not losses (the client no
    /// longer asked for them) and are not counted as drops.
    pub fn retain_frames(&mut self, mut keep: impl FnMut(&Outbound) -> bool) {
        self.entries.retain(|entry| match entry {
            Entry::Frame(f) => keep(f),
            Entry::Warning(_) => true,
        });
        self.frames = self
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Frame(_)))
            .count();
    }

    /// Frames waiting (warnings excluded).
    pub fn len(&self) -> usize {
        self.frames
    }

    /// Whether nothing (not even a warning) is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frames dropped on this session so far.
    pub fn total_dropped(&self) -> u64 {
        self.total_dropped
    }

    /// Warnings queued so far.
    pub fn warnings(&self) -> u64 {
        self.warnings
    }

    /// The last data `server_seqno` written for this session (or the starting cursor):
    /// the seqno per-connection messages carry.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Whether the drop limit was reached (the session is being closed for it).
    pub fn is_disconnected(&self) -> bool {
        self.total_dropped >= self.limits.disconnect_after
    }

    /// Ends a session closed for being slow: discards every queued entry and queues one
    /// final `Warning` whose range covers the frames discarded, the drops not yet reported
    /// and any warning not yet written (the client will not get any of them on this
    /// connection), or nothing when there is nothing to report. `total_dropped` then counts
    /// the discarded frames too. What the writer already took is not affected: it is in
    /// flight and reaches the client before this warning.
    pub fn close_out(&mut self) -> Option<WarningInfo> {
        let mut lost = self.unreported.take();
        let mut widen = |count: u64, from: u64, to: u64| {
            let u = lost.get_or_insert(Unreported { count: 0, from, to });
            u.count += count;
            u.from = u.from.min(from);
            u.to = u.to.max(to);
        };
        for entry in self.entries.drain(..) {
            match entry {
                Entry::Frame(f) => {
                    let s = f.server_seqno();
                    widen(1, s, s);
                    self.total_dropped += 1;
                }
                Entry::Warning(w) => widen(w.dropped, w.dropped_from_seqno, w.dropped_to_seqno),
            }
        }
        self.frames = 0;
        self.unreported = lost;
        self.flush_warning()
    }

    /// The close reason for [`Offer::Disconnect`] (sent with close code 1008).
    pub fn disconnect_reason(&self) -> String {
        format!("slow client: {} frames dropped", self.total_dropped)
    }

    /// Appends everything pending to `out` (events batched by `batch`) until the queue is
    /// empty or `out` holds at least `max_out_bytes`; the rest stays queued for the next
    /// write. Advances the cursor.
    pub fn write_pending(
        &mut self,
        batch: &BatchWriter,
        out: &mut impl FrameSink,
        max_out_bytes: usize,
    ) -> Written {
        let mut w = Written::default();
        let start = out.byte_len();
        while out.byte_len() < max_out_bytes {
            let Some(front) = self.entries.front() else {
                break;
            };
            match front {
                Entry::Frame(Outbound::Event(first)) => {
                    if first.gate == CommitStage::Proposed
                        && (w.oldest_live_ts_ns == 0 || first.timestamp_ns < w.oldest_live_ts_ns)
                    {
                        w.oldest_live_ts_ns = first.timestamp_ns;
                    }
                    let run = self.entries.iter().map_while(as_event);
                    let b = batch.write_events(run, out);
                    self.entries.drain(..b.events);
                    self.frames -= b.events;
                    self.cursor = self.cursor.max(b.server_seqno);
                    w.events += b.events;
                }
                Entry::Frame(Outbound::Meta(m)) => {
                    batch.write_meta(m, out);
                    self.cursor = self.cursor.max(m.server_seqno);
                    self.entries.pop_front();
                    self.frames -= 1;
                }
                // JSON-RPC frames have their own sessions (`serve::rpc`) and are never
                // offered here; one that got here is skipped.
                Entry::Frame(Outbound::Rpc(_)) => {
                    self.entries.pop_front();
                    self.frames -= 1;
                    continue;
                }
                Entry::Warning(info) => {
                    let warning = messages::warning(self.cursor, info);
                    out.put_with(|head| batch.framing().message(self.cursor, &warning, head));
                    self.entries.pop_front();
                }
            }
            w.frames += 1;
        }
        w.bytes = out.byte_len() - start;
        w
    }
}

fn as_event(e: &Entry) -> Option<&Arc<EncodedEvent>> {
    match e {
        Entry::Frame(Outbound::Event(ev)) => Some(ev),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
