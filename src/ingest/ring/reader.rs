//! The seqlock reader: one consumer's cursor over a ring, yielding (descriptor, payload bytes).
//!
//! Runs on the tailer core, busy-polled. Input: an attached [`Ring`]. Output: one
//! [`ReadOutcome`] per [`RingReader::try_next`] call; it never blocks, never allocates once the
//! scratch buffer has grown to the largest payload seen, and never panics on ring contents.
//!
//! # Protocol (docs/ring-format.md#s2-3, #s2-4)
//!
//! The cursor is `read_last` (last seqno consumed); seqno `s` lives in slot `(s-1) & mask`.
//! 1. Load the slot's seqno with **Acquire**. Less than expected: `NotReady` (previous lap, or
//!    0 while the writer fills it). Greater: `Gap` (we were lapped).
//! 2. Equal: copy the 64 descriptor bytes (relaxed word loads), **fence(Acquire)**, reload the
//!    seqno. Changed: `Gap` (overwritten during the copy). Unchanged: the descriptor is
//!    consumed.
//! 3. Payload: copied into the reader's reusable scratch buffer. A payload that wraps the
//!    physical end of the buffer is copied in **two pieces** (no double mapping: it keeps the
//!    mapping plain and hugetlbfs-safe, and a payload copy is needed anyway to make the window
//!    check meaningful). After the copy, **fence(Acquire)** then load `buffer_window_start`;
//!    if the payload's virtual offset is below it, the bytes may have been overwritten:
//!    `Expired`. Zero-length payloads have no bytes to go stale and are never expired.
//!
//! # SAFETY argument for reading memory another process writes
//!
//! All ring accesses go through `map::Region`, which only performs aligned atomic `u64` loads
//! (no Rust reference to ring memory ever exists), so a concurrent writer can never cause
//! undefined behaviour here, only torn *values*. Torn descriptors are caught by the seqno
//! re-check: the writer stores seqno 0, then `fence(Release)`, then rewrites the slot, then
//! release-stores the new seqno, so if any word we copied came from a newer write, our
//! Acquire fence makes the reload observe 0 or a newer seqno. Torn payloads are caught by the
//! window check: the writer advances `buffer_window_start` and issues a Release fence before
//! overwriting payload bytes, so if our copy saw any overwritten byte, the load after our
//! Acquire fence sees a window past our offset. Every derived value (sizes, offsets) is
//! bounds-checked against the validated ring sizes before use.
//!
//! # Malformed descriptors
//!
//! A committed descriptor whose payload cannot be a real one (size beyond the writer's limit,
//! offset not 16-aligned) is consumed and returned as [`ReadOutcome::Malformed`] with a
//! [`MalformedReason`], and counted; the caller logs it and moves on. Unknown event type codes
//! are *not* malformed here: they are returned as `Ready` raw descriptors (decoding is the
//! decoder's job).
//!
//! # Gap recovery
//!
//! On `Gap` the reader resynchronises to the newest block's BLOCK_START (the same start rule as
//! [`StartAt::NewestBlock`]) and reports `missing = expected..resume`: every seqno it will never
//! return, so nothing is lost silently.

use super::attach::{AttachError, Ring};
use super::layout::{Descriptor, HEADER_SIZE};
use super::layout::{DESCRIPTOR_SIZE, PAYLOAD_ALIGN, WINDOW_INCR};
use super::liveness::{self, WriterState};
use crate::model::kind::EventType;
use std::ops::Range;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

/// Event code of BLOCK_START, the one event code the ring layer needs (to resynchronise).
pub(crate) const BLOCK_START: u16 = EventType::BlockStart as u16;

/// How many pause iterations to wait for the newest allocated slot to commit (docs/ring-format.md#s2-5).
const SYNC_WAIT_SPINS: u32 = 100;

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The live default: the newest committed event, rewound to its block's BLOCK_START when
    /// that is still in the ring (falls back to the newest committed event).
    NewestBlock,
    /// Seqno 1: a snapshot from its beginning, or a freshly (re)created ring.
    First,
    /// A given seqno (the next event returned is this one, if still in the ring).
    Seqno(u64),
    /// The startup backlog: the oldest BLOCK_START still safely in the ring (at least
    /// [`BACKLOG_MARGIN`] of a lap behind the writer, payload not expired) and at most
    /// `max_events` behind the newest event; falls back to [`StartAt::NewestBlock`] when
    /// no such block exists (or `max_events` is 0).
    OldestBlock { max_events: u64 },
}

/// Fraction of a lap (1/8) kept between the backlog's first event and the writer's next
/// overwrite, so that loading the backlog is not lapped right away.
pub const BACKLOG_MARGIN: u64 = 8;

/// One consumed event: its descriptor and its payload, copied out of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingEvent<'a> {
    /// The descriptor (seqno, type, flow tags, timestamp).
    pub descriptor: Descriptor,
    /// Exactly `descriptor.payload_size` bytes, valid (checked against the window after the copy).
    pub payload: &'a [u8],
}

