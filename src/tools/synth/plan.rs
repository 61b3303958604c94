//! A planned transaction (logs, call frames, accounts, storage slots) in reusable buffers,
//! and the events of its commit phase.
//!
//! Runs on the synthetic writer's thread. [`crate::tools::synth::txn`] fills a [`TxnScratch`] per
//! transaction; `emit_commit` turns it into TXN_EVM_OUTPUT, TXN_LOGs, TXN_CALL_FRAMEs, the
//! account access list and its STORAGE_ACCESS events with exact counts: `log_count` and
//! `call_frame_count` equal the events emitted, each account's `storage_key_count` /
//! `transient_count` equal the regular / transient STORAGE_ACCESS events that follow it
//! (regular first), and STORAGE_ACCESS `index` counts within its account (as the real writer
//! does). Buffers are cleared, not freed, between transactions.

use std::ops::Range;

use crate::ingest::event::payload::*;
use crate::tools::synth::batch::{PayloadArena, Pending};
use crate::tools::synth::rng::Rng;
use crate::tools::synth::world::{word_u128, World};

#[derive(Debug, Clone)]
pub(super) struct LogPlan {
    pub(super) address: Address,
    pub(super) topics: [Bytes32; 3],
    pub(super) topic_count: usize,
    pub(super) data: Range<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct FramePlan {
    pub(super) caller: Address,
    pub(super) target: Address,
    pub(super) opcode: u8,
    pub(super) value: u128,
    pub(super) gas: u64,
    pub(super) gas_used: u64,
    pub(super) status: i32,
    pub(super) depth: u64,
    pub(super) input: Range<usize>,
    pub(super) output: Range<usize>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct AcctPlan {
    pub(super) address: Address,
    pub(super) code_hash: Bytes32,
    pub(super) pre_nonce: u64,
    pub(super) pre_balance: u128,
    pub(super) post_nonce: u64,
    pub(super) post_balance: u128,
    pub(super) slots_start: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SlotPlan {
    pub(super) key: Bytes32,
    pub(super) start: Bytes32,
    pub(super) end: Bytes32,
    pub(super) modified: bool,
    pub(super) transient: bool,
}

/// Reused buffers for planning one transaction (cleared per transaction).
#[derive(Debug, Default)]
pub struct TxnScratch {
    pub(super) bytes: Vec<u8>,
    pub(super) logs: Vec<LogPlan>,
    pub(super) frames: Vec<FramePlan>,
    pub(super) accts: Vec<AcctPlan>,
    pub(super) slots: Vec<SlotPlan>,
    pub(super) access: Vec<(Address, Range<usize>)>,
    pub(super) auths: Vec<TxnAuthListEntry>,
}

impl TxnScratch {
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.logs.clear();
        self.frames.clear();
        self.accts.clear();
        self.slots.clear();
        self.access.clear();
        self.auths.clear();
    }

    pub(super) fn put(&mut self, parts: &[&[u8]]) -> Range<usize> {
        let start = self.bytes.len();
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        start..self.bytes.len()
    }

    pub(super) fn log(&mut self, address: Address, topics: &[Bytes32], data: &[&[u8]]) {
        let data = self.put(data);
        let mut t = [[0u8; 32]; 3];
        for (slot, topic) in t.iter_mut().zip(topics) {
            *slot = *topic;
        }
        self.logs.push(LogPlan {
            address,
            topics: t,
            topic_count: topics.len().min(3),
            data,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn frame(
        &mut self,
        caller: Address,
        target: Address,
        opcode: u8,
        depth: u64,
        gas: u64,
        gas_used: u64,
        input: &[&[u8]],
        output: &[&[u8]],
    ) {
        let input = self.put(input);
        let output = self.put(output);
        self.frames.push(FramePlan {
            caller,
            target,
            opcode,
            value: 0,
            gas,
            gas_used,
            status: 0,
            depth,
            input,
            output,
        });
    }

    pub(super) fn account(
        &mut self,
        address: Address,
        code_hash: Bytes32,
        nonce: u64,
        balance: u128,
    ) {
        self.accts.push(AcctPlan {
            address,
            code_hash,
            pre_nonce: nonce,
            pre_balance: balance,
            post_nonce: nonce,
            post_balance: balance,
            slots_start: self.slots.len(),
        });
    }

    /// A storage write (fresh value) on the last account.
    pub(super) fn write(&mut self, world: &mut World, rng: &mut Rng, key: Bytes32) {
        let value = new_value(rng);
        self.slot(world, rng, key, Some(value));
    }

    /// A storage read on the last account.
    pub(super) fn read(&mut self, world: &mut World, rng: &mut Rng, key: Bytes32) {
        self.slot(world, rng, key, None);
    }

    /// A storage access on the last account; `write` = the new value.
    pub(super) fn slot(
        &mut self,
        world: &mut World,
        rng: &mut Rng,
        key: Bytes32,
        write: Option<Bytes32>,
    ) {
        let Some(acct) = self.accts.last() else {
            return;
        };
        let address = acct.address;
        let start = world.slot_value(rng, address, key);
        let end = write.unwrap_or(start);
        if write.is_some() {
            world.set_slot(address, key, end);
        }
        self.slots.push(SlotPlan {
            key,
            start,
            end,
            modified: write.is_some(),
            transient: false,
        });
    }

    pub(super) fn transient(&mut self, key: Bytes32) {
        self.slots.push(SlotPlan {
            key,
            start: [0; 32],
            end: [0; 32],
            modified: false,
            transient: true,
        });
    }
}

/// A random amount in `lo..hi` (`lo` when the range is empty).
pub(super) fn amount(rng: &mut Rng, lo: u128, hi: u128) -> u128 {
    let wide = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    lo + wide.checked_rem(hi.saturating_sub(lo)).unwrap_or(0)
}

pub(super) fn new_value(rng: &mut Rng) -> Bytes32 {
    word_u128(amount(rng, 1, 1 << 100))
}

/// Phase B up to (not including) TXN_END.
pub(super) fn emit_commit(
    s: &TxnScratch,
    batch: &mut PayloadArena,
    staging: &mut Vec<Pending>,
    txn_id: u64,
    status: bool,
    gas_used: u64,
) {
    let output = TxnEvmOutput {
        status,
        log_count: s.logs.len() as u32,
        gas_used,
        call_frame_count: s.frames.len() as u32,
    };
    staging.push(batch.build(&ExecEvent::TxnEvmOutput(output), txn_id, 0));
    let mut topics = [0u8; 96];
    for (i, log) in s.logs.iter().enumerate() {
        for (dst, t) in topics.chunks_exact_mut(32).zip(&log.topics) {
            dst.copy_from_slice(t);
        }
        let ev = TxnLog {
            index: i as u32,
            address: log.address,
            topics: &topics[..32 * log.topic_count],
            data: &s.bytes[log.data.clone()],
        };
        staging.push(batch.build(&ExecEvent::TxnLog(ev), txn_id, 0));
    }
    for (i, f) in s.frames.iter().enumerate() {
        let ev = TxnCallFrame {
            index: i as u32,
            caller: f.caller,
            call_target: f.target,
            opcode: f.opcode,
            value: U256::from_u128(f.value),
            gas: f.gas,
            gas_used: f.gas_used,
            evmc_status: f.status,
            depth: f.depth,
            input: &s.bytes[f.input.clone()],
            output: &s.bytes[f.output.clone()],
        };
        staging.push(batch.build(&ExecEvent::TxnCallFrame(ev), txn_id, 0));
    }
    let header = AccountAccessListHeader {
        entry_count: s.accts.len() as u32,
        access_context: 1,
    };
    staging.push(batch.build(&ExecEvent::AccountAccessListHeader(header), txn_id, 0));
    for (i, a) in s.accts.iter().enumerate() {
        let end = s.accts.get(i + 1).map_or(s.slots.len(), |n| n.slots_start);
        let slots = &s.slots[a.slots_start..end];
        let transient = slots.iter().filter(|x| x.transient).count() as u32;
        let access = AccountAccess {
            index: i as u32,
            address: a.address,
            access_context: 1,
            is_balance_modified: a.post_balance != a.pre_balance,
            is_nonce_modified: a.post_nonce != a.pre_nonce,
            prestate: AccountState {
                nonce: a.pre_nonce,
                balance: U256::from_u128(a.pre_balance),
                code_hash: a.code_hash,
            },
            modified_balance: U256::from_u128(a.post_balance),
            modified_nonce: a.post_nonce,
            storage_key_count: slots.len() as u32 - transient,
            transient_count: transient,
        };
        staging.push(batch.build(&ExecEvent::AccountAccess(access), txn_id, 0));
        let regular = slots.iter().filter(|x| !x.transient);
        let ordered = regular.chain(slots.iter().filter(|x| x.transient));
        for (j, slot) in ordered.enumerate() {
            let ev = StorageAccess {
                address: a.address,
                index: j as u32,
                access_context: 1,
                modified: slot.modified,
                transient: slot.transient,
                key: slot.key,
                start_value: slot.start,
                end_value: slot.end,
            };
            staging.push(batch.build(&ExecEvent::StorageAccess(ev), txn_id, i as u64));
        }
    }
}
