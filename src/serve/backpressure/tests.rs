//! Unit tests of session queues, drop warnings and heartbeats.

use super::*;
use crate::model::kind::EventType;
use crate::model::outbound::{FilterKeys, MetaFrame, MetaKind};
use crate::model::stage::CommitStage;
use std::sync::Arc;

fn ev(seqno: u64) -> Outbound {
    Outbound::Event(Arc::new(EncodedEvent {
        server_seqno: seqno,
        origin_seqno: seqno,
        ring_seqno: seqno,
        timestamp_ns: 0,
        gate: CommitStage::Proposed,
        keys: FilterKeys::new(EventType::TxnLog),
        json: format!(r#"{{"seqno":{seqno}}}"#).into_bytes().into(),
        stage_span: None,
    }))
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
            Offer::Queued => panic!("queue never drains here"),
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
