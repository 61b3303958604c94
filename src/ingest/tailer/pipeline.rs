//! The tailer's per-event pipeline: encode once, derive the chain fact, run the chain stage
//! (which stamps every `server_seqno`), and turn upstream losses into `Gap` frames.
//!
//! Runs on the tailer core only, called by [`crate::ingest::tailer`]'s read loop. Input: a ring
//! descriptor and its payload, or a [`Loss`]; between them, requests to release a bounded
//! number of queued `min_stage` copies ([`EventPipeline::release`]). Output: [`Outbound`] frames
//! appended in seqno order. Runtime-free (no glommio, no atomics): the loop does the pushing and counting.
//!
//! Invariants: seqnos come from one [`ServerSeqno`], in emission order; the block being
//! executed when data is lost is dropped from the stage gate and named in the `Gap`, so no
//! `min_stage` stream receives a partial block.
//!
//! Never: panic on ring bytes (undecodable payloads are `Err`), or emit out of seqno order.

use std::ops::Range;
use std::sync::Arc;

use crate::handoff::published::ChainBodies;
use crate::ingest::chain::from_event::chain_input;
use crate::ingest::chain::input::{BlockId, ChainInput};
use crate::ingest::chain::pipeline::{ChainConfig, ChainPipeline};
use crate::ingest::event::decode::DecodeError;
use crate::ingest::event::encoder::Encoder;
use crate::ingest::ring::layout::Descriptor;
use crate::ingest::rpc::RpcAssembler;
use crate::model::gap::{Gap, GapReason};
use crate::model::outbound::{EventBody, Outbound};
use crate::model::seqno::ServerSeqno;
use crate::wire::protocol::messages::gap_frame;

/// Data lost upstream of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// The writer lapped the tailer: these ring seqnos were never read.
    RingLap { missing: Range<u64> },
    /// This event's payload was overwritten before it was copied.
    Expired { ring_seqno: u64 },
    /// The writer restarted (new ring file); events in between are unknown.
    WriterRestart,
}

impl Loss {
    /// The `reason` its `Gap` frame carries.
    pub fn reason(&self) -> GapReason {
        match self {
            Loss::RingLap { .. } => GapReason::RingLapped,
            Loss::Expired { .. } => GapReason::PayloadExpired,
            Loss::WriterRestart => GapReason::WriterRestart,
        }
    }
}

/// What one event changed, so the tailer knows whether to republish the REST bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Only the event itself went out.
    EventOnly,
    /// A meta frame went out (lifecycle transition, TPS, contention, top accesses, gap):
    /// block-level state changed.
    BlockLevel,
}

/// The block being executed: opened by BLOCK_START, closed by BLOCK_END / BLOCK_REJECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenBlock {
    block_seqno: u64,
    number: u64,
    id: BlockId,
}

/// Everything the tailer does with one event: encode once, derive the chain fact, run the
/// chain stage (which stamps seqnos), and announce losses.
#[derive(Debug)]
pub struct EventPipeline {
    encoder: Encoder,
    chain: ChainPipeline,
    seqnos: ServerSeqno,
    open: Option<OpenBlock>,
    /// JSON-RPC notification bodies and their commit-state frames.
    rpc: RpcAssembler,
}

impl Default for EventPipeline {
    fn default() -> EventPipeline {
        EventPipeline::new(ChainConfig::default())
    }
}

impl EventPipeline {
    /// A pipeline with the given chain knobs, seqnos from 1.
    pub fn new(chain: ChainConfig) -> EventPipeline {
        EventPipeline {
            encoder: Encoder::default(),
            chain: ChainPipeline::new(chain),
            seqnos: ServerSeqno::new(),
            open: None,
            rpc: RpcAssembler::default(),
        }
    }

    /// Continues stamping after `last` (a restarted gateway's journal head, or the
    /// provisional range of its warm-up).
    pub fn continue_after(&mut self, last: u64) {
        self.seqnos = ServerSeqno::starting_after(last);
    }

    /// Last server_seqno stamped.
    pub fn head(&self) -> u64 {
        self.seqnos.head()
    }

    /// The chain state (lifecycle, gate, analytics).
    pub fn chain(&self) -> &ChainPipeline {
        &self.chain
    }

    /// The JSON-RPC assembler (counters).
    pub fn rpc(&self) -> &RpcAssembler {
        &self.rpc
    }

    /// Whether JSON-RPC frames are made (on by default; `Config::rpc`), and the bytes of
    /// blocks kept for their later states (`Config::rpc_history_bytes`).
    pub fn set_rpc(&mut self, on: bool, max_kept_bytes: u64) {
        self.rpc.set_enabled(on);
        self.rpc.set_max_kept_bytes(max_kept_bytes);
    }

