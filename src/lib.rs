//! ringgate: a thread-per-core WebSocket gateway for Monad execution event rings.
//!
//! # Life of an event, in data-flow order
//!
//! | stage | core | module |
//! |---|---|---|
//! | the execution daemon (or `ringgate write`) commits an event into the ring file | writer | [`ring::writer`], [`synth`] |
//! | seqlock read: `Ready / NotReady / Gap / Expired` | tailer | [`ring`] |
//! | decode the payload, attach block/txn context from the flow tags | tailer | [`event`] |
//! | encode the JSON event object once, compute filter keys | tailer | [`event`] |
//! | lifecycle, `min_stage` release copies, analytics; stamp `server_seqno` | tailer | [`chain`], [`seqno`] |
//! | push one `Arc` per frame into each shard's SPSC queue (never blocks) | tailer | [`tailer`], [`fanout`], [`frame`] |
//! | store for resume, test each session's compiled filter on the keys | shard | [`shard`], [`resume`], [`filter`] |
//! | bounded per-session queue, drop accounting | shard | [`backpressure`] |
//! | one coalesced write per turn: `Events` batches of the pre-encoded bytes | shard | [`session`], [`protocol`], [`ws`] |
//!
//! Connections enter on every shard's own `SO_REUSEPORT` listener: [`http`] (request heads,
//! routing, admission), [`ws`] (upgrade, client frames), [`subscription`] (client messages),
//! [`rest`] (REST and `/metrics`, from [`metrics`] and [`published`]).
//!
//! # Layout
//!
//! - [`ring`]: the ring file layout, attach, seqlock reader, liveness, writer, snapshot replay.
//! - [`event`]: event type codes, payload decoding, flow context, JSON encoding, filter keys.
//! - [`chain`]: commit stages, block lifecycle, `min_stage` release, TPS, contention, top-K.
//! - [`seqno`]: the `server_seqno` allocator and the server epoch (owned by the tailer).
//! - [`frame`]: the pre-encoded frames and filter keys the tailer hands to shards.
//! - [`tailer`]: the pinned tailer thread: ring → encode once → chain → push to shards.
//! - [`fanout`]: one bounded SPSC queue per shard, with a doorbell for parked shards.
//! - [`shard`]: a glommio executor per core: SO_REUSEPORT listener, dispatch loop.
//! - [`resume`]: the bounded store of recent frames, resume decisions, flow-controlled replay.
//! - [`session`]: one connection: HTTP, upgrade, subscribe, reader and coalescing writer.
//! - [`http`]: request heads, routing, responses, connection admission.
//! - [`ws`]: WebSocket handshake, client-frame decoder, server frame headers.
//! - [`subscription`]: channels and client subscriptions, operator limits.
//! - [`filter`]: subscriptions compiled for per-event matching on filter keys.
//! - [`protocol`]: server messages and `Events` batch assembly.
//! - [`backpressure`]: per-session bounded queues, drop warnings, heartbeats.
//! - [`rest`]: REST endpoints on the WebSocket port.
//! - [`published`]: chain REST bodies the tailer publishes for the shards.
//! - [`metrics`]: single-writer counters of the tailer and each shard; Prometheus text.
//! - [`config`]: every runtime knob, with default, unit and trade-off.
//! - [`server`]: start/stop the tailer and shards; signals; the `serve` entry point.
//! - [`demo`]: `ringgate demo` / `write`: a synthetic or replayed ring writer next to the gateway.
//! - [`synth`]: the seeded synthetic Monad chain and the driver that writes it into a ring.
//! - [`inspect`]: `ringgate inspect`: header, counts, decode failures, gaps, JSON lines.
//! - [`pacer`]: rate pacing for event producers (replay, synthetic chain).

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
