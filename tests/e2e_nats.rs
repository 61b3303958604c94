//! Scale-out over NATS JetStream, end to end with a real `nats-server -js` (started here on a
//! free port) and a real ring written by `ringgate write`: the origin publishes every frame
//! once, in order; edges serve the stream with the origin's epoch and seqnos; failures of
//! the bus, an edge or the origin lose nothing silently and serve nothing twice.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::nats::{read_stream, NatsServer};
use common::*;
use ringgate::history::record;
use ringgate::ingest::ring::scratch_dir;
use ringgate::model::outbound::Outbound;

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

fn ring_path(tag: &str) -> PathBuf {
    scratch_dir().join(unique_name(tag))
}

/// Checks that `frames` are `1..=head` exactly once each, in order, of `epoch`, with the
/// headers and subject that go with each record.
fn assert_every_frame_once_in_order(frames: &[common::nats::StreamFrame], epoch: u64, head: u64) {
    let seqnos: Vec<u64> = frames.iter().map(|f| f.seqno).collect();
    let expected: Vec<u64> = (1..=head).collect();
    assert_eq!(seqnos, expected, "every frame once, in seqno order");
    let mut originals = record::Originals::new();
    for f in frames {
        assert_eq!(f.epoch, epoch);
        assert_eq!(f.msg_id, format!("{epoch}:{}", f.seqno));
        assert!(
            f.subject.starts_with(&format!("RINGGATE.{epoch}.")),
            "{}",
            f.subject
        );
        let mut unresolved = Vec::new();
        let decoded = record::decode_lenient(&f.body, &mut originals, &mut unresolved)
            .expect("the body is the frame's record");
        assert!(unresolved.is_empty(), "a copy's original came before it");
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

#[test]
fn the_origin_publishes_every_frame_once_in_seqno_order() {
    let nats = NatsServer::start();
    let path = ring_path("nats-origin");
    let mut writer = ringgate_write(&path, 4_000, 2);
    let mut config = test_config_for(&path);
    config.nats.publish = vec![nats.url()];
    config.nats.max_bytes = 256 << 20;
    let mut gw = start_gateway(config);
    assert!(writer.wait().expect("writer").success());
    let server = gw.server.as_ref().expect("running");
    let hub = server.stats().clone();
    let bus = server.bus_stats().expect("publishing").clone();
    // The writer is done: once the head stops moving and every frame up to it is acked,
    // the stream holds everything the origin made.
    let mut last = u64::MAX;
    wait_until("every frame is acked", || {
        let head = hub.tailer.head_server_seqno.load(Ordering::Relaxed);
        let settled = head == last && bus.acked.load(Ordering::Relaxed) == head;
        last = head;
        std::thread::sleep(Duration::from_millis(50));
        settled
    });
    let head = last;
    assert!(head > 4_000, "the ring's events and their frames: {head}");
    assert_eq!(bus.queue_lost.load(Ordering::Relaxed), 0);
    let frames = read_stream(&nats.url(), "RINGGATE");
    assert_every_frame_once_in_order(&frames, hub.epoch, head);
    let streams: HashSet<u64> = frames.iter().map(|f| f.stream_seq).collect();
    assert_eq!(streams.len(), frames.len(), "one stream message per frame");
    gw.shutdown();
    let _ = std::fs::remove_file(&path);
}
