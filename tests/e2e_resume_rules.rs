//! Resume decisions as a client sees them (docs/decisions/resume-rules.md): a cursor too
//! old for the store, from another epoch, ahead of the head, at the head, an old client
//! without an epoch, `from_block`, and a replay filtered by the channel. Each case checks
//! the `Resume` frame (mode, reason, recovered, replayed range), the `Gap` frame, and the
//! exact frames replayed (every event in its own frame, so seqnos are per event).

mod common;
mod resume_support;

use common::*;
use resume_support::*;
use ringgate::config::Config;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Frames each test's store keeps: far fewer than the test writes.
const SMALL_STORE: usize = 20;

/// A gateway whose events travel one per frame and whose store keeps `store` frames, with
/// no shared history behind it: the rules are the same over the history's window
/// (tests/e2e_history.rs), but a store this small makes every case reachable at once.
fn config(ring: &TestRing, store: usize) -> Config {
    let mut c = test_config(ring);
    c.batch.max_events = 1;
    c.resume_store_frames = store;
    c.history_memory = 0;
    c
}

/// Writes blocks `first..first + n` (2 transactions each: 8 events a block) into a ring
/// that already holds `before` events; returns the events it now holds (= its last ring
/// seqno).
fn write_blocks(ring: &mut TestRing, before: u64, first: u64, n: u64) -> u64 {
    let mut total = before;
    for b in first..first + n {
        total += ring.write_block(b, 2).len() as u64;
    }
    total
}

fn resume_path(cursor: u64, epoch: Option<u64>) -> String {
    match epoch {
        Some(e) => format!("/v1/ws?resume_from={cursor}&epoch={e}"),
        None => format!("/v1/ws?resume_from={cursor}"),
    }
}

/// Asserts the `Resume` body: mode, reason, recovered and the replayed range.
fn check_resume(r: &Value, mode: &str, reason: &str, recovered: bool, range: Option<(u64, u64)>) {
    let b = body(r, "Resume");
    assert_eq!(str_of(b, "mode"), Some(mode), "{r:?}");
    assert_eq!(str_of(b, "reason"), Some(reason), "{r:?}");
    assert_eq!(
        b.get("recovered").and_then(|v| v.as_bool()),
        Some(recovered)
    );
    let got = u64_of(b, "from_seqno").zip(u64_of(b, "to_seqno"));
    assert_eq!(got, range, "replayed range of {r:?}");
}

/// Asserts `items` are every frame after `head` (the firehose takes them all) through the
/// new block's 8 events, without a Gap.
fn assert_live_from(items: &[Item], head: u64) {
    let last = items.last().map_or(head, |i| i.0);
    assert_eq!(seqnos(items), (head + 1..=last).collect::<Vec<_>>());
    let events = items.iter().filter(|i| i.1.contains("\"Events\"")).count();
    assert_eq!(events, 8);
    assert!(!items.iter().any(|i| i.1.contains("\"Gap\"")));
}

/// The seqnos of `items`.
fn seqnos(items: &[Item]) -> Vec<u64> {
    items.iter().map(|i| i.0).collect()
}

#[test]
fn a_cursor_older_than_the_store_gets_a_gap_then_everything_still_stored() {
    let mut ring = TestRing::create("resume-old");
    let gw = start_gateway(config(&ring, SMALL_STORE));
    let written = write_blocks(&mut ring, 0, 1, 5);
    let (oldest, head) = settle(&gw, written);
    assert_eq!(head - oldest + 1, SMALL_STORE as u64);

    let mut c = WsClient::connect(gw.addr, &resume_path(3, Some(epoch(&gw))));
    let (hello, r) = opening(&mut c, true);
    // The cursor stays the client's own until the Gap frame announces the loss.
    assert_eq!(seqno_of(&hello), 3);
    let limits = body(&hello, "Hello").get("limits").expect("limits");
    assert_eq!(
        u64_of(limits, "resume_buffer_size"),
        Some(SMALL_STORE as u64)
    );
    check_resume(
        &r.expect("Resume"),
        "snapshot",
        "too_old",
        false,
        Some((oldest, head)),
    );

    let items = read_until(&mut c, 3, |i| i.0 == head);
    assert!(is_gap(&items[0], "resume_window"), "{:?}", items[0]);
    assert_eq!(
        items[0].0,
        oldest - 1,
        "the Gap carries the last lost seqno"
    );
    assert_eq!(gap_range(&items[0]), (4, oldest - 1));
    assert_eq!(seqnos(&items[1..]), (oldest..=head).collect::<Vec<_>>());
}

