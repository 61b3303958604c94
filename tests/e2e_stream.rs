//! Writer → serve → clients: every client receives exactly the events its subscription
//! selects, in ring order, with strictly increasing `server_seqno`.

mod common;

use common::*;
use ringgate::model::kind::EventType;

fn names(types: &[EventType]) -> Vec<String> {
    types.iter().map(|t| t.name().to_string()).collect()
}

#[test]
fn firehose_and_filtered_clients_each_get_exactly_their_events_in_ring_order() {
    let mut ring = TestRing::create("stream");
    let gw = start_gateway(test_config(&ring));

    let mut firehose = WsClient::connect(gw.addr, "/v1/ws");
    let mut starts = WsClient::connect(gw.addr, "/v1/ws");
    let mut txs = WsClient::connect(gw.addr, "/v1/ws/txs?events=TxnLog");
    let mut hello_seqnos = Vec::new();
    for c in [&mut firehose, &mut starts, &mut txs] {
        let hello = c.next_json();
        assert_eq!(kind_of(&hello), "Hello");
        hello_seqnos.push(seqno_of(&hello));
    }
    starts.send_text(r#"{"subscribe":["BlockStart"]}"#);
    let ack = starts.next_json();
    assert_eq!(kind_of(&ack), "Subscribed", "{ack:?}");
    gw.wait_for_clients(3);

    let mut written = Vec::new();
    for n in 0..3 {
        written.extend(ring.write_block(100 + n, 4));
    }

    // Every data frame is above the connection's Hello (its starting cursor).
    let mut last = hello_seqnos[0];
    let all = collect_events(&mut firehose, written.len(), &mut last);
    assert_eq!(all, names(&written));

    let mut last = seqno_of(&ack);
    let only_starts = collect_events(&mut starts, 3, &mut last);
    assert_eq!(only_starts, vec!["BlockStart"; 3]);

    let mut last = hello_seqnos[2];
    let logs = collect_events(&mut txs, 12, &mut last);
    assert_eq!(logs, vec!["TxnLog"; 12]);
}

#[test]
fn undecodable_ring_events_are_counted_and_skipped_and_the_stream_goes_on() {
    let mut ring = TestRing::create("malformed");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&c.next_json()), "Hello");
    gw.wait_for_clients(1);

    ring.write_raw(999, b"not an event");
    ring.write_raw(EventType::BlockStart.code(), &[1, 2, 3]);
    let written = ring.write_block(11, 1);
    let mut last = 0;
    assert_eq!(
        collect_events(&mut c, written.len(), &mut last),
        names(&written)
    );
    let bad = gw
        .stats()
        .tailer
        .events_bad
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(bad, 2);
}
