//! The edge's source: one ordered JetStream consumer of the origin's stream, feeding the
//! history and the shards exactly as the tailer does, with the origin's epoch and
//! `server_seqno`s (docs/scale-out.md). `ringgate serve --source nats://…`.
//!
//! Runs on its own plain thread (the tailer's place; there is no ring). Data flow: NATS
//! message → its history record decoded back into the origin's [`Outbound`] → history queue
//! → every shard's inbox through the tailer's own shard links (`ShardLink`) (a full shard is counted and
//! told by a `shard_queue_full` Gap, as on the origin).
//!
//! The consumer is what NATS clients call an ordered consumer: ephemeral, push, no acks,
//! flow control and idle heartbeats, filtered to the epoch's subjects. A hole in its
//! consumer sequence, a heartbeat that reports messages we did not get, a lost connection or
//! silence past three heartbeats: it is recreated from the stream sequence after the last
//! whole publish window received. Catching up (the consumer reports messages pending) is
//! pushed to the shards patiently, like the origin's startup backlog; live frames never wait.
//!
//! **Windows.** The origin publishes a window of frames as one message per subject
//! (`crate::bus::stream::envelopes`), so within a window the stream is ordered by subject,
//! not seqno. The edge gathers a window's messages (headers `Ringgate-Window`,
//! `Ringgate-Window-Frames`) and delivers its frames in seqno order once it holds them all;
//! a window cut short (the stream's retention dropped its first messages, an origin died
//! publishing it) is delivered with what it has when the next window starts or after
//! `PARTIAL_WINDOW_WAIT` (1 s) of silence, its missing frames becoming an announced hole.
//!
//! Invariants:
//! - a frame is delivered at most once: anything at or below the last `server_seqno`
//!   delivered is dropped (a re-delivery after a reconnect, an origin that published again);
//! - every hole is announced: a frame whose seqno jumps past the next one (and is not itself
//!   the origin's `bus_lost` Gap for it) is preceded by `Gap{reason:"bus_lost"}` for the
//!   missing range, carrying the last missing seqno as its own;
//! - a copy whose original the edge never saw (it started mid-block, the original aged out)
//!   is a hole like any other.
//!
//! A second consumer follows the origin's chain bodies (`crate::bus::chain`) into this
//! edge's REST endpoints and connect snapshot.
//!
//! Only this epoch's subjects are consumed: an origin restarted without its history dir
//! starts a new epoch, and an edge follows it only when restarted (docs/scale-out.md §4).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shard_link::{PushMode, ShardLink};
use crate::bus::chain;
use crate::bus::client::{Connection, Message};
use crate::bus::creds::Credentials;
use crate::bus::stream::{create_consumer, header, AckInfo, Start};
use crate::handoff::fanout::FanoutSender;
use crate::history::record::{self, Originals};
use crate::history::writer::HistorySender;
use crate::log::{self, Level};
use crate::metrics::{RingState, StatsHub};
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::{MetaKind, Outbound};
use crate::wire::protocol::messages::gap_frame;

/// Idle heartbeat asked of the consumer; three missed ones mean the server is gone.
const HEARTBEAT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(200);
/// Originals kept to rebuild `min_stage` copies (which refer to them by seqno): a block is
/// released within a few thousand frames of its events, far below this.
const ORIGINALS_KEPT: usize = 1 << 18;
/// How long an incomplete window waits for its other messages while nothing arrives.
const PARTIAL_WINDOW_WAIT: Duration = Duration::from_secs(1);
const SID_DELIVER: u64 = 1;
const SID_API: u64 = 2;
const SID_CHAIN: u64 = 3;

/// What the edge thread needs.
#[derive(Debug)]
pub struct EdgeSetup {
    pub urls: Vec<String>,
    /// `--nats-creds`, read at startup; `None`: whatever the URLs carry.
    pub creds: Option<Credentials>,
    pub stream: String,
    /// The origin's epoch (from [`discover_epoch`]).
    pub epoch: u64,
    pub shards: Vec<FanoutSender>,
    pub history: Option<HistorySender>,
    /// As the tailer's `resume_window_frames`: the oldest resumable seqno reported.
    pub resume_window_frames: usize,
    pub stats: StatsHub,
    pub shutdown: Arc<AtomicBool>,
}

