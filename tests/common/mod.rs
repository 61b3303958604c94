//! Shared helpers for the end-to-end tests: a real ring written by the real `RingWriter`,
//! the gateway started through the same `server::start` as `ringgate serve` (port 0), a
//! WebSocket client (tungstenite over std `TcpStream`), raw-socket helpers for misbehaving
//! clients, and `wait_until`.
//!
//! Hermetic: every ring lives in the scratch dir under a unique name and is removed on drop;
//! every listener binds port 0; nothing sleeps for synchronisation (only `wait_until` polls a
//! condition, with a generous deadline that only bounds a failing test).

#![allow(dead_code)]

pub mod nats;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringgate::config::Config;
use ringgate::ingest::event::payload::layout as pl;
use ringgate::ingest::ring::layout::RingSizes;
use ringgate::ingest::ring::{scratch_dir, RingWriter};
use ringgate::ingest::tailer::IdleStrategy;
use ringgate::metrics::RingState;
use ringgate::model::kind::EventType;
use ringgate::server::{self, Server};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Upper bound for anything a test waits on; only reached when the test is failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds; panics with `what` after `DEADLINE`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "ringgate-test-{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The smallest ring the format allows (2^16 descriptors, 128 MiB sparse payload buffer).
pub fn small_sizes() -> RingSizes {
    RingSizes {
        descriptor_capacity: 1 << 16,
        payload_buf_size: 1 << 27,
        context_area_size: 0,
    }
}

/// A ring in the scratch dir, written by the real writer; removed on drop.
#[derive(Debug)]
pub struct TestRing {
    /// `None` after [`TestRing::crash_writer`].
    writer: Option<RingWriter>,
    pub path: PathBuf,
    /// The next timestamp written (ns; increments per event).
    ts: u64,
}

impl TestRing {
    pub fn create(tag: &str) -> TestRing {
        let path = scratch_dir().join(unique_name(tag));
        let writer = RingWriter::create(&path, small_sizes()).expect("create test ring");
        TestRing {
            writer: Some(writer),
            path,
            ts: 1_700_000_000_000_000_000,
        }
    }

    fn writer(&mut self) -> &mut RingWriter {
        self.writer.as_mut().expect("the writer was crashed")
    }

    /// Writes one event (`ext` = content_ext: block seqno, txn id, …); returns its seqno.
    pub fn write(&mut self, ty: EventType, ext: [u64; 4], payload: &[u8]) -> u64 {
        self.ts += 1_000;
        let ts = self.ts;
        self.writer().write_event(ty.code(), ext, payload, ts)
    }

    /// The seqno the next write gets.
    pub fn next_seqno(&mut self) -> u64 {
        self.writer().next_seqno()
    }

    /// Writes one event with a raw type code and payload (for malformed-input tests).
    pub fn write_raw(&mut self, code: u16, payload: &[u8]) -> u64 {
        self.ts += 1_000;
        let ts = self.ts;
        self.writer().write_event(code, [0; 4], payload, ts)
    }

    /// Writes `events` events of the synthetic chain `generator` (with the driver's flow
    /// tags, as `ringgate write` does); returns the seqno of the last one.
    pub fn write_synth(
        &mut self,
        generator: &mut ringgate::tools::synth::generator::Generator,
        events: u64,
    ) -> u64 {
        self.write_synth_paced(generator, events, None)
    }

    /// [`TestRing::write_synth`] at `per_sec` events per second (`None`: flat out).
    pub fn write_synth_paced(
        &mut self,
        generator: &mut ringgate::tools::synth::generator::Generator,
        events: u64,
        per_sec: Option<f64>,
    ) -> u64 {
        let mut pacer = ringgate::tools::pacer::Pacer::new(per_sec);
        let stop = std::sync::atomic::AtomicBool::new(false);
        ringgate::tools::synth::drive::run(
            self.writer(),
            generator,
            &mut pacer,
            &stop,
            Some(events),
        )
        .last_seqno
    }

