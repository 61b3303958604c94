//! The `ringgate` binary: parses flags into a [`Config`] and calls the library. All logic
//! lives in the library (`server::start`, `demo::run`, `inspect::run`, the ring writer) so
//! the integration tests exercise exactly what this binary runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use ringgate::config::{defaults, Config, IdleOverrides, IdleProfile};
use ringgate::log::{Level, LogFormat};
use ringgate::model::lane::LaneMap;
use ringgate::model::stage::CommitStage;
use ringgate::wire::http::limits::parse_ip_list;
use ringgate::wire::http::ConnectionLimits;

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
    about = "WebSocket gateway for Monad execution event rings",
    // The last occurrence of a flag wins, so the command line overrides a --config file
    // whose keys are put in front of it.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a ring (live file, or a .zst snapshot replayed from its start).
    Serve {
        #[command(flatten)]
        setup: Setup,
    },
    /// Preflight: report everything that would stop or slow `serve` (ring, limits, hugepages,
    /// port, cores, clock), with the remedy for each; exits 1 if serving would fail.
    Check {
        #[command(flatten)]
        setup: Setup,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
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
    /// Print a gateway's stream as JSON lines (events on stdout, status and gaps on stderr),
    /// resuming after drops; --latency for a ring → client latency histogram.
    Tail(ringgate::tools::tail::TailArgs),
}

