//! permessage-deflate on the real mainnet block 15,000,001 (6,597 events): what compressing
//! the `Events` frames costs per delivered event, and the ratio each scheme reaches.
//!
//! Model: one shard thread; the events are read and encoded outside the timing and laid out
//! as the writer sends them, `{"server_seqno":N,"Events":[…]}` text frames of 256 events
//! (`batch256`, a busy stream or a replay) or of one event (`single`, a quiet live stream).
//! criterion reports elements/s = delivered events/s.
//! - `shared_no_context/*`: [`Deflater::compress_frames`], what a deflate session's writer
//!   does per turn (no context takeover, the scheme the gateway negotiates).
//! - `shared_no_context/batch256_x10_sessions`: ten sessions on one shard sending the same
//!   frames: compressed once, then nine cache hits (elements = events × 10).
//! - `context_takeover/*`: the alternative not taken: one streaming compressor per session,
//!   its window kept across messages (sync flush per message).
//! - `no_context_level6/*`: the same without cache at miniz level 6 (the gateway uses
//!   [`ringgate::wire::ws::deflate::LEVEL`]).
//! - `copy/batch256`: the copy-out of the turn a deflate writer makes before compressing.
//!
//! Ratios (text-frame bytes / compressed-frame bytes) for both schemes at miniz levels 1 and
//! 6 are printed to stderr before the timings. Skipped when `../shared/data/monad` is
//! missing. Run: `cargo bench --bench deflate`.

#[allow(dead_code)] // this bench reads only the snapshot ring
mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
};
use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::ring::{ReadOutcome, Ring, RingReader, StartAt};
use ringgate::wire::ws::deflate::Deflater;
use ringgate::wire::ws::{write_frame, OpCode};

/// Every event's JSON, in ring order.
fn events(ring: &Arc<Ring>) -> Vec<Vec<u8>> {
    let mut r = RingReader::new(Arc::clone(ring), StartAt::First);
    let mut enc = Encoder::default();
    let mut out = Vec::new();
    while let ReadOutcome::Ready(ev) = r.try_next() {
        let e = enc
            .encode(&ev.descriptor, ev.payload)
            .expect("snapshot decodes");
        out.push(e.json.to_vec());
    }
    out
}

/// `Events` payloads of `per` events each.
fn payloads(events: &[Vec<u8>], per: usize) -> Vec<Vec<u8>> {
    events
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = format!("{{\"server_seqno\":{},\"Events\":[", 1_000_000 + i).into_bytes();
            for (j, e) in chunk.iter().enumerate() {
                if j > 0 {
                    p.push(b',');
                }
                p.extend_from_slice(e);
            }
            p.extend_from_slice(b"]}");
            p
        })
        .collect()
}

/// The payloads as one run of text frames.
fn frames(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        write_frame(OpCode::Text, p, &mut out);
    }
    out
}

/// Compressed frame bytes for `payloads` through one compressor at `level`, its window kept
/// across messages (`context`: context takeover) or reset before each (no context takeover).
fn compressed(payloads: &[Vec<u8>], level: u8, context: bool) -> usize {
    let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
    let mut c = Box::new(CompressorOxide::new(flags));
    let mut total = 0;
    let mut out = Vec::new();
    for p in payloads {
        if !context {
            c.reset();
        }
        out.clear();
        compress_to_output(&mut c, p, TDEFLFlush::Sync, |chunk| {
            out.extend_from_slice(chunk);
            true
        });
        let n = out.len() - 4; // the stripped 00 00 ff ff
        total += ringgate::wire::ws::frame_header_len(n) + n;
    }
    black_box(&out);
    total
}

fn bench(c: &mut Criterion) {
    let Some(ring) = support::snapshot_ring() else {
        return;
    };
    let events = events(&ring);
    let n = events.len() as u64;
    let shapes = [
        ("batch256", payloads(&events, 256)),
        ("single", payloads(&events, 1)),
    ];
    for (name, p) in &shapes {
        let plain = frames(p).len() as f64;
        for level in [1u8, 6] {
            eprintln!(
                "ratio {name} level {level}: no_context {:.2}, context_takeover {:.2} \
                 ({} text-frame bytes, {} events)",
                plain / compressed(p, level, false) as f64,
                plain / compressed(p, level, true) as f64,
                plain,
                n
            );
        }
    }
    let mut g = support::whole_ring_group(c, "deflate");
    g.throughput(Throughput::Elements(n));
    for (name, p) in &shapes {
        let plain = frames(p);
        let mut out = Vec::with_capacity(plain.len());
        g.bench_function(format!("shared_no_context/{name}"), |b| {
            // A fresh shard compressor each pass: every frame is a cache miss.
            b.iter(|| {
                out.clear();
                Deflater::default().compress_frames(&plain, &mut out);
                black_box(out.len())
            })
        });
        g.bench_function(format!("context_takeover/{name}"), |b| {
            b.iter(|| compressed(p, ringgate::wire::ws::deflate::LEVEL, true))
        });
        g.bench_function(format!("no_context_level6/{name}"), |b| {
            b.iter(|| compressed(p, 6, false))
        });
    }
    let plain = frames(&shapes[0].1);
    let mut out = Vec::with_capacity(plain.len());
    g.bench_function("copy/batch256", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&plain));
            black_box(out.len())
        })
    });
    g.throughput(Throughput::Elements(n * 10));
    let per_frame: Vec<Vec<u8>> = shapes[0]
        .1
        .iter()
        .map(|p| frames(std::slice::from_ref(p)))
        .collect();
    g.bench_function("shared_no_context/batch256_x10_sessions", |b| {
        b.iter(|| {
            let mut d = Deflater::default();
            for f in &per_frame {
                for _ in 0..10 {
                    out.clear();
                    d.compress_frames(f, &mut out);
                }
            }
            black_box(d.stats)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
