//! Micro benches of the per-session hot path on one shard core.
//!
//! Model:
//! - `filter/fanout`: one shard tests every event of a realistic mix (TxnLog 40 %,
//!   TxnCallFrame 25 %, StorageAccess 20 %, other 15 %) against N sessions' compiled
//!   filters (N = 1, 100, 1,000), each session filtering `TxnLog` by an address set of V
//!   values (V = 1, 8, 64, 1,024; the set hits about 10 % of logs). Throughput is in
//!   filter tests (event × session) per second.
//! - `batch/events`: one session's `Events` frame assembly from 256 queued events of
//!   ~524 B (the existing gateway's observed mean), into a reused buffer. Throughput is in
//!   bytes of frame per second.
//!
//! Run: `cargo bench --bench filter`. Results with machine and commit go in
//! docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::model::kind::EventType;
use ringgate::model::outbound::{EncodedEvent, EventBody, FilterKeys};
use ringgate::model::stage::CommitStage;
use ringgate::serve::filter::CompiledFilter;
use ringgate::wire::protocol::{BatchLimits, BatchWriter, Gather};
use ringgate::wire::subscription::channel::Channel;
use ringgate::wire::subscription::{parse_client_message, ClientMessage, SubscriptionLimits};

fn addr(i: u64) -> [u8; 20] {
    let mut a = [0u8; 20];
    a[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    a
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn event(i: u64) -> EncodedEvent {
    let t = match i % 20 {
        0..=7 => EventType::TxnLog,
        8..=12 => EventType::TxnCallFrame,
        13..=16 => EventType::StorageAccess,
        17 => EventType::TxnHeaderStart,
        18 => EventType::TxnEvmOutput,
        _ => EventType::TxnEnd,
    };
    let mut k = FilterKeys::new(t);
    k.block_seqno = 1 + i / 5000;
    k.txn_idx = Some((i % 300) as u32);
    k.push_address(addr(i % 10_000));
    if t == EventType::TxnLog {
        k.topics[0] = [0xdd; 32];
        k.topic_count = 1;
        k.log_index = Some((i % 7) as u32);
    }
    if t == EventType::TxnCallFrame {
        k.selector = Some([0xa9, 0x05, 0x9c, 0xbb]);
        k.has_value = i.is_multiple_of(3);
    }
    EncodedEvent {
        server_seqno: i + 1,
        gate: CommitStage::Proposed,
        body: Arc::new(EventBody {
            origin_seqno: i + 1,
            ring_seqno: i + 1,
            timestamp_ns: 1_756_499_174_388_871_879,
            keys: k,
            json: vec![b'x'; 524].into(),
            stage_span: None,
        }),
    }
}

/// A session subscribed to TxnLog from `values` addresses (~10 % of the 10,000 emitters)
/// plus unfiltered TxnEnd.
fn session(values: u64, salt: u64) -> CompiledFilter {
    let stride = (1000 / values).max(1);
    let list: Vec<String> = (0..values)
        .map(|j| format!("\"0x{}\"", hex(&addr((salt + j * stride * 10) % 10_000))))
        .collect();
    let text = format!(
        r#"{{"subscribe":{{"events":["TxnEnd"],"filters":[{{"event_name":"TxnLog","field_filters":[{{"field":"address","filter":{{"values":[{}]}}}}]}}]}}}}"#,
        list.join(",")
    );
    match parse_client_message(&text, Channel::All, &SubscriptionLimits::default()) {
        Ok(ClientMessage::Subscribe(s)) => CompiledFilter::new(&s),
        other => panic!("bench subscription rejected: {other:?}"),
    }
}

fn fanout(c: &mut Criterion) {
    let events: Vec<EncodedEvent> = (0..1000).map(event).collect();
    let mut group = c.benchmark_group("filter/fanout");
    for sessions in [1u64, 100, 1000] {
        for values in [1u64, 8, 64, 1024] {
            let filters: Vec<CompiledFilter> = (0..sessions).map(|s| session(values, s)).collect();
            group.throughput(Throughput::Elements(events.len() as u64 * sessions));
            group.bench_with_input(
                BenchmarkId::new(format!("{sessions}_sessions"), format!("{values}_values")),
                &filters,
                |b, filters| {
                    b.iter(|| {
                        let mut delivered = 0u64;
                        for e in &events {
                            for f in filters {
                                delivered += u64::from(f.matches_event(black_box(e)));
                            }
                        }
                        delivered
                    })
                },
            );
        }
    }
    group.finish();
}

fn batch(c: &mut Criterion) {
    let events: Vec<EncodedEvent> = (0..256).map(event).collect();
    let writer = BatchWriter::new(BatchLimits::default());
    let mut out = Vec::with_capacity(512 * 1024);
    let mut group = c.benchmark_group("batch/events");
    for n in [1usize, 16, 256] {
        out.clear();
        let frame_bytes = writer.write_events(&events[..n], &mut out).frame_bytes;
        group.throughput(Throughput::Bytes(frame_bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                out.clear();
                writer.write_events(&events[..n], black_box(&mut out))
            })
        });
    }
    group.finish();
    // The session writer's form: the same frame as a gather list (event bytes referenced).
    let mut gather = Gather::default();
    let mut group = c.benchmark_group("batch/gather");
    for n in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                gather.clear();
                writer.write_events(&events[..n], black_box(&mut gather))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout, batch);
criterion_main!(benches);
