//! The chain stage of the tailer, assembled: one call per ring event runs the tracker, the
//! stage gate and the analytics in the right order and emits every resulting frame with
//! its `server_seqno`.
//!
//! Runs on the tailer core, after decoding and encoding. Inputs: the event's chain fact
//! (if it has one), its encoded live original, the seqno allocator. Output: frames handed
//! to `emit` in push order (the tailer stores them and fans them out).
//!
//! Order per event (each frame gets the next seqno when emitted):
//! 1. BLOCK_START opens the block in the gate (before the event is held);
//! 2. the tracker and analytics observe the fact;
//! 3. the live original (`gate: Proposed`) is emitted, then held by the gate;
//! 4. per transition: its `Lifecycle` frame, then a `TPS` frame if a block was finalized;
//!    a transition to a gated stage only queues the release of the block's copies;
//! 5. at BLOCK_END: `ContentionData`, then `TopAccesses`;
//! 6. a `Gap` frame for every block the gate had to push out (`stage_gate_overflow`), then
//!    one for every held block a finalization could not place (`unresolved_block`).
//!
//! The copies come from [`ChainPipeline::drain_releases`], at most `budget` per call, which
//! the tailer calls between ring events and, when the ring is idle, until
//! [`ChainPipeline::has_pending_releases`] is false: a block's copies therefore follow its
//! `Lifecycle` frame (and may follow later live events), in original order per gated stream,
//! and block N's before block N+1's at each stage. Copying a block in one go made live
//! events wait 5–13 ms behind it.
//!
//! Holding in step 3 comes before the transitions of step 4 so that the event which rejects
//! a block (BLOCK_REJECT) is discarded with it, and an event is never released before it
//! was emitted live. A block rejected, abandoned or dropped while its release is queued or
//! half done releases nothing more.
//!
//! Never: block, or emit a frame out of seqno order.

use std::sync::Arc;

use crate::ingest::chain::contention::{ContentionConfig, ContentionTracker};
use crate::ingest::chain::gate::{GateConfig, GateOutput, Overflow, StageGate};
use crate::ingest::chain::input::ChainInput;
use crate::ingest::chain::meta;
use crate::ingest::chain::topk::{TopAccesses, TopAccessesConfig};
use crate::ingest::chain::tps::{TpsWindow, DEFAULT_TPS_WINDOW_NS};
use crate::ingest::chain::tracker::{LifecycleConfig, LifecycleTracker, Transition};
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::{EncodedEvent, EventBody, Outbound};
use crate::model::seqno::ServerSeqno;
use crate::wire::protocol::messages::gap_frame;

/// Every knob of the chain stage, with the defaults of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainConfig {
    pub lifecycle: LifecycleConfig,
    pub gate: GateConfig,
    /// TPS window of block time (default 10 s).
    pub tps_window_ns: u64,
    pub contention: ContentionConfig,
    pub top_accesses: TopAccessesConfig,
    /// Most `min_stage` copies the tailer makes between two ring reads (default
    /// [`DEFAULT_RELEASE_BUDGET`]). Smaller keeps live events waiting less behind a release;
    /// it must stay above 3 (copies one event can add, one per gate) so that releases keep
    /// up with a ring that is never idle. 0 is read as 1.
    pub release_budget: usize,
}

/// Default [`ChainConfig::release_budget`]: 64 copies, about 50 µs of tailer work on the
/// dev box (a mainnet-sized block at one gate is a few thousand copies).
pub const DEFAULT_RELEASE_BUDGET: usize = 64;

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            lifecycle: LifecycleConfig::default(),
            gate: GateConfig::default(),
            tps_window_ns: DEFAULT_TPS_WINDOW_NS,
            contention: ContentionConfig::default(),
            top_accesses: TopAccessesConfig::default(),
            release_budget: DEFAULT_RELEASE_BUDGET,
        }
    }
}

/// Tracker, gate and analytics of one tailer.
#[derive(Debug)]
pub struct ChainPipeline {
    tracker: LifecycleTracker,
    gate: StageGate,
    tps: TpsWindow,
    contention: ContentionTracker,
    top: TopAccesses,
    transitions: Vec<Transition>,
    gate_out: GateOutput,
    /// Held blocks the tracker could not place below a finalized height, to announce.
    unresolved: Vec<Overflow>,
    release_budget: usize,
    last_ns: u64,
}

impl ChainPipeline {
    /// A pipeline with nothing tracked.
    pub fn new(config: ChainConfig) -> ChainPipeline {
        ChainPipeline {
            tracker: LifecycleTracker::new(config.lifecycle),
            gate: StageGate::new(config.gate),
            tps: TpsWindow::new(config.tps_window_ns),
            contention: ContentionTracker::new(config.contention),
            top: TopAccesses::new(config.top_accesses),
            transitions: Vec::new(),
            gate_out: GateOutput::default(),
            unresolved: Vec::new(),
            release_budget: config.release_budget.max(1),
            last_ns: 0,
        }
    }

