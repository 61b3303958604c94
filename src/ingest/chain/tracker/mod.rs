//! Block lifecycle by consensus block id, fork-aware: which stage every tracked proposal is
//! in, and the [`Transition`]s that become `Lifecycle` frames and drive the stage gate.
//!
//! Runs on the tailer core, once per [`ChainInput`]; O(1) per input except finalization and
//! verification, which touch the tracked proposals at and below that height that are not
//! final yet (normally none or one per height: everything below the previous finalization
//! was decided then).
//!
//! State machine (per block id):
//! - BLOCK_START creates the entry at `Proposed`;
//! - BLOCK_QC → `Voted`, BLOCK_FINALIZED → `Finalized`, BLOCK_VERIFIED (by number) →
//!   `Verified`, applied to the id that was finalized at that number, never to a sibling;
//! - BLOCK_REJECT or block-scope EVM_ERROR (found by block seqno) → `Rejected`;
//! - a different id finalized at the same height → every other tracked proposal at that
//!   number becomes `Abandoned` at that moment (so abandoned forks never leak);
//! - below the finalized number, the finalization decides every proposal it can
//!   (docs/decisions/implied-finality.md): the finalized block's ancestors, found by
//!   following `parent_eth_hash` (BLOCK_START) to `eth_block_hash` (BLOCK_END) one height at a
//!   time, are `Finalized` by implication; every other proposal at a height where the
//!   ancestor is known, or whose own hash proves it is not the ancestor, is `Abandoned`; a
//!   proposal the chain of hashes cannot place (data loss cut the link) is *unresolved*:
//!   dropped without a transition, counted, and reported by [`LifecycleTracker::take_unresolved`]
//!   so the gate can announce what the gated streams will not get;
//! - BLOCK_VERIFIED at a number verifies every finalized block below it as well (they are
//!   its ancestors);
//! - transitions only move forward on `Proposed < Voted < Finalized < Verified` (skips
//!   allowed); `Rejected`/`Abandoned` only from `Proposed` or `Voted` (a finalized block is
//!   final). `Verified`, `Rejected` and `Abandoned` are terminal: the entry moves to the
//!   bounded completed list.
//!
//! Unknown ids (a consensus event for a block whose BLOCK_START came before we attached)
//! are ignored and counted. Memory is bounded: at most `completed_cap` completed and
//! `active_cap` active entries; an active entry evicted by the cap is counted.
//!
//! Parts: `finality` (what a finalization or verification decides below its height).
//!
//! Never: emit a transition backwards, or apply a number-keyed event to a non-canonical id.
//!
//! Parts: `finality.rs` (what a finalization or verification decides below its height) and
//! `summary.rs` (the REST view: summaries, one block by number, the connect-time snapshot).

use std::collections::{BTreeMap, HashMap, VecDeque};

mod finality;
mod summary;

pub use summary::BlockLifecycleSummary;

use crate::ingest::chain::input::{BlockId, ChainInput};
use crate::model::stage::CommitStage;

/// Bounds of the tracker. Defaults: 128 completed, 1,024 active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// Terminal blocks kept for REST (`/v1/blocks/lifecycle`). 128 matches the old gateway;
    /// each costs about 200 bytes.
    pub completed_cap: usize,
    /// Non-terminal blocks tracked at once. Normal operation has a handful (a block is
    /// verified about 4 blocks after its proposal); the cap only bounds a pathological
    /// stream (consensus events missing). Evicting the lowest-numbered entry is counted.
    pub active_cap: usize,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            completed_cap: 128,
            active_cap: 1024,
        }
    }
}

/// One stage change of one proposal: the body of a `Lifecycle` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub block_id: BlockId,
    pub block_number: u64,
    /// `None` only for the creating `Proposed` transition.
    pub from_stage: Option<CommitStage>,
    pub to_stage: CommitStage,
    /// Time spent in `from_stage`, present whenever there is one.
    pub time_in_previous_stage_ms: Option<f64>,
    /// Ring time since the BLOCK_START of this proposal (execution-to-consensus time on
    /// this node, not network propagation).
    pub block_age_ms: f64,
    pub txn_count: u64,
    /// Known once BLOCK_END was seen.
    pub gas_used: Option<u64>,
    /// The block's chain time (BLOCK_START `block_time_ns`), for TPS; not on the wire.
    pub block_time_ns: u64,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    /// Consensus or block events naming an id/seqno/number we do not track.
    pub ignored_unknown: u64,
    /// BLOCK_START for an id already active in the same ring; the first entry is kept. (After
    /// a writer restart, a block executed again is tracked anew: see
    /// [`LifecycleTracker::forget_ring`].)
    pub duplicate_starts: u64,
    /// Active entries dropped by `active_cap`.
    pub evicted_active: u64,
    /// Transitions refused because they would move backwards or leave a terminal stage.
    pub refused_transitions: u64,
    /// Proposals below a finalized height that no chain of hashes could place (data loss
    /// cut the link): dropped without a transition.
    pub unresolved: u64,
    /// Blocks finalized or verified by implication (an ancestor of a finalized block that
    /// had no BLOCK_FINALIZED of its own; a finalized block below a verified number).
    pub implied: u64,
}

