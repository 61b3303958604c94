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

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::ring::layout::RingSizes;
use ringgate::ring::{scratch_dir, ReadOutcome, Ring, RingReader, RingWriter, StartAt};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    let mut g = c.benchmark_group("ring_read");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let snap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/monad/emn-1b-15m.snapshot.zst");
    if snap.exists() {
        let ring = Arc::new(Ring::open(&snap).expect("snapshot attaches"));
        let (n, _) = drain(&ring);
        g.throughput(Throughput::Elements(n));
        g.bench_function("snapshot/emn-1b-15m", |b| b.iter(|| drain(&ring)));
    } else {
        eprintln!("skipped snapshot/emn-1b-15m: ../shared/data/monad not found");
    }

    let path = scratch_dir().join(format!("ringgate-bench-read-{}", std::process::id()));
    let sizes = RingSizes {
        descriptor_capacity: 1 << 16,
        payload_buf_size: 1 << 27,
        context_area_size: 0,
    };
    let mut w = RingWriter::create(&path, sizes).expect("bench ring created");
    let payload = [0x5au8; 528];
    for i in 0..60_000u64 {
        let len = [0, 24, 124, 152, 528][(i % 5) as usize];
        w.write_event(18, [1, i + 1, 0, 0], &payload[..len], i);
    }
    let ring = Arc::new(Ring::open(&path).expect("bench ring attaches"));
    g.throughput(Throughput::Elements(60_000));
    g.bench_function("synthetic/60k", |b| b.iter(|| drain(&ring)));
    g.finish();
    drop(w);
}

criterion_group!(benches, bench);
criterion_main!(benches);
