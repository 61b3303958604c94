//! `ringgate demo` and `ringgate write`: a ring writer thread (synthetic chain or snapshot
//! replay) next to the gateway, so a newcomer sees live events with one command.
//!
//! Runs on the main thread (setup, waiting) plus one writer thread; the gateway is the same
//! [`server::start`] as `ringgate serve`. The demo ring lives in its own directory under a
//! usable 2 MiB hugetlbfs mount when there is one with free pages, else under `/dev/shm`
//! (`ringgate-demo-<pid>/`), and the directory is removed on exit (Ctrl-C included).
//! Must never: leave the writer thread or the ring directory behind on a clean exit.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::ingest::ring::layout::RingSizes;
use crate::ingest::ring::scratch_dir;
use crate::server::{self, ServerError};
use crate::tools::synth::drive::{write_ring, DriveStats, Source, WriteOptions, WriteRingError};
use crate::tools::synth::generator::SynthOptions;

/// How long the demo waits for its writer to create the ring.
const RING_APPEARS_WITHIN: Duration = Duration::from_secs(10);

/// Why `demo` or `write` failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: cannot create the ring directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("demo: the ring writer failed: {0}")]
    Writer(#[from] WriteRingError),
    #[error("demo: the ring writer did not create {0} in time")]
    NoRing(PathBuf),
    #[error("demo: the ring writer thread panicked")]
    WriterPanicked,
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
}

/// Ring sizes for the demo: the smallest the format allows, 2^16 descriptors (4 MiB) and a
/// 2^27-byte (128 MiB) payload buffer, about 30 s of history at the default demo rate. The
/// tailer maps the ring populated, so the whole file becomes resident in `/dev/shm`: smaller
/// is better here.
fn demo_sizes() -> RingSizes {
    RingSizes {
        descriptor_capacity: 1 << 16,
        payload_buf_size: 1 << 27,
        context_area_size: 0,
    }
}

struct WriterThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<DriveStats, WriteRingError>>,
}

impl WriterThread {
    fn spawn(path: PathBuf, opts: WriteOptions) -> io::Result<WriterThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ringgate-writer".into())
            .spawn(move || write_ring(&path, &opts, &flag))?;
        Ok(WriterThread { stop, handle })
    }

    fn stop(self) -> Result<DriveStats, DemoError> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| DemoError::WriterPanicked)?
            .map_err(DemoError::Writer)
    }
}

/// Starts a writer for `path` and waits until the ring file exists; `Err` if the writer
/// failed first (so the caller can try another directory).
fn start_writer(path: &Path, rate: u64) -> Result<WriterThread, DemoError> {
    let opts = WriteOptions {
        source: Source::Synthetic(SynthOptions::for_rate(rate as f64)),
        sizes: demo_sizes(),
        events_per_sec: Some(rate as f64),
        ..WriteOptions::default()
    };
    let writer =
        WriterThread::spawn(path.to_path_buf(), opts).map_err(|source| DemoError::Dir {
            path: path.to_path_buf(),
            source,
        })?;
    let deadline = Instant::now() + RING_APPEARS_WITHIN;
    while !path.exists() {
        if writer.handle.is_finished() || Instant::now() >= deadline {
            let outcome = writer.stop();
            return Err(match outcome {
                Err(e) => e,
                Ok(_) => DemoError::NoRing(path.to_path_buf()),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(writer)
}

/// Directories to try for the demo ring, best first.
fn candidate_dirs() -> Vec<PathBuf> {
    let name = format!("ringgate-demo-{}", std::process::id());
    let mut dirs = Vec::new();
    if let Ok(default) = crate::ingest::ring::default_ring_path() {
        // `<mount>/event-rings/monad-exec-events` → `<mount>`.
        if let Some(mount) = default.parent().and_then(Path::parent) {
            dirs.push(mount.join(&name));
        }
    }
    dirs.push(scratch_dir().join(name));
    dirs
}

/// `ringgate demo`: synthetic chain at `rate` events/s + the gateway, until SIGINT/SIGTERM.
pub fn run(mut config: Config, rate: u64) -> Result<(), DemoError> {
    let mut last_err = None;
    let mut started = None;
    for dir in candidate_dirs() {
        if let Err(source) = std::fs::create_dir_all(&dir) {
            last_err = Some(DemoError::Dir { path: dir, source });
            continue;
        }
        let ring = dir.join("monad-exec-events");
        match start_writer(&ring, rate.max(1)) {
            Ok(w) => {
                started = Some((dir, ring, w));
                break;
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                last_err = Some(e);
            }
        }
    }
    let Some((dir, ring, writer)) = started else {
        return Err(last_err.unwrap_or(DemoError::NoRing(scratch_dir())));
    };
    config.ring_path = ring.clone();
    let result = serve_demo(config, &ring, rate);
    let stopped = writer.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    stopped.map(|_| ())
}

fn serve_demo(config: Config, ring: &Path, rate: u64) -> Result<(), DemoError> {
    let server = server::start(config)?;
    let handle = server.shutdown_handle();
    server::install_signal_handlers(move || handle.trigger()).map_err(DemoError::Signals)?;
    let addr = server.local_addr();
    eprintln!(
        "ringgate demo: a synthetic chain writes {rate} events/s into {ring}\n\
         \n\
         Dashboard:  http://{addr}/dashboard  (open it in a browser)\n\
         WebSocket:  ws://{addr}/v1/ws        (everything)\n\
         \x20           ws://{addr}/v1/ws/blocks (block events, lifecycle)\n\
         REST:       http://{addr}/v1/status  http://{addr}/metrics  http://{addr}/health\n\
         \n\
         Try:\n\
         \x20 websocat 'ws://{addr}/v1/ws?events=BlockStart,BlockEnd'\n\
         \x20 python3 -c \"import json,websocket; w=websocket.create_connection('ws://{addr}/v1/ws'); \
         w.send(json.dumps({{'subscribe':['BlockStart']}})); [print(w.recv()) for _ in range(5)]\"\n\
         \n\
         Ctrl-C stops the demo and removes the ring.",
        ring = ring.display()
    );
    server.wait()?;
    Ok(())
}

/// `ringgate write`: create a ring at `ring` and write a synthetic chain (or replay
/// `replay`) at `rate` events/s for `duration` (or until SIGINT/SIGTERM).
pub fn write(
    ring: &Path,
    replay: Option<&Path>,
    rate: u64,
    duration: Option<Duration>,
) -> Result<(), DemoError> {
    let source = match replay {
        Some(snapshot) => Source::Replay {
            snapshot: snapshot.to_path_buf(),
            loops: None,
        },
        None => Source::Synthetic(SynthOptions::for_rate(rate as f64)),
    };
    let opts = WriteOptions {
        source,
        events_per_sec: Some(rate.max(1) as f64),
        duration,
        ..WriteOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    server::install_signal_handlers(move || flag.store(true, Ordering::SeqCst))
        .map_err(DemoError::Signals)?;
    eprintln!(
        "ringgate write: writing {} at {rate} events/s",
        ring.display()
    );
    let stats = write_ring(ring, &opts, &stop)?;
    eprintln!(
        "ringgate write: {} events ({} proposals), last seqno {}",
        stats.events, stats.proposals, stats.last_seqno
    );
    Ok(())
}
