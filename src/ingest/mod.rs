//! Ingest: the tailer side, ring file → pre-encoded frames. Runs on the one pinned tailer core
//! (and, for the ring writer, on a writer thread); never on a shard.
//!
//! - [`ring`]: the ring file: layout, attach and validation, the seqlock reader, liveness,
//!   default path discovery, a real-format writer, snapshots.
//! - [`event`]: payload decoding, flow context, the JSON event object (encoded once), filter
//!   keys.
//! - [`chain`]: block lifecycle, `min_stage` release, analytics, the meta frames and the REST
//!   bodies the tailer publishes.
//! - [`rpc`]: each executed block's JSON-RPC `newHeads`/`logs` bodies, encoded once, and a
//!   frame per commit state it reaches (for `eth_subscribe` sessions).
//! - [`tailer`]: the pinned thread that runs all of the above and pushes each frame into every
//!   shard's queue.
//!
//! Imports the vocabulary ([`crate::model`]), the wire encoders ([`crate::wire`]) and the
//! hand-off ([`crate::handoff`]); never the serving side (`tests/layering.rs`).

pub mod chain;
pub mod event;
pub mod ring;
pub mod rpc;
pub mod tailer;
