//! The `ringgate` binary: parses flags into a [`Config`] and calls the library. All logic
//! lives in the library (`server::start`, `demo::run`, `inspect::run`, the ring writer) so
//! the integration tests exercise exactly what this binary runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringgate::config::{defaults, Config};
use ringgate::ingest::tailer::IdleStrategy;

/// Every event is allocated on the tailer core and freed on a shard core (the last `Arc`
/// dropped). glibc malloc frees such a chunk under the allocating thread's arena lock, so
/// the tailer's `malloc` and the shard's `free` contended on one futex per event (and a shard
/// preempted while holding it stalled the tailer). mimalloc frees cross-thread with one
/// atomic push onto the owning page's list. Measured: docs/decisions/allocator.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "ringgate",
    version,
    about = "WebSocket gateway for Monad execution event rings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a ring (live file, or a .zst snapshot replayed from its start).
    Serve {
        /// Ring file; default: the node's ring under the first 2 MiB hugetlbfs mount.
        #[arg(long)]
        ring: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Write a synthetic chain into a ring under /dev/shm and serve it on localhost.
    Demo {
        /// Synthetic events per second.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Write a ring: a synthetic chain, or a recorded snapshot replayed at a rate.
    Write {
        /// Ring file to create.
        #[arg(long)]
        ring: PathBuf,
        /// Replay this snapshot instead of the synthetic chain.
        #[arg(long)]
        replay: Option<PathBuf>,
        /// Events per second.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Check a ring file (or .zst snapshot) and print its header; exits non-zero if invalid.
    Inspect {
        /// Also print every event.
        #[arg(long)]
        events: bool,
        path: PathBuf,
    },
}

/// Flags shared by `serve` and `demo`; each maps to one [`Config`] field (see its docs).
#[derive(Debug, Args)]
struct ServerArgs {
    /// Listen address (every shard binds it with SO_REUSEPORT).
    #[arg(long, default_value = defaults::LISTEN)]
    listen: SocketAddr,
    /// Shards (default: every core but the tailer's, at least one).
    #[arg(long)]
    shards: Option<usize>,
    /// Do not pin the tailer and shards to cores.
    #[arg(long)]
    no_pin: bool,
    /// Core for the tailer thread.
    #[arg(long, default_value_t = defaults::TAILER_CORE)]
    tailer_core: usize,
    /// Entries per shard SPSC queue.
    #[arg(long, default_value_t = defaults::SPSC_CAPACITY)]
    spsc_capacity: usize,
    /// Frames a session may queue before drops start.
    #[arg(long, default_value_t = defaults::SESSION_QUEUE_FRAMES)]
    session_queue: usize,
    /// Drops after which a slow client is disconnected (1008).
    #[arg(long, default_value_t = defaults::DROP_DISCONNECT_AFTER)]
    drop_limit: u64,
    /// Frames each shard keeps for resuming clients (0 disables resume).
    #[arg(long, default_value_t = defaults::RESUME_STORE_FRAMES)]
    resume_frames: usize,
    /// Frame bytes each shard's resume store may keep alive, MiB.
    #[arg(long, default_value_t = defaults::RESUME_STORE_MIB)]
    resume_mib: usize,
    /// Seconds a new connection has to send its request head.
    #[arg(long, default_value_t = defaults::HANDSHAKE_TIMEOUT_SECS)]
    handshake_timeout_secs: u64,
    /// Seconds between server pings.
    #[arg(long, default_value_t = defaults::PING_INTERVAL_SECS)]
    ping_interval_secs: u64,
    /// Seconds of client silence (no pong, no message) before disconnect.
    #[arg(long, default_value_t = defaults::PONG_TIMEOUT_SECS)]
    pong_timeout_secs: u64,
    /// Locked memory per shard executor for io_uring buffers, KiB.
    #[arg(long, default_value_t = defaults::IO_MEMORY_KIB)]
    io_memory_kib: usize,
    /// Tailer never sleeps when the ring is idle (dedicated core only).
    #[arg(long)]
    busy_spin: bool,
    /// Microseconds of the tailer's first sleep when the ring goes idle (doubles per idle
    /// sleep up to --idle-max-park-us): the latency floor after a short lull.
    #[arg(long, default_value_t = defaults::IDLE_PARK_US)]
    idle_park_us: u64,
    /// Longest tailer sleep when the ring stays idle, microseconds (idle CPU vs the latency
    /// of the first event after a long lull).
    #[arg(long, default_value_t = defaults::IDLE_MAX_PARK_US)]
    idle_max_park_us: u64,
    /// Microseconds a shard polls its empty inbox before it parks (0 = park at once; see
    /// docs/decisions/idle-strategy.md).
    #[arg(long, default_value_t = defaults::INBOX_SPIN_US)]
    inbox_spin_us: u64,
    /// Ring events loaded at start from the oldest complete block still in a live ring
    /// (0 = start at the newest block).
    #[arg(long, default_value_t = defaults::STARTUP_BACKLOG_EVENTS)]
    backlog_events: u64,
    /// `min_stage` gates to run, comma-separated among voted,finalized,verified ("none" for
    /// none). Each enabled gate copies every in-block event once when its block gets there.
    #[arg(long, default_value = defaults::GATES_FLAG, value_parser = parse_gates)]
    gates: [bool; 3],
    /// `Access-Control-Allow-Origin` for every HTTP answer (an origin such as
    /// https://dash.example, or *). Default: no CORS header.
    #[arg(long, value_parser = parse_cors_origin)]
    cors_origin: Option<String>,
}

/// `--cors-origin`: a header value, so no control characters (a CR/LF would inject headers).
fn parse_cors_origin(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(
            "an origin (e.g. https://dash.example) or *, without control characters".into(),
        );
    }
    Ok(s.to_owned())
}

/// `--gates`: which of `[Voted, Finalized, Verified]` are enabled.
fn parse_gates(s: &str) -> Result<[bool; 3], String> {
    let mut on = [false; 3];
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "voted" => on[0] = true,
            "finalized" => on[1] = true,
            "verified" => on[2] = true,
            "none" => {}
            other => {
                return Err(format!(
                    "unknown gate {other:?} (voted, finalized, verified, none)"
                ))
            }
        }
    }
    Ok(on)
}

