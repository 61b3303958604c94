//! What a shard's tasks share: the shard's configuration, counters, session registry, resume
//! store, admission, permessage-deflate compressor and shutdown signal.
//!
//! Single-threaded (`Rc`, `RefCell`, `Cell`): one per shard executor, never crosses cores.
//! Session code depends on this context and the dispatch loop ([`crate::serve::shard`])
//! depends on sessions, never the other way round.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use glommio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::{ShardStats, StatsHub};
use crate::serve::repair::Repair;
use crate::serve::resume::ResumeStore;
use crate::serve::rpc::RpcHub;
use crate::serve::session::Registry;
use crate::wire::http::ShardAdmission;
use crate::wire::ws::deflate::Deflater;

/// What a shard's tasks share (single-threaded: `Rc`, `RefCell`).
#[derive(Debug)]
pub struct ShardCtx {
    pub config: Arc<Config>,
    pub hub: StatsHub,
    pub stats: Arc<ShardStats>,
    /// This shard's WebSocket sessions, as the dispatch loop sees them.
    pub sessions: RefCell<Registry>,
    /// This shard's JSON-RPC sessions and chain view.
    pub rpc: RefCell<RpcHub>,
    /// server_seqno of the last frame this shard dispatched: a new session starts its cursor
    /// here (not at the tailer's head, which may be ahead of frames still in the inbox), so
    /// every frame it receives afterwards is above its `Hello`.
    pub dispatched: Cell<u64>,
    /// Recent frames for resuming sessions (empty and unused when resume is disabled).
    pub resume: RefCell<ResumeStore>,
    /// A `shard_queue_full` loss being read back from the history (`crate::serve::repair`):
    /// while set, the dispatch loop holds every later frame.
    pub repair: RefCell<Option<Repair>>,
    /// Connection admission (per-IP counts of this shard, the global count shared).
    pub admission: ShardAdmission,
    /// Closed when the shard shuts down: every waiter wakes with an error (a broadcast).
    pub closing: Semaphore,
    /// The access-key generation this shard last checked its sessions against.
    pub auth_generation: Cell<u64>,
    /// The compressor all of this shard's permessage-deflate sessions share.
    pub deflate: RefCell<Deflater>,
    closing_flag: Cell<bool>,
}

impl ShardCtx {
    /// A shard's context: no sessions, nothing dispatched, an empty resume store.
    pub fn new(
        config: Arc<Config>,
        hub: StatsHub,
        stats: Arc<ShardStats>,
        admission: ShardAdmission,
    ) -> ShardCtx {
        let mut resume = ResumeStore::new(config.resume_config());
        // After a restart with a history dir, everything up to the journal's head was
        // dispatched by the earlier run: cursors up to it are in range, not ahead.
        let mut restart_head = 0;
        if let Some(h) = &hub.history {
            restart_head = h.sealed_head();
            resume = resume.with_history(h.clone());
        }
        ShardCtx {
            config,
            hub,
            stats,
            sessions: RefCell::new(Registry::default()),
            rpc: RefCell::new(RpcHub::default()),
            dispatched: Cell::new(restart_head),
            resume: RefCell::new(resume),
            repair: RefCell::new(None),
            admission,
            closing: Semaphore::new(0),
            auth_generation: Cell::new(0),
            deflate: RefCell::new(Deflater::default()),
            closing_flag: Cell::new(false),
        }
    }

    /// True once shutdown started on this shard.
    pub fn is_closing(&self) -> bool {
        self.closing_flag.get()
    }

    /// Starts shutdown on this shard: wakes the accept loop and every session.
    pub fn begin_close(&self) {
        self.closing_flag.set(true);
        self.closing.close();
    }

    /// Resolves when shutdown starts.
    pub async fn closed(&self) {
        let _ = self.closing.acquire(1).await;
    }
}
