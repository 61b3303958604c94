//! The driver: writes synthetic (or replayed) events into a live ring, as a daemon would.
//!
//! Runs on its own producer thread (`ringgate write`, `ringgate demo`, tests, benches), never
//! on the tailer or a shard core. Input: a [`RingWriter`], a [`Generator`] (or a snapshot
//! path), a [`Pacer`], a stop flag and limits. Output: committed events, [`DriveStats`].
//!
//! Flow tags: a BLOCK_START gets `content_ext[0]` = its own seqno (`writer.next_seqno()` just
//! before writing it); every later block-scoped event the seqno of that BLOCK_START;
//! consensus events 0. `[1]`/`[2]` come from the generator. Timestamps are `CLOCK_REALTIME`
//! now, in ns. Never: spin while paced (the pacer sleeps), write after `stop` is seen.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ingest::ring::layout::RingSizes;
use crate::ingest::ring::{AttachError, Ring, RingWriter, WriterError};
use crate::model::kind::EventType;
use crate::tools::pacer::Pacer;
use crate::tools::replay::{replay, ReplayOptions};
use crate::tools::synth::generator::Generator;
use crate::tools::synth::options::SynthOptions;

/// What a drive wrote. A snapshot replay fills `events`, `last_seqno` and `stopped` only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriveStats {
    /// Events committed.
    pub events: u64,
    /// BLOCK_STARTs committed.
    pub proposals: u64,
    /// Payload bytes written.
    pub payload_bytes: u64,
    /// Seqno of the last event written (0 if none).
    pub last_seqno: u64,
    /// The stop flag ended the drive (rather than the limit).
    pub stopped: bool,
}

/// CLOCK_REALTIME in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Writes `generator`'s events into `writer` until `limit` events (if any) or `stop`.
pub fn run(
    writer: &mut RingWriter,
    generator: &mut Generator,
    pacer: &mut Pacer,
    stop: &AtomicBool,
    limit: Option<u64>,
) -> DriveStats {
    let mut stats = DriveStats::default();
    let mut block_seqno = 0u64;
    while limit.is_none_or(|n| stats.events < n) {
        if stop.load(Ordering::Relaxed) {
            stats.stopped = true;
            break;
        }
        let ev = generator.next_event();
        let ext0 = if ev.event_type == EventType::BlockStart {
            block_seqno = writer.next_seqno();
            stats.proposals += 1;
            block_seqno
        } else if ev.block_scoped {
            block_seqno
        } else {
            0
        };
        let ext = [ext0, ev.txn_id, ev.account_index, 0];
        stats.last_seqno = writer.write_event(ev.event_type.code(), ext, ev.payload, now_ns());
        stats.events += 1;
        stats.payload_bytes += ev.payload.len() as u64;
        pacer.pace(1);
    }
    stats
}

/// Where the events written by [`write_ring`] come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The synthetic chain.
    Synthetic(SynthOptions),
    /// A recorded ring snapshot (`.zst`) or ring file, replayed `loops` times (`None` =
    /// until stopped), with block numbers and ids shifted per loop (see `tools::replay`).
    Replay {
        snapshot: PathBuf,
        loops: Option<u64>,
    },
}

/// Settings of [`write_ring`]. For a synthetic chain whose heights last about one block
/// interval of wall time, pair `SynthOptions::for_rate(r)` with `events_per_sec: Some(r)`.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    pub source: Source,
    /// Ring sizes. Default 2^20 descriptors (64 MiB) and a 2^28-byte payload buffer: a few
    /// seconds of history at a million events per second, small enough for `/dev/shm`.
    pub sizes: RingSizes,
    /// Target rate (`--rate`); `None` = as fast as the writer goes.
    pub events_per_sec: Option<f64>,
    /// Stop after this long (`--duration`); `None` = until stopped.
    pub duration: Option<Duration>,
    /// Stop after this many events; `None` = no limit (synthetic source only).
    pub max_events: Option<u64>,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            source: Source::Synthetic(SynthOptions::default()),
            sizes: RingSizes {
                descriptor_capacity: 1 << 20,
                payload_buf_size: 1 << 28,
                context_area_size: 0,
            },
            events_per_sec: None,
            duration: None,
            max_events: None,
        }
    }
}

/// Why [`write_ring`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum WriteRingError {
    /// The ring file could not be created (owned by another writer, bad sizes, I/O).
    #[error(transparent)]
    Create(#[from] WriterError),
    /// The snapshot to replay could not be opened.
    #[error("cannot replay: {0}")]
    Snapshot(#[from] AttachError),
}

/// Creates a ring at `path` and writes events into it until the source, the duration or the
/// event limit ends, or `stop` is set; then the writer exits (and, like the daemon on a clean
/// exit, unlinks the file). Blocks the calling thread.
pub fn write_ring(
    path: &Path,
    opts: &WriteOptions,
    stop: &AtomicBool,
) -> Result<DriveStats, WriteRingError> {
    enum Prepared {
        Synthetic(SynthOptions),
        Replay(Arc<Ring>, Option<u64>),
    }
    let prepared = match &opts.source {
        Source::Synthetic(so) => Prepared::Synthetic(*so),
        Source::Replay { snapshot, loops } => {
            Prepared::Replay(Arc::new(Ring::open(snapshot)?), *loops)
        }
    };
    let mut writer = RingWriter::create(path, opts.sizes)?;
    // The loops poll one flag: the caller's stop (seen here at once, later within 5 ms)
    // joined with the deadline.
    let local_stop = AtomicBool::new(stop.load(Ordering::Relaxed));
    let done = AtomicBool::new(false);
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let stats = std::thread::scope(|scope| {
        // Joins the caller's stop flag and the deadline into one flag the loops poll.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    local_stop.store(true, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let stats = match prepared {
            Prepared::Replay(ring, loops) => {
                let ro = ReplayOptions {
                    loops,
                    events_per_sec: opts.events_per_sec,
                };
                let r = replay(ring, &mut writer, ro, &local_stop);
                DriveStats {
                    events: r.events_written,
                    last_seqno: writer.next_seqno() - 1,
                    stopped: r.stopped,
                    ..DriveStats::default()
                }
            }
            Prepared::Synthetic(so) => {
                let mut generator = Generator::new(so);
                let mut pacer = Pacer::new(opts.events_per_sec);
                run(
                    &mut writer,
                    &mut generator,
                    &mut pacer,
                    &local_stop,
                    opts.max_events,
                )
            }
        };
        done.store(true, Ordering::Relaxed);
        stats
    });
    Ok(stats)
}
