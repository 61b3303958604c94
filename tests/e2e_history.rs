//! Durable history end to end: a real `ringgate serve` process with `--history-dir` over a
//! real ring file, stopped with SIGTERM or killed with SIGKILL and started again while the
//! writer goes on; a client resuming with its old cursor gets every ring event exactly once
//! across the restart (same epoch, `mode: "resume"`, `recovered: true`), or, when the ring
//! lapped while the gateway was down, one `ring_lapped` Gap naming exactly the events it
//! missed. Plus the in-memory history: a client away while far more frames pass than any
//! shard keeps resumes exactly from the shared history.

mod common;
mod resume_support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use resume_support::*;
use ringgate::model::kind::EventType;
use sonic_rs::{JsonValueTrait, Value};

fn history_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringgate-history-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `ringgate serve` over `ring` with its journal in `dir`, once its tailer reads the ring
/// (events written before that are not the gateway's: a first start begins at the newest
/// block).
fn serve(ring: &Path, dir: &Path) -> ServeProcess {
    let gw = spawn_serve(ring, dir);
    wait_until("the tailer attached", || {
        status(&gw).get("ring").and_then(|r| r.as_str()) == Some("live")
    });
    gw
}

fn spawn_serve(ring: &Path, dir: &Path) -> ServeProcess {
    let args: Vec<&OsStr> = vec![
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--no-pin"),
        OsStr::new("--shards"),
        OsStr::new("1"),
        OsStr::new("--ring"),
        ring.as_os_str(),
        OsStr::new("--history-dir"),
        dir.as_os_str(),
    ];
    ServeProcess::start(&args)
}

fn status(gw: &ServeProcess) -> Value {
    let (code, body) = gw.get("/v1/status", "");
    assert_eq!(code, 200, "{body}");
    sonic_rs::from_str(&body).expect("status JSON")
}

fn status_u64(gw: &ServeProcess, field: &str) -> u64 {
    status(gw)
        .get(field)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("status has no {field}"))
}

/// A counter of the status's `history` object (0 when absent).
fn history_u64(gw: &ServeProcess, field: &str) -> u64 {
    status(gw)
        .get("history")
        .and_then(|h| h.get(field))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// The journal's segment files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("history dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    segments
}

/// A new live client gets new events: the gateway still serves.
fn still_serves(gw: &ServeProcess, ring: &mut TestRing) {
    let mut live = connect(gw, "");
    let _ = live.next_json();
    let next = write_events(ring, 10);
    Seen::default().read_until_ring(&mut live, next);
}

/// Waits until the gateway has read ring event `seqno`.
fn wait_read(gw: &ServeProcess, seqno: u64) {
    wait_until("the gateway read the ring", || {
        status_u64(gw, "head_ring_seqno") >= seqno
    });
}

fn write_events(ring: &mut TestRing, n: u64) -> u64 {
    let mut last = 0;
    for _ in 0..n {
        last = ring.write_raw(EventType::TxnEnd.code(), &[]);
    }
    last
}

/// What a client saw: ring seqnos of events, in order, and the last server_seqno.
#[derive(Debug, Default)]
struct Seen {
    ring: Vec<u64>,
    last: u64,
    gaps: Vec<Value>,
}

impl Seen {
    /// Reads data frames until an event with ring seqno `until` arrives.
    fn read_until_ring(&mut self, c: &mut WsClient, until: u64) {
        loop {
            let v = c.next_json();
            let kind = kind_of(&v);
            if PER_CONNECTION.contains(&kind.as_str()) {
                assert_ne!(kind, "Warning", "{v:?}");
                continue;
            }
            let s = seqno_of(&v);
            assert!(s > self.last, "server_seqno went from {} to {s}", self.last);
            self.last = s;
            if kind == "Gap" {
                self.gaps.push(v);
                continue;
            }
            let seqnos = ring_seqnos(&v);
            let done = seqnos.contains(&until);
            self.ring.extend(seqnos);
            if done {
                return;
            }
        }
    }
}

fn connect(gw: &ServeProcess, query: &str) -> WsClient {
    WsClient::connect(gw.addr, &format!("/v1/ws?events=TxnEnd{query}"))
}

