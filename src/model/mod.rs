//! The shared vocabulary: the leaf types every side of the gateway speaks.
//!
//! Imports nothing else of the crate, no runtime and no I/O (checked by `tests/layering.rs`),
//! so ingest, the hand-off, the wire layer and the serving shards can all depend on it
//! without depending on each other.
//!
//! - [`kind`]: the 25 execution event type codes and their wire names.
//! - [`stage`]: commit stages and the `min_stage` comparison.
//! - [`seqno`]: the `server_seqno` allocator and the server epoch.
//! - [`types`]: raw addresses and 32-byte words.
//! - [`outbound`]: what the tailer hands to the shards ([`outbound::Outbound`]): pre-encoded
//!   event and meta frames with their filter keys.
//! - [`rpc`]: a block's JSON-RPC notification bodies (header, logs), encoded once, and the
//!   frame announcing each commit state it reaches.
//! - [`gap`]: why data is missing ([`gap::Gap`], [`gap::GapReason`]).
//! - [`lane`]: priority lanes: which frames a slow session keeps first.

pub mod gap;
pub mod kind;
pub mod lane;
pub mod outbound;
pub mod rpc;
pub mod seqno;
pub mod stage;
pub mod types;
