//! A shard: one glommio `LocalExecutor` on its own core, with its own `SO_REUSEPORT`
//! listener, its own sessions and its own counters. Shards share nothing mutable with each
//! other; the only cross-core input is the shard's SPSC inbox from the tailer.
//!
//! Runs on shard core `i`. Three kinds of tasks:
//! - the **accept loop**: accepts connections and spawns one session task each (in a
//!   [`glommio::sync::Gate`] so shutdown can wait for them);
//! - the **dispatch loop**: drains the inbox until it is empty or a 200 µs slice is used;
//!   appends each frame to the shard's [`ResumeStore`] (an `Arc` clone, no bytes copied),
//!   *then* offers it to every live session whose filter matches (test a precomputed key,
//!   push an `Arc`, wake the writer), then yields so session writers run; parks on the
//!   inbox doorbell when idle. A `shard_queue_full` loss is read back from the history and
//!   dispatched in its place, later frames held meanwhile ([`crate::serve::repair`]);
//! - the **session tasks** ([`crate::serve::session`]).
//!
//! Invariants: the dispatch loop never awaits a socket, so a slow client cannot stall it;
//! per frame it does O(sessions on this shard) filter tests and no allocation (beyond the
//! store's amortised ring buffer). Every frame is in the store before any session sees it,
//! and no await separates the two, so between awaits the store's head is exactly the last
//! dispatched seqno: a replaying session that reaches the head can go live without a hole
//! or a duplicate (docs/decisions/resume-rules.md).
//! Must never: block the thread, touch another shard's sessions or counters.

use std::cell::RefMut;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::net::TcpListener;
use glommio::sync::Gate;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::handoff::fanout::{FanoutReceiver, ShardInbox};
use crate::metrics::{bump, ShardStats, StatsHub};
use crate::model::outbound::Outbound;
use crate::serve::ctx::ShardCtx;
use crate::serve::repair::Repair;
use crate::serve::resume::ResumeStore;
use crate::serve::rpc::hub::RpcLimits;
use crate::serve::session::{self, Registry};
use crate::wire::http::{GlobalConnections, ShardAdmission};

/// Entries taken from the inbox per drain call.
const DISPATCH_BATCH: usize = 256;

/// Longest the dispatch loop drains the inbox before letting session writers run.
const DISPATCH_SLICE: Duration = Duration::from_micros(200);

/// How often an idle shard checks whether the history has sealed a range it repairs.
const REPAIR_POLL: Duration = Duration::from_millis(2);

/// Everything a shard thread needs, moved into it at spawn.
#[derive(Debug)]
pub struct ShardSetup {
    pub index: usize,
    pub config: Arc<Config>,
    /// Address to bind (shards after the first get the first one's real port).
    pub listen: SocketAddr,
    pub inbox: FanoutReceiver,
    pub hub: StatsHub,
    /// Set by [`crate::server::ShutdownHandle::trigger`] (which also rings the doorbell).
    pub shutdown: Arc<AtomicBool>,
    /// Address of the JSON-RPC listener (`Config::rpc_listen`; shards after the first get
    /// the first one's real port).
    pub rpc_listen: Option<SocketAddr>,
    /// Receives the bound addresses (main, JSON-RPC), or the bind error, once.
    pub ready: mpsc::Sender<io::Result<(SocketAddr, Option<SocketAddr>)>>,
    /// Connections open on the whole server (shared by all shards' admission).
    pub connections: GlobalConnections,
}

/// Starts shard `setup.index` on its own thread. Startup failures of the executor itself
/// (locked memory) surface when the handle is joined; bind failures through `setup.ready`.
pub fn spawn(setup: ShardSetup) -> glommio::Result<glommio::ExecutorJoinHandle<()>, ()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let placement = if setup.config.pin_cores {
        Placement::Fixed(setup.config.shard_core(setup.index, cores))
    } else {
        Placement::Unbound
    };
    LocalExecutorBuilder::new(placement)
        .name(&format!("rg-shard-{}", setup.index))
        .io_memory(setup.config.io_memory)
        .ring_depth(setup.config.ring_depth)
        .spawn(move || shard_main(setup))
}

