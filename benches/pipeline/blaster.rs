//! A deliberately trivial WebSocket server that sends one pre-built `Events` frame shape as
//! fast as the socket takes it: the load client's own ceiling, so every gateway figure can be
//! checked against what the client could have absorbed.
//!
//! Runs on one thread per connection inside the harness (the `client` scenario). Each frame
//! carries `EVENTS_PER_FRAME` event objects of about 500 bytes (the existing gateway's mean
//! event size) and a fresh, increasing `server_seqno`; timestamps are refreshed per frame so
//! latency stays meaningful (it then measures the client's queueing only).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::load_client::realtime_ns;

/// Events in each frame (the existing gateway's observed mean batch is about 36).
pub const EVENTS_PER_FRAME: usize = 32;

/// The running blaster; stops its threads when dropped.
#[derive(Debug)]
pub struct Blaster {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Blaster {
    /// Listens on a loopback port; each accepted connection is upgraded and then blasted.
    pub fn start() -> io::Result<Blaster> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut senders = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let stop = stop.clone();
                            senders.push(std::thread::spawn(move || {
                                let _ = blast(s, &stop);
                            }));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
                for s in senders {
                    let _ = s.join();
                }
            })
        };
        Ok(Blaster {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for Blaster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn blast(mut s: TcpStream, stop: &AtomicBool) -> io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap_or("")
        .trim();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    write!(
        s,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    // Writes only from here on (the client's subscription, if any, is never read). Blocking:
    // the client reads until its window ends, then closes, which ends this loop with an error.
    let data = "ab".repeat(180);
    let mut seqno = 0u64;
    let mut payload = Vec::with_capacity(EVENTS_PER_FRAME * 560);
    let mut frame = Vec::with_capacity(EVENTS_PER_FRAME * 560 + 10);
    while !stop.load(Ordering::Relaxed) {
        let ts = realtime_ns();
        payload.clear();
        seqno += 1;
        let _ = write!(payload, r#"{{"server_seqno":{seqno},"Events":["#);
        for i in 0..EVENTS_PER_FRAME {
            if i > 0 {
                payload.push(b',');
            }
            let _ = write!(
                payload,
                r#"{{"event_name":"TxnLog","block_number":15000001,"txn_idx":{i},"payload":{{"type":"TxnLog","txn_index":{i},"log_index":0,"data":"0x{data}"}},"seqno":{seqno},"timestamp_ns":{ts}}}"#
            );
        }
        payload.extend_from_slice(b"]}");
        frame.clear();
        frame.push(0x81);
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 65535 => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        if s.write_all(&frame).is_err() {
            return Ok(());
        }
    }
    Ok(())
}
