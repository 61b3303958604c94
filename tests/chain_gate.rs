//! `min_stage` buffer-then-release through the assembled chain pipeline: fork-aware release,
//! rejected blocks never released, only enabled gates copied, bounded holding announced.

mod chain_support;

use chain_support::{json, Sim};
use ringgate::ingest::chain::gate::GateConfig;
use ringgate::ingest::chain::pipeline::ChainConfig;
use ringgate::model::outbound::{EncodedEvent, MetaKind};
use ringgate::model::stage::CommitStage;

/// Block `block_seqno`'s events in the stream gated at `gate`, in stream order.
fn of_block(sim: &Sim, gate: CommitStage, block_seqno: u64) -> Vec<&EncodedEvent> {
    sim.stream(gate)
        .into_iter()
        .filter(|e| e.keys.block_seqno == block_seqno)
        .collect()
}

/// Ring seqnos of block `block_seqno`'s copies in the stream gated at `gate`.
fn ring_seqnos_of(sim: &Sim, gate: CommitStage, block_seqno: u64) -> Vec<u64> {
    of_block(sim, gate, block_seqno)
        .iter()
        .map(|e| e.ring_seqno)
        .collect()
}

/// Ring seqnos of block `block_seqno`'s original (`Proposed`) events.
fn originals_of(sim: &Sim, block_seqno: u64) -> Vec<u64> {
    ring_seqnos_of(sim, CommitStage::Proposed, block_seqno)
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
            ringgate::model::outbound::Outbound::Event(e) => format!("E:{:?}", e.gate),
            ringgate::model::outbound::Outbound::Meta(m) => format!("M:{:?}", m.kind),
            ringgate::model::outbound::Outbound::Rpc(r) => format!("R:{:?}", r.stage),
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
    let mut sim = Sim::with_gate(GateConfig {
        enabled: [false, true, false],
        ..GateConfig::default()
    });
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

    let mut sim = Sim::with_gate(GateConfig {
        enabled: [false; 3],
        ..GateConfig::default()
    });
    sim.block(1, 10, 2);
    sim.finalized(1, 10);
    assert_eq!(sim.pipe.gate().stats().held_events, 0);
    assert!(sim.stream(CommitStage::Finalized).is_empty());
}

#[test]
fn block_count_overflow_is_announced_as_a_gap() {
    let mut sim = Sim::with_gate(GateConfig {
        max_blocks: 2,
        ..GateConfig::default()
    });
    let first = sim.block(1, 10, 1);
    sim.block(2, 11, 1);
    sim.block(3, 12, 1); // pushes block 10 out: consensus stalled
    let first_events = originals_of(&sim, first);
    let gaps = sim.metas(MetaKind::Gap);
    assert_eq!(gaps.len(), 1);
    let first_seqnos: Vec<u64> = of_block(&sim, CommitStage::Proposed, first)
        .iter()
        .map(|e| e.server_seqno)
        .collect();
    let first_seqno = first_seqnos.first().copied().unwrap_or(0);
    let last_seqno = first_seqnos.iter().max().copied().unwrap_or(0);
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
    let mut sim = Sim::with_gate(GateConfig {
        max_bytes: 2_000,
        ..GateConfig::default()
    });
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
        ringgate::model::kind::EventType::TxnLog,
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

/// Gated stream of `gate` as (ring seqno, server seqno).
fn copies(sim: &Sim, gate: CommitStage) -> Vec<(u64, u64)> {
    sim.stream(gate)
        .iter()
        .map(|e| (e.ring_seqno, e.server_seqno))
        .collect()
}

#[test]
fn a_release_interleaved_with_live_events_keeps_stream_order_and_seqnos() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.release_per_event = Some(4); // a busy ring: 4 copies between two ring reads
    let a = sim.block(1, 10, 20);
    sim.finalized(1, 10); // Voted + Finalized of block a queued: 2 × 102 copies
    let b = sim.block(2, 11, 20); // live events keep coming while they are released
    sim.finalized(2, 11);
    sim.verified(10);
    sim.block(3, 12, 30);
    sim.release_all();
    let (a_events, b_events) = (originals_of(&sim, a), originals_of(&sim, b));
    let live: std::collections::HashMap<u64, u64> = sim
        .stream(CommitStage::Proposed)
        .iter()
        .map(|e| (e.ring_seqno, e.server_seqno))
        .collect();
    for gate in [
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
    ] {
        let stream = copies(&sim, gate);
        let expected: Vec<u64> = if gate == CommitStage::Verified {
            a_events.clone()
        } else {
            a_events.iter().chain(&b_events).copied().collect()
        };
        let got: Vec<u64> = stream.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            got, expected,
            "gate {gate:?}: block a then block b, ring order"
        );
        for (ring, seqno) in &stream {
            assert!(
                live.get(ring).is_some_and(|l| l < seqno),
                "copy before its original"
            );
        }
    }
    // The release really was interleaved: live events of block b went out between copies
    // of block a.
    let first_final = copies(&sim, CommitStage::Finalized)[0].1;
    let last_final_a = copies(&sim, CommitStage::Finalized)[a_events.len() - 1].1;
    assert!(sim
        .stream(CommitStage::Proposed)
        .iter()
        .any(|e| e.keys.block_seqno == b && (first_final..last_final_a).contains(&e.server_seqno)));
    sim.assert_seqnos_dense();
}

