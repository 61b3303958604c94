//! `min_stage` as buffer-then-release (docs/invariants.md#trust-4): the events of a block
//! are held until the block (by id, fork-aware) reaches a gated stage, then released for that
//! stage's stream as new copies, in original order, tagged with the stage.
//!
//! Runs on the tailer core, between encoding (the live `Proposed` original already has its
//! `server_seqno`) and the push to the shards. Inputs: the encoded originals
//! ([`StageGate::hold`]), the block openings ([`StageGate::open`]) and the tracker's
//! [`Transition`]s ([`StageGate::on_transition`]). Outputs: released copies, each with a
//! fresh `server_seqno`, and [`Overflow`] records the tailer must announce as `Gap` frames.
//!
//! Chunked release: a transition only *queues* a release (block, stage); the copies are made
//! by [`StageGate::release`], at most `budget` per call, which the tailer calls between ring
//! reads (and until the queue is empty when the ring is idle). Copying a whole block at once
//! kept live events waiting 5–13 ms behind it (docs/benchmarks.md, "Latency and ingest
//! investigation"). The queue is one FIFO over all blocks and stages: a gated stream gets a
//! block's copies in original order, all of block N's before block N+1's, and a stage reached
//! later (Verified after Finalized) queues behind the earlier one.
//!
//! Invariants:
//! - a copy for gate S is made only when the block reached S (or beyond) and only for the
//!   gates enabled in [`GateConfig`]; copies of one gate come out in original ring order;
//! - a copy is made only of a held original, which was emitted live before it was held;
//! - a rejected or abandoned block is discarded: nothing of it is ever released above
//!   `Proposed`, and a release still queued or half done for it stops (its `Lifecycle` frame
//!   tells `Voted` clients that the prefix they got is void);
//! - a block dropped by the bounds, [`StageGate::drop_partial`],
//!   [`StageGate::drop_unresolved`] or [`StageGate::drop_all`] leaves the release queue with
//!   it: nothing of it is copied afterwards;
//! - memory is bounded by [`GateConfig::max_blocks`] and [`GateConfig::max_bytes`]; a block
//!   pushed out by the bounds is reported as an [`Overflow`], never dropped silently;
//! - consensus events (block seqno 0: BLOCK_QC, BLOCK_FINALIZED, BLOCK_VERIFIED) are not
//!   held: they are facts about blocks, delivered once on the live stream.
//!
//! Memory/CPU trade-off: every enabled gate costs one copy of every in-block event made at
//! release time: a new [`EncodedEvent`] header (a seqno and its stage) on the original's
//! shared body (keys and JSON; nothing copied), the stage spliced in when a session writes
//! it. Holding costs one reference to the body per enabled gate, taken in
//! [`StageGate::hold`] while the event is still in the tailer's cache; a release moves that
//! reference into its copy instead of touching the long-cold event again (that was two
//! cache misses per copy, ~8 % of the tailer's time on the real snapshot). A gate's
//! references are held until its release (about four blocks for `Verified`). A deployment
//! whose clients never use `min_stage` disables all three gates and pays nothing; one that
//! only uses `Finalized` enables just that one.
//!
//! Never: re-encode or copy an event's bytes (copies share them), block, or release a block
//! twice per gate.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::config::defaults;
use crate::ingest::chain::input::BlockId;
use crate::ingest::chain::tracker::Transition;
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::{EncodedEvent, EventBody};
use crate::model::seqno::ServerSeqno;
use crate::model::stage::CommitStage;

/// The stages that have their own released stream, in release order.
pub const GATED_STAGES: [CommitStage; 3] = [
    CommitStage::Voted,
    CommitStage::Finalized,
    CommitStage::Verified,
];

