//! Channels (the WebSocket path a client connected to) and the items a subscription names.
//!
//! Pure data, used on shard cores at connect and subscribe time. A channel's documented set
//! is both what a client on it may subscribe to and its default subscription. Unlike the
//! existing gateway, an empty set never means "everything": the lifecycle channel carries
//! `Lifecycle` frames only, the contention channel `ContentionData` only.

use crate::model::kind::EventType;
use crate::model::outbound::MetaKind;

/// One thing a subscription can name: an event type, the `NativeTransfer` pseudo-event
/// (a `TxnCallFrame` with non-zero value), or a meta stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Event(EventType),
    NativeTransfer,
    /// `Tps`, `ContentionData`, `TopAccesses` or `Lifecycle` (never `Gap`: gaps go to all).
    Meta(MetaKind),
}

impl Item {
    /// Parses a wire name: an event name (`TxnLog`), `NativeTransfer`, or a meta item
    /// (`TPS`, `ContentionData`, `TopAccesses`, `Lifecycle`). Exact and case-sensitive.
    pub fn from_name(name: &str) -> Option<Item> {
        match name {
            "NativeTransfer" => Some(Item::NativeTransfer),
            "TPS" => Some(Item::Meta(MetaKind::Tps)),
            "ContentionData" => Some(Item::Meta(MetaKind::ContentionData)),
            "TopAccesses" => Some(Item::Meta(MetaKind::TopAccesses)),
            "Lifecycle" => Some(Item::Meta(MetaKind::Lifecycle)),
            other => EventType::from_name(other).map(Item::Event),
        }
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Item::Event(t) => t.name(),
            Item::NativeTransfer => "NativeTransfer",
            Item::Meta(kind) => meta_name(kind),
        }
    }
}

/// The wire name of a meta kind (`TPS`, …, `Gap`).
pub fn meta_name(kind: MetaKind) -> &'static str {
    match kind {
        MetaKind::Tps => "TPS",
        MetaKind::ContentionData => "ContentionData",
        MetaKind::TopAccesses => "TopAccesses",
        MetaKind::Lifecycle => "Lifecycle",
        MetaKind::Gap => "Gap",
    }
}

/// A set of meta kinds, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MetaMask(u8);

impl MetaMask {
    /// No meta kinds.
    pub const EMPTY: MetaMask = MetaMask(0);
    /// The four subscribable meta kinds (`Gap` is implicit for everyone).
    pub const ALL: MetaMask = MetaMask(0b1111);

    fn bit(kind: MetaKind) -> u8 {
        match kind {
            MetaKind::Tps => 1,
            MetaKind::ContentionData => 2,
            MetaKind::TopAccesses => 4,
            MetaKind::Lifecycle => 8,
            MetaKind::Gap => 16,
        }
    }

    const fn with_bits(self, bits: u8) -> MetaMask {
        MetaMask(self.0 | bits)
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: MetaKind) {
        self.0 |= Self::bit(kind);
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: MetaKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// Whether every kind of `other` is in `self`.
    pub fn contains_all(self, other: MetaMask) -> bool {
        other.0 & !self.0 == 0
    }

    /// The kinds in the set, in wire order (TPS, ContentionData, TopAccesses, Lifecycle).
    pub fn kinds(self) -> impl Iterator<Item = MetaKind> {
        [
            MetaKind::Tps,
            MetaKind::ContentionData,
            MetaKind::TopAccesses,
            MetaKind::Lifecycle,
        ]
        .into_iter()
        .filter(move |k| self.contains(*k))
    }
}

const fn mask(types: &[EventType]) -> u32 {
    let mut m = 0u32;
    let mut i = 0;
    while i < types.len() {
        m |= 1u32 << (types[i] as u32);
        i += 1;
    }
    m
}

/// Every nameable event type (all codes but 0).
pub const ALL_EVENTS: u32 = ((1u32 << crate::model::kind::EVENT_TYPE_COUNT) - 1) & !1;

const BLOCK_EVENTS: u32 = mask(&[
    EventType::BlockStart,
    EventType::BlockEnd,
    EventType::BlockQc,
    EventType::BlockFinalized,
    EventType::BlockVerified,
    EventType::BlockReject,
]);

const TXN_EVENTS: u32 = mask(&[
    EventType::TxnHeaderStart,
    EventType::TxnEvmOutput,
    EventType::TxnLog,
    EventType::TxnCallFrame,
    EventType::TxnEnd,
    EventType::TxnReject,
]);

/// The stream a WebSocket path selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `/v1/ws` and `/`: every event and every meta stream.
    All,
    /// `/v1/ws/blocks`: block-level events, TPS and Lifecycle.
    Blocks,
    /// `/v1/ws/txs`: transaction-level events and NativeTransfer.
    Txs,
    /// `/v1/ws/contention`: ContentionData only.
    Contention,
    /// `/v1/ws/lifecycle`: Lifecycle only.
    Lifecycle,
}

