//! What the tailer hands to the shards for JSON-RPC `eth_subscribe`: one block's
//! notification bodies, encoded once, and one frame per commit state the block reaches.
//!
//! Made on the tailer core: [`RpcBlock`] once per executed block (at BLOCK_END, when the
//! hash is known), [`RpcFrame`] once per state (`Proposed`, `Voted`, `Finalized`,
//! `Verified`, `Abandoned`), all sharing the block by `Arc`. Shards never re-serialize a
//! header or a log: a notification is the envelope with the client's subscription id, an
//! optional `{"blockId":…,"commitState":…,` prefix, and a slice of these bytes
//! (docs/invariants.md#fast-1).
//!
//! Invariants: [`RpcBlock::header`] is the `newHeads` result object; every
//! [`RpcLog::json`] is a `logs` result object ending in [`LOG_TAIL_LIVE`], so a retraction
//! is the same bytes with [`LOG_TAIL_REMOVED`] spliced over that tail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::model::outbound::MAX_LOG_TOPICS;
use crate::model::stage::CommitStage;
use crate::model::types::{Address, Bytes32};

/// How every encoded log object ends.
pub const LOG_TAIL_LIVE: &[u8] = b"\"removed\":false}";
/// The tail of the same log, retracted.
pub const LOG_TAIL_REMOVED: &[u8] = b"\"removed\":true}";

/// One log of a block, encoded once, with the keys a `logs` filter tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcLog {
    pub address: Address,
    /// Topics in position order; only `..topic_count` valid.
    pub topics: [Bytes32; MAX_LOG_TOPICS],
    pub topic_count: u8,
    /// The `logs` result object (Monad's field order), ending in [`LOG_TAIL_LIVE`].
    pub json: Box<[u8]>,
}

impl RpcLog {
    pub fn topics(&self) -> &[Bytes32] {
        &self.topics[..usize::from(self.topic_count)]
    }

    /// The object without its tail (`…,"removed":` is cut after the colon), to which a
    /// writer appends `false}` or `true}`.
    pub fn body_without_tail(&self) -> &[u8] {
        let keep = self.json.len() - (LOG_TAIL_LIVE.len() - b"\"removed\":".len());
        &self.json[..keep]
    }
}

/// Heap bytes of every [`RpcBlock`] alive in the process, wherever it is held (the tailer's
/// blocks awaiting later states, the shards' `fromBlock` history, session queues, a replay).
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Heap bytes of all JSON-RPC blocks alive now (`ringgate_rpc_block_bytes`).
pub fn live_block_bytes() -> u64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A block's share of [`live_block_bytes`]: added when the block is made or cloned,
/// subtracted when it is dropped, so the gauge is exact whoever holds the last `Arc`.
/// Bookkeeping, not part of the block's value: two blocks compare equal whatever it says.
#[derive(Debug)]
pub struct LiveBytes(u64);

impl LiveBytes {
    /// Counts the heap bytes of a block made of these parts.
    pub fn of(header: &[u8], logs: &[RpcLog], block_tail: &[u8]) -> LiveBytes {
        let logs_bytes: usize = logs
            .iter()
            .map(|l| std::mem::size_of::<RpcLog>() + l.json.len())
            .sum();
        LiveBytes::counting((header.len() + block_tail.len() + logs_bytes) as u64)
    }

    fn counting(bytes: u64) -> LiveBytes {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        LiveBytes(bytes)
    }

    pub fn bytes(&self) -> u64 {
        self.0
    }
}

impl Clone for LiveBytes {
    fn clone(&self) -> LiveBytes {
        LiveBytes::counting(self.0)
    }
}

impl Drop for LiveBytes {
    fn drop(&mut self) {
        LIVE_BYTES.fetch_sub(self.0, Ordering::Relaxed);
    }
}

impl PartialEq for LiveBytes {
    fn eq(&self, _: &LiveBytes) -> bool {
        true
    }
}

impl Eq for LiveBytes {}

/// One executed block, as JSON-RPC subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcBlock {
    pub number: u64,
    pub hash: Bytes32,
    /// Consensus block id (`blockId` of the `monad*` kinds).
    pub id: Bytes32,
    /// From BLOCK_START (`eth_chainId`), saturated to 64 bits.
    pub chain_id: u64,
    /// The `newHeads` result object.
    pub header: Box<[u8]>,
    /// The block's logs in block order (`logIndex` 0, 1, …).
    pub logs: Vec<RpcLog>,
    /// What turns [`RpcBlock::header`] into an `eth_getBlockByNumber(n, false)` block: it
    /// replaces the header's closing `}` (`,"uncles":[],"transactions":["0x…",…]}`).
    pub block_tail: Box<[u8]>,
    /// This block's heap bytes, counted in [`live_block_bytes`] while it lives.
    pub live: LiveBytes,
}

impl RpcBlock {
    /// The header without its closing `}`, to which [`RpcBlock::block_tail`] is appended.
    pub fn header_open(&self) -> &[u8] {
        &self.header[..self.header.len().saturating_sub(1)]
    }
}

/// A block reaching a commit state: what travels through the shards' queues.
#[derive(Debug, Clone)]
pub struct RpcFrame {
    pub server_seqno: u64,
    /// `Proposed`, `Voted`, `Finalized`, `Verified`, or `Abandoned` (the retraction).
    pub stage: CommitStage,
    /// For `Abandoned`: the highest state the block had reached before (subscriptions that
    /// were sent the block at a state up to this one get the retraction). Else `stage`.
    pub reached: CommitStage,
    /// Ring time of the event that made this state (BLOCK_END for `Proposed`), for latency.
    pub timestamp_ns: u64,
    pub block: Arc<RpcBlock>,
}

impl RpcFrame {
    /// Bytes this frame pins (the block is shared by its frames; counted in each).
    pub fn byte_len(&self) -> usize {
        self.block.header.len() + self.block.logs.iter().map(|l| l.json.len()).sum::<usize>()
    }
}
