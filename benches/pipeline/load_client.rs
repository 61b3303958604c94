//! The load client: N WebSocket connections with chosen paths and subscriptions, spread over a
//! few threads that each run a small epoll loop, plus optional stuck clients that subscribe and
//! never read.
//!
//! Runs on its own threads inside the harness process (pinned when asked). Inputs: a
//! [`LoadConfig`]. Output: a [`LoadResult`] per run — per-connection counters and one merged
//! latency histogram (ns, ring timestamp → receipt on CLOCK_REALTIME).
//!
//! Cheap by construction: plain nonblocking sockets, one read buffer per thread, frames parsed
//! by [`super::ws`], messages scanned by [`super::scan`] (never a JSON parse). Counters cover
//! only the measurement window `[start, end)`; the `server_seqno` order check covers the whole
//! connection. Never writes to a connection except the subscribe message and pongs.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::epoll::Epoll;
use super::process::pin_current_thread;
use super::scan::{Kind, Scanner};
use super::ws::{self, Handshake, OpCode, Parsed};

/// One connection's path and first message.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Upgrade path, e.g. `/v1/ws` or `/v1/ws/txs`.
    pub path: String,
    /// JSON text sent right after the handshake (e.g. `{"subscribe":["TxnLog"]}`), if any.
    pub subscribe: Option<String>,
    /// Record when a frame with at least this `server_seqno` arrives (see
    /// [`ConnStats::caught_up_after`]).
    pub catch_up_to: Option<u64>,
    /// Offer permessage-deflate (and inflate what comes compressed).
    pub deflate: bool,
}

/// What to open.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    /// Connections that read everything.
    pub clients: Vec<ClientSpec>,
    /// Connections that subscribe and never read.
    pub stuck: Vec<ClientSpec>,
    /// Reader threads (each owns a share of the clients).
    pub threads: usize,
    /// Cores the reader threads are pinned to (empty: not pinned).
    pub cpus: Vec<usize>,
    /// Per-connection connect + handshake timeout.
    pub connect_timeout: Duration,
    /// Time for opening all reading connections; the ones not tried by then count as failed.
    pub connect_budget: Duration,
}

impl ClientSpec {
    /// A connection on `path` that sends `subscribe` (if any) and records no catch-up point.
    pub fn new(path: impl Into<String>, subscribe: Option<String>) -> ClientSpec {
        ClientSpec {
            path: path.into(),
            subscribe,
            catch_up_to: None,
            deflate: false,
        }
    }
}

impl LoadConfig {
    /// `clients` reading connections to `addr` on one unpinned thread, no stuck ones, 10 s to
    /// connect each and 60 s for all; callers override the rest with struct-update syntax.
    pub fn new(addr: SocketAddr, clients: Vec<ClientSpec>) -> LoadConfig {
        LoadConfig {
            addr,
            clients,
            stuck: Vec::new(),
            threads: 1,
            cpus: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            connect_budget: Duration::from_secs(60),
        }
    }
}

/// Counters of one reading connection, over the measurement window.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub events: u64,
    /// WebSocket messages (frames, or reassembled fragments) of any kind.
    pub frames: u64,
    pub event_frames: u64,
    /// Bytes of the frames completed in the window (WebSocket framing included).
    pub bytes: u64,
    pub warnings: u64,
    pub gaps: u64,
    /// Largest `"dropped"` count any warning or gap frame announced.
    pub dropped: u64,
    /// `Error` frames: the server refused a client message (e.g. the subscription).
    pub errors: u64,
    pub unrecognised: u64,
    pub future_timestamps: u64,
    /// Time from the end of the handshake until a frame with `server_seqno` at or above the
    /// spec's `catch_up_to` arrived (resume runs).
    pub caught_up_after: Option<Duration>,
    /// `server_seqno` of the first data frame (whole connection): where a resume started.
    pub first_data_seqno: Option<u64>,
    /// A `Resume` frame said `"recovered":false` (data after the cursor was gone).
    pub resume_unrecovered: bool,
    /// Frames whose `server_seqno` was not above the previous frame's (whole connection).
    pub seqno_violations: u64,
    /// The server closed the connection, broke the protocol, or (with `failed_to_open`)
    /// refused it.
    pub ended: Option<String>,
    /// The connection never opened (connect or handshake failed, or the budget ran out).
    pub failed_to_open: bool,
}

/// Everything a run measured on the client side.
#[derive(Debug)]
pub struct LoadResult {
    pub window: Duration,
    pub conns: Vec<ConnStats>,
    /// Ring timestamp → receipt, ns, all events of all connections in the window.
    pub latency: Histogram<u64>,
    /// CPU seconds the reader threads used during the window.
    pub client_cpu_s: f64,
    /// Stuck clients open during the run, and how many failed to open.
    pub stuck: usize,
    pub stuck_failed: usize,
}

