//! Payload decoder: `(event_type, payload bytes)` → [`ExecEvent`], for all 25 exec types.
//!
//! Runs on the tailer core, once per event. Input is whatever the ring writer put there, so
//! nothing here may panic: every payload is length-checked first (fixed types: exact size;
//! types with trailing arrays: `payload_size == fixed + trailing lengths`, computed without
//! overflow), then read at constant offsets from a fixed-size array. Padding is never read.
//! Failures are typed ([`DecodeError`]) and counted by [`DecodeErrorKind`] by the caller.

use crate::ingest::event::payload::layout::{self as l, account, auth, block_start as bs};
use crate::ingest::event::payload::layout::{
    call_frame as cf, storage as st, txn_header_start as th,
};
use crate::ingest::event::payload::*;
use crate::model::kind::{DecodeErrorKind, EventType};

/// Why a payload could not be decoded. The event is counted and skipped, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Code 0 is never written by a real writer.
    #[error("ring event has type code 0 (NONE), which no writer emits")]
    NoneType,
    /// A code this schema does not define (a writer with another schema, or corruption).
    #[error("ring event has unknown type code {code} (the exec schema defines 0..25)")]
    UnknownType { code: u16 },
    /// Payload shorter than the type's fixed struct.
    #[error("{} payload is {got} bytes, shorter than its {need}-byte fixed part", event.spec_name())]
    Short {
        event: EventType,
        got: usize,
        need: usize,
    },
    /// Payload size disagrees with the fixed size plus the trailing lengths it announces.
    #[error("{} payload is {got} bytes, but its fixed part and trailing lengths make {expected}", event.spec_name())]
    LengthMismatch {
        event: EventType,
        got: usize,
        expected: u128,
    },
}

impl DecodeError {
    /// The failure class, for counters.
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            DecodeError::NoneType => DecodeErrorKind::NoneType,
            DecodeError::UnknownType { .. } => DecodeErrorKind::UnknownType,
            DecodeError::Short { .. } => DecodeErrorKind::Short,
            DecodeError::LengthMismatch { .. } => DecodeErrorKind::LengthMismatch,
        }
    }
}

/// Decode failures counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeFailures {
    counts: [u64; 4],
}

impl DecodeFailures {
    /// Counts one failure.
    pub fn record(&mut self, err: &DecodeError) {
        let i = err.kind() as usize;
        self.counts[i] = self.counts[i].saturating_add(1);
    }

    /// Failures of one kind so far.
    pub fn get(&self, kind: DecodeErrorKind) -> u64 {
        self.counts[kind as usize]
    }

    /// All failures so far.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(kind, count)` for every kind, including zeros.
    pub fn iter(&self) -> impl Iterator<Item = (DecodeErrorKind, u64)> + '_ {
        DecodeErrorKind::ALL.iter().map(|k| (*k, self.get(*k)))
    }
}

/// Constant-offset reads from a payload already checked to hold `N` bytes.
struct Fixed<'a, const N: usize>(&'a [u8; N]);

impl<const N: usize> Fixed<'_, N> {
    #[inline(always)]
    fn arr<const M: usize>(&self, off: usize) -> [u8; M] {
        let mut out = [0u8; M];
        out.copy_from_slice(&self.0[off..off + M]);
        out
    }
    #[inline(always)]
    fn u8(&self, off: usize) -> u8 {
        self.0[off]
    }
    #[inline(always)]
    fn bool(&self, off: usize) -> bool {
        self.0[off] != 0
    }
    #[inline(always)]
    fn u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn i32(&self, off: usize) -> i32 {
        i32::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn i64(&self, off: usize) -> i64 {
        i64::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn u128(&self, off: usize) -> u128 {
        u128::from_le_bytes(self.arr(off))
    }
    #[inline(always)]
    fn u256(&self, off: usize) -> U256 {
        U256(self.arr(off))
    }
    #[inline(always)]
    fn tag(&self, off: usize) -> BlockTag {
        BlockTag {
            id: self.arr(off),
            block_number: self.u64(off + 32),
        }
    }
}

/// The payload must be exactly `N` bytes.
#[inline(always)]
fn exact<const N: usize>(event: EventType, p: &[u8]) -> Result<Fixed<'_, N>, DecodeError> {
    match <&[u8; N]>::try_from(p) {
        Ok(a) => Ok(Fixed(a)),
        Err(_) if p.len() < N => Err(DecodeError::Short {
            event,
            got: p.len(),
            need: N,
        }),
        Err(_) => Err(DecodeError::LengthMismatch {
            event,
            got: p.len(),
            expected: N as u128,
        }),
    }
}

