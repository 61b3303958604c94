//! ringgate: a thread-per-core WebSocket gateway for Monad execution event rings.
//!
//! # Life of an event, in data-flow order
//!
//! | stage | core | module |
//! |---|---|---|
//! | the execution daemon (or `ringgate write`) commits an event into the ring file | writer | [`ingest::ring::writer`], [`tools::synth`] |
//! | seqlock read: `Ready / NotReady / Gap / Expired` | tailer | [`ingest::ring`] |
//! | decode the payload, attach block/txn context from the flow tags | tailer | [`ingest::event`] |
//! | encode the JSON event object once, compute filter keys | tailer | [`ingest::event`] |
//! | lifecycle, `min_stage` release copies, analytics; stamp `server_seqno` | tailer | [`ingest::chain`], [`model::seqno`] |
//! | push one `Arc` per frame into each shard's SPSC queue (never blocks) | tailer | [`ingest::tailer`], [`handoff::fanout`], [`model::outbound`] |
//! | store for resume, test each session's compiled filter on the keys | shard | [`serve::shard`], [`serve::resume`], [`serve::filter`] |
//! | bounded per-session queue, drop accounting | shard | [`serve::backpressure`] |
//! | one coalesced write per turn: `Events` batches of the pre-encoded bytes | shard | [`serve::session`], [`wire::protocol`], [`wire::ws`] |
//!
//! Connections enter on every shard's own `SO_REUSEPORT` listener: [`wire::http`] (request
//! heads, routing, admission), [`wire::ws`] (upgrade, client frames), [`wire::subscription`]
//! (client messages), [`wire::sse`] (Server-Sent Events streams, the same sessions in
//! another [`wire::protocol::Framing`]), [`serve::rest`] (REST and `/metrics`, from [`metrics`] and
//! [`handoff::published`]), [`serve::rpc`] (JSON-RPC `eth_subscribe` at `/rpc`, bodies from
//! [`ingest::rpc`], protocol in [`wire::rpc`]).
//!
//! # Layout: one folder per side
//!
//! - [`model`]: the shared vocabulary (event kind, commit stage, seqno and epoch, raw byte
//!   types, the tailer→shard frame, `Gap`). Imports nothing else of the crate.
//! - [`ingest`]: the tailer side: ring file, event decoding and encoding, chain semantics, the
//!   JSON-RPC notification bodies, the tailer thread.
//! - [`handoff`]: the only data both sides touch: the per-shard SPSC queues and the chain
//!   state the tailer publishes.
//! - [`bus`]: scale-out over NATS JetStream: the origin's publisher and the NATS client an
//!   edge consumes with ([`ingest::tailer::edge`]).
//! - [`history`]: every frame kept once for all shards, in memory or on disk
//!   (`--history-dir`), for resume over minutes and across restarts: the tailer writes it,
//!   the shards replay from it.
//! - [`wire`]: the client protocol, sans-IO: JSON primitives, HTTP, WebSocket, subscriptions,
//!   server messages and batches.
//! - [`serve`]: the shard side: executor, sessions, filters, backpressure, resume, REST.
//! - [`tools`]: `demo`, `write`, `inspect` and the producers they drive (synthetic chain,
//!   snapshot replay, pacing).
//! - [`config`]: every runtime knob, with default, unit and trade-off; [`config::defaults`]
//!   is the one source of every default.
//! - [`config_file`]: `--config FILE`: a TOML file of the same keys as the flags.
//! - [`metrics`]: single-writer counters of the tailer and each shard; Prometheus text.
//! - [`log`]: structured log lines (text or JSON), one per lifecycle event, never per event.
//! - [`server`]: start/stop the tailer and shards; signals; the `serve` entry point.
//! - [`sys`]: every libc call outside the ring mapping, each with its SAFETY argument.
//!
//! # Layering
//!
//! `model` imports nothing; `wire` imports only `model` and never glommio or libc; `handoff`
//! imports only `model` and `wire`; `history` only `model`, `log` and `sys`; `bus` only `model`, `history`, `wire`,
//! `log` and `metrics`; `ingest` and `serve` never import each other. `config`,
//! `metrics`, `log`, `server` and `tools` sit above and may see everything. `tests/layering.rs`
//! fails the build's tests when an import crosses these lines.
//!
//! Every module is `pub` so integration tests and benches can drive each stage alone; the
//! interface a module means to offer is what its `//!` header describes.

pub mod bus;
pub mod config;
pub mod config_file;
pub mod handoff;
pub mod history;
pub mod ingest;
pub mod log;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod server;
pub mod sys;
pub mod tools;
pub mod wire;
