//! permessage-deflate over the real mainnet block: `ringgate write --replay` of the
//! emn-1b-15m snapshot into a real ring, `ringgate serve --compression on`, and two raw
//! socket clients resuming from the same cursor, one offering permessage-deflate and one not.
//! The compressed stream, each message inflated on its own (no context is taken over), must
//! carry exactly the uncompressed stream's data; the wire-size ratio is printed (the figure in
//! docs/benchmarks.md). A live client (no resume) reports the ratio of live-sized frames.
//! (The Python suite, clients/python/tests/test_deflate.py, checks the same with the
//! `websockets` library and zlib.)

mod common;
mod real_data;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RawClient, ServeProcess};
use ringgate::wire::ws::deflate::inflate;
use ringgate::wire::ws::frame_header_len;
use serde_json::Value;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// `ringgate write --replay` of the snapshot, killed on drop.
struct Replay(Child);

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a client read: every text frame's JSON, the bytes on the wire, and the bytes the
/// same frames take uncompressed.
#[derive(Default)]
struct Read {
    frames: Vec<Value>,
    all_compressed: bool,
    wire: usize,
    plain: usize,
}

/// Reads text frames until a data frame at or past `seqno` or `deadline`.
fn read_until(c: &mut RawClient, seqno: u64, deadline: Instant) -> Read {
    let mut r = Read {
        all_compressed: true,
        ..Read::default()
    };
    while Instant::now() < deadline {
        let (b0, payload) = c.read_raw_frame_bits().expect("a frame");
        assert_eq!(b0 & 0x30, 0, "RSV2/RSV3 never set");
        r.wire += frame_header_len(payload.len()) + payload.len();
        let text = if b0 & 0x40 != 0 {
            // From an empty window: no context is taken over between messages.
            inflate(&payload, 1 << 24).expect("each message inflates on its own")
        } else {
            r.all_compressed = false;
            payload
        };
        r.plain += frame_header_len(text.len()) + text.len();
        if b0 & 0x0f != 1 {
            continue;
        }
        let v: Value = serde_json::from_slice(&text).expect("JSON");
        let s = v["server_seqno"].as_u64().unwrap_or(0);
        let data = !data_items(std::slice::from_ref(&v)).is_empty();
        r.frames.push(v);
        if data && s >= seqno {
            return r;
        }
    }
    panic!("never reached server_seqno {seqno}");
}

/// The stream's data in order: each event of an `Events` frame, each meta frame whole.
fn data_items(frames: &[Value]) -> Vec<Value> {
    let per_connection = [
        "Hello",
        "Resume",
        "Subscribed",
        "Heartbeat",
        "Error",
        "Warning",
        "Shed",
    ];
    let mut out = Vec::new();
    for f in frames {
        if let Some(events) = f["Events"].as_array() {
            out.extend(events.iter().cloned());
        } else if !per_connection.iter().any(|k| f.get(k).is_some()) {
            out.push(f.clone());
        }
    }
    out
}

fn status(gw: &ServeProcess) -> Value {
    let (code, body) = gw.get("/v1/status", "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status JSON")
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn the_mainnet_block_compressed_decodes_to_the_uncompressed_stream() {
    let dir = std::env::temp_dir().join(format!("ringgate-deflate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ring = dir.join("ring");
    let _replay = Replay(
        Command::new(env!("CARGO_BIN_EXE_ringgate"))
            .args(["write", "--rate", "5000", "--replay"])
            .arg(real_data::snapshot())
            .arg("--ring")
            .arg(&ring)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ringgate write"),
    );
    common::wait_until("the ring file", || ring.exists());
    let gw = ServeProcess::start(&[
        "--ring".as_ref(),
        ring.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--no-pin".as_ref(),
        "--shards".as_ref(),
        "1".as_ref(),
        "--compression".as_ref(),
        "on".as_ref(),
        "--resume-frames".as_ref(),
        "1000000".as_ref(),
        // The clients are read one after the other: a queue that holds the whole test keeps
        // the waiting one from shedding (on a loaded host the live tail outruns it).
        "--session-queue".as_ref(),
        "1000000".as_ref(),
    ]);
    common::wait_until("a first frame", || {
        status(&gw)["server_seqno"].as_u64() > Some(0)
    });
    let st = status(&gw);
    let (start, epoch) = (
        st["server_seqno"].as_u64().unwrap(),
        st["epoch"].as_u64().unwrap(),
    );
    // Two passes over the block (6,597 events), replayed in full batches.
    let target = start + 2 * 6_597;
    common::wait_until("two passes of the block", || {
        status(&gw)["server_seqno"].as_u64() >= Some(target)
    });
    let path = format!("/v1/ws?extended=1&epoch={epoch}&resume_from={start}");
    let connect = || TcpStream::connect(gw.addr).expect("connect");
    let (mut z, z_head) = RawClient::upgraded_with(connect(), &path, OFFER);
    let (mut p, p_head) = RawClient::upgraded_with(connect(), &path, "");
    assert!(
        z_head.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n"
        ),
        "{z_head}"
    );
    assert!(!p_head.contains("Sec-WebSocket-Extensions"), "{p_head}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let zr = read_until(&mut z, target, deadline);
    let pr = read_until(&mut p, target, deadline);
    assert!(zr.all_compressed, "every message to the deflate client");
    assert_eq!(pr.wire, pr.plain, "nothing compressed for the plain client");
    let (zi, pi) = (data_items(&zr.frames), data_items(&pr.frames));
    let n = zi.len().min(pi.len());
    assert!(n >= 6_597, "{} and {} items", zi.len(), pi.len());
    assert!(zi[..n] == pi[..n], "the same data in the same order");
    let replay_ratio = zr.plain as f64 / zr.wire as f64;
    // Live frames: whatever a client connected at the head receives for a few seconds.
    let live_from = status(&gw)["server_seqno"].as_u64().unwrap_or(0);
    let (mut live, _) = RawClient::upgraded_with(connect(), "/v1/ws?extended=1", OFFER);
    let lr = read_until(
        &mut live,
        live_from + 5_000,
        Instant::now() + Duration::from_secs(60),
    );
    let live_ratio = lr.plain as f64 / lr.wire as f64;
    let live_events: usize = lr
        .frames
        .iter()
        .filter_map(|f| f["Events"].as_array().map(Vec::len))
        .sum();
    let live_event_frames = lr.frames.iter().filter(|f| f["Events"].is_array()).count();
    eprintln!(
        "deflate on emn-1b-15m: replay {replay_ratio:.2} ({} B as text frames, {} B on the \
         wire, {n} items); live at 5000 ev/s {live_ratio:.2} ({} B, {} B; {:.1} events per \
         Events frame)",
        zr.plain,
        zr.wire,
        lr.plain,
        lr.wire,
        live_events as f64 / live_event_frames.max(1) as f64
    );
    assert!(replay_ratio > 3.0, "{replay_ratio}");
    // The shard's counters saw the same compression.
    let (code, metrics) = gw.get("/metrics", "");
    assert_eq!(code, 200);
    let total = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (into, out) = (
        total("ringgate_deflate_bytes_in_total"),
        total("ringgate_deflate_bytes_out_total"),
    );
    assert!(
        total("ringgate_deflate_messages_total") > 0 && into > 3 * out,
        "{into} {out}"
    );
    assert!(lr.all_compressed && live_ratio > 1.0, "{live_ratio}");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
