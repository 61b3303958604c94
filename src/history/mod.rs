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
//!
//! Layering: imports only `model`, `wire` and `sys` (like `handoff`); both the tailer side
//! and the shard side use it.

pub mod meta;
pub mod segment;
