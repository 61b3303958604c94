//! What the tailer hands to the shards: pre-encoded frames plus the keys filters test.
//!
//! Made on the tailer core, once per event (or once per meta message); read-only afterwards
//! and shared by `Arc` with every shard, so the per-event cross-core cost is one `Arc` clone
//! per shard, never per client (docs/invariants.md#fast-1 to #fast-4).
//!
//! Invariants:
//! - `server_seqno` is unique for the life of a server epoch and strictly increasing in the
//!   order frames are pushed to a shard.
//! - `json` is never mutated after construction; a copy released at another stage is a new
//!   [`EncodedEvent`] with its own `server_seqno`.
//! - Nothing here is parsed again downstream: shards match on [`FilterKeys`] and copy bytes.

use std::ops::Range;
use std::sync::Arc;

use crate::model::kind::EventType;
use crate::model::stage::CommitStage;
use crate::model::types::{Address, Bytes32};

/// The most addresses one event names (caller + target, sender + to).
pub const MAX_EVENT_ADDRESSES: usize = 2;
/// The most topics a log carries (LOG0..LOG4).
pub const MAX_LOG_TOPICS: usize = 4;

/// Values a subscription filter may test, computed once by the tailer from the decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterKeys {
    pub event_type: EventType,
    /// Ring seqno of the owning BLOCK_START (flow tag `content_ext[0]`); 0 outside a block
    /// (BLOCK_QC, BLOCK_FINALIZED, BLOCK_VERIFIED).
    pub block_seqno: u64,
    /// Consensus block id of the owning proposal, or the one a consensus event names.
    pub block_id: Option<Bytes32>,
    pub block_number: Option<u64>,
    /// Transaction index within the block, for transaction-scoped events.
    pub txn_idx: Option<u32>,
    /// `TxnLog` index within its transaction.
    pub log_index: Option<u32>,
    /// Addresses the event names: log emitter; call caller and target; txn sender and `to`;
    /// account, storage, access-list and authorization addresses. Only `..address_count` valid.
    pub addresses: [Address; MAX_EVENT_ADDRESSES],
    pub address_count: u8,
    /// Log topics in position order; only `..topic_count` valid.
    pub topics: [Bytes32; MAX_LOG_TOPICS],
    pub topic_count: u8,
    /// First four bytes of a call frame's input (or a transaction's data), when at least 4.
    pub selector: Option<[u8; 4]>,
    /// A `TxnCallFrame` whose value is non-zero (the `NativeTransfer` pseudo-event).
    pub has_value: bool,
}

impl FilterKeys {
    /// Keys for an event of `event_type` with nothing else known yet.
    pub fn new(event_type: EventType) -> FilterKeys {
        FilterKeys {
            event_type,
            block_seqno: 0,
            block_id: None,
            block_number: None,
            txn_idx: None,
            log_index: None,
            addresses: [[0; 20]; MAX_EVENT_ADDRESSES],
            address_count: 0,
            topics: [[0; 32]; MAX_LOG_TOPICS],
            topic_count: 0,
            selector: None,
            has_value: false,
        }
    }

    /// Records an address the event names; extra ones past the capacity are ignored.
    pub fn push_address(&mut self, address: Address) {
        let n = usize::from(self.address_count);
        if n < MAX_EVENT_ADDRESSES {
            self.addresses[n] = address;
            self.address_count += 1;
        }
    }

    pub fn addresses(&self) -> &[Address] {
        &self.addresses[..usize::from(self.address_count)]
    }

    pub fn topics(&self) -> &[Bytes32] {
        &self.topics[..usize::from(self.topic_count)]
    }
}

