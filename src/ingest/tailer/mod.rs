//! The tailer: one dedicated thread (pinned to `Config::tailer_core`) that reads the ring,
//! turns each event into frames once, runs the chain stage, and pushes the frames into every
//! shard's SPSC inbox.
//!
//! Runs on the tailer core, nothing else does. Data flow per event:
//! `RingReader::try_next` → [`EventPipeline::on_event`]: `Encoder::encode_with` (decode + JSON +
//! filter keys, lending the decoded event to `chain::from_event::chain_input`) →
//! `ChainPipeline::process` (stamps `server_seqno`s from one [`crate::model::seqno::ServerSeqno`]; emits the live
//! original, `Lifecycle` frames, `TPS`, `ContentionData`, `TopAccesses` and gate-overflow
//! `Gap`s, in seqno order, and queues `min_stage` releases) → `FanoutSender::try_push` to each
//! shard. While the ring is idle, [`EventPipeline::release`] makes queued `min_stage` copies
//! `ChainConfig::release_budget` at a time, each budget once the shards have taken the
//! previous frames, and pushes them the same way (a ring busy for `BUSY_RUN_RELEASE` events
//! in a row gets a budget after each event instead): a block reaching a stage is released in
//! chunks between ring reads, and a live event never waits behind more than one chunk. After an event that changed block-level state the tailer re-encodes the chain REST
//! bodies into [`crate::handoff::published::ChainSlot`] (a few times per block, never per event).
//!
//! Start: a live ring is read from its oldest complete block still safely in the ring
//! (`StartAt::OldestBlock`, at most `Config::startup_backlog_events` back), so a restarted
//! gateway rebuilds lifecycle and analytics state and fills the shards' resume stores; a
//! snapshot is replayed from seqno 1. While loading the backlog or a snapshot the tailer waits
//! (bounded) for room in a full shard queue instead of dropping: those events are history,
//! not live data racing the writer.
//!
//! Invariants:
//! - Never blocks on a shard while live: a full inbox is counted (`spsc_full`) and the frames
//!   that shard missed are announced to it by one `Gap` frame as soon as it has room again.
//! - Nothing is lost silently: ring laps, expired payloads and writer restarts become `Gap`
//!   frames to every shard (one encoder: [`crate::wire::protocol::messages::gap_frame`]), counted in
//!   [`crate::metrics::TailerStats`]. The block being executed when data was lost is dropped
//!   from the stage gate (no gated stream gets a partial block) and named in the `Gap`.
//! - Bad bytes in the ring are counted by kind and skipped, never a panic.
//!
//! Parts: `pipeline` ([`EventPipeline`]: event → frames, runtime-free), `output` (frames
//! to the journal, history, bus and shards; published gauges and REST bodies), `shard_link` (one shard's queue and
//! the seqnos it missed), `idle` ([`Idler`]: what to do after an empty poll), `restart` (rejoining the ring after a
//! restart with a history dir).
//!
//! Must never: allocate per event beyond the encoded JSON box and the chain's frames, take a
//! lock per event, or sleep while events are available or `min_stage` copies are queued (it
//! sleeps only per [`IdleStrategy`] when the ring is idle and every release is done).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bus::publisher::BusSender;
use crate::handoff::fanout::FanoutSender;
use crate::history::startup::RestartPoint;
use crate::history::wal::Wal;
use crate::history::writer::HistorySender;
use crate::ingest::chain::pipeline::ChainConfig;
use crate::ingest::ring::{AttachError, ReadOutcome, Ring, RingReader, StartAt, WriterState};
use crate::log::{self, Level};
use crate::metrics::{bump, now_ns, RingError, RingState, StatsHub};
use crate::model::outbound::Outbound;

/// How long a live ring must stay silent before the tailer checks its writer (and then how
/// often it re-checks). A writer that produced an event in the last window is alive, so the
/// check never runs while events flow: it reads `/proc/locks`, whose first `read(2)` blocks
/// in the kernel for 6–14 ms on the dev box (it write-locks the global file-lock rwsem,
/// waiting for an RCU grace period), which every 200 ms made the p99 latency ~10 ms.
const LIVENESS_QUIET: Duration = Duration::from_secs(1);
/// How long a snapshot replay may return nothing before it counts as finished.
const SNAPSHOT_QUIET: Duration = Duration::from_millis(200);
/// How often it retries opening a ring that is not there yet.
const REOPEN_EVERY: Duration = Duration::from_millis(100);
/// The tailer's own settings (the server derives them from its `Config`).
#[derive(Debug, Clone)]
pub struct TailerConfig {
    /// The ring file, or a `.zst` snapshot.
    pub ring_path: PathBuf,
    /// Whether `ring_path` is a snapshot (replayed from its first event).
    pub snapshot: bool,
    /// Core to pin the tailer thread to; `None` leaves it to the kernel.
    pub core: Option<usize>,
    pub chain: ChainConfig,
    /// What the tailer does when the ring is idle.
    pub idle: IdleStrategy,
    /// Ring events loaded at a first attach from the oldest complete block still in the ring.
    pub startup_backlog_events: u64,
    /// Frames each shard keeps for resume: the tailer reports the oldest resumable seqno as
    /// `head - window + 1`.
    pub resume_window_frames: usize,
    /// Where an earlier run of this gateway stopped (from its history dir): continue its
    /// `server_seqno`s, and the ring after the last event it journaled.
    pub restart: Option<RestartPoint>,
    /// Make the JSON-RPC frames (`crate::ingest::rpc`).
    pub rpc: bool,
    /// Bytes of JSON-RPC blocks kept for their later commit states.
    pub rpc_kept_bytes: u64,
}

