//! Typed views of the 25 exec event payloads (docs/ring-format.md#s3-3), with every
//! field the writer records.
//!
//! Runs on the tailer core (decoding) and in the synthetic writer (building). Pure data:
//! fixed-size fields are copied out of the ring (a few dozen bytes per event), variable-length
//! trailing arrays are borrowed (`&'a [u8]`) from the payload and never copied here.
//!
//! Invariants: a value of these types never holds padding bytes; trailing-array lengths are
//! the slice lengths (the payload's length fields are derived from them when building, and
//! checked against the payload size when decoding).

use crate::model::kind::EventType;
pub use crate::model::types::{Address, Bytes32};

/// `uint256_ne`: 32 bytes, little-endian (four native u64 limbs, limb 0 least significant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256(pub [u8; 32]);

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256([0; 32]);

    /// A value that fits in 64 bits.
    pub fn from_u64(v: u64) -> U256 {
        U256::from_u128(u128::from(v))
    }

    /// A value that fits in 128 bits.
    pub fn from_u128(v: u128) -> U256 {
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&v.to_le_bytes());
        U256(b)
    }

    /// Whether every bit is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }
}

/// `monad_exec_block_tag`: which proposal (consensus id) and the number it would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockTag {
    /// Consensus block id, unique per proposal.
    pub id: Bytes32,
    pub block_number: u64,
}

/// RECORD_ERROR: the writer could not record an event. The 16-byte form carries the header
/// only; the 8192-byte overflow form also carries the dropped event's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordError<'a> {
    /// 0 NONE, 1 OVERFLOW_4GB, 2 OVERFLOW_EXPIRE, 3 MISSING_EVENT.
    pub error_type: u16,
    /// Event type code of the dropped event.
    pub dropped_event_type: u16,
    /// Bytes of the dropped payload kept in `truncated` (8176 in the overflow form).
    pub truncated_payload_size: u32,
    /// Size the dropped payload would have had.
    pub requested_payload_size: u64,
    /// The dropped event's fixed struct and the start of its trailing arrays; empty in the
    /// 16-byte form.
    pub truncated: &'a [u8],
}

/// `monad_c_eth_block_input`: the Ethereum header fields known before execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthBlockInput {
    pub ommers_hash: Bytes32,
    pub beneficiary: Address,
    pub transactions_root: Bytes32,
    pub difficulty: u64,
    pub number: u64,
    pub gas_limit: u64,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Zero-filled past `extra_data_length`.
    pub extra_data: [u8; 32],
    pub extra_data_length: u64,
    pub prev_randao: Bytes32,
    /// The PoW nonce, 8 raw bytes.
    pub nonce: [u8; 8],
    pub base_fee_per_gas: U256,
    pub withdrawals_root: Bytes32,
    /// Number of transactions in the block.
    pub txn_count: u64,
}

impl EthBlockInput {
    /// The meaningful part of `extra_data` (length clamped to the 32 stored bytes).
    pub fn extra_data(&self) -> &[u8] {
        let n = usize::try_from(self.extra_data_length).unwrap_or(usize::MAX);
        &self.extra_data[..n.min(32)]
    }
}

/// `monad_c_monad_block_input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonadBlockInput {
    pub base_fee_trend: U256,
    pub base_fee_moment: U256,
}

/// BLOCK_START: a proposal starts executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStart {
    pub block_tag: BlockTag,
    /// Consensus round of the proposal.
    pub round: u64,
    pub epoch: u64,
    /// Consensus header timestamp, ns since the Unix epoch.
    pub proposal_epoch_nanos: u128,
    pub chain_id: U256,
    /// Compressed secp256k1 author key: the y-parity byte then x (33 bytes).
    pub author: [u8; 33],
    pub parent_eth_hash: Bytes32,
    pub eth_block_input: EthBlockInput,
    pub monad_block_input: MonadBlockInput,
}

