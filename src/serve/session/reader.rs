//! The reader half of an upgraded session: the connection task itself.
//!
//! Decodes client frames: subscribe → compile the filter → `Subscribed` ack or `Error` frame
//! (the session stays open); ping → pong (rate-limited); close → close; a protocol violation
//! → close with its code. It also sends server pings every `ping_interval` and closes a
//! client silent for `pong_timeout`. Runs on the session's shard core; borrows the socket
//! only inside a single poll, never across an await. Never writes to the socket itself:
//! what it answers goes into the session's control buffer for the writer.
//!
//! It returns as soon as the session is closing; the connection task then waits for the
//! writer's close frame and FIN and only then drains the client's input to EOF
//! (`discard_until_eof`): the socket is never dropped with input unread (that makes the
//! kernel reset the connection, destroying the close frame if it was not transmitted yet).

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::{self, poll_fn};
use futures_lite::AsyncRead;
use glommio::net::TcpStream;

use crate::metrics::bump;
use crate::serve::ctx::ShardCtx;
use crate::serve::filter::CompiledFilter;
use crate::serve::session::registry::{wants, SessionShared};
use crate::serve::session::{park_until, CLOSE_LINGER};
use crate::wire::protocol::messages::{self, write_message};
use crate::wire::protocol::Framing;
use crate::wire::subscription::{parse_client_message, ClientMessage};
use crate::wire::ws::{self, Beat, CloseCode, Decoded, FrameDecoder, Heartbeat, OpCode};
use crate::wire::ws::{PingLimiter, PingVerdict};

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

/// What woke a session's reader (native, JSON-RPC or SSE).
pub(crate) enum ReaderWake {
    Read(std::io::Result<usize>),
    Closing,
    Tick,
}

/// Waits for client bytes (appended to `buf`, never past `limit` bytes), for `closed` (the
/// session closing or the shard shutting down), or for `tick` to pass, whichever is first.
pub(crate) async fn wait_reader(
    stream: &Rc<RefCell<TcpStream>>,
    buf: &mut Vec<u8>,
    limit: usize,
    closed: impl std::future::Future<Output = ()>,
    tick: Duration,
) -> ReaderWake {
    future::or(
        async { ReaderWake::Read(read_some(stream, buf, limit).await) },
        future::or(
            async {
                closed.await;
                ReaderWake::Closing
            },
            async {
                glommio::timer::sleep(tick).await;
                ReaderWake::Tick
            },
        ),
    )
    .await
}

/// What a reader does after `wake`: go on (`None`), or end (`Some`). The client's EOF or a
/// read error closes the session normally (`close(code, reason)`); a closing shard closes it
/// as going away.
pub(crate) fn settle(
    ctx: &ShardCtx,
    wake: ReaderWake,
    close: impl FnOnce(CloseCode, &str),
) -> Option<ReaderEnd> {
    match wake {
        ReaderWake::Read(Ok(0)) | ReaderWake::Read(Err(_)) => {
            close(CloseCode::Normal, "");
            Some(ReaderEnd::PeerGone)
        }
        ReaderWake::Read(Ok(_)) | ReaderWake::Tick => None,
        ReaderWake::Closing => {
            if ctx.is_closing() {
                close(CloseCode::GoingAway, "server shutting down");
            }
            Some(ReaderEnd::Closing)
        }
    }
}

/// Why [`reader_loop`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReaderEnd {
    /// The client's EOF or a read error: its input is finished, nothing can stay unread.
    PeerGone,
    /// The session is closing (a close frame is due) while the client may still send: the
    /// caller must read and discard its input until EOF after the close frame and FIN are
    /// out (see `run_session`), never drop the socket with input unread.
    Closing,
}

/// Reads and handles client frames until the session closes, for whatever reason.
/// The old gateway's SDKs reconnect after 10 s without a data frame (WebSocket pings do not
/// count), so a quiet but healthy subscription looked dead to them and was replayed every
/// 10 s. Sessions that did not ask for `extended=1` get a `Heartbeat` text frame this often
/// (docs/protocol.md §3); ringgate's own clients rely on server pings.
const DATA_HEARTBEAT: Duration = Duration::from_secs(5);

