//! One proposal's events: BLOCK_START, the prologue, the block's transactions interleaved the
//! way the executor runs them, the epilogue, and BLOCK_END or BLOCK_REJECT
//! (docs/ring-format.md#s4-2, #s7-5 to #s7-7).
//!
//! Runs on the synthetic writer's thread, called by [`crate::tools::synth::generator`] once per
//! proposal. Inputs: the PRNG, the world, the options, the chain head (round, base fee, parent
//! hash) and the height → outputs: the proposal's events appended to the height's queue (all
//! block-scoped), payloads in its arena, and the `Proposal` identity for QC and finalization.
//!
//! Invariants: BLOCK_START's `txn_count` equals the transactions emitted; every transaction's
//! phase A precedes its phase B, phase Bs are in index order, and at most a per-block window
//! (random 1–8) of started transactions run ahead of the commits; BLOCK_END's `gas_used` is the
//! sum of the transactions'. Draws from the PRNG in a fixed order: the same inputs always give
//! the same bytes. Never emits consensus events other than through `BlockBuilder::consensus`.

use crate::ingest::event::payload::*;
use crate::tools::synth::batch::{PayloadArena, Pending};
use crate::tools::synth::options::SynthOptions;
use crate::tools::synth::plan::TxnScratch;
use crate::tools::synth::rng::Rng;
use crate::tools::synth::txn::{self, BlockFacts, TxnEvents};
use crate::tools::synth::world::{World, HISTORY_CONTRACT};

/// keccak256(rlp([])): the ommers hash of every post-merge block.
const EMPTY_OMMERS: Bytes32 = [
    0x1d, 0xcc, 0x4d, 0xe8, 0xde, 0xc7, 0x5d, 0x7a, 0xab, 0x85, 0xb5, 0x67, 0xb6, 0xcc, 0xd4, 0x1a,
    0xd3, 0x12, 0x45, 0x1b, 0x94, 0x8a, 0x74, 0x13, 0xf0, 0xa1, 0x42, 0xfd, 0x40, 0xd4, 0x93, 0x47,
];

/// A proposal's identity, kept for QC and finalization.
#[derive(Debug, Clone, Copy)]
pub(super) struct Proposal {
    pub(super) tag: BlockTag,
    pub(super) round: u64,
    pub(super) eth_hash: Bytes32,
}

/// The chain values each proposal reads and advances.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChainHead {
    /// Round of the last proposal (each proposal takes the next one).
    pub(super) round: u64,
    /// Base fee of the last proposal (each proposal moves it by −2…+2 %).
    pub(super) base_fee: u128,
    /// Execution hash of the previous height's canonical proposal.
    pub(super) parent_hash: Bytes32,
}

/// Where a proposal sits in the chain.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    /// Its block number (height).
    pub(super) number: u64,
    /// Its place among the height's proposals (0 first), which offsets its timestamp.
    pub(super) proposal_no: u64,
    /// It ends in BLOCK_REJECT instead of BLOCK_END.
    pub(super) reject: bool,
}

/// One height's events in emission order, their payload arena, and the reused buffers
/// transactions are planned in. Nothing here grows past one height.
#[derive(Debug, Default)]
pub(super) struct BlockBuilder {
    /// Payloads of the height's events.
    pub(super) batch: PayloadArena,
    /// The height's events, in the order they are handed out.
    pub(super) queue: Vec<Pending>,
    staging: Vec<Pending>,
    txns: Vec<TxnEvents>,
    scratch: TxnScratch,
}

impl BlockBuilder {
    /// Forgets the previous height's events (keeping the buffers).
    pub(super) fn clear(&mut self) {
        self.batch.bytes.clear();
        self.queue.clear();
    }

    /// Appends a consensus event (not block-scoped) to the queue.
    pub(super) fn consensus(&mut self, ev: &ExecEvent<'_>) {
        let p = self.batch.push(ev, 0, 0, false);
        self.queue.push(p);
    }

    fn push(&mut self, ev: &ExecEvent<'_>) {
        let p = self.batch.build(ev, 0, 0);
        self.queue.push(p);
    }