/// What `serve` and `check` read: a config file, the ring, and the server flags.
#[derive(Debug, Args)]
struct Setup {
    /// TOML file whose keys are these flags' long names (`session-queue = 4096`); flags given
    /// on the command line override it. Example: tuning/ringgate.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Ring file; default: the node's ring under the first 2 MiB hugetlbfs mount.
    #[arg(long)]
    ring: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

impl Setup {
    /// The configuration these flags describe, with the ring path resolved.
    fn config(&self) -> Result<Config, String> {
        let mut config = Config::default();
        self.server.apply(&mut config);
        config.ring_path = match &self.ring {
            Some(p) => p.clone(),
            // An edge reads the NATS stream, not a ring.
            None if config.nats.is_edge() => PathBuf::from(defaults::RING_PATH),
            None => ringgate::ingest::ring::default_ring_path().map_err(|e| e.to_string())?,
        };
        if config.nats.is_edge() && (self.ring.is_some() || !config.nats.publish.is_empty()) {
            return Err("--source (an edge) reads the NATS stream: no --ring or --publish".into());
        }
        Ok(config)
    }
}

/// Flags shared by `serve`, `check` and `demo`; each maps to one [`Config`] field (see its
/// docs) and is a key of the same name in a `--config` file.
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
    /// Priority lanes of a full session queue: `on`, `off`, and `EventName=block|txn|detail`
    /// overrides, comma-separated (docs/protocol.md §7).
    #[arg(long, default_value = defaults::LANES, value_parser = LaneMap::parse)]
    lanes: LaneMap,
    /// Frames each shard keeps for resuming clients (0 disables resume).
    #[arg(long, default_value_t = defaults::RESUME_STORE_FRAMES)]
    resume_frames: usize,
    /// Frame bytes each shard's resume store may keep alive, MiB.
    #[arg(long, default_value_t = defaults::RESUME_STORE_MIB)]
    resume_mib: usize,
    /// Compressed history kept in memory for resuming clients, MiB (0: no shared history).
    #[arg(long, default_value_t = defaults::HISTORY_MEMORY_MIB)]
    history_mib: u64,
    /// Journal directory: history on disk, kept across restarts (same epoch and seqnos).
    #[arg(long)]
    history_dir: Option<PathBuf>,
    /// Disk the journal may use, GiB (oldest segments deleted past it).
    #[arg(long, default_value_t = defaults::HISTORY_MAX_GIB)]
    history_max_gib: u64,
    /// Drop history older than this (e.g. 90s, 30m, 6h, 2d; a bare number is seconds).
    #[arg(long, value_parser = parse_age)]
    history_max_age: Option<Duration>,
    /// Seconds a new connection has to send its request head.
    #[arg(long, default_value_t = defaults::HANDSHAKE_TIMEOUT_SECS)]
    handshake_timeout_secs: u64,
    /// Seconds between server pings.
    #[arg(long, default_value_t = defaults::PING_INTERVAL_SECS)]
    ping_interval_secs: u64,
    /// Seconds of client silence (no pong, no message) before disconnect.
    #[arg(long, default_value_t = defaults::PONG_TIMEOUT_SECS)]
    pong_timeout_secs: u64,
    /// Seconds a session closed by the server keeps its socket to deliver what is in flight
    /// and the close frame to a client that reads again.
    #[arg(long, default_value_t = defaults::CLOSE_GRACE_SECS)]
    close_grace_secs: u64,
    /// Locked memory per shard executor for io_uring buffers, KiB.
    #[arg(long, default_value_t = defaults::IO_MEMORY_KIB)]
    io_memory_kib: usize,
    /// Origin: publish every frame to this NATS JetStream server (nats://HOST:PORT; repeat
    /// for a cluster's seeds).
    #[arg(long)]
    publish: Vec<String>,
    /// Edge: serve the NATS stream of an origin instead of a ring (nats://HOST:PORT; repeat
    /// for a cluster's seeds).
    #[arg(long)]
    source: Vec<String>,
    /// NATS credentials for --publish or --source, from a file (TOML: `user` and `password`,
    /// or `token`; not readable by others; NKey/JWT .creds files are not supported).
    #[arg(long)]
    nats_creds: Option<PathBuf>,
    /// JetStream stream name.
    #[arg(long, default_value = "RINGGATE")]
    nats_stream: String,
    /// The stream keeps frames this long (e.g. 6h, 2d).
    #[arg(long, value_parser = parse_age, default_value = "24h")]
    nats_max_age: Duration,
    /// The stream keeps at most this much, GiB (oldest dropped first).
    #[arg(long, default_value_t = 8)]
    nats_max_gib: u64,
    /// Copies of the stream a NATS cluster keeps.
    #[arg(long, default_value_t = 1)]
    nats_replicas: u32,
    /// How the tailer and the shards wait when idle: latency (spin; isolated cores only),
    /// balanced, or frugal (least idle CPU). The four flags below override one part each.
    #[arg(long, value_enum, default_value_t = IdleProfile::default())]
    idle: IdleProfile,
    /// Tailer never sleeps when the ring is idle (dedicated core only); overrides --idle.
    #[arg(long)]
    busy_spin: bool,
    /// Microseconds of the tailer's first sleep when the ring goes idle (doubles per idle
    /// sleep up to --idle-max-park-us): the latency floor after a short lull. Default: the
    /// --idle profile's (50).
    #[arg(long)]
    idle_park_us: Option<u64>,
    /// Longest tailer sleep when the ring stays idle, microseconds (idle CPU vs the latency
    /// of the first event after a long lull). Default: the --idle profile's (balanced 50,
    /// frugal 1000).
    #[arg(long)]
    idle_max_park_us: Option<u64>,
    /// Microseconds a shard polls its empty inbox before it parks (0 = park at once; see
    /// docs/decisions/idle-strategy.md). Default: the --idle profile's (latency 1000,
    /// balanced 20, frugal 0).
    #[arg(long)]
    inbox_spin_us: Option<u64>,
    /// Ring events loaded at start from the oldest complete block still in a live ring
    /// (0 = start at the newest block).
    #[arg(long, default_value_t = defaults::STARTUP_BACKLOG_EVENTS)]
    backlog_events: u64,
    /// `min_stage` gates to run, comma-separated among voted,finalized,verified ("none" for
    /// none). Each enabled gate copies every in-block event once when its block gets there.
    #[arg(long, default_value = defaults::GATES_FLAG, value_parser = parse_gates)]
    gates: [bool; 3],
    /// Most concurrent connections on the whole server.
    #[arg(long, default_value_t = ConnectionLimits::DEFAULT_MAX_TOTAL)]
    max_connections: usize,
    /// Most concurrent connections from one client IP (through trusted proxies).
    #[arg(long, default_value_t = ConnectionLimits::DEFAULT_MAX_PER_IP)]
    max_connections_per_ip: usize,
    /// Proxies whose X-Forwarded-For / X-Real-IP are believed, comma-separated IPs (a reverse
    /// proxy in front of ringgate: tuning/nginx/). Default none: the client is the peer.
    #[arg(long, default_value = "", value_parser = valid_ip_list)]
    trusted_proxies: String,
    /// Access keys file (TOML `[[key]]`: name, token_sha256, max_connections, channels);
    /// with it every request but /health needs a key. SIGHUP reloads it.
    #[arg(long)]
    auth_keys: Option<PathBuf>,
    /// With --auth-keys, leave /metrics open to anyone who can reach the port.
    #[arg(long)]
    metrics_open: bool,
    /// Log lines as `text` or `json` (one line per lifecycle event, on stderr).
    #[arg(long, default_value = "text", value_parser = parse_log_format)]
    log_format: LogFormat,
    /// Lowest level logged: debug, info, warn or error.
    #[arg(long, default_value = "info", value_parser = parse_log_level)]
    log_level: Level,
    /// `Access-Control-Allow-Origin` for every HTTP answer (an origin such as
    /// https://dash.example, or *). Default: no CORS header.
    #[arg(long, value_parser = parse_cors_origin)]
    cors_origin: Option<String>,
    /// permessage-deflate for WebSocket clients that offer it: on or off.
    #[arg(long, action = clap::ArgAction::Set, value_parser = parse_on_off,
          default_value = if defaults::COMPRESSION { "on" } else { "off" })]
    compression: bool,
    /// No JSON-RPC (eth_subscribe): /rpc answers 404, and the tailer skips its per-block work.
    #[arg(long)]
    no_rpc: bool,
    /// A second address where every path speaks JSON-RPC (eth_subscribe), as a node's
    /// WebSocket port does (e.g. 0.0.0.0:8081). JSON-RPC is always at /rpc on --listen.
    #[arg(long)]
    rpc_listen: Option<SocketAddr>,
    /// Commit state at which newHeads and logs notify: Proposed (current Monad nodes),
    /// Voted or Finalized (older nodes).
    #[arg(long, default_value = "Proposed", value_parser = parse_heads_stage)]
    rpc_heads_stage: CommitStage,
    /// Most eth_subscribe subscriptions per JSON-RPC connection.
    #[arg(long, default_value_t = defaults::RPC_MAX_SUBSCRIPTIONS)]
    rpc_max_subscriptions: usize,
    /// Notifications a JSON-RPC client may have queued before it is closed, MiB.
    #[arg(long, default_value_t = defaults::RPC_QUEUE_MIB)]
    rpc_queue_mib: usize,
    /// Encoded blocks kept for eth_subscribe `fromBlock` replays and block look-ups, MiB.
    #[arg(long, default_value_t = defaults::RPC_HISTORY_MIB)]
    rpc_history_mib: u64,
}