async fn shard_main(setup: ShardSetup) {
    let ShardSetup {
        index,
        config,
        listen,
        rpc_listen,
        inbox,
        hub,
        shutdown,
        ready,
        connections,
    } = setup;
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(io::Error::other(e.to_string())));
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(listen);
    let rpc_listener = match rpc_listen.map(TcpListener::bind).transpose() {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(io::Error::other(e.to_string())));
            return;
        }
    };
    let rpc_bound = rpc_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .or(rpc_listen);
    let stats = hub.shards[index].clone();
    let admission =
        ShardAdmission::new(&config.connection_limits, config.shard_count(), connections);
    let ctx = Rc::new(ShardCtx::new(config.clone(), hub, stats, admission));
    let gate = Rc::new(Gate::new());
    let acceptor = glommio::spawn_local(accept_loop(
        ctx.clone(),
        listener,
        gate.clone(),
        session::Port::Main,
    ));
    let rpc_acceptor = rpc_listener.map(|l| {
        glommio::spawn_local(accept_loop(
            ctx.clone(),
            l,
            gate.clone(),
            session::Port::Rpc,
        ))
    });
    let _ = ready.send(Ok((bound, rpc_bound)));

    dispatch_loop(&ctx, inbox.attach(), &shutdown).await;

    // Shutdown: stop accepting, tell every session to close with 1001 and flush, then wait
    // for them, bounded by the grace period.
    ctx.begin_close();
    acceptor.await;
    if let Some(a) = rpc_acceptor {
        a.await;
    }
    let _ = glommio::timer::timeout(config.shutdown_grace, gate.close()).await;
}

async fn accept_loop(
    ctx: Rc<ShardCtx>,
    listener: TcpListener,
    gate: Rc<Gate>,
    port: session::Port,
) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            ctx.closed().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                bump(&ctx.stats.connections_accepted, 1);
                if gate
                    .spawn(session::serve_connection_on(ctx.clone(), stream, port))
                    .map(|t| t.detach())
                    .is_err()
                {
                    return;
                }
            }
            // EMFILE and friends: back off a little so a full fd table does not spin the
            // core; the listener keeps its backlog meanwhile.
            Some(Err(_)) => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn dispatch_loop(ctx: &Rc<ShardCtx>, mut inbox: ShardInbox, shutdown: &AtomicBool) {
    let mut batch = Vec::with_capacity(DISPATCH_BATCH);
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return;
        }
        revoke_removed_keys(ctx);
        if dispatch_slice(ctx, &mut inbox, &mut batch) == 0 {
            if ctx.repair.borrow().is_some() {
                // The history seals the range on its own clock, not the inbox's doorbell.
                glommio::timer::sleep(REPAIR_POLL).await;
            } else if inbox.park(ctx.config.inbox_spin).await.is_err() {
                return;
            }
            continue;
        }
        // Let the woken session writers run before draining more. Without sessions there
        // is nobody to let run, and a yield costs a full reactor turn (io_uring timeout
        // cancel + re-arm, `io_uring_enter`): it made a shard with no clients spend more
        // CPU per event than the tailer. It still yields when glommio's preemption timer
        // says so, so a never-empty inbox cannot starve the accept loop or REST.
        if ctx.sessions.borrow().is_empty() && ctx.rpc.borrow().is_empty() {
            glommio::yield_if_needed().await;
        } else {
            future::yield_now().await;
        }
    }
}

/// After a reload of the access keys (SIGHUP rings every shard's doorbell), closes this
/// shard's sessions whose key is gone. One atomic load per loop turn otherwise.
fn revoke_removed_keys(ctx: &ShardCtx) {
    let Some(keys) = &ctx.hub.auth else {
        return;
    };
    let generation = keys.generation();
    if generation == ctx.auth_generation.get() {
        return;
    }
    ctx.auth_generation.set(generation);
    let in_force = keys.keys();
    let in_force = |name: &str| in_force.iter().any(|k| k.spec.name == name);
    ctx.sessions.borrow().revoke_keys(in_force);
    ctx.rpc.borrow().revoke_keys(in_force);
}

