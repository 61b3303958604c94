//! Each channel delivers only what it documents: the lifecycle and contention channels get
//! no raw events (the old gateway streamed everything on them), the blocks channel only
//! block events, the txs channel only transaction events.

mod common;

use common::*;

/// Every event name a client received before the server closed (shutdown flushes first).
fn drain_until_close(c: &mut WsClient) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match c.next() {
            ServerFrame::Json(v) => names.extend(event_names(&v)),
            ServerFrame::Close(..) | ServerFrame::Ended => return names,
        }
    }
}

#[test]
fn channels_deliver_only_what_they_document() {
    let mut ring = TestRing::create("channels");
    let mut gw = start_gateway(test_config(&ring));
    let paths = [
        "/v1/ws/lifecycle",
        "/v1/ws/contention",
        "/v1/ws/blocks",
        "/v1/ws/txs",
        "/",
    ];
    let mut clients: Vec<WsClient> = paths
        .iter()
        .map(|p| WsClient::connect(gw.addr, p))
        .collect();
    for c in &mut clients {
        assert_eq!(kind_of(&c.next_json()), "Hello");
    }
    gw.wait_for_clients(paths.len() as u64);
    let written = ring.write_block(5, 3);
    // The chain bodies are published after the block's last frames were pushed; then the
    // shard has dispatched everything once its inbox count reaches the head (a sum of
    // events written over all sessions could be reached before BLOCK_END arrived).
    wait_until("the shard dispatched every frame of the block", || {
        let hub = gw.stats();
        let head = hub
            .tailer
            .head_server_seqno
            .load(std::sync::atomic::Ordering::Relaxed);
        hub.chain.get().block(5).body.contains("gas_used") && hub.sum(|s| &s.inbox_frames) == head
    });
    gw.shutdown();

    let got: Vec<Vec<String>> = clients.iter_mut().map(drain_until_close).collect();
    assert!(
        got[0].is_empty(),
        "lifecycle channel got raw events: {:?}",
        got[0]
    );
    assert!(
        got[1].is_empty(),
        "contention channel got raw events: {:?}",
        got[1]
    );
    assert_eq!(got[2], vec!["BlockStart", "BlockEnd"]);
    assert_eq!(got[3].len(), 9);
    assert!(got[3].iter().all(|n| n.starts_with("Txn")), "{:?}", got[3]);
    assert_eq!(got[4].len(), written.len(), "the / alias is the firehose");
}
