//! Compiled subscription filters: the per-event test every session runs on the hot path.
//!
//! Runs on shard cores, once per (event, session). Input: an [`EncodedEvent`]'s precomputed
//! [`FilterKeys`] and `gate`; output: deliver or not. Compiled once per subscribe from a
//! [`Subscription`]; matching never allocates, never looks at JSON
//! (docs/invariants.md#fast-4), and its cost is bounded by the subscription limits.
//!
//! Order of tests (cheapest and most selective first):
//! 1. the event-type bit in a `u32` mask;
//! 2. the `min_stage` gate: `e.gate == min_stage`, except events outside any block
//!    (`keys.block_seqno == 0`: BlockQC, BlockFinalized, BlockVerified), which exist only as
//!    their live original (gate `Proposed`) and are delivered at every gate;
//! 3. an event type named without specs passes; otherwise one of its specs (ORed) must have
//!    all its field tests (ANDed) hold. `TxnCallFrame` also passes through `NativeTransfer`
//!    when its value is non-zero.
//!
//! Value sets are sorted: up to [`LINEAR_MAX`] values are scanned; larger sets sit behind a
//! one-hash Bloom filter (a miss costs one cache line) and are binary-searched.

use crate::model::kind::{EventType, EVENT_TYPE_COUNT};
use crate::model::outbound::{EncodedEvent, FilterKeys, MetaFrame, MetaKind};
use crate::model::stage::CommitStage;
use crate::wire::subscription::channel::MetaMask;
use crate::wire::subscription::{FieldFilter, IndexRange, SpecTarget, Subscription, TopicSlot};

/// Sets of up to this many values are scanned; larger ones use a Bloom filter and a
/// binary search.
pub const LINEAR_MAX: usize = 8;

/// Index of the `NativeTransfer` spec range, after the 25 event types.
const NATIVE: usize = EVENT_TYPE_COUNT;

/// A sorted, deduplicated set of byte strings (addresses, topics, selectors).
///
/// Small sets are scanned. Larger ones are binary-searched behind a one-hash Bloom filter of
/// 8 bits per value: most tests are misses, and a miss then costs one cache line instead of
/// log2(n) scattered ones (a shard holds thousands of sessions' sets, far beyond its caches).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueSet<const N: usize> {
    values: Box<[[u8; N]]>,
    /// Empty for sets of at most [`LINEAR_MAX`] values.
    bloom: Box<[u64]>,
    /// `64 - log2(bloom bits)`: the bit index is the hash's top bits.
    shift: u32,
}

