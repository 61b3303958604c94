//! The per-event pipeline on the tailer core: decode → flow context → JSON → filter keys.
//!
//! Input: a descriptor and its payload bytes (already copied or checked by the ring reader).
//! Output: [`Encoded`]: the immutable JSON object (one `Box<[u8]>`, the only allocation per
//! event), the `commit_stage` span for later restaging, and the [`FilterKeys`]. The decoded
//! event is lent to a caller closure (the chain tracker) before it goes out of scope.
//!
//! Invariants: each event is decoded and serialized exactly once; undecodable payloads are
//! counted by kind and returned as errors, never a panic; the JSON scratch buffer is reused.

use std::ops::Range;

use crate::ingest::event::decode::{decode, DecodeError, DecodeFailures};
use crate::ingest::event::flow::{EventContext, FlowConfig, FlowTracker};
use crate::ingest::event::json::{initial_stage, write_event, HexMemo};
use crate::ingest::event::keys::filter_keys;
use crate::ingest::event::payload::ExecEvent;
use crate::ingest::ring::layout::Descriptor;
use crate::model::outbound::FilterKeys;
use crate::model::stage::CommitStage;

/// One encoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The event object, UTF-8 JSON (shared as is by the event's `min_stage` copies).
    pub json: Box<[u8]>,
    /// The stage written into `commit_stage`, if the envelope has one.
    pub stage: Option<CommitStage>,
    /// Byte range of the `commit_stage` value in `json` (where a `min_stage` copy names its stage: [`crate::model::outbound::EncodedEvent::json_parts`]).
    pub stage_span: Option<Range<u32>>,
    pub keys: FilterKeys,
}

/// Decoder + flow tracker + JSON writer with a reused scratch buffer.
#[derive(Debug)]
pub struct Encoder {
    flow: FlowTracker,
    scratch: Vec<u8>,
    memo: HexMemo,
    failures: DecodeFailures,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new(FlowConfig::default())
    }
}

impl Encoder {
    /// An encoder whose flow tracker has the given bounds.
    pub fn new(flow: FlowConfig) -> Encoder {
        Encoder {
            flow: FlowTracker::new(flow),
            scratch: Vec::with_capacity(4096),
            memo: HexMemo::default(),
            failures: DecodeFailures::default(),
        }
    }

    /// Decodes, tracks and encodes one event.
    pub fn encode(&mut self, desc: &Descriptor, payload: &[u8]) -> Result<Encoded, DecodeError> {
        self.encode_with(desc, payload, |_, _| ()).map(|(e, ())| e)
    }

    /// As [`Encoder::encode`], and also lends the decoded event and its context to `f` (the
    /// chain tracker's hook), returning what `f` returns.
    pub fn encode_with<R>(
        &mut self,
        desc: &Descriptor,
        payload: &[u8],
        f: impl FnOnce(&ExecEvent<'_>, &EventContext) -> R,
    ) -> Result<(Encoded, R), DecodeError> {
        // Borrowed in place: the decoded event is large (BLOCK_START is ~560 bytes) and is
        // never moved out of the decoder's result.
        let decoded = decode(desc.event_type, payload);
        let event = match &decoded {
            Ok(e) => e,
            Err(e) => {
                self.failures.record(e);
                return Err(*e);
            }
        };
        let ctx = self.flow.observe(desc, event);
        let stage = initial_stage(event.event_type(), &ctx);
        self.scratch.clear();
        self.scratch.reserve(512 + 2 * payload.len());
        let stage_span = write_event(&mut self.scratch, &mut self.memo, desc, &ctx, event, stage);
        let keys = filter_keys(event, &ctx);
        let r = f(event, &ctx);
        Ok((
            Encoded {
                json: self.scratch.as_slice().into(),
                stage,
                stage_span,
                keys,
            },
            r,
        ))
    }

    /// Decode failures so far, by kind.
    pub fn failures(&self) -> &DecodeFailures {
        &self.failures
    }

    /// Forgets flow state (after a ring gap or a writer restart); counters are kept.
    pub fn reset_flow(&mut self) {
        self.flow.reset();
    }
}
