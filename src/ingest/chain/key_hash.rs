//! The hasher of the chain stage's per-access maps (contention, top accesses): a seeded
//! folded multiply over 8-byte words, for keys that are addresses, storage slots and small
//! integers.
//!
//! Why not the standard `RandomState` (SipHash-1-3): the contention tracker does two to
//! five map operations per STORAGE_ACCESS and the top-accesses counters one or two, on 20-
//! and 52-byte keys; SipHash was ~6 % of the tailer's samples on the real snapshot
//! (docs/benchmarks.md, "After the second round of hot-path fixes"). A folded multiply (the
//! `foldhash`/`wyhash` construction) costs one 64×64→128-bit multiply per word.
//!
//! Keys come from the chain, so anyone can choose them: each map gets its own random seed
//! (from the standard library's per-process randomness), so colliding keys cannot be
//! prepared in advance. This is the same minimal flooding resistance `foldhash` offers, not
//! SipHash's; the maps are per block and bounded by the block's own accesses.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A map keyed by chain data, hashed by [`KeyHasher`].
pub type KeyMap<K, V> = HashMap<K, V, SeededKeys>;
/// A set of chain data, hashed by [`KeyHasher`].
pub type KeySet<K> = HashSet<K, SeededKeys>;

/// An odd 64-bit constant from the digits of pi (as in `foldhash`).
const MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

/// 64×64 → 128-bit multiply, the two halves xored.
#[inline]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Builds [`KeyHasher`]s with one random seed per map.
#[derive(Debug, Clone, Copy)]
pub struct SeededKeys {
    seed: u64,
}

impl Default for SeededKeys {
    fn default() -> SeededKeys {
        SeededKeys {
            seed: RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl BuildHasher for SeededKeys {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            state: self.seed,
            seed: self.seed,
        }
    }
}

/// Folds each 8-byte word (a shorter tail zero-padded) into the state with one multiply.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher {
    state: u64,
    seed: u64,
}

impl KeyHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, MULTIPLIER);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.mix(u64::from_le_bytes(b));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut b = [0u8; 8];
            b[..tail.len()].copy_from_slice(tail);
            // The length keeps "ab" and "ab\0" apart.
            self.mix(u64::from_le_bytes(b) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash<T: std::hash::Hash>(b: &SeededKeys, v: T) -> u64 {
        b.hash_one(v)
    }

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_apart() {
        let b = SeededKeys::default();
        let addr = [7u8; 20];
        assert_eq!(hash(&b, (addr, [1u8; 32])), hash(&b, (addr, [1u8; 32])));
        let mut other = [1u8; 32];
        other[31] = 2;
        assert_ne!(hash(&b, (addr, [1u8; 32])), hash(&b, (addr, other)));
        assert_ne!(hash(&b, (1u32, 2u32)), hash(&b, (2u32, 1u32)));
        assert_ne!(hash(&b, &b"ab"[..]), hash(&b, &b"ab\0"[..]));
    }

    #[test]
    fn maps_get_their_own_seed() {
        let (a, b) = (SeededKeys::default(), SeededKeys::default());
        assert_ne!(hash(&a, [3u8; 20]), hash(&b, [3u8; 20]));
    }

    #[test]
    fn sequential_keys_fill_the_buckets_evenly() {
        // 4,096 slot indices, as the contention tracker makes them, into 256 buckets by the
        // low bits (what hashbrown uses): no bucket far above the mean of 16.
        let b = SeededKeys::default();
        let mut buckets = [0u32; 256];
        for slot in 0..4096u32 {
            buckets[(hash(&b, (slot, 3u32)) & 255) as usize] += 1;
        }
        let worst = buckets.iter().max().copied().unwrap_or(0);
        assert!(worst < 40, "worst bucket {worst} of mean 16");
    }
}
