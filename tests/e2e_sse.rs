//! Server-Sent Events at `/v1/sse` against a real gateway over a real ring: a raw HTTP
//! reader (no SSE library: the framing is checked byte by byte) gets `text/event-stream`,
//! ids that carry the epoch and never go backwards (strictly increasing on data frames),
//! each `data:` line one JSON frame as on the WebSocket, the events of a written block;
//! `events=` and channel paths filter; `Last-Event-ID` (header or `last_event_id=`)
//! resumes with exactly the missed events, once; a bad query is a 400 and a bad token a 401
//! with a JSON error before any stream; a client that never reads has its lower priority
//! lanes shed (`Shed` messages), then is dropped with a final `Warning` and `event: close`; a shutdown ends streams with `event: close` 1001; comment
//! heartbeats arrive on a quiet stream; and real `curl -N` streams it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;
use ringgate::model::kind::EventType;
use sonic_rs::{JsonValueTrait, Value};

/// One SSE message as a browser's `EventSource` would dispatch it.
#[derive(Debug, Clone)]
struct Message {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl Message {
    fn json(&self) -> Value {
        sonic_rs::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {:?}", self.data))
    }

    /// The id's (epoch, seqno).
    fn id_parts(&self) -> (u64, u64) {
        let id = self.id.as_deref().expect("message has an id");
        let (e, s) = id.split_once(':').expect("id is <epoch>:<seqno>");
        (e.parse().expect("epoch"), s.parse().expect("seqno"))
    }
}

/// A raw SSE reader: the HTTP head, then messages parsed per the WHATWG rules we rely on.
struct SseClient {
    reader: BufReader<TcpStream>,
    status: u16,
    /// The response head, lower-cased.
    head: String,
    /// Comment lines (`: ping`) seen so far.
    comments: usize,
}

impl SseClient {
    fn open(addr: SocketAddr, path: &str, headers: &str) -> SseClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        SseClient::open_over(stream, path, headers)
    }

    fn open_over(mut stream: TcpStream, path: &str, headers: &str) -> SseClient {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read head");
            if line.is_empty() || line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line in {head:?}"));
        SseClient {
            reader,
            status,
            head,
            comments: 0,
        }
    }

    /// A refused request: status and the JSON body.
    fn refused(addr: SocketAddr, path: &str, headers: &str) -> (u16, Value) {
        let mut c = SseClient::open(addr, path, headers);
        let mut body = String::new();
        c.reader.read_to_string(&mut body).expect("body");
        assert!(
            c.head.contains("content-type: application/json"),
            "{}",
            c.head
        );
        (
            c.status,
            sonic_rs::from_str(&body).expect("JSON error body"),
        )
    }

    /// The next message, or `None` at EOF.
    fn next(&mut self) -> Option<Message> {
        let mut msg = Message {
            id: None,
            event: None,
            data: String::new(),
        };
        let mut has_data = false;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).expect("read") == 0 {
                return None;
            }
            let line = line
                .strip_suffix('\n')
                .unwrap_or_else(|| panic!("{line:?}"));
            if line.is_empty() {
                if has_data {
                    return Some(msg);
                }
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "id" => msg.id = Some(value.to_owned()),
                "event" => msg.event = Some(value.to_owned()),
                "data" => {
                    assert!(!has_data, "one data line per message: {line:?}");
                    msg.data = value.to_owned();
                    has_data = true;
                }
                other => panic!("unexpected field {other:?}"),
            }
        }
    }

    fn next_message(&mut self) -> Message {
        self.next().expect("stream still open")
    }

    /// Reads lines until a comment line; returns the `data:` lines read on the way.
    fn until_comment(&mut self) -> Vec<String> {
        let mut data = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).expect("read") > 0, "EOF");
            if line.starts_with(':') {
                self.comments += 1;
                return data;
            }
            if let Some(d) = line.strip_prefix("data: ") {
                data.push(d.to_owned());
            }
        }
    }
}

