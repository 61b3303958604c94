//! End-to-end benchmark: ring writer → gateway → WebSocket load client, one scenario per
//! command, each figure printed next to the same run of "the obvious design" baseline.
//!
//! Model (what is measured): a synthetic writer process commits events into a real-format
//! ring file at a set rate (or flat out); the gateway under test (`ringgate serve`, or the
//! tokio baseline in [`baseline`], or the one-thread floor in [`floor`]) tails it (or, target
//! `edge`, an origin ringgate tails it and publishes to NATS JetStream, and an edge ringgate
//! serves the stream); the load client in this process opens N
//! connections with chosen subscriptions (plus optional stuck clients that never read) and
//! records, per event, `receipt time − timestamp_ns` on CLOCK_REALTIME. Reported: delivered
//! events/s (total, per-client min and median), latency percentiles, frames/s, bytes/s,
//! drops, the gateway's CPU time and memory, and which cores each side had.
//!
//! ```text
//! cargo bench --bench pipeline -- <scenario>
//!       [--target ringgate|floor|baseline|both|all|edge|scaleout]
//!       [--clients N] [--rate R] [--duration S] [--warmup S] [--shards N] ...
//! ```
//!
//! Without a scenario it prints usage and exits 0, so `cargo test --all-targets` and a bare
//! `cargo bench` never start a long run. Hidden flags turn this binary into the baseline
//! server (`--serve-baseline`) or the floor (`--serve-floor`), so each runs as its own
//! measured process.

// Cargo builds bench targets with cfg(test) but, with `harness = false`, without the test
// harness, so the unit tests beside the code below would be dead here: they run from
// tests/bench_pipeline.rs, which includes these modules.
#![cfg_attr(test, allow(dead_code, unused_imports))]

#[path = "pipeline/baseline.rs"]
mod baseline;
#[path = "pipeline/baseline_filter.rs"]
mod baseline_filter;
#[path = "pipeline/baseline_source.rs"]
mod baseline_source;
#[path = "pipeline/blaster.rs"]
mod blaster;
#[path = "pipeline/epoll.rs"]
mod epoll;
#[path = "pipeline/floor.rs"]
mod floor;
#[path = "pipeline/load_client.rs"]
mod load_client;
#[path = "pipeline/probe.rs"]
mod probe;
#[path = "pipeline/process.rs"]
mod process;
#[path = "pipeline/report.rs"]
mod report;
#[path = "pipeline/runner.rs"]
mod runner;
#[path = "pipeline/scan.rs"]
mod scan;
#[path = "pipeline/scenarios.rs"]
mod scenarios;
#[path = "pipeline/ws.rs"]
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// Which gateway a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    Ringgate,
    Baseline,
    Floor,
    /// ringgate and the baseline.
    Both,
    /// ringgate, the floor and the baseline.
    All,
    /// ringgate as an edge: the load client reads an edge (`--source`) fed by an origin
    /// (`--publish`) through a nats-server started for the run (`nats-server` on PATH).
    Edge,
    /// ringgate (the origin, read directly) and the edge, one after the other.
    Scaleout,
}

/// The scenarios of the benchmark plan (letters as in the plan, or their names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// (a) latency, one firehose client at 10k and 100k events/s.
    #[value(name = "a", alias = "latency")]
    Latency,
    /// (b) maximum sustained ingest, writer flat out, 0 / 1 / 100 firehose clients.
    #[value(name = "b", alias = "ingest")]
    Ingest,
    /// (c) 1,000 clients with narrow filters.
    #[value(name = "c", alias = "narrow")]
    Narrow,
    /// (d) 10,000 idle connections: memory per connection.
    #[value(name = "d", alias = "idle-conns")]
    IdleConns,
    /// (e) 100 fast clients with and without 10 stuck ones.
    #[value(name = "e", alias = "stuck")]
    Stuck,
    /// (f) resume of 100,000 frames.
    #[value(name = "f", alias = "resume")]
    Resume,
    /// (g) idle memory of the gateway, no clients.
    #[value(name = "g", alias = "idle-memory")]
    IdleMemory,
    /// The load client's own ceiling: an in-process server sends as fast as it can.
    #[value(name = "client")]
    ClientCeiling,
    /// One run with exactly the options given (clients, rate, stuck, subscription).
    #[value(name = "custom")]
    Custom,
}