    /// Simulates a writer restart: the old writer dies, a new one creates a fresh ring at the
    /// same path (new inode, seqnos from 1).
    pub fn restart_writer(&mut self) {
        self.crash_writer();
        self.writer = Some(RingWriter::create(&self.path, small_sizes()).expect("recreate ring"));
    }

    /// Simulates the writer process dying: its lock goes away, the file stays.
    pub fn crash_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abandon();
        }
    }

    /// Writes BLOCK_QC for the proposal `[id; 32]` at `number`; returns its seqno.
    pub fn write_qc(&mut self, id: u8, number: u64) -> u64 {
        let mut p = block_tag(id, number);
        p.extend_from_slice(&[0u8; 16]);
        self.write(EventType::BlockQc, [0; 4], &p)
    }

    /// Writes BLOCK_FINALIZED for the proposal `[id; 32]` at `number`; returns its seqno.
    pub fn write_finalized(&mut self, id: u8, number: u64) -> u64 {
        self.write(EventType::BlockFinalized, [0; 4], &block_tag(id, number))
    }

    /// Writes one block: BLOCK_START, then per transaction TXN_HEADER_START, one TXN_LOG and
    /// TXN_END, then BLOCK_END. Payloads are zero except the block number. Returns the event
    /// types in ring order.
    pub fn write_block(&mut self, number: u64, txns: u32) -> Vec<EventType> {
        self.write_block_with_id(0, number, txns)
    }

    /// [`TestRing::write_block`] with block id `[id; 32]`, so the chain stage (and its
    /// `min_stage` gate) tracks each block apart: blocks of one id replace each other.
    pub fn write_block_with_id(&mut self, id: u8, number: u64, txns: u32) -> Vec<EventType> {
        let mut types = Vec::new();
        let block_seqno = self.writer().next_seqno();
        let mut start = vec![0u8; pl::BLOCK_START];
        start[pl::block_start::ID..pl::block_start::ID + 32].copy_from_slice(&[id; 32]);
        start[pl::block_start::NUMBER..pl::block_start::NUMBER + 8]
            .copy_from_slice(&number.to_le_bytes());
        self.write(EventType::BlockStart, [block_seqno, 0, 0, 0], &start);
        types.push(EventType::BlockStart);
        for i in 0..u64::from(txns) {
            let ext = [block_seqno, i + 1, 0, 0];
            let mut header = vec![0u8; pl::TXN_HEADER_START];
            header[..4].copy_from_slice(&0u32.to_le_bytes());
            self.write(EventType::TxnHeaderStart, ext, &header);
            self.write(EventType::TxnLog, ext, &[0u8; pl::TXN_LOG]);
            self.write(EventType::TxnEnd, ext, &[]);
            types.extend([
                EventType::TxnHeaderStart,
                EventType::TxnLog,
                EventType::TxnEnd,
            ]);
        }
        self.write(
            EventType::BlockEnd,
            [block_seqno, 0, 0, 0],
            &[0u8; pl::BLOCK_END],
        );
        types.push(EventType::BlockEnd);
        types
    }
}

impl Drop for TestRing {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One `[[key]]` entry of an access-keys file for `token` (`extra`: more TOML lines, e.g.
/// `channels = ["blocks"]`).
pub fn access_key(name: &str, token: &str, extra: &str) -> String {
    let hash: String = ringgate::wire::http::auth::hash_token(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("[[key]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\n{extra}\n")
}

/// A block tag (`monad_exec_block_tag`): id `[id; 32]` and `number`.
pub fn block_tag(id: u8, number: u64) -> Vec<u8> {
    let mut t = vec![id; 32];
    t.extend_from_slice(&number.to_le_bytes());
    t
}

/// Test defaults: one unpinned shard on port 0, small buffers, a tailer that sleeps briefly
/// when idle (the suite shares 2 cores), no JSON-RPC frames (they take seqnos no native
/// client receives; the JSON-RPC tests turn them on).
pub fn test_config(ring: &TestRing) -> Config {
    test_config_for(&ring.path)
}

/// [`test_config`] for any ring path (a snapshot, a file that does not exist yet).
pub fn test_config_for(ring_path: &std::path::Path) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ring_path: ring_path.to_path_buf(),
        shards: Some(1),
        pin_cores: false,
        spsc_capacity: 4_096,
        io_memory: 256 * 1024,
        ring_depth: 64,
        idle: IdleStrategy::SpinYieldPark {
            spins: 100,
            yields: 10,
            park: Duration::from_micros(200),
            max_park: Duration::from_micros(1_000),
        },
        rpc: false,
        ..Config::default()
    }
}

/// A running gateway over a test ring.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub server: Option<Server>,
}

