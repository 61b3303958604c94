//! The connection task of a Server-Sent Events session, in place of the WebSocket reader:
//! an SSE client sends nothing after its request, so this only watches for its EOF, writes
//! the comment heartbeat, and ends when the session closes.
//!
//! Runs on the session's shard core; the queue, the writer, resume and backpressure are the
//! WebSocket session's own ([`mod@super::register`], [`super::writer`]), with
//! [`crate::wire::protocol::Framing::Sse`]. Whatever the client does send (an HTTP/1.1
//! pipelined request, garbage) is read and thrown away, a step at a time, so it never
//! accumulates. Never writes to the socket itself: the heartbeat goes through the control
//! buffer, at most one pending at a time (a client that does not read cannot make it grow).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use crate::serve::ctx::ShardCtx;
use crate::serve::session::reader::{closed_signal, settle, wait_reader, ReaderEnd};
use crate::serve::session::registry::SessionShared;
use crate::wire::sse;

/// How often the `: ping` comment goes out. A few seconds: well inside the idle timeouts of
/// common proxies (nginx's `proxy_read_timeout` is 60 s), and cheap (8 bytes).
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// Bytes one read takes from a client that sends anyway (then discarded).
const DISCARD_STEP: usize = 2048;

/// Runs until the client goes away or the session closes; see [`ReaderEnd`].
pub(crate) async fn watch_loop(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    shared: &Rc<SessionShared>,
) -> ReaderEnd {
    let mut scratch = Vec::with_capacity(DISCARD_STEP);
    let mut next_ping = Instant::now() + PING_EVERY;
    loop {
        if shared.state.borrow().closing.is_some() {
            return ReaderEnd::Closing;
        }
        let now = Instant::now();
        if now >= next_ping {
            let mut st = shared.state.borrow_mut();
            if st.control.is_empty() {
                st.control.extend_from_slice(sse::PING);
                drop(st);
                shared.wake();
            }
            next_ping = now + PING_EVERY;
        }
        let tick = next_ping.saturating_duration_since(now);
        scratch.clear();
        let closed = closed_signal(ctx, shared);
        let wake = wait_reader(stream, &mut scratch, DISCARD_STEP, closed, tick).await;
        if let Some(end) = settle(ctx, wake, |code, reason| shared.close(code, reason)) {
            return end;
        }
    }
}
