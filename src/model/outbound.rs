//! What the tailer hands to the shards: pre-encoded frames plus the keys filters test.
//!
//! Made on the tailer core, once per event (or once per meta message); read-only afterwards
//! and shared by `Arc` with every shard, so the per-event cross-core cost is one `Arc` clone
//! per shard, never per client (docs/invariants.md#fast-1 to #fast-4).
//!
//! Invariants:
//! - `server_seqno` is unique for the life of a server epoch and strictly increasing in the
//!   order frames are pushed to a shard.
//! - An [`EventBody`] (keys, `json`) is never mutated after construction; a copy released at
//!   another stage is a new [`EncodedEvent`] header (its own `server_seqno` and `gate`) on
//!   the original's body (an `Arc`: nothing of the event copied); its stage name is spliced
//!   in when the bytes are written ([`EncodedEvent::json_parts`]), never stored.
//! - Nothing here is parsed again downstream: shards match on [`FilterKeys`] and copy bytes.

use std::ops::Range;
use std::sync::Arc;

use crate::model::kind::EventType;
use crate::model::rpc::RpcFrame;
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
/// `Events` batches by any number of sessions: a seqno and a `min_stage` stream in front of
/// an [`EventBody`] that the live original and its copies share.
///
/// A `min_stage` copy is this header alone (a seqno, a stage and a reference to the
/// original's body, 24 bytes): making one copies nothing of the event.
/// The body's fields read through `Deref` (`event.keys`, `event.json`).
///
/// The bytes as sent are [`json_parts`](Self::json_parts) (or [`write_json`](Self::write_json)),
/// not `json` alone: a `min_stage` copy shares its original's `json` and names its own stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    pub server_seqno: u64,
    /// The `min_stage` stream this copy belongs to: `Proposed` for the live original, or the
    /// stage at which its block was released (a session gated at S takes only `gate == S`).
    /// For a copy (`gate` other than `Proposed`) the sent JSON names this stage.
    pub gate: CommitStage,
    /// What the original and every copy of it share.
    pub body: Arc<EventBody>,
}

/// The part of an [`EncodedEvent`] its `min_stage` copies share with the live original.
#[derive(Debug, PartialEq, Eq)]
pub struct EventBody {
    /// `server_seqno` of the live original. Lets the history store a copy as a reference
    /// plus its stage instead of its bytes.
    pub origin_seqno: u64,
    /// The ring's sequence number (`seqno` in the JSON).
    pub ring_seqno: u64,
    /// The ring's `record_epoch_nanos` (`timestamp_ns` in the JSON), for latency measurement.
    pub timestamp_ns: u64,
    pub keys: FilterKeys,
    /// The live original's event object, UTF-8 JSON.
    pub json: Box<[u8]>,
    /// Byte range in `json` of the `commit_stage` string value (without quotes), where a copy
    /// released at a later stage splices its stage name.
    pub stage_span: Option<Range<u32>>,
}

impl std::ops::Deref for EncodedEvent {
    type Target = EventBody;

    fn deref(&self) -> &EventBody {
        &self.body
    }
}

impl EncodedEvent {
    /// The live original (`gate` `Proposed`) with `body`, whose `origin_seqno` is its own
    /// `server_seqno`.
    pub fn original(body: EventBody) -> EncodedEvent {
        EncodedEvent {
            server_seqno: body.origin_seqno,
            gate: CommitStage::Proposed,
            body: Arc::new(body),
        }
    }

    /// Whether this is a `min_stage` copy (released at a later stage) rather than the live
    /// original.
    pub fn is_copy(&self) -> bool {
        self.origin_seqno != self.server_seqno
    }

    /// The event object exactly as sent, in three pieces to concatenate: `json` up to the
    /// `commit_stage` value, the value, the rest. For an original (or an event without a
    /// valid `stage_span`) that is `[json, "", ""]`; for a copy the middle piece is its
    /// `gate`'s name. Sessions hand the pieces to one gather write without copying them.
    pub fn json_parts(&self) -> [&[u8]; 3] {
        let json = &self.json[..];
        if self.gate == CommitStage::Proposed {
            return [json, &[], &[]];
        }
        match &self.stage_span {
            Some(span) if span.start <= span.end && span.end as usize <= json.len() => [
                &json[..span.start as usize],
                self.gate.name().as_bytes(),
                &json[span.end as usize..],
            ],
            _ => [json, &[], &[]],
        }
    }

