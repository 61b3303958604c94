//! Scale-out over NATS JetStream, end to end with a real `nats-server -js` (started here on a
//! free port) and a real ring written by `ringgate write`: the origin publishes every frame
//! once, in order; edges serve the stream with the origin's epoch and seqnos; failures of
//! the bus, an edge or the origin lose nothing silently and serve nothing twice.

mod common;
mod resume_support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::nats::{read_stream, read_stream_as, NatsServer};
use common::*;
use resume_support::{body, is_event, opening, read_until, str_of, Item};
use ringgate::bus::creds::{self, Credentials};
use ringgate::config::Config;
use ringgate::history::record;
use ringgate::ingest::ring::scratch_dir;
use ringgate::model::gap::GapReason;
use ringgate::model::kind::EventType;
use ringgate::model::outbound::Outbound;
use ringgate::server::Server;

/// `ringgate write --ring PATH --rate R --duration S`: the real writer, as an operator runs it.
fn ringgate_write(path: &Path, rate: u64, secs: u64) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .arg("write")
        .arg("--ring")
        .arg(path)
        .args(["--rate", &rate.to_string(), "--duration", &secs.to_string()])
        .spawn()
        .expect("spawn ringgate write");
    wait_until("the writer created the ring", || path.exists());
    child
}

/// One scenario at a time: each runs a writer, an origin, an edge and a nats-server, and
/// several at once on a 2-core CI box starve each other past the tests' deadlines.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn ring_path(tag: &str) -> PathBuf {
    scratch_dir().join(unique_name(tag))
}

/// Checks that `frames` (as an edge orders them) are `1..=head` exactly once each, in order,
/// of `epoch`, in whole windows, with the headers and subject that go with each record.
fn assert_every_frame_once_in_order(frames: &[common::nats::StreamFrame], epoch: u64, head: u64) {
    let seqnos: Vec<u64> = frames.iter().map(|f| f.seqno).collect();
    let expected: Vec<u64> = (1..=head).collect();
    assert_eq!(seqnos, expected, "every frame once, in seqno order");
    for window in frames.chunk_by(|a, b| a.window == b.window) {
        assert_eq!(
            window[0].window, window[0].seqno,
            "a window is named by its first seqno"
        );
        assert_eq!(
            window.len() as u64,
            window[0].window_frames,
            "the stream holds whole windows"
        );
    }
    let mut originals = record::Originals::new();
    for f in frames {
        assert_eq!(f.epoch, epoch);
        assert_eq!(f.msg_id, format!("{epoch}:{}", f.message_seqno));
        assert!(
            f.message_seqno <= f.seqno,
            "a message is named by its first frame"
        );
        assert!(
            f.subject.starts_with(&format!("RINGGATE.{epoch}.")),
            "{}",
            f.subject
        );
        assert!(!f.body.is_empty(), "a copy's original came before it");
        let mut unresolved = Vec::new();
        let decoded = record::decode_lenient(&f.body, &mut originals, &mut unresolved)
            .expect("the body is the frame's record");
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].server_seqno(), f.seqno);
        if let Outbound::Event(e) = &decoded[0] {
            assert!(
                f.subject.ends_with(e.keys.event_type.name()),
                "{}",
                f.subject
            );
        }
    }
}

/// A gateway config of the scale-out tests: one event per `Events` frame, so what two
/// gateways send can be compared frame by frame; a stream small enough for any test disk.
fn scale_config(ring: &Path) -> Config {
    let mut config = test_config_for(ring);
    config.batch.max_events = 1;
    config.nats.max_bytes = 256 << 20;
    config
}

/// The config of an origin on `ring` publishing to `nats`, with `--nats-creds creds`.
fn origin_config(ring: &Path, nats: &NatsServer, creds: Option<&Path>) -> Config {
    let mut config = scale_config(ring);
    config.nats.publish = vec![nats.url()];
    config.nats.creds_file = creds.map(Path::to_path_buf);
    config
}

