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
