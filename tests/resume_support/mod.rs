//! Helpers for the resume end-to-end tests: reading a connection's data frames as
//! `(server_seqno, bytes)` items, the `Resume` / `Gap` bodies, waiting until every shard's
//! resume store holds everything the tailer stamped, and a tiny seeded RNG.
//!
//! With `Config::batch.max_events = 1` every event travels in its own `Events` frame, so an
//! item's `server_seqno` is the event's own and streams can be compared frame by frame.

#![allow(dead_code)]

use std::sync::atomic::Ordering;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::common::{kind_of, seqno_of, ServerFrame, TestGateway, WsClient};

/// Per-connection messages: they carry the session's cursor, not data.
pub const PER_CONNECTION: [&str; 5] = ["Hello", "Resume", "Subscribed", "Error", "Warning"];

/// One data frame: its `server_seqno` and its JSON text.
pub type Item = (u64, String);

/// The server epoch (the same number `Hello.epoch` announces).
pub fn epoch(gw: &TestGateway) -> u64 {
    gw.stats().epoch
}

/// Waits until the tailer has read the first `ring_events` ring events and every shard has
/// dispatched what it stamped (for gateways without a resume store).
pub fn settle_tailer(gw: &TestGateway, ring_events: u64) {
    crate::common::wait_until("the tailer read every event", || {
        let t = &gw.stats().tailer;
        let head = t.head_server_seqno.load(Ordering::Relaxed);
        t.head_ring_seqno.load(Ordering::Relaxed) >= ring_events
            && gw.stats().sum(|s| &s.inbox_frames) == head * gw.stats().shards.len() as u64
    });
}

/// Waits until the tailer has read the first `ring_events` ring events and every shard's
/// resume store holds the last frame it stamped; returns `(oldest, newest)` of shard 0's
/// store.
pub fn settle(gw: &TestGateway, ring_events: u64) -> (u64, u64) {
    crate::common::wait_until("every resume store holds the tailer's head", || {
        let t = &gw.stats().tailer;
        let head = t.head_server_seqno.load(Ordering::Relaxed);
        t.head_ring_seqno.load(Ordering::Relaxed) >= ring_events
            && gw
                .stats()
                .shards
                .iter()
                .all(|s| s.resume_newest_seqno.load(Ordering::Relaxed) == head)
    });
    let s = &gw.stats().shards[0];
    (
        s.resume_oldest_seqno.load(Ordering::Relaxed),
        s.resume_newest_seqno.load(Ordering::Relaxed),
    )
}

/// The body of a message of `kind` (panics with the frame when it is another kind).
pub fn body<'a>(v: &'a Value, kind: &str) -> &'a Value {
    assert_eq!(kind_of(v), kind, "{v:?}");
    v.get(kind).expect("message body")
}

/// A string field of a body.
pub fn str_of<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(|f| f.as_str())
}

/// A number field of a body.
pub fn u64_of(v: &Value, field: &str) -> Option<u64> {
    v.get(field).and_then(|f| f.as_u64())
}

/// Reads `Hello` and, when `resume` is set, `Resume`; returns their frames.
pub fn opening(c: &mut WsClient, resume: bool) -> (Value, Option<Value>) {
    let hello = c.next_json();
    assert_eq!(kind_of(&hello), "Hello", "{hello:?}");
    let r = resume.then(|| {
        let r = c.next_json();
        assert_eq!(kind_of(&r), "Resume", "{r:?}");
        assert_eq!(seqno_of(&r), seqno_of(&hello), "Resume carries the cursor");
        r
    });
    (hello, r)
}

/// Whether an `Events` item is the event `name` of block `number`.
pub fn is_event(item: &Item, name: &str, number: u64) -> bool {
    sonic_rs::from_str::<Value>(&item.1).is_ok_and(|v| {
        v.get("Events").and_then(|e| e.as_array()).is_some_and(|a| {
            a.iter().any(|e| {
                e.get("event_name").and_then(|n| n.as_str()) == Some(name)
                    && e.get("block_number").and_then(|n| n.as_u64()) == Some(number)
            })
        })
    })
}

/// Reads data frames until `done` holds for one (included) and returns them, checking
/// that their seqnos strictly increase from `after` and that per-connection messages
/// repeat the cursor. `Ok(items)`; the connection must stay open.
pub fn read_until(c: &mut WsClient, after: u64, mut done: impl FnMut(&Item) -> bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut last = after;
    loop {
        let v = match c.next() {
            ServerFrame::Json(v) => v,
            other => panic!("connection ended while reading: {other:?}"),
        };
        let s = seqno_of(&v);
        let kind = kind_of(&v);
        if PER_CONNECTION.contains(&kind.as_str()) {
            assert_eq!(s, last, "{kind} must carry the cursor");
            assert_ne!(kind, "Warning", "no frame may be dropped: {v:?}");
            continue;
        }
        assert!(s > last, "server_seqno went from {last} to {s}");
        last = s;
        let item = (s, sonic_rs::to_string(&v).expect("re-encode"));
        let stop = done(&item);
        items.push(item);
        if stop {
            return items;
        }
    }
}

/// Whether an item is a `Gap` frame with `reason`.
pub fn is_gap(item: &Item, reason: &str) -> bool {
    sonic_rs::from_str::<Value>(&item.1).is_ok_and(|v| {
        v.get("Gap")
            .and_then(|g| g.get("reason"))
            .and_then(|r| r.as_str())
            == Some(reason)
    })
}

/// `(from_seqno, to_seqno)` of a `Gap` item.
pub fn gap_range(item: &Item) -> (u64, u64) {
    let v: Value = sonic_rs::from_str(&item.1).expect("json");
    let g = v.get("Gap").expect("a Gap frame");
    (
        u64_of(g, "from_seqno").expect("from_seqno"),
        u64_of(g, "to_seqno").expect("to_seqno"),
    )
}

/// A small deterministic generator (xorshift64*), so random disconnect points are
/// reproducible from a seed.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (hi - lo + 1)
    }
}