/// Which gates exist and how much they may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// `[Voted, Finalized, Verified]`: whether copies are made for that stage's stream.
    /// Default: all three. Disable the ones no client may ask for to save a copy per event.
    pub enabled: [bool; 3],
    /// Blocks held at once. Default 64: a block waits about 2 blocks for `Finalized` and
    /// about 4 for `Verified`, so 64 only overflows when consensus stalls for ~25 s at
    /// 400 ms blocks.
    pub max_blocks: usize,
    /// JSON bytes of held originals. Default 256 MiB, about 100 mainnet-sized blocks.
    pub max_bytes: usize,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            enabled: defaults::GATES,
            max_blocks: 64,
            max_bytes: 256 << 20,
        }
    }
}

impl GateConfig {
    /// Whether any gate is enabled (otherwise nothing is ever held).
    pub fn any(&self) -> bool {
        self.enabled.iter().any(|e| *e)
    }
}

/// A held block pushed out by the bounds before its release: gated streams will never see
/// it. The tailer announces it as a `Gap` frame (`reason: "stage_gate_overflow"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    pub block_number: u64,
    pub block_id: BlockId,
    /// Events that were held and are now dropped for the gated streams.
    pub events: u64,
    /// `server_seqno` of the first and last dropped original (live `Proposed` copies, which
    /// remain in the resume store); 0 when no event was held yet. When the block was still
    /// executing, its later events are dropped for the gated streams too (counted in
    /// [`GateStats::unknown_block_events`]): the gap is the whole block.
    pub from_seqno: u64,
    pub to_seqno: u64,
}

/// What [`StageGate::hold`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Kept until its block's last enabled gate has released it. A late event of a block
    /// that already reached some gates is queued for release at those gates (behind what is
    /// already queued), never copied ahead of earlier copies.
    Held,
    /// Not in a block (consensus event, block seqno 0): never gated.
    NotInBlock,
    /// No gate is enabled.
    Disabled,
    /// Its block was never opened here (we attached mid-block): counted, not gated.
    UnknownBlock,
    /// Its block was already pushed out by the bounds (announced then): counted, dropped.
    Discarded,
}

/// Reusable output buffer of the gate; the caller drains it after each call.
#[derive(Debug, Default)]
pub struct GateOutput {
    /// Blocks pushed out by the bounds, to announce.
    pub overflows: Vec<Overflow>,
}

impl GateOutput {
    /// Empties the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.overflows.clear();
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    pub held_events: u64,
    pub released_copies: u64,
    /// Events of rejected or abandoned blocks dropped for the gated streams (by design).
    pub discarded_events: u64,
    pub overflow_blocks: u64,
    pub overflow_events: u64,
    /// Held blocks dropped because a finalization could not place them
    /// ([`StageGate::drop_unresolved`]), each announced.
    pub unresolved_blocks: u64,
    /// In-block events whose block was never opened (mid-stream start) or already evicted.
    pub unknown_block_events: u64,
}

#[derive(Debug)]
struct HeldBlock {
    id: BlockId,
    number: u64,
    /// Per gate, the held bodies in original order, one reference each (empty for a
    /// disabled gate, so every enabled gate's has the same length: [`HeldBlock::events`]);
    /// the gate's release takes the first `copied[gate]` of them.
    due: [Vec<Option<Arc<EventBody>>>; 3],
    /// `server_seqno` of the first and last held original (what a loss names).
    first_seqno: u64,
    last_seqno: u64,
    bytes: usize,
    /// Per gate: the block reached that stage, so every held event is due there.
    reached: [bool; 3],
    /// Per gate: how many of `events` were copied for it (a prefix, in order).
    copied: [usize; 3],
    /// Per gate: a [`PendingRelease`] for it is in the queue.
    queued: [bool; 3],
    /// Pushed out by the byte bound while still open: later events are dropped too.
    evicted: bool,
}

