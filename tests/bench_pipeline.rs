//! The end-to-end benchmark's own parts, tested: the load client's WebSocket core, scanner,
//! process metrics and report (their unit tests live beside the code in benches/pipeline/ and
//! run here, because the bench target is built without the test harness), the load client
//! against a real WebSocket server, and the baseline and floor servers against a real ring.

#![allow(dead_code)]

#[path = "../benches/pipeline/baseline.rs"]
mod baseline;
#[path = "../benches/pipeline/baseline_filter.rs"]
mod baseline_filter;
#[path = "../benches/pipeline/baseline_source.rs"]
mod baseline_source;
#[path = "../benches/pipeline/epoll.rs"]
mod epoll;
#[path = "../benches/pipeline/floor.rs"]
mod floor;
#[path = "../benches/pipeline/load_client.rs"]
mod load_client;
#[path = "../benches/pipeline/probe.rs"]
mod probe;
#[path = "../benches/pipeline/process.rs"]
mod process;
#[path = "../benches/pipeline/report.rs"]
mod report;
#[path = "../benches/pipeline/scan.rs"]
mod scan;
#[path = "../benches/pipeline/ws.rs"]
mod ws;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use load_client::{realtime_ns, ClientSpec, LoadClient, LoadConfig, LoadResult};
use tungstenite::Message;

/// A blocking tungstenite server for `conns` connections: each waits for the client's
/// subscribe message, then sends `frames`, then reads until the client goes away.
fn scripted_server(conns: usize, frames: Vec<String>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..conns {
            let (stream, _) = listener.accept().unwrap();
            let frames = frames.clone();
            std::thread::spawn(move || {
                let mut ws = tungstenite::accept(stream).unwrap();
                let first = ws.read().unwrap();
                assert!(
                    first.is_text(),
                    "client's first message is its subscription"
                );
                for f in frames {
                    ws.send(Message::text(f)).unwrap();
                }
                while ws.read().is_ok() {}
            });
        }
    });
    addr
}

