//! Per-block storage contention and execution parallelism (`ContentionData`).
//!
//! Runs on the tailer core: O(1) hash updates per TXN_PERF_EVM_ENTER/EXIT, TXN_HEADER_START
//! and STORAGE_ACCESS; the report is built once at BLOCK_END (sorting the block's slots and
//! contracts, bounded by the block's own size). A rejected block's state is dropped.
//!
//! Emitted at BLOCK_END of every executed proposal, not at finalization: contention and
//! parallelism are properties of the execution, known then, and a client that wants only
//! canonical blocks correlates `block_id` with `Lifecycle` frames. See docs/analytics.md for
//! the definition of every figure; the two defects of the old gateway fixed here are:
//! execution time comes from TXN_PERF_EVM_ENTER/EXIT (which bracket the EVM run), not from
//! TXN_HEADER_START/TXN_END (recorded after it, microseconds apart), and a slot is contended
//! only if two or more transactions touch it *and at least one writes it*.
//!
//! Never: keep state across blocks (only the latest report), or count transient storage.

use std::collections::hash_map::Entry;

use crate::ingest::chain::input::{BlockId, ChainInput};
use crate::ingest::chain::key_hash::{KeyMap, KeySet};

/// List sizes of the report. Defaults as the old gateway: 20 slots, 15 contracts, 15 edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentionConfig {
    pub top_slots: usize,
    pub top_contracts: usize,
    pub top_edges: usize,
    /// Contracts per transaction considered for co-access edges (pairs grow quadratically);
    /// default 64 (2,016 pairs). Contracts beyond it in one transaction are not paired.
    pub max_edge_contracts_per_txn: usize,
}

impl Default for ContentionConfig {
    fn default() -> Self {
        ContentionConfig {
            top_slots: 20,
            top_contracts: 15,
            top_edges: 15,
            max_edge_contracts_per_txn: 64,
        }
    }
}

/// One contended slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotContention {
    pub address: [u8; 20],
    pub slot: [u8; 32],
    /// Distinct transactions that touched the slot.
    pub txn_count: u32,
    /// Accesses of the slot, including block-scope ones.
    pub access_count: u64,
    /// Distinct transactions that wrote the slot (added field).
    pub writer_count: u32,
}

/// One contract with at least one contended slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractContention {
    pub address: [u8; 20],
    /// Distinct slots of the contract touched by some transaction.
    pub total_slots: u32,
    pub contended_slots: u32,
    pub total_accesses: u64,
    /// `contended_slots / total_slots`.
    pub contention_score: f64,
}

/// Two contracts whose storage the same transactions touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractEdge {
    pub contract_a: [u8; 20],
    pub contract_b: [u8; 20],
    pub shared_txn_count: u32,
}

/// The body of a `ContentionData` frame (and of `/v1/contention`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContentionReport {
    pub block_number: u64,
    /// Consensus id of the proposal (added field).
    pub block_id: BlockId,
    /// BLOCK_END − BLOCK_START ring time.
    pub block_wall_time_ns: u64,
    /// Σ (TXN_PERF_EVM_EXIT − TXN_PERF_EVM_ENTER) over transactions with both.
    pub total_tx_time_ns: u64,
    /// `max(0, total_tx − wall) / total_tx × 100`: the share of summed execution time hidden
    /// by running transactions in parallel (0 when sequential or no data).
    pub parallel_efficiency_pct: f64,
    /// `total_tx / wall` (added field): average transactions executing at once.
    pub parallel_speedup: f64,
    pub total_unique_slots: u64,
    pub contended_slot_count: u64,
    /// `contended / unique` (0 when no slot).
    pub contention_ratio: f64,
    /// TXN_HEADER_START events of the block.
    pub total_txn_count: u64,
    /// Transactions with both perf events (added field).
    pub timed_txn_count: u64,
    pub top_contended_slots: Vec<SlotContention>,
    pub top_contended_contracts: Vec<ContractContention>,
    pub contract_edges: Vec<ContractEdge>,
}