impl Channel {
    /// Every channel, in the order of [`Channel::index`] (the one channel list: paths,
    /// metrics labels and per-channel gauges all come from it).
    pub const ALL: [Channel; 5] = [
        Channel::All,
        Channel::Blocks,
        Channel::Txs,
        Channel::Contention,
        Channel::Lifecycle,
    ];

    /// Position in [`Channel::ALL`] (for per-channel counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Wire name, as in `Hello.channel`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::All => "all",
            Channel::Blocks => "blocks",
            Channel::Txs => "txs",
            Channel::Contention => "contention",
            Channel::Lifecycle => "lifecycle",
        }
    }

    /// Event types this channel may carry (a mask of [`EventType::bit`]).
    pub fn allowed_events(self) -> u32 {
        match self {
            Channel::All => ALL_EVENTS,
            Channel::Blocks => BLOCK_EVENTS,
            Channel::Txs => TXN_EVENTS,
            Channel::Contention | Channel::Lifecycle => 0,
        }
    }

    /// Meta streams this channel may carry.
    pub fn allowed_meta(self) -> MetaMask {
        match self {
            Channel::All => MetaMask::ALL,
            Channel::Blocks => MetaMask::EMPTY.with_bits(1 | 8),
            Channel::Txs => MetaMask::EMPTY,
            Channel::Contention => MetaMask::EMPTY.with_bits(2),
            Channel::Lifecycle => MetaMask::EMPTY.with_bits(8),
        }
    }

    /// Whether `item` may be subscribed to on this channel.
    pub fn allows(self, item: Item) -> bool {
        match item {
            Item::Event(t) => self.allowed_events() & t.bit() != 0,
            Item::NativeTransfer => self.allowed_events() & EventType::TxnCallFrame.bit() != 0,
            Item::Meta(kind) => self.allowed_meta().contains(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_list_is_in_index_order() {
        for (i, c) in Channel::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{}", c.name());
        }
    }

    #[test]
    fn item_names_round_trip() {
        for t in &EventType::ALL[1..] {
            let item = Item::from_name(t.name()).unwrap();
            assert_eq!(item, Item::Event(*t));
            assert_eq!(item.name(), t.name());
        }
        for name in [
            "NativeTransfer",
            "TPS",
            "ContentionData",
            "TopAccesses",
            "Lifecycle",
        ] {
            assert_eq!(Item::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Item::from_name("Gap"), None);
        assert_eq!(Item::from_name("None"), None);
        assert_eq!(Item::from_name("tps"), None);
    }

    #[test]
    fn meta_only_channels_allow_no_raw_events() {
        for ch in [Channel::Contention, Channel::Lifecycle] {
            assert_eq!(ch.allowed_events(), 0);
            for t in EventType::ALL {
                assert!(!ch.allows(Item::Event(t)));
            }
            assert!(!ch.allows(Item::NativeTransfer));
        }
        assert!(Channel::Lifecycle.allows(Item::Meta(MetaKind::Lifecycle)));
        assert!(!Channel::Lifecycle.allows(Item::Meta(MetaKind::Tps)));
        assert!(Channel::Contention.allows(Item::Meta(MetaKind::ContentionData)));
        assert!(!Channel::Contention.allows(Item::Meta(MetaKind::Lifecycle)));
    }

    #[test]
    fn documented_channel_sets() {
        assert_eq!(ALL_EVENTS.count_ones(), 24);
        assert!(!Channel::All.allows(Item::Event(EventType::None)));
        assert!(Channel::All.allows(Item::Event(EventType::StorageAccess)));
        assert_eq!(Channel::All.allowed_meta().kinds().count(), 4);
        assert_eq!(Channel::Blocks.allowed_events().count_ones(), 6);
        assert!(Channel::Blocks.allows(Item::Meta(MetaKind::Tps)));
        assert!(Channel::Blocks.allows(Item::Meta(MetaKind::Lifecycle)));
        assert!(!Channel::Blocks.allows(Item::Meta(MetaKind::ContentionData)));
        assert!(!Channel::Blocks.allows(Item::Event(EventType::TxnLog)));
        assert!(Channel::Txs.allows(Item::NativeTransfer));
        assert!(Channel::Txs.allows(Item::Event(EventType::TxnLog)));
        assert!(!Channel::Txs.allows(Item::Event(EventType::StorageAccess)));
        assert!(!Channel::Txs.allows(Item::Meta(MetaKind::Tps)));
    }
}
