//! Configuration: every knob of the running gateway in one struct, with its default, unit,
//! trade-off and when to change it. The CLI (`main.rs`) maps flags onto [`Config`]; tests
//! build one with [`Config::default`] and override a few fields.
//!
//! Runs on the main thread before anything starts; read-only afterwards (shards get a clone).
//! Must never: read the environment behind the caller's back, or hold runtime objects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::history::segment::SegmentConfig;
use crate::history::startup::HistorySetup;
use crate::history::store::HistoryConfig;
use crate::ingest::chain::pipeline::ChainConfig;
use crate::ingest::tailer::{IdleStrategy, TailerConfig};
use crate::model::lane::LaneMap;
use crate::serve::backpressure::QueueLimits;
use crate::serve::resume::ResumeConfig;
use crate::wire::http::{ConnectionLimits, RequestLimits};
use crate::wire::protocol::{AdvertisedLimits, BatchLimits};
use crate::wire::subscription::SubscriptionLimits;
use crate::wire::ws::{DecoderLimits, PingLimiter};

mod idle;
mod nats;
pub use idle::{IdleOverrides, IdleProfile};
pub use nats::NatsConfig;

/// The one source of every default: `Config::default`, the sub-structs' `Default`s and the
/// CLI's `default_value_t` all read these, so a default changes in one place. Each constant
/// is documented where it is used (the [`Config`] field of the same name).
pub mod defaults {
    /// `Config::listen`.
    pub const LISTEN: &str = "127.0.0.1:8443";
    /// `Config::ring_path` when no hugetlbfs mount is found.
    pub const RING_PATH: &str =
        "/var/lib/hugetlbfs/user/monad/pagesize-2MB/event-rings/monad-exec-events";
    /// `Config::tailer_core`.
    pub const TAILER_CORE: usize = 0;
    /// `Config::spsc_capacity`.
    pub const SPSC_CAPACITY: usize = 65_536;
    /// `Config::session_queue_frames`.
    pub const SESSION_QUEUE_FRAMES: usize = 4_096;
    /// `Config::drop_warning_every`.
    pub const DROP_WARNING_EVERY: u64 = 1_000;
    /// `Config::drop_disconnect_after`.
    pub const DROP_DISCONNECT_AFTER: u64 = 10_000;
    /// `Config::compression` (`--compression on|off`).
    pub const COMPRESSION: bool = false;
    /// `Config::lanes`, as `--lanes` spells it (`LaneMap::DEFAULT`).
    pub const LANES: &str = "on";
    /// `Config::write_max_bytes`.
    pub const WRITE_MAX_BYTES: usize = 1 << 20;
    /// `Config::handshake_timeout`, seconds.
    pub const HANDSHAKE_TIMEOUT_SECS: u64 = 5;
    /// `Config::ping_interval`, seconds.
    pub const PING_INTERVAL_SECS: u64 = 30;
    /// `Config::pong_timeout`, seconds.
    pub const PONG_TIMEOUT_SECS: u64 = 60;
    /// `Config::close_grace`, seconds.
    pub const CLOSE_GRACE_SECS: u64 = 10;
    /// `Config::resume_store_frames`.
    pub const RESUME_STORE_FRAMES: usize = 100_000;
    /// `Config::resume_store_bytes`, MiB.
    pub const RESUME_STORE_MIB: usize = 512;
    /// `Config::history_memory`, MiB.
    pub const HISTORY_MEMORY_MIB: u64 = 640;
    /// `Config::history_max_disk`, GiB.
    pub const HISTORY_MAX_GIB: u64 = 32;
    /// Serialized bytes at which a history chunk is sealed.
    pub const HISTORY_CHUNK_BYTES: usize = 1 << 20;
    /// Milliseconds after which an open history chunk is sealed anyway.
    pub const HISTORY_CHUNK_WAIT_MS: u64 = 250;
    /// Frames queued from the tailer to the history thread.
    pub const HISTORY_QUEUE_FRAMES: usize = 262_144;
    /// zstd level of history chunks.
    pub const HISTORY_ZSTD_LEVEL: i32 = 3;
    /// Size of one journal segment file, MiB.
    pub const HISTORY_SEGMENT_MIB: u64 = 64;
    /// Data bytes of the write-ahead log, MiB.
    pub const HISTORY_WAL_MIB: u64 = 256;
    /// `Config::startup_backlog_events`.
    pub const STARTUP_BACKLOG_EVENTS: u64 = 100_000;
    /// `min_stage` gates enabled: `[Voted, Finalized, Verified]` (`Config::chain`).
    pub const GATES: [bool; 3] = [true; 3];
    /// The CLI spelling of [`GATES`].
    pub const GATES_FLAG: &str = "voted,finalized,verified";
    /// Tailer idle polls before it sleeps (`IdleStrategy::SpinYieldPark::spins`), meant to
    /// outlast the gap between two events of a writer's burst (~1.4 µs in a trace). 1,000
    /// kept the core from the client after every burst on a 2-vCPU box:
    /// docs/decisions/idle-strategy.md.
    pub const IDLE_SPINS: u32 = 100;
    /// The tailer's first idle sleep, microseconds.
    pub const IDLE_PARK_US: u64 = 50;
    /// The tailer's longest idle sleep, microseconds.
    pub const IDLE_MAX_PARK_US: u64 = 50;
    /// `Config::inbox_spin`, microseconds.
    pub const INBOX_SPIN_US: u64 = 20;
    /// `Config::stale_after`, seconds.
    pub const STALE_AFTER_SECS: u64 = 10;
    /// `Config::io_memory`, KiB.
    pub const IO_MEMORY_KIB: usize = 512;
    /// `Config::ring_depth`.
    pub const RING_DEPTH: usize = 128;
    /// `Config::shutdown_grace`, seconds.
    pub const SHUTDOWN_GRACE_SECS: u64 = 2;
    /// `Config::cors_origin`: no `Access-Control-Allow-Origin` header.
    pub const CORS_ORIGIN: Option<&str> = None;
    /// `Config::rpc_ping_interval`, seconds.
    pub const RPC_PING_INTERVAL_SECS: u64 = 20;
    /// `Config::rpc_max_subscriptions`.
    pub const RPC_MAX_SUBSCRIPTIONS: usize = 100;
    /// `Config::rpc_queue_bytes`, MiB.
    pub const RPC_QUEUE_MIB: usize = 16;
    /// `Config::rpc_history_bytes`, MiB.
    pub const RPC_HISTORY_MIB: u64 = 64;
}

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address every shard's listener binds (SO_REUSEPORT). Default `127.0.0.1:8443`: the
    /// old gateway's port, on loopback so a fresh install is not exposed to the network.
    /// Set `0.0.0.0:8443` (behind your firewall / proxy) to serve other hosts; port 0 picks a
    /// free port (tests).
    pub listen: SocketAddr,
    /// The ring to tail: a live ring file, or a `.zst` snapshot served as a replay from its
    /// first event. Default: the node's default ring under the first 2 MiB hugetlbfs mount.
    pub ring_path: PathBuf,
    /// Shard executors (cores serving clients). `None` = every core but the tailer's, at
    /// least one. More shards add client capacity; each costs a core and `io_memory` of
    /// locked memory.
    pub shards: Option<usize>,
    /// Pin the tailer and each shard to its own core (`core_affinity` / glommio
    /// `Placement::Fixed`). Default on. Turn off when cores are shared with other busy
    /// processes (CI, laptops) so the kernel may migrate threads.
    pub pin_cores: bool,
    /// Core the tailer thread runs on when pinning is on. Default 0; shards take the
    /// following cores (wrapping).
    pub tailer_core: usize,
    /// Entries in each shard's SPSC queue (one `Arc` pointer each, 16 B). Default 65,536 ≈ a
    /// few blocks of events: absorbs a shard stall of ~100 ms at 500k events/s. Bigger costs
    /// memory only when a shard falls behind; smaller makes a `Gap` more likely.
    pub spsc_capacity: usize,
    /// Frames a session may have queued before new ones are dropped. Default 4,096 (the
    /// old gateway's `client_send_buffer`). Bigger tolerates burstier readers but pins
    /// more event memory per slow client.
    pub session_queue_frames: usize,
    /// Drops between two `Warning` frames to a slow client. Default 1,000.
    pub drop_warning_every: u64,
    /// Cumulative drops after which a slow client is closed with 1008. Default 10,000.
    /// Only top-lane frames are drops; lower lanes are shed and never close a session.
    pub drop_disconnect_after: u64,
    /// Priority lane of each event type (`--lanes`; default [`LaneMap::DEFAULT`]: block-level
    /// events and meta frames on top, the transaction skeleton next, accesses, call frames
    /// and perf events last; docs/decisions/priority-lanes.md). A full session queue sheds
    /// the lowest lane first. [`LaneMap::SINGLE`] (`--lanes off`) is one lane: every overflow
    /// is a drop, as before lanes.
    pub lanes: LaneMap,
    /// Caps on one `Events` frame (default 256 events / 256 KiB; see [`BatchLimits`]).
    pub batch: BatchLimits,
    /// Bytes after which a session stops filling one write (soft cap; a frame is never
    /// split; the rest goes in the next write). Default 1 MiB: large enough that a write
    /// carries thousands of events under load, small enough to bound per-session buffers.
    pub write_max_bytes: usize,
    /// Time a new connection has to send a complete HTTP request head. Default 5 s. Lower
    /// it under connection floods; raise it for very slow links.
    pub handshake_timeout: Duration,
    /// Server ping interval on WebSocket sessions. Default 30 s (the old gateway's advertised value).
    pub ping_interval: Duration,
    /// A session that sends nothing (not even a pong) for this long is closed. Default 60 s.
    pub pong_timeout: Duration,
    /// How long a session closed by the server (slow client, heartbeat, ping flood, protocol
    /// error; not a shutdown) keeps its socket so that what is already in flight and then
    /// the close frame reach a client that reads again: a client that stalled until it was
    /// dropped learns why (1008 and its reason) instead of seeing the connection reset.
    /// Default 10 s. Cost: a client that never reads again holds its socket and up to
    /// `write_max_bytes` of copied output that long. Lower it under floods of stuck clients
    /// (docs/decisions/close-grace.md).
    pub close_grace: Duration,
    /// Connection admission: total and per-IP limits, trusted proxies (see
    /// [`ConnectionLimits`] for each default and trade-off).
    pub connection_limits: ConnectionLimits,
    /// Request-head bounds (8 KiB, 64 headers; past them: 431).
    pub request_limits: RequestLimits,
    /// Client-frame bounds (64 KiB messages; past it: close 1009).
    pub decoder_limits: DecoderLimits,
    /// Subscription bounds (names, specs, values; past them: an `Error` frame). Its
    /// `enabled_gates` is not a setting of its own: sessions read
    /// [`Config::subscription_limits`], which takes the gates from `chain.gate.enabled`.
    pub subscription_limits: SubscriptionLimits,
    /// Client pings per second sustained, and burst, before a session is closed for a ping
    /// flood (1008). Defaults 10/s and 20: far above any keep-alive, far below a flood.
    pub ping_per_sec: u32,
    pub ping_burst: u32,
    /// `Access-Control-Allow-Origin` on every HTTP answer but the `101` (REST bodies and
    /// error statuses alike). Default `None`: no CORS header, so a browser page from another
    /// origin cannot read `/v1/*` (the old gateway sent `*` unconditionally). Set it to the
    /// dashboard's origin (`--cors-origin https://dash.example`), or `*` to let any page read
    /// the REST answers (they are public chain data, but it also exposes `/metrics`).
    pub cors_origin: Option<String>,
    /// Without the shared history (`history_memory = 0` and no dir): frames each shard's
    /// resume store keeps for `resume_from` / `from_block` (announced as
    /// `Hello.limits.resume_buffer_size`). Default 100,000 (the old gateway's window, here actually
    /// usable): about 20 mainnet-sized blocks, ~8 s of chain. The store holds `Arc`s of the
    /// frames the shard already has, so it costs 16 B per frame per shard plus keeping the
    /// frame bytes alive (bounded by `resume_store_bytes`). Raise it to let clients survive
    /// longer disconnects; 0 disables resume (Hello then omits the resume features and a
    /// resume request is answered `snapshot`, `recovered: false`).
    pub resume_store_frames: usize,
    /// Frame bytes each shard's resume store may keep alive; the oldest frames are evicted
    /// past it (or past `resume_store_frames`, whichever comes first). Default 512 MiB:
    /// never reached by 100,000 frames of typical events (~500 B), it caps the memory a
    /// burst of huge events (large logs, call frames) can pin.
    pub resume_store_bytes: usize,
    /// Compressed bytes of history kept in memory, shared by all shards: the resume window
    /// for `resume_from` / `from_block`, measured in bytes and reported as a
    /// time span (`/v1/status` `history_span_secs`). Default 640 MiB: at 20,000 ring events/s
    /// of mainnet blocks with all gates on, about 7 minutes (1.6 MB/s; docs/benchmarks.md). With
    /// `history_dir`, chunks go to disk and this only bounds chunks the disk refused. 0
    /// disables the shared history (each shard's resume store is then the whole window).
    pub history_memory: u64,
    /// Journal directory (`--history-dir`): history on disk, kept across restarts (same
    /// epoch, continuous `server_seqno`, catch-up from the ring). Default `None`: memory only,
    /// a restart starts a new epoch.
    pub history_dir: Option<PathBuf>,
    /// Bytes the journal may use on disk; whole oldest segments are deleted past it. Default
    /// 32 GiB: about 5 hours at 20,000 ring events/s (docs/benchmarks.md).
    pub history_max_disk: u64,
    /// History older than this is dropped (memory and disk). Default `None`: bytes only.
    pub history_max_age: Option<Duration>,
    /// Ring events the tailer loads at start from the oldest complete block still in a live
    /// ring (the startup backlog), so a restarted gateway rebuilds lifecycle and analytics
    /// state and can serve recent history to resuming clients. Default 100,000 (the resume
    /// store's size: more could not be replayed anyway). 0 starts at the newest block. Cost:
    /// one burst of decode + encode at start (~100 ms for 100k events).
    pub startup_backlog_events: u64,
    /// The chain stage: lifecycle bounds, the `min_stage` gate, TPS window, contention and
    /// top-accesses sizes. Default: every part on, with all three gates (`Voted`, `Finalized`,
    /// `Verified`) enabled. Trade-off of the gates: each enabled gate makes one copy of every
    /// in-block event when the block reaches its stage (its keys, ~300 B; the JSON bytes are
    /// shared with the original) and holds the originals until the last enabled gate releases them
    /// (about four blocks for `Verified`; bounded by `gate.max_blocks` / `gate.max_bytes`, past
    /// which a `Gap{stage_gate_overflow}` is sent). Disable gates no client may use
    /// (`chain.gate.enabled`) to save that memory and CPU; a `min_stage` session on a
    /// disabled gate then receives no events.
    pub chain: ChainConfig,
    /// What the tailer does when the ring is idle. Default: [`IdleProfile::Balanced`]'s
    /// (`--idle` sets this and `inbox_spin` together).
    pub idle: IdleStrategy,
    /// How long a shard polls its empty inbox before it parks (its executor runs nothing
    /// else meanwhile). Default 20 µs: a tailer producing more than ~50k frames/s then never
    /// finds the shard asleep, which saves a park and a wake-up per few frames on both cores
    /// (docs/decisions/idle-strategy.md); a quiet ring costs at most 20 µs of spinning per
    /// burst. 0 parks at once.
    pub inbox_spin: Duration,
    /// How long the ring may be silent before `/health` says stale. Default 10 s.
    pub stale_after: Duration,
    /// Locked memory each glommio executor registers for io_uring buffers (bytes). Default
    /// 512 KiB: 1 tailer (no io_uring) + 8 shards fit the common 8 MiB `ulimit -l`. Raise on
    /// hosts with a larger limit for more zero-copy buffer space.
    pub io_memory: usize,
    /// io_uring submission-queue depth per ring per executor. Default 128.
    pub ring_depth: usize,
    /// `SO_SNDBUF` for client sockets (bytes). Default `None`: kernel autotuning (up to
    /// `net.ipv4.tcp_wmem` max, several MB). Set it to bound the kernel memory a client that
    /// stops reading can pin (its bounded session queue then fills sooner); tests set it
    /// small to reach the slow-client limits quickly.
    pub socket_send_buffer: Option<usize>,
    /// Upper bound for a graceful shutdown (close 1001 to everyone, flush). Default 2 s.
    pub shutdown_grace: Duration,
    /// Access keys file (`[[key]]` tables: name, SHA-256 of the token, quota, channels).
    /// Default `None`: no authentication, for a gateway reachable only by trusted clients.
    /// With a file, every WebSocket and REST request but `/health` needs a key; SIGHUP
    /// reloads the file (docs/operations.md).
    pub auth_keys: Option<PathBuf>,
    /// With `auth_keys`, leave `/metrics` open (a Prometheus on a private network). Default
    /// off.
    pub metrics_open: bool,
    /// permessage-deflate (RFC 7692) for native WebSocket clients that offer it. Default off:
    /// browsers and the common client libraries offer it unasked, so on would compress for
    /// nearly every client and trade the shard's CPU (the encode-once fan-out) for bandwidth
    /// most deployments next to their clients do not need (docs/decisions/compression.md).
    pub compression: bool,
    /// JSON-RPC `eth_subscribe` (`/rpc`, `rpc_listen`). Default on. Its frames take
    /// `server_seqno`s that native clients never receive (like the `min_stage` copies of a
    /// gate they did not ask for), and the tailer keeps each block's logs until it ends; off
    /// (`--no-rpc`) saves both, and `/rpc` answers 404.
    pub rpc: bool,
    /// A second address where every path speaks JSON-RPC over WebSocket (a drop-in for a
    /// node's WebSocket port, e.g. `0.0.0.0:8081`). Default `None`: JSON-RPC only at `/rpc`
    /// on `listen`. Same admission, keys and limits as `listen`.
    pub rpc_listen: Option<SocketAddr>,
    /// The commit state at which `newHeads` and `logs` notify. Default `Proposed` (Monad
    /// nodes since v0.14.0, right after BLOCK_END); `Voted` or `Finalized` give what older
    /// nodes sent, later and never from an abandoned proposal.
    pub rpc_heads_stage: crate::model::stage::CommitStage,
    /// Most `eth_subscribe` subscriptions per JSON-RPC connection (the next one gets
    /// `-32603`). Default 100, as Monad's server.
    pub rpc_max_subscriptions: usize,
    /// Bytes of notifications a JSON-RPC session may have queued; past it the client is
    /// closed with 1008 and the reason. Default 16 MiB (about 30 mainnet blocks of every
    /// log for an unfiltered `logs`). Monad's server closes a client 32 block updates behind.
    pub rpc_queue_bytes: usize,
    /// Bytes of encoded blocks (headers and logs) kept for `fromBlock` replays and block
    /// look-ups on each shard (the shards share the blocks, so this is the total), and again
    /// at most for the tailer's blocks awaiting later commit states. Default 64 MiB: about a
    /// hundred blocks of busy mainnet (0.3–0.7 MiB of logs each), half a minute of chain.
    pub rpc_history_bytes: u64,
    /// Server pings on JSON-RPC sessions. Default 20 s (Monad's server).
    pub rpc_ping_interval: Duration,
    /// Scale-out over NATS JetStream: publish (origin) or consume (edge).
    pub nats: NatsConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: defaults::LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8443))),
            ring_path: PathBuf::from(defaults::RING_PATH),
            shards: None,
            pin_cores: true,
            tailer_core: defaults::TAILER_CORE,
            spsc_capacity: defaults::SPSC_CAPACITY,
            session_queue_frames: defaults::SESSION_QUEUE_FRAMES,
            drop_warning_every: defaults::DROP_WARNING_EVERY,
            drop_disconnect_after: defaults::DROP_DISCONNECT_AFTER,
            lanes: LaneMap::DEFAULT,
            batch: BatchLimits::default(),
            write_max_bytes: defaults::WRITE_MAX_BYTES,
            handshake_timeout: Duration::from_secs(defaults::HANDSHAKE_TIMEOUT_SECS),
            ping_interval: Duration::from_secs(defaults::PING_INTERVAL_SECS),
            pong_timeout: Duration::from_secs(defaults::PONG_TIMEOUT_SECS),
            close_grace: Duration::from_secs(defaults::CLOSE_GRACE_SECS),
            connection_limits: ConnectionLimits::default(),
            request_limits: RequestLimits::default(),
            decoder_limits: DecoderLimits::default(),
            subscription_limits: SubscriptionLimits::default(),
            ping_per_sec: PingLimiter::DEFAULT_PER_SEC,
            ping_burst: PingLimiter::DEFAULT_BURST,
            cors_origin: defaults::CORS_ORIGIN.map(str::to_owned),
            resume_store_frames: defaults::RESUME_STORE_FRAMES,
            resume_store_bytes: defaults::RESUME_STORE_MIB << 20,
            history_memory: defaults::HISTORY_MEMORY_MIB << 20,
            history_dir: None,
            history_max_disk: defaults::HISTORY_MAX_GIB << 30,
            history_max_age: None,
            startup_backlog_events: defaults::STARTUP_BACKLOG_EVENTS,
            chain: ChainConfig::default(),
            idle: IdleStrategy::default(),
            inbox_spin: Duration::from_micros(defaults::INBOX_SPIN_US),
            stale_after: Duration::from_secs(defaults::STALE_AFTER_SECS),
            io_memory: defaults::IO_MEMORY_KIB * 1024,
            ring_depth: defaults::RING_DEPTH,
            socket_send_buffer: None,
            shutdown_grace: Duration::from_secs(defaults::SHUTDOWN_GRACE_SECS),
            auth_keys: None,
            metrics_open: false,
            compression: defaults::COMPRESSION,
            rpc: true,
            rpc_listen: None,
            rpc_heads_stage: crate::model::stage::CommitStage::Proposed,
            rpc_max_subscriptions: defaults::RPC_MAX_SUBSCRIPTIONS,
            rpc_queue_bytes: defaults::RPC_QUEUE_MIB << 20,
            rpc_history_bytes: defaults::RPC_HISTORY_MIB << 20,
            rpc_ping_interval: Duration::from_secs(defaults::RPC_PING_INTERVAL_SECS),
            nats: NatsConfig::default(),
        }
    }
}

