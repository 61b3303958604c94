//! The gateway's top level: start the tailer thread and the shard executors, hand back a
//! handle, stop everything on request. `main.rs` and the integration tests call the very same
//! [`start`] (tests on port 0).
//!
//! Runs on the caller's thread; spawns one tailer thread and N shard threads.
//! Startup is synchronous and fails loudly: a shard that cannot create its executor (locked
//! memory) or bind its listener makes [`start`] return a [`ServerError`] that names the
//! remedy. Shutdown ([`Server::shutdown`]) is bounded by `Config::shutdown_grace`.
//! Must never: exit the process (that is `main`'s job), or leave threads running on error.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::bus::publisher;
use crate::config::Config;
use crate::handoff::fanout::{self, FanoutWaker};
use crate::ingest::chain::pipeline::ChainPipeline;
use crate::ingest::tailer::edge::{self, EdgeSetup};
use crate::ingest::tailer::{self, TailerSetup};
use crate::log::{self, Level};
use crate::metrics::{now_ns, StatsHub};
use crate::serve::shard::{self, ShardSetup};
use crate::wire::http::auth::{read_keys, AuthKeys, KeysFileError};

/// Why the server could not start or stop cleanly. Each variant says where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The access-keys file cannot be used.
    #[error("{0}")]
    AuthKeys(KeysFileError),
    /// The snapshot given with `--ring` cannot be read (missing, not a ring, wrong schema…).
    #[error("{0}")]
    Snapshot(crate::ingest::ring::AttachError),
    /// glommio could not lock the memory io_uring needs.
    #[error(
        "shard {shard}: cannot create the io_uring executor: {source}\n\
         The locked-memory limit (RLIMIT_MEMLOCK) is {current_kib} KiB; ringgate needs about \
         {needed_kib} KiB ({shards} shard(s) x io_memory + rings; glommio needs at least \
         512 KiB).\n\
         Remedy: lower --io-memory-kib or --shards, or raise the limit:\n\
         \x20 /etc/security/limits.conf:  <user>  hard  memlock  unlimited\n\
         \x20                             <user>  soft  memlock  unlimited\n\
         \x20 systemd unit [Service]:      LimitMEMLOCK=infinity\n\
         \x20 docker run:                  --ulimit memlock=-1:-1"
    )]
    LockedMemory {
        shard: usize,
        current_kib: u64,
        needed_kib: u64,
        shards: usize,
        source: io::Error,
    },
    /// A shard executor failed to start for another reason.
    #[error("shard {shard}: cannot start: {source}")]
    Shard { shard: usize, source: io::Error },
    /// A shard could not bind the listen address.
    #[error("shard {shard}: cannot listen on {addr}: {source} (is another process using the port? try --listen 127.0.0.1:0)")]
    Bind {
        shard: usize,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The tailer thread could not start.
    #[error("tailer: cannot start: {0}")]
    Tailer(io::Error),
    /// The history could not be opened (history dir locked, of another ring or chain, of an
    /// incompatible version, unreadable).
    #[error("{0}")]
    History(#[from] crate::history::startup::HistoryOpenError),
    /// SIGINT/SIGTERM handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    /// An edge (`--source`) cannot read the origin's NATS stream, or is misconfigured.
    #[error("edge: {0}")]
    Edge(String),
    /// `--nats-creds`: the file is unreadable, malformed, readable by others, of a kind not
    /// supported (NKey/JWT), or the URLs carry credentials too.
    #[error("{0}")]
    NatsCreds(String),
    /// The NATS publisher thread could not start.
    #[error("publisher: cannot start: {0}")]
    Publisher(io::Error),
    /// A shard or the tailer panicked or failed while running.
    #[error("{0} stopped abnormally")]
    Crashed(String),
}

/// Something that asks the server to stop, from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    wakers: Arc<[FanoutWaker]>,
}

impl ShutdownHandle {
    /// Asks every shard and the tailer to stop; returns at once.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.wake_shards();
    }

    /// Rings every shard's doorbell, so a parked shard runs its loop once (it then sees a
    /// shutdown or a new access-key generation).
    pub fn wake_shards(&self) {
        for w in self.wakers.iter() {
            w.wake();
        }
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    rpc_addr: Option<SocketAddr>,
    hub: StatsHub,
    shutdown: ShutdownHandle,
    tailer: Option<JoinHandle<()>>,
    /// Exits after the tailer (whose queue it drains and seals).
    history: Option<JoinHandle<()>>,
    /// The NATS publisher (`--publish`): exits after the tailer, once its frames are acked.
    publisher: Option<JoinHandle<()>>,
    shards: Vec<glommio::ExecutorJoinHandle<()>>,
}

