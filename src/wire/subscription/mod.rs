//! Subscriptions: what a session asked for, parsed from a client text message or from the
//! connect query, validated against the session's channel and the operator's limits.
//!
//! Runs on shard cores, per subscribe message (rare; never per event). Input: client text
//! and the channel. Output: a [`ClientMessage`] holding a normalized [`Subscription`] (which
//! [`crate::serve::filter::CompiledFilter`] compiles for the hot path), or a [`ClientError`] with a
//! stable code the session sends back as an `Error` frame. Nothing a client sends is ever
//! silently ignored (the existing gateway dropped unknown names and bad JSON).
//!
//! Semantics (docs/protocol.md has the wire forms):
//! - A subscribe replaces the previous subscription.
//! - An event named in `events` with no filter spec passes unfiltered; a spec's `event_name`
//!   is subscribed even when `events` omits it. Specs of one event are ORed; the field
//!   filters within a spec are ANDed.
//! - Only items in the channel's set are allowed (`not_allowed_on_channel`); a subscription
//!   of only meta items gets no raw events; an empty one gets only `Gap` frames.
//!
//! - [`channel`]: channels, their allowed and default sets, and the nameable items.
//! - [`parse`]: the JSON and query forms.

pub mod channel;
pub mod parse;

use crate::model::kind::EventType;
use crate::model::lane::{Lane, LaneMap};
use crate::model::stage::CommitStage;
use crate::model::types::{Address, Bytes32};
use channel::{Channel, Item, MetaMask};

pub use parse::parse_client_message;

/// Operator bounds on one subscription, so no client can make per-event matching costly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionLimits {
    /// Most names in `subscribe` / `events`. Default 64 (there are 29 distinct items).
    pub max_names: usize,
    /// Most filter specs. Default 32.
    pub max_filters: usize,
    /// Most field filters in one spec. Default 8.
    pub max_fields_per_filter: usize,
    /// Most values in one field filter (addresses, topics at one position, selectors).
    /// Default 1,024; matching is a binary search, so cost grows with log(values).
    pub max_values_per_filter: usize,
    /// Largest client message in bytes. Default 64 KiB (about 1,500 addresses).
    pub max_message_bytes: usize,
    /// `[Voted, Finalized, Verified]`: the `min_stage` gates this server runs (the tailer's
    /// `chain.gate.enabled`). A subscription asking for a gate that is off gets a
    /// `stage_not_enabled` error instead of a silent stream with no events. Default: all.
    pub enabled_gates: [bool; 3],
    /// The server's priority lanes (`--lanes`), which a `priority` cap selects by.
    pub lanes: LaneMap,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits {
            max_names: 64,
            max_filters: 32,
            max_fields_per_filter: 8,
            max_values_per_filter: 1024,
            max_message_bytes: 64 * 1024,
            enabled_gates: [true; 3],
            lanes: LaneMap::DEFAULT,
        }
    }
}

/// A parsed client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// A valid subscribe: replaces the session's subscription.
    Subscribe(Subscription),
    /// `{"hello":{…}}`: accepted and logged, nothing else.
    Hello(ClientHello),
}

/// What a client says about itself in `hello` (each string cut to 64 bytes for logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub wire_version: Option<u64>,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
}

/// The stable machine-readable codes of [`ClientError`] (the `code` of an `Error` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not JSON, or not UTF-8.
    InvalidJson,
    /// JSON, but not a `subscribe` or `hello` message.
    UnknownMessage,
    /// A name that is no event or meta item.
    UnknownEvent,
    /// A field filter naming an unknown field.
    UnknownField,
    /// A known field on an event that never carries it (`topics` on `TxnCallFrame`).
    FieldNotApplicable,
    /// A value of the wrong type or shape (bad hex, `min > max`, unknown `min_stage`).
    BadValue,
    TooManyNames,
    TooManyFilters,
    TooManyValues,
    MessageTooLarge,
    /// An item outside the channel's set (`TxnLog` on `/v1/ws/lifecycle`).
    NotAllowedOnChannel,
    /// A `min_stage` whose gate this server does not run (`--gates`).
    StageNotEnabled,
}

