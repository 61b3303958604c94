//! Counters the tailer and the shards publish, and the Prometheus text rendering of them.
//!
//! Each counter has exactly one writer: the tailer writes [`TailerStats`], shard `i` writes
//! `ShardStats[i]`. Writers use relaxed atomic stores/adds on their own cache lines, so the
//! hot path takes no lock and never touches another core's data; readers (REST on any shard)
//! load the atomics and sum over shards. Values are monotonic counters unless named gauges.
//!
//! Rendering is runtime-free: [`render_prometheus`] takes snapshots and `now`.
//! Must never: lock, allocate on the hot path (only rendering allocates).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::chain::meta::GapReason;
use crate::chain::stage::CommitStage;
use crate::event::decode::DecodeErrorKind;
use crate::event::kind::{EventType, EVENT_TYPE_COUNT};
use crate::published::ChainSlot;
use crate::seqno::Epoch;

/// Lifecycle stages in the order of `TailerStats::lifecycle_transitions`.
pub const LIFECYCLE_STAGES: [CommitStage; 6] = [
    CommitStage::Proposed,
    CommitStage::Voted,
    CommitStage::Finalized,
    CommitStage::Verified,
    CommitStage::Rejected,
    CommitStage::Abandoned,
];

/// Number of gap reasons (`GapReason::ALL`).
pub const GAP_REASONS: usize = GapReason::ALL.len();

/// Channel labels, in the order of `ShardStats::sessions_by_channel`.
pub const CHANNEL_LABELS: [&str; 5] = ["all", "blocks", "txs", "contention", "lifecycle"];

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
    /// Gauge: ring seqno of the last event read.
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
    ring_state: AtomicU8,
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
            ring_state: AtomicU8::new(RingState::Waiting as u8),
        }
    }
}

impl TailerStats {
    /// Current ring state.
    pub fn ring_state(&self) -> RingState {
        RingState::from_u8(self.ring_state.load(Ordering::Relaxed))
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

/// Sub-buckets per power of two in [`LatencyHistogram`] (precision ≈ 2^(1/4) ≈ 19 %).
const LAT_SUB: u32 = 4;
/// Buckets: 2^0 … 2^40 ns (~18 min) at `LAT_SUB` per octave.
const LAT_BUCKETS: usize = 41 * LAT_SUB as usize;
/// Latencies above this (history: a backlog, a snapshot, a replay) are counted apart, not
/// mixed into the live distribution.
pub const LATENCY_LIVE_MAX_NS: u64 = 60_000_000_000;

/// Ring → send latency of one shard, as lock-free log-linear buckets (single writer: the
/// shard; readers sum buckets over shards and read quantiles). Chosen over an `hdrhistogram`
/// behind a lock because `/metrics` on any shard must read every shard's figures without
/// touching their hot path.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LAT_BUCKETS],
    /// Samples above [`LATENCY_LIVE_MAX_NS`].
    pub stale: AtomicU64,
    pub sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            stale: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

fn lat_bucket(ns: u64) -> usize {
    let ns = ns.max(1);
    let octave = 63 - ns.leading_zeros();
    let sub = if octave >= 2 {
        ((ns >> (octave - 2)) & 3) as u32
    } else {
        0
    };
    ((octave * LAT_SUB + sub) as usize).min(LAT_BUCKETS - 1)
}

/// Exclusive upper bound (ns) of bucket `i`.
fn lat_upper(i: usize) -> u64 {
    let octave = (i as u32) / LAT_SUB;
    let sub = u64::from((i as u32) % LAT_SUB);
    if octave < 2 {
        return 1u64 << (octave + 1);
    }
    let base = 1u64 << octave;
    base + (base >> 2) * (sub + 1)
}

impl LatencyHistogram {
    /// Records one sample (shard only).
    pub fn record(&self, ns: u64) {
        if ns > LATENCY_LIVE_MAX_NS {
            bump(&self.stale, 1);
            return;
        }
        bump(&self.buckets[lat_bucket(ns)], 1);
        bump(&self.sum_ns, ns);
    }

    /// Bucket counts.
    fn counts(&self) -> [u64; LAT_BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }
}

/// `q`-quantiles (each in 0..=1) of summed bucket counts, as bucket upper bounds in seconds.
fn quantiles(counts: &[u64; LAT_BUCKETS], qs: &[f64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    qs.iter()
        .map(|q| {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return lat_upper(i) as f64 / 1e9;
                }
            }
            0.0
        })
        .collect()
}

/// Written by one shard only.
#[derive(Debug)]
pub struct ShardStats {
    /// Gauge: open WebSocket sessions by channel (index = `CHANNEL_LABELS`).
    pub sessions_by_channel: [AtomicU64; CHANNEL_LABELS.len()],
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
    /// WebSocket frames and payload bytes written to clients, and the writes carrying them.
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub writes: AtomicU64,
    /// Events delivered inside `Events` frames.
    pub events_out: AtomicU64,
    /// Frames dropped for slow clients, and the clients closed for it.
    pub drops: AtomicU64,
    pub slow_disconnects: AtomicU64,
    /// Client protocol errors that closed a session (by close code family).
    pub protocol_closes: AtomicU64,
    /// Error frames sent for bad subscriptions (session kept).
    pub error_frames: AtomicU64,
    /// REST requests answered.
    pub rest_requests: AtomicU64,
    /// Gaps a session made itself (`slow_client`, `resume_window`), by reason (index =
    /// `GapReason::index`); summed with the tailer's in `/metrics`.
    pub gaps: [AtomicU64; GAP_REASONS],
    /// Gauges a shard's resume store may publish: the oldest and newest `server_seqno` it
    /// can replay (0 = not reported; `/v1/status` then shows the tailer's view).
    pub resume_oldest_seqno: AtomicU64,
    pub resume_newest_seqno: AtomicU64,
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
            frames_out: z(),
            bytes_out: z(),
            writes: z(),
            events_out: z(),
            drops: z(),
            slow_disconnects: z(),
            protocol_closes: z(),
            error_frames: z(),
            rest_requests: z(),
            gaps: std::array::from_fn(|_| z()),
            resume_oldest_seqno: z(),
            resume_newest_seqno: z(),
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
    /// Chain REST bodies published by the tailer ([`crate::published`]).
    pub chain: Arc<ChainSlot>,
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
        (0..CHANNEL_LABELS.len())
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

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every counter in the Prometheus text exposition format, aggregated over shards
/// (plus a per-shard series for queue overflow and drops, which are shard-specific).
pub fn render_prometheus(hub: &StatsHub, now_ns: u64) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let t = &hub.tailer;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);

