//! What a shard's dispatch loop sees of its JSON-RPC sessions: each one's subscriptions, its
//! byte-bounded notification queue and its writer's waker; plus the shard's view of the
//! chain for the plain methods (chain id, block number) and a short history of frames for
//! `logs` subscriptions whose `fromBlock` is already past.
//!
//! Runs on the shard core only (`Rc`/`RefCell`). [`RpcHub::dispatch`] is called for every
//! [`RpcFrame`] popped from the inbox: per session, per subscription (in Monad's send order:
//! `monadNewHeads`, `newHeads`, `monadLogs`, `logs`) it tests the state, the block range and
//! each log's precomputed address and topics, and queues a reference (`Arc` + index), never
//! bytes: the writer splices the envelope around the pre-encoded object.
//!
//! Which frames a subscription takes (docs/rpc.md):
//! - its states: `only_state` if the client asked for one, else every state for the
//!   `monad*` kinds and the server's heads stage (`--rpc-heads-stage`, default `Proposed`)
//!   for `newHeads`/`logs`;
//! - an `Abandoned` frame retracts what was sent: log kinds get the block's logs again with
//!   `removed: true` (and `commitState: "Abandoned"` for `monadLogs`), `monadNewHeads` the
//!   header with `commitState: "Abandoned"`, when the block had reached one of the
//!   subscription's states. `newHeads` has no retraction form and gets nothing.
//!
//! Invariants: a slow session costs only its own queue, bounded in bytes
//! (`Config::rpc_queue_bytes`); past it the session is closed with 1008 and a reason, and no
//! other session is affected. Never awaits, never touches a socket except to abort one whose
//! writer is stuck on a client that does not read.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use crate::model::rpc::{RpcBlock, RpcFrame};
use crate::model::stage::CommitStage;
use crate::serve::session::registry::{abort_socket, Closing};
use crate::wire::rpc::write_result;
use crate::wire::rpc::{monad_prefix_len, SubKind, Subscribe, NOTE_HEAD, NOTE_RESULT, NOTE_TAIL};
use crate::wire::rpc::{BlockRef, SUB_ID_LEN};
use crate::wire::ws::{self, CloseCode, OpCode};

/// Writes the chain id as `eth_chainId` (hex quantity) or `net_version` (decimal string)
/// answers it.
pub fn write_chain_id(out: &mut Vec<u8>, chain_id: u64, net_version: bool) {
    if net_version {
        out.extend_from_slice(format!("\"{chain_id}\"").as_bytes());
    } else {
        out.extend_from_slice(format!("\"0x{chain_id:x}\"").as_bytes());
    }
}

/// Frames kept for `fromBlock` replays at most (about a minute of blocks at five states
/// each), whatever their bytes; `Config::rpc_history_bytes` bounds their blocks' bytes.
pub const HISTORY_FRAMES: usize = 1_024;

/// One subscription of a session.
#[derive(Debug, Clone)]
pub struct Sub {
    pub id: u128,
    pub req: Subscribe,
}

/// What a queued notification carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Header,
    /// Index into the block's logs.
    Log(u32),
}

/// One queued notification: a reference to pre-encoded bytes and how to wrap them.
#[derive(Debug, Clone)]
pub struct Note {
    pub frame: Arc<RpcFrame>,
    pub sub: u128,
    pub item: Item,
    /// `monad*` kinds: the `blockId`/`commitState` prefix.
    pub monad: bool,
    /// A retracted log (`"removed":true`).
    pub removed: bool,
}

impl Note {
    /// Bytes of the notification's JSON text (without the WebSocket frame header).
    pub fn text_len(&self) -> usize {
        let body = match self.item {
            Item::Header => self.frame.block.header.len(),
            Item::Log(i) => {
                self.frame.block.logs[i as usize].json.len() - usize::from(self.removed)
            }
        };
        let prefix = if self.monad {
            monad_prefix_len(self.frame.stage) - 1
        } else {
            0
        };
        NOTE_HEAD.len() + SUB_ID_LEN + NOTE_RESULT.len() + prefix + body + NOTE_TAIL.len()
    }
}