impl Server {
    /// The address the shards listen on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JSON-RPC listener's address (`Config::rpc_listen`, the real port when
    /// configured with port 0).
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// Counters, for tests and embedding.
    pub fn stats(&self) -> &StatsHub {
        &self.hub
    }

    /// The NATS publisher's counters, when publishing.
    pub fn bus_stats(&self) -> Option<&Arc<crate::metrics::BusStats>> {
        self.hub.bus.as_ref()
    }

    /// A handle that stops the server from another thread (signal watcher).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Stops accepting, closes every session with 1001, flushes, and joins all threads.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.shutdown.trigger();
        self.join()
    }

    /// Waits until the server stops (after a [`ShutdownHandle::trigger`]).
    pub fn wait(mut self) -> Result<(), ServerError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for (i, h) in self.shards.drain(..).enumerate() {
            if h.join().is_err() {
                result = Err(ServerError::Crashed(format!("shard {i}")));
            }
        }
        // Shards are gone; the tailer notices the flag on its next poll.
        self.shutdown.flag.store(true, Ordering::SeqCst);
        if let Some(t) = self.tailer.take() {
            if t.join().is_err() {
                result = Err(ServerError::Crashed("tailer".into()));
            }
        }
        if let Some(p) = self.publisher.take() {
            if p.join().is_err() {
                result = Err(ServerError::Crashed("publisher".into()));
            }
        }
        if let Some(h) = self.history.take() {
            if h.join().is_err() {
                result = Err(ServerError::Crashed("history".into()));
            } else if let Some(history) = &self.hub.history {
                history.close();
            }
        }
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.shards.is_empty() || self.tailer.is_some() {
            self.shutdown.trigger();
            let _ = self.join();
        }
    }
}

