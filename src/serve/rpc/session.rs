//! One JSON-RPC WebSocket session after its upgrade: the reader (requests, pings, the
//! heartbeat) in the connection task, the writer (responses, then notifications, one write
//! per turn) in its own task.
//!
//! Runs on the shard core that accepted the connection. The reader answers every request
//! synchronously on the shard (subscribe, unsubscribe and the plain methods need nothing
//! but the shard's [`RpcHub`](crate::serve::rpc::hub::RpcHub)), so a `fromBlock` replay and the subscription's insertion
//! happen with no await between them: the replay joins the live stream without a hole or a
//! duplicate. A client ping is answered at once (alloy drops a connection whose ping goes
//! unanswered for 10 s); the server pings every `Config::rpc_ping_interval` (20 s, as
//! Monad's server) and closes a client silent for `pong_timeout`.
//!
//! Closing is the native sessions' (`serve::session`): the close frame is the last frame
//! written, then FIN, then the client's input is drained until its EOF or the linger.
//! Invariants: nothing a client sends can panic or affect another session; a notification's
//! result object is copied from the shared pre-encoded bytes, never re-serialized.

use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_lite::future;
use glommio::net::TcpStream;

use crate::metrics::bump;
use crate::model::rpc::LOG_TAIL_REMOVED;
use crate::serve::ctx::ShardCtx;
use crate::serve::rpc::hub::{write_chain_id, Item, Note, RpcSession, RpcState, Sub};

/// Chain-id requests one session may have waiting for the first block (more are dropped).
const MAX_WAITING: usize = 64;
use crate::serve::session::reader::{discard_until_eof, settle, wait_reader, ReaderEnd};
use crate::serve::session::registry::abort_socket;
use crate::serve::session::writer::half_close;
use crate::serve::session::{park_until, write_all, CLOSE_LINGER};
use crate::wire::json::write_str;
use crate::wire::rpc::filter::LogFilter;
use crate::wire::rpc::{
    parse_request, push_sub_id, write_error, write_monad_prefix, write_result, Call, RpcError,
    Subscribe, NOTE_HEAD, NOTE_RESULT, NOTE_TAIL,
};
use crate::wire::ws::{self, Beat, CloseCode, Decoded, FrameDecoder, Heartbeat, OpCode};
use crate::wire::ws::{DecoderLimits, PingLimiter, PingVerdict};

/// Runs an upgraded JSON-RPC session to its end. `pipelined`: bytes the client sent right
/// after its request head.
pub async fn run_rpc_session(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    client: IpAddr,
    key: Option<String>,
    pipelined: Vec<u8>,
) {
    let fd = stream.borrow().as_raw_fd();
    let id = ctx.rpc.borrow_mut().next_id();
    let session = Rc::new(RpcSession {
        id,
        fd,
        client,
        key,
        state: RefCell::new(RpcState::default()),
    });
    ctx.rpc.borrow_mut().insert(session.clone());
    bump(&ctx.stats.rpc_sessions, 1);

    let writer = glommio::spawn_local(writer_loop(ctx.clone(), stream.clone(), session.clone()));
    let closing = reader_loop(ctx, stream, &session, pipelined).await;
    let finished = glommio::timer::timeout(CLOSE_LINGER, async {
        writer.await;
        Ok(())
    })
    .await;
    if finished.is_err() {
        abort_socket(fd);
    } else if closing {
        discard_until_eof(stream).await;
    }
    ctx.rpc.borrow_mut().remove(id);
    ctx.stats.rpc_sessions.fetch_sub(1, Ordering::Relaxed);
}

/// Reads and answers client frames until the session closes; `true` when the client may
/// still be sending (its input must be drained after the close frame).
async fn reader_loop(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    session: &Rc<RpcSession>,
    pipelined: Vec<u8>,
) -> bool {
    let cfg = &ctx.config;
    let mut decoder = FrameDecoder::new(DecoderLimits {
        binary_as_text: true,
        ..cfg.decoder_limits
    });
    let mut pings = PingLimiter::new(cfg.ping_per_sec, cfg.ping_burst, Instant::now());
    let mut heartbeat = Heartbeat::new(cfg.rpc_ping_interval, cfg.pong_timeout, Instant::now());
    let mut buf = pipelined;
    loop {
        loop {
            match handle_frame(ctx, session, &mut decoder, &mut pings, &buf) {
                Some(0) => break,
                Some(n) => {
                    buf.drain(..n);
                    heartbeat.on_activity(Instant::now());
                }
                None => return true,
            }
        }
        if session.state.borrow().closing.is_some() {
            return true;
        }
        match heartbeat.poll(Instant::now()) {
            Beat::Idle => {}
            Beat::SendPing => control(session, |out| ws::write_frame(OpCode::Ping, b"", out)),
            Beat::TimedOut => {
                bump(&ctx.stats.protocol_closes, 1);
                session.close(CloseCode::Policy, "heartbeat timeout: no pong");
                return true;
            }
        }
        let tick = heartbeat
            .next_deadline()
            .saturating_duration_since(Instant::now());
        let closed = closed_signal(ctx, session);
        let wake = wait_reader(stream, &mut buf, usize::MAX, closed, tick).await;
        if let Some(end) = settle(ctx, wake, |code, reason| session.close(code, reason)) {
            return end == ReaderEnd::Closing;
        }
    }
}