impl TestGateway {
    /// Number of open WebSocket sessions (all shards).
    pub fn clients(&self) -> u64 {
        self.server.as_ref().map_or(0, |s| s.stats().clients())
    }

    /// Waits until `n` sessions are registered (subscribed and receiving).
    pub fn wait_for_clients(&self, n: u64) {
        wait_until(&format!("{n} clients are registered"), || {
            self.clients() == n
        });
    }

    /// Stops the gateway (close 1001 to everyone) and joins its threads.
    pub fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().expect("clean shutdown");
        }
    }

    pub fn stats(&self) -> &ringgate::metrics::StatsHub {
        self.server.as_ref().expect("running").stats()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the gateway with `config` and waits until the tailer attached the ring.
pub fn start_gateway(config: Config) -> TestGateway {
    let server = server::start(config).expect("gateway starts");
    let gw = TestGateway {
        addr: server.local_addr(),
        server: Some(server),
    };
    wait_until("the tailer attached the ring", || {
        gw.stats().tailer.ring_state() == RingState::Live
    });
    gw
}

/// A WebSocket client with a read timeout so a failing test cannot hang.
pub struct WsClient {
    pub ws: WebSocket<TcpStream>,
    /// Also return the frames the tests of other subjects skip: the fresh connect's `Resume`
    /// and `Heartbeat` (both per-connection, docs/protocol.md §3). Default false.
    pub show_all: bool,
}

/// One server frame, parsed.
#[derive(Debug)]
pub enum ServerFrame {
    Json(Value),
    Close(Option<u16>, String),
    Ended,
}

impl WsClient {
    /// Connects and upgrades on `path` (with query).
    pub fn connect(addr: SocketAddr, path: &str) -> WsClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let url = format!("ws://{addr}{path}");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("upgrade");
        WsClient {
            ws,
            show_all: false,
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Next data or close frame (pings are answered by tungstenite and skipped).
    pub fn next(&mut self) -> ServerFrame {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = sonic_rs::from_str(t.as_str()).expect("server sends JSON");
                    let fresh = v["Resume"]["reason"].as_str() == Some("fresh");
                    if !self.show_all && (fresh || v.get("Heartbeat").is_some()) {
                        continue;
                    }
                    return ServerFrame::Json(v);
                }
                Ok(Message::Close(c)) => {
                    return match c {
                        Some(c) => {
                            ServerFrame::Close(Some(u16::from(c.code)), c.reason.to_string())
                        }
                        None => ServerFrame::Close(None, String::new()),
                    }
                }
                Ok(Message::Binary(_)) => panic!("server sent a binary frame"),
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => return ServerFrame::Ended,
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("no frame within {DEADLINE:?}")
                }
                Err(_) => return ServerFrame::Ended,
            }
        }
    }

    /// Next JSON frame; panics on close.
    pub fn next_json(&mut self) -> Value {
        match self.next() {
            ServerFrame::Json(v) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// Reads frames until one has top-level key `kind`, returning it (others are skipped).
    pub fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next_json();
            if v.get(kind).is_some() {
                return v;
            }
        }
    }

    /// Reads until the close frame; returns its code.
    pub fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next() {
                ServerFrame::Close(code, _) => return code,
                ServerFrame::Ended => return None,
                ServerFrame::Json(_) => continue,
            }
        }
    }
}