/// A restart of the gateway while the writer goes on, with a client that reads part of the
/// stream before, resumes with its cursor after, and must see every ring event once.
fn restart_keeps_every_event_once(tag: &str, kill: bool) {
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    // The gateway starts on an empty ring (a first start reads only from the newest block).
    let gw = serve(&ring.path, &dir);
    let first = write_events(&mut ring, 3_000);
    wait_read(&gw, first);
    let epoch = status_u64(&gw, "epoch");

    let mut seen = Seen::default();
    let mut c = connect(&gw, "&resume_from=0");
    seen.read_until_ring(&mut c, first);
    let more = write_events(&mut ring, 2_000);
    // The client reads only part of what follows, then the gateway goes away.
    seen.read_until_ring(&mut c, first + 1_000);
    wait_read(&gw, more);
    let before = status_u64(&gw, "server_seqno");
    gw.stop(kill);
    drop(c);

    // Written while the gateway is down; still in the ring when it comes back.
    let down = write_events(&mut ring, 2_000);
    let gw = serve(&ring.path, &dir);
    assert!(
        gw.log().contains("history_open"),
        "the start says what the history holds: {}",
        gw.log()
    );
    assert_eq!(status_u64(&gw, "epoch"), epoch, "the epoch survives");
    wait_read(&gw, down);
    assert!(status_u64(&gw, "server_seqno") > before, "seqnos continue");

    let mut c = connect(&gw, &format!("&resume_from={}&epoch={epoch}", seen.last));
    let hello = c.next_json();
    assert_eq!(kind_of(&hello), "Hello");
    let resume = c.next_of("Resume");
    let b = body(&resume, "Resume");
    assert_eq!(str_of(b, "mode"), Some("resume"), "{resume:?}");
    assert_eq!(b.get("recovered").and_then(|v| v.as_bool()), Some(true));
    seen.read_until_ring(&mut c, down);
    let last = write_events(&mut ring, 100);
    seen.read_until_ring(&mut c, last);

    assert!(seen.gaps.is_empty(), "no Gap: {:?}", seen.gaps);
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(
        seen.ring.len(),
        expected.len(),
        "every event once; first missing: {:?}\n{}",
        expected.iter().find(|s| !seen.ring.contains(s)),
        gw.log()
    );
    assert!(seen.ring == expected, "ring seqnos in order, none twice");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sigterm_restart_with_a_history_dir_loses_nothing_and_repeats_nothing() {
    restart_keeps_every_event_once("hist-term", false);
}

#[test]
fn a_sigkill_restart_with_a_history_dir_loses_nothing_and_repeats_nothing() {
    restart_keeps_every_event_once("hist-kill", true);
}

#[test]
fn a_ring_lapped_while_the_gateway_was_down_is_one_gap_with_the_exact_range() {
    let tag = "hist-lap";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let gw = serve(&ring.path, &dir);
    let first = write_events(&mut ring, 1_000);
    wait_read(&gw, first);
    let epoch = status_u64(&gw, "epoch");
    let mut seen = Seen::default();
    let mut c = connect(&gw, "&resume_from=0");
    seen.read_until_ring(&mut c, first);
    gw.stop(true);
    drop(c);

    // More than the ring's 65,536 descriptors: the journal's last event is overwritten.
    let down = write_events(&mut ring, 70_000);
    let gw = serve(&ring.path, &dir);
    assert_eq!(status_u64(&gw, "epoch"), epoch);
    let mut c = connect(&gw, &format!("&resume_from={}&epoch={epoch}", seen.last));
    seen.read_until_ring(&mut c, down);
    let gaps: Vec<&Value> = seen
        .gaps
        .iter()
        .filter(|g| {
            g.get("Gap")
                .and_then(|b| b.get("reason"))
                .and_then(|r| r.as_str())
                == Some("ring_lapped")
        })
        .collect();
    assert_eq!(gaps.len(), 1, "one ring_lapped Gap: {:?}", seen.gaps);
    let g = gaps[0].get("Gap").expect("body");
    let from = g
        .get("ring_from_seqno")
        .and_then(|v| v.as_u64())
        .expect("from");
    let to = g.get("ring_to_seqno").and_then(|v| v.as_u64()).expect("to");
    assert_eq!(
        from,
        first + 1,
        "the gap starts right after the last event served"
    );
    // Every ring event is either delivered once or inside the announced range.
    let mut covered = seen.ring.clone();
    covered.extend(from..=to);
    covered.sort_unstable();
    let expected: Vec<u64> = (1..=down).collect();
    assert!(
        covered == expected,
        "covered {} of {} (first {:?}, last {:?}); gap {from}..={to}",
        covered.len(),
        expected.len(),
        covered.first(),
        covered.last()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_journal_tail_is_truncated_and_no_seqno_is_served_twice() {
    let tag = "hist-torn";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let gw = serve(&ring.path, &dir);
    let first = write_events(&mut ring, 20_000);
    wait_read(&gw, first);
    let epoch = status_u64(&gw, "epoch");
    let mut seen = Seen::default();
    let mut c = connect(&gw, "&resume_from=0");
    seen.read_until_ring(&mut c, first);
    // Let the history seal everything (chunks seal within 250 ms), then kill.
    std::thread::sleep(Duration::from_millis(600));
    gw.stop(true);
    drop(c);

    // Tear the newest segment: cut its last 10 bytes, as a crash mid-write would.
    let segments = segments(&dir);
    let newest = segments.last().expect("a segment");
    let len = std::fs::metadata(newest).expect("segment").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .expect("open segment");
    f.set_len(len - 10).expect("truncate");
    drop(f);

    let after = write_events(&mut ring, 500);
    let gw = serve(&ring.path, &dir);
    assert!(
        gw.log().contains("torn_tail_bytes=") && !gw.log().contains("torn_tail_bytes=0 "),
        "the start reports the torn tail: {}",
        gw.log()
    );
    assert_eq!(status_u64(&gw, "epoch"), epoch);
    // A client that saw everything before the kill resumes: the seqnos the torn chunk held
    // are never reused for other frames, so the client gets only new events, once.
    let mut c = connect(&gw, &format!("&resume_from={}&epoch={epoch}", seen.last));
    let before = seen.ring.len();
    seen.read_until_ring(&mut c, after);
    let new: Vec<u64> = seen.ring[before..].to_vec();
    assert!(
        new.iter().all(|&s| s > first),
        "no event served before the kill comes again: {:?}",
        &new[..new.len().min(10)]
    );
    assert_eq!(new, (first + 1..=after).collect::<Vec<_>>());
    // A client resuming from the start gets every event once; whatever the tear took and
    // the write-ahead log could not give back is announced by a Gap, never silent.
    let mut fresh = Seen::default();
    let mut c = connect(&gw, &format!("&resume_from=0&epoch={epoch}"));
    fresh.read_until_ring(&mut c, after);
    let mut sorted = fresh.ring.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), fresh.ring.len(), "no event twice");
    let complete = fresh.ring == (1..=after).collect::<Vec<_>>();
    assert!(
        complete || !fresh.gaps.is_empty(),
        "{} of {after} events and no Gap",
        fresh.ring.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_away_while_far_more_frames_pass_than_a_shard_keeps_resumes_from_the_history() {
    let mut ring = TestRing::create("hist-away");
    let mut config = test_config(&ring);
    config.batch.max_events = 1;
    // Without the history the shards would keep 1,000 frames; the history keeps everything.
    config.resume_store_frames = 1_000;
    config.spsc_capacity = 16_384;
    let gw = start_gateway(config);
    let mut written = 0;
    for _ in 0..5 {
        for _ in 0..5_000 {
            written = ring.write_raw(EventType::TxnEnd.code(), &[]);
        }
        settle_tailer(&gw, written);
    }
    let mut c = WsClient::connect(gw.addr, "/v1/ws?events=TxnEnd");
    let hello = c.next_json();
    let cursor = seqno_of(&hello);
    drop(c);
    // Away while 40,000 more frames pass: 40x what a shard alone would keep.
    for _ in 0..8 {
        for _ in 0..5_000 {
            written = ring.write_raw(EventType::TxnEnd.code(), &[]);
        }
        settle_tailer(&gw, written);
    }
    // The shard keeps only what the history has not sealed yet: the replay must read the
    // history. A shard trims its store when a frame arrives, so on a loaded machine, where
    // the history thread may still be sealing, one more event at a time until it has.
    wait_until("the shard store holds less than was missed", || {
        written = ring.write_raw(EventType::TxnEnd.code(), &[]);
        settle_tailer(&gw, written);
        std::thread::sleep(Duration::from_millis(20));
        gw.stats().sum(|s| &s.resume_frames) < 40_000
    });
    let mut c = WsClient::connect(
        gw.addr,
        &format!(
            "/v1/ws?events=TxnEnd&resume_from={cursor}&epoch={}",
            epoch(&gw)
        ),
    );
    let (_, r) = opening(&mut c, true);
    let r = r.expect("Resume");
    assert_eq!(str_of(body(&r, "Resume"), "mode"), Some("resume"), "{r:?}");
    let items = read_until(&mut c, cursor, |i| {
        ring_seqnos(&sonic_rs::from_str(&i.1).unwrap()).contains(&written)
    });
    let seqnos: Vec<u64> = items
        .iter()
        .flat_map(|i| ring_seqnos(&sonic_rs::from_str(&i.1).unwrap()))
        .collect();
    let expected: Vec<u64> = (25_001..=written).collect();
    let gaps: Vec<&String> = items
        .iter()
        .map(|i| &i.1)
        .filter(|t| t.contains("\"Gap\""))
        .collect();
    assert!(gaps.is_empty(), "{gaps:?}");
    assert!(
        seqnos == expected,
        "{} of {} events; first missing {:?}",
        seqnos.len(),
        expected.len(),
        expected.iter().find(|s| !seqnos.contains(s))
    );
    let history = gw.stats().history.as_ref().expect("history on by default");
    assert!(history.window().chunks > 0);
    assert!(
        history
            .stats
            .frames
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 65_000
    );
}

#[test]
fn the_status_reports_the_window_in_seqnos_blocks_and_seconds() {
    let mut ring = TestRing::create("hist-status");
    let dir = history_dir("hist-status");
    let gw = serve(&ring.path, &dir);
    let last = write_events(&mut ring, 2_000);
    wait_read(&gw, last);
    wait_until("the history sealed a chunk", || {
        history_u64(&gw, "chunks") > 0
    });
    let s = status(&gw);
    let h = s.get("history").expect("history object");
    assert_eq!(h.get("storage").and_then(|v| v.as_str()), Some("disk"));
    assert!(h.get("disk_bytes").and_then(|v| v.as_u64()).unwrap_or(0) > 0);
    assert!(s
        .get("history_span_secs")
        .and_then(|v| v.as_f64())
        .is_some());
    assert_eq!(
        s.get("oldest_resumable_seqno").and_then(|v| v.as_u64()),
        Some(1)
    );
    let (_, metrics) = gw.get("/metrics", "");
    for name in [
        "ringgate_history_span_seconds",
        "ringgate_history_oldest_seqno",
        "ringgate_history_disk_bytes",
        "ringgate_history_frames_total",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringgate serve` that must refuse to start; returns its stderr.
fn refused(ring: &Path, dir: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-pin",
            "--shards",
            "1",
        ])
        .arg("--ring")
        .arg(ring)
        .arg("--history-dir")
        .arg(dir)
        .output()
        .expect("run serve");
    assert!(!out.status.success(), "serve must refuse {}", dir.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_history_dir_of_another_ring_or_a_file_is_refused_with_a_clear_error() {
    let ring = TestRing::create("hist-foreign");
    let other = TestRing::create("hist-foreign-other");
    let dir = history_dir("hist-foreign");
    {
        let gw = serve(&ring.path, &dir);
        drop(gw);
    }
    let err = refused(&other.path, &dir);
    assert!(err.contains("ring"), "names what differs: {err}");
    let file = history_dir("hist-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let err = refused(&ring.path, &file);
    assert!(
        err.contains(&file.display().to_string()),
        "names the path: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_history_dir_deleted_while_serving_costs_the_disk_copy_not_the_service() {
    let tag = "hist-deleted";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let gw = serve(&ring.path, &dir);
    let first = write_events(&mut ring, 2_000);
    wait_read(&gw, first);
    std::fs::remove_dir_all(&dir).expect("delete the history dir");
    let mut live = connect(&gw, "");
    let _hello = live.next_json();
    // Enough events for several chunks to be sealed after the deletion.
    let mut last = 0;
    for _ in 0..4 {
        last = write_events(&mut ring, 5_000);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_read(&gw, last);
    let mut seen = Seen::default();
    seen.read_until_ring(&mut live, last);
    assert!(
        seen.gaps.is_empty(),
        "live clients are unaffected: {:?}",
        seen.gaps
    );
    wait_until("the failed journal write is counted", || {
        history_u64(&gw, "disk_errors") > 0
    });
    assert!(gw.log().contains("history_write_failed"), "{}", gw.log());
    // What could not go to disk stays resumable from memory.
    let epoch = status_u64(&gw, "epoch");
    let mut c = connect(
        &gw,
        &format!("&resume_from={}&epoch={epoch}", seqno_of(&_hello)),
    );
    let mut resumed = Seen::default();
    resumed.read_until_ring(&mut c, last);
    assert!(resumed.gaps.is_empty(), "{:?}", resumed.gaps);
    assert_eq!(resumed.ring, seen.ring);
}

#[test]
fn a_flipped_byte_in_a_journal_segment_is_a_gap_on_replay_and_everything_else_is_served() {
    let tag = "hist-flip";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let gw = serve(&ring.path, &dir);
    let mut last = 0;
    for _ in 0..6 {
        last = write_events(&mut ring, 5_000);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_read(&gw, last);
    wait_until("several chunks are sealed", || {
        history_u64(&gw, "chunks") >= 3
    });
    // Flip a byte in the middle of the oldest segment, under the running gateway.
    let segments = segments(&dir);
    let mut bytes = std::fs::read(&segments[0]).expect("segment");
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0xff;
    std::fs::write(&segments[0], &bytes).expect("write segment");

    let epoch = status_u64(&gw, "epoch");
    let mut c = connect(&gw, &format!("&resume_from=0&epoch={epoch}"));
    let mut seen = Seen::default();
    seen.read_until_ring(&mut c, last);
    assert!(!seen.gaps.is_empty(), "the damaged chunk is announced");
    assert!(seen.ring.len() < last as usize && !seen.ring.is_empty());
    assert!(history_u64(&gw, "corrupt_chunks") > 0, "counted");
    still_serves(&gw, &mut ring);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_history_dir_of_another_chain_is_never_mixed_with_this_one() {
    use ringgate::tools::synth::generator::{Generator, SynthOptions};
    let tag = "hist-chain";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let chain = |id| {
        Generator::new(SynthOptions {
            chain_id: id,
            txns_per_block: 5,
            ..SynthOptions::default()
        })
    };
    let gw = serve(&ring.path, &dir);
    let last = ring.write_synth(&mut chain(143), 2_000);
    wait_read(&gw, last);
    // The identity file's chain id (docs/history-format.md: u64 LE at byte 24).
    let chain_of = |dir: &Path| {
        std::fs::read(dir.join("identity"))
            .ok()
            .and_then(|b| Some(u64::from_le_bytes(b.get(24..32)?.try_into().ok()?)))
    };
    wait_until("the chain id is journaled", || chain_of(&dir) == Some(143));
    gw.stop(true);

    // The node comes back on another chain, in a new ring at the same path.
    ring.restart_writer();
    let gw = serve(&ring.path, &dir);
    let last = ring.write_synth(&mut chain(10_143), 2_000);
    wait_read(&gw, last);
    let end = std::time::Instant::now() + DEADLINE;
    while !gw.log().contains("history_chain_mismatch") {
        assert!(
            std::time::Instant::now() < end,
            "no mismatch reported: {}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(chain_of(&dir), Some(143), "the journal keeps its chain");
    // The gateway serves the new chain from memory.
    still_serves(&gw, &mut ring);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn after_a_restart_on_a_quiet_ring_the_journal_is_resumable_at_once() {
    let tag = "hist-quiet";
    let mut ring = TestRing::create(tag);
    let dir = history_dir(tag);
    let gw = serve(&ring.path, &dir);
    let last = write_events(&mut ring, 1_000);
    wait_read(&gw, last);
    let epoch = status_u64(&gw, "epoch");
    gw.stop(false);
    // Nothing new in the ring: the restarted gateway's head is the journal's.
    let gw = serve(&ring.path, &dir);
    let mut c = connect(&gw, &format!("&resume_from=0&epoch={epoch}"));
    let _hello = c.next_json();
    let resume = c.next_of("Resume");
    let b = body(&resume, "Resume");
    assert_eq!(str_of(b, "mode"), Some("resume"), "{resume:?}");
    let mut seen = Seen::default();
    seen.read_until_ring(&mut c, last);
    assert_eq!(seen.ring, (1..=last).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}
