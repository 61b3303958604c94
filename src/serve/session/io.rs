//! The two halves of an upgraded WebSocket session.
//!
//! Runs on the session's shard core as two glommio tasks sharing the socket (each borrows it
//! only inside a single poll, never across an await):
//! - the **reader** (the connection task itself) decodes client frames: subscribe → compile
//!   the filter → `Subscribed` ack or `Error` frame (the session stays open); ping → pong
//!   (rate-limited); close → close; a protocol violation → close with its code. It also sends
//!   server pings every `ping_interval` and closes a client silent for `pong_timeout`.
//! - the **writer** drains everything pending (control frames, then queued frames) into one
//!   scatter-gather list ([`Gather`]) and sends it with one `sendmsg` per turn: consecutive
//!   events become one `Events` frame (pre-encoded objects joined by reference, not copied),
//!   meta frames are referenced as they are. What a full socket does not take is copied out
//!   and written when the socket drains. When idle it waits on its waker, never on a timer,
//!   so a lone event goes out at once.
//!
//! Invariants: a client that never reads blocks only its own writer; the reader never writes
//! to the socket; `server_seqno` on this connection never decreases (per-connection frames
//! carry the cursor = the last seqno written).

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::future::{self, poll_fn};
use futures_lite::AsyncRead;
use glommio::net::TcpStream;

use crate::metrics::bump;
use crate::serve::backpressure::{Beat, Heartbeat, SessionQueue, Written};
use crate::serve::ctx::ShardCtx;
use crate::serve::filter::CompiledFilter;
use crate::serve::session::registry::{abort_socket, SessionShared, SessionState};
use crate::serve::session::replay::{self, Refill};
use crate::serve::session::write_all;
use crate::wire::http::WsQuery;
use crate::wire::protocol::messages::{self, write_message, Hello};
use crate::wire::protocol::{BatchWriter, FrameSink, Gather};
use crate::wire::subscription::channel::Channel;
use crate::wire::subscription::{parse_client_message, ClientMessage, Subscription};
use crate::wire::ws::{self, CloseCode, Decoded, FrameDecoder, OpCode, PingLimiter, PingVerdict};

/// How long a closing session waits for the client's close reply before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Bytes one read may add to a session's input buffer. Client traffic is small (subscribe
/// messages, pongs), so a small step keeps an idle session's buffer small; a large subscribe
/// simply takes several reads.
const READ_STEP: usize = 2048;

/// Truncates the buffer to `keep` bytes when dropped: the read's unfilled tail (or all of it,
/// if the read was cancelled or failed) never stays in the buffer.
struct Truncate<'a> {
    buf: &'a mut Vec<u8>,
    keep: usize,
}

impl Drop for Truncate<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.keep);
    }
}

/// Reads once and appends what arrived to `buf` (never growing it past `limit` bytes);
/// returns the bytes read (0 = EOF). Cancel-safe: if this future is dropped (a timer won the
/// race) `buf` is left as it was, and glommio's non-buffered read is a readiness wait plus a
/// non-blocking `recv`, so no received byte is lost.
pub(crate) async fn read_some(
    stream: &Rc<RefCell<TcpStream>>,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    let start = buf.len();
    let want = limit.saturating_sub(start).clamp(1, READ_STEP);
    buf.resize(start + want, 0);
    let guard = Truncate { buf, keep: start };
    let n = poll_fn(|cx| {
        let mut s = stream.borrow_mut();
        std::pin::Pin::new(&mut *s).poll_read(cx, &mut guard.buf[start..])
    })
    .await?;
    let mut guard = guard;
    guard.keep = start + n;
    Ok(n)
}

