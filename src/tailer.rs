//! The tailer: one dedicated thread (pinned to `Config::tailer_core`) that reads the ring,
//! turns each event into frames once, and pushes them into every shard's SPSC inbox.
//!
//! Runs on the tailer core, nothing else does. Data flow per event:
//! `RingReader::try_next` → [`Pipeline::on_event`] (decode + encode once + stamp
//! `server_seqno`; the seam where the chain tracker and resume store plug in) →
//! `FanoutSender::try_push` to each shard.
//!
//! Invariants:
//! - Never blocks on a shard: a full inbox is counted (`spsc_full`) and the frames that
//!   shard missed are announced to it by one `Gap` frame as soon as it has room again.
//! - Nothing is lost silently: ring laps, expired payloads and writer restarts become `Gap`
//!   frames to every shard, counted in [`crate::metrics::TailerStats`].
//! - Bad bytes in the ring are counted and skipped, never a panic.
//!
//! Must never: allocate per event beyond the one encoded JSON box, take a lock, or sleep while
//! events are available (it sleeps only per [`IdleStrategy`] when the ring is idle).

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, IdleStrategy};
use crate::event::encoder::Encoder;
use crate::fanout::{FanoutSender, PushOutcome};
use crate::frame::{EncodedEvent, MetaFrame, MetaKind, Outbound};
use crate::metrics::{bump, now_ns, RingState, StatsHub};
use crate::protocol::messages::{gap, GapInfo, GapReason};
use crate::ring::layout::Descriptor;
use crate::ring::{ReadOutcome, Ring, RingReader, StartAt, WriterState};

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
            set_precise_timer_slack();
            if setup.config.pin_cores {
                let _ = core_affinity::set_for_current(core_affinity::CoreId {
                    id: setup.config.tailer_core,
                });
            }
            Tailer::new(setup).run();
        })
}

/// Makes this thread's sleeps precise: Linux lets a `nanosleep` of a normal thread end up to
/// its timer slack (default 50 µs) late, which doubled the tailer's idle 50 µs sleeps. 1 ns
/// of slack costs nothing measurable (the tailer's sleeps are its only timers).
fn set_precise_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long by value and only changes this
    // thread's timer slack; a failure leaves the default slack.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
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

/// The seam between reading the ring and publishing frames: everything the tailer does with
/// one event. Today: encode once and stamp a `server_seqno`. The chain tracker (lifecycle,
/// stage gate, analytics) and the resume store plug in here, adding frames to `out`.
#[derive(Debug, Default)]
pub struct Pipeline {
    encoder: Encoder,
    /// Last server_seqno stamped (0 = none yet).
    server_seqno: u64,
}

impl Pipeline {
    fn next_seqno(&mut self) -> u64 {
        self.server_seqno += 1;
        self.server_seqno
    }

    /// Last server_seqno stamped.
    pub fn head(&self) -> u64 {
        self.server_seqno
    }

    /// Encodes one ring event and appends the frames to publish. `Err` = undecodable payload
    /// (counted by the encoder, skipped).
    pub fn on_event(
        &mut self,
        descriptor: &Descriptor,
        payload: &[u8],
        out: &mut Vec<Outbound>,
    ) -> Result<(), crate::event::decode::DecodeError> {
        let encoded = self.encoder.encode(descriptor, payload)?;
        let server_seqno = self.next_seqno();
        out.push(Outbound::Event(Arc::new(EncodedEvent {
            server_seqno,
            ring_seqno: descriptor.seqno,
            timestamp_ns: descriptor.record_epoch_nanos,
            gate: crate::chain::stage::CommitStage::Proposed,
            keys: encoded.keys,
            json: encoded.json,
            stage_span: encoded.stage_span,
        })));
        Ok(())
    }