/// The epoch of the newest frame on `stream`: an edge serves that epoch. Waits up to
/// `timeout` for the stream to exist and hold a frame; refused credentials fail at once
/// (waiting cannot fix them).
pub fn discover_epoch(
    urls: &[String],
    creds: Option<&Credentials>,
    stream: &str,
    timeout: Duration,
) -> io::Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let err = match newest_epoch(urls, creds, stream) {
            Ok(Some(epoch)) => return Ok(epoch),
            Ok(None) => io::Error::new(io::ErrorKind::NotFound, "the stream holds no frame"),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("NATS: {e} (check --nats-creds)"),
                ))
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                err.kind(),
                format!("NATS stream {stream}: {err} (is the origin publishing?)"),
            ));
        }
        std::thread::sleep(RETRY);
    }
}

fn newest_epoch(
    urls: &[String],
    creds: Option<&Credentials>,
    stream: &str,
) -> io::Result<Option<u64>> {
    let mut c = Connection::connect(urls, creds, "ringgate-edge", CONNECT_TIMEOUT)?;
    let deliver = format!("_RG_EDGE.{}.epoch", std::process::id());
    c.subscribe(&deliver, SID_DELIVER);
    let filter = format!("{stream}.>");
    create_consumer(
        &mut c,
        stream,
        &filter,
        &deliver,
        Start::Last,
        HEARTBEAT,
        SID_API,
    )?;
    let deadline = Instant::now() + HEARTBEAT * 2;
    while let Some(m) = c.next(deadline.saturating_duration_since(Instant::now()))? {
        if m.sid == SID_DELIVER && m.status().is_none() {
            return Ok(m.header(header::EPOCH).and_then(|e| e.parse().ok()));
        }
    }
    Ok(None)
}

/// Starts the edge thread.
pub fn spawn(setup: EdgeSetup) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringgate-edge".into())
        .spawn(move || {
            let mut edge = Edge::new(setup);
            edge.run();
            if let Some(h) = &mut edge.history {
                h.flush();
            }
        })
}

struct Edge {
    urls: Vec<String>,
    creds: Option<Credentials>,
    stream: String,
    epoch: u64,
    links: Vec<ShardLink>,
    history: Option<HistorySender>,
    window: u64,
    stats: StatsHub,
    shutdown: Arc<AtomicBool>,
    /// Last `server_seqno` delivered (0: none yet).
    last_seqno: u64,
    /// The stream sequence to ask for after a reconnect: the first message of the window
    /// being gathered, or the one after the last window delivered.
    next_stream_seq: u64,
    /// The publish window being gathered.
    gathering: Option<Window>,
    originals: Originals,
    original_order: VecDeque<u64>,
    /// Consumers made (for the deliver subject, so a dead consumer's stragglers are ignored).
    generation: u64,
}

/// A publish window's frames, gathered from its messages.
struct Window {
    /// Its first `server_seqno` (header `Ringgate-Window`).
    id: u64,
    /// Its frame count (header `Ringgate-Window-Frames`).
    expected: usize,
    frames: Vec<Outbound>,
    /// When its first message came.
    since: Instant,
    /// The stream sequence after its last message so far.
    next_stream_seq: u64,
}

/// Why a consumer is given up.
enum Restart {
    /// Recreate it (hole, bad heartbeat, lost connection).
    Again(String),
    Shutdown,
}

