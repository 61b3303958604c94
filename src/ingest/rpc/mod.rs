//! JSON-RPC notifications on the tailer: assembles each executed block's `newHeads` header
//! and `logs` objects (encoded once, at BLOCK_END) and emits one [`RpcFrame`] per commit
//! state the block reaches, including the retraction of an abandoned proposal.
//!
//! Runs on the tailer core, inside [`crate::ingest::tailer::EventPipeline`]: every decoded
//! event is lent to [`RpcAssembler::observe`]; after the chain stage has run for that event,
//! [`RpcAssembler::emit`] stamps and appends the frames it made (`Proposed` at BLOCK_END,
//! then one frame per lifecycle transition of a completed block: `Voted`, `Finalized`,
//! `Verified`, `Abandoned`). Commit states come from the chain tracker, so implied finality
//! and abandonment are the ones the native protocol reports (docs/decisions/implied-finality.md).
//!
//! Invariants: a block is encoded once whatever the number of states and subscribers; a
//! block cut short by data loss (lap, expired payload, writer restart) is never emitted (no
//! partial block); a state is emitted at most once per block, in the canonical order;
//! memory is bounded (`MAX_LOGS_PER_BLOCK` pending logs; completed blocks awaiting later
//! states: `KEPT_BLOCKS`, and `Config::rpc_history_bytes` of them).
//! Never: block, panic on ring data.

pub mod encode;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ingest::chain::tracker::Transition;
use crate::ingest::event::flow::EventContext;
use crate::ingest::event::payload::{BlockStart, ExecEvent};
use crate::model::outbound::{Outbound, MAX_LOG_TOPICS};
use crate::model::rpc::{LiveBytes, RpcBlock, RpcFrame, RpcLog};
use crate::model::seqno::ServerSeqno;
use crate::model::stage::CommitStage;
use crate::model::types::{Address, Bytes32};

use encode::{write_block_tail, write_header, write_log, LogPlace};

/// Completed blocks kept for their later states (a few seconds of chain at 0.4 s a block:
/// consensus finalizes two to three blocks behind execution).
pub const KEPT_BLOCKS: usize = 256;

/// Logs kept for the block being executed; beyond this the block is not emitted (counted)
/// rather than holding unbounded memory.
pub const MAX_LOGS_PER_BLOCK: usize = 1 << 20;

/// A log waiting for its block's hash.
#[derive(Debug)]
struct PendingLog {
    txn_idx: u32,
    index: u32,
    txn_hash: Bytes32,
    address: Address,
    topics: [Bytes32; MAX_LOG_TOPICS],
    topic_count: u8,
    data: Box<[u8]>,
}

/// The block being executed.
#[derive(Debug)]
struct Building {
    block_seqno: u64,
    start: Box<BlockStart>,
    logs: Vec<PendingLog>,
    /// (transaction index, hash), for the block's transaction list.
    txns: Vec<(u32, Bytes32)>,
    overflowed: bool,
}

/// A completed block awaiting its later states.
#[derive(Debug)]
struct Kept {
    block: Arc<RpcBlock>,
    reached: CommitStage,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RpcStats {
    pub blocks: u64,
    pub frames: u64,
    /// Blocks not emitted: cut short by data loss, or over `MAX_LOGS_PER_BLOCK` logs.
    pub dropped_blocks: u64,
    /// Completed blocks let go before their last state (`KEPT_BLOCKS` or the byte bound):
    /// their later states are not announced.
    pub evicted_blocks: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct RpcAssembler {
    /// Off (`--no-rpc`): nothing is kept or emitted.
    enabled: bool,
    building: Option<Building>,
    kept: VecDeque<Kept>,
    /// Made by `observe`, stamped by `emit`.
    ready: Vec<(CommitStage, CommitStage, Arc<RpcBlock>)>,
    /// Bytes of completed blocks kept for their later states (`Config::rpc_history_bytes`).
    max_kept_bytes: u64,
    stats: RpcStats,
}

impl Default for RpcAssembler {
    fn default() -> RpcAssembler {
        RpcAssembler {
            enabled: true,
            building: None,
            kept: VecDeque::new(),
            ready: Vec::new(),
            max_kept_bytes: crate::config::defaults::RPC_HISTORY_MIB << 20,
            stats: RpcStats::default(),
        }
    }
}

impl RpcAssembler {
    /// Turns assembly on or off (off: no work per event, no frames).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        if !on {
            self.forget_ring();
        }
    }

