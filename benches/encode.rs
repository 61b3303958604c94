//! Encode throughput: what the tailer core does per event after the ring read.
//!
//! Model: single thread, one core, ring already written (no concurrent writer); criterion
//! reports elements/s = events/s.
//! - `read_decode_encode/snapshot/emn-1b-15m`: `RingReader` from seqno 1 + `Encoder::encode`
//!   (decode, flow context, JSON into one `Box<[u8]>`, filter keys) over the real mainnet
//!   block 15,000,001 snapshot (6,597 events). Skipped when `../shared/data/monad` is missing.
//! - `read_decode_encode/synthetic`: the same over 60,000 synthetic-chain events written by
//!   `synth::drive::run` to a 2^16 / 2^27 ring in the scratch dir.
//! - `decode_encode/<TYPE>`: `Encoder::encode` alone on the payloads of one type taken from
//!   the synthetic ring, in ring order (the encoder sees no BLOCK_START here, so flow lookups
//!   miss: this isolates decode + JSON + filter keys per type).
//!
//! - `tailer_vs_encode/{read_decode_encode,tailer_everything}/emn-1b-15m`: the issue-16 ingest
//!   comparison in one run on the real snapshot. `tailer_everything` is what the tailer thread
//!   does per event besides waiting: the ring read, `EventPipeline::on_event` (decode, JSON,
//!   keys, chain tracking, lifecycle/TPS/contention/top-accesses frames, gate holding), the
//!   queued `min_stage` releases paced as the tailer paces them (all gates on, the default), the REST
//!   bodies re-encoded after each block-level change, and one push per frame into a shard's
//!   SPSC queue (one shard; the queue is drained outside the timing).
//!
//! - `--ingest-passes N` (instead of criterion): the two `tailer_vs_encode` loops N times
//!   each, interleaved, reporting the fastest and the median pass per event; steadier than
//!   criterion's mean on a shared VM.
//!
//! Run: `cargo bench --bench encode`, or `cargo bench --bench encode -- --ingest-passes 200`.

mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::BatchSize;
use criterion::{criterion_group, Criterion, Throughput};
use ringgate::handoff::fanout::{self, FanoutReceiver, FanoutSender, FanoutWaker};
use ringgate::ingest::chain::pipeline::ChainConfig;
use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::ring::layout::Descriptor;
use ringgate::ingest::ring::{ReadOutcome, Ring, RingReader, StartAt};
use ringgate::ingest::tailer::{EventPipeline, Processed, BUSY_RUN_RELEASE};
use ringgate::model::kind::EventType;
use ringgate::tools::pacer::Pacer;
use ringgate::tools::synth::{drive, Generator, SynthOptions};

/// Reads and encodes every event from seqno 1 until NotReady; returns the JSON bytes made.
fn read_and_encode(ring: &Arc<Ring>) -> u64 {
    let mut r = RingReader::new(Arc::clone(ring), StartAt::First);
    let mut enc = Encoder::default();
    let mut bytes = 0u64;
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => {
                let e = enc
                    .encode(&ev.descriptor, ev.payload)
                    .expect("bench ring decodes");
                bytes += black_box(e).json.len() as u64;
            }
            ReadOutcome::NotReady => return bytes,
            other => panic!("bench ring must read cleanly, got {other:?}"),
        }
    }
}

/// A shard's queue, large enough for every frame of one pass over the snapshot.
type Queue = (FanoutSender, FanoutReceiver, FanoutWaker);

/// What the tailer does per event, everything included (module doc), over the whole ring;
/// returns the queue (its frames are freed outside the timing, as a shard would free them).
/// Copies are released as the tailer releases them: a budget per event once the ring has
/// been busy for `BUSY_RUN_RELEASE` events (this pass never finds it idle before its end),
/// the rest when it is idle.
fn tail_everything(ring: &Arc<Ring>, queue: Queue) -> Queue {
    let mut r = RingReader::new(Arc::clone(ring), StartAt::First);
    let mut pipeline = EventPipeline::new(ChainConfig::default());
    let mut out = Vec::with_capacity(16);
    let budget = pipeline.release_budget();
    let mut busy_run = 0u32;
    let push = |out: &mut Vec<_>, tx: &FanoutSender| {
        for frame in out.drain(..) {
            black_box(tx.try_push(frame));
        }
    };
    loop {
        match r.try_next() {
            ReadOutcome::Ready(ev) => {
                let d = ev.descriptor;
                let processed = pipeline
                    .on_event(&d, ev.payload, &mut out)
                    .expect("bench ring decodes");
                push(&mut out, &queue.0);
                if processed == Processed::BlockLevel {
                    black_box(pipeline.bodies());
                }
                busy_run = busy_run.saturating_add(1);
                if busy_run >= BUSY_RUN_RELEASE {
                    pipeline.release(budget, &mut out);
                    push(&mut out, &queue.0);
                }
            }
            ReadOutcome::NotReady => {
                while pipeline.has_pending_releases() {
                    pipeline.release(budget, &mut out);
                    push(&mut out, &queue.0);
                }
                return queue;
            }
            other => panic!("bench ring must read cleanly, got {other:?}"),
        }
    }
}

