//! Server → client messages: the per-connection frames and `Events` batch assembly.
//!
//! Runs on shard cores; runtime-free (takes seqnos and pre-encoded bytes, appends to a
//! [`FrameSink`]: the session writer's [`Gather`] list or a byte buffer). Every server frame is a JSON object with `server_seqno`
//! first and exactly one key naming the message type, the existing gateway's envelope.
//!
//! - [`batch`]: [`BatchWriter`], one frame per run of events; meta frames.
//! - [`framing`]: [`Framing`], a frame as a WebSocket text frame or an SSE message: the
//!   only place the two transports differ on the way out.
//! - [`gather`]: [`FrameSink`] and [`Gather`], the scatter-gather list a session writer sends
//!   with one `sendmsg` (shared event bytes referenced, not copied).
//! - [`messages`]: `Hello`, `Subscribed`, `Error`, `Warning`, `Resume` (`Gap` is in `chain::meta`).
//!
//! Seqnos on the wire: data frames (`Events`, meta frames) carry their own strictly
//! increasing seqnos (an `Events` frame the highest of its events); per-connection messages
//! repeat the session's cursor, so a client's cursor never moves backwards or skips.

pub mod batch;
pub mod framing;
pub mod gather;
pub mod messages;

pub use batch::{write_meta, Batch, BatchLimits, BatchWriter};
pub use framing::Framing;
pub use gather::{FrameSink, Gather};
pub use messages::{AdvertisedLimits, Hello, ResumeInfo, WarningInfo};
