//! The old gateway's SDKs (TypeScript and Python) against ringgate, by their wire
//! expectations (the message shapes they decode, not their code), over a real gateway and a
//! real ring: every connect answers `Resume` (their `waitForResume`); `ContentionData` has
//! exactly the keys of their strict dataclass and `Lifecycle` only the stages of their enum,
//! unless the client asks for ringgate's shapes (`extended=1`, which the new clients send);
//! block-level access events carry `"txn_index":null`; `NativeTransfer` delivers
//! `TxnCallFrame` events with a value, as the old gateway did.

mod common;

use std::collections::BTreeSet;

use common::*;
use ringgate::tools::synth::generator::Generator;
use ringgate::tools::synth::SynthOptions;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// The keys of the old SDKs' `ContentionData` (and of its slot entries).
const OLD_CONTENTION: &[&str] = &[
    "block_number",
    "block_wall_time_ns",
    "total_tx_time_ns",
    "parallel_efficiency_pct",
    "total_unique_slots",
    "contended_slot_count",
    "contention_ratio",
    "total_txn_count",
    "top_contended_slots",
    "top_contended_contracts",
    "contract_edges",
];
const OLD_SLOT: &[&str] = &["address", "slot", "txn_count", "access_count"];
/// The old SDKs' stage enum.
const OLD_STAGES: &[&str] = &["Proposed", "Voted", "Finalized", "Verified", "Rejected"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, _)| k.to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A chain with many forks (abandoned proposals) and contention reports.
fn forky_chain(ring: &mut TestRing) -> u64 {
    let opts = SynthOptions {
        txns_per_block: 20,
        fork_probability: 0.5,
        ..SynthOptions::default()
    };
    ring.write_synth(&mut Generator::new(opts), 8_000);
    let (start, _) = (ring.next_seqno(), ());
    ring.write_block(99_000_000, 1);
    start + 4 // its BlockEnd
}

/// Every frame a client gets until (and with) the event of ring seqno `last`.
fn frames_until(c: &mut WsClient, last: u64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = c.next_json();
        let done = has_event(&v, |s| s == last);
        out.push(v);
        if done {
            return out;
        }
    }
}

/// The events (but the `BlockEnd` markers) a client gets until the event with ring `last`.
fn events_until(c: &mut WsClient, last: u64) -> Vec<Value> {
    frames_until(c, last)
        .iter()
        .filter_map(|v| v.get("Events").and_then(|e| e.as_array()))
        .flat_map(|a| a.iter().cloned())
        .filter(|e| e["event_name"].as_str() != Some("BlockEnd"))
        .collect()
}

/// Whether `frame` is an `Events` frame with an event whose ring seqno `pred` accepts.
fn has_event(frame: &Value, pred: impl Fn(u64) -> bool) -> bool {
    frame
        .get("Events")
        .and_then(|e| e.as_array())
        .is_some_and(|evs| evs.iter().any(|e| e["seqno"].as_u64().is_some_and(&pred)))
}

/// Writes blocks 1..=`blocks` of `txns` transactions each and waits until the gateway has
/// all of them; returns the head at the start (a cursor before them) and the ring seqno of
/// the last block's `BlockStart`.
fn stored_blocks(gw: &TestGateway, ring: &mut TestRing, blocks: u64, txns: u32) -> (u64, u64) {
    let mut probe = WsClient::connect(gw.addr, "/v1/ws?events=BlockEnd");
    let cursor = seqno_of(&probe.next_json());
    gw.wait_for_clients(1);
    let mut last_start = 0;
    for n in 1..=blocks {
        last_start = ring.next_seqno();
        ring.write_block(n, txns);
    }
    wait_until("the gateway has every block", || {
        has_event(&probe.next_json(), |s| s > last_start)
    });
    (cursor, last_start)
}

