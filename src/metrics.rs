//! Counters the tailer and the shards publish, and the Prometheus text rendering of them.
//!
//! Each counter has exactly one writer: the tailer writes [`TailerStats`], shard `i` writes
//! `ShardStats[i]`. Writers use relaxed atomic stores/adds on their own cache lines, so the
//! hot path takes no lock and never touches another core's data; readers (REST on any shard)
//! load the atomics and sum over shards. Values are monotonic counters unless named gauges.
//!
//! Rendering is runtime-free: [`render_prometheus`] takes snapshots and `now`.
//! Must never: lock, allocate on the hot path (only rendering allocates).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::handoff::published::ChainSlot;
use crate::history::store::History;
use crate::model::gap::GapReason;
use crate::model::kind::DecodeErrorKind;
use crate::model::kind::EVENT_TYPE_COUNT;
use crate::model::seqno::Epoch;
use crate::model::stage::CommitStage;
use crate::wire::http::auth::AuthKeys;
use crate::wire::subscription::channel::Channel;

/// Lifecycle stages in the order of `TailerStats::lifecycle_transitions`.
pub const LIFECYCLE_STAGES: [CommitStage; 6] = CommitStage::ALL;

/// Number of gap reasons (`GapReason::ALL`).
pub const GAP_REASONS: usize = GapReason::ALL.len();

/// What the tailer last learned about the ring's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RingState {
    /// Not attached yet (starting, or the file does not exist).
    Waiting = 0,
    /// A live writer is producing.
    Live = 1,
    /// The writer process is gone; the tailer polls for a new file.
    Gone = 2,
    /// A snapshot is being replayed.
    Replay = 3,
    /// A snapshot replay reached its end.
    ReplayDone = 4,
}

impl RingState {
    fn from_u8(v: u8) -> RingState {
        match v {
            1 => RingState::Live,
            2 => RingState::Gone,
            3 => RingState::Replay,
            4 => RingState::ReplayDone,
            _ => RingState::Waiting,
        }
    }

    /// Lower-case label used in JSON and metrics.
    pub fn label(self) -> &'static str {
        match self {
            RingState::Waiting => "waiting",
            RingState::Live => "live",
            RingState::Gone => "gone",
            RingState::Replay => "replay",
            RingState::ReplayDone => "replay_done",
        }
    }
}

/// Written by the tailer only.
#[derive(Debug)]
pub struct TailerStats {
    /// Gauge: ring seqno of the last event read and handed to the shards (with its frames).
    pub head_ring_seqno: AtomicU64,
    /// Gauge: last server_seqno stamped.
    pub head_server_seqno: AtomicU64,
    /// Gauge: ring `record_epoch_nanos` of the last event.
    pub last_event_ts_ns: AtomicU64,
    /// Gauge: wall clock (ns since epoch) when the last event was read.
    pub last_event_read_ns: AtomicU64,
    /// Events read, by event type code.
    pub events_in: [AtomicU64; EVENT_TYPE_COUNT],
    /// Descriptors with an unknown type code or undecodable payload (skipped).
    pub events_bad: AtomicU64,
    /// Ring gaps (tailer lapped) and the events they lost.
    pub ring_gaps: AtomicU64,
    pub ring_gap_events: AtomicU64,
    /// Payloads overwritten before they could be copied.
    pub expired: AtomicU64,
    /// Writer restarts seen (reattached to a new ring).
    pub writer_restarts: AtomicU64,
    /// Undecodable payloads by kind (index = `DecodeErrorKind as usize`).
    pub decode_failures: [AtomicU64; DecodeErrorKind::ALL.len()],
    /// `Gap` frames the tailer made, by reason (index = `GapReason::index`).
    pub gaps: [AtomicU64; GAP_REASONS],
    /// `Lifecycle` transitions emitted, by target stage (index into `LIFECYCLE_STAGES`).
    pub lifecycle_transitions: [AtomicU64; LIFECYCLE_STAGES.len()],
    /// Gauges: blocks and JSON bytes the stage gate holds for `min_stage` streams.
    pub gate_held_blocks: AtomicU64,
    pub gate_held_bytes: AtomicU64,
    /// Blocks the stage gate had to push out before their release (each announced by a Gap).
    pub gate_overflow_blocks: AtomicU64,
    /// Released `min_stage` copies made.
    pub gate_released_copies: AtomicU64,
    /// Events of the startup backlog (complete blocks already in the ring when attaching).
    pub backlog_events: AtomicU64,
    /// Gauge: first server_seqno of this epoch that is still within `resume_store_frames`
    /// of the head (the tailer's view of the oldest resumable frame; 0 = none yet).
    pub oldest_server_seqno: AtomicU64,
    /// Frames the write-ahead log refused (full: the history thread is behind).
    pub history_wal_full: AtomicU64,
    ring_state: AtomicU8,
    /// Why the ring cannot be attached, while it cannot (`None` once attached). Written by
    /// the tailer only when the reason changes, read by `/health` and `/v1/status`: a lock
    /// that is never on the event path.
    ring_error: Mutex<Option<RingError>>,
}

