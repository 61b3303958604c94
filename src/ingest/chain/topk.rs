//! Heavy hitters with O(1) work per access: Space-Saving (Metwally et al. 2005) on the
//! Stream-Summary structure, plus the `TopAccesses` counters built on it.
//!
//! Runs on the tailer core, once per ACCOUNT_ACCESS / STORAGE_ACCESS. Each offer is one hash
//! lookup plus a constant number of linked-list moves: counters live in buckets of equal
//! count, buckets are linked in ascending count order, so incrementing moves a counter to
//! the next bucket and evicting takes any counter of the minimum bucket. No scan, no
//! decrement-all (the old gateway's Misra–Gries cost O(capacity) per miss).
//!
//! Guarantees for a stream of `N` offers and capacity `m`: every key with true count
//! `> N / m` is monitored; for a monitored key `count − error ≤ true ≤ count`.
//!
//! Never: allocate per offer once `capacity` counters exist (buckets are recycled).

use std::hash::Hash;

use crate::ingest::chain::input::ChainInput;
use crate::ingest::chain::key_hash::{KeyMap, SeededKeys};

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node<K> {
    key: K,
    count: u64,
    error: u64,
    bucket: u32,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u64,
    head: u32,
    prev: u32,
    next: u32,
}

/// One reported heavy hitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<K> {
    pub key: K,
    /// Estimated count (an over-estimate by at most `error`).
    pub count: u64,
    /// Maximum over-estimation.
    pub error: u64,
}

/// Space-Saving counter set of fixed capacity.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    capacity: usize,
    nodes: Vec<Node<K>>,
    buckets: Vec<Bucket>,
    free_buckets: Vec<u32>,
    /// Lowest and highest count buckets.
    min: u32,
    max: u32,
    index: KeyMap<K, u32>,
    offers: u64,
}

fn idx(i: u32) -> usize {
    i as usize
}

impl<K: Hash + Eq + Copy> SpaceSaving<K> {
    /// Monitors at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> SpaceSaving<K> {
        let capacity = capacity.clamp(1, (NIL - 1) as usize);
        SpaceSaving {
            capacity,
            nodes: Vec::with_capacity(capacity),
            buckets: Vec::new(),
            free_buckets: Vec::new(),
            min: NIL,
            max: NIL,
            index: KeyMap::with_capacity_and_hasher(capacity, SeededKeys::default()),
            offers: 0,
        }
    }

    /// Counts one occurrence of `key`.
    pub fn offer(&mut self, key: K) {
        self.offers += 1;
        if let Some(&n) = self.index.get(&key) {
            self.increment(n);
        } else if self.nodes.len() < self.capacity {
            let n = self.nodes.len() as u32;
            self.nodes.push(Node {
                key,
                count: 0,
                error: 0,
                bucket: NIL,
                prev: NIL,
                next: NIL,
            });
            self.index.insert(key, n);
            // Count 0 → 1: join the bucket of ones at the front, or make it.
            let b = if self.min != NIL && self.buckets[idx(self.min)].count == 1 {
                self.min
            } else {
                self.new_bucket(1, NIL, self.min)
            };
            self.nodes[idx(n)].count = 1;
            self.link(n, b);
        } else {
            // Replace a counter of the minimum bucket; it inherits the minimum as error.
            let n = self.buckets[idx(self.min)].head;
            let old = self.nodes[idx(n)].key;
            self.index.remove(&old);
            self.index.insert(key, n);
            let node = &mut self.nodes[idx(n)];
            node.key = key;
            node.error = node.count;
            self.increment(n);
        }
    }

    fn increment(&mut self, n: u32) {
        let b = self.nodes[idx(n)].bucket;
        let c = self.buckets[idx(b)].count;
        let nb = self.buckets[idx(b)].next;
        let alone = self.buckets[idx(b)].head == n && self.nodes[idx(n)].next == NIL;
        if nb != NIL && self.buckets[idx(nb)].count == c + 1 {
            self.unlink(n);
            self.link(n, nb);
        } else if alone {
            // Next bucket (if any) counts more than c + 1: the bucket itself moves up.
            self.buckets[idx(b)].count = c + 1;
        } else {
            let t = self.new_bucket(c + 1, b, nb);
            self.unlink(n);
            self.link(n, t);
        }
        self.nodes[idx(n)].count = c + 1;
    }

    /// Makes a bucket of `count` between `prev` and `next` (either may be NIL).
    fn new_bucket(&mut self, count: u64, prev: u32, next: u32) -> u32 {
        let bucket = Bucket {
            count,
            head: NIL,
            prev,
            next,
        };
        let b = match self.free_buckets.pop() {
            Some(b) => {
                self.buckets[idx(b)] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                (self.buckets.len() - 1) as u32
            }
        };
        if prev == NIL {
            self.min = b;
        } else {
            self.buckets[idx(prev)].next = b;
        }
        if next == NIL {
            self.max = b;
        } else {
            self.buckets[idx(next)].prev = b;
        }
        b
    }

    fn link(&mut self, n: u32, b: u32) {
        let head = self.buckets[idx(b)].head;
        {
            let node = &mut self.nodes[idx(n)];
            node.bucket = b;
            node.prev = NIL;
            node.next = head;
        }
        if head != NIL {
            self.nodes[idx(head)].prev = n;
        }
        self.buckets[idx(b)].head = n;
    }

    /// Takes `n` out of its bucket, freeing the bucket when it empties.
    fn unlink(&mut self, n: u32) {
        let Node {
            bucket, prev, next, ..
        } = self.nodes[idx(n)];
        if prev == NIL {
            self.buckets[idx(bucket)].head = next;
        } else {
            self.nodes[idx(prev)].next = next;
        }
        if next != NIL {
            self.nodes[idx(next)].prev = prev;
        }
        if self.buckets[idx(bucket)].head == NIL {
            let Bucket { prev, next, .. } = self.buckets[idx(bucket)];
            if prev == NIL {
                self.min = next;
            } else {
                self.buckets[idx(prev)].next = next;
            }
            if next == NIL {
                self.max = prev;
            } else {
                self.buckets[idx(next)].prev = prev;
            }
            self.free_buckets.push(bucket);
        }
    }

    /// The `k` highest counters, highest first (ties in no particular order).
    pub fn top(&self, k: usize) -> Vec<Counted<K>> {
        let mut v = Vec::with_capacity(k.min(self.nodes.len()));
        let mut b = self.max;
        while b != NIL && v.len() < k {
            let mut n = self.buckets[idx(b)].head;
            while n != NIL && v.len() < k {
                let node = &self.nodes[idx(n)];
                v.push(Counted {
                    key: node.key,
                    count: node.count,
                    error: node.error,
                });
                n = node.next;
            }
            b = self.buckets[idx(b)].prev;
        }
        v
    }

    /// The estimate for `key`, if monitored.
    pub fn get(&self, key: &K) -> Option<Counted<K>> {
        let n = self.nodes.get(idx(*self.index.get(key)?))?;
        Some(Counted {
            key: n.key,
            count: n.count,
            error: n.error,
        })
    }

    /// Offers since the last reset.
    pub fn offers(&self) -> u64 {
        self.offers
    }

    /// Keys monitored.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing was offered since the last reset.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Forgets every counter (keeps allocations).
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.buckets.clear();
        self.free_buckets.clear();
        self.index.clear();
        self.min = NIL;
        self.max = NIL;
        self.offers = 0;
    }
}

