//! Unit tests of session queues, drop warnings and heartbeats.

use super::*;
use crate::model::kind::EventType;
use crate::model::lane::{Lane, LaneMap};
use crate::model::outbound::{EventBody, FilterKeys, MetaFrame, MetaKind};
use crate::model::stage::CommitStage;
use std::sync::Arc;

/// A top-lane event (a block-level one, which the default lanes never shed).
fn ev(seqno: u64) -> Outbound {
    event(seqno, EventType::BlockEnd)
}

fn event(seqno: u64, t: EventType) -> Outbound {
    Outbound::Event(EncodedEvent {
        server_seqno: seqno,
        gate: CommitStage::Proposed,
        body: Arc::new(EventBody {
            origin_seqno: seqno,
            ring_seqno: seqno + 1000,
            timestamp_ns: 0,
            keys: FilterKeys::new(t),
            json: format!(r#"{{"seqno":{seqno}}}"#).into_bytes().into(),
            stage_span: None,
        }),
    })
}

fn meta(seqno: u64) -> Outbound {
    Outbound::Meta(Arc::new(MetaFrame {
        old: None,
        server_seqno: seqno,
        kind: MetaKind::Tps,
        stage: None,
        frame: format!(r#"{{"server_seqno":{seqno},"TPS":1}}"#)
            .into_bytes()
            .into(),
    }))
}

/// Decodes our unmasked text frames and returns each payload as JSON.
fn payloads(mut bytes: &[u8]) -> Vec<sonic_rs::Value> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, hdr) = match bytes[1] {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        out.push(sonic_rs::from_slice(&bytes[hdr..hdr + len]).unwrap());
        bytes = &bytes[hdr + len..];
    }
    out
}

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn small() -> QueueLimits {
    QueueLimits {
        capacity: 4,
        warn_every: 3,
        disconnect_after: 10,
        lanes: LaneMap::DEFAULT,
    }
}

#[test]
fn warnings_carry_the_dropped_range_since_the_previous_warning() {
    let mut q = SessionQueue::new(small(), 0);
    for s in 1..=4 {
        assert_eq!(q.offer(ev(s)), Offer::Queued);
    }
    assert_eq!(q.offer(ev(5)), Offer::Dropped { warning: None });
    assert_eq!(q.offer(ev(6)), Offer::Dropped { warning: None });
    let Offer::Dropped { warning: Some(w) } = q.offer(ev(8)) else {
        panic!("third drop warns")
    };
    assert_eq!(
        (
            w.dropped,
            w.total_dropped,
            w.dropped_from_seqno,
            w.dropped_to_seqno
        ),
        (3, 3, 5, 8)
    );
    assert_eq!(q.offer(ev(9)), Offer::Dropped { warning: None });
    assert_eq!(q.total_dropped(), 4);

    // The client catches up: the queued frames, then the first warning go out.
    let mut out = Vec::new();
    let written = q.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    assert_eq!((written.events, written.frames), (4, 2));
    let frames = payloads(&out);
    assert_eq!(frames[0]["server_seqno"].as_u64(), Some(4));
    assert_eq!(frames[1]["Warning"]["dropped_to_seqno"].as_u64(), Some(8));
    assert_eq!(
        frames[1]["server_seqno"].as_u64(),
        Some(4),
        "carries the cursor"
    );
    assert_eq!(q.cursor(), 4);

    // The next accepted frame first flushes the unreported tail of the loss (seqno 9).
    assert_eq!(q.offer(ev(10)), Offer::Queued);
    let mut out = Vec::new();
    q.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    let frames = payloads(&out);
    let w = &frames[0]["Warning"];
    assert_eq!(w["dropped"].as_u64(), Some(1));
    assert_eq!(w["total_dropped"].as_u64(), Some(4));
    assert_eq!(w["dropped_from_seqno"].as_u64(), Some(9));
    assert_eq!(w["dropped_to_seqno"].as_u64(), Some(9));
    assert_eq!(frames[1]["server_seqno"].as_u64(), Some(10));
    assert_eq!(q.warnings(), 2);
    assert!(q.is_empty());
}