#[test]
fn a_block_abandoned_mid_release_releases_nothing_more() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.release_per_event = Some(2);
    let a = sim.block(1, 10, 20); // 102 events
    sim.qc(1, 10); // Voted release of a queued
    let b = sim.block(2, 10, 2); // 12 events: 26 copies of a made meanwhile
    let made_before = sim.stream(CommitStage::Voted).len();
    sim.finalized(2, 10); // b wins the height: a is abandoned mid-release
    let abandoned_at = sim
        .frames
        .iter()
        .position(|f| match f {
            ringgate::model::outbound::Outbound::Meta(m) if m.kind == MetaKind::Lifecycle => {
                String::from_utf8_lossy(&m.frame).contains("\"to_stage\":\"Abandoned\"")
            }
            _ => false,
        })
        .unwrap_or(0);
    assert!(abandoned_at > 0);
    sim.release_all();
    sim.block(3, 11, 1);
    let of_a = ring_seqnos_of(&sim, CommitStage::Voted, a);
    assert!(!of_a.is_empty() && of_a.len() < originals_of(&sim, a).len());
    assert_eq!(
        of_a.len(),
        made_before,
        "no copy of a after the abandonment"
    );
    assert_eq!(
        of_a[..],
        originals_of(&sim, a)[..of_a.len()],
        "a prefix, in order"
    );
    assert!(sim.frames[abandoned_at..].iter().all(
        |f| !matches!(f, ringgate::model::outbound::Outbound::Event(e)
            if e.keys.block_seqno == a && e.gate != CommitStage::Proposed)
    ));
    assert_eq!(
        ring_seqnos_of(&sim, CommitStage::Voted, b),
        originals_of(&sim, b)
    );
    assert!(sim
        .stream(CommitStage::Finalized)
        .iter()
        .all(|e| e.keys.block_seqno == b));
    sim.assert_seqnos_dense();
}