    /// The REST bodies of the current chain state.
    pub fn bodies(&self) -> ChainBodies {
        self.chain.rest_bodies()
    }

    /// Encodes one ring event and appends every frame it produces, in seqno order. `Err` =
    /// undecodable payload (counted by the encoder, skipped; nothing appended).
    pub fn on_event(
        &mut self,
        descriptor: &Descriptor,
        payload: &[u8],
        out: &mut Vec<Outbound>,
    ) -> Result<Processed, DecodeError> {
        let ts = descriptor.record_epoch_nanos;
        let rpc = &mut self.rpc;
        let (encoded, input) = self.encoder.encode_with(descriptor, payload, |ev, ctx| {
            rpc.observe(ev, ctx);
            chain_input(ev, ctx, ts)
        })?;
        match input {
            Some(ChainInput::BlockStart {
                block_seqno,
                id,
                number,
                ..
            }) => {
                self.open = Some(OpenBlock {
                    block_seqno,
                    number,
                    id,
                })
            }
            Some(ChainInput::BlockEnd { block_seqno, .. })
            | Some(ChainInput::BlockReject { block_seqno, .. })
                if self.open.is_some_and(|b| b.block_seqno == block_seqno) =>
            {
                self.open = None
            }
            _ => {}
        }
        let event = EventBody {
            origin_seqno: 0,
            ring_seqno: descriptor.seqno,
            timestamp_ns: ts,
            keys: encoded.keys,
            json: encoded.json,
            stage_span: encoded.stage_span,
        };
        let before = out.len();
        self.chain
            .process(input.as_ref(), event, &mut self.seqnos, &mut |o| {
                out.push(o)
            });
        self.rpc
            .emit(self.chain.last_transitions(), ts, &mut self.seqnos, out);
        let meta = out[before..].iter().any(|o| matches!(o, Outbound::Meta(_)));
        Ok(if meta {
            Processed::BlockLevel
        } else {
            Processed::EventOnly
        })
    }

    /// Appends at most `budget` queued `min_stage` copies (at least 1), in seqno order;
    /// returns how many. The tailer calls it between ring events with
    /// [`release_budget`](Self::release_budget), and while the ring is idle until
    /// [`has_pending_releases`](Self::has_pending_releases) is false.
    pub fn release(&mut self, budget: usize, out: &mut Vec<Outbound>) -> usize {
        self.chain
            .drain_releases(budget, &mut self.seqnos, &mut |o| out.push(o))
    }

    /// Whether `min_stage` copies are queued.
    pub fn has_pending_releases(&self) -> bool {
        self.chain.has_pending_releases()
    }

    /// `ChainConfig::release_budget`: copies per [`release`](Self::release) between ring
    /// events.
    pub fn release_budget(&self) -> usize {
        self.chain.release_budget()
    }

