//! The tailer's end of one shard's SPSC queue, with the frames that shard missed.
//!
//! Runs on the tailer thread only. A live push never waits: a full queue loses the frame
//! for that shard, counted (`spsc_full`) and remembered as a seqno range; the next push that
//! finds room first sends one `Gap{reason:"shard_queue_full"}` for the whole range. History
//! (backlog, snapshot) waits a bounded time for room instead, and not at all once the
//! gateway is stopping (a stopped shard no longer drains its queue: waiting out the patience
//! for each frame of a burst held SIGTERM for minutes). Never blocks on a shard beyond
//! [`HISTORY_PUSH_PATIENCE`], never touches another shard's queue.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handoff::fanout::{FanoutSender, PushOutcome};
use crate::metrics::{bump, StatsHub};
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::Outbound;
use crate::wire::protocol::messages::gap_frame;

/// Longest wait for room in one shard's queue while loading history (backlog, snapshot);
/// past it the frame is counted lost for that shard as when live (a stuck shard must not
/// stall the others forever).
const HISTORY_PUSH_PATIENCE: Duration = Duration::from_secs(2);

/// Where one shard stands from the tailer's side.
#[derive(Debug)]
pub(super) struct ShardLink {
    pub(super) tx: FanoutSender,
    /// server_seqnos this shard missed because its inbox was full, not yet announced.
    pub(super) lost: Option<Range<u64>>,
    /// The gateway's shutdown flag: set, a history push no longer waits for room.
    stop: Arc<AtomicBool>,
}

/// How a push treats a full shard queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PushMode {
    /// Live: never wait; a full queue loses the frame for that shard (announced later).
    Live,
    /// History (backlog, snapshot): wait up to [`HISTORY_PUSH_PATIENCE`] for room.
    History,
}

impl ShardLink {
    pub(super) fn new(tx: FanoutSender, stop: Arc<AtomicBool>) -> ShardLink {
        ShardLink {
            tx,
            lost: None,
            stop,
        }
    }

    /// Pushes `frame`; first announces earlier losses when there is room again. The Gap frame
    /// carries the last lost seqno as its own `server_seqno`: it is below every later frame
    /// and above everything this shard delivered before, so per-connection order holds, and a
    /// client resuming from it misses nothing it was not told about.
    pub(super) fn push(
        &mut self,
        frame: &Outbound,
        stats: &StatsHub,
        index: usize,
        mode: PushMode,
    ) {
        if self.try_announce(stats, mode) == PushOutcome::Full {
            self.lose(frame.server_seqno(), stats, index);
            return;
        }
        if self.try_push(frame.clone(), mode) == PushOutcome::Full {
            self.lose(frame.server_seqno(), stats, index);
        }
    }

    /// Sends the pending loss announcement, if any, when the queue has room (the tailer calls
    /// it while the ring is idle, so a loss at the end of a burst is not held back until the
    /// next event).
    pub(super) fn announce_lost(&mut self, stats: &StatsHub) {
        let _ = self.try_announce(stats, PushMode::Live);
    }

    /// `Pushed` when nothing is pending or the Gap went out; `Full` when it is still pending.
    fn try_announce(&mut self, stats: &StatsHub, mode: PushMode) -> PushOutcome {
        let Some(lost) = self.lost.clone() else {
            return PushOutcome::Pushed;
        };
        let last = lost.end - 1;
        let g = Gap::seqnos(GapReason::ShardQueueFull, lost.start, last);
        let frame_gap = Outbound::Meta(Arc::new(gap_frame(last, &g)));
        if self.try_push(frame_gap, mode) == PushOutcome::Full {
            return PushOutcome::Full;
        }
        bump(&stats.tailer.gaps[GapReason::ShardQueueFull.index()], 1);
        self.lost = None;
        PushOutcome::Pushed
    }

    fn try_push(&self, frame: Outbound, mode: PushMode) -> PushOutcome {
        if mode == PushMode::Live {
            return self.tx.try_push(frame);
        }
        let deadline = Instant::now() + HISTORY_PUSH_PATIENCE;
        loop {
            if self.tx.try_push(frame.clone()) == PushOutcome::Pushed {
                return PushOutcome::Pushed;
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Relaxed) {
                return PushOutcome::Full;
            }
            std::thread::yield_now();
        }
    }

    fn lose(&mut self, seqno: u64, stats: &StatsHub, index: usize) {
        if let Some(s) = stats.shards.get(index) {
            bump(&s.spsc_full, 1);
        }
        self.lost = Some(match self.lost.take() {
            Some(r) => r.start..seqno + 1,
            None => seqno..seqno + 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::tailer::{EventPipeline, Loss};
    use crate::model::outbound::MetaKind;

    #[test]
    fn a_full_shard_gets_one_gap_for_everything_it_missed_once_it_has_room() {
        let hub = StatsHub::new(1, 0);
        let (tx, rx, _w) = crate::handoff::fanout::channel(1).unwrap();
        let mut link = ShardLink::new(tx, Arc::default());
        let mut pipeline = EventPipeline::default();
        let mut frames = Vec::new();
        for _ in 0..4 {
            pipeline.on_loss(&Loss::WriterRestart, &mut frames);
        }
        for f in &frames {
            link.push(f, &hub, 0, PushMode::Live);
        }
        // Capacity 1: seqno 1 queued, 2..=4 lost.
        assert_eq!(link.lost, Some(2..5));
        assert_eq!(hub.shards[0].spsc_full.load(Ordering::Relaxed), 3);
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .make()
            .unwrap();
        ex.run(async move {
            let mut inbox = rx.attach();
            let mut got = Vec::new();
            inbox.drain_into(&mut got, 10);
            assert_eq!(got.len(), 1);
            let mut next = Vec::new();
            pipeline.on_loss(&Loss::WriterRestart, &mut next);
            link.push(&next[0], &hub, 0, PushMode::Live);
            got.clear();
            // The gap went in; the new frame found the queue full again and is now lost.
            inbox.drain_into(&mut got, 10);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].server_seqno(), 4);
            assert!(matches!(&got[0], Outbound::Meta(m) if m.kind == MetaKind::Gap));
            assert_eq!(link.lost, Some(5..6));
        });
    }

    #[test]
    fn a_history_push_stops_waiting_for_a_full_shard_once_the_gateway_stops() {
        let hub = StatsHub::new(1, 0);
        let (tx, _rx, _w) = crate::handoff::fanout::channel(1).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut link = ShardLink::new(tx, Arc::clone(&stop));
        let mut pipeline = EventPipeline::default();
        let mut frames = Vec::new();
        for _ in 0..40 {
            pipeline.on_loss(&Loss::WriterRestart, &mut frames);
        }
        assert_eq!(frames.len(), 40);
        link.push(&frames[0], &hub, 0, PushMode::History);
        stop.store(true, Ordering::Relaxed);
        // The queue is full and nothing drains it (a stopped shard). Patient pushes would
        // take HISTORY_PUSH_PATIENCE each (80 s for these 40); once stopping, they are lost
        // at once, as live pushes are. The bound below is reached only by a failing test.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for f in &frames[1..] {
                link.push(f, &hub, 0, PushMode::History);
            }
            let _ = done_tx.send((
                link.lost.clone(),
                hub.shards[0].spsc_full.load(Ordering::Relaxed),
            ));
        });
        let (lost, full) = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("history pushes to a stopped shard returned");
        assert_eq!(full, 39);
        assert_eq!(lost, Some(2..41));
    }
}