    /// Processes one ring event: `input` is its chain fact (if any), `event` the body of its
    /// encoded live original (its `server_seqno`, the body's `origin_seqno`, is assigned here). Every frame produced, the event
    /// first, goes to `emit` in seqno order.
    pub fn process(
        &mut self,
        input: Option<&ChainInput>,
        mut event: EventBody,
        seqnos: &mut ServerSeqno,
        emit: &mut impl FnMut(Outbound),
    ) {
        self.transitions.clear();
        self.gate_out.clear();
        let mut contention = None;
        let mut top = None;
        if let Some(input) = input {
            self.last_ns = self.last_ns.max(input.timestamp_ns());
            if let ChainInput::BlockStart {
                block_seqno,
                id,
                number,
                ..
            } = *input
            {
                self.gate.open(block_seqno, id, number, &mut self.gate_out);
            }
            self.tracker.observe(input, &mut self.transitions);
            for (id, _) in self.tracker.take_unresolved() {
                self.unresolved.extend(self.gate.drop_unresolved(&id));
            }
            contention = self.contention.observe(input);
            top = self.top.observe(input);
        }
        event.origin_seqno = seqnos.allocate();
        let event = EncodedEvent::original(event);
        self.gate.hold(&event, &mut self.gate_out);
        emit(Outbound::Event(event));
        for i in 0..self.transitions.len() {
            let t = &self.transitions[i];
            emit(Outbound::Meta(Arc::new(meta::lifecycle_frame(
                seqnos.allocate(),
                t,
            ))));
            self.gate.on_transition(t);
            if self.tps.on_transition(t) {
                let tps = self.tps.tps();
                emit(Outbound::Meta(Arc::new(meta::tps_frame(
                    seqnos.allocate(),
                    tps,
                ))));
            }
        }
        if let Some(r) = contention {
            emit(Outbound::Meta(Arc::new(meta::contention_frame(
                seqnos.allocate(),
                &r,
            ))));
        }
        if let Some(r) = top {
            emit(Outbound::Meta(Arc::new(meta::top_accesses_frame(
                seqnos.allocate(),
                &r,
            ))));
        }
        for o in std::mem::take(&mut self.gate_out.overflows) {
            emit(Outbound::Meta(Arc::new(gap_frame(
                seqnos.allocate(),
                &Gap::from(&o),
            ))));
        }
        for o in self.unresolved.drain(..) {
            let gap = Gap {
                reason: GapReason::UnresolvedBlock,
                ..Gap::from(&o)
            };
            emit(Outbound::Meta(Arc::new(gap_frame(seqnos.allocate(), &gap))));
        }
    }

    /// The lifecycle transitions the last [`process`](Self::process) call made (the
    /// JSON-RPC frames of `crate::ingest::rpc` follow them).
    pub fn last_transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// Makes at most `budget` (at least 1) of the queued `min_stage` copies, oldest release
    /// first, stamping each with the next seqno and handing it to `emit`. Returns how many it
    /// made (0 when nothing is queued).
    pub fn drain_releases(
        &mut self,
        budget: usize,
        seqnos: &mut ServerSeqno,
        emit: &mut impl FnMut(Outbound),
    ) -> usize {
        self.gate
            .release(budget.max(1), seqnos, &mut |e| emit(Outbound::Event(e)))
    }

    /// Whether `min_stage` copies are queued (see [`drain_releases`](Self::drain_releases)).
    pub fn has_pending_releases(&self) -> bool {
        self.gate.has_pending_releases()
    }

    /// The configured [`ChainConfig::release_budget`] (at least 1).
    pub fn release_budget(&self) -> usize {
        self.release_budget
    }

    /// Upstream data loss (ring lap, expired payload) cut the block opened at
    /// `block_seqno` short: the gate drops its held originals (and any queued release of
    /// them) so that no gated stream gets a partial block. Returns what the tailer announces
    /// in its `Gap` frame.
    pub fn drop_partial(&mut self, block_seqno: u64) -> Option<Overflow> {
        self.gate.drop_partial(block_seqno)
    }

    /// The writer restarted: every held block is dropped (block seqnos start over), and
    /// every queued release with it.
    pub fn drop_all_held(&mut self) -> Vec<Overflow> {
        self.gate.drop_all()
    }

    /// The writer restarted (a new ring, block seqnos from 1): drops every held block (see
    /// [`drop_all_held`](Self::drop_all_held)) and makes the tracker forget the old ring's
    /// block seqnos ([`LifecycleTracker::forget_ring`]), so nothing of the new ring is
    /// matched against the old one. Returns the dropped blocks, oldest first.
    pub fn on_writer_restart(&mut self) -> Vec<Overflow> {
        self.tracker.forget_ring();
        self.gate.drop_all()
    }

    /// Lifecycle state, for REST and connect-time snapshots.
    pub fn tracker(&self) -> &LifecycleTracker {
        &self.tracker
    }

    /// The stage gate (counters, held size).
    pub fn gate(&self) -> &StageGate {
        &self.gate
    }

    /// TPS figures.
    pub fn tps(&self) -> &TpsWindow {
        &self.tps
    }

    /// Latest contention report.
    pub fn contention(&self) -> &ContentionTracker {
        &self.contention
    }

    /// Top accesses.
    pub fn top_accesses(&self) -> &TopAccesses {
        &self.top
    }

    /// The latest ring time seen in a chain fact (the `now` of REST summaries).
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }
}
