//! Transactions per second of block time, over finalized blocks only.
//!
//! Runs on the tailer core; fed with the tracker's `Finalized` transitions. O(1) amortized
//! per finalized block (each block enters and leaves the window once).
//!
//! Definition (docs/analytics.md): keep the finalized blocks whose chain time is within
//! `window_ns` of the newest one. With `oldest`/`newest` their chain times,
//! `tps = Σ txn_count(window blocks except the oldest) / (newest − oldest)`: the transactions
//! carried by the blocks that arrived *during* the measured interval, divided by its length.
//! Proposals that are rejected or abandoned never finalize, so they are never counted; a
//! height is counted once (a second `Finalized` for a number already counted is ignored).
//!
//! Never: count a block before it is final, or look at the wall clock.

use std::collections::VecDeque;

use crate::ingest::chain::tracker::Transition;
use crate::model::stage::CommitStage;

/// Default window: 10 s of block time (25 blocks at 400 ms).
pub const DEFAULT_TPS_WINDOW_NS: u64 = 10_000_000_000;

#[derive(Debug, Clone, Copy)]
struct WindowBlock {
    number: u64,
    time_ns: u64,
    txns: u64,
}

/// The figures behind `TPS` frames and `/v1/tps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TpsSnapshot {
    /// Rounded to the nearest integer: the `TPS` frame value and `/v1/tps` `tps`.
    pub tps: u64,
    /// Unrounded.
    pub tps_exact: f64,
    /// Configured window.
    pub window_ms: u64,
    /// `newest − oldest` chain time of the blocks in the window.
    pub span_ms: f64,
    pub blocks_in_window: u64,
    /// Transactions of the window blocks except the oldest (the numerator).
    pub txns_in_window: u64,
    pub last_block_number: Option<u64>,
    pub last_block_txn_count: Option<u64>,
    /// Finalized blocks and their transactions counted since start.
    pub finalized_blocks: u64,
    pub finalized_txns: u64,
}

/// Rolling TPS over finalized blocks.
#[derive(Debug)]
pub struct TpsWindow {
    window_ns: u64,
    blocks: VecDeque<WindowBlock>,
    /// Σ txns over `blocks` (including the oldest).
    txns: u64,
    newest_ns: u64,
    finalized_blocks: u64,
    finalized_txns: u64,
}

impl TpsWindow {
    /// An empty window of `window_ns` of chain time.
    pub fn new(window_ns: u64) -> TpsWindow {
        TpsWindow {
            window_ns,
            blocks: VecDeque::new(),
            txns: 0,
            newest_ns: 0,
            finalized_blocks: 0,
            finalized_txns: 0,
        }
    }

    /// Applies a lifecycle transition; returns `true` when the figure changed (a block was
    /// counted), i.e. when the tailer should emit a `TPS` frame.
    pub fn on_transition(&mut self, t: &Transition) -> bool {
        if t.to_stage != CommitStage::Finalized {
            return false;
        }
        self.on_finalized(t.block_number, t.txn_count, t.block_time_ns)
    }

    /// Counts a finalized block. Chain times that go backwards are clamped to the newest
    /// seen, so the window never grows without bound. Returns `false` for a number already
    /// counted (finalization is in number order; a repeat is a re-execution).
    pub fn on_finalized(&mut self, number: u64, txn_count: u64, block_time_ns: u64) -> bool {
        if self.blocks.back().is_some_and(|b| number <= b.number) {
            return false;
        }
        let time_ns = block_time_ns.max(self.newest_ns);
        self.newest_ns = time_ns;
        self.blocks.push_back(WindowBlock {
            number,
            time_ns,
            txns: txn_count,
        });
        self.txns += txn_count;
        self.finalized_blocks += 1;
        self.finalized_txns += txn_count;
        let floor = time_ns.saturating_sub(self.window_ns);
        while let Some(front) = self.blocks.front() {
            if front.time_ns >= floor {
                break;
            }
            self.txns -= front.txns;
            self.blocks.pop_front();
        }
        true
    }

    /// The current figures.
    pub fn snapshot(&self) -> TpsSnapshot {
        let (span_ns, numerator) = match (self.blocks.front(), self.blocks.back()) {
            (Some(o), Some(n)) => (n.time_ns - o.time_ns, self.txns - o.txns),
            _ => (0, 0),
        };
        let tps_exact = if span_ns == 0 {
            0.0
        } else {
            numerator as f64 * 1e9 / span_ns as f64
        };
        let last = self.blocks.back();
        TpsSnapshot {
            tps: tps_exact.round() as u64,
            tps_exact,
            window_ms: self.window_ns / 1_000_000,
            span_ms: span_ns as f64 / 1e6,
            blocks_in_window: self.blocks.len() as u64,
            txns_in_window: numerator,
            last_block_number: last.map(|b| b.number),
            last_block_txn_count: last.map(|b| b.txns),
            finalized_blocks: self.finalized_blocks,
            finalized_txns: self.finalized_txns,
        }
    }

    /// The rounded figure of the `TPS` frame.
    pub fn tps(&self) -> u64 {
        self.snapshot().tps
    }
}

impl Default for TpsWindow {
    fn default() -> Self {
        TpsWindow::new(DEFAULT_TPS_WINDOW_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_interval_and_window_slides() {
        let mut w = TpsWindow::new(10_000_000_000);
        assert_eq!(w.tps(), 0);
        // One block every 400 ms carrying 100 txns: 250 tps.
        for i in 0..100u64 {
            assert!(w.on_finalized(i, 100, i * 400_000_000));
        }
        let s = w.snapshot();
        assert_eq!(s.tps, 250);
        // Window keeps blocks within 10 s of the newest: 26 blocks (0 s … 10 s inclusive).
        assert_eq!(s.blocks_in_window, 26);
        assert!(
            !w.on_finalized(50, 100, 0),
            "a number already counted is ignored"
        );
        assert_eq!(w.snapshot().finalized_blocks, 100);
    }
}