/// The message key of a server frame (`Events`, `Hello`, `Gap`, …).
pub fn kind_of(v: &Value) -> String {
    v.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| *k != "server_seqno")
                .map(|(k, _)| k.to_string())
        })
        .unwrap_or_default()
}

/// `server_seqno` of a frame.
pub fn seqno_of(v: &Value) -> u64 {
    v.get("server_seqno")
        .and_then(|s| s.as_u64())
        .expect("server_seqno")
}

/// Event names of an `Events` frame, in order.
pub fn event_names(v: &Value) -> Vec<String> {
    v.get("Events")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    e.get("event_name")
                        .and_then(|n| n.as_str())
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Ring seqnos of an `Events` frame, in order.
pub fn ring_seqnos(v: &Value) -> Vec<u64> {
    v.get("Events")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("seqno").and_then(|n| n.as_u64()))
                .collect()
        })
        .unwrap_or_default()
}

/// Collects event names from `Events` frames until `n` events arrived, checking that
/// every frame's server_seqno is strictly greater than the previous frame's.
pub fn collect_events(client: &mut WsClient, n: usize, last_seqno: &mut u64) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        let v = client.next_json();
        let s = seqno_of(&v);
        assert!(
            s > *last_seqno,
            "server_seqno went from {last_seqno} to {s}"
        );
        *last_seqno = s;
        names.extend(event_names(&v));
    }
    names
}

/// A client socket with a tiny receive buffer, so a client that stops reading stalls the
/// server's writes after a few frames.
pub fn connect_small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("tests listen on IPv4 loopback")
    };
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket");
    let size: libc::c_int = 4096;
    // SAFETY: `fd` is the socket just created; the option value is a c_int whose size is
    // passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in and its exact size is passed.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect");
    // SAFETY: `fd` is an open, connected TCP socket that nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream
}

/// A raw TCP connection, for clients that misbehave on purpose.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        RawClient { stream }
    }

    /// Sends `request` verbatim and reads the whole response (the server closes after it).
    pub fn request(addr: SocketAddr, request: &str) -> String {
        let mut c = RawClient::connect(addr);
        c.stream.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = c.stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Performs a valid upgrade on `path` and returns the socket, positioned after the 101.
    pub fn upgraded(addr: SocketAddr, path: &str) -> RawClient {
        RawClient::upgraded_over(RawClient::connect(addr).stream, path)
    }

    /// [`RawClient::upgraded`] over a socket already connected (e.g. one with a small
    /// receive buffer).
    pub fn upgraded_over(stream: TcpStream, path: &str) -> RawClient {
        RawClient::upgraded_with(stream, path, "").0
    }

    /// A valid upgrade on `path` with `headers` (complete `Name: value\r\n` lines) added;
    /// returns the socket, positioned after the 101, and the 101 head.
    pub fn upgraded_with(stream: TcpStream, path: &str, headers: &str) -> (RawClient, String) {
        let mut c = RawClient { stream };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             {headers}\r\n"
        );
        c.stream.write_all(req.as_bytes()).expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            c.stream.read_exact(&mut byte).expect("read 101");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (c, head)
    }

    /// Client frame with FIN, `opcode`, masked (or not) with a fixed key.
    pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [1u8, 2, 3, 4];
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    pub fn send(&mut self, bytes: &[u8]) {
        // The server may close mid-write on purpose; the read side tells the outcome.
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one server frame without answering anything (no automatic pong): returns its
    /// opcode and payload, or `None` at EOF. Server frames are unmasked and unfragmented.
    pub fn read_raw_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        self.read_raw_frame_bits()
            .map(|(b0, payload)| (b0 & 0x0f, payload))
    }

    /// As [`RawClient::read_raw_frame`], with the frame's whole first byte (FIN, RSV bits,
    /// opcode) instead of the opcode alone.
    pub fn read_raw_frame_bits(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).ok()?;
                usize::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).ok()?;
                usize::try_from(u64::from_be_bytes(b)).ok()?
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0], payload))
    }

    /// Turns this socket into a tungstenite client to read server frames.
    pub fn into_ws(self) -> WsClient {
        WsClient {
            ws: WebSocket::from_raw_socket(self.stream, Role::Client, None),
            show_all: false,
        }
    }
}

