//! The origin's publisher: every frame the tailer makes, published once to the JetStream
//! stream, from a plain thread of its own.
//!
//! The tailer's end is [`BusSender`]: one `Arc` clone and one bounded-queue push per frame,
//! never a wait. A full queue (the bus fell behind or is down for longer than the queue
//! holds) loses the frame for the stream, counted, remembered as a seqno range, and announced
//! by one `Gap{reason:"bus_lost"}` frame (its own `server_seqno` is the last lost one, as a
//! shard queue's loss is) as soon as the queue has room again.
//!
//! The publisher thread publishes with async acks: up to [`PublishSettings::max_in_flight`]
//! frames out before their acks, each kept until JetStream acks it. After a lost connection
//! it reconnects (to any of the URLs), re-checks the stream and publishes every unacked frame
//! again, in seqno order; the `Nats-Msg-Id` (`<epoch>:<seqno>`) makes JetStream drop the ones
//! it already stored (within the stream's duplicate window), so the stream holds each frame
//! once. While it is disconnected the in-flight frames stay held and the queue fills: a
//! longer outage becomes a counted `bus_lost` Gap, never a stalled tailer. Credentials the
//! server refuses are the same: a failed connect (counted as `auth_refused`, logged as
//! `bus_auth_refused`), retried with the same backoff, while the origin serves its clients.
//!
//! Invariants: frames reach the stream in `server_seqno` order; nothing is published twice
//! into the stream (dedup id); the thread exits when the tailer's sender is dropped, after
//! at most [`DRAIN_ON_EXIT`] spent getting the last acks.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bus::client::Connection;
use crate::bus::creds::Credentials;
use crate::bus::stream::{ensure_stream, headers, subject, StreamSettings};
use crate::history::record;
use crate::log::{self, Level};
use crate::metrics::BusStats;
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::Outbound;
use crate::wire::protocol::messages::gap_frame;

/// Longest the publisher keeps trying to get its last frames acked once the tailer stopped.
pub const DRAIN_ON_EXIT: Duration = Duration::from_secs(5);
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
    /// Frames published and not yet acked, at most.
    pub max_in_flight: usize,
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
/// flag: once set, a publisher that cannot take more frames (its in-flight window is full)
/// stops waiting for the tailer and gives its last acks [`DRAIN_ON_EXIT`].
pub fn spawn(
    settings: PublishSettings,
    epoch: u64,
    stopping: Arc<AtomicBool>,
    stats: Arc<BusStats>,
) -> io::Result<(BusSender, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(settings.queue_frames.max(1));
    let thread_stats = Arc::clone(&stats);
    let handle = std::thread::Builder::new()
        .name("ringgate-publish".into())
        .spawn(move || Publisher::new(settings, epoch, thread_stats).run(rx, &stopping))?;
    let sender = BusSender {
        tx,
        lost: None,
        stats: Arc::clone(&stats),
    };
    Ok((sender, handle))
}

/// One frame as published, kept until acked.
struct InFlight {
    subject: String,
    headers: Vec<u8>,
    body: Vec<u8>,
    sent: Instant,
}

struct Publisher {
    settings: PublishSettings,
    epoch: u64,
    stats: Arc<BusStats>,
    conn: Option<Connection>,
    /// By `server_seqno`: publishing again after a reconnect goes in seqno order.
    in_flight: BTreeMap<u64, InFlight>,
    /// Reply subjects are `<ack_prefix><seqno>`.
    ack_prefix: String,
    retry_at: Instant,
    retry_wait: Duration,
}

impl Publisher {
    fn new(settings: PublishSettings, epoch: u64, stats: Arc<BusStats>) -> Publisher {
        Publisher {
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
        let mut tailer_gone: Option<Instant> = None;
        loop {
            let full = self.in_flight.len() >= self.settings.max_in_flight;
            if full && tailer_gone.is_none() && stopping.load(Ordering::Relaxed) {
                tailer_gone = Some(Instant::now());
            }
            if self.conn.is_none() && Instant::now() >= self.retry_at {
                self.connect();
            }
            let mut taken = 0;
            while tailer_gone.is_none() && self.in_flight.len() < self.settings.max_in_flight {
                match rx.try_recv() {
                    Ok(frame) => {
                        self.publish(&frame);
                        taken += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => tailer_gone = Some(Instant::now()),
                }
            }
            if let Some(since) = tailer_gone {
                if self.in_flight.is_empty() || since.elapsed() >= DRAIN_ON_EXIT {
                    self.log_exit();
                    return;
                }
            }
            if self.conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if taken == 0 && self.in_flight.is_empty() {
                // Nothing to ack: wait for the next frame instead of the socket.
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(frame) => self.publish(&frame),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => tailer_gone = Some(Instant::now()),
                }
            }
            if let Err(e) = self.flush_and_read_acks() {
                self.disconnect(&e);
            }
        }
    }

    fn publish(&mut self, frame: &Outbound) {
        let seqno = frame.server_seqno();
        let mut body = Vec::with_capacity(frame.byte_len() + 64);
        record::encode(frame, &mut body);
        let f = InFlight {
            subject: subject(&self.settings.stream.name, self.epoch, frame),
            headers: headers(self.epoch, frame),
            body,
            sent: Instant::now(),
        };
        if let Some(c) = &mut self.conn {
            let reply = format!("{}{seqno}", self.ack_prefix);
            c.publish(&f.subject, Some(&reply), &f.headers, &f.body);
        }
        self.in_flight.insert(seqno, f);
    }

    fn flush_and_read_acks(&mut self) -> io::Result<()> {
        let Some(c) = &mut self.conn else {
            return Ok(());
        };
        c.flush()?;
        let mut wait = Duration::from_millis(1);
        while let Some(m) = c.next(wait)? {
            wait = Duration::ZERO;
            let Some(seqno) = m
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
                if self.in_flight.remove(&seqno).is_some() {
                    self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    self.stats.acked_seqno.fetch_max(seqno, Ordering::Relaxed);
                }
            } else {
                let why = ack["error"]["description"].as_str().unwrap_or("no ack");
                return Err(io::Error::other(format!("publish of {seqno}: {why}")));
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

    /// Connects, checks the stream, and publishes every unacked frame again.
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
        let now = Instant::now();
        let again = self.in_flight.len() as u64;
        for (seqno, f) in &mut self.in_flight {
            let reply = format!("{}{seqno}", self.ack_prefix);
            c.publish(&f.subject, Some(&reply), &f.headers, &f.body);
            f.sent = now;
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
                ("in_flight", (self.in_flight.len() as u64).into()),
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
                ("unacked", (self.in_flight.len() as u64).into()),
                (
                    "queue_lost",
                    self.stats.queue_lost.load(Ordering::Relaxed).into(),
                ),
            ],
        );
    }
}
