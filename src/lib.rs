//! ringgate: a thread-per-core WebSocket gateway for Monad execution event rings.
//!
//! # Life of an event
//!
//! (tailer core) ring reader → decoder → chain tracker → JSON encoder (once) → server_seqno
//! → one SPSC queue per shard → (shard cores) filter on precomputed keys → session queue →
//! coalesced write.
//!
//! # Layout
//!
//! - [`event`]: event type codes, payload decoding, JSON encoding, filter keys.
//! - [`chain`]: commit stages, block lifecycle, `min_stage` release, analytics.
//! - [`frame`]: the pre-encoded frames and filter keys the tailer hands to shards.
//! - [`seqno`]: the `server_seqno` allocator and the server epoch (owned by the tailer).
//! - [`resume`]: the bounded store of recent frames, resume decisions, flow-controlled replay.
//! - [`ring`]: the ring file layout, attach, seqlock reader and writer, snapshot replay.
//! - [`synth`]: the seeded synthetic Monad chain and the driver that writes it into a ring.
//! - [`inspect`]: `ringgate inspect`: header, counts, decode failures, gaps, JSON lines.
//! - [`pacer`]: rate pacing for event producers (replay, synthetic chain).
//! - [`http`]: request heads, routing, responses, connection admission (shards).
//! - [`ws`]: WebSocket handshake, client-frame decoder, server frame headers (shards).
//! - [`subscription`]: channels and client subscriptions (shards).
//! - [`filter`]: subscriptions compiled for per-event matching on filter keys (shards).
//! - [`protocol`]: server messages and `Events` batch assembly (shards).
//! - [`backpressure`]: per-session bounded queues, drop warnings, heartbeats (shards).
//! - [`config`]: every runtime knob, with default, unit and trade-off.
//! - [`tailer`]: the pinned tailer thread: ring → encode once → chain stage (seqnos, lifecycle,
//!   `min_stage` copies, analytics, gaps) → push to shards; startup backlog; REST publication.
//! - [`fanout`]: one bounded SPSC queue per shard, with a doorbell for parked shards.
//! - [`shard`]: a glommio executor per core: SO_REUSEPORT listener, dispatch loop.
//! - [`session`]: one connection: HTTP, upgrade, subscribe, reader and coalescing writer.
//! - [`rest`]: `/health`, `/v1/status`, `/metrics` and the chain endpoints on the WebSocket port.
//! - [`published`]: chain REST bodies the tailer publishes for the shards (block-level updates).
//! - [`metrics`]: single-writer counters of the tailer and each shard; Prometheus text.
//! - [`demo`]: `ringgate demo` / `write`: a synthetic or replayed ring writer next to the gateway.
//! - [`server`]: start/stop the tailer and shards; signals; the `serve` entry point.

pub mod backpressure;
pub mod chain;
pub mod config;
pub mod demo;
pub mod event;
pub mod fanout;
pub mod filter;
pub mod frame;
pub mod http;
pub mod inspect;
pub mod metrics;
pub mod pacer;
pub mod protocol;
pub mod published;
pub mod rest;
pub mod resume;
pub mod ring;
pub mod seqno;
pub mod server;
pub mod session;
pub mod shard;
pub mod subscription;
pub mod synth;
pub mod tailer;
pub mod ws;
