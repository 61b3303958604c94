//! A client that never reads costs only its own queue: it is warned, then disconnected at the
//! configured drop limit, while another client on the same shard receives every event.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

#[test]
fn a_client_that_never_reads_is_dropped_while_a_reader_on_the_same_shard_gets_everything() {
    let mut ring = TestRing::create("slow");
    let mut config = test_config(&ring);
    config.shards = Some(1);
    config.session_queue_frames = 512;
    config.drop_warning_every = 100;
    config.drop_disconnect_after = 1_000;
    config.socket_send_buffer = Some(4 * 1024);
    // The slow client never reads again: released when its close grace runs out.
    config.close_grace = std::time::Duration::from_secs(1);
    let gw = start_gateway(config);

    let mut reader = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&reader.next_json()), "Hello");
    let slow = RawClient::upgraded(gw.addr, "/v1/ws");
    gw.wait_for_clients(2);

    // The reader runs on its own thread and counts what it received.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let reader_thread = std::thread::spawn(move || {
        let mut names = Vec::new();
        let mut last = 0;
        let mut warnings = 0;
        while let Ok(target) = rx.recv() {
            while names.len() < target {
                let v = reader.next_json();
                if kind_of(&v) == "Warning" {
                    warnings += 1;
                    continue;
                }
                let s = seqno_of(&v);
                assert!(s > last, "server_seqno went from {last} to {s}");
                last = s;
                names.extend(event_names(&v));
                counter.store(names.len(), Ordering::SeqCst);
            }
        }
        (names, warnings, reader)
    });

    // Write blocks until the slow client is disconnected, pacing on the reader so only the
    // slow client can fall behind.
    let mut written = Vec::new();
    let mut number = 1;
    while gw.stats().sum(|s| &s.slow_disconnects) == 0 {
        written.extend(ring.write_block(number, 40));
        number += 1;
        tx.send(written.len()).expect("reader alive");
        let target = written.len();
        wait_until("the reader caught up", || {
            received.load(Ordering::SeqCst) >= target
        });
        assert!(number < 500, "slow client never disconnected");
    }
    drop(tx);
    let (names, warnings, _reader) = reader_thread.join().expect("reader thread");
    let expected: Vec<String> = written.iter().map(|t| t.name().to_string()).collect();
    assert_eq!(names, expected, "the reader missed or reordered events");
    assert_eq!(warnings, 0, "the reader was never behind");
    assert!(gw.stats().sum(|s| &s.drops) >= 1_000);
    gw.wait_for_clients(1);
    drop(slow);
}

#[test]
fn a_misbehaving_client_that_also_never_reads_is_still_closed_and_released() {
    let mut ring = TestRing::create("stuck");
    let mut config = test_config(&ring);
    config.session_queue_frames = 512;
    config.drop_disconnect_after = 1_000_000;
    config.socket_send_buffer = Some(4 * 1024);
    config.close_grace = std::time::Duration::from_secs(1);
    let gw = start_gateway(config);
    let mut bystander = WsClient::connect(gw.addr, "/v1/ws/blocks");
    assert_eq!(kind_of(&bystander.next_json()), "Hello");
    let mut stuck = RawClient::upgraded(gw.addr, "/v1/ws");
    gw.wait_for_clients(2);

    // Fill the stuck client's socket so its writer blocks in a write.
    for n in 0..20 {
        ring.write_block(n, 40);
    }
    let mut last = 0;
    assert_eq!(collect_events(&mut bystander, 40, &mut last).len(), 40);
    wait_until("the stuck client's queue overflowed", || {
        gw.stats().sum(|s| &s.drops) + gw.stats().sum(|s| &s.shed) > 0
    });
    // Now it breaks the protocol too; its session must end although it never reads.
    stuck.send(&RawClient::frame(0x1, b"{}", false));
    gw.wait_for_clients(1);
    drop(stuck);
}