    /// Bounds the bytes of completed blocks kept for their later states.
    pub fn set_max_kept_bytes(&mut self, bytes: u64) {
        self.max_kept_bytes = bytes;
    }

    pub fn stats(&self) -> RpcStats {
        self.stats
    }

    /// Looks at one decoded event (before the chain stage runs for it).
    pub fn observe(&mut self, event: &ExecEvent<'_>, ctx: &EventContext) {
        if !self.enabled {
            return;
        }
        match event {
            ExecEvent::BlockStart(start) => {
                if self.building.is_some() {
                    self.stats.dropped_blocks += 1;
                }
                self.building = Some(Building {
                    block_seqno: ctx.block_seqno,
                    start: Box::new(*start),
                    logs: Vec::new(),
                    txns: Vec::new(),
                    overflowed: false,
                });
            }
            ExecEvent::TxnHeaderStart(h) => {
                if let (Some(b), Some(idx)) = (self.building.as_mut(), ctx.txn_idx) {
                    if b.block_seqno == ctx.block_seqno && b.txns.len() < MAX_LOGS_PER_BLOCK {
                        b.txns.push((idx, h.txn_hash));
                    }
                }
            }
            ExecEvent::TxnLog(log) => {
                let (Some(b), Some(txn_idx)) = (self.building.as_mut(), ctx.txn_idx) else {
                    return;
                };
                if b.block_seqno != ctx.block_seqno {
                    return;
                }
                if b.logs.len() >= MAX_LOGS_PER_BLOCK {
                    b.overflowed = true;
                    return;
                }
                let mut topics = [[0u8; 32]; MAX_LOG_TOPICS];
                let mut topic_count = 0u8;
                for (slot, t) in topics.iter_mut().zip(log.topics()) {
                    slot.copy_from_slice(t);
                    topic_count += 1;
                }
                b.logs.push(PendingLog {
                    txn_idx,
                    index: log.index,
                    txn_hash: ctx.txn_hash.unwrap_or([0; 32]),
                    address: log.address,
                    topics,
                    topic_count,
                    data: log.data.into(),
                });
            }
            ExecEvent::BlockEnd(end) => {
                let Some(b) = self.building.take() else {
                    return;
                };
                if b.block_seqno != ctx.block_seqno || b.overflowed {
                    self.stats.dropped_blocks += 1;
                    return;
                }
                let block = Arc::new(finish(b, end));
                self.stats.blocks += 1;
                self.ready
                    .push((CommitStage::Proposed, CommitStage::Proposed, block.clone()));
                // The oldest blocks give way (their later states are not announced) past
                // the count or the bytes: a chain that stops finalizing holds no more.
                let kept_bytes = |kept: &VecDeque<Kept>| -> u64 {
                    kept.iter().map(|k| k.block.live.bytes()).sum()
                };
                while !self.kept.is_empty()
                    && (self.kept.len() >= KEPT_BLOCKS
                        || kept_bytes(&self.kept) + block.live.bytes() > self.max_kept_bytes)
                {
                    self.kept.pop_front();
                    self.stats.evicted_blocks += 1;
                }
                self.kept.push_back(Kept {
                    block,
                    reached: CommitStage::Proposed,
                });
            }
            ExecEvent::BlockReject(_)
                if self
                    .building
                    .as_ref()
                    .is_some_and(|b| b.block_seqno == ctx.block_seqno) =>
            {
                self.building = None;
            }
            _ => {}
        }
    }

