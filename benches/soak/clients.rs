//! The soak's WebSocket clients (tokio + tokio-tungstenite, on the harness's runtime):
//! steady firehose clients that check every ring seqno, churning clients, stuck clients,
//! and a connection burst.
//!
//! Every client that reads treats the end of its connection the same way: a close frame
//! from the server is fine (and counted by code); an end without one (EOF, reset) while it
//! was reading is a failure (`Shared::fail`). Clients never assert: they report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{client_async, MaybeTlsStream, WebSocketStream};

use crate::check::{Frame, Hole, SeqCheck};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// State the clients share with the harness.
#[derive(Debug)]
pub struct Shared {
    pub addr: SocketAddr,
    pub t0: Instant,
    pub stop: AtomicBool,
    /// Stops the churners only (the end of the run checks fds with the steady clients on).
    pub stop_churn: AtomicBool,
    /// The newest `(epoch, server_seqno)` a steady client saw: churners resume from near it.
    pub epoch: AtomicU64,
    pub head: AtomicU64,
    pub failures: Mutex<Vec<String>>,
    /// Problems a CPU-starved gateway or harness explains (a server-side timeout or a slow
    /// client close); the verdict fails on each unless starvation was measured just before.
    pub suspects: Mutex<Vec<(f64, String)>>,
    /// Close codes the server sent, by code, over every client.
    pub closes: Mutex<BTreeMap<u16, u64>>,
    pub churn_connections: AtomicU64,
    /// Per second of the run: how late the harness's own 50 ms ticker woke, ms (a starved
    /// harness reads slowly, and its clients are then slow clients by definition).
    pub stall_ms: Mutex<Vec<u32>>,
}

impl Shared {
    pub fn new(addr: SocketAddr) -> Shared {
        Shared {
            addr,
            t0: Instant::now(),
            stop: AtomicBool::new(false),
            stop_churn: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            head: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            suspects: Mutex::new(Vec::new()),
            closes: Mutex::new(BTreeMap::new()),
            churn_connections: AtomicU64::new(0),
            stall_ms: Mutex::new(Vec::new()),
        }
    }

    pub fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn fail(&self, what: String) {
        let line = format!("t={:.1}s {what}", self.secs());
        eprintln!("soak: FAIL {line}");
        self.failures.lock().expect("failures").push(line);
    }

    /// Records a problem that starvation could explain (judged at the end).
    pub fn suspect(&self, what: String) {
        let t = self.secs();
        eprintln!("soak: suspect t={t:.1}s {what}");
        self.suspects.lock().expect("suspects").push((t, what));
    }

    fn count_close(&self, code: u16) {
        *self.closes.lock().expect("closes").entry(code).or_default() += 1;
    }

