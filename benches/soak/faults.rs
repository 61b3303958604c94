//! The soak's faults: what an operator's week does to a gateway, done to real processes and
//! real sockets.
//!
//! - [`Writer`]: the ring writer process (`ringgate write`), which the schedule SIGKILLs and
//!   restarts (the new writer starts the chain or the snapshot over: block numbers the
//!   gateway has already seen), or SIGSTOPs and SIGCONTs.
//! - [`busy_core`]: a busy loop pinned with `taskset` to the shard's core (a noisy neighbour).
//! - [`malformed_http`] and [`slowloris`]: bad requests and request heads that never end,
//!   on plain blocking sockets (one thread each).
//!
//! Never signals a process it did not start (every child is a [`ChildGuard`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, ProcessError};

/// The faults of one cycle of the schedule, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGSTOP the writer, SIGCONT it after `stop_secs`.
    WriterStop,
    /// Clients that stop reading until the server closes them (1008), then read.
    StuckClients,
    /// SIGKILL the writer; a new one starts after `restart_after_secs`.
    WriterRestart,
    /// Many connections at once.
    ConnectionBurst,
    /// Malformed requests and slowloris heads.
    BadHttp,
    /// A busy loop on the shard's core for `stall_secs`.
    ShardStall,
}

impl Fault {
    pub const CYCLE: [Fault; 6] = [
        Fault::WriterStop,
        Fault::StuckClients,
        Fault::WriterRestart,
        Fault::ConnectionBurst,
        Fault::BadHttp,
        Fault::ShardStall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::WriterStop => "writer SIGSTOP/SIGCONT",
            Fault::StuckClients => "stuck clients",
            Fault::WriterRestart => "writer SIGKILL + restart",
            Fault::ConnectionBurst => "connection burst",
            Fault::BadHttp => "malformed HTTP + slowloris",
            Fault::ShardStall => "shard core busy (taskset)",
        }
    }
}

/// The ring writer process.
#[derive(Debug)]
pub struct Writer {
    bin: PathBuf,
    ring: PathBuf,
    replay: Option<PathBuf>,
    rate: u64,
    child: Option<ChildGuard>,
    pub starts: u32,
}

impl Writer {
    pub fn new(bin: &Path, ring: &Path, replay: Option<&Path>, rate: u64) -> Writer {
        Writer {
            bin: bin.to_path_buf(),
            ring: ring.to_path_buf(),
            replay: replay.map(Path::to_path_buf),
            rate,
            child: None,
            starts: 0,
        }
    }

    /// Starts a writer (a new ring file at the same path) and waits for the file.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("write")
            .arg("--ring")
            .arg(&self.ring)
            .arg("--rate")
            .arg(self.rate.to_string());
        if let Some(r) = &self.replay {
            cmd.arg("--replay").arg(r);
        }
        let mut child = ChildGuard::spawn("ringgate write", cmd, None)?;
        self.starts += 1;
        if self.starts == 1 {
            child.wait_file(&self.ring, 4096, Duration::from_secs(30))?;
        }
        self.child = Some(child);
        Ok(())
    }

    /// Sends `sig` to the running writer.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child, which `ChildGuard` has not reaped (it reaps
            // only in `stop`), so the pid still names it.
            unsafe { libc::kill(c.pid() as libc::pid_t, sig) };
        }
    }

    /// SIGKILL, as a crashing node: the ring file stays behind, its writer gone.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            c.stop(Duration::from_secs(1));
        }
    }

    /// Whether the writer is running (it may have failed on its own).
    pub fn check_alive(&mut self) -> Result<(), ProcessError> {
        match &mut self.child {
            Some(c) => c.check_alive(),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A stopped writer must be continued to be terminated gracefully.
        self.signal(libc::SIGCONT);
    }
}

/// Runs a busy loop pinned to `core` with taskset for `secs`: the shard on that core gets
/// about half of it (the scheduler shares a core between two busy threads).
pub fn busy_core(core: usize, secs: f64) -> Result<(), ProcessError> {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg(core.to_string())
        .arg("sh")
        .arg("-c")
        .arg("while :; do :; done");
    let mut hog = ChildGuard::spawn("taskset busy loop", cmd, None)?;
    std::thread::sleep(Duration::from_secs_f64(secs));
    hog.check_alive()?;
    hog.stop(Duration::from_millis(200));
    Ok(())
}

/// Requests the gateway must answer with an HTTP error status (never a reset, never a hang).
fn bad_requests() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        b"GET /v1/ws?resume_from=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        b"GET /v1/ws?events=NoSuchEvent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        b"POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        b"GET / HTTP/1.1\r\n\x00\x01\x02: \xff\r\n\r\n".to_vec(),
    ];
    let mut big = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 16 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    v.push(big);
    v
}

/// Sends `n` malformed requests (cycling through a fixed set) one connection each; returns
/// (answered with a 4xx/5xx status, failed: reset, hang or no status).
pub fn malformed_http(addr: SocketAddr, n: usize) -> (usize, Vec<String>) {
    let reqs = bad_requests();
    let mut ok = 0;
    let mut failed = Vec::new();
    for i in 0..n {
        let req = &reqs[i % reqs.len()];
        match one_request(addr, req) {
            Ok(status) if (400..600).contains(&status) => ok += 1,
            Ok(status) => failed.push(format!("request #{} answered {status}", i % reqs.len())),
            Err(e) => failed.push(format!("request #{}: {e}", i % reqs.len())),
        }
    }
    (ok, failed)
}

fn one_request(addr: SocketAddr, req: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    // The server may answer from the head before the rest arrives; a write error after
    // that is fine, the answer is what counts.
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    status.ok_or_else(|| {
        std::io::Error::other(format!(
            "no HTTP status ({} bytes: {:?})",
            out.len(),
            text.chars().take(40).collect::<String>()
        ))
    })
}

/// Opens `n` connections that send a request head one header line per second and never
/// finish it. Returns how long the server took to close each (None: still open after
/// `give_up`).
pub fn slowloris(addr: SocketAddr, n: usize, give_up: Duration) -> Vec<Option<f64>> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return Some(0.0);
                };
                let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
                if s.write_all(b"GET /v1/ws HTTP/1.1\r\n").is_err() {
                    return Some(start.elapsed().as_secs_f64());
                }
                let mut buf = [0u8; 512];
                while start.elapsed() < give_up {
                    match s.read(&mut buf) {
                        Ok(0) => return Some(start.elapsed().as_secs_f64()),
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return Some(start.elapsed().as_secs_f64()),
                    }
                    if s.write_all(b"X-Slow: 1\r\n").is_err() {
                        return Some(start.elapsed().as_secs_f64());
                    }
                }
                None
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap_or(None))
        .collect()
}
