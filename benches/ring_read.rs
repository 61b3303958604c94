//! Ring read throughput: one `RingReader` draining a whole ring from seqno 1, payloads copied
//! out and window-checked exactly as the tailer does (no decoding).
//!
//! Model: single reader, single core, ring already written (no concurrent writer), so this is
//! the reader's ceiling in events/s (criterion reports elements/s = events/s).
//! - `snapshot/emn-1b-15m`: the real mainnet block 15,000,001 snapshot (6,597 events, mixed
//!   payload sizes 0–~2 KiB), decompressed once outside the measurement. Skipped when
//!   `../shared/data/monad` is missing.
//! - `synthetic/60k`: 60,000 events written by `RingWriter` to a 2^16 / 2^27 ring in the
//!   scratch dir, payload sizes cycling through the common exec sizes (0, 24, 124, 152, 528 B).
//!
//! Run: `cargo bench --bench ring_read`.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::ingest::ring::{ReadOutcome, Ring, RingReader, StartAt};
use std::hint::black_box;
use std::sync::Arc;

/// Reads every event from seqno 1 until NotReady; returns (events, payload bytes).
fn drain(ring: &Arc<Ring>) -> (u64, u64) {
    let mut r = RingReader::new(Arc::clone(ring), StartAt::First);
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => {
                n += 1;
                bytes += black_box(ev.payload).len() as u64;
            }
            ReadOutcome::NotReady => return (n, bytes),
            other => panic!("bench ring must read cleanly, got {other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = support::whole_ring_group(c, "ring_read");

    if let Some(ring) = support::snapshot_ring() {
        let (n, _) = drain(&ring);
        g.throughput(Throughput::Elements(n));
        g.bench_function("snapshot/emn-1b-15m", |b| b.iter(|| drain(&ring)));
    }

    let (w, ring) = support::scratch_ring("read", |w| {
        let payload = [0x5au8; 528];
        for i in 0..60_000u64 {
            let len = [0, 24, 124, 152, 528][(i % 5) as usize];
            w.write_event(18, [1, i + 1, 0, 0], &payload[..len], i);
        }
    });
    g.throughput(Throughput::Elements(60_000));
    g.bench_function("synthetic/60k", |b| b.iter(|| drain(&ring)));
    g.finish();
    drop(w);
}

criterion_group!(benches, bench);
criterion_main!(benches);
