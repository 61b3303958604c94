//! Flow context: which block (number, id) and transaction (index, hash) each event belongs to.
//!
//! Runs on the tailer core, fed every decoded event in ring order. Input: the descriptor's
//! flow tags (`content_ext[0]` = seqno of the owning BLOCK_START, `[1]` = txn index + 1,
//! `[2]` = account index) and the decoded payload. Output: an [`EventContext`] per event.
//!
//! Invariants:
//! - Per-block state is keyed by the BLOCK_START seqno, never by block number, so two
//!   proposals at the same height stay apart.
//! - Transaction hashes live in a per-block `Vec` sized from `txn_count`; it grows on demand
//!   up to [`FlowConfig::max_txns_per_block`] (no fixed table that can overflow or panic).
//! - Memory is bounded: a block is forgotten [`FlowConfig::retain_ended_blocks`] ended blocks
//!   after its BLOCK_END / BLOCK_REJECT / block-scope EVM_ERROR, and at most
//!   [`FlowConfig::max_open_blocks`] unended blocks are kept (a lost BLOCK_END cannot leak).
//! - Works for both event orders (interleaved transactions, or contiguous per transaction):
//!   nothing assumes which transaction comes next.
//! - Consensus events (flow tags 0) take their block number and id from the payload.

use std::collections::VecDeque;

use crate::ingest::event::payload::{Bytes32, ExecEvent};
use crate::ingest::ring::layout::Descriptor;

/// Bounds on the tracker's memory. Defaults suit a real node (one block open at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Ended blocks whose context is still kept, for late events that name them.
    /// Default 8. Raise only if a writer records events of a block long after it ended.
    pub retain_ended_blocks: usize,
    /// Blocks without an end kept at once (the oldest is dropped beyond). Default 64.
    pub max_open_blocks: usize,
    /// Largest transaction index whose hash is remembered (a corrupt index cannot make the
    /// tracker allocate without bound). Default 1,048,576.
    pub max_txns_per_block: usize,
}

impl Default for FlowConfig {
    fn default() -> FlowConfig {
        FlowConfig {
            retain_ended_blocks: 8,
            max_open_blocks: 64,
            max_txns_per_block: 1 << 20,
        }
    }
}

/// What is known about an event's place in the chain when it is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventContext {
    /// Flow tag: seqno of the owning BLOCK_START; 0 outside a block.
    pub block_seqno: u64,
    /// From the owning BLOCK_START, or from a consensus event's payload.
    pub block_number: Option<u64>,
    /// Consensus id of the owning proposal, or the one a QC / FINALIZED names.
    pub block_id: Option<Bytes32>,
    /// Transaction index, for transaction-scoped events.
    pub txn_idx: Option<u32>,
    /// Hash of that transaction, once its TXN_HEADER_START has been seen.
    pub txn_hash: Option<Bytes32>,
    /// Flow tag `content_ext[2]` (STORAGE_ACCESS: index of the owning ACCOUNT_ACCESS).
    pub account_index: u64,
}

#[derive(Debug)]
struct BlockFlow {
    seqno: u64,
    number: u64,
    id: Bytes32,
    txn_hashes: Vec<Option<Bytes32>>,
    ended: bool,
}

/// Attaches block and transaction identity to events using the flow tags. See module docs.
#[derive(Debug, Default)]
pub struct FlowTracker {
    config: FlowConfig,
    /// In BLOCK_START order (oldest first).
    blocks: VecDeque<BlockFlow>,
    /// Hash tables of forgotten blocks, reused so steady state does not allocate.
    spare: Vec<Vec<Option<Bytes32>>>,
}

