//! ringgate: a thread-per-core WebSocket gateway for Monad execution event rings.
//!
//! # Life of an event
//!
//! (tailer core) ring reader → decoder → chain tracker → JSON encoder (once) → server_seqno
//! → one SPSC queue per shard → (shard cores) filter on precomputed keys → session queue →
//! coalesced write.
//!
//! # Layout
//!
//! - [`event`]: event type codes, payload decoding, JSON encoding, filter keys.
//! - [`chain`]: commit stages, block lifecycle, `min_stage` release, analytics.
//! - [`frame`]: the pre-encoded frames and filter keys the tailer hands to shards.
//! - [`ring`]: the ring file layout, attach, seqlock reader and writer, snapshot replay.
//! - [`pacer`]: rate pacing for event producers (replay, synthetic chain).

pub mod chain;
pub mod event;
pub mod frame;
pub mod pacer;
pub mod ring;
pub mod synth;