    /// Length of the event object as sent.
    pub fn json_len(&self) -> usize {
        self.json_parts().iter().map(|p| p.len()).sum()
    }

    /// Appends the event object as sent to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        for part in self.json_parts() {
            out.extend_from_slice(part);
        }
    }

    /// This event's copy for the `stage` stream, with its own `server_seqno`: the same
    /// shared body, the stage spliced in when written.
    pub fn restaged(&self, stage: CommitStage, server_seqno: u64) -> EncodedEvent {
        EncodedEvent {
            server_seqno,
            gate: stage,
            body: Arc::clone(&self.body),
        }
    }
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
    /// The old gateway's shape of the same frame, when it differs (a `ContentionData` without
    /// ringgate's added keys; a `Lifecycle` that names `Abandoned`, as `Rejected`). Sent to
    /// sessions that did not ask for ringgate's shapes (`extended=1`), so strict old decoders
    /// keep working (docs/protocol.md §9).
    pub old: Option<Box<[u8]>>,
}

/// What travels through a shard's SPSC queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Held inline, not behind its own `Arc`: the header is 24 bytes and cloning it is one
    /// count on the shared body, so an event costs no allocation besides its body and JSON,
    /// and a `min_stage` copy none at all.
    Event(EncodedEvent),
    Meta(Arc<MetaFrame>),
    /// A block at a commit state, for JSON-RPC subscribers only (never in an `Events` batch).
    Rpc(Arc<RpcFrame>),
}

impl Outbound {
    pub fn server_seqno(&self) -> u64 {
        match self {
            Outbound::Event(e) => e.server_seqno,
            Outbound::Meta(m) => m.server_seqno,
            Outbound::Rpc(r) => r.server_seqno,
        }
    }

    /// Bytes this frame pins in memory, for byte-bounded queues and stores.
    pub fn byte_len(&self) -> usize {
        match self {
            Outbound::Event(e) => e.json_len(),
            Outbound::Meta(m) => m.frame.len(),
            Outbound::Rpc(r) => r.byte_len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kind::EventType;

    fn event(json: &str, span: Option<Range<u32>>) -> EncodedEvent {
        EncodedEvent::original(EventBody {
            origin_seqno: 5,
            ring_seqno: 5,
            timestamp_ns: 0,
            keys: FilterKeys::new(EventType::TxnLog),
            json: json.as_bytes().into(),
            stage_span: span,
        })
    }

    fn sent(e: &EncodedEvent) -> String {
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(out.len(), e.json_len());
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn a_copy_shares_the_original_bytes_and_names_its_own_stage_when_written() {
        let json = r#"{"commit_stage":"Proposed","seqno":1}"#;
        let start = json.find("Proposed").unwrap_or(0) as u32;
        let original = event(json, Some(start..start + 8));
        assert_eq!(sent(&original), json);
        let copy = original.restaged(CommitStage::Finalized, 9);
        assert!(
            Arc::ptr_eq(&copy.body, &original.body),
            "nothing of the event copied"
        );
        assert_eq!((copy.server_seqno, copy.gate), (9, CommitStage::Finalized));
        assert_eq!(sent(&copy), r#"{"commit_stage":"Finalized","seqno":1}"#);
        // A copy of a copy names the newer stage.
        let again = copy.restaged(CommitStage::Voted, 10);
        assert_eq!(sent(&again), r#"{"commit_stage":"Voted","seqno":1}"#);
        // No span, or a span outside the JSON: sent unchanged, no panic.
        let bad = event("{}", Some(1..99)).restaged(CommitStage::Voted, 2);
        assert_eq!(sent(&bad), "{}");
        let none = event("{}", None).restaged(CommitStage::Voted, 2);
        assert_eq!(sent(&none), "{}");
    }
}
