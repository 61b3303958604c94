//! Block lifecycle by block id: forks, rejection, number-keyed verification, bounds.

use ringgate::ingest::chain::input::{BlockId, ChainInput};
use ringgate::ingest::chain::tracker::{LifecycleConfig, LifecycleTracker, Transition};
use ringgate::model::stage::CommitStage;

fn id(n: u8) -> BlockId {
    [n; 32]
}

/// The Ethereum hash of proposal `n` (its BLOCK_END), distinct from every id.
fn eth_hash(n: u8) -> [u8; 32] {
    let mut h = [0xe0; 32];
    h[31] = n;
    h
}

struct T {
    tracker: LifecycleTracker,
    out: Vec<Transition>,
    ts: u64,
    ring: u64,
}

impl T {
    fn new(config: LifecycleConfig) -> T {
        T {
            tracker: LifecycleTracker::new(config),
            out: Vec::new(),
            ts: 0,
            ring: 0,
        }
    }

    fn feed(&mut self, input: ChainInput) -> Vec<Transition> {
        self.out.clear();
        self.tracker.observe(&input, &mut self.out);
        self.out.clone()
    }

    fn tick(&mut self) -> u64 {
        self.ts += 10_000_000; // 10 ms
        self.ts
    }

    fn start(&mut self, n: u8, number: u64) -> u64 {
        self.start_on(n, number, 0)
    }

    /// BLOCK_START of proposal `n` whose parent is proposal `parent` (by Ethereum hash,
    /// [`eth_hash`]; 0 = a parent not tracked here).
    fn start_on(&mut self, n: u8, number: u64, parent: u8) -> u64 {
        self.ring += 100;
        let ts = self.tick();
        self.feed(ChainInput::BlockStart {
            block_seqno: self.ring,
            id: id(n),
            number,
            parent_eth_hash: eth_hash(parent),
            txn_count: 5,
            block_time_ns: ts,
            timestamp_ns: ts,
        });
        self.ring
    }

    /// BLOCK_END of the proposal opened at `block_seqno`, whose Ethereum hash is
    /// `eth_hash(n)`.
    fn end(&mut self, block_seqno: u64, n: u8) {
        let ts = self.tick();
        self.feed(ChainInput::BlockEnd {
            block_seqno,
            gas_used: 21_000,
            eth_block_hash: eth_hash(n),
            timestamp_ns: ts,
        });
    }

    /// A whole proposal `n` on `parent`.
    fn block_on(&mut self, n: u8, number: u64, parent: u8) {
        let bs = self.start_on(n, number, parent);
        self.end(bs, n);
    }

    fn finalize(&mut self, n: u8, number: u64) -> Vec<Transition> {
        let ts = self.tick();
        self.feed(ChainInput::Finalized {
            id: id(n),
            number,
            timestamp_ns: ts,
        })
    }

    fn verify(&mut self, number: u64) -> Vec<Transition> {
        let ts = self.tick();
        self.feed(ChainInput::Verified {
            number,
            timestamp_ns: ts,
        })
    }
}

fn stages(ts: &[Transition]) -> Vec<(u8, CommitStage)> {
    ts.iter().map(|t| (t.block_id[0], t.to_stage)).collect()
}

#[test]
fn finalizing_one_proposal_abandons_its_siblings_at_that_moment() {
    let mut t = T::new(LifecycleConfig::default());
    t.start(1, 10);
    t.start(2, 10);
    t.start(3, 10);
    t.start(4, 11); // another height: untouched
    let got = t.finalize(2, 10);
    assert_eq!(
        stages(&got),
        [
            (2, CommitStage::Finalized),
            (1, CommitStage::Abandoned),
            (3, CommitStage::Abandoned)
        ]
    );
    for tr in &got {
        assert_eq!(tr.from_stage, Some(CommitStage::Proposed));
        assert!(tr.time_in_previous_stage_ms.is_some());
    }
    assert_eq!(
        t.tracker.active_len(),
        2,
        "the finalized block and height 11"
    );
    assert_eq!(t.tracker.stage_of(&id(1)), Some(CommitStage::Abandoned));
    assert_eq!(t.tracker.stage_of(&id(4)), Some(CommitStage::Proposed));
}