/// A `ringgate serve` child process, started by `command` (the binary, or a wrapper such as
/// `setpriv` followed by it) with `args`; it has printed its banner (so it listens) and its
/// stderr keeps being collected. Killed on drop.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    /// `ringgate serve ARGS` (the test binary of this crate).
    pub fn start(args: &[&std::ffi::OsStr]) -> ServeProcess {
        ServeProcess::start_with(
            std::process::Command::new(env!("CARGO_BIN_EXE_ringgate")),
            args,
        )
    }

    /// `command serve ARGS`.
    pub fn start_with(
        mut command: std::process::Command,
        args: &[&std::ffi::OsStr],
    ) -> ServeProcess {
        use std::io::BufRead;
        let mut child = command
            .arg("serve")
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ringgate serve");
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).expect("stderr") > 0,
                "serve ended before its banner: {seen}"
            );
            seen.push_str(&line);
            if let Some(a) = line
                .split("ws://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|a| a.parse().ok())
            {
                break a;
            }
        };
        // Keep reading stderr so the child never blocks on a full pipe.
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(seen));
        let log = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || loop {
            let mut line = String::new();
            match err.read_line(&mut line) {
                Ok(n) if n > 0 => log.lock().unwrap().push_str(&line),
                _ => return,
            }
        });
        ServeProcess {
            child,
            addr,
            stderr,
        }
    }

    /// Stops the server with SIGKILL (`kill`) or SIGTERM and waits for it; a SIGTERM must
    /// exit cleanly.
    pub fn stop(mut self, kill: bool) {
        if kill {
            self.child.kill().expect("SIGKILL");
            let _ = self.child.wait();
            return;
        }
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        let exit = self.child.wait().expect("wait");
        assert!(
            exit.success(),
            "SIGTERM exits cleanly: {exit:?}\n{}",
            self.log()
        );
    }

    /// Everything the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `GET path` with optional extra header lines; (status, body).
    pub fn get(&self, path: &str, headers: &str) -> (u16, String) {
        let response = RawClient::request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"),
        );
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Streams Server-Sent Events from `url` with real `curl -sSN -i` (installed by
/// .ci/install; `extra` adds curl options): calls `on_open` once the stream's `Resume`
/// arrived, then reads until an `Events` frame holding an event named `until`. Returns the
/// response head (lower-cased) and every `id:` / `data:` line after it.
pub fn curl_sse(
    extra: &[&str],
    url: &str,
    on_open: impl FnOnce(),
    until: &str,
) -> (String, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut curl = std::process::Command::new("curl")
        .args(["-sSN", "-i", "--max-time", "60"])
        .args(extra)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl (installed by .ci/install) runs");
    let mut out = BufReader::new(curl.stdout.take().expect("stdout"));
    let (mut head, mut lines) = (String::new(), Vec::new());
    let mut on_open = Some(on_open);
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("curl output");
        assert!(n > 0, "curl ended early: {head}{lines:?}");
        if lines.is_empty() && !line.starts_with("id: ") && !line.starts_with("data: ") {
            head.push_str(&line.to_ascii_lowercase());
            continue;
        }
        let data = line.strip_prefix("data: ").map(str::to_owned);
        lines.push(line);
        let Some(data) = data else { continue };
        let v: Value = sonic_rs::from_str(data.trim_end()).expect("data is JSON");
        if kind_of(&v) == "Resume" {
            if let Some(f) = on_open.take() {
                f();
            }
        }
        if kind_of(&v) == "Events" && event_names(&v).iter().any(|n| n == until) {
            break;
        }
    }
    let _ = curl.kill();
    let _ = curl.wait();
    (head, lines)
}