fn events_frame(server_seqno: u64, ring_seqnos: &[u64], ts: u64) -> String {
    let events: Vec<String> = ring_seqnos
        .iter()
        .map(|s| format!(r#"{{"event_name":"TxnEnd","payload":{{"type":"TxnEnd"}},"seqno":{s},"timestamp_ns":{ts}}}"#))
        .collect();
    format!(
        r#"{{"server_seqno":{server_seqno},"Events":[{}]}}"#,
        events.join(",")
    )
}

/// Connects `cfg`'s clients and measures from now for `window`.
fn run_for(cfg: &LoadConfig, window: Duration) -> LoadResult {
    let client = LoadClient::connect(cfg).unwrap();
    let start = Instant::now();
    client.measure(start, start + window).unwrap()
}

#[test]
fn load_client_counts_events_latency_drops_and_seqno_disorder_per_connection() {
    let ts = realtime_ns();
    let big: Vec<u64> = (10..3010).collect(); // one frame past 64 KiB: the 64-bit length form
    let frames = vec![
        events_frame(1, &[1, 2], ts),
        events_frame(2, &big, ts),
        events_frame(2, &[3], ts), // not above the previous: one violation
        r#"{"server_seqno":3,"Warning":{"type":"backpressure","dropped":1000}}"#.to_string(),
        r#"{"server_seqno":4,"TPS":7}"#.to_string(),
    ];
    let addr = scripted_server(2, frames);
    let spec = ClientSpec::new("/v1/ws", Some(r#"{"subscribe":["TxnEnd"]}"#.into()));
    let cfg = LoadConfig {
        threads: 2,
        ..LoadConfig::new(addr, vec![spec.clone(), spec])
    };
    let r = run_for(&cfg, Duration::from_secs(1));
    assert_eq!(r.conns.len(), 2);
    for c in &r.conns {
        assert_eq!(c.events, 3003);
        assert_eq!(c.event_frames, 3);
        assert_eq!(c.frames, 5);
        assert_eq!(c.warnings, 1);
        assert_eq!(c.dropped, 1000);
        assert_eq!(c.seqno_violations, 1);
        assert_eq!(c.unrecognised, 0);
        assert!(c.bytes > 3000 * 80, "wire bytes counted: {}", c.bytes);
    }
    assert_eq!(r.latency.len(), 2 * 3003);
    assert!(r.latency.min() > 0);
}

#[test]
fn stuck_clients_connect_and_subscribe_but_are_not_read() {
    let addr = scripted_server(2, vec![events_frame(1, &[1], realtime_ns())]);
    let spec = ClientSpec::new("/v1/ws", Some("{}".into()));
    let cfg = LoadConfig {
        stuck: vec![spec.clone()],
        ..LoadConfig::new(addr, vec![spec])
    };
    let r = run_for(&cfg, Duration::from_millis(300));
    assert_eq!((r.conns.len(), r.stuck), (1, 1));
    assert_eq!(r.conns[0].events, 1);
}

#[test]
fn handshake_refusal_is_a_connect_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });
    let err = LoadClient::connect(&LoadConfig::new(addr, vec![ClientSpec::new("/nope", None)]))
        .unwrap_err();
    assert!(
        matches!(err, load_client::LoadError::Handshake { .. }),
        "{err}"
    );
}

/// A fresh ring in the scratch directory with events written by a background thread until
/// the returned writer is stopped (the writer keeps the file until the thread ends), so the
/// clients of a slow-starting server still see events.
fn ring_with_writer() -> (RemoveOnDrop, Writer) {
    use ringgate::ingest::ring::layout::RingSizes;
    use ringgate::model::kind::EventType;
    let path = ringgate::ingest::ring::scratch_dir().join(format!(
        "bench-pipeline-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let sizes = RingSizes {
        descriptor_capacity: 1 << 16,
        payload_buf_size: 1 << 27,
        context_area_size: 0,
    };
    let mut w = ringgate::ingest::ring::RingWriter::create(&path, sizes).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    // Writes in small bursts, so events reach whichever clients are subscribed by then.
    let thread = std::thread::spawn(move || {
        let mut written = 0u64;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..100 {
                w.write_event(EventType::TxnEnd.code(), [0; 4], &[], realtime_ns());
            }
            written += 100;
            std::thread::sleep(Duration::from_millis(5));
        }
        written
    });
    (RemoveOnDrop(path), Writer { stop, thread })
}

/// The writer thread of [`ring_with_writer`].
struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Writer {
    /// Stops writing; returns how many events were written.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Deletes the ring file even when an assertion fails first.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn baseline_serves_a_ring_to_firehose_and_filtered_clients_in_strict_seqno_order() {
    let (ring, writer) = ring_with_writer();
    let addr = process::free_loopback_addr().unwrap();
    let ring_for_server = ring.0.clone();
    std::thread::spawn(move || baseline::serve(&ring_for_server, addr, Some(1)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "baseline never listened");
        std::thread::yield_now();
    }
    let clients = vec![
        ClientSpec::new("/v1/ws", None),
        // The channel filters from the first event; a subscribe message would race them.
        ClientSpec::new("/v1/ws/blocks", None),
    ];
    let r = run_for(&LoadConfig::new(addr, clients), Duration::from_secs(1));
    let (fire, narrow) = (&r.conns[0], &r.conns[1]);
    assert!(fire.events > 0, "firehose got nothing: {fire:?}");
    assert_eq!(fire.seqno_violations, 0);
    assert_eq!(fire.unrecognised, 0);
    assert!(fire.ended.is_none(), "{fire:?}");
    assert_eq!(
        narrow.events, 0,
        "a blocks-channel client got TxnEnd events"
    );
    assert_eq!(r.latency.len(), fire.events);
    assert!(probe::ring_last_seqno(&ring.0).is_some_and(|written| written >= fire.events));
    let counters = probe::gateway_counters(addr).expect("baseline serves /metrics");
    assert!(counters.head_ring_seqno >= fire.events);
    assert!(writer.stop() >= fire.events);
}

#[test]
fn floor_serves_a_ring_to_firehose_and_filtered_clients_in_strict_seqno_order() {
    let (ring, writer) = ring_with_writer();
    let addr = process::free_loopback_addr().unwrap();
    let ring_for_server = ring.0.clone();
    let floor_thread = std::thread::spawn(move || floor::serve(&ring_for_server, addr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "floor never listened");
        std::thread::yield_now();
    }
    let clients = vec![
        ClientSpec::new("/v1/ws", None),
        ClientSpec::new("/v1/ws/blocks", None),
        ClientSpec::new("/v1/ws", Some(r#"{"subscribe":["BlockStart"]}"#.into())),
    ];
    let r = run_for(&LoadConfig::new(addr, clients), Duration::from_secs(1));
    let (fire, blocks, starts) = (&r.conns[0], &r.conns[1], &r.conns[2]);
    assert!(fire.events > 0, "firehose got nothing: {fire:?}");
    assert_eq!(fire.seqno_violations, 0);
    assert_eq!(fire.unrecognised, 0);
    assert!(fire.ended.is_none(), "{fire:?}");
    assert_eq!(
        blocks.events, 0,
        "a blocks-channel client got TxnEnd events"
    );
    assert!(
        starts.events < fire.events,
        "a BlockStart subscriber got every event: {starts:?}"
    );
    assert_eq!(r.latency.len(), fire.events + starts.events);
    let counters = probe::gateway_counters(addr).unwrap_or_else(|| {
        let ended = floor_thread.is_finished().then(|| floor_thread.join());
        panic!("the floor did not answer /metrics; its thread ended: {ended:?}")
    });
    assert!(counters.head_ring_seqno >= fire.events);
    assert!(writer.stop() >= fire.events);
}