/// BLOCK_END: execution outputs of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnd {
    pub eth_block_hash: Bytes32,
    pub state_root: Bytes32,
    pub receipts_root: Bytes32,
    pub logs_bloom: [u8; 256],
    /// Gas used by the whole block.
    pub gas_used: u64,
}

/// BLOCK_QC: a quorum certificate for the tagged proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockQc {
    pub block_tag: BlockTag,
    /// Round of the vote.
    pub round: u64,
    pub epoch: u64,
}

/// `monad_c_eth_txn_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    /// 0 legacy, 1 EIP-2930, 2 EIP-1559, 3 EIP-4844, 4 EIP-7702.
    pub txn_type: u8,
    pub chain_id: U256,
    pub nonce: u64,
    pub gas_limit: u64,
    /// `gasPrice` for legacy transactions.
    pub max_fee_per_gas: U256,
    pub max_priority_fee_per_gas: U256,
    pub value: U256,
    pub to: Address,
    pub is_contract_creation: bool,
    pub r: U256,
    pub s: U256,
    pub y_parity: bool,
    pub max_fee_per_blob_gas: U256,
    /// Number of TXN_ACCESS_LIST_ENTRY events that follow.
    pub access_list_count: u32,
    /// Number of TXN_AUTH_LIST_ENTRY events that follow.
    pub auth_list_count: u32,
}

/// TXN_HEADER_START: a transaction's header, calldata and blob hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeaderStart<'a> {
    pub txn_hash: Bytes32,
    /// Recovered sender.
    pub sender: Address,
    pub txn_header: TxnHeader,
    /// Calldata (`input`).
    pub data: &'a [u8],
    /// Blob versioned hashes, 32 bytes each.
    pub blob_versioned_hashes: &'a [u8],
}

/// TXN_ACCESS_LIST_ENTRY: one EIP-2930 access list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnAccessListEntry<'a> {
    pub index: u32,
    pub address: Address,
    /// Storage keys, 32 bytes each.
    pub storage_keys: &'a [u8],
}

/// TXN_AUTH_LIST_ENTRY: one EIP-7702 authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnAuthListEntry {
    pub index: u32,
    pub chain_id: U256,
    /// The delegation target.
    pub address: Address,
    pub nonce: u64,
    pub y_parity: bool,
    pub r: U256,
    pub s: U256,
    /// Recovered signer of the authorization.
    pub authority: Address,
    pub is_valid_authority: bool,
}

/// TXN_EVM_OUTPUT: the receipt summary; announces the LOG and CALL_FRAME counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnEvmOutput {
    pub status: bool,
    pub log_count: u32,
    /// Gas used by this transaction only (not cumulative).
    pub gas_used: u64,
    pub call_frame_count: u32,
}

/// TXN_LOG: one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnLog<'a> {
    /// Log index within the transaction.
    pub index: u32,
    pub address: Address,
    /// Topics, 32 bytes each, in position order.
    pub topics: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> TxnLog<'a> {
    /// The topics, in position order.
    pub fn topics(&self) -> impl Iterator<Item = &'a [u8]> {
        self.topics.chunks_exact(32)
    }
}

/// TXN_CALL_FRAME: one call frame of the transaction's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnCallFrame<'a> {
    /// Frame index within the transaction.
    pub index: u32,
    pub caller: Address,
    /// Callee, or the deployed address for CREATE/CREATE2.
    pub call_target: Address,
    /// F1 CALL, FA STATICCALL, F2 CALLCODE, F4 DELEGATECALL, F0 CREATE, F5 CREATE2,
    /// FF SELFDESTRUCT.
    pub opcode: u8,
    pub value: U256,
    pub gas: u64,
    pub gas_used: u64,
    /// evmc status code: 0 success, 1 failure, 2 revert, …
    pub evmc_status: i32,
    /// Call depth (0 = the transaction's top frame).
    pub depth: u64,
    pub input: &'a [u8],
    /// Return data.
    pub output: &'a [u8],
}