/// `on` or `off`.
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?}: expected on or off")),
    }
}

/// `--rpc-heads-stage`: one of the four commit states.
fn parse_heads_stage(s: &str) -> Result<CommitStage, String> {
    CommitStage::from_name(s)
        .filter(|st| st.rank().is_some())
        .ok_or_else(|| format!("unknown stage {s:?} (Proposed, Voted, Finalized, Verified)"))
}

/// `--trusted-proxies`: a comma-separated IP list, checked here, parsed in `apply`.
fn valid_ip_list(s: &str) -> Result<String, String> {
    parse_ip_list(s).map(|_| s.to_owned())
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::parse(s).ok_or_else(|| format!("unknown log format {s:?} (text, json)"))
}

fn parse_log_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| format!("unknown log level {s:?} (debug, info, warn, error)"))
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

/// `90s`, `30m`, `6h`, `2d` or a number of seconds.
fn parse_age(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 90s, 30m, 6h, 2d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
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
        c.lanes = self.lanes;
        c.resume_store_frames = self.resume_frames;
        c.resume_store_bytes = self.resume_mib << 20;
        c.history_memory = self.history_mib << 20;
        c.history_dir = self.history_dir.clone();
        c.history_max_disk = self.history_max_gib << 30;
        c.history_max_age = self.history_max_age;
        c.handshake_timeout = Duration::from_secs(self.handshake_timeout_secs);
        c.ping_interval = Duration::from_secs(self.ping_interval_secs);
        c.pong_timeout = Duration::from_secs(self.pong_timeout_secs);
        c.close_grace = Duration::from_secs(self.close_grace_secs);
        c.io_memory = self.io_memory_kib * 1024;
        c.nats.publish = self.publish.clone();
        c.nats.source = self.source.clone();
        c.nats.creds_file = self.nats_creds.clone();
        c.nats.stream = self.nats_stream.clone();
        c.nats.max_age = self.nats_max_age;
        c.nats.max_bytes = self.nats_max_gib << 30;
        c.nats.replicas = self.nats_replicas;
        c.startup_backlog_events = self.backlog_events;
        c.chain.gate.enabled = self.gates;
        c.auth_keys = self.auth_keys.clone();
        c.connection_limits.max_total = self.max_connections;
        c.connection_limits.max_per_ip = self.max_connections_per_ip;
        // Validated by the flag's parser (valid_ip_list), so this cannot fail.
        c.connection_limits.trusted_proxies =
            parse_ip_list(&self.trusted_proxies).unwrap_or_default();
        c.metrics_open = self.metrics_open;
        c.compression = self.compression;
        c.rpc = !self.no_rpc;
        c.rpc_listen = self.rpc_listen;
        c.rpc_heads_stage = self.rpc_heads_stage;
        c.rpc_max_subscriptions = self.rpc_max_subscriptions;
        c.rpc_queue_bytes = self.rpc_queue_mib << 20;
        c.rpc_history_bytes = self.rpc_history_mib << 20;
        ringgate::log::init(self.log_format, self.log_level);
        c.cors_origin = self
            .cors_origin
            .clone()
            .or(defaults::CORS_ORIGIN.map(str::to_owned));
        self.idle.apply_with(
            &IdleOverrides {
                busy_spin: self.busy_spin,
                park_us: self.idle_park_us,
                max_park_us: self.idle_max_park_us,
                inbox_spin_us: self.inbox_spin_us,
            },
            c,
        );
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

/// Parses the command line; a `--config FILE` of `serve` or `check` is read and its keys are
/// put in front of the command line's own flags (the last occurrence wins).
fn parse_cli() -> Result<Cli, String> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(&argv);
    let file = match &cli.command {
        Command::Serve { setup } | Command::Check { setup, .. } => setup.config.clone(),
        _ => None,
    };
    let Some(file) = file else {
        return Ok(cli);
    };
    let sub = argv
        .get(1)
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let command = Cli::command();
    let subcommand = command
        .find_subcommand(&sub)
        .ok_or_else(|| format!("--config is not a flag of `{sub}`"))?;
    let from_file =
        ringgate::config_file::read_args(&file, subcommand).map_err(|e| e.to_string())?;
    let mut merged = argv[..2].to_vec();
    merged.extend(from_file);
    merged.extend(argv[2..].iter().cloned());
    Ok(Cli::parse_from(merged))
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("ringgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Tail(args) => return ExitCode::from(ringgate::tools::tail::run(args)),
        Command::Serve { setup } => setup
            .config()
            .map_err(|e| format!("{e}\n(or run `ringgate demo`)"))
            .and_then(|config| {
                ringgate::server::serve_until_signal(config).map_err(|e| e.to_string())
            }),
        Command::Check { setup, json } => {
            use ringgate::tools::check::{self, Finding, Host, Verdict};
            // No ring given and none found: say where it looked, and check everything else.
            let (config, not_found) = match setup.config() {
                Ok(c) => (c, None),
                Err(e) => {
                    let mut c = Config::default();
                    setup.server.apply(&mut c);
                    c.ring_path = PathBuf::from(defaults::RING_PATH);
                    (c, Some(e))
                }
            };
            let mut findings = check::run(&config, &Host::current());
            if let (Some(e), Some(ring)) = (not_found, findings.first_mut()) {
                *ring = Finding {
                    check: "ring",
                    verdict: Verdict::Fail,
                    detail: e,
                    remedy: "start the node with --exec-event-ring, or pass --ring PATH".into(),
                };
            }
            match check::report(&findings, json, &mut std::io::stdout().lock()) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e.to_string()),
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
            // With --events, stdout carries only the JSON lines and the report goes to stderr.
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let result = if events {
                let mut stderr = std::io::stderr().lock();
                ringgate::tools::inspect::run(&path, opts, &mut stderr, &mut stdout)
            } else {
                ringgate::tools::inspect::run(&path, opts, &mut stdout, &mut std::io::sink())
            };
            drop(stdout);
            result.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ringgate: {message}");
    ExitCode::FAILURE
}