/// Command line. Every option has a bounded default so a scenario always ends.
#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    about = "ringgate end-to-end benchmark (see docs/benchmarks.md)"
)]
pub struct Args {
    /// Scenario to run; without one, usage is printed and the program exits 0.
    pub scenario: Option<Scenario>,
    /// Gateway(s) to measure; `all` (ringgate, floor, baseline), `both` (ringgate,
    /// baseline) and `scaleout` (ringgate, edge) run each in turn with the same parameters.
    #[arg(long, value_enum, default_value = "all")]
    pub target: TargetArg,
    /// Reading clients (overrides the scenario's client counts).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Stuck clients (subscribe, never read), for `custom`.
    #[arg(long, default_value_t = 0)]
    pub stuck: usize,
    /// Writer rate in events/s (overrides the scenario's); 0 = flat out.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Measurement window per run, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Reading before the window starts (not counted), seconds.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// ringgate shard count (`--shards`); default: ringgate's own.
    #[arg(long)]
    pub shards: Option<usize>,
    /// Extra flag for `ringgate serve`, repeatable (e.g. `--ringgate-arg=--no-pin`).
    #[arg(long = "ringgate-arg", allow_hyphen_values = true)]
    pub ringgate_args: Vec<String>,
    /// Baseline tokio worker threads; default: tokio's (one per core).
    #[arg(long)]
    pub baseline_threads: Option<usize>,
    /// Load client reader threads.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Cores for the gateway process, e.g. `0` or `0,1` (default: unpinned).
    #[arg(long, value_delimiter = ',')]
    pub gateway_cpus: Vec<usize>,
    /// Cores for the load client threads (default: unpinned).
    #[arg(long, value_delimiter = ',')]
    pub client_cpus: Vec<usize>,
    /// Cores for the writer process (default: unpinned).
    #[arg(long, value_delimiter = ',')]
    pub writer_cpus: Vec<usize>,
    /// Subscribe message for `custom` clients (JSON text); default: none (channel defaults).
    #[arg(long)]
    pub subscribe: Option<String>,
    /// Upgrade path for `custom` clients.
    #[arg(long, default_value = "/v1/ws")]
    pub path: String,
    /// `custom` clients offer permessage-deflate (ringgate accepts it with
    /// `--ringgate-arg=--compression=on`); bytes/s are then bytes on the wire.
    #[arg(long)]
    pub deflate: bool,
    /// Replay this recorded ring snapshot (.zst) instead of the synthetic chain.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Depth of the resume in scenario f, in frames (ringgate's store keeps 100,000; the head
    /// moves between reading it and connecting, so the default leaves a margin).
    #[arg(long, default_value_t = 95_000)]
    pub resume_frames: u64,
    /// Memory guard for shared hosts: a gateway whose RSS passes this is killed and the run
    /// reported as such (an unbounded design can otherwise take the machine down).
    #[arg(long, default_value_t = 6144)]
    pub max_gateway_rss_mib: u64,
    /// Print tables as Markdown (for docs/benchmarks.md).
    #[arg(long)]
    pub markdown: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
    /// Internal: write the synthetic chain (or `--snapshot`) into `--ring` at `--rate` for
    /// `--duration` seconds (the writer process of every run).
    #[arg(long, hide = true)]
    pub write_ring: bool,
    /// Internal: run the baseline server on `--ring` / `--listen` until killed.
    #[arg(long, hide = true)]
    pub serve_baseline: bool,
    /// Internal: run the floor server on `--ring` / `--listen` until killed.
    #[arg(long, hide = true)]
    pub serve_floor: bool,
    #[arg(long, hide = true)]
    pub ring: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.serve_baseline {
        let (Some(ring), Some(listen)) = (args.ring.clone(), args.listen) else {
            eprintln!("--serve-baseline needs --ring and --listen");
            return ExitCode::FAILURE;
        };
        return match baseline::serve(&ring, listen, args.baseline_threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.serve_floor {
        let (Some(ring), Some(listen)) = (args.ring.clone(), args.listen) else {
            eprintln!("--serve-floor needs --ring and --listen");
            return ExitCode::FAILURE;
        };
        return match floor::serve(&ring, listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floor: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.write_ring {
        let Some(ring) = args.ring.clone() else {
            eprintln!("--write-ring needs --ring");
            return ExitCode::FAILURE;
        };
        return match write(&ring, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writer: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(scenario) = args.scenario else {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    };
    match scenarios::run(scenario, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The writer process: the library's own synthetic driver (or snapshot replay), the same code
/// `ringgate write` runs, paced at `--rate` (0 or absent: flat out).
fn write(
    ring: &std::path::Path,
    args: &Args,
) -> Result<(), ringgate::tools::synth::WriteRingError> {
    use ringgate::tools::synth::{write_ring, Source, WriteOptions};
    let opts = WriteOptions {
        source: match &args.snapshot {
            Some(s) => Source::Replay {
                snapshot: s.clone(),
                loops: None,
            },
            None => Source::Synthetic(Default::default()),
        },
        events_per_sec: args.rate.filter(|&r| r > 0).map(|r| r as f64),
        duration: Some(std::time::Duration::from_secs_f64(args.duration.max(0.1))),
        ..WriteOptions::default()
    };
    write_ring(ring, &opts, &std::sync::atomic::AtomicBool::new(false)).map(|_| ())
}

fn usage() -> String {
    use clap::CommandFactory;
    format!(
        "No scenario given; nothing run.\n\
         Usage: cargo bench --bench pipeline -- <scenario> [options]\n\
         Scenarios: a|latency b|ingest c|narrow d|idle-conns e|stuck f|resume g|idle-memory client custom\n\n{}",
        Args::command().render_help()
    )
}