/// The config of an edge serving `nats`'s stream (as `ringgate serve --source`), with
/// `--nats-creds creds`.
fn edge_config(nats: &NatsServer, creds: Option<&Path>) -> Config {
    let mut config = scale_config(Path::new("/nonexistent-ring"));
    config.nats.source = vec![nats.url()];
    config.nats.creds_file = creds.map(Path::to_path_buf);
    config
}

/// An origin on `ring` publishing to `nats`.
fn origin(ring: &Path, nats: &NatsServer) -> TestGateway {
    start_gateway(origin_config(ring, nats, None))
}

/// An edge serving `nats`'s stream (started in process).
fn edge(nats: &NatsServer) -> TestGateway {
    start_gateway(edge_config(nats, None))
}

fn server(gw: &TestGateway) -> &Server {
    gw.server.as_ref().expect("running")
}

/// Waits until the origin's head stops moving and every frame up to it is acked by
/// JetStream; returns the head.
fn settle_origin(gw: &TestGateway) -> u64 {
    let hub = server(gw).stats().clone();
    let bus = server(gw).bus_stats().expect("publishing").clone();
    let mut last = u64::MAX;
    wait_until("every frame is acked", || {
        let head = hub.tailer.head_server_seqno.load(Ordering::Relaxed);
        let settled = head == last && bus.acked_seqno.load(Ordering::Relaxed) == head;
        last = head;
        std::thread::sleep(Duration::from_millis(50));
        settled
    });
    last
}

/// Waits until `edge` delivered the stream up to `head`.
fn settle_edge(edge: &TestGateway, head: u64) {
    wait_until("the edge reached the origin's head", || {
        edge.stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed)
            == head
    });
}

/// The block number of the last `BlockEnd` the stream holds.
fn last_block_end(frames: &[common::nats::StreamFrame]) -> u64 {
    let mut originals = record::Originals::new();
    let mut last = 0;
    for f in frames {
        let mut unresolved = Vec::new();
        for d in record::decode_lenient(&f.body, &mut originals, &mut unresolved).expect("record") {
            if let Outbound::Event(e) = d {
                if e.keys.event_type == EventType::BlockEnd && !e.is_copy() {
                    last = e.keys.block_number.unwrap_or(last);
                }
            }
        }
    }
    assert!(last > 0, "the stream holds a whole block");
    last
}

/// A client of `gw` resuming after `cursor` of `epoch`, reading up to (including) the
/// `BlockEnd` of block `last_block`, or only `limit` frames.
fn resume_read(
    gw: &TestGateway,
    epoch: u64,
    cursor: u64,
    last_block: u64,
    limit: usize,
) -> Vec<Item> {
    let mut c = WsClient::connect(
        gw.addr,
        &format!("/v1/ws?resume_from={cursor}&epoch={epoch}"),
    );
    let (_, r) = opening(&mut c, true);
    let r = r.expect("Resume");
    assert_eq!(str_of(body(&r, "Resume"), "mode"), Some("resume"), "{r:?}");
    let mut n = 0;
    read_until(&mut c, cursor, |i| {
        n += 1;
        n >= limit || is_event(i, "BlockEnd", last_block)
    })
}

#[test]
fn a_client_moves_from_the_origin_to_an_edge_with_its_cursor_and_misses_nothing() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-edge");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let origin = origin(&path, &nats);
    let epoch = origin.stats().epoch;
    // The edge starts while the origin publishes: it catches up, then follows live.
    let edge = edge(&nats);
    assert_eq!(
        edge.stats().epoch,
        epoch,
        "the edge serves the origin's epoch"
    );
    assert!(writer.wait().expect("writer").success());
    let head = settle_origin(&origin);
    settle_edge(&edge, head);
    let last_block = last_block_end(&read_stream(&nats.url(), "RINGGATE"));
    // The reference: everything the origin serves after seqno 1.
    let reference = resume_read(&origin, epoch, 1, last_block, usize::MAX);
    assert!(reference.len() > 1_000, "{}", reference.len());
    // A client reads part of it on the origin, then resumes on the edge.
    let first = resume_read(&origin, epoch, 1, last_block, 700);
    let cursor = first.last().expect("frames").0;
    let rest = resume_read(&edge, epoch, cursor, last_block, usize::MAX);
    let moved: Vec<Item> = first.into_iter().chain(rest).collect();
    assert_eq!(moved.len(), reference.len());
    assert!(
        moved == reference,
        "the same frames, byte for byte, once each"
    );
    // A client of the edge alone gets what a client of the origin gets.
    assert!(resume_read(&edge, epoch, 1, last_block, usize::MAX) == reference);
    let _ = std::fs::remove_file(&path);
}

