//! The writer half of a streaming session (WebSocket or Server-Sent Events, the session's
//! [`crate::wire::protocol::Framing`]): its own glommio task.
//!
//! Drains everything pending (control frames, then queued frames) into one scatter-gather
//! list ([`Gather`]) and sends it with one `sendmsg` per turn: consecutive events become one
//! `Events` frame (pre-encoded objects joined by reference, not copied), meta frames are
//! referenced as they are. What a full socket does not take is copied out and written when
//! the socket drains. When idle it waits on its waker, never on a timer, so a lone event goes
//! out at once. A replaying session refills its queue from the resume store before each
//! write, so a replay is paced by the socket.
//!
//! A permessage-deflate session's turn is compressed after assembly, by the shard's shared
//! compressor (`compress_turn`); its messages are the same frames, compressed.
//!
//! Invariants: a client that never reads blocks only its own writer; `server_seqno` on this
//! connection never decreases (per-connection frames carry the cursor = the last seqno
//! written); the close frame is the last thing written, then FIN.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use futures_lite::future;
use glommio::net::TcpStream;

use crate::metrics::bump;
use crate::serve::backpressure::Written;
use crate::serve::ctx::ShardCtx;
use crate::serve::session::registry::{abort_socket, SessionShared};
use crate::serve::session::replay::{self, Refill};
use crate::serve::session::{park_until, write_all};
use crate::sys;
use crate::wire::protocol::{BatchWriter, FrameSink, Framing, Gather};
use crate::wire::ws::CloseCode;

pub(crate) async fn writer_loop(
    ctx: Rc<ShardCtx>,
    stream: Rc<RefCell<TcpStream>>,
    shared: Rc<SessionShared>,
) {
    let mut gather = Gather::default();
    let mut rest: Vec<u8> = Vec::new();
    let mut replayed = Vec::new();
    let mut plain: Vec<u8> = Vec::new();
    let batch = BatchWriter::new(ctx.config.batch)
        .old_shapes(!shared.extended)
        .with_framing(shared.framing);
    loop {
        // A replaying session tops its queue up from the store before each write, so the
        // replay goes exactly as fast as the socket drains.
        if replay::refill(&ctx, &shared, &mut replayed) == Refill::Scanning {
            future::yield_now().await;
            continue;
        }
        park_until(
            &shared.state,
            |st| !st.control.is_empty() || !st.queue.is_empty() || st.closing.is_some(),
            |st| &mut st.writer,
        )
        .await;
        gather.clear();
        let (written, last) = {
            let mut st = shared.state.borrow_mut();
            let st = &mut *st;
            gather.put(&st.control);
            st.control.clear();
            // Flush queued frames unless the session is being closed for a reason that
            // makes them moot (only a server shutdown flushes before closing). A session
            // closed for being slow gets one last Warning naming what it will not get.
            let flush = st
                .closing
                .as_ref()
                .is_none_or(|c| c.code == CloseCode::GoingAway);
            if !flush && st.queue.is_disconnected() {
                st.queue.close_out();
            }
            let written = if flush || st.queue.is_disconnected() {
                st.queue
                    .write_pending(&batch, &mut gather, ctx.config.write_max_bytes)
            } else {
                Written::default()
            };
            let last = match &st.closing {
                Some(_) if flush && !st.queue.is_empty() => false,
                Some(c) => {
                    gather.put_with(|out| shared.framing.close(c.code, &c.reason, out));
                    true
                }
                _ => false,
            };
            (written, last)
        };
        if shared.framing == Framing::WebSocketDeflate {
            compress_turn(&ctx, &mut gather, &mut plain);
        }
        let bytes = gather.byte_len();
        let result = send_gathered(&stream, &mut gather, &mut rest).await;
        if result.is_ok() {
            bump(&ctx.stats.writes, 1);
            bump(&ctx.stats.bytes_out, bytes as u64);
            bump(&ctx.stats.frames_out, written.frames as u64);
            bump(&ctx.stats.events_out, written.events as u64);
            // Ring → send latency, one sample per write.
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

/// Replaces a turn's frames with their permessage-deflate form, compressed by the shard's
/// shared [`crate::wire::ws::deflate::Deflater`] (once per distinct payload among its
/// recent messages). The turn is copied out of the gather list first: compression reads
/// every byte anyway. Both buffers keep at most [`PLAIN_KEEP`] bytes between turns.
fn compress_turn(ctx: &ShardCtx, gather: &mut Gather, plain: &mut Vec<u8>) {
    plain.clear();
    gather.copy_from(0, plain);
    gather.clear();
    gather.shrink_to(PLAIN_KEEP);
    let mut deflater = ctx.deflate.borrow_mut();
    let before = deflater.stats;
    gather.put_with(|out| deflater.compress_frames(plain, out));
    let after = deflater.stats;
    bump(
        &ctx.stats.deflate_compressed,
        after.compressed - before.compressed,
    );
    bump(&ctx.stats.deflate_reused, after.reused - before.reused);
    bump(
        &ctx.stats.deflate_bytes_in,
        after.bytes_in - before.bytes_in,
    );
    bump(
        &ctx.stats.deflate_bytes_out,
        after.bytes_out - before.bytes_out,
    );
    plain.clear();
    plain.shrink_to(PLAIN_KEEP);
}

/// Capacity a deflate session's copy buffer and compressed output keep between turns (a
/// larger turn, up to `write_max_bytes` plus one frame, allocates for that turn only).
const PLAIN_KEEP: usize = 64 * 1024;

/// Sends one turn's output: at once, as far as the socket buffer takes it (one `sendmsg`
/// per 1,024 pieces, the event bytes shared, not copied); whatever is left (a client that
/// reads slower than we write) is copied out and written by an ordinary write that waits
/// for the socket. A closing session's wait is bounded by the connection task (the close
/// grace, then the socket is aborted): a client that does not read must not keep the
/// session (or a shutdown) waiting on a close frame it will never take.
async fn send_gathered(
    stream: &Rc<RefCell<TcpStream>>,
    gather: &mut Gather,
    rest: &mut Vec<u8>,
) -> std::io::Result<()> {
    let fd = stream.borrow().as_raw_fd();
    let sent = gather.send_now(|iov| sys::send_nonblocking(fd, iov))?;
    if sent == gather.byte_len() {
        return Ok(());
    }
    rest.clear();
    gather.copy_from(sent, rest);
    // The referenced frames are copied: release them while the socket drains.
    gather.clear();
    write_all(stream, rest).await
}

/// Sends FIN after what is queued (the close frame); the client can still be read.
pub(crate) fn half_close(fd: std::os::fd::RawFd) {
    sys::shutdown(fd, sys::Shutdown::Write);
}
