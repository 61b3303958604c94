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

    /// The `count` atomic words starting at `off`, after checking bounds and alignment once.
    fn words(&self, off: usize, count: usize) -> &[AtomicU64] {
        let end = count.checked_mul(8).and_then(|n| off.checked_add(n));
        assert!(
            off.is_multiple_of(8) && end.is_some_and(|end| end <= self.raw.len()),
            "ring words [{off}, +{count}×8) out of the {}-byte mapping or misaligned",
            self.raw.len()
        );
        // SAFETY: `off` is 8-aligned and `off + 8·count <= len` (asserted above), and the
        // mapping base is page-aligned, so the pointer is a valid, aligned run of `count` u64
        // locations inside a mapping that lives as long as `&self` (`AtomicU64` has the layout
        // of `u64`). The memory is only ever accessed through atomics by this crate (no
        // `&[u8]` into it exists), so viewing it as `[AtomicU64]` cannot conflict with a
        // non-atomic Rust access; writes by another process are outside the Rust memory model
        // and at worst give us stale values, which the callers' seqlock and window checks
        // reject. Atomic *loads* from a read-only mapping are permitted (plain `mov` on
        // x86-64); read-modify-writes and stores are only issued on writable regions (`store`,
        // `fetch_add` and `copy_in` assert `writable`).
        unsafe {
            std::slice::from_raw_parts(
                self.raw
                    .as_mut_ptr()
                    .add(off)
                    .cast::<AtomicU64>()
                    .cast_const(),
                count,
            )
        }
    }

    /// The atomic word at `off`.
    fn word(&self, off: usize) -> &AtomicU64 {
        &self.words(off, 1)[0]
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
        let words = self.words(off, dst.len().div_ceil(8));
        let mut chunks = dst.chunks_exact_mut(8);
        // Fixed-size chunks compile to plain 8-byte moves (no memcpy call per word).
        for (chunk, w) in (&mut chunks).zip(words) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if let Some(w) = words.last().filter(|_| !tail.is_empty()) {
            let bytes = w.load(Ordering::Relaxed).to_le_bytes();
            tail.copy_from_slice(&bytes[..tail.len()]);
        }
    }

    /// Writes `src` at the 8-aligned `off` with relaxed word stores, zero-filling up to
    /// `padded_len` bytes (a multiple of 8, at least `src.len()`): payload padding must be zero.
    pub(crate) fn copy_in(&self, off: usize, src: &[u8], padded_len: usize) {
        assert!(self.writable, "copy into a read-only ring mapping");
        assert!(padded_len >= src.len() && padded_len.is_multiple_of(8));
        let words = self.words(off, padded_len / 8);
        let mut chunks = src.chunks_exact(8);
        let full = src.len() / 8;
        for (w, c) in words.iter().zip(&mut chunks) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(c);
            w.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        let tail = chunks.remainder();
        for (i, w) in words.iter().enumerate().skip(full) {
            let mut bytes = [0u8; 8];
            if i == full {
                bytes[..tail.len()].copy_from_slice(tail);
            }
            w.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
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
    fn copy_in_pads_with_zeros_and_copy_out_reads_unaligned_lengths() {
        let r = anon(4096);
        r.store(72, u64::MAX, Ordering::Relaxed);
        r.store(80, u64::MAX, Ordering::Relaxed);
        let src: Vec<u8> = (1..=13).collect();
        r.copy_in(64, &src, 24);
        let mut back = [0u8; 13];
        r.copy_out(64, &mut back);
        assert_eq!(back.to_vec(), src);
        assert_eq!(
            r.load(72, Ordering::Relaxed) >> 40,
            0,
            "tail of the last word zeroed"
        );
        assert_eq!(r.load(80, Ordering::Relaxed), 0, "padding word zeroed");
        assert_eq!(r.load(88, Ordering::Relaxed), 0);
        assert_eq!(r.fetch_add(64, 1, Ordering::Relaxed), 0x0807_0605_0403_0201);
    }

    #[test]
    #[should_panic(expected = "out of the")]
    fn out_of_bounds_word_is_refused() {
        anon(4096).load(4096, Ordering::Relaxed);
    }
}
