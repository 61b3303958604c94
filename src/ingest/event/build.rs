//! Payload builder: [`ExecEvent`] → the exact bytes the Monad writer records, the inverse of
//! [`decode`](crate::ingest::event::decode::decode) (`decode(t, build(x)) == x`).
//!
//! Used by the synthetic chain generator and by tests; runs on whatever thread writes a ring.
//! Output follows docs/ring-format.md#s7-5: exact sizes, every padding byte zero, trailing arrays in order,
//! length fields derived from the slice lengths (so they always agree).

use crate::ingest::event::payload::layout::{self as l, account, auth, block_start as bs};
use crate::ingest::event::payload::layout::{
    call_frame as cf, storage as st, txn_header_start as th,
};
use crate::ingest::event::payload::*;

/// Why an event value cannot be laid out as a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A trailing array is longer than its length field can express.
    #[error("{field} is too long for its length field")]
    TooLong { field: &'static str },
    /// An array of 32-byte items whose byte length is not a multiple of 32.
    #[error("{field} is {len} bytes, not a multiple of 32")]
    NotMultipleOf32 { field: &'static str, len: usize },
}

/// Writes into a zeroed fixed-size region.
struct Put<'a>(&'a mut [u8]);

impl Put<'_> {
    fn bytes(&mut self, off: usize, b: &[u8]) {
        self.0[off..off + b.len()].copy_from_slice(b);
    }
    fn u8(&mut self, off: usize, v: u8) {
        self.0[off] = v;
    }
    fn bool(&mut self, off: usize, v: bool) {
        self.0[off] = u8::from(v);
    }
    fn u16(&mut self, off: usize, v: u16) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn u32(&mut self, off: usize, v: u32) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn i32(&mut self, off: usize, v: i32) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn i64(&mut self, off: usize, v: i64) {
        self.bytes(off, &v.to_le_bytes());
    }
    fn u256(&mut self, off: usize, v: &U256) {
        self.bytes(off, &v.0);
    }
    fn tag(&mut self, off: usize, t: &BlockTag) {
        self.bytes(off, &t.id);
        self.u64(off + 32, t.block_number);
    }
}

fn len_u32(field: &'static str, n: usize) -> Result<u32, BuildError> {
    u32::try_from(n).map_err(|_| BuildError::TooLong { field })
}

fn count32(field: &'static str, b: &[u8]) -> Result<usize, BuildError> {
    if b.len().is_multiple_of(32) {
        Ok(b.len() / 32)
    } else {
        Err(BuildError::NotMultipleOf32 {
            field,
            len: b.len(),
        })
    }
}

