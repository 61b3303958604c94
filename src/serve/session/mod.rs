//! Sessions: one accepted connection, from its first byte to its close.
//!
//! Runs on the shard core that accepted the connection; one glommio task per connection
//! (plus one writer task once it streams). Life of a connection:
//! 1. read the HTTP request head, bounded by `handshake_timeout` and the head-size limit;
//! 2. admission (connection limits) and routing: REST is answered and closed, a bad request
//!    gets its documented 4xx, a WebSocket upgrade is validated and answered `101`, a
//!    Server-Sent Events request has its subscription checked (400) and is answered `200`
//!    `text/event-stream`;
//! 3. after the upgrade or the `200` ([`run_session`]): [`register`](register::register) (one synchronous
//!    step: `Hello`, the connect-time subscription from the query `events=` / `min_stage=`
//!    or the channel default, `Resume` and the replay when asked, the registry insert), then
//!    the [`reader`] loop (client frames; for SSE the [`sse`] watch loop) and the [`writer`]
//!    task (everything pending in one write per turn, in the session's
//!    [`Framing`]) until either side closes;
//! 4. closing: the writer finishes the write in flight and sends the close frame (last),
//!    then FIN, within `Config::close_grace` (a shutdown: the 1 s close linger), else the socket
//!    is aborted (docs/decisions/close-grace.md); then the client's input is read and
//!    discarded until its EOF or the close linger, so the socket is never dropped with input
//!    unread (the kernel would answer with a reset that destroys any frame not yet
//!    transmitted, the close frame included). An answered HTTP request closes the same way.
//!
//! - [`registry`]: what the dispatch loop sees of each session: filter, bounded queue, waker.
//! - [`register`](mod@register): the no-await step that opens a session and inserts it in the registry.
//! - [`reader`] and [`writer`]: the two halves of an upgraded session.
//! - [`sse`]: what replaces the reader for a Server-Sent Events session (heartbeat, EOF).
//! - [`replay`]: resume: the opening decision (`Resume`, `Gap`) and the flow-controlled
//!   replay from the shard's resume store into the live stream.
//!
//! Invariants: nothing a client sends can panic or affect another session; a session's
//! socket is only ever awaited by its own tasks, never by the dispatch loop.

pub mod reader;
pub mod register;
pub mod registry;
pub mod replay;
pub mod sse;
pub mod writer;

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::AsyncWrite;
use glommio::net::TcpStream;
use std::os::fd::AsRawFd;

use crate::metrics::{bump, now_ns};
use crate::serve::ctx::ShardCtx;
use crate::wire::http::auth::{presented_token, AuthRefusal, KeyGuard};
use crate::wire::http::WsQuery;
use crate::wire::http::{self, parse_request, Parsed, Request, Response, RestRoute, Route, Status};
use crate::wire::protocol::Framing;
use crate::wire::subscription::channel::Channel;
use crate::wire::ws;

pub use registry::{Registry, SessionShared};

use reader::{discard_until_eof, reader_loop, ReaderEnd};
use register::register;
use registry::abort_socket;
use writer::writer_loop;

/// How long a closing session waits for the client's close reply before dropping the socket.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Runs a streaming session to its end: an upgraded WebSocket, or a Server-Sent Events
/// stream whose `200` head is out (`framing`). `pipelined` holds bytes the client sent right
/// after its request head.
#[allow(clippy::too_many_arguments)]
pub async fn run_session(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    client: IpAddr,
    key: Option<String>,
    channel: Channel,
    query: WsQuery,
    pipelined: Vec<u8>,
    framing: Framing,
) {
    let fd = stream.borrow().as_raw_fd();
    let shared = register(ctx, fd, client, key, channel, &query, framing);
    let gauge = &ctx.stats.sessions_by_channel[channel.index()];
    bump(gauge, 1);

    let writer = glommio::spawn_local(writer_loop(ctx.clone(), stream.clone(), shared.clone()));
    let end = match framing {
        Framing::WebSocket | Framing::WebSocketDeflate => {
            reader_loop(ctx, stream, &shared, pipelined).await
        }
        Framing::Sse { .. } => sse::watch_loop(ctx, stream, &shared).await,
    };
    // The session is closing. A writer stuck in a write to a client that does not read gets
    // the close grace to finish it and send the close frame (a client that stalled until it
    // was dropped learns why when it reads again), then is cancelled and the socket
    // aborted, so no session outlives its client's misbehaviour. A shutdown waits only the
    // close linger.
    let shutting_down = shared
        .state
        .borrow()
        .closing
        .as_ref()
        .is_none_or(|c| c.code == ws::CloseCode::GoingAway);
    let grace = if shutting_down {
        CLOSE_LINGER
    } else {
        ctx.config.close_grace
    };
    let finished = glommio::timer::timeout(grace, async {
        writer.await;
        Ok(())
    })
    .await;
    if finished.is_err() {
        abort_socket(shared.fd);
    } else if end == ReaderEnd::Closing {
        // Close frame and FIN are out; the client may still be sending (the rest of an
        // oversized message, its close reply, anything): read it to EOF before the socket
        // is dropped, or the kernel resets the connection and the close frame with it.
        discard_until_eof(stream).await;
    }

    ctx.sessions.borrow_mut().remove(shared.id);
    gauge.fetch_sub(1, Ordering::Relaxed);
}