#[derive(Debug, Default)]
struct SlotStat {
    contract: u32,
    access_count: u64,
    txn_count: u32,
    writer_count: u32,
}

#[derive(Debug)]
struct ContractStat {
    address: [u8; 20],
    total_slots: u32,
    total_accesses: u64,
}

#[derive(Debug)]
struct BlockAcc {
    block_seqno: u64,
    id: BlockId,
    number: u64,
    start_ns: u64,
    txn_headers: u64,
    perf_enter: KeyMap<u32, u64>,
    total_tx_ns: u64,
    timed_txns: u64,
    slot_ids: KeyMap<([u8; 20], [u8; 32]), u32>,
    slot_keys: Vec<[u8; 32]>,
    slots: Vec<SlotStat>,
    /// (slot, txn) → wrote.
    slot_txn: KeyMap<(u32, u32), bool>,
    contract_ids: KeyMap<[u8; 20], u32>,
    contracts: Vec<ContractStat>,
    txn_contracts: KeyMap<u32, Vec<u32>>,
    txn_contract_seen: KeySet<(u32, u32)>,
}

/// Accumulates the current block and keeps the latest report.
#[derive(Debug, Default)]
pub struct ContentionTracker {
    config: ContentionConfig,
    block: Option<BlockAcc>,
    /// The previous block's accumulator, cleared and reused so that steady state does not
    /// reallocate its maps every block.
    spare: Option<BlockAcc>,
    latest: Option<ContentionReport>,
    /// In-block inputs whose block seqno is not the block being accumulated.
    stray_inputs: u64,
}

impl ContentionTracker {
    /// No block yet.
    pub fn new(config: ContentionConfig) -> ContentionTracker {
        ContentionTracker {
            config,
            ..ContentionTracker::default()
        }
    }

    /// Applies one input; at BLOCK_END returns the block's report (also kept as latest).
    pub fn observe(&mut self, input: &ChainInput) -> Option<ContentionReport> {
        match *input {
            ChainInput::BlockStart {
                block_seqno,
                id,
                number,
                timestamp_ns,
                ..
            } => {
                if let Some(old) = self.block.take() {
                    // BLOCK_START without the previous block's end (attached mid-block).
                    self.spare = Some(old);
                }
                let mut acc = self.spare.take().unwrap_or_else(BlockAcc::empty);
                acc.reset(block_seqno, id, number, timestamp_ns);
                self.block = Some(acc);
                None
            }
            ChainInput::BlockEnd {
                block_seqno,
                timestamp_ns,
                ..
            } => {
                let acc = self.take_if(block_seqno)?;
                let report = acc.report(timestamp_ns, &self.config);
                self.spare = Some(acc);
                self.latest = Some(report.clone());
                Some(report)
            }
            ChainInput::BlockReject { block_seqno, .. }
            | ChainInput::BlockEvmError { block_seqno, .. } => {
                self.spare = self.take_if(block_seqno).or(self.spare.take());
                None
            }
            ChainInput::TxnHeaderStart { block_seqno, .. } => {
                if let Some(b) = self.current(block_seqno) {
                    b.txn_headers += 1;
                }
                None
            }
            ChainInput::TxnPerfEnter {
                block_seqno,
                txn_idx,
                timestamp_ns,
            } => {
                if let Some(b) = self.current(block_seqno) {
                    b.perf_enter.insert(txn_idx, timestamp_ns);
                }
                None
            }
            ChainInput::TxnPerfExit {
                block_seqno,
                txn_idx,
                timestamp_ns,
            } => {
                if let Some(b) = self.current(block_seqno) {
                    if let Some(enter) = b.perf_enter.remove(&txn_idx) {
                        b.total_tx_ns += timestamp_ns.saturating_sub(enter);
                        b.timed_txns += 1;
                    }
                }
                None
            }
            ChainInput::StorageAccess {
                block_seqno,
                txn_idx,
                address,
                key,
                modified,
                transient: false,
                ..
            } => {
                if let Some(b) = self.current(block_seqno) {
                    b.storage(txn_idx, address, key, modified);
                }
                None
            }
            _ => None,
        }
    }

