//! `min_stage` buffer-then-release through the assembled chain pipeline: fork-aware release,
//! rejected blocks never released, only enabled gates copied, bounded holding announced.

mod chain_support;

use chain_support::{json, Sim};
use ringgate::chain::gate::GateConfig;
use ringgate::chain::pipeline::ChainConfig;
use ringgate::chain::stage::CommitStage;
use ringgate::frame::MetaKind;

fn originals_of(sim: &Sim, block_seqno: u64) -> Vec<u64> {
    sim.stream(CommitStage::Proposed)
        .iter()
        .filter(|e| e.keys.block_seqno == block_seqno)
        .map(|e| e.ring_seqno)
        .collect()
}

#[test]
fn fork_releases_only_the_finalized_proposal_in_order() {
    let mut sim = Sim::new(ChainConfig::default());
    let a = sim.block(1, 10, 3); // loses the height
    let b = sim.block(2, 10, 4); // re-proposal that wins
    sim.qc(2, 10);
    sim.finalized(2, 10);
    sim.verified(10);
    let b_events = originals_of(&sim, b);
    assert_eq!(b_events.len(), 1 + 4 * 5 + 1);
    for gate in [
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
    ] {
        let stream = sim.stream(gate);
        let got: Vec<u64> = stream.iter().map(|e| e.ring_seqno).collect();
        assert_eq!(
            got, b_events,
            "gate {gate:?} gets exactly block b, in ring order"
        );
        assert!(stream.iter().all(|e| e.keys.block_seqno != a));
        for e in &stream {
            let expected = format!("\"commit_stage\":\"{}\"", gate.name());
            assert!(json(e).contains(&expected), "{}", json(e));
            assert_eq!(e.gate, gate);
        }
    }
    let lifecycle = sim.metas(MetaKind::Lifecycle);
    assert!(lifecycle
        .iter()
        .any(|l| l.contains("\"from_stage\":\"Proposed\",\"to_stage\":\"Abandoned\"")));
    // Every transition after creation carries the time spent in the previous stage.
    for l in lifecycle.iter().filter(|l| l.contains("from_stage")) {
        assert!(l.contains("time_in_previous_stage_ms"), "{l}");
    }
    assert_eq!(sim.pipe.gate().held_blocks(), 0, "nothing left held");
    assert_eq!(
        sim.pipe.gate().stats().discarded_events,
        originals_of(&sim, a).len() as u64
    );
    sim.assert_seqnos_dense();
}

#[test]
fn released_copies_follow_their_lifecycle_frame() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.block(1, 10, 1);
    sim.finalized(1, 10); // skips Voted: both Voted and Finalized copies released now
    let texts: Vec<String> = sim
        .frames
        .iter()
        .map(|f| match f {
            ringgate::frame::Outbound::Event(e) => format!("E:{:?}", e.gate),
            ringgate::frame::Outbound::Meta(m) => format!("M:{:?}", m.kind),
        })
        .collect();
    let fin = texts
        .iter()
        .rposition(|t| t == "M:Lifecycle")
        .unwrap_or(usize::MAX);
    let first_voted = texts.iter().position(|t| t == "E:Voted").unwrap_or(0);
    let first_final = texts.iter().position(|t| t == "E:Finalized").unwrap_or(0);
    assert!(fin < first_voted && first_voted < first_final);
    assert_eq!(sim.stream(CommitStage::Voted).len(), 1 + 5 + 1);
    assert_eq!(
        sim.stream(CommitStage::Verified).len(),
        0,
        "not verified yet"
    );
    assert_eq!(sim.pipe.gate().held_blocks(), 1, "held until Verified");
    sim.assert_seqnos_dense();
}

#[test]
fn rejected_block_is_never_released_above_proposed() {
    let mut sim = Sim::new(ChainConfig::default());
    let r = sim.rejected_block(3, 11, 2);
    // Consensus events naming the rejected id change nothing.
    sim.qc(3, 11);
    sim.finalized(3, 11);
    sim.verified(11);
    for gate in [
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
    ] {
        assert!(sim.stream(gate).is_empty(), "gate {gate:?}");
    }
    assert!(!originals_of(&sim, r).is_empty());
    assert!(sim
        .metas(MetaKind::Lifecycle)
        .iter()
        .any(|l| l.contains("\"to_stage\":\"Rejected\"")));
    assert_eq!(sim.pipe.gate().held_blocks(), 0);
    sim.assert_seqnos_dense();
}

