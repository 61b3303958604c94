//! The server's close frame reaches a client that is reading, whatever the client is still
//! sending: a connection is never torn down with a reset that destroys the close frame.
//!
//! Found in the soak ("Soak and faults", item 2): during churn, connections were closed by the
//! server without a close frame while the client was reading. The session stopped reading a
//! closing client after 4 KiB (or at the close linger) and dropped the socket with its input
//! unread; the kernel then resets the connection instead of closing it, and the reset
//! discards everything it had not transmitted yet: for a client behind on reading, its last
//! frames and the close frame. The tests make the client be behind (a small receive buffer,
//! a backlog of frames queued in the server's kernel buffer) and read only once the server
//! is done with the connection, so a reset cannot be outrun.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use ringgate::model::kind::EventType;
use sonic_rs::JsonValueTrait;

/// A masked text frame header announcing `len` payload bytes (64-bit length form), with the
/// mask key `RawClient::frame` uses.
fn text_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x81, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

/// Reads server frames until the close frame: (frames before it, its code), or `None` for
/// the code when the connection ended (EOF or reset) without one.
fn read_to_close(raw: &mut RawClient) -> (usize, Option<u16>) {
    let mut frames = 0;
    while let Some((opcode, payload)) = raw.read_raw_frame() {
        if opcode == 0x8 {
            return (
                frames,
                payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
            );
        }
        frames += 1;
    }
    (frames, None)
}

/// A gateway whose socket buffer takes a whole backlog at once, and a firehose client with a
/// tiny receive buffer that has not read a backlog of 300 events: they wait in the server's
/// kernel buffer, behind the client's full receive window.
fn client_behind_on_reading(tag: &str) -> (TestRing, TestGateway, RawClient) {
    let mut ring = TestRing::create(tag);
    let mut config = test_config(&ring);
    config.socket_send_buffer = Some(1 << 20);
    let gw = start_gateway(config);
    let raw = RawClient::upgraded_over(connect_small_receive_buffer(gw.addr), "/v1/ws");
    gw.wait_for_clients(1);
    let mut written = 0;
    for _ in 0..300 {
        written = ring.write_raw(EventType::TxnEnd.code(), &[]);
    }
    wait_until("the shard received every frame", || {
        let t = &gw.stats().tailer;
        t.head_ring_seqno.load(Ordering::Relaxed) >= written
            && gw.stats().sum(|s| &s.inbox_frames) == t.head_server_seqno.load(Ordering::Relaxed)
    });
    (ring, gw, raw)
}

/// Waits until the server has let go of every connection (its socket is closed).
fn server_done(gw: &TestGateway) {
    wait_until("the server closed the connection", || {
        gw.stats().sum(|s| &s.connections_open) == 0
    });
}

#[test]
fn a_client_behind_on_reading_gets_the_1009_close_frame_of_its_oversized_message() {
    let (_ring, gw, mut raw) = client_behind_on_reading("close1009");
    // 70 KB, over the default 64 KiB message limit: answered 1009 from the header, while the
    // body is still arriving.
    let body_len = 70_000usize;
    raw.send(&text_header(body_len as u64));
    for chunk in vec![b'x' ^ 1; body_len].chunks(4096) {
        raw.send(chunk);
    }
    server_done(&gw);
    let (frames, code) = read_to_close(&mut raw);
    assert_eq!(
        code,
        Some(1009),
        "close frame after {frames} frames, not a reset"
    );
    assert!(frames > 1, "the queued frames came first");
}

#[test]
fn a_client_that_sends_garbage_after_its_close_still_gets_the_close_reply() {
    let (_ring, gw, mut raw) = client_behind_on_reading("closegarbage");
    raw.send(&RawClient::frame(0x8, &1000u16.to_be_bytes(), true));
    raw.send(&vec![0xa5; 64 * 1024]);
    server_done(&gw);
    let (frames, code) = read_to_close(&mut raw);
    assert_eq!(
        code,
        Some(1000),
        "close reply after {frames} frames, not a reset"
    );
}

#[test]
fn a_reading_client_gets_1009_while_it_is_still_sending_the_body() {
    let ring = TestRing::create("close1009reading");
    let gw = start_gateway(test_config(&ring));
    let mut raw = RawClient::upgraded(gw.addr, "/v1/ws");
    let body_len = 70_000usize;
    raw.send(&text_header(body_len as u64));
    for chunk in vec![b'x' ^ 1; body_len].chunks(4096) {
        raw.send(chunk);
    }
    assert_eq!(read_to_close(&mut raw).1, Some(1009));
    gw.wait_for_clients(0);
}

