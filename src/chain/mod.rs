//! Chain semantics computed once on the tailer: block lifecycle by block id, `min_stage`
//! release, analytics. Runtime-free: takes decoded facts, seqnos and `now` as arguments.
//!
//! - [`stage`]: commit stages and the `min_stage` comparison.

pub mod stage;
