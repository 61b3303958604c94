//! Priority lanes end to end: a real `ringgate serve` on a ring written by a real
//! `ringgate write`, and real WebSocket clients over real sockets.
//!
//! - A fast client (the reference) receives every ring event: nothing was shed for it.
//! - A firehose client that reads a few percent of the stream (a tiny receive buffer, a few
//!   hundred bytes per millisecond) receives every block-level event, is never closed, and
//!   the `Shed` reports it gets cover exactly what it did not receive: no delivered event of
//!   a lane lies inside a report of that lane, the counts are exact, every event below its
//!   last delivered one is delivered or reported, and a resume from its cursor supplies the
//!   rest (every ring seqno accounted for, none twice).
//! - A client that never reads overflows even the top lane and is closed with 1008, after a
//!   last `Warning`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use ringgate::model::kind::EventType;
use ringgate::model::lane::{Lane, LaneMap};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use tungstenite::{Message, WebSocket};

/// A socket that hands the WebSocket reader at most `chunk` bytes per `pause`.
struct Throttled {
    inner: TcpStream,
    chunk: usize,
    pause: Duration,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

impl Write for Throttled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What one connection received.
#[derive(Default)]
struct Received {
    /// Ring seqno → event name, of every delivered event.
    events: BTreeMap<u64, String>,
    /// `Shed` reports: (lane, ring_from, ring_to, dropped).
    shed: Vec<(Lane, u64, u64, u64)>,
    /// Ring ranges of `Gap` frames (losses upstream of the session).
    gaps: Vec<(u64, u64)>,
    warnings: usize,
    /// The last `server_seqno` of any frame (an SDK's resume cursor) and the epoch.
    cursor: u64,
    epoch: u64,
    close: Option<u16>,
}

impl Received {
    /// Reads frames until the connection is idle for `idle` after its first event (or
    /// closed).
    fn read<S: Read + Write>(ws: &mut WebSocket<S>, idle: Duration) -> Received {
        let mut r = Received::default();
        let mut last_seqno = 0;
        let mut last_frame = Instant::now();
        loop {
            let v: Value = match ws.read() {
                Ok(Message::Text(t)) => sonic_rs::from_str(t.as_str()).expect("JSON"),
                Ok(Message::Close(c)) => {
                    r.close = Some(c.map_or(1005, |c| u16::from(c.code)));
                    return r;
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    // Before the first event the ring may not even exist yet.
                    let limit = if r.events.is_empty() { DEADLINE } else { idle };
                    if last_frame.elapsed() >= limit {
                        return r;
                    }
                    continue;
                }
                Err(e) => panic!("connection failed: {e}"),
            };
            last_frame = Instant::now();
            let seqno = seqno_of(&v);
            assert!(seqno >= last_seqno, "server_seqno went back");
            last_seqno = seqno;
            r.cursor = seqno;
            match kind_of(&v).as_str() {
                "Hello" => r.epoch = v["Hello"]["epoch"].as_u64().expect("epoch"),
                "Events" => {
                    for e in v["Events"].as_array().expect("events").iter() {
                        let ring = e["seqno"].as_u64().expect("seqno");
                        let name = e["event_name"].as_str().expect("name").to_owned();
                        assert!(r.events.insert(ring, name).is_none(), "{ring} twice");
                    }
                }
                "Shed" => {
                    let s = &v["Shed"];
                    let lane = Lane::from_name(s["lane"].as_str().expect("lane")).expect("lane");
                    let field = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k}: {s:?}"));
                    r.shed.push((
                        lane,
                        field("ring_from_seqno"),
                        field("ring_to_seqno"),
                        field("dropped"),
                    ));
                }
                "Gap" => {
                    let g = &v["Gap"];
                    if let (Some(a), Some(b)) =
                        (g["ring_from_seqno"].as_u64(), g["ring_to_seqno"].as_u64())
                    {
                        r.gaps.push((a, b));
                    }
                }
                "Warning" => r.warnings += 1,
                _ => {}
            }
        }
    }

    fn shed_covers(&self, lane: Lane, ring: u64) -> bool {
        self.shed
            .iter()
            .any(|&(l, a, b, _)| l == lane && (a..=b).contains(&ring))
    }
}

fn ws_over<S: Read + Write>(stream: S, addr: SocketAddr, path: &str) -> WebSocket<S> {
    tungstenite::client(format!("ws://{addr}{path}").as_str(), stream)
        .expect("upgrade")
        .0
}