    /// The longest harness stall in seconds `from..=to` of the run, ms.
    pub fn worst_stall(&self, from: f64, to: f64) -> u32 {
        let v = self.stall_ms.lock().expect("stall");
        let (a, b) = (
            from.max(0.0) as usize,
            (to.max(0.0) as usize + 1).min(v.len()),
        );
        v.get(a..b)
            .and_then(|w| w.iter().max().copied())
            .unwrap_or(0)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

async fn connect(addr: SocketAddr, path: &str, rcvbuf: Option<u32>) -> Result<Ws, WsError> {
    let socket = TcpSocket::new_v4()?;
    if let Some(b) = rcvbuf {
        socket.set_recv_buffer_size(b)?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}{path}");
    // A gateway that never answers the upgrade must fail the run, not hang it.
    let handshake = client_async(url, MaybeTlsStream::Plain(tcp));
    let (ws, _) = tokio::time::timeout(Duration::from_secs(15), handshake)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no upgrade in 15 s"))??;
    Ok(ws)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one steady client saw.
#[derive(Debug, Default)]
pub struct SteadyReport {
    pub check: SeqCheck,
    /// Per second of the run: the largest ring → receipt delay seen, ms (0: no events).
    pub lag_ms: Vec<u32>,
    /// Holes with the second they were seen.
    pub holes: Vec<(f64, Hole)>,
    pub reconnects: u64,
}

/// A firehose client on `/v1/ws` that checks every frame until the run stops; when the
/// server closes it, it resumes from its cursor (counted; the close itself is reported).
pub async fn steady(sh: Arc<Shared>, id: usize) -> SteadyReport {
    let mut rep = SteadyReport::default();
    let mut cursor: Option<(u64, u64)> = None;
    while !sh.stopping() {
        let path = match cursor {
            Some((epoch, seqno)) => format!("/v1/ws?resume_from={seqno}&epoch={epoch}"),
            None => "/v1/ws".to_string(),
        };
        let mut ws = match connect(sh.addr, &path, None).await {
            Ok(ws) => ws,
            Err(e) => {
                sh.suspect(format!("steady client {id}: connect failed: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if cursor.is_some() {
            rep.reconnects += 1;
        }
        let mut epoch_seen = false;
        loop {
            // Checked on every frame too: a busy stream never lets the timer branch win.
            if sh.stopping() {
                let _ = ws.close(None).await;
                return rep;
            }
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if sh.stopping() { let _ = ws.close(None).await; return rep; }
                    continue;
                }
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let f: Frame = match sonic_rs::from_str(t.as_str()) {
                        Ok(f) => f,
                        Err(e) => {
                            sh.fail(format!("steady client {id}: unparsable frame: {e}"));
                            continue;
                        }
                    };
                    if let Some(h) = &f.hello {
                        let same = cursor.is_some_and(|(e, _)| e == h.epoch);
                        rep.check.on_connect(same);
                        sh.epoch.store(h.epoch, Ordering::Relaxed);
                        cursor = Some((h.epoch, cursor.map_or(0, |c| c.1)));
                        epoch_seen = true;
                    }
                    let holes = rep.check.on_frame(&f);
                    let t = sh.secs();
                    for h in holes {
                        if h.announced_by.is_none() {
                            sh.fail(format!(
                                "steady client {id}: SILENT LOSS of ring seqnos {}..={}",
                                h.from, h.to
                            ));
                        }
                        rep.holes.push((t, h));
                    }
                    if let Some(evs) = f.events.as_ref().filter(|e| !e.is_empty()) {
                        let oldest = evs.iter().map(|e| e.timestamp_ns).min().unwrap_or(0);
                        let lag = now_ns().saturating_sub(oldest) / 1_000_000;
                        let sec = t as usize;
                        if rep.lag_ms.len() <= sec {
                            rep.lag_ms.resize(sec + 1, 0);
                        }
                        let slot = &mut rep.lag_ms[sec];
                        *slot = (*slot).max(lag.clamp(1, u64::from(u32::MAX)) as u32);
                    }
                    if epoch_seen && !f.is_per_connection() {
                        if let Some(c) = cursor.as_mut() {
                            c.1 = c.1.max(f.server_seqno);
                        }
                        sh.head.fetch_max(f.server_seqno, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = close_parts(frame.as_ref());
                    sh.count_close(code);
                    sh.suspect(format!(
                        "steady client {id} closed by the server: {code} {reason:?}"
                    ));
                    let _ = ws.close(None).await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    sh.fail(format!(
                        "steady client {id}: connection ended without a close frame: {e}"
                    ));
                    break;
                }
                None => {
                    sh.fail(format!(
                        "steady client {id}: connection ended without a close frame"
                    ));
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rep
}

/// Wakes every 50 ms and records how late it woke, per second of the run, until the run
/// stops: the harness's own starvation (other processes on the machine, or its clients
/// more than its threads can carry).
pub async fn stall_ticker(sh: Arc<Shared>) {
    const TICK: Duration = Duration::from_millis(50);
    while !sh.stopping() {
        let before = Instant::now();
        tokio::time::sleep(TICK).await;
        let late = before.elapsed().saturating_sub(TICK).as_millis() as u32;
        let sec = sh.secs() as usize;
        let mut v = sh.stall_ms.lock().expect("stall");
        if v.len() <= sec {
            v.resize(sec + 1, 0);
        }
        v[sec] = v[sec].max(late);
    }
}

fn close_parts(frame: Option<&CloseFrame>) -> (u16, String) {
    frame.map_or((1005, String::new()), |f| {
        (u16::from(f.code), f.reason.as_str().to_owned())
    })
}

/// How a read phase ended.
enum ReadEnd {
    /// The deadline passed with the connection open.
    Deadline,
    /// A text frame containing what was looked for arrived.
    Seen,
    /// The server closed with this code (its close frame arrived).
    Closed(u16, String),
    /// The connection ended without a close frame.
    Broken(String),
}

/// Reads (counting, not parsing) until `deadline`, or until a text frame containing `want`
/// when given.
async fn read_until(ws: &mut Ws, deadline: Instant, want: Option<&str>) -> ReadEnd {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ReadEnd::Deadline;
        }
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return ReadEnd::Deadline,
            Ok(Some(Ok(Message::Text(t)))) => {
                if want.is_some_and(|w| t.as_str().contains(w)) {
                    return ReadEnd::Seen;
                }
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                let (code, reason) = close_parts(f.as_ref());
                return ReadEnd::Closed(code, reason);
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return ReadEnd::Broken(e.to_string()),
            Ok(None) => return ReadEnd::Broken("EOF".into()),
        }
    }
}

/// A tiny deterministic PRNG (xorshift64*), so a run can be repeated with `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const CHANNELS: [&str; 5] = [
    "/v1/ws",
    "/v1/ws/blocks",
    "/v1/ws/txs",
    "/v1/ws/contention",
    "/v1/ws/lifecycle",
];
const STAGES: [&str; 4] = ["Proposed", "Voted", "Finalized", "Verified"];

/// Churn counters of one task.
#[derive(Debug, Default, Clone)]
pub struct ChurnStats {
    pub sessions: u64,
    pub resumes: u64,
    pub aborts: u64,
    pub garbage: u64,
    pub oversized: u64,
    pub subscribes: u64,
}

/// A client that connects, does one random thing, and goes, until the churn stops:
/// sessions on random channels with random `events` / `min_stage` / resume cursors and
/// mid-stream subscribes (60 %), aborted sockets (10 %), invalid JSON then a binary message
/// (expects an `Error` frame, then 1003; 10 %), an oversized message (expects 1009; 10 %),
/// bad subscribes (expects `Error`, then `Subscribed`; 10 %).
pub async fn churner(sh: Arc<Shared>, id: usize, seed: u64) -> ChurnStats {
    let mut rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut st = ChurnStats::default();
    while !sh.stop_churn.load(Ordering::Relaxed) {
        let action = rng.below(10);
        let channel = rng.pick(&CHANNELS);
        let mut path = channel.to_string();
        let mut sep = '?';
        if action < 6 && rng.below(3) == 0 {
            let (epoch, head) = (
                sh.epoch.load(Ordering::Relaxed),
                sh.head.load(Ordering::Relaxed),
            );
            if head > 0 {
                let back = rng.below(20_000).min(head);
                path.push_str(&format!("{sep}resume_from={}&epoch={epoch}", head - back));
                sep = '&';
                st.resumes += 1;
            }
        }
        if action < 6 && channel == "/v1/ws" && rng.below(2) == 0 {
            let ev = rng.pick(&[
                "TxnLog",
                "BlockStart,BlockEnd",
                "TxnEnd,TPS",
                "TxnCallFrame",
            ]);
            path.push_str(&format!("{sep}events={ev}"));
            sep = '&';
        }
        if action < 6 && rng.below(3) == 0 {
            path.push_str(&format!("{sep}min_stage={}", rng.pick(&STAGES)));
        }
        sh.churn_connections.fetch_add(1, Ordering::Relaxed);
        let mut ws = match connect(sh.addr, &path, None).await {
            Ok(ws) => ws,
            Err(e) => {
                sh.suspect(format!("churner {id}: connect {path} failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let dwell = Duration::from_millis(200 + rng.below(2_800));
        let outcome = match action {
            0..=5 => {
                st.sessions += 1;
                let mut end = read_until(&mut ws, Instant::now() + dwell / 2, None).await;
                if matches!(end, ReadEnd::Deadline) && rng.below(2) == 0 && channel == "/v1/ws" {
                    st.subscribes += 1;
                    let sub = format!(
                        r#"{{"subscribe":{{"events":["TxnLog","BlockStart"],"min_stage":"{}"}}}}"#,
                        rng.pick(&STAGES)
                    );
                    let _ = ws.send(Message::Text(sub.into())).await;
                    end = read_until(&mut ws, Instant::now() + dwell / 2, None).await;
                }
                end
            }
            6 => {
                st.aborts += 1;
                let _ = read_until(&mut ws, Instant::now() + dwell / 3, None).await;
                drop(ws);
                continue;
            }
            7 => {
                st.garbage += 1;
                let _ = ws.send(Message::Text("{not json".into())).await;
                let seen = read_until(
                    &mut ws,
                    Instant::now() + Duration::from_secs(10),
                    Some("\"Error\""),
                )
                .await;
                if !matches!(seen, ReadEnd::Seen) {
                    no_answer(seen, "an Error frame for invalid JSON")
                } else {
                    let _ = ws.send(Message::Binary(vec![0u8, 1, 2].into())).await;
                    expect_close(&mut ws, 1003).await
                }
            }
            8 => {
                st.oversized += 1;
                let _ = ws.send(Message::Text("x".repeat(70_000).into())).await;
                expect_close(&mut ws, 1009).await
            }
            _ => {
                st.subscribes += 1;
                let _ = ws
                    .send(Message::Text(r#"{"subscribe":["NoSuchEvent"]}"#.into()))
                    .await;
                let end = read_until(
                    &mut ws,
                    Instant::now() + Duration::from_secs(10),
                    Some("unknown_event"),
                )
                .await;
                if matches!(end, ReadEnd::Seen) {
                    let _ = ws
                        .send(Message::Text(r#"{"subscribe":["BlockStart"]}"#.into()))
                        .await;
                    read_until(&mut ws, Instant::now() + dwell, None).await
                } else {
                    no_answer(end, "an Error frame for an unknown event")
                }
            }
        };
        match outcome {
            ReadEnd::Deadline | ReadEnd::Seen => {
                close_politely(&sh, &format!("churner {id}"), &mut ws).await
            }
            ReadEnd::Closed(code, reason) => {
                sh.count_close(code);
                if !matches!(code, 1003 | 1009) {
                    sh.suspect(format!(
                        "churner {id}: {path}: closed by the server {code} {reason:?}"
                    ));
                }
            }
            // A close other than the one expected (a slow-client 1008 while waiting for a
            // 1003) still came with its close frame, and an answer that did not come within
            // its deadline (the connection still open): starvation can explain either.
            ReadEnd::Broken(e) if e.starts_with("expected close") || e.starts_with("no ") => {
                sh.suspect(format!("churner {id}: {path}: {e}"))
            }
            ReadEnd::Broken(e) => sh.fail(format!(
                "churner {id}: {path}: connection ended without a close frame while reading: {e}"
            )),
        }
    }
    st
}

/// A read that should have seen an answer: the deadline passing is itself a failure.
fn no_answer(end: ReadEnd, what: &str) -> ReadEnd {
    match end {
        ReadEnd::Deadline => ReadEnd::Broken(format!("no {what} within 10 s")),
        other => other,
    }
}

/// Reads until the server's close frame, which must carry `code`.
async fn expect_close(ws: &mut Ws, code: u16) -> ReadEnd {
    match read_until(ws, Instant::now() + Duration::from_secs(15), None).await {
        ReadEnd::Closed(c, r) if c == code => ReadEnd::Closed(c, r),
        ReadEnd::Closed(c, r) => ReadEnd::Broken(format!("expected close {code}, got {c} {r:?}")),
        ReadEnd::Deadline | ReadEnd::Seen => {
            ReadEnd::Broken(format!("no close {code} within 15 s"))
        }
        broken => broken,
    }
}

/// Sends a close and reads to the server's close reply.
async fn close_politely(sh: &Shared, who: &str, ws: &mut Ws) {
    if ws.close(None).await.is_err() {
        return;
    }
    match read_until(ws, Instant::now() + Duration::from_secs(10), None).await {
        ReadEnd::Closed(..) => {}
        ReadEnd::Broken(e) if e.contains("closed normally") || e.contains("ConnectionClosed") => {}
        ReadEnd::Broken(e) => sh.suspect(format!("{who}: no close reply: {e}")),
        ReadEnd::Deadline | ReadEnd::Seen => {
            sh.suspect(format!("{who}: no close reply within 10 s"))
        }
    }
}

/// What the stuck clients of one fault got.
#[derive(Debug, Default, Clone, Copy)]
pub struct StuckReport {
    /// Shed (priority lanes, the default): a `Shed` report, and still connected after it.
    pub shed_kept: usize,
    /// Closed 1008 `slow client` after their data (lanes off, or the top lane overflowed).
    pub closed_1008: usize,
    /// Anything else (each also a failure of the run).
    pub bad: usize,
}

/// Opens `n` firehose clients with small receive buffers that stop reading until
/// `disconnected()` says the server closed them all for being slow or `stall` passes (keep
/// it below the server's pong timeout, 60 s by default, or the silence itself closes them),
/// then reads each. Under priority lanes (the default) the server sheds their lower lanes
/// and keeps them: each must get a `Shed` report and still be connected 2 s later, then it
/// closes politely. With lanes off (or if even the top lane overflowed) it must get the 1008
/// `slow client` close frame after what was in flight. A connection that ends without a
/// close frame fails the run.
pub async fn stuck_clients(
    sh: &Shared,
    n: usize,
    stall: Duration,
    disconnected: impl Fn() -> u64,
) -> StuckReport {
    let before = disconnected();
    let mut clients = Vec::new();
    for _ in 0..n {
        match connect(sh.addr, "/v1/ws", Some(4096)).await {
            Ok(ws) => clients.push(ws),
            Err(e) => sh.fail(format!("stuck client: connect failed: {e}")),
        }
    }
    let end = Instant::now() + stall;
    while disconnected() < before + clients.len() as u64 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut report = StuckReport::default();
    for mut ws in clients {
        let mut end = read_until(
            &mut ws,
            Instant::now() + Duration::from_secs(30),
            Some("\"Shed\""),
        )
        .await;
        if matches!(end, ReadEnd::Seen) {
            end = match read_until(&mut ws, Instant::now() + Duration::from_secs(2), None).await {
                ReadEnd::Deadline => {
                    report.shed_kept += 1;
                    close_politely(sh, "stuck client", &mut ws).await;
                    continue;
                }
                other => other,
            };
        }
        match end {
            ReadEnd::Closed(1008, r) if r.starts_with("slow client") => {
                sh.count_close(1008);
                report.closed_1008 += 1;
            }
            ReadEnd::Closed(c, r) => {
                report.bad += 1;
                sh.fail(format!(
                    "stuck client closed with {c} {r:?}, not 1008 slow client"
                ));
            }
            ReadEnd::Broken(e) => {
                report.bad += 1;
                sh.fail(format!(
                    "stuck client: connection ended without a close frame: {e}"
                ));
            }
            ReadEnd::Deadline | ReadEnd::Seen => {
                report.bad += 1;
                sh.fail("stuck client neither shed nor closed by the server".into());
            }
        }
    }
    report
}

/// Opens `n` connections at once on `/v1/ws/blocks`; each must get its `Hello` (or an
/// HTTP refusal, counted) and then closes. Returns (hello, refused, failed, seconds).
pub async fn burst(sh: &Arc<Shared>, n: usize) -> (usize, usize, usize, f64) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let sh = sh.clone();
            tokio::spawn(async move {
                let mut ws = match connect(sh.addr, "/v1/ws/blocks", None).await {
                    Ok(ws) => ws,
                    Err(WsError::Http(r)) => return Err(Some(r.status().as_u16())),
                    Err(_) => return Err(None),
                };
                match read_until(
                    &mut ws,
                    Instant::now() + Duration::from_secs(20),
                    Some("\"Hello\""),
                )
                .await
                {
                    ReadEnd::Seen => {
                        let _ = ws.close(None).await;
                        let _ = read_until(&mut ws, Instant::now() + Duration::from_secs(5), None)
                            .await;
                        Ok(())
                    }
                    _ => Err(None),
                }
            })
        })
        .collect();
    let (mut hello, mut refused, mut failed) = (0, 0, 0);
    for t in tasks {
        match t.await {
            Ok(Ok(())) => hello += 1,
            Ok(Err(Some(_status))) => refused += 1,
            _ => failed += 1,
        }
    }
    (hello, refused, failed, start.elapsed().as_secs_f64())
}
