//! What the shard's dispatch loop sees of each session: its compiled filter, its bounded
//! queue, and the waker of its writer task.
//!
//! Runs on the shard core only (`Rc`/`RefCell`, no atomics). The dispatch loop calls
//! [`Registry::dispatch`] for every frame popped from the inbox: per session it tests the
//! precomputed keys (no JSON is read), offers an `Arc` clone to the session's queue, and
//! wakes the writer. It never awaits and never touches a socket: a session it disconnects
//! for being too slow is only marked closing; its own tasks deliver the close frame.
//!
//! Invariants: a slow session costs only its own queue (bounded by
//! `Config::session_queue_frames`); lower-lane frames are shed first and announced in
//! `Shed` frames; top-lane drops are counted, announced every `drop_warning_every`, and past
//! `drop_disconnect_after` the session is closed with 1008.

use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::Waker;

use crate::log::{self, Level};
use crate::metrics::{bump, ShardStats};
use crate::model::outbound::Outbound;
use crate::serve::backpressure::{Offer, SessionQueue};
use crate::serve::filter::CompiledFilter;
use crate::serve::resume::ReplayCursor;
use crate::wire::protocol::Framing;
use crate::wire::subscription::channel::Channel;
use crate::wire::ws::CloseCode;

/// Why and how a session is closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub code: CloseCode,
    pub reason: String,
}

/// A session's state shared by its reader task, its writer task and the dispatch loop.
#[derive(Debug)]
pub struct SessionShared {
    pub id: u64,
    pub channel: Channel,
    /// The socket, for aborting a writer stuck on a client that does not read.
    pub fd: RawFd,
    /// The client's address (through trusted proxies), for logs.
    pub client: IpAddr,
    /// The access key the session was admitted with (closed if the key is revoked).
    pub key: Option<String>,
    /// The client asked for ringgate's shapes (`extended=1`); else old-gateway shapes where
    /// they differ, and the data heartbeat.
    pub extended: bool,
    /// WebSocket frames, or Server-Sent Events messages (`/v1/sse`).
    pub framing: Framing,
    pub state: RefCell<SessionState>,
}

/// Mutable part of [`SessionShared`]; borrowed briefly, never across an await.
#[derive(Debug)]
pub struct SessionState {
    pub filter: CompiledFilter,
    pub queue: SessionQueue,
    /// Per-connection messages (pong, subscribe ack, error) waiting for the writer, already
    /// framed; written before queued frames.
    pub control: Vec<u8>,
    /// Set once; the writer sends the close frame after flushing what it may and stops.
    pub closing: Option<Closing>,
    pub writer: Option<Waker>,
    /// The reader task, waiting to learn that the session is closing.
    pub reader: Option<Waker>,
    /// Set while the session replays from the shard's resume store: the dispatch loop then
    /// offers it nothing (every live frame is also in the store, where the cursor will read
    /// it). Cleared by [`crate::serve::session::replay::refill`] when the cursor reaches the head.
    pub replay: Option<ReplayCursor>,
    /// Until then the replay waits for the client's first subscribe (an old SDK's, sent right
    /// after the socket opens), so that subscription governs the replay; cleared by it.
    pub replay_hold: Option<std::time::Instant>,
    /// Live frames with `server_seqno` at or below this were already replayed (or filtered
    /// out by the replay) and are skipped: the last seqno the replay examined, or the head
    /// at connect.
    pub live_after: u64,
}

/// Whether `filter` selects `frame` (events by their keys, meta frames by kind and stage).
pub fn wants(filter: &CompiledFilter, frame: &Outbound) -> bool {
    match frame {
        Outbound::Event(e) => filter.matches_event(e),
        Outbound::Meta(m) => filter.matches_meta(m),
        // For JSON-RPC sessions only (`serve::rpc`).
        Outbound::Rpc(_) => false,
    }
}

impl SessionShared {
    /// Wakes the writer task if it is waiting for work.
    pub fn wake(&self) {
        if let Some(w) = self.state.borrow_mut().writer.take() {
            w.wake();
        }
    }