/// Connects a client that reads as fast as it can, and reads until the stream is idle.
fn connect_reader(addr: SocketAddr, path: &str) -> Received {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    Received::read(&mut ws_over(stream, addr, path), IDLE)
}

fn lane_of(name: &str) -> Lane {
    LaneMap::DEFAULT.lane(EventType::from_name(name).expect("an event name"))
}

#[test]
fn a_firehose_client_reading_a_few_percent_keeps_every_block_event_and_is_told_the_rest() {
    let (dir, ring, serve) = serve_on_new_ring("firehose", "256");
    let addr = serve.addr;
    // Both clients connect before the first event, so each is owed every ring seqno.
    let slow_stream = connect_small_receive_buffer(addr);
    slow_stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let slow = Throttled {
        inner: slow_stream,
        chunk: 512,
        pause: Duration::from_millis(1),
    };
    let mut slow = ws_over(slow, addr, "/v1/ws?extended=1");
    let slow_thread = std::thread::spawn(move || Received::read(&mut slow, IDLE));

    let writer = std::process::Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args(["write", "--rate", "20000", "--duration", "4", "--ring"])
        .arg(&ring)
        .output()
        .expect("ringgate write");
    assert!(writer.status.success(), "{writer:?}");
    // A debug gateway on a shared machine may read the ring seconds behind the writer.
    wait_tailer_idle(&serve);
    let slow = slow_thread.join().expect("slow reader");

    // The reference: the whole stream replayed from the history (a replay is paced by the
    // socket and never sheds), every ring event, nothing lost.
    let fast = connect_reader(
        addr,
        &format!("/v1/ws?extended=1&resume_from=0&epoch={}", slow.epoch),
    );
    let last_ring = *fast
        .events
        .keys()
        .last()
        .expect("the fast client got events");

    // The reference: every ring event, in full, nothing shed or lost.
    assert!(
        fast.shed.is_empty() && fast.gaps.is_empty() && fast.warnings == 0,
        "the reference lost frames: {} shed reports, gaps {:?}, {} warnings",
        fast.shed.len(),
        fast.gaps,
        fast.warnings
    );
    assert_eq!(
        fast.events.keys().copied().collect::<Vec<_>>(),
        (1..=last_ring).collect::<Vec<_>>(),
        "the fast client missed ring events"
    );

    // The firehose client: open, every block-level event, most of the rest shed.
    assert_eq!(slow.close, None, "the slow client was closed");
    assert_eq!(slow.warnings, 0, "the top lane never overflowed for it");
    assert!(slow.gaps.is_empty());
    let share = slow.events.len() as f64 / fast.events.len() as f64;
    eprintln!(
        "slow client: {} of {} events ({:.1} %), {} Shed reports",
        slow.events.len(),
        fast.events.len(),
        share * 100.0,
        slow.shed.len()
    );
    assert!(
        !slow.shed.is_empty() && share < 0.5,
        "nothing much was shed"
    );
    for (ring, name) in &fast.events {
        if lane_of(name) == Lane::Block {
            assert_eq!(
                slow.events.get(ring),
                Some(name),
                "block event {ring} missing"
            );
        }
    }
    // Exact reports: no delivered event inside a report of its lane; each report's count is
    // the number of events of its lane it covers, none counted twice.
    let delivered_in_lane = |lane: Lane, a: u64, b: u64| {
        slow.events
            .range(a..=b)
            .filter(|(_, n)| lane_of(n) == lane)
            .count()
    };
    let mut covered: BTreeMap<Lane, BTreeSet<u64>> = BTreeMap::new();
    let mut counted: BTreeMap<Lane, u64> = BTreeMap::new();
    for &(lane, a, b, dropped) in &slow.shed {
        assert_ne!(lane, Lane::Block, "the top lane is never shed");
        assert_eq!(delivered_in_lane(lane, a, b), 0, "{lane:?} {a}..={b}");
        *counted.entry(lane).or_default() += dropped;
        let set = covered.entry(lane).or_default();
        set.extend(
            fast.events
                .range(a..=b)
                .filter(|(_, n)| lane_of(n) == lane)
                .map(|(r, _)| *r),
        );
    }
    for lane in [Lane::Txn, Lane::Detail] {
        let c = covered.get(&lane).map_or(0, |s| s.len() as u64);
        assert_eq!(
            counted.get(&lane).copied().unwrap_or(0),
            c,
            "{lane:?} count"
        );
    }
    // The cursor never passed an unannounced loss.
    let last_delivered = *slow.events.keys().last().expect("delivered");
    for (&ring, name) in fast.events.range(..last_delivered) {
        assert!(
            slow.events.contains_key(&ring) || slow.shed_covers(lane_of(name), ring),
            "{ring} ({name}) neither delivered nor reported"
        );
    }

    // A resume from the slow client's cursor (another connection) supplies what follows it:
    // every ring seqno is then delivered or reported, and none twice.
    let resumed = connect_reader(
        addr,
        &format!(
            "/v1/ws?extended=1&resume_from={}&epoch={}",
            slow.cursor, slow.epoch
        ),
    );
    for (ring, name) in &fast.events {
        let delivered = slow.events.contains_key(ring);
        let replayed = resumed.events.contains_key(ring);
        assert!(!(delivered && replayed), "{ring} delivered twice");
        assert!(
            delivered || replayed || slow.shed_covers(lane_of(name), *ring),
            "{ring} ({name}) unaccounted"
        );
    }

    serve.stop(false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_that_cannot_keep_up_with_the_top_lane_is_closed_with_1008() {
    let dir = std::env::temp_dir().join(format!("ringgate-lanes-stuck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ring = dir.join("ring");
    let _ = std::fs::remove_file(&ring);
    let mut writer = std::process::Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args(["write", "--rate", "20000", "--duration", "60", "--ring"])
        .arg(&ring)
        .spawn()
        .expect("ringgate write");
    wait_until("the writer created the ring", || ring.exists());
    // In process, for a small socket send buffer: the kernel then holds only a few frames
    // for a client that does not read, and the session queue has to take the rest.
    let gw = start_gateway(ringgate::config::Config {
        session_queue_frames: 16,
        drop_disconnect_after: 3,
        socket_send_buffer: Some(4 * 1024),
        close_grace: Duration::from_secs(120),
        ..test_config_for(&ring)
    });
    // Never reads until the end: the lower lanes are shed, then the top lane overflows.
    let mut stuck = ws_over(
        connect_small_receive_buffer(gw.addr),
        gw.addr,
        "/v1/ws?extended=1",
    );
    wait_until("the stuck client was closed", || {
        gw.stats().sum(|s| &s.slow_disconnects) == 1
    });
    writer.kill().expect("stop the writer");
    let _ = writer.wait();
    stuck
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let stuck = Received::read(&mut stuck, IDLE);
    eprintln!(
        "stuck client: {} events, {} shed reports, {} warnings, close {:?}",
        stuck.events.len(),
        stuck.shed.len(),
        stuck.warnings,
        stuck.close
    );
    assert_eq!(
        stuck.close,
        Some(1008),
        "not closed for the top lane's overflow"
    );
    assert!(stuck.warnings >= 1, "no Warning before the close");
    assert!(
        gw.stats().sum(|s| &s.shed) > 0,
        "the lower lanes were shed first"
    );
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringgate serve` (one shard, a session queue of `queue` frames, closed at the third
/// top-lane drop) on a ring `ringgate write` has not created yet; (dir, ring, server).
fn serve_on_new_ring(
    tag: &str,
    queue: &str,
) -> (std::path::PathBuf, std::path::PathBuf, ServeProcess) {
    let dir = std::env::temp_dir().join(format!("ringgate-lanes-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ring = dir.join("ring");
    let _ = std::fs::remove_file(&ring);
    let serve = ServeProcess::start(&[
        "--ring".as_ref(),
        ring.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--shards".as_ref(),
        "1".as_ref(),
        "--no-pin".as_ref(),
        "--session-queue".as_ref(),
        queue.as_ref(),
        "--drop-limit".as_ref(),
        "3".as_ref(),
        "--close-grace-secs".as_ref(),
        "120".as_ref(),
    ]);
    (dir, ring, serve)
}

/// Waits until the server's tailer has read everything written (its head stops moving).
fn wait_tailer_idle(serve: &ServeProcess) {
    let head = || {
        let (status, body) = serve.get("/v1/status", "");
        assert_eq!(status, 200, "{body}");
        let v: Value = sonic_rs::from_str(&body).expect("status JSON");
        v["head_ring_seqno"].as_u64().unwrap_or(0)
    };
    let mut last = head();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = head();
        if now == last && now > 0 {
            return;
        }
        last = now;
    }
}

/// How long a reader waits on a silent connection before it takes the stream as ended.
const IDLE: Duration = Duration::from_secs(3);
