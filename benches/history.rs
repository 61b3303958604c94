//! The history's costs and sizes on real blocks: what it adds to the tailer's ingest, how
//! many bytes a second of ring costs it, and how fast a replay reads it back.
//!
//! Data: the real mainnet block 15,000,001 snapshot, replayed 8 times into a scratch ring
//! (block numbers and ids shifted per loop, as `ringgate write --replay` does: 52,776 events,
//! a valid chain whose later blocks finalize the earlier ones, so every `min_stage` gate
//! releases its copies), then read into memory once.
//!
//! Groups (criterion reports elements/s = ring events/s, or frames/s for replay):
//! - `ingest/pipeline`: the tailer's pipeline alone (decode, encode, keys, chain, gates);
//! - `ingest/pipeline+history`: plus one queue push per frame to the history thread (which
//!   runs meanwhile, sealing chunks, as in the gateway);
//! - `ingest/pipeline+history+wal`: plus the write-ahead copy (`--history-dir`);
//! - `replay/memory`, `replay/disk`: decoding every chunk back into frames (what a resuming
//!   client's replay costs the shard), from memory and from a journal in the scratch dir.
//!
//! Printed once before the groups: serialized and compressed history bytes per ring event,
//! and what that means at 20,000 ring events/s (bytes per second, window of the default
//! memory budget). Run: `cargo bench --bench history`. Skipped without `../shared/data/monad`.

mod support;

use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::config::{defaults, Config};
use ringgate::history::meta::{ChunkMeta, JournalIdentity};
use ringgate::history::record;
use ringgate::history::segment::Journal;
use ringgate::history::store::{ChunkRead, History, HistoryConfig};
use ringgate::history::wal::Wal;
use ringgate::history::writer;
use ringgate::ingest::ring::layout::Descriptor;
use ringgate::ingest::ring::{scratch_dir, ReadOutcome, RingReader, StartAt};
use ringgate::ingest::tailer::EventPipeline;
use ringgate::model::outbound::Outbound;
use ringgate::tools::replay::{replay, ReplayOptions};

/// Every event of the looped snapshot, copied out.
fn events() -> Option<Vec<(Descriptor, Vec<u8>)>> {
    let source = support::snapshot_ring()?;
    let (_w, ring) = support::scratch_ring("history", |w| {
        let opts = ReplayOptions {
            loops: Some(8),
            events_per_sec: None,
        };
        replay(source, w, opts, &AtomicBool::new(false));
    });
    let mut r = RingReader::new(ring, StartAt::First);
    let mut out = Vec::new();
    while let ReadOutcome::Ready(ev) = r.try_next() {
        out.push((ev.descriptor, ev.payload.to_vec()));
    }
    Some(out)
}

/// Runs the tailer's pipeline over `events` (every queued release drained), handing the
/// frames of each ring event to `sink` as the tailer's flush does; returns the frames made.
fn ingest(events: &[(Descriptor, Vec<u8>)], mut sink: impl FnMut(&[Outbound])) -> u64 {
    let mut p = EventPipeline::new(Config::default().chain);
    let mut out = Vec::new();
    let mut frames = 0u64;
    for (d, payload) in events {
        let _ = p.on_event(d, payload, &mut out);
        while p.has_pending_releases() {
            let budget = p.release_budget();
            p.release(budget, &mut out);
        }
        sink(&out);
        frames += out.len() as u64;
        out.clear();
    }
    frames
}

fn history_config() -> HistoryConfig {
    Config::default().history_setup().config
}

/// Seals `frames` into chunks the way the history thread does; returns (meta, compressed).
fn chunks(frames: &[Outbound]) -> Vec<(ChunkMeta, Vec<u8>)> {
    let config = history_config();
    let mut out = Vec::new();
    let mut raw = Vec::new();
    let mut first = 0;
    for (i, f) in frames.iter().enumerate() {
        if raw.is_empty() {
            first = i;
        }
        record::encode(f, &mut raw);
        if raw.len() >= config.chunk_raw_bytes || i + 1 == frames.len() {
            let meta = ChunkMeta {
                epoch: 1,
                first_seqno: frames[first].server_seqno(),
                last_seqno: f.server_seqno(),
                first_block: None,
                last_block: None,
                first_time_ns: 1,
                last_time_ns: 1,
                last_ring_seqno: 0,
                frames: (i + 1 - first) as u32,
                raw_len: raw.len() as u32,
            };
            let z = zstd::bulk::compress(&raw, config.zstd_level).expect("zstd");
            out.push((meta, z));
            raw.clear();
        }
    }
    out
}

