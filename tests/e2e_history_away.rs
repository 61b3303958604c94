//! A client away for a minute of a busy chain resumes exactly: the synthetic chain written at
//! up to 20,000 ring events/s (all `min_stage` gates on, so about five frames per event), one
//! client connected all along and one that leaves for `RINGGATE_AWAY_SECS` (default 60) and
//! comes back with its cursor. The one that was away gets `mode: "resume"`,
//! `recovered: true` and then exactly the events the other one got after its cursor, in the
//! same order: nothing lost, nothing twice. (Before the shared history, a client away 2 s at
//! this rate got `too_old` and lost most of what it missed.) The debug build on a loaded
//! 2-core machine may not keep up with 20,000/s (the tailer is then lapped: `ring_lapped`
//! Gaps, which both clients get alike); the test checks that far more frames passed than a
//! shard keeps, and docs/benchmarks.md has the release-build run at the full rate.

mod common;
mod resume_support;

use std::time::{Duration, Instant};

use common::*;
use resume_support::*;
use ringgate::config::defaults;
use ringgate::tools::synth::generator::{Generator, SynthOptions};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

const RATE: f64 = 20_000.0;
const SUBSCRIPTION: &str = "/v1/ws?events=BlockStart,TxnHeaderStart,BlockEnd";

fn away() -> Duration {
    let secs = std::env::var("RINGGATE_AWAY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Appends a data frame's content to `out`: each event object of an `Events` batch on its
/// own (batching differs between live and replay), any other frame whole. Returns the
/// frame's seqno, or `None` for a per-connection message.
fn flatten(v: &Value, out: &mut Vec<String>) -> Option<u64> {
    let kind = kind_of(v);
    assert_ne!(
        kind, "Warning",
        "a client fell behind and lost frames: {v:?}"
    );
    if PER_CONNECTION.contains(&kind.as_str()) {
        return None;
    }
    match v.get("Events").and_then(|e| e.as_array()) {
        Some(batch) => out.extend(batch.iter().map(|e| sonic_rs::to_string(e).expect("json"))),
        None => out.push(sonic_rs::to_string(v).expect("json")),
    }
    Some(seqno_of(v))
}

#[test]
fn a_client_away_a_minute_at_20k_events_per_second_resumes_exactly() {
    let mut ring = TestRing::create("away");
    let mut config = test_config(&ring);
    // The live client is the reference: on a loaded machine its shard must not drop frames
    // (it would get a shard_queue_full Gap the history does not have).
    config.spsc_capacity = 1 << 20;
    let gw = start_gateway(config);
    let away = away();
    let events = (RATE * (away.as_secs_f64() + 10.0)) as u64;
    let writer = std::thread::spawn(move || {
        let mut generator = Generator::new(SynthOptions::default());
        let last = ring.write_synth_paced(&mut generator, events, Some(RATE));
        (ring, last)
    });

    let mut reference = WsClient::connect(gw.addr, SUBSCRIPTION);
    let mut leaver = WsClient::connect(gw.addr, SUBSCRIPTION);
    let hello = leaver.next_json();
    // The leaver reads for two seconds, then leaves with its cursor.
    let mut cursor = seqno_of(&hello);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let v = leaver.next_json();
        cursor = flatten(&v, &mut Vec::new()).unwrap_or(cursor).max(cursor);
    }
    drop(leaver);
    let left_at = Instant::now();
    // The reference reads everything meanwhile; what follows the cursor is the truth.
    let mut expected = Vec::new();
    let mut last = 0;
    while left_at.elapsed() < away {
        let v = reference.next_json();
        let mut content = Vec::new();
        if let Some(s) = flatten(&v, &mut content) {
            last = s;
            if s > cursor {
                expected.extend(content);
            }
        }
    }
    assert!(
        last > cursor + defaults::RESUME_STORE_FRAMES as u64,
        "more frames passed than a shard keeps: {cursor} -> {last}"
    );

    let mut back = WsClient::connect(
        gw.addr,
        &format!("{SUBSCRIPTION}&resume_from={cursor}&epoch={}", epoch(&gw)),
    );
    let (_, r) = opening(&mut back, true);
    let r = r.expect("Resume");
    let b = body(&r, "Resume");
    assert_eq!(str_of(b, "mode"), Some("resume"), "{r:?}");
    assert_eq!(
        b.get("recovered").and_then(|v| v.as_bool()),
        Some(true),
        "{r:?}"
    );
    let mut replayed = Vec::new();
    let mut at = cursor;
    while at < last {
        let v = back.next_json();
        if let Some(s) = flatten(&v, &mut replayed) {
            assert!(s > at, "server_seqno went from {at} to {s}");
            at = s;
        }
    }
    replayed.truncate(expected.len());
    assert_eq!(
        replayed.len(),
        expected.len(),
        "as many events as the live client got"
    );
    if let Some(i) = (0..expected.len()).find(|&i| replayed[i] != expected[i]) {
        let cut = |s: &str| s.chars().take(400).collect::<String>();
        panic!(
            "the resumed stream differs at item {i}:\nresumed {}\nlive    {}",
            cut(&replayed[i]),
            cut(&expected[i])
        );
    }
    drop(back);
    drop(reference);
    let _ = writer.join();
}