/// The payload must hold at least `N` bytes; returns the fixed part and the rest.
#[inline(always)]
fn prefix<const N: usize>(
    event: EventType,
    p: &[u8],
) -> Result<(Fixed<'_, N>, &[u8]), DecodeError> {
    match p.split_first_chunk::<N>() {
        Some((a, rest)) => Ok((Fixed(a), rest)),
        None => Err(DecodeError::Short {
            event,
            got: p.len(),
            need: N,
        }),
    }
}

/// Checks `rest.len() == sum(lens)` and splits `rest` into those pieces.
#[inline(always)]
fn split_trailing<const K: usize>(
    event: EventType,
    fixed: usize,
    rest: &[u8],
    lens: [u128; K],
) -> Result<[&[u8]; K], DecodeError> {
    let total: u128 = lens.iter().sum();
    if total != rest.len() as u128 {
        return Err(DecodeError::LengthMismatch {
            event,
            got: fixed + rest.len(),
            expected: fixed as u128 + total,
        });
    }
    let mut out: [&[u8]; K] = [&[]; K];
    let mut tail = rest;
    for (slot, len) in out.iter_mut().zip(lens) {
        // Each len is <= the total, which equals rest.len(), so it fits in usize.
        let (head, t) = tail.split_at(len as usize);
        *slot = head;
        tail = t;
    }
    Ok(out)
}