/// Why a committed descriptor was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedReason {
    /// `payload_size` exceeds what any writer may publish (`payload_buf_size − 2^24`).
    PayloadTooLarge { size: u32, limit: u64 },
    /// `payload_buf_offset` is not a multiple of 16.
    MisalignedOffset { offset: u64 },
}

/// The result of one [`RingReader::try_next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome<'a> {
    /// The next event, consumed.
    Ready(RingEvent<'a>),
    /// Nothing new yet (or the writer is mid-event); poll again.
    NotReady,
    /// The reader was lapped: these seqnos are lost. The reader already resumed at
    /// `missing.end` (a BLOCK_START when one is available).
    Gap { missing: Range<u64> },
    /// The event's descriptor was read but its payload was overwritten; the event is consumed.
    Expired { descriptor: Descriptor },
    /// The descriptor cannot describe a real payload; the event is consumed and counted.
    Malformed {
        descriptor: Descriptor,
        reason: MalformedReason,
    },
}

/// Running totals, readable by the caller at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderCounters {
    /// `Ready` outcomes.
    pub ready: u64,
    /// `Gap` outcomes.
    pub gaps: u64,
    /// Seqnos reported missing across all gaps.
    pub missing_events: u64,
    /// `Expired` outcomes.
    pub expired: u64,
    /// `Malformed` outcomes.
    pub malformed: u64,
}

/// The result of a seqlock copy of one slot.
enum Slot {
    /// The slot holds the wanted seqno and the copy is consistent.
    Match(Descriptor),
    /// The slot held this other seqno at the first load.
    Holds(u64),
    /// The slot changed during the copy.
    Torn,
}

/// A cursor over one ring.
#[derive(Debug)]
pub struct RingReader {
    ring: Arc<Ring>,
    read_last: u64,
    scratch: Vec<u8>,
    counters: ReaderCounters,
    desc_mask: u64,
    payload_mask: u64,
    payload_base: usize,
    /// Largest payload a writer may publish; anything above is malformed.
    max_payload: u64,
}

impl RingReader {
    /// A reader over `ring`, starting at `start`.
    pub fn new(ring: Arc<Ring>, start: StartAt) -> RingReader {
        let mut r = RingReader {
            ring,
            read_last: 0,
            scratch: Vec::new(),
            counters: ReaderCounters::default(),
            desc_mask: 0,
            payload_mask: 0,
            payload_base: 0,
            max_payload: 0,
        };
        r.set_ring_geometry();
        r.read_last = match start {
            StartAt::First => 0,
            StartAt::Seqno(s) => s.saturating_sub(1),
            StartAt::NewestBlock => r.newest_block_start() - 1,
            StartAt::OldestBlock { max_events } => r.oldest_block_start(max_events) - 1,
        };
        r
    }

    fn set_ring_geometry(&mut self) {
        let s = self.ring.sizes();
        self.desc_mask = s.descriptor_capacity - 1;
        self.payload_mask = s.payload_buf_size - 1;
        // Validated at attach: the whole file is mapped and fits in usize.
        self.payload_base = s.payload_offset() as usize;
        self.max_payload = s.payload_buf_size - WINDOW_INCR;
    }

    /// The ring being read.
    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    /// The seqno the next `Ready` will carry.
    pub fn next_seqno(&self) -> u64 {
        self.read_last.wrapping_add(1)
    }

    /// Running totals.
    pub fn counters(&self) -> ReaderCounters {
        self.counters
    }

    /// Byte offset of the slot holding `seqno`.
    fn slot_offset(&self, seqno: u64) -> usize {
        // (seqno-1) & mask < capacity, validated to fit the mapping at attach.
        HEADER_SIZE as usize + ((seqno.wrapping_sub(1) & self.desc_mask) * DESCRIPTOR_SIZE) as usize
    }

    /// Seqlock copy of the slot that should hold `seqno`.
    fn read_slot(&self, seqno: u64) -> Slot {
        let region = self.ring.region();
        let off = self.slot_offset(seqno);
        let s = region.load(off, Ordering::Acquire);
        if s != seqno {
            return Slot::Holds(s);
        }
        let mut bytes = [0u8; DESCRIPTOR_SIZE as usize];
        region.copy_out(off, &mut bytes);
        fence(Ordering::Acquire);
        if region.load(off, Ordering::Relaxed) != seqno {
            return Slot::Torn;
        }
        let mut d = Descriptor::from_bytes(&bytes);
        d.seqno = seqno;
        Slot::Match(d)
    }

