//! The synthetic chain generator: a deterministic (seeded), endless stream of realistic Monad
//! execution events in the real payload format, in the order the daemon records them
//! (spec/monad-event-ring.md §4.2, §7.5–7.8).
//!
//! Runs on the synthetic writer's thread (`ringgate write` / `demo`, tests, benches). Output:
//! [`SynthEvent`]s (type, flow tags other than the block seqno, payload bytes built with
//! [`crate::event::build`]); the driver assigns seqnos and the block flow tag.
//!
//! # One height
//!
//! 1. `BLOCK_QC` for the previous height's canonical proposal.
//! 2. With probability `reject_probability`: a proposal that executes and ends in
//!    `BLOCK_REJECT` (never voted, never finalized), then a re-proposal at the same height.
//! 3. A proposal: `BLOCK_START` (fresh random id, exact `txn_count`), `BLOCK_PERF_EVM_ENTER`,
//!    prologue (block-hash history write), the transactions interleaved (phase A of up to K
//!    started transactions may run ahead of the in-order commits, K random 1–8 per block),
//!    epilogue (beneficiary fee credit), `BLOCK_PERF_EVM_EXIT`, `BLOCK_END` (gas_used = sum).
//! 4. With probability `fork_probability`: a competing proposal at the same height (new id,
//!    other transactions); one of the two, at random, becomes canonical, and the other is
//!    abandoned when the canonical one is finalized.
//! 5. Consensus pattern: after height N ends, `BLOCK_FINALIZED` for height N−2's canonical
//!    proposal (so it refers to an id already seen) and `BLOCK_VERIFIED` for N−5 (strictly
//!    increasing numbers), the way MonadBFT finalizes two rounds behind and verification
//!    trails by three more blocks.
//!
//! Chain time: proposal timestamps advance `block_interval_ns` (400 ms) per height, starting at
//! `start_time_ns`. `logs_bloom`, roots and hashes are random, not keccak-derived.
//!
//! Memory: one height's events live in a reused arena, nothing grows with the chain length
//! except bounded world state (see [`crate::synth::world`]).

use std::collections::VecDeque;

use crate::event::payload::*;
pub use crate::synth::batch::SynthEvent;
use crate::synth::batch::{Batch, Pending};
use crate::synth::plan::TxnScratch;
use crate::synth::rng::Rng;
use crate::synth::txn::{self, BlockFacts, TxnEvents};
use crate::synth::world::{World, HISTORY_CONTRACT};

/// Events per synthetic transaction, block and consensus events included (measured: 16.0 over
/// 200 default heights), used to size blocks from a target rate.
pub const EVENTS_PER_TXN: f64 = 16.0;

/// keccak256(rlp([])): the ommers hash of every post-merge block.
const EMPTY_OMMERS: Bytes32 = [
    0x1d, 0xcc, 0x4d, 0xe8, 0xde, 0xc7, 0x5d, 0x7a, 0xab, 0x85, 0xb5, 0x67, 0xb6, 0xcc, 0xd4, 0x1a,
    0xd3, 0x12, 0x45, 0x1b, 0x94, 0x8a, 0x74, 0x13, 0xf0, 0xa1, 0x42, 0xfd, 0x40, 0xd4, 0x93, 0x47,
];

/// Generator settings. Every field has a default (see [`SynthOptions::default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    /// PRNG seed: same seed, same chain. Default 1.
    pub seed: u64,
    /// Mean transactions per proposal (each block draws ±20 %). Default 200.
    pub txns_per_block: u32,
    /// Chance that a height gets a second, competing proposal. Default 0.05.
    pub fork_probability: f64,
    /// Chance that a height starts with a proposal that ends in BLOCK_REJECT. Default 0.02.
    pub reject_probability: f64,
    /// Number of the first block. Default 1,000,000.
    pub first_block_number: u64,
    /// Chain time (ns since the Unix epoch) of the first proposal. Default 2025-09-01T00:00Z.
    pub start_time_ns: u64,
    /// Chain time between heights. Default 400 ms.
    pub block_interval_ns: u64,
    /// Chain id in payloads. Default 143.
    pub chain_id: u64,
    /// Externally owned accounts in the world (a tenth of them are "hot"). Default 5,000.
    pub accounts: usize,
}

