//! What the tailer sends out: every frame to the write-ahead log, the history thread, the
//! NATS publisher and each shard, in that order ([`Tailer::flush`]); the `Gap`s of a loss;
//! `min_stage` copies in bounded releases; and the gauges and chain REST bodies it publishes
//! after block-level changes (never per event).
//!
//! Runs on the tailer core, as part of [`Tailer`]; the read loop is in the parent module.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::pipeline::Loss;
use super::shard_link::PushMode;
use super::Tailer;
use crate::log::{self, Level};
use crate::metrics::{bump, LIFECYCLE_STAGES};
use crate::model::gap::GapReason;
use crate::model::outbound::{MetaKind, Outbound};

/// Longest an idle-ring `min_stage` release waits for the shards to drain their queues.
const COPIES_WAIT_MAX: Duration = Duration::from_millis(2);

impl Tailer {
    /// Sends each shard's pending `shard_queue_full` Gap if its queue has room now.
    pub(super) fn announce_shard_losses(&mut self) {
        for link in &mut self.links {
            link.announce_lost(&self.stats);
        }
    }

    pub(super) fn publish_loss(&mut self, loss: &Loss) {
        if self.warmup.is_some() {
            self.end_warmup();
        }
        match loss {
            Loss::RingLap { missing } => log::event(
                Level::Warn,
                "gap",
                &[
                    ("reason", "ring_lapped".into()),
                    ("ring_from_seqno", missing.start.into()),
                    ("ring_to_seqno", missing.end.saturating_sub(1).into()),
                ],
            ),
            Loss::Expired { ring_seqno } => log::event(
                Level::Debug,
                "gap",
                &[
                    ("reason", "payload_expired".into()),
                    ("ring_seqno", (*ring_seqno).into()),
                ],
            ),
            Loss::WriterRestart => {}
        }
        let gaps = &self.stats.tailer.gaps;
        let before = self.out.len();
        self.pipeline.on_loss(loss, &mut self.out);
        if let Some(c) = gaps.get(loss.reason().index()) {
            bump(c, (self.out.len() - before) as u64);
        }
        self.flush(0);
        // A loss changes what the gate holds, never the lifecycle, TPS or contention state
        // the REST bodies show.
        self.publish_gate();
    }

    /// Makes and pushes up to `budget` queued `min_stage` copies; `ring_seqno` is the last
    /// event read (it decides whether they are history). Republishes the gate's gauges when
    /// the queue empties (a finished release frees its block); the REST bodies do not change
    /// with a release. Re-encoding them here cost a full encode of every body per ring event
    /// after a node restart: a re-executed block is final from its BLOCK_START, so each of
    /// its events is released at once and empties the queue again.
    pub(super) fn release(&mut self, budget: usize, ring_seqno: u64) {
        if self.pipeline.release(budget, &mut self.out) == 0 {
            return;
        }
        self.flush(ring_seqno);
        if !self.pipeline.has_pending_releases() {
            self.publish_gate();
        }
    }

    /// Whether the next idle-ring release may go out: every shard has taken what was pushed
    /// before (its queue is empty), or `waiting` began [`COPIES_WAIT_MAX`] ago (a shard that
    /// is not draining, e.g. starved of its core, must not hold every other shard's copies
    /// back: the gate's bounds would then drop blocks). `waiting` is the wait's start, kept
    /// by the caller between polls and cleared when a release may go.
    pub(super) fn shards_took_copies(&self, waiting: &mut Option<Instant>) -> bool {
        if self.links.iter().all(|l| l.tx.pending() == 0) {
            *waiting = None;
            return true;
        }
        let since = *waiting.get_or_insert_with(Instant::now);
        if since.elapsed() >= COPIES_WAIT_MAX {
            *waiting = None;
            return true;
        }
        false
    }

    /// Counts the `Lifecycle` frames about to go out, by stage reached.
    pub(super) fn count_transitions(&self) {
        for o in &self.out {
            if let Outbound::Meta(m) = o {
                if m.kind != MetaKind::Lifecycle {
                    continue;
                }
                let i = LIFECYCLE_STAGES.iter().position(|s| Some(*s) == m.stage);
                if let Some(c) = i.and_then(|i| self.stats.tailer.lifecycle_transitions.get(i)) {
                    bump(c, 1);
                }
            }
        }
    }

    /// Re-encodes the chain REST bodies and publishes them with the gate's gauges. Called
    /// only after block-level changes (a few times per block): it formats every tracked
    /// block's summary, so calling it per event would cost the tailer its ingest rate.
    pub(super) fn publish_chain(&self) {
        self.publish_gate();
        self.stats.chain.publish(self.pipeline.bodies());
    }

    /// Publishes the gate's gauges and the gap counts it keeps (a few atomic stores).
    pub(super) fn publish_gate(&self) {
        let t = &self.stats.tailer;
        let chain = self.pipeline.chain();
        let gate = chain.gate();
        let g = gate.stats();
        t.gate_held_blocks
            .store(gate.held_blocks() as u64, Ordering::Relaxed);
        t.gate_held_bytes
            .store(gate.held_bytes() as u64, Ordering::Relaxed);
        t.gate_overflow_blocks
            .store(g.overflow_blocks, Ordering::Relaxed);
        t.gate_released_copies
            .store(g.released_copies, Ordering::Relaxed);
        t.gaps[GapReason::StageGateOverflow.index()].store(g.overflow_blocks, Ordering::Relaxed);
        t.gaps[GapReason::UnresolvedBlock.index()].store(g.unresolved_blocks, Ordering::Relaxed);
    }

    /// Pushes the pending frames to every shard, in order, and publishes the head. `ring_seqno`
    /// is the ring event they came from (0 for losses): history is pushed patiently.
    pub(super) fn flush(&mut self, ring_seqno: u64) {
        if self.warmup.is_some() {
            // Re-read events the journal already holds: their frames were served before.
            self.out.clear();
            return;
        }
        let mode = if self.snapshot || (ring_seqno != 0 && ring_seqno <= self.history_until) {
            PushMode::History
        } else {
            PushMode::Live
        };
        if let Some(h) = &self.history {
            if let Some(wal) = &mut self.wal {
                wal.reclaim(h.history().sealed_head());
            }
        }
        for frame in self.out.drain(..) {
            // Journal first (the write-ahead copy is what a killed gateway recovers), then
            // the history thread, then the shards: no client sees a frame the journal lacks.
            if let Some(wal) = &mut self.wal {
                if !wal.append(&frame) {
                    bump(&self.stats.tailer.history_wal_full, 1);
                }
            }
            if let Some(h) = &mut self.history {
                h.push(&frame);
            }
            if let Some(b) = &mut self.bus {
                b.push(&frame);
            }
            for (i, link) in self.links.iter_mut().enumerate() {
                link.push(&frame, &self.stats, i, mode);
            }
        }
        let head = self.pipeline.head();
        let t = &self.stats.tailer;
        t.head_server_seqno.store(head, Ordering::Relaxed);
        if head != 0 {
            let window = self.config.resume_window_frames.max(1) as u64;
            t.oldest_server_seqno
                .store(head.saturating_sub(window - 1).max(1), Ordering::Relaxed);
        }
    }
}