/// Drains the inbox into the store and the sessions' queues until it is empty or
/// [`DISPATCH_SLICE`] has passed; returns the frames dispatched. Never awaits.
///
/// Bounded by time, not by a frame count: a writer round (one write per session with
/// something queued) costs about as much as thousands of filter tests, so yielding after a
/// fixed small batch let a burst of frames that few sessions want (a block's `min_stage`
/// copies) cost one writer round per batch while the live frames behind it waited
/// (figures, run by run: docs/benchmarks.md, "Second session").
fn dispatch_slice(ctx: &ShardCtx, inbox: &mut ShardInbox, batch: &mut Vec<Outbound>) -> usize {
    let mut out = Dispatcher {
        ctx,
        keep: ctx.config.resume_enabled(),
        rpc_limits: RpcLimits {
            heads_stage: ctx.config.rpc_heads_stage,
            queue_bytes: ctx.config.rpc_queue_bytes,
            history_bytes: ctx.config.rpc_history_bytes,
        },
        sessions: ctx.sessions.borrow_mut(),
        store: ctx.resume.borrow_mut(),
        repair: ctx.repair.borrow_mut(),
    };
    let started = Instant::now();
    let mut total = out.finish_repair();
    loop {
        let n = inbox.drain_into(batch, DISPATCH_BATCH);
        if n == 0 {
            break;
        }
        total += n;
        bump(&ctx.stats.inbox_frames, n as u64);
        for frame in batch.drain(..) {
            out.accept(frame);
        }
        if started.elapsed() >= DISPATCH_SLICE {
            break;
        }
    }
    if out.keep && total > 0 {
        publish_store(&ctx.stats, &out.store);
    }
    total
}

/// One dispatch slice's hold on the shard's state.
struct Dispatcher<'a> {
    ctx: &'a ShardCtx,
    keep: bool,
    rpc_limits: RpcLimits,
    sessions: RefMut<'a, Registry>,
    store: RefMut<'a, ResumeStore>,
    repair: RefMut<'a, Option<Repair>>,
}

impl Dispatcher<'_> {
    /// Takes one frame from the inbox: held while a repair is pending, starts a repair when
    /// it announces a `shard_queue_full` loss the history can fill, else dispatched.
    fn accept(&mut self, frame: Outbound) {
        if let Some(r) = self.repair.as_mut() {
            r.hold(frame);
            return;
        }
        if let Some(r) = Repair::start(&frame, self.ctx.hub.history.as_ref()) {
            *self.repair = Some(r);
            self.finish_repair();
            return;
        }
        self.dispatch(frame);
    }

    /// Ends the pending repair if the history has sealed its range (or it gave up):
    /// dispatches the range, then accepts what it held. Returns the frames dispatched.
    fn finish_repair(&mut self) -> usize {
        let mut total = 0;
        loop {
            let (Some(r), Some(history)) = (self.repair.as_mut(), self.ctx.hub.history.as_ref())
            else {
                return total;
            };
            let Some(done) = r.try_finish(history, Instant::now()) else {
                return total;
            };
            *self.repair = None;
            bump(&self.ctx.stats.repaired_frames, done.recovered);
            total += done.frames.len();
            for frame in done.frames {
                self.dispatch(frame);
            }
            for frame in done.held {
                // A later announcement in what was held starts the next repair, which
                // holds the rest again.
                self.accept(frame);
            }
        }
    }

    /// Stores `frame`, then offers it to the shard's sessions.
    fn dispatch(&mut self, frame: Outbound) {
        // Stored first: a replaying session reads it from the store, a live one gets it
        // below (docs/decisions/resume-rules.md, replay handoff). Seqnos come from one
        // allocator in push order, so a push is never refused (`OutOfOrder`, counted by the
        // store) unless the tailer breaks that invariant; such a frame is still delivered
        // live.
        if self.keep {
            let _ = self.store.push(frame.clone());
        }
        if let Outbound::Rpc(f) = &frame {
            let closed = self.ctx.rpc.borrow_mut().dispatch(f, &self.rpc_limits);
            bump(&self.ctx.stats.slow_disconnects, closed);
        } else {
            self.sessions.dispatch(&frame, &self.ctx.stats);
        }
        self.ctx.dispatched.set(frame.server_seqno());
    }
}

/// Publishes the store's bounds for `/v1/status` and `/metrics` (gauges, this shard only).
fn publish_store(stats: &ShardStats, store: &ResumeStore) {
    let set = |a: &std::sync::atomic::AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
    let empty = store.oldest_seqno() > store.head();
    set(
        &stats.resume_oldest_seqno,
        if empty { 0 } else { store.oldest_seqno() },
    );
    set(
        &stats.resume_newest_seqno,
        if empty { 0 } else { store.head() },
    );
    set(&stats.resume_frames, store.len() as u64);
    set(&stats.resume_bytes, store.bytes() as u64);
}
