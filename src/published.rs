//! The chain state the REST endpoints serve, published by the tailer as pre-encoded bodies.
//!
//! Written by the tailer core (it owns the chain tracker, TPS window and contention tracker);
//! read by whichever shard answers `/v1/tps`, `/v1/contention`, `/v1/blocks/lifecycle` or
//! `/v1/blocks/{n}/lifecycle`. The tailer rebuilds [`ChainBodies`] only after an event that
//! changed block-level state (a lifecycle transition, a TPS or contention report), never per
//! ordinary event, and swaps it in as one `Arc`.
//!
//! Why a `Mutex<Arc<_>>`: the lock is held only to clone or replace one pointer (no
//! allocation, no formatting under it), a few times per block on the writer side and once per
//! REST request on the reader side, so it is uncontended and off the event hot path; readers
//! then format nothing, they copy a finished body. A poisoned lock (a panic while holding
//! it, which the two tiny critical sections cannot do) is recovered, never propagated.
//!
//! Never: hold the lock while encoding, or expose a half-built body.

use std::sync::{Arc, Mutex};

use crate::chain::meta::{self, RestBody};
use crate::chain::pipeline::ChainPipeline;
use crate::frame::MetaFrame;
use crate::protocol::messages::write_message;

/// The envelope prefix of a frame encoded with seqno 0 (the connect snapshot's placeholder).
const PLACEHOLDER: &[u8] = b"{\"server_seqno\":0,";

/// Every chain REST body, encoded once per block-level change.
#[derive(Debug, Clone)]
pub struct ChainBodies {
    /// `/v1/tps`.
    pub tps: RestBody,
    /// `/v1/contention` (404 body until the first report).
    pub contention: RestBody,
    /// `/v1/blocks/lifecycle`.
    pub lifecycle: RestBody,
    /// `/v1/blocks/{n}/lifecycle` for every tracked block number, ascending.
    pub blocks: Vec<(u64, RestBody)>,
    /// The tracked block numbers' range, for `/v1/status` (`None` before the first block).
    pub block_range: Option<(u64, u64)>,
    /// The connect-time snapshot, encoded with `server_seqno` 0 (re-stamped per session with
    /// its cursor): `TPS` when above 0, the latest `ContentionData`, and one `Lifecycle` per
    /// active block (`from_stage` absent, `to_stage` = its current stage), in that order.
    pub connect: Vec<Arc<MetaFrame>>,
}

