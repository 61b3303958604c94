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
//! 4. per transition: its `Lifecycle` frame, then the copies it releases, then a `TPS`
//!    frame if a block was finalized;
//! 5. at BLOCK_END: `ContentionData`, then `TopAccesses`;
//! 6. a `Gap` frame for every block the gate had to push out.
//!
//! Holding in step 3 comes before the transitions of step 4 so that the event which rejects
//! a block (BLOCK_REJECT) is discarded with it, and an event is never released before it
//! was emitted live.
//!
//! Never: block, or emit a frame out of seqno order.

use std::sync::Arc;

use crate::chain::contention::{ContentionConfig, ContentionTracker};
use crate::chain::gate::{GateConfig, GateOutput, StageGate};
use crate::chain::input::ChainInput;
use crate::chain::meta::{self, Gap};
use crate::chain::topk::{TopAccesses, TopAccessesConfig};
use crate::chain::tps::{TpsWindow, DEFAULT_TPS_WINDOW_NS};
use crate::chain::tracker::{LifecycleConfig, LifecycleTracker, Transition};
use crate::frame::{EncodedEvent, Outbound};
use crate::seqno::ServerSeqno;

/// Every knob of the chain stage, with the defaults of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainConfig {
    pub lifecycle: LifecycleConfig,
    pub gate: GateConfig,
    /// TPS window of block time (default 10 s).
    pub tps_window_ns: u64,
    pub contention: ContentionConfig,
    pub top_accesses: TopAccessesConfig,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            lifecycle: LifecycleConfig::default(),
            gate: GateConfig::default(),
            tps_window_ns: DEFAULT_TPS_WINDOW_NS,
            contention: ContentionConfig::default(),
            top_accesses: TopAccessesConfig::default(),
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
            last_ns: 0,
        }
    }

    /// Processes one ring event: `input` is its chain fact (if any), `event` its encoded
    /// live original (its `server_seqno` is assigned here). Every frame produced, the event
    /// first, goes to `emit` in seqno order.
    pub fn process(
        &mut self,
        input: Option<&ChainInput>,
        mut event: EncodedEvent,
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
            contention = self.contention.observe(input);
            top = self.top.observe(input);
        }
        event.server_seqno = seqnos.allocate();
        let event = Arc::new(event);
        emit(Outbound::Event(Arc::clone(&event)));
        self.gate.hold(&event, seqnos, &mut self.gate_out);
        self.flush_released(emit);
        for i in 0..self.transitions.len() {
            let t = &self.transitions[i];
            emit(Outbound::Meta(Arc::new(meta::lifecycle_frame(
                seqnos.allocate(),
                t,
            ))));
            self.gate.on_transition(t, seqnos, &mut self.gate_out);
            for e in self.gate_out.released.drain(..) {
                emit(Outbound::Event(e));
            }
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
            emit(Outbound::Meta(Arc::new(meta::gap_frame(
                seqnos.allocate(),
                &Gap::from(&o),
            ))));
        }
    }

    /// Upstream data loss (ring lap, expired payload) cut the block opened at
    /// `block_seqno` short: the gate drops its held originals so that no gated stream gets a
    /// partial block. Returns what the tailer announces in its `Gap` frame.
    pub fn drop_partial(&mut self, block_seqno: u64) -> Option<crate::chain::gate::Overflow> {
        self.gate.drop_partial(block_seqno)
    }

    /// The writer restarted: every held block is dropped (block seqnos start over).
    pub fn drop_all_held(&mut self) -> Vec<crate::chain::gate::Overflow> {
        self.gate.drop_all()
    }

    /// Released copies are stamped by the gate in order; emit them as they are.
    fn flush_released(&mut self, emit: &mut impl FnMut(Outbound)) {
        for e in self.gate_out.released.drain(..) {
            emit(Outbound::Event(e));
        }
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