/// What the tailer thread needs.
#[derive(Debug)]
pub struct TailerSetup {
    pub config: TailerConfig,
    pub shards: Vec<FanoutSender>,
    /// The history thread's queue: every frame, in order, before any shard sees it.
    pub history: Option<HistorySender>,
    /// The write-ahead log (with a history dir): every frame copied into it first.
    pub wal: Option<Wal>,
    /// The NATS publisher's queue (`--publish`): every frame, after the history.
    pub bus: Option<BusSender>,
    pub stats: StatsHub,
    pub shutdown: Arc<AtomicBool>,
}

/// Starts the tailer thread.
pub fn spawn(setup: TailerSetup) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringgate-tailer".into())
        .spawn(move || {
            set_precise_timer_slack();
            if let Some(id) = setup.config.core {
                let _ = core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            let mut tailer = Tailer::new(setup);
            tailer.run();
            // Dropping the history sender lets the history thread seal what it holds.
            if let Some(h) = &mut tailer.history {
                h.flush();
            }
            tailer.history = None;
        })
}

pub mod edge;
mod idle;
mod output;
mod pipeline;
mod restart;
mod shard_link;

pub use idle::{IdleAction, IdleStrategy, Idler};
pub use pipeline::{EventPipeline, Loss, Processed};
use shard_link::ShardLink;

/// Ring events read back to back (the ring never idle in between) after which queued
/// `min_stage` copies are released between events, a budget per event, instead of waiting
/// for the ring to go idle. A writer's burst (tens of events) stays below it, so its live
/// events never wait behind copies; a ring that is never idle (a saturated tailer) still
/// releases them before the gate's bounds drop blocks.
pub const BUSY_RUN_RELEASE: u32 = 1024;

/// Makes this thread's sleeps precise: Linux lets a `nanosleep` of a normal thread end up to
/// its timer slack (default 50 µs) late, which doubled the tailer's idle 50 µs sleeps. 1 ns
/// of slack costs nothing measurable (the tailer's sleeps are its only timers).
fn set_precise_timer_slack() {
    crate::sys::set_timer_slack(1);
}

struct Tailer {
    config: TailerConfig,
    links: Vec<ShardLink>,
    stats: StatsHub,
    shutdown: Arc<AtomicBool>,
    pipeline: EventPipeline,
    out: Vec<Outbound>,
    /// Ring seqnos up to this one are history (startup backlog or a snapshot): pushed with
    /// [`PushMode::History`]. 0 = live.
    history_until: u64,
    /// Whether the ring being read is a snapshot (all of it is history).
    snapshot: bool,
    history: Option<HistorySender>,
    wal: Option<Wal>,
    bus: Option<BusSender>,
    /// While restarting from a history dir: frames made from ring events up to this seqno
    /// are already journaled (the tailer re-reads them only to rebuild the chain state) and
    /// are thrown away; see [`Tailer::end_warmup`].
    warmup: Option<RestartPoint>,
}