/// Decodes one payload. Never panics; see the module docs for the checks.
pub fn decode(event_type: u16, payload: &[u8]) -> Result<ExecEvent<'_>, DecodeError> {
    let ty =
        EventType::from_code(event_type).ok_or(DecodeError::UnknownType { code: event_type })?;
    let p = payload;
    Ok(match ty {
        EventType::None => return Err(DecodeError::NoneType),
        EventType::RecordError => record_error(p)?,
        EventType::BlockStart => {
            ExecEvent::BlockStart(block_start(exact::<{ l::BLOCK_START }>(ty, p)?))
        }
        EventType::BlockReject => {
            ExecEvent::BlockReject(exact::<{ l::BLOCK_REJECT }>(ty, p)?.u32(0))
        }
        EventType::BlockPerfEvmEnter => marker(ty, p, ExecEvent::BlockPerfEvmEnter)?,
        EventType::BlockPerfEvmExit => marker(ty, p, ExecEvent::BlockPerfEvmExit)?,
        EventType::BlockEnd => {
            let f = exact::<{ l::BLOCK_END }>(ty, p)?;
            ExecEvent::BlockEnd(BlockEnd {
                eth_block_hash: f.arr(0),
                state_root: f.arr(32),
                receipts_root: f.arr(64),
                logs_bloom: f.arr(96),
                gas_used: f.u64(352),
            })
        }
        EventType::BlockQc => {
            let f = exact::<{ l::BLOCK_QC }>(ty, p)?;
            ExecEvent::BlockQc(BlockQc {
                block_tag: f.tag(0),
                round: f.u64(40),
                epoch: f.u64(48),
            })
        }
        EventType::BlockFinalized => {
            ExecEvent::BlockFinalized(exact::<{ l::BLOCK_TAG }>(ty, p)?.tag(0))
        }
        EventType::BlockVerified => ExecEvent::BlockVerified {
            block_number: exact::<{ l::BLOCK_VERIFIED }>(ty, p)?.u64(0),
        },
        EventType::TxnHeaderStart => txn_header_start(ty, p)?,
        EventType::TxnAccessListEntry => {
            let (f, rest) = prefix::<{ l::TXN_ACCESS_LIST_ENTRY }>(ty, p)?;
            let [keys] = split_trailing(
                ty,
                l::TXN_ACCESS_LIST_ENTRY,
                rest,
                [32 * u128::from(f.u32(24))],
            )?;
            ExecEvent::TxnAccessListEntry(TxnAccessListEntry {
                index: f.u32(0),
                address: f.arr(4),
                storage_keys: keys,
            })
        }
        EventType::TxnAuthListEntry => {
            let f = exact::<{ l::TXN_AUTH_LIST_ENTRY }>(ty, p)?;
            ExecEvent::TxnAuthListEntry(TxnAuthListEntry {
                index: f.u32(auth::INDEX),
                chain_id: f.u256(auth::CHAIN_ID),
                address: f.arr(auth::ADDRESS),
                nonce: f.u64(auth::NONCE),
                y_parity: f.bool(auth::Y_PARITY),
                r: f.u256(auth::R),
                s: f.u256(auth::S),
                authority: f.arr(auth::AUTHORITY),
                is_valid_authority: f.bool(auth::IS_VALID),
            })
        }
        EventType::TxnHeaderEnd => marker(ty, p, ExecEvent::TxnHeaderEnd)?,
        EventType::TxnReject => ExecEvent::TxnReject(exact::<{ l::TXN_REJECT }>(ty, p)?.u32(0)),
        EventType::TxnPerfEvmEnter => marker(ty, p, ExecEvent::TxnPerfEvmEnter)?,
        EventType::TxnPerfEvmExit => marker(ty, p, ExecEvent::TxnPerfEvmExit)?,
        EventType::TxnEvmOutput => {
            let f = exact::<{ l::TXN_EVM_OUTPUT }>(ty, p)?;
            ExecEvent::TxnEvmOutput(TxnEvmOutput {
                status: f.bool(0),
                log_count: f.u32(4),
                gas_used: f.u64(8),
                call_frame_count: f.u32(16),
            })
        }
        EventType::TxnLog => {
            let (f, rest) = prefix::<{ l::TXN_LOG }>(ty, p)?;
            let lens = [32 * u128::from(f.u8(24)), u128::from(f.u32(28))];
            let [topics, data] = split_trailing(ty, l::TXN_LOG, rest, lens)?;
            ExecEvent::TxnLog(TxnLog {
                index: f.u32(0),
                address: f.arr(4),
                topics,
                data,
            })
        }
        EventType::TxnCallFrame => {
            let (f, rest) = prefix::<{ l::TXN_CALL_FRAME }>(ty, p)?;
            let lens = [
                u128::from(f.u64(cf::INPUT_LENGTH)),
                u128::from(f.u64(cf::RETURN_LENGTH)),
            ];
            let [input, output] = split_trailing(ty, l::TXN_CALL_FRAME, rest, lens)?;
            ExecEvent::TxnCallFrame(TxnCallFrame {
                index: f.u32(cf::INDEX),
                caller: f.arr(cf::CALLER),
                call_target: f.arr(cf::TARGET),
                opcode: f.u8(cf::OPCODE),
                value: f.u256(cf::VALUE),
                gas: f.u64(cf::GAS),
                gas_used: f.u64(cf::GAS_USED),
                evmc_status: f.i32(cf::STATUS),
                depth: f.u64(cf::DEPTH),
                input,
                output,
            })
        }
        EventType::TxnEnd => marker(ty, p, ExecEvent::TxnEnd)?,
        EventType::AccountAccessListHeader => {
            let f = exact::<{ l::ACCOUNT_ACCESS_LIST_HEADER }>(ty, p)?;
            ExecEvent::AccountAccessListHeader(AccountAccessListHeader {
                entry_count: f.u32(0),
                access_context: f.u8(4),
            })
        }
        EventType::AccountAccess => {
            let f = exact::<{ l::ACCOUNT_ACCESS }>(ty, p)?;
            ExecEvent::AccountAccess(AccountAccess {
                index: f.u32(account::INDEX),
                address: f.arr(account::ADDRESS),
                access_context: f.u8(account::CONTEXT),
                is_balance_modified: f.bool(account::BALANCE_MODIFIED),
                is_nonce_modified: f.bool(account::NONCE_MODIFIED),
                prestate: AccountState {
                    nonce: f.u64(account::PRE_NONCE),
                    balance: f.u256(account::PRE_BALANCE),
                    code_hash: f.arr(account::PRE_CODE_HASH),
                },
                modified_balance: f.u256(account::MODIFIED_BALANCE),
                modified_nonce: f.u64(account::MODIFIED_NONCE),
                storage_key_count: f.u32(account::STORAGE_KEY_COUNT),
                transient_count: f.u32(account::TRANSIENT_COUNT),
            })
        }
        EventType::StorageAccess => {
            let f = exact::<{ l::STORAGE_ACCESS }>(ty, p)?;
            ExecEvent::StorageAccess(StorageAccess {
                address: f.arr(st::ADDRESS),
                index: f.u32(st::INDEX),
                access_context: f.u8(st::CONTEXT),
                modified: f.bool(st::MODIFIED),
                transient: f.bool(st::TRANSIENT),
                key: f.arr(st::KEY),
                start_value: f.arr(st::START_VALUE),
                end_value: f.arr(st::END_VALUE),
            })
        }
        EventType::EvmError => {
            let f = exact::<{ l::EVM_ERROR }>(ty, p)?;
            ExecEvent::EvmError(EvmError {
                domain_id: f.u64(0),
                status_code: f.i64(8),
            })
        }
    })
}

/// Marker events carry no payload.
#[inline(always)]
fn marker<'a>(event: EventType, p: &[u8], ev: ExecEvent<'a>) -> Result<ExecEvent<'a>, DecodeError> {
    if p.is_empty() {
        Ok(ev)
    } else {
        Err(DecodeError::LengthMismatch {
            event,
            got: p.len(),
            expected: 0,
        })
    }
}

