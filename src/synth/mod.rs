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
//! - [`generator`]: heights, proposals, forks, rejects, consensus events → [`SynthEvent`]s.
//! - [`drive`]: writes a generator's (or a snapshot's) events into a ring at a paced rate.

pub mod batch;
pub mod drive;
pub mod generator;
pub mod plan;
pub mod rng;
pub mod txn;
pub mod world;

pub use drive::{write_ring, DriveStats, Source, WriteOptions, WriteRingError};
pub use generator::{Generator, GeneratorStats, SynthEvent, SynthOptions};