#[test]
fn verified_by_number_applies_to_the_finalized_id_only() {
    let mut t = T::new(LifecycleConfig::default());
    t.start(1, 10);
    t.start(2, 10);
    t.finalize(1, 10);
    // A late re-proposal at a final height is abandoned at once, never leaked.
    let late = t.start(3, 10);
    assert!(late > 0);
    assert_eq!(t.tracker.stage_of(&id(3)), Some(CommitStage::Abandoned));
    let got = t.verify(10);
    assert_eq!(stages(&got), [(1, CommitStage::Verified)]);
    assert_eq!(t.tracker.active_len(), 0);
    // Verified for a number never finalized here: ignored.
    let before = t.tracker.stats().ignored_unknown;
    assert!(t.verify(99).is_empty());
    assert_eq!(t.tracker.stats().ignored_unknown, before + 1);
    // By number, the canonical proposal is the one reported.
    let s = t.tracker.summary_for_number(10, t.ts).expect("known");
    assert_eq!(s.block_hash, id(1));
    assert_eq!(s.current_stage, CommitStage::Verified);
    assert_eq!(t.tracker.proposals_at(10, t.ts).len(), 3);
}

#[test]
fn rejection_by_block_seqno_and_evm_error() {
    let mut t = T::new(LifecycleConfig::default());
    let a = t.start(1, 10);
    let ts = t.tick();
    let got = t.feed(ChainInput::BlockReject {
        block_seqno: a,
        timestamp_ns: ts,
    });
    assert_eq!(stages(&got), [(1, CommitStage::Rejected)]);
    let b = t.start(2, 10);
    let ts = t.tick();
    let got = t.feed(ChainInput::BlockEvmError {
        block_seqno: b,
        timestamp_ns: ts,
    });
    assert_eq!(stages(&got), [(2, CommitStage::Rejected)]);
    // Terminal: a QC for a rejected id does nothing.
    let ts = t.tick();
    assert!(t
        .feed(ChainInput::Qc {
            id: id(2),
            number: 10,
            timestamp_ns: ts
        })
        .is_empty());
}

#[test]
fn unknown_ids_are_ignored_mid_stream() {
    let mut t = T::new(LifecycleConfig::default());
    let ts = t.tick();
    assert!(t
        .feed(ChainInput::Qc {
            id: id(9),
            number: 5,
            timestamp_ns: ts
        })
        .is_empty());
    assert!(t.finalize(9, 5).is_empty());
    assert!(t.verify(5).is_empty());
    let ts = t.tick();
    assert!(t
        .feed(ChainInput::BlockEnd {
            block_seqno: 1234,
            gas_used: 1,
            eth_block_hash: [0; 32],
            timestamp_ns: ts
        })
        .is_empty());
    assert_eq!(t.tracker.stats().ignored_unknown, 4);
    assert_eq!(t.tracker.active_len(), 0);
}

#[test]
fn memory_is_bounded_and_eviction_counted() {
    let mut t = T::new(LifecycleConfig {
        completed_cap: 4,
        active_cap: 8,
    });
    for n in 0..20u8 {
        t.start(n, 100 + u64::from(n));
    }
    assert_eq!(t.tracker.active_len(), 8);
    assert_eq!(t.tracker.stats().evicted_active, 12);
    // The lowest numbers went first.
    assert_eq!(t.tracker.stage_of(&id(0)), None);
    assert_eq!(t.tracker.stage_of(&id(19)), Some(CommitStage::Proposed));
    for n in 12..20u8 {
        t.finalize(n, 100 + u64::from(n));
        t.verify(100 + u64::from(n));
    }
    assert_eq!(t.tracker.active_len(), 0);
    assert_eq!(t.tracker.completed_len(), 4);
    let list = t.tracker.summaries(t.ts);
    let numbers: Vec<u64> = list.iter().map(|s| s.block_number).collect();
    assert_eq!(numbers, [116, 117, 118, 119]);
}

