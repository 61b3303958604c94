//! Tools off the serving path: `ringgate demo`, `write`, `inspect`, `check` and `tail`, and the producers they
//! drive.
//!
//! - [`check`]: `ringgate check`, the preflight: ring, limits, hugepages, port, cores, clock.
//! - [`demo`]: a synthetic or replayed ring writer next to a gateway on localhost.
//! - [`synth`]: the seeded synthetic Monad chain and the driver that writes it into a ring.
//! - [`replay`](mod@replay): copy a snapshot's events into a live ring at a chosen pace.
//! - [`inspect`]: check a ring or snapshot: header, counts, decode failures, JSON lines.
//! - [`pacer`]: rate pacing for event producers.
//! - [`tail`]: `ringgate tail`, a stream as JSON lines, on the Rust client (`clients/rust`).

pub mod check;
pub mod demo;
pub mod inspect;
pub mod pacer;
pub mod replay;
pub mod synth;
pub mod tail;
