//! Chain semantics computed once on the tailer: block lifecycle by block id, `min_stage`
//! release, analytics. Runtime-free: takes decoded facts, seqnos and `now` as arguments.
//!
//! The tailer's glue turns each decoded ring event that matters into a [`input::ChainInput`]
//! and hands it with the encoded event to [`pipeline::ChainPipeline::process`], which does,
//! per event, in this order:
//! 1. on BLOCK_START, [`gate::StageGate::open`] the block;
//! 2. feed the input to the [`tracker::LifecycleTracker`] (→ [`tracker::Transition`]s), the
//!    [`tps::TpsWindow`] (on `Finalized` transitions), the
//!    [`contention::ContentionTracker`] (→ a report at BLOCK_END) and the
//!    [`topk::TopAccesses`] counters;
//! 3. encode and stamp the event, push it (the `Proposed` stream), then
//!    [`gate::StageGate::hold`] it;
//! 4. for each transition: a `Lifecycle` frame ([`meta`]), then
//!    [`gate::StageGate::on_transition`] (→ a queued release for the gated streams), and
//!    announce any [`gate::Overflow`] as a `Gap` frame.
//!
//! Between ring events (and until none is left when the ring is idle) the tailer calls
//! [`pipeline::ChainPipeline::drain_releases`], which makes a bounded number of the queued
//! copies, so a block reaching a stage never stalls live events for long.
//!
//! - [`input`]: the narrow input type (plain values mapped from decoded events).
//! - [`from_event`]: the tailer glue from a decoded event to a [`input::ChainInput`].
//! - [`tracker`]: fork-aware lifecycle per block id, transitions, REST summaries.
//! - [`gate`]: buffer-then-release of block events per stage, bounded, overflow announced.
//! - [`tps`]: transactions per second of block time over finalized blocks.
//! - [`contention`]: per-block storage contention (read/write aware) and parallelism.
//! - [`topk`]: Space-Saving heavy hitters, O(1) per access; top accounts and slots.
//! - [`key_hash`]: the seeded fast hasher of those per-access maps.
//! - [`meta`]: JSON bodies of the meta frames and REST responses.
//! - [`pipeline`]: all of the above assembled in the order the tailer must run them.
//! - [`publish`]: the REST bodies and connect snapshot the tailer publishes for the shards.
//!
//! Definitions of every figure: docs/analytics.md.

pub mod contention;
pub mod from_event;
pub mod gate;
pub mod input;
pub mod key_hash;
pub mod meta;
pub mod pipeline;
pub mod publish;
pub mod topk;
pub mod tps;
pub mod tracker;