#[test]
fn each_release_call_respects_its_budget_and_drops_cancel_what_is_queued() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.release_per_event = Some(3);
    sim.block(1, 10, 10); // 52 events
    let before = sim.frames.len();
    sim.finalized(1, 10); // 104 copies queued; the event itself, its lifecycle and 3 copies
    let voted_now = sim.stream(CommitStage::Voted).len();
    assert_eq!(voted_now, 3);
    assert!(sim.frames.len() - before <= 3 + 3);
    let mut calls = 0;
    while sim.pipe.has_pending_releases() {
        let made = sim.release(5);
        assert!(made <= 5 && made > 0);
        calls += 1;
    }
    assert_eq!(calls, (104 - 3usize).div_ceil(5));
    assert_eq!(sim.stream(CommitStage::Finalized).len(), 52);
    assert_eq!(sim.pipe.gate().held_blocks(), 1, "held until Verified");
    assert_eq!(sim.release(5), 0);

    // A writer restart drops the block and its half-done Verified release with it.
    sim.verified(10);
    assert!(sim.pipe.has_pending_releases());
    let dropped = sim.pipe.drop_all_held();
    assert_eq!(dropped.len(), 1);
    assert!(!sim.pipe.has_pending_releases());
    assert_eq!(sim.release(100), 0);
    assert_eq!(sim.stream(CommitStage::Verified).len(), 3);
    assert_eq!(sim.pipe.gate().held_bytes(), 0);
    sim.assert_seqnos_dense();
}

#[test]
fn a_block_pushed_out_by_the_bounds_mid_release_stops_its_release() {
    let mut sim = Sim::with_gate(GateConfig {
        max_blocks: 2,
        ..GateConfig::default()
    });
    sim.release_per_event = Some(1);
    sim.block(1, 10, 10);
    sim.qc(1, 10); // Voted release of block 10 queued, 1 copy per event
    sim.block(2, 11, 1); // 7 events: 7 more copies
    sim.start(3, 12, 1); // pushes block 10 out mid-release
    let voted_at_drop = sim.stream(CommitStage::Voted).len();
    assert!(voted_at_drop < 52);
    let gaps = sim.metas(MetaKind::Gap);
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0].contains("\"block_number\":10"), "{}", gaps[0]);
    sim.release_all();
    assert_eq!(sim.stream(CommitStage::Voted).len(), voted_at_drop);
    sim.assert_seqnos_dense();
}

/// The text after `"key":` in `frame`, up to the next `,` or `}` (quotes removed).
fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let at = frame.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &frame[at..];
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim_matches('"'))
}

/// Lifecycle frames of `sim` after the creating one, as (block number, to_stage).
fn lifecycle_moves(sim: &Sim) -> Vec<(u64, String)> {
    sim.metas(MetaKind::Lifecycle)
        .iter()
        .filter(|l| l.contains("\"from_stage\""))
        .filter_map(|l| {
            Some((
                field(l, "block_number")?.parse().ok()?,
                field(l, "to_stage")?.to_owned(),
            ))
        })
        .collect()
}

