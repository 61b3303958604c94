//! Word-sized access to a mapped ring: the only place that dereferences ring memory.
//!
//! Runs on whichever core owns the [`Ring`](super::Ring) or [`RingWriter`](super::RingWriter)
//! (the tailer core in production). Input: a memmap2 [`MmapRaw`] of the whole ring file (or of
//! an anonymous copy of a snapshot). Output: `u64` loads/stores and byte copies at checked
//! offsets.
//!
//! # Why every access is an atomic `u64`
//!
//! The ring is memory that another process (the execution daemon, or our own writer through a
//! second mapping) writes while we read it. Rust references (`&[u8]`) promise the bytes do not
//! change, which is false here, so this module never creates a reference into the mapping.
//! Every access is an atomic load or store of one aligned `u64`
//! (`AtomicU64::from_ptr`): on x86-64 a relaxed atomic load is a plain `mov`, so this costs
//! nothing, and a race with a concurrent writer is not undefined behaviour: it can only produce
//! stale or mixed *values*, which the seqlock (descriptor seqno re-check) and the payload window
//! check detect one level up. All ring offsets we touch are 8-aligned: descriptors are 64 B
//! at 64-aligned offsets, header fields are u64 at fixed aligned offsets, and payloads start at
//! 16-aligned virtual offsets in a power-of-two buffer (the reader refuses others as malformed
//! before calling in here).
//!
//! # Invariants
//!
//! - The mapping covers `[0, len)` for its whole life (memmap2 keeps it mapped until drop). If
//!   another process *truncates* the file underneath us, an access faults with SIGBUS; the
//!   daemon never shrinks a ring, and this is the same exposure every mmap reader has.
//! - Offsets are checked against `len` and alignment by `assert!`: a failure is a bug in the
//!   caller's arithmetic (all ring-derived offsets are masked with validated sizes first), never
//!   a consequence of ring contents.
//! - Never: hold a pointer past the region's life, write through a read-only region.

use memmap2::MmapRaw;
use std::sync::atomic::{AtomicU64, Ordering};

/// A mapped ring region accessed only by aligned atomic words.
#[derive(Debug)]
pub(crate) struct Region {
    raw: MmapRaw,
    writable: bool,
}

impl Region {
    /// Wraps a read-only mapping.
    pub(crate) fn read_only(raw: MmapRaw) -> Region {
        Region {
            raw,
            writable: false,
        }
    }

    /// Wraps a mapping created with `PROT_READ|PROT_WRITE`.
    pub(crate) fn writable(raw: MmapRaw) -> Region {
        Region {
            raw,
            writable: true,
        }
    }

    /// The atomic word at `off`, after checking bounds and alignment.
    fn word(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off.checked_add(8).is_some_and(|end| end <= self.raw.len()),
            "ring word offset {off} out of the {}-byte mapping or misaligned",
            self.raw.len()
        );
        // SAFETY: `off` is 8-aligned and `off + 8 <= len` (asserted above), and the mapping
        // base is page-aligned, so the pointer is a valid, aligned `u64` location inside a
        // mapping that lives as long as `&self`. The memory is only ever accessed through
        // atomics by this crate (no `&[u8]` into it exists), so treating it as `AtomicU64`
        // cannot conflict with a non-atomic Rust access; writes by another process are outside
        // the Rust memory model and at worst give us stale values, which the callers'
        // seqlock and window checks reject. Atomic *loads* from a read-only mapping are
        // permitted (plain `mov` on x86-64; no read-modify-write is issued on read-only
        // regions, see `store`/`fetch_add` which assert `writable`).
        unsafe { AtomicU64::from_ptr(self.raw.as_mut_ptr().add(off).cast::<u64>()) }
    }

    /// Atomic load of the u64 at `off`.
    #[inline]
    pub(crate) fn load(&self, off: usize, order: Ordering) -> u64 {
        self.word(off).load(order)
    }

    /// Atomic store of the u64 at `off` (writable regions only).
    #[inline]
    pub(crate) fn store(&self, off: usize, value: u64, order: Ordering) {
        assert!(self.writable, "store into a read-only ring mapping");
        self.word(off).store(value, order);
    }

    /// Atomic fetch-add on the u64 at `off` (writable regions only); returns the old value.
    #[inline]
    pub(crate) fn fetch_add(&self, off: usize, delta: u64, order: Ordering) -> u64 {
        assert!(self.writable, "fetch_add on a read-only ring mapping");
        self.word(off).fetch_add(delta, order)
    }

    /// Copies `dst.len()` bytes starting at the 8-aligned `off` into `dst` with relaxed word
    /// loads. The last word is read whole, so `off + round_up(dst.len(), 8)` must be mapped.
    pub(crate) fn copy_out(&self, off: usize, dst: &mut [u8]) {
        let mut chunks = dst.chunks_exact_mut(8);
        let mut at = off;
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.load(at, Ordering::Relaxed).to_le_bytes());
            at += 8;
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let w = self.load(at, Ordering::Relaxed).to_le_bytes();
            tail.copy_from_slice(&w[..tail.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(len: usize) -> Region {
        let raw = MmapRaw::from(memmap2::MmapMut::map_anon(len).unwrap());
        Region::writable(raw)
    }

    #[test]
    fn copy_out_reads_unaligned_lengths_from_whole_words() {
        let r = anon(4096);
        r.store(
            56,
            u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
            Ordering::Relaxed,
        );
        r.store(
            64,
            u64::from_le_bytes([9, 10, 11, 12, 13, 14, 15, 16]),
            Ordering::Relaxed,
        );
        let mut back = [0u8; 13];
        r.copy_out(56, &mut back);
        assert_eq!(back.to_vec(), (1..=13).collect::<Vec<u8>>());
        assert_eq!(r.fetch_add(56, 1, Ordering::Relaxed), 0x0807_0605_0403_0201);
    }

    #[test]
    #[should_panic(expected = "out of the")]
    fn out_of_bounds_word_is_refused() {
        anon(4096).load(4096, Ordering::Relaxed);
    }
}