/// Runs an upgraded session to its end. `pipelined` holds bytes the client sent right after
/// its request head.
pub async fn run_session(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    channel: Channel,
    query: WsQuery,
    pipelined: Vec<u8>,
) {
    let limits = &ctx.config.subscription_limits();
    let (subscription, query_error) =
        match Subscription::from_query(channel, query.events.as_deref(), query.min_stage, limits) {
            Ok(s) => (s, None),
            Err(e) => (Subscription::default_for(channel), Some(e)),
        };
    // The cursor is read (and a resume decided) and the session registered with no await
    // in between, so every frame dispatched to it later has a higher seqno than its Hello,
    // and a replay starts exactly where the store stood.
    let opening = replay::open(ctx, &query);
    let head = opening.cursor;
    let mut control = Vec::with_capacity(512);
    let hello = Hello {
        server_version: env!("CARGO_PKG_VERSION"),
        epoch: ctx.hub.epoch,
        channel: channel.name(),
        resume: ctx.config.resume_enabled(),
        limits: ctx.config.advertised_limits(),
    };
    write_message(&messages::hello(head, &hello), &mut control);
    if let Some(resume) = &opening.resume {
        write_message(resume, &mut control);
    }
    if let Some(e) = &query_error {
        write_message(&messages::error(head, e), &mut control);
        bump(&ctx.stats.error_frames, 1);
    }
    let mut queue = SessionQueue::new(ctx.config.queue_limits(), head);
    if let Some(gap) = opening.gap {
        // The queue is empty: this cannot be refused.
        let _ = queue.offer(gap);
    }
    // Hook (wire-tailer): the connect-time snapshot the tailer published (TPS, latest
    // ContentionData, one Lifecycle per active block), as the subscription selects; not
    // for a resuming client, whose replay carries that history.
    if query.resume_from.is_none() && query.from_block.is_none() {
        let filter = CompiledFilter::new(&subscription);
        let snapshot = ctx.hub.chain.get();
        snapshot.write_connect_snapshot(head, |m| filter.matches_meta(m), &mut control);
    }
    let id = ctx.sessions.borrow_mut().next_id();
    let shared = Rc::new(SessionShared {
        id,
        channel,
        fd: stream.borrow().as_raw_fd(),
        state: RefCell::new(SessionState {
            filter: CompiledFilter::new(&subscription),
            queue,
            control,
            closing: None,
            writing: false,
            writer: None,
            reader: None,
            replay: opening.replay,
            live_after: opening.live_after,
        }),
    });
    ctx.sessions.borrow_mut().insert(shared.clone());
    let gauge = &ctx.stats.sessions_by_channel[channel.index()];
    bump(gauge, 1);

    let writer = glommio::spawn_local(writer_loop(ctx.clone(), stream.clone(), shared.clone()));
    reader_loop(ctx, stream, &shared, pipelined).await;
    // The reader is done (the session is closing). A writer stuck in a write to a client that
    // does not read gets the close linger to finish, then is cancelled and the socket aborted,
    // so no session outlives its client's misbehaviour.
    let finished = glommio::timer::timeout(CLOSE_LINGER, async {
        writer.await;
        Ok(())
    })
    .await;
    if finished.is_err() {
        abort_socket(shared.fd);
    }

    ctx.sessions.borrow_mut().remove(id);
    gauge.fetch_sub(1, Ordering::Relaxed);
}

/// What woke the reader.
enum ReaderWake {
    Read(std::io::Result<usize>),
    Closing,
    Tick,
}

