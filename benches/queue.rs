//! Micro benches of one session's queue (`serve::backpressure::SessionQueue`) on one core.
//!
//! Model: events of a realistic mix (BlockStart/BlockEnd 2 %, TxnHeaderStart/TxnLog/TxnEnd
//! 38 %, TxnCallFrame/StorageAccess/AccountAccess 60 %), pre-built and shared by `Arc` as the
//! tailer hands them over.
//! - `queue/keep_up`: a session that keeps up: 256 events offered, then written as `Events`
//!   batches into a reused gather list, over and over. Per event: one offer, its share of
//!   the write.
//! - `queue/saturated`: a session whose 4,096-frame queue is full and never drains: every
//!   offer sheds (a lower-lane frame is evicted or the frame itself is shed) or, with one
//!   lane, drops. Per event: one offer.
//!
//! Each runs with the default lanes and with lanes off (`LaneMap::SINGLE`, the queue of
//! before lanes). Throughput is in offered events per second.
//!
//! Run: `cargo bench --bench queue`. Results with machine and commit go in
//! docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::model::kind::EventType;
use ringgate::model::lane::LaneMap;
use ringgate::model::outbound::{EncodedEvent, EventBody, FilterKeys, Outbound};
use ringgate::model::stage::CommitStage;
use ringgate::serve::backpressure::{QueueLimits, SessionQueue};
use ringgate::wire::protocol::{BatchWriter, FrameSink, Gather};

fn mix(i: u64) -> EventType {
    match i % 50 {
        0 => EventType::BlockStart,
        1 => EventType::BlockEnd,
        2..=7 => EventType::TxnHeaderStart,
        8..=15 => EventType::TxnLog,
        16..=20 => EventType::TxnEnd,
        21..=35 => EventType::TxnCallFrame,
        36..=45 => EventType::StorageAccess,
        _ => EventType::AccountAccess,
    }
}

fn events(n: u64) -> Vec<Outbound> {
    (1..=n)
        .map(|s| {
            Outbound::Event(EncodedEvent {
                server_seqno: s,
                gate: CommitStage::Proposed,
                body: Arc::new(EventBody {
                    origin_seqno: s,
                    ring_seqno: s,
                    timestamp_ns: 0,
                    keys: FilterKeys::new(mix(s)),
                    json: vec![b'x'; 524].into(),
                    stage_span: None,
                }),
            })
        })
        .collect()
}

fn limits(lanes: LaneMap) -> QueueLimits {
    QueueLimits {
        capacity: 4_096,
        warn_every: 1_000,
        disconnect_after: u64::MAX,
        lanes,
    }
}

const VARIANTS: [(&str, LaneMap); 2] = [
    ("lanes_on", LaneMap::DEFAULT),
    ("lanes_off", LaneMap::SINGLE),
];

fn keep_up(c: &mut Criterion) {
    let frames = events(256);
    let batch = BatchWriter::default();
    let mut g = c.benchmark_group("queue/keep_up");
    g.throughput(Throughput::Elements(frames.len() as u64));
    for (name, lanes) in VARIANTS {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            let mut q = SessionQueue::new(limits(lanes), 0);
            let mut out = Gather::default();
            b.iter(|| {
                for f in &frames {
                    black_box(q.offer(f.clone()));
                }
                out.clear();
                q.write_pending(&batch, &mut out, usize::MAX);
                black_box(out.byte_len())
            })
        });
    }
    g.finish();
}

fn saturated(c: &mut Criterion) {
    let fill = events(4_096);
    let stream = events(4_096 + 8_192).split_off(4_096);
    let mut g = c.benchmark_group("queue/saturated");
    g.throughput(Throughput::Elements(stream.len() as u64));
    for (name, lanes) in VARIANTS {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched_ref(
                || {
                    let mut q = SessionQueue::new(limits(lanes), 0);
                    for f in &fill {
                        q.offer(f.clone());
                    }
                    q
                },
                |q| {
                    for f in &stream {
                        black_box(q.offer(f.clone()));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, keep_up, saturated);
criterion_main!(benches);
