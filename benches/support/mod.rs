//! Setup shared by the ring-reading criterion benches (`encode`, `ring_read`): the real
//! mainnet snapshot ring, a scratch ring filled by the bench, and the measurement settings
//! of their whole-ring groups.
//!
//! Runs on the bench's main thread, outside the measured closures. Inputs: the bench's
//! name and how it fills its ring; outputs: attached [`Ring`]s. Never keeps data: the
//! scratch ring lives as long as the returned writer, which unlinks it on drop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use ringgate::ingest::ring::layout::RingSizes;
use ringgate::ingest::ring::{scratch_dir, Ring, RingWriter};

/// A benchmark group named `name` with the settings of a whole-ring read: 20 samples,
/// 0.5 s of warm-up, 2 s of measurement.
pub fn whole_ring_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// The real mainnet block 15,000,001 snapshot, attached; `None` (after saying the
/// `snapshot/emn-1b-15m` bench is skipped) when `../shared/data/monad` is missing.
pub fn snapshot_ring() -> Option<Arc<Ring>> {
    let snap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/monad/emn-1b-15m.snapshot.zst");
    if !snap.exists() {
        eprintln!("skipped snapshot/emn-1b-15m: ../shared/data/monad not found");
        return None;
    }
    Some(Arc::new(Ring::open(&snap).expect("snapshot attaches")))
}

/// A fresh 2^16-descriptor / 2^27-byte ring named `ringgate-bench-<name>-<pid>` in the
/// scratch dir, filled by `fill`, then attached for reading. Keep the writer until the
/// bench is done: dropping it removes the file.
pub fn scratch_ring(name: &str, fill: impl FnOnce(&mut RingWriter)) -> (RingWriter, Arc<Ring>) {
    let path = scratch_dir().join(format!("ringgate-bench-{name}-{}", std::process::id()));
    let sizes = RingSizes {
        descriptor_capacity: 1 << 16,
        payload_buf_size: 1 << 27,
        context_area_size: 0,
    };
    let mut writer = RingWriter::create(&path, sizes).expect("bench ring created");
    fill(&mut writer);
    let ring = Arc::new(Ring::open(&path).expect("bench ring attaches"));
    (writer, ring)
}
