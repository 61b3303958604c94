//! Durable history: every frame the tailer produces, kept once for all shards, bounded by
//! bytes and age (not frames), in memory or on disk (`--history-dir`), so that a client
//! resumes exactly after minutes away and across gateway restarts.
//!
//! Parts:
//! - `meta`: what the history knows about one sealed chunk ([`meta::ChunkMeta`]) and about
//!   the journal as a whole ([`meta::JournalIdentity`]), with their fixed binary encodings.
//! - `segment`: the on-disk journal: append-only segment files of checksummed, compressed
//!   chunks; recovery (torn tails truncated, corrupt records counted and skipped), retention
//!   by bytes and age.
//! - `record`: one frame's binary record (a `min_stage` copy is a reference plus its stage).
//! - `wal`: the tailer's write-ahead log (memory-mapped, no syscall per frame), so a killed
//!   gateway has journaled every frame a client can have seen.
//! - `writer`: the history thread: frames in, zstd chunks sealed into the `store`.
//! - `store`: the shared index of sealed chunks ([`store::History`]): retention, replay reads.
//! - `startup`: opening it all at server start, and where a restarted tailer continues.
//!
//! Data flow: tailer → (`wal` append, queue push) → history thread → `store` (memory or
//! journal) ← shards' replay cursors. The tailer never waits for the history.
//!
//! Layering: imports only `model`, `log` and `sys` (like `handoff`); both the tailer side
//! and the shard side use it. Decision: docs/decisions/0003-durable-history.md.

pub mod meta;
pub mod record;
pub mod segment;
pub mod startup;
pub mod store;
pub mod wal;
pub mod writer;
