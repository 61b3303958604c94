//! The server sequence number allocator and the server epoch.
//!
//! Owned by the tailer core, which stamps every frame it hands to the shards (events, released
//! stage copies, meta frames) with [`ServerSeqno::allocate`]. Runtime-free, no shared state.
//!
//! Invariants (docs/invariants.md#trust-1):
//! - the first seqno is 1; every later one is exactly one more than the previous, so a client
//!   that sees `n` then `n + 2` on a stream that carries everything knows one frame is missing
//!   (streams are filtered, so gaps in a filtered stream are normal; `Gap` frames and resume
//!   decisions are what announce loss);
//! - seqnos are unique for the life of an [`Epoch`]; a restart starts a new epoch at 1.
//!
//! Never: reuse or rewind a seqno, or be shared between tailers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Allocates `server_seqno`s: 1, 2, 3, … (strictly increasing, no holes).
///
/// A `u64` does not wrap in practice: at 10 million frames per second it lasts 58,000 years.
/// Seqnos from here up are provisional: a restarted tailer stamps them on the frames it makes
/// while re-reading ring events its journal already holds (to rebuild chain state), and
/// throws those frames away. They never reach a client or the history; a `min_stage` copy of
/// an event read then is stored whole, not as a reference to its provisional original.
pub const PROVISIONAL_SEQNO_BASE: u64 = 1 << 62;

#[derive(Debug, Default)]
pub struct ServerSeqno {
    last: u64,
}

impl ServerSeqno {
    /// A fresh allocator; the first [`allocate`](Self::allocate) returns 1.
    pub fn new() -> ServerSeqno {
        ServerSeqno { last: 0 }
    }

    /// An allocator whose next seqno is `last + 1`. A test seam (e.g. for seqnos near the top
    /// of the range) and the way to continue a sequence; not for starting a new epoch.
    pub fn starting_after(last: u64) -> ServerSeqno {
        ServerSeqno { last }
    }

    /// Takes the next seqno.
    pub fn allocate(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// The last seqno handed out (the head), 0 before the first.
    pub fn head(&self) -> u64 {
        self.last
    }
}

/// Identifies one run of the server: seqnos from different epochs are unrelated.
///
/// Chosen once at start as the wall clock (`CLOCK_REALTIME`) in microseconds since the Unix
/// epoch. Clients compare it only for equality (a resume cursor is `(epoch, seqno)`), so a
/// clock step backwards between runs does no harm unless a restart lands on the very same
/// microsecond as an earlier start, which one process on one host cannot do. It is readable
/// by humans (it says when the server started) and fits a JSON number below 2^53 until the
/// year 2255, so JavaScript clients keep it exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch for a server starting now.
    pub fn from_clock() -> Epoch {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        // A clock before 1970 gives 0; still a valid (if unlucky) epoch. Never 0 otherwise.
        Epoch(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The epoch of a server started at `ns` nanoseconds since the Unix epoch (the same
    /// microsecond units as [`Epoch::from_clock`]; lets the start time and the epoch agree).
    pub const fn from_unix_nanos(ns: u64) -> Epoch {
        Epoch(ns / 1_000)
    }

    /// A given epoch (tests, or a value read back from a client cursor).
    pub const fn new(value: u64) -> Epoch {
        Epoch(value)
    }

    /// The number sent on the wire.
    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqnos_start_at_one_and_increase_by_one() {
        let mut s = ServerSeqno::new();
        assert_eq!(s.head(), 0);
        assert_eq!(s.allocate(), 1);
        assert_eq!(s.allocate(), 2);
        assert_eq!(s.head(), 2);
        let mut t = ServerSeqno::starting_after(41);
        assert_eq!(t.allocate(), 42);
    }

    #[test]
    fn epoch_from_clock_is_recent_microseconds() {
        // 2020-01-01 in µs; any sane clock is past it.
        assert!(Epoch::from_clock().get() > 1_577_836_800_000_000);
        assert_eq!(Epoch::new(7).get(), 7);
        assert_eq!(
            Epoch::from_unix_nanos(1_700_000_000_123_456_789).get(),
            1_700_000_000_123_456
        );
    }
}