/// Why the load could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: ws::WsError,
    },
    #[error("load client thread: {0}")]
    Thread(String),
}

/// Connections open and ready; [`LoadClient::measure`] reads for a window and returns results.
#[derive(Debug)]
pub struct LoadClient {
    workers: Vec<Worker>,
    stuck: Vec<TcpStream>,
    stuck_failed: usize,
}

#[derive(Debug)]
struct Worker {
    go: mpsc::Sender<(Instant, Instant)>,
    handle: JoinHandle<Result<ThreadResult, String>>,
}

#[derive(Debug)]
struct ThreadResult {
    conns: Vec<ConnStats>,
    latency: Histogram<u64>,
    cpu_s: f64,
}

impl LoadClient {
    /// Opens every connection (handshake and subscribe done) and returns once all are ready.
    pub fn connect(cfg: &LoadConfig) -> Result<LoadClient, LoadError> {
        let threads = cfg.threads.clamp(1, cfg.clients.len().max(1));
        let mut shares: Vec<Vec<ClientSpec>> = vec![Vec::new(); threads];
        for (i, c) in cfg.clients.iter().enumerate() {
            shares[i % threads].push(c.clone());
        }
        let deadline = Instant::now() + cfg.connect_budget;
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Option<LoadError>)>();
        let mut workers = Vec::new();
        for share in shares {
            let (go_tx, go_rx) = mpsc::channel();
            let ready = ready_tx.clone();
            let (addr, cpus, timeout) = (cfg.addr, cfg.cpus.clone(), cfg.connect_timeout);
            let handle = std::thread::Builder::new()
                .name("load-client".into())
                .spawn(move || {
                    let _ = pin_current_thread(&cpus);
                    let (conns, failed, first_err) = open_all(addr, &share, timeout, deadline);
                    let _ = ready.send((conns.len(), first_err));
                    let (start, end) = go_rx.recv().map_err(|e| e.to_string())?;
                    let mut r = read_loop(conns, start, end).map_err(|e| e.to_string())?;
                    r.conns.extend(failed);
                    Ok(r)
                })
                .map_err(|e| LoadError::Thread(e.to_string()))?;
            workers.push(Worker { go: go_tx, handle });
        }
        drop(ready_tx);
        let mut opened = 0;
        let mut first_err = None;
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok((n, err)) => {
                    opened += n;
                    if first_err.is_none() {
                        first_err = err;
                    }
                }
                Err(_) => return Err(LoadError::Thread("a load thread died".into())),
            }
        }
        // A server that accepts nobody is a broken run, not a measurement.
        if opened == 0 && !cfg.clients.is_empty() {
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        let mut stuck = Vec::new();
        let mut stuck_failed = 0;
        for spec in &cfg.stuck {
            match Conn::open(cfg.addr, spec, cfg.connect_timeout) {
                Ok(conn) => {
                    conn.stream.set_nonblocking(false).ok();
                    shrink_receive_buffer(&conn.stream);
                    stuck.push(conn.stream);
                }
                Err(_) => stuck_failed += 1,
            }
        }
        Ok(LoadClient {
            workers,
            stuck,
            stuck_failed,
        })
    }

    /// Reads without counting until `start`, counts until `end`, then closes everything.
    pub fn measure(self, start: Instant, end: Instant) -> Result<LoadResult, LoadError> {
        let window = end.saturating_duration_since(start);
        for w in &self.workers {
            w.go.send((start, end))
                .map_err(|_| LoadError::Thread("a load thread died".into()))?;
        }
        let mut conns = Vec::new();
        let mut latency = new_histogram();
        let mut client_cpu_s = 0.0;
        for w in self.workers {
            let r = w
                .handle
                .join()
                .map_err(|_| LoadError::Thread("a load thread panicked".into()))?
                .map_err(LoadError::Thread)?;
            conns.extend(r.conns);
            let _ = latency.add(&r.latency);
            client_cpu_s += r.cpu_s;
        }
        Ok(LoadResult {
            window,
            conns,
            latency,
            client_cpu_s,
            stuck: self.stuck.len(),
            stuck_failed: self.stuck_failed,
        })
    }
}

/// Opens `share` until `deadline`; failures become [`ConnStats`] with `failed_to_open`.
fn open_all(
    addr: SocketAddr,
    share: &[ClientSpec],
    timeout: Duration,
    deadline: Instant,
) -> (Vec<Conn>, Vec<ConnStats>, Option<LoadError>) {
    let mut conns = Vec::with_capacity(share.len());
    let mut failed = Vec::new();
    let mut first_err = None;
    for spec in share {
        let reason = if Instant::now() >= deadline {
            "connect budget exhausted".to_string()
        } else {
            match Conn::open(addr, spec, timeout) {
                Ok(c) => {
                    conns.push(c);
                    continue;
                }
                Err(e) => {
                    let r = e.to_string();
                    first_err.get_or_insert(e);
                    r
                }
            }
        };
        failed.push(ConnStats {
            ended: Some(reason),
            failed_to_open: true,
            ..ConnStats::default()
        });
    }
    (conns, failed, first_err)
}

