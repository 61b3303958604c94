//! The hand-off: the only data both the tailer thread and the shard executors touch.
//!
//! - [`fanout`]: one bounded SPSC queue per shard, with a doorbell for a parked shard.
//! - [`published`]: the chain REST bodies and connect snapshot the tailer publishes.
//!
//! Imports only the vocabulary and the wire layer, so both sides can depend on it without
//! depending on each other.

pub mod fanout;
pub mod published;
