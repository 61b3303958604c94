//! The chain stage through the real gateway: `min_stage` streams over forks and rejected
//! blocks, the chain REST endpoints, the startup backlog and loss announcements.
//!
//! Blocks are hand-built in a real ring (tests/common `TestRing`) with chosen block ids, so
//! forks (two proposals at one height) and rejections are deterministic.

mod real_data;

mod common;

use std::sync::atomic::Ordering;

use common::*;
use ringgate::ingest::event::payload::layout as pl;
use ringgate::model::kind::EventType;
use ringgate::tools::synth::generator::{Generator, SynthOptions};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Ring seqnos of one written block, BLOCK_START first.
struct Written {
    seqnos: Vec<u64>,
}

/// BLOCK_START (id `[id; 32]`, `number`), `txns` × (header, log, end); BLOCK_END unless
/// `end` is false. Returns the ring seqnos.
fn block(ring: &mut TestRing, id: u8, number: u64, txns: u32, end: bool) -> Written {
    let mut start = vec![0u8; pl::BLOCK_START];
    start[pl::block_start::ID..pl::block_start::ID + 32].copy_from_slice(&[id; 32]);
    start[pl::block_start::NUMBER..pl::block_start::NUMBER + 8]
        .copy_from_slice(&number.to_le_bytes());
    start[pl::block_start::TXN_COUNT..pl::block_start::TXN_COUNT + 8]
        .copy_from_slice(&u64::from(txns).to_le_bytes());
    // As the real writer: BLOCK_START's flow tag names its own seqno.
    let next = ring.next_seqno();
    let bs = ring.write(EventType::BlockStart, [next, 0, 0, 0], &start);
    let mut seqnos = vec![bs];
    for i in 0..u64::from(txns) {
        let ext = [bs, i + 1, 0, 0];
        seqnos.push(ring.write(EventType::TxnHeaderStart, ext, &[0u8; pl::TXN_HEADER_START]));
        seqnos.push(ring.write(EventType::TxnLog, ext, &[0u8; pl::TXN_LOG]));
        seqnos.push(ring.write(EventType::TxnEnd, ext, &[]));
    }
    if end {
        seqnos.push(ring.write(EventType::BlockEnd, [bs, 0, 0, 0], &[0u8; pl::BLOCK_END]));
    }
    Written { seqnos }
}

