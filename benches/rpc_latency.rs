//! JSON-RPC (`eth_subscribe`) benchmark: how long after a block's `BlockEnd` is in the ring a
//! subscribing library hands the user its `newHeads` header and its `logs`, next to the
//! native protocol's `BlockEnd` from the same gateway in the same run; and what a JSON-RPC
//! notification costs the gateway in CPU when 1,000 `logs` subscriptions each filter a
//! different address.
//!
//! Model: `ringgate write --replay SNAPSHOT --rate R` (the real mainnet block, looped with its
//! number advancing, every event stamped CLOCK_REALTIME as written) into a fresh ring in
//! `/dev/shm`; `ringgate serve` over it; then, in order,
//! 1. one unfiltered `logs` subscription reads one whole block, to learn the addresses that
//!    emit logs (the latency rows filter on the most frequent one, the CPU rows on all of
//!    them plus addresses that never match);
//! 2. latency rows: N subscribers, each one connection with a `newHeads` and a `logs`
//!    (address) subscription (alloy providers in their own process, or the plain JSON-RPC
//!    client, `--client`), and one native `ringgate-client` reading `BlockEnd`; after the
//!    warm-up, every notification of a block whose `BlockEnd` the native client saw inside
//!    the window gives `received − BlockEnd timestamp_ns` (the ring's timestamp, as the
//!    native stream carries it: the same value the ring descriptor holds), and the native
//!    client's own `received − timestamp_ns` is the native row;
//! 3. CPU rows: the gateway's CPU (user + system, `/proc/<pid>/stat`) over the window with no
//!    JSON-RPC subscriber, then with M connections each holding one `logs` subscription on
//!    its own address; per notification (received by the clients in the window) and per ring
//!    event (the ring's `last_seqno` growth over the window).
//!
//! ```text
//! cargo bench --bench rpc_latency -- run --snapshot FILE.zst [--rate R] [--window S]
//!       [--subscribers 1,100] [--cpu-subscriptions 1000] [--client alloy|jsonrpc]
//! cargo bench --bench rpc_latency -- smoke --snapshot FILE.zst
//! ```
//!
//! Without a verb it prints usage and exits 0, so a bare `cargo bench` starts no long run.
//! `smoke` is a few seconds with a handful of subscribers (tests/bench_rpc_latency.rs runs it
//! so this code cannot rot); it fails if no notification or latency was recorded, never on a
//! timing. The alloy subscriber is built (release) by this bench with the cargo running it.
//! Design choices: docs/decisions/rpc-benchmark.md.

// Bench targets are built with cfg(test) but without the test harness; the unit tests of the
// modules below run from tests/bench_rpc_latency.rs.
#![cfg_attr(test, allow(dead_code, unused_imports))]

#[path = "rpc_latency/clients.rs"]
pub mod clients;
#[path = "pipeline/probe.rs"]
#[allow(dead_code)]
mod probe;
#[path = "pipeline/process.rs"]
#[allow(dead_code)]
mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use clients::{AlloySubscribers, BlockEnd, Kind, Received, Subscriptions};
use process::{ChildGuard, ProcSample, RingFile};

/// The subscribing library of the latency rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientArg {
    /// alloy's WebSocket provider (`subscribe_blocks`, `subscribe_logs`), one per subscriber.
    Alloy,
    /// A plain tokio-tungstenite JSON-RPC client, one connection per subscriber.
    Jsonrpc,
}

