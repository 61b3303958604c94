//! Execution events: type codes, payload decoding, JSON encoding and filter keys.
//!
//! Everything here runs on the tailer core, once per event, and is runtime-free: it takes
//! payload bytes and descriptor fields as arguments and never touches glommio or sockets.
//!
//! - [`kind`]: the 25 event type codes and their wire names.

pub mod kind;
