//! The synthetic chain: a deterministic generator of realistic Monad blocks in the real ring
//! format, and the driver that writes them into a ring.
//!
//! - [`rng`]: the seeded PRNG everything synthetic draws from.

pub mod rng;