#[test]
fn only_enabled_gates_are_copied() {
    let config = ChainConfig {
        gate: GateConfig {
            enabled: [false, true, false],
            ..GateConfig::default()
        },
        ..ChainConfig::default()
    };
    let mut sim = Sim::new(config);
    sim.block(1, 10, 2);
    sim.qc(1, 10);
    sim.finalized(1, 10);
    sim.verified(10);
    assert!(sim.stream(CommitStage::Voted).is_empty());
    assert!(sim.stream(CommitStage::Verified).is_empty());
    assert_eq!(sim.stream(CommitStage::Finalized).len(), 1 + 2 * 5 + 1);
    assert_eq!(
        sim.pipe.gate().held_blocks(),
        0,
        "released after the last enabled gate"
    );

    let none = ChainConfig {
        gate: GateConfig {
            enabled: [false; 3],
            ..GateConfig::default()
        },
        ..ChainConfig::default()
    };
    let mut sim = Sim::new(none);
    sim.block(1, 10, 2);
    sim.finalized(1, 10);
    assert_eq!(sim.pipe.gate().stats().held_events, 0);
    assert!(sim.stream(CommitStage::Finalized).is_empty());
}

#[test]
fn block_count_overflow_is_announced_as_a_gap() {
    let config = ChainConfig {
        gate: GateConfig {
            max_blocks: 2,
            ..GateConfig::default()
        },
        ..ChainConfig::default()
    };
    let mut sim = Sim::new(config);
    let first = sim.block(1, 10, 1);
    sim.block(2, 11, 1);
    sim.block(3, 12, 1); // pushes block 10 out: consensus stalled
    let first_events = originals_of(&sim, first);
    let gaps = sim.metas(MetaKind::Gap);
    assert_eq!(gaps.len(), 1);
    let first_seqno = sim
        .stream(CommitStage::Proposed)
        .iter()
        .find(|e| e.keys.block_seqno == first)
        .map(|e| e.server_seqno)
        .unwrap_or(0);
    let last_seqno = sim
        .stream(CommitStage::Proposed)
        .iter()
        .filter(|e| e.keys.block_seqno == first)
        .map(|e| e.server_seqno)
        .max()
        .unwrap_or(0);
    assert!(
        gaps[0].contains("\"reason\":\"stage_gate_overflow\""),
        "{}",
        gaps[0]
    );
    assert!(gaps[0].contains(&format!(
        "\"from_seqno\":{first_seqno},\"to_seqno\":{last_seqno}"
    )));
    assert!(gaps[0].contains("\"block_number\":10"));
    let stats = sim.pipe.gate().stats();
    assert_eq!(stats.overflow_blocks, 1);
    assert_eq!(stats.overflow_events, first_events.len() as u64);
    // Its finalization releases nothing; the later block is released normally.
    sim.finalized(1, 10);
    assert!(sim.stream(CommitStage::Finalized).is_empty());
    sim.finalized(2, 11);
    assert_eq!(sim.stream(CommitStage::Finalized).len(), 7);
    assert!(sim.pipe.gate().held_blocks() <= 2);
    sim.assert_seqnos_dense();
}

#[test]
fn byte_overflow_drops_the_open_block_and_announces_it() {
    let config = ChainConfig {
        gate: GateConfig {
            max_bytes: 2_000,
            ..GateConfig::default()
        },
        ..ChainConfig::default()
    };
    let mut sim = Sim::new(config);
    sim.block(1, 10, 20); // ~100 events of ~100 bytes: far above 2,000 bytes
    assert!(sim.pipe.gate().held_bytes() <= 2_000);
    let gaps = sim.metas(MetaKind::Gap);
    assert_eq!(gaps.len(), 1, "one announcement per block: {gaps:?}");
    let stats = sim.pipe.gate().stats();
    assert!(
        stats.unknown_block_events > 0,
        "later events of the block are dropped, counted"
    );
    sim.finalized(1, 10);
    assert!(sim.stream(CommitStage::Finalized).is_empty());
    sim.assert_seqnos_dense();
}

#[test]
fn late_event_of_a_released_block_is_copied_at_once_and_kept_for_later_gates() {
    let mut sim = Sim::new(ChainConfig::default());
    let bs = sim.block(1, 10, 1);
    sim.finalized(1, 10);
    let late = sim.step(
        None,
        ringgate::event::kind::EventType::TxnLog,
        bs,
        Some((chain_support::id(1), 10)),
        None,
    );
    for gate in [CommitStage::Voted, CommitStage::Finalized] {
        let stream = sim.stream(gate);
        assert_eq!(stream.last().map(|e| e.ring_seqno), Some(late), "{gate:?}");
        assert_eq!(stream.len(), 8);
    }
    assert!(sim.stream(CommitStage::Verified).is_empty());
    sim.verified(10);
    let verified: Vec<u64> = sim
        .stream(CommitStage::Verified)
        .iter()
        .map(|e| e.ring_seqno)
        .collect();
    assert_eq!(verified, originals_of(&sim, bs));
    sim.assert_seqnos_dense();
}
