//! The event ring: the shared-memory file the execution daemon writes and ringgate tails.
//!
//! - [`layout`]: header and descriptor layout, constants and limits.

pub mod layout;
