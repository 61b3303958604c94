//! Per-session backpressure: a bounded queue of frames for one client, priority lanes that
//! shed the least important frames first, drop accounting with `Warning`s and `Shed`
//! reports, and the slow-client disconnect.
//!
//! Runs on shard cores, one [`SessionQueue`] per session; runtime-free
//! (frames, seqnos and `now` are arguments). A slow client costs only its own queue: when it
//! is full, new frames for that client are dropped and counted, never waited on
//! (docs/invariants.md#fast-5), and the client is told exactly which seqno range it lost
//! (docs/invariants.md#trust-2).
//!
//! **Lanes** ([`crate::model::lane`], docs/decisions/priority-lanes.md). Every frame has a
//! lane ([`QueueLimits::lanes`]; meta frames are always in the top lane). When the queue is
//! full, a frame makes room by evicting the newest queued frame of the lowest lane below its
//! own; when there is none, a frame of a lower lane is itself shed. Shed frames are never
//! counted as drops: they are reported per lane in `Shed` frames and never close the
//! session. Per lane, shed frames form runs `from..=to` in which every frame of that lane
//! was shed (a queued frame of the lane ends its run, and eviction takes the lane's newest
//! queued frame, so no frame of the lane in a run is ever delivered). Each run is reported
//! by one `Shed`, written before the first frame with a higher `server_seqno` than the
//! run's first: the session's cursor (what a resume continues from) therefore never passes
//! a shed frame that was not announced. Successive runs of one lane may nest (an eviction
//! reaches back behind an announced run), never share a frame.
//!
//! **The top lane** is the whole queue of before lanes (and, with [`LaneMap::SINGLE`], all
//! there is): a top-lane frame that finds the queue full of top-lane frames is dropped:
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
//! runs of events become `Events` batches, meta frames, warnings and shed reports their own
//! frames, all in one buffer for one write (docs/invariants.md#fast-8). It also keeps the
//! session's cursor (the last data seqno written), which per-connection messages carry.

use std::collections::VecDeque;

use crate::config::defaults;
use crate::model::lane::{Lane, LaneMap, LANE_COUNT};
use crate::model::outbound::{EncodedEvent, Outbound};
use crate::model::stage::CommitStage;
use crate::wire::protocol::messages::{self, ShedInfo, WarningInfo};
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
    /// The lane of each event type. Default [`LaneMap::DEFAULT`]; [`LaneMap::SINGLE`] turns
    /// lanes off.
    pub lanes: LaneMap,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            capacity: defaults::SESSION_QUEUE_FRAMES,
            warn_every: defaults::DROP_WARNING_EVERY,
            disconnect_after: defaults::DROP_DISCONNECT_AFTER,
            lanes: LaneMap::DEFAULT,
        }
    }
}

/// Outcome of offering one frame to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The frame was queued (perhaps by evicting a frame of a lower lane, which is shed).
    Queued,
    /// The queue was full of frames of this frame's lane and higher ones: it was shed and
    /// will be reported in a `Shed` frame.
    Shed,
    /// The queue was full: the frame was dropped and counted. `warning` is set when this
    /// drop completed a block of `warn_every` drops and a `Warning` was queued.
    Dropped { warning: Option<WarningInfo> },
    /// The drop limit is reached: close the session with 1008 and
    /// [`SessionQueue::disconnect_reason`].
    Disconnect,
}