#[derive(Debug, Clone)]
struct Record {
    id: BlockId,
    number: u64,
    block_seqno: u64,
    /// BLOCK_START's `parent_eth_hash`: links the record to its parent's `eth_block_hash`.
    parent_eth_hash: [u8; 32],
    stage: CommitStage,
    proposed_ns: u64,
    block_time_ns: u64,
    /// When the current stage was entered.
    stage_entered_ns: u64,
    /// Entry times of Voted, Finalized, Verified, Rejected, Abandoned.
    reached_ns: [Option<u64>; 5],
    txn_count: u64,
    gas_used: Option<u64>,
    eth_block_hash: Option<[u8; 32]>,
    end_ns: Option<u64>,
}

const SUMMARY_STAGES: [CommitStage; 5] = [
    CommitStage::Voted,
    CommitStage::Finalized,
    CommitStage::Verified,
    CommitStage::Rejected,
    CommitStage::Abandoned,
];

fn summary_slot(stage: CommitStage) -> Option<usize> {
    SUMMARY_STAGES.iter().position(|s| *s == stage)
}

fn is_terminal(stage: CommitStage) -> bool {
    matches!(
        stage,
        CommitStage::Verified | CommitStage::Rejected | CommitStage::Abandoned
    )
}

/// Whether `from → to` is allowed: forward on the canonical path, or to a failure stage from
/// `Proposed` or `Voted`. A finalized block is final: a conflicting finalization or a late
/// rejection of it is refused (and counted), never turned into a failure stage.
fn may_move(from: CommitStage, to: CommitStage) -> bool {
    if is_terminal(from) {
        return false;
    }
    match (from.rank(), to.rank()) {
        (Some(a), Some(b)) => b > a,
        (Some(a), None) => a < 2,
        (None, _) => false,
    }
}

fn ms_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e6
}

/// Finalized ids remembered per number, for BLOCK_VERIFIED and late proposals.
const FINALIZED_MEMORY: usize = 4096;

/// Fork-aware lifecycle state of the recent proposals.
#[derive(Debug)]
pub struct LifecycleTracker {
    config: LifecycleConfig,
    active: HashMap<BlockId, Record>,
    /// Active ids per block number, in proposal order.
    by_number: BTreeMap<u64, Vec<BlockId>>,
    /// BLOCK_START seqno → id, for active blocks started in the current ring (a record
    /// from a previous writer's ring has `block_seqno` 0).
    by_seqno: HashMap<u64, BlockId>,
    /// Number → the id finalized there (the canonical block), the last `FINALIZED_MEMORY`.
    finalized: BTreeMap<u64, BlockId>,
    highest_finalized: Option<u64>,
    completed: VecDeque<Record>,
    /// Proposals dropped as unresolved since the last [`LifecycleTracker::take_unresolved`].
    unresolved: Vec<(BlockId, u64)>,
    stats: LifecycleStats,
}

impl LifecycleTracker {
    /// An empty tracker.
    pub fn new(config: LifecycleConfig) -> LifecycleTracker {
        LifecycleTracker {
            config,
            active: HashMap::new(),
            by_number: BTreeMap::new(),
            by_seqno: HashMap::new(),
            finalized: BTreeMap::new(),
            highest_finalized: None,
            completed: VecDeque::new(),
            unresolved: Vec::new(),
            stats: LifecycleStats::default(),
        }
    }