async fn closed_signal(ctx: &ShardCtx, session: &RpcSession) {
    let closing = park_until(
        &session.state,
        |st| st.closing.is_some(),
        |st| &mut st.reader,
    );
    future::or(ctx.closed(), closing).await;
}

fn control(session: &RpcSession, f: impl FnOnce(&mut Vec<u8>)) {
    f(&mut session.state.borrow_mut().control);
    session.wake();
}

/// Handles one buffered frame: `Some(consumed)` (0 = need more bytes), `None` = closing.
fn handle_frame(
    ctx: &ShardCtx,
    session: &RpcSession,
    decoder: &mut FrameDecoder,
    pings: &mut PingLimiter,
    buf: &[u8],
) -> Option<usize> {
    let decoded = match decoder.decode(buf) {
        Ok(d) => d,
        Err(e) => {
            bump(&ctx.stats.protocol_closes, 1);
            session.close(e.close_code(), e.to_string());
            return None;
        }
    };
    let consumed = decoded.consumed();
    match decoded {
        Decoded::NeedMore => return Some(0),
        Decoded::Partial { .. } | Decoded::Pong { .. } => {}
        Decoded::Text { text, .. } => {
            let mut answer = Vec::new();
            answer_request(ctx, session, text, &mut answer);
            // Empty when the answer waits for the first block.
            if !answer.is_empty() {
                control(session, |out| ws::write_frame(OpCode::Text, &answer, out));
            }
        }
        Decoded::Ping { payload, .. } => match pings.on_ping(Instant::now()) {
            PingVerdict::Allowed => {
                control(session, |out| ws::write_frame(OpCode::Pong, payload, out))
            }
            PingVerdict::Flood => {
                bump(&ctx.stats.protocol_closes, 1);
                let e = ws::WsError::PingFlood {
                    per_sec: pings.per_sec(),
                };
                session.close(e.close_code(), e.to_string());
                return None;
            }
        },
        Decoded::Close { .. } => {
            session.close(CloseCode::Normal, "");
            return None;
        }
    }
    Some(consumed)
}

