//! Analytics: TPS over finalized blocks only, read/write-aware contention with EVM timing,
//! Space-Saving top-K against a naive oracle.

mod chain_support;

use std::collections::HashMap;

use chain_support::Sim;
use ringgate::ingest::chain::contention::{ContentionConfig, ContentionTracker};
use ringgate::ingest::chain::input::ChainInput;
use ringgate::ingest::chain::pipeline::ChainConfig;
use ringgate::ingest::chain::topk::{SpaceSaving, TopAccesses, TopAccessesConfig};
use ringgate::model::outbound::MetaKind;

#[test]
fn tps_counts_only_finalized_blocks() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.block(1, 10, 10);
    sim.block(2, 10, 50); // abandoned sibling: never counted
    sim.finalized(1, 10);
    sim.rejected_block(3, 11, 70); // rejected: never counted
    sim.block(4, 11, 20);
    sim.finalized(4, 11);
    sim.block(5, 12, 30);
    sim.qc(5, 12); // voted only: not yet counted
    let s = sim.pipe.tps().snapshot();
    assert_eq!((s.finalized_blocks, s.finalized_txns), (2, 30));
    sim.finalized(5, 12);
    let s = sim.pipe.tps().snapshot();
    assert_eq!((s.finalized_blocks, s.finalized_txns), (3, 60));
    // Blocks 400 ms apart: the 20 + 30 transactions that arrived during the 0.8 s since
    // block 10 → 62.5 tps.
    assert_eq!(s.tps_exact, 62.5);
    assert_eq!(s.tps, 63);
    let frames = sim.metas(MetaKind::Tps);
    let values: Vec<&str> = frames
        .iter()
        .map(|f| f.rsplit(':').next().unwrap_or("").trim_end_matches('}'))
        .collect();
    assert_eq!(
        values,
        ["0", "50", "63"],
        "one bare-integer TPS frame per finalized block"
    );
    sim.assert_seqnos_dense();
}

fn storage(bs: u64, txn: Option<u32>, contract: u8, key: u8, modified: bool) -> ChainInput {
    ChainInput::StorageAccess {
        block_seqno: bs,
        txn_idx: txn,
        address: [contract; 20],
        key: [key; 32],
        modified,
        transient: false,
        timestamp_ns: 0,
    }
}

#[test]
fn contention_is_read_write_aware_and_timed_by_evm_perf_events() {
    let (a, b) = (0xaa, 0xbb);
    let bs = 77;
    let mut c = ContentionTracker::new(ContentionConfig::default());
    let mut inputs = vec![ChainInput::BlockStart {
        block_seqno: bs,
        id: [1; 32],
        number: 500,
        parent_eth_hash: [0; 32],
        txn_count: 4,
        block_time_ns: 0,
        timestamp_ns: 1000,
    }];
    for t in 0..4u32 {
        let enter = 1000 + 10 * u64::from(t);
        inputs.push(ChainInput::TxnPerfEnter {
            block_seqno: bs,
            txn_idx: t,
            timestamp_ns: enter,
        });
        inputs.push(ChainInput::TxnHeaderStart {
            block_seqno: bs,
            txn_idx: t,
            timestamp_ns: enter + 99,
        });
        inputs.push(ChainInput::TxnPerfExit {
            block_seqno: bs,
            txn_idx: t,
            timestamp_ns: enter + 100,
        });
    }
    inputs.extend([
        storage(bs, Some(0), a, 1, false), // S1: read-read → not contended
        storage(bs, Some(1), a, 1, false),
        storage(bs, Some(0), a, 2, true), // S2: write + read → contended
        storage(bs, Some(1), a, 2, false),
        storage(bs, Some(2), b, 3, true), // S3: write-write → contended
        storage(bs, Some(3), b, 3, true),
        storage(bs, Some(2), b, 4, true), // S4: one txn twice → not contended
        storage(bs, Some(2), b, 4, false),
        storage(bs, None, a, 5, true), // S5: block scope write + one txn → not contended
        storage(bs, Some(3), a, 5, false),
        ChainInput::StorageAccess {
            // transient: per-transaction, ignored
            block_seqno: bs,
            txn_idx: Some(0),
            address: [a; 20],
            key: [6; 32],
            modified: true,
            transient: true,
            timestamp_ns: 0,
        },
        storage(bs + 1, Some(0), a, 7, true), // another block's seqno: stray, ignored
    ]);
    for i in &inputs {
        assert!(c.observe(i).is_none());
    }
    let r = c
        .observe(&ChainInput::BlockEnd {
            block_seqno: bs,
            gas_used: 0,
            eth_block_hash: [0; 32],
            timestamp_ns: 1200,
        })
        .expect("report at BLOCK_END");
    assert_eq!(r.block_number, 500);
    assert_eq!(r.block_wall_time_ns, 200);
    assert_eq!(r.total_tx_time_ns, 400, "perf enter/exit, not header/end");
    assert_eq!(r.parallel_efficiency_pct, 50.0);
    assert_eq!(r.parallel_speedup, 2.0);
    assert_eq!((r.total_txn_count, r.timed_txn_count), (4, 4));
    assert_eq!(r.total_unique_slots, 5);
    assert_eq!(r.contended_slot_count, 2);
    assert_eq!(r.contention_ratio, 0.4);
    let slots: Vec<(u8, u8, u32, u32)> = r
        .top_contended_slots
        .iter()
        .map(|s| (s.address[0], s.slot[0], s.txn_count, s.writer_count))
        .collect();
    assert_eq!(slots, [(a, 2, 2, 1), (b, 3, 2, 2)]);
    let contracts: Vec<(u8, u32, u32, u64)> = r
        .top_contended_contracts
        .iter()
        .map(|c| {
            (
                c.address[0],
                c.total_slots,
                c.contended_slots,
                c.total_accesses,
            )
        })
        .collect();
    assert_eq!(contracts, [(b, 2, 1, 4), (a, 3, 1, 6)]);
    assert_eq!(r.top_contended_contracts[0].contention_score, 0.5);
    assert_eq!(r.contract_edges.len(), 1);
    let e = &r.contract_edges[0];
    assert_eq!(
        (e.contract_a[0], e.contract_b[0], e.shared_txn_count),
        (a, b, 1)
    );
    assert_eq!(c.latest(), Some(&r));
    assert!(c.stray_inputs() >= 1);
}