#[test]
fn every_connect_answers_resume_so_wait_for_resume_returns() {
    let ring = TestRing::create("old-resume");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws/txs");
    c.show_all = true;
    assert_eq!(kind_of(&c.next_json()), "Hello");
    let r = c.next_json();
    assert_eq!(kind_of(&r), "Resume", "{r:?}");
    assert_eq!(r["Resume"]["mode"].as_str(), Some("snapshot"));
    assert_eq!(r["Resume"]["reason"].as_str(), Some("fresh"));
    assert_eq!(r["Resume"]["recovered"].as_bool(), Some(true));
}

#[test]
fn old_clients_get_the_old_meta_shapes_and_new_clients_ringgates() {
    let mut ring = TestRing::create("old-shapes");
    let gw = start_gateway(test_config(&ring));
    let mut old = WsClient::connect(gw.addr, "/v1/ws?events=ContentionData,Lifecycle,BlockEnd");
    let mut new = WsClient::connect(
        gw.addr,
        "/v1/ws?events=ContentionData,Lifecycle,BlockEnd&extended=1",
    );
    gw.wait_for_clients(2);
    let last = forky_chain(&mut ring);

    let mut old_stages = BTreeSet::new();
    let mut contention = 0;
    for v in frames_until(&mut old, last) {
        if let Some(c) = v.get("ContentionData") {
            contention += 1;
            assert_eq!(keys(c), set(OLD_CONTENTION), "{c:?}");
            for s in c["top_contended_slots"].as_array().unwrap().iter() {
                assert_eq!(keys(s), set(OLD_SLOT), "{s:?}");
            }
        }
        if let Some(l) = v.get("Lifecycle") {
            for k in ["from_stage", "to_stage"] {
                if let Some(s) = l[k].as_str() {
                    old_stages.insert(s.to_owned());
                }
            }
        }
    }
    assert!(contention > 0, "no ContentionData");
    assert!(
        old_stages.is_subset(&set(OLD_STAGES)),
        "stages {old_stages:?}"
    );

    let mut new_stages = BTreeSet::new();
    for v in frames_until(&mut new, last) {
        if let Some(c) = v.get("ContentionData") {
            assert!(
                c.get("block_id").is_some() && c.get("parallel_speedup").is_some(),
                "{c:?}"
            );
        }
        if let Some(l) = v.get("Lifecycle") {
            new_stages.insert(l["to_stage"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        new_stages.contains("Abandoned"),
        "the chain abandons proposals: {new_stages:?}"
    );
    assert!(
        old_stages.contains("Rejected"),
        "old clients see them as Rejected: {old_stages:?}"
    );
}

#[test]
fn block_level_access_events_carry_a_null_txn_index_and_native_transfer_is_a_call_frame() {
    let mut ring = TestRing::create("old-access");
    let gw = start_gateway(test_config(&ring));
    let mut access = WsClient::connect(
        gw.addr,
        "/v1/ws?events=AccountAccessListHeader,AccountAccess,StorageAccess,BlockEnd",
    );
    let mut native = WsClient::connect(gw.addr, "/v1/ws?events=NativeTransfer,BlockEnd");
    gw.wait_for_clients(2);
    let last = forky_chain(&mut ring);

    let (mut null, mut numbered) = (0, 0);
    for e in events_until(&mut access, last) {
        let p = &e["payload"];
        assert!(p.get("txn_index").is_some(), "txn_index key present: {e:?}");
        if p["txn_index"].is_null() {
            assert!(e.get("txn_idx").is_none(), "{e:?}");
            null += 1;
        } else {
            numbered += 1;
        }
    }
    assert!(
        null > 0 && numbered > 0,
        "{null} block-level, {numbered} transaction-level"
    );

    let mut transfers = 0;
    for e in events_until(&mut native, last) {
        assert_eq!(e["event_name"].as_str(), Some("TxnCallFrame"), "{e:?}");
        assert_ne!(e["payload"]["value"].as_str(), Some("0x0"), "{e:?}");
        transfers += 1;
    }
    assert!(transfers > 0, "the chain has native transfers");
}

#[test]
fn a_subscribe_with_bad_names_applies_the_valid_ones_and_lists_the_rest() {
    let mut ring = TestRing::create("old-partial");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws/txs");
    assert_eq!(kind_of(&c.next_json()), "Hello");
    c.send_text(r#"{"subscribe":["TxnLog","NoSuchEvent","BlockStart"]}"#);
    let ack = c.next_of("Subscribed");
    let s = &ack["Subscribed"];
    let events: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(events, ["TxnLog"], "{ack:?}");
    let rejected: Vec<(&str, &str)> = s["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["item"].as_str().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            ("NoSuchEvent", "unknown_event"),
            ("BlockStart", "not_allowed_on_channel")
        ]
    );
    // The valid name governs the stream.
    gw.wait_for_clients(1);
    ring.write_block(1, 2);
    let v = c.next_of("Events");
    assert!(event_names(&v).iter().all(|n| n == "TxnLog"), "{v:?}");
    // Nothing valid: refused, the previous subscription stays.
    c.send_text(r#"{"subscribe":["Nope"]}"#);
    let e = c.next_of("Error");
    assert_eq!(e["Error"]["code"].as_str(), Some("unknown_event"));
}

#[test]
fn a_quiet_stream_gets_heartbeats_that_repeat_the_cursor() {
    let ring = TestRing::create("old-heartbeat");
    let gw = start_gateway(test_config(&ring));
    let mut c = WsClient::connect(gw.addr, "/v1/ws/txs?events=TxnLog");
    c.show_all = true;
    let hello = c.next_json();
    assert_eq!(kind_of(&c.next_json()), "Resume");
    // Nothing is written: the next frame (within the helper's deadline) is a heartbeat.
    let beat = c.next_json();
    assert_eq!(kind_of(&beat), "Heartbeat", "{beat:?}");
    assert_eq!(
        seqno_of(&beat),
        seqno_of(&hello),
        "per-connection: it repeats the cursor"
    );
}

#[test]
fn a_subscribe_sent_right_after_a_resuming_connect_governs_the_replay() {
    let mut ring = TestRing::create("old-replay");
    let gw = start_gateway(test_config(&ring));
    let (cursor, last_start) = stored_blocks(&gw, &mut ring, 20, 3);

    // An old SDK: resume_from alone, then its subscribe once the socket is open.
    let mut old = WsClient::connect(gw.addr, &format!("/v1/ws?resume_from={cursor}"));
    old.send_text(r#"{"subscribe":["BlockStart"]}"#);
    let mut starts = 0;
    loop {
        let v = old.next_json();
        let names = event_names(&v);
        assert!(
            names.iter().all(|n| n == "BlockStart"),
            "replayed under the old subscription: {names:?}"
        );
        starts += names.len();
        if has_event(&v, |s| s == last_start) {
            break;
        }
    }
    assert_eq!(starts, 20, "every block's start, once");
}

#[test]
fn nothing_of_the_old_subscription_follows_the_subscribed_ack() {
    let mut ring = TestRing::create("old-resubscribe");
    let gw = start_gateway(test_config(&ring));
    let (cursor, _) = stored_blocks(&gw, &mut ring, 1_500, 5);

    // A firehose replay into a small receive buffer that is not read: the socket fills and
    // frames of the first subscription wait in the session's queue. Then a narrower one.
    let stream = connect_small_receive_buffer(gw.addr);
    let mut c =
        RawClient::upgraded_over(stream, &format!("/v1/ws?resume_from={cursor}&extended=1"))
            .into_ws();
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.send_text(r#"{"subscribe":["BlockStart"]}"#);
    let mut before_ack = 0;
    loop {
        let v = c.next_json();
        if v.get("Subscribed").is_some() {
            break;
        }
        before_ack += event_names(&v).len();
    }
    assert!(
        before_ack > 0,
        "the first subscription's frames were in flight"
    );
    let marker = ring.next_seqno();
    ring.write_block(1_501, 1);
    loop {
        let v = c.next_json();
        let names = event_names(&v);
        assert!(
            names.iter().all(|n| n == "BlockStart"),
            "after the ack, frames of the old subscription: {names:?}"
        );
        if has_event(&v, |s| s == marker) {
            break;
        }
    }
}