/// A fresh subscription id: 16 bytes, the first nibble never zero (so clients that
/// re-encode ids as minimal hex still write all 32 digits), unique on the connection.
fn new_sub_id(st: &RpcState, seed: u64) -> u128 {
    let mut x = seed;
    loop {
        let hi = splitmix(&mut x);
        let lo = splitmix(&mut x);
        let id = (u128::from(hi) << 64 | u128::from(lo)) | (1u128 << 124);
        if !st.subs.iter().any(|s| s.id == id) {
            return id;
        }
    }
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Answers one request into `out` (the response text), subscribing or unsubscribing.
fn answer_request(ctx: &ShardCtx, session: &RpcSession, text: &str, out: &mut Vec<u8>) {
    let req = parse_request(text);
    bump(&ctx.stats.rpc_requests, 1);
    let hub = ctx.rpc.borrow();
    let result = match req.call {
        Err(e) => Err(e),
        Ok(Call::Subscribe(sub)) => subscribe(ctx, session, &hub, sub),
        Ok(Call::Unsubscribe(id)) => {
            let mut st = session.state.borrow_mut();
            let before = st.subs.len();
            st.subs.retain(|s| s.id != id);
            let found = st.subs.len() != before;
            if found {
                st.queue.retain(|n| n.sub != id);
                st.queued_bytes = st.queue.iter().map(Note::text_len).sum();
            }
            Ok(if found {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            })
        }
        Ok(call @ (Call::ChainId | Call::NetVersion)) => {
            let net_version = call == Call::NetVersion;
            let Some(chain_id) = hub.chain_id else {
                // Answered with the first block (`RpcSession::answer_waiting`).
                let mut st = session.state.borrow_mut();
                if st.waiting_chain_id.len() < MAX_WAITING {
                    st.waiting_chain_id.push((req.id, net_version));
                }
                return;
            };
            let mut v = Vec::new();
            write_chain_id(&mut v, chain_id, net_version);
            Ok(v)
        }
        Ok(Call::BlockNumber) => Ok(format!("\"0x{:x}\"", hub.block_number).into_bytes()),
        Ok(Call::GetBlockByNumber(at)) => Ok(match hub.block(at) {
            Some(b) => [b.header_open(), &b.block_tail].concat(),
            None => b"null".to_vec(),
        }),
        Ok(Call::ClientVersion) => {
            let mut v = Vec::new();
            write_str(&mut v, concat!("ringgate/", env!("CARGO_PKG_VERSION")));
            Ok(v)
        }
    };
    match result {
        Ok(bytes) => write_result(out, &req.id, |o| o.extend_from_slice(&bytes)),
        Err(e) => {
            bump(&ctx.stats.error_frames, 1);
            write_error(out, &req.id, &e);
        }
    }
}

fn subscribe(
    ctx: &ShardCtx,
    session: &RpcSession,
    hub: &crate::serve::rpc::hub::RpcHub,
    req: Subscribe,
) -> Result<Vec<u8>, RpcError> {
    let mut st = session.state.borrow_mut();
    if st.subs.len() >= ctx.config.rpc_max_subscriptions {
        return Err(RpcError::SubscriptionLimit);
    }
    let seed = crate::metrics::now_ns() ^ session.id.rotate_left(32) ^ st.subs.len() as u64;
    let sub = Sub {
        id: new_sub_id(&st, seed),
        req,
    };
    let replay_from = replay_start(&sub.req.filter, sub.req.kind.is_logs(), hub.block_number);
    st.subs.push(sub.clone());
    drop(st);
    if let Some(from) = replay_from {
        let frames = hub.history_from(from);
        let heads_stage = ctx.config.rpc_heads_stage;
        session.replay(&sub, &frames, heads_stage, ctx.config.rpc_queue_bytes);
    }
    let mut id = Vec::with_capacity(36);
    push_sub_id(&mut id, sub.id);
    Ok(id)
}

/// A `logs` subscription whose `fromBlock` is at or below the newest block replays the
/// stored blocks from there (the rest of the range is delivered live).
fn replay_start(filter: &LogFilter, logs: bool, newest: u64) -> Option<u64> {
    let from = filter.from_block?;
    (logs && filter.block_hash.is_none() && from <= newest).then_some(from)
}

/// Appends one notification (frame header included).
fn write_note(note: &Note, out: &mut Vec<u8>) {
    ws::write_frame_header(OpCode::Text, note.text_len(), out);
    out.extend_from_slice(NOTE_HEAD);
    push_sub_id(out, note.sub);
    out.extend_from_slice(NOTE_RESULT);
    let block = &note.frame.block;
    let (body, tail): (&[u8], &[u8]) = match note.item {
        Item::Header => (&block.header, b""),
        Item::Log(i) => {
            let log = &block.logs[i as usize];
            if note.removed {
                (
                    log.body_without_tail(),
                    &LOG_TAIL_REMOVED[b"\"removed\":".len()..],
                )
            } else {
                (&log.json, b"")
            }
        }
    };
    if note.monad {
        write_monad_prefix(out, &block.id, note.frame.stage);
        out.extend_from_slice(body.get(1..).unwrap_or_default());
    } else {
        out.extend_from_slice(body);
    }
    out.extend_from_slice(tail);
    out.extend_from_slice(NOTE_TAIL);
}

async fn writer_loop(ctx: Rc<ShardCtx>, stream: Rc<RefCell<TcpStream>>, session: Rc<RpcSession>) {
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        park_until(
            &session.state,
            |st| !st.control.is_empty() || !st.queue.is_empty() || st.closing.is_some(),
            |st| &mut st.writer,
        )
        .await;
        out.clear();
        let (notes, last, closing) = {
            let mut st = session.state.borrow_mut();
            let st = &mut *st;
            out.extend_from_slice(&st.control);
            st.control.clear();
            let flush = st
                .closing
                .as_ref()
                .is_none_or(|c| c.code == CloseCode::GoingAway);
            let mut notes = 0u64;
            while flush && out.len() < ctx.config.write_max_bytes {
                let Some(note) = st.queue.pop_front() else {
                    break;
                };
                st.queued_bytes = st.queued_bytes.saturating_sub(note.text_len());
                write_note(&note, &mut out);
                notes += 1;
            }
            let last = match &st.closing {
                Some(c) if !flush || st.queue.is_empty() => {
                    ws::write_close(c.code, &c.reason, &mut out);
                    true
                }
                _ => false,
            };
            st.writing = true;
            (notes, last, st.closing.is_some())
        };
        let result = if closing {
            glommio::timer::timeout(CLOSE_LINGER, async {
                write_all(&stream, &out).await.map_err(Into::into)
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
        } else {
            write_all(&stream, &out).await
        };
        session.state.borrow_mut().writing = false;
        if result.is_ok() {
            bump(&ctx.stats.writes, 1);
            bump(&ctx.stats.bytes_out, out.len() as u64);
            bump(&ctx.stats.rpc_notifications, notes);
        }
        if result.is_err() || last {
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