/// `GET path` on `gw`: (status line, body).
fn rest_get(gw: &TestGateway, path: &str) -> (String, String) {
    let response = RawClient::request(gw.addr, &format!("GET {path} HTTP/1.1\r\n\r\n"));
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, body.to_owned())
}

#[test]
fn an_edge_serves_the_origins_chain_rest_bodies_and_connect_snapshot() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-chain");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let origin = origin(&path, &nats);
    let edge = edge(&nats);
    assert!(writer.wait().expect("writer").success());
    let head = settle_origin(&origin);
    settle_edge(&edge, head);
    // The origin's last bodies reach the edge (sent at most every 200 ms after a change).
    let frames = |b: &ringgate::handoff::published::ChainBodies| -> Vec<Vec<u8>> {
        b.connect.iter().map(|f| f.frame.to_vec()).collect()
    };
    wait_until("the edge holds the origin's chain bodies", || {
        let (o, e) = (origin.stats().chain.get(), edge.stats().chain.get());
        o.block_range.is_some()
            && (
                &o.tps,
                &o.contention,
                &o.lifecycle,
                &o.blocks,
                o.block_range,
            ) == (
                &e.tps,
                &e.contention,
                &e.lifecycle,
                &e.blocks,
                e.block_range,
            )
            && frames(&o) == frames(&e)
    });
    // REST on the edge answers what it answers on the origin.
    let (_, last) = origin.stats().chain.get().block_range.expect("blocks");
    for path in [
        "/v1/tps".to_owned(),
        "/v1/contention".to_owned(),
        "/v1/blocks/lifecycle".to_owned(),
        format!("/v1/blocks/{last}/lifecycle"),
    ] {
        let on_edge = rest_get(&edge, &path);
        assert!(on_edge.0.contains(" 200 "), "{path}: {}", on_edge.0);
        assert_eq!(on_edge, rest_get(&origin, &path), "{path}");
    }
    let status = rest_get(&edge, "/v1/status").1;
    assert!(status.contains(&format!("{last}")), "{status}");
    // A new session on the edge gets the origin's connect snapshot after its Hello.
    let snapshot = origin.stats().chain.get().connect.len();
    assert!(snapshot > 0, "the origin has a connect snapshot");
    let first_frames = |gw: &TestGateway| -> Vec<String> {
        let mut c = WsClient::connect(gw.addr, "/v1/ws");
        let _hello = c.next_json();
        (0..snapshot)
            .map(|_| sonic_rs::to_string(&c.next_json()).expect("JSON"))
            .collect()
    };
    assert_eq!(first_frames(&edge), first_frames(&origin));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_origin_publishes_every_frame_once_in_seqno_order() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-origin");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let mut config = test_config_for(&path);
    config.nats.publish = vec![nats.url()];
    config.nats.max_bytes = 256 << 20;
    let mut gw = start_gateway(config);
    assert!(writer.wait().expect("writer").success());
    // The writer is done: once the head stops moving and every frame up to it is acked,
    // the stream holds everything the origin made.
    let head = settle_origin(&gw);
    let bus = server(&gw).bus_stats().expect("publishing").clone();
    assert_eq!(
        bus.acked.load(Ordering::Relaxed),
        head,
        "each frame acked once"
    );
    assert!(head > 4_000, "the ring's events and their frames: {head}");
    assert_eq!(bus.queue_lost.load(Ordering::Relaxed), 0);
    let frames = read_stream(&nats.url(), "RINGGATE");
    assert_every_frame_once_in_order(&frames, gw.stats().epoch, head);
    // One message per subject and window: each message acked once, and all of one kind.
    let messages: HashSet<u64> = frames.iter().map(|f| f.stream_seq).collect();
    assert_eq!(
        messages.len() as u64,
        bus.acked_messages.load(Ordering::Relaxed)
    );
    let mut subjects = std::collections::HashMap::new();
    for f in &frames {
        let subject = subjects.entry(f.stream_seq).or_insert(&f.subject);
        assert_eq!(
            *subject, &f.subject,
            "a message holds frames of one subject"
        );
    }
    gw.shutdown();
    let _ = std::fs::remove_file(&path);
}