    /// Marks the session closing with `code` (first caller wins) and wakes the writer and
    /// the reader. The socket is left alone: a writer blocked in a write to a client that
    /// does not read finishes it if the client reads again within `Config::close_grace`, and
    /// then sends the close frame (the connection task aborts the socket only when that
    /// grace runs out), so a client closed for being slow learns why.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let reader = {
            let mut st = self.state.borrow_mut();
            if st.closing.is_none() {
                let reason = reason.into();
                if !matches!(code, CloseCode::Normal | CloseCode::GoingAway) {
                    // One line per connection closed for a policy or protocol reason.
                    let client = self.client.to_string();
                    log::event(
                        Level::Info,
                        "client_closed",
                        &[
                            ("client", client.as_str().into()),
                            ("session", self.id.into()),
                            ("channel", self.channel.name().into()),
                            ("code", u64::from(code.code()).into()),
                            ("reason", reason.as_str().into()),
                        ],
                    );
                }
                st.closing = Some(Closing { code, reason });
            }
            st.reader.take()
        };
        if let Some(r) = reader {
            r.wake();
        }
        self.wake();
    }

    /// Offers one frame from the inbox to this session (if it is live, has not replayed the
    /// frame already, and its filter wants it).
    fn offer(&self, frame: &Outbound, stats: &ShardStats) {
        let outcome = {
            let mut st = self.state.borrow_mut();
            if st.closing.is_some()
                || st.replay.is_some()
                || frame.server_seqno() <= st.live_after
                || !wants(&st.filter, frame)
            {
                return;
            }
            let shed_before = st.queue.total_shed();
            let offer = st.queue.offer(frame.clone());
            bump(&stats.shed, st.queue.total_shed() - shed_before);
            let reason = matches!(offer, Offer::Disconnect).then(|| st.queue.disconnect_reason());
            (offer, reason)
        };
        match outcome {
            (Offer::Queued, _) => self.wake(),
            // Reported when a frame after it is written: nothing to write yet.
            (Offer::Shed, _) => {}
            (Offer::Dropped { warning }, _) => {
                bump(&stats.drops, 1);
                if warning.is_some() {
                    self.wake();
                }
            }
            (Offer::Disconnect, reason) => {
                bump(&stats.drops, 1);
                bump(&stats.slow_disconnects, 1);
                self.close(CloseCode::Policy, reason.unwrap_or_default());
            }
        }
    }
}

/// Shuts a socket down in both directions; pending reads and writes on it fail at once
/// (the connection task's last resort when a closing client does not read).
/// `fd` belongs to a TcpStream the session still owns (the session removes itself from the
/// registry before dropping its stream), so it is open and ours.
pub fn abort_socket(fd: RawFd) {
    crate::sys::shutdown(fd, crate::sys::Shutdown::Both);
}

/// The shard's sessions.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Vec<Rc<SessionShared>>,
    next_id: u64,
}

impl Registry {
    /// A fresh session id (unique on this shard).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts delivering to `session`.
    pub fn insert(&mut self, session: Rc<SessionShared>) {
        self.sessions.push(session);
    }

    /// Stops delivering to session `id`.
    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.sessions.iter().position(|s| s.id == id) {
            self.sessions.swap_remove(i);
        }
    }

    /// True when no session is registered.
    /// Closes (1008 "key revoked") every session admitted with a key no longer in force;
    /// returns how many.
    pub fn revoke_keys(&self, in_force: impl Fn(&str) -> bool) -> usize {
        let mut n = 0;
        for s in &self.sessions {
            if s.key.as_deref().is_some_and(|k| !in_force(k)) {
                s.close(CloseCode::Policy, "key revoked");
                n += 1;
            }
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Offers `frame` to every session whose filter wants it.
    pub fn dispatch(&mut self, frame: &Outbound, stats: &ShardStats) {
        for s in &self.sessions {
            s.offer(frame, stats);
        }
    }
}
