//! The floor: the simplest program that does ringgate's job, measured in the same harness so
//! every ringgate figure also reads as "how far above the least this job can cost here".
//!
//! One glommio thread, nothing else: a ring task reads the same ring with ringgate's
//! [`RingReader`] and encodes each event once with ringgate's [`Encoder`] (so the bytes per
//! event are ringgate's), then appends the event's JSON to the pending `Events` frame of every
//! connection whose subscription takes it; at the end of each pass over the ring (a tick) it
//! closes each pending frame and wakes that connection's writer, which sends everything
//! pending in one write (while a write is in flight, the next frames pile up behind it: one
//! write per connection per tick at most, coalesced under load). When the ring has nothing,
//! the ring task sleeps 50 µs (a glommio timer), like ringgate's default tailer idle sleep.
//!
//! What it leaves out, by design: no cross-thread hand-off (reading and sending share one
//! core), no chain tracking, `min_stage` copies, resume store, keys beyond the filter's,
//! back-pressure accounting, Hello/Gap/Warning frames or REST. A connection whose pending
//! bytes pass [`MAX_PENDING`] is dropped (a stuck client must not eat the host).
//!
//! Runs as its own process (`pipeline --serve-floor --ring P --listen A`) so its CPU and
//! memory are measured like ringgate's. Serves `GET /metrics` with the two counters the
//! harness reads. Subscriptions: the baseline's subset ([`Filter`]), tested per connection
//! per event on the keys the encoder computed once.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::future::{self, poll_fn};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};

use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::ring::{AttachError, ReadOutcome, Ring, RingReader, StartAt};
use ringgate::wire::http::{parse_request, Parsed, RequestLimits};
use ringgate::wire::ws::frame::{write_frame_header, Decoded, FrameDecoder, OpCode};

use super::baseline_filter::Filter;

/// Idle sleep of the ring task: ringgate's default tailer sleep.
const IDLE_SLEEP: Duration = Duration::from_micros(50);
/// Ring events read per pass before the writers get a turn.
const EVENTS_PER_TICK: usize = 1024;
/// A connection with more unsent bytes than this is dropped.
const MAX_PENDING: usize = 64 << 20;

/// Why the floor could not run.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("executor: {0}")]
    Executor(String),
    #[error("ring: {0}")]
    Ring(#[from] AttachError),
}

/// One WebSocket connection as the ring task sees it.
#[derive(Debug)]
struct Conn {
    fd: std::os::fd::RawFd,
    /// The writer task is waiting for the socket: new frames queue behind its bytes.
    writing: Cell<bool>,
    filter: RefCell<Filter>,
    /// Events of this tick, joined by commas (the inside of `"Events":[…]`).
    body: RefCell<Vec<u8>>,
    /// server_seqno of the last event in `body`.
    last: Cell<u64>,
    /// Complete frames not yet handed to the socket.
    out: RefCell<Vec<u8>>,
    writer: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Conn {
    fn new(fd: std::os::fd::RawFd, filter: Filter) -> Conn {
        Conn {
            fd,
            writing: Cell::new(false),
            filter: RefCell::new(filter),
            body: RefCell::default(),
            last: Cell::new(0),
            out: RefCell::default(),
            writer: RefCell::default(),
            closed: Cell::new(false),
        }
    }

    /// Closes this tick's frame into `out` and wakes the writer.
    fn end_tick(&self) {
        let mut body = self.body.borrow_mut();
        if body.is_empty() {
            return;
        }
        let prefix = format!(r#"{{"server_seqno":{},"Events":["#, self.last.get());
        let mut out = self.out.borrow_mut();
        write_frame_header(OpCode::Text, prefix.len() + body.len() + 2, &mut out);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"]}");
        body.clear();
        if !self.writing.get() {
            // One write now; EAGAIN (or a short write) leaves the rest to the writer task.
            match ringgate::sys::send_nonblocking(self.fd, &[std::io::IoSlice::new(&out)]) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    drop(out);
                    return self.close();
                }
            }
        }
        if out.len() > MAX_PENDING {
            drop(out);
            return self.close();
        }
        if out.is_empty() {
            return;
        }
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The whole server's state (one thread).
#[derive(Debug, Default)]
struct Floor {
    conns: RefCell<Vec<Rc<Conn>>>,
    head_ring_seqno: Cell<u64>,
    gap_events: Cell<u64>,
}

/// Serves `ring` on `listen` until the process is killed (or the ring cannot be opened).
pub fn serve(ring: &Path, listen: SocketAddr) -> Result<(), FloorError> {
    let ring = Arc::new(Ring::open(ring)?);
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("floor")
        .io_memory(512 << 10)
        .spawn(move || async move {
            let floor = Rc::new(Floor::default());
            let listener = TcpListener::bind(listen)?;
            glommio::spawn_local(ring_task(ring, floor.clone())).detach();
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        glommio::spawn_local(connection(stream, floor.clone())).detach();
                    }
                    // A connection reset before it was accepted, or a full fd table: the
                    // floor keeps serving (it used to end here, and with it the run).
                    Err(_) => glommio::timer::sleep(Duration::from_millis(1)).await,
                }
            }
        })
        .map_err(|e| FloorError::Executor(e.to_string()))?;
    let result: Result<(), glommio::GlommioError<()>> = handle
        .join()
        .map_err(|e| FloorError::Executor(e.to_string()))?;
    result.map_err(|e| FloorError::Executor(e.to_string()))
}

