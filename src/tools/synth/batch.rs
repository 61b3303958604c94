//! The generator's output unit and its storage: one height's payloads live in a reused arena
//! ([`PayloadArena`]); each event is a [`Pending`] (type, flow tags, byte range) until handed out as
//! a borrowed [`SynthEvent`].
//!
//! Runs on the synthetic writer's thread; nothing is allocated per event once the arena has
//! grown to the largest height.

use crate::ingest::event::build::build;
use crate::ingest::event::payload::ExecEvent;
use crate::model::kind::EventType;

/// One generated event. The driver sets `content_ext[0]` (block seqno) and the timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthEvent<'a> {
    pub event_type: EventType,
    /// `content_ext[1]`: transaction index + 1, 0 outside a transaction.
    pub txn_id: u64,
    /// `content_ext[2]`: owning ACCOUNT_ACCESS index for STORAGE_ACCESS, else 0.
    pub account_index: u64,
    /// Recorded inside a block (`content_ext[0]` = the BLOCK_START's seqno); false for
    /// consensus events (QC, FINALIZED, VERIFIED), whose flow tags are all 0.
    pub block_scoped: bool,
    pub payload: &'a [u8],
}

/// A generated event whose payload lives in the [`PayloadArena`] arena.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub(super) ty: EventType,
    pub(super) txn_id: u64,
    pub(super) account_index: u64,
    pub(super) block_scoped: bool,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The payload arena of one height.
#[derive(Debug, Default)]
pub struct PayloadArena {
    pub(super) bytes: Vec<u8>,
}

impl PayloadArena {
    /// Builds a block-scoped event's payload into the arena.
    pub fn build(&mut self, ev: &ExecEvent<'_>, txn_id: u64, account_index: u64) -> Pending {
        self.push(ev, txn_id, account_index, true)
    }

    pub(super) fn push(
        &mut self,
        ev: &ExecEvent<'_>,
        txn_id: u64,
        account_index: u64,
        block_scoped: bool,
    ) -> Pending {
        let start = self.bytes.len();
        // The generator only makes values whose arrays are whole 32-byte items and far below
        // the length-field limits, so building cannot fail; an error would be a generator bug.
        if let Err(e) = build(ev, &mut self.bytes) {
            unreachable!("synthetic event does not build: {e}");
        }
        Pending {
            ty: ev.event_type(),
            txn_id,
            account_index,
            block_scoped,
            start,
            end: self.bytes.len(),
        }
    }
}