/// ACCOUNT_ACCESS_LIST_HEADER: announces `entry_count` ACCOUNT_ACCESS events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountAccessListHeader {
    pub entry_count: u32,
    /// 0 block prologue, 1 transaction, 2 block epilogue.
    pub access_context: u8,
}

/// `monad_c_account_state` before the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: Bytes32,
}

/// ACCOUNT_ACCESS: one account touched; followed by its STORAGE_ACCESS events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountAccess {
    pub index: u32,
    pub address: Address,
    pub access_context: u8,
    pub is_balance_modified: bool,
    pub is_nonce_modified: bool,
    pub prestate: AccountState,
    pub modified_balance: U256,
    pub modified_nonce: u64,
    /// Regular storage accesses that follow.
    pub storage_key_count: u32,
    /// Transient storage accesses that follow the regular ones.
    pub transient_count: u32,
}

/// STORAGE_ACCESS: one storage slot read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageAccess {
    /// The contract whose storage this is.
    pub address: Address,
    pub index: u32,
    pub access_context: u8,
    /// Written (`end_value` meaningful) rather than only read.
    pub modified: bool,
    /// Transient (EIP-1153) storage.
    pub transient: bool,
    pub key: Bytes32,
    pub start_value: Bytes32,
    pub end_value: Bytes32,
}

/// EVM_ERROR: an error from a domain other than block or transaction validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvmError {
    /// Boost.Outcome domain id.
    pub domain_id: u64,
    pub status_code: i64,
}