pub(crate) async fn reader_loop(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    shared: &Rc<SessionShared>,
    pipelined: Vec<u8>,
) -> ReaderEnd {
    let cfg = &ctx.config;
    let mut decoder = FrameDecoder::new(cfg.decoder_limits)
        .with_deflate(shared.framing == Framing::WebSocketDeflate);
    let mut pings = PingLimiter::new(cfg.ping_per_sec, cfg.ping_burst, Instant::now());
    let mut heartbeat = Heartbeat::new(cfg.ping_interval, cfg.pong_timeout, Instant::now());
    let mut buf = pipelined;
    let mut next_data_beat = (!shared.extended).then(|| Instant::now() + DATA_HEARTBEAT);
    loop {
        // Handle every complete frame already buffered.
        loop {
            match handle_frame(ctx, shared, &mut decoder, &mut pings, &buf) {
                Step::Consumed(n) => {
                    buf.drain(..n);
                    heartbeat.on_activity(Instant::now());
                }
                Step::NeedMore => break,
                Step::Stop => return ReaderEnd::Closing,
            }
        }
        if shared.state.borrow().closing.is_some() {
            return ReaderEnd::Closing;
        }
        match heartbeat.poll(Instant::now()) {
            Beat::Idle => {}
            Beat::SendPing => {
                push_control(shared, |out| ws::write_frame(OpCode::Ping, b"", out));
            }
            Beat::TimedOut => {
                bump(&ctx.stats.protocol_closes, 1);
                shared.close(CloseCode::Policy, "heartbeat timeout: no pong");
                return ReaderEnd::Closing;
            }
        }
        if next_data_beat.is_some_and(|at| Instant::now() >= at) {
            let cursor = shared.state.borrow().queue.cursor();
            push_control(shared, |out| {
                write_message(&messages::heartbeat(cursor), out)
            });
            next_data_beat = Some(Instant::now() + DATA_HEARTBEAT);
        }
        let deadline = next_data_beat.map_or(heartbeat.next_deadline(), |d| {
            d.min(heartbeat.next_deadline())
        });
        let tick = deadline.saturating_duration_since(Instant::now());
        let closed = closed_signal(ctx, shared);
        let wake = wait_reader(stream, &mut buf, usize::MAX, closed, tick).await;
        if let Some(end) = settle(ctx, wake, |code, reason| shared.close(code, reason)) {
            return end;
        }
    }
}

/// After the close frame and FIN went out: reads and throws away the client's input until
/// its EOF (normally its close reply, then FIN), a read error or [`CLOSE_LINGER`], then
/// discards whatever is still queued without waiting. The socket is dropped right after, and
/// a socket closed with unread input is reset by the kernel: the reset discards what the
/// kernel had not transmitted yet, so a client still reading its last frames would lose the
/// close frame (found in the soak: a 70 KB message answered 1009 from its header, the rest of
/// it left unread).
pub(crate) async fn discard_until_eof(stream: &Rc<RefCell<TcpStream>>) {
    let mut scratch = Vec::with_capacity(READ_STEP);
    let ended = glommio::timer::timeout(CLOSE_LINGER, async {
        loop {
            scratch.clear();
            match read_some(stream, &mut scratch, READ_STEP).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    })
    .await;
    if ended.is_err() {
        // The deadline: the client is silent, or still sending. What is queued now goes;
        // more may arrive before the close, which is then the client's own doing.
        let fd = stream.borrow().as_raw_fd();
        crate::sys::discard_input(fd, LINGER_DISCARD_LIMIT);
    }
}

/// Most bytes [`discard_until_eof`] throws away without waiting at its deadline (a client
/// flooding a closing session must not hold the shard's core).
const LINGER_DISCARD_LIMIT: usize = 256 * 1024;

/// Resolves when this session starts closing (for any reason) or the shard shuts down.
pub(crate) async fn closed_signal(ctx: &ShardCtx, shared: &SessionShared) {
    let closing = park_until(
        &shared.state,
        |st| st.closing.is_some(),
        |st| &mut st.reader,
    );
    future::or(ctx.closed(), closing).await;
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
            st.replay_hold = None;
            // The ack goes out before anything still queued: what the old subscription
            // queued but the new one does not select must not follow it.
            let st = &mut *st;
            let filter = &st.filter;
            st.queue.retain_frames(|frame| wants(filter, frame));
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
