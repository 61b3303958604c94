//! The shared history: the index of sealed chunks (in memory, or on disk through the
//! journal), its retention, and the reads shards make to replay from it.
//!
//! One [`History`] per server, shared by `Arc` between the history thread (the only writer:
//! [`History::add_sealed`]) and every shard (readers). Readers take the index's read lock
//! only to look up a chunk (a few comparisons and an `Arc` clone); decompression and
//! decoding happen outside the lock, and decoded chunks are shared through a small cache so
//! a reconnect storm decodes each chunk once, not once per client.
//!
//! Invariants:
//! - chunks are in strictly increasing, non-overlapping seqno order; a chunk is visible to
//!   readers before [`History::sealed_head`] covers it (index insert, then a `Release` store);
//! - retention removes whole chunks from the front only (oldest first), by the memory
//!   budget (chunks held in memory), the disk budget (the journal's) and by age;
//! - a chunk that cannot be read or decoded is counted and reported as lost, never served
//!   partially wrong: the replay announces its range as a `Gap`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::history::meta::ChunkMeta;
use crate::history::record::{self, Originals};
use crate::model::outbound::Outbound;
use crate::model::stage::CommitStage;

/// The largest raw chunk a reader will decompress: a meta claiming more is corrupt.
pub const MAX_CHUNK_RAW: u32 = 64 << 20;
/// Decoded chunks kept for replaying readers.
const DECODED_CACHE: usize = 8;

/// The history's bounds and chunking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Compressed bytes of chunks held in memory (all of them without a history dir; with
    /// one, only chunks the journal could not take).
    pub memory_bytes: u64,
    /// Chunks older than this are dropped (memory and disk); `None` = bytes only.
    pub max_age: Option<Duration>,
    /// A chunk is sealed once its serialized frames reach this many bytes...
    pub chunk_raw_bytes: usize,
    /// ...or once its first frame is this old (bounds what the shards must keep unsealed).
    pub chunk_max_wait: Duration,
    /// Frames queued from the tailer to the history thread before it drops (counted).
    pub queue_frames: usize,
    /// zstd level of the chunks.
    pub zstd_level: i32,
}

/// Counters and gauges of the history (written by the history thread, read by metrics).
#[derive(Debug, Default)]
pub struct HistoryStats {
    pub frames: AtomicU64,
    pub chunks: AtomicU64,
    /// Compressed bytes held in memory.
    pub memory_bytes: AtomicU64,
    /// Bytes of the journal on disk.
    pub disk_bytes: AtomicU64,
    /// Serialized bytes of the frames sealed since start (before compression).
    pub raw_bytes_total: AtomicU64,
    /// Compressed bytes sealed since start.
    pub compressed_bytes_total: AtomicU64,
    /// Frames the tailer could not queue to the history thread (it was behind).
    pub dropped_frames: AtomicU64,
    /// Frames the tailer could not write ahead (the write-ahead log was full).
    pub wal_full: AtomicU64,
    /// Chunks that failed their checksum or decoding when read.
    pub corrupt_chunks: AtomicU64,
    /// Journal writes that failed (the chunk stayed in memory).
    pub disk_errors: AtomicU64,
    /// Chunks dropped by retention.
    pub retired_chunks: AtomicU64,
}

/// What the history holds right now, for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HistoryWindow {
    /// First and last seqno held (0, 0 when empty).
    pub oldest_seqno: u64,
    pub newest_seqno: u64,
    /// Lowest block number with live events held.
    pub oldest_block: Option<u64>,
    /// Wall-clock time between the oldest and the newest frame held, seconds.
    pub span_secs: f64,
    pub chunks: u64,
}

/// Where a sealed chunk's compressed bytes are.
#[derive(Debug, Clone)]
pub enum ChunkData {
    Memory(Arc<[u8]>),
    Disk(crate::history::segment::ChunkLocation),
}

#[derive(Debug, Clone)]
struct Stored {
    meta: ChunkMeta,
    data: ChunkData,
}

#[derive(Debug, Default)]
struct Index {
    chunks: VecDeque<Stored>,
    memory_bytes: u64,
}

/// A chunk decoded for replay: its frames in seqno order, and the seqnos of its range that
/// could not be rebuilt (copies whose original left the history).
#[derive(Debug)]
pub struct DecodedChunk {
    pub meta: ChunkMeta,
    pub frames: Vec<Outbound>,
}