impl HeldBlock {
    /// Events held (none once pushed out by the bounds).
    fn events(&self) -> usize {
        self.due.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Every enabled gate was reached and has copied every held event.
    fn done(&self, enabled: [bool; 3]) -> bool {
        (0..3).all(|i| !enabled[i] || (self.reached[i] && self.copied[i] >= self.events()))
    }

    /// What dropping this block's held events loses for the gated streams.
    fn loss(&self) -> Overflow {
        Overflow {
            block_number: self.number,
            block_id: self.id,
            events: self.events() as u64,
            from_seqno: self.first_seqno,
            to_seqno: self.last_seqno,
        }
    }
}

/// A queued release: the held events of the block opened at `block_seqno` not yet copied
/// for gate `gate` (an index into [`GATED_STAGES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingRelease {
    block_seqno: u64,
    gate: usize,
}

/// Holds the events of unreleased blocks and releases them per stage.
#[derive(Debug)]
pub struct StageGate {
    config: GateConfig,
    /// By BLOCK_START seqno, which orders blocks by age.
    blocks: BTreeMap<u64, HeldBlock>,
    by_id: HashMap<BlockId, u64>,
    /// Releases to make, oldest first; the front one may be half done.
    queue: VecDeque<PendingRelease>,
    bytes: usize,
    stats: GateStats,
}

impl StageGate {
    /// An empty gate.
    pub fn new(config: GateConfig) -> StageGate {
        StageGate {
            config,
            blocks: BTreeMap::new(),
            by_id: HashMap::new(),
            queue: VecDeque::new(),
            bytes: 0,
            stats: GateStats::default(),
        }
    }

    /// Starts holding block `id` (BLOCK_START at ring seqno `block_seqno`). Call before
    /// [`hold`](Self::hold) of the BLOCK_START event itself. May push out the oldest held
    /// block (reported in `out.overflows`).
    pub fn open(&mut self, block_seqno: u64, id: BlockId, number: u64, out: &mut GateOutput) {
        if !self.config.any() || block_seqno == 0 {
            return;
        }
        // The same id executed again replaces the earlier copy (identical content).
        if let Some(&old) = self.by_id.get(&id) {
            if let Some(b) = self.remove(old) {
                self.stats.discarded_events += b.events() as u64;
            }
        }
        while self.blocks.len() >= self.config.max_blocks.max(1) {
            let Some(&oldest) = self.blocks.keys().next() else {
                break;
            };
            let Some(victim) = self.remove(oldest) else {
                break;
            };
            if !victim.evicted {
                self.report_overflow(&victim, out);
            }
        }
        self.blocks.insert(
            block_seqno,
            HeldBlock {
                id,
                number,
                due: Default::default(),
                first_seqno: 0,
                last_seqno: 0,
                bytes: 0,
                reached: [false; 3],
                copied: [0; 3],
                queued: [false; 3],
                evicted: false,
            },
        );
        self.by_id.insert(id, block_seqno);
    }

    /// Takes the live original of an event (already stamped and pushed as the `Proposed`
    /// stream) and holds its body for the gated streams, one reference per enabled gate;
    /// see [`HoldOutcome`].
    pub fn hold(&mut self, event: &EncodedEvent, out: &mut GateOutput) -> HoldOutcome {
        if !self.config.any() {
            return HoldOutcome::Disabled;
        }
        let block_seqno = event.keys.block_seqno;
        if block_seqno == 0 {
            return HoldOutcome::NotInBlock;
        }
        let enabled = self.config.enabled;
        let Some(block) = self.blocks.get_mut(&block_seqno) else {
            self.stats.unknown_block_events += 1;
            return HoldOutcome::UnknownBlock;
        };
        if block.evicted {
            self.stats.unknown_block_events += 1;
            return HoldOutcome::Discarded;
        }
        if block.events() == 0 {
            block.first_seqno = event.server_seqno;
        }
        block.last_seqno = event.server_seqno;
        for (due, on) in block.due.iter_mut().zip(enabled) {
            if on {
                due.push(Some(Arc::clone(&event.body)));
            }
        }
        block.bytes += event.json.len();
        // Late event of a block that already reached some gates (not seen with the current
        // writer, whose consensus events follow BLOCK_END): due there too, after the copies
        // already queued.
        for (gate, queued) in block.queued.iter_mut().enumerate() {
            if enabled[gate] && block.reached[gate] && !*queued {
                *queued = true;
                self.queue.push_back(PendingRelease { block_seqno, gate });
            }
        }
        self.bytes += event.json.len();
        self.stats.held_events += 1;
        self.enforce_bytes(out);
        HoldOutcome::Held
    }