#[test]
fn the_drop_limit_disconnects() {
    let mut q = SessionQueue::new(small(), 0);
    for s in 1..=4 {
        q.offer(ev(s));
    }
    let mut outcomes = Vec::new();
    for s in 5..=14 {
        outcomes.push(q.offer(ev(s)));
    }
    assert_eq!(outcomes.last(), Some(&Offer::Disconnect));
    assert!(outcomes[..9]
        .iter()
        .all(|o| matches!(o, Offer::Dropped { .. })));
    assert_eq!(q.offer(ev(15)), Offer::Disconnect);
    assert_eq!(q.disconnect_reason(), "slow client: 10 frames dropped");
}

#[test]
fn closing_out_a_slow_session_leaves_one_warning_covering_everything_it_will_not_get() {
    let mut q = SessionQueue::new(small(), 0);
    for f in [ev(1), meta(2), ev(3), ev(4)] {
        q.offer(f);
    }
    // The writer took frame 1 (in flight) before the client stalled.
    let mut in_flight = Vec::new();
    q.write_pending(&BatchWriter::default(), &mut in_flight, 1);
    assert_eq!(q.len(), 3, "one Events frame of 1 event went out");
    let mut outcomes = Vec::new();
    for s in 5..=15 {
        outcomes.push(q.offer(ev(s)));
    }
    assert_eq!(outcomes.last(), Some(&Offer::Disconnect));
    assert!(q.is_disconnected());

    let w = q.close_out().expect("a final warning");
    assert_eq!(q.len(), 0, "queued frames discarded");
    // Frames 2..=5 queued, 6..=15 dropped (warnings at 8, 11, 14 not yet written).
    assert_eq!((w.dropped_from_seqno, w.dropped_to_seqno), (2, 15));
    assert_eq!(w.dropped, 14);
    assert_eq!(w.total_dropped, 14);
    let mut out = Vec::new();
    let written = q.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    assert_eq!((written.frames, written.events), (1, 0), "only the warning");
    let frames = payloads(&out);
    assert_eq!(frames[0]["Warning"]["dropped_from_seqno"].as_u64(), Some(2));
    assert_eq!(frames[0]["server_seqno"].as_u64(), Some(1), "the cursor");
    assert!(q.is_empty());
}

#[test]
fn closing_out_a_drained_session_reports_nothing() {
    let mut q = SessionQueue::new(small(), 0);
    q.offer(ev(1));
    q.write_pending(&BatchWriter::default(), &mut Vec::new(), usize::MAX);
    assert_eq!(q.close_out(), None);
    assert!(q.is_empty());
}

#[test]
fn default_limits_match_the_documented_policy() {
    let mut q = SessionQueue::new(QueueLimits::default(), 0);
    for s in 1..=4096 {
        assert_eq!(q.offer(ev(s)), Offer::Queued);
    }
    let mut warnings = 0;
    let mut s = 4097;
    loop {
        match q.offer(ev(s)) {
            Offer::Dropped { warning: Some(w) } => {
                warnings += 1;
                assert_eq!(w.dropped, 1000);
                assert_eq!(w.dropped_from_seqno, 4097 + (warnings - 1) * 1000);
            }
            Offer::Dropped { warning: None } => {}
            Offer::Disconnect => break,
            Offer::Queued | Offer::Shed => panic!("queue never drains here; top lane only"),
        }
        s += 1;
    }
    assert_eq!(q.total_dropped(), 10_000);
    assert_eq!(warnings, 9, "the 10,000th drop disconnects instead");
    assert_eq!(q.disconnect_reason(), "slow client: 10000 frames dropped");
}

#[test]
fn write_pending_batches_runs_keeps_order_and_respects_the_budget() {
    let mut q = SessionQueue::new(QueueLimits::default(), 0);
    for f in [ev(1), ev(2), meta(3), ev(4), ev(5), ev(6)] {
        q.offer(f);
    }
    let mut out = Vec::new();
    let w = q.write_pending(&BatchWriter::default(), &mut out, 1);
    assert_eq!(
        (w.frames, w.events),
        (1, 2),
        "stops once the budget is reached"
    );
    assert_eq!(q.len(), 4);
    q.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    let frames = payloads(&out);
    let seqnos: Vec<u64> = frames
        .iter()
        .map(|f| f["server_seqno"].as_u64().unwrap())
        .collect();
    assert_eq!(seqnos, [2, 3, 6]);
    assert_eq!(frames[2]["Events"].as_array().unwrap().len(), 3);
    assert_eq!(q.cursor(), 6);
    assert!(q.is_empty());
}

