//! Resume is exact under load: clients that disconnect at random (seeded) points while the
//! writer produces, and reconnect with `resume_from=<last server_seqno seen>&epoch=<epoch>`
//! and the same subscription, end up with exactly what a never-disconnected client with
//! that subscription received (same seqnos, same bytes, no duplicate, no hole), on a
//! filtered subscription, a channel and the firehose. And a replay slower than the store's
//! eviction reports what it lost with a `Gap` instead of aborting.

mod common;
mod resume_support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use resume_support::*;
use ringgate::model::kind::EventType;
use sonic_rs::JsonValueTrait;

/// The block that ends the load; every client reads until its marker event in it.
const FINAL: u64 = 1_000_000;
/// Blocks written under load (3 transactions each: 11 events a block).
const BLOCKS: u64 = 120;
/// Disconnecting clients per subscription.
const FLAKY: u64 = 2;

/// The subscriptions under test and the event of block `FINAL` that ends each.
const STREAMS: [(&str, &str); 3] = [
    ("/v1/ws?events=TxnLog", "TxnLog"),
    ("/v1/ws/blocks", "BlockEnd"),
    ("/v1/ws", "BlockEnd"),
];

/// Reads until `marker` of block `FINAL`, dropping the connection after a random number of
/// frames and resuming from the last `server_seqno` seen. Returns everything received and
/// the number of reconnects.
fn flaky(
    addr: SocketAddr,
    path: &str,
    marker: &str,
    mut c: WsClient,
    mut last: u64,
    seed: u64,
    epoch: u64,
) -> (Vec<Item>, u64) {
    let mut rng = Rng::new(seed);
    let mut items = Vec::new();
    let mut reconnects = 0;
    loop {
        let budget = rng.range(1, 30);
        let (mut n, mut finished) = (0, false);
        let got = read_until(&mut c, last, |i| {
            n += 1;
            finished = is_event(i, marker, FINAL);
            finished || n >= budget
        });
        last = got.last().map_or(last, |i| i.0);
        items.extend(got);
        if finished {
            return (items, reconnects);
        }
        drop(c);
        let sep = if path.contains('?') { '&' } else { '?' };
        c = WsClient::connect(
            addr,
            &format!("{path}{sep}resume_from={last}&epoch={epoch}"),
        );
        let (hello, r) = opening(&mut c, true);
        assert_eq!(seqno_of(&hello), last, "Hello carries the client's cursor");
        let r = r.expect("Resume");
        let b = body(&r, "Resume");
        assert_eq!(str_of(b, "mode"), Some("resume"), "{r:?}");
        assert_eq!(b.get("recovered").and_then(|v| v.as_bool()), Some(true));
        reconnects += 1;
    }
}

#[test]
fn clients_that_reconnect_with_their_cursor_get_exactly_what_a_connected_client_got() {
    resume_under_load(1);
}

/// With two shards a reconnect lands on either (SO_REUSEPORT hashes each new connection):
/// each shard's store holds the same frames under the same seqnos.
#[test]
fn resuming_on_another_shard_is_just_as_exact() {
    resume_under_load(2);
}