/// Soak regression: proposals that never got a BLOCK_FINALIZED (a fork left behind by a
/// view change, the proposal built on it, an ancestor finalized only through its child)
/// stayed held in the gate for ever; held blocks grew 6 → 34 in six minutes.
#[test]
fn finalizing_a_block_resolves_every_proposal_below_it() {
    let mut sim = Sim::new(ChainConfig::default());
    let a = sim.block_on(1, 10, 2, 0); // canonical at 10, no BLOCK_FINALIZED of its own
    let b = sim.block_on(2, 10, 2, 0); // competing proposal at 10, left behind
    let c = sim.block_on(3, 11, 2, 1); // canonical at 11, on a
    let d = sim.block_on(4, 11, 2, 2); // built on the dead fork b
    let e = sim.block_on(5, 12, 2, 3); // on c
    assert_eq!(sim.pipe.gate().held_blocks(), 5);

    sim.finalized(5, 12);
    assert_eq!(
        lifecycle_moves(&sim),
        [
            (10, "Finalized".to_owned()),
            (11, "Finalized".to_owned()),
            (12, "Finalized".to_owned()),
            (10, "Abandoned".to_owned()),
            (11, "Abandoned".to_owned()),
        ],
        "ancestors final by implication (lowest first), then the rest abandoned"
    );
    let tracker = sim.pipe.tracker();
    assert_eq!(
        tracker.stage_of(&chain_support::id(2)),
        Some(CommitStage::Abandoned)
    );
    assert_eq!(
        tracker.stage_of(&chain_support::id(4)),
        Some(CommitStage::Abandoned)
    );
    assert_eq!(tracker.stats().implied, 2);
    let canonical: Vec<u64> = [a, c, e]
        .iter()
        .flat_map(|bs| originals_of(&sim, *bs))
        .collect();
    for gate in [CommitStage::Voted, CommitStage::Finalized] {
        let got: Vec<u64> = sim.stream(gate).iter().map(|e| e.ring_seqno).collect();
        assert_eq!(got, canonical, "gate {gate:?}: a, c, e in order, no fork");
    }
    assert_eq!(
        sim.pipe.gate().stats().discarded_events,
        (originals_of(&sim, b).len() + originals_of(&sim, d).len()) as u64
    );
    assert_eq!(
        sim.pipe.gate().held_blocks(),
        3,
        "a, c, e wait for Verified"
    );
    // An abandoned proposal is not a loss for a gated stream: announced by its Lifecycle
    // frame, as a sibling abandoned at its own height always was, not by a Gap.
    assert!(sim.metas(MetaKind::Gap).is_empty());

    // BLOCK_VERIFIED 12 verifies its finalized ancestors too.
    sim.verified(12);
    let got: Vec<u64> = sim
        .stream(CommitStage::Verified)
        .iter()
        .map(|e| e.ring_seqno)
        .collect();
    assert_eq!(got, canonical);
    assert_eq!(sim.pipe.gate().held_blocks(), 0);
    assert_eq!(sim.pipe.gate().held_bytes(), 0);
    assert_eq!(sim.pipe.tracker().active_len(), 0);
    sim.assert_seqnos_dense();
}

/// The replayed-snapshot loop: the block at the end of a pass is never finalized, and the
/// next pass's first block does not build on it (its parent hash names another block).
#[test]
fn a_proposal_no_finalized_block_builds_on_is_abandoned() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.block_on(1, 20, 1, 0);
    sim.finalized(1, 20);
    sim.verified(20);
    let loop_end = sim.block_on(2, 21, 1, 1);
    let next = sim.block_on(3, 22, 1, 9); // parent: a block this gateway never saw
    sim.finalized(3, 22);
    assert_eq!(
        sim.pipe.tracker().stage_of(&chain_support::id(2)),
        Some(CommitStage::Abandoned)
    );
    assert!(sim
        .stream(CommitStage::Finalized)
        .iter()
        .all(|e| e.keys.block_seqno != loop_end));
    assert_eq!(
        ring_seqnos_of(&sim, CommitStage::Finalized, next),
        originals_of(&sim, next)
    );
    sim.verified(22);
    assert_eq!(sim.pipe.gate().held_blocks(), 0);
    sim.assert_seqnos_dense();
}

/// When data loss cut the chain of hashes (here the finalized block's BLOCK_START was never
/// read), a held proposal below it can be proven neither canonical nor abandoned: it is
/// dropped and the gated streams are told they will not get it.
#[test]
fn a_block_the_hashes_cannot_place_is_dropped_and_announced() {
    let mut sim = Sim::new(ChainConfig::default());
    let a = sim.block_on(1, 10, 2, 0);
    sim.finalized(2, 11); // id 2 never started here
    let gaps = sim.metas(MetaKind::Gap);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let seqnos: Vec<u64> = of_block(&sim, CommitStage::Proposed, a)
        .iter()
        .map(|e| e.server_seqno)
        .collect();
    let (first, last) = (seqnos[0], seqnos[seqnos.len() - 1]);
    assert!(
        gaps[0].contains(&format!(
            "\"reason\":\"unresolved_block\",\"from_seqno\":{first},\"to_seqno\":{last},\
             \"block_number\":10,\"block_id\":\"0xb1"
        )),
        "{}",
        gaps[0]
    );
    assert!(sim.stream(CommitStage::Finalized).is_empty());
    assert_eq!(sim.pipe.gate().held_blocks(), 0);
    assert_eq!(sim.pipe.gate().stats().unresolved_blocks, 1);
    assert_eq!(sim.pipe.tracker().stats().unresolved, 1);
    assert_eq!(sim.pipe.tracker().active_len(), 0);
    sim.assert_seqnos_dense();
}

