//! The synthetic chain generator: a deterministic (seeded), endless stream of realistic Monad
//! execution events in the real payload format, in the order the daemon records them
//! (docs/ring-format.md#s4-2, #s7-5 to #s7-8). This file is the height loop and the consensus
//! pattern; [`crate::tools::synth::block`] builds each proposal's events.
//!
//! Runs on the synthetic writer's thread (`ringgate write` / `demo`, tests, benches). Input:
//! [`SynthOptions`]. Output: [`SynthEvent`]s (type, flow tags other than the block seqno,
//! payload bytes built with [`crate::ingest::event::build`]); the driver assigns seqnos and the block
//! flow tag.
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
//! Invariants: the same options always give the same stream, byte for byte. Memory: one
//! height's events live in a reused arena, nothing grows with the chain length except bounded
//! world state (see [`crate::tools::synth::world`]) and the last 8 canonical proposals.

use std::collections::VecDeque;

use crate::ingest::event::payload::*;
pub use crate::tools::synth::batch::SynthEvent;
use crate::tools::synth::block::{BlockBuilder, ChainHead, Proposal, Slot};
pub use crate::tools::synth::options::{SynthOptions, EVENTS_PER_TXN};
use crate::tools::synth::rng::Rng;
use crate::tools::synth::world::World;

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

/// The endless synthetic event stream. See the module docs for the chain it produces.
#[derive(Debug)]
pub struct Generator {
    opts: SynthOptions,
    rng: Rng,
    world: World,
    blocks: BlockBuilder,
    /// Index in `blocks.queue` of the next event to hand out.
    next: usize,
    height: u64,
    head: ChainHead,
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
            blocks: BlockBuilder::default(),
            next: 0,
            height: opts.first_block_number,
            head: ChainHead {
                round: opts.first_block_number * 2,
                base_fee: 50_000_000_000,
                parent_hash,
            },
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
        while self.next >= self.blocks.queue.len() {
            self.next_height();
        }
        let p = self.blocks.queue[self.next];
        self.next += 1;
        self.stats.events += 1;
        SynthEvent {
            event_type: p.ty,
            txn_id: p.txn_id,
            account_index: p.account_index,
            block_scoped: p.block_scoped,
            payload: &self.blocks.batch.bytes[p.start..p.end],
        }
    }

    fn next_height(&mut self) {
        self.blocks.clear();
        self.next = 0;
        let number = self.height;
        let first = self.opts.first_block_number;
        if let Some(parent) = self.pending_qc.take() {
            self.blocks.consensus(&ExecEvent::BlockQc(BlockQc {
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
        self.head.parent_hash = canonical.eth_hash;
        self.canonical.push_back(canonical);
        while self.canonical.len() > 8 {
            self.canonical.pop_front();
        }
        if number >= first + 2 {
            let target = number - 2;
            if let Some(p) = self.canonical.iter().find(|p| p.tag.block_number == target) {
                let tag = p.tag;
                self.blocks.consensus(&ExecEvent::BlockFinalized(tag));
            }
        }
        if number >= first + 5 {
            self.blocks.consensus(&ExecEvent::BlockVerified {
                block_number: number - 5,
            });
        }
        self.pending_qc = Some(canonical);
        self.height += 1;
        self.stats.heights += 1;
    }

    /// Generates one proposal at `number` into the queue and counts it.
    fn proposal(&mut self, number: u64, proposal_no: u64, reject: bool) -> Proposal {
        let (proposal, txns) = self.blocks.proposal(
            &mut self.rng,
            &mut self.world,
            &self.opts,
            &mut self.head,
            Slot {
                number,
                proposal_no,
                reject,
            },
        );
        self.stats.proposals += 1;
        self.stats.txns += txns;
        proposal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::decode::decode;
    use crate::model::kind::EventType;
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
