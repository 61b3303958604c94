//! The Rust client (clients/rust, crate `ringgate-client`) against a real `ringgate serve`
//! over a real ring: every kind and meta frame decodes to its type and serializes back to the
//! exact JSON the server sent (the synthetic chain plus hand-written rare kinds, and the real
//! mainnet snapshot); field filters; exact resume through a proxy that cuts the connection
//! mid-stream, after a restart of the client from a persisted cursor, and across a gateway
//! killed (SIGKILL) or stopped (SIGTERM) mid-stream and restarted with its `--history-dir`;
//! priority-lane `Shed` reports handed out and recovered by resuming; gaps as items; a refused token, a plain HTTP server and a refused connection as clear
//! errors.

mod common;
mod real_data;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::time::Duration;

use common::*;
use ringgate::ingest::event::payload::layout as pl;
use ringgate::model::kind::EventType;
use ringgate::tools::synth::generator::Generator;
use ringgate::tools::synth::SynthOptions;
use ringgate_client::{connect, Client, Cursor, Error, Item, Options, Payload, EVENT_KINDS};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn serve(ring_path: &std::path::Path, extra: &[&str]) -> ServeProcess {
    let mut args: Vec<&OsStr> = ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"]
        .iter()
        .chain(extra)
        .map(OsStr::new)
        .collect();
    args.extend([OsStr::new("--ring"), ring_path.as_os_str()]);
    ServeProcess::start(&args)
}

fn url(s: &ServeProcess) -> String {
    format!("ws://{}", s.addr)
}

fn status(s: &ServeProcess) -> Value {
    let (_, body) = s.get("/v1/status", "");
    serde_json::from_str(&body).expect("status JSON")
}

/// A number of the server's `/v1/status`.
fn status_u64(s: &ServeProcess, field: &str) -> u64 {
    let v = status(s);
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("status has no {field}: {v}"))
}

/// Waits until the server has read ring event `seqno` (so it has journaled it).
fn wait_read(s: &ServeProcess, seqno: u64) {
    wait_until("the gateway read the ring", || {
        status_u64(s, "head_ring_seqno") >= seqno
    });
}

/// The next item; fails the test on an error, the end of the stream or a stall.
async fn item(c: &mut Client) -> Item {
    match tokio::time::timeout(DEADLINE, c.next()).await {
        Err(_) => panic!("no item within {DEADLINE:?}"),
        Ok(None) => panic!("the stream ended"),
        Ok(Some(Err(e))) => panic!("client error: {e}"),
        Ok(Some(Ok(i))) => i,
    }
}

/// Writes one small block (BlockStart, TxnHeaderStart, TxnLog, TxnEnd, BlockEnd) after the
/// rest: a stream subscribed to those kinds has seen everything once it has seen these.
/// Returns the ring seqnos of its TxnLog and its BlockEnd.
fn marker(ring: &mut TestRing) -> (u64, u64) {
    let start = ring.next_seqno();
    ring.write_block(99_000_000 + start, 1);
    (start + 2, start + 4)
}

/// Items until the event with ring seqno `last` has been handed out.
async fn until_seqno(c: &mut Client, last: u64) -> Vec<Item> {
    let mut out = Vec::new();
    loop {
        let i = item(c).await;
        let done = matches!(&i, Item::Event(e) if e.seqno >= last);
        out.push(i);
        if done {
            return out;
        }
    }
}

/// JSON equality with numbers compared by value (a float field may be written `12.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Decoded then re-encoded equals what the server sent: every key is typed, none is lost.
fn assert_round_trip<T: serde::Serialize>(what: &str, typed: &T, raw: &str) {
    let sent: Value = serde_json::from_str(raw).expect("server JSON");
    let back = serde_json::to_value(typed).expect("serialize");
    assert!(
        same(&sent, &back),
        "{what} does not round-trip:\n sent {sent}\n back {back}"
    );
}

#[derive(Default)]
struct Conformance {
    kinds: BTreeMap<String, usize>,
    meta: BTreeSet<&'static str>,
}

