//! The register step of a streaming session (an upgraded WebSocket or a Server-Sent Events
//! stream, as its [`Framing`] says): read the shard's cursor, decide a resume,
//! write `Hello` (and `Resume`, a query `Error`, the connect-time snapshot) and insert the
//! session into the shard's registry, as one synchronous function.
//!
//! Why one plain `fn`: exactly-once delivery across a resume needs the cursor read, the
//! replay opened and the registry insert to happen with no `await` in between (the dispatch
//! loop stores every frame before it offers it, with no await either: docs/decisions/
//! resume-rules.md). Then every frame dispatched to the session afterwards is above its
//! `Hello`, and a replay starts exactly where the store stood. A `fn` cannot await, so the
//! rule is kept by the compiler, not by a comment.

use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::rc::Rc;

use crate::metrics::bump;
use crate::serve::backpressure::SessionQueue;
use crate::serve::ctx::ShardCtx;
use crate::serve::filter::CompiledFilter;
use crate::serve::session::registry::{SessionShared, SessionState};
use crate::serve::session::replay;
use crate::wire::http::WsQuery;
use crate::wire::protocol::messages::{self, Hello};
use crate::wire::protocol::Framing;
use crate::wire::subscription::channel::Channel;
use crate::wire::subscription::Subscription;

/// How long a resuming old client's replay waits for its first subscribe.
const REPLAY_HOLD: std::time::Duration = std::time::Duration::from_millis(500);

/// Registers a new session on socket `fd` for `channel` with its connect-time `query`, and
/// returns it with its first frames (in its `framing`) already queued for the writer.
pub fn register(
    ctx: &ShardCtx,
    fd: RawFd,
    client: IpAddr,
    key: Option<String>,
    channel: Channel,
    query: &WsQuery,
    framing: Framing,
) -> Rc<SessionShared> {
    let limits = &ctx.config.subscription_limits();
    let (subscription, query_error) =
        match Subscription::from_query(channel, query.events.as_deref(), query.min_stage, limits) {
            Ok(s) => (s.with_priority(query.priority, limits), None),
            Err(e) => (Subscription::default_for(channel), Some(e)),
        };
    let opening = replay::open(ctx, query);
    let head = opening.cursor;
    let mut control = Vec::with_capacity(512);
    let hello = Hello {
        server_version: env!("CARGO_PKG_VERSION"),
        epoch: ctx.hub.epoch,
        channel: channel.name(),
        resume: ctx.config.resume_enabled(),
        limits: ctx.config.advertised_limits(),
    };
    framing.message(head, &messages::hello(head, &hello), &mut control);
    // Every connection gets a `Resume`, as from the old gateway, whose SDKs wait for one
    // (`waitForResume`): a fresh connect says `snapshot` / `fresh`, nothing it asked for lost.
    let fresh;
    let resume = match &opening.resume {
        Some(r) => r,
        None => {
            fresh = messages::resume(head, &messages::fresh_resume(ctx.hub.epoch));
            &fresh
        }
    };
    framing.message(head, resume, &mut control);
    if let Some(e) = &query_error {
        framing.message(head, &messages::error(head, e), &mut control);
        bump(&ctx.stats.error_frames, 1);
    }
    let mut queue = SessionQueue::new(ctx.config.queue_limits(), head);
    if let Some(gap) = opening.gap {
        // The queue is empty: this cannot be refused.
        let _ = queue.offer(gap);
    }
    // The connect-time snapshot the tailer published (TPS, latest ContentionData, one
    // Lifecycle per active block), as the subscription selects; not for a resuming client,
    // whose replay carries that history.
    if query.resume_from.is_none() && query.from_block.is_none() {
        let filter = CompiledFilter::new(&subscription);
        let snapshot = ctx.hub.chain.get();
        snapshot.write_connect_snapshot(
            head,
            |m| filter.matches_meta(m),
            !query.extended,
            framing,
            &mut control,
        );
    }
    // The old SDKs resume with `resume_from` alone (no `epoch`, `events` or `extended`, which
    // they do not know) and subscribe once the socket is open: give that subscribe a moment
    // to arrive so it, not the channel default, selects the replay. (An SSE client sends
    // nothing after its request: nothing to wait for.)
    let hold = framing.is_websocket()
        && opening.replay.is_some()
        && query.epoch.is_none()
        && query.events.is_none()
        && !query.extended;
    let replay_hold = hold.then(|| std::time::Instant::now() + REPLAY_HOLD);
    let id = ctx.sessions.borrow_mut().next_id();
    let shared = Rc::new(SessionShared {
        id,
        channel,
        fd,
        client,
        key,
        extended: query.extended,
        framing,
        state: RefCell::new(SessionState {
            filter: CompiledFilter::new(&subscription),
            queue,
            control,
            closing: None,
            writer: None,
            reader: None,
            replay_hold,
            replay: opening.replay,
            live_after: opening.live_after,
        }),
    });
    ctx.sessions.borrow_mut().insert(shared.clone());
    if hold {
        let s = shared.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(REPLAY_HOLD).await;
            s.wake();
        })
        .detach();
    }
    shared
}
