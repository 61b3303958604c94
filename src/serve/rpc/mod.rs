//! JSON-RPC `eth_subscribe` sessions on the shards: `/rpc` on the main port and every path
//! of `--rpc-listen`, with the native sessions' admission, limits, keys, pings and shutdown.
//!
//! - [`hub`]: what the dispatch loop sees: sessions, subscriptions, byte-bounded queues,
//!   the chain view for the plain methods, the `fromBlock` history.
//! - [`session`]: one connection's reader (requests, pings) and writer (responses, then
//!   notifications spliced around the tailer's pre-encoded objects).
//!
//! The bodies come from the tailer (`crate::model::rpc`, made by `ingest::rpc`); the
//! protocol is `crate::wire::rpc`. Decisions: docs/decisions/rpc-subscriptions.md.

pub mod hub;
pub mod session;

pub use hub::RpcHub;