impl Edge {
    fn new(setup: EdgeSetup) -> Edge {
        Edge {
            links: setup
                .shards
                .into_iter()
                .map(|tx| ShardLink::new(tx, Arc::clone(&setup.shutdown)))
                .collect(),
            urls: setup.urls,
            creds: setup.creds,
            stream: setup.stream,
            epoch: setup.epoch,
            history: setup.history,
            window: setup.resume_window_frames.max(1) as u64,
            stats: setup.stats,
            shutdown: setup.shutdown,
            last_seqno: 0,
            next_stream_seq: 1,
            gathering: None,
            originals: Originals::new(),
            original_order: VecDeque::new(),
            generation: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn run(&mut self) {
        self.stats.tailer.set_ring_state(RingState::Waiting);
        while !self.stopping() {
            match self.consume() {
                Restart::Shutdown => return,
                Restart::Again(why) => {
                    log::event(
                        Level::Warn,
                        "edge_consumer_restart",
                        &[
                            ("why", why.as_str().into()),
                            ("from_stream_seq", self.next_stream_seq.into()),
                            ("last_server_seqno", self.last_seqno.into()),
                        ],
                    );
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    /// One consumer's life: connect, create it, deliver until it must be recreated.
    fn consume(&mut self) -> Restart {
        self.generation += 1;
        // A window half gathered is read again whole from its first message.
        self.gathering = None;
        let deliver = format!("_RG_EDGE.{}.{}", std::process::id(), self.generation);
        let filter = format!("{}.{}.>", self.stream, self.epoch);
        let start = Start::Sequence(self.next_stream_seq);
        let creds = self.creds.as_ref();
        let mut c = match Connection::connect(&self.urls, creds, "ringgate-edge", CONNECT_TIMEOUT)
            .and_then(|mut c| {
                self.follow_chain(&mut c, &deliver);
                c.subscribe(&deliver, SID_DELIVER);
                create_consumer(
                    &mut c,
                    &self.stream,
                    &filter,
                    &deliver,
                    start,
                    HEARTBEAT,
                    SID_API,
                )?;
                Ok(c)
            }) {
            Ok(c) => c,
            Err(e) => return Restart::Again(e.to_string()),
        };
        log::event(
            Level::Info,
            "edge_consumer",
            &[
                ("stream", self.stream.as_str().into()),
                ("epoch", self.epoch.into()),
                ("from_stream_seq", self.next_stream_seq.into()),
            ],
        );
        let mut next_consumer_seq = 1u64;
        let mut heard = Instant::now();
        loop {
            if self.stopping() {
                return Restart::Shutdown;
            }
            let m = match c.next(Duration::from_millis(50)) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    self.idle();
                    if heard.elapsed() > HEARTBEAT * 3 {
                        return Restart::Again("no heartbeat".into());
                    }
                    continue;
                }
                Err(e) => return Restart::Again(e.to_string()),
            };
            if m.sid == SID_CHAIN {
                if let Err(e) = self.on_chain(&mut c, &m) {
                    return Restart::Again(e.to_string());
                }
                continue;
            }
            if m.sid != SID_DELIVER {
                continue;
            }
            heard = Instant::now();
            match m.status() {
                Some(100) => {
                    if let Some(reply) = &m.reply {
                        // Flow control: answer, or the server stops delivering.
                        c.publish(reply, None, &[], &[]);
                        if let Err(e) = c.flush() {
                            return Restart::Again(e.to_string());
                        }
                    } else if let Some(last) = m.header("Nats-Last-Consumer") {
                        // A heartbeat names the last consumer sequence sent.
                        if last.parse::<u64>().ok() != Some(next_consumer_seq - 1) {
                            return Restart::Again(format!("heartbeat says {last} sent"));
                        }
                    }
                    continue;
                }
                Some(code) => return Restart::Again(format!("status {code}")),
                None => {}
            }
            let Some(ack) = AckInfo::of(&m) else {
                continue;
            };
            if ack.consumer_seq != next_consumer_seq {
                return Restart::Again(format!(
                    "consumer sequence {} after {}",
                    ack.consumer_seq,
                    next_consumer_seq - 1
                ));
            }
            next_consumer_seq += 1;
            let mode = if ack.pending > 0 {
                PushMode::History
            } else {
                PushMode::Live
            };
            self.on_message(&m, ack.stream_seq, mode);
            if ack.pending == 0 {
                self.stats.tailer.set_ring_state(RingState::Live);
            } else {
                self.stats.tailer.set_ring_state(RingState::Replay);
            }
        }
    }

    /// Subscribes to the origin's chain bodies (`crate::bus::chain`): the last one, then each
    /// new one. An origin that publishes none (an older version) leaves REST's chain
    /// endpoints empty on this edge, logged, and the frames flowing.
    fn follow_chain(&self, c: &mut Connection, deliver: &str) {
        let deliver = format!("{deliver}.chain");
        c.subscribe(&deliver, SID_CHAIN);
        let made = create_consumer(
            c,
            &chain::chain_stream(&self.stream),
            &chain::chain_subject(&self.stream, self.epoch),
            &deliver,
            Start::Last,
            HEARTBEAT,
            SID_API,
        );
        if let Err(e) = made {
            log::event(
                Level::Warn,
                "edge_no_chain_bodies",
                &[("error", e.to_string().as_str().into())],
            );
        }
    }

    /// One message of the chain-bodies consumer: new bodies for REST and new sessions, or
    /// its flow control (answered) and heartbeats. A malformed message is logged and skipped.
    fn on_chain(&mut self, c: &mut Connection, m: &Message) -> io::Result<()> {
        if m.status().is_some() {
            if let Some(reply) = &m.reply {
                c.publish(reply, None, &[], &[]);
                c.flush()?;
            }
            return Ok(());
        }
        match chain::decode(&m.payload) {
            Ok(bodies) => self.stats.chain.publish(bodies),
            Err(e) => log::event(
                Level::Warn,
                "edge_bad_chain_bodies",
                &[("error", e.as_str().into())],
            ),
        }
        Ok(())
    }

    /// While nothing arrives: an incomplete window waited long enough is delivered, the
    /// history gets its partial batch, the shards their losses.
    fn idle(&mut self) {
        if self
            .gathering
            .as_ref()
            .is_some_and(|w| w.since.elapsed() >= PARTIAL_WINDOW_WAIT)
        {
            self.deliver_window(PushMode::Live);
        }
        if let Some(h) = &mut self.history {
            h.flush();
        }
        for link in &mut self.links {
            link.announce_lost(&self.stats);
        }
    }

    fn on_message(&mut self, m: &Message, stream_seq: u64, mode: PushMode) {
        let num = |name: &str| m.header(name).and_then(|v| v.parse::<u64>().ok());
        let window_id = num(header::WINDOW);
        let expected = num(header::WINDOW_FRAMES).unwrap_or(0) as usize;
        if self
            .gathering
            .as_ref()
            .is_some_and(|w| Some(w.id) != window_id)
        {
            // The next window started before this one was whole: what it has goes now.
            self.deliver_window(mode);
        }
        let mut unresolved = Vec::new();
        let frames = match record::decode_lenient(&m.payload, &mut self.originals, &mut unresolved)
        {
            Ok(f) => f,
            Err(e) => {
                // Not a frame of ours: skipped, and its seqnos (if any) become a hole.
                log::event(
                    Level::Warn,
                    "edge_bad_message",
                    &[
                        ("subject", m.subject.as_str().into()),
                        ("error", e.to_string().as_str().into()),
                    ],
                );
                Vec::new()
            }
        };
        for f in &frames {
            if let Outbound::Event(e) = f {
                if !e.is_copy() {
                    self.keep_original(e.server_seqno);
                }
            }
        }
        let window = self.gathering.get_or_insert_with(|| Window {
            id: window_id.unwrap_or(0),
            expected,
            frames: Vec::new(),
            since: Instant::now(),
            next_stream_seq: stream_seq + 1,
        });
        window.next_stream_seq = stream_seq + 1;
        // Frames the origin made but the edge could not rebuild count toward the window.
        window.expected = window.expected.saturating_sub(unresolved.len());
        window.frames.extend(frames);
        if window_id.is_none() || window.frames.len() >= window.expected {
            self.deliver_window(mode);
        }
    }

    /// Delivers the gathered window's frames in seqno order; a new consumer starts after it.
    fn deliver_window(&mut self, mode: PushMode) {
        let Some(mut window) = self.gathering.take() else {
            return;
        };
        self.next_stream_seq = window.next_stream_seq;
        window.frames.sort_by_key(Outbound::server_seqno);
        for f in window.frames {
            self.deliver(f, mode);
        }
    }

    fn keep_original(&mut self, seqno: u64) {
        self.original_order.push_back(seqno);
        while self.original_order.len() > ORIGINALS_KEPT {
            if let Some(old) = self.original_order.pop_front() {
                self.originals.remove(&old);
            }
        }
    }

    fn deliver(&mut self, frame: Outbound, mode: PushMode) {
        let seqno = frame.server_seqno();
        if seqno <= self.last_seqno {
            return;
        }
        let origin_gap = matches!(&frame, Outbound::Meta(m) if m.kind == MetaKind::Gap);
        if self.last_seqno != 0 && seqno > self.last_seqno + 1 && !origin_gap {
            let g = Gap::seqnos(GapReason::BusLost, self.last_seqno + 1, seqno - 1);
            bump_gap(&self.stats);
            log::event(
                Level::Warn,
                "gap",
                &[
                    ("reason", "bus_lost".into()),
                    ("from_seqno", (self.last_seqno + 1).into()),
                    ("to_seqno", (seqno - 1).into()),
                ],
            );
            self.push(Outbound::Meta(Arc::new(gap_frame(seqno - 1, &g))), mode);
        }
        self.push(frame, mode);
    }

    fn push(&mut self, frame: Outbound, mode: PushMode) {
        if let Some(h) = &mut self.history {
            h.push(&frame);
        }
        for (i, link) in self.links.iter_mut().enumerate() {
            link.push(&frame, &self.stats, i, mode);
        }
        let t = &self.stats.tailer;
        let head = frame.server_seqno();
        self.last_seqno = head;
        if let Outbound::Event(e) = &frame {
            t.last_event_ts_ns.store(e.timestamp_ns, Ordering::Relaxed);
            t.head_ring_seqno.store(e.ring_seqno, Ordering::Relaxed);
        }
        t.head_server_seqno.store(head, Ordering::Relaxed);
        t.oldest_server_seqno.store(
            head.saturating_sub(self.window - 1).max(1),
            Ordering::Relaxed,
        );
    }
}

fn bump_gap(stats: &StatsHub) {
    crate::metrics::bump(&stats.tailer.gaps[GapReason::BusLost.index()], 1);
}