/// What [`History::chunk_after`] found.
#[derive(Debug, Clone)]
pub enum ChunkRead {
    /// The chunk holding the first stored frame after the seqno asked for.
    Chunk(Arc<DecodedChunk>),
    /// That chunk could not be read or decoded: its range is lost.
    Lost(ChunkMeta),
    /// Nothing sealed after the seqno.
    End,
}

/// The shared history.
#[derive(Debug)]
pub struct History {
    config: HistoryConfig,
    epoch: u64,
    index: RwLock<Index>,
    sealed_head: AtomicU64,
    decoded: Mutex<VecDeque<Arc<DecodedChunk>>>,
    /// `None` inside the mutex once closed.
    journal: Option<Mutex<Option<crate::history::segment::Journal>>>,
    pub stats: HistoryStats,
}

impl History {
    /// An empty in-memory history for `epoch`.
    pub fn new(config: HistoryConfig, epoch: u64) -> History {
        History {
            config,
            epoch,
            index: RwLock::new(Index::default()),
            sealed_head: AtomicU64::new(0),
            decoded: Mutex::new(VecDeque::new()),
            journal: None,
            stats: HistoryStats::default(),
        }
    }

    /// A history over an opened journal whose recovered chunks are `chunks`.
    pub fn with_journal(
        config: HistoryConfig,
        epoch: u64,
        journal: crate::history::segment::Journal,
        chunks: Vec<(ChunkMeta, crate::history::segment::ChunkLocation)>,
    ) -> History {
        let mut h = History::new(config, epoch);
        h.stats
            .disk_bytes
            .store(journal.total_bytes(), Ordering::Relaxed);
        h.journal = Some(Mutex::new(Some(journal)));
        let index = h.index.get_mut().expect("fresh lock");
        let mut head = 0;
        for (meta, loc) in chunks {
            head = meta.last_seqno;
            index.chunks.push_back(Stored {
                meta,
                data: ChunkData::Disk(loc),
            });
        }
        h.stats
            .chunks
            .store(index.chunks.len() as u64, Ordering::Relaxed);
        h.sealed_head.store(head, Ordering::Release);
        h
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last seqno in a sealed chunk (0 before the first).
    pub fn sealed_head(&self) -> u64 {
        self.sealed_head.load(Ordering::Acquire)
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The first chunk's meta and the last one's, if any.
    pub fn bounds(&self) -> Option<(ChunkMeta, ChunkMeta)> {
        let index = self.read_index();
        Some((index.chunks.front()?.meta, index.chunks.back()?.meta))
    }

    /// What the history holds.
    pub fn window(&self) -> HistoryWindow {
        let index = self.read_index();
        let (Some(first), Some(last)) = (index.chunks.front(), index.chunks.back()) else {
            return HistoryWindow::default();
        };
        HistoryWindow {
            oldest_seqno: first.meta.first_seqno,
            newest_seqno: last.meta.last_seqno,
            oldest_block: index.chunks.iter().find_map(|c| c.meta.first_block),
            span_secs: last
                .meta
                .last_time_ns
                .saturating_sub(first.meta.first_time_ns) as f64
                / 1e9,
            chunks: index.chunks.len() as u64,
        }
    }

    /// The seqno of the oldest frame held, if any.
    pub fn oldest_seqno(&self) -> Option<u64> {
        self.read_index().chunks.front().map(|c| c.meta.first_seqno)
    }

    /// The lowest block number with live events in the history.
    pub fn oldest_block(&self) -> Option<u64> {
        self.read_index()
            .chunks
            .iter()
            .find_map(|c| c.meta.first_block)
    }

    /// Seals a chunk: writes it to the journal when there is one (falling back to memory on
    /// an I/O error, counted), makes it visible, applies retention. History thread only.
    pub fn add_sealed(&self, meta: ChunkMeta, compressed: Vec<u8>, now_ns: u64) {
        let data = match &self.journal {
            Some(j) => {
                let mut j = j.lock().unwrap_or_else(|e| e.into_inner());
                let appended = match j.as_mut() {
                    Some(j) => j
                        .append(&meta, &compressed)
                        .map(|loc| (loc, j.total_bytes())),
                    None => Err(crate::history::segment::JournalError::Deleted {
                        path: std::path::PathBuf::from("(closed)"),
                    }),
                };
                match appended {
                    Ok((loc, total)) => {
                        self.stats.disk_bytes.store(total, Ordering::Relaxed);
                        ChunkData::Disk(loc)
                    }
                    Err(e) => {
                        if self.stats.disk_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            crate::log::event(
                                crate::log::Level::Error,
                                "history_write_failed",
                                &[("error", e.to_string().as_str().into())],
                            );
                        }
                        ChunkData::Memory(compressed.into())
                    }
                }
            }
            None => ChunkData::Memory(compressed.into()),
        };
        let s = &self.stats;
        s.raw_bytes_total
            .fetch_add(u64::from(meta.raw_len), Ordering::Relaxed);
        if let ChunkData::Memory(b) = &data {
            s.compressed_bytes_total
                .fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        s.frames
            .fetch_add(u64::from(meta.frames), Ordering::Relaxed);
        {
            let mut index = self.write_index();
            if let ChunkData::Memory(b) = &data {
                index.memory_bytes += b.len() as u64;
            }
            index.chunks.push_back(Stored { meta, data });
        }
        self.sealed_head.store(meta.last_seqno, Ordering::Release);
        self.retire(now_ns);
    }

    /// Drops the oldest chunks beyond the memory budget, the journal's budget or the age.
    fn retire(&self, now_ns: u64) {
        let disk_gone = self.journal.as_ref().and_then(|j| {
            let mut j = j.lock().unwrap_or_else(|e| e.into_inner());
            let j = j.as_mut()?;
            let gone = j.enforce_retention(now_ns).unwrap_or_else(|e| {
                if self.stats.disk_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    crate::log::event(
                        crate::log::Level::Error,
                        "history_retention_failed",
                        &[("error", e.to_string().as_str().into())],
                    );
                }
                None
            });
            self.stats
                .disk_bytes
                .store(j.total_bytes(), Ordering::Relaxed);
            gone
        });
        let max_age_ns = self.config.max_age.map(|d| d.as_nanos() as u64);
        let mut index = self.write_index();
        let mut retired = 0;
        while let Some(front) = index.chunks.front() {
            let on_disk_gone = matches!(front.data, ChunkData::Disk(_))
                && disk_gone.is_some_and(|s| front.meta.last_seqno <= s);
            let too_old =
                max_age_ns.is_some_and(|a| now_ns.saturating_sub(front.meta.last_time_ns) > a);
            let over_memory = index.memory_bytes > self.config.memory_bytes
                && matches!(front.data, ChunkData::Memory(_));
            if !(on_disk_gone || too_old || over_memory) || index.chunks.len() == 1 {
                break;
            }
            if let Some(Stored {
                data: ChunkData::Memory(b),
                ..
            }) = index.chunks.pop_front()
            {
                index.memory_bytes -= b.len() as u64;
            }
            retired += 1;
        }
        let s = &self.stats;
        s.memory_bytes.store(index.memory_bytes, Ordering::Relaxed);
        s.chunks.store(index.chunks.len() as u64, Ordering::Relaxed);
        s.retired_chunks.fetch_add(retired, Ordering::Relaxed);
    }

    /// Records the chain id of the ring (from its first block) in the journal's identity. A
    /// journal of another chain stops being written (its chunks are never mixed with this
    /// chain's; new chunks stay in memory), with an error in the log and `disk_errors`.
    /// History thread only; called when the chain id changes.
    pub fn note_chain_id(&self, chain_id: u64) {
        let Some(j) = &self.journal else {
            return;
        };
        let mut guard = j.lock().unwrap_or_else(|e| e.into_inner());
        let Some(journal) = guard.as_mut() else {
            return;
        };
        let known = journal.identity().chain_id;
        if known == chain_id {
            return;
        }
        let result = if known == 0 {
            let mut identity = journal.identity().clone();
            identity.chain_id = chain_id;
            journal.set_identity(&identity).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "the history dir holds chain {known}, the ring is chain {chain_id}: the journal \
                 is no longer written; point --history-dir at a directory of this chain"
            ))
        };
        if let Err(error) = result {
            self.stats.disk_errors.fetch_add(1, Ordering::Relaxed);
            crate::log::event(
                crate::log::Level::Error,
                "history_chain_mismatch",
                &[("error", error.as_str().into())],
            );
            if let Some(journal) = guard.take() {
                let _ = journal.close();
            }
        }
    }

    /// Closes the journal cleanly (graceful shutdown: the next start knows nothing was
    /// torn). The history stays readable from memory only.
    pub fn close(&self) {
        if let Some(j) = &self.journal {
            let mut j = j.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(journal) = j.take() {
                let _ = journal.close();
            }
        }
    }

    /// The seqno of the first live event of block `number` in the history, if held.
    pub fn first_seqno_of_block(&self, number: u64) -> Option<u64> {
        let candidates: Vec<Stored> = self
            .read_index()
            .chunks
            .iter()
            .filter(|c| {
                c.meta.first_block.is_some_and(|f| f <= number)
                    && c.meta.last_block.is_some_and(|l| l >= number)
            })
            .cloned()
            .collect();
        for stored in candidates {
            let Ok(chunk) = self.decode(&stored) else {
                continue;
            };
            let found = chunk.frames.iter().find_map(|f| match f {
                Outbound::Event(e)
                    if e.keys.block_number == Some(number)
                        && e.keys.block_seqno != 0
                        && e.gate == CommitStage::Proposed =>
                {
                    Some(e.server_seqno)
                }
                _ => None,
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The decoded chunk holding the first stored frame with seqno `> after`.
    pub fn chunk_after(&self, after: u64) -> ChunkRead {
        let stored = {
            let index = self.read_index();
            let i = index.chunks.partition_point(|c| c.meta.last_seqno <= after);
            match index.chunks.get(i) {
                Some(s) => s.clone(),
                None => return ChunkRead::End,
            }
        };
        match self.decode(&stored) {
            Ok(c) => ChunkRead::Chunk(c),
            Err(()) => {
                self.stats.corrupt_chunks.fetch_add(1, Ordering::Relaxed);
                ChunkRead::Lost(stored.meta)
            }
        }
    }

    fn raw(&self, stored: &Stored) -> Result<Vec<u8>, ()> {
        if stored.meta.raw_len > MAX_CHUNK_RAW {
            return Err(());
        }
        let compressed = match &stored.data {
            ChunkData::Memory(b) => b.to_vec(),
            ChunkData::Disk(loc) => {
                let j = self.journal.as_ref().ok_or(())?;
                let j = j.lock().unwrap_or_else(|e| e.into_inner());
                j.as_ref()
                    .ok_or(())?
                    .read(*loc, &stored.meta)
                    .map_err(|_| ())?
            }
        };
        zstd::bulk::decompress(&compressed, stored.meta.raw_len as usize).map_err(|_| ())
    }

    fn decode(&self, stored: &Stored) -> Result<Arc<DecodedChunk>, ()> {
        let first = stored.meta.first_seqno;
        {
            let cache = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.iter().find(|c| c.meta.first_seqno == first) {
                return Ok(c.clone());
            }
        }
        let raw = self.raw(stored)?;
        let mut originals = Originals::new();
        self.load_originals_for(&raw, &mut originals);
        let mut unresolved = Vec::new();
        let frames =
            record::decode_lenient(&raw, &mut originals, &mut unresolved).map_err(|_| ())?;
        let chunk = Arc::new(DecodedChunk {
            meta: stored.meta,
            frames,
        });
        let mut cache = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= DECODED_CACHE {
            cache.pop_front();
        }
        cache.push_back(chunk.clone());
        Ok(chunk)
    }

    /// `(ring_seqno, timestamp_ns)` of the last live event held (where a restarted tailer
    /// continues reading the ring).
    pub fn last_live_event(&self) -> Option<(u64, u64)> {
        let chunks: Vec<Stored> = self
            .read_index()
            .chunks
            .iter()
            .rev()
            .take(64)
            .cloned()
            .collect();
        chunks.iter().find_map(|stored| {
            let chunk = self.decode(stored).ok()?;
            crate::history::startup::last_live_event(&chunk.frames)
        })
    }

    /// Loads into `originals` the originals that copies in `raw` (frame records) need from
    /// earlier chunks.
    pub fn load_originals_for(&self, raw: &[u8], originals: &mut Originals) {
        let Ok(records) = record::scan(raw) else {
            return;
        };
        let Some(first) = records.first().map(|r| r.0) else {
            return;
        };
        let mut wanted: Vec<u64> = records
            .iter()
            .filter_map(|&(_, origin)| origin.filter(|&o| o < first))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        while let Some(&lowest) = wanted.first() {
            let stored = {
                let index = self.read_index();
                let i = index.chunks.partition_point(|c| c.meta.last_seqno < lowest);
                match index.chunks.get(i) {
                    Some(s) if s.meta.first_seqno <= lowest => s.clone(),
                    Some(s) => {
                        // Not held: skip to what the next chunk can provide.
                        let next = s.meta.first_seqno;
                        wanted.retain(|&w| w >= next);
                        continue;
                    }
                    None => return,
                }
            };
            let (lo, hi) = (stored.meta.first_seqno, stored.meta.last_seqno);
            if let Ok(r) = self.raw(&stored) {
                let _ = record::collect_originals(
                    &r,
                    |s| s >= lo && s <= hi && wanted.binary_search(&s).is_ok(),
                    originals,
                );
            }
            wanted.retain(|&w| w > hi);
        }
    }
}