/// Found investigating the soak's node restart (issue "Soak and faults", item 4): the tracker
/// kept the old ring's block seqnos, and a block the new writer executed again while its old
/// record was still active (finalized, waiting for BLOCK_VERIFIED) counted as a duplicate
/// start: its new execution was never tracked, so the gate held it without ever being told
/// its stage (a looped recording, which has no BLOCK_VERIFIED, lost every such block to the
/// gate's bounds).
#[test]
fn a_block_re_executed_after_a_writer_restart_is_tracked_and_released_again() {
    let mut sim = Sim::new(ChainConfig::default());
    sim.qc(9, 9); // an unknown id: only moves the old ring's seqnos on
    let old = sim.block(1, 10, 2);
    sim.finalized(1, 10);
    assert_eq!(
        sim.pipe.tracker().block_of_seqno(old),
        Some((chain_support::id(1), 10))
    );

    // The writer restarts (a new ring, seqnos from 1) and executes block 10 again.
    sim.pipe.on_writer_restart();
    sim.ring = 0;
    assert_eq!(
        sim.pipe.tracker().block_of_seqno(old),
        None,
        "the old ring's block seqnos are forgotten"
    );
    let frames_before = sim.frames.len();
    let again = sim.block(1, 10, 2);
    assert_ne!(again, old);
    assert_eq!(
        sim.pipe.tracker().block_of_seqno(again),
        Some((chain_support::id(1), 10))
    );
    assert_eq!(sim.pipe.tracker().stats().duplicate_starts, 0);
    // Final at once (its id is the one finalized at 10): released as it executes, before any
    // consensus event of the new writer.
    let re_executed = originals_of(&sim, again);
    for gate in [CommitStage::Voted, CommitStage::Finalized] {
        assert_eq!(ring_seqnos_of(&sim, gate, again), re_executed, "{gate:?}");
    }
    let moves: Vec<String> = sim.frames[frames_before..]
        .iter()
        .filter_map(|f| match f {
            ringgate::model::outbound::Outbound::Meta(m) if m.kind == MetaKind::Lifecycle => {
                field(&String::from_utf8_lossy(&m.frame), "to_stage").map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    assert_eq!(moves, ["Proposed", "Finalized"]);
    sim.verified(10);
    assert_eq!(
        ring_seqnos_of(&sim, CommitStage::Verified, again),
        re_executed
    );
    assert_eq!(sim.pipe.gate().held_blocks(), 0);
    assert_eq!(sim.pipe.tracker().active_len(), 0);
    sim.assert_seqnos_dense();
}

#[test]
fn the_gate_keeps_no_reference_once_a_block_is_released_or_discarded() {
    // The gate holds one reference to each body per enabled gate and moves it into that
    // gate's copy: once every gate released block b (and block a lost its height), the
    // only references left are the frames' own: b's original and its three copies, a's
    // original alone.
    let mut sim = Sim::new(ChainConfig::default());
    let a = sim.block(1, 10, 3);
    let b = sim.block(2, 10, 4);
    sim.qc(2, 10);
    sim.finalized(2, 10);
    sim.verified(10);
    assert_eq!(sim.release(1_000_000), 0, "nothing left to release");
    for original in of_block(&sim, CommitStage::Proposed, b) {
        assert_eq!(std::sync::Arc::strong_count(&original.body), 4);
    }
    let a_events = of_block(&sim, CommitStage::Proposed, a);
    assert!(!a_events.is_empty());
    for original in a_events {
        assert_eq!(std::sync::Arc::strong_count(&original.body), 1);
    }
}
