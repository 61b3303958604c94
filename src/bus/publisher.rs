//! The origin's publisher: every frame the tailer makes, published once to the JetStream
//! stream, from a plain thread of its own.
//!
//! The tailer's end is [`BusSender`]: one `Arc` clone and one bounded-queue push per frame,
//! never a wait. A full queue (the bus fell behind or is down for longer than the queue
//! holds) loses the frame for the stream, counted, remembered as a seqno range, and announced
//! by one `Gap{reason:"bus_lost"}` frame (its own `server_seqno` is the last lost one, as a
//! shard queue's loss is) as soon as the queue has room again.
//!
//! The publisher thread publishes in **windows**, clocked by JetStream's acks: when nothing is
//! unacked it takes every frame queued (at most [`PublishSettings::window_frames`] and
//! [`WINDOW_BYTES`]) and publishes them as one message per subject
//! ([`crate::bus::stream::envelopes`]), async, each kept until JetStream acks it; the next
//! window goes when the last ack is in. An idle origin therefore publishes each frame as it
//! comes (a window of one), and a busy one puts more frames in each message the slower the
//! bus answers, which is what keeps a stream of tens of thousands of frames a second within
//! what one `nats-server` stores (docs/decisions/nats-windows.md). After a lost connection
//! it reconnects (to any of the URLs), re-checks the stream and publishes every unacked message
//! again, in seqno order; the `Nats-Msg-Id` (`<epoch>:<first seqno>`) makes JetStream drop the ones
//! it already stored (within the stream's duplicate window), so the stream holds each frame
//! once. While it is disconnected the unacked window stays held and the queue fills: a
//! longer outage becomes a counted `bus_lost` Gap, never a stalled tailer. Credentials the
//! server refuses are the same: a failed connect (counted as `auth_refused`, logged as
//! `bus_auth_refused`), retried with the same backoff, while the origin serves its clients.
//!
//! Invariants: windows reach the stream in `server_seqno` order (a window's messages are
//! ordered by subject, not seqno; the window headers let a reader restore the order);
//! nothing is published twice into the stream (dedup id); once the gateway stops, the thread
//! exits when the tailer's sender is gone and everything is acked, or after
//! [`DRAIN_ON_EXIT`], whichever comes first.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bus::chain::{self, CHAIN_EVERY};
use crate::bus::client::Connection;
use crate::bus::creds::Credentials;
use crate::bus::stream::{ensure_stream, envelopes, Envelope, StreamSettings};
use crate::handoff::published::ChainSlot;
use crate::log::{self, Level};
use crate::metrics::BusStats;
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::Outbound;
use crate::wire::protocol::messages::gap_frame;

/// Longest the publisher keeps trying to get its last frames acked once the tailer stopped.
pub const DRAIN_ON_EXIT: Duration = Duration::from_secs(5);
/// Record bytes in one window, at most (NATS refuses a message over its `max_payload`, 1 MiB
/// by default; a window's messages are each at most the whole window).
pub const WINDOW_BYTES: usize = 512 << 10;
/// An unacked frame older than this means the connection is broken: reconnect, publish again.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(2);
const SID_ACKS: u64 = 1;
const SID_API: u64 = 2;

/// Where and how the origin publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    /// `nats://host:port` of one or more servers of the cluster.
    pub urls: Vec<String>,
    /// `--nats-creds`, read at startup; `None`: whatever the URLs carry.
    pub creds: Option<Credentials>,
    pub stream: StreamSettings,
    /// Frames the tailer may queue for the publisher before losing them.
    pub queue_frames: usize,
    /// Frames in one publish window, at most.
    pub window_frames: usize,
}

/// The tailer's end of the queue to the publisher.
#[derive(Debug)]
pub struct BusSender {
    tx: SyncSender<Outbound>,
    /// `server_seqno`s lost to a full queue, not yet announced.
    lost: Option<Range<u64>>,
    stats: Arc<BusStats>,
}

impl BusSender {
    /// Queues `frame` for the stream; never blocks. First announces earlier losses when there
    /// is room again.
    pub fn push(&mut self, frame: &Outbound) {
        let seqno = frame.server_seqno();
        if !self.announce() || self.tx.try_send(frame.clone()).is_err() {
            self.stats.queue_lost.fetch_add(1, Ordering::Relaxed);
            self.lost = Some(match self.lost.take() {
                Some(r) => r.start..seqno + 1,
                None => seqno..seqno + 1,
            });
        }
    }

    /// Sends the pending loss announcement if the queue has room (the tailer calls it while
    /// the ring is idle).
    pub fn announce_lost(&mut self) {
        let _ = self.announce();
    }