#[test]
fn summaries_list_completed_first_then_active_by_number() {
    let mut t = T::new(LifecycleConfig::default());
    t.start(5, 12);
    t.start(4, 11);
    t.start(3, 10);
    t.finalize(3, 10);
    t.verify(10);
    let list = t.tracker.summaries(t.ts);
    let order: Vec<(u64, CommitStage)> = list
        .iter()
        .map(|s| (s.block_number, s.current_stage))
        .collect();
    assert_eq!(
        order,
        [
            (10, CommitStage::Verified),
            (11, CommitStage::Proposed),
            (12, CommitStage::Proposed)
        ]
    );
    let v = &list[0];
    let finalized_ms = v
        .stage_timings_ms
        .iter()
        .find(|(s, _)| *s == CommitStage::Finalized)
        .map(|(_, ms)| *ms);
    assert_eq!(finalized_ms, Some(10.0));
    assert!(list[1].total_age_ms.is_some_and(|ms| ms > 0.0));
    let snap = t.tracker.snapshot(t.ts);
    assert_eq!(snap.len(), 2);
    assert!(snap.iter().all(|s| s.from_stage.is_none()));
}

fn start_input(seqno: u64, block: u8, number: u64, ts: u64) -> ChainInput {
    ChainInput::BlockStart {
        block_seqno: seqno,
        id: id(block),
        number,
        parent_eth_hash: [0; 32],
        txn_count: 3,
        block_time_ns: ts,
        timestamp_ns: ts,
    }
}

#[test]
fn happy_path_sets_time_in_previous_stage() {
    let mut t = LifecycleTracker::new(LifecycleConfig::default());
    let mut out = Vec::new();
    t.observe(&start_input(10, 1, 100, 1_000_000), &mut out);
    t.observe(
        &ChainInput::BlockEnd {
            block_seqno: 10,
            gas_used: 21_000,
            eth_block_hash: [9; 32],
            timestamp_ns: 2_000_000,
        },
        &mut out,
    );
    t.observe(
        &ChainInput::Qc {
            id: id(1),
            number: 100,
            timestamp_ns: 4_000_000,
        },
        &mut out,
    );
    t.observe(
        &ChainInput::Finalized {
            id: id(1),
            number: 100,
            timestamp_ns: 5_000_000,
        },
        &mut out,
    );
    t.observe(
        &ChainInput::Verified {
            number: 100,
            timestamp_ns: 9_000_000,
        },
        &mut out,
    );
    let stages: Vec<_> = out.iter().map(|x| x.to_stage).collect();
    assert_eq!(
        stages,
        [
            CommitStage::Proposed,
            CommitStage::Voted,
            CommitStage::Finalized,
            CommitStage::Verified
        ]
    );
    assert_eq!(out[0].time_in_previous_stage_ms, None);
    assert_eq!(out[1].time_in_previous_stage_ms, Some(3.0));
    assert_eq!(out[2].time_in_previous_stage_ms, Some(1.0));
    assert_eq!(out[3].time_in_previous_stage_ms, Some(4.0));
    assert_eq!(out[3].block_age_ms, 8.0);
    assert_eq!(out[1].gas_used, Some(21_000));
    assert_eq!(t.active_len(), 0);
    let s = t.summary_for_number(100, 10_000_000).expect("kept");
    assert_eq!(s.execution_time_ms, Some(1.0));
    assert_eq!(s.total_age_ms, Some(8.0));
    assert_eq!(
        s.stage_timings_ms,
        vec![
            (CommitStage::Voted, 3.0),
            (CommitStage::Finalized, 4.0),
            (CommitStage::Verified, 8.0)
        ]
    );
}

