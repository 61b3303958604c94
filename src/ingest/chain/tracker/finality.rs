//! What a finalization or a verification decides below its height: the walk down the chain
//! of parent hashes (docs/decisions/implied-finality.md). Part of [`super::LifecycleTracker`];
//! runs on the tailer core at BLOCK_FINALIZED and BLOCK_VERIFIED only.
//!
//! Invariants: a block is finalized by implication only when the hashes prove it an ancestor
//! of the finalized block; abandoned only when they prove it is not; anything they cannot
//! place is reported as unresolved, never guessed. Only heights above the previous highest
//! finalization are walked (everything at or below it was decided then).

use super::{LifecycleTracker, Transition};
use crate::ingest::chain::input::BlockId;
use crate::model::stage::CommitStage;

/// What a finalization decides below its height.
#[derive(Debug, Default)]
pub(super) struct Resolution {
    /// Ancestors not yet final, lowest first.
    pub(super) ancestors: Vec<BlockId>,
    /// Proven not to be ancestors.
    pub(super) abandoned: Vec<BlockId>,
    /// Not placeable by hashes.
    pub(super) unresolved: Vec<BlockId>,
}

impl LifecycleTracker {
    /// Decides the tracked proposals below `number` that the finalization of `id` settles.
    /// Heights at or below `previous` (the highest number finalized before) were settled by
    /// that finalization, and later proposals there by [`start`](Self::start), so only the
    /// heights in between are walked, from `number - 1` down. At each height the ancestor is
    /// the proposal already final there, else the one whose `eth_block_hash` is the
    /// `parent_eth_hash` of the ancestor one height above; the others are abandoned. Where
    /// the link is missing (the ancestor one height above is unknown, or no proposal here
    /// carries the hash), a proposal whose own hash differs is still provably not the
    /// ancestor; the rest, here and below until a final block restores the link, are
    /// unresolved.
    pub(super) fn resolve_below(
        &self,
        id: BlockId,
        number: u64,
        previous: Option<u64>,
    ) -> Resolution {
        let mut res = Resolution::default();
        let floor = previous.map_or(0, |h| h.saturating_add(1));
        if floor >= number {
            return res;
        }
        // (height the link points at, the hash the ancestor there must have)
        let mut link: Option<(u64, [u8; 32])> = self
            .active
            .get(&id)
            .and_then(|r| Some((number.checked_sub(1)?, r.parent_eth_hash)));
        for (&height, ids) in self.by_number.range(floor..number).rev() {
            let expected = link.filter(|(h, _)| *h == height).map(|(_, hash)| hash);
            let records = ids.iter().filter_map(|i| self.active.get(i));
            let mut ancestor = None;
            for r in records.clone() {
                let known_final = self.finalized.get(&height) == Some(&r.id)
                    || r.stage.rank().is_some_and(|k| k >= 2);
                if known_final || (expected.is_some() && r.eth_block_hash == expected) {
                    ancestor = Some(r);
                    break;
                }
            }
            link = None;
            if let Some(a) = ancestor {
                if a.stage.rank().is_some_and(|k| k < 2) {
                    res.ancestors.push(a.id);
                }
                link = height.checked_sub(1).map(|h| (h, a.parent_eth_hash));
            }
            for r in records.filter(|r| ancestor.is_none_or(|a| a.id != r.id)) {
                let provably_not = ancestor.is_some()
                    || self.finalized.contains_key(&height)
                    || (expected.is_some() && r.eth_block_hash.is_some());
                if provably_not {
                    res.abandoned.push(r.id);
                } else {
                    res.unresolved.push(r.id);
                }
            }
        }
        res.ancestors.reverse();
        res.abandoned.reverse();
        res
    }

    /// BLOCK_VERIFIED at `number`: the finalized block there, and every finalized block
    /// below it (its ancestors, whose own BLOCK_VERIFIED may never come), lowest first.
    pub(super) fn verify(&mut self, number: u64, now: u64, out: &mut Vec<Transition>) {
        let below: Vec<BlockId> = self
            .by_number
            .range(..number)
            .flat_map(|(_, ids)| ids.iter())
            .filter(|i| {
                self.active
                    .get(*i)
                    .is_some_and(|r| r.stage == CommitStage::Finalized)
            })
            .copied()
            .collect();
        for id in below {
            self.stats.implied += 1;
            self.advance(id, CommitStage::Verified, now, out);
        }
        match self.finalized.get(&number).copied() {
            Some(id) if self.active.contains_key(&id) => {
                self.advance(id, CommitStage::Verified, now, out)
            }
            _ => self.stats.ignored_unknown += 1,
        }
    }

    /// Proposals dropped as unresolved since the last call (id, number), for the gate to
    /// drop and announce; see the module docs.
    pub fn take_unresolved(&mut self) -> Vec<(BlockId, u64)> {
        std::mem::take(&mut self.unresolved)
    }
}
