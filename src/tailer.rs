//! The tailer: one dedicated thread (pinned to `Config::tailer_core`) that reads the ring,
//! turns each event into frames once, runs the chain stage, and pushes the frames into every
//! shard's SPSC inbox.
//!
//! Runs on the tailer core, nothing else does. Data flow per event:
//! `RingReader::try_next` → [`Pipeline::on_event`]: `Encoder::encode_with` (decode + JSON +
//! filter keys, lending the decoded event to `chain::from_event::chain_input`) →
//! `ChainPipeline::process` (stamps `server_seqno`s from one [`ServerSeqno`]; emits the live
//! original, `Lifecycle` frames, `min_stage` released copies, `TPS`, `ContentionData`,
//! `TopAccesses` and gate-overflow `Gap`s, in seqno order) → `FanoutSender::try_push` to each
//! shard. After an event that changed block-level state the tailer re-encodes the chain REST
//! bodies into [`crate::published::ChainSlot`] (a few times per block, never per event).
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
//!   frames to every shard (one encoder: [`crate::chain::meta::gap_frame`]), counted in
//!   [`crate::metrics::TailerStats`]. The block being executed when data was lost is dropped
//!   from the stage gate (no gated stream gets a partial block) and named in the `Gap`.
//! - Bad bytes in the ring are counted by kind and skipped, never a panic.
//!
//! Must never: allocate per event beyond the encoded JSON box and the chain's frames, take a
//! lock per event, or sleep while events are available (it sleeps only per [`IdleStrategy`]
//! when the ring is idle).

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chain::from_event::chain_input;
use crate::chain::input::{BlockId, ChainInput};
use crate::chain::meta::{gap_frame, Gap, GapReason};
use crate::chain::pipeline::ChainPipeline;
use crate::chain::stage::CommitStage;
use crate::config::{Config, IdleStrategy};
use crate::event::decode::DecodeError;
use crate::event::encoder::Encoder;
use crate::fanout::{FanoutSender, PushOutcome};
use crate::frame::{EncodedEvent, MetaKind, Outbound};
use crate::metrics::{bump, now_ns, RingState, StatsHub, LIFECYCLE_STAGES};
use crate::published::ChainBodies;
use crate::ring::layout::Descriptor;
use crate::ring::{ReadOutcome, Ring, RingReader, StartAt, WriterState};
use crate::seqno::ServerSeqno;

/// How often the tailer re-checks the writer while the ring stays idle.
const LIVENESS_EVERY: Duration = Duration::from_millis(200);
/// How often it retries opening a ring that is not there yet.
const REOPEN_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for room in one shard's queue while loading history (backlog, snapshot);
/// past it the frame is counted lost for that shard as when live (a stuck shard must not
/// stall the others forever).
const HISTORY_PUSH_PATIENCE: Duration = Duration::from_secs(2);

/// What the tailer thread needs.
#[derive(Debug)]
pub struct TailerSetup {
    pub config: Arc<Config>,
    pub shards: Vec<FanoutSender>,
    pub stats: StatsHub,
    pub shutdown: Arc<AtomicBool>,
}

/// Starts the tailer thread.
pub fn spawn(setup: TailerSetup) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringgate-tailer".into())
        .spawn(move || {
            if setup.config.pin_cores {
                let _ = core_affinity::set_for_current(core_affinity::CoreId {
                    id: setup.config.tailer_core,
                });
            }
            Tailer::new(setup).run();
        })
}

/// Data lost upstream of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// The writer lapped the tailer: these ring seqnos were never read.
    RingLap { missing: Range<u64> },
    /// This event's payload was overwritten before it was copied.
    Expired { ring_seqno: u64 },
    /// The writer restarted (new ring file); events in between are unknown.
    WriterRestart,
}

impl Loss {
    /// The `reason` its `Gap` frame carries.
    pub fn reason(&self) -> GapReason {
        match self {
            Loss::RingLap { .. } => GapReason::RingLapped,
            Loss::Expired { .. } => GapReason::PayloadExpired,
            Loss::WriterRestart => GapReason::WriterRestart,
        }
    }
}

/// What one event changed, so the tailer knows whether to republish the REST bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Only the event itself (and maybe released copies) went out.
    EventOnly,
    /// A meta frame went out (lifecycle transition, TPS, contention, top accesses, gap):
    /// block-level state changed.
    BlockLevel,
}

/// The block being executed: opened by BLOCK_START, closed by BLOCK_END / BLOCK_REJECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenBlock {
    block_seqno: u64,
    number: u64,
    id: BlockId,
}

