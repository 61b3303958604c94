//! The REST view of the tracker: `BlockLifecycleSummary` per proposal, the
//! `/v1/blocks/lifecycle` list, one block by number, and the connect-time snapshot of active
//! blocks. Part of [`super::LifecycleTracker`]; read-only over its records, run on the tailer
//! core when it re-encodes the chain REST bodies (a few times per block, never per event).

use super::{is_terminal, ms_between, LifecycleTracker, Record, Transition, SUMMARY_STAGES};
use crate::ingest::chain::input::BlockId;
use crate::model::stage::CommitStage;

/// The REST view of one tracked proposal (`BlockLifecycleSummary`).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockLifecycleSummary {
    /// The consensus block id (named `block_hash` on the wire, as in the old gateway).
    pub block_hash: BlockId,
    pub block_number: u64,
    pub current_stage: CommitStage,
    pub txn_count: u64,
    pub gas_used: Option<u64>,
    pub eth_block_hash: Option<[u8; 32]>,
    /// Ms from Proposed to each later stage reached, in stage order (`Voted`, `Finalized`,
    /// `Verified`, `Rejected`, `Abandoned`).
    pub stage_timings_ms: Vec<(CommitStage, f64)>,
    /// Proposed → BLOCK_END.
    pub execution_time_ms: Option<f64>,
    /// Proposed → terminal stage for completed blocks, Proposed → `now` for active ones.
    pub total_age_ms: Option<f64>,
}

impl LifecycleTracker {
    /// `/v1/blocks/lifecycle`: completed blocks first (oldest completion first, up to
    /// `completed_cap`), then active blocks by number (proposal order within a number).
    /// `now_ns` is the latest ring time, for the age of active blocks.
    pub fn summaries(&self, now_ns: u64) -> Vec<BlockLifecycleSummary> {
        let mut v: Vec<BlockLifecycleSummary> = self
            .completed
            .iter()
            .map(|r| summarize(r, now_ns))
            .collect();
        for ids in self.by_number.values() {
            for id in ids {
                if let Some(r) = self.active.get(id) {
                    v.push(summarize(r, now_ns));
                }
            }
        }
        v
    }

    /// `/v1/blocks/{n}/lifecycle`: the canonical proposal at `number` when one was finalized
    /// and is still known, else the most recent proposal at that number, else `None`.
    pub fn summary_for_number(&self, number: u64, now_ns: u64) -> Option<BlockLifecycleSummary> {
        let all = self.proposals_at(number, now_ns);
        if let Some(fid) = self.finalized.get(&number) {
            if let Some(s) = all.iter().find(|s| s.block_hash == *fid) {
                return Some(s.clone());
            }
        }
        all.into_iter().last()
    }

    /// Every known proposal at `number` (completed ones first, then active ones).
    pub fn proposals_at(&self, number: u64, now_ns: u64) -> Vec<BlockLifecycleSummary> {
        let mut v: Vec<BlockLifecycleSummary> = self
            .completed
            .iter()
            .filter(|r| r.number == number)
            .map(|r| summarize(r, now_ns))
            .collect();
        if let Some(ids) = self.by_number.get(&number) {
            v.extend(
                ids.iter()
                    .filter_map(|id| self.active.get(id))
                    .map(|r| summarize(r, now_ns)),
            );
        }
        v
    }

    /// One transition per active block, `from_stage: None`, `to_stage` = its current stage:
    /// the Lifecycle frames of a connect-time snapshot (ages measured to `now_ns`).
    pub fn snapshot(&self, now_ns: u64) -> Vec<Transition> {
        self.by_number
            .values()
            .flatten()
            .filter_map(|id| self.active.get(id))
            .map(|r| Transition {
                block_id: r.id,
                block_number: r.number,
                from_stage: None,
                to_stage: r.stage,
                time_in_previous_stage_ms: None,
                block_age_ms: ms_between(r.proposed_ns, now_ns),
                txn_count: r.txn_count,
                gas_used: r.gas_used,
                block_time_ns: r.block_time_ns,
            })
            .collect()
    }
}

fn summarize(r: &Record, now_ns: u64) -> BlockLifecycleSummary {
    let stage_timings_ms = SUMMARY_STAGES
        .iter()
        .zip(r.reached_ns.iter())
        .filter_map(|(stage, at)| at.map(|t| (*stage, ms_between(r.proposed_ns, t))))
        .collect();
    let age_end = if is_terminal(r.stage) {
        r.stage_entered_ns
    } else {
        now_ns.max(r.stage_entered_ns)
    };
    BlockLifecycleSummary {
        block_hash: r.id,
        block_number: r.number,
        current_stage: r.stage,
        txn_count: r.txn_count,
        gas_used: r.gas_used,
        eth_block_hash: r.eth_block_hash,
        stage_timings_ms,
        execution_time_ms: r.end_ns.map(|e| ms_between(r.proposed_ns, e)),
        total_age_ms: Some(ms_between(r.proposed_ns, age_end)),
    }
}