    /// Applies one input; appends the resulting transitions to `out`, in the order they
    /// happen (for a finalization: the finalized block first, then its abandoned siblings).
    pub fn observe(&mut self, input: &ChainInput, out: &mut Vec<Transition>) {
        match *input {
            ChainInput::BlockStart {
                block_seqno,
                id,
                number,
                parent_eth_hash,
                txn_count,
                block_time_ns,
                timestamp_ns,
            } => self.start(
                (block_seqno, id, number, parent_eth_hash),
                txn_count,
                block_time_ns,
                timestamp_ns,
                out,
            ),
            ChainInput::BlockEnd {
                block_seqno,
                gas_used,
                eth_block_hash,
                timestamp_ns,
            } => match self
                .by_seqno
                .get(&block_seqno)
                .and_then(|id| self.active.get_mut(id))
            {
                Some(r) => {
                    r.gas_used = Some(gas_used);
                    r.eth_block_hash = Some(eth_block_hash);
                    r.end_ns = Some(timestamp_ns);
                }
                None => self.stats.ignored_unknown += 1,
            },
            ChainInput::BlockReject {
                block_seqno,
                timestamp_ns,
            }
            | ChainInput::BlockEvmError {
                block_seqno,
                timestamp_ns,
            } => match self.by_seqno.get(&block_seqno).copied() {
                Some(id) => self.advance(id, CommitStage::Rejected, timestamp_ns, out),
                None => self.stats.ignored_unknown += 1,
            },
            ChainInput::Qc {
                id, timestamp_ns, ..
            } => {
                if self.active.contains_key(&id) {
                    self.advance(id, CommitStage::Voted, timestamp_ns, out);
                } else {
                    self.stats.ignored_unknown += 1;
                }
            }
            ChainInput::Finalized {
                id,
                number,
                timestamp_ns,
            } => self.finalize(id, number, timestamp_ns, out),
            ChainInput::Verified {
                number,
                timestamp_ns,
            } => self.verify(number, timestamp_ns, out),
            ChainInput::TxnHeaderStart { .. }
            | ChainInput::TxnPerfEnter { .. }
            | ChainInput::TxnPerfExit { .. }
            | ChainInput::AccountAccess { .. }
            | ChainInput::StorageAccess { .. } => {}
        }
    }

    fn start(
        &mut self,
        (block_seqno, id, number, parent_eth_hash): (u64, BlockId, u64, [u8; 32]),
        txn_count: u64,
        block_time_ns: u64,
        now: u64,
        out: &mut Vec<Transition>,
    ) {
        if let Some(r) = self.active.get(&id) {
            if r.block_seqno != 0 || block_seqno == 0 {
                self.stats.duplicate_starts += 1;
                return;
            }
            // A block a previous writer started, executed again by the new one (a node
            // restart re-executes from its last verified block): track this execution, as
            // for a re-executed block no longer active (below it is final again at once).
            self.detach(&id);
        }
        let record = Record {
            id,
            number,
            block_seqno,
            parent_eth_hash,
            stage: CommitStage::Proposed,
            proposed_ns: now,
            block_time_ns,
            stage_entered_ns: now,
            reached_ns: [None; 5],
            txn_count,
            gas_used: None,
            eth_block_hash: None,
            end_ns: None,
        };
        self.active.insert(id, record);
        self.by_number.entry(number).or_default().push(id);
        if block_seqno != 0 {
            self.by_seqno.insert(block_seqno, id);
        }
        out.push(Transition {
            block_id: id,
            block_number: number,
            from_stage: None,
            to_stage: CommitStage::Proposed,
            time_in_previous_stage_ms: None,
            block_age_ms: 0.0,
            txn_count,
            gas_used: None,
            block_time_ns,
        });
        // A proposal for a height that is already final: either the canonical block being
        // executed again (it is final) or a dead fork (abandoned at once, never leaked).
        if self.highest_finalized.is_some_and(|h| number <= h) {
            match self.finalized.get(&number) {
                Some(fid) if *fid == id => {
                    self.advance(id, CommitStage::Finalized, now, out);
                }
                _ => self.advance(id, CommitStage::Abandoned, now, out),
            }
        }
        self.enforce_active_cap();
    }