/// The mutable part of a session; borrowed briefly, never across an await.
#[derive(Debug, Default)]
pub struct RpcState {
    pub subs: Vec<Sub>,
    pub queue: VecDeque<Note>,
    pub queued_bytes: usize,
    /// Responses, pongs and pings, already framed; written before notifications.
    pub control: Vec<u8>,
    /// `eth_chainId` / `net_version` requests (id, `true` for `net_version`) that came
    /// before the shard saw a block: answered when the first one arrives (ethers waits for
    /// `eth_chainId` and gives up on an error).
    pub waiting_chain_id: Vec<(String, bool)>,
    pub closing: Option<Closing>,
    pub writing: bool,
    pub writer: Option<Waker>,
    pub reader: Option<Waker>,
}

/// A JSON-RPC session as the shard sees it.
#[derive(Debug)]
pub struct RpcSession {
    pub id: u64,
    pub fd: RawFd,
    pub client: IpAddr,
    pub key: Option<String>,
    pub state: RefCell<RpcState>,
}

impl RpcSession {
    pub fn wake(&self) {
        if let Some(w) = self.state.borrow_mut().writer.take() {
            w.wake();
        }
    }

    /// Marks the session closing (first caller wins), wakes both tasks; a writer stuck on a
    /// client that does not read is aborted for a policy close.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let (writing, reader) = {
            let mut st = self.state.borrow_mut();
            if st.closing.is_none() {
                st.closing = Some(Closing {
                    code,
                    reason: reason.into(),
                });
            }
            (st.writing, st.reader.take())
        };
        if let Some(r) = reader {
            r.wake();
        }
        if writing && code == CloseCode::Policy {
            abort_socket(self.fd);
        }
        self.wake();
    }
}

/// Whether `sub` takes `frame`, and as what: `Some(removed)`.
fn takes(sub: &Subscribe, frame: &RpcFrame, heads_stage: CommitStage) -> Option<bool> {
    let wanted = |s: CommitStage| match sub.only_state {
        Some(only) => s == only,
        None => sub.kind.is_monad() || s == heads_stage,
    };
    if frame.stage == CommitStage::Abandoned {
        if sub.kind == SubKind::NewHeads {
            return None;
        }
        let sent = CommitStage::GATES
            .into_iter()
            .any(|s| wanted(s) && s.rank() <= frame.reached.rank());
        return sent.then_some(true);
    }
    wanted(frame.stage).then_some(false)
}

/// Queues what `sub` takes of `frame`; returns the bytes queued.
fn offer_sub(
    sub: &Sub,
    frame: &Arc<RpcFrame>,
    heads_stage: CommitStage,
    st: &mut RpcState,
) -> usize {
    let Some(removed) = takes(&sub.req, frame, heads_stage) else {
        return 0;
    };
    let monad = sub.req.kind.is_monad();
    let mut bytes = 0;
    let mut push = |item: Item, removed: bool| {
        let note = Note {
            frame: Arc::clone(frame),
            sub: sub.id,
            item,
            monad,
            removed,
        };
        bytes += note.text_len();
        st.queue.push_back(note);
    };
    if !sub.req.kind.is_logs() {
        push(Item::Header, false);
        return bytes;
    }
    let block = &frame.block;
    if !sub.req.filter.wants_block(block.number, &block.hash) {
        return 0;
    }
    for (i, log) in block.logs.iter().enumerate() {
        if sub.req.filter.matches(log) {
            push(Item::Log(i as u32), removed);
        }
    }
    bytes
}

/// Monad's send order within one block update.
const KIND_ORDER: [SubKind; 4] = [
    SubKind::MonadNewHeads,
    SubKind::NewHeads,
    SubKind::MonadLogs,
    SubKind::Logs,
];

/// Outcome of offering a frame to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Nothing,
    Queued,
    /// Over the byte bound: the session was closed.
    Closed,
}