    /// Generates one proposal at `slot` into the queue; returns it and its transaction count.
    pub(super) fn proposal(
        &mut self,
        rng: &mut Rng,
        world: &mut World,
        o: &SynthOptions,
        head: &mut ChainHead,
        slot: Slot,
    ) -> (Proposal, u64) {
        let Slot {
            number,
            proposal_no,
            reject,
        } = slot;
        head.round += 1;
        let tpb = u64::from(o.txns_per_block);
        let n_txns = rng.range(tpb - tpb / 5, tpb + tpb / 5);
        head.base_fee = (head.base_fee * u128::from(rng.range(98, 102)) / 100).max(1_000_000_000);
        let validator = world.validators[rng.below(world.validators.len() as u64) as usize];
        let nanos = o.start_time_ns
            + (number - o.first_block_number) * o.block_interval_ns
            + proposal_no * (o.block_interval_ns / 8);
        let tag = BlockTag {
            id: rng.array(),
            block_number: number,
        };
        let start = BlockStart {
            block_tag: tag,
            round: head.round,
            epoch: head.round / 50_000,
            proposal_epoch_nanos: u128::from(nanos),
            chain_id: U256::from_u64(o.chain_id),
            author: validator.author,
            parent_eth_hash: head.parent_hash,
            eth_block_input: EthBlockInput {
                ommers_hash: EMPTY_OMMERS,
                beneficiary: validator.beneficiary,
                transactions_root: rng.array(),
                difficulty: 0,
                number,
                gas_limit: 200_000_000,
                timestamp: nanos / 1_000_000_000,
                extra_data: [0; 32],
                extra_data_length: 0,
                prev_randao: rng.array(),
                nonce: [0; 8],
                base_fee_per_gas: U256::from_u128(head.base_fee),
                withdrawals_root: rng.array(),
                txn_count: n_txns,
            },
            monad_block_input: MonadBlockInput {
                base_fee_trend: U256::from_u64(rng.below(1 << 20)),
                base_fee_moment: U256::from_u64(rng.below(1 << 40)),
            },
        };
        self.push(&ExecEvent::BlockStart(start));
        self.push(&ExecEvent::BlockPerfEvmEnter);
        // Prologue: the block-hash history contract stores the parent hash.
        self.push(&ExecEvent::AccountAccessListHeader(
            AccountAccessListHeader {
                entry_count: 1,
                access_context: 0,
            },
        ));
        self.push(&ExecEvent::AccountAccess(system_access(
            HISTORY_CONTRACT,
            0,
            1,
        )));
        let mut key = [0u8; 32];
        key[24..].copy_from_slice(&((number - 1) % 8191).to_be_bytes());
        self.push(&ExecEvent::StorageAccess(StorageAccess {
            address: HISTORY_CONTRACT,
            index: 0,
            access_context: 0,
            modified: true,
            transient: false,
            key,
            start_value: [0; 32],
            end_value: head.parent_hash,
        }));
        let facts = BlockFacts {
            chain_id: o.chain_id,
            base_fee: head.base_fee,
        };
        self.transactions(rng, world, facts, n_txns);
        let gas_used: u64 = self.txns.iter().map(|t| t.gas_used).sum();
        let logs: u64 = self.txns.iter().map(|t| u64::from(t.log_count)).sum();
        // Epilogue: the beneficiary is credited the block's fees.
        self.push(&ExecEvent::AccountAccessListHeader(
            AccountAccessListHeader {
                entry_count: 1,
                access_context: 2,
            },
        ));
        let mut fees = system_access(validator.beneficiary, 2, 0);
        fees.is_balance_modified = true;
        fees.prestate.balance = U256::from_u128(1 << 80);
        fees.modified_balance = U256::from_u128((1 << 80) + u128::from(gas_used) * 1_000_000_000);
        self.push(&ExecEvent::AccountAccess(fees));
        self.push(&ExecEvent::BlockPerfEvmExit);
        let eth_hash = rng.array();
        if reject {
            // InvalidGasUsed, WrongMerkleRoot or WrongLogsBloom: failures found after execution.
            let reason = [14, 16, 13][rng.below(3) as usize];
            self.push(&ExecEvent::BlockReject(reason));
        } else {
            let mut bloom = [0u8; 256];
            for _ in 0..logs.min(600) * 3 {
                let bit = rng.below(2048) as usize;
                bloom[bit / 8] |= 1 << (bit % 8);
            }
            let end = BlockEnd {
                eth_block_hash: eth_hash,
                state_root: rng.array(),
                receipts_root: rng.array(),
                logs_bloom: bloom,
                gas_used,
            };
            self.push(&ExecEvent::BlockEnd(end));
        }
        let proposal = Proposal {
            tag,
            round: head.round,
            eth_hash,
        };
        (proposal, n_txns)
    }

    /// Generates `n` transactions and appends their events, interleaved, to the queue.
    fn transactions(&mut self, rng: &mut Rng, world: &mut World, facts: BlockFacts, n: u64) {
        self.staging.clear();
        self.txns.clear();
        for i in 0..n {
            let t = txn::generate(
                world,
                rng,
                facts,
                i as u32,
                &mut self.batch,
                &mut self.staging,
                &mut self.scratch,
            );
            self.txns.push(t);
        }
        // Phase A of up to `window` started transactions may run ahead of the commits, which
        // happen in index order (each after its own phase A).
        let window = rng.range(1, 8) as usize;
        let n = self.txns.len();
        let (mut started, mut committed) = (0usize, 0usize);
        while committed < n {
            let can_start = started < n && started - committed < window;
            if can_start && (started == committed || rng.bool()) {
                let r = self.txns[started].phase_a.clone();
                self.queue.extend_from_slice(&self.staging[r]);
                started += 1;
            } else {
                let r = self.txns[committed].phase_b.clone();
                self.queue.extend_from_slice(&self.staging[r]);
                committed += 1;
            }
        }
    }
}

/// An ACCOUNT_ACCESS of a system or fee account in the block prologue/epilogue.
fn system_access(address: Address, context: u8, storage_keys: u32) -> AccountAccess {
    AccountAccess {
        index: 0,
        address,
        access_context: context,
        is_balance_modified: false,
        is_nonce_modified: false,
        prestate: AccountState {
            nonce: 1,
            balance: U256::ZERO,
            code_hash: [0; 32],
        },
        modified_balance: U256::ZERO,
        modified_nonce: 1,
        storage_key_count: storage_keys,
        transient_count: 0,
    }
}