    /// Stamps and appends the frames of the event just observed, then one per lifecycle
    /// transition of a completed block (`transitions`: what the chain stage made of the
    /// same event). `timestamp_ns`: the event's ring time.
    pub fn emit(
        &mut self,
        transitions: &[Transition],
        timestamp_ns: u64,
        seqnos: &mut ServerSeqno,
        out: &mut Vec<Outbound>,
    ) {
        for t in transitions {
            let Some(i) = self.kept.iter().position(|k| k.block.id == t.block_id) else {
                continue;
            };
            let kept = &mut self.kept[i];
            match t.to_stage {
                CommitStage::Voted | CommitStage::Finalized | CommitStage::Verified => {
                    if kept.reached.rank() >= t.to_stage.rank() {
                        continue;
                    }
                    kept.reached = t.to_stage;
                    self.ready
                        .push((t.to_stage, t.to_stage, Arc::clone(&kept.block)));
                    if t.to_stage == CommitStage::Verified {
                        self.kept.remove(i);
                    }
                }
                CommitStage::Abandoned => {
                    let reached = kept.reached;
                    let block = Arc::clone(&kept.block);
                    self.kept.remove(i);
                    self.ready.push((CommitStage::Abandoned, reached, block));
                }
                CommitStage::Rejected => {
                    self.kept.remove(i);
                }
                CommitStage::Proposed => {}
            }
        }
        for (stage, reached, block) in self.ready.drain(..) {
            self.stats.frames += 1;
            out.push(Outbound::Rpc(Arc::new(RpcFrame {
                server_seqno: seqnos.allocate(),
                stage,
                reached,
                timestamp_ns,
                block,
            })));
        }
    }

    /// Data was lost inside the block being executed: it is never emitted.
    pub fn drop_partial(&mut self) {
        if self.building.take().is_some() {
            self.stats.dropped_blocks += 1;
        }
    }

    /// The writer restarted: nothing of the old ring is matched against the new one.
    pub fn forget_ring(&mut self) {
        self.drop_partial();
        self.kept.clear();
    }
}

/// Encodes a completed block: the header, then its logs in block order with block-wide
/// `logIndex` (transactions in index order, each one's logs in their own order; the ring
/// interleaves transactions, so the order is restored here).
fn finish(mut b: Building, end: &crate::ingest::event::payload::BlockEnd) -> RpcBlock {
    let input = &b.start.eth_block_input;
    let mut header = Vec::with_capacity(1400);
    write_header(&mut header, &b.start, end);
    b.logs.sort_by_key(|l| (l.txn_idx, l.index));
    let mut scratch = Vec::with_capacity(512);
    let logs: Vec<RpcLog> = b
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| {
            scratch.clear();
            write_log(
                &mut scratch,
                &LogPlace {
                    address: &l.address,
                    topics: &l.topics[..usize::from(l.topic_count)],
                    data: &l.data,
                    block_hash: &end.eth_block_hash,
                    block_number: input.number,
                    block_timestamp: input.timestamp,
                    txn_hash: &l.txn_hash,
                    txn_index: u64::from(l.txn_idx),
                    log_index: i as u64,
                },
            );
            RpcLog {
                address: l.address,
                topics: l.topics,
                topic_count: l.topic_count,
                json: scratch.as_slice().into(),
            }
        })
        .collect();
    let chain_id = &b.start.chain_id.0;
    let chain_id = if chain_id[8..].iter().any(|x| *x != 0) {
        u64::MAX
    } else {
        u64::from_le_bytes(chain_id[..8].try_into().unwrap_or([0xff; 8]))
    };
    b.txns.sort_by_key(|(idx, _)| *idx);
    let mut block_tail = Vec::with_capacity(40 + 69 * b.txns.len());
    write_block_tail(&mut block_tail, b.txns.iter().map(|(_, h)| h));
    let header: Box<[u8]> = header.into();
    let block_tail: Box<[u8]> = block_tail.into();
    RpcBlock {
        live: LiveBytes::of(&header, &logs, &block_tail),
        block_tail,
        number: input.number,
        hash: end.eth_block_hash,
        id: b.start.block_tag.id,
        chain_id,
        header,
        logs,
    }
}
