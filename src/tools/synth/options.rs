//! The generator's settings: seed, block size, fork and reject rates, chain numbering and time.
//!
//! Runs wherever a [`crate::tools::synth::Generator`] is configured (CLI parsing, tests, benches).
//! Inputs: nothing, or a target event rate → outputs: a [`SynthOptions`] value. Pure data, no
//! state: the same options always give the same chain.

/// Events per synthetic transaction, block and consensus events included (measured: 16.0 over
/// 200 default heights), used to size blocks from a target rate.
pub const EVENTS_PER_TXN: f64 = 16.0;

/// Generator settings. Every field has a default (see [`SynthOptions::default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    /// PRNG seed: same seed, same chain. Default 1.
    pub seed: u64,
    /// Mean transactions per proposal (each block draws ±20 %). Default 200.
    pub txns_per_block: u32,
    /// Chance that a height gets a second, competing proposal. Default 0.05.
    pub fork_probability: f64,
    /// Chance that a height starts with a proposal that ends in BLOCK_REJECT. Default 0.02.
    pub reject_probability: f64,
    /// Number of the first block. Default 1,000,000.
    pub first_block_number: u64,
    /// Chain time (ns since the Unix epoch) of the first proposal. Default 2025-09-01T00:00Z.
    pub start_time_ns: u64,
    /// Chain time between heights. Default 400 ms.
    pub block_interval_ns: u64,
    /// Chain id in payloads. Default 143.
    pub chain_id: u64,
    /// Externally owned accounts in the world (a tenth of them are "hot"). Default 5,000.
    pub accounts: usize,
}

impl Default for SynthOptions {
    fn default() -> SynthOptions {
        SynthOptions {
            seed: 1,
            txns_per_block: 200,
            fork_probability: 0.05,
            reject_probability: 0.02,
            first_block_number: 1_000_000,
            start_time_ns: 1_756_684_800_000_000_000,
            block_interval_ns: 400_000_000,
            chain_id: 143,
            accounts: 5_000,
        }
    }
}

impl SynthOptions {
    /// Defaults with `txns_per_block` chosen so that one height is about one block interval
    /// of events at `events_per_sec` (at least one transaction).
    pub fn for_rate(events_per_sec: f64) -> SynthOptions {
        let mut o = SynthOptions::default();
        let per_block = events_per_sec * o.block_interval_ns as f64 / 1e9;
        let txns = (per_block / EVENTS_PER_TXN).round();
        o.txns_per_block = if txns.is_finite() && txns >= 1.0 {
            txns.min(f64::from(u32::MAX)) as u32
        } else {
            1
        };
        o
    }
}