/// Why the tailer cannot attach the ring, as REST reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingError {
    /// A short stable label (`not_found`, `wrong_schema`, `permission_denied`, …).
    pub kind: &'static str,
    /// The full message: which file, what was expected and what was found, the remedy.
    pub message: String,
}

impl Default for TailerStats {
    fn default() -> TailerStats {
        TailerStats {
            head_ring_seqno: AtomicU64::new(0),
            head_server_seqno: AtomicU64::new(0),
            last_event_ts_ns: AtomicU64::new(0),
            last_event_read_ns: AtomicU64::new(0),
            events_in: std::array::from_fn(|_| AtomicU64::new(0)),
            events_bad: AtomicU64::new(0),
            ring_gaps: AtomicU64::new(0),
            ring_gap_events: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            writer_restarts: AtomicU64::new(0),
            decode_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            gaps: std::array::from_fn(|_| AtomicU64::new(0)),
            lifecycle_transitions: std::array::from_fn(|_| AtomicU64::new(0)),
            gate_held_blocks: AtomicU64::new(0),
            gate_held_bytes: AtomicU64::new(0),
            gate_overflow_blocks: AtomicU64::new(0),
            gate_released_copies: AtomicU64::new(0),
            backlog_events: AtomicU64::new(0),
            oldest_server_seqno: AtomicU64::new(0),
            history_wal_full: AtomicU64::new(0),
            ring_state: AtomicU8::new(RingState::Waiting as u8),
            ring_error: Mutex::new(None),
        }
    }
}

impl TailerStats {
    /// Current ring state.
    pub fn ring_state(&self) -> RingState {
        RingState::from_u8(self.ring_state.load(Ordering::Relaxed))
    }