    /// Applies a lifecycle transition: queues a release for every enabled gate the block has
    /// now reached (lowest gate first; the copies are made by [`release`](Self::release)),
    /// or discards the block, and any release of it still queued, when it was rejected or
    /// abandoned.
    pub fn on_transition(&mut self, t: &Transition) {
        let Some(&block_seqno) = self.by_id.get(&t.block_id) else {
            return;
        };
        match t.to_stage {
            CommitStage::Proposed => {}
            CommitStage::Rejected | CommitStage::Abandoned => {
                if let Some(b) = self.remove(block_seqno) {
                    self.stats.discarded_events += b.events() as u64;
                }
            }
            CommitStage::Voted | CommitStage::Finalized | CommitStage::Verified => {
                let enabled = self.config.enabled;
                let Some(block) = self.blocks.get_mut(&block_seqno) else {
                    return;
                };
                for (i, stage) in GATED_STAGES.iter().enumerate() {
                    if enabled[i] && !block.reached[i] && t.to_stage.satisfies(*stage) {
                        block.reached[i] = true;
                        // A pushed-out block has no events left (its loss was announced).
                        if block.copied[i] < block.events() {
                            block.queued[i] = true;
                            self.queue.push_back(PendingRelease {
                                block_seqno,
                                gate: i,
                            });
                        }
                    }
                }
                if block.done(enabled) {
                    self.remove(block_seqno);
                }
            }
        }
    }

    /// Makes at most `budget` queued copies, oldest release first, each with the next seqno
    /// from `seqnos`, handing them to `emit` in that order. Returns how many it made. A block
    /// whose last enabled gate has released everything is freed here.
    pub fn release(
        &mut self,
        budget: usize,
        seqnos: &mut ServerSeqno,
        emit: &mut impl FnMut(EncodedEvent),
    ) -> usize {
        let enabled = self.config.enabled;
        let mut made = 0;
        while made < budget {
            let Some(&PendingRelease { block_seqno, gate }) = self.queue.front() else {
                break;
            };
            let Some(block) = self.blocks.get_mut(&block_seqno) else {
                // Removed blocks leave the queue with them; a stale entry is only skipped.
                self.queue.pop_front();
                continue;
            };
            let stage = GATED_STAGES[gate];
            let from = block.copied[gate];
            let to = block.events().min(from.saturating_add(budget - made));
            for body in block.due[gate]
                .get_mut(from..to)
                .unwrap_or_default()
                .iter_mut()
                .filter_map(Option::take)
            {
                emit(EncodedEvent {
                    server_seqno: seqnos.allocate(),
                    gate: stage,
                    body,
                });
            }
            let n = to.saturating_sub(from);
            block.copied[gate] = from + n;
            made += n;
            self.stats.released_copies += n as u64;
            if block.copied[gate] >= block.events() {
                block.queued[gate] = false;
                self.queue.pop_front();
                if block.done(enabled) {
                    self.remove(block_seqno);
                }
            }
        }
        made
    }

