//! `Events` batch assembly, the per-session hot path: a run of matching pre-encoded events
//! becomes one frame `{"server_seqno":<max>,"Events":[e1,e2,…]}` (a WebSocket text frame or
//! an SSE message, the session's [`Framing`]) appended to a [`FrameSink`]: the session writer's [`crate::wire::protocol::Gather`] (event bytes shared, not
//! copied) or a byte buffer.
//!
//! Runs on shard cores, once per session write. Two passes over the run: the first sizes the
//! batch (count, byte length, highest seqno) within the caps, so the frame header is written
//! once with the exact length; the second appends each event's JSON with commas. No per-event
//! allocation, no JSON parsing (docs/invariants.md#fast-1, #fast-2, #fast-8).
//!
//! The batch's `server_seqno` is the highest event seqno in it (the existing gateway used the
//! first item or a metric's seqno, so its seqnos went backwards on the wire).

use std::sync::Arc;

use crate::model::outbound::{EncodedEvent, MetaFrame};
use crate::wire::json::{push_u64, u64_len};
use crate::wire::protocol::framing::Framing;
use crate::wire::protocol::gather::FrameSink;

const PREFIX: &[u8] = b"{\"server_seqno\":";
const EVENTS: &[u8] = b",\"Events\":[";
const SUFFIX: &[u8] = b"]}";

/// Caps on one `Events` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events per frame. Default 256: large enough that a write carries many events
    /// under load, small enough that clients with 1 MiB frame limits never choke.
    pub max_events: usize,
    /// Most payload bytes per frame. Default 256 KiB. A single event larger than this is
    /// still sent, alone in its frame.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_events: 256,
            max_bytes: 256 * 1024,
        }
    }
}

/// What one [`BatchWriter::write_events`] call wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Events taken from the front of the run (0 only for an empty run).
    pub events: usize,
    /// The frame's `server_seqno` (the highest event seqno); 0 when `events == 0`.
    pub server_seqno: u64,
    /// Bytes appended to the sink, header included.
    pub frame_bytes: usize,
}

/// Writes `Events` frames within [`BatchLimits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchWriter {
    limits: BatchLimits,
    /// Write meta frames in the old gateway's shape where it differs ([`MetaFrame::old`]).
    old_shapes: bool,
    framing: Framing,
}

impl BatchWriter {
    /// A writer with `limits` (each cap at least 1).
    pub fn new(limits: BatchLimits) -> BatchWriter {
        BatchWriter {
            limits: BatchLimits {
                max_events: limits.max_events.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            old_shapes: false,
            framing: Framing::WebSocket,
        }
    }

    /// Frames written as `framing` (default: WebSocket text frames).
    pub fn with_framing(mut self, framing: Framing) -> BatchWriter {
        self.framing = framing;
        self
    }

    /// The framing in force.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Meta frames in the old gateway's shape where it differs (a session that did not ask
    /// for `extended=1`).
    pub fn old_shapes(mut self, on: bool) -> BatchWriter {
        self.old_shapes = on;
        self
    }

    /// Appends a meta frame in this session's shape; returns the bytes appended. The old
    /// shape is copied (a few per block); the usual one is referenced.
    pub fn write_meta(&self, m: &Arc<MetaFrame>, out: &mut impl FrameSink) -> usize {
        match (&m.old, self.old_shapes) {
            (Some(old), true) => {
                let before = out.byte_len();
                out.put_with(|head| self.framing.message(m.server_seqno, old, head));
                out.byte_len() - before
            }
            _ => write_meta(self.framing, m, out),
        }
    }

    /// The caps in force.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Appends one `Events` frame holding as many events from the front of `run` as fit the
    /// caps (at least one when `run` is not empty). `run` must be in seqno order; it is
    /// iterated twice, so pass a cheap cloneable iterator (a slice or `VecDeque` iterator).
    pub fn write_events<'a, I>(&self, run: I, out: &mut impl FrameSink) -> Batch
    where
        I: IntoIterator<Item = &'a EncodedEvent>,
        I::IntoIter: Clone,
    {
        let run = run.into_iter();
        let (mut count, mut json_bytes, mut max_seqno) = (0usize, 0usize, 0u64);
        for e in run.clone() {
            if count == self.limits.max_events {
                break;
            }
            let seqno = max_seqno.max(e.server_seqno);
            let body = json_bytes + e.json_len() + count; // `count` commas after adding
            let total = PREFIX.len() + u64_len(seqno) + EVENTS.len() + body + SUFFIX.len();
            if count > 0 && total > self.limits.max_bytes {
                break;
            }
            count += 1;
            json_bytes += e.json_len();
            max_seqno = seqno;
        }
        if count == 0 {
            return Batch {
                events: 0,
                server_seqno: 0,
                frame_bytes: 0,
            };
        }
        let payload = PREFIX.len()
            + u64_len(max_seqno)
            + EVENTS.len()
            + json_bytes
            + (count - 1)
            + SUFFIX.len();
        let frame_bytes = self.framing.frame_len(payload, max_seqno);
        let start = out.byte_len();
        out.put_with(|head| {
            self.framing.open(payload, max_seqno, head);
            head.extend_from_slice(PREFIX);
            push_u64(head, max_seqno);
            head.extend_from_slice(EVENTS);
        });
        for (i, e) in run.take(count).enumerate() {
            if i > 0 {
                out.put(b",");
            }
            out.put_event(e);
        }
        out.put(SUFFIX);
        out.put(self.framing.end());
        debug_assert_eq!(out.byte_len() - start, frame_bytes);
        Batch {
            events: count,
            server_seqno: max_seqno,
            frame_bytes,
        }
    }
}

/// Appends a pre-encoded meta frame (`m.frame` is its complete JSON envelope) as one frame
/// of `framing`; returns the bytes appended.
pub fn write_meta(framing: Framing, m: &Arc<MetaFrame>, out: &mut impl FrameSink) -> usize {
    let before = out.byte_len();
    out.put_with(|head| framing.open(m.frame.len(), m.server_seqno, head));
    out.put_meta(m);
    out.put(framing.end());
    out.byte_len() - before
}

#[cfg(test)]
mod tests;