/// Reads messages until `n` events arrived; checks the id rules on every message on the way
/// (same epoch as `epoch`, the id's seqno is the frame's `server_seqno`, never backwards,
/// strictly increasing on data frames) and returns the event names.
fn collect(c: &mut SseClient, n: usize, epoch: u64, last: &mut u64) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        let m = c.next_message();
        assert_eq!(m.event, None, "only protocol frames before the end: {m:?}");
        let v = m.json();
        let (e, s) = m.id_parts();
        assert_eq!(e, epoch, "{m:?}");
        assert_eq!(s, seqno_of(&v), "the id is the frame's server_seqno: {m:?}");
        let kind = kind_of(&v);
        if matches!(
            kind.as_str(),
            "Events" | "TPS" | "ContentionData" | "Lifecycle" | "Gap"
        ) {
            assert!(s > *last, "data ids strictly increase: {last} then {s}");
            *last = s;
        } else {
            assert!(s >= *last, "ids never go back: {last} then {s}");
        }
        if kind == "Events" {
            names.extend(event_names(&v));
        }
    }
    names
}

fn names(types: &[EventType]) -> Vec<String> {
    types.iter().map(|t| t.name().to_string()).collect()
}

/// Opens a stream and reads `Hello` and `Resume`; returns the epoch and the `Resume` body.
fn hello(c: &mut SseClient) -> (u64, Value) {
    assert_eq!(c.status, 200, "{}", c.head);
    let m = c.next_message();
    let v = m.json();
    assert_eq!(kind_of(&v), "Hello", "{m:?}");
    let epoch = v["Hello"]["epoch"].as_u64().expect("epoch");
    assert_eq!(m.id_parts(), (epoch, seqno_of(&v)));
    let r = c.next_message().json();
    assert_eq!(kind_of(&r), "Resume");
    (epoch, r["Resume"].clone())
}

#[test]
fn a_stream_has_the_sse_head_increasing_ids_the_written_block_and_ends_with_close_1001() {
    let mut ring = TestRing::create("sse-basic");
    let gw = start_gateway(test_config(&ring));
    let mut c = SseClient::open(gw.addr, "/v1/sse?extended=1", "");
    for line in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "connection: close",
    ] {
        assert!(
            c.head.contains(&format!("{line}\r\n")),
            "{line}: {}",
            c.head
        );
    }
    let (epoch, resume) = hello(&mut c);
    assert_eq!(resume["reason"].as_str(), Some("fresh"));
    gw.wait_for_clients(1);

    let mut last = 0;
    let first = ring.write_block(1, 3);
    let second = ring.write_block(2, 2);
    let expected = names(&[first, second].concat());
    assert_eq!(collect(&mut c, expected.len(), epoch, &mut last), expected);

    // A shutdown flushes, then ends the stream with the WebSocket's 1001 as an SSE event.
    let stopper = std::thread::spawn(move || drop(gw));
    let mut end = None;
    while let Some(m) = c.next() {
        end = Some(m);
    }
    stopper.join().expect("shutdown");
    let end = end.expect("a last message");
    assert_eq!(end.event.as_deref(), Some("close"), "{end:?}");
    assert_eq!(end.id, None, "the close event is not a stream position");
    assert_eq!(end.json()["code"].as_u64(), Some(1001), "{end:?}");
}

#[test]
fn events_and_channel_paths_filter_and_a_quiet_stream_gets_comment_heartbeats() {
    let mut ring = TestRing::create("sse-filter");
    let gw = start_gateway(test_config(&ring));
    let mut bounds = SseClient::open(gw.addr, "/v1/sse?events=BlockStart,BlockEnd", "");
    let (epoch, _) = hello(&mut bounds);
    let mut logs = SseClient::open(gw.addr, "/v1/sse/txs?events=TxnLog&extended=1", "");
    hello(&mut logs);
    let mut quiet = SseClient::open(gw.addr, "/v1/sse/contention", "");
    hello(&mut quiet);
    gw.wait_for_clients(3);

    ring.write_block(1, 2);
    ring.write_block(2, 2);
    let (mut a, mut b) = (0, 0);
    assert_eq!(
        collect(&mut bounds, 4, epoch, &mut a),
        ["BlockStart", "BlockEnd", "BlockStart", "BlockEnd"]
    );
    assert_eq!(collect(&mut logs, 4, epoch, &mut b), ["TxnLog"; 4]);

    // The contention channel carries no events, only meta frames; the heartbeat comment
    // shows the stream is alive.
    for data in quiet.until_comment() {
        let v: Value = sonic_rs::from_str(&data).expect("JSON");
        assert_ne!(kind_of(&v), "Events", "{data}");
    }
    assert_eq!(quiet.comments, 1);
}