impl Default for SynthOptions {
    fn default() -> SynthOptions {
        SynthOptions {
            seed: 1,
            txns_per_block: 200,
            fork_probability: 0.05,
            reject_probability: 0.02,
            first_block_number: 1_000_000,
            start_time_ns: 1_756_684_800_000_000_000,
            block_interval_ns: 400_000_000,
            chain_id: 143,
            accounts: 5_000,
        }
    }
}

impl SynthOptions {
    /// Defaults with `txns_per_block` chosen so that one height is about one block interval
    /// of events at `events_per_sec` (at least one transaction).
    pub fn for_rate(events_per_sec: f64) -> SynthOptions {
        let mut o = SynthOptions::default();
        let per_block = events_per_sec * o.block_interval_ns as f64 / 1e9;
        let txns = (per_block / EVENTS_PER_TXN).round();
        o.txns_per_block = if txns.is_finite() && txns >= 1.0 {
            txns.min(f64::from(u32::MAX)) as u32
        } else {
            1
        };
        o
    }
}

/// What the generator has produced so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneratorStats {
    /// Events handed out.
    pub events: u64,
    /// Heights completed.
    pub heights: u64,
    /// Proposals (BLOCK_STARTs) generated, including forks and rejected ones.
    pub proposals: u64,
    /// Heights with a competing proposal.
    pub forks: u64,
    /// Proposals ending in BLOCK_REJECT.
    pub rejects: u64,
    /// Transactions generated.
    pub txns: u64,
}

/// A proposal's identity, kept for QC and finalization.
#[derive(Debug, Clone, Copy)]
struct Proposal {
    tag: BlockTag,
    round: u64,
    eth_hash: Bytes32,
}

/// The endless synthetic event stream. See the module docs for the chain it produces.
#[derive(Debug)]
pub struct Generator {
    opts: SynthOptions,
    rng: Rng,
    world: World,
    batch: Batch,
    queue: Vec<Pending>,
    next: usize,
    staging: Vec<Pending>,
    txns: Vec<TxnEvents>,
    scratch: TxnScratch,
    height: u64,
    round: u64,
    base_fee: u128,
    parent_hash: Bytes32,
    /// Canonical proposals of recent heights (oldest first), for FINALIZED.
    canonical: VecDeque<Proposal>,
    pending_qc: Option<Proposal>,
    stats: GeneratorStats,
}