/// `stage` if this server runs its `min_stage` gate (`Proposed` always), else the
/// `stage_not_enabled` error naming the gates that are on.
pub fn check_gate(
    stage: CommitStage,
    limits: &SubscriptionLimits,
) -> Result<CommitStage, ClientError> {
    let gates = [
        CommitStage::Voted,
        CommitStage::Finalized,
        CommitStage::Verified,
    ];
    match gates.iter().position(|g| *g == stage) {
        Some(i) if !limits.enabled_gates[i] => {
            let on: Vec<&str> = gates
                .iter()
                .zip(limits.enabled_gates)
                .filter(|(_, on)| *on)
                .map(|(g, _)| g.name())
                .collect();
            Err(ClientError {
                code: ErrorCode::StageNotEnabled,
                message: format!(
                    "min_stage {} is not enabled on this server (enabled: Proposed{}{})",
                    stage.name(),
                    if on.is_empty() { "" } else { ", " },
                    on.join(", ")
                ),
            })
        }
        _ => Ok(stage),
    }
}

impl ErrorCode {
    /// The wire string (`"invalid_json"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::FieldNotApplicable => "field_not_applicable",
            ErrorCode::BadValue => "bad_value",
            ErrorCode::StageNotEnabled => "stage_not_enabled",
            ErrorCode::TooManyNames => "too_many_names",
            ErrorCode::TooManyFilters => "too_many_filters",
            ErrorCode::TooManyValues => "too_many_values",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::NotAllowedOnChannel => "not_allowed_on_channel",
        }
    }
}

/// A client message that could not be applied; the previous subscription stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ClientError {
    pub code: ErrorCode,
    /// Human-readable detail naming the offending item.
    pub message: String,
}

impl ClientError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ClientError {
        ClientError {
            code,
            message: message.into(),
        }
    }
}

/// What a filter spec applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecTarget {
    Event(EventType),
    /// `TxnCallFrame` events whose value is non-zero.
    NativeTransfer,
}

impl SpecTarget {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            SpecTarget::Event(t) => t.name(),
            SpecTarget::NativeTransfer => "NativeTransfer",
        }
    }
}

/// One position of a `topics` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicSlot {
    /// `null`: any topic, but the position must exist.
    Any,
    /// One topic, or an array of topics (any of), sorted and deduplicated.
    AnyOf(Vec<Bytes32>),
}

/// An inclusive range on an index; an absent bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexRange {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

impl IndexRange {
    /// Whether `v` is inside the range.
    pub fn contains(self, v: u32) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// One field test; value lists are sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldFilter {
    /// Any of these addresses among the event's addresses.
    Address(Vec<Address>),
    /// Positional topics (`topic0..`); also the old prefix form (a list of topics).
    Topics(Vec<TopicSlot>),
    /// Any of these 4-byte selectors.
    Selector(Vec<[u8; 4]>),
    TxnIndex(IndexRange),
    LogIndex(IndexRange),
}

/// One filter spec: all of `fields` must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    pub target: SpecTarget,
    pub fields: Vec<FieldFilter>,
}

/// A validated, normalized subscription for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub channel: Channel,
    /// Event types named (mask of [`EventType::bit`]), including those named only by specs.
    pub events: u32,
    /// `NativeTransfer` named (by name or by a spec).
    pub native_transfer: bool,
    pub meta: MetaMask,
    pub specs: Vec<FilterSpec>,
    /// The gate events are released at; `Proposed` (live) unless asked otherwise.
    pub min_stage: CommitStage,
    /// `priority`: the lowest lane the client wants; events of lower lanes are not selected
    /// (`None`: every lane).
    pub priority: Option<Lane>,
    /// Names of a subscribe message that were skipped (unknown, or not on this channel)
    /// while the rest applies, as the old gateway did; listed in the `Subscribed` ack.
    pub rejected: Vec<(String, ClientError)>,
}

