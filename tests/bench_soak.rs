//! The soak's stream checker (benches/soak/check.rs), tested on frames as the server writes
//! them: it must flag a silent hole, accept an announced one, and know a writer restart.

#![allow(dead_code)]

#[path = "../benches/soak/check.rs"]
mod check;

use check::{Frame, SeqCheck};

fn frame(json: &str) -> Frame {
    sonic_rs::from_str(json).expect("frame JSON")
}

fn events(server_seqno: u64, ring: &[u64]) -> Frame {
    let evs: Vec<String> = ring
        .iter()
        .map(|s| {
            format!(r#"{{"event_name":"TxnLog","payload":{{"x":1}},"seqno":{s},"timestamp_ns":1}}"#)
        })
        .collect();
    frame(&format!(
        r#"{{"server_seqno":{server_seqno},"Events":[{}]}}"#,
        evs.join(",")
    ))
}

#[test]
fn a_hole_nothing_announced_is_silent() {
    let mut c = SeqCheck::default();
    assert!(c.on_frame(&events(10, &[1, 2, 3])).is_empty());
    let holes = c.on_frame(&events(11, &[4, 7]));
    assert_eq!(holes.len(), 1);
    assert_eq!((holes[0].from, holes[0].to), (5, 6));
    assert_eq!(holes[0].announced_by, None);
    assert_eq!(c.events, 5);
}

#[test]
fn a_hole_inside_announced_ring_ranges_is_announced() {
    let mut c = SeqCheck::default();
    c.on_frame(&events(10, &[1]));
    c.on_frame(&frame(
        r#"{"server_seqno":11,"Gap":{"reason":"ring_lapped","ring_from_seqno":2,"ring_to_seqno":5}}"#,
    ));
    c.on_frame(&frame(
        r#"{"server_seqno":12,"Gap":{"reason":"payload_expired","ring_from_seqno":6,"ring_to_seqno":6}}"#,
    ));
    let holes = c.on_frame(&events(13, &[7]));
    assert_eq!(holes[0].announced_by.as_deref(), Some("ring range"));
    // A range that covers only part of the next hole does not excuse it.
    c.on_frame(&frame(
        r#"{"server_seqno":14,"Gap":{"reason":"ring_lapped","ring_from_seqno":8,"ring_to_seqno":8}}"#,
    ));
    let holes = c.on_frame(&events(15, &[10]));
    assert_eq!((holes[0].from, holes[0].to), (8, 9));
    assert_eq!(holes[0].announced_by, None);
}

#[test]
fn a_loss_without_a_ring_range_excuses_only_the_next_hole() {
    let mut c = SeqCheck::default();
    c.on_frame(&events(10, &[1]));
    c.on_frame(&frame(
        r#"{"server_seqno":20,"Gap":{"reason":"shard_queue_full","from_seqno":11,"to_seqno":20}}"#,
    ));
    let holes = c.on_frame(&events(21, &[5, 6]));
    assert_eq!(holes[0].announced_by.as_deref(), Some("shard_queue_full"));
    let holes = c.on_frame(&events(22, &[9]));
    assert_eq!(holes[0].announced_by, None);
}

#[test]
fn a_writer_restart_starts_the_ring_at_one_and_a_later_start_is_a_hole() {
    let mut c = SeqCheck::default();
    c.on_frame(&events(10, &[500, 501]));
    c.on_frame(&frame(
        r#"{"server_seqno":11,"Gap":{"reason":"writer_restart"}}"#,
    ));
    assert!(c.on_frame(&events(12, &[1, 2])).is_empty());
    assert!(c.disorder.is_empty(), "{:?}", c.disorder);
    c.on_frame(&frame(
        r#"{"server_seqno":13,"Gap":{"reason":"writer_restart"}}"#,
    ));
    let holes = c.on_frame(&events(14, &[4]));
    assert_eq!(
        (holes[0].from, holes[0].to),
        (1, 3),
        "the new ring's start was lost"
    );
    assert_eq!(c.gaps.get("writer_restart"), Some(&2));
}

#[test]
fn duplicates_and_seqno_regressions_are_disorder() {
    let mut c = SeqCheck::default();
    c.on_frame(&events(10, &[1, 2]));
    c.on_frame(&events(9, &[2]));
    assert_eq!(c.disorder.len(), 3, "{:?}", c.disorder);
    // A per-connection message repeats the cursor: fine.
    let mut c = SeqCheck::default();
    c.on_frame(&events(10, &[1]));
    c.on_frame(&frame(
        r#"{"server_seqno":10,"Warning":{"type":"backpressure","dropped":1}}"#,
    ));
    c.on_frame(&frame(r#"{"server_seqno":10,"Heartbeat":{}}"#));
    assert!(c.disorder.is_empty(), "{:?}", c.disorder);
    let holes = c.on_frame(&events(12, &[3]));
    assert_eq!(holes[0].announced_by.as_deref(), Some("Warning"));
}