    fn current(&mut self, block_seqno: u64) -> Option<&mut BlockAcc> {
        match self.block.as_mut() {
            Some(b) if b.block_seqno == block_seqno => Some(b),
            _ => {
                self.stray_inputs += 1;
                None
            }
        }
    }

    fn take_if(&mut self, block_seqno: u64) -> Option<BlockAcc> {
        if self.block.as_ref()?.block_seqno == block_seqno {
            self.block.take()
        } else {
            self.stray_inputs += 1;
            None
        }
    }

    /// The last report (for `/v1/contention` and connect-time snapshots).
    pub fn latest(&self) -> Option<&ContentionReport> {
        self.latest.as_ref()
    }

    /// In-block inputs that did not belong to the block being accumulated.
    pub fn stray_inputs(&self) -> u64 {
        self.stray_inputs
    }
}

impl BlockAcc {
    fn empty() -> BlockAcc {
        BlockAcc {
            block_seqno: 0,
            id: [0; 32],
            number: 0,
            start_ns: 0,
            txn_headers: 0,
            perf_enter: KeyMap::default(),
            total_tx_ns: 0,
            timed_txns: 0,
            slot_ids: KeyMap::default(),
            slot_keys: Vec::new(),
            slots: Vec::new(),
            slot_txn: KeyMap::default(),
            contract_ids: KeyMap::default(),
            contracts: Vec::new(),
            txn_contracts: KeyMap::default(),
            txn_contract_seen: KeySet::default(),
        }
    }

    /// Starts a block, keeping the allocations of the previous one.
    fn reset(&mut self, block_seqno: u64, id: BlockId, number: u64, start_ns: u64) {
        self.block_seqno = block_seqno;
        self.id = id;
        self.number = number;
        self.start_ns = start_ns;
        self.txn_headers = 0;
        self.perf_enter.clear();
        self.total_tx_ns = 0;
        self.timed_txns = 0;
        self.slot_ids.clear();
        self.slot_keys.clear();
        self.slots.clear();
        self.slot_txn.clear();
        self.contract_ids.clear();
        self.contracts.clear();
        self.txn_contracts.clear();
        self.txn_contract_seen.clear();
    }

    /// One storage access: one lookup of the slot (its contract comes with it) and one of
    /// the (slot, transaction) pair; the contract is looked up only for a new slot, and the
    /// transaction's co-access edge only for a new pair (a transaction that touched the slot
    /// before has its edge to that contract already).
    fn storage(&mut self, txn: Option<u32>, address: [u8; 20], key: [u8; 32], modified: bool) {
        let slot = match self.slot_ids.entry((address, key)) {
            Entry::Occupied(o) => *o.get(),
            Entry::Vacant(v) => {
                let contracts = &mut self.contracts;
                let contract = *self.contract_ids.entry(address).or_insert_with(|| {
                    contracts.push(ContractStat {
                        address,
                        total_slots: 0,
                        total_accesses: 0,
                    });
                    (contracts.len() - 1) as u32
                });
                self.slots.push(SlotStat {
                    contract,
                    ..SlotStat::default()
                });
                self.slot_keys.push(key);
                *v.insert((self.slots.len() - 1) as u32)
            }
        };
        let s = &mut self.slots[slot as usize];
        let contract = s.contract;
        let c = &mut self.contracts[contract as usize];
        c.total_accesses += 1;
        s.access_count += 1;
        let Some(txn) = txn else {
            return;
        };
        match self.slot_txn.entry((slot, txn)) {
            Entry::Vacant(v) => {
                v.insert(modified);
                if s.txn_count == 0 {
                    c.total_slots += 1;
                }
                s.txn_count += 1;
                if modified {
                    s.writer_count += 1;
                }
                // First time this transaction touches this slot: maybe its contract too.
                if self.txn_contract_seen.insert((txn, contract)) {
                    self.txn_contracts.entry(txn).or_default().push(contract);
                }
            }
            Entry::Occupied(mut o) => {
                if modified && !*o.get() {
                    *o.get_mut() = true;
                    s.writer_count += 1;
                }
            }
        }
    }