    family(
        &mut out,
        "ringgate_events_in_total",
        "counter",
        "Ring events read, by type.",
    );
    for ty in EventType::ALL.iter().skip(1) {
        let v = ld(&t.events_in[usize::from(ty.code())]);
        let _ = writeln!(
            out,
            "ringgate_events_in_total{{type=\"{}\"}} {v}",
            ty.name()
        );
    }
    let simple: [(&str, &str, &str, u64); 9] = [
        (
            "ringgate_events_bad_total",
            "counter",
            "Ring events skipped as malformed.",
            ld(&t.events_bad),
        ),
        (
            "ringgate_ring_gaps_total",
            "counter",
            "Times the tailer was lapped by the writer.",
            ld(&t.ring_gaps),
        ),
        (
            "ringgate_ring_gap_events_total",
            "counter",
            "Events lost to ring gaps.",
            ld(&t.ring_gap_events),
        ),
        (
            "ringgate_payloads_expired_total",
            "counter",
            "Payloads overwritten before being read.",
            ld(&t.expired),
        ),
        (
            "ringgate_writer_restarts_total",
            "counter",
            "Ring writer restarts seen.",
            ld(&t.writer_restarts),
        ),
        (
            "ringgate_head_ring_seqno",
            "gauge",
            "Ring seqno of the last event read.",
            ld(&t.head_ring_seqno),
        ),
        (
            "ringgate_head_server_seqno",
            "gauge",
            "Last server_seqno stamped.",
            ld(&t.head_server_seqno),
        ),
        (
            "ringgate_clients",
            "gauge",
            "Open WebSocket sessions.",
            hub.clients(),
        ),
        (
            "ringgate_connections_open",
            "gauge",
            "Open connections of any kind.",
            hub.sum(|s| &s.connections_open),
        ),
    ];
    for (name, kind, help, v) in simple {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        &mut out,
        "ringgate_tailer_lag_seconds",
        "gauge",
        "Now minus the last event's ring timestamp.",
    );
    let _ = writeln!(
        out,
        "ringgate_tailer_lag_seconds {}",
        hub.tailer_lag(now_ns).unwrap_or(0.0)
    );
    family(
        &mut out,
        "ringgate_sessions",
        "gauge",
        "Open WebSocket sessions by channel.",
    );
    for (i, label) in CHANNEL_LABELS.iter().enumerate() {
        let v = hub.sum(|s| &s.sessions_by_channel[i]);
        let _ = writeln!(out, "ringgate_sessions{{channel=\"{label}\"}} {v}");
    }
    family(
        &mut out,
        "ringgate_decode_failures_total",
        "counter",
        "Undecodable ring payloads, by kind.",
    );
    for k in DecodeErrorKind::ALL {
        let v = ld(&t.decode_failures[k as usize]);
        let _ = writeln!(
            out,
            "ringgate_decode_failures_total{{kind=\"{}\"}} {v}",
            k.name()
        );
    }
    family(
        &mut out,
        "ringgate_gaps_total",
        "counter",
        "Gap frames sent, by reason (tailer-made and session-made).",
    );
    for r in GapReason::ALL {
        let i = r.index();
        let v = ld(&t.gaps[i]) + hub.sum(|s| &s.gaps[i]);
        let _ = writeln!(out, "ringgate_gaps_total{{reason=\"{}\"}} {v}", r.name());
    }
    family(
        &mut out,
        "ringgate_lifecycle_transitions_total",
        "counter",
        "Block lifecycle transitions, by stage reached.",
    );
    for (i, st) in LIFECYCLE_STAGES.iter().enumerate() {
        let v = ld(&t.lifecycle_transitions[i]);
        let _ = writeln!(
            out,
            "ringgate_lifecycle_transitions_total{{stage=\"{}\"}} {v}",
            st.name()
        );
    }
    let chain: [(&str, &str, &str, u64); 5] = [
        (
            "ringgate_gate_held_blocks",
            "gauge",
            "Blocks held by the stage gate for min_stage streams.",
            ld(&t.gate_held_blocks),
        ),
        (
            "ringgate_gate_held_bytes",
            "gauge",
            "JSON bytes held by the stage gate.",
            ld(&t.gate_held_bytes),
        ),
        (
            "ringgate_gate_overflow_blocks_total",
            "counter",
            "Blocks pushed out of the stage gate before release.",
            ld(&t.gate_overflow_blocks),
        ),
        (
            "ringgate_gate_released_copies_total",
            "counter",
            "Event copies released to min_stage streams.",
            ld(&t.gate_released_copies),
        ),
        (
            "ringgate_backlog_events",
            "gauge",
            "Events loaded from the ring's startup backlog.",
            ld(&t.backlog_events),
        ),
    ];
    for (name, kind, help, v) in chain {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    let mut lat = [0u64; LAT_BUCKETS];
    for s in hub.shards.iter() {
        for (acc, c) in lat.iter_mut().zip(s.latency.counts()) {
            *acc += c;
        }
    }
    family(
        &mut out,
        "ringgate_ring_to_send_seconds",
        "summary",
        "Ring timestamp to socket write of the oldest live event per write (bucket upper bounds, ~19% precision; samples over 60 s counted in _stale_total).",
    );
    let qs = [0.5, 0.9, 0.99, 0.999];
    for (q, v) in qs.iter().zip(quantiles(&lat, &qs)) {
        let _ = writeln!(out, "ringgate_ring_to_send_seconds{{quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(
        out,
        "ringgate_ring_to_send_seconds_sum {}\nringgate_ring_to_send_seconds_count {}",
        hub.sum(|s| &s.latency.sum_ns) as f64 / 1e9,
        lat.iter().sum::<u64>()
    );
    family(
        &mut out,
        "ringgate_ring_to_send_stale_total",
        "counter",
        "Latency samples over 60 s (history being replayed), kept out of the summary.",
    );
    let _ = writeln!(
        out,
        "ringgate_ring_to_send_stale_total {}",
        hub.sum(|s| &s.latency.stale)
    );
    type Pick = fn(&ShardStats) -> &AtomicU64;
    let summed: [(&str, &str, Pick); 11] = [
        (
            "ringgate_connections_accepted_total",
            "Connections accepted.",
            |s| &s.connections_accepted,
        ),
        (
            "ringgate_connections_rejected_total",
            "Connections refused (limits, bad requests).",
            |s| &s.connections_rejected,
        ),
        (
            "ringgate_handshake_timeouts_total",
            "Connections closed for not sending a request in time.",
            |s| &s.handshake_timeouts,
        ),
        (
            "ringgate_frames_out_total",
            "WebSocket frames written to clients.",
            |s| &s.frames_out,
        ),
        (
            "ringgate_bytes_out_total",
            "Bytes written to clients.",
            |s| &s.bytes_out,
        ),
        (
            "ringgate_writes_total",
            "Socket writes to clients (each carries many frames under load).",
            |s| &s.writes,
        ),
        (
            "ringgate_events_out_total",
            "Events delivered inside Events frames.",
            |s| &s.events_out,
        ),
        (
            "ringgate_slow_client_disconnects_total",
            "Sessions closed for too many drops.",
            |s| &s.slow_disconnects,
        ),
        (
            "ringgate_protocol_closes_total",
            "Sessions closed for client protocol errors.",
            |s| &s.protocol_closes,
        ),
        (
            "ringgate_error_frames_total",
            "Error frames sent (bad subscriptions).",
            |s| &s.error_frames,
        ),
        (
            "ringgate_rest_requests_total",
            "REST requests answered.",
            |s| &s.rest_requests,
        ),
    ];
    for (name, help, pick) in summed {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", hub.sum(pick));
    }
    let per_shard: [(&str, &str, Pick); 3] = [
        (
            "ringgate_shard_inbox_frames_total",
            "Frames a shard took from its SPSC queue.",
            |s| &s.inbox_frames,
        ),
        (
            "ringgate_shard_queue_full_total",
            "Frames lost because a shard's SPSC queue was full.",
            |s| &s.spsc_full,
        ),
        (
            "ringgate_session_drops_total",
            "Frames dropped for slow clients, by shard.",
            |s| &s.drops,
        ),
    ];
    for (name, help, pick) in per_shard {
        family(&mut out, name, "counter", help);
        for (i, s) in hub.shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", ld(pick(s)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_sums_shards_and_names_types() {
        let hub = StatsHub::new(2, 1);
        bump(&hub.shards[0].frames_out, 3);
        bump(&hub.shards[1].frames_out, 4);
        bump(
            &hub.tailer.events_in[usize::from(EventType::TxnLog.code())],
            7,
        );
        bump(&hub.shards[1].sessions_by_channel[2], 1);
        let text = render_prometheus(&hub, 2);
        assert!(text.contains("ringgate_frames_out_total 7\n"));
        assert!(text.contains("ringgate_events_in_total{type=\"TxnLog\"} 7\n"));
        assert!(text.contains("ringgate_sessions{channel=\"txs\"} 1\n"));
        assert!(text.contains("ringgate_clients 1\n"));
        assert!(text.contains("ringgate_session_drops_total{shard=\"1\"} 0\n"));
        bump(&hub.tailer.gaps[GapReason::RingLapped.index()], 2);
        bump(&hub.shards[1].gaps[GapReason::SlowClient.index()], 1);
        bump(&hub.tailer.lifecycle_transitions[2], 5);
        let text = render_prometheus(&hub, 2);
        assert!(text.contains("ringgate_gaps_total{reason=\"ring_lapped\"} 2\n"));
        assert!(text.contains("ringgate_gaps_total{reason=\"slow_client\"} 1\n"));
        assert!(text.contains("ringgate_lifecycle_transitions_total{stage=\"Finalized\"} 5\n"));
        assert!(text.contains("ringgate_decode_failures_total{kind=\"short\"} 0\n"));
    }

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
    fn latency_buckets_bound_their_samples_and_quantiles_come_from_summed_shards() {
        for ns in [1u64, 3, 5, 1_000, 1_234_567, 59_000_000_000] {
            let i = lat_bucket(ns);
            // Bucket i covers [lat_upper(i - 1), lat_upper(i)).
            assert!(
                lat_upper(i) > ns,
                "{ns} in bucket {i} up to {}",
                lat_upper(i)
            );
            assert!(i == 0 || lat_upper(i - 1) <= ns, "{ns}");
        }
        let hub = StatsHub::new(2, 0);
        for _ in 0..90 {
            hub.shards[0].latency.record(100_000); // 100 µs
        }
        for _ in 0..10 {
            hub.shards[1].latency.record(10_000_000); // 10 ms
        }
        hub.shards[1].latency.record(LATENCY_LIVE_MAX_NS + 1);
        let text = render_prometheus(&hub, 1);
        let q = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "ringgate_ring_to_send_seconds{{quantile=\"{name}\"}}"
                    ))
                })
                .unwrap_or_default();
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1.0)
        };
        assert!((1e-4..1.2e-4).contains(&q("0.5")), "{text}");
        assert!((1e-2..1.2e-2).contains(&q("0.99")), "{text}");
        assert!(text.contains("ringgate_ring_to_send_seconds_count 100\n"));
        assert!(text.contains("ringgate_ring_to_send_stale_total 1\n"));
    }

    #[test]
    fn ring_state_round_trips_through_the_atomic() {
        let t = TailerStats::default();
        assert_eq!(t.ring_state(), RingState::Waiting);
        t.set_ring_state(RingState::Gone);
        assert_eq!(t.ring_state(), RingState::Gone);
    }
}