    /// `true` when nothing is pending or the Gap went in.
    fn announce(&mut self) -> bool {
        let Some(lost) = self.lost.clone() else {
            return true;
        };
        let last = lost.end - 1;
        let g = Gap::seqnos(GapReason::BusLost, lost.start, last);
        let frame = Outbound::Meta(Arc::new(gap_frame(last, &g)));
        if self.tx.try_send(frame).is_err() {
            return false;
        }
        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        self.lost = None;
        true
    }
}

/// Starts the publisher thread for `epoch`'s frames. `stopping` is the gateway's shutdown
/// flag: once set, the publisher has [`DRAIN_ON_EXIT`] to publish what is queued and get it
/// acked; it exits sooner once the tailer's sender is gone and everything is acked.
pub fn spawn(
    settings: PublishSettings,
    epoch: u64,
    stopping: Arc<AtomicBool>,
    stats: Arc<BusStats>,
    chain: Arc<ChainSlot>,
) -> io::Result<(BusSender, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(settings.queue_frames.max(1));
    let thread_stats = Arc::clone(&stats);
    let handle = std::thread::Builder::new()
        .name("ringgate-publish".into())
        .spawn(move || Publisher::new(settings, epoch, thread_stats, chain).run(rx, &stopping))?;
    let sender = BusSender {
        tx,
        lost: None,
        stats: Arc::clone(&stats),
    };
    Ok((sender, handle))
}

/// One message as published, kept until acked.
struct InFlight {
    envelope: Envelope,
    sent: Instant,
}

struct Publisher {
    settings: PublishSettings,
    epoch: u64,
    stats: Arc<BusStats>,
    conn: Option<Connection>,
    /// The unacked messages of the current window, by first `server_seqno`: publishing again
    /// after a reconnect goes in seqno order.
    in_flight: BTreeMap<u64, InFlight>,
    /// Reply subjects are `<ack_prefix><first seqno>`.
    ack_prefix: String,
    retry_at: Instant,
    retry_wait: Duration,
    /// The tailer's chain bodies, and the publication of them last sent (`None`: send now).
    chain: Arc<ChainSlot>,
    chain_sent: Option<u64>,
    chain_sent_at: Instant,
}

impl Publisher {
    fn new(
        settings: PublishSettings,
        epoch: u64,
        stats: Arc<BusStats>,
        chain: Arc<ChainSlot>,
    ) -> Publisher {
        Publisher {
            chain,
            chain_sent: None,
            chain_sent_at: Instant::now(),
            ack_prefix: format!("_RG_ACK.{}.{epoch}.", std::process::id()),
            settings,
            epoch,
            stats,
            conn: None,
            in_flight: BTreeMap::new(),
            retry_at: Instant::now(),
            retry_wait: Duration::from_millis(100),
        }
    }

