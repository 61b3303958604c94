//! Server life: REST on the WebSocket port, several shards behind one port, and a graceful
//! shutdown that closes every client with 1001 after flushing what was queued.

mod common;

use common::*;
use sonic_rs::JsonValueTrait;

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn rest_endpoints_answer_on_the_websocket_port() {
    let mut ring = TestRing::create("rest");
    let gw = start_gateway(test_config(&ring));
    ring.write_block(1, 2);
    wait_until("the tailer read the block", || {
        gw.stats().tailer.events_in_total() == 8
    });

    let health = RawClient::request(gw.addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");
    let v: sonic_rs::Value = sonic_rs::from_str(body(&health)).expect("health JSON");
    assert_eq!(v.get("success").and_then(|s| s.as_bool()), Some(true));

    let status = RawClient::request(gw.addr, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
    let v: sonic_rs::Value = sonic_rs::from_str(body(&status)).expect("status JSON");
    // 8 events plus the chain's meta frames (Lifecycle Proposed, ContentionData, TopAccesses).
    let head = gw
        .stats()
        .tailer
        .head_server_seqno
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(head > 8, "{head}");
    assert_eq!(v.get("server_seqno").and_then(|s| s.as_u64()), Some(head));
    assert_eq!(v.get("ring").and_then(|s| s.as_str()), Some("live"));

    let metrics = RawClient::request(gw.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        metrics.contains("ringgate_events_in_total{type=\"TxnLog\"} 2\n"),
        "{metrics}"
    );

    let tps = RawClient::request(gw.addr, "GET /v1/tps HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(tps.starts_with("HTTP/1.1 200 "), "{tps}");
    assert!(body(&tps).starts_with("{\"tps\":0,"), "{tps}");
}

/// The head of an HTTP answer, lower-cased (header names are case-insensitive).
fn head_lower(response: &str) -> String {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(h, _)| h)
        .to_ascii_lowercase()
}

/// Found in the soak (issue "Soak and faults", item 3): error answers carried
/// `Access-Control-Allow-Origin: *` although docs/protocol.md says there is no CORS header by
/// default; `Config::cors_origin` defaulted to `Some("*")`.
#[test]
fn http_answers_carry_a_cors_header_only_when_one_is_configured() {
    let requests = [
        ("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
        ("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
        ("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        ("POST /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
        ("GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n", "426"),
        (
            "GET /v1/blocks/x/lifecycle HTTP/1.1\r\nHost: x\r\n\r\n",
            "400",
        ),
    ];
    let ring = TestRing::create("cors");
    let gw = start_gateway(test_config(&ring));
    for (request, status) in requests {
        let answer = RawClient::request(gw.addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        assert!(
            !head_lower(&answer).contains("access-control-"),
            "no CORS header by default: {answer}"
        );
    }
    drop(gw);

    let mut config = test_config(&ring);
    config.cors_origin = Some("https://dash.example".to_owned());
    let gw = start_gateway(config);
    for (request, status) in requests {
        let answer = RawClient::request(gw.addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        assert!(
            head_lower(&answer).contains("\r\naccess-control-allow-origin: https://dash.example"),
            "{answer}"
        );
    }
}

#[test]
fn health_is_503_when_the_ring_writer_is_gone() {
    let mut ring = TestRing::create("gone");
    let gw = start_gateway(test_config(&ring));
    ring.crash_writer();
    wait_until("the tailer noticed the writer left", || {
        let r = RawClient::request(gw.addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        r.starts_with("HTTP/1.1 503 ")
    });
}

#[test]
fn a_writer_restart_is_announced_as_a_gap_and_the_new_ring_is_served() {
    let mut ring = TestRing::create("restart");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&c.next_json()), "Hello");
    gw.wait_for_clients(1);
    let n = ring.write_block(1, 1).len();
    let mut last = 0;
    collect_events(&mut c, n, &mut last);

    ring.restart_writer();
    let gap = c.next_of("Gap");
    assert!(seqno_of(&gap) > last);
    let reason = gap
        .get("Gap")
        .and_then(|g| g.get("reason"))
        .and_then(|r| r.as_str());
    assert_eq!(reason, Some("writer_restart"));
    last = seqno_of(&gap);
    let written: Vec<String> = ring
        .write_block(2, 2)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    assert_eq!(collect_events(&mut c, written.len(), &mut last), written);
    assert_eq!(
        gw.stats()
            .tailer
            .writer_restarts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn two_shards_share_one_port_and_each_serves_its_clients() {
    let mut ring = TestRing::create("shards");
    let mut config = test_config(&ring);
    config.shards = Some(2);
    let gw = start_gateway(config);
    let mut clients: Vec<WsClient> = (0..6)
        .map(|_| WsClient::connect(gw.addr, "/v1/ws"))
        .collect();
    for c in &mut clients {
        assert_eq!(kind_of(&c.next_json()), "Hello");
    }
    gw.wait_for_clients(6);
    let written: Vec<String> = ring
        .write_block(3, 3)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    for c in &mut clients {
        let mut last = 0;
        assert_eq!(collect_events(c, written.len(), &mut last), written);
    }
    assert_eq!(gw.stats().shards.len(), 2);
}

#[test]
fn graceful_shutdown_flushes_and_closes_every_client_with_1001() {
    let mut ring = TestRing::create("shutdown");
    let mut gw = start_gateway(test_config(&ring));
    let mut a = WsClient::connect(gw.addr, "/v1/ws");
    let mut b = WsClient::connect(gw.addr, "/v1/ws/blocks");
    assert_eq!(kind_of(&a.next_json()), "Hello");
    assert_eq!(kind_of(&b.next_json()), "Hello");
    gw.wait_for_clients(2);
    let n = ring.write_block(4, 2).len();
    // The chain bodies are published after the block's last frames were pushed; then the
    // shard has taken everything once its inbox count reaches the head.
    wait_until("the shard took every frame of the block", || {
        let hub = gw.stats();
        let head = hub
            .tailer
            .head_server_seqno
            .load(std::sync::atomic::Ordering::Relaxed);
        hub.chain.get().block(4).body.contains("gas_used") && hub.sum(|s| &s.inbox_frames) == head
    });
    gw.shutdown();
    let mut last = 0;
    assert_eq!(collect_events(&mut a, n, &mut last).len(), n);
    assert_eq!(a.expect_close(), Some(1001));
    assert_eq!(b.expect_close(), Some(1001));
}

#[test]
fn a_zst_snapshot_is_served_as_a_replay_from_its_first_event() {
    let mut ring = TestRing::create("snapshot");
    let n = ring.write_block(1, 2).len() + ring.write_block(2, 3).len();
    let snapshot = ring.path.with_extension("zst");
    let raw = std::fs::read(&ring.path).expect("read ring");
    std::fs::write(&snapshot, zstd::encode_all(&raw[..], 1).expect("compress")).expect("write");
    drop(ring);

    let server = ringgate::server::start(test_config_for(&snapshot)).expect("start");
    let hub = server.stats().clone();
    wait_until("the replay finished", || {
        hub.tailer.ring_state() == ringgate::metrics::RingState::ReplayDone
    });
    assert_eq!(hub.tailer.events_in_total(), n as u64);
    let status = RawClient::request(server.local_addr(), "GET /v1/status HTTP/1.1\r\n\r\n");
    assert!(status.contains("\"ring\":\"replay_done\""), "{status}");
    server.shutdown().expect("shutdown");
    let _ = std::fs::remove_file(&snapshot);
}