impl Subscription {
    /// The channel's default: everything it carries, live, unfiltered.
    pub fn default_for(channel: Channel) -> Subscription {
        Subscription {
            channel,
            events: channel.allowed_events(),
            native_transfer: false,
            meta: channel.allowed_meta(),
            specs: Vec::new(),
            min_stage: CommitStage::Proposed,
            priority: None,
            rejected: Vec::new(),
        }
    }

    /// This subscription without the events of lanes below `cap` (by the server's
    /// `limits.lanes`): a client that asks for `priority=block` is never sent what it would
    /// be the first to lose. `None` leaves it as it is.
    pub fn with_priority(mut self, cap: Option<Lane>, limits: &SubscriptionLimits) -> Subscription {
        let Some(cap) = cap else {
            return self;
        };
        let kept = |t: EventType| limits.lanes.lane(t) <= cap;
        for t in EventType::ALL {
            if !kept(t) {
                self.events &= !t.bit();
            }
        }
        self.native_transfer &= kept(EventType::TxnCallFrame);
        self.specs.retain(|s| match s.target {
            SpecTarget::Event(t) => kept(t),
            SpecTarget::NativeTransfer => kept(EventType::TxnCallFrame),
        });
        self.priority = Some(cap);
        self
    }

    /// The connect-time form: `events` (the channel default when absent) and `min_stage`.
    pub fn from_query(
        channel: Channel,
        events: Option<&[Item]>,
        min_stage: Option<CommitStage>,
        limits: &SubscriptionLimits,
    ) -> Result<Subscription, ClientError> {
        let mut sub = match events {
            None => Subscription::default_for(channel),
            Some(items) => Subscription::from_items(channel, items, Vec::new(), limits)?,
        };
        if let Some(stage) = min_stage {
            sub.min_stage = check_gate(stage, limits)?;
        }
        Ok(sub)
    }

    /// Builds from named items and specs, enforcing the channel's set and the limits.
    pub fn from_items(
        channel: Channel,
        items: &[Item],
        specs: Vec<FilterSpec>,
        limits: &SubscriptionLimits,
    ) -> Result<Subscription, ClientError> {
        if items.len() > limits.max_names {
            return Err(ClientError::new(
                ErrorCode::TooManyNames,
                format!("{} names (limit {})", items.len(), limits.max_names),
            ));
        }
        if specs.len() > limits.max_filters {
            return Err(ClientError::new(
                ErrorCode::TooManyFilters,
                format!(
                    "{} filter specs (limit {})",
                    specs.len(),
                    limits.max_filters
                ),
            ));
        }
        let mut sub = Subscription {
            channel,
            events: 0,
            native_transfer: false,
            meta: MetaMask::EMPTY,
            specs: Vec::new(),
            min_stage: CommitStage::Proposed,
            priority: None,
            rejected: Vec::new(),
        };
        let spec_items = specs.iter().map(|s| match s.target {
            SpecTarget::Event(t) => Item::Event(t),
            SpecTarget::NativeTransfer => Item::NativeTransfer,
        });
        for item in items.iter().copied().chain(spec_items) {
            if !channel.allows(item) {
                return Err(ClientError::new(
                    ErrorCode::NotAllowedOnChannel,
                    format!(
                        "{} is not carried by the {} channel",
                        item.name(),
                        channel.name()
                    ),
                ));
            }
            match item {
                Item::Event(t) => sub.events |= t.bit(),
                Item::NativeTransfer => sub.native_transfer = true,
                Item::Meta(kind) => sub.meta.insert(kind),
            }
        }
        sub.specs = specs;
        Ok(sub)
    }

    /// The subscribed names in canonical order (event code order, then `NativeTransfer`,
    /// then meta items), for the `Subscribed` acknowledgement.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let events = EventType::ALL
            .into_iter()
            .filter(|t| self.events & t.bit() != 0)
            .map(EventType::name);
        let native = self.native_transfer.then_some("NativeTransfer");
        events
            .chain(native)
            .chain(self.meta.kinds().map(channel::meta_name))
    }
}

#[cfg(test)]
mod tests;