/// Reads the ring, encodes each event once and appends it to every taker's frame.
async fn ring_task(ring: Arc<Ring>, floor: Rc<Floor>) {
    let mut reader = RingReader::new(ring, StartAt::NewestBlock);
    let mut encoder = Encoder::default();
    let mut server_seqno = 0u64;
    loop {
        let mut read = 0;
        while read < EVENTS_PER_TICK {
            match reader.try_next() {
                ReadOutcome::Ready(ev) => {
                    read += 1;
                    floor.head_ring_seqno.set(ev.descriptor.seqno);
                    let Ok(e) = encoder.encode(&ev.descriptor, ev.payload) else {
                        continue;
                    };
                    server_seqno += 1;
                    for c in floor.conns.borrow().iter() {
                        if !c.filter.borrow().matches(&e.keys) {
                            continue;
                        }
                        let mut body = c.body.borrow_mut();
                        if !body.is_empty() {
                            body.push(b',');
                        }
                        body.extend_from_slice(&e.json);
                        c.last.set(server_seqno);
                    }
                }
                ReadOutcome::NotReady => break,
                ReadOutcome::Gap { missing } => {
                    floor
                        .gap_events
                        .set(floor.gap_events.get() + (missing.end - missing.start));
                    floor.head_ring_seqno.set(missing.end.saturating_sub(1));
                    encoder.reset_flow();
                }
                ReadOutcome::Expired { .. } | ReadOutcome::Malformed { .. } => {}
            }
        }
        if read == 0 {
            glommio::timer::sleep(IDLE_SLEEP).await;
            continue;
        }
        floor.conns.borrow_mut().retain(|c| {
            c.end_tick();
            !c.closed.get()
        });
        future::yield_now().await;
    }
}

/// One accepted TCP connection: `/metrics`, or an upgrade to a WebSocket session.
async fn connection(mut stream: TcpStream, floor: Rc<Floor>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let req = loop {
        match parse_request(&buf, &RequestLimits::default()) {
            Ok(Parsed::Complete(r)) => break r,
            Ok(Parsed::Partial) => {}
            Err(_) => return,
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    if req.path == "/metrics" {
        let body = format!(
            "ringgate_head_ring_seqno {}\nringgate_ring_gap_events_total {}\n",
            floor.head_ring_seqno.get(),
            floor.gap_events.get()
        );
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.close().await;
        return;
    }
    let (Some(filter), Ok(accept)) = (
        Filter::for_path(&req.path),
        ringgate::wire::ws::accept(&req),
    ) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    if stream
        .write_all(&ringgate::wire::ws::switching_protocols(&accept))
        .await
        .is_err()
    {
        return;
    }
    buf.drain(..req.head_len);
    let conn = Rc::new(Conn::new(std::os::fd::AsRawFd::as_raw_fd(&stream), filter));
    floor.conns.borrow_mut().push(conn.clone());
    let stream = Rc::new(RefCell::new(stream));
    future::zip(
        reader(stream.clone(), conn.clone(), buf),
        writer(stream, conn),
    )
    .await;
}

/// Applies subscribe messages; a close, an error or EOF ends the connection.
async fn reader(stream: Rc<RefCell<TcpStream>>, conn: Rc<Conn>, mut buf: Vec<u8>) {
    let mut decoder = FrameDecoder::default();
    let mut chunk = vec![0u8; 4096];
    while !conn.closed.get() {
        loop {
            let consumed = match decoder.decode(&buf) {
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Text { text, consumed }) => {
                    if let Some(f) = Filter::from_subscribe(text) {
                        *conn.filter.borrow_mut() = f;
                    }
                    consumed
                }
                Ok(Decoded::Close { .. }) | Err(_) => return conn.close(),
                Ok(d) => d.consumed(),
            };
            buf.drain(..consumed);
        }
        let read = poll_fn(|cx| {
            let mut s = stream.borrow_mut();
            futures_lite::AsyncRead::poll_read(std::pin::Pin::new(&mut *s), cx, &mut chunk)
        })
        .await;
        match read {
            Ok(0) | Err(_) => return conn.close(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends what the ring task's direct write left, waiting for the socket; waits for the
/// ring task when nothing is left.
async fn writer(stream: Rc<RefCell<TcpStream>>, conn: Rc<Conn>) {
    let mut sending = Vec::new();
    loop {
        poll_fn(|cx| {
            if conn.closed.get() || !conn.out.borrow().is_empty() {
                Poll::Ready(())
            } else {
                *conn.writer.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        if conn.closed.get() {
            break;
        }
        std::mem::swap(&mut sending, &mut *conn.out.borrow_mut());
        conn.writing.set(true);
        let mut off = 0;
        while off < sending.len() {
            let n = poll_fn(|cx| {
                let mut s = stream.borrow_mut();
                futures_lite::AsyncWrite::poll_write(
                    std::pin::Pin::new(&mut *s),
                    cx,
                    &sending[off..],
                )
            })
            .await;
            match n {
                Ok(n) if n > 0 => off += n,
                _ => {
                    conn.close();
                    break;
                }
            }
        }
        sending.clear();
        conn.writing.set(false);
    }
    // Ends the reader's pending read too.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&*stream.borrow());
    // SAFETY: `fd` is this connection's socket, open until `stream` is dropped after both
    // halves return; shutdown(2) only changes the socket's state.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}