/// A latency histogram: 1 ns to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME, the clock ring timestamps use.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A stuck client should stall the server quickly, so its kernel receive buffer is small.
fn shrink_receive_buffer(stream: &TcpStream) {
    let size: libc::c_int = 4096;
    // SAFETY: valid socket fd owned by `stream`; the option value is a live c_int of the
    // length passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// One reading connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Bytes of an incomplete frame carried over between reads.
    pending: Vec<u8>,
    /// A fragmented message being reassembled.
    message: Vec<u8>,
    /// `server_seqno` of the last data frame.
    last_seqno: Option<u64>,
    catch_up_to: Option<u64>,
    /// When the handshake completed.
    opened: Instant,
    stats: ConnStats,
    open: bool,
}

impl Conn {
    /// Connects, upgrades and sends the subscription, all blocking; then goes nonblocking.
    fn open(addr: SocketAddr, spec: &ClientSpec, timeout: Duration) -> Result<Conn, LoadError> {
        let io_err = |source| LoadError::Connect { addr, source };
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
        stream
            .write_all(
                ws::handshake_request(&addr.to_string(), &spec.path, spec.deflate).as_bytes(),
            )
            .map_err(io_err)?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let head = loop {
            let n = stream.read(&mut chunk).map_err(io_err)?;
            if n == 0 {
                return Err(io_err(io::ErrorKind::UnexpectedEof.into()));
            }
            buf.extend_from_slice(&chunk[..n]);
            match ws::parse_handshake_response(&buf) {
                Ok(Handshake::NeedMore) => continue,
                Ok(Handshake::Done(len)) => break len,
                Err(source) => return Err(LoadError::Handshake { addr, source }),
            }
        };
        if let Some(sub) = &spec.subscribe {
            stream
                .write_all(&ws::client_frame(OpCode::Text, sub.as_bytes()))
                .map_err(io_err)?;
        }
        stream.set_nonblocking(true).map_err(io_err)?;
        Ok(Conn {
            stream,
            pending: buf.split_off(head),
            message: Vec::new(),
            last_seqno: None,
            catch_up_to: spec.catch_up_to,
            opened: Instant::now(),
            stats: ConnStats::default(),
            open: true,
        })
    }

    /// Consumes every complete frame in `self.pending` followed by `data`.
    fn absorb(&mut self, data: &[u8], now: &Now, scanner: &Scanner, hist: &mut Histogram<u64>) {
        if self.pending.is_empty() {
            let used = self.frames(data, now, scanner, hist);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let used = self.frames(&buf, now, scanner, hist);
            buf.drain(..used);
            if buf.is_empty() && buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
            self.pending = buf;
        }
    }