/// Everything the tailer does with one event: encode once, derive the chain fact, run the
/// chain stage (which stamps seqnos), and announce losses.
#[derive(Debug)]
pub struct Pipeline {
    encoder: Encoder,
    chain: ChainPipeline,
    seqnos: ServerSeqno,
    open: Option<OpenBlock>,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline::new(crate::chain::pipeline::ChainConfig::default())
    }
}

impl Pipeline {
    /// A pipeline with the given chain knobs, seqnos from 1.
    pub fn new(chain: crate::chain::pipeline::ChainConfig) -> Pipeline {
        Pipeline {
            encoder: Encoder::default(),
            chain: ChainPipeline::new(chain),
            seqnos: ServerSeqno::new(),
            open: None,
        }
    }

    /// Last server_seqno stamped.
    pub fn head(&self) -> u64 {
        self.seqnos.head()
    }

    /// The chain state (lifecycle, gate, analytics).
    pub fn chain(&self) -> &ChainPipeline {
        &self.chain
    }

    /// The REST bodies of the current chain state.
    pub fn bodies(&self) -> ChainBodies {
        ChainBodies::of(&self.chain)
    }

    /// Encodes one ring event and appends every frame it produces, in seqno order. `Err` =
    /// undecodable payload (counted by the encoder, skipped; nothing appended).
    pub fn on_event(
        &mut self,
        descriptor: &Descriptor,
        payload: &[u8],
        out: &mut Vec<Outbound>,
    ) -> Result<Processed, DecodeError> {
        let ts = descriptor.record_epoch_nanos;
        let (encoded, input) = self
            .encoder
            .encode_with(descriptor, payload, |ev, ctx| chain_input(ev, ctx, ts))?;
        match input {
            Some(ChainInput::BlockStart {
                block_seqno,
                id,
                number,
                ..
            }) => {
                self.open = Some(OpenBlock {
                    block_seqno,
                    number,
                    id,
                })
            }
            Some(ChainInput::BlockEnd { block_seqno, .. })
            | Some(ChainInput::BlockReject { block_seqno, .. })
                if self.open.is_some_and(|b| b.block_seqno == block_seqno) =>
            {
                self.open = None
            }
            _ => {}
        }
        let event = EncodedEvent {
            server_seqno: 0,
            ring_seqno: descriptor.seqno,
            timestamp_ns: ts,
            gate: CommitStage::Proposed,
            keys: encoded.keys,
            json: encoded.json,
            stage_span: encoded.stage_span,
        };
        let before = out.len();
        self.chain
            .process(input.as_ref(), event, &mut self.seqnos, &mut |o| {
                out.push(o)
            });
        let meta = out[before..].iter().any(|o| matches!(o, Outbound::Meta(_)));
        Ok(if meta {
            Processed::BlockLevel
        } else {
            Processed::EventOnly
        })
    }

    /// Appends the `Gap` frames announcing `loss` to every session, and forgets per-block
    /// state the loss made unreliable: the flow tracker (lap, restart), the block being
    /// executed (dropped from the stage gate and named in the gap), and on a writer restart
    /// every held block (block seqnos start over), each announced by its own gap.
    pub fn on_loss(&mut self, loss: &Loss, out: &mut Vec<Outbound>) {
        let mut gap = Gap::new(loss.reason());
        match loss {
            Loss::RingLap { missing } => {
                self.encoder.reset_flow();
                gap.ring_from_seqno = Some(missing.start);
                gap.ring_to_seqno = Some(missing.end.saturating_sub(1));
            }
            Loss::Expired { ring_seqno } => {
                gap.ring_from_seqno = Some(*ring_seqno);
                gap.ring_to_seqno = Some(*ring_seqno);
            }
            Loss::WriterRestart => self.encoder.reset_flow(),
        }
        if let Some(b) = self.open.take() {
            gap.block_number = Some(b.number);
            gap.block_id = Some(b.id);
            if let Some(dropped) = self.chain.drop_partial(b.block_seqno) {
                if dropped.events > 0 {
                    gap.from_seqno = Some(dropped.from_seqno);
                    gap.to_seqno = Some(dropped.to_seqno);
                }
            }
        }
        out.push(Outbound::Meta(Arc::new(gap_frame(
            self.seqnos.allocate(),
            &gap,
        ))));
        if *loss == Loss::WriterRestart {
            for o in self.chain.drop_all_held() {
                let g = Gap {
                    reason: GapReason::WriterRestart,
                    ..Gap::from(&o)
                };
                out.push(Outbound::Meta(Arc::new(gap_frame(
                    self.seqnos.allocate(),
                    &g,
                ))));
            }
        }
    }
}

