//! Shared helpers of the chain_* integration tests: a synthetic chain driven through the
//! real [`ChainPipeline`], with event JSON shaped like the encoder's (a `commit_stage`
//! string with its `stage_span`).
#![allow(dead_code)]

use ringgate::ingest::chain::gate::GateConfig;
use ringgate::ingest::chain::input::{BlockId, ChainInput};
use ringgate::ingest::chain::pipeline::{ChainConfig, ChainPipeline};
use ringgate::model::kind::EventType;
use ringgate::model::outbound::{EncodedEvent, EventBody, FilterKeys, MetaKind, Outbound};
use ringgate::model::seqno::ServerSeqno;
use ringgate::model::stage::CommitStage;

pub fn id(n: u8) -> BlockId {
    let mut id = [0u8; 32];
    id[31] = n;
    id[0] = 0xb1;
    id
}

/// The body of an encoded event as the encoder would make it; in-block events carry
/// `"commit_stage":"Proposed"` and its span.
pub fn encoded(
    ty: EventType,
    ring_seqno: u64,
    block_seqno: u64,
    block: Option<(BlockId, u64)>,
    txn_idx: Option<u32>,
) -> EventBody {
    let mut keys = FilterKeys::new(ty);
    keys.block_seqno = block_seqno;
    keys.block_id = block.map(|b| b.0);
    keys.block_number = block.map(|b| b.1);
    keys.txn_idx = txn_idx;
    let mut json = format!("{{\"event_name\":\"{}\"", ty.name());
    let mut stage_span = None;
    if block_seqno != 0 {
        if let Some((_, n)) = block {
            json.push_str(&format!(",\"block_number\":{n}"));
        }
        json.push_str(",\"commit_stage\":\"");
        let start = json.len() as u32;
        json.push_str("Proposed");
        stage_span = Some(start..json.len() as u32);
        json.push('"');
    }
    json.push_str(&format!(
        ",\"payload\":{{\"type\":\"{}\"}},\"seqno\":{ring_seqno},\"timestamp_ns\":0}}",
        ty.name()
    ));
    EventBody {
        origin_seqno: 0,
        ring_seqno,
        timestamp_ns: 0,
        keys,
        json: json.into_bytes().into(),
        stage_span,
    }
}

/// A synthetic chain: ring seqnos from 1, 1 ms of ring time per event, 400 ms of block time
/// per block number.
pub struct Sim {
    pub pipe: ChainPipeline,
    pub seqnos: ServerSeqno,
    pub frames: Vec<Outbound>,
    pub ring: u64,
    pub ts: u64,
    /// `min_stage` copies released after each event: `None` = all queued (an idle ring
    /// between events), `Some(n)` = at most `n` (the tailer's budget on a busy ring).
    pub release_per_event: Option<usize>,
    /// Ethereum hash of the last proposal ended at each number: the parent a new proposal
    /// names by default (the chain extends the latest block one height below).
    pub ended: std::collections::BTreeMap<u64, [u8; 32]>,
}

/// The Ethereum hash [`Sim::end`] gives proposal `n`.
pub fn eth_hash(n: u8) -> [u8; 32] {
    [n; 32]
}

impl Sim {
    pub fn new(config: ChainConfig) -> Sim {
        Sim {
            pipe: ChainPipeline::new(config),
            seqnos: ServerSeqno::new(),
            frames: Vec::new(),
            ring: 0,
            ts: 1_000_000_000,
            release_per_event: None,
            ended: std::collections::BTreeMap::new(),
        }
    }

    /// A chain with the default config but for its `min_stage` gate bounds.
    pub fn with_gate(gate: GateConfig) -> Sim {
        Sim::new(ChainConfig {
            gate,
            ..ChainConfig::default()
        })
    }

    /// Releases up to `budget` queued `min_stage` copies, as the tailer does between ring
    /// reads; returns how many.
    pub fn release(&mut self, budget: usize) -> usize {
        let frames = &mut self.frames;
        self.pipe
            .drain_releases(budget, &mut self.seqnos, &mut |f| frames.push(f))
    }

    /// Releases every queued copy, as the tailer does when the ring is idle.
    pub fn release_all(&mut self) {
        while self.release(usize::MAX) > 0 {}
        assert!(!self.pipe.has_pending_releases());
    }

    /// One ring event through the pipeline; returns its ring seqno.
    pub fn step(
        &mut self,
        input: Option<ChainInput>,
        ty: EventType,
        block_seqno: u64,
        block: Option<(BlockId, u64)>,
        txn_idx: Option<u32>,
    ) -> u64 {
        self.ring += 1;
        let ring = self.ring;
        let block_seqno = if ty == EventType::BlockStart {
            ring
        } else {
            block_seqno
        };
        let ev = encoded(ty, ring, block_seqno, block, txn_idx);
        let frames = &mut self.frames;
        self.pipe
            .process(input.as_ref(), ev, &mut self.seqnos, &mut |f| {
                frames.push(f)
            });
        match self.release_per_event {
            None => self.release_all(),
            Some(budget) => {
                self.release(budget);
            }
        }
        ring
    }

    pub fn now(&mut self) -> u64 {
        self.ts += 1_000_000;
        self.ts
    }

    /// BLOCK_START of proposal `n` at `number`, on the last proposal ended one height below;
    /// returns its block seqno.
    pub fn start(&mut self, n: u8, number: u64, txns: u32) -> u64 {
        let parent = number
            .checked_sub(1)
            .and_then(|p| self.ended.get(&p).copied())
            .unwrap_or([0; 32]);
        self.start_with_parent(n, number, txns, parent)
    }