impl Generator {
    /// A generator for `opts`; the same options always give the same stream.
    pub fn new(opts: SynthOptions) -> Generator {
        let mut rng = Rng::new(opts.seed);
        let world = World::new(&mut rng, opts.accounts);
        let parent_hash = rng.array();
        Generator {
            opts,
            rng,
            world,
            batch: Batch::default(),
            queue: Vec::new(),
            next: 0,
            staging: Vec::new(),
            txns: Vec::new(),
            scratch: TxnScratch::default(),
            height: opts.first_block_number,
            round: opts.first_block_number * 2,
            base_fee: 50_000_000_000,
            parent_hash,
            canonical: VecDeque::new(),
            pending_qc: None,
            stats: GeneratorStats::default(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &SynthOptions {
        &self.opts
    }

    /// Counters so far.
    pub fn stats(&self) -> GeneratorStats {
        self.stats
    }

    /// The next event (generating the next height when the current one is used up).
    pub fn next_event(&mut self) -> SynthEvent<'_> {
        while self.next >= self.queue.len() {
            self.next_height();
        }
        let p = self.queue[self.next];
        self.next += 1;
        self.stats.events += 1;
        SynthEvent {
            event_type: p.ty,
            txn_id: p.txn_id,
            account_index: p.account_index,
            block_scoped: p.block_scoped,
            payload: &self.batch.bytes[p.start..p.end],
        }
    }

    fn consensus(&mut self, ev: &ExecEvent<'_>) {
        let p = self.batch.push(ev, 0, 0, false);
        self.queue.push(p);
    }

    fn next_height(&mut self) {
        self.batch.bytes.clear();
        self.queue.clear();
        self.next = 0;
        let number = self.height;
        let first = self.opts.first_block_number;
        if let Some(parent) = self.pending_qc.take() {
            self.consensus(&ExecEvent::BlockQc(BlockQc {
                block_tag: parent.tag,
                round: parent.round + 1,
                epoch: parent.round / 50_000,
            }));
        }
        let mut proposal_no = 0;
        if self.rng.chance(self.opts.reject_probability) {
            self.proposal(number, proposal_no, true);
            proposal_no += 1;
            self.stats.rejects += 1;
        }
        let mut canonical = self.proposal(number, proposal_no, false);
        if self.rng.chance(self.opts.fork_probability) {
            let other = self.proposal(number, proposal_no + 1, false);
            self.stats.forks += 1;
            if self.rng.bool() {
                canonical = other;
            }
        }
        self.parent_hash = canonical.eth_hash;
        self.canonical.push_back(canonical);
        while self.canonical.len() > 8 {
            self.canonical.pop_front();
        }
        if number >= first + 2 {
            let target = number - 2;
            if let Some(p) = self.canonical.iter().find(|p| p.tag.block_number == target) {
                let tag = p.tag;
                self.consensus(&ExecEvent::BlockFinalized(tag));
            }
        }
        if number >= first + 5 {
            self.consensus(&ExecEvent::BlockVerified {
                block_number: number - 5,
            });
        }
        self.pending_qc = Some(canonical);
        self.height += 1;
        self.stats.heights += 1;
    }

    /// Generates one proposal at `number` into the queue.
    fn proposal(&mut self, number: u64, proposal_no: u64, reject: bool) -> Proposal {
        self.round += 1;
        self.stats.proposals += 1;
        let rng = &mut self.rng;
        let o = &self.opts;
        let tpb = u64::from(o.txns_per_block);
        let n_txns = rng.range(tpb - tpb / 5, tpb + tpb / 5);
        self.base_fee = (self.base_fee * u128::from(rng.range(98, 102)) / 100).max(1_000_000_000);
        let validator =
            self.world.validators[rng.below(self.world.validators.len() as u64) as usize];
        let nanos = o.start_time_ns
            + (number - o.first_block_number) * o.block_interval_ns
            + proposal_no * (o.block_interval_ns / 8);
        let tag = BlockTag {
            id: rng.array(),
            block_number: number,
        };
        let start = BlockStart {
            block_tag: tag,
            round: self.round,
            epoch: self.round / 50_000,
            proposal_epoch_nanos: u128::from(nanos),
            chain_id: U256::from_u64(o.chain_id),
            author: validator.author,
            parent_eth_hash: self.parent_hash,
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
                base_fee_per_gas: U256::from_u128(self.base_fee),
                withdrawals_root: rng.array(),
                txn_count: n_txns,
            },
            monad_block_input: MonadBlockInput {
                base_fee_trend: U256::from_u64(rng.below(1 << 20)),
                base_fee_moment: U256::from_u64(rng.below(1 << 40)),
            },
        };
        let push = |batch: &mut Batch, queue: &mut Vec<Pending>, ev: &ExecEvent<'_>| {
            queue.push(batch.build(ev, 0, 0));
        };
        let (b, q) = (&mut self.batch, &mut self.queue);
        push(b, q, &ExecEvent::BlockStart(start));
        push(b, q, &ExecEvent::BlockPerfEvmEnter);
        // Prologue: the block-hash history contract stores the parent hash.
        push(
            b,
            q,
            &ExecEvent::AccountAccessListHeader(AccountAccessListHeader {
                entry_count: 1,
                access_context: 0,
            }),
        );
        push(
            b,
            q,
            &ExecEvent::AccountAccess(system_access(HISTORY_CONTRACT, 0, 1)),
        );
        let mut key = [0u8; 32];
        key[24..].copy_from_slice(&((number - 1) % 8191).to_be_bytes());
        push(
            b,
            q,
            &ExecEvent::StorageAccess(StorageAccess {
                address: HISTORY_CONTRACT,
                index: 0,
                access_context: 0,
                modified: true,
                transient: false,
                key,
                start_value: [0; 32],
                end_value: self.parent_hash,
            }),
        );
        self.transactions(n_txns);
        let gas_used: u64 = self.txns.iter().map(|t| t.gas_used).sum();
        let logs: u64 = self.txns.iter().map(|t| u64::from(t.log_count)).sum();
        let (b, q) = (&mut self.batch, &mut self.queue);
        push(
            b,
            q,
            &ExecEvent::AccountAccessListHeader(AccountAccessListHeader {
                entry_count: 1,
                access_context: 2,
            }),
        );
        let mut fees = system_access(validator.beneficiary, 2, 0);
        fees.is_balance_modified = true;
        fees.prestate.balance = U256::from_u128(1 << 80);
        fees.modified_balance = U256::from_u128((1 << 80) + u128::from(gas_used) * 1_000_000_000);
        push(b, q, &ExecEvent::AccountAccess(fees));
        push(b, q, &ExecEvent::BlockPerfEvmExit);
        let eth_hash = self.rng.array();
        if reject {
            // InvalidGasUsed, WrongMerkleRoot or WrongLogsBloom: failures found after execution.
            let reason = [14, 16, 13][self.rng.below(3) as usize];
            push(
                &mut self.batch,
                &mut self.queue,
                &ExecEvent::BlockReject(reason),
            );
        } else {
            let mut bloom = [0u8; 256];
            for _ in 0..logs.min(600) * 3 {
                let bit = self.rng.below(2048) as usize;
                bloom[bit / 8] |= 1 << (bit % 8);
            }
            let end = BlockEnd {
                eth_block_hash: eth_hash,
                state_root: self.rng.array(),
                receipts_root: self.rng.array(),
                logs_bloom: bloom,
                gas_used,
            };
            push(&mut self.batch, &mut self.queue, &ExecEvent::BlockEnd(end));
        }
        Proposal {
            tag,
            round: self.round,
            eth_hash,
        }
    }