    fn run(mut self, rx: Receiver<Outbound>, stopping: &AtomicBool) {
        // Set once the gateway stops: what is queued and unacked by then has this long.
        let mut drain_until: Option<Instant> = None;
        let mut tailer_gone = false;
        let mut window: Vec<Outbound> = Vec::new();
        loop {
            if drain_until.is_none() && stopping.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN_ON_EXIT);
            }
            let all_acked = self.in_flight.is_empty();
            if (tailer_gone && all_acked) || drain_until.is_some_and(|t| Instant::now() >= t) {
                self.log_exit();
                return;
            }
            if self.conn.is_none() && Instant::now() >= self.retry_at {
                self.connect();
            }
            if self.conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if all_acked {
                // The last window is acked: the next one is everything queued since, or,
                // when nothing is, the next frame to come.
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(frame) => window.push(frame),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => tailer_gone = true,
                }
                let mut bytes = window.iter().map(Outbound::byte_len).sum::<usize>();
                while !window.is_empty()
                    && window.len() < self.settings.window_frames
                    && bytes < WINDOW_BYTES
                {
                    match rx.try_recv() {
                        Ok(frame) => {
                            bytes += frame.byte_len();
                            window.push(frame);
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            tailer_gone = true;
                            break;
                        }
                    }
                }
                self.publish(&window);
                window.clear();
            }
            self.publish_chain();
            if let Err(e) = self.flush_and_read_acks() {
                self.disconnect(&e);
            }
        }
    }

    fn publish(&mut self, window: &[Outbound]) {
        let now = Instant::now();
        for envelope in envelopes(&self.settings.stream.name, self.epoch, window) {
            if let Some(c) = &mut self.conn {
                let reply = format!("{}{}", self.ack_prefix, envelope.first_seqno);
                c.publish(
                    &envelope.subject,
                    Some(&reply),
                    &envelope.headers,
                    &envelope.body,
                );
            }
            self.in_flight.insert(
                envelope.first_seqno,
                InFlight {
                    envelope,
                    sent: now,
                },
            );
        }
    }

    /// Sends the tailer's chain bodies to the side stream when they changed, at most every
    /// [`CHAIN_EVERY`] (no ack: the next change, or the next connect, sends them again).
    fn publish_chain(&mut self) {
        let publications = self.chain.publications();
        let due = match self.chain_sent {
            None => true,
            Some(sent) => sent != publications && self.chain_sent_at.elapsed() >= CHAIN_EVERY,
        };
        let Some(c) = self.conn.as_mut().filter(|_| due) else {
            return;
        };
        let subject = chain::chain_subject(&self.settings.stream.name, self.epoch);
        c.publish(&subject, None, &[], &chain::encode(&self.chain.get()));
        self.chain_sent = Some(publications);
        self.chain_sent_at = Instant::now();
    }

    fn flush_and_read_acks(&mut self) -> io::Result<()> {
        let Some(c) = &mut self.conn else {
            return Ok(());
        };
        c.flush()?;
        let mut wait = Duration::from_millis(1);
        while let Some(m) = c.next(wait)? {
            wait = Duration::ZERO;
            let Some(first_seqno) = m
                .subject
                .strip_prefix(&self.ack_prefix)
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if m.status() == Some(503) {
                return Err(io::Error::other("no stream answers (deleted?)"));
            }
            let ack: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if ack.get("seq").is_some() {
                if let Some(f) = self.in_flight.remove(&first_seqno) {
                    let e = &f.envelope;
                    self.stats
                        .acked
                        .fetch_add(e.frames as u64, Ordering::Relaxed);
                    self.stats.acked_messages.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .acked_seqno
                        .fetch_max(e.last_seqno, Ordering::Relaxed);
                }
            } else {
                let why = ack["error"]["description"].as_str().unwrap_or("no ack");
                return Err(io::Error::other(format!("publish of {first_seqno}: {why}")));
            }
        }
        let stale = self
            .in_flight
            .values()
            .next()
            .is_some_and(|f| f.sent.elapsed() >= ACK_TIMEOUT);
        if stale {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "acks stopped"));
        }
        Ok(())
    }

    /// Connects, checks the stream, and publishes every unacked message again.
    fn connect(&mut self) {
        let s = &self.settings;
        let result = Connection::connect(
            &s.urls,
            s.creds.as_ref(),
            "ringgate-origin",
            CONNECT_TIMEOUT,
        )
        .and_then(|mut c| {
            ensure_stream(&mut c, &s.stream, SID_API)?;
            chain::ensure_chain_stream(&mut c, &s.stream, SID_API)?;
            c.subscribe(&format!("{}*", self.ack_prefix), SID_ACKS);
            Ok(c)
        });
        let mut c = match result {
            Ok(c) => c,
            Err(e) => {
                self.retry_at = Instant::now() + self.retry_wait;
                self.retry_wait = (self.retry_wait * 2).min(RETRY_MAX);
                self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                let refused = e.kind() == io::ErrorKind::PermissionDenied;
                if refused {
                    self.stats.auth_refused.fetch_add(1, Ordering::Relaxed);
                }
                log::event(
                    Level::Warn,
                    if refused {
                        "bus_auth_refused"
                    } else {
                        "bus_unreachable"
                    },
                    &[("error", e.to_string().as_str().into())],
                );
                return;
            }
        };
        self.retry_wait = Duration::from_millis(100);
        self.chain_sent = None;
        let now = Instant::now();
        let mut again = 0;
        for (first_seqno, f) in &mut self.in_flight {
            let reply = format!("{}{first_seqno}", self.ack_prefix);
            let e = &f.envelope;
            c.publish(&e.subject, Some(&reply), &e.headers, &e.body);
            f.sent = now;
            again += e.frames as u64;
        }
        self.stats.republished.fetch_add(again, Ordering::Relaxed);
        let n = self.stats.connects.fetch_add(1, Ordering::Relaxed) + 1;
        log::event(
            Level::Info,
            "bus_connected",
            &[
                ("stream", self.settings.stream.name.as_str().into()),
                ("connects", n.into()),
                ("republished", again.into()),
            ],
        );
        self.conn = Some(c);
    }

    fn disconnect(&mut self, e: &io::Error) {
        log::event(
            Level::Warn,
            "bus_disconnected",
            &[
                ("error", e.to_string().as_str().into()),
                ("unacked_messages", (self.in_flight.len() as u64).into()),
            ],
        );
        self.conn = None;
        self.retry_at = Instant::now();
    }

    fn log_exit(&self) {
        log::event(
            Level::Info,
            "bus_stopped",
            &[
                ("acked", self.stats.acked.load(Ordering::Relaxed).into()),
                ("unacked_messages", (self.in_flight.len() as u64).into()),
                (
                    "queue_lost",
                    self.stats.queue_lost.load(Ordering::Relaxed).into(),
                ),
            ],
        );
    }
}