/// A gateway that makes a client stall quickly (4 KiB socket buffers, a 64-frame session
/// queue), a firehose client that does not read, and enough blocks that its writer is stuck
/// in a write (its queue overflowed at least once).
fn client_stuck_mid_write(
    tag: &str,
    adjust: impl FnOnce(&mut ringgate::config::Config),
) -> (TestRing, TestGateway, RawClient) {
    let mut ring = TestRing::create(tag);
    let mut config = test_config(&ring);
    config.shards = Some(1);
    config.session_queue_frames = 64;
    config.drop_warning_every = 100;
    config.drop_disconnect_after = 1_000_000;
    config.socket_send_buffer = Some(4 * 1024);
    adjust(&mut config);
    let gw = start_gateway(config);
    let raw = RawClient::upgraded_over(connect_small_receive_buffer(gw.addr), "/v1/ws");
    gw.wait_for_clients(1);
    let mut number = 1;
    while gw.stats().sum(|s| &s.drops) == 0 {
        ring.write_block(number, 40);
        number += 1;
        assert!(number < 500, "the client never fell behind");
        let head = ring.next_seqno() - 1;
        wait_until("the tailer read the block", || {
            gw.stats().tailer.head_ring_seqno.load(Ordering::Relaxed) >= head
        });
    }
    (ring, gw, raw)
}

/// Reads every frame up to the close frame: (the JSON of each data frame, the close code
/// and reason), or `None` when the connection ended (EOF or reset) without a close frame.
fn read_all_to_close(raw: &mut RawClient) -> (Vec<sonic_rs::Value>, Option<(u16, String)>) {
    let mut frames = Vec::new();
    while let Some((opcode, payload)) = raw.read_raw_frame() {
        match opcode {
            0x8 => {
                let code = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                return (frames, code.map(|c| (c, reason.into_owned())));
            }
            0x1 => frames.push(sonic_rs::from_slice(&payload).expect("server JSON")),
            _ => {}
        }
    }
    (frames, None)
}

#[test]
fn a_client_dropped_for_being_slow_reads_its_data_a_final_warning_then_1008() {
    // Issue 10 item 5: a client that stops reading until it is dropped, then reads again,
    // gets what was in flight, a Warning naming what it will not get, and the 1008 close
    // frame with its reason (the socket used to be shut down at once: EOF, 1006).
    let (mut ring, gw, mut raw) = client_stuck_mid_write("slowclose", |c| {
        c.drop_disconnect_after = 300;
    });
    let mut number = 1_000;
    while gw.stats().sum(|s| &s.slow_disconnects) == 0 {
        ring.write_block(number, 40);
        number += 1;
        assert!(number < 1_500, "the slow client was never disconnected");
        let head = ring.next_seqno() - 1;
        wait_until("the tailer read the block", || {
            gw.stats().tailer.head_ring_seqno.load(Ordering::Relaxed) >= head
        });
    }
    let (frames, close) = read_all_to_close(&mut raw);
    let (code, reason) = close.expect("a close frame, not EOF or a reset");
    assert_eq!(code, 1008);
    assert!(reason.starts_with("slow client: "), "reason {reason:?}");
    assert_eq!(kind_of(&frames[0]), "Hello");
    let mut last = 0;
    for f in &frames[1..] {
        let s = seqno_of(f);
        assert!(s >= last, "server_seqno went from {last} to {s}");
        last = s;
    }
    let final_warning = frames.last().expect("frames");
    assert_eq!(
        kind_of(final_warning),
        "Warning",
        "the last frame before the close"
    );
    let w = &final_warning["Warning"];
    let to = w["dropped_to_seqno"].as_u64().expect("dropped_to_seqno");
    let from = w["dropped_from_seqno"]
        .as_u64()
        .expect("dropped_from_seqno");
    assert!(
        from > seqno_of(final_warning),
        "the lost range starts after the cursor"
    );
    assert!(to >= from);
    assert!(w["total_dropped"].as_u64().expect("total_dropped") >= 300);
    gw.wait_for_clients(0);
}

#[test]
fn a_ping_flood_from_a_client_that_does_not_read_still_gets_its_1008_close_frame() {
    // The close used to abort the socket when the writer was mid-write (the client is not
    // reading), so the flooder saw a reset, never the close frame.
    let (_ring, gw, mut raw) = client_stuck_mid_write("pingflood", |_| {});
    for _ in 0..200 {
        raw.send(&RawClient::frame(0x9, b"p", true));
    }
    wait_until("the flood is answered", || {
        gw.stats().sum(|s| &s.protocol_closes) == 1
    });
    let (_, close) = read_all_to_close(&mut raw);
    assert_eq!(close.map(|(code, _)| code), Some(1008));
    gw.wait_for_clients(0);
}

#[test]
fn a_heartbeat_timeout_while_the_client_does_not_read_still_sends_the_close_frame() {
    let (_ring, gw, mut raw) = client_stuck_mid_write("heartbeatstuck", |c| {
        c.ping_interval = std::time::Duration::from_millis(300);
        c.pong_timeout = std::time::Duration::from_millis(1_500);
    });
    wait_until("the heartbeat times out", || {
        gw.stats().sum(|s| &s.protocol_closes) == 1
    });
    let (_, close) = read_all_to_close(&mut raw);
    assert_eq!(
        close,
        Some((1008, "heartbeat timeout: no pong".to_string()))
    );
}
