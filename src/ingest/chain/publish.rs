//! The chain state the tailer publishes for REST: every chain REST body and the connect-time
//! snapshot, encoded once per block-level change from the [`ChainPipeline`]'s state.
//!
//! Runs on the tailer core, a few times per block, never per event. The output is the plain
//! [`ChainBodies`] of the hand-off, so the shards that answer REST never see chain types.

use std::sync::Arc;

use crate::handoff::published::ChainBodies;
use crate::ingest::chain::meta;
use crate::ingest::chain::pipeline::ChainPipeline;

impl ChainPipeline {
    /// Encodes the REST view of the chain as of its latest ring time, for the tailer to
    /// publish into [`crate::handoff::published::ChainSlot`].
    pub fn rest_bodies(&self) -> ChainBodies {
        let chain = self;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::chain::pipeline::ChainConfig;
    use crate::ingest::chain::tracker::Transition;
    use crate::model::outbound::MetaKind;
    use crate::model::stage::CommitStage;
    use crate::wire::protocol::Framing;

    #[test]
    fn an_empty_chain_has_zero_tps_no_contention_and_no_blocks() {
        let b = ChainPipeline::new(ChainConfig::default()).rest_bodies();
        assert_eq!(b.tps.status, 200);
        assert!(b.tps.body.starts_with("{\"tps\":0,"), "{}", b.tps.body);
        assert_eq!(b.contention.status, 404);
        assert_eq!(b.lifecycle.body, "[]");
        assert_eq!(b.block(7).status, 404);
        assert_eq!(b.block_range, None);
        let mut out = Vec::new();
        assert_eq!(
            b.write_connect_snapshot(5, |_| true, false, Framing::WebSocket, &mut out),
            0
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_connect_snapshot_is_restamped_with_the_cursor_and_filtered() {
        let mut b = ChainPipeline::new(ChainConfig::default()).rest_bodies();
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
        let n = b.write_connect_snapshot(
            42,
            |m| m.kind == MetaKind::Lifecycle,
            false,
            Framing::WebSocket,
            &mut out,
        );
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
}
