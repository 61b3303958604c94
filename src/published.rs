//! The chain state the REST endpoints serve, published by the tailer as pre-encoded bodies.
//!
//! Written by the tailer core (it owns the chain tracker, TPS window and contention tracker);
//! read by whichever shard answers `/v1/tps`, `/v1/contention`, `/v1/blocks/lifecycle` or
//! `/v1/blocks/{n}/lifecycle`. The tailer rebuilds [`ChainBodies`] only after an event that
//! changed block-level state (a lifecycle transition, a TPS or contention report), never per
//! ordinary event, and swaps it in as one `Arc`.
//!
//! Why a `Mutex<Arc<_>>`: the lock is held only to clone or replace one pointer (no
//! allocation, no formatting under it), a few times per block on the writer side and once per
//! REST request on the reader side, so it is uncontended and off the event hot path; readers
//! then format nothing, they copy a finished body. A poisoned lock (a panic while holding
//! it, which the two tiny critical sections cannot do) is recovered, never propagated.
//!
//! Never: hold the lock while encoding, or expose a half-built body.

use std::sync::{Arc, Mutex};

use crate::chain::meta::{self, RestBody};
use crate::chain::pipeline::ChainPipeline;

/// Every chain REST body, encoded once per block-level change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBodies {
    /// `/v1/tps`.
    pub tps: RestBody,
    /// `/v1/contention` (404 body until the first report).
    pub contention: RestBody,
    /// `/v1/blocks/lifecycle`.
    pub lifecycle: RestBody,
    /// `/v1/blocks/{n}/lifecycle` for every tracked block number, ascending.
    pub blocks: Vec<(u64, RestBody)>,
    /// The tracked block numbers' range, for `/v1/status` (`None` before the first block).
    pub block_range: Option<(u64, u64)>,
}

impl ChainBodies {
    /// Encodes the REST view of `chain` as of its latest ring time.
    pub fn of(chain: &ChainPipeline) -> ChainBodies {
        let now = chain.last_ns();
        let tracker = chain.tracker();
        let summaries = tracker.summaries(now);
        let mut numbers: Vec<u64> = summaries.iter().map(|s| s.block_number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let blocks = numbers
            .iter()
            .map(|&n| {
                (
                    n,
                    meta::lifecycle_one_body(tracker.summary_for_number(n, now).as_ref()),
                )
            })
            .collect();
        ChainBodies {
            tps: meta::tps_body(&chain.tps().snapshot()),
            contention: meta::contention_body(chain.contention().latest()),
            lifecycle: meta::lifecycle_list_body(&summaries),
            blocks,
            block_range: numbers.first().zip(numbers.last()).map(|(a, b)| (*a, *b)),
        }
    }

    /// The body for `/v1/blocks/{n}/lifecycle` (a 404 body when `n` is not tracked).
    pub fn block(&self, number: u64) -> RestBody {
        match self.blocks.binary_search_by_key(&number, |(n, _)| *n) {
            Ok(i) => self.blocks[i].1.clone(),
            Err(_) => meta::lifecycle_one_body(None),
        }
    }
}

/// The shared slot: the tailer publishes, REST readers take the current `Arc`.
#[derive(Debug)]
pub struct ChainSlot {
    current: Mutex<Arc<ChainBodies>>,
}

impl Default for ChainSlot {
    /// The bodies of a chain that has seen nothing (TPS 0, no contention, no blocks).
    fn default() -> ChainSlot {
        let empty = ChainPipeline::new(crate::chain::pipeline::ChainConfig::default());
        ChainSlot {
            current: Mutex::new(Arc::new(ChainBodies::of(&empty))),
        }
    }
}

impl ChainSlot {
    /// Replaces the published bodies (tailer only).
    pub fn publish(&self, bodies: ChainBodies) {
        let next = Arc::new(bodies);
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *slot = next;
    }

    /// The bodies published last.
    pub fn get(&self) -> Arc<ChainBodies> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chain_has_zero_tps_no_contention_and_no_blocks() {
        let slot = ChainSlot::default();
        let b = slot.get();
        assert_eq!(b.tps.status, 200);
        assert!(b.tps.body.starts_with("{\"tps\":0,"), "{}", b.tps.body);
        assert_eq!(b.contention.status, 404);
        assert_eq!(b.lifecycle.body, "[]");
        assert_eq!(b.block(7).status, 404);
        assert_eq!(b.block_range, None);
    }

    #[test]
    fn publish_replaces_what_readers_get() {
        let slot = ChainSlot::default();
        let mut b = (*slot.get()).clone();
        b.blocks.push((
            9,
            RestBody {
                status: 200,
                body: "{}".into(),
            },
        ));
        slot.publish(b);
        assert_eq!(slot.get().block(9).status, 200);
        assert_eq!(slot.get().block(8).status, 404);
    }
}