    fn report(&self, end_ns: u64, config: &ContentionConfig) -> ContentionReport {
        let wall = end_ns.saturating_sub(self.start_ns);
        let total = self.total_tx_ns;
        let parallel_efficiency_pct = if total == 0 {
            0.0
        } else {
            total.saturating_sub(wall) as f64 / total as f64 * 100.0
        };
        let parallel_speedup = if wall == 0 {
            0.0
        } else {
            total as f64 / wall as f64
        };
        let contended = |s: &SlotStat| s.txn_count >= 2 && s.writer_count >= 1;
        let total_unique_slots = self.slots.iter().filter(|s| s.txn_count >= 1).count() as u64;
        let mut contended_per_contract = vec![0u32; self.contracts.len()];
        let mut hot: Vec<u32> = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if contended(s) {
                hot.push(i as u32);
                contended_per_contract[s.contract as usize] += 1;
            }
        }
        let contended_slot_count = hot.len() as u64;
        hot.sort_by(|&a, &b| {
            let (x, y) = (&self.slots[a as usize], &self.slots[b as usize]);
            y.txn_count
                .cmp(&x.txn_count)
                .then(y.access_count.cmp(&x.access_count))
                .then(a.cmp(&b))
        });
        let top_contended_slots = hot
            .iter()
            .take(config.top_slots)
            .map(|&i| {
                let s = &self.slots[i as usize];
                SlotContention {
                    address: self.contracts[s.contract as usize].address,
                    slot: self.slot_keys[i as usize],
                    txn_count: s.txn_count,
                    access_count: s.access_count,
                    writer_count: s.writer_count,
                }
            })
            .collect();
        let mut contracts: Vec<ContractContention> = self
            .contracts
            .iter()
            .zip(&contended_per_contract)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| ContractContention {
                address: c.address,
                total_slots: c.total_slots,
                contended_slots: *n,
                total_accesses: c.total_accesses,
                contention_score: if c.total_slots == 0 {
                    0.0
                } else {
                    f64::from(*n) / f64::from(c.total_slots)
                },
            })
            .collect();
        contracts.sort_by(|a, b| {
            b.contended_slots
                .cmp(&a.contended_slots)
                .then(b.contention_score.total_cmp(&a.contention_score))
                .then(a.address.cmp(&b.address))
        });
        contracts.truncate(config.top_contracts);
        let mut edges: KeyMap<(u32, u32), u32> = KeyMap::default();
        for list in self.txn_contracts.values() {
            let mut l: Vec<u32> = list
                .iter()
                .copied()
                .take(config.max_edge_contracts_per_txn)
                .collect();
            l.sort_unstable();
            for (i, &a) in l.iter().enumerate() {
                for &b in &l[i + 1..] {
                    *edges.entry((a, b)).or_insert(0) += 1;
                }
            }
        }
        let mut edges: Vec<ContractEdge> = edges
            .into_iter()
            .map(|((a, b), n)| ContractEdge {
                contract_a: self.contracts[a as usize].address,
                contract_b: self.contracts[b as usize].address,
                shared_txn_count: n,
            })
            .collect();
        edges.sort_by(|a, b| {
            b.shared_txn_count
                .cmp(&a.shared_txn_count)
                .then(a.contract_a.cmp(&b.contract_a))
                .then(a.contract_b.cmp(&b.contract_b))
        });
        edges.truncate(config.top_edges);
        ContentionReport {
            block_number: self.number,
            block_id: self.id,
            block_wall_time_ns: wall,
            total_tx_time_ns: total,
            parallel_efficiency_pct,
            parallel_speedup,
            total_unique_slots,
            contended_slot_count,
            contention_ratio: if total_unique_slots == 0 {
                0.0
            } else {
                contended_slot_count as f64 / total_unique_slots as f64
            },
            total_txn_count: self.txn_headers,
            timed_txn_count: self.timed_txns,
            top_contended_slots,
            top_contended_contracts: contracts,
            contract_edges: edges,
        }
    }
}
