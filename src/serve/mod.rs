//! Serving: the shard side. One glommio executor per core owns a listener, a share of the
//! connections, their compiled filters and queues, and the resume store.
//!
//! - [`shard`]: the executor, the accept loop and the dispatch loop over the shard's inbox.
//! - [`ctx`]: what a shard shares with its sessions ([`ctx::ShardCtx`]).
//! - [`session`]: one connection: request head, upgrade or REST, then its reader and its
//!   coalescing writer.
//! - [`filter`]: subscriptions compiled for per-event matching on the filter keys.
//! - [`backpressure`]: per-session bounded queues and drop accounting.
//! - [`resume`]: the store of recent frames, resume decisions, the flow-controlled replay.
//! - [`rpc`]: JSON-RPC `eth_subscribe` sessions (`/rpc`, `--rpc-listen`).
//! - [`rest`]: REST answers and `/metrics` on the WebSocket port.
//! - [`dashboard`]: the live dashboard page (`/dashboard`), compiled into the binary.
//!
//! Imports the vocabulary, the wire layer and the hand-off; never ingest
//! (`tests/layering.rs`).

pub mod backpressure;
pub mod ctx;
pub mod dashboard;
pub mod filter;
pub mod repair;
pub mod rest;
pub mod resume;
pub mod rpc;
pub mod session;
pub mod shard;