    /// Why the ring cannot be attached now, if it cannot.
    pub fn ring_error(&self) -> Option<RingError> {
        self.ring_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records (or, with `None`, clears) why the ring cannot be attached; returns whether
    /// that changed anything, so the caller logs each change of reason once (tailer only).
    pub fn set_ring_error(&self, error: Option<RingError>) -> bool {
        let mut slot = self.ring_error.lock().unwrap_or_else(|e| e.into_inner());
        if *slot == error {
            return false;
        }
        *slot = error;
        true
    }

    /// Publishes the ring state (tailer only).
    pub fn set_ring_state(&self, state: RingState) {
        self.ring_state.store(state as u8, Ordering::Relaxed);
    }

    /// Total events read over all types.
    pub fn events_in_total(&self) -> u64 {
        self.events_in
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

mod latency;
mod prometheus;

pub use latency::{LatencyHistogram, LATENCY_LIVE_MAX_NS};
pub use prometheus::render_prometheus;

/// Written by one shard only.
#[derive(Debug)]
pub struct ShardStats {
    /// Gauge: open WebSocket sessions by channel (index = `Channel::index`).
    pub sessions_by_channel: [AtomicU64; Channel::ALL.len()],
    /// Gauge: open connections of any kind.
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Connections refused: limits, bad requests, handshake timeouts.
    pub connections_rejected: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    /// Entries popped from this shard's SPSC queue.
    pub inbox_frames: AtomicU64,
    /// Entries the tailer could not push because this shard's queue was full.
    pub spsc_full: AtomicU64,
    /// Of those, frames read back from the history and delivered after all
    /// (`crate::serve::repair`).
    pub repaired_frames: AtomicU64,
    /// WebSocket frames and payload bytes written to clients, and the writes carrying them.
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub writes: AtomicU64,
    /// Events delivered inside `Events` frames.
    pub events_out: AtomicU64,
    /// Frames dropped for slow clients, and the clients closed for it.
    pub drops: AtomicU64,
    pub slow_disconnects: AtomicU64,
    /// Frames of lower priority lanes shed for slow clients (reported in `Shed` frames).
    pub shed: AtomicU64,
    /// Client protocol errors that closed a session (by close code family).
    pub protocol_closes: AtomicU64,
    /// Error frames sent for bad subscriptions (session kept).
    pub error_frames: AtomicU64,
    /// REST requests answered.
    pub rest_requests: AtomicU64,
    /// permessage-deflate: messages compressed, messages whose compressed bytes were reused
    /// from the shard's cache, and payload bytes in / compressed bytes out over both.
    pub deflate_compressed: AtomicU64,
    pub deflate_reused: AtomicU64,
    pub deflate_bytes_in: AtomicU64,
    pub deflate_bytes_out: AtomicU64,
    /// Gauge: open JSON-RPC sessions (`/rpc`, `--rpc-listen`).
    pub rpc_sessions: AtomicU64,
    /// JSON-RPC requests answered, and `eth_subscription` notifications written.
    pub rpc_requests: AtomicU64,
    pub rpc_notifications: AtomicU64,
    /// Gauges: this shard's resume store: oldest and newest stored `server_seqno` (0 while
    /// empty), frames stored and frame bytes kept alive.
    pub resume_oldest_seqno: AtomicU64,
    pub resume_newest_seqno: AtomicU64,
    pub resume_frames: AtomicU64,
    pub resume_bytes: AtomicU64,
    /// Connections that asked to resume (`resume_from` / `from_block`), and those of them
    /// told `recovered: false`.
    pub resume_requests: AtomicU64,
    pub resume_unrecovered: AtomicU64,
    /// Frames replayed from the store to resuming sessions.
    pub replayed_frames: AtomicU64,
    /// Gaps a session made itself (`slow_client`, `resume_window`), by reason (index =
    /// `GapReason::index`); summed with the tailer's in `/metrics`.
    pub gaps: [AtomicU64; GAP_REASONS],
    /// Ring → send latency: per socket write, now minus the ring timestamp of the oldest
    /// live event in it.
    pub latency: LatencyHistogram,
}

impl Default for ShardStats {
    fn default() -> ShardStats {
        let z = || AtomicU64::new(0);
        ShardStats {
            sessions_by_channel: std::array::from_fn(|_| z()),
            connections_open: z(),
            connections_accepted: z(),
            connections_rejected: z(),
            handshake_timeouts: z(),
            inbox_frames: z(),
            spsc_full: z(),
            repaired_frames: z(),
            frames_out: z(),
            bytes_out: z(),
            writes: z(),
            events_out: z(),
            drops: z(),
            slow_disconnects: z(),
            shed: z(),
            protocol_closes: z(),
            error_frames: z(),
            rest_requests: z(),
            deflate_compressed: z(),
            deflate_reused: z(),
            deflate_bytes_in: z(),
            deflate_bytes_out: z(),
            rpc_sessions: z(),
            rpc_requests: z(),
            rpc_notifications: z(),
            resume_oldest_seqno: z(),
            resume_newest_seqno: z(),
            resume_frames: z(),
            resume_bytes: z(),
            resume_requests: z(),
            resume_unrecovered: z(),
            replayed_frames: z(),
            gaps: std::array::from_fn(|_| z()),
            latency: LatencyHistogram::default(),
        }
    }
}

/// Adds `n` to a single-writer counter.
#[inline]
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Everything REST and `/metrics` read: the tailer's and every shard's counters.
#[derive(Debug, Clone)]
pub struct StatsHub {
    pub tailer: Arc<TailerStats>,
    pub shards: Arc<[Arc<ShardStats>]>,
    /// Wall clock (ns since epoch) when the server started.
    pub started_ns: u64,
    /// The server epoch ([`Epoch`]: the start time in **microseconds** since the Unix epoch,
    /// below 2^53 so JavaScript clients hold it exactly), announced in `Hello`, `Resume` and
    /// `/v1/status`. Cursors are valid within one epoch. The one place every shard reads it.
    pub epoch: u64,
    /// Chain REST bodies published by the tailer ([`crate::handoff::published`]).
    pub chain: Arc<ChainSlot>,
    /// The access keys in force, when `--auth-keys` is set (per-key counters in `/metrics`).
    pub auth: Option<Arc<AuthKeys>>,
    /// The shared history, when it runs (its window and counters in `/v1/status` and
    /// `/metrics`; every shard's resume store reads from it).
    pub history: Option<Arc<History>>,
    /// The NATS publisher's counters, when the gateway publishes (`--publish`).
    pub bus: Option<Arc<BusStats>>,
}

/// The publisher's counters (read by tests, logs and `/metrics`).
#[derive(Debug, Default)]
pub struct BusStats {
    /// Frames JetStream acked (stored, or recognized as already stored).
    pub acked: AtomicU64,
    /// Messages JetStream acked (each holds the frames of one window with one subject).
    pub acked_messages: AtomicU64,
    /// The highest `server_seqno` acked (a window is acked whole before the next goes).
    pub acked_seqno: AtomicU64,
    /// Frames lost because the queue to the publisher was full.
    pub queue_lost: AtomicU64,
    /// `bus_lost` Gap frames queued for the stream.
    pub gaps: AtomicU64,
    /// Frames published again after a reconnect.
    pub republished: AtomicU64,
    /// Connections made (the first one included).
    pub connects: AtomicU64,
    /// Connection attempts that failed (unreachable, refused credentials, stream refused).
    pub connect_failures: AtomicU64,
    /// Of those, the ones where the server refused the credentials.
    pub auth_refused: AtomicU64,
}

impl StatsHub {
    /// Fresh counters for `shards` shards, started at `now_ns`.
    pub fn new(shards: usize, now_ns: u64) -> StatsHub {
        StatsHub {
            tailer: Arc::new(TailerStats::default()),
            shards: (0..shards)
                .map(|_| Arc::new(ShardStats::default()))
                .collect(),
            started_ns: now_ns,
            epoch: Epoch::from_unix_nanos(now_ns).get(),
            chain: Arc::new(ChainSlot::default()),
            auth: None,
            history: None,
            bus: None,
        }
    }

    /// Sum of one shard counter over all shards.
    pub fn sum(&self, f: impl Fn(&ShardStats) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    /// Open WebSocket sessions over all shards and channels.
    pub fn clients(&self) -> u64 {
        (0..Channel::ALL.len())
            .map(|i| self.sum(|s| &s.sessions_by_channel[i]))
            .sum()
    }

    /// Seconds since the last event was read, or `None` before the first event.
    pub fn last_event_age(&self, now_ns: u64) -> Option<f64> {
        let t = self.tailer.last_event_read_ns.load(Ordering::Relaxed);
        (t != 0).then(|| now_ns.saturating_sub(t) as f64 / 1e9)
    }

    /// The oldest and newest resumable `server_seqno`: from the shards' resume stores when
    /// they report them (the newest oldest and oldest newest over shards, i.e. what every
    /// shard can serve), else the tailer's view (`resume_store_frames` back from the head).
    /// `None` before the first frame.
    pub fn resumable(&self) -> Option<(u64, u64)> {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let reported: Vec<(u64, u64)> = self
            .shards
            .iter()
            .map(|s| (ld(&s.resume_oldest_seqno), ld(&s.resume_newest_seqno)))
            .filter(|(o, n)| *o != 0 && *n != 0)
            .collect();
        if !reported.is_empty() && reported.len() == self.shards.len() {
            let oldest = reported.iter().map(|r| r.0).max().unwrap_or(0);
            let newest = reported.iter().map(|r| r.1).min().unwrap_or(0);
            return Some((oldest, newest));
        }
        let head = ld(&self.tailer.head_server_seqno);
        let oldest = ld(&self.tailer.oldest_server_seqno);
        (head != 0 && oldest != 0).then_some((oldest, head))
    }

    /// Tailer lag: wall clock now minus the last event's ring timestamp, in seconds.
    pub fn tailer_lag(&self, now_ns: u64) -> Option<f64> {
        let t = self.tailer.last_event_ts_ns.load(Ordering::Relaxed);
        (t != 0).then(|| now_ns.saturating_sub(t) as f64 / 1e9)
    }
}

/// Wall clock in ns since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumable_prefers_every_shards_store_and_falls_back_to_the_tailer_view() {
        let hub = StatsHub::new(2, 1);
        assert_eq!(hub.resumable(), None);
        hub.tailer.head_server_seqno.store(500, Ordering::Relaxed);
        hub.tailer.oldest_server_seqno.store(101, Ordering::Relaxed);
        assert_eq!(hub.resumable(), Some((101, 500)));
        hub.shards[0]
            .resume_oldest_seqno
            .store(120, Ordering::Relaxed);
        hub.shards[0]
            .resume_newest_seqno
            .store(499, Ordering::Relaxed);
        // One shard silent: the tailer's view still stands.
        assert_eq!(hub.resumable(), Some((101, 500)));
        hub.shards[1]
            .resume_oldest_seqno
            .store(110, Ordering::Relaxed);
        hub.shards[1]
            .resume_newest_seqno
            .store(500, Ordering::Relaxed);
        assert_eq!(hub.resumable(), Some((120, 499)));
    }

    #[test]
    fn ring_state_round_trips_through_the_atomic() {
        let t = TailerStats::default();
        assert_eq!(t.ring_state(), RingState::Waiting);
        t.set_ring_state(RingState::Gone);
        assert_eq!(t.ring_state(), RingState::Gone);
    }
}