// ---- priority lanes ----

fn lanes(capacity: usize) -> QueueLimits {
    QueueLimits {
        capacity,
        warn_every: 1_000,
        disconnect_after: 10_000,
        lanes: LaneMap::DEFAULT,
    }
}

fn drain(q: &mut SessionQueue) -> Vec<sonic_rs::Value> {
    let mut out = Vec::new();
    q.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    payloads(&out)
}

/// The frame's type key (`Events`, `Shed`, …).
fn kind(frame: &sonic_rs::Value) -> String {
    frame
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, _)| k.to_string())
        .find(|k| k != "server_seqno")
        .unwrap()
}

fn event_seqnos(frame: &sonic_rs::Value) -> Vec<u64> {
    frame["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seqno"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_full_queue_sheds_the_lowest_lane_first_and_reports_it_before_newer_frames() {
    use EventType::{BlockEnd, StorageAccess, TxnLog};
    let mut q = SessionQueue::new(lanes(4), 0);
    for (s, t) in [
        (1, StorageAccess),
        (2, TxnLog),
        (3, StorageAccess),
        (4, TxnLog),
    ] {
        assert_eq!(q.offer(event(s, t)), Offer::Queued);
    }
    // Block frames evict the newest detail frame, then the older one, then the newest txn.
    assert_eq!(q.offer(event(5, BlockEnd)), Offer::Queued);
    assert_eq!(q.offer(event(6, BlockEnd)), Offer::Queued);
    assert_eq!(q.offer(meta(7)), Offer::Queued);
    // Nothing below detail or txn is queued any more: they are shed themselves.
    assert_eq!(q.offer(event(8, StorageAccess)), Offer::Shed);
    assert_eq!(q.offer(event(9, TxnLog)), Offer::Shed);
    assert_eq!(q.total_shed(), 5);
    assert_eq!(q.total_dropped(), 0, "shedding is not dropping");
    assert_eq!(q.len(), 4);

    let frames = drain(&mut q);
    let kinds: Vec<String> = frames.iter().map(kind).collect();
    // The detail run (1..=8) is announced before frame 2; the txn run (4..=9) before 5.
    assert_eq!(kinds, ["Shed", "Events", "Shed", "Events", "TPS"]);
    let detail = &frames[0]["Shed"];
    assert_eq!(detail["lane"].as_str(), Some("detail"));
    assert_eq!(detail["dropped"].as_u64(), Some(3));
    assert_eq!(detail["from_seqno"].as_u64(), Some(1));
    assert_eq!(detail["to_seqno"].as_u64(), Some(8));
    assert_eq!(detail["ring_from_seqno"].as_u64(), Some(1001));
    assert_eq!(detail["ring_to_seqno"].as_u64(), Some(1008));
    assert_eq!(detail["kinds"]["StorageAccess"].as_u64(), Some(3));
    assert_eq!(detail["total_shed"].as_u64(), Some(5));
    assert_eq!(
        frames[0]["server_seqno"].as_u64(),
        Some(0),
        "carries the cursor"
    );
    assert_eq!(event_seqnos(&frames[1]), [2]);
    let txn = &frames[2]["Shed"];
    assert_eq!(txn["lane"].as_str(), Some("txn"));
    assert_eq!(
        (
            txn["dropped"].as_u64(),
            txn["from_seqno"].as_u64(),
            txn["to_seqno"].as_u64()
        ),
        (Some(2), Some(4), Some(9))
    );
    assert_eq!(txn["kinds"]["TxnLog"].as_u64(), Some(2));
    assert_eq!(frames[2]["server_seqno"].as_u64(), Some(2));
    assert_eq!(event_seqnos(&frames[3]), [5, 6]);
    assert_eq!(frames[4]["server_seqno"].as_u64(), Some(7));
    assert!(q.is_empty());
}

#[test]
fn a_kept_frame_ends_its_lanes_run_and_the_next_loss_is_a_new_report() {
    use EventType::{BlockEnd, TxnCallFrame};
    let mut q = SessionQueue::new(lanes(2), 0);
    q.offer(event(1, BlockEnd));
    q.offer(event(2, BlockEnd));
    assert_eq!(q.offer(event(3, TxnCallFrame)), Offer::Shed);
    assert_eq!(q.offer(event(4, TxnCallFrame)), Offer::Shed);
    // The client reads everything; the run has not been reported (no newer frame written).
    let frames = drain(&mut q);
    assert_eq!(frames.iter().map(kind).collect::<Vec<_>>(), ["Events"]);
    assert!(q.is_empty(), "a growing run alone is nothing to write");
    // A call frame is kept again: the run 3..=4 is complete and written at once, before it.
    assert_eq!(q.offer(event(5, TxnCallFrame)), Offer::Queued);
    q.offer(event(6, BlockEnd));
    assert_eq!(
        q.offer(event(7, TxnCallFrame)),
        Offer::Shed,
        "nothing lower to evict"
    );
    assert_eq!(q.offer(event(8, BlockEnd)), Offer::Queued, "evicts 5");
    let frames = drain(&mut q);
    assert_eq!(
        frames.iter().map(kind).collect::<Vec<_>>(),
        ["Shed", "Shed", "Events"]
    );
    let first = &frames[0]["Shed"];
    assert_eq!(
        (first["from_seqno"].as_u64(), first["to_seqno"].as_u64()),
        (Some(3), Some(4))
    );
    let second = &frames[1]["Shed"];
    assert_eq!(
        (
            second["dropped"].as_u64(),
            second["from_seqno"].as_u64(),
            second["to_seqno"].as_u64()
        ),
        (Some(2), Some(5), Some(7))
    );
    assert_eq!(event_seqnos(&frames[2]), [6, 8]);
}

#[test]
fn only_a_top_lane_overflow_counts_toward_the_disconnect() {
    use EventType::{BlockStart, StorageAccess};
    let mut q = SessionQueue::new(
        QueueLimits {
            disconnect_after: 2,
            ..lanes(2)
        },
        0,
    );
    for s in 1..=2 {
        q.offer(event(s, BlockStart));
    }
    for s in 3..=1_000 {
        assert_eq!(q.offer(event(s, StorageAccess)), Offer::Shed);
    }
    assert!(!q.is_disconnected());
    assert_eq!(
        q.offer(event(1_001, BlockStart)),
        Offer::Dropped { warning: None }
    );
    assert_eq!(q.offer(meta(1_002)), Offer::Disconnect);
    // The close-out reports the shed run, then the warning naming everything else lost.
    q.close_out();
    let frames = drain(&mut q);
    assert_eq!(
        frames.iter().map(kind).collect::<Vec<_>>(),
        ["Shed", "Warning"]
    );
    assert_eq!(frames[0]["Shed"]["dropped"].as_u64(), Some(998));
    let w = &frames[1]["Warning"];
    assert_eq!(
        (
            w["dropped_from_seqno"].as_u64(),
            w["dropped_to_seqno"].as_u64()
        ),
        (Some(1), Some(1_002))
    );
}

#[test]
fn lanes_off_is_the_single_queue_of_before() {
    let mut q = SessionQueue::new(
        QueueLimits {
            lanes: LaneMap::SINGLE,
            ..lanes(2)
        },
        0,
    );
    q.offer(event(1, EventType::StorageAccess));
    q.offer(event(2, EventType::StorageAccess));
    assert_eq!(
        q.offer(event(3, EventType::BlockEnd)),
        Offer::Dropped { warning: None }
    );
    assert_eq!(q.total_shed(), 0);
}

/// A small deterministic generator (xorshift64*), so the mix is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Whatever mix of lanes arrives and however the client reads, every offered frame is
/// either delivered or announced (a `Shed` of its lane, or a top-lane `Warning`), exactly
/// once by count; no announced range of a lane contains a delivered frame of that lane; and
/// a loss is announced before any frame with a higher seqno (the cursor never passes an
/// unannounced loss).
#[test]
fn every_offered_frame_is_delivered_or_announced_before_the_cursor_passes_it() {
    use std::collections::{BTreeMap, BTreeSet};
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut q = SessionQueue::new(lanes(16), 0);
        let mut lane_of = BTreeMap::new();
        let mut stream = Vec::new();
        for s in 1..=3_000u64 {
            let r = rng.next() % 100;
            let (frame, lane) = match r {
                0..=4 => (meta(s), Lane::Block),
                5..=9 => (event(s, EventType::BlockEnd), Lane::Block),
                10..=39 => (event(s, EventType::TxnLog), Lane::Txn),
                _ => (event(s, EventType::StorageAccess), Lane::Detail),
            };
            lane_of.insert(s, lane);
            q.offer(frame);
            if rng.next().is_multiple_of(4) {
                // A slow reader: a few hundred bytes per turn.
                let budget = (rng.next() % 400) as usize;
                let mut out = Vec::new();
                q.write_pending(&BatchWriter::default(), &mut out, budget);
                stream.extend(payloads(&out));
            }
        }
        stream.extend(drain(&mut q));

        let mut delivered = BTreeSet::new();
        let mut announced: Vec<(Lane, u64, u64)> = Vec::new();
        let mut announced_count = [0u64; 3];
        let mut checks: Vec<(u64, usize)> = Vec::new(); // (data seqno, announcements before it)
        let mut last = 0;
        for f in &stream {
            let seq = f["server_seqno"].as_u64().unwrap();
            assert!(seq >= last, "seed {seed}: seqnos never go backwards");
            last = seq;
            match kind(f).as_str() {
                "Events" => {
                    for s in event_seqnos(f) {
                        delivered.insert(s);
                        checks.push((s, announced.len()));
                    }
                }
                "TPS" => {
                    delivered.insert(seq);
                    checks.push((seq, announced.len()));
                }
                "Shed" => {
                    let sh = &f["Shed"];
                    let lane = Lane::from_name(sh["lane"].as_str().unwrap()).unwrap();
                    announced_count[lane.index()] += sh["dropped"].as_u64().unwrap();
                    announced.push((
                        lane,
                        sh["from_seqno"].as_u64().unwrap(),
                        sh["to_seqno"].as_u64().unwrap(),
                    ));
                }
                "Warning" => {
                    let w = &f["Warning"];
                    announced_count[0] += w["dropped"].as_u64().unwrap();
                    announced.push((
                        Lane::Block,
                        w["dropped_from_seqno"].as_u64().unwrap(),
                        w["dropped_to_seqno"].as_u64().unwrap(),
                    ));
                }
                other => panic!("unexpected frame {other}"),
            }
        }
        // Losses after the last frame written need no report yet: the cursor has not passed
        // them, so a resume from it replays them.
        let lost: Vec<u64> = lane_of
            .keys()
            .copied()
            .filter(|&s| !delivered.contains(&s) && s < q.cursor())
            .collect();
        assert!(
            !lost.is_empty(),
            "seed {seed}: the reader was slow enough to lose"
        );
        let covered = |s: u64, upto: usize| {
            announced[..upto]
                .iter()
                .any(|&(l, from, to)| l == lane_of[&s] && (from..=to).contains(&s))
        };
        for &s in &lost {
            assert!(
                covered(s, announced.len()),
                "seed {seed}: {s} lost unannounced"
            );
        }
        for &(s, before) in &checks {
            for &l in lost.iter().take_while(|&&l| l < s) {
                assert!(
                    covered(l, before),
                    "seed {seed}: {s} written before {l}'s report"
                );
            }
        }
        for &(lane, from, to) in &announced {
            {
                assert!(
                    !delivered
                        .iter()
                        .any(|&s| lane_of[&s] == lane && (from..=to).contains(&s)),
                    "seed {seed}: {lane:?} {from}..={to} contains a delivered frame"
                );
            }
        }
        for lane in Lane::ALL {
            let n = lane_of
                .iter()
                .filter(|&(s, l)| *l == lane && !delivered.contains(s))
                .count() as u64;
            let tail = lane_of
                .iter()
                .filter(|&(s, l)| *l == lane && !delivered.contains(s) && *s > q.cursor())
                .count() as u64;
            let reported = announced_count[lane.index()];
            assert!(
                reported + tail >= n && reported <= n,
                "seed {seed}: {lane:?}: {reported} announced of {n} lost ({tail} after the cursor)"
            );
        }
    }
}
