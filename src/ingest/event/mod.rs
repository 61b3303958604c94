//! Execution events: type codes, payload decoding, flow context, JSON encoding and filter keys.
//!
//! Everything here runs on the tailer core, once per event, and is runtime-free: it takes
//! payload bytes and descriptor fields as arguments and never touches glommio or sockets.
//! Life of an event in this module: [`decode`] (bytes → typed [`payload::ExecEvent`]) →
//! [`flow`] (block number / id / txn hash from the flow tags) → [`json`] (the wire object,
//! once) and [`keys`] (what filters test); [`encoder`] chains the four. [`build`] is the exact
//! inverse of [`decode`], used by the synthetic writer and tests.
//!
//! - [`payload`]: typed views of every payload field, plus the layout constants.
//! - [`decode`]: bounds-checked decoder and its typed, countable errors.
//! - [`build`]: payload bytes from typed values (zero padding, exact sizes).
//! - [`flow`]: per-block, fork-aware flow context with bounded memory.
//! - [`json`]: the envelope and payload JSON (schema in docs/events.md).
//! - [`keys`]: filter keys per event.
//! - [`encoder`]: decode + flow + JSON + keys, one allocation per event.

pub mod build;
pub mod decode;
pub mod encoder;
pub mod flow;
pub mod json;
pub mod keys;
pub mod payload;