#[test]
fn last_event_id_resumes_with_exactly_the_missed_events_once() {
    let mut ring = TestRing::create("sse-resume");
    let gw = start_gateway(test_config(&ring));
    let mut c = SseClient::open(gw.addr, "/v1/sse", "");
    let (epoch, _) = hello(&mut c);
    gw.wait_for_clients(1);
    let first = names(&ring.write_block(1, 2));
    let mut last = 0;
    assert_eq!(collect(&mut c, first.len(), epoch, &mut last), first);
    let last_id = format!("{epoch}:{last}");
    drop(c);
    gw.wait_for_clients(0);

    // Missed while away.
    let missed = names(&ring.write_block(2, 3));
    let mut c = SseClient::open(gw.addr, "/v1/sse", &format!("Last-Event-ID: {last_id}\r\n"));
    let (_, resume) = hello(&mut c);
    assert_eq!(resume["mode"].as_str(), Some("resume"), "{resume}");
    assert_eq!(resume["reason"].as_str(), Some("in_range"), "{resume}");
    let mut cursor = last;
    assert_eq!(collect(&mut c, missed.len(), epoch, &mut cursor), missed);
    // Then live, with nothing repeated: the next event is the next block's first.
    let live = names(&ring.write_block(3, 1));
    assert_eq!(collect(&mut c, live.len(), epoch, &mut cursor), live);
    let after_three = cursor;
    drop(c);
    gw.wait_for_clients(0);

    // The query form (an EventSource's first connect), the id percent-encoded.
    let missed = names(&ring.write_block(4, 1));
    let path = format!("/v1/sse?last_event_id={epoch}%3A{after_three}");
    let mut c = SseClient::open(gw.addr, &path, "");
    let (_, resume) = hello(&mut c);
    assert_eq!(resume["reason"].as_str(), Some("in_range"), "{resume}");
    let mut cursor = after_three;
    assert_eq!(collect(&mut c, missed.len(), epoch, &mut cursor), missed);
    drop(c);

    // An id of another server run is not a position of this one: nothing is replayed as if
    // it were.
    let mut c = SseClient::open(
        gw.addr,
        "/v1/sse",
        &format!("Last-Event-ID: {}:{after_three}\r\n", epoch + 1),
    );
    let (_, resume) = hello(&mut c);
    assert_eq!(resume["reason"].as_str(), Some("other_epoch"), "{resume}");
    assert_eq!(resume["recovered"].as_bool(), Some(false), "{resume}");
}

#[test]
fn a_bad_query_or_id_is_400_with_a_json_error_before_any_stream() {
    let ring = TestRing::create("sse-bad");
    let gw = start_gateway(test_config(&ring));
    for (path, headers, names) in [
        ("/v1/sse?events=Bogus", "", "events"),
        ("/v1/sse?min_stage=Rejected", "", "min_stage"),
        // Valid names the channel does not carry: a 400 too (a WebSocket gets an Error
        // frame after Hello instead).
        ("/v1/sse/txs?events=TPS", "", "not_allowed_on_channel"),
        ("/v1/sse", "Last-Event-ID: yesterday\r\n", "Last-Event-ID"),
        ("/v1/sse?last_event_id=1:2:3", "", "last_event_id"),
    ] {
        let (status, body) = SseClient::refused(gw.addr, path, headers);
        assert_eq!(status, 400, "{path}");
        let error = body["error"].as_str().expect("error message");
        assert!(error.contains(names), "{path}: {error}");
    }
    assert_eq!(gw.clients(), 0);
}

