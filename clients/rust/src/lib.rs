//! Client for ringgate's WebSocket protocol (docs/protocol.md): connect with a channel, a
//! subscription (names, field filters, `min_stage`) and an optional token; get typed events
//! and meta frames; reconnect with full-jitter back-off and resume exactly (`resume_from` +
//! `epoch`), de-duplicating by `(epoch, server_seqno)`; gaps are items, never skipped; the
//! [`Cursor`] can be persisted and passed back as [`Options::from_cursor`].
//!
//! The same contract, with the same names, as the Python and TypeScript clients
//! (clients/README.md).
//!
//! ```no_run
//! use ringgate_client::{connect, Item, Options, Payload, latency_ns};
//!
//! # async fn run() -> Result<(), ringgate_client::Error> {
//! let opts = Options::default().events(["TxnLog", "BlockStart"]).min_stage("Finalized");
//! let mut client = connect("ws://127.0.0.1:8443", opts).await?;
//! while let Some(item) = client.next().await {
//!     match item? {
//!         Item::Event(ev) => {
//!             if let Payload::TxnLog(log) = &ev.payload {
//!                 println!("{} {} {} ns", ev.block_number.unwrap_or(0), log.address, latency_ns(&ev));
//!             }
//!         }
//!         Item::Gap(gap) => eprintln!("data lost: {:?}", gap.body),
//!         _ => {}
//!     }
//!     if let Some(c) = client.cursor() {
//!         std::fs::write("tail.cursor", c.to_string()).ok(); // resume later with from_cursor
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Plain `ws://` only (no TLS backend is compiled in); put a TLS terminator in front or use
//! the gateway on a private network.

mod client;
mod cursor;
mod error;
pub mod filter;
pub mod frame;
mod types;
mod url;

pub use client::{connect, Client, Options, Stats, STAGES};
pub use cursor::{Cursor, ParseCursorError};
pub use error::Error;
pub use filter::{field_filter, META_ITEMS};
pub use types::*;
pub use url::{build_url, CHANNELS};

/// The README's example compiles (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
