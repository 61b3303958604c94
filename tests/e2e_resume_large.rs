//! A 100,000-frame replay (the old default store's worth, read from the shared history)
//! completes on one connection: paced by the socket (a client that reads slowly at first still gets everything), never dropped,
//! never aborted (the old gateway aborted past ~14k frames), then joins the live stream.

mod common;
mod resume_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use resume_support::*;
use ringgate::model::kind::EventType;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

/// The default store size, replayed in full.
const STORE: u64 = 100_000;

#[test]
fn a_full_store_replay_of_100k_frames_completes_and_goes_live() {
    let mut ring = TestRing::create("resume-100k");
    let mut config = test_config(&ring);
    assert_eq!(
        config.resume_store_frames as u64, STORE,
        "the default store"
    );
    // The inbox absorbs a whole writing step; small socket buffers make the replay wait
    // for the client early.
    config.spsc_capacity = 16_384;
    config.socket_send_buffer = Some(16 * 1024);
    let gw = start_gateway(config);
    // Small events (TxnEnd, ~90 bytes of JSON) keep the test's wall time low.
    let mut written = 0;
    while written < STORE + 500 {
        for _ in 0..10_000 {
            written = ring.write_raw(EventType::TxnEnd.code(), &[]);
        }
        settle(&gw, written);
    }
    let (oldest, head) = settle(&gw, written);
    // The shared history holds at least the default store's worth (here: everything).
    assert!(head - oldest + 1 >= STORE, "{oldest}..={head}");

    let start = oldest - 1;
    let mut c = WsClient::connect(
        gw.addr,
        &format!("/v1/ws?resume_from={start}&epoch={}", epoch(&gw)),
    );
    let (hello, r) = opening(&mut c, true);
    assert_eq!(seqno_of(&hello), start);
    let r = r.expect("Resume");
    let b = body(&r, "Resume");
    assert_eq!(str_of(b, "mode"), Some("resume"));
    assert_eq!(u64_of(b, "from_seqno"), Some(oldest));
    assert_eq!(u64_of(b, "to_seqno"), Some(head));

    // Every frame once, in order: frames' seqnos increase, events' ring seqnos follow each
    // other, and nothing is announced lost or dropped.
    let mut last = start;
    let (mut items, mut events) = (0u64, 0u64);
    let mut next_ring: Option<u64> = None;
    let mut frames = 0;
    while last < head {
        if frames < 20 {
            // A slow reader at first: the server must wait for it, not drop or abort.
            std::thread::sleep(Duration::from_millis(20));
        }
        frames += 1;
        let v = c.next_json();
        let kind = kind_of(&v);
        assert!(!["Gap", "Warning"].contains(&kind.as_str()), "{v:?}");
        let s = seqno_of(&v);
        assert!(s > last, "server_seqno went from {last} to {s}");
        last = s;
        let Some(batch) = v.get("Events").and_then(|e| e.as_array()) else {
            items += 1;
            continue;
        };
        for e in batch.iter() {
            let ring_seqno = e.get("seqno").and_then(|n| n.as_u64()).expect("seqno");
            if let Some(expected) = next_ring {
                assert_eq!(
                    ring_seqno, expected,
                    "a replayed event is missing or repeated"
                );
            }
            next_ring = Some(ring_seqno + 1);
            events += 1;
            items += 1;
        }
    }
    let replayed = head - start;
    assert_eq!((last, items), (head, replayed));
    assert!(events > replayed - 1_000, "{events} events");
    assert_eq!(gw.stats().sum(|s| &s.replayed_frames), replayed);
    assert_eq!(gw.stats().sum(|s| &s.drops), 0);

    // Live after the replay: the next event follows.
    ring.write_raw(EventType::TxnEnd.code(), &[]);
    let v = c.next_of("Events");
    assert!(seqno_of(&v) > head);
    assert_eq!(gw.clients(), 1, "the connection was never aborted");
    // The tailer publishes its head after pushing the frames to the shards, so the client
    // can have the frame a moment before the gauge moves.
    wait_until("the tailer's published head passes the replay", || {
        gw.stats().tailer.head_server_seqno.load(Ordering::Relaxed) > head
    });
}
