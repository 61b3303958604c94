//! Server → client messages: per-connection frames and `Events` batch assembly.
//!
//! - [`json`]: tiny JSON writers for per-connection messages.

pub mod json;
