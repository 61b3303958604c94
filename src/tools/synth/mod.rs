//! The synthetic chain: a deterministic generator of realistic Monad blocks in the real ring
//! format, and the driver that writes them (or a recorded snapshot) into a ring.
//!
//! Runs on its own producer thread, never on the tailer or a shard core. Runtime-free.
//!
//! - [`rng`]: the seeded PRNG everything synthetic draws from.
//! - [`world`]: accounts, contracts, validators, nonces, storage values.
//! - [`batch`]: the per-height payload arena and the [`SynthEvent`]s handed out.
//! - [`plan`]: a planned transaction in reusable buffers, and its commit-phase events.
//! - [`txn`]: the transaction kinds and their two phases of events.
//! - [`options`]: the generator's settings ([`SynthOptions`]).
//! - [`block`]: one proposal's events: BLOCK_START, prologue, interleaved transactions,
//!   epilogue, BLOCK_END / BLOCK_REJECT.
//! - [`generator`]: the height loop: rejects, forks, QC / FINALIZED / VERIFIED → [`SynthEvent`]s.
//! - [`drive`]: writes a generator's (or a snapshot's) events into a ring at a paced rate.

pub mod batch;
pub mod block;
pub mod drive;
pub mod generator;
pub mod options;
pub mod plan;
pub mod rng;
pub mod txn;
pub mod world;

pub use drive::{write_ring, DriveStats, Source, WriteOptions, WriteRingError};
pub use generator::{Generator, GeneratorStats, SynthEvent, SynthOptions};
