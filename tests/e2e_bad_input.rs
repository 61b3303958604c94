//! Bad client input gets its documented outcome (HTTP status, close code or Error frame) and
//! never affects another client: a well-behaved client connected throughout still receives
//! every event written afterwards.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use ringgate::config::Config;
use ringgate::model::kind::EventType;
use sonic_rs::JsonValueTrait;

fn config(ring: &TestRing) -> Config {
    let mut c = test_config(ring);
    c.decoder_limits.max_message_bytes = 1024;
    c.subscription_limits.max_message_bytes = 1024;
    c.subscription_limits.max_names = 4;
    c.handshake_timeout = Duration::from_millis(300);
    c
}

/// A firehose client that is checked at the end of each test.
fn bystander(gw: &TestGateway) -> WsClient {
    let mut c = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&c.next_json()), "Hello");
    c
}

/// Writes one block and checks the bystander receives all of it.
fn bystander_still_served(ring: &mut TestRing, c: &mut WsClient) {
    let written: Vec<String> = ring
        .write_block(7, 3)
        .iter()
        .map(|t: &EventType| t.name().to_string())
        .collect();
    let mut last = 0;
    assert_eq!(collect_events(c, written.len(), &mut last), written);
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[test]
fn bad_http_requests_get_their_status_and_others_are_unaffected() {
    let mut ring = TestRing::create("badhttp");
    let gw = start_gateway(config(&ring));
    let mut ok = bystander(&gw);
    gw.wait_for_clients(1);

    let plain = RawClient::request(gw.addr, "GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(status_line(&plain).contains(" 426 "), "{plain}");

    let no_key = RawClient::request(
        gw.addr,
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(status_line(&no_key).contains(" 400 "), "{no_key}");

    let version = RawClient::request(
        gw.addr,
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert!(status_line(&version).contains(" 426 "), "{version}");

    let missing = RawClient::request(gw.addr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(status_line(&missing).contains(" 404 "), "{missing}");

    let garbage = RawClient::request(gw.addr, "\x16\x03\x01garbage\r\n\r\n");
    assert!(status_line(&garbage).contains(" 400 "), "{garbage}");

    bystander_still_served(&mut ring, &mut ok);
}

#[test]
fn a_connection_that_never_sends_a_request_is_closed_after_the_handshake_timeout() {
    let mut ring = TestRing::create("silent");
    let gw = start_gateway(config(&ring));
    let mut ok = bystander(&gw);
    gw.wait_for_clients(1);

    let mut silent = RawClient::connect(gw.addr);
    let mut buf = Vec::new();
    // The server closes without a response; read_to_end returns at EOF (the test's own read
    // timeout is far longer than the configured 300 ms).
    let n = silent
        .stream
        .read_to_end(&mut buf)
        .expect("EOF, not a timeout");
    assert_eq!(n, 0);
    wait_until("the timeout is counted", || {
        gw.stats().sum(|s| &s.handshake_timeouts) == 1
    });
    bystander_still_served(&mut ring, &mut ok);
}

/// Upgrades, sends `bytes`, and returns the close code the server answers with.
fn close_code_for(gw: &TestGateway, bytes: &[u8]) -> Option<u16> {
    let mut raw = RawClient::upgraded(gw.addr, "/v1/ws");
    raw.send(bytes);
    let mut ws = raw.into_ws();
    ws.expect_close()
}

#[test]
fn websocket_protocol_violations_close_with_their_codes_and_others_are_unaffected() {
    let mut ring = TestRing::create("badws");
    let gw = start_gateway(config(&ring));
    let mut ok = bystander(&gw);
    gw.wait_for_clients(1);

    let unmasked = RawClient::frame(0x1, br#"{"subscribe":["BlockStart"]}"#, false);
    assert_eq!(close_code_for(&gw, &unmasked), Some(1002));

    let oversized = RawClient::frame(0x1, &vec![b'x'; 4096], true);
    assert_eq!(close_code_for(&gw, &oversized), Some(1009));

    let not_utf8 = RawClient::frame(0x1, &[0xff, 0xfe, 0xfd], true);
    assert_eq!(close_code_for(&gw, &not_utf8), Some(1007));

    let binary = RawClient::frame(0x2, b"\x00\x01", true);
    assert_eq!(close_code_for(&gw, &binary), Some(1003));

    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.extend(RawClient::frame(0x9, b"p", true));
    }
    assert_eq!(close_code_for(&gw, &flood), Some(1008));

    bystander_still_served(&mut ring, &mut ok);
}

fn error_code(v: &sonic_rs::Value) -> String {
    v.get("Error")
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn bad_subscriptions_get_error_frames_and_the_connection_stays_usable() {
    let mut ring = TestRing::create("badsub");
    let gw = start_gateway(config(&ring));
    let mut ok = bystander(&gw);
    let mut c = WsClient::connect(gw.addr, "/v1/ws");
    assert_eq!(kind_of(&c.next_json()), "Hello");
    gw.wait_for_clients(2);

    c.send_text("{not json");
    assert_eq!(error_code(&c.next_of("Error")), "invalid_json");
    c.send_text(r#"{"subscribe":["BlockStartt"]}"#);
    assert_eq!(error_code(&c.next_of("Error")), "unknown_event");
    c.send_text(r#"{"subscribe":["BlockStart","BlockEnd","TxnLog","TxnEnd","TxnHeaderStart"]}"#);
    assert_eq!(error_code(&c.next_of("Error")), "too_many_names");
    let mut lifecycle = WsClient::connect(gw.addr, "/v1/ws/lifecycle");
    assert_eq!(kind_of(&lifecycle.next_json()), "Hello");
    lifecycle.send_text(r#"{"subscribe":["TxnLog"]}"#);
    assert_eq!(
        error_code(&lifecycle.next_of("Error")),
        "not_allowed_on_channel"
    );

    // Still open, and a valid subscribe now applies.
    c.send_text(r#"{"subscribe":["BlockEnd"]}"#);
    assert_eq!(kind_of(&c.next_json()), "Subscribed");
    ring.write_block(9, 2);
    let mut last = 0;
    assert_eq!(collect_events(&mut c, 1, &mut last), vec!["BlockEnd"]);
    let mut last = 0;
    assert_eq!(collect_events(&mut ok, 8, &mut last).len(), 8);
    assert!(gw.stats().sum(|s| &s.error_frames) >= 4);
}

#[test]
fn the_server_pings_and_closes_a_client_that_never_answers_with_1008() {
    let mut ring = TestRing::create("heartbeat");
    let mut c = config(&ring);
    c.ping_interval = Duration::from_millis(100);
    c.pong_timeout = Duration::from_millis(400);
    let gw = start_gateway(c);
    let mut silent = RawClient::upgraded(gw.addr, "/v1/ws");
    let (mut pings, mut close) = (0, None);
    while let Some((opcode, payload)) = silent.read_raw_frame() {
        match opcode {
            0x9 => pings += 1,
            0x8 => {
                close = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                break;
            }
            _ => {}
        }
    }
    assert!(pings >= 1, "no server ping before the timeout");
    assert_eq!(close, Some(1008));
    // A client that answers pings (tungstenite does, while reading) is still served.
    let mut ok = bystander(&gw);
    bystander_still_served(&mut ring, &mut ok);
}

#[test]
fn connections_past_the_per_ip_limit_get_429_and_admitted_ones_are_unaffected() {
    let mut ring = TestRing::create("perip");
    let mut c = config(&ring);
    c.connection_limits.max_per_ip = 2;
    let gw = start_gateway(c);
    let mut first = bystander(&gw);
    let mut second = bystander(&gw);
    gw.wait_for_clients(2);
    let refused = RawClient::request(
        gw.addr,
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(status_line(&refused).contains(" 429 "), "{refused}");
    let written: Vec<String> = ring
        .write_block(3, 1)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    for c in [&mut first, &mut second] {
        let mut last = 0;
        assert_eq!(collect_events(c, written.len(), &mut last), written);
    }
}