impl RpcSession {
    /// Offers `frame` to every subscription of this session.
    pub fn offer(
        &self,
        frame: &Arc<RpcFrame>,
        heads_stage: CommitStage,
        max_bytes: usize,
    ) -> Offered {
        let over = {
            let mut st = self.state.borrow_mut();
            if st.closing.is_some() || st.subs.is_empty() {
                return Offered::Nothing;
            }
            let subs = std::mem::take(&mut st.subs);
            let mut bytes = 0;
            for kind in KIND_ORDER {
                for sub in subs.iter().filter(|s| s.req.kind == kind) {
                    bytes += offer_sub(sub, frame, heads_stage, &mut st);
                }
            }
            st.subs = subs;
            if bytes == 0 {
                return Offered::Nothing;
            }
            st.queued_bytes += bytes;
            (st.queued_bytes > max_bytes).then(|| {
                let queued = st.queued_bytes;
                st.queue.clear();
                st.queued_bytes = 0;
                queued
            })
        };
        match over {
            None => {
                self.wake();
                Offered::Queued
            }
            Some(queued) => {
                self.close(
                    CloseCode::Policy,
                    format!(
                        "slow client: {queued} bytes of notifications queued (limit {max_bytes})"
                    ),
                );
                Offered::Closed
            }
        }
    }

    /// Answers the chain-id requests that were waiting for the first block.
    pub fn answer_waiting(&self, chain_id: u64) {
        let waiting = std::mem::take(&mut self.state.borrow_mut().waiting_chain_id);
        if waiting.is_empty() {
            return;
        }
        let mut st = self.state.borrow_mut();
        for (id, net_version) in waiting {
            let mut text = Vec::new();
            write_result(&mut text, &id, |o| write_chain_id(o, chain_id, net_version));
            ws::write_frame(OpCode::Text, &text, &mut st.control);
        }
        drop(st);
        self.wake();
    }

    /// Queues what subscription `sub` takes of `frames` (a `fromBlock` replay), in order,
    /// under the same byte bound as live notifications.
    pub fn replay(
        &self,
        sub: &Sub,
        frames: &[Arc<RpcFrame>],
        heads_stage: CommitStage,
        max_bytes: usize,
    ) -> Offered {
        let queued = {
            let mut st = self.state.borrow_mut();
            for f in frames {
                let bytes = offer_sub(sub, f, heads_stage, &mut st);
                st.queued_bytes += bytes;
            }
            st.queued_bytes
        };
        if queued <= max_bytes {
            self.wake();
            return Offered::Queued;
        }
        {
            let mut st = self.state.borrow_mut();
            st.queue.clear();
            st.queued_bytes = 0;
        }
        self.close(
            CloseCode::Policy,
            format!("slow client: {queued} bytes of notifications queued (limit {max_bytes})"),
        );
        Offered::Closed
    }
}

/// What [`RpcHub::dispatch`] needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct RpcLimits {
    /// `Config::rpc_heads_stage`.
    pub heads_stage: CommitStage,
    /// `Config::rpc_queue_bytes`: a session's notification queue.
    pub queue_bytes: usize,
    /// `Config::rpc_history_bytes`: the blocks kept for `fromBlock` and block look-ups.
    pub history_bytes: u64,
}

/// The shard's JSON-RPC side.
#[derive(Debug, Default)]
pub struct RpcHub {
    sessions: Vec<Rc<RpcSession>>,
    next_id: u64,
    /// From the last block seen.
    pub chain_id: Option<u64>,
    /// Highest block number that reached the heads stage.
    pub block_number: u64,
    history: RpcHistory,
}

/// The frames kept for `fromBlock` replays and block look-ups, oldest first, bounded by
/// count and by the bytes of the distinct blocks they hold (a block's frames share it, so
/// it is counted once, while any of its frames is kept).
#[derive(Debug, Default)]
struct RpcHistory {
    frames: VecDeque<Arc<RpcFrame>>,
    /// Frames kept per block, by the block's address (unique while the block is held).
    refs: HashMap<*const RpcBlock, u32>,
    /// Heap bytes of the distinct blocks held.
    bytes: u64,
}

