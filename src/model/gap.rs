//! Why data is missing: the reason and ranges of a `Gap` frame, the one loss type of the
//! gateway (the tailer, the stage gate and sessions all announce loss with it).
//!
//! Plain data; the wire encoding is `wire::protocol::messages::gap_frame`.

use crate::model::types::Bytes32;

/// Why data is missing; the `reason` of a `Gap` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GapReason {
    /// The tailer was lapped by the writer: ring events were overwritten unread.
    RingLapped,
    /// An event's payload was overwritten before it was copied.
    PayloadExpired,
    /// The writer restarted (a new ring).
    #[default]
    WriterRestart,
    /// A shard's queue was full: frames were dropped for every session of that shard.
    ShardQueueFull,
    /// A held block was pushed out of the stage gate before its release: sessions with
    /// `min_stage` above `Proposed` will not receive it (the `Proposed` originals are
    /// `from_seqno..=to_seqno`).
    StageGateOverflow,
    /// A held block below a finalized height that the chain of block hashes could not place
    /// (data loss cut the link): it will never be finalized on its own, and it cannot be
    /// proven canonical or abandoned, so sessions with `min_stage` above `Proposed` will not
    /// receive it (the `Proposed` originals are `from_seqno..=to_seqno`).
    UnresolvedBlock,
    /// A resume cursor older than the resume store: these seqnos cannot be replayed.
    ResumeWindow,
    /// A session's own send queue overflowed.
    SlowClient,
    /// Frames the origin made that the NATS stream does not hold: the publisher's queue
    /// overflowed (the bus fell behind), or an edge found a hole in the stream (messages
    /// aged out, or lost with an unreachable bus).
    BusLost,
}

impl GapReason {
    /// Every reason, in the order of [`GapReason::index`] (metrics label order).
    pub const ALL: [GapReason; 9] = [
        GapReason::RingLapped,
        GapReason::PayloadExpired,
        GapReason::WriterRestart,
        GapReason::ShardQueueFull,
        GapReason::StageGateOverflow,
        GapReason::UnresolvedBlock,
        GapReason::ResumeWindow,
        GapReason::SlowClient,
        GapReason::BusLost,
    ];

    /// Position in [`GapReason::ALL`] (for per-reason counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl GapReason {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            GapReason::RingLapped => "ring_lapped",
            GapReason::PayloadExpired => "payload_expired",
            GapReason::WriterRestart => "writer_restart",
            GapReason::ShardQueueFull => "shard_queue_full",
            GapReason::StageGateOverflow => "stage_gate_overflow",
            GapReason::UnresolvedBlock => "unresolved_block",
            GapReason::ResumeWindow => "resume_window",
            GapReason::SlowClient => "slow_client",
            GapReason::BusLost => "bus_lost",
        }
    }
}

/// The body of a `Gap` frame, the one gap type of the gateway (tailer, gate and sessions).
///
/// `from_seqno..=to_seqno` (inclusive) are the `server_seqno`s a stream will not receive:
/// frames lost for a shard or a session, or the `Proposed` originals of a block whose gated
/// copies will never come. `ring_from_seqno..=ring_to_seqno` are ring `seqno`s never read
/// (a lap, an expired payload), which had no `server_seqno` yet. Either range is omitted when
/// it does not apply (a writer restart has neither). `block_number`/`block_id` name the block
/// the loss cut short, when one was being executed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gap {
    pub reason: GapReason,
    pub from_seqno: Option<u64>,
    pub to_seqno: Option<u64>,
    pub ring_from_seqno: Option<u64>,
    pub ring_to_seqno: Option<u64>,
    pub block_number: Option<u64>,
    pub block_id: Option<Bytes32>,
}

impl Gap {
    /// A gap with only a reason (e.g. a writer restart: nothing numbered is known lost).
    pub fn new(reason: GapReason) -> Gap {
        Gap {
            reason,
            ..Gap::default()
        }
    }

    /// The gap of an inclusive `server_seqno` range.
    pub fn seqnos(reason: GapReason, from: u64, to: u64) -> Gap {
        Gap {
            reason,
            from_seqno: Some(from),
            to_seqno: Some(to),
            ..Gap::default()
        }
    }

    /// The gap of a half-open seqno range (as in `ResumeDecision::gap` and
    /// `ReplayChunk::lost`), `None` when the range is empty.
    pub fn from_range(reason: GapReason, range: &std::ops::Range<u64>) -> Option<Gap> {
        (range.start < range.end).then(|| Gap::seqnos(reason, range.start, range.end - 1))
    }
}
