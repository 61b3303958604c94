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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::outbound::MetaFrame;
use crate::wire::json::push_u64;
use crate::wire::protocol::Framing;

/// The envelope prefix of a frame encoded with seqno 0 (the connect snapshot's placeholder).
const PLACEHOLDER: &[u8] = b"{\"server_seqno\":0,";

/// A REST response body with its HTTP status, encoded once by the tailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestBody {
    pub status: u16,
    pub body: String,
}

impl RestBody {
    /// A 200 body from JSON bytes (UTF-8 by construction: the JSON writers append only
    /// escaped strings and ASCII).
    pub fn ok(body: Vec<u8>) -> RestBody {
        RestBody {
            status: 200,
            body: String::from_utf8(body)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// A 404 `{"error":message}` body.
    pub fn not_found(message: &str) -> RestBody {
        let mut body = b"{\"error\":".to_vec();
        crate::wire::json::write_str(&mut body, message);
        body.push(b'}');
        RestBody {
            status: 404,
            ..RestBody::ok(body)
        }
    }
}

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

impl Default for ChainBodies {
    /// What REST answers before the tailer's first publication (the server publishes the
    /// bodies of an empty chain before any shard serves, so clients never see these).
    fn default() -> ChainBodies {
        let starting = RestBody::not_found("chain state not published yet");
        ChainBodies {
            tps: starting.clone(),
            contention: starting.clone(),
            lifecycle: starting,
            blocks: Vec::new(),
            block_range: None,
            connect: Vec::new(),
        }
    }
}

impl ChainBodies {
    /// Writes the connect-time snapshot frames `wants` selects (a session's
    /// `CompiledFilter::matches_meta`) as frames of `framing` stamped with `cursor` (they are
    /// per-connection messages: they repeat the cursor, never advance it). Returns how many.
    /// The state is the tailer's latest publication, which may already include a change whose
    /// live frame the session also receives (a repeated stage is harmless; none is missed).
    pub fn write_connect_snapshot(
        &self,
        cursor: u64,
        wants: impl Fn(&MetaFrame) -> bool,
        old_shapes: bool,
        framing: Framing,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut json = Vec::with_capacity(512);
        let mut n = 0;
        for f in self.connect.iter().filter(|f| wants(f)) {
            let frame = match (&f.old, old_shapes) {
                (Some(old), true) => old,
                _ => &f.frame,
            };
            let Some(rest) = frame.strip_prefix(PLACEHOLDER) else {
                continue;
            };
            json.clear();
            json.extend_from_slice(b"{\"server_seqno\":");
            push_u64(&mut json, cursor);
            json.push(b',');
            json.extend_from_slice(rest);
            framing.message(cursor, &json, out);
            n += 1;
        }
        n
    }

    /// The body for `/v1/blocks/{n}/lifecycle` (a 404 body when `n` is not tracked).
    pub fn block(&self, number: u64) -> RestBody {
        match self.blocks.binary_search_by_key(&number, |(n, _)| *n) {
            Ok(i) => self.blocks[i].1.clone(),
            Err(_) => RestBody::not_found("block not found"),
        }
    }
}

/// The shared slot: the tailer publishes, REST readers take the current `Arc`.
#[derive(Debug)]
pub struct ChainSlot {
    current: Mutex<Arc<ChainBodies>>,
    /// Publications so far: each one cost the tailer a full encode of every body, so this
    /// must grow a few times per block, never per event (`ringgate_chain_publications_total`).
    publications: AtomicU64,
}

impl Default for ChainSlot {
    /// A slot holding [`ChainBodies::default`] until the first publication.
    fn default() -> ChainSlot {
        ChainSlot {
            current: Mutex::new(Arc::new(ChainBodies::default())),
            publications: AtomicU64::new(0),
        }
    }
}

impl ChainSlot {
    /// Replaces the published bodies (tailer only).
    pub fn publish(&self, bodies: ChainBodies) {
        let next = Arc::new(bodies);
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *slot = next;
        drop(slot);
        self.publications.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the bodies were published.
    pub fn publications(&self) -> u64 {
        self.publications.load(Ordering::Relaxed)
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