/// One decoded exec event. Variable-length parts borrow the payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecEvent<'a> {
    RecordError(RecordError<'a>),
    BlockStart(BlockStart),
    /// `BlockError` code.
    BlockReject(u32),
    BlockPerfEvmEnter,
    BlockPerfEvmExit,
    BlockEnd(BlockEnd),
    BlockQc(BlockQc),
    BlockFinalized(BlockTag),
    BlockVerified {
        block_number: u64,
    },
    TxnHeaderStart(TxnHeaderStart<'a>),
    TxnAccessListEntry(TxnAccessListEntry<'a>),
    TxnAuthListEntry(TxnAuthListEntry),
    TxnHeaderEnd,
    /// `TransactionError` code.
    TxnReject(u32),
    TxnPerfEvmEnter,
    TxnPerfEvmExit,
    TxnEvmOutput(TxnEvmOutput),
    TxnLog(TxnLog<'a>),
    TxnCallFrame(TxnCallFrame<'a>),
    TxnEnd,
    AccountAccessListHeader(AccountAccessListHeader),
    AccountAccess(AccountAccess),
    StorageAccess(StorageAccess),
    EvmError(EvmError),
}

impl ExecEvent<'_> {
    /// The ring type code this event is recorded under.
    pub fn event_type(&self) -> EventType {
        match self {
            ExecEvent::RecordError(_) => EventType::RecordError,
            ExecEvent::BlockStart(_) => EventType::BlockStart,
            ExecEvent::BlockReject(_) => EventType::BlockReject,
            ExecEvent::BlockPerfEvmEnter => EventType::BlockPerfEvmEnter,
            ExecEvent::BlockPerfEvmExit => EventType::BlockPerfEvmExit,
            ExecEvent::BlockEnd(_) => EventType::BlockEnd,
            ExecEvent::BlockQc(_) => EventType::BlockQc,
            ExecEvent::BlockFinalized(_) => EventType::BlockFinalized,
            ExecEvent::BlockVerified { .. } => EventType::BlockVerified,
            ExecEvent::TxnHeaderStart(_) => EventType::TxnHeaderStart,
            ExecEvent::TxnAccessListEntry(_) => EventType::TxnAccessListEntry,
            ExecEvent::TxnAuthListEntry(_) => EventType::TxnAuthListEntry,
            ExecEvent::TxnHeaderEnd => EventType::TxnHeaderEnd,
            ExecEvent::TxnReject(_) => EventType::TxnReject,
            ExecEvent::TxnPerfEvmEnter => EventType::TxnPerfEvmEnter,
            ExecEvent::TxnPerfEvmExit => EventType::TxnPerfEvmExit,
            ExecEvent::TxnEvmOutput(_) => EventType::TxnEvmOutput,
            ExecEvent::TxnLog(_) => EventType::TxnLog,
            ExecEvent::TxnCallFrame(_) => EventType::TxnCallFrame,
            ExecEvent::TxnEnd => EventType::TxnEnd,
            ExecEvent::AccountAccessListHeader(_) => EventType::AccountAccessListHeader,
            ExecEvent::AccountAccess(_) => EventType::AccountAccess,
            ExecEvent::StorageAccess(_) => EventType::StorageAccess,
            ExecEvent::EvmError(_) => EventType::EvmError,
        }
    }
}

/// Fixed payload sizes (bytes) and the offsets decode and build share. Offsets are from the
/// start of the payload; nested structs give absolute offsets.
pub mod layout {
    pub const RECORD_ERROR: usize = 16;
    /// Size of the RECORD_ERROR overflow form (16-byte header + 8176 truncated bytes).
    pub const RECORD_ERROR_TRUNCATED: usize = 8192;
    pub const BLOCK_START: usize = 528;
    pub const BLOCK_REJECT: usize = 4;
    pub const BLOCK_END: usize = 360;
    pub const BLOCK_QC: usize = 56;
    pub const BLOCK_TAG: usize = 40;
    pub const BLOCK_VERIFIED: usize = 8;
    pub const TXN_HEADER_START: usize = 352;
    pub const TXN_ACCESS_LIST_ENTRY: usize = 28;
    pub const TXN_AUTH_LIST_ENTRY: usize = 168;
    pub const TXN_REJECT: usize = 4;
    pub const TXN_EVM_OUTPUT: usize = 24;
    pub const TXN_LOG: usize = 32;
    pub const TXN_CALL_FRAME: usize = 128;
    pub const ACCOUNT_ACCESS_LIST_HEADER: usize = 8;
    pub const ACCOUNT_ACCESS: usize = 152;
    pub const STORAGE_ACCESS: usize = 124;
    pub const EVM_ERROR: usize = 16;

    /// BLOCK_START (absolute offsets).
    pub mod block_start {
        pub const ID: usize = 0;
        pub const NUMBER: usize = 32;
        pub const ROUND: usize = 40;
        pub const EPOCH: usize = 48;
        pub const PROPOSAL_NANOS: usize = 64;
        pub const CHAIN_ID: usize = 80;
        pub const AUTHOR: usize = 112;
        pub const PARENT_ETH_HASH: usize = 145;
        const E: usize = 184;
        pub const OMMERS_HASH: usize = E;
        pub const BENEFICIARY: usize = E + 32;
        pub const TRANSACTIONS_ROOT: usize = E + 52;
        pub const DIFFICULTY: usize = E + 88;
        pub const ETH_NUMBER: usize = E + 96;
        pub const GAS_LIMIT: usize = E + 104;
        pub const TIMESTAMP: usize = E + 112;
        pub const EXTRA_DATA: usize = E + 120;
        pub const EXTRA_DATA_LENGTH: usize = E + 152;
        pub const PREV_RANDAO: usize = E + 160;
        pub const NONCE: usize = E + 192;
        pub const BASE_FEE: usize = E + 200;
        pub const WITHDRAWALS_ROOT: usize = E + 232;
        pub const TXN_COUNT: usize = E + 264;
        pub const BASE_FEE_TREND: usize = 456;
        pub const BASE_FEE_MOMENT: usize = 488;
    }

    /// The block tag that starts BLOCK_QC and is all of BLOCK_FINALIZED.
    pub mod block_tag {
        pub const ID: usize = 0;
        pub const NUMBER: usize = 32;
    }

    /// BLOCK_VERIFIED.
    pub mod block_verified {
        pub const NUMBER: usize = 0;
    }

    /// TXN_HEADER_START (absolute offsets).
    pub mod txn_header_start {
        pub const TXN_HASH: usize = 0;
        pub const SENDER: usize = 32;
        const H: usize = 56;
        pub const TXN_TYPE: usize = H;
        pub const CHAIN_ID: usize = H + 8;
        pub const NONCE: usize = H + 40;
        pub const GAS_LIMIT: usize = H + 48;
        pub const MAX_FEE: usize = H + 56;
        pub const MAX_PRIORITY_FEE: usize = H + 88;
        pub const VALUE: usize = H + 120;
        pub const TO: usize = H + 152;
        pub const IS_CREATE: usize = H + 172;
        pub const R: usize = H + 176;
        pub const S: usize = H + 208;
        pub const Y_PARITY: usize = H + 240;
        pub const MAX_FEE_PER_BLOB_GAS: usize = H + 248;
        pub const DATA_LENGTH: usize = H + 280;
        pub const BLOB_COUNT: usize = H + 284;
        pub const ACCESS_LIST_COUNT: usize = H + 288;
        pub const AUTH_LIST_COUNT: usize = H + 292;
    }

    /// TXN_AUTH_LIST_ENTRY.
    pub mod auth {
        pub const INDEX: usize = 0;
        pub const CHAIN_ID: usize = 8;
        pub const ADDRESS: usize = 40;
        pub const NONCE: usize = 64;
        pub const Y_PARITY: usize = 72;
        pub const R: usize = 80;
        pub const S: usize = 112;
        pub const AUTHORITY: usize = 144;
        pub const IS_VALID: usize = 164;
    }

    /// TXN_CALL_FRAME.
    pub mod call_frame {
        pub const INDEX: usize = 0;
        pub const CALLER: usize = 4;
        pub const TARGET: usize = 24;
        pub const OPCODE: usize = 44;
        pub const VALUE: usize = 48;
        pub const GAS: usize = 80;
        pub const GAS_USED: usize = 88;
        pub const STATUS: usize = 96;
        pub const DEPTH: usize = 104;
        pub const INPUT_LENGTH: usize = 112;
        pub const RETURN_LENGTH: usize = 120;
    }

    /// ACCOUNT_ACCESS.
    pub mod account {
        pub const INDEX: usize = 0;
        pub const ADDRESS: usize = 4;
        pub const CONTEXT: usize = 24;
        pub const BALANCE_MODIFIED: usize = 25;
        pub const NONCE_MODIFIED: usize = 26;
        pub const PRE_NONCE: usize = 32;
        pub const PRE_BALANCE: usize = 40;
        pub const PRE_CODE_HASH: usize = 72;
        pub const MODIFIED_BALANCE: usize = 104;
        pub const MODIFIED_NONCE: usize = 136;
        pub const STORAGE_KEY_COUNT: usize = 144;
        pub const TRANSIENT_COUNT: usize = 148;
    }

    /// STORAGE_ACCESS.
    pub mod storage {
        pub const ADDRESS: usize = 0;
        pub const INDEX: usize = 20;
        pub const CONTEXT: usize = 24;
        pub const MODIFIED: usize = 25;
        pub const TRANSIENT: usize = 26;
        pub const KEY: usize = 27;
        pub const START_VALUE: usize = 59;
        pub const END_VALUE: usize = 91;
    }
}

#[cfg(test)]
mod tests {
    use super::layout;

    #[test]
    fn the_ring_writer_uses_the_decoders_record_error_overflow_size() {
        assert_eq!(
            crate::ingest::ring::writer::RECORD_ERROR_OVERFLOW_SIZE,
            layout::RECORD_ERROR_TRUNCATED
        );
    }
}