#[test]
fn with_access_keys_no_or_a_wrong_token_is_401_and_a_key_in_header_or_query_streams() {
    let ring = TestRing::create("sse-auth");
    let keys = std::env::temp_dir().join(format!("ringgate-sse-keys-{}.toml", std::process::id()));
    let entries =
        access_key("k", "s3cret", "") + &access_key("b", "blocks", r#"channels = ["blocks"]"#);
    std::fs::write(&keys, entries).expect("keys file");
    let mut config = test_config(&ring);
    config.auth_keys = Some(keys.clone());
    let gw = start_gateway(config);
    for (path, headers, status) in [
        ("/v1/sse", "", 401),
        ("/v1/sse?token=wrong", "", 401),
        ("/v1/sse", "Authorization: Bearer wrong\r\n", 401),
        ("/v1/sse/txs?token=blocks", "", 403),
    ] {
        let (got, body) = SseClient::refused(gw.addr, path, headers);
        assert_eq!(got, status, "{path} {headers}");
        assert!(body["error"].is_str(), "{body}");
    }
    let mut by_header = SseClient::open(gw.addr, "/v1/sse", "Authorization: Bearer s3cret\r\n");
    hello(&mut by_header);
    let mut by_query = SseClient::open(gw.addr, "/v1/sse/blocks?token=blocks", "");
    hello(&mut by_query);
    gw.wait_for_clients(2);
    let _ = std::fs::remove_file(keys);
}

#[test]
fn a_client_that_never_reads_is_dropped_with_a_final_warning_and_event_close() {
    let mut ring = TestRing::create("sse-slow");
    let mut config = test_config(&ring);
    config.session_queue_frames = 256;
    config.drop_warning_every = 10;
    // Only top-lane frames (block events, meta frames) count: the rest is shed first.
    config.drop_disconnect_after = 20;
    config.socket_send_buffer = Some(4 * 1024);
    let gw = start_gateway(config);
    let stream = connect_small_receive_buffer(gw.addr);
    // The head and the first frames fit the buffers; then it stops reading.
    let mut slow = SseClient::open_over(stream, "/v1/sse", "");
    assert_eq!(slow.status, 200);
    gw.wait_for_clients(1);

    let mut number = 1;
    while gw.stats().sum(|s| &s.slow_disconnects) == 0 {
        ring.write_block(number, 40);
        number += 1;
        assert!(number < 2_000, "the slow client was never dropped");
    }

    // Reading again, it gets what was in flight, the reports of what its lanes shed, the last
    // Warning, then the close event.
    let mut tail = Vec::new();
    while let Some(m) = slow.next() {
        tail.push(m);
    }
    let close = tail.pop().expect("messages after the drop");
    assert_eq!(close.event.as_deref(), Some("close"), "{close:?}");
    let body = close.json();
    assert_eq!(body["code"].as_u64(), Some(1008), "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("slow client")),
        "{body}"
    );
    let warning = tail.pop().expect("a Warning before the close").json();
    assert_eq!(kind_of(&warning), "Warning", "{warning}");
    assert!(
        warning["Warning"]["total_dropped"].as_u64() >= Some(20),
        "{warning}"
    );
    assert!(
        tail.iter().any(|m| kind_of(&m.json()) == "Shed"),
        "the lower lanes were shed and reported first"
    );
    gw.wait_for_clients(0);
}

#[test]
fn curl_streams_the_events_of_a_written_block() {
    let mut ring = TestRing::create("sse-curl");
    let gw = start_gateway(test_config(&ring));
    let url = format!("http://{}/v1/sse/blocks?extended=1", gw.addr);
    let (head, lines) = curl_sse(
        &[],
        &url,
        || {
            gw.wait_for_clients(1);
            ring.write_block(7, 2);
        },
        "BlockEnd",
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let ids = lines.iter().filter(|l| l.starts_with("id: ")).count();
    let datas = lines.iter().filter(|l| l.starts_with("data: ")).count();
    assert_eq!(ids, datas, "every message has an id: {lines:?}");
}
