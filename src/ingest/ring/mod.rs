//! The event ring: the shared-memory file the execution daemon writes and ringgate tails.
//!
//! Everything between a ring *file* and `(descriptor, payload bytes)`, both directions. Runs on
//! the tailer core (reader) or the synthetic writer's thread; runtime-free (no glommio).
//!
//! - [`layout`]: header and descriptor layout, constants and limits (the written contract).
//! - [`attach`]: open a live ring or a zstd snapshot → [`Ring`].
//! - [`validate`]: the header checks and the typed [`AttachError`] (shared by readers and the
//!   writer, depending on neither).
//! - [`discover`]: the daemon's default ring path (first usable 2 MiB hugetlbfs mount).
//! - [`reader`]: the seqlock cursor → `Ready / NotReady / Gap / Expired / Malformed`.
//! - [`liveness`]: is the writer still there, or was the file replaced?
//! - [`writer`]: a real-format ring writer (synthetic chain, replay, tests).

//!
//! Unsafe code lives only in `map` (atomic word access to the mapping) and `sys` (a handful of
//! libc calls std lacks: flock, renameat2, statfs, access, posix_fallocate).

pub mod attach;
pub mod discover;
pub mod layout;
pub mod liveness;
mod map;
pub mod reader;
mod snapshot;
mod sys;
pub mod validate;
pub mod writer;

pub use attach::{Ring, RingHeader};
pub use discover::{default_ring_path, is_on_hugetlbfs};
pub use liveness::WriterState;
pub use reader::{MalformedReason, ReadOutcome, ReaderCounters, RingEvent, RingReader, StartAt};
pub use validate::AttachError;
pub use writer::{scratch_dir, RingWriter, WriterError};