fn resume_under_load(shards: usize) {
    let mut ring = TestRing::create("resume-load");
    let mut config = test_config(&ring);
    config.shards = Some(shards);
    config.batch.max_events = 1;
    let gw = start_gateway(config);
    let e = epoch(&gw);

    // Every client's first connection is registered before the first event.
    let mut first = Vec::new();
    for (path, _) in STREAMS {
        for _ in 0..=FLAKY {
            let mut c = WsClient::connect(gw.addr, path);
            let (hello, _) = opening(&mut c, false);
            first.push((path, c, seqno_of(&hello)));
        }
    }
    gw.wait_for_clients(first.len() as u64);

    let mut threads = Vec::new();
    for (i, (path, c, hello)) in first.into_iter().enumerate() {
        let marker = STREAMS[i / (FLAKY as usize + 1)].1;
        let reference = i % (FLAKY as usize + 1) == 0;
        let addr = gw.addr;
        threads.push(std::thread::spawn(move || {
            if reference {
                let mut c = c;
                (read_until(&mut c, hello, |i| is_event(i, marker, FINAL)), 0)
            } else {
                flaky(addr, path, marker, c, hello, 0xC0FFEE + i as u64, e)
            }
        }));
    }
    for n in 1..=BLOCKS {
        ring.write_block(n, 3);
        // Pace the writer so reconnects land while it produces.
        std::thread::sleep(Duration::from_millis(2));
    }
    ring.write_block(FINAL, 1);

    let results: Vec<(Vec<Item>, u64)> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    for (s, group) in results.chunks(FLAKY as usize + 1).enumerate() {
        let (reference, _) = &group[0];
        let events = reference
            .iter()
            .filter(|i| i.1.contains("\"Events\""))
            .count();
        let per_block = [3, 2, 11][s];
        assert!(
            events >= BLOCKS as usize * per_block,
            "{}: {events}",
            STREAMS[s].0
        );
        for (items, reconnects) in &group[1..] {
            assert!(
                *reconnects >= 3,
                "{}: only {reconnects} reconnects",
                STREAMS[s].0
            );
            assert_eq!(items.len(), reference.len(), "{}", STREAMS[s].0);
            assert!(items == reference, "{}: streams differ", STREAMS[s].0);
        }
    }
    // Every shard served resumes (with two, the kernel spread the reconnects).
    for shard in gw.stats().shards.iter() {
        assert!(shard.resume_requests.load(Ordering::Relaxed) > 0);
        assert_eq!(shard.resume_unrecovered.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn a_replay_slower_than_the_store_reports_the_evicted_frames_as_a_gap_and_goes_on() {
    let mut ring = TestRing::create("resume-evict");
    let mut config = test_config(&ring);
    config.batch.max_events = 1;
    config.resume_store_frames = 2_000;
    // The shard's own store is the whole window here (no shared history behind it).
    config.history_memory = 0;
    config.session_queue_frames = 16;
    config.socket_send_buffer = Some(4096);
    let gw = start_gateway(config);
    let mut written = 0;
    let mut write = |ring: &mut TestRing, n: u64| {
        // In steps the shard's inbox absorbs, so no frame is lost before the store.
        for _ in 0..n / 500 {
            for _ in 0..500 {
                written = ring.write_raw(EventType::TxnEnd.code(), &[]);
            }
            settle(&gw, written);
        }
        settle(&gw, written)
    };
    let (oldest, _) = write(&mut ring, 2_000);
    let start = oldest - 1;

    // 2,000 frames to replay, far more than the client's buffers and queue hold.
    let stream = connect_small_receive_buffer(gw.addr);
    let url = format!(
        "ws://{}/v1/ws?resume_from={start}&epoch={}",
        gw.addr,
        epoch(&gw)
    );
    let (ws, _) = tungstenite::client(url.as_str(), stream).expect("upgrade");
    let mut c = WsClient {
        ws,
        show_all: false,
    };
    gw.wait_for_clients(1);
    // The client reads nothing while 10,000 more frames pass through the store.
    let (_, head) = write(&mut ring, 10_000);

    let (hello, r) = opening(&mut c, true);
    assert_eq!(seqno_of(&hello), start);
    let r = r.expect("Resume");
    assert_eq!(str_of(body(&r, "Resume"), "mode"), Some("resume"));
    let items = read_until(&mut c, start, |i| i.0 >= head);
    // Every seqno after the cursor was either delivered or announced lost, once.
    let mut covered = Vec::new();
    let mut gaps = 0;
    for i in &items {
        if is_gap(i, "resume_window") {
            let (from, to) = gap_range(i);
            assert_eq!(i.0, to, "a replay Gap carries its last lost seqno");
            covered.extend(from..=to);
            gaps += 1;
        } else {
            covered.push(i.0);
        }
    }
    assert!(gaps >= 1, "the store evicted frames the replay needed");
    let end = items.last().map_or(start, |i| i.0);
    assert_eq!(covered, (start + 1..=end).collect::<Vec<_>>());
    let lost = gw
        .stats()
        .sum(|s| &s.gaps[ringgate::model::gap::GapReason::ResumeWindow.index()]);
    assert_eq!(lost, gaps);

    // The session is live now: a new frame arrives as is.
    ring.write_raw(EventType::TxnEnd.code(), &[]);
    let next = read_until(&mut c, end, |i| i.1.contains("TxnEnd"));
    assert!(next.iter().all(|i| !is_gap(i, "resume_window")));
}