    /// Appends the `Gap` frame announcing `loss` to every session, and forgets per-block
    /// state that the loss made unreliable.
    pub fn on_loss(&mut self, loss: &Loss, out: &mut Vec<Outbound>) {
        let server_seqno = self.next_seqno();
        let mut info = GapInfo {
            reason: GapReason::WriterRestart,
            from_seqno: None,
            to_seqno: None,
            ring_from_seqno: None,
            ring_to_seqno: None,
        };
        match loss {
            Loss::RingLap { missing } => {
                self.encoder.reset_flow();
                info.reason = GapReason::RingLapped;
                info.ring_from_seqno = Some(missing.start);
                info.ring_to_seqno = Some(missing.end.saturating_sub(1));
            }
            Loss::Expired { ring_seqno } => {
                info.reason = GapReason::PayloadExpired;
                info.ring_from_seqno = Some(*ring_seqno);
                info.ring_to_seqno = Some(*ring_seqno);
            }
            Loss::WriterRestart => self.encoder.reset_flow(),
        }
        out.push(gap_meta(server_seqno, &info));
    }
}

fn gap_meta(server_seqno: u64, info: &GapInfo) -> Outbound {
    Outbound::Meta(Arc::new(MetaFrame {
        server_seqno,
        kind: MetaKind::Gap,
        stage: None,
        frame: gap(server_seqno, info).into_boxed_slice(),
    }))
}

/// Where one shard stands from the tailer's side.
#[derive(Debug)]
struct ShardLink {
    tx: FanoutSender,
    /// server_seqnos this shard missed because its inbox was full, not yet announced.
    lost: Option<Range<u64>>,
}

impl ShardLink {
    /// Pushes `frame`; first announces earlier losses when there is room again. The Gap frame
    /// carries the last lost seqno as its own `server_seqno`: it is below every later frame
    /// and above everything this shard delivered before, so per-connection order holds, and a
    /// client resuming from it misses nothing it was not told about.
    fn push(&mut self, frame: &Outbound, stats: &StatsHub, index: usize) {
        if let Some(lost) = self.lost.clone() {
            let last = lost.end - 1;
            let frame_gap = gap_meta(
                last,
                &GapInfo {
                    reason: GapReason::ShardOverflow,
                    from_seqno: Some(lost.start),
                    to_seqno: Some(last),
                    ring_from_seqno: None,
                    ring_to_seqno: None,
                },
            );
            if self.tx.try_push(frame_gap) == PushOutcome::Full {
                self.lose(frame.server_seqno(), stats, index);
                return;
            }
            self.lost = None;
        }
        if self.tx.try_push(frame.clone()) == PushOutcome::Full {
            self.lose(frame.server_seqno(), stats, index);
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
}

impl Tailer {
    fn new(setup: TailerSetup) -> Tailer {
        Tailer {
            links: setup
                .shards
                .into_iter()
                .map(|tx| ShardLink { tx, lost: None })
                .collect(),
            config: setup.config,
            stats: setup.stats,
            shutdown: setup.shutdown,
            pipeline: Pipeline::default(),
            out: Vec::with_capacity(16),
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn run(&mut self) {
        let path = self.config.ring_path.clone();
        let snapshot = self.config.is_snapshot();
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
                StartAt::NewestBlock
            };
            if !first_attach {
                // A new ring file appeared after the old writer went away.
                bump(&self.stats.tailer.writer_restarts, 1);
                self.publish_loss(&Loss::WriterRestart);
            }
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
        // An event was read since `last_check`: the writer is alive, skip the check.
        let mut heard = false;
        // Events until the read clock is sampled again: reading it per event was ~5 % of the
        // tailer's time at full rate, and its readers (`/health`, lag) need milliseconds.
        // The first event after an idle poll always samples it.
        let mut clock_in = 0u32;
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
                    t.head_ring_seqno
                        .store(ev.descriptor.seqno, Ordering::Relaxed);
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
                    if self
                        .pipeline
                        .on_event(&descriptor, ev.payload, &mut self.out)
                        .is_err()
                    {
                        bump(&self.stats.tailer.events_bad, 1);
                    }
                    self.flush();
                }
                ReadOutcome::NotReady => {
                    clock_in = 0;
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
        self.pipeline.on_loss(loss, &mut self.out);
        self.flush();
    }

    /// Pushes the pending frames to every shard, in order, and publishes the head.
    fn flush(&mut self) {
        for frame in self.out.drain(..) {
            for (i, link) in self.links.iter_mut().enumerate() {
                link.push(&frame, &self.stats, i);
            }
        }
        self.stats
            .tailer
            .head_server_seqno
            .store(self.pipeline.head(), Ordering::Relaxed);
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
            link.push(f, &hub, 0);
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
            link.push(&next[0], &hub, 0);
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
