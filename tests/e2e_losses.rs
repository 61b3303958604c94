//! Every loss the gateway cannot prevent reaches the affected clients with its range, each
//! forced here through the real gateway:
//! - a shard whose inbox overflows (a one-slot SPSC queue under a burst): with the shared
//!   history (the default) every frame the shard lost is read back from it and delivered in
//!   place, nothing announced; without one, every lost frame is covered by exactly one
//!   `Gap{reason:"shard_queue_full"}` range, including a loss at the very end of a burst
//!   (announced while the ring is idle, not only at the next event);
//! - a session whose queue overflows (a client that stops reading, then reads again): every
//!   drop is in a `Warning{type:"backpressure"}` range that sits exactly where the frames
//!   went missing;
//! - a `min_stage` gate pushing a held block out (consensus stalls past its bounds): a
//!   `Finalized` client gets `Gap{reason:"stage_gate_overflow"}` naming the block and the
//!   range of its originals.
//!
//! The fourth, a lapped ring, is forced in `e2e_chain.rs`
//! (`a_lapped_tailer_sends_a_ring_lapped_gap_with_the_range_and_keeps_serving`).

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use sonic_rs::{JsonValueTrait, Value};

/// A gateway whose shard queue has one slot, with these session queue and history sizes, a
/// firehose client, and a burst of 30 blocks; returns the number of ring events written.
fn burst_through_a_one_slot_queue(
    tag: &str,
    session_queue_frames: usize,
    history_memory: u64,
) -> (TestRing, TestGateway, WsClient, u64) {
    let mut ring = TestRing::create(tag);
    let gw = start_gateway(ringgate::config::Config {
        spsc_capacity: 1,
        session_queue_frames,
        history_memory,
        ..test_config(&ring)
    });
    let mut client = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    gw.wait_for_clients(1);
    let mut written = 0u64;
    for n in 0..30 {
        written += ring.write_block(1_000 + n, 150).len() as u64;
    }
    (ring, gw, client, written)
}

#[test]
fn frames_a_full_shard_queue_lost_are_read_back_from_the_history_and_delivered_in_place() {
    let defaults = ringgate::config::Config::default();
    let (_ring, gw, mut client, written) =
        burst_through_a_one_slot_queue("shard-full-repair", 1 << 20, defaults.history_memory);
    let mut last_seqno = 0u64;
    let mut next_ring_seqno = 1u64;
    while next_ring_seqno <= written {
        let v = client.next_json();
        let seqno = seqno_of(&v);
        assert!(
            seqno > last_seqno,
            "server_seqno {seqno} after {last_seqno}"
        );
        last_seqno = seqno;
        assert!(
            v.get("Gap").is_none() && v.get("Warning").is_none(),
            "nothing is announced lost: {v:?}"
        );
        for s in ring_seqnos(&v) {
            assert_eq!(s, next_ring_seqno, "every ring event once, in order");
            next_ring_seqno += 1;
        }
    }
    let stats = &gw.stats().shards[0];
    let lost = stats.spsc_full.load(Ordering::Relaxed);
    assert!(
        lost > 0,
        "the burst must overflow a one-slot queue (it did not: test is void)"
    );
    assert_eq!(
        stats.repaired_frames.load(Ordering::Relaxed),
        lost,
        "every frame the queue did not take came back from the history"
    );
}

