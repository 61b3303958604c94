//! Read-only probes of the system under test: the ring header's allocation counter (how many
//! events the writer has published) and a gateway's Prometheus `/metrics` counters.
//!
//! Runs on the harness's sampler thread at the window edges. Never writes to the ring or the
//! gateway beyond one HTTP GET.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use ringgate::ingest::ring::layout::header_offset;

/// The ring's `last_seqno` (the newest seqno the writer allocated), or `None` if unreadable.
pub fn ring_last_seqno(ring: &Path) -> Option<u64> {
    let f = std::fs::File::open(ring).ok()?;
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, header_offset::LAST_SEQNO as u64)
        .ok()?;
    Some(u64::from_le_bytes(b))
}

/// Counters a gateway publishes on `/metrics` (ringgate's names; the baseline uses the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayCounters {
    /// `ringgate_head_ring_seqno`: the newest ring seqno the tailer consumed.
    pub head_ring_seqno: u64,
    /// `ringgate_ring_gap_events_total`: ring events lost to laps.
    pub gap_events: u64,
    /// Each of [`DETAIL_COUNTERS`] the gateway publishes (summed over labels), in order.
    pub detail: [Option<u64>; DETAIL_COUNTERS.len()],
}

/// ringgate's counters that explain a run (the baseline publishes none of them): reported as
/// their growth over the window.
pub const DETAIL_COUNTERS: [&str; 6] = [
    "ringgate_writes_total",
    "ringgate_frames_out_total",
    "ringgate_session_drops_total",
    "ringgate_slow_client_disconnects_total",
    "ringgate_shard_queue_full_total",
    "ringgate_error_frames_total",
];

/// Scrapes `GET /metrics`; `None` if the gateway does not serve it.
pub fn gateway_counters(addr: SocketAddr) -> Option<GatewayCounters> {
    let text = http_get(addr, "/metrics")?;
    Some(GatewayCounters {
        head_ring_seqno: metric(&text, "ringgate_head_ring_seqno")?,
        gap_events: metric(&text, "ringgate_ring_gap_events_total").unwrap_or(0),
        detail: DETAIL_COUNTERS.map(|name| metric_sum(&text, name)),
    })
}

/// `ringgate_head_server_seqno`: the newest server seqno the gateway stamped.
pub fn head_server_seqno(addr: SocketAddr) -> Option<u64> {
    metric(&http_get(addr, "/metrics")?, "ringgate_head_server_seqno")
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    // Generous: the host may be saturated by the very run being measured.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body).into_owned();
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The value of an unlabelled sample `name value` in Prometheus text.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
        let v: f64 = rest.trim().parse().ok()?;
        Some(v as u64)
    })
}

/// The sum of every sample of `name`, labelled or not; `None` if there is none.
fn metric_sum(text: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix(name) else {
            continue;
        };
        let value = match rest.as_bytes().first() {
            Some(b' ') => rest,
            Some(b'{') => rest.split_once("} ").map_or("", |(_, v)| v),
            _ => continue,
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            *found.get_or_insert(0) += v as u64;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlabelled_samples_are_found_and_labelled_or_prefixed_ones_skipped() {
        let text = "# TYPE x counter\nringgate_head_ring_seqno_extra 5\n\
                    ringgate_head_ring_seqno 42\nringgate_ring_gap_events_total{a=\"b\"} 3\n";
        assert_eq!(metric(text, "ringgate_head_ring_seqno"), Some(42));
        assert_eq!(metric(text, "ringgate_ring_gap_events_total"), None);
        let shards = "ringgate_session_drops_total{shard=\"1\"} 4\n\
                      ringgate_session_drops_total{shard=\"2\"} 6\nringgate_session_drops_totalx 9\n";
        assert_eq!(metric_sum(shards, "ringgate_session_drops_total"), Some(10));
        assert_eq!(metric_sum(shards, "ringgate_writes_total"), None);
    }
}