/// The stream holds `1..=head` exactly once each, in order.
fn assert_stream_complete(nats: &NatsServer, epoch: u64, head: u64) {
    assert_every_frame_once_in_order(&read_stream(&nats.url(), "RINGGATE"), epoch, head);
}

/// After the disruptions: the origin and the edge settle on the same head, and a client
/// of the edge gets exactly what a client of the origin gets (nothing lost, nothing twice).
fn assert_edge_serves_what_the_origin_serves(
    origin: &TestGateway,
    edge: &TestGateway,
    nats: &NatsServer,
) {
    let epoch = origin.stats().epoch;
    let head = settle_origin(origin);
    settle_edge(edge, head);
    assert_stream_complete(nats, epoch, head);
    let last_block = last_block_end(&read_stream(&nats.url(), "RINGGATE"));
    let reference = resume_read(origin, epoch, 1, last_block, usize::MAX);
    let served = resume_read(edge, epoch, 1, last_block, usize::MAX);
    assert_eq!(served.len(), reference.len());
    assert!(
        served == reference,
        "the same frames, byte for byte, once each"
    );
}

#[test]
fn a_nats_server_restart_while_origin_and_edge_run_loses_and_repeats_nothing() {
    let _serial = one_at_a_time();
    let mut nats = NatsServer::start();
    let path = ring_path("nats-restart");
    let mut writer = ringgate_write(&path, 4_000, 4);
    let origin = origin(&path, &nats);
    let edge = edge(&nats);
    wait_until("the edge serves frames", || {
        edge.stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed)
            > 1_000
    });
    nats.restart();
    assert!(writer.wait().expect("writer").success());
    let bus = server(&origin).bus_stats().expect("publishing").clone();
    assert_eq!(
        bus.queue_lost.load(Ordering::Relaxed),
        0,
        "the queue held the outage"
    );
    wait_until("the publisher reconnected", || {
        bus.connects.load(Ordering::Relaxed) >= 2
    });
    assert_edge_serves_what_the_origin_serves(&origin, &edge, &nats);
    let gaps = &edge.stats().tailer.gaps[GapReason::BusLost.index()];
    assert_eq!(gaps.load(Ordering::Relaxed), 0, "the edge found no hole");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_edge_restarted_serves_everything_again_from_the_stream() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-edge-restart");
    let mut writer = ringgate_write(&path, 4_000, 3);
    let origin = origin(&path, &nats);
    let mut first = edge(&nats);
    wait_until("the edge serves frames", || {
        first
            .stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed)
            > 100
    });
    first.shutdown();
    drop(first);
    let second = edge(&nats);
    assert!(writer.wait().expect("writer").success());
    assert_edge_serves_what_the_origin_serves(&origin, &second, &nats);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_origin_restarted_with_its_history_dir_continues_the_stream_with_the_same_epoch() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-origin-restart");
    let dir = scratch_dir().join(unique_name("nats-history"));
    // Long enough that the restarted origin attaches a live ring on a loaded machine.
    let mut writer = ringgate_write(&path, 2_000, 8);
    let mut config = scale_config(&path);
    config.nats.publish = vec![nats.url()];
    config.history_dir = Some(dir.clone());
    let mut first = start_gateway(config.clone());
    let epoch = first.stats().epoch;
    let edge = edge(&nats);
    wait_until("the origin published frames", || {
        first
            .stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed)
            > 1_000
    });
    first.shutdown();
    drop(first);
    let second = start_gateway(config);
    assert_eq!(
        second.stats().epoch,
        epoch,
        "the history dir keeps the epoch"
    );
    assert!(writer.wait().expect("writer").success());
    assert_edge_serves_what_the_origin_serves(&second, &edge, &nats);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_message_missing_from_a_window_is_an_announced_gap_on_the_edge_and_the_rest_comes_in_order() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-hole");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let origin = origin(&path, &nats);
    let epoch = origin.stats().epoch;
    assert!(writer.wait().expect("writer").success());
    let head = settle_origin(&origin);
    // A message of events in the middle of the stream whose window has other messages
    // after it: deleting it leaves a window the edge can never complete.
    let frames = read_stream(&nats.url(), "RINGGATE");
    let victim = frames
        .iter()
        .filter(|f| f.stream_seq > 20 && !f.subject.ends_with(".Gap"))
        .find(|f| {
            let window: Vec<_> = frames.iter().filter(|g| g.window == f.window).collect();
            let mine = window
                .iter()
                .filter(|g| g.stream_seq == f.stream_seq)
                .count();
            mine >= 2 && window.iter().any(|g| g.stream_seq > f.stream_seq)
        })
        .map(|f| f.stream_seq)
        .expect("a window of several messages");
    let deleted: Vec<u64> = frames
        .iter()
        .filter(|f| f.stream_seq == victim)
        .map(|f| f.seqno)
        .collect();
    common::nats::delete_message(&nats.url(), "RINGGATE", victim);
    // An edge started now reads the stream with the hole.
    let edge = edge(&nats);
    settle_edge(&edge, head);
    let last_block = last_block_end(&frames);
    let reference: std::collections::HashMap<u64, String> =
        resume_read(&origin, epoch, 1, last_block, usize::MAX)
            .into_iter()
            .collect();
    let served = resume_read(&edge, epoch, 1, last_block, usize::MAX);
    // Every frame the edge served is the origin's, byte for byte; every frame of the
    // origin's it did not serve (the deleted ones among them) is in one of its `bus_lost`
    // Gaps, and nothing is both.
    let mut announced = HashSet::new();
    let mut data = HashSet::new();
    for (seqno, text) in &served {
        if text.contains("\"Gap\"") {
            assert!(text.contains("\"reason\":\"bus_lost\""), "{text}");
            let v: sonic_rs::Value = sonic_rs::from_str(text).expect("JSON");
            let from = sonic_rs::JsonValueTrait::as_u64(&v["Gap"]["from_seqno"]).unwrap_or(0);
            announced.extend(from..=*seqno);
        } else {
            assert_eq!(
                Some(text),
                reference.get(seqno),
                "the origin's frame {seqno}"
            );
            data.insert(*seqno);
        }
    }
    assert!(
        announced.is_disjoint(&data),
        "a frame both served and announced lost"
    );
    for seqno in reference.keys().filter(|s| !data.contains(s)) {
        assert!(
            announced.contains(seqno),
            "frame {seqno} neither served nor announced"
        );
    }
    assert!(
        deleted.iter().any(|s| reference.contains_key(s)),
        "the deleted message held frames a client reads"
    );
    for seqno in deleted.iter().filter(|s| reference.contains_key(s)) {
        assert!(announced.contains(seqno), "deleted frame {seqno} announced");
    }
    assert!(edge.stats().tailer.gaps[GapReason::BusLost.index()].load(Ordering::Relaxed) >= 1);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_bus_outage_longer_than_the_queue_is_one_announced_gap_and_never_stalls_the_tailer() {
    let _serial = one_at_a_time();
    let mut nats = NatsServer::start();
    let path = ring_path("nats-outage");
    let mut writer = ringgate_write(&path, 4_000, 6);
    let mut config = scale_config(&path);
    config.nats.publish = vec![nats.url()];
    config.nats.queue_frames = 64;
    config.nats.window_frames = 1_024;
    let origin = start_gateway(config);
    let edge = edge(&nats);
    wait_until("the edge serves frames", || {
        edge.stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed)
            > 500
    });
    nats.kill();
    let bus = server(&origin).bus_stats().expect("publishing").clone();
    let head_then = origin
        .stats()
        .tailer
        .head_server_seqno
        .load(Ordering::Relaxed);
    // The publisher's queue overflows and the tailer goes on, for the origin's own clients.
    wait_until("the queue overflowed and the tailer went on", || {
        let head = origin
            .stats()
            .tailer
            .head_server_seqno
            .load(Ordering::Relaxed);
        bus.queue_lost.load(Ordering::Relaxed) > 0 && head > head_then + 2_000
    });
    nats.restart();
    assert!(writer.wait().expect("writer").success());
    let head = settle_origin(&origin);
    settle_edge(&edge, head);
    // The stream: every seqno once, in order, except lost ranges, each announced by the
    // origin's `bus_lost` Gap whose own seqno is the range's last.
    let (mut expected, mut lost) = (1u64, 0u64);
    for f in read_stream(&nats.url(), "RINGGATE") {
        let body = String::from_utf8_lossy(&f.body);
        if f.subject.ends_with(".Gap") && body.contains("bus_lost") {
            let range = format!(
                "{{\"server_seqno\":{0},\"Gap\":{{\"reason\":\"bus_lost\",\"from_seqno\":{expected},\"to_seqno\":{0}}}}}",
                f.seqno
            );
            assert!(body.contains(&range), "{range} in {body}");
            lost += f.seqno + 1 - expected;
        } else {
            assert_eq!(f.seqno, expected, "a hole not announced");
        }
        expected = f.seqno + 1;
    }
    assert_eq!(expected, head + 1, "the stream reaches the head");
    assert_eq!(
        lost,
        bus.queue_lost.load(Ordering::Relaxed),
        "every lost frame announced"
    );
    assert!(bus.gaps.load(Ordering::Relaxed) >= 1);
    // The full queue went out in windows of many frames, one message per kind each.
    assert!(
        bus.acked_messages.load(Ordering::Relaxed) < bus.acked.load(Ordering::Relaxed),
        "frames batched into fewer messages"
    );
    let (_, metrics) = RawClient::request(origin.addr, "GET /metrics HTTP/1.1\r\n\r\n")
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .expect("a response");
    let line = format!("ringgate_bus_queue_lost_total {lost}\n");
    assert!(metrics.contains(&line), "/metrics says {line}");
    // The edge reached the same head (settled above); a `min_stage` copy whose original
    // was lost cannot be rebuilt, and the edge announces it as a `bus_lost` Gap of its own.
    let edge_gaps = edge.stats().tailer.gaps[GapReason::BusLost.index()].load(Ordering::Relaxed);
    assert!(
        edge_gaps <= lost,
        "{edge_gaps} holes, each within what the origin lost"
    );
    let _ = std::fs::remove_file(&path);
}