    /// Handles complete frames at the start of `buf`; returns the bytes consumed.
    fn frames(
        &mut self,
        buf: &[u8],
        now: &Now,
        scanner: &Scanner,
        hist: &mut Histogram<u64>,
    ) -> usize {
        let mut off = 0;
        while self.open {
            let frame = match ws::parse_frame(&buf[off..]) {
                Ok(Parsed::NeedMore) => break,
                Ok(Parsed::Frame(f)) => f,
                Err(e) => {
                    self.end(e.to_string());
                    break;
                }
            };
            let payload = &buf[off + frame.payload.start..off + frame.payload.end];
            off += frame.payload.end;
            // Whole frames, counted when they complete, like events: a multi-megabyte frame
            // straddling a window edge then counts entirely on one side for both.
            if now.counting {
                self.stats.bytes += frame.payload.end as u64;
            }
            match frame.opcode {
                // The gateway never fragments, so a compressed message is one frame.
                OpCode::Text | OpCode::Binary if frame.rsv1 => match ws::inflate(payload) {
                    Some(msg) => self.message_done(&msg, now, scanner, hist),
                    None => self.end("compressed message does not inflate".into()),
                },
                OpCode::Text | OpCode::Binary if frame.fin && self.message.is_empty() => {
                    self.message_done(payload, now, scanner, hist);
                }
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    self.message.extend_from_slice(payload);
                    if frame.fin {
                        let msg = std::mem::take(&mut self.message);
                        self.message_done(&msg, now, scanner, hist);
                    }
                }
                OpCode::Ping => {
                    // Best effort: a pong that would block is skipped, like a busy client.
                    let _ = self.stream.write(&ws::client_frame(OpCode::Pong, payload));
                }
                OpCode::Pong => {}
                OpCode::Close => self.end("server closed".into()),
            }
        }
        off
    }

    fn message_done(
        &mut self,
        msg: &[u8],
        now: &Now,
        scanner: &Scanner,
        hist: &mut Histogram<u64>,
    ) {
        let m = scanner.scan(msg, now.realtime_ns, hist);
        if let Some(s) = m.server_seqno {
            // Data frames take new, strictly increasing seqnos; per-connection frames repeat
            // the cursor, so they may equal the last data seqno but never go below it.
            if m.kind.is_data() {
                if self.last_seqno.is_some_and(|last| s <= last) {
                    self.stats.seqno_violations += 1;
                }
                self.last_seqno = Some(s);
            } else if self.last_seqno.is_some_and(|last| s < last) {
                self.stats.seqno_violations += 1;
            }
            if m.kind.is_data() && self.stats.first_data_seqno.is_none() {
                self.stats.first_data_seqno = Some(s);
            }
            if let Some(target) = self.catch_up_to.filter(|_| m.kind.is_data()) {
                if s >= target && self.stats.caught_up_after.is_none() {
                    self.stats.caught_up_after = Some(self.opened.elapsed());
                }
            }
        }
        if m.kind == Kind::Control && memchr::memmem::find(msg, br#""recovered":false"#).is_some() {
            self.stats.resume_unrecovered = true;
        }
        if !now.counting {
            return;
        }
        let st = &mut self.stats;
        st.frames += 1;
        st.future_timestamps += m.future_timestamps;
        match m.kind {
            Kind::Events { events } => {
                st.events += events;
                st.event_frames += 1;
            }
            Kind::Warning { dropped } => {
                st.warnings += 1;
                st.dropped = st.dropped.max(dropped.unwrap_or(0));
            }
            Kind::Gap { dropped } => {
                st.gaps += 1;
                st.dropped = st.dropped.max(dropped.unwrap_or(0));
            }
            Kind::Data | Kind::Control => {}
            Kind::Error => st.errors += 1,
            Kind::Unrecognised => st.unrecognised += 1,
        }
    }

    fn end(&mut self, why: String) {
        self.open = false;
        self.stats.ended.get_or_insert(why);
    }
}

/// The receipt time of what one read returned, and whether it falls in the window.
struct Now {
    realtime_ns: u64,
    counting: bool,
}

/// Reads every connection until `end`, counting from `start`.
fn read_loop(mut conns: Vec<Conn>, start: Instant, end: Instant) -> io::Result<ThreadResult> {
    let scanner = Scanner::default();
    let mut measured = new_histogram();
    let mut warm = new_histogram();
    let epoll = Epoll::new()?;
    for (i, c) in conns.iter().enumerate() {
        epoll.add(c.stream.as_raw_fd(), i as u64)?;
    }
    // Bytes that arrived with the handshake response.
    let t = Instant::now();
    let now = Now {
        realtime_ns: realtime_ns(),
        counting: t >= start && t < end,
    };
    for c in &mut conns {
        let carried = std::mem::take(&mut c.pending);
        let hist = if now.counting {
            &mut measured
        } else {
            &mut warm
        };
        c.absorb(&carried, &now, &scanner, hist);
    }
    let mut scratch = vec![0u8; 256 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut cpu_at_start = None;
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        if cpu_at_start.is_none() && t >= start {
            cpu_at_start = Some(thread_cpu_s());
        }
        let wait_ms = (end - t).as_millis().clamp(1, 50) as i32;
        let ready = epoll.wait(&mut events, wait_ms)?;
        for ev in &events[..ready] {
            let Some(c) = conns.get_mut(ev.u64 as usize) else {
                continue;
            };
            // A few reads per wake-up, so one busy connection cannot starve the others.
            for _ in 0..4 {
                if !c.open {
                    break;
                }
                match c.stream.read(&mut scratch) {
                    Ok(0) => {
                        c.end("eof".into());
                        let _ = epoll.delete(c.stream.as_raw_fd());
                    }
                    Ok(n) => {
                        let t = Instant::now();
                        let now = Now {
                            realtime_ns: realtime_ns(),
                            counting: t >= start && t < end,
                        };
                        let hist = if now.counting {
                            &mut measured
                        } else {
                            &mut warm
                        };
                        c.absorb(&scratch[..n], &now, &scanner, hist);
                        if n < scratch.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        c.end(e.to_string());
                        let _ = epoll.delete(c.stream.as_raw_fd());
                    }
                }
            }
        }
        if warm.len() > 1_000_000 {
            warm.reset();
        }
    }
    Ok(ThreadResult {
        conns: conns.into_iter().map(|c| c.stats).collect(),
        latency: measured,
        cpu_s: cpu_at_start.map_or(0.0, |c0| thread_cpu_s() - c0),
    })
}