/// Where one shard stands from the tailer's side.
#[derive(Debug)]
struct ShardLink {
    tx: FanoutSender,
    /// server_seqnos this shard missed because its inbox was full, not yet announced.
    lost: Option<Range<u64>>,
}

/// How a push treats a full shard queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushMode {
    /// Live: never wait; a full queue loses the frame for that shard (announced later).
    Live,
    /// History (backlog, snapshot): wait up to [`HISTORY_PUSH_PATIENCE`] for room.
    History,
}

impl ShardLink {
    /// Pushes `frame`; first announces earlier losses when there is room again. The Gap frame
    /// carries the last lost seqno as its own `server_seqno`: it is below every later frame
    /// and above everything this shard delivered before, so per-connection order holds, and a
    /// client resuming from it misses nothing it was not told about.
    fn push(&mut self, frame: &Outbound, stats: &StatsHub, index: usize, mode: PushMode) {
        if let Some(lost) = self.lost.clone() {
            let last = lost.end - 1;
            let g = Gap::seqnos(GapReason::ShardQueueFull, lost.start, last);
            let frame_gap = Outbound::Meta(Arc::new(gap_frame(last, &g)));
            if self.try_push(frame_gap, mode) == PushOutcome::Full {
                self.lose(frame.server_seqno(), stats, index);
                return;
            }
            bump(&stats.tailer.gaps[GapReason::ShardQueueFull.index()], 1);
            self.lost = None;
        }
        if self.try_push(frame.clone(), mode) == PushOutcome::Full {
            self.lose(frame.server_seqno(), stats, index);
        }
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
            if Instant::now() >= deadline {
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

/// Counts idle polls and decides when to spin, yield or sleep.
#[derive(Debug, Clone)]
pub struct Idler {
    strategy: IdleStrategy,
    idle_polls: u64,
}

/// What to do after an idle poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    Spin,
    Yield,
    Sleep(Duration),
}

impl Idler {
    /// A fresh idler.
    pub fn new(strategy: IdleStrategy) -> Idler {
        Idler {
            strategy,
            idle_polls: 0,
        }
    }

    /// An event arrived: back to spinning.
    pub fn reset(&mut self) {
        self.idle_polls = 0;
    }

    /// One more idle poll: what to do now.
    pub fn idle(&mut self) -> IdleAction {
        self.idle_polls = self.idle_polls.saturating_add(1);
        match self.strategy {
            IdleStrategy::BusySpin => IdleAction::Spin,
            IdleStrategy::SpinYieldPark {
                spins,
                yields,
                park,
                max_park,
            } => {
                let busy = u64::from(spins) + u64::from(yields);
                if self.idle_polls <= u64::from(spins) {
                    IdleAction::Spin
                } else if self.idle_polls <= busy {
                    IdleAction::Yield
                } else {
                    // Doubling per consecutive sleep; the shift is capped so it cannot overflow.
                    let sleeps = (self.idle_polls - busy - 1).min(16) as u32;
                    let d = park.saturating_mul(1u32 << sleeps);
                    IdleAction::Sleep(d.min(max_park.max(park)))
                }
            }
        }
    }
}

struct Tailer {
    config: Arc<Config>,
    links: Vec<ShardLink>,
    stats: StatsHub,
    shutdown: Arc<AtomicBool>,
    pipeline: Pipeline,
    out: Vec<Outbound>,
    /// Ring seqnos up to this one are history (startup backlog or a snapshot): pushed with
    /// [`PushMode::History`]. 0 = live.
    history_until: u64,
    /// Whether the ring being read is a snapshot (all of it is history).
    snapshot: bool,
}

impl Tailer {
    fn new(setup: TailerSetup) -> Tailer {
        Tailer {
            links: setup
                .shards
                .into_iter()
                .map(|tx| ShardLink { tx, lost: None })
                .collect(),
            pipeline: Pipeline::new(setup.config.chain),
            config: setup.config,
            stats: setup.stats,
            shutdown: setup.shutdown,
            out: Vec::with_capacity(16),
            history_until: 0,
            snapshot: false,
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn run(&mut self) {
        let path = self.config.ring_path.clone();
        let snapshot = self.config.is_snapshot();
        self.snapshot = snapshot;
        let mut first_attach = true;
        while !self.stopping() {
            let ring = match Ring::open(&path) {
                Ok(r) => Arc::new(r),
                Err(_) => {
                    std::thread::sleep(REOPEN_EVERY);
                    continue;
                }
            };
            let start = if snapshot || !first_attach {
                StartAt::First
            } else {
                StartAt::OldestBlock {
                    max_events: self.config.startup_backlog_events,
                }
            };
            if !first_attach {
                // A new ring file appeared after the old writer went away.
                bump(&self.stats.tailer.writer_restarts, 1);
                self.publish_loss(&Loss::WriterRestart);
            }
            // Everything already in the ring at a first attach is the startup backlog.
            self.history_until = if first_attach { ring.last_seqno() } else { 0 };
            first_attach = false;
            self.stats.tailer.set_ring_state(if snapshot {
                RingState::Replay
            } else {
                RingState::Live
            });
            let mut reader = RingReader::new(ring, start);
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
        loop {
            if self.stopping() {
                return TailEnd::Shutdown;
            }
            let outcome = reader.try_next();
            let t = &self.stats.tailer;
            match outcome {
                ReadOutcome::Ready(ev) => {
                    idler.reset();
                    let code = usize::from(ev.descriptor.event_type);
                    t.head_ring_seqno
                        .store(ev.descriptor.seqno, Ordering::Relaxed);
                    t.last_event_ts_ns
                        .store(ev.descriptor.record_epoch_nanos, Ordering::Relaxed);
                    t.last_event_read_ns.store(now_ns(), Ordering::Relaxed);
                    // Unknown codes fail to decode below and are counted once, as bad.
                    if let Some(c) = t.events_in.get(code).filter(|_| code != 0) {
                        bump(c, 1);
                    }
                    let descriptor = ev.descriptor;
                    if descriptor.seqno <= self.history_until && !snapshot {
                        bump(&t.backlog_events, 1);
                    }
                    match self
                        .pipeline
                        .on_event(&descriptor, ev.payload, &mut self.out)
                    {
                        Ok(processed) => {
                            self.count_transitions();
                            self.flush(descriptor.seqno);
                            if processed == Processed::BlockLevel {
                                self.publish_chain();
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
                }
                ReadOutcome::NotReady => {
                    match idler.idle() {
                        IdleAction::Spin => std::hint::spin_loop(),
                        IdleAction::Yield => std::thread::yield_now(),
                        IdleAction::Sleep(d) => std::thread::sleep(d),
                    }
                    if last_check.elapsed() >= LIVENESS_EVERY {
                        last_check = Instant::now();
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

    fn publish_loss(&mut self, loss: &Loss) {
        let gaps = &self.stats.tailer.gaps;
        let before = self.out.len();
        self.pipeline.on_loss(loss, &mut self.out);
        if let Some(c) = gaps.get(loss.reason().index()) {
            bump(c, (self.out.len() - before) as u64);
        }
        self.flush(0);
        self.publish_chain();
    }

    /// Counts the `Lifecycle` frames about to go out, by stage reached.
    fn count_transitions(&self) {
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
    /// only after block-level changes (a few times per block).
    fn publish_chain(&self) {
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
        self.stats.chain.publish(self.pipeline.bodies());
    }

    /// Pushes the pending frames to every shard, in order, and publishes the head. `ring_seqno`
    /// is the ring event they came from (0 for losses): history is pushed patiently.
    fn flush(&mut self, ring_seqno: u64) {
        let mode = if self.snapshot || (ring_seqno != 0 && ring_seqno <= self.history_until) {
            PushMode::History
        } else {
            PushMode::Live
        };
        for frame in self.out.drain(..) {
            for (i, link) in self.links.iter_mut().enumerate() {
                link.push(&frame, &self.stats, i, mode);
            }
        }
        let head = self.pipeline.head();
        let t = &self.stats.tailer;
        t.head_server_seqno.store(head, Ordering::Relaxed);
        if head != 0 {
            let window = self.config.resume_store_frames.max(1) as u64;
            t.oldest_server_seqno
                .store(head.saturating_sub(window - 1).max(1), Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idler_spins_then_yields_then_backs_off_and_resets_on_events() {
        let mut idler = Idler::new(IdleStrategy::SpinYieldPark {
            spins: 2,
            yields: 1,
            park: Duration::from_micros(7),
            max_park: Duration::from_micros(20),
        });
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(idler.idle(), IdleAction::Yield);
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(7)));
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(14)));
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(20)));
        for _ in 0..100 {
            assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(20)));
        }
        idler.reset();
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(Idler::new(IdleStrategy::BusySpin).idle(), IdleAction::Spin);
    }

    use crate::event::kind::EventType;
    use crate::event::payload::layout as pl;

    /// Feeds one hand-built event (zero payload but the block tag) to `p`.
    fn feed(p: &mut Pipeline, seqno: u64, ty: EventType, ext: [u64; 4], out: &mut Vec<Outbound>) {
        let size = match ty {
            EventType::BlockStart => pl::BLOCK_START,
            EventType::TxnHeaderStart => pl::TXN_HEADER_START,
            EventType::TxnLog => pl::TXN_LOG,
            EventType::BlockEnd => pl::BLOCK_END,
            _ => 0,
        };
        let mut payload = vec![0u8; size];
        if ty == EventType::BlockStart {
            payload[..32].copy_from_slice(&[9; 32]);
            payload[32..40].copy_from_slice(&77u64.to_le_bytes());
        }
        let d = Descriptor {
            seqno,
            event_type: ty.code(),
            payload_size: size as u32,
            record_epoch_nanos: 1_000 * seqno,
            payload_buf_offset: 0,
            content_ext: ext,
        };
        assert!(p.on_event(&d, &payload, out).is_ok());
    }

    fn gap_json(o: &Outbound) -> String {
        match o {
            Outbound::Meta(m) if m.kind == MetaKind::Gap => {
                String::from_utf8_lossy(&m.frame).into_owned()
            }
            other => panic!("not a gap: {other:?}"),
        }
    }

    #[test]
    fn a_lap_mid_block_drops_the_cut_block_from_the_gate_and_names_it() {
        let mut p = Pipeline::default();
        let mut out = Vec::new();
        feed(&mut p, 1, EventType::BlockStart, [1, 0, 0, 0], &mut out);
        feed(&mut p, 2, EventType::TxnHeaderStart, [1, 1, 0, 0], &mut out);
        feed(&mut p, 3, EventType::TxnLog, [1, 1, 0, 0], &mut out);
        assert_eq!(p.chain().gate().held_blocks(), 1);
        let held: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                Outbound::Event(e) => Some(e.server_seqno),
                Outbound::Meta(_) => None,
            })
            .collect();
        out.clear();
        p.on_loss(&Loss::RingLap { missing: 4..90 }, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].server_seqno(), p.head());
        let id = format!("0x{}", "09".repeat(32));
        assert_eq!(
            gap_json(&out[0]),
            format!(
                "{{\"server_seqno\":{},\"Gap\":{{\"reason\":\"ring_lapped\",\"from_seqno\":{},\
                 \"to_seqno\":{},\"ring_from_seqno\":4,\"ring_to_seqno\":89,\"block_number\":77,\
                 \"block_id\":\"{id}\"}}}}",
                p.head(),
                held[0],
                held[held.len() - 1]
            )
        );
        assert_eq!(p.chain().gate().held_blocks(), 0);
        // Nothing is open any more: a later expired payload names no block.
        out.clear();
        p.on_loss(&Loss::Expired { ring_seqno: 95 }, &mut out);
        assert!(gap_json(&out[0]).ends_with(
            "\"Gap\":{\"reason\":\"payload_expired\",\"ring_from_seqno\":95,\"ring_to_seqno\":95}}"
        ));
    }

    #[test]
    fn a_writer_restart_announces_every_held_block() {
        let mut p = Pipeline::default();
        let mut out = Vec::new();
        feed(&mut p, 1, EventType::BlockStart, [1, 0, 0, 0], &mut out);
        feed(&mut p, 2, EventType::BlockEnd, [1, 0, 0, 0], &mut out);
        out.clear();
        p.on_loss(&Loss::WriterRestart, &mut out);
        // One gap for the restart, one for the complete but unreleased block it strands.
        assert_eq!(out.len(), 2);
        assert!(gap_json(&out[0]).ends_with("\"Gap\":{\"reason\":\"writer_restart\"}}"));
        assert!(gap_json(&out[1]).contains("\"reason\":\"writer_restart\""));
        assert!(gap_json(&out[1]).contains("\"block_number\":77"));
        assert_eq!(p.chain().gate().held_blocks(), 0);
        assert!(out[0].server_seqno() < out[1].server_seqno());
    }

    #[test]
    fn a_full_shard_gets_one_gap_for_everything_it_missed_once_it_has_room() {
        let hub = StatsHub::new(1, 0);
        let (tx, rx, _w) = crate::fanout::channel(1).unwrap();
        let mut link = ShardLink { tx, lost: None };
        let mut pipeline = Pipeline::default();
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
}
