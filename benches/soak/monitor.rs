//! The soak's view of the gateway process: once a second, what the kernel says it uses
//! (`/proc/<pid>`: RSS, anonymous RSS, fds, threads, CPU time) and what `/metrics` says, and
//! the checks made on those series at the end.
//!
//! Runs on its own thread. Never touches the gateway but through `/proc` and HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::ProcSample;

/// One sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub rss_mib: f64,
    pub rss_anon_mib: f64,
    pub threads: u64,
    pub fds: u64,
    pub cpu_s: f64,
    pub tailer_lag_s: f64,
    pub held_blocks: f64,
    pub held_mib: f64,
    pub connections_open: f64,
    pub slow_disconnects: f64,
    pub handshake_timeouts: f64,
    pub shard_queue_full: f64,
    pub resume_store_mib: f64,
    /// Compressed history held in memory (`ringgate_history_memory_bytes`), MiB: it fills
    /// up to its own budget (`--history-mib`) by design.
    pub history_mib: f64,
    /// Encoded JSON-RPC blocks alive (`ringgate_rpc_block_bytes`), MiB: they fill up to
    /// their own budget (`--rpc-history-mib`, once for the tailer and once for the shards).
    pub rpc_block_mib: f64,
    /// Time the gateway's threads spent runnable but waiting for a CPU, cumulative, s
    /// (`/proc/<pid>/task/*/schedstat`): how much the machine starved it.
    pub run_delay_s: f64,
    /// `/health` answered 200.
    pub healthy: bool,
}

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Cumulative run-queue wait of every thread of `pid`, seconds.
pub fn run_delay(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// `GET path` on the gateway: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sum of every series of metric `name` (all label sets) in a Prometheus text body.
pub fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Samples `pid` and `addr` every second until `stop`.
pub fn run(
    pid: u32,
    addr: SocketAddr,
    t0: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Sample>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + Duration::from_secs(1);
        if let Some(s) = sample(pid, addr, t0) {
            out.lock().expect("samples").push(s);
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// One sample now (`None` if the process is gone).
pub fn sample(pid: u32, addr: SocketAddr, t0: Instant) -> Option<Sample> {
    let p = ProcSample::read(pid).ok()?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut s = Sample {
        t: t0.elapsed().as_secs_f64(),
        rss_mib: mib(p.rss_kib),
        rss_anon_mib: mib(p.rss_anon_kib),
        threads: p.threads,
        fds: fd_count(pid),
        cpu_s: p.cpu_s,
        run_delay_s: run_delay(pid),
        ..Sample::default()
    };
    if let Ok((200, body)) = http_get(addr, "/metrics") {
        s.tailer_lag_s = metric(&body, "ringgate_tailer_lag_seconds");
        s.held_blocks = metric(&body, "ringgate_gate_held_blocks");
        s.held_mib = metric(&body, "ringgate_gate_held_bytes") / 1048576.0;
        s.connections_open = metric(&body, "ringgate_connections_open");
        s.slow_disconnects = metric(&body, "ringgate_slow_client_disconnects_total");
        s.handshake_timeouts = metric(&body, "ringgate_handshake_timeouts_total");
        s.shard_queue_full = metric(&body, "ringgate_shard_queue_full_total");
        s.resume_store_mib = metric(&body, "ringgate_resume_store_bytes") / 1048576.0;
        s.history_mib = metric(&body, "ringgate_history_memory_bytes") / 1048576.0;
        s.rpc_block_mib = metric(&body, "ringgate_rpc_block_bytes") / 1048576.0;
    }
    s.healthy = matches!(http_get(addr, "/health"), Ok((200, _)));
    Some(s)
}

/// The samples as CSV, one line a second.
pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "t,rss_mib,rss_anon_mib,threads,fds,cpu_s,tailer_lag_s,held_blocks,held_mib,connections_open,slow_disconnects,handshake_timeouts,shard_queue_full,resume_store_mib,history_mib,rpc_block_mib,run_delay_s,healthy\n",
    );
    for s in samples {
        out.push_str(&format!(
            "{:.1},{:.1},{:.1},{},{},{:.2},{:.3},{},{:.1},{},{},{},{},{:.1},{:.1},{:.1},{:.3},{}\n",
            s.t,
            s.rss_mib,
            s.rss_anon_mib,
            s.threads,
            s.fds,
            s.cpu_s,
            s.tailer_lag_s,
            s.held_blocks,
            s.held_mib,
            s.connections_open,
            s.slow_disconnects,
            s.handshake_timeouts,
            s.shard_queue_full,
            s.resume_store_mib,
            s.history_mib,
            s.rpc_block_mib,
            s.run_delay_s,
            u8::from(s.healthy)
        ));
    }
    out
}

/// The largest per-second increase of the gateway's run-queue wait (s per s) between
/// seconds `from` and `to` of the run.
pub fn worst_starvation(samples: &[Sample], from: f64, to: f64) -> f64 {
    samples
        .windows(2)
        .filter(|w| w[1].t >= from && w[0].t <= to)
        .map(|w| (w[1].run_delay_s - w[0].run_delay_s) / (w[1].t - w[0].t).max(0.1))
        .fold(0.0, f64::max)
}

/// Least-squares slope of `y` over `t` (per second); 0 for fewer than two points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}