#[test]
fn a_cursor_from_another_epoch_replays_the_store_and_reports_what_this_epoch_lost() {
    let mut ring = TestRing::create("resume-epoch");
    let gw = start_gateway(config(&ring, SMALL_STORE));
    let written = write_blocks(&mut ring, 0, 1, 5);
    let (oldest, head) = settle(&gw, written);

    let mut c = WsClient::connect(gw.addr, &resume_path(10, Some(epoch(&gw) + 1)));
    let (hello, r) = opening(&mut c, true);
    assert_eq!(
        seqno_of(&hello),
        0,
        "a cursor of another epoch means nothing here"
    );
    check_resume(
        &r.expect("Resume"),
        "snapshot",
        "other_epoch",
        false,
        Some((oldest, head)),
    );
    let items = read_until(&mut c, 0, |i| i.0 == head);
    assert!(is_gap(&items[0], "resume_window"));
    assert_eq!(gap_range(&items[0]), (1, oldest - 1));
    assert_eq!(seqnos(&items[1..]), (oldest..=head).collect::<Vec<_>>());
}

#[test]
fn a_cursor_ahead_of_the_head_goes_live_without_recovery() {
    let mut ring = TestRing::create("resume-ahead");
    let gw = start_gateway(config(&ring, SMALL_STORE));
    let written = write_blocks(&mut ring, 0, 1, 2);
    let (_, head) = settle(&gw, written);

    let mut c = WsClient::connect(gw.addr, &resume_path(head + 100, Some(epoch(&gw))));
    let (hello, r) = opening(&mut c, true);
    assert_eq!(seqno_of(&hello), head);
    check_resume(
        &r.expect("Resume"),
        "snapshot",
        "ahead_of_head",
        false,
        None,
    );
    gw.wait_for_clients(1);
    write_blocks(&mut ring, written, 3, 1);
    let items = read_until(&mut c, head, |i| is_event(i, "BlockEnd", 3));
    // Live from the head: every frame of the new block, no Gap.
    assert_live_from(&items, head);
}

#[test]
fn a_cursor_at_the_head_resumes_with_nothing_to_replay() {
    let mut ring = TestRing::create("resume-head");
    let gw = start_gateway(config(&ring, SMALL_STORE));
    let written = write_blocks(&mut ring, 0, 1, 2);
    let (_, head) = settle(&gw, written);

    let mut c = WsClient::connect(gw.addr, &resume_path(head, Some(epoch(&gw))));
    let (hello, r) = opening(&mut c, true);
    assert_eq!(seqno_of(&hello), head);
    check_resume(&r.expect("Resume"), "resume", "at_head", true, None);
    gw.wait_for_clients(1);
    write_blocks(&mut ring, written, 3, 1);
    let items = read_until(&mut c, head, |i| is_event(i, "BlockEnd", 3));
    assert_live_from(&items, head);
}

#[test]
fn an_old_client_without_epoch_resumes_in_range_and_gets_the_same_bytes_as_a_live_client() {
    let mut ring = TestRing::create("resume-old-client");
    let gw = start_gateway(config(&ring, 1_000));
    let mut live = WsClient::connect(gw.addr, "/v1/ws");
    let (hello, _) = opening(&mut live, false);
    gw.wait_for_clients(1);
    let written = write_blocks(&mut ring, 0, 1, 3);
    let (_, head) = settle(&gw, written);
    let reference = read_until(&mut live, seqno_of(&hello), |i| i.0 == head);

    let cursor = head - 10;
    let mut c = WsClient::connect(gw.addr, &resume_path(cursor, None));
    let (hello, r) = opening(&mut c, true);
    assert_eq!(seqno_of(&hello), cursor);
    check_resume(
        &r.expect("Resume"),
        "resume",
        "in_range",
        true,
        Some((cursor + 1, head)),
    );
    let items = read_until(&mut c, cursor, |i| i.0 == head);
    let expected: Vec<Item> = reference.into_iter().filter(|i| i.0 > cursor).collect();
    assert_eq!(items, expected);
}

