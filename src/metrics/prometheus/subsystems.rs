//! The `/metrics` families of the gateway's optional subsystems: the NATS publisher, the
//! shared history and the access keys, each rendered only when the subsystem is on.
//!
//! Same rules as the parent: reads single-writer atomics, never locks, never panics on a
//! counter value.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::family;
use crate::history::store::History;
use crate::wire::http::auth::{AuthKeys, KeyCounters};

/// The NATS publisher's counters (docs/scale-out.md).
pub(super) fn render_bus(out: &mut String, b: &crate::metrics::BusStats) {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    for (name, help, v) in [
        (
            "ringgate_bus_acked_total",
            "Frames JetStream acked.",
            ld(&b.acked),
        ),
        (
            "ringgate_bus_acked_messages_total",
            "Messages JetStream acked (each holds the frames of one publish window with one subject).",
            ld(&b.acked_messages),
        ),
        (
            "ringgate_bus_queue_lost_total",
            "Frames lost to a full publish queue (announced as bus_lost Gaps).",
            ld(&b.queue_lost),
        ),
        (
            "ringgate_bus_republished_total",
            "Frames published again after a reconnect.",
            ld(&b.republished),
        ),
        (
            "ringgate_bus_connects_total",
            "Connections to NATS made.",
            ld(&b.connects),
        ),
        (
            "ringgate_bus_connect_failures_total",
            "Connection attempts to NATS that failed (the log says why: bus_unreachable, bus_auth_refused).",
            ld(&b.connect_failures),
        ),
        (
            "ringgate_bus_auth_refused_total",
            "Connection attempts whose credentials NATS refused (check --nats-creds).",
            ld(&b.auth_refused),
        ),
    ] {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
}

/// The shared history's window and counters.
pub(super) fn render_history(out: &mut String, h: &History) {
    let w = h.window();
    let st = &h.stats;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let gauges: [(&str, &str, f64); 6] = [
        (
            "ringgate_history_span_seconds",
            "Wall-clock time between the oldest and newest frame in the history.",
            w.span_secs,
        ),
        (
            "ringgate_history_oldest_seqno",
            "Oldest server_seqno a resume can replay from the history.",
            w.oldest_seqno as f64,
        ),
        (
            "ringgate_history_newest_seqno",
            "Newest server_seqno sealed into the history.",
            w.newest_seqno as f64,
        ),
        (
            "ringgate_history_oldest_block",
            "Lowest block number with events in the history (0 when none).",
            w.oldest_block.unwrap_or(0) as f64,
        ),
        (
            "ringgate_history_memory_bytes",
            "Compressed history bytes held in memory.",
            ld(&st.memory_bytes) as f64,
        ),
        (
            "ringgate_history_disk_bytes",
            "Bytes of the history journal on disk.",
            ld(&st.disk_bytes) as f64,
        ),
    ];
    for (name, help, v) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {v}");
    }
    let counters: [(&str, &str, u64); 7] = [
        (
            "ringgate_history_frames_total",
            "Frames sealed into the history.",
            ld(&st.frames),
        ),
        (
            "ringgate_history_raw_bytes_total",
            "Serialized frame bytes sealed (before compression).",
            ld(&st.raw_bytes_total),
        ),
        (
            "ringgate_history_dropped_frames_total",
            "Frames that never reached the history (its queue was full).",
            ld(&st.dropped_frames),
        ),
        (
            "ringgate_history_corrupt_chunks_total",
            "History chunks that failed their checksum or decoding when read.",
            ld(&st.corrupt_chunks),
        ),
        (
            "ringgate_history_disk_errors_total",
            "Journal writes that failed (the chunk was kept in memory).",
            ld(&st.disk_errors),
        ),
        (
            "ringgate_history_retired_chunks_total",
            "History chunks dropped by retention (bytes or age).",
            ld(&st.retired_chunks),
        ),
        (
            "ringgate_history_chunks",
            "History chunks held (gauge).",
            w.chunks,
        ),
    ];
    for (name, help, v) in counters {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
}

/// Per-key connection gauges and counters, and refusals by reason.
pub(super) fn render_auth(out: &mut String, auth: &AuthKeys) {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    family(
        out,
        "ringgate_auth_failures_total",
        "counter",
        "Requests refused by access-key checks, by reason.",
    );
    for (i, reason) in ["missing", "unknown", "over_quota", "channel"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "ringgate_auth_failures_total{{reason=\"{reason}\"}} {}",
            ld(&auth.failures[i])
        );
    }
    let keys = auth.keys();
    type Pick = fn(&KeyCounters) -> &AtomicU64;
    let per_key: [(&str, &str, &str, Pick); 3] = [
        (
            "ringgate_key_connections",
            "gauge",
            "Connections open, by access key.",
            |c| &c.open,
        ),
        (
            "ringgate_key_connections_total",
            "counter",
            "Connections admitted, by access key.",
            |c| &c.admitted,
        ),
        (
            "ringgate_key_over_quota_total",
            "counter",
            "Connections refused because the key's quota was reached, by access key.",
            |c| &c.over_quota,
        ),
    ];
    for (name, kind, help, pick) in per_key {
        family(out, name, kind, help);
        for k in keys.iter() {
            // Key names come from the operator's file; quote-safe because they are escaped.
            let label = k.spec.name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{key=\"{label}\"}} {}", ld(pick(&k.counters)));
        }
    }
}