impl ChainBodies {
    /// Encodes the REST view of `chain` as of its latest ring time.
    pub fn of(chain: &ChainPipeline) -> ChainBodies {
        let now = chain.last_ns();
        let tracker = chain.tracker();
        let summaries = tracker.summaries(now);
        let mut numbers: Vec<u64> = summaries.iter().map(|s| s.block_number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let blocks = numbers
            .iter()
            .map(|&n| {
                (
                    n,
                    meta::lifecycle_one_body(tracker.summary_for_number(n, now).as_ref()),
                )
            })
            .collect();
        let mut connect = Vec::new();
        let tps = chain.tps().tps();
        if tps > 0 {
            connect.push(Arc::new(meta::tps_frame(0, tps)));
        }
        if let Some(r) = chain.contention().latest() {
            connect.push(Arc::new(meta::contention_frame(0, r)));
        }
        connect.extend(
            tracker
                .snapshot(now)
                .iter()
                .map(|t| Arc::new(meta::lifecycle_frame(0, t))),
        );
        ChainBodies {
            connect,
            tps: meta::tps_body(&chain.tps().snapshot()),
            contention: meta::contention_body(chain.contention().latest()),
            lifecycle: meta::lifecycle_list_body(&summaries),
            blocks,
            block_range: numbers.first().zip(numbers.last()).map(|(a, b)| (*a, *b)),
        }
    }

    /// Writes the connect-time snapshot frames `wants` selects (a session's
    /// `CompiledFilter::matches_meta`) as WebSocket text frames stamped with `cursor` (they are
    /// per-connection messages: they repeat the cursor, never advance it). Returns how many.
    /// The state is the tailer's latest publication, which may already include a change whose
    /// live frame the session also receives (a repeated stage is harmless; none is missed).
    pub fn write_connect_snapshot(
        &self,
        cursor: u64,
        wants: impl Fn(&MetaFrame) -> bool,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut json = Vec::with_capacity(512);
        let mut n = 0;
        for f in self.connect.iter().filter(|f| wants(f)) {
            let Some(rest) = f.frame.strip_prefix(PLACEHOLDER) else {
                continue;
            };
            json.clear();
            json.extend_from_slice(b"{\"server_seqno\":");
            json.extend_from_slice(cursor.to_string().as_bytes());
            json.push(b',');
            json.extend_from_slice(rest);
            write_message(&json, out);
            n += 1;
        }
        n
    }

    /// The body for `/v1/blocks/{n}/lifecycle` (a 404 body when `n` is not tracked).
    pub fn block(&self, number: u64) -> RestBody {
        match self.blocks.binary_search_by_key(&number, |(n, _)| *n) {
            Ok(i) => self.blocks[i].1.clone(),
            Err(_) => meta::lifecycle_one_body(None),
        }
    }
}

/// The shared slot: the tailer publishes, REST readers take the current `Arc`.
#[derive(Debug)]
pub struct ChainSlot {
    current: Mutex<Arc<ChainBodies>>,
}

impl Default for ChainSlot {
    /// The bodies of a chain that has seen nothing (TPS 0, no contention, no blocks).
    fn default() -> ChainSlot {
        let empty = ChainPipeline::new(crate::chain::pipeline::ChainConfig::default());
        ChainSlot {
            current: Mutex::new(Arc::new(ChainBodies::of(&empty))),
        }
    }
}

impl ChainSlot {
    /// Replaces the published bodies (tailer only).
    pub fn publish(&self, bodies: ChainBodies) {
        let next = Arc::new(bodies);
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *slot = next;
    }

    /// The bodies published last.
    pub fn get(&self) -> Arc<ChainBodies> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chain_has_zero_tps_no_contention_and_no_blocks() {
        let slot = ChainSlot::default();
        let b = slot.get();
        assert_eq!(b.tps.status, 200);
        assert!(b.tps.body.starts_with("{\"tps\":0,"), "{}", b.tps.body);
        assert_eq!(b.contention.status, 404);
        assert_eq!(b.lifecycle.body, "[]");
        assert_eq!(b.block(7).status, 404);
        assert_eq!(b.block_range, None);
        let mut out = Vec::new();
        assert_eq!(b.write_connect_snapshot(5, |_| true, &mut out), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn the_connect_snapshot_is_restamped_with_the_cursor_and_filtered() {
        use crate::chain::stage::CommitStage;
        use crate::chain::tracker::Transition;
        use crate::frame::MetaKind;
        let mut b = (*ChainSlot::default().get()).clone();
        let t = Transition {
            block_id: [1; 32],
            block_number: 7,
            from_stage: None,
            to_stage: CommitStage::Voted,
            time_in_previous_stage_ms: None,
            block_age_ms: 1.5,
            txn_count: 3,
            gas_used: None,
            block_time_ns: 0,
        };
        b.connect.push(Arc::new(meta::tps_frame(0, 250)));
        b.connect.push(Arc::new(meta::lifecycle_frame(0, &t)));
        let mut out = Vec::new();
        let n = b.write_connect_snapshot(42, |m| m.kind == MetaKind::Lifecycle, &mut out);
        assert_eq!(n, 1);
        // One unmasked text frame: 0x81, a 7-bit or 16-bit length, then the JSON.
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("{\"server_seqno\":42,\"Lifecycle\":{"),
            "{text}"
        );
        assert!(text.contains("\"to_stage\":\"Voted\""));
        assert!(!text.contains("TPS"));
    }

    #[test]
    fn publish_replaces_what_readers_get() {
        let slot = ChainSlot::default();
        let mut b = (*slot.get()).clone();
        b.blocks.push((
            9,
            RestBody {
                status: 200,
                body: "{}".into(),
            },
        ));
        slot.publish(b);
        assert_eq!(slot.get().block(9).status, 200);
        assert_eq!(slot.get().block(8).status, 404);
    }
}