#[test]
fn a_finalized_block_is_never_abandoned_or_rejected() {
    let mut t = LifecycleTracker::new(LifecycleConfig::default());
    let mut out = Vec::new();
    t.observe(&start_input(10, 1, 100, 0), &mut out);
    t.observe(&start_input(20, 2, 100, 0), &mut out);
    let fin = |n: u8| ChainInput::Finalized {
        id: id(n),
        number: 100,
        timestamp_ns: 1,
    };
    t.observe(&fin(1), &mut out);
    out.clear();
    // A conflicting finalization at the same height does not abandon the first one.
    t.observe(&fin(2), &mut out);
    assert!(out.is_empty());
    t.observe(
        &ChainInput::BlockReject {
            block_seqno: 10,
            timestamp_ns: 2,
        },
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(t.stage_of(&id(1)), Some(CommitStage::Finalized));
    assert_eq!(t.stats().refused_transitions, 2);
}

#[test]
fn backwards_and_unknown_are_ignored() {
    let mut t = LifecycleTracker::new(LifecycleConfig::default());
    let mut out = Vec::new();
    t.observe(&start_input(10, 1, 100, 0), &mut out);
    t.observe(
        &ChainInput::Finalized {
            id: id(1),
            number: 100,
            timestamp_ns: 1,
        },
        &mut out,
    );
    t.observe(
        &ChainInput::Qc {
            id: id(1),
            number: 100,
            timestamp_ns: 2,
        },
        &mut out,
    );
    t.observe(
        &ChainInput::Qc {
            id: id(7),
            number: 101,
            timestamp_ns: 2,
        },
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(t.stats().refused_transitions, 1);
    assert_eq!(t.stats().ignored_unknown, 1);
}

#[test]
fn finality_follows_parent_hashes_down_and_stops_where_the_link_is_lost() {
    let mut t = T::new(LifecycleConfig::default());
    t.block_on(1, 10, 0); // below the gap at 11: cannot be placed
    t.block_on(3, 12, 9); // on a block at 11 never seen here
    t.block_on(4, 12, 9); // its sibling, also unfinalized
    t.block_on(5, 13, 3);
    t.block_on(6, 13, 4);
    t.block_on(7, 14, 5);
    let got = t.finalize(7, 14);
    assert_eq!(
        stages(&got),
        [
            (3, CommitStage::Finalized),
            (5, CommitStage::Finalized),
            (7, CommitStage::Finalized),
            (4, CommitStage::Abandoned),
            (6, CommitStage::Abandoned),
        ]
    );
    // Height 11 is unknown, so nothing proves whether block 1 is the ancestor of block 3.
    assert_eq!(t.tracker.stage_of(&id(1)), None);
    assert_eq!(t.tracker.stats().unresolved, 1);
    assert_eq!(t.tracker.take_unresolved(), vec![(id(1), 10)]);
    assert!(t.tracker.take_unresolved().is_empty(), "reported once");
    // Later proposals at final heights are abandoned on arrival, as before.
    t.start_on(8, 13, 3);
    assert_eq!(t.tracker.stage_of(&id(8)), Some(CommitStage::Abandoned));
    // Verifying 14 verifies its finalized ancestors, lowest first.
    let got = t.verify(14);
    assert_eq!(
        stages(&got),
        [
            (3, CommitStage::Verified),
            (5, CommitStage::Verified),
            (7, CommitStage::Verified)
        ]
    );
    assert_eq!(t.tracker.active_len(), 0);
    assert_eq!(t.tracker.stats().implied, 4);
}

#[test]
fn an_explicitly_finalized_height_anchors_the_walk_below_a_later_finalization() {
    let mut t = T::new(LifecycleConfig::default());
    t.block_on(1, 10, 0);
    t.block_on(2, 11, 1);
    t.block_on(3, 12, 2);
    t.finalize(1, 10);
    // 11 gets no BLOCK_FINALIZED; 12's finalization implies it (10 was settled before).
    let got = t.finalize(3, 12);
    assert_eq!(
        stages(&got),
        [(2, CommitStage::Finalized), (3, CommitStage::Finalized)]
    );
    // BLOCK_VERIFIED by number now finds the implied block too.
    let got = t.verify(11);
    assert_eq!(
        stages(&got),
        [(1, CommitStage::Verified), (2, CommitStage::Verified)]
    );
    assert_eq!(t.tracker.stats().unresolved, 0);
}