    /// Whether a release is queued (the tailer keeps calling [`release`](Self::release)
    /// until it is not, before it sleeps).
    pub fn has_pending_releases(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Drops the block opened at `block_seqno` because upstream data loss cut it short: its
    /// held originals are incomplete, so no gated stream may receive them. Returns the loss
    /// to announce (`None` when the block is not held).
    pub fn drop_partial(&mut self, block_seqno: u64) -> Option<Overflow> {
        let b = self.remove(block_seqno)?;
        self.stats.discarded_events += b.events() as u64;
        Some(b.loss())
    }

    /// Drops block `id` because the tracker could not place it below a finalized height
    /// (see [`crate::ingest::chain::tracker`]): no gate will ever be reached, and it may have
    /// been canonical, so the caller announces the loss. `None` when it is not held, or was
    /// pushed out already (that loss was announced then).
    pub fn drop_unresolved(&mut self, id: &BlockId) -> Option<Overflow> {
        let block_seqno = *self.by_id.get(id)?;
        let b = self.remove(block_seqno)?;
        self.stats.discarded_events += b.events() as u64;
        if b.evicted {
            return None;
        }
        self.stats.unresolved_blocks += 1;
        Some(b.loss())
    }

    /// Drops every held block (the writer restarted: block seqnos start over, so held blocks
    /// can no longer be matched). Returns one loss per block, oldest first.
    pub fn drop_all(&mut self) -> Vec<Overflow> {
        let blocks = std::mem::take(&mut self.blocks);
        self.by_id.clear();
        self.queue.clear();
        self.bytes = 0;
        blocks
            .into_values()
            .map(|b| {
                self.stats.discarded_events += b.events() as u64;
                b.loss()
            })
            .collect()
    }

    /// Removes a block and any release of it still queued.
    fn remove(&mut self, block_seqno: u64) -> Option<HeldBlock> {
        let b = self.blocks.remove(&block_seqno)?;
        if self.by_id.get(&b.id) == Some(&block_seqno) {
            self.by_id.remove(&b.id);
        }
        self.bytes -= b.bytes;
        if b.queued.iter().any(|q| *q) {
            self.queue.retain(|p| p.block_seqno != block_seqno);
        }
        Some(b)
    }

    /// Pushes out the oldest blocks still holding events until the held bytes fit; each
    /// stays as an empty marker (its later events are dropped) and leaves the release queue.
    fn enforce_bytes(&mut self, out: &mut GateOutput) {
        while self.bytes > self.config.max_bytes {
            let Some((&block_seqno, victim)) = self
                .blocks
                .iter_mut()
                .find(|(_, b)| !b.evicted && b.events() > 0)
            else {
                break;
            };
            let loss = victim.loss();
            victim.evicted = true;
            victim.copied = [0; 3];
            victim.due = Default::default();
            let bytes = std::mem::replace(&mut victim.bytes, 0);
            let queued = std::mem::take(&mut victim.queued);
            self.bytes -= bytes;
            if queued.iter().any(|q| *q) {
                self.queue.retain(|p| p.block_seqno != block_seqno);
            }
            self.announce(loss, out);
        }
    }

    fn report_overflow(&mut self, b: &HeldBlock, out: &mut GateOutput) {
        self.announce(b.loss(), out);
    }

    fn announce(&mut self, loss: Overflow, out: &mut GateOutput) {
        self.stats.overflow_blocks += 1;
        self.stats.overflow_events += loss.events;
        out.overflows.push(loss);
    }

    /// Blocks currently held (including pushed-out ones kept as markers).
    pub fn held_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// JSON bytes of held originals.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Counters since start.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// The configuration in force.
    pub fn config(&self) -> GateConfig {
        self.config
    }
}

/// The `Gap` announcing an overflow: gated streams will not get the block.
impl From<&Overflow> for Gap {
    fn from(o: &Overflow) -> Gap {
        Gap {
            reason: GapReason::StageGateOverflow,
            from_seqno: (o.events > 0).then_some(o.from_seqno),
            to_seqno: (o.events > 0).then_some(o.to_seqno),
            ring_from_seqno: None,
            ring_to_seqno: None,
            block_number: Some(o.block_number),
            block_id: Some(o.block_id),
        }
    }
}