impl Tailer {
    fn new(setup: TailerSetup) -> Tailer {
        Tailer {
            links: setup
                .shards
                .into_iter()
                .map(|tx| ShardLink::new(tx, Arc::clone(&setup.shutdown)))
                .collect(),
            pipeline: {
                let mut p = EventPipeline::new(setup.config.chain);
                p.set_rpc(setup.config.rpc, setup.config.rpc_kept_bytes);
                p
            },
            config: setup.config,
            stats: setup.stats,
            shutdown: setup.shutdown,
            out: Vec::with_capacity(16),
            history_until: 0,
            snapshot: false,
            history: setup.history,
            wal: setup.wal,
            bus: setup.bus,
            warmup: None,
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn run(&mut self) {
        let path = self.config.ring_path.clone();
        let snapshot = self.config.snapshot;
        self.snapshot = snapshot;
        let mut first_attach = true;
        while !self.stopping() {
            let ring = match Ring::open(&path) {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    self.report_attach_error(&e);
                    std::thread::sleep(REOPEN_EVERY);
                    continue;
                }
            };
            if self.stats.tailer.set_ring_error(None) {
                log::event(
                    Level::Info,
                    "ring_error_cleared",
                    &[("ring", path.to_string_lossy().as_ref().into())],
                );
            }
            let mut start = if snapshot || !first_attach {
                StartAt::First
            } else {
                StartAt::OldestBlock {
                    max_events: self.config.startup_backlog_events,
                }
            };
            if first_attach {
                if let Some(point) = self.config.restart {
                    start = self.restart_from(&ring, point, start);
                }
            }
            if !first_attach {
                // A new ring file appeared after the old writer went away.
                bump(&self.stats.tailer.writer_restarts, 1);
                log::event(
                    Level::Warn,
                    "writer_restart",
                    &[("ring", path.to_string_lossy().as_ref().into())],
                );
                self.publish_loss(&Loss::WriterRestart);
            }
            let h = ring.header();
            log::event(
                Level::Info,
                "attach",
                &[
                    ("ring", path.to_string_lossy().as_ref().into()),
                    ("snapshot", if snapshot { "true" } else { "false" }.into()),
                    ("last_seqno", h.last_seqno.into()),
                    ("descriptors", h.sizes.descriptor_capacity.into()),
                    ("payload_bytes", h.sizes.payload_buf_size.into()),
                ],
            );
            // Everything already in the ring at a first attach is the startup backlog.
            self.history_until = if first_attach { ring.last_seqno() } else { 0 };
            first_attach = false;
            self.stats.tailer.set_ring_state(if snapshot {
                RingState::Replay
            } else {
                RingState::Live
            });
            let mut reader = RingReader::new(ring, start);
            if let Some(point) = self.warmup {
                if reader.next_seqno() > point.last_ring_seqno + 1 {
                    // The backlog starts after the restart point: nothing to re-read.
                    reader = RingReader::new(
                        reader.ring().clone(),
                        StartAt::Seqno(point.last_ring_seqno + 1),
                    );
                }
            }
            match self.tail(&mut reader, snapshot) {
                TailEnd::Shutdown => return,
                TailEnd::WriterGone { inode } => {
                    self.stats.tailer.set_ring_state(RingState::Gone);
                    self.wait_for_new_ring(&path, inode);
                }
                TailEnd::SnapshotDone => {
                    self.stats.tailer.set_ring_state(RingState::ReplayDone);
                    while !self.stopping() {
                        std::thread::sleep(REOPEN_EVERY);
                    }
                    return;
                }
            }
        }
    }

    /// Waits until `path` names a file other than inode `old` (a new writer's ring).
    fn wait_for_new_ring(&self, path: &Path, old: u64) {
        use std::os::unix::fs::MetadataExt;
        while !self.stopping() {
            if std::fs::metadata(path).is_ok_and(|m| m.ino() != old) {
                return;
            }
            std::thread::sleep(REOPEN_EVERY);
        }
    }

    fn tail(&mut self, reader: &mut RingReader, snapshot: bool) -> TailEnd {
        let mut idler = Idler::new(self.config.idle);
        let mut last_check = Instant::now();
        // An event was read since `last_check`: the writer is alive, skip the check.
        let mut heard = false;
        // Events until the read clock is sampled again: reading it per event was ~5 % of the
        // tailer's time at full rate, and its readers (`/health`, lag) need milliseconds.
        // The first event after an idle poll always samples it.
        let mut clock_in = 0u32;
        // Since when an idle-ring release has waited for the shards to drain.
        let mut copies_waiting: Option<Instant> = None;
        // Events read since the ring was last found idle.
        let mut busy_run = 0u32;
        let quiet = if snapshot {
            SNAPSHOT_QUIET
        } else {
            LIVENESS_QUIET
        };
        loop {
            if self.stopping() {
                return TailEnd::Shutdown;
            }
            let outcome = reader.try_next();
            let t = &self.stats.tailer;
            match outcome {
                ReadOutcome::Ready(ev) => {
                    idler.reset();
                    heard = true;
                    let code = usize::from(ev.descriptor.event_type);
                    t.last_event_ts_ns
                        .store(ev.descriptor.record_epoch_nanos, Ordering::Relaxed);
                    if clock_in == 0 {
                        t.last_event_read_ns.store(now_ns(), Ordering::Relaxed);
                        clock_in = 256;
                    }
                    clock_in -= 1;
                    // Unknown codes fail to decode below and are counted once, as bad.
                    if let Some(c) = t.events_in.get(code).filter(|_| code != 0) {
                        bump(c, 1);
                    }
                    let descriptor = ev.descriptor;
                    let payload = ev.payload;
                    if self
                        .warmup
                        .is_some_and(|w| descriptor.seqno > w.last_ring_seqno)
                    {
                        self.end_warmup();
                    }
                    if descriptor.seqno <= self.history_until && !snapshot {
                        bump(&self.stats.tailer.backlog_events, 1);
                    }
                    match self.pipeline.on_event(&descriptor, payload, &mut self.out) {
                        Ok(processed) => {
                            self.count_transitions();
                            self.flush(descriptor.seqno);
                            if processed == Processed::BlockLevel {
                                self.publish_chain();
                            }
                            // Queued min_stage copies wait for the ring to go idle (the
                            // end of the writer's burst), so no live event of a burst waits
                            // behind them; only a ring that stays busy for
                            // BUSY_RUN_RELEASE events gets a share of them per event.
                            busy_run = busy_run.saturating_add(1);
                            if busy_run >= BUSY_RUN_RELEASE {
                                let budget = self.pipeline.release_budget();
                                self.release(budget, descriptor.seqno);
                            }
                        }
                        Err(e) => {
                            bump(&self.stats.tailer.events_bad, 1);
                            if let Some(c) =
                                self.stats.tailer.decode_failures.get(e.kind() as usize)
                            {
                                bump(c, 1);
                            }
                        }
                    }
                    // Published once the event's frames are in the shards' queues, so a
                    // reader of both gauges never sees this seqno with frames still to come.
                    self.stats
                        .tailer
                        .head_ring_seqno
                        .store(descriptor.seqno, Ordering::Relaxed);
                }
                ReadOutcome::NotReady => {
                    busy_run = 0;
                    if self.pipeline.has_pending_releases() {
                        // Idle ring: release the queued copies one budget at a time, each
                        // once the shards have taken the previous one, and look at the ring
                        // between budgets; never sleep on them. A live event read meanwhile
                        // then waits behind one budget of copies in a shard's queue, not
                        // behind a whole block stage's thousands.
                        if self.shards_took_copies(&mut copies_waiting) {
                            let budget = self.pipeline.release_budget();
                            self.release(budget, reader.next_seqno().saturating_sub(1));
                        } else {
                            std::thread::yield_now();
                        }
                        continue;
                    }
                    clock_in = 0;
                    // The history takes frames in batches of 64; an idle ring sends the rest.
                    if let Some(h) = &mut self.history {
                        h.flush();
                    }
                    // A shard that lost frames is told as soon as it has room, not only at
                    // the next frame: the ring may stay quiet for a long time.
                    self.announce_shard_losses();
                    if let Some(b) = &mut self.bus {
                        b.announce_lost();
                    }
                    match idler.idle() {
                        IdleAction::Spin => std::hint::spin_loop(),
                        IdleAction::Yield => std::thread::yield_now(),
                        IdleAction::Sleep(d) => std::thread::sleep(d),
                    }
                    if last_check.elapsed() >= quiet {
                        last_check = Instant::now();
                        if std::mem::take(&mut heard) {
                            continue;
                        }
                        if snapshot {
                            return TailEnd::SnapshotDone;
                        }
                        match reader.writer_state() {
                            WriterState::Alive => {}
                            WriterState::Gone => {
                                return TailEnd::WriterGone {
                                    inode: reader.ring().inode(),
                                }
                            }
                            WriterState::Replaced => {
                                if reader.reattach().is_ok() {
                                    bump(&self.stats.tailer.writer_restarts, 1);
                                    self.history_until = 0;
                                    self.publish_loss(&Loss::WriterRestart);
                                }
                            }
                        }
                    }
                }
                ReadOutcome::Gap { missing } => {
                    bump(&t.ring_gaps, 1);
                    bump(
                        &t.ring_gap_events,
                        missing.end.saturating_sub(missing.start),
                    );
                    self.publish_loss(&Loss::RingLap { missing });
                }
                ReadOutcome::Expired { descriptor } => {
                    bump(&t.expired, 1);
                    self.publish_loss(&Loss::Expired {
                        ring_seqno: descriptor.seqno,
                    });
                }
                ReadOutcome::Malformed { .. } => bump(&t.events_bad, 1),
            }
        }
    }

    /// Publishes why the ring cannot be attached; logs it only when the reason changes, so a
    /// missing ring is one line, not ten a second.
    fn report_attach_error(&self, e: &AttachError) {
        let error = RingError {
            kind: e.kind(),
            message: e.to_string(),
        };
        if self.stats.tailer.set_ring_error(Some(error)) {
            log::event(
                Level::Error,
                "attach_error",
                &[
                    ("kind", e.kind().into()),
                    ("error", e.to_string().as_str().into()),
                ],
            );
        }
    }
}

enum TailEnd {
    Shutdown,
    /// The writer of the ring with this inode went away.
    WriterGone {
        inode: u64,
    },
    SnapshotDone,
}