fn reject(ring: &mut TestRing, bs: u64) -> u64 {
    ring.write(EventType::BlockReject, [bs, 0, 0, 0], &[1, 0, 0, 0])
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn get(gw: &TestGateway, path: &str) -> String {
    RawClient::request(gw.addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

fn events(v: &Value) -> Vec<Value> {
    v.get("Events")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default()
}

fn name(e: &Value) -> &str {
    e.get("event_name").and_then(|n| n.as_str()).unwrap_or("")
}

fn ring_seqno(e: &Value) -> u64 {
    e.get("seqno").and_then(|n| n.as_u64()).unwrap_or(0)
}

/// Reads a gated stream until the BLOCK_START of block `sentinel_number`; returns the block
/// events before it (consensus events, delivered live at every gate, are left out), checking
/// that frame seqnos increase.
fn gated_until(client: &mut WsClient, sentinel_number: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut last = 0;
    loop {
        let v = client.next_json();
        if v.get("Events").is_none() {
            continue;
        }
        let s = seqno_of(&v);
        assert!(s > last, "server_seqno went from {last} to {s}");
        last = s;
        for e in events(&v) {
            if name(&e) == "BlockStart"
                && e.get("block_number").and_then(|n| n.as_u64()) == Some(sentinel_number)
            {
                return out;
            }
            if !matches!(name(&e), "BlockQC" | "BlockFinalized" | "BlockVerified") {
                out.push(e);
            }
        }
    }
}

#[test]
fn min_stage_streams_carry_exactly_the_finalized_proposal_never_forks_or_rejects() {
    let mut ring = TestRing::create("forks");
    let gw = start_gateway(test_config(&ring));
    let mut by_query = WsClient::connect(gw.addr, "/v1/ws?min_stage=Finalized");
    let mut by_message = WsClient::connect(gw.addr, "/v1/ws");
    by_message.next_of("Hello");
    by_message.send_text(
        r#"{"subscribe":{"events":["BlockStart","BlockEnd","BlockQC","BlockFinalized","BlockReject","TxnHeaderStart","TxnLog","TxnEnd"],"min_stage":"Finalized"}}"#,
    );
    let sub = by_message.next_of("Subscribed");
    assert_eq!(sub["Subscribed"]["min_stage"].as_str(), Some("Finalized"));
    let mut voted = WsClient::connect(gw.addr, "/v1/ws?min_stage=Voted");
    let mut live = WsClient::connect(gw.addr, "/v1/ws");
    gw.wait_for_clients(4);

    let winner = block(&mut ring, 1, 10, 2, true);
    let fork = block(&mut ring, 2, 10, 3, true);
    ring.write_qc(1, 10);
    ring.write_finalized(1, 10);
    let rejected = block(&mut ring, 3, 11, 1, false);
    reject(&mut ring, rejected.seqnos[0]);
    // Sentinel: a later block that reaches Finalized ends each gated read.
    block(&mut ring, 4, 12, 1, true);
    ring.write_qc(4, 12);
    ring.write_finalized(4, 12);

    // The Proposed stream has every event of both proposals, stage "Proposed".
    let proposed = gated_until(&mut live, 12);
    let proposed_winner: Vec<u64> = proposed
        .iter()
        .map(ring_seqno)
        .filter(|s| winner.seqnos.contains(s))
        .collect();
    assert_eq!(proposed_winner, winner.seqnos);
    assert!(proposed
        .iter()
        .any(|e| fork.seqnos.contains(&ring_seqno(e))));

    for client in [&mut by_query, &mut by_message] {
        let got = gated_until(client, 12);
        let seqnos: Vec<u64> = got.iter().map(ring_seqno).collect();
        assert_eq!(
            seqnos, winner.seqnos,
            "exactly the finalized block, in order"
        );
        for e in &got {
            assert_eq!(e["commit_stage"].as_str(), Some("Finalized"), "{e:?}");
            assert_eq!(e["block_number"].as_u64(), Some(10));
        }
    }
    // Voted: the winner (it got a QC), never the abandoned fork nor the rejected block.
    let got = gated_until(&mut voted, 12);
    let seqnos: Vec<u64> = got.iter().map(ring_seqno).collect();
    assert_eq!(seqnos, winner.seqnos);
    assert!(got
        .iter()
        .all(|e| e["commit_stage"].as_str() == Some("Voted")));
    assert!(!seqnos.iter().any(|s| rejected.seqnos.contains(s)));
}

#[test]
fn chain_rest_endpoints_answer_tps_contention_and_lifecycle_over_http() {
    let mut ring = TestRing::create("chain-rest");
    let gw = start_gateway(test_config(&ring));
    let contention = get(&gw, "/v1/contention");
    assert!(contention.starts_with("HTTP/1.1 404 "), "{contention}");
    assert_eq!(body(&contention), r#"{"error":"no contention data yet"}"#);

    block(&mut ring, 1, 10, 2, true);
    ring.write_qc(1, 10);
    ring.write_finalized(1, 10);
    block(&mut ring, 2, 11, 1, true);
    wait_until("both blocks are tracked", || {
        body(&get(&gw, "/v1/blocks/lifecycle"))
            .matches("block_number")
            .count()
            == 2
    });

    let list: Value = sonic_rs::from_str(body(&get(&gw, "/v1/blocks/lifecycle"))).expect("json");
    let numbers: Vec<u64> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["block_number"].as_u64())
        .collect();
    assert!(
        numbers.contains(&10) && numbers.contains(&11),
        "{numbers:?}"
    );

    let one = get(&gw, "/v1/blocks/10/lifecycle");
    assert!(one.starts_with("HTTP/1.1 200 "), "{one}");
    let v: Value = sonic_rs::from_str(body(&one)).expect("json");
    assert_eq!(v["current_stage"].as_str(), Some("Finalized"));
    assert_eq!(v["txn_count"].as_u64(), Some(2));
    assert_eq!(
        v["block_hash"].as_str(),
        Some(&*format!("0x{}", "01".repeat(32)))
    );

    let missing = get(&gw, "/v1/blocks/999/lifecycle");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    assert_eq!(body(&missing), r#"{"error":"block not found"}"#);
    let bad = get(&gw, "/v1/blocks/ten/lifecycle");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");

    let tps: Value = sonic_rs::from_str(body(&get(&gw, "/v1/tps"))).expect("json");
    assert!(tps["tps"].as_u64().is_some());
    assert_eq!(tps["finalized_blocks"].as_u64(), Some(1));
    assert_eq!(tps["finalized_txns"].as_u64(), Some(2));
    assert_eq!(tps["last_block_number"].as_u64(), Some(10));

    let contention = get(&gw, "/v1/contention");
    assert!(contention.starts_with("HTTP/1.1 200 "), "{contention}");
    let c: Value = sonic_rs::from_str(body(&contention)).expect("json");
    assert!(c["block_number"].as_u64().is_some(), "{c:?}");

    let metrics = get(&gw, "/metrics");
    assert!(
        metrics.contains("ringgate_lifecycle_transitions_total{stage=\"Finalized\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("ringgate_lifecycle_transitions_total{stage=\"Proposed\"} 2\n"));
}

#[test]
fn a_restarted_gateway_loads_the_complete_blocks_still_in_the_ring() {
    let mut ring = TestRing::create("backlog");
    let mut written = 0;
    for n in 0..5u8 {
        written += block(&mut ring, n + 1, 100 + u64::from(n), 2, true)
            .seqnos
            .len();
        written += 2;
        ring.write_qc(n + 1, 100 + u64::from(n));
        ring.write_finalized(n + 1, 100 + u64::from(n));
    }
    let gw = start_gateway(test_config(&ring));
    let status = || -> Value { sonic_rs::from_str(body(&get(&gw, "/v1/status"))).expect("json") };
    wait_until("the backlog is loaded and published", || {
        let s = status();
        s["backlog_events"].as_u64() == Some(written as u64)
            && s["newest_block"].as_u64() == Some(104)
    });
    let status = status();
    assert_eq!(status["backlog_events"].as_u64(), Some(written as u64));
    assert_eq!(status["oldest_resumable_seqno"].as_u64(), Some(1));
    assert_eq!(status["oldest_block"].as_u64(), Some(100));
    assert_eq!(status["newest_block"].as_u64(), Some(104));
    assert_eq!(status["epoch"].as_u64(), Some(gw.stats().epoch));
    wait_until("all five blocks are listed", || {
        body(&get(&gw, "/v1/blocks/lifecycle"))
            .matches("\"current_stage\":\"Finalized\"")
            .count()
            == 5
    });
    let b: Value = sonic_rs::from_str(body(&get(&gw, "/v1/blocks/100/lifecycle"))).expect("json");
    assert_eq!(b["current_stage"].as_str(), Some("Finalized"));

    // Live data after the backlog still flows to a new client.
    let mut c = WsClient::connect(gw.addr, "/v1/ws/blocks");
    gw.wait_for_clients(1);
    block(&mut ring, 9, 200, 1, true);
    let v = c.next_of("Events");
    assert_eq!(event_names(&v)[0], "BlockStart");
}

#[test]
fn a_writer_restart_mid_block_is_a_gap_naming_the_block_and_serving_continues() {
    let mut ring = TestRing::create("restart-mid-block");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws");
    gw.wait_for_clients(1);
    let partial = block(&mut ring, 7, 20, 2, false);
    wait_until("the partial block was read", || {
        gw.stats().tailer.events_in_total() == partial.seqnos.len() as u64
    });
    ring.restart_writer();
    let gap = c.next_of("Gap");
    let g = &gap["Gap"];
    assert_eq!(g["reason"].as_str(), Some("writer_restart"));
    assert_eq!(g["block_number"].as_u64(), Some(20));
    assert_eq!(
        g["block_id"].as_str(),
        Some(&*format!("0x{}", "07".repeat(32)))
    );
    // The held originals of the cut block are named: gated streams will not get them.
    let (from, to) = (g["from_seqno"].as_u64(), g["to_seqno"].as_u64());
    assert!(from.is_some() && to >= from, "{g:?}");

    block(&mut ring, 8, 21, 1, true);
    let mut names = Vec::new();
    while names.len() < 5 {
        names.extend(event_names(&c.next_of("Events")));
    }
    assert_eq!(names[0], "BlockStart");
    assert_eq!(names.last().map(String::as_str), Some("BlockEnd"));

    // Every write of live events is one ring → send latency sample (the test ring's clock is
    // years old, so they land in the stale count).
    let sampled = |m: &str, name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_until("latency samples are counted", || {
        let m = get(&gw, "/metrics");
        sampled(&m, "ringgate_ring_to_send_seconds_count ")
            + sampled(&m, "ringgate_ring_to_send_stale_total ")
            > 0
    });
    let m = get(&gw, "/metrics");
    assert!(
        m.contains("ringgate_gaps_total{reason=\"writer_restart\"} 1\n"),
        "{m}"
    );
}

/// Soak regression (issue "Soak and faults", item 4): after a node restart whose new writer
/// re-executes blocks the gateway had already seen, ingest fell to about half the writer's
/// rate. A re-executed block is final from its BLOCK_START, so every later event of it is
/// released to the gated streams at once, which empties the release queue after every ring
/// event; the tailer re-encoded every chain REST body each time the queue emptied, i.e. per
/// ring event instead of a few times per block. Counted, not timed.
#[test]
fn a_writer_restart_that_re_executes_known_blocks_re_encodes_rest_bodies_per_block_not_per_event() {
    let mut ring = TestRing::create("restart-reexec");
    let gw = start_gateway(test_config(&ring));
    let opts = SynthOptions {
        txns_per_block: 20,
        ..SynthOptions::default()
    };
    let events = 6_000;
    let read_all = |gw: &TestGateway, last: u64| {
        wait_until("the tailer read every event", || {
            gw.stats().tailer.head_ring_seqno.load(Ordering::Relaxed) >= last
        })
    };
    let mut first = Generator::new(opts);
    let last = ring.write_synth(&mut first, events);
    read_all(&gw, last);
    let heights = first.stats().heights;
    assert!(heights >= 10, "{heights} heights");

    ring.restart_writer();
    wait_until("the tailer followed the new writer", || {
        gw.stats().tailer.writer_restarts.load(Ordering::Relaxed) == 1
    });
    let before = gw.stats().chain.publications();
    // The node re-executes from the start: the same blocks (ids, numbers) again.
    let mut again = Generator::new(opts);
    let last = ring.write_synth(&mut again, events);
    read_all(&gw, last);
    let publications = gw.stats().chain.publications() - before;
    assert!(
        publications <= 10 * heights,
        "{publications} REST re-encodes for {heights} re-executed heights ({events} events)"
    );
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn the_real_snapshot_replays_block_15000001_lifecycle_to_a_lifecycle_client() {
    let data = real_data::snapshot();
    // The gateway waits for the snapshot path to appear, so the client can subscribe first.
    let path = ringgate::ingest::ring::scratch_dir().join(format!(
        "ringgate-test-real-snapshot-{}.zst",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let server = ringgate::server::start(test_config_for(&path)).expect("start");
    let gw = TestGateway {
        addr: server.local_addr(),
        server: Some(server),
    };
    let mut c = WsClient::connect(gw.addr, "/v1/ws/lifecycle");
    gw.wait_for_clients(1);
    std::os::unix::fs::symlink(&data, &path).expect("link the snapshot into place");

    let mut stages = Vec::new();
    let mut last = 0;
    while stages.last().map(String::as_str) != Some("Finalized") {
        let v = c.next_json();
        assert!(
            v.get("Events").is_none(),
            "raw events on the lifecycle channel: {v:?}"
        );
        if v.get("Hello").is_some() || v.get("Resume").is_some() {
            continue;
        }
        let s = seqno_of(&v);
        assert!(s > last, "server_seqno went from {last} to {s}");
        last = s;
        let Some(l) = v.get("Lifecycle") else {
            continue;
        };
        if l["block_number"].as_u64() != Some(15_000_001) {
            continue;
        }
        let to = l["to_stage"].as_str().unwrap_or("").to_owned();
        assert_eq!(l["txn_count"].as_u64(), Some(229), "{l:?}");
        if to != "Proposed" {
            assert_eq!(l["gas_used"].as_u64(), Some(22_516_578), "{l:?}");
        }
        stages.push(to);
    }
    assert_eq!(stages, ["Proposed", "Voted", "Finalized"]);
    wait_until("the replay finished", || {
        gw.stats().tailer.ring_state() == ringgate::metrics::RingState::ReplayDone
    });
    assert_eq!(gw.stats().tailer.events_in_total(), 6_597);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_new_client_gets_the_connect_snapshot_its_channel_selects() {
    let mut ring = TestRing::create("connect-snapshot");
    let gw = start_gateway(test_config(&ring));
    block(&mut ring, 1, 10, 2, true);
    ring.write_qc(1, 10);
    block(&mut ring, 2, 11, 1, true);
    wait_until("both blocks are tracked", || {
        // gas_used appears at BLOCK_END, after which the contention report is published.
        body(&get(&gw, "/v1/blocks/11/lifecycle")).contains("\"gas_used\"")
            && body(&get(&gw, "/v1/blocks/10/lifecycle")).contains("\"current_stage\":\"Voted\"")
    });

    let mut c = WsClient::connect(gw.addr, "/v1/ws/lifecycle");
    let hello = c.next_of("Hello");
    let cursor = seqno_of(&hello);
    let mut stages = Vec::new();
    for _ in 0..2 {
        let v = c.next_json();
        assert_eq!(
            seqno_of(&v),
            cursor,
            "snapshot frames carry the cursor: {v:?}"
        );
        let l = &v["Lifecycle"];
        assert!(l.get("from_stage").is_none());
        stages.push((
            l["block_number"].as_u64().unwrap_or(0),
            l["to_stage"].as_str().unwrap_or("").to_owned(),
        ));
    }
    stages.sort();
    assert_eq!(
        stages,
        [(10, "Voted".to_owned()), (11, "Proposed".to_owned())]
    );

    let mut c = WsClient::connect(gw.addr, "/v1/ws/contention");
    c.next_of("Hello");
    let v = c.next_json();
    assert_eq!(
        v["ContentionData"]["block_number"].as_u64(),
        Some(11),
        "{v:?}"
    );

    // A resuming client gets its replay decision right after Hello, not the snapshot.
    let mut r = WsClient::connect(gw.addr, "/v1/ws/lifecycle?resume_from=1");
    r.next_of("Hello");
    let v = r.next_json();
    assert!(v.get("Resume").is_some(), "{v:?}");
}

#[test]
fn a_lapped_tailer_sends_a_ring_lapped_gap_with_the_range_and_keeps_serving() {
    let mut ring = TestRing::create("lap");
    let gw = start_gateway(test_config(&ring));
    let mut gaps = WsClient::connect(gw.addr, "/v1/ws");
    gaps.next_of("Hello");
    gaps.send_text(r#"{"subscribe":[]}"#);
    gaps.next_of("Subscribed");
    gw.wait_for_clients(1);

    // The writer is much faster than the tailer (decode, JSON, chain stage, fan-out per
    // event): writing until the tailer reports a lap terminates without any timing guess.
    let mut number = 1;
    wait_until("the tailer is lapped", || {
        for _ in 0..20 {
            block(&mut ring, 50, number, 50, true);
            number += 1;
        }
        gw.stats()
            .tailer
            .ring_gaps
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    });
    let g = loop {
        let v = gaps.next_of("Gap");
        if v["Gap"]["reason"].as_str() == Some("ring_lapped") {
            break v;
        }
    };
    let (from, to) = (
        g["Gap"]["ring_from_seqno"].as_u64().unwrap_or(0),
        g["Gap"]["ring_to_seqno"].as_u64().unwrap_or(0),
    );
    assert!(from >= 1 && to >= from, "{g:?}");

    // Serving continues: a new client gets a block written after the lap.
    let mut c = WsClient::connect(gw.addr, "/v1/ws/blocks");
    gw.wait_for_clients(2);
    block(&mut ring, 51, 999_999, 1, true);
    loop {
        let v = c.next_of("Events");
        let starts: Vec<u64> = events(&v)
            .iter()
            .filter(|e| name(e) == "BlockStart")
            .filter_map(|e| e["block_number"].as_u64())
            .collect();
        if starts.contains(&999_999) {
            break;
        }
    }
}
