//! The history thread: takes every frame the tailer produces (one `Arc` per frame through a
//! bounded queue), serializes it into the open chunk, and seals chunks (zstd) into the
//! shared [`History`].
//!
//! Off the tailer's critical path: the tailer pays an `Arc` clone per frame and one queue
//! push per 64 frames ([`HistorySender::push`]; the rest when the ring goes idle,
//! [`HistorySender::flush`]; never blocks; a full queue drops the batch from the history,
//! counted, and the hole is announced to a client replaying across it). Compression, journal
//! writes and retention happen here.
//!
//! Invariants: frames are sealed in the order received; a chunk holds consecutive seqnos
//! only (a dropped frame ends the chunk, so holes lie between chunks); a chunk is sealed
//! when it reaches `chunk_raw_bytes`, when its first frame is `chunk_max_wait` old, and when
//! the tailer stops (its sender dropped), so a graceful shutdown journals everything.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::history::meta::ChunkMeta;
use crate::history::record;
use crate::history::store::History;
use crate::model::outbound::Outbound;
use crate::model::stage::CommitStage;

/// Frames per batch the queue carries: the queue holds `queue_frames / BATCH` batches.
const BATCH: usize = 64;

/// Raw bytes compressed between two yields of the history thread: about 100 µs of zstd at
/// level 3 here. Compressing a whole 1 MiB chunk at once held a core for 3–4 ms, and on a
/// host without a spare core the tailer or a shard waited that long for it (seen with
/// `perf sched`: the one-client p99 of docs/benchmarks.md).
const COMPRESS_SLICE: usize = 32 << 10;

/// The tailer's end of the queue to the history thread. Frames are sent in batches of
/// 64 (one queue operation per batch), the last one by [`HistorySender::flush`].
#[derive(Debug)]
pub struct HistorySender {
    tx: SyncSender<Vec<Outbound>>,
    batch: Vec<Outbound>,
    history: Arc<History>,
}

impl HistorySender {
    /// Adds `frame` to the batch for the history.
    pub fn push(&mut self, frame: &Outbound) {
        self.batch.push(frame.clone());
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Queues the batch; never blocks. A full queue drops it (counted).
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let n = batch.len() as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.history
                    .stats
                    .dropped_frames
                    .fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// The shared history (for the write-ahead log's reclaim point).
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }
}