impl ClientArg {
    fn name(self) -> &'static str {
        match self {
            ClientArg::Alloy => "alloy",
            ClientArg::Jsonrpc => "tokio-tungstenite JSON-RPC",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Verb {
    /// The figures of docs/benchmarks.md.
    Run,
    /// A few seconds, a handful of subscribers: checks that the harness works.
    Smoke,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "rpc_latency",
    about = "ringgate JSON-RPC benchmark (see docs/benchmarks.md)"
)]
pub struct Args {
    pub verb: Option<Verb>,
    /// The ring snapshot to replay (`ringgate write --replay`).
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Writer rate, ring events/s (6,597 events per block: 16,500/s is a block per 400 ms).
    #[arg(long, default_value_t = 16_500)]
    pub rate: u64,
    /// Measurement window per row, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub window: f64,
    /// Settling time after the subscribers are in, before the window, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Subscriber counts of the latency rows.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    pub subscribers: Vec<usize>,
    /// `logs` subscriptions (one connection each) of the CPU row; 0 skips the CPU rows.
    #[arg(long, default_value_t = 1000)]
    pub cpu_subscriptions: usize,
    /// How many times the CPU pair (no subscriber, then `--cpu-subscriptions`) runs.
    #[arg(long, default_value_t = 2)]
    pub cpu_repeat: usize,
    /// The library of the latency rows.
    #[arg(long, value_enum, default_value = "alloy")]
    pub client: ClientArg,
    /// Extra flag for `ringgate serve`, repeatable.
    #[arg(long = "ringgate-arg", allow_hyphen_values = true)]
    pub ringgate_args: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(verb) = args.verb else {
        use clap::CommandFactory;
        println!(
            "No verb given; nothing run.\n{}",
            Args::command().render_help()
        );
        return ExitCode::SUCCESS;
    };
    let result = match verb {
        Verb::Run => run(&args).map(|_| ()),
        Verb::Smoke => smoke(&args).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpc_latency bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] clients::ClientError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// What every row needs.
#[derive(Debug, Clone)]
pub struct Setup {
    pub snapshot: PathBuf,
    pub rate: u64,
    pub warmup: Duration,
    pub window: Duration,
    pub ringgate_args: Vec<String>,
}

impl Setup {
    fn from_args(a: &Args) -> Result<Setup, BenchError> {
        let snapshot = a
            .snapshot
            .clone()
            .ok_or_else(|| BenchError::Setup("--snapshot FILE.zst is required".into()))?;
        Ok(Setup {
            snapshot,
            rate: a.rate,
            warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
            window: Duration::from_secs_f64(a.window.max(0.1)),
            ringgate_args: a.ringgate_args.clone(),
        })
    }
}

/// A writer and a gateway over a fresh ring; stopped (and the ring removed) when dropped.
struct Gateway {
    gateway: ChildGuard,
    _writer: ChildGuard,
    addr: SocketAddr,
    ring: RingFile,
}

impl Gateway {
    fn start(s: &Setup, lifetime: Duration) -> Result<Gateway, BenchError> {
        let exe = env!("CARGO_BIN_EXE_ringgate");
        let ring = RingFile::new();
        let mut w = Command::new(exe);
        w.arg("write")
            .arg("--ring")
            .arg(&ring.0)
            .arg("--replay")
            .arg(&s.snapshot)
            .arg("--rate")
            .arg(s.rate.to_string())
            .arg("--duration")
            .arg(lifetime.as_secs().max(1).to_string());
        let mut writer = ChildGuard::spawn("writer", w, None)?;
        writer.wait_file(
            &ring.0,
            ringgate::ingest::ring::layout::HEADER_SIZE,
            Duration::from_secs(20),
        )?;
        let addr = process::free_loopback_addr()?;
        let mut g = Command::new(exe);
        g.arg("serve")
            .arg("--ring")
            .arg(&ring.0)
            .arg("--listen")
            .arg(addr.to_string())
            .args(&s.ringgate_args)
            .env("RUST_LOG", "warn");
        let mut gateway = ChildGuard::spawn("ringgate", g, None)?;
        gateway.wait_listening(addr, Duration::from_secs(20))?;
        Ok(Gateway {
            gateway,
            _writer: writer,
            addr,
            ring,
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    // One worker: the clients of this process take at most one core from the gateway.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

/// Latency distribution of one row's samples, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(mut v: Vec<u64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            count: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }

    fn cells(&self) -> String {
        let ms = |ns: u64| format!("{:.2}", ns as f64 / 1e6);
        format!(
            "{} | {} | {} | {}",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// One latency row.
#[derive(Debug, Clone)]
pub struct LatencyRow {
    pub subscribers: usize,
    pub client: ClientArg,
    pub filter_address: String,
    pub logs_per_block: usize,
    /// Blocks whose `BlockEnd` the native client received inside the window.
    pub blocks: usize,
    pub heads: Percentiles,
    /// Per block, the first subscriber's `newHeads`: the fan-out's start, without the time the
    /// subscribers' library spends on the others.
    pub heads_first: Percentiles,
    pub logs: Percentiles,
    pub native: Percentiles,
    /// `newHeads` expected (subscribers × blocks) but not received.
    pub heads_missing: usize,
    pub loadavg: String,
}

impl LatencyRow {
    /// A row with nothing measured yet and the host's load average now.
    pub fn new(
        subscribers: usize,
        client: ClientArg,
        filter_address: String,
        logs_per_block: usize,
    ) -> LatencyRow {
        LatencyRow {
            subscribers,
            client,
            filter_address,
            logs_per_block,
            blocks: 0,
            heads: Percentiles::default(),
            heads_first: Percentiles::default(),
            logs: Percentiles::default(),
            native: Percentiles::default(),
            heads_missing: 0,
            loadavg: process::loadavg(),
        }
    }
}

/// One CPU row.
#[derive(Debug, Clone)]
pub struct CpuRow {
    pub subscriptions: usize,
    /// Of which filter an address that emits logs in the block.
    pub matching: usize,
    pub window_s: f64,
    /// The whole gateway's CPU over the window, seconds.
    pub cpu_s: f64,
    /// Of which its shard threads (`rg-shard-*`: sessions, filters, writes).
    pub shard_cpu_s: f64,
    /// Of which its tailer thread (ring reading, encoding, notification bodies).
    pub tailer_cpu_s: f64,
    pub ring_events: u64,
    /// Received inside the window.
    pub notifications: usize,
    /// Received from subscribing to the end of the reading (a little past the window).
    pub notifications_read: usize,
    pub loadavg: String,
}

/// The instants of a measurement window, CLOCK_REALTIME ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    /// The window that starts `warmup` from now and lasts `len`.
    fn after(warmup: Duration, len: Duration) -> Window {
        let start_ns = clients::realtime_ns() + warmup.as_nanos() as u64;
        Window {
            start_ns,
            end_ns: start_ns + len.as_nanos() as u64,
        }
    }

    fn holds(&self, ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&ns)
    }
}

/// The latency row for `n` subscribers.
pub fn latency_row(s: &Setup, n: usize, client: ClientArg) -> Result<LatencyRow, BenchError> {
    // Before the writer starts: a first build of alloy takes minutes.
    let alloy_bin = match client {
        ClientArg::Alloy => Some(AlloySubscribers::build()?),
        ClientArg::Jsonrpc => None,
    };
    let gw = Gateway::start(s, s.warmup + s.window + Duration::from_secs(300))?;
    let rt = runtime()?;
    let block_logs = rt.block_on(clients::one_block_of_log_addresses(gw.addr))?;
    let (address, logs_per_block) = most_frequent(&block_logs)
        .ok_or_else(|| BenchError::Setup("the replayed block has no logs".into()))?;
    eprintln!(
        "[{n} × {}] logs filter {address} ({logs_per_block} of the block's {} logs)",
        client.name(),
        block_logs.len()
    );
    // Subscribers record a little past the window's end, so the last blocks' notifications
    // are not cut off.
    let record = s.warmup + s.window + Duration::from_secs(5);
    let (received, block_ends, window) = match alloy_bin {
        Some(bin) => {
            let alloy = AlloySubscribers::start(&bin, gw.addr, n, &address, record.as_secs_f64())?;
            let window = Window::after(s.warmup, s.window);
            let stop = tokio::time::Instant::now() + record;
            let native = rt.spawn(clients::native_block_ends(gw.addr, stop));
            let received = alloy.finish(Duration::from_secs(120))?;
            let block_ends = rt.block_on(native).map_err(task_failed)??;
            (received, block_ends, window)
        }
        None => {
            let conns: Vec<Subscriptions> = (0..n)
                .map(|_| {
                    vec![
                        (Kind::Head, serde_json::json!(["newHeads"])),
                        (Kind::Log, serde_json::json!(["logs", {"address": address}])),
                    ]
                })
                .collect();
            rt.block_on(async {
                let subs = clients::JsonRpcSubscribers::open(gw.addr, conns).await?;
                let window = Window::after(s.warmup, s.window);
                let stop = tokio::time::Instant::now() + record;
                let native = tokio::spawn(clients::native_block_ends(gw.addr, stop));
                let received = subs.read_until(stop).await?;
                let block_ends = native.await.map_err(task_failed)??;
                Ok::<_, BenchError>((received, block_ends, window))
            })?
        }
    };
    gw.check()?;
    Ok(latency_figures(
        LatencyRow::new(n, client, address, logs_per_block),
        &received,
        &block_ends,
        window,
    ))
}

fn task_failed(e: tokio::task::JoinError) -> BenchError {
    BenchError::Setup(format!("client task failed: {e}"))
}

/// Fills `row`'s figures: the blocks whose `BlockEnd` the native client received inside the
/// window, and for each notification of those blocks `received − BlockEnd ring timestamp`.
pub fn latency_figures(
    mut row: LatencyRow,
    received: &[Received],
    block_ends: &[BlockEnd],
    window: Window,
) -> LatencyRow {
    let in_window: HashMap<u64, &BlockEnd> = block_ends
        .iter()
        .filter(|b| window.holds(b.received_ns))
        .map(|b| (b.block_number, b))
        .collect();
    let lat = |kind: Kind| {
        received
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| {
                let b = in_window.get(&r.block_number)?;
                Some(r.received_ns.saturating_sub(b.ring_ns))
            })
            .collect::<Vec<u64>>()
    };
    row.blocks = in_window.len();
    row.heads = Percentiles::of(lat(Kind::Head));
    let mut first: HashMap<u64, u64> = HashMap::new();
    for r in received.iter().filter(|r| r.kind == Kind::Head) {
        if let Some(b) = in_window.get(&r.block_number) {
            let l = r.received_ns.saturating_sub(b.ring_ns);
            first
                .entry(r.block_number)
                .and_modify(|m| *m = (*m).min(l))
                .or_insert(l);
        }
    }
    row.heads_first = Percentiles::of(first.into_values().collect());
    row.logs = Percentiles::of(lat(Kind::Log));
    row.native = Percentiles::of(
        in_window
            .values()
            .map(|b| b.received_ns.saturating_sub(b.ring_ns))
            .collect(),
    );
    row.heads_missing = (row.subscribers * row.blocks).saturating_sub(row.heads.count);
    row
}

/// The address emitting most of `logs`, and how many.
fn most_frequent(logs: &[String]) -> Option<(String, usize)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for a in logs {
        *count.entry(a).or_default() += 1;
    }
    count
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(a, n)| (a.to_string(), n))
}

/// `m` distinct addresses: every address emitting logs in `logs` (first seen first), then
/// addresses no log of the block comes from. Returns them and how many match.
fn filter_addresses(logs: &[String], m: usize) -> (Vec<String>, usize) {
    let mut out: Vec<String> = Vec::new();
    for a in logs {
        if out.len() < m && !out.contains(a) {
            out.push(a.clone());
        }
    }
    let matching = out.len();
    let mut i = 0u64;
    while out.len() < m {
        i += 1;
        let a = format!("0x{:040x}", 0xdead_0000_0000u64 + i);
        if !logs.contains(&a) {
            out.push(a);
        }
    }
    (out, matching)
}

/// The CPU row for `m` `logs` subscriptions (0: the gateway with no JSON-RPC subscriber).
pub fn cpu_row(s: &Setup, m: usize) -> Result<CpuRow, BenchError> {
    let gw = Gateway::start(s, s.warmup + s.window + Duration::from_secs(300))?;
    let rt = runtime()?;
    let block_logs = rt.block_on(clients::one_block_of_log_addresses(gw.addr))?;
    let (addresses, matching) = filter_addresses(&block_logs, m);
    eprintln!(
        "[cpu] {m} logs subscriptions, {matching} on addresses of the block's {} logs",
        block_logs.len()
    );
    let conns: Vec<Subscriptions> = addresses
        .iter()
        .map(|a| vec![(Kind::Log, serde_json::json!(["logs", {"address": a}]))])
        .collect();
    let (received, edges, window) = rt.block_on(async {
        let subs = clients::JsonRpcSubscribers::open(gw.addr, conns).await?;
        let window = Window::after(s.warmup, s.window);
        let stop = tokio::time::Instant::now() + s.warmup + s.window + Duration::from_secs(1);
        let reading = tokio::spawn(subs.read_until(stop));
        let edges = sample_edges(&gw, s.warmup, s.window).await;
        let received = reading.await.map_err(task_failed)??;
        Ok::<_, BenchError>((received, edges, window))
    })?;
    gw.check()?;
    let [e0, e1] = edges;
    Ok(CpuRow {
        subscriptions: m,
        matching,
        window_s: s.window.as_secs_f64(),
        cpu_s: e1.cpu_s - e0.cpu_s,
        shard_cpu_s: e1.shard_cpu_s - e0.shard_cpu_s,
        tailer_cpu_s: e1.tailer_cpu_s - e0.tailer_cpu_s,
        ring_events: e1.ring_seqno.saturating_sub(e0.ring_seqno),
        notifications: received
            .iter()
            .filter(|r| window.holds(r.received_ns))
            .count(),
        notifications_read: received.len(),
        loadavg: process::loadavg(),
    })
}

/// The gateway's CPU (whole, shard threads, tailer thread) and the ring's `last_seqno`.
#[derive(Debug, Clone, Copy, Default)]
struct Edge {
    cpu_s: f64,
    shard_cpu_s: f64,
    tailer_cpu_s: f64,
    ring_seqno: u64,
}

/// The gateway's CPU and the ring's `last_seqno` at the start (after `warmup`) and the end of
/// the window.
async fn sample_edges(gw: &Gateway, warmup: Duration, window: Duration) -> [Edge; 2] {
    let pid = gw.gateway.pid();
    let sample = || {
        let threads = process::thread_cpu_s(pid);
        let sum = |prefix: &str| {
            threads
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, cpu)| cpu)
                .sum()
        };
        Edge {
            cpu_s: ProcSample::read(pid).unwrap_or_default().cpu_s,
            shard_cpu_s: sum("rg-shard"),
            tailer_cpu_s: sum("ringgate-tailer"),
            ring_seqno: probe::ring_last_seqno(&gw.ring.0).unwrap_or(0),
        }
    };
    tokio::time::sleep(warmup).await;
    let start = sample();
    tokio::time::sleep(window).await;
    [start, sample()]
}

impl Gateway {
    /// `Err` if the gateway exited during the run.
    fn check(mut self) -> Result<(), BenchError> {
        self.gateway.check_alive()?;
        Ok(())
    }
}

/// Everything `run` measured.
#[derive(Debug, Default)]
pub struct Report {
    pub latency: Vec<LatencyRow>,
    pub cpu: Vec<CpuRow>,
}

fn run(a: &Args) -> Result<Report, BenchError> {
    let s = Setup::from_args(a)?;
    println!("machine: {}", process::machine_description());
    println!("commit:  {}", process::commit());
    println!(
        "load average at start: {}; writer: {} at {} events/s; window {:?}, warm-up {:?}",
        process::loadavg(),
        s.snapshot.display(),
        s.rate,
        s.window,
        s.warmup
    );
    let mut report = Report::default();
    for &n in &a.subscribers {
        report.latency.push(latency_row(&s, n, a.client)?);
    }
    for _ in 0..if a.cpu_subscriptions > 0 {
        a.cpu_repeat
    } else {
        0
    } {
        report.cpu.push(cpu_row(&s, 0)?);
        report.cpu.push(cpu_row(&s, a.cpu_subscriptions)?);
    }
    print_report(&report);
    Ok(report)
}

/// Seconds, 3 subscribers of the plain client (and of alloy when `client` is alloy),
/// 20 `logs` subscriptions: fails unless notifications arrived and latencies were recorded.
pub fn smoke(a: &Args) -> Result<Report, BenchError> {
    // A block a second, so a debug gateway on a loaded CI host keeps up.
    let s = Setup {
        rate: 6_600,
        warmup: Duration::from_secs(1),
        window: Duration::from_secs(5),
        ..Setup::from_args(a)?
    };
    let mut report = Report::default();
    report.latency.push(latency_row(&s, 3, ClientArg::Jsonrpc)?);
    if a.client == ClientArg::Alloy {
        report.latency.push(latency_row(&s, 3, ClientArg::Alloy)?);
    }
    report.cpu.push(cpu_row(&s, 20)?);
    print_report(&report);
    for r in &report.latency {
        if r.blocks == 0 || r.heads.count == 0 || r.logs.count == 0 || r.native.count == 0 {
            return Err(BenchError::Setup(format!(
                "{}: nothing measured: {r:?}",
                r.client.name()
            )));
        }
    }
    // Read, not in the window: a debug gateway on a loaded host may lag the window's seconds.
    if report
        .cpu
        .iter()
        .any(|c| c.notifications_read == 0 || c.ring_events == 0)
    {
        return Err(BenchError::Setup(format!(
            "CPU row measured nothing: {:?}",
            report.cpu
        )));
    }
    Ok(report)
}

fn print_report(r: &Report) {
    println!(
        "\nLatency, BlockEnd ring timestamp → the library hands over the item (ms)\n\n\
         | subscribers | client | stream | blocks | samples | median | p99 | max | load avg |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for l in &r.latency {
        let logs = format!("`logs` ({} per block)", l.logs_per_block);
        for (stream, p) in [
            ("`newHeads`", &l.heads),
            ("`newHeads`, first subscriber of each block", &l.heads_first),
            (logs.as_str(), &l.logs),
            ("native `BlockEnd`", &l.native),
        ] {
            let client = if stream.starts_with("native") {
                "ringgate-client"
            } else {
                l.client.name()
            };
            println!(
                "| {} | {client} | {stream} | {} | {} | {} |",
                l.subscribers,
                l.blocks,
                p.cells(),
                l.loadavg
            );
        }
        if l.heads_missing > 0 {
            println!(
                "(newHeads missing: {} of {})",
                l.heads_missing,
                l.subscribers * l.blocks
            );
        }
    }
    if r.cpu.is_empty() {
        return;
    }
    println!(
        "\nGateway CPU, `logs` subscriptions each on its own address (one connection each)\n\n\
         | subscriptions | matching | ring events/s | notifications/s | gateway CPU % | tailer % | shards % | gateway µs / event | tailer µs / event | gateway µs / notification | shards µs / notification | shards' extra µs / notification | load avg |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    // The shards' mean CPU share with no subscriber: what the extra is measured against.
    let idle: Vec<f64> = r
        .cpu
        .iter()
        .filter(|c| c.subscriptions == 0)
        .map(|c| c.shard_cpu_s / c.window_s)
        .collect();
    let idle = (!idle.is_empty()).then(|| idle.iter().sum::<f64>() / idle.len() as f64);
    for c in &r.cpu {
        let us_per = |cpu_s: f64, n: f64| {
            if n > 0.0 {
                format!("{:.1}", cpu_s * 1e6 / n)
            } else {
                "–".into()
            }
        };
        let notes = c.notifications as f64;
        let extra = match idle {
            Some(i) if c.subscriptions > 0 => {
                us_per((c.shard_cpu_s / c.window_s - i) * c.window_s, notes)
            }
            _ => "–".into(),
        };
        let pct = |cpu_s: f64| format!("{:.1}", 100.0 * cpu_s / c.window_s);
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {extra} | {} |",
            c.subscriptions,
            c.matching,
            c.ring_events as f64 / c.window_s,
            notes / c.window_s,
            pct(c.cpu_s),
            pct(c.tailer_cpu_s),
            pct(c.shard_cpu_s),
            us_per(c.cpu_s, c.ring_events as f64),
            us_per(c.tailer_cpu_s, c.ring_events as f64),
            us_per(c.cpu_s, notes),
            us_per(c.shard_cpu_s, notes),
            c.loadavg
        );
    }
}
