//! Commit stages of a block proposal, in the order consensus moves them.
//!
//! `Proposed < Voted < Finalized < Verified` is the only order that `min_stage` compares.
//! `Rejected` and `Abandoned` are terminal and are *not* above any stage: an event of a rejected
//! or abandoned proposal never satisfies a `min_stage` above `Proposed` (docs/invariants.md#trust-4).

/// Where a block proposal is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStage {
    /// BLOCK_START seen: speculative execution output.
    Proposed,
    /// BLOCK_QC seen for this block id.
    Voted,
    /// BLOCK_FINALIZED seen for this block id.
    Finalized,
    /// BLOCK_VERIFIED seen for this block's number after it was finalized.
    Verified,
    /// BLOCK_REJECT, or EVM_ERROR in block scope: execution refused the block.
    Rejected,
    /// Another proposal at the same height was finalized.
    Abandoned,
}

impl CommitStage {
    /// The stages a subscriber can ask for as `min_stage`, in release order.
    pub const GATES: [CommitStage; 4] = [
        CommitStage::Proposed,
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
    ];

    /// Every stage, canonical path first, then the terminal failures.
    pub const ALL: [CommitStage; 6] = [
        CommitStage::Proposed,
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
        CommitStage::Rejected,
        CommitStage::Abandoned,
    ];

    /// Wire name (`"Proposed"` …), as in the existing gateway.
    pub fn name(self) -> &'static str {
        match self {
            CommitStage::Proposed => "Proposed",
            CommitStage::Voted => "Voted",
            CommitStage::Finalized => "Finalized",
            CommitStage::Verified => "Verified",
            CommitStage::Rejected => "Rejected",
            CommitStage::Abandoned => "Abandoned",
        }
    }

    /// Parses a wire name; exact and case-sensitive.
    pub fn from_name(name: &str) -> Option<CommitStage> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Position on the canonical path, `None` for the terminal failure stages.
    pub fn rank(self) -> Option<u8> {
        match self {
            CommitStage::Proposed => Some(0),
            CommitStage::Voted => Some(1),
            CommitStage::Finalized => Some(2),
            CommitStage::Verified => Some(3),
            CommitStage::Rejected | CommitStage::Abandoned => None,
        }
    }

    /// Whether a block at `self` may be delivered to a subscriber gated at `min_stage`.
    /// Rejected and Abandoned never reach anything but a `Proposed` gate.
    pub fn satisfies(self, min_stage: CommitStage) -> bool {
        match (self.rank(), min_stage.rank()) {
            (Some(have), Some(want)) => have >= want,
            (None, Some(0)) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_stages_only_satisfy_proposed() {
        for failed in [CommitStage::Rejected, CommitStage::Abandoned] {
            assert!(failed.satisfies(CommitStage::Proposed));
            assert!(!failed.satisfies(CommitStage::Voted));
            assert!(!failed.satisfies(CommitStage::Finalized));
            assert!(!failed.satisfies(CommitStage::Verified));
        }
        assert!(CommitStage::Verified.satisfies(CommitStage::Finalized));
        assert!(!CommitStage::Voted.satisfies(CommitStage::Finalized));
        assert_eq!(CommitStage::from_name("Voted"), Some(CommitStage::Voted));
        assert_eq!(CommitStage::from_name("voted"), None);
    }
}