#[derive(Debug)]
enum Entry {
    Frame(Outbound, Lane),
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
    /// Frames of each lane in `entries`.
    lane_frames: [usize; LANE_COUNT],
    /// Entries appended so far.
    pushed: u64,
    /// Per lane, a value of `pushed` after which no entry appended holds a frame of the
    /// lane: the `pushed - clean_after[l]` entries at the back are skipped when evicting the
    /// lane's newest frame (a queue that keeps evicting would otherwise scan past every
    /// frame kept since, again and again). May exceed what is still queued.
    clean_after: [u64; LANE_COUNT],
    /// Per lane, the run of shed frames still growing.
    shedding: [Option<Box<ShedInfo>>; LANE_COUNT],
    /// Finished runs not yet written.
    shed_reports: Vec<ShedInfo>,
    /// The lowest `from_seqno` of `shedding` and `shed_reports` (`u64::MAX`: none): no frame
    /// above it may be written before those reports.
    report_before: u64,
    total_shed: u64,
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
                lanes: limits.lanes,
            },
            entries: VecDeque::new(),
            frames: 0,
            lane_frames: [0; LANE_COUNT],
            pushed: 0,
            clean_after: [0; LANE_COUNT],
            shedding: [None, None, None],
            shed_reports: Vec::new(),
            report_before: u64::MAX,
            total_shed: 0,
            total_dropped: 0,
            unreported: None,
            warnings: 0,
            cursor,
        }
    }

    /// The lane of `frame` (meta frames: the top lane).
    pub fn lane_of(&self, frame: &Outbound) -> Lane {
        match frame {
            Outbound::Event(e) => self.limits.lanes.lane(e.keys.event_type),
            _ => Lane::Block,
        }
    }

    /// Offers a frame that matched this session's filter.
    pub fn offer(&mut self, frame: Outbound) -> Offer {
        if self.total_dropped >= self.limits.disconnect_after {
            return Offer::Disconnect;
        }
        let lane = self.lane_of(&frame);
        if self.frames >= self.limits.capacity {
            // Make room by shedding the lowest lane below this frame's, if one is queued.
            let victim = Lane::ALL[lane.index() + 1..]
                .iter()
                .rev()
                .find(|l| self.lane_frames[l.index()] > 0);
            match victim {
                Some(&victim) => self.evict_newest(victim),
                None if lane != Lane::Block => {
                    self.shed(lane, &frame);
                    return Offer::Shed;
                }
                None => return self.drop_top(frame.server_seqno()),
            }
        }
        // The loss ended: report what was not yet reported before newer frames.
        self.flush_warning();
        if let Some(run) = self.shedding[lane.index()].take() {
            // A frame of the lane is kept again: its run is complete.
            self.shed_reports.push(*run);
        }
        self.push(Entry::Frame(frame, lane));
        self.frames += 1;
        self.lane_frames[lane.index()] += 1;
        Offer::Queued
    }

    /// Appends `entry`, keeping `clean_after`.
    fn push(&mut self, entry: Entry) {
        self.pushed += 1;
        if let Entry::Frame(_, lane) = &entry {
            self.clean_after[lane.index()] = self.pushed;
        }
        self.entries.push_back(entry);
    }

    /// Drops a top-lane frame (the queue holds only top-lane frames).
    fn drop_top(&mut self, seqno: u64) -> Offer {
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

    /// Removes the newest queued frame of `lane` (which has one) and sheds it.
    fn evict_newest(&mut self, lane: Lane) {
        let len = self.entries.len();
        let clean_tail = self.pushed - self.clean_after[lane.index()];
        let skip = usize::try_from(clean_tail).map_or(len, |n| n.min(len));
        let at = self
            .entries
            .range(..len - skip)
            .rposition(|e| matches!(e, Entry::Frame(_, l) if *l == lane));
        // Everything behind the evicted frame holds no frame of its lane.
        let behind = at.map_or(0, |i| len - 1 - i);
        self.clean_after[lane.index()] = self.pushed - behind as u64;
        if let Some(Entry::Frame(frame, _)) = at.and_then(|i| self.entries.remove(i)) {
            self.frames -= 1;
            self.lane_frames[lane.index()] -= 1;
            self.shed(lane, &frame);
        }
    }

    /// Counts `frame` into its lane's current run of shed frames.
    fn shed(&mut self, lane: Lane, frame: &Outbound) {
        self.total_shed += 1;
        let run = self.shedding[lane.index()].get_or_insert_with(|| Box::new(ShedInfo::new(lane)));
        let seqno = frame.server_seqno();
        run.dropped += 1;
        run.from_seqno = run.from_seqno.min(seqno);
        run.to_seqno = run.to_seqno.max(seqno);
        if let Outbound::Event(e) = frame {
            run.ring_from_seqno = run.ring_from_seqno.min(e.ring_seqno);
            run.ring_to_seqno = run.ring_to_seqno.max(e.ring_seqno);
            let kind = &mut run.kinds[usize::from(e.keys.event_type.code())];
            *kind = kind.saturating_add(1);
        }
        self.report_before = self.report_before.min(run.from_seqno);
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
        self.push(Entry::Warning(w));
        self.warnings += 1;
        Some(w)
    }

    /// Keeps only the queued frames `keep` accepts (warnings always stay): a new
    /// subscription applies to every frame not yet written, so nothing selected by the old
    /// one follows its acknowledgement. Frames removed so are not losses (the client no
    /// longer asked for them) and are not counted as drops.
    pub fn retain_frames(&mut self, mut keep: impl FnMut(&Outbound) -> bool) {
        self.entries.retain(|entry| match entry {
            Entry::Frame(f, _) => keep(f),
            Entry::Warning(_) => true,
        });
        self.clean_after = [self.pushed; LANE_COUNT];
        self.lane_frames = [0; LANE_COUNT];
        for entry in &self.entries {
            if let Entry::Frame(_, lane) = entry {
                self.lane_frames[lane.index()] += 1;
            }
        }
        self.frames = self.lane_frames.iter().sum();
    }

    /// Frames waiting (warnings excluded).
    pub fn len(&self) -> usize {
        self.frames
    }

    /// Whether nothing (not even a warning or a finished shed report) is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.shed_reports.is_empty()
    }

    /// Frames shed on this session so far (all lanes).
    pub fn total_shed(&self) -> u64 {
        self.total_shed
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
    /// connection), or nothing when there is nothing to report. Shed runs still growing are
    /// completed and written before it. `total_dropped` then counts
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
                Entry::Frame(f, _) => {
                    let s = f.server_seqno();
                    widen(1, s, s);
                    self.total_dropped += 1;
                }
                Entry::Warning(w) => widen(w.dropped, w.dropped_from_seqno, w.dropped_to_seqno),
            }
        }
        self.frames = 0;
        self.lane_frames = [0; LANE_COUNT];
        // Runs still growing are complete: they are reported before the final warning.
        for run in self.shedding.iter_mut().filter_map(Option::take) {
            self.shed_reports.push(*run);
        }
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
            let front = self.entries.front();
            let due = match front {
                Some(Entry::Frame(f, _)) => f.server_seqno(),
                _ => 0,
            };
            if !self.shed_reports.is_empty() || due > self.report_before {
                w.frames += self.write_reports(due, batch, out);
            }
            let Some(front) = self.entries.front() else {
                break;
            };
            match front {
                Entry::Frame(Outbound::Event(first), _) => {
                    if first.gate == CommitStage::Proposed
                        && (w.oldest_live_ts_ns == 0 || first.timestamp_ns < w.oldest_live_ts_ns)
                    {
                        w.oldest_live_ts_ns = first.timestamp_ns;
                    }
                    // A batch stops before a frame that a shed report must precede (the
                    // front one never is: its reports were just written).
                    let before = self.report_before.max(due);
                    let run = self
                        .entries
                        .iter()
                        .map_while(as_event)
                        .take_while(|e| e.server_seqno <= before);
                    let b = batch.write_events(run, out);
                    self.drain_front(b.events);
                    self.cursor = self.cursor.max(b.server_seqno);
                    w.events += b.events;
                }
                Entry::Frame(Outbound::Meta(m), _) => {
                    batch.write_meta(m, out);
                    self.cursor = self.cursor.max(m.server_seqno);
                    self.drain_front(1);
                }
                // JSON-RPC frames have their own sessions (`serve::rpc`) and are never
                // offered here; one that got here is skipped.
                Entry::Frame(Outbound::Rpc(_), _) => {
                    self.drain_front(1);
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

    /// Removes the first `n` entries, all frames.
    fn drain_front(&mut self, n: usize) {
        for entry in self.entries.drain(..n) {
            if let Entry::Frame(_, lane) = entry {
                self.lane_frames[lane.index()] -= 1;
            }
        }
        self.frames -= n;
    }

    /// Writes every finished shed report, and completes and writes every run that began
    /// before `due` (the next frame to write). Returns the frames written.
    fn write_reports(&mut self, due: u64, batch: &BatchWriter, out: &mut impl FrameSink) -> usize {
        for slot in &mut self.shedding {
            if slot.as_ref().is_some_and(|run| run.from_seqno < due) {
                self.shed_reports.extend(slot.take().map(|run| *run));
            }
        }
        let n = self.shed_reports.len();
        for mut run in self.shed_reports.drain(..) {
            run.total_shed = self.total_shed;
            let shed = messages::shed(self.cursor, &run);
            out.put_with(|head| batch.framing().message(self.cursor, &shed, head));
        }
        self.report_before = self
            .shedding
            .iter()
            .flatten()
            .map(|run| run.from_seqno)
            .min()
            .unwrap_or(u64::MAX);
        n
    }
}

fn as_event(e: &Entry) -> Option<&EncodedEvent> {
    match e {
        Entry::Frame(Outbound::Event(ev), _) => Some(ev),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
