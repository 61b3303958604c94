//! Every loss the gateway cannot prevent reaches the affected clients with its range. Here: a
//! shard whose inbox overflows (a one-slot SPSC queue under a burst) — every frame the shard
//! lost is covered by exactly one `Gap{reason:"shard_queue_full"}` range, including a loss at
//! the very end of a burst (announced while the ring is idle, not only at the next event).
//! The other losses have their own tests: ring laps and gate overflows in `e2e_chain.rs`,
//! session-queue drops (`Warning` with the range) in `e2e_backpressure.rs`.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use sonic_rs::JsonValueTrait;

#[test]
fn every_frame_a_full_shard_queue_lost_is_announced_to_its_sessions_with_the_range() {
    let mut ring = TestRing::create("shard-full");
    let gw = start_gateway(ringgate::config::Config {
        spsc_capacity: 1,
        ..test_config(&ring)
    });
    let mut client = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    gw.wait_for_clients(1);

    let mut written = 0u64;
    for n in 0..30 {
        written += ring.write_block(1_000 + n, 150).len() as u64;
    }
    let stats = gw.stats();
    wait_until("the tailer read every event", || {
        stats.tailer.head_ring_seqno.load(Ordering::Relaxed) >= written
    });

    // Read until the stream reaches the tailer's head: through a frame or a Gap that ends
    // there (the last frames may themselves have been lost).
    let mut lost_announced = 0u64;
    let mut gaps = Vec::new();
    let mut last_seen = 0u64;
    loop {
        let head = stats.tailer.head_server_seqno.load(Ordering::Relaxed);
        if last_seen >= head && stats.tailer.ring_state() == ringgate::metrics::RingState::Live {
            break;
        }
        let v = client.next_json();
        let seqno = seqno_of(&v);
        assert!(
            seqno >= last_seen,
            "seqnos never go back: {seqno} after {last_seen}"
        );
        last_seen = seqno;
        if let Some(g) = v.get("Gap") {
            if g.get("reason").and_then(|r| r.as_str()) == Some("shard_queue_full") {
                let from = g.get("from_seqno").and_then(|x| x.as_u64()).expect("from");
                let to = g.get("to_seqno").and_then(|x| x.as_u64()).expect("to");
                assert!(
                    from <= to && to == seqno,
                    "range {from}..={to} stamped {seqno}"
                );
                if let Some((_, prev_to)) = gaps.last() {
                    assert!(from > *prev_to, "ranges are disjoint and in order");
                }
                gaps.push((from, to));
                lost_announced += to - from + 1;
            }
        }
    }
    let lost = stats.shards[0].spsc_full.load(Ordering::Relaxed);
    assert!(
        lost > 0,
        "the burst must overflow a one-slot queue (it did not: test is void)"
    );
    assert_eq!(
        lost_announced,
        lost,
        "every lost frame is in exactly one announced range ({} gaps)",
        gaps.len()
    );
    let gap_frames = stats.tailer.gaps[ringgate::model::gap::GapReason::ShardQueueFull.index()]
        .load(Ordering::Relaxed);
    assert_eq!(
        gap_frames,
        gaps.len() as u64,
        "one announcement per counted gap"
    );
}