/// `"key":<number>` of a JSON body.
fn json_u64(body: &str, key: &str) -> u64 {
    let v: sonic_rs::Value = sonic_rs::from_str(body).expect("JSON");
    sonic_rs::JsonValueTrait::as_u64(&v[key]).unwrap_or(0)
}

#[test]
fn the_cli_runs_an_origin_and_an_edge_of_the_same_epoch() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start();
    let path = ring_path("nats-cli");
    let mut writer = ringgate_write(&path, 2_000, 3);
    let url = nats.url();
    let common = [
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--no-pin",
        "--nats-max-gib",
        "1",
    ];
    let mut args: Vec<&std::ffi::OsStr> = common.iter().map(|a| a.as_ref()).collect();
    let ring = path.as_os_str();
    let origin_args: Vec<&std::ffi::OsStr> = args
        .iter()
        .copied()
        .chain(["--ring".as_ref(), ring, "--publish".as_ref(), url.as_ref()])
        .collect();
    let origin = ServeProcess::start(&origin_args);
    args.extend(["--source".as_ref(), url.as_ref() as &std::ffi::OsStr]);
    let edge = ServeProcess::start(&args);
    assert!(
        edge.log().contains("serving NATS stream RINGGATE"),
        "{}",
        edge.log()
    );
    let (_, o) = origin.get("/v1/status", "");
    wait_until("the edge serves frames", || {
        json_u64(&edge.get("/v1/status", "").1, "server_seqno") > 100
    });
    let (_, e) = edge.get("/v1/status", "");
    assert_eq!(json_u64(&e, "epoch"), json_u64(&o, "epoch"), "{e}\n{o}");
    assert!(writer.wait().expect("writer").success());
    edge.stop(false);
    origin.stop(false);
    // An edge reads no ring.
    let refused = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args(["serve", "--source", &url, "--ring"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no --ring"), "{err}");
    let _ = std::fs::remove_file(&path);
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|a| a.as_os_str()).collect()
}