impl Conformance {
    fn check(&mut self, i: &Item) {
        match i {
            Item::Event(e) => {
                assert!(
                    !matches!(e.payload, Payload::Unknown),
                    "undecoded: {}",
                    e.raw_json
                );
                assert_round_trip(&e.event_name, &**e, &e.raw_json);
                *self.kinds.entry(e.event_name.clone()).or_default() += 1;
            }
            Item::Tps(m) => {
                assert_round_trip("TPS", &m.body, &m.raw_json);
                self.meta.insert("TPS");
            }
            Item::ContentionData(m) => {
                assert_round_trip("ContentionData", &m.body, &m.raw_json);
                assert!(
                    m.block_id.is_some() && m.parallel_speedup.is_some(),
                    "extended shape asked for"
                );
                self.meta.insert("ContentionData");
            }
            Item::TopAccesses(m) => {
                assert_round_trip("TopAccesses", &m.body, &m.raw_json);
                self.meta.insert("TopAccesses");
            }
            Item::Lifecycle(m) => {
                assert_round_trip("Lifecycle", &m.body, &m.raw_json);
                self.meta.insert("Lifecycle");
            }
            Item::Gap(g) => assert_round_trip("Gap", &g.body, &g.raw_json),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_and_meta_frame_of_a_real_server_decodes_and_round_trips() {
    let mut ring = TestRing::create("client-conf");
    let server = serve(&ring.path, &[]);
    let mut c = connect(&url(&server), Options::default())
        .await
        .expect("connect");
    let Item::Connected(hello) = item(&mut c).await else {
        panic!("Hello first")
    };
    assert!(hello.hello.features.iter().any(|f| f == "resume"));

    let opts = SynthOptions {
        txns_per_block: 20,
        ..SynthOptions::default()
    };
    ring.write_synth(&mut Generator::new(opts), 6_000);
    // The kinds the synthetic chain never makes, written raw (zero payloads of the real sizes).
    let b = ring.next_seqno();
    ring.write(EventType::BlockStart, [b, 0, 0, 0], &[0u8; pl::BLOCK_START]);
    ring.write(EventType::TxnReject, [b, 1, 0, 0], &[0u8; pl::TXN_REJECT]);
    ring.write(EventType::EvmError, [b, 1, 0, 0], &[0u8; pl::EVM_ERROR]);
    ring.write(
        EventType::RecordError,
        [b, 0, 0, 0],
        &[0u8; pl::RECORD_ERROR],
    );
    let last = ring.write(
        EventType::BlockReject,
        [b, 0, 0, 0],
        &[0u8; pl::BLOCK_REJECT],
    );

    let mut conf = Conformance::default();
    for i in until_seqno(&mut c, last).await {
        conf.check(&i);
    }
    let missing: Vec<&&str> = EVENT_KINDS
        .iter()
        .filter(|k| !conf.kinds.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "kinds never seen: {missing:?} (seen {:?})",
        conf.kinds
    );
    for m in ["TPS", "ContentionData", "TopAccesses", "Lifecycle"] {
        assert!(conf.meta.contains(m), "no {m} frame");
    }
    assert_eq!(c.stats().undecoded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
async fn the_real_mainnet_snapshot_decodes_and_round_trips() {
    let server = serve(&real_data::snapshot(), &[]);
    // Resume from the run's first frame: the replay may have started before we connected.
    let epoch = status_u64(&server, "epoch");
    let from_start = Options::default().from_cursor(Cursor::new(epoch, 0));
    let mut c = connect(&url(&server), from_start).await.expect("connect");
    let mut conf = Conformance::default();
    let mut events = 0;
    while events < 6_597 {
        let i = item(&mut c).await;
        events += usize::from(matches!(i, Item::Event(_)));
        conf.check(&i);
    }
    assert!(conf.kinds.len() >= 15, "kinds {:?}", conf.kinds);
    assert!(conf.meta.contains("ContentionData"), "meta {:?}", conf.meta);
}

/// The ring seqnos of a stream's events (a replay may batch them differently from the live
/// stream, so frames are not compared).
fn events_of(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) => Some(e.seqno),
            _ => None,
        })
        .collect()
}

/// The events among `items`, each as the JSON object the server sent.
fn event_json(items: Vec<Item>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Event(e) => Some(serde_json::from_str(&e.raw_json).unwrap()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_filters_apply_from_the_first_frame_and_match_a_local_selection() {
    let mut ring = TestRing::create("client-filter");
    let server = serve(&ring.path, &[]);
    let all_opts = Options::default().events(["TxnLog"]);
    let mut all = connect(&url(&server), all_opts).await.expect("connect");
    let mut g = Generator::new(SynthOptions {
        txns_per_block: 20,
        ..SynthOptions::default()
    });
    ring.write_synth(&mut g, 2_000);
    let (last, _) = marker(&mut ring);
    let logs = event_json(until_seqno(&mut all, last).await);
    let emitter = logs[logs.len() / 3]["payload"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected: Vec<&Value> = logs
        .iter()
        .filter(|v| v["payload"]["address"] == emitter.as_str())
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < logs.len(),
        "a selective filter"
    );

    // Resume from the start of this epoch so the filtered client sees the same events.
    let Some(Cursor { epoch, .. }) = all.cursor() else {
        panic!("cursor")
    };
    let spec = serde_json::json!({"event_name": "TxnLog", "field_filters": [
        ringgate_client::field_filter("address", Some(vec![emitter.to_uppercase().replace("0X", "0x").into()]), None, None)]});
    let opts = Options::default()
        .filter(spec)
        .from_cursor(Cursor::new(epoch, 0));
    let mut f = connect(&url(&server), opts)
        .await
        .expect("connect filtered");
    let last_expected = expected.last().unwrap()["seqno"].as_u64().unwrap();
    let got = event_json(until_seqno(&mut f, last_expected).await);
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
}

/// A TCP proxy to `target` that cuts every connection after `cut_after` bytes from the server.
async fn cutting_proxy(target: std::net::SocketAddr, cut_after: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut ur, mut uw) = upstream.split();
                let up = tokio::io::copy(&mut cr, &mut uw);
                let down = async {
                    let mut buf = vec![0u8; 4096];
                    let mut sent = 0;
                    while sent < cut_after {
                        let n = ur.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let n = n.min(cut_after - sent);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_mid_stream_are_resumed_with_every_event_exactly_once() {
    let mut ring = TestRing::create("client-cut");
    let server = serve(&ring.path, &[]);
    let opts = Options::default;
    let mut direct = connect(&url(&server), opts()).await.expect("connect");
    // Larger than the largest frame (256 KiB), so every connection completes some frames.
    let proxy = cutting_proxy(server.addr, 300_000).await;
    let fast = opts().backoff(Duration::from_millis(10), Duration::from_millis(50));
    let mut cut = connect(&format!("ws://{proxy}"), fast)
        .await
        .expect("connect via proxy");
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 5_000);
    let (_, last) = marker(&mut ring);

    let want = events_of(&until_seqno(&mut direct, last).await);
    let got_items = until_seqno(&mut cut, last).await;
    let reconnects = got_items
        .iter()
        .filter(|i| matches!(i, Item::Reconnecting(_)))
        .count();
    assert!(
        reconnects >= 2,
        "the proxy cut the stream only {reconnects} times"
    );
    assert!(
        !got_items.iter().any(|i| matches!(i, Item::Gap(_))),
        "no data was lost"
    );
    assert_eq!(
        events_of(&got_items),
        want,
        "every event exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_frames_are_handed_out_and_recovered_by_resume_with_every_event_once() {
    let mut ring = TestRing::create("client-shed");
    let server = serve(&ring.path, &["--session-queue", "16"]);
    let mut c = connect(&url(&server), Options::default())
        .await
        .expect("connect");
    let first = ring.next_seqno();
    // The client reads nothing while the ring is written: the socket buffers fill, then its
    // 16-frame queue, and the server sheds the lower lanes (txn, detail) of the synthetic chain.
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 60_000);
    let (_, last) = marker(&mut ring);
    wait_read(&server, last);
    let items = until_seqno(&mut c, last).await;

    let sheds: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Shed(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(!sheds.is_empty(), "nothing was shed: the test did not test");
    assert!(sheds.iter().all(|s| s.recovering && s.dropped > 0));
    assert!(
        !items.iter().any(|i| matches!(i, Item::Gap(_))),
        "no data was lost"
    );
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(
        events_of(&items),
        want,
        "every ring event exactly once, in order"
    );
    assert_eq!(c.stats().sheds, sheds.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_cursor_resumes_after_the_client_restarts() {
    let mut ring = TestRing::create("client-cursor");
    let server = serve(&ring.path, &[]);
    let opts = || Options::default().events(["TxnLog"]);
    let mut whole = connect(&url(&server), opts()).await.expect("connect");
    let mut first = connect(&url(&server), opts()).await.expect("connect");
    let mut g = Generator::new(SynthOptions::default());
    ring.write_synth(&mut g, 1_000);
    let (mid, _) = marker(&mut ring);
    let before = events_of(&until_seqno(&mut first, mid).await);
    let saved = first.cursor().expect("cursor").to_string();
    first.close().await;
    ring.write_synth(&mut g, 1_000);
    let (last, _) = marker(&mut ring);

    let again = Options {
        from_cursor: Some(saved.parse().unwrap()),
        ..opts()
    };
    let mut second = connect(&url(&server), again).await.expect("reconnect");
    let items = until_seqno(&mut second, last).await;
    let Some(Item::Resumed(r)) = items.get(1) else {
        panic!("Resume second: {:?}", items.get(1))
    };
    assert!(r.resume.recovered && r.resume.mode == "resume", "{r:?}");
    let mut joined = before;
    joined.extend(events_of(&items));
    assert_eq!(joined, events_of(&until_seqno(&mut whole, last).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_data_is_an_item_a_cursor_too_old_or_of_another_run() {
    let mut ring = TestRing::create("client-gap");
    // A 50-frame window with no shared history behind it: a cursor at 1 is too old.
    let server = serve(&ring.path, &["--resume-frames", "50", "--history-mib", "0"]);
    let mut probe = connect(&url(&server), Options::default().events(["TxnLog"]))
        .await
        .expect("connect");
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 3_000);
    let (last, _) = marker(&mut ring);
    until_seqno(&mut probe, last).await;
    let epoch = probe.cursor().unwrap().epoch;

    // Too old: the server's own resume_window gap, then the replay.
    let old = Options::default()
        .events(["TxnLog"])
        .from_cursor(Cursor::new(epoch, 1));
    let mut c = connect(&url(&server), old).await.expect("connect");
    let gap = loop {
        if let Item::Gap(g) = item(&mut c).await {
            break g;
        }
    };
    assert_eq!(gap.reason, "resume_window");
    assert!(!gap.synthetic && gap.from_seqno == Some(2), "{gap:?}");

    // Another server run: a client-made gap naming the cursor it could not resume.
    let other = Options::default().from_cursor(Cursor::new(epoch - 1, 7));
    let mut c = connect(&url(&server), other).await.expect("connect");
    let gap = loop {
        if let Item::Gap(g) = item(&mut c).await {
            break g;
        }
    };
    assert!(gap.synthetic && gap.reason == "resume_failed", "{gap:?}");
    assert_eq!(gap.resume_reason.as_deref(), Some("other_epoch"));
    assert_eq!(gap.previous_cursor, Some(Cursor::new(epoch - 1, 7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_stream_is_reconnected_to_and_the_new_run_is_a_gap() {
    let mut ring = TestRing::create("client-kill");
    let mut server = serve(&ring.path, &[]);
    let addr = server.addr;
    let fast = Options::default().backoff(Duration::from_millis(20), Duration::from_millis(200));
    let mut c = connect(&url(&server), fast).await.expect("connect");
    let mut g = Generator::new(SynthOptions::default());
    ring.write_synth(&mut g, 500);
    let (mid, _) = marker(&mut ring);
    until_seqno(&mut c, mid).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let r = loop {
        if let Item::Reconnecting(r) = item(&mut c).await {
            break r;
        }
    };
    assert_eq!(r.attempt, 1);
    let before = c.cursor().unwrap();
    // Same port, new run.
    let again = serve(&ring.path, &["--listen", &addr.to_string()]);
    let mut saw_gap = false;
    loop {
        match item(&mut c).await {
            Item::Gap(gap) => {
                assert_eq!(gap.previous_cursor, Some(before));
                saw_gap = true;
            }
            Item::Connected(h) if h.reconnect => assert_ne!(h.hello.epoch, before.epoch),
            Item::Resumed(_) | Item::Reconnecting(_) | Item::Connected(_) => {}
            other => {
                assert!(saw_gap, "a Gap before any data of the new run: {other:?}");
                break;
            }
        }
        if saw_gap {
            break;
        }
    }
    drop(again);
}

/// The gateway with a durable history (`--history-dir`) stopped under a consuming client,
/// the ring written while it is down, and started again on the same port: the client
/// reconnects by itself, resumes in the same epoch (the restarted gateway adopts the
/// journal's epoch and continues its seqnos) and hands out every ring event exactly once:
/// no Gap, no duplicate, no hole, from the first event to the last marker.
async fn a_restart_with_a_history_dir_is_resumed_exactly_once(tag: &str, kill: bool) {
    let mut ring = TestRing::create(tag);
    let dir = std::env::temp_dir().join(format!("ringgate-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().expect("UTF-8 temp dir").to_owned();
    let server = serve(&ring.path, &["--history-dir", &dir_arg]);
    let addr = server.addr;
    // A first start reads from the newest block: write only once the tailer reads the ring.
    wait_until("the tailer attached", || status(&server)["ring"] == "live");
    let epoch = status_u64(&server, "epoch");
    let fast = Options::default().backoff(Duration::from_millis(20), Duration::from_millis(200));
    let mut c = connect(&url(&server), fast).await.expect("connect");
    let mut g = Generator::new(SynthOptions::default());
    ring.write_synth(&mut g, 1_000);
    let (mid, _) = marker(&mut ring);
    let mut items = until_seqno(&mut c, mid).await;
    // The gateway goes away at once, while it tails, journals and sends these and the
    // client has not read them yet.
    ring.write_synth(&mut g, 2_000);
    server.stop(kill);
    // The client consumes what reached it, then sees the connection go.
    loop {
        let i = item(&mut c).await;
        let gone = matches!(i, Item::Reconnecting(_));
        items.push(i);
        if gone {
            break;
        }
    }
    // Written while the gateway is down.
    ring.write_synth(&mut g, 2_000);
    let (_, down) = marker(&mut ring);
    let again = serve(
        &ring.path,
        &["--history-dir", &dir_arg, "--listen", &addr.to_string()],
    );
    assert_eq!(status_u64(&again, "epoch"), epoch, "the journal's epoch");
    wait_read(&again, down);
    ring.write_synth(&mut g, 500);
    let (_, last) = marker(&mut ring);
    items.extend(until_seqno(&mut c, last).await);

    let gaps: Vec<&Item> = items.iter().filter(|i| matches!(i, Item::Gap(_))).collect();
    assert!(gaps.is_empty(), "no Gap: {gaps:?}");
    let back = items
        .iter()
        .find_map(|i| match i {
            Item::Connected(h) if h.reconnect => Some(h),
            _ => None,
        })
        .expect("the client reconnected");
    assert_eq!(
        back.hello.epoch, epoch,
        "the same run, as far as clients can tell"
    );
    let resumed: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Resumed(r) if r.requested.is_some() => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        !resumed.is_empty()
            && resumed
                .iter()
                .all(|r| r.resume.recovered && r.resume.mode == "resume"),
        "every resume recovered: {resumed:?}"
    );
    let got = events_of(&items);
    let want: Vec<u64> = (1..=last).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "every ring event once; first missing {:?}, first repeated {:?}\n{}",
        want.iter().find(|s| !got.contains(s)),
        got.windows(2).find(|w| w[1] <= w[0]),
        again.log()
    );
    assert!(got == want, "ring seqnos 1..={last} in order");
    assert_eq!(c.cursor().map(|k| k.epoch), Some(epoch));
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_stream_and_restarted_with_its_history_loses_and_repeats_nothing() {
    a_restart_with_a_history_dir_is_resumed_exactly_once("client-hist-kill", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_stream_and_restarted_with_its_history_loses_and_repeats_nothing() {
    a_restart_with_a_history_dir_is_resumed_exactly_once("client-hist-term", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_plain_http_a_closed_handshake_and_no_server_are_clear_errors() {
    let ring = TestRing::create("client-auth");
    let keys =
        std::env::temp_dir().join(format!("ringgate-client-keys-{}.toml", std::process::id()));
    std::fs::write(&keys, access_key("k", "right", "")).unwrap();
    let server = serve(&ring.path, &["--auth-keys", keys.to_str().unwrap()]);
    let e = connect(&url(&server), Options::default().token("wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication { status: 401, .. }),
        "{e}"
    );
    let ok = connect(&url(&server), Options::default().token("right")).await;
    assert!(ok.is_ok(), "the right token connects");
    let _ = std::fs::remove_file(&keys);

    // A plain HTTP server.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = plain.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let body = "<html>hello</html>";
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let e = connect(&format!("ws://{plain_addr}"), Options::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::NotRinggate(m) if m.contains("HTTP 200")),
        "{e}"
    );

    // Closed before any HTTP response (a gateway that is stopping): transient, not "not
    // ringgate", so a reconnect retries it.
    let closer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closer_addr = closer.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = closer.accept().await {
            drop(s);
        }
    });
    let e = connect(&format!("ws://{closer_addr}"), Options::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect(_)) && e.is_transient(), "{e}");

    // Nothing listening: refused (a reconnect would retry; the first connect reports it).
    let e = connect(
        &format!("ws://{plain_addr}").replace(&plain_addr.port().to_string(), "1"),
        Options::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Connect(_)) && e.is_transient(), "{e}");

    // A bad event name is refused by the server with its message.
    let s2 = serve(&ring.path, &[]);
    let e = connect(&url(&s2), Options::default().events(["NoSuchEvent"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::RequestRejected { status: 400, message } if message.contains("events")),
        "{e}"
    );
}