impl RpcHistory {
    fn push(&mut self, frame: &Arc<RpcFrame>, max_bytes: u64) {
        let refs = self.refs.entry(Arc::as_ptr(&frame.block)).or_insert(0);
        if *refs == 0 {
            self.bytes += frame.block.live.bytes();
        }
        *refs += 1;
        self.frames.push_back(Arc::clone(frame));
        while self.frames.len() > HISTORY_FRAMES
            || (self.bytes > max_bytes && self.frames.len() > 1)
        {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            let key = Arc::as_ptr(&old.block);
            if let Some(refs) = self.refs.get_mut(&key) {
                *refs -= 1;
                if *refs == 0 {
                    self.refs.remove(&key);
                    self.bytes -= old.block.live.bytes();
                }
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<RpcFrame>> {
        self.frames.iter()
    }
}

impl RpcHub {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn insert(&mut self, s: Rc<RpcSession>) {
        self.sessions.push(s);
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.sessions.iter().position(|s| s.id == id) {
            self.sessions.swap_remove(i);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Closes (1008 "key revoked") every session whose key is no longer in force.
    pub fn revoke_keys(&self, in_force: impl Fn(&str) -> bool) {
        for s in &self.sessions {
            if s.key.as_deref().is_some_and(|k| !in_force(k)) {
                s.close(CloseCode::Policy, "key revoked");
            }
        }
    }

    /// Records `frame` (chain view, history) and offers it to every session; returns how
    /// many sessions were closed for being too slow.
    pub fn dispatch(&mut self, frame: &Arc<RpcFrame>, limits: &RpcLimits) -> u64 {
        self.chain_id = Some(frame.block.chain_id);
        if frame.stage == limits.heads_stage {
            self.block_number = self.block_number.max(frame.block.number);
        }
        self.history.push(frame, limits.history_bytes);
        let mut closed = 0;
        for s in &self.sessions {
            s.answer_waiting(frame.block.chain_id);
            if s.offer(frame, limits.heads_stage, limits.queue_bytes) == Offered::Closed {
                closed += 1;
            }
        }
        closed
    }

    /// The block `at` names among the stored frames: for a number, its finalized proposal,
    /// else the newest one not abandoned; `None` when not held.
    pub fn block(&self, at: BlockRef) -> Option<Arc<RpcBlock>> {
        let best = |min: CommitStage| {
            self.history
                .iter()
                .filter(|f| f.stage.rank() >= min.rank() && f.stage.rank().is_some())
                .map(|f| f.block.number)
                .max()
        };
        let number = match at {
            BlockRef::Number(n) => n,
            BlockRef::Latest => self.block_number,
            BlockRef::Safe => best(CommitStage::Voted)?,
            BlockRef::Finalized => best(CommitStage::Finalized)?,
            BlockRef::Earliest => return None,
        };
        let mut found: Option<(&Arc<RpcFrame>, bool)> = None;
        for f in self.history.iter().filter(|f| f.block.number == number) {
            let final_ = matches!(f.stage, CommitStage::Finalized | CommitStage::Verified);
            match f.stage {
                CommitStage::Abandoned => {
                    if found.is_some_and(|(g, _)| g.block.id == f.block.id) {
                        found = None;
                    }
                }
                _ if found.is_some_and(|(_, fin)| fin) && !final_ => {}
                _ => found = Some((f, final_)),
            }
        }
        found.map(|(f, _)| Arc::clone(&f.block))
    }

    /// The stored frames of blocks numbered `from` and above, oldest first.
    pub fn history_from(&self, from: u64) -> Vec<Arc<RpcFrame>> {
        self.history
            .iter()
            .filter(|f| f.block.number >= from)
            .cloned()
            .collect()
    }
}
