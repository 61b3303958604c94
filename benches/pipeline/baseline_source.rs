//! The baseline's ring tailer: reads the same ring format as ringgate (the ring module's
//! [`RingReader`]), decodes each event once to learn its flow context and filter keys, and
//! broadcasts an owned copy — payload bytes, descriptor, context — to every client task, which
//! serializes it again for itself ([`OwnedEvent::write_json`]).
//!
//! Runs on the baseline's dedicated `baseline-tailer` thread. Input: the ring file. Output:
//! `Arc<OwnedEvent>`s on the broadcast channel, plus counters for `/metrics`. Polls like the
//! existing gateway's reader: when nothing is ready it sleeps 100 µs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringgate::ingest::event::decode::decode;
use ringgate::ingest::event::flow::{EventContext, FlowConfig, FlowTracker};
use ringgate::ingest::event::json::{initial_stage, write_event, HexMemo};
use ringgate::ingest::event::keys::filter_keys;
use ringgate::ingest::ring::layout::Descriptor;
use ringgate::ingest::ring::{AttachError, ReadOutcome, Ring, RingReader, StartAt};
use ringgate::model::outbound::FilterKeys;
use ringgate::model::stage::CommitStage;
use tokio::sync::broadcast;

/// The existing gateway's reader idle sleep.
const IDLE_SLEEP: Duration = Duration::from_micros(100);

/// One ring event as every client task receives it: owned, not yet serialized.
#[derive(Debug)]
pub struct OwnedEvent {
    /// Stamped in ring order by the tailer; strictly increasing.
    pub server_seqno: u64,
    pub keys: FilterKeys,
    desc: Descriptor,
    ctx: EventContext,
    stage: Option<CommitStage>,
    payload: Box<[u8]>,
}

impl OwnedEvent {
    /// Appends this event's wire JSON object to `out` (decode + encode, per client: the
    /// existing gateway's per-client serialization). The payload decoded once already, so a
    /// failure here cannot happen; it would append nothing.
    /// `memo` is the client's own hex cache for block ids and transaction hashes.
    pub fn write_json(&self, out: &mut Vec<u8>, memo: &mut HexMemo) {
        if let Ok(event) = decode(self.desc.event_type, &self.payload) {
            write_event(out, memo, &self.desc, &self.ctx, &event, self.stage);
        }
    }
}

/// What `/metrics` reports.
#[derive(Debug, Default)]
pub struct TailCounters {
    pub head_ring_seqno: AtomicU64,
    pub gap_events: AtomicU64,
}

/// Tails `ring` forever, broadcasting every decodable event. Returns only if the ring
/// cannot be attached.
pub fn tail(
    ring: &Path,
    tx: &broadcast::Sender<Arc<OwnedEvent>>,
    counters: &TailCounters,
) -> Result<(), AttachError> {
    let mut reader = RingReader::new(Arc::new(Ring::open(ring)?), StartAt::NewestBlock);
    let mut flow = FlowTracker::new(FlowConfig::default());
    let mut server_seqno = 0u64;
    loop {
        let owned = match reader.try_next() {
            ReadOutcome::Ready(ev) => {
                counters
                    .head_ring_seqno
                    .store(ev.descriptor.seqno, Ordering::Relaxed);
                let Ok(decoded) = decode(ev.descriptor.event_type, ev.payload) else {
                    continue;
                };
                let ctx = flow.observe(&ev.descriptor, &decoded);
                server_seqno += 1;
                OwnedEvent {
                    server_seqno,
                    keys: filter_keys(&decoded, &ctx),
                    desc: ev.descriptor,
                    ctx,
                    stage: initial_stage(decoded.event_type(), &ctx),
                    payload: ev.payload.into(),
                }
            }
            ReadOutcome::NotReady => {
                std::thread::sleep(IDLE_SLEEP);
                continue;
            }
            ReadOutcome::Gap { missing } => {
                counters
                    .gap_events
                    .fetch_add(missing.end - missing.start, Ordering::Relaxed);
                counters
                    .head_ring_seqno
                    .store(missing.end.saturating_sub(1), Ordering::Relaxed);
                flow.reset();
                continue;
            }
            ReadOutcome::Expired { .. } | ReadOutcome::Malformed { .. } => continue,
        };
        // No receivers (no clients yet) is not an error for a broadcast server.
        let _ = tx.send(Arc::new(owned));
    }
}
