//! "The obvious design", measured in the same harness as ringgate so every figure is also a
//! ratio: a tokio multi-threaded server with tokio-tungstenite, one `tokio::sync::broadcast`
//! channel carrying an owned event per ring event, and per-client filtering and JSON
//! serialization — the way the existing gateway works (docs/old-gateway.md).
//!
//! Runs as its own process (`pipeline --serve-baseline --ring P --listen A`) so its CPU and
//! memory are measured like ringgate's. Threads: one ring tailer thread (baseline_source) and
//! the tokio workers, which run one task per client. Outputs the protocol subset the load
//! client uses: `Events` frames `{"server_seqno":N,"Events":[…]}` (N = the highest event
//! server_seqno in the batch, so it strictly increases), `Warning` frames after broadcast lag,
//! and `GET /metrics` with the two counters the harness reads.
//!
//! Deliberate choices that keep the comparison fair to the baseline: it uses ringgate's own
//! decoder and JSON writer (so the per-event JSON is byte-identical and cheaper than serde),
//! drains everything available into one frame per wake-up (as the existing gateway does), and
//! never copies the existing gateway's defects into the protocol. What stays "obvious" is the
//! architecture: one shared channel, work per client per event, one write per frame.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

use ringgate::ingest::event::json::HexMemo;

use super::baseline_filter::Filter;
use super::baseline_source::{tail, OwnedEvent, TailCounters};

/// Slots in the broadcast channel. The existing gateway used 1,000,000 preallocated items;
/// 2^17 keeps the baseline's idle memory honest while leaving a slow client ~1 s of slack at
/// 100k events/s before it lags.
const BROADCAST_CAPACITY: usize = 1 << 17;

/// Why the baseline could not run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("ring tailer: {0}")]
    Tailer(String),
}

/// Serves `ring` on `listen` until the process is killed.
pub fn serve(ring: &Path, listen: SocketAddr, threads: Option<usize>) -> Result<(), BaselineError> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    let (tx, _) = broadcast::channel::<Arc<OwnedEvent>>(BROADCAST_CAPACITY);
    let counters = Arc::new(TailCounters::default());
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    {
        let (tx, counters, ring): (_, _, PathBuf) = (tx.clone(), counters.clone(), ring.into());
        std::thread::Builder::new()
            .name("baseline-tailer".into())
            .spawn(move || {
                let _ = done_tx.send(tail(&ring, &tx, &counters).map_err(|e| e.to_string()));
            })?;
    }
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            tokio::select! {
                r = &mut done_rx => {
                    return Err(BaselineError::Tailer(match r {
                        Ok(Ok(())) => "stopped".into(),
                        Ok(Err(e)) => e,
                        Err(_) => "panicked".into(),
                    }));
                }
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, tx.clone(), counters.clone()));
                }
            }
        }
    })
}

/// One accepted TCP connection: `/metrics` or a WebSocket session.
async fn connection(
    stream: TcpStream,
    tx: broadcast::Sender<Arc<OwnedEvent>>,
    counters: Arc<TailCounters>,
) {
    if is_metrics_request(&stream).await {
        metrics(stream, &counters).await;
        return;
    }
    let mut filter = None;
    // The error type is fixed by tungstenite's handshake `Callback` trait.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        filter = Filter::for_path(&req.uri().to_string());
        if filter.is_none() {
            let mut e = ErrorResponse::new(Some("unknown path".into()));
            *e.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            return Err(e);
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(filter) = filter else { return };
    session(ws, tx.subscribe(), filter).await;
}

/// Per client: receive from the shared channel, drain, filter, serialize, send one frame.
async fn session(
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    mut rx: broadcast::Receiver<Arc<OwnedEvent>>,
    mut filter: Filter,
) {
    let (mut sink, mut incoming) = ws.split();
    let mut batch: Vec<Arc<OwnedEvent>> = Vec::new();
    let mut lagged: u64 = 0;
    let mut warned_at: u64 = 0;
    let mut memo = HexMemo::default();
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(f) = Filter::from_subscribe(t.as_str()) {
                        filter = f;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            first = rx.recv() => {
                match first {
                    Ok(e) => batch.push(e),
                    Err(RecvError::Lagged(n)) => lagged += n,
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(TryRecvError::Lagged(n)) => lagged += n,
                        Err(_) => break,
                    }
                }
                let Some(first_seqno) = batch.first().map(|e| e.server_seqno) else { continue };
                if lagged > warned_at {
                    warned_at = lagged;
                    // The last missed event's seqno: above everything sent, below this batch.
                    let w = format!(
                        r#"{{"server_seqno":{},"Warning":{{"type":"backpressure","dropped":{lagged}}}}}"#,
                        first_seqno - 1
                    );
                    if sink.send(Message::text(w)).await.is_err() {
                        return;
                    }
                }
                if let Some(frame) = events_frame(&batch, &filter, &mut memo) {
                    if sink.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
                batch.clear();
            }
        }
    }
}

/// `{"server_seqno":N,"Events":[…]}` of the events `filter` takes, serialized for this client
/// alone; `None` if it takes none.
fn events_frame(batch: &[Arc<OwnedEvent>], filter: &Filter, memo: &mut HexMemo) -> Option<String> {
    let mut body = Vec::with_capacity(batch.len() * 512);
    let mut last = None;
    for e in batch.iter().filter(|e| filter.matches(&e.keys)) {
        body.push(if last.is_none() { b'[' } else { b',' });
        e.write_json(&mut body, memo);
        last = Some(e.server_seqno);
    }
    let last = last?;
    body.extend_from_slice(b"]}");
    let mut frame = format!(r#"{{"server_seqno":{last},"Events":"#);
    // The JSON writer emits ASCII only (hex and fixed names).
    frame.push_str(std::str::from_utf8(&body).ok()?);
    Some(frame)
}

async fn is_metrics_request(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    for _ in 0..100 {
        match stream.peek(&mut buf).await {
            Ok(n) if n >= 13 => return buf.starts_with(b"GET /metrics "),
            Ok(0) | Err(_) => return false,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
    false
}

async fn metrics(mut stream: TcpStream, c: &TailCounters) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Consume the request head first: closing a socket with unread bytes sends a reset, which
    // can destroy the response before the client reads it.
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let body = format!(
        "ringgate_head_ring_seqno {}\nringgate_ring_gap_events_total {}\n",
        c.head_ring_seqno.load(Ordering::Relaxed),
        c.gap_events.load(Ordering::Relaxed)
    );
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
