//! What a steady firehose client of the soak checks on every frame: each ring `seqno` once,
//! in order, and every hole announced.
//!
//! Runtime-free (fed parsed frames, returns verdicts), so it is unit-tested on its own
//! (`tests/bench_soak.rs`). Rules, per stream (kept across the client's resumes):
//! - ring seqnos of one writer are contiguous; a writer restart (`Gap{writer_restart}`)
//!   starts the next ring at seqno 1, and a restart loses nothing still in the ring;
//! - a hole is *announced* when `ring_lapped` / `payload_expired` gaps received before the
//!   event cover its ring range, or when a loss without a ring range (`shard_queue_full`,
//!   `resume_window`, `slow_client`, a backpressure `Warning`) arrived since the previous
//!   event; otherwise it is *silent*;
//! - a seqno at or below the previous one (but for a restart) is a duplicate or reorder;
//! - `server_seqno` never decreases on a connection and strictly increases across data frames.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

/// One server frame, as much of it as the soak reads (unknown fields are skipped unparsed).
#[derive(Debug, Deserialize)]
pub struct Frame {
    pub server_seqno: u64,
    #[serde(rename = "Events", default)]
    pub events: Option<Vec<Ev>>,
    #[serde(rename = "Gap", default)]
    pub gap: Option<GapMsg>,
    #[serde(rename = "Warning", default)]
    pub warning: Option<IgnoredAny>,
    #[serde(rename = "Hello", default)]
    pub hello: Option<HelloMsg>,
    #[serde(rename = "Resume", default)]
    pub resume: Option<IgnoredAny>,
    #[serde(rename = "Subscribed", default)]
    pub subscribed: Option<IgnoredAny>,
    #[serde(rename = "Error", default)]
    pub error: Option<IgnoredAny>,
    /// Sent every 5 s to sessions without `extended=1` (the soak's steady clients).
    #[serde(rename = "Heartbeat", default)]
    pub heartbeat: Option<IgnoredAny>,
}

impl Frame {
    /// Per-connection messages carry the session's cursor instead of a seqno of their own.
    pub fn is_per_connection(&self) -> bool {
        self.hello.is_some()
            || self.resume.is_some()
            || self.subscribed.is_some()
            || self.error.is_some()
            || self.warning.is_some()
            || self.heartbeat.is_some()
    }
}

#[derive(Debug, Deserialize)]
pub struct Ev {
    pub seqno: u64,
    pub timestamp_ns: u64,
}

#[derive(Debug, Deserialize)]
pub struct GapMsg {
    pub reason: String,
    pub ring_from_seqno: Option<u64>,
    pub ring_to_seqno: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct HelloMsg {
    pub epoch: u64,
}

/// A ring range that never arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    pub from: u64,
    pub to: u64,
    /// What announced it; `None`: nothing did (silent loss).
    pub announced_by: Option<String>,
}

/// The per-stream checker.
#[derive(Debug, Default)]
pub struct SeqCheck {
    last_ring: Option<u64>,
    restarted: bool,
    /// Ring ranges announced and not yet passed.
    covered: Vec<(u64, u64)>,
    /// A loss without a ring range announced since the previous event.
    pending: Option<String>,
    last_seqno: u64,
    last_data_seqno: u64,
    pub events: u64,
    pub holes: Vec<Hole>,
    pub disorder: Vec<String>,
    pub gaps: BTreeMap<String, u64>,
    pub warnings: u64,
}

impl SeqCheck {
    /// A new connection of the same stream (a resume): `server_seqno` order starts over
    /// only if the epoch changed; the ring-seqno state carries on.
    pub fn on_connect(&mut self, same_epoch: bool) {
        if !same_epoch {
            self.last_seqno = 0;
            self.last_data_seqno = 0;
        }
    }

    /// Checks one frame; returns the holes it revealed.
    pub fn on_frame(&mut self, f: &Frame) -> Vec<Hole> {
        let s = f.server_seqno;
        if s < self.last_seqno {
            self.disorder
                .push(format!("server_seqno {s} after {}", self.last_seqno));
        }
        if !f.is_per_connection() {
            if s <= self.last_data_seqno && self.last_data_seqno != 0 {
                self.disorder.push(format!(
                    "data frame server_seqno {s} after {}",
                    self.last_data_seqno
                ));
            }
            self.last_data_seqno = self.last_data_seqno.max(s);
        }
        self.last_seqno = self.last_seqno.max(s);
        if f.warning.is_some() {
            self.warnings += 1;
            self.pending = Some("Warning".into());
        }
        if let Some(g) = &f.gap {
            self.on_gap(g);
        }
        let mut holes = Vec::new();
        for e in f.events.iter().flatten() {
            if let Some(h) = self.on_event(e.seqno) {
                holes.push(h);
            }
        }
        self.holes.extend(holes.iter().cloned());
        holes
    }

    fn on_gap(&mut self, g: &GapMsg) {
        *self.gaps.entry(g.reason.clone()).or_default() += 1;
        match g.reason.as_str() {
            "writer_restart" => self.restarted = true,
            "ring_lapped" | "payload_expired" => {
                if let (Some(a), Some(b)) = (g.ring_from_seqno, g.ring_to_seqno) {
                    self.covered.push((a, b));
                }
            }
            // Block-level losses of `min_stage` streams: not ring events of the firehose.
            "stage_gate_overflow" | "unresolved_block" => {}
            other => self.pending = Some(other.to_string()),
        }
    }

    fn on_event(&mut self, s: u64) -> Option<Hole> {
        self.events += 1;
        let expected = if self.restarted {
            1
        } else if let Some(r) = self.last_ring {
            r + 1
        } else {
            self.last_ring = Some(s);
            return None;
        };
        self.restarted = false;
        let hole = if s < expected {
            self.disorder.push(format!(
                "ring seqno {s} after {}",
                self.last_ring.unwrap_or(0)
            ));
            None
        } else if s > expected {
            let announced_by = if covers(&self.covered, expected, s - 1) {
                Some("ring range".to_string())
            } else {
                self.pending.clone()
            };
            Some(Hole {
                from: expected,
                to: s - 1,
                announced_by,
            })
        } else {
            None
        };
        self.pending = None;
        self.covered.retain(|&(_, b)| b > s);
        self.last_ring = Some(s);
        hole
    }
}

/// Whether the union of `ranges` covers `from..=to`.
fn covers(ranges: &[(u64, u64)], from: u64, to: u64) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut next = from;
    for (a, b) in sorted {
        if a > next {
            break;
        }
        next = next.max(b.saturating_add(1));
        if next > to {
            return true;
        }
    }
    next > to
}