impl Config {
    /// Shards to start: the configured count, or every core but the tailer's (at least 1).
    pub fn shard_count(&self) -> usize {
        match self.shards {
            Some(n) => n.max(1),
            None => std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1),
        }
    }

    /// Core for shard `index` when pinning is on: the cores after the tailer's, wrapping.
    pub fn shard_core(&self, index: usize, cores: usize) -> usize {
        (self.tailer_core + 1 + index) % cores.max(1)
    }

    /// The subscription bounds sessions enforce: `subscription_limits` with the `min_stage`
    /// gates this server runs (`chain.gate.enabled`, the one gate setting).
    pub fn subscription_limits(&self) -> SubscriptionLimits {
        SubscriptionLimits {
            enabled_gates: self.chain.gate.enabled,
            lanes: self.lanes,
            ..self.subscription_limits
        }
    }

    /// What the tailer thread needs of these settings.
    pub fn tailer_config(&self) -> TailerConfig {
        TailerConfig {
            ring_path: self.ring_path.clone(),
            snapshot: self.is_snapshot(),
            core: self.pin_cores.then_some(self.tailer_core),
            chain: self.chain,
            idle: self.idle,
            startup_backlog_events: self.startup_backlog_events,
            resume_window_frames: self.resume_store_frames,
            restart: None,
            rpc: self.rpc,
            rpc_kept_bytes: self.rpc_history_bytes,
        }
    }

    /// The per-session queue bounds these settings imply.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            capacity: self.session_queue_frames,
            warn_every: self.drop_warning_every,
            disconnect_after: self.drop_disconnect_after,
            lanes: self.lanes,
        }
    }

    /// Whether shards keep a resume store (`resume_store_frames > 0`).
    pub fn resume_enabled(&self) -> bool {
        self.resume_store_frames > 0
    }

    /// Whether the shared history runs (`history_memory > 0` or a history dir, and resume
    /// enabled).
    pub fn history_enabled(&self) -> bool {
        self.resume_enabled() && (self.history_memory > 0 || self.history_dir.is_some())
    }

    /// Where the history lives and how big it may grow.
    pub fn history_setup(&self) -> HistorySetup {
        HistorySetup {
            config: HistoryConfig {
                memory_bytes: self.history_memory,
                max_age: self.history_max_age,
                chunk_raw_bytes: defaults::HISTORY_CHUNK_BYTES,
                chunk_max_wait: Duration::from_millis(defaults::HISTORY_CHUNK_WAIT_MS),
                queue_frames: defaults::HISTORY_QUEUE_FRAMES,
                zstd_level: defaults::HISTORY_ZSTD_LEVEL,
            },
            dir: self.history_dir.clone(),
            segments: SegmentConfig {
                max_segment_bytes: defaults::HISTORY_SEGMENT_MIB << 20,
                max_total_bytes: self.history_max_disk,
                max_age: self.history_max_age,
            },
            wal_bytes: defaults::HISTORY_WAL_MIB << 20,
            ring_path: std::fs::canonicalize(&self.ring_path)
                .unwrap_or_else(|_| self.ring_path.clone())
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// The bounds of each shard's resume store.
    pub fn resume_config(&self) -> ResumeConfig {
        ResumeConfig {
            max_frames: self.resume_store_frames,
            max_bytes: self.resume_store_bytes,
        }
    }

    /// The limits announced to clients in `Hello`.
    pub fn advertised_limits(&self) -> AdvertisedLimits {
        AdvertisedLimits {
            resume_buffer_size: self.resume_store_frames as u64,
            client_send_buffer: self.session_queue_frames as u64,
            slow_client_drop_limit: self.drop_disconnect_after,
            heartbeat_interval_secs: self.ping_interval.as_secs(),
            heartbeat_timeout_secs: self.pong_timeout.as_secs(),
            max_batch_events: self.batch.max_events as u64,
            max_batch_bytes: self.batch.max_bytes as u64,
            max_message_bytes: self.decoder_limits.max_message_bytes as u64,
        }
    }

    /// Locked memory (KiB) the shard executors need: each registers `io_memory` plus its
    /// io_uring rings (about 3/8 KiB per queue entry); glommio refuses any limit below
    /// 512 KiB whatever `io_memory` is.
    pub fn locked_memory_needed_kib(&self) -> u64 {
        let per_shard = (self.io_memory as u64 / 1024) + 3 * (self.ring_depth as u64) / 8;
        (per_shard * self.shard_count() as u64).max(512)
    }

    /// True when `ring_path` names a compressed snapshot (served as a replay).
    pub fn is_snapshot(&self) -> bool {
        self.ring_path.extension().is_some_and(|e| e == "zst")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_listens_on_loopback_8443() {
        let c = Config::default();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), 8443);
        assert!(c.shard_count() >= 1);
    }

    #[test]
    fn shards_take_the_cores_after_the_tailer() {
        let c = Config::default();
        assert_eq!(c.shard_core(0, 2), 1);
        assert_eq!(c.shard_core(1, 2), 0);
        assert_eq!(
            Config {
                shards: Some(0),
                ..c
            }
            .shard_count(),
            1
        );
    }

    #[test]
    fn zst_paths_are_snapshots() {
        let c = Config {
            ring_path: PathBuf::from("/tmp/x.zst"),
            ..Config::default()
        };
        assert!(c.is_snapshot());
    }
}
