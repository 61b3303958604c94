//! `ringgate tail` (the binary, built on the Rust client) against a real `ringgate serve`:
//! its stdout piped through `jq` is pure JSON lines of exactly the subscribed events; the
//! cursor file makes a restarted tail continue where the last one stopped (together they
//! print a reference run's events exactly once); a server restart is a reconnect and a GAP
//! line, never a silent skip; `--latency --json` reports the histogram; a refused token and a
//! plain HTTP server are exit status 1 with a clear message.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;
use ringgate::tools::synth::generator::Generator;
use ringgate::tools::synth::SynthOptions;
use sonic_rs::{JsonValueTrait, Value};

fn serve(ring: &TestRing, extra: &[&str]) -> ServeProcess {
    let mut args: Vec<&OsStr> = ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"]
        .iter()
        .chain(extra)
        .map(OsStr::new)
        .collect();
    args.extend([OsStr::new("--ring"), ring.path.as_os_str()]);
    ServeProcess::start(&args)
}

fn tail(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringgate"));
    c.arg("tail").args(args).stdin(Stdio::null());
    c
}

/// Runs to completion (the caller bounds it with --limit or --duration).
fn run(args: &[&str]) -> Output {
    tail(args).output().expect("run ringgate tail")
}

fn epoch(server: &ServeProcess) -> u64 {
    let (_, body) = server.get("/v1/status", "");
    let v: Value = sonic_rs::from_str(&body).expect("status JSON");
    v["epoch"].as_u64().expect("epoch")
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| sonic_rs::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

fn seqnos(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seqno"].as_u64().expect("seqno"))
        .collect()
}

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringgate-tail-{tag}-{}", std::process::id()))
}

#[test]
fn tail_piped_through_jq_prints_exactly_the_subscribed_events() {
    let mut ring = TestRing::create("tail-jq");
    let server = serve(&ring, &[]);
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 3_000);
    let from = format!("{}:0", epoch(&server));
    let url = format!("ws://{}", server.addr);
    let mut t = tail(&[
        &url,
        "--events",
        "TxnLog,BlockStart",
        "--from-cursor",
        &from,
        "--limit",
        "150",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn tail");
    let jq = Command::new("jq")
        .args(["-c", "{n: .event_name, s: .seqno, t: .payload.type}"])
        .stdin(t.stdout.take().unwrap())
        .output()
        .expect("jq is installed (.ci/install)");
    let status = t.wait().unwrap();
    let mut err = String::new();
    t.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "tail failed: {err}");
    assert!(
        jq.status.success(),
        "jq rejected the output: {}",
        String::from_utf8_lossy(&jq.stderr)
    );
    let got = lines(&jq.stdout);
    assert!(got.len() >= 150, "{} events", got.len());
    let mut last = 0;
    for v in &got {
        let name = v["n"].as_str().unwrap();
        assert!(name == "TxnLog" || name == "BlockStart", "{v:?}");
        assert_eq!(v["t"].as_str(), Some(name), "payload.type is event_name");
        let s = v["s"].as_u64().unwrap();
        assert!(s > last, "seqnos increase: {last} then {s}");
        last = s;
    }
    assert!(err.contains("ringgate tail: connected to"), "{err}");
    assert!(err.contains("resume mode=resume"), "{err}");
}

#[test]
fn a_cursor_file_makes_restarted_tails_print_every_event_once() {
    let mut ring = TestRing::create("tail-cursor");
    let server = serve(&ring, &[]);
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 8_000);
    let url = format!("ws://{}", server.addr);
    let start = format!("{}:0", epoch(&server));
    let cursor = scratch("cursor");
    std::fs::write(&cursor, &start).unwrap();
    let c = cursor.to_str().unwrap();
    let ev = "--events=TxnLog,TxnEnd";
    let first = run(&[&url, ev, "--cursor-file", c, "--limit", "100"]);
    let second = run(&[&url, ev, "--cursor-file", c, "--limit", "200"]);
    assert!(first.status.success() && second.status.success());
    let saved = std::fs::read_to_string(&cursor).unwrap();
    let mut both = seqnos(&lines(&first.stdout));
    both.extend(seqnos(&lines(&second.stdout)));
    let reference = seqnos(&lines(
        &run(&[
            &url,
            ev,
            "--from-cursor",
            &start,
            "--limit",
            &both.len().to_string(),
        ])
        .stdout,
    ));
    assert_eq!(
        both,
        reference[..both.len()],
        "the two runs are the reference run, once each"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("resuming from cursor"));
    assert_ne!(saved.trim(), start, "the cursor file moved");
    let _ = std::fs::remove_file(&cursor);
}

#[test]
fn a_server_restart_is_a_reconnect_and_a_gap_line_never_a_silent_skip() {
    let mut ring = TestRing::create("tail-restart");
    let mut server = serve(&ring, &[]);
    let addr = server.addr.to_string();
    let url = format!("ws://{addr}");
    let mut t = tail(&[&url, "--events", "TxnLog", "--limit", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let mut err = t.stderr.take().unwrap();
    let mut seen = String::new();
    let mut read_until = |what: &str, seen: &mut String| {
        let mut buf = [0u8; 4096];
        while !seen.contains(what) {
            let n = err.read(&mut buf).expect("stderr");
            assert!(n > 0, "tail ended before {what:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until("connected to", &mut seen);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    read_until("reconnecting", &mut seen);
    let again = serve(&ring, &["--listen", &addr]);
    read_until("GAP reason=resume_failed", &mut seen);
    assert!(seen.contains("resume_reason=other_epoch"), "{seen}");
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 2_000);
    let status = t.wait().unwrap();
    assert!(status.success());
    let mut out = String::new();
    t.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let events = lines(out.as_bytes());
    assert!(
        events.len() >= 50
            && events
                .iter()
                .all(|e| e["event_name"].as_str() == Some("TxnLog"))
    );
    drop(again);
}

#[test]
fn latency_json_reports_every_printed_event() {
    let mut ring = TestRing::create("tail-latency");
    let server = serve(&ring, &[]);
    ring.write_synth(&mut Generator::new(SynthOptions::default()), 2_000);
    let from = format!("{}:0", epoch(&server));
    let out = run(&[
        &format!("ws://{}", server.addr),
        "--from-cursor",
        &from,
        "--limit",
        "500",
        "--latency",
        "--json",
        "-q",
    ]);
    assert!(out.status.success());
    let printed = lines(&out.stdout).len() as u64;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| sonic_rs::from_str::<Value>(l).unwrap())
        .find(|v| v["final"].as_bool() == Some(true))
        .unwrap_or_else(|| panic!("no final report: {stderr}"));
    assert_eq!(report["count"].as_u64(), Some(printed));
    let q = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} in {report:?}"))
    };
    assert!(
        q("p50_ms") <= q("p90_ms")
            && q("p90_ms") <= q("p99_ms")
            && q("p99_ms") <= q("p99_9_ms")
            && q("p99_9_ms") <= q("max_ms")
    );
}

#[test]
fn a_refused_token_and_a_plain_http_server_are_clear_errors() {
    let ring = TestRing::create("tail-errors");
    let keys = scratch("keys.toml");
    std::fs::write(&keys, access_key("k", "right", "")).unwrap();
    let server = serve(&ring, &["--auth-keys", keys.to_str().unwrap()]);
    let out = run(&[&format!("ws://{}", server.addr), "--token", "wrong"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("authentication failed: HTTP 401"), "{err}");
    let _ = std::fs::remove_file(&keys);

    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in plain.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    let out = run(&[&format!("ws://{addr}")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a ringgate gateway") && err.contains("HTTP 200"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