impl ServerArgs {
    fn apply(&self, c: &mut Config) {
        c.listen = self.listen;
        c.shards = self.shards;
        c.pin_cores = !self.no_pin;
        c.tailer_core = self.tailer_core;
        c.spsc_capacity = self.spsc_capacity;
        c.session_queue_frames = self.session_queue;
        c.drop_disconnect_after = self.drop_limit;
        c.resume_store_frames = self.resume_frames;
        c.resume_store_bytes = self.resume_mib << 20;
        c.handshake_timeout = Duration::from_secs(self.handshake_timeout_secs);
        c.ping_interval = Duration::from_secs(self.ping_interval_secs);
        c.pong_timeout = Duration::from_secs(self.pong_timeout_secs);
        c.io_memory = self.io_memory_kib * 1024;
        c.inbox_spin = Duration::from_micros(self.inbox_spin_us);
        c.startup_backlog_events = self.backlog_events;
        c.chain.gate.enabled = self.gates;
        c.cors_origin = self
            .cors_origin
            .clone()
            .or(defaults::CORS_ORIGIN.map(str::to_owned));
        c.idle = if self.busy_spin {
            IdleStrategy::BusySpin
        } else {
            match IdleStrategy::default() {
                IdleStrategy::SpinYieldPark { spins, yields, .. } => IdleStrategy::SpinYieldPark {
                    spins,
                    yields,
                    park: Duration::from_micros(self.idle_park_us),
                    max_park: Duration::from_micros(self.idle_max_park_us),
                },
                busy => busy,
            }
        };
    }
}

/// No transparent huge pages for this process's heap. mimalloc asks for them
/// (`MADV_HUGEPAGE`), and the first touch of a fresh 2 MiB page zeroes it in the faulting
/// thread: 6–8 ms on the dev box (perf: `clear_page_erms` under `do_huge_pmd_anonymous_page`
/// from `mi_page_fresh_alloc` on the tailer), a latency spike every time the heap grows back.
/// With 4 KiB pages the same work is spread thin. The heap is tens of MB, so the TLB gain
/// of huge pages is negligible; the ring mapping (hugetlbfs) is not affected.
fn disable_transparent_huge_pages() {
    ringgate::sys::disable_transparent_huge_pages();
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { ring, server } => {
            let mut config = Config::default();
            server.apply(&mut config);
            match ring.map_or_else(ringgate::ingest::ring::default_ring_path, Ok) {
                Ok(path) => {
                    config.ring_path = path;
                    ringgate::server::serve_until_signal(config).map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("{e}\n(pass --ring PATH, or run `ringgate demo`)")),
            }
        }
        Command::Demo { rate, server } => {
            let mut config = Config::default();
            server.apply(&mut config);
            ringgate::tools::demo::run(config, rate).map_err(|e| e.to_string())
        }
        Command::Write {
            ring,
            replay,
            rate,
            duration,
        } => ringgate::tools::demo::write(
            &ring,
            replay.as_deref(),
            rate,
            duration.map(Duration::from_secs),
        )
        .map_err(|e| e.to_string()),
        Command::Inspect { events, path } => {
            let opts = ringgate::tools::inspect::InspectOptions { events };
            ringgate::tools::inspect::run(&path, opts, &mut std::io::stdout().lock())
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringgate: {e}");
            ExitCode::FAILURE
        }
    }
}