/// How long an edge waits at start for the origin's stream to hold a frame.
const EDGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the tailer and the shards for `config` and returns once every shard listens.
pub fn start(config: Config) -> Result<Server, ServerError> {
    let config = Arc::new(config);
    let shard_count = config.shard_count();
    let mut hub = StatsHub::new(shard_count, now_ns());
    if let Some(path) = &config.auth_keys {
        let keys = read_keys(path).map_err(ServerError::AuthKeys)?;
        hub.auth = Some(Arc::new(AuthKeys::new(keys)));
    }
    let nats_creds = config.nats.credentials().map_err(ServerError::NatsCreds)?;
    if config.nats.is_edge() {
        if config.history_dir.is_some() {
            return Err(ServerError::Edge(
                "an edge keeps its history in memory (the stream is its journal): no --history-dir"
                    .into(),
            ));
        }
        let (urls, creds) = (&config.nats.source, nats_creds.as_ref());
        hub.epoch = edge::discover_epoch(urls, creds, &config.nats.stream, EDGE_WAIT)
            .map_err(|e| ServerError::Edge(e.to_string()))?;
    }
    let history = if config.history_enabled() {
        let opened = crate::history::startup::open(&config.history_setup(), hub.epoch)?;
        log_history_open(&config, &opened);
        hub.epoch = opened.epoch;
        hub.history = Some(opened.history.clone());
        Some(opened)
    } else {
        None
    };
    if !config.nats.publish.is_empty() {
        hub.bus = Some(Arc::default());
    }
    // REST answers the empty chain's bodies until the tailer's first publication.
    hub.chain
        .publish(ChainPipeline::new(config.chain).rest_bodies());
    let flag = Arc::new(AtomicBool::new(false));

    let mut senders = Vec::with_capacity(shard_count);
    let mut receivers = Vec::with_capacity(shard_count);
    let mut wakers = Vec::with_capacity(shard_count);
    for i in 0..shard_count {
        let (tx, rx, w) = fanout::channel(config.spsc_capacity)
            .map_err(|source| ServerError::Shard { shard: i, source })?;
        senders.push(tx);
        receivers.push(rx);
        wakers.push(w);
    }
    let shutdown = ShutdownHandle {
        flag: flag.clone(),
        wakers: wakers.into(),
    };
    let mut server = Server {
        addr: config.listen,
        rpc_addr: config.rpc_listen,
        hub: hub.clone(),
        shutdown,
        tailer: None,
        history: None,
        publisher: None,
        shards: Vec::with_capacity(shard_count),
    };

    let connections = crate::wire::http::GlobalConnections::new();
    // Shard 0 binds first so that port 0 resolves to one real port the others share.
    let mut addr = config.listen;
    let mut rpc_addr = config.rpc_listen;
    for (i, inbox) in receivers.into_iter().enumerate() {
        let (ready_tx, ready_rx) = mpsc::channel();
        let setup = ShardSetup {
            index: i,
            config: config.clone(),
            listen: addr,
            rpc_listen: rpc_addr,
            inbox,
            hub: hub.clone(),
            shutdown: flag.clone(),
            ready: ready_tx,
            connections: connections.clone(),
        };
        let handle = shard::spawn(setup).map_err(|e| startup_error(i, &config, shard_count, e))?;
        match ready_rx.recv() {
            Ok(Ok((bound, rpc_bound))) => {
                addr = bound;
                rpc_addr = rpc_bound;
                server.shards.push(handle);
            }
            Ok(Err(source)) => {
                return Err(ServerError::Bind {
                    shard: i,
                    addr,
                    source,
                })
            }
            Err(_) => {
                let err = match handle.join() {
                    Err(e) => startup_error(i, &config, shard_count, e),
                    Ok(()) => ServerError::Crashed(format!("shard {i}")),
                };
                return Err(err);
            }
        }
    }
    server.addr = addr;
    server.rpc_addr = rpc_addr;

    let mut tailer_config = config.tailer_config();
    let (history_tx, wal) = match history {
        Some(h) => {
            tailer_config.restart = h.restart;
            server.history = Some(h.thread);
            (Some(h.sender), h.wal)
        }
        None => (None, None),
    };
    if config.nats.is_edge() {
        let edge = edge::spawn(EdgeSetup {
            urls: config.nats.source.clone(),
            creds: nats_creds,
            stream: config.nats.stream.clone(),
            epoch: hub.epoch,
            shards: senders,
            history: history_tx,
            resume_window_frames: tailer_config.resume_window_frames,
            stats: hub.clone(),
            shutdown: flag,
        })
        .map_err(ServerError::Tailer)?;
        server.tailer = Some(edge);
        return Ok(server);
    }
    let bus = match config.nats.publish_settings(nats_creds) {
        Some(settings) => {
            let stats = hub.bus.clone().unwrap_or_default();
            let chain = Arc::clone(&hub.chain);
            let (sender, thread) =
                publisher::spawn(settings, hub.epoch, flag.clone(), stats, chain)
                    .map_err(ServerError::Publisher)?;
            server.publisher = Some(thread);
            Some(sender)
        }
        None => None,
    };
    let tailer = tailer::spawn(TailerSetup {
        config: tailer_config,
        shards: senders,
        history: history_tx,
        wal,
        bus,
        stats: hub.clone(),
        shutdown: flag,
    })
    .map_err(ServerError::Tailer)?;
    server.tailer = Some(tailer);
    Ok(server)
}

/// One line saying what the history holds at start (and what recovery had to repair).
fn log_history_open(config: &Config, opened: &crate::history::startup::OpenedHistory) {
    let r = &opened.report;
    let dir = config
        .history_dir
        .as_ref()
        .map_or_else(|| "memory".to_owned(), |d| d.display().to_string());
    log::event(
        Level::Info,
        "history_open",
        &[
            ("where", dir.as_str().into()),
            ("epoch", opened.epoch.into()),
            ("chunks", (r.chunks as u64).into()),
            ("wal_frames", (r.wal_frames as u64).into()),
            ("torn_tail_bytes", r.torn_tail_bytes.into()),
            ("corrupt_records", r.corrupt_records.into()),
            (
                "clean_shutdown",
                if r.clean_shutdown { "true" } else { "false" }.into(),
            ),
            (
                "continues_after",
                opened.restart.map_or(0, |p| p.last_server_seqno).into(),
            ),
        ],
    );
}