    /// Generates `n` transactions and appends their events, interleaved, to the queue.
    fn transactions(&mut self, n: u64) {
        self.staging.clear();
        self.txns.clear();
        let facts = BlockFacts {
            chain_id: self.opts.chain_id,
            base_fee: self.base_fee,
        };
        for i in 0..n {
            let t = txn::generate(
                &mut self.world,
                &mut self.rng,
                facts,
                i as u32,
                &mut self.batch,
                &mut self.staging,
                &mut self.scratch,
            );
            self.txns.push(t);
        }
        self.stats.txns += n;
        // Phase A of up to `window` started transactions may run ahead of the commits, which
        // happen in index order (each after its own phase A).
        let window = self.rng.range(1, 8) as usize;
        let n = self.txns.len();
        let (mut started, mut committed) = (0usize, 0usize);
        while committed < n {
            let can_start = started < n && started - committed < window;
            if can_start && (started == committed || self.rng.bool()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode::decode;
    use crate::event::kind::EventType;
    use std::collections::{HashMap, HashSet};

    /// Per-proposal bookkeeping for the grammar checks.
    #[derive(Default)]
    struct Open {
        txn_count: u64,
        headers: HashSet<u64>,
        committed: Vec<u64>,
        gas: u64,
        logs: HashMap<u64, (u32, u32)>,
        frames: HashMap<u64, (u32, u32)>,
        accounts_expected: u32,
        storage_expected: u32,
    }

    #[test]
    fn the_stream_follows_the_writer_grammar_over_many_heights() {
        let opts = SynthOptions {
            seed: 7,
            txns_per_block: 30,
            fork_probability: 0.3,
            reject_probability: 0.2,
            ..SynthOptions::default()
        };
        let mut g = Generator::new(opts);
        let mut open: Option<Open> = None;
        let mut ids = HashSet::new();
        let mut last_verified = 0;
        let mut qcs = 0;
        while g.stats().heights < 40 {
            let ev = g.next_event();
            let (ty, txn, scoped) = (ev.event_type, ev.txn_id, ev.block_scoped);
            let decoded = decode(ty.code(), ev.payload).unwrap();
            assert_eq!(decoded.event_type(), ty);
            assert_eq!(
                scoped,
                !matches!(
                    ty,
                    EventType::BlockQc | EventType::BlockFinalized | EventType::BlockVerified
                )
            );
            assert_eq!(
                scoped,
                open.is_some() || ty == EventType::BlockStart,
                "{ty:?}"
            );
            match decoded {
                ExecEvent::BlockStart(b) => {
                    assert!(
                        open.is_none(),
                        "no second BLOCK_START before the block ends"
                    );
                    assert!(ids.insert(b.block_tag.id), "block ids unique per proposal");
                    open = Some(Open {
                        txn_count: b.eth_block_input.txn_count,
                        ..Open::default()
                    });
                }
                ExecEvent::BlockQc(q) => {
                    assert!(ids.contains(&q.block_tag.id));
                    qcs += 1;
                }
                ExecEvent::BlockFinalized(t) => assert!(ids.contains(&t.id), "finalizes a seen id"),
                ExecEvent::BlockVerified { block_number } => {
                    assert!(block_number > last_verified);
                    last_verified = block_number;
                }
                ExecEvent::TxnHeaderStart(_) => {
                    assert!(open.as_mut().unwrap().headers.insert(txn));
                }
                ExecEvent::TxnEvmOutput(o) => {
                    let b = open.as_mut().unwrap();
                    assert!(b.headers.contains(&txn), "phase A before commit");
                    assert_eq!(
                        b.committed.last().map_or(1, |l| l + 1),
                        txn,
                        "commits in index order"
                    );
                    b.committed.push(txn);
                    b.gas += o.gas_used;
                    b.logs.insert(txn, (o.log_count, 0));
                    b.frames.insert(txn, (o.call_frame_count, 0));
                }
                ExecEvent::TxnLog(l) => {
                    let e = open.as_mut().unwrap().logs.get_mut(&txn).unwrap();
                    assert_eq!(l.index, e.1);
                    e.1 += 1;
                }
                ExecEvent::TxnCallFrame(c) => {
                    let e = open.as_mut().unwrap().frames.get_mut(&txn).unwrap();
                    assert_eq!(c.index, e.1);
                    e.1 += 1;
                }
                ExecEvent::AccountAccessListHeader(h) => {
                    let b = open.as_mut().unwrap();
                    assert_eq!((b.accounts_expected, b.storage_expected), (0, 0));
                    b.accounts_expected = h.entry_count;
                }
                ExecEvent::AccountAccess(a) => {
                    let b = open.as_mut().unwrap();
                    assert_eq!(b.storage_expected, 0);
                    b.accounts_expected -= 1;
                    b.storage_expected = a.storage_key_count + a.transient_count;
                }
                ExecEvent::StorageAccess(_) => {
                    open.as_mut().unwrap().storage_expected -= 1;
                }
                ExecEvent::BlockEnd(_) | ExecEvent::BlockReject(_) => {
                    let b = open.take().unwrap();
                    assert_eq!(b.headers.len() as u64, b.txn_count);
                    assert_eq!(b.committed.len() as u64, b.txn_count);
                    for (want, got) in b.logs.values().chain(b.frames.values()) {
                        assert_eq!(want, got);
                    }
                    if let ExecEvent::BlockEnd(e) = decoded {
                        assert_eq!(e.gas_used, b.gas);
                    }
                }
                _ => {}
            }
        }
        let s = g.stats();
        assert!(s.forks > 0 && s.rejects > 0, "{s:?}");
        assert_eq!(s.proposals, s.heights + s.forks + s.rejects);
        assert_eq!(qcs, s.heights - 1);
        assert!(last_verified >= opts.first_block_number + 30);
    }

    #[test]
    fn same_seed_same_stream() {
        let opts = SynthOptions {
            txns_per_block: 5,
            ..SynthOptions::default()
        };
        let (mut a, mut b) = (Generator::new(opts), Generator::new(opts));
        for _ in 0..2000 {
            let (x, y) = (a.next_event(), b.next_event());
            assert_eq!((x.event_type, x.payload), (y.event_type, y.payload));
        }
        assert_eq!(SynthOptions::for_rate(0.0).txns_per_block, 1);
        assert!(SynthOptions::for_rate(1_000_000.0).txns_per_block > 10_000);
    }
}