/// One execution event, encoded once as the JSON event object of the wire envelope
/// (`{"event_name":…,"payload":{…},"seqno":…,"timestamp_ns":…}`), ready to be joined into
/// `Events` batches by any number of sessions.
#[derive(Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    pub server_seqno: u64,
    /// `server_seqno` of the live original this event is a `min_stage` copy of; equal to
    /// `server_seqno` for the original itself. Lets the history store a copy as a reference
    /// plus its stage instead of its bytes.
    pub origin_seqno: u64,
    /// The ring's sequence number (`seqno` in the JSON).
    pub ring_seqno: u64,
    /// The ring's `record_epoch_nanos` (`timestamp_ns` in the JSON), for latency measurement.
    pub timestamp_ns: u64,
    /// The `min_stage` stream this copy belongs to: `Proposed` for the live original, or the
    /// stage at which its block was released (a session gated at S takes only `gate == S`).
    pub gate: CommitStage,
    pub keys: FilterKeys,
    /// The event object, UTF-8 JSON.
    pub json: Box<[u8]>,
    /// Byte range in `json` of the `commit_stage` string value (without quotes), so a copy
    /// released at a later stage can be made by splicing instead of re-encoding.
    pub stage_span: Option<Range<u32>>,
}

impl EncodedEvent {
    /// Whether this is a `min_stage` copy (released at a later stage) rather than the live
    /// original.
    pub fn is_copy(&self) -> bool {
        self.origin_seqno != self.server_seqno
    }

    /// The copy of this event for the `stage` stream, with a new `server_seqno`: the JSON is
    /// the same except that the `commit_stage` value (at `stage_span`) names `stage`. An event
    /// without a `stage_span` (or with one outside its JSON) is copied unchanged.
    pub fn restaged(&self, stage: CommitStage, server_seqno: u64) -> EncodedEvent {
        let (json, stage_span) = match &self.stage_span {
            Some(span) => {
                let (json, span) = splice_stage(&self.json, span.clone(), stage);
                (json, Some(span))
            }
            None => (self.json.clone(), None),
        };
        EncodedEvent {
            server_seqno,
            origin_seqno: self.origin_seqno,
            ring_seqno: self.ring_seqno,
            timestamp_ns: self.timestamp_ns,
            gate: stage,
            keys: self.keys.clone(),
            json,
            stage_span,
        }
    }
}

/// Copies `json` with the `commit_stage` value at `span` replaced by `stage`; returns the copy
/// and the new span. A span that does not lie inside `json` yields an unchanged copy and the
/// same span.
pub fn splice_stage(json: &[u8], span: Range<u32>, stage: CommitStage) -> (Box<[u8]>, Range<u32>) {
    let (start, end) = (span.start as usize, span.end as usize);
    if start > end || end > json.len() {
        return (json.into(), span);
    }
    let name = stage.name().as_bytes();
    let mut out = Vec::with_capacity(json.len() - (end - start) + name.len());
    out.extend_from_slice(&json[..start]);
    out.extend_from_slice(name);
    out.extend_from_slice(&json[end..]);
    let new_end = span.start + name.len() as u32;
    (out.into_boxed_slice(), span.start..new_end)
}

/// Meta messages that are not ring events. Each names the subscription item that selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKind {
    Tps,
    ContentionData,
    TopAccesses,
    Lifecycle,
    /// Data was lost upstream of every session (ring lap, expired payload, writer restart,
    /// shard queue overflow): delivered to every session regardless of subscription.
    Gap,
}

/// A complete server frame, pre-encoded with its own `server_seqno`
/// (`{"server_seqno":N,"Lifecycle":{…}}`).
#[derive(Debug)]
pub struct MetaFrame {
    pub server_seqno: u64,
    pub kind: MetaKind,
    /// For `Lifecycle`: the stage the block moved to (lets `min_stage` sessions skip
    /// transitions they did not ask for, if they choose).
    pub stage: Option<CommitStage>,
    pub frame: Box<[u8]>,
}

/// What travels through a shard's SPSC queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<EncodedEvent>),
    Meta(Arc<MetaFrame>),
}

impl Outbound {
    pub fn server_seqno(&self) -> u64 {
        match self {
            Outbound::Event(e) => e.server_seqno,
            Outbound::Meta(m) => m.server_seqno,
        }
    }

    /// Bytes this frame pins in memory, for byte-bounded queues and stores.
    pub fn byte_len(&self) -> usize {
        match self {
            Outbound::Event(e) => e.json.len(),
            Outbound::Meta(m) => m.frame.len(),
        }
    }
}