/// Reads every chunk of `h` back into frames; returns the frames read.
fn replay_all(h: &History) -> u64 {
    let mut after = 0;
    let mut frames = 0u64;
    loop {
        match h.chunk_after(after) {
            ChunkRead::Chunk(c) => {
                frames += c.frames.len() as u64;
                after = c.meta.last_seqno;
                black_box(&c.frames);
            }
            ChunkRead::Lost(m) => after = m.last_seqno,
            ChunkRead::End => return frames,
        }
    }
}

fn bench(c: &mut Criterion) {
    let Some(events) = events() else {
        return;
    };
    let n = events.len() as u64;
    let mut frames = Vec::new();
    ingest(&events, |fs| frames.extend_from_slice(fs));
    let sealed = chunks(&frames);
    let raw: u64 = sealed.iter().map(|(m, _)| u64::from(m.raw_len)).sum();
    let compressed: u64 = sealed.iter().map(|(_, z)| z.len() as u64).sum();
    let json: u64 = frames.iter().map(|f| f.byte_len() as u64).sum();
    let per_event = compressed as f64 / n as f64;
    let budget = (defaults::HISTORY_MEMORY_MIB << 20) as f64;
    eprintln!(
        "history: {n} ring events -> {} frames ({:.2} per event, all gates on); frame JSON \
         {:.0} B/event, serialized {:.0} B/event, compressed {per_event:.1} B/event (x{:.1}); \
         at 20,000 ring events/s: {:.2} MB/s, {:.1} min in the default {} MiB",
        frames.len(),
        frames.len() as f64 / n as f64,
        json as f64 / n as f64,
        raw as f64 / n as f64,
        raw as f64 / compressed as f64,
        per_event * 20_000.0 / 1e6,
        budget / (per_event * 20_000.0) / 60.0,
        defaults::HISTORY_MEMORY_MIB,
    );

    let mut g = support::whole_ring_group(c, "history");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(n));
    g.bench_function("ingest/pipeline", |b| {
        b.iter(|| {
            ingest(&events, |fs| {
                black_box(fs);
            })
        })
    });
    let mut config = history_config();
    config.memory_bytes = 64 << 20;
    let history = Arc::new(History::new(config.clone(), 1));
    let (mut sender, thread) =
        writer::spawn(history.clone(), 0, Vec::new()).expect("history thread");
    // Each iteration restarts seqnos at 1: the history takes only the first pass's frames,
    // which is the same queue push per frame as in the gateway.
    g.bench_function("ingest/pipeline+history", |b| {
        b.iter(|| ingest(&events, |fs| fs.iter().for_each(|f| sender.push(f))))
    });
    let wal_path = scratch_dir().join(format!("ringgate-bench-wal-{}", std::process::id()));
    let (mut wal, _) = Wal::open(&wal_path, defaults::HISTORY_WAL_MIB << 20, 1).expect("wal");
    g.bench_function("ingest/pipeline+history+wal", |b| {
        b.iter(|| {
            ingest(&events, |fs| {
                for f in fs {
                    if !wal.append(f) {
                        wal.reclaim(u64::MAX);
                        wal.append(f);
                    }
                    sender.push(f);
                }
            })
        })
    });
    drop(sender);
    let _ = thread.join();
    let _ = std::fs::remove_file(&wal_path);

    g.throughput(Throughput::Elements(frames.len() as u64));
    let memory = History::new(history_config(), 1);
    for (m, z) in &sealed {
        memory.add_sealed(*m, z.clone(), 1);
    }
    g.bench_function("replay/memory", |b| b.iter(|| replay_all(&memory)));
    let dir = scratch_dir().join(format!("ringgate-bench-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let identity = JournalIdentity {
        format_version: ringgate::history::startup::FORMAT_VERSION,
        epoch: 1,
        ring_path: "bench".into(),
        chain_id: 0,
    };
    let (journal, _) = Journal::open(&dir, &identity, Config::default().history_setup().segments)
        .expect("journal");
    let disk = History::with_journal(history_config(), 1, journal, Vec::new());
    for (m, z) in &sealed {
        disk.add_sealed(*m, z.clone(), 1);
    }
    g.bench_function("replay/disk", |b| b.iter(|| replay_all(&disk)));
    g.finish();
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