/// Appends a zeroed `n`-byte fixed region to `out` and fills it with `f`.
fn fixed(out: &mut Vec<u8>, n: usize, f: impl FnOnce(&mut Put<'_>)) {
    let start = out.len();
    out.resize(start + n, 0);
    f(&mut Put(&mut out[start..]));
}

/// Appends the payload bytes of `event` to `out` (type code: `event.event_type()`).
pub fn build(event: &ExecEvent<'_>, out: &mut Vec<u8>) -> Result<(), BuildError> {
    match event {
        ExecEvent::RecordError(e) => {
            fixed(out, l::RECORD_ERROR, |w| {
                w.u16(0, e.error_type);
                w.u16(2, e.dropped_event_type);
                w.u32(4, e.truncated_payload_size);
                w.u64(8, e.requested_payload_size);
            });
            out.extend_from_slice(e.truncated);
        }
        ExecEvent::BlockStart(b) => fixed(out, l::BLOCK_START, |w| block_start(w, b)),
        ExecEvent::BlockReject(code) | ExecEvent::TxnReject(code) => {
            fixed(out, 4, |w| w.u32(0, *code))
        }
        ExecEvent::BlockPerfEvmEnter
        | ExecEvent::BlockPerfEvmExit
        | ExecEvent::TxnHeaderEnd
        | ExecEvent::TxnPerfEvmEnter
        | ExecEvent::TxnPerfEvmExit
        | ExecEvent::TxnEnd => {}
        ExecEvent::BlockEnd(e) => fixed(out, l::BLOCK_END, |w| {
            w.bytes(0, &e.eth_block_hash);
            w.bytes(32, &e.state_root);
            w.bytes(64, &e.receipts_root);
            w.bytes(96, &e.logs_bloom);
            w.u64(352, e.gas_used);
        }),
        ExecEvent::BlockQc(q) => fixed(out, l::BLOCK_QC, |w| {
            w.tag(0, &q.block_tag);
            w.u64(40, q.round);
            w.u64(48, q.epoch);
        }),
        ExecEvent::BlockFinalized(t) => fixed(out, l::BLOCK_TAG, |w| w.tag(0, t)),
        ExecEvent::BlockVerified { block_number } => {
            fixed(out, l::BLOCK_VERIFIED, |w| w.u64(0, *block_number))
        }
        ExecEvent::TxnHeaderStart(t) => {
            let data_len = len_u32("data", t.data.len())?;
            let blobs = len_u32(
                "blob_versioned_hashes",
                count32("blob_versioned_hashes", t.blob_versioned_hashes)?,
            )?;
            fixed(out, l::TXN_HEADER_START, |w| {
                txn_header_start(w, t, data_len, blobs)
            });
            out.extend_from_slice(t.data);
            out.extend_from_slice(t.blob_versioned_hashes);
        }
        ExecEvent::TxnAccessListEntry(e) => {
            let keys = len_u32("storage_keys", count32("storage_keys", e.storage_keys)?)?;
            fixed(out, l::TXN_ACCESS_LIST_ENTRY, |w| {
                w.u32(0, e.index);
                w.bytes(4, &e.address);
                w.u32(24, keys);
            });
            out.extend_from_slice(e.storage_keys);
        }
        ExecEvent::TxnAuthListEntry(a) => fixed(out, l::TXN_AUTH_LIST_ENTRY, |w| {
            w.u32(auth::INDEX, a.index);
            w.u256(auth::CHAIN_ID, &a.chain_id);
            w.bytes(auth::ADDRESS, &a.address);
            w.u64(auth::NONCE, a.nonce);
            w.bool(auth::Y_PARITY, a.y_parity);
            w.u256(auth::R, &a.r);
            w.u256(auth::S, &a.s);
            w.bytes(auth::AUTHORITY, &a.authority);
            w.bool(auth::IS_VALID, a.is_valid_authority);
        }),
        ExecEvent::TxnEvmOutput(o) => fixed(out, l::TXN_EVM_OUTPUT, |w| {
            w.bool(0, o.status);
            w.u32(4, o.log_count);
            w.u64(8, o.gas_used);
            w.u32(16, o.call_frame_count);
        }),
        ExecEvent::TxnLog(g) => {
            let topics = u8::try_from(count32("topics", g.topics)?)
                .map_err(|_| BuildError::TooLong { field: "topics" })?;
            let data_len = len_u32("data", g.data.len())?;
            fixed(out, l::TXN_LOG, |w| {
                w.u32(0, g.index);
                w.bytes(4, &g.address);
                w.u8(24, topics);
                w.u32(28, data_len);
            });
            out.extend_from_slice(g.topics);
            out.extend_from_slice(g.data);
        }
        ExecEvent::TxnCallFrame(c) => {
            fixed(out, l::TXN_CALL_FRAME, |w| {
                w.u32(cf::INDEX, c.index);
                w.bytes(cf::CALLER, &c.caller);
                w.bytes(cf::TARGET, &c.call_target);
                w.u8(cf::OPCODE, c.opcode);
                w.u256(cf::VALUE, &c.value);
                w.u64(cf::GAS, c.gas);
                w.u64(cf::GAS_USED, c.gas_used);
                w.i32(cf::STATUS, c.evmc_status);
                w.u64(cf::DEPTH, c.depth);
                w.u64(cf::INPUT_LENGTH, c.input.len() as u64);
                w.u64(cf::RETURN_LENGTH, c.output.len() as u64);
            });
            out.extend_from_slice(c.input);
            out.extend_from_slice(c.output);
        }
        ExecEvent::AccountAccessListHeader(h) => fixed(out, l::ACCOUNT_ACCESS_LIST_HEADER, |w| {
            w.u32(0, h.entry_count);
            w.u8(4, h.access_context);
        }),
        ExecEvent::AccountAccess(a) => fixed(out, l::ACCOUNT_ACCESS, |w| {
            w.u32(account::INDEX, a.index);
            w.bytes(account::ADDRESS, &a.address);
            w.u8(account::CONTEXT, a.access_context);
            w.bool(account::BALANCE_MODIFIED, a.is_balance_modified);
            w.bool(account::NONCE_MODIFIED, a.is_nonce_modified);
            w.u64(account::PRE_NONCE, a.prestate.nonce);
            w.u256(account::PRE_BALANCE, &a.prestate.balance);
            w.bytes(account::PRE_CODE_HASH, &a.prestate.code_hash);
            w.u256(account::MODIFIED_BALANCE, &a.modified_balance);
            w.u64(account::MODIFIED_NONCE, a.modified_nonce);
            w.u32(account::STORAGE_KEY_COUNT, a.storage_key_count);
            w.u32(account::TRANSIENT_COUNT, a.transient_count);
        }),
        ExecEvent::StorageAccess(s) => fixed(out, l::STORAGE_ACCESS, |w| {
            w.bytes(st::ADDRESS, &s.address);
            w.u32(st::INDEX, s.index);
            w.u8(st::CONTEXT, s.access_context);
            w.bool(st::MODIFIED, s.modified);
            w.bool(st::TRANSIENT, s.transient);
            w.bytes(st::KEY, &s.key);
            w.bytes(st::START_VALUE, &s.start_value);
            w.bytes(st::END_VALUE, &s.end_value);
        }),
        ExecEvent::EvmError(e) => fixed(out, l::EVM_ERROR, |w| {
            w.u64(0, e.domain_id);
            w.i64(8, e.status_code);
        }),
    }
    Ok(())
}

fn block_start(w: &mut Put<'_>, b: &BlockStart) {
    let e = &b.eth_block_input;
    w.bytes(bs::ID, &b.block_tag.id);
    w.u64(bs::NUMBER, b.block_tag.block_number);
    w.u64(bs::ROUND, b.round);
    w.u64(bs::EPOCH, b.epoch);
    w.bytes(bs::PROPOSAL_NANOS, &b.proposal_epoch_nanos.to_le_bytes());
    w.u256(bs::CHAIN_ID, &b.chain_id);
    w.bytes(bs::AUTHOR, &b.author);
    w.bytes(bs::PARENT_ETH_HASH, &b.parent_eth_hash);
    w.bytes(bs::OMMERS_HASH, &e.ommers_hash);
    w.bytes(bs::BENEFICIARY, &e.beneficiary);
    w.bytes(bs::TRANSACTIONS_ROOT, &e.transactions_root);
    w.u64(bs::DIFFICULTY, e.difficulty);
    w.u64(bs::ETH_NUMBER, e.number);
    w.u64(bs::GAS_LIMIT, e.gas_limit);
    w.u64(bs::TIMESTAMP, e.timestamp);
    w.bytes(bs::EXTRA_DATA, &e.extra_data);
    w.u64(bs::EXTRA_DATA_LENGTH, e.extra_data_length);
    w.bytes(bs::PREV_RANDAO, &e.prev_randao);
    w.bytes(bs::NONCE, &e.nonce);
    w.u256(bs::BASE_FEE, &e.base_fee_per_gas);
    w.bytes(bs::WITHDRAWALS_ROOT, &e.withdrawals_root);
    w.u64(bs::TXN_COUNT, e.txn_count);
    w.u256(bs::BASE_FEE_TREND, &b.monad_block_input.base_fee_trend);
    w.u256(bs::BASE_FEE_MOMENT, &b.monad_block_input.base_fee_moment);
}

fn txn_header_start(w: &mut Put<'_>, t: &TxnHeaderStart<'_>, data_len: u32, blobs: u32) {
    let h = &t.txn_header;
    w.bytes(th::TXN_HASH, &t.txn_hash);
    w.bytes(th::SENDER, &t.sender);
    w.u8(th::TXN_TYPE, h.txn_type);
    w.u256(th::CHAIN_ID, &h.chain_id);
    w.u64(th::NONCE, h.nonce);
    w.u64(th::GAS_LIMIT, h.gas_limit);
    w.u256(th::MAX_FEE, &h.max_fee_per_gas);
    w.u256(th::MAX_PRIORITY_FEE, &h.max_priority_fee_per_gas);
    w.u256(th::VALUE, &h.value);
    w.bytes(th::TO, &h.to);
    w.bool(th::IS_CREATE, h.is_contract_creation);
    w.u256(th::R, &h.r);
    w.u256(th::S, &h.s);
    w.bool(th::Y_PARITY, h.y_parity);
    w.u256(th::MAX_FEE_PER_BLOB_GAS, &h.max_fee_per_blob_gas);
    w.u32(th::DATA_LENGTH, data_len);
    w.u32(th::BLOB_COUNT, blobs);
    w.u32(th::ACCESS_LIST_COUNT, h.access_list_count);
    w.u32(th::AUTH_LIST_COUNT, h.auth_list_count);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ingest::event::decode::decode;
    use crate::model::kind::EventType;
    use crate::tools::synth::rng::Rng;

    fn slice<'a>(r: &mut Rng, arena: &'a [u8], max_items: u64, item: usize) -> &'a [u8] {
        let n = r.below(max_items + 1) as usize * item;
        let start = r.below((arena.len() - n) as u64) as usize;
        &arena[start..start + n]
    }

    fn u256(r: &mut Rng) -> U256 {
        match r.below(3) {
            0 => U256::ZERO,
            1 => U256::from_u64(r.next_u64()),
            _ => U256(r.array()),
        }
    }

    /// A random, well-formed value of type `ty` (booleans 0/1, slices whole items).
    pub(crate) fn arbitrary<'a>(r: &mut Rng, ty: EventType, arena: &'a [u8]) -> ExecEvent<'a> {
        let tag = |r: &mut Rng| BlockTag {
            id: r.array(),
            block_number: r.next_u64(),
        };
        match ty {
            EventType::None | EventType::RecordError => {
                let truncated = if r.bool() {
                    slice(r, arena, 8176, 1)
                } else {
                    &[]
                };
                ExecEvent::RecordError(RecordError {
                    error_type: r.below(4) as u16,
                    dropped_event_type: r.below(30) as u16,
                    truncated_payload_size: if truncated.is_empty() {
                        r.next_u64() as u32
                    } else {
                        truncated.len() as u32
                    },
                    requested_payload_size: r.next_u64(),
                    truncated,
                })
            }
            EventType::BlockStart => ExecEvent::BlockStart(BlockStart {
                block_tag: tag(r),
                round: r.next_u64(),
                epoch: r.next_u64(),
                proposal_epoch_nanos: u128::from(r.next_u64()) << 20,
                chain_id: u256(r),
                author: r.array(),
                parent_eth_hash: r.array(),
                eth_block_input: EthBlockInput {
                    ommers_hash: r.array(),
                    beneficiary: r.array(),
                    transactions_root: r.array(),
                    difficulty: r.next_u64(),
                    number: r.next_u64(),
                    gas_limit: r.next_u64(),
                    timestamp: r.next_u64(),
                    extra_data: r.array(),
                    extra_data_length: r.below(40),
                    prev_randao: r.array(),
                    nonce: r.array(),
                    base_fee_per_gas: u256(r),
                    withdrawals_root: r.array(),
                    txn_count: r.next_u64(),
                },
                monad_block_input: MonadBlockInput {
                    base_fee_trend: u256(r),
                    base_fee_moment: u256(r),
                },
            }),
            EventType::BlockReject => ExecEvent::BlockReject(r.next_u64() as u32),
            EventType::BlockPerfEvmEnter => ExecEvent::BlockPerfEvmEnter,
            EventType::BlockPerfEvmExit => ExecEvent::BlockPerfEvmExit,
            EventType::BlockEnd => ExecEvent::BlockEnd(BlockEnd {
                eth_block_hash: r.array(),
                state_root: r.array(),
                receipts_root: r.array(),
                logs_bloom: r.array(),
                gas_used: r.next_u64(),
            }),
            EventType::BlockQc => ExecEvent::BlockQc(BlockQc {
                block_tag: tag(r),
                round: r.next_u64(),
                epoch: r.next_u64(),
            }),
            EventType::BlockFinalized => ExecEvent::BlockFinalized(tag(r)),
            EventType::BlockVerified => ExecEvent::BlockVerified {
                block_number: r.next_u64(),
            },
            EventType::TxnHeaderStart => ExecEvent::TxnHeaderStart(TxnHeaderStart {
                txn_hash: r.array(),
                sender: r.array(),
                txn_header: TxnHeader {
                    txn_type: r.below(5) as u8,
                    chain_id: u256(r),
                    nonce: r.next_u64(),
                    gas_limit: r.next_u64(),
                    max_fee_per_gas: u256(r),
                    max_priority_fee_per_gas: u256(r),
                    value: u256(r),
                    to: r.array(),
                    is_contract_creation: r.bool(),
                    r: u256(r),
                    s: u256(r),
                    y_parity: r.bool(),
                    max_fee_per_blob_gas: u256(r),
                    access_list_count: r.below(5) as u32,
                    auth_list_count: r.below(5) as u32,
                },
                data: slice(r, arena, 600, 1),
                blob_versioned_hashes: slice(r, arena, 6, 32),
            }),
            EventType::TxnAccessListEntry => ExecEvent::TxnAccessListEntry(TxnAccessListEntry {
                index: r.next_u64() as u32,
                address: r.array(),
                storage_keys: slice(r, arena, 8, 32),
            }),
            EventType::TxnAuthListEntry => ExecEvent::TxnAuthListEntry(TxnAuthListEntry {
                index: r.next_u64() as u32,
                chain_id: u256(r),
                address: r.array(),
                nonce: r.next_u64(),
                y_parity: r.bool(),
                r: u256(r),
                s: u256(r),
                authority: r.array(),
                is_valid_authority: r.bool(),
            }),
            EventType::TxnHeaderEnd => ExecEvent::TxnHeaderEnd,
            EventType::TxnReject => ExecEvent::TxnReject(r.next_u64() as u32),
            EventType::TxnPerfEvmEnter => ExecEvent::TxnPerfEvmEnter,
            EventType::TxnPerfEvmExit => ExecEvent::TxnPerfEvmExit,
            EventType::TxnEvmOutput => ExecEvent::TxnEvmOutput(TxnEvmOutput {
                status: r.bool(),
                log_count: r.next_u64() as u32,
                gas_used: r.next_u64(),
                call_frame_count: r.next_u64() as u32,
            }),
            EventType::TxnLog => ExecEvent::TxnLog(TxnLog {
                index: r.next_u64() as u32,
                address: r.array(),
                topics: slice(r, arena, 4, 32),
                data: slice(r, arena, 300, 1),
            }),
            EventType::TxnCallFrame => ExecEvent::TxnCallFrame(TxnCallFrame {
                index: r.next_u64() as u32,
                caller: r.array(),
                call_target: r.array(),
                opcode: r.next_u64() as u8,
                value: u256(r),
                gas: r.next_u64(),
                gas_used: r.next_u64(),
                evmc_status: r.next_u64() as i32,
                depth: r.next_u64(),
                input: slice(r, arena, 400, 1),
                output: slice(r, arena, 200, 1),
            }),
            EventType::TxnEnd => ExecEvent::TxnEnd,
            EventType::AccountAccessListHeader => {
                ExecEvent::AccountAccessListHeader(AccountAccessListHeader {
                    entry_count: r.next_u64() as u32,
                    access_context: r.below(3) as u8,
                })
            }
            EventType::AccountAccess => ExecEvent::AccountAccess(AccountAccess {
                index: r.next_u64() as u32,
                address: r.array(),
                access_context: r.below(3) as u8,
                is_balance_modified: r.bool(),
                is_nonce_modified: r.bool(),
                prestate: AccountState {
                    nonce: r.next_u64(),
                    balance: u256(r),
                    code_hash: r.array(),
                },
                modified_balance: u256(r),
                modified_nonce: r.next_u64(),
                storage_key_count: r.next_u64() as u32,
                transient_count: r.next_u64() as u32,
            }),
            EventType::StorageAccess => ExecEvent::StorageAccess(StorageAccess {
                address: r.array(),
                index: r.next_u64() as u32,
                access_context: r.below(3) as u8,
                modified: r.bool(),
                transient: r.bool(),
                key: r.array(),
                start_value: r.array(),
                end_value: r.array(),
            }),
            EventType::EvmError => ExecEvent::EvmError(EvmError {
                domain_id: r.next_u64(),
                status_code: r.next_u64() as i64,
            }),
        }
    }

    #[test]
    fn decode_inverts_build_for_every_type() {
        let mut r = Rng::new(0x5eed);
        let mut arena = vec![0u8; 16384];
        r.fill(&mut arena);
        let mut buf = Vec::new();
        for ty in &EventType::ALL[1..] {
            for _ in 0..300 {
                let ev = arbitrary(&mut r, *ty, &arena);
                assert_eq!(ev.event_type(), *ty);
                buf.clear();
                build(&ev, &mut buf).unwrap();
                let back = decode(ty.code(), &buf).unwrap_or_else(|e| panic!("{ty:?}: {e}"));
                assert_eq!(back, ev, "{ty:?}");
            }
        }
    }

    #[test]
    fn fixed_sizes_match_the_spec() {
        let mut r = Rng::new(3);
        let arena = [0u8; 64];
        let mut buf = Vec::new();
        for (ty, size) in [
            (EventType::BlockStart, 528),
            (EventType::BlockEnd, 360),
            (EventType::BlockQc, 56),
            (EventType::BlockFinalized, 40),
            (EventType::BlockVerified, 8),
            (EventType::TxnAuthListEntry, 168),
            (EventType::TxnEvmOutput, 24),
            (EventType::AccountAccessListHeader, 8),
            (EventType::AccountAccess, 152),
            (EventType::StorageAccess, 124),
            (EventType::EvmError, 16),
            (EventType::TxnEnd, 0),
        ] {
            buf.clear();
            build(&arbitrary(&mut r, ty, &arena), &mut buf).unwrap();
            assert_eq!(buf.len(), size, "{ty:?}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let log = ExecEvent::TxnLog(TxnLog {
            index: 0,
            address: [0; 20],
            topics: &[0; 33],
            data: &[],
        });
        let mut buf = Vec::new();
        assert_eq!(
            build(&log, &mut buf),
            Err(BuildError::NotMultipleOf32 {
                field: "topics",
                len: 33
            })
        );
    }
}