/// How a connection's request phase ended.
#[derive(Debug)]
enum Head {
    Request(Box<Request>, Vec<u8>),
    /// Answer this and close.
    Refuse(Response),
    /// Peer went away or timed out: close silently.
    Gone,
}

/// Which listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `listen`: the native protocol, REST, and JSON-RPC at `/rpc`.
    Main,
    /// `rpc_listen`: JSON-RPC on every path.
    Rpc,
}

/// Serves one accepted connection to completion. Never returns an error: every failure is
/// answered (status / close code), counted and ends only this connection.
pub async fn serve_connection(ctx: Rc<ShardCtx>, stream: TcpStream) {
    serve_connection_on(ctx, stream, Port::Main).await
}

/// [`serve_connection`] for a connection accepted on `port`.
pub async fn serve_connection_on(ctx: Rc<ShardCtx>, stream: TcpStream, port: Port) {
    bump(&ctx.stats.connections_open, 1);
    let _ = stream.set_nodelay(true);
    if let Some(bytes) = ctx.config.socket_send_buffer {
        crate::sys::set_send_buffer(stream.as_raw_fd(), bytes);
    }
    let stream = Rc::new(RefCell::new(stream));
    serve(&ctx, &stream, port).await;
    ctx.stats
        .connections_open
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

async fn serve(ctx: &Rc<ShardCtx>, stream: &Rc<RefCell<TcpStream>>, port: Port) {
    let (request, rest) = match read_head(ctx, stream).await {
        Head::Request(r, rest) => (r, rest),
        Head::Refuse(response) => {
            bump(&ctx.stats.connections_rejected, 1);
            respond(ctx, stream, &response).await;
            return;
        }
        Head::Gone => return,
    };
    let routed = match port {
        Port::Main => http::route(&request),
        Port::Rpc => http::route_rpc_port(&request),
    };
    let route = match routed {
        Ok(Route::Rpc) if !ctx.config.rpc => {
            bump(&ctx.stats.connections_rejected, 1);
            let e = http::HttpError::NotFound {
                path: request.path.clone(),
            };
            respond(ctx, stream, &e.response()).await;
            return;
        }
        Ok(r) => r,
        Err(e) => {
            bump(&ctx.stats.connections_rejected, 1);
            respond(ctx, stream, &e.response()).await;
            return;
        }
    };
    let peer = stream.borrow().peer_addr().map(|a| a.ip());
    let (admission, client) = match peer {
        Ok(peer) => {
            let ip = ctx
                .config
                .connection_limits
                .client_ip(peer, &request.headers);
            match ctx.admission.admit(ip) {
                Ok(a) => (a, ip),
                Err(refusal) => {
                    bump(&ctx.stats.connections_rejected, 1);
                    respond(ctx, stream, &refusal.response()).await;
                    return;
                }
            }
        }
        Err(_) => return,
    };
    // Held for the life of the connection: one of the key's connections.
    let key = match authorize(ctx, &request, &route) {
        Ok(key) => key,
        Err(refusal) => {
            bump(&ctx.stats.connections_rejected, 1);
            respond(ctx, stream, &refusal.response()).await;
            return;
        }
    };
    match route {
        Route::Rest(rest_route) => {
            bump(&ctx.stats.rest_requests, 1);
            let response = crate::serve::rest::answer(rest_route, &ctx.hub, &ctx.config, now_ns())
                .unwrap_or_else(|| Response::error(Status::NotFound, "not served by this build"));
            respond(ctx, stream, &response).await;
        }
        Route::Sse(channel, query) => {
            let key_name = key.as_ref().map(|k| k.name().to_owned());
            serve_sse(ctx, stream, client, key_name, channel, query).await;
        }
        Route::Ws(..) | Route::Rpc => {
            let mut accept = match ws::accept(&request) {
                Ok(a) => a,
                Err(e) => {
                    bump(&ctx.stats.connections_rejected, 1);
                    respond(ctx, stream, &e.response()).await;
                    return;
                }
            };
            // permessage-deflate on the native protocol only (the JSON-RPC writer is separate).
            if ctx.config.compression && matches!(route, Route::Ws(..)) {
                accept.deflate =
                    ws::deflate::negotiate(request.headers.sec_websocket_extensions.as_deref());
            }
            let upgrade = ws::switching_protocols(&accept);
            if write_all(stream, &upgrade).await.is_err() {
                return;
            }
            let key_name = key.as_ref().map(|k| k.name().to_owned());
            match route {
                Route::Ws(channel, query) => {
                    let framing = match accept.deflate {
                        Some(_) => Framing::WebSocketDeflate,
                        None => Framing::WebSocket,
                    };
                    run_session(ctx, stream, client, key_name, channel, query, rest, framing).await
                }
                _ => {
                    crate::serve::rpc::session::run_rpc_session(ctx, stream, client, key_name, rest)
                        .await
                }
            }
        }
    }
    drop(key);
    drop(admission);
}

/// Starts a Server-Sent Events stream: a subscription the query names but the channel does
/// not carry (or a gate the server does not run) is a 400 before the stream starts (a
/// WebSocket gets an `Error` frame after `Hello` instead: an SSE client could not tell it
/// from data), then the `200` head, then the session.
async fn serve_sse(
    ctx: &Rc<ShardCtx>,
    stream: &Rc<RefCell<TcpStream>>,
    client: IpAddr,
    key: Option<String>,
    channel: Channel,
    query: WsQuery,
) {
    if let Err(e) = query.subscription(channel, &ctx.config.subscription_limits()) {
        bump(&ctx.stats.connections_rejected, 1);
        respond(ctx, stream, &e.response()).await;
        return;
    }
    let head = crate::wire::sse::response_head(ctx.config.cors_origin.as_deref());
    if write_all(stream, &head).await.is_err() {
        return;
    }
    let framing = Framing::Sse {
        epoch: ctx.hub.epoch,
    };
    run_session(
        ctx,
        stream,
        client,
        key,
        channel,
        query,
        Vec::new(),
        framing,
    )
    .await;
}

/// The access key a request needs: `None` when auth is off, for `/health`, and for
/// `/metrics` with `--metrics-open`; otherwise the key its token names, within its quota and
/// channels, or why not (401 / 403 / 429).
fn authorize(
    ctx: &ShardCtx,
    request: &Request,
    route: &Route,
) -> Result<Option<KeyGuard>, AuthRefusal> {
    let Some(keys) = &ctx.hub.auth else {
        return Ok(None);
    };
    let channel = match route {
        Route::Ws(channel, _) | Route::Sse(channel, _) => Some(*channel),
        Route::Rest(RestRoute::Health) => return Ok(None),
        Route::Rest(RestRoute::Metrics) if ctx.config.metrics_open => return Ok(None),
        Route::Rest(_) => None,
        // Any valid key (within its connection quota): the notifications are block data.
        Route::Rpc => None,
    };
    let token = presented_token(request.headers.authorization.as_deref(), &request.query);
    keys.admit(token, channel).map(Some)
}

/// Reads until a complete request head, the size limit, the handshake deadline or EOF.
async fn read_head(ctx: &Rc<ShardCtx>, stream: &Rc<RefCell<TcpStream>>) -> Head {
    let limits = ctx.config.request_limits;
    let deadline = Instant::now() + ctx.config.handshake_timeout;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let read = glommio::timer::timeout(remaining, async {
            reader::read_some(stream, &mut buf, limits.max_head_bytes + 1)
                .await
                .map_err(Into::into)
        })
        .await;
        match read {
            Ok(0) => return Head::Gone,
            Ok(_) => {}
            Err(glommio::GlommioError::TimedOut(_)) => {
                bump(&ctx.stats.handshake_timeouts, 1);
                return Head::Gone;
            }
            Err(_) => return Head::Gone,
        }
        match parse_request(&buf, &limits) {
            Ok(Parsed::Complete(req)) => {
                let rest = buf
                    .get(req.head_len..)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                return Head::Request(req, rest);
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return Head::Refuse(e.response()),
        }
    }
}

async fn respond(ctx: &ShardCtx, stream: &Rc<RefCell<TcpStream>>, response: &Response) {
    let bytes = response.encode(ctx.config.cors_origin.as_deref());
    if write_all(stream, &bytes).await.is_ok() {
        bump(&ctx.stats.bytes_out, bytes.len() as u64);
        bump(&ctx.stats.writes, 1);
    }
    // Half-close: the client reads the whole answer, then sees EOF. Then read what it still
    // sends (a request body, the rest of an oversized head) until its EOF, so the close is a
    // FIN, not a reset that could destroy the answer before it is transmitted.
    let fd = stream.borrow().as_raw_fd();
    writer::half_close(fd);
    discard_until_eof(stream).await;
}

/// Resolves once `ready` holds for the session state in `cell`; until then the polling task's
/// waker waits in the slot `waker` picks (the session's reader or writer slot), woken by
/// whoever changes the state. The state is borrowed only inside each poll. Shared by the
/// native and the JSON-RPC sessions.
pub(crate) async fn park_until<S>(
    cell: &RefCell<S>,
    ready: impl Fn(&S) -> bool,
    waker: impl Fn(&mut S) -> &mut Option<std::task::Waker>,
) {
    futures_lite::future::poll_fn(|cx| {
        let mut st = cell.borrow_mut();
        if ready(&st) {
            std::task::Poll::Ready(())
        } else {
            *waker(&mut st) = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    })
    .await
}

/// Writes all of `bytes` (the stream is borrowed only inside each poll).
pub(crate) async fn write_all(
    stream: &Rc<RefCell<TcpStream>>,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        let n = futures_lite::future::poll_fn(|cx| {
            let mut s = stream.borrow_mut();
            std::pin::Pin::new(&mut *s).poll_write(cx, &bytes[off..])
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n;
    }
    futures_lite::future::poll_fn(|cx| {
        let mut s = stream.borrow_mut();
        std::pin::Pin::new(&mut *s).poll_flush(cx)
    })
    .await
}
