//! The wire: the client protocol as bytes ⇄ typed values, sans-IO.
//!
//! Nothing here touches a socket, a runtime (glommio) or libc: it takes bytes, seqnos and
//! `now` as arguments, so it is unit-tested, property-tested and benchmarked without a server
//! (`tests/layering.rs` enforces it).
//!
//! - [`json`]: the one set of JSON writing primitives (decimal, hex, escaping, objects).
//! - [`http`]: request heads, routing, responses, connection admission.
//! - [`ws`]: the WebSocket handshake, the client-frame decoder, server frame headers, ping
//!   rate limits.
//! - [`sse`]: Server-Sent Events: the stream's head, message framing, heartbeat, close,
//!   `Last-Event-ID`.
//! - [`subscription`]: channels and client subscriptions, operator limits.
//! - [`protocol`]: server messages, `Gap` and meta-frame envelopes, `Events` batches, the
//!   gather list a writer sends.
//! - [`rpc`]: JSON-RPC 2.0 `eth_subscribe` requests, responses, errors, log filters and
//!   notification envelopes.

pub mod http;
pub mod json;
pub mod protocol;
pub mod rpc;
pub mod sse;
pub mod subscription;
pub mod ws;
