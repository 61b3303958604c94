//! Scale-out over NATS JetStream: the origin publishes every frame the tailer makes to a
//! stream; edge gateways consume it and serve it as if they tailed the ring, with the
//! origin's epoch and `server_seqno`s (docs/scale-out.md).
//!
//! Parts:
//! - `client`: a minimal blocking NATS client (text protocol, one `std` socket), for plain
//!   threads; no async runtime (docs/decisions/nats-client.md).
//! - `creds`: the `--nats-creds` file (user and password, or a token).
//! - `stream`: the stream's settings and subjects, a frame's envelope (subject, headers,
//!   body = its history record), the `$JS.API` requests.
//! - `publisher`: the origin's publisher thread and the tailer's never-blocking end of it.
//! - `chain`: the origin's chain REST bodies and connect snapshot on a side stream, for edges.
//!
//! The edge's consumer, which feeds shards, is `crate::ingest::tailer::edge` (it shares the tailer's
//! shard links).
//!
//! Layering: imports only `model`, `history` (the record format), `handoff` (the chain
//! bodies' slot), `wire` (the `Gap` frame encoder), `log` and `metrics` (its counters);
//! never glommio.

pub mod chain;
pub mod client;
pub mod creds;
pub mod publisher;
pub mod stream;