/// A `--nats-creds` file holding `text`, readable by its owner only.
fn creds_file(text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch_dir().join(unique_name("nats-creds"));
    std::fs::write(&path, text).expect("write the creds file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

#[test]
fn the_cli_origin_and_edge_log_in_with_a_user_and_password_from_a_creds_file() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start_with_auth("user: rg\npassword: \"pw 1\"");
    let good = creds_file("user = \"rg\"\npassword = \"pw 1\"\n");
    let path = ring_path("nats-creds-cli");
    let mut writer = ringgate_write(&path, 2_000, 3);
    let url = nats.url();
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--no-pin",
        "--nats-max-gib",
        "1",
        "--nats-creds",
    ];
    let with = |more: &[&std::ffi::OsStr]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = base.iter().map(|a| a.into()).collect();
        v.push(good.clone().into());
        v.extend(more.iter().map(|a| a.to_os_string()));
        v
    };
    let origin_args = with(&[
        "--ring".as_ref(),
        path.as_os_str(),
        "--publish".as_ref(),
        url.as_ref(),
    ]);
    let edge_args = with(&["--source".as_ref(), url.as_ref()]);
    let origin = ServeProcess::start(&refs(&origin_args));
    let edge = ServeProcess::start(&refs(&edge_args));
    wait_until("the edge serves frames", || {
        json_u64(&edge.get("/v1/status", "").1, "server_seqno") > 100
    });
    let (_, o) = origin.get("/v1/status", "");
    let (_, e) = edge.get("/v1/status", "");
    assert_eq!(json_u64(&e, "epoch"), json_u64(&o, "epoch"), "{e}\n{o}");
    let (_, metrics) = origin.get("/metrics", "");
    assert!(
        metrics.contains("ringgate_bus_auth_refused_total 0\n"),
        "{metrics}"
    );
    assert!(writer.wait().expect("writer").success());
    edge.stop(false);
    origin.stop(false);
    let creds = creds::read(&good).expect("the creds file");
    let frames = read_stream_as(&url, Some(&creds), "RINGGATE");
    assert!(frames.len() > 100, "the stream holds the origin's frames");
    // Without the file, the same server refuses the edge at once, saying so.
    let refused = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-pin",
            "--source",
            &url,
        ])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("credentials refused") && err.contains("Authorization Violation"),
        "{err}"
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&good);
}