/// Mixes all bytes, so values with constant prefixes (precompiles, vanity addresses) still
/// spread over the Bloom filter.
#[inline]
fn mix<const N: usize>(x: &[u8; N]) -> u64 {
    let mut h = 0u64;
    for chunk in x.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

impl<const N: usize> ValueSet<N> {
    fn new(values: &[[u8; N]]) -> Self {
        let mut v = values.to_vec();
        v.sort_unstable();
        v.dedup();
        let (mut bloom, mut shift) = (Vec::new(), 0);
        if v.len() > LINEAR_MAX {
            let bits = (v.len() * 8).next_power_of_two().max(64);
            shift = 64 - bits.trailing_zeros();
            bloom = vec![0u64; bits / 64];
            for x in &v {
                let i = mix(x) >> shift;
                bloom[(i >> 6) as usize] |= 1 << (i & 63);
            }
        }
        ValueSet {
            values: v.into_boxed_slice(),
            bloom: bloom.into_boxed_slice(),
            shift,
        }
    }

    #[inline]
    fn contains(&self, x: &[u8; N]) -> bool {
        if self.bloom.is_empty() {
            return self.values.contains(x);
        }
        let i = mix(x) >> self.shift;
        let maybe = self
            .bloom
            .get((i >> 6) as usize)
            .is_some_and(|w| w & (1 << (i & 63)) != 0);
        maybe && self.values.binary_search(x).is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Any,
    AnyOf(ValueSet<32>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Address(ValueSet<20>),
    Topics(Box<[Slot]>),
    Selector(ValueSet<4>),
    TxnIndex(IndexRange),
    LogIndex(IndexRange),
}

impl Test {
    fn compile(f: &FieldFilter) -> Test {
        match f {
            FieldFilter::Address(v) => Test::Address(ValueSet::new(v)),
            FieldFilter::Topics(slots) => Test::Topics(
                slots
                    .iter()
                    .map(|s| match s {
                        TopicSlot::Any => Slot::Any,
                        TopicSlot::AnyOf(v) => Slot::AnyOf(ValueSet::new(v)),
                    })
                    .collect(),
            ),
            FieldFilter::Selector(v) => Test::Selector(ValueSet::new(v)),
            FieldFilter::TxnIndex(r) => Test::TxnIndex(*r),
            FieldFilter::LogIndex(r) => Test::LogIndex(*r),
        }
    }

    #[inline]
    fn holds(&self, k: &FilterKeys) -> bool {
        match self {
            Test::Address(set) => k.addresses().iter().any(|a| set.contains(a)),
            Test::Topics(slots) => {
                let topics = k.topics();
                slots.len() <= topics.len()
                    && slots.iter().zip(topics).all(|(slot, t)| match slot {
                        Slot::Any => true,
                        Slot::AnyOf(set) => set.contains(t),
                    })
            }
            Test::Selector(set) => k.selector.is_some_and(|s| set.contains(&s)),
            Test::TxnIndex(r) => k.txn_idx.is_some_and(|i| r.contains(i)),
            Test::LogIndex(r) => k.log_index.is_some_and(|i| r.contains(i)),
        }
    }
}

/// A subscription compiled for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    /// Types that can pass at all (named, spec'd, or `TxnCallFrame` via NativeTransfer).
    mask: u32,
    /// Types subscribed directly (named or spec'd), as opposed to via NativeTransfer.
    events: u32,
    /// Types that pass without spec tests.
    unfiltered: u32,
    /// `NativeTransfer` subscribed: valued call frames may pass through its specs.
    native: bool,
    /// `NativeTransfer` subscribed with no spec: every valued call frame passes.
    native_unfiltered: bool,
    meta: MetaMask,
    min_stage: CommitStage,
    /// Specs grouped by target: `specs[ranges[i].0..ranges[i].1]` for type code `i`, and
    /// index [`NATIVE`] for NativeTransfer. Each spec is its ANDed tests.
    specs: Box<[Box<[Test]>]>,
    ranges: [(u16, u16); EVENT_TYPE_COUNT + 1],
}

fn target_index(t: SpecTarget) -> usize {
    match t {
        SpecTarget::Event(t) => usize::from(t.code()),
        SpecTarget::NativeTransfer => NATIVE,
    }
}

impl CompiledFilter {
    /// Compiles a validated subscription.
    pub fn new(sub: &Subscription) -> CompiledFilter {
        let mut grouped: Vec<(usize, &[FieldFilter])> = sub
            .specs
            .iter()
            .map(|s| (target_index(s.target), s.fields.as_slice()))
            .collect();
        grouped.sort_by_key(|(i, _)| *i);
        let mut ranges = [(0u16, 0u16); EVENT_TYPE_COUNT + 1];
        let mut specs = Vec::with_capacity(grouped.len());
        for (pos, (idx, fields)) in grouped.iter().enumerate() {
            // Limits keep the spec count far below u16::MAX.
            let pos = pos as u16;
            let r = &mut ranges[*idx];
            if r.0 == r.1 {
                *r = (pos, pos);
            }
            r.1 = pos + 1;
            specs.push(fields.iter().map(Test::compile).collect());
        }
        let mut spec_types = 0u32;
        for t in EventType::ALL {
            let (a, b) = ranges[usize::from(t.code())];
            if a != b {
                spec_types |= t.bit();
            }
        }
        let (na, nb) = ranges[NATIVE];
        let mut mask = sub.events;
        if sub.native_transfer {
            mask |= EventType::TxnCallFrame.bit();
        }
        CompiledFilter {
            mask,
            events: sub.events,
            unfiltered: sub.events & !spec_types,
            native: sub.native_transfer,
            native_unfiltered: sub.native_transfer && na == nb,
            meta: sub.meta,
            min_stage: sub.min_stage,
            specs: specs.into_boxed_slice(),
            ranges,
        }
    }

    /// The gate this filter releases at.
    pub fn min_stage(&self) -> CommitStage {
        self.min_stage
    }

    /// Whether any raw event can pass (a meta-only session can skip events entirely).
    pub fn wants_events(&self) -> bool {
        self.mask != 0
    }

    #[inline]
    fn any_spec(&self, idx: usize, k: &FilterKeys) -> bool {
        let (a, b) = self.ranges[idx];
        self.specs[usize::from(a)..usize::from(b)]
            .iter()
            .any(|tests| tests.iter().all(|t| t.holds(k)))
    }

    /// Whether `e` goes to this session.
    #[inline]
    pub fn matches_event(&self, e: &EncodedEvent) -> bool {
        let k = &e.keys;
        let bit = k.event_type.bit();
        if self.mask & bit == 0 {
            return false;
        }
        let gate_ok = if k.block_seqno == 0 {
            e.gate == CommitStage::Proposed
        } else {
            e.gate == self.min_stage
        };
        if !gate_ok {
            return false;
        }
        if self.unfiltered & bit != 0 {
            return true;
        }
        let idx = usize::from(k.event_type.code());
        if self.events & bit != 0 && self.any_spec(idx, k) {
            return true;
        }
        self.native
            && k.event_type == EventType::TxnCallFrame
            && k.has_value
            && (self.native_unfiltered || self.any_spec(NATIVE, k))
    }

    /// Whether a meta frame goes to this session; `Gap` frames always do.
    #[inline]
    pub fn matches_meta(&self, m: &MetaFrame) -> bool {
        m.kind == MetaKind::Gap || self.meta.contains(m.kind)
    }
}

#[cfg(test)]
mod tests;
