//! The facts the chain modules need, as plain values: the narrow input of [`crate::ingest::chain`].
//!
//! The tailer's glue maps each decoded ring event that matters to one [`ChainInput`]; events
//! that do not matter (logs, call frames, …) map to nothing. Runs on the tailer core.
//! Nothing here refers to the ring or the decoder, so the chain modules can be driven by
//! hand-written sequences in tests.
//!
//! Conventions:
//! - `block_seqno` is the ring seqno of the owning BLOCK_START (flow tag `content_ext[0]`),
//!   the key that ties in-block events to their proposal; never 0 for in-block events.
//! - `timestamp_ns` is the event's ring `record_epoch_nanos` (when this node recorded it).
//! - `txn_idx` is the transaction index (flow tag `content_ext[1] - 1`), `None` for block
//!   scope (prologue/epilogue accesses).

/// A consensus block id (`block_tag.id`), raw.
pub type BlockId = [u8; 32];

/// One decoded fact for the chain tracker, gate and analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainInput {
    /// BLOCK_START: a proposal begins executing.
    BlockStart {
        block_seqno: u64,
        id: BlockId,
        number: u64,
        /// Ethereum hash of the parent block: the `eth_block_hash` of the parent's
        /// BLOCK_END. The tracker follows it to tell a finalized block's ancestors from
        /// the proposals it leaves behind.
        parent_eth_hash: [u8; 32],
        /// `eth_block_input.txn_count`: transactions the block carries.
        txn_count: u64,
        /// Chain time of the block in ns: `proposal_epoch_nanos` when non-zero, else
        /// `eth_block_input.timestamp` × 10^9 (Ethereum replay mode has no consensus clock).
        /// TPS is measured on this clock.
        block_time_ns: u64,
        timestamp_ns: u64,
    },
    /// BLOCK_END: execution of the proposal finished.
    BlockEnd {
        block_seqno: u64,
        gas_used: u64,
        eth_block_hash: [u8; 32],
        timestamp_ns: u64,
    },
    /// BLOCK_REJECT: execution refused the proposal.
    BlockReject { block_seqno: u64, timestamp_ns: u64 },
    /// EVM_ERROR in block scope (`txn_idx` absent): the block failed in execution.
    BlockEvmError { block_seqno: u64, timestamp_ns: u64 },
    /// BLOCK_QC: the proposal `id` got a quorum certificate.
    Qc {
        id: BlockId,
        number: u64,
        timestamp_ns: u64,
    },
    /// BLOCK_FINALIZED: `id` is final at `number`; every other proposal at `number` is dead.
    Finalized {
        id: BlockId,
        number: u64,
        timestamp_ns: u64,
    },
    /// BLOCK_VERIFIED: the finalized block at `number` has its execution outputs verified.
    Verified { number: u64, timestamp_ns: u64 },
    /// TXN_HEADER_START: a transaction of the block (counted for contention).
    TxnHeaderStart {
        block_seqno: u64,
        txn_idx: u32,
        timestamp_ns: u64,
    },
    /// TXN_PERF_EVM_ENTER: the EVM starts executing the transaction.
    TxnPerfEnter {
        block_seqno: u64,
        txn_idx: u32,
        timestamp_ns: u64,
    },
    /// TXN_PERF_EVM_EXIT: the EVM finished the transaction.
    TxnPerfExit {
        block_seqno: u64,
        txn_idx: u32,
        timestamp_ns: u64,
    },
    /// ACCOUNT_ACCESS: an account touched in the block (for top accesses).
    AccountAccess {
        block_seqno: u64,
        txn_idx: Option<u32>,
        address: [u8; 20],
        timestamp_ns: u64,
    },
    /// STORAGE_ACCESS: a storage slot read, or written when `modified`.
    StorageAccess {
        block_seqno: u64,
        txn_idx: Option<u32>,
        address: [u8; 20],
        key: [u8; 32],
        modified: bool,
        /// Transient storage (EIP-1153): scoped to one transaction, so never contended and
        /// not a storage slot; ignored by analytics.
        transient: bool,
        timestamp_ns: u64,
    },
}

impl ChainInput {
    /// The ring timestamp of the event.
    pub fn timestamp_ns(&self) -> u64 {
        match *self {
            ChainInput::BlockStart { timestamp_ns, .. }
            | ChainInput::BlockEnd { timestamp_ns, .. }
            | ChainInput::BlockReject { timestamp_ns, .. }
            | ChainInput::BlockEvmError { timestamp_ns, .. }
            | ChainInput::Qc { timestamp_ns, .. }
            | ChainInput::Finalized { timestamp_ns, .. }
            | ChainInput::Verified { timestamp_ns, .. }
            | ChainInput::TxnHeaderStart { timestamp_ns, .. }
            | ChainInput::TxnPerfEnter { timestamp_ns, .. }
            | ChainInput::TxnPerfExit { timestamp_ns, .. }
            | ChainInput::AccountAccess { timestamp_ns, .. }
            | ChainInput::StorageAccess { timestamp_ns, .. } => timestamp_ns,
        }
    }
}