#[test]
fn a_token_from_a_creds_file_carries_the_origin_and_the_edge() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start_with_auth("token: \"t0k3n\"");
    let token = creds_file("token = \"t0k3n\"\n");
    let path = ring_path("nats-creds-token");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let origin = start_gateway(origin_config(&path, &nats, Some(&token)));
    let edge = start_gateway(edge_config(&nats, Some(&token)));
    assert!(writer.wait().expect("writer").success());
    let head = settle_origin(&origin);
    settle_edge(&edge, head);
    let creds = Credentials::Token("t0k3n".into());
    let frames = read_stream_as(&nats.url(), Some(&creds), "RINGGATE");
    assert_every_frame_once_in_order(&frames, origin.stats().epoch, head);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&token);
}

#[test]
fn refused_credentials_are_counted_and_logged_while_the_origin_serves_its_clients() {
    let _serial = one_at_a_time();
    let nats = NatsServer::start_with_auth("user: rg\npassword: right");
    let wrong = creds_file("user = \"rg\"\npassword = \"wrong\"\n");
    let path = ring_path("nats-creds-wrong");
    let mut writer = ringgate_write(&path, 2_000, 3);
    let origin = start_gateway(origin_config(&path, &nats, Some(&wrong)));
    let bus = server(&origin).bus_stats().expect("publishing").clone();
    wait_until("the server refused the credentials twice", || {
        bus.auth_refused.load(Ordering::Relaxed) >= 2
    });
    // The origin's own clients are served all the while.
    let mut client = WsClient::connect(origin.addr, "/v1/ws");
    let got_events = (0..50).any(|_| match client.next() {
        ServerFrame::Json(v) => sonic_rs::JsonValueTrait::get(&v, "Events").is_some(),
        other => panic!("{other:?}"),
    });
    assert!(got_events, "the origin serves events");
    assert_eq!(bus.acked.load(Ordering::Relaxed), 0);
    assert_eq!(bus.connects.load(Ordering::Relaxed), 0);
    let (_, metrics) = RawClient::request(origin.addr, "GET /metrics HTTP/1.1\r\n\r\n")
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .expect("a response");
    let refused = bus.auth_refused.load(Ordering::Relaxed);
    assert!(refused >= 2);
    assert!(
        metrics.contains("ringgate_bus_auth_refused_total ")
            && !metrics.contains("ringgate_bus_auth_refused_total 0\n"),
        "{metrics}"
    );
    // An edge with the wrong credentials does not start, and says why.
    let Err(err) = ringgate::server::start(edge_config(&nats, Some(&wrong))) else {
        panic!("the edge is refused");
    };
    let err = err.to_string();
    assert!(
        err.contains("credentials refused") && err.contains("--nats-creds"),
        "{err}"
    );
    assert!(writer.wait().expect("writer").success());
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&wrong);
}