impl FlowTracker {
    /// A tracker with the given bounds.
    pub fn new(config: FlowConfig) -> FlowTracker {
        FlowTracker {
            config,
            blocks: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Blocks currently remembered (open and recently ended).
    pub fn tracked_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Forgets everything (after a ring gap or a writer restart).
    pub fn reset(&mut self) {
        while let Some(b) = self.blocks.pop_front() {
            self.recycle(b);
        }
    }

    /// Records what `event` teaches and returns its context. Call for every decoded event,
    /// in ring order.
    pub fn observe(&mut self, desc: &Descriptor, event: &ExecEvent<'_>) -> EventContext {
        let mut ctx = EventContext {
            block_seqno: desc.block_seqno(),
            block_number: None,
            block_id: None,
            txn_idx: desc.txn_idx().and_then(|i| u32::try_from(i).ok()),
            txn_hash: None,
            account_index: desc.content_ext[crate::ingest::ring::layout::flow::ACCOUNT_INDEX],
        };
        match event {
            ExecEvent::BlockQc(q) => {
                return self.consensus(ctx, q.block_tag.block_number, Some(q.block_tag.id))
            }
            ExecEvent::BlockFinalized(t) => return self.consensus(ctx, t.block_number, Some(t.id)),
            ExecEvent::BlockVerified { block_number } => {
                return self.consensus(ctx, *block_number, None)
            }
            ExecEvent::BlockStart(b) => {
                let seqno = if ctx.block_seqno != 0 {
                    ctx.block_seqno
                } else {
                    desc.seqno
                };
                ctx.block_seqno = seqno;
                self.start_block(
                    seqno,
                    b.block_tag.block_number,
                    b.block_tag.id,
                    b.eth_block_input.txn_count,
                );
            }
            _ => {}
        }
        if ctx.block_seqno == 0 {
            return ctx;
        }
        let max_txns = self.config.max_txns_per_block;
        let Some(block) = self.find(ctx.block_seqno) else {
            return ctx;
        };
        ctx.block_number = Some(block.number);
        ctx.block_id = Some(block.id);
        if let Some(idx) = ctx.txn_idx {
            let i = idx as usize;
            if let ExecEvent::TxnHeaderStart(h) = event {
                if i >= block.txn_hashes.len() && i < max_txns {
                    block.txn_hashes.resize(i + 1, None);
                }
                if let Some(slot) = block.txn_hashes.get_mut(i) {
                    *slot = Some(h.txn_hash);
                }
            }
            ctx.txn_hash = block.txn_hashes.get(i).copied().flatten();
        }
        let ends = match event {
            ExecEvent::BlockEnd(_) | ExecEvent::BlockReject(_) => true,
            ExecEvent::EvmError(_) => ctx.txn_idx.is_none(),
            _ => false,
        };
        if ends {
            block.ended = true;
            self.prune();
        }
        ctx
    }

    fn consensus(&self, mut ctx: EventContext, number: u64, id: Option<Bytes32>) -> EventContext {
        ctx.block_number = Some(number);
        ctx.block_id = id;
        ctx
    }

    fn find(&mut self, seqno: u64) -> Option<&mut BlockFlow> {
        self.blocks.iter_mut().rev().find(|b| b.seqno == seqno)
    }

    fn start_block(&mut self, seqno: u64, number: u64, id: Bytes32, txn_count: u64) {
        if let Some(pos) = self.blocks.iter().position(|b| b.seqno == seqno) {
            if let Some(old) = self.blocks.remove(pos) {
                self.recycle(old);
            }
        }
        let n = usize::try_from(txn_count)
            .unwrap_or(usize::MAX)
            .min(self.config.max_txns_per_block);
        let mut txn_hashes = self.spare.pop().unwrap_or_default();
        txn_hashes.resize(n, None);
        self.blocks.push_back(BlockFlow {
            seqno,
            number,
            id,
            txn_hashes,
            ended: false,
        });
        self.prune();
    }

    /// Drops the oldest ended blocks beyond the retention, and the oldest open ones beyond
    /// the open-block bound.
    fn prune(&mut self) {
        let mut ended = self.blocks.iter().filter(|b| b.ended).count();
        let mut open = self.blocks.len() - ended;
        let mut i = 0;
        while i < self.blocks.len()
            && (ended > self.config.retain_ended_blocks || open > self.config.max_open_blocks)
        {
            let is_ended = self.blocks[i].ended;
            let drop = if is_ended {
                ended > self.config.retain_ended_blocks
            } else {
                open > self.config.max_open_blocks
            };
            if drop {
                if let Some(b) = self.blocks.remove(i) {
                    self.recycle(b);
                }
                if is_ended {
                    ended -= 1;
                } else {
                    open -= 1;
                }
            } else {
                i += 1;
            }
        }
    }

    fn recycle(&mut self, mut b: BlockFlow) {
        b.txn_hashes.clear();
        if self.spare.len() < 4 {
            self.spare.push(b.txn_hashes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::payload::*;

    fn desc(seqno: u64, block: u64, txn_id: u64) -> Descriptor {
        Descriptor {
            seqno,
            content_ext: [block, txn_id, 0, 0],
            ..Descriptor::default()
        }
    }

    fn start(number: u64, id: u8, txn_count: u64) -> BlockStart {
        let mut buf = Vec::new();
        let mut p = vec![0u8; crate::ingest::event::payload::layout::BLOCK_START];
        p[32..40].copy_from_slice(&number.to_le_bytes());
        p[0] = id;
        p[448..456].copy_from_slice(&txn_count.to_le_bytes());
        buf.extend_from_slice(&p);
        match crate::ingest::event::decode::decode(2, &buf).unwrap() {
            ExecEvent::BlockStart(b) => b,
            _ => unreachable!(),
        }
    }

    fn header(hash: u8) -> TxnHeaderStart<'static> {
        let mut p = vec![0u8; crate::ingest::event::payload::layout::TXN_HEADER_START];
        p[0] = hash;
        let p: &'static [u8] = Box::leak(p.into_boxed_slice());
        match crate::ingest::event::decode::decode(10, p).unwrap() {
            ExecEvent::TxnHeaderStart(h) => h,
            _ => unreachable!(),
        }
    }

    #[test]
    fn forks_at_the_same_height_keep_their_own_ids_and_hashes() {
        let mut f = FlowTracker::new(FlowConfig::default());
        f.observe(&desc(10, 10, 0), &ExecEvent::BlockStart(start(5, 0xaa, 1)));
        f.observe(&desc(11, 10, 1), &ExecEvent::TxnHeaderStart(header(1)));
        f.observe(
            &desc(12, 10, 0),
            &ExecEvent::BlockEnd(BlockEnd {
                eth_block_hash: [0; 32],
                state_root: [0; 32],
                receipts_root: [0; 32],
                logs_bloom: [0; 256],
                gas_used: 0,
            }),
        );
        f.observe(&desc(13, 13, 0), &ExecEvent::BlockStart(start(5, 0xbb, 1)));
        f.observe(&desc(14, 13, 1), &ExecEvent::TxnHeaderStart(header(2)));
        let a = f.observe(&desc(15, 10, 1), &ExecEvent::TxnEnd);
        let b = f.observe(&desc(16, 13, 1), &ExecEvent::TxnEnd);
        assert_eq!((a.block_number, b.block_number), (Some(5), Some(5)));
        assert_eq!(a.block_id.unwrap()[0], 0xaa);
        assert_eq!(b.block_id.unwrap()[0], 0xbb);
        assert_eq!(a.txn_hash.unwrap()[0], 1);
        assert_eq!(b.txn_hash.unwrap()[0], 2);
        assert_eq!(a.txn_idx, Some(0));
    }

    #[test]
    fn txn_table_grows_past_txn_count_and_memory_stays_bounded() {
        let cfg = FlowConfig {
            retain_ended_blocks: 2,
            max_open_blocks: 3,
            max_txns_per_block: 100,
        };
        let mut f = FlowTracker::new(cfg);
        f.observe(&desc(1, 1, 0), &ExecEvent::BlockStart(start(1, 1, 0)));
        let c = f.observe(&desc(2, 1, 51), &ExecEvent::TxnHeaderStart(header(9)));
        assert_eq!(c.txn_hash.unwrap()[0], 9);
        // Beyond the cap: no hash kept, no panic, no huge allocation.
        let c = f.observe(&desc(3, 1, 5000), &ExecEvent::TxnHeaderStart(header(9)));
        assert_eq!((c.txn_idx, c.txn_hash), (Some(4999), None));
        for s in 10..30 {
            f.observe(&desc(s, s, 0), &ExecEvent::BlockStart(start(s, 0, 3)));
        }
        assert!(f.tracked_blocks() <= 3);
        for s in 30..40 {
            f.observe(&desc(s, s, 0), &ExecEvent::BlockStart(start(s, 0, 3)));
            f.observe(&desc(s + 100, s, 0), &ExecEvent::BlockReject(1));
        }
        assert!(f.tracked_blocks() <= 5);
        // Unknown block (started mid-stream): seqno only.
        let c = f.observe(&desc(200, 7, 1), &ExecEvent::TxnEnd);
        assert_eq!(
            (c.block_seqno, c.block_number, c.txn_idx),
            (7, None, Some(0))
        );
    }

    /// Feeds 3 transactions in the given (txn, step) order; step 0 = PERF_ENTER, 1 = header,
    /// 2 = TXN_END. Returns the txn hash seen on each TXN_END.
    fn hashes_at_end(order: &[(u64, u8)]) -> Vec<Option<u8>> {
        let mut f = FlowTracker::new(FlowConfig::default());
        f.observe(&desc(1, 1, 0), &ExecEvent::BlockStart(start(9, 1, 3)));
        let mut out = Vec::new();
        for (i, (txn, step)) in order.iter().enumerate() {
            let d = desc(2 + i as u64, 1, txn + 1);
            let c = match step {
                0 => f.observe(&d, &ExecEvent::TxnPerfEvmEnter),
                1 => f.observe(&d, &ExecEvent::TxnHeaderStart(header(0x10 + *txn as u8))),
                _ => {
                    let c = f.observe(&d, &ExecEvent::TxnEnd);
                    out.push(c.txn_hash.map(|h| h[0]));
                    c
                }
            };
            assert_eq!((c.block_number, c.txn_idx), (Some(9), Some(*txn as u32)));
        }
        out
    }

    #[test]
    fn both_event_orders_attach_the_right_hash() {
        // Current writer: transactions interleave arbitrarily.
        let interleaved = [
            (0, 0),
            (1, 0),
            (0, 1),
            (2, 0),
            (1, 1),
            (0, 2),
            (2, 1),
            (1, 2),
            (2, 2),
        ];
        // 2025 snapshots: every PERF_ENTER first, then each transaction contiguous.
        let contiguous = [
            (0, 0),
            (1, 0),
            (2, 0),
            (0, 1),
            (0, 2),
            (1, 1),
            (1, 2),
            (2, 1),
            (2, 2),
        ];
        for order in [&interleaved[..], &contiguous[..]] {
            assert_eq!(
                hashes_at_end(order),
                vec![Some(0x10), Some(0x11), Some(0x12)]
            );
        }
    }

    #[test]
    fn consensus_events_take_number_and_id_from_the_payload() {
        let mut f = FlowTracker::new(FlowConfig::default());
        let c = f.observe(
            &desc(1, 0, 0),
            &ExecEvent::BlockQc(BlockQc {
                block_tag: BlockTag {
                    id: [3; 32],
                    block_number: 77,
                },
                round: 1,
                epoch: 0,
            }),
        );
        assert_eq!((c.block_number, c.block_id), (Some(77), Some([3; 32])));
        let c = f.observe(
            &desc(2, 0, 0),
            &ExecEvent::BlockVerified { block_number: 70 },
        );
        assert_eq!(
            (c.block_number, c.block_id, c.block_seqno),
            (Some(70), None, 0)
        );
    }
}
