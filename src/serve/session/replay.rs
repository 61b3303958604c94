//! Resume on the session side: what a connection asking for `resume_from` / `from_block`
//! is told first, and the flow-controlled replay from the shard's resume store that then
//! joins the live stream.
//!
//! Runs on the session's shard core: [`open`] in the connection task right before the
//! session is registered (no await in between), [`refill`] in the session's writer task
//! whenever the session's queue has room. Inputs: the query, the shard's
//! [`crate::serve::resume::ResumeStore`], the session's compiled filter. Outputs: the `Resume`
//! message, an optional `Gap` frame, and replayed frames in the session queue.
//!
//! Invariants (docs/decisions/resume-rules.md):
//! - while a session replays, the dispatch loop offers it nothing; it reads every frame,
//!   live ones included, from the store through its [`ReplayCursor`], filtered by its
//!   current subscription, only as fast as its socket drains (a full queue pauses the
//!   replay; nothing is dropped, the connection is never aborted for it);
//! - when the cursor reaches the store's head the session goes live and skips live frames
//!   at or below the cursor's position: no frame twice, none missing (the dispatch loop
//!   stores each frame before offering it, with no await in between);
//! - frames the store evicted before a slow replay reached them are announced by one `Gap`
//!   frame (`reason: "resume_window"`) in their place.
//!
//! Never: await, touch the socket, or copy frame bytes (frames are `Arc` clones).

use std::sync::Arc;

use crate::metrics::bump;
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::Outbound;
use crate::model::seqno::Epoch;
use crate::serve::ctx::ShardCtx;
use crate::serve::resume::{ReplayCursor, ResumeDecision, ResumeRequest};
use crate::serve::session::registry::{wants, SessionShared};
use crate::wire::http::WsQuery;
use crate::wire::protocol::messages;
use crate::wire::protocol::messages::gap_frame;

/// Frames one [`refill`] examines at most, so a selective filter over a large store still
/// returns to the executor regularly (a few hundred microseconds of filter tests).
const REPLAY_SCAN: usize = 16_384;

/// How a session starts: its cursor, what it is told, and where its replay starts.
#[derive(Debug)]
pub struct Opening {
    /// The session's starting cursor: `Hello` and `Resume` carry it, the session queue
    /// counts from it.
    pub cursor: u64,
    /// The `Resume` message (JSON), when the client asked to resume.
    pub resume: Option<Vec<u8>>,
    /// Queued before anything else: announces seqnos the client missed that are gone.
    pub gap: Option<Outbound>,
    /// The replay to run, when there is anything after the starting point.
    pub replay: Option<ReplayCursor>,
    /// Live frames at or below this are skipped (see `SessionState::live_after`).
    pub live_after: u64,
}

/// Decides how a new session on this shard starts. Call with no await between it and the
/// session's registration (the store's head must not move in between).
pub fn open(ctx: &ShardCtx, query: &WsQuery) -> Opening {
    let head = ctx.dispatched.get();
    let request = ResumeRequest {
        resume_from: query.resume_from,
        epoch: query.epoch,
        from_block: query.from_block,
    };
    if request.resume_from.is_none() && request.from_block.is_none() {
        return Opening {
            cursor: head,
            resume: None,
            gap: None,
            replay: None,
            live_after: head,
        };
    }
    let decision = if ctx.config.resume_enabled() {
        ctx.resume
            .borrow()
            .decide(&request, Epoch::new(ctx.hub.epoch))
    } else {
        ResumeDecision::disabled(head)
    };
    bump(&ctx.stats.resume_requests, 1);
    if !decision.recovered {
        bump(&ctx.stats.resume_unrecovered, 1);
    }
    let cursor = decision.cursor();
    let resume = messages::resume(cursor, &decision.info(ctx.hub.epoch, head));
    let gap = decision.gap.as_ref().and_then(gap_outbound);
    if gap.is_some() {
        bump(&ctx.stats.gaps[GapReason::ResumeWindow.index()], 1);
    }
    let start = decision.start_after;
    Opening {
        cursor,
        resume: Some(resume),
        gap,
        replay: (start < head).then(|| ReplayCursor::new(start)),
        live_after: start.max(head),
    }
}

/// The `Gap` frame for a half-open range of seqnos this session lost, stamped with the last
/// lost seqno (above everything the session got before it, below everything after).
fn gap_outbound(range: &std::ops::Range<u64>) -> Option<Outbound> {
    let gap = Gap::from_range(GapReason::ResumeWindow, range)?;
    let frame = gap_frame(range.end - 1, &gap);
    Some(Outbound::Meta(Arc::new(frame)))
}

/// What [`refill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    /// The session is live (or closing): nothing to replay.
    Live,
    /// Frames (or a `Gap`) were queued, or the queue is full: write them first.
    Queued,
    /// A bounded scan found nothing for this filter yet: yield, then refill again.
    Scanning,
    /// The replay reached the head; the session is now live.
    CaughtUp,
}

/// Moves the next replayed frames into the session's queue, as many as it has room for,
/// so the replay advances exactly as fast as the client reads. `scratch` is a reusable
/// buffer.
pub fn refill(ctx: &ShardCtx, shared: &SessionShared, scratch: &mut Vec<Outbound>) -> Refill {
    let mut st = shared.state.borrow_mut();
    let st = &mut *st;
    if st.closing.is_some() {
        st.replay = None;
        return Refill::Live;
    }
    let Some(cursor) = st.replay.as_mut() else {
        return Refill::Live;
    };
    if st
        .replay_hold
        .is_some_and(|until| std::time::Instant::now() < until)
    {
        return Refill::Queued; // the writer sleeps until the subscribe or the hold's end
    }
    st.replay_hold = None;
    let room = ctx
        .config
        .queue_limits()
        .capacity
        .max(1)
        .saturating_sub(st.queue.len());
    if room == 0 {
        return Refill::Queued;
    }
    let store = ctx.resume.borrow();
    // One slot stays free for the Gap frame of a lost range the chunk may meet (before the
    // window, or a hole in the history).
    let max_frames = room - 1;
    if max_frames == 0 {
        return Refill::Queued;
    }
    scratch.clear();
    let filter = &st.filter;
    let chunk = cursor.next_chunk(
        &store,
        max_frames,
        REPLAY_SCAN,
        |f| wants(filter, f),
        scratch,
    );
    if let Some(gap) = chunk.lost.as_ref().and_then(gap_outbound) {
        bump(&ctx.stats.gaps[GapReason::ResumeWindow.index()], 1);
        let _ = st.queue.offer(gap);
    }
    bump(&ctx.stats.replayed_frames, scratch.len() as u64);
    for frame in scratch.drain(..) {
        // Never full: at most `room` slots are used.
        let _ = st.queue.offer(frame);
    }
    if chunk.caught_up {
        st.live_after = cursor.position();
        st.replay = None;
        return Refill::CaughtUp;
    }
    if chunk.delivered == 0 && chunk.lost.is_none() {
        Refill::Scanning
    } else {
        Refill::Queued
    }
}
