//! Ring → send latency histogram: lock-free log-linear buckets, one per shard.
//!
//! Written by one shard (its session writers, once per socket write); read by `/metrics` on
//! any shard, which sums buckets over shards and reports quantiles. Runtime-free.
//! Never: lock, allocate, or panic on any sample value.

use std::sync::atomic::{AtomicU64, Ordering};

use super::bump;

/// Sub-buckets per power of two in [`LatencyHistogram`] (precision ≈ 2^(1/4) ≈ 19 %).
const LAT_SUB: u32 = 4;
/// Buckets: 2^0 … 2^40 ns (~18 min) at `LAT_SUB` per octave.
pub(crate) const LAT_BUCKETS: usize = 41 * LAT_SUB as usize;
/// Latencies above this (history: a backlog, a snapshot, a replay) are counted apart, not
/// mixed into the live distribution.
pub const LATENCY_LIVE_MAX_NS: u64 = 60_000_000_000;

/// Ring → send latency of one shard, as lock-free log-linear buckets (single writer: the
/// shard; readers sum buckets over shards and read quantiles). Chosen over an `hdrhistogram`
/// behind a lock because `/metrics` on any shard must read every shard's figures without
/// touching their hot path.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LAT_BUCKETS],
    /// Samples above [`LATENCY_LIVE_MAX_NS`].
    pub stale: AtomicU64,
    pub sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            stale: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

pub(crate) fn lat_bucket(ns: u64) -> usize {
    let ns = ns.max(1);
    let octave = 63 - ns.leading_zeros();
    let sub = if octave >= 2 {
        ((ns >> (octave - 2)) & 3) as u32
    } else {
        0
    };
    ((octave * LAT_SUB + sub) as usize).min(LAT_BUCKETS - 1)
}

/// Exclusive upper bound (ns) of bucket `i`.
pub(crate) fn lat_upper(i: usize) -> u64 {
    let octave = (i as u32) / LAT_SUB;
    let sub = u64::from((i as u32) % LAT_SUB);
    if octave < 2 {
        return 1u64 << (octave + 1);
    }
    let base = 1u64 << octave;
    base + (base >> 2) * (sub + 1)
}

impl LatencyHistogram {
    /// Records one sample (shard only).
    pub fn record(&self, ns: u64) {
        if ns > LATENCY_LIVE_MAX_NS {
            bump(&self.stale, 1);
            return;
        }
        bump(&self.buckets[lat_bucket(ns)], 1);
        bump(&self.sum_ns, ns);
    }

    /// Bucket counts.
    pub(crate) fn counts(&self) -> [u64; LAT_BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }
}

/// `q`-quantiles (each in 0..=1) of summed bucket counts, as bucket upper bounds in seconds.
pub(crate) fn quantiles(counts: &[u64; LAT_BUCKETS], qs: &[f64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    qs.iter()
        .map(|q| {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return lat_upper(i) as f64 / 1e9;
                }
            }
            0.0
        })
        .collect()
}