#[test]
fn from_block_replays_from_that_blocks_first_event() {
    let mut ring = TestRing::create("resume-block");
    let gw = start_gateway(config(&ring, 1_000));
    let mut live = WsClient::connect(gw.addr, "/v1/ws/blocks");
    let (hello, _) = opening(&mut live, false);
    gw.wait_for_clients(1);
    let written = write_blocks(&mut ring, 0, 10, 5);
    settle(&gw, written);
    let reference = read_until(&mut live, seqno_of(&hello), |i| is_event(i, "BlockEnd", 14));

    let mut c = WsClient::connect(gw.addr, "/v1/ws/blocks?from_block=12");
    let (hello, r) = opening(&mut c, true);
    let r = r.expect("Resume");
    let b = body(&r, "Resume");
    assert_eq!(str_of(b, "mode"), Some("resume"));
    assert_eq!(str_of(b, "reason"), Some("block_in_range"));
    assert_eq!(b.get("recovered").and_then(|v| v.as_bool()), Some(true));
    let items = read_until(&mut c, seqno_of(&hello), |i| is_event(i, "BlockEnd", 14));
    assert!(is_event(&items[0], "BlockStart", 12), "{:?}", items[0]);
    assert_eq!(
        items[0].0,
        seqno_of(&hello) + 1,
        "the block's first frame follows the cursor"
    );
    let start = reference
        .iter()
        .position(|i| is_event(i, "BlockStart", 12))
        .expect("the live client saw block 12");
    assert_eq!(items, reference[start..]);

    // A block that has not happened yet: resume from the head, nothing to replay.
    let mut c = WsClient::connect(gw.addr, "/v1/ws/blocks?from_block=99");
    let (_, r) = opening(&mut c, true);
    check_resume(&r.expect("Resume"), "resume", "block_ahead", true, None);
}

#[test]
fn a_lifecycle_client_resuming_gets_no_raw_events() {
    let mut ring = TestRing::create("resume-filtered");
    let gw = start_gateway(config(&ring, 1_000));
    let written = write_blocks(&mut ring, 0, 1, 3);
    let (_, head) = settle(&gw, written);
    let e = epoch(&gw);
    let mut lifecycle = WsClient::connect(
        gw.addr,
        &format!("/v1/ws/lifecycle?resume_from=0&epoch={e}"),
    );
    let mut firehose = WsClient::connect(gw.addr, &format!("/v1/ws?resume_from=0&epoch={e}"));
    for c in [&mut lifecycle, &mut firehose] {
        let (_, r) = opening(c, true);
        check_resume(
            &r.expect("Resume"),
            "resume",
            "in_range",
            true,
            Some((1, head)),
        );
    }
    gw.wait_for_clients(2);
    // A Gap reaches every session whatever its subscription: it marks the end of the replay.
    ring.restart_writer();
    let marker = |i: &Item| is_gap(i, "writer_restart");
    let got = read_until(&mut lifecycle, 0, marker);
    let raw: Vec<&Item> = got.iter().filter(|i| i.1.contains("\"Events\"")).collect();
    assert!(
        raw.is_empty(),
        "the lifecycle replay carried raw events: {raw:?}"
    );
    // The same replay on the firehose carries every event written.
    let all = read_until(&mut firehose, 0, marker);
    let events = all.iter().filter(|i| i.1.contains("\"Events\"")).count();
    assert_eq!(events, 3 * 8);
}

#[test]
fn without_a_store_hello_does_not_offer_resume_and_a_resume_request_is_told_so() {
    let mut ring = TestRing::create("resume-off");
    let gw = start_gateway(config(&ring, 0));
    let written = write_blocks(&mut ring, 0, 1, 2);
    settle_tailer(&gw, written);
    let head = gw
        .stats()
        .tailer
        .head_server_seqno
        .load(std::sync::atomic::Ordering::Relaxed);

    let mut c = WsClient::connect(gw.addr, &resume_path(3, Some(epoch(&gw))));
    let (hello, r) = opening(&mut c, true);
    let h = body(&hello, "Hello");
    let features: Vec<&str> = h
        .get("features")
        .and_then(|f| f.as_array())
        .expect("features")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(!features.contains(&"resume"), "{features:?}");
    assert!(!features.contains(&"resume_from_block"), "{features:?}");
    assert_eq!(
        u64_of(h.get("limits").expect("limits"), "resume_buffer_size"),
        Some(0)
    );
    assert_eq!(seqno_of(&hello), head);
    check_resume(&r.expect("Resume"), "snapshot", "disabled", false, None);
}