#[test]
fn a_bad_creds_file_is_refused_at_startup_with_what_is_wrong() {
    use std::os::unix::fs::PermissionsExt;
    let malformed = creds_file("rg:secret\n");
    let open = creds_file("token = \"t\"\n");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let nkey = creds_file(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\nSUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n\
         ------END USER NKEY SEED------\n",
    );
    let good = creds_file("token = \"t\"\n");
    // No nats-server needed: the file is checked before any connection.
    let cases = [
        (&malformed, "nats://127.0.0.1:1", "not valid TOML"),
        (&open, "nats://127.0.0.1:1", "other users can read it"),
        (&nkey, "nats://127.0.0.1:1", "NKey/JWT credentials file"),
        (
            &good,
            "nats://u:p@127.0.0.1:1",
            "both in a NATS URL and in --nats-creds",
        ),
    ];
    for (file, url, why) in cases {
        for role in ["--source", "--publish"] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringgate"));
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-pin", role, url]);
            if role == "--publish" {
                cmd.args(["--ring", "/nonexistent-ring"]);
            }
            let out = cmd.arg("--nats-creds").arg(file).output().expect("run");
            assert!(!out.status.success(), "{role} {why}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(why), "{role} {why}: {err}");
            assert!(
                err.contains(&file.display().to_string()) || why.contains("URL"),
                "{err}"
            );
        }
    }
    // A creds file with nothing to log in to is a mistake too.
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-pin",
            "--ring",
            "/nonexistent-ring",
        ])
        .arg("--nats-creds")
        .arg(&good)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--nats-creds without --publish or --source"),
        "{err}"
    );
    for f in [malformed, open, nkey, good] {
        let _ = std::fs::remove_file(f);
    }
}