    /// Returns the next event, or why there is none.
    pub fn try_next(&mut self) -> ReadOutcome<'_> {
        let Some(expected) = self.read_last.checked_add(1) else {
            return ReadOutcome::NotReady;
        };
        let d = match self.read_slot(expected) {
            Slot::Match(d) => d,
            Slot::Holds(s) if s < expected => return ReadOutcome::NotReady,
            Slot::Holds(_) | Slot::Torn => return self.gap(expected),
        };
        self.read_last = expected;
        self.payload(d)
    }

    /// Copies and validates the payload of the consumed descriptor `d`.
    fn payload(&mut self, d: Descriptor) -> ReadOutcome<'_> {
        let size = u64::from(d.payload_size);
        if size > self.max_payload {
            self.counters.malformed += 1;
            let reason = MalformedReason::PayloadTooLarge {
                size: d.payload_size,
                limit: self.max_payload,
            };
            return ReadOutcome::Malformed {
                descriptor: d,
                reason,
            };
        }
        if !d.payload_buf_offset.is_multiple_of(PAYLOAD_ALIGN) {
            self.counters.malformed += 1;
            let reason = MalformedReason::MisalignedOffset {
                offset: d.payload_buf_offset,
            };
            return ReadOutcome::Malformed {
                descriptor: d,
                reason,
            };
        }
        let len = size as usize;
        if len > 0 {
            if d.payload_buf_offset < self.ring.buffer_window_start() {
                self.counters.expired += 1;
                return ReadOutcome::Expired { descriptor: d };
            }
            if self.scratch.len() < len {
                self.scratch.resize(len, 0);
            }
            let phys = (d.payload_buf_offset & self.payload_mask) as usize;
            // Bytes before the physical end; the rest wraps to the buffer start.
            let first = len.min(self.payload_mask as usize + 1 - phys);
            let region = self.ring.region();
            region.copy_out(self.payload_base + phys, &mut self.scratch[..first]);
            if first < len {
                region.copy_out(self.payload_base, &mut self.scratch[first..len]);
            }
            fence(Ordering::Acquire);
            if d.payload_buf_offset < self.ring.buffer_window_start() {
                self.counters.expired += 1;
                return ReadOutcome::Expired { descriptor: d };
            }
        }
        self.counters.ready += 1;
        ReadOutcome::Ready(RingEvent {
            descriptor: d,
            payload: &self.scratch[..len],
        })
    }

    /// Lapped at `expected`: resynchronise and report what is lost.
    fn gap(&mut self, expected: u64) -> ReadOutcome<'static> {
        let resume = self.newest_block_start().max(expected + 1);
        self.read_last = resume - 1;
        self.counters.gaps += 1;
        self.counters.missing_events += resume - expected;
        ReadOutcome::Gap {
            missing: expected..resume,
        }
    }

    /// The seqno to read next so that reading starts at the newest block (docs/ring-format.md#s2-5): the
    /// newest committed event, rewound to its BLOCK_START if that slot still holds it. Returns
    /// 1 on an empty ring.
    fn newest_block_start(&self) -> u64 {
        let last = self.ring.last_seqno();
        if last == 0 {
            return 1;
        }
        let region = self.ring.region();
        let committed = |s: u64| region.load(self.slot_offset(s), Ordering::Acquire) == s;
        let mut newest = None;
        for _ in 0..SYNC_WAIT_SPINS {
            if committed(last) {
                newest = Some(last);
                break;
            }
            std::hint::spin_loop();
        }
        if newest.is_none() {
            // The writer may have died mid-event: walk back over at most one lap.
            let floor = last.saturating_sub(self.desc_mask + 1);
            newest = (floor + 1..last).rev().find(|&s| committed(s));
        }
        let Some(n) = newest else {
            // Nothing committed is visible: wait for the newest allocated event.
            return last;
        };
        if let Slot::Match(d) = self.read_slot(n) {
            let block = d.block_seqno();
            if d.event_type != BLOCK_START && block != 0 && block < n {
                if let Slot::Match(b) = self.read_slot(block) {
                    if b.event_type == BLOCK_START {
                        return block;
                    }
                }
            }
        }
        n
    }

    /// The seqno of the oldest BLOCK_START that is at most `max_events` behind the newest
    /// allocated event, more than a margin ahead of the writer's next overwrite, and whose
    /// payload is still in the buffer window; else [`Self::newest_block_start`].
    fn oldest_block_start(&self, max_events: u64) -> u64 {
        let last = self.ring.last_seqno();
        let capacity = self.desc_mask + 1;
        if last == 0 || max_events == 0 {
            return self.newest_block_start();
        }
        let margin = capacity / BACKLOG_MARGIN;
        let floor = last
            .saturating_sub(capacity.saturating_sub(margin))
            .max(last.saturating_sub(max_events.saturating_sub(1)))
            .max(1);
        let window = self.ring.buffer_window_start();
        (floor..=last)
            .find(|&s| {
                matches!(self.read_slot(s), Slot::Match(d)
                    if d.event_type == BLOCK_START && d.payload_buf_offset >= window)
            })
            .unwrap_or_else(|| self.newest_block_start())
    }

    /// Checks the writer of a live ring. Not cheap (a `stat` and a `/proc/locks` read that
    /// can block for milliseconds): the tailer calls it only after the ring has been silent.
    pub fn writer_state(&mut self) -> WriterState {
        liveness::writer_state(&self.ring)
    }

    /// Re-opens the same path (after `Replaced`) and starts at seqno 1 of the new file.
    pub fn reattach(&mut self) -> Result<(), AttachError> {
        let ring = Ring::open(self.ring.path())?;
        self.ring = Arc::new(ring);
        self.set_ring_geometry();
        self.read_last = 0;
        Ok(())
    }
}