/// Every event of the ring, copied out.
fn collect(ring: &Arc<Ring>) -> Vec<(Descriptor, Vec<u8>)> {
    let mut r = RingReader::new(Arc::clone(ring), StartAt::First);
    let mut out = Vec::new();
    while let ReadOutcome::Ready(ev) = r.try_next() {
        out.push((ev.descriptor, ev.payload.to_vec()));
    }
    out
}

fn bench(c: &mut Criterion) {
    if let Some(ring) = support::snapshot_ring() {
        let mut g = support::whole_ring_group(c, "tailer_vs_encode");
        g.throughput(Throughput::Elements(collect(&ring).len() as u64));
        g.bench_function("read_decode_encode/emn-1b-15m", |b| {
            b.iter(|| read_and_encode(&ring))
        });
        g.bench_function("tailer_everything/emn-1b-15m", |b| {
            b.iter_batched(
                || fanout::channel(1 << 17).expect("socketpair"),
                |queue| tail_everything(&ring, queue),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }

    let mut g = support::whole_ring_group(c, "read_decode_encode");
    if let Some(ring) = support::snapshot_ring() {
        g.throughput(Throughput::Elements(collect(&ring).len() as u64));
        g.bench_function("snapshot/emn-1b-15m", |b| b.iter(|| read_and_encode(&ring)));
    }

    let (writer, ring) = support::scratch_ring("encode", |writer| {
        let mut generator = Generator::new(SynthOptions::default());
        let stop = AtomicBool::new(false);
        drive::run(
            writer,
            &mut generator,
            &mut Pacer::new(None),
            &stop,
            Some(60_000),
        );
    });
    let events = collect(&ring);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("synthetic", |b| b.iter(|| read_and_encode(&ring)));
    g.finish();

    let mut by_type: BTreeMap<EventType, Vec<usize>> = BTreeMap::new();
    for (i, (d, _)) in events.iter().enumerate() {
        if let Some(t) = EventType::from_code(d.event_type) {
            by_type.entry(t).or_default().push(i);
        }
    }
    let mut g = c.benchmark_group("decode_encode");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for (t, idx) in &by_type {
        g.throughput(Throughput::Elements(idx.len() as u64));
        g.bench_function(t.spec_name(), |b| {
            b.iter(|| {
                let mut enc = Encoder::default();
                for i in idx {
                    let (d, p) = &events[*i];
                    black_box(enc.encode(d, p).expect("decodes"));
                }
            })
        });
    }
    g.finish();
    drop(writer);
}

/// `--ingest-passes N`: the two `tailer_vs_encode` loops, N passes each over the snapshot,
/// interleaved; prints the fastest and the median pass per event and their ratios. On a
/// shared VM the fastest pass is the one least disturbed by neighbours, which criterion's
/// mean of 20 samples is not.
fn ingest_passes(ring: &Arc<Ring>, passes: usize) {
    let events = collect(ring).len() as f64;
    let (mut encode, mut tailer) = (Vec::new(), Vec::new());
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        black_box(read_and_encode(ring));
        encode.push(t.elapsed().as_nanos() as f64 / events);
        let queue = fanout::channel(1 << 17).expect("socketpair");
        let t = Instant::now();
        let queue = tail_everything(ring, queue);
        tailer.push(t.elapsed().as_nanos() as f64 / events);
        drop(queue);
    }
    encode.sort_by(f64::total_cmp);
    tailer.sort_by(f64::total_cmp);
    let (e_min, t_min) = (encode[0], tailer[0]);
    let (e_mid, t_mid) = (encode[encode.len() / 2], tailer[tailer.len() / 2]);
    println!(
        "ingest, {passes} passes of {events} events: fastest read_decode_encode {e_min:.0} ns/event, \
         tailer_everything {t_min:.0} ns/event, ratio {:.2}; median {e_mid:.0} / {t_mid:.0} ns/event, \
         ratio {:.2}",
        t_min / e_min,
        t_mid / e_mid
    );
}

criterion_group!(benches, bench);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--ingest-passes") {
        let passes = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(200);
        match support::snapshot_ring() {
            Some(ring) => ingest_passes(&ring, passes),
            None => eprintln!("--ingest-passes needs the snapshot"),
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