fn startup_error(
    shard: usize,
    config: &Config,
    shards: usize,
    err: glommio::GlommioError<()>,
) -> ServerError {
    // The reactor's memlock error crosses the executor thread boundary converted into an
    // `io::Error` whose text names it, so match on both forms; ENOMEM/EPERM from
    // io_uring_setup or buffer registration mean the same thing on older kernels.
    let locked = matches!(
        &err,
        glommio::GlommioError::ReactorError(glommio::ReactorErrorKind::MemLockLimit(..))
    ) || matches!(&err, glommio::GlommioError::IoError(e)
        if matches!(e.raw_os_error(), Some(crate::sys::ENOMEM) | Some(crate::sys::EPERM)))
        || err.to_string().contains("MemLockLimit");
    let source = io::Error::other(err.to_string());
    if locked {
        ServerError::LockedMemory {
            shard,
            current_kib: crate::sys::memlock_limit_kib(),
            needed_kib: config.locked_memory_needed_kib(),
            shards,
            source,
        }
    } else {
        ServerError::Shard { shard, source }
    }
}

pub use crate::sys::install_signal_handlers;

/// What SIGHUP does (`systemctl reload`): with an access-keys file, re-read it and swap the
/// keys (a bad file keeps the old keys and says why), then wake every shard so it closes the
/// sessions of removed keys with 1008 "key revoked"; connections of keys that remain are
/// untouched. Without one, log that there is nothing to reload. Never stops the server.
fn reload_keys_on_sighup(
    server: &Server,
    path: Option<std::path::PathBuf>,
) -> Option<impl FnMut() + Send + 'static> {
    let keys = server.stats().auth.clone();
    let handle = server.shutdown_handle();
    Some(move || match (&keys, &path) {
        (Some(keys), Some(path)) => reload_keys(keys, path, &handle),
        _ => log::event(
            Level::Info,
            "reload",
            &[("auth_keys", "none configured".into())],
        ),
    })
}

fn reload_keys(keys: &AuthKeys, path: &std::path::Path, handle: &ShutdownHandle) {
    match read_keys(path) {
        Ok(specs) => {
            let count = specs.len() as u64;
            let removed = keys.reload(specs);
            log::event(
                Level::Info,
                "auth_keys_reloaded",
                &[
                    ("keys", count.into()),
                    ("removed", removed.join(",").as_str().into()),
                ],
            );
            handle.wake_shards();
        }
        Err(e) => log::event(
            Level::Error,
            "auth_keys_reload_failed",
            &[("error", e.to_string().as_str().into())],
        ),
    }
}

/// `ringgate serve`: start, print where it listens, run until SIGINT/SIGTERM, stop cleanly.
pub fn serve_until_signal(config: Config) -> Result<(), ServerError> {
    let ring = config.ring_path.clone();
    let source = if config.nats.is_edge() {
        format!(
            "NATS stream {} of {}",
            config.nats.stream,
            config.nats.source.join(",")
        )
    } else {
        ring.display().to_string()
    };
    let auth_path = config.auth_keys.clone();
    // A snapshot is a file the operator named: if it cannot be read, say why and exit (a live
    // ring may appear later, when the node starts: that case is reported and retried).
    if config.is_snapshot() {
        if let Err(e) = crate::ingest::ring::Ring::open(&ring) {
            return Err(ServerError::Snapshot(e));
        }
    }
    let server = start(config)?;
    let handle = server.shutdown_handle();
    let reload = reload_keys_on_sighup(&server, auth_path);
    crate::sys::install_signal_handlers_with_reload(move || handle.trigger(), reload)
        .map_err(ServerError::Signals)?;
    eprintln!(
        "ringgate: serving {source} on ws://{}/v1/ws ({} shard(s)); /health /v1/status /metrics",
        server.local_addr(),
        server.stats().shards.len()
    );
    match server.rpc_addr() {
        Some(rpc) => eprintln!(
            "ringgate: JSON-RPC (eth_subscribe) on ws://{}/rpc and ws://{rpc}/",
            server.local_addr()
        ),
        None => eprintln!(
            "ringgate: JSON-RPC (eth_subscribe) on ws://{}/rpc",
            server.local_addr()
        ),
    }
    let addr = server.local_addr().to_string();
    log::event(
        Level::Info,
        "start",
        &[
            ("ring", ring.to_string_lossy().as_ref().into()),
            ("listen", addr.as_str().into()),
            ("shards", (server.stats().shards.len() as u64).into()),
            ("epoch", server.stats().epoch.into()),
        ],
    );
    let result = server.wait();
    log::event(
        Level::Info,
        "stop",
        &[(
            "clean",
            if result.is_ok() { "true" } else { "false" }.into(),
        )],
    );
    result
}