    /// BLOCK_START of proposal `n` at `number` whose parent has Ethereum hash `parent`.
    pub fn start_with_parent(&mut self, n: u8, number: u64, txns: u32, parent: [u8; 32]) -> u64 {
        let ts = self.now();
        let input = ChainInput::BlockStart {
            block_seqno: self.ring + 1,
            id: id(n),
            number,
            parent_eth_hash: parent,
            txn_count: u64::from(txns),
            block_time_ns: number * 400_000_000,
            timestamp_ns: ts,
        };
        self.step(
            Some(input),
            EventType::BlockStart,
            0,
            Some((id(n), number)),
            None,
        )
    }

    /// The transactions of a block: perf enter, header, a log, a storage write to a slot
    /// shared by all, perf exit.
    pub fn txns(&mut self, bs: u64, n: u8, number: u64, txns: u32) {
        let b = Some((id(n), number));
        for t in 0..txns {
            let ts = self.now();
            self.step(
                Some(ChainInput::TxnPerfEnter {
                    block_seqno: bs,
                    txn_idx: t,
                    timestamp_ns: ts,
                }),
                EventType::TxnPerfEvmEnter,
                bs,
                b,
                Some(t),
            );
            let ts = self.now();
            self.step(
                Some(ChainInput::TxnHeaderStart {
                    block_seqno: bs,
                    txn_idx: t,
                    timestamp_ns: ts,
                }),
                EventType::TxnHeaderStart,
                bs,
                b,
                Some(t),
            );
            self.step(None, EventType::TxnLog, bs, b, Some(t));
            let ts = self.now();
            self.step(
                Some(ChainInput::StorageAccess {
                    block_seqno: bs,
                    txn_idx: Some(t),
                    address: [7; 20],
                    key: [1; 32],
                    modified: true,
                    transient: false,
                    timestamp_ns: ts,
                }),
                EventType::StorageAccess,
                bs,
                b,
                Some(t),
            );
            let ts = self.now();
            self.step(
                Some(ChainInput::TxnPerfExit {
                    block_seqno: bs,
                    txn_idx: t,
                    timestamp_ns: ts,
                }),
                EventType::TxnPerfEvmExit,
                bs,
                b,
                Some(t),
            );
        }
    }

    pub fn end(&mut self, bs: u64, n: u8, number: u64) {
        let ts = self.now();
        self.ended.insert(number, eth_hash(n));
        self.step(
            Some(ChainInput::BlockEnd {
                block_seqno: bs,
                gas_used: 21_000,
                eth_block_hash: eth_hash(n),
                timestamp_ns: ts,
            }),
            EventType::BlockEnd,
            bs,
            Some((id(n), number)),
            None,
        );
    }

    /// A whole executed proposal; returns its block seqno.
    pub fn block(&mut self, n: u8, number: u64, txns: u32) -> u64 {
        let bs = self.start(n, number, txns);
        self.txns(bs, n, number, txns);
        self.end(bs, n, number);
        bs
    }

    /// A whole executed proposal `n` on proposal `parent` (by its Ethereum hash); returns
    /// its block seqno.
    pub fn block_on(&mut self, n: u8, number: u64, txns: u32, parent: u8) -> u64 {
        let bs = self.start_with_parent(n, number, txns, eth_hash(parent));
        self.txns(bs, n, number, txns);
        self.end(bs, n, number);
        bs
    }

    /// A proposal that execution rejects; returns its block seqno.
    pub fn rejected_block(&mut self, n: u8, number: u64, txns: u32) -> u64 {
        let bs = self.start(n, number, txns);
        self.txns(bs, n, number, txns);
        let ts = self.now();
        self.step(
            Some(ChainInput::BlockReject {
                block_seqno: bs,
                timestamp_ns: ts,
            }),
            EventType::BlockReject,
            bs,
            Some((id(n), number)),
            None,
        );
        bs
    }

    pub fn qc(&mut self, n: u8, number: u64) {
        let ts = self.now();
        let input = ChainInput::Qc {
            id: id(n),
            number,
            timestamp_ns: ts,
        };
        self.step(Some(input), EventType::BlockQc, 0, None, None);
    }

    pub fn finalized(&mut self, n: u8, number: u64) {
        let ts = self.now();
        let input = ChainInput::Finalized {
            id: id(n),
            number,
            timestamp_ns: ts,
        };
        self.step(Some(input), EventType::BlockFinalized, 0, None, None);
    }

    pub fn verified(&mut self, number: u64) {
        let ts = self.now();
        let input = ChainInput::Verified {
            number,
            timestamp_ns: ts,
        };
        self.step(Some(input), EventType::BlockVerified, 0, None, None);
    }

    /// Event frames of the stream gated at `gate`.
    pub fn stream(&self, gate: CommitStage) -> Vec<&EncodedEvent> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Outbound::Event(e) if e.gate == gate => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Meta frames of `kind`, as text.
    pub fn metas(&self, kind: MetaKind) -> Vec<String> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Outbound::Meta(m) if m.kind == kind => {
                    Some(String::from_utf8_lossy(&m.frame).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    /// Asserts trust invariant 1 on everything emitted: seqnos 1, 2, 3, … in push order.
    pub fn assert_seqnos_dense(&self) {
        for (i, f) in self.frames.iter().enumerate() {
            assert_eq!(f.server_seqno(), i as u64 + 1, "frame {i} out of sequence");
        }
    }
}

/// The event object as sessions send it (a `min_stage` copy names its own stage).
pub fn json(e: &EncodedEvent) -> String {
    let mut out = Vec::new();
    e.write_json(&mut out);
    String::from_utf8(out).unwrap_or_default()
}