#[test]
fn without_a_history_every_frame_a_full_shard_queue_lost_is_announced_with_the_range() {
    let defaults = ringgate::config::Config::default();
    let (_ring, gw, mut client, written) =
        burst_through_a_one_slot_queue("shard-full", defaults.session_queue_frames, 0);
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

/// The `u64` at `key` of `v`'s `kind` object.
fn field(v: &Value, kind: &str, key: &str) -> Option<u64> {
    v.get(kind)?.get(key)?.as_u64()
}

#[test]
fn every_frame_a_full_session_queue_dropped_is_announced_where_it_went_missing() {
    let mut ring = TestRing::create("session-full");
    let gw = start_gateway(ringgate::config::Config {
        // One lane: every overflow is a drop with a Warning (the lanes' Shed reports:
        // tests/e2e_lanes.rs).
        lanes: ringgate::model::lane::LaneMap::SINGLE,
        session_queue_frames: 32,
        drop_warning_every: 50,
        drop_disconnect_after: 1_000_000,
        socket_send_buffer: Some(4 * 1024),
        ..test_config(&ring)
    });
    // A client with a tiny receive buffer that reads nothing while the burst is written.
    let mut client =
        RawClient::upgraded_over(connect_small_receive_buffer(gw.addr), "/v1/ws").into_ws();
    gw.wait_for_clients(1);
    let mut written = 0u64;
    let mut number = 1;
    let stats = gw.stats();
    while stats.sum(|s| &s.drops) < 500 {
        written += ring.write_block(number, 50).len() as u64;
        number += 1;
        // Block by block, so the ring is never lapped (that would be another loss).
        wait_until("the tailer read the block", || {
            stats.tailer.head_ring_seqno.load(Ordering::Relaxed) >= written
        });
        assert!(number < 400, "the session queue never overflowed");
    }
    let burst_end = written;

    // Now read everything, on a thread: between two data frames whose events are not
    // consecutive in the ring, a Warning must say which server_seqnos went missing. It stops
    // at the first event written after the burst: the queue had room again, so the last run
    // of drops was announced before it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_done = done.clone();
    let reader = std::thread::spawn(move || {
        let (mut last_frame_seqno, mut last_ring_seqno) = (0u64, 0u64);
        let (mut announced, mut missing_events) = (0u64, 0u64);
        let mut warned_to: Option<u64> = None;
        while last_ring_seqno <= burst_end {
            let v = client.next_json();
            match kind_of(&v).as_str() {
                "Warning" => {
                    let from = field(&v, "Warning", "dropped_from_seqno").expect("from");
                    let to = field(&v, "Warning", "dropped_to_seqno").expect("to");
                    let dropped = field(&v, "Warning", "dropped").expect("dropped");
                    assert!(
                        from > last_frame_seqno && from <= to && dropped >= 1,
                        "warning range {from}..={to} ({dropped}) after frame {last_frame_seqno}"
                    );
                    announced += dropped;
                    warned_to = Some(to);
                }
                "Events" => {
                    let s = seqno_of(&v);
                    let seqnos = ring_seqnos(&v);
                    let first = seqnos.first().copied().expect("an Events frame has events");
                    if last_ring_seqno != 0 && first != last_ring_seqno + 1 {
                        missing_events += first - last_ring_seqno - 1;
                        let to = warned_to.unwrap_or_else(|| {
                            panic!(
                                "ring events {}..{first} vanished without a Warning",
                                last_ring_seqno + 1
                            )
                        });
                        assert!(to < s, "the warning's range ends before this frame");
                    }
                    warned_to = None;
                    last_frame_seqno = s;
                    last_ring_seqno = *seqnos.last().expect("non-empty");
                }
                _ => {}
            }
        }
        reader_done.store(true, Ordering::SeqCst);
        (announced, missing_events)
    });
    // Blocks after the burst until one reaches the reader, each given time to reach it before
    // the next: a block written while the reader is done reading (it stops at the first one
    // it gets) could overflow the queue again, with drops no Warning it reads can name.
    while !done.load(Ordering::SeqCst) && !reader.is_finished() {
        written += ring.write_block(number, 2).len() as u64;
        number += 1;
        wait_until("the tailer read the block", || {
            stats.tailer.head_ring_seqno.load(Ordering::Relaxed) >= written
        });
        let wrote_at = Instant::now();
        while !done.load(Ordering::SeqCst)
            && !reader.is_finished()
            && wrote_at.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(number < 10_000, "the reader never caught up");
    }
    let (announced, missing_events) = reader.join().expect("reader");
    assert!(
        missing_events > 0,
        "the client missed nothing: test is void"
    );
    assert!(
        announced >= missing_events,
        "{missing_events} events missing, {announced} frames announced"
    );
    assert_eq!(
        announced,
        stats.sum(|s| &s.drops),
        "every counted drop is in a Warning"
    );
}

#[test]
fn a_block_the_stage_gate_pushes_out_is_a_gap_to_a_min_stage_client() {
    let mut ring = TestRing::create("gate-overflow");
    let mut config = test_config(&ring);
    config.chain.gate.max_blocks = 2;
    let gw = start_gateway(config);
    let mut client = WsClient::connect(gw.addr, "/v1/ws?min_stage=Finalized");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    gw.wait_for_clients(1);
    // Three blocks, none finalized: opening the third pushes the first out.
    let mut first_block_events = 0;
    for n in 0..3u8 {
        let events = ring.write_block_with_id(n + 1, 100 + u64::from(n), 5).len();
        if n == 0 {
            first_block_events = events as u64;
        }
    }
    let gap = loop {
        let v = client.next_json();
        if let Some(g) = v.get("Gap") {
            break g.clone();
        }
        assert_ne!(
            kind_of(&v),
            "Events",
            "a Finalized client got events of unfinalized blocks"
        );
    };
    assert_eq!(
        gap.get("reason").and_then(|r| r.as_str()),
        Some("stage_gate_overflow")
    );
    assert_eq!(gap.get("block_number").and_then(|n| n.as_u64()), Some(100));
    let from = gap
        .get("from_seqno")
        .and_then(|x| x.as_u64())
        .expect("from");
    let to = gap.get("to_seqno").and_then(|x| x.as_u64()).expect("to");
    // The originals' server_seqnos, with the block's own Lifecycle frames in between.
    let span = to - from + 1;
    assert!(
        span >= first_block_events && span < 2 * first_block_events,
        "the range {from}..={to} covers the pushed-out block's {first_block_events} originals"
    );
}