    fn finalize(&mut self, id: BlockId, number: u64, now: u64, out: &mut Vec<Transition>) {
        if self.finalized.get(&number).is_some_and(|f| *f != id) {
            // A second, conflicting finalization at a height: the first one stands.
            self.stats.refused_transitions += 1;
            return;
        }
        let previous = self.highest_finalized;
        let below = self.resolve_below(id, number, previous);
        self.finalized.insert(number, id);
        self.highest_finalized = Some(previous.map_or(number, |h| h.max(number)));
        // Ancestors first, lowest first: a gated stream gets block N's copies before N+1's.
        for ancestor in below.ancestors {
            if let Some(n) = self.active.get(&ancestor).map(|r| r.number) {
                self.finalized.insert(n, ancestor);
                self.stats.implied += 1;
                self.advance(ancestor, CommitStage::Finalized, now, out);
            }
        }
        while self.finalized.len() > FINALIZED_MEMORY {
            self.finalized.pop_first();
        }
        if self.active.contains_key(&id) {
            self.advance(id, CommitStage::Finalized, now, out);
        } else {
            self.stats.ignored_unknown += 1;
        }
        let siblings: Vec<BlockId> = self
            .by_number
            .get(&number)
            .map(|ids| ids.iter().copied().filter(|s| *s != id).collect())
            .unwrap_or_default();
        for dead in siblings.into_iter().chain(below.abandoned) {
            self.advance(dead, CommitStage::Abandoned, now, out);
        }
        for lost in below.unresolved {
            if let Some(r) = self.detach(&lost) {
                self.stats.unresolved += 1;
                self.unresolved.push((r.id, r.number));
            }
        }
    }

    fn advance(&mut self, id: BlockId, to: CommitStage, now: u64, out: &mut Vec<Transition>) {
        let Some(r) = self.active.get_mut(&id) else {
            self.stats.ignored_unknown += 1;
            return;
        };
        if !may_move(r.stage, to) {
            self.stats.refused_transitions += 1;
            return;
        }
        let from = r.stage;
        let entered = r.stage_entered_ns;
        r.stage = to;
        r.stage_entered_ns = now;
        if let Some(slot) = summary_slot(to) {
            r.reached_ns[slot] = Some(now);
        }
        out.push(Transition {
            block_id: id,
            block_number: r.number,
            from_stage: Some(from),
            to_stage: to,
            time_in_previous_stage_ms: Some(ms_between(entered, now)),
            block_age_ms: ms_between(r.proposed_ns, now),
            txn_count: r.txn_count,
            gas_used: r.gas_used,
            block_time_ns: r.block_time_ns,
        });
        if is_terminal(to) {
            self.complete(id);
        }
    }

    /// Removes `id` from the active indexes; returns its record.
    fn detach(&mut self, id: &BlockId) -> Option<Record> {
        let r = self.active.remove(id)?;
        if let Some(ids) = self.by_number.get_mut(&r.number) {
            ids.retain(|x| x != id);
            if ids.is_empty() {
                self.by_number.remove(&r.number);
            }
        }
        if self.by_seqno.get(&r.block_seqno) == Some(id) {
            self.by_seqno.remove(&r.block_seqno);
        }
        Some(r)
    }

    fn complete(&mut self, id: BlockId) {
        if let Some(r) = self.detach(&id) {
            self.completed.push_back(r);
            while self.completed.len() > self.config.completed_cap {
                self.completed.pop_front();
            }
        }
    }

    fn enforce_active_cap(&mut self) {
        while self.active.len() > self.config.active_cap {
            let Some(victim) = self
                .by_number
                .values()
                .next()
                .and_then(|ids| ids.first())
                .copied()
            else {
                break;
            };
            self.detach(&victim);
            self.stats.evicted_active += 1;
        }
    }

    /// The ring writer restarted: block seqnos start over in the new ring, so the old ring's
    /// are forgotten (a new block's BLOCK_END or BLOCK_REJECT must never find an old block
    /// by a seqno that happens to be equal). Lifecycle by id is kept: consensus events about
    /// these blocks still apply, and a block the new writer executes again is tracked anew.
    pub fn forget_ring(&mut self) {
        self.by_seqno.clear();
        for r in self.active.values_mut() {
            r.block_seqno = 0;
        }
    }

    /// The active proposal that BLOCK_START `block_seqno` opened: its id and number.
    pub fn block_of_seqno(&self, block_seqno: u64) -> Option<(BlockId, u64)> {
        let id = self.by_seqno.get(&block_seqno)?;
        self.active.get(id).map(|r| (r.id, r.number))
    }

    /// The stage of a tracked id (active or still in the completed list).
    pub fn stage_of(&self, id: &BlockId) -> Option<CommitStage> {
        if let Some(r) = self.active.get(id) {
            return Some(r.stage);
        }
        self.completed
            .iter()
            .rev()
            .find(|r| r.id == *id)
            .map(|r| r.stage)
    }

    /// Counters since start.
    pub fn stats(&self) -> LifecycleStats {
        self.stats
    }

    /// Number of active (non-terminal) proposals.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Number of completed proposals kept.
    pub fn completed_len(&self) -> usize {
        self.completed.len()
    }
}