#[test]
fn rejected_block_produces_no_contention_report() {
    let mut c = ContentionTracker::new(ContentionConfig::default());
    c.observe(&ChainInput::BlockStart {
        block_seqno: 5,
        id: [1; 32],
        number: 1,
        parent_eth_hash: [0; 32],
        txn_count: 0,
        block_time_ns: 0,
        timestamp_ns: 0,
    });
    c.observe(&storage(5, Some(0), 1, 1, true));
    c.observe(&ChainInput::BlockReject {
        block_seqno: 5,
        timestamp_ns: 9,
    });
    let end = ChainInput::BlockEnd {
        block_seqno: 5,
        gas_used: 0,
        eth_block_hash: [0; 32],
        timestamp_ns: 10,
    };
    assert!(c.observe(&end).is_none());
    assert!(c.latest().is_none());
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Roughly Zipf(1) over 1..=n by inverse transform on a log scale.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).clamp(1, n)
    }
}

#[test]
fn space_saving_matches_a_naive_oracle_on_the_heavy_hitters() {
    let (capacity, offers, universe) = (200usize, 300_000u64, 50_000u64);
    let mut ss = SpaceSaving::new(capacity);
    let mut truth: HashMap<u64, u64> = HashMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..offers {
        let k = rng.zipf(universe);
        ss.offer(k);
        *truth.entry(k).or_insert(0) += 1;
    }
    assert_eq!(ss.offers(), offers);
    assert_eq!(ss.len(), capacity);
    // Guarantee 1: every key above N/m is monitored, with count − error ≤ true ≤ count.
    let threshold = offers / capacity as u64;
    let mut heavy = 0;
    for (k, t) in &truth {
        if *t > threshold {
            heavy += 1;
            let c = ss.get(k).expect("heavy hitter monitored");
            assert!(
                c.count - c.error <= *t && *t <= c.count,
                "{k}: {c:?} vs {t}"
            );
        }
    }
    assert!(heavy >= 10, "the skewed stream has heavy hitters ({heavy})");
    // On skewed data the reported top 10 are the true top 10, in order of true count.
    let mut exact: Vec<(u64, u64)> = truth.iter().map(|(k, v)| (*v, *k)).collect();
    exact.sort_unstable_by(|a, b| b.cmp(a));
    let want: Vec<u64> = exact.iter().take(10).map(|(_, k)| *k).collect();
    let got: Vec<u64> = ss.top(10).iter().map(|c| c.key).collect();
    assert_eq!(got, want);
    // Reported counts never decrease down the list.
    let counts: Vec<u64> = ss.top(capacity).iter().map(|c| c.count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(counts.len(), capacity);
}

#[test]
fn top_accesses_report_at_block_end_and_reset_by_window() {
    let config = TopAccessesConfig {
        capacity: 16,
        report: 2,
        window_ns: 1_000,
    };
    let mut top = TopAccesses::new(config);
    let acct = |a: u8, ts: u64| ChainInput::AccountAccess {
        block_seqno: 1,
        txn_idx: Some(0),
        address: [a; 20],
        timestamp_ns: ts,
    };
    for (a, n) in [(1u8, 3), (2, 5), (3, 1)] {
        for _ in 0..n {
            assert!(top.observe(&acct(a, 10)).is_none());
        }
    }
    top.observe(&ChainInput::StorageAccess {
        block_seqno: 1,
        txn_idx: Some(0),
        address: [9; 20],
        key: [9; 32],
        modified: false,
        transient: true,
        timestamp_ns: 10,
    });
    let end = |ts| ChainInput::BlockEnd {
        block_seqno: 1,
        gas_used: 0,
        eth_block_hash: [0; 32],
        timestamp_ns: ts,
    };
    let r = top.observe(&end(20)).expect("report at BLOCK_END");
    let got: Vec<(u8, u64)> = r.account.iter().map(|c| (c.key[0], c.count)).collect();
    assert_eq!(got, [(2, 5), (1, 3)]);
    assert!(r.storage.is_empty(), "transient storage is not counted");
    // 1,000 ns later the window restarts.
    top.observe(&acct(3, 1_010));
    let r = top.observe(&end(1_020)).expect("report");
    let got: Vec<(u8, u64)> = r.account.iter().map(|c| (c.key[0], c.count)).collect();
    assert_eq!(got, [(3, 1)]);
    assert_eq!(top.window_start_ns(), Some(1_010));
}
