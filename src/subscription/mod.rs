//! Subscriptions: what a session asked for, parsed from client text or the connect query.
//!
//! - [`channel`]: channels, their allowed and default sets, and the nameable items.

pub mod channel;