async fn reader_loop(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    shared: &Rc<SessionShared>,
    pipelined: Vec<u8>,
) {
    let cfg = &ctx.config;
    let mut decoder = FrameDecoder::new(cfg.decoder_limits);
    let mut pings = PingLimiter::new(cfg.ping_per_sec, cfg.ping_burst, Instant::now());
    let mut heartbeat = Heartbeat::new(cfg.ping_interval, cfg.pong_timeout, Instant::now());
    let mut buf = pipelined;
    let mut closing_since: Option<Instant> = None;
    loop {
        // Handle every complete frame already buffered (not once the session is closing:
        // then only the client's close reply or EOF matters).
        while closing_since.is_none() {
            match handle_frame(ctx, shared, &mut decoder, &mut pings, &buf) {
                Step::Consumed(n) => {
                    buf.drain(..n);
                    heartbeat.on_activity(Instant::now());
                }
                Step::NeedMore => break,
                Step::Stop => {
                    closing_since = Some(Instant::now());
                }
            }
        }
        let now = Instant::now();
        if shared.state.borrow().closing.is_some() {
            let since = *closing_since.get_or_insert(now);
            if now.duration_since(since) >= CLOSE_LINGER {
                return;
            }
        } else {
            match heartbeat.poll(now) {
                Beat::Idle => {}
                Beat::SendPing => {
                    push_control(shared, |out| ws::write_frame(OpCode::Ping, b"", out));
                }
                Beat::TimedOut => {
                    bump(&ctx.stats.protocol_closes, 1);
                    shared.close(CloseCode::Policy, "heartbeat timeout: no pong");
                    continue;
                }
            }
        }
        let until = match closing_since {
            Some(since) => since + CLOSE_LINGER,
            None => heartbeat.next_deadline(),
        };
        let tick = until.saturating_duration_since(Instant::now());
        let wake = future::or(
            async { ReaderWake::Read(read_some(stream, &mut buf, usize::MAX).await) },
            future::or(
                async {
                    // Once closing, only the client's reply, EOF or the linger deadline
                    // matter (the closing signal would be ready at once: a busy loop).
                    if closing_since.is_some() {
                        future::pending::<()>().await;
                    }
                    closed_signal(ctx, shared).await;
                    ReaderWake::Closing
                },
                async {
                    glommio::timer::sleep(tick).await;
                    ReaderWake::Tick
                },
            ),
        )
        .await;
        match wake {
            ReaderWake::Read(Ok(0)) | ReaderWake::Read(Err(_)) => {
                shared.close(CloseCode::Normal, "");
                return;
            }
            ReaderWake::Read(Ok(_)) => {
                if closing_since.is_some() && buf.len() > 4096 {
                    // A closing peer keeps sending: stop reading it.
                    return;
                }
            }
            ReaderWake::Closing => {
                if ctx.is_closing() {
                    shared.close(CloseCode::GoingAway, "server shutting down");
                }
                closing_since.get_or_insert_with(Instant::now);
            }
            ReaderWake::Tick => {}
        }
    }
}

