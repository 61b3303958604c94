//! Server → client messages: the per-connection frames and `Events` batch assembly.
//!
//! Runs on shard cores; runtime-free (takes seqnos and pre-encoded bytes, appends to the
//! session's outgoing `Vec<u8>`). Every server frame is a JSON object with `server_seqno`
//! first and exactly one key naming the message type, the existing gateway's envelope.
//!
//! - [`batch`]: [`BatchWriter`], one WebSocket text frame per run of events; meta frames.
//! - [`messages`]: `Hello`, `Subscribed`, `Error`, `Warning`, `Resume` (`Gap` is in `chain::meta`).
//! - [`json`]: tiny JSON writers for per-connection messages.
//!
//! Seqnos on the wire: data frames (`Events`, meta frames) carry their own strictly
//! increasing seqnos (an `Events` frame the highest of its events); per-connection messages
//! repeat the session's cursor, so a client's cursor never moves backwards or skips.

pub mod batch;
pub mod json;
pub mod messages;

pub use batch::{write_meta, Batch, BatchLimits, BatchWriter};
pub use messages::{AdvertisedLimits, Hello, ResumeInfo, WarningInfo};
