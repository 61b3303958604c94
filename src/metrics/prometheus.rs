//! The Prometheus text rendering of every counter (`/metrics`).
//!
//! Runs on whichever shard answers `/metrics`; reads the single-writer atomics of the tailer
//! and every shard and aggregates over shards. Runtime-free: takes the hub and `now`.
//! Never: lock, or panic on any counter value.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::latency::{quantiles, LAT_BUCKETS};
use super::{ShardStats, StatsHub, LIFECYCLE_STAGES};
use crate::model::gap::GapReason;
use crate::model::kind::DecodeErrorKind;
use crate::model::kind::EventType;
use crate::model::rpc::live_block_bytes;
use crate::wire::subscription::channel::Channel;

mod subsystems;
use subsystems::{render_auth, render_bus, render_history};

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every counter in the Prometheus text exposition format, aggregated over shards
/// (plus a per-shard series for queue overflow and drops, which are shard-specific).
pub fn render_prometheus(hub: &StatsHub, now_ns: u64) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let t = &hub.tailer;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);

    family(
        &mut out,
        "ringgate_events_in_total",
        "counter",
        "Ring events read, by type.",
    );
    for ty in EventType::ALL.iter().skip(1) {
        let v = ld(&t.events_in[usize::from(ty.code())]);
        let _ = writeln!(
            out,
            "ringgate_events_in_total{{type=\"{}\"}} {v}",
            ty.name()
        );
    }
    let simple: [(&str, &str, &str, u64); 11] = [
        (
            "ringgate_events_bad_total",
            "counter",
            "Ring events skipped as malformed.",
            ld(&t.events_bad),
        ),
        (
            "ringgate_ring_gaps_total",
            "counter",
            "Times the tailer was lapped by the writer.",
            ld(&t.ring_gaps),
        ),
        (
            "ringgate_ring_gap_events_total",
            "counter",
            "Events lost to ring gaps.",
            ld(&t.ring_gap_events),
        ),
        (
            "ringgate_payloads_expired_total",
            "counter",
            "Payloads overwritten before being read.",
            ld(&t.expired),
        ),
        (
            "ringgate_writer_restarts_total",
            "counter",
            "Ring writer restarts seen.",
            ld(&t.writer_restarts),
        ),
        (
            "ringgate_history_wal_full_total",
            "counter",
            "Frames the write-ahead log refused (full).",
            ld(&t.history_wal_full),
        ),
        (
            "ringgate_head_ring_seqno",
            "gauge",
            "Ring seqno of the last event read.",
            ld(&t.head_ring_seqno),
        ),
        (
            "ringgate_head_server_seqno",
            "gauge",
            "Last server_seqno stamped.",
            ld(&t.head_server_seqno),
        ),
        (
            "ringgate_chain_publications_total",
            "counter",
            "Times the tailer re-encoded the chain REST bodies (a few per block).",
            hub.chain.publications(),
        ),
        (
            "ringgate_clients",
            "gauge",
            "Open WebSocket sessions.",
            hub.clients(),
        ),
        (
            "ringgate_connections_open",
            "gauge",
            "Open connections of any kind.",
            hub.sum(|s| &s.connections_open),
        ),
    ];
    for (name, kind, help, v) in simple {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        &mut out,
        "ringgate_tailer_lag_seconds",
        "gauge",
        "Now minus the last event's ring timestamp.",
    );
    let _ = writeln!(
        out,
        "ringgate_tailer_lag_seconds {}",
        hub.tailer_lag(now_ns).unwrap_or(0.0)
    );
    family(
        &mut out,
        "ringgate_sessions",
        "gauge",
        "Open WebSocket sessions by channel.",
    );
    for channel in Channel::ALL {
        let v = hub.sum(|s| &s.sessions_by_channel[channel.index()]);
        let label = channel.name();
        let _ = writeln!(out, "ringgate_sessions{{channel=\"{label}\"}} {v}");
    }
    family(
        &mut out,
        "ringgate_decode_failures_total",
        "counter",
        "Undecodable ring payloads, by kind.",
    );
    for k in DecodeErrorKind::ALL {
        let v = ld(&t.decode_failures[k as usize]);
        let _ = writeln!(
            out,
            "ringgate_decode_failures_total{{kind=\"{}\"}} {v}",
            k.name()
        );
    }
    family(
        &mut out,
        "ringgate_gaps_total",
        "counter",
        "Gap frames sent, by reason (tailer-made and session-made).",
    );
    for r in GapReason::ALL {
        let i = r.index();
        let v = ld(&t.gaps[i]) + hub.sum(|s| &s.gaps[i]);
        let _ = writeln!(out, "ringgate_gaps_total{{reason=\"{}\"}} {v}", r.name());
    }
    family(
        &mut out,
        "ringgate_lifecycle_transitions_total",
        "counter",
        "Block lifecycle transitions, by stage reached.",
    );
    for (i, st) in LIFECYCLE_STAGES.iter().enumerate() {
        let v = ld(&t.lifecycle_transitions[i]);
        let _ = writeln!(
            out,
            "ringgate_lifecycle_transitions_total{{stage=\"{}\"}} {v}",
            st.name()
        );
    }
    let chain: [(&str, &str, &str, u64); 5] = [
        (
            "ringgate_gate_held_blocks",
            "gauge",
            "Blocks held by the stage gate for min_stage streams.",
            ld(&t.gate_held_blocks),
        ),
        (
            "ringgate_gate_held_bytes",
            "gauge",
            "JSON bytes held by the stage gate.",
            ld(&t.gate_held_bytes),
        ),
        (
            "ringgate_gate_overflow_blocks_total",
            "counter",
            "Blocks pushed out of the stage gate before release.",
            ld(&t.gate_overflow_blocks),
        ),
        (
            "ringgate_gate_released_copies_total",
            "counter",
            "Event copies released to min_stage streams.",
            ld(&t.gate_released_copies),
        ),
        (
            "ringgate_backlog_events",
            "gauge",
            "Events loaded from the ring's startup backlog.",
            ld(&t.backlog_events),
        ),
    ];
    for (name, kind, help, v) in chain {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    let mut lat = [0u64; LAT_BUCKETS];
    for s in hub.shards.iter() {
        for (acc, c) in lat.iter_mut().zip(s.latency.counts()) {
            *acc += c;
        }
    }
    family(
        &mut out,
        "ringgate_ring_to_send_seconds",
        "summary",
        "Ring timestamp to socket write of the oldest live event per write (bucket upper bounds, ~19% precision; samples over 60 s counted in _stale_total).",
    );
    let qs = [0.5, 0.9, 0.99, 0.999];
    for (q, v) in qs.iter().zip(quantiles(&lat, &qs)) {
        let _ = writeln!(out, "ringgate_ring_to_send_seconds{{quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(
        out,
        "ringgate_ring_to_send_seconds_sum {}\nringgate_ring_to_send_seconds_count {}",
        hub.sum(|s| &s.latency.sum_ns) as f64 / 1e9,
        lat.iter().sum::<u64>()
    );
    family(
        &mut out,
        "ringgate_ring_to_send_stale_total",
        "counter",
        "Latency samples over 60 s (history being replayed), kept out of the summary.",
    );
    let _ = writeln!(
        out,
        "ringgate_ring_to_send_stale_total {}",
        hub.sum(|s| &s.latency.stale)
    );
    type Pick = fn(&ShardStats) -> &AtomicU64;
    let summed: [(&str, &str, Pick); 20] = [
        (
            "ringgate_resume_requests_total",
            "Connections that asked to resume (resume_from / from_block).",
            |s| &s.resume_requests,
        ),
        (
            "ringgate_resume_unrecovered_total",
            "Resume requests answered recovered:false (cursor too old, other epoch).",
            |s| &s.resume_unrecovered,
        ),
        (
            "ringgate_replayed_frames_total",
            "Frames replayed from resume stores to resuming sessions.",
            |s| &s.replayed_frames,
        ),
        (
            "ringgate_connections_accepted_total",
            "Connections accepted.",
            |s| &s.connections_accepted,
        ),
        (
            "ringgate_connections_rejected_total",
            "Connections refused (limits, bad requests).",
            |s| &s.connections_rejected,
        ),
        (
            "ringgate_handshake_timeouts_total",
            "Connections closed for not sending a request in time.",
            |s| &s.handshake_timeouts,
        ),
        (
            "ringgate_frames_out_total",
            "WebSocket frames written to clients.",
            |s| &s.frames_out,
        ),
        (
            "ringgate_bytes_out_total",
            "Bytes written to clients.",
            |s| &s.bytes_out,
        ),
        (
            "ringgate_writes_total",
            "Socket writes to clients (each carries many frames under load).",
            |s| &s.writes,
        ),
        (
            "ringgate_events_out_total",
            "Events delivered inside Events frames.",
            |s| &s.events_out,
        ),
        (
            "ringgate_slow_client_disconnects_total",
            "Sessions closed for too many drops.",
            |s| &s.slow_disconnects,
        ),
        (
            "ringgate_protocol_closes_total",
            "Sessions closed for client protocol errors.",
            |s| &s.protocol_closes,
        ),
        (
            "ringgate_error_frames_total",
            "Error frames sent (bad subscriptions).",
            |s| &s.error_frames,
        ),
        (
            "ringgate_rest_requests_total",
            "REST requests answered.",
            |s| &s.rest_requests,
        ),
        (
            "ringgate_deflate_messages_total",
            "permessage-deflate messages compressed by the shard.",
            |s| &s.deflate_compressed,
        ),
        (
            "ringgate_deflate_reused_total",
            "permessage-deflate messages sent with bytes another session's identical message was compressed to.",
            |s| &s.deflate_reused,
        ),
        (
            "ringgate_deflate_bytes_in_total",
            "Payload bytes of permessage-deflate messages, before compression.",
            |s| &s.deflate_bytes_in,
        ),
        (
            "ringgate_deflate_bytes_out_total",
            "Payload bytes of permessage-deflate messages, compressed.",
            |s| &s.deflate_bytes_out,
        ),
        (
            "ringgate_rpc_requests_total",
            "JSON-RPC requests answered.",
            |s| &s.rpc_requests,
        ),
        (
            "ringgate_rpc_notifications_total",
            "eth_subscription notifications written.",
            |s| &s.rpc_notifications,
        ),
    ];
    for (name, help, pick) in summed {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", hub.sum(pick));
    }
    let per_shard: [(&str, &str, Pick); 7] = [
        (
            "ringgate_resume_store_frames",
            "Frames in a shard's resume store (gauge).",
            |s| &s.resume_frames,
        ),
        (
            "ringgate_resume_store_bytes",
            "Frame bytes a shard's resume store keeps alive (gauge).",
            |s| &s.resume_bytes,
        ),
        (
            "ringgate_shard_inbox_frames_total",
            "Frames a shard took from its SPSC queue.",
            |s| &s.inbox_frames,
        ),
        (
            "ringgate_shard_queue_full_total",
            "Frames a shard's full SPSC queue did not take (read back from the history when it has them).",
            |s| &s.spsc_full,
        ),
        (
            "ringgate_shard_queue_repaired_total",
            "Frames a full shard queue did not take, read back from the history and delivered.",
            |s| &s.repaired_frames,
        ),
        (
            "ringgate_session_drops_total",
            "Frames dropped for slow clients, by shard.",
            |s| &s.drops,
        ),
        (
            "ringgate_session_shed_total",
            "Frames of lower priority lanes shed for slow clients, by shard.",
            |s| &s.shed,
        ),
    ];
    for (name, help, pick) in per_shard {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(&mut out, name, kind, help);
        for (i, s) in hub.shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", ld(pick(s)));
        }
    }
    family(
        &mut out,
        "ringgate_rpc_block_bytes",
        "gauge",
        "Heap bytes of the encoded JSON-RPC blocks alive, wherever held (bounded by --rpc-history-mib for the tailer and again for the shards, plus queued notifications).",
    );
    let _ = writeln!(out, "ringgate_rpc_block_bytes {}", live_block_bytes());
    if let Some(h) = &hub.history {
        render_history(&mut out, h);
    }
    if let Some(auth) = &hub.auth {
        render_auth(&mut out, auth);
    }
    if let Some(bus) = &hub.bus {
        render_bus(&mut out, bus);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::latency::{lat_bucket, lat_upper};
    use super::super::{bump, LATENCY_LIVE_MAX_NS};
    use super::*;

    #[test]
    fn prometheus_text_sums_shards_and_names_types() {
        let hub = StatsHub::new(2, 1);
        bump(&hub.shards[0].frames_out, 3);
        bump(&hub.shards[1].frames_out, 4);
        bump(
            &hub.tailer.events_in[usize::from(EventType::TxnLog.code())],
            7,
        );
        bump(&hub.shards[1].sessions_by_channel[2], 1);
        let text = render_prometheus(&hub, 2);
        assert!(text.contains("ringgate_frames_out_total 7\n"));
        assert!(text.contains("ringgate_events_in_total{type=\"TxnLog\"} 7\n"));
        assert!(text.contains("ringgate_sessions{channel=\"txs\"} 1\n"));
        assert!(text.contains("ringgate_clients 1\n"));
        assert!(text.contains("ringgate_session_drops_total{shard=\"1\"} 0\n"));
        bump(&hub.tailer.gaps[GapReason::RingLapped.index()], 2);
        bump(&hub.shards[1].gaps[GapReason::SlowClient.index()], 1);
        bump(&hub.tailer.lifecycle_transitions[2], 5);
        let text = render_prometheus(&hub, 2);
        assert!(text.contains("ringgate_gaps_total{reason=\"ring_lapped\"} 2\n"));
        assert!(text.contains("ringgate_gaps_total{reason=\"slow_client\"} 1\n"));
        assert!(text.contains("ringgate_lifecycle_transitions_total{stage=\"Finalized\"} 5\n"));
        assert!(text.contains("ringgate_decode_failures_total{kind=\"short\"} 0\n"));
    }

    #[test]
    fn latency_buckets_bound_their_samples_and_quantiles_come_from_summed_shards() {
        for ns in [1u64, 3, 5, 1_000, 1_234_567, 59_000_000_000] {
            let i = lat_bucket(ns);
            // Bucket i covers [lat_upper(i - 1), lat_upper(i)).
            assert!(
                lat_upper(i) > ns,
                "{ns} in bucket {i} up to {}",
                lat_upper(i)
            );
            assert!(i == 0 || lat_upper(i - 1) <= ns, "{ns}");
        }
        let hub = StatsHub::new(2, 0);
        for _ in 0..90 {
            hub.shards[0].latency.record(100_000); // 100 µs
        }
        for _ in 0..10 {
            hub.shards[1].latency.record(10_000_000); // 10 ms
        }
        hub.shards[1].latency.record(LATENCY_LIVE_MAX_NS + 1);
        let text = render_prometheus(&hub, 1);
        let q = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "ringgate_ring_to_send_seconds{{quantile=\"{name}\"}}"
                    ))
                })
                .unwrap_or_default();
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1.0)
        };
        assert!((1e-4..1.2e-4).contains(&q("0.5")), "{text}");
        assert!((1e-2..1.2e-2).contains(&q("0.99")), "{text}");
        assert!(text.contains("ringgate_ring_to_send_seconds_count 100\n"));
        assert!(text.contains("ringgate_ring_to_send_stale_total 1\n"));
    }
}