/// A storage slot: contract address and key.
pub type SlotKey = ([u8; 20], [u8; 32]);

/// Configuration of [`TopAccesses`]. Defaults: 1,000 counters per table, top 10 reported,
/// 5-minute tumbling window of ring time (as the old gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopAccessesConfig {
    pub capacity: usize,
    pub report: usize,
    pub window_ns: u64,
}

impl Default for TopAccessesConfig {
    fn default() -> Self {
        TopAccessesConfig {
            capacity: 1000,
            report: 10,
            window_ns: 300_000_000_000,
        }
    }
}

/// The body of a `TopAccesses` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopAccessesReport {
    pub account: Vec<Counted<[u8; 20]>>,
    pub storage: Vec<Counted<SlotKey>>,
}

/// Most accessed accounts and storage slots over a tumbling window of ring time.
#[derive(Debug)]
pub struct TopAccesses {
    config: TopAccessesConfig,
    accounts: SpaceSaving<[u8; 20]>,
    storage: SpaceSaving<SlotKey>,
    window_start_ns: Option<u64>,
}

impl TopAccesses {
    /// Empty counters.
    pub fn new(config: TopAccessesConfig) -> TopAccesses {
        TopAccesses {
            config,
            accounts: SpaceSaving::new(config.capacity),
            storage: SpaceSaving::new(config.capacity),
            window_start_ns: None,
        }
    }

    /// Counts an access; at BLOCK_END returns the report to send (`TopAccesses` frames go
    /// out once per executed block, as before). The window restarts when an input's ring
    /// time is `window_ns` past the window start (both tables are cleared).
    pub fn observe(&mut self, input: &ChainInput) -> Option<TopAccessesReport> {
        let now = input.timestamp_ns();
        match self.window_start_ns {
            Some(start) if now.saturating_sub(start) < self.config.window_ns => {}
            _ => {
                self.accounts.clear();
                self.storage.clear();
                self.window_start_ns = Some(now);
            }
        }
        match *input {
            ChainInput::AccountAccess { address, .. } => self.accounts.offer(address),
            ChainInput::StorageAccess {
                address,
                key,
                transient: false,
                ..
            } => self.storage.offer((address, key)),
            ChainInput::BlockEnd { .. } => return Some(self.report()),
            _ => {}
        }
        None
    }

    /// The current top accounts and slots.
    pub fn report(&self) -> TopAccessesReport {
        TopAccessesReport {
            account: self.accounts.top(self.config.report),
            storage: self.storage.top(self.config.report),
        }
    }

    /// Ring time at which the current window began.
    pub fn window_start_ns(&self) -> Option<u64> {
        self.window_start_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity_and_ordered() {
        let mut s = SpaceSaving::new(10);
        for (k, n) in [(1u32, 5u64), (2, 3), (3, 7), (4, 1)] {
            for _ in 0..n {
                s.offer(k);
            }
        }
        let top = s.top(3);
        let got: Vec<(u32, u64)> = top.iter().map(|c| (c.key, c.count)).collect();
        assert_eq!(got, [(3, 7), (1, 5), (2, 3)]);
        assert!(top.iter().all(|c| c.error == 0));
    }

    #[test]
    fn eviction_takes_the_minimum_and_keeps_error() {
        let mut s = SpaceSaving::new(2);
        s.offer(1u8);
        s.offer(1);
        s.offer(2);
        s.offer(3); // replaces 2 (count 1): 3 has count 2, error 1
        assert_eq!(s.get(&2), None);
        assert_eq!(
            s.get(&3),
            Some(Counted {
                key: 3,
                count: 2,
                error: 1
            })
        );
        assert_eq!(s.len(), 2);
        s.clear();
        assert!(s.is_empty());
        s.offer(9);
        assert_eq!(s.top(5).len(), 1);
    }
}