    /// Appends the `Gap` frames announcing `loss` to every session, and forgets per-block
    /// state the loss made unreliable: the flow tracker (lap, restart), the block being
    /// executed (dropped from the stage gate and named in the gap), and on a writer restart
    /// every held block (block seqnos start over), each announced by its own gap, and the
    /// tracker's index of the old ring's block seqnos.
    pub fn on_loss(&mut self, loss: &Loss, out: &mut Vec<Outbound>) {
        let mut gap = Gap::new(loss.reason());
        match loss {
            Loss::RingLap { missing } => {
                self.encoder.reset_flow();
                gap.ring_from_seqno = Some(missing.start);
                gap.ring_to_seqno = Some(missing.end.saturating_sub(1));
            }
            Loss::Expired { ring_seqno } => {
                gap.ring_from_seqno = Some(*ring_seqno);
                gap.ring_to_seqno = Some(*ring_seqno);
            }
            Loss::WriterRestart => {
                self.encoder.reset_flow();
                self.rpc.forget_ring();
            }
        }
        self.rpc.drop_partial();
        if let Some(b) = self.open.take() {
            gap.block_number = Some(b.number);
            gap.block_id = Some(b.id);
            if let Some(dropped) = self.chain.drop_partial(b.block_seqno) {
                if dropped.events > 0 {
                    gap.from_seqno = Some(dropped.from_seqno);
                    gap.to_seqno = Some(dropped.to_seqno);
                }
            }
        }
        out.push(Outbound::Meta(Arc::new(gap_frame(
            self.seqnos.allocate(),
            &gap,
        ))));
        if *loss == Loss::WriterRestart {
            for o in self.chain.on_writer_restart() {
                let g = Gap {
                    reason: GapReason::WriterRestart,
                    ..Gap::from(&o)
                };
                out.push(Outbound::Meta(Arc::new(gap_frame(
                    self.seqnos.allocate(),
                    &g,
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::payload::layout as pl;
    use crate::model::kind::EventType;
    use crate::model::outbound::MetaKind;

    /// Feeds one hand-built event (zero payload but the block tag) to `p`.
    fn feed(
        p: &mut EventPipeline,
        seqno: u64,
        ty: EventType,
        ext: [u64; 4],
        out: &mut Vec<Outbound>,
    ) {
        let size = match ty {
            EventType::BlockStart => pl::BLOCK_START,
            EventType::TxnHeaderStart => pl::TXN_HEADER_START,
            EventType::TxnLog => pl::TXN_LOG,
            EventType::BlockEnd => pl::BLOCK_END,
            _ => 0,
        };
        let mut payload = vec![0u8; size];
        if ty == EventType::BlockStart {
            payload[..32].copy_from_slice(&[9; 32]);
            payload[32..40].copy_from_slice(&77u64.to_le_bytes());
        }
        let d = Descriptor {
            seqno,
            event_type: ty.code(),
            payload_size: size as u32,
            record_epoch_nanos: 1_000 * seqno,
            payload_buf_offset: 0,
            content_ext: ext,
        };
        assert!(p.on_event(&d, &payload, out).is_ok());
    }

    fn gap_json(o: &Outbound) -> String {
        match o {
            Outbound::Meta(m) if m.kind == MetaKind::Gap => {
                String::from_utf8_lossy(&m.frame).into_owned()
            }
            other => panic!("not a gap: {other:?}"),
        }
    }

    #[test]
    fn a_lap_mid_block_drops_the_cut_block_from_the_gate_and_names_it() {
        let mut p = EventPipeline::default();
        let mut out = Vec::new();
        feed(&mut p, 1, EventType::BlockStart, [1, 0, 0, 0], &mut out);
        feed(&mut p, 2, EventType::TxnHeaderStart, [1, 1, 0, 0], &mut out);
        feed(&mut p, 3, EventType::TxnLog, [1, 1, 0, 0], &mut out);
        assert_eq!(p.chain().gate().held_blocks(), 1);
        let held: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                Outbound::Event(e) => Some(e.server_seqno),
                _ => None,
            })
            .collect();
        out.clear();
        p.on_loss(&Loss::RingLap { missing: 4..90 }, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].server_seqno(), p.head());
        let id = format!("0x{}", "09".repeat(32));
        assert_eq!(
            gap_json(&out[0]),
            format!(
                "{{\"server_seqno\":{},\"Gap\":{{\"reason\":\"ring_lapped\",\"from_seqno\":{},\
                 \"to_seqno\":{},\"ring_from_seqno\":4,\"ring_to_seqno\":89,\"block_number\":77,\
                 \"block_id\":\"{id}\"}}}}",
                p.head(),
                held[0],
                held[held.len() - 1]
            )
        );
        assert_eq!(p.chain().gate().held_blocks(), 0);
        // Nothing is open any more: a later expired payload names no block.
        out.clear();
        p.on_loss(&Loss::Expired { ring_seqno: 95 }, &mut out);
        assert!(gap_json(&out[0]).ends_with(
            "\"Gap\":{\"reason\":\"payload_expired\",\"ring_from_seqno\":95,\"ring_to_seqno\":95}}"
        ));
    }

    #[test]
    fn a_writer_restart_announces_every_held_block() {
        let mut p = EventPipeline::default();
        let mut out = Vec::new();
        feed(&mut p, 1, EventType::BlockStart, [1, 0, 0, 0], &mut out);
        feed(&mut p, 2, EventType::BlockEnd, [1, 0, 0, 0], &mut out);
        out.clear();
        p.on_loss(&Loss::WriterRestart, &mut out);
        // One gap for the restart, one for the complete but unreleased block it strands.
        assert_eq!(out.len(), 2);
        assert!(gap_json(&out[0]).ends_with("\"Gap\":{\"reason\":\"writer_restart\"}}"));
        assert!(gap_json(&out[1]).contains("\"reason\":\"writer_restart\""));
        assert!(gap_json(&out[1]).contains("\"block_number\":77"));
        assert_eq!(p.chain().gate().held_blocks(), 0);
        assert!(out[0].server_seqno() < out[1].server_seqno());
    }
}