/// Seals `pending` (an earlier run's unsealed frames) and starts the history thread; it runs
/// until the returned sender is dropped, then seals what it holds and exits.
/// `last_ring_seqno` seeds the chunk metas (a restart's resume point).
pub fn spawn(
    history: Arc<History>,
    last_ring_seqno: u64,
    pending: Vec<Outbound>,
) -> std::io::Result<(HistorySender, JoinHandle<()>)> {
    let (tx, rx) = sync_channel((history.config().queue_frames / BATCH).max(1));
    let sender = HistorySender {
        tx,
        batch: Vec::with_capacity(BATCH),
        history: history.clone(),
    };
    // What an earlier run left unsealed is sealed before anything starts, so the history's
    // head is the restart point when the shards open.
    let mut w = ChunkWriter::new(history, last_ring_seqno);
    for f in &pending {
        w.add(f);
    }
    w.seal();
    let handle = std::thread::Builder::new()
        .name("ringgate-history".into())
        .spawn(move || w.run(rx))?;
    Ok((sender, handle))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Builds chunks from frames.
struct ChunkWriter {
    history: Arc<History>,
    raw: Vec<u8>,
    meta: Option<ChunkMeta>,
    opened: Instant,
    last_ring_seqno: u64,
    /// The chain id last given to the history (it checks each new one against the journal).
    chain_noted: Option<u64>,
}

impl ChunkWriter {
    fn new(history: Arc<History>, last_ring_seqno: u64) -> ChunkWriter {
        ChunkWriter {
            raw: Vec::with_capacity(history.config().chunk_raw_bytes + (64 << 10)),
            history,
            meta: None,
            opened: Instant::now(),
            last_ring_seqno,
            chain_noted: None,
        }
    }

    fn run(&mut self, rx: Receiver<Vec<Outbound>>) {
        let wait = self.history.config().chunk_max_wait;
        loop {
            let timeout = if self.meta.is_some() {
                wait.saturating_sub(self.opened.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(timeout) {
                Ok(batch) => {
                    batch.iter().for_each(|f| self.add(f));
                    // Take what is queued without waking the clock per batch.
                    while let Ok(batch) = rx.try_recv() {
                        batch.iter().for_each(|f| self.add(f));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.seal();
                    return;
                }
            }
            if self.meta.is_some() && self.opened.elapsed() >= wait {
                self.seal();
            }
        }
    }

    fn add(&mut self, frame: &Outbound) {
        if let Outbound::Rpc(r) = frame {
            if self.chain_noted != Some(r.block.chain_id) {
                self.chain_noted = Some(r.block.chain_id);
                self.history.note_chain_id(r.block.chain_id);
            }
        }
        let seqno = frame.server_seqno();
        if let Some(m) = &self.meta {
            if seqno != m.last_seqno + 1 {
                // A dropped frame (or a seqno below the chunk): end the chunk here, so a hole
                // lies between chunks. Out-of-order frames are never stored.
                self.seal();
                if seqno <= self.history.sealed_head() {
                    return;
                }
            }
        } else if seqno <= self.history.sealed_head() {
            return;
        }
        let now = now_ns();
        let (block, ring) = match frame {
            Outbound::Event(e) => (
                (e.keys.block_seqno != 0 && e.gate == CommitStage::Proposed)
                    .then_some(e.keys.block_number)
                    .flatten(),
                (!e.is_copy()).then_some(e.ring_seqno),
            ),
            Outbound::Meta(_) | Outbound::Rpc(_) => (None, None),
        };
        if let Some(r) = ring {
            self.last_ring_seqno = self.last_ring_seqno.max(r);
        }
        let m = self.meta.get_or_insert_with(|| {
            self.opened = Instant::now();
            ChunkMeta {
                epoch: self.history.epoch(),
                first_seqno: seqno,
                last_seqno: seqno,
                first_block: None,
                last_block: None,
                first_time_ns: now,
                last_time_ns: now,
                last_ring_seqno: 0,
                frames: 0,
                raw_len: 0,
            }
        });
        m.last_seqno = seqno;
        m.last_time_ns = now;
        m.frames += 1;
        if let Some(b) = block {
            m.first_block = Some(m.first_block.map_or(b, |f| f.min(b)));
            m.last_block = Some(m.last_block.map_or(b, |l| l.max(b)));
        }
        record::encode(frame, &mut self.raw);
        if self.raw.len() >= self.history.config().chunk_raw_bytes {
            self.seal();
        }
    }

    fn seal(&mut self) {
        let Some(mut meta) = self.meta.take() else {
            return;
        };
        meta.raw_len = self.raw.len() as u32;
        meta.last_ring_seqno = self.last_ring_seqno;
        let compressed = compress_yielding(&self.raw, self.history.config().zstd_level);
        self.raw.clear();
        match compressed {
            Ok(c) => self.history.add_sealed(meta, c, now_ns()),
            // Never seen (zstd fails only on allocation): the range becomes a hole that a
            // replay announces as lost.
            Err(_) => {
                self.history
                    .stats
                    .dropped_frames
                    .fetch_add(u64::from(meta.frames), Ordering::Relaxed);
            }
        }
    }
}

/// Compresses `raw` into one zstd frame (with its content size, as `zstd::bulk` writes it)
/// in [`COMPRESS_SLICE`] pieces, each flushed as its own block, yielding the core between
/// pieces so a waiting tailer or shard thread on it runs within one piece's time.
fn compress_yielding(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = zstd::stream::Encoder::new(Vec::with_capacity(raw.len() / 4), level)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(raw.len() as u64))?;
    for piece in raw.chunks(COMPRESS_SLICE) {
        encoder.write_all(piece)?;
        encoder.flush()?;
        std::thread::yield_now();
    }
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_compressed_in_slices_decompresses_as_one_frame() {
        let raw: Vec<u8> = (0..(5 * COMPRESS_SLICE + 123))
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect();
        let compressed = compress_yielding(&raw, 3).unwrap();
        assert!(compressed.len() < raw.len() / 4);
        assert_eq!(zstd::bulk::decompress(&compressed, raw.len()).unwrap(), raw);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&compressed).ok(),
            Some(Some(raw.len() as u64))
        );
    }
}