/// RECORD_ERROR: the 16-byte header alone, or followed by exactly `truncated_payload_size`
/// bytes of the dropped event (the 8192-byte overflow form).
fn record_error(p: &[u8]) -> Result<ExecEvent<'_>, DecodeError> {
    let ty = EventType::RecordError;
    let (f, rest) = prefix::<{ l::RECORD_ERROR }>(ty, p)?;
    let truncated_payload_size = f.u32(4);
    if !rest.is_empty() && rest.len() as u128 != u128::from(truncated_payload_size) {
        return Err(DecodeError::LengthMismatch {
            event: ty,
            got: p.len(),
            expected: l::RECORD_ERROR as u128 + u128::from(truncated_payload_size),
        });
    }
    Ok(ExecEvent::RecordError(RecordError {
        error_type: f.u16(0),
        dropped_event_type: f.u16(2),
        truncated_payload_size,
        requested_payload_size: f.u64(8),
        truncated: rest,
    }))
}

fn block_start(f: Fixed<'_, { l::BLOCK_START }>) -> BlockStart {
    BlockStart {
        block_tag: BlockTag {
            id: f.arr(bs::ID),
            block_number: f.u64(bs::NUMBER),
        },
        round: f.u64(bs::ROUND),
        epoch: f.u64(bs::EPOCH),
        proposal_epoch_nanos: f.u128(bs::PROPOSAL_NANOS),
        chain_id: f.u256(bs::CHAIN_ID),
        author: f.arr(bs::AUTHOR),
        parent_eth_hash: f.arr(bs::PARENT_ETH_HASH),
        eth_block_input: EthBlockInput {
            ommers_hash: f.arr(bs::OMMERS_HASH),
            beneficiary: f.arr(bs::BENEFICIARY),
            transactions_root: f.arr(bs::TRANSACTIONS_ROOT),
            difficulty: f.u64(bs::DIFFICULTY),
            number: f.u64(bs::ETH_NUMBER),
            gas_limit: f.u64(bs::GAS_LIMIT),
            timestamp: f.u64(bs::TIMESTAMP),
            extra_data: f.arr(bs::EXTRA_DATA),
            extra_data_length: f.u64(bs::EXTRA_DATA_LENGTH),
            prev_randao: f.arr(bs::PREV_RANDAO),
            nonce: f.arr(bs::NONCE),
            base_fee_per_gas: f.u256(bs::BASE_FEE),
            withdrawals_root: f.arr(bs::WITHDRAWALS_ROOT),
            txn_count: f.u64(bs::TXN_COUNT),
        },
        monad_block_input: MonadBlockInput {
            base_fee_trend: f.u256(bs::BASE_FEE_TREND),
            base_fee_moment: f.u256(bs::BASE_FEE_MOMENT),
        },
    }
}

fn txn_header_start(ty: EventType, p: &[u8]) -> Result<ExecEvent<'_>, DecodeError> {
    let (f, rest) = prefix::<{ l::TXN_HEADER_START }>(ty, p)?;
    let lens = [
        u128::from(f.u32(th::DATA_LENGTH)),
        32 * u128::from(f.u32(th::BLOB_COUNT)),
    ];
    let [data, blob_versioned_hashes] = split_trailing(ty, l::TXN_HEADER_START, rest, lens)?;
    Ok(ExecEvent::TxnHeaderStart(TxnHeaderStart {
        txn_hash: f.arr(th::TXN_HASH),
        sender: f.arr(th::SENDER),
        txn_header: TxnHeader {
            txn_type: f.u8(th::TXN_TYPE),
            chain_id: f.u256(th::CHAIN_ID),
            nonce: f.u64(th::NONCE),
            gas_limit: f.u64(th::GAS_LIMIT),
            max_fee_per_gas: f.u256(th::MAX_FEE),
            max_priority_fee_per_gas: f.u256(th::MAX_PRIORITY_FEE),
            value: f.u256(th::VALUE),
            to: f.arr(th::TO),
            is_contract_creation: f.bool(th::IS_CREATE),
            r: f.u256(th::R),
            s: f.u256(th::S),
            y_parity: f.bool(th::Y_PARITY),
            max_fee_per_blob_gas: f.u256(th::MAX_FEE_PER_BLOB_GAS),
            access_list_count: f.u32(th::ACCESS_LIST_COUNT),
            auth_list_count: f.u32(th::AUTH_LIST_COUNT),
        },
        data,
        blob_versioned_hashes,
    }))
}
