//! A restarted gateway (one with a history dir) rejoining the ring: where to read from, and
//! the warm-up that rebuilds chain state without serving anything twice.
//!
//! Invariant: seqnos continue after the journal's last in every case; events the ring still
//! holds are served once (no Gap); what the writer lapped is one `ring_lapped` Gap; a replaced
//! ring is one `writer_restart` Gap (docs/decisions/0003-durable-history.md).

use std::sync::Arc;

use super::{Loss, Tailer};
use crate::history::startup::RestartPoint;
use crate::ingest::ring::{ReadOutcome, Ring, RingReader, StartAt};
use crate::log::{self, Level};
use crate::metrics::bump;
use crate::model::seqno::PROVISIONAL_SEQNO_BASE;

impl Tailer {
    /// Decides where a restarted gateway reads the ring (`default` is where a fresh one
    /// would): when the ring still holds the last journaled event (same seqno, same
    /// timestamp), from `default` with everything up to that event re-read as warm-up (its
    /// frames thrown away, chain state rebuilt), so every later event is served once, no
    /// Gap; when the writer lapped it, the same with one `ring_lapped` Gap for exactly the
    /// events missed; when the ring is another (the writer restarted), a `writer_restart`
    /// Gap. Seqnos continue after the journal's last in every case.
    pub(super) fn restart_from(
        &mut self,
        ring: &Arc<Ring>,
        point: RestartPoint,
        default: StartAt,
    ) -> StartAt {
        let mut probe = RingReader::new(ring.clone(), StartAt::Seqno(point.last_ring_seqno));
        let same = match probe.try_next() {
            ReadOutcome::Ready(ev) => {
                ev.descriptor.seqno == point.last_ring_seqno
                    && ev.descriptor.record_epoch_nanos == point.last_ring_timestamp_ns
            }
            _ => false,
        };
        let lapped =
            !same && ring.last_seqno() > point.last_ring_seqno && point.last_ring_seqno > 0;
        log::event(
            Level::Info,
            "restart",
            &[
                ("server_seqno", point.last_server_seqno.into()),
                ("ring_seqno", point.last_ring_seqno.into()),
                (
                    "ring",
                    if same {
                        "continues"
                    } else if lapped {
                        "lapped"
                    } else {
                        "replaced"
                    }
                    .into(),
                ),
            ],
        );
        if same || point.last_ring_seqno == 0 {
            self.pipeline.continue_after(PROVISIONAL_SEQNO_BASE);
            self.warmup = Some(point);
            return default;
        }
        self.pipeline.continue_after(point.last_server_seqno);
        if lapped {
            // Everything after the restart point that the ring no longer holds.
            let oldest = RingReader::new(
                ring.clone(),
                StartAt::OldestBlock {
                    max_events: u64::MAX,
                },
            )
            .next_seqno()
            .max(point.last_ring_seqno + 1);
            bump(&self.stats.tailer.ring_gaps, 1);
            bump(
                &self.stats.tailer.ring_gap_events,
                oldest - point.last_ring_seqno - 1,
            );
            self.publish_loss(&Loss::RingLap {
                missing: point.last_ring_seqno + 1..oldest,
            });
            return StartAt::Seqno(oldest);
        }
        bump(&self.stats.tailer.writer_restarts, 1);
        self.publish_loss(&Loss::WriterRestart);
        default
    }

    /// Ends the restart warm-up: drops the `min_stage` copies it queued (they were served
    /// before the restart) and continues the journal's seqnos.
    pub(super) fn end_warmup(&mut self) {
        let Some(point) = self.warmup.take() else {
            return;
        };
        let mut discard = Vec::new();
        while self.pipeline.has_pending_releases() {
            let budget = self.pipeline.release_budget();
            self.pipeline.release(budget, &mut discard);
            discard.clear();
        }
        self.pipeline.continue_after(point.last_server_seqno);
        log::event(
            Level::Info,
            "restart_caught_up",
            &[("ring_seqno", point.last_ring_seqno.into())],
        );
    }
}