/// Resolves when this session starts closing (for any reason) or the shard shuts down.
async fn closed_signal(ctx: &ShardCtx, shared: &SessionShared) {
    future::or(ctx.closed(), async {
        poll_fn(|cx| {
            let mut st = shared.state.borrow_mut();
            if st.closing.is_some() {
                Poll::Ready(())
            } else {
                st.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    })
    .await;
}

fn push_control(shared: &SessionShared, f: impl FnOnce(&mut Vec<u8>)) {
    f(&mut shared.state.borrow_mut().control);
    shared.wake();
}

enum Step {
    Consumed(usize),
    NeedMore,
    Stop,
}

fn handle_frame(
    ctx: &ShardCtx,
    shared: &SessionShared,
    decoder: &mut FrameDecoder,
    pings: &mut PingLimiter,
    buf: &[u8],
) -> Step {
    let decoded = match decoder.decode(buf) {
        Ok(d) => d,
        Err(e) => {
            bump(&ctx.stats.protocol_closes, 1);
            shared.close(e.close_code(), e.to_string());
            return Step::Stop;
        }
    };
    let consumed = decoded.consumed();
    match decoded {
        Decoded::NeedMore => return Step::NeedMore,
        Decoded::Partial { .. } | Decoded::Pong { .. } => {}
        Decoded::Text { text, .. } => on_text(ctx, shared, text),
        Decoded::Ping { payload, .. } => match pings.on_ping(Instant::now()) {
            PingVerdict::Allowed => {
                push_control(shared, |out| ws::write_frame(OpCode::Pong, payload, out))
            }
            PingVerdict::Flood => {
                bump(&ctx.stats.protocol_closes, 1);
                let e = ws::WsError::PingFlood {
                    per_sec: pings.per_sec(),
                };
                shared.close(e.close_code(), e.to_string());
                return Step::Stop;
            }
        },
        Decoded::Close { .. } => {
            shared.close(CloseCode::Normal, "");
            return Step::Stop;
        }
    }
    Step::Consumed(consumed)
}

fn on_text(ctx: &ShardCtx, shared: &SessionShared, text: &str) {
    let limits = &ctx.config.subscription_limits();
    let mut st = shared.state.borrow_mut();
    let cursor = st.queue.cursor();
    match parse_client_message(text, shared.channel, limits) {
        Ok(ClientMessage::Subscribe(sub)) => {
            st.filter = CompiledFilter::new(&sub);
            write_message(&messages::subscribed(cursor, &sub), &mut st.control);
        }
        Ok(ClientMessage::Hello(_)) => return,
        Err(e) => {
            bump(&ctx.stats.error_frames, 1);
            write_message(&messages::error(cursor, &e), &mut st.control);
        }
    }
    drop(st);
    shared.wake();
}

async fn writer_loop(ctx: Rc<ShardCtx>, stream: Rc<RefCell<TcpStream>>, shared: Rc<SessionShared>) {
    let mut gather = Gather::default();
    let mut rest: Vec<u8> = Vec::new();
    let mut replayed = Vec::new();
    let batch = BatchWriter::new(ctx.config.batch);
    loop {
        // A replaying session tops its queue up from the store before each write, so the
        // replay goes exactly as fast as the socket drains.
        if replay::refill(&ctx, &shared, &mut replayed) == Refill::Scanning {
            future::yield_now().await;
            continue;
        }
        poll_fn(|cx| {
            let mut st = shared.state.borrow_mut();
            if !st.control.is_empty() || !st.queue.is_empty() || st.closing.is_some() {
                Poll::Ready(())
            } else {
                st.writer = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        gather.clear();
        let (written, last, closing) = {
            let mut st = shared.state.borrow_mut();
            let st = &mut *st;
            gather.put(&st.control);
            st.control.clear();
            // Flush queued frames unless the session is being closed for a reason that
            // makes them moot (only a server shutdown flushes before closing).
            let flush = st
                .closing
                .as_ref()
                .is_none_or(|c| c.code == CloseCode::GoingAway);
            let written = if flush {
                st.queue
                    .write_pending(&batch, &mut gather, ctx.config.write_max_bytes)
            } else {
                Written::default()
            };
            let last = match &st.closing {
                Some(c) if !flush || st.queue.is_empty() => {
                    gather.put_with(|out| ws::write_close(c.code, &c.reason, out));
                    true
                }
                _ => false,
            };
            st.writing = true;
            (written, last, st.closing.is_some())
        };
        let bytes = gather.byte_len();
        let result = send_gathered(&stream, &mut gather, &mut rest, closing).await;
        shared.state.borrow_mut().writing = false;
        if result.is_ok() {
            bump(&ctx.stats.writes, 1);
            bump(&ctx.stats.bytes_out, bytes as u64);
            bump(&ctx.stats.frames_out, written.frames as u64);
            bump(&ctx.stats.events_out, written.events as u64);
            // Hook (wire-tailer): ring → send latency, one sample per write.
            if written.oldest_live_ts_ns != 0 {
                let lag = crate::metrics::now_ns().saturating_sub(written.oldest_live_ts_ns);
                ctx.stats.latency.record(lag);
            }
        }
        if result.is_err() || last {
            // FIN after the close frame; the reader lingers briefly for the client's reply.
            // A failed write means the peer is gone or was aborted: drop both directions.
            let fd = stream.borrow().as_raw_fd();
            if result.is_err() {
                abort_socket(fd);
            } else {
                half_close(fd);
            }
            return;
        }
    }
}

/// Sends one turn's output: at once, as far as the socket buffer takes it (one `sendmsg`
/// per 1,024 pieces, the event bytes shared, not copied); whatever is left (a client that
/// reads slower than we write) is copied out and written by an ordinary write that waits
/// for the socket. A closing session's wait is bounded: a client that does not read must not
/// keep the session (or a shutdown) waiting on a close frame it will never take.
async fn send_gathered(
    stream: &Rc<RefCell<TcpStream>>,
    gather: &mut Gather,
    rest: &mut Vec<u8>,
    closing: bool,
) -> std::io::Result<()> {
    let fd = stream.borrow().as_raw_fd();
    let sent = gather.send_now(fd)?;
    if sent == gather.byte_len() {
        return Ok(());
    }
    rest.clear();
    gather.copy_from(sent, rest);
    // The referenced frames are copied: release them while the socket drains.
    gather.clear();
    if closing {
        glommio::timer::timeout(CLOSE_LINGER, async {
            write_all(stream, rest).await.map_err(Into::into)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
    } else {
        write_all(stream, rest).await
    }
}

pub(crate) fn half_close(fd: std::os::fd::RawFd) {
    // SAFETY: `fd` is this session's open socket (the stream outlives this call);
    // shutdown(2) with SHUT_WR only sends FIN and does not invalidate the descriptor.
    let _ = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}
